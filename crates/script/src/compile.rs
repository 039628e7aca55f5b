//! The compiler: resolves an AST into a [`Program`]. Every problem becomes a diagnostic with
//! `file:line:col`, the offending text and a hint; all of them are reported.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use sipox_cfg_syntax as ast;
use sipox_cfg_syntax::{
    CaseValue, CmpOp, Config, Diagnostic, ExprKind, Format, FormatPart, Item, LogicOp, RouteKind,
    ScriptVar, SourceMap, Span, StmtKind, VarIndex,
};
use sipox_sip_msg::HeaderKind;

use crate::instances::Instances;
use crate::program::*;
use crate::registry::{
    Arg, Args, FixupCx, IntArg, ParamKind, RegexArg, Registry, ScriptFn, route_bit, route_mask,
};
use crate::shared::Shared;
use crate::trans::{IpNet, compile_trans};
use crate::value::{Val, parse_int};

/// Compile options.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// Overrides `log_level` from the script (e.g. from the command line).
    pub log_level: Option<i32>,
    /// The module instances the runtime created at start ([`Instances`]).
    pub instances: Instances,
    /// A configuration check (`sipox -c`) without started modules: fixups that need a
    /// module's instance are skipped instead of failing.
    pub check_only: bool,
}

/// The result of compiling: the program when there were no errors, and every diagnostic.
#[derive(Debug)]
pub struct Compiled {
    /// The program (`None` on errors).
    pub program: Option<Arc<Program>>,
    /// Errors and warnings.
    pub diagnostics: Vec<Diagnostic>,
}

/// Compiles a parsed configuration.
pub fn compile(
    cfg: &Config,
    sources: &SourceMap,
    reg: &Registry,
    opts: &CompileOptions,
) -> Compiled {
    let mut c = Compiler::new(reg, sources);
    c.instances = opts.instances.clone();
    c.check_only = opts.check_only;
    let prog = c.run(cfg, opts);
    let has_err = c.diags.iter().any(Diagnostic::is_error);
    Compiled {
        program: (!has_err).then(|| Arc::new(prog)),
        diagnostics: c.diags,
    }
}

/// Parses and compiles a configuration text with the standard registry; on failure returns
/// every diagnostic rendered.
pub fn compile_str(name: &str, text: &str) -> Result<Arc<Program>, String> {
    let parsed = sipox_cfg_syntax::parse_str(name, text);
    if parsed.has_errors() {
        return Err(parsed.render_diagnostics());
    }
    let c = compile(
        &parsed.ast,
        &parsed.sources,
        &Registry::standard(),
        &CompileOptions::default(),
    );
    match c.program {
        Some(p) => Ok(p),
        None => Err(sipox_cfg_syntax::render_all(
            &c.diagnostics,
            &parsed.sources,
        )),
    }
}

/// Edit distance, for "did you mean" hints.
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The nearest candidate within a reasonable distance.
pub(crate) fn nearest<'a>(name: &str, cands: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let max = (name.len() / 3).max(2);
    cands
        .into_iter()
        .map(|c| (distance(name, c), c))
        .filter(|(d, _)| *d <= max)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Names of the core pseudo-variable classes (for hints and `$name` resolution).
pub const CORE_PVS: &[&str] = &[
    "ru",
    "ruri",
    "rU",
    "ruri.user",
    "rd",
    "ruri.domain",
    "rp",
    "rP",
    "ru_q",
    "ou",
    "ouri",
    "oU",
    "od",
    "op",
    "oP",
    "du",
    "duri",
    "dd",
    "dp",
    "dP",
    "fu",
    "from",
    "fU",
    "from.user",
    "fd",
    "from.domain",
    "fn",
    "ft",
    "tu",
    "to",
    "tU",
    "to.user",
    "td",
    "to.domain",
    "tn",
    "tt",
    "ci",
    "cs",
    "rm",
    "cl",
    "cT",
    "ua",
    "ct",
    "ct.fields",
    "path",
    "rt",
    "ai",
    "re",
    "pu",
    "pU",
    "pd",
    "pn",
    "di",
    "dir",
    "dip",
    "hdr",
    "hdrcnt",
    "hdr_name",
    "mb",
    "ml",
    "mi",
    "rb",
    "rs",
    "rr",
    "msg.type",
    "msg.is_request",
    "msg.flag",
    "mf",
    "bf",
    "si",
    "src_ip",
    "sp",
    "socket_in",
    "socket_out",
    "au",
    "aU",
    "ar",
    "ad",
    "adu",
    "an",
    "auth.nonce",
    "auth.resp",
    "auth.cnonce",
    "auth.opaque",
    "auth.alg",
    "auth.qop",
    "auth.nc",
    "Au",
    "branch",
    "branch.flag",
    "ds",
    "var",
    "avp",
    "param",
    "rc",
    "retcode",
    "route",
    "route.name",
    "route.type",
    "cfg_line",
    "cfg_file",
    "argv",
    "Ts",
    "Tsm",
    "Tf",
    "TS",
    "time",
    "pp",
    "log_level",
    "xlog_level",
    "C",
    "err.class",
    "err.level",
    "err.info",
    "err.rcode",
    "err.rreason",
    "shv",
    "env",
    "RANDOM",
    "ctime",
];

struct Compiler<'a> {
    reg: &'a Registry,
    sources: &'a SourceMap,
    diags: Vec<Diagnostic>,
    vars: Vec<String>,
    avps: Vec<String>,
    flags: Vec<String>,
    bflags: Vec<String>,
    shv: Vec<String>,
    shv_init: Vec<Val>,
    route_ids: HashMap<(RouteKind, String), RouteId>,
    loaded: Vec<String>,
    globals: Vec<(String, ast::Value)>,
    modparams: Vec<(String, String, ast::Value)>,
    mask: u16,
    unimpl: BTreeSet<(&'static str, &'static str)>,
    shared: Arc<Shared>,
    instances: Instances,
    check_only: bool,
}

impl FixupCx for Compiler<'_> {
    fn flag_bit(&mut self, name: &str) -> Result<u32, String> {
        bit_of(&mut self.flags, name)
    }

    fn bflag_bit(&mut self, name: &str) -> Result<u32, String> {
        bit_of(&mut self.bflags, name)
    }

    fn route(&self, kind: RouteKind, name: &str) -> Option<RouteId> {
        self.route_ids.get(&(kind, name.to_owned())).copied()
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn avp_id(&mut self, name: &str) -> u32 {
        slot_of(&mut self.avps, name)
    }

    fn globals(&self) -> Vec<(String, ast::Value)> {
        self.globals.clone()
    }

    fn instances(&self) -> &Instances {
        &self.instances
    }

    fn modparam(&self, module: &str, name: &str) -> Option<ast::Value> {
        self.modparams
            .iter()
            .rev()
            .find(|(m, p, _)| m == module && p == name)
            .map(|(_, _, v)| v.clone())
    }

    fn pv_spec(&mut self, text: &str) -> Result<PvRef, String> {
        let v = sipox_cfg_syntax::parse_var(text.trim())?;
        self.pv(&v)
            .ok_or_else(|| format!("bad pseudo-variable {text}"))
    }
}

