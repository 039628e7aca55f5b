//! The other typed header parsers: CSeq, media types and multipart, digest, token lists, dates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipox_sip_msg::{
    Bound, Span, option_tags, parse_auth, parse_cseq, parse_date, parse_media_type,
    parse_multipart, parse_token_params, token_params_list,
};

fuzz_target!(|data: &[u8]| {
    let s = Span::new(0, data.len());
    let _ = parse_cseq(data, s);
    let _ = parse_date(data, s);
    let _ = option_tags(data, s).count();
    let _ = token_params_list(data, s).count();
    let _ = parse_token_params(data, s);
    if let Ok(a) = parse_auth(data, s) {
        let a = Bound::new(data, a);
        let _ = (a.username(), a.nonce(), a.response(), a.stale());
    }
    if let Ok(m) = parse_media_type(data, s) {
        let _ = Bound::new(data, m).boundary();
    }
    if data.len() > 4 {
        let (b, body) = data.split_at((data[0] as usize % 8 + 1).min(data.len()));
        let _ = parse_multipart(body, Span::new(0, body.len()), b);
    }
});
