//! Route configurations: one message per `meshlab-proxy-route` type.

use http::HeaderName;
use meshlab_proxy_config::route::{
    Action, Backoff, ClusterSpecifier, Domain, Fault, FaultAbort, FaultDelay, HashPolicy,
    HeaderMatch, HeaderMatcher, HeaderOps, HeaderPair, Mirror, PathMatch, PathRewrite, Pattern,
    QueryMatch, QueryMatcher, Redirect, RedirectPath, RegexRewrite, RetryOn, RetryPolicy, Route,
    RouteAction, RouteConfiguration, RouteMatch, VirtualHost, WeightedCluster,
};

use super::{At, Invalid, each, fit_u16, from_millis, millis, required, to_u16};
use crate::v1::{
    self, hash_policy, header_matcher, query_parameter_matcher, redirect_action, route,
    route_action, route_match, string_matcher,
};

// === to the wire ===

pub(super) fn to_wire(config: RouteConfiguration) -> v1::RouteConfiguration {
    v1::RouteConfiguration {
        name: config.name,
        virtual_hosts: config
            .virtual_hosts
            .into_iter()
            .map(virtual_host_to_wire)
            .collect(),
        ignore_port_in_host_matching: config.ignore_port_in_host_matching,
    }
}

fn virtual_host_to_wire(host: VirtualHost) -> v1::VirtualHost {
    v1::VirtualHost {
        name: host.name,
        domains: host.domains.iter().map(Domain::to_string).collect(),
        routes: host.routes.into_iter().map(route_to_wire).collect(),
        origin: host.origin,
    }
}

fn route_to_wire(route: Route) -> v1::Route {
    let action = match route.action {
        Action::Route(action) => route::Action::Route(route_action_to_wire(action)),
        Action::Redirect(redirect) => route::Action::Redirect(redirect_to_wire(redirect)),
        Action::Direct { status, body } => {
            route::Action::DirectResponse(v1::DirectResponseAction {
                status: status.into(),
                body,
            })
        }
        Action::NonForwarding => route::Action::NonForwardingAction(v1::NonForwardingAction {}),
    };
    v1::Route {
        name: route.name,
        r#match: Some(route_match_to_wire(route.matcher)),
        action: Some(action),
        request_headers: header_ops_to_wire(route.request_headers),
        response_headers: header_ops_to_wire(route.response_headers),
        fault: route.fault.map(fault_to_wire),
        origin: route.origin,
        decorator: route.decorator.map(|operation| v1::Decorator { operation }),
    }
}

fn route_match_to_wire(matcher: RouteMatch) -> v1::RouteMatch {
    let path = match matcher.path {
        PathMatch::Prefix(prefix) => route_match::PathSpecifier::Prefix(prefix),
        PathMatch::Exact(path) => route_match::PathSpecifier::Path(path),
        PathMatch::Regex(pattern) => route_match::PathSpecifier::SafeRegex(pattern.into()),
    };
    v1::RouteMatch {
        path_specifier: Some(path),
        ignore_case: matcher.ignore_case,
        headers: matcher
            .headers
            .into_iter()
            .map(header_matcher_to_wire)
            .collect(),
        query_parameters: matcher
            .query_params
            .into_iter()
            .map(|param| {
                let kind = match param.kind {
                    QueryMatch::Present => {
                        query_parameter_matcher::QueryParameterMatchSpecifier::PresentMatch(true)
                    }
                    QueryMatch::Exact(value) => {
                        string_match(string_matcher::MatchPattern::Exact(value))
                    }
                    QueryMatch::Prefix(value) => {
                        string_match(string_matcher::MatchPattern::Prefix(value))
                    }
                    QueryMatch::Suffix(value) => {
                        string_match(string_matcher::MatchPattern::Suffix(value))
                    }
                    QueryMatch::Regex(pattern) => {
                        string_match(string_matcher::MatchPattern::SafeRegex(pattern.into()))
                    }
                };
                v1::QueryParameterMatcher {
                    name: param.name,
                    query_parameter_match_specifier: Some(kind),
                }
            })
            .collect(),
    }
}

fn string_match(
    pattern: string_matcher::MatchPattern,
) -> query_parameter_matcher::QueryParameterMatchSpecifier {
    query_parameter_matcher::QueryParameterMatchSpecifier::StringMatch(v1::StringMatcher {
        match_pattern: Some(pattern),
    })
}

