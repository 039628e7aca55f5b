//! More of the `sipmsgops` module (the first functions live in `modules.rs`):
//! `append_to_reply`, `ruri_has_param`, `ruri_add_param`, `ruri_del_param`,
//! `is_uri_user_e164`, `sipmsg_validate`, `list_hdr_has_option`, `list_hdr_add_option`,
//! `list_hdr_remove_option`, `remove_hf_re`, `remove_hf_glob`, `append_urihf`, `insert_hf`,
//! `append_time`, `is_privacy`, `ruri_tel2sip`, `get_glob_headers_values`,
//! `change_reply_status`. The body-part functions live in `bodyparts.rs`.

use bytes::Bytes;

use crate::cx::{MsgCx, Ret, Stop};
use crate::program::{Fmt, HdrName, Pv, PvRef};
use crate::registry::{Args, Call, FixupError, FnDef, ModuleDef, Registry, Sig, route_mask};

type R = Result<Ret, Stop>;

pub(crate) fn register(r: &mut Registry) {
    use route_mask::{ALL, BRANCH, ERROR, FAILURE, LOCAL, ONREPLY, REQUEST};
    let f = |name: &'static str, params: &str, routes: u16, build| FnDef {
        sig: Sig::new("sipmsgops", name, params, routes),
        build: Some(build),
    };
    r.add_module(ModuleDef {
        name: "sipmsgops",
        params: vec![],
        fns: vec![
            f(
                "append_to_reply",
                "s",
                REQUEST | BRANCH | FAILURE | ERROR,
                |a| Ok(Box::new(AppendToReply(fmt0(a)?))),
            ),
            f(
                "ruri_has_param",
                "s,s?",
                REQUEST | BRANCH | FAILURE,
                |mut a| {
                    let n = a
                        .fmt(0)
                        .ok_or_else(|| FixupError::arg(0, "expected a name"))?;
                    Ok(Box::new(RuriHasParam(n, a.fmt(1))))
                },
            ),
            f("ruri_add_param", "s", REQUEST | BRANCH | FAILURE, |a| {
                Ok(Box::new(RuriAddParam(fmt0(a)?)))
            }),
            f("ruri_del_param", "s", REQUEST | BRANCH | FAILURE, |a| {
                Ok(Box::new(RuriDelParam(fmt0(a)?)))
            }),
            f("is_uri_user_e164", "s", ALL, |a| {
                Ok(Box::new(IsE164(fmt0(a)?)))
            }),
            f(
                "sipmsg_validate",
                "s?,v?",
                REQUEST | FAILURE | BRANCH | ONREPLY,
                |mut a| Ok(Box::new(Validate(a.fmt(0), a.var(1)))),
            ),
            f("list_hdr_has_option", "s,s", ALL, |mut a| {
                Ok(Box::new(ListHdr(
                    ListOp::Has,
                    a.fmt(0).unwrap_or_default(),
                    a.fmt(1).unwrap_or_default(),
                )))
            }),
            f("list_hdr_add_option", "s,s", ALL, |mut a| {
                Ok(Box::new(ListHdr(
                    ListOp::Add,
                    a.fmt(0).unwrap_or_default(),
                    a.fmt(1).unwrap_or_default(),
                )))
            }),
            f("list_hdr_remove_option", "s,s", ALL, |mut a| {
                Ok(Box::new(ListHdr(
                    ListOp::Remove,
                    a.fmt(0).unwrap_or_default(),
                    a.fmt(1).unwrap_or_default(),
                )))
            }),
            f("remove_hf_re", "r", ALL, |mut a| {
                let re = a
                    .regex(0)
                    .ok_or_else(|| FixupError::arg(0, "expected a regular expression"))?;
                Ok(Box::new(RemoveHfBy(NameMatch::Re(re))))
            }),
            f("remove_hf_glob", "s", ALL, |mut a| {
                Ok(Box::new(RemoveHfBy(NameMatch::Glob(
                    a.fmt(0).unwrap_or_default(),
                ))))
            }),
            f(
                "append_urihf",
                "s,s",
                REQUEST | FAILURE | BRANCH,
                |mut a| {
                    Ok(Box::new(AppendUriHf(
                        a.fmt(0).unwrap_or_default(),
                        a.fmt(1).unwrap_or_default(),
                    )))
                },
            ),
            f(
                "insert_hf",
                "s,s?",
                REQUEST | ONREPLY | FAILURE | BRANCH | LOCAL,
                |mut a| {
                    let t = a
                        .fmt(0)
                        .ok_or_else(|| FixupError::arg(0, "expected a header line"))?;
                    Ok(Box::new(InsertHf(t, a.fmt(1))))
                },
            ),
            f(
                "append_time",
                "",
                REQUEST | FAILURE | BRANCH | LOCAL,
                |_| Ok(Box::new(AppendTime)),
            ),
            f("is_privacy", "s", ALL, build_is_privacy),
            f(
                "ruri_tel2sip",
                "",
                REQUEST | FAILURE | BRANCH | LOCAL,
                |_| Ok(Box::new(RuriTel2Sip)),
            ),
            f("get_glob_headers_values", "s,v,v", ALL, |mut a| {
                let pat = a
                    .fmt(0)
                    .ok_or_else(|| FixupError::arg(0, "expected a glob pattern"))?;
                let names = avp_arg(a.var(1), 1)?;
                let vals = avp_arg(a.var(2), 2)?;
                Ok(Box::new(GlobHeaders(pat, names, vals)))
            }),
            f("change_reply_status", "i,s", ONREPLY, |mut a| {
                let code = a
                    .int(0)
                    .ok_or_else(|| FixupError::arg(0, "expected a status code"))?;
                let reason = a
                    .fmt(1)
                    .ok_or_else(|| FixupError::arg(1, "expected a reason phrase"))?;
                Ok(Box::new(ChangeReplyStatus(code, reason)))
            }),
        ],
    });
}

