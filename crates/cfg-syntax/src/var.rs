//! Structured script variables (`$ru`, `$avp(x)`, `$(hdr(Via)[1]{s.len})`, …) and format
//! strings (text with embedded variables).

use crate::diag::Diagnostic;
use crate::lexer::var_extent;
use crate::source::{Flat, Span};

/// Most variables one variable's text may contain (bounds recursion).
const MAX_NESTED_VARS: usize = 64;

/// A script (pseudo-)variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptVar {
    /// Source spelling.
    pub text: String,
    /// Where it is.
    pub span: Span,
    /// `request` / `reply` for `$(<request>ru)`.
    pub context: Option<String>,
    /// Class name: `ru`, `avp`, `var`, `hdr`, `err.class`, …
    pub class: String,
    /// Inner name, `x` in `$avp(x)`; may itself contain variables.
    pub name: Option<Format>,
    /// Index: `[0]`, `[-1]`, `[*]`, `[$var(i)]`.
    pub index: Option<VarIndex>,
    /// Transformations, applied left to right.
    pub transforms: Vec<Transform>,
    /// Written in the full `$( … )` form.
    pub full_form: bool,
}

/// An index of a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarIndex {
    /// `[N]` or `[-N]`.
    Int(i64),
    /// `[*]`.
    All,
    /// `[$var(i)]`.
    Var(Box<ScriptVar>),
    /// Any other word, e.g. `[append]`.
    Word(String),
}

/// One transformation `{class.method,param,…}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    /// `s` in `{s.len}`.
    pub class: String,
    /// `len` in `{s.len}`.
    pub method: String,
    /// Parameters (each may contain variables), split at top-level commas.
    pub params: Vec<Format>,
    /// Everything after the first comma, verbatim, for transformations whose parameters
    /// may themselves contain commas (`{s.select,1,,}`).
    pub params_raw: Option<String>,
    /// Where it is.
    pub span: Span,
}

/// Text with embedded variables.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Format {
    /// Pieces in order.
    pub parts: Vec<FormatPart>,
}

/// A piece of a [`Format`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatPart {
    /// Literal text.
    Text(String),
    /// An embedded variable.
    Var(ScriptVar),
}

impl Format {
    /// True when the format has no variables.
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, FormatPart::Text(_)))
    }

    /// The literal text, if there are no variables.
    pub fn as_static(&self) -> Option<String> {
        self.is_static().then(|| {
            self.parts
                .iter()
                .map(|p| match p {
                    FormatPart::Text(t) => t.as_str(),
                    FormatPart::Var(_) => "",
                })
                .collect()
        })
    }

    /// The single variable, when the format is exactly one variable.
    pub fn as_var(&self) -> Option<&ScriptVar> {
        match self.parts.as_slice() {
            [FormatPart::Var(v)] => Some(v),
            _ => None,
        }
    }
}

/// Maps offsets inside a string to spans.
#[derive(Clone, Copy)]
pub(crate) enum Origin<'a> {
    /// The text sits verbatim in the flat input at this offset.
    Flat(&'a Flat, usize),
    /// The text is decoded (e.g. a string with escapes): every piece gets this span.
    Fixed(Span),
}

impl Origin<'_> {
    fn span(&self, lo: usize, hi: usize) -> Span {
        match *self {
            Origin::Flat(f, base) => f.span(base + lo, base + hi),
            Origin::Fixed(s) => s,
        }
    }
}

/// Parses a standalone variable spelling such as `$(avp(x)[1]{s.len})`.
///
/// Spans of the result point into a synthetic position; use this for tools and tests.
pub fn parse_var(text: &str) -> Result<ScriptVar, String> {
    let mut diags = Vec::new();
    let v = parse_var_at(text, Origin::Fixed(Span::default()), &mut diags);
    match diags.into_iter().next() {
        Some(d) => Err(d.message),
        None => Ok(v),
    }
}

/// Parses text with embedded variables (for example a string argument of `xlog`).
pub fn parse_format(text: &str) -> Format {
    let mut diags = Vec::new();
    parse_format_at(text, Origin::Fixed(Span::default()), &mut diags)
}

