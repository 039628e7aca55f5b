//! The tolerant line parser.

use crate::error::SdpError;
use crate::model::{
    Attribute, Bandwidth, Connection, Line, Media, Origin, Sdp, SessionDescription, Timing,
};

/// Bounds on what one body may make the parser allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum number of non-blank lines.
    pub max_lines: usize,
    /// Maximum number of `m=` sections.
    pub max_media: usize,
    /// Maximum number of formats on one `m=` line.
    pub max_formats: usize,
}

impl Limits {
    /// The defaults used by [`SessionDescription::parse`].
    pub const DEFAULT: Self = Self {
        max_lines: 4096,
        max_media: 64,
        max_formats: 256,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(crate) fn trim_ws(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ws(*first) {
            break;
        }
        s = rest;
    }
    trim_end_ws(s)
}

fn trim_end_ws(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., last] = s {
        if !is_ws(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// Strict unsigned decimal: non-empty, digits only, no overflow.
pub(crate) fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Whitespace-separated fields of a line value, with their offsets.
#[derive(Debug, Clone)]
pub(crate) struct Fields<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(s: &'a [u8]) -> Self {
        Self { s, pos: 0 }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (usize, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        while self.pos < self.s.len() && is_ws(self.s[self.pos]) {
            self.pos += 1;
        }
        if self.pos >= self.s.len() {
            return None;
        }
        let start = self.pos;
        while self.pos < self.s.len() && !is_ws(self.s[self.pos]) {
            self.pos += 1;
        }
        Some((start, &self.s[start..self.pos]))
    }
}

/// One `x=value` line with the absolute offsets needed for error reports.
#[derive(Clone, Copy)]
struct RawLine<'a> {
    /// Offset of the line start in the body.
    start: usize,
    kind: u8,
    value: &'a [u8],
}

impl<'a> RawLine<'a> {
    /// Absolute offset of the value byte at `rel`.
    fn at(&self, rel: usize) -> usize {
        self.start + 2 + rel
    }

    fn end(&self) -> usize {
        self.at(self.value.len())
    }

    fn letter(&self) -> char {
        char::from(self.kind)
    }

    fn missing(&self, field: &'static str) -> SdpError {
        SdpError::MissingField {
            line: self.letter(),
            field,
            offset: self.end(),
        }
    }

    fn bad_number(&self, field: &'static str, rel: usize) -> SdpError {
        SdpError::InvalidNumber {
            line: self.letter(),
            field,
            offset: self.at(rel),
        }
    }

    fn verbatim(&self) -> Line<&'a [u8]> {
        Line {
            kind: self.kind,
            value: self.value,
        }
    }

    /// Next field or a `MissingField` error.
    fn field(
        &self,
        fields: &mut Fields<'a>,
        name: &'static str,
    ) -> Result<(usize, &'a [u8]), SdpError> {
        fields.next().ok_or_else(|| self.missing(name))
    }

    fn no_more(&self, fields: &mut Fields<'a>) -> Result<(), SdpError> {
        match fields.next() {
            Some((rel, _)) => Err(SdpError::UnexpectedField {
                line: self.letter(),
                offset: self.at(rel),
            }),
            None => Ok(()),
        }
    }

    fn number(&self, (rel, s): (usize, &[u8]), name: &'static str) -> Result<u64, SdpError> {
        parse_u64(s).ok_or_else(|| self.bad_number(name, rel))
    }

    fn number_u32(&self, (rel, s): (usize, &[u8]), name: &'static str) -> Result<u32, SdpError> {
        parse_u64(s)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| self.bad_number(name, rel))
    }
}

impl<'a> SessionDescription<&'a [u8]> {
    /// Parses an SDP body with [`Limits::DEFAULT`].
    ///
    /// # Errors
    /// A [`SdpError`] with the byte offset of a structurally broken line.
    pub fn parse(body: &'a [u8]) -> Result<Self, SdpError> {
        Self::parse_with_limits(body, &Limits::DEFAULT)
    }

