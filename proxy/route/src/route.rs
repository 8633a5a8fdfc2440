//! One route: a match, an action, and what else happens on the way.

use serde::{Deserialize, Serialize};

use crate::{action::Action, fault::Fault, header::HeaderOps, matcher::RouteMatch};

/// A route of a virtual host (Envoy's `Route`). Routes are tried in order; the
/// first whose [`RouteMatch`] holds wins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// Istio's route name: the VirtualService http route `name`, plus `.` and the
    /// match `name` if both are set; `default` for the route of a service without
    /// VirtualService; `allow_any` / `block_all` for the catch-alls. May be empty.
    #[serde(default)]
    pub name: String,
    /// When this route applies.
    #[serde(rename = "match")]
    pub matcher: RouteMatch,
    /// What it does.
    pub action: Action,
    /// Request header mutations of the route (VirtualService `headers.request`,
    /// plus a single destination's).
    #[serde(default, skip_serializing_if = "HeaderOps::is_empty")]
    pub request_headers: HeaderOps,
    /// Response header mutations of the route (`headers.response`).
    #[serde(default, skip_serializing_if = "HeaderOps::is_empty")]
    pub response_headers: HeaderOps,
    /// Fault injection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    /// Where the route came from, e.g. `VirtualService/default/reviews#1` (the
    /// second http rule), so logs and the dashboard can say why a request went
    /// where it went.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub origin: String,
    /// Envoy's decorator operation (tracing span name, and the value of
    /// `x-envoy-decorator-operation` towards external hosts), e.g.
    /// `reviews.default.svc.cluster.local:9080/*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decorator: Option<String>,
}

// === impl Route ===

impl Route {
    /// A route with no header mutations, fault, origin or decorator.
    pub fn new(name: &str, matcher: RouteMatch, action: Action) -> Self {
        Self {
            name: name.to_owned(),
            matcher,
            action,
            request_headers: HeaderOps::default(),
            response_headers: HeaderOps::default(),
            fault: None,
            origin: String::new(),
            decorator: None,
        }
    }
}
