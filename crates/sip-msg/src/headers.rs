//! Typed parsers for the other headers a SIP element reads: CSeq, Content-Type and multipart
//! bodies, Expires-like numbers, digest credentials and challenges, option-tag lists, Event,
//! Subscription-State, Security-Client/Server/Verify, Date, Retry-After, Reason, Session-Expires.
//! Each takes `(buf, span)` and returns spans; bind the result with [`Bound`] for accessors.

use crate::error::{ErrorKind, Result, err};
use crate::params::{ParamMode, Params, parse_params, unquote};
use crate::scan::{
    CommaSplit, digits_end, eq_ic, is_paramval, is_token, parse_u32, quoted_end, skip_lws,
    token_end, trim,
};
use crate::span::{Bound, Span};

/// CSeq: sequence number and method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CSeq {
    /// Sequence number (RFC 3261: less than 2**31; we accept up to 2**32-1).
    pub number: u32,
    /// Method text.
    pub method: Span,
}

/// Parses a CSeq value.
pub fn parse_cseq(buf: &[u8], span: Span) -> Result<CSeq> {
    let s = trim(buf, span);
    let (start, end) = (s.lo(), s.hi());
    let d = digits_end(buf, start, end);
    if d == start {
        return err(ErrorKind::BadCSeq, start);
    }
    let number = parse_u32(buf, Span::new(start, d)).map_err(|e| crate::ParseError {
        kind: ErrorKind::BadCSeq,
        offset: e.offset,
    })?;
    let m = skip_lws(buf, d, end);
    if m == d {
        return err(ErrorKind::BadCSeq, m);
    }
    let me = token_end(buf, m, end);
    if me == m || me != end {
        return err(ErrorKind::BadCSeq, me);
    }
    Ok(CSeq {
        number,
        method: Span::new(m, me),
    })
}

impl<'a> Bound<'a, CSeq> {
    /// Sequence number.
    pub fn number(&self) -> u32 {
        self.v.number
    }
    /// Method text.
    pub fn method_bytes(&self) -> &'a [u8] {
        self.s(self.v.method)
    }
    /// Method, classified.
    pub fn method(&self) -> crate::Method {
        crate::Method::classify(self.method_bytes())
    }
}

/// A media type with parameters (Content-Type, Accept entries, multipart parts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MediaType {
    /// Type (`application`).
    pub mtype: Span,
    /// Subtype (`sdp`).
    pub subtype: Span,
    /// Parameters.
    pub params: Params,
}

/// Parses `type/subtype *(;param)`.
pub fn parse_media_type(buf: &[u8], span: Span) -> Result<MediaType> {
    let s = trim(buf, span);
    let (start, end) = (s.lo(), s.hi());
    let te = token_end(buf, start, end);
    if te == start {
        return err(ErrorKind::ExpectedToken, start);
    }
    let sl = skip_lws(buf, te, end);
    if sl >= end || buf[sl] != b'/' {
        return err(ErrorKind::ExpectedToken, sl);
    }
    let ss = skip_lws(buf, sl + 1, end);
    let se = token_end(buf, ss, end);
    if se == ss {
        return err(ErrorKind::ExpectedToken, ss);
    }
    let (params, pe) = parse_params(buf, se, end, ParamMode::Header)?;
    if skip_lws(buf, pe, end) != end {
        return err(ErrorKind::Trailing, pe);
    }
    Ok(MediaType {
        mtype: Span::new(start, te),
        subtype: Span::new(ss, se),
        params,
    })
}

impl<'a> Bound<'a, MediaType> {
    /// Type.
    pub fn mtype(&self) -> &'a [u8] {
        self.s(self.v.mtype)
    }
    /// Subtype.
    pub fn subtype(&self) -> &'a [u8] {
        self.s(self.v.subtype)
    }
    /// True when this is `t/s` (case-insensitive).
    pub fn is(&self, t: &[u8], s: &[u8]) -> bool {
        eq_ic(self.mtype(), t) && eq_ic(self.subtype(), s)
    }
    /// A parameter, unquoted.
    pub fn param(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.bind(self.v.params).get_unquoted(name)
    }
    /// The multipart boundary parameter.
    pub fn boundary(&self) -> Option<&'a [u8]> {
        self.param(b"boundary")
    }
}

