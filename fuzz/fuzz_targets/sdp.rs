//! SDP parse, print and re-parse.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = sipox_sdp::Sdp::parse(data) {
        let mut out = Vec::new();
        s.write_to(&mut out);
        let _ = sipox_sdp::Sdp::parse(&out);
    }
});
