//! RFC 3261 Figures 5–8 and RFC 6026's Accepted state, one timer at a time.

use std::time::Duration;

use sipox_txn::{ClientState, ServerState, Trying, TxnConfig};

use crate::harness::{Ev, Net, Role, UasPlan, addr};

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

fn uas(net: &mut Net, plan: UasPlan) -> usize {
    net.add(Role::Uas(plan), TxnConfig::default())
}

fn secs(v: &[Duration]) -> Vec<u64> {
    v.iter().map(|d| d.as_millis() as u64).collect()
}

#[test]
fn invite_client_calling_timer_a_doubles_and_timer_b_fires() {
    let mut net = Net::new(1);
    let uac = net.add(Role::Uac, TxnConfig::default());
    let ck = net.uac_request(uac, addr(99), "INVITE");
    assert_eq!(
        net.nodes[uac].table.client_state(ck),
        Some(ClientState::Calling)
    );
    net.run_for(31 * S);
    assert_eq!(
        secs(&net.wire_times("INVITE", addr(uac))),
        vec![0, 500, 1500, 3500, 7500, 15500, 31500][..6].to_vec()
    );
    net.run_for(2 * S);
    assert_eq!(
        secs(&net.wire_times("INVITE", addr(uac))),
        vec![0, 500, 1500, 3500, 7500, 15500, 31500]
    );
    let n = &net.nodes[uac];
    assert_eq!(n.evs(), vec![Ev::BranchFailed(408)]);
    assert_eq!(n.log.last().unwrap().t, 32 * S);
    assert!(n.table.is_empty());
    assert_eq!(n.table.stats().timers_live, 0);
}

#[test]
fn invite_failure_completed_ack_retransmitted_confirmed_timers_d_i() {
    let mut net = Net::new(2);
    let uac = net.add(Role::Uac, TxnConfig::default());
    let s = uas(
        &mut net,
        UasPlan {
            provisional: vec![180],
            final_code: Some(486),
            final_delay: 100 * MS,
            ..UasPlan::default()
        },
    );
    // Lose the first ACK: the UAS retransmits 486 (timer G), the UAC answers with the ACK again.
    let mut acks = 0;
    net.drop = Some(Box::new(move |w| {
        if w.is("ACK") {
            acks += 1;
            return acks == 1;
        }
        false
    }));
    let ck = net.uac_request(uac, addr(s), "INVITE");
    net.run_for(50 * MS);
    assert_eq!(
        net.nodes[uac].table.client_state(ck),
        Some(ClientState::Proceeding)
    );
    net.run_for(200 * MS);
    assert_eq!(
        net.nodes[uac].table.client_state(ck),
        Some(ClientState::Completed)
    );
    net.run_for(S);
    assert_eq!(net.wire_count("ACK"), 2);
    assert_eq!(net.wire_count("SIP/2.0 486"), 2);
    assert_eq!(
        net.nodes[uac].evs(),
        vec![
            Ev::Reply(100, false),
            Ev::Reply(180, true),
            Ev::Reply(486, false)
        ]
    );
    let sk_state = net.nodes[s].table.stats();
    assert_eq!(sk_state.servers, 1, "Confirmed, waiting for timer I");
    // Timer I = T4 = 5 s after the second ACK (~0.63 s).
    net.run_for(5 * S);
    assert!(
        net.nodes[s].table.is_empty(),
        "timer I freed the server transaction"
    );
    assert!(!net.nodes[uac].table.is_empty(), "timer D still running");
    net.run_for(27 * S);
    assert!(
        net.nodes[uac].table.is_empty(),
        "timer D freed the client transaction"
    );
    // Only one 486 event although two arrived.
    assert_eq!(net.nodes[uac].count(&Ev::Reply(486, false)), 1);
}