/// One part of a multipart body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// The part's header section (lines before its empty line; may be empty).
    pub headers: Span,
    /// The part's body.
    pub body: Span,
}

/// Splits a multipart body (RFC 2046 §5.1) that occupies `body` of `buf`.
pub fn parse_multipart(buf: &[u8], body: Span, boundary: &[u8]) -> Result<Vec<Part>> {
    if boundary.is_empty() || boundary.len() > 70 {
        return err(ErrorKind::BadMultipart, body.lo());
    }
    let b = body.of(buf);
    let base = body.lo();
    // Delimiters: "--boundary" at the very start or after CRLF (or LF).
    let mut delims: Vec<(usize, usize)> = Vec::new(); // (start of CRLF--, after boundary)
    let mut i = 0;
    let finder = memchr::memmem::Finder::new(boundary);
    while let Some(p) = finder.find(&b[i..]) {
        let at = i + p;
        i = at + boundary.len();
        if at < 2 || &b[at - 2..at] != b"--" {
            continue;
        }
        let dash = at - 2;
        let line_start = if dash == 0 {
            Some(0)
        } else if dash >= 2 && &b[dash - 2..dash] == b"\r\n" {
            Some(dash - 2)
        } else if b[dash - 1] == b'\n' {
            Some(dash - 1)
        } else {
            None
        };
        if let Some(ls) = line_start {
            delims.push((ls, i));
        }
        if delims.len() > 1024 {
            return err(ErrorKind::BadMultipart, base + at);
        }
    }
    if delims.len() < 2 {
        return err(ErrorKind::BadMultipart, base);
    }
    let mut parts = Vec::with_capacity(delims.len() - 1);
    for w in delims.windows(2) {
        let (_, after) = w[0];
        let (next, _) = w[1];
        if b.get(after..after + 2) == Some(b"--") {
            break;
        }
        // skip transport padding and the CRLF after the delimiter
        let mut s = after;
        while s < next && matches!(b[s], b' ' | b'\t') {
            s += 1;
        }
        if b.get(s..s + 2) == Some(b"\r\n") {
            s += 2;
        } else if b.get(s) == Some(&b'\n') {
            s += 1;
        }
        let seg = &b[s..next.max(s)];
        let (h, body_start) = if seg.starts_with(b"\r\n") {
            (Span::new(base + s, base + s), s + 2)
        } else if seg.starts_with(b"\n") {
            (Span::new(base + s, base + s), s + 1)
        } else if let Some(p) = memchr::memmem::find(seg, b"\r\n\r\n") {
            (Span::new(base + s, base + s + p), s + p + 4)
        } else if let Some(p) = memchr::memmem::find(seg, b"\n\n") {
            (Span::new(base + s, base + s + p), s + p + 2)
        } else {
            (Span::new(base + s, base + next), next)
        };
        parts.push(Part {
            headers: h,
            body: Span::new(base + body_start.min(next), base + next),
        });
    }
    let last = delims[delims.len() - 1].1;
    if b.get(last..last + 2) != Some(b"--") {
        return err(ErrorKind::BadMultipart, base + last);
    }
    Ok(parts)
}

/// Finds a header (by case-insensitive name) inside a multipart part's header section.
pub fn part_header<'a>(buf: &'a [u8], part: &Part, name: &[u8]) -> Option<&'a [u8]> {
    let h = part.headers.of(buf);
    h.split(|&c| c == b'\n').find_map(|line| {
        let c = line.iter().position(|&x| x == b':')?;
        eq_ic(trim_ascii(&line[..c]), name).then(|| trim_ascii(&line[c + 1..]))
    })
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// Parses a delta-seconds value (Expires, Min-Expires, Retry-After number).
pub fn parse_delta(buf: &[u8], span: Span) -> Result<u32> {
    parse_u32(buf, trim(buf, span))
}

/// Digest (or other scheme) credentials / challenge: a scheme and its comma-separated params.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthHeader {
    /// Scheme (`Digest`).
    pub scheme: Span,
    /// The parameter list after the scheme (comma-separated `name=value`).
    pub params: Span,
}

