//! `sipox-transport` owns the SIP transports: UDP sockets served by receiver threads, TCP
//! listeners and outgoing connections in one connection table (reuse, aliases, lifetime, limits,
//! RFC 5626 CRLF keep-alives), framing each stream with `sipox-sip-msg`'s `StreamFramer`. It
//! does not run scripts or transactions and does not depend on any sipox crate above the message
//! core: received messages go to a [`Handler`] the runtime supplies.
//!
//! # Threading
//! UDP uses plain OS threads blocking in `recv_from` on clones of the socket (the OpenSIPS
//! `udp_workers` model: no async overhead on the hot path, the kernel spreads datagrams across
//! the threads). TCP uses a tokio multi-thread runtime with `tcp_workers` threads: one task reads
//! and frames each connection, one writes to it from a bounded queue. The handler is called on
//! the thread that received the message; it must not block for long.

mod sched;
mod spec;
mod tcp;
mod udp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use sipox_sip_msg::{Limits, ParseError, SipMsg};
use thiserror::Error;

pub use spec::{ListenSpec, Proto, SpecError};
pub use tcp::ConnInfo;

/// Index of a listening socket in [`Transports::sockets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SocketId(pub u16);

/// Identifier of a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A socket sipox listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketInfo {
    /// Its id.
    pub id: SocketId,
    /// Transport protocol.
    pub proto: Proto,
    /// Bound local address (the real port when the spec said 0).
    pub local: SocketAddr,
    /// Address and port to advertise in Via/Record-Route (`as` in the socket definition).
    pub advertised: Option<(String, u16)>,
    /// `tag` from the socket definition.
    pub tag: Option<String>,
}

/// Where a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// The listening socket (for TCP, the listener that accepted the connection, or the socket
    /// of the same family for outgoing connections).
    pub socket: SocketId,
    /// Transport.
    pub proto: Proto,
    /// Remote address.
    pub remote: SocketAddr,
    /// Local address.
    pub local: SocketAddr,
    /// The connection, for stream transports.
    pub conn: Option<ConnId>,
}

/// Where to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dest {
    /// Transport.
    pub proto: Proto,
    /// Remote address.
    pub addr: SocketAddr,
    /// Socket to send from (`force_send_socket`); otherwise the first of the right family.
    pub socket: Option<SocketId>,
    /// Connection to use (replies go back on the request's connection, RFC 3261 §18.2.2).
    pub conn: Option<ConnId>,
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendError {
    /// No listening socket for this protocol and address family.
    #[error("no {0:?} socket for this destination")]
    NoSocket(Proto),
    /// The connection's write queue is full (the peer does not read).
    #[error("connection write queue full")]
    QueueFull,
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
    /// Connecting timed out.
    #[error("connect timed out")]
    ConnectTimeout,
    /// Too many TCP connections.
    #[error("too many connections")]
    TooManyConnections,
    /// An I/O error (its description).
    #[error("i/o error: {0}")]
    Io(String),
    /// The transport is not supported yet.
    #[error("{0:?} is not supported")]
    Unsupported(Proto),
}

/// Receives what the transports read. Called on the receiving thread.
pub trait Handler: Send + Sync + 'static {
    /// A framed and indexed message.
    fn on_message(&self, msg: SipMsg, src: &Source, tx: &Transports);
    /// Bytes that failed to frame or parse; for a request the handler may answer 400.
    fn on_bad_message(&self, _data: &[u8], _err: ParseError, _src: &Source, _tx: &Transports) {}
    /// An asynchronous send failure (e.g. a TCP connect that timed out): tm treats it as 503.
    fn on_send_error(&self, _dst: &Dest, _err: &SendError) {}
}

/// Transport settings (OpenSIPS global parameters of the same names).
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// `maxbuffer`: UDP receive/send buffer size to ask the kernel for (capped by the kernel
    /// at `net.core.rmem_max`/`wmem_max`). The default is 4 MiB where OpenSIPS's is 256 KiB:
    /// a 256 KiB buffer holds about 250 small datagrams, a few milliseconds of traffic at
    /// tens of thousands of messages per second, which a descheduled vCPU easily exceeds;
    /// the memory is only used while datagrams wait.
    pub maxbuffer: usize,
    /// `udp_workers`: receiver threads per UDP socket.
    pub udp_workers: usize,
    /// `tcp_workers`: threads of the TCP runtime.
    pub tcp_workers: usize,
    /// `tcp_max_connections`.
    pub tcp_max_connections: usize,
    /// `tcp_connection_lifetime`: idle time after which a connection is closed.
    pub tcp_connection_lifetime: Duration,
    /// `tcp_connect_timeout`.
    pub tcp_connect_timeout: Duration,
    /// `tcp_send_timeout`: a write that takes longer closes the connection.
    pub tcp_send_timeout: Duration,
    /// Messages queued per connection before sends fail with [`SendError::QueueFull`].
    pub tcp_queue: usize,
    /// Parser limits.
    pub limits: Limits,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            maxbuffer: 4 << 20,
            udp_workers: 2,
            tcp_workers: 2,
            tcp_max_connections: 2048,
            tcp_connection_lifetime: Duration::from_secs(120),
            tcp_connect_timeout: Duration::from_millis(100),
            tcp_send_timeout: Duration::from_millis(100),
            tcp_queue: 1024,
            limits: Limits::default(),
        }
    }
}

