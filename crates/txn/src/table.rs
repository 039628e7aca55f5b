//! The transaction table: one shard of transactions, their matching maps, their timers, and
//! the queues of datagrams and events waiting to be polled.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sipox_sip_msg::{Method, ReplyOpts, SipMsg, build_ack_for_non2xx, build_cancel, build_reply};
use smallvec::SmallVec;

use crate::aggregate::{BranchVerdict, ReplyAggregator, challenge_lines};
use crate::config::{BranchTimers, Trying, TxnConfig};
use crate::key::{ClientMatch, ServerMatch, client_match, method_class, server_match};
use crate::slab::Slab;
use crate::timer::{Entry, Slots, TimerHeap, TimerKind};
use crate::types::{
    ClientKey, ClientState, Peer, ServerKey, ServerState, Transmit, TxnError, TxnEvent, TxnRef,
    reason_phrase,
};

/// The branches of a server transaction and their response context.
#[derive(Debug)]
struct Fork {
    agg: ReplyAggregator,
    branches: SmallVec<[ClientKey; 2]>,
}

#[derive(Debug)]
struct ServerTxn {
    key: ServerMatch,
    invite: bool,
    state: ServerState,
    /// The request as received (to build local replies).
    req: Bytes,
    source: Peer,
    /// The last response sent, for retransmission (none after a 2xx: RFC 6026).
    last: Option<Bytes>,
    timers: Slots,
    /// Current timer G interval.
    interval: Duration,
    fork: Option<Box<Fork>>,
    cancelled: bool,
    /// Header lines (each ending in CRLF) added to the CANCELs of this transaction's branches.
    cancel_hdrs: Bytes,
    /// Header lines (each ending in CRLF) added to the ACKs this table sends for its branches.
    ack_hdrs: Bytes,
    /// A 2xx does not cancel the other pending branches (RFC 3841 `no-cancel`).
    keep_branches_on_2xx: bool,
    /// Timer overrides for the branches created from now on.
    branch_timers: Option<Box<BranchTimers>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cancel {
    No,
    /// Asked before any provisional response: send when one arrives (§9.1).
    Pending,
    Sent,
}

#[derive(Debug)]
struct ClientTxn {
    key: ClientMatch,
    state: ClientState,
    /// The request as sent.
    req: Bytes,
    dest: Peer,
    /// The ACK for a non-2xx final response, resent for each retransmission of it.
    ack: Option<Bytes>,
    parent: Option<(ServerKey, u16)>,
    timers: Slots,
    /// Current timer A / E interval.
    interval: Duration,
    provisional: bool,
    cancel: Cancel,
    /// A CANCEL this table generated: its responses are absorbed.
    internal: bool,
    /// Timer C of this branch in milliseconds (0: none), restarted by provisionals.
    timer_c_ms: u32,
    /// The highest provisional code received (0: none), for `restart_timer_c` off.
    last_prov: u16,
}

impl ClientTxn {
    fn invite(&self) -> bool {
        self.key.method == Method::Invite
    }
}

/// Counts and sizes, for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableStats {
    /// Live server transactions.
    pub servers: usize,
    /// Live client transactions.
    pub clients: usize,
    /// Armed timers.
    pub timers_live: usize,
    /// Heap entries, stale ones included.
    pub timers_queued: usize,
    /// Datagrams waiting in [`TxnTable::poll_transmit`].
    pub transmits: usize,
    /// Events waiting in [`TxnTable::poll_event`].
    pub events: usize,
    /// Bytes of table structure (slabs, maps, heap, queues) by capacity, buffers excluded.
    pub struct_bytes: usize,
    /// Bytes of message buffers the transactions keep (requests, last responses, ACKs);
    /// shared buffers are counted once per holder.
    pub buffer_bytes: usize,
}

/// What [`TxnTable::new_transaction`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewTxn {
    /// A new server transaction.
    Created(ServerKey),
    /// The request is a retransmission of this transaction's; its last response was resent.
    Retransmission(ServerKey),
}

/// One shard of transactions. See the crate documentation for the shape of the API.
#[derive(Debug)]
pub struct TxnTable {
    cfg: TxnConfig,
    servers: Slab<ServerTxn>,
    clients: Slab<ClientTxn>,
    server_map: HashMap<ServerMatch, ServerKey>,
    client_map: HashMap<ClientMatch, ClientKey>,
    timers: TimerHeap,
    out: VecDeque<(Peer, Bytes, Option<TxnRef>)>,
    events: VecDeque<TxnEvent>,
    hasher: std::collections::hash_map::RandomState,
}

/// `now + d` without panicking on overflow (absurd configured times): capped at a year.
fn at(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(now)
}

/// The message as it goes on the wire: a slice of its buffer when unedited, else an exactly
/// sized copy with the edits applied (a transaction keeps it for retransmission, so no spare
/// capacity).
fn raw_bytes(msg: &SipMsg) -> Bytes {
    if msg.has_edits() {
        let mut v = Vec::with_capacity(msg.raw().len() + 256);
        let _ = msg.write_to(&mut v);
        Bytes::copy_from_slice(&v)
    } else {
        msg.bytes().slice_ref(msg.raw())
    }
}

