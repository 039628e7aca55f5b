//! name-addr / addr-spec and Contact values with parameters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipox_sip_msg::{Span, parse_contact};

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = sipox_sip_msg::name_addr(data) {
        let _ = (n.display(), n.tag(), n.q(), n.expires(), n.uri().host());
    }
    let _ = parse_contact(data, Span::new(0, data.len()));
});
