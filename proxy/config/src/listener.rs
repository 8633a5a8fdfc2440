//! Listeners: where a proxy accepts connections and how it picks what handles them.
//!
//! A sidecar has two: `virtualOutbound` on 15001 (what the app sends, captured) and
//! `virtualInbound` on 15006 (what peers send to the pod, captured). Both use the
//! connection's original destination to choose a filter chain, as Envoy's
//! `use_original_dst` listeners hand connections to per-port listeners. A gateway
//! has one listener per Gateway server port.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::authz::Authorization;

/// Which way a listener's traffic flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrafficDirection {
    /// From the app to the mesh.
    Outbound,
    /// From the mesh to the app.
    Inbound,
    /// Into a gateway from outside the mesh.
    Gateway,
}

/// A listener.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    /// `virtualOutbound`, `virtualInbound`, `0.0.0.0_8080`.
    pub name: String,
    /// Where it listens.
    pub address: SocketAddr,
    /// Its direction.
    pub direction: TrafficDirection,
    /// Whether chains are chosen by the connection's original destination (captured
    /// traffic) rather than by the listener's own address.
    pub use_original_dst: bool,
    /// Filter chains; the first whose match fits the connection handles it.
    pub filter_chains: Vec<FilterChain>,
    /// What handles a connection no chain matches; `None` closes it.
    pub default_filter_chain: Option<FilterChain>,
}

/// One way of handling connections.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterChain {
    /// A name for dumps, e.g. `0.0.0.0_9080` or `outbound|443||www.google.com`.
    pub name: String,
    /// Which connections it takes.
    #[serde(rename = "match")]
    pub matcher: ChainMatch,
    /// What it does with them.
    pub filter: NetworkFilter,
    /// TLS the proxy terminates on these connections (mTLS, later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<DownstreamTls>,
}

/// The ALPN protocols a sidecar offers on mesh mTLS to an HTTP/2 upstream (Istio's
/// `istio.alpn` override: `istio-h2`, `istio`, then the real one).
pub const MESH_ALPN_H2: [&str; 3] = ["istio-h2", "istio", "h2"];

/// The ALPN protocols a sidecar offers on other mesh mTLS connections (Istio's
/// TCP metadata-exchange values).
pub const MESH_ALPN: [&str; 2] = ["istio-peer-exchange", "istio"];

/// The ALPN protocols by which an inbound PERMISSIVE chain recognizes mesh mTLS;
/// TLS offering none of them is the app's own, passed through untouched.
pub const MESH_MTLS_ALPN: [&str; 5] = [
    "istio-peer-exchange",
    "istio",
    "istio-http/1.0",
    "istio-http/1.1",
    "istio-h2",
];

/// Which connections a filter chain takes; empty fields match anything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChainMatch {
    /// The original destination port.
    pub destination_port: Option<u16>,
    /// Original destination addresses (exact IPs), e.g. a TCP service's endpoints.
    pub destination_ips: Vec<IpAddr>,
    /// TLS server names (SNI), `*.example.com` allowed.
    pub server_names: Vec<String>,
    /// `tls` or `raw_buffer`, as sniffed from the first bytes.
    pub transport_protocol: Option<String>,
    /// ALPN protocols of a TLS ClientHello, one of which the client must offer
    /// (Istio tells mesh mTLS from other TLS by `istio*` values).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub application_protocols: Vec<String>,
}

/// What a filter chain runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NetworkFilter {
    /// HTTP, routed by a route configuration.
    HttpConnectionManager(HttpConnectionManager),
    /// Bytes to a cluster.
    TcpProxy(TcpProxy),
}

/// Envoy's `http_connection_manager`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpConnectionManager {
    /// Prefix of its statistics, e.g. `outbound_0.0.0.0_9080`.
    pub stat_prefix: String,
    /// The route configuration it uses, e.g. `9080`, `http.8080`, `inbound|9080||`.
    pub route_config_name: String,
    /// Request authentication and authorization (inbound and gateway listeners).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
}

