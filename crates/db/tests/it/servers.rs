//! PostgreSQL and MariaDB, started by the test on loopback: the conformance suite, type
//! mapping, and writes kept through a server outage (stop, write, restart, flush).
//!
//! Without the server binaries these tests print "skipped" and pass, unless
//! `SIPOX_REQUIRE_DB=1` (CI), where a missing server fails them.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sipox_db::{Cond, Db, DbError, Dialect, Op, Select, Value, WriteOp, Writer, connect};
use sipox_test_support::dbserver::{MariaDbServer, PgServer, free_port};

use crate::api;

/// Collects this process's sipox-db log lines (nextest runs each test in its own process).
fn capture_log() -> Arc<Mutex<Vec<(i32, String)>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l2 = lines.clone();
    sipox_db::set_log_sink(Arc::new(move |lvl, msg| {
        eprintln!("log {lvl}: {msg}");
        l2.lock().push((lvl, msg.to_owned()));
    }));
    lines
}

#[test]
fn postgres_conformance() {
    let Some(pg) = PgServer::start() else {
        eprintln!("skipped: no PostgreSQL");
        return;
    };
    let db = connect(&pg.url()).unwrap();
    assert_eq!(db.dialect(), Dialect::Postgres);
    api::conformance(&*db);
    api::concurrency(db.clone());
    // A wrong password is not retryable.
    let bad = pg.url().replace("sipoxpw", "wrong");
    let e = connect(&bad).unwrap_err();
    assert!(!e.is_retryable(), "{e:?}");
}

#[test]
fn postgres_types() {
    let Some(pg) = PgServer::start() else {
        eprintln!("skipped: no PostgreSQL");
        return;
    };
    let db = connect(&pg.url()).unwrap();
    db.raw(
        "CREATE TABLE ty (b BOOLEAN, n NUMERIC(10,3), i4 INTEGER, d DATE, c CHAR(3), \
         tz TIMESTAMP WITH TIME ZONE, t TEXT)",
    )
    .unwrap();
    // Values of other types than the column's are converted for it.
    db.insert(
        "ty",
        &["b", "i4", "d", "c", "tz", "t"],
        &[
            Value::Int(1),
            Value::from("42"),
            Value::DateTime(951_782_400),
            Value::from("abc"),
            Value::from("2023-11-14 22:13:20"),
            Value::Int(5),
        ],
    )
    .unwrap();
    db.raw("UPDATE ty SET n = 12.5").unwrap();
    let r = db
        .select(&Select {
            table: "ty",
            ..Select::default()
        })
        .unwrap();
    assert_eq!(
        r.rows,
        vec![vec![
            Value::Int(1),
            Value::Double(12.5),
            Value::Int(42),
            Value::DateTime(951_782_400),
            Value::from("abc"),
            Value::DateTime(1_700_000_000),
            Value::from("5"),
        ]]
    );
    // An integer too large for int4 is an error, not a wrapped value.
    let e = db
        .update("ty", &[], &["i4"], &[Value::Int(1 << 40)])
        .unwrap_err();
    assert!(matches!(e, DbError::Query(_)), "{e:?}");
    // raw() answers text.
    let r = db.raw("SELECT i4, b FROM ty").unwrap();
    assert_eq!(r.rows, vec![vec![Value::from("42"), Value::from("t")]]);
    // A call that outlasts the timeout (10 s) fails retryably; the pool still answers.
    let e = db.raw("SELECT pg_sleep(12)").unwrap_err();
    assert!(matches!(e, DbError::Timeout(10_000)), "{e:?}");
    assert!(e.is_retryable());
    assert_eq!(
        db.raw("SELECT 1 AS one").unwrap().rows,
        vec![vec![Value::from("1")]]
    );
    // Cached statements follow a table redefined by raw DDL.
    db.raw("DROP TABLE ty").unwrap();
    db.raw("CREATE TABLE ty (i4 TEXT)").unwrap();
    db.insert("ty", &["i4"], &["x".into()]).unwrap();
    let r = db
        .select(&Select {
            table: "ty",
            ..Select::default()
        })
        .unwrap();
    assert_eq!(r.rows, vec![vec![Value::from("x")]]);
}

