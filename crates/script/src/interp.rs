//! The interpreter: statements, expressions, formats, pseudo-variable reads and writes.

use std::cmp::Ordering;
use std::sync::Arc;

use sipox_cfg_syntax::{AssignOp, BinOp, CmpOp, RouteKind};
use sipox_sip_msg::{HeaderKind, SipMsg};

use crate::cx::{MsgCx, Outcome, RunError, Stop};
use crate::program::*;
use crate::registry::IntArg;
use crate::trans;
use crate::value::{Kind, as_int, compare, push_int, truthy, write_text};

const MAX_DEPTH: usize = 100;

enum Flow {
    Next,
    Break,
    Return(i32),
}

type R<T> = Result<T, Stop>;

impl MsgCx {
    /// Runs the main request route (`route { … }`).
    pub fn run_main(&mut self) -> Outcome {
        self.run_route(RouteKind::Request, None)
    }

    /// Runs a route by kind and name (`None`: the unnamed one).
    pub fn run_route(&mut self, kind: RouteKind, name: Option<&str>) -> Outcome {
        let prog = Arc::clone(&self.prog);
        match prog.route(kind, name) {
            Some(id) => self.run_id(&prog, id),
            None => Outcome::Error(RunError::NoRoute(kind.keyword())),
        }
    }

    /// Runs a route from inside a function call of another route (tm's `branch_route`,
    /// run by `t_relay()` for each branch): the caller's route frames, parameters and `$rc`
    /// are kept and restored afterwards.
    pub fn run_route_nested(&mut self, kind: RouteKind, name: Option<&str>) -> Outcome {
        let frames = std::mem::take(&mut self.frames);
        let nparams = self.params.len();
        let rc = self.rc;
        let out = self.run_route(kind, name);
        self.frames = frames;
        self.params.truncate(nparams);
        self.rc = rc;
        out
    }

    /// Runs a route by id.
    pub fn run(&mut self, id: RouteId) -> Outcome {
        let prog = Arc::clone(&self.prog);
        self.run_id(&prog, id)
    }

    fn run_id(&mut self, prog: &Program, id: RouteId) -> Outcome {
        self.frames.clear();
        self.frames.push((0, 0, id.0));
        let r = self.exec_route(prog, id);
        self.frames.clear();
        match r {
            Ok(code) => Outcome::Done(code),
            Err(Stop::Exit) => Outcome::Exit,
            Err(Stop::Drop) => Outcome::Drop,
            Err(Stop::Error(e)) => {
                let mut msg = Vec::new();
                msg.extend_from_slice(b"ERROR: script stopped: ");
                msg.extend_from_slice(e.to_string().as_bytes());
                self.emit_log(-1, &msg);
                Outcome::Error(e)
            }
        }
    }

    fn exec_route(&mut self, prog: &Program, id: RouteId) -> R<i32> {
        let Some(route) = prog.routes.get(id.0 as usize) else {
            return Err(Stop::Error(RunError::NoSuchRoute(id.0.to_string())));
        };
        match self.block(prog, &route.body)? {
            Flow::Return(c) => Ok(c),
            Flow::Next | Flow::Break => Ok(1),
        }
    }

