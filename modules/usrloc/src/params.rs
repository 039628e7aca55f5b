//! The module parameters (`modparam("usrloc", ...)`), parsed once at start.

use sipox_cfg_syntax::Value;

use crate::UsrlocError;

/// How the location is kept (OpenSIPS's `working_mode_preset`, or the explicit
/// `cluster_mode`/`restart_persistency`/`sql_write_mode` trio, or the legacy `db_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkingMode {
    /// `single-instance-no-db` (`db_mode` 0): memory only, lost on restart.
    #[default]
    NoDb,
    /// `single-instance-sql-write-through` (`db_mode` 1): every change is queued to the
    /// database as it happens, in order; the memory cache serves lookups.
    WriteThrough,
    /// `single-instance-sql-write-back` (`db_mode` 2): changes mark contacts dirty; the timer
    /// flushes them every `timer_interval` and at shutdown.
    WriteBack,
    /// `single-instance-sql-only` / `sql-only` (`db_mode` 3): no memory cache; every lookup
    /// reads the database and every change writes it at once.
    SqlOnly,
}

impl WorkingMode {
    /// True when a database is needed.
    pub fn uses_db(self) -> bool {
        self != Self::NoDb
    }

    /// True when contacts are cached in memory (every mode but sql-only).
    pub fn has_memory(self) -> bool {
        self != Self::SqlOnly
    }

    /// The `working_mode_preset` name.
    pub fn preset_name(self) -> &'static str {
        match self {
            Self::NoDb => "single-instance-no-db",
            Self::WriteThrough => "single-instance-sql-write-through",
            Self::WriteBack => "single-instance-sql-write-back",
            Self::SqlOnly => "single-instance-sql-only",
        }
    }
}

/// Contact matching (`matching_mode`): 0 by contact URI only, 1 by contact URI and Call-ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatchingMode {
    /// `0`: a contact is the same binding when its URI is the same.
    #[default]
    ContactOnly,
    /// `1`: the URI and the Call-ID must both be the same.
    ContactCallid,
}

/// The names of the `location` columns (the `*_column` modparams).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// `contactid_column` (default `contact_id`).
    pub contact_id: String,
    /// `user_column` (default `username`).
    pub user: String,
    /// `domain_column` (default `domain`).
    pub domain: String,
    /// `contact_column` (default `contact`).
    pub contact: String,
    /// `expires_column` (default `expires`).
    pub expires: String,
    /// `q_column` (default `q`).
    pub q: String,
    /// `callid_column` (default `callid`).
    pub callid: String,
    /// `cseq_column` (default `cseq`).
    pub cseq: String,
    /// `methods_column` (default `methods`).
    pub methods: String,
    /// `flags_column` (default `flags`).
    pub flags: String,
    /// `cflags_column` (default `cflags`).
    pub cflags: String,
    /// `user_agent_column` (default `user_agent`).
    pub user_agent: String,
    /// `received_column` (default `received`).
    pub received: String,
    /// `socket_column` (default `socket`).
    pub socket: String,
    /// `path_column` (default `path`).
    pub path: String,
    /// `sip_instance_column` (default `sip_instance`).
    pub sip_instance: String,
    /// `kv_store_column` (default `kv_store`).
    pub kv_store: String,
    /// `attr_column` (default `attr`).
    pub attr: String,
    /// `last_mod_column` (default `last_modified`).
    pub last_modified: String,
}

impl Default for Columns {
    fn default() -> Self {
        Self {
            contact_id: "contact_id".into(),
            user: "username".into(),
            domain: "domain".into(),
            contact: "contact".into(),
            expires: "expires".into(),
            q: "q".into(),
            callid: "callid".into(),
            cseq: "cseq".into(),
            methods: "methods".into(),
            flags: "flags".into(),
            cflags: "cflags".into(),
            user_agent: "user_agent".into(),
            received: "received".into(),
            socket: "socket".into(),
            path: "path".into(),
            sip_instance: "sip_instance".into(),
            kv_store: "kv_store".into(),
            attr: "attr".into(),
            last_modified: "last_modified".into(),
        }
    }
}

