//! The `E_UL_*` events and their parameters, named and ordered as OpenSIPS 3.5 raises them.

use crate::Contact;

/// An AoR was created (parameters `domain`, `aor`).
pub const E_UL_AOR_INSERT: &str = "E_UL_AOR_INSERT";
/// An AoR was deleted: its last contact removed or expired (parameters `domain`, `aor`).
pub const E_UL_AOR_DELETE: &str = "E_UL_AOR_DELETE";
/// A contact was added ([`CONTACT_PARAMS`]).
pub const E_UL_CONTACT_INSERT: &str = "E_UL_CONTACT_INSERT";
/// A contact was changed (refreshed by a REGISTER, edited) ([`CONTACT_PARAMS`]).
pub const E_UL_CONTACT_UPDATE: &str = "E_UL_CONTACT_UPDATE";
/// A contact was removed or expired ([`CONTACT_PARAMS`]).
pub const E_UL_CONTACT_DELETE: &str = "E_UL_CONTACT_DELETE";
/// A contact must be refreshed (OpenSIPS raises it for push-notification contacts;
/// parameters [`REFRESH_PARAMS`]). sipox raises it only through
/// [`crate::Usrloc::raise_contact_refresh`].
pub const E_UL_CONTACT_REFRESH: &str = "E_UL_CONTACT_REFRESH";

/// The parameters of the AoR events, in order.
pub const AOR_PARAMS: [&str; 2] = ["domain", "aor"];

/// The parameters of the contact insert/update/delete events, in order. `qval` is q × 1000
/// (-1 when unspecified), `bflags` the branch flags as a number, `expires` the absolute
/// expiry time, `latency` the last ping latency (always 0: usrloc does not ping), `shtag`
/// the sharing tag (always empty: no clustering).
pub const CONTACT_PARAMS: [&str; 15] = [
    "domain",
    "aor",
    "uri",
    "received",
    "path",
    "qval",
    "user_agent",
    "socket",
    "bflags",
    "expires",
    "callid",
    "cseq",
    "attr",
    "latency",
    "shtag",
];

/// The parameters of `E_UL_CONTACT_REFRESH`, in order.
pub const REFRESH_PARAMS: [&str; 13] = [
    "domain",
    "aor",
    "uri",
    "received",
    "user_agent",
    "socket",
    "bflags",
    "expires",
    "callid",
    "attr",
    "shtag",
    "reason",
    "req_callid",
];

pub(crate) fn aor(
    name: &'static str,
    domain: &str,
    aor: &str,
) -> (&'static str, Vec<(String, String)>) {
    (
        name,
        vec![
            ("domain".into(), domain.to_owned()),
            ("aor".into(), aor.to_owned()),
        ],
    )
}

pub(crate) fn contact(
    name: &'static str,
    domain: &str,
    aor: &str,
    c: &Contact,
) -> (&'static str, Vec<(String, String)>) {
    let vals = [
        domain.to_owned(),
        aor.to_owned(),
        c.uri.clone(),
        c.received.clone(),
        c.path.clone(),
        c.q.to_string(),
        c.user_agent.clone(),
        c.socket.clone(),
        c.cflags.to_string(),
        c.expires.to_string(),
        c.callid.clone(),
        c.cseq.to_string(),
        c.attr.clone(),
        "0".to_owned(),
        String::new(),
    ];
    (
        name,
        CONTACT_PARAMS
            .iter()
            .zip(vals)
            .map(|(k, v)| ((*k).to_owned(), v))
            .collect(),
    )
}

pub(crate) fn refresh(
    domain: &str,
    aor: &str,
    c: &Contact,
    reason: &str,
    req_callid: &str,
) -> (&'static str, Vec<(String, String)>) {
    let vals = [
        domain.to_owned(),
        aor.to_owned(),
        c.uri.clone(),
        c.received.clone(),
        c.user_agent.clone(),
        c.socket.clone(),
        c.cflags.to_string(),
        c.expires.to_string(),
        c.callid.clone(),
        c.attr.clone(),
        String::new(),
        reason.to_owned(),
        req_callid.to_owned(),
    ];
    (
        E_UL_CONTACT_REFRESH,
        REFRESH_PARAMS
            .iter()
            .zip(vals)
            .map(|(k, v)| ((*k).to_owned(), v))
            .collect(),
    )
}
