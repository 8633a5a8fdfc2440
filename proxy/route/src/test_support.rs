//! Small builders for tests: requests and routes in a line each.

use http::HeaderMap;

use crate::{
    action::{Action, ClusterSpecifier, RouteAction, WeightedCluster},
    decision::{Decision, Verdict},
    header::HeaderOps,
    matcher::{PathMatch, RouteMatch},
    pattern::Pattern,
    request::RequestHead,
};

/// An owned request to borrow a [`RequestHead`] from.
pub(crate) struct Req {
    authority: String,
    path_and_query: String,
    method: String,
    scheme: String,
    headers: HeaderMap,
}

impl Req {
    /// `GET http://<authority><path_and_query>`.
    pub(crate) fn get(authority: &str, path_and_query: &str) -> Self {
        Self {
            authority: authority.to_owned(),
            path_and_query: path_and_query.to_owned(),
            method: "GET".to_owned(),
            scheme: "http".to_owned(),
            headers: HeaderMap::new(),
        }
    }

    pub(crate) fn method(mut self, method: &str) -> Self {
        method.clone_into(&mut self.method);
        self
    }

    pub(crate) fn scheme(mut self, scheme: &str) -> Self {
        scheme.clone_into(&mut self.scheme);
        self
    }

    /// Adds a header (repeatable).
    pub(crate) fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers
            .append(name, value.parse().expect("valid header value"));
        self
    }

    pub(crate) fn head(&self) -> RequestHead<'_> {
        RequestHead {
            authority: &self.authority,
            path_and_query: &self.path_and_query,
            method: &self.method,
            scheme: &self.scheme,
            headers: &self.headers,
        }
    }
}

pub(crate) fn prefix(prefix: &str) -> RouteMatch {
    RouteMatch::path(PathMatch::Prefix(prefix.to_owned()))
}

pub(crate) fn exact(path: &str) -> RouteMatch {
    RouteMatch::path(PathMatch::Exact(path.to_owned()))
}

pub(crate) fn regex(pattern: &str) -> RouteMatch {
    RouteMatch::path(PathMatch::Regex(
        Pattern::new(pattern).expect("valid regex"),
    ))
}

/// A forwarding action with nothing but a cluster specifier.
pub(crate) fn forward_to(cluster: ClusterSpecifier) -> RouteAction {
    RouteAction {
        cluster,
        timeout: None,
        retry: None,
        rewrite: None,
        host_rewrite: None,
        mirrors: Vec::new(),
        hash_policy: Vec::new(),
    }
}

/// `Action::Route` to one cluster.
pub(crate) fn to(cluster: &str) -> Action {
    Action::Route(forward_to(ClusterSpecifier::Cluster(cluster.to_owned())))
}

/// Weighted clusters without header operations.
pub(crate) fn weighted(clusters: &[(&str, u32)]) -> ClusterSpecifier {
    ClusterSpecifier::Weighted(
        clusters
            .iter()
            .map(|(name, weight)| WeightedCluster {
                name: (*name).to_owned(),
                weight: *weight,
                request_headers: HeaderOps::default(),
                response_headers: HeaderOps::default(),
                host_rewrite: None,
            })
            .collect(),
    )
}

/// The cluster a decision forwards to, or a short description of what it does
/// instead.
pub(crate) fn outcome(decision: &Decision<'_>) -> String {
    match &decision.verdict {
        Verdict::Forward(forward) => forward.cluster.to_owned(),
        Verdict::Abort { status } => format!("abort {status}"),
        Verdict::Redirect {
            status, location, ..
        } => format!("{status} {location}"),
        Verdict::Respond { status, body, .. } => format!("respond {status} {body:?}"),
        Verdict::NonForwarding => "non-forwarding".to_owned(),
    }
}
