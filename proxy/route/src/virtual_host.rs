//! Virtual hosts: the routes for a set of domains, and Istio's catch-alls.

use serde::{Deserialize, Serialize};

use crate::{
    action::{Action, ClusterSpecifier, RouteAction},
    domain::{Domain, Specificity},
    matcher::RouteMatch,
    request::RequestHead,
    route::Route,
};

/// Istio's name for the catch-all virtual host and route under `ALLOW_ANY`
/// (`util.Passthrough`).
pub const ALLOW_ANY: &str = "allow_any";
/// Istio's name for the catch-all virtual host and route under `REGISTRY_ONLY`.
pub const BLOCK_ALL: &str = "block_all";
/// The cluster that forwards to the original destination (`util.PassthroughCluster`).
pub const PASSTHROUGH_CLUSTER: &str = "PassthroughCluster";

/// A virtual host (Envoy's `VirtualHost`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VirtualHost {
    /// Istio's name, e.g. `reviews.default.svc.cluster.local:9080`, `allow_any`.
    pub name: String,
    /// Authorities served; see [`crate::domain`] for how they are matched.
    pub domains: Vec<Domain>,
    /// Routes, tried in order.
    pub routes: Vec<Route>,
    /// Where it came from (e.g. `ServiceEntry/default/httpbin-ext`,
    /// `MeshConfig outboundTrafficPolicy ALLOW_ANY`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub origin: String,
}

// === impl VirtualHost ===

impl VirtualHost {
    /// Istio's `allow_any` catch-all (`buildCatchAllVirtualHost` under
    /// `ALLOW_ANY`): every authority, every path, to the `PassthroughCluster`, with
    /// the timeout disabled and no retries.
    pub fn allow_any(origin: &str) -> Self {
        let action = Action::Route(RouteAction {
            cluster: ClusterSpecifier::Cluster(PASSTHROUGH_CLUSTER.to_owned()),
            timeout: None,
            retry: None,
            rewrite: None,
            host_rewrite: None,
            mirrors: Vec::new(),
            hash_policy: Vec::new(),
        });
        Self::catch_all(ALLOW_ANY, action, origin)
    }

    /// Istio's `block_all` catch-all (`REGISTRY_ONLY`): every authority answered
    /// with a direct 502 and an empty body.
    pub fn block_all(origin: &str) -> Self {
        let action = Action::Direct {
            status: 502,
            body: String::new(),
        };
        Self::catch_all(BLOCK_ALL, action, origin)
    }

    fn catch_all(name: &str, action: Action, origin: &str) -> Self {
        let mut route = Route::new(name, RouteMatch::default(), action);
        route.origin = origin.to_owned();
        Self {
            name: name.to_owned(),
            domains: vec![Domain::Any],
            routes: vec![route],
            origin: origin.to_owned(),
        }
    }

    /// How well this virtual host's best domain matches `host`, if any does.
    pub(crate) fn specificity(&self, host: &str) -> Option<Specificity> {
        self.domains
            .iter()
            .filter_map(|domain| domain.matches(host))
            .min()
    }

    /// The first route that matches `request`.
    pub fn route_for(&self, request: &RequestHead<'_>) -> Option<&Route> {
        self.routes
            .iter()
            .find(|route| route.matcher.matches(request))
    }
}
