//! The write queue over sqlite: order, flush, non-retryable drops, and retry through an
//! outage (a wrapper that fails with connection errors while "down").

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use sipox_db::{
    Cond, Db, DbError, Dialect, Op, Rows, Select, Value, WriteOp, Writer, connect, set_log_sink,
};
use sipox_test_support::dbserver::TempDir;

fn sqlite(dir: &TempDir) -> Arc<dyn Db> {
    let db = connect(&format!("sqlite://{}", dir.path().join("w.db").display())).unwrap();
    db.raw("CREATE TABLE w (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
        .unwrap();
    db
}

fn ins(k: &str, v: i64) -> WriteOp {
    WriteOp::Insert {
        table: "w".into(),
        cols: vec!["k".into(), "v".into()],
        vals: vec![k.into(), Value::Int(v)],
    }
}

fn all(db: &dyn Db) -> Vec<(String, i64)> {
    let r = db
        .select(&Select {
            table: "w",
            order_by: Some("k"),
            ..Select::default()
        })
        .unwrap();
    r.rows
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_owned(), r[1].as_int().unwrap()))
        .collect()
}

#[test]
fn applies_in_order_and_drops_bad_writes() {
    let dir = TempDir::new("writer").unwrap();
    let db = sqlite(&dir);
    let w = Writer::new(db.clone(), "order");
    for i in 0..200 {
        w.submit(ins(&format!("k{i:03}"), i));
    }
    // Order matters: update then delete then replace of the same keys.
    w.submit(WriteOp::Update {
        table: "w".into(),
        conds: vec![("k".into(), Op::Lt, "k010".into())],
        cols: vec!["v".into()],
        vals: vec![Value::Int(-1)],
    });
    w.submit(WriteOp::Delete {
        table: "w".into(),
        conds: vec![("v".into(), Op::Ge, Value::Int(10))],
    });
    // A duplicate key: not retryable, dropped; the queue goes on.
    w.submit(ins("k000", 5));
    w.submit(WriteOp::Replace {
        table: "w".into(),
        cols: vec!["k".into(), "v".into()],
        vals: vec!["k001".into(), Value::Int(42)],
        key_cols: vec!["k".into()],
    });
    assert!(w.flush(Duration::from_secs(30)));
    assert_eq!(w.pending(), 0);
    let rows = all(&*db);
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[0], ("k000".into(), -1));
    assert_eq!(rows[1], ("k001".into(), 42));
    assert!(rows[2..].iter().all(|(_, v)| *v == -1));
    assert!(w.close(Duration::from_secs(5)));
    // After close, a submit is dropped (logged), not applied.
    w.submit(ins("late", 1));
    assert!(w.flush(Duration::from_millis(10)));
    assert_eq!(all(&*db).len(), 10);
}

/// A database that answers `DbError::Connection` while `down` is set.
#[derive(Debug)]
struct Flaky {
    inner: Arc<dyn Db>,
    down: AtomicBool,
    failures: AtomicUsize,
}

impl Flaky {
    fn check(&self) -> Result<(), DbError> {
        if self.down.load(Ordering::SeqCst) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(DbError::Connection("server is down (test)".into()));
        }
        Ok(())
    }
}

impl Db for Flaky {
    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }
    fn select(&self, q: &Select<'_>) -> Result<Rows, DbError> {
        self.check()?;
        self.inner.select(q)
    }
    fn insert(&self, t: &str, c: &[&str], v: &[Value]) -> Result<u64, DbError> {
        self.check()?;
        self.inner.insert(t, c, v)
    }
    fn update(&self, t: &str, w: &[Cond<'_>], c: &[&str], v: &[Value]) -> Result<u64, DbError> {
        self.check()?;
        self.inner.update(t, w, c, v)
    }
    fn delete(&self, t: &str, w: &[Cond<'_>]) -> Result<u64, DbError> {
        self.check()?;
        self.inner.delete(t, w)
    }
    fn replace(&self, t: &str, c: &[&str], v: &[Value], k: &[&str]) -> Result<(), DbError> {
        self.check()?;
        self.inner.replace(t, c, v, k)
    }
    fn raw(&self, sql: &str) -> Result<Rows, DbError> {
        self.check()?;
        self.inner.raw(sql)
    }
}

#[test]
fn keeps_writes_through_an_outage() {
    let lines = Arc::new(parking_lot::Mutex::new(Vec::<(i32, String)>::new()));
    let l2 = lines.clone();
    set_log_sink(Arc::new(move |lvl, msg| {
        l2.lock().push((lvl, msg.to_owned()))
    }));
    let dir = TempDir::new("writer").unwrap();
    let inner = sqlite(&dir);
    let flaky = Arc::new(Flaky {
        inner: inner.clone(),
        down: AtomicBool::new(false),
        failures: AtomicUsize::new(0),
    });
    let w = Writer::new(flaky.clone(), "outage");
    w.submit(ins("before", 1));
    assert!(w.flush(Duration::from_secs(10)));
    flaky.down.store(true, Ordering::SeqCst);
    for i in 0..50 {
        w.submit(ins(&format!("during{i:02}"), i));
    }
    // Nothing goes through while down; flush times out and says so.
    assert!(!w.flush(Duration::from_millis(700)));
    assert_eq!(w.pending(), 50);
    assert!(
        flaky.failures.load(Ordering::SeqCst) >= 3,
        "retried with backoff"
    );
    assert_eq!(all(&*inner).len(), 1);
    flaky.down.store(false, Ordering::SeqCst);
    assert!(w.flush(Duration::from_secs(30)));
    assert_eq!(w.pending(), 0);
    let rows = all(&*inner);
    assert_eq!(rows.len(), 51);
    assert_eq!(rows[1], ("during00".into(), 0));
    drop(w);
    let lines = lines.lock();
    let mine: Vec<_> = lines.iter().filter(|(_, m)| m.contains("outage")).collect();
    // Logged once when the outage started and once when it ended.
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert_eq!(mine[0].0, sipox_db::L_WARN);
    assert!(mine[0].1.contains("retrying"), "{}", mine[0].1);
    assert_eq!(mine[1].0, sipox_db::L_NOTICE);
    assert!(mine[1].1.contains("back"), "{}", mine[1].1);
}

#[test]
fn drop_flushes() {
    let dir = TempDir::new("writer").unwrap();
    let db = sqlite(&dir);
    {
        let w = Writer::new(db.clone(), "drop");
        for i in 0..100 {
            w.submit(ins(&format!("d{i:03}"), i));
        }
    }
    assert_eq!(all(&*db).len(), 100);
}
