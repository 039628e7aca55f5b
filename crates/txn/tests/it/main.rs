//! Integration tests for sipox-txn: every state and timer of RFC 3261 Figures 5–8 and the
//! RFC 6026 Accepted state through a simulated network, CANCEL races, forking with §16.7
//! reply selection, a seeded lossy soak, and the memory cost per transaction.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod branch_timers;
mod cancel;
mod fork;
mod harness;
mod mem;
mod robust;
mod soak;
mod states;