fn header_matcher_to_wire(matcher: HeaderMatcher) -> v1::HeaderMatcher {
    use string_matcher::MatchPattern;
    let pattern = |pattern| {
        header_matcher::HeaderMatchSpecifier::StringMatch(v1::StringMatcher {
            match_pattern: Some(pattern),
        })
    };
    let kind = match matcher.kind {
        HeaderMatch::Present(present) => {
            header_matcher::HeaderMatchSpecifier::PresentMatch(present)
        }
        HeaderMatch::Exact(value) => pattern(MatchPattern::Exact(value)),
        HeaderMatch::Prefix(value) => pattern(MatchPattern::Prefix(value)),
        HeaderMatch::Suffix(value) => pattern(MatchPattern::Suffix(value)),
        HeaderMatch::Regex(regex) => pattern(MatchPattern::SafeRegex(regex.into())),
    };
    v1::HeaderMatcher {
        name: matcher.name,
        header_match_specifier: Some(kind),
        invert_match: matcher.invert,
        treat_missing_header_as_empty: matcher.treat_missing_as_empty,
    }
}

fn route_action_to_wire(action: RouteAction) -> v1::RouteAction {
    let cluster = match action.cluster {
        ClusterSpecifier::Cluster(name) => route_action::ClusterSpecifier::Cluster(name),
        ClusterSpecifier::Weighted(clusters) => {
            route_action::ClusterSpecifier::WeightedClusters(v1::WeightedClusters {
                clusters: clusters
                    .into_iter()
                    .map(|cluster| v1::ClusterWeight {
                        name: cluster.name,
                        weight: cluster.weight,
                        request_headers: header_ops_to_wire(cluster.request_headers),
                        response_headers: header_ops_to_wire(cluster.response_headers),
                        host_rewrite_literal: cluster.host_rewrite,
                    })
                    .collect(),
            })
        }
    };
    let rewrite = action.rewrite.map(|rewrite| match rewrite {
        PathRewrite::Prefix(prefix) => route_action::PathRewriteSpecifier::PrefixRewrite(prefix),
        PathRewrite::Regex(regex) => {
            route_action::PathRewriteSpecifier::RegexRewrite(v1::RegexMatchAndSubstitute {
                pattern: regex.pattern().to_owned(),
                substitution: regex.substitution().to_owned(),
            })
        }
    });
    v1::RouteAction {
        cluster_specifier: Some(cluster),
        timeout_ms: action.timeout.map(millis),
        retry_policy: action.retry.map(retry_to_wire),
        path_rewrite_specifier: rewrite,
        host_rewrite_literal: action.host_rewrite,
        request_mirror_policies: action
            .mirrors
            .into_iter()
            .map(|mirror| v1::RequestMirrorPolicy {
                cluster: mirror.cluster,
                percent: mirror.percent,
            })
            .collect(),
        hash_policy: action
            .hash_policy
            .into_iter()
            .map(hash_policy_to_wire)
            .collect(),
    }
}

fn hash_policy_to_wire(policy: HashPolicy) -> v1::HashPolicy {
    use hash_policy::PolicySpecifier;
    let policy = match policy {
        HashPolicy::Header { name } => {
            PolicySpecifier::Header(hash_policy::Header { header_name: name })
        }
        HashPolicy::Cookie { name, ttl, path } => PolicySpecifier::Cookie(hash_policy::Cookie {
            name,
            ttl_ms: ttl.map(millis),
            path,
        }),
        HashPolicy::SourceIp => {
            PolicySpecifier::ConnectionProperties(hash_policy::ConnectionProperties {
                source_ip: true,
            })
        }
        HashPolicy::QueryParameter { name } => {
            PolicySpecifier::QueryParameter(hash_policy::QueryParameter { name })
        }
    };
    v1::HashPolicy {
        policy_specifier: Some(policy),
    }
}

fn retry_to_wire(retry: RetryPolicy) -> v1::RetryPolicy {
    v1::RetryPolicy {
        num_retries: retry.num_retries,
        per_try_timeout_ms: retry.per_try_timeout.map(millis),
        retry_on: retry.retry_on.to_string(),
        retriable_status_codes: retry
            .retriable_status_codes
            .into_iter()
            .map(u32::from)
            .collect(),
        retriable_headers: retry
            .retriable_headers
            .into_iter()
            .map(header_matcher_to_wire)
            .collect(),
        retry_back_off: Some(v1::RetryBackOff {
            base_interval_ms: millis(retry.backoff.base),
            max_interval_ms: millis(retry.backoff.max),
        }),
        avoid_previous_hosts: retry.avoid_previous_hosts,
        host_selection_retry_max_attempts: retry.host_selection_max_attempts,
    }
}

