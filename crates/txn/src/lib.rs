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
//! # Sharding
//! A table is one shard: the driver keeps N of them behind its own locks. Pick the shard from
//! what matching uses so that retransmissions, the ACK and the CANCEL of a transaction reach
//! the same table: the top Via branch when it carries the RFC 3261 cookie, else the Call-ID;
//! responses by their top Via branch (which this element generated).
//!
//! # Obligations of the layer above
//! - Every [`TxnEvent::Request`] must eventually be answered ([`TxnTable::send_reply`],
//!   [`TxnTable::reply`]) or forked ([`TxnTable::send_request`] with a parent, whose
//!   [`TxnEvent::BestFinal`] is then relayed): a server transaction in Trying/Proceeding has no
//!   timer of its own (RFC 3261 gives it none), so an unanswered one would stay.
//! - Relayed responses (`relay: true`) and the 2xx of an INVITE are the caller's to forward;
//!   ACKs for 2xx ([`TxnEvent::Ack`]) are end to end and forwarded statelessly.
//! - Replies go back to the [`Peer`] the request came from; resolving the RFC 3261 §18.2.2 /
//!   RFC 3581 response address (maddr, received, rport) is the transport layer's business.

#![forbid(unsafe_code)]

mod aggregate;
mod config;
mod key;
mod slab;
mod table;
mod timer;
mod types;

pub use aggregate::{BranchVerdict, ReplyAggregator, Selected, challenge_lines, rank_better};
pub use config::{BranchTimers, Trying, TxnConfig};
pub use table::{NewTxn, TableStats, TxnTable};
pub use timer::TimerKind;
pub use types::{
    ClientKey, ClientState, Peer, ServerKey, ServerState, Transmit, TxnError, TxnEvent, TxnRef,
    reason_phrase,
};
