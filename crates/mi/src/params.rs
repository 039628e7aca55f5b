//! Typed access to the parameters of a call, positional or named.

use std::borrow::Cow;

use serde_json::Value;

use crate::MiError;

/// The parameters of one call, bound to the recipe the dispatcher chose.
///
/// Positional parameters are found by the index of their name in the recipe; named ones by
/// name. Getters follow OpenSIPS: a string getter takes a string or a number; an integer
/// getter takes a number or a string holding one; a wrong type answers `-32602 Invalid params`
/// ("Bad type for parameter 'x'"), a name the recipe lacks `-32000 Server error`.
#[derive(Clone, Copy, Debug)]
pub struct MiParams<'a> {
    item: Option<&'a Value>,
    names: &'static [&'static str],
}

impl<'a> MiParams<'a> {
    /// Bind `item` (an array, an object, or none) to a recipe's parameter names.
    #[must_use]
    pub const fn new(item: Option<&'a Value>, names: &'static [&'static str]) -> Self {
        Self { item, names }
    }

    /// No parameters.
    #[must_use]
    pub const fn empty() -> Self {
        Self {
            item: None,
            names: &[],
        }
    }

    /// The raw value of a parameter, if supplied.
    #[must_use]
    pub fn raw(&self, name: &str) -> Option<&'a Value> {
        match self.item? {
            Value::Array(a) => {
                let i = self.names.iter().position(|n| *n == name)?;
                a.get(i)
            }
            Value::Object(o) => o.get(name),
            _ => None,
        }
    }

    /// Whether a parameter was supplied.
    #[must_use]
    pub fn has(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    /// A string parameter (numbers are printed).
    ///
    /// # Errors
    /// Missing or of another type.
    pub fn str(&self, name: &'static str) -> Result<Cow<'a, str>, MiError> {
        self.opt_str(name)?.ok_or_else(missing)
    }

    /// An optional string parameter.
    ///
    /// # Errors
    /// Present but neither a string nor a number.
    pub fn opt_str(&self, name: &'static str) -> Result<Option<Cow<'a, str>>, MiError> {
        self.raw(name)
            .map(|v| as_str(v).ok_or_else(|| bad_type(name)))
            .transpose()
    }

    /// An integer parameter (a number, or a string holding one).
    ///
    /// # Errors
    /// Missing or not an integer.
    pub fn int(&self, name: &'static str) -> Result<i64, MiError> {
        self.opt_int(name)?.ok_or_else(missing)
    }

    /// An optional integer parameter.
    ///
    /// # Errors
    /// Present but not an integer.
    pub fn opt_int(&self, name: &'static str) -> Result<Option<i64>, MiError> {
        self.raw(name)
            .map(|v| as_int(v).ok_or_else(|| bad_type(name)))
            .transpose()
    }

    /// A non-empty array parameter.
    ///
    /// # Errors
    /// Missing, not an array, or empty.
    pub fn array(&self, name: &'static str) -> Result<&'a [Value], MiError> {
        match self.raw(name) {
            None => Err(missing()),
            Some(Value::Array(a)) if a.is_empty() => Err(MiError::invalid_params(format!(
                "Empty array in parameter '{name}'"
            ))),
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(bad_type(name)),
        }
    }

    /// A non-empty array parameter whose items are strings (or numbers).
    ///
    /// # Errors
    /// As [`MiParams::array`], or an item of another type.
    pub fn str_array(&self, name: &'static str) -> Result<Vec<Cow<'a, str>>, MiError> {
        self.array(name)?
            .iter()
            .map(|v| {
                as_str(v).ok_or_else(|| {
                    MiError::invalid_params(format!(
                        "Bad type for array item in parameter '{name}'"
                    ))
                })
            })
            .collect()
    }
}

fn as_str(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s.as_str())),
        Value::Number(n) => Some(Cow::Owned(
            n.as_i64().map_or_else(|| n.to_string(), |i| i.to_string()),
        )),
        _ => None,
    }
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            #[allow(clippy::cast_possible_truncation)]
            n.as_f64().map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn bad_type(name: &str) -> MiError {
    MiError::invalid_params(format!("Bad type for parameter '{name}'"))
}

fn missing() -> MiError {
    MiError::server_error("Failed to handle parameter")
}
