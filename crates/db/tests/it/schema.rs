//! The OpenSIPS 3.5 schema created in real databases: SQLite on a temp file always,
//! PostgreSQL and MariaDB when the test can start them.

use sipox_db::schema::{self, Created};
use sipox_db::{Cond, Db, DbError, Select, Value, connect, table_version};
use sipox_test_support::dbserver::{MariaDbServer, PgServer, TempDir};

/// Creates every table, then checks the version rows, that a typical `location`,
/// `subscriber`, `acc` and `dialog` row goes in and comes back, and that a second run creates
/// nothing and restores a changed version row.
fn full_schema(url: &str) {
    let done = schema::create(url, &[]).unwrap();
    assert_eq!(done.len(), schema::all().len());
    assert!(done.iter().all(|d| d.created), "{done:?}");
    let db = connect(url).unwrap();
    let db = &*db;
    for t in schema::all() {
        assert_eq!(table_version(db, t.name).unwrap(), t.version, "{}", t.name);
        if t.name != "version" {
            let r = db
                .select(&Select {
                    table: t.name,
                    ..Select::default()
                })
                .unwrap();
            let cols: Vec<_> = t.columns.iter().map(|c| c.name).collect();
            let got: Vec<_> = r.columns.iter().map(String::as_str).collect();
            assert_eq!(got, cols, "{}", t.name);
        }
    }
    assert_eq!(table_version(db, "location").unwrap(), Some(1013));
    assert_eq!(table_version(db, "subscriber").unwrap(), Some(8));
    typical_rows(db);

    db.update(
        "version",
        &[Cond::eq("table_name", "subscriber")],
        &["table_version"],
        &[Value::Int(3)],
    )
    .unwrap();
    let again = schema::create(url, &["subscriber"]).unwrap();
    assert_eq!(
        again,
        [
            Created {
                table: "version",
                created: false,
                version: None
            },
            Created {
                table: "subscriber",
                created: false,
                version: Some(8)
            }
        ]
    );
    assert_eq!(table_version(db, "subscriber").unwrap(), Some(8));
    let n = db
        .select(&Select {
            table: "subscriber",
            ..Select::default()
        })
        .unwrap();
    assert_eq!(n.len(), 1, "the existing rows are kept");
}

