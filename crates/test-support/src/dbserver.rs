//! Real database servers for integration tests: [`PgServer`] (PostgreSQL) and
//! [`MariaDbServer`] (MariaDB/MySQL), each started on loopback on a free port with its data in
//! a [`TempDir`], with a database `sipox` owned by user `sipox` (password `sipoxpw`), and
//! stopped and removed on drop.
//!
//! `start()` returns `None` (after printing why) when the server's binaries are not installed,
//! so a test can print "skipped"; with `SIPOX_REQUIRE_DB=1` in the environment a missing
//! binary panics instead (CI installs them). A server that is installed but fails to start
//! always panics, with its log.
//!
//! When run as root, PostgreSQL runs as the `postgres` user (it refuses root) through
//! `runuser`, and MariaDB with `--user=root`.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// User name the servers create.
pub const DB_USER: &str = "sipox";
/// That user's password.
pub const DB_PASSWORD: &str = "sipoxpw";
/// Database name the servers create.
pub const DB_NAME: &str = "sipox";

/// True when `SIPOX_REQUIRE_DB=1`: a missing server binary fails the test instead of skipping.
pub fn require_db() -> bool {
    std::env::var("SIPOX_REQUIRE_DB").is_ok_and(|v| v == "1")
}

/// A directory under the system temp dir, removed (with its contents) on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/sipox-<prefix>-<pid>-<n>` (world-readable, so a server running as
    /// another user can reach a socket in it).
    pub fn new(prefix: &str) -> std::io::Result<Self> {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("sipox-{prefix}-{}-{n}", std::process::id()));
        if p.exists() {
            std::fs::remove_dir_all(&p)?;
        }
        std::fs::create_dir_all(&p)?;
        Ok(Self(p))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A PostgreSQL server of our own: `initdb` into a temp dir, `pg_ctl start` on 127.0.0.1 and a
/// free port (unix socket in the temp dir), password (SCRAM) authentication over TCP.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
    /// `Some("postgres")` when we are root.
    run_as: Option<&'static str>,
    running: bool,
}

impl PgServer {
    /// Starts a server with database `sipox` and user `sipox`/`sipoxpw`; `None` when
    /// PostgreSQL is not installed (see the module docs).
    pub fn start() -> Option<Self> {
        let Some(bin) = pg_bin_dir() else {
            return unavailable(
                "PostgreSQL (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin",
            );
        };
        let dir = ok_or_die(TempDir::new("pg"), "temp dir");
        let run_as = is_root().then_some("postgres");
        let mut s = Self {
            bin,
            dir,
            port: free_port(),
            run_as,
            running: false,
        };
        if let Some(u) = run_as {
            let owner = format!("{u}:{u}");
            ok_or_die(
                run(Command::new("chown").arg("-R").arg(owner).arg(s.dir.path())),
                "chown the data dir to postgres",
            );
        }
        let data = s.data();
        let mut init = s.cmd("initdb");
        init.arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"]);
        ok_or_die(run(&mut init), "initdb");
        ok_or_die(
            first_start(&mut s, |s| &mut s.port, Self::start_server),
            "pg_ctl start",
        );
        let mut psql = s.cmd("psql");
        psql.arg("-h")
            .arg(s.dir.path())
            .args([
                "-p",
                &s.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-q"])
            .arg("-c")
            .arg(format!(
                "CREATE ROLE {DB_USER} LOGIN PASSWORD '{DB_PASSWORD}'"
            ))
            .arg("-c")
            .arg(format!("CREATE DATABASE {DB_NAME} OWNER {DB_USER}"));
        ok_or_die(run(&mut psql), "create the sipox user and database");
        Some(s)
    }

    /// `postgres://sipox:sipoxpw@127.0.0.1:PORT/sipox`.
    pub fn url(&self) -> String {
        format!(
            "postgres://{DB_USER}:{DB_PASSWORD}@127.0.0.1:{}/{DB_NAME}",
            self.port
        )
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (fast shutdown: open connections are closed). Idempotent.
    pub fn stop(&mut self) {
        if self.running {
            let mut c = self.cmd("pg_ctl");
            c.arg("-D")
                .arg(self.data())
                .args(["-m", "fast", "-w", "-t", "60", "stop"]);
            ok_or_die(run(&mut c), "pg_ctl stop");
            self.running = false;
        }
    }

    /// Stops the server if it runs, then starts it again on the same data and port.
    pub fn restart(&mut self) {
        self.stop();
        ok_or_die(self.start_server(), "pg_ctl start (restart)");
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start_server(&mut self) -> Result<(), String> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c shared_buffers=16MB -c max_connections=40",
            self.port,
            self.dir.path().display()
        );
        let mut c = self.cmd("pg_ctl");
        c.arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "-o", &opts, "start"]);
        run(&mut c).map_err(|e| {
            let log = std::fs::read_to_string(self.dir.path().join("server.log"));
            format!("{e}\nserver.log:\n{}", log.unwrap_or_default())
        })?;
        self.running = true;
        Ok(())
    }

    fn cmd(&self, prog: &str) -> Command {
        let path = self.bin.join(prog);
        let mut c = match self.run_as {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        };
        c.current_dir(self.dir.path());
        c
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.running {
            let mut c = self.cmd("pg_ctl");
            c.arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"]);
            let _ = run(&mut c);
        }
    }
}

/// A MariaDB (or MySQL) server of our own: `mariadb-install-db` into a temp dir, `mariadbd` on
/// 127.0.0.1 and a free port (socket in the temp dir), user `sipox` with a password.
#[derive(Debug)]
pub struct MariaDbServer {
    server: PathBuf,
    client: PathBuf,
    dir: TempDir,
    port: u16,
    root: bool,
    child: Option<Child>,
}

