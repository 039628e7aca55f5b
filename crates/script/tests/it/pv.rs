//! Core pseudo-variables, one test per documented example or field (OpenSIPS manual,
//! Script-CoreVar), on our own messages.

use sipox_script::Outcome;

use crate::util::*;

const REQ: &str = "INVITE sip:bob:secret@example.com:5080;transport=tcp SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
Via: SIP/2.0/TCP 10.0.0.2:5070;branch=z9hG4bK2\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@atlanta.com>;tag=ft1\r\n\
To: \"Bob\" <sip:bob@example.com>;tag=tt1\r\n\
Call-ID: cid-1@host\r\n\
CSeq: 7 INVITE\r\n\
Contact: \"A\" <sip:alice@10.0.0.1;ob>;q=0.7;expires=300;methods=\"INVITE,BYE\", <sip:alice@10.0.0.9>\r\n\
Contact: <sip:third@10.0.0.3>\r\n\
Path: <sip:a.com>\r\n\
Path: <sip:b.com>\r\n\
User-Agent: UA/2\r\n\
P-Asserted-Identity: <sip:+4911@pai.example>\r\n\
P-Preferred-Identity: \"Pref\" <sip:pp@ppi.example>\r\n\
Remote-Party-ID: <sip:rpid@rpid.example>;party=calling\r\n\
Diversion: <sip:div@div.example>;reason=user-busy;privacy=full\r\n\
Refer-To: <sip:carol@example.com>\r\n\
Proxy-Authorization: Digest username=\"alice@atlanta.com\", realm=\"atlanta.com\", nonce=\"n1\", uri=\"sip:bob@example.com\", response=\"r1\", algorithm=MD5, cnonce=\"c1\", opaque=\"o1\", qop=auth, nc=00000001\r\n\
X-Test: one\r\n\
X-Test: two\r\n\
Content-Type: text/plain\r\n\
Content-Length: 5\r\n\r\nhello";

fn pv(expr: &str) -> String {
    let (cx, o) = run_on(&format!("route {{ $var(r) = {expr}; }}"), REQ);
    assert!(matches!(o, Outcome::Done(_)), "{o:?}");
    var(&cx, "r")
}

#[test]
fn request_uri() {
    assert_eq!(pv("$ru"), "sip:bob:secret@example.com:5080;transport=tcp");
    assert_eq!(pv("$ruri"), pv("$ru"));
    assert_eq!(pv("$rU"), "bob");
    assert_eq!(pv("$ruri.user"), "bob");
    assert_eq!(pv("$rd"), "example.com");
    assert_eq!(pv("$ruri.domain"), "example.com");
    assert_eq!(pv("$rp"), "5080");
    assert_eq!(pv("$rP"), "tcp");
    assert_eq!(pv("$ru_q"), "-1");
}

#[test]
fn request_uri_writes_and_original() {
    let s = r#"route {
        $rU = "carol"; $var(a) = $ru;
        $rd = "b.example"; $var(b) = $ru;
        $rp = 5099; $var(c) = $ru;
        $var(ou) = $ou; $var(oU) = $oU; $var(od) = $od; $var(op) = $op; $var(oP) = $oP;
        $ru = "sip:dave@d.example"; $var(d) = $ru;
    }"#;
    let (cx, _) = run_on(s, REQ);
    assert_eq!(
        var(&cx, "a"),
        "sip:carol:secret@example.com:5080;transport=tcp"
    );
    assert_eq!(
        var(&cx, "b"),
        "sip:carol:secret@b.example:5080;transport=tcp"
    );
    assert_eq!(
        var(&cx, "c"),
        "sip:carol:secret@b.example:5099;transport=tcp"
    );
    assert_eq!(
        var(&cx, "ou"),
        "sip:bob:secret@example.com:5080;transport=tcp"
    );
    assert_eq!(var(&cx, "oU"), "bob");
    assert_eq!(var(&cx, "od"), "example.com");
    assert_eq!(var(&cx, "op"), "5080");
    assert_eq!(var(&cx, "oP"), "tcp");
    assert_eq!(var(&cx, "d"), "sip:dave@d.example");
}

