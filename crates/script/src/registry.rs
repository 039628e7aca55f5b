//! The function registry: signatures, compiled arguments, the [`ScriptFn`]/[`Call`] traits,
//! and the static tables the core and every module fill.

use std::fmt;
use std::sync::Arc;

use sipox_cfg_syntax::RouteKind;

use crate::cx::{MsgCx, Ret, RunError, Stop};
use crate::program::{Fmt, PvRef, RouteId};
use crate::shared::Shared;
use crate::value::Kind;

/// Route-type bits (OpenSIPS `route.h`): where a function may be used.
pub mod route_mask {
    /// `route`.
    pub const REQUEST: u16 = 1;
    /// `failure_route`.
    pub const FAILURE: u16 = 2;
    /// `onreply_route`.
    pub const ONREPLY: u16 = 4;
    /// `branch_route`.
    pub const BRANCH: u16 = 8;
    /// `error_route`.
    pub const ERROR: u16 = 16;
    /// `local_route`.
    pub const LOCAL: u16 = 32;
    /// `startup_route`.
    pub const STARTUP: u16 = 64;
    /// `timer_route`.
    pub const TIMER: u16 = 128;
    /// `event_route`.
    pub const EVENT: u16 = 256;
    /// Every route type.
    pub const ALL: u16 = 0x1ff;
}

/// The bit of a route kind.
pub fn route_bit(k: RouteKind) -> u16 {
    use route_mask::*;
    match k {
        RouteKind::Request => REQUEST,
        RouteKind::Failure => FAILURE,
        RouteKind::OnReply => ONREPLY,
        RouteKind::Branch => BRANCH,
        RouteKind::Error => ERROR,
        RouteKind::Local => LOCAL,
        RouteKind::Startup => STARTUP,
        RouteKind::Timer => TIMER,
        RouteKind::Event => EVENT,
    }
}

/// Kind of a function parameter (OpenSIPS `CMD_PARAM_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// Integer: a literal or a variable read per call.
    Int,
    /// String with variables expanded per call.
    Str,
    /// Constant string (no variables allowed).
    StaticStr,
    /// An output variable (must be a writable pseudo-variable).
    Var,
    /// Regular expression (compiled once when constant).
    Regex,
    /// Anything: literal int or string, or a variable (module stubs).
    Any,
}

/// One parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    /// Its kind.
    pub kind: ParamKind,
    /// May be omitted.
    pub optional: bool,
}

/// A function signature.
#[derive(Debug, Clone)]
pub struct Sig {
    /// Function name as used in scripts.
    pub name: &'static str,
    /// Exporting module (`"core"` for core functions).
    pub module: &'static str,
    /// Parameters.
    pub params: Vec<ParamSpec>,
    /// Allowed route types ([`route_mask`]).
    pub routes: u16,
}

impl Sig {
    /// Parses `"s,i?,v"`-style parameter lists: `i` int, `s` string, `S` static string,
    /// `v` variable, `r` regex, `a` any; `?` marks optional.
    pub fn new(module: &'static str, name: &'static str, params: &str, routes: u16) -> Self {
        let params = params
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let optional = p.ends_with('?');
                let kind = match p.trim_end_matches('?') {
                    "i" => ParamKind::Int,
                    "s" => ParamKind::Str,
                    "S" => ParamKind::StaticStr,
                    "v" => ParamKind::Var,
                    "r" => ParamKind::Regex,
                    _ => ParamKind::Any,
                };
                ParamSpec { kind, optional }
            })
            .collect();
        Self {
            name,
            module,
            params,
            routes,
        }
    }

    /// Least number of arguments.
    pub fn min_args(&self) -> usize {
        self.params
            .iter()
            .rposition(|p| !p.optional)
            .map_or(0, |i| i + 1)
    }
}

/// An integer argument.
#[derive(Debug, Clone)]
pub enum IntArg {
    /// Fixed at load.
    Const(i64),
    /// Read per call.
    Dyn(Box<PvRef>),
}

/// A regex argument.
#[derive(Debug, Clone)]
pub enum RegexArg {
    /// Compiled at load.
    Const(regex::bytes::Regex),
    /// Compiled per call from the expanded format.
    Dyn(Fmt),
}

