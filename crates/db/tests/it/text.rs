//! The db_text driver on OpenSIPS-shaped files: reading what OpenSIPS writes, every API call,
//! and files we write read back by the same rules (escapes included).

use std::path::Path;

use sipox_db::{Cond, DbError, Dialect, Op, Select, Value, connect, schema, table_version};
use sipox_test_support::dbserver::TempDir;

/// A `version` table as in OpenSIPS's `scripts/dbtext/opensips/version` (trailing space on
/// the header, as the generated files have).
const VERSION: &str = "table_name(string) table_version(int) \nsubscriber:8\nlocation:1013\n";

/// A subscriber table with escaped values: a ':' in a password, a backslash, a tab.
const SUBSCRIBER: &str = "id(int,auto) username(string) domain(string) password(string) \
ha1(string) ha1_sha256(string) ha1_sha512t256(string) \n\
1:alice:example.com:se\\:cret:aaa:bbb:ccc\n\
2:bob:example.com:back\\\\slash\\ttab:ddd:eee:fff\n\
5:carol:other.org:pw:ggg:hhh:iii\n";

/// A location table: NULLs (empty fields), a double, a long auto id.
const LOCATION: &str = "contact_id(long,auto) username(string) domain(string,null) \
contact(string) received(string,null) expires(int) q(double) flags(int) methods(int,null)\n\
10:alice:example.com:sip\\:alice@1.2.3.4\\:5060::1700000000:1.00:0:\n\
11:bob::sip\\:bob@5.6.7.8:sip\\:5.6.7.8\\:5070:1700000100:0.50:3:31\n";

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn url(dir: &Path) -> String {
    format!("text://{}", dir.display())
}

fn sample() -> TempDir {
    let dir = TempDir::new("dbtext").unwrap();
    write(dir.path(), "version", VERSION);
    write(dir.path(), "subscriber", SUBSCRIBER);
    write(dir.path(), "location", LOCATION);
    dir
}

fn c(col: &str, op: Op, val: impl Into<Value>) -> Cond<'_> {
    Cond {
        col,
        op,
        val: val.into(),
    }
}

