//! Header names: the known kinds (with RFC compact forms) and their classification.

use crate::scan::eq_ic;

macro_rules! header_kinds {
    ($( $v:ident = $name:literal $(| $compact:literal)? ),* $(,)?) => {
        /// A header field name known to the core. Names are matched case-insensitively, compact
        /// forms included (`v` = Via, `f` = From, ...). Everything else is [`HeaderKind::Other`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        #[non_exhaustive]
        pub enum HeaderKind {
            $( #[doc = $name] $v, )*
            /// A header the core does not know by name.
            Other,
        }

        impl HeaderKind {
            /// All known kinds, in declaration order (without `Other`).
            pub const ALL: &'static [Self] = &[$(Self::$v),*];

            /// The canonical (long) header name.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$v => $name, )*
                    Self::Other => "",
                }
            }

            /// The RFC compact form, if the header has one.
            pub const fn compact(self) -> Option<u8> {
                match self {
                    $( $( Self::$v => Some($compact), )? )*
                    _ => None,
                }
            }

            fn from_long(name: &[u8]) -> Self {
                $( if eq_ic(name, $name.as_bytes()) { return Self::$v; } )*
                Self::Other
            }
        }
    };
}

header_kinds! {
    Via = "Via" | b'v',
    From = "From" | b'f',
    To = "To" | b't',
    CallId = "Call-ID" | b'i',
    CSeq = "CSeq",
    Contact = "Contact" | b'm',
    MaxForwards = "Max-Forwards",
    ContentLength = "Content-Length" | b'l',
    ContentType = "Content-Type" | b'c',
    Route = "Route",
    RecordRoute = "Record-Route",
    Path = "Path",
    ServiceRoute = "Service-Route",
    Expires = "Expires",
    MinExpires = "Min-Expires",
    Authorization = "Authorization",
    ProxyAuthorization = "Proxy-Authorization",
    WwwAuthenticate = "WWW-Authenticate",
    ProxyAuthenticate = "Proxy-Authenticate",
    Supported = "Supported" | b'k',
    Require = "Require",
    ProxyRequire = "Proxy-Require",
    Unsupported = "Unsupported",
    Allow = "Allow",
    AllowEvents = "Allow-Events" | b'u',
    Event = "Event" | b'o',
    SubscriptionState = "Subscription-State",
    SecurityClient = "Security-Client",
    SecurityServer = "Security-Server",
    SecurityVerify = "Security-Verify",
    Date = "Date",
    RetryAfter = "Retry-After",
    Reason = "Reason",
    SessionExpires = "Session-Expires" | b'x',
    MinSe = "Min-SE",
    ReferTo = "Refer-To" | b'r',
    ReferredBy = "Referred-By" | b'b',
    PAssertedIdentity = "P-Asserted-Identity",
    PPreferredIdentity = "P-Preferred-Identity",
    Diversion = "Diversion",
    RemotePartyId = "Remote-Party-ID",
    UserAgent = "User-Agent",
    Server = "Server",
    Accept = "Accept" | b'a',
    ContentEncoding = "Content-Encoding" | b'e',
    ContentDisposition = "Content-Disposition",
    Subject = "Subject" | b's',
    Identity = "Identity" | b'y',
    Privacy = "Privacy",
    RSeq = "RSeq",
    RAck = "RAck",
    Replaces = "Replaces",
    Warning = "Warning",
    Organization = "Organization",
    Priority = "Priority",
    AcceptContact = "Accept-Contact",
    RejectContact = "Reject-Contact" | b'j',
    RequestDisposition = "Request-Disposition" | b'd',
    PAccessNetworkInfo = "P-Access-Network-Info",
    PChargingVector = "P-Charging-Vector",
    PAssociatedUri = "P-Associated-URI",
    PVisitedNetworkId = "P-Visited-Network-ID",
    SipEtag = "SIP-ETag",
    SipIfMatch = "SIP-If-Match",
}

/// Number of known kinds (the size of per-kind lookup tables).
pub const KIND_COUNT: usize = HeaderKind::Other as usize;

