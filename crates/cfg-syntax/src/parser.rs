//! Hand-written recursive-descent parser: tokens → [`Config`].

use std::collections::HashSet;

use crate::ast::*;
use crate::diag::Diagnostic;
use crate::lexer::{Token, TokenKind as T};
use crate::source::{Flat, Span};
use crate::var::{Origin, ScriptVar, parse_format_at, parse_var_at};

/// Marker: a diagnostic was already recorded.
#[derive(Debug)]
struct Fail;

type PResult<T> = Result<T, Fail>;

const MAX_DEPTH: u32 = 200;
/// Most binary operators in one chain (bounds the depth of the resulting tree).
const MAX_CHAIN: usize = 1000;

const ROUTE_KEYWORDS: &[&str] = &[
    "route",
    "branch_route",
    "failure_route",
    "onreply_route",
    "error_route",
    "local_route",
    "startup_route",
    "timer_route",
    "event_route",
];

const TOP_KEYWORDS: &[&str] = &["loadmodule", "modparam", "include_file", "import_file"];

/// Transports OpenSIPS 3.5 knows (`ip_addr.h`).
pub const KNOWN_PROTOS: &[&str] = &[
    "udp", "tcp", "tls", "sctp", "ws", "wss", "ipsec", "bin", "bins", "hep_udp", "hep_tcp",
    "hep_tls", "smpp", "msrp", "msrps",
];

const SOCKET_FLAGS: &[&str] = &[
    "anycast",
    "frag",
    "reuse_port",
    "accept_subdomain",
    "frontend",
    "allow_proxy_protocol",
    "send_proxy_protocol",
    "proxy_protocol",
];

fn bool_word(s: &str) -> Option<bool> {
    match s {
        "yes" | "true" | "on" | "enable" => Some(true),
        "no" | "false" | "off" | "disable" => Some(false),
        _ => None,
    }
}

fn is_null_word(s: &str) -> bool {
    s == "NULL" || s == "null"
}

pub(crate) fn parse(toks: Vec<Token>, flat: &Flat) -> (Config, Vec<Diagnostic>) {
    let mut p = Parser {
        toks,
        pos: 0,
        flat,
        diags: Vec::new(),
        breakable: 0,
        depth: 0,
        routes_seen: HashSet::new(),
    };
    let cfg = p.config();
    (cfg, p.diags)
}

struct Parser<'a> {
    toks: Vec<Token>,
    pos: usize,
    flat: &'a Flat,
    diags: Vec<Diagnostic>,
    breakable: u32,
    depth: u32,
    routes_seen: HashSet<(RouteKind, Option<String>)>,
}

