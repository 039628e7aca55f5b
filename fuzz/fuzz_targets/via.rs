//! Via values.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = sipox_sip_msg::via(data) {
        let _ = (v.host(), v.port(), v.branch(), v.received(), v.rport(), v.maddr());
        let _ = v.has_rfc3261_branch();
        let _ = v.is_unsafe_reply_target();
    }
});
