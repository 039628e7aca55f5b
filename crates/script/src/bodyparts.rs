//! The body-part functions of `sipmsgops`: `has_body_part`, `add_body_part`,
//! `remove_body_part`, `get_updated_body_part`, plus `is_audio_on_hold` and `sip_to_json`.
//! They work on the body as edited so far in this run (`textops::current_body`), so successive
//! calls see each other's changes; a body left with one part is written as a plain body with
//! that part's Content-Type, two or more as `multipart/mixed`.

use sipox_sip_msg::Span;

use crate::cx::{MsgCx, Ret, Stop};
use crate::program::{Fmt, PvRef};
use crate::registry::route_mask::{BRANCH, FAILURE, LOCAL, ONREPLY, REQUEST};
use crate::registry::{Args, Call, FixupError, FnDef, ModuleDef, Registry, Sig};
use crate::textops::{current_body, current_ctype, set_current_body_typed};
use crate::value::Kind;

type R = Result<Ret, Stop>;

const ROUTES: u16 = REQUEST | ONREPLY | FAILURE | BRANCH | LOCAL;

pub(crate) fn register(r: &mut Registry) {
    let f = |name: &'static str, params: &str, build| FnDef {
        sig: Sig::new("sipmsgops", name, params, ROUTES),
        build: Some(build),
    };
    r.add_module(ModuleDef {
        name: "sipmsgops",
        params: vec![],
        fns: vec![
            f("has_body_part", "s?", |mut a| {
                Ok(Box::new(HasBodyPart(mime_arg(&mut a, 0)?)))
            }),
            f("add_body_part", "s,s,s?", |mut a| {
                let body = a
                    .fmt(0)
                    .ok_or_else(|| FixupError::arg(0, "expected the part's body"))?;
                let mime = a
                    .fmt(1)
                    .ok_or_else(|| FixupError::arg(1, "expected a MIME type"))?;
                Ok(Box::new(AddBodyPart(body, mime, a.fmt(2))))
            }),
            f("remove_body_part", "s?,s?", |mut a| {
                let mime = mime_arg(&mut a, 0)?;
                let revert = a.static_str(1).is_some_and(|s| s.as_ref() == b"revert");
                Ok(Box::new(RemoveBodyPart(mime, revert)))
            }),
            f("get_updated_body_part", "s?,v", |mut a| {
                let mime = mime_arg(&mut a, 0)?;
                let out = a
                    .var(1)
                    .ok_or_else(|| FixupError::arg(1, "expected an output variable"))?;
                Ok(Box::new(UpdatedBodyPart(mime, out)))
            }),
            f("is_audio_on_hold", "", |_| Ok(Box::new(AudioOnHold))),
            f("sip_to_json", "v", |mut a| {
                let out = a
                    .var(0)
                    .ok_or_else(|| FixupError::arg(0, "expected an output variable"))?;
                Ok(Box::new(SipToJson(out)))
            }),
        ],
    });
}

/// A MIME argument: `type/subtype`, lower-cased (checked at load time when constant).
fn mime_arg(a: &mut Args<'_>, i: usize) -> Result<Option<Vec<u8>>, FixupError> {
    let Some(s) = a.static_str(i) else {
        return Ok(None);
    };
    if s.is_empty() {
        return Ok(None);
    }
    let m = mime_of(&s);
    if m.split(|&c| c == b'/').filter(|p| !p.is_empty()).count() != 2 {
        return Err(FixupError::arg(i, "unsupported MIME type"));
    }
    Ok(Some(m))
}

/// `type/subtype` of a Content-Type value, lower-cased, without parameters.
fn mime_of(ct: &[u8]) -> Vec<u8> {
    let t = ct.split(|&c| c == b';').next().unwrap_or_default();
    let mut v: Vec<u8> = t
        .iter()
        .filter(|c| !c.is_ascii_whitespace())
        .copied()
        .collect();
    v.make_ascii_lowercase();
    v
}

fn is_multipart(ct: &[u8]) -> bool {
    mime_of(ct).starts_with(b"multipart/")
}

/// One body part: its Content-Type, its other header lines (each ending in CRLF) and its body.
#[derive(Debug, Clone)]
struct Part {
    ctype: Vec<u8>,
    hdrs: Vec<u8>,
    body: Vec<u8>,
}

