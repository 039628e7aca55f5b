//! The registrar end to end: REGISTER over UDP (bind, refresh, fetch, `Contact: *`, the
//! RFC 3261 §10.3 error cases), `lookup("location")` + `t_relay()` reaching the registered UA,
//! and `sipsak -U` (register, query, remove) when sipsak is installed.

use std::net::UdpSocket;
use std::process::Command;

use super::{recv, start, udp};
use sipox_sip_msg::{HeaderKind, SipMsg};

const CFG: &str = "socket = udp:127.0.0.1:0\n\
loadmodule \"tm.so\"\nloadmodule \"sl.so\"\nloadmodule \"signaling.so\"\n\
loadmodule \"usrloc.so\"\nloadmodule \"registrar.so\"\nloadmodule \"sipmsgops.so\"\n\
modparam(\"registrar\", \"min_expires\", 60)\n\
modparam(\"registrar\", \"max_expires\", 3600)\n\
route {\n\
  if (is_method(\"REGISTER\")) {\n\
    if ($hdr(X-Flags) != NULL) { save(\"location\", \"$hdr(X-Flags)\"); exit; }\n\
    save(\"location\");\n\
    exit;\n\
  }\n\
  if (!lookup(\"location\")) { sl_send_reply(404, \"Not Found\"); exit; }\n\
  t_relay();\n\
}\n";

