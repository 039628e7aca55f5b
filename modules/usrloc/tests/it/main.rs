//! usrloc integration tests: the in-memory store, expiry, events, statistics, the working
//! modes over sqlite (and PostgreSQL/MariaDB when the launcher finds them), MI and script
//! functions.

#![allow(clippy::unwrap_used, clippy::panic)]

mod db;
mod mi;
mod script;
mod store;