fn fmt0(mut a: Args<'_>) -> Result<Fmt, FixupError> {
    a.fmt(0)
        .ok_or_else(|| FixupError::arg(0, "expected a string"))
}

fn eval(cx: &mut MsgCx, f: &Fmt) -> Vec<u8> {
    let mut v = Vec::new();
    cx.eval_fmt(f, &mut v);
    v
}

#[derive(Debug)]
struct AppendToReply(Fmt);

impl Call for AppendToReply {
    /// 1: stored for the next reply generated for this request; -1: empty text.
    fn call(&self, cx: &mut MsgCx) -> R {
        let t = eval(cx, &self.0);
        if t.is_empty() {
            return Ok(Ret::FALSE);
        }
        cx.add_reply_headers(&t);
        Ok(Ret::TRUE)
    }
}

/// `(name, value)` of each URI parameter of `uri`.
fn uri_params(uri: &[u8]) -> Vec<(Vec<u8>, Option<Vec<u8>>, sipox_sip_msg::Span)> {
    let Ok(u) = sipox_sip_msg::uri(uri) else {
        return Vec::new();
    };
    u.params()
        .iter()
        .map(|p| {
            let name = p.name.of(uri).to_vec();
            let val = p.value.map(|v| v.of(uri).to_vec());
            let end = p.value.map_or(p.name.end, |v| v.end);
            // The span includes the `;` before the name.
            let span = sipox_sip_msg::Span {
                start: p.name.start.saturating_sub(1),
                end,
            };
            (name, val, span)
        })
        .collect()
}

#[derive(Debug)]
struct RuriHasParam(Fmt, Option<Fmt>);

impl Call for RuriHasParam {
    /// 1: the R-URI has the parameter (with that value, when one is given); -1 otherwise.
    fn call(&self, cx: &mut MsgCx) -> R {
        let name = eval(cx, &self.0);
        let want = self.1.as_ref().map(|f| eval(cx, f));
        let hit = uri_params(cx.ruri()).iter().any(|(n, v, _)| {
            n.eq_ignore_ascii_case(&name)
                && match (&want, v) {
                    (None, _) => true,
                    (Some(w), Some(v)) => w == v,
                    (Some(_), None) => false,
                }
        });
        Ok(Ret::of(hit))
    }
}

