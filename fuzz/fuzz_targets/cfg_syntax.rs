//! opensips.cfg lexer and parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let parsed = sipox_cfg_syntax::parse_str("fuzz.cfg", text);
        let _ = parsed.render_diagnostics();
    }
});
