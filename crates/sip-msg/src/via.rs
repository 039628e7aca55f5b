//! Via header values (RFC 3261 §20.42, RFC 3581 rport, RFC 5118 IPv6 forms).

use crate::error::{ErrorKind, Result, err};
use crate::params::{ParamMode, Params, parse_params};
use crate::scan::{eq_ic, skip_lws, token_end, trim};
use crate::span::{Bound, Span};
use crate::uri::{HostKind, parse_host, parse_port};

/// The RFC 3261 branch magic cookie.
pub const MAGIC_COOKIE: &[u8] = b"z9hG4bK";

/// Transport named in a Via.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Transport {
    /// UDP
    #[default]
    Udp,
    /// TCP
    Tcp,
    /// TLS
    Tls,
    /// SCTP
    Sctp,
    /// TLS over SCTP
    TlsSctp,
    /// WebSocket
    Ws,
    /// Secure WebSocket
    Wss,
    /// Anything else.
    Other,
}

impl Transport {
    /// Classifies a transport token.
    pub fn classify(t: &[u8]) -> Self {
        if eq_ic(t, b"udp") {
            Self::Udp
        } else if eq_ic(t, b"tcp") {
            Self::Tcp
        } else if eq_ic(t, b"tls") {
            Self::Tls
        } else if eq_ic(t, b"sctp") {
            Self::Sctp
        } else if eq_ic(t, b"tls-sctp") {
            Self::TlsSctp
        } else if eq_ic(t, b"ws") {
            Self::Ws
        } else if eq_ic(t, b"wss") {
            Self::Wss
        } else {
            Self::Other
        }
    }

    /// Upper-case name as written in a Via.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
            Self::Sctp => "SCTP",
            Self::TlsSctp => "TLS-SCTP",
            Self::Ws => "WS",
            Self::Wss => "WSS",
            Self::Other => "OTHER",
        }
    }

    /// True for connection-oriented transports.
    pub const fn is_stream(self) -> bool {
        !matches!(self, Self::Udp | Self::Other)
    }
}

/// One Via value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Via {
    /// The whole value.
    pub span: Span,
    /// Protocol name (`SIP`).
    pub proto_name: Span,
    /// Protocol version (`2.0`).
    pub proto_version: Span,
    /// Transport.
    pub transport: Transport,
    /// Transport text.
    pub transport_span: Span,
    /// sent-by host (IPv6 with brackets).
    pub host: Span,
    /// Kind of host.
    pub host_kind: HostKind,
    /// sent-by port.
    pub port: Option<u16>,
    /// All parameters.
    pub params: Params,
    /// `branch` value.
    pub branch: Option<Span>,
    /// `received` value.
    pub received: Option<Span>,
    /// `rport` present (value may be empty).
    pub rport: Option<Option<Span>>,
    /// `maddr` value.
    pub maddr: Option<Span>,
    /// `ttl` value.
    pub ttl: Option<Span>,
    /// `alias` present (RFC 5923).
    pub alias: bool,
}

fn slash(buf: &[u8], i: usize, end: usize) -> Result<usize> {
    let i = skip_lws(buf, i, end);
    if i >= end || buf[i] != b'/' {
        return err(ErrorKind::BadVia, i);
    }
    Ok(skip_lws(buf, i + 1, end))
}

/// Parses one Via value spanning `span` (after trimming).
pub fn parse_via(buf: &[u8], span: Span) -> Result<Via> {
    let s = trim(buf, span);
    let (start, end) = (s.lo(), s.hi().min(buf.len()));
    let mut v = Via {
        span: s,
        ..Via::default()
    };
    let ne = token_end(buf, start, end);
    if ne == start {
        return err(ErrorKind::BadVia, start);
    }
    v.proto_name = Span::new(start, ne);
    let p = slash(buf, ne, end)?;
    let ve = token_end(buf, p, end);
    if ve == p {
        return err(ErrorKind::BadVia, p);
    }
    v.proto_version = Span::new(p, ve);
    let p = slash(buf, ve, end)?;
    let te = token_end(buf, p, end);
    if te == p {
        return err(ErrorKind::BadVia, p);
    }
    v.transport_span = Span::new(p, te);
    v.transport = Transport::classify(&buf[p..te]);
    let p = skip_lws(buf, te, end);
    if p == te {
        return err(ErrorKind::BadVia, p);
    }
    let (host, kind, after) = parse_host(buf, p, end)?;
    v.host = host;
    v.host_kind = kind;
    let after = skip_lws(buf, after, end);
    let (port, _, after) = parse_port(buf, after, end)?;
    v.port = port;
    let (params, pend) = parse_params(buf, after, end, ParamMode::Header)?;
    v.params = params;
    let mut rest = skip_lws(buf, pend, end);
    // A trailing comment "( ... )" is allowed by RFC 3261's grammar.
    if rest < end && buf[rest] == b'(' {
        rest = end;
    }
    if rest != end {
        return err(ErrorKind::Trailing, rest);
    }
    for prm in Bound::new(buf, params).iter() {
        let n = prm.name.of(buf);
        if eq_ic(n, b"branch") {
            v.branch = prm.value;
        } else if eq_ic(n, b"received") {
            v.received = prm.value;
        } else if eq_ic(n, b"rport") {
            v.rport = Some(prm.value);
        } else if eq_ic(n, b"maddr") {
            v.maddr = prm.value;
        } else if eq_ic(n, b"ttl") {
            v.ttl = prm.value;
        } else if eq_ic(n, b"alias") {
            v.alias = true;
        }
    }
    Ok(v)
}