impl TxnTable {
    /// An empty table.
    pub fn new(cfg: TxnConfig) -> Self {
        Self {
            cfg,
            servers: Slab::default(),
            clients: Slab::default(),
            server_map: HashMap::new(),
            client_map: HashMap::new(),
            timers: TimerHeap::default(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// The configuration.
    pub const fn config(&self) -> &TxnConfig {
        &self.cfg
    }

    /// True when no transaction is alive.
    pub fn is_empty(&self) -> bool {
        self.servers.len() == 0 && self.clients.len() == 0
    }

    /// Counts and sizes.
    pub fn stats(&self) -> TableStats {
        let map_entry = |k: usize, v: usize| k + v + 8;
        let struct_bytes = self.servers.capacity_bytes()
            + self.clients.capacity_bytes()
            + self.server_map.capacity()
                * map_entry(size_of::<ServerMatch>(), size_of::<ServerKey>())
            + self.client_map.capacity()
                * map_entry(size_of::<ClientMatch>(), size_of::<ClientKey>())
            + self.timers.capacity_bytes()
            + self.out.capacity() * size_of::<(Peer, Bytes, Option<TxnRef>)>()
            + self.events.capacity() * size_of::<TxnEvent>();
        TableStats {
            servers: self.servers.len(),
            clients: self.clients.len(),
            timers_live: self.timers.live(),
            timers_queued: self.timers.len(),
            transmits: self.out.len(),
            events: self.events.len(),
            struct_bytes,
            buffer_bytes: self.buffer_bytes(),
        }
    }

    fn buffer_bytes(&self) -> usize {
        let mut n = 0;
        for k in self.server_map.values() {
            if let Some(s) = self.servers.get(k.0) {
                n += s.req.len() + s.last.as_ref().map_or(0, Bytes::len);
                n += s.fork.as_ref().map_or(0, |_| size_of::<Fork>());
            }
        }
        for k in self.client_map.values() {
            if let Some(c) = self.clients.get(k.0) {
                n += c.req.len() + c.ack.as_ref().map_or(0, Bytes::len);
            }
        }
        n
    }

    /// State of a server transaction.
    pub fn server_state(&self, key: ServerKey) -> Option<ServerState> {
        self.servers.get(key.0).map(|s| s.state)
    }

    /// State of a client transaction.
    pub fn client_state(&self, key: ClientKey) -> Option<ClientState> {
        self.clients.get(key.0).map(|c| c.state)
    }

    /// The branches of a server transaction, in creation order.
    pub fn branches(&self, key: ServerKey) -> &[ClientKey] {
        self.servers
            .get(key.0)
            .and_then(|s| s.fork.as_deref())
            .map_or(&[], |f| f.branches.as_slice())
    }

    // ----- output -----

    /// Writes the next datagram into `buf` (cleared first).
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        let (t, data) = self.poll_transmit_bytes()?;
        buf.clear();
        buf.extend_from_slice(&data);
        Some(t)
    }

    /// The next datagram as a shared buffer (no copy): for a driver that sends after
    /// releasing its lock on the table.
    pub fn poll_transmit_bytes(&mut self) -> Option<(Transmit, Bytes)> {
        let (dest, data, txn) = self.out.pop_front()?;
        if self.out.is_empty() && self.out.capacity() > 256 {
            self.out.shrink_to(64);
        }
        let t = Transmit {
            dest,
            len: data.len(),
            txn,
        };
        Some((t, data))
    }

    /// The next event for the layer above.
    pub fn poll_event(&mut self) -> Option<TxnEvent> {
        let ev = self.events.pop_front();
        if self.events.is_empty() && self.events.capacity() > 64 {
            // An event holds a whole message: do not keep a burst's worth of them around.
            self.events.shrink_to(16);
        }
        ev
    }

    /// When [`Self::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek()
    }

    /// Queues a datagram outside any transaction (a forwarded ACK for a 2xx, a stateless
    /// reply or forward).
    pub fn send_stateless(&mut self, dest: Peer, data: Bytes) {
        self.out.push_back((dest, data, None));
    }

    /// The server key of `msg` with the configured RFC 2543 matching rules.
    fn smatch(
        &self,
        msg: &SipMsg,
        method: Method,
        to_tag: Option<&[u8]>,
    ) -> Result<ServerMatch, TxnError> {
        server_match(
            msg,
            method,
            to_tag,
            self.cfg.rfc2543_ruri,
            self.cfg.rfc2543_via1,
        )
    }

    fn transmit(&mut self, dest: Peer, data: Bytes, txn: TxnRef) {
        self.out.push_back((dest, data, Some(txn)));
    }

    fn local_tag(&self, key: ServerKey) -> [u8; 16] {
        let mut h = self.hasher.build_hasher();
        self.cfg.tag_seed.hash(&mut h);
        key.hash(&mut h);
        let v = h.finish();
        let mut out = [0u8; 16];
        for (i, o) in out.iter_mut().enumerate() {
            let nib = ((v >> (60 - 4 * i)) & 0xf) as u8;
            *o = if nib < 10 {
                b'0' + nib
            } else {
                b'a' + nib - 10
            };
        }
        out
    }

    // ----- input -----

    /// Handles a received message from `source`. Requests create or match server
    /// transactions; responses match client transactions. Errors say the message lacks what
    /// matching needs; the caller has usually rejected such messages with
    /// [`SipMsg::validate`] already.
    pub fn handle_message(
        &mut self,
        now: Instant,
        msg: SipMsg,
        source: Peer,
    ) -> Result<(), TxnError> {
        match msg.method() {
            Some(Method::Ack) => self.handle_ack(now, msg, source),
            Some(Method::Cancel) => self.handle_cancel(now, msg, source),
            Some(m) => self.handle_request(now, msg, m, source),
            None => self.handle_response(now, msg, source),
        }
    }

    /// The server transaction `msg` belongs to, without creating one: for a request its own
    /// transaction (a retransmission), for an ACK the INVITE transaction it acknowledges, for
    /// a CANCEL its own CANCEL transaction (see [`Self::find_cancelled`] for the INVITE).
    pub fn find_server(&self, msg: &SipMsg) -> Result<Option<ServerKey>, TxnError> {
        let method = msg.method().ok_or(TxnError::BadMessage("not a request"))?;
        let key = self.smatch(msg, method_class(method), None)?;
        if let Some(&sk) = self.server_map.get(&key) {
            return Ok(Some(sk));
        }
        if method == Method::Ack && matches!(key, ServerMatch::Rfc2543 { .. }) {
            let bare = self.smatch(msg, Method::Invite, Some(b""))?;
            if let Some(&sk) = self.server_map.get(&bare)
                && let Some(s) = self.servers.get(sk.0)
                && s.last.as_ref().is_some_and(|l| same_to_tag(l, msg))
            {
                return Ok(Some(sk));
            }
        }
        Ok(None)
    }

    /// The INVITE server transaction a CANCEL cancels, if it exists.
    pub fn find_cancelled(&self, msg: &SipMsg) -> Result<Option<ServerKey>, TxnError> {
        let key = self.smatch(msg, Method::Invite, None)?;
        Ok(self.server_map.get(&key).copied())
    }

    /// Creates the server transaction of a request on demand (OpenSIPS's `t_newtran`): no
    /// [`TxnEvent::Request`] is queued, the caller already has the request. When the request
    /// matches an existing transaction it is a retransmission: the last response is sent
    /// again and [`NewTxn::Retransmission`] returned. ACK and CANCEL go through
    /// [`Self::handle_message`] instead.
    pub fn new_transaction(
        &mut self,
        now: Instant,
        msg: &SipMsg,
        source: Peer,
    ) -> Result<NewTxn, TxnError> {
        let method = msg.method().ok_or(TxnError::BadMessage("not a request"))?;
        if matches!(method, Method::Ack | Method::Cancel) {
            return Err(TxnError::BadMessage(
                "ACK and CANCEL create no transaction here",
            ));
        }
        let key = self.smatch(msg, method, None)?;
        if let Some(&sk) = self.server_map.get(&key) {
            self.server_retransmission(sk);
            return Ok(NewTxn::Retransmission(sk));
        }
        let sk = self.new_server(now, key, method == Method::Invite, msg, source);
        Ok(NewTxn::Created(sk))
    }

    /// The request of a server transaction as it was when the transaction was created (the
    /// buffer is shared, not copied); empty once a final response went upstream.
    pub fn request(&self, sk: ServerKey) -> Option<Bytes> {
        self.servers.get(sk.0).map(|s| s.req.clone())
    }

    /// Sends the last response of a server transaction again (a retransmitted request).
    pub fn retransmit_reply(&mut self, sk: ServerKey) {
        self.server_retransmission(sk);
    }

    /// Where a client transaction sends its request (to match an asynchronous send failure
    /// reported by address, see [`Self::handle_transport_error`]).
    pub fn client_peer(&self, ck: ClientKey) -> Option<Peer> {
        self.clients.get(ck.0).map(|c| c.dest)
    }

    /// True when a CANCEL matched this INVITE server transaction.
    pub fn is_cancelled(&self, sk: ServerKey) -> bool {
        self.servers.get(sk.0).is_some_and(|s| s.cancelled)
    }

    fn handle_request(
        &mut self,
        now: Instant,
        msg: SipMsg,
        method: Method,
        source: Peer,
    ) -> Result<(), TxnError> {
        let key = self.smatch(&msg, method_class(method), None)?;
        if let Some(&sk) = self.server_map.get(&key) {
            self.server_retransmission(sk);
            return Ok(());
        }
        let invite = method == Method::Invite;
        let sk = self.new_server(now, key, invite, &msg, source);
        self.events.push_back(TxnEvent::Request {
            txn: sk,
            msg,
            source,
        });
        Ok(())
    }

    fn new_server(
        &mut self,
        now: Instant,
        key: ServerMatch,
        invite: bool,
        msg: &SipMsg,
        source: Peer,
    ) -> ServerKey {
        let key = key.detached();
        let txn = ServerTxn {
            key: key.clone(),
            invite,
            state: if invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            req: raw_bytes(msg),
            source,
            last: None,
            timers: Slots::default(),
            interval: self.cfg.t1,
            fork: None,
            cancelled: false,
            cancel_hdrs: Bytes::new(),
            ack_hdrs: Bytes::new(),
            keep_branches_on_2xx: false,
            branch_timers: None,
        };
        let sk = ServerKey(self.servers.insert(txn));
        self.server_map.insert(key, sk);
        if invite {
            match self.cfg.trying {
                Trying::Immediately => {
                    let _ = self.reply(now, sk, 100, None);
                }
                Trying::After(d) => self.arm_server(sk, TimerKind::Trying, at(now, d)),
                Trying::Never => {}
            }
        }
        sk
    }

    fn server_retransmission(&mut self, sk: ServerKey) {
        let Some(s) = self.servers.get(sk.0) else {
            return;
        };
        let resend = match s.state {
            ServerState::Proceeding | ServerState::Completed => s.last.clone(),
            ServerState::Trying | ServerState::Confirmed | ServerState::Accepted => None,
        };
        let dest = s.source;
        match resend {
            Some(b) if b.is_empty() => {
                let _ = self.resend_trying(sk);
            }
            Some(b) => self.transmit(dest, b, TxnRef::Server(sk)),
            None => {}
        }
    }

    fn resend_trying(&mut self, sk: ServerKey) -> Result<(), TxnError> {
        let s = self.servers.get(sk.0).ok_or(TxnError::NoTransaction)?;
        let req = SipMsg::parse(s.req.clone())?;
        let mut out = Vec::with_capacity(s.req.len() + 32);
        let opts = ReplyOpts {
            server: self.cfg.server.as_deref(),
            ..ReplyOpts::default()
        };
        build_reply(&req, 100, reason_phrase(100), &opts, &mut out)?;
        let dest = s.source;
        self.transmit(dest, Bytes::from(out), TxnRef::Server(sk));
        Ok(())
    }

    fn handle_ack(&mut self, now: Instant, msg: SipMsg, source: Peer) -> Result<(), TxnError> {
        let key = self.smatch(&msg, Method::Invite, None)?;
        let mut found = self.server_map.get(&key).copied();
        if found.is_none() && matches!(key, ServerMatch::Rfc2543 { .. }) {
            // RFC 2543: the ACK carries the To tag of our response; the INVITE had none.
            let bare = self.smatch(&msg, Method::Invite, Some(b""))?;
            if let Some(&sk) = self.server_map.get(&bare)
                && let Some(s) = self.servers.get(sk.0)
                && s.last.as_ref().is_some_and(|l| same_to_tag(l, &msg))
            {
                found = Some(sk);
            }
        }
        let Some(sk) = found else {
            self.events.push_back(TxnEvent::Ack {
                txn: None,
                msg,
                source,
            });
            return Ok(());
        };
        let reliable = self
            .servers
            .get(sk.0)
            .is_some_and(|s| s.source.is_reliable());
        match self.server_state(sk) {
            Some(ServerState::Completed) => {
                let t4 = if reliable {
                    Duration::ZERO
                } else {
                    self.cfg.t4
                };
                if let Some(s) = self.servers.get_mut(sk.0) {
                    s.state = ServerState::Confirmed;
                    self.timers.disarm(&mut s.timers, 0);
                }
                self.arm_server(sk, TimerKind::I, at(now, t4));
            }
            Some(ServerState::Accepted) => self.events.push_back(TxnEvent::Ack {
                txn: Some(sk),
                msg,
                source,
            }),
            _ => {}
        }
        Ok(())
    }

    fn handle_cancel(&mut self, now: Instant, msg: SipMsg, source: Peer) -> Result<(), TxnError> {
        let key = self.smatch(&msg, Method::Cancel, None)?;
        if let Some(&sk) = self.server_map.get(&key) {
            self.server_retransmission(sk);
            return Ok(());
        }
        let invite_key = self.smatch(&msg, Method::Invite, None)?;
        let invite = self.server_map.get(&invite_key).copied();
        let ck = self.new_server(now, key, false, &msg, source);
        let Some(ik) = invite else {
            self.events.push_back(TxnEvent::Request {
                txn: ck,
                msg,
                source,
            });
            return Ok(());
        };
        self.reply(now, ck, 200, None)?;
        let proceeding = self
            .servers
            .get_mut(ik.0)
            .filter(|s| s.state == ServerState::Proceeding && !s.cancelled)
            .map(|s| s.cancelled = true)
            .is_some();
        if proceeding {
            self.cancel_branches(now, ik);
            self.events.push_back(TxnEvent::Cancelled { txn: ik });
        }
        Ok(())
    }

    fn handle_response(&mut self, now: Instant, msg: SipMsg, source: Peer) -> Result<(), TxnError> {
        let code = msg.status().unwrap_or(500);
        let key = client_match(&msg)?;
        let Some(&ck) = self.client_map.get(&key) else {
            self.events.push_back(TxnEvent::StrayReply { msg, source });
            return Ok(());
        };
        let Some(c) = self.clients.get(ck.0) else {
            return Ok(());
        };
        if c.invite() {
            self.invite_client_response(now, ck, msg, code)
        } else {
            self.plain_client_response(now, ck, msg, code);
            Ok(())
        }
    }

    fn invite_client_response(
        &mut self,
        now: Instant,
        ck: ClientKey,
        msg: SipMsg,
        code: u16,
    ) -> Result<(), TxnError> {
        let Some(c) = self.clients.get_mut(ck.0) else {
            return Ok(());
        };
        match (c.state, code) {
            (ClientState::Calling | ClientState::Proceeding, 100..=199) => {
                c.state = ClientState::Proceeding;
                c.provisional = true;
                self.timers.disarm(&mut c.timers, 0);
                self.timers.disarm(&mut c.timers, 1);
                let pending_cancel = c.cancel == Cancel::Pending;
                // Without restart_timer_c (OpenSIPS's restart_fr_on_each_reply 0), only a
                // provisional above the last one (and 180 or more after a first) restarts C.
                let last = c.last_prov;
                let restart =
                    self.cfg.restart_timer_c || (code > last && (code >= 180 || last == 0));
                c.last_prov = c.last_prov.max(code);
                // RFC 3261 §16.6: 101-199 reset C; from_provisional: a 100 starts it too.
                let counts = code > 100 || self.cfg.timer_c_from_provisional;
                if counts && c.cancel == Cancel::No && c.timer_c_ms > 0 && restart {
                    let tc = Duration::from_millis(u64::from(c.timer_c_ms));
                    self.arm_client(ck, TimerKind::C, at(now, tc));
                }
                if pending_cancel {
                    self.send_cancel(now, ck)?;
                }
                self.branch_provisional(ck, msg, code);
            }
            (ClientState::Calling | ClientState::Proceeding, 200..=299) => {
                c.state = ClientState::Accepted;
                // Only 2xx (relayed) can follow: nothing is built from the request any more.
                c.req = Bytes::new();
                self.timers.disarm_all(&mut c.timers);
                let m = self.cfg.t1x64();
                self.arm_client(ck, TimerKind::M, at(now, m));
                self.branch_final(now, ck, code, Some(msg));
            }
            (ClientState::Calling | ClientState::Proceeding, _) => {
                let ack = {
                    let invite = SipMsg::parse(c.req.clone())?;
                    let mut out = Vec::with_capacity(c.req.len() + 64);
                    build_ack_for_non2xx(&invite, &msg, &mut out)?;
                    add_user_agent(&mut out, self.cfg.user_agent.as_deref());
                    if let Some(s) = c.parent.and_then(|(sk, _)| self.servers.get(sk.0))
                        && !s.ack_hdrs.is_empty()
                    {
                        const END: &[u8] = b"Content-Length: 0\r\n\r\n";
                        if out.ends_with(END) {
                            out.truncate(out.len() - END.len());
                            out.extend_from_slice(&s.ack_hdrs);
                            out.extend_from_slice(END);
                        }
                    }
                    Bytes::copy_from_slice(&out)
                };
                c.state = ClientState::Completed;
                c.req = Bytes::new();
                c.ack = Some(ack.clone());
                self.timers.disarm_all(&mut c.timers);
                let d = if c.dest.is_reliable() {
                    Duration::ZERO
                } else {
                    self.cfg.timer_d
                };
                let dest = c.dest;
                self.transmit(dest, ack, TxnRef::Client(ck));
                self.arm_client(ck, TimerKind::D, at(now, d));
                self.branch_final(now, ck, code, Some(msg));
            }
            (ClientState::Completed, 300..=699) => {
                if let Some(a) = c.ack.clone() {
                    let dest = c.dest;
                    self.transmit(dest, a, TxnRef::Client(ck));
                }
            }
            (ClientState::Accepted, 200..=299) => {
                // RFC 6026: every 2xx (retransmission or another fork's) goes up.
                self.branch_final(now, ck, code, Some(msg));
            }
            _ => {}
        }
        Ok(())
    }

    fn plain_client_response(&mut self, now: Instant, ck: ClientKey, msg: SipMsg, code: u16) {
        let Some(c) = self.clients.get_mut(ck.0) else {
            return;
        };
        match (c.state, code) {
            (ClientState::Trying | ClientState::Proceeding, 100..=199) => {
                c.state = ClientState::Proceeding;
                c.provisional = true;
                self.branch_provisional(ck, msg, code);
            }
            (ClientState::Trying | ClientState::Proceeding, _) => {
                c.state = ClientState::Completed;
                c.req = Bytes::new();
                self.timers.disarm_all(&mut c.timers);
                let k = if c.dest.is_reliable() {
                    Duration::ZERO
                } else {
                    self.cfg.t4
                };
                self.arm_client(ck, TimerKind::K, at(now, k));
                self.branch_final(now, ck, code, Some(msg));
            }
            _ => {}
        }
    }

    // ----- branch bookkeeping (the proxy's response context) -----

    fn parent_of(&self, ck: ClientKey) -> Option<(ServerKey, u16)> {
        self.clients
            .get(ck.0)
            .filter(|c| !c.internal)
            .and_then(|c| c.parent)
    }

    fn is_internal(&self, ck: ClientKey) -> bool {
        self.clients.get(ck.0).is_some_and(|c| c.internal)
    }

    fn branch_provisional(&mut self, ck: ClientKey, msg: SipMsg, code: u16) {
        if self.is_internal(ck) {
            return;
        }
        let parent = self.parent_of(ck);
        let relay = match parent {
            Some((sk, _)) => self.servers.get(sk.0).is_some_and(|s| {
                s.state == ServerState::Proceeding
                    && s.fork
                        .as_ref()
                        .is_some_and(|f| f.agg.on_provisional(code) == BranchVerdict::Relay)
            }),
            None => code > 100,
        };
        self.events.push_back(TxnEvent::Reply {
            branch: ck,
            server: parent.map(|p| p.0),
            msg,
            relay,
        });
    }

    /// A final outcome of a branch: a response (`msg`) or a local failure (408/503).
    fn branch_final(&mut self, now: Instant, ck: ClientKey, code: u16, msg: Option<SipMsg>) {
        if self.is_internal(ck) {
            return;
        }
        let parent = self.parent_of(ck);
        let (raw, challenges) = match &msg {
            Some(m) => (
                Some(raw_bytes(m)),
                if matches!(code, 401 | 407) {
                    challenge_lines(m)
                } else {
                    None
                },
            ),
            None => (None, None),
        };
        let verdict = parent.and_then(|(sk, idx)| {
            let s = self.servers.get_mut(sk.0)?;
            let live = matches!(
                s.state,
                ServerState::Trying | ServerState::Proceeding | ServerState::Accepted
            );
            let f = s.fork.as_mut()?;
            let v = f.agg.on_final(idx, code, raw, challenges);
            live.then_some((sk, v))
        });
        let relay = match verdict {
            Some((_, BranchVerdict::Relay | BranchVerdict::RelayFirst2xx)) => true,
            // A 2xx is relayed even when the server transaction is gone (RFC 6026 §7.3:
            // forwarded statelessly then).
            _ => (200..300).contains(&code),
        };
        match msg {
            Some(msg) => self.events.push_back(TxnEvent::Reply {
                branch: ck,
                server: parent.map(|p| p.0),
                msg,
                relay,
            }),
            None => self.events.push_back(TxnEvent::BranchFailed {
                branch: ck,
                server: parent.map(|p| p.0),
                code,
            }),
        }
        match verdict {
            Some((sk, BranchVerdict::RelayFirst2xx))
                if self.cfg.two_xx_cancels && !self.keeps_branches(sk) =>
            {
                self.cancel_branches(now, sk);
            }
            Some((sk, BranchVerdict::Stop6xx)) => {
                if self.cfg.six_xx_cancels {
                    self.cancel_branches(now, sk);
                }
                self.emit_best(sk);
            }
            Some((sk, BranchVerdict::AllDone)) => self.emit_best(sk),
            _ => {}
        }
    }

    fn emit_best(&mut self, sk: ServerKey) {
        let tag = self.local_tag(sk);
        let Some(s) = self.servers.get(sk.0) else {
            return;
        };
        if s.state != ServerState::Proceeding && s.state != ServerState::Trying {
            return;
        }
        let Some(f) = s.fork.as_ref() else {
            return;
        };
        let Ok(req) = SipMsg::parse(s.req.clone()) else {
            return;
        };
        if let Ok(Some(msg)) = f.agg.assemble(
            &req,
            self.cfg.map_503_to_500,
            &tag,
            self.cfg.server.as_deref(),
        ) {
            let code = msg.status().unwrap_or(500);
            self.events
                .push_back(TxnEvent::BestFinal { txn: sk, code, msg });
        }
    }

    // ----- sending requests -----

    /// Starts a client transaction for `req` (a serialized request whose top Via carries the
    /// branch that identifies it) towards `dest`. With `parent`, it is a branch of that server
    /// transaction and its final response takes part in the §16.7 selection.
    pub fn send_request(
        &mut self,
        now: Instant,
        req: Bytes,
        dest: Peer,
        parent: Option<ServerKey>,
    ) -> Result<ClientKey, TxnError> {
        let msg = SipMsg::parse(req).map_err(|_| TxnError::BadMessage("unparsable request"))?;
        let method = match msg.method() {
            None => return Err(TxnError::BadMessage("not a request")),
            Some(Method::Ack) => return Err(TxnError::BadMessage("ACK is not a transaction")),
            Some(m) => m,
        };
        let key = client_match(&msg)?;
        if key.method != method {
            return Err(TxnError::BadMessage("CSeq method"));
        }
        if self.client_map.contains_key(&key) {
            return Err(TxnError::DuplicateBranch);
        }
        let slot = match parent {
            Some(sk) => {
                let stop = self.cfg.six_xx_cancels;
                let s = self.servers.get_mut(sk.0).ok_or(TxnError::NoTransaction)?;
                if !matches!(s.state, ServerState::Proceeding | ServerState::Trying) {
                    return Err(TxnError::WrongState("server transaction answered"));
                }
                if s.cancelled && method == Method::Invite {
                    return Err(TxnError::WrongState("server transaction cancelled"));
                }
                let f = s.fork.get_or_insert_with(|| {
                    Box::new(Fork {
                        agg: ReplyAggregator::new(stop),
                        branches: SmallVec::new(),
                    })
                });
                let idx = f
                    .agg
                    .add_branch()
                    .ok_or(TxnError::WrongState("response context answered"))?;
                Some((sk, idx))
            }
            None => None,
        };
        let ck = self.new_client(now, key, raw_bytes(&msg), dest, slot, false);
        if let Some((sk, _)) = slot
            && let Some(f) = self.servers.get_mut(sk.0).and_then(|s| s.fork.as_mut())
        {
            f.branches.push(ck);
        }
        Ok(ck)
    }

    fn new_client(
        &mut self,
        now: Instant,
        key: ClientMatch,
        req: Bytes,
        dest: Peer,
        parent: Option<(ServerKey, u16)>,
        internal: bool,
    ) -> ClientKey {
        let invite = key.method == Method::Invite;
        let key = key.detached();
        let over = parent
            .and_then(|(sk, _)| self.servers.get(sk.0))
            .and_then(|s| s.branch_timers.as_deref().copied())
            .unwrap_or_default();
        let timer_c = over.timer_c.or(self.cfg.timer_c);
        let timer_c_ms = timer_c.map_or(0, |d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX));
        let txn = ClientTxn {
            key: key.clone(),
            state: if invite {
                ClientState::Calling
            } else {
                ClientState::Trying
            },
            req: req.clone(),
            dest,
            ack: None,
            parent,
            timers: Slots::default(),
            interval: self.cfg.t1,
            provisional: false,
            cancel: Cancel::No,
            internal,
            timer_c_ms,
            last_prov: 0,
        };
        let ck = ClientKey(self.clients.insert(txn));
        self.client_map.insert(key, ck);
        let t1 = self.cfg.t1;
        let t64 = over.fr_timeout.unwrap_or_else(|| self.cfg.timer_bf());
        if invite {
            if !dest.is_reliable() {
                self.arm_client(ck, TimerKind::A, at(now, t1));
            }
            self.arm_client(ck, TimerKind::B, at(now, t64));
            if let Some(c) = timer_c
                && !self.cfg.timer_c_from_provisional
            {
                self.arm_client(ck, TimerKind::C, at(now, c));
            }
        } else {
            if !dest.is_reliable() {
                self.arm_client(ck, TimerKind::E, at(now, t1));
            }
            self.arm_client(ck, TimerKind::F, at(now, t64));
        }
        self.transmit(dest, req, TxnRef::Client(ck));
        ck
    }

