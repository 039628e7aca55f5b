//! The PostgreSQL driver (tokio-postgres, no TLS) over the shared runtime and slots of
//! [`crate::remote`].
//!
//! Statements are prepared once per connection and SQL text, and parameters are encoded for
//! the type the server inferred for each placeholder (so a [`Value::Int`] bound to an `int4`
//! column is sent as 4 bytes, a `Str` bound to an `integer` is parsed, a `DateTime` bound to
//! a `timestamp` is sent as one). `raw()` uses the simple-query protocol: every value comes
//! back as text (`Str`) or NULL.
//!
//! Types read: int2/int4/int8/oid → `Int`, bool → `Int` 0/1, float4/float8 → `Double`,
//! numeric → `Int` when integral else `Double`, timestamp/timestamptz/date → `DateTime`,
//! bytea → `Blob`, text and everything else → `Str` (or `Blob` when not UTF-8).
//! `insert` returns the new row's `id` (`RETURNING id`) when the table has an `id` column,
//! else 0.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage, Statement};

use crate::remote::{BoxFut, CONNECT_TIMEOUT, Connect, Remote};
use crate::{Cond, Db, DbError, DbUrl, Dialect, L_DBG, Rows, Select, Value, log, sql};

/// Seconds from the Unix epoch to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH: i64 = 946_684_800;
/// Statements kept per connection before the cache is cleared.
const STMT_CACHE: usize = 256;

/// Opens the database `u` names.
pub(crate) fn open(u: &DbUrl) -> Result<Arc<dyn Db>, DbError> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(u.host.as_deref().unwrap_or("localhost"))
        .port(u.port.unwrap_or(5432))
        .dbname(&u.database)
        .application_name("sipox")
        .connect_timeout(CONNECT_TIMEOUT);
    if let Some(user) = &u.user {
        cfg.user(user);
    }
    if let Some(p) = &u.password {
        cfg.password(p.as_bytes());
    }
    let schema_epoch = Arc::new(AtomicU64::new(0));
    let connector = Connector {
        cfg,
        schema_epoch: Arc::clone(&schema_epoch),
    };
    Ok(Arc::new(Pg {
        remote: Remote::open("postgres", u.masked(), connector)?,
        schema_epoch,
        has_id: Mutex::new(HashMap::new()),
    }))
}

/// A PostgreSQL database.
#[derive(Debug)]
struct Pg {
    remote: Remote<Connector>,
    /// Bumped by every `raw()` call that is not a plain SELECT (DDL may change what cached
    /// statements mean): connections clear their statement cache when it moved.
    schema_epoch: Arc<AtomicU64>,
    /// Per table: has an `id` column (for `insert`'s return value).
    has_id: Mutex<HashMap<String, bool>>,
}

struct Connector {
    cfg: tokio_postgres::Config,
    schema_epoch: Arc<AtomicU64>,
}

/// One connection and its statement cache.
struct PgConn {
    client: Client,
    stmts: HashMap<String, Statement>,
    epoch: u64,
    schema_epoch: Arc<AtomicU64>,
}

impl Connect for Connector {
    type Conn = PgConn;

    fn connect(&self) -> BoxFut<'_, Result<PgConn, DbError>> {
        Box::pin(async move {
            let (client, conn) = self.cfg.connect(NoTls).await.map_err(pg_err)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    let e = pg_err(e);
                    log(L_DBG, &format!("postgres connection ended: {e}"));
                }
            });
            Ok(PgConn {
                client,
                stmts: HashMap::new(),
                epoch: self.schema_epoch.load(Ordering::SeqCst),
                schema_epoch: Arc::clone(&self.schema_epoch),
            })
        })
    }

    fn is_open(conn: &PgConn) -> bool {
        !conn.client.is_closed()
    }
}

impl PgConn {
    async fn prepared(&mut self, text: &str) -> Result<Statement, DbError> {
        let epoch = self.schema_epoch.load(Ordering::SeqCst);
        if epoch != self.epoch || self.stmts.len() >= STMT_CACHE {
            self.stmts.clear();
            self.epoch = epoch;
        }
        if let Some(s) = self.stmts.get(text) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(text).await.map_err(pg_err)?;
        self.stmts.insert(text.to_owned(), s.clone());
        Ok(s)
    }

