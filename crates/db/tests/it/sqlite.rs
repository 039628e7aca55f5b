//! The sqlite driver against the conformance suite, on a temp file.

use sipox_db::{Dialect, Value, connect};
use sipox_test_support::dbserver::TempDir;

use crate::api;

#[test]
fn conformance_on_a_file() {
    let dir = TempDir::new("sqlite").unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    assert!(url.starts_with("sqlite:///"));
    let db = connect(&url).unwrap();
    assert_eq!(db.dialect(), Dialect::Sqlite);
    api::conformance(&*db);
    api::concurrency(db.clone());
    // WAL journal.
    let mode = db.raw("PRAGMA journal_mode").unwrap();
    assert_eq!(mode.rows, vec![vec![Value::from("wal")]]);
    // Another open of the same file sees the data.
    drop(db);
    let db = connect(&url).unwrap();
    assert_eq!(sipox_db::table_version(&*db, "t_api").unwrap(), Some(3));
}

#[test]
fn in_memory_and_scripts() {
    let db = connect("sqlite://:memory:").unwrap();
    // A DDL script of several statements.
    db.raw("CREATE TABLE a (x INTEGER); CREATE TABLE b (y TEXT); INSERT INTO a VALUES (1);")
        .unwrap();
    let r = db.raw("SELECT x FROM a").unwrap();
    assert_eq!(r.rows, vec![vec![Value::Int(1)]]);
}

#[test]
fn unopenable_file_is_an_error() {
    let e = connect("sqlite:///nonexistent-dir-sipox/x/y.db").unwrap_err();
    assert!(matches!(e, sipox_db::DbError::Io(_)), "{e:?}");
}
