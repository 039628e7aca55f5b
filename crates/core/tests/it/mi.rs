//! The MI, statistics and lifecycle of a running server, driven end to end: the real
//! `opensips-cli` (PyPI `opensipscli`, see `crates/mi/tests/NEEDS`) over HTTP and the FIFO,
//! SIP requests over loopback UDP, `/metrics` over plain HTTP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use sipox_core::Server;

use crate::{recv, request, udp};

fn temp_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "sipox-core-mi-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The `opensips-cli` to run: `$OPENSIPS_CLI`, else the virtualenv `$SIPOX_OSC_VENV`
/// (default `/tmp/sipox-opensips-cli-venv`), created with pip when missing; `None` (the
/// test is skipped with a note) only when the install fails.
fn opensips_cli() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OPENSIPS_CLI") {
        return Some(PathBuf::from(p));
    }
    let venv = std::env::var_os("SIPOX_OSC_VENV").map_or_else(
        || PathBuf::from("/tmp/sipox-opensips-cli-venv"),
        PathBuf::from,
    );
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
            "NOTE: skipping: could not install opensipscli into {} (is PyPI reachable?)",
            venv.display()
        );
        None
    }
}

/// A server started from `cfg` written to `<dir>/sipox.cfg`.
fn start_in(dir: &Path, cfg: &str) -> (Server, SocketAddr, PathBuf) {
    let path = dir.join("sipox.cfg");
    std::fs::write(&path, cfg).unwrap();
    let s = Server::start(&path, None, &[]).unwrap_or_else(|e| panic!("{e}"));
    let addr = s.runtime.transports().unwrap().sockets()[0].local;
    (s, addr, path)
}

struct Cli {
    bin: PathBuf,
    cfg: PathBuf,
    opts: Vec<String>,
}

impl Cli {
    fn http(bin: &Path, dir: &Path, addr: SocketAddr) -> Self {
        Self::new(
            bin,
            dir,
            vec![
                "communication_type=http".into(),
                format!("url=http://{addr}/mi"),
            ],
        )
    }

    fn fifo(bin: &Path, dir: &Path, fifo: &Path) -> Self {
        Self::new(
            bin,
            dir,
            vec![
                "communication_type=fifo".into(),
                format!("fifo_file={}", fifo.display()),
                format!("fifo_file_fallback={}", fifo.display()),
                format!("fifo_reply_dir={}", dir.display()),
            ],
        )
    }

    fn new(bin: &Path, dir: &Path, opts: Vec<String>) -> Self {
        // an empty opensips-cli config: no user or system one gets in the way
        let cfg = dir.join("opensips-cli.cfg");
        std::fs::write(&cfg, "").unwrap();
        Self {
            bin: bin.to_path_buf(),
            cfg,
            opts,
        }
    }

    fn raw(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-f").arg(&self.cfg);
        for o in &self.opts {
            cmd.arg("-o").arg(o);
        }
        cmd.args(["-x", "mi"]).args(args).output().unwrap()
    }

    /// `opensips-cli -x mi <args>`, parsed.
    fn mi(&self, args: &[&str]) -> Value {
        let out = self.raw(args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "opensips-cli {:?} {args:?} failed: {stdout} {stderr}",
            self.opts
        );
        // commands answering a bare string ("OK") print it without JSON quotes
        serde_json::from_str(&stdout).unwrap_or_else(|_| Value::from(stdout.trim()))
    }
}

/// OPTIONS get 200 from `sl_send_reply`, anything else 404; counted by `sl:`.
const SCRIPT: &str = "loadmodule \"sl.so\"\nloadmodule \"sipmsgops.so\"\n\
route {\n  if (is_method(\"OPTIONS\")) { sl_send_reply(200, \"Alive\"); exit; }\n  \
sl_send_reply(404, \"Not Here\");\n}\n";

fn mi_modules(dir: &Path) -> String {
    format!(
        "socket = udp:127.0.0.1:0\n\
         loadmodule \"httpd.so\"\nloadmodule \"mi_http.so\"\nloadmodule \"mi_fifo.so\"\n\
         loadmodule \"prometheus.so\"\n\
         modparam(\"httpd\", \"ip\", \"127.0.0.1\")\nmodparam(\"httpd\", \"port\", 0)\n\
         modparam(\"mi_fifo\", \"fifo_name\", \"{fifo}\")\n\
         modparam(\"mi_fifo\", \"reply_dir\", \"{dir}/\")\n\
         modparam(\"prometheus\", \"statistics\", \"core: sl:\")\n\
         modparam(\"prometheus\", \"group_mode\", 1)\n",
        fifo = dir.join("sipox_fifo").display(),
        dir = dir.display(),
    )
}

