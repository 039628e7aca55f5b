//! Proves that framing and indexing a typical message allocates nothing beyond the buffer the
//! caller already holds, with a counting global allocator (per thread, so parallel tests do not
//! disturb the count).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use sipox_sip_msg::{HeaderKind, SipMsg};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: delegates every call to the system allocator unchanged; only counts allocations.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCS.with(Cell::get);
    let r = f();
    (ALLOCS.with(Cell::get) - before, r)
}

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
