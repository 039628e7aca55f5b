//! Transformations (`{s.len}`, `{uri.user}`, `{param.value,tag}`, …): parsed and checked at
//! load, applied in place on the value's buffer.

use std::io::Write as _;
use std::net::IpAddr;

use base64::Engine as _;
use sha2::Digest as _;
use sipox_cfg_syntax::{Format, Transform};

use crate::cx::MsgCx;
use crate::program::Fmt;
use crate::value::{Kind, as_int, parse_int, push_int};

/// An IP network `addr/len` (or `addr/mask`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    len: u8,
}

impl IpNet {
    /// Parses `a.b.c.d/len`, `a.b.c.d/m.m.m.m`, `v6/len`, or a bare address.
    pub fn parse(s: &str) -> Option<Self> {
        let (a, l) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a
            .trim()
            .trim_matches(|c| c == '[' || c == ']')
            .parse()
            .ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = if l.is_empty() {
            max
        } else if let Ok(n) = l.parse::<u8>() {
            n
        } else {
            let m: std::net::Ipv4Addr = l.parse().ok()?;
            u8::try_from(u32::from(m).count_ones()).ok()?
        };
        (len <= max).then_some(Self { addr, len })
    }

    /// True for an IPv4 network.
    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// True when `ip` is inside the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = if self.len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.len))
                };
                u32::from(n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = if self.len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.len))
                };
                u128::from(n) & mask == u128::from(i) & mask
            }
            _ => false,
        }
    }
}

