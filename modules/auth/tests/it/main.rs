//! The auth and auth_db functions run by the script engine over real messages: a UA side
//! computes its answers to our challenges with the RFC formulas, replies are captured, the
//! subscriber and uri tables live in a real sqlite file.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::cell::RefCell;
use std::sync::Arc;

use bytes::Bytes;
use sipox_cfg_syntax::Value;
use sipox_digest::{Algorithm, Check, Qop, ha1};
use sipox_mod_auth::{Auth, AuthDb};
use sipox_script::{CompileOptions, Instances, MsgCx, Registry};
use sipox_sip_msg::SipMsg;

thread_local! {
    static REPLIES: RefCell<Vec<(u16, String, String)>> = const { RefCell::new(Vec::new()) };
}

fn capture(_cx: &mut MsgCx, code: u16, reason: &[u8], extra: &[u8]) -> i32 {
    REPLIES.with(|r| {
        r.borrow_mut().push((
            code,
            String::from_utf8_lossy(reason).into_owned(),
            String::from_utf8_lossy(extra).into_owned(),
        ));
    });
    1
}

fn take_replies() -> Vec<(u16, String, String)> {
    REPLIES.with(|r| std::mem::take(&mut *r.borrow_mut()))
}

const NOW: i64 = 1_700_000_000;

struct Harness {
    cx: MsgCx,
}

fn mp(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn harness(cfg: &str, auth: &[(&str, Value)], db: Option<(&[(&str, Value)], &str)>) -> Harness {
    // The module's modparams as the core hands them over: the config's, then the test's.
    let parsed = sipox_cfg_syntax::parse_str("t.cfg", cfg);
    let mut params: Vec<(String, Value)> = parsed
        .ast
        .items
        .iter()
        .filter_map(|i| match i {
            sipox_cfg_syntax::Item::ModParam(m) if m.module == "auth" => {
                Some((m.param.clone(), m.value.clone()))
            }
            _ => None,
        })
        .collect();
    params.extend(mp(auth));
    let a = Auth::from_modparams(&params, |b| b.fill(7)).unwrap();
    let mut inst = Instances::default();
    if let Some((p, url)) = db {
        let d = sipox_db::connect(url).unwrap();
        inst.insert(AuthDb::with_db(&mp(p), d, Arc::clone(&a)).unwrap());
    }
    inst.insert(a);
    let parsed = sipox_cfg_syntax::parse_str("t.cfg", cfg);
    assert!(!parsed.has_errors(), "{}", parsed.render_diagnostics());
    let mut reg = Registry::standard();
    sipox_mod_auth::register(&mut reg);
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
    let prog = c.program.unwrap_or_else(|| {
        panic!(
            "{:?}",
            c.diagnostics
                .iter()
                .map(|d| d.message.clone())
                .collect::<Vec<_>>()
        )
    });
    let mut cx = MsgCx::new(prog);
    cx.set_reply_fn(capture);
    cx.capture_logs();
    Harness { cx }
}

impl Harness {
    /// Runs the main route over `msg` at `now`; returns `$var(rc)` and the replies.
    fn run(&mut self, msg: &str, now: i64) -> (i64, Vec<(u16, String, String)>) {
        take_replies();
        self.cx
            .set_message(SipMsg::parse(Bytes::copy_from_slice(msg.as_bytes())).unwrap());
        self.cx.set_time_us(now * 1_000_000);
        let _ = self.cx.run_main();
        let rc = self.cx.var("rc").and_then(|v| v.as_int()).unwrap_or(0);
        (rc, take_replies())
    }
}

fn register(extra: &str, body: &str) -> String {
    format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n\
         From: <sip:alice@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\nCall-ID: c1\r\n\
         CSeq: 1 REGISTER\r\nContact: <sip:alice@10.0.0.1>\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn param(h: &str, name: &str) -> Option<String> {
    let key = format!("{name}=");
    let i = h.find(&key)? + key.len();
    let rest = &h[i..];
    if let Some(r) = rest.strip_prefix('"') {
        Some(r[..r.find('"')?].to_owned())
    } else {
        Some(rest.split([',', '\r']).next()?.trim().to_owned())
    }
}

struct Ua<'a> {
    user: &'a str,
    realm: &'a str,
    password: &'a str,
    alg: Algorithm,
    show_alg: bool,
    qop: Qop,
}

impl Ua<'_> {
    fn authorization(&self, hdr: &str, nonce: &str, nc: u32, method: &str, body: &str) -> String {
        let uri = "sip:example.com";
        let ncs = format!("{nc:08x}");
        let h1 = ha1(
            self.alg,
            self.user.as_bytes(),
            self.realm.as_bytes(),
            self.password.as_bytes(),
        );
        let resp = Check {
            alg: self.alg,
            ha1: &h1,
            method: method.as_bytes(),
            uri: uri.as_bytes(),
            nonce: nonce.as_bytes(),
            qop: self.qop,
            nc: ncs.as_bytes(),
            cnonce: b"abc",
            body: body.as_bytes(),
            response: b"",
        }
        .expected();
        let mut s = format!(
            "{hdr}: Digest username=\"{}\", realm=\"{}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{}\"",
            self.user,
            self.realm,
            resp.as_str()
        );
        if self.qop != Qop::None {
            s.push_str(&format!(
                ", qop={}, nc={ncs}, cnonce=\"abc\"",
                self.qop.token()
            ));
        }
        if self.show_alg {
            s.push_str(&format!(", algorithm={}", self.alg.name()));
        }
        s.push_str("\r\n");
        s
    }
}

