//! The SDP data model, generic over its byte storage.
//!
//! `B` is `&'a [u8]` for the zero-copy parse result ([`Sdp`]) and `Vec<u8>`
//! for the editable model ([`SdpOwned`]).

use crate::attr::{self, Direction, Fmtp, Rtcp, RtpMap};

/// A parsed SDP body borrowing from the input bytes.
pub type Sdp<'a> = SessionDescription<&'a [u8]>;

/// An owned, editable SDP body (see the `impl SessionDescription<Vec<u8>>` block).
pub type SdpOwned = SessionDescription<Vec<u8>>;

/// A whole session description: session-level lines plus media sections.
///
/// Single-valued lines that appear more than once, and lines of unknown type,
/// are kept verbatim in [`extra`](Self::extra) (or [`Media::extra`]) in order of
/// appearance, so nothing in the input is silently dropped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionDescription<B> {
    /// `v=` protocol version.
    pub version: Option<u32>,
    /// `o=` origin.
    pub origin: Option<Origin<B>>,
    /// `s=` session name (may be empty).
    pub session_name: Option<B>,
    /// `i=` session information.
    pub information: Option<B>,
    /// `u=` URI.
    pub uri: Option<B>,
    /// `e=` email addresses.
    pub emails: Vec<B>,
    /// `p=` phone numbers.
    pub phones: Vec<B>,
    /// Session-level `c=` connection data.
    pub connection: Option<Connection<B>>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<Bandwidth<B>>,
    /// `t=` lines, each with its `r=` lines.
    pub timings: Vec<Timing<B>>,
    /// `z=` time-zone adjustments, raw (`<adjustment time> <offset> ...`).
    pub time_zones: Option<B>,
    /// Session-level `k=` key (obsolete, kept verbatim).
    pub key: Option<B>,
    /// Session-level `a=` attributes, in order.
    pub attributes: Vec<Attribute<B>>,
    /// Unknown and surplus session-level lines, verbatim, in order.
    pub extra: Vec<Line<B>>,
    /// `m=` sections, in order.
    pub media: Vec<Media<B>>,
}

impl<B> Default for SessionDescription<B> {
    fn default() -> Self {
        Self {
            version: None,
            origin: None,
            session_name: None,
            information: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            timings: Vec::new(),
            time_zones: None,
            key: None,
            attributes: Vec::new(),
            extra: Vec::new(),
            media: Vec::new(),
        }
    }
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
///
/// The numeric-looking fields are kept as bytes because real-world session
/// ids exceed 64 bits; see [`Origin::session_version_number`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin<B> {
    /// User name (`-` when none). Tolerantly, may contain spaces.
    pub username: B,
    /// Session id.
    pub session_id: B,
    /// Session version.
    pub session_version: B,
    /// Network type, normally `IN`.
    pub nettype: B,
    /// Address type, normally `IP4` or `IP6`.
    pub addrtype: B,
    /// Unicast address or host name of the originator.
    pub unicast_address: B,
}

/// `c=<nettype> <addrtype> <address>[/<ttl>][/<count>]`.
///
/// For `IP6` a single suffix is the address count; otherwise a single suffix
/// is the multicast TTL and a second one the count.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Connection<B> {
    /// Network type, normally `IN`.
    pub nettype: B,
    /// Address type, normally `IP4` or `IP6`.
    pub addrtype: B,
    /// The address without any `/ttl` or `/count` suffix.
    pub address: B,
    /// Multicast TTL (IPv4 only).
    pub ttl: Option<u32>,
    /// Number of consecutive multicast addresses.
    pub count: Option<u32>,
}

/// `b=<bwtype>:<bandwidth>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bandwidth<B> {
    /// Bandwidth type (`AS`, `CT`, `TIAS`, ...).
    pub bwtype: B,
    /// Value (kbit/s for `AS`/`CT`).
    pub value: u64,
}

/// `t=<start> <stop>` and the `r=` lines that follow it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Timing<B> {
    /// Start time (NTP seconds, 0 = unbounded).
    pub start: u64,
    /// Stop time (NTP seconds, 0 = unbounded).
    pub stop: u64,
    /// Raw `r=` values (`<interval> <duration> <offsets>...`), see
    /// [`parse_typed_time`](crate::parse_typed_time).
    pub repeats: Vec<B>,
}

