//! The script functions: argument fix-ups at load (domain registered with usrloc, constant
//! flags parsed once) and the per-message calls.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use sipox_mod_usrloc::DomainId;
use sipox_script::{
    Args, Call, FixupError, Fmt, FnDef, ModuleDef, MsgCx, Registry, Ret, Sig, Stop, route_mask,
};
use sipox_sip_msg::{HeaderKind, SipMsg};

use crate::aor;
use crate::engine::{Registrar, SaveCx};
use crate::flags::{self, LookupFlags, SaveFlags};
use crate::request;

/// Registers the registrar's functions over the catalog declarations.
pub fn register(r: &mut Registry) {
    use route_mask::{FAILURE, ONREPLY, REQUEST};
    let def = |name, params, routes, build| FnDef {
        sig: Sig::new("registrar", name, params, routes),
        build: Some(build),
    };
    r.add_module(ModuleDef {
        name: "registrar",
        params: Vec::new(),
        fns: vec![
            def("save", "s,s?,s?,s?", REQUEST | ONREPLY, build_save),
            def(
                "lookup",
                "s,s?,s?",
                REQUEST | FAILURE | ONREPLY,
                build_lookup,
            ),
            def(
                "remove",
                "s,s,s?,s?,s?,s?",
                REQUEST | FAILURE | ONREPLY,
                build_remove,
            ),
            def(
                "remove_ip_port",
                "s,s,s,s?",
                REQUEST | FAILURE | ONREPLY,
                build_remove_ip_port,
            ),
            def(
                "is_registered",
                "s,s?",
                REQUEST | FAILURE | ONREPLY,
                build_is_registered,
            ),
            def(
                "is_contact_registered",
                "s,s?,s?,s?",
                REQUEST | FAILURE | ONREPLY,
                build_is_contact_registered,
            ),
            def(
                "is_ip_registered",
                "s,s?,s,s?",
                REQUEST | FAILURE | ONREPLY,
                build_is_ip_registered,
            ),
            def("add_sock_hdr", "s", REQUEST, build_add_sock_hdr),
        ],
    });
}

/// A string argument: fixed at load or expanded per call.
#[derive(Debug, Clone)]
enum StrArg {
    Const(String),
    Dyn(Fmt),
}

impl StrArg {
    fn from(f: Option<Fmt>) -> Option<Self> {
        f.map(|f| match f.as_const() {
            Some(c) => Self::Const(String::from_utf8_lossy(c).into_owned()),
            None => Self::Dyn(f),
        })
    }

    fn eval(&self, cx: &mut MsgCx) -> String {
        match self {
            Self::Const(s) => s.clone(),
            Self::Dyn(f) => {
                let mut b = cx.take_buf();
                cx.eval_fmt(f, &mut b);
                let s = String::from_utf8_lossy(&b).into_owned();
                cx.give_buf(b);
                s
            }
        }
    }
}

/// The domain argument: registered with usrloc at load when constant.
#[derive(Debug, Clone)]
enum DomArg {
    Const(DomainId),
    Dyn(Fmt),
}

impl DomArg {
    fn resolve(&self, reg: &Registrar, cx: &mut MsgCx) -> Option<DomainId> {
        match self {
            Self::Const(d) => Some(*d),
            Self::Dyn(f) => {
                let name = StrArg::Dyn(f.clone()).eval(cx);
                reg.usrloc()
                    .domain(&name)
                    .or_else(|| reg.usrloc().register_domain(&name).ok())
            }
        }
    }
}

fn instance(a: &Args<'_>) -> Result<Arc<Registrar>, FixupError> {
    a.cx.instances().require::<Registrar>("registrar")
}

