//! SIP, SIPS and TEL URIs (RFC 3261 §19.1, RFC 3966), other schemes kept opaque, and the
//! RFC 3261 §19.1.4 comparison rules.

use crate::error::{ErrorKind, Result, err};
use crate::params::{ParamMode, Params, parse_params};
use crate::scan::{Unescape, digits_end, eq_ic, is_hex, is_host, is_uric, is_userinfo};
use crate::span::{Bound, Span};

/// URI scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[derive(Default)]
pub enum Scheme {
    /// `sip:`
    #[default]
    Sip,
    /// `sips:`
    Sips,
    /// `tel:`
    Tel,
    /// Any other scheme; the rest of the URI is kept opaque.
    Other,
}

impl Scheme {
    /// The default port for the scheme (5060 for sip, 5061 for sips).
    pub const fn default_port(self) -> Option<u16> {
        match self {
            Self::Sip => Some(5060),
            Self::Sips => Some(5061),
            _ => None,
        }
    }
}

/// What kind of host a URI or Via names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HostKind {
    /// A DNS name.
    #[default]
    Name,
    /// A dotted-quad IPv4 address.
    Ipv4,
    /// A bracketed IPv6 reference (the span includes the brackets).
    Ipv6,
}

/// A parsed URI, as spans into the buffer it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Uri {
    /// The whole URI.
    pub span: Span,
    /// The scheme.
    pub scheme: Scheme,
    /// The scheme's text (without the colon).
    pub scheme_span: Span,
    /// User part (SIP/SIPS), or the telephone number (TEL).
    pub user: Option<Span>,
    /// Password (SIP/SIPS).
    pub password: Option<Span>,
    /// Host, IPv6 references with their brackets; empty for TEL and other schemes.
    pub host: Span,
    /// Kind of host.
    pub host_kind: HostKind,
    /// Port, if given.
    pub port: Option<u16>,
    /// Port text, if given.
    pub port_span: Option<Span>,
    /// URI parameters.
    pub params: Params,
    /// Headers component after `?` (without the `?`).
    pub headers: Option<Span>,
    /// For other schemes: everything after the colon.
    pub opaque: Span,
}

/// Checks a dotted-quad IPv4 address.
pub fn is_ipv4(b: &[u8]) -> bool {
    let mut parts = 0;
    for part in b.split(|&c| c == b'.') {
        parts += 1;
        if part.is_empty() || part.len() > 3 || !part.iter().all(u8::is_ascii_digit) {
            return false;
        }
        let v = part.iter().fold(0u32, |a, &c| a * 10 + u32::from(c - b'0'));
        if v > 255 {
            return false;
        }
    }
    parts == 4
}

/// Checks the inside of an IPv6 reference (without brackets). Lenient as RFC 5118 §4.10 asks:
/// hex groups, colons (at least two) and an optional dotted IPv4 tail.
pub fn is_ipv6(b: &[u8]) -> bool {
    if b.len() < 2 || b.len() > 45 {
        return false;
    }
    let colons = b.iter().filter(|&&c| c == b':').count();
    if colons < 2 {
        return false;
    }
    let tail = b
        .iter()
        .rposition(|&c| c == b':')
        .map_or(b, |p| &b[p + 1..]);
    if tail.contains(&b'.') {
        if !is_ipv4(tail) {
            return false;
        }
        let head = &b[..b.len() - tail.len()];
        return head.iter().all(|&c| is_hex(c) || c == b':');
    }
    b.iter().all(|&c| is_hex(c) || c == b':')
}

/// Parses a host (`name`, `1.2.3.4`, `[v6]`) starting at `i`; returns the span, kind and end.
pub(crate) fn parse_host(buf: &[u8], i: usize, end: usize) -> Result<(Span, HostKind, usize)> {
    if i < end && buf[i] == b'[' {
        let Some(close) = buf[i..end].iter().position(|&c| c == b']') else {
            return err(ErrorKind::BadHost, i);
        };
        let close = i + close;
        if !is_ipv6(&buf[i + 1..close]) {
            return err(ErrorKind::BadHost, i + 1);
        }
        return Ok((Span::new(i, close + 1), HostKind::Ipv6, close + 1));
    }
    let mut j = i;
    while j < end && is_host(buf[j]) {
        j += 1;
    }
    if j == i {
        return err(ErrorKind::BadHost, i);
    }
    let h = &buf[i..j];
    let kind = if h.iter().all(|&c| c.is_ascii_digit() || c == b'.') {
        if !is_ipv4(h) {
            return err(ErrorKind::BadHost, i);
        }
        HostKind::Ipv4
    } else {
        HostKind::Name
    };
    Ok((Span::new(i, j), kind, j))
}

