//! The db_text driver (`text:///dir`): a database is a directory, a table is a file in it
//! named like the table, in OpenSIPS's db_text format:
//!
//! - the first line declares the columns, separated by spaces: `name(type[,flag])` where the
//!   type is recognised by its first letter — `i`nt, `l`ong (64-bit), `d`ouble, `s`tr /
//!   `s`tring (a type word containing an `i` is `string`), `b`lob, `t`ime (datetime, stored
//!   as unix seconds) — and the flag is `null` (NULL allowed) or `auto` (auto-increment, one
//!   integer column per table);
//! - every other line is a row: fields separated by `:`, an empty field is NULL; in strings
//!   `\n` `\r` `\t` `\\` `\:` `\0` stand for newline, CR, tab, backslash, colon and NUL;
//!   doubles are written with two decimals.
//!
//! All tables of the directory are loaded when it is opened and kept in memory behind one
//! lock. Every change rewrites the table's file at once (to a temporary file renamed over the
//! old one), so a crash never leaves a half-written table and OpenSIPS reads what we write.
//! Raw SQL is refused. Like OpenSIPS's db_text: no unique keys are enforced, an empty string
//! is written as an empty field (read back as NULL — we read NULL in a NOT NULL string column
//! as the empty string), and a NOT NULL column left out of an insert gets the type's zero.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::{Cond, Db, DbError, DbUrl, Dialect, Op, Rows, Select, Value};

/// Opens the database `u` names (a directory that must exist).
pub(crate) fn open(u: &DbUrl) -> Result<Arc<dyn Db>, DbError> {
    Ok(Arc::new(TextDb::open(Path::new(&u.database))?))
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
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

/// A db_text database directory.
struct TextDb {
    dir: PathBuf,
    tables: RwLock<HashMap<String, Result<TextTable, String>>>,
}

impl fmt::Debug for TextDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TextDb({})", self.dir.display())
    }
}

/// A column's declared type; `Str` and `String` are kept apart only to write the header back
/// as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Long,
    Double,
    Str,
    String,
    Blob,
    Time,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Self::Int => "int",
            Self::Long => "long",
            Self::Double => "double",
            Self::Str => "str",
            Self::String => "string",
            Self::Blob => "blob",
            Self::Time => "time",
        }
    }

    fn is_integer(self) -> bool {
        matches!(self, Self::Int | Self::Long)
    }
}

#[derive(Debug, Clone, PartialEq)]
struct TextCol {
    name: String,
    kind: Kind,
    null: bool,
    auto: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct TextTable {
    cols: Vec<TextCol>,
    rows: Vec<Vec<Value>>,
    /// Highest value seen in the auto column.
    auto_val: i64,
}

impl TextDb {
    fn open(dir: &Path) -> Result<Self, DbError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| DbError::Io(format!("db_text directory {}: {e}", dir.display())))?;
        let mut tables = HashMap::new();
        for entry in entries {
            let entry = entry.map_err(|e| DbError::Io(format!("{}: {e}", dir.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.path().is_file() {
                continue;
            }
            let loaded = std::fs::read(entry.path())
                .map_err(|e| e.to_string())
                .and_then(|b| parse_table(&b))
                .map_err(|e| format!("db_text table {}: {e}", entry.path().display()));
            tables.insert(name, loaded);
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            tables: RwLock::new(tables),
        })
    }

    /// Runs `f` on a copy of the table; when it reports a change the file is rewritten and
    /// the copy replaces the table (a failed write changes nothing).
    fn modify<R>(
        &self,
        table: &str,
        f: impl FnOnce(&mut TextTable) -> Result<(R, bool), DbError>,
    ) -> Result<R, DbError> {
        let mut tables = self.tables.write();
        let t = match tables.get(table) {
            Some(Ok(t)) => t,
            Some(Err(e)) => return Err(DbError::Query(e.clone())),
            None => return Err(no_table(table)),
        };
        let mut copy = t.clone();
        let (r, changed) = f(&mut copy)?;
        if changed {
            write_atomic(&self.dir.join(table), &print_table(&copy))?;
            tables.insert(table.to_owned(), Ok(copy));
        }
        Ok(r)
    }
}

impl Db for TextDb {
    fn dialect(&self) -> Dialect {
        Dialect::Text
    }

