//! Public value types: peers, keys, events, errors.

use std::net::SocketAddr;

use sipox_sip_msg::{SipMsg, Transport};

/// The other end of a hop: where a message came from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Transport protocol.
    pub transport: Transport,
    /// Remote address.
    pub addr: SocketAddr,
}

impl Peer {
    /// A UDP peer.
    pub const fn udp(addr: SocketAddr) -> Self {
        Self {
            transport: Transport::Udp,
            addr,
        }
    }

    /// A TCP peer.
    pub const fn tcp(addr: SocketAddr) -> Self {
        Self {
            transport: Transport::Tcp,
            addr,
        }
    }

    /// True when the transport is reliable (retransmission timers are not used, and the
    /// "wait for stray retransmissions" timers D, I, J, K are zero).
    pub const fn is_reliable(&self) -> bool {
        !matches!(self.transport, Transport::Udp | Transport::Other)
    }
}

/// Identifies a slot in one of the table's slabs, with a generation so a stale key never
/// reaches a newer transaction that reused the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Id {
    pub(crate) idx: u32,
    pub(crate) generation: u32,
}

/// A server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerKey(pub(crate) Id);

impl ServerKey {
    /// The key as one number (slot and generation), for identifiers shown outside the
    /// process (MI `t_reply`'s `trans_id`).
    pub fn label(self) -> u64 {
        (u64::from(self.0.idx) << 32) | u64::from(self.0.generation)
    }

    /// The key of a [`Self::label`]; a stale or made-up label finds no transaction.
    pub fn from_label(label: u64) -> Self {
        Self(Id {
            idx: u32::try_from(label >> 32).unwrap_or(u32::MAX),
            generation: u32::try_from(label & 0xffff_ffff).unwrap_or(0),
        })
    }
}

/// A client transaction (one branch when it belongs to a server transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey(pub(crate) Id);

/// Either kind of transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnRef {
    /// A server transaction.
    Server(ServerKey),
    /// A client transaction.
    Client(ClientKey),
}

/// One datagram written by [`crate::TxnTable::poll_transmit`] into the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub dest: Peer,
    /// Its length in the buffer.
    pub len: usize,
    /// The transaction it belongs to (report a send failure with
    /// [`crate::TxnTable::handle_transport_error`]); `None` for stateless sends.
    pub txn: Option<TxnRef>,
}

/// Server transaction states (RFC 3261 Figures 7 and 8, RFC 6026 Figure 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Non-INVITE: no response sent yet.
    Trying,
    /// A provisional response was sent (INVITE: the initial state).
    Proceeding,
    /// A final response was sent; retransmissions of the request get it again.
    Completed,
    /// INVITE: the ACK arrived; absorbing stray ACKs for timer I.
    Confirmed,
    /// INVITE: a 2xx was sent (RFC 6026); 2xx retransmissions pass through for timer L.
    Accepted,
}

/// Client transaction states (RFC 3261 Figures 5 and 6, RFC 6026 Figure 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// INVITE: request sent, nothing heard.
    Calling,
    /// Non-INVITE: request sent, nothing heard.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A non-2xx final response arrived (INVITE: ACK sent); absorbing retransmissions.
    Completed,
    /// INVITE: a 2xx arrived (RFC 6026); further 2xx are passed up for timer M.
    Accepted,
}