#[test]
fn invite_server_timer_g_capped_and_timer_h() {
    let mut net = Net::new(3);
    let uac = net.add(Role::Uac, TxnConfig::default());
    let s = uas(
        &mut net,
        UasPlan {
            final_code: Some(486),
            ..UasPlan::default()
        },
    );
    net.drop = Some(Box::new(|w| w.is("ACK")));
    net.uac_request(uac, addr(s), "INVITE");
    net.run_for(40 * S);
    let times = secs(&net.wire_times("SIP/2.0 486", addr(s)));
    assert_eq!(
        times,
        vec![
            10, 510, 1510, 3510, 7510, 11510, 15510, 19510, 23510, 27510, 31510
        ]
    );
    assert!(net.nodes[s].has(&Ev::AckTimeout));
    let h = net.nodes[s]
        .log
        .iter()
        .find(|l| l.ev == Ev::AckTimeout)
        .unwrap()
        .t;
    assert_eq!(h, 32 * S + 10 * MS);
    assert!(net.all_empty());
}

#[test]
fn invite_accepted_2xx_passes_through_both_sides_timers_l_m() {
    let mut net = Net::new(4);
    let uac = net.add(Role::Uac, TxnConfig::default());
    let s = uas(
        &mut net,
        UasPlan {
            provisional: vec![180],
            final_code: Some(200),
            final_delay: 200 * MS,
            resend_2xx: 2,
            ..UasPlan::default()
        },
    );
    let ck = net.uac_request(uac, addr(s), "INVITE");
    net.run_for(S);
    assert_eq!(
        net.nodes[uac].table.client_state(ck),
        Some(ClientState::Accepted)
    );
    let sk = net.nodes[s].table.stats();
    assert_eq!(sk.servers, 1);
    net.run_for(2 * S);
    // The TU's 2xx retransmissions go out through the Accepted server transaction and come up
    // through the Accepted client transaction.
    assert_eq!(net.wire_count("SIP/2.0 200"), 3);
    assert_eq!(net.nodes[uac].count(&Ev::Reply(200, true)), 3);
    // A late INVITE retransmission is absorbed in Accepted: no new request, no response.
    let before = net.wire.len();
    let inv = net.find_wire("INVITE");
    net.replay(inv);
    assert_eq!(net.wire.len(), before);
    assert_eq!(net.nodes[s].count(&Ev::Request("INVITE".into())), 1);
    // The ACK for the 2xx is a new transaction-less request: passed up.
    let ack = b"ACK sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKack1\r\nFrom: <sip:alice@x>;tag=1\r\nTo: <sip:bob@example.com>;tag=2\r\nCall-ID: c\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n";
    net.inject(addr(uac), s, ack);
    assert!(net.nodes[s].has(&Ev::Ack));
    // Timer L (server, 32.21 s) and M (client, 32.22 s): 64*T1 after the first 2xx.
    net.run_for(29 * S);
    assert_eq!(net.nodes[s].table.stats().servers, 1);
    assert_eq!(
        net.nodes[uac].table.client_state(ck),
        Some(ClientState::Accepted)
    );
    net.run_for(S);
    assert!(net.all_empty());
}

