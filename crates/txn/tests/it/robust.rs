//! Inputs a network can send that matching cannot use: errors, never panics or state.

use std::time::Duration;

use bytes::Bytes;
use sipox_sip_msg::SipMsg;
use sipox_txn::{Peer, TxnConfig, TxnError, TxnTable};

use crate::harness::{addr, base_instant};

fn msg(s: &str) -> SipMsg {
    SipMsg::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
}

#[test]
fn unusable_messages_are_errors_not_state() {
    let now = base_instant();
    let mut t = TxnTable::new(TxnConfig::default());
    let src = Peer::udp(addr(1));
    let cases = [
        // no Via
        "INVITE sip:b@x SIP/2.0\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
        // RFC 2543 request without CSeq
        "OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\n\r\n",
        // RFC 2543 request without Call-ID
        "OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCSeq: 1 OPTIONS\r\n\r\n",
        // response without branch
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
        // response with a garbage Via
        "SIP/2.0 200 OK\r\nVia: garbage\r\nCSeq: 1 INVITE\r\n\r\n",
        // ACK and CANCEL without Via
        "ACK sip:b@x SIP/2.0\r\nCSeq: 1 ACK\r\n\r\n",
        "CANCEL sip:b@x SIP/2.0\r\nCSeq: 1 CANCEL\r\n\r\n",
    ];
    for c in cases {
        let r = t.handle_message(now, msg(c), src);
        assert!(matches!(r, Err(TxnError::BadMessage(_))), "{c:?}: {r:?}");
    }
    assert!(t.is_empty());
    assert!(t.poll_event().is_none());
    let mut buf = Vec::new();
    assert!(t.poll_transmit(&mut buf).is_none());
}

#[test]
fn send_request_checks() {
    let now = base_instant();
    let mut t = TxnTable::new(TxnConfig::default());
    let dst = Peer::udp(addr(2));
    let inv = "INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let ck = t
        .send_request(now, Bytes::from_static(inv.as_bytes()), dst, None)
        .unwrap();
    assert_eq!(
        t.send_request(now, Bytes::from_static(inv.as_bytes()), dst, None),
        Err(TxnError::DuplicateBranch)
    );
    let ack = "ACK sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK2\r\nCSeq: 1 ACK\r\n\r\n";
    assert!(
        t.send_request(now, Bytes::from_static(ack.as_bytes()), dst, None)
            .is_err()
    );
    assert!(
        t.send_request(now, Bytes::from_static(b"junk"), dst, None)
            .is_err()
    );
    // A response for our branch but the wrong method is a stray, not ours.
    let r = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: c\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n";
    t.handle_message(now, msg(r), dst).unwrap();
    assert!(matches!(
        std::iter::from_fn(|| t.poll_event()).last(),
        Some(sipox_txn::TxnEvent::StrayReply { .. })
    ));
    // Stale keys are refused after the transaction is gone.
    t.handle_transport_error(now, sipox_txn::TxnRef::Client(ck));
    assert!(t.is_empty());
    assert_eq!(t.cancel_branch(now, ck), Err(TxnError::NoTransaction));
    t.handle_timeout(now + Duration::from_secs(1000));
    assert_eq!(t.poll_timeout(), None);
}
