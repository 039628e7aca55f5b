//! Digest authentication arithmetic for SIP and HTTP (RFC 2617, RFC 7616, RFC 8760): the six
//! algorithms (MD5, SHA-256 and SHA-512-256, each also `-sess`), HA1 from a password or a
//! stored hash, HA2 for `qop=auth`/`auth-int`, the response for every qop, constant-time
//! comparison, nonces that carry their own expiry and are authenticated with a secret
//! ([`NonceKey`]), and nonce-count replay tracking ([`NonceTracker`]).
//!
//! It is pure: no I/O, no clock (time is a parameter), no SIP parsing; it must not depend on
//! any other sipox crate.
#![forbid(unsafe_code)]

mod nonce;

pub use nonce::{
    NONCE_LEN, NonceError, NonceKey, NonceParams, NonceTracker, QopOffer, UseError, parse_nc,
};

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

/// A digest algorithm (`algorithm=` of a challenge or credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5` (also what an absent `algorithm` means).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256`.
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl Algorithm {
    /// Every algorithm, strongest first (the order RFC 8760 §2.4 asks challenges to be in).
    pub const STRONGEST_FIRST: [Self; 6] = [
        Self::Sha512_256Sess,
        Self::Sha512_256,
        Self::Sha256Sess,
        Self::Sha256,
        Self::Md5Sess,
        Self::Md5,
    ];

    /// Parses an `algorithm` value (ASCII case-insensitive, quotes allowed).
    pub fn parse(s: &[u8]) -> Option<Self> {
        let s = s
            .strip_prefix(b"\"")
            .and_then(|x| x.strip_suffix(b"\""))
            .unwrap_or(s);
        Self::STRONGEST_FIRST
            .into_iter()
            .find(|a| a.name().as_bytes().eq_ignore_ascii_case(s))
    }

    /// The name as written in headers.
    pub fn name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
            Self::Sha512_256 => "SHA-512-256",
            Self::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// True for the `-sess` variants.
    pub fn is_sess(self) -> bool {
        matches!(
            self,
            Self::Md5Sess | Self::Sha256Sess | Self::Sha512_256Sess
        )
    }

    /// The same hash without `-sess` (the hash a stored HA1 column holds).
    pub fn base(self) -> Self {
        match self {
            Self::Md5 | Self::Md5Sess => Self::Md5,
            Self::Sha256 | Self::Sha256Sess => Self::Sha256,
            Self::Sha512_256 | Self::Sha512_256Sess => Self::Sha512_256,
        }
    }

    /// Length of a hash in lowercase hex (32 for MD5, 64 otherwise).
    pub fn hex_len(self) -> usize {
        match self.base() {
            Self::Md5 => 32,
            _ => 64,
        }
    }

    /// A small number identifying the algorithm inside nonces.
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Md5 => 1,
            Self::Md5Sess => 2,
            Self::Sha256 => 3,
            Self::Sha256Sess => 4,
            Self::Sha512_256 => 5,
            Self::Sha512_256Sess => 6,
        }
    }

    pub(crate) fn from_code(c: u8) -> Option<Self> {
        Self::STRONGEST_FIRST.into_iter().find(|a| a.code() == c)
    }
}

/// The quality of protection used by credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    /// No `qop` (RFC 2069 compatibility): `response = H(HA1:nonce:HA2)`.
    None,
    /// `qop=auth`.
    Auth,
    /// `qop=auth-int` (HA2 covers the body).
    AuthInt,
}

impl Qop {
    /// Parses a credentials `qop` value (one token); `None` for anything else.
    pub fn parse(s: &[u8]) -> Option<Self> {
        let s = s
            .strip_prefix(b"\"")
            .and_then(|x| x.strip_suffix(b"\""))
            .unwrap_or(s);
        if s.eq_ignore_ascii_case(b"auth") {
            Some(Self::Auth)
        } else if s.eq_ignore_ascii_case(b"auth-int") {
            Some(Self::AuthInt)
        } else {
            None
        }
    }

    /// The token as written in credentials (empty for [`Qop::None`]).
    pub fn token(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Auth => "auth",
            Self::AuthInt => "auth-int",
        }
    }
}

/// A hash in lowercase hex, kept inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HashHex {
    buf: [u8; 64],
    len: u8,
}

impl HashHex {
    /// The hex text.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// The hex text as `&str`.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// Takes a stored hash (e.g. an `ha1` column) of the right length for `alg`, lowercased;
    /// `None` when the length is wrong or a character is not hex.
    pub fn from_hex(alg: Algorithm, s: &[u8]) -> Option<Self> {
        if s.len() != alg.hex_len() || !s.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let mut h = Self {
            buf: [0; 64],
            len: 0,
        };
        for (d, c) in h.buf.iter_mut().zip(s) {
            *d = c.to_ascii_lowercase();
        }
        h.len = u8::try_from(s.len()).ok()?;
        Some(h)
    }

    fn of_digest(d: &[u8]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut h = Self {
            buf: [0; 64],
            len: 0,
        };
        for (i, b) in d.iter().take(32).enumerate() {
            h.buf[2 * i] = HEX[usize::from(b >> 4)];
            h.buf[2 * i + 1] = HEX[usize::from(b & 15)];
        }
        h.len = u8::try_from(d.len().min(32) * 2).unwrap_or(64);
        h
    }
}

impl std::fmt::Debug for HashHex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `H(p1:p2:...)` in lowercase hex, with the hash of `alg`.
pub fn hash_parts(alg: Algorithm, parts: &[&[u8]]) -> HashHex {
    fn run<D: Digest>(parts: &[&[u8]]) -> HashHex {
        let mut d = D::new();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                d.update(b":");
            }
            d.update(p);
        }
        HashHex::of_digest(&d.finalize())
    }
    match alg.base() {
        Algorithm::Md5 => run::<Md5>(parts),
        Algorithm::Sha256 => run::<Sha256>(parts),
        _ => run::<Sha512_256>(parts),
    }
}

