//! The OpenSIPS 3.5 tables sipox's modules use, as static data: columns with their types,
//! sizes, NULL-ability and defaults, primary keys, unique keys, indexes and each table's
//! version; `CREATE TABLE` text per [`Dialect`] in the shape of OpenSIPS's generated scripts
//! (`scripts/{mysql,postgres,sqlite}/*-create.sql`), the `version` row, the db_text header line,
//! and [`create`]/[`create_all`] to build them in a live database.
//!
//! Sources (facts only): OpenSIPS `db/schema/*.xml` and the scripts generated from them,
//! `scripts/mysql/{standard,auth_db,usrloc,alias_db,domain,sqlops,acc,dialog,dispatcher,
//! permissions,dialplan}-create.sql` and `scripts/dbtext/opensips/*` of the 3.x line:
//!
//! | table | version | notes |
//! |---|---|---|
//! | subscriber | 8 | `ha1_sha256`/`ha1_sha512t256`, no `email_address`/`rpid` |
//! | location | 1013 | `contact_id` BIGINT auto id, `expires` unix time (INT), `contact` TEXT, `kv_store` |
//! | dbaliases | 2 | |
//! | domain | 3 | `attrs` (the `accept_subdomain` column and version 4 came after 3.5) |
//! | uri | 2 | |
//! | usr_preferences | 3 | |
//! | acc | 7 | `ms_duration`, `setuptime`, `created` |
//! | missed_calls | 5 | |
//! | dialog | 12 | `script_flags` is a string, mangled URIs 255 |
//! | dispatcher | 8 | (per-destination `probe_mode` and version 9 came after 3.5) |
//! | address | 5 | |
//! | dialplan | 5 | `timerec` |

use std::fmt::Write as _;
use std::path::Path;

use crate::{Db, DbError, Dialect, Select, VERSION_TABLE, Value};

/// A column type as OpenSIPS's schema declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// 32-bit integer; `size` is MySQL's display width (`INT(11)`), `None` for a bare `INT`.
    Int {
        /// Display width.
        size: Option<u8>,
        /// `UNSIGNED` (MySQL only).
        unsigned: bool,
    },
    /// 64-bit integer (`BIGINT(10) UNSIGNED` in MySQL; `long` in db_text).
    BigInt {
        /// `UNSIGNED` (MySQL only).
        unsigned: bool,
    },
    /// `SMALLINT(5) UNSIGNED` in MySQL.
    SmallInt {
        /// Display width.
        size: Option<u8>,
        /// `UNSIGNED` (MySQL only).
        unsigned: bool,
    },
    /// `TINYINT` in MySQL.
    TinyInt,
    /// `FLOAT(10,2)` (REAL in PostgreSQL; `double` in db_text).
    Float,
    /// `DOUBLE`.
    Double,
    /// Fixed-size string: `CHAR(n)` (MySQL, SQLite), `VARCHAR(n)` (PostgreSQL).
    Str(u16),
    /// Long text, with MySQL's optional length hint (`TEXT(512)`).
    Text(Option<u16>),
    /// Date and time (`DATETIME`, `TIMESTAMP WITHOUT TIME ZONE`).
    DateTime,
    /// Binary (`BLOB(n)`, `BYTEA`).
    Blob(Option<u16>),
}

impl ColType {
    /// True for the integer types.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            Self::Int { .. } | Self::BigInt { .. } | Self::SmallInt { .. } | Self::TinyInt
        )
    }
}

/// One column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Name.
    pub name: &'static str,
    /// Type.
    pub ty: ColType,
    /// NULL allowed.
    pub null: bool,
    /// The SQL `DEFAULT` expression as OpenSIPS writes it (`''`, `0`, `'1900-01-01 00:00:01'`,
    /// `NULL`), if any.
    pub default: Option<&'static str>,
}

/// The primary key or another key/index of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    /// Name as in OpenSIPS's schema (PostgreSQL and SQLite prefix it with `table_`).
    pub name: &'static str,
    /// Columns.
    pub cols: &'static [&'static str],
    /// A unique key (else a plain index).
    pub unique: bool,
}

