//! Helpers: compile a script, run it over a message, read results.

use bytes::Bytes;
use sipox_script::{MsgCx, Outcome, compile_str};
use sipox_sip_msg::SipMsg;

pub(crate) const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@example.com>\r\n\
From: \"Alice\" <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@10.0.0.1:5060;transport=udp>;expires=60\r\n\
User-Agent: TestUA/1.0\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 0\r\n\r\n";

pub(crate) fn msg(text: &str) -> SipMsg {
    SipMsg::parse(Bytes::copy_from_slice(text.as_bytes())).unwrap()
}

/// Compiles `script`, runs the main route over `m`, returns the context and outcome.
pub(crate) fn run_on(script: &str, m: &str) -> (MsgCx, Outcome) {
    let prog = compile_str("test.cfg", script).unwrap_or_else(|e| panic!("compile failed:\n{e}"));
    let mut cx = MsgCx::new(prog);
    cx.capture_logs();
    cx.set_time_us(1_700_000_000_123_456);
    cx.set_message(msg(m));
    let o = cx.run_main();
    (cx, o)
}

pub(crate) fn run(script: &str) -> (MsgCx, Outcome) {
    run_on(script, INVITE)
}

/// The text of `$var(name)` after running.
pub(crate) fn var(cx: &MsgCx, name: &str) -> String {
    cx.var(name)
        .map(sipox_script::Val::to_text)
        .unwrap_or_default()
}

/// Runs `route { $var(r) = EXPR; }` and returns the text of `$var(r)`.
pub(crate) fn eval(expr: &str) -> String {
    let (cx, o) = run(&format!(
        "loadmodule \"cfgutils.so\"\nroute {{ $var(r) = {expr}; }}"
    ));
    assert!(matches!(o, Outcome::Done(_)), "{o:?}");
    var(&cx, "r")
}

/// Compile errors rendered (panics if it compiles).
pub(crate) fn compile_err(script: &str) -> String {
    match compile_str("test.cfg", script) {
        Ok(_) => panic!("expected a compile error"),
        Err(e) => e,
    }
}
