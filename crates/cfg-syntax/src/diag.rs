//! Diagnostics: what went wrong, where, and how to render it.

use std::fmt::Write as _;

use crate::source::{Location, SourceMap, Span};

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The configuration is rejected.
    Error,
    /// Accepted, but worth a look.
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

/// One problem found while reading a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where.
    pub span: Span,
    /// What went wrong (one line, no trailing period).
    pub message: String,
    /// The offending source text, when there is any.
    pub found: Option<String>,
    /// A suggestion for fixing it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A new error.
    pub fn error(span: Span, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            span,
            message: message.into(),
            found: None,
            hint: None,
        }
    }

    /// A new warning.
    pub fn warning(span: Span, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(span, message)
        }
    }

    /// Attaches the offending text.
    #[must_use]
    pub fn with_found(mut self, found: impl Into<String>) -> Self {
        self.found = Some(found.into());
        self
    }

    /// Attaches a hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:col: error: message` (no trailing newline).
    pub fn headline(&self, map: &SourceMap) -> String {
        let Location { file, line, col } = map.location(self.span);
        format!(
            "{file}:{line}:{col}: {}: {}",
            self.severity.as_str(),
            self.message
        )
    }

    /// Full rendering: headline, the source line, a caret under the span, and the hint.
    pub fn render(&self, map: &SourceMap) -> String {
        let mut out = self.headline(map);
        out.push('\n');
        let loc = map.location(self.span);
        if let Some(file) = map.file(self.span.file) {
            let line = file.line_text(loc.line);
            let _ = writeln!(out, "  | {line}");
            let pad: String = line
                .chars()
                .take(loc.col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let width = map
                .snippet(self.span)
                .lines()
                .next()
                .map_or(1, |s| s.chars().count());
            let avail = line
                .chars()
                .count()
                .saturating_sub(loc.col.saturating_sub(1));
            let tildes = width.clamp(1, avail.max(1)) - 1;
            let _ = writeln!(out, "  | {pad}^{}", "~".repeat(tildes));
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "  = hint: {hint}");
        }
        out
    }
}

/// Renders every diagnostic, in order.
pub fn render_all(diags: &[Diagnostic], map: &SourceMap) -> String {
    diags.iter().map(|d| d.render(map)).collect()
}