/// `a=<name>[:<value>]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attribute<B> {
    /// Attribute name (text before the first `:`).
    pub name: B,
    /// Value (text after the first `:`), `None` for property attributes.
    pub value: Option<B>,
}

/// A line kept verbatim: `<kind>=<value>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Line<B> {
    /// The type letter.
    pub kind: u8,
    /// Everything after `=`, without the line end.
    pub value: B,
}

/// One media section: `m=<media> <port>[/<count>] <proto> <fmt> ...` and the
/// lines up to the next `m=`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Media<B> {
    /// Media type (`audio`, `video`, `application`, ...).
    pub media: B,
    /// Transport port (0 = rejected/disabled stream).
    pub port: u16,
    /// Optional `/count` of consecutive ports.
    pub port_count: Option<u32>,
    /// Transport protocol (`RTP/AVP`, `RTP/SAVPF`, `UDP/TLS/RTP/SAVPF`, ...).
    pub proto: B,
    /// Media formats (RTP payload types for RTP profiles).
    pub formats: Vec<B>,
    /// `i=` media title.
    pub information: Option<B>,
    /// Media-level `c=` lines (zero or more).
    pub connections: Vec<Connection<B>>,
    /// Media-level `b=` lines.
    pub bandwidths: Vec<Bandwidth<B>>,
    /// Media-level `k=` key.
    pub key: Option<B>,
    /// Media-level `a=` attributes, in order.
    pub attributes: Vec<Attribute<B>>,
    /// Unknown and surplus media-level lines, verbatim, in order.
    pub extra: Vec<Line<B>>,
}

fn own<B: AsRef<[u8]>>(b: &B) -> Vec<u8> {
    b.as_ref().to_vec()
}

fn own_opt<B: AsRef<[u8]>>(b: &Option<B>) -> Option<Vec<u8>> {
    b.as_ref().map(own)
}

impl<B: AsRef<[u8]>> Origin<B> {
    /// The session version as a number, if it is one that fits in `u64`.
    #[must_use]
    pub fn session_version_number(&self) -> Option<u64> {
        crate::parse::parse_u64(self.session_version.as_ref())
    }

    /// Copies into an owned origin.
    #[must_use]
    pub fn to_owned_model(&self) -> Origin<Vec<u8>> {
        Origin {
            username: own(&self.username),
            session_id: own(&self.session_id),
            session_version: own(&self.session_version),
            nettype: own(&self.nettype),
            addrtype: own(&self.addrtype),
            unicast_address: own(&self.unicast_address),
        }
    }
}

impl<B: AsRef<[u8]>> Connection<B> {
    /// True when the address type is `IP6` (case-insensitive).
    #[must_use]
    pub fn is_ip6(&self) -> bool {
        self.addrtype.as_ref().eq_ignore_ascii_case(b"IP6")
    }

    /// True when the address type is `IP4` (case-insensitive).
    #[must_use]
    pub fn is_ip4(&self) -> bool {
        self.addrtype.as_ref().eq_ignore_ascii_case(b"IP4")
    }

    /// Copies into an owned connection.
    #[must_use]
    pub fn to_owned_model(&self) -> Connection<Vec<u8>> {
        Connection {
            nettype: own(&self.nettype),
            addrtype: own(&self.addrtype),
            address: own(&self.address),
            ttl: self.ttl,
            count: self.count,
        }
    }
}

impl<B: AsRef<[u8]>> Bandwidth<B> {
    /// Copies into an owned bandwidth line.
    #[must_use]
    pub fn to_owned_model(&self) -> Bandwidth<Vec<u8>> {
        Bandwidth {
            bwtype: own(&self.bwtype),
            value: self.value,
        }
    }
}

impl<B: AsRef<[u8]>> Timing<B> {
    /// Copies into an owned timing.
    #[must_use]
    pub fn to_owned_model(&self) -> Timing<Vec<u8>> {
        Timing {
            start: self.start,
            stop: self.stop,
            repeats: self.repeats.iter().map(own).collect(),
        }
    }
}

impl<B: AsRef<[u8]>> Line<B> {
    /// Copies into an owned line.
    #[must_use]
    pub fn to_owned_model(&self) -> Line<Vec<u8>> {
        Line {
            kind: self.kind,
            value: own(&self.value),
        }
    }
}

