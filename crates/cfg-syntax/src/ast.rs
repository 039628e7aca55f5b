//! The syntax tree of an `opensips.cfg`.

pub use crate::lexer::AssignOp;
use crate::source::Span;
use crate::var::{Format, ScriptVar};

/// A whole configuration: top-level items in source order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// Items in order of appearance (after include expansion).
    pub items: Vec<Item>,
}

/// A top-level statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `name = value` (including `socket=`, `mpath=`).
    Param(GlobalParam),
    /// `loadmodule "path"`.
    LoadModule(LoadModule),
    /// `modparam("mod", "param", value)`.
    ModParam(ModParam),
    /// A route block.
    Route(RouteBlock),
}

/// A global parameter assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalParam {
    /// Parameter name as written (`log_level`, `socket`, `mem-group`, …).
    pub name: String,
    /// Span of the name.
    pub name_span: Span,
    /// The value.
    pub value: Value,
    /// The whole statement.
    pub span: Span,
}

/// Value of a global parameter or module parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Number (possibly negative).
    Int(i64),
    /// String (adjacent strings folded).
    Str(String),
    /// `yes`/`no`/`on`/`off`/`true`/`false`/`enable`/`disable`.
    Bool(bool),
    /// `NULL` / `null`.
    Null,
    /// A bare word or host name (`LOG_LOCAL0`, `sip.example.com`).
    Ident(String),
    /// An IPv4 or IPv6 address.
    Ip(String),
    /// An IP network.
    Net(String),
    /// A listening socket definition.
    Socket(SocketDef),
    /// Several values (e.g. `alias` lists, `udp_workers = 4 use_auto_scaling_profile P`).
    List(Vec<Self>),
    /// Punctuation or keyword kept verbatim inside a list (e.g. `%` in auto-scaling profiles).
    Word(String),
    /// Text kept verbatim (e.g. the body of `dst_blacklist`).
    Raw(String),
}

/// `proto:host[:port[-port]] [as host[:port]] [use_workers N] [tag ID] [anycast] …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketDef {
    /// Transport name; `None` when omitted (only valid for `alias`).
    pub proto: Option<String>,
    /// Host, IP (IPv6 without brackets), interface name, or `*`.
    pub host: String,
    /// Port, if given.
    pub port: Option<u16>,
    /// Last port of a `port-port` range.
    pub port_end: Option<u16>,
    /// `as host[:port]`.
    pub advertised: Option<(String, Option<u16>)>,
    /// `use_workers N`.
    pub workers: Option<i64>,
    /// `use_auto_scaling_profile NAME`.
    pub auto_scaling_profile: Option<String>,
    /// `tag NAME`.
    pub tag: Option<String>,
    /// `tos N|NAME`.
    pub tos: Option<String>,
    /// Boolean flags: `anycast`, `frag`, `reuse_port`, `accept_subdomain`, `frontend`, …
    pub flags: Vec<String>,
    /// Where it is.
    pub span: Span,
}

/// `loadmodule "…"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadModule {
    /// Path as written.
    pub path: String,
    /// Base module name: directory and `.so` stripped.
    pub name: String,
    /// Where it is.
    pub span: Span,
}

/// `modparam("mod", "param", value)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModParam {
    /// Module name or regex (`"usrloc|registrar"`).
    pub module: String,
    /// Parameter name.
    pub param: String,
    /// `Str`, `Int` or `Bool` value.
    pub value: Value,
    /// Where it is.
    pub span: Span,
}

/// Kinds of route blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// `route` / `route[name]`.
    Request,
    /// `branch_route[name]`.
    Branch,
    /// `failure_route[name]`.
    Failure,
    /// `onreply_route` / `onreply_route[name]`.
    OnReply,
    /// `error_route`.
    Error,
    /// `local_route`.
    Local,
    /// `startup_route`.
    Startup,
    /// `timer_route[name, secs]`.
    Timer,
    /// `event_route[E_NAME]`.
    Event,
}

impl RouteKind {
    /// Keyword spelling.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Request => "route",
            Self::Branch => "branch_route",
            Self::Failure => "failure_route",
            Self::OnReply => "onreply_route",
            Self::Error => "error_route",
            Self::Local => "local_route",
            Self::Startup => "startup_route",
            Self::Timer => "timer_route",
            Self::Event => "event_route",
        }
    }

    /// Parses a keyword.
    pub fn from_keyword(s: &str) -> Option<Self> {
        Some(match s {
            "route" => Self::Request,
            "branch_route" => Self::Branch,
            "failure_route" => Self::Failure,
            "onreply_route" => Self::OnReply,
            "error_route" => Self::Error,
            "local_route" => Self::Local,
            "startup_route" => Self::Startup,
            "timer_route" => Self::Timer,
            "event_route" => Self::Event,
            _ => return None,
        })
    }
}

/// A route block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteBlock {
    /// Which kind.
    pub kind: RouteKind,
    /// Name inside `[...]` (ID, number or string), if any. `route` with no name or
    /// `route[0]` is the main request route.
    pub name: Option<String>,
    /// Span of the name.
    pub name_span: Option<Span>,
    /// Interval in seconds (`timer_route` only).
    pub interval: Option<i64>,
    /// `sync`/`async` mode word of `event_route[E, async]`.
    pub mode: Option<String>,
    /// Statements.
    pub body: Block,
    /// Whole block.
    pub span: Span,
}

impl RouteBlock {
    /// True for the main request route (`route { }` or `route[0]`).
    pub fn is_main(&self) -> bool {
        self.kind == RouteKind::Request && self.name.as_deref().is_none_or(|n| n == "0")
    }
}