/// The body split into parts: `(boundary of a multipart body, parts)`. A body without a
/// Content-Type is taken as `application/sdp`, as OpenSIPS does.
fn split_parts(ct: &[u8], body: &[u8]) -> (Option<Vec<u8>>, Vec<Part>) {
    if body.is_empty() {
        return (None, Vec::new());
    }
    if is_multipart(ct) {
        let boundary = sipox_sip_msg::parse_media_type(ct, Span::new(0, ct.len()))
            .ok()
            .and_then(|m| {
                sipox_sip_msg::Bound::new(ct, m)
                    .boundary()
                    .map(<[u8]>::to_vec)
            });
        if let Some(b) = boundary
            && let Ok(ps) = sipox_sip_msg::parse_multipart(body, Span::new(0, body.len()), &b)
        {
            let parts = ps
                .iter()
                .map(|p| {
                    let ctype = sipox_sip_msg::part_header(body, p, b"Content-Type")
                        .unwrap_or(b"text/plain")
                        .to_vec();
                    let mut hdrs = Vec::new();
                    for line in p.headers.of(body).split(|&c| c == b'\n') {
                        let line = line.strip_suffix(b"\r").unwrap_or(line);
                        let name = line.split(|&c| c == b':').next().unwrap_or_default();
                        if line.is_empty()
                            || name.trim_ascii().eq_ignore_ascii_case(b"Content-Type")
                        {
                            continue;
                        }
                        hdrs.extend_from_slice(line);
                        hdrs.extend_from_slice(b"\r\n");
                    }
                    Part {
                        ctype,
                        hdrs,
                        body: p.body.of(body).to_vec(),
                    }
                })
                .collect();
            return (Some(b), parts);
        }
    }
    let ctype = if ct.is_empty() {
        b"application/sdp".to_vec()
    } else {
        ct.to_vec()
    };
    (
        None,
        vec![Part {
            ctype,
            hdrs: Vec::new(),
            body: body.to_vec(),
        }],
    )
}

/// Builds the body for `parts`: `(Content-Type, body)`; empty for no parts, the part itself for
/// one, `multipart/mixed` (keeping `orig_ct` when it was multipart already) for more.
fn assemble(orig_ct: &[u8], boundary: Option<Vec<u8>>, parts: &[Part]) -> (Vec<u8>, Vec<u8>) {
    match parts {
        [] => (Vec::new(), Vec::new()),
        [p] => (p.ctype.clone(), p.body.clone()),
        _ => {
            let b = boundary.unwrap_or_else(|| fresh_boundary(parts));
            let ct = if is_multipart(orig_ct) {
                orig_ct.to_vec()
            } else {
                let mut c = b"multipart/mixed;boundary=".to_vec();
                c.extend_from_slice(&b);
                c
            };
            let mut out = Vec::new();
            for p in parts {
                out.extend_from_slice(b"--");
                out.extend_from_slice(&b);
                out.extend_from_slice(b"\r\nContent-Type: ");
                out.extend_from_slice(&p.ctype);
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&p.hdrs);
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&p.body);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"--");
            out.extend_from_slice(&b);
            out.extend_from_slice(b"--\r\n");
            (ct, out)
        }
    }
}

/// A boundary that occurs in none of the parts.
fn fresh_boundary(parts: &[Part]) -> Vec<u8> {
    let mut n = 1u32;
    loop {
        let b = format!("sipox-boundary-{n}").into_bytes();
        let clash = parts.iter().any(|p| {
            memchr_find(&p.body, &b) || memchr_find(&p.hdrs, &b) || memchr_find(&p.ctype, &b)
        });
        if !clash || n > 1000 {
            return b;
        }
        n += 1;
    }
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len().max(1)).any(|w| w == needle)
}

/// The parts of the body as edited so far, with the Content-Type they came under.
fn current_parts(cx: &mut MsgCx) -> (Vec<u8>, Option<Vec<u8>>, Vec<Part>) {
    let ct = current_ctype(cx);
    let body = current_body(cx);
    let (b, parts) = split_parts(&ct, &body);
    (ct, b, parts)
}

/// `has_body_part([mime])`: 1 when some part has the MIME type (any part when none is given;
/// a `multipart/*` type is checked against the message's Content-Type), -1 otherwise.
#[derive(Debug)]
struct HasBodyPart(Option<Vec<u8>>);

impl Call for HasBodyPart {
    fn call(&self, cx: &mut MsgCx) -> R {
        let (ct, _, parts) = current_parts(cx);
        let hit = match &self.0 {
            None => !parts.is_empty(),
            Some(m) if m.starts_with(b"multipart/") => mime_of(&ct) == *m,
            Some(m) => parts.iter().any(|p| mime_of(&p.ctype) == *m),
        };
        Ok(Ret::of(hit))
    }
}

/// `add_body_part(body, mime[, headers])`: adds a part (the body becomes multipart when it
/// already had one). 1, or -1 for an empty body or MIME type.
#[derive(Debug)]
struct AddBodyPart(Fmt, Fmt, Option<Fmt>);

impl Call for AddBodyPart {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut body = Vec::new();
        cx.eval_fmt(&self.0, &mut body);
        let mut mime = Vec::new();
        cx.eval_fmt(&self.1, &mut mime);
        let mut hdrs = Vec::new();
        if let Some(h) = &self.2 {
            cx.eval_fmt(h, &mut hdrs);
            if !hdrs.is_empty() && !hdrs.ends_with(b"\n") {
                hdrs.extend_from_slice(b"\r\n");
            }
        }
        if body.is_empty() || mime.is_empty() {
            cx.log(-1, b"ERROR: add_body_part: empty body or MIME type");
            return Ok(Ret::FALSE);
        }
        if cx.msg().is_none() {
            return Ok(Ret::FALSE);
        }
        let (ct, b, mut parts) = current_parts(cx);
        parts.push(Part {
            ctype: mime,
            hdrs,
            body,
        });
        let (nct, nbody) = assemble(&ct, b, &parts);
        set_current_body_typed(cx, &nct, nbody);
        Ok(Ret::TRUE)
    }
}

