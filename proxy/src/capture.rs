//! Transparent traffic capture: the init step of a meshed pod, what Istio's
//! `istio-init` container does with `istio-iptables`, programmed over netlink.
//!
//! # Why capture, and why this way
//!
//! In Istio the app knows nothing of its sidecar: it calls `http://reviews:9080/`
//! and listens on 9080 as it would without a mesh. Before the app starts, an init
//! container holding only `NET_ADMIN` installs NAT rules in the pod's network
//! namespace, which every container of the pod shares, so that
//!
//! - TCP arriving for the pod is redirected to the sidecar's inbound listener
//!   (15006), except the proxy's own ports (15008 HBONE, 15090 and 15020 metrics,
//!   15021 readiness, 15000 admin) and `excludeInboundPorts`;
//! - TCP the pod sends is redirected to the outbound listener (15001), which reads
//!   the address the app asked for with `SO_ORIGINAL_DST`
//!   ([`original_destination`]);
//! - DNS the pod sends (UDP and TCP port 53) is redirected to the DNS proxy (15053).
//!
//! The sidecar runs as uid 1337 (and gid 1337), and traffic from that uid is exempt:
//! otherwise its own upstream connections would be redirected back to itself,
//! forever. Loopback is exempt too (the app talking to itself, or the proxy
//! forwarding to the app over 127.0.0.1, and the proxy's inbound passthrough from
//! 127.0.0.6), with one twist kept from Istio: when the *proxy* connects to its own
//! pod's address, the connection goes through the inbound listener, so an app
//! calling its own service is still handled by both sides of the mesh.
//! Because the app has no `NET_ADMIN`, it cannot remove the rules: it cannot bypass
//! its sidecar. The `rules` module has the rules, line by line, in Istio's chain
//! names, and [`RESERVED_INBOUND_PORTS`] the exempt inbound ports.
//!
//! # Coexisting with Docker's DNS
//!
//! On a user-defined network Docker answers DNS at 127.0.0.11:53 through NAT rules
//! of its own in every container's namespace (iptables-nft's `ip nat` table: chain
//! `OUTPUT` at priority -100 jumps to `DOCKER_OUTPUT`, which DNATs port 53 to the
//! resolver's real, random port; `POSTROUTING` rewrites the replies' source). meshlab
//! never touches that table. Its rules live in a table of their own, `ip meshlab`,
//! whose nat chains hook in at priority -101, just before Docker's. Netfilter asks
//! nat chains in priority order and stops at the first that maps a connection, so:
//!
//! - the app's query to 127.0.0.11:53 is redirected to 127.0.0.1:15053 by meshlab,
//!   and Docker's rule never sees it;
//! - the DNS proxy's own query (uid 1337) passes meshlab's chains unchanged and is
//!   DNATed by Docker's rule to the embedded resolver, as if there were no mesh.
//!
//! Redirecting DNS thus chains with Docker's rules instead of fighting them.
//!
//! # Netlink, not `iptables`
//!
//! The image holds nothing but the meshlab binary, so there is no `iptables` or
//! `nft` to run. [`install`] speaks nf_tables' netlink protocol itself: the
//! `netlink` module encodes the messages (one atomic batch that replaces meshlab's
//! table, so installing twice is harmless), `expr` the expressions, and [`list`]
//! reads every table back and prints it as `iptables -t nat -S` would, comments
//! included. The socket calls come from the `nix` crate's safe API, so there is no
//! `unsafe` here.
//!
//! # Simplified, compared with Istio
//!
//! - IPv4 only: the lab's network has no IPv6, so there are no `ip6` rules.
//! - `REDIRECT` mode only, no `TPROXY` (`interceptionMode`); inbound capture is
//!   always for every port (`includeInboundPorts: "*"`), minus the exclusions.
//! - DNS to any server is captured (Istio's "capture all DNS"); by default Istio
//!   captures only the name servers of `/etc/resolv.conf`, which in a Docker
//!   container is always 127.0.0.11 anyway.
//! - No conntrack zones for UDP DNS (Istio's `raw` table `CT --zone` rules, which
//!   keep the app's and the proxy's DNS flows apart in rare port collisions).
//! - A port list becomes one rule per port rather than `-m multiport`; owner-group
//!   filters, interface exclusions and `INVALID` drops are not offered.
//! - Reading the rules back needs `NET_ADMIN` too, as `iptables -S` does; the init
//!   step prints them, so a pod's init container's log shows its rules, as
//!   `istio-init`'s log does.

