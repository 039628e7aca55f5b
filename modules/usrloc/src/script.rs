//! The usrloc script functions: `ul_add_key(domain, aor, key[, value])`,
//! `ul_get_key(domain, aor, key, dest)`, `ul_del_key(domain, aor, key)` over the AoR
//! record's key-value store. The domain (table) is resolved once at load when it is a
//! constant; return codes as OpenSIPS: 1 done, -1 no such record (or key, for `ul_get_key`).

use std::sync::Arc;

use sipox_script::{
    Args, Call, FixupError, Fmt, FnDef, Kind, ModuleDef, MsgCx, PvRef, Registry, Ret, Sig, Stop,
    route_mask,
};

use crate::{DomainId, Usrloc};

/// Adds the usrloc functions to the registry (over the declared ones).
pub fn register(r: &mut Registry) {
    r.add_module(ModuleDef {
        name: "usrloc",
        params: Vec::new(),
        fns: vec![
            FnDef {
                sig: Sig::new("usrloc", "ul_add_key", "s,s,s,s?", route_mask::ALL),
                build: Some(build_add),
            },
            FnDef {
                sig: Sig::new("usrloc", "ul_get_key", "s,s,s,v", route_mask::ALL),
                build: Some(build_get),
            },
            FnDef {
                sig: Sig::new("usrloc", "ul_del_key", "s,s,s", route_mask::ALL),
                build: Some(build_del),
            },
        ],
    });
}

/// The table argument: resolved at load when constant, by name per call otherwise.
#[derive(Debug)]
enum Table {
    Fixed(DomainId),
    Dyn(Fmt),
}

#[derive(Debug)]
struct Common {
    ul: Arc<Usrloc>,
    table: Table,
    aor: Fmt,
    key: Fmt,
}

impl Common {
    fn build(a: &mut Args<'_>) -> Result<Self, FixupError> {
        let ul = a.cx.instances().require::<Usrloc>("usrloc")?;
        let table = a
            .fmt(0)
            .ok_or_else(|| FixupError::arg(0, "missing domain (table)"))?;
        let table = match table.as_const() {
            Some(name) => {
                let name = String::from_utf8_lossy(name).into_owned();
                Table::Fixed(
                    ul.register_domain(&name)
                        .map_err(|e| FixupError::arg(0, e.to_string()))?,
                )
            }
            None => Table::Dyn(table),
        };
        Ok(Self {
            ul,
            table,
            aor: a.fmt(1).ok_or_else(|| FixupError::arg(1, "missing AoR"))?,
            key: a.fmt(2).ok_or_else(|| FixupError::arg(2, "missing key"))?,
        })
    }

    /// (domain, aor, key), or None (logged) when the table is unknown.
    fn eval(&self, cx: &mut MsgCx) -> Option<(DomainId, String, String)> {
        let d = match &self.table {
            Table::Fixed(d) => *d,
            Table::Dyn(f) => {
                let name = text(cx, f);
                match self.ul.domain(&name) {
                    Some(d) => d,
                    None => {
                        cx.log(
                            -1,
                            format!("ERROR: usrloc: unknown table {name:?}").as_bytes(),
                        );
                        return None;
                    }
                }
            }
        };
        Some((d, text(cx, &self.aor), text(cx, &self.key)))
    }
}

fn text(cx: &mut MsgCx, f: &Fmt) -> String {
    let mut b = cx.take_buf();
    cx.eval_fmt(f, &mut b);
    let s = String::from_utf8_lossy(&b).into_owned();
    cx.give_buf(b);
    s
}

fn build_add(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    let c = Common::build(&mut a)?;
    Ok(Box::new(AddKey(c, a.fmt(3))))
}

fn build_get(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    let c = Common::build(&mut a)?;
    let v = a
        .var(3)
        .ok_or_else(|| FixupError::arg(3, "destination must be a writable variable"))?;
    Ok(Box::new(GetKey(c, v)))
}

fn build_del(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    Ok(Box::new(DelKey(Common::build(&mut a)?)))
}

/// `ul_add_key`: sets the key (an omitted or empty value removes it).
#[derive(Debug)]
struct AddKey(Common, Option<Fmt>);

impl Call for AddKey {
    fn call(&self, cx: &mut MsgCx) -> Result<Ret, Stop> {
        let Some((d, aor, key)) = self.0.eval(cx) else {
            return Ok(Ret(-1));
        };
        let val = self.1.as_ref().map(|f| text(cx, f));
        Ok(Ret::of(
            self.0
                .ul
                .set_record_key(d, &aor, &key, val.as_deref())
                .unwrap_or(false),
        ))
    }
}

/// `ul_get_key`: writes the value to the destination variable.
#[derive(Debug)]
struct GetKey(Common, Box<PvRef>);

impl Call for GetKey {
    fn call(&self, cx: &mut MsgCx) -> Result<Ret, Stop> {
        let Some((d, aor, key)) = self.0.eval(cx) else {
            return Ok(Ret(-1));
        };
        match self.0.ul.record_key(d, &aor, &key) {
            Ok(Some(v)) => {
                let mut b = v.into_bytes();
                cx.set_var(&self.1, Kind::Str, &mut b);
                Ok(Ret(1))
            }
            _ => Ok(Ret(-1)),
        }
    }
}

/// `ul_del_key`: removes the key.
#[derive(Debug)]
struct DelKey(Common);

impl Call for DelKey {
    fn call(&self, cx: &mut MsgCx) -> Result<Ret, Stop> {
        let Some((d, aor, key)) = self.0.eval(cx) else {
            return Ok(Ret(-1));
        };
        Ok(Ret::of(
            self.0
                .ul
                .set_record_key(d, &aor, &key, None)
                .unwrap_or(false),
        ))
    }
}
