//! Script values: the kind of an evaluated value (its text lives in a caller-owned buffer) and
//! the owned form stored in `$var` slots and AVP stacks.

use std::cmp::Ordering;
use std::io::Write as _;

/// What an evaluation produced. A string's bytes are in the buffer the caller passed in, so
/// evaluating never allocates once the worker's buffers have grown to their working size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// No value (`NULL`, unset variable, missing header).
    #[default]
    Null,
    /// An integer.
    Int(i64),
    /// A string; its bytes are in the accompanying buffer.
    Str,
}

/// An owned value: `$var` slots, AVP entries, route parameters. The buffer keeps its capacity
/// when the value changes, so steady-state assignment does not allocate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Val {
    /// Kind of the value.
    pub kind: Kind,
    /// String bytes (meaningful for [`Kind::Str`]).
    pub s: Vec<u8>,
}

impl Val {
    /// A string value.
    pub fn str(s: impl AsRef<[u8]>) -> Self {
        Self {
            kind: Kind::Str,
            s: s.as_ref().to_vec(),
        }
    }

    /// An integer value.
    pub fn int(i: i64) -> Self {
        Self {
            kind: Kind::Int(i),
            s: Vec::new(),
        }
    }

    /// Sets from a kind and bytes, reusing this value's buffer.
    pub fn set(&mut self, kind: Kind, s: &[u8]) {
        self.kind = kind;
        self.s.clear();
        if kind == Kind::Str {
            self.s.extend_from_slice(s);
        }
    }

    /// Resets to `NULL`, keeping the buffer capacity.
    pub fn clear(&mut self) {
        self.kind = Kind::Null;
        self.s.clear();
    }

    /// True for `NULL`.
    pub fn is_null(&self) -> bool {
        self.kind == Kind::Null
    }

    /// Writes the value as text into `out` (ints in decimal, `NULL` as `<null>`).
    pub fn write_text(&self, out: &mut Vec<u8>) {
        write_text(self.kind, &self.s, out);
    }

    /// The value as text (allocates; for tests and diagnostics).
    pub fn to_text(&self) -> String {
        let mut v = Vec::new();
        self.write_text(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    }

    /// The integer, if it is one or a string holding one.
    pub fn as_int(&self) -> Option<i64> {
        as_int(self.kind, &self.s)
    }
}

/// Appends the text form of a value.
pub(crate) fn write_text(kind: Kind, s: &[u8], out: &mut Vec<u8>) {
    match kind {
        Kind::Null => out.extend_from_slice(b"<null>"),
        Kind::Int(i) => push_int(out, i),
        Kind::Str => out.extend_from_slice(s),
    }
}

/// Appends an integer in decimal.
pub(crate) fn push_int(out: &mut Vec<u8>, i: i64) {
    let _ = write!(out, "{i}");
}

/// Parses a decimal integer with optional sign (surrounding blanks are not allowed).
pub(crate) fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, d) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    if d.is_empty() || d.len() > 19 || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i64 = 0;
    for &c in d {
        v = v.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
    }
    Some(if neg { -v } else { v })
}

/// The integer behind a value: ints as they are, strings when they hold a number.
pub(crate) fn as_int(kind: Kind, s: &[u8]) -> Option<i64> {
    match kind {
        Kind::Int(i) => Some(i),
        Kind::Str => parse_int(s),
        Kind::Null => None,
    }
}

/// Truth of a bare variable in a condition: set, non-empty and not the integer 0.
pub(crate) fn truthy(kind: Kind, s: &[u8]) -> bool {
    match kind {
        Kind::Null => false,
        Kind::Int(i) => i != 0,
        Kind::Str => !s.is_empty(),
    }
}

/// Case-insensitive ordering of byte strings (OpenSIPS compares script strings that way).
pub(crate) fn cmp_ic(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    for i in 0..n {
        let (x, y) = (a[i].to_ascii_lowercase(), b[i].to_ascii_lowercase());
        if x != y {
            return x.cmp(&y);
        }
    }
    a.len().cmp(&b.len())
}

/// Compares two evaluated values the way OpenSIPS does: numerically when both are (or hold)
/// integers and at least one is an int, otherwise as case-insensitive strings. `None` when
/// one side is `NULL` and the other is not.
pub(crate) fn compare(ka: Kind, a: &[u8], kb: Kind, b: &[u8]) -> Option<Ordering> {
    match (ka, kb) {
        (Kind::Null, Kind::Null) => Some(Ordering::Equal),
        (Kind::Null, _) | (_, Kind::Null) => None,
        (Kind::Int(x), Kind::Int(y)) => Some(x.cmp(&y)),
        (Kind::Int(x), Kind::Str) => match parse_int(b) {
            Some(y) => Some(x.cmp(&y)),
            None => {
                let mut t = [0u8; 24];
                Some(cmp_ic(int_text(x, &mut t), b))
            }
        },
        (Kind::Str, Kind::Int(y)) => match parse_int(a) {
            Some(x) => Some(x.cmp(&y)),
            None => {
                let mut t = [0u8; 24];
                Some(cmp_ic(a, int_text(y, &mut t)))
            }
        },
        (Kind::Str, Kind::Str) => Some(cmp_ic(a, b)),
    }
}

/// Formats an int into a stack buffer.
pub(crate) fn int_text(i: i64, buf: &mut [u8; 24]) -> &[u8] {
    let mut cur = std::io::Cursor::new(&mut buf[..]);
    let _ = write!(cur, "{i}");
    let n = usize::try_from(cur.position()).unwrap_or(0);
    &buf[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_rules() {
        assert_eq!(
            compare(Kind::Str, b"ABC", Kind::Str, b"abc"),
            Some(Ordering::Equal)
        );
        assert_eq!(
            compare(Kind::Int(5), b"", Kind::Str, b"5"),
            Some(Ordering::Equal)
        );
        assert_eq!(
            compare(Kind::Int(10), b"", Kind::Int(9), b""),
            Some(Ordering::Greater)
        );
        assert_eq!(compare(Kind::Null, b"", Kind::Str, b""), None);
        assert_eq!(parse_int(b"-42"), Some(-42));
        assert_eq!(parse_int(b"4x"), None);
    }
}
