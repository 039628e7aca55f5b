//! The registrar stack (auth + auth_db + usrloc + registrar) through the running server on
//! every SQL backend: a sqlite file, and PostgreSQL and MariaDB servers of our own
//! (`sipox_test_support::dbserver`; skipped when not installed unless `SIPOX_REQUIRE_DB=1`).
//!
//! Per backend, one body ([`suite`]):
//! - the OpenSIPS 3.5 schema is created and 50 subscribers added (as `sipox db user add`
//!   does: plain password and the HA1 of every algorithm);
//! - SIPp registers all of them with digest authentication (401 then 200), write-through
//!   usrloc on the same database: every call must succeed and every binding reach the table;
//! - restart persistency, in write-through and write-back: several AoRs with several contacts
//!   each are registered over UDP (write-through: each row is in the table right after its
//!   200 OK), the server is stopped cleanly, the `location` rows are checked column by
//!   column, a new server on the same database answers a fetching REGISTER per AoR with all
//!   its contacts and their remaining expires, and `ul_dump` shows Call-ID, CSeq and
//!   User-Agent restored; an unregistration on the new server reaches the table too.
//!
//! PostgreSQL and MariaDB: registering with write-through while the database server is down,
//! the bindings reach the table once it is back (the usrloc writer retries).

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use sipox_core::Server;
use sipox_db::{Db, Select, Value};
use sipox_digest::{Algorithm, ha1};
use sipox_sip_msg::{ContactValue, SipMsg};
use sipox_test_support::dbserver::{self, MariaDbServer, PgServer, TempDir};

use crate::sipp::{data, free_port, have, server};
use crate::{recv, udp};

/// Subscribers added (and SIPp calls made): user00000.. with password pw00000.., as in
/// `tests/data/sipp/users-auth.csv`.
const USERS: usize = 50;
/// AoRs registered in the restart test, and contacts per AoR.
const AORS: usize = 4;
const CONTACTS: usize = 3;

const WRITE_THROUGH: &str = "single-instance-sql-write-through";
const WRITE_BACK: &str = "single-instance-sql-write-back";

#[allow(clippy::disallowed_methods)] // tests compare the table's absolute expires with the clock
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[allow(clippy::disallowed_methods)] // test timings
fn clock() -> Instant {
    Instant::now()
}

/// The configuration: REGISTER authenticated against `subscriber` when `auth`, then saved in
/// `location` (usrloc in `mode` on `url`); anything else 404.
fn cfg(url: &str, mode: &str, auth: bool) -> String {
    let authz = if auth {
        "    if (!www_authorize(\"\", \"subscriber\")) { www_challenge(\"\", \"auth\"); exit; }\n    \
         consume_credentials();\n"
    } else {
        ""
    };
    format!(
        "udp_workers = 2\nsocket = udp:127.0.0.1:0\n\
         loadmodule \"sl.so\"\nloadmodule \"sipmsgops.so\"\nloadmodule \"signaling.so\"\n\
         loadmodule \"usrloc.so\"\nloadmodule \"registrar.so\"\n\
         loadmodule \"auth.so\"\nloadmodule \"auth_db.so\"\n\
         modparam(\"auth_db\", \"db_url\", \"{url}\")\n\
         modparam(\"usrloc\", \"working_mode_preset\", \"{mode}\")\n\
         modparam(\"usrloc\", \"db_url\", \"{url}\")\n\
         modparam(\"usrloc\", \"timer_interval\", 600)\n\
         route {{\n  if (is_method(\"REGISTER\")) {{\n{authz}    \
         if (!save(\"location\")) {{ sl_reply_error(); }}\n    exit;\n  }}\n  \
         sl_send_reply(404, \"Not Here\");\n}}\n"
    )
}

fn addr_of(s: &Server) -> SocketAddr {
    s.runtime.transports().unwrap().sockets()[0].local
}

/// Creates the schema and the subscribers.
fn provision(url: &str) -> std::sync::Arc<dyn Db> {
    sipox_db::schema::create(url, &[]).unwrap();
    let db = sipox_db::connect(url).unwrap();
    for i in 0..USERS {
        let user = format!("user{i:05}");
        let pw = format!("pw{i:05}");
        let h = |a| {
            ha1(a, user.as_bytes(), b"127.0.0.1", pw.as_bytes())
                .as_str()
                .to_owned()
        };
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
                user.as_str().into(),
                "127.0.0.1".into(),
                pw.as_str().into(),
                h(Algorithm::Md5).into(),
                h(Algorithm::Sha256).into(),
                h(Algorithm::Sha512_256).into(),
            ],
        )
        .unwrap();
    }
    db
}

