//! Metadata exchange: how a server's sidecar learns who the client is, for the
//! `source_*` labels of the metrics it reports as the destination.
//!
//! Istio's client sidecar adds two request headers to HTTP requests going to an
//! endpoint that runs a sidecar: `x-envoy-peer-metadata-id` (the client's node id,
//! `sidecar~10.0.0.5~productpage-v1-abc.default~default.svc.cluster.local`) and
//! `x-envoy-peer-metadata` (the client's workload metadata). The server's sidecar
//! reads and removes both before the app sees the request. Istio's
//! `x-envoy-peer-metadata` is a base64 protobuf `Struct`; meshlab's is base64 of a
//! small JSON object of its own (workload, namespace, app, version, canonical
//! service and revision). Both are opaque to apps, and only meshlab proxies talk
//! to each other in a lab, so nothing reads either form but the proxy.
//!
//! The headers never go to an endpoint without a sidecar (EDS `has_sidecar`), nor to
//! an external host, and a header an app sets itself is dropped on the way out: the
//! metadata describes the proxy's workload, not what the app claims. The client's
//! principal is not in the metadata: it is taken from the verified mTLS peer
//! certificate only.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use meshlab_proxy_config::ProxyNode;
use serde_json::{Map, Value};

use crate::stats::Peer;

/// The client's node id.
pub(crate) static X_ENVOY_PEER_METADATA_ID: HeaderName =
    HeaderName::from_static("x-envoy-peer-metadata-id");
/// The client's workload metadata.
pub(crate) static X_ENVOY_PEER_METADATA: HeaderName =
    HeaderName::from_static("x-envoy-peer-metadata");

/// Reads one [`Peer`] field.
type Get = fn(&Peer) -> &String;
/// Writes one [`Peer`] field.
type Set = fn(&mut Peer) -> &mut String;

/// The keys of the JSON object, each with the [`Peer`] field it carries.
const FIELDS: [(&str, Get, Set); 6] = [
    ("workload", |p| &p.workload, |p| &mut p.workload),
    ("namespace", |p| &p.namespace, |p| &mut p.namespace),
    ("app", |p| &p.app, |p| &mut p.app),
    ("version", |p| &p.version, |p| &mut p.version),
    (
        "canonical_service",
        |p| &p.canonical_service,
        |p| &mut p.canonical_service,
    ),
    (
        "canonical_revision",
        |p| &p.canonical_revision,
        |p| &mut p.canonical_revision,
    ),
];

/// A proxy's own two header values, built once.
#[derive(Clone, Debug)]
pub(crate) struct PeerMetadata {
    id: Option<HeaderValue>,
    metadata: HeaderValue,
}

impl PeerMetadata {
    /// The headers describing the proxy of `node`, whose workload is `me`.
    pub(crate) fn new(node: &ProxyNode, me: &Peer) -> Self {
        Self {
            // A node id with bytes a header cannot carry is left out; the
            // metadata alone is what labels are built from.
            id: HeaderValue::from_str(&node.id()).ok(),
            metadata: encode(me),
        }
    }

    /// Sets the headers on a request leaving the proxy when its endpoint runs a
    /// sidecar, and removes any an app set otherwise.
    pub(crate) fn apply(&self, headers: &mut HeaderMap, to_sidecar: bool) {
        strip(headers);
        if !to_sidecar {
            return;
        }
        if let Some(id) = &self.id {
            headers.insert(X_ENVOY_PEER_METADATA_ID.clone(), id.clone());
        }
        headers.insert(X_ENVOY_PEER_METADATA.clone(), self.metadata.clone());
    }
}

/// Removes both headers from an inbound request; returns the metadata, if any.
pub(crate) fn take_inbound(headers: &mut HeaderMap) -> Option<HeaderValue> {
    headers.remove(&X_ENVOY_PEER_METADATA_ID);
    headers.remove(&X_ENVOY_PEER_METADATA)
}

/// Removes both headers (what an app sets itself on the way out).
pub(crate) fn strip(headers: &mut HeaderMap) {
    headers.remove(&X_ENVOY_PEER_METADATA_ID);
    headers.remove(&X_ENVOY_PEER_METADATA);
}

/// `x-envoy-peer-metadata` for `peer`.
fn encode(peer: &Peer) -> HeaderValue {
    let object: Map<String, Value> = FIELDS
        .iter()
        .map(|(key, get, _)| ((*key).to_owned(), Value::String(get(peer).clone())))
        .collect();
    let encoded = STANDARD.encode(Value::Object(object).to_string());
    // Base64 is always a valid header value.
    HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The peer an `x-envoy-peer-metadata` value describes; fields missing or not
/// strings stay `unknown`, and a value that is not base64 JSON describes nobody.
pub(crate) fn decode(value: &HeaderValue) -> Option<Peer> {
    let json = STANDARD.decode(value.as_bytes()).ok()?;
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(&json) else {
        return None;
    };
    let mut peer = Peer::unknown();
    for (key, _, field) in &FIELDS {
        if let Some(Value::String(value)) = object.get(*key)
            && !value.is_empty()
        {
            value.clone_into(field(&mut peer));
        }
    }
    Some(peer)
}

#[cfg(test)]
mod tests;