impl RegexArg {
    /// True when the regex matches `hay`; a dynamic regex is compiled per call (a bad one logs
    /// an error and matches nothing).
    pub fn is_match(&self, cx: &mut MsgCx, hay: &[u8]) -> bool {
        match self {
            Self::Const(re) => re.is_match(hay),
            Self::Dyn(f) => {
                let mut b = cx.take_buf();
                cx.eval_fmt(f, &mut b);
                let re = regex::bytes::Regex::new(&String::from_utf8_lossy(&b));
                cx.give_buf(b);
                match re {
                    Ok(re) => re.is_match(hay),
                    Err(_) => {
                        cx.log(-1, b"ERROR: bad regular expression");
                        false
                    }
                }
            }
        }
    }
}

/// A compiled argument, shaped by its [`ParamKind`].
#[derive(Debug, Clone)]
pub enum Arg {
    /// Omitted optional argument.
    None,
    /// Integer.
    Int(IntArg),
    /// Format string.
    Str(Fmt),
    /// Constant string.
    Static(Box<[u8]>),
    /// Output variable.
    Var(Box<PvRef>),
    /// Regex.
    Regex(RegexArg),
}

/// Why a function's arguments could not be fixed at load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FixupError {
    /// What went wrong.
    pub message: String,
    /// Index of the offending argument, when known.
    pub arg: Option<usize>,
}

/// The start of a [`FixupError::not_started`] message.
const NOT_STARTED: &str = "module not started: ";

impl FixupError {
    /// A function's module has no instance (it was not started: `sipox -c`, or a module it
    /// needs was not loaded before it).
    pub fn not_started(module: &str) -> Self {
        Self {
            message: format!("{NOT_STARTED}{module} (is it loaded, after the modules it needs?)"),
            arg: None,
        }
    }

    /// True for a [`FixupError::not_started`] error.
    pub fn is_not_started(&self) -> bool {
        self.message.starts_with(NOT_STARTED)
    }

    /// An error about argument `i`.
    pub fn arg(i: usize, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            arg: Some(i),
        }
    }
}

/// What a function's compile step may ask the compiler.
pub trait FixupCx {
    /// Bit of a message flag name (allocated on first use).
    fn flag_bit(&mut self, name: &str) -> Result<u32, String>;
    /// Bit of a branch flag name (allocated on first use).
    fn bflag_bit(&mut self, name: &str) -> Result<u32, String>;
    /// A route by kind and name.
    fn route(&self, kind: RouteKind, name: &str) -> Option<RouteId>;
    /// Shared state.
    fn shared(&self) -> &Arc<Shared>;
    /// Slot of `$avp(name)`.
    fn avp_id(&mut self, name: &str) -> u32;
    /// Global parameters as written (`socket`, `alias`, …).
    fn globals(&self) -> Vec<(String, sipox_cfg_syntax::Value)>;
    /// The module instances the runtime created at start (empty without a runtime).
    fn instances(&self) -> &crate::Instances {
        &crate::instances::NO_INSTANCES
    }
    /// The last value given to `modparam(module, name, ...)`, if any.
    fn modparam(&self, _module: &str, _name: &str) -> Option<sipox_cfg_syntax::Value> {
        None
    }
    /// Compiles a pseudo-variable written as text, e.g. a modparam such as `"$avp(user)"`
    /// (auth's `username_spec`).
    fn pv_spec(&mut self, text: &str) -> Result<PvRef, String> {
        Err(format!(
            "cannot compile pseudo-variable {text} without a compiler"
        ))
    }
}

/// Arguments handed to a function's compile step, with typed take-helpers.
pub struct Args<'a> {
    /// The arguments, one per declared parameter (`Arg::None` when omitted).
    pub args: Vec<Arg>,
    /// The compiler.
    pub cx: &'a mut dyn FixupCx,
}

impl fmt::Debug for Args<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.args.fmt(f)
    }
}

