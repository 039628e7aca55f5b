//! One run of the main route of a residential-style script over a parsed INVITE.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use sipox_script::{MsgCx, Outcome, compile_str};
use sipox_sip_msg::SipMsg;

const SCRIPT: &str = include_str!("data/residential.cfg");
const INVITE: &[u8] = include_bytes!("data/invite.sip");

fn route(c: &mut Criterion) {
    let prog = compile_str("residential.cfg", SCRIPT).unwrap_or_else(|e| panic!("{e}"));
    let mut cx = MsgCx::new(prog);
    cx.set_message(SipMsg::parse(Bytes::from_static(INVITE)).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(cx.run_main(), Outcome::Done(1));
    c.bench_function("residential_main_route", |b| {
        b.iter(|| {
            if let Some(m) = cx.take_message() {
                cx.set_message(m);
            }
            black_box(cx.run_main())
        });
    });
}

criterion_group!(benches, route);
criterion_main!(benches);
