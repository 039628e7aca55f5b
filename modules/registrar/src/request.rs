//! A REGISTER, parsed once into what the registrar needs (RFC 3261 §10.3 steps 4–7), and the
//! pure per-contact rules: expires (contact param, Expires header, `default_expires`, min/max,
//! deviation) and q (`default_q`).

use sipox_sip_msg::{ContactValue, HeaderKind, SipMsg, option_tags};

use crate::params::Params;
use crate::reply::RegError;

/// Every method bit OpenSIPS knows (`ALL_METHODS`): a contact without `Allow` accepts all.
pub const ALL_METHODS: u32 = 0xffff_ffff;

/// One Contact of the REGISTER.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegContact {
    /// The URI as written (inside `<>`).
    pub uri: String,
    /// The raw `expires` parameter, if present.
    pub expires: Option<String>,
    /// The raw `q` parameter, if present.
    pub q: Option<String>,
    /// `+sip.instance` without its quotes (`<urn:...>`), empty when absent.
    pub instance: String,
    /// `reg-id` (RFC 5626), 0 when absent.
    pub reg_id: u32,
}

/// The parts of a REGISTER the registrar uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegRequest {
    /// `Contact: *`.
    pub star: bool,
    /// The contacts, in order.
    pub contacts: Vec<RegContact>,
    /// The Expires header: `None` absent (or not a number), `Some(n)` otherwise.
    pub expires: Option<u32>,
    /// The To URI (default AoR).
    pub to_uri: String,
    /// Call-ID.
    pub callid: String,
    /// CSeq number.
    pub cseq: u32,
    /// All Path header values joined by `,` (empty: none).
    pub path: String,
    /// `Supported: path`.
    pub supports_path: bool,
    /// `Supported: gruu`.
    pub supports_gruu: bool,
    /// User-Agent value.
    pub user_agent: String,
    /// Methods from `Allow` as OpenSIPS method bits; [`ALL_METHODS`] without `Allow`.
    pub methods: u32,
}

/// Parses and checks a REGISTER (OpenSIPS `parse_reg_headers` + `check_contacts`).
///
/// # Errors
/// The [`RegError`] OpenSIPS would answer with.
pub fn parse_register(m: &SipMsg, p: &Params) -> Result<RegRequest, RegError> {
    let to = m.to().map_err(|_| RegError::ToMiss)?;
    let callid = m.call_id().ok_or(RegError::CidMiss)?;
    let cseq = m.cseq().map_err(|_| RegError::CsMiss)?;
    let mut r = RegRequest {
        to_uri: String::from_utf8_lossy(to.uri().raw()).into_owned(),
        callid: String::from_utf8_lossy(callid).into_owned(),
        cseq: cseq.number(),
        methods: ALL_METHODS,
        ..RegRequest::default()
    };
    r.expires = m
        .value_of(HeaderKind::Expires)
        .map(<[u8]>::trim_ascii)
        .filter(|v| !v.is_empty() && v.iter().all(u8::is_ascii_digit))
        .map(|v| {
            v.iter().fold(0u32, |a, &c| {
                a.saturating_mul(10).saturating_add(u32::from(c - b'0'))
            })
        });
    let mut first = true;
    for c in m.contacts() {
        let c = c.map_err(|_| RegError::ParseCont)?;
        match c.v {
            ContactValue::Star(_) => {
                if !first || r.star {
                    return Err(RegError::StarCont);
                }
                r.star = true;
            }
            ContactValue::Addr(na) => {
                if r.star {
                    return Err(RegError::StarCont);
                }
                let na = m.bind(na);
                let uri = na.uri().raw();
                if uri.len() > p.max_contact_len {
                    return Err(RegError::ContactLen);
                }
                let prm = na.params();
                let text = |n: &[u8]| {
                    prm.get(n)
                        .map(|v| String::from_utf8_lossy(v.unwrap_or_default()).into_owned())
                };
                r.contacts.push(RegContact {
                    uri: String::from_utf8_lossy(uri).into_owned(),
                    expires: text(b"expires"),
                    q: text(b"q"),
                    instance: prm
                        .get_unquoted(b"+sip.instance")
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default(),
                    reg_id: prm
                        .get_unquoted(b"reg-id")
                        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
                        .unwrap_or(0),
                });
            }
        }
        first = false;
    }
    if r.star && r.expires != Some(0) {
        return Err(RegError::StarExp);
    }
    let paths: Vec<&[u8]> = m
        .headers_of(HeaderKind::Path)
        .map(|h| m.value(h).trim_ascii())
        .collect();
    r.path = String::from_utf8_lossy(&paths.join(&b","[..])).into_owned();
    for h in m.headers_of(HeaderKind::Supported) {
        for t in option_tags(m.buf(), m.trimmed(h.value)) {
            r.supports_path |= t.eq_ignore_ascii_case(b"path");
            r.supports_gruu |= t.eq_ignore_ascii_case(b"gruu");
        }
    }
    if let Some(ua) = m.header_named(b"User-Agent") {
        r.user_agent = String::from_utf8_lossy(m.value(ua).trim_ascii()).into_owned();
    }
    let allows: Vec<_> = m.headers_named(b"Allow").collect();
    if !allows.is_empty() {
        r.methods = 0;
        for h in allows {
            for meth in m.value(h).split(|&b| b == b',') {
                r.methods |= method_bit(meth.trim_ascii());
            }
        }
    }
    Ok(r)
}

