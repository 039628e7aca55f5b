//! TCP: listeners, outgoing connections and the connection table. Each connection has a reader
//! task (framing with `StreamFramer`, answering CRLF pings) and a writer task fed by a bounded
//! queue, so a slow peer never blocks a sender.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use sipox_sip_msg::{Frame, StreamFramer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

use crate::{ConnId, Dest, Proto, SendError, SocketId, Source, Transports};

/// A connection as listed by `list_tcp_conns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// Id.
    pub id: ConnId,
    /// Remote address.
    pub remote: SocketAddr,
    /// Local address (unknown until an outgoing connect completes).
    pub local: Option<SocketAddr>,
    /// True for connections we opened.
    pub outgoing: bool,
    /// Extra remote addresses that reach this connection (Via aliases).
    pub aliases: Vec<SocketAddr>,
}

struct Conn {
    info: ConnInfo,
    tx: mpsc::Sender<Bytes>,
}

#[derive(Default)]
struct Table {
    by_id: HashMap<ConnId, Conn>,
    by_addr: HashMap<SocketAddr, ConnId>,
}

pub(crate) struct TcpState {
    rt: Runtime,
    table: Mutex<Table>,
    next: AtomicU64,
}

impl TcpState {
    pub(crate) fn new(workers: usize) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("tcp")
            .on_thread_start(crate::sched::batch_policy)
            .enable_io()
            .enable_time()
            .build()?;
        Ok(Self {
            rt,
            table: Mutex::new(Table::default()),
            next: AtomicU64::new(1),
        })
    }
}

pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

pub(crate) fn spawn_listeners(
    t: &Transports,
    listeners: Vec<(SocketId, std::net::TcpListener)>,
) -> std::io::Result<()> {
    for (id, l) in listeners {
        let t2 = t.clone();
        let _guard = t.inner().tcp.rt.enter();
        let l = TcpListener::from_std(l)?;
        t.inner()
            .tcp
            .rt
            .spawn(async move { accept_loop(t2, l, id).await });
    }
    Ok(())
}

async fn accept_loop(t: Transports, l: TcpListener, id: SocketId) {
    loop {
        let Ok((stream, remote)) = l.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let inner = t.inner();
        if inner.stop.load(Ordering::Relaxed) {
            return;
        }
        if inner.tcp.table.lock().by_id.len() >= inner.cfg.tcp_max_connections {
            inner.stats.tcp_refused.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok();
        let (cid, rx) = register(&t, remote, local, false);
        let t2 = t.clone();
        tokio::spawn(async move { run_conn(t2, stream, cid, id, rx).await });
    }
}

fn register(
    t: &Transports,
    remote: SocketAddr,
    local: Option<SocketAddr>,
    outgoing: bool,
) -> (ConnId, mpsc::Receiver<Bytes>) {
    let inner = t.inner();
    let id = ConnId(inner.tcp.next.fetch_add(1, Ordering::Relaxed));
    let (tx, rx) = mpsc::channel(inner.cfg.tcp_queue.max(1));
    let mut tab = inner.tcp.table.lock();
    tab.by_id.insert(
        id,
        Conn {
            info: ConnInfo {
                id,
                remote,
                local,
                outgoing,
                aliases: Vec::new(),
            },
            tx,
        },
    );
    tab.by_addr.insert(remote, id);
    inner.stats.tcp_opened.fetch_add(1, Ordering::Relaxed);
    (id, rx)
}

fn unregister(t: &Transports, id: ConnId) {
    let mut tab = t.inner().tcp.table.lock();
    if let Some(c) = tab.by_id.remove(&id) {
        if tab.by_addr.get(&c.info.remote) == Some(&id) {
            tab.by_addr.remove(&c.info.remote);
        }
        for a in c.info.aliases {
            if tab.by_addr.get(&a) == Some(&id) {
                tab.by_addr.remove(&a);
            }
        }
    }
}

async fn run_conn(
    t: Transports,
    stream: TcpStream,
    cid: ConnId,
    socket: SocketId,
    mut rx: mpsc::Receiver<Bytes>,
) {
    let remote = stream.peer_addr().ok();
    let local = stream.local_addr().ok();
    if let Some(l) = local
        && let Some(c) = t.inner().tcp.table.lock().by_id.get_mut(&cid)
    {
        c.info.local = Some(l);
    }
    let (mut rd, mut wr) = stream.into_split();
    let send_timeout = t.inner().cfg.tcp_send_timeout;
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            match tokio::time::timeout(send_timeout, wr.write_all(&b)).await {
                Ok(Ok(())) => {}
                _ => break,
            }
        }
        let _ = wr.shutdown().await;
    });
    if let (Some(remote), Some(local)) = (remote, local) {
        let src = Source {
            socket,
            proto: Proto::Tcp,
            remote,
            local,
            conn: Some(cid),
        };
        read_loop(&t, &mut rd, &src).await;
    }
    unregister(&t, cid);
    writer.abort();
}

