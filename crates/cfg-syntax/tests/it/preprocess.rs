//! External preprocessor (`-p CMD`): m4 when installed, plus the mechanism via sed.

use std::process::Command;

use sipox_cfg_syntax::{Options, parse_file, parse_str_with, run_preprocessor};

use crate::support::data_dir;

fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn m4_template_renders_and_parses() {
    if !have("m4") {
        println!(
            "note: m4 is not installed; skipping the m4 preprocessor test (see tests/data/NEEDS)"
        );
        return;
    }
    let opts = Options {
        preprocessor: Some("m4".to_owned()),
        cwd: Some(data_dir().join("pp")),
        ..Options::default()
    };
    let p = parse_file(&data_dir().join("pp/template.m4"), &opts);
    assert!(p.diagnostics.is_empty(), "{}", p.render_diagnostics());
    let summary = p.ast.summary();
    assert!(
        summary.contains("param socket = socket{proto=udp host=192.0.2.5 port=5060}"),
        "{summary}"
    );
    assert!(
        summary.contains("param socket = socket{proto=tcp host=192.0.2.5 port=5060}"),
        "{summary}"
    );
    assert!(summary.contains("loadmodule proto_tcp"), "{summary}");
    assert!(
        summary.contains("call xlog(\"USE_TCP is on\\n\")"),
        "{summary}"
    );
}

#[test]
fn preprocessor_output_is_what_gets_parsed() {
    if !have("sed") {
        println!("note: sed is not installed; skipping");
        return;
    }
    let opts = Options {
        preprocessor: Some("sed -e s/LEVEL_MACRO/4/".to_owned()),
        ..Options::default()
    };
    let p = parse_str_with(
        "pp.cfg",
        "log_level = LEVEL_MACRO\nroute { exit; }\n",
        &opts,
    );
    assert!(p.diagnostics.is_empty(), "{}", p.render_diagnostics());
    assert_eq!(
        p.ast.summary(),
        "param log_level = 4\nroute (main)\n  exit\n"
    );
    // diagnostics point into the preprocessed text
    let p = parse_str_with("pp.cfg", "log_level = LEVEL_MACRO\nroute { exit }\n", &opts);
    let heads = p.headlines();
    assert_eq!(
        heads,
        vec!["pp.cfg (after 'sed -e s/LEVEL_MACRO/4/'):2:14: error: missing ';' before '}'"]
    );
}

#[test]
fn preprocessor_failures_are_diagnostics() {
    let opts = Options {
        preprocessor: Some("/nonexistent/preprocessor-binary".to_owned()),
        ..Options::default()
    };
    let p = parse_str_with("pp.cfg", "log_level = 1\n", &opts);
    assert!(p.has_errors());
    assert!(
        p.headlines()[0].contains("cannot start preprocessor"),
        "{:?}",
        p.headlines()
    );
    assert!(run_preprocessor("   ", "x").is_err());
    if have("false") {
        let e = run_preprocessor("false", "x").unwrap_err();
        assert!(e.to_string().contains("failed"), "{e}");
    }
}
