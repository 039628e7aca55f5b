//! `sipox-test-support` owns helpers shared by the crates' integration tests: [`Counting`], a
//! global allocator that counts allocations and live bytes per thread (so tests running in
//! parallel do not disturb each other's figures), and [`dbserver`], real PostgreSQL and
//! MariaDB servers started on loopback for a test. It is a dev-dependency only; nothing in a
//! shipped binary may depend on it.
//!
//! Use it from a test binary with:
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: sipox_test_support::Counting = sipox_test_support::Counting;
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

pub mod dbserver;

/// A global allocator that forwards to the system allocator and counts, per thread, the number
/// of allocations (and reallocations) and the bytes currently allocated.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

#[allow(clippy::cast_possible_wrap)]
fn note(allocs: usize, bytes: isize) {
    // `try_with`: thread-local storage may already be gone while a thread shuts down.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + allocs));
    let _ = LIVE.try_with(|c| c.set(c.get() + bytes));
}

// SAFETY: every call is delegated unchanged to the system allocator; this only counts.
#[allow(unsafe_code, clippy::cast_possible_wrap)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(1, layout.size() as isize);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(0, -(layout.size() as isize));
        // SAFETY: `ptr` came from `System` through this allocator with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(1, new_size as isize - layout.size() as isize);
        // SAFETY: as for `dealloc`; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` and returns how many allocations it made on this thread, with its result.
pub fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCS.with(Cell::get);
    let r = f();
    (ALLOCS.with(Cell::get) - before, r)
}

/// Bytes currently allocated by this thread (allocations minus frees).
pub fn live_bytes() -> isize {
    LIVE.with(Cell::get)
}
