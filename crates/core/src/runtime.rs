//! The server: compile, bind, and the per-message path.
//!
//! Each receiving thread (UDP receiver threads, TCP runtime threads) keeps its own `MsgCx` in a
//! thread-local, so `$var` values live per worker as in OpenSIPS and a message never waits for a
//! lock. Requests run the main route; replies are relayed statelessly by their second Via after
//! the `onreply_route` ran.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};
use sipox_cfg_syntax::{Config, Item, Options, RouteKind, SourceMap};
use sipox_mi::{LogLevels, Mi, MiConfig};
use sipox_script::{CompileOptions, MsgCx, Outcome, Program, Registry};
use sipox_sip_msg::{ParseError, ReplyOpts, SipMsg, build_reply, looks_like_response};
use sipox_stats::Stats;
use sipox_transport::{Dest, Handler, Proto, Source, Transports};
use thiserror::Error;

use crate::config::CoreConfig;
use crate::logging::{L_ERR, L_INFO, L_NOTICE, L_WARN, LogSettings, Logger};
use crate::metrics::CoreCounters;
use crate::metrics::LoadMeter;
use crate::mi_wiring::{MiRunning, MiSetup, RUNTIME_CMDS};

/// Why the server could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration has errors (rendered diagnostics).
    #[error("{0}")]
    Config(String),
    /// No `socket=`/`listen=` and no `-l`.
    #[error("no listening socket: add socket=udp:127.0.0.1:5060 or use -l")]
    NoSockets,
    /// Binding or starting threads failed.
    #[error(transparent)]
    Transport(#[from] sipox_transport::StartError),
    /// An MI transport (httpd, FIFO) or the statistics could not be set up.
    #[error("{0}")]
    Mi(String),
}

/// What script functions reach through [`MsgCx::ext`]: the transports, settings and counters.
#[derive(Debug)]
pub struct Runtime {
    /// Core settings.
    pub cfg: CoreConfig,
    tx: OnceLock<Transports>,
    ours: OnceLock<Vec<(String, u16)>>,
    /// Counters (live `core:`/`sl:` statistics).
    pub counters: CoreCounters,
    pub(crate) to_tag_seed: u64,
    /// The statistics registry (`get_statistics`, `/metrics`).
    pub stats: Arc<Stats>,
    /// The log sink shared by the core and the script's `xlog`/`log`.
    pub log: Arc<Logger>,
    program: RwLock<Arc<Program>>,
    script: (PathBuf, Option<String>),
    level_cells: (Arc<AtomicI32>, Arc<AtomicI32>),
    sl_loaded: bool,
    stopping: AtomicBool,
    stop_mx: Mutex<bool>,
    stop_cv: Condvar,
    started: Instant,
    dns: OnceLock<Option<Arc<dyn sipox_dns::Lookup>>>,
    /// The transaction layer (`tm`).
    pub(crate) tm: crate::tm::Tm,
    /// The loaded modules' instances.
    pub(crate) modhost: crate::modhost::ModHost,
    /// `dst_blacklist` lists.
    pub(crate) blacklists: crate::blacklist::Lists,
}

impl Runtime {
    /// The DNS resolver for host names in URIs: the one set by [`Self::set_resolver`], else the
    /// system resolver, created on first use (`None` when the system has no usable config).
    pub fn resolver(&self) -> Option<&Arc<dyn sipox_dns::Lookup>> {
        self.dns
            .get_or_init(|| {
                sipox_dns::SystemResolver::from_system()
                    .ok()
                    .map(|r| Arc::new(r) as Arc<dyn sipox_dns::Lookup>)
            })
            .as_ref()
    }

    /// Uses `r` for DNS (tests give a static table); only before the first lookup.
    pub fn set_resolver(&self, r: Arc<dyn sipox_dns::Lookup>) -> bool {
        self.dns.set(Some(r)).is_ok()
    }

    /// RFC 3263 settings from the core parameters.
    pub fn dns_config(&self) -> sipox_dns::DnsConfig {
        let mut transports = vec![sipox_dns::Transport::Udp];
        if self.cfg.sockets.iter().any(|s| s.proto == Proto::Tcp) {
            transports.push(sipox_dns::Transport::Tcp);
        }
        sipox_dns::DnsConfig {
            try_naptr: self.cfg.dns_try_naptr,
            try_ipv6: self.cfg.dns_try_ipv6,
            transports,
            blacklist: Vec::new(),
        }
    }

    /// The running transports.
    pub fn transports(&self) -> Option<&Transports> {
        self.tx.get()
    }

    /// (host, port) pairs that name this server: bound sockets, advertised addresses, aliases.
    pub fn ours(&self) -> &[(String, u16)] {
        self.ours.get().map_or(&[], Vec::as_slice)
    }

    /// The program in force (each message takes this snapshot when it starts).
    pub fn program(&self) -> Arc<Program> {
        Arc::clone(&self.program.read())
    }

