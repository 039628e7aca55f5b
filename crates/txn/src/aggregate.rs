//! The §16.7 response context of a forking proxy, as a pure value: it records the final
//! response of every branch, ranks them, and says when the best one is ready to relay.

use bytes::{Bytes, BytesMut};
use sipox_sip_msg::{HeaderKind, ReplyOpts, SipMsg, build_reply};
use smallvec::SmallVec;

use crate::types::{TxnError, reason_phrase};

/// What to do with a branch's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchVerdict {
    /// Nothing to relay (100, a response after the context was answered, a stored final).
    Absorb,
    /// Relay this response now (101–199, every 2xx).
    Relay,
    /// The first 2xx: relay it and cancel the other pending branches.
    RelayFirst2xx,
    /// A 6xx stopped the context: cancel the others and relay [`ReplyAggregator::select`] now.
    Stop6xx,
    /// Every branch has a final response: relay [`ReplyAggregator::select`] (or add branches).
    AllDone,
}

/// The response chosen to relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// Index of the branch it came from.
    pub branch: u16,
    /// Its status code (before any 503→500 mapping).
    pub code: u16,
    /// The response as received; `None` for a locally generated failure (408, 503).
    pub reply: Option<Bytes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Branch {
    Pending,
    Done(u16),
}

/// The response context of one server transaction (RFC 3261 §16.7).
#[derive(Debug, Default)]
pub struct ReplyAggregator {
    branches: SmallVec<[Branch; 4]>,
    best: Option<Selected>,
    /// WWW-/Proxy-Authenticate header lines of every 401/407, by branch (§16.7 step 7).
    challenges: SmallVec<[(u16, Bytes); 1]>,
    answered: bool,
    stop_6xx: bool,
}

/// Rank of a final status code: lower is better (2xx, then 6xx, then the lowest class).
const fn rank(code: u16) -> (u16, u16) {
    let class = match code / 100 {
        2 => 0,
        6 => 1,
        c => c,
    };
    // Within 4xx, prefer what the client can repair (§16.7 step 6).
    let pref = match code {
        401 | 407 | 415 | 420 | 484 => 0,
        _ => 1,
    };
    (class, pref)
}

/// True when final response `new` ranks strictly better than `old` (ties keep the earlier).
pub const fn rank_better(new: u16, old: u16) -> bool {
    let (a, b) = (rank(new), rank(old));
    a.0 < b.0 || (a.0 == b.0 && a.1 < b.1)
}

impl ReplyAggregator {
    /// An empty context. `stop_6xx`: a 6xx ends the context at once.
    pub fn new(stop_6xx: bool) -> Self {
        Self {
            stop_6xx,
            ..Self::default()
        }
    }

    /// Adds a branch; `None` once a 2xx or a stopping 6xx answered the context (no new
    /// branches then, §16.7 step 5).
    pub fn add_branch(&mut self) -> Option<u16> {
        if self.answered {
            return None;
        }
        let i = u16::try_from(self.branches.len()).ok()?;
        self.branches.push(Branch::Pending);
        Some(i)
    }

    /// Branches still waiting for a final response.
    pub fn pending(&self) -> usize {
        self.branches
            .iter()
            .filter(|b| matches!(b, Branch::Pending))
            .count()
    }