fn bit_of(v: &mut Vec<String>, name: &str) -> Result<u32, String> {
    if let Some(i) = v.iter().position(|n| n == name) {
        return Ok(u32::try_from(i).unwrap_or(0));
    }
    if v.len() >= 64 {
        return Err(format!("too many flags (max 64) defining '{name}'"));
    }
    v.push(name.to_owned());
    Ok(u32::try_from(v.len() - 1).unwrap_or(0))
}

fn slot_of(v: &mut Vec<String>, name: &str) -> u32 {
    if let Some(i) = v.iter().position(|n| n == name) {
        return u32::try_from(i).unwrap_or(0);
    }
    v.push(name.to_owned());
    u32::try_from(v.len() - 1).unwrap_or(0)
}

fn route_key(b: &ast::RouteBlock) -> String {
    match (&b.name, b.kind) {
        (None, RouteKind::Request) => "0".to_owned(),
        (None, _) => String::new(),
        (Some(n), _) => n.clone(),
    }
}

/// Parses an `L_ERR`-style or numeric log level.
pub(crate) fn log_level_of(s: &str) -> Option<i32> {
    Some(match s.trim() {
        "L_ALERT" => -3,
        "L_CRIT" => -2,
        "L_ERR" => -1,
        "L_WARN" => 1,
        "L_NOTICE" => 2,
        "L_INFO" => 3,
        "L_DBG" => 4,
        o => o.parse().ok()?,
    })
}

impl<'a> Compiler<'a> {
    fn new(reg: &'a Registry, sources: &'a SourceMap) -> Self {
        Self {
            reg,
            sources,
            diags: Vec::new(),
            vars: Vec::new(),
            avps: Vec::new(),
            flags: Vec::new(),
            bflags: Vec::new(),
            shv: Vec::new(),
            shv_init: Vec::new(),
            route_ids: HashMap::new(),
            loaded: Vec::new(),
            globals: Vec::new(),
            modparams: Vec::new(),
            mask: route_mask::ALL,
            unimpl: BTreeSet::new(),
            shared: Arc::new(Shared::default()),
            instances: Instances::default(),
            check_only: false,
        }
    }

    fn err(&mut self, span: Span, msg: impl Into<String>, hint: Option<String>) {
        let found = self.sources.snippet(span).to_owned();
        let mut d = Diagnostic::error(span, msg);
        if !found.is_empty() {
            d = d.with_found(found);
        }
        if let Some(h) = hint {
            d = d.with_hint(h);
        }
        self.diags.push(d);
    }

    fn line(&self, span: Span) -> u32 {
        u32::try_from(self.sources.location(span).line).unwrap_or(0)
    }

    fn run(&mut self, cfg: &Config, opts: &CompileOptions) -> Program {
        let mut log_level = 2;
        let mut xlog_level = None;
        let mut max_while = 10_000u32;
        // Pass 1: globals, modules, route names.
        let mut blocks = Vec::new();
        for item in &cfg.items {
            match item {
                Item::Param(p) => {
                    self.globals.push((p.name.clone(), p.value.clone()));
                    let iv = match &p.value {
                        ast::Value::Int(i) => Some(*i),
                        ast::Value::Bool(b) => Some(i64::from(*b)),
                        _ => None,
                    };
                    match (p.name.as_str(), iv) {
                        ("log_level" | "debug", Some(i)) => {
                            log_level = i32::try_from(i).unwrap_or(2);
                        }
                        ("xlog_level", Some(i)) => xlog_level = i32::try_from(i).ok(),
                        ("max_while_loops", Some(i)) => {
                            max_while = u32::try_from(i).unwrap_or(10_000);
                        }
                        _ => {}
                    }
                }
                Item::LoadModule(m) => self.load_module(m),
                Item::ModParam(_) => {}
                Item::Route(b) => {
                    let key = (b.kind, route_key(b));
                    if self.route_ids.contains_key(&key) {
                        let what = b.name.as_deref().unwrap_or("");
                        self.err(
                            b.name_span.unwrap_or(b.span),
                            format!("duplicate {}[{what}]", b.kind.keyword()),
                            None,
                        );
                        continue;
                    }
                    let id = RouteId(u32::try_from(blocks.len()).unwrap_or(0));
                    self.route_ids.insert(key, id);
                    blocks.push(b);
                }
            }
        }
        for item in &cfg.items {
            if let Item::ModParam(mp) = item {
                self.modparam(mp);
            }
        }
        let log_level = opts.log_level.unwrap_or(log_level);
        let masks = self.route_masks(&blocks);
        // Pass 2: bodies.
        let mut routes = Vec::with_capacity(blocks.len());
        for (i, b) in blocks.iter().enumerate() {
            self.mask = masks[i];
            let body = self.block(&b.body);
            routes.push(Route {
                kind: b.kind,
                name: route_key(b),
                body,
            });
        }
        let mut shared = Shared::new(log_level, 10);
        shared.set_xlog_level(xlog_level.unwrap_or(log_level));
        if let Some(p) = self.modparam_int("cfgutils", "initial_probability") {
            shared = Shared::new(log_level, u32::try_from(p).unwrap_or(10));
            shared.set_xlog_level(xlog_level.unwrap_or(log_level));
        }
        shared.set_shv_names(
            std::mem::take(&mut self.shv),
            std::mem::take(&mut self.shv_init),
        );
        // The compile-time Shared was only a placeholder for fixups; the program gets its own.
        Program {
            routes,
            var_names: std::mem::take(&mut self.vars),
            avp_names: std::mem::take(&mut self.avps),
            flag_names: std::mem::take(&mut self.flags),
            bflag_names: std::mem::take(&mut self.bflags),
            shared: Arc::new(shared),
            max_while_loops: max_while,
            unimplemented: self.unimpl.iter().copied().collect(),
            globals: std::mem::take(&mut self.globals),
            modules: self.loaded.clone(),
        }
    }

    fn modparam_int(&self, m: &str, p: &str) -> Option<i64> {
        self.modparams
            .iter()
            .rev()
            .find(|(mm, pp, _)| mm == m && pp == p)
            .and_then(|(_, _, v)| match v {
                ast::Value::Int(i) => Some(*i),
                ast::Value::Bool(b) => Some(i64::from(*b)),
                ast::Value::Str(s) => s.trim().parse().ok(),
                _ => None,
            })
    }

    fn load_module(&mut self, m: &ast::LoadModule) {
        if self.reg.module(&m.name).is_some() {
            if !self.loaded.contains(&m.name) {
                self.loaded.push(m.name.clone());
            }
        } else {
            let hint = nearest(&m.name, self.reg.module_names())
                .map(|n| format!("did you mean \"{n}.so\"?"));
            self.err(m.span, format!("unknown module '{}'", m.name), hint);
        }
    }

