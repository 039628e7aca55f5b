//! The `sipox` command: OpenSIPS-compatible command line. `-c` checks a configuration and
//! reports every diagnostic, like `opensips -c`; without it the configuration is compiled and
//! served by the `sipox-core` runtime in the foreground.

use std::path::PathBuf;
use std::process::ExitCode;

use sipox_cfg_syntax::{Options as ParseOptions, parse_file};
use sipox_script::{CompileOptions, compile};

const VERSION: &str = env!("CARGO_PKG_VERSION");

const HELP: &str = "\
Usage: sipox [options]
Options:
    -f file      Configuration file (default: /etc/sipox/sipox.cfg)
    -c           Check configuration file for errors
    -C           Like -c, plus route-type checks of every function (always on in sipox)
    -p cmd       Preprocessor command for the config file (e.g. \"m4\")
    -l address   Listen on the specified address/interface (multiple -l allowed);
                 format: [proto:]addr_lst[:port], e.g. udp:127.0.0.1:5060
    -n processes Number of UDP worker processes
    -N processes Number of TCP worker processes
    -m size      Shared memory in megabytes
    -M size      Private (per worker) memory in megabytes
    -D           Do not fork into daemon mode
    -F           Daemon mode, but keep the main process in foreground (sipox: foreground)
                 Without -D/-F sipox runs in the background (logs: use syslog_enabled)
    -w dir       Change the working directory to \"dir\"
    -P file      Create a pid file
    -G file      Create a pgid file
    -o name=val  Set a script argument, readable as $argv(name) (multiple -o allowed)
    -a/-k/-s/-e  Memory allocator (accepted for compatibility)
    -t dir       Chroot to \"dir\"
    -u uid       Change uid
    -g gid       Change gid
    -A addr      Advertised address
    -V           Version number
    -h           This help message
Commands:
    sipox db ... Create or check the OpenSIPS database schema ('sipox db help')
";

#[derive(Debug, Default)]
struct Cli {
    file: Option<PathBuf>,
    check: bool,
    check_routes: bool,
    preprocessor: Option<String>,
    listen: Vec<String>,
    udp_workers: Option<u32>,
    tcp_workers: Option<u32>,
    shm_mb: Option<u64>,
    pkg_mb: Option<u64>,
    foreground: bool,
    workdir: Option<PathBuf>,
    pidfile: Option<PathBuf>,
    argv: Vec<(String, String)>,
    version: bool,
    help: bool,
}

const PROTOS: &[&str] = &[
    "udp", "tcp", "tls", "sctp", "ws", "wss", "ipsec", "bin", "bins", "hep_udp", "hep_tcp",
    "hep_tls", "smpp", "msrp", "msrps",
];

/// Validates `[proto:]host[:port]`.
fn check_listen(s: &str) -> Result<String, String> {
    let (proto, rest) = match s.split_once(':') {
        Some((p, r)) if PROTOS.contains(&p) => (p, r),
        _ => ("udp", s),
    };
    if rest.is_empty() {
        return Err(format!("bad listen address '{s}'"));
    }
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        match r.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Err(format!("bad IPv6 address in '{s}'")),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            _ => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(format!("bad listen address '{s}'"));
    }
    if let Some(p) = port
        && p.parse::<u16>().is_err()
    {
        return Err(format!("bad port '{p}' in '{s}'"));
    }
    Ok(match port {
        Some(p) => format!("{proto}:{host}:{p}"),
        None => format!("{proto}:{host}"),
    })
}

fn parse_num<T: std::str::FromStr>(opt: char, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("bad number '{v}' for -{opt}"))
}

