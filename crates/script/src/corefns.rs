//! Core script functions that need no network (OpenSIPS `core_cmds.c`), plus declarations of
//! the core functions that send or touch sockets (a runtime error until the runtime exists).

use std::io::Write as _;

use crate::cx::{MsgCx, Ret, Stop};
use crate::interp::{UriPart, set_uri_part, write_q};
use crate::program::{Fmt, PvRef};
use crate::registry::{Args, Call, FixupError, FnDef, IntArg, Sig, route_mask};
use crate::shared::RaisedEvent;
use crate::value::{Kind, Val, parse_int};

type R = Result<Ret, Stop>;

fn def(name: &'static str, params: &str, build: Option<crate::registry::BuildFn>) -> FnDef {
    FnDef {
        sig: Sig::new("core", name, params, route_mask::ALL),
        build,
    }
}

/// The core function table.
pub(crate) fn table() -> Vec<FnDef> {
    vec![
        def("setflag", "S", Some(|a| flag(a, FlagOp::Set, false))),
        def("resetflag", "S", Some(|a| flag(a, FlagOp::Reset, false))),
        def("isflagset", "S", Some(|a| flag(a, FlagOp::Test, false))),
        def("setbflag", "S,i?", Some(|a| flag(a, FlagOp::Set, true))),
        def("resetbflag", "S,i?", Some(|a| flag(a, FlagOp::Reset, true))),
        def("isbflagset", "S,i?", Some(|a| flag(a, FlagOp::Test, true))),
        def("seturi", "s", Some(|a| uri_set(a, UriEdit::Whole))),
        def("rewriteuri", "s", Some(|a| uri_set(a, UriEdit::Whole))),
        def("sethost", "s", Some(|a| uri_set(a, UriEdit::Host))),
        def("rewritehost", "s", Some(|a| uri_set(a, UriEdit::Host))),
        def("sethostport", "s", Some(|a| uri_set(a, UriEdit::HostPort))),
        def(
            "rewritehostport",
            "s",
            Some(|a| uri_set(a, UriEdit::HostPort)),
        ),
        def("setuser", "s", Some(|a| uri_set(a, UriEdit::User))),
        def("rewriteuser", "s", Some(|a| uri_set(a, UriEdit::User))),
        def("setuserpass", "s", Some(|a| uri_set(a, UriEdit::UserPass))),
        def("setport", "s", Some(|a| uri_set(a, UriEdit::Port))),
        def("rewriteport", "s", Some(|a| uri_set(a, UriEdit::Port))),
        def("prefix", "s", Some(|a| uri_set(a, UriEdit::Prefix))),
        def("strip", "i", Some(|a| strip(a, false))),
        def("strip_tail", "i", Some(|a| strip(a, true))),
        def("revert_uri", "", Some(|_| Ok(Box::new(RevertUri)))),
        def(
            "setdsturi",
            "s",
            Some(|mut a| Ok(Box::new(SetDstUri(a.fmt(0).unwrap_or_default())))),
        ),
        def("resetdsturi", "", Some(|_| Ok(Box::new(ResetDstUri)))),
        def("isdsturiset", "", Some(|_| Ok(Box::new(IsDstUriSet)))),
        def(
            "append_branch",
            "s?,s?",
            Some(|mut a| Ok(Box::new(AppendBranch(a.fmt(0), a.fmt(1))))),
        ),
        def(
            "remove_branch",
            "i",
            Some(|mut a| Ok(Box::new(RemoveBranch(a.int(0).unwrap_or(IntArg::Const(0)))))),
        ),
        def("move_branch", "i?,i?,i?", None),
        def(
            "swap_branches",
            "i?,i?",
            Some(|mut a| Ok(Box::new(SwapBranches(a.int(0), a.int(1))))),
        ),
        def(
            "serialize_branches",
            "i,i?",
            Some(|mut a| {
                Ok(Box::new(Serialize(
                    a.int(0).unwrap_or(IntArg::Const(0)),
                    a.int(1),
                )))
            }),
        ),
        def("next_branches", "", Some(|_| Ok(Box::new(NextBranches)))),
        def(
            "pv_printf",
            "v,s",
            Some(|mut a| {
                let v = a
                    .var(0)
                    .ok_or_else(|| FixupError::arg(0, "expected a variable"))?;
                Ok(Box::new(PvPrintf(v, a.fmt(1).unwrap_or_default())))
            }),
        ),
        def("is_myself", "s,i?", Some(is_myself)),
        def(
            "cache_store",
            "S,s,s,i?",
            Some(|mut a| {
                cache_sys(&mut a)?;
                Ok(Box::new(CacheStore {
                    key: a.fmt(1).unwrap_or_default(),
                    val: a.fmt(2).unwrap_or_default(),
                    exp: a.int(3),
                }))
            }),
        ),
        def(
            "cache_fetch",
            "S,s,v",
            Some(|mut a| {
                cache_sys(&mut a)?;
                let key = a.fmt(1).unwrap_or_default();
                let out = a
                    .var(2)
                    .ok_or_else(|| FixupError::arg(2, "expected a variable"))?;
                Ok(Box::new(CacheFetch { key, out }))
            }),
        ),
        def(
            "cache_counter_fetch",
            "S,s,v",
            Some(|mut a| {
                cache_sys(&mut a)?;
                let key = a.fmt(1).unwrap_or_default();
                let out = a
                    .var(2)
                    .ok_or_else(|| FixupError::arg(2, "expected a variable"))?;
                Ok(Box::new(CacheFetch { key, out }))
            }),
        ),
        def(
            "cache_remove",
            "S,s",
            Some(|mut a| {
                cache_sys(&mut a)?;
                Ok(Box::new(CacheRemove {
                    key: a.fmt(1).unwrap_or_default(),
                }))
            }),
        ),
        def("cache_add", "S,s,i,i,v?", Some(|a| cache_add(a, 1))),
        def("cache_sub", "S,s,i,i,v?", Some(|a| cache_add(a, -1))),
        def("cache_raw_query", "S,s,v?", None),
        def(
            "raise_event",
            "s,v?,v?",
            Some(|mut a| {
                Ok(Box::new(RaiseEvent {
                    name: a.fmt(0).unwrap_or_default(),
                    names: a.var(1),
                    vals: a.var(2),
                }))
            }),
        ),
        def("subscribe_event", "s,s,i?", None),
        def(
            "get_timestamp",
            "v,v",
            Some(|mut a| {
                let s = a
                    .var(0)
                    .ok_or_else(|| FixupError::arg(0, "expected a variable"))?;
                let u = a
                    .var(1)
                    .ok_or_else(|| FixupError::arg(1, "expected a variable"))?;
                Ok(Box::new(GetTimestamp(s, u)))
            }),
        ),
        def(
            "construct_uri",
            "s,s,s,s,s,v",
            Some(|mut a| {
                let f: Vec<Fmt> = (0..5).map(|i| a.fmt(i).unwrap_or_default()).collect();
                let out = a
                    .var(5)
                    .ok_or_else(|| FixupError::arg(5, "expected a variable"))?;
                Ok(Box::new(ConstructUri(f.into(), out)))
            }),
        ),
        def(
            "script_trace",
            "i?,s?,s?",
            Some(|mut a| Ok(Box::new(ScriptTrace(a.int(0), a.fmt(1), a.fmt(2))))),
        ),
        def("avp_print", "", Some(|_| Ok(Box::new(AvpPrint)))),
        def("sr_check_status", "s,s?", None),
        // Core functions that send or touch sockets: declared until the network runtime exists.
        def("forward", "s?", None),
        def("send", "s,s?", None),
        def("force_rport", "", None),
        def("add_local_rport", "", None),
        def("force_tcp_alias", "i?", None),
        def("set_via_handling", "s", None),
        def("set_advertised_address", "s", None),
        def("set_advertised_port", "s", None),
        def("force_send_socket", "s", None),
        def("use_blacklist", "s", None),
        def("unuse_blacklist", "s", None),
        def("check_blacklist_rule", "s,s,s?,s?,s?", None),
        def("add_blacklist_rule", "s,s,s?,s?,s?,i?", None),
        def("del_blacklist_rule", "s,s,s?,s?,s?", None),
    ]
}