const PV_CFG: &str = r#"
loadmodule "auth.so"
modparam("auth", "username_spec", "$var(user)")
modparam("auth", "password_spec", "$var(pass)")
route {
    $var(user) = "alice";
    $var(pass) = "secret";
    $var(rc) = 0;
    pv_www_authorize("");
    $var(rc) = $rc;
    if ($var(rc) < 0 && $hdr(X-Challenge) != NULL) {
        www_challenge("", "$hdr(X-Challenge)", "$hdr(X-Algs)");
        $var(rc) = 99;
        exit;
    }
    if ($var(rc) == 1 && $hdr(X-Consume) != NULL) consume_credentials();
}
"#;

fn challenge(h: &mut Harness, qop: &str, algs: &str, now: i64) -> Vec<String> {
    let (rc, replies) = h.run(
        &register(&format!("X-Challenge: {qop}\r\nX-Algs: {algs}\r\n"), ""),
        now,
    );
    assert_ne!(rc, 99, "the challenge stops the script");
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].0, 401);
    assert_eq!(replies[0].1, "Unauthorized");
    replies[0]
        .2
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn pv_authorize_full_flow() {
    let mut h = harness(PV_CFG, &[("calculate_ha1", Value::Int(1))], None);
    // No credentials: -4.
    assert_eq!(h.run(&register("", ""), NOW).0, -4);
    // The challenge: realm from To (REGISTER), qop, no algorithm parameter, no opaque.
    let hs = challenge(&mut h, "auth", "", NOW);
    assert_eq!(hs.len(), 1);
    let c = &hs[0];
    assert!(
        c.starts_with("WWW-Authenticate: Digest realm=\"example.com\", nonce=\""),
        "{c}"
    );
    assert!(c.contains(", qop=\"auth\""), "{c}");
    assert!(
        !c.contains("algorithm") && !c.contains("stale") && !c.contains("opaque"),
        "{c}"
    );
    let nonce = param(c, "nonce").unwrap();
    let ua = Ua {
        user: "alice",
        realm: "example.com",
        password: "secret",
        alg: Algorithm::Md5,
        show_alg: false,
        qop: Qop::Auth,
    };
    let auth = |nc| ua.authorization("Authorization", &nonce, nc, "REGISTER", "");
    assert_eq!(h.run(&register(&auth(1), ""), NOW + 1).0, 1);
    // The same nonce count again is a replay: stale (-3), and the next challenge says so.
    assert_eq!(h.run(&register(&auth(1), ""), NOW + 2).0, -3);
    // A higher count on the same nonce is fine.
    assert_eq!(h.run(&register(&auth(2), ""), NOW + 2).0, 1);
    // Wrong password: -2.
    let bad = Ua {
        password: "wrong",
        ..ua
    };
    assert_eq!(
        h.run(
            &register(
                &bad.authorization("Authorization", &nonce, 3, "REGISTER", ""),
                ""
            ),
            NOW + 3
        )
        .0,
        -2
    );
    // Another user than the PV holds: -1.
    let other = Ua { user: "bob", ..ua };
    assert_eq!(
        h.run(
            &register(
                &other.authorization("Authorization", &nonce, 4, "REGISTER", ""),
                ""
            ),
            NOW + 3
        )
        .0,
        -1
    );
    // Expired (nonce_expire 30 s): -3, and the challenge carries stale=true.
    let late = format!("X-Challenge: auth\r\nX-Algs: \r\n{}", auth(9));
    let (rc, replies) = h.run(&register(&late, ""), NOW + 31);
    assert_eq!(rc, -3, "{:?}", h.cx.take_logs());
    assert!(replies[0].2.contains("stale=true"), "{}", replies[0].2);
    assert_eq!(h.run(&register(&auth(10), ""), NOW + 31).0, -3);
    // Credentials for another realm are not ours: -4.
    let foreign = Ua {
        realm: "other.org",
        ..ua
    };
    assert_eq!(
        h.run(
            &register(
                &foreign.authorization("Authorization", &nonce, 11, "REGISTER", ""),
                ""
            ),
            NOW + 4
        )
        .0,
        -4
    );
}