async fn read_loop(t: &Transports, rd: &mut tokio::net::tcp::OwnedReadHalf, src: &Source) {
    let inner = t.inner();
    let lifetime = inner.cfg.tcp_connection_lifetime;
    let mut framer = StreamFramer::new(inner.cfg.limits);
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        if inner.stop.load(Ordering::Relaxed) {
            return;
        }
        if buf.capacity() - buf.len() < 2048 {
            buf.reserve(4096);
        }
        let n = match tokio::time::timeout(lifetime, rd.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) => n,
        };
        let _ = n;
        loop {
            match framer.next_frame(&mut buf) {
                Ok(None) => break,
                Ok(Some(Frame::Message(m))) => {
                    inner.stats.received.fetch_add(1, Ordering::Relaxed);
                    inner.handler.on_message(*m, src, t);
                }
                Ok(Some(Frame::Ping)) => {
                    inner.stats.keepalives.fetch_add(1, Ordering::Relaxed);
                    let dst = Dest {
                        proto: Proto::Tcp,
                        addr: src.remote,
                        socket: None,
                        conn: src.conn,
                    };
                    let _ = send(t, &dst, Bytes::from_static(b"\r\n"));
                }
                Ok(Some(Frame::Pong)) => {
                    inner.stats.keepalives.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    // Framing is lost: report what we have, then close the connection.
                    inner.stats.bad.fetch_add(1, Ordering::Relaxed);
                    inner.handler.on_bad_message(&buf, e, src, t);
                    return;
                }
            }
        }
    }
}

pub(crate) fn send(t: &Transports, dst: &Dest, data: Bytes) -> Result<(), SendError> {
    let inner = t.inner();
    let tx = {
        let tab = inner.tcp.table.lock();
        let id = dst
            .conn
            .filter(|c| tab.by_id.contains_key(c))
            .or_else(|| tab.by_addr.get(&dst.addr).copied());
        id.and_then(|id| tab.by_id.get(&id)).map(|c| c.tx.clone())
    };
    if let Some(tx) = tx {
        return tx.try_send(data).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => SendError::Closed,
        });
    }
    if dst.conn.is_some() && inner.cfg.tcp_max_connections == 0 {
        return Err(SendError::Closed);
    }
    if inner.tcp.table.lock().by_id.len() >= inner.cfg.tcp_max_connections {
        inner.stats.tcp_refused.fetch_add(1, Ordering::Relaxed);
        return Err(SendError::TooManyConnections);
    }
    let socket = match dst.socket {
        Some(s) => s,
        None => t
            .socket_for(Proto::Tcp, &dst.addr)
            .map(|s| s.id)
            .ok_or(SendError::NoSocket(Proto::Tcp))?,
    };
    // Register first so later sends to the same address queue behind this one.
    let (cid, rx) = register(t, dst.addr, None, true);
    let inner_tx = inner.tcp.table.lock().by_id.get(&cid).map(|c| c.tx.clone());
    if let Some(tx) = inner_tx {
        let _ = tx.try_send(data);
    }
    let t2 = t.clone();
    let dst = *dst;
    let timeout = inner.cfg.tcp_connect_timeout;
    inner.tcp.rt.spawn(async move {
        match tokio::time::timeout(timeout, TcpStream::connect(dst.addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                run_conn(t2, stream, cid, socket, rx).await;
            }
            Ok(Err(e)) => {
                unregister(&t2, cid);
                t2.inner()
                    .handler
                    .on_send_error(&dst, &SendError::Io(e.to_string()));
            }
            Err(_) => {
                unregister(&t2, cid);
                t2.inner()
                    .handler
                    .on_send_error(&dst, &SendError::ConnectTimeout);
            }
        }
    });
    Ok(())
}

pub(crate) fn list(t: &Transports) -> Vec<ConnInfo> {
    let mut v: Vec<ConnInfo> = t
        .inner()
        .tcp
        .table
        .lock()
        .by_id
        .values()
        .map(|c| c.info.clone())
        .collect();
    v.sort_by_key(|c| c.id);
    v
}

pub(crate) fn add_alias(t: &Transports, conn: ConnId, alias: SocketAddr) {
    let mut tab = t.inner().tcp.table.lock();
    if let Some(c) = tab.by_id.get_mut(&conn) {
        if !c.info.aliases.contains(&alias) {
            c.info.aliases.push(alias);
        }
        tab.by_addr.insert(alias, conn);
    }
}

pub(crate) fn shutdown(t: &Transports) {
    let mut tab = t.inner().tcp.table.lock();
    tab.by_id.clear();
    tab.by_addr.clear();
}
