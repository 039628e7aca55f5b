//! Listening socket definitions as OpenSIPS writes them (`socket=`/`listen=` and `-l`):
//! `proto:host:port`, port ranges, `[v6]` hosts, `as host:port`, `use_workers N`, `tag NAME`.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use thiserror::Error;

/// Transport protocol of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Proto {
    /// UDP
    Udp,
    /// TCP
    Tcp,
    /// TLS
    Tls,
    /// WebSocket
    Ws,
    /// Secure WebSocket
    Wss,
    /// SCTP
    Sctp,
}

impl Proto {
    /// Parses `udp`, `tcp`, ... (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "udp" => Self::Udp,
            "tcp" => Self::Tcp,
            "tls" => Self::Tls,
            "ws" => Self::Ws,
            "wss" => Self::Wss,
            "sctp" => Self::Sctp,
            _ => return None,
        })
    }

    /// Lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Ws => "ws",
            Self::Wss => "wss",
            Self::Sctp => "sctp",
        }
    }
}

/// A listening socket definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    /// Protocol (UDP when omitted).
    pub proto: Proto,
    /// Address to bind.
    pub addr: IpAddr,
    /// First port (5060 when omitted; 0 asks the kernel for one).
    pub port: u16,
    /// Last port of a range.
    pub port_end: Option<u16>,
    /// `as host:port`.
    pub advertised: Option<(String, u16)>,
    /// `use_workers N`.
    pub workers: Option<usize>,
    /// `tag NAME`.
    pub tag: Option<String>,
}

/// A socket definition that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("bad socket definition '{text}': {why}")]
pub struct SpecError {
    /// The definition.
    pub text: String,
    /// What is wrong.
    pub why: &'static str,
}

impl ListenSpec {
    /// The ports this definition binds.
    pub fn ports(&self) -> impl Iterator<Item = u16> {
        self.port..=self.port_end.unwrap_or(self.port).max(self.port)
    }
}

fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let close = rest.find(']')?;
        let host = &rest[..close];
        let after = &rest[close + 1..];
        return match after.strip_prefix(':') {
            Some(p) => Some((host, Some(p))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h, Some(p))),
        Some(_) => None,
        None => Some((s, None)),
    }
}

impl FromStr for ListenSpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let bad = |why| SpecError {
            text: text.to_string(),
            why,
        };
        let mut words = text.split_whitespace();
        let main = words.next().ok_or_else(|| bad("empty"))?;
        let (proto, rest) = match main.split_once(':') {
            Some((p, r)) if Proto::parse(p).is_some() => (Proto::parse(p).unwrap_or(Proto::Udp), r),
            _ => (Proto::Udp, main),
        };
        let (host, port) = split_host_port(rest).ok_or_else(|| bad("malformed host:port"))?;
        let addr = if host == "*" || host.is_empty() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            host.parse::<IpAddr>()
                .map_err(|_| bad("host must be an IP address"))?
        };
        let (port, port_end) = match port {
            None => (5060, None),
            Some(p) => match p.split_once('-') {
                Some((a, b)) => (
                    a.parse().map_err(|_| bad("bad port"))?,
                    Some(b.parse().map_err(|_| bad("bad port"))?),
                ),
                None => (p.parse().map_err(|_| bad("bad port"))?, None),
            },
        };
        let mut spec = Self {
            proto,
            addr,
            port,
            port_end,
            advertised: None,
            workers: None,
            tag: None,
        };
        while let Some(w) = words.next() {
            match w {
                "as" => {
                    let a = words.next().ok_or_else(|| bad("'as' needs host:port"))?;
                    let (h, p) = split_host_port(a).ok_or_else(|| bad("malformed 'as' address"))?;
                    let p = match p {
                        Some(p) => p.parse().map_err(|_| bad("bad 'as' port"))?,
                        None => spec.port,
                    };
                    spec.advertised = Some((h.to_string(), p));
                }
                "use_workers" => {
                    let n = words
                        .next()
                        .ok_or_else(|| bad("'use_workers' needs a number"))?;
                    spec.workers = Some(n.parse().map_err(|_| bad("bad worker count"))?);
                }
                "tag" => {
                    spec.tag = Some(
                        words
                            .next()
                            .ok_or_else(|| bad("'tag' needs a name"))?
                            .to_string(),
                    );
                }
                "anycast" | "frontend" | "reuse_port" => {}
                _ => return Err(bad("unknown socket option")),
            }
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let s: ListenSpec = "udp:127.0.0.1:5060".parse().unwrap();
        assert_eq!((s.proto, s.port), (Proto::Udp, 5060));
        let s: ListenSpec = "tcp:[::1]:5070 as sip.example.com:5060 use_workers 4 tag edge"
            .parse()
            .unwrap();
        assert_eq!(s.proto, Proto::Tcp);
        assert!(s.addr.is_ipv6());
        assert_eq!(s.advertised, Some(("sip.example.com".into(), 5060)));
        assert_eq!((s.workers, s.tag.as_deref()), (Some(4), Some("edge")));
        let s: ListenSpec = "udp:10.0.0.1:5060-5062".parse().unwrap();
        assert_eq!(s.ports().collect::<Vec<_>>(), [5060, 5061, 5062]);
        let s: ListenSpec = "10.0.0.1".parse().unwrap();
        assert_eq!((s.proto, s.port), (Proto::Udp, 5060));
        assert!("udp:host.example.com:5060".parse::<ListenSpec>().is_err());
        assert!("udp:1.2.3.4:99999".parse::<ListenSpec>().is_err());
        assert!("udp:1.2.3.4:5060 bogus".parse::<ListenSpec>().is_err());
    }
}
