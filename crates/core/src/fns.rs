//! Script functions that need the network, implemented by the runtime and registered over the
//! declarations in the standard registry: core `forward`, `sl` (`sl_send_reply`,
//! `sl_reply_error`), `signaling` (`send_reply`), `options` (`options_reply`).

use std::sync::atomic::Ordering;

use bytes::Bytes;
use sipox_script::{
    Arg, Args, Call, FixupError, FnDef, IntArg, ModuleDef, MsgCx, Registry, Ret, Sig, Stop,
    route_mask,
};
use sipox_sip_msg::Method;
use sipox_transport::Dest;

use crate::runtime::{
    Runtime, current_source, force_rport_for_message, proto_of, rport_forced, stateless_reply_with,
};

type R = Result<Ret, Stop>;

pub(crate) fn register(r: &mut Registry) {
    use route_mask::{ERROR, FAILURE, REQUEST};
    crate::rr::register(r);
    let any_route = REQUEST | FAILURE | route_mask::ONREPLY | route_mask::BRANCH;
    r.set_core_fn(FnDef {
        sig: Sig::new(
            "core",
            "force_rport",
            "",
            REQUEST | FAILURE | route_mask::BRANCH,
        ),
        build: Some(|_| Ok(Box::new(ForceRport))),
    });
    r.set_core_fn(FnDef {
        sig: Sig::new(
            "core",
            "add_local_rport",
            "",
            REQUEST | FAILURE | route_mask::BRANCH,
        ),
        build: Some(|_| Ok(Box::new(AddLocalRport))),
    });
    r.set_core_fn(FnDef {
        sig: Sig::new("core", "set_advertised_address", "s", any_route),
        build: Some(|mut a| {
            let f = a
                .fmt(0)
                .ok_or_else(|| FixupError::arg(0, "expected an address"))?;
            Ok(Box::new(SetAdvertised { f, port: false }))
        }),
    });
    r.set_core_fn(FnDef {
        sig: Sig::new("core", "set_advertised_port", "s", any_route),
        build: Some(|mut a| {
            let f = a
                .fmt(0)
                .ok_or_else(|| FixupError::arg(0, "expected a port"))?;
            if let Some(c) = f.as_const() {
                parse_port(c).ok_or_else(|| FixupError::arg(0, "not a port number"))?;
            }
            Ok(Box::new(SetAdvertised { f, port: true }))
        }),
    });
    r.set_core_fn(FnDef {
        sig: Sig::new(
            "core",
            "set_via_handling",
            "s",
            REQUEST | FAILURE | route_mask::BRANCH,
        ),
        build: Some(|mut a| {
            let text = a
                .static_str(0)
                .ok_or_else(|| FixupError::arg(0, "expected a static list of flags"))?;
            let mut v = SetViaHandling::default();
            for flag in String::from_utf8_lossy(&text).split(',') {
                match flag.trim() {
                    "force-rport" => v.force_rport = true,
                    "add-local-rport" => v.local_rport = true,
                    "reply-to-via" => v.reply_to_via = true,
                    "force-tcp-alias" => v.tcp_alias = true,
                    "" => {}
                    other => {
                        return Err(FixupError::arg(0, format!("unknown flag '{other}'")));
                    }
                }
            }
            Ok(Box::new(v))
        }),
    });
    for (name, on) in [("use_blacklist", true), ("unuse_blacklist", false)] {
        r.set_core_fn(FnDef {
            sig: Sig::new("core", name, "s", any_route),
            build: Some(if on {
                |mut a| Ok(Box::new(UseBlacklist(bl_name(&mut a)?, true)))
            } else {
                |mut a| Ok(Box::new(UseBlacklist(bl_name(&mut a)?, false)))
            }),
        });
    }
    r.set_core_fn(FnDef {
        sig: Sig::new("core", "check_blacklist_rule", "s,s,s?,s?,s?", any_route),
        build: Some(|a| bl_rule(a, BlOp::Check)),
    });
    r.set_core_fn(FnDef {
        sig: Sig::new("core", "add_blacklist_rule", "s,s,s?,s?,s?,i?", any_route),
        build: Some(|a| bl_rule(a, BlOp::Add)),
    });
    r.set_core_fn(FnDef {
        sig: Sig::new("core", "del_blacklist_rule", "s,s,s?,s?,s?", any_route),
        build: Some(|a| bl_rule(a, BlOp::Del)),
    });
    r.set_core_fn(FnDef {
        sig: Sig::new("core", "force_tcp_alias", "i?", REQUEST),
        build: Some(|mut a| Ok(Box::new(ForceTcpAlias(a.int(0))))),
    });
    r.set_core_fn(FnDef {
        sig: Sig::new("core", "force_send_socket", "s", any_route),
        build: Some(|mut a| {
            let f = a
                .fmt(0)
                .ok_or_else(|| FixupError::arg(0, "expected proto:host:port"))?;
            if let Some(c) = f.as_const() {
                let text = String::from_utf8_lossy(c).into_owned();
                text.parse::<sipox_transport::ListenSpec>()
                    .map_err(|e| FixupError::arg(0, e.to_string()))?;
            }
            Ok(Box::new(ForceSendSocket(f)))
        }),
    });
    r.set_core_fn(FnDef {
        sig: Sig::new("core", "send", "s,s?", any_route),
        build: Some(|mut a| {
            let d = a
                .fmt(0)
                .ok_or_else(|| FixupError::arg(0, "expected a destination"))?;
            Ok(Box::new(Send(d, a.fmt(1))))
        }),
    });
    r.set_core_fn(FnDef {
        sig: Sig::new(
            "core",
            "forward",
            "s?",
            REQUEST | FAILURE | route_mask::ONREPLY | route_mask::BRANCH,
        ),
        build: Some(|mut a| Ok(Box::new(Forward { dest: a.fmt(0) }))),
    });
    r.add_module(ModuleDef {
        name: "sl",
        params: vec!["enable_stats"],
        fns: vec![
            FnDef {
                sig: Sig::new("sl", "sl_send_reply", "a,a", REQUEST | ERROR),
                build: Some(reply_call),
            },
            FnDef {
                sig: Sig::new("sl", "sl_reply_error", "", REQUEST | ERROR),
                build: Some(|_| Ok(Box::new(ReplyError))),
            },
        ],
    });
    r.add_module(ModuleDef {
        name: "signaling",
        params: vec![],
        fns: vec![FnDef {
            sig: Sig::new("signaling", "send_reply", "a,a", REQUEST | ERROR | FAILURE),
            build: Some(reply_call),
        }],
    });
    r.add_module(ModuleDef {
        name: "options",
        params: vec!["accept", "accept_encoding", "accept_language", "support"],
        fns: vec![FnDef {
            sig: Sig::new("options", "options_reply", "", REQUEST),
            build: Some(|_| Ok(Box::new(OptionsReply))),
        }],
    });
}

