//! Two real user agents (baresip, from Debian) register with passwords and call each other
//! through the shipped default configuration (`etc/sipox.cfg`: digest auth against the SQLite
//! `subscriber` table, `save`/`lookup` on usrloc, `t_relay`). Only the socket port and the
//! database path are changed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::sipp::{free_port, have, server};

/// A baresip instance with its own config directory, its output collected in a file.
struct Ua {
    child: Child,
    log: PathBuf,
}

impl Ua {
    fn start(dir: &Path, user: &str, password: &str, proxy_port: u16, extra: &[&str]) -> Self {
        let port = free_port(false);
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("config"),
            format!(
                "module_path /usr/lib/baresip/modules\n\
                 sip_listen 127.0.0.1:{port}\n\
                 audio_source ausine,440\n\
                 ausrc_srate 48000\n\
                 auplay_srate 48000\n\
                 ausrc_channels 2\n\
                 auplay_channels 2\n\
                 audio_player aufile,/dev/null\n\
                 audio_alert aufile,/dev/null\n\
                 module g711.so\nmodule ausine.so\nmodule aufile.so\n\
                 module_app account.so\nmodule_app menu.so\nmodule_app contact.so\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("accounts"),
            format!(
                "<sip:{user}@127.0.0.1:{proxy_port};transport=udp>;auth_pass={password};\
                 regint=60;answermode=auto\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.join("contacts"), "").unwrap();
        let log = dir.join("out.log");
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let mut cmd = Command::new("baresip");
        cmd.arg("-f").arg(dir).args(["-t", "25"]);
        cmd.args(extra);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        Self { child, log }
    }

    fn output(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Waits until the output contains `needle`; false on timeout.
    #[allow(clippy::disallowed_methods)] // a test waits on a real process
    fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.output().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Ua {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn shipped_config(port: u16, db: &Path) -> String {
    let cfg = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../etc/sipox.cfg"),
    )
    .unwrap();
    let cfg = cfg
        .replace(
            "socket = udp:127.0.0.1:5060",
            &format!("socket = udp:127.0.0.1:{port}"),
        )
        .replace(
            "socket = tcp:127.0.0.1:5060",
            &format!("socket = tcp:127.0.0.1:{port}"),
        )
        .replace(
            "sqlite://var/sipox.db",
            &format!("sqlite://{}", db.display()),
        );
    assert!(cfg.contains(&format!("udp:127.0.0.1:{port}")), "{cfg}");
    cfg
}

fn add_user(db: &Path, user: &str, password: &str) {
    let db = sipox_db::connect(&format!("sqlite://{}", db.display())).unwrap();
    db.insert(
        "subscriber",
        &["username", "domain", "password"],
        &[user.into(), "127.0.0.1".into(), password.into()],
    )
    .unwrap();
}

#[test]
fn two_baresips_register_and_call_through_the_default_config() {
    if !have("baresip") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("sipox-baresip-{}", free_port(false)));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("sipox.db");
    let port = free_port(false);
    // The server creates the OpenSIPS schema in a new SQLite file on first start.
    let srv = server(&shipped_config(port, &db));
    add_user(&db, "alice", "alicepw");
    add_user(&db, "bob", "bobpw");

    let bob = Ua::start(&dir.join("bob"), "bob", "bobpw", port, &[]);
    assert!(
        bob.wait_for("200 OK", Duration::from_secs(10)),
        "bob did not register:\n{}",
        bob.output()
    );
    let alice = Ua::start(
        &dir.join("alice"),
        "alice",
        "alicepw",
        port,
        &["-e", &format!("/dial sip:bob@127.0.0.1:{port}")],
    );
    assert!(
        alice.wait_for("200 OK", Duration::from_secs(10)),
        "alice did not register:\n{}",
        alice.output()
    );
    assert!(
        alice.wait_for("established", Duration::from_secs(15)),
        "the call was not established:\nalice:\n{}\nbob:\n{}",
        alice.output(),
        bob.output()
    );
    assert!(
        bob.output().contains("established") || bob.wait_for("established", Duration::from_secs(5)),
        "bob did not see the call:\n{}",
        bob.output()
    );
    // A wrong password is refused.
    let eve = Ua::start(&dir.join("eve"), "alice", "wrong", port, &[]);
    assert!(
        eve.wait_for("403", Duration::from_secs(10)) || eve.wait_for("401", Duration::from_secs(1)),
        "a wrong password registered:\n{}",
        eve.output()
    );
    assert!(!eve.output().contains("200 OK"), "{}", eve.output());
    drop(srv);
}
