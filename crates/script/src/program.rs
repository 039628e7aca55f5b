//! The compiled program: routes of resolved statement nodes, pre-split formats, resolved
//! pseudo-variables and transformations.

use std::fmt;
use std::sync::Arc;

use sipox_cfg_syntax::{AssignOp, BinOp, RouteKind};
use sipox_sip_msg::HeaderKind;

use crate::registry::Call;
use crate::shared::Shared;
use crate::trans::Trans;

/// Index of a route in [`Program`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteId(pub u32);

/// A compiled configuration, shared by every worker.
pub struct Program {
    pub(crate) routes: Vec<Route>,
    pub(crate) var_names: Vec<String>,
    pub(crate) avp_names: Vec<String>,
    pub(crate) flag_names: Vec<String>,
    pub(crate) bflag_names: Vec<String>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) max_while_loops: u32,
    pub(crate) unimplemented: Vec<(&'static str, &'static str)>,
    pub(crate) globals: Vec<(String, sipox_cfg_syntax::Value)>,
    pub(crate) modules: Vec<String>,
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Program")
            .field("routes", &self.routes.len())
            .field("vars", &self.var_names)
            .field("avps", &self.avp_names)
            .finish_non_exhaustive()
    }
}

impl Program {
    /// The route of a kind and name (`None` name = the unnamed one; `"0"` for main).
    pub fn route(&self, kind: RouteKind, name: Option<&str>) -> Option<RouteId> {
        let key = match (kind, name) {
            (RouteKind::Request, None) => "0",
            (_, None) => "",
            (_, Some(n)) => n,
        };
        // A linear scan: scripts have tens of routes, and it allocates nothing.
        self.routes
            .iter()
            .position(|r| r.kind == kind && r.name == key)
            .and_then(|i| u32::try_from(i).ok())
            .map(RouteId)
    }

    /// Every route as `(kind, name)`, in id order.
    pub fn routes(&self) -> impl Iterator<Item = (RouteKind, &str)> + '_ {
        self.routes.iter().map(|r| (r.kind, r.name.as_str()))
    }

    /// Functions (and `$pseudo-variables`) the script uses that are declared (so the script
    /// compiles) but not implemented yet: `(module, name)`, sorted and deduplicated.
    pub fn unimplemented_functions(&self) -> &[(&'static str, &'static str)] {
        &self.unimplemented
    }

    /// Shared state (log level, cache, `$shv`, locks).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Loaded module names, in `loadmodule` order.
    pub fn modules(&self) -> &[String] {
        &self.modules
    }

    /// A global parameter's value as written.
    pub fn global(&self, name: &str) -> Option<&sipox_cfg_syntax::Value> {
        self.globals
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// Names of every `$var` the script uses, in slot order.
    pub fn var_names(&self) -> &[String] {
        &self.var_names
    }

    /// Names of the branch flags the script uses, in bit order.
    pub fn bflag_names(&self) -> &[String] {
        &self.bflag_names
    }

    /// Number of routes.
    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    pub(crate) fn flag_bit(&self, name: &str) -> Option<u32> {
        self.flag_names
            .iter()
            .position(|n| n == name)
            .and_then(|p| u32::try_from(p).ok())
    }
}

/// A compiled route.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) kind: RouteKind,
    pub(crate) name: String,
    pub(crate) body: Block,
}

pub(crate) type Block = Box<[Stmt]>;

/// Statements.
#[derive(Debug)]
pub(crate) enum Stmt {
    /// An expression evaluated for its effect (function call, route call, …).
    Expr(Expr),
    Assign(Box<AssignNode>),
    If(Box<Expr>, Block, Block),
    While {
        cond: Box<Expr>,
        body: Block,
        line: u32,
    },
    ForEach {
        var: Box<PvRef>,
        src: Box<PvRef>,
        body: Block,
    },
    Switch {
        subject: Box<PvRef>,
        cases: Box<[(CaseVal, Block)]>,
        default: Option<Block>,
    },
    Break,
    Return(Option<Box<Expr>>),
    Exit,
    Drop,
}

#[derive(Debug)]
pub(crate) enum CaseVal {
    Int(i64),
    Str(Box<[u8]>),
}

#[derive(Debug)]
pub(crate) struct AssignNode {
    pub(crate) lhs: PvRef,
    pub(crate) op: AssignOp,
    pub(crate) rhs: Expr,
}

/// Expressions.
#[derive(Debug)]
pub(crate) enum Expr {
    Int(i64),
    Str(Box<[u8]>),
    Fmt(Fmt),
    Null,
    Pv(Box<PvRef>),
    Call(Box<CallNode>),
    Route(Box<RouteCallNode>),
    Not(Box<Self>),
    BitNot(Box<Self>),
    And(Box<Self>, Box<Self>),
    Or(Box<Self>, Box<Self>),
    Cmp(sipox_cfg_syntax::CmpOp, Box<Self>, Box<Self>),
    Match(Box<Self>, RegexOperand, bool),
    InNet(Box<Self>, crate::trans::IpNet, bool),
    Bin(BinOp, Box<Self>, Box<Self>),
    Assign(Box<AssignNode>),
    /// `return`/`exit`/`drop` used where an expression is expected.
    Control(Box<Stmt>),
    Log(Box<LogNode>),
    Assert(Box<Self>, Box<[u8]>),
}