fn take(a: &mut Args<'_>, i: usize) -> Arg {
    a.args
        .get_mut(i)
        .map_or(Arg::None, |x| std::mem::replace(x, Arg::None))
}

fn reply_call(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    let code = take(&mut a, 0);
    if let Arg::Int(IntArg::Const(c)) = &code
        && !(100..=699).contains(c)
    {
        return Err(FixupError::arg(
            0,
            format!("reply code {c} is not in 100..699"),
        ));
    }
    Ok(Box::new(Reply {
        code,
        reason: take(&mut a, 1),
    }))
}

/// Evaluates an "any" argument as text into `out`.
fn text(cx: &mut MsgCx, a: &Arg, out: &mut Vec<u8>) {
    match a {
        Arg::Str(f) => cx.eval_fmt(f, out),
        Arg::Static(b) => out.extend_from_slice(b),
        Arg::Int(i) => {
            if let Some(v) = cx.eval_int(i) {
                out.extend_from_slice(v.to_string().as_bytes());
            }
        }
        _ => {}
    }
}

fn code_of(cx: &mut MsgCx, a: &Arg) -> Option<u16> {
    let v = match a {
        Arg::Int(i) => cx.eval_int(i)?,
        other => {
            let mut b = cx.take_buf();
            text(cx, other, &mut b);
            let v = std::str::from_utf8(&b)
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok());
            cx.give_buf(b);
            v?
        }
    };
    u16::try_from(v).ok().filter(|c| (100..=699).contains(c))
}

