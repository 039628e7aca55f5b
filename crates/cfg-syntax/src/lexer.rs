//! Tokenizer for the OpenSIPS configuration language.
//!
//! Comments (`#`, nestable `/* */`) and whitespace (including `\` line continuations) are
//! skipped. Keywords are returned as [`TokenKind::Ident`]; the parser decides what they
//! mean, except for the word operators `and`, `or`, `not`.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::diag::Diagnostic;
use crate::source::{Flat, Span};

/// Assignment operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignOp {
    /// `=`
    Set,
    /// `:=`
    SetAll,
    /// `+=`
    Add,
    /// `-=`
    Sub,
    /// `*=`
    Mul,
    /// `/=`
    Div,
    /// `%=`
    Mod,
    /// `&=`
    BitAnd,
    /// `|=`
    BitOr,
    /// `^=`
    BitXor,
}

impl AssignOp {
    /// Source spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Set => "=",
            Self::SetAll => ":=",
            Self::Add => "+=",
            Self::Sub => "-=",
            Self::Mul => "*=",
            Self::Div => "/=",
            Self::Mod => "%=",
            Self::BitAnd => "&=",
            Self::BitOr => "|=",
            Self::BitXor => "^=",
        }
    }
}

/// Kinds of tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// Identifier or keyword: `[A-Za-z_][A-Za-z0-9_]*` (plus the special `mem-group`).
    Ident(String),
    /// Decimal, `0x` hex or `0` octal number (never negative; `-` is separate).
    Int(i64),
    /// String literal after escape processing; `raw` for single-quoted strings.
    Str {
        /// Decoded value.
        value: String,
        /// Single-quoted (no escapes).
        raw: bool,
    },
    /// A whole script variable, e.g. `$(avp(x)[1]{s.len})`; the text is the source spelling.
    Var(String),
    /// IPv4 address.
    Ipv4(String),
    /// IPv6 address (without brackets).
    Ipv6(String),
    /// IP network `addr/len` or `addr/mask`.
    IpNet(String),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `,`
    Comma,
    /// `;`
    Semi,
    /// `:`
    Colon,
    /// `.`
    Dot,
    /// Any assignment operator.
    Assign(AssignOp),
    /// `==`
    EqEq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `=~`
    Match,
    /// `!~`
    NotMatch,
    /// `!` or `not`
    Not,
    /// `&&` or `and`
    AndAnd,
    /// `||` or `or`
    OrOr,
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// `*`
    Star,
    /// `/`
    Slash,
    /// `%`
    Percent,
    /// `&`
    Amp,
    /// `|`
    Pipe,
    /// `^`
    Caret,
    /// `~`
    Tilde,
    /// `<<`
    Shl,
    /// `>>`
    Shr,
    /// End of input.
    Eof,
}

impl TokenKind {
    /// Short description for diagnostics.
    pub fn describe(&self) -> String {
        match self {
            Self::Ident(s) => format!("'{s}'"),
            Self::Int(n) => format!("number {n}"),
            Self::Str { .. } => "string".to_owned(),
            Self::Var(v) => format!("variable {v}"),
            Self::Ipv4(s) | Self::Ipv6(s) => format!("address {s}"),
            Self::IpNet(s) => format!("network {s}"),
            Self::Eof => "end of input".to_owned(),
            other => format!("'{}'", other.punct()),
        }
    }

    fn punct(&self) -> &'static str {
        match self {
            Self::LParen => "(",
            Self::RParen => ")",
            Self::LBrace => "{",
            Self::RBrace => "}",
            Self::LBracket => "[",
            Self::RBracket => "]",
            Self::Comma => ",",
            Self::Semi => ";",
            Self::Colon => ":",
            Self::Dot => ".",
            Self::Assign(op) => op.as_str(),
            Self::EqEq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Match => "=~",
            Self::NotMatch => "!~",
            Self::Not => "!",
            Self::AndAnd => "&&",
            Self::OrOr => "||",
            Self::Plus => "+",
            Self::Minus => "-",
            Self::Star => "*",
            Self::Slash => "/",
            Self::Percent => "%",
            Self::Amp => "&",
            Self::Pipe => "|",
            Self::Caret => "^",
            Self::Tilde => "~",
            Self::Shl => "<<",
            Self::Shr => ">>",
            _ => "?",
        }
    }
}

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Where it is, in its original file.
    pub span: Span,
    /// Byte range in the lexed (flattened) text.
    pub lo: usize,
    /// End of the byte range in the lexed text.
    pub hi: usize,
    /// First token on its line.
    pub line_start: bool,
    /// Whitespace or a comment precedes it.
    pub space_before: bool,
}

