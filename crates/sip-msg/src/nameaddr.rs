//! name-addr and addr-spec values with header parameters (RFC 3261 §20.10, §25.1): From, To,
//! Contact, Route, Record-Route, Path, Service-Route, Refer-To, P-Asserted-Identity, Diversion...

use crate::error::{ErrorKind, Result, err};
use crate::params::{ParamMode, Params, parse_params};
use crate::scan::{is_token, quoted_end, skip_lws, trim};
use crate::span::{Bound, Span};
use crate::uri::{Uri, parse_uri};

/// A name-addr (`"Display" <uri>;params`) or addr-spec (`uri;params`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NameAddr {
    /// The whole value.
    pub span: Span,
    /// Display name as written (quoted strings keep their quotes).
    pub display: Option<Span>,
    /// The URI.
    pub uri: Uri,
    /// True when the URI was enclosed in `<>`.
    pub bracketed: bool,
    /// Header parameters after the URI (`;tag=...`, `;q=...`).
    pub params: Params,
}

/// A Contact value: `*` or an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactValue {
    /// `Contact: *` (only valid in REGISTER with Expires: 0).
    Star(Span),
    /// A contact address.
    Addr(NameAddr),
}

fn is_display_char(b: u8) -> bool {
    is_token(b) || matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Parses one name-addr / addr-spec spanning `span` exactly (after trimming).
pub fn parse_name_addr(buf: &[u8], span: Span) -> Result<NameAddr> {
    let s = trim(buf, span);
    let (start, end) = (s.lo(), s.hi().min(buf.len()));
    if start >= end {
        return err(ErrorKind::Empty, start);
    }
    let mut na = NameAddr {
        span: s,
        ..NameAddr::default()
    };
    let (uri_start, uri_end, after);
    // The display name (quoted, or tokens) ends at `<`; the bracketed URI is found by one helper.
    let lt = if buf[start] == b'"' {
        let q = quoted_end(buf, start, end)?;
        na.display = Some(Span::new(start, q));
        let lt = skip_lws(buf, q, end);
        if lt >= end || buf[lt] != b'<' {
            return err(ErrorKind::BadNameAddr, lt);
        }
        Some(lt)
    } else {
        let lt = buf[start..end]
            .iter()
            .position(|&c| c == b'<')
            .map(|p| start + p);
        if let Some(lt) = lt.filter(|&lt| lt > start) {
            let d = trim(buf, Span::new(start, lt));
            if let Some(bad) = d.of(buf).iter().position(|&c| !is_display_char(c)) {
                return err(ErrorKind::BadNameAddr, d.lo() + bad);
            }
            if !d.is_empty() {
                na.display = Some(d);
            }
        }
        lt
    };
    if let Some(lt) = lt {
        uri_start = lt + 1;
        let Some(gt) = buf[uri_start..end].iter().position(|&c| c == b'>') else {
            return err(ErrorKind::BadNameAddr, uri_start);
        };
        uri_end = uri_start + gt;
        after = uri_end + 1;
        na.bracketed = true;
    } else {
        // addr-spec: the URI ends at the first ';' or white space; it may not carry '?' headers.
        uri_start = start;
        let mut j = start;
        while j < end && !matches!(buf[j], b';' | b' ' | b'\t' | b'\r' | b'\n') {
            if buf[j] == b'?' || buf[j] == b',' {
                return err(ErrorKind::BadNameAddr, j);
            }
            j += 1;
        }
        uri_end = j;
        after = j;
    }
    na.uri = parse_uri(buf, Span::new(uri_start, uri_end))?;
    let (params, pend) = parse_params(buf, after, end, ParamMode::Header)?;
    na.params = params;
    let rest = skip_lws(buf, pend, end);
    if rest != end {
        return err(ErrorKind::Trailing, rest);
    }
    Ok(na)
}

/// Parses a Contact value (`*` or a name-addr).
pub fn parse_contact(buf: &[u8], span: Span) -> Result<ContactValue> {
    let s = trim(buf, span);
    if s.of(buf) == b"*" {
        return Ok(ContactValue::Star(s));
    }
    parse_name_addr(buf, s).map(ContactValue::Addr)
}

/// Parses a standalone name-addr string.
pub fn name_addr(buf: &[u8]) -> Result<Bound<'_, NameAddr>> {
    parse_name_addr(buf, Span::new(0, buf.len())).map(|n| Bound::new(buf, n))
}