/// `remove_body_part([mime[, "revert"]])`: removes the parts of that MIME type (with
/// "revert": all the others; no MIME: the whole body). 1 when something was removed, -1 when
/// there is no body or nothing matched.
#[derive(Debug)]
struct RemoveBodyPart(Option<Vec<u8>>, bool);

impl Call for RemoveBodyPart {
    fn call(&self, cx: &mut MsgCx) -> R {
        let (ct, b, parts) = current_parts(cx);
        if parts.is_empty() {
            return Ok(Ret::FALSE);
        }
        let keep: Vec<Part> = match &self.0 {
            None => Vec::new(),
            Some(m) => parts
                .iter()
                .filter(|p| (mime_of(&p.ctype) == *m) == self.1)
                .cloned()
                .collect(),
        };
        if keep.len() == parts.len() {
            return Ok(Ret::FALSE);
        }
        let (nct, nbody) = assemble(&ct, b, &keep);
        set_current_body_typed(cx, &nct, nbody);
        Ok(Ret::TRUE)
    }
}

/// `get_updated_body_part([mime], $var)`: the body with all changes so far (only the first part
/// of that MIME type when one is given). 1; -1 without a body; -2 when no part has the type.
#[derive(Debug)]
struct UpdatedBodyPart(Option<Vec<u8>>, Box<PvRef>);

impl Call for UpdatedBodyPart {
    fn call(&self, cx: &mut MsgCx) -> R {
        let (_, _, parts) = current_parts(cx);
        if parts.is_empty() {
            return Ok(Ret::FALSE);
        }
        let mut out = match &self.0 {
            None => current_body(cx),
            Some(m) => match parts.iter().find(|p| mime_of(&p.ctype) == *m) {
                Some(p) => p.body.clone(),
                None => return Ok(Ret(-2)),
            },
        };
        cx.set_var(&self.1, Kind::Str, &mut out);
        Ok(Ret::TRUE)
    }
}

/// `is_audio_on_hold()`: 1 when an audio stream is held the RFC 2543 way (connection address
/// 0.0.0.0), 2 when held the RFC 3264 way (sendonly or inactive); -1 otherwise or without SDP.
#[derive(Debug)]
struct AudioOnHold;

impl Call for AudioOnHold {
    fn call(&self, cx: &mut MsgCx) -> R {
        let (_, _, parts) = current_parts(cx);
        for p in parts
            .iter()
            .filter(|p| mime_of(&p.ctype) == b"application/sdp")
        {
            let Ok(sdp) = sipox_sdp::Sdp::parse(&p.body) else {
                continue;
            };
            for m in sdp.media.iter().filter(|m| m.media == b"audio") {
                if sdp
                    .effective_connection(m)
                    .is_some_and(|c| c.address == b"0.0.0.0")
                {
                    return Ok(Ret(1));
                }
                if matches!(
                    sdp.effective_direction(m),
                    sipox_sdp::Direction::SendOnly | sipox_sdp::Direction::Inactive
                ) {
                    return Ok(Ret(2));
                }
            }
        }
        Ok(Ret::FALSE)
    }
}

/// `sip_to_json($var)`: the message (with the changes made so far) as a JSON object with
/// `first_line` (the start line), `headers` (each header name, as first written, mapped to the
/// list of its values in order) and `body`. 1, or -1 without a message.
#[derive(Debug)]
struct SipToJson(Box<PvRef>);

impl Call for SipToJson {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut raw = cx.take_buf();
        let ok = cx.write_message(&mut raw).is_ok();
        let parsed = ok
            .then(|| sipox_sip_msg::SipMsg::parse(bytes::Bytes::copy_from_slice(&raw)).ok())
            .flatten();
        cx.give_buf(raw);
        let Some(m) = parsed else {
            return Ok(Ret::FALSE);
        };
        let mut names: Vec<(&[u8], Vec<&[u8]>)> = Vec::new();
        for h in m.headers() {
            let n = m.name(h);
            let v = m.value(h);
            match names.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(n)) {
                Some((_, vs)) => vs.push(v),
                None => names.push((n, vec![v])),
            }
        }
        let mut out = cx.take_buf();
        out.extend_from_slice(b"{\"first_line\":");
        json_str(m.first_line(), &mut out);
        out.extend_from_slice(b",\"headers\":{");
        for (i, (n, vs)) in names.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json_str(n, &mut out);
            out.extend_from_slice(b":[");
            for (j, v) in vs.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                json_str(v, &mut out);
            }
            out.push(b']');
        }
        out.extend_from_slice(b"},\"body\":");
        json_str(m.body(), &mut out);
        out.push(b'}');
        cx.set_var(&self.0, Kind::Str, &mut out);
        cx.give_buf(out);
        Ok(Ret::TRUE)
    }
}

/// Appends `s` as a JSON string (invalid UTF-8 becomes U+FFFD).
fn json_str(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for c in String::from_utf8_lossy(s).chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                let _ = std::io::Write::write_fmt(out, format_args!("\\u{:04x}", c as u32));
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}
