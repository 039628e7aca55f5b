//! A deterministic network of transaction tables (quinn's `Pair` idea): in-memory queues, a
//! simulated clock, and injected loss, duplication, reordering and delay from a seeded PRNG.
//! Each node runs a tiny transaction user: a UAC that only records, a UAS that answers from a
//! plan, or a forking proxy.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sipox_sip_msg::{Method, NewRequest, SipMsg, build_request};
use sipox_txn::{ClientKey, Peer, ServerKey, TxnConfig, TxnEvent, TxnRef, TxnTable};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ev {
    Request(String),
    Reply(u16, bool),
    BranchFailed(u16),
    BestFinal(u16),
    Cancelled,
    AckTimeout,
    Ack,
    Stray(u16),
    Terminated(bool),
}

#[derive(Debug, Clone)]
pub(crate) struct Logged {
    pub(crate) t: Duration,
    pub(crate) ev: Ev,
    pub(crate) client: Option<ClientKey>,
    pub(crate) server: Option<ServerKey>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct UasPlan {
    pub(crate) provisional: Vec<u16>,
    pub(crate) final_code: Option<u16>,
    pub(crate) final_delay: Duration,
    /// Extra header lines for the final response (challenges).
    pub(crate) final_headers: &'static str,
    /// The TU retransmits its 2xx this many times (T1 apart).
    pub(crate) resend_2xx: u32,
    /// Do not answer 487 on CANCEL.
    pub(crate) ignore_cancel: bool,
}

#[derive(Debug)]
pub(crate) enum Role {
    Uac,
    Uas(UasPlan),
    Proxy { targets: Vec<SocketAddr> },
}

#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) table: TxnTable,
    pub(crate) addr: SocketAddr,
    pub(crate) role: Role,
    pub(crate) log: Vec<Logged>,
    /// Scheduled TU actions: (when, txn, code).
    pub(crate) actions: Vec<(Instant, ServerKey, u16)>,
    pub(crate) reliable: bool,
}

impl Node {
    pub(crate) fn count(&self, ev: &Ev) -> usize {
        self.log.iter().filter(|l| &l.ev == ev).count()
    }
    pub(crate) fn has(&self, ev: &Ev) -> bool {
        self.count(ev) > 0
    }
    pub(crate) fn first_server(&self) -> ServerKey {
        self.log.iter().find_map(|l| l.server).unwrap()
    }
    pub(crate) fn evs(&self) -> Vec<Ev> {
        self.log
            .iter()
            .filter(|l| !matches!(l.ev, Ev::Terminated(_)))
            .map(|l| l.ev.clone())
            .collect()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Wire {
    pub(crate) t: Duration,
    pub(crate) from: SocketAddr,
    pub(crate) to: SocketAddr,
    pub(crate) line: String,
    pub(crate) data: Bytes,
}

impl Wire {
    pub(crate) fn is(&self, prefix: &str) -> bool {
        self.line.starts_with(prefix)
    }
}

struct Pkt {
    at: Instant,
    seq: u64,
    from: SocketAddr,
    to: SocketAddr,
    reliable: bool,
    data: Bytes,
}

type DropFn = Box<dyn FnMut(&Wire) -> bool>;

pub(crate) struct Net {
    pub(crate) base: Instant,
    pub(crate) now: Instant,
    pub(crate) nodes: Vec<Node>,
    inflight: Vec<Pkt>,
    rng: u64,
    seq: u64,
    /// Per-mille loss, duplication.
    pub(crate) loss: u32,
    pub(crate) dup: u32,
    pub(crate) latency: Duration,
    /// Extra random delay up to this (reorders).
    pub(crate) jitter: Duration,
    /// Drops datagrams it returns true for.
    pub(crate) drop: Option<DropFn>,
    pub(crate) wire: Vec<Wire>,
    pub(crate) record_wire: bool,
    /// Sends to this address fail at once (transport error).
    pub(crate) fail_to: Option<SocketAddr>,
    counter: u64,
    buf: Vec<u8>,
}

pub(crate) fn base_instant() -> Instant {
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}

pub(crate) fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5060 + u16::try_from(i).unwrap()))
}

impl Net {
    pub(crate) fn new(seed: u64) -> Self {
        let base = base_instant();
        Self {
            base,
            now: base,
            nodes: Vec::new(),
            inflight: Vec::new(),
            rng: seed | 1,
            seq: 0,
            loss: 0,
            dup: 0,
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            drop: None,
            wire: Vec::new(),
            record_wire: true,
            fail_to: None,
            counter: 0,
            buf: Vec::new(),
        }
    }