/// Parses a standalone Via value.
pub fn via(buf: &[u8]) -> Result<Bound<'_, Via>> {
    parse_via(buf, Span::new(0, buf.len())).map(|v| Bound::new(buf, v))
}

impl<'a> Bound<'a, Via> {
    /// sent-by host.
    pub fn host(&self) -> &'a [u8] {
        self.s(self.v.host)
    }
    /// sent-by port.
    pub fn port(&self) -> Option<u16> {
        self.v.port
    }
    /// Transport.
    pub fn transport(&self) -> Transport {
        self.v.transport
    }
    /// branch parameter.
    pub fn branch(&self) -> Option<&'a [u8]> {
        self.opt(self.v.branch)
    }
    /// received parameter.
    pub fn received(&self) -> Option<&'a [u8]> {
        self.opt(self.v.received)
    }
    /// rport parameter: `None` absent, `Some(None)` present without value.
    pub fn rport(&self) -> Option<Option<&'a [u8]>> {
        self.v.rport.map(|r| self.opt(r))
    }
    /// maddr parameter.
    pub fn maddr(&self) -> Option<&'a [u8]> {
        self.opt(self.v.maddr)
    }
    /// ttl parameter.
    pub fn ttl(&self) -> Option<&'a [u8]> {
        self.opt(self.v.ttl)
    }
    /// All parameters.
    pub fn params(&self) -> Bound<'a, Params> {
        self.bind(self.v.params)
    }
    /// True when the branch starts with the RFC 3261 magic cookie and carries more than it
    /// (so RFC 3261 transaction matching applies; otherwise RFC 2543 matching).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE))
    }
    /// True when a reply must never be sent to this Via's sent-by (or maddr): the IPv4
    /// broadcast or unspecified address (RFC 4475 §3.3.10).
    pub fn is_unsafe_reply_target(&self) -> bool {
        let h = self.maddr().unwrap_or_else(|| self.host());
        matches!(h, b"255.255.255.255" | b"0.0.0.0" | b"[::]")
    }
    /// The whole value as written.
    pub fn raw(&self) -> &'a [u8] {
        self.s(self.v.span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_via() {
        let b = b"SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw";
        let v = via(b).unwrap();
        assert_eq!(v.transport(), Transport::Udp);
        assert_eq!(v.host(), b"192.0.2.2");
        assert_eq!(v.branch(), Some(&b"390skdjuw"[..]));
        assert!(!v.has_rfc3261_branch());
    }

    #[test]
    fn ipv6_received_forms() {
        let v =
            via(b"SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3-111")
                .unwrap();
        assert_eq!(v.received(), Some(&b"[2001:db8::9:255]"[..]));
        let v = via(b"SIP/2.0/UDP [2001:db8::9:1]:5070;received=2001:db8::9:255;rport").unwrap();
        assert_eq!(v.received(), Some(&b"2001:db8::9:255"[..]));
        assert_eq!(v.port(), Some(5070));
        assert_eq!(v.rport(), Some(None));
    }

    #[test]
    fn bad_vias() {
        for b in [
            &b"SIP/2.0 host"[..],
            b"SIP/2.0/UDP",
            b"SIP/2.0/UDP host:x",
            b"SIP/2.0/UDP host junk",
        ] {
            assert!(via(b).is_err(), "{}", String::from_utf8_lossy(b));
        }
    }
}
