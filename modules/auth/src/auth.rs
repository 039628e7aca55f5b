//! The `auth` module: its state, the challenge and the checks every authorize function shares
//! (finding the credentials of a realm, their sanity, the nonce), the pseudo-variable
//! authorize functions and `consume_credentials`.

use std::sync::Arc;

use sipox_cfg_syntax::Value;
use sipox_digest::{
    Algorithm, Check, HashHex, NonceKey, NonceParams, NonceTracker, Qop, QopOffer, UseError,
    parse_nc,
};
use sipox_script::{
    Args, Call, FixupError, Fmt, FnDef, Kind, ModuleDef, MsgCx, MsgState, PvRef, Ret, Sig, Stop,
    route_mask,
};
use sipox_sip_msg::{HeaderKind, Method, SipMsg, parse_auth, unquote};

use crate::params;

/// Slots of the nonce-count tracker: OpenSIPS sizes its index window for 100000 nonces per
/// `nonce_expire`.
const TRACKER_SLOTS: usize = 1 << 17;

/// The `auth` module's state, built once at start from its modparams.
#[derive(Debug)]
pub struct Auth {
    key: NonceKey,
    nonce_expire: i64,
    tracker: Option<NonceTracker>,
    realm_prefix: Vec<u8>,
    calculate_ha1: bool,
    username_spec: Option<String>,
    password_spec: Option<String>,
}

impl Auth {
    /// Builds the state from `modparam("auth", ...)` values: `secret` (default: 32 random
    /// bytes), `nonce_expire` (30 s), `disable_nonce_check` (0), `realm_prefix`,
    /// `calculate_ha1` (0), `username_spec`, `password_spec`. `random` fills the default
    /// secret.
    pub fn from_modparams(
        p: &[(String, Value)],
        random: impl FnOnce(&mut [u8]),
    ) -> Result<Arc<Self>, String> {
        let key = match params::string(p, "secret")? {
            Some(s) if !s.is_empty() => NonceKey::new(s.as_bytes()),
            _ => {
                let mut b = [0u8; 32];
                random(&mut b);
                NonceKey::new(&b)
            }
        };
        let nonce_expire = params::int(p, "nonce_expire")?.unwrap_or(30);
        if nonce_expire <= 0 {
            return Err(format!(
                "auth: nonce_expire must be positive, not {nonce_expire}"
            ));
        }
        let disable = params::int(p, "disable_nonce_check")?.unwrap_or(0) != 0;
        Ok(Arc::new(Self {
            key,
            nonce_expire,
            tracker: (!disable).then(|| NonceTracker::new(TRACKER_SLOTS)),
            realm_prefix: params::string(p, "realm_prefix")?
                .unwrap_or_default()
                .into_bytes(),
            calculate_ha1: params::int(p, "calculate_ha1")?.unwrap_or(0) != 0,
            username_spec: params::string(p, "username_spec")?.filter(|s| !s.is_empty()),
            password_spec: params::string(p, "password_spec")?.filter(|s| !s.is_empty()),
        }))
    }

    /// The nonce lifetime in seconds.
    pub fn nonce_expire(&self) -> i64 {
        self.nonce_expire
    }
}

/// The module table of `auth`.
pub(crate) fn module_def() -> ModuleDef {
    let r = route_mask::REQUEST;
    ModuleDef {
        name: "auth",
        params: vec![
            "secret",
            "nonce_expire",
            "disable_nonce_check",
            "calculate_ha1",
            "username_spec",
            "password_spec",
            "realm_prefix",
        ],
        fns: vec![
            FnDef {
                sig: Sig::new("auth", "www_challenge", "s,s?,s?", r),
                build: Some(build_www_challenge),
            },
            FnDef {
                sig: Sig::new("auth", "proxy_challenge", "s,s?,s?", r),
                build: Some(build_proxy_challenge),
            },
            FnDef {
                sig: Sig::new("auth", "pv_www_authorize", "s", r),
                build: Some(build_pv_www),
            },
            FnDef {
                sig: Sig::new("auth", "pv_proxy_authorize", "s", r),
                build: Some(build_pv_proxy),
            },
            FnDef {
                sig: Sig::new("auth", "consume_credentials", "", r),
                build: Some(build_consume),
            },
        ],
    }
}

