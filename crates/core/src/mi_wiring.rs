//! The Management Interface inside the server: which transports the configuration asks for
//! (`httpd` + `mi_http`, `mi_fifo`, `prometheus`, with their modparams and OpenSIPS's
//! defaults), starting them, and the commands only the runtime can answer
//! (`list_tcp_conns`, `reload_routes`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use sipox_cfg_syntax::{Config, Item, Value as CfgValue};
use sipox_mi::fifo::{FifoConfig, FifoServer};
use sipox_mi::http::{self, HttpConfig};
use sipox_mi::{Mi, MiCmd, MiCx, MiError, MiParams};
use sipox_stats::{GroupMode, PromConfig};

use crate::runtime::Runtime;

/// The MI transports a configuration asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct MiSetup {
    pub(crate) http: Option<HttpConfig>,
    pub(crate) fifo: Option<FifoConfig>,
}

fn module_matches(pattern: &str, module: &str) -> bool {
    pattern.split('|').any(|p| p.trim() == module)
}

fn text(v: &CfgValue) -> Option<String> {
    match v {
        CfgValue::Str(s) | CfgValue::Ident(s) | CfgValue::Ip(s) => Some(s.clone()),
        CfgValue::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn int(v: &CfgValue) -> Option<i64> {
    match v {
        CfgValue::Int(i) => Some(*i),
        CfgValue::Str(s) => s.trim().parse().ok(),
        CfgValue::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// `fifo_mode`: scripts write it in octal (`0660`); the lexer hands over the digits, which
/// are read as octal when they are all octal digits.
fn mode(v: &CfgValue) -> Option<u32> {
    let digits = match v {
        CfgValue::Int(i) => i.to_string(),
        CfgValue::Str(s) => s.trim().to_owned(),
        _ => return None,
    };
    let d = digits.trim_start_matches("0o");
    if d.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        u32::from_str_radix(d, 8).ok()
    } else {
        d.parse().ok()
    }
}

impl MiSetup {
    /// Reads the transports from the loaded modules and their modparams.
    pub(crate) fn from_ast(ast: &Config, modules: &[String]) -> Result<Self, String> {
        let loaded = |m: &str| modules.iter().any(|x| x == m);
        let mut httpd = HttpConfig::default();
        let mut prom = PromConfig::default();
        let mut fifo = FifoConfig::default();
        for item in &ast.items {
            let Item::ModParam(mp) = item else { continue };
            let bad = || format!("modparam(\"{}\", \"{}\"): bad value", mp.module, mp.param);
            let v = &mp.value;
            if module_matches(&mp.module, "httpd") {
                match mp.param.as_str() {
                    "ip" => {
                        httpd.ip = text(v)
                            .and_then(|t| t.trim_matches(['[', ']']).parse::<IpAddr>().ok())
                            .ok_or_else(bad)?;
                    }
                    "port" => {
                        httpd.port = int(v).and_then(|p| u16::try_from(p).ok()).ok_or_else(bad)?;
                    }
                    _ => {}
                }
            }
            if module_matches(&mp.module, "mi_http") && mp.param == "root" {
                httpd.root = text(v).ok_or_else(bad)?.trim_matches('/').to_owned();
            }
            if module_matches(&mp.module, "prometheus") {
                match mp.param.as_str() {
                    "root" => prom.root = text(v).ok_or_else(bad)?.trim_matches('/').to_owned(),
                    "prefix" => prom.prefix = text(v).ok_or_else(bad)?,
                    "group_prefix" => prom.group_prefix = text(v).ok_or_else(bad)?,
                    "delimiter" => prom.delimiter = text(v).ok_or_else(bad)?,
                    "group_label" => prom.group_label = text(v).ok_or_else(bad)?,
                    "group_mode" => {
                        prom.group_mode = int(v).and_then(GroupMode::from_int).ok_or_else(bad)?;
                    }
                    "statistics" => prom.statistics.push(text(v).ok_or_else(bad)?),
                    _ => {}
                }
            }
            if module_matches(&mp.module, "mi_fifo") {
                match mp.param.as_str() {
                    "fifo_name" => fifo.fifo_name = PathBuf::from(text(v).ok_or_else(bad)?),
                    "fifo_mode" => fifo.fifo_mode = mode(v).ok_or_else(bad)?,
                    "reply_dir" => fifo.reply_dir = PathBuf::from(text(v).ok_or_else(bad)?),
                    _ => {}
                }
            }
        }
        if loaded("prometheus") {
            httpd.prometheus = Some(prom);
        }
        let http_wanted = loaded("httpd") && (loaded("mi_http") || loaded("prometheus"));
        if (loaded("mi_http") || loaded("prometheus")) && !loaded("httpd") {
            return Err(
                "mi_http and prometheus need the httpd module (loadmodule \"httpd.so\")".into(),
            );
        }
        Ok(Self {
            http: http_wanted.then_some(httpd),
            fifo: loaded("mi_fifo").then_some(fifo),
        })
    }
}

/// The running MI transports.
#[derive(Debug)]
pub(crate) struct MiRunning {
    pub(crate) tokio: Option<tokio::runtime::Runtime>,
    pub(crate) http_addr: Option<SocketAddr>,
    pub(crate) fifo: Option<FifoServer>,
}

impl MiRunning {
    /// Starts what `setup` names.
    pub(crate) fn start(mi: &Arc<Mi>, setup: &MiSetup) -> Result<Self, String> {
        let mut run = Self {
            tokio: None,
            http_addr: None,
            fifo: None,
        };
        if let Some(cfg) = &setup.http {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("httpd")
                .enable_all()
                .build()
                .map_err(|e| format!("httpd: {e}"))?;
            let listener = rt
                .block_on(http::bind(cfg))
                .map_err(|e| format!("httpd: cannot bind {}:{}: {e}", cfg.ip, cfg.port))?;
            run.http_addr = listener.local_addr().ok();
            rt.spawn(http::serve(listener, Arc::clone(mi), cfg.clone()));
            run.tokio = Some(rt);
        }
        if let Some(cfg) = &setup.fifo {
            run.fifo =
                Some(FifoServer::start(Arc::clone(mi), cfg.clone()).map_err(|e| {
                    format!("mi_fifo: cannot create {}: {e}", cfg.fifo_name.display())
                })?);
        }
        Ok(run)
    }

    /// Stops the transports (the FIFO is removed).
    pub(crate) fn stop(&mut self) {
        if let Some(f) = self.fifo.take() {
            f.stop();
        }
        if let Some(rt) = self.tokio.take() {
            rt.shutdown_background();
        }
    }
}

/// Commands only the runtime can answer.
pub(crate) static RUNTIME_CMDS: &[MiCmd] = &[
    MiCmd {
        name: "list_tcp_conns",
        help: "lists the open TCP connections",
        module: "core",
        recipes: &[(&[], list_tcp_conns)],
    },
    MiCmd {
        name: "reload_routes",
        help: "compiles the routes of the configuration file again and swaps them in",
        module: "core",
        recipes: &[(&[], reload_routes)],
    },
    MiCmd {
        name: "t_reply",
        help: "sends a reply on a pending transaction (trans_id is hash_index:label, as $T_id)",
        module: "tm",
        recipes: &[
            (
                &["code", "reason", "trans_id", "to_tag"],
                crate::tm::mi::t_reply,
            ),
            (
                &["code", "reason", "trans_id", "to_tag", "new_headers"],
                crate::tm::mi::t_reply,
            ),
            (
                &["code", "reason", "trans_id", "to_tag", "body"],
                crate::tm::mi::t_reply,
            ),
            (
                &[
                    "code",
                    "reason",
                    "trans_id",
                    "to_tag",
                    "new_headers",
                    "body",
                ],
                crate::tm::mi::t_reply,
            ),
        ],
    },
    MiCmd {
        name: "t_uac_dlg",
        help: "sends a request statefully and returns its final reply",
        module: "tm",
        recipes: &[
            (&["method", "ruri", "headers"], crate::tm::mi::t_uac_dlg),
            (
                &["method", "ruri", "headers", "next_hop"],
                crate::tm::mi::t_uac_dlg,
            ),
            (
                &["method", "ruri", "headers", "socket"],
                crate::tm::mi::t_uac_dlg,
            ),
            (
                &["method", "ruri", "headers", "body"],
                crate::tm::mi::t_uac_dlg,
            ),
            (
                &["method", "ruri", "headers", "next_hop", "socket"],
                crate::tm::mi::t_uac_dlg,
            ),
            (
                &["method", "ruri", "headers", "next_hop", "body"],
                crate::tm::mi::t_uac_dlg,
            ),
            (
                &["method", "ruri", "headers", "socket", "body"],
                crate::tm::mi::t_uac_dlg,
            ),
            (
                &["method", "ruri", "headers", "next_hop", "socket", "body"],
                crate::tm::mi::t_uac_dlg,
            ),
        ],
    },
];

fn runtime(cx: &MiCx<'_>) -> Result<Arc<Runtime>, MiError> {
    cx.get::<Runtime>()
        .ok_or_else(|| MiError::server_error("the SIP runtime is not running"))
}

fn list_tcp_conns(_: &MiParams<'_>, cx: &MiCx<'_>) -> Result<Value, MiError> {
    let rt = runtime(cx)?;
    let conns: Vec<Value> = rt
        .transports()
        .map(|t| t.tcp_connections())
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let mut v = json!({
                "ID": c.id.0,
                "Type": "tcp",
                "State": 0,
                "Remote": c.remote.to_string(),
                "Local": c.local.map_or_else(String::new, |l| l.to_string()),
                "Outgoing": c.outgoing,
            });
            if !c.aliases.is_empty()
                && let Value::Object(m) = &mut v
            {
                m.insert(
                    "Aliases".into(),
                    c.aliases.iter().map(ToString::to_string).collect(),
                );
            }
            v
        })
        .collect();
    Ok(json!({ "Connections": conns }))
}

fn reload_routes(_: &MiParams<'_>, cx: &MiCx<'_>) -> Result<Value, MiError> {
    let rt = runtime(cx)?;
    match rt.reload() {
        Ok(()) => Ok(Value::from("OK")),
        Err(why) => Err(MiError::with_data(500, "Failed to reload routes", why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(cfg: &str) -> Result<MiSetup, String> {
        let p = sipox_cfg_syntax::parse_str("t.cfg", cfg);
        let modules: Vec<String> = p
            .ast
            .items
            .iter()
            .filter_map(|i| match i {
                Item::LoadModule(m) => Some(m.name.clone()),
                _ => None,
            })
            .collect();
        MiSetup::from_ast(&p.ast, &modules)
    }

    #[test]
    fn defaults_and_modparams() {
        let s = setup("loadmodule \"httpd.so\"\nloadmodule \"mi_http.so\"\n").unwrap();
        let h = s.http.unwrap();
        assert_eq!((h.port, h.root.as_str()), (8888, "mi"));
        assert!(h.prometheus.is_none() && s.fifo.is_none());
        let s = setup(
            "loadmodule \"httpd.so\"\nloadmodule \"prometheus.so\"\nloadmodule \"mi_fifo.so\"\n\
             modparam(\"httpd\", \"ip\", \"127.0.0.1\")\nmodparam(\"httpd\", \"port\", 9000)\n\
             modparam(\"prometheus\", \"statistics\", \"core:\")\n\
             modparam(\"prometheus\", \"group_mode\", 1)\n\
             modparam(\"mi_fifo\", \"fifo_name\", \"/tmp/x_fifo\")\n\
             modparam(\"mi_fifo\", \"fifo_mode\", 0600)\n",
        )
        .unwrap();
        let h = s.http.unwrap();
        assert_eq!(h.port, 9000);
        assert_eq!(h.ip.to_string(), "127.0.0.1");
        let p = h.prometheus.unwrap();
        assert_eq!(p.statistics, vec!["core:".to_owned()]);
        assert_eq!(p.group_mode, GroupMode::Name);
        let f = s.fifo.unwrap();
        assert_eq!(f.fifo_name, PathBuf::from("/tmp/x_fifo"));
        assert_eq!(f.fifo_mode, 0o600);
        assert!(setup("loadmodule \"mi_http.so\"\n").is_err());
    }
}