fn redirect_to_wire(redirect: Redirect) -> v1::RedirectAction {
    v1::RedirectAction {
        scheme_redirect: redirect.scheme,
        host_redirect: redirect.host,
        port_redirect: redirect.port.map(u32::from),
        path_rewrite_specifier: redirect.path.map(|path| match path {
            RedirectPath::Path(path) => redirect_action::PathRewriteSpecifier::PathRedirect(path),
            RedirectPath::Prefix(prefix) => {
                redirect_action::PathRewriteSpecifier::PrefixRewrite(prefix)
            }
        }),
        response_code: redirect.response_code.into(),
    }
}

fn fault_to_wire(fault: Fault) -> v1::FaultInjection {
    v1::FaultInjection {
        delay: fault.delay.map(|delay| v1::FaultDelay {
            fixed_delay_ms: millis(delay.fixed),
            percent: delay.percent,
        }),
        abort: fault.abort.map(|abort| v1::FaultAbort {
            http_status: abort.http_status.into(),
            percent: abort.percent,
        }),
    }
}

/// `None` for no mutations, so the common case costs nothing on the wire.
fn header_ops_to_wire(ops: HeaderOps) -> Option<v1::HeaderOperations> {
    if ops.is_empty() {
        return None;
    }
    let pairs = |pairs: Vec<HeaderPair>| {
        pairs
            .into_iter()
            .map(|pair| v1::HeaderValue {
                key: pair.name.as_str().to_owned(),
                value: String::from_utf8_lossy(pair.value.as_bytes()).into_owned(),
            })
            .collect()
    };
    Some(v1::HeaderOperations {
        set: pairs(ops.set),
        add: pairs(ops.add),
        remove: ops
            .remove
            .iter()
            .map(|name| name.as_str().to_owned())
            .collect(),
    })
}

// === from the wire ===

pub(super) fn from_wire(message: v1::RouteConfiguration) -> Result<RouteConfiguration, Invalid> {
    Ok(RouteConfiguration {
        name: message.name,
        virtual_hosts: each(message.virtual_hosts, "virtual_hosts", |host| {
            Ok(VirtualHost {
                name: host.name,
                domains: host
                    .domains
                    .iter()
                    .map(|domain| Domain::new(domain))
                    .collect(),
                routes: each(host.routes, "routes", route_from_wire)?,
                origin: host.origin,
            })
        })?,
        ignore_port_in_host_matching: message.ignore_port_in_host_matching,
    })
}

