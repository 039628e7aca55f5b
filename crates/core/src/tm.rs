//! The `tm` module: stateful processing over `sipox-txn`.
//!
//! A [`Tm`] keeps a few shards of [`TxnTable`]s behind `parking_lot` locks (a request picks its
//! shard by its top Via branch, or its Call-ID without the RFC 3261 cookie; a reply by the shard
//! digit this element put in the branch of the request it answers), one timer thread sleeping
//! until the earliest transaction timer, and the tm-level data of each server transaction
//! (routes armed by `t_on_failure`/`t_on_reply`/`t_on_branch`, the request to fork again from
//! a failure route, where replies go).
//!
//! Locks are never held while a script runs or while the script calls us: after every table
//! call the shard's datagrams are sent and its events are queued on the calling thread; events
//! that run script routes (onreply, failure) are dispatched only once no script runs on the
//! thread ([`after_script`], the reply path and the timer thread).
//!
//! Script functions: `t_relay`, `t_newtran`, `t_check_trans`, `t_reply`, `t_on_failure`,
//! `t_on_reply`, `t_on_branch`, `t_was_cancelled`, `t_check_status`, `t_local_replied`,
//! `t_add_hdrs`, `t_add_cancel_reason`, `t_flush_flags`, `t_cancel_branch`, `t_reply_by_callid`,
//! `t_replicate`, `t_reply_with_body`, `t_new_request` (a request of tm's own whose replies stay
//! here; `ctx` is `$avp(uac_ctx)` in the local route); the pseudo-variables `$T_reply_code`,
//! `$T_branch_idx` (in a failure route: the winning branch, as the table selected it), `$T_id`,
//! `$T_branch_last_reply_code`, `$T_ruri` (the reply's branch in an onreply route, the winning
//! branch in a failure route), `$bavp(name)` (branch AVPs, only in branch, onreply and failure
//! routes: set in a branch route or an onreply route, read there and in the failure route of the
//! winning branch) and the writable `$T_fr_timeout`/`$T_fr_inv_timeout` (timers B/F and C of the
//! transaction's next branches, per transaction in the table; fr_inv set in an onreply route also
//! restarts the reply's branch timer with the new value); the MI commands `t_reply` and `t_uac_dlg`
//! ([`mi`]). `local_route` runs over every request tm builds itself (`t_new_request`, MI
//! `t_uac_dlg`) in a script context of its own: its header changes go out, `drop` stops the
//! request. Modparams: `fr_timeout`, `fr_inv_timeout` (counted, as in OpenSIPS, from a branch's
//! first provisional), `T1_timer`, `T2_timer`, `disable_6xx_block`, `auto_100trying`,
//! `restart_fr_on_each_reply` (off: a provisional restarts fr_inv only with a higher code than the
//! branch had) and `onreply_avp_mode` (1: AVP changes of onreply routes go back to the transaction;
//! 0: they are dropped, though the routes still read the transaction's AVPs).
//! Also `wt_timer`, `delete_timer`, `enable_stats`, `ruri_matching`, `via1_matching` (below).
//!
//! `t_relay([flags][, proxy])`: with `proxy` (`[proto:]host[:port]` or a SIP URI) every branch
//! is sent there, its R-URI unchanged (as `$du` would, for this call only).
//!
//! `t_relay` flags (compiled at fixup; a comma-separated list of OpenSIPS 3.5's names, or the
//! old numeric bits; an unknown name is a load error): `no-auto-477` (0x02), `no-dns-failover`
//! (0x04, sticks to the transaction), `pass-reason-hdr` (0x08: given to `t_relay` of a CANCEL,
//! the CANCEL's first Reason header goes on the CANCELs of the INVITE's branches, unless
//! `t_add_cancel_reason` set one), `allow-no-cancel` (0x10: when the request carries
//! `Request-Disposition: no-cancel`, RFC 3841 §9.1, a 2xx does not cancel the other pending
//! branches; they run to their own final reply or timeout, and their 2xx go upstream too).
//!
//! DNS failover (RFC 3263 §4.3, OpenSIPS's transaction-level failover): when a branch's host
//! is a name, the RFC 3263 targets after the first one (same transport, SRV priority/weight
//! order then A/AAAA) are kept with the transaction for that branch ([`DnsAlt`]: the request
//! as sent and the targets left, only when there are some). When the transaction completes
//! and the §16.7 selection names that branch (or an earlier attempt of it), and its latest
//! attempt ended with a timeout without any reply, a 503 reply, or a send failure (a local
//! 503), the same request (new Via branch) goes to the next target as a new branch, before
//! any failure route or final reply. Off with the `no-dns-failover` flag or the core
//! `disable_dns_failover`. A send failure the transports report later (a TCP connect refused
//! or timed out) fails the branches sending there as a 503 too, on the timer thread
//! ([`Tm::on_send_error`]). Unlike OpenSIPS, a send failure is retried at completion time
//! (not at once while other branches are pending), the branch route does not run again for
//! the new attempt. Targets a `dst_blacklist` applying to the message blocks are left out.
//!
//! Modparams of this group: `wt_timer` (seconds) is how long a transaction lingers once done,
//! as OpenSIPS's wait timer: a completed non-INVITE server transaction on an unreliable
//! transport (timer J), an accepted INVITE server transaction (RFC 6026 timer L) and a
//! completed INVITE client transaction (timer D, where RFC 3261 only asks for at least 32 s);
//! unset, they keep 64·T1, 64·T1 and 32 s. Timers I and K (T4), H and M are not changed by it.
//! `enable_stats=0` registers and keeps no `tm` statistics. `ruri_matching=0` /
//! `via1_matching=0` leave the Request-URI / the top Via out of RFC 2543 (no magic cookie)
//! transaction matching (retransmissions, ACK, CANCEL); RFC 3261 matching never uses them.
//! `delete_timer` is accepted and has no effect: a transaction here is freed by its own
//! timers, never referenced by a process when they fire, so there is no deferred delete to
//! retry.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use sipox_cfg_syntax::{Config, Item, RouteKind, Value};
use sipox_script::{
    Arg, Args, Call, FixupError, FnDef, IntArg, Kind, ModuleDef, ModulePv, MsgCx, MsgState,
    Outcome, RegexArg, Registry, Ret, Sig, Stop, TxnCtx, route_mask,
};
use sipox_sip_msg::{Method, SipMsg, Transport};
use sipox_transport::{Dest, Source};
use sipox_txn::{
    BranchTimers, ClientKey, NewTxn, Peer, ServerKey, ServerState, Trying, TxnConfig, TxnError,
    TxnEvent, TxnRef, TxnTable,
};

use crate::runtime::{Runtime, current_source, proto_of, reply_dest};

type R = Result<Ret, Stop>;

const SHARDS: usize = 4;
/// Our client branches: the cookie, this marker, the shard digit, a unique part.
const PREFIX: &[u8] = b"z9hG4bKsx";

/// The `tm` modparams this runtime honours.
#[derive(Debug, Clone)]
pub(crate) struct TmParams {
    fr_timeout: Duration,
    fr_inv_timeout: Duration,
    t1: Duration,
    t2: Duration,
    disable_6xx_block: bool,
    auto_100trying: bool,
    /// `restart_fr_on_each_reply`: every provisional restarts fr_inv (else only a higher one).
    restart_fr_on_each_reply: bool,
    /// `onreply_avp_mode`: AVP changes of onreply routes are kept in the transaction.
    onreply_avp_mode: bool,
    /// `Server:` value of the replies tm builds (core `server_header`, `server_signature`).
    pub(crate) server: Option<Bytes>,
    /// `User-Agent:` value of the CANCELs and ACKs tm builds (core `user_agent_header`).
    pub(crate) user_agent: Option<Bytes>,
    /// `wt_timer` (seconds): how long completed/accepted server transactions linger.
    wt_timer: Option<Duration>,
    /// `enable_stats`: the `tm` statistics are registered and kept.
    enable_stats: bool,
    /// `ruri_matching`, `via1_matching`: what RFC 2543 transaction matching compares.
    ruri_matching: bool,
    via1_matching: bool,
}

