//! Scheduling policy of the SIP worker threads.
//!
//! Workers run under Linux's `SCHED_BATCH`: a worker woken by a datagram does not preempt a
//! worker that is still handling the previous one. On a core shared by several workers this
//! keeps messages of one peer in arrival order (an ACK read by one worker is relayed before
//! the BYE right behind it, read by another) and saves the context switch of every such
//! preemption; the cost is at most one message's handling time of extra latency.
//! Unprivileged, and a no-op where the call fails or on other systems.

/// Puts the calling thread under `SCHED_BATCH` (best effort).
#[cfg(target_os = "linux")]
pub(crate) fn batch_policy() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain syscall wrapper; `param` is a valid, initialised struct that outlives the
    // call, and pid 0 names the calling thread. No memory is shared with the kernel after it.
    #[allow(unsafe_code)]
    let _ = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &raw const param) };
}

/// Other systems keep their default policy.
#[cfg(not(target_os = "linux"))]
pub(crate) const fn batch_policy() {}
