//! Destination blacklists: OpenSIPS's `dst_blacklist` global parameter and the core functions
//! `use_blacklist`, `unuse_blacklist`, `check_blacklist_rule`, `add_blacklist_rule`,
//! `del_blacklist_rule`.
//!
//! A list is `id [/flags] [: rules]`; flags are `default` (checked for every request without
//! `use_blacklist`), `readonly` (no rules added or removed at run time; implied when no flag is
//! given) and `expire` (rules added at run time may carry a lifetime). A rule is
//! `[!] ( [proto ,] ipnet [, port [, "pattern"]] )` or a bare `[!] ipnet`: it matches a request
//! going over `proto` (`any` or absent: every transport) to an address inside `ipnet`
//! (`ip`, `ip/prefix` or `ip/mask`) on `port` (0: any), whose outgoing text (first line,
//! headers, body) matches the shell-style `pattern` (`*`, `?`, `[...]`; empty: any text). A
//! leading `!` inverts the rule: it blocks what does *not* match.
//!
//! Which lists apply is per message: the `default` ones, plus `use_blacklist(name)`, minus
//! `unuse_blacklist(name)`. A request to a blocked destination is not sent: `forward()` and
//! `send()` fail, and `t_relay()` returns -5 for that branch (OpenSIPS's "destination
//! filtered").

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use sipox_transport::Proto;

/// A parse error of a `dst_blacklist` definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlError(pub(crate) String);

impl std::fmt::Display for BlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    neg: bool,
    proto: Option<Proto>,
    net: IpAddr,
    prefix: u8,
    port: u16,
    pattern: Option<Box<[u8]>>,
    expires: Option<Instant>,
}

impl Rule {
    /// A rule built from script arguments (`add_blacklist_rule` and friends).
    pub(crate) fn new(
        ip: &str,
        port: u16,
        proto: Option<&str>,
        pattern: Option<&[u8]>,
    ) -> Result<Self, BlError> {
        let (net, prefix) = ipnet(ip)?;
        Ok(Self {
            neg: false,
            proto: match proto.map(str::trim) {
                None | Some("" | "any") => None,
                Some(p) => Some(Proto::parse(p).ok_or_else(|| bad(&format!("protocol '{p}'")))?),
            },
            net,
            prefix,
            port,
            pattern: pattern.filter(|p| !p.is_empty()).map(Into::into),
            expires: None,
        })
    }

    fn matches(&self, proto: Proto, dst: SocketAddr, text: &[u8]) -> bool {
        self.proto.is_none_or(|p| p == proto)
            && (self.port == 0 || self.port == dst.port())
            && in_net(dst.ip(), self.net, self.prefix)
            && self.pattern.as_deref().is_none_or(|p| glob(p, text))
    }

    /// True when this rule blocks the destination (a `!` rule blocks what it does not match).
    fn blocks(&self, proto: Proto, dst: SocketAddr, text: &[u8], now: Instant) -> bool {
        self.expires.is_none_or(|e| e > now) && (self.matches(proto, dst, text) != self.neg)
    }

    /// Same rule apart from its lifetime.
    fn same(&self, o: &Self) -> bool {
        self.neg == o.neg
            && self.proto == o.proto
            && self.net == o.net
            && self.prefix == o.prefix
            && self.port == o.port
            && self.pattern == o.pattern
    }
}

/// One named list.
#[derive(Debug)]
pub(crate) struct List {
    name: String,
    default: bool,
    readonly: bool,
    expire: bool,
    rules: RwLock<Vec<Rule>>,
}

/// Every list of the configuration (at most 64, so a message's selection is a bit mask).
#[derive(Debug, Default)]
pub(crate) struct Lists {
    lists: Vec<List>,
    defaults: u64,
}