#[test]
fn destination_uri() {
    let s = r#"route {
        if ($du == NULL) $var(unset) = 1;
        $du = "sip:proxy.example:5070;transport=tls";
        $var(du) = $du; $var(dd) = $dd; $var(dp) = $dp; $var(dP) = $dP;
        $dd = "p2.example"; $var(du2) = $duri;
        $du = NULL; if ($du == NULL) $var(reset) = 1;
    }"#;
    let (cx, _) = run_on(s, REQ);
    assert_eq!(var(&cx, "unset"), "1");
    assert_eq!(var(&cx, "du"), "sip:proxy.example:5070;transport=tls");
    assert_eq!(var(&cx, "dd"), "proxy.example");
    assert_eq!(var(&cx, "dp"), "5070");
    assert_eq!(var(&cx, "dP"), "tls");
    assert_eq!(var(&cx, "du2"), "sip:p2.example:5070;transport=tls");
    assert_eq!(var(&cx, "reset"), "1");
}

#[test]
fn from_to() {
    assert_eq!(pv("$fu"), "sip:alice@atlanta.com");
    assert_eq!(pv("$from"), "sip:alice@atlanta.com");
    assert_eq!(pv("$fU"), "alice");
    assert_eq!(pv("$from.user"), "alice");
    assert_eq!(pv("$fd"), "atlanta.com");
    assert_eq!(pv("$from.domain"), "atlanta.com");
    assert_eq!(pv("$fn"), "\"Alice\"");
    assert_eq!(pv("$ft"), "ft1");
    assert_eq!(pv("$tu"), "sip:bob@example.com");
    assert_eq!(pv("$to"), "sip:bob@example.com");
    assert_eq!(pv("$tU"), "bob");
    assert_eq!(pv("$to.user"), "bob");
    assert_eq!(pv("$td"), "example.com");
    assert_eq!(pv("$to.domain"), "example.com");
    assert_eq!(pv("$tn"), "\"Bob\"");
    assert_eq!(pv("$tt"), "tt1");
}

#[test]
fn message_headers() {
    assert_eq!(pv("$ci"), "cid-1@host");
    assert_eq!(pv("$cs"), "7");
    assert_eq!(pv("$rm"), "INVITE");
    assert_eq!(pv("$cl"), "5");
    assert_eq!(pv("$cT"), "text/plain");
    assert_eq!(pv("$ua"), "UA/2");
    assert_eq!(pv("$rt"), "sip:carol@example.com");
    assert_eq!(pv("$ai"), "sip:+4911@pai.example");
    assert_eq!(pv("$re"), "sip:rpid@rpid.example");
    assert_eq!(pv("$pu"), "sip:pp@ppi.example");
    assert_eq!(pv("$pU"), "pp");
    assert_eq!(pv("$pd"), "ppi.example");
    assert_eq!(pv("$pn"), "\"Pref\"");
    assert_eq!(pv("$di"), "sip:div@div.example");
    assert_eq!(pv("$dir"), "user-busy");
    assert_eq!(pv("$dip"), "full");
    assert_eq!(pv("$path"), "<sip:a.com>,<sip:b.com>");
}

#[test]
fn contact() {
    assert_eq!(
        pv("$ct"),
        "\"A\" <sip:alice@10.0.0.1;ob>;q=0.7;expires=300;methods=\"INVITE,BYE\""
    );
    assert_eq!(pv("$(ct[1])"), "<sip:alice@10.0.0.9>");
    assert_eq!(pv("$(ct[-1])"), "<sip:third@10.0.0.3>");
    assert_eq!(pv("$ct.fields(uri)"), "sip:alice@10.0.0.1;ob");
    assert_eq!(pv("$ct.fields(name)"), "\"A\"");
    assert_eq!(pv("$ct.fields(q)"), "0.7");
    assert_eq!(pv("$ct.fields(expires)"), "300");
    assert_eq!(pv("$ct.fields(methods)"), "INVITE,BYE");
    assert_eq!(
        pv("$ct.fields(params)"),
        "q=0.7;expires=300;methods=\"INVITE,BYE\""
    );
    assert_eq!(pv("$(ct.fields(uri)[1])"), "sip:alice@10.0.0.9");
    assert_eq!(pv("$ct.fields(received)"), "<null>");
}

