//! Per-worker, per-message execution state ([`MsgCx`]) and the result types of a run.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use bytes::Bytes;
use sipox_sip_msg::SipMsg;

use crate::program::Program;
use crate::value::{Kind, Val};

/// Smallest capacity of a pooled scratch buffer.
pub const MIN_BUF: usize = 256;

/// A function's or route's return code: `> 0` true, `< 0` false, `0` stops the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ret(pub i32);

impl Ret {
    /// Success (1).
    pub const TRUE: Self = Self(1);
    /// Generic failure (-1).
    pub const FALSE: Self = Self(-1);

    /// 1 for true, -1 for false.
    pub fn of(b: bool) -> Self {
        if b { Self::TRUE } else { Self::FALSE }
    }
}

/// Why a run stopped early; propagated with `?` through statements and expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// `exit`, `return(0)`, or a function returning 0.
    Exit,
    /// `drop`.
    Drop,
    /// A runtime error that aborts the script.
    Error(RunError),
}

/// A runtime error that aborts the script (OpenSIPS logs and stops processing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A function exported by a module that sipox does not implement yet was called.
    #[error("function {name}() of module {module} is declared but not implemented yet")]
    NotImplemented {
        /// Function name.
        name: &'static str,
        /// Module name.
        module: &'static str,
    },
    /// `while` ran more than `max_while_loops` times.
    #[error("while loop at line {line} exceeded max_while_loops ({max})")]
    TooManyLoops {
        /// Line of the loop.
        line: u32,
        /// The limit.
        max: u32,
    },
    /// `route(x)` with a name that matches no route.
    #[error("route '{0}' not found")]
    NoSuchRoute(String),
    /// Sub-route nesting went too deep.
    #[error("route nesting deeper than {0}")]
    TooDeep(usize),
    /// The requested route type has no block in the script.
    #[error("no {0} block in the script")]
    NoRoute(&'static str),
}

/// How a run of a route ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The route ran to its end or returned; the return code.
    Done(i32),
    /// `exit` (or a 0 return code).
    Exit,
    /// `drop`.
    Drop,
    /// A runtime error stopped the script.
    Error(RunError),
}

/// Where a worker's log lines go (the runtime's logger): `sink(level, text)`.
pub(crate) type LogSink = Arc<dyn Fn(i32, &[u8]) + Send + Sync>;

/// One log line produced by `xlog`, `log`, `xdbg` or a core function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// OpenSIPS level (-3 ALERT … 4 DBG).
    pub level: i32,
    /// The text, as printed (no trailing newline added).
    pub text: String,
}

/// One entry of the destination set (`append_branch`).
#[derive(Debug, Clone, Default)]
pub struct Branch {
    /// Request-URI of the branch.
    pub uri: Vec<u8>,
    /// Destination URI (`$du`) of the branch; empty when unset.
    pub duri: Vec<u8>,
    /// Path vector.
    pub path: Vec<u8>,
    /// q-value in thousandths; -1 when unset.
    pub q: i32,
    /// Branch flags.
    pub flags: u64,
}

/// How a write to `$socket_out` selects the send socket: `f(cx, "proto:ip:port")` (empty:
/// reset) returns 1 when a listening socket matched (and records it with
/// [`MsgCx::set_socket_out`]), -1 otherwise.
pub type SocketFn = fn(&mut MsgCx, &[u8]) -> i32;

/// The network source of the message being processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// Source IP.
    pub ip: IpAddr,
    /// Source port.
    pub port: u16,
    /// Transport (`udp`, `tcp`, …).
    pub proto: &'static str,
    /// Local IP the message arrived on.
    pub local_ip: IpAddr,
    /// Local port the message arrived on.
    pub local_port: u16,
}

impl Default for Source {
    fn default() -> Self {
        Self {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 5060,
            proto: "udp",
            local_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            local_port: 5060,
        }
    }
}

/// What a transaction keeps of the request's script context for its failure and reply
/// routes (OpenSIPS keeps message flags and AVPs with the transaction): the message flags
/// and every AVP with its values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TxnCtx {
    flags: u64,
    avps: Vec<(u32, Vec<Val>)>,
}

