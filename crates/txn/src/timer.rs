//! Timers as data: one binary heap per table with lazy deletion. A transaction records the
//! deadline of each of its (at most three) timer slots; a heap entry whose deadline no longer
//! matches its transaction's slot is stale and skipped when it reaches the top. The heap is
//! compacted when stale entries outnumber live ones, so cancelled timers (a final response
//! stopping timer B, say) do not pile up for 64·T1.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::types::Id;

/// The RFC 3261 / RFC 6026 timers (plus the 100 Trying delay and the wait after a CANCEL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKind {
    /// INVITE client retransmission (unreliable transports).
    A,
    /// INVITE client timeout in Calling.
    B,
    /// Proxy INVITE timeout, reset by provisional responses.
    C,
    /// INVITE client wait in Completed.
    D,
    /// Non-INVITE client retransmission.
    E,
    /// Non-INVITE client timeout.
    F,
    /// INVITE server final-response retransmission.
    G,
    /// INVITE server wait for ACK.
    H,
    /// INVITE server wait in Confirmed.
    I,
    /// Non-INVITE server wait in Completed.
    J,
    /// Non-INVITE client wait in Completed.
    K,
    /// INVITE server wait in Accepted (RFC 6026).
    L,
    /// INVITE client wait in Accepted (RFC 6026).
    M,
    /// Delayed 100 Trying.
    Trying,
    /// After sending a CANCEL: how long to wait for the INVITE's final response.
    CancelWait,
}

impl TimerKind {
    /// The slot a timer occupies in its transaction: 0 retransmission, 1 state timeout,
    /// 2 the proxy timers (C, the wait after CANCEL).
    pub(crate) const fn slot(self) -> usize {
        match self {
            Self::A | Self::E | Self::G | Self::Trying => 0,
            Self::B
            | Self::D
            | Self::F
            | Self::H
            | Self::I
            | Self::J
            | Self::K
            | Self::L
            | Self::M => 1,
            Self::C | Self::CancelWait => 2,
        }
    }
}

/// Deadlines of one transaction's timer slots.
pub(crate) type Slots = [Option<(Instant, TimerKind)>; 3];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Entry {
    pub(crate) at: Instant,
    pub(crate) server: bool,
    pub(crate) id: Id,
    pub(crate) kind: TimerKind,
}

#[derive(Debug, Default)]
pub(crate) struct TimerHeap {
    heap: BinaryHeap<Reverse<Entry>>,
    /// Live (armed, not yet fired or cancelled) timers.
    live: usize,
}

impl TimerHeap {
    /// Arms `kind` in `slots`, replacing whatever the slot held.
    pub(crate) fn arm(
        &mut self,
        slots: &mut Slots,
        server: bool,
        id: Id,
        kind: TimerKind,
        at: Instant,
    ) {
        let s = &mut slots[kind.slot()];
        if s.is_none() {
            self.live += 1;
        }
        *s = Some((at, kind));
        self.heap.push(Reverse(Entry {
            at,
            server,
            id,
            kind,
        }));
    }

    /// Disarms a slot (the heap entry becomes stale).
    pub(crate) fn disarm(&mut self, slots: &mut Slots, slot: usize) {
        if slots[slot].take().is_some() {
            self.live -= 1;
        }
    }

    /// Disarms every slot of a transaction that is going away.
    pub(crate) fn disarm_all(&mut self, slots: &mut Slots) {
        for i in 0..slots.len() {
            self.disarm(slots, i);
        }
    }

    /// The earliest entry (possibly stale).
    pub(crate) fn peek(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.0.at)
    }

    /// Pops the earliest entry due at `now` (possibly stale; the caller validates it against
    /// the transaction's slot with [`Self::fire`]).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Entry> {
        if self.heap.peek().is_some_and(|e| e.0.at <= now) {
            self.heap.pop().map(|e| e.0)
        } else {
            None
        }
    }

    /// True (and the slot cleared) when `e` is the timer currently armed in `slots`.
    pub(crate) fn fire(&mut self, slots: &mut Slots, e: &Entry) -> bool {
        let s = &mut slots[e.kind.slot()];
        if *s == Some((e.at, e.kind)) {
            *s = None;
            self.live -= 1;
            true
        } else {
            false
        }
    }

    /// Drops stale entries when they dominate. `is_live` says whether an entry is still armed.
    pub(crate) fn maybe_compact(&mut self, is_live: impl Fn(&Entry) -> bool) {
        if self.heap.len() > 256 && self.heap.len() > 4 * self.live {
            let mut v = std::mem::take(&mut self.heap).into_vec();
            v.retain(|e| is_live(&e.0));
            self.heap = BinaryHeap::from(v);
            if self.heap.capacity() > 4 * self.heap.len() + 256 {
                self.heap.shrink_to_fit();
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(crate) const fn live(&self) -> usize {
        self.live
    }

    pub(crate) fn capacity_bytes(&self) -> usize {
        self.heap.capacity() * size_of::<Reverse<Entry>>()
    }
}
