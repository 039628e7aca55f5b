//! The usrloc MI commands, with OpenSIPS 3.5's names, parameters, error codes and JSON
//! shapes: `ul_dump [brief]`, `ul_show_contact`, `ul_rm`, `ul_rm_contact`, `ul_add`,
//! `ul_sync`, `ul_flush`, `ul_cluster_sync`. The handlers find the [`Usrloc`] the host
//! provided with `Mi::provide`.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use serde_json::{Map, Value, json};
use sipox_mi::{MiCmd, MiCx, MiError, MiParams};

use crate::{Contact, DomainId, Usrloc, q_from_str, q_to_str};

/// Every usrloc MI command.
pub static CMDS: [MiCmd; 8] = [
    MiCmd {
        name: "ul_dump",
        help: "dumps the content of the location tables",
        module: "usrloc",
        recipes: &[(&[], ul_dump), (&["brief"], ul_dump)],
    },
    MiCmd {
        name: "ul_show_contact",
        help: "shows the contacts of an AoR",
        module: "usrloc",
        recipes: &[(&["table_name", "aor"], ul_show_contact)],
    },
    MiCmd {
        name: "ul_rm",
        help: "deletes an AoR and all its contacts",
        module: "usrloc",
        recipes: &[(&["table_name", "aor"], ul_rm)],
    },
    MiCmd {
        name: "ul_rm_contact",
        help: "deletes one contact of an AoR",
        module: "usrloc",
        recipes: &[(&["table_name", "aor", "contact"], ul_rm_contact)],
    },
    MiCmd {
        name: "ul_add",
        help: "adds (or updates) a contact of an AoR",
        module: "usrloc",
        recipes: &[(
            &[
                "table_name",
                "aor",
                "contact",
                "expires",
                "q",
                "unused",
                "flags",
                "cflags",
                "methods",
            ],
            ul_add,
        )],
    },
    MiCmd {
        name: "ul_sync",
        help: "rewrites the location table(s) in the database from memory",
        module: "usrloc",
        recipes: &[
            (&[], ul_sync),
            (&["table_name"], ul_sync),
            (&["table_name", "aor"], ul_sync),
        ],
    },
    MiCmd {
        name: "ul_flush",
        help: "flushes the changed contacts to the database now (write-back)",
        module: "usrloc",
        recipes: &[(&[], ul_flush)],
    },
    MiCmd {
        name: "ul_cluster_sync",
        help: "pulls the location from the cluster (clustering is not supported)",
        module: "usrloc",
        recipes: &[(&[], ul_cluster_sync)],
    },
];

fn ul(cx: &MiCx<'_>) -> Result<Arc<Usrloc>, MiError> {
    cx.get::<Usrloc>()
        .ok_or_else(|| MiError::server_error("usrloc is not running"))
}

