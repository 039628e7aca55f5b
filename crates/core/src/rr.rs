//! The `rr` module (record routing, RFC 3261 §16.4, §16.6 step 4/6, §16.12): `record_route`,
//! `record_route_preset`, `loose_route`, `add_rr_param`, `check_route_param`, `is_direction`
//! and `$rr_params`, with the modparams `append_fromtag` (default 1), `enable_double_rr`
//! (default 1) and `add_username` (default 0).
//!
//! # Where the Record-Route address comes from
//! Our Record-Route URI must name the socket the request leaves on, which is only known when
//! it is sent. `record_route()` therefore records a *pending* Record-Route in the message's
//! [`RrState`] (user, from-tag, parameters); whatever sends the request (`forward()` now, the
//! stateful relay later) calls [`record_route_lines`] with the chosen outgoing socket and inserts
//! the result with [`insert_record_route`] among the per-destination edits. That is OpenSIPS's
//! design (its Record-Route lump holds "the sending socket's address" placeholders that are
//! resolved when the branch is built). The host:port is the outgoing socket's advertised
//! address (`socket = ... as host:port`) or its bound address. When the request arrived on
//! another socket (another interface or transport) and `enable_double_rr` is on, two
//! Record-Routes are inserted — the outgoing socket's on top, the incoming one's below — both
//! with `;r2=on`, and `loose_route()` later removes both.

use std::sync::Arc;

use bytes::Bytes;
use sipox_cfg_syntax::Value;
use sipox_script::{
    Args, Call, FixupError, FnDef, Kind, ModuleDef, ModulePv, MsgCx, MsgState, RegexArg, Registry,
    Ret, Sig, Stop, route_mask,
};
use sipox_sip_msg::{CommaSplit, Header, HeaderKind, SipMsg, Span, parse_name_addr};
use sipox_transport::{Proto, SocketInfo, Source, Transports};

use crate::runtime::Runtime;

type R = Result<Ret, Stop>;

/// Per-message state of the rr module.
#[derive(Debug, Default)]
pub(crate) struct RrState {
    /// 0: no Record-Route asked; 1: `record_route()`; 2: `record_route_preset()`.
    mode: u8,
    /// User part for the Record-Route URI (`add_username`).
    user: Vec<u8>,
    /// From-tag for `;ftag=` (`append_fromtag`); empty: none.
    ftag: Vec<u8>,
    /// Parameters given to `record_route(params)`.
    params: Vec<u8>,
    /// Parameters added by `add_rr_param()` (before or after `record_route()`).
    added: Vec<u8>,
    /// `record_route_preset` strings.
    preset: Vec<u8>,
    preset2: Vec<u8>,
    has_preset2: bool,
    /// `enable_double_rr`.
    double: bool,
    /// URI parameters of our Route header that `loose_route()` consumed (without the first
    /// `;`): `$rr_params`, `check_route_param`, `is_direction`.
    route_params: Vec<u8>,
}

impl MsgState for RrState {
    fn reset(&mut self) {
        self.mode = 0;
        self.user.clear();
        self.ftag.clear();
        self.params.clear();
        self.added.clear();
        self.preset.clear();
        self.preset2.clear();
        self.has_preset2 = false;
        self.double = false;
        self.route_params.clear();
    }
}

fn modparam_int(a: &Args<'_>, name: &str, default: i64) -> i64 {
    match a.cx.modparam("rr", name) {
        Some(Value::Int(i)) => i,
        Some(Value::Bool(b)) => i64::from(b),
        Some(Value::Str(s)) => s.trim().parse().unwrap_or(default),
        _ => default,
    }
}

#[derive(Debug, Clone, Copy)]
struct RrCfg {
    append_fromtag: bool,
    double: bool,
    add_username: bool,
}

fn rr_cfg(a: &Args<'_>) -> RrCfg {
    RrCfg {
        append_fromtag: modparam_int(a, "append_fromtag", 1) != 0,
        double: modparam_int(a, "enable_double_rr", 1) != 0,
        add_username: modparam_int(a, "add_username", 0) != 0,
    }
}

