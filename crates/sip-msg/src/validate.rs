//! The checks an element makes on receipt before running the script (RFC 3261 §8.2, §16.3):
//! required headers present and parseable, single-value headers not repeated, CSeq consistent.

use crate::error::{ErrorKind, Result, err};
use crate::hdr::HeaderKind;
use crate::msg::{Method, SipMsg};

impl SipMsg {
    /// Validates what every element needs: Via, From, To, Call-ID and CSeq present exactly once
    /// (Via at least once) and parseable; Max-Forwards numeric; for requests the Request-URI
    /// parses, carries no headers component, and the CSeq method equals the request method;
    /// REGISTER Contacts parse.
    ///
    /// The error's [`crate::ParseError::reply_code`] says what to answer (or to drop).
    pub fn validate(&self) -> Result<()> {
        let end = self.headers_end() as usize;
        for kind in [
            HeaderKind::From,
            HeaderKind::To,
            HeaderKind::CallId,
            HeaderKind::CSeq,
        ] {
            if self.header(kind).is_none() {
                return err(ErrorKind::Missing, end);
            }
        }
        if self.header(HeaderKind::Via).is_none() {
            return err(ErrorKind::Missing, end);
        }
        for kind in [
            HeaderKind::From,
            HeaderKind::To,
            HeaderKind::CallId,
            HeaderKind::CSeq,
            HeaderKind::MaxForwards,
            HeaderKind::ContentLength,
        ] {
            if let Some(second) = self.headers_of(kind).nth(1) {
                return err(ErrorKind::Duplicate, second.name.lo());
            }
        }
        if self
            .call_id()
            .is_some_and(|c| c.is_empty() || c.iter().any(|&b| b == b' ' || b == b','))
        {
            let at = self
                .header(HeaderKind::CallId)
                .map_or(end, |h| h.value.lo());
            return err(ErrorKind::BadCallId, at);
        }
        self.via1()?;
        self.from()?;
        self.to()?;
        let cseq = self.cseq()?;
        self.max_forwards()?;
        if let Some(method) = self.method() {
            let uri = self.ruri()?;
            if uri.headers().is_some() {
                return err(ErrorKind::RuriHeaders, self.ruri_span().lo());
            }
            // A registrar must reject a malformed binding (RFC 4475 §3.1.2.13); check REGISTER
            // Contacts here so every element answers it the same way.
            if method == Method::Register {
                for c in self.contacts() {
                    c?;
                }
            }
            let same = match method {
                Method::Other => cseq.method_bytes() == self.method_bytes(),
                m => cseq.method() == m,
            };
            // ACK and CANCEL carry the INVITE's number with their own method: checked above.
            if !same {
                let kind = if method == Method::Other {
                    ErrorKind::CSeqMismatchUnknownMethod
                } else {
                    ErrorKind::CSeqMismatch
                };
                return err(kind, cseq.v.method.lo());
            }
        }
        Ok(())
    }
}
