//! The message: start line and header index over one shared buffer, with typed parsers run on
//! demand and cached.

use std::cell::OnceCell;
use std::fmt;

use bytes::Bytes;
use smallvec::SmallVec;

use crate::edit::Edits;
use crate::error::{ErrorKind, ParseError, Result, err};
use crate::hdr::{HeaderKind, KIND_COUNT};
use crate::headers::{CSeq, parse_cseq};
use crate::nameaddr::{ContactValue, NameAddr, parse_contact, parse_name_addr};
use crate::scan::{CommaSplit, eq_ic, parse_u32, skip_lws, token_end, trim, trim_end};
use crate::span::{Bound, Span};
use crate::uri::{Uri, parse_uri};
use crate::via::{Via, parse_via};

/// Header entries kept inline before the index spills to the heap. Typical requests carry 10-20.
pub const INLINE_HEADERS: usize = 24;

/// Bounds that protect the parser from hostile input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted, in bytes.
    pub max_message: usize,
    /// Most header fields accepted.
    pub max_headers: usize,
    /// Longest header line (including folded continuation lines) accepted, in bytes.
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message: 65_535,
            max_headers: 256,
            max_line: 16_384,
        }
    }
}

/// How the message was delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One message per datagram: Content-Length optional; trailing octets discarded.
    Datagram,
    /// A byte stream: Content-Length required.
    Stream,
}

/// SIP request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// REGISTER
    Register,
    /// OPTIONS
    Options,
    /// INFO
    Info,
    /// UPDATE
    Update,
    /// PRACK
    Prack,
    /// SUBSCRIBE
    Subscribe,
    /// NOTIFY
    Notify,
    /// PUBLISH
    Publish,
    /// MESSAGE
    Message,
    /// REFER
    Refer,
    /// Any other (extension) method; methods are case-sensitive.
    Other,
}

impl Method {
    /// Classifies a method token (case-sensitive, as RFC 3261 §7.1 requires).
    pub fn classify(m: &[u8]) -> Self {
        match m {
            b"INVITE" => Self::Invite,
            b"ACK" => Self::Ack,
            b"BYE" => Self::Bye,
            b"CANCEL" => Self::Cancel,
            b"REGISTER" => Self::Register,
            b"OPTIONS" => Self::Options,
            b"INFO" => Self::Info,
            b"UPDATE" => Self::Update,
            b"PRACK" => Self::Prack,
            b"SUBSCRIBE" => Self::Subscribe,
            b"NOTIFY" => Self::Notify,
            b"PUBLISH" => Self::Publish,
            b"MESSAGE" => Self::Message,
            b"REFER" => Self::Refer,
            _ => Self::Other,
        }
    }

    /// The method name (empty for `Other`; read the message's method bytes instead).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Invite => "INVITE",
            Self::Ack => "ACK",
            Self::Bye => "BYE",
            Self::Cancel => "CANCEL",
            Self::Register => "REGISTER",
            Self::Options => "OPTIONS",
            Self::Info => "INFO",
            Self::Update => "UPDATE",
            Self::Prack => "PRACK",
            Self::Subscribe => "SUBSCRIBE",
            Self::Notify => "NOTIFY",
            Self::Publish => "PUBLISH",
            Self::Message => "MESSAGE",
            Self::Refer => "REFER",
            Self::Other => "",
        }
    }
}

/// The parsed start line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine {
    /// `Method SP Request-URI SP SIP-Version`
    Request {
        /// Method.
        method: Method,
        /// Method text.
        method_span: Span,
        /// Request-URI text.
        uri: Span,
    },
    /// `SIP-Version SP Status-Code SP Reason-Phrase`
    Response {
        /// Status code, 100..=699.
        code: u16,
        /// Reason phrase (may be empty).
        reason: Span,
    },
}