fn names(db: &dyn sipox_db::Db, table: &str, conds: Vec<Cond<'_>>) -> Vec<String> {
    let r = db
        .select(&Select {
            table,
            columns: &["username"],
            conds,
            order_by: Some("username"),
            limit: None,
        })
        .unwrap();
    r.rows
        .iter()
        .map(|r| r[0].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn reads_opensips_files() {
    let dir = sample();
    let db = connect(&url(dir.path())).unwrap();
    assert_eq!(db.dialect(), Dialect::Text);
    assert_eq!(table_version(&*db, "subscriber").unwrap(), Some(8));
    assert_eq!(table_version(&*db, "location").unwrap(), Some(1013));
    assert_eq!(table_version(&*db, "dialog").unwrap(), None);
    sipox_db::check_table_version(&*db, "location", 1013).unwrap();

    let r = db
        .select(&Select {
            table: "subscriber",
            columns: &["password", "id"],
            conds: vec![
                Cond::eq("username", "alice"),
                Cond::eq("domain", "example.com"),
            ],
            ..Select::default()
        })
        .unwrap();
    assert_eq!(r.columns, ["password", "id"]);
    assert_eq!(r.rows, vec![vec!["se:cret".into(), Value::Int(1)]]);
    let r = db
        .select(&Select {
            table: "subscriber",
            conds: vec![Cond::eq("username", "bob")],
            ..Select::default()
        })
        .unwrap();
    assert_eq!(r.get(0, "password"), Some(&Value::from("back\\slash\ttab")));
    assert_eq!(r.columns.len(), 7, "every column in table order");
    assert_eq!(r.columns[0], "id");

    // NULLs, doubles, long ids.
    let r = db
        .select(&Select {
            table: "location",
            order_by: Some("contact_id"),
            ..Select::default()
        })
        .unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r.get(0, "contact_id"), Some(&Value::Int(10)));
    assert_eq!(
        r.get(0, "contact"),
        Some(&Value::from("sip:alice@1.2.3.4:5060"))
    );
    assert_eq!(r.get(0, "received"), Some(&Value::Null));
    assert_eq!(r.get(0, "methods"), Some(&Value::Null));
    assert_eq!(r.get(0, "q"), Some(&Value::Double(1.0)));
    assert_eq!(r.get(1, "domain"), Some(&Value::Null));
    assert_eq!(r.get(1, "received"), Some(&Value::from("sip:5.6.7.8:5070")));
    assert_eq!(r.get(1, "q"), Some(&Value::Double(0.5)));
    assert_eq!(r.get(1, "methods"), Some(&Value::Int(31)));
}

#[test]
fn operators_order_limit() {
    let dir = sample();
    let db = connect(&url(dir.path())).unwrap();
    let db = &*db;
    let t = "subscriber";
    assert_eq!(names(db, t, vec![]), ["alice", "bob", "carol"]);
    assert_eq!(names(db, t, vec![c("id", Op::Eq, 2i64)]), ["bob"]);
    assert_eq!(
        names(db, t, vec![c("id", Op::Ne, 2i64)]),
        ["alice", "carol"]
    );
    assert_eq!(names(db, t, vec![c("id", Op::Lt, 2i64)]), ["alice"]);
    assert_eq!(names(db, t, vec![c("id", Op::Le, 2i64)]), ["alice", "bob"]);
    assert_eq!(names(db, t, vec![c("id", Op::Gt, 2i64)]), ["carol"]);
    assert_eq!(names(db, t, vec![c("id", Op::Ge, 2i64)]), ["bob", "carol"]);
    // A number given as text converts to the column's type.
    assert_eq!(names(db, t, vec![c("id", Op::Ge, "5")]), ["carol"]);
    assert_eq!(
        names(db, t, vec![c("username", Op::Like, "%o%")]),
        ["bob", "carol"]
    );
    assert_eq!(
        names(db, t, vec![c("domain", Op::Like, "EXAMPLE.%")]),
        ["alice", "bob"]
    );
    assert_eq!(names(db, t, vec![c("id", Op::BitAnd, 4i64)]), ["carol"]);
    assert_eq!(
        names(
            db,
            t,
            vec![c("domain", Op::Eq, "example.com"), c("id", Op::Gt, 1i64)]
        ),
        ["bob"]
    );
    // NULL rules on location.
    let l = "location";
    assert_eq!(
        names(db, l, vec![c("received", Op::Eq, Value::Null)]),
        ["alice"]
    );
    assert_eq!(
        names(db, l, vec![c("received", Op::Ne, Value::Null)]),
        ["bob"]
    );
    assert_eq!(names(db, l, vec![c("methods", Op::Lt, 100i64)]), ["bob"]);
    assert_eq!(
        names(db, l, vec![c("q", Op::Gt, Value::Double(0.75))]),
        ["alice"]
    );
    assert_eq!(
        names(db, l, vec![c("expires", Op::Gt, 1_700_000_050i64)]),
        ["bob"]
    );

    // Order (NULLs first) and limit.
    let r = db
        .select(&Select {
            table: l,
            columns: &["username"],
            order_by: Some("domain"),
            limit: Some(1),
            ..Select::default()
        })
        .unwrap();
    assert_eq!(r.rows, vec![vec![Value::from("bob")]]);
    let r = db
        .select(&Select {
            table: t,
            columns: &["username"],
            order_by: Some("password"),
            limit: Some(2),
            ..Select::default()
        })
        .unwrap();
    assert_eq!(
        r.rows,
        vec![vec![Value::from("bob")], vec![Value::from("carol")]]
    );

    // Errors.
    let e = db
        .select(&Select {
            table: "nope",
            ..Select::default()
        })
        .unwrap_err();
    assert!(matches!(e, DbError::Query(_)), "{e:?}");
    let e = db
        .select(&Select {
            table: t,
            columns: &["nope"],
            ..Select::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
    assert!(matches!(
        db.raw("SELECT 1").unwrap_err(),
        DbError::Unsupported { driver: "text", .. }
    ));
}

#[test]
fn writes_round_trip_through_the_file() {
    let dir = sample();
    let u = url(dir.path());
    let db = connect(&u).unwrap();
    // Auto id after the highest present (5).
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
                "dave".into(),
                "example.com".into(),
                "a:b\\c\nd\re\tf\0g".into(),
                "h".into(),
                "i".into(),
                "j".into(),
            ],
        )
        .unwrap();
    assert_eq!(id, 6);
    // The file is rewritten at once, in OpenSIPS's printed form.
    let text = std::fs::read_to_string(dir.path().join("subscriber")).unwrap();
    assert!(
        text.starts_with(
            "id(int,auto) username(string) domain(string) password(string) ha1(string) \
             ha1_sha256(string) ha1_sha512t256(string)\n1:alice:example.com:se\\:cret:aaa:bbb:ccc\n"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("6:dave:example.com:a\\:b\\\\c\\nd\\re\\tf\\0g:h:i:j\n"),
        "{text}"
    );
    assert!(
        !dir.path().read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with('.')),
        "no temp file left behind"
    );

    // update / delete / replace
    assert_eq!(
        db.update(
            "location",
            &[Cond::eq("username", "bob")],
            &["received", "q", "expires"],
            &[Value::Null, Value::Double(0.25), Value::Int(1_800_000_000)],
        )
        .unwrap(),
        1
    );
    assert_eq!(
        db.update(
            "location",
            &[Cond::eq("username", "zed")],
            &["flags"],
            &[Value::Int(1)]
        )
        .unwrap(),
        0
    );
    assert_eq!(
        db.delete("subscriber", &[c("domain", Op::Eq, "other.org")])
            .unwrap(),
        1
    );
    db.replace(
        "location",
        &["username", "domain", "contact", "expires", "q", "flags"],
        &[
            "alice".into(),
            "example.com".into(),
            "sip:alice@1.2.3.4:5060".into(),
            Value::Int(1_900_000_000),
            Value::Double(1.0),
            Value::Int(64),
        ],
        &["username", "contact"],
    )
    .unwrap();
    db.replace(
        "location",
        &["username", "domain", "contact", "expires", "q", "flags"],
        &[
            "erin".into(),
            Value::Null,
            "sip:erin@9.9.9.9".into(),
            Value::Int(1_900_000_001),
            Value::Double(0.1),
            Value::Int(0),
        ],
        &["username", "contact"],
    )
    .unwrap();
    let new_id = db
        .insert(
            "location",
            &["username", "contact", "expires", "q", "flags"],
            &[
                "fred".into(),
                "sip:fred@x".into(),
                Value::Int(1),
                Value::Double(0.126),
                Value::Int(0),
            ],
        )
        .unwrap();
    assert_eq!(new_id, 13, "10, 11, erin 12, fred 13");
    // NULL into a NOT NULL column is refused, and changes nothing.
    let e = db
        .insert(
            "location",
            &["username", "contact", "expires"],
            &["x".into(), Value::Null, Value::Int(1)],
        )
        .unwrap_err();
    assert!(e.to_string().contains("cannot be NULL"), "{e}");
    assert!(db.insert("location", &["username"], &[]).is_err());

    let before = dump(&*db);
    drop(db);
    // A second open reads the files back to the same data (two-decimal doubles as OpenSIPS
    // prints them: 0.126 becomes 0.13).
    let db = connect(&u).unwrap();
    let after = dump(&*db);
    assert_eq!(after.len(), before.len());
    for (a, b) in after.iter().zip(&before) {
        assert_eq!(a.0, b.0);
        assert_eq!(a.1.columns, b.1.columns);
        for (ra, rb) in a.1.rows.iter().zip(&b.1.rows) {
            for (va, vb) in ra.iter().zip(rb) {
                match (va, vb) {
                    (Value::Double(x), Value::Double(y)) => {
                        assert!((x - y).abs() < 0.006, "{x} {y}")
                    }
                    _ => assert_eq!(va, vb, "{}", a.0),
                }
            }
        }
    }
    let loc = &after.iter().find(|(n, _)| n == "location").unwrap().1;
    assert_eq!(loc.len(), 4);
    assert_eq!(
        loc.get(0, "flags"),
        Some(&Value::Int(64)),
        "alice replaced in place"
    );
    assert_eq!(loc.get(0, "contact_id"), Some(&Value::Int(10)));
    assert_eq!(loc.get(1, "received"), Some(&Value::Null));
    assert_eq!(loc.get(1, "expires"), Some(&Value::Int(1_800_000_000)));
    assert_eq!(loc.get(2, "username"), Some(&Value::from("erin")));
    assert_eq!(loc.get(3, "q"), Some(&Value::Double(0.13)));
    let sub = &after.iter().find(|(n, _)| n == "subscriber").unwrap().1;
    assert_eq!(
        sub.get(2, "password"),
        Some(&Value::from("a:b\\c\nd\re\tf\0g"))
    );
    // An auto id continues after a reload.
    assert_eq!(
        db.insert(
            "subscriber",
            &[
                "username",
                "domain",
                "password",
                "ha1",
                "ha1_sha256",
                "ha1_sha512t256"
            ],
            &[
                "gina".into(),
                "d".into(),
                "p".into(),
                "1".into(),
                "2".into(),
                "3".into()
            ],
        )
        .unwrap(),
        7
    );
}

fn dump(db: &dyn sipox_db::Db) -> Vec<(String, sipox_db::Rows)> {
    ["location", "subscriber", "version"]
        .iter()
        .map(|t| {
            let order = if *t == "location" {
                "contact_id"
            } else {
                "table_name"
            };
            let order = if *t == "subscriber" { "id" } else { order };
            (
                (*t).to_owned(),
                db.select(&Select {
                    table: t,
                    order_by: Some(order),
                    ..Select::default()
                })
                .unwrap(),
            )
        })
        .collect()
}

#[test]
fn bad_files_fail_only_their_table() {
    let dir = sample();
    write(dir.path(), "broken", "a(int) b(str)\n1:x\nnotanumber:y\n");
    write(dir.path(), "short", "a(int) b(str)\n1\n");
    write(dir.path(), ".hidden", "garbage");
    let db = connect(&url(dir.path())).unwrap();
    let e = db
        .select(&Select {
            table: "broken",
            ..Select::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("line 3"), "{e}");
    let e = db.delete("short", &[]).unwrap_err();
    assert!(e.to_string().contains("1 fields for 2 columns"), "{e}");
    assert_eq!(table_version(&*db, "location").unwrap(), Some(1013));
    let e = connect("text:///nonexistent-sipox-dir/x").unwrap_err();
    assert!(matches!(e, DbError::Io(_)), "{e:?}");
}

#[test]
fn schema_create_makes_table_files() {
    let dir = TempDir::new("dbtext-create").unwrap();
    let sub = dir.path().join("db");
    let u = url(&sub);
    let done = schema::create(&u, &["location", "subscriber"]).unwrap();
    let names: Vec<_> = done.iter().map(|d| (d.table, d.created)).collect();
    assert_eq!(
        names,
        [("version", true), ("location", true), ("subscriber", true)]
    );
    let header = |t: &str| {
        std::fs::read_to_string(sub.join(t))
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        header("subscriber"),
        schema::dbtext_header(schema::table("subscriber").unwrap())
    );
    assert!(header("location").starts_with("contact_id(long,auto) username(string) "));
    assert_eq!(
        std::fs::read_to_string(sub.join("version")).unwrap(),
        "table_name(string) table_version(int)\nlocation:1013\nsubscriber:8\n"
    );
    // Idempotent: existing files are kept, version rows replaced.
    let db = connect(&u).unwrap();
    db.insert(
        "location",
        &[
            "username",
            "contact",
            "expires",
            "q",
            "callid",
            "cseq",
            "last_modified",
            "flags",
            "user_agent",
        ],
        &[
            "alice".into(),
            "sip:alice@1.2.3.4".into(),
            Value::Int(1_700_000_000),
            Value::Double(1.0),
            "cid".into(),
            Value::Int(1),
            Value::DateTime(1_700_000_000),
            Value::Int(0),
            "ua".into(),
        ],
    )
    .unwrap();
    db.update(
        "version",
        &[Cond::eq("table_name", "location")],
        &["table_version"],
        &[Value::Int(1)],
    )
    .unwrap();
    drop(db);
    let done = schema::create(&u, &["location"]).unwrap();
    assert!(done.iter().all(|d| !d.created));
    let db = connect(&u).unwrap();
    assert_eq!(table_version(&*db, "location").unwrap(), Some(1013));
    let r = db
        .select(&Select {
            table: "location",
            ..Select::default()
        })
        .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r.get(0, "contact_id"), Some(&Value::Int(1)));
    assert_eq!(r.get(0, "last_modified"), Some(&Value::Int(1_700_000_000)));
}
