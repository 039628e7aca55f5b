//! The `location` table: rows ↔ contacts, the start-up load, and the write operations each
//! working mode queues or applies.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use sipox_db::{Cond, Db, Op, Select, Value, WriteOp};

use crate::{
    CState, Change, Contact, Domain, Q_UNSPECIFIED, Record, Usrloc, UsrlocError, unpack_contact_id,
};

/// Loads every row of the domain's table into memory (write-through / write-back start).
pub(crate) fn load_domain(ul: &Usrloc, db: &dyn Db, dom: &Arc<Domain>) -> Result<(), UsrlocError> {
    let rows = select_all(ul, db, &dom.name)?;
    let mut regen = Vec::new();
    for (aor, contacts) in rows {
        let idx = ul.shard_of(&aor);
        let mut shard = dom.shards[idx].lock();
        let rec = shard.records.entry(aor.clone()).or_default();
        for c in contacts {
            rec.contacts.push(c);
            rec.states.push(CState::Sync);
        }
        let mut label = 0u32;
        let mut max_cl = 0u16;
        let mut broken = Vec::new();
        for (i, c) in rec.contacts.iter().enumerate() {
            let (s, l, cl) = unpack_contact_id(c.contact_id);
            if s as usize != idx || l == 0 || (label != 0 && l != label) {
                broken.push(i);
                continue;
            }
            label = l;
            max_cl = max_cl.max(cl);
        }
        rec.next_clabel = max_cl.wrapping_add(1);
        rec.label = label;
        let n = rec.contacts.len() as u64;
        let rec_label = rec.label;
        if rec_label == 0 {
            shard.next_label = shard.next_label.wrapping_add(1);
            let l = shard.next_label;
            if let Some(r) = shard.records.get_mut(&aor) {
                r.label = l;
            }
        } else if rec_label > shard.next_label {
            shard.next_label = rec_label;
        }
        if ul.params.regen_broken_contactid && !broken.is_empty() {
            let Some(rec) = shard.records.get_mut(&aor) else {
                continue;
            };
            for i in broken {
                let old = rec.contacts[i].contact_id;
                let cl = rec.next_clabel;
                rec.next_clabel = rec.next_clabel.wrapping_add(1);
                let id = crate::pack_contact_id(idx as u64, rec.label, cl);
                rec.contacts[i].contact_id = id;
                regen.push((old, aor.clone(), rec.contacts[i].clone()));
            }
        }
        dom.users.fetch_add(1, Ordering::Relaxed);
        dom.contacts.fetch_add(n, Ordering::Relaxed);
    }
    for (old, aor, c) in regen {
        let op = WriteOp::Update {
            table: dom.name.clone(),
            conds: vec![(ul.params.columns.contact_id.clone(), Op::Eq, id_val(old))],
            cols: vec![ul.params.columns.contact_id.clone()],
            vals: vec![id_val(c.contact_id)],
        };
        if let Err(e) = op.apply(db) {
            ul.log(
                -1,
                &format!("usrloc: cannot rewrite contact id of {aor}: {e}"),
            );
        }
    }
    Ok(())
}

/// Every row of a table grouped by AoR, sorted by AoR.
pub(crate) fn select_all(
    ul: &Usrloc,
    db: &dyn Db,
    table: &str,
) -> Result<Vec<(String, Vec<Contact>)>, UsrlocError> {
    let rows = db.select(&Select {
        table,
        order_by: Some(&ul.params.columns.contact_id),
        ..Select::default()
    })?;
    let names = ul.bflag_names();
    let mut map: BTreeMap<String, Vec<Contact>> = BTreeMap::new();
    for i in 0..rows.len() {
        let (aor, c) = row_contact(ul, &names, &rows, i);
        map.entry(aor).or_default().push(c);
    }
    Ok(map.into_iter().collect())
}

/// The record of one AoR read from the database (sql-only mode).
pub(crate) fn select_record(
    ul: &Usrloc,
    db: &dyn Db,
    table: &str,
    aor: &str,
) -> Result<Record, UsrlocError> {
    let cols = &ul.params.columns;
    let (user, domain) = split_aor(ul, aor);
    let mut conds = vec![Cond::eq(&cols.user, user)];
    if let Some(d) = domain {
        conds.push(Cond::eq(&cols.domain, d));
    }
    let rows = db.select(&Select {
        table,
        conds,
        order_by: Some(&cols.contact_id),
        ..Select::default()
    })?;
    let names = ul.bflag_names();
    let mut rec = Record::default();
    let mut max_cl = 0u16;
    for i in 0..rows.len() {
        let (_, c) = row_contact(ul, &names, &rows, i);
        let (_, l, cl) = unpack_contact_id(c.contact_id);
        if rec.label == 0 {
            rec.label = l;
        }
        max_cl = max_cl.max(cl);
        rec.contacts.push(c);
        rec.states.push(CState::Sync);
    }
    rec.next_clabel = max_cl.wrapping_add(1);
    if rec.contacts.is_empty() {
        rec.label = 0;
    }
    Ok(rec)
}