pub(crate) fn reply_from_script(cx: &mut MsgCx, code: u16, reason: &[u8], extra: &[u8]) -> i32 {
    if cx.msg().and_then(sipox_sip_msg::SipMsg::method) == Some(Method::Ack) {
        // ACK is never answered.
        return -1;
    }
    // With a transaction (t_newtran, t_relay, a failure route) the reply is stateful.
    if let Some(r) = crate::tm::reply_if_stateful(cx, code, reason, extra) {
        return r;
    }
    let (Some(rt), Some(src)) = (cx.ext::<Runtime>(), current_source()) else {
        return -1;
    };
    let Some(msg) = cx.msg() else {
        return -1;
    };
    // Headers stored by append_to_reply() go into every reply generated for this request.
    let hdrs;
    let extra = if cx.reply_headers().is_empty() {
        extra
    } else {
        hdrs = [cx.reply_headers(), extra].concat();
        hdrs.as_slice()
    };
    if stateless_reply_with(&rt, msg, &src, code, reason, extra) {
        1
    } else {
        -1
    }
}

#[derive(Debug)]
struct Reply {
    code: Arg,
    reason: Arg,
}

impl Call for Reply {
    fn call(&self, cx: &mut MsgCx) -> R {
        let Some(code) = code_of(cx, &self.code) else {
            cx.log(-1, b"ERROR: reply code must be a number in 100..699");
            return Ok(Ret(-1));
        };
        let mut reason = cx.take_buf();
        text(cx, &self.reason, &mut reason);
        let r = reply_from_script(cx, code, &reason, b"");
        cx.give_buf(reason);
        Ok(Ret(r))
    }
}

#[derive(Debug)]
struct ReplyError;

impl Call for ReplyError {
    fn call(&self, cx: &mut MsgCx) -> R {
        Ok(Ret(reply_from_script(
            cx,
            500,
            b"Server Internal Error",
            b"",
        )))
    }
}

#[derive(Debug)]
struct OptionsReply;

impl Call for OptionsReply {
    fn call(&self, cx: &mut MsgCx) -> R {
        if cx.msg().and_then(sipox_sip_msg::SipMsg::method) != Some(Method::Options) {
            cx.log(
                -1,
                b"ERROR: options_reply: called for a request that is not OPTIONS",
            );
            return Ok(Ret(-1));
        }
        let extra = b"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REGISTER, SUBSCRIBE, NOTIFY, PUBLISH, MESSAGE, INFO, PRACK, UPDATE, REFER\r\nAccept: */*\r\nAccept-Encoding: \r\nAccept-Language: en\r\nSupported: \r\n";
        Ok(Ret(reply_from_script(cx, 200, b"OK", extra)))
    }
}

#[derive(Debug)]
struct Forward {
    dest: Option<sipox_script::Fmt>,
}

impl Call for Forward {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut dest = cx.take_buf();
        match &self.dest {
            Some(f) => cx.eval_fmt(f, &mut dest),
            None if !cx.dst_uri().is_empty() => {
                let d = cx.dst_uri().to_vec();
                dest.extend_from_slice(&d);
            }
            None => {
                let r = cx.ruri().to_vec();
                dest.extend_from_slice(&r);
            }
        }
        if !(dest.starts_with(b"sip:") || dest.starts_with(b"sips:")) {
            let uri = destination_uri(&dest);
            dest.clear();
            dest.extend_from_slice(&uri);
        }
        let r = forward_to(cx, &dest);
        cx.give_buf(dest);
        Ok(Ret(r))
    }
}

/// RFC 3263 location of a host name: the first resolved destination whose transport this
/// element listens on (a stateless forward has no later failover).
pub(crate) fn resolve_name(
    rt: &Runtime,
    t: &sipox_proxy::Target,
) -> Option<(std::net::SocketAddr, sipox_sip_msg::Transport)> {
    resolve_targets(rt, t).into_iter().next()
}

