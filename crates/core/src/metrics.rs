//! The statistics the runtime exports through `sipox-stats` (and so `get_statistics` and
//! `/metrics`): OpenSIPS's `core:`, `net:`, `load:`, `shmem:`, `pkmem:` groups and the `sl:`
//! module group, with what each sipox value measures where OpenSIPS's meaning (fixed memory
//! pools, forked processes) has no exact counterpart.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use sipox_sip_msg::ErrorKind;
use sipox_stats::{CoreStats, Stat, StatFlags, Stats, StatsError};
use sipox_transport::{Proto, Transports};

/// Counters of the core path, each a live `sipox-stats` handle (they deref to the atomic, so
/// `counters.rcv_requests.fetch_add(1, Relaxed)` is one relaxed add on the registered slot).
#[derive(Debug, Clone)]
pub struct CoreCounters {
    /// `core:rcv_requests`: requests received (parsed far enough to be a request).
    pub rcv_requests: Stat,
    /// `core:rcv_replies`: replies received.
    pub rcv_replies: Stat,
    /// `core:fwd_requests`: requests forwarded statelessly.
    pub fwd_requests: Stat,
    /// `core:fwd_replies`: replies relayed statelessly.
    pub fwd_replies: Stat,
    /// `core:drop_requests`: requests dropped before the script ran (ACKs absorbed by `sl`).
    pub drop_requests: Stat,
    /// `core:drop_replies`: replies dropped (not for us, no safe next hop, or `drop` in
    /// `onreply_route`).
    pub drop_replies: Stat,
    /// `core:err_requests`: requests that failed to parse or validate.
    pub err_requests: Stat,
    /// `core:err_replies`: replies that failed to parse.
    pub err_replies: Stat,
    /// `core:bad_URIs_rcvd`: URIs (Request-URI) that failed to parse.
    pub bad_uris_rcvd: Stat,
    /// `core:unsupported_methods`: requests with a method that is not a standard one.
    pub unsupported_methods: Stat,
    /// `core:bad_msg_hdr`: header fields that failed to parse.
    pub bad_msg_hdr: Stat,
    /// `core:timestamp`: seconds since start, set by the runtime's 1-second timer.
    pub timestamp: Stat,
    /// `sl:sent_replies`: stateless replies sent.
    pub sent_replies: Stat,
    /// `sl:sent_err_replies`: stateless replies sent with a code >= 300.
    pub sent_err_replies: Stat,
    /// `sl:1xx_replies` .. `sl:6xx_replies`.
    pub sl_class: [Stat; 6],
    /// `sl:received_ACKs`: ACKs to our own stateless replies (absorbed).
    pub received_acks: Stat,
    /// Nanoseconds spent handling messages, for `load:`.
    pub(crate) busy_ns: Arc<AtomicU64>,
}