/// A compiled transformation.
#[derive(Debug, Clone)]
pub(crate) struct Trans {
    op: Op,
    index: i64,
    params: Box<[Fmt]>,
    re: Option<(regex::bytes::Regex, Box<[u8]>, bool)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    SLen,
    SInt,
    SMd5,
    SCrc32,
    SLower,
    SUpper,
    SEncHex,
    SDecHex,
    SHex2Dec,
    SDec2Hex,
    SEscCommon,
    SUnescCommon,
    SEscUser,
    SUnescUser,
    SEscParam,
    SUnescParam,
    SIndex,
    SRindex,
    SSubstr,
    SSelect,
    SFillLeft,
    SFillRight,
    SWidth,
    STrim,
    STrimR,
    STrimL,
    SB64Enc,
    SB64Dec,
    SXor,
    SReverse,
    SEval,
    SSha(u16),
    SShaHmac(u16),
    Uri(UriF),
    Via(ViaF),
    ParamValue,
    ParamExist,
    ParamValueAt,
    ParamName,
    ParamCount,
    NaName,
    NaUri,
    NaLen,
    NaParam,
    NaParams,
    IpPton,
    IpNtop,
    IpIsIp,
    IpIsIp4,
    IpIsIp6,
    IpFamily,
    IpResolve,
    IpMatches,
    IpIsPrivate,
    CsvCount,
    CsvValue,
    SdpLine,
    SdpStream,
    SdpStreamDelete,
    ReSubst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UriF {
    User,
    Host,
    Passwd,
    Port,
    Params,
    Param,
    Headers,
    Transport,
    Ttl,
    Uparam,
    Maddr,
    Method,
    Lr,
    R2,
    Schema,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ViaF {
    Name,
    Version,
    Transport,
    Host,
    Port,
    Comment,
    Params,
    Param,
    Branch,
    Received,
    Rport,
}

const CLASSES: &[(&str, &[&str])] = &[
    (
        "s",
        &[
            "len",
            "int",
            "md5",
            "crc32",
            "tolower",
            "toupper",
            "encode.hexa",
            "decode.hexa",
            "hex2dec",
            "dec2hex",
            "escape.common",
            "unescape.common",
            "escape.user",
            "unescape.user",
            "escape.param",
            "unescape.param",
            "index",
            "rindex",
            "substr",
            "select",
            "fill.left",
            "fill.right",
            "width",
            "trim",
            "trimr",
            "triml",
            "b64encode",
            "b64decode",
            "xor",
            "reverse",
            "eval",
            "sha1",
            "sha224",
            "sha256",
            "sha384",
            "sha512",
            "sha1_hmac",
            "sha224_hmac",
            "sha256_hmac",
            "sha384_hmac",
            "sha512_hmac",
        ],
    ),
    (
        "uri",
        &[
            "user",
            "host",
            "domain",
            "passwd",
            "port",
            "params",
            "param",
            "headers",
            "transport",
            "ttl",
            "uparam",
            "maddr",
            "method",
            "lr",
            "r2",
            "schema",
        ],
    ),
    (
        "via",
        &[
            "name",
            "version",
            "transport",
            "host",
            "domain",
            "port",
            "comment",
            "params",
            "param",
            "branch",
            "received",
            "rport",
        ],
    ),
    ("param", &["value", "exist", "valueat", "name", "count"]),
    ("nameaddr", &["name", "uri", "len", "param", "params"]),
    (
        "ip",
        &[
            "pton",
            "ntop",
            "isip",
            "isip4",
            "isip6",
            "family",
            "resolve",
            "matches",
            "isprivate",
        ],
    ),
    ("csv", &["count", "value"]),
    ("sdp", &["line", "stream", "stream-delete"]),
    ("re", &["subst"]),
];

type Hint = Option<String>;

/// Compiles one `{class.method,params}`.
pub(crate) fn compile_trans(
    t: &Transform,
    fmt: &mut dyn FnMut(&Format) -> Fmt,
) -> Result<Trans, (String, Hint)> {
    let Some((_, methods)) = CLASSES.iter().find(|(c, _)| *c == t.class) else {
        let hint = crate::compile::nearest(&t.class, CLASSES.iter().map(|(c, _)| *c))
            .map(|c| format!("did you mean {{{c}.{}}}?", t.method));
        return Err((format!("unknown transformation class '{}'", t.class), hint));
    };
    let (na_index, method) = match (t.class.as_str(), t.method.split_once('.')) {
        ("nameaddr", Some((i, m))) if i.parse::<i64>().is_ok() => (i.parse::<i64>().ok(), m),
        _ => (None, t.method.as_str()),
    };
    if !methods.contains(&method) {
        let hint = crate::compile::nearest(&t.method, methods.iter().copied())
            .map(|m| format!("did you mean {{{}.{m}}}?", t.class));
        return Err((
            format!("unknown transformation {{{}.{}}}", t.class, t.method),
            hint,
        ));
    }
    use Op::*;
    let (op, min, max) = match (t.class.as_str(), method) {
        ("s", "len") => (SLen, 0, 0),
        ("s", "int") => (SInt, 0, 0),
        ("s", "md5") => (SMd5, 0, 0),
        ("s", "crc32") => (SCrc32, 0, 0),
        ("s", "tolower") => (SLower, 0, 0),
        ("s", "toupper") => (SUpper, 0, 0),
        ("s", "encode.hexa") => (SEncHex, 0, 0),
        ("s", "decode.hexa") => (SDecHex, 0, 0),
        ("s", "hex2dec") => (SHex2Dec, 0, 0),
        ("s", "dec2hex") => (SDec2Hex, 0, 0),
        ("s", "escape.common") => (SEscCommon, 0, 0),
        ("s", "unescape.common") => (SUnescCommon, 0, 0),
        ("s", "escape.user") => (SEscUser, 0, 0),
        ("s", "unescape.user") => (SUnescUser, 0, 0),
        ("s", "escape.param") => (SEscParam, 0, 0),
        ("s", "unescape.param") => (SUnescParam, 0, 0),
        ("s", "index") => (SIndex, 1, 2),
        ("s", "rindex") => (SRindex, 1, 2),
        ("s", "substr") => (SSubstr, 2, 2),
        ("s", "select") => (SSelect, 2, 2),
        ("s", "fill.left") => (SFillLeft, 2, 2),
        ("s", "fill.right") => (SFillRight, 2, 2),
        ("s", "width") => (SWidth, 1, 1),
        ("s", "trim") => (STrim, 0, 0),
        ("s", "trimr") => (STrimR, 0, 0),
        ("s", "triml") => (STrimL, 0, 0),
        ("s", "b64encode") => (SB64Enc, 0, 0),
        ("s", "b64decode") => (SB64Dec, 0, 0),
        ("s", "xor") => (SXor, 1, 1),
        ("s", "reverse") => (SReverse, 0, 0),
        ("s", "eval") => (SEval, 0, 0),
        ("s", "sha1") => (SSha(1), 0, 0),
        ("s", "sha224") => (SSha(224), 0, 0),
        ("s", "sha256") => (SSha(256), 0, 0),
        ("s", "sha384") => (SSha(384), 0, 0),
        ("s", "sha512") => (SSha(512), 0, 0),
        ("s", "sha1_hmac") => (SShaHmac(1), 1, 1),
        ("s", "sha224_hmac") => (SShaHmac(224), 1, 1),
        ("s", "sha256_hmac") => (SShaHmac(256), 1, 1),
        ("s", "sha384_hmac") => (SShaHmac(384), 1, 1),
        ("s", "sha512_hmac") => (SShaHmac(512), 1, 1),
        ("uri", m) => {
            let f = match m {
                "user" => UriF::User,
                "host" | "domain" => UriF::Host,
                "passwd" => UriF::Passwd,
                "port" => UriF::Port,
                "params" => UriF::Params,
                "param" => UriF::Param,
                "headers" => UriF::Headers,
                "transport" => UriF::Transport,
                "ttl" => UriF::Ttl,
                "uparam" => UriF::Uparam,
                "maddr" => UriF::Maddr,
                "method" => UriF::Method,
                "lr" => UriF::Lr,
                "r2" => UriF::R2,
                _ => UriF::Schema,
            };
            let n = usize::from(f == UriF::Param);
            (Uri(f), n, n)
        }
        ("via", m) => {
            let f = match m {
                "name" => ViaF::Name,
                "version" => ViaF::Version,
                "transport" => ViaF::Transport,
                "host" | "domain" => ViaF::Host,
                "port" => ViaF::Port,
                "comment" => ViaF::Comment,
                "params" => ViaF::Params,
                "param" => ViaF::Param,
                "branch" => ViaF::Branch,
                "received" => ViaF::Received,
                _ => ViaF::Rport,
            };
            let n = usize::from(f == ViaF::Param);
            (Via(f), n, n)
        }
        ("param", "value") => (ParamValue, 1, 2),
        ("param", "exist") => (ParamExist, 1, 2),
        ("param", "valueat") => (ParamValueAt, 1, 2),
        ("param", "name") => (ParamName, 1, 2),
        ("param", _) => (ParamCount, 0, 1),
        ("nameaddr", "name") => (NaName, 0, 0),
        ("nameaddr", "uri") => (NaUri, 0, 0),
        ("nameaddr", "len") => (NaLen, 0, 0),
        ("nameaddr", "param") => (NaParam, 1, 1),
        ("nameaddr", _) => (NaParams, 0, 0),
        ("ip", "pton") => (IpPton, 0, 0),
        ("ip", "ntop") => (IpNtop, 0, 0),
        ("ip", "isip") => (IpIsIp, 0, 0),
        ("ip", "isip4") => (IpIsIp4, 0, 0),
        ("ip", "isip6") => (IpIsIp6, 0, 0),
        ("ip", "family") => (IpFamily, 0, 0),
        ("ip", "resolve") => (IpResolve, 0, 0),
        ("ip", "matches") => (IpMatches, 1, 1),
        ("ip", _) => (IpIsPrivate, 0, 0),
        ("csv", "count") => (CsvCount, 0, 0),
        ("csv", _) => (CsvValue, 1, 1),
        ("sdp", "line") => (SdpLine, 1, 2),
        ("sdp", "stream") => (SdpStream, 1, 1),
        ("sdp", _) => (SdpStreamDelete, 1, 1),
        _ => (ReSubst, 1, 1),
    };
    // Parameters: split at top-level commas (s.select keeps a literal comma separator).
    let mut params: Vec<Fmt> = t.params.iter().map(&mut *fmt).collect();
    if matches!(op, SSelect | SFillLeft | SFillRight)
        && params.len() > max
        && let Some(raw) = &t.params_raw
        && let Some((first, rest)) = raw.split_once(',')
    {
        params = vec![
            fmt(&sipox_cfg_syntax::parse_format(first)),
            Fmt::literal(rest.as_bytes()),
        ];
    }
    if op == ReSubst && params.len() == 1 && params[0].as_const().is_none() {
        return Ok(Trans {
            op,
            index: 0,
            params: params.into(),
            re: None,
        });
    }
    if op == ReSubst {
        let raw = t.params_raw.clone().unwrap_or_default();
        let (re, repl, global) = parse_subst(&raw).map_err(|m| {
            (
                format!("{{re.subst}}: {m}"),
                Some("use /regex/replacement/flags".to_owned()),
            )
        })?;
        return Ok(Trans {
            op,
            index: 0,
            params: Box::new([]),
            re: Some((re, repl.into(), global)),
        });
    }
    if params.len() < min || params.len() > max {
        let want = if min == max {
            format!("{min}")
        } else {
            format!("{min} to {max}")
        };
        return Err((
            format!(
                "{{{}.{}}} takes {want} parameter(s), {} given",
                t.class,
                t.method,
                params.len()
            ),
            None,
        ));
    }
    if op == IpMatches
        && let Some(c) = params[0].as_const()
        && IpNet::parse(&String::from_utf8_lossy(c)).is_none()
    {
        return Err((
            format!("bad IP network '{}'", String::from_utf8_lossy(c)),
            None,
        ));
    }
    Ok(Trans {
        op,
        index: na_index.unwrap_or(0),
        params: params.into(),
        re: None,
    })
}

/// Parses `/re/repl/flags` (any delimiter = first char).
pub(crate) fn parse_subst(s: &str) -> Result<(regex::bytes::Regex, Vec<u8>, bool), String> {
    let mut chars = s.chars();
    let Some(d) = chars.next() else {
        return Err("empty expression".to_owned());
    };
    let body: &str = chars.as_str();
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut esc = false;
    for c in body.chars() {
        if esc {
            if c != d {
                cur.push('\\');
            }
            cur.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == d {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    if parts.len() != 3 {
        return Err("expected three delimited parts".to_owned());
    }
    let flags = &parts[2];
    let icase = flags.contains('i');
    let global = flags.contains('g');
    let re = regex::bytes::RegexBuilder::new(&parts[0])
        .case_insensitive(icase)
        .unicode(false)
        .build()
        .map_err(|e| e.to_string().lines().last().unwrap_or("").trim().to_owned())?;
    Ok((re, parts[1].clone().into_bytes(), global))
}

/// Applies `repl` (with `\0`..`\9` back-references) for the matches of `re` in `input`.
pub(crate) fn subst(
    re: &regex::bytes::Regex,
    repl: &[u8],
    global: bool,
    input: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    let mut last = 0;
    let mut any = false;
    for caps in re.captures_iter(input) {
        let Some(m) = caps.get(0) else { continue };
        any = true;
        out.extend_from_slice(&input[last..m.start()]);
        let mut i = 0;
        while i < repl.len() {
            if repl[i] == b'\\' && i + 1 < repl.len() && repl[i + 1].is_ascii_digit() {
                let g = usize::from(repl[i + 1] - b'0');
                if let Some(c) = caps.get(g) {
                    out.extend_from_slice(c.as_bytes());
                }
                i += 2;
            } else {
                out.push(repl[i]);
                i += 1;
            }
        }
        last = m.end();
        if !global {
            break;
        }
    }
    out.extend_from_slice(&input[last..]);
    any
}

fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

fn unhex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&c)
}

fn escape(input: &[u8], keep: &[u8], out: &mut Vec<u8>) {
    for &c in input {
        if is_unreserved(c) || keep.contains(&c) {
            out.push(c);
        } else {
            let _ = write!(out, "%{c:02X}");
        }
    }
}

fn unescape(input: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%'
            && let (Some(h), Some(l)) = (
                unhex(input[i + 1]),
                input.get(i + 2).and_then(|&c| unhex(c)),
            )
        {
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
}

fn trim_ws(s: &[u8], left: bool, right: bool) -> &[u8] {
    let is_ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let mut a = 0;
    let mut b = s.len();
    if left {
        while a < b && is_ws(&s[a]) {
            a += 1;
        }
    }
    if right {
        while b > a && is_ws(&s[b - 1]) {
            b -= 1;
        }
    }
    &s[a..b]
}

/// Splits a `name=value;name2=value2` list.
fn params_iter(s: &[u8], sep: u8) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> + '_ {
    s.split(move |&c| c == sep)
        .map(|p| trim_ws(p, true, true))
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&c| c == b'=') {
            Some(i) => (
                trim_ws(&p[..i], true, true),
                Some(trim_ws(&p[i + 1..], true, true)),
            ),
            None => (p, None),
        })
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            v.is_private() || v.is_loopback() || v.is_link_local() || {
                let o = v.octets();
                o[0] == 100 && (64..128).contains(&o[1])
            }
        }
        IpAddr::V6(v) => (v.segments()[0] & 0xfe00) == 0xfc00 || v.is_loopback(),
    }
}