/// Every RFC 3263 target of a URI's host name, in the order to try them (SRV by priority
/// and weight, then A/AAAA), skipping those this element has no socket for.
pub(crate) fn resolve_targets(
    rt: &Runtime,
    t: &sipox_proxy::Target,
) -> Vec<(std::net::SocketAddr, sipox_sip_msg::Transport)> {
    let sipox_proxy::Host::Name(name) = &t.host else {
        return Vec::new();
    };
    let explicit = t.transport_explicit.then_some(match t.transport {
        sipox_sip_msg::Transport::Tcp => sipox_dns::Transport::Tcp,
        sipox_sip_msg::Transport::Tls => sipox_dns::Transport::Tls,
        sipox_sip_msg::Transport::Sctp => sipox_dns::Transport::Sctp,
        _ => sipox_dns::Transport::Udp,
    });
    let sips = t.transport == sipox_sip_msg::Transport::Tls && !t.transport_explicit;
    #[allow(clippy::cast_possible_truncation)]
    let mut seed = (rt.to_tag_seed as u32) | 1;
    let mut rng = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let Some(dns) = rt.resolver() else {
        return Vec::new();
    };
    let cfg = rt.dns_config();
    let Ok(list) = sipox_dns::resolve(dns.as_ref(), &cfg, name, t.port, explicit, sips, &mut rng)
    else {
        return Vec::new();
    };
    let Some(tx) = rt.transports() else {
        return Vec::new();
    };
    list.into_iter()
        .filter_map(|r| {
            let tr = match r.transport {
                sipox_dns::Transport::Tcp => sipox_sip_msg::Transport::Tcp,
                sipox_dns::Transport::Tls => sipox_sip_msg::Transport::Tls,
                sipox_dns::Transport::Sctp => sipox_sip_msg::Transport::Sctp,
                _ => sipox_sip_msg::Transport::Udp,
            };
            tx.socket_for(proto_of(tr), &r.addr).map(|_| (r.addr, tr))
        })
        .collect()
}

/// `forward()` without a parameter: to `$du`, else the Request-URI.
pub(crate) fn forward_current(cx: &mut MsgCx) -> i32 {
    let dest = if cx.dst_uri().is_empty() {
        cx.ruri().to_vec()
    } else {
        cx.dst_uri().to_vec()
    };
    forward_to(cx, &dest)
}