mod attr;
mod config;
mod expr;
mod netlink;
mod render;
mod rules;

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use nix::sys::socket::{self, sockopt};

pub use config::{CaptureConfig, IncludeRanges, Ipv4Cidr, RESERVED_INBOUND_PORTS};
pub use render::{Counters, RuleLine};

/// Why capture could not be installed or listed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The process may not change netfilter: it lacks `CAP_NET_ADMIN` in the pod's
    /// network namespace.
    #[error(
        "cannot program netfilter: operation not permitted (hint: the init container needs the NET_ADMIN capability)"
    )]
    PermissionDenied,
    /// The netlink socket could not be opened or used.
    #[error("cannot talk to netfilter over netlink")]
    Netlink(#[source] io::Error),
    /// The kernel refused part of the change; being a transaction, none of it was
    /// applied.
    #[error("netfilter rejected {what}{hint}")]
    Rejected {
        /// Which message, e.g. `adding rule 3 to chain ISTIO_OUTPUT (meshlab: …)`.
        what: String,
        /// What to check, when the error suggests something (with its parentheses).
        hint: &'static str,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// The kernel did not answer in time.
    #[error("netfilter did not answer within {seconds} s")]
    NoAnswer {
        /// How long it was given.
        seconds: i64,
    },
    /// An answer from the kernel did not parse.
    #[error("cannot read netfilter's answer: {0}")]
    Malformed(String),
    /// An IP range (in an annotation or a flag) is not an IPv4 range.
    #[error(
        "invalid ip range \"{value}\": {reason} (hint: write ranges like 10.0.0.0/8 or 192.168.1.7, comma-separated)"
    )]
    InvalidRange {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// What [`install`] installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The table, `ip meshlab`.
    pub table: String,
    /// How many chains it has.
    pub chains: usize,
    /// How many rules it has.
    pub rules: usize,
}

impl fmt::Display for Installed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "traffic capture installed: table {} with {} chains and {} rules (nat priority {}, before Docker's -100)",
            self.table,
            self.chains,
            self.rules,
            rules::PRIORITY
        )
    }
}

/// Installs Istio's capture rules for `config` in this network namespace, replacing
/// meshlab's table if it is there, atomically. Needs `CAP_NET_ADMIN`.
pub fn install(config: &CaptureConfig) -> Result<Installed, CaptureError> {
    let table = rules::table(config);
    netlink::Socket::open()?.commit(netlink::replace_table(&table))?;
    Ok(Installed {
        table: format!("ip {}", rules::TABLE),
        chains: table.chains.len(),
        rules: table.rule_count(),
    })
}

/// Every nf_tables table in this network namespace, meshlab's first, as lines like
/// `iptables -t nat -S` prints. Needs `CAP_NET_ADMIN`.
pub fn list() -> Result<Vec<RuleLine>, CaptureError> {
    let ruleset = netlink::Socket::open()?.ruleset()?;
    Ok(render::lines(&ruleset))
}

/// The address a captured connection was sent to before it was redirected to this
/// listener (`SO_ORIGINAL_DST`). A connection that was not redirected reports its
/// own local address; one that netfilter does not track is an error (`ENOENT`).
/// Capture is IPv4 only, so the answer is an IPv4 address.
pub fn original_destination(stream: &tokio::net::TcpStream) -> io::Result<SocketAddr> {
    let addr = socket::getsockopt(stream, sockopt::OriginalDst)?;
    Ok(SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr)),
        u16::from_be(addr.sin_port),
    )))
}

#[cfg(test)]
mod tests;