    fn block(&mut self, prog: &Program, b: &[Stmt]) -> R<Flow> {
        for s in b {
            match self.stmt(prog, s)? {
                Flow::Next => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Next)
    }

    fn stmt(&mut self, prog: &Program, s: &Stmt) -> R<Flow> {
        match s {
            Stmt::Expr(e) => {
                let mut b = self.take_buf();
                let r = self.eval(prog, e, &mut b);
                self.give_buf(b);
                r?;
            }
            Stmt::Assign(a) => self.assign(prog, a)?,
            Stmt::If(c, t, e) => {
                let f = if self.cond(prog, c)? {
                    self.block(prog, t)?
                } else {
                    self.block(prog, e)?
                };
                return Ok(f);
            }
            Stmt::While { cond, body, line } => {
                let mut n = 0u32;
                while self.cond(prog, cond)? {
                    n += 1;
                    if n > prog.max_while_loops {
                        let e = RunError::TooManyLoops {
                            line: *line,
                            max: prog.max_while_loops,
                        };
                        self.emit_log(-1, format!("ERROR: {e}").as_bytes());
                        break;
                    }
                    match self.block(prog, body)? {
                        Flow::Break => break,
                        Flow::Return(c) => return Ok(Flow::Return(c)),
                        Flow::Next => {}
                    }
                }
            }
            Stmt::ForEach { var, src, body } => return self.foreach(prog, var, src, body),
            Stmt::Switch {
                subject,
                cases,
                default,
            } => {
                let mut b = self.take_buf();
                let k = self.pv_get(subject, &mut b);
                let start = cases.iter().position(|(v, _)| match v {
                    CaseVal::Int(i) => as_int(k, &b) == Some(*i),
                    CaseVal::Str(s) => k == Kind::Str && b == **s,
                });
                self.give_buf(b);
                let mut run_default = true;
                if let Some(start) = start {
                    for (_, body) in &cases[start..] {
                        match self.block(prog, body)? {
                            Flow::Next => {}
                            Flow::Break => {
                                run_default = false;
                                break;
                            }
                            f @ Flow::Return(_) => return Ok(f),
                        }
                    }
                }
                if run_default && let Some(d) = default {
                    return match self.block(prog, d)? {
                        Flow::Break | Flow::Next => Ok(Flow::Next),
                        f => Ok(f),
                    };
                }
            }
            Stmt::Break => return Ok(Flow::Break),
            Stmt::Return(e) => {
                let code = match e {
                    None => 1,
                    Some(e) => {
                        let mut b = self.take_buf();
                        let k = self.eval(prog, e, &mut b);
                        let c = k.map(|k| as_int(k, &b).unwrap_or(0));
                        self.give_buf(b);
                        i32::try_from(c?).unwrap_or(-1)
                    }
                };
                if code == 0 {
                    return Err(Stop::Exit);
                }
                return Ok(Flow::Return(code));
            }
            Stmt::Exit => return Err(Stop::Exit),
            Stmt::Drop => return Err(Stop::Drop),
        }
        Ok(Flow::Next)
    }

    fn foreach(&mut self, prog: &Program, var: &PvRef, src: &PvRef, body: &[Stmt]) -> R<Flow> {
        // Collect the values first (the body may change the source).
        let mut vals: Vec<(Kind, Vec<u8>)> = Vec::new();
        match &src.pv {
            Pv::Avp(id) => {
                if let Some(st) = self.avps.get(*id as usize) {
                    vals.extend(st.values().map(|v| (v.kind, v.s.clone())));
                }
            }
            Pv::Hdr(h) => {
                if let Some(m) = self.msg.as_ref() {
                    for hd in headers_named(m, h) {
                        vals.push((Kind::Str, m.value(hd).to_vec()));
                    }
                }
            }
            _ => {
                let mut b = self.take_buf();
                let mut one = src.clone();
                one.idx = Idx::None;
                let k = self.pv_get(&one, &mut b);
                if k != Kind::Null {
                    vals.push((k, b.clone()));
                }
                self.give_buf(b);
            }
        }
        for (k, mut v) in vals {
            self.pv_set(var, AssignOp::Set, k, &mut v);
            match self.block(prog, body)? {
                Flow::Break => break,
                Flow::Return(c) => return Ok(Flow::Return(c)),
                Flow::Next => {}
            }
        }
        Ok(Flow::Next)
    }

    fn assign(&mut self, prog: &Program, a: &AssignNode) -> R<()> {
        let mut b = self.take_buf();
        let k = match self.eval(prog, &a.rhs, &mut b) {
            Ok(k) => k,
            Err(e) => {
                self.give_buf(b);
                return Err(e);
            }
        };
        let k = if matches!(a.rhs, Expr::Null) {
            Kind::Null
        } else {
            k
        };
        self.pv_set(&a.lhs, a.op, k, &mut b);
        self.give_buf(b);
        Ok(())
    }

    // ----- expressions -----

    fn eval(&mut self, prog: &Program, e: &Expr, out: &mut Vec<u8>) -> R<Kind> {
        Ok(match e {
            Expr::Int(i) => Kind::Int(*i),
            Expr::Str(s) => {
                out.extend_from_slice(s);
                Kind::Str
            }
            Expr::Fmt(f) => {
                self.eval_fmt(f, out);
                Kind::Str
            }
            Expr::Null => Kind::Null,
            Expr::Pv(p) => self.pv_get(p, out),
            Expr::Call(c) => Kind::Int(i64::from(self.call(c)?)),
            Expr::Route(r) => Kind::Int(i64::from(self.route_call(prog, r)?)),
            Expr::BitNot(x) => {
                let k = self.eval(prog, x, out)?;
                let v = as_int(k, out).unwrap_or(0);
                out.clear();
                Kind::Int(!v)
            }
            Expr::Bin(op, a, b) => return self.binary(prog, *op, a, b, out),
            Expr::Assign(a) => {
                self.assign(prog, a)?;
                Kind::Int(1)
            }
            Expr::Control(s) => match self.stmt(prog, s)? {
                Flow::Return(c) => Kind::Int(i64::from(c)),
                _ => Kind::Int(1),
            },
            Expr::Log(l) => {
                self.log_node(l);
                Kind::Int(1)
            }
            _ => Kind::Int(i64::from(self.cond(prog, e)?)),
        })
    }

    fn binary(
        &mut self,
        prog: &Program,
        op: BinOp,
        a: &Expr,
        b: &Expr,
        out: &mut Vec<u8>,
    ) -> R<Kind> {
        let ka = self.eval(prog, a, out)?;
        let mut tb = self.take_buf();
        let kb = match self.eval(prog, b, &mut tb) {
            Ok(k) => k,
            Err(e) => {
                self.give_buf(tb);
                return Err(e);
            }
        };
        let r = arith(op, ka, out, kb, &tb);
        self.give_buf(tb);
        Ok(r)
    }

    pub(crate) fn cond(&mut self, prog: &Program, e: &Expr) -> R<bool> {
        Ok(match e {
            Expr::Int(i) => *i != 0,
            Expr::Str(s) => !s.is_empty(),
            Expr::Null => false,
            Expr::Call(c) => self.call(c)? > 0,
            Expr::Route(r) => self.route_call(prog, r)? > 0,
            Expr::Not(x) => !self.cond(prog, x)?,
            Expr::And(a, b) => self.cond(prog, a)? && self.cond(prog, b)?,
            Expr::Or(a, b) => self.cond(prog, a)? || self.cond(prog, b)?,
            Expr::Cmp(op, a, b) => {
                let mut ba = self.take_buf();
                let mut bb = self.take_buf();
                let r = self.eval(prog, a, &mut ba).and_then(|ka| {
                    let kb = self.eval(prog, b, &mut bb)?;
                    Ok(cmp_result(*op, ka, &ba, kb, &bb, matches!(**b, Expr::Null)))
                });
                self.give_buf(ba);
                self.give_buf(bb);
                r?
            }
            Expr::Match(a, re, neg) => {
                let mut ba = self.take_buf();
                let r = self.eval(prog, a, &mut ba).and_then(|k| {
                    if k == Kind::Null {
                        return Ok(false);
                    }
                    if let Kind::Int(i) = k {
                        push_int(&mut ba, i);
                    }
                    Ok(match re {
                        RegexOperand::Const(r) => r.is_match(&ba),
                        RegexOperand::Dyn(p) => {
                            let mut bp = self.take_buf();
                            let kp = self.eval(prog, p, &mut bp);
                            let m = kp.map(|_| {
                                crate::compile::compile_regex(&String::from_utf8_lossy(&bp))
                                    .map(|r| r.is_match(&ba))
                                    .unwrap_or(false)
                            });
                            self.give_buf(bp);
                            m?
                        }
                    })
                });
                self.give_buf(ba);
                r? != *neg
            }
            Expr::InNet(a, net, neg) => {
                let mut ba = self.take_buf();
                let r = self.eval(prog, a, &mut ba);
                let inside = std::str::from_utf8(&ba)
                    .ok()
                    .and_then(|s| s.trim().parse::<std::net::IpAddr>().ok())
                    .is_some_and(|ip| net.contains(ip));
                self.give_buf(ba);
                r?;
                inside != *neg
            }
            Expr::Pv(p) => {
                let mut b = self.take_buf();
                let k = self.pv_get(p, &mut b);
                let t = truthy(k, &b);
                self.give_buf(b);
                t
            }
            Expr::Assert(c, msg) => {
                if !self.cond(prog, c)? {
                    let mut line = b"ERROR: assertion failed: ".to_vec();
                    line.extend_from_slice(msg);
                    self.emit_log(-1, &line);
                    return Err(Stop::Exit);
                }
                true
            }
            Expr::Control(s) => match self.stmt(prog, s)? {
                Flow::Return(c) => c > 0,
                _ => true,
            },
            Expr::Fmt(_) | Expr::Bin(..) | Expr::BitNot(_) | Expr::Assign(_) | Expr::Log(_) => {
                let mut b = self.take_buf();
                let k = self.eval(prog, e, &mut b);
                let t = k.map(|k| truthy(k, &b));
                self.give_buf(b);
                t?
            }
        })
    }

    fn call(&mut self, c: &CallNode) -> R<i32> {
        let r = c.call.call(self)?;
        self.rc = r.0;
        if r.0 == 0 {
            return Err(Stop::Exit);
        }
        Ok(r.0)
    }

    fn route_call(&mut self, prog: &Program, r: &RouteCallNode) -> R<i32> {
        let id = match &r.target {
            RouteTarget::Id(id) => *id,
            RouteTarget::Dyn(f) => {
                let mut b = self.take_buf();
                self.eval_fmt(f, &mut b);
                let name = String::from_utf8_lossy(&b).into_owned();
                self.give_buf(b);
                match prog.route(RouteKind::Request, Some(&name)) {
                    Some(id) => id,
                    None => return Err(Stop::Error(RunError::NoSuchRoute(name))),
                }
            }
        };
        if self.frames.len() >= MAX_DEPTH {
            return Err(Stop::Error(RunError::TooDeep(MAX_DEPTH)));
        }
        let base = self.frames.last().map_or(0, |f| f.0 + f.1);
        for (i, a) in r.args.iter().enumerate() {
            let mut b = self.take_buf();
            let k = self.eval(prog, a, &mut b);
            let k = match k {
                Ok(k) => k,
                Err(e) => {
                    self.give_buf(b);
                    return Err(e);
                }
            };
            if self.params.len() <= base + i {
                self.params.resize_with(base + i + 1, Default::default);
            }
            let slot = &mut self.params[base + i];
            slot.kind = k;
            std::mem::swap(&mut slot.s, &mut b);
            self.give_buf(b);
        }
        self.frames.push((base, r.args.len(), id.0));
        let res = self.exec_route(prog, id);
        self.frames.pop();
        let code = res?;
        self.rc = code;
        Ok(code)
    }

    fn log_node(&mut self, l: &LogNode) {
        let level = match &l.level {
            LogLevel::Fixed(v) => *v,
            LogLevel::Dyn(f) => {
                let mut b = self.take_buf();
                self.eval_fmt(f, &mut b);
                let v = crate::compile::log_level_of(&String::from_utf8_lossy(&b)).unwrap_or(-1);
                self.give_buf(b);
                v
            }
        };
        if level > self.prog.shared.xlog_level() {
            return;
        }
        let mut b = self.take_buf();
        self.eval_fmt(&l.fmt, &mut b);
        self.emit_log(level, &b);
        self.give_buf(b);
    }

    // ----- helpers for functions -----

    /// Expands a format into `out` (appends).
    pub fn eval_fmt(&mut self, f: &Fmt, out: &mut Vec<u8>) {
        for p in &f.parts {
            match p {
                FmtPart::Lit(s) => out.extend_from_slice(s),
                FmtPart::Pv(pv) => {
                    if out.is_empty() {
                        let k = self.pv_get(pv, out);
                        if k != Kind::Str {
                            write_text(k, &[], out);
                        }
                    } else {
                        let mut b = self.take_buf();
                        let k = self.pv_get(pv, &mut b);
                        write_text(k, &b, out);
                        self.give_buf(b);
                    }
                }
            }
        }
    }

    /// Evaluates an int argument (`None` when a variable holds no integer).
    pub fn eval_int(&mut self, a: &IntArg) -> Option<i64> {
        match a {
            IntArg::Const(i) => Some(*i),
            IntArg::Dyn(p) => {
                let mut b = self.take_buf();
                let k = self.pv_get(p, &mut b);
                let r = as_int(k, &b);
                self.give_buf(b);
                r
            }
        }
    }

    /// Writes a value into an output variable (`=` semantics).
    pub fn set_var(&mut self, v: &PvRef, kind: Kind, buf: &mut Vec<u8>) {
        self.pv_set(v, AssignOp::Set, kind, buf);
    }

    /// Reads a variable into `out`.
    pub fn get_var(&mut self, v: &PvRef, out: &mut Vec<u8>) -> Kind {
        self.pv_get(v, out)
    }

    // ----- pseudo-variables -----

    pub(crate) fn pv_get(&mut self, r: &PvRef, out: &mut Vec<u8>) -> Kind {
        // A context naming the other message of the transaction (the request from a reply
        // route, the reply from a failure route) needs tm to hand that message over, which it
        // does not yet: say so and yield NULL instead of reading the wrong message.
        if let Some(want_request) = r.ctx
            && self
                .msg
                .as_ref()
                .is_some_and(|m| m.is_request() != want_request)
        {
            self.log(-1, b"ERROR: $(<request>...)/$(<reply>...) of the other message of the transaction is not supported yet\n");
            out.clear();
            return Kind::Null;
        }
        let mut k = self.pv_base(r, out);
        for t in &r.trans {
            k = trans::apply(t, self, k, out);
        }
        k
    }

    fn index(&mut self, idx: &Idx) -> Option<i64> {
        match idx {
            Idx::None | Idx::Append => None,
            Idx::Int(i) => Some(*i),
            Idx::All => None,
            Idx::Dyn(p) => {
                let mut b = self.take_buf();
                let k = self.pv_get(p, &mut b);
                let r = as_int(k, &b);
                self.give_buf(b);
                r
            }
        }
    }

    fn pv_base(&mut self, r: &PvRef, out: &mut Vec<u8>) -> Kind {
        let idx = self.index(&r.idx);
        let all = matches!(r.idx, Idx::All);
        match &r.pv {
            Pv::ConstInt(i) => Kind::Int(*i),
            Pv::ConstStr(s) => put(out, s),
            Pv::Var(i) => match self.vars.get(*i as usize) {
                Some(v) => {
                    out.extend_from_slice(&v.s);
                    v.kind
                }
                None => Kind::Null,
            },
            Pv::Avp(id) => self.avp_get(*id, idx, all, out),
            Pv::AvpDyn(f) => {
                let mut b = self.take_buf();
                self.eval_fmt(f, &mut b);
                let id = self
                    .prog
                    .avp_names
                    .iter()
                    .position(|n| n.as_bytes() == b.as_slice());
                self.give_buf(b);
                match id.and_then(|i| u32::try_from(i).ok()) {
                    Some(id) => self.avp_get(id, idx, all, out),
                    None => Kind::Null,
                }
            }
            Pv::Param(ParamRef::Name(n)) => {
                // event_route parameters: $param(name)
                match self.event_params.iter().find(|(k, _)| k.as_str() == &**n) {
                    Some((_, v)) => {
                        out.extend_from_slice(v.as_bytes());
                        Kind::Str
                    }
                    None => Kind::Null,
                }
            }
            Pv::Param(p) => {
                let Some(&(base, len, _)) = self.frames.last() else {
                    return Kind::Null;
                };
                let i = match p {
                    ParamRef::Index(i) => Some(*i),
                    ParamRef::Dyn(f) => {
                        let mut b = self.take_buf();
                        self.eval_fmt(f, &mut b);
                        let i = crate::value::parse_int(&b).and_then(|i| usize::try_from(i).ok());
                        self.give_buf(b);
                        i
                    }
                    ParamRef::Name(_) => None,
                };
                match i {
                    Some(i) if i >= 1 && i <= len => {
                        let v = &self.params[base + i - 1];
                        out.extend_from_slice(&v.s);
                        v.kind
                    }
                    _ => Kind::Null,
                }
            }
            Pv::Ruri | Pv::RuriUser | Pv::RuriHost | Pv::RuriPort | Pv::RuriProto => {
                let part = uri_part_of(&r.pv);
                let Some(m) = self.msg.as_ref() else {
                    return Kind::Null;
                };
                if !m.is_request() {
                    return Kind::Null;
                }
                let u = if self.ruri_set {
                    &self.ruri[..]
                } else {
                    m.ruri_raw()
                };
                uri_part(u, part, out)
            }
            Pv::RuriQ => Kind::Int(i64::from(self.ruri_q)),
            Pv::Ouri | Pv::OuriUser | Pv::OuriHost | Pv::OuriPort | Pv::OuriProto => {
                let part = uri_part_of(&r.pv);
                match self.msg.as_ref() {
                    Some(m) if m.is_request() => uri_part(m.ruri_raw(), part, out),
                    _ => Kind::Null,
                }
            }
            Pv::Duri | Pv::DuriHost | Pv::DuriPort | Pv::DuriProto => {
                if self.duri.is_empty() {
                    return Kind::Null;
                }
                uri_part(&self.duri, uri_part_of(&r.pv), out)
            }
            Pv::Naddr(kind, part) => match self.msg.as_ref() {
                Some(m) => naddr(m, *kind, *part, out),
                None => Kind::Null,
            },
            Pv::Callid => self.with_msg(out, |m, o| opt(o, m.call_id())),
            Pv::Cseq => self.with_msg(out, |m, o| match m.cseq() {
                Ok(c) => Kind::Int(i64::from(c.number())),
                Err(_) => {
                    let _ = o;
                    Kind::Null
                }
            }),
            Pv::Method => self.with_msg(out, |m, o| put(o, m.method_bytes())),
            Pv::ContentLength => self.with_msg(out, |m, _| match m.content_length() {
                Some(l) => Kind::Int(i64::from(l)),
                None => Kind::Null,
            }),
            Pv::ContentType => {
                self.with_msg(out, |m, o| hdr_idx(m, HeaderKind::ContentType, idx, all, o))
            }
            Pv::UserAgent => self.with_msg(out, |m, o| opt(o, m.value_of(HeaderKind::UserAgent))),
            Pv::Contact => self.with_msg(out, |m, o| list_idx(m, HeaderKind::Contact, idx, all, o)),
            Pv::ContactField(f) => {
                self.with_msg(out, |m, o| contact_field(m, *f, idx.unwrap_or(0), o))
            }
            Pv::Path => self.with_msg(out, |m, o| list_idx(m, HeaderKind::Path, idx, true, o)),
            Pv::Hdr(h) => {
                let Some(m) = self.msg.as_ref() else {
                    return Kind::Null;
                };
                if h.kind != HeaderKind::Other
                    && (h.name.as_ref() == b"reason" || h.name.as_ref() == b"privacy")
                    && h.kind == HeaderKind::Diversion
                {
                    // $dir / $dip
                    return match m.name_addrs(HeaderKind::Diversion).next() {
                        Some(Ok(na)) => match na.params().get(&h.name) {
                            Some(Some(v)) => put(out, v),
                            _ => Kind::Null,
                        },
                        _ => Kind::Null,
                    };
                }
                let hs = headers_named(m, h);
                pick(m, hs, idx, all, out)
            }
            Pv::HdrCnt(h) => match self.msg.as_ref() {
                Some(m) => Kind::Int(i64::try_from(headers_named(m, h).count()).unwrap_or(0)),
                None => Kind::Int(0),
            },
            Pv::HdrName => self.with_msg(out, |m, o| {
                let hs = m.headers();
                let i = idx.unwrap_or(0);
                let i = if i < 0 {
                    i64::try_from(hs.len()).unwrap_or(0) + i
                } else {
                    i
                };
                match usize::try_from(i).ok().and_then(|i| hs.get(i)) {
                    Some(h) => put(o, m.name(h)),
                    None => Kind::Null,
                }
            }),
            Pv::MsgBuf => self.with_msg(out, |m, o| put(o, m.raw())),
            Pv::MsgLen => self.with_msg(out, |m, _| {
                Kind::Int(i64::try_from(m.raw().len()).unwrap_or(0))
            }),
            Pv::MsgId => Kind::Int(i64::from(self.msg_id)),
            Pv::Body => self.with_msg(out, |m, o| {
                if m.body().is_empty() {
                    Kind::Null
                } else {
                    put(o, m.body())
                }
            }),
            Pv::Status => self.with_msg(out, |m, _| match m.status() {
                Some(c) => Kind::Int(i64::from(c)),
                None => Kind::Null,
            }),
            Pv::Reason => self.with_msg(out, |m, o| {
                if m.is_request() {
                    Kind::Null
                } else {
                    put(o, m.reason())
                }
            }),
            Pv::MsgType => self.with_msg(out, |m, o| {
                put(
                    o,
                    if m.is_request() {
                        b"request".as_slice()
                    } else {
                        b"reply".as_slice()
                    },
                )
            }),
            Pv::MsgIsRequest => self.with_msg(out, |m, _| Kind::Int(i64::from(m.is_request()))),
            Pv::MsgFlag(b) => Kind::Int(i64::from(self.flags & (1 << b) != 0)),
            Pv::MsgFlags => Kind::Int(i64::try_from(self.flags & 0xffff_ffff).unwrap_or(0)),
            Pv::BranchFlags => Kind::Int(i64::try_from(self.bflags & 0xffff_ffff).unwrap_or(0)),
            Pv::SrcIp => {
                let _ = std::io::Write::write_fmt(out, format_args!("{}", self.src.ip));
                Kind::Str
            }
            Pv::SrcPort => Kind::Int(i64::from(self.src.port)),
            Pv::SocketIn(p) => sock_get(&self.src, *p, out),
            Pv::SocketOut(p) => sock_get(self.socket_out.as_ref().unwrap_or(&self.src), *p, out),
            Pv::Auth(p) => self.with_msg(out, |m, o| auth_part(m, *p, o)),
            Pv::Branch(p) => {
                let i = idx.unwrap_or(0);
                let n = i64::try_from(self.nbranches).unwrap_or(0);
                let i = if i < 0 { n + i } else { i };
                let Some(b) = usize::try_from(i)
                    .ok()
                    .filter(|&i| i < self.nbranches)
                    .map(|i| &self.branches[i])
                else {
                    return Kind::Null;
                };
                match p {
                    BranchPart::Uri | BranchPart::New => put(out, &b.uri),
                    BranchPart::Duri if b.duri.is_empty() => Kind::Null,
                    BranchPart::Duri => put(out, &b.duri),
                    BranchPart::Path if b.path.is_empty() => Kind::Null,
                    BranchPart::Path => put(out, &b.path),
                    BranchPart::Q => Kind::Int(i64::from(b.q)),
                    BranchPart::Flags => {
                        Kind::Int(i64::try_from(b.flags & 0xffff_ffff).unwrap_or(0))
                    }
                    BranchPart::Socket => Kind::Null,
                }
            }
            Pv::BranchFlag(bit) => {
                let flags = match idx {
                    Some(i) if i > 0 => usize::try_from(i - 1)
                        .ok()
                        .filter(|&i| i < self.nbranches)
                        .map_or(0, |i| self.branches[i].flags),
                    _ => self.bflags,
                };
                Kind::Int(i64::from(flags & (1 << bit) != 0))
            }
            Pv::DestSet => {
                if self.nbranches == 0 {
                    return Kind::Null;
                }
                for (i, b) in self.branches[..self.nbranches].iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    out.push(b'<');
                    out.extend_from_slice(&b.uri);
                    out.push(b'>');
                    if b.q >= 0 {
                        out.extend_from_slice(b";q=");
                        write_q(out, b.q);
                    }
                }
                Kind::Str
            }
            Pv::Rc => Kind::Int(i64::from(self.rc)),
            Pv::RouteFull if all => {
                for (k, &(_, _, id)) in self.frames.iter().enumerate() {
                    if k > 0 {
                        out.extend_from_slice(b" > ");
                    }
                    if let Some(route) = self.prog.routes.get(id as usize) {
                        route_full_name(route, out);
                    }
                }
                Kind::Str
            }
            Pv::RouteName | Pv::RouteType | Pv::RouteFull => {
                let n = i64::try_from(self.frames.len()).unwrap_or(0);
                let i = idx.unwrap_or(0);
                // [0] is the current route, [1] its caller, ...; negative from the top level.
                let pos = if i < 0 { -i - 1 } else { n - 1 - i };
                let Some(&(_, _, id)) = usize::try_from(pos).ok().and_then(|p| self.frames.get(p))
                else {
                    return Kind::Null;
                };
                let Some(route) = self.prog.routes.get(id as usize) else {
                    return Kind::Null;
                };
                if matches!(r.pv, Pv::RouteType) {
                    return put(out, route.kind.keyword().as_bytes());
                }
                if matches!(r.pv, Pv::RouteFull) {
                    route_full_name(route, out);
                    return Kind::Str;
                }
                if route.kind == RouteKind::Request && route.name == "0" {
                    put(out, b"0")
                } else if route.name.is_empty() {
                    put(out, route.kind.keyword().as_bytes())
                } else {
                    put(out, route.name.as_bytes())
                }
            }
            Pv::Argv(n) => match self.argv.iter().find(|(k, _)| **k == **n) {
                Some((_, v)) => put(out, v.as_bytes()),
                None => Kind::Null,
            },
            Pv::ArgvAll => {
                for (i, (k, v)) in self.argv.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    out.extend_from_slice(k.as_bytes());
                    out.push(b'=');
                    out.extend_from_slice(v.as_bytes());
                }
                Kind::Str
            }
            Pv::Ts => Kind::Int(self.now_us.div_euclid(1_000_000)),
            Pv::Tsm => Kind::Int(self.now_us.rem_euclid(1_000_000)),
            Pv::Tf => {
                crate::time::strftime(
                    self.now_us.div_euclid(1_000_000),
                    "%a %b %e %H:%M:%S %Y",
                    out,
                );
                Kind::Str
            }
            Pv::TStart => Kind::Int(self.start_us.div_euclid(1_000_000)),
            Pv::Time(f) => {
                crate::time::strftime(self.now_us.div_euclid(1_000_000), f, out);
                Kind::Str
            }
            Pv::Pid => Kind::Int(i64::from(std::process::id())),
            Pv::LogLevel => Kind::Int(i64::from(self.prog.shared.log_level())),
            Pv::XlogLevel => Kind::Int(i64::from(self.prog.shared.xlog_level())),
            Pv::Color(c) => {
                color(c, out);
                Kind::Str
            }
            Pv::Err(i) => match self.err.get(*i) {
                Some(v) => {
                    out.extend_from_slice(&v.s);
                    v.kind
                }
                None => Kind::Null,
            },
            Pv::Shv(i) => self.prog.shared.shv_get(*i, out),
            Pv::Env(n) => match std::env::var_os(String::from_utf8_lossy(n).as_ref()) {
                Some(v) => put(out, v.to_string_lossy().as_bytes()),
                None => Kind::Null,
            },
            Pv::Random => Kind::Int(i64::try_from(self.random() >> 33).unwrap_or(0)),
            Pv::Ctime(p) => Kind::Int(crate::time::ctime_part(
                self.now_us.div_euclid(1_000_000),
                *p,
            )),
            Pv::Module(m) => m.get(self, out),
        }
    }

    fn with_msg(&self, out: &mut Vec<u8>, f: impl FnOnce(&SipMsg, &mut Vec<u8>) -> Kind) -> Kind {
        match self.msg.as_ref() {
            Some(m) => f(m, out),
            None => Kind::Null,
        }
    }

    fn avp_get(&self, id: u32, idx: Option<i64>, all: bool, out: &mut Vec<u8>) -> Kind {
        let Some(st) = self.avps.get(id as usize) else {
            return Kind::Null;
        };
        if all {
            if st.len == 0 {
                return Kind::Null;
            }
            for (i, v) in st.values().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_text(v.kind, &v.s, out);
            }
            return Kind::Str;
        }
        match st.get(idx.unwrap_or(0)) {
            Some(v) => {
                out.extend_from_slice(&v.s);
                v.kind
            }
            None => Kind::Null,
        }
    }

    pub(crate) fn pv_set(&mut self, r: &PvRef, op: AssignOp, kind: Kind, buf: &mut Vec<u8>) {
        let (op, kind) = if matches!(op, AssignOp::Set | AssignOp::SetAll) {
            (op, kind)
        } else {
            let mut cur = self.take_buf();
            let ck = self.pv_base(r, &mut cur);
            let bop = match op {
                AssignOp::Add => BinOp::Add,
                AssignOp::Sub => BinOp::Sub,
                AssignOp::Mul => BinOp::Mul,
                AssignOp::Div => BinOp::Div,
                AssignOp::Mod => BinOp::Mod,
                AssignOp::BitAnd => BinOp::BitAnd,
                AssignOp::BitOr => BinOp::BitOr,
                _ => BinOp::BitXor,
            };
            let k = arith(bop, ck, &mut cur, kind, buf);
            std::mem::swap(&mut cur, buf);
            self.give_buf(cur);
            // Compound assignment replaces the current value.
            let op = if matches!(r.pv, Pv::Avp(_) | Pv::AvpDyn(_)) && matches!(r.idx, Idx::None) {
                AssignOp::SetAll
            } else {
                AssignOp::Set
            };
            if matches!(op, AssignOp::SetAll) {
                // replace only the newest AVP value
                let id = match &r.pv {
                    Pv::Avp(id) => Some(*id),
                    _ => None,
                };
                if let Some(st) = id.and_then(|id| self.avps.get_mut(id as usize))
                    && let Some(p) = st.pos(0)
                {
                    let v = &mut st.items[p];
                    v.kind = k;
                    std::mem::swap(&mut v.s, buf);
                    return;
                }
                (AssignOp::Set, k)
            } else {
                (op, k)
            }
        };
        if let Kind::Int(i) = kind {
            buf.clear();
            let _ = i;
        }
        let idx = self.index(&r.idx);
        match &r.pv {
            Pv::Var(i) => {
                if let Some(v) = self.vars.get_mut(*i as usize) {
                    v.kind = kind;
                    if kind == Kind::Null {
                        v.s.clear();
                    } else {
                        std::mem::swap(&mut v.s, buf);
                    }
                }
            }
            Pv::Avp(id) if matches!(r.idx, Idx::Append) => {
                if let Some(st) = self.avps.get_mut(*id as usize)
                    && kind != Kind::Null
                {
                    // `[append]` adds at the bottom of the stack (the oldest end).
                    st.push(kind, buf);
                    let v = st.items.remove(st.len - 1);
                    st.items.insert(0, v);
                }
            }
            Pv::Avp(id) => self.avp_set(*id, op, idx, matches!(r.idx, Idx::None), kind, buf),
            Pv::Module(m) => m.set(self, kind, buf),
            Pv::AvpDyn(f) => {
                let mut b = self.take_buf();
                self.eval_fmt(f, &mut b);
                let id = self
                    .prog
                    .avp_names
                    .iter()
                    .position(|n| n.as_bytes() == b.as_slice());
                self.give_buf(b);
                if let Some(id) = id.and_then(|i| u32::try_from(i).ok()) {
                    self.avp_set(
                        id,
                        op,
                        idx,
                        matches!(r.idx, Idx::None | Idx::Append),
                        kind,
                        buf,
                    );
                }
            }
            Pv::Ruri | Pv::RuriUser | Pv::RuriHost | Pv::RuriPort => {
                if self.msg.is_none() {
                    return;
                }
                let part = uri_part_of(&r.pv);
                let mut nb = self.take_buf();
                {
                    let cur = self.ruri();
                    text_of(kind, buf);
                    set_uri_part(
                        cur,
                        part,
                        (kind != Kind::Null).then_some(buf.as_slice()),
                        &mut nb,
                    );
                }
                if part == UriPart::Whole && kind == Kind::Null {
                    // `$ru = NULL` is refused by OpenSIPS; keep the current URI.
                    self.give_buf(nb);
                    return;
                }
                std::mem::swap(&mut self.ruri, &mut nb);
                self.ruri_set = true;
                self.give_buf(nb);
            }
            Pv::SocketOut(_) => {
                if kind == Kind::Null {
                    buf.clear();
                } else {
                    text_of(kind, buf);
                }
                match self.socket_fn {
                    Some(f) => {
                        if f(self, buf) < 0 {
                            self.emit_log(-1, b"ERROR: $socket_out: no such listening socket");
                        }
                    }
                    None => self.emit_log(-1, b"ERROR: $socket_out cannot be set here"),
                }
            }
            Pv::RuriQ => {
                self.ruri_q = as_int(kind, buf)
                    .and_then(|q| i32::try_from(q).ok())
                    .unwrap_or(-1)
            }
            Pv::Duri => {
                if kind == Kind::Null {
                    self.duri.clear();
                } else {
                    text_of(kind, buf);
                    std::mem::swap(&mut self.duri, buf);
                }
            }
            Pv::DuriHost | Pv::DuriPort => {
                let part = uri_part_of(&r.pv);
                let mut nb = self.take_buf();
                text_of(kind, buf);
                let base: &[u8] = if self.duri.is_empty() {
                    self.ruri_owned_fallback()
                } else {
                    &self.duri
                };
                let base = base.to_vec();
                set_uri_part(
                    &base,
                    part,
                    (kind != Kind::Null).then_some(buf.as_slice()),
                    &mut nb,
                );
                std::mem::swap(&mut self.duri, &mut nb);
                self.give_buf(nb);
            }
            Pv::MsgFlag(b) => {
                if truthy(kind, buf) {
                    self.flags |= 1 << b;
                } else {
                    self.flags &= !(1 << b);
                }
            }
            Pv::Branch(part) => self.branch_set(*part, &r.idx, idx, kind, buf),
            Pv::BranchFlag(bit) => {
                let on = truthy(kind, buf);
                let f = match idx {
                    Some(i) if i > 0 => {
                        match usize::try_from(i - 1).ok().filter(|&i| i < self.nbranches) {
                            Some(i) => &mut self.branches[i].flags,
                            None => return,
                        }
                    }
                    _ => &mut self.bflags,
                };
                if on {
                    *f |= 1 << bit;
                } else {
                    *f &= !(1 << bit);
                }
            }
            Pv::LogLevel => match kind {
                Kind::Null => self.prog.shared.set_log_level(2),
                _ => {
                    if let Some(l) = as_int(kind, buf).and_then(|l| i32::try_from(l).ok()) {
                        self.prog.shared.set_log_level(l);
                    }
                }
            },
            Pv::XlogLevel => {
                if let Some(l) = as_int(kind, buf).and_then(|l| i32::try_from(l).ok()) {
                    self.prog.shared.set_xlog_level(l);
                }
            }
            Pv::Shv(i) => self.prog.shared.shv_set(*i, kind, buf),
            _ => {}
        }
    }

    fn ruri_owned_fallback(&self) -> &[u8] {
        self.ruri()
    }

    fn avp_set(
        &mut self,
        id: u32,
        op: AssignOp,
        idx: Option<i64>,
        no_idx: bool,
        kind: Kind,
        buf: &mut Vec<u8>,
    ) {
        let Some(st) = self.avps.get_mut(id as usize) else {
            return;
        };
        match (op, kind, no_idx) {
            (AssignOp::SetAll, Kind::Null, _) => st.clear(),
            (AssignOp::SetAll, _, _) => {
                st.clear();
                st.push(kind, buf);
            }
            (_, Kind::Null, true) => st.pop(),
            (_, Kind::Null, false) => {
                if let Some(i) = idx {
                    st.remove(i);
                }
            }
            (_, _, true) => st.push(kind, buf),
            (_, _, false) => {
                if let Some(p) = idx.and_then(|i| st.pos(i)) {
                    let v = &mut st.items[p];
                    v.kind = kind;
                    std::mem::swap(&mut v.s, buf);
                }
            }
        }
    }

    fn branch_set(
        &mut self,
        part: BranchPart,
        _ridx: &Idx,
        idx: Option<i64>,
        kind: Kind,
        buf: &mut Vec<u8>,
    ) {
        text_of(kind, buf);
        if part == BranchPart::New {
            if kind != Kind::Null {
                let b = self.new_branch();
                b.uri.extend_from_slice(buf);
            }
            return;
        }
        let i = idx.unwrap_or(0);
        let n = i64::try_from(self.nbranches).unwrap_or(0);
        let i = if i < 0 { n + i } else { i };
        let Some(i) = usize::try_from(i).ok().filter(|&i| i < self.nbranches) else {
            return;
        };
        if kind == Kind::Null && part == BranchPart::Uri {
            crate::corefns::remove_branch(self, i);
            return;
        }
        let b = &mut self.branches[i];
        match part {
            BranchPart::Uri => std::mem::swap(&mut b.uri, buf),
            BranchPart::Duri => std::mem::swap(&mut b.duri, buf),
            BranchPart::Path => std::mem::swap(&mut b.path, buf),
            BranchPart::Q => {
                b.q = as_int(kind, buf)
                    .and_then(|q| i32::try_from(q).ok())
                    .unwrap_or(-1)
            }
            BranchPart::Flags => {
                b.flags = as_int(kind, buf)
                    .and_then(|f| u64::try_from(f).ok())
                    .unwrap_or(0)
            }
            BranchPart::Socket | BranchPart::New => {}
        }
        if part == BranchPart::Uri || part == BranchPart::Duri || part == BranchPart::Path {
            buf.clear();
        }
    }

    /// Appends an empty branch and returns it (buffers reused).
    pub(crate) fn new_branch(&mut self) -> &mut crate::cx::Branch {
        if self.nbranches == self.branches.len() {
            self.branches.push(crate::cx::Branch::default());
        }
        let b = &mut self.branches[self.nbranches];
        b.uri.clear();
        b.duri.clear();
        b.path.clear();
        b.q = -1;
        b.flags = 0;
        self.nbranches += 1;
        b
    }
}

