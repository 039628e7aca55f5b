//! Parsers for the values of well-known attributes (`rtpmap`, `fmtp`, `rtcp`,
//! `ptime`, direction) and small field helpers.

use std::fmt;

use crate::parse::{Fields, is_ws, parse_u64, trim_ws};

/// Media direction attribute (`a=sendrecv` / `sendonly` / `recvonly` / `inactive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `a=sendrecv` (the default when none is present).
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// Recognises a direction attribute name (ASCII case-insensitive).
    #[must_use]
    pub fn from_name(name: &[u8]) -> Option<Self> {
        let name = trim_ws(name);
        [
            Self::SendRecv,
            Self::SendOnly,
            Self::RecvOnly,
            Self::Inactive,
        ]
        .into_iter()
        .find(|d| name.eq_ignore_ascii_case(d.name().as_bytes()))
    }

    /// The attribute name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    /// The direction as seen from the other party (sendonly <-> recvonly).
    #[must_use]
    pub fn reversed(self) -> Self {
        match self {
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            other => other,
        }
    }

    /// True when the local side sends media.
    #[must_use]
    pub fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    /// True when the local side receives media.
    #[must_use]
    pub fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding params>]`.
///
/// Tolerantly, the clock rate may be missing (`a=rtpmap:31 LPC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RtpMap<'a> {
    /// RTP payload type.
    pub payload_type: u8,
    /// Encoding name (`PCMU`, `opus`, `telephone-event`, ...).
    pub encoding: &'a [u8],
    /// Clock rate in Hz.
    pub clock_rate: Option<u32>,
    /// Encoding parameters (audio: channel count).
    pub params: Option<&'a [u8]>,
}

impl<'a> RtpMap<'a> {
    /// Parses an rtpmap attribute value; `None` when malformed.
    #[must_use]
    pub fn parse(value: &'a [u8]) -> Option<Self> {
        let mut fields = Fields::new(value);
        let (_, pt) = fields.next()?;
        let payload_type = parse_payload_type(pt)?;
        let (start, _) = fields.next()?;
        let rest = trim_ws(&value[start..]);
        if rest.iter().copied().any(is_ws) {
            return None;
        }
        let mut parts = rest.splitn(3, |&b| b == b'/');
        let encoding = parts.next().filter(|e| !e.is_empty())?;
        let clock_rate = match parts.next() {
            Some(c) => Some(u32::try_from(parse_u64(c)?).ok()?),
            None => None,
        };
        let params = parts.next();
        Some(Self {
            payload_type,
            encoding,
            clock_rate,
            params,
        })
    }

    /// A new rtpmap value.
    #[must_use]
    pub fn new(payload_type: u8, encoding: &'a [u8], clock_rate: u32) -> Self {
        Self {
            payload_type,
            encoding,
            clock_rate: Some(clock_rate),
            params: None,
        }
    }

    /// Sets the encoding parameters (e.g. channel count `b"2"`).
    #[must_use]
    pub fn with_params(mut self, params: &'a [u8]) -> Self {
        self.params = Some(params);
        self
    }

    /// Encoding name equals `name`, ignoring ASCII case.
    #[must_use]
    pub fn is_encoding(&self, name: &[u8]) -> bool {
        self.encoding.eq_ignore_ascii_case(name)
    }

    /// Appends the attribute value (without `a=rtpmap:`).
    pub fn write_value(&self, out: &mut Vec<u8>) {
        crate::print::push_u64(out, u64::from(self.payload_type));
        out.push(b' ');
        out.extend_from_slice(self.encoding);
        if let Some(clock) = self.clock_rate {
            out.push(b'/');
            crate::print::push_u64(out, u64::from(clock));
            if let Some(p) = self.params {
                out.push(b'/');
                out.extend_from_slice(p);
            }
        }
    }
}

/// `a=fmtp:<format> <format specific parameters>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fmtp<'a> {
    /// The media format the parameters apply to.
    pub format: &'a [u8],
    /// The parameter string (may be empty).
    pub params: &'a [u8],
}

impl<'a> Fmtp<'a> {
    /// Parses an fmtp attribute value; `None` when it has no format.
    #[must_use]
    pub fn parse(value: &'a [u8]) -> Option<Self> {
        let mut fields = Fields::new(value);
        let (_, format) = fields.next()?;
        let params = match fields.next() {
            Some((start, _)) => trim_ws(&value[start..]),
            None => &[],
        };
        Some(Self { format, params })
    }

    /// The format as an RTP payload type, if numeric.
    #[must_use]
    pub fn payload_type(&self) -> Option<u8> {
        parse_payload_type(self.format)
    }

    /// Iterates `;`-separated `key[=value]` parameters, trimmed.
    pub fn param_pairs(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
        self.params
            .split(|&b| b == b';')
            .map(trim_ws)
            .filter(|p| !p.is_empty())
            .map(|p| match p.iter().position(|&b| b == b'=') {
                Some(i) => (trim_ws(&p[..i]), Some(trim_ws(&p[i + 1..]))),
                None => (p, None),
            })
    }

    /// The value of parameter `key` (ASCII case-insensitive).
    #[must_use]
    pub fn param(&self, key: &[u8]) -> Option<&'a [u8]> {
        self.param_pairs()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| v)
    }
}

/// Address part of an `a=rtcp:` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RtcpAddress<'a> {
    /// Network type.
    pub nettype: &'a [u8],
    /// Address type.
    pub addrtype: &'a [u8],
    /// Connection address.
    pub address: &'a [u8],
}

/// `a=rtcp:<port> [<nettype> <addrtype> <connection-address>]` (RFC 3605).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rtcp<'a> {
    /// RTCP port.
    pub port: u16,
    /// Optional explicit address.
    pub address: Option<RtcpAddress<'a>>,
}

