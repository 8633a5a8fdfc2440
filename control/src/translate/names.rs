//! Every resource name a proxy sees, built in one place in Istio's formats, so that
//! `meshlab proxy-config` output can be compared with `istioctl`'s line for line.

/// `outbound|9080|v2|reviews.default.svc.cluster.local` (subset empty when none).
pub fn outbound_cluster(port: u16, subset: &str, host: &str) -> String {
    format!("outbound|{port}|{subset}|{host}")
}

/// The Secret holding a proxy's own certificate (Istio's name).
pub use meshlab_proxy_config::secret::WORKLOAD_CERTIFICATE as WORKLOAD_SECRET;

/// The Secret holding the mesh's trust roots (Istio's name).
pub const ROOT_SECRET: &str = "ROOTCA";

/// The SNI a sidecar sends with mesh mTLS:
/// `outbound_.9080_.v2_.reviews.default.svc.cluster.local`.
pub fn istio_mutual_sni(port: u16, subset: &str, host: &str) -> String {
    format!("outbound_.{port}_.{subset}_.{host}")
}

/// `inbound|9080||`: the app's port inside the pod.
pub fn inbound_cluster(port: u16) -> String {
    format!("inbound|{port}||")
}

/// The outbound HTTP route configuration for a port: `9080`.
pub fn outbound_route(port: u16) -> String {
    port.to_string()
}

/// A virtual host: `reviews.default.svc.cluster.local:9080`.
pub fn virtual_host(host: &str, port: u16) -> String {
    format!("{host}:{port}")
}

/// The outbound listener every sidecar has.
pub const VIRTUAL_OUTBOUND: &str = "virtualOutbound";
/// The inbound listener every sidecar has.
pub const VIRTUAL_INBOUND: &str = "virtualInbound";
/// Inbound traffic to a port no service declares: to the original destination.
pub const INBOUND_PASSTHROUGH: &str = "InboundPassthroughCluster";

/// The filter chain of an outbound port: `0.0.0.0_9080`.
pub fn outbound_chain(port: u16) -> String {
    format!("0.0.0.0_{port}")
}

/// Where a route came from: `VirtualService/default/reviews#1`.
pub fn origin(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind}/{namespace}/{name}")
}