impl<B: AsRef<[u8]>> Attribute<B> {
    /// The attribute name.
    #[must_use]
    pub fn name(&self) -> &[u8] {
        self.name.as_ref()
    }

    /// The attribute value, if any.
    #[must_use]
    pub fn value(&self) -> Option<&[u8]> {
        self.value.as_ref().map(AsRef::as_ref)
    }

    /// True when the name equals `name`, ignoring ASCII case.
    #[must_use]
    pub fn is(&self, name: &[u8]) -> bool {
        self.name.as_ref().eq_ignore_ascii_case(name)
    }

    /// Parses an `a=rtpmap:` value.
    #[must_use]
    pub fn as_rtpmap(&self) -> Option<RtpMap<'_>> {
        if self.is(b"rtpmap") {
            RtpMap::parse(self.value()?)
        } else {
            None
        }
    }

    /// Parses an `a=fmtp:` value.
    #[must_use]
    pub fn as_fmtp(&self) -> Option<Fmtp<'_>> {
        if self.is(b"fmtp") {
            Fmtp::parse(self.value()?)
        } else {
            None
        }
    }

    /// Parses an `a=rtcp:` value.
    #[must_use]
    pub fn as_rtcp(&self) -> Option<Rtcp<'_>> {
        if self.is(b"rtcp") {
            Rtcp::parse(self.value()?)
        } else {
            None
        }
    }

    /// The direction, if this is a value-less direction attribute.
    #[must_use]
    pub fn as_direction(&self) -> Option<Direction> {
        if self.value.is_some() {
            return None;
        }
        Direction::from_name(self.name.as_ref())
    }

    /// For attributes whose value starts with a media format (`rtpmap`,
    /// `fmtp`, `rtcp-fb`), that format token.
    #[must_use]
    pub fn format_token(&self) -> Option<&[u8]> {
        if self.is(b"rtpmap") || self.is(b"fmtp") || self.is(b"rtcp-fb") {
            attr::first_token(self.value()?)
        } else {
            None
        }
    }

    /// Copies into an owned attribute.
    #[must_use]
    pub fn to_owned_model(&self) -> Attribute<Vec<u8>> {
        Attribute {
            name: own(&self.name),
            value: own_opt(&self.value),
        }
    }
}

/// Read helpers shared by session and media level attribute lists.
macro_rules! attribute_readers {
    () => {
        /// First attribute named `name` (ASCII case-insensitive).
        #[must_use]
        pub fn attribute(&self, name: &[u8]) -> Option<&Attribute<B>> {
            self.attributes.iter().find(|a| a.is(name))
        }

        /// All attributes named `name` (ASCII case-insensitive), in order.
        pub fn attributes_named<'s>(
            &'s self,
            name: &'s [u8],
        ) -> impl Iterator<Item = &'s Attribute<B>> + 's {
            self.attributes.iter().filter(move |a| a.is(name))
        }

        /// Value of the first attribute named `name`, if it has one.
        #[must_use]
        pub fn attribute_value(&self, name: &[u8]) -> Option<&[u8]> {
            self.attribute(name).and_then(Attribute::value)
        }

        /// True when an attribute named `name` is present.
        #[must_use]
        pub fn has_attribute(&self, name: &[u8]) -> bool {
            self.attribute(name).is_some()
        }

        /// The last direction attribute at this level, if any.
        #[must_use]
        pub fn direction(&self) -> Option<Direction> {
            self.attributes
                .iter()
                .rev()
                .find_map(Attribute::as_direction)
        }
    };
}

impl<B: AsRef<[u8]>> SessionDescription<B> {
    attribute_readers!();

    /// The connection that applies to `media`: its first own `c=` line, else
    /// the session-level one.
    #[must_use]
    pub fn effective_connection<'s>(&'s self, media: &'s Media<B>) -> Option<&'s Connection<B>> {
        media.connections.first().or(self.connection.as_ref())
    }

    /// The direction that applies to `media`: media level, else session
    /// level, else `sendrecv` (the RFC default).
    #[must_use]
    pub fn effective_direction(&self, media: &Media<B>) -> Direction {
        media
            .direction()
            .or_else(|| self.direction())
            .unwrap_or(Direction::SendRecv)
    }

