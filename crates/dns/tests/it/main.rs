//! RFC 3263 selection against a static table, and the real resolver against a dnsmasq server
//! the test starts on loopback.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::Duration;

use sipox_dns::{
    DnsConfig, Lookup, Resolved, StaticResolver, SystemResolver, Transport, order_srv, resolve,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn zero() -> impl FnMut() -> u32 {
    || 0
}

fn table() -> StaticResolver {
    let mut t = StaticResolver::new();
    t.add_naptr(
        "example.com",
        50,
        50,
        "s",
        "SIPS+D2T",
        "_sips._tcp.example.com",
    )
    .add_naptr(
        "example.com",
        90,
        50,
        "s",
        "SIP+D2T",
        "_sip._tcp.example.com",
    )
    .add_naptr(
        "example.com",
        100,
        50,
        "s",
        "SIP+D2U",
        "_sip._udp.example.com",
    )
    .add_srv("_sip._tcp.example.com", 0, 0, 5070, "tcp1.example.com")
    .add_srv("_sip._udp.example.com", 10, 0, 5060, "udp2.example.com")
    .add_srv("_sip._udp.example.com", 0, 0, 5060, "udp1.example.com")
    .add_srv("_sips._tcp.example.com", 0, 0, 5061, "tls1.example.com")
    .add_ip("tcp1.example.com", ip("192.0.2.10"))
    .add_ip("udp1.example.com", ip("192.0.2.1"))
    .add_ip("udp2.example.com", ip("192.0.2.2"))
    .add_ip("udp2.example.com", ip("2001:db8::2"))
    .add_ip("tls1.example.com", ip("192.0.2.20"))
    .add_ip("plain.example.net", ip("198.51.100.1"))
    .add_srv(
        "_sip._tcp.srvonly.example.org",
        0,
        0,
        5080,
        "s1.example.org",
    )
    .add_ip("s1.example.org", ip("203.0.113.1"));
    t
}

#[test]
fn naptr_order_then_srv_priority() {
    let t = table();
    let r = resolve(
        &t,
        &DnsConfig::default(),
        "example.com",
        None,
        None,
        false,
        &mut zero(),
    )
    .unwrap();
    // SIPS+D2T is skipped for a sip: URI; TCP (order 90) before UDP (order 100); UDP by priority.
    assert_eq!(
        r,
        vec![
            Resolved {
                transport: Transport::Tcp,
                addr: sa("192.0.2.10:5070")
            },
            Resolved {
                transport: Transport::Udp,
                addr: sa("192.0.2.1:5060")
            },
            Resolved {
                transport: Transport::Udp,
                addr: sa("192.0.2.2:5060")
            },
        ]
    );
    // Transports the element lacks are skipped.
    let cfg = DnsConfig {
        transports: vec![Transport::Udp],
        ..DnsConfig::default()
    };
    let r = resolve(&t, &cfg, "example.com", None, None, false, &mut zero()).unwrap();
    assert_eq!(r[0].transport, Transport::Udp);
    // sips: only SIPS services.
    let cfg = DnsConfig {
        transports: vec![Transport::Udp, Transport::Tcp, Transport::Tls],
        ..DnsConfig::default()
    };
    let r = resolve(&t, &cfg, "example.com", None, None, true, &mut zero()).unwrap();
    assert_eq!(
        r,
        vec![Resolved {
            transport: Transport::Tls,
            addr: sa("192.0.2.20:5061")
        }]
    );
}

#[test]
fn explicit_port_transport_ip_and_fallbacks() {
    let t = table();
    let c = DnsConfig::default();
    // explicit port: A only
    let r = resolve(
        &t,
        &c,
        "udp1.example.com",
        Some(5099),
        None,
        false,
        &mut zero(),
    )
    .unwrap();
    assert_eq!(
        r,
        vec![Resolved {
            transport: Transport::Udp,
            addr: sa("192.0.2.1:5099")
        }]
    );
    // explicit transport: SRV for it only
    let r = resolve(
        &t,
        &c,
        "example.com",
        None,
        Some(Transport::Udp),
        false,
        &mut zero(),
    )
    .unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].addr, sa("192.0.2.1:5060"));
    // IP literal
    let r = resolve(
        &t,
        &c,
        "[2001:db8::9]",
        None,
        Some(Transport::Tcp),
        false,
        &mut zero(),
    )
    .unwrap();
    assert_eq!(
        r,
        vec![Resolved {
            transport: Transport::Tcp,
            addr: sa("[2001:db8::9]:5060")
        }]
    );
    // no NAPTR, SRV for a supported transport
    let r = resolve(
        &t,
        &c,
        "srvonly.example.org",
        None,
        None,
        false,
        &mut zero(),
    )
    .unwrap();
    assert_eq!(
        r,
        vec![Resolved {
            transport: Transport::Tcp,
            addr: sa("203.0.113.1:5080")
        }]
    );
    // neither NAPTR nor SRV: A record over UDP 5060
    let r = resolve(&t, &c, "plain.example.net", None, None, false, &mut zero()).unwrap();
    assert_eq!(
        r,
        vec![Resolved {
            transport: Transport::Udp,
            addr: sa("198.51.100.1:5060")
        }]
    );
    // NAPTR disabled: straight to SRV
    let c2 = DnsConfig {
        try_naptr: false,
        ..DnsConfig::default()
    };
    let r = resolve(&t, &c2, "example.com", None, None, false, &mut zero()).unwrap();
    assert_eq!(r[0].transport, Transport::Udp);
}