fn domain(a: &mut Args<'_>, reg: &Registrar, i: usize) -> Result<DomArg, FixupError> {
    let f = a
        .fmt(i)
        .ok_or_else(|| FixupError::arg(i, "registrar: missing domain"))?;
    match f.as_const() {
        Some(c) => {
            let name = String::from_utf8_lossy(c).into_owned();
            reg.usrloc()
                .register_domain(&name)
                .map(DomArg::Const)
                .map_err(|e| FixupError::arg(i, format!("registrar: domain {name}: {e}")))
        }
        None => Ok(DomArg::Dyn(f)),
    }
}

fn now_s(cx: &MsgCx) -> i64 {
    cx.time_us().div_euclid(1_000_000)
}

/// `$avp(name)` → `name`.
fn avp_name(spec: &str) -> Option<String> {
    let s = spec.trim();
    s.strip_prefix("$avp(")
        .and_then(|r| r.strip_suffix(')'))
        .map(str::to_owned)
}

fn avp_first(cx: &MsgCx, name: Option<&String>) -> String {
    name.and_then(|n| cx.avp(n).into_iter().next())
        .map(|v| String::from_utf8_lossy(&v.s).into_owned())
        .unwrap_or_default()
}

// ----- save -----

#[derive(Debug)]
struct Save {
    reg: Arc<Registrar>,
    dom: DomArg,
    flags: Result<SaveFlags, Fmt>,
    aor: Option<StrArg>,
    received_avp: Option<String>,
    attr_avp: Option<String>,
}

fn build_save(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    let reg = instance(&a)?;
    let dom = domain(&mut a, &reg, 0)?;
    let flags = match a.fmt(1) {
        None => Ok(SaveFlags::default()),
        Some(f) => match f.as_const() {
            Some(c) => Ok(flags::parse_save_flags(&String::from_utf8_lossy(c))
                .map_err(|e| FixupError::arg(1, format!("save(): {e}")))?),
            None => Err(f),
        },
    };
    let aor = StrArg::from(a.fmt(2));
    Ok(Box::new(Save {
        received_avp: reg.params.received_avp.as_deref().and_then(avp_name),
        attr_avp: reg.params.attr_avp.as_deref().and_then(avp_name),
        reg,
        dom,
        flags,
        aor,
    }))
}

impl Call for Save {
    fn call(&self, cx: &mut MsgCx) -> Result<Ret, Stop> {
        let reg = &*self.reg;
        let flags = match &self.flags {
            Ok(f) => f.clone(),
            Err(fmt) => {
                let s = StrArg::Dyn(fmt.clone()).eval(cx);
                match flags::parse_save_flags(&s) {
                    Ok(f) => f,
                    Err(e) => {
                        cx.log(-1, format!("ERROR:registrar:save: {e}").as_bytes());
                        SaveFlags::default()
                    }
                }
            }
        };
        let Some(d) = self.dom.resolve(reg, cx) else {
            return Ok(Ret(-1));
        };
        let Some(msg) = cx.msg() else {
            return Ok(Ret(-1));
        };
        if !msg.is_request() {
            cx.log(
                -1,
                b"ERROR:registrar:save: saving from a reply is not supported",
            );
            return Ok(Ret(-1));
        }
        let parsed = request::parse_register(msg, &reg.params);
        let (local_ip, local_port, proto) = {
            let s = cx.source();
            (s.local_ip, s.local_port, s.proto)
        };
        let reply = match parsed {
            Err(e) => reg.reject(e),
            Ok(req) => {
                let aor_uri = match &self.aor {
                    Some(a) => a.eval(cx),
                    None => req.to_uri.clone(),
                };
                match aor::extract(
                    aor_uri.as_bytes(),
                    &reg.params,
                    reg.usrloc().use_domain(),
                    false,
                ) {
                    Err(e) => reg.reject(e),
                    Ok(t) if t.aor.is_empty() || !aor_has_user(&aor_uri) => {
                        reg.reject(crate::RegError::AorParse)
                    }
                    Ok(t) => {
                        let mut received = avp_first(cx, self.received_avp.as_ref());
                        if received.is_empty() && flags.path_received {
                            received = path_received(&req.path).unwrap_or_default();
                        }
                        let mut h = std::collections::hash_map::DefaultHasher::new();
                        req.callid.hash(&mut h);
                        let host = sipox_fmt_ip(local_ip);
                        let sc = SaveCx {
                            aor: t.aor,
                            now: now_s(cx),
                            seed: h.finish() ^ cx.time_us().unsigned_abs(),
                            received,
                            socket: format!("{proto}:{host}:{local_port}"),
                            cflags: u32::try_from(cx.bflags() & 0xffff_ffff).unwrap_or(0),
                            attr: avp_first(cx, self.attr_avp.as_ref()),
                        };
                        reg.save(d, &req, &flags, &sc, (&host, local_port))
                    }
                }
            }
        };
        if !flags.no_reply
            && cx.send_reply(
                reply.code,
                reply.reason.as_bytes(),
                reply.headers.as_bytes(),
            ) < 0
        {
            cx.log(-1, b"ERROR:registrar:save: failed to send the reply");
            return Ok(Ret(-1));
        }
        Ok(Ret(if reply.ok { 1 } else { -2 }))
    }
}