pub(crate) fn parse_format_at(
    text: &str,
    origin: Origin<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Format {
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    let mut lit_start = 0;
    while i < bytes.len() {
        if bytes[i] == b'$'
            && let Ok(len) = var_extent(&bytes[i..])
        {
            if i > lit_start {
                lit.push_str(&text[lit_start..i]);
            }
            if !lit.is_empty() {
                parts.push(FormatPart::Text(std::mem::take(&mut lit)));
            }
            let sub = sub_origin(origin, i);
            let v = parse_var_at(&text[i..i + len], sub, diags);
            parts.push(FormatPart::Var(v));
            i += len;
            lit_start = i;
            continue;
        }
        i += 1;
    }
    if lit_start < bytes.len() {
        lit.push_str(&text[lit_start..]);
    }
    if !lit.is_empty() {
        parts.push(FormatPart::Text(lit));
    }
    Format { parts }
}

fn sub_origin(origin: Origin<'_>, off: usize) -> Origin<'_> {
    match origin {
        Origin::Flat(f, base) => Origin::Flat(f, base + off),
        Origin::Fixed(s) => Origin::Fixed(s),
    }
}

/// Splits `s` at `sep` bytes that are outside any (), [], {} nesting.
fn split_top(s: &str, sep: u8) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, &c) in s.as_bytes().iter().enumerate() {
        match c {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            c if c == sep && depth <= 0 => {
                out.push((start, &s[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push((start, &s[start..]));
    out
}

/// Index just past the bracket matching `s[open]`, counting all bracket kinds.
fn close_of(s: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, &c) in s.iter().enumerate().skip(open) {
        match c {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

pub(crate) fn parse_var_at(
    text: &str,
    origin: Origin<'_>,
    diags: &mut Vec<Diagnostic>,
) -> ScriptVar {
    let span = origin.span(0, text.len());
    let mut v = ScriptVar {
        text: text.to_owned(),
        span,
        context: None,
        class: String::new(),
        name: None,
        index: None,
        transforms: Vec::new(),
        full_form: false,
    };
    let bytes = text.as_bytes();
    macro_rules! err {
        ($lo:expr, $hi:expr, $msg:expr) => {{
            let (lo, hi): (usize, usize) = ($lo, $hi);
            diags.push(
                Diagnostic::error(origin.span(lo, hi.max(lo + 1)), $msg)
                    .with_found(text.to_owned()),
            );
        }};
    }
    if bytes.first() != Some(&b'$') {
        err!(0, text.len(), "invalid script variable");
        return v;
    }
    if bytes.iter().filter(|b| **b == b'$').count() > MAX_NESTED_VARS {
        err!(0, text.len(), "script variable nested too deeply");
        return v;
    }
    // body range [b, e) and whether full form
    let (mut i, end) = if bytes.get(1) == Some(&b'(') {
        v.full_form = true;
        if !text.ends_with(')') {
            err!(0, text.len(), "unterminated script variable: missing ')'");
            return v;
        }
        (2, text.len() - 1)
    } else {
        (1, text.len())
    };
    // context
    if v.full_form && bytes.get(i) == Some(&b'<') {
        match text[i..end].find('>') {
            Some(rel) => {
                v.context = Some(text[i + 1..i + rel].to_owned());
                i += rel + 1;
            }
            None => {
                err!(i, end, "unterminated variable context: missing '>'");
                return v;
            }
        }
    }
    // class
    let cstart = i;
    while i < end
        && (bytes[i].is_ascii_alphanumeric()
            || bytes[i] == b'_'
            || (bytes[i] == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_alphabetic)))
    {
        i += 1;
    }
    if i == cstart || !(bytes[cstart].is_ascii_alphabetic() || bytes[cstart] == b'_') {
        err!(cstart, end, "invalid script variable name");
        return v;
    }
    v.class = text[cstart..i].to_owned();
    // inner name
    if i < end && bytes[i] == b'(' {
        let Some(close) = close_of(&bytes[..end], i) else {
            err!(i, end, "unterminated variable name: missing ')'");
            return v;
        };
        let inner = &text[i + 1..close - 1];
        v.name = Some(parse_format_at(inner, sub_origin(origin, i + 1), diags));
        i = close;
    }
    // index
    if i < end && bytes[i] == b'[' {
        let Some(close) = close_of(&bytes[..end], i) else {
            err!(i, end, "unterminated variable index: missing ']'");
            return v;
        };
        let inner = text[i + 1..close - 1].trim();
        let idx_origin = sub_origin(origin, i + 1);
        v.index = Some(if inner == "*" {
            VarIndex::All
        } else if let Ok(n) = inner.parse::<i64>() {
            VarIndex::Int(n)
        } else if inner.starts_with('$') {
            let lead = text[i + 1..close - 1].len() - text[i + 1..close - 1].trim_start().len();
            VarIndex::Var(Box::new(parse_var_at(
                inner,
                sub_origin(idx_origin, lead),
                diags,
            )))
        } else if !inner.is_empty()
            && inner
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            VarIndex::Word(inner.to_owned())
        } else {
            err!(i, close, "invalid variable index");
            VarIndex::Word(inner.to_owned())
        });
        i = close;
    }
    // transformations (full form only)
    while i < end && bytes[i] == b'{' && v.full_form {
        let Some(close) = close_of(&bytes[..end], i) else {
            err!(i, end, "unterminated transformation: missing '}'");
            return v;
        };
        let inner = &text[i + 1..close - 1];
        let pieces = split_top(inner, b',');
        let (_, spec) = pieces[0];
        let (class, method) = match spec.split_once('.') {
            Some((c, m)) if !c.is_empty() && !m.is_empty() => (c.trim(), m.trim()),
            _ => {
                err!(
                    i,
                    close,
                    "invalid transformation: expected {class.method[,params]}"
                );
                ("", spec.trim())
            }
        };
        let params = pieces[1..]
            .iter()
            .map(|(off, p)| parse_format_at(p, sub_origin(origin, i + 1 + off), diags))
            .collect();
        let params_raw = inner.split_once(',').map(|(_, r)| r.to_owned());
        v.transforms.push(Transform {
            class: class.to_owned(),
            method: method.to_owned(),
            params,
            params_raw,
            span: origin.span(i, close),
        });
        i = close;
    }
    if i < end {
        err!(i, end, "unexpected text in script variable");
    }
    v
}
