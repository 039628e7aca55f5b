//! `sipox-mod-usrloc` owns OpenSIPS's usrloc module: the location tables ("domains") that map
//! an address-of-record to its registered contacts, kept in sharded memory (or, in sql-only
//! mode, in the database), their expiry by one timer thread, the `E_UL_*` events, the
//! `usrloc` statistics, the `ul_*` MI commands and script functions, and the SQL working
//! modes (write-through, write-back, sql-only) over the OpenSIPS 3.5 `location` table.
//! It must not depend on `sipox-core`, the registrar or any other module: the core creates
//! one [`Usrloc`] at start and hands it to the functions that need it through `Instances`.
//!
//! # Using it (the registrar's view)
//! ```
//! use sipox_mod_usrloc::{Contact, Params, Usrloc};
//!
//! let ul = Usrloc::new(Params::default()).unwrap();
//! let loc = ul.register_domain("location").unwrap(); // at fixup time
//! let now = 1_700_000_000;
//! ul.with_record(loc, "alice", now, |rec| {
//!     // RFC 3261 §10.3 under the record's lock: find, check Call-ID/CSeq, insert/update
//!     match rec.find("sip:alice@10.0.0.1") {
//!         Some(i) => {
//!             rec.update(i, |c| c.expires = now + 3600);
//!         }
//!         None => {
//!             let mut c = Contact::new("sip:alice@10.0.0.1");
//!             c.expires = now + 3600;
//!             c.callid = "cid".into();
//!             c.cseq = 1;
//!             rec.insert(c);
//!         }
//!     }
//! })
//! .unwrap();
//! let contacts = ul.contacts(loc, "alice", now).unwrap().unwrap_or_default();
//! assert_eq!(contacts.len(), 1);
//! ```
//!
//! # Threads and locks
//! Every table has 2^`hash_size` shards, each a `parking_lot::Mutex` over a map AoR →
//! record. [`Usrloc::with_record`] runs its closure with the AoR's shard locked; database
//! writes are queued to a [`sipox_db::Writer`] (write-through/write-back) while the lock is
//! held, so they reach the database in the order the changes happened; events are delivered
//! after the lock is released. Time is always passed in (`now`, seconds since the epoch); only
//! the timer thread reads the clock.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};
use sipox_db::{Db, DbError, Writer};
use sipox_stats::Stats;

mod contact;
pub mod events;
pub mod mi;
mod params;
mod persist;
pub mod script;

pub use contact::{Contact, Q_UNSPECIFIED, q_from_str, q_to_str};
pub use params::{Columns, MatchingMode, Params, WorkingMode};

/// The `location` table version OpenSIPS 3.5 uses.
pub const LOCATION_TABLE_VERSION: i64 = 1013;

