//! `sipox-txn` owns SIP transactions: the RFC 3261 §17 client and server state machines for
//! INVITE and non-INVITE (with the RFC 6026 Accepted state), matching of requests and responses
//! to them, their timers (A–M, kept as data in one heap per table), CANCEL handling, and the
//! §16.7 selection of the best final response across the branches of a forking proxy.
//! It performs no I/O and reads no clock: time is passed in as a parameter, datagrams come in
//! through [`TxnTable::handle_message`] and go out through [`TxnTable::poll_transmit`], and it
//! depends on nothing but `sipox-sip-msg` and small data-structure crates.
//!
//! # Shape (like `quinn-proto`)
//! - [`TxnTable::handle_message`] takes a received message and its [`Peer`]; the table matches
//!   it to a transaction (RFC 3261 branch, or the RFC 2543 fallback of §17.2.3), absorbs
//!   retransmissions, and queues [`TxnEvent`]s for the layer above (the proxy core).
//! - [`TxnTable::send_request`] starts a client transaction, optionally as a branch of a server
//!   transaction; [`TxnTable::send_reply`] answers on a server transaction.
//! - [`TxnTable::poll_transmit`] writes the next datagram into the caller's buffer;
//!   [`TxnTable::poll_timeout`] / [`TxnTable::handle_timeout`] drive the timers;
//!   [`TxnTable::poll_event`] drains events.
//! - [`ReplyAggregator`] is the pure §16.7 "response context": it ranks the final responses of
//!   the branches and says when the best one is ready to relay.
//!
//! A table is meant to be one shard: the driver keeps N of them (keyed by a hash of the
//! branch / Call-ID) behind its own locks.

#![forbid(unsafe_code)]

mod aggregate;
mod config;
mod key;
mod slab;
mod table;
mod timer;
mod types;

pub use aggregate::{BranchVerdict, ReplyAggregator, Selected, rank_better};
pub use config::{Trying, TxnConfig};
pub use table::{TableStats, TxnTable};
pub use timer::TimerKind;
pub use types::{
    ClientKey, ClientState, Peer, ServerKey, ServerState, Transmit, TxnError, TxnEvent, TxnRef,
    reason_phrase,
};