/// Parses an Authorization / Proxy-Authorization / WWW-Authenticate / Proxy-Authenticate value.
/// Parameters are checked for `name=value` form (values are tokens or quoted strings).
pub fn parse_auth(buf: &[u8], span: Span) -> Result<AuthHeader> {
    let s = trim(buf, span);
    let (start, end) = (s.lo(), s.hi());
    let se = token_end(buf, start, end);
    if se == start {
        return err(ErrorKind::BadAuth, start);
    }
    let ps = skip_lws(buf, se, end);
    let a = AuthHeader {
        scheme: Span::new(start, se),
        params: Span::new(ps, end),
    };
    for item in CommaSplit::new(buf, a.params) {
        auth_param(buf, item)?;
    }
    Ok(a)
}

fn auth_param(buf: &[u8], item: Span) -> Result<(Span, Span)> {
    let (s, e) = (item.lo(), item.hi());
    let ne = token_end(buf, s, e);
    if ne == s {
        return err(ErrorKind::BadAuth, s);
    }
    let eq = skip_lws(buf, ne, e);
    if eq >= e || buf[eq] != b'=' {
        return err(ErrorKind::BadAuth, eq);
    }
    let v = skip_lws(buf, eq + 1, e);
    let ve = if v < e && buf[v] == b'"' {
        quoted_end(buf, v, e)?
    } else {
        let mut j = v;
        while j < e && (is_paramval(buf[j]) || buf[j] == b'=') {
            j += 1;
        }
        j
    };
    if ve == v || skip_lws(buf, ve, e) != e {
        return err(ErrorKind::BadAuth, ve);
    }
    Ok((Span::new(s, ne), Span::new(v, ve)))
}

impl<'a> Bound<'a, AuthHeader> {
    /// Scheme text.
    pub fn scheme(&self) -> &'a [u8] {
        self.s(self.v.scheme)
    }
    /// True for the Digest scheme.
    pub fn is_digest(&self) -> bool {
        eq_ic(self.scheme(), b"Digest")
    }
    /// Every `(name, raw value)` pair (quoted values keep their quotes).
    pub fn params(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let buf = self.buf;
        CommaSplit::new(buf, self.v.params)
            .filter_map(move |i| auth_param(buf, i).ok())
            .map(move |(n, v)| (n.of(buf), v.of(buf)))
    }
    /// A parameter's value with quotes removed.
    pub fn param(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.params()
            .find(|(n, _)| eq_ic(n, name))
            .map(|(_, v)| unquote(v))
    }
    /// username
    pub fn username(&self) -> Option<&'a [u8]> {
        self.param(b"username")
    }
    /// realm
    pub fn realm(&self) -> Option<&'a [u8]> {
        self.param(b"realm")
    }
    /// nonce
    pub fn nonce(&self) -> Option<&'a [u8]> {
        self.param(b"nonce")
    }
    /// uri (digest-uri)
    pub fn uri(&self) -> Option<&'a [u8]> {
        self.param(b"uri")
    }
    /// response
    pub fn response(&self) -> Option<&'a [u8]> {
        self.param(b"response")
    }
    /// algorithm
    pub fn algorithm(&self) -> Option<&'a [u8]> {
        self.param(b"algorithm")
    }
    /// cnonce
    pub fn cnonce(&self) -> Option<&'a [u8]> {
        self.param(b"cnonce")
    }
    /// opaque
    pub fn opaque(&self) -> Option<&'a [u8]> {
        self.param(b"opaque")
    }
    /// qop (a single value in credentials, a list in challenges)
    pub fn qop(&self) -> Option<&'a [u8]> {
        self.param(b"qop")
    }
    /// nc (nonce count)
    pub fn nc(&self) -> Option<&'a [u8]> {
        self.param(b"nc")
    }
    /// stale (challenges)
    pub fn stale(&self) -> bool {
        self.param(b"stale").is_some_and(|v| eq_ic(v, b"true"))
    }
}