/// `route`, `route[name]`, `failure_route[name]`, …
fn route_full_name(route: &Route, out: &mut Vec<u8>) {
    out.extend_from_slice(route.kind.keyword().as_bytes());
    if !(route.name.is_empty() || (route.kind == RouteKind::Request && route.name == "0")) {
        out.push(b'[');
        out.extend_from_slice(route.name.as_bytes());
        out.push(b']');
    }
}

fn text_of(kind: Kind, buf: &mut Vec<u8>) {
    if let Kind::Int(i) = kind {
        buf.clear();
        push_int(buf, i);
    }
}

fn put(out: &mut Vec<u8>, s: &[u8]) -> Kind {
    out.extend_from_slice(s);
    Kind::Str
}

fn opt(out: &mut Vec<u8>, s: Option<&[u8]>) -> Kind {
    match s {
        Some(s) => put(out, s),
        None => Kind::Null,
    }
}

pub(crate) fn write_q(out: &mut Vec<u8>, q: i32) {
    use std::io::Write as _;
    let q = q.clamp(0, 1000);
    if q == 1000 {
        out.push(b'1');
    } else {
        let _ = write!(out, "0.{:03}", q);
        while out.last() == Some(&b'0') {
            out.pop();
        }
        if out.last() == Some(&b'.') {
            out.push(b'0');
        }
    }
}