fn aor_has_user(uri: &str) -> bool {
    sipox_sip_msg::uri(uri.as_bytes()).is_ok_and(|u| u.user().is_some_and(|x| !x.is_empty()))
}

/// `path-received`: the `received` parameter of the first Path URI.
fn path_received(path: &str) -> Option<String> {
    let b = path.as_bytes();
    let sp = sipox_sip_msg::CommaSplit::new(b, sipox_sip_msg::Span::new(0, b.len())).next()?;
    let na = sipox_sip_msg::name_addr(b.get(sp.lo()..sp.hi())?.trim_ascii()).ok()?;
    let r = na.uri().param(b"received")??;
    let dec: Vec<u8> = sipox_sip_msg::Unescape::new(sipox_sip_msg::unquote(r)).collect();
    Some(String::from_utf8_lossy(&dec).into_owned())
}

fn sipox_fmt_ip(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v) => v.to_string(),
        std::net::IpAddr::V6(v) => format!("[{v}]"),
    }
}

// ----- lookup -----

#[derive(Debug)]
struct Lookup {
    reg: Arc<Registrar>,
    dom: DomArg,
    flags: Result<Arc<LookupFlags>, Fmt>,
    aor: Option<StrArg>,
}

fn build_lookup(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    let reg = instance(&a)?;
    let dom = domain(&mut a, &reg, 0)?;
    let flags = match a.fmt(1) {
        None => Ok(Arc::new(LookupFlags::default())),
        Some(f) => match f.as_const() {
            Some(c) => Ok(Arc::new(
                flags::parse_lookup_flags(&String::from_utf8_lossy(c))
                    .map_err(|e| FixupError::arg(1, format!("lookup(): {e}")))?,
            )),
            None => Err(f),
        },
    };
    Ok(Box::new(Lookup {
        reg,
        dom,
        flags,
        aor: StrArg::from(a.fmt(2)),
    }))
}

