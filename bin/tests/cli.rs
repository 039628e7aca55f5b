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
    assert!(out.contains("tm: t_relay()"), "{out}");
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
fn no_runtime_yet() {
    let (code, out) = sipox(&["-f", &data("default.cfg")]);
    assert_ne!(code, 0);
    assert!(out.contains("network runtime is not built yet"), "{out}");
}