impl Default for TmParams {
    fn default() -> Self {
        Self {
            fr_timeout: Duration::from_secs(5),
            fr_inv_timeout: Duration::from_secs(120),
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            disable_6xx_block: false,
            auto_100trying: true,
            restart_fr_on_each_reply: true,
            onreply_avp_mode: false,
            server: None,
            user_agent: None,
            wt_timer: None,
            enable_stats: true,
            ruri_matching: true,
            via1_matching: true,
        }
    }
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Str(s) | Value::Ident(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl TmParams {
    /// Reads `modparam("tm", ...)`; unusable values keep the defaults.
    pub(crate) fn from_ast(ast: &Config) -> Self {
        let mut p = Self::default();
        for item in &ast.items {
            let Item::ModParam(mp) = item else { continue };
            if mp.module != "tm" {
                continue;
            }
            let Some(v) = int_of(&mp.value) else { continue };
            let pos = u64::try_from(v).ok().filter(|v| *v > 0);
            match mp.param.as_str() {
                "fr_timeout" => {
                    if let Some(s) = pos {
                        p.fr_timeout = Duration::from_secs(s);
                    }
                }
                "fr_inv_timeout" => {
                    if let Some(s) = pos {
                        p.fr_inv_timeout = Duration::from_secs(s);
                    }
                }
                "T1_timer" => {
                    if let Some(ms) = pos {
                        p.t1 = Duration::from_millis(ms);
                    }
                }
                "T2_timer" => {
                    if let Some(ms) = pos {
                        p.t2 = Duration::from_millis(ms);
                    }
                }
                "disable_6xx_block" => p.disable_6xx_block = v != 0,
                "auto_100trying" => p.auto_100trying = v != 0,
                "wt_timer" => {
                    if let Some(s) = pos {
                        p.wt_timer = Some(Duration::from_secs(s));
                    }
                }
                "enable_stats" => p.enable_stats = v != 0,
                "ruri_matching" => p.ruri_matching = v != 0,
                "via1_matching" => p.via1_matching = v != 0,
                // `delete_timer`: accepted, nothing to retry (see the module doc).
                "restart_fr_on_each_reply" => p.restart_fr_on_each_reply = v != 0,
                "onreply_avp_mode" => p.onreply_avp_mode = v != 0,
                _ => {}
            }
        }
        p
    }

    fn txn_config(&self, seed: u64) -> TxnConfig {
        let mut c = TxnConfig::default();
        c.t1(self.t1)
            .t2(self.t2.max(self.t1))
            .fr_timeout(Some(self.fr_timeout))
            .timer_c(Some(self.fr_inv_timeout))
            .timer_c_fails_at_once(true)
            .restart_timer_c(self.restart_fr_on_each_reply)
            .timer_c_from_provisional(true)
            .six_xx_cancels(!self.disable_6xx_block)
            .trying(if self.auto_100trying {
                Trying::Immediately
            } else {
                Trying::Never
            });
        c.tag_seed = seed;
        c.server.clone_from(&self.server);
        c.user_agent.clone_from(&self.user_agent);
        c.wait = self.wt_timer;
        if let Some(w) = self.wt_timer {
            c.timer_d(w);
        }
        c.rfc2543_ruri = self.ruri_matching;
        c.rfc2543_via1 = self.via1_matching;
        c
    }
}

/// What tm keeps with a server transaction.
#[derive(Debug)]
struct TmTxn {
    /// The request as the request route left it (script edits applied, before our Via): a
    /// failure route forks again from it.
    base: Bytes,
    src: Source,
    /// Where replies go.
    dest: Dest,
    on_failure: Option<Box<str>>,
    on_reply: Option<Box<str>>,
    on_branch: Option<Box<str>>,
    /// Record-Route lines of the first relay, reused by branches a failure route adds.
    rr: Option<Vec<u8>>,
    /// Branches created so far (for `$T_branch_idx`).
    nbranches: usize,
    /// A reply came from some branch.
    any_received: bool,
    /// The last final outcome of a branch was local (408/503).
    last_local: bool,
    /// Message flags and AVPs as the request's route left them, for failure/reply routes.
    ctx: TxnCtx,
    /// `t_add_hdrs` lines, added to every branch (and the CANCELs tm sends for them).
    hdrs: Vec<u8>,
    /// `t_add_cancel_reason`: the Reason line of the CANCELs tm sends for the branches.
    cancel_reason: Vec<u8>,
    /// Call-ID and CSeq number of the request (`t_reply_by_callid`).
    callid: Box<[u8]>,
    cseq: u32,
    invite: bool,
    /// `t_relay` flags set on this transaction ([`relay_flags`]).
    flags: u8,
    /// DNS failover: the further RFC 3263 targets of branches that have some.
    dns: Vec<DnsAlt>,
    /// Per branch (by index): R-URI, reply codes, branch AVPs.
    bdata: Vec<BranchData>,
}

/// A branch whose destination host resolved to several targets: what DNS failover needs to
/// send it again to the next one (owned by the transaction, dropped with it).
#[derive(Debug)]
struct DnsAlt {
    /// The latest attempt.
    branch: ClientKey,
    /// The attempts before it (the §16.7 selection may name one of them).
    earlier: Vec<ClientKey>,
    /// The request as sent on the branch (the table keeps the same buffer).
    req: Bytes,
    /// Targets not tried yet, in RFC 3263 order.
    rest: Vec<Peer>,
    /// Some reply came on the latest attempt.
    received: bool,
    /// The final outcome of the latest attempt (0 while pending; a local 408/503 included).
    code: u16,
}

impl DnsAlt {
    fn new(branch: ClientKey, req: Bytes, rest: Vec<Peer>) -> Self {
        Self {
            branch,
            earlier: Vec::new(),
            req,
            rest,
            received: false,
            code: 0,
        }
    }
}

/// What tm remembers of one branch of a server transaction.
#[derive(Debug, Default)]
struct BranchData {
    /// The R-URI it was sent with (`$T_ruri` in a failure route).
    uri: Box<[u8]>,
    /// The last reply code received on it (`$T_branch_last_reply_code`; 0: none).
    last_code: u16,
    /// Its final outcome (received, or 408/503 of a local failure; 0: pending).
    final_code: u16,
    /// `$bavp` values set for it (branch route, its onreply routes).
    bavps: Bavps,
}

/// Branch AVPs: name and value, one value per name.
type Bavps = Vec<(Box<str>, BVal)>;

#[derive(Debug, Clone)]
enum BVal {
    Int(i64),
    Str(Box<[u8]>),
}

impl TmTxn {
    /// A final response went upstream: no failure route, new branch or local reply can follow,
    /// so what only they need is released (the transaction lives on for its timers).
    fn settle(&mut self) {
        self.base = Bytes::new();
        self.rr = None;
        self.on_failure = None;
        self.on_branch = None;
        self.hdrs = Vec::new();
        self.dns = Vec::new();
    }

    /// The branch whose final reply `code` was selected (OpenSIPS's picked branch): its
    /// index, R-URI, last reply code and branch AVPs, for the failure route.
    fn winning_branch(
        &self,
        selected: Option<usize>,
        code: u16,
    ) -> Option<(usize, Box<[u8]>, u16, Bavps)> {
        let pick = |c: u16| self.bdata.iter().position(|d| d.final_code == c);
        let w = selected
            .or_else(|| pick(code))
            .or_else(|| if code == 500 { pick(503) } else { None })?;
        let d = self.bdata.get(w)?;
        Some((w, d.uri.clone(), d.last_code, d.bavps.clone()))
    }

    /// What the CANCELs of this transaction's branches carry besides the usual headers.
    fn cancel_headers(&self) -> Bytes {
        Bytes::from([&self.cancel_reason[..], &self.hdrs[..]].concat())
    }
}

/// A client transaction of no server transaction: its replies go nowhere upstream.
#[derive(Debug)]
enum Local {
    /// `t_replicate`: replies are absorbed.
    Replica,
    /// MI `t_uac_dlg`: the final reply (or the local failure code) goes to the waiting call.
    Uac(std::sync::mpsc::Sender<Result<SipMsg, u16>>),
}

#[derive(Debug, Clone, Copy)]
struct BranchInfo {
    server: ServerKey,
    idx: usize,
}

#[derive(Debug)]
struct Shard {
    table: TxnTable,
    txns: HashMap<ServerKey, TmTxn>,
    branches: HashMap<ClientKey, BranchInfo>,
    locals: HashMap<ClientKey, Local>,
}

/// The transaction layer of the runtime.
#[derive(Debug)]
pub(crate) struct Tm {
    shards: Box<[Mutex<Shard>]>,
    seq: AtomicU64,
    seed: u64,
    hasher: std::collections::hash_map::RandomState,
    /// The timer thread's next wake-up (on a tick boundary), and its bell.
    wake: Mutex<Option<Instant>>,
    /// Origin of the timer ticks.
    epoch: Instant,
    bell: Condvar,
    /// The `tm` statistics, registered when the configuration loads tm.
    stats: std::sync::OnceLock<TmStats>,
    /// `enable_stats`: with 0 the statistics are neither registered nor kept.
    stats_enabled: bool,
    /// Asynchronous send failures (a TCP connect refused or timed out) waiting for the timer
    /// thread: the branches sending there fail as with a 503.
    send_errors: Mutex<Vec<Peer>>,
    /// `fr_timeout` and `fr_inv_timeout` (what `$T_fr_timeout`/`$T_fr_inv_timeout` read when
    /// the transaction has no value of its own).
    fr_default: (Duration, Duration),
    /// `onreply_avp_mode`.
    onreply_avp_mode: bool,
}

/// Registers the `tm` statistics (OpenSIPS's names) of the runtime's transaction layer.
pub(crate) fn register_stats(
    rt: &Arc<Runtime>,
    stats: &sipox_stats::Stats,
) -> Result<(), sipox_stats::StatsError> {
    if !rt.tm.stats_enabled {
        return Ok(());
    }
    let r = |n: &'static str| stats.register("tm", n, sipox_stats::StatFlags::NONE);
    let st = TmStats {
        received_replies: r("received_replies")?,
        relayed_replies: r("relayed_replies")?,
        local_replies: r("local_replies")?,
        uas: r("UAS_transactions")?,
        uac: r("UAC_transactions")?,
        finals: [
            r("2xx_transactions")?,
            r("3xx_transactions")?,
            r("4xx_transactions")?,
            r("5xx_transactions")?,
            r("6xx_transactions")?,
        ],
    };
    let me = Arc::downgrade(rt);
    stats.register_fn("tm", "inuse_transactions", move || {
        me.upgrade().map_or(0, |rt| rt.tm.in_use())
    })?;
    let _ = rt.tm.stats.set(st);
    Ok(())
}

/// OpenSIPS's `tm` statistics group (`inuse_transactions` is computed from the tables).
#[derive(Debug)]
pub(crate) struct TmStats {
    received_replies: sipox_stats::Stat,
    relayed_replies: sipox_stats::Stat,
    local_replies: sipox_stats::Stat,
    uas: sipox_stats::Stat,
    uac: sipox_stats::Stat,
    /// 2xx..6xx_transactions: server transactions by the class of their final reply.
    finals: [sipox_stats::Stat; 5],
}

thread_local! {
    /// Events waiting for a point where no script runs on this thread.
    static PENDING: RefCell<VecDeque<(usize, TxnEvent)>> = const { RefCell::new(VecDeque::new()) };
    /// `local_route` runs on this thread (no nested run for requests it makes).
    static IN_LOCAL_ROUTE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Granularity of the tm timer thread (OpenSIPS's utimer ticks at 100 ms).
const TIMER_TICK: Duration = Duration::from_millis(10);

#[allow(clippy::disallowed_methods)] // the transaction driver is where the clock is read
fn now() -> Instant {
    Instant::now()
}

fn transport_of(p: sipox_transport::Proto) -> Transport {
    match p {
        sipox_transport::Proto::Tcp => Transport::Tcp,
        sipox_transport::Proto::Tls => Transport::Tls,
        sipox_transport::Proto::Ws => Transport::Ws,
        sipox_transport::Proto::Wss => Transport::Wss,
        sipox_transport::Proto::Sctp => Transport::Sctp,
        _ => Transport::Udp,
    }
}

/// The shard a reply belongs to: the digit after our marker in its top Via branch.
fn reply_shard(msg: &SipMsg) -> Option<usize> {
    let via = msg.via1().ok()?;
    let b = via.branch()?;
    let rest = b.strip_prefix(PREFIX)?;
    let d = *rest.first()?;
    let i = usize::from(d.checked_sub(b'0')?);
    (i < SHARDS).then_some(i)
}

impl Tm {
    pub(crate) fn new(params: &TmParams, seed: u64) -> Self {
        let cfg = params.txn_config(seed);
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    table: TxnTable::new(cfg.clone()),
                    txns: HashMap::new(),
                    branches: HashMap::new(),
                    locals: HashMap::new(),
                })
            })
            .collect();
        Self {
            shards,
            seq: AtomicU64::new(1),
            seed,
            hasher: std::collections::hash_map::RandomState::new(),
            wake: Mutex::new(None),
            epoch: now(),
            bell: Condvar::new(),
            stats: std::sync::OnceLock::new(),
            stats_enabled: params.enable_stats,
            send_errors: Mutex::new(Vec::new()),
            fr_default: (params.fr_timeout, params.fr_inv_timeout),
            onreply_avp_mode: params.onreply_avp_mode,
        }
    }

    /// The first timer tick at or after `t`. The timer thread wakes on ticks only, so the
    /// timers of many transactions fire in one wake-up (and a cancelled timer still in the
    /// heap costs no wake-up of its own); a tick is far below T1, the finest RFC 3261 timer.
    fn tick_at(&self, t: Instant) -> Instant {
        let since = t.saturating_duration_since(self.epoch);
        let tick = TIMER_TICK.as_nanos();
        let ticks = since.as_nanos().div_ceil(tick);
        let d = u64::try_from(ticks.saturating_mul(tick)).unwrap_or(u64::MAX);
        self.epoch.checked_add(Duration::from_nanos(d)).unwrap_or(t)
    }

    /// Transactions in the tables now (`tm:inuse_transactions`).
    fn in_use(&self) -> u64 {
        self.shards.iter().map(|s| s.lock().txns.len() as u64).sum()
    }

    fn stat(&self, f: impl FnOnce(&TmStats)) {
        if let Some(s) = self.stats.get() {
            f(s);
        }
    }

    /// Counts a final reply sent on a server transaction, by class.
    fn count_final(&self, code: u16) {
        if (200..700).contains(&code) {
            self.stat(|s| s.finals[usize::from(code / 100 - 2)].inc());
        }
    }

    fn shard(&self, i: usize) -> &Mutex<Shard> {
        // `i` always comes from `request_shard`/`reply_shard` (< SHARDS).
        &self.shards[i % SHARDS]
    }

    /// The shard of a request: its top Via branch with the RFC 3261 cookie, else its Call-ID
    /// (so retransmissions, the ACK and the CANCEL meet the INVITE's transaction).
    fn request_shard(&self, msg: &SipMsg) -> usize {
        let mut h = self.hasher.build_hasher();
        match msg.via1() {
            Ok(v) if v.has_rfc3261_branch() => v.branch().unwrap_or_default().hash(&mut h),
            _ => msg.call_id().unwrap_or_default().hash(&mut h),
        }
        usize::try_from(h.finish() % SHARDS as u64).unwrap_or(0)
    }

