//! The registrar's `modparam`s with OpenSIPS 3.5's names and defaults.

use sipox_cfg_syntax::Value;

/// `q` when neither the Contact nor `default_q` give one (OpenSIPS `Q_UNSPECIFIED`).
pub const Q_UNSPECIFIED: i32 = -1;

/// The secret temporary GRUUs are XORed with when `gruu_secret` is not set.
pub const DEFAULT_GRUU_SECRET: &str = "0p3nS1pS";

/// Every registrar parameter (OpenSIPS 3.5 `registrar` + the common `lib/reg` ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// `default_expires` (3600): used when neither the Contact nor Expires give one.
    pub default_expires: u32,
    /// `min_expires` (60): shorter non-zero expires are raised to it; 0 disables.
    pub min_expires: u32,
    /// `max_expires` (0): longer expires are lowered to it; 0 disables.
    pub max_expires: u32,
    /// `default_q` (unspecified) in thousandths.
    pub default_q: i32,
    /// `tcp_persistent_flag`: message flag name (or number) keeping TCP connections open.
    pub tcp_persistent_flag: Option<String>,
    /// `realm_prefix`: stripped from the AoR domain.
    pub realm_prefix: String,
    /// `case_sensitive` (1): AoR user parts compared case-sensitively.
    pub case_sensitive: bool,
    /// `received_avp`: the AVP (`$avp(name)`) holding the received URI to save.
    pub received_avp: Option<String>,
    /// `received_param` ("received"): the Contact parameter showing it in the 200 OK.
    pub received_param: String,
    /// `expires_max_deviation` (0): random ± seconds added to a new contact's expires.
    pub expires_max_deviation: u32,
    /// `max_contacts` (0): contacts per AoR; 0 disables.
    pub max_contacts: u32,
    /// `max_username_len` (64).
    pub max_username_len: usize,
    /// `max_domain_len` (64).
    pub max_domain_len: usize,
    /// `max_aor_len` (256).
    pub max_aor_len: usize,
    /// `max_contact_len` (255).
    pub max_contact_len: usize,
    /// `retry_after` (0): `Retry-After` added to 5xx replies when non-zero.
    pub retry_after: u32,
    /// `sock_hdr_name`: header naming the socket to save with the `socket-header` flag.
    pub sock_hdr_name: Option<String>,
    /// `mcontact_avp` (cached registrations; accepted, not used).
    pub mcontact_avp: Option<String>,
    /// `attr_avp`: AVP saved with each contact and restored by `lookup`.
    pub attr_avp: Option<String>,
    /// `gruu_secret` (`0p3nS1pS`).
    pub gruu_secret: String,
    /// `disable_gruu` (1).
    pub disable_gruu: bool,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            default_expires: 3600,
            min_expires: 60,
            max_expires: 0,
            default_q: Q_UNSPECIFIED,
            tcp_persistent_flag: None,
            realm_prefix: String::new(),
            case_sensitive: true,
            received_avp: None,
            received_param: "received".into(),
            expires_max_deviation: 0,
            max_contacts: 0,
            max_username_len: 64,
            max_domain_len: 64,
            max_aor_len: 256,
            max_contact_len: 255,
            retry_after: 0,
            sock_hdr_name: None,
            mcontact_avp: None,
            attr_avp: None,
            gruu_secret: DEFAULT_GRUU_SECRET.into(),
            disable_gruu: true,
        }
    }
}