    /// `reload_routes`: compiles the configuration file again and swaps the new routes in.
    /// Messages being processed finish on the program they started with. On any error the
    /// running program stays and the error text is returned.
    pub fn reload(&self) -> Result<(), String> {
        let compiled = parse(&self.script.0, self.script.1.clone())
            .and_then(|(ast, sources)| compile_program(&ast, &sources, &self.modhost.instances));
        let mut prog = compiled.inspect_err(|e| {
            self.log.log(
                L_WARN,
                &format!("reload_routes refused, the running routes stay: {e}"),
            );
        })?;
        if !Program::share_level_cells(
            &mut prog,
            Arc::clone(&self.level_cells.0),
            Arc::clone(&self.level_cells.1),
        ) {
            return Err("internal error: the new program is already shared".into());
        }
        *self.program.write() = prog;
        self.log.log(L_NOTICE, "routes reloaded");
        Ok(())
    }

    /// Orderly stop: receivers end, TCP connections close, timers and [`Server::wait`]
    /// return. Idempotent.
    pub fn shutdown(&self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        self.log.log(L_NOTICE, "shutting down");
        if let Some(tx) = self.transports() {
            tx.shutdown();
        }
        // Modules last: nothing new arrives, so what they flush is complete.
        self.modhost.stop();
        *self.stop_mx.lock() = true;
        self.stop_cv.notify_all();
    }

    /// True once [`Runtime::shutdown`] ran (signal, MI `kill`).
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Waits up to `timeout` for the shutdown; true when it happened.
    pub fn wait_stopped(&self, timeout: Duration) -> bool {
        let mut g = self.stop_mx.lock();
        if !*g {
            let _ = self.stop_cv.wait_for(&mut g, timeout);
        }
        *g
    }

    /// True when `host:port` names this server.
    pub fn is_ours(&self, host: &[u8], port: u16) -> bool {
        let host = host
            .strip_prefix(b"[")
            .and_then(|h| h.strip_suffix(b"]"))
            .unwrap_or(host);
        self.ours()
            .iter()
            .any(|(h, p)| *p == port && h.as_bytes().eq_ignore_ascii_case(host))
    }
}

/// The standard registry plus the functions this runtime implements.
pub fn registry() -> Registry {
    let mut r = Registry::standard();
    crate::fns::register(&mut r);
    crate::tm::register(&mut r);
    sipox_mod_usrloc::script::register(&mut r);
    sipox_mod_registrar::register(&mut r);
    sipox_mod_auth::register(&mut r);
    r
}

thread_local! {
    static CX: RefCell<Option<MsgCx>> = const { RefCell::new(None) };
}

struct ServerHandler {
    rt: Arc<Runtime>,
}

#[allow(clippy::disallowed_methods)] // the I/O driver is where the clock is read
pub(crate) fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

pub(crate) fn script_source(src: &Source) -> sipox_script::Source {
    sipox_script::Source {
        ip: src.remote.ip(),
        port: src.remote.port(),
        proto: src.proto.as_str(),
        local_ip: src.local.ip(),
        local_port: src.local.port(),
    }
}

/// Transport source of the message being processed, kept next to the `MsgCx` for functions
/// that answer on the same connection.
pub(crate) fn current_source() -> Option<Source> {
    CUR_SRC.with(|s| *s.borrow())
}

