//! The core global parameters (OpenSIPS 3.5 names) read from a parsed configuration. Unknown
//! parameters are reported, not silently ignored; parameters that belong to later milestones are
//! accepted and listed so `sipox -c` can say what is not acted on yet.

use std::net::IpAddr;
use std::time::Duration;

use sipox_cfg_syntax::{Config, Item, Span, Value};
use sipox_transport::{ListenSpec, Proto, TransportConfig};
use thiserror::Error;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    /// Standard error (`stderror_enabled`, the default when not daemonized).
    Stderr,
    /// Standard output (`log_stdout`).
    Stdout,
    /// syslog (`syslog_enabled`).
    Syslog,
}

/// Typed core settings.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Listening sockets (`socket=` / `listen=`, plus `-l` from the command line).
    pub sockets: Vec<ListenSpec>,
    /// Transport settings (`udp_workers`, `tcp_workers`, `maxbuffer`, `tcp_*`).
    pub transport: TransportConfig,
    /// `log_level` (-3 .. 4; 3 is L_INFO... as OpenSIPS numbers them).
    pub log_level: i32,
    /// `xlog_level`.
    pub xlog_level: i32,
    /// Where logs go.
    pub log_target: LogTarget,
    /// `log_prefix`.
    pub log_prefix: String,
    /// `debug_mode`: stay in the foreground, log to stderr, debug level.
    pub debug_mode: bool,
    /// `server_header` (full header line text after the name).
    pub server_header: String,
    /// `user_agent_header`.
    pub user_agent_header: String,
    /// `server_signature`: add Server/User-Agent headers.
    pub server_signature: bool,
    /// `sip_warning`: add a Warning header with debugging info to replies.
    pub sip_warning: bool,
    /// `force_rport`.
    pub force_rport: bool,
    /// `max_while_loops`.
    pub max_while_loops: u32,
    /// `alias` names that are ours besides the socket addresses.
    pub aliases: Vec<(String, Option<u16>)>,
    /// `tcp_accept_aliases`.
    pub tcp_accept_aliases: bool,
    /// `dns_try_ipv6`, `dns_try_naptr` (for the resolver).
    pub dns_try_ipv6: bool,
    /// `dns_try_naptr`.
    pub dns_try_naptr: bool,
    /// `dst_blacklist` definitions, verbatim (`id [/flags] [: rules]`), in order.
    pub dst_blacklist: Vec<String>,
    /// `disable_dns_failover`: tm tries no further RFC 3263 targets of a failed branch.
    pub disable_dns_failover: bool,
    /// Parameters accepted but not acted on yet (name and where).
    pub not_acted_on: Vec<(String, Span)>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            sockets: Vec::new(),
            transport: TransportConfig::default(),
            log_level: 3,
            xlog_level: 3,
            log_target: LogTarget::Stderr,
            log_prefix: String::new(),
            debug_mode: false,
            server_header: format!("Server: sipox ({})", env!("CARGO_PKG_VERSION")),
            user_agent_header: format!("User-Agent: sipox ({})", env!("CARGO_PKG_VERSION")),
            server_signature: true,
            sip_warning: false,
            force_rport: false,
            max_while_loops: 10_000,
            aliases: Vec::new(),
            tcp_accept_aliases: false,
            dns_try_ipv6: false,
            dst_blacklist: Vec::new(),
            dns_try_naptr: true,
            disable_dns_failover: false,
            not_acted_on: Vec::new(),
        }
    }
}

/// A core parameter with a bad value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct ConfigError {
    /// Where.
    pub span: Span,
    /// What is wrong.
    pub message: String,
}

