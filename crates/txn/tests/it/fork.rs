//! Forking through a proxy: §16.7 reply selection with mixed replies.

use std::time::Duration;

use sipox_txn::{ReplyAggregator, TxnConfig, rank_better};

use crate::harness::{Ev, Net, Role, UasPlan, addr};

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

/// UAC (node 0), proxy (node 1) forking to one UAS per plan (nodes 2..).
fn setup(seed: u64, pcfg: TxnConfig, plans: Vec<UasPlan>) -> Net {
    let mut net = Net::new(seed);
    net.add(Role::Uac, TxnConfig::default());
    let targets = (0..plans.len()).map(|i| addr(2 + i)).collect();
    net.add(Role::Proxy { targets }, pcfg);
    for p in plans {
        net.add(Role::Uas(p), TxnConfig::default());
    }
    net
}

fn plan(prov: &[u16], code: Option<u16>, delay: Duration) -> UasPlan {
    UasPlan {
        provisional: prov.to_vec(),
        final_code: code,
        final_delay: delay,
        ..UasPlan::default()
    }
}

fn final_to_uac(net: &Net) -> sipox_sip_msg::SipMsg {
    let w = net
        .wire
        .iter()
        .rfind(|w| {
            w.from == addr(1)
                && w.to == addr(0)
                && w.line.starts_with("SIP/2.0 ")
                && !w.line.starts_with("SIP/2.0 1")
        })
        .unwrap();
    sipox_sip_msg::SipMsg::parse(w.data.clone()).unwrap()
}

#[test]
fn busy_ringing_ok_relays_ringing_and_ok_not_busy() {
    let mut net = setup(
        30,
        TxnConfig::default(),
        vec![
            plan(&[], Some(486), Duration::ZERO),
            plan(&[180], None, Duration::ZERO),
            plan(&[180], Some(200), S),
        ],
    );
    net.uac_request(0, addr(1), "INVITE");
    net.run_for(3 * S);
    let uac = &net.nodes[0];
    assert_eq!(uac.count(&Ev::Reply(486, false)), 0);
    assert_eq!(
        uac.count(&Ev::Reply(180, true)),
        2,
        "each branch's 180 relayed"
    );
    assert_eq!(uac.count(&Ev::Reply(200, true)), 1);
    // The 2xx cancelled the ringing branch; its 487 is absorbed by the proxy.
    assert!(net.nodes[3].has(&Ev::Cancelled));
    assert!(
        !net.nodes[1]
            .log
            .iter()
            .any(|l| matches!(l.ev, Ev::BestFinal(_)))
    );
    // The 200 relayed to the UAC carries only the UAC's Via.
    let ok = final_to_uac(&net);
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.vias().count(), 1);
    net.run_for(40 * S);
    assert!(net.all_empty());
}

#[test]
fn challenges_from_401_and_407_are_merged() {
    let mut a = plan(&[], Some(401), Duration::ZERO);
    a.final_headers = "WWW-Authenticate: Digest realm=\"a.example\", nonce=\"1\"\r\n";
    let mut b = plan(&[], Some(407), 100 * MS);
    b.final_headers = "Proxy-Authenticate: Digest realm=\"b.example\", nonce=\"2\"\r\n";
    let mut net = setup(
        31,
        TxnConfig::default(),
        vec![a, b, plan(&[], Some(404), Duration::ZERO)],
    );
    net.uac_request(0, addr(1), "INVITE");
    net.run_for(S);
    assert!(net.nodes[1].has(&Ev::BestFinal(401)));
    let r = final_to_uac(&net);
    assert_eq!(r.status(), Some(401));
    let text = String::from_utf8_lossy(r.raw()).into_owned();
    assert!(
        text.contains("WWW-Authenticate: Digest realm=\"a.example\""),
        "{text}"
    );
    assert!(
        text.contains("Proxy-Authenticate: Digest realm=\"b.example\""),
        "{text}"
    );
    assert_eq!(r.vias().count(), 1);
    net.run_for(40 * S);
    assert!(net.all_empty());
}

#[test]
fn six_xx_stops_other_branches() {
    let mut net = setup(
        32,
        TxnConfig::default(),
        vec![
            plan(&[180], None, Duration::ZERO),
            plan(&[], Some(603), 100 * MS),
        ],
    );
    net.uac_request(0, addr(1), "INVITE");
    net.run_for(300 * MS);
    assert!(net.nodes[1].has(&Ev::BestFinal(603)));
    assert_eq!(net.nodes[0].count(&Ev::Reply(603, false)), 1);
    assert!(net.nodes[2].has(&Ev::Cancelled), "ringing branch cancelled");
    net.run_for(40 * S);
    assert!(net.all_empty());
}

#[test]
fn six_xx_without_stopping_waits_and_still_wins() {
    let mut cfg = TxnConfig::default();
    cfg.six_xx_cancels(false);
    let mut net = setup(
        33,
        cfg,
        vec![
            plan(&[180], Some(486), 2 * S),
            plan(&[], Some(603), 100 * MS),
        ],
    );
    net.uac_request(0, addr(1), "INVITE");
    net.run_for(S);
    assert!(
        !net.nodes[1]
            .log
            .iter()
            .any(|l| matches!(l.ev, Ev::BestFinal(_)))
    );
    assert!(!net.nodes[2].has(&Ev::Cancelled));
    net.run_for(2 * S);
    assert!(net.nodes[1].has(&Ev::BestFinal(603)));
    assert_eq!(net.nodes[0].count(&Ev::Reply(603, false)), 1);
    net.run_for(40 * S);
    assert!(net.all_empty());
}

