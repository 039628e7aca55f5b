//! Statements, expressions, values, return codes, AVPs.

use sipox_script::Outcome;

use crate::util::*;

#[test]
fn arithmetic_and_concat() {
    assert_eq!(eval("1 + 2 * 3"), "9"); // one precedence level, left-assoc
    assert_eq!(eval("\"a\" + \"b\""), "ab");
    assert_eq!(eval("\"n=\" + 5"), "n=5");
    assert_eq!(eval("7 / 2"), "3");
    assert_eq!(eval("7 % 4"), "3");
    assert_eq!(eval("6 & 3"), "2");
    assert_eq!(eval("1 << 4"), "16");
}

#[test]
fn return_codes_and_rc() {
    let s = r#"
route[neg] { return(-2); }
route[pos] { return(5); }
route {
    route(neg);
    $var(a) = $rc;
    if (route(pos)) $var(b) = $retcode;
    if (!route(neg)) $var(c) = "negfalse";
    return(7);
}"#;
    let (cx, o) = run(s);
    assert_eq!(o, Outcome::Done(7));
    assert_eq!(var(&cx, "a"), "-2");
    assert_eq!(var(&cx, "b"), "5");
    assert_eq!(var(&cx, "c"), "negfalse");
}

#[test]
fn return_zero_stops_script() {
    let s = "route[z] { return(0); }\nroute { route(z); $var(after) = 1; }";
    let (cx, o) = run(s);
    assert_eq!(o, Outcome::Exit);
    assert_eq!(var(&cx, "after"), "<null>");
}

#[test]
fn exit_and_drop() {
    assert_eq!(run("route { exit; }").1, Outcome::Exit);
    assert_eq!(run("route { drop; }").1, Outcome::Drop);
    assert_eq!(run("route { $var(x)=1; }").1, Outcome::Done(1));
}

#[test]
fn string_compare_is_case_insensitive() {
    let s = r#"route {
        $var(s) = "ABC";
        if ($var(s) == "abc") $var(a) = 1;
        if ($rm == "invite") $var(b) = 1;
        if ($var(s) < "abd") $var(c) = 1;
        if ($var(none) == NULL) $var(d) = 1;
        if ($rm != NULL) $var(e) = 1;
        if ($cs == 314159) $var(f) = 1;
    }"#;
    let (cx, _) = run(s);
    for v in ["a", "b", "c", "d", "e", "f"] {
        assert_eq!(var(&cx, v), "1", "$var({v})");
    }
}

#[test]
fn regex_match_case_insensitive() {
    let s = r#"route {
        if ($ru =~ "^SIP:BOB@") $var(a) = 1;
        if ($fu !~ "bob") $var(b) = 1;
        $var(re) = "ATLANTA\.com$";
        if ($fu =~ $var(re)) $var(c) = 1;
        if ($ru =~ "^sip:[[:alpha:]]+@") $var(d) = 1;
    }"#;
    let (cx, _) = run(s);
    for v in ["a", "b", "c", "d"] {
        assert_eq!(var(&cx, v), "1", "$var({v})");
    }
}

#[test]
fn avp_stack_semantics() {
    let s = r#"route {
        $avp(a) = 1; $avp(a) = 2; $avp(a) = "three";
        $var(top) = $avp(a);
        $var(i1) = $(avp(a)[1]);
        $var(last) = $(avp(a)[-1]);
        $var(all) = $(avp(a)[*]);
        $avp(a) = NULL;
        $var(after_pop) = $avp(a);
        $(avp(a)[0]) = "zero";
        $var(set0) = $avp(a);
        $avp(a) := "only";
        $var(cnt) = 0;
        for ($var(v) in $(avp(a)[*])) $var(cnt) = $var(cnt) + 1;
        $avp(a) := NULL;
        if ($avp(a) == NULL) $var(gone) = 1;
    }"#;
    let (cx, _) = run(s);
    assert_eq!(var(&cx, "top"), "three");
    assert_eq!(var(&cx, "i1"), "2");
    assert_eq!(var(&cx, "last"), "1");
    assert_eq!(var(&cx, "all"), "three,2,1");
    assert_eq!(var(&cx, "after_pop"), "2");
    assert_eq!(var(&cx, "set0"), "zero");
    assert_eq!(var(&cx, "cnt"), "1");
    assert_eq!(var(&cx, "gone"), "1");
}

