//! sipmsgops functions of `src/sipmsgops.rs` with exact results.

use sipox_script::Outcome;

use crate::util::{INVITE, run_on};

fn run_s(body: &str, m: &str) -> (sipox_script::MsgCx, Outcome) {
    run_on(
        &format!("loadmodule \"sipmsgops.so\"\nroute {{\n{body}\n}}"),
        m,
    )
}

#[test]
fn append_to_reply_stores_lines() {
    let (cx, o) = run_s(
        "append_to_reply(\"X-A: $rU\\r\\n\"); append_to_reply(\"X-B: 2\"); return($rc);",
        INVITE,
    );
    assert_eq!(o, Outcome::Done(1));
    assert_eq!(cx.reply_headers(), b"X-A: bob\r\nX-B: 2\r\n");
}

#[test]
fn ruri_params() {
    let m = INVITE.replace(
        "INVITE sip:bob@example.com ",
        "INVITE sip:bob@example.com;user=phone;x=1 ",
    );
    let (_, o) = run_s(
        "if (ruri_has_param(\"user\", \"phone\") && ruri_has_param(\"x\") && !ruri_has_param(\"x\", \"2\")) return(1); return(-1);",
        &m,
    );
    assert_eq!(o, Outcome::Done(1));
    let (cx, _) = run_s("ruri_del_param(\"user\"); ruri_add_param(\"nat=yes\");", &m);
    assert_eq!(cx.new_ruri(), Some(&b"sip:bob@example.com;x=1;nat=yes"[..]));
    let (_, o) = run_s("ruri_del_param(\"nope\"); return($rc);", &m);
    assert_eq!(o, Outcome::Done(-1));
    let (cx, _) = run_s("ruri_add_param(\";lr\");", INVITE);
    assert_eq!(cx.new_ruri(), Some(&b"sip:bob@example.com;lr"[..]));
}

#[test]
fn e164() {
    let (_, o) = run_s(
        "if (is_uri_user_e164(\"sip:+4915123456@a\") && !is_uri_user_e164(\"sip:4915@a\") && !is_uri_user_e164(\"sip:+4@a\") && !is_uri_user_e164(\"$ru\")) return(1); return(-1);",
        INVITE,
    );
    assert_eq!(o, Outcome::Done(1));
}

fn written(cx: &mut sipox_script::MsgCx) -> String {
    let mut out = Vec::new();
    cx.write_message(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn sipmsg_validate_codes() {
    let (_, o) = run_s("sipmsg_validate(); return($rc);", INVITE);
    assert_eq!(o, Outcome::Done(1));
    let (_, o) = run_s("sipmsg_validate(\"sftcrh\"); return($rc);", INVITE);
    assert_eq!(o, Outcome::Done(1));
    let no_mf = INVITE.replace("Max-Forwards: 70\r\n", "");
    let (_, o) = run_s("sipmsg_validate(\"\", $var(why)); return($rc);", &no_mf);
    assert_eq!(o, Outcome::Done(-13));
    let (cx, _) = run_s("sipmsg_validate(\"\", $var(why));", &no_mf);
    assert_eq!(crate::util::var(&cx, "why"), "No Max-Forwards header");
    let (_, o) = run_s("sipmsg_validate(\"m\"); return($rc);", &no_mf);
    assert_eq!(o, Outcome::Done(1), "'m' skips the Max-Forwards check");
    let no_contact = INVITE.replace(
        "Contact: <sip:alice@10.0.0.1:5060;transport=udp>;expires=60\r\n",
        "",
    );
    let (_, o) = run_s("sipmsg_validate(); return($rc);", &no_contact);
    assert_eq!(o, Outcome::Done(-14));
    let path = INVITE.replace("User-Agent:", "Path: <sip:p.example.com;lr>\r\nUser-Agent:");
    let (_, o) = run_s("sipmsg_validate(); return($rc);", &path);
    assert_eq!(o, Outcome::Done(-15));
    let bad_sdp = INVITE.replace(
        "Content-Length: 0\r\n\r\n",
        "Content-Length: 9\r\n\r\nnot an sd",
    );
    let (_, o) = run_s("sipmsg_validate(\"s\"); return($rc);", &bad_sdp);
    assert_eq!(o, Outcome::Done(-6));
}

#[test]
fn list_header_options() {
    let m = INVITE.replace("User-Agent:", "Supported: timer, replaces\r\nUser-Agent:");
    let (_, o) = run_s(
        "if (list_hdr_has_option(\"Supported\", \"REPLACES\")) return(1); return(-1);",
        &m,
    );
    assert_eq!(o, Outcome::Done(1));
    let (mut cx, _) = run_s(
        "list_hdr_add_option(\"Supported\", \"100rel\"); list_hdr_remove_option(\"Supported\", \"timer\");",
        &m,
    );
    let s = written(&mut cx);
    assert!(
        s.contains("\r\nSupported: replaces, 100rel\r\n"),
        "add then remove build on each other: {s}"
    );
    let (mut cx, o) = run_s(
        "list_hdr_remove_option(\"Supported\", \"timer\"); return($rc);",
        &m,
    );
    assert_eq!(o, Outcome::Done(1));
    assert!(written(&mut cx).contains("\r\nSupported: replaces\r\n"));
}

#[test]
fn remove_by_regex_and_glob_and_append_urihf() {
    let m = INVITE.replace(
        "User-Agent:",
        "X-One: 1\r\nX-Two: 2\r\nP-Access-Network-Info: 3GPP-UTRAN-TDD\r\nUser-Agent:",
    );
    let (mut cx, o) = run_s("remove_hf_re(\"^x-\"); return($rc);", &m);
    assert_eq!(o, Outcome::Done(2));
    let s = written(&mut cx);
    assert!(
        !s.contains("X-One") && !s.contains("X-Two") && s.contains("P-Access-Network-Info"),
        "{s}"
    );
    let (mut cx, o) = run_s("remove_hf_glob(\"P-*-Info\"); return($rc);", &m);
    assert_eq!(o, Outcome::Done(1));
    assert!(!written(&mut cx).contains("P-Access-Network-Info"));
    let (_, o) = run_s("remove_hf_glob(\"Q-*\"); return($rc);", &m);
    assert_eq!(o, Outcome::Done(-1));
    let (mut cx, _) = run_s("append_urihf(\"CC-Diversion: \", \"\\r\\n\");", INVITE);
    assert!(written(&mut cx).contains("\r\nCC-Diversion: sip:bob@example.com\r\n"));
}

const SDP_INVITE_BODY: &str = "v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0 8 18 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n\
m=video 4002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";

fn sdp_invite() -> String {
    INVITE.replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Length: {}\r\n\r\n{SDP_INVITE_BODY}",
            SDP_INVITE_BODY.len()
        ),
    )
}

