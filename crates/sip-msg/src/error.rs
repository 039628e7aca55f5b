//! Typed parse errors carrying the byte offset where parsing failed.

use thiserror::Error;

/// What went wrong while framing or parsing a message or one of its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input ended before the message (or the element being parsed) was complete.
    #[error("incomplete input")]
    Incomplete,
    /// The message is larger than the configured limit.
    #[error("message larger than the limit")]
    TooLarge,
    /// More header fields than the configured limit.
    #[error("too many header fields")]
    TooManyHeaders,
    /// A header line longer than the configured limit.
    #[error("header line too long")]
    LineTooLong,
    /// The start line is neither a request line nor a status line, or is malformed.
    #[error("malformed start line")]
    BadStartLine,
    /// The SIP version is not SIP/2.0.
    #[error("unsupported SIP version")]
    BadVersion,
    /// The status code is not three digits between 100 and 699.
    #[error("bad status code")]
    BadStatusCode,
    /// The method is not a token.
    #[error("bad method")]
    BadMethod,
    /// A header line has no name or no colon.
    #[error("malformed header line")]
    BadHeaderLine,
    /// A Content-Length value is not a non-negative integer.
    #[error("bad Content-Length")]
    BadContentLength,
    /// More than one Content-Length header with different values.
    #[error("conflicting Content-Length headers")]
    MultipleContentLength,
    /// A stream message without Content-Length.
    #[error("missing Content-Length on a stream transport")]
    MissingContentLength,
    /// Content-Length says more bytes than the datagram carries.
    #[error("body shorter than Content-Length")]
    BodyTooShort,
    /// A URI does not follow the RFC 3261 / RFC 3966 grammar.
    #[error("malformed URI")]
    BadUri,
    /// A host or IP address is malformed.
    #[error("malformed host")]
    BadHost,
    /// A port is not a number in 0..=65535.
    #[error("bad port")]
    BadPort,
    /// A name-addr or addr-spec is malformed.
    #[error("malformed name-addr")]
    BadNameAddr,
    /// A quoted string is not terminated.
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    /// A parameter list is malformed.
    #[error("malformed parameter")]
    BadParam,
    /// A Via value is malformed.
    #[error("malformed Via")]
    BadVia,
    /// A CSeq value is malformed or its number does not fit 32 bits.
    #[error("malformed CSeq")]
    BadCSeq,
    /// A number is malformed or too large.
    #[error("bad number")]
    BadNumber,
    /// A token was expected.
    #[error("token expected")]
    ExpectedToken,
    /// Unexpected bytes after a complete value.
    #[error("unexpected trailing characters")]
    Trailing,
    /// A header that must appear once appears more than once.
    #[error("header must appear only once")]
    Duplicate,
    /// A header that every request or response needs is missing.
    #[error("required header missing")]
    Missing,
    /// The CSeq method differs from the request method.
    #[error("CSeq method does not match the request method")]
    CSeqMismatch,
    /// An unknown request method whose CSeq names a different method (RFC 4475 §3.1.2.18:
    /// answered 501 Not Implemented).
    #[error("unknown method with a different CSeq method")]
    CSeqMismatchUnknownMethod,
    /// A Request-URI carries a headers component (RFC 3261 §19.1.1 forbids it).
    #[error("Request-URI must not carry headers")]
    RuriHeaders,
    /// A Date value is not an RFC 1123 date in GMT.
    #[error("malformed Date")]
    BadDate,
    /// Digest credentials or challenge are malformed.
    #[error("malformed authentication header")]
    BadAuth,
    /// A multipart body is malformed.
    #[error("malformed multipart body")]
    BadMultipart,
    /// A Call-ID value is empty or holds white space or commas.
    #[error("malformed Call-ID")]
    BadCallId,
    /// A header value is empty where a value is required.
    #[error("empty value")]
    Empty,
}

/// A parse error: what failed and the byte offset (into the message buffer) where it was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{kind} at byte {offset}")]
pub struct ParseError {
    /// What failed.
    pub kind: ErrorKind,
    /// Byte offset into the buffer that was being parsed.
    pub offset: u32,
}

impl ParseError {
    /// A new error at `offset`.
    #[inline]
    #[allow(clippy::cast_possible_truncation)]
    pub const fn new(kind: ErrorKind, offset: usize) -> Self {
        Self {
            kind,
            offset: offset as u32,
        }
    }

    /// What a server does with a message that failed this way: the status code of the stateless
    /// reply for a request (400, 505, 501), or `None` meaning drop (responses are never answered,
    /// and a stream message whose framing is lost cannot be answered reliably).
    pub const fn reply_code(&self, is_request: bool) -> Option<u16> {
        if !is_request {
            return None;
        }
        match self.kind {
            ErrorKind::BadVersion => Some(505),
            ErrorKind::TooLarge => Some(513),
            ErrorKind::CSeqMismatchUnknownMethod => Some(501),
            _ => Some(400),
        }
    }

    /// A short reason phrase suitable for the 400 reply.
    pub const fn reason(&self) -> &'static str {
        match self.kind {
            ErrorKind::BadVersion => "Version Not Supported",
            ErrorKind::CSeqMismatchUnknownMethod => "Not Implemented",
            ErrorKind::TooLarge => "Message Too Large",
            ErrorKind::Missing => "Bad Request - Missing Header",
            ErrorKind::Duplicate => "Bad Request - Duplicate Header",
            ErrorKind::CSeqMismatch => "Bad Request - CSeq Method Mismatch",
            ErrorKind::BadCSeq => "Bad Request - Bad CSeq",
            ErrorKind::BadUri | ErrorKind::RuriHeaders => "Bad Request - Bad URI",
            ErrorKind::BadVia => "Bad Request - Bad Via",
            ErrorKind::BodyTooShort | ErrorKind::BadContentLength => {
                "Bad Request - Bad Content-Length"
            }
            _ => "Bad Request",
        }
    }
}

/// Result alias for parsers in this crate.
pub type Result<T, E = ParseError> = std::result::Result<T, E>;

/// Shorthand for building an `Err`.
#[inline]
pub(crate) const fn err<T>(kind: ErrorKind, offset: usize) -> Result<T> {
    Err(ParseError::new(kind, offset))
}
