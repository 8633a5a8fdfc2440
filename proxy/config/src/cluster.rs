//! Clusters: where a proxy sends requests and how it treats the endpoints there —
//! what Istio's DestinationRules and ServiceEntries become.

use std::time::Duration;

use meshlab_proxy_route::duration;
use serde::{Deserialize, Serialize};

/// The cluster that drops the connection: unmatched traffic under REGISTRY_ONLY.
pub const BLACK_HOLE_CLUSTER: &str = "BlackHoleCluster";

/// How a cluster learns its endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DiscoveryType {
    /// From the control plane (a ClusterLoadAssignment): mesh services.
    Eds,
    /// Fixed addresses: `inbound|…` clusters, ServiceEntries with STATIC resolution.
    Static,
    /// Resolved by the proxy, every address used: ServiceEntry `DNS`.
    StrictDns,
    /// Resolved by the proxy, first address used: ServiceEntry `DNS_ROUND_ROBIN`.
    LogicalDns,
    /// The connection's own destination: `PassthroughCluster`, resolution `NONE`.
    OriginalDst,
}

/// How a cluster picks an endpoint (DestinationRule `loadBalancer`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LbPolicy {
    /// In turn.
    RoundRobin,
    /// Fewer active requests first (Istio's default).
    LeastRequest,
    /// At random.
    Random,
    /// By a hash of the route's hash policy (consistentHash).
    RingHash,
    /// The connection's original destination.
    ClusterProvided,
}

/// Envoy's circuit-breaker thresholds (DestinationRule `connectionPool`). `None`
/// means Envoy's default, which Istio raises to effectively unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CircuitBreakers {
    /// `tcp.maxConnections`.
    pub max_connections: Option<u32>,
    /// `http.http1MaxPendingRequests`.
    pub max_pending_requests: Option<u32>,
    /// `http.http2MaxRequests`.
    pub max_requests: Option<u32>,
    /// `http.maxRetries`.
    pub max_retries: Option<u32>,
    /// `http.maxRequestsPerConnection`.
    pub max_requests_per_connection: Option<u32>,
}

/// Envoy's outlier detection (DestinationRule `outlierDetection`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutlierDetection {
    /// Consecutive 5xx (and local-origin failures) that eject an endpoint; `None` off.
    pub consecutive_5xx: Option<u32>,
    /// Consecutive 502/503/504 (and local-origin failures) that eject; `None` off.
    pub consecutive_gateway_failure: Option<u32>,
    /// How often ejections are reviewed.
    #[serde(with = "duration")]
    pub interval: Duration,
    /// How long a first ejection lasts (multiplied by the ejection count).
    #[serde(with = "duration")]
    pub base_ejection_time: Duration,
    /// The most endpoints that may be ejected at once, in percent.
    pub max_ejection_percent: u32,
    /// Below this share of healthy endpoints, no endpoint is ejected.
    pub min_health_percent: u32,
}

/// How a proxy speaks TLS to a cluster's endpoints (DestinationRule `tls`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TlsMode {
    /// Plaintext.
    Disable,
    /// TLS, server authenticated (origination to external hosts).
    Simple,
    /// TLS with a client certificate (a `credentialName` secret).
    Mutual,
    /// Mesh mTLS with SPIFFE identities.
    IstioMutual,
}

/// Upstream TLS settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamTls {
    /// The mode.
    pub mode: TlsMode,
    /// The server name to send; the endpoint's host when `None`.
    pub sni: Option<String>,
    /// Identities the server may present (secure naming); empty = any the CA signed.
    pub subject_alt_names: Vec<String>,
    /// Istio's auto mTLS (with `IstioMutual`): endpoints that run no sidecar are
    /// sent plaintext instead.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_mtls: bool,
    /// The secret with the client certificate to present (`MUTUAL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The secret with the roots the server must chain to; `None` = the system
    /// CA bundle (`SIMPLE`, `MUTUAL`) or the mesh's roots (`ISTIO_MUTUAL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_ca: Option<String>,
}

/// A cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    /// `outbound|9080|v2|reviews.default.svc.cluster.local`, `inbound|9080||`, …
    pub name: String,
    /// How endpoints are found.
    pub discovery: DiscoveryType,
    /// How one is picked.
    pub lb_policy: LbPolicy,
    /// How long connecting may take (Istio's default 10 s).
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// Connection pool limits.
    pub circuit_breakers: CircuitBreakers,
    /// Ejection of failing endpoints.
    pub outlier_detection: Option<OutlierDetection>,
    /// Upstream TLS.
    pub tls: Option<UpstreamTls>,
    /// Whether requests go upstream as HTTP/2.
    pub http2: bool,
    /// Which resources shaped it, e.g. `DestinationRule/default/reviews`.
    pub origin: Vec<String>,
}

impl Cluster {
    /// A cluster with Istio's defaults: EDS, LEAST_REQUEST, 10 s connect timeout.
    pub fn new(name: impl Into<String>) -> Self {
        Cluster {
            name: name.into(),
            discovery: DiscoveryType::Eds,
            lb_policy: LbPolicy::LeastRequest,
            connect_timeout: Duration::from_secs(10),
            circuit_breakers: CircuitBreakers::default(),
            outlier_detection: None,
            tls: None,
            http2: false,
            origin: Vec::new(),
        }
    }
}