/// Parameters OpenSIPS 3.5 accepts that the sipox core does not act on yet.
const ACCEPTED_LATER: &[&str] = &[
    "children",
    "check_via",
    "dns",
    "rev_dns",
    "dns_retr_time",
    "dns_retr_no",
    "dns_servers_no",
    "dns_use_search_list",
    "disable_dns_blacklist",
    "mpath",
    "auto_aliases",
    "open_files_limit",
    "mem-group",
    "shm_hash_split_percentage",
    "shm_secondary_hash_size",
    "mem_warming",
    "mem_warming_percentage",
    "mem_warming_pattern_file",
    "user",
    "group",
    "chroot",
    "wdir",
    "db_version_table",
    "db_default_url",
    "db_max_async_connections",
    "disable_core_dump",
    "exec_dns_threshold",
    "exec_msg_threshold",
    "event_pkg_threshold",
    "event_shm_threshold",
    "query_buffer_size",
    "query_flush_time",
    "mhomed",
    "poll_method",
    "tos",
    "xlog_buf_size",
    "xlog_force_color",
    "xlog_print_level",
    "abort_on_assert",
    "enable_asserts",
    "tcp_no_new_conn_bflag",
    "tcp_no_new_conn_rplflag",
    "tcp_keepalive",
    "tcp_keepcount",
    "tcp_keepidle",
    "tcp_keepinterval",
    "tcp_max_msg_time",
    "tcp_parallel_read_on_workers",
    "tcp_parallel_handling",
    "tcp_threshold",
    "tcp_socket_backlog",
    "tcp_async",
    "tcp_async_max_postponed_chunks",
    "tcp_async_local_connect_timeout",
    "tcp_async_local_write_timeout",
    "tcp_child",
    "tcp_children",
    "syslog_facility",
    "syslog_name",
    "advertised_address",
    "advertised_port",
    "server_header_off",
    "include_file",
    "auto_scaling_profile",
    "timer_workers",
    "disable_503_translation",
    "dns_timeout",
    "dns_attempts",
    "log_json_buf_size",
    "log_msg_buf_size",
    "stderror_log_format",
    "syslog_log_format",
    "log_event_enabled",
    "log_event_level_filter",
    "restart_persistency_cache_file",
    "restart_persistency_size",
];

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::List(l) => l.first().and_then(int),
        _ => None,
    }
}

fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Int(i) => Some(*i != 0),
        _ => None,
    }
}

fn string(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) | Value::Ident(s) | Value::Ip(s) => Some(s.clone()),
        _ => None,
    }
}

fn socket(def: &sipox_cfg_syntax::SocketDef) -> Result<ListenSpec, String> {
    let proto = match def.proto.as_deref() {
        None => Proto::Udp,
        Some(p) => Proto::parse(p).ok_or_else(|| format!("unknown transport '{p}'"))?,
    };
    let addr: IpAddr = if def.host == "*" {
        IpAddr::from([0, 0, 0, 0])
    } else {
        def.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| {
                format!(
                    "'{}' is not an IP address (interface and host names are not supported yet)",
                    def.host
                )
            })?
    };
    Ok(ListenSpec {
        proto,
        addr,
        port: def.port.unwrap_or(5060),
        port_end: def.port_end,
        advertised: def
            .advertised
            .as_ref()
            .map(|(h, p)| (h.clone(), p.unwrap_or(def.port.unwrap_or(5060)))),
        workers: def.workers.and_then(|w| usize::try_from(w).ok()),
        tag: def.tag.clone(),
    })
}