/// A table definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// Name.
    pub name: &'static str,
    /// The version OpenSIPS 3.5 records in the `version` table (`None` for `version` itself).
    pub version: Option<i64>,
    /// Columns, in order.
    pub columns: &'static [Column],
    /// The primary-key column, if any.
    pub primary: Option<&'static str>,
    /// True when the primary key is an auto-increment id.
    pub auto_id: bool,
    /// Unique keys and indexes.
    pub keys: &'static [Index],
}

impl Table {
    /// A column by name.
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// What [`create`] did for one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// Table.
    pub table: &'static str,
    /// False when the table already existed (only its version row was written).
    pub created: bool,
    /// The version written to the `version` table, if the table has one.
    pub version: Option<i64>,
}

/// Every table sipox knows, `version` first.
pub fn all() -> &'static [Table] {
    TABLES
}

/// A table by name.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// The `CREATE TABLE` statement and its `CREATE INDEX` statements, one string each without
/// the trailing `;`, in the shape of OpenSIPS's scripts for `dialect`. For
/// [`Dialect::Text`] the one string is the db_text header line ([`dbtext_header`]).
/// `CREATE TABLE` carries `IF NOT EXISTS`; so do the indexes for SQLite and PostgreSQL
/// (MySQL has no `CREATE INDEX IF NOT EXISTS`: [`create_all`] skips an existing table whole).
pub fn create_sql(t: &Table, dialect: Dialect) -> Vec<String> {
    if dialect == Dialect::Text {
        return vec![dbtext_header(t)];
    }
    let mut out = Vec::new();
    let mut s = format!("CREATE TABLE IF NOT EXISTS {} (\n", t.name);
    let mut lines: Vec<String> = t
        .columns
        .iter()
        .map(|c| column_sql(t, c, dialect))
        .collect();
    for k in t.keys.iter().filter(|k| k.unique) {
        lines.push(format!(
            "CONSTRAINT {} UNIQUE ({})",
            key_name(t, k, dialect),
            k.cols.join(", ")
        ));
    }
    for (i, l) in lines.iter().enumerate() {
        let sep = if i + 1 < lines.len() { ",\n" } else { "\n" };
        let _ = write!(s, "    {l}{sep}");
    }
    s.push(')');
    if dialect == Dialect::Mysql {
        s.push_str(" ENGINE=InnoDB");
    }
    out.push(s);
    for k in t.keys.iter().filter(|k| !k.unique) {
        let ine = if dialect == Dialect::Mysql {
            ""
        } else {
            "IF NOT EXISTS "
        };
        out.push(format!(
            "CREATE INDEX {ine}{} ON {} ({})",
            key_name(t, k, dialect),
            t.name,
            k.cols.join(", ")
        ));
    }
    if dialect == Dialect::Postgres
        && t.auto_id
        && let Some(pk) = t.primary
        && t.column(pk)
            .is_some_and(|c| matches!(c.ty, ColType::Int { .. }))
    {
        // OpenSIPS caps 32-bit serials so they wrap like the MySQL INT(10) UNSIGNED ids
        out.push(format!(
            "ALTER SEQUENCE {}_{}_seq MAXVALUE 2147483647 CYCLE",
            t.name, pk
        ));
    }
    out
}

/// `INSERT INTO version ...` for the table (`None` for `version` itself).
pub fn version_insert_sql(t: &Table) -> Option<String> {
    t.version.map(|v| {
        format!(
            "INSERT INTO {VERSION_TABLE} (table_name, table_version) values ('{}','{v}')",
            t.name
        )
    })
}

/// The db_text header line (without the newline), as OpenSIPS's `scripts/dbtext/opensips`
/// files declare the table: `name(type[,flag])` separated by spaces, types `int`, `long`,
/// `double`, `string`, `blob` (datetime columns are `int`, unix time), flags `auto` for the
/// auto-increment id and `null` for a nullable column.
pub fn dbtext_header(t: &Table) -> String {
    let mut s = String::new();
    for (i, c) in t.columns.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let ty = match c.ty {
            ColType::BigInt { .. } => "long",
            ColType::Float | ColType::Double => "double",
            ColType::Str(_) | ColType::Text(_) => "string",
            ColType::Blob(_) => "blob",
            ColType::Int { .. }
            | ColType::SmallInt { .. }
            | ColType::TinyInt
            | ColType::DateTime => "int",
        };
        let flag = if t.auto_id && t.primary == Some(c.name) {
            ",auto"
        } else if c.null {
            ",null"
        } else {
            ""
        };
        let _ = write!(s, "{}({ty}{flag})", c.name);
    }
    s
}

