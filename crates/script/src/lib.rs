//! `sipox-script` owns the OpenSIPS script engine: it compiles a parsed `opensips.cfg` into a
//! [`Program`] of resolved nodes (functions fixed at load, `$var` names turned into slots, flag
//! names into bits, regexes compiled, formats pre-split) and interprets it over SIP messages,
//! with the core pseudo-variables, transformations and core functions that need no network.
//! It must not depend on sockets, tokio or any clock of its own: the driver passes the
//! message, its source and the current time in through [`MsgCx`].
//!
//! # Values and allocation
//! An evaluation returns a [`Kind`] (`Null`, `Int` or `Str`) and writes a string's bytes into
//! a caller-owned `Vec<u8>` taken from the worker's buffer pool ([`MsgCx::take_buf`]); `$var`
//! slots and AVP entries own their buffers and assignment swaps buffers rather than copying
//! into new ones. After warm-up a run allocates nothing on the common path (see the
//! `alloc` integration test).
//!
//! # Shape
//! - [`Registry`]: the core function table plus one [`ModuleDef`] per known OpenSIPS module;
//!   functions of modules not built yet are declared by signature ([`ScriptFn::implemented`]
//!   is false) so real scripts compile, and calling one is [`RunError::NotImplemented`].
//! - [`compile()`]: AST → [`Program`], every problem a `file:line:col` diagnostic with a hint.
//! - [`MsgCx`]: per-worker state; [`MsgCx::run_main`] / [`MsgCx::run_route`] give an
//!   [`Outcome`].
//!
//! ```
//! use sipox_script::{MsgCx, Outcome, compile_str};
//! let prog = compile_str("t.cfg", "route { $var(x) = 1 + 2; return($var(x)); }").unwrap();
//! let mut cx = MsgCx::new(prog);
//! assert_eq!(cx.run_main(), Outcome::Done(3));
//! ```

mod bodyparts;
mod compile;
mod corefns;
mod cx;
mod instances;
mod interp;
mod modules;
mod program;
mod registry;
mod sdpops;
mod shared;
mod sipmsgops;
mod textops;
mod time;
mod timerec;
mod trans;
mod value;

pub use compile::{CORE_PVS, CompileOptions, Compiled, compile, compile_str};
pub use cx::{
    Branch, LogLine, MIN_BUF, MsgCx, MsgState, Outcome, Ret, RunError, SocketFn, Source, Stop,
    TxnCtx,
};
pub use instances::{EventFn, Instances, LogFn, ReplyFn};
pub use program::{Fmt, Program, PvRef, RouteId};
pub use registry::{
    Arg, Args, BuildFn, Call, FixupCx, FixupError, FnDef, IntArg, ModuleDef, ModulePv, ParamKind,
    ParamSpec, RegexArg, Registry, ScriptFn, Sig, route_bit, route_mask,
};
pub use shared::{RaisedEvent, Shared};
pub use trans::IpNet;
pub use value::{Kind, Val};