    fn new_branch_id(&self, shard: usize) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!(
            "{}{shard}{:x}.{n:x}",
            String::from_utf8_lossy(PREFIX),
            self.seed & 0xff_ffff
        )
    }

    /// Sends what shard `i` queued and moves its events to this thread's queue, until the
    /// shard has nothing more; then tells the timer thread about an earlier timer.
    fn pump(&self, rt: &Runtime, i: usize) {
        loop {
            let mut out: Vec<(Dest, Bytes, Option<TxnRef>)> = Vec::new();
            let mut evs: Vec<TxnEvent> = Vec::new();
            let next = {
                let mut g = self.shard(i).lock();
                let sh = &mut *g;
                while let Some((t, data)) = sh.table.poll_transmit_bytes() {
                    let dest = match t.txn {
                        Some(TxnRef::Server(sk)) => sh.txns.get(&sk).map(|x| x.dest),
                        _ => None,
                    }
                    .unwrap_or_else(|| Dest {
                        proto: proto_of(t.dest.transport),
                        addr: t.dest.addr,
                        socket: None,
                        conn: None,
                    });
                    out.push((dest, data, t.txn));
                }
                while let Some(e) = sh.table.poll_event() {
                    evs.push(e);
                }
                sh.table.poll_timeout()
            };
            if let Some(n) = next {
                let n = self.tick_at(n);
                let mut w = self.wake.lock();
                if w.is_none_or(|cur| n < cur) {
                    *w = Some(n);
                    self.bell.notify_one();
                }
            }
            if out.is_empty() && evs.is_empty() {
                return;
            }
            PENDING.with(|p| p.borrow_mut().extend(evs.into_iter().map(|e| (i, e))));
            let Some(tx) = rt.transports() else {
                continue;
            };
            for (dest, data, txn) in out {
                if tx.send(&dest, data).is_err()
                    && let Some(r @ TxnRef::Client(_)) = txn
                {
                    self.shard(i).lock().table.handle_transport_error(now(), r);
                }
            }
        }
    }

    /// Dispatches the events queued on this thread (runs onreply and failure routes). Call
    /// only where no script runs on this thread.
    fn dispatch_pending(&self, rt: &Arc<Runtime>) {
        while let Some((i, ev)) = PENDING.with(|p| p.borrow_mut().pop_front()) {
            self.dispatch(rt, i, ev);
        }
    }

    fn dispatch(&self, rt: &Arc<Runtime>, i: usize, ev: TxnEvent) {
        match ev {
            TxnEvent::Reply {
                branch,
                server,
                msg,
                relay,
            } => {
                self.stat(|s| s.received_replies.inc());
                if server.is_none() && self.is_local(i, branch) {
                    self.local_reply(i, branch, Ok(msg));
                    return;
                }
                self.on_branch_reply(rt, i, branch, server, msg, relay);
            }
            TxnEvent::BranchFailed { branch, code, .. } => {
                if self.is_local(i, branch) {
                    self.local_reply(i, branch, Err(code));
                    return;
                }
                let mut g = self.shard(i).lock();
                let sh = &mut *g;
                if let Some(b) = sh.branches.get(&branch).copied()
                    && let Some(t) = sh.txns.get_mut(&b.server)
                {
                    t.last_local = true;
                    if let Some(d) = t.dns.iter_mut().find(|d| d.branch == branch) {
                        d.code = code;
                    }
                    if let Some(d) = t.bdata.get_mut(b.idx) {
                        d.final_code = code;
                    }
                }
            }
            TxnEvent::BestFinal { txn, code, msg } => self.on_best_final(rt, i, txn, code, msg),
            TxnEvent::Cancelled { txn } => {
                let local = {
                    let g = self.shard(i).lock();
                    g.table.branches(txn).is_empty()
                };
                if local {
                    let r = self.shard(i).lock().table.reply(now(), txn, 487, None);
                    if r.is_ok() {
                        self.stat(|s| s.local_replies.inc());
                        self.count_final(487);
                    }
                    self.pump(rt, i);
                }
            }
            TxnEvent::Terminated { txn } => {
                let mut g = self.shard(i).lock();
                match txn {
                    TxnRef::Server(sk) => {
                        g.txns.remove(&sk);
                    }
                    TxnRef::Client(ck) => {
                        g.branches.remove(&ck);
                        g.locals.remove(&ck);
                    }
                }
            }
            TxnEvent::StrayReply { msg, .. } => crate::runtime::relay_reply_by_via(rt, msg),
            // Requests and ACKs are never fed to the table as new messages; a timer-H
            // timeout needs nothing from tm.
            _ => {}
        }
    }

    fn is_local(&self, i: usize, ck: ClientKey) -> bool {
        self.shard(i).lock().locals.contains_key(&ck)
    }

    /// A reply (or a local failure) of a client transaction tm started on its own.
    fn local_reply(&self, i: usize, ck: ClientKey, r: Result<SipMsg, u16>) {
        let mut g = self.shard(i).lock();
        let fin = match &r {
            Ok(m) => m.status().unwrap_or(0) >= 200,
            Err(_) => true,
        };
        if let Some(Local::Uac(tx)) = g.locals.get(&ck)
            && fin
        {
            let _ = tx.send(r);
            g.locals.insert(ck, Local::Replica);
        }
    }

    fn on_branch_reply(
        &self,
        rt: &Arc<Runtime>,
        i: usize,
        branch: ClientKey,
        server: Option<ServerKey>,
        msg: SipMsg,
        relay: bool,
    ) {
        let code = msg.status().unwrap_or(0);
        let prog = rt.program();
        let global = prog.route(RouteKind::OnReply, None).is_some();
        let (route, idx, src, tctx, bavps, buri) = {
            let mut g = self.shard(i).lock();
            let sh = &mut *g;
            let b = sh.branches.get(&branch).copied();
            match b.and_then(|b| sh.txns.get_mut(&b.server).map(|t| (b, t))) {
                Some((b, t)) => {
                    t.any_received = true;
                    if let Some(d) = t.dns.iter_mut().find(|d| d.branch == branch) {
                        d.received = true;
                        if code >= 200 {
                            d.code = code;
                        }
                    }
                    if code >= 200 {
                        t.last_local = false;
                    }
                    let routes = global || t.on_reply.is_some();
                    let d = t.bdata.get_mut(b.idx);
                    let (bavps, buri) = match d {
                        Some(d) => {
                            d.last_code = code;
                            if code >= 200 {
                                d.final_code = code;
                            }
                            if routes {
                                (Some(d.bavps.clone()), Some(d.uri.clone()))
                            } else {
                                (None, None)
                            }
                        }
                        None => (None, None),
                    };
                    (
                        t.on_reply.clone(),
                        Some(b.idx),
                        Some(t.src),
                        Some(t.ctx.clone()),
                        bavps,
                        buri,
                    )
                }
                None => (None, b.map(|b| b.idx), None, None, None, None),
            }
        };
        let had_bavps = bavps.as_ref().is_some_and(|v| !v.is_empty());
        let mut msg = msg;
        if global || route.is_some() {
            let out = crate::runtime::with_cx(rt, &prog, |cx| {
                crate::runtime::prepare_cx(cx, src.as_ref());
                cx.set_message(msg);
                if let Some(c) = &tctx {
                    cx.restore_txn_ctx(c);
                }
                if let Some(st) = cx.state::<TmState>() {
                    st.txn = server.map(|s| (i, s));
                    st.code = code;
                    st.branch = idx;
                    st.client = Some(branch);
                    st.last_code = Some(code);
                    st.bavps = bavps.unwrap_or_default();
                    st.bavp_on = true;
                    st.t_ruri = buri;
                }
                let mut dropped = false;
                if global {
                    dropped |= matches!(cx.run_route(RouteKind::OnReply, None), Outcome::Drop);
                }
                if let Some(r) = &route
                    && !dropped
                {
                    dropped |= matches!(cx.run_route(RouteKind::OnReply, Some(r)), Outcome::Drop);
                }
                // onreply_avp_mode 1: the route's AVP changes go back to the transaction.
                let kept = match &tctx {
                    Some(c) if self.onreply_avp_mode => Some(cx.save_txn_ctx().with_flags_of(c)),
                    _ => None,
                };
                let bavps = cx
                    .state::<TmState>()
                    .map(|st| std::mem::take(&mut st.bavps));
                let m = cx.take_message();
                cx.clear_message();
                (m, dropped, kept, bavps)
            });
            let (m, dropped, kept, bavps) = out;
            let changed =
                kept.is_some() || had_bavps || bavps.as_ref().is_some_and(|v| !v.is_empty());
            if let (Some(b), Some(idx), true) = (server, idx, changed) {
                let mut g = self.shard(i).lock();
                if let Some(t) = g.txns.get_mut(&b) {
                    if let Some(c) = kept {
                        t.ctx = c;
                    }
                    if let (Some(d), Some(v)) = (t.bdata.get_mut(idx), bavps) {
                        d.bavps = v;
                    }
                }
            }
            let Some(m) = m else {
                return;
            };
            // drop() stops only provisional replies.
            if dropped && code < 200 {
                return;
            }
            msg = m;
        }
        if !relay {
            return;
        }
        msg.pop_via();
        match server {
            Some(sk) => {
                let r = self.send_final_or_provisional(i, sk, code, &msg);
                if r.is_ok() {
                    rt.counters.fwd_replies.fetch_add(1, Ordering::Relaxed);
                    self.stat(|s| s.relayed_replies.inc());
                    if code >= 200 {
                        self.count_final(code);
                    }
                }
                self.pump(rt, i);
            }
            None => {
                // A 2xx after the server transaction ended: relayed statelessly (RFC 6026).
                let mut out = Vec::with_capacity(msg.raw().len() + 64);
                if msg.write_to(&mut out).is_ok()
                    && let Ok(m) = SipMsg::parse(Bytes::from(out))
                {
                    crate::runtime::relay_reply_by_via(rt, m);
                }
            }
        }
    }

    /// Relays a reply on server transaction `sk`; a final one settles the transaction.
    fn send_final_or_provisional(
        &self,
        i: usize,
        sk: ServerKey,
        code: u16,
        msg: &SipMsg,
    ) -> Result<(), TxnError> {
        let mut g = self.shard(i).lock();
        let r = g.table.send_reply(now(), sk, msg);
        if r.is_ok()
            && code >= 200
            && let Some(t) = g.txns.get_mut(&sk)
        {
            t.settle();
        }
        r
    }

    fn on_best_final(&self, rt: &Arc<Runtime>, i: usize, sk: ServerKey, code: u16, msg: SipMsg) {
        if code >= 300 && self.dns_failover(rt, i, sk) {
            return;
        }
        let failure = {
            let mut g = self.shard(i).lock();
            let nb = g.table.branches(sk).len();
            let selected = g.table.selected_branch(sk).map(|(idx, _)| idx);
            g.txns.get_mut(&sk).and_then(|t| {
                if code >= 300 {
                    let win = t.winning_branch(selected, code);
                    t.on_failure
                        .take()
                        .map(|r| (r, t.base.clone(), t.src, nb, t.ctx.clone(), win))
                } else {
                    None
                }
            })
        };
        if let Some((route, base, src, before, tctx, win)) = failure {
            let prog = rt.program();
            if prog.route(RouteKind::Failure, Some(&route)).is_some()
                && let Ok(req) = SipMsg::parse(base)
            {
                let out = crate::runtime::with_cx(rt, &prog, |cx| {
                    crate::runtime::prepare_cx(cx, Some(&src));
                    cx.set_message(req);
                    cx.restore_txn_ctx(&tctx);
                    if let Some(st) = cx.state::<TmState>() {
                        st.txn = Some((i, sk));
                        st.code = code;
                        st.failure = true;
                        st.bavp_on = true;
                        if let Some((idx, uri, last, bavps)) = win {
                            st.branch = Some(idx);
                            st.t_ruri = Some(uri);
                            st.last_code = Some(last);
                            st.bavps = bavps;
                        }
                    }
                    let o = cx.run_route(RouteKind::Failure, Some(&route));
                    cx.clear_message();
                    o
                });
                if let Outcome::Error(e) = out {
                    rt.log
                        .log(crate::logging::L_ERR, &format!("failure_route: {e}"));
                }
                // Branches added in the failure route send events of their own.
                self.dispatch_pending(rt);
                let g = self.shard(i).lock();
                let answered = !matches!(
                    g.table.server_state(sk),
                    Some(ServerState::Proceeding | ServerState::Trying)
                );
                let forked = g.table.branches(sk).len() > before;
                drop(g);
                if answered || forked {
                    return;
                }
            }
        }
        let r = self.send_final_or_provisional(i, sk, code, &msg);
        if r.is_ok() {
            rt.counters.fwd_replies.fetch_add(1, Ordering::Relaxed);
            self.stat(|s| s.relayed_replies.inc());
            self.count_final(code);
        }
        self.pump(rt, i);
    }

    /// A received reply: handled by its client transaction when it is one of ours; `Some`
    /// gives it back for the stateless relay.
    pub(crate) fn on_reply(&self, rt: &Arc<Runtime>, msg: SipMsg, src: &Source) -> Option<SipMsg> {
        let Some(i) = reply_shard(&msg) else {
            return Some(msg);
        };
        let peer = Peer {
            transport: transport_of(src.proto),
            addr: src.remote,
        };
        let r = self.shard(i).lock().table.handle_message(now(), msg, peer);
        if r.is_err() {
            return None;
        }
        self.pump(rt, i);
        self.dispatch_pending(rt);
        None
    }

    /// An asynchronous send failure towards `dst` (the transports' connect task): queued for
    /// the timer thread, which fails the client transactions sending there (503, and so DNS
    /// failover or the failure route) where script routes may run.
    pub(crate) fn on_send_error(&self, dst: &Dest) {
        self.send_errors.lock().push(Peer {
            transport: transport_of(dst.proto),
            addr: dst.addr,
        });
        let mut w = self.wake.lock();
        *w = Some(now());
        self.bell.notify_one();
    }

    /// Fails the client transactions of the queued asynchronous send failures.
    fn fail_unreachable(&self, rt: &Runtime) {
        let peers = std::mem::take(&mut *self.send_errors.lock());
        if peers.is_empty() {
            return;
        }
        for i in 0..SHARDS {
            let hit = {
                let mut g = self.shard(i).lock();
                let sh = &mut *g;
                let dead: Vec<ClientKey> = sh
                    .branches
                    .keys()
                    .chain(sh.locals.keys())
                    .copied()
                    .filter(|ck| {
                        sh.table
                            .client_peer(*ck)
                            .is_some_and(|p| peers.contains(&p))
                    })
                    .collect();
                let t = now();
                for ck in &dead {
                    sh.table.handle_transport_error(t, TxnRef::Client(*ck));
                }
                !dead.is_empty()
            };
            if hit {
                self.pump(rt, i);
            }
        }
    }

    /// The timer thread: fires due timers of every shard and dispatches their events.
    pub(crate) fn run_timers(&self, rt: &Arc<Runtime>) {
        while !rt.is_stopping() {
            {
                let mut w = self.wake.lock();
                let cap = now() + Duration::from_millis(200);
                let until = w.map_or(cap, |t| t.min(cap));
                if until > now() {
                    let _ = self.bell.wait_until(&mut w, until);
                }
                *w = None;
            }
            self.fail_unreachable(rt);
            let t = now();
            for i in 0..SHARDS {
                let due = {
                    let mut g = self.shard(i).lock();
                    let due = g.table.poll_timeout().is_some_and(|d| d <= t);
                    if due {
                        g.table.handle_timeout(t);
                    }
                    due
                };
                if due {
                    self.pump(rt, i);
                } else if let Some(n) = self.shard(i).lock().table.poll_timeout() {
                    let n = self.tick_at(n);
                    let mut w = self.wake.lock();
                    if w.is_none_or(|cur| n < cur) {
                        *w = Some(n);
                    }
                }
            }
            self.dispatch_pending(rt);
        }
    }

    // ----- operations behind the script functions -----

    /// The transaction of the current request, created if needed (`t_newtran`). `Ok(None)`:
    /// a retransmission, answered and to be stopped.
    fn ensure_txn(
        &self,
        rt: &Runtime,
        cx: &mut MsgCx,
    ) -> Result<Option<(usize, ServerKey, bool)>, i32> {
        if let Some((i, sk)) = cx.peek_state::<TmState>().and_then(|s| s.txn) {
            return Ok(Some((i, sk, false)));
        }
        let Some(src) = current_source() else {
            return Err(-1);
        };
        let Some(msg) = cx.msg() else {
            return Err(-1);
        };
        let i = self.request_shard(msg);
        let dest = reply_dest(rt, msg, &src);
        let peer = Peer {
            transport: transport_of(dest.proto),
            addr: dest.addr,
        };
        let created = {
            let mut g = self.shard(i).lock();
            match g.table.new_transaction(now(), msg, peer) {
                Ok(NewTxn::Created(sk)) => {
                    // The table keeps the request as written: share that buffer.
                    let base = g.table.request(sk).unwrap_or_else(|| written(msg));
                    let cseq = msg.cseq().map(|c| c.number()).unwrap_or(0);
                    g.txns.insert(
                        sk,
                        TmTxn {
                            base,
                            src,
                            dest,
                            on_failure: None,
                            on_reply: None,
                            on_branch: None,
                            rr: None,
                            nbranches: 0,
                            any_received: false,
                            last_local: false,
                            // filled by relay(), the only way to branches (and so to the
                            // reply and failure routes that read it)
                            ctx: TxnCtx::default(),
                            hdrs: Vec::new(),
                            cancel_reason: Vec::new(),
                            callid: msg.call_id().unwrap_or_default().into(),
                            cseq,
                            invite: msg.method() == Some(Method::Invite),
                            flags: 0,
                            dns: Vec::new(),
                            bdata: Vec::new(),
                        },
                    );
                    self.stat(|s| s.uas.inc());
                    Some(sk)
                }
                Ok(NewTxn::Retransmission(_)) => None,
                Err(TxnError::BadMessage(_)) => return Err(-2),
                Err(_) => return Err(-1),
            }
        };
        self.pump(rt, i);
        let Some(sk) = created else {
            return Ok(None);
        };
        let pend = cx.state::<TmState>().map(|st| {
            st.txn = Some((i, sk));
            (
                st.on_failure.take(),
                st.on_reply.take(),
                st.on_branch.take(),
                std::mem::take(&mut st.hdrs),
                st.cancel_reason.take(),
                std::mem::take(&mut st.timers),
            )
        });
        if let Some((f, r, b, hdrs, reason, timers)) = pend {
            let mut g = self.shard(i).lock();
            let sh = &mut *g;
            if let Some(t) = sh.txns.get_mut(&sk) {
                t.on_failure = f;
                t.on_reply = r;
                t.on_branch = b;
                t.hdrs = hdrs;
                t.cancel_reason = reason.unwrap_or_default();
                sh.table.set_cancel_headers(sk, t.cancel_headers());
                sh.table
                    .set_ack_headers(sk, Bytes::copy_from_slice(&t.hdrs));
                sh.table.set_branch_timers(sk, timers);
            }
        }
        Ok(Some((i, sk, true)))
    }

    /// A stateful local reply on the current transaction.
    fn reply(&self, rt: &Runtime, cx: &mut MsgCx, code: u16, reason: &[u8], extra: &[u8]) -> i32 {
        let (i, sk) = match self.ensure_txn(rt, cx) {
            Ok(Some((i, sk, _))) => (i, sk),
            Ok(None) => return 0,
            Err(e) => return e,
        };
        let hdrs = [cx.reply_headers(), extra].concat();
        if let Some(st) = cx.state::<TmState>() {
            st.code = code;
        }
        if self.reply_on(rt, i, sk, code, reason, &hdrs) {
            1
        } else {
            -1
        }
    }

    /// A local reply on transaction `sk` of shard `i` (`t_reply_by_callid`, MI `t_reply`).
    fn reply_on(
        &self,
        rt: &Runtime,
        i: usize,
        sk: ServerKey,
        code: u16,
        reason: &[u8],
        hdrs: &[u8],
    ) -> bool {
        self.reply_on_full(rt, i, sk, code, reason, hdrs, None)
    }

    /// [`Self::reply_on`] with a body `(content type, body)` (`t_reply_with_body`).
    #[allow(clippy::too_many_arguments)] // a reply's parts
    fn reply_on_full(
        &self,
        rt: &Runtime,
        i: usize,
        sk: ServerKey,
        code: u16,
        reason: &[u8],
        hdrs: &[u8],
        body: Option<(&[u8], &[u8])>,
    ) -> bool {
        let r = {
            let mut g = self.shard(i).lock();
            let r = g
                .table
                .reply_full(now(), sk, code, reason, None, hdrs, body);
            if r.is_ok()
                && code >= 200
                && let Some(t) = g.txns.get_mut(&sk)
            {
                t.settle();
            }
            r
        };
        // Counted before it leaves, so whoever got the reply sees it in the statistics.
        if r.is_ok() {
            rt.counters.sl_sent(code);
            self.stat(|s| s.local_replies.inc());
            if code >= 200 {
                self.count_final(code);
            }
        }
        self.pump(rt, i);
        r.is_ok()
    }

    /// The INVITE server transaction with this Call-ID and CSeq number.
    fn find_invite(&self, callid: &[u8], cseq: u32) -> Option<(usize, ServerKey)> {
        (0..SHARDS).find_map(|i| {
            let g = self.shard(i).lock();
            g.txns
                .iter()
                .find(|(_, t)| t.invite && t.cseq == cseq && &*t.callid == callid)
                .map(|(sk, _)| (i, *sk))
        })
    }

    /// `t_replicate`: a copy of the current request as a client transaction of its own
    /// towards `dest` (a URI); its replies are absorbed.
    fn replicate(&self, rt: &Runtime, cx: &mut MsgCx, dest: &[u8]) -> i32 {
        let Some(src) = current_source() else {
            return -1;
        };
        let Some(msg) = cx.msg() else {
            return -1;
        };
        let i = self.request_shard(msg);
        let uri = cx.ruri().to_vec();
        let Some(mark) = cx.msg().map(SipMsg::edit_mark) else {
            return -1;
        };
        let id = self.new_branch_id(i);
        let b = BranchTarget {
            uri: &uri,
            duri: dest,
            path: b"",
        };
        let built = build_branch(rt, cx, &src, &b, &id, None, b"");
        if let Some(m) = cx.msg_mut() {
            m.truncate_edits(mark);
        }
        let (bytes, peer, _, _) = match built {
            Ok(x) => x,
            Err(e) => return e,
        };
        let r = {
            let mut g = self.shard(i).lock();
            let r = g.table.send_request(now(), bytes, peer, None);
            if let Ok(ck) = r {
                g.locals.insert(ck, Local::Replica);
            }
            r
        };
        self.pump(rt, i);
        match r {
            Ok(_) => {
                self.stat(|s| s.uac.inc());
                1
            }
            Err(TxnError::BadMessage(_)) => -2,
            Err(_) => -1,
        }
    }

    /// `t_relay()` of a CANCEL: answered 200 and the INVITE's branches cancelled when the
    /// INVITE transaction exists; else forwarded statelessly.
    fn relay_cancel(&self, rt: &Runtime, cx: &mut MsgCx, flags: u8) -> i32 {
        let Some(src) = current_source() else {
            return -1;
        };
        let Some(msg) = cx.msg() else {
            return -1;
        };
        let i = self.request_shard(msg);
        let known = {
            let g = self.shard(i).lock();
            g.table.find_cancelled(msg).ok().flatten().is_some()
                || g.table.find_server(msg).ok().flatten().is_some()
        };
        if !known {
            return crate::fns::forward_current(cx);
        }
        let Ok(copy) = SipMsg::parse(written(msg)) else {
            return -2;
        };
        let reason = cx
            .peek_state::<TmState>()
            .and_then(|s| s.cancel_reason.clone())
            .or_else(|| {
                // `pass-reason-hdr`: the CANCEL's own Reason goes on to the branches.
                let h = (flags & relay_flags::PASS_REASON_HDR != 0)
                    .then(|| msg.header_named(b"Reason"))
                    .flatten()?;
                Some([msg.name(h), b": ", msg.value(h), b"\r\n"].concat())
            });
        if let Some(reason) = reason {
            let mut g = self.shard(i).lock();
            let sh = &mut *g;
            if let Some(sk) = sh.table.find_cancelled(msg).ok().flatten()
                && let Some(t) = sh.txns.get_mut(&sk)
            {
                t.cancel_reason = reason;
                sh.table.set_cancel_headers(sk, t.cancel_headers());
            }
        }
        let dest = reply_dest(rt, msg, &src);
        let peer = Peer {
            transport: transport_of(dest.proto),
            addr: dest.addr,
        };
        let r = self.shard(i).lock().table.handle_message(now(), copy, peer);
        self.pump(rt, i);
        if r.is_ok() { 1 } else { -1 }
    }

    /// Forks the current request to its destination set as branches of `sk`.
    fn relay(
        &self,
        rt: &Runtime,
        cx: &mut MsgCx,
        (i, sk): (usize, ServerKey),
        failure: bool,
        flags: u8,
        proxy: Option<&[u8]>,
    ) -> i32 {
        // (R-URI, destination, path) per branch; a path (from registrar's lookup) becomes
        // Route headers of that branch, RFC 3327.
        let mut targets: Vec<OwnedTarget> = Vec::new();
        if !failure || cx.new_ruri().is_some() || !cx.dst_uri().is_empty() {
            targets.push((
                cx.ruri().to_vec(),
                cx.dst_uri().to_vec(),
                cx.path().to_vec(),
                cx.bflags(),
            ));
        }
        for b in cx.branches() {
            targets.push((b.uri.clone(), b.duri.clone(), b.path.clone(), b.flags));
        }
        let keep_on_2xx = flags & relay_flags::ALLOW_NO_CANCEL != 0
            && cx.msg().is_some_and(request_disposition_no_cancel);
        let (src, rr_saved, on_branch, extra, dns) = {
            let mut g = self.shard(i).lock();
            let sh = &mut *g;
            match sh.txns.get_mut(&sk) {
                Some(t) => {
                    // flags and AVPs set since t_newtran (or by a failure route) go with it
                    t.ctx = cx.save_txn_ctx();
                    t.flags |= flags;
                    if keep_on_2xx {
                        sh.table.set_keep_branches_on_2xx(sk, true);
                    }
                    let dns =
                        t.flags & relay_flags::NO_DNS_FAILOVER == 0 && !rt.cfg.disable_dns_failover;
                    (
                        t.src,
                        t.rr.clone(),
                        t.on_branch.clone(),
                        t.hdrs.clone(),
                        dns,
                    )
                }
                None => return -1,
            }
        };
        if targets.is_empty() {
            return -3;
        }
        // The request-level destination the branch routes temporarily replace.
        let saved = on_branch.as_ref().map(|_| {
            (
                cx.new_ruri().map(<[u8]>::to_vec),
                cx.dst_uri().to_vec(),
                cx.path().to_vec(),
                cx.bflags(),
            )
        });
        let mut ret = -3;
        let mut sent = false;
        for (mut uri, mut duri, mut path, bflags) in targets {
            let Some(mark) = cx.msg().map(SipMsg::edit_mark) else {
                return -1;
            };
            // branch_route: runs once per branch with $ru/$du/path/branch flags of that
            // branch; its header edits stay on this branch only; `drop` discards it.
            // `$bavp` set by the branch route belong to this branch only.
            let mut bavps = Bavps::new();
            if let Some(name) = &on_branch {
                if let Some(st) = cx.state::<TmState>() {
                    st.bavps.clear();
                    st.bavp_on = true;
                }
                cx.set_ruri(&uri);
                cx.set_dst_uri(&duri);
                cx.set_path(&path);
                cx.set_bflags(bflags);
                let out = cx.run_route_nested(RouteKind::Branch, Some(name));
                if let Some(st) = cx.state::<TmState>() {
                    st.bavp_on = st.failure;
                }
                match out {
                    Outcome::Drop => {
                        if let Some(m) = cx.msg_mut() {
                            m.truncate_edits(mark);
                        }
                        continue;
                    }
                    Outcome::Error(e) => {
                        rt.log.log(
                            crate::logging::L_ERR,
                            &format!("ERROR: branch_route[{name}]: {e}"),
                        );
                    }
                    _ => {}
                }
                uri = cx.ruri().to_vec();
                duri = cx.dst_uri().to_vec();
                path = cx.path().to_vec();
                if let Some(st) = cx.state::<TmState>() {
                    bavps = std::mem::take(&mut st.bavps);
                    st.bavp_on = st.failure;
                }
            }

            // t_relay's outbound proxy: every branch goes there, its R-URI unchanged.
            if let Some(p) = proxy {
                p.clone_into(&mut duri);
            }
            let id = self.new_branch_id(i);
            let b = BranchTarget {
                uri: &uri,
                duri: &duri,
                path: &path,
            };
            let built = build_branch(rt, cx, &src, &b, &id, rr_saved.as_deref(), &extra);
            if let Some(m) = cx.msg_mut() {
                m.truncate_edits(mark);
            }
            let (bytes, peer, rr, rest) = match built {
                Ok(x) => x,
                Err(e) => {
                    ret = e;
                    continue;
                }
            };
            let copy = (dns && !rest.is_empty()).then(|| bytes.clone());
            let r = {
                let mut g = self.shard(i).lock();
                let sh = &mut *g;
                let r = sh.table.send_request(now(), bytes, peer, Some(sk));
                if let Ok(ck) = r
                    && let Some(t) = sh.txns.get_mut(&sk)
                {
                    if let Some(req) = copy {
                        t.dns.push(DnsAlt::new(ck, req, rest));
                    }
                    sh.branches.insert(
                        ck,
                        BranchInfo {
                            server: sk,
                            idx: t.nbranches,
                        },
                    );
                    t.nbranches += 1;
                    t.bdata.push(BranchData {
                        uri: uri.as_slice().into(),
                        bavps,
                        ..BranchData::default()
                    });
                    if t.rr.is_none() {
                        t.rr = rr;
                    }
                }
                r
            };
            match r {
                Ok(_) => {
                    sent = true;
                    self.stat(|s| s.uac.inc());
                    rt.counters.fwd_requests.fetch_add(1, Ordering::Relaxed);
                }
                Err(TxnError::WrongState(_)) => ret = -3,
                Err(TxnError::BadMessage(_)) => ret = -2,
                Err(_) => ret = -1,
            }
            self.pump(rt, i);
        }
        if let Some((ruri, duri, path, bflags)) = saved {
            match ruri {
                Some(r) => cx.set_ruri(&r),
                None => cx.clear_new_ruri(),
            }
            cx.set_dst_uri(&duri);
            cx.set_path(&path);
            cx.set_bflags(bflags);
        }
        if sent { 1 } else { ret }
    }

    /// DNS failover (OpenSIPS's, RFC 3263 §4.3): the transaction completed and its selected
    /// branch timed out with no reply at all, could not be sent (local 503) or got a 503; if
    /// its host resolved to further targets, the branch's request goes to the next one as a
    /// new branch, and neither the failure route nor the final reply happen yet. True when a
    /// new branch went out.
    fn dns_failover(&self, rt: &Runtime, i: usize, sk: ServerKey) -> bool {
        let mut d = {
            let mut g = self.shard(i).lock();
            let sh = &mut *g;
            let Some((_, ck)) = sh.table.selected_branch(sk) else {
                return false;
            };
            let Some(t) = sh.txns.get_mut(&sk) else {
                return false;
            };
            let Some(pos) = t
                .dns
                .iter()
                .position(|d| d.branch == ck || d.earlier.contains(&ck))
            else {
                return false;
            };
            // The latest attempt towards this host decides (OpenSIPS: a timeout with no
            // reply at all, or a 503, received or local from a send failure).
            let d = &t.dns[pos];
            let failed = match d.code {
                408 => !d.received,
                503 => true,
                _ => false,
            };
            if !failed || d.rest.is_empty() {
                return false;
            }
            t.dns.swap_remove(pos)
        };
        let mut rest = std::mem::take(&mut d.rest);
        let mut earlier = std::mem::take(&mut d.earlier);
        earlier.push(d.branch);
        while !rest.is_empty() {
            let peer = rest.remove(0);
            let id = self.new_branch_id(i);
            let Some(bytes) = retarget(rt, &d.req, peer, &id) else {
                continue;
            };
            let copy = (!rest.is_empty()).then(|| bytes.clone());
            let r = {
                let mut g = self.shard(i).lock();
                let sh = &mut *g;
                let r = sh.table.send_request(now(), bytes, peer, Some(sk));
                if let Ok(ck) = r
                    && let Some(t) = sh.txns.get_mut(&sk)
                {
                    sh.branches.insert(
                        ck,
                        BranchInfo {
                            server: sk,
                            idx: t.nbranches,
                        },
                    );
                    t.nbranches += 1;
                    if let Some(req) = copy {
                        let mut next = DnsAlt::new(ck, req, std::mem::take(&mut rest));
                        next.earlier = std::mem::take(&mut earlier);
                        t.dns.push(next);
                    }
                }
                r
            };
            match r {
                Ok(_) => {
                    self.stat(|s| s.uac.inc());
                    rt.counters.fwd_requests.fetch_add(1, Ordering::Relaxed);
                    self.pump(rt, i);
                    return true;
                }
                // The transaction can take no new branch (answered, cancelled).
                Err(TxnError::WrongState(_) | TxnError::NoTransaction) => return false,
                Err(_) => {}
            }
        }
        false
    }
}

