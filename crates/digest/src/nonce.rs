//! Nonces that prove themselves: the expiry, a replay-tracking index, the algorithm and the
//! qop offered are written into the nonce and authenticated with HMAC-SHA-256 under a secret,
//! so checking a nonce needs no table of issued nonces; [`NonceTracker`] adds the one piece of
//! state that replay protection needs (the highest `nc` seen per index).
//!
//! Wire format (62 lowercase hex characters): version `1` (1 byte), expiry in seconds since
//! the Unix epoch (8 bytes, big endian, signed), index (4 bytes), algorithm code (1 byte),
//! qop offer (1 byte), then the first 16 bytes of `HMAC-SHA-256(key, those 15 bytes)`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::{Algorithm, Qop};

const VERSION: u8 = 1;
const BODY: usize = 15;
const TAG: usize = 16;
const RAW: usize = BODY + TAG;

/// Length of a nonce in characters.
pub const NONCE_LEN: usize = RAW * 2;

/// The `qop` a challenge offered (kept in the nonce so the answer must match it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QopOffer {
    /// No `qop` parameter in the challenge.
    None,
    /// `qop="auth"`.
    Auth,
    /// `qop="auth-int"`.
    AuthInt,
    /// `qop="auth,auth-int"`.
    Both,
}

impl QopOffer {
    /// Parses a script's qop argument: `auth`, `auth-int`, `auth,auth-int` (either order,
    /// spaces allowed); empty is [`QopOffer::None`]; `None` when not understood.
    pub fn parse(s: &[u8]) -> Option<Self> {
        let (mut auth, mut int) = (false, false);
        for t in s.split(|&c| c == b',') {
            let t = t.trim_ascii();
            if t.is_empty() {
                continue;
            }
            match Qop::parse(t)? {
                Qop::Auth => auth = true,
                Qop::AuthInt => int = true,
                Qop::None => {}
            }
        }
        Some(match (auth, int) {
            (false, false) => Self::None,
            (true, false) => Self::Auth,
            (false, true) => Self::AuthInt,
            (true, true) => Self::Both,
        })
    }

    /// The value of the challenge's `qop` parameter (without quotes), if any.
    pub fn challenge_value(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Auth => Some("auth"),
            Self::AuthInt => Some("auth-int"),
            Self::Both => Some("auth,auth-int"),
        }
    }

    /// True when credentials using `qop` answer this offer. Credentials without qop answer an
    /// offer of `auth` (RFC 8760: an absent qop means `auth` once one was offered).
    pub fn accepts(self, qop: Qop) -> bool {
        let qop = if qop == Qop::None && self != Self::None {
            Qop::Auth
        } else {
            qop
        };
        matches!(
            (self, qop),
            (Self::None, Qop::None)
                | (Self::Auth, Qop::Auth)
                | (Self::AuthInt, Qop::AuthInt)
                | (Self::Both, Qop::Auth | Qop::AuthInt)
        )
    }

    fn code(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Auth => 1,
            Self::AuthInt => 2,
            Self::Both => 3,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        [Self::None, Self::Auth, Self::AuthInt, Self::Both]
            .into_iter()
            .find(|q| q.code() == c)
    }
}

/// What a nonce says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceParams {
    /// When it stops being accepted, in seconds since the Unix epoch.
    pub expires: i64,
    /// Its replay-tracking index ([`NonceTracker::reserve`]; 0 when tracking is off).
    pub index: u32,
    /// The algorithm the challenge offered with it.
    pub alg: Algorithm,
    /// The qop the challenge offered with it.
    pub qop: QopOffer,
}

impl NonceParams {
    /// True when the nonce has expired at `now` (seconds since the Unix epoch).
    pub fn is_stale(&self, now: i64) -> bool {
        now > self.expires
    }
}

/// Why a nonce was not accepted as one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceError {
    /// Wrong length or not hex.
    #[error("malformed nonce")]
    Malformed,
    /// Well formed, but not issued under our secret (or altered).
    #[error("nonce not issued by us")]
    Forged,
}

/// The secret nonces are bound to.
#[derive(Clone)]
pub struct NonceKey {
    key: [u8; 32],
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey(..)")
    }
}

impl NonceKey {
    /// A key from a secret of any length (it is hashed to 32 bytes).
    pub fn new(secret: &[u8]) -> Self {
        let mut key = [0u8; 32];
        key.copy_from_slice(&Sha256::digest(secret));
        Self { key }
    }

    /// Appends a new nonce for `p` to `out` ([`NONCE_LEN`] characters).
    pub fn issue(&self, p: &NonceParams, out: &mut Vec<u8>) {
        let mut raw = [0u8; RAW];
        raw[0] = VERSION;
        raw[1..9].copy_from_slice(&p.expires.to_be_bytes());
        raw[9..13].copy_from_slice(&p.index.to_be_bytes());
        raw[13] = p.alg.code();
        raw[14] = p.qop.code();
        let tag = self.tag(&raw[..BODY]);
        raw[BODY..].copy_from_slice(&tag);
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.reserve(NONCE_LEN);
        for b in raw {
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        }
    }

    /// A new nonce as a `String` (convenience for tests and tools).
    pub fn issue_string(&self, p: &NonceParams) -> String {
        let mut v = Vec::with_capacity(NONCE_LEN);
        self.issue(p, &mut v);
        String::from_utf8(v).unwrap_or_default()
    }