/// What the table tells the layer above. Drain with [`crate::TxnTable::poll_event`].
#[derive(Debug)]
#[non_exhaustive]
pub enum TxnEvent {
    /// A new request created a server transaction: run the script, then answer with
    /// [`crate::TxnTable::send_reply`] / [`crate::TxnTable::reply`] or fork with
    /// [`crate::TxnTable::send_request`]. An unmatched CANCEL arrives this way too.
    Request {
        /// The new transaction.
        txn: ServerKey,
        /// The request as received.
        msg: SipMsg,
        /// Where it came from.
        source: Peer,
    },
    /// An ACK that is not absorbed by a transaction (the ACK for a 2xx, which is end to end);
    /// `txn` is the Accepted INVITE transaction it matched, if any.
    Ack {
        /// Matched INVITE server transaction (RFC 2543 matching only).
        txn: Option<ServerKey>,
        /// The ACK.
        msg: SipMsg,
        /// Where it came from.
        source: Peer,
    },
    /// A response that matches no client transaction (forward it statelessly, §16.7).
    StrayReply {
        /// The response.
        msg: SipMsg,
        /// Where it came from.
        source: Peer,
    },
    /// A CANCEL matched this INVITE server transaction before its final response. The table
    /// already answered the CANCEL with 200 and cancelled every branch; a transaction without
    /// branches (a local UAS) should now reply 487.
    Cancelled {
        /// The INVITE server transaction.
        txn: ServerKey,
    },
    /// A response on a client transaction (not retransmissions, not responses to CANCELs the
    /// table generated). `relay` is true for what a proxy forwards at once (101–199 and every
    /// 2xx, §16.7 step 5); non-2xx finals are relayed through [`TxnEvent::BestFinal`].
    Reply {
        /// The client transaction.
        branch: ClientKey,
        /// The server transaction it is a branch of.
        server: Option<ServerKey>,
        /// The response as received (the proxy's own Via still on top).
        msg: SipMsg,
        /// Forward now (after removing the top Via).
        relay: bool,
    },
    /// A client transaction ended without a final response: 408 (timer B/F, or C / the wait
    /// after a CANCEL) or 503 (transport error).
    BranchFailed {
        /// The client transaction.
        branch: ClientKey,
        /// Its server transaction.
        server: Option<ServerKey>,
        /// 408 or 503.
        code: u16,
    },
    /// Every branch of `txn` has a final response (or a 6xx stopped them): `msg` is the
    /// selected one (§16.7 step 6–7: top Via removed, challenges merged, 503→500), ready for
    /// [`crate::TxnTable::send_reply`]. The proxy may instead add branches (serial forking).
    BestFinal {
        /// The server transaction.
        txn: ServerKey,
        /// The status code of `msg`.
        code: u16,
        /// The response to relay.
        msg: SipMsg,
    },
    /// An INVITE server transaction sent a non-2xx final response and no ACK came (timer H).
    AckTimeout {
        /// The server transaction.
        txn: ServerKey,
    },
    /// A transaction ended and its state was freed.
    Terminated {
        /// Which one.
        txn: TxnRef,
    },
}

/// Errors from the table's operations. Nothing here is fatal to the table.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxnError {
    /// The message lacks what a transaction needs (top Via, CSeq, Call-ID, From, To).
    #[error("message unusable for a transaction: {0}")]
    BadMessage(&'static str),
    /// The key names no live transaction.
    #[error("no such transaction")]
    NoTransaction,
    /// A client transaction with this branch and method already exists.
    #[error("duplicate branch")]
    DuplicateBranch,
    /// The transaction's state does not allow this.
    #[error("not allowed in state {0}")]
    WrongState(&'static str),
    /// Building a message failed.
    #[error("building a message failed: {0}")]
    Build(#[from] sipox_sip_msg::ParseError),
}

/// A default reason phrase for a status code.
pub fn reason_phrase(code: u16) -> &'static [u8] {
    match code {
        100 => b"Trying",
        180 => b"Ringing",
        181 => b"Call Is Being Forwarded",
        182 => b"Queued",
        183 => b"Session Progress",
        200 => b"OK",
        202 => b"Accepted",
        300 => b"Multiple Choices",
        301 => b"Moved Permanently",
        302 => b"Moved Temporarily",
        400 => b"Bad Request",
        401 => b"Unauthorized",
        403 => b"Forbidden",
        404 => b"Not Found",
        407 => b"Proxy Authentication Required",
        408 => b"Request Timeout",
        480 => b"Temporarily Unavailable",
        481 => b"Call/Transaction Does Not Exist",
        486 => b"Busy Here",
        487 => b"Request Terminated",
        500 => b"Server Internal Error",
        503 => b"Service Unavailable",
        600 => b"Busy Everywhere",
        603 => b"Decline",
        604 => b"Does Not Exist Anywhere",
        606 => b"Not Acceptable",
        _ => match code / 100 {
            1 => b"Session Progress",
            2 => b"OK",
            3 => b"Redirect",
            4 => b"Request Failure",
            5 => b"Server Failure",
            _ => b"Global Failure",
        },
    }
}
