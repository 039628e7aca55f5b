//! Structured script-variable and format-string parsing.

use sipox_cfg_syntax::{FormatPart, VarIndex, parse_format, parse_str, parse_var, var_summary};

#[test]
fn short_forms() {
    let v = parse_var("$ru").unwrap();
    assert_eq!(v.class, "ru");
    assert!(v.name.is_none() && v.index.is_none() && v.transforms.is_empty());
    let v = parse_var("$avp(caller)").unwrap();
    assert_eq!(v.class, "avp");
    assert_eq!(v.name.unwrap().as_static().unwrap(), "caller");
    let v = parse_var("$hdr(Via)[1]").unwrap();
    assert_eq!(v.index, Some(VarIndex::Int(1)));
    assert_eq!(parse_var("$err.rreason").unwrap().class, "err.rreason");
}

#[test]
fn full_form_with_index_and_transformations() {
    let v = parse_var("$(hdr(From)[-1]{nameaddr.uri}{uri.param,transport})").unwrap();
    assert!(v.full_form);
    assert_eq!(v.class, "hdr");
    assert_eq!(v.index, Some(VarIndex::Int(-1)));
    assert_eq!(v.transforms.len(), 2);
    assert_eq!(
        (
            v.transforms[0].class.as_str(),
            v.transforms[0].method.as_str()
        ),
        ("nameaddr", "uri")
    );
    assert_eq!(v.transforms[1].params[0].as_static().unwrap(), "transport");
    assert_eq!(v.transforms[1].params_raw.as_deref(), Some("transport"));
    let v = parse_var("$(avp(x)[*])").unwrap();
    assert_eq!(v.index, Some(VarIndex::All));
}

#[test]
fn nested_variables_in_name_index_and_params() {
    let v = parse_var("$avp($var(n))").unwrap();
    let name = v.name.unwrap();
    assert_eq!(name.as_var().unwrap().class, "var");
    let v = parse_var("$(hdr(Via)[$var(i)])").unwrap();
    let Some(VarIndex::Var(iv)) = v.index else {
        panic!("index")
    };
    assert_eq!(iv.name.as_ref().unwrap().as_static().unwrap(), "i");
    let v = parse_var("$(var(s){s.substr,$var(a),$(var(b){s.int})})").unwrap();
    assert_eq!(
        var_summary(&v),
        "pv:var(s){s.substr,pv:var(a),pv:var(b){s.int}}"
    );
    // separators that are commas survive in params_raw
    let v = parse_var("$(var(csv){s.select,1,,})").unwrap();
    assert_eq!(v.transforms[0].params_raw.as_deref(), Some("1,,"));
}

#[test]
fn contexts() {
    let v = parse_var("$(<request>ru)").unwrap();
    assert_eq!(v.context.as_deref(), Some("request"));
    assert_eq!(v.class, "ru");
    let v = parse_var("$(<reply>hdr(Contact){uri.host})").unwrap();
    assert_eq!(v.context.as_deref(), Some("reply"));
    assert_eq!(v.transforms[0].method, "host");
}

#[test]
fn malformed_variables() {
    assert!(parse_var("$(var(x)").is_err());
    assert!(parse_var("$(var(x){s})").is_err());
    assert!(parse_var("$(<request ru)").is_err());
    assert!(parse_var("$9x").is_err());
}

#[test]
fn format_strings() {
    let f = parse_format("From $fu to $(tu{uri.user}) cost $$ 5");
    assert_eq!(f.parts.len(), 5);
    assert!(matches!(&f.parts[0], FormatPart::Text(t) if t == "From "));
    assert!(matches!(&f.parts[1], FormatPart::Var(v) if v.class == "fu"));
    assert!(matches!(&f.parts[3], FormatPart::Var(v) if v.transforms.len() == 1));
    assert!(matches!(&f.parts[4], FormatPart::Text(t) if t == " cost $$ 5"));
    assert!(parse_format("plain").is_static());
}

#[test]
fn variable_spans_point_into_the_source() {
    let p = parse_str("v.cfg", "route {\n  $var(a) = $(avp(b)[$var(i)]);\n}\n");
    assert!(p.diagnostics.is_empty());
    let sipox_cfg_syntax::Item::Route(r) = &p.ast.items[0] else {
        panic!()
    };
    let sipox_cfg_syntax::StmtKind::Assign(a) = &r.body.stmts[0].kind else {
        panic!()
    };
    assert_eq!(p.sources.snippet(a.lhs.span), "$var(a)");
    let sipox_cfg_syntax::ExprKind::Var(rhs) = &a.rhs.kind else {
        panic!()
    };
    assert_eq!(p.sources.snippet(rhs.span), "$(avp(b)[$var(i)])");
    let Some(VarIndex::Var(iv)) = &rhs.index else {
        panic!()
    };
    assert_eq!(p.sources.snippet(iv.span), "$var(i)");
    let loc = p.sources.location(iv.span);
    assert_eq!((loc.line, loc.col), (2, 22));
}
