//! RFC 4475 and RFC 5118 torture messages: each message's core outcome (accept, 400, 505, 501,
//! drop) must be one the expectations file allows, and the fields an element decides on must
//! parse to the specific values below.

use bytes::Bytes;
use sipox_sip_msg::{
    ContactValue, ErrorKind, HeaderKind, HostKind, Method, ParseError, Scheme, SipMsg, Transport,
    looks_like_response, option_tags, parse_auth, parse_date, parse_delta, parse_media_type,
    parse_multipart,
};

use crate::data;

/// What the message core makes of a datagram: parse, then the receipt checks.
fn core(bytes: &[u8]) -> Result<SipMsg, ParseError> {
    let m = SipMsg::parse(Bytes::copy_from_slice(bytes))?;
    m.validate()?;
    Ok(m)
}

fn outcome(bytes: &[u8], r: &Result<SipMsg, ParseError>) -> String {
    match r {
        Ok(_) => "accept".into(),
        Err(e) => match e.reply_code(!looks_like_response(bytes)) {
            Some(c) => c.to_string(),
            None => "drop".into(),
        },
    }
}

/// True when `got` (a core outcome) is one of the alternatives of an expectation. Element-level
/// outcomes (416, 420, 483, a registrar's 200, ...) need the core to accept the message.
fn allowed(expected: &str, got: &str) -> bool {
    expected.split('|').any(|alt| {
        let alt = alt.rsplit(':').next().unwrap_or(alt);
        match alt {
            "400" | "505" | "501" | "drop" => got == alt,
            _ => got == "accept",
        }
    })
}

