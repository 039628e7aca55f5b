//! The text driver (being written: placeholder until it lands).

use std::path::Path;
use std::sync::Arc;

use crate::{Db, DbError, DbUrl};

/// Opens the database `u` names.
pub(crate) fn open(_u: &DbUrl) -> Result<Arc<dyn Db>, DbError> {
    Err(DbError::NoDriver("text".into()))
}

/// Writes `path` by writing a temporary file beside it and renaming it over.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<(), DbError> {
    let io = |e: std::io::Error| DbError::Io(format!("{}: {e}", path.display()));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, data).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