impl Call for Lookup {
    fn call(&self, cx: &mut MsgCx) -> Result<Ret, Stop> {
        let reg = &*self.reg;
        let flags = match &self.flags {
            Ok(f) => Arc::clone(f),
            Err(fmt) => {
                let s = StrArg::Dyn(fmt.clone()).eval(cx);
                match flags::parse_lookup_flags(&s) {
                    Ok(f) => Arc::new(f),
                    Err(_) => return Ok(Ret(-3)),
                }
            }
        };
        let Some(d) = self.dom.resolve(reg, cx) else {
            return Ok(Ret(-3));
        };
        let aor_uri = match &self.aor {
            Some(a) => a.eval(cx).into_bytes(),
            None => cx.ruri().to_vec(),
        };
        let gruu = !reg.params.disable_gruu;
        let Ok(t) = aor::extract(&aor_uri, &reg.params, reg.usrloc().use_domain(), gruu) else {
            return Ok(Ret(-3));
        };
        let method = flags.method_filtering.then(|| {
            cx.msg()
                .map_or(0, |m| request::method_bit(m.method_bytes()))
        });
        let dests = match reg.select(d, &t, now_s(cx), method, flags.ua_filter.as_ref()) {
            Ok(v) => v,
            Err(miss) => return Ok(Ret(miss.code())),
        };
        let mut ruri_done = flags.to_branches_only;
        for dst in &dests {
            if !ruri_done {
                cx.set_ruri(dst.uri.as_bytes());
                cx.set_path(dst.path.as_bytes());
                if !dst.duri.is_empty() {
                    cx.set_dst_uri(dst.duri.as_bytes());
                }
                cx.set_ruri_q(dst.q);
                cx.set_bflags(u64::from(dst.cflags));
                ruri_done = true;
                if flags.no_branches {
                    break;
                }
                continue;
            }
            if flags.no_branches {
                break;
            }
            cx.append_branch(
                dst.uri.as_bytes(),
                dst.duri.as_bytes(),
                dst.path.as_bytes(),
                dst.q,
                u64::from(dst.cflags),
            );
        }
        Ok(Ret(1))
    }
}

// ----- remove, remove_ip_port -----

#[derive(Debug)]
struct Remove {
    reg: Arc<Registrar>,
    dom: DomArg,
    aor: StrArg,
    contact: Option<StrArg>,
    next_hop: Option<StrArg>,
    instance: Option<StrArg>,
}

fn build_remove(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    let reg = instance(&a)?;
    let dom = domain(&mut a, &reg, 0)?;
    let aor = StrArg::from(a.fmt(1)).ok_or_else(|| FixupError::arg(1, "remove(): missing AoR"))?;
    Ok(Box::new(Remove {
        reg,
        dom,
        aor,
        contact: StrArg::from(a.fmt(2)),
        next_hop: StrArg::from(a.fmt(3)),
        instance: StrArg::from(a.fmt(4)),
    }))
}

fn some_nonempty(a: Option<&StrArg>, cx: &mut MsgCx) -> Option<String> {
    a.map(|x| x.eval(cx)).filter(|s| !s.is_empty())
}

impl Call for Remove {
    fn call(&self, cx: &mut MsgCx) -> Result<Ret, Stop> {
        let reg = &*self.reg;
        let Some(d) = self.dom.resolve(reg, cx) else {
            return Ok(Ret(-1));
        };
        let aor_uri = self.aor.eval(cx);
        let Ok(t) = aor::extract(
            aor_uri.as_bytes(),
            &reg.params,
            reg.usrloc().use_domain(),
            false,
        ) else {
            return Ok(Ret(-1));
        };
        let contact = some_nonempty(self.contact.as_ref(), cx);
        let hop = some_nonempty(self.next_hop.as_ref(), cx);
        let inst = some_nonempty(self.instance.as_ref(), cx);
        match reg.remove(
            d,
            &t.aor,
            now_s(cx),
            contact.as_deref(),
            hop.as_deref(),
            inst.as_deref(),
        ) {
            Ok(_) => Ok(Ret(1)),
            Err(e) => {
                cx.log(-1, format!("ERROR:registrar:remove: {e}").as_bytes());
                Ok(Ret(-1))
            }
        }
    }
}

#[derive(Debug)]
struct RemoveIpPort {
    reg: Arc<Registrar>,
    ip: StrArg,
    port: StrArg,
    dom: DomArg,
    aor: Option<StrArg>,
}

fn build_remove_ip_port(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    let reg = instance(&a)?;
    let ip = StrArg::from(a.fmt(0)).ok_or_else(|| FixupError::arg(0, "missing IP"))?;
    let port = StrArg::from(a.fmt(1)).ok_or_else(|| FixupError::arg(1, "missing port"))?;
    let dom = domain(&mut a, &reg, 2)?;
    Ok(Box::new(RemoveIpPort {
        reg,
        ip,
        port,
        dom,
        aor: StrArg::from(a.fmt(3)),
    }))
}