#[test]
fn every_branch_times_out_gives_408() {
    let mut uac_cfg = TxnConfig::default();
    uac_cfg.t1(Duration::from_secs(1)); // the UAC waits longer than the proxy (B = 64 s)
    let mut net = Net::new(34);
    net.add(Role::Uac, uac_cfg);
    net.add(
        Role::Proxy {
            targets: vec![addr(98), addr(99)],
        },
        TxnConfig::default(),
    );
    net.uac_request(0, addr(1), "INVITE");
    net.run_for(33 * S);
    assert_eq!(net.nodes[1].count(&Ev::BranchFailed(408)), 2);
    assert!(net.nodes[1].has(&Ev::BestFinal(408)));
    assert_eq!(net.nodes[0].count(&Ev::Reply(408, false)), 1);
    net.run_for(70 * S);
    assert!(net.all_empty());
}

#[test]
fn service_unavailable_becomes_500_unless_disabled() {
    for (map, expect) in [(true, 500), (false, 503)] {
        let mut cfg = TxnConfig::default();
        cfg.map_503_to_500(map);
        let mut net = setup(35, cfg, vec![plan(&[], Some(503), Duration::ZERO)]);
        net.uac_request(0, addr(1), "INVITE");
        net.run_for(S);
        assert!(net.nodes[1].has(&Ev::BestFinal(expect)));
        assert_eq!(net.nodes[0].count(&Ev::Reply(expect, false)), 1);
        net.run_for(40 * S);
        assert!(net.all_empty());
    }
}

#[test]
fn lowest_class_wins_486_over_503() {
    let mut net = setup(
        36,
        TxnConfig::default(),
        vec![
            plan(&[], Some(503), Duration::ZERO),
            plan(&[], Some(486), 100 * MS),
            plan(&[], Some(302), 200 * MS),
        ],
    );
    net.uac_request(0, addr(1), "INVITE");
    net.run_for(S);
    assert!(net.nodes[1].has(&Ev::BestFinal(302)));
    assert_eq!(net.nodes[0].count(&Ev::Reply(302, false)), 1);
}

#[test]
fn transport_error_is_503_for_the_branch() {
    let mut net = setup(
        37,
        TxnConfig::default(),
        vec![plan(&[], Some(486), 100 * MS)],
    );
    // A second target whose sends fail.
    if let Role::Proxy { targets } = &mut net.nodes[1].role {
        targets.push(addr(97));
    }
    net.fail_to = Some(addr(97));
    net.uac_request(0, addr(1), "INVITE");
    net.run_for(S);
    assert!(net.nodes[1].has(&Ev::BranchFailed(503)));
    // 486 (4xx) beats the 503 (5xx).
    assert!(net.nodes[1].has(&Ev::BestFinal(486)));
    // Only the failing branch: 503 → 500.
    let mut net = setup(38, TxnConfig::default(), vec![]);
    if let Role::Proxy { targets } = &mut net.nodes[1].role {
        targets.push(addr(97));
    }
    net.fail_to = Some(addr(97));
    net.uac_request(0, addr(1), "INVITE");
    net.run_for(S);
    assert!(net.nodes[1].has(&Ev::BestFinal(500)));
    assert_eq!(net.nodes[0].count(&Ev::Reply(500, false)), 1);
    net.run_for(40 * S);
    assert!(net.all_empty());
}

#[test]
fn non_invite_forking() {
    let mut net = setup(
        39,
        TxnConfig::default(),
        vec![
            plan(&[], Some(404), Duration::ZERO),
            plan(&[], Some(480), 100 * MS),
        ],
    );
    net.uac_request(0, addr(1), "MESSAGE");
    net.run_for(S);
    assert!(net.nodes[1].has(&Ev::BestFinal(404)));
    assert_eq!(net.nodes[0].count(&Ev::Reply(404, false)), 1);
    net.run_for(40 * S);
    assert!(net.all_empty());
}

#[test]
fn aggregator_rules() {
    assert!(rank_better(603, 486));
    assert!(rank_better(486, 503));
    assert!(rank_better(302, 486));
    assert!(rank_better(401, 404));
    assert!(!rank_better(404, 480), "ties keep the first");
    assert!(rank_better(200, 603));
    let mut a = ReplyAggregator::new(true);
    let b0 = a.add_branch().unwrap();
    let b1 = a.add_branch().unwrap();
    assert_eq!(
        a.on_final(b0, 486, None, None),
        sipox_txn::BranchVerdict::Absorb
    );
    assert_eq!(
        a.on_final(b1, 408, None, None),
        sipox_txn::BranchVerdict::AllDone
    );
    assert_eq!(a.select().unwrap().code, 486);
    // Late 2xx after all failed is still relayed.
    assert_eq!(
        a.on_final(b1, 200, None, None),
        sipox_txn::BranchVerdict::RelayFirst2xx
    );
    assert!(a.add_branch().is_none());
    let _ = MS;
}
