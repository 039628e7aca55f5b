//! Editing helpers for the owned model ([`SdpOwned`](crate::SdpOwned)), for rtpengine- and
//! nathelper-style rewriting (connection address, ports, codecs, attributes).

use crate::attr::{Direction, RtpMap};
use crate::model::{Attribute, Connection, Media, Origin, SessionDescription, Timing};

impl Connection<Vec<u8>> {
    /// `IN <addrtype> <address>` without multicast suffixes.
    #[must_use]
    pub fn new(addrtype: &[u8], address: &[u8]) -> Self {
        Self {
            nettype: b"IN".to_vec(),
            addrtype: addrtype.to_vec(),
            address: address.to_vec(),
            ttl: None,
            count: None,
        }
    }
}

impl Attribute<Vec<u8>> {
    /// `a=<name>[:<value>]`.
    #[must_use]
    pub fn new(name: &[u8], value: Option<&[u8]>) -> Self {
        Self {
            name: name.to_vec(),
            value: value.map(<[u8]>::to_vec),
        }
    }
}

impl Origin<Vec<u8>> {
    /// `o=<username> <session_id> <session_version> IN <addrtype> <address>`.
    #[must_use]
    pub fn new(
        username: &[u8],
        session_id: &[u8],
        session_version: &[u8],
        addrtype: &[u8],
        address: &[u8],
    ) -> Self {
        Self {
            username: username.to_vec(),
            session_id: session_id.to_vec(),
            session_version: session_version.to_vec(),
            nettype: b"IN".to_vec(),
            addrtype: addrtype.to_vec(),
            unicast_address: address.to_vec(),
        }
    }

    /// Increments the session version (RFC 3264 §8: every changed offer
    /// bumps it). Returns false, leaving it unchanged, when it is not a
    /// number below `u64::MAX`.
    pub fn bump_version(&mut self) -> bool {
        match self.session_version_number().and_then(|n| n.checked_add(1)) {
            Some(n) => {
                self.session_version.clear();
                crate::print::push_u64(&mut self.session_version, n);
                true
            }
            None => false,
        }
    }
}

fn remove_named(attrs: &mut Vec<Attribute<Vec<u8>>>, name: &[u8]) -> usize {
    let before = attrs.len();
    attrs.retain(|a| !a.is(name));
    before - attrs.len()
}

fn set_named(attrs: &mut Vec<Attribute<Vec<u8>>>, name: &[u8], value: Option<&[u8]>) {
    let new = Attribute::new(name, value);
    match attrs.iter().position(|a| a.is(name)) {
        Some(i) => {
            attrs[i] = new;
            let mut seen = 0usize;
            attrs.retain(|a| {
                if a.is(name) {
                    seen += 1;
                    seen == 1
                } else {
                    true
                }
            });
        }
        None => attrs.push(new),
    }
}

fn set_direction(attrs: &mut Vec<Attribute<Vec<u8>>>, dir: Direction) {
    attrs.retain(|a| a.as_direction().is_none());
    attrs.push(Attribute::new(dir.name().as_bytes(), None));
}

/// Attribute-list editing shared by session and media level.
macro_rules! attribute_editors {
    () => {
        /// Removes every attribute named `name` (ASCII case-insensitive);
        /// returns how many were removed.
        pub fn remove_attributes(&mut self, name: &[u8]) -> usize {
            remove_named(&mut self.attributes, name)
        }

        /// Appends `a=<name>[:<value>]`.
        pub fn push_attribute(&mut self, name: &[u8], value: Option<&[u8]>) {
            self.attributes.push(Attribute::new(name, value));
        }

        /// Replaces the first attribute named `name` (dropping any later
        /// ones with that name), or appends it when absent.
        pub fn set_attribute(&mut self, name: &[u8], value: Option<&[u8]>) {
            set_named(&mut self.attributes, name, value);
        }

        /// Replaces any direction attribute at this level with `dir`.
        pub fn set_direction(&mut self, dir: Direction) {
            set_direction(&mut self.attributes, dir);
        }
    };
}

impl SessionDescription<Vec<u8>> {
    attribute_editors!();

    /// A minimal session: `v=0`, the origin, `s=`, `t=0 0`, nothing else.
    #[must_use]
    pub fn new(origin: Origin<Vec<u8>>, session_name: &[u8]) -> Self {
        Self {
            version: Some(0),
            origin: Some(origin),
            session_name: Some(session_name.to_vec()),
            timings: vec![Timing {
                start: 0,
                stop: 0,
                repeats: Vec::new(),
            }],
            ..Self::default()
        }
    }

    /// Sets the session-level `c=` to `IN <addrtype> <address>`.
    pub fn set_connection(&mut self, addrtype: &[u8], address: &[u8]) {
        self.connection = Some(Connection::new(addrtype, address));
    }

