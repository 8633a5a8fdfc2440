//! The authorization engine: Envoy's `rbac` filter as Istio configures it, run over
//! the AuthorizationPolicies the control plane put on a connection manager (or an
//! inbound TCP proxy).
//!
//! Decision, in Istio's order (CUSTOM never reaches a proxy: validation rejects it):
//! 1. any matching DENY policy → denied (403 `RBAC: access denied`);
//! 2. when at least one ALLOW policy applies, the request must match one, else denied
//!    (so an ALLOW policy with no rules — `spec: {}` — denies everything);
//! 3. otherwise allowed. AUDIT policies are evaluated and logged, nothing more.
//!
//! Matching, as Envoy evaluates Istio's generated principals and permissions:
//! a policy matches when one of its rules does; a rule when one of its `from`
//! sources, one of its `to` operations (empty lists match) and all its `when`
//! conditions do; inside a source or operation every field set must match (any of
//! its values) and no `not*` value may. Strings use Istio's wildcards: `*` (any
//! non-empty value), `prefix*`, `*suffix`, else exact; hosts compare
//! case-insensitively and ignore the port when the value has none.
//!
//! Identities come from mTLS: the peer principal is the SPIFFE URI of the verified
//! client certificate without `spiffe://` (`cluster.local/ns/default/sa/sleep`), and
//! `namespaces`/`source.namespace` are its `/ns/<name>/` part. Without a peer
//! identity (plain text) `principals` and `namespaces` match nothing — so their `not*`
//! forms match everything — as in Envoy. `source.ip` and `remote.ip` are both the
//! connection's peer address: meshlab's gateways trust no `X-Forwarded-For` hops
//! (Istio's default `numTrustedProxies: 0`), so the original client is the peer.
//!
//! TCP connections carry no HTTP attributes. As Istio does, an ALLOW rule that uses
//! an HTTP-only field (`requestPrincipals`, `hosts`, `methods`, `paths`, `request.*`
//! conditions) is dropped — it can never allow — while in DENY and AUDIT rules those
//! fields are ignored, so the rule denies more rather than less.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use meshlab_proxy_config::authz::{Action, Authorization, Condition, Operation, Rule, Source};
use serde_json::Value;

/// The body of a request RBAC denies (Envoy's).
pub(crate) const DENIED_BODY: &str = "RBAC: access denied";

/// What the connection says about the caller.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Connection<'a> {
    /// The verified peer SPIFFE URI (`spiffe://cluster.local/ns/…/sa/…`), mTLS only.
    pub(crate) peer_principal: Option<&'a str>,
    /// The peer's address.
    pub(crate) source: SocketAddr,
    /// The (original) destination: the workload's address and port.
    pub(crate) destination: SocketAddr,
    /// The TLS server name, when the client sent one.
    pub(crate) sni: Option<&'a str>,
}

/// What the request says, for HTTP.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Request<'a> {
    /// The method.
    pub(crate) method: &'a str,
    /// The authority (`Host`).
    pub(crate) host: &'a str,
    /// The path, with or without a query (the query is not matched).
    pub(crate) path: &'a str,
    /// The headers.
    pub(crate) headers: &'a HeaderMap,
    /// The verified JWT, when the request carried one.
    pub(crate) jwt: Option<&'a crate::jwt::Verified>,
}

/// The outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The request may pass.
    Allow,
    /// Refused; `matched` is the DENY policy's name, or `none` when no ALLOW
    /// policy matched (Envoy's `rbac_access_denied_matched_policy[…]`).
    Deny {
        /// Which policy decided.
        matched: String,
    },
}

impl Decision {
    /// Envoy's response code details for a denial.
    pub(crate) fn details(&self) -> Option<String> {
        match self {
            Decision::Allow => None,
            Decision::Deny { matched } => {
                Some(format!("rbac_access_denied_matched_policy[{matched}]"))
            }
        }
    }
}

/// Decides a request (`request` is `None` for a TCP connection).
pub(crate) fn evaluate(
    authorization: &Authorization,
    connection: &Connection<'_>,
    request: Option<&Request<'_>>,
) -> Decision {
    let cx = Context {
        connection,
        request,
    };
    for policy in &authorization.policies {
        if policy.action == Action::Audit
            && let Some(rule) = cx.matching_rule(policy.action, &policy.rules)
        {
            tracing::info!(policy = %policy.name, rule, source = %connection.source, "AUDIT: request matched an audit policy");
        }
    }
    for deny in authorization
        .policies
        .iter()
        .filter(|p| p.action == Action::Deny)
    {
        if let Some(rule) = cx.matching_rule(deny.action, &deny.rules) {
            // Istio names Envoy's policies per rule: `ns[foo]-policy[bar]-rule[0]`.
            return Decision::Deny {
                matched: format!("{}-rule[{rule}]", deny.name),
            };
        }
    }
    let mut allows = authorization
        .policies
        .iter()
        .filter(|p| p.action == Action::Allow)
        .peekable();
    if allows.peek().is_none() {
        return Decision::Allow;
    }
    if allows.any(|p| cx.matching_rule(p.action, &p.rules).is_some()) {
        Decision::Allow
    } else {
        Decision::Deny {
            matched: "none".to_owned(),
        }
    }
}

