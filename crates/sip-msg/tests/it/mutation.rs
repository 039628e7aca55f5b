//! Robustness on the stable toolchain: every parser runs over systematically mutated torture
//! messages (truncation at every offset, byte flips, CRLF removal and duplication, huge repeats).
//! The assertion is that nothing panics and that the work stays bounded.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sipox_sip_msg::{
    HeaderKind, ReplyOpts, SipMsg, StreamFramer, build_reply, option_tags, parse_auth, parse_date,
    parse_media_type, parse_multipart, parse_token_params,
};

use crate::data;

fn corpus() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for dir in [
        "rfc4475/valid",
        "rfc4475/invalid",
        "rfc4475/extra",
        "rfc5118/wire",
    ] {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(dir);
        let mut names: Vec<_> = std::fs::read_dir(&p)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for n in names {
            v.push(data(&format!("{dir}/{}", n.to_string_lossy())));
        }
    }
    v.push(crate::alloc::INVITE.to_vec());
    v.push(crate::alloc::REGISTER.to_vec());
    v.push(crate::alloc::OK200.to_vec());
    v
}

/// Runs every parser the crate has over one input.
fn exercise(input: &[u8]) {
    let Ok(mut m) = SipMsg::parse(Bytes::copy_from_slice(input)) else {
        return;
    };
    let _ = m.validate();
    let _ = m
        .ruri()
        .map(|u| (u.user(), u.host(), u.params().len(), u.headers()));
    for v in m.vias() {
        let _ = v.map(|v| (v.branch(), v.received(), v.rport(), v.params().len()));
    }
    let _ = m.from().map(|f| (f.tag(), f.display(), f.uri().port()));
    let _ = m.to().map(|t| t.tag());
    let _ = m.cseq().map(|c| c.number());
    let _ = m.max_forwards();
    for c in m.contacts() {
        let _ = c;
    }
    for kind in [
        HeaderKind::Route,
        HeaderKind::RecordRoute,
        HeaderKind::Path,
        HeaderKind::PAssertedIdentity,
    ] {
        for r in m.name_addrs(kind) {
            let _ = r.map(|n| (n.q(), n.expires()));
        }
    }
    let buf = m.buf();
    for h in m.headers() {
        match h.kind {
            HeaderKind::Authorization
            | HeaderKind::ProxyAuthorization
            | HeaderKind::WwwAuthenticate => {
                if let Ok(a) = parse_auth(buf, h.value) {
                    let _ = m.bind(a).username();
                }
            }
            HeaderKind::ContentType => {
                if let Ok(ct) = parse_media_type(buf, h.value)
                    && let Some(b) = m.bind(ct).boundary()
                {
                    let _ = parse_multipart(buf, m.body_span(), b);
                }
            }
            HeaderKind::Date => {
                let _ = parse_date(buf, h.value);
            }
            HeaderKind::Require | HeaderKind::Supported | HeaderKind::ProxyRequire => {
                let _ = option_tags(buf, h.value).count();
            }
            HeaderKind::Event | HeaderKind::RetryAfter | HeaderKind::SessionExpires => {
                let _ = parse_token_params(buf, h.value);
            }
            _ => {}
        }
    }
    if m.is_request() {
        let mut out = Vec::new();
        let _ = build_reply(
            &m,
            404,
            b"Not Found",
            &ReplyOpts {
                to_tag: Some(b"x"),
                via_rport: Some(1),
                ..ReplyOpts::default()
            },
            &mut out,
        );
    }
    m.push_via(b"SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx");
    m.pop_via();
    m.add_record_route(b"<sip:192.0.2.1;lr>");
    m.set_body(None, &b"x"[..]);
    let mut out = Vec::new();
    let _ = m.write_to(&mut out);
    // Stream framing over the same bytes, fed in small pieces.
    let mut f = StreamFramer::default();
    let mut b = BytesMut::new();
    for chunk in input.chunks(97) {
        b.extend_from_slice(chunk);
        while let Ok(Some(_)) = f.next_frame(&mut b) {}
    }
}

const SPECIALS: [u8; 12] = [
    b'\r', b'\n', b' ', b':', b';', b',', b'"', b'<', b'>', b'%', 0, 0xff,
];

#[test]
#[allow(clippy::disallowed_methods)] // a wall-clock bound on total work, not a benchmark
fn mutated_torture_messages_never_panic() {
    let start = std::time::Instant::now();
    let mut runs = 0usize;
    for msg in corpus() {
        for cut in 0..=msg.len() {
            exercise(&msg[..cut]);
            runs += 1;
        }
        let mut m = msg.clone();
        for i in 0..m.len() {
            let orig = m[i];
            for s in SPECIALS {
                m[i] = s;
                exercise(&m);
                runs += 1;
            }
            m[i] = orig;
        }
        // Remove each CRLF in turn, and duplicate each in turn.
        let crlfs: Vec<usize> = msg
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w == b"\r\n")
            .map(|(i, _)| i)
            .collect();
        for &i in &crlfs {
            let mut r = msg[..i].to_vec();
            r.extend_from_slice(&msg[i + 2..]);
            exercise(&r);
            let mut d = msg[..i].to_vec();
            d.extend_from_slice(b"\r\n\r\n");
            d.extend_from_slice(&msg[i + 2..]);
            exercise(&d);
            runs += 2;
        }
    }
    let elapsed = start.elapsed();
    assert!(runs > 100_000, "{runs}");
    assert!(
        elapsed < Duration::from_secs(600),
        "mutation run took {elapsed:?}"
    );
}

#[test]
#[allow(clippy::disallowed_methods)]
fn huge_repeats_are_bounded() {
    let base = crate::alloc::INVITE;
    let cut = base.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2;
    let cases: Vec<Vec<u8>> = vec![
        // 100k Via headers (over the header limit)
        [
            &base[..cut],
            &b"Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\n".repeat(100_000)[..],
            b"\r\n",
        ]
        .concat(),
        // one Via line with 20k comma-separated values (under the line limit? no: over it)
        [
            &base[..cut],
            b"Via: ",
            &b"SIP/2.0/UDP h;branch=z9hG4bKx,".repeat(20_000)[..],
            b"\r\n\r\n",
        ]
        .concat(),
        // 2000 values on one line, under the limits: parsed
        [
            &base[..cut],
            b"Route: ",
            &b"<sip:a;lr>,".repeat(1_400)[..],
            b"\r\n\r\n",
        ]
        .concat(),
        // a parameter repeated many times
        [
            &b"OPTIONS sip:a@b"[..],
            &b";x".repeat(30_000)[..],
            b" SIP/2.0\r\n\r\n",
        ]
        .concat(),
        // deep nothing: megabytes of the same byte
        vec![b'A'; 2_000_000],
        vec![b'\r'; 1_000_000],
        [&b"SIP/2.0 200 OK\r\nX: "[..], &b"\"".repeat(60_000)[..]].concat(),
    ];
    for c in &cases {
        let start = std::time::Instant::now();
        exercise(c);
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "took {:?}",
            start.elapsed()
        );
    }
    let too_many = SipMsg::parse(Bytes::from(cases[0].clone())).unwrap_err();
    assert_eq!(too_many.kind, sipox_sip_msg::ErrorKind::TooLarge);
}