fn parse_args(args: &[String]) -> Result<Cli, String> {
    let mut cli = Cli::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let Some(flags) = a.strip_prefix('-').filter(|f| !f.is_empty()) else {
            return Err(format!("unexpected argument '{a}'"));
        };
        for (pos, c) in flags.char_indices() {
            let takes_value = "fplnNmMwPGotugAaksE".contains(c) && c != 'E';
            let value = if takes_value {
                let rest = &flags[pos + c.len_utf8()..];
                let v = if rest.is_empty() {
                    i += 1;
                    args.get(i)
                        .cloned()
                        .ok_or_else(|| format!("option -{c} needs a value"))?
                } else {
                    rest.to_owned()
                };
                Some(v)
            } else {
                None
            };
            let v = value.clone().unwrap_or_default();
            match c {
                'f' => cli.file = Some(PathBuf::from(v)),
                'c' => cli.check = true,
                'C' => {
                    cli.check = true;
                    cli.check_routes = true;
                }
                'p' => cli.preprocessor = Some(v),
                'l' => cli.listen.push(check_listen(&v)?),
                'n' => cli.udp_workers = Some(parse_num(c, &v)?),
                'N' => cli.tcp_workers = Some(parse_num(c, &v)?),
                'm' => cli.shm_mb = Some(parse_num(c, &v)?),
                'M' => cli.pkg_mb = Some(parse_num(c, &v)?),
                'D' | 'F' => cli.foreground = true,
                'w' => cli.workdir = Some(PathBuf::from(v)),
                'P' | 'G' => cli.pidfile = Some(PathBuf::from(v)),
                'o' => {
                    let (n, val) = v
                        .split_once('=')
                        .ok_or_else(|| format!("-o expects name=value, got '{v}'"))?;
                    cli.argv.push((n.to_owned(), val.to_owned()));
                }
                'V' => cli.version = true,
                'h' => cli.help = true,
                't' | 'u' | 'g' | 'A' | 'a' | 'k' | 's' | 'e' | 'd' | 'E' | 'T' | 'v' => {}
                other => return Err(format!("unknown option -{other}")),
            }
            if takes_value {
                break;
            }
        }
        i += 1;
    }
    Ok(cli)
}

fn run(cli: &Cli) -> Result<ExitCode, String> {
    if cli.help {
        print!("{HELP}");
        return Ok(ExitCode::SUCCESS);
    }
    if cli.version {
        println!("version: sipox {VERSION} (OpenSIPS 3.5 script compatible)");
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(w) = &cli.workdir {
        std::env::set_current_dir(w)
            .map_err(|e| format!("cannot change to {}: {e}", w.display()))?;
    }
    let file = cli
        .file
        .clone()
        .unwrap_or_else(|| PathBuf::from("/etc/sipox/sipox.cfg"));
    let popts = ParseOptions {
        preprocessor: cli.preprocessor.clone(),
        ..ParseOptions::default()
    };
    let parsed = parse_file(&file, &popts);
    let mut diags = parsed.diagnostics.clone();
    let mut program = None;
    if !parsed.has_errors() {
        let c = compile(
            &parsed.ast,
            &parsed.sources,
            &sipox_core::registry(),
            &CompileOptions {
                check_only: true,
                ..CompileOptions::default()
            },
        );
        diags.extend(c.diagnostics);
        program = c.program;
    }
    eprint!("{}", sipox_cfg_syntax::render_all(&diags, &parsed.sources));
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let Some(prog) = program.filter(|_| errors == 0) else {
        eprintln!("ERROR: bad config file ({errors} error(s))");
        return Ok(ExitCode::from(255));
    };
    let mut sockets: Vec<String> = Vec::new();
    for name in ["socket", "listen"] {
        if let Some(v) = prog.global(name) {
            sockets.push(format!("{v:?}"));
        }
    }
    for l in &cli.listen {
        eprintln!("listening socket added from the command line: {l}");
    }
    if let Some(m) = cli.shm_mb {
        eprintln!("shared memory: {m} MB (accepted; sipox uses the system allocator)");
    }
    if let Some(m) = cli.pkg_mb {
        eprintln!("private memory: {m} MB per worker (accepted; sipox uses the system allocator)");
    }
    if let Some(n) = cli.udp_workers {
        eprintln!("udp workers: {n}");
    }
    if let Some(n) = cli.tcp_workers {
        eprintln!("tcp workers: {n}");
    }
    let unimpl = prog.unimplemented_functions();
    if !unimpl.is_empty() {
        eprintln!(
            "WARNING: {} function(s)/variable(s) used by the script are declared but not implemented yet (using one at run time is an error):",
            unimpl.len()
        );
        for (m, f) in unimpl {
            let parens = if f.starts_with('$') { "" } else { "()" };
            eprintln!("  {m}: {f}{parens}");
        }
    }
    if cli.check {
        eprintln!("config file ok, exiting...");
        return Ok(ExitCode::SUCCESS);
    }
    serve(cli, &file)
}

/// `-l` values as socket definitions (`udp:::1:5070` style IPv6 gets its brackets back).
fn listen_specs(cli: &Cli) -> Result<Vec<sipox_transport::ListenSpec>, String> {
    cli.listen
        .iter()
        .map(|l| {
            l.parse::<sipox_transport::ListenSpec>().or_else(|e| {
                let (proto, rest) = l.split_once(':').unwrap_or(("udp", l));
                match rest.rsplit_once(':') {
                    Some((host, port)) if host.contains(':') => format!("{proto}:[{host}]:{port}")
                        .parse()
                        .map_err(|_| e.to_string()),
                    _ => Err(e.to_string()),
                }
            })
        })
        .collect()
}

fn serve(cli: &Cli, file: &std::path::Path) -> Result<ExitCode, String> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    let extra = listen_specs(cli)?;
    if !cli.foreground {
        return daemonize();
    }
    // SIGTERM/SIGINT only raise a flag; the main thread below does the orderly stop.
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&term))
            .map_err(|e| format!("cannot install the signal handler: {e}"))?;
    }
    let server = sipox_core::Server::start(file, cli.preprocessor.clone(), &extra)
        .map_err(|e| e.to_string())?;
    if let Some(p) = &cli.pidfile {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .map_err(|e| format!("cannot write pid file {}: {e}", p.display()))?;
    }
    if let Some(tx) = server.runtime.transports() {
        for s in tx.sockets() {
            eprintln!("INFO: listening on {}:{}", s.proto.as_str(), s.local);
        }
    }
    if let Some(a) = server.http_addr() {
        eprintln!("INFO: MI over HTTP on http://{a}");
    }
    if let Some(f) = server.fifo_path() {
        eprintln!("INFO: MI FIFO at {}", f.display());
    }
    eprintln!("INFO: sipox {VERSION} started");
    if std::env::var_os(DAEMON_ENV).is_some() {
        // the parent relayed our start-up lines and exits; nobody reads stderr from now on
        // (a daemon logs with syslog_enabled), and a closed pipe must not end the server
        note("");
    }
    let by_mi = loop {
        if server.wait(Duration::from_millis(100)) {
            break true;
        }
        if term.load(Ordering::SeqCst) {
            break false;
        }
    };
    if by_mi {
        // let the MI `kill` reply reach its client before the transports go
        std::thread::sleep(Duration::from_millis(200));
    }
    note(&format!("INFO: sipox {VERSION} stopping"));
    server.shutdown();
    if let Some(p) = &cli.pidfile {
        let _ = std::fs::remove_file(p);
    }
    Ok(ExitCode::SUCCESS)
}