    /// Checks that `nonce` was issued under this key, and returns what it carries. Expiry and
    /// replay are the caller's next checks ([`NonceParams::is_stale`], [`NonceTracker`]).
    pub fn open(&self, nonce: &[u8]) -> Result<NonceParams, NonceError> {
        if nonce.len() != NONCE_LEN {
            return Err(NonceError::Malformed);
        }
        let mut raw = [0u8; RAW];
        for (i, pair) in nonce.chunks_exact(2).enumerate() {
            let hi = hex_val(pair[0]).ok_or(NonceError::Malformed)?;
            let lo = hex_val(pair[1]).ok_or(NonceError::Malformed)?;
            raw[i] = (hi << 4) | lo;
        }
        let tag = self.tag(&raw[..BODY]);
        let mut diff = 0u8;
        for (a, b) in tag.iter().zip(&raw[BODY..]) {
            diff |= a ^ b;
        }
        if diff != 0 {
            return Err(NonceError::Forged);
        }
        if raw[0] != VERSION {
            return Err(NonceError::Forged);
        }
        let mut e = [0u8; 8];
        e.copy_from_slice(&raw[1..9]);
        let mut i = [0u8; 4];
        i.copy_from_slice(&raw[9..13]);
        Ok(NonceParams {
            expires: i64::from_be_bytes(e),
            index: u32::from_be_bytes(i),
            alg: Algorithm::from_code(raw[13]).ok_or(NonceError::Forged)?,
            qop: QopOffer::from_code(raw[14]).ok_or(NonceError::Forged)?,
        })
    }

    fn tag(&self, body: &[u8]) -> [u8; TAG] {
        let mut out = [0u8; TAG];
        // A 32-byte key is always accepted by HMAC.
        if let Ok(mut m) = Hmac::<Sha256>::new_from_slice(&self.key) {
            m.update(body);
            let full = m.finalize().into_bytes();
            out.copy_from_slice(&full[..TAG]);
        }
        out
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Why a nonce use was refused by the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UseError {
    /// The index is not (or no longer) tracked: never issued by this process, or its slot was
    /// reused by a newer nonce. The credentials should be challenged again (stale).
    #[error("nonce index not tracked")]
    Unknown,
    /// The nonce count was used before (or is not above the last one used).
    #[error("nonce count replayed")]
    Replay,
}

/// Replay protection: a fixed ring of slots, one per outstanding nonce index, each holding
/// the index that owns it and the highest `nc` accepted for it, packed in one atomic word
/// (lock-free; shared by every worker). Issuing more nonces than there are slots within a
/// nonce lifetime makes the oldest ones unknown (their users get a stale challenge), never
/// accepts a replay.
#[derive(Debug)]
pub struct NonceTracker {
    slots: Box<[AtomicU64]>,
    mask: u32,
    next: AtomicU32,
}

const FREE: u64 = u64::MAX;

impl NonceTracker {
    /// A tracker with at least `capacity` slots (rounded up to a power of two, at least 64).
    pub fn new(capacity: usize) -> Self {
        let n = capacity.clamp(64, 1 << 24).next_power_of_two();
        Self {
            slots: (0..n).map(|_| AtomicU64::new(FREE)).collect(),
            mask: u32::try_from(n - 1).unwrap_or(u32::MAX),
            next: AtomicU32::new(1),
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// A fresh index for a new nonce (never 0, which means "not tracked").
    pub fn reserve(&self) -> u32 {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i == 0 || i == u32::MAX {
                continue;
            }
            if let Some(s) = self.slot(i) {
                s.store(u64::from(i) << 32, Ordering::Release);
            }
            return i;
        }
    }

    /// Accepts nonce count `nc` for the nonce of `index` if it is above every count accepted
    /// before for it. Credentials without qop have no count: pass 1 (one use per nonce).
    pub fn use_nc(&self, index: u32, nc: u32) -> Result<(), UseError> {
        let s = self.slot(index).ok_or(UseError::Unknown)?;
        let mut cur = s.load(Ordering::Acquire);
        loop {
            if cur == FREE || (cur >> 32) as u32 != index {
                return Err(UseError::Unknown);
            }
            let last = (cur & 0xffff_ffff) as u32;
            if nc <= last {
                return Err(UseError::Replay);
            }
            let new = (u64::from(index) << 32) | u64::from(nc);
            match s.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(v) => cur = v,
            }
        }
    }

    fn slot(&self, index: u32) -> Option<&AtomicU64> {
        self.slots.get((index & self.mask) as usize)
    }
}

/// Parses an `nc` value (hex, as sent: usually 8 digits).
pub fn parse_nc(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 8 {
        return None;
    }
    s.iter()
        .try_fold(0u32, |acc, &c| Some((acc << 4) | u32::from(hex_val(c)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qop_offer_parse_and_accept() {
        assert_eq!(QopOffer::parse(b""), Some(QopOffer::None));
        assert_eq!(QopOffer::parse(b"auth"), Some(QopOffer::Auth));
        assert_eq!(QopOffer::parse(b"auth-int, auth"), Some(QopOffer::Both));
        assert_eq!(QopOffer::parse(b"1"), None);
        assert!(QopOffer::Auth.accepts(Qop::None));
        assert!(QopOffer::Both.accepts(Qop::AuthInt));
        assert!(!QopOffer::Auth.accepts(Qop::AuthInt));
        assert!(!QopOffer::None.accepts(Qop::Auth));
        assert!(QopOffer::None.accepts(Qop::None));
    }

    #[test]
    fn nc_parse() {
        assert_eq!(parse_nc(b"00000001"), Some(1));
        assert_eq!(parse_nc(b"0000000a"), Some(10));
        assert_eq!(parse_nc(b"ffffffff"), Some(u32::MAX));
        assert_eq!(parse_nc(b"100000000"), None);
        assert_eq!(parse_nc(b"x"), None);
        assert_eq!(parse_nc(b""), None);
    }
}