    /// Cancels an INVITE client transaction (RFC 3261 §9.1): the CANCEL goes out now if a
    /// provisional response arrived, or as soon as one does; nothing happens once a final
    /// response arrived.
    pub fn cancel_branch(&mut self, now: Instant, ck: ClientKey) -> Result<(), TxnError> {
        let c = self.clients.get_mut(ck.0).ok_or(TxnError::NoTransaction)?;
        if !c.invite() || c.internal || c.cancel != Cancel::No {
            return Ok(());
        }
        match c.state {
            ClientState::Calling => {
                c.cancel = Cancel::Pending;
                Ok(())
            }
            ClientState::Proceeding => self.send_cancel(now, ck),
            _ => Ok(()),
        }
    }

    /// Header lines (each ending in CRLF: a `Reason`, headers the proxy adds to every request
    /// of the transaction) that the CANCELs of `sk`'s branches carry from now on.
    pub fn set_cancel_headers(&mut self, sk: ServerKey, hdrs: Bytes) {
        if let Some(s) = self.servers.get_mut(sk.0) {
            s.cancel_hdrs = hdrs;
        }
    }

    /// Timers B/F and C for the branches `sk` creates from now on (branches already sent
    /// keep theirs); `BranchTimers::default()` goes back to the configuration's.
    pub fn set_branch_timers(&mut self, sk: ServerKey, t: BranchTimers) {
        if let Some(s) = self.servers.get_mut(sk.0) {
            s.branch_timers = (t != BranchTimers::default()).then(|| Box::new(t));
        }
    }

