//! Stream framing fed in pieces of varying size.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sipox_sip_msg::StreamFramer;

fuzz_target!(|data: &[u8]| {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(step % 64) + 1;
    let mut f = StreamFramer::default();
    let mut b = BytesMut::new();
    for chunk in rest.chunks(step) {
        b.extend_from_slice(chunk);
        while let Ok(Some(_)) = f.next_frame(&mut b) {}
    }
});