    /// Rewrites every connection (session level and every media level `c=`)
    /// to `IN <addrtype> <address>`, dropping multicast suffixes. Adds a
    /// session-level `c=` when neither it nor some media has one, so every
    /// media ends up covered. Returns the number of `c=` lines written.
    pub fn rewrite_connections(&mut self, addrtype: &[u8], address: &[u8]) -> usize {
        let mut n = 0;
        for m in &mut self.media {
            for c in &mut m.connections {
                *c = Connection::new(addrtype, address);
                n += 1;
            }
        }
        let uncovered = self.media.iter().any(|m| m.connections.is_empty());
        if self.connection.is_some() || uncovered || self.media.is_empty() {
            self.set_connection(addrtype, address);
            n += 1;
        }
        n
    }

    /// Increments the origin's session version; false when there is no
    /// numeric origin version.
    pub fn bump_origin_version(&mut self) -> bool {
        self.origin.as_mut().is_some_and(Origin::bump_version)
    }
}

impl Media<Vec<u8>> {
    attribute_editors!();

    /// `m=<media> <port> <proto>` with no formats or other lines.
    #[must_use]
    pub fn new(media: &[u8], port: u16, proto: &[u8]) -> Self {
        Self {
            media: media.to_vec(),
            port,
            port_count: None,
            proto: proto.to_vec(),
            formats: Vec::new(),
            information: None,
            connections: Vec::new(),
            bandwidths: Vec::new(),
            key: None,
            attributes: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// Replaces all media-level `c=` lines with `IN <addrtype> <address>`.
    pub fn set_connection(&mut self, addrtype: &[u8], address: &[u8]) {
        self.connections.clear();
        self.connections.push(Connection::new(addrtype, address));
    }

    /// Removes media format `fmt` and its `rtpmap`, `fmtp` and `rtcp-fb`
    /// attributes. Returns false when the format was not listed.
    pub fn remove_format(&mut self, fmt: &[u8]) -> bool {
        let before = self.formats.len();
        self.formats.retain(|f| f.as_slice() != fmt);
        self.attributes.retain(|a| a.format_token() != Some(fmt));
        before != self.formats.len()
    }

    /// [`remove_format`](Self::remove_format) for an RTP payload type.
    pub fn remove_payload_type(&mut self, pt: u8) -> bool {
        let mut buf = Vec::with_capacity(3);
        crate::print::push_u64(&mut buf, u64::from(pt));
        self.remove_format(&buf)
    }

    /// Keeps only the formats for which `keep(format, rtpmap)` is true,
    /// removing the others with their attributes (see
    /// [`remove_format`](Self::remove_format)). Returns how many were removed.
    pub fn retain_formats(
        &mut self,
        mut keep: impl FnMut(&[u8], Option<RtpMap<'_>>) -> bool,
    ) -> usize {
        let drop: Vec<Vec<u8>> = self
            .formats
            .iter()
            .filter(|f| {
                let rtpmap = crate::attr::parse_payload_type(f).and_then(|pt| self.rtpmap(pt));
                !keep(f, rtpmap)
            })
            .cloned()
            .collect();
        for f in &drop {
            self.remove_format(f);
        }
        drop.len()
    }

    /// Adds a codec: appends its payload type to the formats (unless
    /// already listed) and replaces any `rtpmap`/`fmtp` for it with the given
    /// ones, in place of the old ones, else after the last existing
    /// `rtpmap`/`fmtp`, else at the end.
    pub fn add_codec(&mut self, rtpmap: &RtpMap<'_>, fmtp: Option<&[u8]>) {
        let mut pt = Vec::with_capacity(3);
        crate::print::push_u64(&mut pt, u64::from(rtpmap.payload_type));
        if !self.has_format(&pt) {
            self.formats.push(pt.clone());
        }
        let is_codec_attr = |a: &Attribute<Vec<u8>>| a.is(b"rtpmap") || a.is(b"fmtp");
        let replaced = self
            .attributes
            .iter()
            .position(|a| is_codec_attr(a) && a.format_token() == Some(pt.as_slice()));
        self.attributes
            .retain(|a| !(is_codec_attr(a) && a.format_token() == Some(pt.as_slice())));
        // Every removed attribute sat at or after `replaced`, so it is still valid.
        let at = replaced.unwrap_or_else(|| {
            self.attributes
                .iter()
                .rposition(is_codec_attr)
                .map_or(self.attributes.len(), |i| i + 1)
        });
        let mut value = Vec::new();
        rtpmap.write_value(&mut value);
        let mut new = vec![Attribute {
            name: b"rtpmap".to_vec(),
            value: Some(value),
        }];
        if let Some(params) = fmtp {
            let mut value = pt;
            value.push(b' ');
            value.extend_from_slice(params);
            new.push(Attribute {
                name: b"fmtp".to_vec(),
                value: Some(value),
            });
        }
        self.attributes.splice(at..at, new);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Sdp, SdpOwned};

    const BODY: &[u8] = b"v=0\r\no=- 10 99 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0 8 101\r\nc=IN IP4 10.0.0.1\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n\
a=rtcp-fb:101 nack\r\na=sendrecv\r\na=ptime:20\r\na=ptime:30\r\n";

    #[test]
    fn codec_editing() {
        let mut sdp = SdpOwned::parse(BODY).unwrap();
        let m = &mut sdp.media[0];
        assert!(m.remove_payload_type(101));
        assert!(!m.remove_payload_type(101));
        assert_eq!(m.formats, vec![b"0".to_vec(), b"8".to_vec()]);
        assert!(
            m.attributes
                .iter()
                .all(|a| a.format_token() != Some(b"101"))
        );
        assert_eq!(
            m.retain_formats(|_, r| r.is_some_and(|r| r.is_encoding(b"pcma"))),
            1
        );
        assert_eq!(m.formats, vec![b"8".to_vec()]);
        m.add_codec(
            &RtpMap::new(96, b"opus", 48000).with_params(b"2"),
            Some(b"useinbandfec=1"),
        );
        m.add_codec(&RtpMap::new(8, b"PCMA", 8000), None);
        assert_eq!(m.formats, vec![b"8".to_vec(), b"96".to_vec()]);
        let printed = sdp.to_bytes();
        let re = Sdp::parse(&printed).unwrap();
        let m = &re.media[0];
        assert_eq!(m.rtpmap(96).unwrap().params, Some(&b"2"[..]));
        assert_eq!(
            m.fmtp(b"96").unwrap().param(b"useinbandfec"),
            Some(&b"1"[..])
        );
        assert_eq!(m.rtpmaps().count(), 2);
        let names: Vec<&[u8]> = m.attributes.iter().map(|a| a.name()).collect();
        assert_eq!(
            names,
            [
                &b"rtpmap"[..],
                b"rtpmap",
                b"fmtp",
                b"sendrecv",
                b"ptime",
                b"ptime"
            ]
        );
    }

    #[test]
    fn attribute_editing() {
        let mut sdp = SdpOwned::parse(BODY).unwrap();
        let m = &mut sdp.media[0];
        m.set_attribute(b"ptime", Some(b"40"));
        assert_eq!(m.ptime(), Some(40));
        assert_eq!(m.attributes_named(b"ptime").count(), 1);
        m.set_direction(Direction::RecvOnly);
        assert_eq!(m.direction(), Some(Direction::RecvOnly));
        assert!(!m.has_attribute(b"sendrecv"));
        assert_eq!(m.remove_attributes(b"RTPMAP"), 3);
        m.push_attribute(b"x-new", None);
        sdp.set_attribute(b"group", Some(b"BUNDLE 0"));
        sdp.set_direction(Direction::Inactive);
        let printed = sdp.to_bytes();
        let re = Sdp::parse(&printed).unwrap();
        assert_eq!(re.attribute_value(b"group"), Some(&b"BUNDLE 0"[..]));
        assert_eq!(re.effective_direction(&re.media[0]), Direction::RecvOnly);
        assert_eq!(re.direction(), Some(Direction::Inactive));
        assert!(re.media[0].has_attribute(b"x-new"));
    }

    #[test]
    fn connections_and_origin() {
        let mut sdp = SdpOwned::parse(BODY).unwrap();
        assert!(sdp.bump_origin_version());
        assert_eq!(sdp.origin.as_ref().unwrap().session_version, b"100");
        // The only media has its own c=, so no session c= is added.
        assert_eq!(sdp.rewrite_connections(b"IP6", b"2001:db8::5"), 1);
        assert!(sdp.connection.is_none());
        sdp.media.push(Media::new(b"video", 5000, b"RTP/AVP"));
        assert_eq!(sdp.rewrite_connections(b"IP4", b"192.0.2.9"), 2);
        let printed = sdp.to_bytes();
        let re = Sdp::parse(&printed).unwrap();
        for m in &re.media {
            assert_eq!(re.effective_connection(m).unwrap().address, b"192.0.2.9");
        }
        let mut o = Origin::new(b"-", b"1", b"x", b"IP4", b"h");
        assert!(!o.bump_version());
        let fresh = SdpOwned::new(o.clone(), b"-");
        o.session_version = b"18446744073709551615".to_vec();
        assert!(!o.bump_version());
        assert_eq!(
            fresh.to_bytes(),
            b"v=0\r\no=- 1 x IN IP4 h\r\ns=-\r\nt=0 0\r\n"
        );
    }
}
