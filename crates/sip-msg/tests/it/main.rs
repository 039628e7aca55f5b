//! Integration tests for sipox-sip-msg: RFC 4475 / RFC 5118 conformance, mutation robustness,
//! and the allocation budget of framing and indexing.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::expect_used,
    clippy::too_many_lines
)]

mod alloc;
mod conformance;
mod headers;
mod mutation;

use std::path::PathBuf;

pub(crate) fn data(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
