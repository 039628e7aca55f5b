//! `save()` and `lookup()` flag strings.
//!
//! `save()` takes OpenSIPS 3.5's comma-separated names (`"memory-only,no-reply,max-contacts=3,
//! path-lazy"`); the pre-3.0 letters (`"mrc3p1"`) are still understood, token by token, so old
//! scripts keep working. `lookup()` flags are single letters in 3.5 (`b`, `B`, `r`, `m`,
//! `u/regex/`, `i`, `e`, `g`, `yNNN`, `Y`).

/// How Path headers of a REGISTER are handled (RFC 3327).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PathMode {
    /// No path flag: Path headers are not stored.
    #[default]
    Ignore,
    /// `path-off` (`p0`): stored, never echoed.
    Off,
    /// `path-lazy` (`p1`): stored, echoed when the UA supports `path`.
    Lazy,
    /// `path-strict` (`p2`): rejected with 420 unless the UA supports `path`.
    Strict,
}

/// Contact matching for this `save()` (`matching-mode=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matching {
    /// `0`: contact URI only.
    Contact,
    /// `1`: contact URI and Call-ID.
    ContactCallid,
    /// `<name>`: the value of a URI parameter.
    Param(String),
}

/// Parsed `save()` flags.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaveFlags {
    /// `memory-only` (`m`).
    pub memory_only: bool,
    /// `no-reply` (`r`).
    pub no_reply: bool,
    /// `socket-header` (`s`).
    pub socket_header: bool,
    /// `path-*` (`p0`/`p1`/`p2`).
    pub path: PathMode,
    /// `path-received` (`v`).
    pub path_received: bool,
    /// `force-registration` (`f`).
    pub force_registration: bool,
    /// `only-request-contacts` (`o`).
    pub only_request_contacts: bool,
    /// `max-contacts=N` (`cN`).
    pub max_contacts: Option<u32>,
    /// `min-expires=N` (`eN`).
    pub min_expires: Option<u32>,
    /// `max-expires=N` (`EN`).
    pub max_expires: Option<u32>,
    /// `matching-mode=` (`M0`, `M1`, `M<param>`).
    pub matching: Option<Matching>,
}

/// Parses a `save()` flag string.
///
/// # Errors
/// An unknown flag name, or a `key=value` flag whose value is not a number.
pub fn parse_save_flags(s: &str) -> Result<SaveFlags, String> {
    let mut f = SaveFlags::default();
    for tok in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if let Some((k, v)) = tok.split_once('=') {
            let (k, v) = (k.trim(), v.trim());
            let num = || {
                v.parse::<u32>()
                    .map_err(|_| format!("{k} [{v}] value is not an integer"))
            };
            match k {
                "max-contacts" => f.max_contacts = Some(num()?),
                "min-expires" => f.min_expires = Some(num()?),
                "max-expires" => f.max_expires = Some(num()?),
                "matching-mode" => f.matching = Some(matching(v)?),
                _ => return Err(format!("unknown save() flag {k:?}")),
            }
            continue;
        }
        match tok {
            "memory-only" => f.memory_only = true,
            "no-reply" => f.no_reply = true,
            "socket-header" => f.socket_header = true,
            "path-strict" => f.path = PathMode::Strict,
            "path-lazy" => f.path = PathMode::Lazy,
            "path-off" => f.path = PathMode::Off,
            "path-received" => f.path_received = true,
            "force-registration" => f.force_registration = true,
            "only-request-contacts" => f.only_request_contacts = true,
            _ => legacy_letters(tok, &mut f)?,
        }
    }
    Ok(f)
}

fn matching(v: &str) -> Result<Matching, String> {
    match v {
        "0" => Ok(Matching::Contact),
        "1" => Ok(Matching::ContactCallid),
        _ => v
            .strip_prefix('<')
            .and_then(|r| r.strip_suffix('>'))
            .filter(|p| !p.is_empty())
            .map(|p| Matching::Param(p.to_owned()))
            .ok_or_else(|| format!("invalid matching-mode {v:?}")),
    }
}

