//! The Management Interface: a registry of MI commands chosen by OpenSIPS's recipes
//! (overloads keyed by the set of parameter names), JSON-RPC 2.0 dispatch with OpenSIPS's
//! error codes, the core commands that need no SIP runtime, and the `mi_http` (with `httpd`
//! and `prometheus`) and `mi_fifo` transports.
//! It must not depend on the script engine, the transaction layer or the transports of SIP:
//! the runtime registers its own commands (`list_tcp_conns`, `reload_routes`, ...) through
//! [`Mi::register`] and hands its state to them with [`Mi::provide`].
//!
//! ```
//! use std::sync::Arc;
//! use sipox_mi::{Mi, MiConfig};
//! let mi = Mi::new(MiConfig::default());
//! let now = std::time::UNIX_EPOCH;
//! let reply = mi.handle_bytes(br#"{"jsonrpc":"2.0","method":"pwd","id":1}"#, now).unwrap();
//! assert!(reply.starts_with(r#"{"jsonrpc":"2.0","result":{"WD":"#));
//! ```

mod core;
mod error;
pub mod fifo;
pub mod http;
mod params;
mod time;

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::SystemTime;

use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use sipox_stats::Stats;

pub use crate::core::CORE_CMDS;
pub use crate::error::{
    INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, MiError, PARSE_ERROR, SERVER_ERROR,
};
pub use crate::params::MiParams;
pub use crate::time::ctime;

/// A command handler: parameters bound to the chosen recipe, and the call's context.
pub type MiHandler = fn(&MiParams<'_>, &MiCx<'_>) -> Result<Value, MiError>;