    /// Parses an SDP body, bounding what it may allocate by `limits`.
    ///
    /// Accepts LF or CRLF line ends, skips blank lines and trailing blanks on
    /// each line, and keeps unknown line types in `extra`.
    ///
    /// # Errors
    /// A [`SdpError`] with the byte offset of a structurally broken line, or
    /// when a limit is exceeded.
    pub fn parse_with_limits(body: &'a [u8], limits: &Limits) -> Result<Self, SdpError> {
        let mut sdp = Sdp::default();
        let mut lines = 0usize;
        let mut pos = 0usize;
        while pos < body.len() {
            let start = pos;
            let end = body[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(body.len(), |i| pos + i);
            pos = end + 1;
            let mut line = &body[start..end];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            let line = trim_end_ws(line);
            if line.iter().all(|&b| b == b'\r' || is_ws(b)) {
                continue;
            }
            lines += 1;
            if lines > limits.max_lines {
                return Err(SdpError::TooManyLines {
                    limit: limits.max_lines,
                    offset: start,
                });
            }
            let raw = match line {
                [kind, b'=', value @ ..] if kind.is_ascii_alphabetic() => RawLine {
                    start,
                    kind: *kind,
                    value,
                },
                _ => return Err(SdpError::MalformedLine { offset: start }),
            };
            if raw.kind == b'm' {
                if sdp.media.len() >= limits.max_media {
                    return Err(SdpError::TooManyMedia {
                        limit: limits.max_media,
                        offset: start,
                    });
                }
                sdp.media.push(parse_media(&raw, limits)?);
            } else if let Some(media) = sdp.media.last_mut() {
                media_line(media, &raw)?;
            } else {
                session_line(&mut sdp, &raw)?;
            }
        }
        if lines == 0 {
            return Err(SdpError::Empty { offset: body.len() });
        }
        Ok(sdp)
    }
}

impl SessionDescription<Vec<u8>> {
    /// Parses an SDP body into the owned, editable model.
    ///
    /// # Errors
    /// See [`Sdp::parse`](SessionDescription::parse).
    pub fn parse(body: &[u8]) -> Result<Self, SdpError> {
        Ok(Sdp::parse(body)?.to_owned_model())
    }
}

/// Stores `value` in a single-valued slot, or keeps the line verbatim when
/// the slot is already taken.
fn set_once<'a, T>(
    slot: &mut Option<T>,
    extra: &mut Vec<Line<&'a [u8]>>,
    raw: &RawLine<'a>,
    value: impl FnOnce() -> Result<T, SdpError>,
) -> Result<(), SdpError> {
    if slot.is_some() {
        extra.push(raw.verbatim());
    } else {
        *slot = Some(value()?);
    }
    Ok(())
}

fn session_line<'a>(sdp: &mut Sdp<'a>, raw: &RawLine<'a>) -> Result<(), SdpError> {
    let v = raw.value;
    match raw.kind {
        b'v' => set_once(&mut sdp.version, &mut sdp.extra, raw, || {
            let mut f = Fields::new(v);
            let n = raw.number_u32(raw.field(&mut f, "version")?, "version")?;
            raw.no_more(&mut f)?;
            Ok(n)
        })?,
        b'o' => set_once(&mut sdp.origin, &mut sdp.extra, raw, || parse_origin(raw))?,
        b's' => set_once(&mut sdp.session_name, &mut sdp.extra, raw, || Ok(v))?,
        b'i' => set_once(&mut sdp.information, &mut sdp.extra, raw, || Ok(v))?,
        b'u' => set_once(&mut sdp.uri, &mut sdp.extra, raw, || Ok(v))?,
        b'e' => sdp.emails.push(v),
        b'p' => sdp.phones.push(v),
        b'c' => set_once(&mut sdp.connection, &mut sdp.extra, raw, || {
            parse_connection(raw)
        })?,
        b'b' => sdp.bandwidths.push(parse_bandwidth(raw)?),
        b't' => {
            let mut f = Fields::new(v);
            let start = raw.number(raw.field(&mut f, "start-time")?, "start-time")?;
            let stop = raw.number(raw.field(&mut f, "stop-time")?, "stop-time")?;
            raw.no_more(&mut f)?;
            sdp.timings.push(Timing {
                start,
                stop,
                repeats: Vec::new(),
            });
        }
        b'r' => match sdp.timings.last_mut() {
            Some(t) => t.repeats.push(v),
            None => return Err(SdpError::RepeatWithoutTiming { offset: raw.start }),
        },
        b'z' => set_once(&mut sdp.time_zones, &mut sdp.extra, raw, || Ok(v))?,
        b'k' => set_once(&mut sdp.key, &mut sdp.extra, raw, || Ok(v))?,
        b'a' => sdp.attributes.push(parse_attribute(v)),
        _ => sdp.extra.push(raw.verbatim()),
    }
    Ok(())
}