    async fn query(&mut self, text: &str, params: &[Value]) -> Result<Rows, DbError> {
        let st = self.prepared(text).await?;
        let ps: Vec<Param<'_>> = params.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = ps.iter().map(|p| p as _).collect();
        let rows = self.client.query(&st, &refs).await.map_err(pg_err)?;
        let columns: Vec<String> = st.columns().iter().map(|c| c.name().to_owned()).collect();
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut row = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                row.push(r.try_get::<_, PgValue>(i).map_err(pg_err)?.0);
            }
            out.push(row);
        }
        Ok(Rows { columns, rows: out })
    }

    async fn execute(&mut self, text: &str, params: &[Value]) -> Result<u64, DbError> {
        let st = self.prepared(text).await?;
        let ps: Vec<Param<'_>> = params.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = ps.iter().map(|p| p as _).collect();
        self.client.execute(&st, &refs).await.map_err(pg_err)
    }
}

/// An owned statement for the driver task.
struct Job {
    sql: String,
    params: Vec<Value>,
}

impl Job {
    fn new(st: &sql::Stmt<'_>) -> Arc<Self> {
        Arc::new(Self {
            sql: st.sql.clone(),
            params: st.params.iter().map(|v| (*v).clone()).collect(),
        })
    }
}

impl Pg {
    fn query(&self, st: &sql::Stmt<'_>) -> Result<Rows, DbError> {
        let job = Job::new(st);
        self.remote.call(true, move |c| {
            let job = Arc::clone(&job);
            Box::pin(async move { c.query(&job.sql, &job.params).await })
        })
    }

    fn execute(&self, st: &sql::Stmt<'_>, idempotent: bool) -> Result<u64, DbError> {
        let job = Job::new(st);
        self.remote.call(idempotent, move |c| {
            let job = Arc::clone(&job);
            Box::pin(async move { c.execute(&job.sql, &job.params).await })
        })
    }

    fn has_id(&self, table: &str) -> Result<bool, DbError> {
        if let Some(b) = self.has_id.lock().get(table) {
            return Ok(*b);
        }
        let params = [Value::from(table)];
        let st = sql::Stmt {
            sql: "SELECT 1 FROM information_schema.columns WHERE table_schema = \
                  current_schema() AND table_name = $1 AND column_name = 'id'"
                .to_owned(),
            params: params.iter().collect(),
        };
        let b = !self.query(&st)?.is_empty();
        self.has_id.lock().insert(table.to_owned(), b);
        Ok(b)
    }
}

impl Db for Pg {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn select(&self, q: &Select<'_>) -> Result<Rows, DbError> {
        self.query(&sql::select(Dialect::Postgres, q))
    }

    fn insert(&self, table: &str, cols: &[&str], vals: &[Value]) -> Result<u64, DbError> {
        let mut st = sql::insert(Dialect::Postgres, table, cols, vals);
        if !self.has_id(table)? {
            return self.execute(&st, false).map(|_| 0);
        }
        st.sql.push_str(" RETURNING \"id\"");
        let job = Job::new(&st);
        let rows = self.remote.call(false, move |c| {
            let job = Arc::clone(&job);
            Box::pin(async move { c.query(&job.sql, &job.params).await })
        })?;
        Ok(rows
            .rows
            .first()
            .and_then(|r| r.first())
            .and_then(Value::as_int)
            .and_then(|i| u64::try_from(i).ok())
            .unwrap_or(0))
    }

