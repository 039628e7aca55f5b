//! The `auth_db` module: credentials checked against a subscriber table (one SELECT by
//! username and, with `use_domain`, domain, of only the HA1 column the request's algorithm
//! needs plus `load_credentials`), and the uri-table checks.

use std::sync::Arc;

use sipox_cfg_syntax::Value;
use sipox_db::{Cond, Db, Select};
use sipox_digest::Algorithm;
use sipox_script::{
    Args, Call, FixupError, Fmt, FnDef, Kind, ModuleDef, MsgCx, PvRef, Ret, Sig, Stop, route_mask,
};

use crate::auth::{
    AUTH_ERROR, AUTHORIZED, Auth, HfKind, Pre, Secret, USER_UNKNOWN, authorized_creds,
};
use crate::params;

/// OpenSIPS 3.5's version of the `subscriber` table.
const SUBSCRIBER_VERSION: i64 = 8;
/// OpenSIPS 3.5's version of the `uri` table.
const URI_VERSION: i64 = 2;
/// OpenSIPS's default `db_url` for auth_db.
const DEFAULT_DB_URL: &str = "mysql://opensipsro:opensipsro@localhost/opensips";

/// The `auth_db` module's state: the database handle and the column names.
#[derive(Debug)]
pub struct AuthDb {
    auth: Arc<Auth>,
    db: Arc<dyn Db>,
    calculate_ha1: bool,
    password_column: String,
    sha256_column: String,
    sha512t256_column: String,
    user_column: String,
    domain_column: String,
    use_domain: bool,
    skip_version_check: bool,
    /// `(avp spec, column)` pairs from `load_credentials`.
    credentials: Vec<(String, String)>,
    uri_user_column: String,
    uri_domain_column: String,
    uri_uriuser_column: String,
}

impl AuthDb {
    /// Builds the state from `modparam("auth_db", ...)`: `db_url` (else `default_url`, the
    /// core's `db_default_url`, else OpenSIPS's default), `calculate_ha1` (0),
    /// `password_column` (`ha1`; `hash_column` is accepted as a synonym),
    /// `hash_column_sha256`, `hash_column_sha512t256`, `user_column`, `domain_column`,
    /// `use_domain` (1), `load_credentials` (`$avp(x)=col;col2`), `skip_version_check`,
    /// `uri_user_column`, `uri_domain_column`, `uri_uriuser_column`. Connects at once.
    pub fn from_modparams(
        p: &[(String, Value)],
        default_url: Option<&str>,
        auth: Arc<Auth>,
    ) -> Result<Arc<Self>, String> {
        let url = params::string(p, "db_url")?
            .or_else(|| default_url.map(str::to_owned))
            .unwrap_or_else(|| DEFAULT_DB_URL.to_owned());
        let db = sipox_db::connect(&url).map_err(|e| format!("auth_db: db_url {url}: {e}"))?;
        Self::with_db(p, db, auth)
    }

    /// Like [`AuthDb::from_modparams`] over an open database (`db_url` is ignored).
    pub fn with_db(
        p: &[(String, Value)],
        db: Arc<dyn Db>,
        auth: Arc<Auth>,
    ) -> Result<Arc<Self>, String> {
        let s = |name: &str, def: &str| -> Result<String, String> {
            Ok(params::string(p, name)?.unwrap_or_else(|| def.to_owned()))
        };
        let password_column = match params::string(p, "password_column")? {
            Some(c) => c,
            None => s("hash_column", "ha1")?,
        };
        let credentials = parse_credentials(&s("load_credentials", "")?)?;
        Ok(Arc::new(Self {
            auth,
            db,
            calculate_ha1: params::int(p, "calculate_ha1")?.unwrap_or(0) != 0,
            password_column,
            sha256_column: s("hash_column_sha256", "ha1_sha256")?,
            sha512t256_column: s("hash_column_sha512t256", "ha1_sha512t256")?,
            user_column: s("user_column", "username")?,
            domain_column: s("domain_column", "domain")?,
            use_domain: params::int(p, "use_domain")?.unwrap_or(1) != 0,
            skip_version_check: params::int(p, "skip_version_check")?.unwrap_or(0) != 0,
            credentials,
            uri_user_column: s("uri_user_column", "username")?,
            uri_domain_column: s("uri_domain_column", "domain")?,
            uri_uriuser_column: s("uri_uriuser_column", "uri_user")?,
        }))
    }

    /// Checks the version of a table a function names (unless `skip_version_check`).
    fn check_version(&self, table: &str, expected: i64) -> Result<(), String> {
        if self.skip_version_check {
            return Ok(());
        }
        sipox_db::check_table_version(&*self.db, table, expected).map_err(|e| {
            format!(
                "auth_db: table {table}: {e} (create it with the OpenSIPS 3.5 schema, or set \
                 modparam(\"auth_db\", \"skip_version_check\", 1) for a custom table)"
            )
        })
    }