fn cmp_result(op: CmpOp, ka: Kind, a: &[u8], kb: Kind, b: &[u8], rhs_null: bool) -> bool {
    if rhs_null {
        return match op {
            CmpOp::Eq => ka == Kind::Null,
            _ => ka != Kind::Null,
        };
    }
    let o = compare(ka, a, kb, b);
    match op {
        CmpOp::Eq => o == Some(Ordering::Equal),
        CmpOp::Ne => o != Some(Ordering::Equal),
        CmpOp::Lt => o == Some(Ordering::Less),
        CmpOp::Le => matches!(o, Some(Ordering::Less | Ordering::Equal)),
        CmpOp::Gt => o == Some(Ordering::Greater),
        CmpOp::Ge => matches!(o, Some(Ordering::Greater | Ordering::Equal)),
        CmpOp::Match | CmpOp::NotMatch => false,
    }
}

/// Arithmetic: `+` concatenates when either side is a string that is not a number; other
/// operators work on integers. The result is left in `a`.
fn arith(op: BinOp, ka: Kind, a: &mut Vec<u8>, kb: Kind, b: &[u8]) -> Kind {
    let ia = match ka {
        Kind::Int(i) => Some(i),
        Kind::Null => Some(0),
        Kind::Str => None,
    };
    let ib = match kb {
        Kind::Int(i) => Some(i),
        Kind::Null => Some(0),
        Kind::Str => None,
    };
    if op == BinOp::Add && (ia.is_none() || ib.is_none()) {
        if let Kind::Int(i) = ka {
            a.clear();
            push_int(a, i);
        }
        if ka == Kind::Null {
            a.clear();
        }
        match kb {
            Kind::Int(i) => push_int(a, i),
            Kind::Str => a.extend_from_slice(b),
            Kind::Null => {}
        }
        return Kind::Str;
    }
    let x = ia.or_else(|| as_int(ka, a)).unwrap_or(0);
    let y = ib.or_else(|| as_int(kb, b)).unwrap_or(0);
    a.clear();
    let r = match op {
        BinOp::Add => x.wrapping_add(y),
        BinOp::Sub => x.wrapping_sub(y),
        BinOp::Mul => x.wrapping_mul(y),
        BinOp::Div => x.checked_div(y).unwrap_or(0),
        BinOp::Mod => x.checked_rem(y).unwrap_or(0),
        BinOp::BitAnd => x & y,
        BinOp::BitOr => x | y,
        BinOp::BitXor => x ^ y,
        BinOp::Shl => x.checked_shl(u32::try_from(y).unwrap_or(64)).unwrap_or(0),
        BinOp::Shr => x.checked_shr(u32::try_from(y).unwrap_or(64)).unwrap_or(0),
    };
    Kind::Int(r)
}