impl TxnCtx {
    /// These AVPs with the message flags of `other` (what a reply route may change of a
    /// transaction: its AVPs, not its flags).
    #[must_use]
    pub fn with_flags_of(mut self, other: &Self) -> Self {
        self.flags = other.flags;
        self
    }
}

/// An AVP stack: index 0 is the newest value. Entries beyond `len` are kept as spare buffers.
#[derive(Debug, Clone, Default)]
pub(crate) struct AvpStack {
    pub(crate) items: Vec<Val>,
    pub(crate) len: usize,
}

impl AvpStack {
    /// Values newest first.
    pub(crate) fn values(&self) -> impl DoubleEndedIterator<Item = &Val> + '_ {
        self.items[..self.len].iter().rev()
    }

    /// The value at script index `i` (0 newest, negative from the oldest end).
    pub(crate) fn get(&self, i: i64) -> Option<&Val> {
        let pos = self.pos(i)?;
        self.items.get(pos)
    }

    /// Storage position of script index `i`.
    pub(crate) fn pos(&self, i: i64) -> Option<usize> {
        let len = i64::try_from(self.len).ok()?;
        let k = if i < 0 { len + i } else { i };
        if k < 0 || k >= len {
            return None;
        }
        usize::try_from(len - 1 - k).ok()
    }

    /// Pushes a new newest value, reusing a spare buffer.
    pub(crate) fn push(&mut self, kind: Kind, s: &mut Vec<u8>) {
        if self.len == self.items.len() {
            self.items.push(Val::default());
        }
        let slot = &mut self.items[self.len];
        slot.kind = kind;
        std::mem::swap(&mut slot.s, s);
        s.clear();
        self.len += 1;
    }

    /// Removes the newest value.
    pub(crate) fn pop(&mut self) {
        if self.len > 0 {
            self.len -= 1;
        }
    }

    /// Removes the value at script index `i`.
    pub(crate) fn remove(&mut self, i: i64) {
        if let Some(p) = self.pos(i) {
            let v = self.items.remove(p);
            self.items.push(v);
            self.len -= 1;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }
}

/// Per-message execution state, owned by one worker and reused across messages so that steady
/// state allocates nothing: the message, `$var` slots (kept across messages, as OpenSIPS keeps
/// them per process), AVP stacks, flags, the new Request-URI and destination URI, the branch
/// set, route parameters, and a pool of scratch buffers.
pub struct MsgCx {
    pub(crate) prog: Arc<Program>,
    pub(crate) msg: Option<SipMsg>,
    pub(crate) vars: Vec<Val>,
    pub(crate) avps: Vec<AvpStack>,
    pub(crate) flags: u64,
    pub(crate) bflags: u64,
    pub(crate) ruri_set: bool,
    pub(crate) ruri: Vec<u8>,
    pub(crate) duri: Vec<u8>,
    pub(crate) ruri_q: i32,
    pub(crate) path: Vec<u8>,
    pub(crate) branches: Vec<Branch>,
    pub(crate) nbranches: usize,
    pub(crate) rc: i32,
    pub(crate) params: Vec<Val>,
    pub(crate) frames: Vec<(usize, usize, u32)>,
    pub(crate) bufs: Vec<Vec<u8>>,
    pub(crate) logs: Option<Vec<LogLine>>,
    pub(crate) now_us: i64,
    pub(crate) start_us: i64,
    pub(crate) msg_id: u32,
    pub(crate) src: Source,
    pub(crate) argv: Vec<(String, String)>,
    pub(crate) err: [Val; 5],
    pub(crate) rng: u64,
    pub(crate) script_trace: Option<(i32, crate::program::Fmt, Vec<u8>)>,
    pub(crate) serial: Vec<Branch>,
    pub(crate) ext: Option<Arc<dyn std::any::Any + Send + Sync>>,
    pub(crate) log_sink: Option<LogSink>,
    pub(crate) reply_hdrs: Vec<u8>,
    pub(crate) states: Vec<Box<dyn MsgState>>,
    pub(crate) reply_fn: Option<crate::ReplyFn>,
    /// The socket `force_send_socket()` / `$socket_out` chose (`local_*` and `proto` used).
    pub(crate) socket_out: Option<Source>,
    pub(crate) socket_fn: Option<SocketFn>,
    pub(crate) event_params: Vec<(String, String)>,
}

