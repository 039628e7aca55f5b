//! Seeded randomized soak: loss, duplication, reordering and delay over thousands of
//! transactions through a forking proxy. Every transaction must end, and every table must be
//! empty (no live timers either) after the final timers.

use std::collections::HashMap;
use std::time::Duration;

use sipox_txn::TxnConfig;

use crate::harness::{Ev, Net, Role, UasPlan, addr};

fn soak(seed: u64, calls: usize, loss: u32, dup: u32) {
    let mut net = Net::new(seed);
    net.record_wire = false;
    net.loss = loss;
    net.dup = dup;
    net.jitter = Duration::from_millis(40);
    net.add(Role::Uac, TxnConfig::default());
    net.add(
        Role::Proxy {
            targets: vec![addr(2), addr(3)],
        },
        TxnConfig::default(),
    );
    net.add(
        Role::Uas(UasPlan {
            provisional: vec![180],
            final_code: Some(486),
            final_delay: Duration::from_millis(30),
            ..UasPlan::default()
        }),
        TxnConfig::default(),
    );
    net.add(
        Role::Uas(UasPlan {
            provisional: vec![183],
            final_code: Some(200),
            final_delay: Duration::from_millis(80),
            resend_2xx: 6,
            ..UasPlan::default()
        }),
        TxnConfig::default(),
    );
    let mut started = Vec::new();
    for i in 0..calls {
        let method = match i % 4 {
            0 | 1 => "INVITE",
            2 => "OPTIONS",
            _ => "MESSAGE",
        };
        started.push(net.uac_request(0, addr(1), method));
        net.run_for(Duration::from_millis(3));
        // CANCEL races: some INVITEs are cancelled at varying ages (before any provisional,
        // while ringing, crossing the 200).
        if i % 8 == 0 && i >= 40 {
            let victim = started[i - (i / 8) % 40];
            net.try_cancel(0, victim);
        }
    }
    net.run_until_idle(Duration::from_secs(600));
    // Every UAC transaction ended with a final response or a failure, and was freed once.
    let mut outcome: HashMap<_, (usize, usize)> = HashMap::new();
    for l in &net.nodes[0].log {
        let Some(ck) = l.client else { continue };
        let e = outcome.entry(ck).or_default();
        match l.ev {
            Ev::Reply(c, _) if c >= 200 => e.0 += 1,
            Ev::BranchFailed(_) => e.0 += 1,
            Ev::Terminated(false) => e.1 += 1,
            _ => {}
        }
    }
    for ck in &started {
        let (finals, terms) = outcome.get(ck).copied().unwrap_or_default();
        if finals == 0 {
            let evs: Vec<_> = net.nodes[0]
                .log
                .iter()
                .filter(|l| l.client == Some(*ck))
                .collect();
            panic!("{ck:?} got no final: {evs:?}");
        }
        assert_eq!(terms, 1, "{ck:?} terminated {terms} times");
    }
    let cancelled = net.nodes[1].count(&Ev::Cancelled);
    println!("seed {seed:#x}: {calls} transactions, {cancelled} cancelled at the proxy");
    assert!(cancelled > 0, "the CANCEL races ran");
    for (i, n) in net.nodes.iter().enumerate() {
        let st = n.table.stats();
        assert!(n.table.is_empty(), "node {i} leaked: {st:?}");
        assert_eq!(st.timers_live, 0, "node {i}: {st:?}");
        assert_eq!(
            n.table.poll_timeout(),
            None,
            "node {i}: stale timers left: {st:?}"
        );
    }
}

#[test]
fn soak_clean_network() {
    soak(0x1234, 400, 0, 0);
}

#[test]
fn soak_lossy_network() {
    soak(0xdead_beef, 2000, 100, 50);
}

#[test]
fn soak_very_lossy_network() {
    soak(42, 1000, 300, 100);
}