/// One header field in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Known kind, or `Other`.
    pub kind: HeaderKind,
    /// Name as written.
    pub name: Span,
    /// Value, trimmed; may span folded lines.
    pub value: Span,
    /// Offset just after the line terminator of the (last folded) line.
    pub end: u32,
}

impl Header {
    /// The whole header line, from the name to after its CRLF.
    pub const fn line(&self) -> Span {
        Span {
            start: self.name.start,
            end: self.end,
        }
    }
}

#[derive(Default)]
struct Cache {
    ruri: OnceCell<Result<Uri>>,
    via1: OnceCell<Result<Via>>,
    from: OnceCell<Result<NameAddr>>,
    to: OnceCell<Result<NameAddr>>,
    cseq: OnceCell<Result<CSeq>>,
    max_forwards: OnceCell<Result<u32>>,
}

/// A SIP message: the received bytes plus an index of byte ranges, typed views parsed on demand,
/// and pending edits applied when the message is written out.
pub struct SipMsg {
    buf: Bytes,
    start: u32,
    first_line: Span,
    line: StartLine,
    headers: SmallVec<[Header; INLINE_HEADERS]>,
    first: [u16; KIND_COUNT],
    hdr_end: u32,
    body: Span,
    content_length: Option<u32>,
    framing: Framing,
    cache: Cache,
    pub(crate) edits: Edits,
}

impl fmt::Debug for SipMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SipMsg")
            .field("line", &self.line)
            .field("headers", &self.headers.len())
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

/// True when `buf` looks like a response (starts with `SIP/` after optional CRLFs), so a parse
/// failure is dropped rather than answered.
pub fn looks_like_response(buf: &[u8]) -> bool {
    let i = buf
        .iter()
        .position(|&c| c != b'\r' && c != b'\n')
        .unwrap_or(buf.len());
    buf.len() >= i + 4 && eq_ic(&buf[i..i + 4], b"SIP/")
}

fn parse_version(buf: &[u8], s: usize, e: usize) -> Result<()> {
    let v = &buf[s..e];
    if v.len() < 5 || !eq_ic(&v[..4], b"SIP/") {
        return err(ErrorKind::BadStartLine, s);
    }
    if &v[4..] != b"2.0" {
        let ok_form = v[4..].iter().all(|&c| c.is_ascii_digit() || c == b'.');
        return err(
            if ok_form {
                ErrorKind::BadVersion
            } else {
                ErrorKind::BadStartLine
            },
            s,
        );
    }
    Ok(())
}

fn parse_start_line(buf: &[u8], s: usize, e: usize) -> Result<StartLine> {
    if e - s >= 4 && eq_ic(&buf[s..s + 4], b"SIP/") {
        let Some(sp) = buf[s..e].iter().position(|&c| c == b' ') else {
            return err(ErrorKind::BadStartLine, e);
        };
        let sp = s + sp;
        parse_version(buf, s, sp)?;
        let c = sp + 1;
        let d = crate::scan::digits_end(buf, c, e);
        if d - c != 3 || (d < e && buf[d] != b' ') {
            return err(ErrorKind::BadStatusCode, c);
        }
        let code = buf[c..d]
            .iter()
            .fold(0u16, |a, &x| a * 10 + u16::from(x - b'0'));
        if !(100..=699).contains(&code) {
            return err(ErrorKind::BadStatusCode, c);
        }
        let r = (d + 1).min(e);
        return Ok(StartLine::Response {
            code,
            reason: Span::new(r, e),
        });
    }
    let me = token_end(buf, s, e);
    if me == s || me >= e || buf[me] != b' ' {
        return err(ErrorKind::BadMethod, me);
    }
    let u = me + 1;
    let Some(ue) = buf[u..e].iter().position(|&c| c == b' ') else {
        return err(ErrorKind::BadStartLine, e);
    };
    let ue = u + ue;
    if ue == u {
        return err(ErrorKind::BadStartLine, u);
    }
    if let Some(ws) = buf[u..ue].iter().position(|&c| c == b'\t') {
        return err(ErrorKind::BadStartLine, u + ws);
    }
    parse_version(buf, ue + 1, e)?;
    Ok(StartLine::Request {
        method: Method::classify(&buf[s..me]),
        method_span: Span::new(s, me),
        uri: Span::new(u, ue),
    })
}