    fn select(&self, q: &Select<'_>) -> Result<Rows, DbError> {
        let tables = self.tables.read();
        let t = match tables.get(q.table) {
            Some(Ok(t)) => t,
            Some(Err(e)) => return Err(DbError::Query(e.clone())),
            None => return Err(no_table(q.table)),
        };
        let out_cols: Vec<usize> = if q.columns.is_empty() {
            (0..t.cols.len()).collect()
        } else {
            q.columns
                .iter()
                .map(|c| t.col(q.table, c))
                .collect::<Result<_, _>>()?
        };
        let matcher = t.matcher(q.table, &q.conds)?;
        let mut hits: Vec<&Vec<Value>> = t.rows.iter().filter(|r| matcher.matches(r)).collect();
        if let Some(o) = q.order_by {
            let i = t.col(q.table, o)?;
            hits.sort_by(|a, b| order(&a[i], &b[i]));
        }
        if let Some(l) = q.limit {
            hits.truncate(usize::try_from(l).unwrap_or(usize::MAX));
        }
        Ok(Rows {
            columns: out_cols.iter().map(|&i| t.cols[i].name.clone()).collect(),
            rows: hits
                .into_iter()
                .map(|r| out_cols.iter().map(|&i| r[i].clone()).collect())
                .collect(),
        })
    }

    fn insert(&self, table: &str, cols: &[&str], vals: &[Value]) -> Result<u64, DbError> {
        check_len(cols, vals)?;
        self.modify(table, |t| {
            let id = t.insert_row(table, cols, vals)?;
            Ok((id, true))
        })
    }

    fn update(
        &self,
        table: &str,
        conds: &[Cond<'_>],
        cols: &[&str],
        vals: &[Value],
    ) -> Result<u64, DbError> {
        check_len(cols, vals)?;
        self.modify(table, |t| {
            let sets = t.assignments(table, cols, vals)?;
            let matcher = t.matcher(table, conds)?;
            let mut n = 0u64;
            for r in t.rows.iter_mut().filter(|r| matcher.matches(r)) {
                for (i, v) in &sets {
                    r[*i] = v.clone();
                }
                n += 1;
            }
            Ok((n, n > 0))
        })
    }

    fn delete(&self, table: &str, conds: &[Cond<'_>]) -> Result<u64, DbError> {
        self.modify(table, |t| {
            let matcher = t.matcher(table, conds)?;
            let before = t.rows.len();
            t.rows.retain(|r| !matcher.matches(r));
            let n = (before - t.rows.len()) as u64;
            Ok((n, n > 0))
        })
    }

    fn replace(
        &self,
        table: &str,
        cols: &[&str],
        vals: &[Value],
        key_cols: &[&str],
    ) -> Result<(), DbError> {
        check_len(cols, vals)?;
        self.modify(table, |t| {
            let sets = t.assignments(table, cols, vals)?;
            let mut key = Vec::with_capacity(key_cols.len());
            for k in key_cols {
                let i = t.col(table, k)?;
                let Some((_, v)) = sets.iter().find(|(c, _)| *c == i) else {
                    return Err(DbError::Query(format!(
                        "replace on {table}: key column {k:?} has no value"
                    )));
                };
                key.push((i, v.clone()));
            }
            let same = |r: &Vec<Value>| key.iter().all(|(i, v)| r[*i] == *v);
            match t.rows.iter().position(same) {
                Some(first) => {
                    for (i, v) in &sets {
                        t.rows[first][*i] = v.clone();
                    }
                    let mut n = 0usize;
                    t.rows.retain(|r| {
                        n += 1;
                        n - 1 == first || !same(r)
                    });
                }
                None => {
                    t.insert_row(table, cols, vals)?;
                }
            }
            Ok(((), true))
        })
    }

    fn raw(&self, _sql: &str) -> Result<Rows, DbError> {
        Err(DbError::Unsupported {
            driver: "text",
            what: "raw SQL queries",
        })
    }
}

fn no_table(table: &str) -> DbError {
    DbError::Query(format!("db_text: no table {table:?}"))
}

fn check_len(cols: &[&str], vals: &[Value]) -> Result<(), DbError> {
    if cols.len() == vals.len() {
        Ok(())
    } else {
        Err(DbError::Query(format!(
            "{} columns but {} values",
            cols.len(),
            vals.len()
        )))
    }
}

impl TextTable {
    fn col(&self, table: &str, name: &str) -> Result<usize, DbError> {
        self.cols
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                DbError::Query(format!("db_text: table {table:?} has no column {name:?}"))
            })
    }

