//! OpenSIPS's `auth` and `auth_db` modules: digest challenges (`www_challenge`,
//! `proxy_challenge`, one header per offered algorithm, RFC 8760 order), credential checks
//! against pseudo-variables (`pv_www_authorize`, `pv_proxy_authorize`) or a subscriber table
//! (`www_authorize`, `proxy_authorize`), `consume_credentials`, and the uri-table checks
//! (`db_does_uri_exist`, `db_is_to_authorized`, `db_is_from_authorized`, `db_get_auth_id`).
//! The arithmetic and the nonces are `sipox-digest`'s; the state is built once at start
//! ([`Auth::from_modparams`], [`AuthDb::from_modparams`]).
//!
//! It must not depend on `sipox-core` (the core depends on it) nor on other module crates.
#![forbid(unsafe_code)]

mod auth;
mod auth_db;
mod params;

pub use auth::Auth;
pub use auth_db::AuthDb;

use sipox_script::Registry;

/// Registers the functions of `auth` and `auth_db` over their catalog declarations.
pub fn register(r: &mut Registry) {
    r.add_module(auth::module_def());
    r.add_module(auth_db::module_def());
}