/// Set in the environment of the background process `daemonize` starts.
const DAEMON_ENV: &str = "SIPOX_DAEMON_CHILD";

/// A line on stderr that may go nowhere (a daemon's stderr pipe is closed once the parent
/// exits): write errors are ignored instead of panicking as `eprintln!` would.
fn note(line: &str) {
    use std::io::Write as _;
    if !line.is_empty() {
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

/// Daemon mode without `fork()` (the workspace has no unsafe code): the same command runs
/// again in the background as `-F` in its own process group with stdin closed; this process
/// relays its start-up lines and exits 0 once it reports "started" (or with its exit code if
/// it fails to start). The background process writes the `-P` pid file.
fn daemonize() -> Result<ExitCode, String> {
    use std::io::{BufRead as _, BufReader};
    use std::os::unix::process::CommandExt as _;
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the sipox binary: {e}"))?;
    let mut child = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .arg("-F")
        .env(DAEMON_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the daemon: {e}"))?;
    let Some(err) = child.stderr.take() else {
        return Err("cannot read the daemon's output".into());
    };
    let mut lines = BufReader::new(err).lines();
    while let Some(Ok(line)) = lines.next() {
        note(&line);
        if line.contains(" started") {
            note(&format!(
                "INFO: running in the background as pid {}",
                child.id()
            ));
            return Ok(ExitCode::SUCCESS);
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("cannot wait for the daemon: {e}"))?;
    Ok(ExitCode::from(
        status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .filter(|c| *c != 0)
            .unwrap_or(255),
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("db") {
        return db_command(&args[1..]);
    }
    match parse_args(&args).and_then(|cli| run(&cli)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sipox: {e}");
            eprintln!("Try 'sipox -h' for help.");
            ExitCode::from(255)
        }
    }
}

const DB_HELP: &str = "\
Usage: sipox db <command> [arguments]
Commands:
    create URL [table ...]  Create the OpenSIPS 3.5 tables (all known ones, or those named)
                            with their indexes and rows in the version table; existing tables
                            are kept (only their version rows are rewritten)
    check URL               Show each known table's version against the one sipox expects
    user add URL user@domain password
                            Add a subscriber (plain password and its MD5, SHA-256 and
                            SHA-512-256 HA1s, as opensips-cli's `user add` does)
    user passwd URL user@domain password
                            Change a subscriber's password (and HA1s)
    user rm URL user@domain Remove a subscriber
    help                    This help message
URL: sqlite:///path/file.db (the file is created), postgres://user:pass@host[:port]/db,
     mysql://user:pass@host[:port]/db (tables go in that existing database), text:///dir
";

/// `sipox db ...`: creates or checks the OpenSIPS schema in a database.
fn db_command(args: &[String]) -> ExitCode {
    let fail = |msg: String| {
        eprintln!("sipox db: {msg}");
        ExitCode::from(1)
    };
    match args.first().map(String::as_str) {
        None | Some("help" | "-h" | "--help") => {
            print!("{DB_HELP}");
            ExitCode::SUCCESS
        }
        Some("create") => {
            let Some(url) = args.get(1) else {
                return fail("create needs a database URL (see 'sipox db help')".into());
            };
            let tables: Vec<&str> = args[2..].iter().map(String::as_str).collect();
            let shown = masked(url);
            match sipox_db::schema::create(url, &tables) {
                Ok(done) => {
                    for d in done {
                        let what = if d.created { "created" } else { "exists " };
                        match d.version {
                            Some(v) => println!("{what} {:<16} version {v}", d.table),
                            None => println!("{what} {}", d.table),
                        }
                    }
                    println!("schema ready in {shown}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(format!("{shown}: {}", mask_in(&e.to_string(), url))),
            }
        }
        Some("check") => {
            let Some(url) = args.get(1) else {
                return fail("check needs a database URL (see 'sipox db help')".into());
            };
            if args.len() > 2 {
                return fail(format!("unexpected argument '{}'", args[2]));
            }
            let shown = masked(url);
            let db = match sipox_db::connect(url) {
                Ok(db) => db,
                Err(e) => return fail(format!("{shown}: {}", mask_in(&e.to_string(), url))),
            };
            let mut bad = 0;
            for t in sipox_db::schema::all() {
                let Some(want) = t.version else {
                    continue;
                };
                match sipox_db::table_version(db.as_ref(), t.name) {
                    Ok(Some(v)) if v == want => println!("ok      {:<16} {v}", t.name),
                    Ok(Some(v)) => {
                        bad += 1;
                        println!("WRONG   {:<16} {v} (sipox expects {want})", t.name);
                    }
                    Ok(None) => {
                        bad += 1;
                        println!("missing {:<16} (sipox expects {want})", t.name);
                    }
                    Err(e) => {
                        return fail(format!("{shown}: {}", mask_in(&e.to_string(), url)));
                    }
                }
            }
            if bad == 0 {
                println!("all table versions match in {shown}");
                ExitCode::SUCCESS
            } else {
                println!("{bad} table(s) missing or at another version in {shown}");
                ExitCode::from(1)
            }
        }
        Some("user") => user_command(&args[1..]).unwrap_or_else(fail),
        Some(other) => fail(format!("unknown command '{other}' (see 'sipox db help')")),
    }
}

/// The subscriber columns for `user@domain` with `password`: plain text and the HA1 of
/// every algorithm family (realm = domain, as OpenSIPS's tools compute them).
fn subscriber_secrets(user: &str, domain: &str, password: &str) -> [(&'static str, String); 4] {
    use sipox_digest::{Algorithm, ha1};
    let h = |a| ha1(a, user.as_bytes(), domain.as_bytes(), password.as_bytes());
    [
        ("password", password.to_owned()),
        ("ha1", h(Algorithm::Md5).as_str().to_owned()),
        ("ha1_sha256", h(Algorithm::Sha256).as_str().to_owned()),
        (
            "ha1_sha512t256",
            h(Algorithm::Sha512_256).as_str().to_owned(),
        ),
    ]
}

/// `sipox db user add|passwd|rm URL user@domain [password]`.
fn user_command(args: &[String]) -> Result<ExitCode, String> {
    let usage =
        "usage: sipox db user add|passwd URL user@domain password | user rm URL user@domain";
    let (Some(cmd), Some(url), Some(who)) = (args.first(), args.get(1), args.get(2)) else {
        return Err(usage.into());
    };
    let Some((user, domain)) = who
        .split_once('@')
        .filter(|(u, d)| !u.is_empty() && !d.is_empty())
    else {
        return Err(format!("'{who}' is not user@domain"));
    };
    let shown = masked(url);
    let db =
        sipox_db::connect(url).map_err(|e| format!("{shown}: {}", mask_in(&e.to_string(), url)))?;
    let err = |e: sipox_db::DbError| format!("{shown}: {}", mask_in(&e.to_string(), url));
    let key = [
        sipox_db::Cond::eq("username", user),
        sipox_db::Cond::eq("domain", domain),
    ];
    let exists = !db
        .select(&sipox_db::Select {
            table: "subscriber",
            columns: &["username"],
            conds: key.to_vec(),
            ..sipox_db::Select::default()
        })
        .map_err(err)?
        .is_empty();
    match (cmd.as_str(), args.get(3)) {
        ("add", Some(pw)) if args.len() == 4 => {
            if exists {
                return Err(format!("{who} already exists in {shown}"));
            }
            let secrets = subscriber_secrets(user, domain, pw);
            let mut cols = vec!["username", "domain"];
            let mut vals = vec![sipox_db::Value::from(user), sipox_db::Value::from(domain)];
            for (c, v) in secrets {
                cols.push(c);
                vals.push(v.into());
            }
            db.insert("subscriber", &cols, &vals).map_err(err)?;
            println!("added {who} to {shown}");
        }
        ("passwd", Some(pw)) if args.len() == 4 => {
            if !exists {
                return Err(format!("{who} does not exist in {shown}"));
            }
            let secrets = subscriber_secrets(user, domain, pw);
            let cols: Vec<&str> = secrets.iter().map(|(c, _)| *c).collect();
            let vals: Vec<sipox_db::Value> = secrets.into_iter().map(|(_, v)| v.into()).collect();
            db.update("subscriber", &key, &cols, &vals).map_err(err)?;
            println!("changed the password of {who} in {shown}");
        }
        ("rm", None) => {
            if !exists {
                return Err(format!("{who} does not exist in {shown}"));
            }
            db.delete("subscriber", &key).map_err(err)?;
            println!("removed {who} from {shown}");
        }
        _ => return Err(usage.into()),
    }
    Ok(ExitCode::SUCCESS)
}

/// The URL with its password masked (as given when it does not parse).
fn masked(url: &str) -> String {
    sipox_db::DbUrl::parse(url).map_or_else(|_| mask_in(url, url), |u| u.masked())
}

/// `text` with the URL's password (if any) replaced by `***`.
fn mask_in(text: &str, url: &str) -> String {
    let pw = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|auth| auth.rsplit_once('@'))
        .and_then(|(ui, _)| ui.split_once(':'))
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty());
    match pw {
        Some(p) => text.replace(p, "***"),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_opensips_options() {
        let c = parse_args(&args("-c -f a.cfg -p m4 -m 64 -M 8 -n 4 -N 2 -l udp:1.2.3.4:5060 -l tcp:[::1]:5070 -D -o x=1 -V")).unwrap();
        assert!(c.check);
        assert_eq!(c.file, Some(PathBuf::from("a.cfg")));
        assert_eq!(c.preprocessor.as_deref(), Some("m4"));
        assert_eq!(
            (c.shm_mb, c.pkg_mb, c.udp_workers, c.tcp_workers),
            (Some(64), Some(8), Some(4), Some(2))
        );
        assert_eq!(
            c.listen,
            vec!["udp:1.2.3.4:5060".to_owned(), "tcp:::1:5070".to_owned()]
        );
        assert_eq!(c.argv, vec![("x".to_owned(), "1".to_owned())]);
        assert!(c.version && c.foreground);
        let c = parse_args(&args("-cf x.cfg")).unwrap();
        assert!(c.check);
        assert_eq!(c.file, Some(PathBuf::from("x.cfg")));
        assert!(parse_args(&args("-l udp:1.2.3.4:99999")).is_err());
        assert!(parse_args(&args("-Z")).is_err());
        assert!(parse_args(&args("-f")).is_err());
    }
}
