//! The meshlab proxy: the sidecar beside every meshed app and the ingress and egress
//! gateways.
//!
//! It will own, as Envoy does in Istio:
//! - traffic capture set-up for a pod ([`capture`]: the init step, Istio's rules
//!   programmed into nf_tables over netlink);
//! - the inbound (15006) and outbound (15001) listeners, HTTP/1.1 and HTTP/2 routing,
//!   faults, retries, timeouts, load balancing, connection pools, outlier detection;
//! - mutual TLS with SPIFFE identities, authorization and JWT checks;
//! - the DNS proxy (15053), access log, metrics and trace headers, admin endpoints.
//!
//! The proxy learns its configuration over the discovery stream defined in
//! `meshlab-control-api`; it never depends on the control plane crate itself. Route
//! matching is pure data in `meshlab-proxy-route`.
//!
//! # The data path
//!
//! [`run`] (or [`Sidecar::start`]) runs one `ProxyConfig` after another as the
//! discovery client delivers them on a `watch` channel:
//!
//! ```text
//! listener (original destination, TLS inspection → filter chain)
//! ├─ http   connection manager: route, faults, retries, timeouts, mirrors, header ops
//! │         └─ cluster: load balancer → outlier detection → pool (circuit breakers) → TLS
//! └─ tcp    TCP proxy: cluster, PassthroughCluster or BlackHoleCluster
//! access_log (Istio's text format) · stats (/stats, /stats/prometheus) · admin (15000/15021/15090)
//! ```
//!
//! Each module says which Envoy or Istio behaviour it reproduces and where that
//! fact comes from.

pub mod capture;

pub mod access_log;
mod admin;
mod authz;
mod balancer;
mod body;
mod cluster;
pub mod discovery;
pub mod dns;
mod http;
pub mod identity;
mod jwt;
pub mod listener;
mod outlier;
mod peer;
mod pool;
pub mod sidecar;
mod stats;
mod tcp;
mod tls;

pub use access_log::AccessLogSink;
pub use identity::Identity;
pub use listener::OriginalDst;
pub use sidecar::{ProxyError, ProxyOptions, Sidecar, run};