    /// Timer C of one pending INVITE branch (`None`: the configuration's), e.g. set while its
    /// provisional response is processed: once a provisional came, C runs again from `now`
    /// with the new value; later provisionals restart it with that value too.
    pub fn set_client_timer_c(&mut self, now: Instant, ck: ClientKey, d: Option<Duration>) {
        let d = d.or(self.cfg.timer_c);
        let Some(c) = self.clients.get_mut(ck.0) else {
            return;
        };
        if !c.invite() || c.internal {
            return;
        }
        c.timer_c_ms = d.map_or(0, |d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX));
        let live =
            matches!(c.state, ClientState::Proceeding) && c.provisional && c.cancel == Cancel::No;
        match d {
            Some(d) if live => self.arm_client(ck, TimerKind::C, at(now, d)),
            None if live => self.timers.disarm(&mut c.timers, TimerKind::C.slot()),
            _ => {}
        }
    }

    /// The branch timer overrides of `sk` (default: none).
    pub fn branch_timers(&self, sk: ServerKey) -> BranchTimers {
        self.servers
            .get(sk.0)
            .and_then(|s| s.branch_timers.as_deref().copied())
            .unwrap_or_default()
    }

    /// Header lines (each ending in CRLF) that the ACKs of `sk`'s branches (to their negative
    /// final responses) carry from now on.
    pub fn set_ack_headers(&mut self, sk: ServerKey, hdrs: Bytes) {
        if let Some(s) = self.servers.get_mut(sk.0) {
            s.ack_hdrs = hdrs;
        }
    }

    /// With `keep`, the first 2xx of `sk` does not cancel its other pending branches (RFC 3841
    /// §9.1 `no-cancel`): they run until their own final responses or timeouts.
    pub fn set_keep_branches_on_2xx(&mut self, sk: ServerKey, keep: bool) {
        if let Some(s) = self.servers.get_mut(sk.0) {
            s.keep_branches_on_2xx = keep;
        }
    }

    fn keeps_branches(&self, sk: ServerKey) -> bool {
        self.servers
            .get(sk.0)
            .is_some_and(|s| s.keep_branches_on_2xx)
    }

    /// The branch whose final response is the best of `sk` so far (§16.7 selection), if any
    /// branch has a non-2xx final response: its index (in creation order, from 0) and key.
    pub fn selected_branch(&self, sk: ServerKey) -> Option<(usize, ClientKey)> {
        let f = self.servers.get(sk.0)?.fork.as_deref()?;
        let idx = usize::from(f.agg.select()?.branch);
        Some((idx, *f.branches.get(idx)?))
    }

    /// Cancels every pending INVITE branch of a server transaction.
    pub fn cancel_branches(&mut self, now: Instant, sk: ServerKey) {
        let branches: SmallVec<[ClientKey; 4]> = self
            .servers
            .get(sk.0)
            .and_then(|s| s.fork.as_deref())
            .map(|f| f.branches.iter().copied().collect())
            .unwrap_or_default();
        for ck in branches {
            let _ = self.cancel_branch(now, ck);
        }
    }

    fn send_cancel(&mut self, now: Instant, ck: ClientKey) -> Result<(), TxnError> {
        let Some(c) = self.clients.get_mut(ck.0) else {
            return Err(TxnError::NoTransaction);
        };
        c.cancel = Cancel::Sent;
        let invite = SipMsg::parse(c.req.clone())?;
        let extra = c
            .parent
            .and_then(|(sk, _)| self.servers.get(sk.0))
            .map(|s| s.cancel_hdrs.clone())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(c.req.len() + extra.len() + 64);
        build_cancel(&invite, None, &mut out)?;
        add_user_agent(&mut out, self.cfg.user_agent.as_deref());
        // The extra lines go before the closing Content-Length.
        const END: &[u8] = b"Content-Length: 0\r\n\r\n";
        if !extra.is_empty() && out.ends_with(END) {
            out.truncate(out.len() - END.len());
            out.extend_from_slice(&extra);
            out.extend_from_slice(END);
        }
        let Some(c) = self.clients.get(ck.0) else {
            return Err(TxnError::NoTransaction);
        };
        let cancel = Bytes::copy_from_slice(&out);
        let dest = c.dest;
        let key = ClientMatch {
            branch: c.key.branch.clone(),
            method: Method::Cancel,
        };
        let wait = self.cfg.t1x64();
        self.arm_client(ck, TimerKind::CancelWait, at(now, wait));
        if !self.client_map.contains_key(&key) {
            self.new_client(now, key, cancel, dest, None, true);
        }
        Ok(())
    }

    // ----- sending responses -----

    /// Sends a response on a server transaction (a relayed one, or one built by the caller).
    pub fn send_reply(
        &mut self,
        now: Instant,
        sk: ServerKey,
        msg: &SipMsg,
    ) -> Result<(), TxnError> {
        let code = msg.status().ok_or(TxnError::BadMessage("not a response"))?;
        self.send_reply_bytes(now, sk, code, raw_bytes(msg), false)
    }

    /// Builds and sends a response to the transaction's request (a local reply: 100, 487,
    /// 404...). A To tag is added for codes above 100 when the request has none.
    pub fn reply(
        &mut self,
        now: Instant,
        sk: ServerKey,
        code: u16,
        reason: Option<&[u8]>,
    ) -> Result<(), TxnError> {
        self.reply_with(now, sk, code, reason, b"")
    }

    /// [`Self::reply`] with extra header lines (each ending in CRLF), e.g. a challenge.
    pub fn reply_with(
        &mut self,
        now: Instant,
        sk: ServerKey,
        code: u16,
        reason: Option<&[u8]>,
        extra_headers: &[u8],
    ) -> Result<(), TxnError> {
        let tag = self.local_tag(sk);
        let s = self.servers.get(sk.0).ok_or(TxnError::NoTransaction)?;
        let req = SipMsg::parse(s.req.clone())?;
        let mut out = Vec::with_capacity(s.req.len() + extra_headers.len() + 64);
        let opts = ReplyOpts {
            to_tag: Some(&tag),
            extra_headers,
            server: self.cfg.server.as_deref(),
            ..ReplyOpts::default()
        };
        build_reply(
            &req,
            code,
            reason.unwrap_or_else(|| reason_phrase(code)),
            &opts,
            &mut out,
        )?;
        self.send_reply_bytes(now, sk, code, Bytes::copy_from_slice(&out), true)
    }

    /// [`Self::reply_with`] with the To tag and body chosen by the caller (MI `t_reply`).
    #[allow(clippy::too_many_arguments)] // a reply's parts, as OpenSIPS's t_reply takes them
    pub fn reply_full(
        &mut self,
        now: Instant,
        sk: ServerKey,
        code: u16,
        reason: &[u8],
        to_tag: Option<&[u8]>,
        extra_headers: &[u8],
        body: Option<(&[u8], &[u8])>,
    ) -> Result<(), TxnError> {
        let tag = self.local_tag(sk);
        let s = self.servers.get(sk.0).ok_or(TxnError::NoTransaction)?;
        let req = SipMsg::parse(s.req.clone())?;
        let mut out = Vec::with_capacity(s.req.len() + extra_headers.len() + 64);
        let opts = ReplyOpts {
            to_tag: Some(to_tag.unwrap_or(&tag)),
            extra_headers,
            body,
            server: self.cfg.server.as_deref(),
            ..ReplyOpts::default()
        };
        build_reply(&req, code, reason, &opts, &mut out)?;
        self.send_reply_bytes(now, sk, code, Bytes::copy_from_slice(&out), true)
    }

    /// `local`: the reply was built here from the request (a UAS may build its 2xx again to
    /// retransmit it, so the request stays for an INVITE's 2xx).
    fn send_reply_bytes(
        &mut self,
        now: Instant,
        sk: ServerKey,
        code: u16,
        data: Bytes,
        local: bool,
    ) -> Result<(), TxnError> {
        let t1 = self.cfg.t1;
        let t64 = self.cfg.t1x64();
        let wait = self.cfg.wait;
        let s = self.servers.get_mut(sk.0).ok_or(TxnError::NoTransaction)?;
        let reliable = s.source.is_reliable();
        let dest = s.source;
        let mut cancel_others = false;
        match (s.invite, s.state, code) {
            (true, ServerState::Proceeding, 100..=199) => {
                // A 100 is cheap to rebuild: keep only a marker (an empty buffer) for it.
                s.last = Some(if code == 100 {
                    Bytes::new()
                } else {
                    data.clone()
                });
                self.timers.disarm(&mut s.timers, 0);
            }
            (true, ServerState::Proceeding, 200..=299) => {
                s.state = ServerState::Accepted;
                s.last = None;
                self.timers.disarm(&mut s.timers, 0);
                cancel_others = !s.keep_branches_on_2xx;
                self.arm_server(sk, TimerKind::L, at(now, wait.unwrap_or(t64)));
            }
            (true, ServerState::Proceeding, _) => {
                s.state = ServerState::Completed;
                s.last = Some(data.clone());
                s.interval = t1;
                self.timers.disarm(&mut s.timers, 0);
                if !reliable {
                    self.arm_server(sk, TimerKind::G, at(now, t1));
                }
                self.arm_server(sk, TimerKind::H, at(now, t64));
                cancel_others = true;
            }
            (true, ServerState::Accepted, 200..=299) => {}
            (false, ServerState::Trying | ServerState::Proceeding, 100..=199) => {
                s.state = ServerState::Proceeding;
                s.last = Some(data.clone());
            }
            (false, ServerState::Trying | ServerState::Proceeding, _) => {
                s.state = ServerState::Completed;
                s.last = Some(data.clone());
                let j = if reliable {
                    Duration::ZERO
                } else {
                    wait.unwrap_or(t64)
                };
                self.arm_server(sk, TimerKind::J, at(now, j));
            }
            (_, state, _) => {
                return Err(TxnError::WrongState(match state {
                    ServerState::Trying => "Trying",
                    ServerState::Proceeding => "Proceeding",
                    ServerState::Completed => "Completed",
                    ServerState::Confirmed => "Confirmed",
                    ServerState::Accepted => "Accepted",
                }));
            }
        }
        self.transmit(dest, data, TxnRef::Server(sk));
        if code >= 200
            && let Some(s) = self.servers.get_mut(sk.0)
        {
            // Final: no other local reply can follow, so the request and the branches' stored
            // responses are no longer needed (only `last`, for retransmissions, stays).
            if !(local && s.invite && code < 300) {
                s.req = Bytes::new();
            }
            if let Some(f) = s.fork.as_mut() {
                f.agg.release_replies();
            }
        }
        if cancel_others {
            self.cancel_branches(now, sk);
        }
        Ok(())
    }

    // ----- timers -----

    fn arm_server(&mut self, sk: ServerKey, kind: TimerKind, at: Instant) {
        if let Some(s) = self.servers.get_mut(sk.0) {
            self.timers.arm(&mut s.timers, true, sk.0, kind, at);
        }
    }

    fn arm_client(&mut self, ck: ClientKey, kind: TimerKind, at: Instant) {
        if let Some(c) = self.clients.get_mut(ck.0) {
            self.timers.arm(&mut c.timers, false, ck.0, kind, at);
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(e) = self.timers.pop_due(now) {
            let live = if e.server {
                self.servers
                    .get_mut(e.id)
                    .is_some_and(|s| self.timers.fire(&mut s.timers, &e))
            } else {
                self.clients
                    .get_mut(e.id)
                    .is_some_and(|c| self.timers.fire(&mut c.timers, &e))
            };
            if !live {
                continue;
            }
            if e.server {
                self.server_timer(now, ServerKey(e.id), e.kind);
            } else {
                self.client_timer(now, ClientKey(e.id), e.kind);
            }
        }
        let (servers, clients) = (&self.servers, &self.clients);
        self.timers.maybe_compact(|e: &Entry| {
            let slots = if e.server {
                servers.get(e.id).map(|s| &s.timers)
            } else {
                clients.get(e.id).map(|c| &c.timers)
            };
            slots.is_some_and(|t| t[e.kind.slot()] == Some((e.at, e.kind)))
        });
    }

    fn server_timer(&mut self, now: Instant, sk: ServerKey, kind: TimerKind) {
        let t2 = self.cfg.t2;
        let Some(s) = self.servers.get_mut(sk.0) else {
            return;
        };
        match (kind, s.state) {
            (TimerKind::Trying, ServerState::Proceeding) if s.last.is_none() => {
                let _ = self.reply(now, sk, 100, None);
            }
            (TimerKind::G, ServerState::Completed) => {
                let resend = s.last.clone();
                let dest = s.source;
                s.interval = s.interval.saturating_mul(2).min(t2);
                let next = at(now, s.interval);
                if let Some(b) = resend {
                    self.transmit(dest, b, TxnRef::Server(sk));
                }
                self.arm_server(sk, TimerKind::G, next);
            }
            (TimerKind::H, ServerState::Completed) => {
                self.events.push_back(TxnEvent::AckTimeout { txn: sk });
                self.remove_server(sk);
            }
            (TimerKind::I | TimerKind::J | TimerKind::L, _) => self.remove_server(sk),
            _ => {}
        }
    }

    fn client_timer(&mut self, now: Instant, ck: ClientKey, kind: TimerKind) {
        let t2 = self.cfg.t2;
        let Some(c) = self.clients.get_mut(ck.0) else {
            return;
        };
        match (kind, c.state) {
            (TimerKind::A, ClientState::Calling) => {
                c.interval = c.interval.saturating_mul(2);
                let next = at(now, c.interval);
                let (dest, req) = (c.dest, c.req.clone());
                self.transmit(dest, req, TxnRef::Client(ck));
                self.arm_client(ck, TimerKind::A, next);
            }
            (TimerKind::E, ClientState::Trying | ClientState::Proceeding) => {
                c.interval = if c.state == ClientState::Trying {
                    c.interval.saturating_mul(2).min(t2)
                } else {
                    t2
                };
                let next = at(now, c.interval);
                let (dest, req) = (c.dest, c.req.clone());
                self.transmit(dest, req, TxnRef::Client(ck));
                self.arm_client(ck, TimerKind::E, next);
            }
            (TimerKind::B, ClientState::Calling)
            | (TimerKind::F, ClientState::Trying | ClientState::Proceeding)
            | (TimerKind::CancelWait, ClientState::Calling | ClientState::Proceeding) => {
                self.fail_client(now, ck, 408);
            }
            (TimerKind::C, ClientState::Calling | ClientState::Proceeding) => {
                if c.provisional {
                    let _ = self.send_cancel(now, ck);
                    if self.cfg.timer_c_fails_at_once {
                        // The branch counts as failed now; its late final response is
                        // still acknowledged but takes no part in the selection.
                        self.branch_final(now, ck, 408, None);
                    }
                } else {
                    self.fail_client(now, ck, 408);
                }
            }
            (TimerKind::D | TimerKind::K | TimerKind::M, _) => self.remove_client(ck),
            _ => {}
        }
    }

    fn fail_client(&mut self, now: Instant, ck: ClientKey, code: u16) {
        self.branch_final(now, ck, code, None);
        self.remove_client(ck);
    }

    /// A send for `txn` failed (connection refused, ICMP unreachable...): a client
    /// transaction ends as if it had received 503 (RFC 3261 §8.1.3.1, §16.7); a server
    /// transaction is dropped.
    pub fn handle_transport_error(&mut self, now: Instant, txn: TxnRef) {
        match txn {
            TxnRef::Client(ck) => {
                let pending = self.clients.get(ck.0).is_some_and(|c| {
                    matches!(
                        c.state,
                        ClientState::Calling | ClientState::Trying | ClientState::Proceeding
                    )
                });
                if pending {
                    self.fail_client(now, ck, 503);
                }
            }
            TxnRef::Server(sk) => self.remove_server(sk),
        }
    }

    fn remove_server(&mut self, sk: ServerKey) {
        if let Some(mut s) = self.servers.remove(sk.0) {
            self.timers.disarm_all(&mut s.timers);
            if self.server_map.get(&s.key) == Some(&sk) {
                self.server_map.remove(&s.key);
            }
            self.events.push_back(TxnEvent::Terminated {
                txn: TxnRef::Server(sk),
            });
        }
        self.after_remove();
    }

    fn remove_client(&mut self, ck: ClientKey) {
        if let Some(mut c) = self.clients.remove(ck.0) {
            self.timers.disarm_all(&mut c.timers);
            if self.client_map.get(&c.key) == Some(&ck) {
                self.client_map.remove(&c.key);
            }
            self.events.push_back(TxnEvent::Terminated {
                txn: TxnRef::Client(ck),
            });
        }
        self.after_remove();
    }

    fn after_remove(&mut self) {
        if self.is_empty() {
            self.servers.shrink_if_empty();
            self.clients.shrink_if_empty();
            if self.server_map.capacity() > 64 {
                self.server_map.shrink_to_fit();
            }
            if self.client_map.capacity() > 64 {
                self.client_map.shrink_to_fit();
            }
        }
    }
}

