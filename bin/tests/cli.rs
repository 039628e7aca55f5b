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
    assert!(out.contains("auth_db: www_authorize()"), "{out}");
    assert!(
        !out.contains("tm: t_relay()"),
        "t_relay is implemented: {out}"
    );
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
