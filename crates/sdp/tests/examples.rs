//! RFC 8866 / RFC 4566 examples, a realistic multi-codec offer, multicast and
//! editing scenarios.

use sipox_sdp::{Direction, Limits, Media, RtpMap, Sdp, SdpError, SdpOwned};

/// The example session of RFC 8866 §5.
const RFC8866_EXAMPLE: &[u8] = b"v=0\r
o=jdoe 3724394400 3724394405 IN IP4 198.51.100.1\r
s=Call to John Smith\r
i=SDP Offer #1\r
u=http://www.jdoe.example.com/home.html\r
e=Jane Doe <jane@jdoe.example.com>\r
p=+1 617 555-6011\r
c=IN IP4 198.51.100.1\r
t=0 0\r
m=audio 49170 RTP/AVP 0\r
m=audio 49180 RTP/AVP 0\r
m=video 51372 RTP/AVP 99\r
c=IN IP6 2001:db8::2\r
a=rtpmap:99 h263-1998/90000\r
";

/// The example session of RFC 4566 §5 (multicast, LF line ends).
const RFC4566_EXAMPLE: &[u8] = b"v=0
o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5
s=SDP Seminar
i=A Seminar on the session description protocol
u=http://www.example.com/seminars/sdp.pdf
e=j.doe@example.com (Jane Doe)
c=IN IP4 224.2.17.12/127
t=2873397496 2873404696
a=recvonly
m=audio 49170 RTP/AVP 0
m=video 51372 RTP/AVP 99
a=rtpmap:99 h263-1998/90000
";

/// A WebRTC-ish offer: several codecs, fmtp, rtcp, rtcp-fb, bandwidth.
const OFFER: &[u8] = b"v=0\r
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r
s=-\r
t=0 0\r
a=group:BUNDLE 0 1\r
a=msid-semantic: WMS\r
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r
c=IN IP4 0.0.0.0\r
b=AS:64\r
a=rtcp:9 IN IP4 0.0.0.0\r
a=ice-ufrag:abcd\r
a=mid:0\r
a=sendrecv\r
a=rtcp-mux\r
a=rtpmap:111 opus/48000/2\r
a=rtcp-fb:111 transport-cc\r
a=fmtp:111 minptime=10;useinbandfec=1\r
a=rtpmap:63 red/48000/2\r
a=fmtp:63 111/111\r
a=rtpmap:9 G722/8000\r
a=rtpmap:0 PCMU/8000\r
a=rtpmap:8 PCMA/8000\r
a=rtpmap:13 CN/8000\r
a=rtpmap:110 telephone-event/48000\r
a=rtpmap:126 telephone-event/8000\r
a=fmtp:126 0-15\r
a=ptime:20\r
a=maxptime:120\r
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r
c=IN IP4 0.0.0.0\r
b=TIAS:2000000\r
a=rtcp:9\r
a=mid:1\r
a=recvonly\r
a=rtpmap:96 VP8/90000\r
a=rtcp-fb:96 nack\r
a=rtcp-fb:96 nack pli\r
a=rtpmap:97 rtx/90000\r
a=fmtp:97 apt=96\r
m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r
c=IN IP4 0.0.0.0\r
a=sctp-port:5000\r
";

fn assert_roundtrip(body: &[u8]) {
    let sdp = Sdp::parse(body).expect("valid body");
    let printed = sdp.to_bytes();
    assert_eq!(Sdp::parse(&printed).expect("printed body"), sdp);
}