fn parse_ip(s: &[u8]) -> Option<IpAddr> {
    let t = std::str::from_utf8(s).ok()?;
    t.trim_matches(|c| c == '[' || c == ']').parse().ok()
}

fn sha(bits: u16, data: &[u8], out: &mut Vec<u8>) {
    match bits {
        1 => hex(out, &sha1::Sha1::digest(data)),
        224 => hex(out, &sha2::Sha224::digest(data)),
        256 => hex(out, &sha2::Sha256::digest(data)),
        384 => hex(out, &sha2::Sha384::digest(data)),
        _ => hex(out, &sha2::Sha512::digest(data)),
    }
}

fn sha_hmac(bits: u16, key: &[u8], data: &[u8], out: &mut Vec<u8>) {
    use hmac::{Hmac, Mac};
    macro_rules! h {
        ($t:ty) => {{
            if let Ok(mut m) = <Hmac<$t> as Mac>::new_from_slice(key) {
                m.update(data);
                hex(out, &m.finalize().into_bytes());
            }
        }};
    }
    match bits {
        1 => h!(sha1::Sha1),
        224 => h!(sha2::Sha224),
        256 => h!(sha2::Sha256),
        384 => h!(sha2::Sha384),
        _ => h!(sha2::Sha512),
    }
}