    /// The HA1 column for an algorithm (the password column when HA1 is calculated).
    fn hash_column(&self, alg: Algorithm) -> &str {
        if self.calculate_ha1 {
            return &self.password_column;
        }
        match alg.base() {
            Algorithm::Sha256 => &self.sha256_column,
            Algorithm::Sha512_256 => &self.sha512t256_column,
            _ => &self.password_column,
        }
    }
}

/// `load_credentials`: `credential (';' credential)*`, `credential = avp '=' column | column`.
fn parse_credentials(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut v = Vec::new();
    for item in s.split(';') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (avp, col) = match item.split_once('=') {
            Some((a, c)) => (a.trim().to_owned(), c.trim().to_owned()),
            None => (format!("$avp({item})"), item.to_owned()),
        };
        if col.is_empty() || !avp.starts_with('$') {
            return Err(format!("auth_db: bad load_credentials item \"{item}\""));
        }
        v.push((avp, col));
    }
    Ok(v)
}

/// The module table of `auth_db`.
pub(crate) fn module_def() -> ModuleDef {
    use route_mask::{FAILURE, LOCAL, REQUEST};
    ModuleDef {
        name: "auth_db",
        params: vec![
            "db_url",
            "calculate_ha1",
            "password_column",
            "hash_column",
            "hash_column_sha256",
            "hash_column_sha512t256",
            "use_domain",
            "load_credentials",
            "user_column",
            "domain_column",
            "skip_version_check",
            "uri_user_column",
            "uri_domain_column",
            "uri_uriuser_column",
        ],
        fns: vec![
            FnDef {
                sig: Sig::new("auth_db", "www_authorize", "s,s", REQUEST),
                build: Some(build_www),
            },
            FnDef {
                sig: Sig::new("auth_db", "proxy_authorize", "s,s", REQUEST),
                build: Some(build_proxy),
            },
            FnDef {
                sig: Sig::new(
                    "auth_db",
                    "db_does_uri_exist",
                    "s,s",
                    REQUEST | FAILURE | LOCAL,
                ),
                build: Some(build_uri_exist),
            },
            FnDef {
                sig: Sig::new("auth_db", "db_is_to_authorized", "s", REQUEST),
                build: Some(build_is_to),
            },
            FnDef {
                sig: Sig::new("auth_db", "db_is_from_authorized", "s", REQUEST),
                build: Some(build_is_from),
            },
            FnDef {
                sig: Sig::new(
                    "auth_db",
                    "db_get_auth_id",
                    "s,s,v,v",
                    REQUEST | FAILURE | LOCAL,
                ),
                build: Some(build_get_auth_id),
            },
        ],
    }
}

fn instance(a: &Args<'_>) -> Result<Arc<AuthDb>, FixupError> {
    a.cx.instances().require::<AuthDb>("auth_db")
}

/// A constant table-name argument whose version is checked.
fn table(a: &mut Args<'_>, i: usize, db: &AuthDb, version: i64) -> Result<String, FixupError> {
    let t = a
        .static_str(i)
        .ok_or_else(|| FixupError::arg(i, "the table name must be a constant string"))?;
    let t = String::from_utf8(t.into_vec())
        .map_err(|_| FixupError::arg(i, "the table name is not UTF-8"))?;
    db.check_version(&t, version)
        .map_err(|e| FixupError::arg(i, e))?;
    Ok(t)
}

// ----- www_authorize / proxy_authorize -----

#[derive(Debug)]
struct DbAuthorize {
    m: Arc<AuthDb>,
    kind: HfKind,
    realm: Fmt,
    table: String,
    /// Compiled `load_credentials` targets, in the order of `m.credentials`.
    avps: Vec<PvRef>,
}

fn build_authorize(mut a: Args<'_>, kind: HfKind) -> Result<Box<dyn Call>, FixupError> {
    let m = instance(&a)?;
    let realm = a.fmt(0).unwrap_or_else(|| Fmt::literal(b""));
    let table = table(&mut a, 1, &m, SUBSCRIBER_VERSION)?;
    let mut avps = Vec::with_capacity(m.credentials.len());
    for (spec, _) in &m.credentials {
        avps.push(a.cx.pv_spec(spec).map_err(|e| FixupError {
            message: format!("auth_db: load_credentials: {e}"),
            arg: None,
        })?);
    }
    Ok(Box::new(DbAuthorize {
        m,
        kind,
        realm,
        table,
        avps,
    }))
}

fn build_www(a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    build_authorize(a, HfKind::Www)
}

fn build_proxy(a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    build_authorize(a, HfKind::Proxy)
}