/// Per-message state a module keeps in the [`MsgCx`] (the rr module's pending Record-Route
/// and matched Route parameters, ...): created on first use, [`MsgState::reset`] at the start
/// of every message, and kept (with its buffers) across messages.
pub trait MsgState: std::any::Any + Send + Sync {
    /// Forgets the previous message's state (keep buffers, do not allocate).
    fn reset(&mut self);
}

impl fmt::Debug for MsgCx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsgCx")
            .field("msg", &self.msg)
            .field("rc", &self.rc)
            .finish_non_exhaustive()
    }
}

impl MsgCx {
    /// A worker context for a compiled program.
    pub fn new(prog: Arc<Program>) -> Self {
        let nvars = prog.var_names.len();
        let navps = prog.avp_names.len();
        let seed = 0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id());
        Self {
            prog,
            msg: None,
            vars: vec![Val::default(); nvars],
            avps: vec![AvpStack::default(); navps],
            flags: 0,
            bflags: 0,
            ruri_set: false,
            ruri: Vec::new(),
            duri: Vec::new(),
            ruri_q: -1,
            path: Vec::new(),
            branches: Vec::new(),
            nbranches: 0,
            rc: 0,
            params: Vec::new(),
            frames: Vec::new(),
            bufs: Vec::new(),
            logs: None,
            now_us: 0,
            start_us: 0,
            msg_id: 0,
            src: Source::default(),
            argv: Vec::new(),
            err: Default::default(),
            rng: seed,
            script_trace: None,
            serial: Vec::new(),
            ext: None,
            log_sink: None,
            reply_hdrs: Vec::new(),
            states: Vec::new(),
            reply_fn: None,
            socket_out: None,
            socket_fn: None,
            event_params: Vec::new(),
        }
    }

    /// Attaches the runtime's handle (transports, configuration) for functions the runtime
    /// registers (`forward`, `sl_send_reply`, ...) — pingora's per-request context idea. The
    /// script engine itself never looks inside.
    pub fn set_ext(&mut self, ext: Arc<dyn std::any::Any + Send + Sync>) {
        self.ext = Some(ext);
    }

    /// Runs `event_route[name]` without a message, with `$param(key)` giving the event's
    /// parameters. `None` when the script has no such route.
    pub fn run_event(&mut self, name: &str, params: Vec<(String, String)>) -> Option<Outcome> {
        self.prog
            .route(sipox_cfg_syntax::RouteKind::Event, Some(name))?;
        self.clear_message();
        self.event_params = params;
        let out = self.run_route(sipox_cfg_syntax::RouteKind::Event, Some(name));
        self.event_params.clear();
        Some(out)
    }

    /// Installs how module functions answer the current request ([`crate::ReplyFn`]).
    pub fn set_reply_fn(&mut self, f: crate::ReplyFn) {
        self.reply_fn = Some(f);
    }

    /// Installs how `$socket_out = "proto:ip:port"` picks a listening socket ([`SocketFn`]).
    pub fn set_socket_fn(&mut self, f: SocketFn) {
        self.socket_fn = Some(f);
    }

    /// Records the send socket chosen for this message (`force_send_socket()`); `None`
    /// clears it. `$socket_out` reads it (`local_ip`, `local_port`, `proto`).
    pub fn set_socket_out(&mut self, s: Option<Source>) {
        self.socket_out = s;
    }

    /// The send socket chosen for this message, if any.
    pub fn socket_out(&self) -> Option<&Source> {
        self.socket_out.as_ref()
    }

    /// Answers the current request with `code reason` and the header lines `extra` (each
    /// `Name: value\r\n`) the way the runtime does (statefully when there is a transaction);
    /// headers stored by `append_to_reply()` are added. -1 when no runtime is attached.
    pub fn send_reply(&mut self, code: u16, reason: &[u8], extra: &[u8]) -> i32 {
        match self.reply_fn {
            Some(f) => f(self, code, reason, extra),
            None => -1,
        }
    }

    /// Sends log lines (that are not captured) to the runtime's logger instead of stderr:
    /// `sink(level, text)`; the level check has been made already.
    pub fn set_log_sink(&mut self, sink: LogSink) {
        self.log_sink = Some(sink);
    }

    /// The runtime handle, if it is of type `T`.
    pub fn ext<T: std::any::Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.ext
            .as_ref()
            .and_then(|e| Arc::clone(e).downcast::<T>().ok())
    }

    /// Sets `$err.class`, `$err.level`, `$err.info`, `$err.rcode` and `$err.rreason` (what the
    /// core tells `error_route` about a message that failed to parse).
    pub fn set_error(&mut self, class: i64, level: i64, info: &[u8], rcode: i64, rreason: &[u8]) {
        use crate::value::Kind;
        let int = |v: &mut Val, i: i64| {
            v.kind = Kind::Int(i);
            v.s.clear();
        };
        let text = |v: &mut Val, t: &[u8]| {
            v.kind = Kind::Str;
            v.s.clear();
            v.s.extend_from_slice(t);
        };
        int(&mut self.err[0], class);
        int(&mut self.err[1], level);
        text(&mut self.err[2], info);
        int(&mut self.err[3], rcode);
        text(&mut self.err[4], rreason);
    }

    /// The network source of the current message.
    pub fn source(&self) -> &Source {
        &self.src
    }

    /// The new Request-URI set by the script, if any (`None`: the message's own).
    pub fn new_ruri(&self) -> Option<&[u8]> {
        self.ruri_set.then_some(self.ruri.as_slice())
    }

    /// The program this context runs.
    pub fn program(&self) -> &Arc<Program> {
        &self.prog
    }

    /// Starts a new message: resets per-message state (AVPs, flags, R-URI, `$du`, branches,
    /// `$rc`) and keeps `$var` values and buffers.
    pub fn set_message(&mut self, msg: SipMsg) {
        self.msg = Some(msg);
        self.reset_message_state();
        self.msg_id = self.msg_id.wrapping_add(1);
    }

    /// Runs without a message (startup/timer/event routes).
    pub fn clear_message(&mut self) {
        self.msg = None;
        self.reset_message_state();
    }

    fn reset_message_state(&mut self) {
        for a in &mut self.avps {
            a.clear();
        }
        self.flags = 0;
        self.bflags = 0;
        self.ruri_set = false;
        self.ruri.clear();
        self.duri.clear();
        self.ruri_q = -1;
        self.path.clear();
        self.nbranches = 0;
        self.rc = 0;
        self.params.clear();
        self.frames.clear();
        self.reply_hdrs.clear();
        self.socket_out = None;
        for s in &mut self.states {
            s.reset();
        }
    }

    /// Sets the new Request-URI (as `$ru = ...` does).
    pub fn set_ruri(&mut self, uri: &[u8]) {
        self.ruri.clear();
        self.ruri.extend_from_slice(uri);
        self.ruri_set = true;
    }

    /// The message flags and AVPs, for the transaction to carry into its failure and reply
    /// routes.
    pub fn save_txn_ctx(&self) -> TxnCtx {
        TxnCtx {
            flags: self.flags,
            avps: self
                .avps
                .iter()
                .enumerate()
                .filter(|(_, a)| a.len > 0)
                .map(|(i, a)| {
                    (
                        u32::try_from(i).unwrap_or(u32::MAX),
                        a.items[..a.len].to_vec(),
                    )
                })
                .collect(),
        }
    }

    /// Puts back what [`MsgCx::save_txn_ctx`] saved (after [`MsgCx::set_message`], which
    /// clears them).
    pub fn restore_txn_ctx(&mut self, c: &TxnCtx) {
        self.flags = c.flags;
        for (i, vals) in &c.avps {
            if let Some(a) = self.avps.get_mut(*i as usize) {
                a.items.clear();
                a.items.extend(vals.iter().cloned());
                a.len = vals.len();
            }
        }
    }

    /// Forgets a new R-URI (`revert_uri()`): `$ru` is the received one again.
    pub fn clear_new_ruri(&mut self) {
        self.ruri_set = false;
        self.ruri.clear();
    }

    /// Sets the destination URI (`$du`); empty resets it.
    pub fn set_dst_uri(&mut self, uri: &[u8]) {
        self.duri.clear();
        self.duri.extend_from_slice(uri);
    }

    /// Header lines (`Name: value\r\n` each) that `append_to_reply()` stored for the next reply
    /// the proxy generates for this message (stateless or stateful).
    pub fn reply_headers(&self) -> &[u8] {
        &self.reply_hdrs
    }

    /// Adds header lines for the next locally generated reply (`append_to_reply`); a line
    /// without its CRLF gets one.
    pub fn add_reply_headers(&mut self, lines: &[u8]) {
        self.reply_hdrs.extend_from_slice(lines);
        if !lines.is_empty() && !lines.ends_with(b"\r\n") {
            if lines.ends_with(b"\n") {
                self.reply_hdrs.pop();
            }
            self.reply_hdrs.extend_from_slice(b"\r\n");
        }
    }

    /// The module state of type `T` for this message, created on first use.
    pub fn state<T: MsgState + Default>(&mut self) -> Option<&mut T> {
        let pos = self
            .states
            .iter()
            .position(|s| (&**s as &dyn std::any::Any).is::<T>());
        let i = match pos {
            Some(i) => i,
            None => {
                self.states.push(Box::new(T::default()));
                self.states.len() - 1
            }
        };
        self.states
            .get_mut(i)
            .and_then(|s| (&mut **s as &mut dyn std::any::Any).downcast_mut::<T>())
    }

    /// The module state of type `T`, if a function created it.
    pub fn peek_state<T: MsgState>(&self) -> Option<&T> {
        self.states
            .iter()
            .find_map(|s| (&**s as &dyn std::any::Any).downcast_ref::<T>())
    }

    /// The message being processed.
    pub fn msg(&self) -> Option<&SipMsg> {
        self.msg.as_ref()
    }

    /// The message, for functions that record edits (push a Via, add `received`).
    pub fn msg_mut(&mut self) -> Option<&mut SipMsg> {
        self.msg.as_mut()
    }

    /// Takes the message back out (with pending header edits, but not the R-URI change:
    /// see [`Self::write_message`]).
    pub fn take_message(&mut self) -> Option<SipMsg> {
        self.msg.take()
    }

    /// Sets the current time (µs since the Unix epoch); the driver reads the clock.
    pub fn set_time_us(&mut self, now_us: i64) {
        self.now_us = now_us;
    }

    /// The current time (µs since the Unix epoch) as the driver set it for this message.
    pub fn time_us(&self) -> i64 {
        self.now_us
    }

    /// Sets the process start time for `$TS` (µs since the Unix epoch).
    pub fn set_start_time_us(&mut self, start_us: i64) {
        self.start_us = start_us;
    }

    /// Sets where the message came from.
    pub fn set_source(&mut self, src: Source) {
        self.src = src;
    }

    /// Sets the `-o name=value` pairs visible as `$argv(name)`.
    pub fn set_argv(&mut self, argv: Vec<(String, String)>) {
        self.argv = argv;
    }

    /// Captures log lines in memory instead of writing them to stderr.
    pub fn capture_logs(&mut self) {
        self.logs = Some(Vec::new());
    }

    /// Takes the captured log lines.
    pub fn take_logs(&mut self) -> Vec<LogLine> {
        self.logs.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Seeds the random generator used by `$RANDOM` and `rand_event`.
    pub fn seed_random(&mut self, seed: u64) {
        self.rng = seed | 1;
    }

    /// The last return code (`$rc`).
    pub fn rc(&self) -> i32 {
        self.rc
    }

    /// Value of `$var(name)` (None when the script never names it).
    pub fn var(&self, name: &str) -> Option<&Val> {
        let i = self.prog.var_names.iter().position(|n| n == name)?;
        self.vars.get(i)
    }

    /// Values of `$avp(name)`, newest first.
    pub fn avp(&self, name: &str) -> Vec<Val> {
        self.prog
            .avp_names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.avps.get(i))
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Pushes a string value on `$avp(name)` (nothing when the script never names it).
    pub fn push_avp_str(&mut self, name: &str, v: &[u8]) {
        let Some(i) = self.prog.avp_names.iter().position(|n| n == name) else {
            return;
        };
        if let Some(st) = self.avps.get_mut(i) {
            let mut b = v.to_vec();
            st.push(Kind::Str, &mut b);
        }
    }

    /// True when the message flag is set.
    pub fn is_flag_set(&self, name: &str) -> bool {
        self.prog
            .flag_bit(name)
            .is_some_and(|b| self.flags & (1 << b) != 0)
    }

    /// The current Request-URI (new one if the script changed it).
    pub fn ruri(&self) -> &[u8] {
        if self.ruri_set {
            &self.ruri
        } else {
            self.msg.as_ref().map_or(&[], SipMsg::ruri_raw)
        }
    }

    /// The destination URI (`$du`); empty when unset.
    pub fn dst_uri(&self) -> &[u8] {
        &self.duri
    }

    /// The destination set: `(uri, q)` of each appended branch.
    pub fn branches(&self) -> impl Iterator<Item = &Branch> + '_ {
        self.branches[..self.nbranches].iter()
    }

    /// Appends a branch to the destination set (`append_branch()` with every field, as
    /// registrar's `lookup()` forks).
    pub fn append_branch(&mut self, uri: &[u8], duri: &[u8], path: &[u8], q: i32, flags: u64) {
        let b = self.new_branch();
        b.uri.extend_from_slice(uri);
        b.duri.extend_from_slice(duri);
        b.path.extend_from_slice(path);
        b.q = q;
        b.flags = flags;
    }

    /// Empties the destination set.
    pub fn clear_branches(&mut self) {
        self.nbranches = 0;
    }

    /// The message's path vector (Route set for the Request-URI branch, set by `lookup()`).
    pub fn path(&self) -> &[u8] {
        &self.path
    }

    /// Sets the message's path vector; empty resets it.
    pub fn set_path(&mut self, path: &[u8]) {
        self.path.clear();
        self.path.extend_from_slice(path);
    }

    /// The Request-URI's q (thousandths, -1 unset).
    pub fn ruri_q(&self) -> i32 {
        self.ruri_q
    }

    /// Sets the Request-URI's q (thousandths, -1 unset).
    pub fn set_ruri_q(&mut self, q: i32) {
        self.ruri_q = q;
    }

    /// The message's branch flags (bit per `bflag` index).
    pub fn bflags(&self) -> u64 {
        self.bflags
    }

    /// Replaces the message's branch flags.
    pub fn set_bflags(&mut self, flags: u64) {
        self.bflags = flags;
    }

    /// True when message flag bit `bit` is set.
    pub fn flag_bit_set(&self, bit: u32) -> bool {
        bit < 64 && self.flags & (1 << bit) != 0
    }

    /// Writes the message with every change applied (new Request-URI, header edits).
    pub fn write_message(&mut self, out: &mut Vec<u8>) -> Result<(), sipox_sip_msg::ParseError> {
        let Some(m) = self.msg.as_mut() else {
            return Ok(());
        };
        if self.ruri_set {
            m.set_ruri(Bytes::copy_from_slice(&self.ruri));
        }
        m.write_to(out)
    }

    // ----- helpers for functions -----

    /// Takes an empty scratch buffer from the pool.
    #[inline]
    pub fn take_buf(&mut self) -> Vec<u8> {
        self.bufs
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(MIN_BUF))
    }

    /// Returns a scratch buffer to the pool. Buffers enter the pool with at least
    /// [`MIN_BUF`] bytes of capacity, so buffers circulating between the pool and variable
    /// slots stop growing after warm-up.
    #[inline]
    pub fn give_buf(&mut self, mut b: Vec<u8>) {
        b.clear();
        if b.capacity() < MIN_BUF {
            b.reserve(MIN_BUF);
        }
        self.bufs.push(b);
    }

    /// Emits a log line at `level` if the current log level allows it.
    pub fn log(&mut self, level: i32, text: &[u8]) {
        if level > self.prog.shared.log_level() {
            return;
        }
        self.emit_log(level, text);
    }

    pub(crate) fn emit_log(&mut self, level: i32, text: &[u8]) {
        if let Some(l) = self.logs.as_mut() {
            l.push(LogLine {
                level,
                text: String::from_utf8_lossy(text).into_owned(),
            });
        } else if let Some(sink) = &self.log_sink {
            sink(level, text);
        } else {
            use std::io::Write as _;
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(text);
            if !text.ends_with(b"\n") {
                let _ = e.write_all(b"\n");
            }
        }
    }

    /// Next pseudo-random number (xorshift64*).
    pub(crate) fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}
