//! `sipox-proxy` owns the pure decisions of a SIP proxy core: where a request goes next (RFC 3261
//! §16.6 and the address part of RFC 3263 without DNS), where a response goes (§18.2.2 with
//! RFC 3581 rport), the stateless branch id (§16.11), and the Via we add. It performs no I/O and
//! no DNS: a name that needs resolving is returned as such for the resolver to handle.

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use sipox_sip_msg::{Bound, HostKind, MAGIC_COOKIE, Scheme, SipMsg, Transport, Uri, Via, eq_ic};
use thiserror::Error;

/// A host to send to: an address already, or a name for the resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An IP literal.
    Ip(IpAddr),
    /// A DNS name (lower-case).
    Name(String),
}

/// Where to send a request (before DNS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Transport (from `transport=`, or TLS for sips, else UDP unless the resolver picks).
    pub transport: Transport,
    /// True when the transport was given explicitly (no NAPTR lookup then, RFC 3263 §4.1).
    pub transport_explicit: bool,
    /// Host.
    pub host: Host,
    /// Port, when given (no SRV lookup then, RFC 3263 §4.2).
    pub port: Option<u16>,
}

impl Target {
    /// The socket address, when the host is an IP literal (default port by transport).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match &self.host {
            Host::Ip(ip) => Some(SocketAddr::new(
                *ip,
                self.port.unwrap_or_else(|| default_port(self.transport)),
            )),
            Host::Name(_) => None,
        }
    }
}

/// Why a next hop cannot be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The URI scheme cannot be routed by a SIP proxy (tel:, unknown schemes).
    #[error("URI scheme cannot be routed")]
    Scheme,
    /// The host is not a valid IP or name.
    #[error("bad host")]
    Host,
}

/// 5061 for TLS/WSS, else 5060.
pub const fn default_port(t: Transport) -> u16 {
    match t {
        Transport::Tls | Transport::Wss | Transport::TlsSctp => 5061,
        _ => 5060,
    }
}

fn host_of(kind: HostKind, text: &[u8]) -> Result<Host, TargetError> {
    let s = std::str::from_utf8(text).map_err(|_| TargetError::Host)?;
    match kind {
        HostKind::Ipv6 => s
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map(Host::Ip)
            .map_err(|_| TargetError::Host),
        HostKind::Ipv4 => s.parse().map(Host::Ip).map_err(|_| TargetError::Host),
        HostKind::Name => Ok(Host::Name(s.to_ascii_lowercase())),
    }
}

/// The next hop for a request sent to `uri` (the Request-URI, the destination URI or the first
/// Route): `maddr` wins over the host, `transport=` picks the transport, `sips:` means TLS.
pub fn request_target(uri: &Bound<'_, Uri>) -> Result<Target, TargetError> {
    if !matches!(uri.v.scheme, Scheme::Sip | Scheme::Sips) {
        return Err(TargetError::Scheme);
    }
    let explicit = uri.transport().map(Transport::classify);
    let transport = match (explicit, uri.v.scheme) {
        (Some(t), _) => t,
        (None, Scheme::Sips) => Transport::Tls,
        (None, _) => Transport::Udp,
    };
    let host = match uri.param(b"maddr").flatten() {
        Some(m) => {
            let kind = if m.first() == Some(&b'[') {
                HostKind::Ipv6
            } else if sipox_sip_msg::is_ipv4(m) {
                HostKind::Ipv4
            } else {
                HostKind::Name
            };
            host_of(kind, m)?
        }
        None => host_of(uri.v.host_kind, uri.host())?,
    };
    Ok(Target {
        transport,
        transport_explicit: explicit.is_some(),
        host,
        port: uri.port(),
    })
}

/// Where a response goes (RFC 3261 §18.2.2, RFC 3581 §4) for an unreliable transport: `maddr`
/// (port from sent-by or 5060), else the `received` address (or sent-by) with the `rport` value
/// when present, else the sent-by port. For a reliable transport the reply goes back on the
/// request's connection first; this is the fallback target.
pub fn reply_target(via: &Bound<'_, Via>) -> Result<Target, TargetError> {
    let transport = via.transport();
    let port_default = via.port().unwrap_or_else(|| default_port(transport));
    if let Some(m) = via.maddr() {
        let kind = if sipox_sip_msg::is_ipv4(m) {
            HostKind::Ipv4
        } else if m.first() == Some(&b'[') {
            HostKind::Ipv6
        } else {
            HostKind::Name
        };
        return Ok(Target {
            transport,
            transport_explicit: true,
            host: host_of(kind, m)?,
            port: Some(port_default),
        });
    }
    let host = match via.received() {
        Some(r) => {
            let r = std::str::from_utf8(r).map_err(|_| TargetError::Host)?;
            Host::Ip(
                r.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse()
                    .map_err(|_| TargetError::Host)?,
            )
        }
        None => host_of(via.v.host_kind, via.host())?,
    };
    let port = match via.rport() {
        Some(Some(p)) => std::str::from_utf8(p)
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(port_default),
        _ => port_default,
    };
    Ok(Target {
        transport,
        transport_explicit: true,
        host,
        port: Some(port),
    })
}