fn body_of(cx: &mut sipox_script::MsgCx) -> String {
    let s = written(cx);
    s.split_once("\r\n\r\n").unwrap().1.to_string()
}

#[test]
fn codec_functions() {
    let m = sdp_invite();
    let (_, o) = run_s("codec_exists(\"pcma\"); return($rc);", &m);
    assert_eq!(o, Outcome::Done(1), "static payload type 8 is PCMA");
    let (_, o) = run_s(
        "codec_exists(\"telephone-event\", \"16000\"); return($rc);",
        &m,
    );
    assert_eq!(o, Outcome::Done(-1));
    let (_, o) = run_s("codec_exists_re(\"^H26\"); return($rc);", &m);
    assert_eq!(o, Outcome::Done(1));
    let (mut cx, o) = run_s(
        "codec_delete(\"PCMU\"); codec_move_up(\"G729\"); codec_move_down(\"telephone-event\"); return($rc);",
        &m,
    );
    assert_eq!(o, Outcome::Done(1));
    let b = body_of(&mut cx);
    assert!(b.contains("m=audio 4000 RTP/AVP 18 8 101\r\n"), "{b}");
    let (mut cx, _) = run_s("codec_delete_except_re(\"PCMA|telephone\");", &m);
    let b = body_of(&mut cx);
    assert!(b.contains("m=audio 4000 RTP/AVP 8 101\r\n"), "{b}");
    assert!(
        b.contains("m=video 4002 RTP/AVP\r\n") || !b.contains("H264"),
        "{b}"
    );
    let (mut cx, _) = run_s("codec_delete_re(\"telephone-event\");", &m);
    let b = body_of(&mut cx);
    assert!(
        !b.contains("telephone-event") && !b.contains("fmtp:101"),
        "rtpmap and fmtp go too: {b}"
    );
    let written_msg = {
        let (mut cx, _) = run_s("codec_delete(\"PCMU\");", &m);
        written(&mut cx)
    };
    let reparsed =
        sipox_sip_msg::SipMsg::parse(bytes::Bytes::from(written_msg.into_bytes())).unwrap();
    assert_eq!(
        reparsed.body().len(),
        reparsed.content_length().unwrap() as usize,
        "Content-Length fixed"
    );
}

