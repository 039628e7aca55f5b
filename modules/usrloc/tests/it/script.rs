//! `ul_add_key` / `ul_get_key` / `ul_del_key` run by the script engine.

use std::sync::Arc;

use bytes::Bytes;
use sipox_mod_usrloc::{Contact, Params, Usrloc};
use sipox_script::{CompileOptions, Instances, MsgCx, Registry};
use sipox_sip_msg::SipMsg;

const CFG: &str = r#"
loadmodule "usrloc.so"
route {
    $var(r1) = 0; $var(r2) = 0; $var(r3) = 0; $var(r4) = 0; $var(r5) = 0;
    ul_add_key("location", "$fU", "svc", "<sip:sr.example.com;lr>");
    $var(r1) = $rc;
    ul_get_key("location", "$fU", "svc", $var(got));
    $var(r2) = $rc;
    ul_get_key("location", "$fU", "missing", $var(none));
    $var(r3) = $rc;
    ul_del_key("location", "$fU", "svc");
    ul_get_key("location", "$fU", "svc", $var(none));
    $var(r4) = $rc;
    ul_add_key("location", "nobody", "k", "v");
    $var(r5) = $rc;
}
"#;

#[test]
fn kv_functions() {
    let ul = Arc::new(Usrloc::new(Params::default()).unwrap());
    let loc = ul.register_domain("location").unwrap();
    ul.with_record(loc, "alice", 1, |r| {
        r.insert(Contact::new("sip:alice@1.2.3.4"));
    })
    .unwrap();
    let mut inst = Instances::default();
    inst.insert(Arc::clone(&ul));
    let parsed = sipox_cfg_syntax::parse_str("t.cfg", CFG);
    assert!(!parsed.has_errors(), "{}", parsed.render_diagnostics());
    let mut reg = Registry::standard();
    sipox_mod_usrloc::script::register(&mut reg);
    let c = sipox_script::compile(
        &parsed.ast,
        &parsed.sources,
        &reg,
        &CompileOptions {
            log_level: None,
            instances: inst,
            ..CompileOptions::default()
        },
    );
    let prog = c.program.unwrap_or_else(|| panic!("{:?}", c.diagnostics));
    let mut cx = MsgCx::new(prog);
    let msg = "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n\
        From: <sip:alice@example.com>;tag=1\r\nTo: <sip:x>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
        Content-Length: 0\r\n\r\n";
    cx.set_message(SipMsg::parse(Bytes::from_static(msg.as_bytes())).unwrap());
    let _ = cx.run_main();
    let v = |n: &str| cx.var(n).and_then(|v| v.as_int()).unwrap_or(99);
    assert_eq!(v("r1"), 1);
    assert_eq!(v("r2"), 1);
    assert_eq!(v("r3"), -1);
    assert_eq!(v("r4"), -1);
    assert_eq!(v("r5"), -1);
    let got = cx.var("got").map(|v| v.to_text()).unwrap_or_default();
    assert_eq!(got, "<sip:sr.example.com;lr>");
    assert_eq!(ul.record_key(loc, "alice", "svc").unwrap(), None);
}