/// Registers the rr module's functions and `$rr_params` over their declarations.
pub(crate) fn register(r: &mut Registry) {
    use route_mask::{BRANCH, FAILURE, REQUEST};
    let rbf = REQUEST | BRANCH | FAILURE;
    r.add_module(ModuleDef {
        name: "rr",
        params: vec![],
        fns: vec![
            FnDef {
                sig: Sig::new("rr", "loose_route", "", REQUEST),
                build: Some(|_| Ok(Box::new(LooseRoute))),
            },
            FnDef {
                sig: Sig::new("rr", "record_route", "s?", rbf),
                build: Some(|mut a| {
                    let cfg = rr_cfg(&a);
                    Ok(Box::new(RecordRoute {
                        params: a.fmt(0),
                        cfg,
                    }))
                }),
            },
            FnDef {
                sig: Sig::new("rr", "record_route_preset", "s,s?", rbf),
                build: Some(|mut a| {
                    let cfg = rr_cfg(&a);
                    let first = a
                        .fmt(0)
                        .ok_or_else(|| FixupError::arg(0, "expected the Record-Route address"))?;
                    Ok(Box::new(RecordRoutePreset {
                        first,
                        second: a.fmt(1),
                        cfg,
                    }))
                }),
            },
            FnDef {
                sig: Sig::new("rr", "add_rr_param", "s", rbf),
                build: Some(|mut a| {
                    let p = a
                        .fmt(0)
                        .ok_or_else(|| FixupError::arg(0, "expected \";name=value\""))?;
                    Ok(Box::new(AddRrParam(p)))
                }),
            },
            FnDef {
                sig: Sig::new("rr", "check_route_param", "r", REQUEST),
                build: Some(|mut a| {
                    let re = a
                        .regex(0)
                        .ok_or_else(|| FixupError::arg(0, "expected a regular expression"))?;
                    Ok(Box::new(CheckRouteParam(re)))
                }),
            },
            FnDef {
                sig: Sig::new("rr", "is_direction", "S", REQUEST),
                build: Some(|mut a| {
                    let d = a.static_str(0).unwrap_or_default();
                    let down = if d.eq_ignore_ascii_case(b"downstream") {
                        true
                    } else if d.eq_ignore_ascii_case(b"upstream") {
                        false
                    } else {
                        return Err(FixupError::arg(
                            0,
                            "direction must be \"upstream\" or \"downstream\"",
                        ));
                    };
                    Ok(Box::new(IsDirection { down }))
                }),
            },
        ],
    });
    r.add_pv("rr_params", Arc::new(RrParamsPv));
}

// ----- record_route -----

fn from_tag(cx: &MsgCx) -> Vec<u8> {
    cx.msg()
        .and_then(|m| m.from().ok().and_then(|f| f.tag().map(<[u8]>::to_vec)))
        .unwrap_or_default()
}

fn ruri_user(cx: &MsgCx) -> Vec<u8> {
    sipox_sip_msg::uri(cx.ruri())
        .ok()
        .and_then(|u| u.user().map(<[u8]>::to_vec))
        .unwrap_or_default()
}

/// Starts a pending Record-Route; false when one is pending already (OpenSIPS refuses a
/// second `record_route()` for the same request).
fn begin(cx: &mut MsgCx, cfg: RrCfg, mode: u8) -> Option<&mut RrState> {
    let ftag = if cfg.append_fromtag {
        from_tag(cx)
    } else {
        Vec::new()
    };
    let user = if cfg.add_username {
        ruri_user(cx)
    } else {
        Vec::new()
    };
    let st = cx.state::<RrState>()?;
    if st.mode != 0 {
        return None;
    }
    st.mode = mode;
    st.ftag = ftag;
    st.user = user;
    st.double = cfg.double;
    Some(st)
}

#[derive(Debug)]
struct RecordRoute {
    params: Option<sipox_script::Fmt>,
    cfg: RrCfg,
}