    pub(crate) fn add(&mut self, role: Role, cfg: TxnConfig) -> usize {
        let i = self.nodes.len();
        self.nodes.push(Node {
            table: TxnTable::new(cfg),
            addr: addr(i),
            role,
            log: Vec::new(),
            actions: Vec::new(),
            reliable: false,
        });
        i
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    fn rand(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn chance(&mut self, per_mille: u32) -> bool {
        per_mille > 0 && (self.rand() % 1000) < u64::from(per_mille)
    }

    fn peer(&self, node: usize, to: SocketAddr) -> Peer {
        if self.nodes[node].reliable {
            Peer::tcp(to)
        } else {
            Peer::udp(to)
        }
    }

    /// Starts an INVITE (or other method) client transaction at node `from` towards node `to`.
    pub(crate) fn uac_request(&mut self, from: usize, to: SocketAddr, method: &str) -> ClientKey {
        self.counter += 1;
        let n = self.counter;
        let a = self.nodes[from].addr;
        let via = format!("SIP/2.0/UDP {a};branch=z9hG4bKuac{from}x{n}");
        let fromh = format!("<sip:alice@{a}>;tag=f{n}");
        let cid = format!("call{n}@{a}");
        let mut out = Vec::new();
        build_request(
            &NewRequest {
                method: method.as_bytes(),
                ruri: b"sip:bob@example.com",
                via: via.as_bytes(),
                from: fromh.as_bytes(),
                to: b"<sip:bob@example.com>",
                call_id: cid.as_bytes(),
                cseq: 1,
                max_forwards: 70,
                extra_headers: b"",
                body: None,
            },
            &mut out,
        );
        let dest = self.peer(from, to);
        let now = self.now;
        let ck = self.nodes[from]
            .table
            .send_request(now, Bytes::from(out), dest, None)
            .unwrap();
        self.settle();
        ck
    }

    /// Re-sends a recorded datagram (a late duplicate).
    pub(crate) fn replay(&mut self, wire_idx: usize) {
        let w = self.wire[wire_idx].clone();
        if let Some(to) = self.nodes.iter().position(|n| n.addr == w.to) {
            self.inject(w.from, to, &w.data);
        }
    }

    /// Index of the first recorded datagram whose first line starts with `prefix`.
    pub(crate) fn find_wire(&self, prefix: &str) -> usize {
        self.wire.iter().position(|w| w.is(prefix)).unwrap()
    }

    /// Cancels a client transaction of node `i` now.
    pub(crate) fn cancel(&mut self, i: usize, ck: ClientKey) {
        let now = self.now;
        self.nodes[i].table.cancel_branch(now, ck).unwrap();
        self.settle();
    }

    /// Cancels a client transaction of node `i` now if it still exists.
    pub(crate) fn try_cancel(&mut self, i: usize, ck: ClientKey) {
        let now = self.now;
        let _ = self.nodes[i].table.cancel_branch(now, ck);
        self.settle();
    }

    /// Injects raw bytes as if `from` had sent them to node `to`.
    pub(crate) fn inject(&mut self, from: SocketAddr, to: usize, data: &[u8]) {
        let reliable = self.nodes[to].reliable;
        self.seq += 1;
        let to_addr = self.nodes[to].addr;
        self.inflight.push(Pkt {
            at: self.now,
            seq: self.seq,
            from,
            to: to_addr,
            reliable,
            data: Bytes::copy_from_slice(data),
        });
        self.settle();
    }

    fn next_wake(&self) -> Option<Instant> {
        let mut t = self.inflight.iter().map(|p| p.at).min();
        for n in &self.nodes {
            for cand in [n.table.poll_timeout(), n.actions.iter().map(|a| a.0).min()]
                .into_iter()
                .flatten()
            {
                t = Some(t.map_or(cand, |x| x.min(cand)));
            }
        }
        t
    }

    /// Runs the simulation for `d` of simulated time.
    pub(crate) fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.settle();
            match self.next_wake() {
                Some(t) if t <= end => self.now = self.now.max(t),
                _ => {
                    self.now = end;
                    self.settle();
                    return;
                }
            }
        }
    }

    /// Runs until nothing is pending anywhere (or `limit` passes).
    pub(crate) fn run_until_idle(&mut self, limit: Duration) {
        let end = self.now + limit;
        loop {
            self.settle();
            match self.next_wake() {
                Some(t) if t <= end => self.now = self.now.max(t),
                _ => return,
            }
        }
    }

