//! URI parser and RFC 3261 comparison.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mid = data.len() / 2;
    let (a, b) = data.split_at(mid);
    if let (Ok(x), Ok(y)) = (sipox_sip_msg::uri(a), sipox_sip_msg::uri(b)) {
        let _ = x.equals(&y);
        let _ = x.equals(&x);
    }
    if let Ok(u) = sipox_sip_msg::uri(data) {
        let _ = (u.user(), u.password(), u.host(), u.port(), u.headers(), u.transport());
        let _ = u.params().iter().count();
    }
});
