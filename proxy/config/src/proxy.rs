//! One proxy's whole configuration, and who the proxy is.

use std::collections::BTreeMap;

use meshlab_proxy_route::RouteConfiguration;
use serde::{Deserialize, Serialize};

use crate::{Cluster, ClusterLoadAssignment, Listener, Secret};

/// A sidecar or a gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProxyKind {
    /// Beside an app in a pod.
    Sidecar,
    /// A standalone gateway (Istio's `router`).
    Router,
}

/// Who a proxy is: what the control plane generates for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyNode {
    /// Sidecar or gateway.
    pub kind: ProxyKind,
    /// The pod's name.
    pub pod: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's IP.
    pub ip: String,
    /// The pod's labels (Sidecar selectors, sourceLabels, PeerAuthentication…).
    pub labels: BTreeMap<String, String>,
    /// The pod's service account.
    pub service_account: String,
}

impl ProxyNode {
    /// Istio's node id: `sidecar~10.0.0.5~reviews-v1-abc.default~default.svc.cluster.local`.
    pub fn id(&self) -> String {
        let kind = match self.kind {
            ProxyKind::Sidecar => "sidecar",
            ProxyKind::Router => "router",
        };
        format!(
            "{kind}~{}~{}.{}~{}.svc.cluster.local",
            self.ip, self.pod, self.namespace, self.namespace
        )
    }
}

/// Everything one proxy runs, by resource name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyConfig {
    /// Listeners by name.
    pub listeners: BTreeMap<String, Listener>,
    /// Route configurations by name.
    pub routes: BTreeMap<String, RouteConfiguration>,
    /// Clusters by name.
    pub clusters: BTreeMap<String, Cluster>,
    /// Endpoints by cluster name.
    pub endpoints: BTreeMap<String, ClusterLoadAssignment>,
    /// Secrets named by TLS contexts (`credentialName`s), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, Secret>,
}
