//! A compact, stable text rendering of the AST, used by golden tests.
//!
//! One line per top-level item or statement, two-space indentation for nesting,
//! expressions as prefix S-expressions, variables as `pv:` followed by their structure.

use std::fmt::Write as _;

use crate::ast::*;
use crate::var::{Format, FormatPart, ScriptVar, VarIndex};

impl Config {
    /// The summary text (ends with a newline unless empty).
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for item in &self.items {
            item_summary(&mut out, item);
        }
        out
    }
}

fn q(s: &str) -> String {
    format!("{s:?}")
}

fn item_summary(out: &mut String, item: &Item) {
    match item {
        Item::Param(p) => {
            let _ = writeln!(out, "param {} = {}", p.name, value(&p.value));
        }
        Item::LoadModule(m) => {
            let _ = writeln!(out, "loadmodule {} path={}", m.name, q(&m.path));
        }
        Item::ModParam(m) => {
            let _ = writeln!(
                out,
                "modparam {} {} = {}",
                q(&m.module),
                q(&m.param),
                value(&m.value)
            );
        }
        Item::Route(r) => {
            let mut head = r.kind.keyword().to_owned();
            if let Some(n) = &r.name {
                let _ = write!(head, "[{n}");
                if let Some(i) = r.interval {
                    let _ = write!(head, ", {i}");
                }
                if let Some(m) = &r.mode {
                    let _ = write!(head, ", {m}");
                }
                head.push(']');
            }
            if r.is_main() {
                head.push_str(" (main)");
            }
            let _ = writeln!(out, "{head}");
            block(out, &r.body, 1);
        }
    }
}

fn value(v: &Value) -> String {
    match v {
        Value::Int(n) => n.to_string(),
        Value::Str(s) => q(s),
        Value::Bool(b) => b.to_string(),
        Value::Null => "NULL".to_owned(),
        Value::Ident(s) => format!("id:{s}"),
        Value::Ip(s) => format!("ip:{s}"),
        Value::Net(s) => format!("net:{s}"),
        Value::Word(s) => format!("word:{s}"),
        Value::Raw(s) => format!("raw:{}", q(s)),
        Value::List(items) => format!(
            "[{}]",
            items.iter().map(value).collect::<Vec<_>>().join(", ")
        ),
        Value::Socket(s) => socket(s),
    }
}

