//! The statistics registry: named counters and gauges in groups (`core:rcv_requests`,
//! `shmem:used_size`, `tm:inuse_transactions`), with OpenSIPS's `get_statistics`,
//! `list_statistics`, `reset_statistics` semantics and the `prometheus` module's text exposition.
//! It must not depend on any I/O, clock, JSON library or other sipox crate: the MI layer turns
//! its answers into JSON and the runtime feeds the gauges.
//!
//! Names are registered once (at start, or when a module loads) and hand back a [`Stat`] handle:
//! bumping a counter is one relaxed atomic add on a slot the handle owns, with no lookup and no
//! allocation. Computed statistics ([`Stats::register_fn`]) call a closure when read, like
//! OpenSIPS's `STAT_IS_FUNC` (`shmem:used_size`, `load:load`).
//!
//! ```
//! use sipox_stats::{Stats, StatFlags};
//! let stats = Stats::new();
//! let rcv = stats.register("core", "rcv_requests", StatFlags::NONE).unwrap();
//! rcv.inc();
//! assert_eq!(stats.get(&["core:"]).unwrap(), vec![("core:rcv_requests".to_string(), 1)]);
//! ```

mod prom;

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

pub use prom::{GroupMode, PromConfig};

/// Flags of one statistic, as OpenSIPS's `STAT_NO_RESET` (and `STAT_IS_FUNC`, implied by
/// [`Stats::register_fn`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatFlags(u8);

impl StatFlags {
    /// An ordinary, resettable counter.
    pub const NONE: Self = Self(0);
    /// Not reset by `reset_statistics`/`reset_all_statistics`; listed as "non-incremental"
    /// and exported to Prometheus as a gauge.
    pub const NO_RESET: Self = Self(1);

    /// Whether every flag of `other` is set.
    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of both flag sets.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// Registration failures.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatsError {
    /// The `group:name` pair already exists.
    #[error("statistic {group}:{name} already registered")]
    Duplicate {
        /// group of the clash
        group: String,
        /// name of the clash
        name: String,
    },
    /// Empty group or name, or a name containing `:`.
    #[error("invalid statistic name {0:?}")]
    InvalidName(String),
}

/// No statistic matched any of the requested names (MI answers `404 Statistics Not Found`).
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
#[error("Statistics Not Found")]
pub struct NotFound;

/// A handle on one registered counter or gauge: cheap to clone, lock-free to update.
///
/// Values are unsigned and wrap like OpenSIPS's `unsigned long` stats; a gauge that is
/// decremented below zero shows as a huge number, as it does in OpenSIPS.
#[derive(Clone, Debug)]
pub struct Stat {
    slot: Arc<AtomicU64>,
}

impl Stat {
    /// Add one.
    #[inline]
    pub fn inc(&self) {
        self.slot.fetch_add(1, Ordering::Relaxed);
    }

    /// Subtract one (gauges).
    #[inline]
    pub fn dec(&self) {
        self.slot.fetch_sub(1, Ordering::Relaxed);
    }

    /// Add `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.slot.fetch_add(n, Ordering::Relaxed);
    }

    /// Subtract `n` (gauges).
    #[inline]
    pub fn sub(&self, n: u64) {
        self.slot.fetch_sub(n, Ordering::Relaxed);
    }

    /// Overwrite the value (gauges fed by a timer, e.g. `core:timestamp`).
    #[inline]
    pub fn set(&self, v: u64) {
        self.slot.store(v, Ordering::Relaxed);
    }

    /// The current value.
    #[inline]
    #[must_use]
    pub fn get(&self) -> u64 {
        self.slot.load(Ordering::Relaxed)
    }
}

/// The counter itself, for code that counts with plain atomics (`fetch_add`, `load`).
impl std::ops::Deref for Stat {
    type Target = AtomicU64;

    fn deref(&self) -> &AtomicU64 {
        &self.slot
    }
}

type StatFn = Arc<dyn Fn() -> u64 + Send + Sync>;

