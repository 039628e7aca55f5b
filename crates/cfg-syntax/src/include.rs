//! `include_file` / `import_file` expansion.
//!
//! As in OpenSIPS (`cfg_pp.c`), a directive is only recognised at the very start of a line:
//! `include_file "path"` or `import_file 'path'`; the rest of that line is ignored and the
//! file's text is inserted in its place. A relative path is first tried against the working
//! directory, then against the directory of the including file. Nesting deeper than the
//! limit (50 by default) is an error, which also catches include loops.

use std::path::{Path, PathBuf};

use crate::Options;
use crate::diag::Diagnostic;
use crate::source::{FileId, Flat, SourceMap, Span};

const DIRECTIVES: &[&str] = &["include_file", "import_file"];

/// A recognised directive on one line.
struct Directive<'a> {
    import: bool,
    path: &'a str,
    /// Byte offset of the path inside the line.
    path_off: usize,
}

fn directive(line: &str) -> Option<Directive<'_>> {
    let kw = DIRECTIVES.iter().find(|d| line.starts_with(**d))?;
    let rest = &line[kw.len()..];
    let trimmed = rest.trim_start();
    let ws = rest.len() - trimmed.len();
    let quote = trimmed.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let body = &trimmed[1..];
    let end = body.find(quote)?;
    let path = &body[..end];
    if path.is_empty() || path.contains('\n') {
        return None;
    }
    Some(Directive {
        import: *kw == "import_file",
        path,
        path_off: kw.len() + ws + 1,
    })
}

pub(crate) struct Expander<'a> {
    pub(crate) map: &'a mut SourceMap,
    pub(crate) diags: &'a mut Vec<Diagnostic>,
    pub(crate) opts: &'a Options,
    pub(crate) cwd: PathBuf,
}

impl Expander<'_> {
    /// Flattens the already-registered file `root`.
    pub(crate) fn flatten(&mut self, root: FileId) -> Flat {
        let mut flat = Flat {
            fallback: root,
            ..Flat::default()
        };
        self.walk(root, 0, &mut flat);
        flat
    }

    fn walk(&mut self, fid: FileId, depth: usize, flat: &mut Flat) {
        let Some(file) = self.map.file(fid) else {
            return;
        };
        let text = file.text.clone();
        let dir = file
            .path
            .as_deref()
            .and_then(Path::parent)
            .map_or_else(|| self.cwd.clone(), Path::to_path_buf);
        let dir = if dir.as_os_str().is_empty() {
            self.cwd.clone()
        } else {
            dir
        };
        let mut off = 0;
        for line in text.split_inclusive('\n') {
            let line_off = off;
            off += line.len();
            let Some(d) = directive(line) else {
                flat.push(fid, line_off, line);
                continue;
            };
            let lo = u32::try_from(line_off + d.path_off).unwrap_or(u32::MAX);
            let span = Span::new(
                fid,
                lo,
                lo.saturating_add(u32::try_from(d.path.len()).unwrap_or(0)),
            );
            if depth + 1 > self.opts.max_include_depth {
                self.diags.push(
                    Diagnostic::error(
                        span,
                        format!(
                            "maximum include depth ({}) reached",
                            self.opts.max_include_depth
                        ),
                    )
                    .with_found(d.path)
                    .with_hint("is there an include_file loop?"),
                );
                continue;
            }
            let resolved = self.resolve(d.path, &dir);
            match std::fs::read(&resolved) {
                Ok(bytes) => {
                    let mut body = String::from_utf8_lossy(&bytes).into_owned();
                    let missing_nl = !body.is_empty() && !body.ends_with('\n');
                    if missing_nl {
                        body.push('\n');
                    }
                    let name = resolved.display().to_string();
                    let child = self.map.add(name, Some(resolved), body);
                    self.walk(child, depth + 1, flat);
                }
                Err(e) => {
                    let what = if d.import {
                        "import_file"
                    } else {
                        "include_file"
                    };
                    let msg = format!("cannot open {what} '{}': {e}", d.path);
                    if d.import && self.opts.tolerate_missing_import {
                        self.diags
                            .push(Diagnostic::warning(span, msg).with_found(d.path));
                    } else {
                        self.diags.push(
                            Diagnostic::error(span, msg)
                                .with_found(d.path)
                                .with_hint(format!(
                                    "relative paths are tried against the working directory, then against {}",
                                    dir.display()
                                )),
                        );
                    }
                }
            }
        }
    }

    fn resolve(&self, p: &str, dir: &Path) -> PathBuf {
        let path = Path::new(p);
        if path.is_absolute() {
            return path.to_path_buf();
        }
        let from_cwd = self.cwd.join(path);
        if from_cwd.exists() {
            return from_cwd;
        }
        dir.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::directive;

    #[test]
    fn recognises_directives_only_at_line_start() {
        let d = directive("include_file \"a.cfg\" # trailing\n").unwrap();
        assert_eq!(d.path, "a.cfg");
        assert!(!d.import);
        assert_eq!(d.path_off, 14);
        let d = directive("import_file 'b/c.cfg'\n").unwrap();
        assert!(d.import);
        assert_eq!(d.path, "b/c.cfg");
        assert!(directive("  include_file \"a.cfg\"\n").is_none());
        assert!(directive("include_file a.cfg\n").is_none());
        assert!(directive("include_file \"\"\n").is_none());
        assert!(directive("include_file \"open\n").is_none());
    }
}