impl Call for RemoveIpPort {
    fn call(&self, cx: &mut MsgCx) -> Result<Ret, Stop> {
        let reg = &*self.reg;
        let Some(d) = self.dom.resolve(reg, cx) else {
            return Ok(Ret(-1));
        };
        let ip = self.ip.eval(cx);
        let Ok(port) = self.port.eval(cx).trim().parse::<u16>() else {
            return Ok(Ret(-1));
        };
        let aor = match &self.aor {
            Some(a) => {
                let u = a.eval(cx);
                match aor::extract(u.as_bytes(), &reg.params, reg.usrloc().use_domain(), false) {
                    Ok(t) => Some(t.aor),
                    Err(_) => return Ok(Ret(-1)),
                }
            }
            None => None,
        };
        match reg.remove_ip_port(d, aor.as_deref(), now_s(cx), &ip, port) {
            Ok(_) => Ok(Ret(1)),
            Err(_) => Ok(Ret(-1)),
        }
    }
}

// ----- is_registered & co -----

/// The AoR of the `is_*registered` checks: the argument, else To (REGISTER) or From.
fn default_aor(cx: &mut MsgCx, arg: Option<&StrArg>) -> Option<String> {
    if let Some(a) = arg {
        return Some(a.eval(cx));
    }
    let m = cx.msg()?;
    let na = if m.method_bytes().eq_ignore_ascii_case(b"REGISTER") {
        m.to().ok()?
    } else {
        m.from().ok()?
    };
    Some(String::from_utf8_lossy(na.uri().raw()).into_owned())
}

fn valid_contacts(
    reg: &Registrar,
    d: DomainId,
    aor_uri: &str,
    now: i64,
) -> Option<Vec<sipox_mod_usrloc::Contact>> {
    let t = aor::extract(
        aor_uri.as_bytes(),
        &reg.params,
        reg.usrloc().use_domain(),
        false,
    )
    .ok()?;
    let cts = reg.usrloc().contacts(d, &t.aor, now).ok()??;
    let v: Vec<_> = cts.into_iter().filter(|c| c.is_valid(now)).collect();
    (!v.is_empty()).then_some(v)
}

#[derive(Debug)]
struct IsRegistered {
    reg: Arc<Registrar>,
    dom: DomArg,
    aor: Option<StrArg>,
}

fn build_is_registered(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    let reg = instance(&a)?;
    let dom = domain(&mut a, &reg, 0)?;
    Ok(Box::new(IsRegistered {
        reg,
        dom,
        aor: StrArg::from(a.fmt(1)),
    }))
}

impl Call for IsRegistered {
    fn call(&self, cx: &mut MsgCx) -> Result<Ret, Stop> {
        let Some(d) = self.dom.resolve(&self.reg, cx) else {
            return Ok(Ret(-1));
        };
        let Some(aor) = default_aor(cx, self.aor.as_ref()) else {
            return Ok(Ret(-1));
        };
        Ok(Ret::of(
            valid_contacts(&self.reg, d, &aor, now_s(cx)).is_some(),
        ))
    }
}

#[derive(Debug)]
struct IsContactRegistered {
    reg: Arc<Registrar>,
    dom: DomArg,
    aor: Option<StrArg>,
    contact: Option<StrArg>,
    callid: Option<StrArg>,
}

fn build_is_contact_registered(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    let reg = instance(&a)?;
    let dom = domain(&mut a, &reg, 0)?;
    Ok(Box::new(IsContactRegistered {
        reg,
        dom,
        aor: StrArg::from(a.fmt(1)),
        contact: StrArg::from(a.fmt(2)),
        callid: StrArg::from(a.fmt(3)),
    }))
}

