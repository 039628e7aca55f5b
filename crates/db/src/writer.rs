//! The write queue: database writes that need not hold a SIP reply, applied in submission
//! order by one thread per queue.
//!
//! `submit` never blocks on the database (the queue is unbounded). A write that fails with a
//! retryable error ([`DbError::is_retryable`]: connection lost, timeout, sqlite busy) stays at
//! the head of the queue and is retried with backoff (100 ms doubling to 5 s) until it goes
//! through, so nothing accepted is lost while the server is away and order is kept; the outage
//! is logged once when it starts and once when it ends. A write that fails otherwise (bad
//! column, constraint) is logged and dropped. One caveat: a write whose call timed out may
//! have been applied by the server anyway, so a retried `Insert` can land twice; `Replace`,
//! `Update` and `Delete` are idempotent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::{Cond, Db, DbError, L_ERR, L_NOTICE, L_WARN, Op, Value, log};

/// How long dropping a [`Writer`] waits for its queue to drain.
pub(crate) const DROP_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// First retry delay after a retryable failure; doubles up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(100);
/// Longest retry delay.
const RETRY_MAX: Duration = Duration::from_secs(5);

/// One queued write. Owned, so it can cross to the writer thread.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// `INSERT`.
    Insert {
        /// Table.
        table: String,
        /// Columns.
        cols: Vec<String>,
        /// Values.
        vals: Vec<Value>,
    },
    /// `UPDATE ... WHERE`.
    Update {
        /// Table.
        table: String,
        /// Conditions (column, operator, value), AND-ed.
        conds: Vec<(String, Op, Value)>,
        /// Columns to set.
        cols: Vec<String>,
        /// Their values.
        vals: Vec<Value>,
    },
    /// `DELETE ... WHERE`.
    Delete {
        /// Table.
        table: String,
        /// Conditions, AND-ed.
        conds: Vec<(String, Op, Value)>,
    },
    /// Insert or replace by unique key.
    Replace {
        /// Table.
        table: String,
        /// Columns.
        cols: Vec<String>,
        /// Values.
        vals: Vec<Value>,
        /// The unique key's columns.
        key_cols: Vec<String>,
    },
}

impl WriteOp {
    /// Applies the write to `db` now.
    pub fn apply(&self, db: &dyn Db) -> Result<(), DbError> {
        fn conds(c: &[(String, Op, Value)]) -> Vec<Cond<'_>> {
            c.iter()
                .map(|(col, op, val)| Cond {
                    col,
                    op: *op,
                    val: val.clone(),
                })
                .collect()
        }
        fn strs(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        match self {
            Self::Insert { table, cols, vals } => db.insert(table, &strs(cols), vals).map(drop),
            Self::Update {
                table,
                conds: c,
                cols,
                vals,
            } => db.update(table, &conds(c), &strs(cols), vals).map(drop),
            Self::Delete { table, conds: c } => db.delete(table, &conds(c)).map(drop),
            Self::Replace {
                table,
                cols,
                vals,
                key_cols,
            } => db.replace(table, &strs(cols), vals, &strs(key_cols)),
        }
    }

    fn table(&self) -> &str {
        match self {
            Self::Insert { table, .. }
            | Self::Update { table, .. }
            | Self::Delete { table, .. }
            | Self::Replace { table, .. } => table,
        }
    }
}

/// An ordered write queue over one database, drained by its own thread.
///
/// Dropping it (or [`Writer::close`]) waits up to 5 s (or the given
/// timeout) for the queue to drain, then stops the thread; writes still queued then are
/// logged as lost.
#[derive(Debug)]
pub struct Writer {
    shared: Arc<Shared>,
    tx: Mutex<Option<mpsc::Sender<WriteOp>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    name: String,
    /// Writes accepted by `submit`.
    submitted: AtomicU64,
    /// Writes done with (applied, or dropped after a non-retryable error).
    done: AtomicU64,
    /// Set by `close`: the thread stops retrying and exits.
    stop: AtomicBool,
    lock: Mutex<()>,
    /// Signalled when `done` grows and when `stop` is set.
    cv: Condvar,
}

