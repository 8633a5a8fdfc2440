//! What to capture: the knobs of Istio's `istio-iptables`, with Istio's defaults, and
//! the pod annotations that set them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use super::CaptureError;

/// How a pod's traffic is captured. [`Default`] is Istio's sidecar default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureConfig {
    /// The uid whose traffic is never captured: the sidecar's (default 1337).
    pub proxy_uid: u32,
    /// The gid whose traffic is never captured (default 1337).
    pub proxy_gid: u32,
    /// Where inbound TCP is redirected: the sidecar's inbound listener (default 15006).
    pub inbound_port: u16,
    /// Where outbound TCP is redirected: the sidecar's outbound listener (default 15001).
    pub outbound_port: u16,
    /// Where DNS is redirected: the sidecar's DNS proxy (default 15053).
    pub dns_port: u16,
    /// Inbound ports not captured besides the proxy's own
    /// ([`RESERVED_INBOUND_PORTS`]): `traffic.sidecar.istio.io/excludeInboundPorts`.
    pub exclude_inbound_ports: Vec<u16>,
    /// Outbound ports not captured: `traffic.sidecar.istio.io/excludeOutboundPorts`.
    pub exclude_outbound_ports: Vec<u16>,
    /// Destinations not captured:
    /// `traffic.sidecar.istio.io/excludeOutboundIPRanges`.
    pub exclude_outbound_ranges: Vec<Ipv4Cidr>,
    /// Destinations captured (default all):
    /// `traffic.sidecar.istio.io/includeOutboundIPRanges`.
    pub include_outbound_ranges: IncludeRanges,
    /// Whether DNS (UDP and TCP port 53) goes to [`CaptureConfig::dns_port`], as
    /// Istio's `ISTIO_META_DNS_CAPTURE` does (default on).
    pub capture_dns: bool,
    /// The name servers whose queries are captured, as Istio captures only those in
    /// the pod's `resolv.conf` (default: Docker's embedded resolver, 127.0.0.11).
    /// Queries to other servers pass: Docker's resolver itself forwards unknown names
    /// from inside the pod's namespace, and capturing those would loop them back.
    pub dns_servers: Vec<Ipv4Addr>,
}

/// The proxy's own inbound ports, never captured, with what listens there. Istio
/// excludes the same ones: the HBONE tunnel always, the others through the
/// injector's default `excludeInboundPorts`.
pub const RESERVED_INBOUND_PORTS: [(u16, &str); 5] = [
    (15008, "the hbone tunnel"),
    (15090, "the proxy's prometheus metrics"),
    (15021, "the proxy's readiness"),
    (15020, "the merged prometheus metrics"),
    (15000, "the proxy's admin"),
];

/// Which outbound destinations are captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncludeRanges {
    /// Every destination (`*`, Istio's default).
    All,
    /// Only these; none when empty (an empty annotation turns outbound capture off).
    Only(Vec<Ipv4Cidr>),
}

/// An IPv4 address range, `10.0.0.0/8`, kept with its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    network: Ipv4Addr,
    prefix: u8,
}

// === impl CaptureConfig ===

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            proxy_uid: 1337,
            proxy_gid: 1337,
            inbound_port: 15006,
            outbound_port: 15001,
            dns_port: 15053,
            exclude_inbound_ports: Vec::new(),
            exclude_outbound_ports: Vec::new(),
            exclude_outbound_ranges: Vec::new(),
            include_outbound_ranges: IncludeRanges::All,
            capture_dns: true,
            dns_servers: vec![Ipv4Addr::new(127, 0, 0, 11)],
        }
    }
}

// === impl IncludeRanges ===

impl FromStr for IncludeRanges {
    type Err = CaptureError;

    /// `*`, or comma-separated ranges as in the annotation; empty means none.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim() == "*" {
            return Ok(Self::All);
        }
        s.split(',')
            .filter(|part| !part.trim().is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(Self::Only)
    }
}

impl fmt::Display for IncludeRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("*"),
            Self::Only(ranges) => {
                for (i, range) in ranges.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{range}")?;
                }
                Ok(())
            }
        }
    }
}

// === impl Ipv4Cidr ===

impl Ipv4Cidr {
    /// The range of `prefix` leading bits of `addr` (host bits are cleared), or
    /// `None` when `prefix` is over 32.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        (prefix <= 32).then(|| Self {
            network: Ipv4Addr::from_bits(addr.to_bits() & mask(prefix)),
            prefix,
        })
    }

    /// The first address.
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The number of leading bits that are fixed.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The netmask, `255.0.0.0` for a `/8`.
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(mask(self.prefix))
    }
}

/// The netmask of a prefix length of at most 32.
fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Ipv4Cidr {
    type Err = CaptureError;

    /// `10.0.0.0/8`, or one address (`10.1.2.3`, a `/32`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let invalid = |reason: &str| CaptureError::InvalidRange {
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (addr, prefix) = s.split_once('/').unwrap_or((s, "32"));
        let addr: IpAddr = addr.parse().map_err(|_| invalid("not an ip address"))?;
        let IpAddr::V4(addr) = addr else {
            return Err(invalid(
                "ipv6 is not captured (the lab's network is ipv4 only)",
            ));
        };
        prefix
            .parse()
            .ok()
            .and_then(|prefix| Self::new(addr, prefix))
            .ok_or_else(|| invalid("the prefix length must be a number from 0 to 32"))
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests;
