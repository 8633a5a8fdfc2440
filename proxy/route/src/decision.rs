//! Everything a proxy decides for one request once its route is known.
//!
//! [`Route::decide`] rolls every die the route has, in a fixed order so scripted
//! [`crate::random::Sequence`]s line up:
//!
//! 1. the weighted cluster (one draw, only for weighted clusters) — Envoy picks it
//!    when the route is resolved, before any filter runs;
//! 2. the fault delay, then the fault abort (one draw each, only if configured);
//! 3. each mirror, in order (one draw each), unless the request was aborted.

use std::time::Duration;

use crate::{
    action::{Action, HashPolicy, RouteAction},
    fault::FaultDecision,
    flags::{ResponseFlag, ResponseFlags},
    header::HeaderPlan,
    random::{RandomSource, chance},
    request::RequestHead,
    retry::RetryPolicy,
    route::Route,
};

/// What to do with one request.
#[derive(Clone, Debug)]
pub struct Decision<'r> {
    /// Hold the request this long before anything else (fault delay, `DI`).
    pub delay: Option<Duration>,
    /// Response flags already known (`DI`, `FI`, `NC`); the proxy adds the ones
    /// it learns while forwarding.
    pub flags: ResponseFlags,
    /// Then this.
    pub verdict: Verdict<'r>,
}

/// The outcome of routing one request.
#[derive(Clone, Debug)]
pub enum Verdict<'r> {
    /// Answer with `status` and body [`crate::FAULT_ABORT_BODY`] (fault abort, `FI`).
    /// Route response headers do not apply to this local reply.
    Abort {
        /// The configured `httpStatus`.
        status: u16,
    },
    /// Forward upstream.
    Forward(Forward<'r>),
    /// Answer with a redirect.
    Redirect {
        /// 301, 302, 303, 307 or 308.
        status: u16,
        /// The `Location` header.
        location: String,
        /// The route's response header mutations.
        response_headers: HeaderPlan<'r>,
    },
    /// Answer locally with this status and body.
    Respond {
        /// Status.
        status: u16,
        /// Body.
        body: &'r str,
        /// The route's response header mutations.
        response_headers: HeaderPlan<'r>,
    },
    /// Route matched, nothing to forward: another filter answers.
    NonForwarding,
}

/// How to forward one request.
#[derive(Clone, Debug)]
pub struct Forward<'r> {
    /// The cluster picked.
    pub cluster: &'r str,
    /// Route timeout for the whole exchange including retries; `None` = none.
    pub timeout: Option<Duration>,
    /// Retry policy, if any.
    pub retry: Option<&'r RetryPolicy>,
    /// The rewritten `:path` (query kept), or `None` to keep the request's.
    pub path_and_query: Option<String>,
    /// The rewritten `:authority`, or `None` to keep the request's.
    pub authority: Option<&'r str>,
    /// Clusters that get a shadow copy of this request.
    pub mirrors: Vec<&'r str>,
    /// Consistent-hash inputs for the load balancer.
    pub hash_policy: &'r [HashPolicy],
    /// Request header mutations: the destination's, then the route's.
    pub request_headers: HeaderPlan<'r>,
    /// Response header mutations: the destination's, then the route's.
    pub response_headers: HeaderPlan<'r>,
}

// === impl Route ===

impl Route {
    /// Decides what happens to `request`, which matched this route.
    pub fn decide(&self, request: &RequestHead<'_>, rng: &mut impl RandomSource) -> Decision<'_> {
        let mut flags = ResponseFlags::NONE;
        let response_headers = HeaderPlan {
            destination: None,
            route: Some(&self.response_headers),
        };

        // 1. The weighted cluster, resolved with the route.
        let picked = match &self.action {
            Action::Route(action) => Some(action.cluster.pick(rng)),
            _ => None,
        };

        // 2. Faults.
        let fault = self
            .fault
            .as_ref()
            .map(|fault| fault.decide(rng))
            .unwrap_or_default();
        let FaultDecision { delay, abort } = fault;
        if delay.is_some() {
            flags.insert(ResponseFlag::DelayInjected);
        }
        if let Some(status) = abort {
            flags.insert(ResponseFlag::FaultInjected);
            return Decision {
                delay,
                flags,
                verdict: Verdict::Abort { status },
            };
        }

        let verdict = match (&self.action, picked) {
            (Action::Route(action), Some(Some(picked))) => {
                // 3. Mirrors.
                let mirrors = action
                    .mirrors
                    .iter()
                    .filter(|mirror| chance(mirror.percent, rng))
                    .map(|mirror| mirror.cluster.as_str())
                    .collect();
                let destination = picked.destination;
                Verdict::Forward(Forward {
                    cluster: picked.name,
                    timeout: action.timeout,
                    retry: action.retry.as_ref(),
                    path_and_query: self.rewritten_path(action, request),
                    authority: action.host_rewrite.as_deref().or_else(|| {
                        destination.and_then(|cluster| cluster.host_rewrite.as_deref())
                    }),
                    mirrors,
                    hash_policy: &action.hash_policy,
                    request_headers: HeaderPlan {
                        destination: destination.map(|cluster| &cluster.request_headers),
                        route: Some(&self.request_headers),
                    },
                    response_headers: HeaderPlan {
                        destination: destination.map(|cluster| &cluster.response_headers),
                        route: Some(&self.response_headers),
                    },
                })
            }
            (Action::Route(_), _) => {
                // Weighted clusters with no weight: Envoy's "cluster not found"
                // answer (validation rejects such routes before they get here).
                flags.insert(ResponseFlag::NoClusterFound);
                Verdict::Respond {
                    status: 503,
                    body: "",
                    response_headers,
                }
            }
            (Action::Redirect(redirect), _) => Verdict::Redirect {
                status: redirect.response_code,
                location: redirect.location(request, &self.matcher.path),
                response_headers,
            },
            (Action::Direct { status, body }, _) => Verdict::Respond {
                status: *status,
                body,
                response_headers,
            },
            (Action::NonForwarding, _) => Verdict::NonForwarding,
        };
        Decision {
            delay,
            flags,
            verdict,
        }
    }

    fn rewritten_path(&self, action: &RouteAction, request: &RequestHead<'_>) -> Option<String> {
        let rewrite = action.rewrite.as_ref()?;
        Some(rewrite.apply(request, &self.matcher.path))
    }
}

#[cfg(test)]
mod tests;
