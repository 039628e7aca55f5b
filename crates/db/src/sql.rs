//! The SQL statement builder shared by the sqlite, postgres and mysql drivers: statement text
//! per [`Dialect`] with bound parameters (`?` for sqlite and mysql, `$n` for postgres),
//! quoted identifiers, and the date helpers that turn [`Value::DateTime`] into OpenSIPS's
//! `YYYY-MM-DD HH:MM:SS` text (UTC) and back.
//!
//! Values are never written into the text: every value is a parameter, except a NULL compared
//! with `=`/`!=`, which becomes `IS NULL`/`IS NOT NULL`, and the row limit, a number.

use std::fmt::Write as _;

use crate::{Cond, Dialect, Op, Select, Value};

/// A statement: its text and the values to bind, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt<'a> {
    /// Statement text.
    pub sql: String,
    /// Parameters, in placeholder order.
    pub params: Vec<&'a Value>,
}

/// `SELECT cols FROM table [WHERE ...] [ORDER BY col] [LIMIT n]`.
pub fn select<'a>(d: Dialect, q: &'a Select<'a>) -> Stmt<'a> {
    let mut b = Builder::new(d);
    b.sql.push_str("SELECT ");
    if q.columns.is_empty() {
        b.sql.push('*');
    } else {
        b.idents(q.columns);
    }
    b.sql.push_str(" FROM ");
    b.ident(q.table);
    b.wheres(&q.conds);
    if let Some(col) = q.order_by {
        b.sql.push_str(" ORDER BY ");
        b.ident(col);
    }
    if let Some(n) = q.limit {
        let _ = write!(b.sql, " LIMIT {n}");
    }
    b.done()
}

/// `INSERT INTO table (cols) VALUES (...)`.
pub fn insert<'a>(d: Dialect, table: &str, cols: &[&str], vals: &'a [Value]) -> Stmt<'a> {
    let mut b = Builder::new(d);
    b.insert_into("INSERT INTO ", table, cols, vals);
    b.done()
}

/// `UPDATE table SET col = ?, ... [WHERE ...]`.
pub fn update<'a>(
    d: Dialect,
    table: &str,
    conds: &'a [Cond<'a>],
    cols: &[&str],
    vals: &'a [Value],
) -> Stmt<'a> {
    let mut b = Builder::new(d);
    b.sql.push_str("UPDATE ");
    b.ident(table);
    b.sql.push_str(" SET ");
    for (i, (c, v)) in cols.iter().zip(vals).enumerate() {
        if i > 0 {
            b.sql.push_str(", ");
        }
        b.ident(c);
        b.sql.push_str(" = ");
        b.param(v);
    }
    b.wheres(conds);
    b.done()
}

/// `DELETE FROM table [WHERE ...]` (no conditions: every row).
pub fn delete<'a>(d: Dialect, table: &str, conds: &'a [Cond<'a>]) -> Stmt<'a> {
    let mut b = Builder::new(d);
    b.sql.push_str("DELETE FROM ");
    b.ident(table);
    b.wheres(conds);
    b.done()
}

/// Insert-or-replace by unique key: sqlite `INSERT OR REPLACE`, mysql `REPLACE INTO`, postgres
/// `INSERT ... ON CONFLICT (key_cols) DO UPDATE SET` the other columns (`DO NOTHING` when every
/// column is a key column; a plain `INSERT` when `key_cols` is empty, as postgres needs the
/// conflict target).
pub fn replace<'a>(
    d: Dialect,
    table: &str,
    cols: &[&str],
    vals: &'a [Value],
    key_cols: &[&str],
) -> Stmt<'a> {
    let mut b = Builder::new(d);
    match d {
        Dialect::Sqlite | Dialect::Text => {
            b.insert_into("INSERT OR REPLACE INTO ", table, cols, vals)
        }
        Dialect::Mysql => b.insert_into("REPLACE INTO ", table, cols, vals),
        Dialect::Postgres => {
            b.insert_into("INSERT INTO ", table, cols, vals);
            if !key_cols.is_empty() {
                b.sql.push_str(" ON CONFLICT (");
                b.idents(key_cols);
                b.sql.push_str(") DO ");
                let rest: Vec<&str> = cols
                    .iter()
                    .copied()
                    .filter(|c| !key_cols.iter().any(|k| k.eq_ignore_ascii_case(c)))
                    .collect();
                if rest.is_empty() {
                    b.sql.push_str("NOTHING");
                } else {
                    b.sql.push_str("UPDATE SET ");
                    for (i, c) in rest.iter().enumerate() {
                        if i > 0 {
                            b.sql.push_str(", ");
                        }
                        b.ident(c);
                        b.sql.push_str(" = EXCLUDED.");
                        b.ident(c);
                    }
                }
            }
        }
    }
    b.done()
}