/// A branch's request as sent (`req`) readied for another target: our Via replaced by one
/// for the socket that reaches `peer`, with branch `branch`.
fn retarget(rt: &Runtime, req: &Bytes, peer: Peer, branch: &str) -> Option<Bytes> {
    let tx = rt.transports()?;
    let sock = tx.socket_for(proto_of(peer.transport), &peer.addr)?;
    let (host, port) = crate::runtime::socket_host_port(sock);
    let via = sipox_proxy::via_value(peer.transport, &host, port, branch, false);
    let mut msg = SipMsg::parse(req.clone()).ok()?;
    if !msg.pop_via() {
        return None;
    }
    msg.push_via(via.as_bytes());
    let mut out = Vec::with_capacity(req.len() + 16);
    msg.write_to(&mut out).ok()?;
    Some(Bytes::from(out))
}

/// RFC 3841 §9.1: the request asks that a 2xx not cancel the other branches
/// (`Request-Disposition: no-cancel`, compact form `d`).
fn request_disposition_no_cancel(msg: &SipMsg) -> bool {
    msg.headers_named(b"Request-Disposition")
        .chain(msg.headers_named(b"d"))
        .any(|h| {
            msg.value(h)
                .split(|&c| c == b',')
                .any(|v| v.trim_ascii().eq_ignore_ascii_case(b"no-cancel"))
        })
}

