//! The API conformance suite: one function run against every SQL driver (sqlite on a temp
//! file, PostgreSQL and MariaDB started by the test).

use sipox_db::sql::parse_datetime;
use sipox_db::{Cond, Db, DbError, Dialect, Op, Select, Value, check_table_version, table_version};

const T: &str = "t_api";
const ALL: &[&str] = &[
    "username",
    "domain",
    "expires",
    "q",
    "flags",
    "received",
    "last_modified",
    "blob_col",
    "small",
    "big",
];

/// Runs every check of the `Db` API against `db` (tables `t_api` and `version` are dropped
/// and created).
pub(crate) fn conformance(db: &dyn Db) {
    create_tables(db);
    inserts(db);
    operators(db);
    order_limit_columns(db);
    nulls_and_types(db);
    update_delete(db);
    replace(db);
    versions(db);
    raw_and_errors(db);
}

fn create_tables(db: &dyn Db) {
    let (id, text, real, dt, blob, small, big) = match db.dialect() {
        Dialect::Sqlite => (
            "id INTEGER PRIMARY KEY AUTOINCREMENT",
            "TEXT",
            "REAL",
            "DATETIME",
            "BLOB",
            "INTEGER",
            "INTEGER",
        ),
        Dialect::Postgres => (
            "id SERIAL PRIMARY KEY",
            "VARCHAR(255)",
            "REAL",
            "TIMESTAMP WITHOUT TIME ZONE",
            "BYTEA",
            "SMALLINT",
            "BIGINT",
        ),
        Dialect::Mysql => (
            "id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL",
            "VARCHAR(255)",
            "FLOAT",
            "DATETIME",
            "BLOB",
            "SMALLINT",
            "BIGINT",
        ),
        Dialect::Text => unreachable!("db_text has no SQL"),
    };
    db.raw(&format!("DROP TABLE IF EXISTS {T}")).unwrap();
    db.raw("DROP TABLE IF EXISTS version").unwrap();
    db.raw(&format!(
        "CREATE TABLE {T} ({id}, username {text} NOT NULL, domain {text} NOT NULL DEFAULT '', \
         expires INTEGER NOT NULL DEFAULT 0, q {real}, flags INTEGER NOT NULL DEFAULT 0, \
         received {text}, last_modified {dt}, blob_col {blob}, small {small}, big {big}, \
         CONSTRAINT t_api_key UNIQUE (username, domain))"
    ))
    .unwrap();
    db.raw(&format!(
        "CREATE TABLE version (table_name {text} NOT NULL, table_version INTEGER DEFAULT 0 NOT \
         NULL, CONSTRAINT t_name_idx UNIQUE (table_name))"
    ))
    .unwrap();
}

fn row(user: &str, expires: i64, flags: i64, received: Option<&str>) -> Vec<Value> {
    vec![
        user.into(),
        "example.com".into(),
        Value::Int(expires),
        Value::Double(0.5),
        Value::Int(flags),
        received.map_or(Value::Null, Value::from),
        Value::DateTime(1_700_000_000 + expires),
        Value::Blob(vec![0, 1, 0xff, b'x']),
        Value::Int(7),
        Value::Int(1 << 40),
    ]
}

fn inserts(db: &dyn Db) {
    let mut last = 0;
    for (i, (u, e, f, r)) in [
        ("alice", 100, 1, Some("sip:1.2.3.4")),
        ("bob", 200, 2, None),
        ("carol", 300, 3, Some("sip:5.6.7.8")),
        ("dave", 400, 4, None),
        ("alfred", 500, 5, None),
    ]
    .into_iter()
    .enumerate()
    {
        let id = db.insert(T, ALL, &row(u, e, f, r)).unwrap();
        // Every driver reports the auto id of the table's `id` column.
        assert_eq!(id, i as u64 + 1, "{:?}: id of row {i}", db.dialect());
        assert!(id > last);
        last = id;
    }
}

/// Usernames selected by one condition, in username order.
fn users(db: &dyn Db, conds: Vec<Cond<'_>>) -> Vec<String> {
    let rows = db
        .select(&Select {
            table: T,
            columns: &["username"],
            conds,
            order_by: Some("username"),
            limit: None,
        })
        .unwrap();
    assert_eq!(rows.columns, ["username"]);
    rows.rows
        .iter()
        .map(|r| r[0].as_str().unwrap().to_owned())
        .collect()
}

fn c(col: &str, op: Op, val: impl Into<Value>) -> Cond<'_> {
    Cond {
        col,
        op,
        val: val.into(),
    }
}

