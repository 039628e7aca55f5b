//! The real resolver: hickory-resolver on a small private tokio runtime, answering the blocking
//! [`Lookup`] calls of SIP workers (lookups are cached by hickory for their TTL).

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};

use crate::{DnsError, Lookup, Naptr, Srv};

/// A DNS stub resolver (system configuration from /etc/resolv.conf, or explicit servers).
#[derive(Debug)]
pub struct SystemResolver {
    rt: tokio::runtime::Runtime,
    inner: TokioResolver,
}

fn failed(name: &str, e: &NetError) -> Result<bool, DnsError> {
    if e.is_no_records_found() || e.is_nx_domain() {
        return Ok(false);
    }
    Err(DnsError::Failed(name.to_string(), e.to_string()))
}

impl SystemResolver {
    fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("dns")
            .enable_all()
            .build()
    }

    /// Uses the system's resolver configuration.
    pub fn from_system() -> Result<Self, DnsError> {
        let rt = Self::runtime().map_err(|e| DnsError::Failed("runtime".into(), e.to_string()))?;
        let inner = {
            let _g = rt.enter();
            Resolver::builder_tokio()
                .map_err(|e| DnsError::Failed("resolv.conf".into(), e.to_string()))?
                .build()
                .map_err(|e| DnsError::Failed("resolver".into(), e.to_string()))?
        };
        Ok(Self { rt, inner })
    }

    /// Uses the given name servers over UDP (tests point this at a server on loopback).
    pub fn with_servers(servers: &[SocketAddr]) -> Result<Self, DnsError> {
        let rt = Self::runtime().map_err(|e| DnsError::Failed("runtime".into(), e.to_string()))?;
        let mut cfg = ResolverConfig::default();
        for s in servers {
            let mut conn = ConnectionConfig::udp();
            conn.port = s.port();
            cfg.add_name_server(NameServerConfig::new(s.ip(), true, vec![conn]));
        }
        let inner = {
            let _g = rt.enter();
            Resolver::builder_with_config(cfg, TokioRuntimeProvider::default())
                .build()
                .map_err(|e| DnsError::Failed("resolver".into(), e.to_string()))?
        };
        Ok(Self { rt, inner })
    }

    fn fqdn(name: &str) -> String {
        if name.ends_with('.') {
            name.to_string()
        } else {
            format!("{name}.")
        }
    }
}

impl Lookup for SystemResolver {
    fn naptr(&self, name: &str) -> Result<Vec<Naptr>, DnsError> {
        let q = Self::fqdn(name);
        match self
            .rt
            .block_on(self.inner.lookup(q.as_str(), RecordType::NAPTR))
        {
            Ok(l) => Ok(l
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::NAPTR(n) => Some(Naptr {
                        order: n.order,
                        preference: n.preference,
                        flags: String::from_utf8_lossy(&n.flags).into_owned(),
                        service: String::from_utf8_lossy(&n.services).into_owned(),
                        replacement: n.replacement.to_ascii().trim_end_matches('.').to_string(),
                    }),
                    _ => None,
                })
                .collect()),
            Err(e) => failed(name, &e).map(|_| Vec::new()),
        }
    }

    fn srv(&self, name: &str) -> Result<Vec<Srv>, DnsError> {
        let q = Self::fqdn(name);
        match self
            .rt
            .block_on(self.inner.lookup(q.as_str(), RecordType::SRV))
        {
            Ok(l) => Ok(l
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::SRV(s) => Some(Srv {
                        priority: s.priority,
                        weight: s.weight,
                        port: s.port,
                        target: s.target.to_ascii().trim_end_matches('.').to_string(),
                    }),
                    _ => None,
                })
                .collect()),
            Err(e) => failed(name, &e).map(|_| Vec::new()),
        }
    }

    fn ip(&self, name: &str, v6: bool) -> Result<Vec<IpAddr>, DnsError> {
        let q = Self::fqdn(name);
        let mut out = Vec::new();
        let types: &[RecordType] = if v6 {
            &[RecordType::A, RecordType::AAAA]
        } else {
            &[RecordType::A]
        };
        for t in types {
            match self.rt.block_on(self.inner.lookup(q.as_str(), *t)) {
                Ok(l) => out.extend(l.answers().iter().filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })),
                Err(e) => {
                    failed(name, &e)?;
                }
            }
        }
        Ok(out)
    }
}