    /// Indices of the branches still waiting.
    pub fn pending_branches(&self) -> impl Iterator<Item = u16> + '_ {
        self.branches
            .iter()
            .enumerate()
            .filter(|(_, b)| matches!(b, Branch::Pending))
            .filter_map(|(i, _)| u16::try_from(i).ok())
    }

    /// Number of branches.
    pub fn branches(&self) -> usize {
        self.branches.len()
    }

    /// True once a 2xx was relayed or a 6xx stopped the context.
    pub const fn is_answered(&self) -> bool {
        self.answered
    }

    /// A provisional response on a branch.
    pub fn on_provisional(&self, code: u16) -> BranchVerdict {
        if code > 100 && !self.answered {
            BranchVerdict::Relay
        } else {
            BranchVerdict::Absorb
        }
    }

    /// A final response on branch `idx` (`reply` is `None` for a local 408/503). `challenges`
    /// holds the WWW-/Proxy-Authenticate lines of a 401/407 (see [`challenge_lines`]).
    pub fn on_final(
        &mut self,
        idx: u16,
        code: u16,
        reply: Option<Bytes>,
        challenges: Option<Bytes>,
    ) -> BranchVerdict {
        let Some(slot) = self.branches.get_mut(usize::from(idx)) else {
            return BranchVerdict::Absorb;
        };
        let was_pending = matches!(slot, Branch::Pending);
        if was_pending {
            *slot = Branch::Done(code);
        }
        if (200..300).contains(&code) {
            // Every 2xx is relayed, retransmissions and other forks' 2xx included.
            let first = !self.answered;
            self.answered = true;
            return if first {
                BranchVerdict::RelayFirst2xx
            } else {
                BranchVerdict::Relay
            };
        }
        if !was_pending || self.answered {
            return BranchVerdict::Absorb;
        }
        if matches!(code, 401 | 407)
            && let Some(c) = challenges
        {
            self.challenges.push((idx, c));
        }
        if self.best.as_ref().is_none_or(|b| rank_better(code, b.code)) {
            self.best = Some(Selected {
                branch: idx,
                code,
                reply,
            });
        }
        if code >= 600 && self.stop_6xx {
            self.answered = true;
            return BranchVerdict::Stop6xx;
        }
        if self.pending() == 0 {
            BranchVerdict::AllDone
        } else {
            BranchVerdict::Absorb
        }
    }

    /// Drops the stored responses (once a final response went upstream): ranking and the
    /// relaying of further 2xx keep working on the status codes alone.
    pub fn release_replies(&mut self) {
        if let Some(b) = self.best.as_mut() {
            b.reply = None;
        }
        self.challenges = SmallVec::new();
    }

    /// The best final response so far.
    pub const fn select(&self) -> Option<&Selected> {
        self.best.as_ref()
    }

    /// Builds the response to relay upstream for [`Self::select`]: the branch's response with
    /// its top Via removed, the challenges of every other 401/407 branch appended when it is a
    /// 401/407, and 503 turned into 500 when `map_503` is set; or, for a local failure, a reply
    /// to `request` with `to_tag` (and a `Server:` header when `server` is given).
    pub fn assemble(
        &self,
        request: &SipMsg,
        map_503: bool,
        to_tag: &[u8],
        server: Option<&[u8]>,
    ) -> Result<Option<SipMsg>, TxnError> {
        let Some(sel) = &self.best else {
            return Ok(None);
        };
        let code = if sel.code == 503 && map_503 {
            500
        } else {
            sel.code
        };
        let Some(raw) = &sel.reply else {
            let mut out = Vec::with_capacity(request.raw().len() / 2 + 64);
            let opts = ReplyOpts {
                to_tag: Some(to_tag),
                server,
                ..ReplyOpts::default()
            };
            build_reply(request, code, reason_phrase(code), &opts, &mut out)?;
            return Ok(Some(SipMsg::parse(Bytes::from(out))?));
        };
        let mut msg = SipMsg::parse(raw.clone())?;
        msg.pop_via();
        if matches!(sel.code, 401 | 407) {
            for (b, lines) in &self.challenges {
                if *b != sel.branch {
                    msg.append_raw_headers(lines.clone());
                }
            }
        }
        if code != sel.code {
            let mut line = Vec::with_capacity(32);
            line.extend_from_slice(b"SIP/2.0 500 ");
            line.extend_from_slice(reason_phrase(500));
            msg.replace(msg.first_line_span(), line);
        }
        if !msg.has_edits() {
            return Ok(Some(msg));
        }
        Ok(Some(SipMsg::parse(msg.to_bytes())?))
    }
}

/// The WWW-Authenticate and Proxy-Authenticate header lines of a response, copied, or `None`.
pub fn challenge_lines(msg: &SipMsg) -> Option<Bytes> {
    let mut out = BytesMut::new();
    for h in msg.headers() {
        if matches!(
            h.kind,
            HeaderKind::WwwAuthenticate | HeaderKind::ProxyAuthenticate
        ) {
            out.extend_from_slice(msg.name(h));
            out.extend_from_slice(b": ");
            out.extend_from_slice(msg.value(h));
            out.extend_from_slice(b"\r\n");
        }
    }
    (!out.is_empty()).then(|| out.freeze())
}