/// Iterates over the option tags of a Supported / Require / Proxy-Require / Unsupported / Allow
/// value (comma-separated tokens). Non-token elements are skipped.
pub fn option_tags(buf: &[u8], span: Span) -> impl Iterator<Item = &[u8]> + '_ {
    CommaSplit::new(buf, span)
        .map(move |s| s.of(buf))
        .filter(|t| !t.is_empty() && t.iter().all(|&c| is_token(c)))
}

/// A token with parameters: Event, Subscription-State, Security-* mechanisms, Reason protocols,
/// Session-Expires, Retry-After.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenParams {
    /// The leading token (or number).
    pub token: Span,
    /// The parameters.
    pub params: Params,
}

/// Parses `token *(;param)` where a parenthesised comment may follow the token (Retry-After).
pub fn parse_token_params(buf: &[u8], span: Span) -> Result<TokenParams> {
    let s = trim(buf, span);
    let (start, end) = (s.lo(), s.hi());
    let te = token_end(buf, start, end);
    if te == start {
        return err(ErrorKind::ExpectedToken, start);
    }
    let mut p = skip_lws(buf, te, end);
    if p < end && buf[p] == b'(' {
        let mut depth = 0usize;
        while p < end {
            match buf[p] {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        p += 1;
                        break;
                    }
                }
                _ => {}
            }
            p += 1;
        }
        if depth != 0 {
            return err(ErrorKind::Trailing, p);
        }
    }
    let (params, pe) = parse_params(buf, p, end, ParamMode::Header)?;
    if skip_lws(buf, pe, end) != end {
        return err(ErrorKind::Trailing, pe);
    }
    Ok(TokenParams {
        token: Span::new(start, te),
        params,
    })
}

impl<'a> Bound<'a, TokenParams> {
    /// The token.
    pub fn token(&self) -> &'a [u8] {
        self.s(self.v.token)
    }
    /// Parameters.
    pub fn params(&self) -> Bound<'a, Params> {
        self.bind(self.v.params)
    }
    /// A parameter, unquoted.
    pub fn param(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.params().get_unquoted(name)
    }
    /// The token as a number (Retry-After, Session-Expires).
    pub fn number(&self) -> Option<u32> {
        parse_u32(self.buf, self.v.token).ok()
    }
}

/// Parses every element of a comma-separated list of `token *(;param)` (Security-Client/Server/
/// Verify, Reason).
pub fn token_params_list(
    buf: &[u8],
    span: Span,
) -> impl Iterator<Item = Result<Bound<'_, TokenParams>>> + '_ {
    CommaSplit::new(buf, span).map(move |s| parse_token_params(buf, s).map(|v| Bound::new(buf, v)))
}

/// An RFC 1123 date in GMT, as the Date header carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipDate {
    /// Year.
    pub year: u16,
    /// Month 1..=12.
    pub month: u8,
    /// Day 1..=31.
    pub day: u8,
    /// Hour.
    pub hour: u8,
    /// Minute.
    pub minute: u8,
    /// Second.
    pub second: u8,
}

