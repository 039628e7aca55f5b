//! Matching keys (RFC 3261 §17.1.3 and §17.2.3).

use bytes::{BufMut, Bytes, BytesMut};
use sipox_sip_msg::{Method, SipMsg};

use crate::types::TxnError;

/// The method part of a key: ACK matches the INVITE transaction, CANCEL its own.
pub(crate) const fn method_class(m: Method) -> Method {
    match m {
        Method::Ack => Method::Invite,
        other => other,
    }
}

/// A client transaction key: the top Via branch we put in the request, and the CSeq method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientMatch {
    pub(crate) branch: Bytes,
    pub(crate) method: Method,
}

impl ClientMatch {
    /// The key with its bytes in an allocation of its own, so that a transaction's key does
    /// not keep the whole message it was cut from alive once the message is released.
    pub(crate) fn detached(&self) -> Self {
        Self {
            branch: Bytes::copy_from_slice(&self.branch),
            method: self.method,
        }
    }
}

/// A server transaction key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ServerMatch {
    /// RFC 3261: branch (with the magic cookie), sent-by, method.
    Rfc3261 {
        branch: Bytes,
        sent_by: Bytes,
        port: u16,
        method: Method,
    },
    /// RFC 2543 fallback: Request-URI, To tag, From tag, Call-ID, CSeq number, top Via, method.
    /// The fields are joined, each followed by a NUL, into one buffer.
    Rfc2543 { fields: Bytes, method: Method },
}

impl ServerMatch {
    /// See [`ClientMatch::detached`]: the RFC 3261 key's branch and sent-by share one small
    /// allocation.
    pub(crate) fn detached(&self) -> Self {
        match self {
            Self::Rfc3261 {
                branch,
                sent_by,
                port,
                method,
            } => {
                let mut b = BytesMut::with_capacity(branch.len() + sent_by.len());
                b.put_slice(branch);
                b.put_slice(sent_by);
                let mut all = b.freeze();
                let branch = all.split_to(branch.len());
                Self::Rfc3261 {
                    branch,
                    sent_by: all,
                    port: *port,
                    method: *method,
                }
            }
            Self::Rfc2543 { .. } => self.clone(),
        }
    }
}

/// A slice of the message's own buffer (no copy).
fn sub(msg: &SipMsg, s: &[u8]) -> Bytes {
    msg.bytes().slice_ref(s)
}

/// The client key of a request we send, or of a response we receive.
pub(crate) fn client_match(msg: &SipMsg) -> Result<ClientMatch, TxnError> {
    let via = msg.via1().map_err(|_| TxnError::BadMessage("top Via"))?;
    let Some(branch) = via.branch().filter(|b| !b.is_empty()) else {
        return Err(TxnError::BadMessage("branch"));
    };
    let cseq = msg.cseq().map_err(|_| TxnError::BadMessage("CSeq"))?;
    Ok(ClientMatch {
        branch: sub(msg, branch),
        method: cseq.method(),
    })
}

/// The server key of a received request, for the method class `method` (INVITE for an ACK or
/// for the CANCEL looking for its INVITE). `to_tag` overrides the To tag for RFC 2543 matching
/// (`Some(b"")` to look for the initial INVITE an ACK answers). `with_ruri` / `with_via1`:
/// the RFC 2543 key includes the Request-URI / the top Via (OpenSIPS's `ruri_matching`,
/// `via1_matching`).
pub(crate) fn server_match(
    msg: &SipMsg,
    method: Method,
    to_tag: Option<&[u8]>,
    with_ruri: bool,
    with_via1: bool,
) -> Result<ServerMatch, TxnError> {
    let via = msg.via1().map_err(|_| TxnError::BadMessage("top Via"))?;
    if via.has_rfc3261_branch()
        && let Some(b) = via.branch()
    {
        return Ok(ServerMatch::Rfc3261 {
            branch: sub(msg, b),
            sent_by: sub(msg, via.host()),
            port: via.port().unwrap_or(0),
            method,
        });
    }
    let cseq = msg.cseq().map_err(|_| TxnError::BadMessage("CSeq"))?;
    let from = msg.from().map_err(|_| TxnError::BadMessage("From"))?;
    let to = msg.to().map_err(|_| TxnError::BadMessage("To"))?;
    let Some(call_id) = msg.call_id() else {
        return Err(TxnError::BadMessage("Call-ID"));
    };
    let to_tag = to_tag.or_else(|| to.tag()).unwrap_or_default();
    let from_tag = from.tag().unwrap_or_default();
    let ruri = if with_ruri { msg.ruri_raw() } else { b"" };
    let via_raw = if with_via1 { via.raw() } else { b"" };
    let mut b = BytesMut::with_capacity(
        ruri.len() + to_tag.len() + from_tag.len() + call_id.len() + via_raw.len() + 16,
    );
    for part in [ruri, to_tag, from_tag, call_id] {
        b.put_slice(part);
        b.put_u8(0);
    }
    b.put_u32(cseq.number());
    b.put_slice(via_raw);
    Ok(ServerMatch::Rfc2543 {
        fields: b.freeze(),
        method,
    })
}