#[derive(Debug)]
pub(crate) enum RegexOperand {
    Const(regex::bytes::Regex),
    Dyn(Box<Expr>),
}

/// `xlog`/`log`/`xdbg`.
#[derive(Debug)]
pub(crate) struct LogNode {
    pub(crate) level: LogLevel,
    pub(crate) fmt: Fmt,
}

#[derive(Debug)]
pub(crate) enum LogLevel {
    Fixed(i32),
    Dyn(Fmt),
}

/// A compiled function call.
pub(crate) struct CallNode {
    pub(crate) name: &'static str,
    pub(crate) call: Box<dyn Call>,
}

impl fmt::Debug for CallNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}()", self.name)
    }
}

#[derive(Debug)]
pub(crate) struct RouteCallNode {
    pub(crate) target: RouteTarget,
    pub(crate) args: Box<[Expr]>,
}

#[derive(Debug)]
pub(crate) enum RouteTarget {
    Id(RouteId),
    Dyn(Fmt),
}

/// A pre-split format string: literal pieces and variables.
#[derive(Debug, Clone, Default)]
pub struct Fmt {
    pub(crate) parts: Box<[FmtPart]>,
}

impl Fmt {
    /// A format of literal text only.
    pub fn literal(s: &[u8]) -> Self {
        Self {
            parts: Box::new([FmtPart::Lit(s.into())]),
        }
    }

    /// The literal text when the format has no variables.
    pub fn as_const(&self) -> Option<&[u8]> {
        match &*self.parts {
            [] => Some(b""),
            [FmtPart::Lit(s)] => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum FmtPart {
    Lit(Box<[u8]>),
    Pv(Box<PvRef>),
}

/// A resolved pseudo-variable reference: class, optional index, transformations.
#[derive(Debug, Clone)]
pub struct PvRef {
    pub(crate) pv: Pv,
    pub(crate) idx: Idx,
    pub(crate) trans: Box<[Trans]>,
    /// `$(<request>...)` (`Some(true)`) or `$(<reply>...)` (`Some(false)`).
    pub(crate) ctx: Option<bool>,
}

/// An index `[n]`, `[*]`, `[$var(i)]`.
#[derive(Debug, Clone)]
pub(crate) enum Idx {
    None,
    Int(i64),
    All,
    Dyn(Box<PvRef>),
    Append,
}

/// The pseudo-variable classes.
#[derive(Debug, Clone)]
pub(crate) enum Pv {
    ConstInt(i64),
    ConstStr(Box<[u8]>),
    Var(u32),
    Avp(u32),
    AvpDyn(Fmt),
    Param(ParamRef),
    Ruri,
    RuriUser,
    RuriHost,
    RuriPort,
    RuriProto,
    RuriQ,
    Ouri,
    OuriUser,
    OuriHost,
    OuriPort,
    OuriProto,
    Duri,
    DuriHost,
    DuriPort,
    DuriProto,
    Naddr(HeaderKind, NaPart),
    Callid,
    Cseq,
    Method,
    ContentLength,
    ContentType,
    UserAgent,
    Contact,
    ContactField(ContactField),
    Path,
    Hdr(HdrName),
    HdrCnt(HdrName),
    HdrName,
    MsgBuf,
    MsgLen,
    MsgId,
    Body,
    Status,
    Reason,
    MsgType,
    MsgIsRequest,
    MsgFlag(u32),
    MsgFlags,
    BranchFlags,
    SrcIp,
    SrcPort,
    SocketIn(SockPart),
    /// `$socket_out` / `$socket_out(field)`: the forced send socket, else the receiving one.
    SocketOut(SockPart),
    Auth(AuthPart),
    Branch(BranchPart),
    BranchFlag(u32),
    DestSet,
    Rc,
    RouteName,
    RouteFull,
    RouteType,
    Argv(Box<str>),
    ArgvAll,
    Ts,
    Tsm,
    Tf,
    TStart,
    Time(Box<str>),
    Pid,
    LogLevel,
    XlogLevel,
    Color(Box<[u8]>),
    Err(usize),
    Shv(u32),
    Env(Box<[u8]>),
    Random,
    Ctime(CtimePart),
    Module(Arc<dyn crate::registry::ModulePv>),
}

#[derive(Debug, Clone)]
pub(crate) enum ParamRef {
    Index(usize),
    Name(Box<str>),
    Dyn(Fmt),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NaPart {
    Uri,
    User,
    Host,
    Display,
    Tag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContactField {
    Uri,
    Name,
    Q,
    Expires,
    Methods,
    Received,
    Params,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SockPart {
    Whole,
    Ip,
    Port,
    Proto,
    AdvIp,
    AdvPort,
    Tag,
    Anycast,
    Af,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthPart {
    Acc,
    User,
    WholeUser,
    Realm,
    Domain,
    Uri,
    Nonce,
    Response,
    Cnonce,
    Opaque,
    Alg,
    Qop,
    Nc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BranchPart {
    New,
    Uri,
    Duri,
    Q,
    Path,
    Flags,
    Socket,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CtimePart {
    Sec,
    Min,
    Hour,
    Mday,
    Mon,
    Year,
    Wday,
    Yday,
}

/// A header name resolved at load time.
#[derive(Debug, Clone)]
pub(crate) struct HdrName {
    pub(crate) kind: HeaderKind,
    pub(crate) name: Box<[u8]>,
}