thread_local! {
    /// Lists the script selected (`use_blacklist`) and deselected for the current message.
    static SELECTED: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Forgets the previous message's `use_blacklist`/`unuse_blacklist` choices.
pub(crate) fn reset_message() {
    SELECTED.with(|s| s.set((0, 0)));
}

fn bad(what: &str) -> BlError {
    BlError(format!("dst_blacklist: bad {what}"))
}

impl Lists {
    /// Builds the lists from the raw `dst_blacklist` values, in order.
    pub(crate) fn parse<'a>(defs: impl IntoIterator<Item = &'a str>) -> Result<Self, BlError> {
        let mut out = Self::default();
        for d in defs {
            let l = parse_list(d)?;
            if out.lists.iter().any(|x| x.name == l.name) {
                return Err(BlError(format!(
                    "dst_blacklist: list '{}' defined twice",
                    l.name
                )));
            }
            if out.lists.len() == 64 {
                return Err(BlError("dst_blacklist: more than 64 lists".into()));
            }
            if l.default {
                out.defaults |= 1 << out.lists.len();
            }
            out.lists.push(l);
        }
        Ok(out)
    }

    /// Index of the list called `name`.
    pub(crate) fn index(&self, name: &str) -> Option<usize> {
        self.lists.iter().position(|l| l.name == name)
    }

    /// `use_blacklist` (`on`) / `unuse_blacklist` for the current message. False for an
    /// unknown list.
    pub(crate) fn select(&self, name: &str, on: bool) -> bool {
        let Some(i) = self.index(name) else {
            return false;
        };
        SELECTED.with(|s| {
            let (mut add, mut del) = s.get();
            if on {
                add |= 1 << i;
                del &= !(1 << i);
            } else {
                del |= 1 << i;
                add &= !(1 << i);
            }
            s.set((add, del));
        });
        true
    }

    /// True when one of the lists applying to the current message blocks a request over
    /// `proto` to `dst` whose outgoing text is `text`.
    pub(crate) fn blocked(&self, proto: Proto, dst: SocketAddr, text: &[u8]) -> bool {
        if self.lists.is_empty() {
            return false;
        }
        let (add, del) = SELECTED.with(Cell::get);
        let mask = (self.defaults | add) & !del;
        if mask == 0 {
            return false;
        }
        let now = now();
        self.lists.iter().enumerate().any(|(i, l)| {
            mask & (1 << i) != 0
                && l.rules
                    .read()
                    .iter()
                    .any(|r| r.blocks(proto, dst, text, now))
        })
    }

    /// `check_blacklist_rule`: does list `name` block this destination? `None`: no such list.
    pub(crate) fn check(
        &self,
        name: &str,
        proto: Proto,
        dst: SocketAddr,
        text: &[u8],
    ) -> Option<bool> {
        let l = &self.lists[self.index(name)?];
        let now = now();
        Some(
            l.rules
                .read()
                .iter()
                .any(|r| r.blocks(proto, dst, text, now)),
        )
    }

    /// `add_blacklist_rule`: false for an unknown or read-only list.
    pub(crate) fn add(&self, name: &str, mut rule: Rule, expire: Option<Duration>) -> bool {
        let Some(l) = self.index(name).map(|i| &self.lists[i]) else {
            return false;
        };
        if l.readonly {
            return false;
        }
        if l.expire {
            rule.expires = expire.filter(|d| !d.is_zero()).map(|d| now() + d);
        }
        let mut rules = l.rules.write();
        let now = now();
        rules.retain(|r| r.expires.is_none_or(|e| e > now) && !r.same(&rule));
        rules.push(rule);
        true
    }

    /// `del_blacklist_rule`: false for an unknown or read-only list, or no such rule.
    pub(crate) fn del(&self, name: &str, rule: &Rule) -> bool {
        let Some(l) = self.index(name).map(|i| &self.lists[i]) else {
            return false;
        };
        if l.readonly {
            return false;
        }
        let mut rules = l.rules.write();
        let before = rules.len();
        rules.retain(|r| !r.same(rule));
        rules.len() != before
    }
}

#[allow(clippy::disallowed_methods)] // rule lifetimes are wall-clock I/O-side state
fn now() -> Instant {
    Instant::now()
}

fn parse_list(def: &str) -> Result<List, BlError> {
    let def = def.trim();
    let end = def.find(['/', ':']).unwrap_or(def.len());
    let name = def[..end].trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(bad(&format!("list name '{name}'")));
    }
    let mut rest = &def[end..];
    let (mut default, mut readonly, mut expire, mut flagged) = (false, false, false, false);
    if let Some(r) = rest.strip_prefix('/') {
        let stop = r.find(':').unwrap_or(r.len());
        for f in r[..stop].split(',') {
            flagged = true;
            match f.trim() {
                "default" => default = true,
                "readonly" => readonly = true,
                "expire" => expire = true,
                other => return Err(bad(&format!("flag '{other}'"))),
            }
        }
        rest = &r[stop..];
    }
    if !flagged {
        readonly = true;
    }
    let mut rules = Vec::new();
    if let Some(r) = rest.strip_prefix(':') {
        let r = r.trim();
        if let Some(inner) = r.strip_prefix('{') {
            let inner = inner
                .strip_suffix('}')
                .ok_or_else(|| bad("rule list (no closing '}')"))?;
            for part in split_top(inner) {
                if !part.trim().is_empty() {
                    rules.push(parse_rule(part)?);
                }
            }
        } else if !r.is_empty() {
            rules.push(parse_rule(r)?);
        }
    } else if !rest.trim().is_empty() {
        return Err(bad(&format!("definition '{def}'")));
    }
    Ok(List {
        name: name.to_owned(),
        default,
        readonly,
        expire,
        rules: RwLock::new(rules),
    })
}

