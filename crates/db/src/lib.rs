//! `sipox-db` owns OpenSIPS's generic database API and its drivers: typed values and rows,
//! `select` with key/operator/value conditions, columns, order and limit; `insert`, `update`,
//! `delete`, `replace`, raw queries; the `version` table; URL parsing with OpenSIPS's forms
//! (`sqlite:///path`, `postgres://user:pass@host:port/db`, `mysql://...`, `text:///dir`);
//! the OpenSIPS 3.5 table definitions and `CREATE TABLE` text per driver ([`schema`]).
//! It knows nothing of SIP or of the script engine.
//!
//! # Threads
//! The API is blocking: a call returns when the database answered or the driver's timeout
//! passed. Callers on the SIP path use it in two ways (see `ARCHITECTURE.md`): reads a script
//! needs at once (credentials, `db_does_uri_exist`) wait at most the timeout; writes that
//! need not hold the SIP reply (usrloc write-through/write-back) go through a [`Writer`]
//! queue drained by its own thread, which retries with backoff while the server is away and
//! loses nothing it accepted.

use std::fmt;
use std::sync::Arc;

mod url;
mod writer;

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod remote;
pub mod schema;
pub mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;
mod text;

pub use url::DbUrl;
pub use writer::{WriteOp, Writer};

/// A log sink: `(level, message)` with OpenSIPS's levels ([`L_ERR`] -1, [`L_WARN`] 1,
/// [`L_NOTICE`] 2, [`L_INFO`] 3, [`L_DBG`] 4).
pub type LogSink = Arc<dyn Fn(i32, &str) + Send + Sync>;

/// OpenSIPS log level: error.
pub const L_ERR: i32 = -1;
/// OpenSIPS log level: warning.
pub const L_WARN: i32 = 1;
/// OpenSIPS log level: notice.
pub const L_NOTICE: i32 = 2;
/// OpenSIPS log level: info.
pub const L_INFO: i32 = 3;
/// OpenSIPS log level: debug.
pub const L_DBG: i32 = 4;

static LOG_SINK: parking_lot::RwLock<Option<LogSink>> = parking_lot::const_rwlock(None);

/// Sends this crate's log lines (connection lost, retrying, reconnected, dropped writes) to
/// `f`. Until it is called, errors go to stderr and everything else is discarded.
pub fn set_log_sink(f: LogSink) {
    *LOG_SINK.write() = Some(f);
}

/// Logs one line through the sink set by [`set_log_sink`].
pub(crate) fn log(level: i32, msg: &str) {
    let sink = LOG_SINK.read().clone();
    match sink {
        Some(f) => f(level, msg),
        None if level <= L_ERR => eprintln!("sipox-db: ERROR: {msg}"),
        None => {}
    }
}

/// One value of a column (OpenSIPS `db_val_t`): `DB_INT`/`DB_BIGINT` are `Int`, `DB_STRING`
/// and `DB_STR` are `Str`, `DB_DATETIME` is `DateTime` (seconds since the Unix epoch, UTC),
/// `DB_BITMAP` is `Int`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// Integer (INT, BIGINT, BITMAP).
    Int(i64),
    /// Floating point.
    Double(f64),
    /// Text.
    Str(String),
    /// Date and time, seconds since the epoch (UTC).
    DateTime(i64),
    /// Binary.
    Blob(Vec<u8>),
}

impl Value {
    /// The integer, if this is one (a numeric string also converts, as drivers return text).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(i) | Self::DateTime(i) => Some(*i),
            Self::Double(d) => Some(*d as i64),
            Self::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The text, if this is text (a blob that is UTF-8 also converts).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            Self::Blob(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// True for NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Str(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Str(v)
    }
}

/// A comparison operator (OpenSIPS `OP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=` (with NULL: `IS NULL`).
    Eq,
    /// `!=` (with NULL: `IS NOT NULL`).
    Ne,
    /// `<`.
    Lt,
    /// `>`.
    Gt,
    /// `<=`.
    Le,
    /// `>=`.
    Ge,
    /// `LIKE`.
    Like,
    /// Bitwise and is non-zero (`&`).
    BitAnd,
}

/// One condition of a `WHERE` clause: conditions are joined with AND.
#[derive(Debug, Clone, PartialEq)]
pub struct Cond<'a> {
    /// Column.
    pub col: &'a str,
    /// Operator.
    pub op: Op,
    /// Value.
    pub val: Value,
}

impl<'a> Cond<'a> {
    /// `col = val`.
    pub fn eq(col: &'a str, val: impl Into<Value>) -> Self {
        Self {
            col,
            op: Op::Eq,
            val: val.into(),
        }
    }
}

/// A `SELECT`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Select<'a> {
    /// Table.
    pub table: &'a str,
    /// Columns to return (empty: every column, in table order).
    pub columns: &'a [&'a str],
    /// Conditions, AND-ed.
    pub conds: Vec<Cond<'a>>,
    /// Column to order by (ascending), if any.
    pub order_by: Option<&'a str>,
    /// Row limit, if any.
    pub limit: Option<u64>,
}

/// A result set: column names and rows of values in that order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<Value>>,
}

