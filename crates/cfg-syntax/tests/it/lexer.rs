//! Lexer unit tests: one per token kind, plus comments, whitespace and errors.

use sipox_cfg_syntax::{AssignOp, FileId, TokenKind as T, tokenize};

fn kinds(src: &str) -> Vec<T> {
    let (toks, diags) = tokenize(FileId(0), src);
    assert!(
        diags.is_empty(),
        "unexpected diagnostics for {src:?}: {diags:?}"
    );
    toks.into_iter()
        .map(|t| t.kind)
        .filter(|k| *k != T::Eof)
        .collect()
}

fn one(src: &str) -> T {
    let k = kinds(src);
    assert_eq!(k.len(), 1, "{src:?} gave {k:?}");
    k.into_iter().next().expect("one token")
}

fn id(s: &str) -> T {
    T::Ident(s.to_owned())
}

fn s(v: &str) -> T {
    T::Str {
        value: v.to_owned(),
        raw: false,
    }
}

#[test]
fn identifiers_and_keywords() {
    assert_eq!(one("route"), id("route"));
    assert_eq!(one("t_relay"), id("t_relay"));
    assert_eq!(one("_x9"), id("_x9"));
    assert_eq!(one("mem-group"), id("mem-group"));
    assert_eq!(kinds("and or not"), vec![T::AndAnd, T::OrOr, T::Not]);
}

#[test]
fn numbers_decimal_hex_octal() {
    assert_eq!(one("0"), T::Int(0));
    assert_eq!(one("5060"), T::Int(5060));
    assert_eq!(one("0x1F"), T::Int(31));
    assert_eq!(one("0755"), T::Int(493));
    assert_eq!(kinds("-12"), vec![T::Minus, T::Int(12)]);
    let (_, diags) = tokenize(FileId(0), "99999999999999999999");
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].message, "invalid number");
}