/// Stateless forwarding (RFC 3261 §16.11): our Via with a branch derived from the request,
/// `received`/`rport` on the previous hop's Via, the message with the script's edits, sent to
/// the URI's address. Returns 1, or -1 when the destination cannot be reached.
fn forward_to(cx: &mut MsgCx, dest: &[u8]) -> i32 {
    let (Some(rt), Some(src)) = (cx.ext::<Runtime>(), current_source()) else {
        return -1;
    };
    let Ok(u) = sipox_sip_msg::uri(dest) else {
        cx.log(-1, b"ERROR: forward: bad destination URI");
        return -1;
    };
    let Ok(target) = sipox_proxy::request_target(&u) else {
        cx.log(-1, b"ERROR: forward: destination cannot be routed");
        return -1;
    };
    let (addr, transport) = match target.socket_addr() {
        Some(a) => (a, target.transport),
        None => match resolve_name(&rt, &target) {
            Some(r) => r,
            None => {
                cx.log(
                    -1,
                    b"ERROR: forward: the destination's host did not resolve (RFC 3263)",
                );
                return -1;
            }
        },
    };
    let target = sipox_proxy::Target {
        transport,
        ..target
    };
    let proto = proto_of(target.transport);
    let Some(tx) = rt.transports() else {
        return -1;
    };
    let forced = cx.peek_state::<ViaFlags>().and_then(|f| f.send_socket);
    let sock = match forced {
        Some(id) => tx.sockets().iter().find(|s| s.id == id && s.proto == proto),
        None => tx.socket_for(proto, &addr),
    };
    let Some(sock) = sock else {
        cx.log(
            -1,
            b"ERROR: forward: no socket for the destination's transport and family",
        );
        return -1;
    };
    let (host, port) = crate::runtime::advertised(sock);
    let sock_id = sock.id;
    let rr_lines = crate::rr::record_route_lines(cx, tx, &src, sock);
    let out_ruri = cx.ruri().to_vec();
    // Over a stream the reply must find the client's connection again (RFC 3261 §18.2.2): its
    // source port is in no header unless we record it, so stream sources always get rport.
    let force_rport = rport_forced(&rt) || src.proto != sipox_transport::Proto::Udp;
    let flags = cx
        .peek_state::<ViaFlags>()
        .map(|f| (f.local_rport, f.send_socket))
        .unwrap_or_default();
    let Some(msg) = cx.msg_mut() else {
        return -1;
    };
    let branch = sipox_proxy::stateless_branch(msg, &out_ruri);
    let via = sipox_proxy::via_value(target.transport, &host, port, &branch, flags.0);
    let recv = msg.via1().ok().and_then(|v| {
        sipox_proxy::via_receive_params(&v, src.remote, force_rport).map(|p| (v.v.span.end, p))
    });
    let mark = msg.edit_mark();
    if let Some((at, p)) = recv {
        msg.insert_at(at, Bytes::from(p.into_bytes()));
    }
    if let Some(rr) = rr_lines {
        crate::rr::insert_record_route(msg, rr);
    }
    msg.push_via(via.as_bytes());
    let mut out = Vec::with_capacity(msg.raw().len() + 256);
    let written = cx.write_message(&mut out).is_ok();
    if let Some(m) = cx.msg_mut() {
        m.truncate_edits(mark);
    }
    if !written {
        return -1;
    }
    if blocked(cx, &rt, proto, addr, &out, "forward") {
        return -1;
    }
    match tx.send(
        &Dest {
            proto,
            addr,
            socket: Some(sock_id),
            conn: None,
        },
        Bytes::from(out),
    ) {
        Ok(()) => {
            rt.counters.fwd_requests.fetch_add(1, Ordering::Relaxed);
            1
        }
        Err(_) => -1,
    }
}

/// A script destination as a SIP URI: `sip:`/`sips:` URIs as they are, `proto:host[:port]`
/// (OpenSIPS's `forward("udp:10.0.0.1:5060")` style) as `sip:host[:port];transport=proto`,
/// anything else as `sip:<text>`.
pub(crate) fn destination_uri(dest: &[u8]) -> Vec<u8> {
    if dest.starts_with(b"sip:") || dest.starts_with(b"sips:") {
        return dest.to_vec();
    }
    let s = String::from_utf8_lossy(dest);
    match s.split_once(':') {
        Some((p, rest)) if sipox_transport::Proto::parse(p).is_some() => {
            format!("sip:{rest};transport={p}").into_bytes()
        }
        _ => format!("sip:{s}").into_bytes(),
    }
}

/// True (and logged) when a blacklist that applies to this message blocks sending the
/// request `out` over `proto` to `addr`. Replies are never filtered.
pub(crate) fn blocked(
    cx: &mut MsgCx,
    rt: &Runtime,
    proto: sipox_transport::Proto,
    addr: std::net::SocketAddr,
    out: &[u8],
    what: &str,
) -> bool {
    let request = cx.msg().and_then(sipox_sip_msg::SipMsg::method).is_some();
    if request && rt.blacklists.blocked(proto, addr, out) {
        cx.log(
            -1,
            format!("ERROR: {what}: destination {addr} is blacklisted").as_bytes(),
        );
        return true;
    }
    false
}

/// Per-message settings of the Via handling functions.
#[derive(Debug, Default)]
pub(crate) struct ViaFlags {
    /// `add_local_rport()`: our Via asks for rport.
    pub(crate) local_rport: bool,
    /// `force_send_socket()`: the socket to send from.
    pub(crate) send_socket: Option<sipox_transport::SocketId>,
}

impl sipox_script::MsgState for ViaFlags {
    fn reset(&mut self) {
        *self = Self::default();
    }
}

/// `force_rport()`: treat the top Via as if it had asked for rport (RFC 3581), for the
/// forwarded request's Via and for replies. Always 1.
#[derive(Debug)]
struct ForceRport;

