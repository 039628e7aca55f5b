//! The text driver (being written: placeholder until it lands).

use std::sync::Arc;

use crate::{Db, DbError, DbUrl};

/// Opens the database `u` names.
pub(crate) fn open(_u: &DbUrl) -> Result<Arc<dyn Db>, DbError> {
    Err(DbError::NoDriver("text".into()))
}
