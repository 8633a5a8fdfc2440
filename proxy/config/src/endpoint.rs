//! Endpoints: the addresses behind a cluster (Envoy's ClusterLoadAssignment).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Where an endpoint is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EndpointAddress {
    /// An address: a pod, a WorkloadEntry, a STATIC ServiceEntry endpoint.
    Socket(SocketAddr),
    /// A name the proxy resolves: a DNS ServiceEntry host.
    Dns {
        /// The host name.
        host: String,
        /// The port.
        port: u16,
    },
}

/// One endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// Its address.
    pub address: EndpointAddress,
    /// Its labels (pod labels), for dumps and subset checks.
    pub labels: BTreeMap<String, String>,
    /// Its load-balancing weight (1 unless a ServiceEntry says otherwise).
    pub weight: u32,
    /// The SPIFFE identity it runs as, when known (secure naming).
    pub service_account: Option<String>,
    /// Whether it runs a sidecar (auto-mTLS chooses plaintext when it does not).
    pub has_sidecar: bool,
}

/// A cluster's endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterLoadAssignment {
    /// The cluster.
    pub cluster_name: String,
    /// Its endpoints.
    pub endpoints: Vec<Endpoint>,
}