impl Call for ForceRport {
    fn call(&self, _cx: &mut MsgCx) -> R {
        force_rport_for_message();
        Ok(Ret(1))
    }
}

/// `add_local_rport()`: our own Via carries `;rport`. Always 1.
#[derive(Debug)]
struct AddLocalRport;

impl Call for AddLocalRport {
    fn call(&self, cx: &mut MsgCx) -> R {
        if let Some(f) = cx.state::<ViaFlags>() {
            f.local_rport = true;
        }
        Ok(Ret(1))
    }
}

fn bl_name(a: &mut Args<'_>) -> Result<sipox_script::Fmt, FixupError> {
    a.fmt(0)
        .ok_or_else(|| FixupError::arg(0, "expected a blacklist name"))
}

/// `use_blacklist(name)` / `unuse_blacklist(name)`: the list applies (or not) to the requests
/// this message sends. 1, or -1 for an unknown list.
#[derive(Debug)]
struct UseBlacklist(sipox_script::Fmt, bool);

impl Call for UseBlacklist {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut t = cx.take_buf();
        cx.eval_fmt(&self.0, &mut t);
        let ok = cx.ext::<Runtime>().is_some_and(|rt| {
            rt.blacklists
                .select(String::from_utf8_lossy(&t).trim(), self.1)
        });
        cx.give_buf(t);
        Ok(Ret(if ok { 1 } else { -1 }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlOp {
    Check,
    Add,
    Del,
}

/// `check_blacklist_rule(list, ip[, port[, proto[, text]]])`: 1 when the list blocks that
/// destination (with `text` as the outgoing message), else -1;
/// `add_blacklist_rule(list, ip[, port[, proto[, pattern[, expire]]]])` and
/// `del_blacklist_rule(list, ip[, port[, proto[, pattern]]])`: 1, or -1 for an unknown or
/// read-only list, a bad address, or (del) no such rule. `ip` may be `ip/prefix` or
/// `ip/mask` for add/del; port 0 or absent means any port.
#[derive(Debug)]
struct BlRule {
    op: BlOp,
    list: sipox_script::Fmt,
    ip: sipox_script::Fmt,
    port: Option<sipox_script::Fmt>,
    proto: Option<sipox_script::Fmt>,
    text: Option<sipox_script::Fmt>,
    expire: Option<IntArg>,
}

fn bl_rule(mut a: Args<'_>, op: BlOp) -> Result<Box<dyn Call>, FixupError> {
    let list = bl_name(&mut a)?;
    let ip = a
        .fmt(1)
        .ok_or_else(|| FixupError::arg(1, "expected an IP address"))?;
    Ok(Box::new(BlRule {
        op,
        list,
        ip,
        port: a.fmt(2),
        proto: a.fmt(3),
        text: a.fmt(4),
        expire: a.int(5),
    }))
}

impl Call for BlRule {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut eval = |f: &sipox_script::Fmt| {
            let mut b = Vec::new();
            cx.eval_fmt(f, &mut b);
            String::from_utf8_lossy(&b).trim().to_owned()
        };
        let list = eval(&self.list);
        let ip = eval(&self.ip);
        let port = self.port.as_ref().map(&mut eval).unwrap_or_default();
        let proto = self.proto.as_ref().map(&mut eval).unwrap_or_default();
        let text = self.text.as_ref().map(&mut eval).unwrap_or_default();
        let expire = self
            .expire
            .as_ref()
            .and_then(|e| cx.eval_int(e))
            .and_then(|s| u64::try_from(s).ok())
            .map(std::time::Duration::from_secs);
        let Some(rt) = cx.ext::<Runtime>() else {
            return Ok(Ret(-1));
        };
        let port = if port.is_empty() {
            0
        } else {
            match port.parse::<u16>() {
                Ok(p) => p,
                Err(_) => return Ok(Ret(-1)),
            }
        };
        let ok = match self.op {
            BlOp::Check => {
                let proto = match proto.as_str() {
                    "" | "any" => sipox_transport::Proto::Udp,
                    p => match sipox_transport::Proto::parse(p) {
                        Some(p) => p,
                        None => return Ok(Ret(-1)),
                    },
                };
                let Ok(ip) = ip
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                else {
                    return Ok(Ret(-1));
                };
                rt.blacklists.check(
                    &list,
                    proto,
                    std::net::SocketAddr::new(ip, port),
                    text.as_bytes(),
                ) == Some(true)
            }
            BlOp::Add | BlOp::Del => {
                let proto = (!proto.is_empty()).then_some(proto.as_str());
                match crate::blacklist::Rule::new(&ip, port, proto, Some(text.as_bytes())) {
                    Ok(rule) if self.op == BlOp::Add => rt.blacklists.add(&list, rule, expire),
                    Ok(rule) => rt.blacklists.del(&list, &rule),
                    Err(_) => false,
                }
            }
        };
        Ok(Ret(if ok { 1 } else { -1 }))
    }
}

fn parse_port(b: &[u8]) -> Option<u16> {
    std::str::from_utf8(b)
        .ok()?
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
}

/// `set_advertised_address(addr)` / `set_advertised_port(port)`: the host or port our Via and
/// Record-Route name for this message only. 1, or -1 for an empty address or a bad port.
#[derive(Debug)]
struct SetAdvertised {
    f: sipox_script::Fmt,
    port: bool,
}

impl Call for SetAdvertised {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut t = cx.take_buf();
        cx.eval_fmt(&self.f, &mut t);
        let ok = if self.port {
            parse_port(&t).map(crate::runtime::set_advertised_port)
        } else {
            std::str::from_utf8(&t)
                .ok()
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(crate::runtime::set_advertised_host)
        };
        cx.give_buf(t);
        Ok(Ret(if ok.is_some() { 1 } else { -1 }))
    }
}

/// `set_via_handling("flags")`: `force-rport`, `add-local-rport`, `reply-to-via` (replies go
/// to the top Via's sent-by instead of the source address), `force-tcp-alias`. Always 1.
#[derive(Debug, Default)]
struct SetViaHandling {
    force_rport: bool,
    local_rport: bool,
    reply_to_via: bool,
    tcp_alias: bool,
}

impl Call for SetViaHandling {
    fn call(&self, cx: &mut MsgCx) -> R {
        if self.force_rport {
            force_rport_for_message();
        }
        if self.local_rport
            && let Some(f) = cx.state::<ViaFlags>()
        {
            f.local_rport = true;
        }
        if self.reply_to_via {
            crate::runtime::reply_to_via_for_message();
        }
        if self.tcp_alias {
            tcp_alias(cx, None);
        }
        Ok(Ret(1))
    }
}

/// `force_tcp_alias([port])`: later requests to the source IP and `port` (default: the top
/// Via's port) reuse the stream connection this request came on (RFC 5923). 1, or -1 when
/// the request did not come over a stream.
#[derive(Debug)]
struct ForceTcpAlias(Option<IntArg>);

impl Call for ForceTcpAlias {
    fn call(&self, cx: &mut MsgCx) -> R {
        let port = match &self.0 {
            Some(a) => match cx.eval_int(a).and_then(|p| u16::try_from(p).ok()) {
                Some(p) if p != 0 => Some(p),
                _ => return Ok(Ret(-1)),
            },
            None => None,
        };
        Ok(Ret(tcp_alias(cx, port)))
    }
}

fn tcp_alias(cx: &mut MsgCx, port: Option<u16>) -> i32 {
    let Some(src) = current_source() else {
        return -1;
    };
    let Some(conn) = src.conn else {
        return -1;
    };
    let port = port
        .or_else(|| cx.msg().and_then(|m| m.via1().ok()).and_then(|v| v.port()))
        .unwrap_or_else(|| crate::rr::default_port(src.proto));
    let Some(rt) = cx.ext::<Runtime>() else {
        return -1;
    };
    let Some(tx) = rt.transports() else {
        return -1;
    };
    tx.add_tcp_alias(conn, std::net::SocketAddr::new(src.remote.ip(), port));
    1
}

/// `force_send_socket("proto:ip:port")`: send this message from that listening socket.
/// 1, or -1 when sipox does not listen there.
#[derive(Debug)]
struct ForceSendSocket(sipox_script::Fmt);

impl Call for ForceSendSocket {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut t = cx.take_buf();
        cx.eval_fmt(&self.0, &mut t);
        let r = socket_from_script(cx, &t);
        cx.give_buf(t);
        if r < 0 {
            cx.log(
                -1,
                b"ERROR: force_send_socket: sipox does not listen on that socket",
            );
        }
        Ok(Ret(r))
    }
}