impl CoreCounters {
    /// Registers `core:` in `stats`, and `sl:` when the script loads the `sl` module (the
    /// handles exist either way; without `sl` they are not listed).
    pub(crate) fn register(stats: &Stats, with_sl: bool) -> Result<Self, StatsError> {
        let core = CoreStats::register(stats)?;
        let scratch = Stats::new();
        let sl_reg = if with_sl { stats } else { &scratch };
        let sl = |n: &'static str| sl_reg.register("sl", n, StatFlags::NONE);
        let sl_class = [
            sl("1xx_replies")?,
            sl("2xx_replies")?,
            sl("3xx_replies")?,
            sl("4xx_replies")?,
            sl("5xx_replies")?,
            sl("6xx_replies")?,
        ];
        Ok(Self {
            rcv_requests: core.rcv_requests,
            rcv_replies: core.rcv_replies,
            fwd_requests: core.fwd_requests,
            fwd_replies: core.fwd_replies,
            drop_requests: core.drop_requests,
            drop_replies: core.drop_replies,
            err_requests: core.err_requests,
            err_replies: core.err_replies,
            bad_uris_rcvd: core.bad_uris_rcvd,
            unsupported_methods: core.unsupported_methods,
            bad_msg_hdr: core.bad_msg_hdr,
            timestamp: core.timestamp,
            sl_class,
            sent_replies: sl("sent_replies")?,
            sent_err_replies: sl("sent_err_replies")?,
            received_acks: sl("received_ACKs")?,
            busy_ns: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Counts one stateless reply sent with `code`.
    pub(crate) fn sl_sent(&self, code: u16) {
        self.sent_replies.inc();
        if code >= 300 {
            self.sent_err_replies.inc();
        }
        if let Some(s) = usize::from(code / 100)
            .checked_sub(1)
            .and_then(|i| self.sl_class.get(i))
        {
            s.inc();
        }
    }

    /// Counts what a parse or validation failure says about the message.
    pub(crate) fn parse_failure(&self, kind: ErrorKind) {
        match kind {
            ErrorKind::BadUri
            | ErrorKind::BadHost
            | ErrorKind::BadPort
            | ErrorKind::RuriHeaders => {
                self.bad_uris_rcvd.inc();
            }
            ErrorKind::BadHeaderLine
            | ErrorKind::BadContentLength
            | ErrorKind::MultipleContentLength
            | ErrorKind::BadNameAddr
            | ErrorKind::UnterminatedQuote
            | ErrorKind::BadParam
            | ErrorKind::BadVia
            | ErrorKind::BadCSeq
            | ErrorKind::BadNumber
            | ErrorKind::Duplicate
            | ErrorKind::BadDate
            | ErrorKind::BadAuth
            | ErrorKind::BadCallId
            | ErrorKind::Empty => self.bad_msg_hdr.inc(),
            _ => {}
        }
    }
}

/// `load:` — the share of time the SIP workers spent handling messages, in percent, over the
/// last second (`load`), minute (`load1m`) and ten minutes (`load10m`). sipox has no other
/// process kinds, so the `-all` variants are the same values.
#[derive(Debug)]
pub(crate) struct LoadMeter {
    busy_ns: Arc<AtomicU64>,
    workers: u64,
    state: Mutex<LoadState>,
    last: [AtomicU64; 3],
}

#[derive(Debug, Default)]
struct LoadState {
    prev_busy: u64,
    samples: VecDeque<u64>,
}

impl LoadMeter {
    pub(crate) fn new(busy_ns: Arc<AtomicU64>, workers: usize) -> Self {
        Self {
            busy_ns,
            workers: u64::try_from(workers.max(1)).unwrap_or(1),
            state: Mutex::new(LoadState::default()),
            last: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// One sample, `elapsed_ns` after the previous one.
    pub(crate) fn sample(&self, elapsed_ns: u64) {
        let busy = self.busy_ns.load(Ordering::Relaxed);
        let mut st = self.state.lock();
        let delta = busy.saturating_sub(st.prev_busy);
        st.prev_busy = busy;
        let cap = elapsed_ns.max(1).saturating_mul(self.workers);
        let pct = (delta.saturating_mul(100) / cap).min(100);
        st.samples.push_back(pct);
        while st.samples.len() > 600 {
            st.samples.pop_front();
        }
        let avg = |n: usize| {
            let k = st.samples.len().min(n).max(1);
            st.samples.iter().rev().take(k).sum::<u64>() / u64::try_from(k).unwrap_or(1)
        };
        let vals = [pct, avg(60), avg(600)];
        drop(st);
        for (slot, v) in self.last.iter().zip(vals) {
            slot.store(v, Ordering::Relaxed);
        }
    }

    pub(crate) fn register(self: &Arc<Self>, stats: &Stats) -> Result<(), StatsError> {
        for (i, names) in [
            ["load", "load-all"],
            ["load1m", "load1m-all"],
            ["load10m", "load10m-all"],
        ]
        .into_iter()
        .enumerate()
        {
            for n in names {
                let me = Arc::clone(self);
                stats.register_fn("load", n, move || {
                    me.last.get(i).map_or(0, |a| a.load(Ordering::Relaxed))
                })?;
            }
        }
        Ok(())
    }
}

/// Registers `net:`: OpenSIPS's `waiting_udp`/`waiting_tcp`/`waiting_tls` (bytes queued in the
/// kernel on our sockets, read from `/proc/net/{udp,tcp}{,6}`; TLS is not served yet, so 0),
/// then the transport's own counters (sipox additions): `rcv_msgs`, `bad_msgs`,
/// `keepalives`, `sent_msgs`, `send_errors`, `tcp_opened`, `tcp_refused`.
pub(crate) fn register_net(stats: &Stats, tx: &Transports) -> Result<(), StatsError> {
    let ports = |p: Proto| -> Vec<u16> {
        tx.sockets()
            .iter()
            .filter(|s| s.proto == p)
            .map(|s| s.local.port())
            .collect()
    };
    let udp = ports(Proto::Udp);
    let tcp = ports(Proto::Tcp);
    stats.register_fn("net", "waiting_udp", move || {
        waiting(&["/proc/net/udp", "/proc/net/udp6"], &udp)
    })?;
    stats.register_fn("net", "waiting_tcp", move || {
        waiting(&["/proc/net/tcp", "/proc/net/tcp6"], &tcp)
    })?;
    stats.register_fn("net", "waiting_tls", || 0)?;
    type Pick = fn(&sipox_transport::NetStats) -> &AtomicU64;
    let extra: [(&'static str, Pick); 7] = [
        ("rcv_msgs", |n| &n.received),
        ("bad_msgs", |n| &n.bad),
        ("keepalives", |n| &n.keepalives),
        ("sent_msgs", |n| &n.sent),
        ("send_errors", |n| &n.send_errors),
        ("tcp_opened", |n| &n.tcp_opened),
        ("tcp_refused", |n| &n.tcp_refused),
    ];
    for (name, pick) in extra {
        let t = tx.clone();
        stats.register_fn("net", name, move || pick(t.stats()).load(Ordering::Relaxed))?;
    }
    Ok(())
}

/// Sum of the receive queues of sockets bound to one of `ports` in the `/proc/net` tables.
fn waiting(files: &[&str], ports: &[u16]) -> u64 {
    let mut total = 0;
    for f in files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let mut cols = line.split_whitespace();
            let (Some(_), Some(local), Some(_), Some(_), Some(queues)) = (
                cols.next(),
                cols.next(),
                cols.next(),
                cols.next(),
                cols.next(),
            ) else {
                continue;
            };
            let port = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if port.is_some_and(|p| ports.contains(&p)) {
                total += queues
                    .split_once(':')
                    .and_then(|(_, rx)| u64::from_str_radix(rx, 16).ok())
                    .unwrap_or(0);
            }
        }
    }
    total
}

/// A `kB` field of `/proc/self/status` or `/proc/meminfo`, in bytes.
fn proc_kb(file: &str, field: &str) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let rest = l.strip_prefix(field)?.strip_prefix(':')?;
                rest.split_whitespace().next()?.parse::<u64>().ok()
            })
        })
        .map_or(0, |kb| kb.saturating_mul(1024))
}

