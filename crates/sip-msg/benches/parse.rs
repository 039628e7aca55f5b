//! Criterion benchmarks for the message core, with the `rsip` crate (0.4) parsing the same bytes
//! in the same run for comparison.
//!
//! - `index/*`: frame + index (start line and header byte ranges, Content-Length checked).
//! - `typed/*`: frame + index + every typed parse a proxy touches (R-URI, all Vias, From, To,
//!   CSeq, Call-ID, Max-Forwards, Contacts, Routes, receipt validation). rsip's counterpart is its
//!   message parse plus typed Via, From, To and CSeq.
//! - `edit/rr_via`: add Record-Route, push a Via, write the message out.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rsip::message::HeadersExt;
use rsip::prelude::{ToTypedHeader, UntypedHeader};
use sipox_sip_msg::{HeaderKind, SipMsg};

const INVITE: &[u8] = include_bytes!("data/invite.sip");
const REGISTER: &[u8] = include_bytes!("data/register.sip");
const OK200: &[u8] = include_bytes!("data/200ok.sip");

fn cases() -> [(&'static str, &'static [u8]); 3] {
    [("invite", INVITE), ("register", REGISTER), ("200ok", OK200)]
}

fn typed_sipox(m: &SipMsg) -> usize {
    let mut n = 0;
    m.validate().unwrap();
    if m.is_request() {
        n += m.ruri().unwrap().host().len();
    }
    for v in m.vias() {
        n += v.unwrap().branch().map_or(0, <[u8]>::len);
    }
    n += m.from().unwrap().tag().map_or(0, <[u8]>::len);
    n += m.to().unwrap().uri().host().len();
    n += m.cseq().unwrap().number() as usize;
    n += m.call_id().map_or(0, <[u8]>::len);
    n += m.max_forwards().unwrap().unwrap_or(0) as usize;
    for c in m.contacts() {
        c.unwrap();
        n += 1;
    }
    for r in m.name_addrs(HeaderKind::Route) {
        n += r.unwrap().uri().host().len();
    }
    n
}

fn typed_rsip(m: &rsip::SipMessage) -> usize {
    let mut n = 0;
    n += m
        .via_header()
        .unwrap()
        .typed()
        .unwrap()
        .uri
        .host_with_port
        .to_string()
        .len();
    n += m
        .from_header()
        .unwrap()
        .typed()
        .unwrap()
        .uri
        .to_string()
        .len();
    n += m
        .to_header()
        .unwrap()
        .typed()
        .unwrap()
        .uri
        .to_string()
        .len();
    n += m.cseq_header().unwrap().typed().unwrap().seq as usize;
    n += m.call_id_header().unwrap().value().len();
    n
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("index");
    for (name, bytes) in cases() {
        let buf = Bytes::from_static(bytes);
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(format!("sipox/{name}"), |b| {
            b.iter(|| SipMsg::parse(black_box(buf.clone())).unwrap());
        });
        g.bench_function(format!("rsip/{name}"), |b| {
            b.iter(|| rsip::SipMessage::try_from(black_box(bytes)).unwrap());
        });
    }
    g.finish();

    let mut g = c.benchmark_group("typed");
    for (name, bytes) in cases() {
        let buf = Bytes::from_static(bytes);
        g.bench_function(format!("sipox/{name}"), |b| {
            b.iter(|| {
                let m = SipMsg::parse(black_box(buf.clone())).unwrap();
                typed_sipox(&m)
            });
        });
        g.bench_function(format!("rsip/{name}"), |b| {
            b.iter(|| {
                let m = rsip::SipMessage::try_from(black_box(bytes)).unwrap();
                typed_rsip(&m)
            });
        });
    }
    g.finish();

    let mut g = c.benchmark_group("edit");
    let buf = Bytes::from_static(INVITE);
    let mut out = Vec::with_capacity(2048);
    g.bench_function("rr_via/sipox", |b| {
        b.iter(|| {
            let mut m = SipMsg::parse(black_box(buf.clone())).unwrap();
            m.add_record_route(b"<sip:192.0.2.10;lr;ftag=1928301774>");
            m.push_via(b"SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK2d4790.0");
            out.clear();
            m.write_to(&mut out).unwrap();
            out.len()
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
