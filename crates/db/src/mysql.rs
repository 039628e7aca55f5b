//! The MySQL / MariaDB driver (mysql_async, no TLS) over the shared runtime and slots of
//! [`crate::remote`].
//!
//! Statements go through the binary protocol and the connection's statement cache; `raw()`
//! uses the text protocol. Updates report the rows matched, not only those changed
//! (`CLIENT_FOUND_ROWS`), as the other drivers do.
//!
//! Types read: integers → `Int`, FLOAT/DOUBLE/DECIMAL → `Double`, DATETIME/TIMESTAMP/DATE →
//! `DateTime` (the column's value read as UTC), binary strings and BLOBs → `Blob`, other text
//! → `Str`. A `DateTime` parameter is sent as `YYYY-MM-DD HH:MM:SS` (UTC).

use std::sync::Arc;

use mysql_async::consts::ColumnType;
use mysql_async::prelude::Queryable;
use mysql_async::{Column, Conn, Opts, OptsBuilder, Params, Row};

use crate::remote::{BoxFut, Connect, Remote};
use crate::{Cond, Db, DbError, DbUrl, Dialect, Rows, Select, Value, sql};

/// The binary character set: the column holds bytes, not text.
const BINARY_CHARSET: u16 = 63;

/// Opens the database `u` names.
pub(crate) fn open(u: &DbUrl) -> Result<Arc<dyn Db>, DbError> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(u.host.clone().unwrap_or_else(|| "localhost".to_owned()))
        .tcp_port(u.port.unwrap_or(3306))
        .user(u.user.clone())
        .pass(u.password.clone())
        .db_name(Some(u.database.clone()))
        .prefer_socket(false)
        .client_found_rows(true)
        .stmt_cache_size(128)
        .tcp_nodelay(true);
    Ok(Arc::new(Mysql {
        remote: Remote::open("mysql", u.masked(), Connector(opts.into()))?,
    }))
}

/// A MySQL database.
#[derive(Debug)]
struct Mysql {
    remote: Remote<Connector>,
}

struct Connector(Opts);

impl Connect for Connector {
    type Conn = Conn;

    fn connect(&self) -> BoxFut<'_, Result<Conn, DbError>> {
        Box::pin(async move { Conn::new(self.0.clone()).await.map_err(my_err) })
    }

    fn is_open(_: &Conn) -> bool {
        true
    }
}

/// An owned statement for the driver task.
struct Job {
    sql: String,
    params: Vec<mysql_async::Value>,
}

impl Job {
    fn new(st: &sql::Stmt<'_>) -> Arc<Self> {
        Arc::new(Self {
            sql: st.sql.clone(),
            params: st.params.iter().map(|v| param(v)).collect(),
        })
    }

    fn params(&self) -> Params {
        if self.params.is_empty() {
            Params::Empty
        } else {
            Params::Positional(self.params.clone())
        }
    }
}

impl Mysql {
    /// Runs a statement; (rows affected, last insert id).
    fn execute(&self, st: &sql::Stmt<'_>, idempotent: bool) -> Result<(u64, u64), DbError> {
        let job = Job::new(st);
        self.remote.call(idempotent, move |c| {
            let job = Arc::clone(&job);
            Box::pin(async move {
                c.exec_drop(job.sql.as_str(), job.params())
                    .await
                    .map_err(my_err)?;
                Ok((c.affected_rows(), c.last_insert_id().unwrap_or(0)))
            })
        })
    }
}

impl Db for Mysql {
    fn dialect(&self) -> Dialect {
        Dialect::Mysql
    }

    fn select(&self, q: &Select<'_>) -> Result<Rows, DbError> {
        let job = Job::new(&sql::select(Dialect::Mysql, q));
        self.remote.call(true, move |c| {
            let job = Arc::clone(&job);
            Box::pin(async move {
                let mut res = c
                    .exec_iter(job.sql.as_str(), job.params())
                    .await
                    .map_err(my_err)?;
                let cols: Arc<[Column]> = res.columns().unwrap_or_else(|| Arc::new([]));
                let rows: Vec<Row> = res.collect().await.map_err(my_err)?;
                res.drop_result().await.map_err(my_err)?;
                Ok(to_rows(&cols, rows))
            })
        })
    }

    fn insert(&self, table: &str, cols: &[&str], vals: &[Value]) -> Result<u64, DbError> {
        Ok(self
            .execute(&sql::insert(Dialect::Mysql, table, cols, vals), false)?
            .1)
    }