fn sip(addr: SocketAddr, method: &str, branch: &str) -> u16 {
    let c = udp();
    let port = c.local_addr().unwrap().port();
    c.send_to(&request(method, "sip:bob@127.0.0.1", port, branch), addr)
        .unwrap();
    recv(&c).status().unwrap()
}

fn sip_reason(addr: SocketAddr, branch: &str) -> String {
    let c = udp();
    let port = c.local_addr().unwrap().port();
    c.send_to(&request("INVITE", "sip:bob@127.0.0.1", port, branch), addr)
        .unwrap();
    String::from_utf8_lossy(recv(&c).reason()).into_owned()
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut t = TcpStream::connect(addr).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        t,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut s = String::new();
    t.read_to_string(&mut s).unwrap();
    s
}

fn check_cli(cli: &Cli, transport: &str, expect_requests: u64) {
    let up = cli.mi(&["uptime"]);
    for k in ["Now", "Up since", "Up time"] {
        assert!(up[k].is_string(), "{transport}: uptime lacks {k}: {up}");
    }
    let st = cli.mi(&["get_statistics", "all"]);
    assert_eq!(
        st["core:rcv_requests"], expect_requests,
        "{transport}: {st}"
    );
    for k in [
        "core:rcv_replies",
        "core:fwd_requests",
        "core:fwd_replies",
        "core:drop_requests",
        "core:drop_replies",
        "core:err_requests",
        "core:err_replies",
        "core:bad_URIs_rcvd",
        "core:unsupported_methods",
        "core:bad_msg_hdr",
        "core:timestamp",
        "net:waiting_udp",
        "net:waiting_tcp",
        "net:waiting_tls",
        "load:load",
        "load:load1m",
        "load:load10m",
        "shmem:total_size",
        "shmem:used_size",
        "shmem:real_used_size",
        "shmem:max_used_size",
        "shmem:free_size",
        "shmem:fragments",
        "pkmem:0-used_size",
        "sl:1xx_replies",
        "sl:sent_err_replies",
        "sl:received_ACKs",
    ] {
        assert!(
            st[k].is_u64(),
            "{transport}: get_statistics all lacks {k}: {st}"
        );
    }
    assert!(st["shmem:real_used_size"].as_u64().unwrap() > 0);
    let core = cli.mi(&["get_statistics", "core:", "sl:"]);
    assert_eq!(core["core:rcv_requests"], expect_requests, "{core}");
    assert_eq!(core["sl:sent_replies"], expect_requests, "{core}");
    assert_eq!(core["sl:2xx_replies"], 2, "{core}");
    assert_eq!(core["sl:4xx_replies"], expect_requests - 2, "{core}");
    assert_eq!(core["sl:sent_err_replies"], expect_requests - 2, "{core}");
    assert!(core.get("shmem:used_size").is_none());

    let ps = cli.mi(&["ps"]);
    let procs = ps["Processes"].as_array().unwrap();
    assert!(
        procs.iter().any(|p| p["PID"] == std::process::id()),
        "{transport}: {ps}"
    );
    let which = cli.mi(&["which"]);
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
        "list_tcp_conns",
        "reload_routes",
        "kill",
        "log_level",
    ] {
        assert!(names.contains(&n), "{transport}: which lacks {n}: {which}");
    }
    let conns = cli.mi(&["list_tcp_conns"]);
    assert!(conns["Connections"].is_array(), "{conns}");
}