/// Splits at commas outside parentheses and quotes.
fn split_top(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut quoted, mut start) = (Vec::new(), 0i32, false, 0);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_rule(text: &str) -> Result<Rule, BlError> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('!') {
        Some(r) => (true, r.trim()),
        None => (false, t),
    };
    let Some(inner) = t.strip_prefix('(') else {
        let (net, prefix) = ipnet(t)?;
        return Ok(Rule {
            neg,
            proto: None,
            net,
            prefix,
            port: 0,
            pattern: None,
            expires: None,
        });
    };
    let inner = inner
        .strip_suffix(')')
        .ok_or_else(|| bad(&format!("rule '{text}'")))?;
    let mut parts: Vec<&str> = split_top(inner).into_iter().map(str::trim).collect();
    let proto = match parts.first() {
        Some(p) if *p == "any" || Proto::parse(p).is_some() => {
            let p = parts.remove(0);
            (p != "any").then(|| Proto::parse(p)).flatten()
        }
        _ => None,
    };
    let Some(ip) = parts.first() else {
        return Err(bad(&format!("rule '{text}' (no address)")));
    };
    let (net, prefix) = ipnet(ip)?;
    let port = match parts.get(1) {
        Some(p) => p.parse::<u16>().map_err(|_| bad(&format!("port '{p}'")))?,
        None => 0,
    };
    let pattern = match parts.get(2) {
        Some(p) => {
            let p = p.trim();
            let p = p
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(p);
            (!p.is_empty()).then(|| p.as_bytes().into())
        }
        None => None,
    };
    if parts.len() > 3 {
        return Err(bad(&format!("rule '{text}' (too many fields)")));
    }
    Ok(Rule {
        neg,
        proto,
        net,
        prefix,
        port,
        pattern,
        expires: None,
    })
}

/// `ip`, `ip/prefix` or `ip/dotted-mask`.
fn ipnet(s: &str) -> Result<(IpAddr, u8), BlError> {
    let s = s.trim();
    let (ip, mask) = match s.split_once('/') {
        Some((a, m)) => (a.trim(), Some(m.trim())),
        None => (s, None),
    };
    let ip: IpAddr = ip
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| bad(&format!("address '{ip}'")))?;
    let max: u8 = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match mask {
        None => max,
        Some(m) => match m.parse::<u8>() {
            Ok(p) if p <= max => p,
            Ok(_) => return Err(bad(&format!("prefix '{m}'"))),
            Err(_) => match m.parse::<IpAddr>() {
                Ok(IpAddr::V4(v)) if ip.is_ipv4() => {
                    let bits = u32::from(v);
                    if bits.leading_ones() + bits.trailing_zeros() != 32 {
                        return Err(bad(&format!("mask '{m}'")));
                    }
                    u8::try_from(bits.leading_ones()).unwrap_or(32)
                }
                _ => return Err(bad(&format!("mask '{m}'"))),
            },
        },
    };
    Ok((ip, prefix))
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    }
}

