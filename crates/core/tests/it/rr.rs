//! rr module over loopback: Record-Route insertion (single, double, preset, parameters) and
//! loose routing of in-dialog requests between two user agents, including strict routers.

use std::net::SocketAddr;

use sipox_sip_msg::{HeaderKind, SipMsg};

use super::{recv, start, udp};

const MODS: &str = "loadmodule \"rr.so\"\nloadmodule \"sipmsgops.so\"\nloadmodule \"sl.so\"\n";

#[allow(clippy::too_many_arguments)]
fn msg(
    method: &str,
    ruri: &str,
    via_port: u16,
    branch: &str,
    from_tag: &str,
    to_tag: Option<&str>,
    routes: &[&str],
) -> Vec<u8> {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let mut route = String::new();
    for r in routes {
        route.push_str(&format!("Route: {r}\r\n"));
    }
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{via_port};branch=z9hG4bK{branch};rport\r\n\
{route}Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag={from_tag}\r\nTo: <sip:bob@127.0.0.1>{to_tag}\r\n\
Call-ID: rr-{branch}@test\r\nCSeq: 2 {method}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn values(m: &SipMsg, k: HeaderKind) -> Vec<String> {
    m.values(k)
        .map(|s| String::from_utf8_lossy(s.of(m.buf())).into_owned())
        .collect()
}

fn hdr(m: &SipMsg, name: &str) -> Option<String> {
    m.header_named(name.as_bytes())
        .map(|h| String::from_utf8_lossy(m.value(h)).into_owned())
}

/// The in-dialog script of a record-routing proxy (the default config's shape).
fn proxy_cfg(extra_mods: &str, uas_port: u16) -> String {
    format!(
        "socket = udp:127.0.0.1:0\n{MODS}{extra_mods}\
route {{\n\
  if (has_totag()) {{\n\
    if (loose_route()) {{\n\
      append_hf(\"X-RR: $rr_params\\r\\n\");\n\
      if (check_route_param(\"nat=yes\")) append_hf(\"X-Nat: yes\\r\\n\");\n\
      if (is_direction(\"downstream\")) append_hf(\"X-Dir: down\\r\\n\");\n\
      if (is_direction(\"upstream\")) append_hf(\"X-Dir: up\\r\\n\");\n\
      forward();\n\
      exit;\n\
    }}\n\
    sl_send_reply(404, \"Not here\");\n\
    exit;\n\
  }}\n\
  if (loose_route()) {{ sl_send_reply(403, \"Preloaded\"); exit; }}\n\
  if (is_method(\"INVITE\")) {{ record_route(); add_rr_param(\";nat=yes\"); }}\n\
  forward(\"sip:127.0.0.1:{uas_port}\");\n\
}}\n"
    )
}

#[test]
fn record_route_then_loose_route_both_directions() {
    let uas = udp();
    let uas_port = uas.local_addr().unwrap().port();
    let uac = udp();
    let uac_port = uac.local_addr().unwrap().port();
    let (_s, addr) = start(&proxy_cfg("", uas_port));
    let p = addr.port();

    // Initial INVITE: one Record-Route with our address, ftag and the added parameter.
    uac.send_to(
        &msg(
            "INVITE",
            "sip:bob@127.0.0.1",
            uac_port,
            "rr1",
            "a1",
            None,
            &[],
        ),
        addr,
    )
    .unwrap();
    let inv = recv(&uas);
    assert_eq!(
        values(&inv, HeaderKind::RecordRoute),
        [format!("<sip:127.0.0.1:{p};lr;ftag=a1;nat=yes>")]
    );
    // The Record-Route is the first header, before the Via we pushed.
    assert!(inv.raw().starts_with(
        format!("INVITE sip:bob@127.0.0.1 SIP/2.0\r\nRecord-Route: <sip:127.0.0.1:{p};lr;ftag=a1;nat=yes>\r\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=").as_bytes()
    ));

    // Caller's BYE: Route set = our RR then the callee's contact (loose).
    let our = format!("<sip:127.0.0.1:{p};lr;ftag=a1;nat=yes>");
    let callee = format!("<sip:127.0.0.1:{uas_port};lr>");
    uac.send_to(
        &msg(
            "BYE",
            &format!("sip:bob@127.0.0.1:{uas_port}"),
            uac_port,
            "rr2",
            "a1",
            Some("b1"),
            &[&format!("{our}, {callee}")],
        ),
        addr,
    )
    .unwrap();
    let bye = recv(&uas);
    assert_eq!(
        bye.ruri_raw(),
        format!("sip:bob@127.0.0.1:{uas_port}").as_bytes()
    );
    assert_eq!(values(&bye, HeaderKind::Route), [callee.as_str()]);
    assert_eq!(
        hdr(&bye, "Route").unwrap(),
        callee,
        "our value and its comma are gone"
    );
    assert_eq!(hdr(&bye, "X-RR").unwrap(), "lr;ftag=a1;nat=yes");
    assert_eq!(hdr(&bye, "X-Nat").as_deref(), Some("yes"));
    assert_eq!(hdr(&bye, "X-Dir").as_deref(), Some("down"));
    assert_eq!(bye.headers_named(b"X-Dir").count(), 1);

    // Callee's BYE (upstream): From is bob (tag b1), our Route is a header of its own.
    let up = format!(
        "BYE sip:alice@127.0.0.1:{uac_port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{uas_port};branch=z9hG4bKrr3;rport\r\n\
Route: {our}\r\nRoute: <sip:127.0.0.1:{uac_port};lr>\r\nMax-Forwards: 70\r\n\
From: <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>;tag=a1\r\nCall-ID: rr-rr1@test\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    uas.send_to(up.as_bytes(), addr).unwrap();
    let r = recv(&uac);
    assert_eq!(
        values(&r, HeaderKind::Route),
        [format!("<sip:127.0.0.1:{uac_port};lr>")]
    );
    assert_eq!(r.headers_of(HeaderKind::Route).count(), 1);
    assert_eq!(hdr(&r, "X-Dir").as_deref(), Some("up"));
}

#[test]
fn preloaded_own_route_is_removed_and_false() {
    let uas = udp();
    let uas_port = uas.local_addr().unwrap().port();
    let uac = udp();
    let uac_port = uac.local_addr().unwrap().port();
    let (_s, addr) = start(&format!(
        "socket = udp:127.0.0.1:0\n{MODS}route {{\n  if (loose_route()) {{ sl_send_reply(403, \"Routed\"); exit; }}\n  \
         append_hf(\"X-Rc: $rc\\r\\n\");\n  forward(\"sip:127.0.0.1:{uas_port}\");\n}}\n"
    ));
    let p = addr.port();
    uac.send_to(
        &msg(
            "INVITE",
            "sip:bob@example.com",
            uac_port,
            "pl1",
            "a1",
            None,
            &[&format!("<sip:127.0.0.1:{p};lr>")],
        ),
        addr,
    )
    .unwrap();
    let r = recv(&uas);
    assert_eq!(r.headers_of(HeaderKind::Route).count(), 0);
    assert_eq!(hdr(&r, "X-Rc").as_deref(), Some("-1"));
    // No Route at all: false too.
    uac.send_to(
        &msg(
            "INVITE",
            "sip:bob@example.com",
            uac_port,
            "pl2",
            "a1",
            None,
            &[],
        ),
        addr,
    )
    .unwrap();
    let r = recv(&uas);
    assert_eq!(hdr(&r, "X-Rc").as_deref(), Some("-1"));
}

#[test]
fn strict_router_before_us() {
    let uas = udp();
    let uas_port = uas.local_addr().unwrap().port();
    let uac = udp();
    let uac_port = uac.local_addr().unwrap().port();
    let (_s, addr) = start(&proxy_cfg("", 1));
    let p = addr.port();
    // A strict router put our RR URI in the R-URI and the callee's contact as the last Route;
    // the only Route (strict) becomes the R-URI.
    uac.send_to(
        &msg(
            "BYE",
            &format!("sip:127.0.0.1:{p};lr;ftag=a1"),
            uac_port,
            "sr1",
            "a1",
            Some("b1"),
            &[&format!("<sip:bob@127.0.0.1:{uas_port}>")],
        ),
        addr,
    )
    .unwrap();
    let r = recv(&uas);
    assert_eq!(
        r.ruri_raw(),
        format!("sip:bob@127.0.0.1:{uas_port}").as_bytes()
    );
    assert_eq!(r.headers_of(HeaderKind::Route).count(), 0);
    assert_eq!(hdr(&r, "X-RR").unwrap(), "lr;ftag=a1");
    // Next hop loose: $du = first Route, R-URI = last Route (removed).
    uac.send_to(
        &msg(
            "BYE",
            &format!("sip:127.0.0.1:{p};lr;ftag=a1"),
            uac_port,
            "sr2",
            "a1",
            Some("b1"),
            &[
                &format!("<sip:127.0.0.1:{uas_port};lr>"),
                &format!("<sip:bob@127.0.0.1:{uas_port};x=1>"),
            ],
        ),
        addr,
    )
    .unwrap();
    let r = recv(&uas);
    assert_eq!(
        r.ruri_raw(),
        format!("sip:bob@127.0.0.1:{uas_port};x=1").as_bytes()
    );
    assert_eq!(
        values(&r, HeaderKind::Route),
        [format!("<sip:127.0.0.1:{uas_port};lr>")]
    );
}

#[test]
fn strict_router_after_us() {
    let uas = udp();
    let uas_port = uas.local_addr().unwrap().port();
    let uac = udp();
    let uac_port = uac.local_addr().unwrap().port();
    let (_s, addr) = start(&proxy_cfg("", 1));
    let p = addr.port();
    // The next hop has no ;lr: it goes to the R-URI and the old R-URI becomes the last Route.
    uac.send_to(
        &msg(
            "BYE",
            "sip:bob@10.9.9.9",
            uac_port,
            "sa1",
            "a1",
            Some("b1"),
            &[
                &format!("<sip:127.0.0.1:{p};lr;ftag=a1>"),
                &format!("<sip:127.0.0.1:{uas_port}>"),
            ],
        ),
        addr,
    )
    .unwrap();
    let r = recv(&uas);
    assert_eq!(r.ruri_raw(), format!("sip:127.0.0.1:{uas_port}").as_bytes());
    assert_eq!(values(&r, HeaderKind::Route), ["<sip:bob@10.9.9.9>"]);
}

#[test]
fn double_record_route_across_sockets_and_preset() {
    let uas = udp();
    let uas_port = uas.local_addr().unwrap().port();
    let uac = udp();
    let uac_port = uac.local_addr().unwrap().port();
    let (s, out_addr) = start(&format!(
        "socket = udp:127.0.0.1:0\nsocket = udp:127.0.0.2:0\n{MODS}modparam(\"rr\", \"append_fromtag\", 0)\n\
route {{\n  if ($rU == \"preset\") record_route_preset(\"1.2.3.4:5090\", \"sip:5.6.7.8\");\n  \
else record_route(\";x=$rU\");\n  forward(\"sip:127.0.0.1:{uas_port}\");\n}}\n"
    ));
    let in_addr: SocketAddr = s.runtime.transports().unwrap().sockets()[1].local;
    let (po, pi) = (out_addr.port(), in_addr.port());
    uac.send_to(
        &msg(
            "INVITE",
            "sip:bob@127.0.0.1",
            uac_port,
            "d1",
            "a1",
            None,
            &[],
        ),
        in_addr,
    )
    .unwrap();
    let r = recv(&uas);
    assert_eq!(
        values(&r, HeaderKind::RecordRoute),
        [
            format!("<sip:127.0.0.1:{po};r2=on;lr;x=bob>"),
            format!("<sip:127.0.0.2:{pi};r2=on;lr;x=bob>"),
        ]
    );
    // Same socket in and out: one Record-Route.
    uac.send_to(
        &msg(
            "INVITE",
            "sip:carol@127.0.0.1",
            uac_port,
            "d2",
            "a1",
            None,
            &[],
        ),
        out_addr,
    )
    .unwrap();
    let r = recv(&uas);
    assert_eq!(
        values(&r, HeaderKind::RecordRoute),
        [format!("<sip:127.0.0.1:{po};lr;x=carol>")]
    );
    // Preset: two given addresses, inserted before an existing Record-Route.
    let mut m = msg(
        "INVITE",
        "sip:preset@127.0.0.1",
        uac_port,
        "d3",
        "a1",
        None,
        &[],
    );
    let pos = m.windows(7).position(|w| w == b"Max-For").unwrap();
    m.splice(
        pos..pos,
        b"Record-Route: <sip:up.example;lr>\r\n".iter().copied(),
    );
    uac.send_to(&m, out_addr).unwrap();
    let r = recv(&uas);
    assert_eq!(
        values(&r, HeaderKind::RecordRoute),
        [
            "<sip:1.2.3.4:5090;r2=on;lr>",
            "<sip:5.6.7.8;r2=on;lr>",
            "<sip:up.example;lr>"
        ]
    );
}

#[test]
fn double_route_is_removed_by_loose_route() {
    let uas = udp();
    let uas_port = uas.local_addr().unwrap().port();
    let uac = udp();
    let uac_port = uac.local_addr().unwrap().port();
    let (_s, addr) = start(&proxy_cfg("", 1));
    let p = addr.port();
    uac.send_to(
        &msg(
            "BYE",
            &format!("sip:bob@127.0.0.1:{uas_port}"),
            uac_port,
            "dr1",
            "a1",
            Some("b1"),
            &[
                &format!("<sip:127.0.0.1:{p};r2=on;lr;ftag=a1>"),
                &format!("<sip:127.0.0.1:{p};r2=on;lr;ftag=a1>"),
                &format!("<sip:127.0.0.1:{uas_port};lr>"),
            ],
        ),
        addr,
    )
    .unwrap();
    let r = recv(&uas);
    assert_eq!(
        values(&r, HeaderKind::Route),
        [format!("<sip:127.0.0.1:{uas_port};lr>")]
    );
    assert_eq!(hdr(&r, "X-Dir").as_deref(), Some("down"));
}