fn operators(db: &dyn Db) {
    assert_eq!(users(db, vec![Cond::eq("username", "bob")]), ["bob"]);
    assert_eq!(
        users(db, vec![c("username", Op::Ne, "bob")]),
        ["alfred", "alice", "carol", "dave"]
    );
    assert_eq!(
        users(db, vec![c("expires", Op::Lt, 300i64)]),
        ["alice", "bob"]
    );
    assert_eq!(
        users(db, vec![c("expires", Op::Le, 300i64)]),
        ["alice", "bob", "carol"]
    );
    assert_eq!(
        users(db, vec![c("expires", Op::Gt, 300i64)]),
        ["alfred", "dave"]
    );
    assert_eq!(
        users(db, vec![c("expires", Op::Ge, 300i64)]),
        ["alfred", "carol", "dave"]
    );
    assert_eq!(
        users(db, vec![c("username", Op::Like, "al%")]),
        ["alfred", "alice"]
    );
    // flags & 1: 1, 3, 5.
    assert_eq!(
        users(db, vec![c("flags", Op::BitAnd, 1i64)]),
        ["alfred", "alice", "carol"]
    );
    assert_eq!(
        users(db, vec![c("received", Op::Eq, Value::Null)]),
        ["alfred", "bob", "dave"]
    );
    assert_eq!(
        users(db, vec![c("received", Op::Ne, Value::Null)]),
        ["alice", "carol"]
    );
    // Conditions are AND-ed.
    assert_eq!(
        users(
            db,
            vec![
                c("expires", Op::Gt, 100i64),
                c("received", Op::Eq, Value::Null)
            ]
        ),
        ["alfred", "bob", "dave"]
    );
    assert!(users(db, vec![Cond::eq("username", "nobody")]).is_empty());
    // A datetime compared with a datetime parameter.
    assert_eq!(
        users(
            db,
            vec![c("last_modified", Op::Lt, Value::DateTime(1_700_000_250))]
        ),
        ["alice", "bob"]
    );
}

fn order_limit_columns(db: &dyn Db) {
    let rows = db
        .select(&Select {
            table: T,
            columns: &["expires", "username"],
            conds: vec![],
            order_by: Some("expires"),
            limit: Some(2),
        })
        .unwrap();
    assert_eq!(rows.columns, ["expires", "username"]);
    assert_eq!(
        rows.rows,
        vec![
            vec![Value::Int(100), Value::from("alice")],
            vec![Value::Int(200), Value::from("bob")]
        ]
    );
    // Every column, in table order.
    let all = db
        .select(&Select {
            table: T,
            ..Select::default()
        })
        .unwrap();
    assert_eq!(all.len(), 5);
    let mut names = vec!["id"];
    names.extend_from_slice(ALL);
    assert_eq!(all.columns, names);
}

fn datetime(v: &Value) -> Option<i64> {
    match v {
        Value::DateTime(t) => Some(*t),
        // sqlite keeps OpenSIPS's text form.
        Value::Str(s) => parse_datetime(s),
        _ => None,
    }
}

fn nulls_and_types(db: &dyn Db) {
    let rows = db
        .select(&Select {
            table: T,
            columns: ALL,
            conds: vec![Cond::eq("username", "bob")],
            ..Select::default()
        })
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows.get(0, "username"), Some(&Value::from("bob")));
    assert_eq!(rows.get(0, "domain"), Some(&Value::from("example.com")));
    assert_eq!(rows.get(0, "expires"), Some(&Value::Int(200)));
    assert_eq!(rows.get(0, "q"), Some(&Value::Double(0.5)));
    assert_eq!(rows.get(0, "received"), Some(&Value::Null));
    assert_eq!(
        rows.get(0, "blob_col"),
        Some(&Value::Blob(vec![0, 1, 0xff, b'x']))
    );
    assert_eq!(rows.get(0, "small"), Some(&Value::Int(7)));
    assert_eq!(rows.get(0, "big"), Some(&Value::Int(1 << 40)));
    let dt = rows.get(0, "last_modified").unwrap();
    assert_eq!(datetime(dt), Some(1_700_000_200), "{dt:?}");
    if db.dialect() == Dialect::Sqlite {
        assert_eq!(dt, &Value::from("2023-11-14 22:16:40"));
    } else {
        assert_eq!(dt, &Value::DateTime(1_700_000_200));
    }
    // NULL written over a value, and read back.
    let n = db
        .update(
            T,
            &[Cond::eq("username", "alice")],
            &["received", "last_modified"],
            &[Value::Null, Value::Null],
        )
        .unwrap();
    assert_eq!(n, 1);
    let rows = db
        .select(&Select {
            table: T,
            columns: &["received", "last_modified"],
            conds: vec![Cond::eq("username", "alice")],
            ..Select::default()
        })
        .unwrap();
    assert_eq!(rows.rows, vec![vec![Value::Null, Value::Null]]);
}

fn update_delete(db: &dyn Db) {
    let n = db
        .update(
            T,
            &[c("expires", Op::Ge, 400i64)],
            &["expires", "flags"],
            &[Value::Int(9000), Value::Int(64)],
        )
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        users(db, vec![c("flags", Op::BitAnd, 64i64)]),
        ["alfred", "dave"]
    );
    assert_eq!(
        users(db, vec![Cond::eq("expires", 9000i64)]),
        ["alfred", "dave"]
    );
    let n = db.update(
        T,
        &[Cond::eq("username", "nobody")],
        &["expires"],
        &[Value::Int(1)],
    );
    assert_eq!(n.unwrap(), 0);
    assert_eq!(db.delete(T, &[c("username", Op::Like, "d%")]).unwrap(), 1);
    assert_eq!(db.delete(T, &[Cond::eq("username", "nobody")]).unwrap(), 0);
    assert_eq!(users(db, vec![]), ["alfred", "alice", "bob", "carol"]);
}

