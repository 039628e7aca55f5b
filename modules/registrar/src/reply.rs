//! Replies: the registrar's error kinds (OpenSIPS `rerrno`) with their codes, reasons and
//! `P-Registrar-Error` texts, and the `Contact` header listing the current bindings.

use std::fmt::Write as _;

use crate::aor;

/// Why a REGISTER was refused (OpenSIPS's `rerrno` values that can happen here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegError {
    /// Internal failure (usrloc unavailable).
    #[error("Server Internal Error")]
    Internal,
    /// Same Call-ID with a lower (or a stale equal) CSeq.
    #[error("Invalid CSeq number")]
    InvCseq,
    /// The AoR is too long.
    #[error("Address Of Record too long")]
    AorLen,
    /// The AoR URI does not parse or has no user part.
    #[error("Error while parsing AOR")]
    AorParse,
    /// A bad `q` parameter.
    #[error("Invalid q param in contact")]
    InvQ,
    /// The message does not parse.
    #[error("Message parse error")]
    Parse,
    /// No To header.
    #[error("To header not found")]
    ToMiss,
    /// No Call-ID header.
    #[error("Call-ID header not found")]
    CidMiss,
    /// No CSeq header.
    #[error("CSeq header not found")]
    CsMiss,
    /// A Contact header does not parse.
    #[error("Contact parse error")]
    ParseCont,
    /// `Contact: *` with a non-zero Expires.
    #[error("* used in contact and expires is not zero")]
    StarExp,
    /// `Contact: *` with other contacts.
    #[error("* used in contact and more than 1 contact")]
    StarCont,
    /// The user part does not unescape.
    #[error("Error while unescaping username")]
    Unescape,
    /// More contacts than `max_contacts`.
    #[error("Too many registered contacts")]
    TooMany,
    /// A contact URI (or received) longer than allowed.
    #[error("Contact/received too long")]
    ContactLen,
    /// A Path header does not parse.
    #[error("Path parse error")]
    ParsePath,
    /// Path present, `path-strict`, and the UA does not support `path`.
    #[error("No support for found Path indicated")]
    PathUnsup,
}

impl RegError {
    /// The reply status code.
    pub fn code(self) -> u16 {
        match self {
            Self::Internal | Self::AorLen => 500,
            Self::TooMany => 503,
            Self::PathUnsup => 420,
            _ => 400,
        }
    }

    /// The reply reason phrase.
    pub fn reason(self) -> &'static str {
        match self.code() {
            500 => "Server Internal Error",
            503 => "Service Unavailable",
            420 => "Bad Extension",
            _ => "Bad Request",
        }
    }
}

/// One binding as the 200 OK lists it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Binding<'a> {
    /// The contact URI.
    pub uri: &'a str,
    /// q × 1000, or -1.
    pub q: i32,
    /// Seconds left.
    pub expires: i64,
    /// The received URI saved with it (empty: none).
    pub received: &'a str,
    /// The `+sip.instance` saved with it (`<urn:...>`, empty: none).
    pub instance: &'a str,
    /// The Call-ID of its registration.
    pub callid: &'a str,
}

/// What the GRUU params of a 200 OK need.
#[derive(Debug, Clone, Copy)]
pub struct GruuCx<'a> {
    /// The AoR key.
    pub aor: &'a str,
    /// usrloc `use_domain`.
    pub use_domain: bool,
    /// Host and port of the socket the REGISTER came in on.
    pub host: &'a str,
    /// Its port.
    pub port: u16,
    /// `gruu_secret`.
    pub secret: &'a str,
    /// Now (seconds), stamped into temporary GRUUs.
    pub now: i64,
}

/// Appends `Contact: <uri>;q=..;expires=..[;received=".."][;pub-gruu=..;temp-gruu=..;
/// +sip.instance=..], ...\r\n` for `bindings` (nothing when empty).
pub fn contact_header(
    out: &mut String,
    bindings: &[Binding<'_>],
    received_param: &str,
    gruu: Option<&GruuCx<'_>>,
) {
    if bindings.is_empty() {
        return;
    }
    out.push_str("Contact: ");
    for (i, b) in bindings.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "<{}>", b.uri);
        if let Some(q) = q_str(b.q) {
            let _ = write!(out, ";q={q}");
        }
        let _ = write!(out, ";expires={}", b.expires.max(0));
        if !b.received.is_empty() {
            let _ = write!(out, ";{received_param}=\"{}\"", b.received);
        }
        if let Some(g) = gruu
            && !b.instance.is_empty()
        {
            let pubg = aor::pub_gruu(g.aor, g.use_domain, g.host, g.port, b.instance);
            let tmp = aor::temp_gruu(g.now, g.aor, b.instance, b.callid, g.secret, g.host, g.port);
            let _ = write!(
                out,
                ";pub-gruu=\"{pubg}\";temp-gruu=\"{tmp}\";+sip.instance=\"{}\"",
                b.instance
            );
        }
    }
    out.push_str("\r\n");
}