/// One MI command as a module exports it (OpenSIPS's `mi_export_t`).
///
/// `recipes` are the overloads: each is the list of parameter names it takes and its handler.
/// A call with no parameters takes the recipe with none; named parameters take the recipe
/// with exactly that set of names; positional ones the recipe with that many names (two
/// such recipes make the call ambiguous).
#[derive(Debug)]
pub struct MiCmd {
    /// command name, e.g. `get_statistics`
    pub name: &'static str,
    /// one-line help, returned by `help`
    pub help: &'static str,
    /// exporting module (`core` for the core commands), returned by `help` as "Exported by"
    pub module: &'static str,
    /// the overloads
    pub recipes: &'static [(&'static [&'static str], MiHandler)],
}

/// Registration failures.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterError {
    /// A command of that name exists.
    #[error("MI command <{0}> already registered")]
    Duplicate(&'static str),
    /// A command without recipes.
    #[error("MI command <{0}> has no recipes")]
    NoRecipes(&'static str),
}

/// The log levels MI reads and sets (`log_level`, `xlog_level`); the runtime's logger reads
/// the same atomics.
#[derive(Debug)]
pub struct LogLevels {
    global: Arc<AtomicI32>,
    xlog: Arc<AtomicI32>,
    per_thread: Mutex<Vec<(u32, i32)>>,
}

impl LogLevels {
    /// Start-up levels (OpenSIPS's defaults are `L_NOTICE` = 2 for both).
    #[must_use]
    pub fn new(log_level: i32, xlog_level: i32) -> Self {
        Self::sharing(
            Arc::new(AtomicI32::new(log_level)),
            Arc::new(AtomicI32::new(xlog_level)),
        )
    }

    /// Levels kept in cells the runtime shares with its logger and the script engine, so a
    /// `log_level` command changes what the script's `xlog`/`log` print.
    #[must_use]
    pub const fn sharing(global: Arc<AtomicI32>, xlog: Arc<AtomicI32>) -> Self {
        Self {
            global,
            xlog,
            per_thread: Mutex::new(Vec::new()),
        }
    }

    /// True when some thread has its own level (`log_level level pid`).
    #[must_use]
    pub fn has_thread_overrides(&self) -> bool {
        !self.per_thread.lock().is_empty()
    }

    /// The global log level.
    #[must_use]
    pub fn global(&self) -> i32 {
        self.global.load(Ordering::Relaxed)
    }

    /// Set the global log level; per-thread overrides are dropped, as OpenSIPS resets every
    /// process to the new level.
    pub fn set_global(&self, level: i32) {
        self.per_thread.lock().clear();
        self.global.store(level, Ordering::Relaxed);
    }

    /// The level in force for one thread (its override, else the global level).
    #[must_use]
    pub fn for_thread(&self, tid: u32) -> i32 {
        self.per_thread
            .lock()
            .iter()
            .find(|(t, _)| *t == tid)
            .map_or_else(|| self.global(), |(_, l)| *l)
    }

    /// Override the level of one thread.
    pub fn set_thread(&self, tid: u32, level: i32) {
        let mut v = self.per_thread.lock();
        if let Some(e) = v.iter_mut().find(|(t, _)| *t == tid) {
            e.1 = level;
        } else {
            v.push((tid, level));
        }
    }

    /// The xlog level.
    #[must_use]
    pub fn xlog(&self) -> i32 {
        self.xlog.load(Ordering::Relaxed)
    }

    /// Set the xlog level.
    pub fn set_xlog(&self, level: i32) {
        self.xlog.store(level, Ordering::Relaxed);
    }
}

impl Default for LogLevels {
    fn default() -> Self {
        Self::new(2, 2)
    }
}

/// What the core commands report about the server.
#[derive(Clone, Debug)]
pub struct MiConfig {
    /// The statistics registry behind `get_statistics` & co.
    pub stats: Arc<Stats>,
    /// Shared log levels.
    pub log_levels: Arc<LogLevels>,
    /// `version`'s "Server" (the Server header without `Server: `).
    pub server: String,
    /// `version revision=`'s extra line, if known (name, value), e.g. ("git", "abc123").
    pub revision: Option<(String, String)>,
    /// `arg`'s answer: the command line.
    pub argv: Vec<String>,
    /// Start time, for `uptime`.
    pub started: SystemTime,
}

impl Default for MiConfig {
    fn default() -> Self {
        Self {
            stats: Arc::new(Stats::new()),
            log_levels: Arc::new(LogLevels::default()),
            server: default_server(),
            revision: None,
            argv: std::env::args().collect(),
            started: SystemTime::UNIX_EPOCH,
        }
    }
}

/// `sipox (0.1.0 (x86_64/linux))`, shaped like OpenSIPS's Server header.
#[must_use]
pub fn default_server() -> String {
    format!(
        "sipox ({} ({}/{}))",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

type KillHook = Box<dyn Fn() + Send + Sync>;

/// The MI engine: command registry, dispatcher and the state core commands report.
/// Share it as `Arc<Mi>` between transports.
pub struct Mi {
    cmds: RwLock<Vec<&'static MiCmd>>,
    cfg: MiConfig,
    services: RwLock<Vec<(TypeId, Arc<dyn Any + Send + Sync>)>>,
    kill_hook: RwLock<Option<KillHook>>,
    killed: AtomicBool,
    shutdown: tokio::sync::Notify,
}

impl fmt::Debug for Mi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mi")
            .field(
                "cmds",
                &self.cmds.read().iter().map(|c| c.name).collect::<Vec<_>>(),
            )
            .field("cfg", &self.cfg)
            .field("killed", &self.killed)
            .finish_non_exhaustive()
    }
}

/// The context of one call.
#[derive(Debug, Clone, Copy)]
pub struct MiCx<'a> {
    /// The engine (registry, statistics, configuration).
    pub mi: &'a Mi,
    /// Wall-clock time of the call, read by the transport (the I/O driver).
    pub now: SystemTime,
}

impl MiCx<'_> {
    /// The statistics registry.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.mi.cfg.stats
    }

    /// A service the runtime provided with [`Mi::provide`].
    #[must_use]
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.mi.service::<T>()
    }
}

impl Mi {
    /// An engine with the core commands registered.
    #[must_use]
    pub fn new(cfg: MiConfig) -> Self {
        let mi = Self {
            cmds: RwLock::new(Vec::new()),
            cfg,
            services: RwLock::new(Vec::new()),
            kill_hook: RwLock::new(None),
            killed: AtomicBool::new(false),
            shutdown: tokio::sync::Notify::new(),
        };
        for c in CORE_CMDS {
            // the core table has unique names; a clash is impossible on an empty registry
            let _ = mi.register(c);
        }
        mi
    }