/// The pre-3.0 one-letter syntax (`m`, `r`, `s`, `v`, `f`, `o`, `cN`, `eN`, `EN`, `pN`, `MN`).
fn legacy_letters(tok: &str, f: &mut SaveFlags) -> Result<(), String> {
    let b = tok.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| -> u32 {
        let mut n: u32 = 0;
        while let Some(d) = b.get(*i + 1).filter(|c| c.is_ascii_digit()) {
            n = n.saturating_mul(10).saturating_add(u32::from(d - b'0'));
            *i += 1;
        }
        n
    };
    while let Some(&c) = b.get(i) {
        match c {
            b'm' => f.memory_only = true,
            b'r' => f.no_reply = true,
            b's' => f.socket_header = true,
            b'v' => f.path_received = true,
            b'f' => f.force_registration = true,
            b'o' => f.only_request_contacts = true,
            b'c' => f.max_contacts = Some(digits(&mut i)),
            b'e' => f.min_expires = Some(digits(&mut i)),
            b'E' => f.max_expires = Some(digits(&mut i)),
            b'p' => {
                i += 1;
                f.path = match b.get(i) {
                    Some(b'0') => PathMode::Off,
                    Some(b'1') => PathMode::Lazy,
                    Some(b'2') => PathMode::Strict,
                    _ => return Err(format!("invalid path mode in save() flags {tok:?}")),
                };
            }
            b'M' => {
                i += 1;
                match b.get(i) {
                    Some(b'0') => f.matching = Some(Matching::Contact),
                    Some(b'1') => f.matching = Some(Matching::ContactCallid),
                    Some(b'<') => {
                        let rest = &tok[i..];
                        let end = rest
                            .find('>')
                            .ok_or_else(|| format!("invalid matching mode in {tok:?}"))?;
                        f.matching = Some(matching(&rest[..=end])?);
                        i += end;
                    }
                    _ => return Err(format!("invalid matching mode in {tok:?}")),
                }
            }
            _ => return Err(format!("unknown save() flag {tok:?}")),
        }
        i += 1;
    }
    Ok(())
}

/// Parsed `lookup()` flags.
#[derive(Debug, Clone, Default)]
pub struct LookupFlags {
    /// `b`: only the Request-URI, no branches.
    pub no_branches: bool,
    /// `B`: every contact as a branch, the Request-URI untouched.
    pub to_branches_only: bool,
    /// `r`: also expand the AoRs found in the existing branches.
    pub branch_lookup: bool,
    /// `m`: skip contacts that did not list the request's method in `Allow`.
    pub method_filtering: bool,
    /// `u/regex/` with `i` (case-insensitive) and `e` (extended; always on here): keep only
    /// contacts whose User-Agent matches.
    pub ua_filter: Option<regex::bytes::Regex>,
    /// `g`: global lookup (federated clustering; accepted, local contacts only).
    pub global: bool,
    /// `yNNN`: maximum pinging latency (µs); no pinging data here, so accepted and ignored.
    pub max_latency: u32,
    /// `Y`: sort by pinging latency (accepted, ignored: no pinging data).
    pub latency_sort: bool,
}