/// Every usrloc modparam, with OpenSIPS 3.5's defaults.
///
/// Honoured: `working_mode_preset`, `cluster_mode` (`none` only), `restart_persistency`,
/// `sql_write_mode`, `db_mode`, `db_url`, the `*_column` names, `use_domain`, `hash_size`,
/// `timer_interval`, `matching_mode`, `cseq_delay` (exposed for the registrar),
/// `desc_time_order`, `max_contact_delete` (batching of write-back deletes), `nat_bflag`
/// (exposed for the registrar/nathelper), `regen_broken_contactid`.
/// Accepted and without effect here (no clustering, no pinging in usrloc): `location_cluster`,
/// `skip_replicated_db_ops`, `pinging_mode`, `contact_refresh_timer`, `latency_event_min_us`,
/// `latency_event_min_us_delta`, `shared_pinging`, `rr_persist`, `pn_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// The working mode.
    pub mode: WorkingMode,
    /// `db_url` (or the core's `db_default_url`, filled in by the host).
    pub db_url: Option<String>,
    /// `use_domain`: AoRs are `user@domain` (true) or `user`.
    pub use_domain: bool,
    /// `hash_size`: the tables have 2^hash_size shards (default 9).
    pub hash_size: u32,
    /// `timer_interval` seconds (default 60).
    pub timer_interval: u64,
    /// `matching_mode`.
    pub matching_mode: MatchingMode,
    /// `cseq_delay` seconds (default 20): a retransmitted REGISTER within this time is
    /// accepted with the same CSeq (read by the registrar).
    pub cseq_delay: u32,
    /// `desc_time_order`: newest contact first in a record.
    pub desc_time_order: bool,
    /// `max_contact_delete` (default 10): contacts deleted per statement in write-back.
    pub max_contact_delete: u32,
    /// `nat_bflag`: the branch flag name (or index) marking contacts behind NAT.
    pub nat_bflag: Option<String>,
    /// `regen_broken_contactid`: contact ids loaded from the database that do not fit this
    /// instance's scheme are regenerated (and the row rewritten).
    pub regen_broken_contactid: bool,
    /// `skip_replicated_db_ops` (accepted; no clustering).
    pub skip_replicated_db_ops: bool,
    /// `pinging_mode` (accepted; pinging belongs to nathelper).
    pub pinging_mode: String,
    /// `contact_refresh_timer` (accepted; `E_UL_CONTACT_REFRESH` is raised by push
    /// notification support, which sipox does not have).
    pub contact_refresh_timer: u32,
    /// Column names.
    pub columns: Columns,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            mode: WorkingMode::NoDb,
            db_url: None,
            use_domain: false,
            hash_size: 9,
            timer_interval: 60,
            matching_mode: MatchingMode::ContactOnly,
            cseq_delay: 20,
            desc_time_order: false,
            max_contact_delete: 10,
            nat_bflag: None,
            regen_broken_contactid: false,
            skip_replicated_db_ops: false,
            pinging_mode: "ownership".into(),
            contact_refresh_timer: 0,
            columns: Columns::default(),
        }
    }
}

