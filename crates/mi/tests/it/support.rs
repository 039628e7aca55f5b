//! Shared fixtures: an MI engine with core statistics and a test module command.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use sipox_mi::{Mi, MiCmd, MiConfig, MiCx, MiError, MiParams};
use sipox_stats::{CoreStats, StatFlags, Stats};

pub(crate) const STARTED: u64 = 1_795_475_000;

pub(crate) fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

pub(crate) struct Fixture {
    pub(crate) mi: Arc<Mi>,
    pub(crate) core: CoreStats,
}

fn echo_one(p: &MiParams<'_>, _: &MiCx<'_>) -> Result<Value, MiError> {
    Ok(json!({ "recipe": "a", "a": p.str("a")? }))
}
fn echo_two(p: &MiParams<'_>, _: &MiCx<'_>) -> Result<Value, MiError> {
    Ok(json!({ "recipe": "a,b", "a": p.str("a")?, "b": p.int("b")? }))
}
fn echo_other(p: &MiParams<'_>, _: &MiCx<'_>) -> Result<Value, MiError> {
    Ok(json!({ "recipe": "c", "c": p.opt_str("c")? }))
}
fn fails(_: &MiParams<'_>, _: &MiCx<'_>) -> Result<Value, MiError> {
    Err(MiError::new(500, "reload failed"))
}
fn wrong_name(p: &MiParams<'_>, _: &MiCx<'_>) -> Result<Value, MiError> {
    p.str("not_in_recipe").map(|s| Value::from(s.into_owned()))
}

#[allow(clippy::panic)]
fn panics(_: &MiParams<'_>, _: &MiCx<'_>) -> Result<Value, MiError> {
    panic!("module bug")
}

pub(crate) static TEST_CMDS: &[MiCmd] = &[
    MiCmd {
        name: "t_echo",
        help: "test overloads",
        module: "testmod",
        recipes: &[
            (&["a"], echo_one),
            (&["a", "b"], echo_two),
            (&["c"], echo_other),
        ],
    },
    MiCmd {
        name: "reload_routes",
        help: "",
        module: "core",
        recipes: &[(&[], fails)],
    },
    MiCmd {
        name: "t_wrong",
        help: "h",
        module: "testmod",
        recipes: &[(&["x"], wrong_name)],
    },
    MiCmd {
        name: "t_panic",
        help: "",
        module: "testmod",
        recipes: &[(&[], panics)],
    },
];

pub(crate) fn fixture() -> Fixture {
    let stats = Arc::new(Stats::new());
    let core = CoreStats::register(&stats).unwrap();
    stats.register_fn("shmem", "used_size", || 4096).unwrap();
    stats
        .register("tm", "inuse_transactions", StatFlags::NO_RESET)
        .unwrap();
    core.rcv_requests.add(10);
    let mi = Mi::new(MiConfig {
        stats,
        server: "sipox (0.1.0 (x86_64/linux))".into(),
        revision: Some(("git".into(), "abc".into())),
        argv: vec!["sipox".into(), "-f".into(), "x.cfg".into()],
        started: at(STARTED),
        ..MiConfig::default()
    });
    mi.register_all(TEST_CMDS).unwrap();
    Fixture {
        mi: Arc::new(mi),
        core,
    }
}

/// Run a request text, parse the reply.
pub(crate) fn rpc(mi: &Mi, req: &str) -> Value {
    let r = mi
        .handle_bytes(req.as_bytes(), at(STARTED + 42))
        .expect("a reply");
    assert!(!r.contains('\n'), "one line: {r}");
    serde_json::from_str(&r).unwrap()
}

pub(crate) fn call(mi: &Mi, method: &str, params: Value) -> Value {
    let mut req = json!({ "jsonrpc": "2.0", "method": method, "id": 7 });
    if !params.is_null() {
        req["params"] = params;
    }
    rpc(mi, &req.to_string())
}

pub(crate) fn result(v: &Value) -> &Value {
    assert_eq!(v["jsonrpc"], "2.0");
    v.get("result")
        .unwrap_or_else(|| panic!("no result in {v}"))
}

pub(crate) fn error(v: &Value) -> (i64, String, Option<String>) {
    let e = v.get("error").unwrap_or_else(|| panic!("no error in {v}"));
    (
        e["code"].as_i64().unwrap(),
        e["message"].as_str().unwrap().to_string(),
        e.get("data").and_then(Value::as_str).map(str::to_string),
    )
}
