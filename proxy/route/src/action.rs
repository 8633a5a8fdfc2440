//! What a matched route does: forward, redirect, or answer directly.
//!
//! Istio's translation (`pilot/pkg/networking/core/route/route.go`,
//! `translateRoute` / `applyHTTPRouteDestination`):
//! - one `route` destination → a single cluster; several → weighted clusters, with
//!   0-weight destinations dropped; each cluster named in Istio's format
//!   (`outbound|9080|v2|reviews.default.svc.cluster.local`) by the control plane;
//! - `timeout` → [`RouteAction::timeout`]; absent = disabled (Istio writes `0s`,
//!   Envoy's "no timeout"), never Envoy's own 15 s default;
//! - `retries` → [`RouteAction::retry`] (see [`crate::retry`]);
//! - `rewrite.uri` → [`PathRewrite::Prefix`], `rewrite.uriRegexRewrite` →
//!   [`PathRewrite::Regex`], `rewrite.authority` (or a `:authority`/`host` header
//!   set) → [`RouteAction::host_rewrite`];
//! - `mirror` + `mirrorPercentage` and `mirrors` → [`Mirror`]s (100 % when no
//!   percentage is given; an explicit 0 emits no mirror);
//! - `redirect` → [`Action::Redirect`]; `directResponse` → [`Action::Direct`];
//! - a DestinationRule's `consistentHash` → [`HashPolicy`].

use std::{borrow::Cow, net::IpAddr, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{
    header::HeaderOps,
    random::RandomSource,
    request::{RequestHead, joined_header},
    retry::RetryPolicy,
    rewrite::{PathRewrite, Redirect},
};

/// The action of a route.
#[expect(
    clippy::large_enum_variant,
    reason = "built once per route and read per request; boxing the common variant would only add an indirection"
)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Forward upstream.
    Route(RouteAction),
    /// Answer with a redirect.
    Redirect(Redirect),
    /// Answer locally with this status and body (e.g. Istio's `block_all`: 502,
    /// empty body; a VirtualService `directResponse`).
    Direct {
        /// Status, 200–599.
        status: u16,
        /// Body, sent as is.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        body: String,
    },
    /// Envoy's `non_forwarding_action`: the route matches but nothing is forwarded;
    /// another filter (not the router) produces the response.
    NonForwarding,
}

/// Forwarding: where to, and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteAction {
    /// The cluster, or clusters with weights.
    pub cluster: ClusterSpecifier,
    /// Route timeout for the whole request including retries; `None` = disabled
    /// (Istio's default).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::duration::option"
    )]
    pub timeout: Option<Duration>,
    /// Retries; `None` = no retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Path rewrite before forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<PathRewrite>,
    /// Authority rewrite before forwarding (Envoy `host_rewrite_literal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_rewrite: Option<String>,
    /// Shadow copies of the request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<Mirror>,
    /// Consistent-hash inputs for the load balancer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hash_policy: Vec<HashPolicy>,
}

/// Where a route forwards to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterSpecifier {
    /// Always this cluster.
    Cluster(String),
    /// One of these, picked by weight.
    Weighted(Vec<WeightedCluster>),
}

/// One destination of a weighted route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedCluster {
    /// Cluster name.
    pub name: String,
    /// Relative weight. Istio's weights usually sum to 100 but need not: the share
    /// is `weight / sum of weights`, as in Envoy. 0 = never picked.
    pub weight: u32,
    /// The destination's own request header mutations (applied before the route's).
    #[serde(default, skip_serializing_if = "HeaderOps::is_empty")]
    pub request_headers: HeaderOps,
    /// The destination's own response header mutations (applied before the route's).
    #[serde(default, skip_serializing_if = "HeaderOps::is_empty")]
    pub response_headers: HeaderOps,
    /// The destination's own authority rewrite; the route's wins if both are set
    /// (Istio: "Envoy behavior is different when we set at both cluster level and
    /// route level", `processDestination`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_rewrite: Option<String>,
}

/// A shadow copy of each request (response ignored), for some share of requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mirror {
    /// Cluster that receives the copies.
    pub cluster: String,
    /// Share of requests mirrored, 0–100.
    pub percent: f64,
}

/// What the load balancer hashes for consistent hashing (a DestinationRule's
/// `loadBalancer.consistentHash`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashPolicy {
    /// `httpHeaderName`: a request header's value.
    Header {
        /// Header name, lower-case.
        name: String,
    },
    /// `httpCookie`: a cookie's value. When the cookie is absent and `ttl` is set,
    /// Envoy generates one and sets it on the response (the proxy's job).
    Cookie {
        /// Cookie name.
        name: String,
        /// Lifetime of a generated cookie.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "crate::duration::option"
        )]
        ttl: Option<Duration>,
        /// Path of a generated cookie.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
    /// `useSourceIp`: the downstream address.
    SourceIp,
    /// `httpQueryParameterName`: a query parameter's (decoded) value.
    QueryParameter {
        /// Parameter name.
        name: String,
    },
}

/// The cluster picked for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PickedCluster<'r> {
    /// The cluster name.
    pub name: &'r str,
    /// The weighted destination, if the route has several.
    pub destination: Option<&'r WeightedCluster>,
}

// === impl ClusterSpecifier ===

impl ClusterSpecifier {
    /// Sum of the weights (Envoy's total); 1 for a single cluster.
    pub fn total_weight(&self) -> u64 {
        match self {
            Self::Cluster(_) => 1,
            Self::Weighted(clusters) => clusters
                .iter()
                .map(|cluster| u64::from(cluster.weight))
                .sum(),
        }
    }

    /// Picks the cluster for one request. A single cluster draws nothing; weighted
    /// clusters draw one number `r` and take the cluster whose cumulative weight
    /// range holds `r % total` (Envoy's `pickWeightedCluster`). `None` only for
    /// weighted clusters whose total weight is 0, which validation rejects.
    pub fn pick(&self, rng: &mut impl RandomSource) -> Option<PickedCluster<'_>> {
        match self {
            Self::Cluster(name) => Some(PickedCluster {
                name,
                destination: None,
            }),
            Self::Weighted(clusters) => {
                let total = self.total_weight();
                if total == 0 {
                    return None;
                }
                let mut point = rng.next_u64() % total;
                clusters.iter().find_map(|cluster| {
                    let weight = u64::from(cluster.weight);
                    if point < weight {
                        Some(PickedCluster {
                            name: &cluster.name,
                            destination: Some(cluster),
                        })
                    } else {
                        point -= weight;
                        None
                    }
                })
            }
        }
    }
}

// === impl HashPolicy ===

impl HashPolicy {
    /// The value to hash for `request`, if it has one. `source_ip` is the
    /// downstream address (for [`HashPolicy::SourceIp`]).
    pub fn key<'q>(
        &self,
        request: &RequestHead<'q>,
        source_ip: Option<IpAddr>,
    ) -> Option<Cow<'q, str>> {
        match self {
            Self::Header { name } => request.header(name),
            Self::Cookie { name, .. } => cookie(request, name),
            Self::SourceIp => source_ip.map(|ip| Cow::Owned(ip.to_string())),
            Self::QueryParameter { name } => request.query_param(name),
        }
    }
}

/// The first value of cookie `name` in the request's `Cookie` headers.
fn cookie<'q>(request: &RequestHead<'q>, name: &str) -> Option<Cow<'q, str>> {
    let cookies = joined_header(request.headers, "cookie")?;
    let value = cookies
        .split([';', ','])
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())?;
    Some(Cow::Owned(value))
}

#[cfg(test)]
mod tests;
