//! Integration tests for sipox-txn.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]