fn typical_rows(db: &dyn Db) {
    // usrloc's insert: every column but the auto id and kv_store/attr.
    let id = db
        .insert(
            "location",
            &[
                "username",
                "domain",
                "contact",
                "received",
                "path",
                "expires",
                "q",
                "callid",
                "cseq",
                "last_modified",
                "flags",
                "cflags",
                "user_agent",
                "socket",
                "methods",
                "sip_instance",
            ],
            &[
                "alice".into(),
                "example.com".into(),
                "sip:alice@192.0.2.1:5060;transport=udp".into(),
                Value::Null,
                Value::Null,
                Value::Int(1_700_003_600),
                Value::Double(1.0),
                "a84b4c76e66710".into(),
                Value::Int(314_159),
                Value::DateTime(1_700_000_000),
                Value::Int(0),
                Value::Null,
                "baresip v2".into(),
                "udp:192.0.2.10:5060".into(),
                Value::Int(8191),
                "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>".into(),
            ],
        )
        .unwrap();
    // (drivers report the auto id of a column named `id`; location's is `contact_id`)
    let _ = id;
    let r = db
        .select(&Select {
            table: "location",
            columns: &[
                "contact_id",
                "expires",
                "q",
                "cseq",
                "received",
                "last_modified",
            ],
            conds: vec![Cond::eq("username", "alice")],
            ..Select::default()
        })
        .unwrap();
    assert_eq!(r.len(), 1);
    assert!(
        r.get(0, "contact_id")
            .and_then(Value::as_int)
            .is_some_and(|i| i >= 1)
    );
    assert_eq!(
        r.get(0, "expires").and_then(Value::as_int),
        Some(1_700_003_600)
    );
    assert_eq!(r.get(0, "cseq").and_then(Value::as_int), Some(314_159));
    assert_eq!(r.get(0, "received"), Some(&Value::Null));
    // The defaults apply to what the insert left out.
    let r = db
        .select(&Select {
            table: "location",
            columns: &["kv_store", "attr"],
            ..Select::default()
        })
        .unwrap();
    assert_eq!(r.rows, vec![vec![Value::Null, Value::Null]]);

    let id = db
        .insert(
            "subscriber",
            &[
                "username",
                "domain",
                "password",
                "ha1",
                "ha1_sha256",
                "ha1_sha512t256",
            ],
            &[
                "alice".into(),
                "example.com".into(),
                "secret".into(),
                "0123456789abcdef0123456789abcdef".into(),
                "".into(),
                "".into(),
            ],
        )
        .unwrap();
    assert!(id >= 1);
    // The unique account key holds.
    let dup = db.insert(
        "subscriber",
        &["username", "domain"],
        &["alice".into(), "example.com".into()],
    );
    assert!(matches!(dup, Err(DbError::Query(_))), "{dup:?}");
    // Columns left out take their defaults ('' for the hashes).
    db.insert(
        "subscriber",
        &["username", "domain"],
        &["bob".into(), "example.com".into()],
    )
    .unwrap();
    let r = db
        .select(&Select {
            table: "subscriber",
            columns: &["ha1_sha256"],
            conds: vec![Cond::eq("username", "bob")],
            ..Select::default()
        })
        .unwrap();
    assert_eq!(r.rows, vec![vec![Value::from("")]]);
    db.delete("subscriber", &[Cond::eq("username", "bob")])
        .unwrap();

    db.insert(
        "acc",
        &[
            "method",
            "from_tag",
            "to_tag",
            "callid",
            "sip_code",
            "sip_reason",
            "time",
        ],
        &[
            "INVITE".into(),
            "ft".into(),
            "tt".into(),
            "cid".into(),
            "200".into(),
            "OK".into(),
            Value::DateTime(1_700_000_000),
        ],
    )
    .unwrap();
    db.insert(
        "dialog",
        &[
            "dlg_id",
            "callid",
            "from_uri",
            "from_tag",
            "to_uri",
            "to_tag",
            "caller_cseq",
            "callee_cseq",
            "caller_ping_cseq",
            "callee_ping_cseq",
            "caller_sock",
            "callee_sock",
            "state",
            "start_time",
            "timeout",
            "vars",
        ],
        &[
            Value::Int(4_294_967_297),
            "cid".into(),
            "sip:a@x".into(),
            "ft".into(),
            "sip:b@y".into(),
            "tt".into(),
            "1".into(),
            "2".into(),
            Value::Int(0),
            Value::Int(0),
            "udp:1.2.3.4:5060".into(),
            "udp:1.2.3.4:5060".into(),
            Value::Int(4),
            Value::Int(1_700_000_000),
            Value::Int(1_700_003_600),
            Value::Blob(vec![0, 1, 2, 255]),
        ],
    )
    .unwrap();
    let r = db
        .select(&Select {
            table: "dialog",
            columns: &["dlg_id", "vars", "script_flags", "module_flags"],
            ..Select::default()
        })
        .unwrap();
    assert_eq!(
        r.get(0, "dlg_id").and_then(Value::as_int),
        Some(4_294_967_297)
    );
    assert_eq!(r.get(0, "vars"), Some(&Value::Blob(vec![0, 1, 2, 255])));
    assert_eq!(r.get(0, "script_flags"), Some(&Value::Null));
    assert_eq!(r.get(0, "module_flags").and_then(Value::as_int), Some(0));
}

#[test]
fn full_schema_on_sqlite() {
    let dir = TempDir::new("schema-sqlite").unwrap();
    let url = format!("sqlite://{}", dir.path().join("opensips.db").display());
    full_schema(&url);
    // Every statement of every table also runs as text in a fresh database.
    let db = connect(&format!("sqlite://{}", dir.path().join("raw.db").display())).unwrap();
    for t in schema::all() {
        for stmt in schema::create_sql(t, sipox_db::Dialect::Sqlite) {
            db.raw(&stmt).unwrap_or_else(|e| panic!("{stmt}: {e}"));
        }
        if let Some(v) = schema::version_insert_sql(t) {
            db.raw(&v).unwrap();
        }
    }
    assert_eq!(table_version(&*db, "dialog").unwrap(), Some(12));
}

#[test]
fn unknown_table_creates_nothing() {
    let dir = TempDir::new("schema-unknown").unwrap();
    let url = format!("sqlite://{}", dir.path().join("x.db").display());
    let e = schema::create(&url, &["location", "nope"]).unwrap_err();
    assert!(e.to_string().contains("unknown table \"nope\""), "{e}");
    let db = connect(&url).unwrap();
    assert!(
        table_version(&*db, "location").is_err(),
        "no version table was made"
    );
}

/// Runs `full_schema` on a server's URL, unless its driver is not built in yet.
fn on_server(url: &str) {
    match connect(url) {
        Err(DbError::NoDriver(d)) => eprintln!("skipped: driver {d} not built in"),
        _ => full_schema(url),
    }
}

#[test]
fn full_schema_on_postgres() {
    let Some(pg) = PgServer::start() else {
        eprintln!("skipped: PostgreSQL not installed");
        return;
    };
    on_server(&pg.url());
}

#[test]
fn full_schema_on_mariadb() {
    let Some(my) = MariaDbServer::start() else {
        eprintln!("skipped: MariaDB not installed");
        return;
    };
    on_server(&my.url());
}
