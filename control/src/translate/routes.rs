//! VirtualService HTTP routes → route-table routes, for one proxy.
//!
//! Match conditions that select proxies rather than requests (`port`,
//! `sourceLabels`, `sourceNamespace`, `gateways`) are decided here, per proxy: a
//! match that cannot apply to this proxy is dropped, and a route with no applicable
//! match is dropped, as Istio's route generation does.

use std::collections::BTreeMap;

use http::{HeaderName, HeaderValue};
use meshlab_proxy_config::route::action::{
    ClusterSpecifier, HashPolicy, Mirror, RouteAction, WeightedCluster,
};
use meshlab_proxy_config::route::retry::IstioRetry;
use meshlab_proxy_config::route::{
    Action, Fault, FaultAbort, FaultDelay, HeaderMatch, HeaderMatcher, HeaderOps, HeaderPair,
    PathMatch, PathRewrite, Pattern, QueryMatch, QueryMatcher, Redirect, RedirectPath,
    RegexRewrite, RetryPolicy, Route, RouteMatch,
};

use super::mesh::{Mesh, fqdn};
use super::names;
use crate::resource::networking::{
    Destination, HeaderOperations, HttpMatchRequest, HttpRoute, StringMatch, VirtualService,
};

/// Who the routes are generated for.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The proxy's namespace.
    pub namespace: &'a str,
    /// The proxy's labels.
    pub labels: &'a BTreeMap<String, String>,
    /// `mesh` for sidecars, or the gateway's `namespace/name`s it serves.
    pub gateways: &'a [String],
    /// The port the route configuration serves.
    pub port: u16,
}

/// Routes of `vs` for a proxy, with `origin` `VirtualService/<ns>/<name>#<index>`.
pub fn http_routes(
    mesh: &Mesh,
    vs: &VirtualService,
    cx: Context<'_>,
    hash: &[HashPolicy],
) -> Vec<Route> {
    let vs_namespace = vs.metadata.namespace.as_deref().unwrap_or("default");
    let origin = names::origin("VirtualService", vs_namespace, &vs.metadata.name);
    vs.spec
        .http
        .iter()
        .enumerate()
        .flat_map(|(index, http)| {
            let matchers: Vec<RouteMatch> = if http.matches.is_empty() {
                vec![RouteMatch::path(PathMatch::Prefix("/".to_owned()))]
            } else {
                http.matches
                    .iter()
                    .filter(|m| applies(m, vs_namespace, cx))
                    .filter_map(request_match)
                    .collect()
            };
            let route_origin = format!("{origin}#{index}");
            matchers
                .into_iter()
                .map(move |matcher| (index, http, matcher, route_origin.clone()))
        })
        .map(|(index, http, matcher, origin)| Route {
            name: if http.name.is_empty() {
                format!("{}#{index}", vs.metadata.name)
            } else {
                http.name.clone()
            },
            matcher,
            action: action(mesh, http, vs_namespace, cx.port, hash),
            request_headers: header_ops(http.headers.as_ref().and_then(|h| h.request.as_ref())),
            response_headers: header_ops(http.headers.as_ref().and_then(|h| h.response.as_ref())),
            fault: fault(http),
            origin,
            decorator: None,
        })
        .collect()
}

/// Whether a match's proxy-selecting conditions hold for this proxy.
fn applies(m: &HttpMatchRequest, vs_namespace: &str, cx: Context<'_>) -> bool {
    let gateways_ok = if m.gateways.is_empty() {
        true
    } else {
        m.gateways.iter().any(|g| {
            cx.gateways
                .iter()
                .any(|mine| mine == g || *mine == format!("{vs_namespace}/{g}"))
        })
    };
    gateways_ok
        && m.port.is_none_or(|p| u32::from(cx.port) == p)
        && m.source_labels
            .iter()
            .all(|(k, v)| cx.labels.get(k) == Some(v))
        && (m.source_namespace.is_empty() || m.source_namespace == cx.namespace)
}

fn string_header(m: &StringMatch) -> Option<HeaderMatch> {
    Some(match m {
        StringMatch::Exact(v) => HeaderMatch::Exact(v.clone()),
        StringMatch::Prefix(v) => HeaderMatch::Prefix(v.clone()),
        StringMatch::Regex(v) => HeaderMatch::Regex(Pattern::new(v.clone()).ok()?),
        StringMatch::Present => HeaderMatch::Present(true),
    })
}

