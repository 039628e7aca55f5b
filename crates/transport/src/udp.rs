//! UDP: sockets with large kernel buffers, receiver threads blocking in `recv_from`.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;

use bytes::Bytes;
use sipox_sip_msg::{Framing, SipMsg};
use socket2::{Domain, Protocol, Socket, Type};

use crate::{Dest, Proto, SendError, Source, Transports, is_keepalive};

pub(crate) fn bind(addr: SocketAddr, maxbuffer: usize) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    // Ask for large buffers; the kernel caps them at net.core.[rw]mem_max, which is fine.
    let _ = s.set_recv_buffer_size(maxbuffer);
    let _ = s.set_send_buffer_size(maxbuffer);
    s.bind(&addr.into())?;
    // No read timeout: a receiver blocks until a datagram comes (a timeout would arm a kernel
    // timer on every wait); `wake_receivers` ends the wait at shutdown.
    Ok(s.into())
}

/// Wakes every receiver blocked on the UDP sockets (they see the stop flag and return):
/// shutting down the read side makes a pending and every later `recv_from` return at once.
/// Linux answers ENOTCONN for an unconnected socket but still marks it and wakes the waiters.
pub(crate) fn wake_receivers(t: &Transports) {
    for (_, sock, _) in &t.inner().udp {
        let _ = socket2::SockRef::from(sock).shutdown(std::net::Shutdown::Read);
    }
}

pub(crate) fn spawn_receivers(t: &Transports) -> std::io::Result<()> {
    let inner = t.inner();
    for (id, sock, local) in &inner.udp {
        let local = *local;
        for n in 0..inner.cfg.udp_workers.max(1) {
            let sock = sock.try_clone()?;
            let t = t.clone();
            let id = *id;
            std::thread::Builder::new()
                .name(format!("udp-{}-{n}", local.port()))
                .spawn(move || receive_loop(&t, &sock, id, local))?;
        }
    }
    Ok(())
}

fn receive_loop(t: &Transports, sock: &UdpSocket, id: crate::SocketId, local: SocketAddr) {
    crate::sched::batch_policy();
    let inner = t.inner();
    let mut buf = vec![0u8; 65_536];
    while !inner.stop.load(Ordering::Relaxed) {
        let (n, remote) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => continue,
        };
        let data = &buf[..n];
        if is_keepalive(data) {
            inner.stats.keepalives.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let src = Source {
            socket: id,
            proto: Proto::Udp,
            remote,
            local,
            conn: None,
        };
        inner.stats.received.fetch_add(1, Ordering::Relaxed);
        match SipMsg::parse_with(
            Bytes::copy_from_slice(data),
            &inner.cfg.limits,
            Framing::Datagram,
        ) {
            Ok(msg) => inner.handler.on_message(msg, &src, t),
            Err(e) => {
                inner.stats.bad.fetch_add(1, Ordering::Relaxed);
                inner.handler.on_bad_message(data, e, &src, t);
            }
        }
    }
}

pub(crate) fn send(t: &Transports, dst: &Dest, data: &[u8]) -> Result<(), SendError> {
    let inner = t.inner();
    // The bound address is cached: no getsockname() per send.
    let sock = match dst.socket {
        Some(id) => inner
            .udp
            .iter()
            .find(|(i, _, _)| *i == id)
            .map(|(_, s, _)| s),
        None => inner
            .udp
            .iter()
            .find(|(_, _, a)| a.is_ipv4() == dst.addr.is_ipv4())
            .map(|(_, s, _)| s),
    };
    let Some(sock) = sock else {
        return Err(SendError::NoSocket(Proto::Udp));
    };
    sock.send_to(data, dst.addr)
        .map(|_| ())
        .map_err(|e| SendError::Io(e.to_string()))
}