/// Creates `tables` (all known tables when empty; `version` is always included first) in
/// the open database: each table that does not exist yet is created with its indexes, and
/// its row in `version` is written (replaced). Idempotent. Not for db_text (a table there is
/// a file: use [`create`] with the `text://` URL).
pub fn create_all(db: &dyn Db, tables: &[&str]) -> Result<Vec<Created>, DbError> {
    let dialect = db.dialect();
    if dialect == Dialect::Text {
        return Err(DbError::Unsupported {
            driver: "text",
            what: "creating tables through an open connection (use schema::create with the URL)",
        });
    }
    let list = resolve(tables)?;
    let mut done = Vec::with_capacity(list.len());
    for t in list {
        let exists = table_exists(db, t.name)?;
        if !exists {
            for stmt in create_sql(t, dialect) {
                db.raw(&stmt)?;
            }
        }
        write_version(db, t)?;
        done.push(Created {
            table: t.name,
            created: !exists,
            version: t.version,
        });
    }
    Ok(done)
}

/// Opens `url` and creates `tables` there ([`create_all`]; all known tables when empty). For
/// `text:///dir` the directory is created if missing, each missing table becomes a file with
/// its header line, and the `version` rows are written through the db_text driver.
pub fn create(url: &str, tables: &[&str]) -> Result<Vec<Created>, DbError> {
    let u = crate::DbUrl::parse(url)?;
    if u.scheme != "text" {
        let db = crate::connect(url)?;
        return create_all(db.as_ref(), tables);
    }
    let list = resolve(tables)?;
    let dir = Path::new(&u.database);
    std::fs::create_dir_all(dir)
        .map_err(|e| DbError::Io(format!("cannot create {}: {e}", dir.display())))?;
    let mut made = Vec::with_capacity(list.len());
    for t in &list {
        let path = dir.join(t.name);
        let exists = path.exists();
        if !exists {
            let text = format!("{}\n", dbtext_header(t));
            crate::text::write_atomic(&path, text.as_bytes())?;
        }
        made.push((t, exists));
    }
    let db = crate::connect(url)?;
    let mut done = Vec::with_capacity(made.len());
    for (t, exists) in made {
        write_version(db.as_ref(), t)?;
        done.push(Created {
            table: t.name,
            created: !exists,
            version: t.version,
        });
    }
    Ok(done)
}

/// The tables to create: `version` first, then the named ones (or all), without repeats.
fn resolve(tables: &[&str]) -> Result<Vec<&'static Table>, DbError> {
    let mut list: Vec<&'static Table> = Vec::new();
    let names: Vec<&str> = if tables.is_empty() {
        TABLES.iter().map(|t| t.name).collect()
    } else {
        let mut v = vec![VERSION_TABLE];
        v.extend_from_slice(tables);
        v
    };
    for n in names {
        let t = table(n).ok_or_else(|| {
            DbError::Query(format!(
                "unknown table {n:?} (known: {})",
                TABLES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
            ))
        })?;
        if !list.iter().any(|x| x.name == t.name) {
            list.push(t);
        }
    }
    Ok(list)
}