/// Counters (the `net:` statistics group).
#[derive(Debug, Default)]
pub struct NetStats {
    /// Messages received.
    pub received: AtomicU64,
    /// Messages that failed to frame or parse.
    pub bad: AtomicU64,
    /// Datagrams ignored as keep-alives (only CR/LF/NUL).
    pub keepalives: AtomicU64,
    /// Messages sent.
    pub sent: AtomicU64,
    /// Sends that failed.
    pub send_errors: AtomicU64,
    /// TCP connections accepted or opened.
    pub tcp_opened: AtomicU64,
    /// TCP connections refused by the limit.
    pub tcp_refused: AtomicU64,
}

pub(crate) struct Inner {
    sockets: Vec<SocketInfo>,
    udp: Vec<(SocketId, std::net::UdpSocket, SocketAddr)>,
    tcp: tcp::TcpState,
    cfg: TransportConfig,
    stats: NetStats,
    stop: AtomicBool,
    handler: Arc<dyn Handler>,
}

/// The running transports: a cheap handle to send with and to inspect.
#[derive(Clone)]
pub struct Transports {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Transports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transports")
            .field("sockets", &self.inner.sockets)
            .finish_non_exhaustive()
    }
}

/// Why the transports could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// Binding a socket failed.
    #[error("cannot bind {proto:?} {addr}: {err}")]
    Bind {
        /// Protocol.
        proto: Proto,
        /// Address.
        addr: SocketAddr,
        /// The OS error.
        err: std::io::Error,
    },
    /// The protocol has no implementation yet.
    #[error("{0:?} sockets are not supported yet")]
    Unsupported(Proto),
    /// Starting a thread or runtime failed.
    #[error("cannot start: {0}")]
    Runtime(std::io::Error),
}

impl Transports {
    /// Binds every socket of `specs` (port ranges expand to one socket per port) and starts the
    /// receivers. Returns once everything is bound.
    pub fn start(
        specs: &[ListenSpec],
        cfg: TransportConfig,
        handler: Arc<dyn Handler>,
    ) -> Result<Self, StartError> {
        let mut sockets = Vec::new();
        let mut udp = Vec::new();
        let mut tcp_listeners = Vec::new();
        for spec in specs {
            for port in spec.ports() {
                let addr = SocketAddr::new(spec.addr, port);
                let id = SocketId(u16::try_from(sockets.len()).unwrap_or(u16::MAX));
                let local = match spec.proto {
                    Proto::Udp => {
                        let s = udp::bind(addr, cfg.maxbuffer).map_err(|err| StartError::Bind {
                            proto: spec.proto,
                            addr,
                            err,
                        })?;
                        let local = s.local_addr().map_err(StartError::Runtime)?;
                        udp.push((id, s, local));
                        local
                    }
                    Proto::Tcp => {
                        let l = tcp::bind(addr).map_err(|err| StartError::Bind {
                            proto: spec.proto,
                            addr,
                            err,
                        })?;
                        let local = l.local_addr().map_err(StartError::Runtime)?;
                        tcp_listeners.push((id, l));
                        local
                    }
                    other => return Err(StartError::Unsupported(other)),
                };
                sockets.push(SocketInfo {
                    id,
                    proto: spec.proto,
                    local,
                    advertised: spec.advertised.clone(),
                    tag: spec.tag.clone(),
                });
            }
        }
        let tcp = tcp::TcpState::new(cfg.tcp_workers).map_err(StartError::Runtime)?;
        let inner = Arc::new(Inner {
            sockets,
            udp,
            tcp,
            cfg,
            stats: NetStats::default(),
            stop: AtomicBool::new(false),
            handler,
        });
        let t = Self { inner };
        udp::spawn_receivers(&t).map_err(StartError::Runtime)?;
        tcp::spawn_listeners(&t, tcp_listeners).map_err(StartError::Runtime)?;
        Ok(t)
    }

    /// Every listening socket.
    pub fn sockets(&self) -> &[SocketInfo] {
        &self.inner.sockets
    }

    /// Counters.
    pub fn stats(&self) -> &NetStats {
        &self.inner.stats
    }

    /// Sends `data` to `dst`. Errors known at once are returned; a TCP connect that fails later
    /// is reported to [`Handler::on_send_error`].
    pub fn send(&self, dst: &Dest, data: Bytes) -> Result<(), SendError> {
        let r = match dst.proto {
            Proto::Udp => udp::send(self, dst, &data),
            Proto::Tcp => tcp::send(self, dst, data),
            other => Err(SendError::Unsupported(other)),
        };
        match &r {
            Ok(()) => self.inner.stats.sent.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.inner.stats.send_errors.fetch_add(1, Ordering::Relaxed),
        };
        r
    }

    /// Open TCP connections (for the `list_tcp_conns` MI command).
    pub fn tcp_connections(&self) -> Vec<ConnInfo> {
        tcp::list(self)
    }

    /// Makes `alias` (a remote host:port seen in a Via `alias` parameter) reach connection `conn`.
    pub fn add_tcp_alias(&self, conn: ConnId, alias: SocketAddr) {
        tcp::add_alias(self, conn, alias);
    }

    /// Stops the receivers and closes connections.
    pub fn shutdown(&self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        udp::wake_receivers(self);
        tcp::shutdown(self);
    }

    /// The first socket of `proto` whose address family matches `remote`.
    pub fn socket_for(&self, proto: Proto, remote: &SocketAddr) -> Option<&SocketInfo> {
        self.inner
            .sockets
            .iter()
            .find(|s| s.proto == proto && s.local.is_ipv4() == remote.is_ipv4())
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }
}

/// True for datagrams that only carry keep-alive bytes (CR, LF, NUL, SP).
pub(crate) fn is_keepalive(b: &[u8]) -> bool {
    b.iter().all(|&c| matches!(c, b'\r' | b'\n' | 0 | b' '))
}
