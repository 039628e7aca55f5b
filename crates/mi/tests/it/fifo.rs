//! mi_fifo with a hand-written client doing what opensips-cli does.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;
use sipox_mi::fifo::{FifoConfig, FifoServer};

use crate::support::fixture;

static N: AtomicU32 = AtomicU32::new(0);

pub(crate) fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "sipox-mi-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn mkfifo(p: &Path) {
    let st = std::process::Command::new("mkfifo")
        .arg("-m")
        .arg("666")
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Send `:name:json` and read the reply line from `dir/name`.
fn ask(server: &Path, dir: &Path, name: &str, json: &str) -> Value {
    let reply = dir.join(name);
    mkfifo(&reply);
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .open(server)
        .unwrap();
    w.write_all(format!(":{name}:{json}").as_bytes()).unwrap();
    drop(w);
    let r = std::fs::File::open(&reply).unwrap();
    let mut line = String::new();
    BufReader::new(r).read_line(&mut line).unwrap();
    std::fs::remove_file(&reply).unwrap();
    assert!(line.ends_with('\n'));
    serde_json::from_str(&line).unwrap()
}

fn start() -> (FifoServer, PathBuf, crate::support::Fixture) {
    let f = fixture();
    let dir = temp_dir("fifo");
    let cfg = FifoConfig {
        fifo_name: dir.join("mi_fifo"),
        reply_dir: dir.clone(),
        ..FifoConfig::default()
    };
    let srv = FifoServer::start(f.mi.clone(), cfg).unwrap();
    (srv, dir, f)
}

#[test]
fn request_reply_roundtrip() {
    let (srv, dir, _f) = start();
    let meta = std::fs::metadata(srv.path()).unwrap();
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    assert!(meta.file_type().is_fifo());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    let v = ask(
        srv.path(),
        &dir,
        "r_1",
        r#"{"jsonrpc":"2.0","method":"get_statistics","params":[["all"]],"id":"5"}"#,
    );
    assert_eq!(v["id"], "5");
    assert_eq!(v["result"]["core:rcv_requests"], 10);
    let v = ask(
        srv.path(),
        &dir,
        "r_2",
        r#"{"jsonrpc":"2.0","method":"nope","id":1}"#,
    );
    assert_eq!(v["error"]["code"], -32601);
    let v = ask(srv.path(), &dir, "r_3", "{broken");
    // not JSON: answered with a parse error rather than left hanging
    assert_eq!(v["error"]["code"], -32700);
    srv.stop();
    assert!(!dir.join("mi_fifo").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn open_close_probe_and_no_reply_requests() {
    let (srv, dir, f) = start();
    // opensips-cli's validity probe: open for writing and close without data
    drop(
        std::fs::OpenOptions::new()
            .write(true)
            .open(srv.path())
            .unwrap(),
    );
    // a request with an empty reply name runs but answers nothing
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .open(srv.path())
        .unwrap();
    w.write_all(br#"::{"jsonrpc":"2.0","method":"reset_all_statistics","id":1}"#)
        .unwrap();
    drop(w);
    // a forbidden reply name is refused (no path escape)
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .open(srv.path())
        .unwrap();
    w.write_all(br#":..:{"jsonrpc":"2.0","method":"pwd","id":1}"#)
        .unwrap();
    drop(w);
    let v = ask(
        srv.path(),
        &dir,
        "after",
        r#"{"jsonrpc":"2.0","method":"get_statistics","params":{"statistics":["rcv_requests"]},"id":2}"#,
    );
    assert_eq!(
        v["result"]["core:rcv_requests"], 0,
        "the no-reply request ran first"
    );
    assert_eq!(f.core.rcv_requests.get(), 0);
    srv.stop();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn replaces_a_stale_file_and_survives_many_clients() {
    let dir = temp_dir("stale");
    let path = dir.join("fifo");
    std::fs::write(&path, b"stale regular file").unwrap();
    let f = fixture();
    let srv = FifoServer::start(
        f.mi,
        FifoConfig {
            fifo_name: path.clone(),
            fifo_mode: 0o600,
            reply_dir: dir.clone(),
        },
    )
    .unwrap();
    let hs: Vec<_> = (0..4)
        .map(|i| {
            let (p, d) = (path.clone(), dir.clone());
            std::thread::spawn(move || {
                for j in 0..5 {
                    let v = ask(
                        &p,
                        &d,
                        &format!("c{i}_{j}"),
                        &format!(r#"{{"jsonrpc":"2.0","method":"which","id":{j}}}"#),
                    );
                    assert_eq!(v["id"], j);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    std::thread::sleep(Duration::from_millis(10));
    srv.stop();
    std::fs::remove_dir_all(dir).unwrap();
}