#[test]
fn mariadb_conformance() {
    let Some(my) = MariaDbServer::start() else {
        eprintln!("skipped: no MariaDB");
        return;
    };
    let db = connect(&my.url()).unwrap();
    assert_eq!(db.dialect(), Dialect::Mysql);
    api::conformance(&*db);
    api::concurrency(db.clone());
    // Updates count the rows matched, even when nothing changed.
    let n = db
        .update(
            "t_api",
            &[Cond::eq("username", "bob")],
            &["expires"],
            &[Value::Int(777)],
        )
        .unwrap();
    assert_eq!(n, 1);
    let bad = my.url().replace("sipoxpw", "wrong");
    let e = connect(&bad).unwrap_err();
    assert!(!e.is_retryable(), "{e:?}");
}

#[test]
fn unreachable_servers_fail_retryably() {
    let port = free_port();
    for url in [
        format!("postgres://u:p@127.0.0.1:{port}/x"),
        format!("mysql://u:p@127.0.0.1:{port}/x"),
    ] {
        let e = connect(&url).unwrap_err();
        assert!(matches!(e, DbError::Connection(_)), "{url}: {e:?}");
        assert!(e.is_retryable());
        // The password is not in the error.
        assert!(!e.to_string().contains(":p@"), "{e}");
    }
}

fn ins(i: i64) -> WriteOp {
    WriteOp::Insert {
        table: "w".into(),
        cols: vec!["k".into(), "v".into()],
        vals: vec![Value::Int(i), format!("row {i}").into()],
    }
}

/// Writes through a `Writer`, stops the server, writes more (queued, retried), restarts it:
/// after `flush` every row is there, in order, and the outage was logged.
fn writes_survive_an_outage(db: Arc<dyn Db>, stop: &mut dyn FnMut(), start: &mut dyn FnMut()) {
    let log = capture_log();
    db.raw("CREATE TABLE w (k INTEGER PRIMARY KEY, v VARCHAR(32) NOT NULL)")
        .unwrap();
    let w = Writer::new(db.clone(), "restart-test");
    for i in 0..20 {
        w.submit(ins(i));
    }
    assert!(w.flush(Duration::from_secs(20)));
    stop();
    for i in 20..60 {
        w.submit(ins(i));
    }
    w.submit(WriteOp::Update {
        table: "w".into(),
        conds: vec![("k".into(), Op::Ge, Value::Int(50))],
        cols: vec!["v".into()],
        vals: vec!["updated".into()],
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(w.pending() > 0, "writes must wait for the server");
    // A read while the server is away fails retryably and quickly.
    let e = db
        .select(&Select {
            table: "w",
            ..Select::default()
        })
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    start();
    assert!(w.flush(Duration::from_secs(60)), "pending {}", w.pending());
    let r = db
        .select(&Select {
            table: "w",
            columns: &["k", "v"],
            order_by: Some("k"),
            ..Select::default()
        })
        .unwrap();
    assert_eq!(r.len(), 60);
    for (i, row) in r.rows.iter().enumerate() {
        assert_eq!(row[0], Value::Int(i as i64));
        let want = if i >= 50 {
            "updated".to_owned()
        } else {
            format!("row {i}")
        };
        assert_eq!(row[1], Value::Str(want));
    }
    drop(w);
    let lines = log.lock();
    let has = |lvl: i32, text: &str| lines.iter().any(|(l, m)| *l == lvl && m.contains(text));
    assert!(has(sipox_db::L_ERR, "lost") || has(sipox_db::L_ERR, "cannot connect"));
    assert!(
        has(sipox_db::L_WARN, "restart-test"),
        "writer outage logged"
    );
    assert!(has(sipox_db::L_NOTICE, "reconnected"), "reconnect logged");
    assert!(
        has(sipox_db::L_NOTICE, "restart-test"),
        "writer recovery logged"
    );
}

#[test]
fn postgres_writes_survive_a_restart() {
    let Some(pg) = PgServer::start() else {
        eprintln!("skipped: no PostgreSQL");
        return;
    };
    let db = connect(&pg.url()).unwrap();
    let pg = Mutex::new(pg);
    writes_survive_an_outage(db, &mut || pg.lock().stop(), &mut || pg.lock().restart());
}

#[test]
fn mariadb_writes_survive_a_restart() {
    let Some(my) = MariaDbServer::start() else {
        eprintln!("skipped: no MariaDB");
        return;
    };
    let db = connect(&my.url()).unwrap();
    let my = Mutex::new(my);
    writes_survive_an_outage(db, &mut || my.lock().stop(), &mut || my.lock().restart());
}