/// A `{ … }` list of statements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Block {
    /// Statements in order.
    pub stmts: Vec<Stmt>,
    /// The braces (or the single statement for unbraced bodies).
    pub span: Span,
}

/// A statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stmt {
    /// What it is.
    pub kind: StmtKind,
    /// Where it is.
    pub span: Span,
}

/// Statement kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StmtKind {
    /// A command: function call, `route(...)`, `return`, `exit`, …
    Cmd(Cmd),
    /// `$var = expr;`
    Assign(Assign),
    /// `if (cond) … [else …]`.
    If {
        /// Condition.
        cond: Expr,
        /// Then branch.
        then: Block,
        /// Else branch (an `else if` is a block holding one `If`).
        els: Option<Block>,
    },
    /// `while (cond) …`.
    While {
        /// Condition.
        cond: Expr,
        /// Body.
        body: Block,
    },
    /// `for ($var(x) in $avp(y)) …`.
    ForEach {
        /// Iterator variable.
        var: ScriptVar,
        /// Iterated variable.
        source: ScriptVar,
        /// Body.
        body: Block,
    },
    /// `switch ($var) { case …: … default: … }`.
    Switch {
        /// Switched-on variable.
        subject: ScriptVar,
        /// Cases in order.
        cases: Vec<Case>,
        /// `default:` body.
        default: Option<Block>,
    },
    /// `break;`
    Break,
}

/// One `case`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The label.
    pub value: CaseValue,
    /// Statements up to the next label (may be empty: fall-through).
    pub body: Block,
    /// Where it is.
    pub span: Span,
}

/// A case label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseValue {
    /// Number.
    Int(i64),
    /// String.
    Str(String),
}

/// Commands: usable as statements and as conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// `name(args)` — core or module function, including `log`, `xlog`, `xdbg`, `error`.
    Call(Call),
    /// `route(name[, params])`.
    Route(RouteCall),
    /// `return`, `return(expr)`.
    Return(Option<Expr>),
    /// `exit`.
    Exit,
    /// `drop`.
    Drop,
    /// `assert(cond, "msg")`.
    Assert {
        /// Checked condition.
        cond: Box<Expr>,
        /// Message.
        message: String,
    },
    /// `async(fn(args), resume_route[, timeout])`.
    Async {
        /// Async function call.
        call: Call,
        /// Resume route name.
        resume: String,
        /// Optional timeout.
        timeout: Option<i64>,
    },
    /// `launch(fn(args)[, report_route[, param]])`.
    Launch {
        /// Async function call.
        call: Call,
        /// Report route.
        report: Option<String>,
        /// Extra parameter passed to the report route.
        param: Option<Box<Expr>>,
    },
}

/// A function call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Function name.
    pub name: String,
    /// Span of the name.
    pub name_span: Span,
    /// Arguments; `None` for an omitted optional one (`f("a",,"c")`).
    pub args: Vec<Option<Expr>>,
    /// Whole call.
    pub span: Span,
}

/// `route(target, params…)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteCall {
    /// Which route.
    pub target: RouteTarget,
    /// Parameters, read as `$param(n)` in the called route.
    pub args: Vec<Expr>,
    /// Whole call.
    pub span: Span,
}

/// Target of `route(...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTarget {
    /// Constant name.
    Name(String),
    /// A string containing variables, resolved at run time.
    Format(Format),
    /// A variable holding the name.
    Var(ScriptVar),
}

/// An assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assign {
    /// Assigned variable.
    pub lhs: ScriptVar,
    /// Operator.
    pub op: AssignOp,
    /// Value (`ExprKind::Null` for `= NULL`).
    pub rhs: Expr,
}

/// An expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it is.
    pub span: Span,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `=~`
    Match,
    /// `!~`
    NotMatch,
}

impl CmpOp {
    /// Source spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Match => "=~",
            Self::NotMatch => "!~",
        }
    }
}

/// Arithmetic and bitwise operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `&`
    BitAnd,
    /// `|`
    BitOr,
    /// `^`
    BitXor,
    /// `<<`
    Shl,
    /// `>>`
    Shr,
}

impl BinOp {
    /// Source spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "+",
            Self::Sub => "-",
            Self::Mul => "*",
            Self::Div => "/",
            Self::Mod => "%",
            Self::BitAnd => "&",
            Self::BitOr => "|",
            Self::BitXor => "^",
            Self::Shl => "<<",
            Self::Shr => ">>",
        }
    }
}

/// `&&` / `||`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogicOp {
    /// `&&` / `and`
    And,
    /// `||` / `or`
    Or,
}

/// Expression kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprKind {
    /// Number.
    Int(i64),
    /// String literal (may contain variables; see [`crate::parse_format`]).
    Str(String),
    /// `yes`/`no`/… (numbers 1/0 in OpenSIPS).
    Bool(bool),
    /// `NULL`.
    Null,
    /// IP address literal.
    Ip(String),
    /// IP network literal.
    Net(String),
    /// A variable.
    Var(ScriptVar),
    /// A command used as a value or condition.
    Cmd(Box<Cmd>),
    /// An assignment used as a condition.
    Assign(Box<Assign>),
    /// `!e`
    Not(Box<Expr>),
    /// `~e`
    BitNot(Box<Expr>),
    /// `a && b`, `a || b` (same precedence, left-associative).
    Logic(LogicOp, Box<Expr>, Box<Expr>),
    /// `var op value`.
    Compare(CmpOp, Box<Expr>, Box<Expr>),
    /// Arithmetic / bitwise.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `[ expr ]` test operator.
    Test(Box<Expr>),
    /// `( expr )`.
    Paren(Box<Expr>),
}
