//! The meshlab proxy: the sidecar beside every meshed app and the ingress and egress
//! gateways.
//!
//! It will own, as Envoy does in Istio:
//! - traffic capture set-up for a pod (the init step, netfilter over netlink);
//! - the inbound (15006) and outbound (15001) listeners, HTTP/1.1 and HTTP/2 routing,
//!   faults, retries, timeouts, load balancing, connection pools, outlier detection;
//! - mutual TLS with SPIFFE identities, authorization and JWT checks;
//! - the DNS proxy (15053), access log, metrics and trace headers, admin endpoints.
//!
//! The proxy learns its configuration over the discovery stream defined in
//! `meshlab-control-api`; it never depends on the control plane crate itself. Route
//! matching is pure data in `meshlab-proxy-route`.
