//! Typed views of the other headers the issue lists, read from one realistic message each.

use bytes::Bytes;
use sipox_sip_msg::{
    ContactValue, HeaderKind, Method, SipMsg, option_tags, parse_delta, parse_token_params,
    token_params_list,
};

const NOTIFY: &[u8] = b"NOTIFY sip:alice@192.0.2.4:5060;transport=tcp SIP/2.0\r\n\
Via: SIP/2.0/TCP pres.example.com;branch=z9hG4bKpres1\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=pres-7\r\n\
To: <sip:alice@example.com>;tag=ua-3\r\n\
Call-ID: sub-1@192.0.2.4\r\n\
CSeq: 2 NOTIFY\r\n\
o: presence;id=17\r\n\
Subscription-State: active;expires=3599\r\n\
Allow-Events: presence, dialog\r\n\
Refer-To: <sip:carol@example.com?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>\r\n\
P-Asserted-Identity: \"Alice\" <sip:alice@example.com>, <tel:+15551234567>\r\n\
P-Preferred-Identity: <sip:alice.pref@example.com>\r\n\
Diversion: <sip:bob@example.com>;reason=unconditional;counter=1, <sip:fwd@example.com>;reason=user-busy\r\n\
Remote-Party-ID: \"Alice\" <sip:alice@example.com>;party=calling;privacy=off;screen=yes\r\n\
Service-Route: <sip:orig@scscf.example.com;lr>\r\n\
Path: <sip:pcscf.example.com;lr>, <sip:edge.example.com;lr>\r\n\
Security-Verify: ipsec-3gpp;alg=hmac-sha-1-96;spi-c=3929102;spi-s=3929103;port-c=5062;port-s=5064\r\n\
Reason: SIP;cause=200;text=\"Call completed elsewhere\", Q.850;cause=16\r\n\
Retry-After: 120;duration=60\r\n\
Session-Expires: 1800;refresher=uac\r\n\
Min-Expires: 60\r\n\
Unsupported: foo\r\n\
Contact: *\r\n\
Content-Length: 0\r\n\r\n";

fn msg() -> SipMsg {
    let m = SipMsg::parse(Bytes::from_static(NOTIFY)).unwrap();
    m.validate().unwrap();
    m
}

#[test]
fn event_and_subscription_state() {
    let m = msg();
    assert_eq!(m.method(), Some(Method::Notify));
    let ev =
        m.bind(parse_token_params(m.buf(), m.header(HeaderKind::Event).unwrap().value).unwrap());
    assert_eq!(ev.token(), b"presence");
    assert_eq!(ev.param(b"id"), Some(&b"17"[..]));
    let ss = m.header(HeaderKind::SubscriptionState).unwrap();
    let ss = m.bind(parse_token_params(m.buf(), ss.value).unwrap());
    assert_eq!(ss.token(), b"active");
    assert_eq!(ss.param(b"expires"), Some(&b"3599"[..]));
    let ae: Vec<&[u8]> =
        option_tags(m.buf(), m.header(HeaderKind::AllowEvents).unwrap().value).collect();
    assert_eq!(ae, [&b"presence"[..], b"dialog"]);
}

#[test]
fn identity_and_redirection_headers() {
    let m = msg();
    let rt = m.name_addrs(HeaderKind::ReferTo).next().unwrap().unwrap();
    assert_eq!(rt.uri().user(), Some(&b"carol"[..]));
    assert_eq!(
        rt.uri().headers(),
        Some(&b"Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2"[..])
    );
    let pai: Vec<_> = m
        .name_addrs(HeaderKind::PAssertedIdentity)
        .map(Result::unwrap)
        .collect();
    assert_eq!(pai.len(), 2);
    assert_eq!(pai[0].display(), Some(&b"\"Alice\""[..]));
    assert_eq!(pai[1].uri().user(), Some(&b"+15551234567"[..]));
    let ppi = m
        .name_addrs(HeaderKind::PPreferredIdentity)
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(ppi.uri().user(), Some(&b"alice.pref"[..]));
    let div: Vec<_> = m
        .name_addrs(HeaderKind::Diversion)
        .map(Result::unwrap)
        .collect();
    assert_eq!(div.len(), 2);
    assert_eq!(div[0].param(b"reason"), Some(Some(&b"unconditional"[..])));
    assert_eq!(div[1].param(b"reason"), Some(Some(&b"user-busy"[..])));
    let rpid = m
        .name_addrs(HeaderKind::RemotePartyId)
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(rpid.param(b"party"), Some(Some(&b"calling"[..])));
    assert_eq!(rpid.param(b"screen"), Some(Some(&b"yes"[..])));
}

#[test]
fn routes_security_reason_timers() {
    let m = msg();
    assert!(
        m.name_addrs(HeaderKind::ServiceRoute)
            .next()
            .unwrap()
            .unwrap()
            .uri()
            .is_lr()
    );
    let path: Vec<_> = m.name_addrs(HeaderKind::Path).map(Result::unwrap).collect();
    assert_eq!(path[1].uri().host(), b"edge.example.com");
    let sv: Vec<_> =
        token_params_list(m.buf(), m.header(HeaderKind::SecurityVerify).unwrap().value)
            .map(Result::unwrap)
            .collect();
    assert_eq!(sv[0].token(), b"ipsec-3gpp");
    assert_eq!(sv[0].param(b"port-s"), Some(&b"5064"[..]));
    let reasons: Vec<_> = m
        .headers_of(HeaderKind::Reason)
        .flat_map(|h| token_params_list(m.buf(), h.value))
        .map(Result::unwrap)
        .collect();
    assert_eq!(reasons.len(), 2);
    assert_eq!(
        reasons[0].param(b"text"),
        Some(&b"Call completed elsewhere"[..])
    );
    assert_eq!(reasons[1].token(), b"Q.850");
    let ra = m.bind(
        parse_token_params(m.buf(), m.header(HeaderKind::RetryAfter).unwrap().value).unwrap(),
    );
    assert_eq!(
        (ra.number(), ra.param(b"duration")),
        (Some(120), Some(&b"60"[..]))
    );
    let se = m.bind(
        parse_token_params(m.buf(), m.header(HeaderKind::SessionExpires).unwrap().value).unwrap(),
    );
    assert_eq!(
        (se.number(), se.param(b"refresher")),
        (Some(1800), Some(&b"uac"[..]))
    );
    assert_eq!(
        parse_delta(m.buf(), m.header(HeaderKind::MinExpires).unwrap().value),
        Ok(60)
    );
    let c: Vec<_> = m.contacts().map(Result::unwrap).collect();
    assert!(matches!(c[0].v, ContactValue::Star(_)));
    assert_eq!(m.ruri().unwrap().transport(), Some(&b"tcp"[..]));
}