impl Args<'_> {
    fn take(&mut self, i: usize) -> Arg {
        self.args
            .get_mut(i)
            .map(|a| std::mem::replace(a, Arg::None))
            .unwrap_or(Arg::None)
    }

    /// An int argument (`None` when omitted).
    pub fn int(&mut self, i: usize) -> Option<IntArg> {
        match self.take(i) {
            Arg::Int(a) => Some(a),
            _ => None,
        }
    }

    /// A format argument (`None` when omitted).
    pub fn fmt(&mut self, i: usize) -> Option<Fmt> {
        match self.take(i) {
            Arg::Str(f) => Some(f),
            Arg::Static(s) => Some(Fmt::literal(&s)),
            _ => None,
        }
    }

    /// A static string argument.
    pub fn static_str(&mut self, i: usize) -> Option<Box<[u8]>> {
        match self.take(i) {
            Arg::Static(s) => Some(s),
            Arg::Str(f) => f.as_const().map(Into::into),
            _ => None,
        }
    }

    /// An output-variable argument.
    pub fn var(&mut self, i: usize) -> Option<Box<PvRef>> {
        match self.take(i) {
            Arg::Var(v) => Some(v),
            _ => None,
        }
    }

    /// A regex argument.
    pub fn regex(&mut self, i: usize) -> Option<RegexArg> {
        match self.take(i) {
            Arg::Regex(r) => Some(r),
            _ => None,
        }
    }
}

/// A compiled call: arguments fixed at load, run per message.
pub trait Call: Send + Sync + fmt::Debug {
    /// Runs the function.
    fn call(&self, cx: &mut MsgCx) -> Result<Ret, Stop>;
}

