//! Broken configs: each `tests/data/err/*.cfg` must produce exactly the diagnostics listed
//! (one `file:line:col: severity: message` per line) in the sibling `.diag` file.

use sipox_cfg_syntax::{Options, parse_file};

use crate::support::{cfg_files, check_golden, data_dir};

#[test]
fn broken_configs_report_expected_diagnostics() {
    let files = cfg_files("err");
    assert!(
        files.len() >= 8,
        "expected the broken corpus, found {}",
        files.len()
    );
    let opts = Options {
        cwd: Some(data_dir().join("err")),
        ..Options::default()
    };
    let mut failures = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        let parsed = parse_file(std::path::Path::new(name), &opts);
        assert!(parsed.has_errors(), "{name}: expected errors, got none");
        let mut got = parsed.headlines().join("\n");
        got.push('\n');
        if let Err(e) = check_golden(&f.with_extension("diag"), &got) {
            failures.push(format!(
                "{e}\nfull rendering:\n{}",
                parsed.render_diagnostics()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rendering_shows_source_line_caret_and_hint() {
    let p = sipox_cfg_syntax::parse_str("r.cfg", "route {\n\tif (5 == $var(x)) { exit; }\n}\n");
    let r = p.render_diagnostics();
    assert_eq!(
        r,
        "r.cfg:2:6: error: left side of '==' must be a script variable\n  | \tif (5 == $var(x)) { exit; }\n  | \t    ^\n  = hint: OpenSIPS only compares a variable with a value: put the variable first\n"
    );
    assert_eq!(p.diagnostics[0].found.as_deref(), Some("5"));
}