#[test]
fn generic_headers() {
    assert_eq!(pv("$hdr(X-Test)"), "one");
    assert_eq!(pv("$(hdr(X-Test)[1])"), "two");
    assert_eq!(pv("$(hdr(X-Test)[-1])"), "two");
    assert_eq!(pv("$(hdr(x-test)[*])"), "one,two");
    assert_eq!(pv("$hdr(v)"), "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1");
    assert_eq!(pv("$hdrcnt(Via)"), "2");
    assert_eq!(pv("$hdrcnt(Path)"), "2");
    assert_eq!(pv("$hdrcnt(X-None)"), "0");
    assert_eq!(pv("$(hdr(Path)[0])"), "<sip:a.com>");
    assert_eq!(pv("$(hdr_name[0])"), "Via");
    assert_eq!(pv("$(hdr_name[-1])"), "Content-Length");
    assert_eq!(pv("$hdr(X-None)"), "<null>");
}

#[test]
fn message_level() {
    assert_eq!(pv("$rb"), "hello");
    assert_eq!(pv("$ml"), REQ.len().to_string());
    assert!(pv("$mb").starts_with("INVITE sip:bob"));
    assert_eq!(pv("$mi"), "1");
    assert_eq!(pv("$msg.type"), "request");
    assert_eq!(pv("$msg.is_request"), "1");
    assert_eq!(pv("$rs"), "<null>");
    let reply = "SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let (cx, _) = run_on(
        "route { $var(rs) = $rs; $var(rr) = $rr; $var(t) = $msg.type; $var(m) = $rm; }",
        reply,
    );
    assert_eq!(var(&cx, "rs"), "486");
    assert_eq!(var(&cx, "rr"), "Busy Here");
    assert_eq!(var(&cx, "t"), "reply");
    assert_eq!(var(&cx, "m"), "INVITE");
}

#[test]
fn credentials() {
    assert_eq!(pv("$au"), "alice");
    assert_eq!(pv("$aU"), "alice@atlanta.com");
    assert_eq!(pv("$ad"), "atlanta.com");
    assert_eq!(pv("$ar"), "atlanta.com");
    assert_eq!(pv("$adu"), "sip:bob@example.com");
    assert_eq!(pv("$an"), "n1");
    assert_eq!(pv("$auth.nonce"), "n1");
    assert_eq!(pv("$auth.resp"), "r1");
    assert_eq!(pv("$auth.cnonce"), "c1");
    assert_eq!(pv("$auth.opaque"), "o1");
    assert_eq!(pv("$auth.alg"), "MD5");
    assert_eq!(pv("$auth.qop"), "auth");
    assert_eq!(pv("$auth.nc"), "00000001");
    assert_eq!(pv("$Au"), "alice");
    // Without credentials $Au falls back to the From user.
    let (cx, _) = run("route { $var(a) = $Au; $var(b) = $au; }");
    assert_eq!(var(&cx, "a"), "alice");
    assert_eq!(var(&cx, "b"), "<null>");
}

#[test]
fn network_and_process() {
    assert_eq!(pv("$si"), "127.0.0.1");
    assert_eq!(pv("$src_ip"), "127.0.0.1");
    assert_eq!(pv("$sp"), "5060");
    assert_eq!(pv("$proto"), "udp");
    assert_eq!(pv("$socket_in"), "udp:127.0.0.1:5060");
    assert_eq!(pv("$socket_in(port)"), "5060");
    assert_eq!(pv("$socket_in(af)"), "INET");
    assert_eq!(pv("$pp"), std::process::id().to_string());
}