enum Source {
    Slot(Arc<AtomicU64>),
    Func(StatFn),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Slot(s) => write!(f, "Slot({})", s.load(Ordering::Relaxed)),
            Self::Func(_) => f.write_str("Func"),
        }
    }
}

#[derive(Debug)]
struct Entry {
    name: Cow<'static, str>,
    flags: StatFlags,
    source: Source,
}

impl Entry {
    fn value(&self) -> u64 {
        match &self.source {
            Source::Slot(s) => s.load(Ordering::Relaxed),
            Source::Func(f) => f(),
        }
    }

    /// "non-incremental" stats: computed or non-resettable (OpenSIPS's list_statistics wording,
    /// and gauges for Prometheus).
    fn is_gauge(&self) -> bool {
        matches!(self.source, Source::Func(_)) || self.flags.contains(StatFlags::NO_RESET)
    }

    fn reset(&self) {
        if let Source::Slot(s) = &self.source
            && !self.flags.contains(StatFlags::NO_RESET)
        {
            s.store(0, Ordering::Relaxed);
        }
    }
}

#[derive(Debug)]
struct Group {
    name: Cow<'static, str>,
    stats: Vec<Entry>,
}

/// What kind of statistic a `list_statistics` line describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatKind {
    /// A resettable counter ("incremental").
    Incremental,
    /// A computed or non-resettable value ("non-incremental").
    NonIncremental,
}

impl StatKind {
    /// The word OpenSIPS prints in `list_statistics`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Incremental => "incremental",
            Self::NonIncremental => "non-incremental",
        }
    }
}

/// The registry: groups in registration order, statistics in registration order in a group.
///
/// Share it as `Arc<Stats>`; registration takes a write lock (start-up, module load), reads of
/// the whole table a read lock, and counter updates no lock at all (they go through [`Stat`]).
#[derive(Debug, Default)]
pub struct Stats {
    groups: RwLock<Vec<Group>>,
}

impl Stats {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a counter (or settable gauge) `group:name` and return its handle.
    ///
    /// # Errors
    /// [`StatsError::Duplicate`] if the pair exists, [`StatsError::InvalidName`] for empty
    /// names or names containing `:`.
    pub fn register(
        &self,
        group: impl Into<Cow<'static, str>>,
        name: impl Into<Cow<'static, str>>,
        flags: StatFlags,
    ) -> Result<Stat, StatsError> {
        let slot = Arc::new(AtomicU64::new(0));
        self.insert(
            group.into(),
            name.into(),
            flags,
            Source::Slot(Arc::clone(&slot)),
        )?;
        Ok(Stat { slot })
    }