#[test]
fn stream_functions() {
    let m = sdp_invite();
    let (_, o) = run_s("stream_exists(\"video\"); return($rc);", &m);
    assert_eq!(o, Outcome::Done(1));
    let (_, o) = run_s("stream_exists(\"image\"); return($rc);", &m);
    assert_eq!(o, Outcome::Done(-1));
    let (mut cx, o) = run_s(
        "stream_delete(\"video\"); if (stream_exists(\"video\")) return(-5); return(1);",
        &m,
    );
    assert_eq!(
        o,
        Outcome::Done(1),
        "the deletion is visible to later calls"
    );
    let b = body_of(&mut cx);
    assert!(!b.contains("m=video") && b.contains("m=audio"), "{b}");
}

#[test]
fn insert_hf_and_append_hf_anchors() {
    let (mut cx, o) = run_s(
        "insert_hf(\"X-First: 1\\r\\n\"); insert_hf(\"X-Before-CI: $rU\\r\\n\", \"Call-ID\"); append_hf(\"X-After-CI: 2\\r\\n\", \"i\"); append_hf(\"X-Last: 3\\r\\n\", \"X-Missing\"); insert_hf(\"X-Top: 4\\r\\n\", \"X-Missing\"); return($rc);",
        INVITE,
    );
    assert_eq!(o, Outcome::Done(1));
    let w = written(&mut cx);
    assert!(
        w.starts_with("INVITE sip:bob@example.com SIP/2.0\r\nX-First: 1\r\nX-Top: 4\r\nVia:"),
        "{w}"
    );
    assert!(
        w.contains(
            "X-Before-CI: bob\r\nCall-ID: a84b4c76e66710@pc33.atlanta.com\r\nX-After-CI: 2\r\nCSeq:"
        ),
        "{w}"
    );
    assert!(w.ends_with("Content-Length: 0\r\nX-Last: 3\r\n\r\n"), "{w}");
}

#[test]
fn append_time_adds_a_date_to_replies() {
    let (cx, o) = run_s("append_time(); return($rc);", INVITE);
    assert_eq!(o, Outcome::Done(1));
    // 1_700_000_000 s is Tue, 14 Nov 2023 22:13:20 GMT
    assert_eq!(
        cx.reply_headers(),
        b"Date: Tue, 14 Nov 2023 22:13:20 GMT\r\n"
    );
}

#[test]
fn is_privacy_values() {
    let m = INVITE.replace("User-Agent:", "Privacy: id;Header\r\nUser-Agent:");
    let (_, o) = run_s(
        "if (is_privacy(\"id\") && is_privacy(\"header\") && !is_privacy(\"session\")) return(1); return(-1);",
        &m,
    );
    assert_eq!(o, Outcome::Done(1));
    let (_, o) = run_s("is_privacy(\"id\"); return($rc);", INVITE);
    assert_eq!(o, Outcome::Done(-1));
    let e =
        crate::util::compile_err("loadmodule \"sipmsgops.so\"\nroute { is_privacy(\"bogus\"); }");
    assert!(e.contains("privacy"), "{e}");
}

#[test]
fn ruri_tel2sip_converts_tel_uris() {
    let m = INVITE.replace(
        "INVITE sip:bob@example.com ",
        "INVITE tel:+16505550101;phone-context=x ",
    );
    let (cx, o) = run_s("ruri_tel2sip(); return($rc);", &m);
    assert_eq!(o, Outcome::Done(1));
    assert_eq!(
        cx.new_ruri(),
        Some(&b"sip:+16505550101;phone-context=x@atlanta.com;user=phone"[..])
    );
    let (cx, o) = run_s("ruri_tel2sip(); return($rc);", INVITE);
    assert_eq!(o, Outcome::Done(1), "a sip R-URI needs no conversion");
    assert_eq!(cx.new_ruri(), None);
}

#[test]
fn get_glob_headers_values_fills_avps() {
    let m = INVITE.replace("User-Agent:", "X-A: one\r\nx-b: two\r\nUser-Agent:");
    let (cx, o) = run_s(
        "get_glob_headers_values(\"X-*\", $avp(n), $avp(v)); return($rc);",
        &m,
    );
    assert_eq!(o, Outcome::Done(1));
    let names: Vec<String> = cx
        .avp("n")
        .iter()
        .map(|v| String::from_utf8_lossy(&v.s).into_owned())
        .collect();
    let vals: Vec<String> = cx
        .avp("v")
        .iter()
        .map(|v| String::from_utf8_lossy(&v.s).into_owned())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"X-A".to_string()) && names.contains(&"x-b".to_string()));
    assert!(vals.contains(&"one".to_string()) && vals.contains(&"two".to_string()));
    let (_, o) = run_s(
        "get_glob_headers_values(\"Z-*\", $avp(n), $avp(v)); return($rc);",
        &m,
    );
    assert_eq!(o, Outcome::Done(-1));
    let e = crate::util::compile_err(
        "loadmodule \"sipmsgops.so\"\nroute { get_glob_headers_values(\"X-*\", $var(n), $avp(v)); }",
    );
    assert!(e.contains("AVP"), "{e}");
}