    /// Processes everything due at `now` until quiescent.
    pub(crate) fn settle(&mut self) {
        loop {
            let mut progress = false;
            // Deliver due packets, in (time, seq) order.
            self.inflight.sort_by_key(|p| (p.at, p.seq));
            let due = self
                .inflight
                .iter()
                .take_while(|p| p.at <= self.now)
                .count();
            let pkts: Vec<Pkt> = self.inflight.drain(..due).collect();
            for p in pkts {
                progress = true;
                if let Some(i) = self.nodes.iter().position(|n| n.addr == p.to) {
                    let source = if p.reliable {
                        Peer::tcp(p.from)
                    } else {
                        Peer::udp(p.from)
                    };
                    if let Ok(msg) = SipMsg::parse(p.data) {
                        let now = self.now;
                        let _ = self.nodes[i].table.handle_message(now, msg, source);
                    }
                }
            }
            for i in 0..self.nodes.len() {
                let now = self.now;
                if self.nodes[i].table.poll_timeout().is_some_and(|t| t <= now) {
                    self.nodes[i].table.handle_timeout(now);
                }
                progress |= self.run_actions(i);
                progress |= self.drain_events(i);
                progress |= self.drain_transmits(i);
            }
            if !progress {
                return;
            }
        }
    }

    fn run_actions(&mut self, i: usize) -> bool {
        let now = self.now;
        let node = &mut self.nodes[i];
        let (due, rest): (Vec<_>, Vec<_>) = node.actions.drain(..).partition(|a| a.0 <= now);
        node.actions = rest;
        for (_, sk, code) in &due {
            let _ = reply_with(node, now, *sk, *code);
        }
        !due.is_empty()
    }

    fn drain_transmits(&mut self, i: usize) -> bool {
        let mut any = false;
        let mut buf = std::mem::take(&mut self.buf);
        while let Some(t) = self.nodes[i].table.poll_transmit(&mut buf) {
            any = true;
            let data = Bytes::copy_from_slice(&buf[..t.len]);
            let line = String::from_utf8_lossy(data.split(|&c| c == b'\r').next().unwrap_or(&[]))
                .into_owned();
            let w = Wire {
                t: self.elapsed(),
                from: self.nodes[i].addr,
                to: t.dest.addr,
                line,
                data: data.clone(),
            };
            let dropped = self.drop.as_mut().is_some_and(|f| f(&w));
            if self.fail_to == Some(t.dest.addr)
                && let Some(txn) = t.txn
            {
                let now = self.now;
                self.nodes[i].table.handle_transport_error(now, txn);
                if self.record_wire {
                    self.wire.push(w);
                }
                continue;
            }
            if self.record_wire {
                self.wire.push(w);
            }
            if dropped {
                continue;
            }
            if !t.dest.is_reliable() && self.chance(self.loss) {
                continue;
            }
            let copies = if !t.dest.is_reliable() && self.chance(self.dup) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let jitter = if self.jitter.is_zero() {
                    Duration::ZERO
                } else {
                    let j = u64::try_from(self.jitter.as_micros()).unwrap_or(1).max(1);
                    Duration::from_micros(self.rand() % j)
                };
                self.seq += 1;
                self.inflight.push(Pkt {
                    at: self.now + self.latency + jitter,
                    seq: self.seq,
                    from: self.nodes[i].addr,
                    to: t.dest.addr,
                    reliable: t.dest.is_reliable(),
                    data: data.clone(),
                });
            }
        }
        self.buf = buf;
        any
    }

    fn drain_events(&mut self, i: usize) -> bool {
        let mut any = false;
        let now = self.now;
        let t = self.elapsed();
        let mut counter = self.counter;
        let reliable = self.nodes[i].reliable;
        let node = &mut self.nodes[i];
        while let Some(ev) = node.table.poll_event() {
            any = true;
            let (logged, client) = match &ev {
                TxnEvent::Request { msg, .. } => (
                    Ev::Request(String::from_utf8_lossy(msg.method_bytes()).into()),
                    None,
                ),
                TxnEvent::Reply {
                    msg, relay, branch, ..
                } => (Ev::Reply(msg.status().unwrap(), *relay), Some(*branch)),
                TxnEvent::BranchFailed { code, branch, .. } => {
                    (Ev::BranchFailed(*code), Some(*branch))
                }
                TxnEvent::BestFinal { code, .. } => (Ev::BestFinal(*code), None),
                TxnEvent::Cancelled { .. } => (Ev::Cancelled, None),
                TxnEvent::AckTimeout { .. } => (Ev::AckTimeout, None),
                TxnEvent::Ack { .. } => (Ev::Ack, None),
                TxnEvent::StrayReply { msg, .. } => (Ev::Stray(msg.status().unwrap()), None),
                TxnEvent::Terminated { txn } => (
                    Ev::Terminated(matches!(txn, TxnRef::Server(_))),
                    match txn {
                        TxnRef::Client(c) => Some(*c),
                        TxnRef::Server(_) => None,
                    },
                ),
                _ => continue,
            };
            let server = match &ev {
                TxnEvent::Request { txn, .. } | TxnEvent::BestFinal { txn, .. } => Some(*txn),
                _ => None,
            };
            node.log.push(Logged {
                t,
                ev: logged,
                client,
                server,
            });
            tu(node, now, ev, &mut counter, reliable);
        }
        self.counter = counter;
        any
    }

    pub(crate) fn wire_count(&self, prefix: &str) -> usize {
        self.wire.iter().filter(|w| w.is(prefix)).count()
    }

    pub(crate) fn wire_times(&self, prefix: &str, from: SocketAddr) -> Vec<Duration> {
        self.wire
            .iter()
            .filter(|w| w.is(prefix) && w.from == from)
            .map(|w| w.t)
            .collect()
    }

    pub(crate) fn all_empty(&self) -> bool {
        self.nodes.iter().all(|n| n.table.is_empty())
    }
}

