//! Core MI commands that need no SIP runtime (OpenSIPS `mi/mi_core.c`, `statistics.c`).

use serde_json::{Map, Value, json};

use crate::{MiCmd, MiCx, MiError, MiParams, ctime};

type R = Result<Value, MiError>;

/// The core command table, registered by [`crate::Mi::new`]. `list_tcp_conns` and
/// `reload_routes` are not here: the runtime registers them.
pub static CORE_CMDS: &[MiCmd] = &[
    MiCmd {
        name: "uptime",
        help: "prints various time information about the server - when it started to run, for how long it runs",
        module: "core",
        recipes: &[(&[], uptime)],
    },
    MiCmd {
        name: "version",
        help: "prints the version string of the running server",
        module: "core",
        recipes: &[(&[], version), (&["revision"], version_rev)],
    },
    MiCmd {
        name: "pwd",
        help: "prints the working directory of the server",
        module: "core",
        recipes: &[(&[], pwd)],
    },
    MiCmd {
        name: "arg",
        help: "returns the full list of arguments used at startup",
        module: "core",
        recipes: &[(&[], arg)],
    },
    MiCmd {
        name: "which",
        help: "lists all available MI commands",
        module: "core",
        recipes: &[(&[], which), (&["command"], which_cmd)],
    },
    MiCmd {
        name: "ps",
        help: "lists all processes (threads) used by the server",
        module: "core",
        recipes: &[(&[], ps)],
    },
    MiCmd {
        name: "kill",
        help: "terminates the server",
        module: "core",
        recipes: &[(&[], kill)],
    },
    MiCmd {
        name: "log_level",
        help: "gets/sets the per process or global log level",
        module: "core",
        recipes: &[
            (&[], log_level),
            (&["level"], log_level_set),
            (&["level", "pid"], log_level_pid),
        ],
    },
    MiCmd {
        name: "xlog_level",
        help: "gets/sets the xlog level",
        module: "core",
        recipes: &[(&[], xlog_level), (&["level"], xlog_level_set)],
    },
    MiCmd {
        name: "help",
        help: "prints information about MI commands usage",
        module: "core",
        recipes: &[(&[], help), (&["mi_cmd"], help_cmd)],
    },
    MiCmd {
        name: "get_statistics",
        help: "prints the statistics (all, group or one) real time values.",
        module: "core",
        recipes: &[(&["statistics"], get_statistics)],
    },
    MiCmd {
        name: "list_statistics",
        help: "lists all the registered statistics and their types",
        module: "core",
        recipes: &[
            (&[], list_statistics),
            (&["statistics"], list_statistics_some),
        ],
    },
    MiCmd {
        name: "reset_statistics",
        help: "resets the value of a statistic variable",
        module: "core",
        recipes: &[(&["statistics"], reset_statistics)],
    },
    MiCmd {
        name: "reset_all_statistics",
        help: "resets the value of all resetable variables",
        module: "core",
        recipes: &[(&[], reset_all_statistics)],
    },
];

fn ok() -> R {
    Ok(Value::from("OK"))
}

fn uptime(_: &MiParams<'_>, cx: &MiCx<'_>) -> R {
    let started = cx.mi.config().started;
    let up = cx.now.duration_since(started).map_or(0, |d| d.as_secs());
    Ok(json!({
        "Now": ctime(cx.now),
        "Up since": ctime(started),
        "Up time": format!("{up} [sec]"),
    }))
}

fn version(_: &MiParams<'_>, cx: &MiCx<'_>) -> R {
    Ok(json!({ "Server": cx.mi.config().server }))
}

fn version_rev(_: &MiParams<'_>, cx: &MiCx<'_>) -> R {
    let mut m = Map::new();
    m.insert("Server".into(), cx.mi.config().server.clone().into());
    if let Some((k, v)) = &cx.mi.config().revision {
        m.insert(k.clone(), v.clone().into());
    }
    Ok(Value::Object(m))
}

fn pwd(_: &MiParams<'_>, _: &MiCx<'_>) -> R {
    let wd = std::env::current_dir().map_err(|e| MiError::server_error(e.to_string()))?;
    Ok(json!({ "WD": wd.to_string_lossy() }))
}

fn arg(_: &MiParams<'_>, cx: &MiCx<'_>) -> R {
    Ok(Value::from(cx.mi.config().argv.clone()))
}

fn which(_: &MiParams<'_>, cx: &MiCx<'_>) -> R {
    Ok(Value::from(cx.mi.names()))
}

fn which_cmd(p: &MiParams<'_>, cx: &MiCx<'_>) -> R {
    let name = p.str("command")?;
    let cmd = cx
        .mi
        .lookup(&name)
        .ok_or_else(|| MiError::new(404, "unknown MI command"))?;
    Ok(Value::Array(
        cmd.recipes
            .iter()
            .map(|(names, _)| Value::from(names.to_vec()))
            .collect(),
    ))
}