#[test]
fn time() {
    // The test clock is 1_700_000_000.123456 (2023-11-14 22:13:20 UTC, a Tuesday).
    assert_eq!(pv("$Ts"), "1700000000");
    assert_eq!(pv("$Tsm"), "123456");
    assert_eq!(pv("$Tf"), "Tue Nov 14 22:13:20 2023");
    assert_eq!(pv("$time(%Y-%m-%d %H:%M)"), "2023-11-14 22:13");
    assert_eq!(pv("$TS"), "0");
    let (cx, _) = run(
        "loadmodule \"cfgutils.so\"\nroute { $var(h) = $ctime(hour); $var(y) = $ctime(year); $var(w) = $ctime(wday); }",
    );
    assert_eq!(var(&cx, "h"), "22");
    assert_eq!(var(&cx, "y"), "2023");
    assert_eq!(var(&cx, "w"), "3");
}

#[test]
fn script_level() {
    let s = r#"route[B] { $var(full) = $route; $var(name) = $route.name; $var(type) = $route.type;
        $var(parent) = $(route[1]); $var(top) = $(route[-1]); $var(stack) = $(route[*]); $var(oob) = $(route[3]); }
route[A] { route(B); }
route { $var(line) = $cfg_line; route(A); }"#;
    let (cx, _) = run(s);
    assert_eq!(var(&cx, "full"), "route[B]");
    assert_eq!(var(&cx, "name"), "B");
    assert_eq!(var(&cx, "type"), "route");
    assert_eq!(var(&cx, "parent"), "route[A]");
    assert_eq!(var(&cx, "top"), "route");
    assert_eq!(var(&cx, "stack"), "route > route[A] > route[B]");
    assert_eq!(var(&cx, "oob"), "<null>");
    assert_eq!(var(&cx, "line"), "4");
}

#[test]
fn param_by_variable_index() {
    let s = r#"route[PRINT_VAR] { $var(index) = 2; $var(out) = "$param(1): <$param($var(index))>"; }
route { $var(debug) = "DBUG:"; route(PRINT_VAR, $var(debug), "param value"); }"#;
    let (cx, _) = run(s);
    assert_eq!(var(&cx, "out"), "DBUG:: <param value>");
}

#[test]
fn flags_and_branches() {
    let s = r#"route {
        setflag("X"); $var(f1) = $msg.flag(X); $msg.flag(X) = 0; $var(f2) = $msg.flag(X);
        if (!isflagset("X")) $var(f3) = 1;
        setbflag("Y"); $var(b1) = $branch.flag(Y); $branch.flag(Y) = 0; $var(b2) = $branch.flag(Y);
        $branch = "sip:new@domain.org";
        $var(last) = $(branch(uri)[-1]);
        $du = "sip:193.168.3.50";
        append_branch("sip:foo@bar.com", "0.5");
        $var(q1) = $(branch(q)[1]);
        $var(cnt) = 0;
        $branch(uri) = "sip:user@domain.ro";
        $(branch(q)[0]) = 1000;
        $var(u0) = $(branch(uri)[0]);
        $var(q0) = $(branch(q)[0]);
        $var(ds) = $ds;
    }"#;
    let (cx, _) = run(s);
    assert_eq!(var(&cx, "f1"), "1");
    assert_eq!(var(&cx, "f2"), "0");
    assert_eq!(var(&cx, "f3"), "1");
    assert_eq!(var(&cx, "b1"), "1");
    assert_eq!(var(&cx, "b2"), "0");
    assert_eq!(var(&cx, "last"), "sip:new@domain.org");
    assert_eq!(var(&cx, "q1"), "500");
    assert_eq!(var(&cx, "u0"), "sip:user@domain.ro");
    assert_eq!(var(&cx, "q0"), "1000");
    assert_eq!(
        var(&cx, "ds"),
        "<sip:user@domain.ro>;q=1, <sip:foo@bar.com>;q=0.5"
    );
}

#[test]
fn avp_documented_example() {
    let s = r#"route {
        $avp(demo) = "one"; $avp(demo) = "two"; $avp(demo) = "three";
        $var(noidx) = $avp(demo); $var(i2) = $(avp(demo)[2]);
        $(avp(demo)[1]) = NULL; $var(after_del) = $(avp(demo)[*]);
        $(avp(demo)[append]) = "last"; $var(appended) = $(avp(demo)[-1]);
    }"#;
    let (cx, _) = run(s);
    assert_eq!(var(&cx, "noidx"), "three");
    assert_eq!(var(&cx, "i2"), "one");
    assert_eq!(var(&cx, "after_del"), "three,one");
    assert_eq!(var(&cx, "appended"), "last");
}