/// True when `name` can be selected from; a failed query means it does not exist, a lost
/// connection is an error.
fn table_exists(db: &dyn Db, name: &str) -> Result<bool, DbError> {
    match db.select(&Select {
        table: name,
        limit: Some(1),
        ..Select::default()
    }) {
        Ok(_) => Ok(true),
        Err(e) if e.is_retryable() => Err(e),
        Err(DbError::Query(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

fn write_version(db: &dyn Db, t: &Table) -> Result<(), DbError> {
    let Some(v) = t.version else {
        return Ok(());
    };
    db.replace(
        VERSION_TABLE,
        &["table_name", "table_version"],
        &[Value::Str(t.name.to_owned()), Value::Int(v)],
        &["table_name"],
    )
}

fn key_name(t: &Table, k: &Index, dialect: Dialect) -> String {
    match dialect {
        Dialect::Mysql | Dialect::Text => k.name.to_owned(),
        Dialect::Postgres | Dialect::Sqlite => format!("{}_{}", t.name, k.name),
    }
}

fn column_sql(t: &Table, c: &Column, dialect: Dialect) -> String {
    let is_pk = t.primary == Some(c.name);
    if is_pk && t.auto_id {
        let big = matches!(c.ty, ColType::BigInt { .. });
        return match dialect {
            Dialect::Mysql | Dialect::Text => format!(
                "{} {} AUTO_INCREMENT PRIMARY KEY NOT NULL",
                c.name,
                type_sql(c.ty, dialect)
            ),
            Dialect::Postgres => format!(
                "{} {} PRIMARY KEY NOT NULL",
                c.name,
                if big { "BIGSERIAL" } else { "SERIAL" }
            ),
            Dialect::Sqlite => format!("{} INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL", c.name),
        };
    }
    let mut s = format!("{} {}", c.name, type_sql(c.ty, dialect));
    if is_pk {
        s.push_str(" PRIMARY KEY");
    }
    if let Some(d) = c.default {
        let _ = write!(s, " DEFAULT {d}");
    }
    if !c.null {
        s.push_str(" NOT NULL");
    }
    s
}

fn type_sql(ty: ColType, dialect: Dialect) -> String {
    let unsigned = |u: bool| if u { " UNSIGNED" } else { "" };
    match dialect {
        Dialect::Mysql | Dialect::Text => match ty {
            ColType::Int { size, unsigned: u } => match size {
                Some(n) => format!("INT({n}){}", unsigned(u)),
                None => format!("INT{}", unsigned(u)),
            },
            ColType::BigInt { unsigned: u } => format!("BIGINT(10){}", unsigned(u)),
            ColType::SmallInt { size, unsigned: u } => match size {
                Some(n) => format!("SMALLINT({n}){}", unsigned(u)),
                None => format!("SMALLINT{}", unsigned(u)),
            },
            ColType::TinyInt => "TINYINT".into(),
            ColType::Float => "FLOAT(10,2)".into(),
            ColType::Double => "DOUBLE".into(),
            ColType::Str(n) => format!("CHAR({n})"),
            ColType::Text(Some(n)) => format!("TEXT({n})"),
            ColType::Text(None) => "TEXT".into(),
            ColType::DateTime => "DATETIME".into(),
            ColType::Blob(Some(n)) => format!("BLOB({n})"),
            ColType::Blob(None) => "BLOB".into(),
        },
        Dialect::Postgres => match ty {
            ColType::Int { .. } => "INTEGER".into(),
            ColType::BigInt { .. } => "BIGINT".into(),
            ColType::SmallInt { .. } | ColType::TinyInt => "SMALLINT".into(),
            ColType::Float => "REAL".into(),
            ColType::Double => "DOUBLE PRECISION".into(),
            ColType::Str(n) => format!("VARCHAR({n})"),
            ColType::Text(_) => "TEXT".into(),
            ColType::DateTime => "TIMESTAMP WITHOUT TIME ZONE".into(),
            ColType::Blob(_) => "BYTEA".into(),
        },
        Dialect::Sqlite => match ty {
            ColType::Int { .. } => "INTEGER".into(),
            ColType::BigInt { .. } => "BIGINT(10)".into(),
            ColType::SmallInt { .. } => "SMALLINT".into(),
            ColType::TinyInt => "TINYINT".into(),
            ColType::Float => "FLOAT(10,2)".into(),
            ColType::Double => "DOUBLE".into(),
            ColType::Str(n) => format!("CHAR({n})"),
            ColType::Text(Some(n)) => format!("TEXT({n})"),
            ColType::Text(None) => "TEXT".into(),
            ColType::DateTime => "DATETIME".into(),
            ColType::Blob(_) => "BLOB".into(),
        },
    }
}

// ---- the table data ----

const fn col(name: &'static str, ty: ColType, null: bool, default: Option<&'static str>) -> Column {
    Column {
        name,
        ty,
        null,
        default,
    }
}

/// `INT(10) UNSIGNED`, OpenSIPS's id type.
const ID: ColType = ColType::Int {
    size: Some(10),
    unsigned: true,
};
/// `INT(11)`.
const INT11: ColType = ColType::Int {
    size: Some(11),
    unsigned: false,
};
/// `INT(11) UNSIGNED`.
const UINT11: ColType = ColType::Int {
    size: Some(11),
    unsigned: true,
};
/// `INT(10) UNSIGNED` (non-id use).
const UINT10: ColType = ID;
/// Bare `INT`.
const INT: ColType = ColType::Int {
    size: None,
    unsigned: false,
};
const fn s(n: u16) -> ColType {
    ColType::Str(n)
}

/// A NOT NULL string defaulting to `''`.
const fn str_e(name: &'static str, n: u16) -> Column {
    col(name, s(n), false, Some("''"))
}
/// A nullable string defaulting to NULL.
const fn str_n(name: &'static str, n: u16) -> Column {
    col(name, s(n), true, Some("NULL"))
}
/// `DATETIME DEFAULT '1900-01-01 00:00:01' NOT NULL`.
const fn last_modified() -> Column {
    col(
        "last_modified",
        ColType::DateTime,
        false,
        Some("'1900-01-01 00:00:01'"),
    )
}
/// The auto-increment `id INT(10) UNSIGNED`.
const fn id() -> Column {
    col("id", ID, false, None)
}

static TABLES: &[Table] = &[
    Table {
        name: "version",
        version: None,
        columns: &[
            col("table_name", s(32), false, None),
            col(
                "table_version",
                ColType::Int {
                    size: None,
                    unsigned: true,
                },
                false,
                Some("0"),
            ),
        ],
        primary: None,
        auto_id: false,
        keys: &[Index {
            name: "t_name_idx",
            cols: &["table_name"],
            unique: true,
        }],
    },
    // auth_db
    Table {
        name: "subscriber",
        version: Some(8),
        columns: &[
            id(),
            str_e("username", 64),
            str_e("domain", 64),
            str_e("password", 25),
            str_e("ha1", 64),
            str_e("ha1_sha256", 64),
            str_e("ha1_sha512t256", 64),
        ],
        primary: Some("id"),
        auto_id: true,
        keys: &[
            Index {
                name: "account_idx",
                cols: &["username", "domain"],
                unique: true,
            },
            Index {
                name: "username_idx",
                cols: &["username"],
                unique: false,
            },
        ],
    },
    // usrloc
    Table {
        name: "location",
        version: Some(1013),
        columns: &[
            col(
                "contact_id",
                ColType::BigInt { unsigned: true },
                false,
                None,
            ),
            str_e("username", 64),
            str_n("domain", 64),
            col("contact", ColType::Text(None), false, None),
            str_n("received", 255),
            str_n("path", 255),
            col("expires", UINT10, false, None),
            col("q", ColType::Float, false, Some("1.0")),
            col("callid", s(255), false, Some("'Default-Call-ID'")),
            col("cseq", INT11, false, Some("13")),
            last_modified(),
            col("flags", INT11, false, Some("0")),
            str_n("cflags", 255),
            str_e("user_agent", 255),
            str_n("socket", 64),
            col("methods", INT11, true, Some("NULL")),
            str_n("sip_instance", 255),
            col("kv_store", ColType::Text(Some(512)), true, Some("NULL")),
            str_n("attr", 255),
        ],
        primary: Some("contact_id"),
        auto_id: true,
        keys: &[],
    },
    // alias_db
    Table {
        name: "dbaliases",
        version: Some(2),
        columns: &[
            id(),
            str_e("alias_username", 64),
            str_e("alias_domain", 64),
            str_e("username", 64),
            str_e("domain", 64),
        ],
        primary: Some("id"),
        auto_id: true,
        keys: &[
            Index {
                name: "alias_idx",
                cols: &["alias_username", "alias_domain"],
                unique: true,
            },
            Index {
                name: "target_idx",
                cols: &["username", "domain"],
                unique: false,
            },
        ],
    },
    // domain
    Table {
        name: "domain",
        version: Some(3),
        columns: &[
            id(),
            str_e("domain", 64),
            str_n("attrs", 255),
            last_modified(),
        ],
        primary: Some("id"),
        auto_id: true,
        keys: &[Index {
            name: "domain_idx",
            cols: &["domain"],
            unique: true,
        }],
    },
    // uri_db (auth_db scripts)
    Table {
        name: "uri",
        version: Some(2),
        columns: &[
            id(),
            str_e("username", 64),
            str_e("domain", 64),
            str_e("uri_user", 64),
            last_modified(),
        ],
        primary: Some("id"),
        auto_id: true,
        keys: &[Index {
            name: "account_idx",
            cols: &["username", "domain", "uri_user"],
            unique: true,
        }],
    },
    // sqlops / avpops
    Table {
        name: "usr_preferences",
        version: Some(3),
        columns: &[
            id(),
            str_e("uuid", 64),
            col("username", s(64), false, Some("0")),
            str_e("domain", 64),
            str_e("attribute", 32),
            col("type", INT11, false, Some("0")),
            str_e("value", 128),
            last_modified(),
        ],
        primary: Some("id"),
        auto_id: true,
        keys: &[
            Index {
                name: "ua_idx",
                cols: &["uuid", "attribute"],
                unique: false,
            },
            Index {
                name: "uda_idx",
                cols: &["username", "domain", "attribute"],
                unique: false,
            },
            Index {
                name: "value_idx",
                cols: &["value"],
                unique: false,
            },
        ],
    },
    // acc
    Table {
        name: "acc",
        version: Some(7),
        columns: &[
            id(),
            str_e("method", 16),
            str_e("from_tag", 64),
            str_e("to_tag", 64),
            str_e("callid", 64),
            str_e("sip_code", 3),
            str_e("sip_reason", 32),
            col("time", ColType::DateTime, false, None),
            col("duration", UINT11, false, Some("0")),
            col("ms_duration", UINT11, false, Some("0")),
            col("setuptime", UINT11, false, Some("0")),
            col("created", ColType::DateTime, true, Some("NULL")),
        ],
        primary: Some("id"),
        auto_id: true,
        keys: &[Index {
            name: "callid_idx",
            cols: &["callid"],
            unique: false,
        }],
    },
    Table {
        name: "missed_calls",
        version: Some(5),
        columns: &[
            id(),
            str_e("method", 16),
            str_e("from_tag", 64),
            str_e("to_tag", 64),
            str_e("callid", 64),
            str_e("sip_code", 3),
            str_e("sip_reason", 32),
            col("time", ColType::DateTime, false, None),
            col("setuptime", UINT11, false, Some("0")),
            col("created", ColType::DateTime, true, Some("NULL")),
        ],
        primary: Some("id"),
        auto_id: true,
        keys: &[Index {
            name: "callid_idx",
            cols: &["callid"],
            unique: false,
        }],
    },
    // dialog
    Table {
        name: "dialog",
        version: Some(12),
        columns: &[
            col("dlg_id", ColType::BigInt { unsigned: true }, false, None),
            col("callid", s(255), false, None),
            col("from_uri", s(255), false, None),
            col("from_tag", s(64), false, None),
            col("to_uri", s(255), false, None),
            col("to_tag", s(64), false, None),
            str_n("mangled_from_uri", 255),
            str_n("mangled_to_uri", 255),
            col("caller_cseq", s(11), false, None),
            col("callee_cseq", s(11), false, None),
            col("caller_ping_cseq", UINT11, false, None),
            col("callee_ping_cseq", UINT11, false, None),
            col("caller_route_set", ColType::Text(Some(512)), true, None),
            col("callee_route_set", ColType::Text(Some(512)), true, None),
            col("caller_contact", s(255), true, None),
            col("callee_contact", s(255), true, None),
            col("caller_sock", s(64), false, None),
            col("callee_sock", s(64), false, None),
            col("state", UINT10, false, None),
            col("start_time", UINT10, false, None),
            col("timeout", UINT10, false, None),
            col("vars", ColType::Blob(Some(4096)), true, Some("NULL")),
            col("profiles", ColType::Text(Some(512)), true, Some("NULL")),
            str_n("script_flags", 255),
            col("module_flags", UINT10, false, Some("0")),
            col("flags", UINT10, false, Some("0")),
            str_n("rt_on_answer", 64),
            str_n("rt_on_timeout", 64),
            str_n("rt_on_hangup", 64),
        ],
        primary: Some("dlg_id"),
        auto_id: false,
        keys: &[],
    },
    // dispatcher
    Table {
        name: "dispatcher",
        version: Some(8),
        columns: &[
            id(),
            col("setid", INT, false, Some("0")),
            str_e("destination", 192),
            str_n("socket", 128),
            col("state", INT, false, Some("0")),
            col("weight", s(64), false, Some("1")),
            col("priority", INT, false, Some("0")),
            str_e("attrs", 128),
            str_e("description", 64),
        ],
        primary: Some("id"),
        auto_id: true,
        keys: &[],
    },
    // permissions
    Table {
        name: "address",
        version: Some(5),
        columns: &[
            id(),
            col(
                "grp",
                ColType::SmallInt {
                    size: Some(5),
                    unsigned: true,
                },
                false,
                Some("0"),
            ),
            col("ip", s(50), false, None),
            col("mask", ColType::TinyInt, false, Some("32")),
            col(
                "port",
                ColType::SmallInt {
                    size: Some(5),
                    unsigned: true,
                },
                false,
                Some("0"),
            ),
            col("proto", s(4), false, Some("'any'")),
            str_n("pattern", 64),
            str_n("context_info", 32),
        ],
        primary: Some("id"),
        auto_id: true,
        keys: &[],
    },
    // dialplan
    Table {
        name: "dialplan",
        version: Some(5),
        columns: &[
            id(),
            col("dpid", INT11, false, None),
            col("pr", INT11, false, Some("0")),
            col("match_op", INT11, false, None),
            col("match_exp", s(64), false, None),
            col("match_flags", INT11, false, Some("0")),
            str_n("subst_exp", 64),
            str_n("repl_exp", 32),
            str_n("timerec", 255),
            col("disabled", INT11, false, Some("0")),
            str_n("attrs", 255),
        ],
        primary: Some("id"),
        auto_id: true,
        keys: &[],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_shapes_match_opensips_scripts() {
        let t = table("subscriber").unwrap();
        let sql = create_sql(t, Dialect::Mysql);
        assert_eq!(
            sql[0],
            "CREATE TABLE IF NOT EXISTS subscriber (\n    \
             id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,\n    \
             username CHAR(64) DEFAULT '' NOT NULL,\n    \
             domain CHAR(64) DEFAULT '' NOT NULL,\n    \
             password CHAR(25) DEFAULT '' NOT NULL,\n    \
             ha1 CHAR(64) DEFAULT '' NOT NULL,\n    \
             ha1_sha256 CHAR(64) DEFAULT '' NOT NULL,\n    \
             ha1_sha512t256 CHAR(64) DEFAULT '' NOT NULL,\n    \
             CONSTRAINT account_idx UNIQUE (username, domain)\n) ENGINE=InnoDB"
        );
        assert_eq!(sql[1], "CREATE INDEX username_idx ON subscriber (username)");
        assert_eq!(sql.len(), 2);
        let loc = create_sql(table("location").unwrap(), Dialect::Mysql);
        assert!(
            loc[0].contains("contact_id BIGINT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL"),
            "{}",
            loc[0]
        );
        assert!(loc[0].contains("    q FLOAT(10,2) DEFAULT 1.0 NOT NULL,\n"));
        assert!(
            loc[0].contains("    last_modified DATETIME DEFAULT '1900-01-01 00:00:01' NOT NULL,\n")
        );
        assert!(loc[0].contains("    kv_store TEXT(512) DEFAULT NULL,\n"));
        assert!(loc[0].contains("    expires INT(10) UNSIGNED NOT NULL,\n"));
        let dlg = create_sql(table("dialog").unwrap(), Dialect::Mysql);
        assert!(dlg[0].contains("dlg_id BIGINT(10) UNSIGNED PRIMARY KEY NOT NULL,"));
        assert!(dlg[0].contains("    caller_route_set TEXT(512),\n"));
        assert!(dlg[0].contains("    vars BLOB(4096) DEFAULT NULL,\n"));
        let v = create_sql(table("version").unwrap(), Dialect::Mysql);
        assert!(v[0].contains("table_version INT UNSIGNED DEFAULT 0 NOT NULL"));
        assert!(v[0].contains("CONSTRAINT t_name_idx UNIQUE (table_name)"));
    }

    #[test]
    fn postgres_and_sqlite_shapes() {
        let t = table("subscriber").unwrap();
        let pg = create_sql(t, Dialect::Postgres);
        assert!(pg[0].contains("    id SERIAL PRIMARY KEY NOT NULL,\n"));
        assert!(pg[0].contains("    username VARCHAR(64) DEFAULT '' NOT NULL,\n"));
        assert!(pg[0].contains("CONSTRAINT subscriber_account_idx UNIQUE (username, domain)"));
        assert!(!pg[0].contains("ENGINE"));
        assert_eq!(
            pg[1],
            "CREATE INDEX IF NOT EXISTS subscriber_username_idx ON subscriber (username)"
        );
        assert_eq!(
            pg[2],
            "ALTER SEQUENCE subscriber_id_seq MAXVALUE 2147483647 CYCLE"
        );
        let loc = create_sql(table("location").unwrap(), Dialect::Postgres);
        assert!(loc[0].contains("contact_id BIGSERIAL PRIMARY KEY NOT NULL"));
        assert!(loc[0].contains(
            "last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '1900-01-01 00:00:01' NOT NULL"
        ));
        assert!(loc[0].contains("    q REAL DEFAULT 1.0 NOT NULL,\n"));
        assert_eq!(loc.len(), 1, "no sequence cap on a BIGSERIAL");
        let lite = create_sql(table("location").unwrap(), Dialect::Sqlite);
        assert!(lite[0].contains("contact_id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL"));
        assert!(lite[0].contains("    expires INTEGER NOT NULL,\n"));
        let lite = create_sql(t, Dialect::Sqlite);
        assert_eq!(
            lite[1],
            "CREATE INDEX IF NOT EXISTS subscriber_username_idx ON subscriber (username)"
        );
    }

    #[test]
    fn version_rows_and_numbers() {
        let want = [
            ("subscriber", 8),
            ("location", 1013),
            ("dbaliases", 2),
            ("domain", 3),
            ("uri", 2),
            ("usr_preferences", 3),
            ("acc", 7),
            ("missed_calls", 5),
            ("dialog", 12),
            ("dispatcher", 8),
            ("address", 5),
            ("dialplan", 5),
        ];
        for (n, v) in want {
            assert_eq!(table(n).unwrap().version, Some(v), "{n}");
        }
        assert_eq!(all().len(), want.len() + 1);
        assert_eq!(all()[0].name, "version");
        assert_eq!(
            version_insert_sql(table("location").unwrap()).unwrap(),
            "INSERT INTO version (table_name, table_version) values ('location','1013')"
        );
        assert!(version_insert_sql(table("version").unwrap()).is_none());
    }

    #[test]
    fn dbtext_headers_follow_opensips_files() {
        assert_eq!(
            dbtext_header(table("version").unwrap()),
            "table_name(string) table_version(int)"
        );
        assert_eq!(
            dbtext_header(table("subscriber").unwrap()),
            "id(int,auto) username(string) domain(string) password(string) ha1(string) \
             ha1_sha256(string) ha1_sha512t256(string)"
        );
        let loc = dbtext_header(table("location").unwrap());
        assert!(loc.starts_with(
            "contact_id(long,auto) username(string) domain(string,null) contact(string) "
        ));
        assert!(loc.contains(" q(double) "));
        assert!(loc.contains(" last_modified(int) "));
        assert!(loc.ends_with(" kv_store(string,null) attr(string,null)"));
        assert_eq!(
            dbtext_header(table("domain").unwrap()),
            "id(int,auto) domain(string) attrs(string,null) last_modified(int)"
        );
        assert!(
            dbtext_header(table("dialog").unwrap()).starts_with("dlg_id(long) callid(string) ")
        );
    }

    #[test]
    fn every_key_names_real_columns() {
        for t in all() {
            for k in t.keys {
                for c in k.cols {
                    assert!(t.column(c).is_some(), "{}.{}: {c}", t.name, k.name);
                }
            }
            if let Some(p) = t.primary {
                assert!(t.column(p).is_some(), "{}: pk {p}", t.name);
            }
        }
    }

    #[test]
    fn unknown_table_is_an_error() {
        let e = resolve(&["nope"]).unwrap_err();
        assert!(e.to_string().contains("unknown table \"nope\""), "{e}");
        let l = resolve(&["location", "location"]).unwrap();
        let names: Vec<_> = l.iter().map(|t| t.name).collect();
        assert_eq!(names, ["version", "location"]);
    }
}