    /// Column indexes with the values converted to their types.
    fn assignments(
        &self,
        table: &str,
        cols: &[&str],
        vals: &[Value],
    ) -> Result<Vec<(usize, Value)>, DbError> {
        cols.iter()
            .zip(vals)
            .map(|(c, v)| {
                let i = self.col(table, c)?;
                let col = &self.cols[i];
                let v = convert(col, v)?;
                if v.is_null() && !col.null && !col.auto {
                    return Err(DbError::Query(format!(
                        "db_text: column {table}.{} cannot be NULL",
                        col.name
                    )));
                }
                Ok((i, v))
            })
            .collect()
    }

    /// Appends a row; returns the auto id given (0 without an auto column).
    fn insert_row(&mut self, table: &str, cols: &[&str], vals: &[Value]) -> Result<u64, DbError> {
        let sets = self.assignments(table, cols, vals)?;
        let mut row: Vec<Value> = self.cols.iter().map(zero).collect();
        for (i, v) in sets {
            row[i] = v;
        }
        let mut id = 0u64;
        if let Some(a) = self.cols.iter().position(|c| c.auto) {
            let v = match row[a].as_int() {
                Some(v) => v,
                None => self.auto_val + 1,
            };
            self.auto_val = self.auto_val.max(v);
            row[a] = Value::Int(v);
            id = u64::try_from(v).unwrap_or(0);
        }
        self.rows.push(row);
        Ok(id)
    }