/// Appends `name` quoted for `d`: `"name"` (sqlite, postgres) or `` `name` `` (mysql), with the
/// quote character doubled inside.
pub fn quote_ident(d: Dialect, name: &str, out: &mut String) {
    let q = if d == Dialect::Mysql { '`' } else { '"' };
    out.push(q);
    for ch in name.chars() {
        if ch == q {
            out.push(q);
        }
        out.push(ch);
    }
    out.push(q);
}

/// Seconds since the epoch as OpenSIPS's `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn format_datetime(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `YYYY-MM-DD HH:MM:SS` (also `T` for the space, a fraction, or a date alone) read as UTC, to
/// seconds since the epoch; `None` when it is not a date.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], s[i + 1..].trim()),
        None => (s, ""),
    };
    let mut dp = date.splitn(3, '-');
    let y: i64 = dp.next()?.parse().ok()?;
    let m: u32 = dp.next()?.parse().ok()?;
    let d: u32 = dp.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = 0i64;
    if !time.is_empty() {
        let time = time.split(['.', '+', 'Z']).next()?;
        let mut tp = time.splitn(3, ':');
        let h: i64 = tp.next()?.parse().ok()?;
        let mi: i64 = tp.next()?.parse().ok()?;
        let se: i64 = tp.next().map_or(Some(0), |x| x.parse().ok())?;
        if h > 23 || mi > 59 || se > 60 {
            return None;
        }
        secs = h * 3600 + mi * 60 + se;
    }
    Some(days_from_civil(y, m, d) * 86_400 + secs)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01: (year, month 1–12, day 1–31).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

struct Builder<'a> {
    d: Dialect,
    sql: String,
    params: Vec<&'a Value>,
}

impl<'a> Builder<'a> {
    fn new(d: Dialect) -> Self {
        Self {
            d,
            sql: String::with_capacity(128),
            params: Vec::new(),
        }
    }