fn socket(s: &SocketDef) -> String {
    let mut out = String::from("socket{");
    if let Some(p) = &s.proto {
        let _ = write!(out, "proto={p} ");
    }
    let _ = write!(out, "host={}", s.host);
    if let Some(p) = s.port {
        let _ = write!(out, " port={p}");
    }
    if let Some(p) = s.port_end {
        let _ = write!(out, " port_end={p}");
    }
    if let Some((h, p)) = &s.advertised {
        let _ = write!(out, " as={h}");
        if let Some(p) = p {
            let _ = write!(out, ":{p}");
        }
    }
    if let Some(w) = s.workers {
        let _ = write!(out, " workers={w}");
    }
    if let Some(a) = &s.auto_scaling_profile {
        let _ = write!(out, " scaling={a}");
    }
    if let Some(t) = &s.tag {
        let _ = write!(out, " tag={t}");
    }
    if let Some(t) = &s.tos {
        let _ = write!(out, " tos={t}");
    }
    for f in &s.flags {
        let _ = write!(out, " +{f}");
    }
    out.push('}');
    out
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn block(out: &mut String, b: &Block, level: usize) {
    for s in &b.stmts {
        stmt(out, s, level);
    }
}

fn stmt(out: &mut String, s: &Stmt, level: usize) {
    indent(out, level);
    match &s.kind {
        StmtKind::Cmd(c) => {
            let _ = writeln!(out, "{}", cmd(c));
        }
        StmtKind::Assign(a) => {
            let _ = writeln!(out, "{}", assign(a));
        }
        StmtKind::If { cond, then, els } => {
            let _ = writeln!(out, "if {}", expr(cond));
            block(out, then, level + 1);
            if let Some(e) = els {
                indent(out, level);
                out.push_str("else\n");
                block(out, e, level + 1);
            }
        }
        StmtKind::While { cond, body } => {
            let _ = writeln!(out, "while {}", expr(cond));
            block(out, body, level + 1);
        }
        StmtKind::ForEach {
            var: v,
            source,
            body,
        } => {
            let _ = writeln!(out, "for {} in {}", var(v), var(source));
            block(out, body, level + 1);
        }
        StmtKind::Switch {
            subject,
            cases,
            default,
        } => {
            let _ = writeln!(out, "switch {}", var(subject));
            for c in cases {
                indent(out, level + 1);
                match &c.value {
                    CaseValue::Int(n) => {
                        let _ = writeln!(out, "case {n}:");
                    }
                    CaseValue::Str(s) => {
                        let _ = writeln!(out, "case {}:", q(s));
                    }
                }
                block(out, &c.body, level + 2);
            }
            if let Some(d) = default {
                indent(out, level + 1);
                out.push_str("default:\n");
                block(out, d, level + 2);
            }
        }
        StmtKind::Break => out.push_str("break\n"),
    }
}

fn assign(a: &Assign) -> String {
    format!("assign {} {} {}", var(&a.lhs), a.op.as_str(), expr(&a.rhs))
}

fn call(c: &Call) -> String {
    let args: Vec<String> = c
        .args
        .iter()
        .map(|a| a.as_ref().map_or_else(|| "_".to_owned(), expr))
        .collect();
    format!("call {}({})", c.name, args.join(", "))
}

fn cmd(c: &Cmd) -> String {
    match c {
        Cmd::Call(c) => call(c),
        Cmd::Route(r) => {
            let target = match &r.target {
                RouteTarget::Name(n) => n.clone(),
                RouteTarget::Format(f) => format!("fmt:{}", format(f)),
                RouteTarget::Var(v) => var(v),
            };
            let mut parts = vec![target];
            parts.extend(r.args.iter().map(expr));
            format!("route({})", parts.join(", "))
        }
        Cmd::Return(None) => "return".to_owned(),
        Cmd::Return(Some(e)) => format!("return {}", expr(e)),
        Cmd::Exit => "exit".to_owned(),
        Cmd::Drop => "drop".to_owned(),
        Cmd::Assert { cond, message } => format!("assert({}, {})", expr(cond), q(message)),
        Cmd::Async {
            call: c,
            resume,
            timeout,
        } => {
            let mut s = format!("async({}, {resume}", call(c));
            if let Some(t) = timeout {
                let _ = write!(s, ", {t}");
            }
            s.push(')');
            s
        }
        Cmd::Launch {
            call: c,
            report,
            param,
        } => {
            let mut s = format!("launch({}", call(c));
            if let Some(r) = report {
                let _ = write!(s, ", {r}");
            }
            if let Some(p) = param {
                let _ = write!(s, ", {}", expr(p));
            }
            s.push(')');
            s
        }
    }
}

/// Renders an expression as a prefix S-expression.
pub fn expr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int(n) => n.to_string(),
        ExprKind::Str(s) => q(s),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Null => "NULL".to_owned(),
        ExprKind::Ip(s) => format!("ip:{s}"),
        ExprKind::Net(s) => format!("net:{s}"),
        ExprKind::Var(v) => var(v),
        ExprKind::Cmd(c) => format!("({})", cmd(c)),
        ExprKind::Assign(a) => format!("({})", assign(a)),
        ExprKind::Not(e) => format!("(! {})", expr(e)),
        ExprKind::BitNot(e) => format!("(~ {})", expr(e)),
        ExprKind::Logic(op, a, b) => {
            let o = match op {
                LogicOp::And => "&&",
                LogicOp::Or => "||",
            };
            format!("({o} {} {})", expr(a), expr(b))
        }
        ExprKind::Compare(op, a, b) => format!("({} {} {})", op.as_str(), expr(a), expr(b)),
        ExprKind::Binary(op, a, b) => format!("({} {} {})", op.as_str(), expr(a), expr(b)),
        ExprKind::Test(e) => format!("[{}]", expr(e)),
        ExprKind::Paren(e) => format!("(paren {})", expr(e)),
    }
}

/// Renders a variable structurally: `pv:<ctx>class(name)[idx]{tr.method,params}`.
pub fn var(v: &ScriptVar) -> String {
    let mut s = String::from("pv:");
    if let Some(c) = &v.context {
        let _ = write!(s, "<{c}>");
    }
    s.push_str(&v.class);
    if let Some(n) = &v.name {
        let _ = write!(s, "({})", format(n));
    }
    match &v.index {
        None => {}
        Some(VarIndex::Int(n)) => {
            let _ = write!(s, "[{n}]");
        }
        Some(VarIndex::All) => s.push_str("[*]"),
        Some(VarIndex::Var(iv)) => {
            let _ = write!(s, "[{}]", var(iv));
        }
        Some(VarIndex::Word(w)) => {
            let _ = write!(s, "[word:{w}]");
        }
    }
    for t in &v.transforms {
        let _ = write!(s, "{{{}.{}", t.class, t.method);
        for p in &t.params {
            let _ = write!(s, ",{}", format(p));
        }
        s.push('}');
    }
    s
}

/// Renders a format: static text verbatim, otherwise quoted text and variables joined by `+`.
pub fn format(f: &Format) -> String {
    if let Some(t) = f.as_static() {
        return t;
    }
    f.parts
        .iter()
        .map(|p| match p {
            FormatPart::Text(t) => q(t),
            FormatPart::Var(v) => var(v),
        })
        .collect::<Vec<_>>()
        .join("+")
}