/// Tokenizes a single text registered as `file`. Convenience for tests and tools.
pub fn tokenize(file: crate::source::FileId, text: &str) -> (Vec<Token>, Vec<Diagnostic>) {
    let flat = Flat::single(file, text.to_owned());
    lex(&flat)
}

pub(crate) fn lex(flat: &Flat) -> (Vec<Token>, Vec<Diagnostic>) {
    let mut lx = Lexer {
        src: flat.text.as_bytes(),
        text: &flat.text,
        pos: 0,
        flat,
        toks: Vec::new(),
        diags: Vec::new(),
        line_start: true,
        space_before: true,
    };
    lx.run();
    (lx.toks, lx.diags)
}

struct Lexer<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    flat: &'a Flat,
    toks: Vec<Token>,
    diags: Vec<Diagnostic>,
    line_start: bool,
    space_before: bool,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Length of the script variable starting at `s[0] == b'$'`, or an error message.
pub(crate) fn var_extent(s: &[u8]) -> Result<usize, &'static str> {
    if s.first() != Some(&b'$') {
        return Err("script variable must start with '$'");
    }
    let mut i = 1;
    if s.get(1) == Some(&b'(') {
        return match_close(s, 1).ok_or("unterminated script variable: missing ')'");
    }
    let start = i;
    while i < s.len() {
        let c = s[i];
        if is_ident_char(c) || (c == b'.' && s.get(i + 1).is_some_and(|n| is_ident_start(*n))) {
            i += 1;
        } else {
            break;
        }
    }
    if i == start || !is_ident_start(s[start]) {
        return Err("invalid script variable name");
    }
    if s.get(i) == Some(&b'(') {
        i = match_close(s, i).ok_or("unterminated script variable: missing ')'")?;
    }
    if s.get(i) == Some(&b'[') {
        i = match_close(s, i).ok_or("unterminated script variable index: missing ']'")?;
    }
    Ok(i)
}

/// Given `s[open]` is an opening bracket, returns the index just past its matching closer.
/// Parentheses, brackets and braces nest; newlines end the search.
fn match_close(s: &[u8], open: usize) -> Option<usize> {
    let mut stack: Vec<u8> = Vec::new();
    let mut i = open;
    while i < s.len() {
        let c = s[i];
        match c {
            b'(' => stack.push(b')'),
            b'[' => stack.push(b']'),
            b'{' => stack.push(b'}'),
            b')' | b']' | b'}' => {
                if stack.last() == Some(&c) {
                    stack.pop();
                    if stack.is_empty() {
                        return Some(i + 1);
                    }
                } else if !stack.contains(&c) {
                    // stray closer inside: tolerate it as text (e.g. regex in a transformation)
                } else {
                    return None;
                }
            }
            b'\n' => return None,
            _ => {}
        }
        i += 1;
    }
    None
}