impl<'a> Rtcp<'a> {
    /// Parses an rtcp attribute value; `None` when malformed.
    #[must_use]
    pub fn parse(value: &'a [u8]) -> Option<Self> {
        let mut fields = Fields::new(value).map(|(_, f)| f);
        let port = u16::try_from(parse_u64(fields.next()?)?).ok()?;
        let address = match fields.next() {
            None => None,
            Some(nettype) => {
                let addrtype = fields.next()?;
                let address = fields.next()?;
                Some(RtcpAddress {
                    nettype,
                    addrtype,
                    address,
                })
            }
        };
        if fields.next().is_some() {
            return None;
        }
        Some(Self { port, address })
    }
}

/// Parses a media format as an RTP payload type (decimal, 0..=127).
#[must_use]
pub fn parse_payload_type(fmt: &[u8]) -> Option<u8> {
    parse_u64(fmt)
        .and_then(|n| u8::try_from(n).ok())
        .filter(|&n| n <= 127)
}

/// Parses a `ptime`-style millisecond value; a fractional part is ignored.
#[must_use]
pub fn parse_ptime(value: &[u8]) -> Option<u32> {
    let value = trim_ws(value);
    let int = match value.iter().position(|&b| b == b'.') {
        Some(i) if value[i + 1..].iter().all(u8::is_ascii_digit) => &value[..i],
        Some(_) => return None,
        None => value,
    };
    u32::try_from(parse_u64(int)?).ok()
}

/// Parses an SDP typed time (`86400`, `-1h`, `7d`, `30m`, `15s`) into seconds.
#[must_use]
pub fn parse_typed_time(value: &[u8]) -> Option<i64> {
    let (neg, digits) = match value.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, value),
    };
    let (digits, mult) = match digits.split_last() {
        Some((b'd', d)) => (d, 86_400),
        Some((b'h', d)) => (d, 3_600),
        Some((b'm', d)) => (d, 60),
        Some((b's', d)) => (d, 1),
        _ => (digits, 1),
    };
    let n = i64::try_from(parse_u64(digits)?).ok()?.checked_mul(mult)?;
    Some(if neg { -n } else { n })
}

/// First whitespace-separated token of `value`.
pub(crate) fn first_token(value: &[u8]) -> Option<&[u8]> {
    Fields::new(value).next().map(|(_, f)| f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtpmap_forms() {
        let r = RtpMap::parse(b"0 PCMU/8000").unwrap();
        assert_eq!(
            (r.payload_type, r.encoding, r.clock_rate, r.params),
            (0, &b"PCMU"[..], Some(8000), None)
        );
        let r = RtpMap::parse(b"111 opus/48000/2").unwrap();
        assert_eq!(r.params, Some(&b"2"[..]));
        let r = RtpMap::parse(b"31 LPC").unwrap();
        assert_eq!((r.encoding, r.clock_rate), (&b"LPC"[..], None));
        assert!(RtpMap::parse(b"x PCMU/8000").is_none());
        assert!(RtpMap::parse(b"200 PCMU/8000").is_none());
        assert!(RtpMap::parse(b"0 PCMU/abc").is_none());
        assert!(RtpMap::parse(b"0").is_none());
        assert!(RtpMap::parse(b"0 /8000").is_none());
        let mut out = Vec::new();
        RtpMap::new(97, b"opus", 48000)
            .with_params(b"2")
            .write_value(&mut out);
        assert_eq!(out, b"97 opus/48000/2");
    }

    #[test]
    fn fmtp_params() {
        let f = Fmtp::parse(b"101 0-15").unwrap();
        assert_eq!(
            (f.format, f.params, f.payload_type()),
            (&b"101"[..], &b"0-15"[..], Some(101))
        );
        let f = Fmtp::parse(b"96 profile-level-id=42e01f; packetization-mode=1").unwrap();
        assert_eq!(f.param(b"packetization-mode"), Some(&b"1"[..]));
        assert_eq!(f.param(b"PROFILE-LEVEL-ID"), Some(&b"42e01f"[..]));
        assert_eq!(f.param(b"nope"), None);
        let f = Fmtp::parse(b"97").unwrap();
        assert_eq!(f.params, b"");
        assert!(Fmtp::parse(b"  ").is_none());
    }

    #[test]
    fn rtcp_forms() {
        assert_eq!(
            Rtcp::parse(b"53020"),
            Some(Rtcp {
                port: 53020,
                address: None
            })
        );
        let r = Rtcp::parse(b"53020 IN IP6 2001:db8::1").unwrap();
        assert_eq!(r.address.unwrap().address, b"2001:db8::1");
        assert!(Rtcp::parse(b"70000").is_none());
        assert!(Rtcp::parse(b"5000 IN IP4").is_none());
        assert!(Rtcp::parse(b"5000 IN IP4 1.2.3.4 x").is_none());
    }

    #[test]
    fn misc_values() {
        assert_eq!(parse_ptime(b"20"), Some(20));
        assert_eq!(parse_ptime(b"20.5"), Some(20));
        assert_eq!(parse_ptime(b"2x"), None);
        assert_eq!(parse_typed_time(b"7d"), Some(604_800));
        assert_eq!(parse_typed_time(b"-1h"), Some(-3600));
        assert_eq!(parse_typed_time(b"90"), Some(90));
        assert_eq!(parse_typed_time(b"d"), None);
        assert_eq!(Direction::from_name(b"SendOnly"), Some(Direction::SendOnly));
        assert_eq!(Direction::SendOnly.reversed(), Direction::RecvOnly);
        assert_eq!(Direction::Inactive.to_string(), "inactive");
        assert!(Direction::SendRecv.sends() && !Direction::SendOnly.receives());
    }
}