impl<'a> Bound<'a, NameAddr> {
    /// The whole value as written.
    pub fn raw(&self) -> &'a [u8] {
        self.s(self.v.span)
    }
    /// The display name as written (quotes kept).
    pub fn display(&self) -> Option<&'a [u8]> {
        self.opt(self.v.display)
    }
    /// The URI.
    pub fn uri(&self) -> Bound<'a, Uri> {
        self.bind(self.v.uri)
    }
    /// Header parameters.
    pub fn params(&self) -> Bound<'a, Params> {
        self.bind(self.v.params)
    }
    /// A header parameter.
    pub fn param(&self, name: &[u8]) -> Option<Option<&'a [u8]>> {
        self.params().get(name)
    }
    /// The `tag` parameter (From/To).
    pub fn tag(&self) -> Option<&'a [u8]> {
        self.param(b"tag").flatten()
    }
    /// The `q` parameter as thousandths (Contact), if present and valid.
    pub fn q(&self) -> Option<u16> {
        self.params().get_unquoted(b"q").and_then(parse_qvalue)
    }
    /// The `expires` parameter (Contact), if present and numeric; overlarge values saturate.
    pub fn expires(&self) -> Option<u32> {
        let v = self.params().get_unquoted(b"expires")?;
        if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(v.iter().fold(0u64, |a, &c| {
            (a * 10 + u64::from(c - b'0')).min(u64::from(u32::MAX))
        }) as u32)
    }
}

/// Parses a q-value (`0`, `0.5`, `1.000`) into thousandths.
pub fn parse_qvalue(v: &[u8]) -> Option<u16> {
    let (int, frac) = match v.iter().position(|&c| c == b'.') {
        Some(p) => (&v[..p], &v[p + 1..]),
        None => (v, &[][..]),
    };
    if int.len() != 1 || frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut q = match int[0] {
        b'0' => 0u16,
        b'1' => 1000,
        _ => return None,
    };
    let mut scale = 100;
    for &c in frac {
        q += u16::from(c - b'0') * scale;
        scale /= 10;
    }
    (q <= 1000).then_some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_display_and_params() {
        let n = name_addr(
            b"\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8",
        )
        .unwrap();
        assert_eq!(n.display(), Some(&b"\"J Rosenberg \\\\\\\"\""[..]));
        assert_eq!(n.uri().host(), b"example.com");
        assert_eq!(n.tag(), Some(&b"98asjd8"[..]));
    }

    #[test]
    fn token_display_without_space() {
        let n = name_addr(b"caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display(), Some(&b"caller"[..]));
        assert_eq!(n.tag(), Some(&b"323"[..]));
    }

    #[test]
    fn addr_spec_params_are_header_params() {
        let n = name_addr(b"sip:user@host;tag=1;q=0.7").unwrap();
        assert!(!n.v.bracketed);
        assert!(n.uri().params().is_empty());
        assert_eq!(n.tag(), Some(&b"1"[..]));
        assert_eq!(n.q(), Some(700));
    }

    #[test]
    fn rejects() {
        for b in [
            &b"Bell, Alexander <sip:a.g.bell@bell-tel.com>;tag=43"[..],
            b"\"Mr. J. User <sip:j.user@example.com>",
            b"<sip:j.user @ example.com>",
            b"sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            b"<sip:a@b> junk",
        ] {
            assert!(name_addr(b).is_err(), "{}", String::from_utf8_lossy(b));
        }
    }

    #[test]
    fn qvalues() {
        assert_eq!(parse_qvalue(b"0.33"), Some(330));
        assert_eq!(parse_qvalue(b"1"), Some(1000));
        assert_eq!(parse_qvalue(b"1.0"), Some(1000));
        assert_eq!(parse_qvalue(b"1.5"), None);
        assert_eq!(parse_qvalue(b"2"), None);
    }
}
