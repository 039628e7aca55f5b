//! textops: search, replace and sed-like substitutions with the exact edited output.

use sipox_script::{MsgCx, Outcome};

use crate::util::{INVITE, run_on};

const SDP_INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
From: <sip:alice@atlanta.com>;tag=1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: c1\r\n\
CSeq: 1 INVITE\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 101\r\n\r\n\
v=0\r\n\
o=alice 1 1 IN IP4 10.0.0.1\r\n\
c=IN IP4 10.0.0.1\r\n\
m=audio 4000 RTP/AVP 0 8\r\n\
a=rtpmap:0 PCMU/8000\r\n";

fn out(cx: &mut MsgCx) -> String {
    let mut v = Vec::new();
    cx.write_message(&mut v).unwrap();
    String::from_utf8(v).unwrap()
}

fn run_t(body: &str, m: &str) -> (MsgCx, Outcome) {
    run_on(
        &format!("loadmodule \"textops.so\"\nroute {{\n{body}\n}}"),
        m,
    )
}

fn rc(body: &str, m: &str) -> i32 {
    match run_t(&format!("{body}\nreturn($rc);"), m).1 {
        Outcome::Done(r) => r,
        o => panic!("{o:?}"),
    }
}

#[test]
fn sdp_len_is_right() {
    let body = SDP_INVITE.split("\r\n\r\n").nth(1).unwrap();
    assert_eq!(body.len(), 101);
}

#[test]
fn search_and_search_body() {
    assert_eq!(
        rc("search(\"^invite sip:bob\");", INVITE),
        1,
        "case-insensitive, start line"
    );
    assert_eq!(rc("search(\"X-Nothing\");", INVITE), -1);
    assert_eq!(rc("search_body(\"PCMU/8000\");", SDP_INVITE), 1);
    assert_eq!(rc("search_body(\"Call-ID\");", SDP_INVITE), -1);
    assert_eq!(
        rc(
            "$var(re) = \"m=audio [0-9]+\"; search_body(\"$var(re)\");",
            SDP_INVITE
        ),
        1
    );
}

#[test]
fn replace_variants_on_headers() {
    let (mut cx, _) = run_t("replace(\"TestUA/1\\.0\", \"sipox/$rU\");", INVITE);
    assert_eq!(out(&mut cx), INVITE.replace("TestUA/1.0", "sipox/bob"));
    // The start line is never touched by replace.
    let (mut cx, _) = run_t("replace(\"bob@example\\.com\", \"carol@b.org\");", INVITE);
    assert_eq!(
        out(&mut cx),
        INVITE.replacen(
            "To: Bob <sip:bob@example.com>",
            "To: Bob <sip:carol@b.org>",
            1
        )
    );
    let (mut cx, _) = run_t("replace_all(\"10\\.0\\.0\\.1\", \"192.0.2.9\");", INVITE);
    assert_eq!(out(&mut cx), INVITE.replace("10.0.0.1", "192.0.2.9"));
    let (mut cx, _) = run_t("search_append(\"^Call-ID: [^\\r]*\", \"-x\");", INVITE);
    assert_eq!(
        out(&mut cx),
        INVITE.replace("pc33.atlanta.com\r\n", "pc33.atlanta.com-x\r\n")
    );
    assert_eq!(rc("replace(\"nomatch\", \"x\");", INVITE), -1);
}

#[test]
fn body_functions_fix_content_length_and_compose() {
    let (mut cx, _) = run_t(
        "replace_body_all(\"10\\.0\\.0\\.1\", \"192.0.2.1\");\nsearch_append_body(\"PCMU/8000\", \"/1\");",
        SDP_INVITE,
    );
    let expect = SDP_INVITE
        .replace("IN IP4 10.0.0.1", "IN IP4 192.0.2.1")
        .replace("PCMU/8000", "PCMU/8000/1")
        .replace("Content-Length: 101", "Content-Length: 105");
    assert_eq!(out(&mut cx), expect);
    let (mut cx, _) = run_t("replace_body(\"pcmu\", \"PCMA\");", SDP_INVITE);
    assert_eq!(out(&mut cx), SDP_INVITE.replace("PCMU", "PCMA"));
    let (mut cx, _) = run_t(
        "replace_body_atonce(\"^.+$\", \"\");",
        "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 4\r\n\r\nabcd",
    );
    assert!(out(&mut cx).ends_with("Content-Length: 0\r\n\r\n"));
}

#[test]
fn subst_on_message_uri_user_and_body() {
    let (mut cx, _) = run_t(
        "subst('/^To: (.*)<sip:bob@([^>]*)>/To: \\1<sip:robert@\\2;u=\\u>/');",
        INVITE,
    );
    assert_eq!(
        out(&mut cx),
        INVITE.replace(
            "To: Bob <sip:bob@example.com>",
            "To: Bob <sip:robert@example.com;u=sip:bob@example.com>"
        )
    );
    let (mut cx, o) = run_t(
        "subst_uri('/^sip:([a-z]+)@(.*)$/sip:00\\1@\\2;orig=\\0/i'); return($rc);",
        INVITE,
    );
    assert_eq!(o, Outcome::Done(1));
    assert!(
        out(&mut cx)
            .starts_with("INVITE sip:00bob@example.com;orig=sip:bob@example.com SIP/2.0\r\n")
    );
    let (cx, _) = run_t("subst_user('/b(o)b/r\\1\\1b/');", INVITE);
    assert_eq!(cx.new_ruri(), Some(&b"sip:roob@example.com"[..]));
    let (cx, _) = run_t(
        "$var(u) = \"carol\"; subst_user(\"/^bob$/$var(u)/\");",
        INVITE,
    );
    assert_eq!(cx.new_ruri(), Some(&b"sip:carol@example.com"[..]));
    assert_eq!(rc("subst_user('/^alice$/x/');", INVITE), -1);
    // Global flag on the body; case-sensitive without i.
    let (mut cx, _) = run_t(
        "subst_body('/IP4 10\\.0\\.0\\.([0-9])/IP4 172.16.0.\\1/g');",
        SDP_INVITE,
    );
    assert_eq!(
        out(&mut cx),
        SDP_INVITE
            .replace("IP4 10.0.0.1", "IP4 172.16.0.1")
            .replace("Content-Length: 101", "Content-Length: 105")
    );
    assert_eq!(rc("subst_body('/pcmu/x/');", SDP_INVITE), -1);
    assert_eq!(rc("subst_body('/pcmu/x/i');", SDP_INVITE), 1);
}

#[test]
fn subst_fixup_errors() {
    let e = crate::util::compile_err("loadmodule \"textops.so\"\nroute { subst('/a/b'); }");
    assert!(e.contains("re"), "{e}");
    let e = crate::util::compile_err("loadmodule \"textops.so\"\nroute { subst('/a/\\1/'); }");
    assert!(e.contains("group"), "{e}");
}
