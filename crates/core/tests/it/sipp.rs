//! End to end with real peers: SIPp UAC and UAS through a stateless `forward()` config over UDP,
//! TCP and IPv6, a sipsak OPTIONS ping answered by `options_reply`, and bad input (every RFC 4475
//! invalid message, garbage, half-open TCP) that must never stop the server.
//!
//! SIPp and sipsak come from Debian (`sip-tester`, `sipsak`; `scripts/deps.sh` installs them).
//! Outside CI a missing tool skips with a note; in CI (`CI` set) it fails.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sipox_core::Server;

pub(crate) fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is required in CI (scripts/deps.sh installs it)"
        );
        eprintln!("NOTE: {tool} not installed; skipping");
    }
    ok
}

pub(crate) fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

pub(crate) fn free_port(v6: bool) -> u16 {
    let a = if v6 { "[::1]:0" } else { "127.0.0.1:0" };
    let u = UdpSocket::bind(a).unwrap();
    let t = std::net::TcpListener::bind(u.local_addr().unwrap()).ok();
    let p = u.local_addr().unwrap().port();
    drop(t);
    p
}

pub(crate) fn server(cfg: &str) -> Server {
    let dir = std::env::temp_dir().join(format!(
        "sipox-sipp-{}-{}",
        std::process::id(),
        free_port(false)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("proxy.cfg");
    std::fs::write(&path, cfg).unwrap();
    Server::start(&path, None, &[]).unwrap_or_else(|e| panic!("{e}"))
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn stateless_cfg(host: &str, port: u16) -> String {
    format!(
        "udp_workers = 2\nsocket = udp:{host}:{port}\nsocket = tcp:{host}:{port}\n\
         loadmodule \"sl.so\"\nloadmodule \"maxfwd.so\"\n\
         route {{\n  if (!mf_process_maxfwd_header(10)) {{ sl_send_reply(483, \"Too Many Hops\"); exit; }}\n  \
         forward();\n  exit;\n}}\n"
    )
}

/// Runs a SIPp UAS (`uas_sf`) and a SIPp UAC (`uac_sf`, `calls` calls at `rate`/s) through
/// `proxy`; fails the test unless SIPp saw every call succeed.
fn sipp_through(
    uac_sf: &str,
    uas_sf: &str,
    proxy: &str,
    ip: &str,
    transport: &str,
    calls: u32,
    rate: u32,
) {
    let v6 = ip.contains(':');
    let (uas_port, uac_port) = (free_port(v6), free_port(v6));
    let sipp_ip = ip.trim_start_matches('[').trim_end_matches(']');
    let tparam = if transport == "t1" {
        ";transport=tcp"
    } else {
        ""
    };
    let common = |port: u16| -> Vec<String> {
        [
            "-p",
            &port.to_string(),
            "-i",
            sipp_ip,
            "-t",
            transport,
            "-nostdin",
        ]
        .iter()
        .map(ToString::to_string)
        .collect()
    };
    let uas = Kill(
        Command::new("sipp")
            .args(["-sf", data(uas_sf).to_str().unwrap()])
            .args(common(uas_port))
            .args(["-m", &calls.to_string(), "-timeout", "60"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let out = Command::new("sipp")
        .arg(format!("{ip}:{uas_port}"))
        .args(["-rsa", proxy, "-sf", data(uac_sf).to_str().unwrap()])
        .args(common(uac_port))
        .args([
            "-key",
            "tparam",
            tparam,
            "-m",
            &calls.to_string(),
            "-r",
            &rate.to_string(),
        ])
        .args(["-timeout", "40", "-timeout_error", "-recv_timeout", "5000"])
        .output()
        .unwrap();
    drop(uas);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "sipp {uac_sf} over {transport} via {proxy} failed: {err}"
    );
}

/// `calls` OPTIONS transactions UAC → proxy → UAS.
fn options_through(proxy: &str, ip: &str, transport: &str, calls: u32) {
    sipp_through(
        "sipp/uac_options.xml",
        "sipp/uas_options.xml",
        proxy,
        ip,
        transport,
        calls,
        200,
    );
}

#[test]
fn sipp_options_stateless_udp_tcp() {
    if !have("sipp") {
        return;
    }
    let port = free_port(false);
    let _s = server(&stateless_cfg("127.0.0.1", port));
    let proxy = format!("127.0.0.1:{port}");
    options_through(&proxy, "127.0.0.1", "u1", 300);
    options_through(&proxy, "127.0.0.1", "t1", 100);
}

#[test]
fn sipp_options_stateless_ipv6() {
    if !have("sipp") || UdpSocket::bind("[::1]:0").is_err() {
        return;
    }
    let port = free_port(true);
    let _s = server(&stateless_cfg("[::1]", port));
    options_through(&format!("[::1]:{port}"), "[::1]", "u1", 100);
}

#[test]
fn sipsak_ping_answered_by_options_reply() {
    if !have("sipsak") {
        return;
    }
    let port = free_port(false);
    let _s = server(&format!(
        "socket = udp:127.0.0.1:{port}\nloadmodule \"options.so\"\nloadmodule \"sl.so\"\nloadmodule \"sipmsgops.so\"\n\
         route {{ if (is_method(\"OPTIONS\")) {{ options_reply(); exit; }} sl_send_reply(403, \"Forbidden\"); }}\n"
    ));
    let out = Command::new("sipsak")
        .args(["-s", &format!("sip:127.0.0.1:{port}"), "-v"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("200 OK"), "{text}");
}

#[test]
fn bad_input_never_stops_the_server() {
    let port = free_port(false);
    let s = server(&format!(
        "socket = udp:127.0.0.1:{port}\nsocket = tcp:127.0.0.1:{port}\nloadmodule \"options.so\"\n\
         route {{ options_reply(); }}\n"
    ));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sip-msg/tests/data/rfc4475/invalid");
    let mut invalid: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    invalid.sort();
    assert_eq!(invalid.len(), 23);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    // Half-open and idle TCP connections, and one that sends garbage.
    let _idle: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(b"INVITE sip:x@y SIP/2.0\r\nContent-Length: 10\r\n")
        .unwrap();
    for round in 0..5 {
        for m in &invalid {
            u.send_to(m, addr).unwrap();
            let mut t = TcpStream::connect(addr).unwrap();
            let _ = t.write_all(m);
        }
        let garbage: Vec<u8> = (0..1400u32)
            .map(|i| (i.wrapping_mul(2_654_435_761).rotate_left(round) >> 24) as u8)
            .collect();
        u.send_to(&garbage, addr).unwrap();
    }
    // The 400s go where each message's Via says (RFC 3261 §18.2.2), not to this socket: count
    // them at the server. Every invalid request that names a Via, CSeq and Call-ID is answered.
    let c = &s.runtime.counters;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    for _ in 0..400 {
        if load(&c.sent_replies) >= 5 * 10 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        load(&c.sent_replies) >= 5 * 10,
        "only {} error replies sent",
        load(&c.sent_replies)
    );
    assert!(
        load(&c.err_requests) >= 5 * 23,
        "only {} bad messages counted",
        load(&c.err_requests)
    );
    let mut buf = vec![0u8; 65_535];
    let me = u.local_addr().unwrap().port();
    let ok = format!(
        "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKgood\r\n\
         From: <sip:a@b>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: good\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    u.send_to(ok.as_bytes(), addr).unwrap();
    let (n, _) = u.recv_from(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"SIP/2.0 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}

/// Runs `calls` full calls UAC → proxy → UAS with the bench scenarios; ACK and BYE follow the
/// recorded route back through the proxy.
pub(crate) fn calls_through(proxy: &str, calls: u32, rate: u32) {
    sipp_through(
        "sipp/uac_call.xml",
        "sipp/uas_call.xml",
        proxy,
        "127.0.0.1",
        "u1",
        calls,
        rate,
    );
}

#[test]
fn sipp_calls_record_route_and_loose_route() {
    if !have("sipp") {
        return;
    }
    let port = free_port(false);
    let _s = server(&format!(
        "socket = udp:127.0.0.1:{port}\nloadmodule \"sl.so\"\nloadmodule \"rr.so\"\nloadmodule \"sipmsgops.so\"\n\
         route {{\n  if (has_totag()) {{\n    if (loose_route()) {{ forward(); exit; }}\n    \
         sl_send_reply(404, \"Not here\");\n    exit;\n  }}\n  record_route();\n  forward();\n}}\n"
    ));
    calls_through(&format!("127.0.0.1:{port}"), 50, 25);
}

fn mi_post(http: SocketAddr, method: &str) -> String {
    use std::io::Read as _;
    let body = format!(r#"{{"jsonrpc":"2.0","method":"{method}","id":1}}"#);
    let mut t = TcpStream::connect(http).unwrap();
    write!(
        t,
        "POST /mi HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    t.read_to_string(&mut reply).unwrap();
    reply
}

#[test]
fn reload_routes_under_traffic_loses_no_call() {
    if !have("sipp") {
        return;
    }
    let port = free_port(false);
    let script = |n: u32| {
        format!(
            "socket = udp:127.0.0.1:{port}\nloadmodule \"httpd.so\"\nloadmodule \"mi_http.so\"\n\
             modparam(\"httpd\", \"ip\", \"127.0.0.1\")\nmodparam(\"httpd\", \"port\", 0)\n\
             loadmodule \"sl.so\"\nloadmodule \"maxfwd.so\"\n\
             route {{\n  $var(generation) = {n};\n  if (!mf_process_maxfwd_header(10)) {{ sl_send_reply(483, \"Too Many Hops\"); exit; }}\n  \
             forward();\n}}\n"
        )
    };
    let dir = std::env::temp_dir().join(format!("sipox-reload-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("proxy.cfg");
    std::fs::write(&path, script(0)).unwrap();
    let s = Server::start(&path, None, &[]).unwrap_or_else(|e| panic!("{e}"));
    let http = s.http_addr().expect("httpd started");
    let proxy = format!("127.0.0.1:{port}");
    let traffic = std::thread::spawn(move || options_through(&proxy, "127.0.0.1", "u1", 800));
    for n in 1..=8 {
        std::thread::sleep(Duration::from_millis(350));
        std::fs::write(&path, script(n)).unwrap();
        let r = mi_post(http, "reload_routes");
        assert!(r.contains("\"result\""), "reload {n}: {r}");
    }
    traffic.join().unwrap();
}

#[test]
fn forward_resolves_names_with_rfc3263() {
    let uas = UdpSocket::bind("127.0.0.1:0").unwrap();
    uas.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let uas_port = uas.local_addr().unwrap().port();
    let port = free_port(false);
    let s = server(&format!(
        "socket = udp:127.0.0.1:{port}\nroute {{ forward(); }}\n"
    ));
    let mut t = sipox_dns::StaticResolver::new();
    t.add_srv(
        "_sip._udp.example.test",
        0,
        10,
        uas_port,
        "uas.example.test",
    )
    .add_ip("uas.example.test", "127.0.0.1".parse().unwrap());
    assert!(s.runtime.set_resolver(std::sync::Arc::new(t)));
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = c.local_addr().unwrap().port();
    let req = format!(
        "OPTIONS sip:bob@example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKdns1\r\n\
         From: <sip:a@b>;tag=1\r\nTo: <sip:bob@example.test>\r\nCall-ID: dns1\r\nCSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    c.send_to(req.as_bytes(), ("127.0.0.1", port)).unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = uas.recv_from(&mut buf).unwrap();
    let m = sipox_sip_msg::SipMsg::parse(bytes::Bytes::copy_from_slice(&buf[..n])).unwrap();
    assert_eq!(
        m.ruri_raw(),
        b"sip:bob@example.test",
        "R-URI untouched, destination from DNS"
    );
    assert_eq!(m.via1().unwrap().port(), Some(port));
}

#[test]
fn socket_in_and_socket_out_variables() {
    let uas = UdpSocket::bind("127.0.0.1:0").unwrap();
    uas.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let uas_port = uas.local_addr().unwrap().port();
    let (p1, p2) = (free_port(false), free_port(false));
    let s = server(&format!(
        "socket = udp:127.0.0.1:{p1}\nsocket = udp:127.0.0.1:{p2}\nloadmodule \"sipmsgops.so\"\n\
         route {{\n  append_hf(\"X-Before: $socket_out\\r\\n\");\n  \
         if (is_method(\"OPTIONS\")) $socket_out = \"udp:127.0.0.1:{p2}\"; else force_send_socket(\"udp:127.0.0.1:{p2}\");\n  \
         append_hf(\"X-In: $socket_in(proto) $socket_in(ip) $socket_in(port) $socket_in(af)\\r\\nX-Out: $socket_out $socket_out(port)\\r\\n\");\n  \
         forward(\"sip:127.0.0.1:{uas_port}\");\n}}\n"
    ));
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    let req = |method: &str, b: &str| {
        format!(
            "{method} sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{b}\r\n\
             From: <sip:a@b>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: {b}\r\nCSeq: 1 {method}\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let mut buf = vec![0u8; 4096];
    for (method, b) in [("OPTIONS", "so1"), ("MESSAGE", "so2")] {
        c.send_to(req(method, b).as_bytes(), ("127.0.0.1", p1))
            .unwrap();
        let (n, from) = uas.recv_from(&mut buf).unwrap();
        assert_eq!(from.port(), p2, "{method}: sent from the chosen socket");
        let m = sipox_sip_msg::SipMsg::parse(bytes::Bytes::copy_from_slice(&buf[..n])).unwrap();
        let h =
            |n: &[u8]| String::from_utf8_lossy(m.value(m.header_named(n).unwrap())).into_owned();
        assert_eq!(
            h(b"X-Before"),
            format!("udp:127.0.0.1:{p1}"),
            "{method}: defaults to $socket_in"
        );
        assert_eq!(h(b"X-In"), format!("udp 127.0.0.1 {p1} INET"));
        assert_eq!(h(b"X-Out"), format!("udp:127.0.0.1:{p2} {p2}"), "{method}");
    }
    drop(s);
}

#[test]
fn via_handling_functions_and_send() {
    let uas = UdpSocket::bind("127.0.0.1:0").unwrap();
    uas.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let uas_port = uas.local_addr().unwrap().port();
    let (p1, p2) = (free_port(false), free_port(false));
    let s = server(&format!(
        "socket = udp:127.0.0.1:{p1}\nsocket = udp:127.0.0.1:{p2}\nloadmodule \"sipmsgops.so\"\n\
         route {{\n  if (is_method(\"MESSAGE\")) {{ send(\"udp:127.0.0.1:{uas_port}\", \"X-Sent: yes\\r\\n\"); exit; }}\n  \
         force_rport();\n  add_local_rport();\n  force_send_socket(\"udp:127.0.0.1:{p2}\");\n  \
         forward(\"sip:127.0.0.1:{uas_port}\");\n}}\n"
    ));
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = c.local_addr().unwrap().port();
    let req = |method: &str, b: &str| {
        format!(
            "{method} sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{b}\r\n\
             From: <sip:a@b>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: {b}\r\nCSeq: 1 {method}\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
    };
    c.send_to(req("OPTIONS", "v1").as_bytes(), ("127.0.0.1", p1))
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, from) = uas.recv_from(&mut buf).unwrap();
    assert_eq!(
        from.port(),
        p2,
        "force_send_socket picked the second socket"
    );
    let m = sipox_sip_msg::SipMsg::parse(bytes::Bytes::copy_from_slice(&buf[..n])).unwrap();
    let vias: Vec<_> = m.vias().map(Result::unwrap).collect();
    assert_eq!(vias[0].port(), Some(p2));
    assert_eq!(vias[0].rport(), Some(None), "add_local_rport");
    assert_eq!(
        vias[1].rport(),
        Some(Some(me.to_string().as_bytes())),
        "force_rport filled the source port"
    );
    // send(): the message as it is, plus the header, without a Via of ours.
    c.send_to(req("MESSAGE", "v2").as_bytes(), ("127.0.0.1", p1))
        .unwrap();
    let (n, _) = uas.recv_from(&mut buf).unwrap();
    let m = sipox_sip_msg::SipMsg::parse(bytes::Bytes::copy_from_slice(&buf[..n])).unwrap();
    assert_eq!(m.values(sipox_sip_msg::HeaderKind::Via).count(), 1);
    assert_eq!(m.value(m.header_named(b"X-Sent").unwrap()), b"yes");
    drop(s);
}

#[test]
fn error_route_gets_the_parse_failure() {
    let port = free_port(false);
    let _s = server(&format!(
        "socket = udp:127.0.0.1:{port}\nloadmodule \"sl.so\"\nloadmodule \"options.so\"\n\
         route {{ options_reply(); }}\n\
         error_route {{ sl_send_reply(499, \"E$err.class $err.rcode $err.rreason\"); exit; }}\n"
    ));
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = c.local_addr().unwrap().port();
    let bad = format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKer1;rport\r\n\
         From: <sip:a@b>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: er1\r\nCSeq: 1 INVITE\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    c.send_to(bad.as_bytes(), ("127.0.0.1", port)).unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = c.recv_from(&mut buf).unwrap();
    let r = sipox_sip_msg::SipMsg::parse(bytes::Bytes::copy_from_slice(&buf[..n])).unwrap();
    assert_eq!(r.status(), Some(499), "the script answered, not the core");
    assert_eq!(r.reason(), b"E1 400 Bad Request - CSeq Method Mismatch");
}

#[test]
fn per_message_advertised_address_and_via_handling() {
    let uas = UdpSocket::bind("127.0.0.1:0").unwrap();
    uas.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let uas_port = uas.local_addr().unwrap().port();
    let p1 = free_port(false);
    let s = server(&format!(
        "socket = udp:127.0.0.1:{p1}\nloadmodule \"sl.so\"\nloadmodule \"rr.so\"\n\
         loadmodule \"tm.so\"\n\
         route {{\n\
           if ($rU == \"adv\") {{ set_advertised_address(\"proxy.example.com\"); \
              set_advertised_port(\"5099\"); record_route(); forward(\"sip:127.0.0.1:{uas_port}\"); exit; }}\n\
           if ($rU == \"tm\") {{ add_local_rport(); $du = \"sip:127.0.0.1:{uas_port}\"; t_relay(); exit; }}\n\
           if ($rU == \"via\") {{ set_via_handling(\"reply-to-via\"); sl_send_reply(404, \"Nope\"); exit; }}\n\
           if ($rU == \"plain\") {{ forward(\"sip:127.0.0.1:{uas_port}\"); exit; }}\n\
         }}\n"
    ));
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = |user: &str, via: &str, b: &str| {
        format!(
            "OPTIONS sip:{user}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK{b}\r\n\
             From: <sip:a@b>;tag=1\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: {b}\r\nCSeq: 1 OPTIONS\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let mut buf = vec![0u8; 4096];
    let mut recv = |sock: &UdpSocket| {
        let (n, _) = sock.recv_from(&mut buf).unwrap();
        sipox_sip_msg::SipMsg::parse(bytes::Bytes::copy_from_slice(&buf[..n])).unwrap()
    };
    // set_advertised_address/port: our Via and Record-Route name the override.
    c.send_to(
        req("adv", "127.0.0.1:9", "adv1").as_bytes(),
        ("127.0.0.1", p1),
    )
    .unwrap();
    let m = recv(&uas);
    let via = m.vias().next().unwrap().unwrap();
    assert_eq!(via.host(), b"proxy.example.com");
    assert_eq!(via.port(), Some(5099));
    let rr =
        String::from_utf8_lossy(m.value(m.header_named(b"Record-Route").unwrap())).into_owned();
    assert!(rr.contains("proxy.example.com:5099"), "{rr}");
    // ... for that message only: the next one advertises the socket again.
    c.send_to(
        req("plain", "127.0.0.1:9", "adv2").as_bytes(),
        ("127.0.0.1", p1),
    )
    .unwrap();
    let m = recv(&uas);
    let via = m.vias().next().unwrap().unwrap();
    assert_eq!(via.host(), b"127.0.0.1");
    assert_eq!(via.port(), Some(p1));
    // add_local_rport() also applies to the branches t_relay builds.
    c.send_to(
        req("tm", "127.0.0.1:9", "tm1").as_bytes(),
        ("127.0.0.1", p1),
    )
    .unwrap();
    let m = recv(&uas);
    let via = m.vias().next().unwrap().unwrap();
    assert_eq!(via.port(), Some(p1));
    assert_eq!(via.rport(), Some(None), "add_local_rport with t_relay");
    // reply-to-via: the reply goes to the Via's sent-by host, not the source IP.
    let other = UdpSocket::bind("127.0.0.2:0").unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let op = other.local_addr().unwrap().port();
    c.send_to(
        req("via", &format!("127.0.0.2:{op}"), "via1").as_bytes(),
        ("127.0.0.1", p1),
    )
    .unwrap();
    let m = recv(&other);
    assert_eq!(m.status(), Some(404));
    drop(s);
}

#[test]
fn force_tcp_alias_reuses_the_connection() {
    use std::io::{Read, Write};
    let (p1, dead) = (free_port(false), free_port(false));
    let s = server(&format!(
        "socket = udp:127.0.0.1:{p1}\nsocket = tcp:127.0.0.1:{p1}\nloadmodule \"sl.so\"\n\
         route {{\n\
           if ($rU == \"alias\") {{ if (force_tcp_alias()) sl_send_reply(200, \"Aliased\"); \
              else sl_send_reply(500, \"No alias\"); exit; }}\n\
           if ($rU == \"back\") {{ forward(\"sip:127.0.0.1:{dead};transport=tcp\"); exit; }}\n\
         }}\n"
    ));
    let req = |user: &str, tp: &str, via: &str, b: &str| {
        format!(
            "OPTIONS sip:{user}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{tp} {via};branch=z9hG4bK{b}\r\n\
             From: <sip:a@b>;tag=1\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: {b}\r\nCSeq: 1 OPTIONS\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
    };
    // The TCP client claims, in its Via, the port nobody listens on.
    let mut t = TcpStream::connect(("127.0.0.1", p1)).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    t.write_all(req("alias", "TCP", &format!("127.0.0.1:{dead}"), "ta1").as_bytes())
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let n = t.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        String::from_utf8_lossy(&got).starts_with("SIP/2.0 200 Aliased"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    // A request for 127.0.0.1:<that port> over TCP now goes down the same connection.
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(
        req("back", "UDP", "127.0.0.1:9", "ta2").as_bytes(),
        ("127.0.0.1", p1),
    )
    .unwrap();
    got.clear();
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let n = t.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("OPTIONS sip:back@127.0.0.1"), "{text}");
    drop(s);
}

#[test]
fn dst_blacklists_filter_requests() {
    let uas = UdpSocket::bind("127.0.0.1:0").unwrap();
    uas.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let up = uas.local_addr().unwrap().port();
    let p1 = free_port(false);
    let s = server(&format!(
        "socket = udp:127.0.0.1:{p1}\n\
         dst_blacklist = gw: {{ (udp, 127.0.0.1, {up}, \"\") }}\n\
         dst_blacklist = dyn/expire\n\
         dst_blacklist = msgs/default: {{ (any, 127.0.0.0/8, 0, \"MESSAGE*\") }}\n\
         loadmodule \"sl.so\"\nloadmodule \"tm.so\"\n\
         route {{\n\
           if ($rU == \"use\") use_blacklist(\"gw\");\n\
           if ($rU == \"dyn\") {{\n\
             if (!add_blacklist_rule(\"dyn\", \"127.0.0.0/24\", \"{up}\", \"udp\")) {{ sl_send_reply(500, \"add\"); exit; }}\n\
             if (add_blacklist_rule(\"gw\", \"10.0.0.1\")) {{ sl_send_reply(500, \"readonly\"); exit; }}\n\
             if (!check_blacklist_rule(\"dyn\", \"127.0.0.1\", \"{up}\", \"udp\")) {{ sl_send_reply(500, \"check\"); exit; }}\n\
             use_blacklist(\"dyn\");\n\
           }}\n\
           if ($rU == \"undyn\") {{ if (!del_blacklist_rule(\"dyn\", \"127.0.0.0/24\", \"{up}\", \"udp\")) {{ sl_send_reply(500, \"del\"); exit; }} use_blacklist(\"dyn\"); }}\n\
           if ($rU == \"tm\") {{ use_blacklist(\"gw\"); $du = \"sip:127.0.0.1:{up}\"; t_relay(\"no-auto-477\"); if ($rc == -5) sl_send_reply(403, \"Filtered by tm\"); exit; }}\n\
           if (!forward(\"sip:127.0.0.1:{up}\")) sl_send_reply(403, \"Filtered\");\n\
         }}\n"
    ));
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut n = 0;
    let mut send = |method: &str, user: &str| {
        n += 1;
        let m = format!(
            "{method} sip:{user}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bKbl{n}\r\n\
             From: <sip:a@b>;tag=1\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: bl{n}\r\nCSeq: 1 {method}\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            c.local_addr().unwrap().port()
        );
        c.send_to(m.as_bytes(), ("127.0.0.1", p1)).unwrap();
    };
    let mut buf = vec![0u8; 4096];
    let mut reply = |c: &UdpSocket| {
        let (k, _) = c.recv_from(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..k])
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    };
    let reached = |uas: &UdpSocket| {
        let mut b = vec![0u8; 4096];
        uas.recv_from(&mut b).is_ok()
    };
    send("OPTIONS", "plain");
    assert!(reached(&uas), "no list applies");
    send("OPTIONS", "use");
    assert_eq!(reply(&c), "SIP/2.0 403 Filtered");
    assert!(!reached(&uas));
    send("OPTIONS", "plain");
    assert!(reached(&uas), "use_blacklist lasted one message");
    send("MESSAGE", "plain");
    assert_eq!(
        reply(&c),
        "SIP/2.0 403 Filtered",
        "a default list, with a pattern"
    );
    assert!(!reached(&uas));
    send("OPTIONS", "dyn");
    assert_eq!(
        reply(&c),
        "SIP/2.0 403 Filtered",
        "a rule added at run time"
    );
    send("OPTIONS", "undyn");
    assert!(reached(&uas), "and removed");
    send("OPTIONS", "tm");
    assert_eq!(reply(&c), "SIP/2.0 403 Filtered by tm");
    assert!(!reached(&uas));
    drop(s);
}

#[test]
fn bad_dst_blacklist_is_a_config_error() {
    let p1 = free_port(false);
    let cfg = format!(
        "socket = udp:127.0.0.1:{p1}\ndst_blacklist = gw: {{ (udp, 300.0.0.1, 5060, \"\") }}\n\
         route {{ exit; }}\n"
    );
    let dir = std::env::temp_dir().join(format!("sipox-bl-{p1}"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.cfg");
    std::fs::write(&path, cfg).unwrap();
    let err = Server::start(&path, None, &[]).expect_err("rejected");
    let text = err.to_string();
    assert!(text.contains("bad.cfg:2:"), "{text}");
    assert!(text.contains("300.0.0.1"), "{text}");
}
