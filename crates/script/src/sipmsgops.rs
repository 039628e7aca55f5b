//! More of the `sipmsgops` module (the first functions live in `modules.rs`):
//! `append_to_reply`, `ruri_has_param`, `ruri_add_param`, `ruri_del_param`,
//! `is_uri_user_e164`.

use crate::cx::{MsgCx, Ret, Stop};
use crate::program::Fmt;
use crate::registry::{Args, Call, FixupError, FnDef, ModuleDef, Registry, Sig, route_mask};

type R = Result<Ret, Stop>;

pub(crate) fn register(r: &mut Registry) {
    use route_mask::{ALL, BRANCH, ERROR, FAILURE, REQUEST};
    let f = |name: &'static str, params: &str, routes: u16, build| FnDef {
        sig: Sig::new("sipmsgops", name, params, routes),
        build: Some(build),
    };
    r.add_module(ModuleDef {
        name: "sipmsgops",
        params: vec![],
        fns: vec![
            f(
                "append_to_reply",
                "s",
                REQUEST | BRANCH | FAILURE | ERROR,
                |a| Ok(Box::new(AppendToReply(fmt0(a)?))),
            ),
            f(
                "ruri_has_param",
                "s,s?",
                REQUEST | BRANCH | FAILURE,
                |mut a| {
                    let n = a
                        .fmt(0)
                        .ok_or_else(|| FixupError::arg(0, "expected a name"))?;
                    Ok(Box::new(RuriHasParam(n, a.fmt(1))))
                },
            ),
            f("ruri_add_param", "s", REQUEST | BRANCH | FAILURE, |a| {
                Ok(Box::new(RuriAddParam(fmt0(a)?)))
            }),
            f("ruri_del_param", "s", REQUEST | BRANCH | FAILURE, |a| {
                Ok(Box::new(RuriDelParam(fmt0(a)?)))
            }),
            f("is_uri_user_e164", "s", ALL, |a| {
                Ok(Box::new(IsE164(fmt0(a)?)))
            }),
        ],
    });
}

fn fmt0(mut a: Args<'_>) -> Result<Fmt, FixupError> {
    a.fmt(0)
        .ok_or_else(|| FixupError::arg(0, "expected a string"))
}

fn eval(cx: &mut MsgCx, f: &Fmt) -> Vec<u8> {
    let mut v = Vec::new();
    cx.eval_fmt(f, &mut v);
    v
}

#[derive(Debug)]
struct AppendToReply(Fmt);

impl Call for AppendToReply {
    /// 1: stored for the next reply generated for this request; -1: empty text.
    fn call(&self, cx: &mut MsgCx) -> R {
        let t = eval(cx, &self.0);
        if t.is_empty() {
            return Ok(Ret::FALSE);
        }
        cx.add_reply_headers(&t);
        Ok(Ret::TRUE)
    }
}

/// `(name, value)` of each URI parameter of `uri`.
fn uri_params(uri: &[u8]) -> Vec<(Vec<u8>, Option<Vec<u8>>, sipox_sip_msg::Span)> {
    let Ok(u) = sipox_sip_msg::uri(uri) else {
        return Vec::new();
    };
    u.params()
        .iter()
        .map(|p| {
            let name = p.name.of(uri).to_vec();
            let val = p.value.map(|v| v.of(uri).to_vec());
            let end = p.value.map_or(p.name.end, |v| v.end);
            // The span includes the `;` before the name.
            let span = sipox_sip_msg::Span {
                start: p.name.start.saturating_sub(1),
                end,
            };
            (name, val, span)
        })
        .collect()
}

#[derive(Debug)]
struct RuriHasParam(Fmt, Option<Fmt>);

impl Call for RuriHasParam {
    /// 1: the R-URI has the parameter (with that value, when one is given); -1 otherwise.
    fn call(&self, cx: &mut MsgCx) -> R {
        let name = eval(cx, &self.0);
        let want = self.1.as_ref().map(|f| eval(cx, f));
        let hit = uri_params(cx.ruri()).iter().any(|(n, v, _)| {
            n.eq_ignore_ascii_case(&name)
                && match (&want, v) {
                    (None, _) => true,
                    (Some(w), Some(v)) => w == v,
                    (Some(_), None) => false,
                }
        });
        Ok(Ret::of(hit))
    }
}

/// Where URI parameters end (before `?headers`).
fn params_end(uri: &[u8]) -> usize {
    match sipox_sip_msg::uri(uri) {
        Ok(u) if !u.params().is_empty() => u.v.params.span.end as usize,
        Ok(u) => u.v.port_span.map_or(u.v.host.end, |s| s.end) as usize,
        Err(_) => uri.len(),
    }
}

#[derive(Debug)]
struct RuriAddParam(Fmt);

impl Call for RuriAddParam {
    /// 1: `;param` added to the R-URI; -1: empty parameter or a bad R-URI.
    fn call(&self, cx: &mut MsgCx) -> R {
        let p = eval(cx, &self.0);
        let p = p.strip_prefix(b";").unwrap_or(&p);
        let uri = cx.ruri().to_vec();
        if p.is_empty() || sipox_sip_msg::uri(&uri).is_err() {
            return Ok(Ret::FALSE);
        }
        let at = params_end(&uri).min(uri.len());
        let mut n = Vec::with_capacity(uri.len() + p.len() + 1);
        n.extend_from_slice(&uri[..at]);
        n.push(b';');
        n.extend_from_slice(p);
        n.extend_from_slice(&uri[at..]);
        cx.set_ruri(&n);
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct RuriDelParam(Fmt);

impl Call for RuriDelParam {
    /// 1: every parameter of that name removed from the R-URI; -1: none found.
    fn call(&self, cx: &mut MsgCx) -> R {
        let name = eval(cx, &self.0);
        let uri = cx.ruri().to_vec();
        let gone: Vec<_> = uri_params(&uri)
            .into_iter()
            .filter(|(n, _, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, _, s)| s)
            .collect();
        if gone.is_empty() {
            return Ok(Ret::FALSE);
        }
        let mut n = Vec::with_capacity(uri.len());
        let mut pos = 0;
        for s in gone {
            n.extend_from_slice(uri.get(pos..s.start as usize).unwrap_or_default());
            pos = s.end as usize;
        }
        n.extend_from_slice(uri.get(pos..).unwrap_or_default());
        cx.set_ruri(&n);
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct IsE164(Fmt);

/// `+` followed by 2 to 15 digits.
fn is_e164(u: &[u8]) -> bool {
    u.strip_prefix(b"+")
        .is_some_and(|d| (2..=15).contains(&d.len()) && d.iter().all(u8::is_ascii_digit))
}

impl Call for IsE164 {
    /// 1 when the URI's user part is an E.164 number; -1 otherwise.
    fn call(&self, cx: &mut MsgCx) -> R {
        let s = eval(cx, &self.0);
        let hit = sipox_sip_msg::uri(&s)
            .ok()
            .and_then(|u| u.user().map(is_e164))
            .unwrap_or(false);
        Ok(Ret::of(hit))
    }
}
