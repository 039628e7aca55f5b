//! `sipox-mod-registrar` owns OpenSIPS 3.5's registrar module: REGISTER processing
//! (`save()`, RFC 3261 §10.3 with RFC 3327 Path and RFC 5627 GRUU), `lookup()` turning an AoR
//! into the Request-URI and branches, `remove()`, the `is_*registered()` checks and the
//! registrar statistics.
//! It must not depend on `sipox-core` or on any module but usrloc (whose store it drives, as
//! OpenSIPS's registrar binds usrloc's API); it answers through `MsgCx::send_reply`.

#![forbid(unsafe_code)]

pub mod aor;
pub mod flags;
pub mod params;
pub mod reply;
pub mod request;

pub use params::Params;
pub use reply::RegError;
pub mod engine;
pub mod fns;

pub use engine::{Registrar, SaveReply};
pub use fns::register;