struct Context<'a> {
    connection: &'a Connection<'a>,
    request: Option<&'a Request<'a>>,
}

/// Whether a field matches: `None` when it needs HTTP and this is TCP.
type Tri = Option<bool>;

impl Context<'_> {
    /// The index of the first rule of a policy that matches.
    fn matching_rule(&self, action: Action, rules: &[Rule]) -> Option<usize> {
        rules.iter().position(|rule| {
            if self.request.is_none() && action == Action::Allow && uses_http(rule) {
                return false;
            }
            self.rule_matches(rule)
        })
    }

    fn rule_matches(&self, rule: &Rule) -> bool {
        (rule.from.is_empty() || rule.from.iter().any(|s| self.source_matches(s)))
            && (rule.to.is_empty() || rule.to.iter().any(|o| self.operation_matches(o)))
            && rule.when.iter().all(|c| self.condition_matches(c))
    }

    fn source_matches(&self, source: &Source) -> bool {
        let principal = self.principal();
        let namespace = principal.and_then(namespace_of);
        let jwt_principal = self.request.map(|r| r.jwt.map(|j| j.principal.as_str()));
        let source_ip = self.connection.source.ip();
        [
            field(&source.principals, &source.not_principals, |v| {
                Some(principal.is_some_and(|p| string_matches(v, p)))
            }),
            field(
                &source.request_principals,
                &source.not_request_principals,
                |v| jwt_principal.map(|p| p.is_some_and(|p| string_matches(v, p))),
            ),
            field(&source.namespaces, &source.not_namespaces, |v| {
                Some(namespace.is_some_and(|n| string_matches(v, n)))
            }),
            field(&source.ip_blocks, &source.not_ip_blocks, |v| {
                Some(cidr_contains(v, source_ip))
            }),
            field(
                &source.remote_ip_blocks,
                &source.not_remote_ip_blocks,
                |v| Some(cidr_contains(v, source_ip)),
            ),
        ]
        .into_iter()
        .all(|m| m != Some(false))
    }

    fn operation_matches(&self, operation: &Operation) -> bool {
        let port = self.connection.destination.port();
        let request = self.request;
        [
            field(&operation.hosts, &operation.not_hosts, |v| {
                request.map(|r| host_matches(v, r.host))
            }),
            field(&operation.ports, &operation.not_ports, |v| Some(*v == port)),
            field(&operation.methods, &operation.not_methods, |v| {
                request.map(|r| string_matches(v, r.method))
            }),
            field(&operation.paths, &operation.not_paths, |v| {
                request.map(|r| string_matches(v, r.path.split('?').next().unwrap_or("")))
            }),
        ]
        .into_iter()
        .all(|m| m != Some(false))
    }

    fn condition_matches(&self, condition: &Condition) -> bool {
        let Some(values) = self.attribute(&condition.key) else {
            // An HTTP attribute on TCP: ignored (see the module docs).
            return true;
        };
        let any = |patterns: &[String]| {
            patterns
                .iter()
                .any(|p| values.iter().any(|v| value_matches(&condition.key, p, v)))
        };
        (condition.values.is_empty() || any(&condition.values)) && !any(&condition.not_values)
    }

    /// The values of a `when` attribute; `None` for an HTTP attribute on TCP.
    fn attribute(&self, key: &str) -> Option<Vec<String>> {
        let connection = self.connection;
        let principal = self.principal();
        let values = match key {
            "source.ip" | "remote.ip" => vec![connection.source.ip().to_string()],
            "source.namespace" => principal
                .and_then(namespace_of)
                .map(str::to_owned)
                .into_iter()
                .collect(),
            "source.principal" => principal.map(str::to_owned).into_iter().collect(),
            "destination.ip" => vec![connection.destination.ip().to_string()],
            "destination.port" => vec![connection.destination.port().to_string()],
            "connection.sni" => connection.sni.map(str::to_owned).into_iter().collect(),
            _ => {
                let request = self.request?;
                let jwt = request.jwt;
                if let Some(name) = bracketed(key, "request.headers") {
                    request
                        .headers
                        .get_all(name)
                        .iter()
                        .filter_map(|v| v.to_str().ok().map(str::to_owned))
                        .collect()
                } else if key == "request.auth.principal" {
                    jwt.map(|j| j.principal.clone()).into_iter().collect()
                } else if key == "request.auth.audiences" {
                    jwt.map(|j| strings(j.claims.get("aud")))
                        .unwrap_or_default()
                } else if key == "request.auth.presenter" {
                    jwt.map(|j| strings(j.claims.get("azp")))
                        .unwrap_or_default()
                } else if let Some(path) = key.strip_prefix("request.auth.claims") {
                    jwt.map(|j| strings(claim(&j.claims, path)))
                        .unwrap_or_default()
                } else {
                    Vec::new()
                }
            }
        };
        Some(values)
    }

    /// The peer principal without `spiffe://`.
    fn principal(&self) -> Option<&str> {
        self.connection
            .peer_principal
            .map(|p| p.strip_prefix("spiffe://").unwrap_or(p))
    }
}