/// OpenSIPS's method bit (`METHOD_*`) of a method name; unknown methods are `METHOD_OTHER`.
pub fn method_bit(m: &[u8]) -> u32 {
    const NAMES: [&[u8]; 14] = [
        b"INVITE",
        b"CANCEL",
        b"ACK",
        b"BYE",
        b"INFO",
        b"OPTIONS",
        b"UPDATE",
        b"REGISTER",
        b"MESSAGE",
        b"SUBSCRIBE",
        b"NOTIFY",
        b"PRACK",
        b"REFER",
        b"PUBLISH",
    ];
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(m))
        .map_or(1 << 14, |i| 1 << i)
}

/// Expires limits in force for one `save()` (module parameters overridden by flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `default_expires`.
    pub default: u32,
    /// `min_expires` / `min-expires=`; 0 disables.
    pub min: u32,
    /// `max_expires` / `max-expires=`; 0 disables.
    pub max: u32,
}

/// The expires (seconds, 0 = remove) of one contact: its `expires` parameter, else the
/// Expires header, else `default_expires` (a non-numeric parameter also means the
/// default); a non-zero value is raised to `min` and lowered to `max` (OpenSIPS clamps, it
/// never answers 423).
pub fn contact_expires(param: Option<&str>, header: Option<u32>, l: Limits) -> u32 {
    let e = match param.map(str::trim).filter(|s| !s.is_empty()) {
        Some(v) => v.parse::<u32>().unwrap_or(l.default),
        None => header.unwrap_or(l.default),
    };
    clamp(e, l)
}

/// Applies min/max to a non-zero expires.
pub fn clamp(e: u32, l: Limits) -> u32 {
    let mut e = e;
    if e != 0 && l.min != 0 && e < l.min {
        e = l.min;
    }
    if e != 0 && l.max != 0 && e > l.max {
        e = l.max;
    }
    e
}

/// `expires_max_deviation`: moves `e` by `seed mod (2·dev+1) − dev` seconds (never to 0
/// or below 1), then re-applies the limits.
pub fn deviate(e: u32, dev: u32, seed: u64, l: Limits) -> u32 {
    if e == 0 || dev == 0 {
        return e;
    }
    let span = u64::from(dev) * 2 + 1;
    let off = i64::try_from(seed % span).unwrap_or(0) - i64::from(dev);
    let v = (i64::from(e) + off).max(1);
    clamp(u32::try_from(v).unwrap_or(u32::MAX), l)
}