// ----- message helpers -----

pub(crate) fn headers_named<'a>(
    m: &'a SipMsg,
    h: &'a HdrName,
) -> impl Iterator<Item = &'a sipox_sip_msg::Header> + 'a {
    let kind = h.kind;
    m.headers().iter().filter(move |x| {
        if kind == HeaderKind::Other {
            x.kind == HeaderKind::Other && sipox_sip_msg::eq_ic(m.name(x), &h.name)
        } else {
            x.kind == kind
        }
    })
}

fn pick<'a>(
    m: &'a SipMsg,
    hs: impl Iterator<Item = &'a sipox_sip_msg::Header>,
    idx: Option<i64>,
    all: bool,
    out: &mut Vec<u8>,
) -> Kind {
    if all {
        let mut any = false;
        for h in hs {
            if any {
                out.push(b',');
            }
            out.extend_from_slice(m.value(h));
            any = true;
        }
        return if any { Kind::Str } else { Kind::Null };
    }
    let i = idx.unwrap_or(0);
    let found = if i >= 0 {
        hs.into_iter().nth(usize::try_from(i).unwrap_or(usize::MAX))
    } else {
        let v: smallvec_lite::Few<&sipox_sip_msg::Header> = hs.collect();
        let n = i64::try_from(v.len()).unwrap_or(0);
        usize::try_from(n + i).ok().and_then(|k| v.get(k).copied())
    };
    match found {
        Some(h) => put(out, m.value(h)),
        None => Kind::Null,
    }
}

