//! Route tables as pure data: no I/O, no tokio.
//!
//! This crate owns what a proxy decides for one request before any byte moves:
//! which virtual host and route match (authority, URI, headers, query parameters),
//! which weighted destination is picked, which fault applies, how retries and timeouts
//! are set. Keeping it free of I/O lets the control plane's simulation tests and the
//! labs use the exact same decisions as the proxy.
//!
//! # Shape
//!
//! The types follow Envoy's RDS resources with Istio's names, as plain Rust data
//! (serde `Serialize`/`Deserialize`, so `proxy-config routes -o json` can show
//! them):
//!
//! ```text
//! RouteConfiguration "9080"
//! └─ VirtualHost "reviews.default.svc.cluster.local:9080"   domains: reviews, reviews:9080, …
//!    └─ Route (first match wins)   origin: VirtualService/default/reviews#0
//!       ├─ RouteMatch   path (prefix | exact | regex), headers, query params
//!       ├─ Action       Route(RouteAction) | Redirect | Direct | NonForwarding
//!       ├─ HeaderOps    request / response: set, add, remove
//!       └─ Fault        delay, abort
//! ```
//!
//! # Deciding a request
//!
//! ```
//! use http::HeaderMap;
//! use meshlab_proxy_route::{RequestHead, RouteConfiguration, Sequence, Verdict};
//!
//! # fn run(config: &RouteConfiguration) -> Option<()> {
//! let headers = HeaderMap::new();
//! let request = RequestHead {
//!     authority: "reviews:9080",
//!     path_and_query: "/reviews/0",
//!     method: "GET",
//!     scheme: "http",
//!     headers: &headers,
//! };
//! // None: Envoy's 404 with response flag NR.
//! let selected = config.select(&request)?;
//! // The proxy passes a real random source; tests pass a scripted one.
//! let decision = selected.route.decide(&request, &mut Sequence::new([42]));
//! if let Verdict::Forward(forward) = decision.verdict {
//!     println!("to {} (timeout {:?})", forward.cluster, forward.timeout);
//! }
//! # Some(())
//! # }
//! ```
//!
//! After forwarding, [`RetryPolicy::should_retry`] says whether an attempt's
//! [`Outcome`] is retried and [`Backoff::delay`] how long to wait;
//! [`ResponseFlags`] prints the access log's `%RESPONSE_FLAGS%`.
//!
//! # What the control plane resolves first
//!
//! Some VirtualService fields select *proxies*, not requests: a match's `port`,
//! `sourceLabels`, `sourceNamespace` and `gateways`. Istio evaluates them while
//! generating each proxy's routes and leaves out routes that cannot apply to that
//! proxy; so does meshlab's control plane, and they never appear here (see
//! [`matcher`]). Likewise the control plane merges several VirtualServices for one
//! host, orders their routes, and names clusters.
//!
//! # Randomness
//!
//! Nothing here draws random numbers on its own: every probabilistic choice takes a
//! [`RandomSource`] from the caller, and the order of draws is documented
//! ([`decision`]), so tests are deterministic.
//!
//! Facts about Envoy and Istio behaviour are cited in each module with the source
//! file they come from; the code is meshlab's own.

pub mod action;
pub mod decision;
pub mod domain;
pub mod duration;
pub mod fault;
pub mod flags;
pub mod header;
pub mod matcher;
pub mod pattern;
pub mod random;
pub mod request;
pub mod retry;
pub mod rewrite;
pub mod route;
pub mod route_configuration;
pub mod validate;
pub mod virtual_host;

#[cfg(test)]
mod test_support;

pub use action::{
    Action, ClusterSpecifier, HashPolicy, Mirror, PickedCluster, RouteAction, WeightedCluster,
};
pub use decision::{Decision, Forward, Verdict};
pub use domain::Domain;
pub use fault::{FAULT_ABORT_BODY, Fault, FaultAbort, FaultDecision, FaultDelay};
pub use flags::{ResponseFlag, ResponseFlags};
pub use header::{HeaderOps, HeaderPair, HeaderPlan};
pub use matcher::{HeaderMatch, HeaderMatcher, PathMatch, QueryMatch, QueryMatcher, RouteMatch};
pub use pattern::{InvalidPattern, Pattern};
pub use random::{RandomSource, Sequence, chance};
pub use request::RequestHead;
pub use retry::{
    Backoff, InvalidRetryOn, IstioRetry, Outcome, RetryCondition, RetryOn, RetryPolicy,
    RetryVerdict, parse_istio_retry_on,
};
pub use rewrite::{InvalidRegexRewrite, PathRewrite, Redirect, RedirectPath, RegexRewrite};
pub use route::Route;
pub use route_configuration::{RouteConfiguration, Selected};
pub use validate::{InvalidRouteConfiguration, Location, Problem};
pub use virtual_host::{ALLOW_ANY, BLOCK_ALL, PASSTHROUGH_CLUSTER, VirtualHost};
