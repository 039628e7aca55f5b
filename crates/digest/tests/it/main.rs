//! The digest arithmetic against every published vector (RFC 2617 §3.5, RFC 7616 §3.9.1 and
//! the corrected §3.9.2), and the nonce format: tampering, expiry, replay.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::sync::Arc;

use sipox_digest::{
    Algorithm, Check, HashHex, NONCE_LEN, NonceError, NonceKey, NonceParams, NonceTracker, Qop,
    QopOffer, UseError, ha1, hash_parts, hex_eq,
};

struct Vector {
    id: String,
    alg: Algorithm,
    username: String,
    realm: String,
    password: String,
    method: String,
    uri: String,
    nonce: String,
    nc: String,
    cnonce: String,
    qop: Qop,
    printed: String,
    correct: String,
    extra: String,
}

fn vectors() -> Vec<Vector> {
    let text = include_str!("../data/http-digest-vectors.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (c_id, c_alg, c_user, c_realm, c_pw, c_m, c_uri, c_nonce, c_nc, c_cn, c_qop) = (
        col("id"),
        col("algorithm"),
        col("username"),
        col("realm"),
        col("password"),
        col("method"),
        col("uri"),
        col("nonce"),
        col("nc"),
        col("cnonce"),
        col("qop"),
    );
    let (c_pr, c_co, c_ex) = (
        col("response_printed_in_rfc"),
        col("correct_response"),
        col("extra"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Vector {
                id: f[c_id].to_owned(),
                alg: Algorithm::parse(f[c_alg].as_bytes()).unwrap(),
                username: f[c_user].to_owned(),
                realm: f[c_realm].to_owned(),
                password: f[c_pw].to_owned(),
                method: f[c_m].to_owned(),
                uri: f[c_uri].to_owned(),
                nonce: f[c_nonce].to_owned(),
                nc: f[c_nc].to_owned(),
                cnonce: f[c_cn].to_owned(),
                qop: Qop::parse(f[c_qop].as_bytes()).unwrap(),
                printed: f[c_pr].to_owned(),
                correct: f[c_co].to_owned(),
                extra: f.get(c_ex).copied().unwrap_or("").to_owned(),
            }
        })
        .collect()
}

#[test]
fn every_published_vector() {
    let vs = vectors();
    assert_eq!(vs.len(), 4, "all four rows of the shared file");
    for v in &vs {
        let h1 = ha1(
            v.alg,
            v.username.as_bytes(),
            v.realm.as_bytes(),
            v.password.as_bytes(),
        );
        let c = Check {
            alg: v.alg,
            ha1: &h1,
            method: v.method.as_bytes(),
            uri: v.uri.as_bytes(),
            nonce: v.nonce.as_bytes(),
            qop: v.qop,
            nc: v.nc.as_bytes(),
            cnonce: v.cnonce.as_bytes(),
            body: b"",
            response: v.correct.as_bytes(),
        };
        assert_eq!(c.expected().as_str(), v.correct, "{}", v.id);
        assert!(c.verify(), "{}", v.id);
        // A stored HA1 (as an ha1 column holds it) gives the same answer.
        let stored = HashHex::from_hex(v.alg, h1.as_bytes()).unwrap();
        assert!(Check { ha1: &stored, ..c }.verify(), "{}", v.id);
        // A wrong password fails.
        let bad = ha1(v.alg, v.username.as_bytes(), v.realm.as_bytes(), b"nope");
        assert!(!Check { ha1: &bad, ..c }.verify(), "{}", v.id);
        if v.printed != v.correct {
            // The RFC 7616 §3.9.2 erratum: the printed value is not SHA-512/256.
            assert_eq!(v.alg, Algorithm::Sha512_256);
            assert!(
                !Check {
                    response: v.printed.as_bytes(),
                    ..c
                }
                .verify()
            );
        }
    }
}

#[test]
fn rfc7616_userhash_is_real_sha512_256() {
    let v = vectors()
        .into_iter()
        .find(|v| v.alg == Algorithm::Sha512_256)
        .unwrap();
    // "correct SHA-512/256 userhash <hex>" in the extra column.
    let want = v
        .extra
        .split("correct SHA-512/256 userhash ")
        .nth(1)
        .unwrap()
        .split(|c: char| !c.is_ascii_hexdigit())
        .next()
        .unwrap();
    let got = hash_parts(v.alg, &[v.username.as_bytes(), v.realm.as_bytes()]);
    assert_eq!(got.as_str(), want);
}

#[test]
fn sess_and_auth_int_follow_the_rfc_formulas() {
    // -sess: HA1 = H(H(user:realm:pw):nonce:cnonce); auth-int: HA2 = H(method:uri:H(body)).
    for alg in [
        Algorithm::Md5Sess,
        Algorithm::Sha256Sess,
        Algorithm::Sha512_256Sess,
    ] {
        let base = ha1(alg, b"bob", b"biloxi.com", b"zanzibar");
        let sess = hash_parts(alg, &[base.as_bytes(), b"n1", b"c1"]);
        let h2 = hash_parts(
            alg,
            &[
                b"INVITE",
                b"sip:bob@biloxi.com",
                hash_parts(alg, &[b"v=0\r\n"]).as_bytes(),
            ],
        );
        let want = hash_parts(
            alg,
            &[
                sess.as_bytes(),
                b"n1",
                b"00000001",
                b"c1",
                b"auth-int",
                h2.as_bytes(),
            ],
        );
        let c = Check {
            alg,
            ha1: &base,
            method: b"INVITE",
            uri: b"sip:bob@biloxi.com",
            nonce: b"n1",
            qop: Qop::AuthInt,
            nc: b"00000001",
            cnonce: b"c1",
            body: b"v=0\r\n",
            response: want.as_bytes(),
        };
        assert!(c.verify(), "{alg:?}");
        // The body is covered: another body fails.
        assert!(
            !Check {
                body: b"v=1\r\n",
                ..c
            }
            .verify()
        );
        // The non-sess algorithm gives another answer.
        assert!(
            !Check {
                alg: alg.base(),
                ..c
            }
            .verify()
        );
    }
    // No qop (RFC 2069): response = H(HA1:nonce:HA2).
    let h1 = ha1(Algorithm::Md5, b"u", b"r", b"p");
    let h2 = hash_parts(Algorithm::Md5, &[b"REGISTER", b"sip:r"]);
    let want = hash_parts(Algorithm::Md5, &[h1.as_bytes(), b"n", h2.as_bytes()]);
    let c = Check {
        alg: Algorithm::Md5,
        ha1: &h1,
        method: b"REGISTER",
        uri: b"sip:r",
        nonce: b"n",
        qop: Qop::None,
        nc: b"",
        cnonce: b"",
        body: b"",
        response: want.as_bytes(),
    };
    assert!(c.verify());
    assert!(hex_eq(&want, want.as_str().to_uppercase().as_bytes()));
}