/// Where URI parameters end (before `?headers`).
fn params_end(uri: &[u8]) -> usize {
    match sipox_sip_msg::uri(uri) {
        Ok(u) if !u.params().is_empty() => u.v.params.span.end as usize,
        Ok(u) => u.v.port_span.map_or(u.v.host.end, |s| s.end) as usize,
        Err(_) => uri.len(),
    }
}

#[derive(Debug)]
struct RuriAddParam(Fmt);

impl Call for RuriAddParam {
    /// 1: `;param` added to the R-URI; -1: empty parameter or a bad R-URI.
    fn call(&self, cx: &mut MsgCx) -> R {
        let p = eval(cx, &self.0);
        let p = p.strip_prefix(b";").unwrap_or(&p);
        let uri = cx.ruri().to_vec();
        if p.is_empty() || sipox_sip_msg::uri(&uri).is_err() {
            return Ok(Ret::FALSE);
        }
        let at = params_end(&uri).min(uri.len());
        let mut n = Vec::with_capacity(uri.len() + p.len() + 1);
        n.extend_from_slice(&uri[..at]);
        n.push(b';');
        n.extend_from_slice(p);
        n.extend_from_slice(&uri[at..]);
        cx.set_ruri(&n);
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct RuriDelParam(Fmt);

impl Call for RuriDelParam {
    /// 1: every parameter of that name removed from the R-URI; -1: none found.
    fn call(&self, cx: &mut MsgCx) -> R {
        let name = eval(cx, &self.0);
        let uri = cx.ruri().to_vec();
        let gone: Vec<_> = uri_params(&uri)
            .into_iter()
            .filter(|(n, _, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, _, s)| s)
            .collect();
        if gone.is_empty() {
            return Ok(Ret::FALSE);
        }
        let mut n = Vec::with_capacity(uri.len());
        let mut pos = 0;
        for s in gone {
            n.extend_from_slice(uri.get(pos..s.start as usize).unwrap_or_default());
            pos = s.end as usize;
        }
        n.extend_from_slice(uri.get(pos..).unwrap_or_default());
        cx.set_ruri(&n);
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct IsE164(Fmt);

/// `+` followed by 2 to 15 digits.
fn is_e164(u: &[u8]) -> bool {
    u.strip_prefix(b"+")
        .is_some_and(|d| (2..=15).contains(&d.len()) && d.iter().all(u8::is_ascii_digit))
}

impl Call for IsE164 {
    /// 1 when the URI's user part is an E.164 number; -1 otherwise.
    fn call(&self, cx: &mut MsgCx) -> R {
        let s = eval(cx, &self.0);
        let hit = sipox_sip_msg::uri(&s)
            .ok()
            .and_then(|u| u.user().map(is_e164))
            .unwrap_or(false);
        Ok(Ret::of(hit))
    }
}

/// `sipmsg_validate([flags[, result_pvar]])`: RFC 3261 structure checks with OpenSIPS's return
/// codes (1 valid; -1 no message, -2 header parse error, -3 no Call-ID, -5 bad Content-Length,
/// -6 SDP error, -7 no CSeq, -8 no From, -9 no To, -10 no Via, -11 bad R-URI, -12 bad R-URI host,
/// -13 no Max-Forwards, -14 no Contact, -15 Path outside REGISTER, -16..-20 missing headers in
/// 405/423/407/420/401, -21 body without Content-Type, -22/-23 To, -24/-25 From, -26 Contact).
#[derive(Debug)]
struct Validate(Option<Fmt>, Option<Box<PvRef>>);

fn host_ok(h: &[u8]) -> bool {
    !h.is_empty()
        && h.iter().all(|&c| {
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'[' | b']' | b':' | b'_')
        })
}

fn validate(m: &sipox_sip_msg::SipMsg, flags: &[u8]) -> (i32, &'static str) {
    use sipox_sip_msg::HeaderKind as K;
    let has = |f: u8| flags.contains(&f);
    let present = |k: K| m.header(k).is_some();
    if !present(K::Via) {
        return (-10, "No Via header");
    }
    if !present(K::CallId) {
        return (-3, "No Call-ID header");
    }
    if !present(K::CSeq) || m.cseq().is_err() {
        return (-7, "No or bad CSeq header");
    }
    if !present(K::From) {
        return (-8, "No From header");
    }
    if !present(K::To) {
        return (-9, "No To header");
    }
    if m.framing() == sipox_sip_msg::Framing::Stream && m.content_length().is_none() {
        return (-4, "No Content-Length header");
    }
    if m.content_length()
        .is_some_and(|cl| cl as usize != m.body().len())
    {
        return (-5, "Invalid Content-Length");
    }
    if !m.body().is_empty() && !present(K::ContentType) {
        return (-21, "No Content-Type header");
    }
    if has(b'h') && (m.vias().any(|v| v.is_err()) || m.cseq().is_err()) {
        return (-2, "Header parsing error");
    }
    if let Some(method) = m.method() {
        let Ok(ruri) = m.ruri() else {
            return (-11, "Request URI parse error");
        };
        if has(b'r')
            && matches!(
                ruri.v.scheme,
                sipox_sip_msg::Scheme::Sip | sipox_sip_msg::Scheme::Sips
            )
            && !host_ok(ruri.host())
        {
            return (-12, "Bad hostname in R-URI");
        }
        if !has(b'm') && !present(K::MaxForwards) {
            return (-13, "No Max-Forwards header");
        }
        if method == sipox_sip_msg::Method::Invite && !present(K::Contact) {
            return (-14, "No Contact header");
        }
        if method != sipox_sip_msg::Method::Register && present(K::Path) {
            return (-15, "Path header for a non-REGISTER request");
        }
    } else {
        let need = match m.status() {
            Some(405) => Some((K::Allow, -16, "No Allow header in 405 reply")),
            Some(423) => Some((K::MinExpires, -17, "No Min-Expires header in 423 reply")),
            Some(407) => Some((
                K::ProxyAuthenticate,
                -18,
                "No Proxy-Authenticate header in 407 reply",
            )),
            Some(420) => Some((K::Unsupported, -19, "No Unsupported header in 420 reply")),
            Some(401) => Some((
                K::WwwAuthenticate,
                -20,
                "No WWW-Authenticate header in 401 reply",
            )),
            _ => None,
        };
        if let Some((k, code, why)) = need
            && !present(k)
        {
            return (code, why);
        }
    }
    if has(b't') {
        match m.to() {
            Err(_) => return (-22, "To header parse error"),
            Ok(t)
                if !host_ok(t.uri().host()) && t.uri().v.scheme != sipox_sip_msg::Scheme::Other =>
            {
                return (-23, "Bad hostname in To header");
            }
            Ok(_) => {}
        }
    }
    if has(b'f') {
        match m.from() {
            Err(_) => return (-24, "From header parse error"),
            Ok(f)
                if !host_ok(f.uri().host()) && f.uri().v.scheme != sipox_sip_msg::Scheme::Other =>
            {
                return (-25, "Bad hostname in From header");
            }
            Ok(_) => {}
        }
    }
    if has(b'c') && m.contacts().any(|c| c.is_err()) {
        return (-26, "Contact header parse error");
    }
    if has(b's') && !m.body().is_empty() {
        let is_sdp = m
            .value_of(K::ContentType)
            .is_some_and(|ct| ct.len() >= 15 && ct[..15].eq_ignore_ascii_case(b"application/sdp"));
        if is_sdp && sipox_sdp::Sdp::parse(m.body()).is_err() {
            return (-6, "SDP body parsing error");
        }
    }
    (1, "")
}

impl Call for Validate {
    fn call(&self, cx: &mut MsgCx) -> R {
        let flags = self.0.as_ref().map(|f| eval(cx, f)).unwrap_or_default();
        let (code, why) = match cx.msg() {
            Some(m) => validate(m, &flags),
            None => (-1, "No SIP message"),
        };
        if code < 0
            && let Some(v) = &self.1
        {
            let mut b = why.as_bytes().to_vec();
            cx.set_var(v, crate::value::Kind::Str, &mut b);
        }
        Ok(Ret(code))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListOp {
    Has,
    Add,
    Remove,
}

/// `list_hdr_has_option` / `list_hdr_add_option` / `list_hdr_remove_option` over CSV-list
/// headers (Supported, Require, ...): 1 on success, -1 otherwise.
#[derive(Debug)]
struct ListHdr(ListOp, Fmt, Fmt);

/// The values list operations gave each header in this message so far (keyed by the header's
/// offset), so several add/remove calls on one header build on each other.
#[derive(Debug, Default)]
struct ListEdits(Vec<(u32, Option<Vec<u8>>)>);

impl crate::cx::MsgState for ListEdits {
    fn reset(&mut self) {
        self.0.clear();
    }
}

fn list_items(v: &[u8]) -> Vec<Vec<u8>> {
    v.split(|&c| c == b',')
        .map(|t| t.trim_ascii().to_vec())
        .filter(|t| !t.is_empty())
        .collect()
}

impl Call for ListHdr {
    fn call(&self, cx: &mut MsgCx) -> R {
        let name = eval(cx, &self.1);
        let opt = eval(cx, &self.2);
        let Some(m) = cx.msg() else {
            return Ok(Ret::FALSE);
        };
        let hs: Vec<sipox_sip_msg::Header> = m.headers_named(&name).copied().collect();
        if hs.is_empty() || opt.is_empty() {
            return Ok(Ret::FALSE);
        }
        let originals: Vec<Vec<u8>> = hs.iter().map(|h| m.value(h).to_vec()).collect();
        let Some(st) = cx.state::<ListEdits>() else {
            return Ok(Ret::FALSE);
        };
        // current value of each header: the last edit's, else the received one (None: removed)
        let current: Vec<Option<Vec<u8>>> = hs
            .iter()
            .zip(&originals)
            .map(|(h, o)| {
                st.0.iter()
                    .rev()
                    .find(|(at, _)| *at == h.name.start)
                    .map_or_else(|| Some(o.clone()), |(_, v)| v.clone())
            })
            .collect();
        let mut updates: Vec<(usize, Option<Vec<u8>>)> = Vec::new();
        let ok = match self.0 {
            ListOp::Has => current
                .iter()
                .flatten()
                .any(|v| list_items(v).iter().any(|t| t.eq_ignore_ascii_case(&opt))),
            ListOp::Add => match current.iter().position(Option::is_some) {
                Some(i) => {
                    let mut v = current[i].clone().unwrap_or_default();
                    if !v.is_empty() {
                        v.extend_from_slice(b", ");
                    }
                    v.extend_from_slice(&opt);
                    updates.push((i, Some(v)));
                    true
                }
                None => false,
            },
            ListOp::Remove => {
                for (i, v) in current.iter().enumerate() {
                    let Some(v) = v else { continue };
                    let its = list_items(v);
                    let Some(pos) = its.iter().rposition(|t| t.eq_ignore_ascii_case(&opt)) else {
                        continue;
                    };
                    let rest: Vec<&[u8]> = its
                        .iter()
                        .enumerate()
                        .filter(|(k, _)| *k != pos)
                        .map(|(_, t)| t.as_slice())
                        .collect();
                    updates.push((i, (!rest.is_empty()).then(|| rest.join(&b", "[..]))));
                }
                !updates.is_empty()
            }
        };
        for (i, v) in &updates {
            st.0.push((hs[*i].name.start, v.clone()));
        }
        if let Some(m) = cx.msg_mut() {
            for (i, v) in updates {
                match v {
                    Some(v) => m.replace_header_value(&hs[i], v),
                    None => m.remove_header(&hs[i]),
                }
            }
        }
        Ok(Ret::of(ok))
    }
}

#[derive(Debug)]
enum NameMatch {
    Re(crate::registry::RegexArg),
    Glob(Fmt),
}

/// `fnmatch`-style glob with `*`, `?` and `[...]` sets, case-insensitive (header names).
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
            continue;
        }
        if pi < p.len() && p[pi] == b'[' {
            if let Some(close) = p[pi + 1..].iter().position(|&c| c == b']') {
                let set = &p[pi + 1..pi + 1 + close];
                let (neg, set) = match set.first() {
                    Some(b'!' | b'^') => (true, &set[1..]),
                    _ => (false, set),
                };
                let c = s[si].to_ascii_lowercase();
                let mut hit = false;
                let mut k = 0;
                while k < set.len() {
                    if k + 2 < set.len() && set[k + 1] == b'-' {
                        hit |= (set[k].to_ascii_lowercase()..=set[k + 2].to_ascii_lowercase())
                            .contains(&c);
                        k += 3;
                    } else {
                        hit |= set[k].to_ascii_lowercase() == c;
                        k += 1;
                    }
                }
                if hit != neg {
                    pi += close + 2;
                    si += 1;
                    continue;
                }
            }
        } else if pi < p.len() && (p[pi] == b'?' || p[pi].eq_ignore_ascii_case(&s[si])) {
            pi += 1;
            si += 1;
            continue;
        }
        match star {
            Some(sp) => {
                pi = sp + 1;
                mark += 1;
                si = mark;
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// `remove_hf_re(regex)` / `remove_hf_glob(pattern)`: removes every header whose name matches;
/// returns how many were removed, or -1 when none.
#[derive(Debug)]
struct RemoveHfBy(NameMatch);

impl Call for RemoveHfBy {
    fn call(&self, cx: &mut MsgCx) -> R {
        let pat = match &self.0 {
            NameMatch::Glob(f) => Some(eval(cx, f)),
            NameMatch::Re(_) => None,
        };
        let mut re_buf = Vec::new();
        let dyn_re = match &self.0 {
            NameMatch::Re(crate::registry::RegexArg::Dyn(f)) => {
                cx.eval_fmt(f, &mut re_buf);
                std::str::from_utf8(&re_buf).ok().and_then(|p| {
                    regex::bytes::RegexBuilder::new(p)
                        .case_insensitive(true)
                        .build()
                        .ok()
                })
            }
            _ => None,
        };
        let Some(m) = cx.msg_mut() else {
            return Ok(Ret::FALSE);
        };
        let hits: Vec<sipox_sip_msg::Header> = m
            .headers()
            .iter()
            .filter(|h| {
                let n = m.name(h);
                match (&self.0, &pat) {
                    (NameMatch::Glob(_), Some(p)) => glob(p, n),
                    (NameMatch::Re(crate::registry::RegexArg::Const(re)), _) => re.is_match(n),
                    (NameMatch::Re(_), _) => dyn_re.as_ref().is_some_and(|re| re.is_match(n)),
                    _ => false,
                }
            })
            .copied()
            .collect();
        for h in &hits {
            m.remove_header(h);
        }
        Ok(if hits.is_empty() {
            Ret::FALSE
        } else {
            Ret(i32::try_from(hits.len()).unwrap_or(i32::MAX))
        })
    }
}

/// `append_urihf(prefix, suffix)`: appends a header made of `prefix`, the current Request-URI
/// and `suffix` (which should end the line with CRLF). 1, or -1 for a reply.
#[derive(Debug)]
struct AppendUriHf(Fmt, Fmt);

impl Call for AppendUriHf {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut line = eval(cx, &self.0);
        line.extend_from_slice(cx.ruri());
        let sfx = eval(cx, &self.1);
        line.extend_from_slice(&sfx);
        let Some(m) = cx.msg_mut().filter(|m| m.is_request()) else {
            return Ok(Ret::FALSE);
        };
        m.append_raw_headers(line);
        Ok(Ret::TRUE)
    }
}

/// The first header named `name` (compact and long forms of known headers match).
fn first_named(m: &sipox_sip_msg::SipMsg, name: &[u8]) -> Option<sipox_sip_msg::Header> {
    let h = HdrName {
        kind: sipox_sip_msg::HeaderKind::classify(name),
        name: name.into(),
    };
    crate::interp::headers_named(m, &h).next().copied()
}

/// `insert_hf(txt[, hdr])`: inserts `txt` before the first `hdr` header; before the first
/// header when `hdr` is not given or not present. 1, or -1 without a message.
#[derive(Debug)]
struct InsertHf(Fmt, Option<Fmt>);

impl Call for InsertHf {
    fn call(&self, cx: &mut MsgCx) -> R {
        let t = eval(cx, &self.0);
        let anchor = self.1.as_ref().map(|f| eval(cx, f));
        let Some(m) = cx.msg_mut() else {
            return Ok(Ret::FALSE);
        };
        let at = anchor
            .and_then(|a| first_named(m, &a))
            .or_else(|| m.headers().first().copied())
            .map_or_else(|| m.headers_end(), |h| h.name.start);
        m.insert_at(at, Bytes::from(t));
        Ok(Ret::TRUE)
    }
}

/// `append_time()`: a `Date:` header (RFC 1123 form, GMT) for the replies generated for this
/// request. Always 1.
#[derive(Debug)]
struct AppendTime;

impl Call for AppendTime {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut b = cx.take_buf();
        crate::time::strftime(
            cx.now_us.div_euclid(1_000_000),
            "Date: %a, %d %b %Y %H:%M:%S GMT\r\n",
            &mut b,
        );
        cx.add_reply_headers(&b);
        cx.give_buf(b);
        Ok(Ret::TRUE)
    }
}

/// Privacy values known to OpenSIPS's parser (RFC 3323, RFC 3325, RFC 4244).
const PRIV_VALUES: [&[u8]; 7] = [
    b"header",
    b"session",
    b"user",
    b"none",
    b"critical",
    b"id",
    b"history",
];

fn build_is_privacy(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    let v = a
        .static_str(0)
        .ok_or_else(|| FixupError::arg(0, "expected a privacy value"))?;
    if !PRIV_VALUES.iter().any(|p| p.eq_ignore_ascii_case(&v)) {
        return Err(FixupError::arg(0, "invalid privacy value"));
    }
    Ok(Box::new(IsPrivacy(v)))
}

/// `is_privacy(type)`: 1 when a Privacy header lists `type` among its `;`-separated values,
/// -1 otherwise.
#[derive(Debug)]
struct IsPrivacy(Box<[u8]>);

impl Call for IsPrivacy {
    fn call(&self, cx: &mut MsgCx) -> R {
        let Some(m) = cx.msg() else {
            return Ok(Ret::FALSE);
        };
        let hit = m.headers_named(b"Privacy").any(|h| {
            m.value(h)
                .split(|&c| c == b';' || c == b',')
                .any(|v| v.trim_ascii().eq_ignore_ascii_case(&self.0))
        });
        Ok(Ret::of(hit))
    }
}

/// `ruri_tel2sip()`: a `tel:` Request-URI becomes `sip:<number and params>@<From host>;user=phone`.
/// 1 when converted or when the R-URI is not a tel URI; -1 when the From URI cannot be parsed.
#[derive(Debug)]
struct RuriTel2Sip;

impl Call for RuriTel2Sip {
    fn call(&self, cx: &mut MsgCx) -> R {
        let ruri = cx.ruri();
        if ruri.len() < 4 || !ruri[..4].eq_ignore_ascii_case(b"tel:") {
            return Ok(Ret::TRUE);
        }
        let mut n = cx.take_buf();
        n.extend_from_slice(b"sip:");
        n.extend_from_slice(&cx.ruri()[4..]);
        let host = cx
            .msg()
            .and_then(|m| m.from().ok().map(|f| f.uri().host().to_vec()));
        let Some(host) = host.filter(|h| !h.is_empty()) else {
            cx.give_buf(n);
            cx.log(-1, b"ERROR: ruri_tel2sip: cannot parse the From URI");
            return Ok(Ret::FALSE);
        };
        n.push(b'@');
        n.extend_from_slice(&host);
        n.extend_from_slice(b";user=phone");
        cx.set_ruri(&n);
        cx.give_buf(n);
        Ok(Ret::TRUE)
    }
}

fn avp_arg(v: Option<Box<PvRef>>, i: usize) -> Result<Box<PvRef>, FixupError> {
    match v {
        Some(v) if matches!(v.pv, Pv::Avp(_) | Pv::AvpDyn(_)) => Ok(v),
        _ => Err(FixupError::arg(i, "an AVP is needed")),
    }
}

/// `get_glob_headers_values(glob, $avp(names), $avp(values))`: adds the name and the value of
/// every header whose name matches the glob to the two AVPs. 1 when at least one matched, -1
/// otherwise.
#[derive(Debug)]
struct GlobHeaders(Fmt, Box<PvRef>, Box<PvRef>);

impl Call for GlobHeaders {
    fn call(&self, cx: &mut MsgCx) -> R {
        let pat = eval(cx, &self.0);
        let Some(m) = cx.msg() else {
            return Ok(Ret::FALSE);
        };
        let hits: Vec<(Vec<u8>, Vec<u8>)> = m
            .headers()
            .iter()
            .filter(|h| glob(&pat, m.name(h)))
            .map(|h| (m.name(h).to_vec(), m.value(h).to_vec()))
            .collect();
        for (mut n, mut v) in hits.iter().cloned() {
            cx.set_var(&self.1, crate::value::Kind::Str, &mut n);
            cx.set_var(&self.2, crate::value::Kind::Str, &mut v);
        }
        Ok(Ret::of(!hits.is_empty()))
    }
}

/// `change_reply_status(code, reason)` in an onreply route: rewrites the status line. -1 for a
/// code outside 100..699 or one that changes the class of a provisional or 2xx reply (or turns
/// a failure into one).
#[derive(Debug)]
struct ChangeReplyStatus(crate::registry::IntArg, Fmt);

impl Call for ChangeReplyStatus {
    fn call(&self, cx: &mut MsgCx) -> R {
        let code = cx.eval_int(&self.0).unwrap_or(0);
        let reason = eval(cx, &self.1);
        let Some(m) = cx.msg_mut() else {
            return Ok(Ret::FALSE);
        };
        let (Some(old), sipox_sip_msg::StartLine::Response { reason: rspan, .. }) =
            (m.status(), *m.start_line())
        else {
            return Ok(Ret::FALSE);
        };
        let Ok(code) = u16::try_from(code) else {
            return Ok(Ret::FALSE);
        };
        if !(100..=699).contains(&code) {
            return Ok(Ret::FALSE);
        }
        if (code < 300 || old < 300) && code / 100 != old / 100 {
            return Ok(Ret::FALSE);
        }
        let fl = m.first_line_span();
        let Some(sp) = m.first_line().iter().position(|&c| c == b' ') else {
            return Ok(Ret::FALSE);
        };
        let at = fl.lo() + sp + 1;
        m.replace(
            sipox_sip_msg::Span::new(at, at + 3),
            Bytes::from(code.to_string().into_bytes()),
        );
        m.replace(rspan, Bytes::from(reason));
        Ok(Ret::TRUE)
    }
}

#[cfg(test)]
mod glob_tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob(b"X-*", b"x-foo"));
        assert!(glob(b"P-*-Info", b"P-Access-Network-Info"));
        assert!(glob(b"X-[ab]?", b"X-b1"));
        assert!(!glob(b"X-[!ab]?", b"X-b1"));
        assert!(!glob(b"X-*", b"Via"));
        assert!(glob(b"*", b""));
    }
}
