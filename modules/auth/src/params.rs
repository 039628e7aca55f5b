//! Reading `modparam` values.

use sipox_cfg_syntax::Value;

/// The last value of `name`, as an integer (booleans count as 0/1, numeric strings parse).
pub(crate) fn int(params: &[(String, Value)], name: &str) -> Result<Option<i64>, String> {
    match last(params, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Int(i)) => Ok(Some(*i)),
        Some(Value::Bool(b)) => Ok(Some(i64::from(*b))),
        Some(Value::Str(s) | Value::Ident(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("modparam {name}: \"{s}\" is not an integer")),
        Some(v) => Err(format!("modparam {name}: {v:?} is not an integer")),
    }
}

/// The last value of `name`, as a string.
pub(crate) fn string(params: &[(String, Value)], name: &str) -> Result<Option<String>, String> {
    match last(params, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Str(s) | Value::Ident(s) | Value::Ip(s)) => Ok(Some(s.clone())),
        Some(Value::Int(i)) => Ok(Some(i.to_string())),
        Some(v) => Err(format!("modparam {name}: {v:?} is not a string")),
    }
}

fn last<'a>(params: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
    params.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v)
}