/// The threads of this process: (tid, name), ordered by tid.
pub(crate) fn threads() -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = std::fs::read_dir("/proc/self/task")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let tid: u32 = e.file_name().to_str()?.parse().ok()?;
                    let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
                    Some((tid, comm.trim_end().to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    if out.is_empty() {
        out.push((std::process::id(), "main".to_string()));
    }
    out.sort_by_key(|(t, _)| *t);
    out
}

fn ps(_: &MiParams<'_>, _: &MiCx<'_>) -> R {
    let procs: Vec<Value> = threads()
        .into_iter()
        .enumerate()
        .map(|(i, (tid, name))| json!({ "ID": i, "PID": tid, "Type": name }))
        .collect();
    Ok(json!({ "Processes": procs }))
}

fn kill(_: &MiParams<'_>, cx: &MiCx<'_>) -> R {
    cx.mi.request_shutdown();
    ok()
}

fn level_arg(p: &MiParams<'_>, name: &'static str) -> Result<i32, MiError> {
    i32::try_from(p.int(name)?)
        .map_err(|_| MiError::invalid_params(format!("Bad type for parameter '{name}'")))
}

fn log_level(_: &MiParams<'_>, cx: &MiCx<'_>) -> R {
    let levels = &cx.mi.config().log_levels;
    let procs: Vec<Value> = threads()
        .into_iter()
        .map(|(tid, name)| json!({ "PID": tid, "Log level": levels.for_thread(tid), "Type": name }))
        .collect();
    Ok(json!({ "Processes": procs }))
}

fn log_level_set(p: &MiParams<'_>, cx: &MiCx<'_>) -> R {
    let level = level_arg(p, "level")?;
    cx.mi.config().log_levels.set_global(level);
    Ok(json!({ "New global log level": level }))
}

fn log_level_pid(p: &MiParams<'_>, cx: &MiCx<'_>) -> R {
    let level = level_arg(p, "level")?;
    let pid = p.int("pid")?;
    let tid = u32::try_from(pid)
        .ok()
        .filter(|t| threads().iter().any(|(x, _)| x == t))
        .ok_or_else(|| MiError::invalid_params("Bad PID"))?;
    cx.mi.config().log_levels.set_thread(tid, level);
    Ok(json!({ "Log level": level }))
}

fn xlog_level(_: &MiParams<'_>, cx: &MiCx<'_>) -> R {
    Ok(json!({ "xLog Level": cx.mi.config().log_levels.xlog() }))
}

fn xlog_level_set(p: &MiParams<'_>, cx: &MiCx<'_>) -> R {
    let level = level_arg(p, "level")?;
    cx.mi.config().log_levels.set_xlog(level);
    Ok(json!({ "New xLog level": level }))
}

fn help(_: &MiParams<'_>, _: &MiCx<'_>) -> R {
    Ok(Value::from(
        "Usage: help mi_cmd - returns information about 'mi_cmd'",
    ))
}

fn help_cmd(p: &MiParams<'_>, cx: &MiCx<'_>) -> R {
    let name = p.str("mi_cmd")?;
    let cmd = cx
        .mi
        .lookup(&name)
        .ok_or_else(|| MiError::new(404, "unknown MI command"))?;
    let help = if cmd.help.is_empty() {
        "not available for this command"
    } else {
        cmd.help
    };
    Ok(json!({ "Help": help, "Exported by": cmd.module }))
}

fn not_found(_: sipox_stats::NotFound) -> MiError {
    MiError::new(404, "Statistics Not Found")
}

fn get_statistics(p: &MiParams<'_>, cx: &MiCx<'_>) -> R {
    let names = p.str_array("statistics")?;
    let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
    let vals = cx.stats().get(&names).map_err(not_found)?;
    Ok(Value::Object(
        vals.into_iter().map(|(k, v)| (k, Value::from(v))).collect(),
    ))
}

fn list_statistics(_: &MiParams<'_>, cx: &MiCx<'_>) -> R {
    let l = cx.stats().list_all();
    Ok(Value::Object(
        l.into_iter()
            .map(|(k, v)| (k, Value::from(v.as_str())))
            .collect(),
    ))
}

fn list_statistics_some(p: &MiParams<'_>, cx: &MiCx<'_>) -> R {
    let names = p.str_array("statistics")?;
    let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
    let l = cx.stats().list(&names).map_err(not_found)?;
    Ok(Value::Object(
        l.into_iter()
            .map(|(k, v)| (k, Value::from(v.as_str())))
            .collect(),
    ))
}

fn reset_statistics(p: &MiParams<'_>, cx: &MiCx<'_>) -> R {
    let names = p.str_array("statistics")?;
    let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
    cx.stats().reset(&names).map_err(not_found)?;
    ok()
}

fn reset_all_statistics(_: &MiParams<'_>, cx: &MiCx<'_>) -> R {
    cx.stats().reset_all();
    ok()
}
