//! The registrar's work on usrloc, free of the script engine: `save` (RFC 3261 §10.3 steps
//! 6–8 under the AoR's lock), the contact selection of `lookup`, `remove`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sipox_mod_usrloc::{Contact, DomainId, Usrloc};
use sipox_stats::{Stat, StatFlags, Stats};

use crate::flags::{Matching, PathMode, SaveFlags};
use crate::params::Params;
use crate::reply::{self, Binding, GruuCx, RegError};
use crate::request::{self, ALL_METHODS, Limits, RegRequest};

/// usrloc's "memory only" contact flag (OpenSIPS `FL_MEM`).
pub const FL_MEM: u32 = 1;

/// The registrar instance: parameters, the usrloc it drives, its statistics.
#[derive(Debug)]
pub struct Registrar {
    /// The module parameters.
    pub params: Params,
    ul: Arc<Usrloc>,
    accepted: Option<Stat>,
    rejected: Option<Stat>,
    counts: [AtomicU64; 2],
}

/// Everything `save()` takes from the message and the script besides the REGISTER itself.
#[derive(Debug, Clone, Default)]
pub struct SaveCx {
    /// The AoR key.
    pub aor: String,
    /// Now, seconds.
    pub now: i64,
    /// Seed for `expires_max_deviation`.
    pub seed: u64,
    /// Received URI to store (from `received_avp` or `path-received`).
    pub received: String,
    /// Socket to store (`proto:ip:port`).
    pub socket: String,
    /// Branch flags of the message (stored as the contact's `cflags`).
    pub cflags: u32,
    /// Attributes (`attr_avp`).
    pub attr: String,
}

/// What `save()` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveReply {
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: &'static str,
    /// Extra header lines (`Contact`, `Path`, `P-Registrar-Error`, ...).
    pub headers: String,
    /// Whether the registration succeeded (`accepted_regs`) or not (`rejected_regs`).
    pub ok: bool,
}

