//! Typed parse errors, each carrying the byte offset into the body.

/// Why an SDP body could not be parsed.
///
/// Every variant carries `offset`, the byte offset into the parsed body of the
/// line or field that caused the error (see [`SdpError::offset`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The body holds no non-blank line at all.
    #[error("empty SDP body")]
    Empty {
        /// Always the body length.
        offset: usize,
    },
    /// A line is not of the form `<letter>=<value>`.
    #[error("malformed SDP line at byte {offset}: expected `<type>=<value>`")]
    MalformedLine {
        /// Start of the offending line.
        offset: usize,
    },
    /// A structured line lacks a mandatory field.
    #[error("{line}= line at byte {offset}: missing field `{field}`")]
    MissingField {
        /// Line type letter (`o`, `c`, `m`, ...).
        line: char,
        /// Name of the missing field.
        field: &'static str,
        /// Offset where the field was expected (end of the line).
        offset: usize,
    },
    /// A field that must be a decimal number is not one (or overflows).
    #[error("{line}= line at byte {offset}: invalid number in field `{field}`")]
    InvalidNumber {
        /// Line type letter.
        line: char,
        /// Name of the field.
        field: &'static str,
        /// Start of the field.
        offset: usize,
    },
    /// A structured line has more fields than its syntax allows.
    #[error("{line}= line at byte {offset}: unexpected extra field")]
    UnexpectedField {
        /// Line type letter.
        line: char,
        /// Start of the first surplus field.
        offset: usize,
    },
    /// An `r=` line appears at session level before any `t=` line.
    #[error("r= line at byte {offset} without a preceding t= line")]
    RepeatWithoutTiming {
        /// Start of the `r=` line.
        offset: usize,
    },
    /// More non-blank lines than [`Limits::max_lines`](crate::Limits::max_lines).
    #[error("too many SDP lines (limit {limit}) at byte {offset}")]
    TooManyLines {
        /// The limit that was exceeded.
        limit: usize,
        /// Start of the first line over the limit.
        offset: usize,
    },
    /// More `m=` sections than [`Limits::max_media`](crate::Limits::max_media).
    #[error("too many media sections (limit {limit}) at byte {offset}")]
    TooManyMedia {
        /// The limit that was exceeded.
        limit: usize,
        /// Start of the first `m=` line over the limit.
        offset: usize,
    },
    /// An `m=` line lists more formats than
    /// [`Limits::max_formats`](crate::Limits::max_formats).
    #[error("too many formats on m= line (limit {limit}) at byte {offset}")]
    TooManyFormats {
        /// The limit that was exceeded.
        limit: usize,
        /// Start of the first format over the limit.
        offset: usize,
    },
}

impl SdpError {
    /// Byte offset into the parsed body where the problem was detected.
    #[must_use]
    pub fn offset(&self) -> usize {
        match *self {
            Self::Empty { offset }
            | Self::MalformedLine { offset }
            | Self::MissingField { offset, .. }
            | Self::InvalidNumber { offset, .. }
            | Self::UnexpectedField { offset, .. }
            | Self::RepeatWithoutTiming { offset }
            | Self::TooManyLines { offset, .. }
            | Self::TooManyMedia { offset, .. }
            | Self::TooManyFormats { offset, .. } => offset,
        }
    }
}