fn media_line<'a>(m: &mut Media<&'a [u8]>, raw: &RawLine<'a>) -> Result<(), SdpError> {
    let v = raw.value;
    match raw.kind {
        b'i' => set_once(&mut m.information, &mut m.extra, raw, || Ok(v))?,
        b'c' => m.connections.push(parse_connection(raw)?),
        b'b' => m.bandwidths.push(parse_bandwidth(raw)?),
        b'k' => set_once(&mut m.key, &mut m.extra, raw, || Ok(v))?,
        b'a' => m.attributes.push(parse_attribute(v)),
        _ => m.extra.push(raw.verbatim()),
    }
    Ok(())
}

fn parse_origin<'a>(raw: &RawLine<'a>) -> Result<Origin<&'a [u8]>, SdpError> {
    const NAMES: [&str; 6] = [
        "username",
        "sess-id",
        "sess-version",
        "nettype",
        "addrtype",
        "unicast-address",
    ];
    // Tolerance: a user name with spaces. The last five fields are fixed;
    // everything before them is the user name.
    let mut last: [(usize, &[u8]); 6] = [(0, &[]); 6];
    let mut n = 0usize;
    for field in Fields::new(raw.value) {
        last.rotate_left(1);
        last[5] = field;
        n += 1;
    }
    if n < 6 {
        return Err(raw.missing(NAMES[n]));
    }
    let first = Fields::new(raw.value).next().map_or(0, |(rel, _)| rel);
    let (user_rel, user) = last[0];
    Ok(Origin {
        username: &raw.value[first..user_rel + user.len()],
        session_id: last[1].1,
        session_version: last[2].1,
        nettype: last[3].1,
        addrtype: last[4].1,
        unicast_address: last[5].1,
    })
}

fn parse_connection<'a>(raw: &RawLine<'a>) -> Result<Connection<&'a [u8]>, SdpError> {
    let mut f = Fields::new(raw.value);
    let (_, nettype) = raw.field(&mut f, "nettype")?;
    let (_, addrtype) = raw.field(&mut f, "addrtype")?;
    let (rel, full) = raw.field(&mut f, "connection-address")?;
    raw.no_more(&mut f)?;
    let mut parts = full.split(|&b| b == b'/');
    let address = parts.next().unwrap_or_default();
    if address.is_empty() {
        return Err(SdpError::MissingField {
            line: 'c',
            field: "connection-address",
            offset: raw.at(rel),
        });
    }
    let mut suffix_rel = rel + address.len() + 1;
    let mut nums = [None::<u32>; 2];
    for (i, part) in parts.enumerate() {
        if i >= 2 {
            return Err(raw.bad_number("multicast suffix", suffix_rel));
        }
        nums[i] = Some(raw.number_u32((suffix_rel, part), "multicast suffix")?);
        suffix_rel += part.len() + 1;
    }
    let is_ip6 = addrtype.eq_ignore_ascii_case(b"IP6");
    let (ttl, count) = match nums {
        [Some(c), None] if is_ip6 => (None, Some(c)),
        [Some(_), Some(_)] if is_ip6 => {
            return Err(raw.bad_number("multicast suffix", suffix_rel.saturating_sub(1)));
        }
        [ttl, count] => (ttl, count),
    };
    Ok(Connection {
        nettype,
        addrtype,
        address,
        ttl,
        count,
    })
}

fn parse_bandwidth<'a>(raw: &RawLine<'a>) -> Result<Bandwidth<&'a [u8]>, SdpError> {
    let v = raw.value;
    let colon = v
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| raw.missing("bandwidth"))?;
    let bwtype = trim_ws(&v[..colon]);
    if bwtype.is_empty() {
        return Err(SdpError::MissingField {
            line: 'b',
            field: "bwtype",
            offset: raw.at(0),
        });
    }
    let value = trim_ws(&v[colon + 1..]);
    let value = parse_u64(value).ok_or_else(|| raw.bad_number("bandwidth", colon + 1))?;
    Ok(Bandwidth { bwtype, value })
}

