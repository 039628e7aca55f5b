//! Byte ranges over one message buffer, and the view that binds a parsed value to its bytes.

use std::fmt;

/// A half-open byte range `start..end` into a message buffer.
///
/// Offsets are `u32`: a SIP message is bounded far below 4 GiB by [`crate::Limits`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// A span from `usize` offsets (callers guarantee they fit the message limits).
    #[inline]
    #[allow(clippy::cast_possible_truncation)]
    pub const fn new(start: usize, end: usize) -> Self {
        Self {
            start: start as u32,
            end: end as u32,
        }
    }

    /// The bytes this span covers; an empty slice when the span lies outside `buf`.
    #[inline]
    pub fn of<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.start as usize..self.end as usize)
            .unwrap_or(&[])
    }

    /// Length in bytes.
    #[inline]
    pub const fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    /// True for an empty span.
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Start as `usize`.
    #[inline]
    pub const fn lo(&self) -> usize {
        self.start as usize
    }

    /// End as `usize`.
    #[inline]
    pub const fn hi(&self) -> usize {
        self.end as usize
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// A parsed value (made of [`Span`]s) bound to the buffer it was parsed from.
///
/// Parsed header types are small `Copy` structs of spans, so a message can cache them without
/// borrowing itself; `Bound` gives them a borrowing, allocation-free accessor API.
#[derive(Clone, Copy)]
pub struct Bound<'a, T> {
    /// The buffer the spans point into.
    pub buf: &'a [u8],
    /// The parsed value.
    pub v: T,
}

impl<'a, T> Bound<'a, T> {
    /// Binds `v` to `buf`.
    #[inline]
    pub const fn new(buf: &'a [u8], v: T) -> Self {
        Self { buf, v }
    }

    /// The bytes of a span of this value.
    #[inline]
    pub fn s(&self, span: Span) -> &'a [u8] {
        span.of(self.buf)
    }

    /// The bytes of an optional span.
    #[inline]
    pub fn opt(&self, span: Option<Span>) -> Option<&'a [u8]> {
        span.map(|s| s.of(self.buf))
    }

    /// Rebinds a sub-value to the same buffer.
    #[inline]
    pub const fn bind<U>(&self, u: U) -> Bound<'a, U> {
        Bound {
            buf: self.buf,
            v: u,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Bound<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.v.fmt(f)
    }
}
