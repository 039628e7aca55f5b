//! Per-transaction branch timers (`set_branch_timers`) and `restart_timer_c`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use sipox_sip_msg::SipMsg;
use sipox_txn::{BranchTimers, NewTxn, Peer, ServerKey, TxnConfig, TxnEvent, TxnTable};

use crate::harness::{addr, base_instant};

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

fn invite(branch: &str) -> Bytes {
    Bytes::from(format!(
        "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:bob@x>\r\nCall-ID: bt-{branch}\r\n\
         CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    ))
}

/// The request of `sk` with a proxy Via on top, as a branch of it.
fn branch_of(t: &mut TxnTable, now: Instant, sk: ServerKey, req: &Bytes) {
    let mut m = SipMsg::parse(req.clone()).unwrap();
    m.push_via(b"SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKproxy1");
    t.send_request(now, m.to_bytes(), Peer::udp(addr(9)), Some(sk))
        .unwrap();
}

fn ringing(now: Instant, t: &mut TxnTable, code: u16) {
    let r = format!(
        "SIP/2.0 {code} Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKproxy1\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKuac1\r\nFrom: <sip:a@x>;tag=1\r\n\
         To: <sip:bob@x>;tag=b\r\nCall-ID: bt-z9hG4bKuac1\r\nCSeq: 1 INVITE\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let m = SipMsg::parse(Bytes::from(r)).unwrap();
    t.handle_message(now, m, Peer::udp(addr(9))).unwrap();
}

/// Runs timers up to `until` in 10 ms steps; the time of the first branch failure.
fn run_until(t: &mut TxnTable, from: Instant, until: Instant) -> Option<(Instant, u16)> {
    let mut now = from;
    while now <= until {
        if t.poll_timeout().is_some_and(|d| d <= now) {
            t.handle_timeout(now);
        }
        while let Some(e) = t.poll_event() {
            if let TxnEvent::BranchFailed { code, .. } = e {
                return Some((now, code));
            }
        }
        now += 10 * MS;
    }
    None
}

fn setup(cfg: TxnConfig, timers: Option<BranchTimers>) -> (TxnTable, Instant, ServerKey) {
    let mut t = TxnTable::new(cfg);
    let t0 = base_instant();
    let req = invite("z9hG4bKuac1");
    let m = SipMsg::parse(req.clone()).unwrap();
    let Ok(NewTxn::Created(sk)) = t.new_transaction(t0, &m, Peer::udp(addr(0))) else {
        panic!("no transaction");
    };
    if let Some(b) = timers {
        t.set_branch_timers(sk, b);
        assert_eq!(t.branch_timers(sk), b);
    }
    branch_of(&mut t, t0, sk, &req);
    let mut buf = Vec::new();
    while t.poll_transmit(&mut buf).is_some() {}
    (t, t0, sk)
}

#[test]
fn transaction_overrides_timer_b_and_c_of_its_new_branches() {
    let mut cfg = TxnConfig::default();
    cfg.fr_timeout(Some(30 * S))
        .timer_c(Some(120 * S))
        .timer_c_fails_at_once(true);
    // Timer B: 2 s instead of 30 s.
    let over = BranchTimers {
        fr_timeout: Some(2 * S),
        timer_c: None,
    };
    let (mut t, t0, _) = setup(cfg.clone(), Some(over));
    let (at, code) = run_until(&mut t, t0, t0 + 40 * S).unwrap();
    assert_eq!(code, 408);
    assert!(
        at >= t0 + 2 * S && at < t0 + 2 * S + 50 * MS,
        "{:?}",
        at - t0
    );

    // Timer C: 3 s after the 180 instead of 120 s.
    let over = BranchTimers {
        fr_timeout: None,
        timer_c: Some(3 * S),
    };
    let (mut t, t0, sk) = setup(cfg.clone(), Some(over));
    ringing(t0 + S, &mut t, 180);
    let (at, code) = run_until(&mut t, t0 + S, t0 + 200 * S).unwrap();
    assert_eq!(code, 408);
    assert!(
        at >= t0 + 4 * S && at < t0 + 4 * S + 50 * MS,
        "{:?}",
        at - t0
    );

    // Back to the defaults.
    t.set_branch_timers(sk, BranchTimers::default());
    assert_eq!(t.branch_timers(sk), BranchTimers::default());
    let (mut t, t0, _) = setup(cfg, None);
    ringing(t0 + S, &mut t, 180);
    let (at, _) = run_until(&mut t, t0 + S, t0 + 200 * S).unwrap();
    assert!(at >= t0 + 121 * S, "{:?}", at - t0);
}

#[test]
fn timer_c_restarts_on_each_provisional_or_only_on_a_higher_one() {
    // (restart, second provisional, when timer C fires)
    for (restart, second, expect) in [
        (true, 180, 4900 * MS),
        (false, 180, 3 * S),
        (false, 183, 4900 * MS),
    ] {
        let mut cfg = TxnConfig::default();
        cfg.fr_timeout(Some(30 * S))
            .timer_c(Some(2 * S))
            .timer_c_fails_at_once(true)
            .restart_timer_c(restart);
        let (mut t, t0, _) = setup(cfg, None);
        ringing(t0 + S, &mut t, 180);
        assert!(run_until(&mut t, t0 + S, t0 + 2900 * MS).is_none());
        ringing(t0 + 2900 * MS, &mut t, second);
        let (at, code) = run_until(&mut t, t0 + 2900 * MS, t0 + 10 * S).unwrap();
        assert_eq!(code, 408);
        assert!(
            at >= t0 + expect && at < t0 + expect + 50 * MS,
            "restart {restart}, then {second}: {:?}",
            at - t0
        );
    }
}

#[test]
fn timer_c_of_a_live_branch_set_after_its_provisional() {
    let mut cfg = TxnConfig::default();
    cfg.fr_timeout(Some(30 * S))
        .timer_c(Some(120 * S))
        .timer_c_fails_at_once(true);
    let (mut t, t0, sk) = setup(cfg, None);
    let ck = t.branches(sk)[0];
    // Before any provisional: only the value changes (C is not restarted).
    t.set_client_timer_c(t0 + 100 * MS, ck, Some(S));
    ringing(t0 + S, &mut t, 180);
    // After the 180 (as an onreply route would): 1 s from now.
    t.set_client_timer_c(t0 + 1500 * MS, ck, Some(S));
    let (at, code) = run_until(&mut t, t0 + 1500 * MS, t0 + 10 * S).unwrap();
    assert_eq!(code, 408);
    assert!(at >= t0 + 2500 * MS && at < t0 + 2550 * MS, "{:?}", at - t0);
}

#[test]
fn selected_branch_is_the_index_of_the_best_final() {
    let (mut t, t0, sk) = setup(TxnConfig::default(), None);
    assert_eq!(t.selected_branch(sk).map(|(idx, _)| idx), None);
    // A second branch (index 1).
    let mut m = SipMsg::parse(invite("z9hG4bKuac1")).unwrap();
    m.push_via(b"SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKproxy2");
    t.send_request(t0, m.to_bytes(), Peer::udp(addr(8)), Some(sk))
        .unwrap();
    let fin = |t: &mut TxnTable, b: &str, code: u16, from: usize| {
        let r = format!(
            "SIP/2.0 {code} X\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch={b}\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKuac1\r\nFrom: <sip:a@x>;tag=1\r\n\
             To: <sip:bob@x>;tag={b}\r\nCall-ID: bt-z9hG4bKuac1\r\nCSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let m = SipMsg::parse(Bytes::from(r)).unwrap();
        t.handle_message(t0 + S, m, Peer::udp(addr(from))).unwrap();
    };
    fin(&mut t, "z9hG4bKproxy1", 503, 9);
    assert_eq!(t.selected_branch(sk).map(|(idx, _)| idx), Some(0));
    fin(&mut t, "z9hG4bKproxy2", 486, 8);
    assert_eq!(
        t.selected_branch(sk).map(|(idx, _)| idx),
        Some(1),
        "4xx ranks over 5xx"
    );
}

#[test]
fn timer_c_from_the_first_provisional() {
    for from_prov in [false, true] {
        let mut cfg = TxnConfig::default();
        cfg.fr_timeout(Some(3 * S))
            .timer_c(Some(S))
            .timer_c_fails_at_once(true)
            .timer_c_from_provisional(from_prov);
        // No response at all: B (3 s) when C waits for a provisional; else C (1 s).
        let (mut t, t0, _) = setup(cfg.clone(), None);
        let (at, code) = run_until(&mut t, t0, t0 + 10 * S).unwrap();
        assert_eq!(code, 408);
        let expect = if from_prov { 3 * S } else { S };
        assert!(
            at >= t0 + expect && at < t0 + expect + 50 * MS,
            "{from_prov}: {:?}",
            at - t0
        );
        // A 100 only: it starts C when C waits for a provisional; else C runs from the send.
        let (mut t, t0, _) = setup(cfg, None);
        ringing(t0 + 500 * MS, &mut t, 100);
        let (at, _) = run_until(&mut t, t0 + 500 * MS, t0 + 10 * S).unwrap();
        let expect = if from_prov { 1500 * MS } else { S };
        assert!(
            at >= t0 + expect && at < t0 + expect + 50 * MS,
            "{from_prov} after 100: {:?}",
            at - t0
        );
    }
}
