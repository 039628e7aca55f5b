//! `sipox-core` owns the runtime around the script: it reads the core global parameters of a
//! configuration into a typed [`CoreConfig`], compiles the script with the functions that need
//! the network (`forward`, `sl_send_reply`, `send_reply`, `options_reply`, ...), and runs the
//! receive → script → send loop over `sipox-transport`. Protocol decisions come from the pure
//! crates below it (`sipox-proxy`, `sipox-sip-msg`); modules do not depend on this crate.

#![forbid(unsafe_code)]

mod blacklist;
mod config;
mod fns;
mod logging;
mod metrics;
mod mi_wiring;
mod modhost;
mod rr;
mod runtime;
mod tm;

pub use config::{ConfigError, CoreConfig, LogTarget};
pub use logging::Logger;
pub use metrics::CoreCounters;
pub use runtime::{Runtime, Server, StartError, registry};