#[test]
fn while_and_max_loops() {
    let (cx, _) = run("route { $var(i) = 0; while ($var(i) < 10) { $var(i) = $var(i) + 1; } }");
    assert_eq!(var(&cx, "i"), "10");
    let (mut cx, o) = run(
        "max_while_loops = 5\nroute { $var(i) = 0; while (1) { $var(i) = $var(i) + 1; } $var(done) = 1; }",
    );
    assert_eq!(o, Outcome::Done(1));
    assert_eq!(var(&cx, "i"), "5");
    assert!(
        cx.take_logs()
            .iter()
            .any(|l| l.text.contains("max_while_loops"))
    );
}

#[test]
fn switch_fallthrough_and_break() {
    let s = r#"route {
        switch ($rm) {
            case "INVITE": $var(a) = 1;
            case "ACK": $var(b) = 1; break;
            case "BYE": $var(c) = 1;
            default: $var(d) = 1;
        }
        $var(n) = 2;
        switch ($var(n)) { case 1: $var(x) = "one"; break; case 2: $var(x) = "two"; break; default: $var(x) = "other"; }
    }"#;
    let (cx, _) = run(s);
    assert_eq!(var(&cx, "a"), "1");
    assert_eq!(var(&cx, "b"), "1");
    assert_eq!(var(&cx, "c"), "<null>");
    assert_eq!(var(&cx, "d"), "<null>");
    assert_eq!(var(&cx, "x"), "two");
}

#[test]
fn route_params() {
    let s = r#"route[r] { $var(p1) = $param(1); $var(p2) = $param(2); $var(p3) = $param(3); }
route { route(r, "x", 42); }"#;
    let (cx, _) = run(s);
    assert_eq!(var(&cx, "p1"), "x");
    assert_eq!(var(&cx, "p2"), "42");
    assert_eq!(var(&cx, "p3"), "<null>");
}

#[test]
fn event_route_params_by_name() {
    let s = r#"route { exit; }
event_route[E_UL_CONTACT_INSERT] { $var(aor) = $param(aor); $var(none) = $param(nope); }"#;
    let (mut cx, _) = run(s);
    let out = cx.run_event(
        "E_UL_CONTACT_INSERT",
        vec![("aor".into(), "alice@example.com".into())],
    );
    assert_eq!(out, Some(Outcome::Done(1)));
    assert_eq!(var(&cx, "aor"), "alice@example.com");
    assert_eq!(var(&cx, "none"), "<null>");
    assert_eq!(cx.run_event("E_OTHER", Vec::new()), None);
}

#[test]
fn var_persists_across_messages_avp_does_not() {
    let prog = sipox_script::compile_str(
        "t.cfg",
        "route { $var(n) = $var(n) + 1; $avp(a) = 1; $var(c) = $(avp(a)[*]); }",
    )
    .unwrap();
    let mut cx = sipox_script::MsgCx::new(prog);
    for _ in 0..3 {
        cx.set_message(msg(INVITE));
        cx.run_main();
    }
    assert_eq!(var(&cx, "n"), "3");
    assert_eq!(var(&cx, "c"), "1");
}

#[test]
fn logical_ops_same_precedence() {
    // OpenSIPS: && and || have the same precedence, left associative.
    let (cx, _) = run("route { if (1 || 0 && 0) $var(a) = 1; else $var(a) = 2; }");
    assert_eq!(var(&cx, "a"), "2");
}