impl HeaderKind {
    /// Classifies a header name (no surrounding white space), case-insensitively.
    #[inline]
    pub fn classify(name: &[u8]) -> Self {
        if name.len() == 1 {
            return Self::from_compact(name[0].to_ascii_lowercase());
        }
        // Fast path for the headers every message carries.
        match name.len() {
            3 if eq_ic(name, b"Via") => return Self::Via,
            4 if eq_ic(name, b"From") => return Self::From,
            2 if eq_ic(name, b"To") => return Self::To,
            7 if eq_ic(name, b"Call-ID") => return Self::CallId,
            4 if eq_ic(name, b"CSeq") => return Self::CSeq,
            7 if eq_ic(name, b"Contact") => return Self::Contact,
            12 if eq_ic(name, b"Max-Forwards") => return Self::MaxForwards,
            14 if eq_ic(name, b"Content-Length") => return Self::ContentLength,
            12 if eq_ic(name, b"Content-Type") => return Self::ContentType,
            _ => {}
        }
        Self::from_long(name)
    }

    fn from_compact(c: u8) -> Self {
        match c {
            b'v' => Self::Via,
            b'f' => Self::From,
            b't' => Self::To,
            b'i' => Self::CallId,
            b'm' => Self::Contact,
            b'l' => Self::ContentLength,
            b'c' => Self::ContentType,
            b'k' => Self::Supported,
            b'u' => Self::AllowEvents,
            b'o' => Self::Event,
            b'x' => Self::SessionExpires,
            b'r' => Self::ReferTo,
            b'b' => Self::ReferredBy,
            b'a' => Self::Accept,
            b'e' => Self::ContentEncoding,
            b's' => Self::Subject,
            b'y' => Self::Identity,
            b'j' => Self::RejectContact,
            b'd' => Self::RequestDisposition,
            _ => Self::Other,
        }
    }

    /// True for headers whose value is a comma-separated list that may be split across lines
    /// (RFC 3261 §7.3.1). Single-value headers (From, To, Call-ID, CSeq, ...) are not.
    pub const fn is_list(self) -> bool {
        matches!(
            self,
            Self::Via
                | Self::Contact
                | Self::Route
                | Self::RecordRoute
                | Self::Path
                | Self::ServiceRoute
                | Self::Supported
                | Self::Require
                | Self::ProxyRequire
                | Self::Unsupported
                | Self::Allow
                | Self::AllowEvents
                | Self::SecurityClient
                | Self::SecurityServer
                | Self::SecurityVerify
                | Self::Reason
                | Self::PAssertedIdentity
                | Self::PPreferredIdentity
                | Self::Diversion
                | Self::RemotePartyId
                | Self::Accept
                | Self::ContentEncoding
                | Self::Privacy
                | Self::Warning
                | Self::PAssociatedUri
                | Self::AcceptContact
                | Self::RejectContact
        )
    }

    /// True for headers RFC 3261 allows only once per message.
    pub const fn is_single(self) -> bool {
        matches!(
            self,
            Self::From
                | Self::To
                | Self::CallId
                | Self::CSeq
                | Self::MaxForwards
                | Self::ContentLength
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_long_and_compact() {
        assert_eq!(HeaderKind::classify(b"vIa"), HeaderKind::Via);
        assert_eq!(HeaderKind::classify(b"v"), HeaderKind::Via);
        assert_eq!(HeaderKind::classify(b"L"), HeaderKind::ContentLength);
        assert_eq!(
            HeaderKind::classify(b"record-route"),
            HeaderKind::RecordRoute
        );
        assert_eq!(HeaderKind::classify(b"X-Foo"), HeaderKind::Other);
        assert_eq!(HeaderKind::classify(b"q"), HeaderKind::Other);
        for k in HeaderKind::ALL {
            assert_eq!(HeaderKind::classify(k.name().as_bytes()), *k, "{k:?}");
            if let Some(c) = k.compact() {
                assert_eq!(HeaderKind::classify(&[c]), *k);
            }
        }
    }
}
