//! Who a proxy is: [`meshlab_proxy_config::ProxyNode`] on the wire.
//!
//! The proxy sends its node in the first request of a stream; the control plane
//! generates for it. The wire keeps Istio's proxy id
//! (`sidecar~10.0.0.5~reviews-v1-7f9c.default~default.svc.cluster.local`) so that
//! learners recognise it, and the control plane checks it against the other fields.

use std::net::IpAddr;

use meshlab_proxy_config::{ProxyKind, ProxyNode};

use crate::v1;

/// A [`v1::Node`] the control plane cannot accept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidNode {
    /// A required field is empty.
    #[error("node has no {0}")]
    Missing(&'static str),
    /// The kind is neither `sidecar` nor `router`.
    #[error("node kind {0:?} is not \"sidecar\" or \"router\"")]
    UnknownKind(String),
    /// The IP address does not parse.
    #[error("node ip {0:?} is not an IP address")]
    InvalidIp(String),
    /// The id is not the one the other fields give.
    #[error("node id {id:?} does not match its fields (expected {expected:?})")]
    IdMismatch {
        /// The id sent.
        id: String,
        /// The id the kind, IP, pod and namespace give.
        expected: String,
    },
}

/// The node message for `node`, with the proxy's build `version`.
pub fn node_to_wire(node: ProxyNode, version: &str) -> v1::Node {
    let kind = match node.kind {
        ProxyKind::Sidecar => "sidecar",
        ProxyKind::Router => "router",
    };
    v1::Node {
        id: node.id(),
        kind: kind.to_owned(),
        pod: node.pod,
        namespace: node.namespace,
        ip: node.ip,
        service_account: node.service_account,
        labels: node.labels,
        version: version.to_owned(),
    }
}

/// The proxy a node message describes, checked; its version is left on the message.
pub fn node_from_wire(node: v1::Node) -> Result<ProxyNode, InvalidNode> {
    for (field, value) in [
        ("id", &node.id),
        ("pod", &node.pod),
        ("namespace", &node.namespace),
    ] {
        if value.is_empty() {
            return Err(InvalidNode::Missing(field));
        }
    }
    let kind = match node.kind.as_str() {
        "sidecar" => ProxyKind::Sidecar,
        "router" => ProxyKind::Router,
        _ => return Err(InvalidNode::UnknownKind(node.kind)),
    };
    if node.ip.parse::<IpAddr>().is_err() {
        return Err(InvalidNode::InvalidIp(node.ip));
    }
    let proxy = ProxyNode {
        kind,
        pod: node.pod,
        namespace: node.namespace,
        ip: node.ip,
        labels: node.labels,
        service_account: node.service_account,
    };
    let expected = proxy.id();
    if node.id != expected {
        return Err(InvalidNode::IdMismatch {
            id: node.id,
            expected,
        });
    }
    Ok(proxy)
}

#[cfg(test)]
mod tests;