/// sql-only: deletes the contacts expired at `now` from the database, raising their events.
pub(crate) fn expire_sql_only(ul: &Usrloc, db: &dyn Db, dom: &Arc<Domain>, now: i64) {
    let cols = &ul.params.columns;
    let rows = db.select(&Select {
        table: &dom.name,
        conds: vec![
            Cond {
                col: &cols.expires,
                op: Op::Le,
                val: Value::Int(now),
            },
            Cond {
                col: &cols.expires,
                op: Op::Ne,
                val: Value::Int(0),
            },
        ],
        ..Select::default()
    });
    let rows = match rows {
        Ok(r) => r,
        Err(e) => {
            ul.log(-1, &format!("usrloc: cannot read expired contacts: {e}"));
            return;
        }
    };
    let names = ul.bflag_names();
    let mut by_aor: BTreeMap<String, Vec<Contact>> = BTreeMap::new();
    for i in 0..rows.len() {
        let (aor, c) = row_contact(ul, &names, &rows, i);
        by_aor.entry(aor).or_default().push(c);
    }
    let Some(id) = ul.domain(&dom.name) else {
        return;
    };
    for (aor, expired) in by_aor {
        let n = expired.len() as u64;
        let r = ul.with_record(id, &aor, now, |rec| {
            for c in &expired {
                if let Some(i) = rec.find_id(c.contact_id) {
                    rec.remove(i);
                }
            }
        });
        if let Err(e) = r {
            ul.log(-1, &format!("usrloc: cannot expire contacts of {aor}: {e}"));
        } else {
            dom.expires.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// The write for one change (write-through, sql-only).
pub(crate) fn change_op(ul: &Usrloc, table: &str, aor: &str, ch: &Change) -> Option<WriteOp> {
    Some(match ch {
        Change::Insert(c) => insert_op(ul, table, aor, c),
        Change::Update(c) => update_op(ul, table, aor, c),
        Change::Delete(c, _) => delete_op(ul, table, c.contact_id),
    })
}

/// `INSERT` of a contact.
pub(crate) fn insert_op(ul: &Usrloc, table: &str, aor: &str, c: &Contact) -> WriteOp {
    let (cols, vals) = contact_row(ul, aor, c);
    WriteOp::Insert {
        table: table.to_owned(),
        cols,
        vals,
    }
}

/// `UPDATE` of a contact by its id.
pub(crate) fn update_op(ul: &Usrloc, table: &str, aor: &str, c: &Contact) -> WriteOp {
    let (cols, vals) = contact_row(ul, aor, c);
    WriteOp::Update {
        table: table.to_owned(),
        conds: vec![(
            ul.params.columns.contact_id.clone(),
            Op::Eq,
            id_val(c.contact_id),
        )],
        cols,
        vals,
    }
}

/// `DELETE` of every row of an AoR.
pub(crate) fn delete_aor_ops(ul: &Usrloc, table: &str, aor: &str) -> Vec<WriteOp> {
    let cols = &ul.params.columns;
    let (user, domain) = split_aor(ul, aor);
    let mut conds = vec![(cols.user.clone(), Op::Eq, Value::Str(user.to_owned()))];
    if let Some(d) = domain {
        conds.push((cols.domain.clone(), Op::Eq, Value::Str(d.to_owned())));
    }
    vec![WriteOp::Delete {
        table: table.to_owned(),
        conds,
    }]
}

/// `DELETE` of a contact by its id.
pub(crate) fn delete_op(ul: &Usrloc, table: &str, contact_id: u64) -> WriteOp {
    WriteOp::Delete {
        table: table.to_owned(),
        conds: vec![(
            ul.params.columns.contact_id.clone(),
            Op::Eq,
            id_val(contact_id),
        )],
    }
}

/// Contact ids are unsigned 64-bit; the column is a signed BIGINT in most databases, so the
/// bits are stored as the signed value with the same bits.
fn id_val(id: u64) -> Value {
    Value::Int(id as i64)
}

fn split_aor<'a>(ul: &Usrloc, aor: &'a str) -> (&'a str, Option<&'a str>) {
    if ul.params.use_domain {
        match aor.split_once('@') {
            Some((u, d)) => (u, Some(d)),
            None => (aor, None),
        }
    } else {
        (aor, None)
    }
}

fn opt_str(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::Str(s.to_owned())
    }
}

fn contact_row(ul: &Usrloc, aor: &str, c: &Contact) -> (Vec<String>, Vec<Value>) {
    let cols = &ul.params.columns;
    let (user, domain) = split_aor(ul, aor);
    let names = ul.bflag_names();
    let kv = if c.kv.is_empty() {
        Value::Null
    } else {
        Value::Str(serde_json::to_string(&c.kv).unwrap_or_default())
    };
    let q = if c.q == Q_UNSPECIFIED {
        -0.001
    } else {
        f64::from(c.q) / 1000.0
    };
    let row: Vec<(&String, Value)> = vec![
        (&cols.contact_id, id_val(c.contact_id)),
        (&cols.user, Value::Str(user.to_owned())),
        (
            &cols.domain,
            domain.map_or(Value::Null, |d| Value::Str(d.to_owned())),
        ),
        (&cols.contact, Value::Str(c.uri.clone())),
        (&cols.received, opt_str(&c.received)),
        (&cols.path, opt_str(&c.path)),
        (&cols.expires, Value::Int(c.expires)),
        (&cols.q, Value::Double(q)),
        (&cols.callid, Value::Str(c.callid.clone())),
        (&cols.cseq, Value::Int(i64::from(c.cseq))),
        (&cols.last_modified, Value::DateTime(c.last_modified)),
        (&cols.flags, Value::Int(i64::from(c.flags as i32))),
        (&cols.cflags, opt_str(&cflags_to_names(c.cflags, &names))),
        (&cols.user_agent, Value::Str(c.user_agent.clone())),
        (&cols.socket, opt_str(&c.socket)),
        (
            &cols.methods,
            c.methods
                .map_or(Value::Null, |m| Value::Int(i64::from(m as i32))),
        ),
        (&cols.sip_instance, opt_str(&c.instance)),
        (&cols.kv_store, kv),
        (&cols.attr, opt_str(&c.attr)),
    ];
    row.into_iter().map(|(k, v)| (k.clone(), v)).unzip()
}

fn row_contact(
    ul: &Usrloc,
    names: &[String],
    rows: &sipox_db::Rows,
    i: usize,
) -> (String, Contact) {
    let cols = &ul.params.columns;
    let s = |name: &str| {
        rows.get(i, name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let n = |name: &str| rows.get(i, name).and_then(Value::as_int);
    let user = s(&cols.user);
    let domain = s(&cols.domain);
    let aor = ul.aor_key(&user, &domain);
    let q = match rows.get(i, &cols.q) {
        Some(Value::Double(d)) => (d * 1000.0).round() as i32,
        Some(v) => v
            .as_str()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .map_or(Q_UNSPECIFIED, |d| (d * 1000.0).round() as i32),
        None => Q_UNSPECIFIED,
    };
    let q = if q < 0 { Q_UNSPECIFIED } else { q.min(1000) };
    let kv = rows
        .get(i, &cols.kv_store)
        .and_then(Value::as_str)
        .and_then(|t| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(t).ok())
        .map(|m| {
            m.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, v)
                })
                .collect()
        })
        .unwrap_or_default();
    let c = Contact {
        uri: s(&cols.contact),
        q,
        expires: n(&cols.expires).unwrap_or(0),
        callid: s(&cols.callid),
        cseq: n(&cols.cseq).unwrap_or(0) as u32,
        flags: n(&cols.flags).unwrap_or(0) as u32,
        cflags: names_to_cflags(&s(&cols.cflags), names),
        user_agent: s(&cols.user_agent),
        received: s(&cols.received),
        path: s(&cols.path),
        socket: s(&cols.socket),
        methods: n(&cols.methods).map(|m| m as u32),
        instance: s(&cols.sip_instance),
        reg_id: 0,
        attr: s(&cols.attr),
        last_modified: rows.get(i, &cols.last_modified).map_or(0, datetime),
        contact_id: n(&cols.contact_id).unwrap_or(0) as u64,
        kv,
    };
    (aor, c)
}

