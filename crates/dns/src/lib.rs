//! `sipox-dns` owns SIP server location (RFC 3263 §4): from a SIP URI's host, port and transport
//! to an ordered list of (transport, address) to try, through NAPTR, SRV (RFC 2782 priority and
//! weighted selection) and A/AAAA lookups. The selection logic is pure over a [`Lookup`] trait;
//! [`SystemResolver`] answers it with hickory-resolver, [`StaticResolver`] with a table for
//! tests. It knows nothing of SIP messages and does no SIP I/O.

#![forbid(unsafe_code)]

mod resolve;
mod system;

use std::collections::HashMap;
use std::net::IpAddr;

use thiserror::Error;

pub use resolve::{DnsConfig, Resolved, Transport, order_srv, resolve};
pub use system::SystemResolver;

/// A NAPTR record (RFC 3403) as RFC 3263 uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    /// Order (lower first).
    pub order: u16,
    /// Preference among equal order (lower first).
    pub preference: u16,
    /// Flags (`s` for SRV).
    pub flags: String,
    /// Service (`SIP+D2U`, `SIP+D2T`, `SIPS+D2T`, `SIP+D2S`, ...).
    pub service: String,
    /// Replacement domain (the SRV name to query).
    pub replacement: String,
}

/// An SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    /// Priority (lower first).
    pub priority: u16,
    /// Weight among equal priority.
    pub weight: u16,
    /// Port.
    pub port: u16,
    /// Target host name.
    pub target: String,
}

/// Why a lookup failed (an empty answer is `Ok(vec![])`, not an error).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The resolver could not get an answer (timeout, server failure).
    #[error("DNS lookup of {0} failed: {1}")]
    Failed(String, String),
}

/// The three lookups RFC 3263 needs.
pub trait Lookup: Send + Sync + std::fmt::Debug {
    /// NAPTR records of `name`.
    fn naptr(&self, name: &str) -> Result<Vec<Naptr>, DnsError>;
    /// SRV records of `name`.
    fn srv(&self, name: &str) -> Result<Vec<Srv>, DnsError>;
    /// A (and, with `v6`, AAAA) addresses of `name`, IPv4 first.
    fn ip(&self, name: &str, v6: bool) -> Result<Vec<IpAddr>, DnsError>;
}

/// A fixed table of records (names are matched case-insensitively, without a trailing dot).
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    naptr: HashMap<String, Vec<Naptr>>,
    srv: HashMap<String, Vec<Srv>>,
    ip: HashMap<String, Vec<IpAddr>>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl StaticResolver {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a NAPTR record.
    pub fn add_naptr(
        &mut self,
        name: &str,
        order: u16,
        pref: u16,
        flags: &str,
        service: &str,
        replacement: &str,
    ) -> &mut Self {
        self.naptr.entry(key(name)).or_default().push(Naptr {
            order,
            preference: pref,
            flags: flags.into(),
            service: service.into(),
            replacement: key(replacement),
        });
        self
    }
    /// Adds an SRV record.
    pub fn add_srv(
        &mut self,
        name: &str,
        priority: u16,
        weight: u16,
        port: u16,
        target: &str,
    ) -> &mut Self {
        self.srv.entry(key(name)).or_default().push(Srv {
            priority,
            weight,
            port,
            target: key(target),
        });
        self
    }
    /// Adds an A or AAAA record.
    pub fn add_ip(&mut self, name: &str, ip: IpAddr) -> &mut Self {
        self.ip.entry(key(name)).or_default().push(ip);
        self
    }
}

impl Lookup for StaticResolver {
    fn naptr(&self, name: &str) -> Result<Vec<Naptr>, DnsError> {
        Ok(self.naptr.get(&key(name)).cloned().unwrap_or_default())
    }
    fn srv(&self, name: &str) -> Result<Vec<Srv>, DnsError> {
        Ok(self.srv.get(&key(name)).cloned().unwrap_or_default())
    }
    fn ip(&self, name: &str, v6: bool) -> Result<Vec<IpAddr>, DnsError> {
        let mut v: Vec<IpAddr> = self.ip.get(&key(name)).cloned().unwrap_or_default();
        v.retain(|a| v6 || a.is_ipv4());
        v.sort_by_key(IpAddr::is_ipv6);
        Ok(v)
    }
}