/// Header lines as MI gives them (real CRLFs, bare LFs or escaped `\r\n`), CRLF-ended.
pub(crate) fn lines(s: &str) -> Vec<String> {
    s.replace("\\r\\n", "\n")
        .replace("\r\n", "\n")
        .split('\n')
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && *l != ".")
        .map(str::to_owned)
        .collect()
}

fn name_of(line: &str) -> String {
    line.split(':')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

pub(crate) fn has(ls: &[String], long: &str, short: &str) -> bool {
    ls.iter().any(|l| {
        let n = name_of(l);
        n == long || n == short
    })
}

/// A request tm sends on its own (MI `t_uac_dlg`, `t_new_request`): header lines without
/// CRLF; From and To are among them.
pub(crate) struct UacRequest<'a> {
    method: &'a str,
    ruri: &'a str,
    hdrs: &'a [String],
    next_hop: Option<&'a str>,
    socket: Option<&'a str>,
    body: Option<&'a str>,
    /// `t_new_request`'s context: `$avp(uac_ctx)` in the local route.
    ctx: Option<&'a str>,
}

/// Why a local request did not go out.
#[derive(Debug)]
pub(crate) enum UacError {
    /// The next hop is no usable SIP URI or does not resolve.
    BadHop,
    /// No (such) local socket for it.
    NoSocket,
    /// The transaction could not start.
    Failed,
    /// The local route dropped it.
    Dropped,
}

impl Tm {
    /// Builds a request of tm's own (Via with a new branch, From tag, Call-ID, CSeq,
    /// Max-Forwards when missing), runs `local_route` over it (header changes go out, `drop`
    /// stops it) and starts its client transaction; `local` says where its replies go.
    fn send_local(
        &self,
        rt: &Arc<Runtime>,
        r: &UacRequest<'_>,
        local: Local,
    ) -> Result<(), UacError> {
        let hop = r.next_hop.unwrap_or(r.ruri);
        let u = sipox_sip_msg::uri(hop.as_bytes()).map_err(|_| UacError::BadHop)?;
        let target = sipox_proxy::request_target(&u).map_err(|_| UacError::BadHop)?;
        let (addr, transport) = match target.socket_addr() {
            Some(a) => (a, target.transport),
            None => crate::fns::resolve_name(rt, &target).ok_or(UacError::BadHop)?,
        };
        let tx = rt.transports().ok_or(UacError::Failed)?;
        let sock = match r.socket {
            Some(s) => tx
                .sockets()
                .iter()
                .find(|si| {
                    let spec = format!("{}:{}", si.proto.as_str(), si.local);
                    spec.eq_ignore_ascii_case(s.trim()) || si.local.to_string() == s.trim()
                })
                .ok_or(UacError::NoSocket)?,
            None => tx
                .socket_for(proto_of(transport), &addr)
                .ok_or(UacError::NoSocket)?,
        };
        let (host, port) = crate::runtime::socket_host_port(sock);
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let i = usize::try_from(n % SHARDS as u64).unwrap_or(0);
        let branch = self.new_branch_id(i);
        let method = r.method;
        let mut req = format!("{method} {} SIP/2.0\r\n", r.ruri);
        req.push_str(&format!(
            "Via: {}\r\n",
            sipox_proxy::via_value(transport, &host, port, &branch, false)
        ));
        if !has(r.hdrs, "max-forwards", "") {
            req.push_str("Max-Forwards: 70\r\n");
        }
        for l in r.hdrs {
            let name = name_of(l);
            if name == "content-length" || name == "l" {
                continue;
            }
            req.push_str(l);
            if (name == "from" || name == "f") && !l.to_ascii_lowercase().contains(";tag=") {
                req.push_str(&format!(";tag={:x}{n:x}", self.seed & 0xff_ffff));
            }
            req.push_str("\r\n");
        }
        if !has(r.hdrs, "call-id", "i") {
            req.push_str(&format!(
                "Call-ID: {:x}-{n:x}@{host}\r\n",
                self.seed & 0xff_ffff
            ));
        }
        if !has(r.hdrs, "cseq", "") {
            req.push_str(&format!("CSeq: 1 {method}\r\n"));
        }
        let body = r.body.unwrap_or_default();
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        let mut bytes = Bytes::from(req.into_bytes());
        let prog = rt.program();
        // A request made from within local_route itself does not run it again.
        if prog.route(RouteKind::Local, None).is_some() && !IN_LOCAL_ROUTE.get() {
            let msg = SipMsg::parse(bytes).map_err(|_| UacError::Failed)?;
            // A context of its own: this may run inside another route's script call.
            let mut cx = crate::runtime::new_cx(rt, &prog);
            cx.set_time_us(crate::runtime::now_us());
            cx.set_message(msg);
            if let Some(c) = r.ctx {
                cx.push_avp_str("uac_ctx", c.as_bytes());
            }
            IN_LOCAL_ROUTE.set(true);
            let out = cx.run_route(RouteKind::Local, None);
            IN_LOCAL_ROUTE.set(false);
            match out {
                Outcome::Drop => return Err(UacError::Dropped),
                Outcome::Error(e) => {
                    rt.log
                        .log(crate::logging::L_ERR, &format!("local_route: {e}"));
                }
                _ => {}
            }
            let m = cx.take_message().ok_or(UacError::Failed)?;
            bytes = written(&m);
        }
        let r = {
            let mut g = self.shard(i).lock();
            let r = g
                .table
                .send_request(now(), bytes, Peer { transport, addr }, None);
            if let Ok(ck) = r {
                g.locals.insert(ck, local);
            }
            r
        };
        // Events are dispatched by the caller once no script runs (MI: at once).
        self.pump(rt, i);
        r.map_err(|_| UacError::Failed)?;
        self.stat(|s| s.uac.inc());
        Ok(())
    }
}

/// The message as written with the script's edits (R-URI change excluded).
fn written(msg: &SipMsg) -> Bytes {
    let mut v = Vec::with_capacity(msg.raw().len() + 128);
    if msg.write_to(&mut v).is_ok() {
        Bytes::from(v)
    } else {
        msg.bytes().slice_ref(msg.raw())
    }
}

/// One branch of the current request: destination resolved, our Via with `branch`,
/// `received`/`rport` on the previous Via, Record-Route, the branch's R-URI; with the further
/// RFC 3263 targets of its host (same transport) for DNS failover. Errors are `t_relay`'s
/// codes.
fn build_branch(
    rt: &Runtime,
    cx: &mut MsgCx,
    src: &Source,
    target: &BranchTarget<'_>,
    branch: &str,
    rr_saved: Option<&[u8]>,
    extra: &[u8],
) -> Result<BuiltBranch, i32> {
    let (uri, duri, path) = (target.uri, target.duri, target.path);
    // Without an explicit destination, a path's first hop is where the request goes.
    let first_hop = first_path_uri(path);
    let dest = if !duri.is_empty() {
        duri
    } else if let Some(h) = first_hop {
        h
    } else {
        uri
    };
    let u = sipox_sip_msg::uri(dest).map_err(|_| -4)?;
    let target = sipox_proxy::request_target(&u).map_err(|_| -4)?;
    let mut rest = Vec::new();
    let (addr, transport) = match target.socket_addr() {
        Some(a) => (a, target.transport),
        None => {
            let mut all = crate::fns::resolve_targets(rt, &target).into_iter();
            let first = all.next().ok_or(-4)?;
            rest = all
                .filter(|(_, t)| *t == first.1)
                .map(|(addr, transport)| Peer { transport, addr })
                .collect();
            first
        }
    };
    let proto = proto_of(transport);
    let tx = rt.transports().ok_or(-1)?;
    let sock = tx.socket_for(proto, &addr).ok_or(-6)?;
    let (host, port) = crate::runtime::advertised(sock);
    let rr =
        crate::rr::record_route_lines(cx, tx, src, sock).or_else(|| rr_saved.map(<[u8]>::to_vec));
    let force_rport = crate::runtime::rport_forced(rt) || src.proto != sipox_transport::Proto::Udp;
    let local_rport = cx
        .peek_state::<crate::fns::ViaFlags>()
        .is_some_and(|f| f.local_rport);
    let msg = cx.msg_mut().ok_or(-1)?;
    let via = sipox_proxy::via_value(transport, &host, port, branch, local_rport);
    let recv = msg.via1().ok().and_then(|v| {
        sipox_proxy::via_receive_params(&v, src.remote, force_rport).map(|p| (v.v.span.end, p))
    });
    let mark = msg.edit_mark();
    if let Some((at, p)) = recv {
        msg.insert_at(at, Bytes::from(p.into_bytes()));
    }
    if let Some(lines) = &rr {
        crate::rr::insert_record_route(msg, lines.clone());
    }
    msg.push_via(via.as_bytes());
    if !path.is_empty() {
        // Path entries go first in the route set, ahead of any Route the request carries.
        match msg.header(sipox_sip_msg::HeaderKind::Route).copied() {
            Some(h) => msg.insert_header_before(&h, b"Route", path),
            None => msg.append_header(b"Route", path),
        }
    }
    if !extra.is_empty() {
        msg.append_raw_headers(Bytes::copy_from_slice(extra));
    }
    if msg.ruri_raw() != uri {
        msg.set_ruri(Bytes::copy_from_slice(uri));
    }
    let mut out = Vec::with_capacity(msg.raw().len() + 256);
    let ok = msg.write_to(&mut out).is_ok();
    msg.truncate_edits(mark);
    if !ok {
        return Err(-2);
    }
    if crate::fns::blocked(cx, rt, proto, addr, &out, "t_relay") {
        // OpenSIPS's "destination filtered"
        return Err(-5);
    }
    // DNS failover never goes to a blacklisted target either.
    rest.retain(|p| !rt.blacklists.blocked(proto_of(p.transport), p.addr, &out));
    Ok((Bytes::from(out), Peer { transport, addr }, rr, rest))
}

/// A built branch: the request, where it goes, its Record-Route lines, the further targets of
/// its host (DNS failover).
type BuiltBranch = (Bytes, Peer, Option<Vec<u8>>, Vec<Peer>);

/// A branch as the script left it: R-URI, `$du`, path vector, branch flags.
type OwnedTarget = (Vec<u8>, Vec<u8>, Vec<u8>, u64);

/// Where one branch goes: its R-URI, destination URI (`$du`, may be empty) and path vector
/// (comma-separated `<uri>` entries, may be empty).
struct BranchTarget<'a> {
    uri: &'a [u8],
    duri: &'a [u8],
    path: &'a [u8],
}

/// The URI of the first entry of a path vector (`<sip:a;lr>,<sip:b;lr>` → `sip:a;lr`).
fn first_path_uri(path: &[u8]) -> Option<&[u8]> {
    let start = path.iter().position(|&c| c == b'<')? + 1;
    let len = path[start..].iter().position(|&c| c == b'>')?;
    Some(&path[start..start + len]).filter(|u| !u.is_empty())
}

/// Dispatches the transaction events the script's calls produced on this thread; the
/// runtime calls this once a request's script has finished.
pub(crate) fn after_script(rt: &Arc<Runtime>) {
    if PENDING.with(|p| p.borrow().is_empty()) {
        return;
    }
    rt.tm.dispatch_pending(rt);
}

// ----- per-message state -----

/// tm's state for the message being processed.
#[derive(Debug, Default)]
pub(crate) struct TmState {
    /// The transaction (shard, key).
    txn: Option<(usize, ServerKey)>,
    /// `$T_reply_code`.
    code: u16,
    /// `$T_branch_idx`.
    branch: Option<usize>,
    /// Running a failure route.
    failure: bool,
    /// Routes armed before the transaction exists.
    on_failure: Option<Box<str>>,
    on_reply: Option<Box<str>>,
    on_branch: Option<Box<str>>,
    /// `t_add_hdrs` lines given before the transaction exists.
    hdrs: Vec<u8>,
    /// `t_add_cancel_reason`: the Reason line for the CANCELs this request makes tm send.
    cancel_reason: Option<Vec<u8>>,
    /// The branch whose reply an onreply route runs for.
    client: Option<ClientKey>,
    /// `$T_branch_last_reply_code`: of the reply's branch (onreply), of the winning branch
    /// (failure route).
    last_code: Option<u16>,
    /// `$T_ruri`: the R-URI of the winning branch in a failure route.
    t_ruri: Option<Box<[u8]>>,
    /// `$bavp` values of the current branch (branch route, onreply route, failure route).
    bavps: Bavps,
    /// A branch, onreply or failure route runs: `$bavp` is usable.
    bavp_on: bool,
    /// `$T_fr_timeout`/`$T_fr_inv_timeout` given before the transaction exists.
    timers: BranchTimers,
}

impl MsgState for TmState {
    fn reset(&mut self) {
        *self = Self::default();
    }
}

/// A stateful reply for `send_reply` when the current request has a transaction; `None`
/// when it has none (the reply is then stateless).
pub(crate) fn reply_if_stateful(
    cx: &mut MsgCx,
    code: u16,
    reason: &[u8],
    extra: &[u8],
) -> Option<i32> {
    cx.peek_state::<TmState>()?.txn?;
    let rt = cx.ext::<Runtime>()?;
    Some(rt.tm.reply(&rt, cx, code, reason, extra))
}

// ----- script functions -----

fn text(cx: &mut MsgCx, a: &Arg) -> String {
    let mut b = cx.take_buf();
    match a {
        Arg::Str(f) => cx.eval_fmt(f, &mut b),
        Arg::Static(s) => b.extend_from_slice(s),
        Arg::Int(i) => {
            if let Some(v) = cx.eval_int(i) {
                b.extend_from_slice(v.to_string().as_bytes());
            }
        }
        _ => {}
    }
    let s = String::from_utf8_lossy(&b).into_owned();
    cx.give_buf(b);
    s
}