thread_local! {
    /// `force_rport()` was called for the message being processed.
    static FORCED_RPORT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the current message as if its top Via asked for rport (`force_rport()`).
pub(crate) fn force_rport_for_message() {
    FORCED_RPORT.with(|f| f.set(true));
}

/// True when rport applies to the current message: `force_rport` globally or by the script.
pub(crate) fn rport_forced(rt: &Runtime) -> bool {
    rt.cfg.force_rport || FORCED_RPORT.with(std::cell::Cell::get)
}

thread_local! {
    /// `set_advertised_address()` / `set_advertised_port()` for the message being processed.
    static ADVERTISED: RefCell<(Option<Box<str>>, Option<u16>)> = const { RefCell::new((None, None)) };
    /// `set_via_handling("reply-to-via")` for the message being processed.
    static REPLY_TO_VIA: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Forgets the per-message Via/advertising settings of the previous message.
fn reset_message_overrides() {
    crate::blacklist::reset_message();
    FORCED_RPORT.with(|f| f.set(false));
    REPLY_TO_VIA.with(|f| f.set(false));
    ADVERTISED.with(|a| *a.borrow_mut() = (None, None));
}

/// `set_advertised_address()`: the host our Via and Record-Route name for this message.
pub(crate) fn set_advertised_host(host: &str) {
    ADVERTISED.with(|a| a.borrow_mut().0 = Some(host.into()));
}

/// `set_advertised_port()`: the port our Via and Record-Route name for this message.
pub(crate) fn set_advertised_port(port: u16) {
    ADVERTISED.with(|a| a.borrow_mut().1 = Some(port));
}

/// `set_via_handling("reply-to-via")`: replies go to the top Via's sent-by.
pub(crate) fn reply_to_via_for_message() {
    REPLY_TO_VIA.with(|f| f.set(true));
}

/// The host and port `sock` names this server by: its `as` advertised address, else its own.
pub(crate) fn socket_host_port(sock: &sipox_transport::SocketInfo) -> (String, u16) {
    match &sock.advertised {
        Some((h, p)) => (h.clone(), *p),
        None => (sipox_proxy::fmt_ip(sock.local.ip()), sock.local.port()),
    }
}

/// The host and port this server names itself by on `sock` for the current message:
/// [`socket_host_port`], or the script's per-message override.
pub(crate) fn advertised(sock: &sipox_transport::SocketInfo) -> (String, u16) {
    let (mut host, mut port) = socket_host_port(sock);
    ADVERTISED.with(|a| {
        let a = a.borrow();
        if let Some(h) = &a.0 {
            host = h.to_string();
        }
        if let Some(p) = a.1 {
            port = p;
        }
    });
    (host, port)
}

thread_local! {
    static CUR_SRC: RefCell<Option<Source>> = const { RefCell::new(None) };
}

/// Readies the thread's context for a route run outside the receive path (a reply's or a
/// transaction's route): the transport source the functions see, and the time.
pub(crate) fn prepare_cx(cx: &mut MsgCx, src: Option<&Source>) {
    // Per-message script settings of whatever this thread ran before do not carry over.
    reset_message_overrides();
    if let Some(src) = src {
        cx.set_source(script_source(src));
    }
    CUR_SRC.with(|s| *s.borrow_mut() = src.copied());
    cx.set_time_us(now_us());
}

/// A fresh script context for `prog` wired to the runtime (functions, log sink).
pub(crate) fn new_cx(rt: &Arc<Runtime>, prog: &Arc<Program>) -> MsgCx {
    let mut cx = MsgCx::new(Arc::clone(prog));
    cx.set_ext(rt.clone());
    cx.set_log_sink(rt.log.sink());
    cx.set_reply_fn(crate::fns::reply_from_script);
    cx.set_socket_fn(crate::fns::socket_from_script);
    cx
}

/// Runs the thread's context on `prog` (a new context when the program was reloaded).
pub(crate) fn with_cx<R>(
    rt: &Arc<Runtime>,
    prog: &Arc<Program>,
    f: impl FnOnce(&mut MsgCx) -> R,
) -> R {
    CX.with(|c| {
        let mut slot = c.borrow_mut();
        let fresh = slot
            .as_ref()
            .is_none_or(|cx| !Arc::ptr_eq(cx.program(), prog));
        if fresh {
            *slot = Some(new_cx(rt, prog));
        }
        match slot.as_mut() {
            Some(cx) => f(cx),
            None => unreachable_cx(),
        }
    })
}

impl ServerHandler {
    fn with_cx<R>(&self, prog: &Arc<Program>, f: impl FnOnce(&mut MsgCx) -> R) -> R {
        with_cx(&self.rt, prog, f)
    }

    fn on_request(&self, msg: SipMsg, src: &Source) {
        let rt = &self.rt;
        rt.counters.rcv_requests.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = msg.validate() {
            rt.counters.err_requests.fetch_add(1, Ordering::Relaxed);
            rt.counters.parse_failure(e.kind);
            // With an error_route the script decides (OpenSIPS: class 1 = parse error, level 1
            // = error, the reply it would have sent in rcode/rreason); otherwise answer here.
            let prog = rt.program();
            if prog.route(RouteKind::Error, None).is_some() {
                CUR_SRC.with(|s| *s.borrow_mut() = Some(*src));
                let code = i64::from(e.reply_code(true).unwrap_or(400));
                let info = e.to_string();
                let out = self.with_cx(&prog, |cx| {
                    cx.set_source(script_source(src));
                    cx.set_time_us(now_us());
                    cx.set_message(msg);
                    cx.set_error(1, 1, info.as_bytes(), code, e.reason().as_bytes());
                    let o = cx.run_route(RouteKind::Error, None);
                    cx.clear_message();
                    o
                });
                if let Outcome::Error(err) = out {
                    rt.log.log(L_ERR, &format!("ERROR: error_route: {err}"));
                }
                return;
            }
            if msg.method() != Some(sipox_sip_msg::Method::Ack) {
                let code = e.reply_code(true).unwrap_or(400);
                stateless_reply(rt, &msg, src, code, e.reason().as_bytes());
            }
            return;
        }
        match msg.method() {
            Some(sipox_sip_msg::Method::Other) => rt.counters.unsupported_methods.inc(),
            // sl absorbs the ACK of a negative reply it sent (the To-tag is the one it made)
            Some(sipox_sip_msg::Method::Ack)
                if rt.sl_loaded
                    && msg
                        .to()
                        .ok()
                        .and_then(|t| t.tag())
                        .is_some_and(|t| t == to_tag(rt, &msg).as_bytes()) =>
            {
                rt.counters.received_acks.inc();
                rt.counters.drop_requests.inc();
                return;
            }
            _ => {}
        }
        CUR_SRC.with(|s| *s.borrow_mut() = Some(*src));
        reset_message_overrides();
        let prog = rt.program();
        let outcome = self.with_cx(&prog, |cx| {
            cx.set_source(script_source(src));
            cx.set_time_us(now_us());
            cx.set_message(msg);
            let o = cx.run_main();
            cx.clear_message();
            o
        });
        // `drop` in the script is not a core drop (OpenSIPS counts only drops made before
        // the script runs in core:drop_requests).
        if let Outcome::Error(e) = outcome {
            rt.log.log(L_ERR, &format!("script: {e}"));
        }
        crate::tm::after_script(rt);
    }

    fn on_reply(&self, msg: SipMsg, src: &Source) {
        let rt = &self.rt;
        rt.counters.rcv_replies.fetch_add(1, Ordering::Relaxed);
        // The top Via must be ours, and there must be a next hop that is safe to send to.
        let (ours, next) = {
            let mut vias = msg.vias();
            let ours = match vias.next() {
                Some(Ok(v)) => rt.is_ours(v.host(), v.port().unwrap_or(5060)),
                _ => false,
            };
            let next = match vias.next() {
                Some(Ok(v)) if !v.is_unsafe_reply_target() => sipox_proxy::reply_target(&v).ok(),
                _ => None,
            };
            (ours, next)
        };
        if !ours {
            rt.counters.drop_replies.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // A reply to a request tm relayed (or sent on its own, with no Via below ours) goes
        // to its transaction.
        let Some(msg) = rt.tm.on_reply(rt, msg, src) else {
            return;
        };
        let Some(next) = next else {
            rt.counters.drop_replies.fetch_add(1, Ordering::Relaxed);
            return;
        };
        CUR_SRC.with(|s| *s.borrow_mut() = Some(*src));
        reset_message_overrides();
        let prog = rt.program();
        let has_onreply = prog.route(RouteKind::OnReply, None).is_some();
        let out = self.with_cx(&prog, |cx| {
            cx.set_source(script_source(src));
            cx.set_time_us(now_us());
            cx.set_message(msg);
            let o = if has_onreply {
                cx.run_route(RouteKind::OnReply, None)
            } else {
                Outcome::Done(1)
            };
            let mut bytes = None;
            if !matches!(o, Outcome::Drop) {
                if let Some(m) = cx.msg_mut() {
                    m.pop_via();
                }
                let mut buf = Vec::new();
                if cx.write_message(&mut buf).is_ok() {
                    bytes = Some(buf);
                }
            }
            cx.clear_message();
            bytes
        });
        let Some(out) = out else {
            rt.counters.drop_replies.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Some(addr) = next.socket_addr() else {
            // A sent-by name would need DNS (RFC 3263 §5), not built yet.
            rt.counters.drop_replies.fetch_add(1, Ordering::Relaxed);
            return;
        };
        send_relayed_reply(rt, proto_of(next.transport), addr, out);
    }
}

/// Sends a relayed reply to its next hop and counts it (`core:fwd_replies`).
fn send_relayed_reply(rt: &Runtime, proto: Proto, addr: SocketAddr, out: Vec<u8>) {
    let dst = Dest {
        proto,
        addr,
        socket: None,
        conn: None,
    };
    if rt
        .transports()
        .is_some_and(|tx| tx.send(&dst, Bytes::from(out)).is_ok())
    {
        rt.counters.fwd_replies.fetch_add(1, Ordering::Relaxed);
    }
}

/// Relays a reply statelessly to its second Via (no script): a reply tm has no transaction
/// for any more.
pub(crate) fn relay_reply_by_via(rt: &Runtime, mut msg: SipMsg) {
    let next = {
        let mut vias = msg.vias();
        let _ = vias.next();
        match vias.next() {
            Some(Ok(v)) if !v.is_unsafe_reply_target() => sipox_proxy::reply_target(&v).ok(),
            _ => None,
        }
    };
    let Some(addr) = next.as_ref().and_then(sipox_proxy::Target::socket_addr) else {
        rt.counters.drop_replies.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let proto = next.map_or(Proto::Udp, |n| proto_of(n.transport));
    msg.pop_via();
    let mut out = Vec::with_capacity(msg.raw().len());
    if msg.write_to(&mut out).is_err() {
        return;
    }
    send_relayed_reply(rt, proto, addr, out);
}

#[cold]
fn unreachable_cx() -> ! {
    // The slot is filled just above; this cannot happen.
    std::process::abort()
}

pub(crate) fn proto_of(t: sipox_sip_msg::Transport) -> Proto {
    match t {
        sipox_sip_msg::Transport::Tcp => Proto::Tcp,
        sipox_sip_msg::Transport::Tls => Proto::Tls,
        sipox_sip_msg::Transport::Ws => Proto::Ws,
        sipox_sip_msg::Transport::Wss => Proto::Wss,
        sipox_sip_msg::Transport::Sctp => Proto::Sctp,
        _ => Proto::Udp,
    }
}

/// Where a stateless reply to `msg` (received from `src`) goes: back on the connection for
/// stream transports; for UDP the source address when `rport` was asked (or forced), else the
/// source IP with the Via port (RFC 3261 §18.2.2 with `received`, RFC 3581).
pub(crate) fn reply_dest(rt: &Runtime, msg: &SipMsg, src: &Source) -> Dest {
    if src.conn.is_some() {
        return Dest {
            proto: src.proto,
            addr: src.remote,
            socket: Some(src.socket),
            conn: src.conn,
        };
    }
    let to_via = REPLY_TO_VIA.with(std::cell::Cell::get);
    let addr = match msg.via1() {
        Ok(v)
            if to_via
                && let Some(ip) = std::str::from_utf8(v.host())
                    .ok()
                    .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
                    .and_then(|h| h.parse::<std::net::IpAddr>().ok()) =>
        {
            SocketAddr::new(ip, v.port().unwrap_or(5060))
        }
        Ok(v) if v.maddr().is_none() && !(rport_forced(rt) || v.rport().is_some()) => {
            SocketAddr::new(src.remote.ip(), v.port().unwrap_or(5060))
        }
        _ => src.remote,
    };
    Dest {
        proto: src.proto,
        addr,
        socket: Some(src.socket),
        conn: None,
    }
}

/// Builds and sends a stateless reply. Returns false when it could not be built or sent.
pub(crate) fn stateless_reply(
    rt: &Runtime,
    msg: &SipMsg,
    src: &Source,
    code: u16,
    reason: &[u8],
) -> bool {
    stateless_reply_with(rt, msg, src, code, reason, b"")
}

/// [`stateless_reply`] with extra header lines (each ending in CRLF).
pub(crate) fn stateless_reply_with(
    rt: &Runtime,
    msg: &SipMsg,
    src: &Source,
    code: u16,
    reason: &[u8],
    extra: &[u8],
) -> bool {
    let tag = to_tag(rt, msg);
    let ip = sipox_proxy::fmt_ip(src.remote.ip());
    // received/rport only where RFC 3261 §18.2.1 and RFC 3581 ask for them.
    let params = msg
        .via1()
        .ok()
        .and_then(|v| sipox_proxy::via_receive_params(&v, src.remote, rport_forced(rt)))
        .unwrap_or_default();
    let want_received = params.contains(";received=");
    let want_rport = params.contains(";rport=");
    let server = rt
        .cfg
        .server_signature
        .then(|| header_value(&rt.cfg.server_header));
    let opts = ReplyOpts {
        to_tag: Some(tag.as_bytes()),
        via_received: want_received.then_some(ip.as_bytes()),
        via_rport: want_rport.then_some(src.remote.port()),
        server: server.map(str::as_bytes),
        extra_headers: extra,
        ..ReplyOpts::default()
    };
    let mut out = Vec::with_capacity(512);
    if build_reply(msg, code, reason, &opts, &mut out).is_err() {
        return false;
    }
    let dst = reply_dest(rt, msg, src);
    let ok = rt
        .transports()
        .is_some_and(|tx| tx.send(&dst, Bytes::from(out)).is_ok());
    if ok {
        rt.counters.sl_sent(code);
    }
    ok
}

/// `Server: sipox` → `sipox` (the configured header line minus its name).
fn header_value(line: &str) -> &str {
    line.split_once(':').map_or(line, |(_, v)| v.trim())
}

/// A To-tag that is the same for retransmissions of one request (RFC 3261 §8.2.6.2 asks for
/// a tag; a stable one lets a stateless element answer retransmissions identically).
pub(crate) fn to_tag(rt: &Runtime, msg: &SipMsg) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ rt.to_tag_seed;
    for part in [
        msg.call_id().unwrap_or_default(),
        msg.from().ok().and_then(|f| f.tag()).unwrap_or_default(),
        msg.via1().ok().and_then(|v| v.branch()).unwrap_or_default(),
    ] {
        for &b in part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

impl Handler for ServerHandler {
    fn on_send_error(&self, dst: &Dest, _err: &sipox_transport::SendError) {
        self.rt.tm.on_send_error(dst);
    }

    #[allow(clippy::disallowed_methods)] // the I/O driver times its work for load:
    fn on_message(&self, msg: SipMsg, src: &Source, _tx: &Transports) {
        let t0 = Instant::now();
        if msg.is_request() {
            self.on_request(msg, src);
        } else {
            self.on_reply(msg, src);
        }
        let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.rt.counters.busy_ns.fetch_add(ns, Ordering::Relaxed);
    }

    fn on_bad_message(&self, data: &[u8], err: ParseError, src: &Source, _tx: &Transports) {
        self.rt.counters.parse_failure(err.kind);
        if looks_like_response(data) {
            self.rt.counters.err_replies.inc();
            return;
        }
        self.rt.counters.err_requests.inc();
        // Answer 400 when enough of the request parses to build a reply; otherwise drop.
        let Ok(msg) = SipMsg::parse(Bytes::copy_from_slice(
            data.get(..data.len().min(65_535)).unwrap_or(data),
        )) else {
            return;
        };
        if msg.via1().is_ok() && msg.cseq().is_ok() && msg.call_id().is_some() {
            let code = err.reply_code(true).unwrap_or(400);
            stateless_reply(&self.rt, &msg, src, code, err.reason().as_bytes());
        }
    }
}

/// A started server.
#[derive(Debug)]
pub struct Server {
    /// The runtime handle.
    pub runtime: Arc<Runtime>,
    /// The program compiled at start (after `reload_routes`, [`Runtime::program`] is the
    /// one in force).
    pub program: Arc<Program>,
    /// The Management Interface (commands work even when no MI transport is loaded).
    pub mi: Arc<Mi>,
    mi_run: Mutex<MiRunning>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Parses `path` (with the `-p` preprocessor).
fn parse(path: &Path, preprocessor: Option<String>) -> Result<(Config, SourceMap), String> {
    let opts = Options {
        preprocessor,
        ..Options::default()
    };
    let parsed = sipox_cfg_syntax::parse_file(path, &opts);
    if parsed.has_errors() {
        return Err(parsed.render_diagnostics());
    }
    let (ast, _, sources) = parsed.into_parts();
    let ast = ast.ok_or_else(|| "configuration did not parse".to_owned())?;
    Ok((ast, sources))
}

/// Compiles a parsed configuration with this runtime's functions.
fn compile_program(
    ast: &Config,
    sources: &SourceMap,
    instances: &sipox_script::Instances,
) -> Result<Arc<Program>, String> {
    let opts = CompileOptions {
        instances: instances.clone(),
        ..CompileOptions::default()
    };
    let compiled = sipox_script::compile(ast, sources, &registry(), &opts);
    compiled.program.ok_or_else(|| {
        compiled
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.render(sources))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// Names of the modules the configuration loads.
fn loaded_modules(ast: &Config) -> Vec<String> {
    ast.items
        .iter()
        .filter_map(|i| match i {
            Item::LoadModule(l) => Some(l.name.clone()),
            _ => None,
        })
        .collect()
}

/// `timer_route[name, interval]` blocks: (name, seconds).
fn timer_routes(ast: &Config) -> Vec<(String, u64)> {
    ast.items
        .iter()
        .filter_map(|i| match i {
            Item::Route(r) if r.kind == RouteKind::Timer => Some((
                r.name.clone()?,
                r.interval
                    .and_then(|s| u64::try_from(s).ok())
                    .unwrap_or(1)
                    .max(1),
            )),
            _ => None,
        })
        .collect()
}

/// Runs a message-less route (startup, timer) on this thread's context.
fn run_plain_route(rt: &Arc<Runtime>, kind: RouteKind, name: Option<&str>) {
    let prog = rt.program();
    if prog.route(kind, name).is_none() {
        return;
    }
    let out = with_cx(rt, &prog, |cx| {
        cx.set_time_us(now_us());
        cx.run_route(kind, name)
    });
    // e.g. replies to a t_new_request that already came
    crate::tm::after_script(rt);
    if let Outcome::Error(e) = out {
        rt.log.log(
            L_ERR,
            &format!(
                "{}{}: {e}",
                kind.keyword(),
                name.map_or(String::new(), |n| format!("[{n}]"))
            ),
        );
    }
}

/// The event thread: runs `event_route[name]` for every event a module raises, in order.
fn run_events(rt: &Arc<Runtime>, rx: &std::sync::mpsc::Receiver<(String, Vec<(String, String)>)>) {
    while !rt.is_stopping() {
        let (name, params) = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(ev) => ev,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            // no module kept the event sender: nothing will ever be raised
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let prog = rt.program();
        if prog.route(RouteKind::Event, Some(&name)).is_none() {
            continue;
        }
        let out = with_cx(rt, &prog, |cx| {
            cx.set_time_us(now_us());
            cx.run_event(&name, params)
        });
        if let Some(Outcome::Error(e)) = out {
            rt.log.log(L_ERR, &format!("event_route[{name}]: {e}"));
        }
    }
}

/// Sleeps `total` in short steps; false when the runtime stopped meanwhile.
fn nap(rt: &Runtime, total: Duration) -> bool {
    !rt.wait_stopped(total)
}

#[allow(clippy::disallowed_methods)] // the runtime's timer is an I/O driver
fn housekeeping(rt: &Arc<Runtime>, load: &LoadMeter) {
    let mut last = Instant::now();
    while nap(rt, Duration::from_secs(1)) {
        let now = Instant::now();
        let elapsed = now.duration_since(last);
        last = now;
        load.sample(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
        rt.counters
            .timestamp
            .set(now.duration_since(rt.started).as_secs());
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, StartError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| StartError::Mi(format!("cannot start the {name} thread: {e}")))
}

impl Server {
    /// Parses, checks and compiles `path` (with `-p` preprocessing and extra `-l` sockets),
    /// registers the statistics, runs `startup_route`, binds every socket and starts receiving,
    /// the timers and the MI transports the configuration loads. Returns when the server is up.
    #[allow(clippy::disallowed_methods)] // start time, read by the I/O driver
    pub fn start(
        path: &Path,
        preprocessor: Option<String>,
        extra: &[sipox_transport::ListenSpec],
    ) -> Result<Self, StartError> {
        let (ast, sources) = parse(path, preprocessor.clone()).map_err(StartError::Config)?;
        let (mut cfg, errs) = CoreConfig::from_ast(&ast);
        if !errs.is_empty() {
            let text: Vec<String> = errs
                .iter()
                .map(|e| {
                    let l = sources.location(e.span);
                    format!("{}:{}:{}: error: {}", l.file, l.line, l.col, e.message)
                })
                .collect();
            return Err(StartError::Config(text.join("\n")));
        }
        cfg.sockets.extend(extra.iter().cloned());
        if cfg.sockets.is_empty() {
            return Err(StartError::NoSockets);
        }
        let log_settings = LogSettings::from_ast(&ast);
        let level_cells = (
            Arc::new(AtomicI32::new(log_settings.log_level)),
            Arc::new(AtomicI32::new(
                log_settings.xlog_level.unwrap_or(log_settings.log_level),
            )),
        );
        let log = Arc::new(Logger::new(
            &log_settings,
            Arc::clone(&level_cells.0),
            Arc::clone(&level_cells.1),
        ));
        let stats = Arc::new(Stats::new());
        let loaded = loaded_modules(&ast);
        let mod_log = Arc::clone(&log);
        let (ev_tx, ev_rx) = std::sync::mpsc::channel::<(String, Vec<(String, String)>)>();
        let ev_tx = Mutex::new(ev_tx);
        let modhost = crate::modhost::start(&crate::modhost::InitCx {
            ast: &ast,
            loaded: &loaded,
            stats: &stats,
            log: Arc::new(move |l, t| mod_log.log(l, t)),
            events: Arc::new(move |name, params| {
                let _ = ev_tx.lock().send((name.to_owned(), params));
            }),
        })
        .map_err(StartError::Config)?;
        let mut program =
            compile_program(&ast, &sources, &modhost.instances).map_err(StartError::Config)?;
        if !Program::share_level_cells(
            &mut program,
            Arc::clone(&level_cells.0),
            Arc::clone(&level_cells.1),
        ) {
            return Err(StartError::Config(
                "internal error: the new program is already shared".into(),
            ));
        }
        let mi_setup = MiSetup::from_ast(&ast, program.modules()).map_err(StartError::Config)?;
        let sl_loaded = program.modules().iter().any(|m| m == "sl");
        let counters = CoreCounters::register(&stats, sl_loaded)
            .map_err(|e| StartError::Mi(format!("statistics: {e}")))?;
        let seed = now_us().unsigned_abs();
        let tm_loaded = program.modules().iter().any(|m| m == "tm");
        let mut tm_params = crate::tm::TmParams::from_ast(&ast);
        if cfg.server_signature {
            tm_params.server = Some(Bytes::copy_from_slice(
                header_value(&cfg.server_header).as_bytes(),
            ));
            tm_params.user_agent = Some(Bytes::copy_from_slice(
                header_value(&cfg.user_agent_header).as_bytes(),
            ));
        }
        let tm = crate::tm::Tm::new(&tm_params, seed);
        // validated when the configuration was read
        let blacklists =
            crate::blacklist::Lists::parse(cfg.dst_blacklist.iter().map(String::as_str))
                .unwrap_or_default();
        let rt = Arc::new(Runtime {
            cfg,
            tx: OnceLock::new(),
            ours: OnceLock::new(),
            counters,
            to_tag_seed: seed,
            stats: Arc::clone(&stats),
            log,
            program: RwLock::new(Arc::clone(&program)),
            script: (path.to_path_buf(), preprocessor),
            level_cells,
            sl_loaded,
            stopping: AtomicBool::new(false),
            stop_mx: Mutex::new(false),
            stop_cv: Condvar::new(),
            started: Instant::now(),
            dns: OnceLock::new(),
            tm,
            modhost,
            blacklists,
        });
        // startup_route runs once, before anything is received
        run_plain_route(&rt, RouteKind::Startup, None);
        let handler = Arc::new(ServerHandler {
            rt: Arc::clone(&rt),
        });
        let tx = Transports::start(&rt.cfg.sockets, rt.cfg.transport.clone(), handler)?;
        let mut ours: Vec<(String, u16)> = Vec::new();
        for s in tx.sockets() {
            ours.push((s.local.ip().to_string(), s.local.port()));
            if let Some((h, p)) = &s.advertised {
                ours.push((h.clone(), *p));
            }
        }
        for (h, p) in &rt.cfg.aliases {
            ours.push((h.clone(), p.unwrap_or(5060)));
        }
        // Set once, right after binding; a message racing this sees "not ours" and is dropped.
        let _ = rt.ours.set(ours);
        let workers = tx
            .sockets()
            .iter()
            .map(|s| match s.proto {
                Proto::Udp => s_workers(&rt.cfg, s.id),
                _ => 0,
            })
            .sum::<usize>()
            + rt.cfg.transport.tcp_workers;
        let stat_err = |e: sipox_stats::StatsError| StartError::Mi(format!("statistics: {e}"));
        crate::metrics::register_net(&stats, &tx).map_err(stat_err)?;
        let _ = rt.tx.set(tx);
        let load = Arc::new(LoadMeter::new(Arc::clone(&rt.counters.busy_ns), workers));
        load.register(&stats).map_err(stat_err)?;
        crate::metrics::register_memory(&stats).map_err(stat_err)?;
        if tm_loaded {
            crate::tm::register_stats(&rt, &stats).map_err(stat_err)?;
        }

        let mi = Arc::new(Mi::new(MiConfig {
            stats,
            log_levels: Arc::new(LogLevels::sharing(
                Arc::clone(&rt.level_cells.0),
                Arc::clone(&rt.level_cells.1),
            )),
            started: std::time::SystemTime::now(),
            ..MiConfig::default()
        }));
        mi.register_all(RUNTIME_CMDS)
            .map_err(|e| StartError::Mi(e.to_string()))?;
        mi.provide(Arc::clone(&rt));
        rt.modhost.register_mi(&mi).map_err(StartError::Mi)?;
        let hook_rt = Arc::clone(&rt);
        mi.on_kill(move || hook_rt.shutdown());

        let mut threads = Vec::new();
        let ev_rt = Arc::clone(&rt);
        threads.push(spawn("events", move || run_events(&ev_rt, &ev_rx))?);
        let hk_rt = Arc::clone(&rt);
        threads.push(spawn("timer", move || housekeeping(&hk_rt, &load))?);
        if tm_loaded {
            let tm_rt = Arc::clone(&rt);
            threads.push(spawn("tm-timer", move || tm_rt.tm.run_timers(&tm_rt))?);
        }
        for (name, secs) in timer_routes(&ast) {
            let t_rt = Arc::clone(&rt);
            threads.push(spawn("timer_route", move || {
                while nap(&t_rt, Duration::from_secs(secs)) {
                    run_plain_route(&t_rt, RouteKind::Timer, Some(&name));
                }
            })?);
        }
        let mi_run = match MiRunning::start(&mi, &mi_setup) {
            Ok(r) => r,
            Err(e) => {
                rt.shutdown();
                return Err(StartError::Mi(e));
            }
        };
        if let Some(a) = mi_run.http_addr {
            rt.log
                .log(L_INFO, &format!("httpd: MI and metrics on http://{a}"));
        }
        Ok(Self {
            runtime: rt,
            program,
            mi,
            mi_run: Mutex::new(mi_run),
            threads: Mutex::new(threads),
        })
    }

    /// Where the HTTP MI (`httpd`) listens, when loaded.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.mi_run.lock().http_addr
    }

    /// The MI FIFO's path, when `mi_fifo` is loaded.
    pub fn fifo_path(&self) -> Option<PathBuf> {
        self.mi_run
            .lock()
            .fifo
            .as_ref()
            .map(|f| f.path().to_path_buf())
    }

    /// Blocks until the server is asked to stop (MI `kill`, [`Runtime::shutdown`]) or
    /// `timeout` passes; true when it was asked to stop.
    pub fn wait(&self, timeout: Duration) -> bool {
        self.runtime.wait_stopped(timeout)
    }

    /// Stops everything: receivers, TCP connections, timers, MI transports. Idempotent.
    pub fn shutdown(&self) {
        self.runtime.shutdown();
        if !self.mi.is_shutting_down() {
            self.mi.request_shutdown();
        }
        self.mi_run.lock().stop();
        let threads = std::mem::take(&mut *self.threads.lock());
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// UDP receiver threads of one socket (its `use_workers`, else `udp_workers`).
fn s_workers(cfg: &CoreConfig, id: sipox_transport::SocketId) -> usize {
    let mut i = 0usize;
    for spec in &cfg.sockets {
        for _ in spec.ports() {
            if i == usize::from(id.0) {
                return spec.workers.unwrap_or(cfg.transport.udp_workers).max(1);
            }
            i += 1;
        }
    }
    cfg.transport.udp_workers.max(1)
}