impl Parser<'_> {
    // ---------------------------------------------------------------- token helpers

    fn tok(&self, n: usize) -> &Token {
        let i = (self.pos + n).min(self.toks.len().saturating_sub(1));
        &self.toks[i]
    }

    fn peek(&self) -> &T {
        &self.tok(0).kind
    }

    fn peek_n(&self, n: usize) -> &T {
        &self.tok(n).kind
    }

    fn at_eof(&self) -> bool {
        matches!(self.peek(), T::Eof)
    }

    fn bump(&mut self) -> Token {
        let t = self.tok(0).clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn at(&self, k: &T) -> bool {
        self.peek() == k
    }

    fn eat(&mut self, k: &T) -> bool {
        if self.at(k) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn is_word(&self, n: usize, w: &str) -> bool {
        matches!(self.peek_n(n), T::Ident(s) if s == w)
    }

    fn word(&self) -> Option<&str> {
        match self.peek() {
            T::Ident(s) => Some(s),
            _ => None,
        }
    }

    fn text(&self, t: &Token) -> &str {
        self.flat.text.get(t.lo..t.hi).unwrap_or("")
    }

    fn prev_span(&self) -> Span {
        let i = self.pos.saturating_sub(1);
        self.toks[i].span
    }

    fn span_from(&self, start: Span) -> Span {
        start.to(self.prev_span())
    }

    fn adjacent(&self, n: usize) -> bool {
        !self.tok(n).space_before
    }

    fn err_here(&mut self, msg: impl Into<String>) -> &mut Diagnostic {
        let t = self.tok(0).clone();
        let found = if matches!(t.kind, T::Eof) {
            "end of input".to_owned()
        } else {
            self.text(&t).to_owned()
        };
        self.diags
            .push(Diagnostic::error(t.span, msg).with_found(found));
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    fn err_span(&mut self, span: Span, msg: impl Into<String>) -> &mut Diagnostic {
        let found = self.snippet_of(span);
        self.diags
            .push(Diagnostic::error(span, msg).with_found(found));
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    fn snippet_of(&self, span: Span) -> String {
        // find the token with this span to recover its text
        self.toks
            .iter()
            .find(|t| t.span == span)
            .map(|t| self.text(t).to_owned())
            .unwrap_or_default()
    }

    /// `expected X, found Y` at the current token.
    fn expected(&mut self, what: &str) -> Fail {
        let found = self.peek().describe();
        self.err_here(format!("expected {what}, found {found}"));
        Fail
    }

    fn expect(&mut self, k: &T, what: &str) -> PResult<Token> {
        if self.at(k) {
            Ok(self.bump())
        } else {
            Err(self.expected(what))
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.err_here("nesting too deep");
            self.depth -= 1;
            return Err(Fail);
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn var_from(&mut self, t: &Token) -> ScriptVar {
        let text = self.text(t).to_owned();
        if crate::lexer::var_extent(text.as_bytes()) != Ok(text.len()) {
            // the lexer already reported it
            return ScriptVar {
                text,
                span: t.span,
                context: None,
                class: String::new(),
                name: None,
                index: None,
                transforms: Vec::new(),
                full_form: false,
            };
        }
        parse_var_at(&text, Origin::Flat(self.flat, t.lo), &mut self.diags)
    }

    /// Decoded string value plus following adjacent strings folded in.
    fn folded_string(&mut self) -> Option<(String, Span)> {
        let T::Str { value, .. } = self.peek().clone() else {
            return None;
        };
        let start = self.bump().span;
        let mut out = value;
        while let T::Str { value, .. } = self.peek().clone() {
            self.bump();
            out.push_str(&value);
        }
        Some((out, self.span_from(start)))
    }

    /// Signed number: `N`, `-N`, `+N`.
    fn snumber(&mut self) -> Option<(i64, Span)> {
        match (self.peek().clone(), self.peek_n(1).clone()) {
            (T::Int(n), _) => {
                let s = self.bump().span;
                Some((n, s))
            }
            (T::Minus, T::Int(n)) => {
                let s = self.bump().span;
                self.bump();
                Some((n.wrapping_neg(), self.span_from(s)))
            }
            (T::Plus, T::Int(n)) => {
                let s = self.bump().span;
                self.bump();
                Some((n, self.span_from(s)))
            }
            _ => None,
        }
    }

    fn is_route_start(&self) -> bool {
        match self.peek() {
            T::Ident(w) if ROUTE_KEYWORDS.contains(&w.as_str()) => {
                matches!(self.peek_n(1), T::LBrace | T::LBracket)
            }
            _ => false,
        }
    }

    fn is_stmt_start_at(&self, n: usize) -> bool {
        match self.peek_n(n) {
            T::Ident(w) => {
                TOP_KEYWORDS.contains(&w.as_str())
                    || (ROUTE_KEYWORDS.contains(&w.as_str())
                        && matches!(self.peek_n(n + 1), T::LBrace | T::LBracket))
                    || matches!(self.peek_n(n + 1), T::Assign(AssignOp::Set))
            }
            T::Eof => true,
            _ => false,
        }
    }

    // ---------------------------------------------------------------- top level

    fn config(&mut self) -> Config {
        let mut cfg = Config::default();
        while !self.at_eof() {
            let before = self.pos;
            match self.top_item() {
                Ok(Some(item)) => cfg.items.push(item),
                Ok(None) => {}
                Err(Fail) => {
                    if self.pos == before {
                        self.bump();
                    }
                    self.recover_top();
                }
            }
            if self.pos == before {
                self.bump();
            }
        }
        cfg
    }

    fn recover_top(&mut self) {
        while !self.at_eof() {
            let t = self.tok(0);
            let col1 = t.lo == 0 || self.flat.text.as_bytes().get(t.lo - 1) == Some(&b'\n');
            if t.line_start && (self.is_stmt_start_at(0) || (col1 && matches!(t.kind, T::Ident(_))))
            {
                return;
            }
            self.bump();
        }
    }

    fn top_item(&mut self) -> PResult<Option<Item>> {
        let word = match self.peek() {
            T::Ident(w) => w.clone(),
            _ => {
                self.err_here(format!(
                    "unexpected {} at top level",
                    self.peek().describe()
                ))
                .hint = Some(
                    "expected a global parameter (name = value), loadmodule, modparam or a route block"
                        .to_owned(),
                );
                return Err(Fail);
            }
        };
        if let Some(kind) = RouteKind::from_keyword(&word) {
            if matches!(self.peek_n(1), T::LParen) {
                self.err_here(format!("'{word}(...)' call outside of a route block"));
                return Err(Fail);
            }
            return self.route_block(kind).map(|r| Some(Item::Route(r)));
        }
        match word.as_str() {
            "loadmodule" => self.loadmodule().map(|m| Some(Item::LoadModule(m))),
            "modparam" => self.modparam().map(|m| Some(Item::ModParam(m))),
            "include_file" | "import_file" => {
                self.err_here(format!("malformed {word} directive")).hint = Some(format!(
                    "write it at the very start of a line: {word} \"path/to/file.cfg\""
                ));
                Err(Fail)
            }
            _ => {
                if matches!(self.peek_n(1), T::Assign(AssignOp::Set)) {
                    self.global_param().map(|p| Some(Item::Param(p)))
                } else {
                    let d = self.err_here(format!("unexpected '{word}' at top level"));
                    d.hint = Some(
                        "expected a global parameter (name = value), loadmodule, modparam or a route block"
                            .to_owned(),
                    );
                    Err(Fail)
                }
            }
        }
    }

    fn loadmodule(&mut self) -> PResult<LoadModule> {
        let start = self.bump().span;
        let Some((path, _)) = self.folded_string() else {
            let f = self.expected("a quoted module path");
            if let Some(d) = self.diags.last_mut() {
                d.hint = Some("loadmodule \"tm.so\"".to_owned());
            }
            return Err(f);
        };
        let base = path.rsplit('/').next().unwrap_or(&path);
        let name = base.strip_suffix(".so").unwrap_or(base).to_owned();
        if name.is_empty() {
            self.err_span(self.prev_span(), "empty module name");
        }
        Ok(LoadModule {
            path,
            name,
            span: self.span_from(start),
        })
    }

    fn modparam(&mut self) -> PResult<ModParam> {
        let start = self.bump().span;
        self.expect(&T::LParen, "'(' after modparam")?;
        let Some((module, _)) = self.folded_string() else {
            return Err(self.expected("the module name as a string"));
        };
        self.expect(&T::Comma, "','")?;
        let Some((param, _)) = self.folded_string() else {
            return Err(self.expected("the parameter name as a string"));
        };
        self.expect(&T::Comma, "','")?;
        let value = if let Some((s, _)) = self.folded_string() {
            Value::Str(s)
        } else if let Some((n, _)) = self.snumber() {
            Value::Int(n)
        } else if let Some(b) = self.word().and_then(bool_word) {
            self.bump();
            Value::Bool(b)
        } else {
            let f = self.expected("a string or number value");
            if let Some(d) = self.diags.last_mut() {
                d.hint =
                    Some("quote string values: modparam(\"mod\", \"param\", \"value\")".to_owned());
            }
            return Err(f);
        };
        self.expect(&T::RParen, "')' to close modparam")?;
        Ok(ModParam {
            module,
            param,
            value,
            span: self.span_from(start),
        })
    }

    fn global_param(&mut self) -> PResult<GlobalParam> {
        let name_tok = self.bump();
        let name = self.text(&name_tok).to_owned();
        self.bump(); // '='
        let value = match name.as_str() {
            "socket" | "listen" => Value::Socket(self.socket_def(true)?),
            "alias" => {
                let mut items = Vec::new();
                while !self.is_stmt_start_at(0) {
                    items.push(Value::Socket(self.socket_def(false)?));
                }
                if items.is_empty() {
                    return Err(self.expected("a host name for alias"));
                }
                if items.len() == 1 {
                    items.remove(0)
                } else {
                    Value::List(items)
                }
            }
            "dst_blacklist" => self.raw_until_brace()?,
            _ => {
                let mut items = Vec::new();
                let mut texts = Vec::new();
                while !self.is_stmt_start_at(0) {
                    let lo = self.tok(0).lo;
                    items.push(self.value_item()?);
                    let hi = self.toks[self.pos.saturating_sub(1)].hi;
                    texts.push(self.flat.text.get(lo..hi).unwrap_or("").to_owned());
                }
                if items.len() > 1 {
                    // inside word lists ("scale up to 8 on 70% ...") keep words verbatim
                    for (v, t) in items.iter_mut().zip(texts) {
                        if matches!(v, Value::Bool(_) | Value::Null) {
                            *v = Value::Ident(t);
                        }
                    }
                }
                match items.len() {
                    0 => {
                        let f = self.expected(&format!("a value for '{name}'"));
                        return Err(f);
                    }
                    1 => items.remove(0),
                    _ => Value::List(items),
                }
            }
        };
        if !self.is_stmt_start_at(0) {
            let d = self.err_here(format!(
                "unexpected {} after the value of '{name}'",
                self.peek().describe()
            ));
            d.hint = Some("each global parameter takes a single value".to_owned());
            return Err(Fail);
        }
        Ok(GlobalParam {
            name,
            name_span: name_tok.span,
            value,
            span: self.span_from(name_tok.span),
        })
    }

    fn raw_until_brace(&mut self) -> PResult<Value> {
        let lo = self.tok(0).lo;
        let mut depth = 0i32;
        let mut taken = 0usize;
        loop {
            // `id`, `id/flags` and `id: ipnet` have no braces: they end where the next
            // statement starts.
            if depth == 0 && taken > 0 && self.is_stmt_start_at(0) {
                let hi = self.toks[self.pos.saturating_sub(1)].hi;
                let raw = self.flat.text.get(lo..hi).unwrap_or("").to_owned();
                return Ok(Value::Raw(raw));
            }
            taken += 1;
            match self.peek() {
                T::Eof => return Err(self.expected("'}' to close the blacklist")),
                T::LBrace => depth += 1,
                T::RBrace => {
                    depth -= 1;
                    if depth <= 0 {
                        let hi = self.bump().hi;
                        let raw = self.flat.text.get(lo..hi).unwrap_or("").to_owned();
                        return Ok(Value::Raw(raw));
                    }
                }
                _ => {}
            }
            self.bump();
        }
    }

    /// Host name made of adjacent `ID ('.'|'-') ID` pieces, starting at an Ident or Int.
    fn hostname(&mut self) -> Option<String> {
        let first = match self.peek() {
            T::Ident(_) | T::Int(_) => self.bump(),
            _ => return None,
        };
        let mut out = self.text(&first).to_owned();
        while matches!(self.peek(), T::Dot | T::Minus)
            && self.adjacent(0)
            && matches!(self.peek_n(1), T::Ident(_) | T::Int(_))
            && self.adjacent(1)
        {
            let sep = self.bump();
            out.push_str(self.text(&sep));
            let part = self.bump();
            out.push_str(self.text(&part));
        }
        Some(out)
    }

    fn value_item(&mut self) -> PResult<Value> {
        let t = self.tok(0).clone();
        Ok(match &t.kind {
            T::Str { value, .. } => {
                self.bump();
                Value::Str(value.clone())
            }
            T::Int(_) | T::Minus | T::Plus => {
                if let Some((n, _)) = self.snumber() {
                    if matches!(self.peek(), T::Dot | T::Minus) && self.adjacent(0) {
                        // a host name starting with digits; fall back to text
                        let mut s = n.to_string();
                        while matches!(self.peek(), T::Dot | T::Minus)
                            && self.adjacent(0)
                            && matches!(self.peek_n(1), T::Ident(_) | T::Int(_))
                        {
                            let a = self.bump();
                            let b = self.bump();
                            s.push_str(self.text(&a));
                            s.push_str(self.text(&b));
                        }
                        Value::Ident(s)
                    } else {
                        Value::Int(n)
                    }
                } else {
                    self.bump();
                    Value::Word(self.text(&t).to_owned())
                }
            }
            T::Ident(w) => {
                if let Some(b) = bool_word(w) {
                    self.bump();
                    Value::Bool(b)
                } else if is_null_word(w) {
                    self.bump();
                    Value::Null
                } else {
                    Value::Ident(self.hostname().unwrap_or_default())
                }
            }
            T::Ipv4(s) | T::Ipv6(s) => {
                self.bump();
                Value::Ip(s.clone())
            }
            T::IpNet(s) => {
                self.bump();
                Value::Net(s.clone())
            }
            T::LBracket
                if matches!(self.peek_n(1), T::Ipv6(_))
                    && matches!(self.peek_n(2), T::RBracket) =>
            {
                self.bump();
                let T::Ipv6(s) = self.bump().kind else {
                    return Err(Fail);
                };
                self.bump();
                Value::Ip(s)
            }
            T::Var(_) => {
                self.err_here("script variables are not allowed in global parameters");
                return Err(Fail);
            }
            T::LBrace | T::RBrace | T::Semi => {
                return Err(self.expected("a value"));
            }
            _ => {
                self.bump();
                Value::Word(self.text(&t).to_owned())
            }
        })
    }

    /// `host`, `IP`, `[IPv6]`, `"string"` or `*`.
    fn socket_host(&mut self) -> PResult<String> {
        match self.peek().clone() {
            T::Ipv4(s) | T::Ipv6(s) => {
                self.bump();
                Ok(s)
            }
            T::LBracket => {
                self.bump();
                let T::Ipv6(s) = self.peek().clone() else {
                    return Err(self.expected("an IPv6 address inside '[...]'"));
                };
                self.bump();
                self.expect(&T::RBracket, "']'")?;
                Ok(s)
            }
            T::Str { value, .. } => {
                self.bump();
                Ok(value)
            }
            T::Star => {
                self.bump();
                Ok("*".to_owned())
            }
            T::Ident(_) | T::Int(_) => Ok(self.hostname().unwrap_or_default()),
            _ => {
                let f = self.expected("an IP address or host name");
                if let Some(d) = self.diags.last_mut() {
                    d.hint =
                        Some("use quotes if the host name contains config keywords".to_owned());
                }
                Err(f)
            }
        }
    }

    fn port(&mut self) -> PResult<Option<u16>> {
        match self.peek().clone() {
            T::Int(n) => {
                let t = self.bump();
                match u16::try_from(n) {
                    Ok(p) => Ok(Some(p)),
                    Err(_) => {
                        self.err_span(t.span, format!("port {n} out of range (0-65535)"));
                        Err(Fail)
                    }
                }
            }
            T::Ident(w) if w == "any" => {
                self.bump();
                Ok(None)
            }
            T::Star => {
                self.bump();
                Ok(None)
            }
            _ => Err(self.expected("a port number")),
        }
    }

    fn socket_def(&mut self, need_proto: bool) -> PResult<SocketDef> {
        let start = self.tok(0).span;
        let proto = match self.peek().clone() {
            T::Ident(w) if matches!(self.peek_n(1), T::Colon) => {
                let t = self.bump();
                self.bump();
                if !KNOWN_PROTOS.contains(&w.as_str()) && w != "any" {
                    self.err_span(t.span, format!("unknown protocol '{w}'"))
                        .hint = Some(format!("known protocols: {}", KNOWN_PROTOS.join(", ")));
                }
                Some(w)
            }
            _ => None,
        };
        if proto.is_none() && need_proto {
            let d = self.err_here("protocol expected in socket definition");
            d.hint = Some("write it as proto:host[:port], e.g. udp:127.0.0.1:5060".to_owned());
            return Err(Fail);
        }
        let host = self.socket_host()?;
        let mut port = None;
        let mut port_end = None;
        if self.eat(&T::Colon) {
            port = self.port()?;
            if matches!(self.peek(), T::Minus) && matches!(self.peek_n(1), T::Int(_)) {
                self.bump();
                port_end = self.port()?;
            }
        }
        let mut def = SocketDef {
            proto,
            host,
            port,
            port_end,
            advertised: None,
            workers: None,
            auto_scaling_profile: None,
            tag: None,
            tos: None,
            flags: Vec::new(),
            span: start,
        };
        while let Some(w) = self.word().map(str::to_owned) {
            if self.is_stmt_start_at(0) {
                break;
            }
            match w.as_str() {
                "as" => {
                    self.bump();
                    let h = self.socket_host()?;
                    let p = if self.eat(&T::Colon) {
                        self.port()?
                    } else {
                        None
                    };
                    def.advertised = Some((h, p));
                }
                "use_workers" => {
                    self.bump();
                    match self.peek().clone() {
                        T::Int(n) => {
                            self.bump();
                            def.workers = Some(n);
                        }
                        _ => return Err(self.expected("a number of workers")),
                    }
                }
                "use_auto_scaling_profile" | "tag" | "tos" | "bond" => {
                    self.bump();
                    let v = match self.peek().clone() {
                        T::Ident(s) | T::Str { value: s, .. } => s,
                        T::Int(n) => n.to_string(),
                        _ => return Err(self.expected(&format!("a value after '{w}'"))),
                    };
                    self.bump();
                    match w.as_str() {
                        "tag" => def.tag = Some(v),
                        "tos" => def.tos = Some(v),
                        "bond" => def.flags.push(format!("bond={v}")),
                        _ => def.auto_scaling_profile = Some(v),
                    }
                }
                _ if SOCKET_FLAGS.contains(&w.as_str()) => {
                    self.bump();
                    def.flags.push(w);
                }
                _ => break,
            }
        }
        def.span = self.span_from(start);
        Ok(def)
    }

    fn route_name(&mut self) -> PResult<(String, Span)> {
        match self.peek().clone() {
            T::Ident(s) | T::Str { value: s, .. } => Ok((s, self.bump().span)),
            T::Int(n) => Ok((n.to_string(), self.bump().span)),
            _ => Err(self.expected("a route name")),
        }
    }

    fn route_block(&mut self, kind: RouteKind) -> PResult<RouteBlock> {
        let kw = self.bump();
        let kwtext = kind.keyword();
        let mut name = None;
        let mut name_span = None;
        let mut interval = None;
        let mut mode = None;
        let named = matches!(
            kind,
            RouteKind::Request
                | RouteKind::OnReply
                | RouteKind::Branch
                | RouteKind::Failure
                | RouteKind::Timer
                | RouteKind::Event
        );
        if self.at(&T::LBracket) {
            if !named {
                self.err_here(format!("{kwtext} does not take a name"));
                return Err(Fail);
            }
            self.bump();
            let (n, s) = self.route_name()?;
            name = Some(n);
            name_span = Some(s);
            if kind == RouteKind::Timer {
                self.expect(&T::Comma, "',' and the interval in seconds")?;
                match self.peek().clone() {
                    T::Int(n) => {
                        self.bump();
                        interval = Some(n);
                    }
                    _ => return Err(self.expected("the timer interval in seconds")),
                }
            } else if kind == RouteKind::Event && self.eat(&T::Comma) {
                match self.word() {
                    Some(w @ ("sync" | "async")) => {
                        mode = Some(w.to_owned());
                        self.bump();
                    }
                    _ => return Err(self.expected("'sync' or 'async'")),
                }
            }
            self.expect(&T::RBracket, "']'")?;
        } else if !matches!(
            kind,
            RouteKind::Request
                | RouteKind::OnReply
                | RouteKind::Error
                | RouteKind::Local
                | RouteKind::Startup
        ) {
            let f = self.expected(&format!("'[' and a name after {kwtext}"));
            return Err(f);
        }
        let body = self.braced_block(&format!("'{{' to open the {kwtext} body"))?;
        let span = kw.span.to(body.span);
        let key_name = match (kind, name.as_deref()) {
            (RouteKind::Request, Some("0")) => None,
            (RouteKind::Timer, _) => None,
            (_, n) => n.map(str::to_owned),
        };
        if kind != RouteKind::Timer && !self.routes_seen.insert((kind, key_name.clone())) {
            let what = match key_name {
                Some(n) => format!("{kwtext}[{n}]"),
                None => kwtext.to_owned(),
            };
            self.err_span(
                name_span.unwrap_or(kw.span),
                format!("{what} is defined more than once"),
            );
        }
        Ok(RouteBlock {
            kind,
            name,
            name_span,
            interval,
            mode,
            body,
            span,
        })
    }

    // ---------------------------------------------------------------- statements

    fn braced_block(&mut self, what: &str) -> PResult<Block> {
        let open = self.expect(&T::LBrace, what)?;
        let mut stmts = Vec::new();
        loop {
            match self.peek() {
                T::RBrace => {
                    let close = self.bump();
                    return Ok(Block {
                        stmts,
                        span: open.span.to(close.span),
                    });
                }
                T::Eof => {
                    self.err_span(open.span, "unclosed '{'").hint =
                        Some("add the matching '}'".to_owned());
                    return Ok(Block {
                        stmts,
                        span: open.span,
                    });
                }
                _ if self.tok(0).line_start && self.is_route_start() && self.depth == 0 => {
                    self.err_span(open.span, "unclosed '{'").hint = Some(format!(
                        "a '}}' is missing before the {} block on line starting here",
                        self.word().unwrap_or("route")
                    ));
                    return Ok(Block {
                        stmts,
                        span: open.span,
                    });
                }
                _ => {}
            }
            let before = self.pos;
            match self.statement() {
                Ok(Some(s)) => stmts.push(s),
                Ok(None) => {}
                Err(Fail) => self.recover_stmt(before),
            }
            if self.pos == before && !matches!(self.peek(), T::RBrace | T::Eof) {
                self.bump();
            }
        }
    }

    /// Skips the rest of a failed statement that started at token index `start`: up to a
    /// `;` or the end of a `{ }` body at the statement's own nesting level, or just before
    /// a `}` closing the enclosing block.
    fn recover_stmt(&mut self, start: usize) {
        // Only braces matter: an unclosed '(' must not swallow the enclosing block.
        let mut depth = 0i32;
        for t in &self.toks[start.min(self.pos)..self.pos] {
            match t.kind {
                T::LBrace => depth += 1,
                T::RBrace => depth -= 1,
                _ => {}
            }
        }
        let mut depth = depth.max(0);
        loop {
            match self.peek() {
                T::Eof => return,
                T::Semi if depth <= 0 => {
                    self.bump();
                    return;
                }
                T::LBrace => depth += 1,
                T::RBrace => {
                    if depth <= 0 {
                        return;
                    }
                    depth -= 1;
                    if depth == 0 {
                        self.bump();
                        if self.is_word(0, "else") {
                            continue;
                        }
                        return;
                    }
                }
                _ => {}
            }
            if self.tok(0).line_start && self.is_route_start() {
                return;
            }
            self.bump();
        }
    }

    /// A statement body: `{ ... }` or a single statement.
    fn body(&mut self) -> PResult<Block> {
        if self.at(&T::LBrace) {
            self.enter()?;
            let b = self.braced_block("'{'");
            self.leave();
            return b;
        }
        let start = self.tok(0).span;
        self.enter()?;
        let s = self.statement();
        self.leave();
        let stmts = s?.into_iter().collect();
        Ok(Block {
            stmts,
            span: self.span_from(start),
        })
    }

    fn statement(&mut self) -> PResult<Option<Stmt>> {
        let start = self.tok(0).span;
        let kind = match self.peek().clone() {
            T::Semi => {
                self.bump();
                return Ok(None);
            }
            T::LBrace => {
                let d = self.err_here("unexpected '{'");
                d.hint = Some(
                    "a block is only allowed as the body of if/else/while/for/switch".to_owned(),
                );
                self.enter()?;
                let r = self.braced_block("'{'");
                self.leave();
                r?;
                return Ok(None);
            }
            T::Var(_) => {
                let t = self.bump();
                let lhs = self.var_from(&t);
                let a = self.assignment(lhs)?;
                self.end_stmt()?;
                StmtKind::Assign(a)
            }
            T::Ident(w) => match w.as_str() {
                "if" => self.if_stmt()?,
                "while" => {
                    self.bump();
                    self.expect(&T::LParen, "'(' after while")?;
                    let cond = self.cond()?;
                    self.expect(&T::RParen, "')' to close the while condition")?;
                    self.breakable += 1;
                    let body = self.body();
                    self.breakable -= 1;
                    StmtKind::While { cond, body: body? }
                }
                "for" => {
                    self.bump();
                    self.expect(&T::LParen, "'(' after for")?;
                    let var = self.expect_var("an iterator variable")?;
                    if !self.is_word(0, "in") {
                        return Err(self.expected("'in'"));
                    }
                    self.bump();
                    let source = self.expect_var("a variable to iterate over")?;
                    self.expect(&T::RParen, "')'")?;
                    if !matches!(var.class.as_str(), "var" | "avp" | "json") {
                        self.err_span(
                            var.span,
                            "for-each iterator must be a $var, $avp or $json variable",
                        );
                    }
                    self.breakable += 1;
                    let body = self.body();
                    self.breakable -= 1;
                    StmtKind::ForEach {
                        var,
                        source,
                        body: body?,
                    }
                }
                "switch" => self.switch_stmt()?,
                "break" => {
                    let t = self.bump();
                    if self.breakable == 0 {
                        self.err_span(t.span, "'break' outside of switch, while or for");
                    }
                    self.end_stmt()?;
                    StmtKind::Break
                }
                "else" => {
                    self.err_here("'else' without a matching 'if'");
                    return Err(Fail);
                }
                "case" | "default" => {
                    self.err_here(format!("'{w}' outside of a switch"));
                    return Err(Fail);
                }
                _ => {
                    let c = self.cmd()?;
                    self.end_stmt()?;
                    StmtKind::Cmd(c)
                }
            },
            _ => {
                let found = self.peek().describe();
                let d = self.err_here(format!("expected a statement, found {found}"));
                if matches!(found.as_str(), "'}'") {
                    d.hint = Some("there may be an extra '}'".to_owned());
                }
                return Err(Fail);
            }
        };
        Ok(Some(Stmt {
            kind,
            span: self.span_from(start),
        }))
    }

    fn end_stmt(&mut self) -> PResult<()> {
        if self.eat(&T::Semi) {
            return Ok(());
        }
        let prev = self.prev_span();
        let found = self.peek().describe();
        let span = if self.tok(0).line_start {
            Span::new(prev.file, prev.end, prev.end)
        } else {
            self.tok(0).span
        };
        let d = Diagnostic::error(span, format!("missing ';' before {found}"))
            .with_hint("every command and assignment ends with ';'");
        self.diags.push(d);
        // If the next token starts a new line, assume only the ';' is missing.
        if self.tok(0).line_start || matches!(self.peek(), T::RBrace) {
            return Ok(());
        }
        Err(Fail)
    }

    fn expect_var(&mut self, what: &str) -> PResult<ScriptVar> {
        if let T::Var(_) = self.peek() {
            let t = self.bump();
            Ok(self.var_from(&t))
        } else {
            Err(self.expected(what))
        }
    }

    fn if_stmt(&mut self) -> PResult<StmtKind> {
        self.bump();
        self.expect(&T::LParen, "'(' after if")?;
        let cond = self.cond()?;
        self.expect(&T::RParen, "')' to close the if condition")?;
        let then = self.body()?;
        let els = if self.is_word(0, "else") {
            self.bump();
            Some(self.body()?)
        } else {
            None
        };
        Ok(StmtKind::If { cond, then, els })
    }

    fn switch_stmt(&mut self) -> PResult<StmtKind> {
        self.bump();
        self.expect(&T::LParen, "'(' after switch")?;
        let subject = self.expect_var("a variable to switch on")?;
        self.expect(&T::RParen, "')'")?;
        let open = self.expect(&T::LBrace, "'{' to open the switch body")?;
        let mut cases = Vec::new();
        let mut default: Option<Block> = None;
        self.breakable += 1;
        let r = (|| -> PResult<()> {
            loop {
                match self.peek().clone() {
                    T::RBrace => {
                        self.bump();
                        return Ok(());
                    }
                    T::Eof => {
                        self.err_span(open.span, "unclosed '{' of switch");
                        return Err(Fail);
                    }
                    T::Ident(w) if w == "case" => {
                        let start = self.bump().span;
                        let value = if let Some((n, _)) = self.snumber() {
                            CaseValue::Int(n)
                        } else if let T::Str { value, .. } = self.peek().clone() {
                            self.bump();
                            CaseValue::Str(value)
                        } else {
                            return Err(self.expected("a number or string case label"));
                        };
                        self.expect(&T::Colon, "':' after the case label")?;
                        if default.is_some() {
                            self.err_span(start, "'case' after 'default'").hint =
                                Some("'default' must be the last label of a switch".to_owned());
                        }
                        let body = self.case_body()?;
                        cases.push(Case {
                            value,
                            span: start.to(body.span),
                            body,
                        });
                    }
                    T::Ident(w) if w == "default" => {
                        let start = self.bump().span;
                        self.expect(&T::Colon, "':' after default")?;
                        let body = self.case_body()?;
                        if default.is_some() {
                            self.err_span(start, "more than one 'default' in switch");
                        }
                        default = Some(body);
                    }
                    _ => {
                        return Err(self.expected("'case', 'default' or '}'"));
                    }
                }
            }
        })();
        self.breakable -= 1;
        if r.is_err() {
            // skip to the end of the switch body
            let mut depth = 1i32;
            while !self.at_eof() {
                match self.peek() {
                    T::LBrace => depth += 1,
                    T::RBrace => {
                        depth -= 1;
                        if depth == 0 {
                            self.bump();
                            break;
                        }
                    }
                    _ => {}
                }
                self.bump();
            }
        }
        Ok(StmtKind::Switch {
            subject,
            cases,
            default,
        })
    }

    fn case_body(&mut self) -> PResult<Block> {
        let start = self.tok(0).span;
        let mut stmts = Vec::new();
        loop {
            if self.at(&T::RBrace)
                || self.at_eof()
                || self.is_word(0, "case")
                || self.is_word(0, "default")
            {
                break;
            }
            let before = self.pos;
            match self.statement() {
                Ok(Some(s)) => stmts.push(s),
                Ok(None) => {}
                Err(Fail) => self.recover_stmt(before),
            }
            if self.pos == before && !self.at(&T::RBrace) && !self.at_eof() {
                self.bump();
            }
        }
        Ok(Block {
            stmts,
            span: self.span_from(start),
        })
    }

    fn assignment(&mut self, lhs: ScriptVar) -> PResult<Assign> {
        let op = match self.peek().clone() {
            T::Assign(op) => {
                self.bump();
                op
            }
            T::EqEq => {
                let d = self.err_here("expected an assignment, found '=='");
                d.hint = Some(
                    "use '=' to assign; '==' compares and is only valid in conditions".to_owned(),
                );
                return Err(Fail);
            }
            _ => return Err(self.expected("an assignment operator after the variable")),
        };
        if !lhs.transforms.is_empty() {
            self.err_span(
                lhs.span,
                "transformations are not accepted on the left side of an assignment",
            );
        }
        let rhs = if self.word().is_some_and(is_null_word) {
            let t = self.bump();
            if !matches!(op, AssignOp::Set | AssignOp::SetAll) {
                self.err_span(
                    t.span,
                    format!(
                        "NULL can only be assigned with '=' or ':=', not '{}'",
                        op.as_str()
                    ),
                );
            }
            Expr {
                kind: ExprKind::Null,
                span: t.span,
            }
        } else {
            self.aexp()?
        };
        Ok(Assign { lhs, op, rhs })
    }

    // ---------------------------------------------------------------- commands

    fn cmd(&mut self) -> PResult<Cmd> {
        let Some(word) = self.word().map(str::to_owned) else {
            return Err(self.expected("a command"));
        };
        match word.as_str() {
            "return" => {
                self.bump();
                if self.eat(&T::LParen) {
                    if self.eat(&T::RParen) {
                        return Ok(Cmd::Return(None));
                    }
                    let v = self.return_value()?;
                    self.expect(&T::RParen, "')'")?;
                    Ok(Cmd::Return(Some(v)))
                } else if matches!(self.peek(), T::Var(_) | T::Int(_) | T::Minus | T::Plus) {
                    Ok(Cmd::Return(Some(self.return_value()?)))
                } else {
                    Ok(Cmd::Return(None))
                }
            }
            "exit" | "drop" => {
                self.bump();
                if self.eat(&T::LParen) {
                    self.expect(&T::RParen, "')'")?;
                }
                Ok(if word == "exit" { Cmd::Exit } else { Cmd::Drop })
            }
            "assert" => {
                self.bump();
                self.expect(&T::LParen, "'(' after assert")?;
                let cond = self.cond()?;
                self.expect(&T::Comma, "',' and the assert message")?;
                let Some((message, _)) = self.folded_string() else {
                    return Err(self.expected("the assert message string"));
                };
                self.expect(&T::RParen, "')'")?;
                Ok(Cmd::Assert {
                    cond: Box::new(cond),
                    message,
                })
            }
            "route" => self.route_call().map(Cmd::Route),
            "async" => {
                self.bump();
                self.expect(&T::LParen, "'(' after async")?;
                let call = self.call()?;
                self.expect(&T::Comma, "',' and the resume route name")?;
                let (resume, _) = self.route_name()?;
                let timeout = if self.eat(&T::Comma) {
                    match self.snumber() {
                        Some((n, _)) => Some(n),
                        None => return Err(self.expected("a timeout in seconds")),
                    }
                } else {
                    None
                };
                self.expect(&T::RParen, "')' to close async")?;
                Ok(Cmd::Async {
                    call,
                    resume,
                    timeout,
                })
            }
            "launch" => {
                self.bump();
                self.expect(&T::LParen, "'(' after launch")?;
                let call = self.call()?;
                let mut report = None;
                let mut param = None;
                if self.eat(&T::Comma) {
                    report = Some(self.route_name()?.0);
                    if self.eat(&T::Comma) {
                        param = Some(Box::new(self.simple_arg()?));
                    }
                }
                self.expect(&T::RParen, "')' to close launch")?;
                Ok(Cmd::Launch {
                    call,
                    report,
                    param,
                })
            }
            "if" | "else" | "while" | "for" | "switch" | "case" | "default" | "break" | "in" => {
                self.err_here(format!("'{word}' is not allowed here"));
                Err(Fail)
            }
            _ => self.call().map(Cmd::Call),
        }
    }

    fn return_value(&mut self) -> PResult<Expr> {
        if let Some((n, s)) = self.snumber() {
            return Ok(Expr {
                kind: ExprKind::Int(n),
                span: s,
            });
        }
        if let T::Var(_) = self.peek() {
            let t = self.bump();
            let v = self.var_from(&t);
            return Ok(Expr {
                span: v.span,
                kind: ExprKind::Var(v),
            });
        }
        if let Some(b) = self.word().and_then(bool_word) {
            let s = self.bump().span;
            return Ok(Expr {
                kind: ExprKind::Bool(b),
                span: s,
            });
        }
        Err(self.expected("a number or a variable to return"))
    }

    fn route_call(&mut self) -> PResult<RouteCall> {
        let start = self.bump().span;
        self.expect(&T::LParen, "'(' after route")?;
        let target = match self.peek().clone() {
            T::Ident(s) => {
                self.bump();
                RouteTarget::Name(s)
            }
            T::Int(n) => {
                self.bump();
                RouteTarget::Name(n.to_string())
            }
            T::Str { value, raw } => {
                let t = self.bump();
                if value.contains('$') {
                    let origin = if raw {
                        Origin::Flat(self.flat, t.lo + 1)
                    } else {
                        Origin::Fixed(t.span)
                    };
                    RouteTarget::Format(parse_format_at(&value, origin, &mut self.diags))
                } else {
                    RouteTarget::Name(value)
                }
            }
            T::Var(_) => {
                let t = self.bump();
                RouteTarget::Var(self.var_from(&t))
            }
            _ => return Err(self.expected("a route name")),
        };
        let mut args = Vec::new();
        while self.eat(&T::Comma) {
            let a = if self.word().is_some_and(is_null_word) {
                let s = self.bump().span;
                Expr {
                    kind: ExprKind::Null,
                    span: s,
                }
            } else {
                self.simple_arg()?
            };
            args.push(a);
        }
        self.expect(&T::RParen, "')' to close route(...)")?;
        Ok(RouteCall {
            target,
            args,
            span: self.span_from(start),
        })
    }

    /// STRING{STRING} | snumber | var | bool word.
    fn simple_arg(&mut self) -> PResult<Expr> {
        if let Some((s, span)) = self.folded_string() {
            return Ok(Expr {
                kind: ExprKind::Str(s),
                span,
            });
        }
        if let Some((n, span)) = self.snumber() {
            return Ok(Expr {
                kind: ExprKind::Int(n),
                span,
            });
        }
        match self.peek().clone() {
            T::Var(_) => {
                let t = self.bump();
                let v = self.var_from(&t);
                Ok(Expr {
                    span: v.span,
                    kind: ExprKind::Var(v),
                })
            }
            T::Ident(w) if bool_word(&w).is_some() => {
                let s = self.bump().span;
                Ok(Expr {
                    kind: ExprKind::Bool(bool_word(&w).unwrap_or(false)),
                    span: s,
                })
            }
            T::Ident(w) => {
                let d = self.err_here(format!("unquoted word '{w}' used as an argument"));
                d.hint = Some(format!("quote it: \"{w}\""));
                Err(Fail)
            }
            _ => {
                let f = self.expected("a string, number or variable argument");
                Err(f)
            }
        }
    }

    fn call(&mut self) -> PResult<Call> {
        let name_tok = match self.peek() {
            T::Ident(_) => self.bump(),
            _ => return Err(self.expected("a function name")),
        };
        let name = self.text(&name_tok).to_owned();
        if !self.at(&T::LParen) {
            let d = Diagnostic::error(
                name_tok.span,
                format!("bare word '{name}' found, command calls need '()'"),
            )
            .with_found(name.clone())
            .with_hint(format!("write {name}() to call it"));
            self.diags.push(d);
            return Err(Fail);
        }
        self.bump();
        let mut args = Vec::new();
        if !self.eat(&T::RParen) {
            loop {
                if matches!(self.peek(), T::Comma | T::RParen) {
                    args.push(None);
                } else {
                    args.push(Some(self.simple_arg()?));
                }
                if self.eat(&T::Comma) {
                    continue;
                }
                self.expect(&T::RParen, "',' or ')' in the argument list")?;
                break;
            }
        }
        Ok(Call {
            name,
            name_span: name_tok.span,
            args,
            span: self.span_from(name_tok.span),
        })
    }

    // ---------------------------------------------------------------- conditions

    fn logic_op(&self) -> Option<LogicOp> {
        match self.peek() {
            T::AndAnd => Some(LogicOp::And),
            T::OrOr => Some(LogicOp::Or),
            _ => None,
        }
    }

    fn cmp_op(&self) -> Option<CmpOp> {
        Some(match self.peek() {
            T::EqEq => CmpOp::Eq,
            T::Ne => CmpOp::Ne,
            T::Lt => CmpOp::Lt,
            T::Le => CmpOp::Le,
            T::Gt => CmpOp::Gt,
            T::Ge => CmpOp::Ge,
            T::Match => CmpOp::Match,
            T::NotMatch => CmpOp::NotMatch,
            _ => return None,
        })
    }

    fn bin_op(&self, bitwise: bool) -> Option<BinOp> {
        Some(match (self.peek(), bitwise) {
            (T::Plus, false) => BinOp::Add,
            (T::Minus, false) => BinOp::Sub,
            (T::Star, false) => BinOp::Mul,
            (T::Slash, false) => BinOp::Div,
            (T::Percent, false) => BinOp::Mod,
            (T::Amp, true) => BinOp::BitAnd,
            (T::Pipe, true) => BinOp::BitOr,
            (T::Caret, true) => BinOp::BitXor,
            (T::Shl, true) => BinOp::Shl,
            (T::Shr, true) => BinOp::Shr,
            _ => return None,
        })
    }

    /// `exp` of cfg.y: `&&`/`||` on one level, left-associative.
    fn cond(&mut self) -> PResult<Expr> {
        self.enter()?;
        let r = self.cond_inner();
        self.leave();
        r
    }

    fn cond_inner(&mut self) -> PResult<Expr> {
        let mut lhs = self.cond_unary()?;
        let mut n = 0;
        while let Some(op) = self.logic_op() {
            n += 1;
            if n > MAX_CHAIN {
                self.err_here("expression too long");
                return Err(Fail);
            }
            self.bump();
            let rhs = self.cond_unary()?;
            let span = lhs.span.to(rhs.span);
            lhs = Expr {
                kind: ExprKind::Logic(op, Box::new(lhs), Box::new(rhs)),
                span,
            };
        }
        Ok(lhs)
    }

    fn cond_unary(&mut self) -> PResult<Expr> {
        self.enter()?;
        let r = self.cond_unary_inner();
        self.leave();
        r
    }

    fn cond_unary_inner(&mut self) -> PResult<Expr> {
        let start = self.tok(0).span;
        match self.peek() {
            T::Not => {
                self.bump();
                let e = self.cond_unary()?;
                Ok(Expr {
                    span: start.to(e.span),
                    kind: ExprKind::Not(Box::new(e)),
                })
            }
            T::LParen => {
                self.bump();
                let e = self.cond()?;
                self.expect(&T::RParen, "')'")?;
                let e = Expr {
                    kind: ExprKind::Paren(Box::new(e)),
                    span: self.span_from(start),
                };
                self.no_arith_after(&e)?;
                Ok(e)
            }
            T::LBracket => {
                self.bump();
                let e = self.aexp()?;
                self.expect(&T::RBracket, "']' to close the test operator")?;
                Ok(Expr {
                    kind: ExprKind::Test(Box::new(e)),
                    span: self.span_from(start),
                })
            }
            _ => {
                let e = self.cond_elem()?;
                self.no_arith_after(&e)?;
                Ok(e)
            }
        }
    }

    fn no_arith_after(&mut self, e: &Expr) -> PResult<()> {
        if self.bin_op(false).is_some() || self.bin_op(true).is_some() {
            let d = self.err_here("arithmetic is not allowed directly in a condition");
            d.hint = Some("wrap it in the test operator, e.g. if ([$var(a) + 1]) …".to_owned());
            let _ = e;
            return Err(Fail);
        }
        Ok(())
    }

    fn cond_elem(&mut self) -> PResult<Expr> {
        let t = self.tok(0).clone();
        match &t.kind {
            T::Var(_) => {
                self.bump();
                let v = self.var_from(&t);
                let vexpr = Expr {
                    span: v.span,
                    kind: ExprKind::Var(v.clone()),
                };
                if let Some(op) = self.cmp_op() {
                    self.bump();
                    return self.comparison(op, vexpr);
                }
                if let T::Assign(_) = self.peek() {
                    let a = self.assignment(v)?;
                    return Ok(Expr {
                        kind: ExprKind::Assign(Box::new(a)),
                        span: self.span_from(t.span),
                    });
                }
                Ok(vexpr)
            }
            T::Int(_) | T::Minus | T::Plus => {
                let Some((n, span)) = self.snumber() else {
                    return Err(self.expected("a condition"));
                };
                self.no_cmp_after(span)?;
                Ok(Expr {
                    kind: ExprKind::Int(n),
                    span,
                })
            }
            T::Str { .. } => {
                self.bump();
                if self.cmp_op().is_some() {
                    self.no_cmp_after(t.span)?;
                }
                let d = self.err_span(t.span, "a string cannot be used as a condition");
                d.hint = Some("compare a variable with it, e.g. $var(x) == \"…\"".to_owned());
                Err(Fail)
            }
            T::Ident(w) => {
                if let Some(b) = bool_word(w) {
                    self.bump();
                    self.no_cmp_after(t.span)?;
                    return Ok(Expr {
                        kind: ExprKind::Bool(b),
                        span: t.span,
                    });
                }
                if is_null_word(w) {
                    self.err_here("NULL cannot be used as a condition").hint =
                        Some("test a variable instead: $var(x) == NULL".to_owned());
                    return Err(Fail);
                }
                let c = self.cmd()?;
                let span = self.span_from(t.span);
                self.no_cmp_after(span)?;
                Ok(Expr {
                    kind: ExprKind::Cmd(Box::new(c)),
                    span,
                })
            }
            _ => Err(self.expected("a condition")),
        }
    }

    /// Errors when a comparison operator follows something that is not a variable.
    fn no_cmp_after(&mut self, lhs: Span) -> PResult<()> {
        if let Some(op) = self.cmp_op() {
            let d = Diagnostic::error(
                lhs,
                format!("left side of '{}' must be a script variable", op.as_str()),
            )
            .with_found(self.snippet_of(lhs))
            .with_hint("OpenSIPS only compares a variable with a value: put the variable first");
            self.diags.push(d);
            return Err(Fail);
        }
        Ok(())
    }

    fn comparison(&mut self, op: CmpOp, lhs: Expr) -> PResult<Expr> {
        let t = self.tok(0).clone();
        let eq_only = |p: &mut Self, what: &str| -> PResult<()> {
            if !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                p.err_span(
                    t.span,
                    format!("{what} can only be compared with '==' or '!='"),
                );
                return Err(Fail);
            }
            Ok(())
        };
        let rhs = match &t.kind {
            T::Var(_) => {
                self.bump();
                let v = self.var_from(&t);
                Expr {
                    span: v.span,
                    kind: ExprKind::Var(v),
                }
            }
            T::Str { value, .. } => {
                self.bump();
                Expr {
                    kind: ExprKind::Str(value.clone()),
                    span: t.span,
                }
            }
            T::Int(_) | T::Minus | T::Plus => {
                let Some((n, span)) = self.snumber() else {
                    return Err(self.expected("a value to compare with"));
                };
                if matches!(op, CmpOp::Match | CmpOp::NotMatch) {
                    self.err_span(
                        span,
                        format!(
                            "'{}' needs a string or a variable on the right",
                            op.as_str()
                        ),
                    );
                    return Err(Fail);
                }
                Expr {
                    kind: ExprKind::Int(n),
                    span,
                }
            }
            T::Ident(w) if is_null_word(w) => {
                eq_only(self, "NULL")?;
                self.bump();
                Expr {
                    kind: ExprKind::Null,
                    span: t.span,
                }
            }
            T::Ident(w) if bool_word(w).is_some() => {
                self.bump();
                Expr {
                    kind: ExprKind::Bool(bool_word(w).unwrap_or(false)),
                    span: t.span,
                }
            }
            T::Ipv4(s) | T::Ipv6(s) => {
                eq_only(self, "an IP address")?;
                self.bump();
                Expr {
                    kind: ExprKind::Ip(s.clone()),
                    span: t.span,
                }
            }
            T::IpNet(s) => {
                eq_only(self, "an IP network")?;
                self.bump();
                Expr {
                    kind: ExprKind::Net(s.clone()),
                    span: t.span,
                }
            }
            T::LBracket if matches!(self.peek_n(1), T::Ipv6(_)) => {
                eq_only(self, "an IP address")?;
                self.bump();
                let T::Ipv6(s) = self.bump().kind else {
                    return Err(Fail);
                };
                self.expect(&T::RBracket, "']'")?;
                Expr {
                    kind: ExprKind::Ip(s),
                    span: self.span_from(t.span),
                }
            }
            _ => {
                let f = self.expected(&format!(
                    "a variable, string, number, NULL or IP after '{}'",
                    op.as_str()
                ));
                return Err(f);
            }
        };
        Ok(Expr {
            span: lhs.span.to(rhs.span),
            kind: ExprKind::Compare(op, Box::new(lhs), Box::new(rhs)),
        })
    }

    // ---------------------------------------------------------------- assignment expressions

    /// `assignexp`: bitwise operators (lowest), then `+ - * / %` (one level).
    fn aexp(&mut self) -> PResult<Expr> {
        self.enter()?;
        let r = self.aexp_level(true);
        self.leave();
        r
    }

    fn aexp_level(&mut self, bitwise: bool) -> PResult<Expr> {
        let mut lhs = if bitwise {
            self.aexp_level(false)?
        } else {
            self.aexp_unary()?
        };
        let mut n = 0;
        while let Some(op) = self.bin_op(bitwise) {
            n += 1;
            if n > MAX_CHAIN {
                self.err_here("expression too long");
                return Err(Fail);
            }
            self.bump();
            let rhs = if bitwise {
                self.aexp_level(false)?
            } else {
                self.aexp_unary()?
            };
            let span = lhs.span.to(rhs.span);
            lhs = Expr {
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                span,
            };
        }
        Ok(lhs)
    }

    fn aexp_unary(&mut self) -> PResult<Expr> {
        self.enter()?;
        let r = self.aexp_unary_inner();
        self.leave();
        r
    }

    fn aexp_unary_inner(&mut self) -> PResult<Expr> {
        let t = self.tok(0).clone();
        match &t.kind {
            T::Tilde => {
                self.bump();
                let e = self.aexp_unary()?;
                Ok(Expr {
                    span: t.span.to(e.span),
                    kind: ExprKind::BitNot(Box::new(e)),
                })
            }
            T::LParen => {
                self.bump();
                let e = self.aexp()?;
                self.expect(&T::RParen, "')'")?;
                Ok(Expr {
                    kind: ExprKind::Paren(Box::new(e)),
                    span: self.span_from(t.span),
                })
            }
            T::Int(_) | T::Plus | T::Minus => match self.snumber() {
                Some((n, span)) => Ok(Expr {
                    kind: ExprKind::Int(n),
                    span,
                }),
                None => {
                    let d = self.err_here("unary minus is only allowed before a number");
                    d.hint = Some("write 0 - $var(x) instead".to_owned());
                    Err(Fail)
                }
            },
            T::Str { .. } => {
                let (s, span) = self.folded_string().unwrap_or_default();
                Ok(Expr {
                    kind: ExprKind::Str(s),
                    span,
                })
            }
            T::Var(_) => {
                self.bump();
                let v = self.var_from(&t);
                let vexpr = Expr {
                    span: v.span,
                    kind: ExprKind::Var(v),
                };
                if let Some(op) = self.cmp_op() {
                    self.bump();
                    return self.comparison(op, vexpr);
                }
                Ok(vexpr)
            }
            T::Ident(w) if bool_word(w).is_some() => {
                self.bump();
                Ok(Expr {
                    kind: ExprKind::Bool(bool_word(w).unwrap_or(false)),
                    span: t.span,
                })
            }
            T::Ident(w) if is_null_word(w) => {
                self.err_here("NULL is only allowed alone on the right of '=' or ':='");
                Err(Fail)
            }
            T::Ident(_) => {
                let c = self.cmd()?;
                Ok(Expr {
                    kind: ExprKind::Cmd(Box::new(c)),
                    span: self.span_from(t.span),
                })
            }
            T::Not => {
                let d = self.err_here("'!' is not allowed in an assignment value");
                d.hint = Some("use the condition in an if statement instead".to_owned());
                Err(Fail)
            }
            _ => Err(self.expected("a value")),
        }
    }
}
