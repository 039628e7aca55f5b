//! Core functions that need no network, module functions implemented here, and golden runs
//! (script + message → edited message, log lines, variables).

use sipox_script::Outcome;

use crate::util::*;

#[test]
fn ruri_rewrites() {
    let s = r#"route {
        setuser("carol"); $var(a) = $ru;
        sethost("c.example"); $var(b) = $ru;
        setport("5062"); $var(c) = $ru;
        sethostport("d.example:5070"); $var(d) = $ru;
        prefix("00"); $var(e) = $rU;
        strip(1); $var(f) = $rU;
        strip_tail(2); $var(g) = $rU;
        revert_uri(); $var(h) = $ru;
        seturi("sip:x@y.example"); $var(i) = $ru;
        rewriteuri("sip:z@y.example"); $var(j) = $ru;
        setuserpass("u:pw"); $var(k) = $ru;
    }"#;
    let (cx, _) = run(s);
    assert_eq!(var(&cx, "a"), "sip:carol@example.com");
    assert_eq!(var(&cx, "b"), "sip:carol@c.example");
    assert_eq!(var(&cx, "c"), "sip:carol@c.example:5062");
    assert_eq!(var(&cx, "d"), "sip:carol@d.example:5070");
    assert_eq!(var(&cx, "e"), "00carol");
    assert_eq!(var(&cx, "f"), "0carol");
    assert_eq!(var(&cx, "g"), "0car");
    assert_eq!(var(&cx, "h"), "sip:bob@example.com");
    assert_eq!(var(&cx, "i"), "sip:x@y.example");
    assert_eq!(var(&cx, "j"), "sip:z@y.example");
    assert_eq!(var(&cx, "k"), "sip:u:pw@y.example");
}

#[test]
fn dst_uri_functions() {
    let s = r#"route {
        if (!isdsturiset()) $var(a) = 1;
        setdsturi("sip:10.0.0.9:5080");
        if (isdsturiset()) $var(b) = $du;
        resetdsturi();
        if (!isdsturiset()) $var(c) = 1;
        if (!setdsturi("not a uri")) $var(d) = 1;
    }"#;
    let (cx, _) = run(s);
    assert_eq!(var(&cx, "a"), "1");
    assert_eq!(var(&cx, "b"), "sip:10.0.0.9:5080");
    assert_eq!(var(&cx, "c"), "1");
    assert_eq!(var(&cx, "d"), "1");
}

#[test]
fn branch_functions_and_serial_forking() {
    let s = r#"route {
        append_branch("sip:a@x", "0.3");
        append_branch("sip:b@x", "0.9");
        append_branch("sip:c@x");
        swap_branches(0, 2);
        $var(first) = $(branch(uri)[0]);
        remove_branch(0);
        $var(n) = $(branch(uri)[*]);
        $var(cnt_before) = $ds;
        serialize_branches(1);
        next_branches();
        $var(r1) = $ru;
        $var(rest1) = $ds;
        next_branches();
        $var(r2) = $ru;
        next_branches();
        $var(r3) = $ru;
        if (!next_branches()) $var(done) = 1;
    }"#;
    let (cx, _) = run(s);
    assert_eq!(var(&cx, "first"), "sip:c@x");
    assert_eq!(var(&cx, "cnt_before"), "<sip:b@x>;q=0.9, <sip:a@x>;q=0.3");
    // R-URI (no q = 1.0) first, then 0.9, then 0.3.
    assert_eq!(var(&cx, "r1"), "sip:bob@example.com");
    assert_eq!(var(&cx, "rest1"), "<null>");
    assert_eq!(var(&cx, "r2"), "sip:b@x");
    assert_eq!(var(&cx, "r3"), "sip:a@x");
    assert_eq!(var(&cx, "done"), "1");
}

#[test]
fn pv_printf_construct_uri_timestamp() {
    let s = r#"route {
        pv_printf($var(p), "$rU at $fd");
        construct_uri("tcp", "u", "h.example", "5070", ";a=b", $var(u));
        construct_uri("udp", "", "h.example", "", "", $var(u2));
        get_timestamp($var(s), $var(us));
    }"#;
    let (cx, _) = run(s);
    assert_eq!(var(&cx, "p"), "bob at atlanta.com");
    assert_eq!(var(&cx, "u"), "sip:u@h.example:5070;transport=tcp;a=b");
    assert_eq!(var(&cx, "u2"), "sip:h.example");
    assert_eq!(var(&cx, "s"), "1700000000");
    assert_eq!(var(&cx, "us"), "123456");
}

#[test]
fn is_myself_uses_sockets_and_aliases() {
    let s = "socket = udp:192.0.2.10:5060\nalias = \"proxy.example\"\nroute { if (is_myself(\"192.0.2.10\")) $var(a) = 1; if (is_myself(\"proxy.example\")) $var(b) = 1; if (!is_myself(\"other.example\")) $var(c) = 1; if (is_myself(\"$rd\")) $var(d) = 1; }";
    let (cx, _) = run(s);
    assert_eq!(var(&cx, "a"), "1");
    assert_eq!(var(&cx, "b"), "1");
    assert_eq!(var(&cx, "c"), "1");
    assert_eq!(var(&cx, "d"), "<null>");
}