/// `www_*` (Authorization, 401) or `proxy_*` (Proxy-Authorization, 407).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HfKind {
    Www,
    Proxy,
}

impl HfKind {
    fn credentials(self) -> HeaderKind {
        match self {
            Self::Www => HeaderKind::Authorization,
            Self::Proxy => HeaderKind::ProxyAuthorization,
        }
    }
}

/// What the authorize functions remember about the current message: which credentials they
/// used (for `consume_credentials` and the uri checks) and whether their nonce was stale (for
/// the next challenge's `stale=true`).
#[derive(Debug, Default)]
pub(crate) struct AuthMsg {
    pub(crate) authorized: Option<(HfKind, usize)>,
    pub(crate) stale: bool,
}

impl MsgState for AuthMsg {
    fn reset(&mut self) {
        self.authorized = None;
        self.stale = false;
    }
}

/// The credentials found for a realm (copied out of the message).
#[derive(Debug, Default)]
pub(crate) struct Creds {
    pub(crate) username: Vec<u8>,
    pub(crate) realm: Vec<u8>,
    nonce: Vec<u8>,
    uri: Vec<u8>,
    response: Vec<u8>,
    cnonce: Vec<u8>,
    nc: Vec<u8>,
    qop: Option<Qop>,
    pub(crate) alg: Option<Algorithm>,
}

impl Creds {
    /// The algorithm (absent means MD5).
    pub(crate) fn algorithm(&self) -> Algorithm {
        self.alg.unwrap_or(Algorithm::Md5)
    }

    /// The user part of the username (before `@`).
    pub(crate) fn user(&self) -> &[u8] {
        user_part(&self.username)
    }

    /// The domain: after `@` in the username, else the realm (OpenSIPS's `GET_REALM`).
    pub(crate) fn domain(&self) -> &[u8] {
        domain_part(&self.username).unwrap_or(&self.realm)
    }
}

pub(crate) fn user_part(username: &[u8]) -> &[u8] {
    username.split(|&c| c == b'@').next().unwrap_or(username)
}

pub(crate) fn domain_part(username: &[u8]) -> Option<&[u8]> {
    username
        .iter()
        .position(|&c| c == b'@')
        .map(|i| &username[i + 1..])
}

/// The result of the checks before the password.
pub(crate) enum Pre {
    /// Finished: this is the function's result.
    Done(Result<Ret, Stop>),
    /// Credentials to verify.
    Check(Creds),
}