    fn modparam(&mut self, mp: &ast::ModParam) {
        let re = regex::Regex::new(&format!("^(?:{})$", mp.module));
        let matched: Vec<String> = match &re {
            Ok(re) => self
                .loaded
                .iter()
                .filter(|m| re.is_match(m))
                .cloned()
                .collect(),
            Err(_) => self
                .loaded
                .iter()
                .filter(|m| **m == mp.module)
                .cloned()
                .collect(),
        };
        if matched.is_empty() {
            let hint = match nearest(&mp.module, self.loaded.iter().map(String::as_str)) {
                Some(n) => Some(format!("did you mean \"{n}\"?")),
                None if self.reg.module(&mp.module).is_some() => {
                    Some(format!("add loadmodule \"{}.so\"", mp.module))
                }
                None => None,
            };
            self.err(
                mp.span,
                format!("modparam for module '{}' which is not loaded", mp.module),
                hint,
            );
            return;
        }
        for m in matched {
            let Some(def) = self.reg.module(&m) else {
                continue;
            };
            if def.params.is_empty() || def.params.contains(&mp.param.as_str()) {
                self.modparams
                    .push((m.clone(), mp.param.clone(), mp.value.clone()));
                if m == "cfgutils" && (mp.param == "shvset" || mp.param == "varset") {
                    self.cfgutils_set(mp);
                }
                continue;
            }
            let hint = nearest(&mp.param, def.params.iter().copied())
                .map(|n| format!("did you mean \"{n}\"?"));
            self.err(
                mp.span,
                format!("module '{m}' has no parameter '{}'", mp.param),
                hint,
            );
        }
    }

    /// `modparam("cfgutils", "shvset"|"varset", "name=i:1")`.
    fn cfgutils_set(&mut self, mp: &ast::ModParam) {
        let ast::Value::Str(s) = &mp.value else {
            self.err(mp.span, "expected a \"name=type:value\" string", None);
            return;
        };
        let Some((name, rest)) = s.split_once('=') else {
            self.err(mp.span, "expected \"name=type:value\"", None);
            return;
        };
        let val = match rest.split_once(':') {
            Some(("i" | "I", v)) => match v.trim().parse() {
                Ok(i) => Val::int(i),
                Err(_) => {
                    self.err(mp.span, format!("bad integer '{v}'"), None);
                    return;
                }
            },
            Some(("s" | "S", v)) => Val::str(v),
            _ => Val::str(rest),
        };
        if mp.param == "shvset" {
            let i = slot_of(&mut self.shv, name.trim()) as usize;
            if self.shv_init.len() <= i {
                self.shv_init.resize(i + 1, Val::default());
            }
            self.shv_init[i] = val;
        } else {
            // varset: $var initial values are not kept (workers start with NULL); record the
            // slot so the name resolves.
            slot_of(&mut self.vars, name.trim());
        }
    }