impl MariaDbServer {
    /// Starts a server with database `sipox` and user `sipox`/`sipoxpw`; `None` when
    /// MariaDB is not installed (see the module docs).
    pub fn start() -> Option<Self> {
        let found = (
            find_prog(&["mariadb-install-db", "mysql_install_db"]),
            find_prog(&["mariadbd", "mysqld"]),
            find_prog(&["mariadb", "mysql"]),
        );
        let (Some(install), Some(server), Some(client)) = found else {
            return unavailable("MariaDB (mariadb-install-db, mariadbd, mariadb) not found");
        };
        let dir = ok_or_die(TempDir::new("mariadb"), "temp dir");
        let root = is_root();
        let mut s = Self {
            server,
            client,
            dir,
            port: free_port(),
            root,
            child: None,
        };
        let mut c = Command::new(install);
        c.arg("--no-defaults")
            .arg(format!("--datadir={}", s.data().display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        if root {
            c.arg("--user=root");
        }
        ok_or_die(run(&mut c), "mariadb-install-db");
        ok_or_die(
            first_start(&mut s, |s| &mut s.port, Self::start_server),
            "mariadbd start",
        );
        let sql = format!(
            "CREATE DATABASE {DB_NAME}; \
             CREATE USER '{DB_USER}'@'%' IDENTIFIED BY '{DB_PASSWORD}'; \
             CREATE USER '{DB_USER}'@'localhost' IDENTIFIED BY '{DB_PASSWORD}'; \
             GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'%'; \
             GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'localhost';"
        );
        ok_or_die(
            run(&mut s.client_cmd(&sql)),
            "create the sipox user and database",
        );
        Some(s)
    }

    /// `mysql://sipox:sipoxpw@127.0.0.1:PORT/sipox`.
    pub fn url(&self) -> String {
        format!(
            "mysql://{DB_USER}:{DB_PASSWORD}@127.0.0.1:{}/{DB_NAME}",
            self.port
        )
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (SIGTERM, then SIGKILL after 60 s). Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            for _ in 0..600 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server if it runs, then starts it again on the same data and port.
    pub fn restart(&mut self) {
        self.stop();
        ok_or_die(self.start_server(), "mariadbd start (restart)");
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("mysqld.sock")
    }

    fn client_cmd(&self, sql: &str) -> Command {
        let mut c = Command::new(&self.client);
        c.arg("--no-defaults")
            .arg("-uroot")
            .arg(format!("--socket={}", self.socket().display()))
            .arg("-e")
            .arg(sql);
        c
    }

    fn start_server(&mut self) -> Result<(), String> {
        let d = self.dir.path();
        let mut c = Command::new(&self.server);
        c.arg("--no-defaults")
            .arg(format!("--datadir={}", self.data().display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--pid-file={}", d.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", d.join("server.log").display()))
            .args([
                "--skip-name-resolve",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=16M",
            ])
            .args([
                "--innodb-flush-log-at-trx-commit=0",
                "--performance-schema=OFF",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.root {
            c.arg("--user=root");
        }
        let child = c.spawn().map_err(|e| format!("cannot run mariadbd: {e}"))?;
        self.child = Some(child);
        let log = || std::fs::read_to_string(d.join("server.log")).unwrap_or_default();
        for _ in 0..600 {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(format!("mariadbd exited ({st})\nserver.log:\n{}", log()));
            }
            let ping = self
                .client_cmd("SELECT 1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if ping.is_ok_and(|s| s.success()) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "mariadbd not ready after 60 s\nserver.log:\n{}",
            log()
        ))
    }
}

impl Drop for MariaDbServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts a server the first time: when the port picked turned out to be taken meanwhile
/// (another test's server got it first), picks another one, up to three times.
fn first_start<S>(
    s: &mut S,
    port: fn(&mut S) -> &mut u16,
    start: fn(&mut S) -> Result<(), String>,
) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..3 {
        match start(s) {
            Ok(()) => return Ok(()),
            Err(e) if e.contains("already in use") || e.contains("Bind on TCP/IP port") => {
                last = e;
                *port(s) = free_port();
            }
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map_or(0, |a| a.port())
}

#[allow(clippy::panic)] // test helper: a required server that is missing fails the test
fn unavailable<T>(why: &str) -> Option<T> {
    if require_db() {
        panic!("SIPOX_REQUIRE_DB=1 but {why}");
    }
    eprintln!("{why}");
    None
}

#[allow(clippy::panic)] // test helper: an installed server that does not start fails the test
fn ok_or_die<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("database server set-up failed: {what}: {e}"),
    }
}

/// Runs a command to completion; its output in the error when it fails.
fn run(c: &mut Command) -> Result<(), String> {
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {c:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{c:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// The newest `/usr/lib/postgresql/<ver>/bin` with `initdb` and `pg_ctl` (or `$SIPOX_PG_BIN`).
fn pg_bin_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("SIPOX_PG_BIN") {
        return Some(PathBuf::from(d));
    }
    let mut best: Option<(u32, PathBuf)> = None;
    for e in std::fs::read_dir("/usr/lib/postgresql").ok()?.flatten() {
        let name = e.file_name();
        let Some(ver) = name
            .to_str()
            .and_then(|v| v.split('.').next()?.parse::<u32>().ok())
        else {
            continue;
        };
        let bin = e.path().join("bin");
        let usable = ["initdb", "pg_ctl", "psql"]
            .iter()
            .all(|p| bin.join(p).exists());
        if usable && best.as_ref().is_none_or(|(v, _)| ver > *v) {
            best = Some((ver, bin));
        }
    }
    best.map(|(_, b)| b)
}

fn find_prog(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from));
    names
        .iter()
        .flat_map(|n| dirs.iter().map(move |d| d.join(n)))
        .find(|p| p.is_file())
}
