//! Proves that framing and indexing a typical message allocates nothing beyond the buffer the
//! caller already holds, with a counting global allocator (per thread, so parallel tests do not
//! disturb the count).

use bytes::Bytes;
use sipox_sip_msg::{HeaderKind, SipMsg};
use sipox_test_support::allocations;

#[global_allocator]
static GLOBAL: sipox_test_support::Counting = sipox_test_support::Counting;

pub(crate) const INVITE: &[u8] = include_bytes!("../../benches/data/invite.sip");
pub(crate) const REGISTER: &[u8] = include_bytes!("../../benches/data/register.sip");
pub(crate) const OK200: &[u8] = include_bytes!("../../benches/data/200ok.sip");

#[test]
fn frame_and_index_allocate_nothing() {
    for msg in [INVITE, REGISTER, OK200] {
        let buf = Bytes::from_static(msg);
        let (n, m) = allocations(|| SipMsg::parse(buf.clone()).unwrap());
        assert_eq!(n, 0, "frame+index allocated {n} times");
        // The typed parsers a proxy runs are allocation-free too.
        let (n, ()) = allocations(|| {
            m.validate().unwrap();
            if m.is_request() {
                let _ = m.ruri().unwrap().host();
            }
            let _ = m.via1().unwrap().branch();
            let _ = m.from().unwrap().tag();
            let _ = m.to().unwrap().tag();
            assert!(m.values(HeaderKind::Via).count() >= 1);
            for c in m.contacts() {
                c.unwrap();
            }
            for r in m.name_addrs(HeaderKind::Route) {
                r.unwrap();
            }
        });
        assert_eq!(n, 0, "typed parsing allocated {n} times");
    }
}

#[test]
fn counter_sees_allocations() {
    let (n, v) = allocations(|| vec![1u8; 100]);
    assert_eq!(v.len(), 100);
    assert!(n >= 1, "the counting allocator must be active");
}
