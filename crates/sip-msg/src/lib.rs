//! `sipox-sip-msg` owns the SIP message: framing (datagram and stream), a zero-copy index of the
//! start line and header fields over one shared buffer, typed parsers that run only when asked
//! (URIs, name-addr, Via, CSeq, digest, ...), edits applied at write time, and reply/request
//! building. It performs no I/O, reads no clock and does not depend on tokio or on any other
//! sipox crate.
//!
//! # Shape
//! - [`SipMsg::parse`] frames one datagram and indexes it: each header is a [`Header`] of byte
//!   [`Span`]s; nothing is copied and no typed parser runs. The index lives inline for up to
//!   [`INLINE_HEADERS`] headers, so a typical message costs no heap allocation beyond its buffer.
//! - Typed parsers return small `Copy` structs of spans ([`Uri`], [`NameAddr`], [`Via`],
//!   [`CSeq`], ...). [`Bound`] pairs one with its buffer for borrowing accessors. The hot ones
//!   (Request-URI, top Via, From, To, CSeq, Max-Forwards) are cached in the message.
//! - Edits (OpenSIPS "lumps") are recorded as byte-range insertions/deletions/replacements and
//!   applied by [`SipMsg::write_to`]; untouched bytes are copied verbatim. The typed views always
//!   describe the message as received, not as edited (as in OpenSIPS, where `$hdr` reads the
//!   original message); parse the written bytes again to inspect the result.
//! - Errors are [`ParseError`]s with the byte offset; [`ParseError::reply_code`] maps them to the
//!   400/505 reply (or a drop, for responses).

#![forbid(unsafe_code)]

mod build;
mod edit;
mod error;
mod framing;
mod hdr;
mod headers;
mod msg;
mod nameaddr;
mod params;
mod scan;
mod span;
mod uri;
mod validate;
mod via;

pub use build::{
    NewRequest, ReplyOpts, build_ack_for_non2xx, build_cancel, build_reply, build_request,
};
pub use error::{ErrorKind, ParseError, Result};
pub use framing::{Frame, StreamFramer};
pub use hdr::{HeaderKind, KIND_COUNT};
pub use headers::{
    AuthHeader, CSeq, MediaType, Part, SipDate, TokenParams, option_tags, parse_auth, parse_cseq,
    parse_date, parse_delta, parse_media_type, parse_multipart, parse_token_params, part_header,
    token_params_list,
};
pub use msg::{
    Framing, Header, INLINE_HEADERS, Limits, Method, SipMsg, StartLine, Values, looks_like_response,
};
pub use nameaddr::{
    ContactValue, NameAddr, name_addr, parse_contact, parse_name_addr, parse_qvalue,
};
pub use params::{Param, ParamIter, Params, unquote};
pub use scan::{CommaSplit, Unescape, eq_ic, unescape_into};
pub use span::{Bound, Span};
pub use uri::{HostKind, Scheme, Uri, is_ipv4, is_ipv6, parse_uri, uri, uri_eq};
pub use via::{MAGIC_COOKIE, Transport, Via, parse_via, via};