#[test]
fn xlog_levels() {
    let s = "log_level = 2\nroute { xlog(\"L_ERR\", \"err $rm\\n\"); xlog(\"L_DBG\", \"dbg\\n\"); xlog(\"plain $ci\\n\"); xdbg(\"x\"); }";
    let (mut cx, _) = run(s);
    let logs: Vec<String> = cx.take_logs().into_iter().map(|l| l.text).collect();
    assert_eq!(
        logs,
        vec![
            "err INVITE\n".to_owned(),
            "plain a84b4c76e66710@pc33.atlanta.com\n".to_owned()
        ]
    );
}

#[test]
fn compile_errors_all_reported_with_hints() {
    let e = compile_err(
        "loadmodule \"sl.so\"\nloadmodule \"maxfwdd.so\"\nmodparam(\"sl\", \"enable_statz\", 1)\nroute {\n  sl_send_replyy(404, \"x\");\n  $var(a) = $fuu;\n  $var(b) = $(ru{uri.usr});\n  setflag();\n  t_relay();\n}\n",
    );
    assert!(
        e.contains("test.cfg:2:1: error: unknown module 'maxfwdd'"),
        "{e}"
    );
    assert!(e.contains("did you mean \"maxfwd.so\"?"), "{e}");
    assert!(
        e.contains("module 'sl' has no parameter 'enable_statz'"),
        "{e}"
    );
    assert!(
        e.contains("test.cfg:5:3: error: unknown function 'sl_send_replyy'"),
        "{e}"
    );
    assert!(e.contains("did you mean sl_send_reply()?"), "{e}");
    assert!(e.contains("unknown pseudo-variable $fuu"), "{e}");
    assert!(e.contains("unknown transformation {uri.usr}"), "{e}");
    assert!(e.contains("did you mean {uri.user}?"), "{e}");
    assert!(
        e.contains("function 'setflag' takes 1 argument(s), 0 given"),
        "{e}"
    );
    assert!(
        e.contains("exported by module 'tm', which is not loaded"),
        "{e}"
    );
}

#[test]
fn declared_function_is_runtime_error() {
    let (_, o) = run("loadmodule \"sl.so\"\nroute { sl_send_reply(404, \"Not Here\"); }");
    assert!(
        matches!(
            o,
            Outcome::Error(sipox_script::RunError::NotImplemented {
                name: "sl_send_reply",
                module: "sl"
            })
        ),
        "{o:?}"
    );
    let p = sipox_script::compile_str("t.cfg", "loadmodule \"sl.so\"\nloadmodule \"tm.so\"\nroute { if (0) t_relay(); sl_send_reply(404, \"x\"); }").unwrap();
    assert_eq!(
        p.unimplemented_functions(),
        &[("sl", "sl_send_reply"), ("tm", "t_relay")]
    );
}

#[test]
fn route_type_restrictions_follow_callers() {
    // maxfwd's function is request-route only; reaching it from a failure route through a
    // sub-route is an error at load, as in OpenSIPS.
    let e = compile_err(
        "loadmodule \"maxfwd.so\"\nroute[check] { mf_process_maxfwd_header(10); }\nroute { route(check); }\nfailure_route[f] { route(check); }\n",
    );
    assert!(e.contains("test.cfg:2:16: error: function 'mf_process_maxfwd_header' cannot be used in failure_route blocks"), "{e}");
    // From the request route only, it is fine.
    assert!(sipox_script::compile_str("t.cfg", "loadmodule \"maxfwd.so\"\nroute[check] { mf_process_maxfwd_header(10); }\nroute { route(check); }\n").is_ok());
}

#[test]
fn initial_probability_modparam() {
    let p = sipox_script::compile_str(
        "t.cfg",
        "loadmodule \"cfgutils.so\"\nmodparam(\"cfgutils\", \"initial_probability\", 0)\nroute { if (rand_event()) $var(hit) = 1; }",
    )
    .unwrap();
    assert_eq!(p.shared().rand_prob(), 0);
}
