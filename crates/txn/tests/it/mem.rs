//! Memory per transaction, measured with a counting allocator (live bytes, per thread).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use bytes::Bytes;
use sipox_sip_msg::{NewRequest, ReplyOpts, SipMsg, build_reply, build_request};
use sipox_txn::{Peer, TxnConfig, TxnEvent, TxnTable};

use crate::harness::{addr, base_instant};

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(n: isize) {
    // `try_with`: thread-local storage may be gone during thread teardown.
    let _ = LIVE.try_with(|c| c.set(c.get() + n));
}

// SAFETY: delegates every call to the system allocator unchanged; only counts bytes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

fn request(i: usize, method: &str) -> Bytes {
    let via = format!("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-mem-{i}");
    let from = format!("\"Alice\" <sip:alice@atlanta.example.com>;tag=f{i}");
    let cid = format!("{i}-a84b4c76e66710@pc33.atlanta.example.com");
    let mut out = Vec::new();
    build_request(
        &NewRequest {
            method: method.as_bytes(),
            ruri: b"sip:bob@biloxi.example.com",
            via: via.as_bytes(),
            from: from.as_bytes(),
            to: b"\"Bob\" <sip:bob@biloxi.example.com>",
            call_id: cid.as_bytes(),
            cseq: 314_159,
            max_forwards: 70,
            extra_headers: b"Contact: <sip:alice@pc33.atlanta.example.com>\r\nUser-Agent: test\r\n",
            body: None,
        },
        &mut out,
    );
    Bytes::from(out)
}

const N: usize = 2000;

/// Server INVITE transactions of a proxy, in Proceeding after the 100 Trying, each with one
/// client branch in Proceeding: the steady state of a call being set up.
#[test]
fn bytes_per_proxied_invite() {
    let now = base_instant();
    let src = Peer::udp(addr(1));
    let dst = Peer::udp(addr(2));
    // Count from before the inputs are built: a transaction keeps its request buffer.
    let before = live();
    let inputs: Vec<(SipMsg, Bytes)> = (0..N)
        .map(|i| {
            let b = request(i, "INVITE");
            let mut m = SipMsg::parse(b.clone()).unwrap();
            m.push_via(format!("SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK-px-{i}").as_bytes());
            (SipMsg::parse(b).unwrap(), m.to_bytes())
        })
        .collect();
    let mut table = TxnTable::new(TxnConfig::default());
    let mut buf = Vec::with_capacity(2048);
    for (msg, fwd) in inputs {
        table.handle_message(now, msg, src).unwrap();
        let Some(TxnEvent::Request { txn, .. }) = table.poll_event() else {
            panic!()
        };
        table.send_request(now, fwd, dst, Some(txn)).unwrap();
        while table.poll_transmit(&mut buf).is_some() {}
    }
    let after = live();
    let st = table.stats();
    let per_call = (after - before) as usize / N;
    let struct_per = st.struct_bytes / N;
    println!(
        "proxied INVITE (server + 1 branch): {per_call} B/call live heap incl. the request \
         buffers; table structure {struct_per} B/call; buffers {} B/call; stats {st:?}",
        st.buffer_bytes / N
    );
    assert_eq!(st.servers, N);
    assert_eq!(st.clients, N);
    // Budget per proxied call, both copies of the request included (measured ~2.3 KB: two
    // request buffers ~1.2 KB, table structure ~0.95 KB).
    assert!(per_call < 2600, "{per_call} B per call");
    // Everything is freed after the last timer: B fires on every branch, the proxy relays
    // each 408, timer H ends the server transactions.
    let later = now + Duration::from_secs(40);
    table.handle_timeout(later);
    while let Some(ev) = table.poll_event() {
        if let TxnEvent::BestFinal { txn, msg, .. } = ev {
            table.send_reply(later, txn, &msg).unwrap();
        }
    }
    table.handle_timeout(later + Duration::from_secs(40));
    while table.poll_event().is_some() {}
    while table.poll_transmit(&mut buf).is_some() {}
    assert!(table.is_empty(), "{:?}", table.stats());
    assert!(
        live() - before < 64 * 1024,
        "freed: {} B left",
        live() - before
    );
}