impl Registrar {
    /// A registrar over `ul` (statistics not exported; see [`Registrar::with_stats`]).
    pub fn new(params: Params, ul: Arc<Usrloc>) -> Self {
        Self {
            params,
            ul,
            accepted: None,
            rejected: None,
            counts: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// A registrar exporting the OpenSIPS statistics `registrar:max_expires`,
    /// `max_contacts`, `default_expire`, `accepted_regs`, `rejected_regs`.
    ///
    /// # Errors
    /// A statistic already registered.
    pub fn with_stats(params: Params, ul: Arc<Usrloc>, stats: &Stats) -> Result<Self, String> {
        let e = |e: sipox_stats::StatsError| e.to_string();
        let (mx, mc, de) = (
            u64::from(params.max_expires),
            u64::from(params.max_contacts),
            u64::from(params.default_expires),
        );
        stats
            .register_fn("registrar", "max_expires", move || mx)
            .map_err(e)?;
        stats
            .register_fn("registrar", "max_contacts", move || mc)
            .map_err(e)?;
        stats
            .register_fn("registrar", "default_expire", move || de)
            .map_err(e)?;
        let accepted = stats
            .register("registrar", "accepted_regs", StatFlags::NONE)
            .map_err(e)?;
        let rejected = stats
            .register("registrar", "rejected_regs", StatFlags::NONE)
            .map_err(e)?;
        Ok(Self {
            accepted: Some(accepted),
            rejected: Some(rejected),
            ..Self::new(params, ul)
        })
    }

    /// The usrloc this registrar drives.
    pub fn usrloc(&self) -> &Arc<Usrloc> {
        &self.ul
    }

    /// Accepted registrations so far.
    pub fn accepted(&self) -> u64 {
        self.counts[0].load(Ordering::Relaxed)
    }

    /// Rejected registrations so far.
    pub fn rejected(&self) -> u64 {
        self.counts[1].load(Ordering::Relaxed)
    }

    fn count(&self, ok: bool) {
        self.counts[usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
        if let Some(s) = if ok { &self.accepted } else { &self.rejected } {
            s.inc();
        }
    }

    /// Processes a parsed REGISTER for `d` and builds the reply (OpenSIPS `save_aux`):
    /// `Contact: *` removes every binding, no Contact fetches them, otherwise each contact is
    /// inserted, refreshed or removed (expires 0) with the Call-ID/CSeq ordering checks and
    /// `max_contacts`. The 200 OK lists every current binding with its remaining time.
    pub fn save(
        &self,
        d: DomainId,
        req: &RegRequest,
        f: &SaveFlags,
        sc: &SaveCx,
        gruu_host: (&str, u16),
    ) -> SaveReply {
        let p = &self.params;
        let path_used = f.path != PathMode::Ignore && !req.path.is_empty();
        let res = if path_used && f.path == PathMode::Strict && !req.supports_path {
            (Err(RegError::PathUnsup), Vec::new())
        } else {
            self.ul
                .with_record(d, &sc.aor, sc.now, |rec| {
                    let r = apply(rec, req, f, sc, p, self.ul.params().cseq_delay, path_used);
                    if r.is_err() && !rec.existed() {
                        rec.remove_all();
                    }
                    let valid: Vec<Contact> = rec
                        .contacts()
                        .iter()
                        .filter(|c| c.is_valid(sc.now))
                        .cloned()
                        .collect();
                    (r, valid)
                })
                .unwrap_or_else(|_| (Err(RegError::Internal), Vec::new()))
        };
        let (r, mut cts) = res;
        sort_contacts(&mut cts, self.ul.params().desc_time_order);
        if f.only_request_contacts {
            cts.retain(|c| req.contacts.iter().any(|rc| rc.uri == c.uri));
        }
        let bindings: Vec<Binding<'_>> = cts
            .iter()
            .map(|c| Binding {
                uri: &c.uri,
                q: c.q,
                expires: if c.expires == 0 {
                    0
                } else {
                    c.expires - sc.now
                },
                received: &c.received,
                instance: &c.instance,
                callid: &c.callid,
            })
            .collect();
        let mut headers = String::new();
        match r {
            Ok(()) => {
                self.count(true);
                let g = (!p.disable_gruu && req.supports_gruu).then_some(GruuCx {
                    aor: &sc.aor,
                    use_domain: self.ul.use_domain(),
                    host: gruu_host.0,
                    port: gruu_host.1,
                    secret: &p.gruu_secret,
                    now: sc.now,
                });
                reply::contact_header(&mut headers, &bindings, &p.received_param, g.as_ref());
                if path_used && f.path != PathMode::Off && req.supports_path {
                    headers.push_str("Path: ");
                    headers.push_str(&req.path);
                    headers.push_str("\r\n");
                }
                SaveReply {
                    code: 200,
                    reason: "OK",
                    headers,
                    ok: true,
                }
            }
            Err(e) => {
                self.count(false);
                if matches!(e, RegError::TooMany | RegError::InvCseq) {
                    reply::contact_header(&mut headers, &bindings, &p.received_param, None);
                }
                if e == RegError::PathUnsup {
                    headers.push_str("Unsupported: path\r\nPath: ");
                    headers.push_str(&req.path);
                    headers.push_str("\r\n");
                }
                reply::error_headers(&mut headers, e, p.retry_after);
                SaveReply {
                    code: e.code(),
                    reason: e.reason(),
                    headers,
                    ok: false,
                }
            }
        }
    }

    /// Counts a registration refused before `save` reached usrloc (bad request).
    pub fn reject(&self, e: RegError) -> SaveReply {
        self.count(false);
        let mut headers = String::new();
        reply::error_headers(&mut headers, e, self.params.retry_after);
        SaveReply {
            code: e.code(),
            reason: e.reason(),
            headers,
            ok: false,
        }
    }
}

/// Orders contacts as OpenSIPS's usrloc keeps them: highest q first (stable: older first
/// among equals), or newest first with `desc_time_order`.
pub fn sort_contacts(cts: &mut [Contact], desc_time_order: bool) {
    if desc_time_order {
        cts.sort_by_key(|c| std::cmp::Reverse(c.last_modified));
    } else {
        cts.sort_by_key(|c| std::cmp::Reverse(c.q));
    }
}

/// The per-contact work under the record lock.
fn apply(
    rec: &mut sipox_mod_usrloc::RecordMut<'_>,
    req: &RegRequest,
    f: &SaveFlags,
    sc: &SaveCx,
    p: &Params,
    cseq_delay: u32,
    path_used: bool,
) -> Result<(), RegError> {
    if req.star {
        rec.remove_all();
        return Ok(());
    }
    let limits = Limits {
        default: p.default_expires,
        min: f.min_expires.unwrap_or(p.min_expires),
        max: f.max_expires.unwrap_or(p.max_expires),
    };
    let max = f.max_contacts.unwrap_or(p.max_contacts) as usize;
    let now = sc.now;
    let mut num = rec.valid_count();
    for (k, c) in req.contacts.iter().enumerate() {
        let e = request::contact_expires(c.expires.as_deref(), req.expires, limits);
        let q = request::contact_q(c.q.as_deref(), p.default_q)?;
        let found = find(rec, &c.uri, &req.callid, f.matching.as_ref());
        let fill = |ct: &mut Contact, e: u32| {
            ct.uri.clone_from(&c.uri);
            ct.q = q;
            ct.expires = now + i64::from(e);
            ct.callid.clone_from(&req.callid);
            ct.cseq = req.cseq;
            ct.flags = if f.memory_only { FL_MEM } else { 0 };
            ct.cflags = sc.cflags;
            ct.user_agent.clone_from(&req.user_agent);
            ct.received.clone_from(&sc.received);
            ct.path = if path_used {
                req.path.clone()
            } else {
                String::new()
            };
            ct.socket.clone_from(&sc.socket);
            ct.methods = (req.methods != ALL_METHODS).then_some(req.methods);
            ct.instance.clone_from(&c.instance);
            ct.reg_id = c.reg_id;
            ct.attr.clone_from(&sc.attr);
        };
        match found {
            Some(i) => {
                let Some(old) = rec.get(i) else { continue };
                if old.callid == req.callid {
                    if req.cseq < old.cseq {
                        return Err(RegError::InvCseq);
                    }
                    if req.cseq == old.cseq {
                        if now - old.last_modified <= i64::from(cseq_delay) {
                            continue; // a retransmission: leave the binding as it is
                        }
                        return Err(RegError::InvCseq);
                    }
                }
                let was_valid = old.is_valid(now);
                let id = old.contact_id;
                if e == 0 {
                    rec.remove(i);
                    if was_valid {
                        num = num.saturating_sub(1);
                    }
                    continue;
                }
                if !was_valid {
                    num += 1;
                }
                while max > 0 && num > max {
                    if !f.force_registration {
                        return Err(RegError::TooMany);
                    }
                    evict_oldest(rec, now, Some(id))?;
                    num -= 1;
                }
                if let Some(i) = rec.find_id(id) {
                    rec.update(i, |ct| fill(ct, e));
                }
            }
            None => {
                if e == 0 {
                    continue;
                }
                while max > 0 && num >= max {
                    if !f.force_registration {
                        return Err(RegError::TooMany);
                    }
                    evict_oldest(rec, now, None)?;
                    num -= 1;
                }
                let seed = sc.seed ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let e = request::deviate(e, p.expires_max_deviation, seed, limits);
                let mut ct = Contact::new(c.uri.clone());
                fill(&mut ct, e);
                rec.insert(ct);
                num += 1;
            }
        }
    }
    Ok(())
}

/// The binding a REGISTER's contact refers to, by the matching mode in force.
fn find(
    rec: &sipox_mod_usrloc::RecordMut<'_>,
    uri: &str,
    callid: &str,
    m: Option<&Matching>,
) -> Option<usize> {
    match m {
        None => rec.find_binding(uri, callid),
        Some(Matching::Contact) => rec.find(uri),
        Some(Matching::ContactCallid) => rec
            .contacts()
            .iter()
            .position(|c| c.uri == uri && c.callid == callid),
        Some(Matching::Param(name)) => {
            let want = uri_param(uri, name);
            want.as_ref()?;
            rec.contacts()
                .iter()
                .position(|c| uri_param(&c.uri, name) == want)
        }
    }
}

fn uri_param(uri: &str, name: &str) -> Option<String> {
    let u = sipox_sip_msg::uri(uri.as_bytes()).ok()?;
    u.param(name.as_bytes())
        .map(|v| String::from_utf8_lossy(v.unwrap_or_default()).into_owned())
}

/// `force-registration`: drops the valid contact modified longest ago (not `keep`).
fn evict_oldest(
    rec: &mut sipox_mod_usrloc::RecordMut<'_>,
    now: i64,
    keep: Option<u64>,
) -> Result<(), RegError> {
    let victim = rec
        .contacts()
        .iter()
        .enumerate()
        .filter(|(_, c)| c.is_valid(now) && Some(c.contact_id) != keep)
        .min_by_key(|(_, c)| c.last_modified)
        .map(|(i, _)| i)
        .ok_or(RegError::Internal)?;
    rec.remove(victim);
    Ok(())
}

/// One destination `lookup()` produces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dest {
    /// The contact URI (new Request-URI or branch URI).
    pub uri: String,
    /// Destination URI: the first Path hop (or its `received`), else the received URI.
    pub duri: String,
    /// The Path vector (Route set).
    pub path: String,
    /// q × 1000, -1 unspecified.
    pub q: i32,
    /// Branch flags saved with the contact.
    pub cflags: u32,
    /// The stored socket.
    pub socket: String,
    /// The stored attributes.
    pub attr: String,
}

/// Why `lookup()` found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupMiss {
    /// -1: no AoR or no valid contact.
    NotFound,
    /// -2: contacts exist but none accepts the method.
    MethodUnsupported,
    /// -3: internal error.
    Internal,
}

impl LookupMiss {
    /// The script return code.
    pub fn code(self) -> i32 {
        match self {
            Self::NotFound => -1,
            Self::MethodUnsupported => -2,
            Self::Internal => -3,
        }
    }
}

impl Registrar {
    /// The contacts `lookup()` forks to, best first: valid ones, filtered by method
    /// (`method` = the request's method bit with the `m` flag), User-Agent and GRUU (a public
    /// GRUU targets its instance; a temporary one also its Call-ID and only while no newer
    /// registration of the instance exists).
    ///
    /// # Errors
    /// [`LookupMiss`] as `lookup()`'s negative return codes.
    pub fn select(
        &self,
        d: DomainId,
        t: &crate::aor::Target,
        now: i64,
        method: Option<u32>,
        ua: Option<&regex::bytes::Regex>,
    ) -> Result<Vec<Dest>, LookupMiss> {
        let cts = self
            .ul
            .contacts(d, &t.aor, now)
            .map_err(|_| LookupMiss::Internal)?
            .ok_or(LookupMiss::NotFound)?;
        let mut cts: Vec<Contact> = cts.into_iter().filter(|c| c.is_valid(now)).collect();
        if cts.is_empty() {
            return Err(LookupMiss::NotFound);
        }
        if let Some(m) = method {
            cts.retain(|c| c.methods.is_none_or(|ms| ms & m != 0));
            if cts.is_empty() {
                return Err(LookupMiss::MethodUnsupported);
            }
        }
        if let Some(re) = ua {
            cts.retain(|c| re.is_match(c.user_agent.as_bytes()));
        }
        if !t.instance.is_empty() {
            let same = |c: &Contact| crate::aor::strip_angle(&c.instance) == t.instance;
            if !t.callid.is_empty() {
                let newest = cts
                    .iter()
                    .filter(|c| same(c))
                    .map(|c| c.last_modified)
                    .max();
                cts.retain(|c| same(c) && c.callid == t.callid);
                if cts.iter().any(|c| Some(c.last_modified) < newest) {
                    cts.clear();
                }
            } else {
                cts.retain(same);
            }
            cts.truncate(1);
        }
        if cts.is_empty() {
            return Err(LookupMiss::NotFound);
        }
        sort_contacts(&mut cts, self.ul.params().desc_time_order);
        Ok(cts
            .into_iter()
            .map(|c| Dest {
                duri: if c.path.is_empty() {
                    c.received.clone()
                } else {
                    path_dst(&c.path).unwrap_or_default()
                },
                uri: c.uri,
                path: c.path,
                q: c.q,
                cflags: c.cflags,
                socket: c.socket,
                attr: c.attr,
            })
            .collect())
    }

