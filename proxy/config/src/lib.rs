//! What a meshlab proxy is configured with, as pure data.
//!
//! The control plane translates Istio's resources into these types for each proxy;
//! the wire contract (`meshlab-control-api`) carries them; the proxy runs them. They
//! follow Envoy's resources with Istio's names so that `meshlab proxy-config` reads
//! like `istioctl proxy-config`:
//!
//! ```text
//! ProxyConfig
//! ├─ Listener "virtualOutbound" 0.0.0.0:15001 (original destination)
//! │  └─ FilterChain  match: destination port 9080      → HttpConnectionManager route "9080"
//! │  └─ FilterChain  match: SNI www.google.com, :443   → TcpProxy "outbound|443||www.google.com"
//! │  └─ default chain                                  → TcpProxy "PassthroughCluster"
//! ├─ RouteConfiguration "9080"     (meshlab-proxy-route)
//! ├─ Cluster "outbound|9080|v2|reviews.default.svc.cluster.local"   EDS, LEAST_REQUEST, …
//! └─ ClusterLoadAssignment         172.18.0.7:9080 {app: reviews, version: v2}
//! ```
//!
//! Like the route tables, nothing here does I/O: the same values are generated,
//! sent, shown and served.

pub mod authz;
pub mod cluster;
pub mod endpoint;
pub mod listener;
pub mod proxy;
pub mod secret;

pub use authz::Authorization;
pub use cluster::{
    BLACK_HOLE_CLUSTER, CircuitBreakers, Cluster, DiscoveryType, LbPolicy, OutlierDetection,
    TlsMode, UpstreamTls,
};
pub use endpoint::{ClusterLoadAssignment, Endpoint, EndpointAddress};
pub use listener::{
    ChainMatch, DownstreamTls, FilterChain, HttpConnectionManager, Listener, MESH_ALPN,
    MESH_ALPN_H2, MESH_MTLS_ALPN, NetworkFilter, TcpProxy, TcpWeightedCluster, TrafficDirection,
};
pub use meshlab_proxy_route as route;
pub use meshlab_proxy_route::{PASSTHROUGH_CLUSTER, RouteConfiguration};
pub use proxy::{ProxyConfig, ProxyKind, ProxyNode};
pub use secret::{PrivateKey, Secret, SecretKind};
