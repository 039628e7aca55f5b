//! `sipox-sdp` owns SDP (RFC 8866 / RFC 4566) session descriptions: a
//! tolerant zero-copy parser, an editable owned model and a canonical printer.
//! It must not depend on I/O, clocks, async runtimes or any other sipox crate
//! (in particular not on the SIP message parser): it sees only body bytes.
//!
//! # Model
//! [`SessionDescription<B>`] is generic over its byte storage: [`Sdp<'a>`]
//! (`B = &'a [u8]`) is what [`Sdp::parse`](SessionDescription::parse) returns
//! and [`SdpOwned`] (`B = Vec<u8>`) is the editable copy obtained with
//! [`to_owned_model`](SessionDescription::to_owned_model) or
//! [`SdpOwned::parse`](SessionDescription::parse). Both print with
//! [`write_to`](SessionDescription::write_to).
//!
//! # Tolerance
//! LF or CRLF line ends, blank lines and trailing blanks are accepted; unknown
//! line types and surplus copies of single-valued lines are kept verbatim in
//! `extra`. A structurally broken line yields an [`SdpError`] carrying its
//! byte offset; [`Limits`] bound the number of lines, media and formats.
//!
//! ```
//! use sipox_sdp::{Sdp, SdpOwned};
//! let body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n\
//! t=0 0\r\nm=audio 49170 RTP/AVP 0 8\r\na=rtpmap:8 PCMA/8000\r\n";
//! let sdp = Sdp::parse(body)?;
//! assert_eq!(sdp.media[0].port, 49170);
//! assert_eq!(sdp.media[0].rtpmap(8).map(|r| r.encoding), Some(&b"PCMA"[..]));
//!
//! let mut owned: SdpOwned = sdp.to_owned_model();
//! owned.set_connection(b"IP4", b"203.0.113.7");
//! owned.media[0].port = 30000;
//! owned.media[0].remove_payload_type(0);
//! let printed = owned.to_bytes();
//! let again = Sdp::parse(&printed)?;
//! assert_eq!(again.connection.as_ref().map(|c| c.address), Some(&b"203.0.113.7"[..]));
//! assert_eq!(again.media[0].formats, [&b"8"[..]]);
//! # Ok::<(), sipox_sdp::SdpError>(())
//! ```

mod attr;
mod edit;
mod error;
mod model;
mod parse;
mod print;

pub use attr::{
    Direction, Fmtp, Rtcp, RtcpAddress, RtpMap, parse_payload_type, parse_ptime, parse_typed_time,
};
pub use error::SdpError;
pub use model::{
    Attribute, Bandwidth, Connection, Line, Media, Origin, Sdp, SdpOwned, SessionDescription,
    Timing,
};
pub use parse::Limits;