fn hdr_idx(m: &SipMsg, kind: HeaderKind, idx: Option<i64>, all: bool, out: &mut Vec<u8>) -> Kind {
    pick(m, m.headers_of(kind), idx, all, out)
}

fn list_idx(m: &SipMsg, kind: HeaderKind, idx: Option<i64>, all: bool, out: &mut Vec<u8>) -> Kind {
    let buf = m.buf();
    if all {
        let mut any = false;
        for s in m.values(kind) {
            if any {
                out.push(b',');
            }
            out.extend_from_slice(s.of(buf));
            any = true;
        }
        return if any { Kind::Str } else { Kind::Null };
    }
    let i = idx.unwrap_or(0);
    let found = if i >= 0 {
        m.values(kind).nth(usize::try_from(i).unwrap_or(usize::MAX))
    } else {
        let n = i64::try_from(m.values(kind).count()).unwrap_or(0);
        usize::try_from(n + i)
            .ok()
            .and_then(|k| m.values(kind).nth(k))
    };
    match found {
        Some(s) => put(out, s.of(buf)),
        None => Kind::Null,
    }
}

fn naddr(m: &SipMsg, kind: HeaderKind, part: NaPart, out: &mut Vec<u8>) -> Kind {
    let na = match kind {
        HeaderKind::From => m.from().ok(),
        HeaderKind::To => m.to().ok(),
        _ => m.name_addrs(kind).next().and_then(Result::ok),
    };
    let Some(na) = na else {
        return Kind::Null;
    };
    match part {
        NaPart::Uri => put(out, na.uri().raw()),
        NaPart::User => opt(out, na.uri().user()),
        NaPart::Host => put(out, na.uri().host()),
        NaPart::Display => opt(out, na.display()),
        NaPart::Tag => opt(out, na.tag()),
    }
}