    /// Register a computed statistic: `f` is called whenever the value is read. Such a
    /// statistic is never reset and is listed as "non-incremental".
    ///
    /// # Errors
    /// As [`Stats::register`].
    pub fn register_fn(
        &self,
        group: impl Into<Cow<'static, str>>,
        name: impl Into<Cow<'static, str>>,
        f: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> Result<(), StatsError> {
        self.insert(
            group.into(),
            name.into(),
            StatFlags::NO_RESET,
            Source::Func(Arc::new(f)),
        )
    }

    fn insert(
        &self,
        group: Cow<'static, str>,
        name: Cow<'static, str>,
        flags: StatFlags,
        source: Source,
    ) -> Result<(), StatsError> {
        for n in [&group, &name] {
            if n.is_empty() || n.contains(':') || n.contains(char::is_whitespace) {
                return Err(StatsError::InvalidName(n.to_string()));
            }
        }
        let mut groups = self.groups.write();
        let idx = if let Some(i) = groups
            .iter()
            .position(|g| g.name.eq_ignore_ascii_case(&group))
        {
            i
        } else {
            groups.push(Group {
                name: group.clone(),
                stats: Vec::new(),
            });
            groups.len() - 1
        };
        let g = &mut groups[idx];
        if g.stats.iter().any(|e| e.name.eq_ignore_ascii_case(&name)) {
            return Err(StatsError::Duplicate {
                group: group.into_owned(),
                name: name.into_owned(),
            });
        }
        g.stats.push(Entry {
            name,
            flags,
            source,
        });
        Ok(())
    }

    /// The value of one statistic, by bare name or `group:name` (case-insensitive).
    #[must_use]
    pub fn value(&self, name: &str) -> Option<u64> {
        let groups = self.groups.read();
        find(&groups, name).map(|(_, e)| e.value())
    }

    /// `get_statistics`: each name is `all`, `group:` (every stat of the group), `group:name`
    /// or a bare `name` (first match in any group). Answers `("group:name", value)` pairs in
    /// request order; names that match nothing are skipped.
    ///
    /// # Errors
    /// [`NotFound`] when no name matched anything.
    pub fn get(&self, names: &[&str]) -> Result<Vec<(String, u64)>, NotFound> {
        let groups = self.groups.read();
        let mut out = Vec::new();
        let mut found = false;
        for &n in names {
            if n == "all" {
                for g in groups.iter() {
                    push_group(&mut out, g);
                }
                found = true;
            } else if let Some(gname) = group_selector(n) {
                if let Some(g) = groups.iter().find(|g| g.name.eq_ignore_ascii_case(gname)) {
                    push_group(&mut out, g);
                    found = true;
                }
            } else if let Some((g, e)) = find(&groups, n) {
                out.push((format!("{}:{}", g.name, e.name), e.value()));
                found = true;
            }
        }
        if found { Ok(out) } else { Err(NotFound) }
    }

    /// `list_statistics` without parameters: every statistic as `("group:name", kind)`.
    #[must_use]
    pub fn list_all(&self) -> Vec<(String, StatKind)> {
        let groups = self.groups.read();
        let mut out = Vec::new();
        for g in groups.iter() {
            list_group(&mut out, g);
        }
        out
    }

    /// `list_statistics statistics=[...]`: `group:` lists the group with `group:name` keys; a
    /// single statistic is listed under its bare name, as OpenSIPS does.
    ///
    /// # Errors
    /// [`NotFound`] when no name matched anything.
    pub fn list(&self, names: &[&str]) -> Result<Vec<(String, StatKind)>, NotFound> {
        let groups = self.groups.read();
        let mut out = Vec::new();
        let mut found = false;
        for &n in names {
            if let Some(gname) = group_selector(n) {
                if let Some(g) = groups.iter().find(|g| g.name.eq_ignore_ascii_case(gname)) {
                    list_group(&mut out, g);
                    found = true;
                }
            } else if let Some((_, e)) = find(&groups, n) {
                out.push((e.name.to_string(), kind(e)));
                found = true;
            }
        }
        if found { Ok(out) } else { Err(NotFound) }
    }

    /// `reset_statistics`: reset each named statistic (bare or `group:name`); non-resettable
    /// and computed ones are found but left alone, as in OpenSIPS.
    ///
    /// # Errors
    /// [`NotFound`] when no name matched a statistic.
    pub fn reset(&self, names: &[&str]) -> Result<(), NotFound> {
        let groups = self.groups.read();
        let mut found = false;
        for &n in names {
            if let Some((_, e)) = find(&groups, n) {
                e.reset();
                found = true;
            }
        }
        if found { Ok(()) } else { Err(NotFound) }
    }

    /// `reset_all_statistics`: reset every resettable statistic.
    pub fn reset_all(&self) {
        for g in self.groups.read().iter() {
            for e in &g.stats {
                e.reset();
            }
        }
    }

    /// The names of the groups, in registration order.
    #[must_use]
    pub fn groups(&self) -> Vec<String> {
        self.groups
            .read()
            .iter()
            .map(|g| g.name.to_string())
            .collect()
    }

    /// The Prometheus text exposition of the statistics selected by `cfg.statistics`.
    #[must_use]
    pub fn prometheus(&self, cfg: &PromConfig) -> String {
        let groups = self.groups.read();
        let mut out = String::new();
        let mut emit = |g: &Group, e: &Entry| {
            prom::write_stat(&mut out, cfg, &g.name, &e.name, e.is_gauge(), e.value());
        };
        let sel = cfg.selection();
        if sel.all {
            for g in groups.iter() {
                for e in &g.stats {
                    emit(g, e);
                }
            }
        } else {
            for gname in &sel.groups {
                if let Some(g) = groups.iter().find(|g| g.name.eq_ignore_ascii_case(gname)) {
                    for e in &g.stats {
                        emit(g, e);
                    }
                }
            }
            for n in &sel.stats {
                if let Some((g, e)) = find(&groups, n) {
                    emit(g, e);
                }
            }
        }
        drop(groups);
        out.push('\n');
        out
    }
}

/// `"core:"` → `Some("core")`.
fn group_selector(n: &str) -> Option<&str> {
    n.strip_suffix(':').filter(|g| !g.is_empty())
}

fn find<'a>(groups: &'a [Group], name: &str) -> Option<(&'a Group, &'a Entry)> {
    let (gsel, sname) = match name.split_once(':') {
        Some((g, s)) if !g.is_empty() && !s.is_empty() => (Some(g), s),
        _ => (None, name),
    };
    groups
        .iter()
        .filter(|g| gsel.is_none_or(|gs| g.name.eq_ignore_ascii_case(gs)))
        .find_map(|g| {
            g.stats
                .iter()
                .find(|e| e.name.eq_ignore_ascii_case(sname))
                .map(|e| (g, e))
        })
}