#[test]
fn tampered_nonce_and_missing_fields() {
    let mut h = harness(PV_CFG, &[("calculate_ha1", Value::Int(1))], None);
    let hs = challenge(&mut h, "auth", "", NOW);
    let nonce = param(&hs[0], "nonce").unwrap();
    let mut t = nonce.clone().into_bytes();
    t[10] = if t[10] == b'a' { b'b' } else { b'a' };
    let tampered = String::from_utf8(t).unwrap();
    let ua = Ua {
        user: "alice",
        realm: "example.com",
        password: "secret",
        alg: Algorithm::Md5,
        show_alg: false,
        qop: Qop::Auth,
    };
    let a = ua.authorization("Authorization", &tampered, 1, "REGISTER", "");
    assert_eq!(h.run(&register(&a, ""), NOW).0, -3);
    // A nonce from another secret (another server) is not ours either.
    let mut other = harness(
        PV_CFG,
        &[
            ("calculate_ha1", Value::Int(1)),
            ("secret", Value::Str("x".into())),
        ],
        None,
    );
    let a = ua.authorization("Authorization", &nonce, 1, "REGISTER", "");
    assert_eq!(other.run(&register(&a, ""), NOW).0, -3);
    // Credentials without a response: 400 and the script stops.
    let (rc, replies) = h.run(
        &register(
            &format!(
                "Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"{nonce}\", uri=\"sip:example.com\"\r\n"
            ),
            "",
        ),
        NOW,
    );
    assert_eq!(rc, 0);
    assert_eq!(replies[0].0, 400);
}