fn replace(db: &dyn Db) {
    let key = ["username", "domain"];
    let cols = ["username", "domain", "expires", "received"];
    // Replaces the existing (bob, example.com) row.
    db.replace(
        T,
        &cols,
        &[
            "bob".into(),
            "example.com".into(),
            Value::Int(777),
            "sip:9.9.9.9".into(),
        ],
        &key,
    )
    .unwrap();
    // Inserts a new one.
    db.replace(
        T,
        &cols,
        &[
            "erin".into(),
            "example.com".into(),
            Value::Int(888),
            Value::Null,
        ],
        &key,
    )
    .unwrap();
    // Twice: still one row.
    db.replace(
        T,
        &cols,
        &[
            "erin".into(),
            "example.com".into(),
            Value::Int(889),
            Value::Null,
        ],
        &key,
    )
    .unwrap();
    let rows = db
        .select(&Select {
            table: T,
            columns: &["username", "expires", "received"],
            conds: vec![c("expires", Op::Gt, 700i64), c("expires", Op::Lt, 1000i64)],
            order_by: Some("username"),
            limit: None,
        })
        .unwrap();
    assert_eq!(
        rows.rows,
        vec![
            vec!["bob".into(), Value::Int(777), "sip:9.9.9.9".into()],
            vec!["erin".into(), Value::Int(889), Value::Null],
        ]
    );
    assert_eq!(users(db, vec![]).len(), 5);
}

fn versions(db: &dyn Db) {
    db.insert(
        "version",
        &["table_name", "table_version"],
        &[T.into(), Value::Int(3)],
    )
    .unwrap();
    assert_eq!(table_version(db, T).unwrap(), Some(3));
    assert_eq!(table_version(db, "location").unwrap(), None);
    check_table_version(db, T, 3).unwrap();
    match check_table_version(db, T, 4) {
        Err(DbError::Version {
            table,
            found: Some(3),
            expected: 4,
        }) => assert_eq!(table, T),
        other => panic!("expected a version error, got {other:?}"),
    }
    assert!(matches!(
        check_table_version(db, "location", 1),
        Err(DbError::Version { found: None, .. })
    ));
}

fn raw_and_errors(db: &dyn Db) {
    let rows = db
        .raw(&format!(
            "SELECT COUNT(*) AS n FROM {T} WHERE expires > 700 AND expires < 1000"
        ))
        .unwrap();
    assert_eq!(rows.columns, ["n"]);
    assert_eq!(rows.rows.len(), 1);
    assert_eq!(rows.rows[0][0].as_int(), Some(2));
    let rows = db
        .raw(&format!(
            "SELECT username FROM {T} ORDER BY username LIMIT 1"
        ))
        .unwrap();
    assert_eq!(rows.rows, vec![vec![Value::from("alfred")]]);
    // A statement that returns no rows.
    assert!(
        db.raw(&format!("DELETE FROM {T} WHERE expires = -1"))
            .unwrap()
            .is_empty()
    );
    // A bad column is a query error, not retryable.
    let e = db
        .select(&Select {
            table: T,
            columns: &["no_such_column"],
            ..Select::default()
        })
        .unwrap_err();
    assert!(matches!(e, DbError::Query(_)), "{e:?}");
    assert!(!e.is_retryable());
    // A unique-key violation too.
    let e = db
        .insert(
            T,
            &["username", "domain"],
            &["bob".into(), "example.com".into()],
        )
        .unwrap_err();
    assert!(matches!(e, DbError::Query(_)), "{e:?}");
    // The connection still works after errors.
    assert_eq!(users(db, vec![Cond::eq("username", "bob")]), ["bob"]);
}

/// Calls from many threads at once, and from inside another tokio runtime's worker (the SIP
/// TCP path), all answer.
pub(crate) fn concurrency(db: std::sync::Arc<dyn Db>) {
    std::thread::scope(|s| {
        for t in 0..6 {
            let db = &db;
            s.spawn(move || {
                for i in 0..20 {
                    let u = format!("thread{t}-{i}");
                    db.insert(
                        T,
                        &["username", "expires"],
                        &[u.clone().into(), Value::Int(1)],
                    )
                    .unwrap();
                    assert_eq!(users(&**db, vec![Cond::eq("username", u)]).len(), 1);
                }
            });
        }
    });
    assert_eq!(
        users(&*db, vec![c("username", Op::Like, "thread%")]).len(),
        120
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db2 = db.clone();
    let n = rt
        .block_on(async move {
            tokio::spawn(async move { users(&*db2, vec![c("username", Op::Like, "thread1-%")]) })
                .await
        })
        .unwrap();
    assert_eq!(n.len(), 20);
}