/// The q of one contact (×1000): its `q` parameter, else `default_q`.
///
/// # Errors
/// [`RegError::InvQ`] for a malformed or out-of-range q.
pub fn contact_q(param: Option<&str>, default_q: i32) -> Result<i32, RegError> {
    match param.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(default_q),
        Some(v) => sipox_sip_msg::parse_qvalue(v.as_bytes())
            .map(i32::from)
            .ok_or(RegError::InvQ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(extra: &str) -> SipMsg {
        let m = format!(
            "REGISTER sip:example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
             From: <sip:alice@example.com>;tag=1\r\n\
             To: <sip:alice@example.com>\r\n\
             Call-ID: cid-1\r\n\
             CSeq: 7 REGISTER\r\n\
             {extra}Content-Length: 0\r\n\r\n"
        );
        SipMsg::parse(bytes::Bytes::from(m)).unwrap()
    }

    fn parse(extra: &str) -> Result<RegRequest, RegError> {
        parse_register(&msg(extra), &Params::default())
    }

    #[test]
    fn fields() {
        let r = parse(
            "Contact: <sip:alice@10.0.0.1:5060>;expires=60;q=0.5;+sip.instance=\"<urn:uuid:1>\";reg-id=2, sip:alice@10.0.0.2\r\n\
             Contact: \"A\" <sip:alice@10.0.0.3;transport=tcp>\r\n\
             Expires: 120\r\nPath: <sip:p1.example.com;lr>\r\nPath: <sip:p2.example.com;lr>\r\n\
             Supported: path, gruu\r\nUser-Agent: test/1.0\r\nAllow: INVITE, ACK, BYE\r\n",
        )
        .unwrap();
        assert!(!r.star);
        assert_eq!(r.contacts.len(), 3);
        assert_eq!(r.contacts[0].uri, "sip:alice@10.0.0.1:5060");
        assert_eq!(r.contacts[0].expires.as_deref(), Some("60"));
        assert_eq!(r.contacts[0].q.as_deref(), Some("0.5"));
        assert_eq!(r.contacts[0].instance, "<urn:uuid:1>");
        assert_eq!(r.contacts[0].reg_id, 2);
        assert_eq!(r.contacts[1].uri, "sip:alice@10.0.0.2");
        assert_eq!(r.contacts[2].uri, "sip:alice@10.0.0.3;transport=tcp");
        assert_eq!(r.expires, Some(120));
        assert_eq!(r.path, "<sip:p1.example.com;lr>,<sip:p2.example.com;lr>");
        assert!(r.supports_path && r.supports_gruu);
        assert_eq!(r.user_agent, "test/1.0");
        assert_eq!(r.methods, 1 | 4 | 8);
        assert_eq!((r.callid.as_str(), r.cseq), ("cid-1", 7));
        assert_eq!(r.to_uri, "sip:alice@example.com");
    }

    #[test]
    fn star_rules() {
        // RFC 3261 §10.3 step 6
        let table: [(&str, Result<bool, RegError>); 6] = [
            ("Contact: *\r\nExpires: 0\r\n", Ok(true)),
            ("Contact: *\r\n", Err(RegError::StarExp)),
            ("Contact: *\r\nExpires: 60\r\n", Err(RegError::StarExp)),
            (
                "Contact: *, <sip:a@b>\r\nExpires: 0\r\n",
                Err(RegError::StarCont),
            ),
            (
                "Contact: <sip:a@b>\r\nContact: *\r\nExpires: 0\r\n",
                Err(RegError::StarCont),
            ),
            (
                "Contact: *\r\nContact: *\r\nExpires: 0\r\n",
                Err(RegError::StarCont),
            ),
        ];
        for (hdrs, want) in table {
            assert_eq!(parse(hdrs).map(|r| r.star), want, "{hdrs}");
        }
        assert_eq!(parse("").map(|r| r.contacts.len()), Ok(0), "fetch");
        assert_eq!(parse("").unwrap().methods, ALL_METHODS);
    }

    #[test]
    fn bad_contact_and_length() {
        assert_eq!(
            parse("Contact: <sip:a@b\r\n").map(|_| ()),
            Err(RegError::ParseCont)
        );
        let long = format!("Contact: <sip:{}@b>\r\n", "x".repeat(300));
        assert_eq!(parse(&long).map(|_| ()), Err(RegError::ContactLen));
    }

    #[test]
    fn expires_rules() {
        let l = Limits {
            default: 3600,
            min: 60,
            max: 7200,
        };
        let table: [(Option<&str>, Option<u32>, u32); 9] = [
            (Some("300"), Some(100), 300), // contact param wins
            (None, Some(100), 100),        // then the Expires header
            (None, None, 3600),            // then default_expires
            (Some("0"), Some(100), 0),     // 0 removes
            (None, Some(0), 0),
            (Some("10"), None, 60),       // raised to min_expires
            (Some("99999"), None, 7200),  // lowered to max_expires
            (Some("abc"), Some(5), 3600), // bad param: default
            (Some(""), Some(120), 120),   // empty param: header
        ];
        for (param, hdr, want) in table {
            assert_eq!(contact_expires(param, hdr, l), want, "{param:?} {hdr:?}");
        }
        let open = Limits {
            default: 3600,
            min: 0,
            max: 0,
        };
        assert_eq!(contact_expires(Some("1"), None, open), 1);
        assert_eq!(contact_expires(Some("999999"), None, open), 999_999);
    }

    #[test]
    fn deviation_stays_in_range() {
        let l = Limits {
            default: 3600,
            min: 60,
            max: 0,
        };
        for seed in 0..500u64 {
            let e = deviate(1800, 100, seed.wrapping_mul(0x9e37_79b9), l);
            assert!((1700..=1900).contains(&e), "{e}");
        }
        assert_eq!(deviate(0, 100, 7, l), 0);
        assert_eq!(deviate(1800, 0, 7, l), 1800);
        assert!(deviate(61, 100, 0, l) >= 60);
    }

    #[test]
    fn q_rules() {
        assert_eq!(contact_q(Some("0.5"), -1), Ok(500));
        assert_eq!(contact_q(Some("1"), -1), Ok(1000));
        assert_eq!(contact_q(None, 300), Ok(300));
        assert_eq!(contact_q(None, -1), Ok(-1));
        assert_eq!(contact_q(Some("2"), -1), Err(RegError::InvQ));
        assert_eq!(contact_q(Some("x"), -1), Err(RegError::InvQ));
    }

    #[test]
    fn method_bits() {
        assert_eq!(method_bit(b"INVITE"), 1);
        assert_eq!(method_bit(b"message"), 256);
        assert_eq!(method_bit(b"FOO"), 1 << 14);
    }
}