fn parse_content_length(buf: &[u8], v: Span) -> Result<u32> {
    parse_u32(buf, v).map_err(|e| ParseError::new(ErrorKind::BadContentLength, e.offset as usize))
}

impl SipMsg {
    /// Parses one datagram with default limits.
    pub fn parse(buf: Bytes) -> Result<Self> {
        Self::parse_with(buf, &Limits::default(), Framing::Datagram)
    }

    /// Parses a complete message with the given limits and framing. For [`Framing::Stream`] the
    /// buffer must hold exactly one message (see [`crate::StreamFramer`]).
    pub fn parse_with(buf: Bytes, limits: &Limits, framing: Framing) -> Result<Self> {
        let b: &[u8] = &buf;
        let len = b.len();
        if len > limits.max_message {
            return err(ErrorKind::TooLarge, limits.max_message);
        }
        let mut i = 0;
        while i < len && matches!(b[i], b'\r' | b'\n') {
            i += 1;
        }
        let start = i;
        let Some(nl) = memchr::memchr(b'\n', &b[i..]) else {
            return err(ErrorKind::Incomplete, len);
        };
        let nl = i + nl;
        let le = if nl > i && b[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        if le - i > limits.max_line {
            return err(ErrorKind::LineTooLong, i);
        }
        let line = parse_start_line(b, i, le)?;
        let first_line = Span::new(i, le);
        i = nl + 1;

        let mut headers: SmallVec<[Header; INLINE_HEADERS]> = SmallVec::new();
        let mut first = [0u16; KIND_COUNT];
        let mut content_length: Option<u32> = None;
        let (hdr_end, body_start);
        loop {
            if i >= len {
                // A datagram may end without the empty line; a stream message may not.
                if framing == Framing::Stream {
                    return err(ErrorKind::Incomplete, len);
                }
                hdr_end = len;
                body_start = len;
                break;
            }
            match b[i] {
                b'\r' if i + 1 < len && b[i + 1] == b'\n' => {
                    hdr_end = i;
                    body_start = i + 2;
                    break;
                }
                b'\n' => {
                    hdr_end = i;
                    body_start = i + 1;
                    break;
                }
                _ => {}
            }
            let ne = token_end(b, i, len);
            if ne == i {
                return err(ErrorKind::BadHeaderLine, i);
            }
            let mut c = ne;
            while c < len && matches!(b[c], b' ' | b'\t') {
                c += 1;
            }
            if c >= len || b[c] != b':' {
                return err(ErrorKind::BadHeaderLine, c);
            }
            // Find the end of the line, following folded continuation lines.
            let mut p = c + 1;
            let line_end = loop {
                let Some(n) = memchr::memchr(b'\n', &b[p..]) else {
                    if framing == Framing::Stream {
                        return err(ErrorKind::Incomplete, len);
                    }
                    break len;
                };
                let next = p + n + 1;
                if next < len && matches!(b[next], b' ' | b'\t') {
                    p = next;
                    continue;
                }
                break next;
            };
            if line_end - i > limits.max_line {
                return err(ErrorKind::LineTooLong, i);
            }
            let ve = trim_end(b, c + 1, line_end);
            let vs = skip_lws(b, c + 1, ve);
            let kind = HeaderKind::classify(&b[i..ne]);
            let h = Header {
                kind,
                name: Span::new(i, ne),
                value: Span::new(vs, ve),
                end: Span::new(0, line_end).end,
            };
            if headers.len() >= limits.max_headers {
                return err(ErrorKind::TooManyHeaders, i);
            }
            if kind == HeaderKind::ContentLength {
                let v = parse_content_length(b, h.value)?;
                if content_length.is_some_and(|old| old != v) {
                    return err(ErrorKind::MultipleContentLength, i);
                }
                content_length = Some(v);
            }
            if kind != HeaderKind::Other {
                let slot = &mut first[kind as usize];
                if *slot == 0 {
                    *slot = u16::try_from(headers.len() + 1).unwrap_or(u16::MAX);
                }
            }
            headers.push(h);
            i = line_end;
        }

        let body_end = match (content_length, framing) {
            (Some(cl), _) => {
                let want = body_start + cl as usize;
                if want > len {
                    return err(ErrorKind::BodyTooShort, len);
                }
                want
            }
            (None, Framing::Datagram) => len,
            (None, Framing::Stream) => return err(ErrorKind::MissingContentLength, hdr_end),
        };
        Ok(Self {
            start: Span::new(start, start).start,
            first_line,
            line,
            headers,
            first,
            hdr_end: Span::new(hdr_end, hdr_end).start,
            body: Span::new(body_start, body_end),
            content_length,
            framing,
            cache: Cache::default(),
            edits: Edits::default(),
            buf,
        })
    }

    // ----- raw access -----

    /// The whole received buffer (may hold leading CRLFs and trailing octets beyond the body).
    pub fn buf(&self) -> &[u8] {
        &self.buf
    }

    /// The shared buffer handle.
    pub fn bytes(&self) -> &Bytes {
        &self.buf
    }

    /// The message as received: start line to end of body.
    pub fn raw(&self) -> &[u8] {
        Span {
            start: self.start,
            end: self.body.end,
        }
        .of(&self.buf)
    }

    /// Span of the message within [`Self::buf`].
    pub const fn span(&self) -> Span {
        Span {
            start: self.start,
            end: self.body.end,
        }
    }

    /// How the message was framed.
    pub const fn framing(&self) -> Framing {
        self.framing
    }

    /// The start line without its CRLF.
    pub fn first_line(&self) -> &[u8] {
        self.first_line.of(&self.buf)
    }

    /// Span of the start line without its CRLF.
    pub const fn first_line_span(&self) -> Span {
        self.first_line
    }

    /// The parsed start line.
    pub const fn start_line(&self) -> &StartLine {
        &self.line
    }

    /// True for requests.
    pub const fn is_request(&self) -> bool {
        matches!(self.line, StartLine::Request { .. })
    }

    /// The request method (`None` for responses).
    pub const fn method(&self) -> Option<Method> {
        match self.line {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The request method text; for responses the CSeq method.
    pub fn method_bytes(&self) -> &[u8] {
        match self.line {
            StartLine::Request { method_span, .. } => method_span.of(&self.buf),
            StartLine::Response { .. } => self.cseq().map(|c| c.method_bytes()).unwrap_or_default(),
        }
    }

    /// The status code (`None` for requests).
    pub const fn status(&self) -> Option<u16> {
        match self.line {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase (empty for requests).
    pub fn reason(&self) -> &[u8] {
        match self.line {
            StartLine::Response { reason, .. } => reason.of(&self.buf),
            StartLine::Request { .. } => &[],
        }
    }

    /// The Request-URI text (empty for responses).
    pub fn ruri_raw(&self) -> &[u8] {
        self.ruri_span().of(&self.buf)
    }

    /// Span of the Request-URI (empty for responses).
    pub const fn ruri_span(&self) -> Span {
        match self.line {
            StartLine::Request { uri, .. } => uri,
            StartLine::Response { .. } => Span { start: 0, end: 0 },
        }
    }

    /// Offset of the empty line that ends the header section (where appended headers go).
    pub const fn headers_end(&self) -> u32 {
        self.hdr_end
    }

    /// The body (exactly Content-Length octets when the header is present).
    pub fn body(&self) -> &[u8] {
        self.body.of(&self.buf)
    }

    /// Span of the body.
    pub const fn body_span(&self) -> Span {
        self.body
    }

    /// The Content-Length value, if the header is present.
    pub const fn content_length(&self) -> Option<u32> {
        self.content_length
    }

    // ----- header index -----

    /// All header fields in order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The first header of a known kind.
    #[inline]
    pub fn header(&self, kind: HeaderKind) -> Option<&Header> {
        if kind == HeaderKind::Other {
            return None;
        }
        let i = self.first[kind as usize];
        if i == 0 {
            None
        } else {
            self.headers.get(usize::from(i) - 1)
        }
    }

    /// Every header of a known kind, in order.
    pub fn headers_of(&self, kind: HeaderKind) -> impl Iterator<Item = &Header> + '_ {
        let from = if kind == HeaderKind::Other {
            self.headers.len()
        } else {
            match self.first[kind as usize] {
                0 => self.headers.len(),
                i => usize::from(i) - 1,
            }
        };
        self.headers[from..].iter().filter(move |h| h.kind == kind)
    }

    /// Number of headers of a kind.
    pub fn count_of(&self, kind: HeaderKind) -> usize {
        self.headers_of(kind).count()
    }

    /// Every header with this name (case-insensitive; compact forms of known names match too).
    pub fn headers_named<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a Header> + 'a {
        let kind = HeaderKind::classify(name);
        self.headers.iter().filter(move |h| {
            if kind == HeaderKind::Other {
                h.kind == HeaderKind::Other && eq_ic(h.name.of(&self.buf), name)
            } else {
                h.kind == kind
            }
        })
    }

    /// The first header with this name.
    pub fn header_named<'a>(&'a self, name: &'a [u8]) -> Option<&'a Header> {
        self.headers_named(name).next()
    }

    /// The value bytes of a header.
    pub fn value(&self, h: &Header) -> &[u8] {
        h.value.of(&self.buf)
    }

    /// The name bytes of a header.
    pub fn name(&self, h: &Header) -> &[u8] {
        h.name.of(&self.buf)
    }

    /// The value of the first header of a kind.
    pub fn value_of(&self, kind: HeaderKind) -> Option<&[u8]> {
        self.header(kind).map(|h| self.value(h))
    }

    /// Every comma-separated value of every header of a kind, in order (Via, Contact, Route...).
    pub fn values(&self, kind: HeaderKind) -> Values<'_> {
        Values {
            msg: self,
            kind,
            idx: 0,
            started: false,
            cur: None,
        }
    }

    // ----- typed, cached -----

    /// The Request-URI, parsed (cached).
    pub fn ruri(&self) -> Result<Bound<'_, Uri>> {
        let r = self.cache.ruri.get_or_init(|| {
            if self.is_request() {
                parse_uri(&self.buf, self.ruri_span())
            } else {
                err(ErrorKind::Missing, 0)
            }
        });
        r.map(|u| Bound::new(&self.buf, u))
    }

    /// The topmost Via value (cached).
    pub fn via1(&self) -> Result<Bound<'_, Via>> {
        let r = self
            .cache
            .via1
            .get_or_init(|| match self.values(HeaderKind::Via).next() {
                Some(s) => parse_via(&self.buf, s),
                None => err(ErrorKind::Missing, self.hdr_end as usize),
            });
        r.map(|v| Bound::new(&self.buf, v))
    }

