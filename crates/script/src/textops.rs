//! The `textops` module: regex search, replace and sed-like substitution over the message
//! text, its body, the Request-URI and its user part.
//!
//! Regions, as in OpenSIPS: `search` looks at the whole message (start line included); the
//! replacing functions start at the first header (the start line is never touched); the `_body`
//! variants look at the body only. Header changes are recorded as edits of the received text;
//! body changes go through the message's pending body ([`current_body`]), so successive body
//! edits (textops, the codec functions of sipmsgops) compose and Content-Length is fixed when
//! the message is written. A match that straddles the header/body boundary is left alone.
//! Regexes given as constants are compiled at load (case-insensitive, like OpenSIPS's
//! `REG_ICASE`); `subst` regexes are case-sensitive unless the `i` flag is given.

use bytes::Bytes;
use regex::bytes::{Captures, Regex, RegexBuilder};
use sipox_sip_msg::SipMsg;

use crate::cx::{MsgCx, MsgState, Ret, Stop};
use crate::interp::{UriPart, set_uri_part};
use crate::program::Fmt;
use crate::registry::route_mask::{BRANCH, FAILURE, ONREPLY, REQUEST};
use crate::registry::{Args, Call, FixupError, FnDef, ModuleDef, RegexArg, Registry, Sig};

type R = Result<Ret, Stop>;

const ROUTES: u16 = REQUEST | ONREPLY | FAILURE | BRANCH;

/// The pending body of the message (after body edits of this script run).
#[derive(Debug, Default)]
pub(crate) struct BodyState {
    body: Option<Vec<u8>>,
    /// The Content-Type a body function gave the new body (`Some(empty)`: removed).
    ctype: Option<Vec<u8>>,
}

impl MsgState for BodyState {
    fn reset(&mut self) {
        self.body = None;
        self.ctype = None;
    }
}