/// Registers `shmem:` and `pkmem:`. sipox has no fixed pools: every worker is a thread of one
/// process on the system allocator, so these report that process's memory as the kernel sees
/// it: `used_size` = resident anonymous memory (heap and stacks, `RssAnon`),
/// `real_used_size` = all resident memory (`VmRSS`), `max_used_size` = peak resident
/// (`VmHWM`), `total_size` = the host's memory (`MemTotal`), `free_size` = what the host can
/// still give (`MemAvailable`), `fragments` = 0 (not measured). `pkmem:` has OpenSIPS's
/// per-process shape with one entry, `0-`, for the one process.
pub(crate) fn register_memory(stats: &Stats) -> Result<(), StatsError> {
    type Read = fn() -> u64;
    let fields: [(&'static str, Read); 6] = [
        ("total_size", || proc_kb("/proc/meminfo", "MemTotal")),
        ("used_size", || proc_kb("/proc/self/status", "RssAnon")),
        ("real_used_size", || proc_kb("/proc/self/status", "VmRSS")),
        ("max_used_size", || proc_kb("/proc/self/status", "VmHWM")),
        ("free_size", || proc_kb("/proc/meminfo", "MemAvailable")),
        ("fragments", || 0),
    ];
    for (name, f) in fields {
        stats.register_fn("shmem", name, f)?;
    }
    for (name, f) in fields {
        stats.register_fn("pkmem", format!("0-{name}"), f)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sl_classes_and_errors() {
        let s = Stats::new();
        let c = CoreCounters::register(&s, true).unwrap();
        c.sl_sent(100);
        c.sl_sent(404);
        c.sl_sent(699);
        assert_eq!(s.value("sl:1xx_replies"), Some(1));
        assert_eq!(s.value("sl:4xx_replies"), Some(1));
        assert_eq!(s.value("sl:6xx_replies"), Some(1));
        assert_eq!(s.value("sl:sent_replies"), Some(3));
        assert_eq!(s.value("sl:sent_err_replies"), Some(2));
        let s2 = Stats::new();
        let _ = CoreCounters::register(&s2, false).unwrap();
        assert!(s2.value("sl:sent_replies").is_none());
        assert_eq!(s2.value("core:rcv_requests"), Some(0));
    }

    #[test]
    fn load_is_a_share_of_worker_time() {
        let busy = Arc::new(AtomicU64::new(0));
        let m = Arc::new(LoadMeter::new(Arc::clone(&busy), 2));
        let s = Stats::new();
        m.register(&s).unwrap();
        busy.store(1_000_000_000, Ordering::Relaxed);
        m.sample(1_000_000_000);
        assert_eq!(s.value("load:load"), Some(50));
        m.sample(1_000_000_000);
        assert_eq!(s.value("load:load"), Some(0));
        assert_eq!(s.value("load:load1m"), Some(25));
        assert_eq!(s.value("load:load10m-all"), Some(25));
    }

    #[test]
    fn memory_reads_proc() {
        let s = Stats::new();
        register_memory(&s).unwrap();
        assert!(s.value("shmem:real_used_size").unwrap() > 0);
        assert!(s.value("pkmem:0-total_size").unwrap() > 0);
    }
}
