//! RFC 3263 §4 selection over a [`Lookup`].

use std::net::{IpAddr, SocketAddr};

use crate::{DnsError, Lookup, Naptr, Srv};

/// Transport of a resolved target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// UDP
    Udp,
    /// TCP
    Tcp,
    /// TLS over TCP
    Tls,
    /// SCTP
    Sctp,
}

impl Transport {
    const fn default_port(self) -> u16 {
        match self {
            Self::Tls => 5061,
            _ => 5060,
        }
    }
    /// The SRV owner prefix for this transport (`_sip._udp.` ...), RFC 3263 §4.1.
    const fn srv_prefix(self, sips: bool) -> &'static str {
        match (self, sips) {
            (Self::Tls, _) | (Self::Tcp, true) => "_sips._tcp.",
            (Self::Udp, _) => "_sip._udp.",
            (Self::Tcp, false) => "_sip._tcp.",
            (Self::Sctp, true) => "_sips._sctp.",
            (Self::Sctp, false) => "_sip._sctp.",
        }
    }
    fn from_naptr_service(s: &str, sips: bool) -> Option<Self> {
        let s = s.to_ascii_uppercase();
        match s.as_str() {
            "SIP+D2U" if !sips => Some(Self::Udp),
            "SIP+D2T" if !sips => Some(Self::Tcp),
            "SIP+D2S" if !sips => Some(Self::Sctp),
            "SIPS+D2T" => Some(Self::Tls),
            _ => None,
        }
    }
}

/// One destination to try, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// Transport.
    pub transport: Transport,
    /// Address and port.
    pub addr: SocketAddr,
}

/// Resolution settings (OpenSIPS core parameters of the same names).
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// `dns_try_naptr`.
    pub try_naptr: bool,
    /// `dns_try_ipv6`.
    pub try_ipv6: bool,
    /// Transports this element can use (NAPTR/SRV results for others are skipped).
    pub transports: Vec<Transport>,
    /// Destinations never to use (`dst_blacklist`).
    pub blacklist: Vec<SocketAddr>,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            try_naptr: true,
            try_ipv6: false,
            transports: vec![Transport::Udp, Transport::Tcp],
            blacklist: Vec::new(),
        }
    }
}

/// RFC 2782 ordering: by priority; within a priority, a weighted random permutation (each pick
/// with probability weight/sum, zero weights last but still possible). `rng` supplies the
/// randomness so callers (and tests) control it.
pub fn order_srv(mut records: Vec<Srv>, rng: &mut impl FnMut() -> u32) -> Vec<Srv> {
    records.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(records.len());
    let mut i = 0;
    while i < records.len() {
        let p = records[i].priority;
        let mut group: Vec<Srv> = Vec::new();
        while i < records.len() && records[i].priority == p {
            group.push(records[i].clone());
            i += 1;
        }
        // zero-weight records first in the list, as RFC 2782 suggests, so they are rarely chosen
        group.sort_by_key(|r| r.weight != 0);
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let pick = if total == 0 { 0 } else { rng() % (total + 1) };
            let mut acc = 0u32;
            let mut idx = group.len() - 1;
            for (k, r) in group.iter().enumerate() {
                acc += u32::from(r.weight);
                if acc >= pick {
                    idx = k;
                    break;
                }
            }
            out.push(group.remove(idx));
        }
    }
    out
}

fn push_ips(
    lk: &dyn Lookup,
    cfg: &DnsConfig,
    host: &str,
    port: u16,
    t: Transport,
    out: &mut Vec<Resolved>,
) -> Result<(), DnsError> {
    for ip in lk.ip(host, cfg.try_ipv6)? {
        let addr = SocketAddr::new(ip, port);
        if !cfg.blacklist.contains(&addr) && !out.iter().any(|r| r.addr == addr && r.transport == t)
        {
            out.push(Resolved { transport: t, addr });
        }
    }
    Ok(())
}

fn push_srv(
    lk: &dyn Lookup,
    cfg: &DnsConfig,
    name: &str,
    t: Transport,
    rng: &mut impl FnMut() -> u32,
    out: &mut Vec<Resolved>,
) -> Result<bool, DnsError> {
    let recs = lk.srv(name)?;
    if recs.is_empty() {
        return Ok(false);
    }
    for r in order_srv(recs, rng) {
        // A target of "." means the service is not available there (RFC 2782).
        if r.target.is_empty() || r.target == "." {
            continue;
        }
        push_ips(lk, cfg, &r.target, r.port, t, out)?;
    }
    Ok(true)
}

/// Resolves a SIP URI's host (a name or an IP literal), optional port and optional explicit
/// transport (`sips` forces TLS) to the ordered list of destinations (RFC 3263 §4.1-4.2):
/// IP literal or explicit port → A/AAAA only; explicit transport → SRV for it, else A/AAAA;
/// otherwise NAPTR (when enabled) → SRV for each usable service in order, else SRV for each
/// supported transport, else A/AAAA over UDP (TLS for sips).
pub fn resolve(
    lk: &dyn Lookup,
    cfg: &DnsConfig,
    host: &str,
    port: Option<u16>,
    transport: Option<Transport>,
    sips: bool,
    rng: &mut impl FnMut() -> u32,
) -> Result<Vec<Resolved>, DnsError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let default_t = if sips { Transport::Tls } else { Transport::Udp };
    let mut out = Vec::new();
    if let Ok(ip) = host.parse::<IpAddr>() {
        let t = transport.unwrap_or(default_t);
        let addr = SocketAddr::new(ip, port.unwrap_or_else(|| t.default_port()));
        if !cfg.blacklist.contains(&addr) {
            out.push(Resolved { transport: t, addr });
        }
        return Ok(out);
    }
    if let Some(p) = port {
        push_ips(lk, cfg, host, p, transport.unwrap_or(default_t), &mut out)?;
        return Ok(out);
    }
    if let Some(t) = transport {
        let name = format!("{}{host}", t.srv_prefix(sips));
        if !push_srv(lk, cfg, &name, t, rng, &mut out)? {
            push_ips(lk, cfg, host, t.default_port(), t, &mut out)?;
        }
        return Ok(out);
    }
    if cfg.try_naptr {
        let mut recs: Vec<Naptr> = lk
            .naptr(host)?
            .into_iter()
            .filter(|n| n.flags.eq_ignore_ascii_case("s"))
            .collect();
        recs.sort_by_key(|n| (n.order, n.preference));
        let mut any = false;
        for n in recs {
            let Some(t) = Transport::from_naptr_service(&n.service, sips) else {
                continue;
            };
            if !cfg.transports.contains(&t) {
                continue;
            }
            any |= push_srv(lk, cfg, &n.replacement, t, rng, &mut out)?;
        }
        if any {
            return Ok(out);
        }
    }
    let mut any = false;
    for &t in &cfg.transports {
        if sips && t != Transport::Tls {
            continue;
        }
        let name = format!("{}{host}", t.srv_prefix(sips));
        any |= push_srv(lk, cfg, &name, t, rng, &mut out)?;
    }
    if !any {
        push_ips(lk, cfg, host, default_t.default_port(), default_t, &mut out)?;
    }
    Ok(out)
}