/// What receiving a request adds to its top Via (RFC 3261 §18.2.1, RFC 3581 §4): `received` when
/// the source IP differs from sent-by (or `rport` was asked, or `force_rport`), and the `rport`
/// value when the Via asked for it (or `force_rport`). Returns the text to append to the top Via
/// value, or `None` when nothing is needed.
pub fn via_receive_params(
    via: &Bound<'_, Via>,
    src: SocketAddr,
    force_rport: bool,
) -> Option<String> {
    let ip = src.ip();
    let sent_by_is_src = match via.v.host_kind {
        HostKind::Name => false,
        _ => {
            std::str::from_utf8(via.host()).ok().and_then(|h| {
                h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .ok()
            }) == Some(ip)
        }
    };
    let want_rport = force_rport || matches!(via.rport(), Some(None));
    let mut out = String::new();
    if (!sent_by_is_src || want_rport) && via.received().is_none() {
        let _ = write!(out, ";received={}", fmt_ip(ip));
    }
    if want_rport && matches!(via.rport(), Some(None) | None) {
        let _ = write!(out, ";rport={}", src.port());
    }
    (!out.is_empty()).then_some(out)
}

/// An IP as written in SIP headers (IPv6 in brackets).
pub fn fmt_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// FNV-1a, 64 bit: small and stable across runs and builds, which a branch id must be.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The branch for a request forwarded statelessly (RFC 3261 §16.11): the same incoming request
/// (a retransmission) always gets the same branch, and different requests (or the same request
/// forked to different targets) get different ones. Derived from the incoming top Via (its branch
/// when RFC 3261, else the RFC 2543 transaction identifiers) and the outgoing Request-URI. An ACK
/// or CANCEL gets the branch its INVITE got, as the method is not part of the input.
pub fn stateless_branch(msg: &SipMsg, out_ruri: &[u8]) -> String {
    let via = msg.via1().ok();
    let h = match via
        .as_ref()
        .and_then(|v| v.has_rfc3261_branch().then(|| v.branch()).flatten())
    {
        Some(b) => fnv1a(&[b, via.as_ref().map_or(&b""[..], |v| v.host()), out_ruri]),
        None => fnv1a(&[
            msg.ruri_raw(),
            msg.from().ok().and_then(|f| f.tag()).unwrap_or_default(),
            msg.to().ok().and_then(|t| t.tag()).unwrap_or_default(),
            msg.call_id().unwrap_or_default(),
            &msg.cseq()
                .map(|c| c.number().to_be_bytes())
                .unwrap_or_default(),
            via.as_ref().map_or(&b""[..], |v| v.raw()),
            out_ruri,
        ]),
    };
    let mut s = String::with_capacity(MAGIC_COOKIE.len() + 17);
    s.push_str("z9hG4bK");
    let _ = write!(s, "{h:016x}");
    s
}

/// Our Via value: `SIP/2.0/UDP host:port;branch=...` (with `;rport` when asked, for
/// `add_local_rport`).
pub fn via_value(transport: Transport, host: &str, port: u16, branch: &str, rport: bool) -> String {
    let mut s = String::with_capacity(64);
    let _ = write!(
        s,
        "SIP/2.0/{} {host}:{port};branch={branch}",
        transport.as_str()
    );
    if rport {
        s.push_str(";rport");
    }
    s
}

