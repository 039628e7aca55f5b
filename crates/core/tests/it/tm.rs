//! The `tm` module end to end: a SIPp call through `t_relay`, serial forking from a
//! `failure_route`, CANCEL, the 408 of `fr_inv_timeout`, absorbed retransmissions.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sipox_sip_msg::{Method, ReplyOpts, SipMsg, build_reply};

use super::sipp::{calls_through, data, free_port, have, server};
use super::{recv, request, start, udp};

fn recv_from(s: &UdpSocket) -> (SipMsg, SocketAddr) {
    let mut buf = vec![0u8; 65_535];
    let (n, from) = s.recv_from(&mut buf).unwrap();
    (
        SipMsg::parse(Bytes::copy_from_slice(&buf[..n])).unwrap(),
        from,
    )
}

/// Receives until a message that is not a `100 Trying`.
fn recv_skip_100(s: &UdpSocket) -> SipMsg {
    loop {
        let (m, _) = recv_from(s);
        if m.status() != Some(100) {
            return m;
        }
    }
}

/// The UAS answers `req` (received from `from`) with `code`.
fn answer(s: &UdpSocket, req: &SipMsg, from: SocketAddr, code: u16, reason: &str) {
    let mut out = Vec::new();
    let opts = ReplyOpts {
        to_tag: Some(b"uastag"),
        ..ReplyOpts::default()
    };
    build_reply(req, code, reason.as_bytes(), &opts, &mut out).unwrap();
    s.send_to(&out, from).unwrap();
}

/// The stateful proxy logic of the SIPp call tests: in-dialog loose routing, ACK matching,
/// record_route and t_relay.
fn stateful_cfg(port: u16) -> String {
    format!(
        "socket = udp:127.0.0.1:{port}\nloadmodule \"tm.so\"\nloadmodule \"sl.so\"\n\
         loadmodule \"rr.so\"\nloadmodule \"sipmsgops.so\"\n\
         route {{\n  if (has_totag()) {{\n    if (loose_route()) {{ t_relay(); exit; }}\n    \
         if (is_method(\"ACK\")) {{ if (t_check_trans()) t_relay(); exit; }}\n    \
         sl_send_reply(404, \"Not here\");\n    exit;\n  }}\n  t_check_trans();\n  \
         record_route();\n  if (!t_relay()) sl_reply_error();\n}}\n"
    )
}

fn tm_cfg(extra: &str, route: &str) -> String {
    format!(
        "socket = udp:127.0.0.1:0\nloadmodule \"tm.so\"\nloadmodule \"sl.so\"\n\
         loadmodule \"rr.so\"\nloadmodule \"sipmsgops.so\"\n{extra}\nroute {{\n{route}\n}}\n"
    )
}

#[test]
fn sipp_call_through_t_relay() {
    if !have("sipp") {
        return;
    }
    let port = free_port(false);
    let _s = server(&stateful_cfg(port));
    calls_through(&format!("127.0.0.1:{port}"), 20, 10);
}