#[test]
fn ipv6_toggle_and_blacklist() {
    let t = table();
    let c = DnsConfig {
        try_ipv6: true,
        ..DnsConfig::default()
    };
    let r = resolve(
        &t,
        &c,
        "udp2.example.com",
        Some(5060),
        None,
        false,
        &mut zero(),
    )
    .unwrap();
    assert_eq!(
        r.iter().map(|x| x.addr).collect::<Vec<_>>(),
        vec![sa("192.0.2.2:5060"), sa("[2001:db8::2]:5060")]
    );
    let c = DnsConfig {
        blacklist: vec![sa("192.0.2.1:5060")],
        ..DnsConfig::default()
    };
    let r = resolve(
        &t,
        &c,
        "example.com",
        None,
        Some(Transport::Udp),
        false,
        &mut zero(),
    )
    .unwrap();
    assert_eq!(
        r,
        vec![Resolved {
            transport: Transport::Udp,
            addr: sa("192.0.2.2:5060")
        }]
    );
}

#[test]
fn srv_weights_are_proportional() {
    let recs = vec![
        sipox_dns::Srv {
            priority: 0,
            weight: 90,
            port: 1,
            target: "a".into(),
        },
        sipox_dns::Srv {
            priority: 0,
            weight: 10,
            port: 2,
            target: "b".into(),
        },
        sipox_dns::Srv {
            priority: 1,
            weight: 0,
            port: 3,
            target: "c".into(),
        },
    ];
    let mut seed = 0x1234_5678u32;
    let mut rng = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let mut first_a = 0;
    for _ in 0..10_000 {
        let o = order_srv(recs.clone(), &mut rng);
        assert_eq!(o[2].target, "c", "lower priority always last");
        if o[0].target == "a" {
            first_a += 1;
        }
    }
    assert!(
        (8_500..9_500).contains(&first_a),
        "weight 90 of 100 first about 90% of the time: {first_a}"
    );
}

#[test]
fn real_resolver_against_dnsmasq() {
    if Command::new("dnsmasq")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "dnsmasq is required in CI (scripts/deps.sh)"
        );
        eprintln!("NOTE: dnsmasq not installed; skipping");
        return;
    }
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("dnsmasq")
        .args([
            "-k",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            "--bind-interfaces",
        ])
        .args([
            "--listen-address=127.0.0.1",
            &format!("--port={port}"),
            "--user=root",
        ])
        .arg("--local=/sip.test/")
        .arg("--host-record=uas.sip.test,127.0.0.1")
        .arg("--host-record=uas6.sip.test,127.0.0.1,::1")
        .arg("--srv-host=_sip._udp.sip.test,uas.sip.test,5070,10,60")
        .arg("--srv-host=_sip._tcp.sip.test,uas.sip.test,5071,0,60")
        .arg("--naptr-record=sip.test,10,50,s,SIP+D2T,,_sip._tcp.sip.test")
        .arg("--naptr-record=sip.test,20,50,s,SIP+D2U,,_sip._udp.sip.test")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let r = SystemResolver::with_servers(&[SocketAddr::new(ip("127.0.0.1"), port)]).unwrap();
    let naptr = r.naptr("sip.test").unwrap();
    assert_eq!(naptr.len(), 2);
    let srv = r.srv("_sip._udp.sip.test").unwrap();
    assert_eq!(
        (srv[0].port, srv[0].target.as_str()),
        (5070, "uas.sip.test")
    );
    assert_eq!(
        r.ip("uas6.sip.test", true).unwrap(),
        vec![ip("127.0.0.1"), ip("::1")]
    );
    assert!(r.ip("missing.sip.test", false).unwrap().is_empty());
    let out = resolve(
        &r,
        &DnsConfig::default(),
        "sip.test",
        None,
        None,
        false,
        &mut zero(),
    )
    .unwrap();
    assert_eq!(
        out,
        vec![
            Resolved {
                transport: Transport::Tcp,
                addr: sa("127.0.0.1:5071")
            },
            Resolved {
                transport: Transport::Udp,
                addr: sa("127.0.0.1:5070")
            },
        ]
    );
    let _ = child.kill();
    let _ = child.wait();
}