/// Where events go: called with the event name (`E_UL_*`) and its parameters, in order.
/// The core installs one that runs `event_route[E_UL_...]`.
pub type EventSink = Arc<dyn Fn(&'static str, Vec<(String, String)>) + Send + Sync>;

/// Background logging: level (-1 err, 1 warn, 2 notice, 3 info, 4 dbg) and text.
pub type LogSink = Arc<dyn Fn(i32, &str) + Send + Sync>;

/// What went wrong in usrloc.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsrlocError {
    /// A modparam has a bad value.
    #[error("usrloc: bad modparam {name:?}: {why}")]
    Param {
        /// The parameter.
        name: String,
        /// Why.
        why: String,
    },
    /// A database mode without `db_url` (nor `db_default_url`).
    #[error("usrloc: working mode {0} needs db_url")]
    NoDbUrl(&'static str),
    /// The database failed.
    #[error("usrloc: {0}")]
    Db(#[from] DbError),
    /// No such domain (table) registered.
    #[error("usrloc: unknown domain (table) {0:?}")]
    UnknownDomain(String),
    /// The operation does not exist in this working mode.
    #[error("usrloc: {0}")]
    NotSupported(&'static str),
    /// The timer thread could not be started.
    #[error("usrloc: cannot start the timer thread: {0}")]
    Thread(String),
}

/// A registered domain (location table), resolved at fixup time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DomainId(u32);

impl DomainId {
    /// The index of the domain in registration order.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Per-domain counters (the `<domain>-users`, `<domain>-contacts`, `<domain>-expires`
/// statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DomainStats {
    /// AoRs in memory.
    pub users: u64,
    /// Contacts in memory.
    pub contacts: u64,
    /// Contacts expired so far.
    pub expires: u64,
}

/// The usrloc instance: every domain, the persistence, the event sink, the timer.
/// Shared as `Arc<Usrloc>`.
pub struct Usrloc {
    params: Params,
    domains: RwLock<Vec<Arc<Domain>>>,
    db: Option<Arc<dyn Db>>,
    writer: Option<Writer>,
    events: RwLock<Option<EventSink>>,
    log: RwLock<Option<LogSink>>,
    stats: RwLock<Option<Arc<Stats>>>,
    bflag_names: RwLock<Vec<String>>,
    timer: Mutex<Option<JoinHandle<()>>>,
    stopping: Mutex<bool>,
    wake: Condvar,
}

impl fmt::Debug for Usrloc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Usrloc")
            .field("mode", &self.params.mode)
            .field(
                "domains",
                &self
                    .domains
                    .read()
                    .iter()
                    .map(|d| d.name.clone())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// One location table.
pub(crate) struct Domain {
    pub(crate) name: String,
    pub(crate) shards: Box<[Mutex<Shard>]>,
    pub(crate) users: AtomicU64,
    pub(crate) contacts: AtomicU64,
    pub(crate) expires: AtomicU64,
    /// Write-back: contact ids deleted in memory, to delete from the database at the next
    /// flush.
    pub(crate) pending_deletes: Mutex<Vec<u64>>,
}

/// One shard: AoR → record.
#[derive(Default)]
pub(crate) struct Shard {
    pub(crate) records: HashMap<String, Record>,
    pub(crate) next_label: u32,
}

/// Database state of a contact (write-back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CState {
    /// Not in the database yet.
    New,
    /// Same as the database.
    Sync,
    /// Changed since the last flush.
    Dirty,
}

/// An AoR's contacts (OpenSIPS `urecord_t`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Record {
    pub(crate) contacts: Vec<Contact>,
    /// The record's key-value store (`ul_add_key`); memory only, as in OpenSIPS.
    pub(crate) kv: BTreeMap<String, String>,
    pub(crate) states: Vec<CState>,
    pub(crate) label: u32,
    pub(crate) next_clabel: u16,
}

/// One change made inside [`Usrloc::with_record`].
#[derive(Debug, Clone)]
pub(crate) enum Change {
    Insert(Contact),
    Update(Contact),
    /// The contact and whether it was in the database (write-back state not `New`).
    Delete(Contact, bool),
}

/// An AoR's contacts, locked, as [`Usrloc::with_record`] hands them to its closure. Every
/// change made through it is persisted (per the working mode), raises its event and updates
/// the statistics when the closure returns. Removing the last contact deletes the AoR.
pub struct RecordMut<'a> {
    aor: &'a str,
    now: i64,
    existed: bool,
    matching: MatchingMode,
    desc_time_order: bool,
    shard_idx: u64,
    rec: &'a mut Record,
    changes: Vec<Change>,
}

impl fmt::Debug for RecordMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordMut")
            .field("aor", &self.aor)
            .field("contacts", &self.rec.contacts)
            .finish_non_exhaustive()
    }
}

