//! Edits ("lumps" in OpenSIPS): byte-range insertions, deletions and replacements recorded
//! against the received buffer and applied only when the message is written out. Untouched
//! bytes are copied as they came, never re-encoded.

use bytes::Bytes;

use crate::error::Result;
use crate::hdr::HeaderKind;
use crate::msg::{Header, SipMsg};
use crate::span::Span;

#[derive(Debug, Clone)]
struct Lump {
    span: Span,
    data: Bytes,
    seq: u32,
}

/// The pending edits of one message.
#[derive(Debug, Default, Clone)]
pub(crate) struct Edits {
    lumps: Vec<Lump>,
    seq: u32,
    /// A new body; Content-Length (and Content-Type) are fixed up at write time.
    body: Option<Bytes>,
    content_type: Option<Bytes>,
}

impl Edits {
    fn push(&mut self, span: Span, data: Bytes) {
        // A replacement of exactly the same non-empty range supersedes the earlier one.
        if !span.is_empty()
            && let Some(l) = self.lumps.iter_mut().find(|l| l.span == span)
        {
            l.data = data;
            l.seq = self.seq;
            self.seq += 1;
            return;
        }
        self.lumps.push(Lump {
            span,
            data,
            seq: self.seq,
        });
        self.seq += 1;
    }
}

fn header_line(name: &[u8], value: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(name.len() + value.len() + 4);
    v.extend_from_slice(name);
    v.extend_from_slice(b": ");
    v.extend_from_slice(value);
    v.extend_from_slice(b"\r\n");
    Bytes::from(v)
}

impl SipMsg {
    /// True when edits are pending.
    pub fn has_edits(&self) -> bool {
        !self.edits.lumps.is_empty() || self.edits.body.is_some()
    }

    /// Discards all pending edits.
    pub fn clear_edits(&mut self) {
        self.edits = Edits::default();
    }

    /// A mark for [`Self::truncate_edits`]: the number of edits recorded so far.
    pub fn edit_mark(&self) -> usize {
        self.edits.lumps.len()
    }

    /// Drops the insertions, deletions and replacements recorded after `mark` (e.g. the Via a
    /// stateless `forward()` pushed for one destination, before forwarding to the next). Body
    /// edits are not affected.
    pub fn truncate_edits(&mut self, mark: usize) {
        self.edits.lumps.truncate(mark);
    }

    /// Inserts `data` before byte `at` of the buffer.
    pub fn insert_at(&mut self, at: u32, data: impl Into<Bytes>) {
        self.edits.push(Span { start: at, end: at }, data.into());
    }

    /// Deletes a byte range.
    pub fn delete(&mut self, span: Span) {
        self.edits.push(span, Bytes::new());
    }

    /// Replaces a byte range.
    pub fn replace(&mut self, span: Span, data: impl Into<Bytes>) {
        self.edits.push(span, data.into());
    }

    /// Appends a header line at the end of the header section.
    pub fn append_header(&mut self, name: &[u8], value: &[u8]) {
        let at = self.headers_end();
        self.insert_at(at, header_line(name, value));
    }

    /// Appends raw header text (one or more complete `Name: value\r\n` lines).
    pub fn append_raw_headers(&mut self, raw: impl Into<Bytes>) {
        let at = self.headers_end();
        self.insert_at(at, raw);
    }

    /// Inserts a header line as the first header (right after the start line).
    pub fn insert_header_first(&mut self, name: &[u8], value: &[u8]) {
        let at = self.first_header_offset();
        self.insert_at(at, header_line(name, value));
    }

    /// Inserts a header line before an existing header.
    pub fn insert_header_before(&mut self, h: &Header, name: &[u8], value: &[u8]) {
        self.insert_at(h.name.start, header_line(name, value));
    }

    fn first_header_offset(&self) -> u32 {
        self.headers()
            .first()
            .map_or_else(|| self.headers_end(), |h| h.name.start)
    }

    /// Removes a whole header line.
    pub fn remove_header(&mut self, h: &Header) {
        self.delete(h.line());
    }

    /// Removes every header of a kind; returns how many were removed.
    pub fn remove_headers_of(&mut self, kind: HeaderKind) -> usize {
        let lines: Vec<Span> = self.headers_of(kind).map(Header::line).collect();
        for l in &lines {
            self.delete(*l);
        }
        lines.len()
    }

    /// Replaces a header's value (the name and line structure stay).
    pub fn replace_header_value(&mut self, h: &Header, value: impl Into<Bytes>) {
        self.replace(h.value, value);
    }