impl Params {
    /// Parses the `modparam("usrloc", name, value)` list (in order; later ones win).
    pub fn from_modparams(list: &[(String, Value)]) -> Result<Self, UsrlocError> {
        let mut p = Self::default();
        let mut preset: Option<WorkingMode> = None;
        let mut db_mode: Option<i64> = None;
        let mut cluster_mode: Option<String> = None;
        let mut restart_persistency: Option<String> = None;
        let mut sql_write_mode: Option<String> = None;
        for (name, v) in list {
            let bad = |why: &str| UsrlocError::Param {
                name: name.clone(),
                why: why.to_owned(),
            };
            let s = || str_of(v).ok_or_else(|| bad("expected a string"));
            let i = || int_of(v).ok_or_else(|| bad("expected an integer"));
            match name.as_str() {
                "working_mode_preset" => {
                    preset = Some(match s()?.as_str() {
                        "single-instance-no-db" => WorkingMode::NoDb,
                        "single-instance-sql-write-through" => WorkingMode::WriteThrough,
                        "single-instance-sql-write-back" => WorkingMode::WriteBack,
                        "single-instance-sql-only" | "sql-only" => WorkingMode::SqlOnly,
                        other => {
                            return Err(bad(&format!(
                                "unknown or unsupported (clustered) preset {other:?}"
                            )));
                        }
                    });
                }
                "cluster_mode" => cluster_mode = Some(s()?),
                "restart_persistency" => restart_persistency = Some(s()?),
                "sql_write_mode" => sql_write_mode = Some(s()?),
                "db_mode" => db_mode = Some(i()?),
                "db_url" => p.db_url = Some(s()?),
                "use_domain" => p.use_domain = i()? != 0,
                "hash_size" => {
                    let n = i()?;
                    if !(1..=16).contains(&n) {
                        return Err(bad("must be 1..16"));
                    }
                    p.hash_size = n as u32;
                }
                "timer_interval" => {
                    let n = i()?;
                    if n <= 0 {
                        return Err(bad("must be positive"));
                    }
                    p.timer_interval = n as u64;
                }
                "matching_mode" => {
                    p.matching_mode = match i()? {
                        0 => MatchingMode::ContactOnly,
                        1 => MatchingMode::ContactCallid,
                        _ => return Err(bad("must be 0 or 1")),
                    }
                }
                "cseq_delay" => p.cseq_delay = i()?.max(0) as u32,
                "desc_time_order" => p.desc_time_order = i()? != 0,
                "max_contact_delete" => p.max_contact_delete = i()?.max(1) as u32,
                "nat_bflag" => p.nat_bflag = Some(s()?),
                "regen_broken_contactid" => p.regen_broken_contactid = i()? != 0,
                "skip_replicated_db_ops" => p.skip_replicated_db_ops = i()? != 0,
                "pinging_mode" => p.pinging_mode = s()?,
                "contact_refresh_timer" => p.contact_refresh_timer = i()?.max(0) as u32,
                "location_cluster"
                | "latency_event_min_us"
                | "latency_event_min_us_delta"
                | "shared_pinging"
                | "rr_persist"
                | "pn_enable"
                | "pn_enable_purr"
                | "pn_providers"
                | "pn_ct_match_params"
                | "pn_pnsreg_interval"
                | "pn_trigger_interval"
                | "pn_skip_pn_interval"
                | "pn_refresh_timeout"
                | "cachedb_url" => {}
                col => {
                    let c = &mut p.columns;
                    let slot = match col {
                        "contactid_column" => &mut c.contact_id,
                        "user_column" => &mut c.user,
                        "domain_column" => &mut c.domain,
                        "contact_column" => &mut c.contact,
                        "expires_column" => &mut c.expires,
                        "q_column" => &mut c.q,
                        "callid_column" => &mut c.callid,
                        "cseq_column" => &mut c.cseq,
                        "methods_column" => &mut c.methods,
                        "flags_column" => &mut c.flags,
                        "cflags_column" => &mut c.cflags,
                        "user_agent_column" => &mut c.user_agent,
                        "received_column" => &mut c.received,
                        "socket_column" => &mut c.socket,
                        "path_column" => &mut c.path,
                        "sip_instance_column" => &mut c.sip_instance,
                        "kv_store_column" => &mut c.kv_store,
                        "attr_column" => &mut c.attr,
                        "last_mod_column" | "last_modified_column" => &mut c.last_modified,
                        _ => return Err(bad("unknown usrloc parameter")),
                    };
                    *slot = s()?;
                }
            }
        }
        p.mode = resolve_mode(
            preset,
            db_mode,
            cluster_mode.as_deref(),
            restart_persistency.as_deref(),
            sql_write_mode.as_deref(),
        )?;
        Ok(p)
    }
}

