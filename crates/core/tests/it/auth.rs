//! auth + auth_db end to end: a subscriber table in a real sqlite file, SIPp registering with
//! digest authentication (401 then 200), and the negative cases over a plain UDP socket: a
//! wrong password (-2, answered 403 by the script), a forged nonce and a replayed nonce count
//! (-3: challenged again with `stale=true`).

use std::process::Command;

use sipox_digest::{Algorithm, Check, Qop, ha1};

use crate::sipp::{data, free_port, have, server};
use crate::{recv, udp};

fn subscriber_db() -> String {
    let dir = std::env::temp_dir().join(format!(
        "sipox-auth-e2e-{}-{}",
        std::process::id(),
        free_port(false)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("x.db").display());
    let db = sipox_db::connect(&url).unwrap();
    sipox_db::schema::create_all(&*db, &["version", "subscriber"]).unwrap();
    for i in 0..10 {
        let user = format!("user{i:05}");
        let h = ha1(
            Algorithm::Md5,
            user.as_bytes(),
            b"127.0.0.1",
            format!("pw{i:05}").as_bytes(),
        );
        db.insert(
            "subscriber",
            &["username", "domain", "ha1"],
            &[user.into(), "127.0.0.1".into(), h.as_str().into()],
        )
        .unwrap();
    }
    url
}

fn cfg(port: u16, url: &str) -> String {
    format!(
        "udp_workers = 2\nsocket = udp:127.0.0.1:{port}\n\
         loadmodule \"sl.so\"\nloadmodule \"sipmsgops.so\"\nloadmodule \"auth.so\"\nloadmodule \"auth_db.so\"\n\
         modparam(\"auth_db\", \"db_url\", \"{url}\")\n\
         route {{\n  if (is_method(\"REGISTER\")) {{\n    \
         www_authorize(\"\", \"subscriber\");\n    $var(rc) = $rc;\n    \
         if ($var(rc) == -2) {{ sl_send_reply(403, \"Forbidden\"); exit; }}\n    \
         if ($var(rc) < 0) {{ www_challenge(\"\", \"auth\"); exit; }}\n    \
         consume_credentials();\n    sl_send_reply(200, \"OK\");\n    exit;\n  }}\n  \
         sl_send_reply(404, \"Not Here\");\n}}\n"
    )
}

#[test]
fn sipp_register_with_digest_auth() {
    if !have("sipp") {
        return;
    }
    let url = subscriber_db();
    let port = free_port(false);
    let _s = server(&cfg(port, &url));
    let out = Command::new("sipp")
        .arg(format!("127.0.0.1:{port}"))
        .args(["-sf", data("sipp/uac_register_auth.xml").to_str().unwrap()])
        .args(["-inf", data("sipp/users-auth.csv").to_str().unwrap()])
        .args(["-i", "127.0.0.1", "-p", &free_port(false).to_string()])
        .args(["-m", "10", "-r", "20", "-nostdin"])
        .args(["-timeout", "30", "-timeout_error", "-recv_timeout", "5000"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "sipp register-auth failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn register(port: u16, cseq: u32, auth: &str) -> Vec<u8> {
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKr{cseq};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:user00001@127.0.0.1>;tag=t1\r\nTo: <sip:user00001@127.0.0.1>\r\n\
         Call-ID: auth-e2e@test\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:user00001@127.0.0.1:{port}>\r\n\
         {auth}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn answer(nonce: &str, nc: u32, password: &str) -> String {
    let h1 = ha1(
        Algorithm::Md5,
        b"user00001",
        b"127.0.0.1",
        password.as_bytes(),
    );
    let ncs = format!("{nc:08x}");
    let r = Check {
        alg: Algorithm::Md5,
        ha1: &h1,
        method: b"REGISTER",
        uri: b"sip:127.0.0.1",
        nonce: nonce.as_bytes(),
        qop: Qop::Auth,
        nc: ncs.as_bytes(),
        cnonce: b"cn",
        body: b"",
        response: b"",
    }
    .expected();
    format!(
        "Authorization: Digest username=\"user00001\", realm=\"127.0.0.1\", nonce=\"{nonce}\", \
         uri=\"sip:127.0.0.1\", response=\"{}\", qop=auth, nc={ncs}, cnonce=\"cn\"\r\n",
        r.as_str()
    )
}

fn challenge_of(m: &sipox_sip_msg::SipMsg) -> String {
    String::from_utf8(
        m.header_named(b"WWW-Authenticate")
            .map(|h| m.value(h).to_vec())
            .unwrap(),
    )
    .unwrap()
}

fn nonce_of(c: &str) -> String {
    let i = c.find("nonce=\"").unwrap() + 7;
    c[i..i + c[i..].find('"').unwrap()].to_owned()
}

#[test]
fn wrong_password_forged_nonce_and_replay() {
    let url = subscriber_db();
    let port = free_port(false);
    let _s = server(&cfg(port, &url));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let c = udp();
    let me = c.local_addr().unwrap().port();
    let mut cseq = 0;
    let mut send = |auth: &str| {
        cseq += 1;
        c.send_to(&register(me, cseq, auth), addr).unwrap();
        recv(&c)
    };
    let r = send("");
    assert_eq!(r.status(), Some(401));
    let ch = challenge_of(&r);
    assert!(
        ch.starts_with("Digest realm=\"127.0.0.1\", nonce=\""),
        "{ch}"
    );
    assert!(ch.contains("qop=\"auth\"") && !ch.contains("stale"), "{ch}");
    let nonce = nonce_of(&ch);
    // Wrong password: -2, the script answers 403.
    assert_eq!(send(&answer(&nonce, 1, "bad")).status(), Some(403));
    // Right password, next count: 200.
    assert_eq!(send(&answer(&nonce, 2, "pw00001")).status(), Some(200));
    // The same count again is a replay: challenged again, stale=true.
    let r = send(&answer(&nonce, 2, "pw00001"));
    assert_eq!(r.status(), Some(401));
    assert!(challenge_of(&r).contains("stale=true"));
    // A forged nonce: stale as well (never accepted).
    let mut forged = nonce.into_bytes();
    forged[5] = if forged[5] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    let r = send(&answer(&forged, 1, "pw00001"));
    assert_eq!(r.status(), Some(401));
    let ch = challenge_of(&r);
    assert!(ch.contains("stale=true"), "{ch}");
    // The fresh nonce of that challenge works.
    assert_eq!(
        send(&answer(&nonce_of(&ch), 1, "pw00001")).status(),
        Some(200)
    );
}
