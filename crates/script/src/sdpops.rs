//! The SDP functions of `sipmsgops`: `codec_exists`, `codec_delete`, `codec_move_up`,
//! `codec_move_down` (by name and optional clock rate), their `_re` forms and
//! `codec_delete_except_re`, `stream_exists` and `stream_delete`. They work on the body as edited
//! so far in this run (see `textops::current_body`), through `sipox-sdp`'s owned model, so that
//! successive calls see each other's changes.

use sipox_sdp::{SdpOwned, parse_payload_type};

use crate::cx::{MsgCx, Ret, Stop};
use crate::program::Fmt;
use crate::registry::route_mask::{BRANCH, FAILURE, LOCAL, ONREPLY, REQUEST};
use crate::registry::{Args, Call, FixupError, FnDef, ModuleDef, RegexArg, Registry, Sig};
use crate::textops::{current_body, set_current_body};

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
            f("codec_exists", "s,s?", |a| by_name(a, CodecOp::Exists)),
            f("codec_delete", "s,s?", |a| by_name(a, CodecOp::Delete)),
            f("codec_move_up", "s,s?", |a| by_name(a, CodecOp::MoveUp)),
            f("codec_move_down", "s,s?", |a| by_name(a, CodecOp::MoveDown)),
            f("codec_exists_re", "r", |a| by_re(a, CodecOp::Exists)),
            f("codec_delete_re", "r", |a| by_re(a, CodecOp::Delete)),
            f("codec_delete_except_re", "r", |a| {
                by_re(a, CodecOp::DeleteExcept)
            }),
            f("codec_move_up_re", "r", |a| by_re(a, CodecOp::MoveUp)),
            f("codec_move_down_re", "r", |a| by_re(a, CodecOp::MoveDown)),
            f("stream_exists", "r", |a| stream(a, false)),
            f("stream_delete", "r", |a| stream(a, true)),
        ],
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CodecOp {
    Exists,
    Delete,
    DeleteExcept,
    MoveUp,
    MoveDown,
}

#[derive(Debug)]
enum Match {
    Name(Fmt, Option<Fmt>),
    Re(RegexArg),
}

#[derive(Debug)]
struct Codec(CodecOp, Match);

#[derive(Debug)]
struct Stream(RegexArg, bool);

fn by_name(mut a: Args<'_>, op: CodecOp) -> Result<Box<dyn Call>, FixupError> {
    let name = a
        .fmt(0)
        .ok_or_else(|| FixupError::arg(0, "expected a codec name"))?;
    Ok(Box::new(Codec(op, Match::Name(name, a.fmt(1)))))
}

fn by_re(mut a: Args<'_>, op: CodecOp) -> Result<Box<dyn Call>, FixupError> {
    let re = a
        .regex(0)
        .ok_or_else(|| FixupError::arg(0, "expected a regular expression"))?;
    Ok(Box::new(Codec(op, Match::Re(re))))
}

fn stream(mut a: Args<'_>, delete: bool) -> Result<Box<dyn Call>, FixupError> {
    let re = a
        .regex(0)
        .ok_or_else(|| FixupError::arg(0, "expected a regular expression"))?;
    Ok(Box::new(Stream(re, delete)))
}

/// Static RTP payload types (RFC 3551) by name and clock, for formats without an rtpmap.
fn static_codec(pt: u8) -> Option<(&'static [u8], u32)> {
    Some(match pt {
        0 => (b"PCMU", 8000),
        3 => (b"GSM", 8000),
        4 => (b"G723", 8000),
        5 => (b"DVI4", 8000),
        6 => (b"DVI4", 16000),
        7 => (b"LPC", 8000),
        8 => (b"PCMA", 8000),
        9 => (b"G722", 8000),
        10 | 11 => (b"L16", 44100),
        12 => (b"QCELP", 8000),
        13 => (b"CN", 8000),
        14 => (b"MPA", 90000),
        15 => (b"G728", 8000),
        18 => (b"G729", 8000),
        26 => (b"JPEG", 90000),
        31 => (b"H261", 90000),
        32 => (b"MPV", 90000),
        34 => (b"H263", 90000),
        _ => return None,
    })
}

/// The (name, clock) of a format in a media section.
fn codec_of(m: &sipox_sdp::Media<Vec<u8>>, fmt: &[u8]) -> Option<(Vec<u8>, Option<u32>)> {
    let pt = parse_payload_type(fmt)?;
    if let Some(r) = m.rtpmap(pt) {
        return Some((r.encoding.to_vec(), r.clock_rate));
    }
    static_codec(pt).map(|(n, c)| (n.to_vec(), Some(c)))
}