/// Proxied INVITEs answered 200: both transactions wait out timers L and M (64·T1) in
/// Accepted, the bulk of a proxy's table under call load. They keep no message buffers.
#[test]
fn bytes_per_accepted_invite() {
    let now = base_instant();
    let src = Peer::udp(addr(1));
    let dst = Peer::udp(addr(2));
    let before = live();
    let inputs: Vec<(SipMsg, Bytes)> = (0..N)
        .map(|i| {
            let b = request(i, "INVITE");
            let mut m = SipMsg::parse(b.clone()).unwrap();
            m.push_via(format!("SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK-px-{i}").as_bytes());
            (SipMsg::parse(b).unwrap(), m.to_bytes())
        })
        .collect();
    let mut table = TxnTable::new(TxnConfig::default());
    let mut buf = Vec::with_capacity(2048);
    let mut out = Vec::with_capacity(2048);
    for (msg, fwd) in inputs {
        table.handle_message(now, msg, src).unwrap();
        let Some(TxnEvent::Request { txn, .. }) = table.poll_event() else {
            panic!()
        };
        table
            .send_request(now, fwd.clone(), dst, Some(txn))
            .unwrap();
        while table.poll_transmit(&mut buf).is_some() {}
        out.clear();
        let opts = ReplyOpts {
            to_tag: Some(b"uas-tag"),
            ..ReplyOpts::default()
        };
        build_reply(&SipMsg::parse(fwd).unwrap(), 200, b"OK", &opts, &mut out).unwrap();
        table
            .handle_message(
                now,
                SipMsg::parse(Bytes::copy_from_slice(&out)).unwrap(),
                dst,
            )
            .unwrap();
        while let Some(ev) = table.poll_event() {
            if let TxnEvent::Reply {
                server: Some(sk),
                mut msg,
                relay: true,
                ..
            } = ev
            {
                msg.pop_via();
                table.send_reply(now, sk, &msg).unwrap();
            }
        }
        while table.poll_transmit(&mut buf).is_some() {}
    }
    let st = table.stats();
    let per_call = (live() - before) as usize / N;
    println!("accepted INVITE (server + 1 branch): {per_call} B/call live heap; {st:?}");
    assert_eq!((st.servers, st.clients), (N, N));
    // No message buffer is kept in Accepted: what `buffer_bytes` still counts is the fork
    // record of each server transaction (152 B).
    assert!(
        st.buffer_bytes / N <= 160,
        "{} B per call",
        st.buffer_bytes / N
    );
    // Measured ~1.4 KB: table structure (slabs, maps, 5 heap entries per call) ~1.1 KB and
    // the two detached keys; a proxied INVITE still in Proceeding costs ~2.3 KB.
    assert!(per_call < 1600, "{per_call} B per call");
    table.handle_timeout(now + Duration::from_secs(33));
    while table.poll_event().is_some() {}
    assert!(table.is_empty(), "{:?}", table.stats());
}

/// Non-INVITE server transactions in Completed (the bulk of a registrar's table).
#[test]
fn bytes_per_completed_non_invite() {
    let now = base_instant();
    let src = Peer::udp(addr(1));
    let before = live();
    let inputs: Vec<SipMsg> = (0..N)
        .map(|i| SipMsg::parse(request(i, "REGISTER")).unwrap())
        .collect();
    let mut table = TxnTable::new(TxnConfig::default());
    let mut buf = Vec::with_capacity(2048);
    for msg in inputs {
        table.handle_message(now, msg, src).unwrap();
        let Some(TxnEvent::Request { txn, .. }) = table.poll_event() else {
            panic!()
        };
        table.reply(now, txn, 200, None).unwrap();
        while table.poll_transmit(&mut buf).is_some() {}
    }
    let per = (live() - before) as usize / N;
    println!(
        "completed non-INVITE server txn: {per} B/txn live heap incl. request and 200; {:?}",
        table.stats()
    );
    // Measured ~1.4 KB: request ~0.5 KB, 200 ~0.4 KB, structure ~0.5 KB.
    assert!(per < 1600, "{per} B per transaction");
    table.handle_timeout(now + Duration::from_secs(33));
    while table.poll_event().is_some() {}
    assert!(table.is_empty());
}