impl Lexer<'_> {
    fn peek(&self, off: usize) -> u8 {
        self.src.get(self.pos + off).copied().unwrap_or(0)
    }

    fn span(&self, lo: usize, hi: usize) -> Span {
        self.flat.span(lo, hi)
    }

    fn push(&mut self, kind: TokenKind, lo: usize) {
        let span = self.span(lo, self.pos);
        self.toks.push(Token {
            kind,
            span,
            lo,
            hi: self.pos,
            line_start: self.line_start,
            space_before: self.space_before,
        });
        self.line_start = false;
        self.space_before = false;
    }

    fn error(&mut self, lo: usize, hi: usize, msg: impl Into<String>) -> &mut Diagnostic {
        let found = self.text.get(lo..hi).unwrap_or("").to_owned();
        let d = Diagnostic::error(self.span(lo, hi), msg).with_found(found);
        self.diags.push(d);
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    fn run(&mut self) {
        while self.pos < self.src.len() {
            let before = self.pos;
            self.step();
            if self.pos == before {
                // never loop: skip one char
                self.pos += self.text[self.pos..]
                    .chars()
                    .next()
                    .map_or(1, char::len_utf8);
            }
        }
        let end = self.src.len();
        let span = self.span(end, end);
        self.toks.push(Token {
            kind: TokenKind::Eof,
            span,
            lo: end,
            hi: end,
            line_start: true,
            space_before: true,
        });
    }

    fn step(&mut self) {
        let c = self.peek(0);
        let lo = self.pos;
        match c {
            b'\n' => {
                self.pos += 1;
                self.line_start = true;
                self.space_before = true;
            }
            b' ' | b'\t' | b'\r' | 0x08 | 0x0c => {
                self.pos += 1;
                self.space_before = true;
            }
            b'\\' if matches!(self.peek(1), b'\n') => {
                self.pos += 2;
                self.space_before = true;
            }
            b'\\' if self.peek(1) == b'\r' && self.peek(2) == b'\n' => {
                self.pos += 3;
                self.space_before = true;
            }
            b'#' => {
                while self.pos < self.src.len() && self.src[self.pos] != b'\n' {
                    self.pos += 1;
                }
                self.space_before = true;
            }
            b'/' if self.peek(1) == b'*' => self.block_comment(),
            b'"' => self.dq_string(),
            b'\'' => self.sq_string(),
            b'$' => self.var(),
            b'0'..=b'9' => self.number_or_ip(),
            b':' if self.peek(1) == b':' => {
                if !self.try_ipv6() {
                    self.pos += 1;
                    self.push(TokenKind::Colon, lo);
                }
            }
            c if c.is_ascii_hexdigit() && self.try_ipv6() => {}
            c if is_ident_start(c) => self.ident(),
            _ => self.punct(),
        }
    }

    fn block_comment(&mut self) {
        let lo = self.pos;
        self.pos += 2;
        let mut depth = 1usize;
        while self.pos < self.src.len() {
            if self.peek(0) == b'/' && self.peek(1) == b'*' {
                depth += 1;
                self.pos += 2;
            } else if self.peek(0) == b'*' && self.peek(1) == b'/' {
                depth -= 1;
                self.pos += 2;
                if depth == 0 {
                    self.space_before = true;
                    return;
                }
            } else {
                if self.peek(0) == b'\n' {
                    self.line_start = true;
                }
                self.pos += 1;
            }
        }
        self.error(lo, lo + 2, "unterminated comment").hint =
            Some("every '/*' needs a matching '*/' (comments nest)".to_owned());
    }

    fn dq_string(&mut self) {
        let lo = self.pos;
        self.pos += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            if self.pos >= self.src.len() {
                self.error(lo, lo + 1, "unterminated string").hint =
                    Some("add the closing '\"'".to_owned());
                break;
            }
            let c = self.src[self.pos];
            match c {
                b'"' => {
                    self.pos += 1;
                    break;
                }
                b'\\' => {
                    let e = self.peek(1);
                    self.pos += 2;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'a' => out.push(0x07),
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'\n' => {}
                        b'x' => {
                            let mut v: u32 = 0;
                            let mut n = 0;
                            while n < 2 && self.peek(0).is_ascii_hexdigit() {
                                v = v * 16 + u32::from(hex_val(self.peek(0)));
                                self.pos += 1;
                                n += 1;
                            }
                            if n == 0 {
                                out.extend_from_slice(b"\\x");
                            } else {
                                out.push(u8::try_from(v).unwrap_or(b'?'));
                            }
                        }
                        b'0'..=b'7' => {
                            let mut v: u32 = u32::from(e - b'0');
                            let mut n = 1;
                            while n < 3 && (b'0'..=b'7').contains(&self.peek(0)) {
                                v = v * 8 + u32::from(self.peek(0) - b'0');
                                self.pos += 1;
                                n += 1;
                            }
                            out.push(u8::try_from(v & 0xff).unwrap_or(b'?'));
                        }
                        0 => {
                            self.pos = self.src.len();
                        }
                        other => {
                            // unknown escape: keep both characters (OpenSIPS keeps them too)
                            out.push(b'\\');
                            self.pos -= 1;
                            let _ = other;
                        }
                    }
                }
                _ => {
                    if c == b'\n' {
                        self.line_start = true;
                    }
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        let value = String::from_utf8_lossy(&out).into_owned();
        self.push(TokenKind::Str { value, raw: false }, lo);
    }

    fn sq_string(&mut self) {
        let lo = self.pos;
        self.pos += 1;
        let start = self.pos;
        while self.pos < self.src.len() && self.src[self.pos] != b'\'' {
            self.pos += 1;
        }
        let value = self.text.get(start..self.pos).unwrap_or("").to_owned();
        if self.pos >= self.src.len() {
            self.error(lo, lo + 1, "unterminated string").hint =
                Some("add the closing \"'\"".to_owned());
        } else {
            self.pos += 1;
        }
        self.push(TokenKind::Str { value, raw: true }, lo);
    }

    fn var(&mut self) {
        let lo = self.pos;
        match var_extent(&self.src[lo..]) {
            Ok(len) => {
                self.pos = lo + len;
                let text = self.text.get(lo..self.pos).unwrap_or("$").to_owned();
                self.push(TokenKind::Var(text), lo);
            }
            Err(msg) => {
                // skip to the end of the name-ish run (or the line for unterminated ones)
                let mut end = lo + 1;
                if msg.starts_with("unterminated") {
                    while end < self.src.len() && self.src[end] != b'\n' {
                        end += 1;
                    }
                } else {
                    while end < self.src.len() && is_ident_char(self.src[end]) {
                        end += 1;
                    }
                }
                self.error(lo, end, msg);
                self.pos = end;
                self.push(TokenKind::Var(self.text[lo..end].to_owned()), lo);
            }
        }
    }

    fn ident(&mut self) {
        let lo = self.pos;
        while self.pos < self.src.len() && is_ident_char(self.src[self.pos]) {
            self.pos += 1;
        }
        let word = &self.text[lo..self.pos];
        if word == "mem" && self.src[self.pos..].starts_with(b"-group") {
            self.pos += 6;
        }
        let word = &self.text[lo..self.pos];
        let kind = match word {
            "and" => TokenKind::AndAnd,
            "or" => TokenKind::OrOr,
            "not" => TokenKind::Not,
            _ => TokenKind::Ident(word.to_owned()),
        };
        self.push(kind, lo);
    }

    /// Tries to lex an IPv6 address (optionally a network) at the current position.
    fn try_ipv6(&mut self) -> bool {
        let lo = self.pos;
        let mut i = lo;
        let mut colons = 0;
        let mut double = false;
        while i < self.src.len() {
            let c = self.src[i];
            if c.is_ascii_hexdigit() {
                i += 1;
            } else if c == b':' {
                if self.src.get(i + 1) == Some(&b':') {
                    if double {
                        break;
                    }
                    double = true;
                }
                colons += 1;
                i += 1;
            } else if c == b'.' && colons >= 2 {
                // embedded IPv4 tail
                i += 1;
            } else {
                break;
            }
        }
        if self.src.get(i).is_some_and(|c| is_ident_char(*c)) {
            return false;
        }
        if !(double || colons == 7) {
            return false;
        }
        let cand = &self.text[lo..i];
        if cand.parse::<Ipv6Addr>().is_err() {
            return false;
        }
        self.pos = i;
        if let Some(net_end) = self.net_suffix() {
            self.pos = net_end;
            let t = self.text[lo..net_end].to_owned();
            self.push(TokenKind::IpNet(t), lo);
        } else {
            self.push(TokenKind::Ipv6(cand.to_owned()), lo);
        }
        true
    }

    /// If the input at `pos` is `/len` or `/mask`, returns the end of it.
    fn net_suffix(&self) -> Option<usize> {
        if self.peek(0) != b'/' {
            return None;
        }
        let start = self.pos + 1;
        let mut i = start;
        while i < self.src.len()
            && (self.src[i].is_ascii_hexdigit() || self.src[i] == b'.' || self.src[i] == b':')
        {
            i += 1;
        }
        if i == start || self.src.get(i).is_some_and(|c| is_ident_char(*c)) {
            return None;
        }
        let mask = &self.text[start..i];
        let ok = mask.parse::<u8>().is_ok()
            || mask.parse::<Ipv4Addr>().is_ok()
            || mask.parse::<Ipv6Addr>().is_ok();
        ok.then_some(i)
    }

    fn number_or_ip(&mut self) {
        let lo = self.pos;
        // dotted quad?
        let mut i = lo;
        let mut dots = 0;
        while i < self.src.len() && (self.src[i].is_ascii_digit() || self.src[i] == b'.') {
            if self.src[i] == b'.' {
                if !self.src.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    break;
                }
                dots += 1;
            }
            i += 1;
        }
        if dots == 3 && !self.src.get(i).is_some_and(|c| is_ident_char(*c)) {
            let cand = &self.text[lo..i];
            self.pos = i;
            if cand.parse::<Ipv4Addr>().is_err() {
                self.error(lo, i, "bad IPv4 address");
            }
            if let Some(net_end) = self.net_suffix() {
                self.pos = net_end;
                let t = self.text[lo..net_end].to_owned();
                self.push(TokenKind::IpNet(t), lo);
            } else {
                self.push(TokenKind::Ipv4(cand.to_owned()), lo);
            }
            return;
        }
        if self.try_ipv6() {
            return;
        }
        // plain number
        let (value, end) = if self.peek(0) == b'0' && matches!(self.peek(1), b'x' | b'X') {
            let mut j = lo + 2;
            while j < self.src.len() && self.src[j].is_ascii_hexdigit() {
                j += 1;
            }
            (i64::from_str_radix(&self.text[lo + 2..j], 16), j)
        } else {
            let mut j = lo;
            while j < self.src.len() && self.src[j].is_ascii_digit() {
                j += 1;
            }
            let digits = &self.text[lo..j];
            if digits.len() > 1 && digits.starts_with('0') {
                (i64::from_str_radix(&digits[1..], 8), j)
            } else {
                (digits.parse::<i64>(), j)
            }
        };
        self.pos = end;
        match value {
            Ok(v) => self.push(TokenKind::Int(v), lo),
            Err(_) => {
                self.error(lo, end, "invalid number").hint = Some(
                    "numbers are decimal, 0x-prefixed hex or 0-prefixed octal and must fit in 64 bits"
                        .to_owned(),
                );
                self.push(TokenKind::Int(0), lo);
            }
        }
    }

    fn punct(&mut self) {
        use TokenKind as T;
        let lo = self.pos;
        let c = self.peek(0);
        let n = self.peek(1);
        let (kind, len) = match (c, n) {
            (b'=', b'=') => (T::EqEq, 2),
            (b'=', b'~') => (T::Match, 2),
            (b'!', b'=') => (T::Ne, 2),
            (b'!', b'~') => (T::NotMatch, 2),
            (b'<', b'=') => (T::Le, 2),
            (b'>', b'=') => (T::Ge, 2),
            (b'<', b'<') => (T::Shl, 2),
            (b'>', b'>') => (T::Shr, 2),
            (b'&', b'&') => (T::AndAnd, 2),
            (b'|', b'|') => (T::OrOr, 2),
            (b':', b'=') => (T::Assign(AssignOp::SetAll), 2),
            (b'+', b'=') => (T::Assign(AssignOp::Add), 2),
            (b'-', b'=') => (T::Assign(AssignOp::Sub), 2),
            (b'*', b'=') => (T::Assign(AssignOp::Mul), 2),
            (b'/', b'=') => (T::Assign(AssignOp::Div), 2),
            (b'%', b'=') => (T::Assign(AssignOp::Mod), 2),
            (b'&', b'=') => (T::Assign(AssignOp::BitAnd), 2),
            (b'|', b'=') => (T::Assign(AssignOp::BitOr), 2),
            (b'^', b'=') => (T::Assign(AssignOp::BitXor), 2),
            (b'=', _) => (T::Assign(AssignOp::Set), 1),
            (b'<', _) => (T::Lt, 1),
            (b'>', _) => (T::Gt, 1),
            (b'!', _) => (T::Not, 1),
            (b'(', _) => (T::LParen, 1),
            (b')', _) => (T::RParen, 1),
            (b'{', _) => (T::LBrace, 1),
            (b'}', _) => (T::RBrace, 1),
            (b'[', _) => (T::LBracket, 1),
            (b']', _) => (T::RBracket, 1),
            (b',', _) => (T::Comma, 1),
            (b';', _) => (T::Semi, 1),
            (b':', _) => (T::Colon, 1),
            (b'.', _) => (T::Dot, 1),
            (b'+', _) => (T::Plus, 1),
            (b'-', _) => (T::Minus, 1),
            (b'*', _) => (T::Star, 1),
            (b'/', _) => (T::Slash, 1),
            (b'%', _) => (T::Percent, 1),
            (b'&', _) => (T::Amp, 1),
            (b'|', _) => (T::Pipe, 1),
            (b'^', _) => (T::Caret, 1),
            (b'~', _) => (T::Tilde, 1),
            _ => {
                let len = self.text[lo..].chars().next().map_or(1, char::len_utf8);
                self.error(lo, lo + len, "unexpected character");
                self.pos += len;
                self.space_before = true;
                return;
            }
        };
        self.pos += len;
        self.push(kind, lo);
    }
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}