#[test]
fn rfc8866_example() {
    let sdp = Sdp::parse(RFC8866_EXAMPLE).unwrap();
    let o = sdp.origin.as_ref().unwrap();
    assert_eq!(o.username, b"jdoe");
    assert_eq!(o.session_version_number(), Some(3_724_394_405));
    assert_eq!(sdp.session_name, Some(&b"Call to John Smith"[..]));
    assert_eq!(sdp.information, Some(&b"SDP Offer #1"[..]));
    assert_eq!(sdp.uri, Some(&b"http://www.jdoe.example.com/home.html"[..]));
    assert_eq!(sdp.emails, [&b"Jane Doe <jane@jdoe.example.com>"[..]]);
    assert_eq!(sdp.phones, [&b"+1 617 555-6011"[..]]);
    assert_eq!(sdp.media.len(), 3);
    let ports: Vec<u16> = sdp.media.iter().map(|m| m.port).collect();
    assert_eq!(ports, [49170, 49180, 51372]);
    assert_eq!(
        sdp.effective_connection(&sdp.media[0]).unwrap().address,
        b"198.51.100.1"
    );
    let video = &sdp.media[2];
    assert_eq!(
        sdp.effective_connection(video).unwrap().address,
        b"2001:db8::2"
    );
    let h263 = video.rtpmap(99).unwrap();
    assert!(h263.is_encoding(b"H263-1998"));
    assert_eq!(h263.clock_rate, Some(90000));
    assert_eq!(sdp.effective_direction(video), Direction::SendRecv);
    // Already canonical: printing reproduces the input byte for byte.
    assert_eq!(sdp.to_bytes(), RFC8866_EXAMPLE);
}

#[test]
fn rfc4566_example_multicast() {
    let sdp = Sdp::parse(RFC4566_EXAMPLE).unwrap();
    let c = sdp.connection.as_ref().unwrap();
    assert_eq!(
        (c.address, c.ttl, c.count),
        (&b"224.2.17.12"[..], Some(127), None)
    );
    assert_eq!(
        (sdp.timings[0].start, sdp.timings[0].stop),
        (2_873_397_496, 2_873_404_696)
    );
    assert_eq!(sdp.direction(), Some(Direction::RecvOnly));
    for m in &sdp.media {
        assert_eq!(sdp.effective_direction(m), Direction::RecvOnly);
    }
    let crlf: Vec<u8> = RFC4566_EXAMPLE
        .iter()
        .flat_map(|&b| {
            if b == b'\n' {
                vec![b'\r', b'\n']
            } else {
                vec![b]
            }
        })
        .collect();
    assert_eq!(sdp.to_bytes(), crlf);
}

#[test]
fn multicast_ttl_and_count() {
    let body = b"v=0\r\ns=m\r\nc=IN IP4 224.2.1.1/127/3\r\nt=0 0\r\n\
m=audio 49170/2 RTP/AVP 0\r\nc=IN IP6 ff15::101/3\r\nc=IN IP4 233.252.0.1/64\r\n";
    let sdp = Sdp::parse(body).unwrap();
    let c = sdp.connection.as_ref().unwrap();
    assert_eq!(
        (c.address, c.ttl, c.count),
        (&b"224.2.1.1"[..], Some(127), Some(3))
    );
    let m = &sdp.media[0];
    assert_eq!((m.port, m.port_count), (49170, Some(2)));
    assert_eq!(m.connections.len(), 2);
    let c6 = &m.connections[0];
    assert_eq!(
        (c6.address, c6.ttl, c6.count),
        (&b"ff15::101"[..], None, Some(3))
    );
    let c4 = &m.connections[1];
    assert_eq!(
        (c4.address, c4.ttl, c4.count),
        (&b"233.252.0.1"[..], Some(64), None)
    );
    assert_eq!(sdp.effective_connection(m), Some(c6));
    assert_eq!(sdp.to_bytes(), body);
}