/// The request conditions of one match; `None` if a regex does not compile (the
/// store's validation rejects those, so this does not happen for applied config).
fn request_match(m: &HttpMatchRequest) -> Option<RouteMatch> {
    let path = match &m.uri {
        None | Some(StringMatch::Present) => PathMatch::Prefix("/".to_owned()),
        Some(StringMatch::Exact(v)) => PathMatch::Exact(v.clone()),
        Some(StringMatch::Prefix(v)) => PathMatch::Prefix(v.clone()),
        Some(StringMatch::Regex(v)) => PathMatch::Regex(Pattern::new(v.clone()).ok()?),
    };
    let mut headers = Vec::new();
    for (name, value) in &m.headers {
        headers.push(HeaderMatcher::new(name, string_header(value)?));
    }
    for (pseudo, value) in [
        (":method", &m.method),
        (":authority", &m.authority),
        (":scheme", &m.scheme),
    ] {
        if let Some(value) = value {
            headers.push(HeaderMatcher::new(pseudo, string_header(value)?));
        }
    }
    for (name, value) in &m.without_headers {
        headers.push(HeaderMatcher::istio_without(name, string_header(value)?));
    }
    let mut query_params = Vec::new();
    for (name, value) in &m.query_params {
        let kind = match value {
            StringMatch::Exact(v) => QueryMatch::Exact(v.clone()),
            StringMatch::Prefix(v) => QueryMatch::Prefix(v.clone()),
            StringMatch::Regex(v) => QueryMatch::Regex(Pattern::new(v.clone()).ok()?),
            StringMatch::Present => QueryMatch::Present,
        };
        query_params.push(QueryMatcher {
            name: name.clone(),
            kind,
        });
    }
    Some(RouteMatch {
        path,
        ignore_case: m.ignore_uri_case,
        headers,
        query_params,
    })
}

/// The cluster a destination names: its service's port and subset.
pub fn destination_cluster(
    mesh: &Mesh,
    destination: &Destination,
    vs_namespace: &str,
    port: u16,
) -> String {
    let host = mesh
        .resolve_host(&destination.host, vs_namespace)
        .map_or_else(
            || fqdn(&destination.host, vs_namespace),
            |s| s.hostname.clone(),
        );
    let port = destination
        .port
        .as_ref()
        .and_then(|p| u16::try_from(p.number).ok())
        .or_else(|| {
            let service = mesh.services.get(&host)?;
            match service.ports.as_slice() {
                [only] => Some(only.number),
                _ => None,
            }
        })
        .unwrap_or(port);
    names::outbound_cluster(port, &destination.subset, &host)
}

