//! `sipox-cfg-syntax` owns the syntax of OpenSIPS 3.5 configuration files: lexing, parsing,
//! `include_file`/`import_file` expansion, the optional external preprocessor, and an AST
//! with spans plus diagnostics that point at `file:line:col`.
//! It must not depend on anything SIP-related or on the script compiler/interpreter: it only
//! knows the shape of the language, never what a function or variable means.
//!
//! ```
//! let parsed = sipox_cfg_syntax::parse_str("main.cfg", "log_level = 3\nroute { exit; }\n");
//! assert!(parsed.diagnostics.is_empty());
//! let cfg = parsed.config().unwrap();
//! assert_eq!(cfg.items.len(), 2);
//! ```

mod ast;
mod diag;
mod include;
mod lexer;
mod parser;
mod preprocess;
mod source;
mod summary;
mod var;

use std::path::{Path, PathBuf};

pub use ast::*;
pub use diag::{Diagnostic, Severity, render_all};
pub use lexer::{Token, TokenKind, tokenize};
pub use parser::KNOWN_PROTOS;
pub use preprocess::{PreprocessError, run_preprocessor};
pub use source::{FileId, Location, SourceFile, SourceMap, Span};
pub use summary::{expr as expr_summary, format as format_summary, var as var_summary};
pub use var::{Format, FormatPart, ScriptVar, Transform, VarIndex, parse_format, parse_var};

use crate::source::Flat;

/// Parsing options.
#[derive(Debug, Clone)]
pub struct Options {
    /// External preprocessor command (`opensips -p CMD`), e.g. `"m4"` or `"cpp -P"`. It
    /// runs on the text after include expansion, as OpenSIPS does.
    pub preprocessor: Option<String>,
    /// Maximum `include_file` nesting (OpenSIPS: 50).
    pub max_include_depth: usize,
    /// Directory relative include paths are tried against first (default: the process's
    /// working directory).
    pub cwd: Option<PathBuf>,
    /// Turn a missing `import_file` into a warning instead of an error. OpenSIPS treats
    /// both directives alike (a missing file is fatal), hence off by default.
    pub tolerate_missing_import: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            preprocessor: None,
            max_include_depth: 50,
            cwd: None,
            tolerate_missing_import: false,
        }
    }
}

/// Result of parsing: the (possibly partial) tree, every diagnostic, and the sources
/// needed to render them.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The tree; partial when there are errors (statements that failed are left out).
    pub ast: Config,
    /// All errors and warnings, in source order of discovery.
    pub diagnostics: Vec<Diagnostic>,
    /// Every text that was read.
    pub sources: SourceMap,
}

impl Parsed {
    /// True when at least one diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The configuration, or `None` if there were errors.
    pub fn config(&self) -> Option<&Config> {
        (!self.has_errors()).then_some(&self.ast)
    }

    /// Splits into the configuration (`None` on errors) and the diagnostics.
    pub fn into_parts(self) -> (Option<Config>, Vec<Diagnostic>, SourceMap) {
        let ok = !self.has_errors();
        (ok.then_some(self.ast), self.diagnostics, self.sources)
    }

    /// Every diagnostic rendered with source lines and carets.
    pub fn render_diagnostics(&self) -> String {
        render_all(&self.diagnostics, &self.sources)
    }

    /// `file:line:col: severity: message` for each diagnostic.
    pub fn headlines(&self) -> Vec<String> {
        self.diagnostics
            .iter()
            .map(|d| d.headline(&self.sources))
            .collect()
    }
}

fn cwd_of(opts: &Options) -> PathBuf {
    opts.cwd
        .clone()
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Parses text with default options (includes resolved against the working directory).
pub fn parse_str(name: &str, text: &str) -> Parsed {
    parse_str_with(name, text, &Options::default())
}

/// Parses text with options; `name` is used in diagnostics and include resolution treats
/// the text as living in `opts.cwd`.
pub fn parse_str_with(name: &str, text: &str, opts: &Options) -> Parsed {
    let mut sources = SourceMap::new();
    let root = sources.add(name, None, text.to_owned());
    run(sources, root, name, opts, Vec::new())
}

/// Reads and parses a configuration file, expanding includes and running the
/// preprocessor if one is configured.
pub fn parse_file(path: &Path, opts: &Options) -> Parsed {
    let mut sources = SourceMap::new();
    let name = path.display().to_string();
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd_of(opts).join(path)
    };
    match std::fs::read(&full) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let root = sources.add(name.clone(), Some(full), text);
            run(sources, root, &name, opts, Vec::new())
        }
        Err(e) => {
            let root = sources.add(name.clone(), Some(full), String::new());
            let d = Diagnostic::error(Span::new(root, 0, 0), format!("cannot read {name}: {e}"));
            Parsed {
                ast: Config::default(),
                diagnostics: vec![d],
                sources,
            }
        }
    }
}

fn run(
    mut sources: SourceMap,
    root: FileId,
    name: &str,
    opts: &Options,
    mut diagnostics: Vec<Diagnostic>,
) -> Parsed {
    let mut flat = include::Expander {
        map: &mut sources,
        diags: &mut diagnostics,
        opts,
        cwd: cwd_of(opts),
    }
    .flatten(root);
    if let Some(cmd) = &opts.preprocessor {
        match run_preprocessor(cmd, &flat.text) {
            Ok(out) => {
                let pp_name = format!("{name} (after '{cmd}')");
                let id = sources.add(pp_name, None, out.clone());
                flat = Flat::single(id, out);
            }
            Err(e) => {
                diagnostics.push(Diagnostic::error(Span::new(root, 0, 0), e.to_string()));
                return Parsed {
                    ast: Config::default(),
                    diagnostics,
                    sources,
                };
            }
        }
    }
    let (toks, lex_diags) = lexer::lex(&flat);
    diagnostics.extend(lex_diags);
    let (ast, parse_diags) = parser::parse(toks, &flat);
    diagnostics.extend(parse_diags);
    diagnostics.sort_by_key(|d| (d.span.file, d.span.start));
    Parsed {
        ast,
        diagnostics,
        sources,
    }
}
