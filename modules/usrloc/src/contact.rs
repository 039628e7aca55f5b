//! One registered binding (OpenSIPS's `ucontact_t`).

use std::collections::BTreeMap;

/// `q` when the Contact had no `q` parameter (OpenSIPS `Q_UNSPECIFIED`).
pub const Q_UNSPECIFIED: i32 = -1;

/// One registered contact of an AoR, with every field OpenSIPS keeps.
///
/// Times are seconds since the Unix epoch. `expires == 0` is a permanent contact (never
/// expires); otherwise the contact is expired once `expires <= now`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contact {
    /// The contact URI as registered.
    pub uri: String,
    /// `q` × 1000 (0..=1000), or [`Q_UNSPECIFIED`].
    pub q: i32,
    /// Absolute expiry time; 0: permanent.
    pub expires: i64,
    /// Call-ID of the registration.
    pub callid: String,
    /// CSeq number of the registration.
    pub cseq: u32,
    /// Contact flags (OpenSIPS `flags`, e.g. the NAT flag the registrar sets).
    pub flags: u32,
    /// Branch flags saved with the contact (OpenSIPS `cflags`), as a bitmask.
    pub cflags: u32,
    /// User-Agent of the registration.
    pub user_agent: String,
    /// The source address the REGISTER came from, as a SIP URI (`sip:ip:port;transport=x`),
    /// empty when the registrar did not save it.
    pub received: String,
    /// The Path header value(s), comma-joined, empty when none.
    pub path: String,
    /// The local socket the REGISTER arrived on, `proto:ip:port`; empty when unknown.
    pub socket: String,
    /// Supported methods bitmask (from `Allow`/`methods`), `None` when unset.
    pub methods: Option<u32>,
    /// `+sip.instance` value, empty when none.
    pub instance: String,
    /// RFC 5626 `reg-id`, 0 when none. Kept in memory only: the `location` table has no
    /// column for it, so it does not survive a restart (as in OpenSIPS).
    pub reg_id: u32,
    /// Opaque attributes saved by the registrar (`save(..., "attr")`).
    pub attr: String,
    /// When the binding was last changed.
    pub last_modified: i64,
    /// The contact id: unique and stable for the life of the binding (our scheme:
    /// shard index, record label and contact label packed in 64 bits; see
    /// [`crate::Usrloc`]). Assigned by usrloc on insert.
    pub contact_id: u64,
    /// The key-value store (`ul_add_key`/`ul_get_key`/`ul_del_key`), saved as a JSON object
    /// in the `kv_store` column.
    pub kv: BTreeMap<String, String>,
}

impl Contact {
    /// A contact with only its URI set (q unspecified, permanent).
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            q: Q_UNSPECIFIED,
            ..Self::default()
        }
    }

    /// True when the contact is still valid at `now` (permanent, or `expires > now`)
    /// (OpenSIPS `VALID_CONTACT`).
    pub fn is_valid(&self, now: i64) -> bool {
        self.expires == 0 || self.expires > now
    }

    /// True when the contact is expired at `now` (not permanent and `expires <= now`).
    pub fn is_expired(&self, now: i64) -> bool {
        !self.is_valid(now)
    }

    /// `q` as OpenSIPS prints it: `"1"`, `"0.5"`, `"0.005"`; `None` when unspecified.
    pub fn q_str(&self) -> Option<String> {
        q_to_str(self.q)
    }
}

/// Prints a q value (× 1000) the way OpenSIPS does (`q2str`): no trailing zeros; `None` for
/// [`Q_UNSPECIFIED`].
pub fn q_to_str(q: i32) -> Option<String> {
    if q == Q_UNSPECIFIED {
        return None;
    }
    let q = q.clamp(0, 1000);
    if q == 1000 {
        return Some("1".into());
    }
    if q == 0 {
        return Some("0".into());
    }
    let mut s = format!("0.{q:03}");
    while s.ends_with('0') {
        s.pop();
    }
    Some(s)
}

/// Parses a q value (`"0.5"`, `"1"`, `"1.0"`) into thousandths; `None` when malformed or
/// out of 0..1.
pub fn q_from_str(s: &str) -> Option<i32> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let i: i32 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut f: i32 = 0;
    for (k, b) in frac.bytes().enumerate() {
        f += i32::from(b - b'0') * [100, 10, 1][k];
    }
    let q = i * 1000 + f;
    (0..=1000).contains(&q).then_some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_round_trip() {
        assert_eq!(q_to_str(1000).as_deref(), Some("1"));
        assert_eq!(q_to_str(500).as_deref(), Some("0.5"));
        assert_eq!(q_to_str(5).as_deref(), Some("0.005"));
        assert_eq!(q_to_str(0).as_deref(), Some("0"));
        assert_eq!(q_to_str(Q_UNSPECIFIED), None);
        assert_eq!(q_from_str("0.5"), Some(500));
        assert_eq!(q_from_str("1.0"), Some(1000));
        assert_eq!(q_from_str(".25"), Some(250));
        assert_eq!(q_from_str("1.5"), None);
        assert_eq!(q_from_str("0.0001"), None);
        assert_eq!(q_from_str("x"), None);
    }

    #[test]
    fn validity() {
        let mut c = Contact::new("sip:a@b");
        assert!(c.is_valid(1_000));
        c.expires = 100;
        assert!(c.is_valid(99));
        assert!(c.is_expired(100));
    }
}