/// Envoy's `tcp_proxy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpProxy {
    /// Prefix of its statistics.
    pub stat_prefix: String,
    /// Where bytes go: a cluster name, `PassthroughCluster` or `BlackHoleCluster`.
    /// With [`TcpProxy::weighted_clusters`], the first of them.
    pub cluster: String,
    /// Connection-level authorization (inbound TCP ports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// Envoy's `weighted_clusters`: each connection goes to one of these, picked by
    /// weight (a VirtualService's `tcp`/`tls` route with several destinations).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weighted_clusters: Vec<TcpWeightedCluster>,
}

/// One destination of a weighted TCP proxy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpWeightedCluster {
    /// Cluster name.
    pub name: String,
    /// Relative weight; the share is `weight / sum of weights`.
    pub weight: u32,
}

impl TcpProxy {
    /// The sum of the weighted clusters' weights (0 without them).
    pub fn total_weight(&self) -> u64 {
        self.weighted_clusters
            .iter()
            .map(|c| u64::from(c.weight))
            .sum()
    }

    /// The cluster for one connection: the one whose cumulative weight range holds
    /// `draw % total` (as for weighted HTTP routes).
    pub fn pick(&self, draw: u64) -> &str {
        let total = self.total_weight();
        if total == 0 {
            return &self.cluster;
        }
        let mut point = draw % total;
        for cluster in &self.weighted_clusters {
            let weight = u64::from(cluster.weight);
            if point < weight {
                return &cluster.name;
            }
            point -= weight;
        }
        &self.cluster
    }
}

/// TLS a listener terminates.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownstreamTls {
    /// The secret holding the server's certificate: `default` (the workload's mesh
    /// certificate, for mTLS between sidecars) or a gateway's `kubernetes://…`.
    pub certificate: String,
    /// Whether clients must present a certificate (mTLS).
    pub require_client_certificate: bool,
    /// The secret with the roots client certificates must chain to; `None` = the
    /// mesh's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_ca: Option<String>,
}

impl ChainMatch {
    /// Whether a connection with these properties fits.
    pub fn matches(
        &self,
        destination: SocketAddr,
        server_name: Option<&str>,
        transport: &str,
        offered_protocols: &[String],
    ) -> bool {
        self.destination_port
            .is_none_or(|p| p == destination.port())
            && (self.destination_ips.is_empty() || self.destination_ips.contains(&destination.ip()))
            && (self.server_names.is_empty()
                || server_name.is_some_and(|sni| {
                    self.server_names
                        .iter()
                        .any(|n| server_name_matches(n, sni))
                }))
            && self
                .transport_protocol
                .as_deref()
                .is_none_or(|t| t == transport)
            && (self.application_protocols.is_empty()
                || offered_protocols
                    .iter()
                    .any(|p| self.application_protocols.contains(p)))
    }

    /// How specific the match is, for picking the best of several (Envoy prefers
    /// destination IP, then server name, then transport protocol, then ALPN).
    pub fn specificity(&self) -> (bool, bool, bool, bool, bool) {
        (
            !self.destination_ips.is_empty(),
            self.destination_port.is_some(),
            !self.server_names.is_empty(),
            self.transport_protocol.is_some(),
            !self.application_protocols.is_empty(),
        )
    }
}

fn server_name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => name.len() > suffix.len() && name.ends_with(suffix),
        None => pattern.eq_ignore_ascii_case(name),
    }
}

impl Listener {
    /// The chain handling a connection: the most specific matching chain, else the
    /// default chain.
    pub fn chain_for(
        &self,
        destination: SocketAddr,
        server_name: Option<&str>,
        transport: &str,
        offered_protocols: &[String],
    ) -> Option<&FilterChain> {
        self.filter_chains
            .iter()
            .filter(|c| {
                c.matcher
                    .matches(destination, server_name, transport, offered_protocols)
            })
            .max_by_key(|c| c.matcher.specificity())
            .or(self.default_filter_chain.as_ref())
    }
}

#[cfg(test)]
mod tests;
