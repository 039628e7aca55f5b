//! Byte-level scanning helpers shared by every parser: character classes, linear white space
//! (including RFC 3261 line folding), quoted strings, and comma splitting outside quotes and
//! angle brackets.

use crate::error::{ErrorKind, Result, err};
use crate::span::Span;

const TOKEN: u8 = 1;
const HOST: u8 = 2;
const DIGIT: u8 = 4;
const HEX: u8 = 8;
const USERINFO: u8 = 16;
const PARAMVAL: u8 = 32;
const URIC: u8 = 64;

const fn build_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut c = 0usize;
    while c < 256 {
        let b = c as u8;
        let alpha = b.is_ascii_alphabetic();
        let digit = b.is_ascii_digit();
        let mut v = 0;
        if alpha
            || digit
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            )
        {
            v |= TOKEN | PARAMVAL;
        }
        if alpha || digit || matches!(b, b'-' | b'.' | b'_') {
            v |= HOST;
        }
        if digit {
            v |= DIGIT;
        }
        if digit || matches!(b, b'a'..=b'f' | b'A'..=b'F') {
            v |= HEX;
        }
        // unreserved / escaped / user-unreserved / ':' (password separator)
        if alpha
            || digit
            || matches!(
                b,
                b'-' | b'_'
                    | b'.'
                    | b'!'
                    | b'~'
                    | b'*'
                    | b'\''
                    | b'('
                    | b')'
                    | b'%'
                    | b'&'
                    | b'='
                    | b'+'
                    | b'$'
                    | b','
                    | b';'
                    | b'?'
                    | b'/'
                    | b':'
            )
        {
            v |= USERINFO;
        }
        // generic parameter value: token plus host characters of IPv6 references
        if matches!(
            b,
            b':' | b'[' | b']' | b'/' | b'@' | b'?' | b'&' | b'$' | b'(' | b')'
        ) {
            v |= PARAMVAL;
        }
        // anything printable that may appear inside a URI (no SP, no < > ", no controls)
        if b > 0x20
            && b < 0x7f
            && !matches!(b, b'<' | b'>' | b'"' | b'{' | b'}' | b'|' | b'\\' | b'^')
        {
            v |= URIC;
        }
        if b >= 0x80 {
            v |= PARAMVAL;
        }
        t[c] = v;
        c += 1;
    }
    t
}

static TABLE: [u8; 256] = build_table();

/// RFC 3261 token character.
#[inline]
pub(crate) fn is_token(b: u8) -> bool {
    TABLE[b as usize] & TOKEN != 0
}
/// Hostname character.
#[inline]
pub(crate) fn is_host(b: u8) -> bool {
    TABLE[b as usize] & HOST != 0
}
/// Hex digit.
#[inline]
pub(crate) fn is_hex(b: u8) -> bool {
    TABLE[b as usize] & HEX != 0
}
/// Character allowed in SIP URI userinfo.
#[inline]
pub(crate) fn is_userinfo(b: u8) -> bool {
    TABLE[b as usize] & USERINFO != 0
}
/// Character allowed in an unquoted generic parameter value (lenient).
#[inline]
pub(crate) fn is_paramval(b: u8) -> bool {
    TABLE[b as usize] & PARAMVAL != 0
}
/// Character that may appear in a URI.
#[inline]
pub(crate) fn is_uric(b: u8) -> bool {
    TABLE[b as usize] & URIC != 0
}

/// Skips spaces, tabs and folded line breaks (CRLF or LF followed by SP/HT) starting at `i`,
/// never past `end`. Returns the first position that is not linear white space.
#[inline]
pub(crate) fn skip_lws(buf: &[u8], mut i: usize, end: usize) -> usize {
    while i < end {
        match buf[i] {
            b' ' | b'\t' => i += 1,
            b'\r' if i + 2 < end && buf[i + 1] == b'\n' && matches!(buf[i + 2], b' ' | b'\t') => {
                i += 3;
            }
            b'\n' if i + 1 < end && matches!(buf[i + 1], b' ' | b'\t') => i += 2,
            _ => break,
        }
    }
    i
}

/// Moves `end` back over trailing white space (and CR/LF) but not before `start`.
#[inline]
pub(crate) fn trim_end(buf: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && matches!(buf[end - 1], b' ' | b'\t' | b'\r' | b'\n') {
        end -= 1;
    }
    end
}

/// Trims linear white space from both ends of a span.
#[inline]
pub(crate) fn trim(buf: &[u8], s: Span) -> Span {
    let a = skip_lws(buf, s.lo(), s.hi());
    let b = trim_end(buf, a, s.hi());
    Span::new(a, b)
}

/// Scans a token at `i`; returns its end (== `i` when there is no token).
#[inline]
pub(crate) fn token_end(buf: &[u8], mut i: usize, end: usize) -> usize {
    while i < end && is_token(buf[i]) {
        i += 1;
    }
    i
}