    fn matcher(&self, table: &str, conds: &[Cond<'_>]) -> Result<Matcher, DbError> {
        let mut m = Vec::with_capacity(conds.len());
        for c in conds {
            let i = self.col(table, c.col)?;
            // A value that does not convert to the column's type compares as given.
            let v = convert(&self.cols[i], &c.val).unwrap_or_else(|_| c.val.clone());
            m.push((i, c.op, v));
        }
        Ok(Matcher(m))
    }
}

/// The value of a column left out of an insert: NULL where allowed, else the type's zero
/// (db_text has no defaults).
fn zero(c: &TextCol) -> Value {
    if c.null || c.auto {
        return Value::Null;
    }
    match c.kind {
        Kind::Int | Kind::Long => Value::Int(0),
        Kind::Double => Value::Double(0.0),
        Kind::Str | Kind::String => Value::Str(String::new()),
        Kind::Blob => Value::Blob(Vec::new()),
        Kind::Time => Value::DateTime(0),
    }
}

/// Converts a value to what the column stores.
fn convert(c: &TextCol, v: &Value) -> Result<Value, DbError> {
    let bad = || {
        DbError::Query(format!(
            "db_text: value {v:?} does not fit column {} ({})",
            c.name,
            c.kind.word()
        ))
    };
    Ok(match (c.kind, v) {
        (_, Value::Null) => Value::Null,
        (Kind::Int | Kind::Long, Value::Int(i) | Value::DateTime(i)) => Value::Int(*i),
        (Kind::Int | Kind::Long, Value::Double(d)) => Value::Int(*d as i64),
        (Kind::Int | Kind::Long, Value::Str(s)) => Value::Int(s.trim().parse().map_err(|_| bad())?),
        (Kind::Time, Value::Int(i) | Value::DateTime(i)) => Value::DateTime(*i),
        (Kind::Time, Value::Double(d)) => Value::DateTime(*d as i64),
        (Kind::Time, Value::Str(s)) => Value::DateTime(
            s.trim()
                .parse()
                .ok()
                .or_else(|| crate::sql::parse_datetime(s))
                .ok_or_else(bad)?,
        ),
        (Kind::Double, Value::Int(i) | Value::DateTime(i)) => Value::Double(*i as f64),
        (Kind::Double, Value::Double(d)) => Value::Double(*d),
        (Kind::Double, Value::Str(s)) => Value::Double(s.trim().parse().map_err(|_| bad())?),
        (Kind::Str | Kind::String, Value::Str(s)) => Value::Str(s.clone()),
        (Kind::Str | Kind::String, Value::Int(i) | Value::DateTime(i)) => Value::Str(i.to_string()),
        (Kind::Str | Kind::String, Value::Double(d)) => Value::Str(d.to_string()),
        (Kind::Str | Kind::String, Value::Blob(b)) => {
            Value::Str(String::from_utf8_lossy(b).into_owned())
        }
        (Kind::Blob, Value::Blob(b)) => Value::Blob(b.clone()),
        (Kind::Blob, Value::Str(s)) => Value::Blob(s.as_bytes().to_vec()),
        (Kind::Blob, Value::Int(i) | Value::DateTime(i)) => Value::Blob(i.to_string().into_bytes()),
        (Kind::Blob, Value::Double(d)) => Value::Blob(d.to_string().into_bytes()),
        (_, Value::Blob(_)) => return Err(bad()),
    })
}

/// AND-ed conditions as (column index, operator, converted value).
struct Matcher(Vec<(usize, Op, Value)>);

impl Matcher {
    fn matches(&self, row: &[Value]) -> bool {
        self.0.iter().all(|(i, op, v)| test(&row[*i], *op, v))
    }
}

/// One condition on a stored value, with SQL's NULL rules (a NULL never compares, except
/// `= NULL` / `!= NULL`, which mean IS NULL / IS NOT NULL as in OpenSIPS's API).
fn test(stored: &Value, op: Op, v: &Value) -> bool {
    match (op, v) {
        (Op::Eq, Value::Null) => return stored.is_null(),
        (Op::Ne, Value::Null) => return !stored.is_null(),
        _ => {}
    }
    if stored.is_null() || v.is_null() {
        return false;
    }
    match op {
        Op::Like => like(&text_of(stored), &text_of(v)),
        Op::BitAnd => match (stored.as_int(), v.as_int()) {
            (Some(a), Some(b)) => a & b != 0,
            _ => false,
        },
        _ => {
            let Some(ord) = compare(stored, v) else {
                return false;
            };
            match op {
                Op::Eq => ord == Ordering::Equal,
                Op::Ne => ord != Ordering::Equal,
                Op::Lt => ord == Ordering::Less,
                Op::Gt => ord == Ordering::Greater,
                Op::Le => ord != Ordering::Greater,
                Op::Ge => ord != Ordering::Less,
                Op::Like | Op::BitAnd => false,
            }
        }
    }
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) | Value::DateTime(i) => Some(*i as f64),
        Value::Double(d) => Some(*d),
        _ => None,
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x) | Value::DateTime(x), Value::Int(y) | Value::DateTime(y)) => Some(x.cmp(y)),
        (Value::Str(x), Value::Str(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::Blob(x), Value::Blob(y)) => Some(x.cmp(y)),
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            _ => Some(text_of(a).as_bytes().cmp(text_of(b).as_bytes())),
        },
    }
}

