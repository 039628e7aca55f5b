//! `sipox-core` owns the runtime around the script: it reads the core global parameters of a
//! configuration into a typed [`CoreConfig`], and (as issue 5 lands) runs the receive → script →
//! send loop over `sipox-transport`. Protocol logic stays in the pure crates below it; modules do
//! not depend on this crate.

#![forbid(unsafe_code)]

mod config;

pub use config::{ConfigError, CoreConfig, LogTarget};
