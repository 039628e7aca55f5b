//! SDP bodies of the RFC 4475 and RFC 5118 torture messages (see data/README.md).

use sipox_sdp::{Sdp, SdpError};

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).expect("test vector readable")
}

fn roundtrip(body: &[u8]) -> Sdp<'_> {
    let sdp = Sdp::parse(body).expect("valid body");
    let printed = sdp.to_bytes();
    let again = Sdp::parse(&printed).expect("printed body");
    assert_eq!(again, sdp);
    assert_eq!(again.to_bytes(), printed);
    sdp
}

/// sdp01 and wsinv carry the same body apart from the addresses.
fn check_rfc4475(body: &[u8], origin_addr: &[u8], conn_addr: &[u8]) -> Result<(), SdpError> {
    let sdp = Sdp::parse(body)?;
    assert_eq!(sdp.version, Some(0));
    let o = sdp.origin.as_ref().expect("o=");
    assert_eq!(o.username, b"mhandley");
    assert_eq!(o.session_id, b"29739");
    assert_eq!(o.session_version_number(), Some(7_272_939));
    assert_eq!(
        (o.nettype, o.addrtype, o.unicast_address),
        (&b"IN"[..], &b"IP4"[..], origin_addr)
    );
    assert_eq!(sdp.session_name, Some(&b"-"[..]));
    let c = sdp.connection.as_ref().expect("c=");
    assert!(c.is_ip4());
    assert_eq!((c.address, c.ttl, c.count), (conn_addr, None, None));
    assert_eq!(sdp.timings.len(), 1);
    assert_eq!((sdp.timings[0].start, sdp.timings[0].stop), (0, 0));
    assert_eq!(sdp.media.len(), 2);

    let audio = &sdp.media[0];
    assert_eq!(
        (audio.media, audio.port, audio.proto),
        (&b"audio"[..], 49217, &b"RTP/AVP"[..])
    );
    assert_eq!(audio.payload_types().collect::<Vec<_>>(), [0, 12]);
    assert!(audio.attributes.is_empty());
    assert_eq!(
        sdp.effective_connection(audio).expect("c=").address,
        conn_addr
    );

    let video = &sdp.media[1];
    assert_eq!((video.media, video.port), (&b"video"[..], 3227));
    assert_eq!(video.formats, [&b"31"[..]]);
    let lpc = video.rtpmap(31).expect("rtpmap:31");
    assert_eq!(
        (lpc.encoding, lpc.clock_rate, lpc.params),
        (&b"LPC"[..], None, None)
    );
    assert!(sdp.extra.is_empty() && audio.extra.is_empty() && video.extra.is_empty());
    roundtrip(body);
    Ok(())
}

#[test]
fn rfc4475_sdp01() {
    check_rfc4475(&data("sdp01.sdp"), b"192.0.2.5", b"192.0.2.5").unwrap();
}

#[test]
fn rfc4475_wsinv() {
    check_rfc4475(&data("wsinv.sdp"), b"192.0.2.3", b"192.0.2.4").unwrap();
}

#[test]
fn rfc5118_ipv6_in_sdp() {
    let body = data("ipv6-in-sdp.sdp");
    let sdp = roundtrip(&body);
    let o = sdp.origin.as_ref().unwrap();
    assert_eq!(o.session_id, b"971731711378798081");
    assert_eq!(
        (o.addrtype, o.unicast_address),
        (&b"IP6"[..], &b"2001:db8::20"[..])
    );
    assert_eq!(
        sdp.session_name,
        Some(&b"Live video feed for today's meeting"[..])
    );
    let c = sdp.connection.as_ref().unwrap();
    assert!(c.is_ip6());
    assert_eq!(
        (c.nettype, c.address, c.ttl, c.count),
        (&b"IN"[..], &b"2001:db8::20"[..], None, None)
    );
    assert_eq!(
        (sdp.timings[0].start, sdp.timings[0].stop),
        (3_338_481_189, 3_370_017_201)
    );
    assert_eq!(sdp.media.len(), 2);
    let audio = &sdp.media[0];
    assert_eq!(audio.port, 6000);
    let g726 = audio.rtpmap(2).unwrap();
    assert_eq!(
        (g726.encoding, g726.clock_rate),
        (&b"G726-32"[..], Some(8000))
    );
    let video = &sdp.media[1];
    assert_eq!(video.port, 6024);
    assert_eq!(video.rtpmap(107).unwrap().encoding, b"H263-1998");
    assert_eq!(video.rtpmap(107).unwrap().clock_rate, Some(90000));
    for m in &sdp.media {
        assert!(m.connections.is_empty());
        assert!(sdp.effective_connection(m).unwrap().is_ip6());
    }
}

#[test]
fn rfc5118_mult_ip_in_sdp() {
    let body = data("mult-ip-in-sdp.sdp");
    let sdp = roundtrip(&body);
    assert_eq!(sdp.session_name, Some(&b""[..]));
    assert_eq!(
        sdp.origin.as_ref().unwrap().unicast_address,
        b"host.example.com"
    );
    assert!(sdp.connection.is_none());
    assert_eq!(sdp.media.len(), 2);
    let audio = &sdp.media[0];
    let c4 = sdp.effective_connection(audio).unwrap();
    assert!(c4.is_ip4() && !c4.is_ip6());
    assert_eq!(c4.address, b"192.0.2.1");
    let video = &sdp.media[1];
    let c6 = sdp.effective_connection(video).unwrap();
    assert!(c6.is_ip6());
    assert_eq!(c6.address, b"2001:db8::1");
    assert_eq!(video.connections.len(), 1);
    assert_eq!(video.rtpmap(107).unwrap().encoding, b"H263-1998");
}

#[test]
fn torture_bodies_in_lf_form() {
    for name in [
        "sdp01.sdp",
        "wsinv.sdp",
        "ipv6-in-sdp.sdp",
        "mult-ip-in-sdp.sdp",
    ] {
        let crlf = data(name);
        let lf: Vec<u8> = crlf.iter().copied().filter(|&b| b != b'\r').collect();
        assert_eq!(
            Sdp::parse(&lf).unwrap(),
            Sdp::parse(&crlf).unwrap(),
            "{name}"
        );
        // Canonical output of the torture bodies is exactly their input.
        assert_eq!(Sdp::parse(&lf).unwrap().to_bytes(), crlf, "{name}");
    }
}