    /// Every Via value, parsed, topmost first.
    pub fn vias(&self) -> impl Iterator<Item = Result<Bound<'_, Via>>> + '_ {
        self.values(HeaderKind::Via)
            .map(|s| parse_via(&self.buf, s).map(|v| Bound::new(&self.buf, v)))
    }

    fn single_name_addr(&self, kind: HeaderKind) -> Result<NameAddr> {
        match self.header(kind) {
            Some(h) => parse_name_addr(&self.buf, h.value),
            None => err(ErrorKind::Missing, self.hdr_end as usize),
        }
    }

    /// The From header (cached).
    pub fn from(&self) -> Result<Bound<'_, NameAddr>> {
        let r = self
            .cache
            .from
            .get_or_init(|| self.single_name_addr(HeaderKind::From));
        r.map(|v| Bound::new(&self.buf, v))
    }

    /// The To header (cached).
    pub fn to(&self) -> Result<Bound<'_, NameAddr>> {
        let r = self
            .cache
            .to
            .get_or_init(|| self.single_name_addr(HeaderKind::To));
        r.map(|v| Bound::new(&self.buf, v))
    }

    /// The CSeq header (cached).
    pub fn cseq(&self) -> Result<Bound<'_, CSeq>> {
        let r = self
            .cache
            .cseq
            .get_or_init(|| match self.header(HeaderKind::CSeq) {
                Some(h) => parse_cseq(&self.buf, h.value),
                None => err(ErrorKind::Missing, self.hdr_end as usize),
            });
        r.map(|v| Bound::new(&self.buf, v))
    }

    /// The Call-ID value.
    pub fn call_id(&self) -> Option<&[u8]> {
        self.value_of(HeaderKind::CallId)
    }

    /// Max-Forwards (cached): `Ok(None)` when absent.
    pub fn max_forwards(&self) -> Result<Option<u32>> {
        let Some(h) = self.header(HeaderKind::MaxForwards) else {
            return Ok(None);
        };
        self.cache
            .max_forwards
            .get_or_init(|| parse_u32(&self.buf, h.value))
            .map(Some)
    }

    /// Every Contact value, parsed.
    pub fn contacts(&self) -> impl Iterator<Item = Result<Bound<'_, ContactValue>>> + '_ {
        self.values(HeaderKind::Contact)
            .map(|s| parse_contact(&self.buf, s).map(|v| Bound::new(&self.buf, v)))
    }

    /// Every value of a name-addr list header (Route, Record-Route, Path, ...), parsed.
    pub fn name_addrs(
        &self,
        kind: HeaderKind,
    ) -> impl Iterator<Item = Result<Bound<'_, NameAddr>>> + '_ {
        self.values(kind)
            .map(|s| parse_name_addr(&self.buf, s).map(|v| Bound::new(&self.buf, v)))
    }

    /// Binds a value parsed from this message's buffer.
    pub fn bind<T>(&self, v: T) -> Bound<'_, T> {
        Bound::new(&self.buf, v)
    }

    /// Trimmed span of a header value, for parsers that take `(buf, span)`.
    pub fn trimmed(&self, s: Span) -> Span {
        trim(&self.buf, s)
    }
}

/// Iterator over the comma-separated values of every header of one kind.
#[derive(Debug)]
pub struct Values<'a> {
    msg: &'a SipMsg,
    kind: HeaderKind,
    idx: usize,
    started: bool,
    cur: Option<CommaSplit<'a>>,
}

impl Iterator for Values<'_> {
    type Item = Span;

    fn next(&mut self) -> Option<Span> {
        loop {
            if let Some(c) = &mut self.cur {
                if let Some(s) = c.next() {
                    return Some(s);
                }
                self.cur = None;
            }
            if !self.started {
                self.started = true;
                self.idx = match self.msg.header(self.kind) {
                    Some(_) if self.kind != HeaderKind::Other => {
                        usize::from(self.msg.first[self.kind as usize]) - 1
                    }
                    _ => return None,
                };
            }
            let h = loop {
                let h = self.msg.headers.get(self.idx)?;
                self.idx += 1;
                if h.kind == self.kind {
                    break h;
                }
            };
            if self.kind.is_list() {
                self.cur = Some(CommaSplit::new(&self.msg.buf, h.value));
            } else {
                return Some(h.value);
            }
        }
    }
}