#[test]
fn every_algorithm_with_auth_int_and_consume() {
    let mut h = harness(PV_CFG, &[("calculate_ha1", Value::Int(1))], None);
    let hs = challenge(
        &mut h,
        "auth,auth-int",
        "MD5, SHA-256-sess,SHA-512-256,sha-256,MD5-sess,SHA-512-256-sess",
        NOW,
    );
    let algs: Vec<String> = hs.iter().map(|l| param(l, "algorithm").unwrap()).collect();
    assert_eq!(
        algs,
        [
            "SHA-512-256-sess",
            "SHA-512-256",
            "SHA-256-sess",
            "SHA-256",
            "MD5-sess",
            "MD5"
        ]
    );
    for l in &hs {
        assert!(l.contains("qop=\"auth,auth-int\""), "{l}");
    }
    for (i, l) in hs.iter().enumerate() {
        let alg = Algorithm::parse(param(l, "algorithm").unwrap().as_bytes()).unwrap();
        let nonce = param(l, "nonce").unwrap();
        for (j, qop) in [Qop::Auth, Qop::AuthInt].into_iter().enumerate() {
            let ua = Ua {
                user: "alice",
                realm: "example.com",
                password: "secret",
                alg,
                show_alg: true,
                qop,
            };
            let body = "v=0\r\n";
            let nc = u32::try_from(i * 2 + j + 1).unwrap();
            let a = ua.authorization("Authorization", &nonce, nc, "REGISTER", body);
            assert_eq!(h.run(&register(&a, body), NOW).0, 1, "{alg:?} {qop:?}");
            // The nonce is bound to its algorithm: answering with another one is stale.
            let wrong = Ua {
                alg: if alg == Algorithm::Md5 {
                    Algorithm::Sha256
                } else {
                    Algorithm::Md5
                },
                ..ua
            };
            let a = wrong.authorization("Authorization", &nonce, nc + 100, "REGISTER", body);
            assert_eq!(h.run(&register(&a, body), NOW).0, -3, "{alg:?} {qop:?}");
        }
    }
    // consume_credentials removes the header that was used.
    let nonce = param(hs.last().unwrap(), "nonce").unwrap();
    let ua = Ua {
        user: "alice",
        realm: "example.com",
        password: "secret",
        alg: Algorithm::Md5,
        show_alg: true,
        qop: Qop::Auth,
    };
    let a = ua.authorization("Authorization", &nonce, 50, "REGISTER", "");
    let (rc, _) = h.run(&register(&format!("X-Consume: 1\r\n{a}"), ""), NOW);
    assert_eq!(rc, 1);
    let mut out = Vec::new();
    h.cx.write_message(&mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains("Authorization"), "{out}");
    assert!(out.contains("X-Consume"), "{out}");
}

#[test]
fn stored_ha1_in_the_password_pv() {
    let cfg = PV_CFG.replace(
        "$var(pass) = \"secret\";",
        "$var(pass) = \"c1b4f3b5ba30e5e0ae2a3fa7e1f5f6d7\";",
    );
    let good = ha1(Algorithm::Md5, b"alice", b"example.com", b"secret");
    let cfg_good = PV_CFG.replace(
        "$var(pass) = \"secret\";",
        &format!("$var(pass) = \"{}\";", good.as_str()),
    );
    let ua = Ua {
        user: "alice",
        realm: "example.com",
        password: "secret",
        alg: Algorithm::Md5,
        show_alg: false,
        qop: Qop::Auth,
    };
    for (cfg, want) in [(cfg_good, 1), (cfg, -2)] {
        let mut h = harness(&cfg, &[], None);
        let hs = challenge(&mut h, "auth", "", NOW);
        let a = ua.authorization(
            "Authorization",
            &param(&hs[0], "nonce").unwrap(),
            1,
            "REGISTER",
            "",
        );
        assert_eq!(h.run(&register(&a, ""), NOW).0, want);
    }
}

#[test]
fn ack_is_authorized_and_disable_nonce_check() {
    let mut h = harness(
        PV_CFG,
        &[
            ("calculate_ha1", Value::Int(1)),
            ("disable_nonce_check", Value::Int(1)),
        ],
        None,
    );
    let ack = "ACK sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa\r\n\
               From: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>;tag=2\r\n\
               Call-ID: c2\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(h.run(ack, NOW).0, 1);
    // With the check disabled a nonce may be reused (OpenSIPS's load-balancer setting).
    let hs = challenge(&mut h, "auth", "", NOW);
    let nonce = param(&hs[0], "nonce").unwrap();
    let ua = Ua {
        user: "alice",
        realm: "example.com",
        password: "secret",
        alg: Algorithm::Md5,
        show_alg: false,
        qop: Qop::Auth,
    };
    let a = ua.authorization("Authorization", &nonce, 1, "REGISTER", "");
    assert_eq!(h.run(&register(&a, ""), NOW).0, 1);
    assert_eq!(h.run(&register(&a, ""), NOW).0, 1);
}

