//! One test per documented example of the core transformations (OpenSIPS manual,
//! Script-Tran), written as our own scripts.

use crate::util::*;

/// Runs `$var(x) = INPUT; $var(r) = $(var(x)TRANS);` and returns `$var(r)` as text.
fn tr(input: &str, trans: &str) -> String {
    eval_with(&format!("$var(x) = {input};"), &format!("$(var(x){trans})"))
}

fn eval_with(setup: &str, expr: &str) -> String {
    let (cx, o) = run(&format!("route {{ {setup} $var(r) = {expr}; }}"));
    assert!(matches!(o, sipox_script::Outcome::Done(_)), "{o:?}");
    var(&cx, "r")
}

#[test]
fn s_len() {
    assert_eq!(tr("\"abc\"", "{s.len}"), "3");
    let (cx, _) = run("route { $var(x) = \"abc\"; if ($(var(x){s.len}) == 3) $var(ok) = 1; }");
    assert_eq!(var(&cx, "ok"), "1");
}

#[test]
fn s_int() {
    assert_eq!(tr("\"2868.12 sec\"", "{s.int}"), "2868");
    assert_eq!(tr("\"abc\"", "{s.int}"), "0");
}

#[test]
fn s_md5_crc32_sha() {
    assert_eq!(tr("\"abc\"", "{s.md5}"), "900150983cd24fb0d6963f7d28e17f72");
    assert_eq!(tr("\"abc\"", "{s.crc32}"), "891568578");
    assert_eq!(
        tr("\"abc\"", "{s.sha1}"),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(
        tr("\"abc\"", "{s.sha256}"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(tr("\"abc\"", "{s.sha224}").len(), 56);
    assert_eq!(tr("\"abc\"", "{s.sha384}").len(), 96);
    assert_eq!(tr("\"abc\"", "{s.sha512}").len(), 128);
    // RFC 2202 test case 2.
    assert_eq!(
        tr("\"what do ya want for nothing?\"", "{s.sha1_hmac,Jefe}"),
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
    );
    assert_eq!(tr("\"abc\"", "{s.sha256_hmac,secret}").len(), 64);
}

#[test]
fn s_reverse() {
    assert_eq!(tr("\"onetwothree\"", "{s.reverse}"), "eerhtowteno");
}

#[test]
fn s_substr() {
    assert_eq!(tr("\"abcd\"", "{s.substr,1,0}"), "bcd");
    assert_eq!(tr("\"abcd\"", "{s.substr,1,2}"), "bc");
    assert_eq!(tr("\"abcd\"", "{s.substr,-1,0}"), "d");
    assert_eq!(tr("\"abcd\"", "{s.substr,0,-1}"), "abc");
}

#[test]
fn s_select() {
    assert_eq!(tr("\"12,34,56\"", "{s.select,1,,}"), "34");
    assert_eq!(tr("\"12,34,56\"", "{s.select,-2,,}"), "34");
    assert_eq!(tr("\"a|b|c\"", "{s.select,0,|}"), "a");
}

#[test]
fn s_hexa_and_escapes() {
    assert_eq!(tr("\"ab\"", "{s.encode.hexa}"), "6162");
    assert_eq!(tr("\"6162\"", "{s.decode.hexa}"), "ab");
    assert_eq!(tr("\"a'b\"", "{s.escape.common}"), "a\\'b");
    assert_eq!(tr("\"a\\\\'b\"", "{s.unescape.common}"), "a'b");
    assert_eq!(tr("\"a b@c\"", "{s.escape.user}"), "a%20b%40c");
    assert_eq!(tr("\"a%20b%40c\"", "{s.unescape.user}"), "a b@c");
    assert_eq!(tr("\"a;b=c\"", "{s.escape.param}"), "a%3Bb%3Dc");
    assert_eq!(tr("\"a%3Bb%3Dc\"", "{s.unescape.param}"), "a;b=c");
    assert_eq!(tr("\"AbC\"", "{s.tolower}"), "abc");
    assert_eq!(tr("\"AbC\"", "{s.toupper}"), "ABC");
    assert_eq!(tr("255", "{s.dec2hex}"), "ff");
    assert_eq!(tr("\"ff\"", "{s.hex2dec}"), "255");
}

#[test]
fn s_index_rindex() {
    let setup = "$var(s) = 'onetwothreeone'; $var(n) = 'one';";
    assert_eq!(eval_with(setup, "$(var(s){s.index,$var(n)})"), "0");
    assert_eq!(eval_with(setup, "$(var(s){s.index,$var(n),0})"), "0");
    assert_eq!(eval_with(setup, "$(var(s){s.index,$var(n),3})"), "11");
    assert_eq!(eval_with(setup, "$(var(s){s.index,$var(n),-11})"), "11");
    assert_eq!(eval_with(setup, "$(var(s){s.index,$var(n),-25})"), "11");
    assert_eq!(eval_with(setup, "$(var(s){s.index,xyz})"), "<null>");
    assert_eq!(eval_with(setup, "$(var(s){s.rindex,$var(n)})"), "11");
    assert_eq!(eval_with(setup, "$(var(s){s.rindex,$var(n),-3})"), "11");
    assert_eq!(eval_with(setup, "$(var(s){s.rindex,$var(n),11})"), "11");
    assert_eq!(eval_with(setup, "$(var(s){s.rindex,$var(n),-4})"), "0");
}

#[test]
fn s_fill_width_trim() {
    assert_eq!(tr("\"485\"", "{s.fill.left,0,3}"), "485");
    assert_eq!(tr("\"485\"", "{s.fill.left,0,6}"), "000485");
    assert_eq!(tr("\"485\"", "{s.fill.left,abc,8}"), "bcabc485");
    assert_eq!(tr("485", "{s.fill.right,0,3}"), "485");
    assert_eq!(tr("485", "{s.fill.right,0,6}"), "485000");
    assert_eq!(tr("485", "{s.fill.right,abc,8}"), "485abcab");
    assert_eq!(tr("\"transformation\"", "{s.width,14}"), "transformation");
    assert_eq!(tr("\"transformation\"", "{s.width,16}"), "transformation  ");
    assert_eq!(tr("\"transformation\"", "{s.width,9}"), "transform");
    assert_eq!(
        tr("\"\\t \\n input string  \\r  \"", "{s.trim}"),
        "input string"
    );
    assert_eq!(
        tr("\"\\t \\n input string  \\r  \"", "{s.trimr}"),
        "\t \n input string"
    );
    assert_eq!(
        tr("\"\\t \\n input string  \\r  \"", "{s.triml}"),
        "input string  \r  "
    );
}

#[test]
fn s_base64_xor() {
    assert_eq!(
        tr("\"\\x02\\x03\\x04\\x05!@#%^&*\"", "{s.b64encode}"),
        "AgMEBSFAIyVeJio="
    );
    assert_eq!(
        tr("\"AgMEBSFAIyVeJio=\"", "{s.b64decode}"),
        "\u{2}\u{3}\u{4}\u{5}!@#%^&*"
    );
    // xor is its own inverse
    assert_eq!(tr("\"aaaaaabbbbbb\"", "{s.xor,x}{s.xor,x}"), "aaaaaabbbbbb");
    assert_eq!(tr("\"a\"", "{s.xor,x}{s.encode.hexa}"), "19");
}

#[test]
fn uri_parts() {
    let u = "\"sip:user:pw@example.com:5070;transport=tcp;ttl=5;user=phone;maddr=1.2.3.4;method=INVITE;lr;r2=on?h=v\"";
    assert_eq!(tr(u, "{uri.user}"), "user");
    assert_eq!(tr(u, "{uri.host}"), "example.com");
    assert_eq!(tr(u, "{uri.domain}"), "example.com");
    assert_eq!(tr(u, "{uri.passwd}"), "pw");
    assert_eq!(tr(u, "{uri.port}"), "5070");
    assert_eq!(
        tr(u, "{uri.params}"),
        "transport=tcp;ttl=5;user=phone;maddr=1.2.3.4;method=INVITE;lr;r2=on"
    );
    assert_eq!(tr(u, "{uri.param,ttl}"), "5");
    assert_eq!(tr(u, "{uri.param,none}"), "<null>");
    assert_eq!(tr(u, "{uri.headers}"), "h=v");
    assert_eq!(tr(u, "{uri.transport}"), "tcp");
    assert_eq!(tr(u, "{uri.ttl}"), "5");
    assert_eq!(tr(u, "{uri.uparam}"), "phone");
    assert_eq!(tr(u, "{uri.maddr}"), "1.2.3.4");
    assert_eq!(tr(u, "{uri.method}"), "INVITE");
    assert_eq!(tr(u, "{uri.lr}"), "");
    assert_eq!(tr(u, "{uri.r2}"), "on");
    assert_eq!(tr(u, "{uri.schema}"), "sip");
    assert_eq!(tr("\"sip:example.com\"", "{uri.user}"), "<null>");
}

#[test]
fn via_parts() {
    let s = r#"route {
        $var(t) = $(hdr(Via)[0]{via.transport}{s.tolower});
        $var(h) = $(hdr(Via){via.host});
        $var(p) = $(hdr(Via){via.port});
        $var(b) = $(hdr(Via){via.branch});
        $var(r) = $(hdr(Via){via.param,rport});
        $var(n) = $(hdr(Via){via.name});
        $var(v) = $(hdr(Via){via.version});
        $var(ps) = $(hdr(Via){via.params});
        $var(rc) = $(hdr(Via){via.received});
    }"#;
    let (cx, _) = run(s);
    assert_eq!(var(&cx, "t"), "udp");
    assert_eq!(var(&cx, "h"), "10.0.0.1");
    assert_eq!(var(&cx, "p"), "5060");
    assert_eq!(var(&cx, "b"), "z9hG4bK776asdhds");
    assert_eq!(var(&cx, "r"), "");
    assert_eq!(var(&cx, "n"), "SIP");
    assert_eq!(var(&cx, "v"), "2.0");
    assert_eq!(var(&cx, "ps"), "branch=z9hG4bK776asdhds;rport");
    assert_eq!(var(&cx, "rc"), "<null>");
}

#[test]
fn param_list() {
    assert_eq!(tr("\"a=1;b=2;c=3\"", "{param.value,c}"), "3");
    assert_eq!(tr("\"a=0;b=2;ob;c=3\"", "{param.exist,ob}"), "1");
    assert_eq!(tr("\"a=0;b=2;ob;c=3\"", "{param.exist,a}"), "1");
    assert_eq!(tr("\"a=0;b=2;ob;c=3\"", "{param.exist,foo}"), "0");
    assert_eq!(tr("\"a=1;b=2;c=3\"", "{param.valueat,1}"), "2");
    assert_eq!(tr("\"a=1;b=2;c=3\"", "{param.name,1}"), "b");
    assert_eq!(tr("\"a=1;b=2;c=3\"", "{param.name,-1}"), "c");
    assert_eq!(tr("\"a=1;b=2;c=3\"", "{param.count}"), "3");
    // Chained example: length of the value of the parameter at position 1.
    assert_eq!(
        eval_with(
            "$var(x) = \"a=1;b=22;c=333\";",
            "$(var(x){param.value,$(var(x){param.name,1})}{s.len})"
        ),
        "2"
    );
}

#[test]
fn nameaddr() {
    let two = "'\"first\" <sip:first@opensips.org>, \"second\" <sip:second@opensips.org>'";
    assert_eq!(tr(two, "{nameaddr.0.name}"), "first");
    assert_eq!(tr(two, "{nameaddr.1.name}"), "second");
    assert_eq!(tr(two, "{nameaddr.-1.name}"), "second");
    let one = "'\"test\" <sip:test@opensips.org>;tag=dat43h;private=yes'";
    assert_eq!(tr(one, "{nameaddr.name}"), "test");
    assert_eq!(tr(one, "{nameaddr.uri}"), "sip:test@opensips.org");
    assert_eq!(tr(one, "{nameaddr.param,tag}"), "dat43h");
    assert_eq!(tr(one, "{nameaddr.params}"), "tag=dat43h;private=yes");
    assert_eq!(tr("'<sip:a@b>'", "{nameaddr.len}"), "9");
}

#[test]
fn ip() {
    assert_eq!(tr("\"194.168.4.134\"", "{ip.pton}{s.len}"), "4");
    assert_eq!(
        tr("\"194.168.4.134\"", "{ip.pton}{ip.ntop}"),
        "194.168.4.134"
    );
    assert_eq!(tr("\"194.168.4.134\"", "{ip.isip}"), "1");
    assert_eq!(tr("\"194.168.4.134.1\"", "{ip.isip}"), "0");
    assert_eq!(tr("\"194.168.4.134\"", "{ip.isip4}"), "1");
    assert_eq!(tr("\"194.168.4.134\"", "{ip.isip6}"), "0");
    assert_eq!(
        tr("\"2001:0db8:85a3:0000:0000:8a2e:0370:7334\"", "{ip.isip6}"),
        "1"
    );
    assert_eq!(tr("\"194.168.4.134\"", "{ip.pton}{ip.family}"), "INET");
    assert_eq!(tr("\"1.2.3.4\"", "{ip.resolve}"), "1.2.3.4");
    assert_eq!(tr("\"10.10.0.77\"", "{ip.matches,10.10.0.1/24}"), "1");
    assert_eq!(tr("\"10.10.1.77\"", "{ip.matches,10.10.0.1/24}"), "0");
    assert_eq!(tr("\"::1\"", "{ip.matches,10.10.0.1/24}"), "<null>");
    assert_eq!(tr("\"192.168.1.1\"", "{ip.isprivate}"), "1");
    assert_eq!(tr("\"100.64.0.1\"", "{ip.isprivate}"), "1");
    assert_eq!(tr("\"127.0.0.1\"", "{ip.isprivate}"), "1");
    assert_eq!(tr("\"8.8.8.8\"", "{ip.isprivate}"), "0");
    let (cx, _) = run("route { if ($(si{ip.matches,127.0.0.0/8}) == 1) $var(m) = 1; }");
    assert_eq!(var(&cx, "m"), "1");
}

#[test]
fn csv() {
    assert_eq!(tr("\"a,b,c\"", "{csv.count}"), "3");
    assert_eq!(tr("\"a,b,c\"", "{csv.value,2}"), "c");
    assert_eq!(tr("\"a,b,c\"", "{csv.value,-1}"), "c");
    assert_eq!(tr("\"a,b,c\"", "{csv.value,5}"), "<null>");
}

const SDP_HEAD: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
To: <sip:bob@example.com>\r\n\
From: <sip:alice@example.com>;tag=1\r\n\
Call-ID: c1\r\n\
CSeq: 1 INVITE\r\n\
Content-Type: application/sdp\r\n";

const SDP_BODY: &str = "v=0\r\n\
o=- 1 1 IN IP4 10.0.0.1\r\n\
s=-\r\n\
c=IN IP4 10.0.0.1\r\n\
t=0 0\r\n\
m=audio 4000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n\
m=video 5000 RTP/AVP 96\r\n";

#[test]
fn sdp() {
    let s = r#"route {
        $var(a) = $(rb{sdp.line,a});
        $var(m1) = $(rb{sdp.line,m,1});
        $var(m) = $(rb{sdp.line,m});
        $var(audio) = $(rb{sdp.stream,audio});
        $var(first) = $(rb{sdp.stream,0});
        $var(last) = $(rb{sdp.stream,-1});
        $var(nov) = $(rb{sdp.stream-delete,video});
        $var(none) = $(rb{sdp.stream,image});
    }"#;
    let m = format!(
        "{SDP_HEAD}Content-Length: {}\r\n\r\n{SDP_BODY}",
        SDP_BODY.len()
    );
    let (cx, _) = run_on(s, &m);
    assert_eq!(var(&cx, "a"), "a=rtpmap:0 PCMU/8000");
    assert_eq!(var(&cx, "m1"), "m=video 5000 RTP/AVP 96");
    assert_eq!(var(&cx, "m"), "m=audio 4000 RTP/AVP 0");
    assert_eq!(
        var(&cx, "audio"),
        "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    );
    assert_eq!(var(&cx, "first"), var(&cx, "audio"));
    assert_eq!(var(&cx, "last"), "m=video 5000 RTP/AVP 96\r\n");
    assert!(!var(&cx, "nov").contains("video"));
    assert!(var(&cx, "nov").contains("m=audio"));
    assert_eq!(var(&cx, "none"), "<null>");
}

#[test]
fn re_subst() {
    assert_eq!(tr("\"abc\"", "{re.subst,/b/B/g}"), "aBc");
    assert_eq!(
        eval_with(
            "$var(x) = \"abca\"; $var(re) = \"/a/A/g\";",
            "$(var(x){re.subst,$var(re)})"
        ),
        "AbcA"
    );
    assert_eq!(tr("\"abca\"", "{re.subst,/a/A/}"), "Abca");
    assert_eq!(tr("\"ABC\"", "{re.subst,/b/x/i}"), "AxC");
    assert_eq!(
        tr("\"+4912345\"", "{re.subst,/^\\+49(.*)$/0\\1/}"),
        "012345"
    );
}

#[test]
fn null_input_chains() {
    assert_eq!(eval_with("", "$(var(unset){uri.user}{s.len})"), "0");
    assert_eq!(eval_with("", "$(hdr(X-None){s.tolower})"), "<null>");
}

#[test]
fn deregistration_example() {
    let reg = "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK2\r\nTo: <sip:a@example.com>\r\nFrom: <sip:a@example.com>;tag=2\r\nCall-ID: r1\r\nCSeq: 2 REGISTER\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n";
    let s = "loadmodule \"sipmsgops.so\"\nroute { if (is_method(\"REGISTER\") && is_present_hf(\"Expires\") && $(hdr(Expires){s.int}) == 0) $var(dereg) = 1; }";
    let (cx, _) = run_on(s, reg);
    assert_eq!(var(&cx, "dereg"), "1");
}

#[test]
fn s_eval_static_and_unsupported_dynamic() {
    assert_eq!(tr("\"plain text\"", "{s.eval}"), "plain text");
    // A string that names variables needs run-time compilation, which is not built yet: the
    // result is NULL (never the unexpanded text) and an error is logged.
    let (cx, o) = run(
        "route { $var(x) = \"$$ru\"; $var(x) = \"sip:$\" + \"ru\"; $var(r) = $(var(x){s.eval}); if ($var(r) == NULL) $var(null) = 1; }",
    );
    assert!(matches!(o, sipox_script::Outcome::Done(_)), "{o:?}");
    assert_eq!(var(&cx, "null"), "1");
}