#[test]
fn multi_codec_offer() {
    let sdp = Sdp::parse(OFFER).unwrap();
    assert_eq!(sdp.attribute_value(b"group"), Some(&b"BUNDLE 0 1"[..]));
    assert_eq!(sdp.attribute_value(b"msid-semantic"), Some(&b" WMS"[..]));
    assert_eq!(sdp.media.len(), 3);

    let audio = &sdp.media[0];
    assert_eq!(audio.proto, b"UDP/TLS/RTP/SAVPF");
    assert_eq!(
        audio.payload_types().collect::<Vec<_>>(),
        [111, 63, 9, 0, 8, 13, 110, 126]
    );
    assert_eq!(audio.rtpmaps().count(), 8);
    let opus = audio.rtpmap(111).unwrap();
    assert_eq!(
        (opus.encoding, opus.clock_rate, opus.params),
        (&b"opus"[..], Some(48000), Some(&b"2"[..]))
    );
    assert_eq!(
        audio.fmtp(b"111").unwrap().param(b"useinbandfec"),
        Some(&b"1"[..])
    );
    assert_eq!(audio.fmtp(b"126").unwrap().params, b"0-15");
    assert_eq!(audio.fmtp(b"0"), None);
    let rtcp = audio.rtcp().unwrap();
    assert_eq!(rtcp.port, 9);
    assert_eq!(rtcp.address.unwrap().address, b"0.0.0.0");
    assert_eq!(audio.ptime(), Some(20));
    assert_eq!(audio.maxptime(), Some(120));
    assert_eq!(audio.bandwidths[0].bwtype, b"AS");
    assert_eq!(audio.bandwidths[0].value, 64);
    assert_eq!(audio.direction(), Some(Direction::SendRecv));
    assert!(audio.has_attribute(b"rtcp-mux"));
    assert_eq!(audio.attribute(b"rtcp-mux").unwrap().value, None);
    let dtmf: Vec<u8> = audio
        .rtpmaps()
        .filter(|r| r.is_encoding(b"telephone-event"))
        .map(|r| r.payload_type)
        .collect();
    assert_eq!(dtmf, [110, 126]);

    let video = &sdp.media[1];
    assert_eq!(video.rtcp().unwrap().address, None);
    assert_eq!(video.attributes_named(b"rtcp-fb").count(), 2);
    assert_eq!(video.fmtp(b"97").unwrap().param(b"apt"), Some(&b"96"[..]));
    assert_eq!(sdp.effective_direction(video), Direction::RecvOnly);
    assert_eq!(video.bandwidths[0].value, 2_000_000);

    let data = &sdp.media[2];
    assert!(data.is_disabled());
    assert_eq!(data.formats, [&b"webrtc-datachannel"[..]]);
    assert_eq!(data.payload_types().count(), 0);
    assert_eq!(sdp.to_bytes(), OFFER);
    assert_roundtrip(OFFER);
}

#[test]
fn edit_connection_port_and_codecs() {
    let mut owned = SdpOwned::parse(RFC8866_EXAMPLE).unwrap();
    // rtpengine-style: move all media to the relay, new ports, bump version.
    owned.rewrite_connections(b"IP4", b"203.0.113.50");
    for (i, m) in owned.media.iter_mut().enumerate() {
        m.port = 30000 + 2 * u16::try_from(i).unwrap();
    }
    assert!(owned.bump_origin_version());
    owned.media[2].remove_payload_type(99);
    owned.media[2].add_codec(
        &RtpMap::new(96, b"H264", 90000),
        Some(b"packetization-mode=1"),
    );
    owned.media[0].add_codec(&RtpMap::new(101, b"telephone-event", 8000), Some(b"0-16"));
    owned.media[0].set_direction(Direction::SendOnly);

    let printed = owned.to_bytes();
    let sdp = Sdp::parse(&printed).unwrap();
    assert_eq!(sdp.origin.as_ref().unwrap().session_version, b"3724394406");
    assert_eq!(sdp.connection.as_ref().unwrap().address, b"203.0.113.50");
    for m in &sdp.media {
        let c = sdp.effective_connection(m).unwrap();
        assert_eq!((c.addrtype, c.address), (&b"IP4"[..], &b"203.0.113.50"[..]));
    }
    assert_eq!(
        sdp.media.iter().map(|m| m.port).collect::<Vec<_>>(),
        [30000, 30002, 30004]
    );
    let video = &sdp.media[2];
    assert_eq!(video.formats, [&b"96"[..]]);
    assert!(video.rtpmap(99).is_none());
    assert!(video.rtpmap(96).unwrap().is_encoding(b"h264"));
    assert_eq!(
        video.fmtp(b"96").unwrap().param(b"packetization-mode"),
        Some(&b"1"[..])
    );
    let audio = &sdp.media[0];
    assert_eq!(audio.formats, [&b"0"[..], b"101"]);
    assert_eq!(audio.fmtp(b"101").unwrap().params, b"0-16");
    assert_eq!(sdp.effective_direction(audio), Direction::SendOnly);
    assert_eq!(sdp.effective_direction(&sdp.media[1]), Direction::SendRecv);
    // Printing the reparsed edit is stable.
    assert_eq!(sdp.to_bytes(), printed);
    assert_eq!(sdp.to_owned_model(), owned);
}