/// Parses `:port` at `i` if present. Returns (port, span, end).
pub(crate) fn parse_port(
    buf: &[u8],
    i: usize,
    end: usize,
) -> Result<(Option<u16>, Option<Span>, usize)> {
    if i >= end || buf[i] != b':' {
        return Ok((None, None, i));
    }
    let d = digits_end(buf, i + 1, end);
    if d == i + 1 || d - (i + 1) > 5 {
        return err(ErrorKind::BadPort, i + 1);
    }
    let v = buf[i + 1..d]
        .iter()
        .fold(0u32, |a, &c| a * 10 + u32::from(c - b'0'));
    let Ok(port) = u16::try_from(v) else {
        return err(ErrorKind::BadPort, i + 1);
    };
    Ok((Some(port), Some(Span::new(i + 1, d)), d))
}

/// Parses the URI that spans exactly `span` of `buf`.
pub fn parse_uri(buf: &[u8], span: Span) -> Result<Uri> {
    let (start, end) = (span.lo(), span.hi().min(buf.len()));
    let Some(colon) = buf[start..end].iter().position(|&c| c == b':') else {
        return err(ErrorKind::BadUri, start);
    };
    let colon = start + colon;
    let sch = &buf[start..colon];
    if sch.is_empty()
        || !sch[0].is_ascii_alphabetic()
        || !sch
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
    {
        return err(ErrorKind::BadUri, start);
    }
    let scheme = if eq_ic(sch, b"sip") {
        Scheme::Sip
    } else if eq_ic(sch, b"sips") {
        Scheme::Sips
    } else if eq_ic(sch, b"tel") {
        Scheme::Tel
    } else {
        Scheme::Other
    };
    let mut u = Uri {
        span: Span::new(start, end),
        scheme,
        scheme_span: Span::new(start, colon),
        opaque: Span::new(colon + 1, end),
        ..Uri::default()
    };
    let p = colon + 1;
    match scheme {
        Scheme::Other => {
            if p >= end || !buf[p..end].iter().all(|&c| is_uric(c)) {
                return err(ErrorKind::BadUri, p);
            }
            Ok(u)
        }
        Scheme::Tel => {
            let mut j = p;
            while j < end
                && (is_hex(buf[j])
                    || matches!(buf[j], b'+' | b'-' | b'.' | b'(' | b')' | b'*' | b'#'))
            {
                j += 1;
            }
            if j == p {
                return err(ErrorKind::BadUri, p);
            }
            u.user = Some(Span::new(p, j));
            let (params, after) = parse_params(buf, j, end, ParamMode::Uri)?;
            if after != end {
                return err(ErrorKind::BadUri, after);
            }
            u.params = params;
            Ok(u)
        }
        Scheme::Sip | Scheme::Sips => {
            let mut h = p;
            // userinfo: everything up to an '@' made only of userinfo characters
            let mut j = p;
            while j < end && is_userinfo(buf[j]) {
                j += 1;
            }
            if j < end && buf[j] == b'@' {
                let ui = &buf[p..j];
                match ui.iter().position(|&c| c == b':') {
                    Some(k) => {
                        u.user = Some(Span::new(p, p + k));
                        u.password = Some(Span::new(p + k + 1, j));
                    }
                    None => u.user = Some(Span::new(p, j)),
                }
                h = j + 1;
            }
            let (host, kind, after) = parse_host(buf, h, end)?;
            u.host = host;
            u.host_kind = kind;
            let (port, port_span, after) = parse_port(buf, after, end)?;
            u.port = port;
            u.port_span = port_span;
            let (params, after) = parse_params(buf, after, end, ParamMode::Uri)?;
            u.params = params;
            if after < end && buf[after] == b'?' {
                let hs = after + 1;
                if hs >= end || !buf[hs..end].iter().all(|&c| is_uric(c)) {
                    return err(ErrorKind::BadUri, hs);
                }
                u.headers = Some(Span::new(hs, end));
                return Ok(u);
            }
            if after != end {
                return err(ErrorKind::BadUri, after);
            }
            Ok(u)
        }
    }
}

/// Parses a standalone URI string.
pub fn uri(buf: &[u8]) -> Result<Bound<'_, Uri>> {
    parse_uri(buf, Span::new(0, buf.len())).map(|u| Bound::new(buf, u))
}