fn take(a: &mut Args<'_>, i: usize) -> Arg {
    a.args
        .get_mut(i)
        .map_or(Arg::None, |x| std::mem::replace(x, Arg::None))
}

/// The `t_relay` flags: OpenSIPS 3.5's names, and the old numeric bits they replace.
mod relay_flags {
    /// `no-auto-477` (0x02): no 477 when every branch failed to go out.
    pub(super) const NO_AUTO_477: u8 = 0x02;
    /// `no-dns-failover` (0x04): a failed branch is not retried on its host's next target.
    pub(super) const NO_DNS_FAILOVER: u8 = 0x04;
    /// `pass-reason-hdr` (0x08): on a CANCEL, its Reason header goes on the CANCELs of the
    /// branches.
    pub(super) const PASS_REASON_HDR: u8 = 0x08;
    /// `allow-no-cancel` (0x10): a request with `Request-Disposition: no-cancel` keeps its
    /// other branches running after a 2xx (RFC 3841 §9.1).
    pub(super) const ALLOW_NO_CANCEL: u8 = 0x10;

    /// Parses a comma-separated list of flag names or numbers (decimal or `0x` hex bit sets).
    pub(super) fn parse(s: &str) -> Result<u8, String> {
        let mut f = 0u8;
        for tok in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            f |= match tok {
                "no-auto-477" => NO_AUTO_477,
                "no-dns-failover" => NO_DNS_FAILOVER,
                "pass-reason-hdr" => PASS_REASON_HDR,
                "allow-no-cancel" => ALLOW_NO_CANCEL,
                n => {
                    let v = match n.strip_prefix("0x").or_else(|| n.strip_prefix("0X")) {
                        Some(h) => i64::from_str_radix(h, 16),
                        None => n.parse(),
                    };
                    bits(v.map_err(|_| format!("t_relay: unknown flag `{tok}`"))?)
                }
            };
        }
        Ok(f)
    }

    /// The known bits of a numeric flag set.
    pub(super) fn bits(v: i64) -> u8 {
        u8::try_from(v & 0x1e).unwrap_or(0)
    }
}

/// A reply code argument: a number in 100..=699.
fn reply_code(cx: &mut MsgCx, a: &Arg) -> Option<u16> {
    text(cx, a)
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|c| (100..=699).contains(c))
}

/// `t_relay`'s flags: compiled at fixup, or read per call when given by a variable.
#[derive(Debug)]
enum RelayFlagsArg {
    Const(u8),
    Dyn(Arg),
}

impl RelayFlagsArg {
    fn compile(a: Arg) -> Result<Self, FixupError> {
        let parsed = |b: &[u8]| {
            relay_flags::parse(&String::from_utf8_lossy(b))
                .map(Self::Const)
                .map_err(|e| FixupError::arg(0, e))
        };
        match a {
            Arg::None => Ok(Self::Const(0)),
            Arg::Int(IntArg::Const(v)) => Ok(Self::Const(relay_flags::bits(v))),
            Arg::Static(b) => parsed(&b),
            Arg::Str(f) if f.as_const().is_some() => parsed(f.as_const().unwrap_or_default()),
            other => Ok(Self::Dyn(other)),
        }
    }

    fn get(&self, cx: &mut MsgCx) -> u8 {
        match self {
            Self::Const(f) => *f,
            Self::Dyn(a) => relay_flags::parse(&text(cx, a)).unwrap_or_else(|e| {
                cx.log(-1, format!("ERROR: {e}").as_bytes());
                0
            }),
        }
    }
}

#[derive(Debug)]
struct TRelay {
    flags: RelayFlagsArg,
    /// `t_relay`'s second argument: `[proto:]host[:port]` or a SIP URI every branch is sent to.
    proxy: Option<sipox_script::Fmt>,
}

impl Call for TRelay {
    fn call(&self, cx: &mut MsgCx) -> R {
        let Some(rt) = cx.ext::<Runtime>() else {
            return Ok(Ret(-1));
        };
        let flags = self.flags.get(cx);
        let no_477 = flags & relay_flags::NO_AUTO_477 != 0;
        match cx.msg().and_then(SipMsg::method) {
            None => return Ok(Ret(-2)),
            Some(Method::Ack) => {
                // The ACK of a negative reply this proxy relayed ends here (hop by hop).
                if absorb_ack(&rt, cx) {
                    return Err(Stop::Exit);
                }
                return Ok(Ret(crate::fns::forward_current(cx)));
            }
            Some(Method::Cancel) => return Ok(Ret(rt.tm.relay_cancel(&rt, cx, flags))),
            Some(_) => {}
        }
        let (i, sk, created) = match rt.tm.ensure_txn(&rt, cx) {
            Ok(Some(x)) => x,
            Ok(None) => return Err(Stop::Exit),
            Err(e) => return Ok(Ret(e)),
        };
        let failure = cx.peek_state::<TmState>().is_some_and(|s| s.failure);
        let proxy = self.proxy.as_ref().map(|f| {
            let mut t = Vec::new();
            cx.eval_fmt(f, &mut t);
            crate::fns::destination_uri(t.trim_ascii())
        });
        let r = rt
            .tm
            .relay(&rt, cx, (i, sk), failure, flags, proxy.as_deref());
        if r < 0 && created && !no_477 {
            let _ = rt.tm.reply(&rt, cx, 477, b"Send failed (477/TM)", b"");
        }
        Ok(Ret(r))
    }
}

/// An ACK matching an INVITE transaction that sent a negative final reply: absorbed.
fn absorb_ack(rt: &Runtime, cx: &MsgCx) -> bool {
    let Some(msg) = cx.msg() else {
        return false;
    };
    let i = rt.tm.request_shard(msg);
    let mut g = rt.tm.shard(i).lock();
    let Some(sk) = g.table.find_server(msg).ok().flatten() else {
        return false;
    };
    match g.table.server_state(sk) {
        Some(ServerState::Completed) => {
            if let (Ok(copy), Some(src)) = (SipMsg::parse(written(msg)), current_source()) {
                let peer = Peer {
                    transport: transport_of(src.proto),
                    addr: src.remote,
                };
                let _ = g.table.handle_message(now(), copy, peer);
            }
            true
        }
        Some(ServerState::Confirmed) => true,
        _ => false,
    }
}

#[derive(Debug)]
struct TNewtran;

impl Call for TNewtran {
    fn call(&self, cx: &mut MsgCx) -> R {
        let Some(rt) = cx.ext::<Runtime>() else {
            return Ok(Ret(-1));
        };
        if matches!(
            cx.msg().and_then(SipMsg::method),
            None | Some(Method::Ack | Method::Cancel)
        ) {
            return Ok(Ret(-1));
        }
        match rt.tm.ensure_txn(&rt, cx) {
            Ok(Some(_)) => Ok(Ret(1)),
            Ok(None) => Err(Stop::Exit),
            Err(e) => Ok(Ret(e)),
        }
    }
}

#[derive(Debug)]
struct TCheckTrans;

impl Call for TCheckTrans {
    fn call(&self, cx: &mut MsgCx) -> R {
        let Some(rt) = cx.ext::<Runtime>() else {
            return Ok(Ret(-1));
        };
        let Some(msg) = cx.msg() else {
            return Ok(Ret(-1));
        };
        let i = rt.tm.request_shard(msg);
        match msg.method() {
            Some(Method::Cancel) => {
                let g = rt.tm.shard(i).lock();
                let found = g.table.find_cancelled(msg).ok().flatten().is_some();
                Ok(Ret(if found { 1 } else { -1 }))
            }
            Some(Method::Ack) => {
                let state = {
                    let g = rt.tm.shard(i).lock();
                    g.table
                        .find_server(msg)
                        .ok()
                        .flatten()
                        .and_then(|sk| g.table.server_state(sk))
                };
                Ok(Ret(match state {
                    Some(ServerState::Completed | ServerState::Confirmed) => 1,
                    Some(_) => -2,
                    None => -1,
                }))
            }
            Some(_) => {
                let found = {
                    let mut g = rt.tm.shard(i).lock();
                    let sk = g.table.find_server(msg).ok().flatten();
                    if let Some(sk) = sk {
                        g.table.retransmit_reply(sk);
                    }
                    sk.is_some()
                };
                if found {
                    rt.tm.pump(&rt, i);
                    return Err(Stop::Exit);
                }
                Ok(Ret(-1))
            }
            None => Ok(Ret(-1)),
        }
    }
}

#[derive(Debug)]
struct TReply {
    code: Arg,
    reason: Arg,
}