/// Scans a quoted string whose opening `"` is at `i`; returns the position after the closing `"`.
pub(crate) fn quoted_end(buf: &[u8], i: usize, end: usize) -> Result<usize> {
    let mut j = i + 1;
    while j < end {
        match buf[j] {
            b'"' => return Ok(j + 1),
            b'\\' => j += 2,
            _ => j += 1,
        }
    }
    err(ErrorKind::UnterminatedQuote, i)
}

/// Iterator over the comma-separated elements of a header value, splitting only on commas that
/// are outside quoted strings and angle brackets. Each element is trimmed; empty elements are
/// skipped. An unterminated quote or `<` makes the rest one element (the typed parser reports it).
#[derive(Debug, Clone)]
pub struct CommaSplit<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> CommaSplit<'a> {
    /// Splits `span` of `buf`.
    pub fn new(buf: &'a [u8], span: Span) -> Self {
        Self {
            buf,
            pos: span.lo(),
            end: span.hi().min(buf.len()),
        }
    }
}

impl Iterator for CommaSplit<'_> {
    type Item = Span;

    fn next(&mut self) -> Option<Span> {
        loop {
            if self.pos >= self.end {
                return None;
            }
            let start = self.pos;
            let mut i = start;
            let mut angle = false;
            while i < self.end {
                match self.buf[i] {
                    b'"' => {
                        i = quoted_end(self.buf, i, self.end).unwrap_or(self.end);
                        continue;
                    }
                    b'<' => angle = true,
                    b'>' => angle = false,
                    b',' if !angle => break,
                    _ => {}
                }
                i += 1;
            }
            self.pos = i + 1;
            let s = trim(self.buf, Span::new(start, i.min(self.end)));
            if !s.is_empty() {
                return Some(s);
            }
        }
    }
}

/// Parses an unsigned decimal number that must fit in `u32`.
pub(crate) fn parse_u32(buf: &[u8], s: Span) -> Result<u32> {
    let b = s.of(buf);
    if b.is_empty() {
        return err(ErrorKind::BadNumber, s.lo());
    }
    let mut v: u64 = 0;
    for (k, &c) in b.iter().enumerate() {
        if !c.is_ascii_digit() {
            return err(ErrorKind::BadNumber, s.lo() + k);
        }
        v = v * 10 + u64::from(c - b'0');
        if v > u64::from(u32::MAX) {
            return err(ErrorKind::BadNumber, s.lo() + k);
        }
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok(v as u32)
}

/// Scans decimal digits at `i`.
#[inline]
pub(crate) fn digits_end(buf: &[u8], mut i: usize, end: usize) -> usize {
    while i < end && buf[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// ASCII case-insensitive equality.
#[inline]
pub fn eq_ic(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Value of one hex digit.
#[inline]
pub(crate) fn hex_val(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

/// Iterator over the octets of a %-escaped string, decoded.
#[derive(Debug, Clone)]
pub struct Unescape<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Unescape<'a> {
    /// Decodes `b` lazily.
    pub fn new(b: &'a [u8]) -> Self {
        Self { b, i: 0 }
    }
}

impl Iterator for Unescape<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        if c == b'%'
            && self.i + 2 < self.b.len()
            && is_hex(self.b[self.i + 1])
            && is_hex(self.b[self.i + 2])
        {
            let v = hex_val(self.b[self.i + 1]) << 4 | hex_val(self.b[self.i + 2]);
            self.i += 3;
            return Some(v);
        }
        self.i += 1;
        Some(c)
    }
}

/// Appends the %-decoded form of `b` to `out`.
pub fn unescape_into(b: &[u8], out: &mut Vec<u8>) {
    out.extend(Unescape::new(b));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lws_skips_folding() {
        let b = b"a \r\n  b";
        assert_eq!(skip_lws(b, 1, b.len()), 6);
        let b = b"a\r\nb";
        assert_eq!(skip_lws(b, 1, b.len()), 1);
    }

    #[test]
    fn comma_split_respects_quotes_and_brackets() {
        let b = br#""a,b" <sip:x;p=1,2>, <sip:y> ,, z"#;
        let v: Vec<&[u8]> = CommaSplit::new(b, Span::new(0, b.len()))
            .map(|s| s.of(b))
            .collect();
        assert_eq!(v, vec![&br#""a,b" <sip:x;p=1,2>"#[..], b"<sip:y>", b"z"]);
    }

    #[test]
    fn unescape_decodes() {
        let d: Vec<u8> = Unescape::new(b"a%41%4g%").collect();
        assert_eq!(d, b"aA%4g%");
    }

    #[test]
    fn u32_overflow() {
        let b = b"4294967296";
        assert!(parse_u32(b, Span::new(0, b.len())).is_err());
        let b = b"4294967295";
        assert_eq!(parse_u32(b, Span::new(0, b.len())).unwrap(), u32::MAX);
    }
}
