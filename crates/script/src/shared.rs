//! State shared by every worker: log levels, the local cache store, `$shv`, script locks,
//! `rand_event` probability and raised events.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use parking_lot::{Condvar, Mutex};

use crate::value::Val;

/// A raised event (`raise_event`), kept for the event interface to pick up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaisedEvent {
    /// Event name.
    pub name: String,
    /// `(attribute, value)` pairs.
    pub params: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct CacheEntry {
    val: Val,
    expires_us: Option<i64>,
}

/// One named script lock (`get_static_lock`/`get_dynamic_lock`).
#[derive(Debug, Default)]
struct ScriptLock {
    held: Mutex<bool>,
    cv: Condvar,
}

/// Shared state of a program.
#[derive(Debug)]
pub struct Shared {
    log_level: Arc<AtomicI32>,
    xlog_level: Arc<AtomicI32>,
    rand_prob: AtomicU32,
    rand_prob_initial: u32,
    cache: Mutex<HashMap<Vec<u8>, CacheEntry>>,
    pub(crate) shv_names: Vec<String>,
    shv: Mutex<Vec<Val>>,
    locks: Mutex<HashMap<Vec<u8>, Arc<ScriptLock>>>,
    events: Mutex<Vec<RaisedEvent>>,
}

impl Default for Shared {
    fn default() -> Self {
        Self::new(2, 10)
    }
}

impl Shared {
    /// New shared state with a log level and an initial `rand_event` probability (percent).
    pub fn new(log_level: i32, rand_prob: u32) -> Self {
        Self {
            log_level: Arc::new(AtomicI32::new(log_level)),
            xlog_level: Arc::new(AtomicI32::new(log_level)),
            rand_prob: AtomicU32::new(rand_prob.min(100)),
            rand_prob_initial: rand_prob.min(100),
            cache: Mutex::new(HashMap::new()),
            shv_names: Vec::new(),
            shv: Mutex::new(Vec::new()),
            locks: Mutex::new(HashMap::new()),
            events: Mutex::new(Vec::new()),
        }
    }

    /// The current log level (`$log_level`).
    pub fn log_level(&self) -> i32 {
        self.log_level.load(Ordering::Relaxed)
    }

    /// Changes the log level.
    pub fn set_log_level(&self, l: i32) {
        self.log_level.store(l, Ordering::Relaxed);
    }

    /// The `xlog` level (`$xlog_level`).
    pub fn xlog_level(&self) -> i32 {
        self.xlog_level.load(Ordering::Relaxed)
    }

    /// Changes the xlog level.
    pub fn set_xlog_level(&self, l: i32) {
        self.xlog_level.store(l, Ordering::Relaxed);
    }

    /// The `log_level` and `xlog_level` cells, for the runtime's logger and the MI to share.
    pub fn level_cells(&self) -> (Arc<AtomicI32>, Arc<AtomicI32>) {
        (Arc::clone(&self.log_level), Arc::clone(&self.xlog_level))
    }

    pub(crate) fn set_shv_names(&mut self, names: Vec<String>, init: Vec<Val>) {
        self.shv_names = names;
        *self.shv.lock() = init;
    }

    /// Reads `$shv` slot `i` into `out`.
    pub(crate) fn shv_get(&self, i: u32, out: &mut Vec<u8>) -> crate::value::Kind {
        let g = self.shv.lock();
        match g.get(i as usize) {
            Some(v) => {
                out.extend_from_slice(&v.s);
                v.kind
            }
            None => crate::value::Kind::Null,
        }
    }

    /// Writes `$shv` slot `i`.
    pub(crate) fn shv_set(&self, i: u32, kind: crate::value::Kind, s: &[u8]) {
        let mut g = self.shv.lock();
        if let Some(v) = g.get_mut(i as usize) {
            v.set(kind, s);
        }
    }

    /// Value of `$shv(name)`.
    pub fn shv(&self, name: &str) -> Option<Val> {
        let i = self.shv_names.iter().position(|n| n == name)?;
        self.shv.lock().get(i).cloned()
    }

    /// `rand_event` probability in percent.
    pub fn rand_prob(&self) -> u32 {
        self.rand_prob.load(Ordering::Relaxed)
    }

    pub(crate) fn set_rand_prob(&self, p: u32) {
        self.rand_prob.store(p.min(100), Ordering::Relaxed);
    }

    pub(crate) fn reset_rand_prob(&self) {
        self.rand_prob
            .store(self.rand_prob_initial, Ordering::Relaxed);
    }

    // ----- local cache (cachedb "local") -----

    /// Stores a value; `expires_us` absolute, `None` = never.
    pub fn cache_store(&self, key: &[u8], val: Val, expires_us: Option<i64>) {
        self.cache
            .lock()
            .insert(key.to_vec(), CacheEntry { val, expires_us });
    }

    /// Fetches a live value.
    pub fn cache_fetch(&self, key: &[u8], now_us: i64) -> Option<Val> {
        let mut g = self.cache.lock();
        match g.get(key) {
            Some(e) if e.expires_us.is_some_and(|x| x <= now_us) => {
                g.remove(key);
                None
            }
            Some(e) => Some(e.val.clone()),
            None => None,
        }
    }

    /// Removes a value; true if it existed.
    pub fn cache_remove(&self, key: &[u8]) -> bool {
        self.cache.lock().remove(key).is_some()
    }

    /// Adds `delta` to a counter (created at 0); returns the new value.
    pub fn cache_add(&self, key: &[u8], delta: i64, expires_us: Option<i64>, now_us: i64) -> i64 {
        let mut g = self.cache.lock();
        let e = g.entry(key.to_vec()).or_insert_with(|| CacheEntry {
            val: Val::int(0),
            expires_us,
        });
        if e.expires_us.is_some_and(|x| x <= now_us) {
            e.val = Val::int(0);
        }
        let n = e.val.as_int().unwrap_or(0).saturating_add(delta);
        e.val = Val::int(n);
        if expires_us.is_some() {
            e.expires_us = expires_us;
        }
        n
    }

    // ----- locks -----

    fn lock_of(&self, key: &[u8]) -> Arc<ScriptLock> {
        Arc::clone(self.locks.lock().entry(key.to_vec()).or_default())
    }

    /// Takes a named lock, waiting while another worker holds it.
    pub(crate) fn lock(&self, key: &[u8]) {
        let l = self.lock_of(key);
        let mut held = l.held.lock();
        while *held {
            l.cv.wait(&mut held);
        }
        *held = true;
    }

    /// Releases a named lock.
    pub(crate) fn unlock(&self, key: &[u8]) {
        let l = self.lock_of(key);
        *l.held.lock() = false;
        l.cv.notify_one();
    }

    // ----- events -----

    pub(crate) fn raise(&self, ev: RaisedEvent) {
        self.events.lock().push(ev);
    }

    /// Takes the events raised so far.
    pub fn take_events(&self) -> Vec<RaisedEvent> {
        std::mem::take(&mut *self.events.lock())
    }
}

impl crate::program::Program {
    /// Makes a freshly compiled program use the given `log_level`/`xlog_level` cells (the
    /// runtime's, kept across `reload_routes`) instead of its own. Returns false, changing
    /// nothing, when the program or its shared state is already shared.
    pub fn share_level_cells(
        prog: &mut Arc<Self>,
        log_level: Arc<AtomicI32>,
        xlog_level: Arc<AtomicI32>,
    ) -> bool {
        let Some(shared) = Arc::get_mut(prog).and_then(|p| Arc::get_mut(&mut p.shared)) else {
            return false;
        };
        shared.log_level = log_level;
        shared.xlog_level = xlog_level;
        true
    }
}