fn location_rows(db: &dyn Db) -> sipox_db::Rows {
    db.select(&Select {
        table: "location",
        ..Select::default()
    })
    .unwrap()
}

fn clear_location(db: &dyn Db) {
    db.delete("location", &[]).unwrap();
}

/// Polls the table until `pred` holds (the usrloc writer is asynchronous); panics after
/// `timeout` with `what`.
fn wait_rows(
    db: &dyn Db,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&sipox_db::Rows) -> bool,
) -> Duration {
    let t0 = clock();
    loop {
        let rows = location_rows(db);
        if pred(&rows) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < timeout,
            "{what}: not in the location table after {timeout:?}: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn text(rows: &sipox_db::Rows, i: usize, col: &str) -> String {
    rows.get(i, col)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn int(rows: &sipox_db::Rows, i: usize, col: &str) -> i64 {
    rows.get(i, col)
        .and_then(Value::as_int)
        .unwrap_or_else(|| panic!("{col} of row {i}: {:?}", rows.get(i, col)))
}

fn float(rows: &sipox_db::Rows, i: usize, col: &str) -> f64 {
    match rows.get(i, col) {
        Some(Value::Double(d)) => *d,
        Some(v) => v
            .as_str()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or_else(|| panic!("{col} of row {i}: {v:?}")),
        None => panic!("no column {col}"),
    }
}

/// SIPp `uac_register_auth.xml` for every subscriber; all calls must succeed.
fn sipp_register_auth(url: &str, db: &dyn Db, tag: &str) {
    if !have("sipp") {
        return;
    }
    clear_location(db);
    let s = server(&cfg(url, WRITE_THROUGH, true));
    let port = addr_of(&s).port();
    let t0 = clock();
    let out = Command::new("sipp")
        .arg(format!("127.0.0.1:{port}"))
        .args(["-sf", data("sipp/uac_register_auth.xml").to_str().unwrap()])
        .args(["-inf", data("sipp/users-auth.csv").to_str().unwrap()])
        .args(["-i", "127.0.0.1", "-p", &free_port(false).to_string()])
        .args(["-m", &USERS.to_string(), "-r", "50", "-nostdin"])
        .args(["-timeout", "60", "-timeout_error", "-recv_timeout", "5000"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{tag}: sipp register-auth failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    // SIPp's exit status 0 means no failed call; its final statistics say how many passed.
    let sipp_time = t0.elapsed();
    // Every subscriber's binding reaches the table (write-through).
    wait_rows(db, Duration::from_secs(10), "SIPp bindings", |r| {
        r.len() == USERS
    });
    let rows = location_rows(db);
    let mut users: Vec<String> = (0..rows.len())
        .map(|i| text(&rows, i, "username"))
        .collect();
    users.sort();
    let want: Vec<String> = (0..USERS).map(|i| format!("user{i:05}")).collect();
    assert_eq!(users, want);
    for i in 0..rows.len() {
        assert_eq!(text(&rows, i, "user_agent"), "sipp-bench");
        let contact = text(&rows, i, "contact");
        assert!(
            contact.starts_with(&format!("sip:{}@127.0.0.1:", text(&rows, i, "username"))),
            "{contact}"
        );
    }
    s.shutdown();
    eprintln!(
        "{tag}: SIPp register-auth: {USERS} calls, 0 failed, {:.2?}",
        sipp_time
    );
}

/// One binding registered in the restart test.
#[derive(Debug, Clone)]
struct Binding {
    user: String,
    uri: String,
    expires: i64,
    q: &'static str,
    callid: String,
    cseq: u32,
    ua: String,
}

fn bindings(tag: &str) -> Vec<Binding> {
    let qs = ["0.5", "0.8", "1.0"];
    let mut v = Vec::new();
    for a in 0..AORS {
        for c in 0..CONTACTS {
            v.push(Binding {
                user: format!("ruser{a}"),
                uri: format!("sip:ruser{a}@192.0.2.{}:{}", a + 1, 5060 + c),
                expires: 1000 + (a * CONTACTS + c) as i64 * 100,
                q: qs[c % qs.len()],
                callid: format!("{tag}-{a}-{c}@backends"),
                cseq: (a * 10 + c + 1) as u32,
                ua: format!("sipox-it/{a}.{c}"),
            });
        }
    }
    v
}

fn register_msg(port: u16, b: &Binding, contact: &str, branch: &str, cseq: u32) -> Vec<u8> {
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{u}@127.0.0.1>;tag=f{branch}\r\nTo: <sip:{u}@127.0.0.1>\r\n\
         Call-ID: {cid}\r\nCSeq: {cseq} REGISTER\r\nUser-Agent: {ua}\r\n{contact}Content-Length: 0\r\n\r\n",
        u = b.user,
        cid = b.callid,
        ua = b.ua,
    )
    .into_bytes()
}

fn ask(c: &UdpSocket, to: SocketAddr, m: &[u8]) -> SipMsg {
    c.send_to(m, to).unwrap();
    recv(c)
}

/// The contacts of a 200 OK: URI → (expires, q).
fn reply_contacts(r: &SipMsg) -> BTreeMap<String, (i64, Option<String>)> {
    let mut out = BTreeMap::new();
    for c in r.contacts() {
        let ContactValue::Addr(na) = c.unwrap().v else {
            panic!("Contact: * in a 200 OK")
        };
        let raw = String::from_utf8_lossy(r.bind(na).raw()).into_owned();
        let (uri, params) = raw
            .strip_prefix('<')
            .and_then(|s| s.split_once('>'))
            .unwrap_or_else(|| panic!("{raw}"));
        let mut exp = None;
        let mut q = None;
        for p in params.split(';').filter(|p| !p.is_empty()) {
            match p.split_once('=') {
                Some(("expires", v)) => exp = v.parse().ok(),
                Some(("q", v)) => q = Some(v.to_owned()),
                _ => {}
            }
        }
        out.insert(
            uri.to_owned(),
            (exp.unwrap_or_else(|| panic!("no expires: {raw}")), q),
        );
    }
    out
}

/// Registers every binding, one REGISTER each; in write-through mode each row must be in the
/// table right after the 200 OK. Returns the slowest write-through delay.
fn register_all(s: &Server, db: &dyn Db, bs: &[Binding], mode: &str) -> Duration {
    let to = addr_of(s);
    let c = udp();
    let me = c.local_addr().unwrap().port();
    let mut worst = Duration::ZERO;
    for (i, b) in bs.iter().enumerate() {
        let contact = format!("Contact: <{}>;q={};expires={}\r\n", b.uri, b.q, b.expires);
        let r = ask(
            &c,
            to,
            &register_msg(me, b, &contact, &format!("r{i}"), b.cseq),
        );
        assert_eq!(r.status(), Some(200), "REGISTER {b:?}");
        let got = reply_contacts(&r);
        assert_eq!(got.get(&b.uri).map(|x| x.0), Some(b.expires), "{got:?}");
        if mode == WRITE_THROUGH {
            let d = wait_rows(db, Duration::from_secs(5), &b.uri, |rows| {
                (0..rows.len()).any(|j| text(rows, j, "contact") == b.uri)
            });
            worst = worst.max(d);
        }
    }
    worst
}

/// Every binding is in the table with its columns.
fn check_table(db: &dyn Db, bs: &[Binding], registered_at: i64, what: &str) {
    let rows = location_rows(db);
    assert_eq!(rows.len(), bs.len(), "{what}: {rows:?}");
    for b in bs {
        let i = (0..rows.len())
            .find(|&i| text(&rows, i, "contact") == b.uri)
            .unwrap_or_else(|| panic!("{what}: no row for {}", b.uri));
        assert_eq!(text(&rows, i, "username"), b.user, "{what}");
        assert_eq!(text(&rows, i, "callid"), b.callid, "{what}");
        assert_eq!(int(&rows, i, "cseq"), i64::from(b.cseq), "{what}");
        assert_eq!(text(&rows, i, "user_agent"), b.ua, "{what}");
        let q: f64 = b.q.parse().unwrap();
        assert!(
            (float(&rows, i, "q") - q).abs() < 1e-6,
            "{what}: q of {b:?}"
        );
        let exp = int(&rows, i, "expires");
        let want = registered_at + b.expires;
        assert!(
            (want - 5..=want + 5).contains(&exp),
            "{what}: expires {exp}, registered about {registered_at} + {}",
            b.expires
        );
        assert_ne!(int(&rows, i, "contact_id"), 0, "{what}");
    }
}

/// A fetching REGISTER (no Contact) per AoR lists all its contacts with the remaining expires.
fn check_fetch(s: &Server, bs: &[Binding], elapsed: i64, what: &str) {
    let to = addr_of(s);
    let c = udp();
    let me = c.local_addr().unwrap().port();
    for a in 0..AORS {
        let mine: Vec<&Binding> = bs
            .iter()
            .filter(|b| b.user == format!("ruser{a}"))
            .collect();
        let Some(first) = mine.first() else { continue };
        let probe = Binding {
            callid: format!("fetch-{a}-{}", first.callid),
            ..(*first).clone()
        };
        let r = ask(&c, to, &register_msg(me, &probe, "", &format!("f{a}"), 1));
        assert_eq!(
            r.status(),
            Some(200),
            "{what}: fetch ruser{a}: {:?}",
            r.header_named(b"P-Registrar-Error")
                .map(|h| String::from_utf8_lossy(r.value(h)).into_owned())
        );
        let got = reply_contacts(&r);
        assert_eq!(got.len(), mine.len(), "{what}: ruser{a}: {got:?}");
        for b in mine {
            let (exp, q) = got
                .get(&b.uri)
                .unwrap_or_else(|| panic!("{what}: {} missing: {got:?}", b.uri));
            assert!(
                (b.expires - elapsed - 5..=b.expires).contains(exp),
                "{what}: {} expires {exp}, registered with {} {elapsed} s ago",
                b.uri,
                b.expires
            );
            // q=1.0 is the default priority and may be left out of the reply.
            let q = q.as_deref().unwrap_or("1.0");
            assert_eq!(
                q.parse::<f64>().unwrap(),
                b.q.parse::<f64>().unwrap(),
                "{what}: q of {}",
                b.uri
            );
        }
    }
}

/// `ul_dump` shows every binding with its Call-ID, CSeq and User-Agent.
#[allow(clippy::disallowed_methods)] // the MI call's clock
fn check_ul_dump(s: &Server, bs: &[Binding], what: &str) {
    let v =
        s.mi.call("ul_dump", &json!({}), std::time::SystemTime::now())
            .unwrap();
    let dom = v["Domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "location")
        .unwrap_or_else(|| panic!("{what}: {v}"));
    let aors = dom["AORs"].as_array().unwrap();
    assert_eq!(aors.len(), AORS, "{what}: {v}");
    for b in bs {
        let aor = aors
            .iter()
            .find(|a| a["AOR"] == b.user.as_str())
            .unwrap_or_else(|| panic!("{what}: {} not in {v}", b.user));
        let c = aor["Contacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["Contact"] == b.uri.as_str())
            .unwrap_or_else(|| panic!("{what}: {} not in {aor}", b.uri));
        assert_eq!(c["Callid"], b.callid.as_str(), "{what}: {c}");
        assert_eq!(c["Cseq"], b.cseq, "{what}: {c}");
        assert_eq!(c["User-agent"], b.ua.as_str(), "{what}: {c}");
        assert_eq!(c["State"], "CS_SYNC", "{what}: {c}");
    }
}

/// Register, stop, check the table, start a new server, check memory, unregister one.
fn restart_round(url: &str, db: &dyn Db, mode: &str, tag: &str) {
    clear_location(db);
    let t0 = clock();
    let bs = bindings(&format!("{tag}-{mode}"));
    let registered_at = unix_now();
    let s = server(&cfg(url, mode, false));
    let worst = register_all(&s, db, &bs, mode);
    if mode == WRITE_BACK {
        // Nothing is written before the flush (the timer runs every 600 s): what the next
        // check finds was written at shutdown.
        assert_eq!(location_rows(db).len(), 0, "{tag}: write-back wrote early");
    }
    s.shutdown();
    drop(s);
    check_table(db, &bs, registered_at, &format!("{tag} {mode} after stop"));

    let s = server(&cfg(url, mode, false));
    let elapsed = unix_now() - registered_at;
    check_fetch(&s, &bs, elapsed, &format!("{tag} {mode} after restart"));
    check_ul_dump(&s, &bs, &format!("{tag} {mode} after restart"));
    // An unregistration on the new server reaches the table as well.
    let gone = &bs[0];
    let c = udp();
    let me = c.local_addr().unwrap().port();
    let unreg = Binding {
        cseq: gone.cseq + 1,
        ..gone.clone()
    };
    let r = ask(
        &c,
        addr_of(&s),
        &register_msg(
            me,
            &unreg,
            &format!("Contact: <{}>;expires=0\r\n", gone.uri),
            "u0",
            unreg.cseq,
        ),
    );
    assert_eq!(r.status(), Some(200));
    assert!(!reply_contacts(&r).contains_key(&gone.uri));
    if mode == WRITE_THROUGH {
        wait_rows(db, Duration::from_secs(5), "unregistration", |rows| {
            rows.len() == bs.len() - 1
        });
    }
    s.shutdown();
    drop(s);
    check_table(
        db,
        &bs[1..],
        registered_at,
        &format!("{tag} {mode} after unregister"),
    );
    let rows_after = if mode == WRITE_THROUGH {
        format!("each row in the table at most {worst:.2?} after its 200 OK")
    } else {
        "rows written at shutdown".to_owned()
    };
    eprintln!(
        "{tag}: restart {mode}: {} bindings in {AORS} AoRs, {:.2?} ({rows_after})",
        bs.len(),
        t0.elapsed()
    );
}

/// The whole suite on one database.
fn suite(url: &str, tag: &str) {
    let t0 = clock();
    let db = provision(url);
    sipp_register_auth(url, &*db, tag);
    restart_round(url, &*db, WRITE_THROUGH, tag);
    restart_round(url, &*db, WRITE_BACK, tag);
    eprintln!("{tag}: suite done in {:.2?}", t0.elapsed());
}

#[test]
fn backends_sqlite() {
    let dir = TempDir::new("backends-sqlite").unwrap();
    let url = format!("sqlite://{}", dir.path().join("sipox.db").display());
    suite(&url, "sqlite");
}

#[test]
fn backends_postgres() {
    let Some(srv) = PgServer::start() else {
        assert!(!dbserver::require_db(), "PostgreSQL required but not found");
        eprintln!("skipped: PostgreSQL not installed");
        return;
    };
    suite(&srv.url(), "postgres");
}

#[test]
fn backends_mariadb() {
    let Some(srv) = MariaDbServer::start() else {
        assert!(!dbserver::require_db(), "MariaDB required but not found");
        eprintln!("skipped: MariaDB not installed");
        return;
    };
    suite(&srv.url(), "mariadb");
}

/// Write-through with the database down: the REGISTERs are answered from memory, and the
/// queued writes reach the table once the database server is back (the writer retries).
fn down_write_through(url: &str, tag: &str, stop: impl FnOnce(), restart: impl FnOnce()) {
    let db = provision(url);
    let bs = bindings(&format!("{tag}-down"));
    let registered_at = unix_now();
    let s = server(&cfg(url, WRITE_THROUGH, false));
    drop(db);
    stop();
    let t0 = clock();
    let to = addr_of(&s);
    let c = udp();
    let me = c.local_addr().unwrap().port();
    for (i, b) in bs.iter().enumerate() {
        let contact = format!("Contact: <{}>;q={};expires={}\r\n", b.uri, b.q, b.expires);
        let r = ask(
            &c,
            to,
            &register_msg(me, b, &contact, &format!("d{i}"), b.cseq),
        );
        assert_eq!(
            r.status(),
            Some(200),
            "{tag}: REGISTER with the database down"
        );
    }
    let answered = t0.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    restart();
    let db = sipox_db::connect(url).unwrap();
    let took = wait_rows(&*db, Duration::from_secs(30), "queued bindings", |rows| {
        rows.len() == bs.len()
    });
    check_table(&*db, &bs, registered_at, &format!("{tag} down, then back"));
    s.shutdown();
    eprintln!(
        "{tag}-down: {} REGISTERs answered in {answered:.2?} with the database down; \
         rows written {took:.2?} after it came back",
        bs.len()
    );
}

#[test]
fn backends_postgres_down_write_through() {
    let Some(srv) = PgServer::start() else {
        assert!(!dbserver::require_db(), "PostgreSQL required but not found");
        eprintln!("skipped: PostgreSQL not installed");
        return;
    };
    let url = srv.url();
    let srv = std::cell::RefCell::new(srv);
    down_write_through(
        &url,
        "postgres",
        || srv.borrow_mut().stop(),
        || srv.borrow_mut().restart(),
    );
}

#[test]
fn backends_mariadb_down_write_through() {
    let Some(srv) = MariaDbServer::start() else {
        assert!(!dbserver::require_db(), "MariaDB required but not found");
        eprintln!("skipped: MariaDB not installed");
        return;
    };
    let url = srv.url();
    let srv = std::cell::RefCell::new(srv);
    down_write_through(
        &url,
        "mariadb",
        || srv.borrow_mut().stop(),
        || srv.borrow_mut().restart(),
    );
}