// ----- auth_db -----

fn sqlite_db(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("sipox-auth-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("x.db").display());
    let db = sipox_db::connect(&url).unwrap();
    sipox_db::schema::create_all(&*db, &["version", "subscriber", "uri"]).unwrap();
    let md5 = ha1(Algorithm::Md5, b"alice", b"example.com", b"secret");
    let sha = ha1(Algorithm::Sha256, b"alice", b"example.com", b"secret");
    let t = ha1(Algorithm::Sha512_256, b"alice", b"example.com", b"secret");
    db.insert(
        "subscriber",
        &[
            "username",
            "domain",
            "password",
            "ha1",
            "ha1_sha256",
            "ha1_sha512t256",
        ],
        &[
            "alice".into(),
            "example.com".into(),
            "secret".into(),
            md5.as_str().into(),
            sha.as_str().into(),
            t.as_str().into(),
        ],
    )
    .unwrap();
    db.insert(
        "uri",
        &["username", "domain", "uri_user"],
        &["alice".into(), "example.com".into(), "ally".into()],
    )
    .unwrap();
    url
}

const DB_CFG: &str = r#"
loadmodule "auth.so"
loadmodule "auth_db.so"
route {
    $var(rc) = 0;
    if ($hdr(X-Challenge) != NULL) {
        www_challenge("", "auth", "$hdr(X-Algs)");
        exit;
    }
    if ($hdr(X-Exist) != NULL) {
        db_does_uri_exist("$hdr(X-Exist)", "subscriber");
        $var(rc) = $rc;
        exit;
    }
    if ($hdr(X-AuthId) != NULL) {
        db_get_auth_id("uri", "$hdr(X-AuthId)", $var(au), $var(ar));
        $var(rc) = $rc;
        exit;
    }
    www_authorize("", "subscriber");
    $var(rc) = $rc;
    if ($var(rc) == 1 && $hdr(X-From) != NULL) {
        db_is_from_authorized("uri");
        $var(rc) = $rc;
    }
}
"#;

#[test]
fn www_authorize_against_the_subscriber_table() {
    let url = sqlite_db("authorize");
    let mut h = harness(
        DB_CFG,
        &[],
        Some((
            &[(
                "load_credentials",
                Value::Str("$avp(pw)=password;domain".into()),
            )],
            &url,
        )),
    );
    for (alg, col_ok) in [
        (Algorithm::Md5, true),
        (Algorithm::Sha256, true),
        (Algorithm::Sha512_256Sess, true),
    ] {
        let hs = challenge(&mut h, "auth", alg.name(), NOW);
        let nonce = param(&hs[0], "nonce").unwrap();
        let ua = Ua {
            user: "alice",
            realm: "example.com",
            password: "secret",
            alg,
            show_alg: true,
            qop: Qop::Auth,
        };
        let a = ua.authorization("Authorization", &nonce, 1, "REGISTER", "");
        assert_eq!(h.run(&register(&a, ""), NOW).0 == 1, col_ok, "{alg:?}");
        assert_eq!(
            h.cx.avp("pw").first().map(|v| v.to_text()),
            Some("secret".to_owned())
        );
        assert_eq!(
            h.cx.avp("domain").first().map(|v| v.to_text()),
            Some("example.com".to_owned())
        );
        let bad = Ua {
            password: "nope",
            ..ua
        };
        let a = bad.authorization("Authorization", &nonce, 2, "REGISTER", "");
        assert_eq!(h.run(&register(&a, ""), NOW).0, -2, "{alg:?}");
        let unknown = Ua {
            user: "carol",
            ..ua
        };
        let a = unknown.authorization("Authorization", &nonce, 3, "REGISTER", "");
        assert_eq!(h.run(&register(&a, ""), NOW).0, -1, "{alg:?}");
    }
    // db_is_from_authorized: From user "ally" maps to auth user alice in the uri table.
    let hs = challenge(&mut h, "auth", "", NOW);
    let nonce = param(&hs[0], "nonce").unwrap();
    let ua = Ua {
        user: "alice",
        realm: "example.com",
        password: "secret",
        alg: Algorithm::Md5,
        show_alg: false,
        qop: Qop::Auth,
    };
    let a = ua.authorization("Authorization", &nonce, 1, "REGISTER", "");
    let msg = register(&format!("X-From: 1\r\n{a}"), "");
    assert_eq!(
        h.run(&msg, NOW).0,
        -9,
        "From user alice is not in the uri table"
    );
    let a = ua.authorization("Authorization", &nonce, 2, "REGISTER", "");
    let msg =
        register(&format!("X-From: 1\r\n{a}"), "").replace("From: <sip:alice@", "From: <sip:ally@");
    assert_eq!(h.run(&msg, NOW).0, 1);
    // db_does_uri_exist and db_get_auth_id.
    let q = |h: &mut Harness, hdr: &str| h.run(&register(&format!("{hdr}\r\n"), ""), NOW).0;
    assert_eq!(q(&mut h, "X-Exist: sip:alice@example.com"), 1);
    assert_eq!(q(&mut h, "X-Exist: sip:alice@other.org"), -5);
    assert_eq!(q(&mut h, "X-Exist: sip:zed@example.com"), -5);
    assert_eq!(q(&mut h, "X-AuthId: sip:ally@example.com"), 1);
    assert_eq!(h.cx.var("au").unwrap().to_text(), "alice");
    assert_eq!(h.cx.var("ar").unwrap().to_text(), "example.com");
    assert_eq!(q(&mut h, "X-AuthId: sip:nobody@example.com"), -4);
}

#[test]
fn table_version_is_checked_at_load() {
    let url = sqlite_db("version");
    let db = sipox_db::connect(&url).unwrap();
    db.raw("UPDATE version SET table_version = 7 WHERE table_name = 'subscriber'")
        .unwrap();
    let a = Auth::from_modparams(&[], |b| b.fill(1)).unwrap();
    let mut inst = Instances::default();
    inst.insert(AuthDb::with_db(&[], Arc::clone(&db), Arc::clone(&a)).unwrap());
    inst.insert(a);
    let parsed = sipox_cfg_syntax::parse_str("t.cfg", DB_CFG);
    let mut reg = Registry::standard();
    sipox_mod_auth::register(&mut reg);
    let c = sipox_script::compile(
        &parsed.ast,
        &parsed.sources,
        &reg,
        &CompileOptions {
            log_level: None,
            instances: inst.clone(),
            ..CompileOptions::default()
        },
    );
    assert!(c.program.is_none());
    let msgs: Vec<String> = c.diagnostics.iter().map(|d| d.message.clone()).collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("subscriber") && m.contains("skip_version_check")),
        "{msgs:?}"
    );
    // skip_version_check lets a custom table through.
    let a = Auth::from_modparams(&[], |b| b.fill(1)).unwrap();
    let mut inst = Instances::default();
    inst.insert(
        AuthDb::with_db(
            &mp(&[("skip_version_check", Value::Int(1))]),
            db,
            Arc::clone(&a),
        )
        .unwrap(),
    );
    inst.insert(a);
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
    assert!(c.program.is_some());
}

#[test]
fn modparam_errors_are_reported() {
    assert!(Auth::from_modparams(&mp(&[("nonce_expire", Value::Int(0))]), |_| {}).is_err());
    assert!(
        Auth::from_modparams(&mp(&[("nonce_expire", Value::Str("x".into()))]), |_| {}).is_err()
    );
    let a = Auth::from_modparams(&mp(&[("nonce_expire", Value::Int(15))]), |_| {}).unwrap();
    assert_eq!(a.nonce_expire(), 15);
    let url = sqlite_db("params");
    let db = sipox_db::connect(&url).unwrap();
    assert!(
        AuthDb::with_db(
            &mp(&[("load_credentials", Value::Str("$avp(x)=".into()))]),
            db,
            a
        )
        .is_err()
    );
}