/// Makes the listening socket `proto:ip:port` the send socket of this message
/// (`force_send_socket()`, `$socket_out = ...`); an empty spec clears the choice. 1, or -1 when
/// sipox does not listen there.
pub(crate) fn socket_from_script(cx: &mut MsgCx, spec: &[u8]) -> i32 {
    if spec.is_empty() {
        if let Some(f) = cx.state::<ViaFlags>() {
            f.send_socket = None;
        }
        cx.set_socket_out(None);
        return 1;
    }
    let spec = String::from_utf8_lossy(spec).parse::<sipox_transport::ListenSpec>();
    let (Ok(spec), Some(rt)) = (spec, cx.ext::<Runtime>()) else {
        return -1;
    };
    let found = rt.transports().and_then(|tx| {
        tx.sockets()
            .iter()
            .find(|s| {
                s.proto == spec.proto && s.local.ip() == spec.addr && s.local.port() == spec.port
            })
            .map(|s| (s.id, s.proto, s.local))
    });
    let Some((id, proto, local)) = found else {
        return -1;
    };
    if let Some(f) = cx.state::<ViaFlags>() {
        f.send_socket = Some(id);
    }
    let src = *cx.source();
    cx.set_socket_out(Some(sipox_script::Source {
        proto: proto.as_str(),
        local_ip: local.ip(),
        local_port: local.port(),
        ..src
    }));
    1
}