fn expectations(path: &str) -> Vec<(String, String, String)> {
    let text = String::from_utf8(data(path)).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (
                c[0].to_string(),
                c[1].to_string(),
                c.get(if path.contains("4475") { 4 } else { 2 })
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

fn kind(r: &Result<SipMsg, ParseError>) -> ErrorKind {
    r.as_ref().err().map(|e| e.kind).expect("expected an error")
}

#[test]
fn rfc4475_every_message() {
    let rows = expectations("rfc4475/expectations.tsv");
    assert_eq!(rows.len(), 50, "49 section-3 messages plus test.dat");
    let mut checked = 0;
    for (file, folder, expected) in &rows {
        let bytes = data(&format!("rfc4475/{folder}/{file}"));
        let r = core(&bytes);
        let mut got = outcome(&bytes, &r);
        // A proxy relays a response to the second Via; it drops one whose target is unsafe.
        if let Ok(m) = &r
            && !m.is_request()
            && m.vias()
                .nth(1)
                .is_some_and(|v| v.is_ok_and(|v| v.is_unsafe_reply_target()))
        {
            got = "drop".into();
        }
        if expected != "-" {
            assert!(
                allowed(expected, &got),
                "{file}: expected {expected}, got {got} ({:?})",
                r.as_ref().err()
            );
        }
        check_4475(file, &r);
        checked += 1;
    }
    assert_eq!(checked, 50);
}

#[allow(clippy::too_many_lines)]
fn check_4475(file: &str, r: &Result<SipMsg, ParseError>) {
    let ok = || r.as_ref().unwrap_or_else(|e| panic!("{file}: {e:?}"));
    match file {
        "wsinv.dat" => {
            let m = ok();
            assert_eq!(m.method(), Some(Method::Invite));
            let u = m.ruri().unwrap();
            assert_eq!(u.user(), Some(&b"vivekg"[..]));
            assert_eq!(u.host(), b"chair-dnrc.example.com");
            assert_eq!(u.param(b"unknownparam"), Some(None));
            assert_eq!(m.to().unwrap().tag(), Some(&b"1918181833n"[..]));
            assert_eq!(m.from().unwrap().tag(), Some(&b"98asjd8"[..]));
            assert_eq!(
                m.from().unwrap().display(),
                Some(&br#""J Rosenberg \\\"""#[..])
            );
            assert_eq!(m.max_forwards().unwrap(), Some(68));
            assert_eq!(m.cseq().unwrap().number(), 9);
            assert_eq!(m.cseq().unwrap().method(), Method::Invite);
            assert_eq!(m.content_length(), Some(150));
            assert_eq!(m.body().len(), 150);
            let vias: Vec<_> = m.vias().map(Result::unwrap).collect();
            assert_eq!(vias.len(), 3);
            assert_eq!(
                (vias[0].transport(), vias[0].host()),
                (Transport::Udp, &b"192.0.2.2"[..])
            );
            assert_eq!(vias[0].branch(), Some(&b"390skdjuw"[..]));
            assert_eq!(
                (vias[1].transport(), vias[1].host()),
                (Transport::Tcp, &b"spindle.example.com"[..])
            );
            assert_eq!(vias[1].branch(), Some(&b"z9hG4bK9ikj8"[..]));
            assert_eq!(vias[2].host(), b"192.168.255.111");
            assert_eq!(vias[2].branch(), Some(&b"z9hG4bK30239"[..]));
            let c: Vec<_> = m.contacts().map(Result::unwrap).collect();
            assert_eq!(c.len(), 1);
            let ContactValue::Addr(a) = c[0].v else {
                panic!("star")
            };
            let a = m.bind(a);
            assert_eq!(a.q(), Some(330));
            assert_eq!(a.param(b"newparam"), Some(Some(&b"newvalue"[..])));
            assert_eq!(m.count_of(HeaderKind::Subject), 1);
            let nf = m.header_named(b"newfangledheader").unwrap();
            assert!(m.value(nf).starts_with(b"newfangled value"));
            assert!(m.value(nf).ends_with(b"continued newfangled value"));
            let route = m.name_addrs(HeaderKind::Route).next().unwrap().unwrap();
            assert!(route.uri().is_lr());
        }
        "intmeth.dat" => {
            let m = ok();
            assert_eq!(m.method(), Some(Method::Other));
            assert_eq!(
                m.method_bytes(),
                b"!interesting-Method0123456789_*+`.%indeed'~"
            );
            let u = m.ruri().unwrap();
            assert_eq!(
                u.user(),
                Some(&b"1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"[..])
            );
            assert_eq!(
                u.password(),
                Some(&b"&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"[..])
            );
            assert_eq!(u.host(), b"example.com");
            assert_eq!(m.cseq().unwrap().number(), 139122385);
            assert_eq!(m.max_forwards().unwrap(), Some(255));
            assert_eq!(m.from().unwrap().tag(), Some(&b"_token~1'+`*%!-."[..]));
            assert_eq!(
                m.from().unwrap().display(),
                Some(&b"token1~` token2'+_ token3*%!.-"[..])
            );
            assert!(m.header_named(b"extensionHeader-!.%*+_`'~").is_some());
            assert_eq!(
                m.via1().unwrap().branch(),
                Some(&b"z9hG4bK-.!%66*_+`'~"[..])
            );
        }
        "esc01.dat" => {
            let m = ok();
            let u = m.ruri().unwrap();
            assert_eq!(u.user(), Some(&b"sips%3Auser%40example.com"[..]));
            assert_eq!(u.host(), b"example.net");
            // escaped user parts compare equal to their unescaped forms
            let to = m.to().unwrap();
            assert!(
                to.uri()
                    .equals(&sipox_sip_msg::uri(b"sip:user@example.com").unwrap())
            );
            let c = m.name_addrs(HeaderKind::Contact).next().unwrap().unwrap();
            assert!(!c.uri().equals(
                &sipox_sip_msg::uri(b"sip:caller@host5.example.net;lr;name=value%41").unwrap()
            ));
            assert!(c.uri().equals(
                &sipox_sip_msg::uri(b"sip:caller@host5.example.net;lr;name=value%2541").unwrap()
            ));
            assert_eq!(
                m.value_of(HeaderKind::ContentType),
                Some(&b"application/sdp"[..])
            );
        }
        "escnull.dat" => {
            let m = ok();
            assert_eq!(m.to().unwrap().uri().user(), Some(&b"null-%00-null"[..]));
            let c: Vec<_> = m
                .name_addrs(HeaderKind::Contact)
                .map(Result::unwrap)
                .collect();
            assert_eq!(c.len(), 2);
            assert_eq!(c[1].uri().user(), Some(&b"%00%00"[..]));
            assert!(!c[0].uri().equals(&c[1].uri()));
        }
        "esc02.dat" => {
            let m = ok();
            assert_eq!(m.method(), Some(Method::Other));
            assert_eq!(m.method_bytes(), b"RE%47IST%45R");
            assert_eq!(m.contacts().count(), 2, "C%6Fntact is not Contact");
            assert!(m.header_named(b"C%6Fntact").is_some());
            assert_eq!(m.to().unwrap().display(), Some(&b"\"%Z%45\""[..]));
        }
        "lwsdisp.dat" => {
            let m = ok();
            assert_eq!(m.from().unwrap().display(), Some(&b"caller"[..]));
            assert_eq!(m.from().unwrap().tag(), Some(&b"323"[..]));
        }
        "longreq.dat" => {
            let m = ok();
            assert_eq!(m.headers().len(), 43);
            assert_eq!(m.values(HeaderKind::Via).count(), 34);
            assert_eq!(m.to().unwrap().uri().port(), Some(6000));
            assert_eq!(m.from().unwrap().tag().map(<[u8]>::len), Some(155));
            assert_eq!(m.cseq().unwrap().number(), 3882340);
            assert_eq!(m.body().len(), m.content_length().unwrap() as usize);
        }
        "dblreq.dat" => {
            let m = ok();
            assert_eq!(m.method(), Some(Method::Register));
            assert_eq!(m.content_length(), Some(0));
            assert!(m.body().is_empty());
            assert_eq!(
                m.call_id(),
                Some(&b"dblreq.0ha0isndaksdj99sdfafnl3lk233412"[..])
            );
            assert!(
                !m.raw().windows(6).any(|w| w == b"INVITE"),
                "trailing octets discarded"
            );
        }
        "semiuri.dat" => {
            let m = ok();
            let u = m.ruri().unwrap();
            assert_eq!(u.user(), Some(&b"user;par=u%40example.net"[..]));
            assert_eq!(u.host(), b"example.com");
            assert!(u.params().is_empty());
            assert_eq!(m.values(HeaderKind::Accept).count(), 6);
        }
        "transports.dat" => {
            let m = ok();
            let t: Vec<Transport> = m.vias().map(|v| v.unwrap().transport()).collect();
            assert_eq!(
                t,
                [
                    Transport::Udp,
                    Transport::Sctp,
                    Transport::Tls,
                    Transport::Other,
                    Transport::Tcp
                ]
            );
            assert_eq!(
                m.call_id(),
                Some(&b"transports.kijh4akdnaqjkwendsasfdj"[..])
            );
        }
        "mpart01.dat" => {
            let m = ok();
            let ct = m.bind(
                parse_media_type(m.buf(), m.header(HeaderKind::ContentType).unwrap().value)
                    .unwrap(),
            );
            assert!(ct.is(b"multipart", b"mixed"));
            assert_eq!(ct.boundary(), Some(&b"7a9cbec02ceef655"[..]));
            let parts = parse_multipart(m.buf(), m.body_span(), ct.boundary().unwrap()).unwrap();
            assert_eq!(parts.len(), 2);
            assert_eq!(
                sipox_sip_msg::part_header(m.buf(), &parts[0], b"content-type"),
                Some(&b"text/plain"[..])
            );
            assert_eq!(
                sipox_sip_msg::part_header(m.buf(), &parts[1], b"Content-Type"),
                Some(&b"application/octet-stream"[..])
            );
            assert!(parts[1].body.of(m.buf()).contains(&b'\n'));
            let d = parse_date(m.buf(), m.header(HeaderKind::Date).unwrap().value).unwrap();
            assert_eq!((d.year, d.month, d.day), (2005, 10, 15));
            assert_eq!(m.via1().unwrap().rport(), Some(None));
        }
        "unreason.dat" => {
            let m = ok();
            assert_eq!(m.status(), Some(200));
            assert!(std::str::from_utf8(m.reason()).unwrap().contains("простое"));
        }
        "noreason.dat" => {
            let m = ok();
            assert_eq!(m.status(), Some(100));
            assert!(m.reason().is_empty());
        }
        "badinv01.dat" => {
            assert_eq!(kind(r), ErrorKind::BadParam);
        }
        "clerr.dat" => assert_eq!(kind(r), ErrorKind::BodyTooShort),
        "ncl.dat" => assert_eq!(kind(r), ErrorKind::BadContentLength),
        "scalar02.dat" => {
            assert_eq!(kind(r), ErrorKind::BadCSeq);
            let m = SipMsg::parse(Bytes::from(data("rfc4475/invalid/scalar02.dat"))).unwrap();
            // Max-Forwards 300 and the overlarge Expires do not themselves fail parsing here.
            assert_eq!(m.max_forwards().unwrap(), Some(300));
            assert!(parse_delta(m.buf(), m.header(HeaderKind::Expires).unwrap().value).is_err());
        }
        "scalarlg.dat" => assert_eq!(kind(r), ErrorKind::BadCSeq),
        "quotbal.dat" => assert_eq!(kind(r), ErrorKind::UnterminatedQuote),
        "ltgtruri.dat" => assert_eq!(kind(r), ErrorKind::BadUri),
        "lwsruri.dat" | "lwsstart.dat" | "trws.dat" => assert_eq!(kind(r), ErrorKind::BadStartLine),
        "escruri.dat" => assert_eq!(kind(r), ErrorKind::RuriHeaders),
        "baddate.dat" => {
            let m = ok();
            let d = m.header(HeaderKind::Date).unwrap();
            assert_eq!(
                parse_date(m.buf(), d.value).unwrap_err().kind,
                ErrorKind::BadDate
            );
            assert_eq!(
                m.value(d),
                b"Fri, 01 Jan 2010 16:00:00 EST",
                "forwarded unchanged"
            );
        }
        "regbadct.dat" => assert_eq!(kind(r), ErrorKind::BadNameAddr),
        "badaspec.dat" => assert_eq!(kind(r), ErrorKind::BadUri),
        "baddn.dat" => assert_eq!(kind(r), ErrorKind::BadNameAddr),
        "badvers.dat" => assert_eq!(kind(r), ErrorKind::BadVersion),
        "mismatch01.dat" => assert_eq!(kind(r), ErrorKind::CSeqMismatch),
        "mismatch02.dat" => assert_eq!(kind(r), ErrorKind::CSeqMismatchUnknownMethod),
        "bigcode.dat" => assert_eq!(kind(r), ErrorKind::BadStatusCode),
        "badbranch.dat" => {
            let m = ok();
            let v = m.via1().unwrap();
            assert_eq!(v.branch(), Some(&b"z9hG4bK"[..]));
            assert!(!v.has_rfc3261_branch(), "falls back to RFC 2543 matching");
        }
        "insuf.dat" => assert_eq!(kind(r), ErrorKind::Missing),
        "unkscm.dat" => {
            let m = ok();
            let u = m.ruri().unwrap();
            assert_eq!(u.v.scheme, Scheme::Other);
            assert_eq!(u.scheme_str(), b"nobodyKnowsThisScheme");
        }
        "novelsc.dat" => {
            let m = ok();
            assert_eq!(m.ruri().unwrap().v.scheme, Scheme::Other);
            assert_eq!(m.ruri().unwrap().scheme_str(), b"soap.beep");
        }
        "unksm2.dat" => {
            let m = ok();
            assert_eq!(m.to().unwrap().uri().v.scheme, Scheme::Other);
            assert_eq!(m.from().unwrap().uri().scheme_str(), b"http");
            let c = m.name_addrs(HeaderKind::Contact).next().unwrap().unwrap();
            assert_eq!(c.uri().scheme_str(), b"name");
        }
        "bext01.dat" => {
            let m = ok();
            let pr: Vec<&[u8]> = m
                .headers_of(HeaderKind::ProxyRequire)
                .flat_map(|h| option_tags(m.buf(), h.value))
                .collect();
            assert_eq!(
                pr,
                [&b"noProxiesSupportThis"[..], b"norDoAnyProxiesSupportThis"]
            );
            let rq: Vec<&[u8]> = m
                .headers_of(HeaderKind::Require)
                .flat_map(|h| option_tags(m.buf(), h.value))
                .collect();
            assert_eq!(rq.len(), 2);
            assert_eq!(m.via1().unwrap().transport(), Transport::Tls);
        }
        "invut.dat" => {
            let m = ok();
            let ct = m.bind(
                parse_media_type(m.buf(), m.header(HeaderKind::ContentType).unwrap().value)
                    .unwrap(),
            );
            assert!(ct.is(b"application", b"unknownformat"));
            assert_eq!(m.body().len(), 40);
        }
        "regaut01.dat" => {
            let m = ok();
            let a = m.bind(
                parse_auth(m.buf(), m.header(HeaderKind::Authorization).unwrap().value).unwrap(),
            );
            assert!(!a.is_digest());
            assert_eq!(a.scheme(), b"NoOneKnowsThisScheme");
            assert_eq!(a.param(b"opaque-data"), Some(&b"here"[..]));
        }
        "multi01.dat" => assert_eq!(kind(r), ErrorKind::Duplicate),
        "mcl01.dat" => assert_eq!(kind(r), ErrorKind::MultipleContentLength),
        "bcast.dat" => {
            let m = ok();
            let v: Vec<_> = m.vias().map(Result::unwrap).collect();
            assert_eq!(v[1].host(), b"255.255.255.255");
            assert_eq!(v[1].v.host_kind, HostKind::Ipv4);
        }
        "zeromf.dat" => assert_eq!(ok().max_forwards().unwrap(), Some(0)),
        "cparam01.dat" => {
            let m = ok();
            let c = m.name_addrs(HeaderKind::Contact).next().unwrap().unwrap();
            assert!(
                c.uri().params().is_empty(),
                "unknownparam is a contact-param"
            );
            assert_eq!(c.param(b"unknownparam"), Some(None));
            assert_eq!(c.uri().raw(), b"sip:+19725552222@gw1.example.net");
        }
        "cparam02.dat" => {
            let m = ok();
            let c = m.name_addrs(HeaderKind::Contact).next().unwrap().unwrap();
            assert_eq!(
                c.uri().param(b"unknownparam"),
                Some(None),
                "a URI parameter"
            );
            assert!(c.params().is_empty());
        }
        "regescrt.dat" => {
            let m = ok();
            let c = m.name_addrs(HeaderKind::Contact).next().unwrap().unwrap();
            assert_eq!(
                c.uri().headers(),
                Some(&b"Route=%3Csip:sip.example.com%3E"[..])
            );
        }
        "sdp01.dat" => {
            let m = ok();
            assert_eq!(
                m.value_of(HeaderKind::Accept),
                Some(&b"text/nobodyKnowsThis"[..])
            );
            assert_eq!(m.body().len(), 150);
        }
        "inv2543.dat" => {
            let m = ok();
            let v = m.via1().unwrap();
            assert_eq!(v.branch(), None);
            assert!(m.from().unwrap().tag().is_none());
            assert_eq!(m.content_length(), None);
            assert_eq!(m.max_forwards().unwrap(), None);
            assert!(m.body().starts_with(b"v=0"));
            assert_eq!(
                m.from().unwrap().uri().param(b"user"),
                Some(Some(&b"phone"[..]))
            );
        }
        "test.dat" => {
            // Not a section 3 message: its request line has no SIP-Version (and a later
            // "Foobar roobar" line has no colon).
            assert_eq!(kind(r), ErrorKind::BadStartLine);
        }
        other => panic!("no assertions for {other}"),
    }
}

#[test]
fn rfc5118_every_message() {
    let rows = expectations("rfc5118/expectations.tsv");
    assert_eq!(rows.len(), 12);
    for (file, _section, exp) in &rows {
        let bytes = data(&format!("rfc5118/wire/{file}.sip"));
        let r = core(&bytes);
        let got = outcome(&bytes, &r);
        if file == "ipv6-in-sdp" {
            // The RFC's printed Content-Length (268) exceeds the body (251 octets with CRLF):
            // a datagram element must answer 400. With the length corrected it is accepted.
            assert_eq!(kind(&r), ErrorKind::BodyTooShort);
            let fixed = String::from_utf8(bytes.clone())
                .unwrap()
                .replace("Content-Length: 268", "Content-Length: 251");
            let m = core(fixed.as_bytes()).unwrap();
            assert!(m.body().windows(11).any(|w| w == b"c=IN IP6 20"));
            continue;
        }
        assert!(
            allowed(exp, &got),
            "{file}: expected {exp}, got {got} ({:?})",
            r.as_ref().err()
        );
        check_5118(file, &r);
    }
}

fn check_5118(file: &str, r: &Result<SipMsg, ParseError>) {
    let ok = || r.as_ref().unwrap_or_else(|e| panic!("{file}: {e:?}"));
    match file {
        "ipv6-good" => {
            let u = ok().ruri().unwrap();
            assert_eq!(u.host(), b"[2001:db8::10]");
            assert_eq!(u.v.host_kind, HostKind::Ipv6);
            assert_eq!(u.port(), None);
        }
        "ipv6-bad" => assert_eq!(kind(r), ErrorKind::BadHost),
        "port-ambiguous" => {
            let u = ok().ruri().unwrap();
            assert_eq!(u.host(), b"[2001:db8::10:5070]");
            assert_eq!(u.port(), None);
        }
        "port-unambiguous" => {
            let u = ok().ruri().unwrap();
            assert_eq!(u.host(), b"[2001:db8::10]");
            assert_eq!(u.port(), Some(5070));
        }
        "via-received-param-with-delim" => {
            assert_eq!(
                ok().via1().unwrap().received(),
                Some(&b"[2001:db8::9:255]"[..])
            );
        }
        "via-received-param-no-delim" => {
            assert_eq!(
                ok().via1().unwrap().received(),
                Some(&b"2001:db8::9:255"[..])
            );
        }
        "mult-ip-in-header" => {
            let m = ok();
            let v: Vec<_> = m.vias().map(Result::unwrap).collect();
            assert_eq!(v.len(), 3);
            assert_eq!(
                (v[0].host(), v[0].port()),
                (&b"[2001:db8::9:1]"[..], Some(6050))
            );
            assert_eq!(v[1].v.host_kind, HostKind::Ipv4);
            assert_eq!(v[2].received(), Some(&b"192.0.2.200"[..]));
        }
        "mult-ip-in-sdp" => {
            // Printed Content-Length 181 is shorter than the body: the datagram rule keeps 181.
            let m = ok();
            assert_eq!(m.body().len(), 181);
            assert!(m.body().windows(8).any(|w| w == b"IN IP6 2"));
        }
        "ipv4-mapped-ipv6" => {
            let m = ok();
            assert!(m.raw().windows(15).any(|w| w == b"::ffff:192.0.2."));
            m.vias().for_each(|v| {
                v.unwrap();
            });
        }
        "ipv6-bug-abnf-3-colons" => {
            // Lenient, as RFC 5118 §4.10 asks.
            let m = ok();
            assert!(m.ruri().unwrap().host().starts_with(b"[2001:db8:::"));
        }
        "ipv6-correct-abnf-2-colons" => {
            assert_eq!(ok().ruri().unwrap().host(), b"[2001:db8::192.0.2.1]");
        }
        other => panic!("no assertions for {other}"),
    }
}