impl Call for DbAuthorize {
    fn call(&self, cx: &mut MsgCx) -> Result<Ret, Stop> {
        let m = &*self.m;
        let c = match m.auth.pre_auth(cx, &self.realm, self.kind) {
            Pre::Done(r) => return r,
            Pre::Check(c) => c,
        };
        let (Ok(user), Ok(domain)) = (
            std::str::from_utf8(c.user()),
            std::str::from_utf8(c.domain()),
        ) else {
            return Ok(USER_UNKNOWN);
        };
        let hash_col = m.hash_column(c.algorithm());
        let mut cols: Vec<&str> = Vec::with_capacity(1 + m.credentials.len());
        cols.push(hash_col);
        cols.extend(m.credentials.iter().map(|(_, c)| c.as_str()));
        let mut conds = vec![Cond::eq(&m.user_column, user)];
        if m.use_domain {
            conds.push(Cond::eq(&m.domain_column, domain));
        }
        let rows = match m.db.select(&Select {
            table: &self.table,
            columns: &cols,
            conds,
            limit: Some(1),
            ..Select::default()
        }) {
            Ok(r) => r,
            Err(e) => {
                cx.log(
                    -1,
                    format!("ERROR:auth_db: query on {} failed: {e}", self.table).as_bytes(),
                );
                return Ok(AUTH_ERROR);
            }
        };
        let Some(row) = rows.rows.first() else {
            return Ok(USER_UNKNOWN);
        };
        let secret = row.first().and_then(db_text).unwrap_or_default();
        let ret = if m.calculate_ha1 {
            m.auth.verify(cx, &c, Secret::Password(secret.as_bytes()))
        } else {
            m.auth.verify(cx, &c, Secret::Ha1(secret.as_bytes()))
        };
        if ret == AUTHORIZED {
            let mut b = cx.take_buf();
            for (pv, v) in self.avps.iter().zip(row.iter().skip(1)) {
                b.clear();
                match v {
                    sipox_db::Value::Null => continue,
                    sipox_db::Value::Int(i) => cx.set_var(pv, Kind::Int(*i), &mut b),
                    other => {
                        b.extend_from_slice(db_text(other).unwrap_or_default().as_bytes());
                        cx.set_var(pv, Kind::Str, &mut b);
                    }
                }
            }
            cx.give_buf(b);
        }
        Ok(ret)
    }
}

/// Text of a database value (numbers printed).
fn db_text(v: &sipox_db::Value) -> Option<String> {
    match v {
        sipox_db::Value::Null => None,
        sipox_db::Value::Int(i) | sipox_db::Value::DateTime(i) => Some(i.to_string()),
        sipox_db::Value::Double(d) => Some(d.to_string()),
        other => other.as_str().map(str::to_owned),
    }
}

// ----- db_does_uri_exist -----

#[derive(Debug)]
struct UriExist {
    m: Arc<AuthDb>,
    uri: Fmt,
    table: String,
}

fn build_uri_exist(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    let m = instance(&a)?;
    let uri = a.fmt(0).unwrap_or_else(|| Fmt::literal(b""));
    let table = table(&mut a, 1, &m, SUBSCRIBER_VERSION)?;
    Ok(Box::new(UriExist { m, uri, table }))
}

/// `(user, host)` of a SIP URI.
fn uri_parts(s: &[u8]) -> Option<(String, String)> {
    let u = sipox_sip_msg::uri(s).ok()?;
    let user = String::from_utf8(u.user().unwrap_or_default().to_vec()).ok()?;
    let host = String::from_utf8(u.host().to_vec()).ok()?;
    Some((user, host))
}

impl Call for UriExist {
    fn call(&self, cx: &mut MsgCx) -> Result<Ret, Stop> {
        let m = &*self.m;
        let mut b = cx.take_buf();
        cx.eval_fmt(&self.uri, &mut b);
        let parts = uri_parts(&b);
        cx.give_buf(b);
        let Some((user, host)) = parts else {
            return Ok(Ret(-1));
        };
        let mut conds = vec![Cond::eq(&m.user_column, user)];
        if m.use_domain {
            conds.push(Cond::eq(&m.domain_column, host));
        }
        match m.db.select(&Select {
            table: &self.table,
            columns: &[&m.user_column],
            conds,
            limit: Some(1),
            ..Select::default()
        }) {
            Err(e) => {
                cx.log(-1, format!("ERROR:auth_db: query failed: {e}").as_bytes());
                Ok(Ret(-4))
            }
            Ok(r) if r.rows.is_empty() => Ok(Ret(-5)),
            Ok(_) => Ok(AUTHORIZED),
        }
    }
}

// ----- db_is_to_authorized / db_is_from_authorized -----

#[derive(Debug)]
struct IsAuthorized {
    m: Arc<AuthDb>,
    table: String,
    to: bool,
}