impl Call for RecordRoute {
    /// 1: Record-Route pending for the outgoing request; -1: not a request, or done already.
    fn call(&self, cx: &mut MsgCx) -> R {
        if !cx.msg().is_some_and(SipMsg::is_request) {
            return Ok(Ret::FALSE);
        }
        let mut p = Vec::new();
        if let Some(f) = &self.params {
            cx.eval_fmt(f, &mut p);
        }
        let Some(st) = begin(cx, self.cfg, 1) else {
            cx.log(-1, b"ERROR: record_route: double attempt to record-route");
            return Ok(Ret::FALSE);
        };
        push_param(&mut st.params, &p);
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct RecordRoutePreset {
    first: sipox_script::Fmt,
    second: Option<sipox_script::Fmt>,
    cfg: RrCfg,
}

impl Call for RecordRoutePreset {
    /// 1: Record-Route(s) pending; -1: not a request, empty address, or done already.
    fn call(&self, cx: &mut MsgCx) -> R {
        if !cx.msg().is_some_and(SipMsg::is_request) {
            return Ok(Ret::FALSE);
        }
        let mut a = Vec::new();
        cx.eval_fmt(&self.first, &mut a);
        let b = self.second.as_ref().map(|f| {
            let mut b = Vec::new();
            cx.eval_fmt(f, &mut b);
            b
        });
        if a.is_empty() || b.as_ref().is_some_and(Vec::is_empty) {
            cx.log(-1, b"ERROR: record_route_preset: empty address");
            return Ok(Ret::FALSE);
        }
        let Some(st) = begin(cx, self.cfg, 2) else {
            cx.log(
                -1,
                b"ERROR: record_route_preset: double attempt to record-route",
            );
            return Ok(Ret::FALSE);
        };
        st.preset = a;
        if let Some(b) = b {
            st.preset2 = b;
            st.has_preset2 = true;
        }
        Ok(Ret::TRUE)
    }
}

/// Appends `;name=value` text, adding the `;` when the script left it out.
fn push_param(out: &mut Vec<u8>, p: &[u8]) {
    let p = p.trim_ascii();
    if p.is_empty() {
        return;
    }
    if !p.starts_with(b";") {
        out.push(b';');
    }
    out.extend_from_slice(p);
}

#[derive(Debug)]
struct AddRrParam(sipox_script::Fmt);

impl Call for AddRrParam {
    /// 1: added (to the pending or a later Record-Route); -1: not a request.
    fn call(&self, cx: &mut MsgCx) -> R {
        if !cx.msg().is_some_and(SipMsg::is_request) {
            return Ok(Ret::FALSE);
        }
        let mut p = cx.take_buf();
        cx.eval_fmt(&self.0, &mut p);
        if let Some(st) = cx.state::<RrState>() {
            push_param(&mut st.added, &p);
        }
        cx.give_buf(p);
        Ok(Ret::TRUE)
    }
}

fn host_port_of(s: &SocketInfo) -> (String, u16) {
    crate::runtime::advertised(s)
}

/// The port a URI or Via without one means for transport `p`.
pub(crate) fn default_port(p: Proto) -> u16 {
    match p {
        Proto::Tls | Proto::Wss => 5061,
        _ => 5060,
    }
}

fn one_rr(out: &mut Vec<u8>, st: &RrState, addr: RrAddr<'_>, r2: bool) {
    out.extend_from_slice(b"Record-Route: <");
    match addr {
        RrAddr::Sock(s) => {
            out.extend_from_slice(b"sip:");
            if !st.user.is_empty() {
                out.extend_from_slice(&st.user);
                out.push(b'@');
            }
            let (host, port) = host_port_of(s);
            if host.contains(':') && !host.starts_with('[') {
                out.push(b'[');
                out.extend_from_slice(host.as_bytes());
                out.push(b']');
            } else {
                out.extend_from_slice(host.as_bytes());
            }
            if port != default_port(s.proto) {
                out.extend_from_slice(format!(":{port}").as_bytes());
            }
            if s.proto != Proto::Udp {
                out.extend_from_slice(b";transport=");
                out.extend_from_slice(s.proto.as_str().as_bytes());
            }
        }
        RrAddr::Preset(p) => {
            let has_scheme = p.len() > 4
                && (p[..4].eq_ignore_ascii_case(b"sip:")
                    || p.get(..5).is_some_and(|x| x.eq_ignore_ascii_case(b"sips:")));
            if !has_scheme {
                out.extend_from_slice(b"sip:");
                if !st.user.is_empty() {
                    out.extend_from_slice(&st.user);
                    out.push(b'@');
                }
            }
            out.extend_from_slice(p);
        }
    }
    if r2 {
        out.extend_from_slice(b";r2=on");
    }
    out.extend_from_slice(b";lr");
    if !st.ftag.is_empty() {
        out.extend_from_slice(b";ftag=");
        out.extend_from_slice(&st.ftag);
    }
    out.extend_from_slice(&st.params);
    out.extend_from_slice(&st.added);
    out.extend_from_slice(b">\r\n");
}

#[derive(Clone, Copy)]
enum RrAddr<'a> {
    Sock(&'a SocketInfo),
    Preset(&'a [u8]),
}

/// The pending Record-Route header line(s) of the current request for a send on `out`
/// (received on `src`), or `None` when the script asked for none. See the module docs.
pub(crate) fn record_route_lines(
    cx: &MsgCx,
    tx: &Transports,
    src: &Source,
    out: &SocketInfo,
) -> Option<Vec<u8>> {
    let st = cx.peek_state::<RrState>()?;
    let mut v = Vec::with_capacity(160);
    match st.mode {
        1 => {
            let inbound = tx.sockets().iter().find(|s| s.id == src.socket);
            match inbound {
                Some(i) if st.double && i.id != out.id => {
                    one_rr(&mut v, st, RrAddr::Sock(out), true);
                    one_rr(&mut v, st, RrAddr::Sock(i), true);
                }
                _ => one_rr(&mut v, st, RrAddr::Sock(out), false),
            }
        }
        2 => {
            let two = st.has_preset2;
            one_rr(&mut v, st, RrAddr::Preset(&st.preset), two);
            if two {
                one_rr(&mut v, st, RrAddr::Preset(&st.preset2), true);
            }
        }
        _ => return None,
    }
    Some(v)
}

/// Inserts Record-Route lines before the message's first Record-Route (or as the first header).
pub(crate) fn insert_record_route(msg: &mut SipMsg, lines: Vec<u8>) {
    let at = msg
        .header(HeaderKind::RecordRoute)
        .or_else(|| msg.headers().first())
        .map(|h| h.name.start);
    match at {
        Some(at) => msg.insert_at(at, Bytes::from(lines)),
        None => msg.append_raw_headers(Bytes::from(lines)),
    }
}

// ----- loose_route -----

/// One Route value: its header, its span, and facts about its URI.
#[derive(Debug, Clone)]
struct RouteVal {
    hdr: Header,
    span: Span,
    uri: Vec<u8>,
    params: Vec<u8>,
    lr: bool,
    r2: bool,
    ours: bool,
}

fn strip_semi(p: &[u8]) -> &[u8] {
    p.strip_prefix(b";").unwrap_or(p)
}

fn uri_is_ours(rt: &Runtime, u: &sipox_sip_msg::Bound<'_, sipox_sip_msg::Uri>) -> bool {
    let tls = u.scheme_str().eq_ignore_ascii_case(b"sips")
        || u.transport()
            .is_some_and(|t| t.eq_ignore_ascii_case(b"tls") || t.eq_ignore_ascii_case(b"wss"));
    let port = u.port().unwrap_or(if tls { 5061 } else { 5060 });
    rt.is_ours(u.host(), port)
}

fn routes(rt: &Runtime, m: &SipMsg) -> Option<Vec<RouteVal>> {
    let mut out = Vec::new();
    for h in m.headers_of(HeaderKind::Route) {
        for s in CommaSplit::new(m.buf(), h.value) {
            let na = parse_name_addr(m.buf(), s).ok()?;
            let na = m.bind(na);
            let u = na.uri();
            out.push(RouteVal {
                hdr: *h,
                span: s,
                uri: u.raw().to_vec(),
                params: strip_semi(u.params().raw()).to_vec(),
                lr: u.is_lr(),
                r2: u.param(b"r2").is_some(),
                ours: uri_is_ours(rt, &u),
            });
        }
    }
    Some(out)
}

/// Deletes the Route values at `idx` (sorted): whole header lines when all of a header's
/// values go, else the values with their separating commas.
fn remove_routes(m: &mut SipMsg, all: &[RouteVal], idx: &[usize]) {
    let mut i = 0;
    while i < all.len() {
        let h = all[i].hdr;
        let mut j = i;
        while j < all.len() && all[j].hdr.name == h.name {
            j += 1;
        }
        let vals = &all[i..j];
        let gone: Vec<bool> = (i..j).map(|k| idx.contains(&k)).collect();
        if gone.iter().all(|g| *g) {
            m.remove_header(&h);
        } else {
            let mut k = 0;
            while k < vals.len() {
                if !gone[k] {
                    k += 1;
                    continue;
                }
                let mut e = k;
                while e < vals.len() && gone[e] {
                    e += 1;
                }
                let span = if e < vals.len() {
                    Span {
                        start: vals[k].span.start,
                        end: vals[e].span.start,
                    }
                } else {
                    // The run reaches the last value: delete from the end of the kept one.
                    Span {
                        start: vals[k - 1].span.end,
                        end: vals[e - 1].span.end,
                    }
                };
                m.delete(span);
                k = e;
            }
        }
        i = j;
    }
}

#[derive(Debug)]
struct LooseRoute;

impl Call for LooseRoute {
    /// 1: routed by the Route set (`$du` and/or the R-URI set for the next hop); -1: no Route
    /// header, only our own preloaded Route on an initial request (removed), or a bad Route.
    fn call(&self, cx: &mut MsgCx) -> R {
        Ok(Ret(loose_route(cx)))
    }
}

fn set_route_params(cx: &mut MsgCx, p: &[u8]) {
    if let Some(st) = cx.state::<RrState>() {
        st.route_params.clear();
        st.route_params.extend_from_slice(p);
    }
}

fn loose_route(cx: &mut MsgCx) -> i32 {
    let Some(rt) = cx.ext::<Runtime>() else {
        return -1;
    };
    set_route_params(cx, b"");
    let Some(m) = cx.msg() else {
        return -1;
    };
    if !m.is_request() || m.header(HeaderKind::Route).is_none() {
        return -1;
    }
    let Some(rs) = routes(&rt, m) else {
        cx.log(-1, b"ERROR: loose_route: bad Route header");
        return -1;
    };
    if rs.is_empty() {
        return -1;
    }
    let has_totag = m
        .to()
        .ok()
        .and_then(|t| t.tag())
        .is_some_and(|t| !t.is_empty());
    let ruri = cx.ruri().to_vec();
    let strict_prev = match sipox_sip_msg::uri(&ruri) {
        Ok(u) => uri_is_ours(&rt, &u) && (u.is_lr() || (has_totag && u.user().is_none())),
        Err(_) => false,
    };
    if strict_prev {
        // §16.4: the previous hop was a strict router and put our Record-Route URI in the
        // R-URI; the original R-URI is the last Route.
        let params = sipox_sip_msg::uri(&ruri)
            .map(|u| strip_semi(u.params().raw()).to_vec())
            .unwrap_or_default();
        let r2 = sipox_sip_msg::uri(&ruri).is_ok_and(|u| u.param(b"r2").is_some());
        set_route_params(cx, &params);
        let mut idx = 0;
        let mut gone = Vec::new();
        if r2 && rs[0].ours {
            gone.push(0);
            idx = 1;
        }
        let Some(next) = rs.get(idx) else {
            if let Some(m) = cx.msg_mut() {
                remove_routes(m, &rs, &gone);
            }
            return 1;
        };
        if next.lr {
            let last = rs.len() - 1;
            let du = next.uri.clone();
            let new_ruri = rs[last].uri.clone();
            gone.push(last);
            gone.dedup();
            cx.set_dst_uri(&du);
            cx.set_ruri(&new_ruri);
        } else {
            let new_ruri = next.uri.clone();
            gone.push(idx);
            cx.set_ruri(&new_ruri);
        }
        if let Some(m) = cx.msg_mut() {
            remove_routes(m, &rs, &gone);
        }
        return 1;
    }
    // §16.4 second part: pop our own Route value(s).
    let mut gone = Vec::new();
    let mut idx = 0;
    if rs[0].ours {
        set_route_params(cx, &rs[0].params);
        gone.push(0);
        idx = 1;
        if rs[0].r2 && rs.get(1).is_some_and(|r| r.ours) {
            gone.push(1);
            idx = 2;
        }
    }
    let Some(next) = rs.get(idx).cloned() else {
        if let Some(m) = cx.msg_mut() {
            remove_routes(m, &rs, &gone);
        }
        // Only our own Route: an initial request with a preloaded Route is routed by its
        // R-URI (false); an in-dialog one was routed by us (true).
        return if has_totag { 1 } else { -1 };
    };
    if next.lr {
        cx.set_dst_uri(&next.uri);
        if let Some(m) = cx.msg_mut() {
            remove_routes(m, &rs, &gone);
        }
    } else {
        // §16.6 step 6: the next hop is a strict router: its URI becomes the R-URI and the
        // R-URI goes to the end of the Route set.
        gone.push(idx);
        cx.set_ruri(&next.uri);
        let last_hdr = rs[rs.len() - 1].hdr;
        if let Some(m) = cx.msg_mut() {
            remove_routes(m, &rs, &gone);
            let mut line = Vec::with_capacity(ruri.len() + 12);
            line.extend_from_slice(b"Route: <");
            line.extend_from_slice(&ruri);
            line.extend_from_slice(b">\r\n");
            m.insert_at(last_hdr.end, Bytes::from(line));
        }
    }
    1
}

// ----- check_route_param, is_direction, $rr_params -----

#[derive(Debug)]
struct CheckRouteParam(RegexArg);

impl Call for CheckRouteParam {
    /// 1: the parameters of our Route (after `loose_route`) match; -1: no match or none.
    fn call(&self, cx: &mut MsgCx) -> R {
        let params = cx
            .peek_state::<RrState>()
            .map(|s| s.route_params.clone())
            .unwrap_or_default();
        if params.is_empty() {
            return Ok(Ret::FALSE);
        }
        let hit = self.0.is_match(cx, &params);
        Ok(Ret::of(hit))
    }
}

#[derive(Debug)]
struct IsDirection {
    down: bool,
}

impl Call for IsDirection {
    /// 1 when the request flows in the asked direction (downstream: its From-tag is the
    /// `ftag` of our Route; no `ftag` counts as downstream); -1 otherwise.
    fn call(&self, cx: &mut MsgCx) -> R {
        let ftag = cx.peek_state::<RrState>().and_then(|s| {
            s.route_params.split(|&c| c == b';').find_map(|p| {
                let (n, v) = match p.iter().position(|&c| c == b'=') {
                    Some(i) => (&p[..i], &p[i + 1..]),
                    None => (p, &b""[..]),
                };
                n.trim_ascii()
                    .eq_ignore_ascii_case(b"ftag")
                    .then(|| v.trim_ascii().to_vec())
            })
        });
        let down = match ftag {
            None => true,
            Some(t) => from_tag(cx) == t,
        };
        Ok(Ret::of(down == self.down))
    }
}

#[derive(Debug)]
struct RrParamsPv;

impl ModulePv for RrParamsPv {
    fn get(&self, cx: &mut MsgCx, out: &mut Vec<u8>) -> Kind {
        match cx.peek_state::<RrState>() {
            Some(s) if !s.route_params.is_empty() => {
                out.extend_from_slice(&s.route_params);
                Kind::Str
            }
            _ => Kind::Null,
        }
    }
}
