//! Mutation "fuzzing" over the golden configs: truncations, byte flips, insertions of
//! syntax characters, and pathological nesting. The parser must never panic, must
//! terminate, and every diagnostic must render.

use std::time::{Duration, Instant};

use sipox_cfg_syntax::{Options, parse_str_with};

use crate::support::{cfg_files, data_dir};

/// Deterministic xorshift generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn opts() -> Options {
    Options {
        // includes inside mutated text resolve nowhere
        cwd: Some(data_dir().join("no-such-dir")),
        ..Options::default()
    }
}

fn check(name: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let p = parse_str_with(name, &text, &opts());
    for d in &p.diagnostics {
        let r = d.render(&p.sources);
        assert!(r.starts_with(name), "{r}");
    }
    let _ = p.ast.summary();
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for dir in ["ok", "err"] {
        for f in cfg_files(dir) {
            let name = f
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            v.push((name, std::fs::read(&f).expect("read corpus file")));
        }
    }
    v
}

#[test]
#[allow(clippy::disallowed_methods)] // a wall-clock bound on total work, not a benchmark
fn truncations_never_panic() {
    let start = Instant::now();
    for (name, bytes) in corpus() {
        let step = (bytes.len() / 150).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            check(&name, &bytes[..cut]);
        }
    }
    assert!(
        start.elapsed() < Duration::from_secs(120),
        "too slow: {:?}",
        start.elapsed()
    );
}

#[test]
#[allow(clippy::disallowed_methods)] // a wall-clock bound on total work, not a benchmark
fn byte_flips_and_insertions_never_panic() {
    const SYNTAX: &[u8] = b"(){}[];,$\"'/*#\n\\=!<>~&|:.-+%0x<>";
    let mut rng = Rng(0x5eed_cf65_1234_9876);
    let start = Instant::now();
    for (name, bytes) in corpus() {
        for _ in 0..150 {
            let mut m = bytes.clone();
            for _ in 0..=rng.below(4) {
                if m.is_empty() {
                    break;
                }
                let at = rng.below(m.len());
                match rng.below(4) {
                    0 => m[at] ^= 1 << rng.below(8),
                    1 => m[at] = SYNTAX[rng.below(SYNTAX.len())],
                    2 => m.insert(at, SYNTAX[rng.below(SYNTAX.len())]),
                    _ => {
                        m.remove(at);
                    }
                }
            }
            check(&name, &m);
        }
    }
    assert!(
        start.elapsed() < Duration::from_secs(120),
        "too slow: {:?}",
        start.elapsed()
    );
}

#[test]
fn pathological_nesting_is_bounded() {
    let n = 20_000;
    let cases = [
        format!("route {{ if ({}1{}) exit; }}", "(".repeat(n), ")".repeat(n)),
        format!("route {{ if ({}1) exit; }}", "!".repeat(n)),
        format!("route {{ $var(x) = {}1; }}", "~".repeat(n)),
        format!("route {{ {} }}", "if (1) ".repeat(n)),
        format!("route {{ {} }}", "{".repeat(n)),
        format!("route {{ $var(x) = 1{}; }}", " + 1".repeat(n)),
        format!("route {{ if (a(){}) exit; }}", " && a()".repeat(n)),
        format!(
            "route {{ $var(x) = {}; }}",
            "$avp(".repeat(2000) + &")".repeat(2000)
        ),
        format!("route {{ xlog(\"{}\"); }}", "$(".repeat(n)),
        "/*".repeat(n),
        "\"".repeat(n),
        "$".repeat(n),
        "route[".repeat(n),
    ];
    for (i, c) in cases.iter().enumerate() {
        // run on a thread with a modest stack to prove recursion is bounded
        let c = c.clone();
        let h = std::thread::Builder::new()
            .stack_size(4 * 1024 * 1024)
            .spawn(move || check("deep.cfg", c.as_bytes()))
            .unwrap();
        assert!(h.join().is_ok(), "case {i} panicked or overflowed");
    }
}
