//! Shared helpers: data paths and golden-file comparison (`BLESS=1` rewrites expectations).

use std::path::PathBuf;

pub(crate) fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Sorted `.cfg` files of a data sub-directory.
pub(crate) fn cfg_files(sub: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data_dir().join(sub))
        .expect("data directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cfg"))
        .collect();
    v.sort();
    v
}

/// Compares `actual` with the file at `expected`; with `BLESS=1` writes it instead.
pub(crate) fn check_golden(expected: &std::path::Path, actual: &str) -> Result<(), String> {
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(expected, actual).expect("write golden file");
        return Ok(());
    }
    let want = std::fs::read_to_string(expected)
        .map_err(|e| format!("{}: {e} (run with BLESS=1 to create)", expected.display()))?;
    if want == actual {
        return Ok(());
    }
    let mut msg = format!("mismatch with {}\n", expected.display());
    for (i, (w, a)) in want.lines().zip(actual.lines()).enumerate() {
        if w != a {
            msg.push_str(&format!(
                "first difference at line {}:\n  want: {w}\n  got:  {a}\n",
                i + 1
            ));
            return Err(msg);
        }
    }
    msg.push_str(&format!(
        "line counts differ: want {} got {}\n",
        want.lines().count(),
        actual.lines().count()
    ));
    Err(msg)
}