impl CoreConfig {
    /// Reads the core global parameters. Returns the settings and every error found.
    pub fn from_ast(cfg: &Config) -> (Self, Vec<ConfigError>) {
        let mut c = Self::default();
        let mut errs = Vec::new();
        for item in &cfg.items {
            let Item::Param(p) = item else {
                continue;
            };
            let name = p.name.as_str();
            let v = &p.value;
            let mut bad = |m: &str| {
                errs.push(ConfigError {
                    span: p.span,
                    message: format!("{name}: {m}"),
                })
            };
            let secs =
                |v: &Value| int(v).map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)));
            let millis =
                |v: &Value| int(v).map(|s| Duration::from_millis(u64::try_from(s).unwrap_or(0)));
            let count = |v: &Value| int(v).and_then(|i| usize::try_from(i).ok());
            match name {
                "socket" | "listen" => match v {
                    Value::Socket(s) => match socket(s) {
                        Ok(spec) => c.sockets.push(spec),
                        Err(m) => bad(&m),
                    },
                    Value::Ip(ip) | Value::Str(ip) => match ip.parse::<ListenSpec>() {
                        Ok(spec) => c.sockets.push(spec),
                        Err(e) => bad(&e.to_string()),
                    },
                    _ => bad("expects a socket definition"),
                },
                "dst_blacklist" => match v {
                    Value::Raw(r) | Value::Str(r) | Value::Ident(r) => {
                        match crate::blacklist::Lists::parse([r.as_str()]) {
                            Ok(_) => c.dst_blacklist.push(r.clone()),
                            Err(e) => bad(&e.0),
                        }
                    }
                    _ => bad("expects a blacklist definition"),
                },
                "udp_workers" => match count(v) {
                    Some(n) if n > 0 => c.transport.udp_workers = n,
                    _ => bad("expects a positive number"),
                },
                "tcp_workers" => match count(v) {
                    Some(n) if n > 0 => c.transport.tcp_workers = n,
                    _ => bad("expects a positive number"),
                },
                "maxbuffer" => match count(v) {
                    Some(n) => c.transport.maxbuffer = n,
                    None => bad("expects a number"),
                },
                "tcp_max_connections" => match count(v) {
                    Some(n) => c.transport.tcp_max_connections = n,
                    None => bad("expects a number"),
                },
                "tcp_connection_lifetime" => match secs(v) {
                    Some(d) => c.transport.tcp_connection_lifetime = d,
                    None => bad("expects seconds"),
                },
                "tcp_connect_timeout" => match millis(v) {
                    Some(d) => c.transport.tcp_connect_timeout = d,
                    None => bad("expects milliseconds"),
                },
                "tcp_send_timeout" => match millis(v) {
                    Some(d) => c.transport.tcp_send_timeout = d,
                    None => bad("expects milliseconds"),
                },
                "log_level" | "debug" => match int(v) {
                    Some(n) => c.log_level = i32::try_from(n).unwrap_or(3),
                    None => bad("expects a number"),
                },
                "xlog_level" => match int(v) {
                    Some(n) => c.xlog_level = i32::try_from(n).unwrap_or(3),
                    None => bad("expects a number"),
                },
                "stderror_enabled" | "log_stderror" => match boolean(v) {
                    Some(true) => c.log_target = LogTarget::Stderr,
                    Some(false) => {}
                    None => bad("expects yes/no"),
                },
                "syslog_enabled" => match boolean(v) {
                    Some(true) => c.log_target = LogTarget::Syslog,
                    Some(false) => {}
                    None => bad("expects yes/no"),
                },
                "log_stdout" => match boolean(v) {
                    Some(true) => c.log_target = LogTarget::Stdout,
                    Some(false) => {}
                    None => bad("expects yes/no"),
                },
                "log_prefix" => match string(v) {
                    Some(s) => c.log_prefix = s,
                    None => bad("expects a string"),
                },
                "debug_mode" => match boolean(v) {
                    Some(b) => c.debug_mode = b,
                    None => bad("expects yes/no"),
                },
                "server_header" => match string(v) {
                    Some(s) => c.server_header = s,
                    None => bad("expects a string"),
                },
                "user_agent_header" => match string(v) {
                    Some(s) => c.user_agent_header = s,
                    None => bad("expects a string"),
                },
                "server_signature" => match boolean(v) {
                    Some(b) => c.server_signature = b,
                    None => bad("expects yes/no"),
                },
                "sip_warning" => match boolean(v) {
                    Some(b) => c.sip_warning = b,
                    None => bad("expects yes/no"),
                },
                "force_rport" => match boolean(v) {
                    Some(b) => c.force_rport = b,
                    None => bad("expects yes/no"),
                },
                "max_while_loops" => match int(v).and_then(|i| u32::try_from(i).ok()) {
                    Some(n) => c.max_while_loops = n,
                    None => bad("expects a number"),
                },
                "tcp_accept_aliases" => match boolean(v) {
                    Some(b) => c.tcp_accept_aliases = b,
                    None => bad("expects yes/no"),
                },
                "dns_try_ipv6" => match boolean(v) {
                    Some(b) => c.dns_try_ipv6 = b,
                    None => bad("expects yes/no"),
                },
                "dns_try_naptr" => match boolean(v) {
                    Some(b) => c.dns_try_naptr = b,
                    None => bad("expects yes/no"),
                },
                "disable_dns_failover" => match boolean(v) {
                    Some(b) => c.disable_dns_failover = b,
                    None => bad("expects yes/no"),
                },
                "alias" => {
                    let vals: Vec<&Value> = match v {
                        Value::List(l) => l.iter().collect(),
                        other => vec![other],
                    };
                    for a in vals {
                        match a {
                            Value::Socket(s) => c.aliases.push((s.host.clone(), s.port)),
                            other => match string(other) {
                                Some(s) => c.aliases.push((s, None)),
                                None => bad("expects host[:port]"),
                            },
                        }
                    }
                }
                n if ACCEPTED_LATER.contains(&n) => c.not_acted_on.push((p.name.clone(), p.span)),
                _ => bad("unknown core parameter"),
            }
        }
        (c, errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (CoreConfig, Vec<ConfigError>) {
        let parsed = sipox_cfg_syntax::parse_str("t.cfg", text);
        assert!(!parsed.has_errors(), "{}", parsed.render_diagnostics());
        let cfg = parsed.config().unwrap().clone();
        CoreConfig::from_ast(&cfg)
    }

    #[test]
    fn sockets_workers_logging() {
        let (c, e) = read(
            "log_level = 4\nxlog_level = 2\nstderror_enabled = no\nsyslog_enabled = yes\n\
             udp_workers = 8\ntcp_workers = 3\nmaxbuffer = 1048576\n\
             socket = udp:127.0.0.1:5060\nsocket = tcp:[::1]:5070 as sip.example.com:5060 tag edge\n\
             listen = udp:10.0.0.1:5060-5061 use_workers 2\n\
             tcp_connection_lifetime = 300\ntcp_connect_timeout = 250\nforce_rport = yes\n\
             alias = \"sip.example.com\"\nchildren = 4\nroute { exit; }\n",
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(
            (c.log_level, c.xlog_level, c.log_target),
            (4, 2, LogTarget::Syslog)
        );
        assert_eq!(
            (
                c.transport.udp_workers,
                c.transport.tcp_workers,
                c.transport.maxbuffer
            ),
            (8, 3, 1_048_576)
        );
        assert_eq!(c.sockets.len(), 3);
        assert_eq!(c.sockets[1].proto, Proto::Tcp);
        assert!(c.sockets[1].addr.is_ipv6());
        assert_eq!(
            c.sockets[1].advertised,
            Some(("sip.example.com".into(), 5060))
        );
        assert_eq!(c.sockets[1].tag.as_deref(), Some("edge"));
        assert_eq!(c.sockets[2].ports().count(), 2);
        assert_eq!(c.sockets[2].workers, Some(2));
        assert_eq!(
            c.transport.tcp_connection_lifetime,
            Duration::from_secs(300)
        );
        assert_eq!(c.transport.tcp_connect_timeout, Duration::from_millis(250));
        assert!(c.force_rport);
        assert_eq!(c.aliases, vec![("sip.example.com".to_string(), None)]);
        assert_eq!(c.not_acted_on.len(), 1);
    }

    #[test]
    fn errors_are_reported_with_their_place() {
        let (_, e) =
            read("udp_workers = 0\nbogus_param = 1\nsocket = udp:eth0:5060\nroute { exit; }\n");
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].message.contains("udp_workers"));
        assert!(e[1].message.contains("unknown core parameter"));
        assert!(e[2].message.contains("not an IP address"));
    }
}
