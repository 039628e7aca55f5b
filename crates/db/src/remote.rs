//! What the server drivers (postgres, mysql) share: the driver runtime, a few connections
//! ("slots") per database, the blocking call that may come from any thread, and reconnection
//! with backoff.
//!
//! The runtime is one small multi-thread tokio runtime (2 threads, `sipox-db`) started on the
//! first connect and kept for the process. A call spawns its future onto it and waits on a
//! channel with a timeout; it never enters the runtime from the caller's thread, so a caller
//! may be a plain thread or a worker of another tokio runtime. A call that times out is
//! aborted, and the connection it was using is dropped (its protocol state is unknown).
//!
//! Reconnection: a connection found closed before use is reopened at once. A failed connect
//! starts an outage: further connects wait 100 ms, doubling up to 5 s, and calls in between
//! fail at once with [`DbError::Connection`]. The outage is logged when it starts (error),
//! at each failed attempt (warning) and when a connect succeeds again (notice).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::runtime::{Handle, Runtime};
use tokio::time::Instant;

use crate::{DbError, L_ERR, L_NOTICE, L_WARN, log};

/// A boxed future borrowing a connection.
pub(crate) type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How long a call waits for its answer.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connect attempt may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per database.
const SLOTS: usize = 4;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A driver's connection type.
pub(crate) trait Connect: Send + Sync + 'static {
    /// The connection.
    type Conn: Send + 'static;
    /// Opens a connection.
    fn connect(&self) -> BoxFut<'_, Result<Self::Conn, DbError>>;
    /// False when the connection is known to be closed (checked before each use).
    fn is_open(conn: &Self::Conn) -> bool;
}

/// A pool of connections to one server database.
pub(crate) struct Remote<C: Connect> {
    inner: Arc<Inner<C>>,
    rt: Handle,
    timeout: Duration,
}

struct Inner<C: Connect> {
    driver: &'static str,
    /// The URL with its password masked, for logs.
    url: String,
    connector: C,
    slots: Vec<Arc<tokio::sync::Mutex<Option<C::Conn>>>>,
    next: AtomicUsize,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    /// In an outage: since when, and failed connects so far.
    down: Option<(Instant, u32)>,
    /// No connect before this.
    retry_at: Option<Instant>,
}

impl<C: Connect> std::fmt::Debug for Remote<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("driver", &self.inner.driver)
            .field("url", &self.inner.url)
            .finish()
    }
}

impl<C: Connect> Remote<C> {
    /// Starts the runtime if needed and opens the first connection (so a bad URL, password
    /// or an unreachable server fails here).
    pub(crate) fn open(driver: &'static str, url: String, connector: C) -> Result<Self, DbError> {
        let rt = runtime()?;
        let inner = Arc::new(Inner {
            driver,
            url,
            connector,
            slots: (0..SLOTS)
                .map(|_| Arc::new(tokio::sync::Mutex::new(None)))
                .collect(),
            next: AtomicUsize::new(0),
            health: Mutex::new(Health::default()),
        });
        let r = Self {
            inner,
            rt,
            timeout: CALL_TIMEOUT,
        };
        r.call(false, |_| Box::pin(async { Ok(()) }))?;
        Ok(r)
    }

    /// Runs `f` on a connection of the pool and waits for its result at most the timeout.
    /// With `retry`, an operation that failed because its (reused) connection was lost is
    /// run once more on a fresh connection; use it only for operations that may run twice.
    pub(crate) fn call<R, F>(&self, retry: bool, f: F) -> Result<R, DbError>
    where
        R: Send + 'static,
        F: for<'c> Fn(&'c mut C::Conn) -> BoxFut<'c, Result<R, DbError>> + Send + Sync + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let task = self.rt.spawn(async move {
            let r = inner.run(retry, &f).await;
            let _ = tx.send(r);
        });
        match rx.recv_timeout(self.timeout) {
            Ok(r) => r,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                task.abort();
                log(
                    L_WARN,
                    &format!(
                        "{} {}: call timed out after {} ms",
                        self.inner.driver,
                        self.inner.url,
                        self.timeout.as_millis()
                    ),
                );
                Err(DbError::Timeout(self.timeout.as_millis() as u64))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(DbError::Connection(
                format!("{} driver task ended without an answer", self.inner.driver),
            )),
        }
    }
}