    /// Route types each block can run in: top-level blocks their own; `route[x]` the union
    /// of its callers'.
    fn route_masks(&self, blocks: &[&ast::RouteBlock]) -> Vec<u16> {
        let mut masks: Vec<u16> = blocks
            .iter()
            .map(|b| {
                if b.kind == RouteKind::Request && !b.is_main() {
                    0
                } else {
                    route_bit(b.kind)
                }
            })
            .collect();
        let mut calls: Vec<Vec<usize>> = vec![Vec::new(); blocks.len()];
        for (i, b) in blocks.iter().enumerate() {
            let mut names = Vec::new();
            collect_route_calls(&b.body, &mut names);
            for n in names {
                if let Some(id) = self.route_ids.get(&(RouteKind::Request, n)) {
                    calls[i].push(id.0 as usize);
                }
            }
        }
        loop {
            let mut changed = false;
            for i in 0..blocks.len() {
                for &j in &calls[i] {
                    let new = masks[j] | masks[i];
                    if new != masks[j] {
                        masks[j] = new;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        // A sub-route nobody calls statically may be called by a dynamic name: allow all.
        for m in &mut masks {
            if *m == 0 {
                *m = route_mask::ALL;
            }
        }
        masks
    }

    // ----- statements -----

    fn block(&mut self, b: &ast::Block) -> Block {
        b.stmts.iter().filter_map(|s| self.stmt(s)).collect()
    }

    fn stmt(&mut self, s: &ast::Stmt) -> Option<Stmt> {
        Some(match &s.kind {
            StmtKind::Cmd(c) => match c {
                ast::Cmd::Return(e) => Stmt::Return(e.as_ref().map(|e| Box::new(self.expr(e)))),
                ast::Cmd::Exit => Stmt::Exit,
                ast::Cmd::Drop => Stmt::Drop,
                _ => Stmt::Expr(self.cmd(c, s.span)),
            },
            StmtKind::Assign(a) => Stmt::Assign(Box::new(self.assign(a, s.span)?)),
            StmtKind::If { cond, then, els } => Stmt::If(
                Box::new(self.expr(cond)),
                self.block(then),
                els.as_ref().map(|b| self.block(b)).unwrap_or_default(),
            ),
            StmtKind::While { cond, body } => Stmt::While {
                cond: Box::new(self.expr(cond)),
                body: self.block(body),
                line: self.line(s.span),
            },
            StmtKind::ForEach { var, source, body } => Stmt::ForEach {
                var: Box::new(self.pv(var)?),
                src: Box::new(self.pv(source)?),
                body: self.block(body),
            },
            StmtKind::Switch {
                subject,
                cases,
                default,
            } => Stmt::Switch {
                subject: Box::new(self.pv(subject)?),
                cases: cases
                    .iter()
                    .map(|c| {
                        let v = match &c.value {
                            CaseValue::Int(i) => CaseVal::Int(*i),
                            CaseValue::Str(s) => CaseVal::Str(s.as_bytes().into()),
                        };
                        (v, self.block(&c.body))
                    })
                    .collect(),
                default: default.as_ref().map(|b| self.block(b)),
            },
            StmtKind::Break => Stmt::Break,
        })
    }

    fn assign(&mut self, a: &ast::Assign, span: Span) -> Option<AssignNode> {
        let lhs = self.pv(&a.lhs)?;
        if !is_writable(&lhs.pv) {
            self.err(
                a.lhs.span,
                format!("${} is read-only", a.lhs.class),
                Some("only writable variables may be assigned".to_owned()),
            );
            return None;
        }
        let _ = span;
        Some(AssignNode {
            lhs,
            op: a.op,
            rhs: self.expr(&a.rhs),
        })
    }

    // ----- expressions -----

    fn expr(&mut self, e: &ast::Expr) -> Expr {
        match &e.kind {
            ExprKind::Int(i) => Expr::Int(*i),
            ExprKind::Bool(b) => Expr::Int(i64::from(*b)),
            ExprKind::Null => Expr::Null,
            ExprKind::Str(s) => {
                let f = self.fmt_str(s, e.span);
                match f.as_const() {
                    Some(c) => Expr::Str(c.into()),
                    None => Expr::Fmt(f),
                }
            }
            ExprKind::Ip(s) | ExprKind::Net(s) => Expr::Str(s.as_bytes().into()),
            ExprKind::Var(v) => match self.pv(v) {
                Some(p) => Expr::Pv(Box::new(p)),
                None => Expr::Null,
            },
            ExprKind::Cmd(c) => match &**c {
                ast::Cmd::Return(_) | ast::Cmd::Exit | ast::Cmd::Drop => {
                    let st = match &**c {
                        ast::Cmd::Return(r) => {
                            Stmt::Return(r.as_ref().map(|e| Box::new(self.expr(e))))
                        }
                        ast::Cmd::Exit => Stmt::Exit,
                        _ => Stmt::Drop,
                    };
                    Expr::Control(Box::new(st))
                }
                other => self.cmd(other, e.span),
            },
            ExprKind::Assign(a) => match self.assign(a, e.span) {
                Some(n) => Expr::Assign(Box::new(n)),
                None => Expr::Null,
            },
            ExprKind::Not(x) => Expr::Not(Box::new(self.expr(x))),
            ExprKind::BitNot(x) => Expr::BitNot(Box::new(self.expr(x))),
            ExprKind::Logic(op, a, b) => {
                let (a, b) = (Box::new(self.expr(a)), Box::new(self.expr(b)));
                match op {
                    LogicOp::And => Expr::And(a, b),
                    LogicOp::Or => Expr::Or(a, b),
                }
            }
            ExprKind::Compare(op, a, b) => self.compare(*op, a, b),
            ExprKind::Binary(op, a, b) => {
                Expr::Bin(*op, Box::new(self.expr(a)), Box::new(self.expr(b)))
            }
            ExprKind::Test(x) | ExprKind::Paren(x) => self.expr(x),
        }
    }

    fn compare(&mut self, op: CmpOp, a: &ast::Expr, b: &ast::Expr) -> Expr {
        let left = Box::new(self.expr(a));
        if let ExprKind::Net(n) = &b.kind
            && matches!(op, CmpOp::Eq | CmpOp::Ne)
        {
            return match IpNet::parse(n) {
                Some(net) => Expr::InNet(left, net, op == CmpOp::Ne),
                None => {
                    self.err(b.span, format!("bad IP network '{n}'"), None);
                    Expr::Null
                }
            };
        }
        if matches!(op, CmpOp::Match | CmpOp::NotMatch) {
            let neg = op == CmpOp::NotMatch;
            let right = self.expr(b);
            let operand = match &right {
                Expr::Str(s) => match compile_regex(&String::from_utf8_lossy(s)) {
                    Ok(r) => RegexOperand::Const(r),
                    Err(m) => {
                        self.err(b.span, format!("bad regular expression: {m}"), None);
                        return Expr::Null;
                    }
                },
                _ => RegexOperand::Dyn(Box::new(right)),
            };
            return Expr::Match(left, operand, neg);
        }
        Expr::Cmp(op, left, Box::new(self.expr(b)))
    }

    fn cmd(&mut self, c: &ast::Cmd, span: Span) -> Expr {
        match c {
            ast::Cmd::Call(call) => self.call(call),
            ast::Cmd::Route(rc) => {
                let target = match &rc.target {
                    ast::RouteTarget::Name(n) => match self.route(RouteKind::Request, n) {
                        Some(id) => RouteTarget::Id(id),
                        None => {
                            let names: Vec<&str> = self
                                .route_ids
                                .keys()
                                .filter(|(k, _)| *k == RouteKind::Request)
                                .map(|(_, n)| n.as_str())
                                .collect();
                            let hint =
                                nearest(n, names).map(|x| format!("did you mean route({x})?"));
                            self.err(rc.span, format!("unknown route '{n}'"), hint);
                            return Expr::Null;
                        }
                    },
                    ast::RouteTarget::Format(f) => RouteTarget::Dyn(self.fmt(f)),
                    ast::RouteTarget::Var(v) => match self.pv(v) {
                        Some(p) => RouteTarget::Dyn(Fmt {
                            parts: Box::new([FmtPart::Pv(Box::new(p))]),
                        }),
                        None => return Expr::Null,
                    },
                };
                let args = rc.args.iter().map(|a| self.expr(a)).collect();
                Expr::Route(Box::new(RouteCallNode { target, args }))
            }
            ast::Cmd::Return(_) | ast::Cmd::Exit | ast::Cmd::Drop => Expr::Null,
            ast::Cmd::Assert { cond, message } => {
                let enabled = self.globals.iter().any(|(n, v)| {
                    n == "enable_asserts"
                        && matches!(v, ast::Value::Int(1) | ast::Value::Bool(true))
                });
                if enabled {
                    Expr::Assert(Box::new(self.expr(cond)), message.as_bytes().into())
                } else {
                    Expr::Int(1)
                }
            }
            ast::Cmd::Async {
                call,
                resume,
                timeout: _,
            } => {
                let f = self.call(call);
                let Some(id) = self.route(RouteKind::Request, resume) else {
                    self.err(span, format!("unknown resume route '{resume}'"), None);
                    return Expr::Null;
                };
                // Run synchronously: the function, then the resume route, then stop.
                Expr::And(
                    Box::new(Expr::Or(Box::new(f), Box::new(Expr::Int(1)))),
                    Box::new(Expr::Control(Box::new(Stmt::Expr(Expr::Route(Box::new(
                        RouteCallNode {
                            target: RouteTarget::Id(id),
                            args: Box::new([]),
                        },
                    )))))),
                )
                .async_then_exit()
            }
            ast::Cmd::Launch {
                call,
                report,
                param,
            } => {
                let f = self.call(call);
                match report {
                    Some(r) => {
                        let Some(id) = self.route(RouteKind::Request, r) else {
                            self.err(span, format!("unknown report route '{r}'"), None);
                            return Expr::Null;
                        };
                        let args: Box<[Expr]> = param.iter().map(|p| self.expr(p)).collect();
                        Expr::Or(
                            Box::new(Expr::And(Box::new(f), Box::new(Expr::Int(0)))),
                            Box::new(Expr::Route(Box::new(RouteCallNode {
                                target: RouteTarget::Id(id),
                                args,
                            }))),
                        )
                    }
                    None => f,
                }
            }
        }
    }

    fn call(&mut self, call: &ast::Call) -> Expr {
        match call.name.as_str() {
            "xlog" | "xdbg" | "log" => return self.log_call(call),
            _ => {}
        }
        let reg = self.reg;
        let def: Option<&dyn ScriptFn> = reg
            .core_fn(&call.name)
            .map(|f| f as &dyn ScriptFn)
            .or_else(|| {
                self.loaded.iter().find_map(|m| {
                    reg.module(m)?
                        .fns
                        .iter()
                        .find(|f| f.sig.name == call.name)
                        .map(|f| f as &dyn ScriptFn)
                })
            });
        let Some(def) = def else {
            let owner = reg
                .modules
                .iter()
                .find(|m| m.fns.iter().any(|f| f.sig.name == call.name));
            match owner {
                Some(m) => self.err(
                    call.name_span,
                    format!(
                        "function '{}' is exported by module '{}', which is not loaded",
                        call.name, m.name
                    ),
                    Some(format!("add loadmodule \"{}.so\"", m.name)),
                ),
                None => {
                    let mut names: Vec<&str> = reg.core.iter().map(|f| f.sig.name).collect();
                    for m in &self.loaded {
                        if let Some(d) = reg.module(m) {
                            names.extend(d.fns.iter().map(|f| f.sig.name));
                        }
                    }
                    names.extend(["xlog", "xdbg", "log", "route"]);
                    let hint = nearest(&call.name, names).map(|n| format!("did you mean {n}()?"));
                    self.err(
                        call.name_span,
                        format!("unknown function '{}'", call.name),
                        hint,
                    );
                }
            }
            return Expr::Null;
        };
        let sig = def.sig().clone();
        if sig.routes & self.mask != self.mask {
            let bad = [
                RouteKind::Request,
                RouteKind::Failure,
                RouteKind::OnReply,
                RouteKind::Branch,
                RouteKind::Error,
                RouteKind::Local,
                RouteKind::Startup,
                RouteKind::Timer,
                RouteKind::Event,
            ]
            .into_iter()
            .find(|k| self.mask & route_bit(*k) != 0 && sig.routes & route_bit(*k) == 0)
            .map_or("this", RouteKind::keyword);
            self.err(
                call.name_span,
                format!("function '{}' cannot be used in {bad} blocks", sig.name),
                None,
            );
        }
        let n = call.args.len();
        let min = sig.min_args();
        // `f()` parses as zero args; a single omitted arg `f( )` likewise.
        let given = if n == 1 && call.args[0].is_none() {
            0
        } else {
            n
        };
        if given > sig.params.len() || given < min {
            let want = if min == sig.params.len() {
                format!("{min}")
            } else {
                format!("{min} to {}", sig.params.len())
            };
            self.err(
                call.span,
                format!(
                    "function '{}' takes {want} argument(s), {given} given",
                    sig.name
                ),
                None,
            );
            return Expr::Null;
        }
        let mut args = Vec::with_capacity(sig.params.len());
        let mut ok = true;
        for (i, p) in sig.params.iter().enumerate() {
            let a = call.args.get(i).and_then(Option::as_ref);
            match a {
                None if !p.optional && i < given => {
                    self.err(
                        call.span,
                        format!("argument {} of '{}' may not be empty", i + 1, sig.name),
                        None,
                    );
                    ok = false;
                    args.push(Arg::None);
                }
                None => args.push(Arg::None),
                Some(e) => match self.arg(p.kind, e) {
                    Some(a) => args.push(a),
                    None => {
                        ok = false;
                        args.push(Arg::None);
                    }
                },
            }
        }
        if !ok {
            return Expr::Null;
        }
        if !def.implemented() {
            self.unimpl.insert((sig.module, sig.name));
        }
        match def.compile(Args { args, cx: self }) {
            Ok(c) => Expr::Call(Box::new(CallNode {
                name: sig.name,
                call: c,
            })),
            // `sipox -c` does not start modules (nor does `opensips -c` run their init):
            // a fixup that needs the module's instance is skipped, every other one checked.
            Err(e) if self.check_only && self.instances.is_empty() && e.is_not_started() => {
                Expr::Null
            }
            Err(e) => {
                let span = e
                    .arg
                    .and_then(|i| call.args.get(i).and_then(Option::as_ref))
                    .map_or(call.span, |a| a.span);
                self.err(span, format!("{}(): {}", sig.name, e.message), None);
                Expr::Null
            }
        }
    }

    fn arg(&mut self, kind: ParamKind, e: &ast::Expr) -> Option<Arg> {
        let bad = |c: &mut Self, what: &str| {
            c.err(e.span, format!("expected {what}"), None);
            None
        };
        match (kind, &e.kind) {
            (ParamKind::Int, ExprKind::Int(i)) => Some(Arg::Int(IntArg::Const(*i))),
            (ParamKind::Int, ExprKind::Bool(b)) => Some(Arg::Int(IntArg::Const(i64::from(*b)))),
            (ParamKind::Int, ExprKind::Str(s)) => match parse_int(s.trim().as_bytes()) {
                Some(i) => Some(Arg::Int(IntArg::Const(i))),
                None => {
                    let f = parse_fmt_text(s);
                    match f.as_var() {
                        Some(v) => Some(Arg::Int(IntArg::Dyn(Box::new(self.pv(v)?)))),
                        None => bad(self, "an integer"),
                    }
                }
            },
            (ParamKind::Int, ExprKind::Var(v)) => {
                Some(Arg::Int(IntArg::Dyn(Box::new(self.pv(v)?))))
            }
            (ParamKind::Int, _) => bad(self, "an integer"),
            (ParamKind::Var, ExprKind::Var(v)) => {
                let p = self.pv(v)?;
                if !is_writable(&p.pv) {
                    self.err(e.span, format!("${} is read-only", v.class), None);
                    return None;
                }
                Some(Arg::Var(Box::new(p)))
            }
            (ParamKind::Var, ExprKind::Str(s)) if s.starts_with('$') => {
                let v = match sipox_cfg_syntax::parse_var(s) {
                    Ok(v) => v,
                    Err(m) => {
                        self.err(e.span, m, None);
                        return None;
                    }
                };
                let p = self.pv_at(&v, e.span)?;
                Some(Arg::Var(Box::new(p)))
            }
            (ParamKind::Var, _) => bad(self, "a variable"),
            (ParamKind::StaticStr, ExprKind::Str(s)) => {
                let f = parse_fmt_text(s);
                if f.is_static() {
                    Some(Arg::Static(s.as_bytes().into()))
                } else {
                    bad(self, "a constant string (no variables)")
                }
            }
            (ParamKind::StaticStr, ExprKind::Int(i)) => {
                Some(Arg::Static(i.to_string().into_bytes().into()))
            }
            (ParamKind::StaticStr, ExprKind::Bool(b)) => Some(Arg::Static(
                if *b { b"1".as_slice() } else { b"0".as_slice() }.into(),
            )),
            (ParamKind::StaticStr, _) => bad(self, "a constant string"),
            (ParamKind::Regex, ExprKind::Str(s)) => {
                let f = self.fmt_str(s, e.span);
                match f.as_const() {
                    Some(c) => match compile_regex(&String::from_utf8_lossy(c)) {
                        Ok(r) => Some(Arg::Regex(RegexArg::Const(r))),
                        Err(m) => {
                            self.err(e.span, format!("bad regular expression: {m}"), None);
                            None
                        }
                    },
                    None => Some(Arg::Regex(RegexArg::Dyn(f))),
                }
            }
            (ParamKind::Regex, ExprKind::Var(v)) => Some(Arg::Regex(RegexArg::Dyn(Fmt {
                parts: Box::new([FmtPart::Pv(Box::new(self.pv(v)?))]),
            }))),
            (ParamKind::Regex, _) => bad(self, "a regular expression"),
            (ParamKind::Str | ParamKind::Any, ExprKind::Str(s)) => {
                Some(Arg::Str(self.fmt_str(s, e.span)))
            }
            (ParamKind::Str | ParamKind::Any, ExprKind::Int(i)) => {
                Some(Arg::Str(Fmt::literal(i.to_string().as_bytes())))
            }
            (ParamKind::Str | ParamKind::Any, ExprKind::Bool(b)) => {
                Some(Arg::Str(Fmt::literal(if *b { b"1" } else { b"0" })))
            }
            (ParamKind::Str | ParamKind::Any, ExprKind::Null) => Some(Arg::None),
            (ParamKind::Str | ParamKind::Any, ExprKind::Ip(s) | ExprKind::Net(s)) => {
                Some(Arg::Str(Fmt::literal(s.as_bytes())))
            }
            (ParamKind::Str | ParamKind::Any, ExprKind::Var(v)) => Some(Arg::Str(Fmt {
                parts: Box::new([FmtPart::Pv(Box::new(self.pv(v)?))]),
            })),
            (ParamKind::Str | ParamKind::Any, _) => bad(self, "a string or variable"),
        }
    }

    fn log_call(&mut self, call: &ast::Call) -> Expr {
        let args: Vec<&ast::Expr> = call.args.iter().flatten().collect();
        let (level, text) = match (call.name.as_str(), args.as_slice()) {
            ("xdbg", [t]) => (LogLevel::Fixed(4), *t),
            ("xlog", [t]) => (LogLevel::Fixed(-1), *t),
            ("log", [t]) => (LogLevel::Fixed(4), *t),
            ("xlog" | "log", [l, t]) => {
                let lv = match &l.kind {
                    ExprKind::Int(i) => i32::try_from(*i).ok(),
                    ExprKind::Str(s) => log_level_of(s),
                    _ => None,
                };
                match lv {
                    Some(v) => (LogLevel::Fixed(v), *t),
                    None => {
                        match &l.kind {
                            ExprKind::Str(s) if s.contains('$') => {
                                let f = self.fmt_str(s, l.span);
                                (LogLevel::Dyn(f), *t)
                            }
                            _ => {
                                self.err(
                                l.span,
                                "bad log level",
                                Some("use L_ALERT, L_CRIT, L_ERR, L_WARN, L_NOTICE, L_INFO or L_DBG".to_owned()),
                            );
                                return Expr::Null;
                            }
                        }
                    }
                }
            }
            _ => {
                self.err(
                    call.span,
                    format!("wrong number of arguments to {}()", call.name),
                    None,
                );
                return Expr::Null;
            }
        };
        let fmt = match &text.kind {
            ExprKind::Str(s) => self.fmt_str(s, text.span),
            ExprKind::Var(v) => match self.pv(v) {
                Some(p) => Fmt {
                    parts: Box::new([FmtPart::Pv(Box::new(p))]),
                },
                None => return Expr::Null,
            },
            _ => {
                self.err(text.span, "expected a string", None);
                return Expr::Null;
            }
        };
        Expr::Log(Box::new(LogNode { level, fmt }))
    }

    // ----- formats and variables -----

    fn fmt_str(&mut self, s: &str, span: Span) -> Fmt {
        let f = parse_fmt_text(s);
        self.fmt_spanned(&f, span)
    }

    fn fmt(&mut self, f: &Format) -> Fmt {
        self.fmt_spanned(f, Span::default())
    }

    fn fmt_spanned(&mut self, f: &Format, span: Span) -> Fmt {
        let mut parts = Vec::with_capacity(f.parts.len());
        for p in &f.parts {
            match p {
                FormatPart::Text(t) => {
                    if let Some(FmtPart::Lit(prev)) = parts.last_mut() {
                        let mut v = prev.to_vec();
                        v.extend_from_slice(t.as_bytes());
                        *prev = v.into();
                    } else {
                        parts.push(FmtPart::Lit(t.as_bytes().into()));
                    }
                }
                FormatPart::Var(v) => {
                    let sp = if v.span == Span::default() {
                        span
                    } else {
                        v.span
                    };
                    if let Some(pv) = self.pv_at(v, sp) {
                        parts.push(FmtPart::Pv(Box::new(pv)));
                    }
                }
            }
        }
        Fmt {
            parts: parts.into(),
        }
    }

    pub(crate) fn pv(&mut self, v: &ScriptVar) -> Option<PvRef> {
        self.pv_at(v, v.span)
    }

    fn pv_at(&mut self, v: &ScriptVar, span: Span) -> Option<PvRef> {
        let span = if v.span == Span::default() {
            span
        } else {
            v.span
        };
        if let Some(ctx) = &v.context
            && ctx != "request"
            && ctx != "reply"
        {
            self.err(
                span,
                format!("unknown context <{ctx}>"),
                Some("use <request> or <reply>".to_owned()),
            );
            return None;
        }
        let name_text = v.name.as_ref().and_then(Format::as_static);
        let pv = match self.pv_class(v, name_text.as_deref(), span) {
            Ok(p) => p,
            Err(hint) => {
                let msg = format!("unknown pseudo-variable ${}", v.class);
                self.err(span, msg, hint);
                return None;
            }
        };
        let pv = pv?;
        let idx = match &v.index {
            None => Idx::None,
            Some(VarIndex::Int(i)) => Idx::Int(*i),
            Some(VarIndex::All) => Idx::All,
            Some(VarIndex::Var(x)) => Idx::Dyn(Box::new(self.pv_at(x, span)?)),
            Some(VarIndex::Word(w)) if w == "append" => Idx::Append,
            Some(VarIndex::Word(w)) => {
                self.err(
                    span,
                    format!("bad index [{w}]"),
                    Some("use [N], [-N], [*] or [$var(i)]".to_owned()),
                );
                return None;
            }
        };
        let mut trans = Vec::with_capacity(v.transforms.len());
        for t in &v.transforms {
            let r = compile_trans(t, &mut |f: &Format| self.fmt_spanned(f, span));
            match r {
                Ok(tr) => trans.push(tr),
                Err((msg, hint)) => {
                    self.err(
                        if t.span == Span::default() {
                            span
                        } else {
                            t.span
                        },
                        msg,
                        hint,
                    );
                    return None;
                }
            }
        }
        Some(PvRef {
            pv,
            idx,
            trans: trans.into(),
            ctx: v.context.as_deref().map(|c| c == "request"),
        })
    }

    /// Resolves a class name. `Err(hint)` for unknown classes; `Ok(None)` when an error was
    /// already reported.
    fn pv_class(
        &mut self,
        v: &ScriptVar,
        name: Option<&str>,
        span: Span,
    ) -> Result<Option<Pv>, Option<String>> {
        let need_name = |c: &mut Self| {
            c.err(
                span,
                format!("${} needs a name: ${}(name)", v.class, v.class),
                None,
            );
            Ok(None)
        };
        let hdr = |n: &str| HdrName {
            kind: HeaderKind::classify(n.as_bytes()),
            name: n.as_bytes().into(),
        };
        Ok(Some(match v.class.as_str() {
            "ru" | "ruri" => Pv::Ruri,
            "rU" | "ruri.user" => Pv::RuriUser,
            "rd" | "ruri.domain" => Pv::RuriHost,
            "rp" => Pv::RuriPort,
            "rP" => Pv::RuriProto,
            "ru_q" => Pv::RuriQ,
            "ou" | "ouri" => Pv::Ouri,
            "oU" => Pv::OuriUser,
            "od" => Pv::OuriHost,
            "op" => Pv::OuriPort,
            "oP" => Pv::OuriProto,
            "du" | "duri" => Pv::Duri,
            "dd" => Pv::DuriHost,
            "dp" => Pv::DuriPort,
            "dP" => Pv::DuriProto,
            "fu" | "from" => Pv::Naddr(HeaderKind::From, NaPart::Uri),
            "fU" | "from.user" => Pv::Naddr(HeaderKind::From, NaPart::User),
            "fd" | "from.domain" => Pv::Naddr(HeaderKind::From, NaPart::Host),
            "fn" => Pv::Naddr(HeaderKind::From, NaPart::Display),
            "ft" => Pv::Naddr(HeaderKind::From, NaPart::Tag),
            "tu" | "to" => Pv::Naddr(HeaderKind::To, NaPart::Uri),
            "tU" | "to.user" => Pv::Naddr(HeaderKind::To, NaPart::User),
            "td" | "to.domain" => Pv::Naddr(HeaderKind::To, NaPart::Host),
            "tn" => Pv::Naddr(HeaderKind::To, NaPart::Display),
            "tt" => Pv::Naddr(HeaderKind::To, NaPart::Tag),
            "rt" => Pv::Naddr(HeaderKind::ReferTo, NaPart::Uri),
            "ai" => Pv::Naddr(HeaderKind::PAssertedIdentity, NaPart::Uri),
            "re" => Pv::Naddr(HeaderKind::RemotePartyId, NaPart::Uri),
            "pu" => Pv::Naddr(HeaderKind::PPreferredIdentity, NaPart::Uri),
            "pU" => Pv::Naddr(HeaderKind::PPreferredIdentity, NaPart::User),
            "pd" => Pv::Naddr(HeaderKind::PPreferredIdentity, NaPart::Host),
            "pn" => Pv::Naddr(HeaderKind::PPreferredIdentity, NaPart::Display),
            "di" => Pv::Naddr(HeaderKind::Diversion, NaPart::Uri),
            "dir" => Pv::Hdr(HdrName {
                kind: HeaderKind::Diversion,
                name: b"reason".as_slice().into(),
            }),
            "dip" => Pv::Hdr(HdrName {
                kind: HeaderKind::Diversion,
                name: b"privacy".as_slice().into(),
            }),
            "ci" => Pv::Callid,
            "cs" => Pv::Cseq,
            "rm" => Pv::Method,
            "cl" => Pv::ContentLength,
            "cT" => Pv::ContentType,
            "ua" => Pv::UserAgent,
            "ct" => Pv::Contact,
            "ct.fields" => match name {
                Some("uri") => Pv::ContactField(ContactField::Uri),
                Some("name") => Pv::ContactField(ContactField::Name),
                Some("q") => Pv::ContactField(ContactField::Q),
                Some("expires") => Pv::ContactField(ContactField::Expires),
                Some("methods") => Pv::ContactField(ContactField::Methods),
                Some("received") => Pv::ContactField(ContactField::Received),
                Some("params") => Pv::ContactField(ContactField::Params),
                _ => {
                    self.err(
                        span,
                        "bad $ct.fields() name",
                        Some("uri, name, q, expires, methods, received or params".to_owned()),
                    );
                    return Ok(None);
                }
            },
            "path" => Pv::Path,
            "hdr" => match name {
                Some(n) => Pv::Hdr(hdr(n)),
                None => return need_name(self),
            },
            "hdrcnt" => match name {
                Some(n) => Pv::HdrCnt(hdr(n)),
                None => return need_name(self),
            },
            "hdr_name" => Pv::HdrName,
            "mb" => Pv::MsgBuf,
            "ml" => Pv::MsgLen,
            "mi" => Pv::MsgId,
            "rb" => Pv::Body,
            "rs" => Pv::Status,
            "rr" => Pv::Reason,
            "msg.type" => Pv::MsgType,
            "msg.is_request" => Pv::MsgIsRequest,
            "msg.flag" => match name {
                Some(n) => match self.flag_bit(n) {
                    Ok(b) => Pv::MsgFlag(b),
                    Err(m) => {
                        self.err(span, m, None);
                        return Ok(None);
                    }
                },
                None => return need_name(self),
            },
            "mf" => Pv::MsgFlags,
            "bf" => Pv::BranchFlags,
            "si" | "src_ip" => Pv::SrcIp,
            "proto" | "pr" => Pv::SocketIn(SockPart::Proto),
            "Ri" => Pv::SocketIn(SockPart::Ip),
            "Rp" => Pv::SocketIn(SockPart::Port),
            "sp" => Pv::SrcPort,
            "socket_in" | "socket_out" => {
                let part = match name {
                    None => SockPart::Whole,
                    Some("ip") => SockPart::Ip,
                    Some("port") => SockPart::Port,
                    Some("proto") => SockPart::Proto,
                    Some("advertised_ip") => SockPart::AdvIp,
                    Some("advertised_port") => SockPart::AdvPort,
                    Some("tag") => SockPart::Tag,
                    Some("anycast") => SockPart::Anycast,
                    Some("af") => SockPart::Af,
                    Some(_) => {
                        self.err(span, format!("bad ${}() field", v.class), None);
                        return Ok(None);
                    }
                };
                if v.class == "socket_in" {
                    Pv::SocketIn(part)
                } else {
                    Pv::SocketOut(part)
                }
            }
            "au" => Pv::Auth(AuthPart::User),
            "aU" => Pv::Auth(AuthPart::WholeUser),
            "ar" => Pv::Auth(AuthPart::Realm),
            "ad" => Pv::Auth(AuthPart::Domain),
            "adu" => Pv::Auth(AuthPart::Uri),
            "an" | "auth.nonce" => Pv::Auth(AuthPart::Nonce),
            "auth.resp" => Pv::Auth(AuthPart::Response),
            "auth.cnonce" => Pv::Auth(AuthPart::Cnonce),
            "auth.opaque" => Pv::Auth(AuthPart::Opaque),
            "auth.alg" => Pv::Auth(AuthPart::Alg),
            "auth.qop" => Pv::Auth(AuthPart::Qop),
            "auth.nc" => Pv::Auth(AuthPart::Nc),
            "Au" => Pv::Auth(AuthPart::Acc),
            "branch" => Pv::Branch(match name {
                None => BranchPart::New,
                Some("uri") => BranchPart::Uri,
                Some("duri") => BranchPart::Duri,
                Some("q") => BranchPart::Q,
                Some("path") => BranchPart::Path,
                Some("flags") => BranchPart::Flags,
                Some("socket") => BranchPart::Socket,
                Some(_) => {
                    self.err(
                        span,
                        "bad $branch() field",
                        Some("uri, duri, q, path, flags or socket".to_owned()),
                    );
                    return Ok(None);
                }
            }),
            "branch.flag" => match name {
                Some(n) => match self.bflag_bit(n) {
                    Ok(b) => Pv::BranchFlag(b),
                    Err(m) => {
                        self.err(span, m, None);
                        return Ok(None);
                    }
                },
                None => return need_name(self),
            },
            "ds" => Pv::DestSet,
            "var" => match name {
                Some(n) => Pv::Var(slot_of(&mut self.vars, n)),
                None => return need_name(self),
            },
            "avp" => match (name, &v.name) {
                (Some(n), _) => Pv::Avp(slot_of(&mut self.avps, n)),
                (None, Some(f)) => Pv::AvpDyn(self.fmt_spanned(f, span)),
                (None, None) => return need_name(self),
            },
            "param" => match (name, &v.name) {
                (Some(n), _) => match n.parse::<usize>() {
                    Ok(i) => Pv::Param(ParamRef::Index(i)),
                    Err(_) => Pv::Param(ParamRef::Name(n.into())),
                },
                (None, Some(f)) => Pv::Param(ParamRef::Dyn(self.fmt_spanned(f, span))),
                (None, None) => return need_name(self),
            },
            "rc" | "retcode" => Pv::Rc,
            "route" => Pv::RouteFull,
            "route.name" => Pv::RouteName,
            "route.type" => Pv::RouteType,
            "cfg_line" => Pv::ConstInt(i64::from(self.line(span))),
            "cfg_file" => Pv::ConstStr(self.sources.location(span).file.into_bytes().into()),
            "argv" => match name {
                Some(n) => Pv::Argv(n.into()),
                None => Pv::ArgvAll,
            },
            "Ts" => Pv::Ts,
            "Tsm" => Pv::Tsm,
            "Tf" => Pv::Tf,
            "TS" => Pv::TStart,
            "time" => match name {
                Some(n) => Pv::Time(n.into()),
                None => return need_name(self),
            },
            "pp" => Pv::Pid,
            "log_level" => Pv::LogLevel,
            "xlog_level" => Pv::XlogLevel,
            "C" => Pv::Color(name.unwrap_or("").as_bytes().into()),
            "err.class" => Pv::Err(0),
            "err.level" => Pv::Err(1),
            "err.info" => Pv::Err(2),
            "err.rcode" => Pv::Err(3),
            "err.rreason" => Pv::Err(4),
            "shv" if self.loaded_has("cfgutils") => match name {
                Some(n) => Pv::Shv(slot_of(&mut self.shv, n)),
                None => return need_name(self),
            },
            "env" if self.loaded_has("cfgutils") => match name {
                Some(n) => Pv::Env(n.as_bytes().into()),
                None => return need_name(self),
            },
            "RANDOM" if self.loaded_has("cfgutils") => Pv::Random,
            "ctime" if self.loaded_has("cfgutils") => Pv::Ctime(match name {
                Some("sec") => CtimePart::Sec,
                Some("min") => CtimePart::Min,
                Some("hour") => CtimePart::Hour,
                Some("mday") => CtimePart::Mday,
                Some("mon") => CtimePart::Mon,
                Some("year") => CtimePart::Year,
                Some("wday") => CtimePart::Wday,
                Some("yday") => CtimePart::Yday,
                _ => {
                    self.err(
                        span,
                        "bad $ctime() field",
                        Some("sec, min, hour, mday, mon, year, wday or yday".to_owned()),
                    );
                    return Ok(None);
                }
            }),
            "shv" | "env" | "RANDOM" | "ctime" => {
                return Err(Some(
                    "this variable is provided by module cfgutils: add loadmodule \"cfgutils.so\""
                        .to_owned(),
                ));
            }
            other => {
                if let Some((m, _)) = crate::modules::module_pv_owner(other)
                    && self.loaded_has(m)
                    && let Some(p) = self.reg.pv(other)
                {
                    let named = name.and_then(|n| p.with_name(n));
                    return Ok(Some(Pv::Module(named.unwrap_or_else(|| Arc::clone(p)))));
                }
                match crate::modules::module_pv(other, &self.loaded) {
                    Ok(Some(p)) => {
                        if let Some((m, pv)) = crate::modules::module_pv_owner(other) {
                            self.unimpl.insert((m, pv));
                        }
                        return Ok(Some(Pv::Module(p)));
                    }
                    Err(hint) => return Err(Some(hint)),
                    Ok(None) => {}
                }
                let hint = nearest(
                    other,
                    CORE_PVS
                        .iter()
                        .copied()
                        .chain(crate::modules::module_pv_names()),
                )
                .map(|n| format!("did you mean ${n}?"));
                return Err(hint);
            }
        }))
    }

    fn loaded_has(&self, m: &str) -> bool {
        self.loaded.iter().any(|x| x == m)
    }
}

fn is_writable(pv: &Pv) -> bool {
    if let Pv::Module(m) = pv {
        return m.writable();
    }
    matches!(
        pv,
        Pv::Var(_)
            | Pv::Avp(_)
            | Pv::AvpDyn(_)
            | Pv::Ruri
            | Pv::RuriUser
            | Pv::RuriHost
            | Pv::RuriPort
            | Pv::RuriQ
            | Pv::Duri
            | Pv::DuriHost
            | Pv::DuriPort
            | Pv::MsgFlag(_)
            | Pv::Branch(_)
            | Pv::BranchFlag(_)
            | Pv::LogLevel
            | Pv::XlogLevel
            | Pv::Shv(_)
            | Pv::SocketOut(SockPart::Whole)
    )
}

/// Splits a string argument into text and variables.
fn parse_fmt_text(s: &str) -> Format {
    sipox_cfg_syntax::parse_format(s)
}

/// Compiles a POSIX-extended-style regex with OpenSIPS's case-insensitive matching.
pub(crate) fn compile_regex(p: &str) -> Result<regex::bytes::Regex, String> {
    regex::bytes::RegexBuilder::new(p)
        .case_insensitive(true)
        .unicode(false)
        .build()
        .map_err(|e| e.to_string().lines().last().unwrap_or("").trim().to_owned())
}

fn collect_route_calls(b: &ast::Block, out: &mut Vec<String>) {
    for s in &b.stmts {
        match &s.kind {
            StmtKind::Cmd(c) => cmd_routes(c, out),
            StmtKind::Assign(a) => expr_routes(&a.rhs, out),
            StmtKind::If { cond, then, els } => {
                expr_routes(cond, out);
                collect_route_calls(then, out);
                if let Some(e) = els {
                    collect_route_calls(e, out);
                }
            }
            StmtKind::While { cond, body } => {
                expr_routes(cond, out);
                collect_route_calls(body, out);
            }
            StmtKind::ForEach { body, .. } => collect_route_calls(body, out),
            StmtKind::Switch { cases, default, .. } => {
                for c in cases {
                    collect_route_calls(&c.body, out);
                }
                if let Some(d) = default {
                    collect_route_calls(d, out);
                }
            }
            StmtKind::Break => {}
        }
    }
}

fn cmd_routes(c: &ast::Cmd, out: &mut Vec<String>) {
    match c {
        ast::Cmd::Route(r) => {
            if let ast::RouteTarget::Name(n) = &r.target {
                out.push(n.clone());
            }
        }
        ast::Cmd::Async { resume, .. } => out.push(resume.clone()),
        ast::Cmd::Launch {
            report: Some(r), ..
        } => out.push(r.clone()),
        _ => {}
    }
}

fn expr_routes(e: &ast::Expr, out: &mut Vec<String>) {
    match &e.kind {
        ExprKind::Cmd(c) => cmd_routes(c, out),
        ExprKind::Not(x) | ExprKind::BitNot(x) | ExprKind::Test(x) | ExprKind::Paren(x) => {
            expr_routes(x, out);
        }
        ExprKind::Logic(_, a, b) | ExprKind::Compare(_, a, b) | ExprKind::Binary(_, a, b) => {
            expr_routes(a, out);
            expr_routes(b, out);
        }
        ExprKind::Assign(a) => expr_routes(&a.rhs, out),
        _ => {}
    }
}

impl Expr {
    /// `async(f(), resume)`: after the resume route, the script stops.
    fn async_then_exit(self) -> Self {
        Self::And(
            Box::new(self),
            Box::new(Self::Control(Box::new(Stmt::Exit))),
        )
    }
}
