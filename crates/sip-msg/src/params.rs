//! `;name[=value]` parameter lists, as used by URIs (no white space allowed) and by header values
//! (linear white space allowed around `;` and `=`).

use crate::error::{ErrorKind, Result, err};
use crate::scan::{eq_ic, is_paramval, is_token, is_uric, quoted_end, skip_lws};
use crate::span::{Bound, Span};

/// Where a parameter list appears; decides white space and value rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamMode {
    /// URI parameters: no white space; values are URI characters.
    Uri,
    /// Header parameters: LWS around separators; values are tokens, hosts or quoted strings.
    Header,
}

/// A parameter list: the span from the first `;` to the end of the last parameter. Empty when
/// there are no parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params {
    /// The raw list, starting at its first `;`.
    pub span: Span,
    mode_uri: bool,
}

/// One parameter: a name and an optional raw value (quoted values keep their quotes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// Parameter name.
    pub name: Span,
    /// Raw value, if the parameter has `=value`.
    pub value: Option<Span>,
}

fn value_end(buf: &[u8], i: usize, end: usize, mode: ParamMode) -> Result<usize> {
    if i < end && buf[i] == b'"' && mode == ParamMode::Header {
        return quoted_end(buf, i, end);
    }
    let mut j = i;
    match mode {
        ParamMode::Uri => {
            while j < end && is_uric(buf[j]) && !matches!(buf[j], b';' | b'?' | b'=') {
                j += 1;
            }
        }
        ParamMode::Header => {
            while j < end && is_paramval(buf[j]) {
                j += 1;
            }
        }
    }
    Ok(j)
}

fn name_end(buf: &[u8], i: usize, end: usize, mode: ParamMode) -> usize {
    let mut j = i;
    match mode {
        ParamMode::Uri => {
            while j < end && is_uric(buf[j]) && !matches!(buf[j], b';' | b'?' | b'=' | b'&') {
                j += 1;
            }
        }
        ParamMode::Header => {
            while j < end && is_token(buf[j]) {
                j += 1;
            }
        }
    }
    j
}

/// Parses a parameter list starting at `i` (which must be `;`, or the list is empty) and ending
/// at the first byte that cannot continue it. Returns the list and the position after it.
pub(crate) fn parse_params(
    buf: &[u8],
    i: usize,
    end: usize,
    mode: ParamMode,
) -> Result<(Params, usize)> {
    let start = i;
    let mut pos = i;
    let mut last = i;
    loop {
        let p = if mode == ParamMode::Header {
            skip_lws(buf, pos, end)
        } else {
            pos
        };
        if p >= end || buf[p] != b';' {
            break;
        }
        let mut n = p + 1;
        if mode == ParamMode::Header {
            n = skip_lws(buf, n, end);
        }
        let ne = name_end(buf, n, end, mode);
        if ne == n {
            return err(ErrorKind::BadParam, n);
        }
        let mut q = ne;
        if mode == ParamMode::Header {
            q = skip_lws(buf, q, end);
        }
        if q < end && buf[q] == b'=' {
            let mut v = q + 1;
            if mode == ParamMode::Header {
                v = skip_lws(buf, v, end);
            }
            let ve = value_end(buf, v, end, mode)?;
            if ve == v {
                return err(ErrorKind::BadParam, v);
            }
            last = ve;
        } else {
            last = ne;
        }
        pos = last;
    }
    Ok((
        Params {
            span: Span::new(start, last),
            mode_uri: mode == ParamMode::Uri,
        },
        last,
    ))
}

/// Iterator over a [`Params`] list.
#[derive(Debug, Clone)]
pub struct ParamIter<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
    mode: ParamMode,
}

impl Iterator for ParamIter<'_> {
    type Item = Param;

    fn next(&mut self) -> Option<Param> {
        let (buf, end, mode) = (self.buf, self.end, self.mode);
        let lws = |i| {
            if mode == ParamMode::Header {
                skip_lws(buf, i, end)
            } else {
                i
            }
        };
        let p = lws(self.pos);
        if p >= end || buf[p] != b';' {
            return None;
        }
        let n = lws(p + 1);
        let ne = name_end(buf, n, end, mode);
        if ne == n {
            return None;
        }
        let q = lws(ne);
        if q < end && buf[q] == b'=' {
            let v = lws(q + 1);
            let ve = value_end(buf, v, end, mode).unwrap_or(end);
            self.pos = ve;
            Some(Param {
                name: Span::new(n, ne),
                value: Some(Span::new(v, ve)),
            })
        } else {
            self.pos = ne;
            Some(Param {
                name: Span::new(n, ne),
                value: None,
            })
        }
    }
}

impl<'a> Bound<'a, Params> {
    /// Iterates over the parameters.
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter {
            buf: self.buf,
            pos: self.v.span.lo(),
            end: self.v.span.hi().min(self.buf.len()),
            mode: if self.v.mode_uri {
                ParamMode::Uri
            } else {
                ParamMode::Header
            },
        }
    }

    /// Looks a parameter up by name (case-insensitive): `None` when absent, `Some(None)` when
    /// present without a value, `Some(Some(v))` with its raw value.
    pub fn get(&self, name: &[u8]) -> Option<Option<&'a [u8]>> {
        self.iter()
            .find(|p| eq_ic(p.name.of(self.buf), name))
            .map(|p| self.opt(p.value))
    }

    /// The value of a parameter with surrounding quotes removed (escapes kept).
    pub fn get_unquoted(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.get(name).flatten().map(unquote)
    }

    /// True when the parameter is present (with or without a value).
    pub fn has(&self, name: &[u8]) -> bool {
        self.get(name).is_some()
    }

    /// The raw text of the whole list (starting with `;`).
    pub fn raw(&self) -> &'a [u8] {
        self.v.span.of(self.buf)
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.v.span.is_empty()
    }
}

/// Removes one level of surrounding double quotes, if present.
pub fn unquote(v: &[u8]) -> &[u8] {
    if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_params_with_lws() {
        let b = b" ;  tag = 98asjd8 ; lr;q=\"0.5\"";
        let (p, end) = parse_params(b, 0, b.len(), ParamMode::Header).unwrap();
        assert_eq!(end, b.len());
        let p = Bound::new(&b[..], p);
        assert_eq!(p.get(b"TAG"), Some(Some(&b"98asjd8"[..])));
        assert_eq!(p.get(b"lr"), Some(None));
        assert_eq!(p.get_unquoted(b"q"), Some(&b"0.5"[..]));
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn uri_params_stop_at_headers() {
        let b = b";transport=tcp;lr?X=y";
        let (p, end) = parse_params(b, 0, b.len(), ParamMode::Uri).unwrap();
        assert_eq!(&b[end..], b"?X=y");
        assert!(Bound::new(&b[..], p).has(b"lr"));
    }

    #[test]
    fn empty_value_is_an_error() {
        let b = b";a=";
        assert!(parse_params(b, 0, b.len(), ParamMode::Uri).is_err());
    }
}