/// `q` as OpenSIPS prints it (`1`, `0.5`, `0.005`); `None` when unspecified.
pub fn q_str(q: i32) -> Option<String> {
    if q < 0 {
        return None;
    }
    let q = q.min(1000);
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

/// The extra header lines of an error reply: `P-Registrar-Error` and, for 5xx with a
/// non-zero `retry_after`, `Retry-After`.
pub fn error_headers(out: &mut String, e: RegError, retry_after: u32) {
    let _ = write!(out, "P-Registrar-Error: {e}\r\n");
    if (500..600).contains(&e.code()) && retry_after > 0 {
        let _ = write!(out, "Retry-After: {retry_after}\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_reasons_infos() {
        let table = [
            (
                RegError::StarExp,
                400,
                "Bad Request",
                "* used in contact and expires is not zero",
            ),
            (
                RegError::StarCont,
                400,
                "Bad Request",
                "* used in contact and more than 1 contact",
            ),
            (RegError::InvCseq, 400, "Bad Request", "Invalid CSeq number"),
            (
                RegError::InvQ,
                400,
                "Bad Request",
                "Invalid q param in contact",
            ),
            (
                RegError::TooMany,
                503,
                "Service Unavailable",
                "Too many registered contacts",
            ),
            (
                RegError::PathUnsup,
                420,
                "Bad Extension",
                "No support for found Path indicated",
            ),
            (
                RegError::AorLen,
                500,
                "Server Internal Error",
                "Address Of Record too long",
            ),
            (
                RegError::AorParse,
                400,
                "Bad Request",
                "Error while parsing AOR",
            ),
        ];
        for (e, code, reason, info) in table {
            assert_eq!(
                (e.code(), e.reason(), e.to_string().as_str()),
                (code, reason, info)
            );
        }
        let mut h = String::new();
        error_headers(&mut h, RegError::TooMany, 30);
        assert_eq!(
            h,
            "P-Registrar-Error: Too many registered contacts\r\nRetry-After: 30\r\n"
        );
        let mut h = String::new();
        error_headers(&mut h, RegError::InvQ, 30);
        assert_eq!(h, "P-Registrar-Error: Invalid q param in contact\r\n");
    }

    #[test]
    fn contact_listing() {
        let mut out = String::new();
        contact_header(&mut out, &[], "received", None);
        assert!(out.is_empty());
        let b = [
            Binding {
                uri: "sip:a@1.2.3.4",
                q: 500,
                expires: 3600,
                ..Binding::default()
            },
            Binding {
                uri: "sip:a@5.6.7.8:5070",
                q: -1,
                expires: 59,
                received: "sip:9.9.9.9:1234",
                ..Binding::default()
            },
        ];
        contact_header(&mut out, &b, "rcv", None);
        assert_eq!(
            out,
            "Contact: <sip:a@1.2.3.4>;q=0.5;expires=3600, \
             <sip:a@5.6.7.8:5070>;expires=59;rcv=\"sip:9.9.9.9:1234\"\r\n"
        );
    }

    #[test]
    fn contact_listing_with_gruu() {
        let mut out = String::new();
        let b = [Binding {
            uri: "sip:a@1.2.3.4",
            q: 1000,
            expires: 10,
            instance: "<urn:uuid:1>",
            callid: "c1",
            ..Binding::default()
        }];
        let g = GruuCx {
            aor: "a@example.com",
            use_domain: true,
            host: "10.0.0.1",
            port: 5060,
            secret: "s",
            now: 5,
        };
        contact_header(&mut out, &b, "received", Some(&g));
        assert!(out.starts_with(
            "Contact: <sip:a@1.2.3.4>;q=1;expires=10;pub-gruu=\"sip:a@example.com;gr=urn:uuid:1\";temp-gruu=\"sip:tgruu."
        ));
        assert!(out.ends_with("@10.0.0.1:5060;gr\";+sip.instance=\"<urn:uuid:1>\"\r\n"));
    }

    #[test]
    fn q_printing() {
        assert_eq!(q_str(-1), None);
        assert_eq!(q_str(0).as_deref(), Some("0"));
        assert_eq!(q_str(100).as_deref(), Some("0.1"));
        assert_eq!(q_str(125).as_deref(), Some("0.125"));
        assert_eq!(q_str(1000).as_deref(), Some("1"));
    }
}