#[test]
fn local_cache() {
    let s = r#"route {
        cache_store("local", "k1", "v1");
        cache_fetch("local", "k1", $var(v));
        cache_add("local", "cnt", 5, 0);
        cache_sub("local", "cnt", 2, 0, $var(after_sub));
        cache_counter_fetch("local", "cnt", $var(cnt));
        cache_remove("local", "k1");
        if (!cache_fetch("local", "k1", $var(gone))) $var(missing) = $rc;
        cache_store("local", "ttl", "x", 10);
    }"#;
    let (mut cx, _) = run(s);
    assert_eq!(var(&cx, "v"), "v1");
    assert_eq!(var(&cx, "after_sub"), "3");
    assert_eq!(var(&cx, "cnt"), "3");
    assert_eq!(var(&cx, "missing"), "-2");
    // Expiry follows the clock the driver passes in.
    cx.set_time_us(1_700_000_011_000_000);
    cx.set_message(msg(INVITE));
    let shared = std::sync::Arc::clone(cx.program().shared());
    assert!(shared.cache_fetch(b"ttl", 1_700_000_011_000_000).is_none());
    let e = compile_err("route { cache_store(\"redis:x\", \"k\", \"v\"); }");
    assert!(e.contains("only \"local\" is built in"), "{e}");
}

#[test]
fn raise_event_and_avp_print() {
    let s = r#"route {
        $avp(names) = "caller"; $avp(vals) = $fU;
        raise_event("E_MY_EVENT", $avp(names), $avp(vals));
        avp_print();
    }"#;
    let (mut cx, _) = run(&format!("log_level = 4\n{s}"));
    let ev = cx.program().shared().take_events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].name, "E_MY_EVENT");
    assert_eq!(
        ev[0].params,
        vec![("caller".to_owned(), "alice".to_owned())]
    );
    let logs: Vec<String> = cx.take_logs().into_iter().map(|l| l.text).collect();
    assert!(
        logs.iter().any(|l| l == "avp: name=vals val_str=alice"),
        "{logs:?}"
    );
}

#[test]
fn maxfwd_semantics() {
    let s = "loadmodule \"maxfwd.so\"\nroute { $var(r) = mf_process_maxfwd_header(10); if (is_maxfwd_lt(80)) $var(lt) = 1; }";
    let (mut cx, _) = run(s);
    assert_eq!(var(&cx, "r"), "1");
    assert_eq!(var(&cx, "lt"), "1");
    let mut out = Vec::new();
    cx.write_message(&mut out).unwrap();
    assert!(String::from_utf8_lossy(&out).contains("Max-Forwards: 69\r\n"));
    // Missing header: added with the given value, returns 2.
    let no_mf = INVITE.replace("Max-Forwards: 70\r\n", "");
    let (mut cx, _) = run_on(
        "loadmodule \"maxfwd.so\"\nroute { $var(r) = mf_process_maxfwd_header(10); }",
        &no_mf,
    );
    assert_eq!(var(&cx, "r"), "2");
    let mut out = Vec::new();
    cx.write_message(&mut out).unwrap();
    assert!(String::from_utf8_lossy(&out).contains("Max-Forwards: 10\r\n"));
    // Zero: false (-1), the script replies 483 in real configs.
    let zero = INVITE.replace("Max-Forwards: 70", "Max-Forwards: 0");
    let (cx, _) = run_on(
        "loadmodule \"maxfwd.so\"\nroute { if (!mf_process_maxfwd_header(10)) $var(r) = $rc; }",
        &zero,
    );
    assert_eq!(var(&cx, "r"), "-1");
}

#[test]
fn sipmsgops_subset() {
    let s = r#"loadmodule "sipmsgops.so"
route {
    if (is_method("INVITE|BYE")) $var(m1) = 1;
    if (!is_method("REGISTER")) $var(m2) = 1;
    if (!has_totag()) $var(nt) = 1;
    if (is_present_hf("User-Agent")) $var(ua) = 1;
    if (!has_body()) $var(nb) = 1;
    append_hf("X-Added: $rU\r\n");
    remove_hf("User-Agent");
}"#;
    let (mut cx, _) = run(s);
    for v in ["m1", "m2", "nt", "ua", "nb"] {
        assert_eq!(var(&cx, v), "1", "{v}");
    }
    let mut out = Vec::new();
    cx.write_message(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("X-Added: bob\r\n"), "{text}");
    assert!(!text.contains("User-Agent"), "{text}");
    let bye = INVITE
        .replace("INVITE sip", "BYE sip")
        .replace("CSeq: 314159 INVITE", "CSeq: 314160 BYE")
        .replace(
            "To: Bob <sip:bob@example.com>",
            "To: Bob <sip:bob@example.com>;tag=abc",
        );
    let (cx, _) = run_on(
        "loadmodule \"sipmsgops.so\"\nroute { if (has_totag()) $var(t) = 1; if (is_method(\"bye\")) $var(b) = 1; }",
        &bye,
    );
    assert_eq!(var(&cx, "t"), "1");
    assert_eq!(var(&cx, "b"), "1");
}