    /// Copies into an owned, editable model.
    #[must_use]
    pub fn to_owned_model(&self) -> SdpOwned {
        SessionDescription {
            version: self.version,
            origin: self.origin.as_ref().map(Origin::to_owned_model),
            session_name: own_opt(&self.session_name),
            information: own_opt(&self.information),
            uri: own_opt(&self.uri),
            emails: self.emails.iter().map(own).collect(),
            phones: self.phones.iter().map(own).collect(),
            connection: self.connection.as_ref().map(Connection::to_owned_model),
            bandwidths: self
                .bandwidths
                .iter()
                .map(Bandwidth::to_owned_model)
                .collect(),
            timings: self.timings.iter().map(Timing::to_owned_model).collect(),
            time_zones: own_opt(&self.time_zones),
            key: own_opt(&self.key),
            attributes: self
                .attributes
                .iter()
                .map(Attribute::to_owned_model)
                .collect(),
            extra: self.extra.iter().map(Line::to_owned_model).collect(),
            media: self.media.iter().map(Media::to_owned_model).collect(),
        }
    }
}

impl<B: AsRef<[u8]>> Media<B> {
    attribute_readers!();

    /// The media formats as byte slices.
    pub fn format_list(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.formats.iter().map(AsRef::as_ref)
    }

    /// The media formats that are numeric RTP payload types.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.format_list().filter_map(attr::parse_payload_type)
    }

    /// True when `fmt` is one of the media formats.
    #[must_use]
    pub fn has_format(&self, fmt: &[u8]) -> bool {
        self.format_list().any(|f| f == fmt)
    }

    /// All parseable `a=rtpmap` attributes, in order.
    pub fn rtpmaps(&self) -> impl Iterator<Item = RtpMap<'_>> + '_ {
        self.attributes.iter().filter_map(Attribute::as_rtpmap)
    }

    /// The `a=rtpmap` for payload type `pt`.
    #[must_use]
    pub fn rtpmap(&self, pt: u8) -> Option<RtpMap<'_>> {
        self.rtpmaps().find(|r| r.payload_type == pt)
    }

    /// All parseable `a=fmtp` attributes, in order.
    pub fn fmtps(&self) -> impl Iterator<Item = Fmtp<'_>> + '_ {
        self.attributes.iter().filter_map(Attribute::as_fmtp)
    }

    /// The `a=fmtp` for format `fmt` (e.g. `b"101"`).
    #[must_use]
    pub fn fmtp(&self, fmt: &[u8]) -> Option<Fmtp<'_>> {
        self.fmtps().find(|f| f.format == fmt)
    }

    /// The first parseable `a=rtcp` attribute.
    #[must_use]
    pub fn rtcp(&self) -> Option<Rtcp<'_>> {
        self.attributes.iter().find_map(Attribute::as_rtcp)
    }

    /// The `a=ptime` value in milliseconds (a fractional part is ignored).
    #[must_use]
    pub fn ptime(&self) -> Option<u32> {
        attr::parse_ptime(self.attribute_value(b"ptime")?)
    }

    /// The `a=maxptime` value in milliseconds (a fractional part is ignored).
    #[must_use]
    pub fn maxptime(&self) -> Option<u32> {
        attr::parse_ptime(self.attribute_value(b"maxptime")?)
    }

    /// The media's first own `c=` line.
    #[must_use]
    pub fn connection(&self) -> Option<&Connection<B>> {
        self.connections.first()
    }

    /// True when the stream is rejected/disabled (`port` 0).
    #[must_use]
    pub fn is_disabled(&self) -> bool {
        self.port == 0
    }

    /// Copies into an owned media section.
    #[must_use]
    pub fn to_owned_model(&self) -> Media<Vec<u8>> {
        Media {
            media: own(&self.media),
            port: self.port,
            port_count: self.port_count,
            proto: own(&self.proto),
            formats: self.formats.iter().map(own).collect(),
            information: own_opt(&self.information),
            connections: self
                .connections
                .iter()
                .map(Connection::to_owned_model)
                .collect(),
            bandwidths: self
                .bandwidths
                .iter()
                .map(Bandwidth::to_owned_model)
                .collect(),
            key: own_opt(&self.key),
            attributes: self
                .attributes
                .iter()
                .map(Attribute::to_owned_model)
                .collect(),
            extra: self.extra.iter().map(Line::to_owned_model).collect(),
        }
    }
}