impl<'a> Bound<'a, Uri> {
    /// The whole URI text.
    pub fn raw(&self) -> &'a [u8] {
        self.s(self.v.span)
    }
    /// Scheme text.
    pub fn scheme_str(&self) -> &'a [u8] {
        self.s(self.v.scheme_span)
    }
    /// User part (raw, still %-escaped).
    pub fn user(&self) -> Option<&'a [u8]> {
        self.opt(self.v.user)
    }
    /// Password.
    pub fn password(&self) -> Option<&'a [u8]> {
        self.opt(self.v.password)
    }
    /// Host text (IPv6 with brackets).
    pub fn host(&self) -> &'a [u8] {
        self.s(self.v.host)
    }
    /// Explicit port.
    pub fn port(&self) -> Option<u16> {
        self.v.port
    }
    /// Port to use when none is given: explicit, else the scheme default.
    pub fn port_or_default(&self) -> Option<u16> {
        self.v.port.or_else(|| self.v.scheme.default_port())
    }
    /// URI parameters.
    pub fn params(&self) -> Bound<'a, Params> {
        self.bind(self.v.params)
    }
    /// A URI parameter by name.
    pub fn param(&self, name: &[u8]) -> Option<Option<&'a [u8]>> {
        self.params().get(name)
    }
    /// Headers component (after `?`).
    pub fn headers(&self) -> Option<&'a [u8]> {
        self.opt(self.v.headers)
    }
    /// The `transport` parameter.
    pub fn transport(&self) -> Option<&'a [u8]> {
        self.param(b"transport").flatten()
    }
    /// True when the URI has the `lr` parameter (loose routing).
    pub fn is_lr(&self) -> bool {
        self.params().has(b"lr")
    }

    /// RFC 3261 §19.1.4 equality.
    pub fn equals(&self, other: &Bound<'_, Uri>) -> bool {
        uri_eq(self, other)
    }
}

fn esc_eq(a: &[u8], b: &[u8], ci: bool) -> bool {
    let mut x = Unescape::new(a);
    let mut y = Unescape::new(b);
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) => {
                let same = if ci {
                    p.eq_ignore_ascii_case(&q)
                } else {
                    p == q
                };
                if !same {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

fn opt_esc_eq(a: Option<&[u8]>, b: Option<&[u8]>, ci: bool) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => esc_eq(a, b, ci),
        _ => false,
    }
}

const SPECIAL_PARAMS: [&[u8]; 5] = [b"transport", b"user", b"ttl", b"method", b"maddr"];

/// RFC 3261 §19.1.4: compares two URIs.
pub fn uri_eq(a: &Bound<'_, Uri>, b: &Bound<'_, Uri>) -> bool {
    if a.v.scheme != b.v.scheme {
        return false;
    }
    match a.v.scheme {
        Scheme::Other => {
            return eq_ic(a.scheme_str(), b.scheme_str())
                && esc_eq(a.s(a.v.opaque), b.s(b.v.opaque), false);
        }
        Scheme::Tel => {
            fn digits(s: &[u8]) -> impl Iterator<Item = u8> + '_ {
                s.iter()
                    .copied()
                    .filter(|c| !matches!(c, b'-' | b'.' | b'(' | b')'))
                    .map(|c| c.to_ascii_lowercase())
            }
            let (x, y) = (a.user().unwrap_or(&[]), b.user().unwrap_or(&[]));
            if !digits(x).eq(digits(y)) {
                return false;
            }
            return params_eq(a, b, &[]);
        }
        Scheme::Sip | Scheme::Sips => {}
    }
    if !opt_esc_eq(a.user(), b.user(), false) || !opt_esc_eq(a.password(), b.password(), false) {
        return false;
    }
    if !esc_eq(a.host(), b.host(), true) || a.port() != b.port() {
        return false;
    }
    if !params_eq(a, b, &SPECIAL_PARAMS) {
        return false;
    }
    headers_eq(a.headers(), b.headers())
}

fn params_eq(a: &Bound<'_, Uri>, b: &Bound<'_, Uri>, must_match: &[&[u8]]) -> bool {
    let (pa, pb) = (a.params(), b.params());
    for name in must_match {
        match (pa.get(name), pb.get(name)) {
            (None, None) => {}
            (Some(x), Some(y)) => {
                if !opt_esc_eq(x, y, true) {
                    return false;
                }
            }
            _ => return false,
        }
    }
    for p in pa.iter() {
        let n = p.name.of(pa.buf);
        if let Some(y) = pb.iter().find(|q| esc_eq(q.name.of(pb.buf), n, true))
            && !opt_esc_eq(pa.opt(p.value), pb.opt(y.value), true)
        {
            return false;
        }
    }
    true
}