#[test]
fn non_invite_client_timer_e_backoff_and_timer_f() {
    let mut net = Net::new(5);
    let uac = net.add(Role::Uac, TxnConfig::default());
    net.uac_request(uac, addr(99), "OPTIONS");
    net.run_for(40 * S);
    assert_eq!(
        secs(&net.wire_times("OPTIONS", addr(uac))),
        vec![
            0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    assert_eq!(net.nodes[uac].evs(), vec![Ev::BranchFailed(408)]);
    assert!(net.all_empty());
}

#[test]
fn non_invite_proceeding_retransmits_at_t2_and_timers_k_j() {
    let mut net = Net::new(6);
    let uac = net.add(Role::Uac, TxnConfig::default());
    let s = uas(
        &mut net,
        UasPlan {
            provisional: vec![100],
            final_code: Some(200),
            final_delay: 10 * S,
            ..UasPlan::default()
        },
    );
    let ck = net.uac_request(uac, addr(s), "OPTIONS");
    net.run_for(S);
    assert_eq!(
        net.nodes[uac].table.client_state(ck),
        Some(ClientState::Proceeding)
    );
    net.run_for(10 * S);
    assert_eq!(
        secs(&net.wire_times("OPTIONS", addr(uac))),
        vec![0, 500, 4500, 8500]
    );
    // Each retransmission in Proceeding got the provisional again.
    assert_eq!(net.wire_count("SIP/2.0 100"), 4);
    assert_eq!(
        net.nodes[uac].table.client_state(ck),
        Some(ClientState::Completed)
    );
    // Timer K = T4 after the final (10.02 s).
    net.run_for(5 * S);
    assert!(net.nodes[uac].table.is_empty());
    assert!(
        !net.nodes[s].table.is_empty(),
        "timer J (64*T1) still running"
    );
    net.run_for(28 * S);
    assert!(net.all_empty());
}

#[test]
fn non_invite_server_absorbs_in_trying_and_resends_final_in_completed() {
    let mut net = Net::new(7);
    net.dup = 1000; // every datagram arrives twice
    let uac = net.add(Role::Uac, TxnConfig::default());
    let s = uas(
        &mut net,
        UasPlan {
            final_code: Some(200),
            final_delay: S,
            ..UasPlan::default()
        },
    );
    let ck = net.uac_request(uac, addr(s), "OPTIONS");
    net.run_for(1100 * MS);
    assert_eq!(net.nodes[s].count(&Ev::Request("OPTIONS".into())), 1);
    assert_eq!(
        net.wire_times("SIP/2.0 200", addr(s)).len(),
        1,
        "Trying absorbs"
    );
    assert_eq!(net.nodes[uac].count(&Ev::Reply(200, true)), 1);
    assert_eq!(
        net.nodes[uac].table.client_state(ck),
        Some(ClientState::Completed)
    );
    // A late retransmission of the request gets the final again; the client absorbs it.
    net.dup = 0;
    let req = net.find_wire("OPTIONS");
    net.replay(req);
    net.run_for(100 * MS);
    assert_eq!(net.wire_times("SIP/2.0 200", addr(s)).len(), 2);
    assert_eq!(net.nodes[uac].count(&Ev::Reply(200, true)), 1);
    net.run_for(40 * S);
    assert!(net.all_empty());
}

#[test]
fn reliable_transport_no_retransmissions_and_zero_wait_timers() {
    let mut net = Net::new(8);
    let uac = net.add(Role::Uac, TxnConfig::default());
    let s = uas(
        &mut net,
        UasPlan {
            final_code: Some(486),
            final_delay: 5 * S,
            ..UasPlan::default()
        },
    );
    net.nodes[uac].reliable = true;
    net.nodes[s].reliable = true;
    let ck = net.uac_request(uac, addr(s), "INVITE");
    let ok = net.uac_request(uac, addr(s), "OPTIONS");
    net.run_for(4 * S);
    assert_eq!(net.wire_count("INVITE"), 1, "no timer A");
    assert_eq!(net.wire_count("OPTIONS"), 1, "no timer E");
    net.run_for(1100 * MS);
    // D, I, J, K are zero on reliable transports: everything is gone right after the finals.
    assert_eq!(net.nodes[uac].table.client_state(ck), None);
    assert_eq!(net.nodes[uac].table.client_state(ok), None);
    assert_eq!(net.wire_count("SIP/2.0 486"), 2, "no timer G");
    assert!(net.all_empty());
}

#[test]
fn reliable_transport_timer_b_still_applies() {
    let mut net = Net::new(9);
    let uac = net.add(Role::Uac, TxnConfig::default());
    net.nodes[uac].reliable = true;
    net.uac_request(uac, addr(99), "INVITE");
    net.run_for(33 * S);
    assert_eq!(net.wire_count("INVITE"), 1);
    assert_eq!(net.nodes[uac].evs(), vec![Ev::BranchFailed(408)]);
}

#[test]
fn trying_policies() {
    for (policy, provisional, expect) in [
        (Trying::Immediately, vec![], vec![10]),
        (Trying::After(200 * MS), vec![], vec![210]),
        (Trying::After(200 * MS), vec![180], vec![]),
        (Trying::Never, vec![], vec![]),
    ] {
        let mut net = Net::new(10);
        let uac = net.add(Role::Uac, TxnConfig::default());
        let mut cfg = TxnConfig::default();
        cfg.trying(policy);
        let s = net.add(
            Role::Uas(UasPlan {
                provisional,
                final_code: Some(404),
                final_delay: S,
                ..UasPlan::default()
            }),
            cfg,
        );
        net.uac_request(uac, addr(s), "INVITE");
        net.run_for(2 * S);
        assert_eq!(
            secs(&net.wire_times("SIP/2.0 100", addr(s))),
            expect,
            "{policy:?}"
        );
        // In Proceeding, an INVITE retransmission gets the last provisional: covered by the
        // retransmission count below (timer A fired at 0.5 s before the 404 at 1 s).
        let resent = net.wire_count("SIP/2.0 1");
        assert!(resent >= expect.len());
    }
}

#[test]
fn rfc2543_matching_without_magic_cookie() {
    let mut net = Net::new(11);
    let s = uas(
        &mut net,
        UasPlan {
            final_code: Some(486),
            ..UasPlan::default()
        },
    );
    let invite = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=old1\r\nFrom: <sip:alice@x>;tag=ft\r\nTo: <sip:bob@example.com>\r\nCall-ID: legacy@x\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n";
    let peer = addr(50);
    net.inject(peer, s, invite);
    net.inject(peer, s, invite);
    assert_eq!(net.nodes[s].count(&Ev::Request("INVITE".into())), 1);
    // The retransmission got the final again.
    assert_eq!(net.wire_count("SIP/2.0 486"), 2);
    let w = net.find_wire("SIP/2.0 486");
    let reply = sipox_sip_msg::SipMsg::parse(net.wire[w].data.clone()).unwrap();
    let tag = String::from_utf8(reply.to().unwrap().tag().unwrap().to_vec()).unwrap();
    // A different To tag does not match (it would be an ACK for someone else).
    let bad = String::from(
        "ACK sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=old1\r\nFrom: <sip:alice@x>;tag=ft\r\nTo: <sip:bob@example.com>;tag=zz\r\nCall-ID: legacy@x\r\nCSeq: 7 ACK\r\nContent-Length: 0\r\n\r\n",
    );
    net.inject(peer, s, bad.as_bytes());
    assert!(net.nodes[s].has(&Ev::Ack), "unmatched ACK goes up");
    let ack = format!(
        "ACK sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=old1\r\nFrom: <sip:alice@x>;tag=ft\r\nTo: <sip:bob@example.com>;tag={tag}\r\nCall-ID: legacy@x\r\nCSeq: 7 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    net.inject(peer, s, ack.as_bytes());
    assert_eq!(net.nodes[s].count(&Ev::Ack), 1, "matched ACK absorbed");
    let sent = net.wire_count("SIP/2.0 486");
    net.run_for(10 * S);
    assert_eq!(
        net.wire_count("SIP/2.0 486"),
        sent,
        "Confirmed: timer G stopped"
    );
    assert!(net.all_empty(), "timer I fired");
}

#[test]
fn server_state_walk() {
    let mut net = Net::new(12);
    let uac = net.add(Role::Uac, TxnConfig::default());
    let s = uas(
        &mut net,
        UasPlan {
            final_code: Some(480),
            final_delay: S,
            ..UasPlan::default()
        },
    );
    net.uac_request(uac, addr(s), "INVITE");
    net.run_for(20 * MS);
    let sk = net.nodes[s].first_server();
    let st = |net: &Net| net.nodes[s].table.server_state(sk);
    assert_eq!(st(&net), Some(ServerState::Proceeding));
    // The 480 goes out at 1.01 s, the ACK comes back at 1.03 s.
    net.run_for(S);
    assert_eq!(st(&net), Some(ServerState::Completed));
    net.run_for(20 * MS);
    assert_eq!(st(&net), Some(ServerState::Confirmed));
    net.run_for(5 * S);
    assert_eq!(st(&net), None);
    assert!(net.nodes[s].has(&Ev::Terminated(true)));
}