fn route_from_wire(route: v1::Route) -> Result<Route, Invalid> {
    let matcher = route_match_from_wire(required(route.r#match, "match")?).at("match")?;
    let action = match required(route.action, "action")? {
        route::Action::Route(action) => Action::Route(route_action_from_wire(action).at("route")?),
        route::Action::Redirect(redirect) => {
            Action::Redirect(redirect_from_wire(redirect).at("redirect")?)
        }
        route::Action::DirectResponse(direct) => Action::Direct {
            status: to_u16(direct.status, "status").at("direct_response")?,
            body: direct.body,
        },
        route::Action::NonForwardingAction(v1::NonForwardingAction {}) => Action::NonForwarding,
    };
    let fault = match route.fault {
        Some(fault) => Some(fault_from_wire(fault).at("fault")?),
        None => None,
    };
    Ok(Route {
        name: route.name,
        matcher,
        action,
        request_headers: header_ops_from_wire(route.request_headers).at("request_headers")?,
        response_headers: header_ops_from_wire(route.response_headers).at("response_headers")?,
        fault,
        origin: route.origin,
        decorator: route.decorator.map(|decorator| decorator.operation),
    })
}

fn route_match_from_wire(matcher: v1::RouteMatch) -> Result<RouteMatch, Invalid> {
    let path = match matcher.path_specifier {
        Some(route_match::PathSpecifier::Prefix(prefix)) => PathMatch::Prefix(prefix),
        Some(route_match::PathSpecifier::Path(path)) => PathMatch::Exact(path),
        Some(route_match::PathSpecifier::SafeRegex(regex)) => {
            PathMatch::Regex(pattern(regex).at("safe_regex")?)
        }
        None => return Err(Invalid::missing("path_specifier")),
    };
    Ok(RouteMatch {
        path,
        ignore_case: matcher.ignore_case,
        headers: each(matcher.headers, "headers", header_matcher_from_wire)?,
        query_params: each(matcher.query_parameters, "query_parameters", |param| {
            use query_parameter_matcher::QueryParameterMatchSpecifier as Kind;
            let kind = match param.query_parameter_match_specifier {
                Some(Kind::PresentMatch(true)) => QueryMatch::Present,
                Some(Kind::PresentMatch(false)) => {
                    return Err(Invalid::new("must be true").at("present_match"));
                }
                Some(Kind::StringMatch(matcher)) => {
                    match string_matcher_from_wire(matcher).at("string_match")? {
                        StringMatch::Exact(value) => QueryMatch::Exact(value),
                        StringMatch::Prefix(value) => QueryMatch::Prefix(value),
                        StringMatch::Suffix(value) => QueryMatch::Suffix(value),
                        StringMatch::Regex(regex) => QueryMatch::Regex(regex),
                    }
                }
                None => return Err(Invalid::missing("query_parameter_match_specifier")),
            };
            Ok(QueryMatcher {
                name: param.name,
                kind,
            })
        })?,
    })
}

/// A string matcher, before it becomes a header or query match.
enum StringMatch {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Regex(Pattern),
}

fn string_matcher_from_wire(matcher: v1::StringMatcher) -> Result<StringMatch, Invalid> {
    use string_matcher::MatchPattern;
    Ok(match required(matcher.match_pattern, "match_pattern")? {
        MatchPattern::Exact(value) => StringMatch::Exact(value),
        MatchPattern::Prefix(value) => StringMatch::Prefix(value),
        MatchPattern::Suffix(value) => StringMatch::Suffix(value),
        MatchPattern::SafeRegex(regex) => StringMatch::Regex(pattern(regex).at("safe_regex")?),
    })
}

fn header_matcher_from_wire(matcher: v1::HeaderMatcher) -> Result<HeaderMatcher, Invalid> {
    use header_matcher::HeaderMatchSpecifier as Kind;
    let kind = match required(matcher.header_match_specifier, "header_match_specifier")? {
        Kind::PresentMatch(present) => HeaderMatch::Present(present),
        Kind::StringMatch(string) => match string_matcher_from_wire(string).at("string_match")? {
            StringMatch::Exact(value) => HeaderMatch::Exact(value),
            StringMatch::Prefix(value) => HeaderMatch::Prefix(value),
            StringMatch::Suffix(value) => HeaderMatch::Suffix(value),
            StringMatch::Regex(regex) => HeaderMatch::Regex(regex),
        },
    };
    Ok(HeaderMatcher {
        name: matcher.name,
        kind,
        invert: matcher.invert_match,
        treat_missing_as_empty: matcher.treat_missing_header_as_empty,
    })
}

fn route_action_from_wire(action: v1::RouteAction) -> Result<RouteAction, Invalid> {
    let cluster = match required(action.cluster_specifier, "cluster_specifier")? {
        route_action::ClusterSpecifier::Cluster(name) => ClusterSpecifier::Cluster(name),
        route_action::ClusterSpecifier::WeightedClusters(weighted) => {
            let clusters = each(weighted.clusters, "clusters", |cluster| {
                Ok(WeightedCluster {
                    name: cluster.name,
                    weight: cluster.weight,
                    request_headers: header_ops_from_wire(cluster.request_headers)
                        .at("request_headers")?,
                    response_headers: header_ops_from_wire(cluster.response_headers)
                        .at("response_headers")?,
                    host_rewrite: cluster.host_rewrite_literal,
                })
            });
            ClusterSpecifier::Weighted(clusters.at("weighted_clusters")?)
        }
    };
    let rewrite = match action.path_rewrite_specifier {
        Some(route_action::PathRewriteSpecifier::PrefixRewrite(prefix)) => {
            Some(PathRewrite::Prefix(prefix))
        }
        Some(route_action::PathRewriteSpecifier::RegexRewrite(regex)) => Some(PathRewrite::Regex(
            RegexRewrite::new(&regex.pattern, &regex.substitution)
                .map_err(|error| Invalid::new(error.to_string()).at("regex_rewrite"))?,
        )),
        None => None,
    };
    let retry = match action.retry_policy {
        Some(retry) => Some(retry_from_wire(retry).at("retry_policy")?),
        None => None,
    };
    Ok(RouteAction {
        cluster,
        timeout: action.timeout_ms.map(from_millis),
        retry,
        rewrite,
        host_rewrite: action.host_rewrite_literal,
        mirrors: action
            .request_mirror_policies
            .into_iter()
            .map(|mirror| Mirror {
                cluster: mirror.cluster,
                percent: mirror.percent,
            })
            .collect(),
        hash_policy: each(action.hash_policy, "hash_policy", hash_policy_from_wire)?,
    })
}

fn hash_policy_from_wire(policy: v1::HashPolicy) -> Result<HashPolicy, Invalid> {
    use hash_policy::PolicySpecifier;
    Ok(
        match required(policy.policy_specifier, "policy_specifier")? {
            PolicySpecifier::Header(header) => HashPolicy::Header {
                name: header.header_name,
            },
            PolicySpecifier::Cookie(cookie) => HashPolicy::Cookie {
                name: cookie.name,
                ttl: cookie.ttl_ms.map(from_millis),
                path: cookie.path,
            },
            PolicySpecifier::ConnectionProperties(properties) if properties.source_ip => {
                HashPolicy::SourceIp
            }
            PolicySpecifier::ConnectionProperties(_) => {
                return Err(Invalid::new("must be true").at("connection_properties.source_ip"));
            }
            PolicySpecifier::QueryParameter(parameter) => HashPolicy::QueryParameter {
                name: parameter.name,
            },
        },
    )
}

fn retry_from_wire(retry: v1::RetryPolicy) -> Result<RetryPolicy, Invalid> {
    let retry_on: RetryOn =
        retry
            .retry_on
            .parse()
            .map_err(|error: meshlab_proxy_config::route::InvalidRetryOn| {
                Invalid::new(error.to_string()).at("retry_on")
            })?;
    let backoff = match retry.retry_back_off {
        Some(backoff) => {
            let mut parsed = Backoff::with_base(from_millis(backoff.base_interval_ms));
            if backoff.max_interval_ms != 0 {
                parsed.max = from_millis(backoff.max_interval_ms);
            }
            parsed
        }
        None => Backoff::default(),
    };
    Ok(RetryPolicy {
        num_retries: retry.num_retries,
        per_try_timeout: retry.per_try_timeout_ms.map(from_millis),
        retry_on,
        retriable_status_codes: each(
            retry.retriable_status_codes,
            "retriable_status_codes",
            fit_u16,
        )?,
        retriable_headers: each(
            retry.retriable_headers,
            "retriable_headers",
            header_matcher_from_wire,
        )?,
        backoff,
        avoid_previous_hosts: retry.avoid_previous_hosts,
        host_selection_max_attempts: retry.host_selection_retry_max_attempts,
    })
}

fn redirect_from_wire(redirect: v1::RedirectAction) -> Result<Redirect, Invalid> {
    let response_code = match redirect.response_code {
        0 => Redirect::moved_permanently().response_code,
        code => to_u16(code, "response_code")?,
    };
    Ok(Redirect {
        scheme: redirect.scheme_redirect,
        host: redirect.host_redirect,
        port: redirect
            .port_redirect
            .map(|port| to_u16(port, "port_redirect"))
            .transpose()?,
        path: redirect.path_rewrite_specifier.map(|path| match path {
            redirect_action::PathRewriteSpecifier::PathRedirect(path) => RedirectPath::Path(path),
            redirect_action::PathRewriteSpecifier::PrefixRewrite(prefix) => {
                RedirectPath::Prefix(prefix)
            }
        }),
        response_code,
    })
}

fn fault_from_wire(fault: v1::FaultInjection) -> Result<Fault, Invalid> {
    let abort = match fault.abort {
        Some(abort) => Some(FaultAbort {
            http_status: to_u16(abort.http_status, "http_status").at("abort")?,
            percent: abort.percent,
        }),
        None => None,
    };
    Ok(Fault {
        delay: fault.delay.map(|delay| FaultDelay {
            fixed: from_millis(delay.fixed_delay_ms),
            percent: delay.percent,
        }),
        abort,
    })
}

fn header_ops_from_wire(ops: Option<v1::HeaderOperations>) -> Result<HeaderOps, Invalid> {
    let Some(ops) = ops else {
        return Ok(HeaderOps::default());
    };
    let pairs = |values: Vec<v1::HeaderValue>, field| {
        each(values, field, |header| {
            HeaderPair::new(&header.key, &header.value).ok_or_else(|| {
                Invalid::new(format!(
                    "{:?}: {:?} is not a valid HTTP header",
                    header.key, header.value
                ))
            })
        })
    };
    Ok(HeaderOps {
        set: pairs(ops.set, "set")?,
        add: pairs(ops.add, "add")?,
        remove: each(ops.remove, "remove", |name| {
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Invalid::new(format!("{name:?} is not a valid header name")))
        })?,
    })
}

fn pattern(regex: String) -> Result<Pattern, Invalid> {
    Pattern::new(regex).map_err(|error| Invalid::new(error.to_string()))
}
