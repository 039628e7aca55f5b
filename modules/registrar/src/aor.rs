//! Addresses of record: extracting the usrloc key from a URI (OpenSIPS `extract_aor`), and
//! GRUUs (RFC 5627): public GRUUs `sip:aor;gr=urn:...` and the reversible temporary GRUUs
//! `sip:tgruu.<base64(secret XOR "time aor instance callid")>@host:port;gr`.

use sipox_sip_msg::{Unescape, uri};

use crate::params::Params;
use crate::reply::RegError;

/// What a Request-URI (or AoR argument) names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// The usrloc key.
    pub aor: String,
    /// The `+sip.instance` (without `<>`) a GRUU targets; empty for a plain AoR.
    pub instance: String,
    /// The Call-ID a temporary GRUU was minted for; empty otherwise.
    pub callid: String,
}

/// The prefix of a temporary GRUU's user part.
const TGRUU: &str = "tgruu.";

/// Extracts the AoR key from `uri_text`: the unescaped user, plus `@domain` (minus
/// `realm_prefix`) when usrloc uses domains, lower-cased (only the domain when
/// `case_sensitive`). With `gruu`, a `;gr` parameter is decoded into the instance (and, for a
/// temporary GRUU, the AoR and Call-ID it hides).
///
/// # Errors
/// [`RegError::AorParse`] for a bad URI, [`RegError::AorLen`] when too long,
/// [`RegError::Unescape`] for a bad escape.
pub fn extract(
    uri_text: &[u8],
    p: &Params,
    use_domain: bool,
    gruu: bool,
) -> Result<Target, RegError> {
    let u = uri(uri_text).map_err(|_| RegError::AorParse)?;
    let user = u.user().unwrap_or_default();
    let host = u.host();
    if gruu && let Some(Some(gr)) = u.param(b"gr").map(|v| v.filter(|v| !v.is_empty())) {
        return Ok(Target {
            instance: String::from_utf8_lossy(gr).into_owned(),
            ..plain(user, host, p, use_domain)?
        });
    }
    if gruu
        && u.param(b"gr").is_some()
        && let Some(enc) = user.strip_prefix(TGRUU.as_bytes())
    {
        return decode_temp_gruu(enc, &p.gruu_secret).ok_or(RegError::AorParse);
    }
    plain(user, host, p, use_domain)
}

fn plain(user: &[u8], host: &[u8], p: &Params, use_domain: bool) -> Result<Target, RegError> {
    if user.len() + host.len() + 1 > p.max_aor_len
        || user.len() > p.max_username_len
        || host.len() > p.max_domain_len
    {
        return Err(RegError::AorLen);
    }
    let u: Vec<u8> = Unescape::new(user).collect();
    let mut aor = String::from_utf8(u).map_err(|_| RegError::Unescape)?;
    let user_len = aor.len();
    if use_domain {
        if user_len > 0 {
            aor.push('@');
        }
        let pre = p.realm_prefix.as_bytes();
        let h = if !pre.is_empty() && pre.len() < host.len() && host.starts_with(pre) {
            &host[pre.len()..]
        } else {
            host
        };
        aor.push_str(&String::from_utf8_lossy(h));
    }
    if p.case_sensitive && user_len > 0 {
        let (a, b) = aor.split_at(user_len);
        aor = format!("{a}{}", b.to_ascii_lowercase());
    } else {
        aor.make_ascii_lowercase();
    }
    Ok(Target {
        aor,
        ..Target::default()
    })
}

/// The public GRUU of a binding: `sip:<aor>[@host:port];gr=<instance>`; `instance` as
/// stored (`<urn:...>`).
pub fn pub_gruu(aor: &str, use_domain: bool, host: &str, port: u16, instance: &str) -> String {
    let inst = strip_angle(instance);
    if use_domain {
        format!("sip:{aor};gr={inst}")
    } else {
        format!("sip:{aor}@{host}:{port};gr={inst}")
    }
}

/// A temporary GRUU for a binding at `now` (seconds).
pub fn temp_gruu(
    now: i64,
    aor: &str,
    instance: &str,
    callid: &str,
    secret: &str,
    host: &str,
    port: u16,
) -> String {
    let plain = format!("{now} {aor} {} {callid}", strip_angle(instance));
    let mut x = plain.into_bytes();
    xor(&mut x, secret.as_bytes());
    format!("sip:{TGRUU}{}@{host}:{port};gr", b64_encode(&x))
}