    fn done(self) -> Stmt<'a> {
        Stmt {
            sql: self.sql,
            params: self.params,
        }
    }

    fn ident(&mut self, name: &str) {
        quote_ident(self.d, name, &mut self.sql);
    }

    fn idents(&mut self, names: &[&str]) {
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.ident(n);
        }
    }

    fn param(&mut self, v: &'a Value) {
        self.params.push(v);
        if self.d == Dialect::Postgres {
            let _ = write!(self.sql, "${}", self.params.len());
        } else {
            self.sql.push('?');
        }
    }

    fn insert_into(&mut self, verb: &str, table: &str, cols: &[&str], vals: &'a [Value]) {
        self.sql.push_str(verb);
        self.ident(table);
        self.sql.push_str(" (");
        self.idents(cols);
        self.sql.push_str(") VALUES (");
        for (i, v) in vals.iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.param(v);
        }
        self.sql.push(')');
    }

    fn wheres(&mut self, conds: &'a [Cond<'a>]) {
        for (i, c) in conds.iter().enumerate() {
            self.sql.push_str(if i == 0 { " WHERE " } else { " AND " });
            match (c.op, &c.val) {
                (Op::Eq, Value::Null) => {
                    self.ident(c.col);
                    self.sql.push_str(" IS NULL");
                }
                (Op::Ne, Value::Null) => {
                    self.ident(c.col);
                    self.sql.push_str(" IS NOT NULL");
                }
                (Op::BitAnd, v) => {
                    self.sql.push('(');
                    self.ident(c.col);
                    self.sql.push_str(" & ");
                    self.param(v);
                    self.sql.push_str(") != 0");
                }
                (op, v) => {
                    self.ident(c.col);
                    self.sql.push_str(match op {
                        Op::Eq => " = ",
                        Op::Ne => " != ",
                        Op::Lt => " < ",
                        Op::Gt => " > ",
                        Op::Le => " <= ",
                        Op::Ge => " >= ",
                        Op::Like => " LIKE ",
                        Op::BitAnd => " & ",
                    });
                    self.param(v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conds() -> Vec<Cond<'static>> {
        vec![
            Cond::eq("username", "alice"),
            Cond {
                col: "domain",
                op: Op::Eq,
                val: Value::Null,
            },
            Cond {
                col: "expires",
                op: Op::Gt,
                val: Value::Int(10),
            },
            Cond {
                col: "flags",
                op: Op::BitAnd,
                val: Value::Int(4),
            },
            Cond {
                col: "contact",
                op: Op::Like,
                val: "sip:%".into(),
            },
            Cond {
                col: "received",
                op: Op::Ne,
                val: Value::Null,
            },
        ]
    }

    #[test]
    fn select_per_dialect() {
        let q = Select {
            table: "location",
            columns: &["contact", "expires"],
            conds: conds(),
            order_by: Some("expires"),
            limit: Some(5),
        };
        let s = select(Dialect::Sqlite, &q);
        assert_eq!(
            s.sql,
            "SELECT \"contact\", \"expires\" FROM \"location\" WHERE \"username\" = ? AND \
             \"domain\" IS NULL AND \"expires\" > ? AND (\"flags\" & ?) != 0 AND \"contact\" \
             LIKE ? AND \"received\" IS NOT NULL ORDER BY \"expires\" LIMIT 5"
        );
        assert_eq!(
            s.params,
            vec![
                &Value::from("alice"),
                &Value::Int(10),
                &Value::Int(4),
                &Value::from("sip:%")
            ]
        );
        let p = select(Dialect::Postgres, &q);
        assert_eq!(
            p.sql,
            "SELECT \"contact\", \"expires\" FROM \"location\" WHERE \"username\" = $1 AND \
             \"domain\" IS NULL AND \"expires\" > $2 AND (\"flags\" & $3) != 0 AND \"contact\" \
             LIKE $4 AND \"received\" IS NOT NULL ORDER BY \"expires\" LIMIT 5"
        );
        let m = select(Dialect::Mysql, &q);
        assert_eq!(
            m.sql,
            "SELECT `contact`, `expires` FROM `location` WHERE `username` = ? AND `domain` IS \
             NULL AND `expires` > ? AND (`flags` & ?) != 0 AND `contact` LIKE ? AND `received` \
             IS NOT NULL ORDER BY `expires` LIMIT 5"
        );
        let all = Select {
            table: "version",
            ..Select::default()
        };
        assert_eq!(select(Dialect::Mysql, &all).sql, "SELECT * FROM `version`");
        let ops = [
            (Op::Ne, " != "),
            (Op::Lt, " < "),
            (Op::Le, " <= "),
            (Op::Ge, " >= "),
            (Op::Eq, " = "),
        ];
        for (op, text) in ops {
            let q = Select {
                table: "t",
                conds: vec![Cond {
                    col: "a",
                    op,
                    val: Value::Int(1),
                }],
                ..Select::default()
            };
            assert_eq!(
                select(Dialect::Postgres, &q).sql,
                format!("SELECT * FROM \"t\" WHERE \"a\"{text}$1")
            );
        }
    }

    #[test]
    fn writes_per_dialect() {
        let vals = [Value::from("alice"), Value::Int(3600), Value::Null];
        let cols = ["username", "expires", "received"];
        assert_eq!(
            insert(Dialect::Postgres, "location", &cols, &vals).sql,
            "INSERT INTO \"location\" (\"username\", \"expires\", \"received\") VALUES ($1, $2, $3)"
        );
        let i = insert(Dialect::Mysql, "location", &cols, &vals);
        assert_eq!(
            i.sql,
            "INSERT INTO `location` (`username`, `expires`, `received`) VALUES (?, ?, ?)"
        );
        assert_eq!(i.params.len(), 3);
        let c = [Cond::eq("id", 7i64)];
        let u = update(Dialect::Postgres, "location", &c, &cols[1..], &vals[1..]);
        assert_eq!(
            u.sql,
            "UPDATE \"location\" SET \"expires\" = $1, \"received\" = $2 WHERE \"id\" = $3"
        );
        assert_eq!(
            u.params,
            vec![&Value::Int(3600), &Value::Null, &Value::Int(7)]
        );
        assert_eq!(
            delete(Dialect::Sqlite, "location", &c).sql,
            "DELETE FROM \"location\" WHERE \"id\" = ?"
        );
        assert_eq!(
            delete(Dialect::Mysql, "location", &[]).sql,
            "DELETE FROM `location`"
        );
    }

    #[test]
    fn replace_per_dialect() {
        let vals = [Value::from("alice"), Value::from("d"), Value::Int(1)];
        let cols = ["username", "domain", "expires"];
        let key = ["username", "domain"];
        assert_eq!(
            replace(Dialect::Sqlite, "t", &cols, &vals, &key).sql,
            "INSERT OR REPLACE INTO \"t\" (\"username\", \"domain\", \"expires\") VALUES (?, ?, ?)"
        );
        assert_eq!(
            replace(Dialect::Mysql, "t", &cols, &vals, &key).sql,
            "REPLACE INTO `t` (`username`, `domain`, `expires`) VALUES (?, ?, ?)"
        );
        assert_eq!(
            replace(Dialect::Postgres, "t", &cols, &vals, &key).sql,
            "INSERT INTO \"t\" (\"username\", \"domain\", \"expires\") VALUES ($1, $2, $3) ON \
             CONFLICT (\"username\", \"domain\") DO UPDATE SET \"expires\" = EXCLUDED.\"expires\""
        );
        assert_eq!(
            replace(Dialect::Postgres, "t", &cols[..2], &vals[..2], &key).sql,
            "INSERT INTO \"t\" (\"username\", \"domain\") VALUES ($1, $2) ON CONFLICT \
             (\"username\", \"domain\") DO NOTHING"
        );
    }

    #[test]
    fn quoting() {
        let mut s = String::new();
        quote_ident(Dialect::Postgres, "we\"ird", &mut s);
        assert_eq!(s, "\"we\"\"ird\"");
        s.clear();
        quote_ident(Dialect::Mysql, "we`ird", &mut s);
        assert_eq!(s, "`we``ird`");
    }

    #[test]
    fn dates() {
        assert_eq!(format_datetime(0), "1970-01-01 00:00:00");
        assert_eq!(format_datetime(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(format_datetime(2_147_483_647), "2038-01-19 03:14:07");
        assert_eq!(format_datetime(-1), "1969-12-31 23:59:59");
        assert_eq!(format_datetime(253_402_300_799), "9999-12-31 23:59:59");
        for secs in [
            0,
            1,
            86_399,
            951_782_400,
            1_700_000_000,
            -86_400 * 400,
            4_102_444_800,
        ] {
            assert_eq!(parse_datetime(&format_datetime(secs)), Some(secs));
        }
        assert_eq!(
            parse_datetime("2038-01-19T03:14:07.5+00"),
            Some(2_147_483_647)
        );
        assert_eq!(parse_datetime("2000-02-29"), Some(951_782_400));
        assert_eq!(parse_datetime("1900-01-01 00:00:00"), Some(-2_208_988_800));
        assert_eq!(parse_datetime("2000-13-01 00:00:00"), None);
        assert_eq!(parse_datetime("hello"), None);
        for z in [-800_000, -1, 0, 1, 59, 60, 365, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }
}