#[test]
fn opensips_cli_against_the_server() {
    let Some(bin) = opensips_cli() else { return };
    let dir = temp_dir("cli");
    let (s, addr, _) = start_in(&dir, &format!("{}{SCRIPT}", mi_modules(&dir)));
    let http = s.http_addr().expect("httpd started");
    let fifo = s.fifo_path().expect("mi_fifo started");
    assert_eq!(sip(addr, "OPTIONS", "s1"), 200);
    assert_eq!(sip(addr, "OPTIONS", "s2"), 200);
    assert_eq!(sip(addr, "INVITE", "s3"), 404);
    assert_eq!(sip(addr, "MESSAGE", "s4"), 404);

    check_cli(&Cli::http(&bin, &dir, http), "http", 4);
    check_cli(&Cli::fifo(&bin, &dir, &fifo), "fifo", 4);

    // log_level/xlog_level act on the levels the engine and the logger read
    let cli = Cli::http(&bin, &dir, http);
    let r = cli.mi(&["log_level", "4"]);
    assert_eq!(r["New global log level"], 4, "{r}");
    assert_eq!(s.runtime.log.log_level(), 4);
    assert_eq!(s.runtime.program().shared().log_level(), 4);
    let r = cli.mi(&["xlog_level", "-1"]);
    assert_eq!(r["New xLog level"], -1, "{r}");
    assert_eq!(s.runtime.program().shared().xlog_level(), -1);

    // reset_statistics over the FIFO resets the live counters
    let fcli = Cli::fifo(&bin, &dir, &fifo);
    fcli.mi(&["reset_statistics", "rcv_requests"]);
    assert_eq!(s.runtime.counters.rcv_requests.get(), 0);
    assert_eq!(sip(addr, "OPTIONS", "s5"), 200);
    let st = fcli.mi(&["get_statistics", "rcv_requests"]);
    assert_eq!(st["core:rcv_requests"], 1, "{st}");

    // /metrics: the prometheus module's selection and naming (group_mode 1 = in the name)
    let m = http_get(http, "/metrics");
    assert!(m.starts_with("HTTP/1.1 200"), "{m}");
    assert!(m.contains("opensips_core_rcv_requests 1"), "{m}");
    assert!(m.contains("opensips_sl_sent_replies 5"), "{m}");
    assert!(!m.contains("shmem"), "only core: and sl: are selected: {m}");

    // kill: an orderly stop
    let r = cli.mi(&["kill"]);
    assert_eq!(r, "OK");
    assert!(s.wait(Duration::from_secs(5)), "kill stops the server");
    s.shutdown();
    assert!(!fifo.exists(), "the FIFO is removed at shutdown");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn reload_routes_swaps_the_script_and_refuses_a_broken_one() {
    let Some(bin) = opensips_cli() else { return };
    let dir = temp_dir("reload");
    let head = mi_modules(&dir);
    let script = |reason: &str| {
        format!("{head}loadmodule \"sl.so\"\nroute {{ sl_send_reply(404, \"{reason}\"); }}\n")
    };
    let (s, addr, path) = start_in(&dir, &script("First"));
    let cli = Cli::fifo(&bin, &dir, &s.fifo_path().unwrap());
    assert_eq!(sip_reason(addr, "r1"), "First");

    std::fs::write(&path, script("Second")).unwrap();
    assert_eq!(cli.mi(&["reload_routes"]), "OK");
    assert_eq!(sip_reason(addr, "r2"), "Second");

    // a script that does not compile is refused; the running one keeps answering
    std::fs::write(
        &path,
        format!("{head}route {{ no_such_function(); sl_send_reply(404, \"Third\"); }}\n"),
    )
    .unwrap();
    let out = cli.raw(&["reload_routes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("Failed to reload routes"), "{stderr}");
    // over HTTP the JSON-RPC error carries the diagnostic
    let http = s.http_addr().unwrap();
    let body = r#"{"jsonrpc":"2.0","method":"reload_routes","id":1}"#;
    let mut t = TcpStream::connect(http).unwrap();
    write!(
        t,
        "POST /mi HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    t.read_to_string(&mut reply).unwrap();
    assert!(reply.contains("no_such_function"), "{reply}");
    assert_eq!(sip_reason(addr, "r3"), "Second");
    drop(s);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn startup_and_timer_routes_run() {
    let dir = temp_dir("timer");
    let (s, addr, _) = start_in(
        &dir,
        "socket = udp:127.0.0.1:0\nloadmodule \"sl.so\"\nloadmodule \"cfgutils.so\"\n\
         modparam(\"cfgutils\", \"shvset\", \"boot=s:down\")\n\
         modparam(\"cfgutils\", \"shvset\", \"ticks=i:0\")\n\
         startup_route { $shv(boot) = \"up\"; $shv(ticks) = 0; }\n\
         timer_route[tick, 1] { $shv(ticks) = $shv(ticks) + 1; }\n\
         route { sl_send_reply(404, \"$shv(boot) $shv(ticks)\"); }\n",
    );
    let first = sip_reason(addr, "t1");
    assert!(first.starts_with("up "), "{first}");
    std::thread::sleep(Duration::from_millis(2300));
    let later = sip_reason(addr, "t2");
    let n: u32 = later.strip_prefix("up ").unwrap().parse().unwrap();
    assert!(n >= 2, "the 1 s timer ran {n} times in 2.3 s");
    assert!(s.runtime.counters.timestamp.get() >= 2);
    // an orderly stop from the API, as SIGTERM does in the binary
    s.runtime.shutdown();
    assert!(s.wait(Duration::from_millis(10)));
    drop(s);
    std::fs::remove_dir_all(dir).unwrap();
}