fn matches(
    m: &Match,
    cx_vals: &(Vec<u8>, Option<Vec<u8>>, Option<regex::bytes::Regex>),
    name: &[u8],
    clock: Option<u32>,
) -> bool {
    match m {
        Match::Name(..) => {
            name.eq_ignore_ascii_case(&cx_vals.0)
                && cx_vals.1.as_ref().is_none_or(|c| {
                    clock.is_some_and(|k| k.to_string().as_bytes().eq_ignore_ascii_case(c))
                })
        }
        Match::Re(RegexArg::Const(re)) => re.is_match(name),
        Match::Re(RegexArg::Dyn(_)) => cx_vals.2.as_ref().is_some_and(|re| re.is_match(name)),
    }
}

fn dyn_re(cx: &mut MsgCx, r: &RegexArg) -> Option<regex::bytes::Regex> {
    let RegexArg::Dyn(f) = r else {
        return None;
    };
    let mut b = Vec::new();
    cx.eval_fmt(f, &mut b);
    let p = std::str::from_utf8(&b).ok()?;
    regex::bytes::RegexBuilder::new(p)
        .case_insensitive(true)
        .build()
        .ok()
}

fn load(cx: &mut MsgCx) -> Option<SdpOwned> {
    let body = current_body(cx);
    if body.is_empty() {
        return None;
    }
    SdpOwned::parse(&body).ok()
}

impl Call for Codec {
    fn call(&self, cx: &mut MsgCx) -> R {
        let vals = match &self.1 {
            Match::Name(n, c) => {
                let mut nb = Vec::new();
                cx.eval_fmt(n, &mut nb);
                let cb = c.as_ref().map(|c| {
                    let mut b = Vec::new();
                    cx.eval_fmt(c, &mut b);
                    b
                });
                (nb, cb, None)
            }
            Match::Re(r) => (Vec::new(), None, dyn_re(cx, r)),
        };
        let Some(mut sdp) = load(cx) else {
            return Ok(Ret::FALSE);
        };
        let mut hit = false;
        for m in &mut sdp.media {
            let fmts: Vec<(Vec<u8>, bool)> = m
                .formats
                .iter()
                .map(|f| {
                    let is = codec_of(m, f).is_some_and(|(n, c)| matches(&self.1, &vals, &n, c));
                    (f.clone(), is)
                })
                .collect();
            match self.0 {
                CodecOp::Exists => hit |= fmts.iter().any(|(_, is)| *is),
                CodecOp::Delete | CodecOp::DeleteExcept => {
                    let delete = self.0 == CodecOp::Delete;
                    for (f, is) in &fmts {
                        if *is == delete {
                            hit |= m.remove_format(f);
                        }
                    }
                }
                CodecOp::MoveUp | CodecOp::MoveDown => {
                    if fmts.iter().any(|(_, is)| *is) {
                        let (mut sel, rest): (Vec<_>, Vec<_>) =
                            fmts.into_iter().partition(|(_, is)| *is);
                        let rest: Vec<Vec<u8>> = rest.into_iter().map(|(f, _)| f).collect();
                        let sel_f: Vec<Vec<u8>> = sel.drain(..).map(|(f, _)| f).collect();
                        let order = if self.0 == CodecOp::MoveUp {
                            [sel_f, rest].concat()
                        } else {
                            [rest, sel_f].concat()
                        };
                        if order != m.formats {
                            m.formats = order;
                        }
                        hit = true;
                    }
                }
            }
        }
        if hit && self.0 != CodecOp::Exists {
            set_current_body(cx, sdp.to_bytes());
        }
        Ok(Ret::of(hit))
    }
}

impl Call for Stream {
    fn call(&self, cx: &mut MsgCx) -> R {
        let dre = dyn_re(cx, &self.0);
        let is = |name: &[u8]| match &self.0 {
            RegexArg::Const(re) => re.is_match(name),
            RegexArg::Dyn(_) => dre.as_ref().is_some_and(|re| re.is_match(name)),
        };
        let Some(mut sdp) = load(cx) else {
            return Ok(Ret::FALSE);
        };
        let before = sdp.media.len();
        if !self.1 {
            return Ok(Ret::of(sdp.media.iter().any(|m| is(&m.media))));
        }
        sdp.media.retain(|m| !is(&m.media));
        let hit = sdp.media.len() != before;
        if hit {
            set_current_body(cx, sdp.to_bytes());
        }
        Ok(Ret::of(hit))
    }
}