    /// `remove()`: deletes the AoR, or only its contacts matching `contact` (exact URI),
    /// `next_hop` (host[:port] of the received/contact URI) and `instance`. Returns how many
    /// contacts were removed.
    ///
    /// # Errors
    /// usrloc failures.
    pub fn remove(
        &self,
        d: DomainId,
        aor: &str,
        now: i64,
        contact: Option<&str>,
        next_hop: Option<&str>,
        instance: Option<&str>,
    ) -> Result<usize, String> {
        self.ul
            .with_record(d, aor, now, |rec| {
                if contact.is_none() && next_hop.is_none() && instance.is_none() {
                    return rec.remove_all();
                }
                let mut n = 0;
                let mut i = 0;
                while let Some(c) = rec.get(i) {
                    let hit = contact.is_none_or(|u| c.uri == u)
                        && instance.is_none_or(|s| c.instance == s)
                        && next_hop.is_none_or(|h| next_hop_matches(c, h));
                    if hit {
                        rec.remove(i);
                        n += 1;
                    } else {
                        i += 1;
                    }
                }
                n
            })
            .map_err(|e| e.to_string())
    }

    /// `remove_ip_port()`: deletes the contacts whose next hop is `ip:port`.
    ///
    /// # Errors
    /// usrloc failures.
    pub fn remove_ip_port(
        &self,
        d: DomainId,
        aor: Option<&str>,
        now: i64,
        ip: &str,
        port: u16,
    ) -> Result<usize, String> {
        let hop = format!("{ip}:{port}");
        match aor {
            Some(a) => self.remove(d, a, now, None, Some(&hop), None),
            None => {
                let mut n = 0;
                for (a, cts) in self.ul.records(d).map_err(|e| e.to_string())? {
                    if cts.iter().any(|c| next_hop_matches(c, &hop)) {
                        n += self.remove(d, &a, now, None, Some(&hop), None)?;
                    }
                }
                Ok(n)
            }
        }
    }
}

/// Whether a contact's next hop (received URI, else contact URI) is `hop` (`host` or
/// `host:port`).
pub fn next_hop_matches(c: &Contact, hop: &str) -> bool {
    let via = if c.received.is_empty() {
        &c.uri
    } else {
        &c.received
    };
    let Ok(u) = sipox_sip_msg::uri(via.as_bytes()) else {
        return false;
    };
    let host = String::from_utf8_lossy(u.host());
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match hop
        .rsplit_once(':')
        .filter(|(h, p)| !h.ends_with(':') && p.parse::<u16>().is_ok())
    {
        Some((h, p)) => {
            let h = h.trim_start_matches('[').trim_end_matches(']');
            h.eq_ignore_ascii_case(host)
                && u.port_or_default().map(|x| x.to_string()) == Some(p.into())
        }
        None => hop
            .trim_start_matches('[')
            .trim_end_matches(']')
            .eq_ignore_ascii_case(host),
    }
}

/// The destination of a Path vector: its first URI, or that URI's `received` parameter.
pub fn path_dst(path: &str) -> Option<String> {
    let b = path.as_bytes();
    let sp = sipox_sip_msg::CommaSplit::new(b, sipox_sip_msg::Span::new(0, b.len())).next()?;
    let na = sipox_sip_msg::name_addr(b.get(sp.lo()..sp.hi())?.trim_ascii()).ok()?;
    let u = na.uri();
    if let Some(Some(r)) = u.param(b"received") {
        let r = sipox_sip_msg::unquote(r);
        let dec: Vec<u8> = sipox_sip_msg::Unescape::new(r).collect();
        return Some(String::from_utf8_lossy(&dec).into_owned());
    }
    Some(String::from_utf8_lossy(u.raw()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::parse_save_flags;
    use crate::request::{RegContact, RegRequest};

    fn reg(p: Params) -> (Registrar, DomainId) {
        let ul = Arc::new(Usrloc::new(sipox_mod_usrloc::Params::default()).unwrap());
        let d = ul.register_domain("location").unwrap();
        (Registrar::new(p, ul), d)
    }

    fn req(callid: &str, cseq: u32, cts: &[(&str, Option<&str>)]) -> RegRequest {
        RegRequest {
            contacts: cts
                .iter()
                .map(|(u, q)| RegContact {
                    uri: (*u).into(),
                    q: q.map(Into::into),
                    ..RegContact::default()
                })
                .collect(),
            callid: callid.into(),
            cseq,
            methods: ALL_METHODS,
            ..RegRequest::default()
        }
    }

    fn sc(now: i64) -> SaveCx {
        SaveCx {
            aor: "alice".into(),
            now,
            ..SaveCx::default()
        }
    }

    fn save(r: &Registrar, d: DomainId, q: &RegRequest, flags: &str, now: i64) -> SaveReply {
        r.save(
            d,
            q,
            &parse_save_flags(flags).unwrap(),
            &sc(now),
            ("h", 5060),
        )
    }

    #[test]
    fn cseq_ordering_and_retransmission() {
        let (r, d) = reg(Params::default());
        let a = [("sip:a@1.1.1.1", None)];
        assert_eq!(save(&r, d, &req("c1", 5, &a), "", 100).code, 200);
        // same CSeq within cseq_delay: a retransmission, accepted, binding unchanged
        assert_eq!(save(&r, d, &req("c1", 5, &a), "", 105).code, 200);
        // same CSeq later: invalid; lower CSeq: invalid
        assert_eq!(save(&r, d, &req("c1", 5, &a), "", 200).code, 400);
        assert_eq!(save(&r, d, &req("c1", 4, &a), "", 106).code, 400);
        // another Call-ID takes the binding over
        assert_eq!(save(&r, d, &req("c2", 1, &a), "", 107).code, 200);
        assert_eq!((r.accepted(), r.rejected()), (3, 2));
    }

    #[test]
    fn max_contacts_and_force_registration() {
        let (r, d) = reg(Params::default());
        for (i, u) in ["sip:a@1", "sip:a@2"].iter().enumerate() {
            let rep = save(
                &r,
                d,
                &req(u, 1, &[(u, None)]),
                "max-contacts=2",
                100 + i as i64,
            );
            assert_eq!(rep.code, 200);
        }
        let third = req("c3", 1, &[("sip:a@3", None)]);
        let rep = save(&r, d, &third, "max-contacts=2", 110);
        assert_eq!((rep.code, rep.reason), (503, "Service Unavailable"));
        assert!(
            rep.headers
                .contains("P-Registrar-Error: Too many registered contacts")
        );
        let rep = save(&r, d, &third, "max-contacts=2,force-registration", 111);
        assert_eq!(rep.code, 200);
        assert!(
            !rep.headers.contains("sip:a@1>"),
            "oldest evicted: {}",
            rep.headers
        );
        assert!(rep.headers.contains("sip:a@2>") && rep.headers.contains("sip:a@3>"));
    }

    #[test]
    fn path_modes() {
        let (r, d) = reg(Params::default());
        let mut q = req("c1", 1, &[("sip:a@1", None)]);
        q.path = "<sip:edge.example.com;lr;received=sip:9.9.9.9:5070>".into();
        let rep = save(&r, d, &q, "path-strict", 100);
        assert_eq!((rep.code, rep.reason), (420, "Bad Extension"));
        assert!(rep.headers.contains("Unsupported: path\r\nPath: <sip:edge"));
        let rep = save(&r, d, &q, "path-lazy", 100);
        assert_eq!(rep.code, 200);
        assert!(
            !rep.headers.contains("Path:"),
            "lazy: no echo without Supported: path"
        );
        q.supports_path = true;
        q.cseq = 2;
        let rep = save(&r, d, &q, "path-lazy", 101);
        assert!(
            rep.headers
                .contains("Path: <sip:edge.example.com;lr;received=sip:9.9.9.9:5070>\r\n")
        );
        let rep = save(
            &r,
            d,
            &RegRequest {
                cseq: 3,
                ..q.clone()
            },
            "path-off",
            102,
        );
        assert!(!rep.headers.contains("Path:"));
        // lookup: the path is the route set, its first hop's received the destination
        let t = crate::aor::Target {
            aor: "alice".into(),
            ..Default::default()
        };
        let dst = r.select(d, &t, 103, None, None).unwrap();
        assert_eq!(dst[0].duri, "sip:9.9.9.9:5070");
        assert_eq!(dst[0].path, q.path);
    }

    #[test]
    fn lookup_order_methods_and_gruu() {
        let (r, d) = reg(Params::default());
        let mut q = req(
            "c1",
            1,
            &[
                ("sip:a@low", Some("0.1")),
                ("sip:a@high", Some("0.9")),
                ("sip:a@none", None),
            ],
        );
        q.contacts[1].instance = "<urn:uuid:1>".into();
        q.methods = 1 | 256; // INVITE, MESSAGE
        assert_eq!(save(&r, d, &q, "", 100).code, 200);
        let t = crate::aor::Target {
            aor: "alice".into(),
            ..Default::default()
        };
        let uris: Vec<String> = r
            .select(d, &t, 101, None, None)
            .unwrap()
            .into_iter()
            .map(|x| x.uri)
            .collect();
        assert_eq!(uris, ["sip:a@high", "sip:a@low", "sip:a@none"]);
        assert_eq!(
            r.select(d, &t, 101, Some(request::method_bit(b"SUBSCRIBE")), None),
            Err(LookupMiss::MethodUnsupported)
        );
        let g = crate::aor::Target {
            instance: "urn:uuid:1".into(),
            ..t.clone()
        };
        let only: Vec<String> = r
            .select(d, &g, 101, None, None)
            .unwrap()
            .into_iter()
            .map(|x| x.uri)
            .collect();
        assert_eq!(only, ["sip:a@high"]);
        let none = crate::aor::Target {
            aor: "bob".into(),
            ..Default::default()
        };
        assert_eq!(
            r.select(d, &none, 101, None, None),
            Err(LookupMiss::NotFound)
        );
        // expired contacts are not found
        assert_eq!(
            r.select(d, &t, 100 + 3601, None, None),
            Err(LookupMiss::NotFound)
        );
    }

    #[test]
    fn remove_by_contact_and_next_hop() {
        let (r, d) = reg(Params::default());
        let q = req(
            "c1",
            1,
            &[("sip:a@10.0.0.1:5060", None), ("sip:a@10.0.0.2", None)],
        );
        assert_eq!(save(&r, d, &q, "", 100).code, 200);
        assert_eq!(
            r.remove(d, "alice", 101, None, Some("10.0.0.2:5060"), None),
            Ok(1)
        );
        assert_eq!(
            r.remove(d, "alice", 101, Some("sip:a@nowhere"), None, None),
            Ok(0)
        );
        assert_eq!(r.remove(d, "alice", 101, None, None, None), Ok(1));
    }
}