    fn update(
        &self,
        table: &str,
        conds: &[Cond<'_>],
        cols: &[&str],
        vals: &[Value],
    ) -> Result<u64, DbError> {
        Ok(self
            .execute(&sql::update(Dialect::Mysql, table, conds, cols, vals), true)?
            .0)
    }

    fn delete(&self, table: &str, conds: &[Cond<'_>]) -> Result<u64, DbError> {
        Ok(self
            .execute(&sql::delete(Dialect::Mysql, table, conds), true)?
            .0)
    }

    fn replace(
        &self,
        table: &str,
        cols: &[&str],
        vals: &[Value],
        key_cols: &[&str],
    ) -> Result<(), DbError> {
        let st = sql::replace(Dialect::Mysql, table, cols, vals, key_cols);
        self.execute(&st, true).map(drop)
    }

    fn raw(&self, text: &str) -> Result<Rows, DbError> {
        let select = text
            .trim_start()
            .get(..6)
            .is_some_and(|w| w.eq_ignore_ascii_case("select"));
        let text: Arc<str> = text.into();
        self.remote.call(select, move |c| {
            let text = Arc::clone(&text);
            Box::pin(async move {
                let mut res = c.query_iter(&*text).await.map_err(my_err)?;
                // Every result set in turn; the rows are those of the last that has columns.
                let mut out = Rows::default();
                while !res.is_empty() {
                    let cols = res.columns();
                    let rows: Vec<Row> = res.collect().await.map_err(my_err)?;
                    if let Some(cols) = cols.filter(|c| !c.is_empty()) {
                        out = to_rows(&cols, rows);
                    }
                }
                res.drop_result().await.map_err(my_err)?;
                Ok(out)
            })
        })
    }
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

fn param(v: &Value) -> mysql_async::Value {
    use mysql_async::Value as M;
    match v {
        Value::Null => M::NULL,
        Value::Int(i) => M::Int(*i),
        Value::Double(d) => M::Double(*d),
        Value::Str(s) => M::Bytes(s.as_bytes().to_vec()),
        Value::Blob(b) => M::Bytes(b.clone()),
        Value::DateTime(t) => M::Bytes(sql::format_datetime(*t).into_bytes()),
    }
}

fn to_rows(cols: &[Column], rows: Vec<Row>) -> Rows {
    let columns = cols.iter().map(|c| c.name_str().into_owned()).collect();
    let rows = rows
        .into_iter()
        .map(|r| {
            r.unwrap()
                .into_iter()
                .zip(cols)
                .map(|(v, c)| value(v, c))
                .collect()
        })
        .collect();
    Rows { columns, rows }
}

/// A column value (binary protocol: typed; text protocol: bytes read by the column type).
fn value(v: mysql_async::Value, col: &Column) -> Value {
    use mysql_async::Value as M;
    let ty = col.column_type();
    match v {
        M::NULL => Value::Null,
        M::Int(i) => Value::Int(i),
        M::UInt(u) => Value::Int(i64::try_from(u).unwrap_or(i64::MAX)),
        M::Float(f) => Value::Double(f64::from(f)),
        M::Double(d) => Value::Double(d),
        M::Date(y, mo, d, h, mi, s, _) => Value::DateTime(
            sql::days_from_civil(i64::from(y), u32::from(mo).max(1), u32::from(d).max(1)) * 86_400
                + i64::from(h) * 3600
                + i64::from(mi) * 60
                + i64::from(s),
        ),
        M::Time(neg, d, h, mi, s, _) => {
            let secs =
                i64::from(d) * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s);
            Value::Int(if neg { -secs } else { secs })
        }
        M::Bytes(b) => bytes_value(b, ty, col.character_set()),
    }
}

fn bytes_value(b: Vec<u8>, ty: ColumnType, charset: u16) -> Value {
    use ColumnType as T;
    let text = || String::from_utf8_lossy(&b).into_owned();
    match ty {
        T::MYSQL_TYPE_TINY
        | T::MYSQL_TYPE_SHORT
        | T::MYSQL_TYPE_LONG
        | T::MYSQL_TYPE_INT24
        | T::MYSQL_TYPE_LONGLONG
        | T::MYSQL_TYPE_YEAR => text()
            .parse()
            .map_or_else(|_| Value::Str(text()), Value::Int),
        T::MYSQL_TYPE_FLOAT
        | T::MYSQL_TYPE_DOUBLE
        | T::MYSQL_TYPE_DECIMAL
        | T::MYSQL_TYPE_NEWDECIMAL => text()
            .parse()
            .map_or_else(|_| Value::Str(text()), Value::Double),
        T::MYSQL_TYPE_DATETIME
        | T::MYSQL_TYPE_DATETIME2
        | T::MYSQL_TYPE_TIMESTAMP
        | T::MYSQL_TYPE_TIMESTAMP2
        | T::MYSQL_TYPE_DATE
        | T::MYSQL_TYPE_NEWDATE => {
            sql::parse_datetime(&text()).map_or_else(|| Value::Str(text()), Value::DateTime)
        }
        _ if charset == BINARY_CHARSET => Value::Blob(b),
        _ => match String::from_utf8(b) {
            Ok(s) => Value::Str(s),
            Err(e) => Value::Blob(e.into_bytes()),
        },
    }
}

/// Maps a driver error: I/O, a closed connection and server shutdown are retryable; lock
/// waits and deadlocks are timeouts (retryable); the rest are query errors.
fn my_err(e: mysql_async::Error) -> DbError {
    use mysql_async::{DriverError, Error as E};
    match &e {
        E::Io(_) | E::Other(_) => DbError::Connection(e.to_string()),
        E::Driver(
            DriverError::ConnectionClosed
            | DriverError::PacketOutOfOrder
            | DriverError::PoolDisconnected
            | DriverError::UnexpectedPacket { .. },
        ) => DbError::Connection(e.to_string()),
        // Server shutdown, connection killed, gone away, lost, too many connections.
        E::Server(s) if matches!(s.code, 1053 | 1927 | 2006 | 2013 | 1040 | 1152 | 1184) => {
            DbError::Connection(e.to_string())
        }
        // Lock wait timeout, deadlock.
        E::Server(s) if matches!(s.code, 1205 | 1213) => DbError::Timeout(0),
        _ => DbError::Query(e.to_string()),
    }
}
