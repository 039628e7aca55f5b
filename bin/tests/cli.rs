#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]
//! The `sipox` command line, run as a process.

use std::process::Command;

fn sipox(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sipox"))
        .args(args)
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn data(name: &str) -> String {
    format!(
        "{}/../crates/cfg-syntax/tests/data/ok/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn check_ok_templates() {
    for t in [
        "default.cfg",
        "residential.cfg",
        "trunking.cfg",
        "loadbalancer.cfg",
    ] {
        let (code, out) = sipox(&["-c", "-f", &data(t)]);
        assert_eq!(code, 0, "{t}: {out}");
        assert!(out.contains("config file ok"), "{out}");
    }
    let (code, out) = sipox(&[
        "-c",
        "-f",
        &format!("{}/../etc/sipox.cfg", env!("CARGO_MANIFEST_DIR")),
    ]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn check_lists_unimplemented_functions() {
    let (code, out) = sipox(&["-c", "-f", &data("residential.cfg")]);
    assert_eq!(code, 0);
    assert!(out.contains("declared but not implemented"), "{out}");
    assert!(out.contains("dialog: create_dialog()"), "{out}");
    for done in [
        "tm: t_relay()",
        "auth_db: www_authorize()",
        "registrar: save()",
    ] {
        assert!(!out.contains(done), "{done} is implemented: {out}");
    }
    assert!(out.contains("dialog: $DLG_dir"), "{out}");
}

#[test]
fn check_reports_all_errors() {
    let dir = std::env::temp_dir().join(format!("sipox-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.cfg");
    std::fs::write(
        &f,
        "loadmodule \"sl.so\"\nroute {\n  sl_send_replyy(404, \"x\");\n  $var(a) = $fuu;\n}\n",
    )
    .unwrap();
    let (code, out) = sipox(&["-c", "-f", f.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        out.contains("bad.cfg:3:3: error: unknown function 'sl_send_replyy'"),
        "{out}"
    );
    assert!(
        out.contains("bad.cfg:4:13: error: unknown pseudo-variable $fuu"),
        "{out}"
    );
    assert!(out.contains("2 error(s)"), "{out}");
}

#[test]
fn options_acted_on() {
    let (code, out) = sipox(&[
        "-c",
        "-f",
        &data("default.cfg"),
        "-l",
        "udp:127.0.0.1:5080",
        "-m",
        "128",
        "-M",
        "16",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("udp:127.0.0.1:5080"), "{out}");
    assert!(out.contains("128 MB"), "{out}");
    assert!(out.contains("16 MB"), "{out}");
    let (code, out) = sipox(&["-V"]);
    assert_eq!(code, 0);
    assert!(out.contains("sipox"), "{out}");
    let (code, out) = sipox(&["-h"]);
    assert_eq!(code, 0);
    assert!(out.contains("-c"), "{out}");
}

#[test]
fn serves_a_config() {
    use std::io::Read as _;
    let port = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let dir = std::env::temp_dir().join(format!("sipox-cli-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("serve.cfg");
    std::fs::write(
        &cfg,
        format!(
            "socket = udp:127.0.0.1:{port}\nloadmodule \"options.so\"\nroute {{ options_reply(); }}\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sipox"))
        .args(["-F", "-f", cfg.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let me = c.local_addr().unwrap().port();
    let req = format!(
        "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKcli1\r\n\
From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: cli1\r\nCSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
    );
    let mut buf = [0u8; 4096];
    let mut got = None;
    for _ in 0..50 {
        c.send_to(req.as_bytes(), ("127.0.0.1", port)).unwrap();
        if let Ok((n, _)) = c.recv_from(&mut buf) {
            got = Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            break;
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    let got = got.unwrap_or_else(|| panic!("no reply; server said: {err}"));
    assert!(got.starts_with("SIP/2.0 200 OK"), "{got}");
    assert!(err.contains("listening on udp:127.0.0.1"), "{err}");
}

#[test]
fn sigterm_stops_in_order() {
    use std::io::{BufRead as _, BufReader};
    let dir = std::env::temp_dir().join(format!("sipox-cli-term-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("term.cfg");
    let pid_file = dir.join("sipox.pid");
    let fifo = dir.join("sipox_fifo");
    std::fs::write(
        &cfg,
        format!(
            "socket = udp:127.0.0.1:0\nloadmodule \"mi_fifo.so\"\n\
             modparam(\"mi_fifo\", \"fifo_name\", \"{}\")\nroute {{ drop; }}\n",
            fifo.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sipox"))
        .args([
            "-D",
            "-f",
            cfg.to_str().unwrap(),
            "-P",
            pid_file.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.contains("started") {
            break;
        }
        line.clear();
    }
    assert!(seen.contains("started"), "{seen}");
    assert!(pid_file.exists() && fifo.exists());
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    assert!(status.success(), "exit {status:?}: {seen}{rest}");
    assert!(rest.contains("stopping"), "{rest}");
    assert!(!pid_file.exists(), "the pid file is removed");
    assert!(!fifo.exists(), "the FIFO is removed");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn daemon_mode_runs_in_the_background() {
    let dir = std::env::temp_dir().join(format!("sipox-cli-daemon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("d.cfg");
    let pid_file = dir.join("sipox.pid");
    let port = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    std::fs::write(
        &cfg,
        format!("socket = udp:127.0.0.1:{port}\nloadmodule \"options.so\"\nroute {{ options_reply(); }}\n"),
    )
    .unwrap();
    // without -D/-F the command returns once the background server is up
    let (code, text) = sipox(&[
        "-f",
        cfg.to_str().unwrap(),
        "-P",
        pid_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("running in the background"), "{text}");
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_owned();
    assert_ne!(pid, std::process::id().to_string());
    let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let me = c.local_addr().unwrap().port();
    let req = format!(
        "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKd1\r\n\
From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: d1\r\nCSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
    );
    c.send_to(req.as_bytes(), ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 4096];
    let got = c.recv_from(&mut buf).map(|(n, _)| buf[..n].to_vec());
    // stop it whatever happened above
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let got = got.expect("the daemon answers");
    assert!(got.starts_with(b"SIP/2.0 200"));
    for _ in 0..100 {
        if !pid_file.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        !pid_file.exists(),
        "the daemon removed its pid file on SIGTERM"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `sipox -c` rejects every broken golden config of the syntax crate with exactly the
/// diagnostics its `.diag` file lists (file:line:col and message), and accepts every template.
#[test]
fn check_golden_broken_configs() {
    let dir = format!(
        "{}/../crates/cfg-syntax/tests/data/err",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut n = 0;
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for cfg in names
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cfg"))
    {
        let diag = std::fs::read_to_string(cfg.with_extension("diag")).unwrap();
        let (code, out) = sipox(&["-c", "-f", cfg.to_str().unwrap()]);
        assert_eq!(code, 255, "{}: {out}", cfg.display());
        let expected: Vec<&str> = diag
            .lines()
            .filter(|l| l.contains(": error:") || l.contains(": warning:"))
            .collect();
        assert!(!expected.is_empty(), "{}", cfg.display());
        for line in expected {
            // .diag files name the config relative to the data directory; match from the file name on.
            let tail = line.rsplit_once('/').map_or(line, |(_, t)| t);
            assert!(
                out.contains(tail),
                "{}: missing `{tail}` in:\n{out}",
                cfg.display()
            );
        }
        n += 1;
    }
    assert_eq!(n, 10);
}

fn db_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sipox-cli-db-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn db_create_sqlite() {
    use sipox_db::{Select, Value};
    let dir = db_dir("sqlite");
    let url = format!("sqlite://{}", dir.join("opensips.db").display());
    let (code, out) = sipox(&["db", "create", &url]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("created location"), "{out}");
    assert!(out.contains("version 1013"), "{out}");
    assert!(out.contains("schema ready in sqlite://"), "{out}");
    let db = sipox_db::connect(&url).unwrap();
    for t in sipox_db::schema::all() {
        assert_eq!(
            sipox_db::table_version(&*db, t.name).unwrap(),
            t.version,
            "{}",
            t.name
        );
    }
    // A typical registration and a typical subscriber go in.
    db.insert(
        "location",
        &[
            "username",
            "domain",
            "contact",
            "expires",
            "callid",
            "cseq",
            "user_agent",
        ],
        &[
            "alice".into(),
            "example.com".into(),
            "sip:alice@192.0.2.1:5060".into(),
            Value::Int(1_700_003_600),
            "cid-1".into(),
            Value::Int(2),
            "baresip".into(),
        ],
    )
    .unwrap();
    let id = db
        .insert(
            "subscriber",
            &["username", "domain", "password", "ha1"],
            &[
                "alice".into(),
                "example.com".into(),
                "secret".into(),
                "0123456789abcdef0123456789abcdef".into(),
            ],
        )
        .unwrap();
    assert_eq!(id, 1);
    let r = db
        .select(&Select {
            table: "location",
            columns: &["q", "callid", "last_modified"],
            ..Select::default()
        })
        .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r.get(0, "callid"), Some(&Value::from("cid-1")));
    assert_eq!(
        r.get(0, "q").and_then(Value::as_int),
        Some(1),
        "default q 1.0"
    );
    drop(db);
    // check: all versions match; again after a create of one table (idempotent).
    let (code, out) = sipox(&["db", "check", &url]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok      location         1013"), "{out}");
    let (code, out) = sipox(&["db", "create", &url, "location"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("exists  location"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn db_create_text() {
    let dir = db_dir("text");
    let db_path = dir.join("opensips");
    let url = format!("text://{}", db_path.display());
    let (code, out) = sipox(&["db", "create", &url, "subscriber", "location"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("created subscriber"), "{out}");
    let first = |t: &str| {
        std::fs::read_to_string(db_path.join(t))
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        first("subscriber"),
        "id(int,auto) username(string) domain(string) password(string) ha1(string) \
         ha1_sha256(string) ha1_sha512t256(string)"
    );
    assert!(first("location").starts_with("contact_id(long,auto) "));
    assert_eq!(
        std::fs::read_to_string(db_path.join("version")).unwrap(),
        "table_name(string) table_version(int)\nsubscriber:8\nlocation:1013\n"
    );
    assert!(!db_path.join("dialog").exists(), "only the named tables");
    // check reports the tables not created.
    let (code, out) = sipox(&["db", "check", &url]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ok      subscriber       8"), "{out}");
    assert!(out.contains("missing dialog"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn db_usage_and_errors() {
    for args in [&["db"][..], &["db", "help"]] {
        let (code, out) = sipox(args);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("Usage: sipox db <command>"), "{out}");
        assert!(out.contains("create URL [table ...]"), "{out}");
    }
    let (code, out) = sipox(&["-h"]);
    assert_eq!(code, 0);
    assert!(out.contains("sipox db help"), "{out}");
    let (code, out) = sipox(&["db", "frobnicate"]);
    assert_ne!(code, 0);
    assert!(out.contains("unknown command 'frobnicate'"), "{out}");
    let (code, out) = sipox(&["db", "create"]);
    assert_ne!(code, 0);
    assert!(out.contains("create needs a database URL"), "{out}");
    let dir = db_dir("errors");
    let url = format!("sqlite://{}", dir.join("x.db").display());
    let (code, out) = sipox(&["db", "create", &url, "nosuchtable"]);
    assert_ne!(code, 0);
    assert!(out.contains("unknown table \"nosuchtable\""), "{out}");
    let (code, out) = sipox(&["db", "create", "oracle://u:pw@h/db"]);
    assert_ne!(code, 0);
    assert!(out.contains("not built into"), "{out}");
    // The password never shows, even when the server cannot be reached.
    let (code, out) = sipox(&[
        "db",
        "check",
        "postgres://sipox:hunter2@127.0.0.1:1/opensips",
    ]);
    assert_ne!(code, 0);
    assert!(
        out.contains("postgres://sipox:***@127.0.0.1:1/opensips"),
        "{out}"
    );
    assert!(!out.contains("hunter2"), "{out}");
    let (code, out) = sipox(&["db", "check", "nourl"]);
    assert_ne!(code, 0);
    assert!(out.contains("bad database URL"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn db_user_add_passwd_rm() {
    use sipox_db::{Cond, Select};
    let dir = db_dir("user");
    let url = format!("sqlite://{}", dir.join("u.db").display());
    assert_eq!(sipox(&["db", "create", &url, "subscriber"]).0, 0);
    let (code, out) = sipox(&["db", "user", "add", &url, "alice@example.com", "secret"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("added alice@example.com"), "{out}");
    // adding twice is refused
    let (code, out) = sipox(&["db", "user", "add", &url, "alice@example.com", "x"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("already exists"), "{out}");
    let db = sipox_db::connect(&url).unwrap();
    let row = |db: &dyn sipox_db::Db| {
        let r = db
            .select(&Select {
                table: "subscriber",
                columns: &["password", "ha1", "ha1_sha256", "ha1_sha512t256"],
                conds: vec![
                    Cond::eq("username", "alice"),
                    Cond::eq("domain", "example.com"),
                ],
                ..Select::default()
            })
            .unwrap();
        assert_eq!(r.len(), 1);
        r.rows[0]
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    let r = row(db.as_ref());
    assert_eq!(r[0], "secret");
    // MD5("alice:example.com:secret"), computed independently (Python hashlib)
    assert_eq!(r[1], "b1726872c344b6dc8365b774f8fd6412");
    assert_eq!(r[2].len(), 64);
    assert_eq!(r[3].len(), 64);
    let (code, out) = sipox(&["db", "user", "passwd", &url, "alice@example.com", "other"]);
    assert_eq!(code, 0, "{out}");
    let r2 = row(db.as_ref());
    assert_eq!(r2[0], "other");
    assert_ne!(r2[1], r[1]);
    let (code, out) = sipox(&["db", "user", "rm", &url, "alice@example.com"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = sipox(&["db", "user", "rm", &url, "alice@example.com"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not exist"), "{out}");
    let (code, out) = sipox(&["db", "user", "add", &url, "nodomain", "pw"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not user@domain"), "{out}");
}