fn parse_attribute(v: &[u8]) -> Attribute<&[u8]> {
    match v.iter().position(|&b| b == b':') {
        Some(i) => Attribute {
            name: &v[..i],
            value: Some(&v[i + 1..]),
        },
        None => Attribute {
            name: v,
            value: None,
        },
    }
}

fn parse_media<'a>(raw: &RawLine<'a>, limits: &Limits) -> Result<Media<&'a [u8]>, SdpError> {
    let mut f = Fields::new(raw.value);
    let (_, media) = raw.field(&mut f, "media")?;
    let (port_rel, port_field) = raw.field(&mut f, "port")?;
    let (port, port_count) = match port_field.iter().position(|&b| b == b'/') {
        Some(i) => (
            &port_field[..i],
            Some(raw.number_u32((port_rel + i + 1, &port_field[i + 1..]), "port count")?),
        ),
        None => (port_field, None),
    };
    let port = parse_u64(port)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| raw.bad_number("port", port_rel))?;
    let (_, proto) = raw.field(&mut f, "proto")?;
    let mut formats = Vec::new();
    for (rel, fmt) in f {
        if formats.len() >= limits.max_formats {
            return Err(SdpError::TooManyFormats {
                limit: limits.max_formats,
                offset: raw.at(rel),
            });
        }
        formats.push(fmt);
    }
    Ok(Media {
        media,
        port,
        port_count,
        proto,
        formats,
        information: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes: Vec::new(),
        extra: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SdpOwned;

    fn err(body: &[u8]) -> SdpError {
        Sdp::parse(body).unwrap_err()
    }

    #[test]
    fn minimal_lf_only() {
        let sdp = Sdp::parse(b"v=0\no=- 1 2 IN IP4 10.0.0.1\ns=x\nt=0 0\n\n\n").unwrap();
        assert_eq!(sdp.version, Some(0));
        assert_eq!(sdp.session_name, Some(&b"x"[..]));
        assert_eq!(sdp.origin.unwrap().unicast_address, b"10.0.0.1");
        assert_eq!(
            sdp.timings,
            vec![Timing {
                start: 0,
                stop: 0,
                repeats: vec![]
            }]
        );
    }

    #[test]
    fn empty_and_blank() {
        assert_eq!(err(b""), SdpError::Empty { offset: 0 });
        assert_eq!(err(b"\r\n\r\n  \n"), SdpError::Empty { offset: 7 });
    }

    #[test]
    fn malformed_line_offset() {
        let e = err(b"v=0\r\nhello\r\n");
        assert_eq!(e, SdpError::MalformedLine { offset: 5 });
        assert_eq!(e.offset(), 5);
        assert_eq!(err(b"v=0\n=x\n").offset(), 4);
        assert_eq!(err(b"v=0\n1=x\n").offset(), 4);
        assert_eq!(err(b"v=0\n a=x\n").offset(), 4);
    }

    #[test]
    fn media_errors() {
        assert_eq!(
            err(b"v=0\nm=audio\n"),
            SdpError::MissingField {
                line: 'm',
                field: "port",
                offset: 11
            }
        );
        assert_eq!(
            err(b"v=0\nm=audio 1000\n"),
            SdpError::MissingField {
                line: 'm',
                field: "proto",
                offset: 16
            }
        );
        assert_eq!(
            err(b"v=0\nm=audio 10x0 RTP/AVP 0\n"),
            SdpError::InvalidNumber {
                line: 'm',
                field: "port",
                offset: 12
            }
        );
        assert_eq!(
            err(b"m=audio 70000 RTP/AVP 0"),
            SdpError::InvalidNumber {
                line: 'm',
                field: "port",
                offset: 8
            }
        );
        assert_eq!(
            err(b"m=audio 7/x RTP/AVP 0"),
            SdpError::InvalidNumber {
                line: 'm',
                field: "port count",
                offset: 10
            }
        );
    }

    #[test]
    fn other_line_errors() {
        assert!(matches!(
            err(b"v=x"),
            SdpError::InvalidNumber { line: 'v', .. }
        ));
        assert!(matches!(
            err(b"o=a b c IN IP4"),
            SdpError::MissingField {
                field: "unicast-address",
                ..
            }
        ));
        assert!(matches!(
            err(b"c=IN IP4"),
            SdpError::MissingField { line: 'c', .. }
        ));
        assert!(matches!(
            err(b"c=IN IP4 1.2.3.4 x"),
            SdpError::UnexpectedField { offset: 17, .. }
        ));
        assert!(matches!(
            err(b"c=IN IP4 /3"),
            SdpError::MissingField { offset: 9, .. }
        ));
        assert!(matches!(
            err(b"c=IN IP4 224.0.0.1/1/2/3"),
            SdpError::InvalidNumber { .. }
        ));
        assert!(matches!(
            err(b"c=IN IP6 ff15::1/1/2"),
            SdpError::InvalidNumber { .. }
        ));
        assert!(matches!(
            err(b"c=IN IP4 224.0.0.1/x"),
            SdpError::InvalidNumber { offset: 19, .. }
        ));
        assert!(matches!(
            err(b"b=AS"),
            SdpError::MissingField { line: 'b', .. }
        ));
        assert!(matches!(
            err(b"b=:5"),
            SdpError::MissingField {
                field: "bwtype",
                ..
            }
        ));
        assert!(matches!(
            err(b"b=AS:x"),
            SdpError::InvalidNumber { offset: 5, .. }
        ));
        assert!(matches!(
            err(b"t=0"),
            SdpError::MissingField {
                field: "stop-time",
                ..
            }
        ));
        assert!(matches!(
            err(b"t=0 0 0"),
            SdpError::UnexpectedField { offset: 6, .. }
        ));
        assert_eq!(
            err(b"v=0\nr=1 2 3\n"),
            SdpError::RepeatWithoutTiming { offset: 4 }
        );
    }

    #[test]
    fn limits_enforced() {
        let limits = Limits {
            max_lines: 3,
            max_media: 1,
            max_formats: 2,
        };
        let p = |b: &'static [u8]| Sdp::parse_with_limits(b, &limits);
        assert_eq!(
            p(b"a=1\na=2\na=3\na=4\n"),
            Err(SdpError::TooManyLines {
                limit: 3,
                offset: 12
            })
        );
        assert_eq!(
            p(b"m=a 1 P 0\nm=b 2 P 0\n"),
            Err(SdpError::TooManyMedia {
                limit: 1,
                offset: 10
            })
        );
        assert_eq!(
            p(b"m=a 1 P 0 1 2\n"),
            Err(SdpError::TooManyFormats {
                limit: 2,
                offset: 12
            })
        );
        assert!(p(b"m=a 1 P 0 1\n\n\n\n\n\n\n").is_ok());
    }

    #[test]
    fn tolerant_forms() {
        let body = b"v=0\r\no=first last 1 2 IN IP4 h\r\ns=\r\nx=unknown\r\nv=1\r\nt=0 0\r\nr=7d 1h 0 25h\r\nm=audio 0 RTP/AVP\r\nt=1 1\r\ni=a\r\ni=b\r\na=sendonly  \r\n";
        let sdp = Sdp::parse(body).unwrap();
        let o = sdp.origin.as_ref().unwrap();
        assert_eq!(o.username, b"first last");
        assert_eq!(o.session_id, b"1");
        assert_eq!(sdp.session_name, Some(&b""[..]));
        assert_eq!(sdp.version, Some(0));
        assert_eq!(
            sdp.extra,
            vec![
                Line {
                    kind: b'x',
                    value: &b"unknown"[..]
                },
                Line {
                    kind: b'v',
                    value: &b"1"[..]
                }
            ]
        );
        assert_eq!(sdp.timings[0].repeats, vec![&b"7d 1h 0 25h"[..]]);
        let m = &sdp.media[0];
        assert!(m.formats.is_empty() && m.is_disabled());
        assert_eq!(m.information, Some(&b"a"[..]));
        assert_eq!(m.extra.len(), 2);
        assert_eq!(m.direction(), Some(crate::Direction::SendOnly));
    }

    #[test]
    fn owned_parse() {
        let o = SdpOwned::parse(b"v=0\nc=IN IP4 1.2.3.4\n").unwrap();
        assert_eq!(o.connection.unwrap().address, b"1.2.3.4".to_vec());
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b"0068"), Some(68));
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(trim_ws(b" \t a b \t"), b"a b");
    }
}