impl Call for TReply {
    fn call(&self, cx: &mut MsgCx) -> R {
        let Some(rt) = cx.ext::<Runtime>() else {
            return Ok(Ret(-1));
        };
        let Some(code) = reply_code(cx, &self.code) else {
            cx.log(
                -1,
                b"ERROR: t_reply: reply code must be a number in 100..699",
            );
            return Ok(Ret(-1));
        };
        if cx.msg().and_then(SipMsg::method) == Some(Method::Ack) {
            return Ok(Ret(-1));
        }
        let reason = text(cx, &self.reason);
        match rt.tm.reply(&rt, cx, code, reason.as_bytes(), b"") {
            0 => Err(Stop::Exit),
            r => Ok(Ret(r)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Which {
    Failure,
    Reply,
    Branch,
}

#[derive(Debug)]
struct TOn {
    which: Which,
    route: Arg,
}

impl Call for TOn {
    fn call(&self, cx: &mut MsgCx) -> R {
        let name: Box<str> = text(cx, &self.route).into();
        let kind = match self.which {
            Which::Failure => RouteKind::Failure,
            Which::Reply => RouteKind::OnReply,
            Which::Branch => RouteKind::Branch,
        };
        if cx.program().route(kind, Some(&name)).is_none() {
            cx.log(-1, b"ERROR: t_on_*: no such route");
            return Ok(Ret(-1));
        }
        let txn = cx.peek_state::<TmState>().and_then(|s| s.txn);
        match (txn, cx.ext::<Runtime>()) {
            (Some((i, sk)), Some(rt)) => {
                let mut g = rt.tm.shard(i).lock();
                if let Some(t) = g.txns.get_mut(&sk) {
                    let slot = match self.which {
                        Which::Failure => &mut t.on_failure,
                        Which::Reply => &mut t.on_reply,
                        Which::Branch => &mut t.on_branch,
                    };
                    *slot = Some(name);
                }
            }
            _ => {
                if let Some(st) = cx.state::<TmState>() {
                    let slot = match self.which {
                        Which::Failure => &mut st.on_failure,
                        Which::Reply => &mut st.on_reply,
                        Which::Branch => &mut st.on_branch,
                    };
                    *slot = Some(name);
                }
            }
        }
        Ok(Ret(1))
    }
}

#[derive(Debug)]
struct TWasCancelled;

impl Call for TWasCancelled {
    fn call(&self, cx: &mut MsgCx) -> R {
        let (Some((i, sk)), Some(rt)) = (
            cx.peek_state::<TmState>().and_then(|s| s.txn),
            cx.ext::<Runtime>(),
        ) else {
            return Ok(Ret(-1));
        };
        let c = rt.tm.shard(i).lock().table.is_cancelled(sk);
        Ok(Ret(if c { 1 } else { -1 }))
    }
}

#[derive(Debug)]
struct TCheckStatus {
    re: Option<RegexArg>,
}

impl Call for TCheckStatus {
    fn call(&self, cx: &mut MsgCx) -> R {
        let code = cx.peek_state::<TmState>().map_or(0, |s| s.code);
        let code = match (code, cx.msg().and_then(SipMsg::status)) {
            (0, Some(c)) => c,
            (c, _) => c,
        };
        if code == 0 {
            return Ok(Ret(-1));
        }
        let hay = code.to_string();
        let ok = self
            .re
            .as_ref()
            .is_some_and(|re| re.is_match(cx, hay.as_bytes()));
        Ok(Ret(if ok { 1 } else { -1 }))
    }
}

#[derive(Debug)]
struct TLocalReplied {
    which: Arg,
}

impl Call for TLocalReplied {
    fn call(&self, cx: &mut MsgCx) -> R {
        let all = text(cx, &self.which).trim().eq_ignore_ascii_case("all");
        let (Some((i, sk)), Some(rt)) = (
            cx.peek_state::<TmState>().and_then(|s| s.txn),
            cx.ext::<Runtime>(),
        ) else {
            return Ok(Ret(-1));
        };
        let g = rt.tm.shard(i).lock();
        let Some(t) = g.txns.get(&sk) else {
            return Ok(Ret(-1));
        };
        let local = if all { !t.any_received } else { t.last_local };
        Ok(Ret(if local { 1 } else { -1 }))
    }
}

/// The current transaction of a script function, with the runtime.
fn current(cx: &MsgCx) -> Option<(Arc<Runtime>, usize, ServerKey)> {
    let (i, sk) = cx.peek_state::<TmState>().and_then(|s| s.txn)?;
    Some((cx.ext::<Runtime>()?, i, sk))
}

/// Header text as the script gives it, each line ending in CRLF.
fn header_lines(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    if !v.is_empty() && !v.ends_with(b"\r\n") {
        v.extend_from_slice(b"\r\n");
    }
    v
}

#[derive(Debug)]
struct TAddHdrs {
    hdrs: Arg,
}

impl Call for TAddHdrs {
    fn call(&self, cx: &mut MsgCx) -> R {
        let lines = header_lines(&text(cx, &self.hdrs));
        match current(cx) {
            Some((rt, i, sk)) => {
                let mut g = rt.tm.shard(i).lock();
                let sh = &mut *g;
                let Some(t) = sh.txns.get_mut(&sk) else {
                    return Ok(Ret(-1));
                };
                t.hdrs.extend_from_slice(&lines);
                sh.table.set_cancel_headers(sk, t.cancel_headers());
                sh.table
                    .set_ack_headers(sk, Bytes::copy_from_slice(&t.hdrs));
            }
            None => {
                if let Some(st) = cx.state::<TmState>() {
                    st.hdrs.extend_from_slice(&lines);
                }
            }
        }
        Ok(Ret(1))
    }
}

#[derive(Debug)]
struct TAddCancelReason {
    reason: Arg,
}

impl Call for TAddCancelReason {
    fn call(&self, cx: &mut MsgCx) -> R {
        let line = header_lines(&text(cx, &self.reason));
        if line.is_empty() {
            return Ok(Ret(-1));
        }
        let is_cancel = cx.msg().and_then(SipMsg::method) == Some(Method::Cancel);
        match current(cx) {
            Some((rt, i, sk)) if !is_cancel => {
                let mut g = rt.tm.shard(i).lock();
                let sh = &mut *g;
                if let Some(t) = sh.txns.get_mut(&sk) {
                    t.cancel_reason = line;
                    sh.table.set_cancel_headers(sk, t.cancel_headers());
                }
            }
            _ => {
                if let Some(st) = cx.state::<TmState>() {
                    st.cancel_reason = Some(line);
                }
            }
        }
        Ok(Ret(1))
    }
}

#[derive(Debug)]
struct TFlushFlags;

impl Call for TFlushFlags {
    fn call(&self, cx: &mut MsgCx) -> R {
        let Some((rt, i, sk)) = current(cx) else {
            return Ok(Ret(-1));
        };
        let ctx = cx.save_txn_ctx();
        match rt.tm.shard(i).lock().txns.get_mut(&sk) {
            Some(t) => {
                t.ctx = ctx;
                Ok(Ret(1))
            }
            None => Ok(Ret(-1)),
        }
    }
}

#[derive(Debug)]
struct TCancelBranch {
    flags: Arg,
}

impl Call for TCancelBranch {
    fn call(&self, cx: &mut MsgCx) -> R {
        let flags = text(cx, &self.flags);
        let (all, others) = (flags.contains('a'), flags.contains('o'));
        let Some(ck) = cx.peek_state::<TmState>().and_then(|s| s.client) else {
            return Ok(Ret(-1));
        };
        let Some((rt, i, sk)) = current(cx) else {
            return Ok(Ret(-1));
        };
        {
            let mut g = rt.tm.shard(i).lock();
            let t = now();
            if all {
                g.table.cancel_branches(t, sk);
            } else if others {
                let rest: Vec<ClientKey> = g
                    .table
                    .branches(sk)
                    .iter()
                    .copied()
                    .filter(|b| *b != ck)
                    .collect();
                for b in rest {
                    let _ = g.table.cancel_branch(t, b);
                }
            } else {
                let _ = g.table.cancel_branch(t, ck);
            }
        }
        rt.tm.pump(&rt, i);
        Ok(Ret(1))
    }
}

#[derive(Debug)]
struct TReplyByCallid {
    code: Arg,
    reason: Arg,
    callid: Arg,
    cseq: Arg,
}

impl Call for TReplyByCallid {
    fn call(&self, cx: &mut MsgCx) -> R {
        let Some(rt) = cx.ext::<Runtime>() else {
            return Ok(Ret(-1));
        };
        let Some(code) = reply_code(cx, &self.code) else {
            return Ok(Ret(-1));
        };
        let reason = text(cx, &self.reason);
        let callid = match &self.callid {
            Arg::None => cx.msg().and_then(SipMsg::call_id).map(<[u8]>::to_vec),
            a => Some(text(cx, a).into_bytes()),
        };
        let cseq = match &self.cseq {
            Arg::None => cx.msg().and_then(|m| m.cseq().ok().map(|c| c.number())),
            a => text(cx, a)
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok()),
        };
        let (Some(callid), Some(cseq)) = (callid, cseq) else {
            return Ok(Ret(-1));
        };
        let Some((i, sk)) = rt.tm.find_invite(&callid, cseq) else {
            return Ok(Ret(-1));
        };
        let hdrs = cx.reply_headers().to_vec();
        let ok = rt.tm.reply_on(&rt, i, sk, code, reason.as_bytes(), &hdrs);
        Ok(Ret(if ok { 1 } else { -1 }))
    }
}

#[derive(Debug)]
struct TReplicate {
    uri: Arg,
}

impl Call for TReplicate {
    fn call(&self, cx: &mut MsgCx) -> R {
        let Some(rt) = cx.ext::<Runtime>() else {
            return Ok(Ret(-1));
        };
        if matches!(
            cx.msg().and_then(SipMsg::method),
            None | Some(Method::Ack | Method::Cancel)
        ) {
            return Ok(Ret(-1));
        }
        let uri = text(cx, &self.uri);
        Ok(Ret(rt.tm.replicate(&rt, cx, uri.trim().as_bytes())))
    }
}

/// `t_reply_with_body(code, reason, body)`: a stateful reply whose Content-Type comes from
/// the `append_to_reply` headers (none without one).
#[derive(Debug)]
struct TReplyWithBody {
    code: Arg,
    reason: Arg,
    body: Arg,
}

impl Call for TReplyWithBody {
    fn call(&self, cx: &mut MsgCx) -> R {
        let Some(rt) = cx.ext::<Runtime>() else {
            return Ok(Ret(-1));
        };
        let Some(code) = reply_code(cx, &self.code) else {
            cx.log(
                -1,
                b"ERROR: t_reply_with_body: reply code must be a number in 100..699",
            );
            return Ok(Ret(-1));
        };
        // ACKs are not answered, and (as in OpenSIPS) that ends the script.
        if cx.msg().and_then(SipMsg::method) == Some(Method::Ack) {
            return Err(Stop::Exit);
        }
        let reason = text(cx, &self.reason);
        let body = text(cx, &self.body);
        let (i, sk) = match rt.tm.ensure_txn(&rt, cx) {
            Ok(Some((i, sk, _))) => (i, sk),
            Ok(None) => return Err(Stop::Exit),
            Err(e) => return Ok(Ret(e)),
        };
        if let Some(st) = cx.state::<TmState>() {
            st.code = code;
        }
        // The Content-Type line of the reply headers types the body; Content-Length is ours.
        let mut extra = Vec::with_capacity(cx.reply_headers().len());
        let mut ctype: Option<Vec<u8>> = None;
        for line in cx.reply_headers().split_inclusive(|&c| c == b'\n') {
            let (name, value) = match line.iter().position(|&c| c == b':') {
                Some(p) => (line[..p].trim_ascii(), line[p + 1..].trim_ascii()),
                None => (line.trim_ascii(), &b""[..]),
            };
            if name.eq_ignore_ascii_case(b"content-type") || name.eq_ignore_ascii_case(b"c") {
                ctype = Some(value.to_vec());
            } else if !(name.eq_ignore_ascii_case(b"content-length")
                || name.eq_ignore_ascii_case(b"l"))
            {
                extra.extend_from_slice(line);
            }
        }
        // Without one the body goes untyped, as OpenSIPS sends it.
        let ct = ctype.unwrap_or_default();
        let b = (!body.is_empty()).then_some((ct.as_slice(), body.as_bytes()));
        let ok = rt
            .tm
            .reply_on_full(&rt, i, sk, code, reason.as_bytes(), &extra, b);
        Ok(Ret(if ok { 1 } else { -1 }))
    }
}

/// `t_new_request(method, RURI, from, to [, body [, ctx]])`: a new request of tm's own
/// towards the RURI (its replies are absorbed). From/To are `[display ]URI`; the body is
/// `content-type body`; `ctx` is `$avp(uac_ctx)` in the local route.
#[derive(Debug)]
struct TNewRequest {
    method: Arg,
    ruri: Arg,
    from: Arg,
    to: Arg,
    body: Arg,
    ctx: Arg,
}

/// `[display ]URI` as a From/To value: `display <URI>`.
fn name_addr(s: &str) -> String {
    let s = s.trim();
    if s.contains('<') {
        return s.to_owned();
    }
    match s.rsplit_once(char::is_whitespace) {
        Some((d, u)) => format!("{} <{}>", d.trim(), u.trim()),
        None => format!("<{s}>"),
    }
}

impl Call for TNewRequest {
    fn call(&self, cx: &mut MsgCx) -> R {
        let Some(rt) = cx.ext::<Runtime>() else {
            return Ok(Ret(-1));
        };
        let method = text(cx, &self.method).trim().to_owned();
        let ruri = text(cx, &self.ruri).trim().to_owned();
        if method.is_empty()
            || !method.bytes().all(|c| c.is_ascii_alphabetic())
            || sipox_sip_msg::uri(ruri.as_bytes()).is_err()
        {
            cx.log(-1, b"ERROR: t_new_request: bad method or RURI");
            return Ok(Ret(-1));
        }
        let from = name_addr(&text(cx, &self.from));
        let to = name_addr(&text(cx, &self.to));
        let mut hdrs = vec![format!("From: {from}"), format!("To: {to}")];
        let body_arg = match &self.body {
            Arg::None => String::new(),
            a => text(cx, a),
        };
        let body = match body_arg.trim_start().split_once(char::is_whitespace) {
            Some((ct, b)) if !b.is_empty() => {
                hdrs.push(format!("Content-Type: {ct}"));
                Some(b.to_owned())
            }
            _ => None,
        };
        let ctx = match &self.ctx {
            Arg::None => None,
            a => Some(text(cx, a)),
        };
        let req = UacRequest {
            method: &method,
            ruri: &ruri,
            hdrs: &hdrs,
            next_hop: None,
            socket: None,
            body: body.as_deref(),
            ctx: ctx.as_deref(),
        };
        match rt.tm.send_local(&rt, &req, Local::Replica) {
            Ok(()) => Ok(Ret(1)),
            Err(e) => {
                cx.log(
                    -1,
                    format!("ERROR: t_new_request: not sent ({e:?})").as_bytes(),
                );
                Ok(Ret(-1))
            }
        }
    }
}

/// `$T_branch_last_reply_code`.
#[derive(Debug)]
struct BranchLastCodePv;

impl ModulePv for BranchLastCodePv {
    fn get(&self, cx: &mut MsgCx, _out: &mut Vec<u8>) -> Kind {
        match cx.peek_state::<TmState>().and_then(|s| s.last_code) {
            Some(c) => Kind::Int(i64::from(c)),
            None => Kind::Null,
        }
    }
}

/// `$T_ruri`: the R-URI of the current branch: the reply's (onreply route), the winning one
/// (failure route), the request's current one elsewhere; NULL without a transaction.
#[derive(Debug)]
struct TRuriPv;

impl ModulePv for TRuriPv {
    fn get(&self, cx: &mut MsgCx, out: &mut Vec<u8>) -> Kind {
        let Some(st) = cx.peek_state::<TmState>().filter(|s| s.txn.is_some()) else {
            return Kind::Null;
        };
        match st.t_ruri.as_deref() {
            Some(u) => out.extend_from_slice(u),
            None if cx.msg().is_some_and(|m| m.method().is_some()) => {
                out.extend_from_slice(cx.ruri());
            }
            None => return Kind::Null,
        }
        Kind::Str
    }
}

/// `$bavp(name)`: a value of the current branch (set in its branch route or its onreply
/// route; read there and in the failure route of the branch that won).
#[derive(Debug)]
struct BavpPv {
    name: Box<str>,
}

impl ModulePv for BavpPv {
    fn get(&self, cx: &mut MsgCx, out: &mut Vec<u8>) -> Kind {
        let v = cx
            .peek_state::<TmState>()
            .filter(|s| s.bavp_on)
            .and_then(|s| s.bavps.iter().find(|(n, _)| **n == *self.name))
            .map(|(_, v)| v);
        match v {
            Some(BVal::Int(i)) => Kind::Int(*i),
            Some(BVal::Str(b)) => {
                out.extend_from_slice(b);
                Kind::Str
            }
            None => Kind::Null,
        }
    }

    fn with_name(&self, name: &str) -> Option<Arc<dyn ModulePv>> {
        Some(Arc::new(Self { name: name.into() }))
    }

    fn writable(&self) -> bool {
        true
    }

    fn set(&self, cx: &mut MsgCx, kind: Kind, val: &[u8]) {
        let Some(st) = cx.state::<TmState>().filter(|s| s.bavp_on) else {
            return;
        };
        let v = match kind {
            Kind::Null => {
                st.bavps.retain(|(n, _)| **n != *self.name);
                return;
            }
            Kind::Int(i) => BVal::Int(i),
            _ => BVal::Str(val.into()),
        };
        match st.bavps.iter_mut().find(|(n, _)| **n == *self.name) {
            Some(slot) => slot.1 = v,
            None => st.bavps.push((self.name.clone(), v)),
        }
    }
}

/// `$T_fr_timeout` (`inv` false) and `$T_fr_inv_timeout` (`inv` true), in seconds: the
/// timers of the current transaction's next branches (and, for fr_inv set in an onreply
/// route, of the reply's branch from now on); NULL or 0 restores the modparam.
#[derive(Debug)]
struct FrTimeoutPv {
    inv: bool,
}

impl FrTimeoutPv {
    fn pick(&self, t: &BranchTimers) -> Option<Duration> {
        if self.inv { t.timer_c } else { t.fr_timeout }
    }
}

impl ModulePv for FrTimeoutPv {
    fn get(&self, cx: &mut MsgCx, _out: &mut Vec<u8>) -> Kind {
        let Some(rt) = cx.ext::<Runtime>() else {
            return Kind::Null;
        };
        let own = match current(cx) {
            Some((rt, i, sk)) => rt.tm.shard(i).lock().table.branch_timers(sk),
            None => cx
                .peek_state::<TmState>()
                .map(|s| s.timers)
                .unwrap_or_default(),
        };
        let (fr, fr_inv) = rt.tm.fr_default;
        let d = self
            .pick(&own)
            .unwrap_or(if self.inv { fr_inv } else { fr });
        Kind::Int(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    fn writable(&self) -> bool {
        true
    }

    fn set(&self, cx: &mut MsgCx, kind: Kind, val: &[u8]) {
        let secs = match kind {
            Kind::Int(i) => Some(i),
            Kind::Null => None,
            _ => std::str::from_utf8(val)
                .ok()
                .and_then(|v| v.trim().parse().ok()),
        };
        let d = secs
            .and_then(|s| u64::try_from(s).ok())
            .filter(|s| *s > 0)
            .map(Duration::from_secs);
        let apply = |t: &mut BranchTimers| {
            if self.inv {
                t.timer_c = d;
            } else {
                t.fr_timeout = d;
            }
        };
        // In an onreply route, fr_inv also applies to the reply's branch from now on.
        let client = cx.peek_state::<TmState>().and_then(|s| s.client);
        match current(cx) {
            Some((rt, i, sk)) => {
                {
                    let mut g = rt.tm.shard(i).lock();
                    let mut t = g.table.branch_timers(sk);
                    apply(&mut t);
                    g.table.set_branch_timers(sk, t);
                    if let (true, Some(ck)) = (self.inv, client) {
                        g.table.set_client_timer_c(now(), ck, d);
                    }
                }
                rt.tm.pump(&rt, i);
            }
            None => {
                if let Some(st) = cx.state::<TmState>() {
                    apply(&mut st.timers);
                }
            }
        }
    }
}

#[derive(Debug)]
struct ReplyCodePv;

impl ModulePv for ReplyCodePv {
    fn get(&self, cx: &mut MsgCx, _out: &mut Vec<u8>) -> Kind {
        let code = cx.peek_state::<TmState>().map_or(0, |s| s.code);
        Kind::Int(i64::from(code))
    }
}

/// `$T_id`: `hash_index:label` of the current transaction, the `trans_id` MI `t_reply` takes.
#[derive(Debug)]
struct TIdPv;

impl ModulePv for TIdPv {
    fn get(&self, cx: &mut MsgCx, out: &mut Vec<u8>) -> Kind {
        match cx.peek_state::<TmState>().and_then(|s| s.txn) {
            Some((i, sk)) => {
                out.extend_from_slice(format!("{i}:{}", sk.label()).as_bytes());
                Kind::Str
            }
            None => Kind::Null,
        }
    }
}

#[derive(Debug)]
struct BranchIdxPv;

impl ModulePv for BranchIdxPv {
    fn get(&self, cx: &mut MsgCx, _out: &mut Vec<u8>) -> Kind {
        match cx.peek_state::<TmState>().and_then(|s| s.branch) {
            Some(i) => Kind::Int(i64::try_from(i).unwrap_or(0)),
            None => Kind::Null,
        }
    }
}

fn route_arg(mut a: Args<'_>, which: Which) -> Result<Box<dyn Call>, FixupError> {
    let route = take(&mut a, 0);
    if let Arg::Str(f) = &route
        && let Some(name) = f.as_const()
    {
        let kind = match which {
            Which::Failure => RouteKind::Failure,
            Which::Reply => RouteKind::OnReply,
            Which::Branch => RouteKind::Branch,
        };
        let name = String::from_utf8_lossy(name).into_owned();
        if a.cx.route(kind, &name).is_none() {
            return Err(FixupError::arg(
                0,
                format!("no {}[{name}] in the script", kind.keyword()),
            ));
        }
    }
    Ok(Box::new(TOn { which, route }))
}

pub(crate) fn register(r: &mut Registry) {
    use route_mask::{BRANCH, FAILURE, ONREPLY, REQUEST};
    let all4 = REQUEST | BRANCH | ONREPLY | FAILURE;
    r.add_module(ModuleDef {
        name: "tm",
        params: vec![],
        fns: vec![
            FnDef {
                sig: Sig::new("tm", "t_relay", "a?,a?", REQUEST | FAILURE),
                build: Some(|mut a| {
                    let flags = RelayFlagsArg::compile(take(&mut a, 0))?;
                    Ok(Box::new(TRelay {
                        flags,
                        proxy: a
                            .fmt(1)
                            .filter(|f| f.as_const().is_none_or(|c| !c.is_empty())),
                    }))
                }),
            },
            FnDef {
                sig: Sig::new("tm", "t_newtran", "", REQUEST),
                build: Some(|_| Ok(Box::new(TNewtran))),
            },
            FnDef {
                sig: Sig::new("tm", "t_check_trans", "", REQUEST | BRANCH),
                build: Some(|_| Ok(Box::new(TCheckTrans))),
            },
            FnDef {
                sig: Sig::new("tm", "t_reply", "a,a", REQUEST | FAILURE),
                build: Some(|mut a| {
                    Ok(Box::new(TReply {
                        code: take(&mut a, 0),
                        reason: take(&mut a, 1),
                    }))
                }),
            },
            FnDef {
                sig: Sig::new("tm", "t_on_failure", "a", all4),
                build: Some(|a| route_arg(a, Which::Failure)),
            },
            FnDef {
                sig: Sig::new("tm", "t_on_reply", "a", all4),
                build: Some(|a| route_arg(a, Which::Reply)),
            },
            FnDef {
                sig: Sig::new("tm", "t_on_branch", "a", all4),
                build: Some(|a| route_arg(a, Which::Branch)),
            },
            FnDef {
                sig: Sig::new("tm", "t_was_cancelled", "", ONREPLY | FAILURE),
                build: Some(|_| Ok(Box::new(TWasCancelled))),
            },
            FnDef {
                sig: Sig::new("tm", "t_check_status", "r", all4),
                build: Some(|mut a| Ok(Box::new(TCheckStatus { re: a.regex(0) }))),
            },
            FnDef {
                sig: Sig::new("tm", "t_local_replied", "a", all4),
                build: Some(|mut a| {
                    Ok(Box::new(TLocalReplied {
                        which: take(&mut a, 0),
                    }))
                }),
            },
            FnDef {
                sig: Sig::new(
                    "tm",
                    "t_add_hdrs",
                    "a",
                    REQUEST | BRANCH | FAILURE | ONREPLY,
                ),
                build: Some(|mut a| {
                    Ok(Box::new(TAddHdrs {
                        hdrs: take(&mut a, 0),
                    }))
                }),
            },
            FnDef {
                sig: Sig::new(
                    "tm",
                    "t_add_cancel_reason",
                    "a",
                    REQUEST | BRANCH | FAILURE | ONREPLY,
                ),
                build: Some(|mut a| {
                    Ok(Box::new(TAddCancelReason {
                        reason: take(&mut a, 0),
                    }))
                }),
            },
            FnDef {
                sig: Sig::new("tm", "t_flush_flags", "", REQUEST | BRANCH),
                build: Some(|_| Ok(Box::new(TFlushFlags))),
            },
            FnDef {
                sig: Sig::new("tm", "t_cancel_branch", "a?", ONREPLY),
                build: Some(|mut a| {
                    Ok(Box::new(TCancelBranch {
                        flags: take(&mut a, 0),
                    }))
                }),
            },
            FnDef {
                sig: Sig::new("tm", "t_reply_by_callid", "a,a,a?,a?", REQUEST),
                build: Some(|mut a| {
                    Ok(Box::new(TReplyByCallid {
                        code: take(&mut a, 0),
                        reason: take(&mut a, 1),
                        callid: take(&mut a, 2),
                        cseq: take(&mut a, 3),
                    }))
                }),
            },
            FnDef {
                sig: Sig::new("tm", "t_reply_with_body", "a,a,a", REQUEST | FAILURE),
                build: Some(|mut a| {
                    Ok(Box::new(TReplyWithBody {
                        code: take(&mut a, 0),
                        reason: take(&mut a, 1),
                        body: take(&mut a, 2),
                    }))
                }),
            },
            FnDef {
                sig: Sig::new("tm", "t_new_request", "a,a,a,a,a?,a?", route_mask::ALL),
                build: Some(|mut a| {
                    Ok(Box::new(TNewRequest {
                        method: take(&mut a, 0),
                        ruri: take(&mut a, 1),
                        from: take(&mut a, 2),
                        to: take(&mut a, 3),
                        body: take(&mut a, 4),
                        ctx: take(&mut a, 5),
                    }))
                }),
            },
            FnDef {
                sig: Sig::new("tm", "t_replicate", "a,a?", REQUEST),
                build: Some(|mut a| {
                    Ok(Box::new(TReplicate {
                        uri: take(&mut a, 0),
                    }))
                }),
            },
        ],
    });
    r.add_pv("T_reply_code", Arc::new(ReplyCodePv));
    r.add_pv("T_branch_last_reply_code", Arc::new(BranchLastCodePv));
    r.add_pv("T_ruri", Arc::new(TRuriPv));
    r.add_pv("bavp", Arc::new(BavpPv { name: "".into() }));
    r.add_pv("T_fr_timeout", Arc::new(FrTimeoutPv { inv: false }));
    r.add_pv("T_fr_inv_timeout", Arc::new(FrTimeoutPv { inv: true }));
    r.add_pv("T_branch_idx", Arc::new(BranchIdxPv));
    r.add_pv("T_id", Arc::new(TIdPv));
}

// ----- MI commands -----

/// The MI commands of tm that need the runtime (`t_reply`, `t_uac_dlg`).
pub(crate) mod mi {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::{Value, json};
    use sipox_mi::{MiCx, MiError, MiParams};
    use sipox_sip_msg::SipMsg;
    use sipox_txn::ServerKey;

    use super::{Local, SHARDS, UacError, UacRequest, has, lines, name_of, now};
    use crate::runtime::Runtime;

    fn runtime(cx: &MiCx<'_>) -> Result<Arc<Runtime>, MiError> {
        cx.get::<Runtime>()
            .ok_or_else(|| MiError::server_error("the SIP runtime is not running"))
    }

    /// `t_reply code reason trans_id to_tag [new_headers] [body]`: a reply on a pending
    /// server transaction named by `hash_index:label` (the value of `$T_id`).
    pub(crate) fn t_reply(p: &MiParams<'_>, cx: &MiCx<'_>) -> Result<Value, MiError> {
        let rt = runtime(cx)?;
        let code = u16::try_from(p.int("code")?)
            .ok()
            .filter(|c| (100..700).contains(c))
            .ok_or_else(|| MiError::with_data(400, "Invalid reply code", ""))?;
        let reason = p.str("reason")?;
        let tid = p.str("trans_id")?;
        let to_tag = p.str("to_tag")?;
        let hdrs = p
            .opt_str("new_headers")?
            .map(|h| lines(&h))
            .unwrap_or_default();
        let body = p.opt_str("body")?;
        let (hash, label) = tid
            .split_once(':')
            .ok_or_else(|| MiError::with_data(400, "Invalid trans_id", ""))?;
        let i = hash
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|i| *i < SHARDS)
            .ok_or_else(|| MiError::with_data(400, "Invalid index in trans_id", ""))?;
        let sk = label
            .trim()
            .parse::<u64>()
            .map(ServerKey::from_label)
            .map_err(|_| MiError::with_data(400, "Invalid label in trans_id", ""))?;
        // A body takes its type from the Content-Type line of the new headers.
        let mut extra = Vec::new();
        let mut ctype = None;
        for l in &hdrs {
            let n = name_of(l);
            if n == "content-type" || n == "c" {
                ctype = l.split_once(':').map(|(_, v)| v.trim().to_owned());
            } else if n != "content-length" && n != "l" {
                extra.extend_from_slice(l.as_bytes());
                extra.extend_from_slice(b"\r\n");
            }
        }
        let body = body.filter(|b| !b.is_empty() && *b != ".");
        let ct = ctype.unwrap_or_else(|| "text/plain".to_owned());
        let tm = &rt.tm;
        let r = {
            let mut g = tm.shard(i).lock();
            if !g.txns.contains_key(&sk) {
                return Err(MiError::with_data(404, "Transaction not found", ""));
            }
            let tag = (!to_tag.is_empty() && to_tag != ".").then_some(to_tag.as_bytes());
            g.table.reply_full(
                now(),
                sk,
                code,
                reason.as_bytes(),
                tag,
                &extra,
                body.as_deref().map(|b| (ct.as_bytes(), b.as_bytes())),
            )
        };
        tm.pump(&rt, i);
        tm.dispatch_pending(&rt);
        match r {
            Ok(()) => {
                tm.stat(|s| s.local_replies.inc());
                if code >= 200 {
                    tm.count_final(code);
                }
                Ok(Value::from("OK"))
            }
            Err(_) => Err(MiError::with_data(500, "Reply failed", "")),
        }
    }

    /// `t_uac_dlg method ruri headers [next_hop] [socket] [body]`: sends a request as a
    /// client transaction of its own and answers with its final reply.
    pub(crate) fn t_uac_dlg(p: &MiParams<'_>, cx: &MiCx<'_>) -> Result<Value, MiError> {
        let rt = runtime(cx)?;
        let method = p.str("method")?.trim().to_owned();
        let ruri = p.str("ruri")?.trim().to_owned();
        let hdrs = lines(&p.str("headers")?);
        let next_hop = p.opt_str("next_hop")?.filter(|s| !s.is_empty() && s != ".");
        let socket = p.opt_str("socket")?.filter(|s| !s.is_empty() && s != ".");
        let body = p.opt_str("body")?.filter(|s| !s.is_empty() && s != ".");
        if method.is_empty() || !method.bytes().all(|c| c.is_ascii_alphabetic()) {
            return Err(MiError::with_data(400, "Invalid method", ""));
        }
        if sipox_sip_msg::uri(ruri.as_bytes()).is_err() {
            return Err(MiError::with_data(400, "Invalid RURI", ""));
        }
        if !has(&hdrs, "from", "f") {
            return Err(MiError::with_data(400, "From missing", ""));
        }
        if !has(&hdrs, "to", "t") {
            return Err(MiError::with_data(400, "To missing", ""));
        }
        let (send, recv) = std::sync::mpsc::channel();
        let req = UacRequest {
            method: &method,
            ruri: &ruri,
            hdrs: &hdrs,
            next_hop: next_hop.as_deref(),
            socket: socket.as_deref(),
            body: body.as_deref(),
            ctx: None,
        };
        let sent = rt.tm.send_local(&rt, &req, Local::Uac(send));
        rt.tm.dispatch_pending(&rt);
        match sent {
            Ok(()) => {}
            Err(UacError::BadHop) => {
                return Err(MiError::with_data(400, "Invalid NEXTHOP", ""));
            }
            Err(UacError::NoSocket) => {
                return Err(MiError::with_data(404, "Local socket not found", ""));
            }
            Err(UacError::Failed | UacError::Dropped) => {
                return Ok(json!({ "Status": "500 MI/UAC failed" }));
            }
        }
        // Timer B/F or fr_inv_timeout end the transaction with a 408 well before this.
        match recv.recv_timeout(Duration::from_secs(600)) {
            Ok(Ok(m)) => Ok(reply_json(&m)),
            Ok(Err(code)) => Ok(json!({
                "Status": format!("{code} {}", String::from_utf8_lossy(sipox_txn::reason_phrase(code))),
            })),
            Err(_) => Err(MiError::server_error("no final reply")),
        }
    }

    fn reply_json(m: &SipMsg) -> Value {
        let code = m.status().unwrap_or(0);
        let raw = String::from_utf8_lossy(m.raw()).into_owned();
        let rest = raw.split_once("\r\n").map_or("", |(_, r)| r).to_owned();
        json!({
            "Status": format!("{code} {}", String::from_utf8_lossy(m.reason())),
            "Message": rest,
        })
    }
}
