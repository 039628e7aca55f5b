#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sipox_stats::{
    CoreStats, GroupMode, NotFound, PromConfig, StatFlags, StatKind, Stats, StatsError,
};

fn sample() -> (Stats, CoreStats) {
    let s = Stats::new();
    let core = CoreStats::register(&s).unwrap();
    let used = Arc::new(AtomicU64::new(4096));
    let u = Arc::clone(&used);
    s.register_fn("shmem", "used_size", move || u.load(Ordering::Relaxed))
        .unwrap();
    s.register_fn("shmem", "total_size", || 1 << 20).unwrap();
    s.register("tm", "inuse_transactions", StatFlags::NO_RESET)
        .unwrap();
    (s, core)
}

#[test]
fn counters_bump_without_lookup() {
    let (s, core) = sample();
    core.rcv_requests.inc();
    core.rcv_requests.add(9);
    let h = core.rcv_requests.clone();
    h.inc();
    assert_eq!(h.get(), core.rcv_requests.get());
    assert_eq!(s.value("core:rcv_requests"), Some(11));
    assert_eq!(s.value("rcv_requests"), Some(11));
    assert_eq!(
        s.value("RCV_REQUESTS"),
        Some(11),
        "names are case-insensitive"
    );
    assert_eq!(s.value("nope"), None);
}

#[test]
fn get_all_group_single_and_qualified() {
    let (s, core) = sample();
    core.rcv_requests.add(10);
    let all = s.get(&["all"]).unwrap();
    assert_eq!(all.len(), 12 + 2 + 1);
    assert_eq!(all[0], ("core:rcv_requests".to_string(), 10));
    assert!(all.contains(&("shmem:used_size".to_string(), 4096)));

    let g = s.get(&["shmem:"]).unwrap();
    assert_eq!(
        g,
        vec![
            ("shmem:used_size".to_string(), 4096),
            ("shmem:total_size".to_string(), 1 << 20)
        ]
    );

    assert_eq!(
        s.get(&["rcv_requests"]).unwrap(),
        vec![("core:rcv_requests".into(), 10)]
    );
    assert_eq!(
        s.get(&["core:rcv_requests"]).unwrap(),
        vec![("core:rcv_requests".into(), 10)]
    );
    assert_eq!(s.get(&["tm:rcv_requests"]), Err(NotFound));
    // unknown names are skipped as long as one matched
    assert_eq!(s.get(&["bogus", "inuse_transactions"]).unwrap().len(), 1);
    assert_eq!(s.get(&["bogus", "nogroup:"]), Err(NotFound));
    assert_eq!(s.get(&[]), Err(NotFound));
}

#[test]
fn list_kinds_and_keys() {
    let (s, _) = sample();
    let all = s.list_all();
    assert!(all.contains(&("core:rcv_requests".into(), StatKind::Incremental)));
    assert!(all.contains(&("core:timestamp".into(), StatKind::NonIncremental)));
    assert!(all.contains(&("shmem:used_size".into(), StatKind::NonIncremental)));
    // a single stat is listed under its bare name; a group with qualified names
    assert_eq!(
        s.list(&["rcv_replies"]).unwrap(),
        vec![("rcv_replies".into(), StatKind::Incremental)]
    );
    assert_eq!(s.list(&["tm:"]).unwrap()[0].0, "tm:inuse_transactions");
    assert_eq!(s.list(&["x"]), Err(NotFound));
    assert_eq!(StatKind::NonIncremental.as_str(), "non-incremental");
}

#[test]
fn reset_respects_no_reset() {
    let (s, core) = sample();
    core.rcv_requests.add(5);
    core.timestamp.set(77);
    s.reset(&["rcv_requests", "timestamp"]).unwrap();
    assert_eq!(core.rcv_requests.get(), 0);
    assert_eq!(core.timestamp.get(), 77);
    assert_eq!(s.reset(&["nothing"]), Err(NotFound));
    core.fwd_replies.add(3);
    s.reset_all();
    assert_eq!(core.fwd_replies.get(), 0);
    assert_eq!(core.timestamp.get(), 77);
    assert_eq!(s.value("shmem:used_size"), Some(4096));
}

#[test]
fn gauges_go_up_and_down() {
    let s = Stats::new();
    let g = s
        .register("dialog", "active_dialogs", StatFlags::NO_RESET)
        .unwrap();
    g.inc();
    g.inc();
    g.dec();
    g.sub(1);
    assert_eq!(g.get(), 0);
}

#[test]
fn registration_errors() {
    let (s, _) = sample();
    assert!(matches!(
        s.register("core", "rcv_requests", StatFlags::NONE),
        Err(StatsError::Duplicate { .. })
    ));
    assert!(matches!(
        s.register("", "x", StatFlags::NONE),
        Err(StatsError::InvalidName(_))
    ));
    assert!(matches!(
        s.register("a", "b:c", StatFlags::NONE),
        Err(StatsError::InvalidName(_))
    ));
    assert!(CoreStats::register(&s).is_err());
    assert_eq!(s.groups(), vec!["core", "shmem", "tm"]);
}

#[test]
fn counters_are_shared_across_threads() {
    let s = Arc::new(Stats::new());
    let c = s.register("core", "rcv_requests", StatFlags::NONE).unwrap();
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    c.inc();
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(s.value("rcv_requests"), Some(4000));
}

#[test]
fn prometheus_default_naming() {
    let (s, core) = sample();
    core.rcv_requests.add(3);
    let cfg = PromConfig {
        statistics: vec!["rcv_requests shmem:".into()],
        ..PromConfig::default()
    };
    let text = s.prometheus(&cfg);
    assert_eq!(
        text,
        "# TYPE opensips_used_size gauge\nopensips_used_size 4096\n\
         # TYPE opensips_total_size gauge\nopensips_total_size 1048576\n\
         # TYPE opensips_rcv_requests counter\nopensips_rcv_requests 3\n\n"
    );
    // nothing configured: nothing exported
    assert_eq!(s.prometheus(&PromConfig::default()), "\n");
}

#[test]
fn prometheus_group_modes() {
    let (s, _) = sample();
    let mut cfg = PromConfig {
        statistics: vec!["tm:".into()],
        group_mode: GroupMode::Label,
        group_prefix: "sx_".into(),
        ..PromConfig::default()
    };
    assert_eq!(
        s.prometheus(&cfg),
        "# TYPE opensips_inuse_transactions gauge\nopensips_inuse_transactions{group=\"sx_tm\"} 0\n\n"
    );
    cfg.group_mode = GroupMode::Name;
    cfg.group_prefix.clear();
    cfg.delimiter = "-".into();
    cfg.prefix = "p1".into();
    assert_eq!(
        s.prometheus(&cfg),
        "# TYPE p1-tm-inuse_transactions gauge\np1-tm-inuse_transactions 0\n\n"
    );
    assert_eq!(GroupMode::from_int(2), Some(GroupMode::Label));
    assert_eq!(GroupMode::from_int(3), None);
}

#[test]
fn prometheus_all_and_sanitizing() {
    let s = Stats::new();
    s.register("dispatcher", "1-gw.load", StatFlags::NONE)
        .unwrap();
    let cfg = PromConfig {
        statistics: vec!["all".into()],
        prefix: String::new(),
        delimiter: String::new(),
        ..PromConfig::default()
    };
    assert_eq!(
        s.prometheus(&cfg),
        "# TYPE _1_gw_load counter\n_1_gw_load 0\n\n"
    );
}