/// True when `uri` names this element (host is one of `ours` and port matches `port` or is
/// absent and `port` is the default): the core of `is_myself` and of loose_route's check.
pub fn uri_is_ours(uri: &Bound<'_, Uri>, ours: &[(&str, u16)]) -> bool {
    let host = uri.host();
    let port = uri.port_or_default().unwrap_or(5060);
    ours.iter()
        .any(|(h, p)| eq_ic(h.as_bytes(), host) && *p == port)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use sipox_sip_msg::{uri, via};

    use super::*;

    #[test]
    fn request_targets() {
        let t = request_target(&uri(b"sip:bob@192.0.2.4:5070;transport=tcp").unwrap()).unwrap();
        assert_eq!(t.socket_addr(), Some("192.0.2.4:5070".parse().unwrap()));
        assert_eq!((t.transport, t.transport_explicit), (Transport::Tcp, true));
        let t = request_target(&uri(b"sips:bob@example.COM").unwrap()).unwrap();
        assert_eq!(
            (t.transport, t.host.clone(), t.port),
            (Transport::Tls, Host::Name("example.com".into()), None)
        );
        let t = request_target(&uri(b"sip:bob@example.com;maddr=[2001:db8::1]").unwrap()).unwrap();
        assert_eq!(t.socket_addr(), Some("[2001:db8::1]:5060".parse().unwrap()));
        assert_eq!(
            request_target(&uri(b"tel:+15551234").unwrap()),
            Err(TargetError::Scheme)
        );
    }

    #[test]
    fn reply_targets() {
        let v = via(
            b"SIP/2.0/UDP pc33.example.com:5066;branch=z9hG4bK1;received=192.0.2.1;rport=40000",
        )
        .unwrap();
        assert_eq!(
            reply_target(&v).unwrap().socket_addr(),
            Some("192.0.2.1:40000".parse().unwrap())
        );
        let v = via(b"SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK1").unwrap();
        assert_eq!(
            reply_target(&v).unwrap().socket_addr(),
            Some("192.0.2.2:5060".parse().unwrap())
        );
        let v =
            via(b"SIP/2.0/UDP h.example.com:5080;maddr=239.1.1.1;ttl=1;branch=z9hG4bK1").unwrap();
        assert_eq!(
            reply_target(&v).unwrap().socket_addr(),
            Some("239.1.1.1:5080".parse().unwrap())
        );
        let v =
            via(b"SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bK1").unwrap();
        assert_eq!(
            reply_target(&v).unwrap().socket_addr(),
            Some("[2001:db8::9:255]:5060".parse().unwrap())
        );
    }

    #[test]
    fn received_and_rport_on_receipt() {
        let src: SocketAddr = "198.51.100.7:40001".parse().unwrap();
        let v = via(b"SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;rport").unwrap();
        assert_eq!(
            via_receive_params(&v, src, false).as_deref(),
            Some(";received=198.51.100.7;rport=40001")
        );
        let v = via(b"SIP/2.0/UDP 198.51.100.7:40001;branch=z9hG4bK1").unwrap();
        assert_eq!(via_receive_params(&v, src, false), None);
        let v = via(b"SIP/2.0/UDP host.example.com;branch=z9hG4bK1").unwrap();
        assert_eq!(
            via_receive_params(&v, src, false).as_deref(),
            Some(";received=198.51.100.7")
        );
        let v = via(b"SIP/2.0/UDP 198.51.100.7:40001;branch=z9hG4bK1").unwrap();
        assert_eq!(
            via_receive_params(&v, src, true).as_deref(),
            Some(";received=198.51.100.7;rport=40001")
        );
    }

    const REQ: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP a.example.com;branch=z9hG4bKabc\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn stateless_branches_are_stable_and_distinct() {
        let m = SipMsg::parse(Bytes::from_static(REQ)).unwrap();
        let again = SipMsg::parse(Bytes::from_static(REQ)).unwrap();
        let b1 = stateless_branch(&m, b"sip:bob@192.0.2.1");
        assert!(b1.starts_with("z9hG4bK") && b1.len() == 23);
        assert_eq!(
            b1,
            stateless_branch(&again, b"sip:bob@192.0.2.1"),
            "retransmission: same branch"
        );
        assert_ne!(
            b1,
            stateless_branch(&m, b"sip:bob@192.0.2.2"),
            "fork: another branch"
        );
        let other = REQ.to_vec();
        let other = String::from_utf8(other)
            .unwrap()
            .replace("z9hG4bKabc", "z9hG4bKabd");
        let o = SipMsg::parse(Bytes::from(other.into_bytes())).unwrap();
        assert_ne!(b1, stateless_branch(&o, b"sip:bob@192.0.2.1"));
        let rfc2543 = String::from_utf8(REQ.to_vec())
            .unwrap()
            .replace(";branch=z9hG4bKabc", "");
        let o = SipMsg::parse(Bytes::from(rfc2543.into_bytes())).unwrap();
        assert!(stateless_branch(&o, b"sip:bob@192.0.2.1").starts_with("z9hG4bK"));
    }

    #[test]
    fn via_and_myself() {
        assert_eq!(
            via_value(Transport::Udp, "127.0.0.1", 5060, "z9hG4bKx", true),
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx;rport"
        );
        let ours = [("127.0.0.1", 5060), ("proxy.example.com", 5060)];
        assert!(uri_is_ours(
            &uri(b"sip:bob@PROXY.example.com").unwrap(),
            &ours
        ));
        assert!(!uri_is_ours(
            &uri(b"sip:bob@proxy.example.com:5070").unwrap(),
            &ours
        ));
        assert!(uri_is_ours(&uri(b"sip:127.0.0.1:5060;lr").unwrap(), &ours));
    }
}
