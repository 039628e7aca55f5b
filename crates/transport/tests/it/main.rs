//! Loopback tests for the transports: a handler that answers every request with a stateless
//! reply, driven by plain std sockets as the peer.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::expect_used,
    clippy::disallowed_methods
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use sipox_sip_msg::{ParseError, ReplyOpts, SipMsg, build_reply};
use sipox_transport::{
    Dest, Handler, ListenSpec, Proto, SendError, Source, TransportConfig, Transports,
};

#[derive(Default)]
struct Recorder {
    msgs: Mutex<Vec<(Vec<u8>, Source)>>,
    bad: Mutex<Vec<ParseError>>,
    send_errors: Mutex<Vec<SendError>>,
}

impl Handler for Recorder {
    fn on_message(&self, msg: SipMsg, src: &Source, tx: &Transports) {
        self.msgs.lock().push((msg.raw().to_vec(), *src));
        if msg.is_request() {
            let mut out = Vec::new();
            let ip = src.remote.ip().to_string();
            let opts = ReplyOpts {
                to_tag: Some(b"t1"),
                via_received: Some(ip.as_bytes()),
                via_rport: Some(src.remote.port()),
                ..ReplyOpts::default()
            };
            build_reply(&msg, 200, b"OK", &opts, &mut out).unwrap();
            let dst = Dest {
                proto: src.proto,
                addr: src.remote,
                socket: Some(src.socket),
                conn: src.conn,
            };
            tx.send(&dst, Bytes::from(out)).unwrap();
        }
    }
    fn on_bad_message(&self, _data: &[u8], err: ParseError, _src: &Source, _tx: &Transports) {
        self.bad.lock().push(err);
    }
    fn on_send_error(&self, _dst: &Dest, err: &SendError) {
        self.send_errors.lock().push(err.clone());
    }
}

fn options(branch: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{branch};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=f\r\nTo: <sip:ping@127.0.0.1>\r\nCall-ID: {branch}@t\r\n\
CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn start(spec: &str, cfg: TransportConfig) -> (Transports, Arc<Recorder>, SocketAddr) {
    let rec = Arc::new(Recorder::default());
    let specs: Vec<ListenSpec> = vec![spec.parse().unwrap()];
    let t = Transports::start(&specs, cfg, rec.clone()).unwrap();
    let addr = t.sockets()[0].local;
    (t, rec, addr)
}

fn wait_for(mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(5), "timed out");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn udp_request_gets_reply_with_received_and_rport() {
    let (t, rec, addr) = start("udp:127.0.0.1:0", TransportConfig::default());
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.send_to(b"\r\n\r\n", addr).unwrap(); // keep-alive: ignored
    c.send_to(&options("u1"), addr).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = c.recv_from(&mut buf).unwrap();
    let reply = SipMsg::parse(Bytes::copy_from_slice(&buf[..n])).unwrap();
    assert_eq!(reply.status(), Some(200));
    let port = c.local_addr().unwrap().port().to_string();
    assert_eq!(reply.via1().unwrap().rport(), Some(Some(port.as_bytes())));
    assert_eq!(reply.via1().unwrap().received(), Some(&b"127.0.0.1"[..]));
    assert_eq!(rec.msgs.lock().len(), 1);
    wait_for(|| {
        t.stats()
            .keepalives
            .load(std::sync::atomic::Ordering::Relaxed)
            == 1
    });
    // garbage is counted and reported, never fatal
    c.send_to(
        b"INVITE sip:x SIP/2.0\r\nVia: broken\r\nContent-Length: 99\r\n\r\n",
        addr,
    )
    .unwrap();
    wait_for(|| rec.bad.lock().len() == 1);
    c.send_to(&options("u2"), addr).unwrap();
    let (n, _) = c.recv_from(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"SIP/2.0 200"));
    t.shutdown();
}

#[test]
fn tcp_framing_ping_pong_and_reply_on_same_connection() {
    let (t, rec, addr) = start("tcp:127.0.0.1:0", TransportConfig::default());
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let m = options("t1");
    c.write_all(b"\r\n\r\n").unwrap();
    c.write_all(&m[..30]).unwrap();
    c.flush().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    c.write_all(&m[30..]).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") || got.len() < 10 {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"\r\nSIP/2.0 200 OK"),
        "pong then reply: {:?}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(rec.msgs.lock()[0].1.proto, Proto::Tcp);
    let conns = t.tcp_connections();
    assert_eq!(conns.len(), 1);
    assert!(!conns[0].outgoing);
    drop(c);
    wait_for(|| t.tcp_connections().is_empty());
    t.shutdown();
}