const REPLY_603: &str = "SIP/2.0 603 Decline\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n\
To: Bob <sip:bob@example.com>;tag=a6c85cf\r\n\
From: \"Alice\" <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n\
CSeq: 314159 INVITE\r\n\
Content-Length: 0\r\n\r\n";

fn run_reply(body: &str, m: &str) -> (sipox_script::MsgCx, Outcome) {
    let prog = sipox_script::compile_str(
        "test.cfg",
        &format!("loadmodule \"sipmsgops.so\"\nroute {{ exit; }}\nonreply_route {{\n{body}\n}}"),
    )
    .unwrap();
    let mut cx = sipox_script::MsgCx::new(prog);
    cx.capture_logs();
    cx.set_message(crate::util::msg(m));
    let o = cx.run_route(sipox_cfg_syntax::RouteKind::OnReply, None);
    (cx, o)
}

#[test]
fn change_reply_status_rewrites_the_status_line() {
    let (mut cx, o) = run_reply(
        "change_reply_status(404, \"Not Found\"); return($rc);",
        REPLY_603,
    );
    assert_eq!(o, Outcome::Done(1));
    assert!(written(&mut cx).starts_with("SIP/2.0 404 Not Found\r\nVia:"));
    // a failure cannot become a 2xx, nor a code leave 100..699
    let (mut cx, o) = run_reply("change_reply_status(200, \"OK\"); return($rc);", REPLY_603);
    assert_eq!(o, Outcome::Done(-1));
    assert!(written(&mut cx).starts_with("SIP/2.0 603 Decline\r\n"));
    let (_, o) = run_reply("change_reply_status(700, \"X\"); return($rc);", REPLY_603);
    assert_eq!(o, Outcome::Done(-1));
    let ringing = REPLY_603.replace("603 Decline", "180 Ringing");
    let (_, o) = run_reply(
        "change_reply_status(183, \"Progress\"); return($rc);",
        &ringing,
    );
    assert_eq!(o, Outcome::Done(1));
    let (_, o) = run_reply("change_reply_status(486, \"Busy\"); return($rc);", &ringing);
    assert_eq!(o, Outcome::Done(-1));
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n";

fn with_body(ct: &str, body: &str) -> String {
    INVITE
        .replace(
            "Content-Type: application/sdp\r\n",
            &format!("Content-Type: {ct}\r\n"),
        )
        .replace(
            "Content-Length: 0\r\n\r\n",
            &format!("Content-Length: {}\r\n\r\n{body}", body.len()),
        )
}

#[test]
fn body_parts_add_check_remove() {
    let m = with_body("application/sdp", SDP);
    let (mut cx, o) = run_s(
        "add_body_part(\"<isup/>\", \"application/isup\", \"Content-Disposition: signal\"); \
         if (!has_body_part(\"application/isup\") || !has_body_part(\"application/sdp\") || !has_body_part(\"multipart/mixed\") || has_body_part(\"text/plain\")) return(-5); \
         get_updated_body_part(\"application/isup\", $var(isup)); \
         get_updated_body_part(\"text/plain\", $var(x)); $var(rc_missing) = $rc; \
         return(1);",
        &m,
    );
    assert_eq!(o, Outcome::Done(1));
    assert_eq!(crate::util::var(&cx, "isup"), "<isup/>");
    assert_eq!(crate::util::var(&cx, "rc_missing"), "-2");
    let w = written(&mut cx);
    let body = format!(
        "--sipox-boundary-1\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n\
         --sipox-boundary-1\r\nContent-Type: application/isup\r\nContent-Disposition: signal\r\n\r\n<isup/>\r\n\
         --sipox-boundary-1--\r\n"
    );
    assert!(
        w.contains("Content-Type: multipart/mixed;boundary=sipox-boundary-1\r\n"),
        "{w}"
    );
    assert!(
        w.contains(&format!("Content-Length: {}\r\n", body.len())),
        "{w}"
    );
    assert!(w.ends_with(&format!("\r\n\r\n{body}")), "{w}");

    // removing the isup part leaves a plain SDP body again
    let (mut cx, o) = run_s(
        "add_body_part(\"<isup/>\", \"application/isup\"); remove_body_part(\"application/isup\"); $var(a) = $rc; \
         remove_body_part(\"application/isup\"); $var(b) = $rc; return(1);",
        &m,
    );
    assert_eq!(o, Outcome::Done(1));
    assert_eq!(crate::util::var(&cx, "a"), "1");
    assert_eq!(crate::util::var(&cx, "b"), "-1");
    let w = written(&mut cx);
    assert!(w.contains("Content-Type: application/sdp\r\n"), "{w}");
    assert!(w.ends_with(&format!("\r\n\r\n{SDP}")), "{w}");

    // "revert" keeps only the given type; no MIME removes the whole body
    let (mut cx, _) = run_s(
        "add_body_part(\"hi\", \"text/plain\"); remove_body_part(\"text/plain\", \"revert\");",
        &m,
    );
    let w = written(&mut cx);
    assert!(
        w.contains("Content-Type: text/plain\r\n") && w.ends_with("\r\n\r\nhi"),
        "{w}"
    );
    let (mut cx, o) = run_s("remove_body_part(); return($rc);", &m);
    assert_eq!(o, Outcome::Done(1));
    let w = written(&mut cx);
    assert!(
        !w.contains("Content-Type") && w.ends_with("Content-Length: 0\r\n\r\n"),
        "{w}"
    );
    let (_, o) = run_s("remove_body_part(); return($rc);", INVITE);
    assert_eq!(o, Outcome::Done(-1), "no body");
    let (_, o) = run_s("has_body_part(); return($rc);", INVITE);
    assert_eq!(o, Outcome::Done(-1));
    let (_, o) = run_s("add_body_part(\"\", \"text/plain\"); return($rc);", INVITE);
    assert_eq!(o, Outcome::Done(-1));
}

#[test]
fn body_parts_of_a_received_multipart() {
    let mp = "--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n\r\n--b1\r\nContent-Type: application/isup\r\n\r\nISUP\r\n--b1--\r\n";
    let m = with_body("multipart/mixed;boundary=b1", mp);
    let (mut cx, o) = run_s(
        "if (!has_body_part(\"application/isup\")) return(-1); get_updated_body_part(\"application/isup\", $var(i)); remove_body_part(\"application/sdp\", \"revert\"); return($rc);",
        &m,
    );
    assert_eq!(o, Outcome::Done(1));
    assert_eq!(crate::util::var(&cx, "i"), "ISUP");
    let w = written(&mut cx);
    assert!(w.contains("Content-Type: application/sdp\r\n"), "{w}");
    assert!(w.ends_with("\r\n\r\nv=0\r\n"), "{w}");
}

#[test]
fn audio_on_hold_kinds() {
    let (_, o) = run_s(
        "is_audio_on_hold(); return($rc);",
        &with_body("application/sdp", SDP),
    );
    assert_eq!(o, Outcome::Done(-1));
    let held = SDP.replace("c=IN IP4 10.0.0.1", "c=IN IP4 0.0.0.0");
    let (_, o) = run_s(
        "is_audio_on_hold(); return($rc);",
        &with_body("application/sdp", &held),
    );
    assert_eq!(o, Outcome::Done(1));
    let sendonly = SDP.replace("a=sendrecv", "a=sendonly");
    let (_, o) = run_s(
        "is_audio_on_hold(); return($rc);",
        &with_body("application/sdp", &sendonly),
    );
    assert_eq!(o, Outcome::Done(2));
    let video = sendonly.replace("m=audio", "m=video");
    let (_, o) = run_s(
        "is_audio_on_hold(); return($rc);",
        &with_body("application/sdp", &video),
    );
    assert_eq!(o, Outcome::Done(-1), "only audio streams count");
}

#[test]
fn sip_to_json_object() {
    let m = with_body("text/plain", "a\"b");
    let (cx, o) = run_s(
        "append_hf(\"Via: SIP/2.0/UDP 10.0.0.9\\r\\n\"); sip_to_json($var(j)); return($rc);",
        &m,
    );
    assert_eq!(o, Outcome::Done(1));
    let j = crate::util::var(&cx, "j");
    assert!(j.starts_with("{\"first_line\":\"INVITE sip:bob@example.com SIP/2.0\",\"headers\":{\"Via\":[\"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport\",\"SIP/2.0/UDP 10.0.0.9\"],\"Max-Forwards\":[\"70\"],"), "{j}");
    assert!(
        j.contains("\"From\":[\"\\\"Alice\\\" <sip:alice@atlanta.com>;tag=1928301774\"]"),
        "{j}"
    );
    assert!(
        j.ends_with("\"Content-Length\":[\"3\"]},\"body\":\"a\\\"b\"}"),
        "{j}"
    );
}