fn push_group(out: &mut Vec<(String, u64)>, g: &Group) {
    for e in &g.stats {
        out.push((format!("{}:{}", g.name, e.name), e.value()));
    }
}

fn list_group(out: &mut Vec<(String, StatKind)>, g: &Group) {
    for e in &g.stats {
        out.push((format!("{}:{}", g.name, e.name), kind(e)));
    }
}

fn kind(e: &Entry) -> StatKind {
    if e.is_gauge() {
        StatKind::NonIncremental
    } else {
        StatKind::Incremental
    }
}

/// Handles on the `core:` group of OpenSIPS (docs "Interface-CoreStatistics"), registered in
/// OpenSIPS's order. `timestamp` is a non-resettable gauge the runtime's timer sets.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct CoreStats {
    pub rcv_requests: Stat,
    pub rcv_replies: Stat,
    pub fwd_requests: Stat,
    pub fwd_replies: Stat,
    pub drop_requests: Stat,
    pub drop_replies: Stat,
    pub err_requests: Stat,
    pub err_replies: Stat,
    pub bad_uris_rcvd: Stat,
    pub unsupported_methods: Stat,
    pub bad_msg_hdr: Stat,
    pub timestamp: Stat,
}

impl CoreStats {
    /// Register the `core:` group in `stats`.
    ///
    /// # Errors
    /// [`StatsError::Duplicate`] if it was registered already.
    pub fn register(stats: &Stats) -> Result<Self, StatsError> {
        let c = |n: &'static str| stats.register("core", n, StatFlags::NONE);
        Ok(Self {
            rcv_requests: c("rcv_requests")?,
            rcv_replies: c("rcv_replies")?,
            fwd_requests: c("fwd_requests")?,
            fwd_replies: c("fwd_replies")?,
            drop_requests: c("drop_requests")?,
            drop_replies: c("drop_replies")?,
            err_requests: c("err_requests")?,
            err_replies: c("err_replies")?,
            bad_uris_rcvd: c("bad_URIs_rcvd")?,
            unsupported_methods: c("unsupported_methods")?,
            bad_msg_hdr: c("bad_msg_hdr")?,
            timestamp: stats.register("core", "timestamp", StatFlags::NO_RESET)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_selector_needs_a_name() {
        assert_eq!(group_selector("core:"), Some("core"));
        assert_eq!(group_selector(":"), None);
        assert_eq!(group_selector("core"), None);
    }

    #[test]
    fn flags_compose() {
        let f = StatFlags::NONE.union(StatFlags::NO_RESET);
        assert!(f.contains(StatFlags::NO_RESET));
        assert!(!StatFlags::NONE.contains(StatFlags::NO_RESET));
    }
}
