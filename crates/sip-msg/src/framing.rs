//! Incremental framing of SIP messages on a byte stream (TCP, TLS): by Content-Length, with
//! RFC 5626 CRLF keep-alives reported to the caller. Datagram framing is [`SipMsg::parse`].

use bytes::{Bytes, BytesMut};

use crate::error::{ErrorKind, ParseError, Result, err};
use crate::hdr::HeaderKind;
use crate::msg::{Framing, Limits, SipMsg};
use crate::scan::{parse_u32, skip_lws, token_end, trim_end};
use crate::span::Span;

/// What the framer found at the front of the stream.
#[derive(Debug)]
pub enum Frame {
    /// A complete message.
    Message(Box<SipMsg>),
    /// A double-CRLF keep-alive ping (RFC 5626 §4.4.1); answer with a single CRLF.
    Ping,
    /// A single-CRLF pong.
    Pong,
}

/// Incremental framer for one stream connection. Feed it the connection's read buffer; it
/// splits off complete messages and leaves partial ones in place.
#[derive(Debug, Clone, Default)]
pub struct StreamFramer {
    limits: Limits,
    /// Total length of the message at the front, once its header section has been seen.
    need: Option<usize>,
}

impl StreamFramer {
    /// A framer with the given limits.
    pub fn new(limits: Limits) -> Self {
        Self { limits, need: None }
    }

    /// Takes the next frame from the front of `buf`, or `Ok(None)` when more bytes are needed.
    /// An error means the framing is lost: the caller should answer if it can and close.
    pub fn next_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>> {
        if self.need.is_none() {
            if buf.starts_with(b"\r\n\r\n") {
                let _ = buf.split_to(4);
                return Ok(Some(Frame::Ping));
            }
            if buf.starts_with(b"\r\n") {
                if buf.len() == 2 || buf[2] != b'\r' {
                    let _ = buf.split_to(2);
                    return Ok(Some(Frame::Pong));
                }
                if buf.len() < 4 {
                    return Ok(None);
                }
            }
            if buf.first() == Some(&b'\n') {
                let _ = buf.split_to(1);
                return Ok(Some(Frame::Pong));
            }
            let Some(he) = memchr::memmem::find(buf, b"\r\n\r\n") else {
                if buf.len() > self.limits.max_message {
                    return err(ErrorKind::TooLarge, buf.len());
                }
                return Ok(None);
            };
            let body_start = he + 4;
            let cl = scan_content_length(&buf[..he + 2])?;
            let Some(cl) = cl else {
                return err(ErrorKind::MissingContentLength, he);
            };
            let total = body_start + cl as usize;
            if total > self.limits.max_message {
                return err(ErrorKind::TooLarge, total);
            }
            self.need = Some(total);
        }
        let Some(total) = self.need else {
            return Ok(None);
        };
        if buf.len() < total {
            return Ok(None);
        }
        self.need = None;
        let bytes: Bytes = buf.split_to(total).freeze();
        SipMsg::parse_with(bytes, &self.limits, Framing::Stream)
            .map(|m| Some(Frame::Message(Box::new(m))))
    }
}

/// Finds the Content-Length value in a header section without building the index.
fn scan_content_length(h: &[u8]) -> Result<Option<u32>> {
    let mut found: Option<u32> = None;
    let mut i = match memchr::memchr(b'\n', h) {
        Some(p) => p + 1,
        None => return Ok(None),
    };
    while i < h.len() {
        let line_end = memchr::memchr(b'\n', &h[i..]).map_or(h.len(), |p| i + p + 1);
        let ne = token_end(h, i, line_end);
        let kind = HeaderKind::classify(&h[i..ne]);
        if kind == HeaderKind::ContentLength {
            let mut c = ne;
            while c < line_end && matches!(h[c], b' ' | b'\t') {
                c += 1;
            }
            if c < line_end && h[c] == b':' {
                // Folded values are rare here; read to the end of this physical line.
                let ve = trim_end(h, c + 1, line_end);
                let vs = skip_lws(h, c + 1, ve);
                let v = parse_u32(h, Span::new(vs, ve)).map_err(|e| ParseError {
                    kind: ErrorKind::BadContentLength,
                    offset: e.offset,
                })?;
                if found.is_some_and(|f| f != v) {
                    return err(ErrorKind::MultipleContentLength, i);
                }
                found = Some(v);
            }
        }
        i = line_end;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &[u8] =
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl: 3\r\n\r\nabc";

    #[test]
    fn frames_in_pieces() {
        let mut f = StreamFramer::default();
        let mut b = BytesMut::new();
        let mut all = Vec::new();
        all.extend_from_slice(b"\r\n\r\n");
        all.extend_from_slice(M);
        all.extend_from_slice(M);
        all.extend_from_slice(b"\r\n");
        let mut got = Vec::new();
        for chunk in all.chunks(7) {
            b.extend_from_slice(chunk);
            while let Some(fr) = f.next_frame(&mut b).unwrap() {
                got.push(fr);
            }
        }
        assert!(matches!(got[0], Frame::Ping));
        assert!(matches!(&got[1], Frame::Message(m) if m.body() == b"abc"));
        assert!(matches!(&got[2], Frame::Message(m) if m.body() == b"abc"));
        assert!(matches!(got[3], Frame::Pong));
        assert_eq!(got.len(), 4);
        assert!(b.is_empty());
    }

    #[test]
    fn stream_requires_content_length() {
        let mut f = StreamFramer::default();
        let mut b = BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n"[..]);
        assert_eq!(
            f.next_frame(&mut b).unwrap_err().kind,
            ErrorKind::MissingContentLength
        );
        let mut b = BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -5\r\n\r\n"[..]);
        assert_eq!(
            f.next_frame(&mut b).unwrap_err().kind,
            ErrorKind::BadContentLength
        );
    }

    #[test]
    fn oversize_is_an_error() {
        let mut f = StreamFramer::new(Limits {
            max_message: 64,
            ..Limits::default()
        });
        let mut b = BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1000\r\n\r\n"[..]);
        assert_eq!(f.next_frame(&mut b).unwrap_err().kind, ErrorKind::TooLarge);
    }
}
