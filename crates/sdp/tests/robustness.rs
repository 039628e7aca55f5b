//! Mutation tests: truncations, byte flips and random edits of valid bodies
//! must never panic, and whatever parses must survive a print/parse round trip.

use sipox_sdp::{Limits, Sdp};

fn corpus() -> Vec<Vec<u8>> {
    let dir = format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"));
    let mut bodies: Vec<Vec<u8>> = [
        "sdp01.sdp",
        "wsinv.sdp",
        "ipv6-in-sdp.sdp",
        "mult-ip-in-sdp.sdp",
    ]
    .iter()
    .map(|n| std::fs::read(format!("{dir}/{n}")).expect("test vector readable"))
    .collect();
    bodies.push(
        b"v=0\r\no=alice smith 1 2 IN IP4 h\r\ns=x\r\ni=info\r\nu=http://u\r\ne=a@b\r\np=+1\r\n\
c=IN IP4 224.2.1.1/127/3\r\nb=CT:100\r\nt=10 20\r\nr=7d 1h 0 25h\r\nt=0 0\r\nz=2882844526 -1h\r\n\
k=prompt\r\na=recvonly\r\nx=unknown\r\ns=dup\r\nm=audio 49170/2 RTP/AVP 0 8 101\r\ni=m\r\n\
c=IN IP6 ff15::101/3\r\nc=IN IP4 10.0.0.1\r\nb=AS:64\r\nk=clear:x\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=rtcp:5001 IN IP4 10.0.0.1\r\n\
a=ptime:20\r\na=sendonly\r\ny=other\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
            .to_vec(),
    );
    bodies
}

/// Parses `body`; when it parses, checks the round-trip property. Returns
/// whether it parsed.
fn check(body: &[u8]) -> bool {
    let limits = Limits {
        max_lines: 64,
        max_media: 4,
        max_formats: 8,
    };
    let sdp = match Sdp::parse_with_limits(body, &limits) {
        Ok(sdp) => sdp,
        Err(e) => {
            assert!(e.offset() <= body.len(), "{e:?} beyond {}", body.len());
            return false;
        }
    };
    let printed = sdp.to_bytes();
    let reparsed = Sdp::parse(&printed);
    assert!(
        reparsed.is_ok(),
        "{reparsed:?}: {:?}\nfrom {:?}",
        String::from_utf8_lossy(&printed),
        String::from_utf8_lossy(body)
    );
    let again = reparsed.expect("checked above");
    assert_eq!(again, sdp, "input {:?}", String::from_utf8_lossy(body));
    assert_eq!(again.to_bytes(), printed);
    let owned = sdp.to_owned_model();
    assert_eq!(owned.to_bytes(), printed);
    true
}

#[test]
fn every_truncation() {
    for body in corpus() {
        let mut ok = 0;
        for end in 0..=body.len() {
            ok += usize::from(check(&body[..end]));
            ok += usize::from(check(&body[end..]));
        }
        // Most prefixes of a valid body are themselves valid.
        assert!(ok > body.len() / 2, "{ok} of {}", 2 * body.len());
    }
}

#[test]
fn every_byte_flipped() {
    const REPLACEMENTS: &[u8] = b"\0\n\r =/: \tam9x-\xff";
    for body in corpus() {
        for i in 0..body.len() {
            for &r in REPLACEMENTS {
                let mut m = body.clone();
                m[i] = r;
                check(&m);
            }
            let mut m = body.clone();
            m.remove(i);
            check(&m);
            let mut m = body.clone();
            m[i] ^= 0x20;
            check(&m);
        }
    }
}

/// xorshift64*, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        // Truncation is fine: only a pseudo-random index is needed.
        (self.next() % (n.max(1) as u64)) as usize
    }
}

#[test]
fn random_edits() {
    const ALPHABET: &[u8] = b"\r\n =/:.-0123456789amcbtvosirzkpeuAIPN4\t\x00\xc3";
    let corpus = corpus();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut ok = 0;
    for _ in 0..20_000 {
        let mut m = corpus[rng.below(corpus.len())].clone();
        for _ in 0..1 + rng.below(6) {
            let at = rng.below(m.len() + 1);
            match rng.below(4) {
                0 if at < m.len() => m[at] = ALPHABET[rng.below(ALPHABET.len())],
                1 if at < m.len() => {
                    m.remove(at);
                }
                2 => m.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
                _ => {
                    // Splice in a slice of another corpus body (line soup).
                    let other = &corpus[rng.below(corpus.len())];
                    let s = rng.below(other.len());
                    let e = (s + rng.below(40)).min(other.len());
                    m.splice(at..at, other[s..e].iter().copied());
                }
            }
        }
        ok += usize::from(check(&m));
    }
    // Both outcomes are exercised.
    assert!((2_000..18_000).contains(&ok), "{ok} parsed");
}

#[test]
fn pathological_inputs_are_bounded() {
    // Many lines: rejected at the limit, not after allocating them all.
    let many = b"a=x\n".repeat(100_000);
    assert!(matches!(
        Sdp::parse(&many),
        Err(sipox_sdp::SdpError::TooManyLines { limit: 4096, offset }) if offset == 4096 * 4
    ));
    // Many formats on one m= line.
    let mut m = b"m=audio 1 RTP/AVP".to_vec();
    m.extend(b" 0".repeat(10_000));
    assert!(matches!(
        Sdp::parse(&m),
        Err(sipox_sdp::SdpError::TooManyFormats { limit: 256, .. })
    ));
    // Many blank lines are skipped without counting against the limit.
    let mut blanks = b"\r\n".repeat(100_000);
    blanks.extend_from_slice(b"v=0\r\n");
    assert_eq!(Sdp::parse(&blanks).unwrap().version, Some(0));
    // A very long single line is fine (linear).
    let mut long = b"a=".to_vec();
    long.extend(std::iter::repeat_n(b'x', 1_000_000));
    assert_eq!(
        Sdp::parse(&long).unwrap().attributes[0].name.len(),
        1_000_000
    );
    // Bare CRs, NULs and high bytes.
    for body in [
        &b"\r\r\r"[..],
        b"\0",
        b"\xff=\xff",
        b"v=\xff",
        b"a=\0:\0",
        b"m=\0 1 \0 \0",
    ] {
        let _ = Sdp::parse(body);
    }
}