/// A DATETIME value: drivers return seconds, or text `YYYY-MM-DD HH:MM:SS` (UTC).
fn datetime(v: &Value) -> i64 {
    match v {
        Value::DateTime(t) | Value::Int(t) => *t,
        Value::Str(s) => sipox_db::sql::parse_datetime(s)
            .or_else(|| s.trim().parse().ok())
            .unwrap_or(0),
        other => other.as_int().unwrap_or(0),
    }
}

/// The `cflags` column: branch flag names, comma-separated (unnamed bits as their index).
pub(crate) fn cflags_to_names(cflags: u32, names: &[String]) -> String {
    let mut out = String::new();
    for bit in 0..32 {
        if cflags & (1 << bit) == 0 {
            continue;
        }
        if !out.is_empty() {
            out.push(',');
        }
        match names.get(bit).filter(|n| !n.is_empty()) {
            Some(n) => out.push_str(n),
            None => out.push_str(&bit.to_string()),
        }
    }
    out
}

/// Reads the `cflags` column back (names, or bit indexes).
pub(crate) fn names_to_cflags(s: &str, names: &[String]) -> u32 {
    let mut m = 0u32;
    for tok in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if let Some(bit) = names.iter().position(|n| n == tok) {
            if bit < 32 {
                m |= 1 << bit;
            }
        } else if let Ok(bit) = tok.parse::<u32>()
            && bit < 32
        {
            m |= 1 << bit;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cflags_names_round_trip() {
        let names = vec!["NAT".to_owned(), String::new(), "PUSH".to_owned()];
        assert_eq!(cflags_to_names(0b101, &names), "NAT,PUSH");
        assert_eq!(cflags_to_names(0b1010, &names), "1,3");
        assert_eq!(names_to_cflags("NAT,PUSH", &names), 0b101);
        assert_eq!(names_to_cflags("1, 3", &names), 0b1010);
        assert_eq!(names_to_cflags("", &names), 0);
    }
}
