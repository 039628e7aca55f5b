//! The rest of the `sipmsgops` module (the first functions live in `modules.rs`).

use crate::registry::Registry;

pub(crate) fn register(_r: &mut Registry) {}
