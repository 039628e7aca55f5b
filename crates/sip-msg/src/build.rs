//! Building replies to a request (stateless replies, tm's local replies) and the requests a
//! proxy generates itself (CANCEL, ACK for a non-2xx final response).

use crate::edit::itoa_buf;
use crate::error::{ErrorKind, Result, err};
use crate::hdr::HeaderKind;
use crate::msg::SipMsg;

/// Options for [`build_reply`].
#[derive(Debug, Default, Clone, Copy)]
pub struct ReplyOpts<'a> {
    /// To-tag to add when the request's To has none (ignored for 100).
    pub to_tag: Option<&'a [u8]>,
    /// `received` to add to the top Via (the source IP when it differs from sent-by).
    pub via_received: Option<&'a [u8]>,
    /// Source port to fill into an empty `rport` of the top Via (RFC 3581).
    pub via_rport: Option<u16>,
    /// Extra header lines, each ending in CRLF.
    pub extra_headers: &'a [u8],
    /// `Server:` header value.
    pub server: Option<&'a [u8]>,
    /// Body with its content type (empty: no Content-Type line).
    pub body: Option<(&'a [u8], &'a [u8])>,
}

fn put_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Content-Type (when there is a body and the type is not empty), Content-Length, the empty
/// line and the body.
fn put_body(out: &mut Vec<u8>, body: Option<(&[u8], &[u8])>) {
    let body = match body {
        Some((ct, b)) => {
            if !ct.is_empty() {
                put_header(out, b"Content-Type", ct);
            }
            b
        }
        None => &[],
    };
    put_header(out, b"Content-Length", &itoa_buf(body.len()));
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

fn put_top_via(req: &SipMsg, raw: &[u8], opts: &ReplyOpts<'_>, out: &mut Vec<u8>) -> Result<()> {
    let via = req.via1()?;
    out.extend_from_slice(b"Via: ");
    let base = via.v.span.start as usize;
    match (opts.via_rport, via.v.rport) {
        (Some(port), Some(None)) => {
            // "rport" present without a value: fill it in.
            let rp = via
                .params()
                .iter()
                .find(|p| p.name.of(req.buf()).eq_ignore_ascii_case(b"rport"))
                .map_or(raw.len(), |p| p.name.end as usize - base);
            out.extend_from_slice(&raw[..rp]);
            out.push(b'=');
            out.extend_from_slice(&itoa_buf(usize::from(port)));
            out.extend_from_slice(&raw[rp..]);
        }
        _ => out.extend_from_slice(raw),
    }
    if let Some(r) = opts.via_received
        && via.received().is_none()
    {
        out.extend_from_slice(b";received=");
        out.extend_from_slice(r);
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Writes a reply to `req` into `out`: status line, every Via (the top one with received/rport
/// when asked), From, To (with a tag added), Call-ID, CSeq, Record-Route for 1xx/2xx, extra
/// headers, Server, Content-Type and Content-Length, body.
pub fn build_reply(
    req: &SipMsg,
    code: u16,
    reason: &[u8],
    opts: &ReplyOpts<'_>,
    out: &mut Vec<u8>,
) -> Result<()> {
    if !req.is_request() {
        return err(ErrorKind::BadStartLine, 0);
    }
    if !(100..=699).contains(&code) {
        return err(ErrorKind::BadStatusCode, 0);
    }
    out.extend_from_slice(b"SIP/2.0 ");
    out.extend_from_slice(&itoa_buf(usize::from(code)));
    out.push(b' ');
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\n");
    let buf = req.buf();
    let mut first = true;
    for v in req.values(HeaderKind::Via) {
        if first {
            put_top_via(req, v.of(buf), opts, out)?;
            first = false;
        } else {
            put_header(out, b"Via", v.of(buf));
        }
    }
    if first {
        return err(ErrorKind::Missing, req.headers_end() as usize);
    }
    for kind in [
        HeaderKind::From,
        HeaderKind::To,
        HeaderKind::CallId,
        HeaderKind::CSeq,
    ] {
        let Some(h) = req.header(kind) else {
            return err(ErrorKind::Missing, req.headers_end() as usize);
        };
        out.extend_from_slice(kind.name().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(req.value(h));
        if kind == HeaderKind::To
            && code > 100
            && let Some(tag) = opts.to_tag
            && req.to()?.tag().is_none()
        {
            out.extend_from_slice(b";tag=");
            out.extend_from_slice(tag);
        }
        out.extend_from_slice(b"\r\n");
    }
    if (101..300).contains(&code) {
        for h in req.headers_of(HeaderKind::RecordRoute) {
            put_header(out, b"Record-Route", req.value(h));
        }
    }
    out.extend_from_slice(opts.extra_headers);
    if let Some(s) = opts.server {
        put_header(out, b"Server", s);
    }
    put_body(out, opts.body);
    Ok(())
}

fn request_line(method: &[u8], ruri: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(method);
    out.push(b' ');
    out.extend_from_slice(ruri);
    out.extend_from_slice(b" SIP/2.0\r\n");
}

fn copy_routes(req: &SipMsg, out: &mut Vec<u8>) {
    for h in req.headers_of(HeaderKind::Route) {
        put_header(out, b"Route", req.value(h));
    }
}

/// Builds the CANCEL for an INVITE as it was sent (RFC 3261 §9.1): same Request-URI, the top Via
/// only, same Route set, From, To, Call-ID, CSeq number with method CANCEL. `reason` adds a
/// Reason header (RFC 3326) when given.
pub fn build_cancel(invite: &SipMsg, reason: Option<&[u8]>, out: &mut Vec<u8>) -> Result<()> {
    let via = invite.via1()?;
    let cseq = invite.cseq()?;
    request_line(b"CANCEL", invite.ruri_raw(), out);
    put_header(out, b"Via", via.raw());
    copy_routes(invite, out);
    put_header(out, b"Max-Forwards", b"70");
    for kind in [HeaderKind::From, HeaderKind::To, HeaderKind::CallId] {
        let Some(v) = invite.value_of(kind) else {
            return err(ErrorKind::Missing, 0);
        };
        put_header(out, kind.name().as_bytes(), v);
    }
    out.extend_from_slice(b"CSeq: ");
    out.extend_from_slice(&itoa_buf(cseq.number() as usize));
    out.extend_from_slice(b" CANCEL\r\n");
    if let Some(r) = reason {
        put_header(out, b"Reason", r);
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Ok(())
}

/// Builds the hop-by-hop ACK for a non-2xx final response to an INVITE (RFC 3261 §17.1.1.3):
/// the INVITE's Request-URI, top Via and Route set, the response's To (with its tag).
pub fn build_ack_for_non2xx(invite: &SipMsg, reply: &SipMsg, out: &mut Vec<u8>) -> Result<()> {
    let via = invite.via1()?;
    let cseq = invite.cseq()?;
    request_line(b"ACK", invite.ruri_raw(), out);
    put_header(out, b"Via", via.raw());
    copy_routes(invite, out);
    put_header(out, b"Max-Forwards", b"70");
    let (Some(from), Some(to), Some(cid)) = (
        invite.value_of(HeaderKind::From),
        reply.value_of(HeaderKind::To),
        invite.value_of(HeaderKind::CallId),
    ) else {
        return err(ErrorKind::Missing, 0);
    };
    put_header(out, b"From", from);
    put_header(out, b"To", to);
    put_header(out, b"Call-ID", cid);
    out.extend_from_slice(b"CSeq: ");
    out.extend_from_slice(&itoa_buf(cseq.number() as usize));
    out.extend_from_slice(b" ACK\r\n");
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Ok(())
}

/// The parts of a new request an element originates (tm's `t_uac`, keep-alive OPTIONS...).
#[derive(Debug, Clone, Copy)]
pub struct NewRequest<'a> {
    /// Method.
    pub method: &'a [u8],
    /// Request-URI.
    pub ruri: &'a [u8],
    /// Top Via value.
    pub via: &'a [u8],
    /// From value (with tag).
    pub from: &'a [u8],
    /// To value.
    pub to: &'a [u8],
    /// Call-ID.
    pub call_id: &'a [u8],
    /// CSeq number.
    pub cseq: u32,
    /// Max-Forwards.
    pub max_forwards: u8,
    /// Extra header lines, each ending in CRLF.
    pub extra_headers: &'a [u8],
    /// Body with its content type (empty: no Content-Type line).
    pub body: Option<(&'a [u8], &'a [u8])>,
}

/// Writes a new request.
pub fn build_request(r: &NewRequest<'_>, out: &mut Vec<u8>) {
    request_line(r.method, r.ruri, out);
    put_header(out, b"Via", r.via);
    put_header(out, b"Max-Forwards", &itoa_buf(usize::from(r.max_forwards)));
    put_header(out, b"From", r.from);
    put_header(out, b"To", r.to);
    put_header(out, b"Call-ID", r.call_id);
    out.extend_from_slice(b"CSeq: ");
    out.extend_from_slice(&itoa_buf(r.cseq as usize));
    out.push(b' ');
    out.extend_from_slice(r.method);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(r.extra_headers);
    put_body(out, r.body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const REQ: &[u8] = b"INVITE sip:bob@biloxi.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.com;rport;branch=z9hG4bK776asdhds\r\n\
Via: SIP/2.0/UDP h0;branch=z9hG4bK0\r\n\
Record-Route: <sip:p1;lr>\r\n\
To: Bob <sip:bob@biloxi.com>\r\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
Route: <sip:r1;lr>\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn reply_copies_and_tags() {
        let req = SipMsg::parse(Bytes::from_static(REQ)).unwrap();
        let mut out = Vec::new();
        let opts = ReplyOpts {
            to_tag: Some(b"abc"),
            via_received: Some(b"192.0.2.9"),
            via_rport: Some(5062),
            server: Some(b"sipox"),
            body: Some((b"text/plain", b"hi")),
            ..ReplyOpts::default()
        };
        build_reply(&req, 180, b"Ringing", &opts, &mut out).unwrap();
        let r = SipMsg::parse(Bytes::from(out)).unwrap();
        assert_eq!(r.status(), Some(180));
        let v = r.via1().unwrap();
        assert_eq!(v.rport(), Some(Some(&b"5062"[..])));
        assert_eq!(v.received(), Some(&b"192.0.2.9"[..]));
        assert_eq!(v.branch(), Some(&b"z9hG4bK776asdhds"[..]));
        assert_eq!(r.values(HeaderKind::Via).count(), 2);
        assert_eq!(r.to().unwrap().tag(), Some(&b"abc"[..]));
        assert_eq!(r.count_of(HeaderKind::RecordRoute), 1);
        assert_eq!(r.body(), b"hi");
        assert_eq!(r.cseq().unwrap().number(), 314159);
    }

    #[test]
    fn cancel_and_ack() {
        let req = SipMsg::parse(Bytes::from_static(REQ)).unwrap();
        let mut out = Vec::new();
        build_cancel(
            &req,
            Some(b"SIP;cause=200;text=\"Call completed elsewhere\""),
            &mut out,
        )
        .unwrap();
        let c = SipMsg::parse(Bytes::from(out)).unwrap();
        assert_eq!(c.method(), Some(crate::Method::Cancel));
        assert_eq!(c.values(HeaderKind::Via).count(), 1);
        assert_eq!(c.cseq().unwrap().method_bytes(), b"CANCEL");
        assert_eq!(c.count_of(HeaderKind::Route), 1);
        let mut rep = Vec::new();
        build_reply(
            &req,
            486,
            b"Busy Here",
            &ReplyOpts {
                to_tag: Some(b"t9"),
                ..Default::default()
            },
            &mut rep,
        )
        .unwrap();
        let rep = SipMsg::parse(Bytes::from(rep)).unwrap();
        let mut out = Vec::new();
        build_ack_for_non2xx(&req, &rep, &mut out).unwrap();
        let a = SipMsg::parse(Bytes::from(out)).unwrap();
        assert_eq!(a.to().unwrap().tag(), Some(&b"t9"[..]));
        assert_eq!(a.cseq().unwrap().number(), 314159);
        assert_eq!(a.ruri_raw(), b"sip:bob@biloxi.com");
    }
}