// ----- flags -----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlagOp {
    Set,
    Reset,
    Test,
}

#[derive(Debug)]
struct FlagCall {
    op: FlagOp,
    bit: u32,
    branch: Option<IntArg>,
    bflag: bool,
}

fn flag(mut a: Args<'_>, op: FlagOp, bflag: bool) -> Result<Box<dyn Call>, FixupError> {
    let name = a
        .static_str(0)
        .ok_or_else(|| FixupError::arg(0, "expected a flag name"))?;
    let name = String::from_utf8_lossy(&name).into_owned();
    let bit = if bflag {
        a.cx.bflag_bit(&name)
    } else {
        a.cx.flag_bit(&name)
    }
    .map_err(|m| FixupError::arg(0, m))?;
    Ok(Box::new(FlagCall {
        op,
        bit,
        branch: if bflag { a.int(1) } else { None },
        bflag,
    }))
}

impl Call for FlagCall {
    fn call(&self, cx: &mut MsgCx) -> R {
        let idx = match &self.branch {
            Some(b) => cx.eval_int(b).unwrap_or(0),
            None => 0,
        };
        let f = if !self.bflag {
            &mut cx.flags
        } else if idx <= 0 {
            &mut cx.bflags
        } else {
            match usize::try_from(idx - 1).ok().filter(|&i| i < cx.nbranches) {
                Some(i) => &mut cx.branches[i].flags,
                None => return Ok(Ret::FALSE),
            }
        };
        let m = 1u64 << self.bit;
        Ok(match self.op {
            FlagOp::Set => {
                *f |= m;
                Ret::TRUE
            }
            FlagOp::Reset => {
                *f &= !m;
                Ret::TRUE
            }
            FlagOp::Test => Ret::of(*f & m != 0),
        })
    }
}