#[test]
fn var_documented_example() {
    assert_eq!(eval("3 + (7&(~2))"), "8");
    let (cx, _) = run("route { $var(a) = 6; if ( [ $var(a) & 4 ] ) $var(bit) = 1; }");
    assert_eq!(var(&cx, "bit"), "1");
}

#[test]
fn log_levels_and_colors() {
    let s = "log_level = 2\nroute { $var(l0) = $log_level; $log_level = 4; $var(l1) = $log_level; $log_level = NULL; $var(l2) = $log_level; $var(c) = $C(rx) + \"x\" + $C(xx); }";
    let (cx, _) = run(s);
    assert_eq!(var(&cx, "l0"), "2");
    assert_eq!(var(&cx, "l1"), "4");
    assert_eq!(var(&cx, "l2"), "2");
    assert_eq!(var(&cx, "c"), "\u{1b}[0;31mx\u{1b}[0m");
}

#[test]
fn argv_env_shv_random() {
    let prog = sipox_script::compile_str(
        "t.cfg",
        "loadmodule \"cfgutils.so\"\nmodparam(\"cfgutils\", \"shvset\", \"counter=i:5\")\nroute { $var(a) = $argv(foo); $var(s) = $shv(counter); $shv(counter) = $shv(counter) + 1; $var(h) = $env(HOME); $var(r) = $RANDOM; }",
    )
    .unwrap();
    let mut cx = sipox_script::MsgCx::new(prog);
    cx.set_argv(vec![("foo".to_owned(), "0".to_owned())]);
    cx.set_message(msg(INVITE));
    cx.run_main();
    assert_eq!(var(&cx, "a"), "0");
    assert_eq!(var(&cx, "s"), "5");
    assert_eq!(cx.program().shared().shv("counter").unwrap().to_text(), "6");
    assert_eq!(
        var(&cx, "h"),
        std::env::var("HOME").unwrap_or_else(|_| "<null>".to_owned())
    );
    assert!(var(&cx, "r").parse::<i64>().unwrap() >= 0);
}

#[test]
fn err_vars_default_null() {
    assert_eq!(pv("$err.class"), "<null>");
    assert_eq!(pv("$err.rcode"), "<null>");
}

#[test]
fn request_and_reply_contexts() {
    let (cx, o) = run_on(
        "route { $var(a) = $(<request>ru); if ($(<reply>rs) == NULL) $var(b) = \"null\"; }",
        INVITE,
    );
    assert!(matches!(o, Outcome::Done(_)), "{o:?}");
    assert_eq!(
        var(&cx, "a"),
        "sip:bob@example.com",
        "<request> of a request is itself"
    );
    assert_eq!(
        var(&cx, "b"),
        "null",
        "the other message is not available: NULL, never the wrong one"
    );
}

#[test]
fn socket_in_and_socket_out_fields() {
    let prog = sipox_script::compile_str(
        "t.cfg",
        "route { $var(a) = $socket_in + \" \" + $socket_in(af) + \" \" + $socket_out(port); $socket_out = \"udp:1.2.3.4:5060\"; $var(b) = $socket_out; }",
    )
    .unwrap();
    let mut cx = sipox_script::MsgCx::new(prog);
    cx.capture_logs();
    cx.set_message(msg(INVITE));
    cx.set_source(sipox_script::Source {
        ip: "10.0.0.1".parse().unwrap(),
        port: 5070,
        proto: "tcp",
        local_ip: "::1".parse().unwrap(),
        local_port: 5061,
    });
    cx.run_main();
    assert_eq!(var(&cx, "a"), "tcp:::1:5061 INET6 5061");
    // without a runtime the write is refused and the receiving socket stays
    assert_eq!(var(&cx, "b"), "tcp:::1:5061");
    let e = compile_err("route { $socket_out(port) = 5; }");
    assert!(e.contains("read-only"), "{e}");
    let e = compile_err("route { $var(x) = $socket_out(bogus); }");
    assert!(e.contains("socket_out"), "{e}");
}
