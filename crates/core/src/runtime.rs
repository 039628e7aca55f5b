//! The server: compile, bind, and the per-message path.
//!
//! Each receiving thread (UDP receiver threads, TCP runtime threads) keeps its own `MsgCx` in a
//! thread-local, so `$var` values live per worker as in OpenSIPS and a message never waits for a
//! lock. Requests run the main route; replies are relayed statelessly by their second Via after
//! the `onreply_route` ran.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use sipox_cfg_syntax::{Options, RouteKind};
use sipox_script::{CompileOptions, MsgCx, Outcome, Program, Registry};
use sipox_sip_msg::{ParseError, ReplyOpts, SipMsg, build_reply, looks_like_response};
use sipox_transport::{Dest, Handler, Proto, Source, Transports};
use thiserror::Error;

use crate::config::CoreConfig;

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
}

/// Counters of the core path (exposed as `core:` statistics once the MI is wired).
#[derive(Debug, Default)]
pub struct CoreCounters {
    /// Requests received.
    pub rcv_requests: AtomicU64,
    /// Replies received.
    pub rcv_replies: AtomicU64,
    /// Requests forwarded statelessly.
    pub fwd_requests: AtomicU64,
    /// Replies relayed.
    pub fwd_replies: AtomicU64,
    /// Replies dropped (not ours, unsafe target, script drop).
    pub drop_replies: AtomicU64,
    /// Requests dropped by the script.
    pub drop_requests: AtomicU64,
    /// Malformed messages.
    pub err_requests: AtomicU64,
    /// Stateless replies sent.
    pub sent_replies: AtomicU64,
}

/// What script functions reach through [`MsgCx::ext`]: the transports, settings and counters.
#[derive(Debug)]
pub struct Runtime {
    /// Core settings.
    pub cfg: CoreConfig,
    tx: OnceLock<Transports>,
    ours: OnceLock<Vec<(String, u16)>>,
    /// Counters.
    pub counters: CoreCounters,
    pub(crate) to_tag_seed: u64,
}

impl Runtime {
    /// The running transports.
    pub fn transports(&self) -> Option<&Transports> {
        self.tx.get()
    }

    /// (host, port) pairs that name this server: bound sockets, advertised addresses, aliases.
    pub fn ours(&self) -> &[(String, u16)] {
        self.ours.get().map_or(&[], Vec::as_slice)
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
    r
}

thread_local! {
    static CX: RefCell<Option<MsgCx>> = const { RefCell::new(None) };
}

struct ServerHandler {
    rt: Arc<Runtime>,
    prog: Arc<Program>,
}

#[allow(clippy::disallowed_methods)] // the I/O driver is where the clock is read
fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn script_source(src: &Source) -> sipox_script::Source {
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
    static CUR_SRC: RefCell<Option<Source>> = const { RefCell::new(None) };
}

impl ServerHandler {
    fn with_cx<R>(&self, f: impl FnOnce(&mut MsgCx) -> R) -> R {
        CX.with(|c| {
            let mut slot = c.borrow_mut();
            let fresh = slot
                .as_ref()
                .is_none_or(|cx| !Arc::ptr_eq(cx.program(), &self.prog));
            if fresh {
                let mut cx = MsgCx::new(Arc::clone(&self.prog));
                cx.set_ext(self.rt.clone());
                *slot = Some(cx);
            }
            match slot.as_mut() {
                Some(cx) => f(cx),
                None => unreachable_cx(),
            }
        })
    }

    fn on_request(&self, msg: SipMsg, src: &Source) {
        let rt = &self.rt;
        rt.counters.rcv_requests.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = msg.validate() {
            rt.counters.err_requests.fetch_add(1, Ordering::Relaxed);
            if msg.method() != Some(sipox_sip_msg::Method::Ack) {
                let code = e.reply_code(true).unwrap_or(400);
                stateless_reply(rt, &msg, src, code, e.reason().as_bytes());
            }
            return;
        }
        CUR_SRC.with(|s| *s.borrow_mut() = Some(*src));
        let outcome = self.with_cx(|cx| {
            cx.set_source(script_source(src));
            cx.set_time_us(now_us());
            cx.set_message(msg);
            let o = cx.run_main();
            cx.clear_message();
            o
        });
        match outcome {
            Outcome::Drop => {
                rt.counters.drop_requests.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Error(e) => eprintln!("ERROR: script: {e}"),
            _ => {}
        }
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
        let (true, Some(next)) = (ours, next) else {
            rt.counters.drop_replies.fetch_add(1, Ordering::Relaxed);
            return;
        };
        CUR_SRC.with(|s| *s.borrow_mut() = Some(*src));
        let has_onreply = self.prog.route(RouteKind::OnReply, None).is_some();
        let out = self.with_cx(|cx| {
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
        let proto = proto_of(next.transport);
        if let Some(tx) = rt.transports()
            && tx
                .send(
                    &Dest {
                        proto,
                        addr,
                        socket: None,
                        conn: None,
                    },
                    Bytes::from(out),
                )
                .is_ok()
        {
            rt.counters.fwd_replies.fetch_add(1, Ordering::Relaxed);
        }
    }
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
    let addr = match msg.via1() {
        Ok(v) if v.maddr().is_none() && !(rt.cfg.force_rport || v.rport().is_some()) => {
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
        .and_then(|v| sipox_proxy::via_receive_params(&v, src.remote, rt.cfg.force_rport))
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
        rt.counters.sent_replies.fetch_add(1, Ordering::Relaxed);
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
    fn on_message(&self, msg: SipMsg, src: &Source, _tx: &Transports) {
        if msg.is_request() {
            self.on_request(msg, src);
        } else {
            self.on_reply(msg, src);
        }
    }

    fn on_bad_message(&self, data: &[u8], err: ParseError, src: &Source, _tx: &Transports) {
        self.rt
            .counters
            .err_requests
            .fetch_add(1, Ordering::Relaxed);
        if looks_like_response(data) {
            return;
        }
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
    /// The compiled script.
    pub program: Arc<Program>,
}

impl Server {
    /// Parses, checks and compiles `path` (with `-p` preprocessing and extra `-l` sockets), binds
    /// every socket and starts receiving. Returns when the server is up.
    pub fn start(
        path: &Path,
        preprocessor: Option<String>,
        extra: &[sipox_transport::ListenSpec],
    ) -> Result<Self, StartError> {
        let opts = Options {
            preprocessor,
            ..Options::default()
        };
        let parsed = sipox_cfg_syntax::parse_file(path, &opts);
        if parsed.has_errors() {
            return Err(StartError::Config(parsed.render_diagnostics()));
        }
        let (ast, _, sources) = parsed.into_parts();
        let Some(ast) = ast else {
            return Err(StartError::Config("configuration did not parse".into()));
        };
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
        let reg = registry();
        let compiled = sipox_script::compile(&ast, &sources, &reg, &CompileOptions::default());
        let Some(program) = compiled.program else {
            let text: Vec<String> = compiled
                .diagnostics
                .iter()
                .map(|d| d.render(&sources))
                .collect();
            return Err(StartError::Config(text.join("\n")));
        };
        let seed = now_us().unsigned_abs();
        let rt = Arc::new(Runtime {
            cfg,
            tx: OnceLock::new(),
            ours: OnceLock::new(),
            counters: CoreCounters::default(),
            to_tag_seed: seed,
        });
        let handler = Arc::new(ServerHandler {
            rt: Arc::clone(&rt),
            prog: Arc::clone(&program),
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
        let _ = rt.tx.set(tx);
        Ok(Self {
            runtime: rt,
            program,
        })
    }
}