/// The base HA1, `H(username:realm:password)` (the value an `ha1` column stores).
pub fn ha1(alg: Algorithm, username: &[u8], realm: &[u8], password: &[u8]) -> HashHex {
    hash_parts(alg, &[username, realm, password])
}

/// The HA1 used in the response: the base HA1 itself, or for `-sess` algorithms
/// `H(HA1:nonce:cnonce)` (RFC 7616 §3.4.2).
pub fn session_ha1(alg: Algorithm, base: &HashHex, nonce: &[u8], cnonce: &[u8]) -> HashHex {
    if alg.is_sess() {
        hash_parts(alg, &[base.as_bytes(), nonce, cnonce])
    } else {
        *base
    }
}

/// HA2: `H(method:uri)`, or for `auth-int` `H(method:uri:H(body))` (RFC 7616 §3.4.3).
pub fn ha2(alg: Algorithm, qop: Qop, method: &[u8], uri: &[u8], body: &[u8]) -> HashHex {
    match qop {
        Qop::AuthInt => {
            let hb = hash_parts(alg, &[body]);
            hash_parts(alg, &[method, uri, hb.as_bytes()])
        }
        Qop::None | Qop::Auth => hash_parts(alg, &[method, uri]),
    }
}

/// The request digest: `H(HA1:nonce:nc:cnonce:qop:HA2)`, or `H(HA1:nonce:HA2)` without qop.
pub fn response(
    alg: Algorithm,
    ha1: &HashHex,
    nonce: &[u8],
    qop: Qop,
    nc: &[u8],
    cnonce: &[u8],
    ha2: &HashHex,
) -> HashHex {
    match qop {
        Qop::None => hash_parts(alg, &[ha1.as_bytes(), nonce, ha2.as_bytes()]),
        Qop::Auth | Qop::AuthInt => hash_parts(
            alg,
            &[
                ha1.as_bytes(),
                nonce,
                nc,
                cnonce,
                qop.token().as_bytes(),
                ha2.as_bytes(),
            ],
        ),
    }
}

/// Compares a received hex response with the expected one in constant time (for equal
/// lengths), ASCII case-insensitively.
pub fn hex_eq(expected: &HashHex, received: &[u8]) -> bool {
    let e = expected.as_bytes();
    if e.len() != received.len() {
        return false;
    }
    let mut diff = 0u8;
    for (a, b) in e.iter().zip(received) {
        diff |= a ^ b.to_ascii_lowercase();
    }
    diff == 0
}

/// Everything needed to check one set of credentials.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    /// The algorithm of the credentials.
    pub alg: Algorithm,
    /// The base HA1 (from a password with [`ha1`], or stored).
    pub ha1: &'a HashHex,
    /// Request method.
    pub method: &'a [u8],
    /// The `uri` of the credentials.
    pub uri: &'a [u8],
    /// The `nonce`.
    pub nonce: &'a [u8],
    /// The qop used.
    pub qop: Qop,
    /// The `nc` text (8 hex digits) as sent.
    pub nc: &'a [u8],
    /// The `cnonce`.
    pub cnonce: &'a [u8],
    /// The message body (for `auth-int`).
    pub body: &'a [u8],
    /// The `response` as sent.
    pub response: &'a [u8],
}

impl Check<'_> {
    /// The response we expect.
    pub fn expected(&self) -> HashHex {
        let h1 = session_ha1(self.alg, self.ha1, self.nonce, self.cnonce);
        let h2 = ha2(self.alg, self.qop, self.method, self.uri, self.body);
        response(
            self.alg,
            &h1,
            self.nonce,
            self.qop,
            self.nc,
            self.cnonce,
            &h2,
        )
    }

    /// True when the received response is right.
    pub fn verify(&self) -> bool {
        hex_eq(&self.expected(), self.response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_lengths() {
        for a in Algorithm::STRONGEST_FIRST {
            assert_eq!(Algorithm::parse(a.name().as_bytes()), Some(a));
            assert_eq!(Algorithm::from_code(a.code()), Some(a));
            assert_eq!(a.hex_len(), hash_parts(a, &[b"x"]).as_bytes().len());
        }
        assert_eq!(Algorithm::parse(b"md5"), Some(Algorithm::Md5));
        assert_eq!(Algorithm::parse(b"\"sha-256\""), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::parse(b"SHA-1"), None);
    }

    #[test]
    fn known_hashes() {
        // md5("") and sha256("") are well known.
        assert_eq!(
            hash_parts(Algorithm::Md5, &[b""]).as_str(),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(
            hash_parts(Algorithm::Sha256, &[b""]).as_str(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // FIPS 180-4 SHA-512/256 of "abc".
        assert_eq!(
            hash_parts(Algorithm::Sha512_256, &[b"abc"]).as_str(),
            "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
        );
    }

    #[test]
    fn hex_eq_is_case_insensitive_and_length_checked() {
        let h = hash_parts(Algorithm::Md5, &[b"a"]);
        let upper = h.as_str().to_ascii_uppercase();
        assert!(hex_eq(&h, upper.as_bytes()));
        assert!(!hex_eq(&h, &h.as_bytes()[1..]));
        let mut bad = h.as_bytes().to_vec();
        bad[0] ^= 1;
        assert!(!hex_eq(&h, &bad));
        assert!(HashHex::from_hex(Algorithm::Sha256, h.as_bytes()).is_none());
        assert_eq!(HashHex::from_hex(Algorithm::Md5, upper.as_bytes()), Some(h));
    }
}