/// `send(destination[, headers])`: sends the message as it stands (with the script's edits and
/// the extra header lines, but no Via of ours) to `proto:host:port` or a SIP URI. 1, or -1.
#[derive(Debug)]
struct Send(sipox_script::Fmt, Option<sipox_script::Fmt>);

impl Call for Send {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut d = cx.take_buf();
        cx.eval_fmt(&self.0, &mut d);
        let uri = destination_uri(&d);
        cx.give_buf(d);
        let extra = self.1.as_ref().map(|h| {
            let mut b = Vec::new();
            cx.eval_fmt(h, &mut b);
            b
        });
        let Some(rt) = cx.ext::<Runtime>() else {
            return Ok(Ret(-1));
        };
        let Ok(u) = sipox_sip_msg::uri(&uri) else {
            return Ok(Ret(-1));
        };
        let Ok(target) = sipox_proxy::request_target(&u) else {
            return Ok(Ret(-1));
        };
        let Some((addr, transport)) = target
            .socket_addr()
            .map(|a| (a, target.transport))
            .or_else(|| resolve_name(&rt, &target))
        else {
            return Ok(Ret(-1));
        };
        let proto = proto_of(transport);
        let Some(tx) = rt.transports() else {
            return Ok(Ret(-1));
        };
        let Some(msg) = cx.msg_mut() else {
            return Ok(Ret(-1));
        };
        let mark = msg.edit_mark();
        if let Some(h) = extra.filter(|h| !h.is_empty()) {
            msg.append_raw_headers(Bytes::from(h));
        }
        let mut out = Vec::with_capacity(msg.raw().len() + 128);
        let ok = cx.write_message(&mut out).is_ok();
        if let Some(m) = cx.msg_mut() {
            m.truncate_edits(mark);
        }
        if !ok || blocked(cx, &rt, proto, addr, &out, "send") {
            return Ok(Ret(-1));
        }
        let dest = Dest {
            proto,
            addr,
            socket: None,
            conn: None,
        };
        Ok(Ret(if tx.send(&dest, Bytes::from(out)).is_ok() {
            1
        } else {
            -1
        }))
    }
}