fn action(
    mesh: &Mesh,
    http: &HttpRoute,
    vs_namespace: &str,
    port: u16,
    hash: &[HashPolicy],
) -> Action {
    if let Some(redirect) = &http.redirect {
        return Action::Redirect(Redirect {
            scheme: (!redirect.scheme.is_empty()).then(|| redirect.scheme.clone()),
            host: (!redirect.authority.is_empty()).then(|| redirect.authority.clone()),
            port: redirect.port.and_then(|p| u16::try_from(p).ok()),
            path: if !redirect.uri.is_empty() {
                Some(RedirectPath::Path(redirect.uri.clone()))
            } else if !redirect.prefix_rewrite.is_empty() {
                Some(RedirectPath::Prefix(redirect.prefix_rewrite.clone()))
            } else {
                None
            },
            response_code: redirect
                .redirect_code
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(301),
        });
    }
    if let Some(direct) = &http.direct_response {
        let body = direct.body.as_ref().map(|b| match b {
            crate::resource::networking::HttpBody::String(s) => s.clone(),
            crate::resource::networking::HttpBody::Bytes(b) => b.clone(),
        });
        return Action::Direct {
            status: u16::try_from(direct.status).unwrap_or(200),
            body: body.unwrap_or_default(),
        };
    }
    let clusters: Vec<WeightedCluster> = http
        .route
        .iter()
        .map(|d| WeightedCluster {
            name: destination_cluster(mesh, &d.destination, vs_namespace, port),
            weight: u32::try_from(d.weight).unwrap_or(0),
            request_headers: header_ops(d.headers.as_ref().and_then(|h| h.request.as_ref())),
            response_headers: header_ops(d.headers.as_ref().and_then(|h| h.response.as_ref())),
            host_rewrite: None,
        })
        .collect();
    let cluster = match clusters.as_slice() {
        [single] if single.request_headers.is_empty() && single.response_headers.is_empty() => {
            ClusterSpecifier::Cluster(single.name.clone())
        }
        _ => {
            // A lone destination without weight means 100, as Istio reads it.
            let mut clusters = clusters;
            if clusters.len() == 1 && clusters[0].weight == 0 {
                clusters[0].weight = 100;
            }
            ClusterSpecifier::Weighted(clusters)
        }
    };
    let retry = match &http.retries {
        None => Some(RetryPolicy::istio_default()),
        Some(retries) => RetryPolicy::from_istio(
            &IstioRetry {
                attempts: u32::try_from(retries.attempts).unwrap_or(0),
                per_try_timeout: retries.per_try_timeout.as_ref().map(|d| d.get()),
                retry_on: &retries.retry_on,
                backoff: retries.backoff.as_ref().map(|d| d.get()),
            },
            !hash.is_empty(),
        )
        .unwrap_or_else(|_| Some(RetryPolicy::istio_default())),
    };
    let rewrite = http.rewrite.as_ref().and_then(|r| {
        if let Some(regex) = &r.uri_regex_rewrite {
            RegexRewrite::new(&regex.pattern, &regex.rewrite)
                .ok()
                .map(PathRewrite::Regex)
        } else {
            (!r.uri.is_empty()).then(|| PathRewrite::Prefix(r.uri.clone()))
        }
    });
    let mut mirrors: Vec<Mirror> = http
        .mirror
        .iter()
        .map(|m| Mirror {
            cluster: destination_cluster(mesh, m, vs_namespace, port),
            percent: http
                .mirror_percentage
                .map(|p| p.value)
                .or(http.mirror_percent.map(f64::from))
                .unwrap_or(100.0),
        })
        .collect();
    mirrors.extend(http.mirrors.iter().map(|m| Mirror {
        cluster: destination_cluster(mesh, &m.destination, vs_namespace, port),
        percent: m.percentage.map_or(100.0, |p| p.value),
    }));
    Action::Route(RouteAction {
        cluster,
        timeout: http
            .timeout
            .as_ref()
            .map(|d| d.get())
            .filter(|t| !t.is_zero()),
        retry,
        rewrite,
        host_rewrite: http
            .rewrite
            .as_ref()
            .filter(|r| !r.authority.is_empty())
            .map(|r| r.authority.clone()),
        mirrors,
        hash_policy: hash.to_vec(),
    })
}

fn fault(http: &HttpRoute) -> Option<Fault> {
    let fault = http.fault.as_ref()?;
    let percent = |percentage: Option<crate::resource::networking::Percent>,
                   legacy: Option<i32>| {
        percentage
            .map(|p| p.value)
            .or(legacy.map(f64::from))
            .unwrap_or(100.0)
    };
    let delay = fault.delay.as_ref().and_then(|d| {
        Some(FaultDelay {
            fixed: d.fixed_delay.as_ref()?.get(),
            percent: percent(d.percentage, d.percent),
        })
    });
    let abort = fault.abort.as_ref().and_then(|a| {
        Some(FaultAbort {
            http_status: u16::try_from(a.http_status?).ok()?,
            percent: percent(a.percentage, None),
        })
    });
    (delay.is_some() || abort.is_some()).then_some(Fault { delay, abort })
}

/// Header mutations; names or values HTTP cannot carry are left out (the store's
/// validation reports them).
pub fn header_ops(ops: Option<&HeaderOperations>) -> HeaderOps {
    let Some(ops) = ops else {
        return HeaderOps::default();
    };
    let pairs = |map: &BTreeMap<String, String>| -> Vec<HeaderPair> {
        map.iter()
            .filter_map(|(name, value)| {
                Some(HeaderPair {
                    name: HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).ok()?,
                    value: HeaderValue::from_str(value).ok()?,
                })
            })
            .collect()
    };
    HeaderOps {
        set: pairs(&ops.set),
        add: pairs(&ops.add),
        remove: ops
            .remove
            .iter()
            .filter_map(|n| HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()).ok())
            .collect(),
    }
}