fn reply_with(node: &mut Node, now: Instant, sk: ServerKey, code: u16) -> Result<(), ()> {
    let headers = match &node.role {
        Role::Uas(p) if code >= 200 => p.final_headers,
        _ => "",
    };
    if headers.is_empty() {
        return node.table.reply(now, sk, code, None).map_err(|_| ());
    }
    // Build a reply with extra headers: local reply, then re-parse and add them.
    node.table
        .reply_with(now, sk, code, None, headers.as_bytes())
        .map_err(|_| ())
}

/// The transaction user of each role.
fn tu(node: &mut Node, now: Instant, ev: TxnEvent, counter: &mut u64, reliable: bool) {
    let t1 = node.table.config().t1;
    match (&node.role, ev) {
        (Role::Uas(plan), TxnEvent::Request { txn, msg, .. }) => {
            if msg.method() == Some(Method::Cancel) {
                let _ = node.table.reply(now, txn, 481, None);
                return;
            }
            let plan = plan.clone();
            for c in &plan.provisional {
                let _ = node.table.reply(now, txn, *c, None);
            }
            if let Some(code) = plan.final_code {
                node.actions.push((now + plan.final_delay, txn, code));
                if (200..300).contains(&code) && msg.method() == Some(Method::Invite) {
                    for k in 1..=plan.resend_2xx {
                        node.actions
                            .push((now + plan.final_delay + t1 * k, txn, code));
                    }
                }
            }
        }
        (Role::Uas(plan), TxnEvent::Cancelled { txn }) if !plan.ignore_cancel => {
            node.actions.retain(|a| a.1 != txn);
            let _ = node.table.reply(now, txn, 487, None);
        }
        (Role::Proxy { targets }, TxnEvent::Request { txn, msg, .. }) => {
            if msg.method() == Some(Method::Cancel) {
                let _ = node.table.reply(now, txn, 481, None);
                return;
            }
            let targets = targets.clone();
            for target in targets {
                *counter += 1;
                let mut m = SipMsg::parse(msg.bytes().clone()).unwrap();
                let via = format!("SIP/2.0/UDP {};branch=z9hG4bKpx{}", node.addr, counter);
                m.push_via(via.as_bytes());
                let dest = if reliable {
                    Peer::tcp(target)
                } else {
                    Peer::udp(target)
                };
                let _ = node.table.send_request(now, m.to_bytes(), dest, Some(txn));
            }
        }
        (
            Role::Proxy { .. },
            TxnEvent::Reply {
                server: Some(sk),
                mut msg,
                relay: true,
                ..
            },
        ) => {
            msg.pop_via();
            let _ = node.table.send_reply(now, sk, &msg);
        }
        (Role::Proxy { .. }, TxnEvent::BestFinal { txn, msg, .. }) => {
            let _ = node.table.send_reply(now, txn, &msg);
        }
        _ => {}
    }
}