/// True when the To tag of response `last` equals the To tag of `msg`.
fn same_to_tag(last: &Bytes, msg: &SipMsg) -> bool {
    let Ok(r) = SipMsg::parse(last.clone()) else {
        return false;
    };
    match (r.to(), msg.to()) {
        (Ok(a), Ok(b)) => a.tag().is_some() && a.tag() == b.tag(),
        _ => false,
    }
}

/// Adds `User-Agent: ua` as the last header of a request we built (before Content-Length
/// when that closes the header section, so extra lines can still go before it).
fn add_user_agent(out: &mut Vec<u8>, ua: Option<&[u8]>) {
    let Some(ua) = ua else {
        return;
    };
    let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") else {
        return;
    };
    let hdrs = &out[..end + 2];
    let at = match hdrs
        .windows(17)
        .rposition(|w| w.eq_ignore_ascii_case(b"\r\nContent-Length:"))
    {
        Some(p) => p + 2,
        None => end + 2,
    };
    let mut line = Vec::with_capacity(ua.len() + 14);
    line.extend_from_slice(b"User-Agent: ");
    line.extend_from_slice(ua);
    line.extend_from_slice(b"\r\n");
    out.splice(at..at, line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        println!(
            "ServerTxn {} ClientTxn {} ServerMatch {} ClientMatch {} Fork {} Entry {} TxnEvent {} SipMsg {}",
            size_of::<ServerTxn>(),
            size_of::<ClientTxn>(),
            size_of::<ServerMatch>(),
            size_of::<ClientMatch>(),
            size_of::<Fork>(),
            size_of::<Entry>(),
            size_of::<TxnEvent>(),
            size_of::<SipMsg>()
        );
    }
}
