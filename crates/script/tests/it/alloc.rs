//! Proves that a run of the residential-style main route allocates nothing once the worker's
//! buffers are warm, with a counting global allocator (per thread).

use bytes::Bytes;
use sipox_script::{MsgCx, Outcome, compile_str};
use sipox_sip_msg::SipMsg;
use sipox_test_support::allocations;

#[global_allocator]
static GLOBAL: sipox_test_support::Counting = sipox_test_support::Counting;

const SCRIPT: &str = include_str!("../../benches/data/residential.cfg");
const INVITE: &[u8] = include_bytes!("../../benches/data/invite.sip");

#[test]
fn residential_route_allocates_nothing_after_warmup() {
    let prog = compile_str("residential.cfg", SCRIPT).unwrap();
    let mut cx = MsgCx::new(prog);
    cx.set_message(SipMsg::parse(Bytes::from_static(INVITE)).unwrap());
    for _ in 0..3 {
        let m = cx.take_message().unwrap();
        cx.set_message(m);
        assert_eq!(cx.run_main(), Outcome::Done(1));
    }
    let (n, o) = allocations(|| {
        let mut last = Outcome::Exit;
        for _ in 0..100 {
            let m = cx.take_message().unwrap();
            cx.set_message(m);
            last = cx.run_main();
        }
        last
    });
    assert_eq!(o, Outcome::Done(1));
    assert_eq!(n, 0, "100 runs allocated {n} times");
    // The route did its work.
    assert_eq!(cx.var("fhost").unwrap().to_text(), "atlanta.com");
    assert_eq!(cx.var("local").unwrap().to_text(), "1");
    assert_eq!(cx.var("next").unwrap().to_text(), "2");
    assert_eq!(
        cx.avp("cid")[0].to_text(),
        "a84b4c76e66710@pc33.atlanta.com"
    );
    let mut out = Vec::new();
    cx.write_message(&mut out).unwrap();
    assert!(String::from_utf8_lossy(&out).contains("Max-Forwards: 69\r\n"));
}

#[test]
fn each_statement_allocates_nothing_after_warmup() {
    let stmts = [
        "mf_process_maxfwd_header(10);",
        "has_totag();",
        "is_method(\"INVITE|MESSAGE\");",
        "$var(user) = $rU;",
        "$var(d) = $fd;",
        "$var(c) = $ci;",
        "$var(n) = 1; $var(m) = $var(n) + 1;",
        "$var(ua) = $ua;",
        "$avp(caller) = $fU;",
        "$avp(cid) := $ci;",
        "$var(method) = $rm;",
        "if ($ru =~ \"^sip:[a-z0-9._-]+@example\\.com\") { $var(local) = 1; }",
        "xlog(\"L_DBG\", \"routing $rm from $fu to $ru (call $ci)\\n\");",
        "$var(fhost) = $(hdr(From){nameaddr.uri}{uri.host}{s.tolower});",
        "return(1);",
    ];
    for s in stmts {
        let script = format!(
            "log_level=2\nloadmodule \"maxfwd.so\"\nloadmodule \"sipmsgops.so\"\nroute {{ {s} }}"
        );
        let prog = compile_str("x.cfg", &script).unwrap();
        let mut cx = MsgCx::new(prog);
        cx.set_message(SipMsg::parse(Bytes::from_static(INVITE)).unwrap());
        for _ in 0..3 {
            let m = cx.take_message().unwrap();
            cx.set_message(m);
            cx.run_main();
        }
        let (n, _) = allocations(|| {
            for _ in 0..10 {
                let m = cx.take_message().unwrap();
                cx.set_message(m);
                cx.run_main();
            }
        });
        assert_eq!(n, 0, "{s}: 10 runs allocated {n} times");
    }
}