    fn update(
        &self,
        table: &str,
        conds: &[Cond<'_>],
        cols: &[&str],
        vals: &[Value],
    ) -> Result<u64, DbError> {
        self.execute(
            &sql::update(Dialect::Postgres, table, conds, cols, vals),
            true,
        )
    }

    fn delete(&self, table: &str, conds: &[Cond<'_>]) -> Result<u64, DbError> {
        self.execute(&sql::delete(Dialect::Postgres, table, conds), true)
    }

    fn replace(
        &self,
        table: &str,
        cols: &[&str],
        vals: &[Value],
        key_cols: &[&str],
    ) -> Result<(), DbError> {
        let st = sql::replace(Dialect::Postgres, table, cols, vals, key_cols);
        self.execute(&st, !key_cols.is_empty()).map(drop)
    }

    fn raw(&self, text: &str) -> Result<Rows, DbError> {
        let select = text
            .trim_start()
            .get(..6)
            .is_some_and(|w| w.eq_ignore_ascii_case("select"));
        if !select {
            self.schema_epoch.fetch_add(1, Ordering::SeqCst);
            self.has_id.lock().clear();
        }
        let text: Arc<str> = text.into();
        self.remote.call(select, move |c| {
            let text = Arc::clone(&text);
            Box::pin(async move {
                let msgs = c.client.simple_query(&text).await.map_err(pg_err)?;
                Ok(simple_rows(msgs))
            })
        })
    }
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

/// The rows of the last statement of a simple query that described rows.
fn simple_rows(msgs: Vec<SimpleQueryMessage>) -> Rows {
    let mut out = Rows::default();
    for m in msgs {
        match m {
            SimpleQueryMessage::RowDescription(cols) => {
                out = Rows {
                    columns: cols.iter().map(|c| c.name().to_owned()).collect(),
                    rows: Vec::new(),
                };
            }
            SimpleQueryMessage::Row(r) => {
                if out.columns.is_empty() {
                    out.columns = r.columns().iter().map(|c| c.name().to_owned()).collect();
                }
                let row = (0..r.len())
                    .map(|i| r.get(i).map_or(Value::Null, Value::from))
                    .collect();
                out.rows.push(row);
            }
            _ => {}
        }
    }
    out
}

type BoxErr = Box<dyn StdError + Sync + Send>;

/// A [`Value`] encoded for the parameter type the server expects.
#[derive(Debug)]
struct Param<'a>(&'a Value);

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxErr> {
        let v = self.0;
        if v.is_null() {
            return Ok(IsNull::Yes);
        }
        let bad = || -> BoxErr { format!("cannot send {v:?} as a {ty} parameter").into() };
        match *ty {
            Type::BOOL => {
                let b = match v {
                    Value::Str(s) => matches!(s.as_str(), "t" | "true" | "1" | "y" | "yes"),
                    _ => int(v).ok_or_else(bad)? != 0,
                };
                out.extend_from_slice(&[u8::from(b)]);
            }
            Type::INT2 => {
                let i = i16::try_from(int(v).ok_or_else(bad)?).map_err(|_| bad())?;
                out.extend_from_slice(&i.to_be_bytes());
            }
            Type::INT4 => {
                let i = i32::try_from(int(v).ok_or_else(bad)?).map_err(|_| bad())?;
                out.extend_from_slice(&i.to_be_bytes());
            }
            Type::OID => {
                let i = u32::try_from(int(v).ok_or_else(bad)?).map_err(|_| bad())?;
                out.extend_from_slice(&i.to_be_bytes());
            }
            Type::INT8 => out.extend_from_slice(&int(v).ok_or_else(bad)?.to_be_bytes()),
            Type::FLOAT4 => {
                out.extend_from_slice(&(float(v).ok_or_else(bad)? as f32).to_be_bytes())
            }
            Type::FLOAT8 => out.extend_from_slice(&float(v).ok_or_else(bad)?.to_be_bytes()),
            Type::TIMESTAMP | Type::TIMESTAMPTZ => {
                let micros = secs(v)
                    .ok_or_else(bad)?
                    .checked_sub(PG_EPOCH)
                    .and_then(|s| s.checked_mul(1_000_000))
                    .ok_or_else(bad)?;
                out.extend_from_slice(&micros.to_be_bytes());
            }
            Type::DATE => {
                let days = i32::try_from((secs(v).ok_or_else(bad)? - PG_EPOCH).div_euclid(86_400))
                    .map_err(|_| bad())?;
                out.extend_from_slice(&days.to_be_bytes());
            }
            Type::BYTEA => match v {
                Value::Blob(b) => out.extend_from_slice(b),
                Value::Str(s) => out.extend_from_slice(s.as_bytes()),
                _ => return Err(bad()),
            },
            Type::NUMERIC => return Err(bad()),
            // text, varchar, char, name, unknown, json and the rest of the text types.
            _ => match v {
                Value::Str(s) => out.extend_from_slice(s.as_bytes()),
                Value::Blob(b) => out.extend_from_slice(b),
                Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
                Value::Double(d) => out.extend_from_slice(d.to_string().as_bytes()),
                Value::DateTime(t) => out.extend_from_slice(sql::format_datetime(*t).as_bytes()),
                Value::Null => return Ok(IsNull::Yes),
            },
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Double(d) if d.fract() != 0.0 => None,
        _ => v.as_int(),
    }
}

fn float(v: &Value) -> Option<f64> {
    match v {
        Value::Double(d) => Some(*d),
        Value::Int(i) | Value::DateTime(i) => Some(*i as f64),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn secs(v: &Value) -> Option<i64> {
    match v {
        Value::DateTime(t) | Value::Int(t) => Some(*t),
        Value::Str(s) => sql::parse_datetime(s),
        _ => None,
    }
}

/// A column value decoded from its binary form whatever its type.
struct PgValue(Value);

impl<'a> FromSql<'a> for PgValue {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxErr> {
        fn be<const N: usize>(raw: &[u8]) -> Result<[u8; N], BoxErr> {
            raw.try_into()
                .map_err(|_| format!("expected {N} bytes, got {}", raw.len()).into())
        }
        Ok(Self(match *ty {
            Type::BOOL => Value::Int(i64::from(raw.first().is_some_and(|b| *b != 0))),
            Type::INT2 => Value::Int(i16::from_be_bytes(be(raw)?).into()),
            Type::INT4 => Value::Int(i32::from_be_bytes(be(raw)?).into()),
            Type::OID => Value::Int(u32::from_be_bytes(be(raw)?).into()),
            Type::INT8 => Value::Int(i64::from_be_bytes(be(raw)?)),
            Type::FLOAT4 => Value::Double(f32::from_be_bytes(be(raw)?).into()),
            Type::FLOAT8 => Value::Double(f64::from_be_bytes(be(raw)?)),
            Type::NUMERIC => numeric(raw)?,
            Type::TIMESTAMP | Type::TIMESTAMPTZ => {
                let micros = i64::from_be_bytes(be(raw)?);
                Value::DateTime(micros.div_euclid(1_000_000) + PG_EPOCH)
            }
            Type::DATE => {
                Value::DateTime(i64::from(i32::from_be_bytes(be(raw)?)) * 86_400 + PG_EPOCH)
            }
            Type::BYTEA => Value::Blob(raw.to_vec()),
            _ => match std::str::from_utf8(raw) {
                Ok(s) => Value::Str(s.to_owned()),
                Err(_) => Value::Blob(raw.to_vec()),
            },
        }))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxErr> {
        Ok(Self(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// NUMERIC's binary form: digit count, weight, sign, scale, then base-10000 digits.
fn numeric(raw: &[u8]) -> Result<Value, BoxErr> {
    let word = |i: usize| -> Result<u16, BoxErr> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "short numeric".into())
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(1)? as i16);
    let sign = word(2)?;
    let scale = word(3)?;
    if sign == 0xC000 {
        return Ok(Value::Double(f64::NAN));
    }
    let mut v = 0f64;
    for i in 0..ndigits {
        v += f64::from(word(4 + i)?) * 10_000f64.powi(weight - i as i32);
    }
    if sign == 0x4000 {
        v = -v;
    }
    Ok(if scale == 0 && v.fract() == 0.0 && v.abs() < 9.0e15 {
        Value::Int(v as i64)
    } else {
        Value::Double(v)
    })
}

/// Maps a driver error: lost connections, shutdowns and I/O are retryable.
fn pg_err(e: tokio_postgres::Error) -> DbError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let msg = format!("{} ({code}): {}", db.severity(), db.message());
        // Class 08 (connection exception), 57P01-03 (shutdown, cannot connect now).
        return if code.starts_with("08") || code.starts_with("57P") {
            DbError::Connection(msg)
        } else {
            DbError::Query(msg)
        };
    }
    let text = match e.source() {
        Some(s) => format!("{e}: {s}"),
        None => e.to_string(),
    };
    let io = e.is_closed()
        || e.source().is_some_and(|s| s.is::<std::io::Error>())
        || [
            "error communicating",
            "error connecting",
            "timeout waiting",
            "unexpected message",
            "error parsing response",
        ]
        .iter()
        .any(|p| text.starts_with(p));
    if io {
        DbError::Connection(text)
    } else {
        DbError::Query(text)
    }
}