/// `values` OR-ed, `not_values` negated; unset fields match. `None` when the field is
/// set but cannot be evaluated here (HTTP on TCP).
fn field<T>(values: &[T], not_values: &[T], matches: impl Fn(&T) -> Tri) -> Tri {
    let mut result = Some(true);
    if !values.is_empty() {
        let mut any = Some(false);
        for value in values {
            match matches(value) {
                Some(true) => {
                    any = Some(true);
                    break;
                }
                Some(false) => {}
                None => any = None,
            }
        }
        result = any;
    }
    if result == Some(false) {
        return result;
    }
    for value in not_values {
        match matches(value) {
            Some(true) => return Some(false),
            Some(false) => {}
            None => result = result.and(None),
        }
    }
    // A field that needs HTTP on TCP is ignored: it neither matches nor fails.
    result.or(Some(true))
}

/// Whether a rule uses a field that only HTTP has.
fn uses_http(rule: &Rule) -> bool {
    rule.from
        .iter()
        .any(|s| !s.request_principals.is_empty() || !s.not_request_principals.is_empty())
        || rule.to.iter().any(|o| {
            !o.hosts.is_empty()
                || !o.not_hosts.is_empty()
                || !o.methods.is_empty()
                || !o.not_methods.is_empty()
                || !o.paths.is_empty()
                || !o.not_paths.is_empty()
        })
        || rule.when.iter().any(|c| c.key.starts_with("request."))
}

/// Istio's string match: `*` any non-empty value, `prefix*`, `*suffix`, exact.
pub(crate) fn string_matches(pattern: &str, value: &str) -> bool {
    if pattern == "*" {
        return !value.is_empty();
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        return value.ends_with(suffix);
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return value.starts_with(prefix);
    }
    pattern == value
}

/// Hosts: case-insensitive; a pattern without a port ignores the request's port.
fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    let has_port = |h: &str| {
        h.rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    };
    let host = if has_port(&pattern) || !has_port(&host) {
        host.as_str()
    } else {
        host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h)
    };
    string_matches(&pattern, host)
}

/// A `when` value against one attribute value: addresses as CIDRs, the rest as
/// strings.
fn value_matches(key: &str, pattern: &str, value: &str) -> bool {
    match key {
        "source.ip" | "remote.ip" | "destination.ip" => value
            .parse::<IpAddr>()
            .is_ok_and(|ip| cidr_contains(pattern, ip)),
        _ => string_matches(pattern, value),
    }
}

/// The namespace of `cluster.local/ns/<ns>/sa/<sa>`.
fn namespace_of(principal: &str) -> Option<&str> {
    let (_, rest) = principal.split_once("/ns/")?;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// `name` of `prefix[name]`.
fn bracketed<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    key.strip_prefix(prefix)?
        .strip_prefix('[')?
        .strip_suffix(']')
        .filter(|n| !n.is_empty())
}

/// The claim at `[a][b]…` in the payload.
fn claim<'v>(claims: &'v Value, path: &str) -> Option<&'v Value> {
    let mut current = claims;
    let mut rest = path;
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let (name, after) = inner.split_once(']')?;
        current = current.get(name)?;
        rest = after;
    }
    (!std::ptr::eq(current, claims)).then_some(current)
}

/// A claim's string values: a string, or the strings (and numbers, booleans) of an
/// array.
fn strings(value: Option<&Value>) -> Vec<String> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(one).collect(),
        Some(v) => one(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// Whether `ip` is in `block` (`10.0.0.1`, `10.0.0.0/16`, `2001:db8::/32`); a block
/// that does not parse contains nothing (validation rejects those).
pub(crate) fn cidr_contains(block: &str, ip: IpAddr) -> bool {
    let (address, len) = match block.split_once('/') {
        Some((a, l)) => match l.parse::<u32>() {
            Ok(l) => (a, Some(l)),
            Err(_) => return false,
        },
        None => (block, None),
    };
    let Ok(address) = address.parse::<IpAddr>() else {
        return false;
    };
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    };
    match (address, ip) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let len = len.unwrap_or(32);
            len <= 32 && prefix_equal(u128::from(a.to_bits()), u128::from(b.to_bits()), 32, len)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let len = len.unwrap_or(128);
            len <= 128 && prefix_equal(a.to_bits(), b.to_bits(), 128, len)
        }
        _ => false,
    }
}

fn prefix_equal(a: u128, b: u128, bits: u32, len: u32) -> bool {
    if len == 0 {
        return true;
    }
    let shift = bits - len;
    (a >> shift) == (b >> shift)
}

#[cfg(test)]
mod tests;