    /// Rewrites the Request-URI. A second call replaces the first.
    pub fn set_ruri(&mut self, uri: impl Into<Bytes>) {
        let s = self.ruri_span();
        self.replace(s, uri);
    }

    /// Adds a Via as the topmost one.
    pub fn push_via(&mut self, value: &[u8]) {
        let at = self
            .header(HeaderKind::Via)
            .map_or_else(|| self.first_header_offset(), |h| h.name.start);
        self.insert_at(at, header_line(b"Via", value));
    }

    /// Removes the topmost Via value (the whole line when it holds only that value).
    /// Returns false when there is no Via.
    pub fn pop_via(&mut self) -> bool {
        let Some(h) = self.header(HeaderKind::Via).copied() else {
            return false;
        };
        let mut vals = crate::scan::CommaSplit::new(self.buf(), h.value);
        let first = vals.next();
        match (first, vals.next()) {
            (Some(f), Some(second)) => self.delete(Span {
                start: f.start,
                end: second.start,
            }),
            _ => self.remove_header(&h),
        }
        true
    }

    /// Adds a Record-Route header as the first header.
    pub fn add_record_route(&mut self, value: &[u8]) {
        self.insert_header_first(b"Record-Route", value);
    }

    /// Replaces the body; Content-Length is fixed (or added) when the message is written. When
    /// `content_type` is given, the Content-Type header is replaced or added too. A second call
    /// replaces the first.
    pub fn set_body(&mut self, content_type: Option<&[u8]>, body: impl Into<Bytes>) {
        self.edits.body = Some(body.into());
        if let Some(ct) = content_type {
            self.edits.content_type = Some(Bytes::copy_from_slice(ct));
        }
    }

    /// Removes the body (Content-Length becomes 0, Content-Type is removed).
    pub fn remove_body(&mut self) {
        if let Some(h) = self.header(HeaderKind::ContentType).copied() {
            self.remove_header(&h);
        }
        self.set_body(None, Bytes::new());
    }

    /// Writes the message with all edits applied into `out` (appending).
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<()> {
        let buf = self.buf();
        let span = self.span();
        if !self.has_edits() {
            out.extend_from_slice(span.of(buf));
            return Ok(());
        }
        // Body edits become lumps here, so repeated set_body calls never stack up.
        let mut extra: smallvec::SmallVec<[Lump; 3]> = smallvec::SmallVec::new();
        let seq = self.edits.seq;
        if let Some(body) = &self.edits.body {
            extra.push(Lump {
                span: self.body_span(),
                data: body.clone(),
                seq,
            });
            let n = itoa_buf(body.len());
            match self.header(HeaderKind::ContentLength) {
                Some(h) => extra.push(Lump {
                    span: h.value,
                    data: Bytes::copy_from_slice(&n),
                    seq,
                }),
                None => extra.push(Lump {
                    span: Span {
                        start: self.headers_end(),
                        end: self.headers_end(),
                    },
                    data: header_line(b"Content-Length", &n),
                    seq,
                }),
            }
            if let Some(ct) = &self.edits.content_type {
                match self.header(HeaderKind::ContentType) {
                    Some(h) => extra.push(Lump {
                        span: h.value,
                        data: ct.clone(),
                        seq,
                    }),
                    None => extra.push(Lump {
                        span: Span {
                            start: self.headers_end(),
                            end: self.headers_end(),
                        },
                        data: header_line(b"Content-Type", ct),
                        seq: seq + 1,
                    }),
                }
            }
        }
        let mut order: Vec<&Lump> = self.edits.lumps.iter().chain(extra.iter()).collect();
        order.sort_by_key(|l| (l.span.start, !l.span.is_empty(), l.seq));
        let mut pos = span.start;
        for l in order {
            if l.span.start < pos {
                // inside a range an earlier edit already deleted or replaced
                continue;
            }
            out.extend_from_slice(
                Span {
                    start: pos,
                    end: l.span.start,
                }
                .of(buf),
            );
            out.extend_from_slice(&l.data);
            pos = l.span.end.max(l.span.start);
        }
        out.extend_from_slice(
            Span {
                start: pos,
                end: span.end,
            }
            .of(buf),
        );
        Ok(())
    }