fn params(expires: i64, index: u32) -> NonceParams {
    NonceParams {
        expires,
        index,
        alg: Algorithm::Sha256,
        qop: QopOffer::Auth,
    }
}

#[test]
fn nonce_round_trip() {
    let k = NonceKey::new(b"secret");
    for alg in Algorithm::STRONGEST_FIRST {
        for qop in [
            QopOffer::None,
            QopOffer::Auth,
            QopOffer::AuthInt,
            QopOffer::Both,
        ] {
            let p = NonceParams {
                expires: 1_700_000_030,
                index: 77,
                alg,
                qop,
            };
            let n = k.issue_string(&p);
            assert_eq!(n.len(), NONCE_LEN);
            assert!(n.bytes().all(|c| c.is_ascii_hexdigit()));
            assert_eq!(k.open(n.as_bytes()), Ok(p));
            assert_eq!(k.open(n.to_uppercase().as_bytes()), Ok(p));
        }
    }
    // Two nonces differ when anything they carry differs.
    assert_ne!(
        k.issue_string(&params(10, 1)),
        k.issue_string(&params(10, 2))
    );
}

#[test]
fn tampered_or_foreign_nonces_are_refused() {
    let k = NonceKey::new(b"secret");
    let n = k.issue_string(&params(1_700_000_030, 5));
    // Every single-character change is caught.
    for i in 0..n.len() {
        let mut b = n.clone().into_bytes();
        b[i] = if b[i] == b'0' { b'1' } else { b'0' };
        assert_eq!(k.open(&b), Err(NonceError::Forged), "position {i}");
    }
    // Pushing the expiry forward is caught.
    let later = k.issue_string(&params(1_800_000_000, 5));
    let mut spliced = later[..30].to_owned();
    spliced.push_str(&n[30..]);
    assert_eq!(k.open(spliced.as_bytes()), Err(NonceError::Forged));
    // Another secret's nonce is refused.
    let other = NonceKey::new(b"other secret");
    assert_eq!(other.open(n.as_bytes()), Err(NonceError::Forged));
    // Malformed.
    assert_eq!(
        k.open(b"dcd98b7102dd2f0e8b11d0f600bfb0c093"),
        Err(NonceError::Malformed)
    );
    assert_eq!(k.open(&n.as_bytes()[1..]), Err(NonceError::Malformed));
    let mut nonhex = n.into_bytes();
    nonhex[3] = b'g';
    assert_eq!(k.open(&nonhex), Err(NonceError::Malformed));
}

#[test]
fn nonce_expiry() {
    let k = NonceKey::new(b"s");
    let now = 1_700_000_000;
    let p = k
        .open(k.issue_string(&params(now + 30, 1)).as_bytes())
        .unwrap();
    assert!(!p.is_stale(now));
    assert!(!p.is_stale(now + 30));
    assert!(p.is_stale(now + 31));
}

#[test]
fn replayed_nonce_counts_are_refused() {
    let t = NonceTracker::new(100);
    assert_eq!(t.capacity(), 128);
    let a = t.reserve();
    let b = t.reserve();
    assert_ne!(a, b);
    assert_ne!(a, 0);
    assert_eq!(t.use_nc(a, 1), Ok(()));
    assert_eq!(t.use_nc(a, 1), Err(UseError::Replay));
    assert_eq!(t.use_nc(a, 2), Ok(()));
    assert_eq!(t.use_nc(a, 5), Ok(()));
    assert_eq!(t.use_nc(a, 3), Err(UseError::Replay), "older count");
    assert_eq!(t.use_nc(b, 1), Ok(()), "independent per nonce");
    assert_eq!(t.use_nc(b, 0), Err(UseError::Replay), "0 is never valid");
    // Never issued.
    assert_eq!(t.use_nc(b + 1000, 1), Err(UseError::Unknown));
    assert_eq!(t.use_nc(0, 1), Err(UseError::Unknown));
}

#[test]
fn evicted_nonces_become_unknown_not_reusable() {
    let t = NonceTracker::new(64);
    let first = t.reserve();
    for _ in 0..64 {
        t.reserve();
    }
    // `first`'s slot now belongs to a newer nonce.
    assert_eq!(t.use_nc(first, 1), Err(UseError::Unknown));
}

#[test]
fn concurrent_use_of_one_count_succeeds_once() {
    let t = Arc::new(NonceTracker::new(64));
    let idx = t.reserve();
    let wins: usize = (0..8)
        .map(|_| {
            let t = Arc::clone(&t);
            std::thread::spawn(move || usize::from(t.use_nc(idx, 1).is_ok()))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(wins, 1);
}