// ----- R-URI edits -----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UriEdit {
    Whole,
    Host,
    HostPort,
    User,
    UserPass,
    Port,
    Prefix,
}

#[derive(Debug)]
struct UriSet(UriEdit, Fmt);

fn uri_set(mut a: Args<'_>, e: UriEdit) -> Result<Box<dyn Call>, FixupError> {
    Ok(Box::new(UriSet(e, a.fmt(0).unwrap_or_default())))
}

/// Replaces the new R-URI with `nb`'s content.
fn commit_ruri(cx: &mut MsgCx, mut nb: Vec<u8>) {
    std::mem::swap(&mut cx.ruri, &mut nb);
    cx.ruri_set = true;
    cx.give_buf(nb);
}

impl Call for UriSet {
    fn call(&self, cx: &mut MsgCx) -> R {
        if cx.msg.as_ref().is_none_or(|m| !m.is_request()) {
            return Ok(Ret::FALSE);
        }
        let mut v = cx.take_buf();
        cx.eval_fmt(&self.1, &mut v);
        let mut nb = cx.take_buf();
        let cur = cx.ruri();
        match self.0 {
            UriEdit::Whole => nb.extend_from_slice(&v),
            UriEdit::Host => set_uri_part(cur, UriPart::Host, Some(&v), &mut nb),
            UriEdit::User => set_uri_part(cur, UriPart::User, Some(&v), &mut nb),
            UriEdit::Port => set_uri_part(cur, UriPart::Port, Some(&v), &mut nb),
            UriEdit::HostPort => {
                let (h, p) = match v.iter().rposition(|&c| c == b':') {
                    Some(i) if !v.ends_with(b"]") => (&v[..i], Some(&v[i + 1..])),
                    _ => (&v[..], None),
                };
                let mut t = Vec::new();
                set_uri_part(cur, UriPart::Host, Some(h), &mut t);
                set_uri_part(&t, UriPart::Port, p, &mut nb);
            }
            UriEdit::UserPass => {
                // user:password replaces the userinfo
                let (u, _) = v.split_at(v.iter().position(|&c| c == b':').unwrap_or(v.len()));
                let mut t = Vec::new();
                set_uri_part(cur, UriPart::User, Some(u), &mut t);
                if let Some(i) = v.iter().position(|&c| c == b':')
                    && let Some(at) = t.iter().position(|&c| c == b'@')
                {
                    let mut w = t[..at].to_vec();
                    w.push(b':');
                    w.extend_from_slice(&v[i + 1..]);
                    w.extend_from_slice(&t[at..]);
                    t = w;
                }
                nb.extend_from_slice(&t);
            }
            UriEdit::Prefix => {
                let Ok(p) = sipox_sip_msg::uri(cur) else {
                    cx.give_buf(v);
                    cx.give_buf(nb);
                    return Ok(Ret::FALSE);
                };
                let mut user = v.clone();
                user.extend_from_slice(p.user().unwrap_or(b""));
                set_uri_part(cur, UriPart::User, Some(&user), &mut nb);
            }
        }
        cx.give_buf(v);
        commit_ruri(cx, nb);
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct Strip(IntArg, bool);

fn strip(mut a: Args<'_>, tail: bool) -> Result<Box<dyn Call>, FixupError> {
    Ok(Box::new(Strip(a.int(0).unwrap_or(IntArg::Const(0)), tail)))
}

impl Call for Strip {
    fn call(&self, cx: &mut MsgCx) -> R {
        let n = usize::try_from(cx.eval_int(&self.0).unwrap_or(0)).unwrap_or(0);
        if cx.msg.as_ref().is_none_or(|m| !m.is_request()) {
            return Ok(Ret::FALSE);
        }
        let mut nb = cx.take_buf();
        let cur = cx.ruri();
        let Ok(p) = sipox_sip_msg::uri(cur) else {
            cx.give_buf(nb);
            return Ok(Ret::FALSE);
        };
        let user = p.user().unwrap_or(b"");
        if n > user.len() {
            cx.give_buf(nb);
            return Ok(Ret::FALSE);
        }
        let nu = if self.1 {
            &user[..user.len() - n]
        } else {
            &user[n..]
        };
        set_uri_part(cur, UriPart::User, Some(nu), &mut nb);
        commit_ruri(cx, nb);
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct RevertUri;

impl Call for RevertUri {
    fn call(&self, cx: &mut MsgCx) -> R {
        cx.ruri_set = false;
        cx.ruri.clear();
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct SetDstUri(Fmt);

impl Call for SetDstUri {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut v = cx.take_buf();
        cx.eval_fmt(&self.0, &mut v);
        if sipox_sip_msg::uri(&v).is_err() {
            cx.give_buf(v);
            return Ok(Ret::FALSE);
        }
        std::mem::swap(&mut cx.duri, &mut v);
        cx.give_buf(v);
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct ResetDstUri;

impl Call for ResetDstUri {
    fn call(&self, cx: &mut MsgCx) -> R {
        cx.duri.clear();
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct IsDstUriSet;

impl Call for IsDstUriSet {
    fn call(&self, cx: &mut MsgCx) -> R {
        Ok(Ret::of(!cx.duri.is_empty()))
    }
}

// ----- branches -----

/// Parses a q-value text ("0.5", "1") into thousandths.
fn q_of(s: &[u8]) -> Option<i32> {
    sipox_sip_msg::parse_qvalue(s).map(i32::from)
}

#[derive(Debug)]
struct AppendBranch(Option<Fmt>, Option<Fmt>);

impl Call for AppendBranch {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut u = cx.take_buf();
        match &self.0 {
            Some(f) => cx.eval_fmt(f, &mut u),
            None => u.extend_from_slice(cx.ruri()),
        }
        let q = match &self.1 {
            Some(f) => {
                let mut qb = cx.take_buf();
                cx.eval_fmt(f, &mut qb);
                let q = q_of(&qb).unwrap_or(-1);
                cx.give_buf(qb);
                q
            }
            None if self.0.is_none() => cx.ruri_q,
            None => -1,
        };
        let use_msg_dst = self.0.is_none();
        let duri = if use_msg_dst {
            cx.duri.clone()
        } else {
            Vec::new()
        };
        let bflags = if use_msg_dst { cx.bflags } else { 0 };
        let b = cx.new_branch();
        b.uri.extend_from_slice(&u);
        b.duri = duri;
        b.q = q;
        b.flags = bflags;
        cx.give_buf(u);
        Ok(Ret::TRUE)
    }
}

/// Removes branch `i` (0-based), keeping its buffers for reuse.
pub(crate) fn remove_branch(cx: &mut MsgCx, i: usize) {
    if i < cx.nbranches {
        let b = cx.branches.remove(i);
        cx.branches.push(b);
        cx.nbranches -= 1;
    }
}

#[derive(Debug)]
struct RemoveBranch(IntArg);

impl Call for RemoveBranch {
    fn call(&self, cx: &mut MsgCx) -> R {
        let i = cx.eval_int(&self.0).unwrap_or(-1);
        let n = i64::try_from(cx.nbranches).unwrap_or(0);
        let i = if i < 0 { n + i } else { i };
        match usize::try_from(i).ok().filter(|&i| i < cx.nbranches) {
            Some(i) => {
                remove_branch(cx, i);
                Ok(Ret::TRUE)
            }
            None => Ok(Ret::FALSE),
        }
    }
}

#[derive(Debug)]
struct SwapBranches(Option<IntArg>, Option<IntArg>);

impl Call for SwapBranches {
    fn call(&self, cx: &mut MsgCx) -> R {
        let a = self.0.as_ref().and_then(|x| cx.eval_int(x)).unwrap_or(0);
        let b = self.1.as_ref().and_then(|x| cx.eval_int(x)).unwrap_or(-1);
        let n = i64::try_from(cx.nbranches).unwrap_or(0);
        let norm = |i: i64| {
            usize::try_from(if i < 0 { n + i } else { i })
                .ok()
                .filter(|&i| i < cx.nbranches)
        };
        match (norm(a), norm(b)) {
            (Some(x), Some(y)) => {
                cx.branches.swap(x, y);
                Ok(Ret::TRUE)
            }
            _ => Ok(Ret::FALSE),
        }
    }
}

/// Serial forking state is kept as AVP-free fields on the context: branches are sorted by q
/// and held back; `next_branches()` releases the next group of equal q.
#[derive(Debug)]
struct Serialize(IntArg, Option<IntArg>);

impl Call for Serialize {
    fn call(&self, cx: &mut MsgCx) -> R {
        let clear = cx.eval_int(&self.0).unwrap_or(0) != 0;
        let keep_order = self.1.as_ref().and_then(|x| cx.eval_int(x)).unwrap_or(0) != 0;
        if cx.nbranches == 0 && !clear {
            return Ok(Ret::TRUE);
        }
        // The R-URI branch joins the set.
        let mut all: Vec<crate::cx::Branch> = Vec::with_capacity(cx.nbranches + 1);
        all.push(crate::cx::Branch {
            uri: cx.ruri().to_vec(),
            duri: cx.duri.clone(),
            path: Vec::new(),
            q: cx.ruri_q,
            flags: cx.bflags,
        });
        all.extend(cx.branches[..cx.nbranches].iter().cloned());
        if !keep_order {
            let qv = |b: &crate::cx::Branch| if b.q < 0 { 1000 } else { b.q };
            all.sort_by_key(|b| std::cmp::Reverse(qv(b)));
        }
        cx.nbranches = 0;
        cx.serial.clear();
        cx.serial.extend(all);
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct NextBranches;

impl Call for NextBranches {
    fn call(&self, cx: &mut MsgCx) -> R {
        if cx.serial.is_empty() {
            return Ok(Ret::FALSE);
        }
        let first = cx.serial.remove(0);
        let qv = |q: i32| if q < 0 { 1000 } else { q };
        let q = qv(first.q);
        let mut nb = cx.take_buf();
        nb.extend_from_slice(&first.uri);
        commit_ruri(cx, nb);
        cx.duri = first.duri;
        cx.ruri_q = first.q;
        cx.bflags = first.flags;
        cx.nbranches = 0;
        while cx.serial.first().is_some_and(|b| qv(b.q) == q) {
            let b = cx.serial.remove(0);
            let nbr = cx.new_branch();
            *nbr = b;
        }
        Ok(Ret::TRUE)
    }
}

// ----- misc -----

#[derive(Debug)]
struct PvPrintf(Box<PvRef>, Fmt);

impl Call for PvPrintf {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut b = cx.take_buf();
        cx.eval_fmt(&self.1, &mut b);
        cx.set_var(&self.0, Kind::Str, &mut b);
        cx.give_buf(b);
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct IsMyself {
    host: Fmt,
    port: Option<IntArg>,
    locals: Vec<(Vec<u8>, Option<u16>)>,
}

fn is_myself(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    let host = a.fmt(0).unwrap_or_default();
    let port = a.int(1);
    let mut locals = Vec::new();
    for (name, v) in a.cx.globals() {
        collect_locals(&name, &v, &mut locals);
    }
    Ok(Box::new(IsMyself { host, port, locals }))
}

fn collect_locals(name: &str, v: &sipox_cfg_syntax::Value, out: &mut Vec<(Vec<u8>, Option<u16>)>) {
    use sipox_cfg_syntax::Value as V;
    match (name, v) {
        ("socket" | "listen" | "alias", V::Socket(s)) => {
            out.push((s.host.as_bytes().to_vec(), s.port));
            if let Some((h, p)) = &s.advertised {
                out.push((h.as_bytes().to_vec(), *p));
            }
        }
        ("alias", V::Str(s) | V::Ident(s) | V::Ip(s)) => {
            let (h, p) = match s.rsplit_once(':') {
                Some((h, p)) if p.parse::<u16>().is_ok() => (h, p.parse().ok()),
                _ => (s.as_str(), None),
            };
            out.push((h.as_bytes().to_vec(), p));
        }
        (n, V::List(l)) => {
            for x in l {
                collect_locals(n, x, out);
            }
        }
        _ => {}
    }
}

impl Call for IsMyself {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut h = cx.take_buf();
        cx.eval_fmt(&self.host, &mut h);
        let port = self
            .port
            .as_ref()
            .and_then(|p| cx.eval_int(p))
            .and_then(|p| u16::try_from(p).ok());
        let h2 = h
            .strip_prefix(b"[")
            .and_then(|x| x.strip_suffix(b"]"))
            .unwrap_or(&h);
        let local_ip = cx.src.local_ip.to_string();
        let mine = self.locals.iter().any(|(lh, lp)| {
            (lh.eq_ignore_ascii_case(h2) || lh == b"*")
                && (port.is_none_or(|p| p == 0 || lp.is_none_or(|lp| lp == p)))
        }) || (h2 == local_ip.as_bytes()
            && port.is_none_or(|p| p == 0 || p == cx.src.local_port));
        cx.give_buf(h);
        Ok(Ret::of(mine))
    }
}

fn cache_sys(a: &mut Args<'_>) -> Result<(), FixupError> {
    let s = a
        .static_str(0)
        .ok_or_else(|| FixupError::arg(0, "expected a cache system name"))?;
    if s.as_ref() == b"local" || s.starts_with(b"local:") {
        Ok(())
    } else {
        Err(FixupError::arg(
            0,
            format!(
                "cache system '{}' is not available (only \"local\" is built in)",
                String::from_utf8_lossy(&s)
            ),
        ))
    }
}

#[derive(Debug)]
struct CacheStore {
    key: Fmt,
    val: Fmt,
    exp: Option<IntArg>,
}

impl Call for CacheStore {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut k = cx.take_buf();
        let mut v = cx.take_buf();
        cx.eval_fmt(&self.key, &mut k);
        cx.eval_fmt(&self.val, &mut v);
        let exp = self
            .exp
            .as_ref()
            .and_then(|e| cx.eval_int(e))
            .filter(|&e| e > 0)
            .map(|e| cx.now_us + e * 1_000_000);
        cx.prog.shared.cache_store(&k, Val::str(&v), exp);
        cx.give_buf(k);
        cx.give_buf(v);
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct CacheFetch {
    key: Fmt,
    out: Box<PvRef>,
}

impl Call for CacheFetch {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut k = cx.take_buf();
        cx.eval_fmt(&self.key, &mut k);
        let r = cx.prog.shared.cache_fetch(&k, cx.now_us);
        cx.give_buf(k);
        match r {
            Some(mut v) => {
                let kind = v.kind;
                cx.set_var(&self.out, kind, &mut v.s);
                Ok(Ret::TRUE)
            }
            None => Ok(Ret(-2)),
        }
    }
}

#[derive(Debug)]
struct CacheRemove {
    key: Fmt,
}

impl Call for CacheRemove {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut k = cx.take_buf();
        cx.eval_fmt(&self.key, &mut k);
        cx.prog.shared.cache_remove(&k);
        cx.give_buf(k);
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct CacheAdd {
    key: Fmt,
    delta: IntArg,
    exp: IntArg,
    out: Option<Box<PvRef>>,
    sign: i64,
}

fn cache_add(mut a: Args<'_>, sign: i64) -> Result<Box<dyn Call>, FixupError> {
    cache_sys(&mut a)?;
    Ok(Box::new(CacheAdd {
        key: a.fmt(1).unwrap_or_default(),
        delta: a.int(2).unwrap_or(IntArg::Const(0)),
        exp: a.int(3).unwrap_or(IntArg::Const(0)),
        out: a.var(4),
        sign,
    }))
}

impl Call for CacheAdd {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut k = cx.take_buf();
        cx.eval_fmt(&self.key, &mut k);
        let d = cx.eval_int(&self.delta).unwrap_or(0) * self.sign;
        let exp = cx
            .eval_int(&self.exp)
            .filter(|&e| e > 0)
            .map(|e| cx.now_us + e * 1_000_000);
        let n = cx.prog.shared.cache_add(&k, d, exp, cx.now_us);
        cx.give_buf(k);
        if let Some(o) = &self.out {
            let mut b = cx.take_buf();
            cx.set_var(o, Kind::Int(n), &mut b);
            cx.give_buf(b);
        }
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct RaiseEvent {
    name: Fmt,
    names: Option<Box<PvRef>>,
    vals: Option<Box<PvRef>>,
}

fn avp_all(cx: &MsgCx, p: &PvRef) -> Vec<Val> {
    match &p.pv {
        crate::program::Pv::Avp(id) => cx
            .avps
            .get(*id as usize)
            .map(|s| s.values().rev().cloned().collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

impl Call for RaiseEvent {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut n = cx.take_buf();
        cx.eval_fmt(&self.name, &mut n);
        let name = String::from_utf8_lossy(&n).into_owned();
        cx.give_buf(n);
        let mut params = Vec::new();
        match (&self.names, &self.vals) {
            (Some(a), Some(b)) => {
                let ks = avp_all(cx, a);
                let vs = avp_all(cx, b);
                for (k, v) in ks.iter().zip(vs.iter()) {
                    params.push((k.to_text(), v.to_text()));
                }
            }
            (Some(a), None) => {
                for v in avp_all(cx, a) {
                    params.push((String::new(), v.to_text()));
                }
            }
            _ => {}
        }
        cx.prog.shared.raise(RaisedEvent { name, params });
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct GetTimestamp(Box<PvRef>, Box<PvRef>);

impl Call for GetTimestamp {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut b = cx.take_buf();
        let now = cx.now_us;
        cx.set_var(&self.0, Kind::Int(now.div_euclid(1_000_000)), &mut b);
        cx.set_var(&self.1, Kind::Int(now.rem_euclid(1_000_000)), &mut b);
        cx.give_buf(b);
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct ConstructUri(Box<[Fmt]>, Box<PvRef>);

impl Call for ConstructUri {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut parts: Vec<Vec<u8>> = Vec::with_capacity(5);
        for f in &self.0 {
            let mut b = Vec::new();
            cx.eval_fmt(f, &mut b);
            parts.push(b);
        }
        let [proto, user, domain, port, params] = &parts[..] else {
            return Ok(Ret::FALSE);
        };
        if domain.is_empty() {
            return Ok(Ret::FALSE);
        }
        let mut out = Vec::new();
        out.extend_from_slice(b"sip:");
        if !user.is_empty() {
            out.extend_from_slice(user);
            out.push(b'@');
        }
        out.extend_from_slice(domain);
        if !port.is_empty() && port.as_slice() != b"0" {
            out.push(b':');
            out.extend_from_slice(port);
        }
        if !proto.is_empty() && !proto.eq_ignore_ascii_case(b"udp") {
            out.extend_from_slice(b";transport=");
            out.extend_from_slice(&proto.to_ascii_lowercase());
        }
        if !params.is_empty() {
            if !params.starts_with(b";") {
                out.push(b';');
            }
            out.extend_from_slice(params);
        }
        cx.set_var(&self.1, Kind::Str, &mut out);
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct ScriptTrace(Option<IntArg>, Option<Fmt>, Option<Fmt>);

impl Call for ScriptTrace {
    fn call(&self, cx: &mut MsgCx) -> R {
        match (&self.0, &self.1) {
            (Some(l), Some(f)) => {
                let level = i32::try_from(cx.eval_int(l).unwrap_or(-1)).unwrap_or(-1);
                let mut info = Vec::new();
                if let Some(i) = &self.2 {
                    cx.eval_fmt(i, &mut info);
                }
                cx.script_trace = Some((level, f.clone(), info));
            }
            _ => cx.script_trace = None,
        }
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct AvpPrint;

impl Call for AvpPrint {
    fn call(&self, cx: &mut MsgCx) -> R {
        let prog = std::sync::Arc::clone(&cx.prog);
        let mut lines = Vec::new();
        for (i, st) in cx.avps.iter().enumerate() {
            for v in st.values() {
                let mut l = Vec::new();
                let _ = write!(
                    l,
                    "avp: name={} ",
                    prog.avp_names.get(i).map_or("?", String::as_str)
                );
                match v.kind {
                    Kind::Int(n) => {
                        let _ = write!(l, "val_int={n}");
                    }
                    _ => {
                        l.extend_from_slice(b"val_str=");
                        l.extend_from_slice(&v.s);
                    }
                }
                lines.push(l);
            }
        }
        for l in lines {
            cx.log(4, &l);
        }
        Ok(Ret::TRUE)
    }
}

/// Parses a decimal argument that may carry surrounding blanks.
#[allow(dead_code)]
pub(crate) fn int_of(s: &[u8]) -> Option<i64> {
    parse_int(s.trim_ascii())
}

#[allow(dead_code)]
pub(crate) fn q_text(q: i32, out: &mut Vec<u8>) {
    write_q(out, q);
}
