//! End-to-end tests of the runtime over loopback sockets: a config is started as a server and
//! plain UDP/TCP sockets act as the user agents on either side.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod auth;
mod backends;
mod baresip;
mod events;
mod mi;
mod registrar;
mod rr;
mod sipp;
mod tm;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use sipox_core::Server;
use sipox_sip_msg::{HeaderKind, ReplyOpts, SipMsg, build_reply};

fn start(cfg: &str) -> (Server, SocketAddr) {
    let dir = std::env::temp_dir().join(format!(
        "sipox-core-it-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join("t.cfg");
    std::fs::write(&path, cfg).unwrap();
    let s = Server::start(&path, None, &[]).unwrap_or_else(|e| panic!("{e}"));
    let addr = s.runtime.transports().unwrap().sockets()[0].local;
    (s, addr)
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn recv(s: &UdpSocket) -> SipMsg {
    let mut buf = vec![0u8; 65_535];
    let (n, _) = s.recv_from(&mut buf).unwrap();
    SipMsg::parse(Bytes::copy_from_slice(&buf[..n])).unwrap()
}

fn request(method: &str, ruri: &str, from_port: u16, branch: &str) -> Vec<u8> {
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{from_port};branch=z9hG4bK{branch};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\n\
Call-ID: {branch}@test\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn options_reply_and_sl_send_reply() {
    let (_s, addr) = start(
        "socket = udp:127.0.0.1:0\nloadmodule \"sl.so\"\nloadmodule \"options.so\"\nloadmodule \"sipmsgops.so\"\n\
         route {\n  if (is_method(\"OPTIONS\") && $rU == NULL) { options_reply(); exit; }\n  \
         sl_send_reply(404, \"Not Here $rU\");\n}\n",
    );
    let c = udp();
    let port = c.local_addr().unwrap().port();
    c.send_to(&request("OPTIONS", "sip:127.0.0.1", port, "o1"), addr)
        .unwrap();
    let r = recv(&c);
    assert_eq!(r.status(), Some(200));
    assert!(r.header_named(b"Allow").is_some());
    assert_eq!(
        r.via1().unwrap().rport(),
        Some(Some(port.to_string().as_bytes()))
    );
    assert!(r.to().unwrap().tag().is_some());
    c.send_to(&request("INVITE", "sip:bob@127.0.0.1", port, "i1"), addr)
        .unwrap();
    let r = recv(&c);
    assert_eq!(r.status(), Some(404));
    assert_eq!(r.reason(), b"Not Here bob");
    // A retransmission gets the same To-tag.
    c.send_to(&request("INVITE", "sip:bob@127.0.0.1", port, "i1"), addr)
        .unwrap();
    let r2 = recv(&c);
    assert_eq!(r.to().unwrap().tag(), r2.to().unwrap().tag());
}

#[test]
fn stateless_forward_and_reply_relay() {
    let uas = udp();
    let uas_port = uas.local_addr().unwrap().port();
    let (s, addr) = start(&format!(
        "socket = udp:127.0.0.1:0\nroute {{\n  forward(\"sip:127.0.0.1:{uas_port}\");\n}}\n"
    ));
    let uac = udp();
    let uac_port = uac.local_addr().unwrap().port();
    uac.send_to(
        &request("OPTIONS", "sip:bob@example.com", uac_port, "f1"),
        addr,
    )
    .unwrap();
    let req = recv(&uas);
    let vias: Vec<_> = req.vias().map(Result::unwrap).collect();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[0].port(), Some(addr.port()));
    assert!(vias[0].has_rfc3261_branch());
    assert_eq!(
        vias[1].rport(),
        Some(Some(uac_port.to_string().as_bytes())),
        "rport filled in"
    );
    assert_eq!(vias[1].received(), Some(&b"127.0.0.1"[..]));
    assert_eq!(req.ruri_raw(), b"sip:bob@example.com");
    // Retransmission: same branch (RFC 3261 §16.11).
    uac.send_to(
        &request("OPTIONS", "sip:bob@example.com", uac_port, "f1"),
        addr,
    )
    .unwrap();
    let again = recv(&uas);
    assert_eq!(again.via1().unwrap().branch(), req.via1().unwrap().branch());
    // The UAS answers to the top Via (the proxy); the proxy relays by the second Via.
    let mut out = Vec::new();
    build_reply(
        &req,
        200,
        b"OK",
        &ReplyOpts {
            to_tag: Some(b"b1"),
            ..ReplyOpts::default()
        },
        &mut out,
    )
    .unwrap();
    uas.send_to(&out, addr).unwrap();
    let reply = recv(&uac);
    assert_eq!(reply.status(), Some(200));
    assert_eq!(reply.values(HeaderKind::Via).count(), 1, "our Via removed");
    assert_eq!(reply.to().unwrap().tag(), Some(&b"b1"[..]));
    let c = &s.runtime.counters;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    // The counter is bumped right after the send: give it a moment.
    for _ in 0..200 {
        if load(&c.fwd_replies) == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(load(&c.fwd_requests), 2);
    assert_eq!(load(&c.fwd_replies), 1);
}

#[test]
fn forward_over_tcp_and_bad_requests() {
    let uas = udp();
    let uas_port = uas.local_addr().unwrap().port();
    let (_s, addr) = start(&format!(
        "socket = udp:127.0.0.1:0\nsocket = tcp:127.0.0.1:0\nroute {{\n  forward(\"udp:127.0.0.1:{uas_port}\");\n}}\n"
    ));
    // The TCP socket is the second one.
    let tcp_addr = _s.runtime.transports().unwrap().sockets()[1].local;
    let mut c = TcpStream::connect(tcp_addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let m = String::from_utf8(request("MESSAGE", "sip:bob@127.0.0.1", 1, "t1"))
        .unwrap()
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    c.write_all(m.as_bytes()).unwrap();
    let req = recv(&uas);
    assert_eq!(req.method(), Some(sipox_sip_msg::Method::Message));
    assert_eq!(
        req.via1().unwrap().transport(),
        sipox_sip_msg::Transport::Udp,
        "UDP out"
    );
    // Malformed request over UDP: 400 with a reason, never a crash.
    let u = udp();
    let p = u.local_addr().unwrap().port();
    let bad = String::from_utf8(request("INVITE", "sip:bob@127.0.0.1", p, "b1"))
        .unwrap()
        .replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
    u.send_to(bad.as_bytes(), addr).unwrap();
    let r = recv(&u);
    assert_eq!(r.status(), Some(400));
    assert!(std::str::from_utf8(r.reason()).unwrap().contains("CSeq"));
    // Garbage is dropped; the server still answers afterwards.
    u.send_to(b"\x00\x01garbage\r\n\r\n", addr).unwrap();
    c.write_all(m.replace("t1", "t2").as_bytes()).unwrap();
    let req = recv(&uas);
    assert_eq!(req.call_id(), Some(&b"t2@test"[..]));
    let mut b = [0u8; 1];
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let _ = c.read(&mut b);
}

#[test]
fn server_and_user_agent_headers() {
    let uas = udp();
    let uas_port = uas.local_addr().unwrap().port();
    let (_s, addr) = start(&format!(
        "socket = udp:127.0.0.1:0\nserver_header = \"Server: Test Server 1.0\"\n\
         user_agent_header = \"User-Agent: Test UA 2.0\"\n\
         loadmodule \"sl.so\"\nloadmodule \"tm.so\"\nloadmodule \"sipmsgops.so\"\n\
         route {{\n  if (is_method(\"OPTIONS\")) {{ sl_send_reply(404, \"Nope\"); exit; }}\n  \
         if (is_method(\"MESSAGE\")) {{ t_reply(403, \"Forbidden\"); exit; }}\n  \
         if (is_method(\"CANCEL\")) {{ t_relay(); exit; }}\n  \
         $du = \"sip:127.0.0.1:{uas_port}\";\n  t_relay();\n}}\n"
    ));
    let c = udp();
    let port = c.local_addr().unwrap().port();
    let server = |m: &SipMsg| {
        m.header_named(b"Server")
            .map(|h| String::from_utf8_lossy(m.value(h)).into_owned())
    };
    let ua = |m: &SipMsg| {
        m.header(HeaderKind::UserAgent)
            .map(|h| String::from_utf8_lossy(m.value(h)).into_owned())
    };
    // stateless local reply
    c.send_to(&request("OPTIONS", "sip:bob@127.0.0.1", port, "sv1"), addr)
        .unwrap();
    let r = recv(&c);
    assert_eq!(r.status(), Some(404));
    assert_eq!(server(&r).as_deref(), Some("Test Server 1.0"));
    // stateful local reply
    c.send_to(&request("MESSAGE", "sip:bob@127.0.0.1", port, "sv2"), addr)
        .unwrap();
    let r = recv(&c);
    assert_eq!(r.status(), Some(403));
    assert_eq!(server(&r).as_deref(), Some("Test Server 1.0"));
    // tm's 100 Trying, its ACK for a negative reply
    c.send_to(&request("INVITE", "sip:bob@127.0.0.1", port, "sv3"), addr)
        .unwrap();
    let r = recv(&c);
    assert_eq!(r.status(), Some(100));
    assert_eq!(server(&r).as_deref(), Some("Test Server 1.0"));
    let inv = recv(&uas);
    assert_eq!(ua(&inv), None, "a relayed request is not ours");
    let mut out = Vec::new();
    build_reply(
        &inv,
        486,
        b"Busy Here",
        &ReplyOpts {
            to_tag: Some(b"u1"),
            ..ReplyOpts::default()
        },
        &mut out,
    )
    .unwrap();
    uas.send_to(&out, addr).unwrap();
    let ack = recv(&uas);
    assert_eq!(ack.method(), Some(sipox_sip_msg::Method::Ack));
    assert_eq!(ua(&ack).as_deref(), Some("Test UA 2.0"));
    let r = recv(&c);
    assert_eq!(r.status(), Some(486));
    // tm's CANCEL
    c.send_to(&request("INVITE", "sip:bob@127.0.0.1", port, "sv4"), addr)
        .unwrap();
    assert_eq!(recv(&c).status(), Some(100));
    let inv = recv(&uas);
    let mut out = Vec::new();
    build_reply(
        &inv,
        180,
        b"Ringing",
        &ReplyOpts {
            to_tag: Some(b"u2"),
            ..ReplyOpts::default()
        },
        &mut out,
    )
    .unwrap();
    uas.send_to(&out, addr).unwrap();
    assert_eq!(recv(&c).status(), Some(180));
    let cancel = String::from_utf8(request("INVITE", "sip:bob@127.0.0.1", port, "sv4"))
        .unwrap()
        .replace("INVITE sip:", "CANCEL sip:")
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    c.send_to(cancel.as_bytes(), addr).unwrap();
    let mut got_cancel = false;
    for _ in 0..3 {
        let m = recv(&uas);
        if m.method() == Some(sipox_sip_msg::Method::Cancel) {
            assert_eq!(ua(&m).as_deref(), Some("Test UA 2.0"));
            got_cancel = true;
            break;
        }
    }
    assert!(got_cancel, "tm cancelled the branch");
    let r = recv(&c);
    assert_eq!((r.status(), r.method_bytes()), (Some(200), &b"CANCEL"[..]));
    assert_eq!(server(&r).as_deref(), Some("Test Server 1.0"));
}

#[test]
fn server_signature_off() {
    let (_s, addr) = start(
        "socket = udp:127.0.0.1:0\nserver_signature = no\nloadmodule \"sl.so\"\n\
         route {\n  sl_send_reply(404, \"Nope\");\n}\n",
    );
    let c = udp();
    let port = c.local_addr().unwrap().port();
    c.send_to(&request("OPTIONS", "sip:bob@127.0.0.1", port, "so1"), addr)
        .unwrap();
    let r = recv(&c);
    assert_eq!(r.status(), Some(404));
    assert!(r.header_named(b"Server").is_none());
}