/// Shell-style matching of the whole `text` (`*` any run, `?` one byte, `[...]`/`[!...]`
/// classes with ranges), iterative with one backtrack point.
fn glob(pat: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some(b'?') => {
                p += 1;
                t += 1;
                continue;
            }
            Some(b'[') => {
                if let Some((ok, next)) = class(pat, p, text[t])
                    && ok
                {
                    p = next;
                    t += 1;
                    continue;
                }
            }
            Some(&c) if c == text[t] => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, st)) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pat[p.min(pat.len())..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pat[at] == '['`: (matched, index after `]`).
fn class(pat: &[u8], at: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = at + 1;
    let negate = matches!(pat.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let lo = *pat.get(i)?;
        if lo == b']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if pat.get(i + 1) == Some(&b'-') && pat.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = pat[i + 2];
            hit |= lo <= c && c <= hi;
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_documented_forms() {
        let l = Lists::parse([
            "gw:{(tcp, 192.168.4.100, 5060, \"\"), (any, 192.168.4.101, 0, \"\")}",
            "net_filter:{(any, 192.168.1.120/255.255.255.0, 0, \"\")}",
            "msg_filter:{(any, 192.168.20.0/255.255.255.0, 0, \"MESSAGE*ugly_word*\")}",
            "net_filter2:{!(any, 194.168.30.0/255.255.255.0, 0, \"\")}",
            "net_dynamic/expire",
            "bare/default: 10.0.0.0/8",
        ])
        .unwrap();
        assert_eq!(l.lists.len(), 6);
        assert_eq!(l.defaults, 1 << 5);
        assert!(l.lists[0].readonly && !l.lists[4].readonly && l.lists[4].expire);
        let c = |n, p, d: &str, t: &[u8]| l.check(n, p, sa(d), t).unwrap();
        assert!(c("gw", Proto::Tcp, "192.168.4.100:5060", b""));
        assert!(!c("gw", Proto::Udp, "192.168.4.100:5060", b""), "tcp only");
        assert!(!c("gw", Proto::Tcp, "192.168.4.100:5070", b""), "port");
        assert!(
            c("gw", Proto::Udp, "192.168.4.101:1", b""),
            "any proto, any port"
        );
        assert!(c("net_filter", Proto::Udp, "192.168.1.7:5060", b""));
        assert!(!c("net_filter", Proto::Udp, "192.168.2.7:5060", b""));
        assert!(c(
            "msg_filter",
            Proto::Udp,
            "192.168.20.1:5060",
            b"MESSAGE sip:x an ugly_word here"
        ));
        assert!(!c(
            "msg_filter",
            Proto::Udp,
            "192.168.20.1:5060",
            b"INVITE sip:x ugly_word"
        ));
        assert!(
            !c("net_filter2", Proto::Udp, "194.168.30.9:5060", b""),
            "negated: inside passes"
        );
        assert!(
            c("net_filter2", Proto::Udp, "8.8.8.8:5060", b""),
            "negated: outside blocked"
        );
        assert!(c("bare", Proto::Udp, "10.1.2.3:5060", b""));
        assert!(
            l.check("nope", Proto::Udp, sa("10.1.2.3:5060"), b"")
                .is_none()
        );
    }

    #[test]
    fn rejects_bad_definitions() {
        for d in [
            "x:{(udp, 300.1.1.1, 0, \"\")}",
            "x:{(udp, 10.0.0.1, port, \"\")}",
            "x/sometimes",
            "x:{(udp, 10.0.0.1, 0, \"\", 5)}",
            "x:10.0.0.0/33",
            "x:{(udp, 10.0.0.1, 0, \"\")",
        ] {
            assert!(Lists::parse([d]).is_err(), "{d}");
        }
        assert!(Lists::parse(["a", "a"]).is_err(), "defined twice");
    }

    #[test]
    fn selection_is_per_message_and_rules_change_at_run_time() {
        let l = Lists::parse(["dyn/expire", "ro: 10.0.0.1"]).unwrap();
        let d = sa("10.0.0.1:5060");
        reset_message();
        assert!(!l.blocked(Proto::Udp, d, b""), "no default list");
        assert!(l.select("ro", true));
        assert!(l.blocked(Proto::Udp, d, b""));
        assert!(l.select("ro", false));
        assert!(!l.blocked(Proto::Udp, d, b""));
        let r = Rule::new("10.0.0.0/24", 0, Some("udp"), None).unwrap();
        assert!(!l.add("ro", r.clone(), None), "read-only");
        assert!(l.add("dyn", r.clone(), None));
        assert!(l.select("dyn", true));
        assert!(l.blocked(Proto::Udp, d, b""));
        assert!(!l.blocked(Proto::Tcp, d, b""));
        reset_message();
        assert!(
            !l.blocked(Proto::Udp, d, b""),
            "selection ended with the message"
        );
        assert!(l.del("dyn", &r));
        assert!(!l.del("dyn", &r));
        assert!(l.add("dyn", r, Some(Duration::from_nanos(1))));
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(l.check("dyn", Proto::Udp, d, b""), Some(false), "expired");
    }

    #[test]
    fn glob_matches_like_fnmatch() {
        assert!(glob(b"*", b"anything"));
        assert!(glob(b"MESSAGE*", b"MESSAGE sip:a"));
        assert!(!glob(b"MESSAGE", b"MESSAGE sip:a"));
        assert!(glob(b"a?c", b"abc"));
        assert!(glob(b"[A-C]x*", b"Bxyz"));
        assert!(!glob(b"[!A-C]x*", b"Bxyz"));
        assert!(glob(b"*b*b*", b"abcbd"));
        assert!(!glob(b"*b*b*x", b"abcbd"));
        assert!(glob(b"", b""));
    }
}