/// The HA1 source of a check.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Secret<'a> {
    /// A plaintext password.
    Password(&'a [u8]),
    /// A stored HA1 (hex) for the credentials' algorithm.
    Ha1(&'a [u8]),
}

// auth_result codes (OpenSIPS).
pub(crate) const AUTH_ERROR: Ret = Ret(-5);
pub(crate) const NO_CREDENTIALS: Ret = Ret(-4);
pub(crate) const STALE_NONCE: Ret = Ret(-3);
pub(crate) const INVALID_PASSWORD: Ret = Ret(-2);
pub(crate) const USER_UNKNOWN: Ret = Ret(-1);
pub(crate) const AUTHORIZED: Ret = Ret(1);

impl Auth {
    /// Finds the credentials of the realm, checks them and their nonce (OpenSIPS's
    /// `pre_auth`): ACK and CANCEL are authorized outright; a malformed header gets a 400
    /// and stops the script; no credentials for the realm is -4; a nonce that is not ours,
    /// expired, issued for another algorithm or qop, or whose count was used is -3 (and
    /// the next challenge says `stale=true`).
    pub(crate) fn pre_auth(&self, cx: &mut MsgCx, realm: &Fmt, kind: HfKind) -> Pre {
        let Some(msg) = cx.msg() else {
            return Pre::Done(Ok(AUTH_ERROR));
        };
        if matches!(msg.method(), Some(Method::Ack | Method::Cancel)) {
            return Pre::Done(Ok(AUTHORIZED));
        }
        let Some(realm) = self.realm(cx, realm, kind) else {
            return Pre::Done(reply_error(cx, 400, b"Bad Request"));
        };
        let Some(msg) = cx.msg() else {
            return Pre::Done(Ok(AUTH_ERROR));
        };
        let found = match find_credentials(msg, kind, &realm) {
            Ok(Some(f)) => f,
            Ok(None) => return Pre::Done(Ok(NO_CREDENTIALS)),
            Err(()) => return Pre::Done(reply_error(cx, 400, b"Bad Request")),
        };
        let (idx, c) = found;
        if c.username.is_empty()
            || c.nonce.is_empty()
            || c.uri.is_empty()
            || c.response.is_empty()
            || (c.qop.is_some() && (c.nc.is_empty() || c.cnonce.is_empty()))
            || c.qop == Some(Qop::None)
        {
            return Pre::Done(reply_error(cx, 400, b"Bad Request"));
        }
        let now = cx.time_us().div_euclid(1_000_000);
        let fresh = self.nonce_ok(&c, now);
        if let Some(st) = cx.state::<AuthMsg>() {
            st.authorized = Some((kind, idx));
            st.stale = !fresh;
        }
        if fresh {
            Pre::Check(c)
        } else {
            Pre::Done(Ok(STALE_NONCE))
        }
    }

    fn nonce_ok(&self, c: &Creds, now: i64) -> bool {
        let Ok(p) = self.key.open(&c.nonce) else {
            return false;
        };
        if p.alg != c.algorithm() || !p.qop.accepts(c.qop.unwrap_or(Qop::None)) {
            return false;
        }
        if p.is_stale(now) {
            return false;
        }
        match &self.tracker {
            None => p.index == 0,
            Some(t) => {
                let nc = if c.qop.is_some() {
                    match parse_nc(&c.nc) {
                        Some(n) => n,
                        None => return false,
                    }
                } else {
                    1
                };
                match t.use_nc(p.index, nc) {
                    Ok(()) => true,
                    Err(UseError::Unknown | UseError::Replay) => false,
                    Err(_) => false,
                }
            }
        }
    }

    /// Checks the response: 1 when right, -2 when wrong, -5 when the stored HA1 does not fit
    /// the algorithm.
    pub(crate) fn verify(&self, cx: &mut MsgCx, c: &Creds, secret: Secret<'_>) -> Ret {
        let alg = c.algorithm();
        let ha1 = match secret {
            Secret::Password(pw) => sipox_digest::ha1(alg, &c.username, &c.realm, pw),
            Secret::Ha1(h) => match HashHex::from_hex(alg.base(), h) {
                Some(h) => h,
                None => {
                    cx.log(
                        -1,
                        format!(
                            "ERROR:auth: stored HA1 does not fit {} ({} hex digits expected)",
                            alg.name(),
                            alg.hex_len()
                        )
                        .as_bytes(),
                    );
                    return AUTH_ERROR;
                }
            },
        };
        let Some(msg) = cx.msg() else {
            return AUTH_ERROR;
        };
        let ok = Check {
            alg,
            ha1: &ha1,
            method: msg.method_bytes(),
            uri: &c.uri,
            nonce: &c.nonce,
            qop: c.qop.unwrap_or(Qop::None),
            nc: &c.nc,
            cnonce: &c.cnonce,
            body: msg.body(),
            response: &c.response,
        }
        .verify();
        if ok { AUTHORIZED } else { INVALID_PASSWORD }
    }

    /// The realm argument, or when empty the host of To (REGISTER with Authorization) or
    /// From, less `realm_prefix`.
    fn realm(&self, cx: &mut MsgCx, f: &Fmt, kind: HfKind) -> Option<Vec<u8>> {
        let mut b = Vec::new();
        cx.eval_fmt(f, &mut b);
        if !b.is_empty() {
            return Some(b);
        }
        let msg = cx.msg()?;
        let na = if kind == HfKind::Www && msg.method() == Some(Method::Register) {
            msg.to().ok()?
        } else {
            msg.from().ok()?
        };
        let host = na.uri().host();
        let host = host
            .strip_prefix(self.realm_prefix.as_slice())
            .filter(|_| !self.realm_prefix.is_empty())
            .unwrap_or(host);
        Some(host.to_vec())
    }

    /// Sends the 401/407 with one challenge per algorithm (strongest first; none listed:
    /// MD5 without an `algorithm` parameter).
    fn challenge(
        &self,
        cx: &mut MsgCx,
        kind: HfKind,
        realm: &Fmt,
        qop: QopOffer,
        algs: &[Algorithm],
    ) -> Result<Ret, Stop> {
        let Some(realm) = self.realm(cx, realm, kind) else {
            return reply_error(cx, 400, b"Bad Request");
        };
        // RFC 8760 algorithms and the -sess ones need a qop.
        let qop = if qop == QopOffer::None && algs.iter().any(|a| *a != Algorithm::Md5) {
            QopOffer::Auth
        } else {
            qop
        };
        let stale = cx
            .peek_state::<AuthMsg>()
            .is_some_and(|s| s.stale && s.authorized.is_some_and(|(k, _)| k == kind));
        let index = self.tracker.as_ref().map_or(0, NonceTracker::reserve);
        let expires = cx.time_us().div_euclid(1_000_000) + self.nonce_expire;
        let (code, reason, name): (u16, &[u8], &[u8]) = match kind {
            HfKind::Www => (401, b"Unauthorized", b"WWW-Authenticate"),
            HfKind::Proxy => (407, b"Proxy Authentication Required", b"Proxy-Authenticate"),
        };
        let mut hdrs = cx.take_buf();
        let one = |alg: Algorithm, show_alg: bool, hdrs: &mut Vec<u8>| {
            hdrs.extend_from_slice(name);
            hdrs.extend_from_slice(b": Digest realm=\"");
            hdrs.extend_from_slice(&realm);
            hdrs.extend_from_slice(b"\", nonce=\"");
            self.key.issue(
                &NonceParams {
                    expires,
                    index,
                    alg,
                    qop,
                },
                hdrs,
            );
            hdrs.push(b'"');
            if let Some(q) = qop.challenge_value() {
                hdrs.extend_from_slice(b", qop=\"");
                hdrs.extend_from_slice(q.as_bytes());
                hdrs.push(b'"');
            }
            if stale {
                hdrs.extend_from_slice(b", stale=true");
            }
            if show_alg {
                hdrs.extend_from_slice(b", algorithm=");
                hdrs.extend_from_slice(alg.name().as_bytes());
            }
            hdrs.extend_from_slice(b"\r\n");
        };
        if algs.is_empty() {
            one(Algorithm::Md5, false, &mut hdrs);
        } else {
            for a in Algorithm::STRONGEST_FIRST {
                if algs.contains(&a) {
                    one(a, true, &mut hdrs);
                }
            }
        }
        let rc = cx.send_reply(code, reason, &hdrs);
        cx.give_buf(hdrs);
        if rc < 0 {
            cx.log(-1, b"ERROR:auth: failed to send the challenge");
            return Ok(Ret(-1));
        }
        Err(Stop::Exit)
    }
}

/// Sends an error reply and stops the script (OpenSIPS's `ERROR` result, 0).
fn reply_error(cx: &mut MsgCx, code: u16, reason: &[u8]) -> Result<Ret, Stop> {
    if cx.send_reply(code, reason, b"") < 0 {
        cx.log(-1, b"ERROR:auth: failed to send the error reply");
    }
    Err(Stop::Exit)
}

/// The first digest credentials of `kind` whose realm is `realm` (ASCII case-insensitive)
/// and whose algorithm we support: `(header position, credentials)`. `Err` for a header
/// that does not parse.
fn find_credentials(
    msg: &SipMsg,
    kind: HfKind,
    realm: &[u8],
) -> Result<Option<(usize, Creds)>, ()> {
    let want = kind.credentials();
    for (i, h) in msg.headers().iter().enumerate() {
        if h.kind != want {
            continue;
        }
        let a = parse_auth(msg.buf(), h.value).map_err(|_| ())?;
        let a = msg.bind(a);
        if !a.is_digest() {
            continue;
        }
        let Some(r) = a.realm() else { continue };
        if !r.eq_ignore_ascii_case(realm) {
            continue;
        }
        let alg = match a.algorithm() {
            None => None,
            Some(s) => match Algorithm::parse(s) {
                Some(x) => Some(x),
                None => continue,
            },
        };
        let get = |v: Option<&[u8]>| v.map(unquote).unwrap_or_default().to_vec();
        return Ok(Some((
            i,
            Creds {
                username: get(a.username()),
                realm: r.to_vec(),
                nonce: get(a.nonce()),
                uri: get(a.uri()),
                response: get(a.response()),
                cnonce: get(a.cnonce()),
                nc: get(a.nc()),
                qop: a.qop().map(|q| Qop::parse(q).unwrap_or(Qop::None)),
                alg,
            },
        )));
    }
    Ok(None)
}

/// The credentials the authorize functions used for this message (re-read from the header
/// they marked).
pub(crate) fn authorized_creds(cx: &MsgCx) -> Option<Creds> {
    let (kind, idx) = cx.peek_state::<AuthMsg>()?.authorized?;
    let msg = cx.msg()?;
    let h = msg.headers().get(idx)?;
    if h.kind != kind.credentials() {
        return None;
    }
    let a = msg.bind(parse_auth(msg.buf(), h.value).ok()?);
    Some(Creds {
        username: a.username().map(unquote).unwrap_or_default().to_vec(),
        realm: a.realm().unwrap_or_default().to_vec(),
        ..Creds::default()
    })
}

// ----- www_challenge / proxy_challenge -----

#[derive(Debug)]
enum QopArg {
    Const(QopOffer),
    Dyn(Fmt),
}

#[derive(Debug)]
enum AlgsArg {
    Const(Vec<Algorithm>),
    Dyn(Fmt),
}

#[derive(Debug)]
struct Challenge {
    auth: Arc<Auth>,
    kind: HfKind,
    realm: Fmt,
    qop: QopArg,
    algs: AlgsArg,
}

/// Parses a comma-separated algorithm list (empty: none, meaning MD5 unannounced).
fn parse_algs(s: &[u8]) -> Result<Vec<Algorithm>, String> {
    let mut v = Vec::new();
    for t in s.split(|&c| c == b',') {
        let t = t.trim_ascii();
        if t.is_empty() {
            continue;
        }
        match Algorithm::parse(t) {
            Some(a) => v.push(a),
            None => {
                return Err(format!(
                    "unsupported digest algorithm \"{}\"",
                    String::from_utf8_lossy(t)
                ));
            }
        }
    }
    Ok(v)
}

fn instance(a: &Args<'_>) -> Result<Arc<Auth>, FixupError> {
    a.cx.instances().require::<Auth>("auth")
}

fn build_challenge(mut a: Args<'_>, kind: HfKind) -> Result<Box<dyn Call>, FixupError> {
    let auth = instance(&a)?;
    let realm = a.fmt(0).unwrap_or_else(|| Fmt::literal(b""));
    let qop = match a.fmt(1) {
        None => QopArg::Const(QopOffer::None),
        Some(f) => match f.as_const() {
            Some(s) => QopArg::Const(QopOffer::parse(s).ok_or_else(|| {
                FixupError::arg(
                    1,
                    format!(
                        "bad qop \"{}\" (auth, auth-int or auth,auth-int)",
                        String::from_utf8_lossy(s)
                    ),
                )
            })?),
            None => QopArg::Dyn(f),
        },
    };
    let algs = match a.fmt(2) {
        None => AlgsArg::Const(Vec::new()),
        Some(f) => match f.as_const() {
            Some(s) => AlgsArg::Const(parse_algs(s).map_err(|e| FixupError::arg(2, e))?),
            None => AlgsArg::Dyn(f),
        },
    };
    Ok(Box::new(Challenge {
        auth,
        kind,
        realm,
        qop,
        algs,
    }))
}

fn build_www_challenge(a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    build_challenge(a, HfKind::Www)
}

fn build_proxy_challenge(a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    build_challenge(a, HfKind::Proxy)
}

impl Call for Challenge {
    fn call(&self, cx: &mut MsgCx) -> Result<Ret, Stop> {
        let qop = match &self.qop {
            QopArg::Const(q) => *q,
            QopArg::Dyn(f) => {
                let mut b = cx.take_buf();
                cx.eval_fmt(f, &mut b);
                let q = QopOffer::parse(&b);
                cx.give_buf(b);
                match q {
                    Some(q) => q,
                    None => {
                        cx.log(-1, b"ERROR:auth: bad qop value");
                        return Ok(Ret(-1));
                    }
                }
            }
        };
        match &self.algs {
            AlgsArg::Const(v) => self.auth.challenge(cx, self.kind, &self.realm, qop, v),
            AlgsArg::Dyn(f) => {
                let mut b = cx.take_buf();
                cx.eval_fmt(f, &mut b);
                let v = parse_algs(&b);
                cx.give_buf(b);
                match v {
                    Ok(v) => self.auth.challenge(cx, self.kind, &self.realm, qop, &v),
                    Err(e) => {
                        cx.log(-1, format!("ERROR:auth: {e}").as_bytes());
                        Ok(Ret(-1))
                    }
                }
            }
        }
    }
}

// ----- pv_www_authorize / pv_proxy_authorize -----

#[derive(Debug)]
struct PvAuthorize {
    auth: Arc<Auth>,
    kind: HfKind,
    realm: Fmt,
    user: PvRef,
    pass: PvRef,
}

fn build_pv(mut a: Args<'_>, kind: HfKind) -> Result<Box<dyn Call>, FixupError> {
    let auth = instance(&a)?;
    let spec = |s: &Option<String>, name: &str| {
        s.clone().ok_or_else(|| FixupError {
            message: format!("auth: modparam {name} must be set for pv_*_authorize"),
            arg: None,
        })
    };
    let (us, ps) = (
        spec(&auth.username_spec, "username_spec")?,
        spec(&auth.password_spec, "password_spec")?,
    );
    let user = a.cx.pv_spec(&us).map_err(|e| FixupError {
        message: format!("auth: username_spec: {e}"),
        arg: None,
    })?;
    let pass = a.cx.pv_spec(&ps).map_err(|e| FixupError {
        message: format!("auth: password_spec: {e}"),
        arg: None,
    })?;
    let realm = a.fmt(0).unwrap_or_else(|| Fmt::literal(b""));
    Ok(Box::new(PvAuthorize {
        auth,
        kind,
        realm,
        user,
        pass,
    }))
}

fn build_pv_www(a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    build_pv(a, HfKind::Www)
}

fn build_pv_proxy(a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    build_pv(a, HfKind::Proxy)
}

impl Call for PvAuthorize {
    fn call(&self, cx: &mut MsgCx) -> Result<Ret, Stop> {
        let c = match self.auth.pre_auth(cx, &self.realm, self.kind) {
            Pre::Done(r) => return r,
            Pre::Check(c) => c,
        };
        let mut user = cx.take_buf();
        let mut pass = cx.take_buf();
        let uk = cx.get_var(&self.user, &mut user);
        let pk = cx.get_var(&self.pass, &mut pass);
        let unknown = uk != Kind::Str
            || user.is_empty()
            || user != c.username
            || pk != Kind::Str
            || pass.is_empty();
        let ret = if unknown {
            USER_UNKNOWN
        } else if self.auth.calculate_ha1 {
            self.auth.verify(cx, &c, Secret::Password(&pass))
        } else {
            self.auth.verify(cx, &c, Secret::Ha1(&pass))
        };
        cx.give_buf(user);
        cx.give_buf(pass);
        Ok(ret)
    }
}

// ----- consume_credentials -----

#[derive(Debug)]
struct Consume;

fn build_consume(_a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    Ok(Box::new(Consume))
}

impl Call for Consume {
    fn call(&self, cx: &mut MsgCx) -> Result<Ret, Stop> {
        let marked = cx
            .peek_state::<AuthMsg>()
            .and_then(|s| s.authorized)
            .map(|(_, i)| i);
        let Some(msg) = cx.msg_mut() else {
            return Ok(Ret(-1));
        };
        let h = marked.and_then(|i| msg.headers().get(i).cloned());
        match h {
            Some(h) => {
                msg.remove_header(&h);
                Ok(AUTHORIZED)
            }
            None => {
                if !matches!(msg.method(), Some(Method::Ack | Method::Cancel)) {
                    cx.log(
                        -1,
                        b"ERROR:auth: no authorized credentials found (error in scripts)",
                    );
                }
                Ok(Ret(-1))
            }
        }
    }
}