fn resolve_mode(
    preset: Option<WorkingMode>,
    db_mode: Option<i64>,
    cluster_mode: Option<&str>,
    restart_persistency: Option<&str>,
    sql_write_mode: Option<&str>,
) -> Result<WorkingMode, UsrlocError> {
    let err = |name: &str, why: String| UsrlocError::Param {
        name: name.to_owned(),
        why,
    };
    if let Some(m) = preset {
        return Ok(m);
    }
    if cluster_mode.is_some() || restart_persistency.is_some() || sql_write_mode.is_some() {
        match cluster_mode.unwrap_or("none") {
            "none" => {}
            "sql-only" => return Ok(WorkingMode::SqlOnly),
            other => {
                return Err(err(
                    "cluster_mode",
                    format!("{other:?}: clustering is not supported by sipox"),
                ));
            }
        }
        return match restart_persistency.unwrap_or("none") {
            "none" => Ok(WorkingMode::NoDb),
            "load-from-sql" => match sql_write_mode.unwrap_or("write-through") {
                "write-through" => Ok(WorkingMode::WriteThrough),
                "write-back" => Ok(WorkingMode::WriteBack),
                other => Err(err("sql_write_mode", format!("unknown value {other:?}"))),
            },
            other => Err(err(
                "restart_persistency",
                format!("unknown or unsupported value {other:?}"),
            )),
        };
    }
    match db_mode {
        None | Some(0) => Ok(WorkingMode::NoDb),
        Some(1) => Ok(WorkingMode::WriteThrough),
        Some(2) => Ok(WorkingMode::WriteBack),
        Some(3) => Ok(WorkingMode::SqlOnly),
        Some(n) => Err(err("db_mode", format!("{n} is not 0..3"))),
    }
}

fn str_of(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) | Value::Ident(s) | Value::Word(s) | Value::Ip(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Str(s) | Value::Ident(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp(list: &[(&str, Value)]) -> Result<Params, UsrlocError> {
        let v: Vec<(String, Value)> = list
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect();
        Params::from_modparams(&v)
    }

    #[test]
    fn defaults_and_presets() {
        let p = mp(&[]).unwrap();
        assert_eq!(p.mode, WorkingMode::NoDb);
        assert_eq!(p.hash_size, 9);
        assert_eq!(p.timer_interval, 60);
        let p = mp(&[(
            "working_mode_preset",
            Value::Str("single-instance-sql-write-back".into()),
        )])
        .unwrap();
        assert_eq!(p.mode, WorkingMode::WriteBack);
        let p = mp(&[("working_mode_preset", Value::Str("sql-only".into()))]).unwrap();
        assert_eq!(p.mode, WorkingMode::SqlOnly);
        assert!(mp(&[("working_mode_preset", Value::Str("full-sharing".into()))]).is_err());
    }

    #[test]
    fn trio_and_db_mode() {
        let p = mp(&[
            ("restart_persistency", Value::Str("load-from-sql".into())),
            ("sql_write_mode", Value::Str("write-back".into())),
        ])
        .unwrap();
        assert_eq!(p.mode, WorkingMode::WriteBack);
        let p = mp(&[("restart_persistency", Value::Str("load-from-sql".into()))]).unwrap();
        assert_eq!(p.mode, WorkingMode::WriteThrough);
        let p = mp(&[("cluster_mode", Value::Str("sql-only".into()))]).unwrap();
        assert_eq!(p.mode, WorkingMode::SqlOnly);
        for (n, m) in [
            (0, WorkingMode::NoDb),
            (1, WorkingMode::WriteThrough),
            (2, WorkingMode::WriteBack),
            (3, WorkingMode::SqlOnly),
        ] {
            assert_eq!(mp(&[("db_mode", Value::Int(n))]).unwrap().mode, m);
        }
        assert!(mp(&[("db_mode", Value::Int(4))]).is_err());
    }

    #[test]
    fn columns_and_others() {
        let p = mp(&[
            ("user_column", Value::Str("usr".into())),
            ("use_domain", Value::Int(1)),
            ("hash_size", Value::Int(4)),
            ("matching_mode", Value::Int(1)),
            ("pinging_mode", Value::Str("cseq".into())),
        ])
        .unwrap();
        assert_eq!(p.columns.user, "usr");
        assert!(p.use_domain);
        assert_eq!(p.hash_size, 4);
        assert_eq!(p.matching_mode, MatchingMode::ContactCallid);
        assert!(mp(&[("no_such_param", Value::Int(1))]).is_err());
    }
}