impl Writer {
    /// A queue writing to `db`; `name` appears in its log lines and its thread's name.
    pub fn new(db: Arc<dyn Db>, name: &str) -> Self {
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            submitted: AtomicU64::new(0),
            done: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        });
        let (tx, rx) = mpsc::channel();
        let sh = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("db-writer-{name}"))
            .spawn(move || run(&*db, &sh, &rx));
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                log(
                    L_ERR,
                    &format!("db writer {name}: cannot start its thread: {e}; writes are lost"),
                );
                None
            }
        };
        Self {
            shared,
            tx: Mutex::new(thread.is_some().then_some(tx)),
            thread: Mutex::new(thread),
        }
    }

    /// Queues a write; never blocks on the database. After [`Writer::close`] the write is
    /// logged and dropped.
    pub fn submit(&self, op: WriteOp) {
        let tx = self.tx.lock();
        let Some(tx) = tx.as_ref() else {
            log(
                L_ERR,
                &format!(
                    "db writer {}: closed, dropping a write to {}",
                    self.shared.name,
                    op.table()
                ),
            );
            return;
        };
        self.shared.submitted.fetch_add(1, Ordering::SeqCst);
        if let Err(mpsc::SendError(op)) = tx.send(op) {
            self.shared.submitted.fetch_sub(1, Ordering::SeqCst);
            log(
                L_ERR,
                &format!(
                    "db writer {}: its thread is gone, dropping a write to {}",
                    self.shared.name,
                    op.table()
                ),
            );
        }
    }

    /// Waits until every write queued before this call is done (applied, or dropped after a
    /// non-retryable error), or `timeout` passed; true when they are.
    pub fn flush(&self, timeout: Duration) -> bool {
        let target = self.shared.submitted.load(Ordering::SeqCst);
        #[allow(clippy::disallowed_methods)] // a caller's deadline: this is the I/O edge
        let deadline = Instant::now() + timeout;
        let mut g = self.shared.lock.lock();
        while self.shared.done.load(Ordering::SeqCst) < target {
            if self.shared.cv.wait_until(&mut g, deadline).timed_out() {
                return self.shared.done.load(Ordering::SeqCst) >= target;
            }
        }
        true
    }

    /// Writes queued and not yet done.
    pub fn pending(&self) -> usize {
        let s = self.shared.submitted.load(Ordering::SeqCst);
        let d = self.shared.done.load(Ordering::SeqCst);
        usize::try_from(s.saturating_sub(d)).unwrap_or(usize::MAX)
    }

    /// Waits up to `timeout` for the queue to drain, then stops the thread (also when it did
    /// not drain: what is left is logged as lost). Later submits are dropped. True when
    /// everything was applied.
    pub fn close(&self, timeout: Duration) -> bool {
        let drained = self.flush(timeout);
        // Dropping the sender ends the thread's loop once the queue is empty.
        drop(self.tx.lock().take());
        if !drained {
            self.shared.stop.store(true, Ordering::SeqCst);
            let _g = self.shared.lock.lock();
            self.shared.cv.notify_all();
        }
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
        let left = self.pending();
        if left > 0 {
            log(
                L_ERR,
                &format!(
                    "db writer {}: closed with {left} write(s) not applied",
                    self.shared.name
                ),
            );
        }
        drained
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close(DROP_FLUSH_TIMEOUT);
    }
}

/// The writer thread: applies ops in order, retrying retryable failures.
fn run(db: &dyn Db, sh: &Shared, rx: &mpsc::Receiver<WriteOp>) {
    // When the current outage started, and how many attempts failed in it.
    #[allow(clippy::disallowed_methods)] // outage durations in log lines
    let now = Instant::now;
    let mut outage: Option<(Instant, u32)> = None;
    while let Ok(op) = rx.recv() {
        let mut delay = RETRY_MIN;
        loop {
            match op.apply(db) {
                Ok(()) => {
                    if let Some((since, failures)) = outage.take() {
                        log(
                            L_NOTICE,
                            &format!(
                                "db writer {}: database back after {:.1} s ({failures} failed \
                                 attempts); {} write(s) pending",
                                sh.name,
                                since.elapsed().as_secs_f64(),
                                sh.submitted
                                    .load(Ordering::SeqCst)
                                    .saturating_sub(sh.done.load(Ordering::SeqCst))
                            ),
                        );
                    }
                    break;
                }
                Err(e) if e.is_retryable() => {
                    match &mut outage {
                        Some((_, n)) => *n += 1,
                        None => {
                            log(
                                L_WARN,
                                &format!(
                                    "db writer {}: write to {} failed ({e}); keeping it and \
                                     retrying with backoff up to {} s",
                                    sh.name,
                                    op.table(),
                                    RETRY_MAX.as_secs()
                                ),
                            );
                            outage = Some((now(), 1));
                        }
                    }
                    let mut g = sh.lock.lock();
                    if sh.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    sh.cv.wait_for(&mut g, delay);
                    if sh.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    delay = (delay * 2).min(RETRY_MAX);
                }
                Err(e) => {
                    log(
                        L_ERR,
                        &format!(
                            "db writer {}: dropping a write to {}: {e}",
                            sh.name,
                            op.table()
                        ),
                    );
                    break;
                }
            }
        }
        let _g = sh.lock.lock();
        sh.done.fetch_add(1, Ordering::SeqCst);
        sh.cv.notify_all();
    }
}