/// A script function: its signature and the compile step (OpenSIPS fixups).
pub trait ScriptFn: Send + Sync {
    /// The signature.
    fn sig(&self) -> &Sig;
    /// Fixes the arguments and returns the callable.
    fn compile(&self, args: Args<'_>) -> Result<Box<dyn Call>, FixupError>;
    /// False for functions that are declared (so scripts compile) but not implemented yet.
    fn implemented(&self) -> bool {
        true
    }
}

/// The compile step of a table-defined function.
pub type BuildFn = fn(Args<'_>) -> Result<Box<dyn Call>, FixupError>;

/// A table entry: signature plus compile step (`None`: declared, not implemented).
#[derive(Debug, Clone)]
pub struct FnDef {
    /// Signature.
    pub sig: Sig,
    /// Compile step.
    pub build: Option<BuildFn>,
}

impl ScriptFn for FnDef {
    fn sig(&self) -> &Sig {
        &self.sig
    }

    fn compile(&self, args: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
        match self.build {
            Some(b) => b(args),
            None => Ok(Box::new(NotImplemented {
                name: self.sig.name,
                module: self.sig.module,
            })),
        }
    }

    fn implemented(&self) -> bool {
        self.build.is_some()
    }
}

/// The call of a declared-but-unimplemented function: always a runtime error.
#[derive(Debug)]
struct NotImplemented {
    name: &'static str,
    module: &'static str,
}

impl Call for NotImplemented {
    fn call(&self, _cx: &mut MsgCx) -> Result<Ret, Stop> {
        Err(Stop::Error(RunError::NotImplemented {
            name: self.name,
            module: self.module,
        }))
    }
}

/// A pseudo-variable provided by a module (the `Module` escape of the core PV enum).
pub trait ModulePv: Send + Sync + fmt::Debug {
    /// Reads the value into `out`.
    fn get(&self, cx: &mut MsgCx, out: &mut Vec<u8>) -> Kind;

    /// The variable for the `$name(arg)` spelling (`$bavp(x)`), resolved once when the script
    /// compiles; `None` keeps this one (the argument is then ignored).
    fn with_name(&self, _name: &str) -> Option<Arc<dyn ModulePv>> {
        None
    }

    /// Whether the script may assign it.
    fn writable(&self) -> bool {
        false
    }

    /// Assigns a value: `val` holds the text of a [`Kind::Str`]; `Kind::Null` unsets.
    fn set(&self, _cx: &mut MsgCx, _kind: Kind, _val: &[u8]) {}
}

/// A module's description: name, parameters it accepts, functions it exports.
#[derive(Debug, Clone)]
pub struct ModuleDef {
    /// OpenSIPS module name.
    pub name: &'static str,
    /// Known modparam names (empty: accept any).
    pub params: Vec<&'static str>,
    /// Exported functions.
    pub fns: Vec<FnDef>,
}

/// Every function and module the compiler knows.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub(crate) core: Vec<FnDef>,
    pub(crate) modules: Vec<ModuleDef>,
    pub(crate) pvs: Vec<(&'static str, Arc<dyn ModulePv>)>,
}

impl Registry {
    /// The core functions plus every module sipox knows (implemented or declared).
    pub fn standard() -> Self {
        let mut r = Self {
            core: crate::corefns::table(),
            modules: Vec::new(),
            pvs: Vec::new(),
        };
        crate::modules::register(&mut r);
        r
    }

    /// Adds (or extends) a module.
    pub fn add_module(&mut self, m: ModuleDef) {
        if let Some(old) = self.modules.iter_mut().find(|x| x.name == m.name) {
            for f in m.fns {
                if let Some(o) = old.fns.iter_mut().find(|o| o.sig.name == f.sig.name) {
                    *o = f;
                } else {
                    old.fns.push(f);
                }
            }
            old.params.extend(m.params);
        } else {
            self.modules.push(m);
        }
    }

    /// Replaces (or adds) a core function, e.g. the runtime's `forward` over the declared one.
    pub fn set_core_fn(&mut self, f: FnDef) {
        if let Some(o) = self.core.iter_mut().find(|o| o.sig.name == f.sig.name) {
            *o = f;
        } else {
            self.core.push(f);
        }
    }

    /// Implements a module pseudo-variable (`$rr_params` of rr, ...) over its declaration:
    /// `name` without the `$`.
    pub fn add_pv(&mut self, name: &'static str, pv: Arc<dyn ModulePv>) {
        self.pvs.retain(|(n, _)| *n != name);
        self.pvs.push((name, pv));
    }

    /// An implemented module pseudo-variable.
    pub fn pv(&self, name: &str) -> Option<&Arc<dyn ModulePv>> {
        self.pvs.iter().find(|(n, _)| *n == name).map(|(_, p)| p)
    }

    /// A module by name.
    pub fn module(&self, name: &str) -> Option<&ModuleDef> {
        self.modules.iter().find(|m| m.name == name)
    }

    /// A core function by name.
    pub fn core_fn(&self, name: &str) -> Option<&FnDef> {
        self.core.iter().find(|f| f.sig.name == name)
    }

    /// Every module name.
    pub fn module_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.modules.iter().map(|m| m.name)
    }
}

/// Parses a catalog of declared functions: one module per line,
/// `module: fn1(s,i?) fn2()@RF | param1 param2`; `@` letters restrict the route types
/// (R request, F failure, O onreply, B branch, E error, L local, S startup, T timer, V event).
pub(crate) fn parse_catalog(
    text: &'static str,
    impls: &[(&'static str, BuildFn)],
) -> Vec<ModuleDef> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let (fns, params) = rest.split_once('|').unwrap_or((rest, ""));
        let mut m = ModuleDef {
            name: name.trim(),
            params: params.split_whitespace().collect(),
            fns: Vec::new(),
        };
        for f in fns.split_whitespace() {
            let Some((fname, rest)) = f.split_once('(') else {
                continue;
            };
            let (args, mask) = rest.split_once(')').unwrap_or((rest, ""));
            let routes = match mask.strip_prefix('@') {
                Some(letters) => letters.chars().fold(0, |acc, c| {
                    acc | match c {
                        'R' => route_mask::REQUEST,
                        'F' => route_mask::FAILURE,
                        'O' => route_mask::ONREPLY,
                        'B' => route_mask::BRANCH,
                        'E' => route_mask::ERROR,
                        'L' => route_mask::LOCAL,
                        'S' => route_mask::STARTUP,
                        'T' => route_mask::TIMER,
                        'V' => route_mask::EVENT,
                        _ => 0,
                    }
                }),
                None => route_mask::ALL,
            };
            let build = impls.iter().find(|(n, _)| *n == fname).map(|(_, b)| *b);
            m.fns.push(FnDef {
                sig: Sig::new(m.name, fname, args, routes),
                build,
            });
        }
        out.push(m);
    }
    out
}