/// Parses `Sat, 13 Nov 2010 23:29:00 GMT`.
pub fn parse_date(buf: &[u8], span: Span) -> Result<SipDate> {
    let s = trim(buf, span);
    let b = s.of(buf);
    let bad = || err(ErrorKind::BadDate, s.lo());
    let words: Vec<&[u8]> = b.split(|&c| c == b' ').filter(|w| !w.is_empty()).collect();
    let [wkday, day, mon, year, time, zone] = words.as_slice() else {
        return bad();
    };
    const WK: [&[u8]; 7] = [
        b"Mon,", b"Tue,", b"Wed,", b"Thu,", b"Fri,", b"Sat,", b"Sun,",
    ];
    const MON: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    if !WK.contains(wkday) || *zone != b"GMT" {
        return bad();
    }
    let Some(m) = MON.iter().position(|x| x == mon) else {
        return bad();
    };
    let num = |w: &[u8], n: usize| -> Option<u16> {
        (w.len() == n && w.iter().all(u8::is_ascii_digit))
            .then(|| w.iter().fold(0u16, |a, &c| a * 10 + u16::from(c - b'0')))
    };
    let t: Vec<&[u8]> = time.split(|&c| c == b':').collect();
    let (Some(d), Some(y), [h, mi, se]) = (
        num(day, 2).or_else(|| num(day, 1)),
        num(year, 4),
        t.as_slice(),
    ) else {
        return bad();
    };
    let (Some(h), Some(mi), Some(se)) = (num(h, 2), num(mi, 2), num(se, 2)) else {
        return bad();
    };
    if d == 0 || d > 31 || h > 23 || mi > 59 || se > 60 {
        return bad();
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok(SipDate {
        year: y,
        month: m as u8 + 1,
        day: d as u8,
        hour: h as u8,
        minute: mi as u8,
        second: se as u8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(b: &[u8]) -> Span {
        Span::new(0, b.len())
    }

    #[test]
    fn cseq_forms() {
        let b = b"0009\r\n  INVITE";
        let c = parse_cseq(b, sp(b)).unwrap();
        assert_eq!(c.number, 9);
        assert_eq!(c.method.of(b), b"INVITE");
        let b = b"36893488147419103232 INVITE";
        assert_eq!(parse_cseq(b, sp(b)).unwrap_err().kind, ErrorKind::BadCSeq);
        let b = b"1";
        assert!(parse_cseq(b, sp(b)).is_err());
    }

    #[test]
    fn digest_credentials() {
        let b = br#"Digest username="bob", realm="biloxi.com", nonce="dcd98b", uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae4", opaque="5ccc""#;
        let a = Bound::new(&b[..], parse_auth(b, sp(b)).unwrap());
        assert!(a.is_digest());
        assert_eq!(a.username(), Some(&b"bob"[..]));
        assert_eq!(a.uri(), Some(&b"sip:bob@biloxi.com"[..]));
        assert_eq!(a.qop(), Some(&b"auth"[..]));
        assert_eq!(a.nc(), Some(&b"00000001"[..]));
        let b = b"Digest username=";
        assert!(parse_auth(b, sp(b)).is_err());
    }

    #[test]
    fn security_client_list() {
        let b = b"ipsec-3gpp; alg=hmac-sha-1-96; spi-c=1111; spi-s=2222; port-c=5062; port-s=5064, digest";
        let v: Vec<_> = token_params_list(b, sp(b)).map(|r| r.unwrap()).collect();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].token(), b"ipsec-3gpp");
        assert_eq!(v[0].param(b"spi-s"), Some(&b"2222"[..]));
        assert_eq!(v[1].token(), b"digest");
    }

    #[test]
    fn retry_after_with_comment() {
        let b = b"18000 (out to lunch) ;duration=3600";
        let r = Bound::new(&b[..], parse_token_params(b, sp(b)).unwrap());
        assert_eq!(r.number(), Some(18000));
        assert_eq!(r.param(b"duration"), Some(&b"3600"[..]));
    }

    #[test]
    fn dates() {
        let b = b"Sat, 13 Nov 2010 23:29:00 GMT";
        let d = parse_date(b, sp(b)).unwrap();
        assert_eq!((d.year, d.month, d.day, d.hour), (2010, 11, 13, 23));
        let b = b"Fri, 01 Jan 2010 16:00:00 EST";
        assert_eq!(parse_date(b, sp(b)).unwrap_err().kind, ErrorKind::BadDate);
    }

    #[test]
    fn media_type() {
        let b = b"multipart/mixed;boundary=\"unique-boundary-1\"";
        let m = Bound::new(&b[..], parse_media_type(b, sp(b)).unwrap());
        assert!(m.is(b"MULTIPART", b"mixed"));
        assert_eq!(m.boundary(), Some(&b"unique-boundary-1"[..]));
    }

    #[test]
    fn multipart_split() {
        let b = b"--xx\r\nContent-Type: text/plain\r\n\r\nhello\r\n--xx\r\n\r\nworld\r\n--xx--\r\n";
        let parts = parse_multipart(b, sp(b), b"xx").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].body.of(b), b"hello");
        assert_eq!(
            part_header(b, &parts[0], b"content-type"),
            Some(&b"text/plain"[..])
        );
        assert_eq!(parts[1].body.of(b), b"world");
        assert!(parse_multipart(b"--xx\r\nno end", Span::new(0, 12), b"xx").is_err());
    }
}