#[test]
fn cfgutils() {
    let s = r#"loadmodule "cfgutils.so"
modparam("cfgutils", "initial_probability", 10)
route {
    if (rand_event(100)) $var(always) = 1;
    if (!rand_event(0)) $var(never) = 1;
    rand_set_prob(100);
    if (rand_event()) $var(set) = 1;
    rand_get_prob($var(p));
    rand_reset_prob();
    usleep(10);
    get_static_lock("L"); release_static_lock("L");
    get_dynamic_lock("$ci"); release_dynamic_lock("$ci");
    if (check_time_rec("20231101T000000|20231130T235959")) $var(nov) = 1;
    if (!check_time_rec("20240101T090000|20240101T170000||weekly|||MO")) $var(notmon) = 1;
    ts_usec_delta(10, 500, 9, 200, $var(delta));
}"#;
    let (cx, _) = run(s);
    for v in ["always", "never", "set", "nov", "notmon"] {
        assert_eq!(var(&cx, v), "1", "{v}");
    }
    assert_eq!(var(&cx, "p"), "100");
    assert_eq!(var(&cx, "delta"), "1000300");
    let e = compile_err("loadmodule \"cfgutils.so\"\nroute { check_time_rec(\"bogus\"); }");
    assert!(e.contains("check_time_rec"), "{e}");
}

#[test]
fn async_runs_resume_route_then_stops() {
    let s = "loadmodule \"cfgutils.so\"\nroute[resume] { $var(resumed) = $rc; }\nroute { async(usleep(1), resume); $var(after) = 1; }";
    let (cx, o) = run(s);
    assert_eq!(o, Outcome::Exit);
    assert_eq!(var(&cx, "resumed"), "1");
    assert_eq!(var(&cx, "after"), "<null>");
}

/// Golden run: a small proxy script over an INVITE, checking the edited message, the log
/// lines and variable values together.
#[test]
fn golden_run_edits_logs_vars() {
    let script = r#"log_level = 3
loadmodule "maxfwd.so"
loadmodule "sipmsgops.so"
route {
    if (!mf_process_maxfwd_header(10)) { xlog("L_ERR", "too many hops\n"); exit; }
    if (has_totag()) { exit; }
    if ($rU =~ "^\+?[0-9]+$") {
        $var(kind) = "pstn";
    } else {
        $var(kind) = "user";
    }
    $avp(orig) = $ru;
    $rd = "core.example";
    append_hf("X-Kind: $var(kind)\r\n");
    remove_hf("User-Agent");
    xlog("L_INFO", "$rm $ci -> $ru ($var(kind), was $avp(orig))\n");
    xlog("L_DBG", "not shown\n");
    route(tail, "done");
}
route[tail] { $var(status) = $param(1); return(3); }
"#;
    let (mut cx, o) = run(script);
    assert_eq!(o, Outcome::Done(1));
    assert_eq!(var(&cx, "kind"), "user");
    assert_eq!(var(&cx, "status"), "done");
    assert_eq!(cx.rc(), 3);
    let logs: Vec<(i32, String)> = cx
        .take_logs()
        .into_iter()
        .map(|l| (l.level, l.text))
        .collect();
    assert_eq!(
        logs,
        vec![(3, "INVITE a84b4c76e66710@pc33.atlanta.com -> sip:bob@core.example (user, was sip:bob@example.com)\n".to_owned())]
    );
    let mut out = Vec::new();
    cx.write_message(&mut out).unwrap();
    let expected = INVITE
        .replace(
            "INVITE sip:bob@example.com SIP/2.0",
            "INVITE sip:bob@core.example SIP/2.0",
        )
        .replace("Max-Forwards: 70", "Max-Forwards: 69")
        .replace("User-Agent: TestUA/1.0\r\n", "")
        .replace(
            "Content-Length: 0\r\n\r\n",
            "Content-Length: 0\r\nX-Kind: user\r\n\r\n",
        );
    assert_eq!(String::from_utf8_lossy(&out), expected);
}

#[test]
fn templates_compile() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../cfg-syntax/tests/data/ok");
    for t in [
        "default.cfg",
        "residential.cfg",
        "trunking.cfg",
        "loadbalancer.cfg",
    ] {
        let parsed = sipox_cfg_syntax::parse_file(
            std::path::Path::new(&format!("{dir}/{t}")),
            &Default::default(),
        );
        assert!(!parsed.has_errors(), "{t}: {}", parsed.render_diagnostics());
        let c = sipox_script::compile(
            &parsed.ast,
            &parsed.sources,
            &sipox_script::Registry::standard(),
            &Default::default(),
        );
        let p = c.program.unwrap_or_else(|| {
            panic!(
                "{t}:\n{}",
                sipox_cfg_syntax::render_all(&c.diagnostics, &parsed.sources)
            )
        });
        assert!(
            p.unimplemented_functions().iter().any(|(m, _)| *m == "tm"),
            "{t}"
        );
    }
}