#[test]
fn failure_route_forks_serially_after_486() {
    let uas1 = udp();
    let uas2 = udp();
    let p1 = uas1.local_addr().unwrap().port();
    let p2 = uas2.local_addr().unwrap().port();
    let (_s, addr) = start(&tm_cfg(
        "",
        &format!(
            "  t_on_failure(\"next\");\n  t_relay();\n}}\n\
             failure_route[next] {{\n  if (t_check_status(\"486\") && $T_reply_code == 486) {{\n    \
             $ru = \"sip:bob@127.0.0.1:{p2}\";\n    t_relay();\n  }}"
        ),
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    uac.send_to(
        &request("INVITE", &format!("sip:bob@127.0.0.1:{p1}"), port, "fr1"),
        addr,
    )
    .unwrap();
    let (t, _) = recv_from(&uac);
    assert_eq!(t.status(), Some(100), "100 Trying from t_relay");
    let (inv, from) = recv_from(&uas1);
    assert_eq!(inv.method(), Some(Method::Invite));
    let b1 = inv.via1().unwrap().branch().unwrap().to_vec();
    answer(&uas1, &inv, from, 486, "Busy Here");
    // The proxy acknowledges the 486 hop by hop.
    let (ack, _) = recv_from(&uas1);
    assert_eq!(ack.method(), Some(Method::Ack));
    assert_eq!(ack.via1().unwrap().branch().unwrap(), &b1[..]);
    // The failure route sends a new branch to the second UAS.
    let (inv2, from2) = recv_from(&uas2);
    assert_eq!(inv2.method(), Some(Method::Invite));
    assert_eq!(
        inv2.ruri_raw(),
        format!("sip:bob@127.0.0.1:{p2}").as_bytes()
    );
    assert_ne!(inv2.via1().unwrap().branch().unwrap(), &b1[..]);
    answer(&uas2, &inv2, from2, 200, "OK");
    let ok = recv_skip_100(&uac);
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.vias().count(), 1, "our Via removed");
}

#[test]
fn cancel_before_answer_gives_487() {
    let uas = udp();
    let p = uas.local_addr().unwrap().port();
    let (_s, addr) = start(&tm_cfg(
        "",
        "  if (is_method(\"CANCEL\")) {\n    if (t_check_trans()) t_relay();\n    exit;\n  }\n  \
         t_check_trans();\n  t_relay();",
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    let ruri = format!("sip:bob@127.0.0.1:{p}");
    uac.send_to(&request("INVITE", &ruri, port, "c1"), addr)
        .unwrap();
    let (inv, from) = recv_from(&uas);
    answer(&uas, &inv, from, 180, "Ringing");
    let r = recv_skip_100(&uac);
    assert_eq!(r.status(), Some(180));
    uac.send_to(&request("CANCEL", &ruri, port, "c1"), addr)
        .unwrap();
    // The proxy answers the CANCEL and cancels its branch.
    let (cancel, cfrom) = recv_from(&uas);
    assert_eq!(cancel.method(), Some(Method::Cancel));
    assert_eq!(
        cancel.via1().unwrap().branch(),
        inv.via1().unwrap().branch()
    );
    answer(&uas, &cancel, cfrom, 200, "OK");
    answer(&uas, &inv, from, 487, "Request Terminated");
    let mut got = Vec::new();
    for _ in 0..2 {
        let m = recv_skip_100(&uac);
        got.push((m.status(), m.cseq().unwrap().method()));
    }
    assert!(got.contains(&(Some(200), Method::Cancel)), "{got:?}");
    assert!(got.contains(&(Some(487), Method::Invite)), "{got:?}");
}

#[test]
#[allow(clippy::disallowed_methods)] // the test measures the timeout
fn fr_inv_timeout_gives_408() {
    let uas = udp();
    let p = uas.local_addr().unwrap().port();
    let (_s, addr) = start(&tm_cfg(
        "modparam(\"tm\", \"fr_inv_timeout\", 1)\nmodparam(\"tm\", \"fr_timeout\", 1)",
        "  t_relay();",
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    let ruri = format!("sip:bob@127.0.0.1:{p}");
    let t0 = Instant::now();
    uac.send_to(&request("INVITE", &ruri, port, "t1"), addr)
        .unwrap();
    let (inv, from) = recv_from(&uas);
    answer(&uas, &inv, from, 180, "Ringing");
    assert_eq!(recv_skip_100(&uac).status(), Some(180));
    let r = recv_skip_100(&uac);
    assert_eq!(r.status(), Some(408));
    assert!(t0.elapsed() >= Duration::from_millis(900));
    // The branch is cancelled downstream.
    let (cancel, _) = recv_from(&uas);
    assert_eq!(cancel.method(), Some(Method::Cancel));

    // No answer at all: fr_timeout.
    uac.send_to(&request("INVITE", &ruri, port, "t2"), addr)
        .unwrap();
    let r = recv_skip_100(&uac);
    assert_eq!(r.status(), Some(408));
}

#[test]
fn retransmitted_invite_makes_one_branch() {
    let uas = udp();
    let p = uas.local_addr().unwrap().port();
    let (_s, addr) = start(&tm_cfg("", "  t_check_trans();\n  t_relay();"));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    let ruri = format!("sip:bob@127.0.0.1:{p}");
    let inv_bytes = request("INVITE", &ruri, port, "r1");
    uac.send_to(&inv_bytes, addr).unwrap();
    let (inv, from) = recv_from(&uas);
    answer(&uas, &inv, from, 180, "Ringing");
    assert_eq!(recv_skip_100(&uac).status(), Some(180));
    uac.send_to(&inv_bytes, addr).unwrap();
    // The retransmission gets the last provisional again...
    assert_eq!(recv_skip_100(&uac).status(), Some(180));
    // ...and no second branch.
    uas.set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    let mut buf = [0u8; 4096];
    assert!(uas.recv_from(&mut buf).is_err(), "one branch only");
    answer(&uas, &inv, from, 200, "OK");
    assert_eq!(recv_skip_100(&uac).status(), Some(200));
}

#[test]
fn parallel_fork_answered_by_one_cancels_the_other() {
    let uas1 = udp();
    let uas2 = udp();
    let p1 = uas1.local_addr().unwrap().port();
    let p2 = uas2.local_addr().unwrap().port();
    let (_s, addr) = start(&tm_cfg(
        "",
        &format!("  append_branch(\"sip:bob@127.0.0.1:{p2}\");\n  t_relay();"),
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    let ruri = format!("sip:bob@127.0.0.1:{p1}");
    uac.send_to(&request("INVITE", &ruri, port, "pf1"), addr)
        .unwrap();
    let (inv1, from1) = recv_from(&uas1);
    let (inv2, from2) = recv_from(&uas2);
    assert_eq!(inv1.method(), Some(Method::Invite));
    assert_eq!(inv2.method(), Some(Method::Invite));
    assert_ne!(
        inv1.via1().unwrap().branch(),
        inv2.via1().unwrap().branch(),
        "one branch each"
    );
    // 180 first and seen by the caller, then the 200 (a provisional arriving after the final
    // was relayed is dropped, RFC 3261 §16.7, so the order is made explicit here).
    answer(&uas2, &inv2, from2, 180, "Ringing");
    assert_eq!(recv_skip_100(&uac).status(), Some(180));
    answer(&uas1, &inv1, from1, 200, "OK");
    assert_eq!(recv_skip_100(&uac).status(), Some(200));
    let (cancel, cfrom) = recv_from(&uas2);
    assert_eq!(cancel.method(), Some(Method::Cancel));
    assert_eq!(
        cancel.via1().unwrap().branch(),
        inv2.via1().unwrap().branch()
    );
    answer(&uas2, &cancel, cfrom, 200, "OK");
    answer(&uas2, &inv2, from2, 487, "Request Terminated");
    let (ack, _) = recv_from(&uas2);
    assert_eq!(
        ack.method(),
        Some(Method::Ack),
        "hop-by-hop ACK for the 487"
    );
}

#[test]
fn failure_and_reply_routes_see_the_requests_flags_and_avps() {
    // OpenSIPS keeps message flags and AVPs with the transaction: the onreply route and the
    // failure route see what the request route set (and a failure route's own changes carry
    // to the next failure route).
    let uas = udp();
    let p = uas.local_addr().unwrap().port();
    let (srv, addr) = start(&tm_cfg(
        "",
        "  $avp(who) = \"alice\";\n  setflag(\"MARK\");\n  t_on_reply(\"r\");\n  \
         t_on_failure(\"f\");\n  t_relay();\n}\n\
         onreply_route[r] {\n  if (isflagset(\"MARK\") && $avp(who) == \"alice\") \
         append_hf(\"X-Reply-Saw: $avp(who)\\r\\n\");\n}\n\
         failure_route[f] {\n  if (isflagset(\"MARK\") && $avp(who) == \"alice\") \
         t_reply(599, \"Carried $avp(who)\");\n  else t_reply(598, \"Lost\");",
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    uac.send_to(
        &request("INVITE", &format!("sip:bob@127.0.0.1:{p}"), port, "ctx1"),
        addr,
    )
    .unwrap();
    let (inv, from) = recv_from(&uas);
    answer(&uas, &inv, from, 180, "Ringing");
    let ring = recv_skip_100(&uac);
    assert_eq!(ring.status(), Some(180));
    assert_eq!(
        ring.header_named(b"X-Reply-Saw").map(|h| ring.value(h)),
        Some(&b"alice"[..]),
        "the onreply route saw the AVP and the flag"
    );
    answer(&uas, &inv, from, 486, "Busy Here");
    let fin = recv_skip_100(&uac);
    assert_eq!(
        fin.status(),
        Some(599),
        "{:?}",
        String::from_utf8_lossy(fin.raw())
    );
    assert_eq!(fin.reason(), b"Carried alice");
    // tm statistics: one UAS and one UAC transaction, two replies received (180, 486), the
    // 180 relayed, the 599 local and counted as a 5xx transaction.
    let st = srv
        .mi
        .call(
            "get_statistics",
            &serde_json::json!({"statistics": ["tm:"]}),
            std::time::SystemTime::UNIX_EPOCH,
        )
        .unwrap();
    let get = |n: &str| st[format!("tm:{n}")].as_u64().unwrap_or(u64::MAX);
    assert_eq!(get("UAS_transactions"), 1, "{st}");
    assert_eq!(get("UAC_transactions"), 1, "{st}");
    assert_eq!(get("received_replies"), 2, "{st}");
    assert_eq!(get("relayed_replies"), 1, "{st}");
    assert_eq!(get("local_replies"), 1, "{st}");
    assert_eq!(get("5xx_transactions"), 1, "{st}");
    assert_eq!(get("4xx_transactions"), 0, "{st}");
    assert!(get("inuse_transactions") <= 1, "{st}");
}

#[test]
fn branch_route_runs_per_branch_and_can_drop_one() {
    // Three branches; the branch route tags each with its own R-URI and a header of its own
    // (not seen by the other branches), rewrites one branch's R-URI, and drops the third.
    let uas1 = udp();
    let uas2 = udp();
    let p1 = uas1.local_addr().unwrap().port();
    let p2 = uas2.local_addr().unwrap().port();
    let (_s, addr) = start(&tm_cfg(
        "",
        &format!(
            "  append_branch(\"sip:carol@127.0.0.1:{p2}\");\n  \
             append_branch(\"sip:dropme@127.0.0.1:{p2}\");\n  \
             t_on_branch(\"per_branch\");\n  t_relay();\n}}\n\
             branch_route[per_branch] {{\n  \
             if ($rU == \"dropme\") drop;\n  \
             append_hf(\"X-Branch: $ru\\r\\n\");\n  \
             if ($rU == \"carol\") $rU = \"carol2\";\n"
        ),
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    let ruri = format!("sip:bob@127.0.0.1:{p1}");
    uac.send_to(&request("INVITE", &ruri, port, "br1"), addr)
        .unwrap();
    let (inv1, _) = recv_from(&uas1);
    let (inv2, _) = recv_from(&uas2);
    let xb = |m: &SipMsg| -> Vec<String> {
        m.headers_named(b"X-Branch")
            .map(|h| String::from_utf8_lossy(m.value(h)).into_owned())
            .collect()
    };
    assert_eq!(inv1.ruri_raw(), ruri.as_bytes());
    assert_eq!(xb(&inv1), [ruri]);
    assert_eq!(
        inv2.ruri_raw(),
        format!("sip:carol2@127.0.0.1:{p2}").as_bytes()
    );
    assert_eq!(xb(&inv2), [format!("sip:carol@127.0.0.1:{p2}")]);
    // the dropped branch never leaves
    uas2.set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let mut buf = [0u8; 4096];
    assert!(
        uas2.recv_from(&mut buf).is_err(),
        "the dropped branch was sent"
    );
}

#[test]
fn sipp_burst_of_100_calls_loses_none() {
    if !have("sipp") {
        return;
    }
    let port = free_port(false);
    let _s = server(&stateful_cfg(port));
    // all 100 calls started within one second
    calls_through(&format!("127.0.0.1:{port}"), 100, 100);
}

fn header(m: &SipMsg, name: &str) -> Option<String> {
    m.header_named(name.as_bytes())
        .map(|h| String::from_utf8_lossy(m.value(h)).into_owned())
}

#[test]
fn t_add_hdrs_reach_failure_route_branches_and_t_flush_flags_carries_late_flags() {
    let uas1 = udp();
    let uas2 = udp();
    let p1 = uas1.local_addr().unwrap().port();
    let p2 = uas2.local_addr().unwrap().port();
    // The flag set after t_relay() reaches the failure route only through t_flush_flags().
    let (_s, addr) = start(&tm_cfg(
        "",
        &format!(
            "  t_newtran();\n  t_add_hdrs(\"X-Origin: 1.1.1.1\\r\\n\");\n  t_on_failure(\"f\");\n  \
             t_relay();\n  setflag(\"LATE\");\n  t_flush_flags();\n}}\n\
             failure_route[f] {{\n  if (isflagset(\"LATE\")) {{\n    \
             $ru = \"sip:bob@127.0.0.1:{p2}\";\n    t_relay();\n  }} else t_reply(598, \"Lost\");"
        ),
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    uac.send_to(
        &request("INVITE", &format!("sip:bob@127.0.0.1:{p1}"), port, "ah1"),
        addr,
    )
    .unwrap();
    let (inv, from) = recv_from(&uas1);
    assert_eq!(header(&inv, "X-Origin").as_deref(), Some("1.1.1.1"));
    // Give the route time to flush its flag before the branch fails.
    std::thread::sleep(Duration::from_millis(100));
    answer(&uas1, &inv, from, 486, "Busy Here");
    let (ack, _) = recv_from(&uas1);
    assert_eq!(ack.method(), Some(Method::Ack));
    assert_eq!(
        header(&ack, "X-Origin").as_deref(),
        Some("1.1.1.1"),
        "tm's own ACK carries them too"
    );
    let (inv2, from2) = recv_from(&uas2);
    assert_eq!(inv2.method(), Some(Method::Invite));
    assert_eq!(
        header(&inv2, "X-Origin").as_deref(),
        Some("1.1.1.1"),
        "the failure route's branch carries the transaction's headers"
    );
    assert_eq!(inv2.headers_named(b"X-Origin").count(), 1);
    answer(&uas2, &inv2, from2, 200, "OK");
    assert_eq!(recv_skip_100(&uac).status(), Some(200));
}

#[test]
fn t_cancel_branch_on_183_with_t_add_cancel_reason() {
    let uas = udp();
    let p = uas.local_addr().unwrap().port();
    let (_s, addr) = start(&tm_cfg(
        "",
        "  t_add_cancel_reason(\"Reason: SIP;cause=480\\r\\n\");\n  t_add_hdrs(\"X-T: 1\\r\\n\");\n  \
         t_on_reply(\"r\");\n  t_relay();\n}\n\
         onreply_route[r] {\n  if (t_check_status(\"183\")) t_cancel_branch();",
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    uac.send_to(
        &request("INVITE", &format!("sip:bob@127.0.0.1:{p}"), port, "cb1"),
        addr,
    )
    .unwrap();
    let (inv, from) = recv_from(&uas);
    answer(&uas, &inv, from, 183, "Session Progress");
    let (cancel, cfrom) = recv_from(&uas);
    assert_eq!(cancel.method(), Some(Method::Cancel));
    assert_eq!(
        cancel.via1().unwrap().branch(),
        inv.via1().unwrap().branch()
    );
    assert_eq!(header(&cancel, "Reason").as_deref(), Some("SIP;cause=480"));
    assert_eq!(header(&cancel, "X-T").as_deref(), Some("1"));
    // The 183 is relayed once its onreply route has finished.
    assert_eq!(recv_skip_100(&uac).status(), Some(183));
    answer(&uas, &cancel, cfrom, 200, "OK");
    answer(&uas, &inv, from, 487, "Request Terminated");
    assert_eq!(recv_skip_100(&uac).status(), Some(487));
}

#[test]
fn t_add_cancel_reason_in_the_cancel_route() {
    let uas = udp();
    let p = uas.local_addr().unwrap().port();
    let (_s, addr) = start(&tm_cfg(
        "",
        "  if (is_method(\"CANCEL\")) {\n    \
         t_add_cancel_reason(\"Reason: SIP;cause=200;text=elsewhere\\r\\n\");\n    \
         if (t_check_trans()) t_relay();\n    exit;\n  }\n  t_check_trans();\n  t_relay();",
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    let ruri = format!("sip:bob@127.0.0.1:{p}");
    uac.send_to(&request("INVITE", &ruri, port, "cr1"), addr)
        .unwrap();
    let (inv, from) = recv_from(&uas);
    answer(&uas, &inv, from, 180, "Ringing");
    assert_eq!(recv_skip_100(&uac).status(), Some(180));
    uac.send_to(&request("CANCEL", &ruri, port, "cr1"), addr)
        .unwrap();
    let (cancel, cfrom) = recv_from(&uas);
    assert_eq!(cancel.method(), Some(Method::Cancel));
    assert_eq!(
        header(&cancel, "Reason").as_deref(),
        Some("SIP;cause=200;text=elsewhere")
    );
    answer(&uas, &cancel, cfrom, 200, "OK");
    answer(&uas, &inv, from, 487, "Request Terminated");
}

#[test]
fn t_reply_by_callid_answers_a_parked_invite() {
    let (_s, addr) = start(&tm_cfg(
        "",
        "  if (is_method(\"INVITE\")) {\n    t_reply(180, \"Ringing\");\n    exit;\n  }\n  \
         if (is_method(\"CANCEL\")) {\n    t_reply_by_callid(487, \"Request Terminated\");\n    \
         sl_send_reply(200, \"OK\");\n    exit;\n  }\n  \
         if (is_method(\"BYE\")) {\n    \
         if (t_reply_by_callid(486, \"Busy\", $ci, \"1\")) sl_send_reply(200, \"OK\");\n    \
         else sl_send_reply(481, \"None\");\n  }",
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    uac.send_to(&request("INVITE", "sip:park@127.0.0.1", port, "rc1"), addr)
        .unwrap();
    assert_eq!(recv_skip_100(&uac).status(), Some(180));
    uac.send_to(&request("CANCEL", "sip:park@127.0.0.1", port, "rc1"), addr)
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let m = recv_skip_100(&uac);
        got.push((m.status(), m.cseq().unwrap().method()));
    }
    assert!(got.contains(&(Some(200), Method::Cancel)), "{got:?}");
    assert!(got.contains(&(Some(487), Method::Invite)), "{got:?}");

    // Explicit Call-ID and CSeq (a BYE whose CSeq is not the INVITE's).
    uac.send_to(&request("INVITE", "sip:park@127.0.0.1", port, "rc2"), addr)
        .unwrap();
    assert_eq!(recv_skip_100(&uac).status(), Some(180));
    let bye = String::from_utf8(request("BYE", "sip:park@127.0.0.1", port, "rc2b"))
        .unwrap()
        .replace("rc2b@test", "rc2@test")
        .replace("CSeq: 1 BYE", "CSeq: 2 BYE");
    uac.send_to(bye.as_bytes(), addr).unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let m = recv_skip_100(&uac);
        got.push((m.status(), m.cseq().unwrap().method()));
    }
    assert!(got.contains(&(Some(200), Method::Bye)), "{got:?}");
    assert!(got.contains(&(Some(486), Method::Invite)), "{got:?}");
}

#[test]
fn t_replicate_sends_a_copy_whose_replies_stay_here() {
    let uas = udp();
    let copy = udp();
    let p = uas.local_addr().unwrap().port();
    let pc = copy.local_addr().unwrap().port();
    let (_s, addr) = start(&tm_cfg(
        "",
        &format!("  t_replicate(\"sip:127.0.0.1:{pc}\");\n  t_relay();"),
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    let ruri = format!("sip:bob@127.0.0.1:{p}");
    uac.send_to(&request("INVITE", &ruri, port, "rp1"), addr)
        .unwrap();
    let (dup, dfrom) = recv_from(&copy);
    assert_eq!(dup.method(), Some(Method::Invite));
    assert_eq!(dup.ruri_raw(), ruri.as_bytes(), "the R-URI is kept");
    let (inv, from) = recv_from(&uas);
    assert_ne!(
        dup.via1().unwrap().branch(),
        inv.via1().unwrap().branch(),
        "a transaction of its own"
    );
    // The copy's replies go nowhere upstream; its negative final is acknowledged here.
    answer(&copy, &dup, dfrom, 180, "Ringing");
    answer(&copy, &dup, dfrom, 486, "Busy Here");
    let (ack, _) = recv_from(&copy);
    assert_eq!(ack.method(), Some(Method::Ack));
    std::thread::sleep(Duration::from_millis(100));
    answer(&uas, &inv, from, 200, "OK");
    let m = recv_skip_100(&uac);
    assert_eq!(
        m.status(),
        Some(200),
        "{}",
        String::from_utf8_lossy(m.raw())
    );
}

#[test]
#[allow(clippy::disallowed_methods)] // the MI call's clock
fn mi_t_reply_answers_a_pending_transaction_by_its_id() {
    let (s, addr) = start(&tm_cfg(
        "",
        "  t_newtran();\n  append_to_reply(\"X-Tid: $T_id\\r\\n\");\n  t_reply(180, \"Ringing\");",
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    uac.send_to(&request("INVITE", "sip:park@127.0.0.1", port, "mr1"), addr)
        .unwrap();
    let ring = recv_skip_100(&uac);
    assert_eq!(ring.status(), Some(180));
    let tid = header(&ring, "X-Tid").unwrap();
    assert!(tid.contains(':'), "{tid}");
    let now = std::time::SystemTime::now();
    let e = s.mi.call(
        "t_reply",
        &serde_json::json!({"code": 486, "reason": "Busy", "trans_id": "1:12345", "to_tag": "x"}),
        now,
    );
    assert!(e.is_err(), "an unknown transaction: {e:?}");
    let v =
        s.mi.call(
            "t_reply",
            &serde_json::json!({
                "code": 486, "reason": "Busy Here", "trans_id": tid,
                "to_tag": "mitag", "new_headers": "X-MI: yes\r\n"
            }),
            now,
        )
        .unwrap();
    assert_eq!(v, serde_json::json!("OK"));
    let fin = recv_skip_100(&uac);
    assert_eq!(fin.status(), Some(486));
    assert_eq!(fin.reason(), b"Busy Here");
    assert_eq!(header(&fin, "X-MI").as_deref(), Some("yes"));
    assert!(header(&fin, "To").unwrap().contains("tag=mitag"));
}

#[test]
#[allow(clippy::disallowed_methods)] // the MI call's clock
fn mi_t_uac_dlg_sends_a_request_and_returns_its_final_reply() {
    let uas = udp();
    let p = uas.local_addr().unwrap().port();
    let (s, _addr) = start(&tm_cfg("", "  exit;"));
    let call = std::thread::spawn(move || {
        s.mi.call(
            "t_uac_dlg",
            &serde_json::json!({
                "method": "OPTIONS",
                "ruri": "sip:bob@example.com",
                "next_hop": format!("sip:127.0.0.1:{p}"),
                "headers": "From: <sip:mi@sipox>\r\nTo: <sip:bob@example.com>\r\nX-Test: 1\r\n",
            }),
            std::time::SystemTime::now(),
        )
    });
    let (req, from) = recv_from(&uas);
    assert_eq!(req.method(), Some(Method::Options));
    assert_eq!(req.ruri_raw(), b"sip:bob@example.com");
    assert_eq!(header(&req, "X-Test").as_deref(), Some("1"));
    assert!(
        header(&req, "From").unwrap().contains(";tag="),
        "a From tag is added"
    );
    assert!(req.call_id().is_some());
    answer(&uas, &req, from, 200, "OK");
    let v = call.join().unwrap().unwrap();
    assert_eq!(v["Status"], "200 OK");
    assert!(v["Message"].as_str().unwrap().contains("uastag"), "{v}");
}

/// A SIPp UAS and UAC (the call scenarios of [`calls_through`]) through `proxy`, both losing
/// `lost` % of the messages they send and receive.
fn sipp_lossy_calls(proxy: &str, calls: u32, rate: u32, lost: u32) {
    use std::process::{Command, Stdio};
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let (uas_port, uac_port) = (free_port(false), free_port(false));
    let common = |port: u16| -> Vec<String> {
        let lost = lost.to_string();
        let port = port.to_string();
        [
            "-p",
            &port,
            "-i",
            "127.0.0.1",
            "-t",
            "u1",
            "-nostdin",
            "-lost",
            &lost,
            // A late retransmission (an INVITE answered in a lost reply, an ACK after the
            // BYE) is no reason to abort the call: SIPp ignores it and waits on.
            "-default_behaviors",
            "all,-abortunexp",
        ]
        .iter()
        .map(ToString::to_string)
        .collect()
    };
    let uas = Kill(
        Command::new("sipp")
            .args(["-sf", data("sipp/uas_call_lossy.xml").to_str().unwrap()])
            .args(common(uas_port))
            .args(["-m", &calls.to_string(), "-timeout", "120"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let out = Command::new("sipp")
        .arg(format!("127.0.0.1:{uas_port}"))
        .args([
            "-rsa",
            proxy,
            "-sf",
            data("sipp/uac_call.xml").to_str().unwrap(),
        ])
        .args(common(uac_port))
        .args(["-key", "tparam", "", "-m", &calls.to_string()])
        .args(["-r", &rate.to_string()])
        .args([
            "-timeout",
            "120",
            "-timeout_error",
            "-recv_timeout",
            "30000",
        ])
        .output()
        .unwrap();
    drop(uas);
    assert_eq!(
        out.status.code(),
        Some(0),
        "sipp with -lost {lost} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sipp_calls_complete_through_t_relay_with_10_percent_loss() {
    if !have("sipp") {
        return;
    }
    let port = free_port(false);
    let _s = server(&stateful_cfg(port));
    sipp_lossy_calls(&format!("127.0.0.1:{port}"), 50, 10, 10);
}

/// One SIP message from a stream (headers, then Content-Length bytes of body).
fn read_sip(r: &mut impl std::io::BufRead) -> Option<SipMsg> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        if head.is_empty() && (line == b"\r\n" || line == b"\n") {
            continue; // keep-alive
        }
        head.extend_from_slice(&line);
        if line == b"\r\n" {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let len = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")
                .or_else(|| l.strip_prefix("l:"))
        })
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    head.extend_from_slice(&body);
    SipMsg::parse(Bytes::from(head)).ok()
}

#[test]
fn udp_caller_tcp_callee_double_record_route() {
    use std::io::Write;

    // The callee: a TCP listener; every message read (with its connection) goes to `rx`.
    let (tp, rx) = tcp_callee();
    let (up, tcp) = (free_port(false), free_port(false));
    let _s = server(&format!(
        "socket = udp:127.0.0.1:{up}\nsocket = tcp:127.0.0.1:{tcp}\n\
         loadmodule \"tm.so\"\nloadmodule \"sl.so\"\nloadmodule \"rr.so\"\n\
         loadmodule \"sipmsgops.so\"\nmodparam(\"rr\", \"enable_double_rr\", 1)\n\
         route {{\n  if (has_totag()) {{\n    if (loose_route()) {{ t_relay(); exit; }}\n    \
         sl_send_reply(404, \"Not here\");\n    exit;\n  }}\n  t_check_trans();\n  \
         record_route();\n  $ru = \"sip:bob@127.0.0.1:{tp};transport=tcp\";\n  t_relay();\n}}\n"
    ));
    let addr: SocketAddr = format!("127.0.0.1:{up}").parse().unwrap();
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    uac.send_to(&request("INVITE", "sip:bob@127.0.0.1", port, "br1"), addr)
        .unwrap();
    let recv_tcp = || rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let (inv, mut conn) = recv_tcp();
    assert_eq!(inv.method(), Some(Method::Invite));
    assert!(
        inv.via1().unwrap().raw().starts_with(b"SIP/2.0/TCP"),
        "{:?}",
        String::from_utf8_lossy(inv.raw())
    );
    let rr: Vec<String> = inv
        .headers_named(b"Record-Route")
        .map(|h| String::from_utf8_lossy(inv.value(h)).into_owned())
        .collect();
    assert_eq!(rr.len(), 2, "one Record-Route per socket: {rr:?}");
    assert!(
        rr[0].contains(&format!(":{tcp}")) && rr[0].contains("transport=tcp"),
        "{rr:?}"
    );
    assert!(rr[1].contains(&format!(":{up}")), "{rr:?}");
    // The callee answers over its connection, with a Contact on TCP.
    let mut ok = Vec::new();
    let contact = format!("Contact: <sip:bob@127.0.0.1:{tp};transport=tcp>\r\n");
    let opts = ReplyOpts {
        to_tag: Some(b"uastag"),
        extra_headers: contact.as_bytes(),
        ..ReplyOpts::default()
    };
    build_reply(&inv, 200, b"OK", &opts, &mut ok).unwrap();
    conn.write_all(&ok).unwrap();
    let fin = recv_skip_100(&uac);
    assert_eq!(fin.status(), Some(200));
    let rr_up: Vec<String> = fin
        .headers_named(b"Record-Route")
        .map(|h| String::from_utf8_lossy(fin.value(h)).into_owned())
        .collect();
    assert_eq!(rr_up, rr, "the Record-Routes come back unchanged");
    // ACK and BYE from the caller, routed by the two entries (RFC 3261 §12.1.2: the UAC's
    // route set is the Record-Route list in order).
    let in_dialog = |method: &str, branch: &str, cseq: u32| {
        let routes: String = rr.iter().map(|r| format!("Route: {r}\r\n")).collect();
        format!(
            "{method} sip:bob@127.0.0.1:{tp};transport=tcp SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch};rport\r\n{routes}\
             Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\n\
             To: <sip:bob@127.0.0.1>;tag=uastag\r\nCall-ID: br1@test\r\nCSeq: {cseq} {method}\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    uac.send_to(in_dialog("ACK", "br1ack", 1).as_bytes(), addr)
        .unwrap();
    let (ack, _) = recv_tcp();
    assert_eq!(ack.method(), Some(Method::Ack));
    assert_eq!(
        ack.headers_named(b"Route").count(),
        0,
        "both entries consumed"
    );
    uac.send_to(in_dialog("BYE", "br1bye", 2).as_bytes(), addr)
        .unwrap();
    let (bye, mut bconn) = recv_tcp();
    assert_eq!(bye.method(), Some(Method::Bye));
    assert_eq!(bye.headers_named(b"Route").count(), 0);
    let mut ok = Vec::new();
    build_reply(&bye, 200, b"OK", &ReplyOpts::default(), &mut ok).unwrap();
    bconn.write_all(&ok).unwrap();
    let m = recv_skip_100(&uac);
    assert_eq!(
        (m.status(), m.cseq().unwrap().method()),
        (Some(200), Method::Bye)
    );
}

#[test]
fn t_cancel_branch_others_and_all() {
    // "o": the 183 of one branch cancels the other; "a": a 180 cancels every branch.
    for (flags, code, cancelled) in [("o", 183, [false, true]), ("a", 180, [true, true])] {
        let uas1 = udp();
        let uas2 = udp();
        let p1 = uas1.local_addr().unwrap().port();
        let p2 = uas2.local_addr().unwrap().port();
        let (_s, addr) = start(&tm_cfg(
            "",
            &format!(
                "  append_branch(\"sip:bob@127.0.0.1:{p2}\");\n  t_on_reply(\"r\");\n  t_relay();\n}}\n\
                 onreply_route[r] {{\n  if ($T_branch_idx == 0 && t_check_status(\"18[0-9]\")) \
                 t_cancel_branch(\"{flags}\");"
            ),
        ));
        let uac = udp();
        let port = uac.local_addr().unwrap().port();
        let ruri = format!("sip:bob@127.0.0.1:{p1}");
        uac.send_to(
            &request("INVITE", &ruri, port, &format!("cbo{flags}")),
            addr,
        )
        .unwrap();
        let (inv1, from1) = recv_from(&uas1);
        let (inv2, from2) = recv_from(&uas2);
        // Both branches are in Proceeding before the one that triggers the cancel.
        answer(&uas2, &inv2, from2, 180, "Ringing");
        assert_eq!(recv_skip_100(&uac).status(), Some(180));
        answer(&uas1, &inv1, from1, code, "Progress");
        for (i, (uas, want)) in [&uas1, &uas2].into_iter().zip(cancelled).enumerate() {
            uas.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut buf = vec![0u8; 65_535];
            let got = uas.recv_from(&mut buf).ok().map(|(n, _)| {
                SipMsg::parse(Bytes::copy_from_slice(&buf[..n]))
                    .unwrap()
                    .method()
            });
            assert_eq!(
                got == Some(Some(Method::Cancel)),
                want,
                "flags {flags:?}, branch {i}: {got:?}"
            );
        }
    }
}

// ----- DNS failover, t_relay flags, timers and matching modparams -----

/// `request()` with extra header lines (each ending in CRLF) before Content-Length.
fn request_with(method: &str, ruri: &str, port: u16, branch: &str, extra: &str) -> Vec<u8> {
    let r = String::from_utf8(request(method, ruri, port, branch)).unwrap();
    r.replace(
        "Content-Length: 0\r\n",
        &format!("{extra}Content-Length: 0\r\n"),
    )
    .into_bytes()
}

/// `fo.test` resolves (RFC 3263, SRV) to two UDP targets on loopback: `a.fo.test:p1` at
/// priority 1, then `b.fo.test:p2` at priority 2.
fn two_srv_targets(s: &sipox_core::Server, p1: u16, p2: u16) {
    let mut t = sipox_dns::StaticResolver::new();
    t.add_srv("_sip._udp.fo.test", 1, 10, p1, "a.fo.test")
        .add_srv("_sip._udp.fo.test", 2, 10, p2, "b.fo.test")
        .add_ip("a.fo.test", "127.0.0.1".parse().unwrap())
        .add_ip("b.fo.test", "127.0.0.1".parse().unwrap());
    assert!(s.runtime.set_resolver(std::sync::Arc::new(t)));
}

/// Nothing arrives on `s` for `ms` milliseconds.
fn silent(s: &UdpSocket, ms: u64) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(ms))).unwrap();
    let mut buf = [0u8; 4096];
    let quiet = s.recv_from(&mut buf).is_err();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    quiet
}

#[test]
fn dns_failover_to_the_next_srv_target_on_503_and_on_timeout() {
    let uas1 = udp();
    let uas2 = udp();
    let p1 = uas1.local_addr().unwrap().port();
    let p2 = uas2.local_addr().unwrap().port();
    let (s, addr) = start(&tm_cfg(
        "modparam(\"tm\", \"fr_timeout\", 1)",
        "  t_check_trans();\n  t_on_failure(\"f\");\n  \
         if ($rU == \"nofo\") t_relay(\"no-dns-failover\");\n  else t_relay();\n}\n\
         failure_route[f] {\n  if ($rU == \"fr\") t_reply(599, \"Failure Route\");",
    ));
    two_srv_targets(&s, p1, p2);
    let uac = udp();
    let port = uac.local_addr().unwrap().port();

    // 1. The first target answers 503: acknowledged, and the request goes to the second.
    uac.send_to(&request("INVITE", "sip:bob@fo.test", port, "dfo1"), addr)
        .unwrap();
    let (inv1, from1) = recv_from(&uas1);
    assert_eq!(inv1.method(), Some(Method::Invite));
    answer(&uas1, &inv1, from1, 503, "Service Unavailable");
    let (ack, _) = recv_from(&uas1);
    assert_eq!(ack.method(), Some(Method::Ack));
    let (inv2, from2) = recv_from(&uas2);
    assert_eq!(inv2.method(), Some(Method::Invite));
    assert_eq!(inv2.ruri_raw(), b"sip:bob@fo.test");
    assert_eq!(inv2.call_id(), inv1.call_id());
    assert_ne!(
        inv2.via1().unwrap().branch(),
        inv1.via1().unwrap().branch(),
        "a new branch"
    );
    assert_eq!(inv2.vias().count(), 2, "our Via and the caller's");
    answer(&uas2, &inv2, from2, 200, "OK");
    let ok = recv_skip_100(&uac);
    assert_eq!(
        ok.status(),
        Some(200),
        "the call completes via the second target"
    );

    // 2. The first target never answers: after fr_timeout the second one gets it.
    uac.send_to(&request("INVITE", "sip:bob@fo.test", port, "dfo2"), addr)
        .unwrap();
    let (inv1, _) = recv_from(&uas1);
    assert_eq!(inv1.method(), Some(Method::Invite));
    let (inv2, from2) = recv_from(&uas2);
    assert_eq!(inv2.method(), Some(Method::Invite));
    assert_eq!(inv2.call_id(), Some(&b"dfo2@test"[..]));
    answer(&uas2, &inv2, from2, 200, "OK");
    assert_eq!(recv_skip_100(&uac).status(), Some(200));
    // (drain the first target's retransmissions of the timed-out branch)
    while !silent(&uas1, 300) {}

    // 3. Both targets fail: only then the failure route runs.
    uac.send_to(&request("INVITE", "sip:fr@fo.test", port, "dfo3"), addr)
        .unwrap();
    let (inv1, from1) = recv_from(&uas1);
    answer(&uas1, &inv1, from1, 503, "Service Unavailable");
    assert_eq!(recv_from(&uas1).0.method(), Some(Method::Ack));
    let (inv2, from2) = recv_from(&uas2);
    answer(&uas2, &inv2, from2, 503, "Service Unavailable");
    assert_eq!(recv_from(&uas2).0.method(), Some(Method::Ack));
    let r = recv_skip_100(&uac);
    assert_eq!(r.status(), Some(599), "the failure route answered");
    assert!(silent(&uas1, 300) && silent(&uas2, 10), "no third attempt");

    // 4. t_relay("no-dns-failover"): the 503 is final (relayed as 500, RFC 3261 §16.7).
    uac.send_to(&request("INVITE", "sip:nofo@fo.test", port, "dfo4"), addr)
        .unwrap();
    let (inv1, from1) = recv_from(&uas1);
    answer(&uas1, &inv1, from1, 503, "Service Unavailable");
    assert_eq!(recv_from(&uas1).0.method(), Some(Method::Ack));
    assert_eq!(recv_skip_100(&uac).status(), Some(500));
    assert!(silent(&uas2, 500), "the second target is not tried");
}

#[test]
fn disable_dns_failover_core_parameter_and_numeric_t_relay_flags() {
    let uas1 = udp();
    let uas2 = udp();
    let p1 = uas1.local_addr().unwrap().port();
    let p2 = uas2.local_addr().unwrap().port();
    let (s, addr) = start(&tm_cfg("disable_dns_failover = yes", "  t_relay();"));
    two_srv_targets(&s, p1, p2);
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    uac.send_to(&request("INVITE", "sip:bob@fo.test", port, "ddf1"), addr)
        .unwrap();
    let (inv1, from1) = recv_from(&uas1);
    answer(&uas1, &inv1, from1, 503, "Service Unavailable");
    assert_eq!(recv_from(&uas1).0.method(), Some(Method::Ack));
    assert_eq!(recv_skip_100(&uac).status(), Some(500));
    assert!(silent(&uas2, 500), "no failover when disabled globally");

    // The old numeric flag 0x04 is no-dns-failover; 0x02 (no-auto-477) still works.
    let (s, addr) = start(&tm_cfg("", "  t_relay(\"0x06\");"));
    two_srv_targets(&s, p1, p2);
    uac.send_to(&request("INVITE", "sip:bob@fo.test", port, "ddf2"), addr)
        .unwrap();
    let (inv1, from1) = recv_from(&uas1);
    answer(&uas1, &inv1, from1, 503, "Service Unavailable");
    assert_eq!(recv_from(&uas1).0.method(), Some(Method::Ack));
    assert_eq!(recv_skip_100(&uac).status(), Some(500));
    assert!(silent(&uas2, 500), "no failover with 0x04");
}

#[test]
fn unknown_t_relay_flag_is_a_load_error() {
    let dir = std::env::temp_dir().join(format!("sipox-tm-badflag-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.cfg");
    std::fs::write(&path, tm_cfg("", "  t_relay(\"no-such-flag\");")).unwrap();
    let Err(err) = sipox_core::Server::start(&path, None, &[]) else {
        panic!("the script must not load");
    };
    assert!(err.to_string().contains("no-such-flag"), "{err}");
}

#[test]
fn pass_reason_hdr_puts_the_cancels_reason_on_the_branch_cancel() {
    let uas = udp();
    let p = uas.local_addr().unwrap().port();
    let (_s, addr) = start(&tm_cfg(
        "",
        "  if (is_method(\"CANCEL\")) {\n    if (!t_check_trans()) exit;\n    \
         if ($rU == \"pass\") t_relay(\"pass-reason-hdr\");\n    else t_relay();\n    exit;\n  }\n  \
         t_check_trans();\n  t_relay();",
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    let reason = "Reason: SIP;cause=200;text=\"Call completed elsewhere\"\r\n";
    for (user, passed) in [("pass", true), ("keep", false)] {
        let ruri = format!("sip:{user}@127.0.0.1:{p}");
        let b = format!("prh{user}");
        uac.send_to(&request("INVITE", &ruri, port, &b), addr)
            .unwrap();
        let (inv, from) = recv_from(&uas);
        answer(&uas, &inv, from, 180, "Ringing");
        assert_eq!(recv_skip_100(&uac).status(), Some(180));
        uac.send_to(&request_with("CANCEL", &ruri, port, &b, reason), addr)
            .unwrap();
        let (cancel, cfrom) = recv_from(&uas);
        assert_eq!(cancel.method(), Some(Method::Cancel));
        let got = header(&cancel, "Reason");
        if passed {
            assert_eq!(
                got.as_deref(),
                Some("SIP;cause=200;text=\"Call completed elsewhere\"")
            );
        } else {
            assert_ne!(
                got.as_deref(),
                Some("SIP;cause=200;text=\"Call completed elsewhere\""),
                "without the flag the CANCEL's Reason stays here"
            );
        }
        answer(&uas, &cancel, cfrom, 200, "OK");
        answer(&uas, &inv, from, 487, "Request Terminated");
        assert_eq!(recv_from(&uas).0.method(), Some(Method::Ack));
        // the caller: 200 for its CANCEL, then the 487
        let mut codes = vec![recv_skip_100(&uac).status(), recv_skip_100(&uac).status()];
        codes.sort();
        assert_eq!(codes, vec![Some(200), Some(487)]);
    }
}

#[test]
fn allow_no_cancel_keeps_other_branches_after_a_2xx_when_asked() {
    let uas1 = udp();
    let uas2 = udp();
    let p1 = uas1.local_addr().unwrap().port();
    let p2 = uas2.local_addr().unwrap().port();
    let (_s, addr) = start(&tm_cfg(
        "",
        &format!("  append_branch(\"sip:bob@127.0.0.1:{p2}\");\n  t_relay(\"allow-no-cancel\");"),
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    let ruri = format!("sip:bob@127.0.0.1:{p1}");
    uac.send_to(
        &request_with(
            "INVITE",
            &ruri,
            port,
            "anc1",
            "Request-Disposition: no-cancel\r\n",
        ),
        addr,
    )
    .unwrap();
    let (inv1, from1) = recv_from(&uas1);
    let (inv2, from2) = recv_from(&uas2);
    answer(&uas2, &inv2, from2, 180, "Ringing");
    assert_eq!(recv_skip_100(&uac).status(), Some(180));
    answer(&uas1, &inv1, from1, 200, "OK");
    assert_eq!(recv_skip_100(&uac).status(), Some(200));
    assert!(silent(&uas2, 700), "no CANCEL for the other branch");
    // Its own 2xx still reaches the caller.
    let mut out = Vec::new();
    let opts = ReplyOpts {
        to_tag: Some(b"uas2tag"),
        ..ReplyOpts::default()
    };
    build_reply(&inv2, 200, b"OK", &opts, &mut out).unwrap();
    uas2.send_to(&out, from2).unwrap();
    let ok2 = recv_skip_100(&uac);
    assert_eq!(ok2.status(), Some(200));
    assert_eq!(ok2.to().unwrap().tag(), Some(&b"uas2tag"[..]));

    // Without the Request-Disposition the flag changes nothing: the 2xx cancels the other.
    uac.send_to(&request("INVITE", &ruri, port, "anc2"), addr)
        .unwrap();
    let (inv1, from1) = recv_from(&uas1);
    let (inv2, from2) = recv_from(&uas2);
    answer(&uas2, &inv2, from2, 180, "Ringing");
    answer(&uas1, &inv1, from1, 200, "OK");
    let (cancel, _) = loop {
        let m = recv_from(&uas2);
        if m.0.method() == Some(Method::Cancel) {
            break m;
        }
    };
    assert_eq!(
        cancel.via1().unwrap().branch(),
        inv2.via1().unwrap().branch()
    );
}

#[test]
fn wt_timer_is_how_long_a_completed_non_invite_transaction_absorbs_retransmissions() {
    let uas = udp();
    let p = uas.local_addr().unwrap().port();
    let (_s, addr) = start(&tm_cfg(
        "modparam(\"tm\", \"wt_timer\", 1)\nmodparam(\"tm\", \"delete_timer\", 5)",
        "  t_check_trans();\n  t_relay();",
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    let opts = request("OPTIONS", &format!("sip:bob@127.0.0.1:{p}"), port, "wt1");
    uac.send_to(&opts, addr).unwrap();
    let (req, from) = recv_from(&uas);
    assert_eq!(req.method(), Some(Method::Options));
    answer(&uas, &req, from, 200, "OK");
    assert_eq!(recv_from(&uac).0.status(), Some(200));
    // Within wt_timer: the retransmission gets the 200 again from the transaction.
    uac.send_to(&opts, addr).unwrap();
    assert_eq!(recv_from(&uac).0.status(), Some(200));
    assert!(silent(&uas, 300), "absorbed by the completed transaction");
    // After wt_timer (1 s, not 64*T1) the transaction is gone: the same request is new.
    std::thread::sleep(Duration::from_millis(1200));
    uac.send_to(&opts, addr).unwrap();
    let (again, _) = recv_from(&uas);
    assert_eq!(again.method(), Some(Method::Options));
}

#[test]
fn enable_stats_0_registers_no_tm_statistics() {
    for (enable, expect) in [(0, false), (1, true)] {
        let uas = udp();
        let p = uas.local_addr().unwrap().port();
        let (s, addr) = start(&tm_cfg(
            &format!(
                "loadmodule \"httpd.so\"\nloadmodule \"mi_http.so\"\n\
                 modparam(\"httpd\", \"ip\", \"127.0.0.1\")\nmodparam(\"httpd\", \"port\", 0)\n\
                 modparam(\"tm\", \"enable_stats\", {enable})"
            ),
            "  t_relay();",
        ));
        let uac = udp();
        let port = uac.local_addr().unwrap().port();
        let b = format!("es{enable}");
        uac.send_to(
            &request("OPTIONS", &format!("sip:bob@127.0.0.1:{p}"), port, &b),
            addr,
        )
        .unwrap();
        let (req, from) = recv_from(&uas);
        answer(&uas, &req, from, 200, "OK");
        assert_eq!(recv_from(&uac).0.status(), Some(200));
        let http = s.http_addr().expect("httpd started");
        let st = super::registrar::mi_call(http, "get_statistics", r#"{"statistics":["all"]}"#);
        let obj = st.as_object().expect("statistics object");
        assert!(obj.contains_key("core:rcv_requests"), "{st}");
        let tm: Vec<&String> = obj.keys().filter(|k| k.starts_with("tm:")).collect();
        if expect {
            assert_eq!(st["tm:UAS_transactions"], 1, "{st}");
            assert_eq!(st["tm:relayed_replies"], 1, "{st}");
        } else {
            assert!(tm.is_empty(), "enable_stats=0 but {tm:?}");
        }
    }
}

/// An RFC 2543 INVITE (no magic cookie in the branch).
fn rfc2543_invite(ruri: &str, port: u16, via_params: &str) -> Vec<u8> {
    format!(
        "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=old2543{via_params}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\n\
         Call-ID: m2543@test\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn ruri_and_via1_matching_off_match_rfc2543_retransmissions_with_other_ruri_and_via() {
    for (params, absorbed) in [
        (
            "modparam(\"tm\", \"ruri_matching\", 0)\nmodparam(\"tm\", \"via1_matching\", 0)",
            true,
        ),
        ("", false),
    ] {
        let uas = udp();
        let p = uas.local_addr().unwrap().port();
        let (_s, addr) = start(&tm_cfg(params, "  t_check_trans();\n  t_relay();"));
        let uac = udp();
        let port = uac.local_addr().unwrap().port();
        uac.send_to(
            &rfc2543_invite(&format!("sip:bob@127.0.0.1:{p}"), port, ";rport"),
            addr,
        )
        .unwrap();
        let (inv, from) = recv_from(&uas);
        answer(&uas, &inv, from, 180, "Ringing");
        assert_eq!(recv_skip_100(&uac).status(), Some(180));
        // A "retransmission" from a broken client: other R-URI, other top Via.
        uac.send_to(
            &rfc2543_invite(&format!("sip:bob@127.0.0.1:{p};x=1"), port, ""),
            addr,
        )
        .unwrap();
        if absorbed {
            assert_eq!(
                recv_skip_100(&uac).status(),
                Some(180),
                "the transaction's last reply again"
            );
            assert!(silent(&uas, 500), "no second branch");
        } else {
            let (inv2, _) = recv_from(&uas);
            assert_eq!(inv2.method(), Some(Method::Invite), "a new transaction");
            assert_eq!(
                inv2.ruri_raw(),
                format!("sip:bob@127.0.0.1:{p};x=1").as_bytes()
            );
        }
    }
}

#[test]
fn dns_failover_after_a_refused_tcp_connect() {
    use std::io::Write;
    use std::net::TcpListener;

    // The first target: a TCP port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The second: a TCP callee; every message read (with its connection) goes to `rx`.
    let (tp, rx) = tcp_callee();
    let (up, tcp) = (free_port(false), free_port(false));
    let s = server(&format!(
        "socket = udp:127.0.0.1:{up}\nsocket = tcp:127.0.0.1:{tcp}\n\
         loadmodule \"tm.so\"\nloadmodule \"sl.so\"\nmodparam(\"tm\", \"fr_timeout\", 20)\n\
         route {{\n  t_check_trans();\n  t_relay();\n}}\n"
    ));
    let mut t = sipox_dns::StaticResolver::new();
    t.add_srv("_sip._tcp.fo.test", 1, 10, closed, "a.fo.test")
        .add_srv("_sip._tcp.fo.test", 2, 10, tp, "b.fo.test")
        .add_ip("a.fo.test", "127.0.0.1".parse().unwrap())
        .add_ip("b.fo.test", "127.0.0.1".parse().unwrap());
    assert!(s.runtime.set_resolver(std::sync::Arc::new(t)));
    let addr: SocketAddr = format!("127.0.0.1:{up}").parse().unwrap();
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    uac.send_to(
        &request("INVITE", "sip:bob@fo.test;transport=tcp", port, "tfo1"),
        addr,
    )
    .unwrap();
    // Well before fr_timeout: the refused connect fails the branch (503) at once.
    let (inv, mut conn) = rx.recv_timeout(Duration::from_secs(3)).unwrap();
    assert_eq!(inv.method(), Some(Method::Invite));
    assert!(inv.via1().unwrap().raw().starts_with(b"SIP/2.0/TCP"));
    let mut ok = Vec::new();
    let opts = ReplyOpts {
        to_tag: Some(b"tcptag"),
        ..ReplyOpts::default()
    };
    build_reply(&inv, 200, b"OK", &opts, &mut ok).unwrap();
    conn.write_all(&ok).unwrap();
    let r = recv_skip_100(&uac);
    assert_eq!(r.status(), Some(200));
    assert_eq!(r.to().unwrap().tag(), Some(&b"tcptag"[..]));
}

#[test]
fn t_reply_with_body_sends_a_stateful_reply_with_the_body() {
    let (_s, addr) = start(&tm_cfg(
        "",
        "  if ($rU != \"untyped\")\n    \
         append_to_reply(\"Content-Type: application/sdp\\r\\nX-Extra: 1\\r\\n\");\n  \
         t_reply_with_body(200, \"OK Body\", \"v=0\\r\\ns=sipox\\r\\n\");",
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    let req = request("OPTIONS", "sip:bob@127.0.0.1", port, "rwb1");
    uac.send_to(&req, addr).unwrap();
    let (r, _) = recv_from(&uac);
    assert_eq!(r.status(), Some(200));
    assert_eq!(r.reason(), b"OK Body");
    assert_eq!(
        header(&r, "Content-Type").as_deref(),
        Some("application/sdp")
    );
    assert_eq!(header(&r, "X-Extra").as_deref(), Some("1"));
    assert_eq!(r.body(), b"v=0\r\ns=sipox\r\n");
    assert_eq!(header(&r, "Content-Length").as_deref(), Some("14"));
    assert!(header(&r, "To").unwrap().contains(";tag="));
    // Stateful: the retransmission gets the same reply again (same To tag).
    uac.send_to(&req, addr).unwrap();
    let (r2, _) = recv_from(&uac);
    assert_eq!(r2.raw(), r.raw());
    // Without a Content-Type from append_to_reply the body goes untyped (as OpenSIPS).
    let req = request("OPTIONS", "sip:untyped@127.0.0.1", port, "rwb2");
    uac.send_to(&req, addr).unwrap();
    let (r, _) = recv_from(&uac);
    assert_eq!(r.status(), Some(200));
    assert_eq!(header(&r, "Content-Type"), None);
    assert_eq!(r.body(), b"v=0\r\ns=sipox\r\n");
}

#[test]
fn branch_pvs_t_ruri_last_reply_code_and_bavp_follow_their_branch() {
    // Two parallel branches; the branch route gives each a $bavp(who); the onreply route
    // shows the branch's $bavp and last reply code and records one more $bavp; the failure
    // route sees the winning (486) branch's R-URI, last code and branch AVPs.
    let uas1 = udp();
    let uas2 = udp();
    let p1 = uas1.local_addr().unwrap().port();
    let p2 = uas2.local_addr().unwrap().port();
    let (_s, addr) = start(&tm_cfg(
        "",
        &format!(
            "  $bavp(who) = \"request\";\n  append_hf(\"X-Bavp: $bavp(who)\\r\\n\");\n  \
             append_branch(\"sip:carol@127.0.0.1:{p2}\");\n  t_on_branch(\"b\");\n  \
             t_on_reply(\"r\");\n  t_on_failure(\"f\");\n  t_relay();\n}}\n\
             branch_route[b] {{\n  $bavp(who) = $rU;\n}}\n\
             onreply_route[r] {{\n  \
             append_hf(\"X-Last: $T_branch_last_reply_code who=$bavp(who) $T_ruri\\r\\n\");\n  \
             $bavp(seen) = $T_branch_last_reply_code;\n}}\n\
             failure_route[f] {{\n  \
             t_reply(599, \"idx=$T_branch_idx ruri=$T_ruri last=$T_branch_last_reply_code \
             who=$bavp(who) seen=$bavp(seen)\");"
        ),
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    let ruri = format!("sip:bob@127.0.0.1:{p1}");
    uac.send_to(&request("INVITE", &ruri, port, "bpv1"), addr)
        .unwrap();
    let (inv1, from1) = recv_from(&uas1);
    let (inv2, from2) = recv_from(&uas2);
    // $bavp is for branch, reply and failure routes only.
    assert_eq!(header(&inv1, "X-Bavp").as_deref(), Some("<null>"));
    answer(&uas1, &inv1, from1, 180, "Ringing");
    let r = recv_skip_100(&uac);
    assert_eq!(r.status(), Some(180));
    assert_eq!(header(&r, "X-Last"), Some(format!("180 who=bob {ruri}")));
    answer(&uas2, &inv2, from2, 183, "Progress");
    let r = recv_skip_100(&uac);
    assert_eq!(r.status(), Some(183));
    assert_eq!(
        header(&r, "X-Last"),
        Some(format!("183 who=carol sip:carol@127.0.0.1:{p2}"))
    );
    answer(&uas2, &inv2, from2, 503, "Unavailable");
    answer(&uas1, &inv1, from1, 486, "Busy Here");
    let fin = recv_skip_100(&uac);
    assert_eq!(fin.status(), Some(599));
    assert_eq!(
        String::from_utf8_lossy(fin.reason()),
        format!("idx=0 ruri={ruri} last=486 who=bob seen=486")
    );
}

#[test]
#[allow(clippy::disallowed_methods)] // the test measures the timeout
fn t_fr_timeout_pvs_read_and_set_the_transactions_timers() {
    let uas = udp();
    let p = uas.local_addr().unwrap().port();
    let (_s, addr) = start(&tm_cfg(
        "modparam(\"tm\", \"fr_timeout\", 10)\nmodparam(\"tm\", \"fr_inv_timeout\", 60)",
        "  append_hf(\"X-Before: $T_fr_timeout/$T_fr_inv_timeout\\r\\n\");\n  \
         $T_fr_inv_timeout = 1;\n  t_newtran();\n  $T_fr_timeout = 3;\n  \
         append_hf(\"X-After: $T_fr_timeout/$T_fr_inv_timeout\\r\\n\");\n  t_relay();",
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    let ruri = format!("sip:bob@127.0.0.1:{p}");
    uac.send_to(&request("INVITE", &ruri, port, "frt1"), addr)
        .unwrap();
    let (inv, from) = recv_from(&uas);
    assert_eq!(header(&inv, "X-Before").as_deref(), Some("10/60"));
    assert_eq!(header(&inv, "X-After").as_deref(), Some("3/1"));
    let t0 = Instant::now();
    answer(&uas, &inv, from, 180, "Ringing");
    assert_eq!(recv_skip_100(&uac).status(), Some(180));
    // fr_inv of this transaction: 1 s, not 60.
    let r = recv_skip_100(&uac);
    assert_eq!(r.status(), Some(408));
    let e = t0.elapsed();
    assert!(
        e >= Duration::from_millis(900) && e < Duration::from_secs(3),
        "{e:?}"
    );
    let (cancel, _) = recv_from(&uas);
    assert_eq!(cancel.method(), Some(Method::Cancel));
}

#[test]
#[allow(clippy::disallowed_methods)] // the test measures the timeout
fn restart_fr_on_each_reply_decides_whether_provisionals_restart_fr_inv() {
    for restart in [0, 1] {
        let uas = udp();
        let p = uas.local_addr().unwrap().port();
        let (_s, addr) = start(&tm_cfg(
            &format!(
                "modparam(\"tm\", \"fr_inv_timeout\", 2)\n\
                 modparam(\"tm\", \"restart_fr_on_each_reply\", {restart})"
            ),
            "  t_relay();",
        ));
        let uac = udp();
        let port = uac.local_addr().unwrap().port();
        let ruri = format!("sip:bob@127.0.0.1:{p}");
        uac.send_to(
            &request("INVITE", &ruri, port, &format!("rfr{restart}")),
            addr,
        )
        .unwrap();
        let (inv, from) = recv_from(&uas);
        let t0 = Instant::now();
        answer(&uas, &inv, from, 180, "Ringing");
        assert_eq!(recv_skip_100(&uac).status(), Some(180));
        // The same 180 again: only restart_fr_on_each_reply restarts fr_inv for it (with 0,
        // only a higher provisional code would).
        std::thread::sleep(Duration::from_millis(1500).saturating_sub(t0.elapsed()));
        answer(&uas, &inv, from, 180, "Ringing");
        assert_eq!(recv_skip_100(&uac).status(), Some(180));
        let r = recv_skip_100(&uac);
        assert_eq!(r.status(), Some(408));
        let e = t0.elapsed();
        if restart == 0 {
            // 2 s after the 180.
            assert!(
                e >= Duration::from_millis(1900) && e < Duration::from_millis(2900),
                "{e:?}"
            );
        } else {
            // 2 s after the second 180.
            assert!(e >= Duration::from_millis(3400), "{e:?}");
        }
    }
}

#[test]
fn onreply_avp_mode_keeps_or_discards_reply_route_avp_changes() {
    for (mode, expect) in [(0, "n=0"), (1, "n=3")] {
        let uas = udp();
        let p = uas.local_addr().unwrap().port();
        let (_s, addr) = start(&tm_cfg(
            &format!("modparam(\"tm\", \"onreply_avp_mode\", {mode})"),
            "  $avp(n) = 0;\n  t_on_reply(\"r\");\n  t_on_failure(\"f\");\n  t_relay();\n}\n\
             onreply_route[r] {\n  $avp(n) = $avp(n) + 1;\n}\n\
             failure_route[f] {\n  t_reply(599, \"n=$avp(n)\");",
        ));
        let uac = udp();
        let port = uac.local_addr().unwrap().port();
        let ruri = format!("sip:bob@127.0.0.1:{p}");
        uac.send_to(&request("INVITE", &ruri, port, &format!("oam{mode}")), addr)
            .unwrap();
        let (inv, from) = recv_from(&uas);
        answer(&uas, &inv, from, 180, "Ringing");
        assert_eq!(recv_skip_100(&uac).status(), Some(180));
        answer(&uas, &inv, from, 183, "Progress");
        assert_eq!(recv_skip_100(&uac).status(), Some(183));
        answer(&uas, &inv, from, 486, "Busy Here");
        let fin = recv_skip_100(&uac);
        assert_eq!(fin.status(), Some(599));
        assert_eq!(fin.reason(), expect.as_bytes(), "mode {mode}");
    }
}

#[test]
#[allow(clippy::disallowed_methods)] // the MI call's clock
fn t_new_request_and_mi_t_uac_dlg_go_through_local_route() {
    let uas = udp();
    let p = uas.local_addr().unwrap().port();
    let (s, addr) = start(&tm_cfg(
        "",
        &format!(
            "  if ($rU == \"drop\") $var(u) = \"dropme\"; else $var(u) = \"alice\";\n  \
             if (t_new_request(\"MESSAGE\", \"sip:$var(u)@127.0.0.1:{p}\", \
             \"BOB sip:bob@sipox.test\", \"sip:alice@sipox.test\", \
             \"text/plain Hello Alice!\", \"ctx-$si\"))\n    \
             sl_send_reply(200, \"Sent\");\n  else\n    sl_send_reply(500, \"Not sent\");\n}}\n\
             local_route {{\n  if ($rU == \"dropme\") drop;\n  \
             if ($rm == \"MESSAGE\") t_new_request(\"NOTIFY\", \"sip:copy@127.0.0.1:{p}\", \
             \"sip:a@sipox.test\", \"sip:b@sipox.test\");\n  \
             append_hf(\"X-Local: $rm $avp(uac_ctx)\\r\\n\");"
        ),
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    uac.send_to(&request("OPTIONS", "sip:go@127.0.0.1", port, "tnr1"), addr)
        .unwrap();
    // A request made in local_route goes out without running local_route again.
    let (n, nfrom) = recv_from(&uas);
    assert_eq!(n.method(), Some(Method::Notify));
    assert_eq!(n.ruri_raw(), format!("sip:copy@127.0.0.1:{p}").as_bytes());
    assert_eq!(header(&n, "X-Local"), None);
    answer(&uas, &n, nfrom, 200, "OK");
    let (m, from) = recv_from(&uas);
    assert_eq!(m.method(), Some(Method::Message));
    assert_eq!(m.ruri_raw(), format!("sip:alice@127.0.0.1:{p}").as_bytes());
    let f = header(&m, "From").unwrap();
    assert!(f.starts_with("BOB <sip:bob@sipox.test>;tag="), "{f}");
    assert_eq!(header(&m, "To").as_deref(), Some("<sip:alice@sipox.test>"));
    assert_eq!(header(&m, "Content-Type").as_deref(), Some("text/plain"));
    assert_eq!(m.body(), b"Hello Alice!");
    assert_eq!(
        header(&m, "X-Local").as_deref(),
        Some("MESSAGE ctx-127.0.0.1")
    );
    assert!(m.call_id().is_some() && m.cseq().is_ok());
    let (r, _) = recv_from(&uac);
    assert_eq!(r.status(), Some(200));
    assert_eq!(r.reason(), b"Sent");
    // The UAS's reply ends at tm; no retransmission follows it.
    answer(&uas, &m, from, 200, "OK");
    uas.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut buf = [0u8; 4096];
    assert!(
        uas.recv_from(&mut buf).is_err(),
        "answered: no retransmission"
    );
    uac.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(uac.recv_from(&mut buf).is_err(), "the reply stays in tm");

    // local_route drops it: nothing is sent and t_new_request fails.
    uac.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    uac.send_to(
        &request("OPTIONS", "sip:drop@127.0.0.1", port, "tnr2"),
        addr,
    )
    .unwrap();
    let (r, _) = recv_from(&uac);
    assert_eq!(r.status(), Some(500));
    assert!(uas.recv_from(&mut buf).is_err(), "dropped in local_route");

    // MI t_uac_dlg requests go through local_route too.
    uas.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let call = std::thread::spawn(move || {
        s.mi.call(
            "t_uac_dlg",
            &serde_json::json!({
                "method": "OPTIONS",
                "ruri": format!("sip:bob@127.0.0.1:{p}"),
                "headers": "From: <sip:mi@sipox>\r\nTo: <sip:bob@example.com>\r\n",
            }),
            std::time::SystemTime::now(),
        )
    });
    let (req, from) = recv_from(&uas);
    assert_eq!(req.method(), Some(Method::Options));
    assert_eq!(header(&req, "X-Local").as_deref(), Some("OPTIONS <null>"));
    answer(&uas, &req, from, 200, "OK");
    let v = call.join().unwrap().unwrap();
    assert_eq!(v["Status"], "200 OK");
}

#[test]
#[allow(clippy::disallowed_methods)] // the test measures the timeout
fn t_fr_inv_timeout_set_in_the_onreply_route_applies_to_that_branch() {
    let uas = udp();
    let p = uas.local_addr().unwrap().port();
    let (_s, addr) = start(&tm_cfg(
        "modparam(\"tm\", \"fr_inv_timeout\", 60)",
        "  t_on_reply(\"r\");\n  t_relay();\n}\n\
         onreply_route[r] {\n  if (t_check_status(\"180\")) $T_fr_inv_timeout = 1;",
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    let ruri = format!("sip:bob@127.0.0.1:{p}");
    uac.send_to(&request("INVITE", &ruri, port, "frr1"), addr)
        .unwrap();
    let (inv, from) = recv_from(&uas);
    let t0 = Instant::now();
    answer(&uas, &inv, from, 180, "Ringing");
    assert_eq!(recv_skip_100(&uac).status(), Some(180));
    let r = recv_skip_100(&uac);
    assert_eq!(r.status(), Some(408));
    let e = t0.elapsed();
    assert!(
        e >= Duration::from_millis(900) && e < Duration::from_secs(3),
        "{e:?}"
    );
    let (cancel, _) = recv_from(&uas);
    assert_eq!(cancel.method(), Some(Method::Cancel));
}

#[test]
fn t_new_request_from_a_timer_route() {
    // Outside any SIP message: a timer route sends an OPTIONS ping of tm's own; the ping's
    // 200 stays in tm (the transaction ends instead of retransmitting).
    let uas = udp();
    let p = uas.local_addr().unwrap().port();
    let (_s, _addr) = start(&tm_cfg(
        &format!(
            "timer_route[ping, 1] {{\n  \
             t_new_request(\"OPTIONS\", \"sip:ping@127.0.0.1:{p}\", \"sip:sipox@sipox.test\", \
             \"sip:ping@sipox.test\");\n}}"
        ),
        "  exit;",
    ));
    let (req, from) = recv_from(&uas);
    assert_eq!(req.method(), Some(Method::Options));
    assert_eq!(req.ruri_raw(), format!("sip:ping@127.0.0.1:{p}").as_bytes());
    let first = req.via1().unwrap().branch().unwrap().to_vec();
    answer(&uas, &req, from, 200, "OK");
    // The next message is the next tick's new request, not a retransmission of the first.
    let (next, _) = recv_from(&uas);
    assert_eq!(next.method(), Some(Method::Options));
    assert_ne!(next.via1().unwrap().branch().unwrap(), &first[..]);
}

#[test]
#[allow(clippy::disallowed_methods)] // the test measures the timeout
fn fr_inv_timeout_starts_with_the_first_provisional() {
    // As OpenSIPS: a short fr_inv does not cut the wait for a first reply (fr_timeout).
    let uas = udp();
    let p = uas.local_addr().unwrap().port();
    let (_s, addr) = start(&tm_cfg(
        "modparam(\"tm\", \"fr_timeout\", 2)",
        "  $T_fr_inv_timeout = 1;\n  t_relay();",
    ));
    let uac = udp();
    let port = uac.local_addr().unwrap().port();
    let t0 = Instant::now();
    uac.send_to(
        &request("INVITE", &format!("sip:bob@127.0.0.1:{p}"), port, "fip1"),
        addr,
    )
    .unwrap();
    let r = recv_skip_100(&uac);
    assert_eq!(r.status(), Some(408));
    let e = t0.elapsed();
    assert!(e >= Duration::from_millis(1900), "{e:?}");
}

#[test]
fn t_relay_outbound_proxy_argument_sends_every_branch_there() {
    let uas = udp();
    let up = uas.local_addr().unwrap().port();
    let (_s, addr) = start(&format!(
        "socket = udp:127.0.0.1:0\nloadmodule \"tm.so\"\n\
         route {{ append_branch(\"sip:carol@example.invalid\"); t_relay(\"\", \"udp:127.0.0.1:{up}\"); exit; }}\n"
    ));
    let c = udp();
    let me = c.local_addr().unwrap().port();
    c.send_to(
        &request("OPTIONS", "sip:bob@example.invalid", me, "obp1"),
        addr,
    )
    .unwrap();
    // Both branches reach the proxy, each with its own R-URI untouched.
    let mut ruris: Vec<String> = (0..2)
        .map(|_| String::from_utf8_lossy(recv(&uas).ruri_raw()).into_owned())
        .collect();
    ruris.sort();
    assert_eq!(
        ruris,
        ["sip:bob@example.invalid", "sip:carol@example.invalid"]
    );
}

/// A TCP callee on loopback: its port, and every message it reads (with the connection it came
/// on, to answer through).
fn tcp_callee() -> (
    u16,
    std::sync::mpsc::Receiver<(SipMsg, std::net::TcpStream)>,
) {
    let lis = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tp = lis.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for c in lis.incoming() {
            let Ok(c) = c else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let w = c.try_clone().unwrap();
                let mut r = std::io::BufReader::new(c);
                while let Some(m) = read_sip(&mut r) {
                    if tx.send((m, w.try_clone().unwrap())).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (tp, rx)
}