/// ORDER BY: NULLs first, then ascending.
fn order(a: &Value, b: &Value) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => compare(a, b).unwrap_or(Ordering::Equal),
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Int(i) | Value::DateTime(i) => i.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Str(s) => s.clone(),
        Value::Blob(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// SQL LIKE: `%` any run, `_` one character, ASCII case-insensitive (as SQLite and MySQL's
/// default collations).
fn like(s: &str, pat: &str) -> bool {
    let s: Vec<char> = s.chars().map(|c| c.to_ascii_lowercase()).collect();
    let p: Vec<char> = pat.chars().map(|c| c.to_ascii_lowercase()).collect();
    // Iterative wildcard match with backtracking to the last `%`.
    let (mut si, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some('%') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == '_' || c == s[si] => {
                si += 1;
                pi += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '%')
}

// ---- the file format ----

/// Parses a whole table file.
fn parse_table(data: &[u8]) -> Result<TextTable, String> {
    let mut lines = data.split(|&b| b == b'\n');
    let header = lines.next().unwrap_or_default();
    let cols = parse_header(header)?;
    let mut t = TextTable {
        cols,
        rows: Vec::new(),
        auto_val: 0,
    };
    for (n, line) in lines.enumerate() {
        if line.is_empty() {
            continue;
        }
        let row = parse_row(&t.cols, line).map_err(|e| format!("line {}: {e}", n + 2))?;
        t.rows.push(row);
    }
    // Rows with no auto id get the next ones, after the highest present.
    if let Some(a) = t.cols.iter().position(|c| c.auto) {
        t.auto_val = t
            .rows
            .iter()
            .filter_map(|r| r[a].as_int())
            .max()
            .unwrap_or(0);
        for r in &mut t.rows {
            if r[a].is_null() {
                t.auto_val += 1;
                r[a] = Value::Int(t.auto_val);
            }
        }
    }
    Ok(t)
}

/// `name(type[,flag]) name(type[,flag]) ...`.
fn parse_header(line: &[u8]) -> Result<Vec<TextCol>, String> {
    let line = std::str::from_utf8(line).map_err(|_| "header is not UTF-8".to_owned())?;
    let mut cols: Vec<TextCol> = Vec::new();
    let mut rest = line.trim_start_matches(' ');
    while !rest.is_empty() {
        let open = rest
            .find('(')
            .ok_or_else(|| format!("column definition without '(': {rest:?}"))?;
        let name = rest[..open].trim_end_matches(' ');
        if name.is_empty() || name.contains(' ') || name.contains(')') {
            return Err(format!("bad column name in {rest:?}"));
        }
        let close = rest[open..]
            .find(')')
            .map(|i| open + i)
            .ok_or_else(|| format!("column {name}: missing ')'"))?;
        let inner = &rest[open + 1..close];
        let (ty, flag) = match inner.split_once(',') {
            Some((t, f)) => (t.trim(), Some(f.trim())),
            None => (inner.trim(), None),
        };
        let kind = match ty.bytes().next().map(|b| b.to_ascii_lowercase()) {
            Some(b's') if ty.contains(['i', 'I']) => Kind::String,
            Some(b's') => Kind::Str,
            Some(b'i') => Kind::Int,
            Some(b'l') => Kind::Long,
            Some(b'd') => Kind::Double,
            Some(b'b') => Kind::Blob,
            Some(b't') => Kind::Time,
            _ => return Err(format!("column {name}: unknown type {ty:?}")),
        };
        let (mut null, mut auto) = (false, false);
        match flag
            .and_then(|f| f.bytes().next())
            .map(|b| b.to_ascii_lowercase())
        {
            None => {}
            Some(b'n') => null = true,
            Some(b'a') if kind.is_integer() && !cols.iter().any(|c| c.auto) => auto = true,
            Some(_) => return Err(format!("column {name}: bad flag {:?}", flag.unwrap_or(""))),
        }
        cols.push(TextCol {
            name: name.to_owned(),
            kind,
            null,
            auto,
        });
        rest = rest[close + 1..].trim_start_matches(' ');
    }
    if cols.is_empty() {
        return Err("no column definitions on the first line".into());
    }
    Ok(cols)
}

/// One row: exactly one field per column.
fn parse_row(cols: &[TextCol], line: &[u8]) -> Result<Vec<Value>, String> {
    let fields = split_fields(line)?;
    if fields.len() != cols.len() {
        return Err(format!(
            "{} fields for {} columns",
            fields.len(),
            cols.len()
        ));
    }
    cols.iter()
        .zip(fields)
        .map(|(c, f)| parse_field(c, f))
        .collect()
}

/// A raw field: its unescaped bytes, and whether it held an escape (so it is not a number).
struct Field {
    bytes: Vec<u8>,
    escaped: bool,
}

fn split_fields(line: &[u8]) -> Result<Vec<Field>, String> {
    let mut out = Vec::new();
    let mut cur = Field {
        bytes: Vec::new(),
        escaped: false,
    };
    let mut it = line.iter();
    while let Some(&b) = it.next() {
        match b {
            b':' => out.push(std::mem::replace(
                &mut cur,
                Field {
                    bytes: Vec::new(),
                    escaped: false,
                },
            )),
            b'\\' => {
                let e = match it.next() {
                    Some(b'n') => b'\n',
                    Some(b'r') => b'\r',
                    Some(b't') => b'\t',
                    Some(b'\\') => b'\\',
                    Some(b':') => b':',
                    Some(b'0') => 0,
                    Some(&o) => return Err(format!("bad escape \\{}", char::from(o))),
                    None => return Err("'\\' at the end of the line".into()),
                };
                cur.bytes.push(e);
                cur.escaped = true;
            }
            _ => cur.bytes.push(b),
        }
    }
    out.push(cur);
    Ok(out)
}

fn parse_field(c: &TextCol, f: Field) -> Result<Value, String> {
    let empty = f.bytes.is_empty();
    let bad = || {
        format!(
            "column {}: {:?} is not a {}",
            c.name,
            String::from_utf8_lossy(&f.bytes),
            c.kind.word()
        )
    };
    if empty {
        return match c.kind {
            _ if c.null || c.auto => Ok(Value::Null),
            Kind::Str | Kind::String => Ok(Value::Str(String::new())),
            Kind::Blob => Ok(Value::Blob(Vec::new())),
            _ => Err(format!("column {}: NULL in a NOT NULL column", c.name)),
        };
    }
    match c.kind {
        Kind::Int | Kind::Long | Kind::Time => {
            let s = std::str::from_utf8(&f.bytes).map_err(|_| bad())?;
            let digits = s.strip_prefix('-').unwrap_or(s);
            if f.escaped || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let i: i64 = s.parse().map_err(|_| bad())?;
            Ok(if c.kind == Kind::Time {
                Value::DateTime(i)
            } else {
                Value::Int(i)
            })
        }
        Kind::Double => {
            let s = std::str::from_utf8(&f.bytes).map_err(|_| bad())?;
            let body = s.strip_prefix('-').unwrap_or(s);
            let (ip, fp) = body.split_once('.').unwrap_or((body, ""));
            let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
            if f.escaped || ip.is_empty() || !digits(ip) || !digits(fp) {
                return Err(bad());
            }
            Ok(Value::Double(s.parse().map_err(|_| bad())?))
        }
        Kind::Str | Kind::String => {
            Ok(Value::Str(String::from_utf8(f.bytes).unwrap_or_else(|e| {
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            })))
        }
        Kind::Blob => Ok(Value::Blob(f.bytes)),
    }
}

/// The whole file: header, then one line per row.
fn print_table(t: &TextTable) -> Vec<u8> {
    let mut s = String::new();
    for (i, c) in t.cols.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let flag = if c.null {
            ",null"
        } else if c.auto {
            ",auto"
        } else {
            ""
        };
        let _ = write!(s, "{}({}{flag})", c.name, c.kind.word());
    }
    s.push('\n');
    let mut out = s.into_bytes();
    for r in &t.rows {
        for (i, v) in r.iter().enumerate() {
            if i > 0 {
                out.push(b':');
            }
            print_value(&mut out, v);
        }
        out.push(b'\n');
    }
    out
}

fn print_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => {}
        Value::Int(i) | Value::DateTime(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Double(d) => out.extend_from_slice(format!("{d:.2}").as_bytes()),
        Value::Str(s) => escape(out, s.as_bytes()),
        Value::Blob(b) => escape(out, b),
    }
}