impl Params {
    /// Builds the parameters from `modparam("registrar", name, value)` pairs, in order, and
    /// normalizes them as OpenSIPS does at start (`min_expires` ≤ `default_expires` ≤
    /// `max_expires`, `default_q` within 0..=1000). Unknown names (push notification
    /// parameters) are accepted and ignored.
    ///
    /// # Errors
    /// A parameter of the wrong type.
    pub fn from_modparams(items: &[(String, Value)]) -> Result<Self, String> {
        let mut p = Self::default();
        for (name, v) in items {
            let int = || -> Result<i64, String> {
                match v {
                    Value::Int(i) => Ok(*i),
                    Value::Bool(b) => Ok(i64::from(*b)),
                    Value::Str(s) | Value::Ident(s) => s
                        .trim()
                        .parse()
                        .map_err(|_| format!("registrar: {name} expects an integer, got {s:?}")),
                    _ => Err(format!("registrar: {name} expects an integer")),
                }
            };
            let text = || -> Option<String> {
                match v {
                    Value::Str(s) | Value::Ident(s) => Some(s.clone()),
                    Value::Int(i) => Some(i.to_string()),
                    _ => None,
                }
            };
            let uint = || int().map(|i| u32::try_from(i.max(0)).unwrap_or(u32::MAX));
            let size = || int().map(|i| usize::try_from(i.max(0)).unwrap_or(usize::MAX));
            match name.as_str() {
                "default_expires" => p.default_expires = uint()?,
                "min_expires" => p.min_expires = uint()?,
                "max_expires" => p.max_expires = uint()?,
                "default_q" => p.default_q = i32::try_from(int()?).unwrap_or(Q_UNSPECIFIED),
                "tcp_persistent_flag" => p.tcp_persistent_flag = text(),
                "realm_prefix" => p.realm_prefix = text().unwrap_or_default(),
                "case_sensitive" => p.case_sensitive = int()? != 0,
                "received_avp" => p.received_avp = text(),
                "received_param" => p.received_param = text().unwrap_or_default(),
                "expires_max_deviation" => p.expires_max_deviation = uint()?,
                "max_contacts" => p.max_contacts = uint()?,
                "max_username_len" => p.max_username_len = size()?,
                "max_domain_len" => p.max_domain_len = size()?,
                "max_aor_len" => p.max_aor_len = size()?,
                "max_contact_len" => p.max_contact_len = size()?,
                "retry_after" => p.retry_after = uint()?,
                "sock_hdr_name" => p.sock_hdr_name = text(),
                "mcontact_avp" => p.mcontact_avp = text(),
                "attr_avp" => p.attr_avp = text(),
                "gruu_secret" => {
                    p.gruu_secret = text().unwrap_or_else(|| DEFAULT_GRUU_SECRET.into());
                }
                "disable_gruu" => p.disable_gruu = int()? != 0,
                _ => {}
            }
        }
        if p.min_expires > p.default_expires {
            p.min_expires = p.default_expires;
        }
        if p.max_expires != 0 && p.max_expires < p.default_expires {
            p.max_expires = p.default_expires;
        }
        if p.default_q != Q_UNSPECIFIED {
            p.default_q = p.default_q.clamp(0, 1000);
        }
        if p.gruu_secret.is_empty() {
            p.gruu_secret = DEFAULT_GRUU_SECRET.into();
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn defaults_are_opensips_35() {
        let p = Params::from_modparams(&[]).unwrap();
        assert_eq!(p.default_expires, 3600);
        assert_eq!(p.min_expires, 60);
        assert_eq!(p.max_expires, 0);
        assert_eq!(p.default_q, Q_UNSPECIFIED);
        assert!(p.case_sensitive);
        assert_eq!(p.received_param, "received");
        assert!(p.disable_gruu);
        assert_eq!(p.gruu_secret, DEFAULT_GRUU_SECRET);
        assert_eq!(p.max_contacts, 0);
        assert_eq!(p.retry_after, 0);
    }

    #[test]
    fn values_and_normalization() {
        let p = Params::from_modparams(&mp(&[
            ("default_expires", Value::Int(600)),
            ("min_expires", Value::Int(900)),
            ("max_expires", Value::Int(300)),
            ("default_q", Value::Int(1500)),
            ("case_sensitive", Value::Int(0)),
            ("received_avp", Value::Str("$avp(rcv)".into())),
            ("disable_gruu", Value::Int(0)),
            ("gruu_secret", Value::Str("top".into())),
            ("pn_enable", Value::Bool(true)),
        ]))
        .unwrap();
        assert_eq!(p.min_expires, 600, "min_expires lowered to default_expires");
        assert_eq!(p.max_expires, 600, "max_expires raised to default_expires");
        assert_eq!(p.default_q, 1000);
        assert!(!p.case_sensitive);
        assert_eq!(p.received_avp.as_deref(), Some("$avp(rcv)"));
        assert!(!p.disable_gruu);
        assert_eq!(p.gruu_secret, "top");
    }

    #[test]
    fn wrong_type_is_an_error() {
        assert!(Params::from_modparams(&mp(&[("max_contacts", Value::Str("x".into()))])).is_err());
    }
}