/// Parses a `lookup()` flag string.
///
/// # Errors
/// A malformed or invalid `u/regex/`.
pub fn parse_lookup_flags(s: &str) -> Result<LookupFlags, String> {
    let mut f = LookupFlags::default();
    let b = s.as_bytes();
    let mut i = 0;
    let mut ua: Option<&str> = None;
    let mut icase = false;
    while let Some(&c) = b.get(i) {
        match c {
            b'b' => f.no_branches = true,
            b'B' => f.to_branches_only = true,
            b'r' => f.branch_lookup = true,
            b'm' => f.method_filtering = true,
            b'g' => f.global = true,
            b'Y' => f.latency_sort = true,
            b'i' => icase = true,
            b'e' => {}
            b'y' => {
                let mut n: u32 = 0;
                while let Some(d) = b.get(i + 1).filter(|c| c.is_ascii_digit()) {
                    n = n.saturating_mul(10).saturating_add(u32::from(d - b'0'));
                    i += 1;
                }
                f.max_latency = n;
            }
            b'u' => {
                if b.get(i + 1) != Some(&b'/') {
                    return Err("no regexp start after 'u' flag".into());
                }
                let rest = &s[i + 2..];
                let end = rest
                    .find('/')
                    .ok_or_else(|| "no regexp end after 'u' flag".to_owned())?;
                if end == 0 {
                    return Err("empty regexp".into());
                }
                ua = Some(&rest[..end]);
                i += 2 + end;
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(re) = ua {
        let re = if icase {
            format!("(?i-u){re}")
        } else {
            re.to_owned()
        };
        f.ua_filter =
            Some(regex::bytes::Regex::new(&re).map_err(|e| format!("bad regexp {re:?}: {e}"))?);
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_save_flags() {
        let f = parse_save_flags(
            "memory-only, no-reply,socket-header,path-lazy,path-received,force-registration,\
             only-request-contacts,max-contacts=3,min-expires=30,max-expires=7200,matching-mode=1",
        )
        .unwrap();
        assert!(f.memory_only && f.no_reply && f.socket_header && f.path_received);
        assert!(f.force_registration && f.only_request_contacts);
        assert_eq!(f.path, PathMode::Lazy);
        assert_eq!(f.max_contacts, Some(3));
        assert_eq!(f.min_expires, Some(30));
        assert_eq!(f.max_expires, Some(7200));
        assert_eq!(f.matching, Some(Matching::ContactCallid));
        assert_eq!(
            parse_save_flags("matching-mode=<rinstance>")
                .unwrap()
                .matching,
            Some(Matching::Param("rinstance".into()))
        );
        assert_eq!(parse_save_flags("").unwrap(), SaveFlags::default());
    }

    #[test]
    fn legacy_save_letters() {
        let f = parse_save_flags("mrc5p2").unwrap();
        assert!(f.memory_only && f.no_reply);
        assert_eq!(f.max_contacts, Some(5));
        assert_eq!(f.path, PathMode::Strict);
        let f = parse_save_flags("e30E600fvo").unwrap();
        assert_eq!((f.min_expires, f.max_expires), (Some(30), Some(600)));
        assert!(f.force_registration && f.path_received && f.only_request_contacts);
        assert_eq!(parse_save_flags("p0").unwrap().path, PathMode::Off);
        assert_eq!(
            parse_save_flags("M<ob>").unwrap().matching,
            Some(Matching::Param("ob".into()))
        );
    }

    #[test]
    fn bad_save_flags() {
        for s in [
            "no-such-flag",
            "max-contacts=x",
            "p9",
            "M<x",
            "matching-mode=7",
            "q",
        ] {
            assert!(parse_save_flags(s).is_err(), "{s} should fail");
        }
    }

    #[test]
    fn lookup_letters() {
        let f = parse_lookup_flags("bmg").unwrap();
        assert!(f.no_branches && f.method_filtering && f.global && !f.to_branches_only);
        let f = parse_lookup_flags("Bry100Y").unwrap();
        assert!(f.to_branches_only && f.branch_lookup && f.latency_sort);
        assert_eq!(f.max_latency, 100);
        let f = parse_lookup_flags("iu/^Linphone/").unwrap();
        let re = f.ua_filter.unwrap();
        assert!(re.is_match(b"linphone 5.0"));
        let f = parse_lookup_flags("u/^Linphone/").unwrap();
        assert!(!f.ua_filter.unwrap().is_match(b"linphone 5.0"));
        assert!(parse_lookup_flags("u/abc").is_err());
        assert!(parse_lookup_flags("u//").is_err());
        assert!(parse_lookup_flags("ux").is_err());
    }
}
