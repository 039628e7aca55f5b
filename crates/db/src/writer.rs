//! The write queue: database writes that need not hold a SIP reply, applied in order by one
//! thread per queue, retried with backoff while the database is unreachable.
//! (Skeleton: applies synchronously until the threaded version lands.)

use std::sync::Arc;
use std::time::Duration;

use crate::{Cond, Db, DbError, Op, Value};

/// One queued write. Owned, so it can cross to the writer thread.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// `INSERT`.
    Insert {
        /// Table.
        table: String,
        /// Columns.
        cols: Vec<String>,
        /// Values.
        vals: Vec<Value>,
    },
    /// `UPDATE ... WHERE`.
    Update {
        /// Table.
        table: String,
        /// Conditions (column, operator, value), AND-ed.
        conds: Vec<(String, Op, Value)>,
        /// Columns to set.
        cols: Vec<String>,
        /// Their values.
        vals: Vec<Value>,
    },
    /// `DELETE ... WHERE`.
    Delete {
        /// Table.
        table: String,
        /// Conditions, AND-ed.
        conds: Vec<(String, Op, Value)>,
    },
    /// Insert or replace by unique key.
    Replace {
        /// Table.
        table: String,
        /// Columns.
        cols: Vec<String>,
        /// Values.
        vals: Vec<Value>,
        /// The unique key's columns.
        key_cols: Vec<String>,
    },
}

impl WriteOp {
    /// Applies the write to `db` now.
    pub fn apply(&self, db: &dyn Db) -> Result<(), DbError> {
        fn conds(c: &[(String, Op, Value)]) -> Vec<Cond<'_>> {
            c.iter()
                .map(|(col, op, val)| Cond {
                    col,
                    op: *op,
                    val: val.clone(),
                })
                .collect()
        }
        fn strs(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        match self {
            Self::Insert { table, cols, vals } => db.insert(table, &strs(cols), vals).map(drop),
            Self::Update {
                table,
                conds: c,
                cols,
                vals,
            } => db.update(table, &conds(c), &strs(cols), vals).map(drop),
            Self::Delete { table, conds: c } => db.delete(table, &conds(c)).map(drop),
            Self::Replace {
                table,
                cols,
                vals,
                key_cols,
            } => db.replace(table, &strs(cols), vals, &strs(key_cols)),
        }
    }
}

/// An ordered write queue over one database.
#[derive(Debug)]
pub struct Writer {
    db: Arc<dyn Db>,
}

impl Writer {
    /// A queue writing to `db`; `name` appears in its log lines.
    pub fn new(db: Arc<dyn Db>, _name: &str) -> Self {
        Self { db }
    }

    /// Queues a write; never blocks on the database.
    pub fn submit(&self, op: WriteOp) {
        let _ = op.apply(&*self.db);
    }

    /// Waits until every write queued so far is applied (or `timeout` passed); true when
    /// the queue is empty.
    pub fn flush(&self, _timeout: Duration) -> bool {
        true
    }

    /// Writes queued and not yet applied.
    pub fn pending(&self) -> usize {
        0
    }
}