/// Reverses [`temp_gruu`]'s user part (after `tgruu.`).
pub fn decode_temp_gruu(enc: &[u8], secret: &str) -> Option<Target> {
    let mut x = b64_decode(enc)?;
    xor(&mut x, secret.as_bytes());
    let s = String::from_utf8(x).ok()?;
    let mut it = s.splitn(4, ' ');
    let _time = it.next()?;
    let aor = it.next()?.to_owned();
    let instance = it.next()?.to_owned();
    let callid = it.next()?.to_owned();
    (!aor.is_empty() && !instance.is_empty()).then_some(Target {
        aor,
        instance,
        callid,
    })
}

/// `<urn:...>` → `urn:...` (a stored `+sip.instance` keeps its angle brackets).
pub fn strip_angle(s: &str) -> &str {
    s.strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .unwrap_or(s)
}

fn xor(data: &mut [u8], key: &[u8]) {
    if key.is_empty() {
        return;
    }
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[i % key.len()];
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for ch in data.chunks(3) {
        let n = (u32::from(ch[0]) << 16)
            | (u32::from(ch.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(ch.get(2).copied().unwrap_or(0));
        for k in 0..4 {
            if k <= ch.len() {
                out.push(char::from(B64[((n >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let s = s
        .strip_suffix(b"==")
        .or_else(|| s.strip_suffix(b"="))
        .unwrap_or(s);
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in s {
        let v = B64.iter().position(|&b| b == c)?;
        acc = (acc << 6) | u32::try_from(v).ok()?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Params {
        Params::default()
    }

    #[test]
    fn aor_keys() {
        let t = |u: &str, dom: bool, p: &Params| extract(u.as_bytes(), p, dom, false).unwrap().aor;
        assert_eq!(t("sip:Alice@Example.COM", false, &p()), "Alice");
        assert_eq!(t("sip:Alice@Example.COM", true, &p()), "Alice@example.com");
        assert_eq!(t("sip:al%69ce@x.org;transport=tcp", false, &p()), "alice");
        let mut ci = p();
        ci.case_sensitive = false;
        assert_eq!(t("sip:Alice@Example.COM", true, &ci), "alice@example.com");
        let mut rp = p();
        rp.realm_prefix = "sip.".into();
        assert_eq!(t("sip:bob@sip.example.com", true, &rp), "bob@example.com");
        assert_eq!(t("sip:example.com", true, &p()), "example.com");
        assert_eq!(
            extract(b"not a uri", &p(), true, false),
            Err(RegError::AorParse)
        );
        let long = format!("sip:{}@x", "a".repeat(65));
        assert_eq!(
            extract(long.as_bytes(), &p(), true, false),
            Err(RegError::AorLen)
        );
    }

    #[test]
    fn base64_round_trip() {
        for s in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
            assert_eq!(b64_decode(b64_encode(s).as_bytes()).unwrap(), s);
        }
        assert_eq!(b64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64_encode(b"fo"), "Zm8=");
        assert!(b64_decode(b"Zm9v!").is_none());
    }

    #[test]
    fn gruus() {
        let inst = "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";
        assert_eq!(
            pub_gruu("alice@example.com", true, "10.0.0.1", 5060, inst),
            "sip:alice@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
        );
        assert_eq!(
            pub_gruu("alice", false, "10.0.0.1", 5060, inst),
            "sip:alice@10.0.0.1:5060;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
        );
        let tg = temp_gruu(
            1_700_000_000,
            "alice@example.com",
            inst,
            "cid-1@h",
            "s3cr3t",
            "10.0.0.1",
            5060,
        );
        assert!(tg.starts_with("sip:tgruu.") && tg.ends_with("@10.0.0.1:5060;gr"));
        let mut pp = p();
        pp.gruu_secret = "s3cr3t".into();
        let t = extract(tg.as_bytes(), &pp, true, true).unwrap();
        assert_eq!(t.aor, "alice@example.com");
        assert_eq!(t.instance, "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
        assert_eq!(t.callid, "cid-1@h");
        // a wrong secret does not reveal the AoR
        assert_ne!(
            extract(tg.as_bytes(), &p(), true, true).map(|t| t.aor),
            Ok("alice@example.com".into())
        );
        // public GRUU in a Request-URI
        let t = extract(
            b"sip:alice@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
            &p(),
            true,
            true,
        )
        .unwrap();
        assert_eq!(t.aor, "alice@example.com");
        assert_eq!(t.instance, "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
        assert!(t.callid.is_empty());
    }
}