fn contact_field(m: &SipMsg, f: ContactField, idx: i64, out: &mut Vec<u8>) -> Kind {
    let c = if idx >= 0 {
        m.contacts().nth(usize::try_from(idx).unwrap_or(usize::MAX))
    } else {
        let n = i64::try_from(m.contacts().count()).unwrap_or(0);
        usize::try_from(n + idx)
            .ok()
            .and_then(|k| m.contacts().nth(k))
    };
    let Some(Ok(c)) = c else {
        return Kind::Null;
    };
    let sipox_sip_msg::ContactValue::Addr(na) = c.v else {
        return if f == ContactField::Uri {
            put(out, b"*")
        } else {
            Kind::Null
        };
    };
    let na = c.bind(na);
    match f {
        ContactField::Uri => put(out, na.uri().raw()),
        ContactField::Name => opt(out, na.display()),
        ContactField::Q => match na.param(b"q") {
            Some(Some(v)) => put(out, v),
            _ => Kind::Null,
        },
        ContactField::Expires => match na.param(b"expires") {
            Some(Some(v)) => put(out, v),
            _ => Kind::Null,
        },
        ContactField::Methods => match na.param(b"methods") {
            Some(Some(v)) => put(out, sipox_sip_msg::unquote(v)),
            _ => Kind::Null,
        },
        ContactField::Received => match na.param(b"received") {
            Some(Some(v)) => put(out, sipox_sip_msg::unquote(v)),
            _ => Kind::Null,
        },
        ContactField::Params => {
            let raw = na.params().raw();
            if raw.is_empty() {
                Kind::Null
            } else {
                put(out, raw.strip_prefix(b";").unwrap_or(raw))
            }
        }
    }
}

