//! Whole-message parse, receipt validation, every cached view, edits and reply building.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sipox_sip_msg::{HeaderKind, ReplyOpts, SipMsg, build_reply};

fuzz_target!(|data: &[u8]| {
    let Ok(mut m) = SipMsg::parse(Bytes::copy_from_slice(data)) else {
        return;
    };
    let _ = m.validate();
    let _ = m.ruri().map(|u| (u.user(), u.host(), u.params().len()));
    for v in m.vias() {
        let _ = v.map(|v| (v.branch(), v.received(), v.rport()));
    }
    let _ = m.from().map(|f| f.tag());
    let _ = m.to().map(|t| t.uri().port());
    let _ = m.cseq();
    let _ = m.max_forwards();
    for c in m.contacts() {
        let _ = c;
    }
    for r in m.name_addrs(HeaderKind::Route) {
        let _ = r.map(|r| r.uri().is_lr());
    }
    if m.is_request() {
        let mut out = Vec::new();
        let _ = build_reply(&m, 200, b"OK", &ReplyOpts { to_tag: Some(b"t"), via_rport: Some(5060), ..ReplyOpts::default() }, &mut out);
    }
    m.add_record_route(b"<sip:192.0.2.1;lr>");
    m.push_via(b"SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKf");
    m.pop_via();
    m.set_body(Some(b"text/plain"), &b"x"[..]);
    let mut out = Vec::new();
    let _ = m.write_to(&mut out);
});
