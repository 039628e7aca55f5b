#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]
//! Integration tests of the script engine.

mod util;

mod alloc;
mod corefns;
mod engine;
mod pv;
mod sipmsgops;
mod textops;
mod trans;
