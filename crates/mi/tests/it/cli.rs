//! End to end with the real `opensips-cli` (PyPI package `opensipscli`), over HTTP and FIFO.
//!
//! The client is found at `$OPENSIPS_CLI`, else in the virtualenv
//! `$SIPOX_OSC_VENV` (default `/tmp/sipox-opensips-cli-venv`), which is created with
//! `python3 -m venv` + `pip install opensipscli` when missing (see `tests/NEEDS`). The test is
//! skipped, with a note, only when that install fails (no PyPI).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;
use sipox_mi::fifo::{FifoConfig, FifoServer};
use sipox_mi::http::{self, HttpConfig};

use crate::fifo::temp_dir;
use crate::support::fixture;

fn venv_dir() -> PathBuf {
    std::env::var_os("SIPOX_OSC_VENV").map_or_else(
        || PathBuf::from("/tmp/sipox-opensips-cli-venv"),
        PathBuf::from,
    )
}

/// The `opensips-cli` to run, installing it if needed; `None` if it cannot be installed.
fn opensips_cli() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OPENSIPS_CLI") {
        return Some(PathBuf::from(p));
    }
    let venv = venv_dir();
    let bin = venv.join("bin/opensips-cli");
    if bin.exists() {
        return Some(bin);
    }
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "opensipscli"])
            .status()
            .is_ok_and(|s| s.success());
    if ok && bin.exists() {
        Some(bin)
    } else {
        eprintln!(
            "NOTE: skipping the opensips-cli end-to-end test: could not install opensipscli \
             into {} (is PyPI reachable?)",
            venv.display()
        );
        None
    }
}

/// Run `opensips-cli <opts> -x mi <args>` and parse the JSON it prints.
fn run(cli: &Path, cfg: &Path, opts: &[String], args: &[&str]) -> Value {
    let mut cmd = Command::new(cli);
    cmd.arg("-f").arg(cfg);
    for o in opts {
        cmd.arg("-o").arg(o);
    }
    let out = cmd.args(["-x", "mi"]).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "opensips-cli {args:?} failed: {stdout} {stderr}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("opensips-cli {args:?} printed non-JSON ({e}): {stdout} {stderr}")
    })
}

fn check_all(cli: &Path, cfg: &Path, opts: &[String], transport: &str) {
    let up = run(cli, cfg, opts, &["uptime"]);
    for k in ["Now", "Up since", "Up time"] {
        assert!(up[k].is_string(), "{transport}: uptime lacks {k}: {up}");
    }
    assert!(up["Up time"].as_str().unwrap().ends_with(" [sec]"));
    assert_eq!(up["Up since"], "Mon Nov 23 23:03:20 2026");

    let st = run(cli, cfg, opts, &["get_statistics", "all"]);
    assert_eq!(st["core:rcv_requests"], 10, "{transport}: {st}");
    assert_eq!(st["shmem:used_size"], 4096, "{transport}: {st}");
    assert_eq!(st["tm:inuse_transactions"], 0, "{transport}: {st}");
    let st = run(
        cli,
        cfg,
        opts,
        &["get_statistics", "shmem:", "rcv_requests"],
    );
    assert_eq!(
        st,
        serde_json::json!({"shmem:used_size": 4096, "core:rcv_requests": 10})
    );

    let ps = run(cli, cfg, opts, &["ps"]);
    let procs = ps["Processes"].as_array().unwrap();
    assert!(
        procs.iter().any(|p| p["PID"] == std::process::id()),
        "{transport}: ps lists this process's main thread: {ps}"
    );
    assert!(
        procs
            .iter()
            .all(|p| p["ID"].is_u64() && p["Type"].is_string())
    );

    let which = run(cli, cfg, opts, &["which"]);
    let names: Vec<&str> = which
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for n in [
        "uptime",
        "ps",
        "which",
        "get_statistics",
        "reset_all_statistics",
    ] {
        assert!(names.contains(&n), "{transport}: which lacks {n}: {which}");
    }
    // named parameters, as opensips-cli sends `name=value`
    let w = run(cli, cfg, opts, &["which", "command=log_level"]);
    assert_eq!(w, serde_json::json!([[], ["level"], ["level", "pid"]]));
}

#[test]
fn opensips_cli_over_http_and_fifo() {
    let Some(cli) = opensips_cli() else {
        return;
    };
    let f = fixture();
    let dir = temp_dir("cli");
    // an empty config file: no user or system opensips-cli.cfg gets in the way
    let cfg = dir.join("opensips-cli.cfg");
    std::fs::write(&cfg, "").unwrap();

    // HTTP on a free port, served by a runtime on its own thread
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let hcfg = HttpConfig {
        ip: "127.0.0.1".parse().unwrap(),
        port: 0,
        ..HttpConfig::default()
    };
    let listener = rt.block_on(http::bind(&hcfg)).unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(http::serve(listener, Arc::clone(&f.mi), hcfg));
    let http_opts = vec![
        "communication_type=http".to_string(),
        format!("url=http://127.0.0.1:{port}/mi"),
    ];
    check_all(&cli, &cfg, &http_opts, "http");

    // FIFO
    let fifo_path = dir.join("opensips_fifo");
    let srv = FifoServer::start(
        Arc::clone(&f.mi),
        FifoConfig {
            fifo_name: fifo_path.clone(),
            reply_dir: dir.clone(),
            ..FifoConfig::default()
        },
    )
    .unwrap();
    let fifo_opts = vec![
        "communication_type=fifo".to_string(),
        format!("fifo_file={}", fifo_path.display()),
        format!("fifo_file_fallback={}", fifo_path.display()),
        format!("fifo_reply_dir={}", dir.display()),
    ];
    check_all(&cli, &cfg, &fifo_opts, "fifo");

    // opensips-cli checks names against `which`, and reports a command's MI error
    let out = Command::new(&cli)
        .arg("-f")
        .arg(&cfg)
        .args(fifo_opts.iter().flat_map(|o| ["-o", o.as_str()]))
        .args(["-x", "mi", "get_statistics", "no_such_stat"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("404: Statistics Not Found"), "{stderr}");

    srv.stop();
    drop(rt);
    std::fs::remove_dir_all(dir).unwrap();
}