/// The media streams of an SDP body: `(media type, (start, end))` of each `m=` section.
fn sdp_streams(body: &[u8]) -> Vec<(&[u8], (usize, usize))> {
    let mut v: Vec<(&[u8], (usize, usize))> = Vec::new();
    let mut pos = 0;
    for line in body.split_inclusive(|&c| c == b'\n') {
        if line.starts_with(b"m=") {
            if let Some(last) = v.last_mut() {
                last.1.1 = pos;
            }
            let media = line[2..].split(|&c| c == b' ').next().unwrap_or(b"");
            v.push((media, (pos, body.len())));
        }
        pos += line.len();
    }
    v
}

/// Applies a transformation to `(kind, out)` in place; returns the new kind.
pub(crate) fn apply(t: &Trans, cx: &mut MsgCx, kind: Kind, out: &mut Vec<u8>) -> Kind {
    use Op::*;
    if let Kind::Int(i) = kind {
        out.clear();
        push_int(out, i);
    }
    if kind == Kind::Null && !matches!(t.op, SLen) {
        return Kind::Null;
    }
    if kind == Kind::Null {
        return Kind::Int(0);
    }
    let mut p0 = cx.take_buf();
    let mut p1 = cx.take_buf();
    if let Some(f) = t.params.first() {
        cx.eval_fmt(f, &mut p0);
    }
    if let Some(f) = t.params.get(1) {
        cx.eval_fmt(f, &mut p1);
    }
    let mut tmp = cx.take_buf();
    let k = apply_op(t, cx, out, &p0, &p1, &mut tmp);
    cx.give_buf(p0);
    cx.give_buf(p1);
    cx.give_buf(tmp);
    k
}

/// Replaces `out` with `tmp` and returns `Str`.
fn swap_str(out: &mut Vec<u8>, tmp: &mut Vec<u8>) -> Kind {
    std::mem::swap(out, tmp);
    Kind::Str
}

fn keep(out: &mut Vec<u8>, a: usize, b: usize) -> Kind {
    out.truncate(b);
    out.drain(..a);
    Kind::Str
}