impl<C: Connect> Inner<C> {
    async fn run<R, F>(&self, retry: bool, f: &F) -> Result<R, DbError>
    where
        F: for<'c> Fn(&'c mut C::Conn) -> BoxFut<'c, Result<R, DbError>>,
    {
        let slot = self.slot().await;
        let mut slot = slot.lock().await;
        let (mut conn, reused) = match slot.take() {
            Some(c) if C::is_open(&c) => (c, true),
            _ => (self.connect().await?, false),
        };
        let r = f(&mut conn).await;
        match r {
            Err(DbError::Connection(e)) => {
                drop(conn);
                if retry && reused {
                    log(
                        L_NOTICE,
                        &format!(
                            "{} {}: connection lost ({e}); retrying on a new one",
                            self.driver, self.url
                        ),
                    );
                    let mut conn = self.connect().await?;
                    let r = f(&mut conn).await;
                    if !matches!(r, Err(DbError::Connection(_))) {
                        *slot = Some(conn);
                    }
                    return r;
                }
                log(
                    L_ERR,
                    &format!("{} {}: connection lost: {e}", self.driver, self.url),
                );
                Err(DbError::Connection(e))
            }
            r => {
                *slot = Some(conn);
                r
            }
        }
    }

    /// A free slot, or else the next one round robin.
    async fn slot(&self) -> Arc<tokio::sync::Mutex<Option<C::Conn>>> {
        for s in &self.slots {
            if let Ok(g) = Arc::clone(s).try_lock_owned() {
                drop(g);
                return Arc::clone(s);
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        Arc::clone(&self.slots[i])
    }

    /// Opens a connection, unless an outage's backoff says not yet.
    async fn connect(&self) -> Result<C::Conn, DbError> {
        let now = Instant::now();
        if let Some(at) = self.health.lock().retry_at
            && now < at
        {
            return Err(DbError::Connection(format!(
                "{} {}: unreachable, next connect attempt in {} ms",
                self.driver,
                self.url,
                (at - now).as_millis()
            )));
        }
        let r = match tokio::time::timeout(CONNECT_TIMEOUT, self.connector.connect()).await {
            Ok(r) => r,
            Err(_) => Err(DbError::Connection(format!(
                "connect timed out after {} s",
                CONNECT_TIMEOUT.as_secs()
            ))),
        };
        let mut h = self.health.lock();
        match r {
            Ok(c) => {
                if let Some((since, n)) = h.down.take() {
                    log(
                        L_NOTICE,
                        &format!(
                            "{} {}: reconnected after {:.1} s ({n} failed attempts)",
                            self.driver,
                            self.url,
                            since.elapsed().as_secs_f64()
                        ),
                    );
                }
                h.retry_at = None;
                Ok(c)
            }
            Err(e) => {
                let (since, n) = {
                    let d = h.down.get_or_insert((now, 0));
                    d.1 += 1;
                    *d
                };
                let exp = (n - 1).min(16);
                let delay = BACKOFF_MIN.saturating_mul(1 << exp).min(BACKOFF_MAX);
                h.retry_at = Some(now + delay);
                let msg = format!(
                    "{} {}: cannot connect ({e}); attempt {n}, down for {:.1} s, retrying in {} ms",
                    self.driver,
                    self.url,
                    since.elapsed().as_secs_f64(),
                    delay.as_millis()
                );
                log(if n == 1 { L_ERR } else { L_WARN }, &msg);
                Err(match e {
                    DbError::Connection(_) | DbError::Timeout(_) => DbError::Connection(msg),
                    other => other,
                })
            }
        }
    }
}

/// The drivers' runtime, started on first use.
fn runtime() -> Result<Handle, DbError> {
    static RT: OnceLock<Runtime> = OnceLock::new();
    static INIT: Mutex<()> = parking_lot::const_mutex(());
    if let Some(rt) = RT.get() {
        return Ok(rt.handle().clone());
    }
    let _g = INIT.lock();
    if let Some(rt) = RT.get() {
        return Ok(rt.handle().clone());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sipox-db")
        .enable_all()
        .build()
        .map_err(|e| DbError::Connection(format!("cannot start the database runtime: {e}")))?;
    let h = rt.handle().clone();
    let _ = RT.set(rt);
    Ok(h)
}
