//! include_file / import_file: nesting, path rules, depth limit, missing files.

use std::path::{Path, PathBuf};

use sipox_cfg_syntax::{Item, Options, Severity, Value, parse_file};

use crate::support::data_dir;

fn inc() -> PathBuf {
    data_dir().join("inc")
}

fn opts_in(dir: &Path) -> Options {
    Options {
        cwd: Some(dir.to_path_buf()),
        ..Options::default()
    }
}

#[test]
fn nested_includes_are_inlined_in_place() {
    // cwd elsewhere: "sub/part.cfg" resolves against main.cfg's directory,
    // and 'nested.cfg' against sub/ (the including file's directory).
    let p = parse_file(&inc().join("main.cfg"), &opts_in(&data_dir().join("ok")));
    assert!(p.diagnostics.is_empty(), "{}", p.render_diagnostics());
    assert_eq!(
        p.ast.summary(),
        "param log_level = 2\n\
         loadmodule tm path=\"tm.so\"\n\
         modparam \"tm\" \"fr_timeout\" = 7\n\
         route (main)\n  call xlog(\"from body\\n\")\n  exit\n"
    );
    // every file was registered, and spans point into the right one
    let names: Vec<String> = p.sources.files().iter().map(|f| f.name.clone()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    let Item::ModParam(m) = &p.ast.items[2] else {
        panic!()
    };
    let loc = p.sources.location(m.span);
    assert!(loc.file.ends_with("sub/nested.cfg"), "{loc:?}");
    assert_eq!((loc.line, loc.col), (1, 1));
}

#[test]
fn errors_in_included_files_point_at_them() {
    let p = parse_file(&inc().join("broken_main.cfg"), &opts_in(&inc()));
    let heads = p.headlines();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(
        heads[0].ends_with("sub/broken.cfg:2:11: error: missing ';' before '}'"),
        "{}",
        heads[0]
    );
    let rendered = p.render_diagnostics();
    assert!(rendered.contains("  | \txlog(\"x\")\n"), "{rendered}");
}

#[test]
fn relative_paths_try_the_working_directory_first() {
    let file = inc().join("sub/uses_shared.cfg");
    let level = |cwd: &Path| {
        let p = parse_file(&file, &opts_in(cwd));
        assert!(p.diagnostics.is_empty(), "{}", p.render_diagnostics());
        match &p.ast.items[0] {
            Item::Param(g) => g.value.clone(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(level(&inc().join("cwd")), Value::Int(9));
    assert_eq!(level(&inc()), Value::Int(1));
}

#[test]
fn depth_limit_catches_loops_and_is_configurable() {
    let p = parse_file(&inc().join("loop.cfg"), &opts_in(&inc()));
    let heads = p.headlines();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(heads[0].ends_with("loop.cfg:1:15: error: maximum include depth (50) reached"));
    assert_eq!(p.sources.files().len(), 51);

    let chain = inc().join("chain/c0.cfg");
    let ok = parse_file(
        &chain,
        &Options {
            max_include_depth: 3,
            ..opts_in(&inc())
        },
    );
    assert!(ok.diagnostics.is_empty(), "{}", ok.render_diagnostics());
    assert_eq!(ok.ast.summary(), "param log_level = 3\n");
    let too_deep = parse_file(
        &chain,
        &Options {
            max_include_depth: 2,
            ..opts_in(&inc())
        },
    );
    assert_eq!(too_deep.diagnostics.len(), 1);
    assert!(
        too_deep.headlines()[0].contains("c2.cfg:1:15: error: maximum include depth (2) reached")
    );
}

#[test]
fn missing_import_is_an_error_unless_tolerated() {
    let file = inc().join("optional.cfg");
    let strict = parse_file(&file, &opts_in(&inc()));
    assert!(strict.has_errors());
    assert!(strict.config().is_none());
    let lenient = parse_file(
        &file,
        &Options {
            tolerate_missing_import: true,
            ..opts_in(&inc())
        },
    );
    assert!(!lenient.has_errors());
    assert_eq!(lenient.diagnostics.len(), 1);
    assert_eq!(lenient.diagnostics[0].severity, Severity::Warning);
    assert_eq!(lenient.config().unwrap().summary(), "param log_level = 4\n");
}

#[test]
fn missing_main_file_is_reported() {
    let p = parse_file(Path::new("no_such_main.cfg"), &opts_in(&inc()));
    assert_eq!(p.diagnostics.len(), 1);
    assert!(
        p.headlines()[0].starts_with("no_such_main.cfg:1:1: error: cannot read no_such_main.cfg")
    );
}