    /// The configuration the core commands report.
    #[must_use]
    pub const fn config(&self) -> &MiConfig {
        &self.cfg
    }

    /// Register a command (a module's, or the runtime's `list_tcp_conns`/`reload_routes`).
    ///
    /// # Errors
    /// A command of that name exists, or it has no recipes.
    pub fn register(&self, cmd: &'static MiCmd) -> Result<(), RegisterError> {
        if cmd.recipes.is_empty() {
            return Err(RegisterError::NoRecipes(cmd.name));
        }
        let mut cmds = self.cmds.write();
        if cmds.iter().any(|c| c.name == cmd.name) {
            return Err(RegisterError::Duplicate(cmd.name));
        }
        cmds.push(cmd);
        Ok(())
    }

    /// Register every command of a module's table.
    ///
    /// # Errors
    /// The first failure; commands before it stay registered.
    pub fn register_all(&self, cmds: &'static [MiCmd]) -> Result<(), RegisterError> {
        cmds.iter().try_for_each(|c| self.register(c))
    }

    /// A command by exact name.
    #[must_use]
    pub fn lookup(&self, name: &str) -> Option<&'static MiCmd> {
        self.cmds.read().iter().copied().find(|c| c.name == name)
    }

    /// Command names in registration order (`which`).
    #[must_use]
    pub fn names(&self) -> Vec<&'static str> {
        self.cmds.read().iter().map(|c| c.name).collect()
    }

    /// Hand a service (state) to command handlers; they fetch it with [`MiCx::get`].
    /// A second value of the same type replaces the first.
    pub fn provide<T: Any + Send + Sync>(&self, value: Arc<T>) {
        let mut s = self.services.write();
        let id = TypeId::of::<T>();
        s.retain(|(t, _)| *t != id);
        s.push((id, value));
    }

    fn service<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let s = self.services.read();
        let (_, v) = s.iter().find(|(t, _)| *t == TypeId::of::<T>())?;
        Arc::clone(v).downcast::<T>().ok()
    }

    /// What `kill` does besides waking [`Mi::shutdown_requested`]: the runtime installs its
    /// orderly shutdown here.
    pub fn on_kill(&self, f: impl Fn() + Send + Sync + 'static) {
        *self.kill_hook.write() = Some(Box::new(f));
    }

    /// Run the `kill` action: the hook, then wake the transports' shutdown.
    pub fn request_shutdown(&self) {
        if let Some(h) = self.kill_hook.read().as_ref() {
            h();
        }
        self.killed.store(true, Ordering::SeqCst);
        self.shutdown.notify_waiters();
    }

    /// Whether `kill` (or [`Mi::request_shutdown`]) ran.
    #[must_use]
    pub fn is_shutting_down(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// Completes when shutdown is requested.
    pub async fn shutdown_requested(&self) {
        let n = self.shutdown.notified();
        if self.is_shutting_down() {
            return;
        }
        n.await;
    }

    /// Run a command by name with a JSON parameter value (array, object or null), as the
    /// script's `mi()` would; no JSON-RPC envelope.
    ///
    /// # Errors
    /// The MI error the call answers.
    pub fn call(&self, method: &str, params: &Value, now: SystemTime) -> Result<Value, MiError> {
        let cmd = self.lookup(method).ok_or_else(MiError::method_not_found)?;
        let params = match params {
            Value::Array(a) if !a.is_empty() => Some(params),
            Value::Object(o) if !o.is_empty() => Some(params),
            Value::Array(_) | Value::Object(_) | Value::Null => None,
            _ => return Err(MiError::invalid_request()),
        };
        self.run(cmd, params, now)
    }

    fn run(&self, cmd: &MiCmd, params: Option<&Value>, now: SystemTime) -> Result<Value, MiError> {
        let (names, handler) = choose_recipe(cmd, params)?;
        let p = MiParams::new(params, names);
        // a panicking handler (a module's bug) answers an error instead of taking down the
        // connection task or the FIFO thread
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handler(&p, &MiCx { mi: self, now })
        }))
        .unwrap_or_else(|_| Err(MiError::server_error("Command handler failed")))
    }

    /// Handle one JSON-RPC request given as text; `None` when no reply is due (a
    /// notification that did not fail to parse). The reply is one line of JSON.
    #[must_use]
    pub fn handle_bytes(&self, body: &[u8], now: SystemTime) -> Option<String> {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => self.handle_value(&v, now),
            Err(_) => Some(envelope(Err(&MiError::parse_error()), &Value::Null)),
        }
    }

    /// Handle one parsed JSON-RPC request; `None` when no reply is due.
    #[must_use]
    pub fn handle_value(&self, req: &Value, now: SystemTime) -> Option<String> {
        let Value::Object(obj) = req else {
            return Some(envelope(Err(&MiError::invalid_request()), &Value::Null));
        };
        let id = obj.get("id");
        let id_ok =
            id.is_none_or(|i| matches!(i, Value::Null | Value::Number(_) | Value::String(_)));
        let version_ok = obj.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
        let method = obj.get("method").and_then(Value::as_str);
        let params = obj.get("params");
        let params_ok = params.is_none_or(|p| matches!(p, Value::Array(_) | Value::Object(_)));
        let null = Value::Null;
        let reply_id = if id_ok { id.unwrap_or(&null) } else { &null };
        let (Some(method), true, true, true) = (method, id_ok, version_ok, params_ok) else {
            return Some(envelope(Err(&MiError::invalid_request()), reply_id));
        };
        let result = match self.lookup(method) {
            None => Err(MiError::method_not_found()),
            Some(cmd) => {
                let params = params.filter(|p| match p {
                    Value::Array(a) => !a.is_empty(),
                    Value::Object(o) => !o.is_empty(),
                    _ => false,
                });
                self.run(cmd, params, now)
            }
        };
        // notifications get no reply, even when the command fails
        id?;
        Some(envelope(result.as_ref(), reply_id))
    }
}