impl RecordMut<'_> {
    /// The AoR.
    pub fn aor(&self) -> &str {
        self.aor
    }

    /// The `now` given to `with_record`.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// True when the AoR existed before this call (false: it is created by the first
    /// insert).
    pub fn existed(&self) -> bool {
        self.existed
    }

    /// The contacts, in record order (insertion order, or newest first with
    /// `desc_time_order`). Expired contacts the timer has not removed yet are included:
    /// filter with [`Contact::is_valid`].
    pub fn contacts(&self) -> &[Contact] {
        &self.rec.contacts
    }

    /// The contact at `i`.
    pub fn get(&self, i: usize) -> Option<&Contact> {
        self.rec.contacts.get(i)
    }

    /// Contacts still valid at `now`.
    pub fn valid_count(&self) -> usize {
        self.rec
            .contacts
            .iter()
            .filter(|c| c.is_valid(self.now))
            .count()
    }

    /// The record's key-value store (`ul_add_key`/`ul_get_key`; kept in memory only).
    pub fn kv(&self) -> &BTreeMap<String, String> {
        &self.rec.kv
    }

    /// The record's key-value store, to change.
    pub fn kv_mut(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.rec.kv
    }

    /// Index of the contact with exactly this URI (byte-equal, as OpenSIPS compares).
    pub fn find(&self, uri: &str) -> Option<usize> {
        self.rec.contacts.iter().position(|c| c.uri == uri)
    }

    /// Index of the binding per `matching_mode`: same URI, and with `matching_mode = 1`
    /// the same Call-ID too.
    pub fn find_binding(&self, uri: &str, callid: &str) -> Option<usize> {
        self.rec.contacts.iter().position(|c| {
            c.uri == uri && (self.matching == MatchingMode::ContactOnly || c.callid == callid)
        })
    }

    /// Index of the contact with this `+sip.instance` and `reg-id` (RFC 5626 flow; with
    /// `reg_id == 0`, GRUU matching by instance alone).
    pub fn find_instance(&self, instance: &str, reg_id: u32) -> Option<usize> {
        if instance.is_empty() {
            return None;
        }
        self.rec
            .contacts
            .iter()
            .position(|c| c.instance == instance && c.reg_id == reg_id)
    }

    /// Index of the contact with this contact id.
    pub fn find_id(&self, contact_id: u64) -> Option<usize> {
        self.rec
            .contacts
            .iter()
            .position(|c| c.contact_id == contact_id)
    }

    /// Adds a contact; usrloc assigns `contact_id` (and `last_modified = now` when it is 0).
    /// Returns its index.
    pub fn insert(&mut self, mut c: Contact) -> usize {
        c.contact_id = self.next_id();
        if c.last_modified == 0 {
            c.last_modified = self.now;
        }
        self.changes.push(Change::Insert(c.clone()));
        if self.desc_time_order {
            self.rec.contacts.insert(0, c);
            self.rec.states.insert(0, CState::New);
            0
        } else {
            self.rec.contacts.push(c);
            self.rec.states.push(CState::New);
            self.rec.contacts.len() - 1
        }
    }

    /// Changes the contact at `i` with `f`; `last_modified` becomes `now`, the `contact_id`
    /// is kept. False when there is no contact `i`.
    pub fn update(&mut self, i: usize, f: impl FnOnce(&mut Contact)) -> bool {
        let Some(c) = self.rec.contacts.get_mut(i) else {
            return false;
        };
        let id = c.contact_id;
        f(c);
        c.contact_id = id;
        c.last_modified = self.now;
        let snapshot = c.clone();
        if let Some(s) = self.rec.states.get_mut(i)
            && *s == CState::Sync
        {
            *s = CState::Dirty;
        }
        self.changes.push(Change::Update(snapshot));
        true
    }

    /// Removes the contact at `i` and returns it.
    pub fn remove(&mut self, i: usize) -> Option<Contact> {
        if i >= self.rec.contacts.len() {
            return None;
        }
        let c = self.rec.contacts.remove(i);
        let st = self.rec.states.remove(i);
        self.changes
            .push(Change::Delete(c.clone(), st != CState::New));
        Some(c)
    }

    /// Removes every contact (the AoR is deleted when the closure returns); returns how many.
    pub fn remove_all(&mut self) -> usize {
        let n = self.rec.contacts.len();
        while !self.rec.contacts.is_empty() {
            self.remove(0);
        }
        n
    }

    fn next_id(&mut self) -> u64 {
        loop {
            let cl = self.rec.next_clabel;
            self.rec.next_clabel = self.rec.next_clabel.wrapping_add(1);
            let id = pack_contact_id(self.shard_idx, self.rec.label, cl);
            if !self.rec.contacts.iter().any(|c| c.contact_id == id) {
                return id;
            }
        }
    }
}

/// Our contact id scheme: shard index (16 bits), record label (32 bits), contact label
/// (16 bits) — unique in the instance and stable for the binding's life.
pub(crate) fn pack_contact_id(shard: u64, label: u32, clabel: u16) -> u64 {
    ((shard & 0xffff) << 48) | (u64::from(label) << 16) | u64::from(clabel)
}

/// The parts of a contact id: (shard, record label, contact label).
pub(crate) fn unpack_contact_id(id: u64) -> (u64, u32, u16) {
    (id >> 48, (id >> 16) as u32, id as u16)
}

impl Usrloc {
    /// Creates the instance from its parameters; connects the database (`db_url`) when the
    /// working mode needs one. Domains are added with [`Usrloc::register_domain`].
    pub fn new(params: Params) -> Result<Self, UsrlocError> {
        let db = if params.mode.uses_db() {
            let url = params
                .db_url
                .as_deref()
                .ok_or_else(|| UsrlocError::NoDbUrl(params.mode.preset_name()))?;
            Some(sipox_db::connect(url)?)
        } else {
            None
        };
        Ok(Self::with_db(params, db))
    }

