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