fn build_is(mut a: Args<'_>, to: bool) -> Result<Box<dyn Call>, FixupError> {
    let m = instance(&a)?;
    let table = table(&mut a, 0, &m, URI_VERSION)?;
    Ok(Box::new(IsAuthorized { m, table, to }))
}

fn build_is_to(a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    build_is(a, true)
}

fn build_is_from(a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    build_is(a, false)
}

impl Call for IsAuthorized {
    fn call(&self, cx: &mut MsgCx) -> Result<Ret, Stop> {
        let m = &*self.m;
        let Some(c) = authorized_creds(cx) else {
            cx.log(
                -1,
                b"ERROR:auth_db: no authorized credentials found (call www/proxy_authorize first)",
            );
            return Ok(Ret(-2));
        };
        let Some(msg) = cx.msg() else {
            return Ok(Ret(-1));
        };
        let na = if self.to { msg.to() } else { msg.from() };
        let Ok(na) = na else {
            return Ok(Ret(-1));
        };
        let uri_user = na.uri().user().unwrap_or_default();
        if uri_user.is_empty() {
            return Ok(Ret(-4));
        }
        let (Ok(uri_user), Ok(user), Ok(domain)) = (
            std::str::from_utf8(uri_user),
            std::str::from_utf8(c.user()),
            std::str::from_utf8(c.domain()),
        ) else {
            return Ok(Ret(-9));
        };
        let conds = vec![
            Cond::eq(&m.uri_user_column, user),
            Cond::eq(&m.uri_domain_column, domain),
            Cond::eq(&m.uri_uriuser_column, uri_user),
        ];
        match m.db.select(&Select {
            table: &self.table,
            columns: &[&m.uri_user_column],
            conds,
            limit: Some(1),
            ..Select::default()
        }) {
            Err(e) => {
                cx.log(-1, format!("ERROR:auth_db: query failed: {e}").as_bytes());
                Ok(Ret(-8))
            }
            Ok(r) if r.rows.is_empty() => Ok(Ret(-9)),
            Ok(_) => Ok(AUTHORIZED),
        }
    }
}

// ----- db_get_auth_id -----

#[derive(Debug)]
struct GetAuthId {
    m: Arc<AuthDb>,
    table: String,
    uri: Fmt,
    user_out: PvRef,
    realm_out: PvRef,
}

fn build_get_auth_id(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    let m = instance(&a)?;
    let table = table(&mut a, 0, &m, URI_VERSION)?;
    let uri = a.fmt(1).unwrap_or_else(|| Fmt::literal(b""));
    let user_out = a
        .var(2)
        .ok_or_else(|| FixupError::arg(2, "an output variable is needed"))?;
    let realm_out = a
        .var(3)
        .ok_or_else(|| FixupError::arg(3, "an output variable is needed"))?;
    Ok(Box::new(GetAuthId {
        m,
        table,
        uri,
        user_out: *user_out,
        realm_out: *realm_out,
    }))
}

impl Call for GetAuthId {
    fn call(&self, cx: &mut MsgCx) -> Result<Ret, Stop> {
        let m = &*self.m;
        let mut b = cx.take_buf();
        cx.eval_fmt(&self.uri, &mut b);
        let parts = uri_parts(&b);
        let Some((user, host)) = parts.filter(|(u, _)| !u.is_empty()) else {
            cx.give_buf(b);
            return Ok(Ret(-1));
        };
        let mut conds = vec![Cond::eq(&m.uri_uriuser_column, user)];
        if m.use_domain {
            conds.push(Cond::eq(&m.uri_domain_column, host));
        }
        let rows = m.db.select(&Select {
            table: &self.table,
            columns: &[&m.uri_user_column, &m.uri_domain_column],
            conds,
            limit: Some(2),
            ..Select::default()
        });
        let ret = match rows {
            Err(e) => {
                cx.log(-1, format!("ERROR:auth_db: query failed: {e}").as_bytes());
                Ret(-8)
            }
            Ok(r) => match r.rows.first() {
                None => Ret(-4),
                Some(row) => {
                    if r.rows.len() > 1 {
                        cx.log(
                            1,
                            b"WARNING:auth_db: several uri rows match; consider use_domain",
                        );
                    }
                    let text = |i: usize| row.get(i).and_then(db_text).unwrap_or_default();
                    let (au, ar) = (text(0), text(1));
                    b.clear();
                    b.extend_from_slice(au.as_bytes());
                    cx.set_var(&self.user_out, Kind::Str, &mut b);
                    b.clear();
                    b.extend_from_slice(ar.as_bytes());
                    cx.set_var(&self.realm_out, Kind::Str, &mut b);
                    AUTHORIZED
                }
            },
        };
        cx.give_buf(b);
        Ok(ret)
    }
}