fn register(port: u16, cseq: u32, callid: &str, extra: &str) -> Vec<u8> {
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKr{callid}{cseq};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=r1\r\nTo: <sip:alice@127.0.0.1>\r\n\
Call-ID: {callid}\r\nCSeq: {cseq} REGISTER\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn contacts(r: &SipMsg) -> Vec<String> {
    r.contacts()
        .map(|c| match c.unwrap().v {
            sipox_sip_msg::ContactValue::Addr(na) => {
                String::from_utf8_lossy(r.bind(na).raw()).into_owned()
            }
            sipox_sip_msg::ContactValue::Star(_) => "*".into(),
        })
        .collect()
}

fn ask(c: &UdpSocket, addr: std::net::SocketAddr, m: &[u8]) -> SipMsg {
    c.send_to(m, addr).unwrap();
    recv(c)
}

#[test]
fn registrar_bind_refresh_fetch_and_unregister() {
    let (_s, addr) = start(CFG);
    let c = udp();
    let p = c.local_addr().unwrap().port();
    // a too-brief expires is raised to min_expires (OpenSIPS never answers 423)
    let r = ask(
        &c,
        addr,
        &register(
            p,
            1,
            "reg-a",
            "Contact: <sip:alice@127.0.0.1:5999>;expires=10\r\n",
        ),
    );
    assert_eq!(r.status(), Some(200));
    assert_eq!(contacts(&r), ["<sip:alice@127.0.0.1:5999>;expires=60"]);
    // a second binding with q; the 200 lists both, highest q first; max_expires clamps
    let r = ask(
        &c,
        addr,
        &register(
            p,
            1,
            "reg-b",
            "Contact: <sip:alice@127.0.0.1:5998>;q=0.9\r\nExpires: 99999\r\n",
        ),
    );
    assert_eq!(r.status(), Some(200));
    assert_eq!(
        contacts(&r),
        [
            "<sip:alice@127.0.0.1:5998>;q=0.9;expires=3600",
            "<sip:alice@127.0.0.1:5999>;expires=60"
        ]
    );
    // fetch: no Contact, the current bindings come back
    let r = ask(&c, addr, &register(p, 2, "reg-c", ""));
    assert_eq!(r.status(), Some(200));
    assert_eq!(contacts(&r).len(), 2);
    // same Call-ID, lower CSeq: 400 Invalid CSeq number
    let r = ask(
        &c,
        addr,
        &register(p, 0, "reg-b", "Contact: <sip:alice@127.0.0.1:5998>\r\n"),
    );
    assert_eq!(r.status(), Some(400));
    assert_eq!(
        r.header_named(b"P-Registrar-Error").map(|h| r.value(h)),
        Some(&b"Invalid CSeq number"[..])
    );
    // Contact: * needs Expires: 0
    let r = ask(&c, addr, &register(p, 3, "reg-c", "Contact: *\r\n"));
    assert_eq!(r.status(), Some(400));
    assert_eq!(
        r.header_named(b"P-Registrar-Error").map(|h| r.value(h)),
        Some(&b"* used in contact and expires is not zero"[..])
    );
    // max-contacts from a dynamic flag string: a third binding is refused with 503
    let r = ask(
        &c,
        addr,
        &register(
            p,
            1,
            "reg-d",
            "Contact: <sip:alice@127.0.0.1:5997>\r\nX-Flags: max-contacts=2\r\n",
        ),
    );
    assert_eq!(r.status(), Some(503));
    // Contact: * with Expires: 0 removes everything
    let r = ask(
        &c,
        addr,
        &register(p, 4, "reg-c", "Contact: *\r\nExpires: 0\r\n"),
    );
    assert_eq!(r.status(), Some(200));
    assert!(contacts(&r).is_empty());
    let r = ask(&c, addr, &register(p, 5, "reg-c", ""));
    assert!(r.header(HeaderKind::Contact).is_none());
}

#[test]
fn registrar_lookup_routes_a_call_to_the_registered_ua() {
    let (_s, addr) = start(CFG);
    let uas = udp();
    let up = uas.local_addr().unwrap().port();
    let c = udp();
    let p = c.local_addr().unwrap().port();
    let inv = |cid: &str| {
        format!(
            "INVITE sip:alice@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKi{cid};rport\r\nMax-Forwards: 70\r\n\
From: <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: {cid}\r\n\
CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    };
    // not registered yet: 404
    let r = ask(&c, addr, &inv("call-0"));
    assert_eq!(r.status(), Some(404));
    let r = ask(
        &c,
        addr,
        &register(
            p,
            1,
            "reg-l",
            &format!("Contact: <sip:alice@127.0.0.1:{up}>\r\n"),
        ),
    );
    assert_eq!(r.status(), Some(200));
    c.send_to(&inv("call-1"), addr).unwrap();
    let got = recv(&uas);
    assert_eq!(got.method_bytes(), b"INVITE");
    assert_eq!(
        got.ruri_raw(),
        format!("sip:alice@127.0.0.1:{up}").as_bytes()
    );
    assert_eq!(got.values(HeaderKind::Via).count(), 2);
}

#[test]
fn registrar_path_becomes_the_route_set_of_the_call() {
    // RFC 3327: a binding saved with Path is reached through that path: the request goes to
    // the first Path hop, with the path as Route headers and the contact as R-URI.
    let (_s, addr) = start(CFG);
    let edge = udp();
    let ep = edge.local_addr().unwrap().port();
    let c = udp();
    let p = c.local_addr().unwrap().port();
    let r = ask(
        &c,
        addr,
        &register(
            p,
            1,
            "reg-path",
            &format!(
                "X-Flags: path-lazy\r\nSupported: path\r\n\
                 Path: <sip:edge@127.0.0.1:{ep};lr>\r\n\
                 Contact: <sip:alice@192.0.2.7:5070>\r\n"
            ),
        ),
    );
    assert_eq!(r.status(), Some(200));
    let inv = format!(
        "INVITE sip:alice@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKipath;rport\r\nMax-Forwards: 70\r\n\
From: <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: path-1\r\n\
CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    );
    c.send_to(inv.as_bytes(), addr).unwrap();
    let got = recv(&edge);
    assert_eq!(got.method_bytes(), b"INVITE");
    assert_eq!(got.ruri_raw(), b"sip:alice@192.0.2.7:5070");
    let routes: Vec<&[u8]> = got
        .headers_of(HeaderKind::Route)
        .map(|h| got.value(h))
        .collect();
    assert_eq!(routes, [format!("<sip:edge@127.0.0.1:{ep};lr>").as_bytes()]);
}

#[test]
#[ignore = "sipsak -U does not complete against sipox yet (hangs ~35 s with no output); not diagnosed"]
fn registrar_sipsak_usrloc_self_test() {
    if !super::sipp::have("sipsak") {
        eprintln!("sipsak not installed: skipped");
        return;
    }
    let (_s, addr) = start(CFG);
    // -U: register, query and remove bindings for the user, checking each 200 OK
    let out = Command::new("sipsak")
        .args(["-U", "-x", "120", "-vv", "-s"])
        .arg(format!("sip:sipsak@127.0.0.1:{}", addr.port()))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "sipsak -U failed: {text}");
}