impl Rows {
    /// Index of a column by name (ASCII case-insensitive).
    pub fn col(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
    }

    /// The value at `row`, column `name`.
    pub fn get(&self, row: usize, name: &str) -> Option<&Value> {
        let c = self.col(name)?;
        self.rows.get(row)?.get(c)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// SQL flavour, for the statement builder and the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite 3.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL / MariaDB.
    Mysql,
    /// db_text (no SQL; raw queries are refused).
    Text,
}

/// What went wrong in a database call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The URL is not one we understand.
    #[error("bad database URL {url:?}: {why}")]
    BadUrl {
        /// The URL, password masked.
        url: String,
        /// Why.
        why: String,
    },
    /// The driver is not built in.
    #[error("database driver {0:?} is not built into this sipox")]
    NoDriver(String),
    /// The server could not be reached or the connection broke (retryable).
    #[error("database connection failed: {0}")]
    Connection(String),
    /// The call did not finish within the timeout (retryable).
    #[error("database call timed out after {0} ms")]
    Timeout(u64),
    /// The statement failed (bad column, constraint, syntax).
    #[error("database query failed: {0}")]
    Query(String),
    /// The operation is not supported by this driver (raw SQL on db_text, ...).
    #[error("not supported by the {driver} driver: {what}")]
    Unsupported {
        /// Driver name.
        driver: &'static str,
        /// What.
        what: &'static str,
    },
    /// A table's version in the `version` table is not the one the module needs.
    #[error(
        "table {table:?} has version {found:?} in the version table, sipox needs {expected} \
         (create it with `sipox db create` or migrate it as for OpenSIPS 3.5)"
    )]
    Version {
        /// Table.
        table: String,
        /// Found (None: no row).
        found: Option<i64>,
        /// Needed.
        expected: i64,
    },
    /// A file-level failure (db_text, sqlite file).
    #[error("database file error: {0}")]
    Io(String),
}

impl DbError {
    /// True when retrying later may succeed (connection loss, timeout).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Connection(_) | Self::Timeout(_))
    }
}

/// A database connection (pool) as the modules use it. Every method blocks until done or
/// timed out; implementations reconnect transparently (with backoff, logged) when the
/// connection was lost, and return [`DbError::Connection`] while the server stays away.
pub trait Db: Send + Sync + fmt::Debug {
    /// The driver's dialect.
    fn dialect(&self) -> Dialect;
    /// `SELECT columns FROM table WHERE conds [ORDER BY] [LIMIT]`.
    fn select(&self, q: &Select<'_>) -> Result<Rows, DbError>;
    /// `INSERT` one row; returns the last inserted id when the table has an auto id (else 0).
    fn insert(&self, table: &str, cols: &[&str], vals: &[Value]) -> Result<u64, DbError>;
    /// `UPDATE table SET cols = vals WHERE conds`; returns the rows changed.
    fn update(
        &self,
        table: &str,
        conds: &[Cond<'_>],
        cols: &[&str],
        vals: &[Value],
    ) -> Result<u64, DbError>;
    /// `DELETE FROM table WHERE conds` (no conds: every row); returns the rows removed.
    fn delete(&self, table: &str, conds: &[Cond<'_>]) -> Result<u64, DbError>;
    /// Inserts the row, or replaces the row with the same unique key (`key_cols`).
    fn replace(
        &self,
        table: &str,
        cols: &[&str],
        vals: &[Value],
        key_cols: &[&str],
    ) -> Result<(), DbError>;
    /// A raw statement; rows for a query, empty rows otherwise.
    fn raw(&self, sql: &str) -> Result<Rows, DbError>;
}

/// Opens a database by URL (`sqlite:///path`, `postgres://`, `mysql://`, `text:///dir`).
pub fn connect(url: &str) -> Result<Arc<dyn Db>, DbError> {
    let u = DbUrl::parse(url)?;
    match u.scheme.as_str() {
        #[cfg(feature = "sqlite")]
        "sqlite" => sqlite::open(&u),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => pg::open(&u),
        #[cfg(feature = "mysql")]
        "mysql" => mysql::open(&u),
        "text" => text::open(&u),
        other => Err(DbError::NoDriver(other.to_owned())),
    }
}

/// The name of OpenSIPS's version table.
pub const VERSION_TABLE: &str = "version";

/// The version of `table` recorded in the `version` table (`None`: no row).
pub fn table_version(db: &dyn Db, table: &str) -> Result<Option<i64>, DbError> {
    let rows = db.select(&Select {
        table: VERSION_TABLE,
        columns: &["table_version"],
        conds: vec![Cond::eq("table_name", table)],
        ..Select::default()
    })?;
    Ok(rows
        .rows
        .first()
        .and_then(|r| r.first())
        .and_then(Value::as_int))
}

/// Fails with [`DbError::Version`] unless `table` has version `expected` (OpenSIPS's
/// `db_check_table_version`).
pub fn check_table_version(db: &dyn Db, table: &str, expected: i64) -> Result<(), DbError> {
    let found = table_version(db, table)?;
    if found == Some(expected) {
        Ok(())
    } else {
        Err(DbError::Version {
            table: table.to_owned(),
            found,
            expected,
        })
    }
}