fn auth_part(m: &SipMsg, p: AuthPart, out: &mut Vec<u8>) -> Kind {
    let prefer = if m.method() == Some(sipox_sip_msg::Method::Register) {
        [HeaderKind::Authorization, HeaderKind::ProxyAuthorization]
    } else {
        [HeaderKind::ProxyAuthorization, HeaderKind::Authorization]
    };
    let Some(h) = prefer.iter().find_map(|k| m.header(*k)) else {
        if p == AuthPart::Acc {
            return naddr(m, HeaderKind::From, NaPart::User, out);
        }
        return Kind::Null;
    };
    let Ok(a) = sipox_sip_msg::parse_auth(m.buf(), h.value) else {
        return Kind::Null;
    };
    let a = m.bind(a);
    let user = a.username().map(sipox_sip_msg::unquote);
    let v = match p {
        AuthPart::WholeUser => user,
        AuthPart::Acc => user.map(|u| u.split(|&c| c == b'@').next().unwrap_or(u)),
        AuthPart::User => user.map(|u| u.split(|&c| c == b'@').next().unwrap_or(u)),
        AuthPart::Domain => {
            match user.and_then(|u| u.iter().position(|&c| c == b'@').map(|i| &u[i + 1..])) {
                Some(d) => Some(d),
                None => a.realm(),
            }
        }
        AuthPart::Realm => a.realm(),
        AuthPart::Uri => a.uri(),
        AuthPart::Nonce => a.nonce(),
        AuthPart::Response => a.response(),
        AuthPart::Cnonce => a.cnonce(),
        AuthPart::Opaque => a.opaque(),
        AuthPart::Alg => a.algorithm(),
        AuthPart::Qop => a.qop(),
        AuthPart::Nc => a.nc(),
    };
    opt(out, v.map(sipox_sip_msg::unquote))
}

fn color(c: &[u8], out: &mut Vec<u8>) {
    let code = |ch: u8| match ch {
        b's' => Some(0),
        b'r' => Some(1),
        b'g' => Some(2),
        b'y' => Some(3),
        b'b' => Some(4),
        b'p' => Some(5),
        b'c' => Some(6),
        b'w' => Some(7),
        _ => None,
    };
    out.extend_from_slice(b"\x1b[0");
    if let Some(f) = c.first().and_then(|&x| code(x)) {
        out.extend_from_slice(b";3");
        push_int(out, f);
    }
    if let Some(b) = c.get(1).and_then(|&x| code(x)) {
        out.extend_from_slice(b";4");
        push_int(out, b);
    }
    out.push(b'm');
}

// ----- URI parts -----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UriPart {
    Whole,
    User,
    Host,
    Port,
    Proto,
}

fn uri_part_of(pv: &Pv) -> UriPart {
    match pv {
        Pv::RuriUser | Pv::OuriUser => UriPart::User,
        Pv::RuriHost | Pv::OuriHost | Pv::DuriHost => UriPart::Host,
        Pv::RuriPort | Pv::OuriPort | Pv::DuriPort => UriPart::Port,
        Pv::RuriProto | Pv::OuriProto | Pv::DuriProto => UriPart::Proto,
        _ => UriPart::Whole,
    }
}

pub(crate) fn uri_part(u: &[u8], part: UriPart, out: &mut Vec<u8>) -> Kind {
    if part == UriPart::Whole {
        return put(out, u);
    }
    let Ok(p) = sipox_sip_msg::uri(u) else {
        return Kind::Null;
    };
    match part {
        UriPart::User => opt(out, p.user()),
        UriPart::Host => put(out, p.host()),
        UriPart::Port => match p.port() {
            Some(n) => Kind::Int(i64::from(n)),
            None => Kind::Null,
        },
        UriPart::Proto => match p.transport() {
            Some(t) => put(out, t),
            None => put(out, b"udp"),
        },
        UriPart::Whole => Kind::Null,
    }
}

/// Rebuilds a URI with one part replaced (`None` removes user or port).
pub(crate) fn set_uri_part(cur: &[u8], part: UriPart, new: Option<&[u8]>, out: &mut Vec<u8>) {
    out.clear();
    if part == UriPart::Whole {
        if let Some(n) = new {
            out.extend_from_slice(n);
        }
        return;
    }
    let Ok(p) = sipox_sip_msg::uri(cur) else {
        out.extend_from_slice(cur);
        return;
    };
    let u = p.v;
    let s = |sp: sipox_sip_msg::Span| sp.of(cur);
    out.extend_from_slice(s(u.scheme_span));
    out.push(b':');
    let user = if part == UriPart::User { new } else { p.user() };
    if let Some(us) = user.filter(|x| !x.is_empty()) {
        out.extend_from_slice(us);
        if let Some(pw) = p.password() {
            out.push(b':');
            out.extend_from_slice(pw);
        }
        out.push(b'@');
    }
    let host = if part == UriPart::Host {
        new.unwrap_or(b"")
    } else {
        p.host()
    };
    out.extend_from_slice(host);
    let port = if part == UriPart::Port {
        new.filter(|x| !x.is_empty() && *x != b"0")
    } else {
        u.port_span.map(|sp| sp.of(cur))
    };
    if let Some(pt) = port {
        out.push(b':');
        out.extend_from_slice(pt);
    }
    // Everything after host[:port] (params, headers) is kept verbatim.
    let tail_start = u.port_span.map_or(u.host.end, |sp| sp.end) as usize;
    if let Some(t) = cur.get(tail_start..u.span.end as usize) {
        out.extend_from_slice(t);
    }
}

/// A tiny "collect a few items" helper that avoids the heap for short lists.
mod smallvec_lite {
    /// Up to 16 items inline; more are dropped (header lists longer than that are rare and
    /// negative indexes into them fall back to `None`).
    pub(crate) struct Few<T: Copy> {
        items: [Option<T>; 16],
        len: usize,
    }

    impl<T: Copy> Few<T> {
        pub(crate) fn len(&self) -> usize {
            self.len
        }

        pub(crate) fn get(&self, i: usize) -> Option<&T> {
            self.items.get(i).and_then(Option::as_ref)
        }
    }

    impl<T: Copy> FromIterator<T> for Few<T> {
        fn from_iter<I: IntoIterator<Item = T>>(it: I) -> Self {
            let mut f = Self {
                items: [None; 16],
                len: 0,
            };
            for x in it {
                if f.len < 16 {
                    f.items[f.len] = Some(x);
                }
                f.len += 1;
            }
            f
        }
    }
}

/// A field of a socket (`$socket_in(...)` / `$socket_out(...)`).
fn sock_get(s: &crate::cx::Source, p: SockPart, out: &mut Vec<u8>) -> Kind {
    use std::io::Write as _;
    match p {
        SockPart::Whole => {
            let _ = write!(out, "{}:{}:{}", s.proto, s.local_ip, s.local_port);
            Kind::Str
        }
        SockPart::Ip | SockPart::AdvIp => {
            let _ = write!(out, "{}", s.local_ip);
            Kind::Str
        }
        SockPart::Port | SockPart::AdvPort => Kind::Int(i64::from(s.local_port)),
        SockPart::Proto => put(out, s.proto.as_bytes()),
        SockPart::Tag => Kind::Null,
        SockPart::Anycast => Kind::Int(0),
        SockPart::Af => put(
            out,
            if s.local_ip.is_ipv4() {
                b"INET".as_slice()
            } else {
                b"INET6".as_slice()
            },
        ),
    }
}