    /// Creates the instance over an already opened database (tests, shared pools).
    pub fn with_db(params: Params, db: Option<Arc<dyn Db>>) -> Self {
        let db = if params.mode.uses_db() { db } else { None };
        let writer = match (&db, params.mode) {
            (Some(db), WorkingMode::WriteThrough | WorkingMode::WriteBack) => {
                Some(Writer::new(Arc::clone(db), "usrloc"))
            }
            _ => None,
        };
        Self {
            params,
            domains: RwLock::new(Vec::new()),
            db,
            writer,
            events: RwLock::new(None),
            log: RwLock::new(None),
            stats: RwLock::new(None),
            bflag_names: RwLock::new(Vec::new()),
            timer: Mutex::new(None),
            stopping: Mutex::new(false),
            wake: Condvar::new(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The working mode.
    pub fn mode(&self) -> WorkingMode {
        self.params.mode
    }

    /// `use_domain`.
    pub fn use_domain(&self) -> bool {
        self.params.use_domain
    }

    /// The AoR key for `user` and `domain`: `user@domain` with `use_domain`, else `user`.
    pub fn aor_key(&self, user: &str, domain: &str) -> String {
        if self.params.use_domain && !domain.is_empty() {
            format!("{user}@{domain}")
        } else {
            user.to_owned()
        }
    }

    /// Installs the event sink (the core runs `event_route[E_UL_...]` from it).
    pub fn set_event_sink(&self, sink: EventSink) {
        *self.events.write() = Some(sink);
    }

    /// Installs the background log.
    pub fn set_log(&self, log: LogSink) {
        *self.log.write() = Some(log);
    }

    /// Registers the statistics (`usrloc:registered_users` now, `usrloc:<domain>-users`,
    /// `-contacts`, `-expires` for every domain as it is registered).
    pub fn attach_stats(self: &Arc<Self>, stats: Arc<Stats>) {
        let me = Arc::downgrade(self);
        let _ = stats.register_fn("usrloc", "registered_users", move || {
            me.upgrade().map_or(0, |u| u.registered_users())
        });
        for d in self.domains.read().iter() {
            register_domain_stats(&stats, d);
        }
        *self.stats.write() = Some(stats);
    }

    /// Names of the branch flags by bit (for the `cflags` column, which OpenSIPS stores as
    /// a comma-separated list of flag names). Bits without a name are stored as their index.
    pub fn set_branch_flag_names(&self, names: Vec<String>) {
        *self.bflag_names.write() = names;
    }

    /// Registers (or finds) the domain `name` (a location table). In the write-through and
    /// write-back modes the first registration checks the table version and loads every row.
    pub fn register_domain(&self, name: &str) -> Result<DomainId, UsrlocError> {
        if let Some(id) = self.domain(name) {
            return Ok(id);
        }
        let mut doms = self.domains.write();
        if let Some(i) = doms.iter().position(|d| d.name == name) {
            return Ok(DomainId(i as u32));
        }
        let d = Arc::new(Domain {
            name: name.to_owned(),
            shards: (0..(1usize << self.params.hash_size))
                .map(|_| Mutex::new(Shard::default()))
                .collect(),
            users: AtomicU64::new(0),
            contacts: AtomicU64::new(0),
            expires: AtomicU64::new(0),
            pending_deletes: Mutex::new(Vec::new()),
        });
        if let Some(db) = &self.db {
            sipox_db::check_table_version(&**db, name, LOCATION_TABLE_VERSION)?;
            if self.params.mode.has_memory() {
                persist::load_domain(self, db.as_ref(), &d)?;
            }
        }
        if let Some(stats) = self.stats.read().as_ref() {
            register_domain_stats(stats, &d);
        }
        doms.push(d);
        Ok(DomainId((doms.len() - 1) as u32))
    }

    /// The domain registered as `name`.
    pub fn domain(&self, name: &str) -> Option<DomainId> {
        self.domains
            .read()
            .iter()
            .position(|d| d.name == name)
            .map(|i| DomainId(i as u32))
    }

    /// The name of a domain.
    pub fn domain_name(&self, d: DomainId) -> Option<String> {
        self.domains.read().get(d.index()).map(|x| x.name.clone())
    }

    /// Every registered domain, in registration order.
    pub fn domains(&self) -> Vec<(DomainId, String)> {
        self.domains
            .read()
            .iter()
            .enumerate()
            .map(|(i, d)| (DomainId(i as u32), d.name.clone()))
            .collect()
    }

    /// The counters of a domain.
    pub fn domain_stats(&self, d: DomainId) -> Option<DomainStats> {
        let doms = self.domains.read();
        let x = doms.get(d.index())?;
        Some(DomainStats {
            users: x.users.load(Ordering::Relaxed),
            contacts: x.contacts.load(Ordering::Relaxed),
            expires: x.expires.load(Ordering::Relaxed),
        })
    }

    /// AoRs in memory over all domains (`registered_users`).
    pub fn registered_users(&self) -> u64 {
        self.domains
            .read()
            .iter()
            .map(|d| d.users.load(Ordering::Relaxed))
            .sum()
    }

    /// A copy of the AoR's contacts (expired ones not yet removed included; filter with
    /// [`Contact::is_valid`]); `None` when the AoR has no record. In sql-only mode this
    /// reads the database.
    pub fn contacts(
        &self,
        d: DomainId,
        aor: &str,
        now: i64,
    ) -> Result<Option<Vec<Contact>>, UsrlocError> {
        let dom = self.dom(d)?;
        if !self.params.mode.has_memory() {
            let rec = persist::select_record(self, self.db_ref()?, &dom.name, aor)?;
            let _ = now;
            return Ok((!rec.contacts.is_empty()).then_some(rec.contacts));
        }
        let shard = dom.shards[self.shard_of(aor)].lock();
        Ok(shard.records.get(aor).map(|r| r.contacts.clone()))
    }

    /// Every AoR of a domain with its contacts (for MI dumps and tests).
    pub fn records(&self, d: DomainId) -> Result<Vec<(String, Vec<Contact>)>, UsrlocError> {
        let dom = self.dom(d)?;
        if !self.params.mode.has_memory() {
            return persist::select_all(self, self.db_ref()?, &dom.name);
        }
        let mut out = Vec::new();
        for s in dom.shards.iter() {
            let s = s.lock();
            out.extend(
                s.records
                    .iter()
                    .map(|(k, r)| (k.clone(), r.contacts.clone())),
            );
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Runs `f` on the AoR's record with its shard locked (creating an empty record when
    /// there is none), then persists the changes `f` made, raises their events and updates
    /// the statistics. A record left empty is deleted. In sql-only mode the record is read
    /// from the database first and the changes are written to it before returning.
    pub fn with_record<R>(
        &self,
        d: DomainId,
        aor: &str,
        now: i64,
        f: impl FnOnce(&mut RecordMut<'_>) -> R,
    ) -> Result<R, UsrlocError> {
        let dom = self.dom(d)?;
        let idx = self.shard_of(aor);
        let mut evs = Vec::new();
        let out = {
            let mut shard = dom.shards[idx].lock();
            // The key String is kept and put back: a refresh allocates no new key.
            let (mut rec, existed, key) = if self.params.mode.has_memory() {
                match shard.records.remove_entry(aor) {
                    Some((k, r)) => (r, true, Some(k)),
                    None => (Record::default(), false, None),
                }
            } else {
                let r = persist::select_record(self, self.db_ref()?, &dom.name, aor)?;
                let e = !r.contacts.is_empty();
                (r, e, None)
            };
            if !existed && rec.label == 0 {
                rec.label = if self.params.mode.has_memory() {
                    shard.next_label = shard.next_label.wrapping_add(1);
                    shard.next_label
                } else {
                    // no shared counter survives a restart: a label from the AoR's hash
                    aor_label(aor)
                };
            }
            let mut rm = RecordMut {
                aor,
                now,
                existed,
                matching: self.params.matching_mode,
                desc_time_order: self.params.desc_time_order,
                shard_idx: idx as u64,
                rec: &mut rec,
                changes: Vec::new(),
            };
            let out = f(&mut rm);
            let changes = std::mem::take(&mut rm.changes);
            self.apply_changes(&dom, aor, &changes, &mut evs);
            let empty = rec.contacts.is_empty();
            if !existed && !empty {
                dom.users.fetch_add(1, Ordering::Relaxed);
                if self.wants_events() {
                    evs.insert(0, events::aor(events::E_UL_AOR_INSERT, &dom.name, aor));
                }
            }
            if existed && empty {
                sub(&dom.users, 1);
                if self.wants_events() {
                    evs.push(events::aor(events::E_UL_AOR_DELETE, &dom.name, aor));
                }
            }
            if !empty && self.params.mode.has_memory() {
                shard
                    .records
                    .insert(key.unwrap_or_else(|| aor.to_owned()), rec);
            }
            out
        };
        self.raise(evs);
        Ok(out)
    }

    /// Sets (`Some`, non-empty) or removes (`None` or empty) `key` in the AoR record's
    /// key-value store (`ul_add_key`). False when the AoR has no record. The store lives
    /// with the in-memory record (none in sql-only mode: always false there).
    pub fn set_record_key(
        &self,
        d: DomainId,
        aor: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<bool, UsrlocError> {
        let dom = self.dom(d)?;
        let mut shard = dom.shards[self.shard_of(aor)].lock();
        let Some(rec) = shard.records.get_mut(aor) else {
            return Ok(false);
        };
        match value.filter(|v| !v.is_empty()) {
            Some(v) => {
                rec.kv.insert(key.to_owned(), v.to_owned());
            }
            None => {
                rec.kv.remove(key);
            }
        }
        Ok(true)
    }

    /// The value of `key` in the AoR record's key-value store (`ul_get_key`); `None` when
    /// there is no record or no such key.
    pub fn record_key(
        &self,
        d: DomainId,
        aor: &str,
        key: &str,
    ) -> Result<Option<String>, UsrlocError> {
        let dom = self.dom(d)?;
        let shard = dom.shards[self.shard_of(aor)].lock();
        Ok(shard.records.get(aor).and_then(|r| r.kv.get(key)).cloned())
    }

    /// Deletes an AoR and all its contacts (OpenSIPS `delete_urecord`); false when it had
    /// none.
    pub fn delete_aor(&self, d: DomainId, aor: &str, now: i64) -> Result<bool, UsrlocError> {
        self.with_record(d, aor, now, |r| r.remove_all() > 0)
    }

    /// Raises `E_UL_CONTACT_REFRESH` for the contact `contact_id` of `aor` (OpenSIPS raises
    /// it for push-notification contacts that must re-register; `reason` and `req_callid`
    /// are passed through). False when there is no such contact.
    pub fn raise_contact_refresh(
        &self,
        d: DomainId,
        aor: &str,
        contact_id: u64,
        reason: &str,
        req_callid: &str,
        now: i64,
    ) -> Result<bool, UsrlocError> {
        let dom = self.dom(d)?;
        let found = self
            .contacts(d, aor, now)?
            .and_then(|cs| cs.into_iter().find(|c| c.contact_id == contact_id));
        let Some(c) = found else { return Ok(false) };
        self.raise(vec![events::refresh(
            &dom.name, aor, &c, reason, req_callid,
        )]);
        Ok(true)
    }

    /// One timer run at `now`: removes the contacts expired at `now` (raising
    /// `E_UL_CONTACT_DELETE`, then `E_UL_AOR_DELETE` for AoRs left empty), and in
    /// write-back mode flushes the dirty contacts. Called by the timer thread every
    /// `timer_interval`; public so tests and `ul_flush` can run it.
    pub fn tick(&self, now: i64) {
        let doms: Vec<Arc<Domain>> = self.domains.read().clone();
        for dom in &doms {
            if self.params.mode.has_memory() {
                self.expire_domain(dom, now);
            } else if let Some(db) = &self.db {
                persist::expire_sql_only(self, db.as_ref(), dom, now);
            }
            if self.params.mode == WorkingMode::WriteBack {
                self.flush_domain(dom);
            }
        }
    }

    /// `ul_sync`: rewrites the table (or one AoR's rows) from memory — deletes the rows and
    /// queues an insert of every in-memory contact. False when the AoR has no record.
    /// Only in write-through and write-back modes (`Err` otherwise).
    pub fn sync(&self, d: DomainId, aor: Option<&str>) -> Result<bool, UsrlocError> {
        let dom = self.dom(d)?;
        let Some(w) = &self.writer else {
            return Err(UsrlocError::NotSupported(
                "ul_sync needs the write-through or write-back mode",
            ));
        };
        let sync_rec = |aor: &str, rec: &mut Record| {
            for (c, st) in rec.contacts.iter().zip(rec.states.iter_mut()) {
                w.submit(persist::insert_op(self, &dom.name, aor, c));
                *st = CState::Sync;
            }
        };
        match aor {
            Some(aor) => {
                let mut shard = dom.shards[self.shard_of(aor)].lock();
                let Some(rec) = shard.records.get_mut(aor) else {
                    return Ok(false);
                };
                for op in persist::delete_aor_ops(self, &dom.name, aor) {
                    w.submit(op);
                }
                sync_rec(aor, rec);
            }
            None => {
                dom.pending_deletes.lock().clear();
                w.submit(sipox_db::WriteOp::Delete {
                    table: dom.name.clone(),
                    conds: Vec::new(),
                });
                for s in dom.shards.iter() {
                    let mut shard = s.lock();
                    for (aor, rec) in shard.records.iter_mut() {
                        sync_rec(aor, rec);
                    }
                }
            }
        }
        Ok(true)
    }

    /// The write-back states of an AoR's contacts (`"CS_NEW"`, `"CS_SYNC"`, `"CS_DIRTY"`),
    /// in record order, for MI dumps.
    pub fn contact_states(&self, d: DomainId, aor: &str) -> Vec<&'static str> {
        let Ok(dom) = self.dom(d) else {
            return Vec::new();
        };
        if !self.params.mode.has_memory() {
            return Vec::new();
        }
        let shard = dom.shards[self.shard_of(aor)].lock();
        shard.records.get(aor).map_or_else(Vec::new, |r| {
            r.states
                .iter()
                .map(|s| match s {
                    CState::New => "CS_NEW",
                    CState::Sync => "CS_SYNC",
                    CState::Dirty => "CS_DIRTY",
                })
                .collect()
        })
    }

    /// Write-back: queues every dirty contact and pending delete to the database now
    /// (`ul_flush`). Other modes: nothing to do.
    pub fn flush(&self) {
        if self.params.mode != WorkingMode::WriteBack {
            return;
        }
        let doms: Vec<Arc<Domain>> = self.domains.read().clone();
        for dom in &doms {
            self.flush_domain(dom);
        }
    }

    /// Waits until the queued database writes are applied (or `timeout` passed); true when
    /// none is left.
    pub fn wait_written(&self, timeout: Duration) -> bool {
        self.writer.as_ref().is_none_or(|w| w.flush(timeout))
    }

    /// Database writes queued and not applied yet.
    pub fn pending_writes(&self) -> usize {
        self.writer.as_ref().map_or(0, Writer::pending)
    }

    /// Starts the timer thread: [`Usrloc::tick`] every `timer_interval` seconds.
    pub fn start_timer(self: &Arc<Self>) -> Result<(), UsrlocError> {
        let me = Arc::clone(self);
        let h = std::thread::Builder::new()
            .name("usrloc-timer".into())
            .spawn(move || me.timer_loop())
            .map_err(|e| UsrlocError::Thread(e.to_string()))?;
        *self.timer.lock() = Some(h);
        Ok(())
    }

    /// Shutdown: stops the timer thread, flushes write-back contacts and waits (up to
    /// `timeout`) for the database queue to drain. Idempotent.
    pub fn shutdown(&self, timeout: Duration) {
        *self.stopping.lock() = true;
        self.wake.notify_all();
        if let Some(h) = self.timer.lock().take() {
            let _ = h.join();
        }
        self.flush();
        if !self.wait_written(timeout) {
            self.log(
                -1,
                &format!(
                    "usrloc: {} database writes still pending at shutdown",
                    self.pending_writes()
                ),
            );
        }
    }

    #[allow(clippy::disallowed_methods)] // the timer thread is the one place that reads the clock
    fn timer_loop(&self) {
        let every = Duration::from_secs(self.params.timer_interval);
        loop {
            {
                let mut st = self.stopping.lock();
                if *st {
                    return;
                }
                let _ = self.wake.wait_for(&mut st, every);
                if *st {
                    return;
                }
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            self.tick(now);
        }
    }

    fn expire_domain(&self, dom: &Arc<Domain>, now: i64) {
        for (idx, s) in dom.shards.iter().enumerate() {
            let mut evs = Vec::new();
            {
                let mut shard = s.lock();
                if shard.records.is_empty() {
                    continue;
                }
                let mut emptied = Vec::new();
                for (aor, rec) in shard.records.iter_mut() {
                    if !rec.contacts.iter().any(|c| c.is_expired(now)) {
                        continue;
                    }
                    let mut rm = RecordMut {
                        aor,
                        now,
                        existed: true,
                        matching: self.params.matching_mode,
                        desc_time_order: self.params.desc_time_order,
                        shard_idx: idx as u64,
                        rec,
                        changes: Vec::new(),
                    };
                    let mut i = 0;
                    let mut n = 0;
                    while i < rm.rec.contacts.len() {
                        if rm.rec.contacts[i].is_expired(now) {
                            rm.remove(i);
                            n += 1;
                        } else {
                            i += 1;
                        }
                    }
                    let changes = std::mem::take(&mut rm.changes);
                    self.apply_changes(dom, aor, &changes, &mut evs);
                    dom.expires.fetch_add(n, Ordering::Relaxed);
                    if rec.contacts.is_empty() {
                        emptied.push(aor.clone());
                    }
                }
                for aor in emptied {
                    shard.records.remove(&aor);
                    sub(&dom.users, 1);
                    evs.push(events::aor(events::E_UL_AOR_DELETE, &dom.name, &aor));
                }
            }
            self.raise(evs);
        }
    }

    fn flush_domain(&self, dom: &Arc<Domain>) {
        let Some(w) = &self.writer else { return };
        let deletes = std::mem::take(&mut *dom.pending_deletes.lock());
        for id in deletes {
            w.submit(persist::delete_op(self, &dom.name, id));
        }
        for s in dom.shards.iter() {
            let mut shard = s.lock();
            for (aor, rec) in shard.records.iter_mut() {
                for (c, st) in rec.contacts.iter().zip(rec.states.iter_mut()) {
                    match *st {
                        CState::Sync => {}
                        CState::New => {
                            w.submit(persist::insert_op(self, &dom.name, aor, c));
                            *st = CState::Sync;
                        }
                        CState::Dirty => {
                            w.submit(persist::update_op(self, &dom.name, aor, c));
                            *st = CState::Sync;
                        }
                    }
                }
            }
        }
    }

    /// Persists, counts and turns into events the changes of one record (shard locked).
    fn apply_changes(
        &self,
        dom: &Domain,
        aor: &str,
        changes: &[Change],
        evs: &mut Vec<(&'static str, Vec<(String, String)>)>,
    ) {
        // Events are built only when someone listens (an event_route in the script).
        let want = self.wants_events();
        for ch in changes {
            match ch {
                Change::Insert(c) => {
                    dom.contacts.fetch_add(1, Ordering::Relaxed);
                    if want {
                        evs.push(events::contact(
                            events::E_UL_CONTACT_INSERT,
                            &dom.name,
                            aor,
                            c,
                        ));
                    }
                }
                Change::Update(c) => {
                    if want {
                        evs.push(events::contact(
                            events::E_UL_CONTACT_UPDATE,
                            &dom.name,
                            aor,
                            c,
                        ));
                    }
                }
                Change::Delete(c, _) => {
                    sub(&dom.contacts, 1);
                    if want {
                        evs.push(events::contact(
                            events::E_UL_CONTACT_DELETE,
                            &dom.name,
                            aor,
                            c,
                        ));
                    }
                }
            }
            match self.params.mode {
                WorkingMode::NoDb => {}
                WorkingMode::WriteThrough => {
                    if let Some(w) = &self.writer
                        && let Some(op) = persist::change_op(self, &dom.name, aor, ch)
                    {
                        w.submit(op);
                    }
                }
                WorkingMode::WriteBack => {
                    if let Change::Delete(c, true) = ch {
                        dom.pending_deletes.lock().push(c.contact_id);
                    }
                }
                WorkingMode::SqlOnly => {
                    if let Some(db) = &self.db
                        && let Some(op) = persist::change_op(self, &dom.name, aor, ch)
                        && let Err(e) = op.apply(db.as_ref())
                    {
                        self.log(-1, &format!("usrloc: sql-only write failed: {e}"));
                    }
                }
            }
        }
    }

    /// True when an event sink is installed (the script has E_UL_* event routes).
    fn wants_events(&self) -> bool {
        self.events.read().is_some()
    }

    fn raise(&self, evs: Vec<(&'static str, Vec<(String, String)>)>) {
        if evs.is_empty() {
            return;
        }
        let Some(sink) = self.events.read().clone() else {
            return;
        };
        for (name, params) in evs {
            sink(name, params);
        }
    }

    pub(crate) fn log(&self, level: i32, text: &str) {
        if let Some(l) = self.log.read().as_ref() {
            l(level, text);
        }
    }

    pub(crate) fn dom(&self, d: DomainId) -> Result<Arc<Domain>, UsrlocError> {
        self.domains
            .read()
            .get(d.index())
            .cloned()
            .ok_or_else(|| UsrlocError::UnknownDomain(format!("#{}", d.0)))
    }

    pub(crate) fn db_ref(&self) -> Result<&dyn Db, UsrlocError> {
        self.db
            .as_deref()
            .ok_or_else(|| UsrlocError::NoDbUrl(self.params.mode.preset_name()))
    }

    pub(crate) fn shard_of(&self, aor: &str) -> usize {
        let mut h = std::hash::DefaultHasher::new();
        aor.hash(&mut h);
        (h.finish() as usize) & ((1usize << self.params.hash_size) - 1)
    }

    pub(crate) fn bflag_names(&self) -> Vec<String> {
        self.bflag_names.read().clone()
    }
}

fn register_domain_stats(stats: &Stats, d: &Arc<Domain>) {
    let w = Arc::downgrade(d);
    let _ = stats.register_fn("usrloc", format!("{}-users", d.name), move || {
        w.upgrade().map_or(0, |d| d.users.load(Ordering::Relaxed))
    });
    let w = Arc::downgrade(d);
    let _ = stats.register_fn("usrloc", format!("{}-contacts", d.name), move || {
        w.upgrade()
            .map_or(0, |d| d.contacts.load(Ordering::Relaxed))
    });
    let w = Arc::downgrade(d);
    let _ = stats.register_fn("usrloc", format!("{}-expires", d.name), move || {
        w.upgrade().map_or(0, |d| d.expires.load(Ordering::Relaxed))
    });
}

/// A 32-bit record label from the AoR (sql-only mode), independent of the shard hash.
fn aor_label(aor: &str) -> u32 {
    let mut h = std::hash::DefaultHasher::new();
    (aor, 0x5eed_u32).hash(&mut h);
    (h.finish() >> 32) as u32 | 1
}

fn sub(a: &AtomicU64, n: u64) {
    let _ = a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(n))
    });
}