fn escape(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b':' => out.extend_from_slice(b"\\:"),
            0 => out.extend_from_slice(b"\\0"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_grammar() {
        let c = parse_header(b"id(int,auto) name(str) flag(double) desc(str,null) s2(string) l(long) t(time) b(blob,null) ").unwrap();
        let kinds: Vec<_> = c.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Int,
                Kind::Str,
                Kind::Double,
                Kind::Str,
                Kind::String,
                Kind::Long,
                Kind::Time,
                Kind::Blob
            ]
        );
        assert!(c[0].auto && !c[0].null);
        assert!(c[3].null && !c[3].auto);
        assert!(parse_header(b"").is_err());
        assert!(parse_header(b"a(str,auto)").is_err(), "auto on a string");
        assert!(
            parse_header(b"a(int,auto) b(int,auto)").is_err(),
            "two autos"
        );
        assert!(parse_header(b"a(x)").is_err());
        assert!(parse_header(b"a(int").is_err());
    }

    #[test]
    fn like_patterns() {
        assert!(like("alice", "al%"));
        assert!(like("Alice", "al%"));
        assert!(like("alice", "%ic%"));
        assert!(like("alice", "a_ice"));
        assert!(!like("alice", "a_ce"));
        assert!(like("", "%"));
        assert!(!like("bob", "al%"));
        assert!(like("a%b", "a%b"));
        assert!(like("thread1-7", "thread1-%"));
    }

    #[test]
    fn field_escapes_round_trip() {
        let col = TextCol {
            name: "s".into(),
            kind: Kind::String,
            null: true,
            auto: false,
        };
        let nasty = "a:b\\c\nd\re\tf\0g";
        let mut out = Vec::new();
        print_value(&mut out, &Value::Str(nasty.into()));
        assert_eq!(out, b"a\\:b\\\\c\\nd\\re\\tf\\0g");
        let f = split_fields(&out).unwrap();
        assert_eq!(f.len(), 1);
        let v = parse_field(&col, f.into_iter().next().unwrap()).unwrap();
        assert_eq!(v, Value::Str(nasty.into()));
        assert!(split_fields(b"a\\x").is_err());
        assert!(split_fields(b"a\\").is_err());
    }

    #[test]
    fn numbers_are_strict() {
        let int = TextCol {
            name: "i".into(),
            kind: Kind::Int,
            null: false,
            auto: false,
        };
        let f = |s: &[u8]| Field {
            bytes: s.to_vec(),
            escaped: false,
        };
        assert_eq!(parse_field(&int, f(b"-42")).unwrap(), Value::Int(-42));
        assert!(parse_field(&int, f(b"+1")).is_err());
        assert!(parse_field(&int, f(b"1x")).is_err());
        assert!(parse_field(&int, f(b"")).is_err(), "NULL in NOT NULL int");
        let dbl = TextCol {
            kind: Kind::Double,
            ..int
        };
        assert_eq!(
            parse_field(&dbl, f(b"-3.75")).unwrap(),
            Value::Double(-3.75)
        );
        assert_eq!(parse_field(&dbl, f(b"2")).unwrap(), Value::Double(2.0));
        assert!(parse_field(&dbl, f(b".5")).is_err());
    }
}
