//! The usrloc `E_UL_*` events end to end: REGISTER (insert), a refresh (update) and an
//! unregister with `Expires: 0` (delete) run `event_route[E_UL_*]` on the event thread with
//! OpenSIPS 3.5's `$param()` names. Each event route appends a line to `$shv(ev)`; an OPTIONS
//! answered with `X-Events: $shv(ev)` lets the test read them over SIP.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use super::{recv, start, udp};

const CFG: &str = "socket = udp:127.0.0.1:0\n\
loadmodule \"tm.so\"\nloadmodule \"sl.so\"\nloadmodule \"signaling.so\"\n\
loadmodule \"usrloc.so\"\nloadmodule \"registrar.so\"\nloadmodule \"sipmsgops.so\"\n\
loadmodule \"cfgutils.so\"\n\
modparam(\"cfgutils\", \"shvset\", \"ev=s:\")\n\
route {\n\
  if (is_method(\"REGISTER\")) { save(\"location\"); exit; }\n\
  if (is_method(\"OPTIONS\")) {\n\
    append_to_reply(\"X-Events: $shv(ev)\\r\\n\");\n\
    sl_send_reply(200, \"OK\");\n\
    exit;\n\
  }\n\
  sl_send_reply(404, \"Not Here\");\n\
}\n\
event_route[E_UL_AOR_INSERT] {\n\
  $shv(ev) = \"$shv(ev)AOR_INSERT $param(domain) $param(aor);\";\n\
}\n\
event_route[E_UL_AOR_DELETE] {\n\
  $shv(ev) = \"$shv(ev)AOR_DELETE $param(domain) $param(aor);\";\n\
}\n\
event_route[E_UL_CONTACT_INSERT] {\n\
  $shv(ev) = \"$shv(ev)CONTACT_INSERT $param(domain) $param(aor) $param(uri) $param(callid) $param(cseq) $param(expires) $param(qval) $param(user_agent) $param(socket);\";\n\
}\n\
event_route[E_UL_CONTACT_UPDATE] {\n\
  $shv(ev) = \"$shv(ev)CONTACT_UPDATE $param(domain) $param(aor) $param(uri) $param(callid) $param(cseq) $param(expires) $param(qval) $param(user_agent) $param(socket);\";\n\
}\n\
event_route[E_UL_CONTACT_DELETE] {\n\
  $shv(ev) = \"$shv(ev)CONTACT_DELETE $param(domain) $param(aor) $param(uri) $param(callid) $param(cseq) $param(expires) $param(qval) $param(user_agent) $param(socket);\";\n\
}\n";

fn register(port: u16, cseq: u32, expires: u32) -> Vec<u8> {
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKev{cseq};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:carol@127.0.0.1>;tag=e1\r\nTo: <sip:carol@127.0.0.1>\r\n\
Call-ID: ev-call@test\r\nCSeq: {cseq} REGISTER\r\nUser-Agent: ev-ua\r\n\
Contact: <sip:carol@127.0.0.1:{port}>;q=0.5\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The events recorded so far (`X-Events` of an OPTIONS reply), one entry per event.
fn events(c: &UdpSocket, addr: SocketAddr, n: u32) -> Vec<String> {
    let port = c.local_addr().unwrap().port();
    c.send_to(
        &super::request("OPTIONS", "sip:127.0.0.1", port, &format!("evq{n}")),
        addr,
    )
    .unwrap();
    let r = recv(c);
    assert_eq!(r.status(), Some(200));
    let v = r.header_named(b"X-Events").map_or(&b""[..], |h| r.value(h));
    String::from_utf8_lossy(v)
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(ToOwned::to_owned)
        .collect()
}

/// Polls until `want` events were recorded (they run on the event thread, after the reply).
fn wait_events(c: &UdpSocket, addr: SocketAddr, want: usize, q: &mut u32) -> Vec<String> {
    for _ in 0..100 {
        *q += 1;
        let ev = events(c, addr, *q);
        if ev.len() >= want {
            return ev;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    events(c, addr, *q + 1)
}

fn now_s() -> u64 {
    #[allow(clippy::disallowed_methods)] // the test compares with absolute expiry times
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Checks one contact event line; returns its `expires` (absolute, in seconds).
fn contact_event(line: &str, kind: &str, uri: &str, cseq: u32, socket: &str) -> u64 {
    let f: Vec<&str> = line.split(' ').collect();
    assert_eq!(f.len(), 10, "{line}");
    assert_eq!(f[0], kind, "{line}");
    assert_eq!(f[1], "location", "domain: {line}");
    assert_eq!(f[2], "carol", "aor: {line}");
    assert_eq!(f[3], uri, "uri: {line}");
    assert_eq!(f[4], "ev-call@test", "callid: {line}");
    assert_eq!(f[5], cseq.to_string(), "cseq: {line}");
    assert_eq!(f[7], "500", "qval (q × 1000): {line}");
    assert_eq!(f[8], "ev-ua", "user_agent: {line}");
    assert_eq!(f[9], socket, "socket: {line}");
    f[6].parse().unwrap()
}

#[test]
fn usrloc_events_insert_update_delete() {
    let (_s, addr) = start(CFG);
    let socket = format!("udp:127.0.0.1:{}", addr.port());
    let c = udp();
    let p = c.local_addr().unwrap().port();
    let uri = format!("sip:carol@127.0.0.1:{p}");
    let mut q = 0;
    assert!(events(&c, addr, 0).is_empty());

    // a new AoR: E_UL_AOR_INSERT, then E_UL_CONTACT_INSERT
    c.send_to(&register(p, 1, 600), addr).unwrap();
    assert_eq!(recv(&c).status(), Some(200));
    let ev = wait_events(&c, addr, 2, &mut q);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(ev[0], "AOR_INSERT location carol");
    let t = now_s();
    let exp = contact_event(&ev[1], "CONTACT_INSERT", &uri, 1, &socket);
    assert!(exp.abs_diff(t + 600) <= 2, "expires {exp} vs now {t} + 600");

    // a refresh of the same binding: E_UL_CONTACT_UPDATE only
    c.send_to(&register(p, 2, 1200), addr).unwrap();
    assert_eq!(recv(&c).status(), Some(200));
    let ev = wait_events(&c, addr, 3, &mut q);
    assert_eq!(ev.len(), 3, "{ev:?}");
    let t = now_s();
    let exp = contact_event(&ev[2], "CONTACT_UPDATE", &uri, 2, &socket);
    assert!(
        exp.abs_diff(t + 1200) <= 2,
        "expires {exp} vs now {t} + 1200"
    );

    // unregister: E_UL_CONTACT_DELETE, then E_UL_AOR_DELETE (its last contact went)
    c.send_to(&register(p, 3, 0), addr).unwrap();
    assert_eq!(recv(&c).status(), Some(200));
    let ev = wait_events(&c, addr, 5, &mut q);
    assert_eq!(ev.len(), 5, "{ev:?}");
    // the deleted binding as it was stored (OpenSIPS raises the event from the stored
    // contact: the refresh's CSeq and expiry, not the unregister's)
    let gone = contact_event(&ev[3], "CONTACT_DELETE", &uri, 2, &socket);
    assert_eq!(gone, exp);
    assert_eq!(ev[4], "AOR_DELETE location carol");

    // nothing else is raised afterwards
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(events(&c, addr, 999).len(), 5);
}
