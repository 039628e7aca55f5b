//! Integration tests of sipox-db: every driver against the same API checks.

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod api;
mod schema;
mod servers;
mod sqlite;
mod text;
mod writer;