fn headers_eq(a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
    let (a, b) = (a.unwrap_or(&[]), b.unwrap_or(&[]));
    let split = |h: &[u8]| -> Vec<(Vec<u8>, Vec<u8>)> {
        h.split(|&c| c == b'&')
            .filter(|x| !x.is_empty())
            .map(|kv| {
                let (k, v) = match kv.iter().position(|&c| c == b'=') {
                    Some(p) => (&kv[..p], &kv[p + 1..]),
                    None => (kv, &[][..]),
                };
                (
                    Unescape::new(k).map(|c| c.to_ascii_lowercase()).collect(),
                    Unescape::new(v).collect(),
                )
            })
            .collect()
    };
    let (mut x, mut y) = (split(a), split(b));
    x.sort();
    y.sort();
    x == y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_sip_uri() {
        let u =
            uri(b"sips:alice:secret@[2001:db8::1]:5071;transport=tcp;lr?Subject=hi&x=y").unwrap();
        assert_eq!(u.v.scheme, Scheme::Sips);
        assert_eq!(u.user(), Some(&b"alice"[..]));
        assert_eq!(u.password(), Some(&b"secret"[..]));
        assert_eq!(u.host(), b"[2001:db8::1]");
        assert_eq!(u.v.host_kind, HostKind::Ipv6);
        assert_eq!(u.port(), Some(5071));
        assert_eq!(u.transport(), Some(&b"tcp"[..]));
        assert!(u.is_lr());
        assert_eq!(u.headers(), Some(&b"Subject=hi&x=y"[..]));
    }

    #[test]
    fn user_with_semicolons() {
        let u = uri(b"sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user(), Some(&b"user;par=u%40example.net"[..]));
        assert_eq!(u.host(), b"example.com");
    }

    #[test]
    fn bad_uris() {
        for b in [
            &b"sip:user@2001:db8::10"[..],
            b"sip:user@example.com:99999",
            b"sip:us er@example.com",
            b"sip:",
            b"nocolon",
            b"sip:a@b;=x",
            b"sip:a@300.1.1.1",
        ] {
            assert!(uri(b).is_err(), "{}", String::from_utf8_lossy(b));
        }
    }

    #[test]
    fn tel_and_other() {
        let u = uri(b"tel:+1-201-555-0123;phone-context=example.com").unwrap();
        assert_eq!(u.v.scheme, Scheme::Tel);
        assert_eq!(u.user(), Some(&b"+1-201-555-0123"[..]));
        assert_eq!(u.param(b"phone-context"), Some(Some(&b"example.com"[..])));
        let u = uri(b"nobodyKnowsThisScheme:totallyopaquecontent").unwrap();
        assert_eq!(u.v.scheme, Scheme::Other);
    }

    // RFC 3261 §19.1.4 examples.
    #[test]
    fn rfc3261_equal_examples() {
        let pairs: [(&[u8], &[u8]); 5] = [
            (
                b"sip:%61lice@atlanta.com;transport=TCP",
                b"sip:alice@AtLanTa.CoM;Transport=tcp",
            ),
            (
                b"sip:carol@chicago.com",
                b"sip:carol@chicago.com;newparam=5",
            ),
            (
                b"sip:carol@chicago.com;security=on",
                b"sip:carol@chicago.com;newparam=5",
            ),
            (
                b"sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
                b"sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
            ),
            (
                b"sip:alice@atlanta.com?subject=project%20x&priority=urgent",
                b"sip:alice@atlanta.com?priority=urgent&subject=project%20x",
            ),
        ];
        for (a, b) in pairs {
            assert!(
                uri(a).unwrap().equals(&uri(b).unwrap()),
                "{:?}",
                String::from_utf8_lossy(a)
            );
        }
    }

    #[test]
    fn rfc3261_unequal_examples() {
        let pairs: [(&[u8], &[u8]); 6] = [
            (
                b"SIP:ALICE@AtLanTa.CoM;Transport=udp",
                b"sip:alice@AtLanTa.CoM;Transport=UDP",
            ),
            (b"sip:bob@biloxi.com", b"sip:bob@biloxi.com:5060"),
            (b"sip:bob@biloxi.com", b"sip:bob@biloxi.com;transport=udp"),
            (
                b"sip:bob@biloxi.com",
                b"sip:bob@biloxi.com:6000;transport=tcp",
            ),
            (
                b"sip:carol@chicago.com",
                b"sip:carol@chicago.com?Subject=next%20meeting",
            ),
            (b"sip:bob@phone21.boxesbybob.com", b"sip:bob@192.0.2.4"),
        ];
        for (a, b) in pairs {
            assert!(
                !uri(a).unwrap().equals(&uri(b).unwrap()),
                "{:?}",
                String::from_utf8_lossy(a)
            );
        }
        // Not transitive: both equal the middle one, but not each other.
        let a = uri(b"sip:carol@chicago.com;security=on").unwrap();
        let c = uri(b"sip:carol@chicago.com;security=off").unwrap();
        assert!(!a.equals(&c));
    }

    #[test]
    fn ipv6_forms() {
        assert!(is_ipv6(b"2001:db8::10"));
        assert!(is_ipv6(b"::ffff:192.0.2.2"));
        assert!(is_ipv6(b"2001:db8:::192.0.2.1"));
        assert!(!is_ipv6(b"2001"));
        assert!(!is_ipv6(b"::ffff:192.0.2.256"));
    }
}
