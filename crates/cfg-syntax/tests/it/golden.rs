//! Golden syntax tests: every `tests/data/ok/*.cfg` must parse without diagnostics and its
//! `Config::summary()` must equal the sibling `.summary` file.

use sipox_cfg_syntax::{Options, parse_file};

use crate::support::{cfg_files, check_golden, data_dir};

#[test]
fn ok_configs_match_their_summaries() {
    let files = cfg_files("ok");
    assert!(
        files.len() >= 8,
        "expected the golden corpus, found {}",
        files.len()
    );
    let opts = Options {
        cwd: Some(data_dir().join("ok")),
        ..Options::default()
    };
    let mut failures = Vec::new();
    for f in &files {
        let parsed = parse_file(f, &opts);
        if !parsed.diagnostics.is_empty() {
            failures.push(format!(
                "{}: unexpected diagnostics:\n{}",
                f.display(),
                parsed.render_diagnostics()
            ));
            continue;
        }
        let summary = parsed.ast.summary();
        if let Err(e) = check_golden(&f.with_extension("summary"), &summary) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