#[test]
fn drop_codecs_by_name() {
    let mut owned = SdpOwned::parse(OFFER).unwrap();
    let audio = &mut owned.media[0];
    // Keep only G.711 and DTMF at 8 kHz.
    let removed = audio.retain_formats(|_, r| {
        r.is_some_and(|r| {
            r.is_encoding(b"PCMU")
                || r.is_encoding(b"PCMA")
                || r.is_encoding(b"telephone-event") && r.clock_rate == Some(8000)
        })
    });
    assert_eq!(removed, 5);
    audio.port = 40000;
    audio.set_connection(b"IP6", b"2001:db8::99");
    audio.remove_attributes(b"rtcp");
    let printed = owned.to_bytes();
    let sdp = Sdp::parse(&printed).unwrap();
    let audio = &sdp.media[0];
    assert_eq!(audio.payload_types().collect::<Vec<_>>(), [0, 8, 126]);
    assert_eq!(
        audio.rtpmaps().map(|r| r.payload_type).collect::<Vec<_>>(),
        [0, 8, 126]
    );
    assert_eq!(
        audio.fmtps().map(|f| f.format).collect::<Vec<_>>(),
        [&b"126"[..]]
    );
    assert_eq!(audio.attributes_named(b"rtcp-fb").count(), 0);
    assert!(audio.rtcp().is_none());
    assert_eq!(audio.port, 40000);
    assert_eq!(audio.connections.len(), 1);
    assert!(audio.connections[0].is_ip6());
    // The other sections are untouched.
    assert_eq!(sdp.media[1], Sdp::parse(OFFER).unwrap().media[1]);
}

#[test]
fn build_from_scratch() {
    let mut sdp = SdpOwned::new(
        sipox_sdp::Origin::new(b"sipox", b"1", b"1", b"IP4", b"192.0.2.1"),
        b"-",
    );
    sdp.set_connection(b"IP4", b"192.0.2.1");
    let mut m = Media::new(b"audio", 20000, b"RTP/AVP");
    m.add_codec(&RtpMap::new(0, b"PCMU", 8000), None);
    m.push_attribute(b"ptime", Some(b"20"));
    sdp.media.push(m);
    assert_eq!(
        sdp.to_bytes(),
        b"v=0\r\no=sipox 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 20000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n"
    );
}

#[test]
fn limits_and_errors_carry_offsets() {
    let mut body = b"v=0\r\n".to_vec();
    for i in 0..100 {
        body.extend_from_slice(format!("m=audio {} RTP/AVP 0\r\n", 1000 + i).as_bytes());
    }
    let e = Sdp::parse(&body).unwrap_err();
    assert!(matches!(e, SdpError::TooManyMedia { limit: 64, .. }));
    assert_eq!(&body[e.offset()..e.offset() + 12], b"m=audio 1064");
    let lax = Limits {
        max_media: 200,
        ..Limits::DEFAULT
    };
    assert_eq!(
        Sdp::parse_with_limits(&body, &lax).unwrap().media.len(),
        100
    );
    assert!(e.to_string().contains("too many media"));
}
