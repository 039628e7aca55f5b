//! JSON-RPC / MI error objects with OpenSIPS's codes and texts.

use std::borrow::Cow;

/// JSON-RPC: invalid JSON text.
pub const PARSE_ERROR: i32 = -32700;
/// JSON-RPC: not a valid request object.
pub const INVALID_REQUEST: i32 = -32600;
/// JSON-RPC: no such command.
pub const METHOD_NOT_FOUND: i32 = -32601;
/// JSON-RPC: parameters match no recipe, or a parameter has a bad type.
pub const INVALID_PARAMS: i32 = -32602;
/// JSON-RPC: the command failed without a more specific code.
pub const SERVER_ERROR: i32 = -32000;

/// An error answer: `{"code": .., "message": .., "data"?: ..}`.
///
/// Command handlers use OpenSIPS's HTTP-like codes (`404 "Statistics Not Found"`,
/// `500 "reload failed"`) through [`MiError::new`]; the dispatcher uses the JSON-RPC ones.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct MiError {
    /// error code
    pub code: i32,
    /// short message
    pub message: Cow<'static, str>,
    /// optional detail, sent as `data`
    pub data: Option<Cow<'static, str>>,
}

impl MiError {
    /// An error with a code and a message.
    pub fn new(code: i32, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// An error with a detail string in `data`.
    pub fn with_data(
        code: i32,
        message: impl Into<Cow<'static, str>>,
        data: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            code,
            message: message.into(),
            data: Some(data.into()),
        }
    }

    /// `-32700 Parse error`.
    #[must_use]
    pub fn parse_error() -> Self {
        Self::new(PARSE_ERROR, "Parse error")
    }

    /// `-32600 Invalid Request`.
    #[must_use]
    pub fn invalid_request() -> Self {
        Self::new(INVALID_REQUEST, "Invalid Request")
    }

    /// `-32601 Method not found`.
    #[must_use]
    pub fn method_not_found() -> Self {
        Self::new(METHOD_NOT_FOUND, "Method not found")
    }

    /// `-32602 Invalid params` with a detail.
    pub fn invalid_params(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::with_data(INVALID_PARAMS, "Invalid params", detail)
    }

    /// `-32000 Server error` with a detail.
    pub fn server_error(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::with_data(SERVER_ERROR, "Server error", detail)
    }

    /// The JSON `error` member.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("code".into(), self.code.into());
        m.insert("message".into(), self.message.as_ref().into());
        if let Some(d) = &self.data {
            m.insert("data".into(), d.as_ref().into());
        }
        serde_json::Value::Object(m)
    }
}