    /// The message with edits applied, as a new buffer of exactly its length (suitable for
    /// keeping, e.g. for retransmission). Unedited messages share the received buffer.
    pub fn to_bytes(&self) -> Bytes {
        if !self.has_edits() {
            let s = self.span();
            return self.bytes().slice(s.lo()..s.hi());
        }
        let mut v = Vec::with_capacity(self.raw().len() + 256);
        // write_to cannot fail today; keep the signature for future checks.
        let _ = self.write_to(&mut v);
        Bytes::copy_from_slice(&v)
    }
}

/// Formats a `usize` in decimal into a small stack buffer.
pub(crate) fn itoa_buf(mut n: usize) -> smallvec::SmallVec<[u8; 20]> {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        #[allow(clippy::cast_possible_truncation)]
        {
            tmp[i] = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    smallvec::SmallVec::from_slice(&tmp[i..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const INV: &[u8] = b"INVITE sip:bob@biloxi.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds, SIP/2.0/UDP h2;branch=z9hG4bKx\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.com>\r\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
Content-Length: 4\r\n\
\r\n\
abcd";

    fn msg() -> SipMsg {
        SipMsg::parse(Bytes::from_static(INV)).unwrap()
    }

    fn out(m: &SipMsg) -> String {
        let mut v = Vec::new();
        m.write_to(&mut v).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn untouched_is_identical() {
        assert_eq!(out(&msg()).as_bytes(), INV);
    }

    #[test]
    fn rr_via_ruri() {
        let mut m = msg();
        m.add_record_route(b"<sip:p1.example.com;lr>");
        m.push_via(b"SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1");
        m.set_ruri(&b"sip:bob@192.0.2.4"[..]);
        m.set_ruri(&b"sip:bob@192.0.2.5"[..]);
        let s = out(&m);
        assert!(s.starts_with("INVITE sip:bob@192.0.2.5 SIP/2.0\r\nRecord-Route: <sip:p1.example.com;lr>\r\nVia: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1\r\nVia: SIP/2.0/UDP pc33"), "{s}");
        let m2 = SipMsg::parse(Bytes::from(s.into_bytes())).unwrap();
        assert_eq!(m2.via1().unwrap().branch(), Some(&b"z9hG4bKp1"[..]));
        assert_eq!(m2.values(HeaderKind::Via).count(), 3);
    }

    #[test]
    fn pop_via_from_a_multi_value_line() {
        let mut m = msg();
        assert!(m.pop_via());
        let m2 = SipMsg::parse(Bytes::from(out(&m).into_bytes())).unwrap();
        assert_eq!(m2.values(HeaderKind::Via).count(), 1);
        assert_eq!(m2.via1().unwrap().host(), b"h2");
    }

    #[test]
    fn body_replace_fixes_length() {
        let mut m = msg();
        m.set_body(Some(b"application/sdp"), &b"v=0\r\n"[..]);
        let m2 = SipMsg::parse(Bytes::from(out(&m).into_bytes())).unwrap();
        assert_eq!(m2.content_length(), Some(5));
        assert_eq!(m2.body(), b"v=0\r\n");
        assert_eq!(
            m2.value_of(HeaderKind::ContentType),
            Some(&b"application/sdp"[..])
        );
        let mut m = msg();
        m.set_body(None, &b"first"[..]);
        m.set_body(None, &b"second!"[..]);
        let m2 = SipMsg::parse(Bytes::from(out(&m).into_bytes())).unwrap();
        assert_eq!(m2.body(), b"second!");
        assert_eq!(m2.count_of(HeaderKind::ContentLength), 1);
        let mut m = msg();
        m.remove_body();
        let m2 = SipMsg::parse(Bytes::from(out(&m).into_bytes())).unwrap();
        assert_eq!(m2.content_length(), Some(0));
        assert!(m2.body().is_empty());
    }

    #[test]
    fn remove_and_replace_headers() {
        let mut m = msg();
        let h = *m.header(HeaderKind::MaxForwards).unwrap();
        m.replace_header_value(&h, &b"69"[..]);
        let cid = *m.header(HeaderKind::CallId).unwrap();
        m.insert_header_before(&cid, b"X-A", b"1");
        m.remove_header(&cid);
        m.append_header(b"X-B", b"2");
        let m2 = SipMsg::parse(Bytes::from(out(&m).into_bytes())).unwrap();
        assert_eq!(m2.max_forwards().unwrap(), Some(69));
        assert!(m2.call_id().is_none());
        assert_eq!(m2.value(m2.header_named(b"x-a").unwrap()), b"1");
        assert_eq!(m2.value(m2.header_named(b"X-B").unwrap()), b"2");
        assert_eq!(m2.body(), b"abcd");
    }
}
