//! JSON-RPC envelope, recipe choice, errors, and the core commands.

use serde_json::{Value, json};
use sipox_mi::{MiCmd, MiError, RegisterError};

use crate::support::{STARTED, at, call, error, fixture, result, rpc};

#[test]
fn envelope_keeps_id_and_member_order() {
    let f = fixture();
    let r =
        f.mi.handle_bytes(br#"{"jsonrpc":"2.0","method":"pwd","id":"abc"}"#, at(0))
            .unwrap();
    assert!(r.starts_with(r#"{"jsonrpc":"2.0","result":{"WD":"#), "{r}");
    assert!(r.ends_with(r#","id":"abc"}"#), "{r}");
    let v = rpc(&f.mi, r#"{"jsonrpc":"2.0","method":"pwd","id":12}"#);
    assert_eq!(v["id"], 12);
    let v = rpc(&f.mi, r#"{"jsonrpc":"2.0","method":"pwd","id":null}"#);
    assert_eq!(v["id"], Value::Null);
}

#[test]
fn jsonrpc_errors() {
    let f = fixture();
    let e = |req: &str| error(&rpc(&f.mi, req));
    assert_eq!(e("{not json").0, -32700);
    assert_eq!(e("{not json").1, "Parse error");
    assert_eq!(e("[1,2]").0, -32600);
    assert_eq!(e(r#"{"jsonrpc":"1.0","method":"pwd","id":1}"#).0, -32600);
    assert_eq!(e(r#"{"jsonrpc":"2.0","id":1}"#).0, -32600);
    assert_eq!(e(r#"{"jsonrpc":"2.0","method":5,"id":1}"#).0, -32600);
    assert_eq!(
        e(r#"{"jsonrpc":"2.0","method":"pwd","params":"x","id":1}"#).0,
        -32600
    );
    let (code, msg, _) = e(r#"{"jsonrpc":"2.0","method":"pwd","id":{}}"#);
    assert_eq!((code, msg.as_str()), (-32600, "Invalid Request"));
    let (code, msg, _) = e(r#"{"jsonrpc":"2.0","method":"nope","id":1}"#);
    assert_eq!((code, msg.as_str()), (-32601, "Method not found"));
    // parse errors and invalid requests are answered with id null
    assert_eq!(rpc(&f.mi, "{").get("id"), Some(&Value::Null));
}

#[test]
fn notifications_get_no_reply_unless_invalid() {
    let f = fixture();
    assert!(
        f.mi.handle_bytes(br#"{"jsonrpc":"2.0","method":"pwd"}"#, at(0))
            .is_none()
    );
    assert!(
        f.mi.handle_bytes(br#"{"jsonrpc":"2.0","method":"nope"}"#, at(0))
            .is_none()
    );
    assert!(f.mi.handle_bytes(br#"{"jsonrpc":"2.0"}"#, at(0)).is_some());
    assert!(f.mi.handle_bytes(b"{", at(0)).is_some());
}

#[test]
fn recipes_by_named_set_and_positional_count() {
    let f = fixture();
    let r = call(&f.mi, "t_echo", json!({"a": "x"}));
    assert_eq!(result(&r)["recipe"], "a");
    let r = call(&f.mi, "t_echo", json!({"b": "5", "a": "x"}));
    assert_eq!(result(&r), &json!({"recipe": "a,b", "a": "x", "b": 5}));
    let r = call(&f.mi, "t_echo", json!({"c": 1}));
    assert_eq!(result(&r), &json!({"recipe": "c", "c": "1"}));
    let r = call(&f.mi, "t_echo", json!(["x", 3]));
    assert_eq!(result(&r), &json!({"recipe": "a,b", "a": "x", "b": 3}));
    // two one-parameter recipes: positional is ambiguous
    let (code, _, data) = error(&call(&f.mi, "t_echo", json!(["x"])));
    assert_eq!(
        (code, data.as_deref()),
        (-32602, Some("Ambiguous call, use named parameters instead"))
    );
    let (code, _, data) = error(&call(&f.mi, "t_echo", json!({"z": 1})));
    assert_eq!(
        (code, data.as_deref()),
        (-32602, Some("Named parameters do not match"))
    );
    let (code, _, data) = error(&call(&f.mi, "t_echo", json!({"a": 1, "b": 2, "c": 3})));
    assert_eq!(
        (code, data.as_deref()),
        (-32602, Some("Too few or too many parameters"))
    );
    // no params where every recipe needs some
    let (code, _, data) = error(&call(&f.mi, "t_echo", json!({})));
    assert_eq!(
        (code, data.as_deref()),
        (-32602, Some("Too few or too many parameters"))
    );
    // params where only a parameterless recipe exists
    let (code, _, _) = error(&call(&f.mi, "pwd", json!(["x"])));
    assert_eq!(code, -32602);
    // empty params count as none
    assert!(result(&call(&f.mi, "pwd", json!([]))).get("WD").is_some());
}

#[test]
fn parameter_types() {
    let f = fixture();
    let (code, msg, data) = error(&call(&f.mi, "t_echo", json!({"a": "x", "b": "five"})));
    assert_eq!((code, msg.as_str()), (-32602, "Invalid params"));
    assert_eq!(data.as_deref(), Some("Bad type for parameter 'b'"));
    let (_, _, data) = error(&call(&f.mi, "t_echo", json!({"a": [1]})));
    assert_eq!(data.as_deref(), Some("Bad type for parameter 'a'"));
    // a handler asking for a name outside its recipe: server error, not a panic
    let (code, msg, data) = error(&call(&f.mi, "t_wrong", json!({"x": 1})));
    assert_eq!(
        (code, msg.as_str(), data.as_deref()),
        (-32000, "Server error", Some("Failed to handle parameter"))
    );
}

#[test]
fn command_errors_carry_their_code() {
    let f = fixture();
    let (code, msg, data) = error(&call(&f.mi, "reload_routes", Value::Null));
    assert_eq!((code, msg.as_str(), data), (500, "reload failed", None));
}

#[test]
fn a_panicking_handler_answers_an_error() {
    let f = fixture();
    let (code, msg, data) = error(&call(&f.mi, "t_panic", Value::Null));
    assert_eq!(
        (code, msg.as_str(), data.as_deref()),
        (-32000, "Server error", Some("Command handler failed"))
    );
    // and the engine keeps working
    assert!(result(&call(&f.mi, "pwd", Value::Null)).get("WD").is_some());
}

#[test]
fn registration() {
    let f = fixture();
    static DUP: MiCmd = MiCmd {
        name: "pwd",
        help: "",
        module: "x",
        recipes: &[],
    };
    assert_eq!(f.mi.register(&DUP), Err(RegisterError::NoRecipes("pwd")));
    fn h(_: &sipox_mi::MiParams<'_>, cx: &sipox_mi::MiCx<'_>) -> Result<Value, MiError> {
        let conns = cx
            .get::<Vec<&'static str>>()
            .ok_or_else(|| MiError::new(500, "no runtime"))?;
        Ok(json!({ "Connections": *conns }))
    }
    static PWD2: MiCmd = MiCmd {
        name: "pwd",
        help: "",
        module: "x",
        recipes: &[(&[], h)],
    };
    assert_eq!(f.mi.register(&PWD2), Err(RegisterError::Duplicate("pwd")));
    static TCP: MiCmd = MiCmd {
        name: "list_tcp_conns",
        help: "list",
        module: "core",
        recipes: &[(&[], h)],
    };
    f.mi.register(&TCP).unwrap();
    let (code, _, _) = error(&call(&f.mi, "list_tcp_conns", Value::Null));
    assert_eq!(code, 500);
    f.mi.provide(std::sync::Arc::new(vec!["tcp:1.2.3.4:5060"]));
    let r = call(&f.mi, "list_tcp_conns", Value::Null);
    assert_eq!(result(&r), &json!({"Connections": ["tcp:1.2.3.4:5060"]}));
    // direct call without the envelope
    assert!(
        f.mi.call("which", &Value::Null, at(0))
            .unwrap()
            .as_array()
            .unwrap()
            .len()
            > 10
    );
    assert_eq!(
        f.mi.call("nope", &Value::Null, at(0)),
        Err(MiError::method_not_found())
    );
}

#[test]
fn uptime_version_pwd_arg() {
    let f = fixture();
    let r = call(&f.mi, "uptime", Value::Null);
    assert_eq!(
        result(&r),
        &json!({
            "Now": "Mon Nov 23 23:04:02 2026",
            "Up since": "Mon Nov 23 23:03:20 2026",
            "Up time": "42 [sec]"
        })
    );
    assert_eq!(STARTED + 42, 1_795_475_042);
    let r = call(&f.mi, "version", Value::Null);
    assert_eq!(
        result(&r),
        &json!({"Server": "sipox (0.1.0 (x86_64/linux))"})
    );
    let r = call(&f.mi, "version", json!({"revision": "1"}));
    assert_eq!(result(&r)["git"], "abc");
    let wd = std::env::current_dir().unwrap();
    assert_eq!(
        result(&call(&f.mi, "pwd", Value::Null))["WD"],
        wd.to_string_lossy().as_ref()
    );
    assert_eq!(
        result(&call(&f.mi, "arg", Value::Null)),
        &json!(["sipox", "-f", "x.cfg"])
    );
}

#[test]
fn which_and_help() {
    let f = fixture();
    let names = result(&call(&f.mi, "which", Value::Null)).clone();
    let names: Vec<&str> = names
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for n in [
        "uptime",
        "version",
        "pwd",
        "arg",
        "which",
        "ps",
        "kill",
        "log_level",
        "xlog_level",
        "help",
        "get_statistics",
        "list_statistics",
        "reset_statistics",
        "reset_all_statistics",
        "t_echo",
        "reload_routes",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    assert!(
        !names.contains(&"list_tcp_conns"),
        "registered by the runtime, not here"
    );
    let r = call(&f.mi, "which", json!({"command": "log_level"}));
    assert_eq!(result(&r), &json!([[], ["level"], ["level", "pid"]]));
    let (code, msg, _) = error(&call(&f.mi, "which", json!(["nope"])));
    assert_eq!((code, msg.as_str()), (404, "unknown MI command"));
    let r = call(&f.mi, "help", Value::Null);
    assert_eq!(
        result(&r),
        "Usage: help mi_cmd - returns information about 'mi_cmd'"
    );
    let r = call(&f.mi, "help", json!({"mi_cmd": "t_echo"}));
    assert_eq!(
        result(&r),
        &json!({"Help": "test overloads", "Exported by": "testmod"})
    );
    let r = call(&f.mi, "help", json!(["reload_routes"]));
    assert_eq!(result(&r)["Help"], "not available for this command");
    assert_eq!(error(&call(&f.mi, "help", json!(["zzz"]))).0, 404);
}

#[test]
fn ps_lists_threads() {
    let f = fixture();
    let r = call(&f.mi, "ps", Value::Null);
    let procs = result(&r)["Processes"].as_array().unwrap().clone();
    assert!(!procs.is_empty());
    for (i, p) in procs.iter().enumerate() {
        assert_eq!(p["ID"], i);
        assert!(p["PID"].as_u64().unwrap() > 0);
        assert!(p["Type"].is_string());
    }
    assert!(
        procs.iter().any(|p| p["PID"] == std::process::id()),
        "main thread listed"
    );
}

#[test]
fn log_levels() {
    let f = fixture();
    let levels = f.mi.config().log_levels.clone();
    let r = call(&f.mi, "log_level", Value::Null);
    let procs = result(&r)["Processes"].as_array().unwrap().clone();
    assert!(procs.iter().all(|p| p["Log level"] == 2));
    let r = call(&f.mi, "log_level", json!({"level": 4}));
    assert_eq!(result(&r), &json!({"New global log level": 4}));
    assert_eq!(levels.global(), 4);
    let pid = std::process::id();
    let r = call(&f.mi, "log_level", json!({"level": "-1", "pid": pid}));
    assert_eq!(result(&r), &json!({"Log level": -1}));
    assert_eq!(levels.for_thread(pid), -1);
    let (code, _, data) = error(&call(&f.mi, "log_level", json!({"level": 1, "pid": 1})));
    assert_eq!((code, data.as_deref()), (-32602, Some("Bad PID")));
    assert_eq!(
        result(&call(&f.mi, "xlog_level", Value::Null)),
        &json!({"xLog Level": 2})
    );
    assert_eq!(
        result(&call(&f.mi, "xlog_level", json!([3]))),
        &json!({"New xLog level": 3})
    );
    assert_eq!(levels.xlog(), 3);
    assert_eq!(error(&call(&f.mi, "xlog_level", json!(["high"]))).0, -32602);
}

#[test]
fn statistics_commands() {
    let f = fixture();
    let r = call(&f.mi, "get_statistics", json!({"statistics": ["all"]}));
    let all = result(&r).as_object().unwrap().clone();
    assert_eq!(all["core:rcv_requests"], 10);
    assert_eq!(all["shmem:used_size"], 4096);
    assert_eq!(all.len(), 14);
    let r = call(&f.mi, "get_statistics", json!([["rcv_requests", "shmem:"]]));
    assert_eq!(
        result(&r),
        &json!({"core:rcv_requests": 10, "shmem:used_size": 4096})
    );
    let r = call(
        &f.mi,
        "get_statistics",
        json!({"statistics": ["core:rcv_requests"]}),
    );
    assert_eq!(result(&r), &json!({"core:rcv_requests": 10}));
    let (code, msg, _) = error(&call(
        &f.mi,
        "get_statistics",
        json!({"statistics": ["nope"]}),
    ));
    assert_eq!((code, msg.as_str()), (404, "Statistics Not Found"));
    let (code, _, data) = error(&call(&f.mi, "get_statistics", json!({"statistics": "all"})));
    assert_eq!(
        (code, data.as_deref()),
        (-32602, Some("Bad type for parameter 'statistics'"))
    );
    let (_, _, data) = error(&call(&f.mi, "get_statistics", json!({"statistics": []})));
    assert_eq!(
        data.as_deref(),
        Some("Empty array in parameter 'statistics'")
    );
    let (_, _, data) = error(&call(&f.mi, "get_statistics", json!({"statistics": [{}]})));
    assert_eq!(
        data.as_deref(),
        Some("Bad type for array item in parameter 'statistics'")
    );

    let r = call(&f.mi, "list_statistics", Value::Null);
    assert_eq!(result(&r)["core:rcv_requests"], "incremental");
    assert_eq!(result(&r)["shmem:used_size"], "non-incremental");
    let r = call(
        &f.mi,
        "list_statistics",
        json!({"statistics": ["tm:", "rcv_replies"]}),
    );
    assert_eq!(
        result(&r),
        &json!({"tm:inuse_transactions": "non-incremental", "rcv_replies": "incremental"})
    );

    let r = call(
        &f.mi,
        "reset_statistics",
        json!({"statistics": ["rcv_requests"]}),
    );
    assert_eq!(result(&r), "OK");
    assert_eq!(f.core.rcv_requests.get(), 0);
    assert_eq!(
        error(&call(&f.mi, "reset_statistics", json!([["x"]]))).0,
        404
    );
    f.core.fwd_requests.add(3);
    f.core.timestamp.set(9);
    assert_eq!(
        result(&call(&f.mi, "reset_all_statistics", Value::Null)),
        "OK"
    );
    assert_eq!((f.core.fwd_requests.get(), f.core.timestamp.get()), (0, 9));
}

#[test]
fn kill_requests_shutdown() {
    let f = fixture();
    let hit = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let h = hit.clone();
    f.mi.on_kill(move || h.store(true, std::sync::atomic::Ordering::SeqCst));
    assert!(!f.mi.is_shutting_down());
    assert_eq!(result(&call(&f.mi, "kill", Value::Null)), "OK");
    assert!(f.mi.is_shutting_down());
    assert!(hit.load(std::sync::atomic::Ordering::SeqCst));
}