fn msg_contacts(m: &SipMsg) -> Vec<String> {
    m.contacts()
        .filter_map(Result::ok)
        .filter_map(|c| match c.v {
            sipox_sip_msg::ContactValue::Addr(na) => {
                Some(String::from_utf8_lossy(m.bind(na).uri().raw()).into_owned())
            }
            sipox_sip_msg::ContactValue::Star(_) => None,
        })
        .collect()
}

impl Call for IsContactRegistered {
    fn call(&self, cx: &mut MsgCx) -> Result<Ret, Stop> {
        let Some(d) = self.dom.resolve(&self.reg, cx) else {
            return Ok(Ret(-1));
        };
        let Some(aor) = default_aor(cx, self.aor.as_ref()) else {
            return Ok(Ret(-1));
        };
        let wanted: Vec<String> = match some_nonempty(self.contact.as_ref(), cx) {
            Some(c) => vec![c],
            None => cx.msg().map(msg_contacts).unwrap_or_default(),
        };
        let callid = some_nonempty(self.callid.as_ref(), cx);
        let Some(cts) = valid_contacts(&self.reg, d, &aor, now_s(cx)) else {
            return Ok(Ret(-1));
        };
        let hit = cts.iter().any(|c| {
            (wanted.is_empty() || wanted.contains(&c.uri))
                && callid.as_ref().is_none_or(|id| *id == c.callid)
                && !(wanted.is_empty() && callid.is_none())
        });
        Ok(Ret::of(hit))
    }
}

#[derive(Debug)]
struct IsIpRegistered {
    reg: Arc<Registrar>,
    dom: DomArg,
    aor: Option<StrArg>,
    ip: StrArg,
    port: Option<StrArg>,
}

fn build_is_ip_registered(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    let reg = instance(&a)?;
    let dom = domain(&mut a, &reg, 0)?;
    let aor = StrArg::from(a.fmt(1));
    let ip = StrArg::from(a.fmt(2)).ok_or_else(|| FixupError::arg(2, "missing IP"))?;
    Ok(Box::new(IsIpRegistered {
        reg,
        dom,
        aor,
        ip,
        port: StrArg::from(a.fmt(3)),
    }))
}

impl Call for IsIpRegistered {
    fn call(&self, cx: &mut MsgCx) -> Result<Ret, Stop> {
        let Some(d) = self.dom.resolve(&self.reg, cx) else {
            return Ok(Ret(-1));
        };
        let Some(aor) = default_aor(cx, self.aor.as_ref()) else {
            return Ok(Ret(-1));
        };
        let ip = self.ip.eval(cx);
        let hop = match some_nonempty(self.port.as_ref(), cx) {
            Some(p) => format!("{ip}:{p}"),
            None => ip,
        };
        let Some(cts) = valid_contacts(&self.reg, d, &aor, now_s(cx)) else {
            return Ok(Ret(-1));
        };
        Ok(Ret::of(
            cts.iter().any(|c| crate::engine::next_hop_matches(c, &hop)),
        ))
    }
}

// ----- add_sock_hdr -----

#[derive(Debug)]
struct AddSockHdr {
    name: StrArg,
}

fn build_add_sock_hdr(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    let name = StrArg::from(a.fmt(0)).ok_or_else(|| FixupError::arg(0, "missing header name"))?;
    Ok(Box::new(AddSockHdr { name }))
}

impl Call for AddSockHdr {
    fn call(&self, cx: &mut MsgCx) -> Result<Ret, Stop> {
        let name = self.name.eval(cx);
        let s = *cx.source();
        let value = format!("{}:{}:{}", s.proto, sipox_fmt_ip(s.local_ip), s.local_port);
        let Some(m) = cx.msg_mut() else {
            return Ok(Ret(-1));
        };
        if m.header(HeaderKind::Via).is_none() {
            return Ok(Ret(-1));
        }
        m.append_header(name.as_bytes(), value.as_bytes());
        Ok(Ret(1))
    }
}