#[test]
fn double_quoted_strings_with_escapes() {
    assert_eq!(one(r#""a\nb""#), s("a\nb"));
    assert_eq!(one(r#""\r\t\a""#), s("\r\t\x07"));
    assert_eq!(one(r#""q\"q\\""#), s("q\"q\\"));
    assert_eq!(one(r#""\x41\x4a""#), s("AJ"));
    assert_eq!(one(r#""\101\60""#), s("A0"));
    assert_eq!(one(r#""keep \d""#), s("keep \\d"));
    assert_eq!(one("\"multi\nline\""), s("multi\nline"));
}

#[test]
fn single_quoted_strings_are_raw() {
    assert_eq!(
        one(r"'a\nb'"),
        T::Str {
            value: r"a\nb".to_owned(),
            raw: true
        }
    );
}

#[test]
fn adjacent_strings_stay_separate_tokens() {
    assert_eq!(kinds(r#""a" "b""#), vec![s("a"), s("b")]);
}

#[test]
fn ip_addresses_and_networks() {
    assert_eq!(one("192.168.1.1"), T::Ipv4("192.168.1.1".into()));
    assert_eq!(one("10.0.0.0/8"), T::IpNet("10.0.0.0/8".into()));
    assert_eq!(
        one("10.1.0.0/255.255.0.0"),
        T::IpNet("10.1.0.0/255.255.0.0".into())
    );
    assert_eq!(one("::1"), T::Ipv6("::1".into()));
    assert_eq!(one("2001:db8::42"), T::Ipv6("2001:db8::42".into()));
    assert_eq!(one("fe80::/10"), T::IpNet("fe80::/10".into()));
    assert_eq!(one("1:2:3:4:5:6:7:8"), T::Ipv6("1:2:3:4:5:6:7:8".into()));
    assert_eq!(
        kinds("[::1]"),
        vec![T::LBracket, T::Ipv6("::1".into()), T::RBracket]
    );
    // a socket: proto, colon, address, colon, port
    assert_eq!(
        kinds("udp:127.0.0.1:5060"),
        vec![
            id("udp"),
            T::Colon,
            T::Ipv4("127.0.0.1".into()),
            T::Colon,
            T::Int(5060)
        ]
    );
    // hex-looking words are identifiers unless they form an address
    assert_eq!(kinds("add:5"), vec![id("add"), T::Colon, T::Int(5)]);
    let (_, diags) = tokenize(FileId(0), "300.1.1.1");
    assert_eq!(diags[0].message, "bad IPv4 address");
}

#[test]
fn script_variables_are_single_tokens() {
    for v in [
        "$ru",
        "$T_reply_code",
        "$err.class",
        "$var(x)",
        "$avp(a_b)",
        "$hdr(Via)[1]",
        "$(hdr(Via)[-1])",
        "$(avp(x)[*]{s.len})",
        "$(<request>ru)",
        "$avp($var(n))",
        "$(var(x){s.select,$var(i),;}{s.int})",
    ] {
        assert_eq!(one(v), T::Var(v.to_owned()), "{v}");
    }
    // ends at operators, separators and whitespace
    assert_eq!(
        kinds("$var(a)==$ru;"),
        vec![
            T::Var("$var(a)".into()),
            T::EqEq,
            T::Var("$ru".into()),
            T::Semi
        ]
    );
    assert_eq!(kinds("$var(x){"), vec![T::Var("$var(x)".into()), T::LBrace]);
}

#[test]
fn bad_variables_are_reported() {
    let (_, d) = tokenize(FileId(0), "$(var(x)");
    assert_eq!(d[0].message, "unterminated script variable: missing ')'");
    let (_, d) = tokenize(FileId(0), "$ = 1");
    assert_eq!(d[0].message, "invalid script variable name");
}

#[test]
fn operators() {
    use AssignOp as A;
    assert_eq!(
        kinds("= := += -= *= /= %= &= |= ^="),
        vec![
            T::Assign(A::Set),
            T::Assign(A::SetAll),
            T::Assign(A::Add),
            T::Assign(A::Sub),
            T::Assign(A::Mul),
            T::Assign(A::Div),
            T::Assign(A::Mod),
            T::Assign(A::BitAnd),
            T::Assign(A::BitOr),
            T::Assign(A::BitXor),
        ]
    );
    assert_eq!(
        kinds("== != < <= > >= =~ !~ ! && ||"),
        vec![
            T::EqEq,
            T::Ne,
            T::Lt,
            T::Le,
            T::Gt,
            T::Ge,
            T::Match,
            T::NotMatch,
            T::Not,
            T::AndAnd,
            T::OrOr
        ]
    );
    assert_eq!(
        kinds("+ - * / % & | ^ ~ << >>"),
        vec![
            T::Plus,
            T::Minus,
            T::Star,
            T::Slash,
            T::Percent,
            T::Amp,
            T::Pipe,
            T::Caret,
            T::Tilde,
            T::Shl,
            T::Shr
        ]
    );
    assert_eq!(
        kinds("( ) { } [ ] , ; : ."),
        vec![
            T::LParen,
            T::RParen,
            T::LBrace,
            T::RBrace,
            T::LBracket,
            T::RBracket,
            T::Comma,
            T::Semi,
            T::Colon,
            T::Dot
        ]
    );
}

#[test]
fn comments_and_continuations() {
    assert_eq!(kinds("a # comment\nb"), vec![id("a"), id("b")]);
    assert_eq!(kinds("a /* x /* nested */ y */ b"), vec![id("a"), id("b")]);
    assert_eq!(kinds("a \\\n b"), vec![id("a"), id("b")]);
    let (_, d) = tokenize(FileId(0), "a /* never closed");
    assert_eq!(d[0].message, "unterminated comment");
    let (_, d) = tokenize(FileId(0), "a @ b");
    assert_eq!(d[0].message, "unexpected character");
}

#[test]
fn tokens_know_their_position() {
    let (toks, _) = tokenize(FileId(3), "a\n  bb ;");
    assert_eq!(toks[1].span.start, 4);
    assert_eq!(toks[1].span.end, 6);
    assert_eq!(toks[1].span.file, FileId(3));
    assert!(toks[1].line_start);
    assert!(!toks[2].line_start);
    assert!(toks[2].space_before);
}