fn sub_of(out: &[u8], s: &[u8]) -> Option<(usize, usize)> {
    if s.is_empty() {
        return Some((0, 0));
    }
    let a = (s.as_ptr() as usize).checked_sub(out.as_ptr() as usize)?;
    (a + s.len() <= out.len()).then_some((a, a + s.len()))
}

fn opt_sub(out: &mut Vec<u8>, s: Option<(usize, usize)>) -> Kind {
    match s {
        Some((a, b)) => keep(out, a, b),
        None => {
            out.clear();
            Kind::Null
        }
    }
}

#[allow(clippy::too_many_lines)]
fn apply_op(
    t: &Trans,
    cx: &mut MsgCx,
    out: &mut Vec<u8>,
    p0: &[u8],
    p1: &[u8],
    tmp: &mut Vec<u8>,
) -> Kind {
    use Op::*;
    let pi = |p: &[u8]| parse_int(trim_ws(p, true, true));
    match t.op {
        SLen => Kind::Int(i64::try_from(out.len()).unwrap_or(0)),
        SInt => {
            let s = trim_ws(out, true, true);
            let end = s
                .iter()
                .enumerate()
                .position(|(i, c)| !(c.is_ascii_digit() || (i == 0 && (*c == b'-' || *c == b'+'))))
                .unwrap_or(s.len());
            Kind::Int(parse_int(&s[..end]).unwrap_or(0))
        }
        SMd5 => {
            hex(tmp, &md5::Md5::digest(&out[..]));
            swap_str(out, tmp)
        }
        SCrc32 => Kind::Int(i64::from(crc32fast::hash(out))),
        SLower => {
            out.make_ascii_lowercase();
            Kind::Str
        }
        SUpper => {
            out.make_ascii_uppercase();
            Kind::Str
        }
        SEncHex => {
            hex(tmp, out);
            swap_str(out, tmp)
        }
        SDecHex => {
            for c in out.chunks(2) {
                match (unhex(c[0]), c.get(1).and_then(|&x| unhex(x))) {
                    (Some(h), Some(l)) => tmp.push(h * 16 + l),
                    _ => return Kind::Null,
                }
            }
            swap_str(out, tmp)
        }
        SHex2Dec => {
            let s = trim_ws(out, true, true);
            let s = s
                .strip_prefix(b"0x")
                .or_else(|| s.strip_prefix(b"0X"))
                .unwrap_or(s);
            let v = std::str::from_utf8(s)
                .ok()
                .and_then(|s| i64::from_str_radix(s, 16).ok());
            match v {
                Some(v) => Kind::Int(v),
                None => Kind::Null,
            }
        }
        SDec2Hex => match as_int(Kind::Str, trim_ws(out, true, true)) {
            Some(v) => {
                let _ = write!(tmp, "{v:x}");
                swap_str(out, tmp)
            }
            None => Kind::Null,
        },
        SEscCommon => {
            for &c in out.iter() {
                match c {
                    b'\'' | b'"' | b'\\' => {
                        tmp.push(b'\\');
                        tmp.push(c);
                    }
                    0 => tmp.extend_from_slice(b"\\0"),
                    _ => tmp.push(c),
                }
            }
            swap_str(out, tmp)
        }
        SUnescCommon => {
            let mut i = 0;
            while i < out.len() {
                if out[i] == b'\\' && i + 1 < out.len() {
                    tmp.push(if out[i + 1] == b'0' { 0 } else { out[i + 1] });
                    i += 2;
                } else {
                    tmp.push(out[i]);
                    i += 1;
                }
            }
            swap_str(out, tmp)
        }
        SEscUser => {
            escape(out, b"&=+$,;?/", tmp);
            swap_str(out, tmp)
        }
        SEscParam => {
            escape(out, b"[]/:&+$", tmp);
            swap_str(out, tmp)
        }
        SUnescUser | SUnescParam => {
            unescape(out, tmp);
            swap_str(out, tmp)
        }
        SIndex | SRindex => {
            let n = i64::try_from(out.len()).unwrap_or(0);
            let off = if t.params.len() > 1 { pi(p1) } else { None };
            // Negative offsets wrap around the length.
            let off = off.map(|o| {
                if n == 0 {
                    0
                } else if o < 0 {
                    o.rem_euclid(n)
                } else {
                    o.min(n)
                }
            });
            if p0.is_empty() || p0.len() > out.len() {
                return Kind::Null;
            }
            let found = if t.op == SIndex {
                let st = usize::try_from(off.unwrap_or(0)).unwrap_or(0);
                out.get(st..)
                    .and_then(|s| s.windows(p0.len()).position(|w| w == p0))
                    .map(|i| i + st)
            } else {
                // The match must start at or before the offset.
                let lim = off.map_or(out.len(), |o| usize::try_from(o).unwrap_or(0));
                out.windows(p0.len())
                    .enumerate()
                    .rev()
                    .find(|(i, w)| *i <= lim && *w == p0)
                    .map(|(i, _)| i)
            };
            match found {
                Some(i) => Kind::Int(i64::try_from(i).unwrap_or(0)),
                None => {
                    out.clear();
                    Kind::Null
                }
            }
        }
        SSubstr => {
            let (Some(off), Some(len)) = (pi(p0), pi(p1)) else {
                return Kind::Null;
            };
            let n = i64::try_from(out.len()).unwrap_or(0);
            let a = if off < 0 { n + off } else { off };
            if a < 0 || a >= n.max(1) {
                return Kind::Null;
            }
            let b = if len == 0 {
                n
            } else if len < 0 {
                n + len
            } else {
                (a + len).min(n)
            };
            if b < a {
                return Kind::Null;
            }
            keep(
                out,
                usize::try_from(a).unwrap_or(0),
                usize::try_from(b).unwrap_or(0),
            )
        }
        SSelect => {
            let (Some(idx), Some(&sep)) = (pi(p0), p1.first()) else {
                return Kind::Null;
            };
            let parts: Vec<(usize, usize)> = {
                let mut v = Vec::new();
                let mut s = 0;
                for (i, &c) in out.iter().enumerate() {
                    if c == sep {
                        v.push((s, i));
                        s = i + 1;
                    }
                }
                v.push((s, out.len()));
                v
            };
            let n = i64::try_from(parts.len()).unwrap_or(0);
            let i = if idx < 0 { n + idx } else { idx };
            match usize::try_from(i).ok().and_then(|i| parts.get(i)) {
                Some(&(a, b)) => keep(out, a, b),
                None => Kind::Null,
            }
        }
        SFillLeft | SFillRight => {
            let Some(len) = pi(p1).and_then(|l| usize::try_from(l).ok()) else {
                return Kind::Null;
            };
            if p0.is_empty() || out.len() >= len {
                return Kind::Str;
            }
            let need = len - out.len();
            let pad: Vec<u8> = if t.op == SFillLeft {
                // The repeated token is aligned to end just before the value.
                let skip = (p0.len() - need % p0.len()) % p0.len();
                p0.iter().copied().cycle().skip(skip).take(need).collect()
            } else {
                p0.iter().copied().cycle().take(need).collect()
            };
            if t.op == SFillLeft {
                tmp.extend_from_slice(&pad);
                tmp.extend_from_slice(out);
                swap_str(out, tmp)
            } else {
                out.extend_from_slice(&pad);
                Kind::Str
            }
        }
        SWidth => {
            let Some(w) = pi(p0).and_then(|l| usize::try_from(l).ok()) else {
                return Kind::Null;
            };
            if out.len() > w {
                out.truncate(w);
            } else {
                out.resize(w, b' ');
            }
            Kind::Str
        }
        STrim | STrimR | STrimL => {
            let s = trim_ws(out, t.op != STrimR, t.op != STrimL);
            opt_sub(out, sub_of(out, s))
        }
        SB64Enc => {
            let s = base64::engine::general_purpose::STANDARD.encode(&out[..]);
            tmp.extend_from_slice(s.as_bytes());
            swap_str(out, tmp)
        }
        SB64Dec => match base64::engine::general_purpose::STANDARD.decode(&out[..]) {
            Ok(v) => {
                tmp.extend_from_slice(&v);
                swap_str(out, tmp)
            }
            Err(_) => Kind::Null,
        },
        SXor => {
            if !p0.is_empty() {
                for (i, c) in out.iter_mut().enumerate() {
                    *c ^= p0[i % p0.len()];
                }
            }
            Kind::Str
        }
        SReverse => {
            out.reverse();
            Kind::Str
        }
        SEval => {
            let text = String::from_utf8_lossy(out).into_owned();
            let f = sipox_cfg_syntax::parse_format(&text);
            if f.is_static() {
                return Kind::Str;
            }
            // Expanding variables named only at run time needs the compiler at run time, which
            // the engine does not keep yet: say so and yield NULL rather than a wrong string.
            cx.log(
                -1,
                b"ERROR: {s.eval} of a string with variables is not supported yet\n",
            );
            out.clear();
            Kind::Null
        }
        SSha(b) => {
            sha(b, out, tmp);
            swap_str(out, tmp)
        }
        SShaHmac(b) => {
            sha_hmac(b, p0, out, tmp);
            swap_str(out, tmp)
        }
        Uri(f) => uri_field(f, out, p0, tmp),
        Via(f) => via_field(f, out, p0, tmp),
        ParamValue | ParamExist | ParamValueAt | ParamName | ParamCount => {
            let sep = if t.params.len() > 1 || (t.op == ParamCount && !t.params.is_empty()) {
                let s = if t.op == ParamCount { p0 } else { p1 };
                s.first().copied().unwrap_or(b';')
            } else {
                b';'
            };
            let list: &[u8] = trim_ws(out.strip_prefix(&[sep][..]).unwrap_or(out), true, true);
            let r = match t.op {
                ParamValue => {
                    match params_iter(list, sep).find(|(n, _)| n.eq_ignore_ascii_case(p0)) {
                        Some((_, v)) => Some(v.unwrap_or(b"")),
                        None => None,
                    }
                }
                ParamExist => {
                    return Kind::Int(i64::from(
                        params_iter(list, sep).any(|(n, _)| n.eq_ignore_ascii_case(p0)),
                    ));
                }
                ParamCount => {
                    return Kind::Int(i64::try_from(params_iter(list, sep).count()).unwrap_or(0));
                }
                _ => {
                    let Some(i) = pi(p0) else { return Kind::Null };
                    let n = i64::try_from(params_iter(list, sep).count()).unwrap_or(0);
                    let i = if i < 0 { n + i } else { i };
                    match usize::try_from(i)
                        .ok()
                        .and_then(|i| params_iter(list, sep).nth(i))
                    {
                        Some((n, v)) => Some(if t.op == ParamName {
                            n
                        } else {
                            v.unwrap_or(b"")
                        }),
                        None => None,
                    }
                }
            };
            match r {
                Some(v) => {
                    tmp.extend_from_slice(v);
                    swap_str(out, tmp)
                }
                None => {
                    out.clear();
                    Kind::Null
                }
            }
        }
        NaName | NaUri | NaLen | NaParam | NaParams => {
            let whole = sipox_sip_msg::Span::new(0, out.len());
            let specs = || sipox_sip_msg::CommaSplit::new(out, whole);
            let i = if t.index < 0 {
                i64::try_from(specs().count()).unwrap_or(0) + t.index
            } else {
                t.index
            };
            let Some(span) = usize::try_from(i).ok().and_then(|i| specs().nth(i)) else {
                out.clear();
                return Kind::Null;
            };
            let Ok(na) = sipox_sip_msg::parse_name_addr(out, span) else {
                out.clear();
                return Kind::Null;
            };
            let b = sipox_sip_msg::Bound::new(&out[..], na);
            let r = match t.op {
                NaName => b.display().map(|d| {
                    let d = d.trim_ascii();
                    d.strip_prefix(b"\"")
                        .and_then(|x| x.strip_suffix(b"\""))
                        .unwrap_or(d)
                }),
                NaUri => Some(b.uri().raw()),
                NaLen => return Kind::Int(i64::try_from(na.span.len()).unwrap_or(0)),
                NaParam => b.param(p0).map(|v| v.unwrap_or(b"")),
                _ => {
                    let r = b.params().raw();
                    Some(r.strip_prefix(b";").unwrap_or(r))
                }
            };
            match r {
                Some(v) => {
                    tmp.extend_from_slice(v);
                    swap_str(out, tmp)
                }
                None => {
                    out.clear();
                    Kind::Null
                }
            }
        }
        IpPton => match parse_ip(out) {
            Some(IpAddr::V4(v)) => {
                tmp.extend_from_slice(&v.octets());
                swap_str(out, tmp)
            }
            Some(IpAddr::V6(v)) => {
                tmp.extend_from_slice(&v.octets());
                swap_str(out, tmp)
            }
            None => Kind::Null,
        },
        IpNtop => {
            let ip = match out.len() {
                4 => {
                    let mut o = [0u8; 4];
                    o.copy_from_slice(out);
                    IpAddr::from(o)
                }
                16 => {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(out);
                    IpAddr::from(o)
                }
                _ => return Kind::Null,
            };
            let _ = write!(tmp, "{ip}");
            swap_str(out, tmp)
        }
        IpIsIp => Kind::Int(i64::from(parse_ip(out).is_some())),
        IpIsIp4 => Kind::Int(i64::from(parse_ip(out).is_some_and(|i| i.is_ipv4()))),
        IpIsIp6 => Kind::Int(i64::from(parse_ip(out).is_some_and(|i| i.is_ipv6()))),
        IpFamily => {
            let v4 = match out.len() {
                4 => Some(true),
                16 => Some(false),
                _ => parse_ip(out).map(|i| i.is_ipv4()),
            };
            match v4 {
                Some(v4) => {
                    tmp.extend_from_slice(if v4 { b"INET" } else { b"INET6" });
                    swap_str(out, tmp)
                }
                None => {
                    out.clear();
                    Kind::Null
                }
            }
        }
        IpResolve => {
            if parse_ip(out).is_some() {
                Kind::Str
            } else {
                // Name resolution needs the network runtime.
                Kind::Null
            }
        }
        IpMatches => {
            let net = IpNet::parse(&String::from_utf8_lossy(p0));
            match (net, parse_ip(out)) {
                (Some(n), Some(ip)) if n.is_v4() == ip.is_ipv4() => {
                    Kind::Int(i64::from(n.contains(ip)))
                }
                _ => {
                    out.clear();
                    Kind::Null
                }
            }
        }
        IpIsPrivate => Kind::Int(i64::from(parse_ip(out).is_some_and(is_private))),
        CsvCount => Kind::Int(i64::try_from(out.split(|&c| c == b',').count()).unwrap_or(0)),
        CsvValue => {
            let Some(i) = pi(p0) else { return Kind::Null };
            let n = i64::try_from(out.split(|&c| c == b',').count()).unwrap_or(0);
            let i = if i < 0 { n + i } else { i };
            let r = usize::try_from(i)
                .ok()
                .and_then(|i| out.split(|&c| c == b',').nth(i))
                .map(|s| sub_of(&out[..], s));
            opt_sub(out, r.flatten())
        }
        SdpLine => {
            let Some(&ty) = p0.first() else {
                return Kind::Null;
            };
            let want = if t.params.len() > 1 {
                pi(p1).unwrap_or(0)
            } else {
                0
            };
            let r = out
                .split(|&c| c == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .filter(|l| l.len() >= 2 && l[0] == ty && l[1] == b'=')
                .nth(usize::try_from(want).unwrap_or(usize::MAX))
                .map(|l| sub_of(&out[..], l));
            opt_sub(out, r.flatten())
        }
        SdpStream | SdpStreamDelete => {
            let streams = sdp_streams(out);
            let sel: Vec<(usize, usize)> = match pi(p0) {
                Some(i) => {
                    let n = i64::try_from(streams.len()).unwrap_or(0);
                    let i = if i < 0 { n + i } else { i };
                    usize::try_from(i)
                        .ok()
                        .and_then(|i| streams.get(i))
                        .map(|x| vec![x.1])
                        .unwrap_or_default()
                }
                None => {
                    let m = streams
                        .iter()
                        .filter(|(media, _)| media.eq_ignore_ascii_case(p0))
                        .map(|x| x.1);
                    if t.op == SdpStream {
                        m.take(1).collect()
                    } else {
                        m.collect()
                    }
                }
            };
            if sel.is_empty() {
                out.clear();
                return Kind::Null;
            }
            if t.op == SdpStream {
                let (a, b) = sel[0];
                return keep(out, a, b);
            }
            for &(a, b) in sel.iter().rev() {
                out.drain(a..b);
            }
            Kind::Str
        }
        ReSubst => {
            if let Some((re, repl, g)) = &t.re {
                subst(re, repl, *g, out, tmp);
                return swap_str(out, tmp);
            }
            match parse_subst(&String::from_utf8_lossy(p0)) {
                Ok((re, repl, g)) => {
                    subst(&re, &repl, g, out, tmp);
                    swap_str(out, tmp)
                }
                Err(_) => {
                    out.clear();
                    Kind::Null
                }
            }
        }
    }
}

fn uri_field(f: UriF, out: &mut Vec<u8>, p0: &[u8], tmp: &mut Vec<u8>) -> Kind {
    let Ok(u) = sipox_sip_msg::uri(&out[..]) else {
        out.clear();
        return Kind::Null;
    };
    let param = |n: &[u8]| u.param(n).map(|v| v.unwrap_or(b""));
    let r: Option<&[u8]> = match f {
        UriF::User => u.user(),
        UriF::Host => Some(u.host()),
        UriF::Passwd => u.password(),
        UriF::Port => u.v.port_span.map(|s| s.of(&out[..])),
        UriF::Params => {
            let r = u.params().raw();
            let r = r.strip_prefix(b";").unwrap_or(r);
            (!r.is_empty()).then_some(r)
        }
        UriF::Param => param(p0),
        UriF::Headers => u.headers(),
        UriF::Transport => param(b"transport"),
        UriF::Ttl => param(b"ttl"),
        UriF::Uparam => param(b"user"),
        UriF::Maddr => param(b"maddr"),
        UriF::Method => param(b"method"),
        UriF::Lr => param(b"lr"),
        UriF::R2 => param(b"r2"),
        UriF::Schema => Some(u.scheme_str()),
    };
    match r {
        Some(v) => {
            tmp.extend_from_slice(v);
            swap_str(out, tmp)
        }
        None => {
            out.clear();
            Kind::Null
        }
    }
}

fn via_field(f: ViaF, out: &mut Vec<u8>, p0: &[u8], tmp: &mut Vec<u8>) -> Kind {
    let Ok(v) = sipox_sip_msg::via(&out[..]) else {
        out.clear();
        return Kind::Null;
    };
    let raw = v.raw();
    // "SIP/2.0/UDP host..." — protocol name, version and transport by slashes.
    let proto: Vec<&[u8]> = raw
        .splitn(3, |&c| c == b'/')
        .map(|s| trim_ws(s, true, true))
        .collect();
    let r: Option<Vec<u8>> = match f {
        ViaF::Name => proto.first().map(|s| s.to_vec()),
        ViaF::Version => proto.get(1).map(|s| s.to_vec()),
        ViaF::Transport => proto.get(2).map(|s| {
            s.split(|c| c.is_ascii_whitespace())
                .next()
                .unwrap_or(s)
                .to_vec()
        }),
        ViaF::Host => Some(v.host().to_vec()),
        ViaF::Port => v.port().map(|p| p.to_string().into_bytes()),
        ViaF::Comment => raw.iter().position(|&c| c == b'(').map(|i| {
            let end = raw.iter().rposition(|&c| c == b')').unwrap_or(raw.len());
            raw[i + 1..end.max(i + 1)].to_vec()
        }),
        ViaF::Params => {
            let r = v.params().raw();
            Some(r.strip_prefix(b";").unwrap_or(r).to_vec())
        }
        ViaF::Param => v.params().get(p0).map(|x| x.unwrap_or(b"").to_vec()),
        ViaF::Branch => v.branch().map(<[u8]>::to_vec),
        ViaF::Received => v.received().map(<[u8]>::to_vec),
        ViaF::Rport => v.rport().map(|x| x.unwrap_or(b"").to_vec()),
    };
    match r {
        Some(x) => {
            tmp.extend_from_slice(&x);
            swap_str(out, tmp)
        }
        None => {
            out.clear();
            Kind::Null
        }
    }
}