#[test]
fn tcp_outgoing_connection_is_reused_and_aliased() {
    let (t, rec, _) = start("tcp:127.0.0.1:0", TransportConfig::default());
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let paddr = peer.local_addr().unwrap();
    let dst = Dest {
        proto: Proto::Tcp,
        addr: paddr,
        socket: None,
        conn: None,
    };
    t.send(&dst, Bytes::from(options("o1"))).unwrap();
    t.send(&dst, Bytes::from(options("o2"))).unwrap();
    let (mut s, _) = peer.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let want = options("o1").len() + options("o2").len();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < want {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(
        t.tcp_connections().len(),
        1,
        "second send reused the connection"
    );
    // The peer answers on the same connection; the handler sees it with the connection id.
    s.write_all(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKo1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: o1@t\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").unwrap();
    wait_for(|| rec.msgs.lock().len() == 1);
    let conn = rec.msgs.lock()[0].1.conn.unwrap();
    let alias: SocketAddr = "127.0.0.1:5999".parse().unwrap();
    t.add_tcp_alias(conn, alias);
    t.send(
        &Dest {
            proto: Proto::Tcp,
            addr: alias,
            socket: None,
            conn: None,
        },
        Bytes::from_static(b"\r\n\r\n"),
    )
    .unwrap();
    let n = s.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"\r\n\r\n");
    assert!(peer.set_nonblocking(true).is_ok());
    assert!(peer.accept().is_err(), "no second connection");
    t.shutdown();
}

#[test]
fn tcp_limits_lifetime_and_connect_errors() {
    let cfg = TransportConfig {
        tcp_max_connections: 1,
        tcp_connection_lifetime: Duration::from_millis(300),
        ..TransportConfig::default()
    };
    let (t, rec, addr) = start("tcp:127.0.0.1:0", cfg);
    let _c1 = TcpStream::connect(addr).unwrap();
    wait_for(|| t.tcp_connections().len() == 1);
    let mut c2 = TcpStream::connect(addr).unwrap();
    c2.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 16];
    assert_eq!(c2.read(&mut b).unwrap_or(0), 0, "over the limit: closed");
    wait_for(|| {
        t.stats()
            .tcp_refused
            .load(std::sync::atomic::Ordering::Relaxed)
            == 1
    });
    // idle past the lifetime: closed by us
    wait_for(|| t.tcp_connections().is_empty());
    // connect to a closed port: reported asynchronously
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    t.send(
        &Dest {
            proto: Proto::Tcp,
            addr: closed,
            socket: None,
            conn: None,
        },
        Bytes::from_static(b"x"),
    )
    .unwrap();
    wait_for(|| !rec.send_errors.lock().is_empty());
    t.shutdown();
}

#[test]
fn tcp_framing_error_closes_and_reports() {
    let (t, rec, addr) = start("tcp:127.0.0.1:0", TransportConfig::default());
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -4\r\n\r\n")
        .unwrap();
    wait_for(|| rec.bad.lock().len() == 1);
    let mut b = [0u8; 16];
    assert_eq!(c.read(&mut b).unwrap_or(0), 0);
    // a half-open connection does not stop others being served
    let _idle = TcpStream::connect(addr).unwrap();
    let mut c3 = TcpStream::connect(addr).unwrap();
    c3.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c3.write_all(&options("t3")).unwrap();
    let n = c3.read(&mut [0u8; 2048]).unwrap();
    assert!(n > 0);
    t.shutdown();
}

#[test]
fn ipv6_udp() {
    let Ok(probe) = UdpSocket::bind("[::1]:0") else {
        eprintln!("note: no IPv6 loopback here; skipping");
        return;
    };
    drop(probe);
    let (t, _rec, addr) = start("udp:[::1]:0", TransportConfig::default());
    let c = UdpSocket::bind("[::1]:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.send_to(&options("v6"), addr).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = c.recv_from(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"SIP/2.0 200 OK"));
    t.shutdown();
}