fn now(cx: &MiCx<'_>) -> i64 {
    cx.now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn table(u: &Usrloc, p: &MiParams<'_>) -> Result<DomainId, MiError> {
    let name = p.str("table_name")?;
    u.domain(&name)
        .ok_or_else(|| MiError::new(404, "Table not found"))
}

/// OpenSIPS's AoR fix-up: with `use_domain` the AoR must have a domain; without it, a
/// domain part is dropped.
fn aor(u: &Usrloc, p: &MiParams<'_>) -> Result<String, MiError> {
    let a = p.str("aor")?;
    match (u.use_domain(), a.split_once('@')) {
        (true, None) => Err(MiError::new(400, "Domain missing in AOR")),
        (false, Some((user, _))) => Ok(user.to_owned()),
        _ => Ok(a.into_owned()),
    }
}

fn internal(e: impl std::fmt::Display) -> MiError {
    MiError::new(500, format!("Internal error: {e}"))
}

fn ul_dump(p: &MiParams<'_>, cx: &MiCx<'_>) -> Result<Value, MiError> {
    let u = ul(cx)?;
    let brief = match p.opt_str("brief")? {
        None => false,
        Some(b) if b.eq_ignore_ascii_case("brief") => true,
        Some(_) => false,
    };
    let t = now(cx);
    let mut doms = Vec::new();
    for (d, name) in u.domains() {
        let recs = u.records(d).map_err(internal)?;
        let aors: Vec<Value> = recs
            .iter()
            .map(|(a, cs)| aor_node(&u, d, a, cs, t, brief))
            .collect();
        doms.push(json!({
            "name": name,
            "hash_size": 1u64 << u.params().hash_size,
            "AORs": aors,
        }));
    }
    Ok(json!({ "Domains": doms }))
}

fn ul_show_contact(p: &MiParams<'_>, cx: &MiCx<'_>) -> Result<Value, MiError> {
    let u = ul(cx)?;
    let d = table(&u, p)?;
    let a = aor(&u, p)?;
    let t = now(cx);
    match u.contacts(d, &a, t).map_err(internal)? {
        Some(cs) if !cs.is_empty() => Ok(aor_node(&u, d, &a, &cs, t, false)),
        _ => Err(MiError::new(404, "AOR not found")),
    }
}

fn ul_rm(p: &MiParams<'_>, cx: &MiCx<'_>) -> Result<Value, MiError> {
    let u = ul(cx)?;
    let d = table(&u, p)?;
    let a = aor(&u, p)?;
    u.delete_aor(d, &a, now(cx)).map_err(internal)?;
    Ok(json!("OK"))
}

fn ul_rm_contact(p: &MiParams<'_>, cx: &MiCx<'_>) -> Result<Value, MiError> {
    let u = ul(cx)?;
    let d = table(&u, p)?;
    let a = aor(&u, p)?;
    let contact = p.str("contact")?;
    let r = u
        .with_record(d, &a, now(cx), |r| {
            if !r.existed() {
                return Err(MiError::new(404, "AOR not found"));
            }
            let i = r
                .find(&contact)
                .ok_or_else(|| MiError::new(404, "Contact not found"))?;
            r.remove(i);
            Ok(())
        })
        .map_err(internal)?;
    r.map(|()| json!("OK"))
}

fn ul_add(p: &MiParams<'_>, cx: &MiCx<'_>) -> Result<Value, MiError> {
    let u = ul(cx)?;
    let d = table(&u, p)?;
    let a = aor(&u, p)?;
    let contact = p.str("contact")?.into_owned();
    let bad = || MiError::new(400, "Bad parameter value");
    let expires = p.int("expires").map_err(|_| bad())?;
    let q = p.str("q")?;
    let q = q_from_str(&q).ok_or_else(bad)?;
    let flags = p.int("flags").map_err(|_| bad())? as u32;
    let cflags = p.int("cflags").map_err(|_| bad())? as u32;
    let methods = p.int("methods").map_err(|_| bad())? as u32;
    if expires < 0 {
        return Err(bad());
    }
    let t = now(cx);
    let abs = if expires == 0 { 0 } else { t + expires };
    u.with_record(d, &a, t, |r| {
        let fill = |c: &mut Contact| {
            c.expires = abs;
            c.q = q;
            c.flags = flags;
            c.cflags = cflags;
            c.methods = Some(methods);
            c.user_agent = MI_UA.into();
            c.callid = MI_CALLID.into();
        };
        match r.find(&contact) {
            Some(i) => {
                r.update(i, fill);
            }
            None => {
                let mut c = Contact::new(contact.clone());
                fill(&mut c);
                c.cseq = 1;
                r.insert(c);
            }
        }
    })
    .map_err(internal)?;
    Ok(json!("OK"))
}

/// The User-Agent and Call-ID of contacts added by `ul_add` (as OpenSIPS sets them).
const MI_UA: &str = "OpenSIPS MI Server";
const MI_CALLID: &str = "dfjrewr12386fd6-343@opensips.mi";

fn ul_sync(p: &MiParams<'_>, cx: &MiCx<'_>) -> Result<Value, MiError> {
    let u = ul(cx)?;
    if !matches!(
        u.mode(),
        crate::WorkingMode::WriteThrough | crate::WorkingMode::WriteBack
    ) {
        return Err(MiError::new(
            400,
            "Contacts already synced (no SQL write mode with a memory cache)",
        ));
    }
    let tables: Vec<DomainId> = if p.has("table_name") {
        vec![table(&u, p)?]
    } else {
        u.domains().into_iter().map(|(d, _)| d).collect()
    };
    if p.has("aor") {
        let a = aor(&u, p)?;
        for d in tables {
            if !u.sync(d, Some(&a)).map_err(internal)? {
                return Err(MiError::new(404, "AOR not found"));
            }
        }
    } else {
        for d in tables {
            u.sync(d, None).map_err(internal)?;
        }
    }
    Ok(json!("OK"))
}

fn ul_flush(_p: &MiParams<'_>, cx: &MiCx<'_>) -> Result<Value, MiError> {
    ul(cx)?.flush();
    Ok(json!("OK"))
}

fn ul_cluster_sync(_p: &MiParams<'_>, cx: &MiCx<'_>) -> Result<Value, MiError> {
    ul(cx)?;
    Err(MiError::new(400, "Clustering is not enabled"))
}

fn aor_node(u: &Usrloc, d: DomainId, aor: &str, cs: &[Contact], t: i64, brief: bool) -> Value {
    if brief {
        return json!({ "AOR": aor });
    }
    let states = u.contact_states(d, aor);
    let contacts: Vec<Value> = cs
        .iter()
        .enumerate()
        .map(|(i, c)| contact_node(u, c, t, states.get(i).copied().unwrap_or("CS_SYNC")))
        .collect();
    json!({ "AOR": aor, "Contacts": contacts })
}

fn contact_node(u: &Usrloc, c: &Contact, t: i64, state: &str) -> Value {
    let mut m = Map::new();
    m.insert("Contact".into(), json!(c.uri));
    m.insert("ContactID".into(), json!(c.contact_id.to_string()));
    let exp = if c.expires == 0 {
        json!("permanent")
    } else if t >= c.expires {
        json!("expired")
    } else {
        json!(c.expires - t)
    };
    m.insert("Expires".into(), exp);
    m.insert("Q".into(), json!(q_to_str(c.q).unwrap_or_default()));
    m.insert("Callid".into(), json!(c.callid));
    m.insert("Cseq".into(), json!(c.cseq));
    if !c.user_agent.is_empty() {
        m.insert("User-agent".into(), json!(c.user_agent));
    }
    if !c.received.is_empty() {
        m.insert("Received".into(), json!(c.received));
    }
    if !c.path.is_empty() {
        m.insert("Path".into(), json!(c.path));
    }
    m.insert("State".into(), json!(state));
    m.insert("Flags".into(), json!(c.flags));
    m.insert(
        "Cflags".into(),
        json!(crate::persist::cflags_to_names(c.cflags, &u.bflag_names())),
    );
    if !c.socket.is_empty() {
        m.insert("Socket".into(), json!(c.socket));
    }
    m.insert("Methods".into(), json!(c.methods.unwrap_or(u32::MAX)));
    if !c.attr.is_empty() {
        m.insert("Attr".into(), json!(c.attr));
    }
    if !c.instance.is_empty() {
        m.insert("SIP_instance".into(), json!(c.instance));
    }
    if !c.kv.is_empty() {
        m.insert("KV-Store".into(), json!(c.kv));
    }
    Value::Object(m)
}