/// OpenSIPS's recipe choice (mi/mi.c `get_cmd_recipe`), with its error details.
fn choose_recipe<'c>(
    cmd: &'c MiCmd,
    params: Option<&Value>,
) -> Result<(&'static [&'static str], MiHandler), MiError> {
    let Some(params) = params else {
        return cmd
            .recipes
            .iter()
            .find(|(names, _)| names.is_empty())
            .copied()
            .ok_or_else(|| MiError::invalid_params("Too few or too many parameters"));
    };
    let (count, named) = match params {
        Value::Array(a) => (a.len(), None),
        Value::Object(o) => (o.len(), Some(o)),
        _ => (0, None),
    };
    let mut chosen: Option<&'c (&'static [&'static str], MiHandler)> = None;
    let mut names_mismatch = false;
    for r in cmd.recipes.iter().filter(|(names, _)| !names.is_empty()) {
        if r.0.len() != count {
            continue;
        }
        match named {
            None if chosen.is_some() => {
                return Err(MiError::invalid_params(
                    "Ambiguous call, use named parameters instead",
                ));
            }
            None => chosen = Some(r),
            Some(o) => {
                if r.0.iter().all(|n| o.contains_key(*n)) {
                    return Ok(*r);
                }
                names_mismatch = true;
            }
        }
    }
    chosen.copied().ok_or_else(|| {
        MiError::invalid_params(if names_mismatch {
            "Named parameters do not match"
        } else {
            "Too few or too many parameters"
        })
    })
}

/// `{"jsonrpc":"2.0","result":..,"id":..}` or `{"jsonrpc":"2.0","error":{..},"id":..}`, in
/// OpenSIPS's member order.
fn envelope(result: Result<&Value, &MiError>, id: &Value) -> String {
    let (key, body) = match result {
        Ok(v) => ("result", v.to_string()),
        Err(e) => ("error", e.to_json().to_string()),
    };
    format!(r#"{{"jsonrpc":"2.0","{key}":{body},"id":{id}}}"#)
}

/// Read the wall clock. Only transports (the I/O drivers) call this.
#[allow(clippy::disallowed_methods)] // MI transports are I/O drivers: they stamp each call
pub(crate) fn wall_clock() -> SystemTime {
    SystemTime::now()
}
