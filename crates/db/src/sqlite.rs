//! The sqlite driver (rusqlite, SQLite bundled): a few connections to one file in WAL mode,
//! each behind its own lock, so SIP worker threads reading at once do not queue on one.
//! Statements are prepared once per connection and SQL text (`prepare_cached`).
//!
//! Types: INTEGER → `Int`, REAL → `Double`, TEXT → `Str` (OpenSIPS's DATETIME columns are
//! TEXT `YYYY-MM-DD HH:MM:SS` here and stay `Str`; see [`crate::sql::parse_datetime`]),
//! BLOB → `Blob`. A `DateTime` parameter is written as that text (UTC).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::config::DbConfig;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags};

use crate::{Cond, Db, DbError, DbUrl, Dialect, Rows, Select, Value, sql};

/// Connections per database (one for `:memory:`, which is private to its connection).
const POOL: usize = 4;
/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the database `u` names (`sqlite:///abs/path.db` or `sqlite://rel/path.db`).
pub(crate) fn open(u: &DbUrl) -> Result<Arc<dyn Db>, DbError> {
    Ok(Arc::new(Sqlite::open(&u.database)?))
}

/// An sqlite database: a small pool of connections to one file.
struct Sqlite {
    path: String,
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite")
            .field("path", &self.path)
            .field("connections", &self.conns.len())
            .finish()
    }
}

impl Sqlite {
    fn open(path: &str) -> Result<Self, DbError> {
        let memory = path == ":memory:";
        let n = if memory { 1 } else { POOL };
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            conns.push(Mutex::new(open_conn(path, memory)?));
        }
        Ok(Self {
            path: path.to_owned(),
            conns,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on a free connection, or waits for one (round robin) when all are busy.
    fn with<R>(&self, f: impl FnOnce(&Connection) -> Result<R, DbError>) -> Result<R, DbError> {
        for c in &self.conns {
            if let Some(g) = c.try_lock() {
                return f(&g);
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        let g = self.conns[i].lock();
        f(&g)
    }

    fn exec(&self, st: &sql::Stmt<'_>) -> Result<(u64, i64), DbError> {
        self.with(|c| {
            let mut s = c.prepare_cached(&st.sql).map_err(err)?;
            let n = s
                .execute(rusqlite::params_from_iter(
                    st.params.iter().map(|v| Param(v)),
                ))
                .map_err(err)?;
            Ok((n as u64, c.last_insert_rowid()))
        })
    }
}

impl Db for Sqlite {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn select(&self, q: &Select<'_>) -> Result<Rows, DbError> {
        let st = sql::select(Dialect::Sqlite, q);
        self.with(|c| {
            let mut s = c.prepare_cached(&st.sql).map_err(err)?;
            query(&mut s, &st.params)
        })
    }

    fn insert(&self, table: &str, cols: &[&str], vals: &[Value]) -> Result<u64, DbError> {
        let (_, id) = self.exec(&sql::insert(Dialect::Sqlite, table, cols, vals))?;
        Ok(u64::try_from(id).unwrap_or(0))
    }

    fn update(
        &self,
        table: &str,
        conds: &[Cond<'_>],
        cols: &[&str],
        vals: &[Value],
    ) -> Result<u64, DbError> {
        Ok(self
            .exec(&sql::update(Dialect::Sqlite, table, conds, cols, vals))?
            .0)
    }

    fn delete(&self, table: &str, conds: &[Cond<'_>]) -> Result<u64, DbError> {
        Ok(self.exec(&sql::delete(Dialect::Sqlite, table, conds))?.0)
    }

    fn replace(
        &self,
        table: &str,
        cols: &[&str],
        vals: &[Value],
        key_cols: &[&str],
    ) -> Result<(), DbError> {
        self.exec(&sql::replace(Dialect::Sqlite, table, cols, vals, key_cols))
            .map(drop)
    }

    fn raw(&self, text: &str) -> Result<Rows, DbError> {
        use rusqlite::fallible_iterator::FallibleIterator as _;
        // One statement or a script of several, run in turn (each prepared after the one
        // before ran, so a script may create a table and then fill it); the rows are those of
        // the last statement that returns rows.
        self.with(|c| {
            let mut batch = rusqlite::Batch::new(c, text);
            let mut rows = Rows::default();
            while let Some(mut s) = batch.next().map_err(err)? {
                if s.column_count() > 0 {
                    rows = query(&mut s, &[])?;
                } else {
                    s.raw_execute().map_err(err)?;
                }
            }
            Ok(rows)
        })
    }
}

fn open_conn(path: &str, memory: bool) -> Result<Connection, DbError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let c = Connection::open_with_flags(path, flags)
        .map_err(|e| DbError::Io(format!("cannot open sqlite database {path:?}: {e}")))?;
    c.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
    // A double-quoted name is an identifier, never a string literal: a misspelt column is an
    // error, not a constant.
    for cfg in [
        DbConfig::SQLITE_DBCONFIG_DQS_DML,
        DbConfig::SQLITE_DBCONFIG_DQS_DDL,
    ] {
        c.set_db_config(cfg, false).map_err(err)?;
    }
    if !memory {
        let mode: String = c
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            crate::log(
                crate::L_WARN,
                &format!("sqlite {path:?}: journal mode is {mode}, not WAL"),
            );
        }
        c.execute_batch("PRAGMA synchronous=NORMAL").map_err(err)?;
    }
    c.set_prepared_statement_cache_capacity(64);
    Ok(c)
}

fn query(s: &mut rusqlite::Statement<'_>, params: &[&Value]) -> Result<Rows, DbError> {
    let columns: Vec<String> = s.column_names().map(str::to_owned).collect();
    let n = columns.len();
    let mut rows = Vec::new();
    let mut it = s
        .query(rusqlite::params_from_iter(params.iter().map(|v| Param(v))))
        .map_err(err)?;
    while let Some(r) = it.next().map_err(err)? {
        let mut row = Vec::with_capacity(n);
        for i in 0..n {
            row.push(match r.get_ref(i).map_err(err)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Int(i),
                ValueRef::Real(f) => Value::Double(f),
                ValueRef::Text(t) => Value::Str(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            });
        }
        rows.push(row);
    }
    Ok(Rows { columns, rows })
}

/// A [`Value`] bound as a statement parameter.
struct Param<'a>(&'a Value);

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Double(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
            Value::Str(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Value::DateTime(t) => {
                ToSqlOutput::Owned(rusqlite::types::Value::Text(sql::format_datetime(*t)))
            }
        })
    }
}

/// Maps an sqlite error: a lock held past the busy timeout is retryable.
fn err(e: rusqlite::Error) -> DbError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e
        && matches!(
            f.code,
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
        )
    {
        return DbError::Timeout(BUSY_TIMEOUT.as_millis() as u64);
    }
    DbError::Query(e.to_string())
}