/// The Content-Type value as edited so far (empty when there is none).
pub(crate) fn current_ctype(cx: &mut MsgCx) -> Vec<u8> {
    if let Some(c) = cx.peek_state::<BodyState>().and_then(|s| s.ctype.as_ref()) {
        return c.clone();
    }
    cx.msg()
        .and_then(|m| m.value_of(sipox_sip_msg::HeaderKind::ContentType))
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// Replaces the body and its Content-Type; an empty body removes both.
pub(crate) fn set_current_body_typed(cx: &mut MsgCx, ctype: &[u8], body: Vec<u8>) {
    if let Some(m) = cx.msg_mut() {
        if body.is_empty() {
            m.remove_body();
        } else {
            m.set_body(Some(ctype), Bytes::copy_from_slice(&body));
        }
    }
    if let Some(s) = cx.state::<BodyState>() {
        s.ctype = Some(if body.is_empty() {
            Vec::new()
        } else {
            ctype.to_vec()
        });
        s.body = Some(body);
    }
}

/// The body as edited so far (the received one when no function changed it).
pub(crate) fn current_body(cx: &mut MsgCx) -> Vec<u8> {
    if let Some(b) = cx.peek_state::<BodyState>().and_then(|s| s.body.as_ref()) {
        return b.clone();
    }
    cx.msg().map(|m| m.body().to_vec()).unwrap_or_default()
}

/// Replaces the body (Content-Length is fixed at write time).
pub(crate) fn set_current_body(cx: &mut MsgCx, body: Vec<u8>) {
    if let Some(m) = cx.msg_mut() {
        m.set_body(None, Bytes::copy_from_slice(&body));
    }
    if let Some(s) = cx.state::<BodyState>() {
        s.body = Some(body);
    }
}

pub(crate) fn register(r: &mut Registry) {
    let f = |name: &'static str, params: &str, build| FnDef {
        sig: Sig::new("textops", name, params, ROUTES),
        build: Some(build),
    };
    r.add_module(ModuleDef {
        name: "textops",
        params: vec![],
        fns: vec![
            f("search", "r", |a| build_op(a, Op::Search, Area::Msg)),
            f("search_body", "r", |a| build_op(a, Op::Search, Area::Body)),
            f("search_append", "r,s", |a| {
                build_op(a, Op::Append, Area::Hdrs)
            }),
            f("search_append_body", "r,s", |a| {
                build_op(a, Op::Append, Area::Body)
            }),
            f("replace", "r,s", |a| build_op(a, Op::Replace, Area::Hdrs)),
            f("replace_all", "r,s", |a| {
                build_op(a, Op::ReplaceAll, Area::Hdrs)
            }),
            f("replace_body", "r,s", |a| {
                build_op(a, Op::Replace, Area::Body)
            }),
            f("replace_body_all", "r,s", |a| {
                build_op(a, Op::ReplaceLines, Area::Body)
            }),
            f("replace_body_atonce", "r,s", |a| {
                build_op(a, Op::ReplaceAll, Area::Body)
            }),
            f("subst", "s", |a| build_subst(a, SubstOn::Msg)),
            f("subst_uri", "s", |a| build_subst(a, SubstOn::Uri)),
            f("subst_user", "s", |a| build_subst(a, SubstOn::User)),
            f("subst_body", "s", |a| build_subst(a, SubstOn::Body)),
        ],
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Search,
    Append,
    Replace,
    ReplaceAll,
    ReplaceLines,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Area {
    /// Whole message, start line included.
    Msg,
    /// From the first header to the end (body included).
    Hdrs,
    /// Body only.
    Body,
}

#[derive(Debug)]
struct TextOp {
    re: RegexArg,
    txt: Option<Fmt>,
    op: Op,
    area: Area,
}

fn build_op(mut a: Args<'_>, op: Op, area: Area) -> Result<Box<dyn Call>, FixupError> {
    let re = match a.regex(0) {
        // OpenSIPS compiles these with REG_NEWLINE: `^`/`$` match at every line.
        Some(RegexArg::Const(re)) => {
            RegexArg::Const(line_regex(re.as_str()).map_err(|e| FixupError::arg(0, e))?)
        }
        Some(d) => d,
        None => return Err(FixupError::arg(0, "expected a regular expression")),
    };
    let txt = if op == Op::Search {
        None
    } else {
        Some(
            a.fmt(1)
                .ok_or_else(|| FixupError::arg(1, "expected the text"))?,
        )
    };
    Ok(Box::new(TextOp { re, txt, op, area }))
}

fn line_regex(p: &str) -> Result<Regex, String> {
    RegexBuilder::new(p)
        .case_insensitive(true)
        .multi_line(true)
        .unicode(false)
        .build()
        .map_err(|e| e.to_string().lines().last().unwrap_or("").trim().to_owned())
}

fn regex_of(cx: &mut MsgCx, r: &RegexArg) -> Option<Regex> {
    match r {
        RegexArg::Const(re) => Some(re.clone()),
        RegexArg::Dyn(f) => {
            let mut b = cx.take_buf();
            cx.eval_fmt(f, &mut b);
            let re = line_regex(&String::from_utf8_lossy(&b));
            cx.give_buf(b);
            match re {
                Ok(re) => Some(re),
                Err(e) => {
                    cx.log(-1, format!("ERROR: textops: bad regex: {e}").as_bytes());
                    None
                }
            }
        }
    }
}

/// The text a function works on: received headers (from `start`) followed by the current
/// body; `hdr_len` bytes of it are headers at absolute offset `start`.
struct Text {
    bytes: Vec<u8>,
    start: u32,
    hdr_len: usize,
}

fn text_of(cx: &mut MsgCx, area: Area) -> Option<Text> {
    let body = current_body(cx);
    let m = cx.msg()?;
    let (start, hdr) = match area {
        Area::Body => (m.body_span().start, &b""[..]),
        Area::Msg => (
            m.span().start,
            slice(m, m.span().start, m.body_span().start),
        ),
        Area::Hdrs => {
            let s = first_header(m);
            (s, slice(m, s, m.body_span().start))
        }
    };
    let mut bytes = Vec::with_capacity(hdr.len() + body.len());
    bytes.extend_from_slice(hdr);
    let hdr_len = bytes.len();
    bytes.extend_from_slice(&body);
    Some(Text {
        bytes,
        start,
        hdr_len,
    })
}

fn slice(m: &SipMsg, a: u32, b: u32) -> &[u8] {
    m.buf().get(a as usize..b as usize).unwrap_or_default()
}

fn first_header(m: &SipMsg) -> u32 {
    m.headers()
        .first()
        .map_or_else(|| m.headers_end(), |h| h.name.start)
}

/// Applies replacements `(start, end, text)` (sorted, non-overlapping, relative to `t`):
/// header ones as edits, body ones on the current body. Returns how many were applied.
fn apply(cx: &mut MsgCx, t: &Text, reps: &[(usize, usize, Vec<u8>)]) -> usize {
    let mut n = 0;
    let mut body_changed = false;
    let mut pos = t.hdr_len;
    let mut nb = Vec::new();
    for (s, e, txt) in reps {
        if *e <= t.hdr_len {
            let (Ok(s32), Ok(e32)) = (u32::try_from(*s), u32::try_from(*e)) else {
                continue;
            };
            if let Some(m) = cx.msg_mut() {
                m.replace(
                    sipox_sip_msg::Span {
                        start: t.start + s32,
                        end: t.start + e32,
                    },
                    Bytes::copy_from_slice(txt),
                );
                n += 1;
            }
        } else if *s >= t.hdr_len && *s >= pos {
            nb.extend_from_slice(&t.bytes[pos..*s]);
            nb.extend_from_slice(txt);
            pos = *e;
            body_changed = true;
            n += 1;
        }
    }
    if body_changed {
        nb.extend_from_slice(&t.bytes[pos..]);
        set_current_body(cx, nb);
    }
    n
}

impl Call for TextOp {
    /// 1 when the regex matched (and the change was made); -1 otherwise.
    fn call(&self, cx: &mut MsgCx) -> R {
        let Some(re) = regex_of(cx, &self.re) else {
            return Ok(Ret::FALSE);
        };
        let Some(t) = text_of(cx, self.area) else {
            return Ok(Ret::FALSE);
        };
        if self.op == Op::Search {
            return Ok(Ret::of(re.is_match(&t.bytes)));
        }
        let mut txt = Vec::new();
        if let Some(f) = &self.txt {
            cx.eval_fmt(f, &mut txt);
        }
        let mut reps = Vec::new();
        match self.op {
            Op::Append => {
                if let Some(m) = re.find(&t.bytes) {
                    reps.push((m.end(), m.end(), txt));
                }
            }
            Op::Replace => {
                if let Some(m) = re.find(&t.bytes) {
                    reps.push((m.start(), m.end(), txt));
                }
            }
            Op::ReplaceAll => {
                for m in re.find_iter(&t.bytes) {
                    reps.push((m.start(), m.end(), txt.clone()));
                }
            }
            Op::ReplaceLines => {
                let mut off = 0;
                for line in t.bytes.split_inclusive(|&c| c == b'\n') {
                    let content = line
                        .strip_suffix(b"\n")
                        .map_or(line, |l| l.strip_suffix(b"\r").unwrap_or(l));
                    for m in re.find_iter(content) {
                        reps.push((off + m.start(), off + m.end(), txt.clone()));
                    }
                    off += line.len();
                }
            }
            Op::Search => {}
        }
        if reps.is_empty() {
            return Ok(Ret::FALSE);
        }
        Ok(Ret::of(apply(cx, &t, &reps) > 0))
    }
}

// ----- subst -----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubstOn {
    Msg,
    Uri,
    User,
    Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(Vec<u8>),
    Group(usize),
    Uri,
}

/// A parsed `/re/repl/flags` expression.
#[derive(Debug, Clone)]
pub(crate) struct Subst {
    re: Regex,
    repl: Vec<Piece>,
    global: bool,
}

/// Parses a sed-like `/re/repl/flags` (any separator; `\sep` escapes it; `\0`..`\9`
/// back-references, `\u` the Request-URI, `\n` `\r` `\t` `\\`; flags `i`, `g`, `s`).
pub(crate) fn parse_subst(s: &[u8]) -> Result<Subst, String> {
    let Some((&sep, rest)) = s.split_first() else {
        return Err("empty substitution expression".to_owned());
    };
    let mut parts: Vec<Vec<u8>> = vec![Vec::new()];
    let mut i = 0;
    while i < rest.len() {
        let c = rest[i];
        if c == b'\\' && rest.get(i + 1) == Some(&sep) {
            let in_re = parts.len() == 1;
            if let Some(p) = parts.last_mut() {
                if in_re && !sep.is_ascii_alphanumeric() {
                    p.push(b'\\');
                }
                p.push(sep);
            }
            i += 2;
            continue;
        }
        if c == b'\\' && i + 1 < rest.len() {
            if let Some(p) = parts.last_mut() {
                p.extend_from_slice(&rest[i..i + 2]);
            }
            i += 2;
            continue;
        }
        if c == sep {
            parts.push(Vec::new());
        } else if let Some(p) = parts.last_mut() {
            p.push(c);
        }
        i += 1;
    }
    if parts.len() != 3 {
        return Err(format!("expected {0}re{0}repl{0}flags", char::from(sep)));
    }
    let (mut icase, mut global, mut dotall) = (false, false, false);
    for f in &parts[2] {
        match f {
            b'i' => icase = true,
            b'g' => global = true,
            b's' => dotall = true,
            other => return Err(format!("unknown flag '{}'", char::from(*other))),
        }
    }
    let pat = String::from_utf8_lossy(&parts[0]).into_owned();
    let re = RegexBuilder::new(&pat)
        .case_insensitive(icase)
        .multi_line(!dotall)
        .dot_matches_new_line(dotall)
        .unicode(false)
        .build()
        .map_err(|e| e.to_string().lines().last().unwrap_or("").trim().to_owned())?;
    let mut repl = Vec::new();
    let mut lit = Vec::new();
    let r = &parts[1];
    let mut i = 0;
    while i < r.len() {
        if r[i] == b'\\' && i + 1 < r.len() {
            let n = r[i + 1];
            let special = match n {
                b'0'..=b'9' => Some(Piece::Group(usize::from(n - b'0'))),
                b'u' => Some(Piece::Uri),
                _ => None,
            };
            match special {
                Some(p) => {
                    if !lit.is_empty() {
                        repl.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    if let Piece::Group(g) = p
                        && g >= re.captures_len()
                    {
                        return Err(format!("no group \\{g} in the regex"));
                    }
                    repl.push(p);
                }
                None => lit.push(match n {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    o => o,
                }),
            }
            i += 2;
        } else {
            lit.push(r[i]);
            i += 1;
        }
    }
    if !lit.is_empty() {
        repl.push(Piece::Lit(lit));
    }
    Ok(Subst { re, repl, global })
}

impl Subst {
    fn expand(&self, c: &Captures<'_>, uri: &[u8], out: &mut Vec<u8>) {
        for p in &self.repl {
            match p {
                Piece::Lit(l) => out.extend_from_slice(l),
                Piece::Group(g) => {
                    if let Some(m) = c.get(*g) {
                        out.extend_from_slice(m.as_bytes());
                    }
                }
                Piece::Uri => out.extend_from_slice(uri),
            }
        }
    }

    /// `(start, end, replacement)` of the first (or every, with `g`) match.
    fn replacements(&self, text: &[u8], uri: &[u8]) -> Vec<(usize, usize, Vec<u8>)> {
        let mut v = Vec::new();
        for c in self.re.captures_iter(text) {
            let Some(m) = c.get(0) else { continue };
            let mut out = Vec::new();
            self.expand(&c, uri, &mut out);
            v.push((m.start(), m.end(), out));
            if !self.global {
                break;
            }
        }
        v
    }

    /// The whole text with the substitution applied, or `None` when nothing matched.
    fn run(&self, text: &[u8], uri: &[u8]) -> Option<Vec<u8>> {
        let reps = self.replacements(text, uri);
        if reps.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(text.len());
        let mut pos = 0;
        for (s, e, r) in reps {
            out.extend_from_slice(&text[pos..s]);
            out.extend_from_slice(&r);
            pos = e;
        }
        out.extend_from_slice(&text[pos..]);
        Some(out)
    }
}

#[derive(Debug)]
enum SubstArg {
    Const(Subst),
    Dyn(Fmt),
}

#[derive(Debug)]
struct SubstCall {
    arg: SubstArg,
    on: SubstOn,
}

fn build_subst(mut a: Args<'_>, on: SubstOn) -> Result<Box<dyn Call>, FixupError> {
    let f = a
        .fmt(0)
        .ok_or_else(|| FixupError::arg(0, "expected '/re/repl/flags'"))?;
    let arg = match f.as_const() {
        Some(c) => SubstArg::Const(parse_subst(c).map_err(|e| FixupError::arg(0, e))?),
        None => SubstArg::Dyn(f),
    };
    Ok(Box::new(SubstCall { arg, on }))
}

impl Call for SubstCall {
    /// 1 when something was substituted; -1 when nothing matched (or a bad expression).
    fn call(&self, cx: &mut MsgCx) -> R {
        let dynamic;
        let s = match &self.arg {
            SubstArg::Const(s) => s,
            SubstArg::Dyn(f) => {
                let mut b = cx.take_buf();
                cx.eval_fmt(f, &mut b);
                let p = parse_subst(&b);
                cx.give_buf(b);
                match p {
                    Ok(p) => {
                        dynamic = p;
                        &dynamic
                    }
                    Err(e) => {
                        cx.log(-1, format!("ERROR: subst: {e}").as_bytes());
                        return Ok(Ret::FALSE);
                    }
                }
            }
        };
        let uri = cx.ruri().to_vec();
        let done = match self.on {
            SubstOn::Uri => match s.run(&uri, &uri) {
                Some(n) => {
                    cx.set_ruri(&n);
                    true
                }
                None => false,
            },
            SubstOn::User => {
                let user = sipox_sip_msg::uri(&uri)
                    .ok()
                    .and_then(|u| u.user().map(<[u8]>::to_vec));
                match user.and_then(|u| s.run(&u, &uri)) {
                    Some(n) => {
                        let mut out = Vec::new();
                        set_uri_part(&uri, UriPart::User, Some(&n), &mut out);
                        cx.set_ruri(&out);
                        true
                    }
                    None => false,
                }
            }
            SubstOn::Msg | SubstOn::Body => {
                let area = if self.on == SubstOn::Msg {
                    Area::Hdrs
                } else {
                    Area::Body
                };
                let Some(t) = text_of(cx, area) else {
                    return Ok(Ret::FALSE);
                };
                let reps = s.replacements(&t.bytes, &uri);
                !reps.is_empty() && apply(cx, &t, &reps) > 0
            }
        };
        Ok(Ret::of(done))
    }
}
