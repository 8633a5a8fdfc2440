//! Request authentication and authorization of one inbound (or gateway) connection
//! manager, as pure data: what Envoy's `jwt_authn` and `rbac` HTTP filters (and the
//! `rbac` network filter on TCP chains) are configured with in Istio.
//!
//! The shape follows Istio's resources rather than Envoy's permission/principal trees:
//! a [`Policy`] is one AuthorizationPolicy with its rules as written, and a
//! [`JwtProvider`] is one `jwtRules` entry of a RequestAuthentication with its keys
//! inlined. That keeps `meshlab proxy-config` readable next to the YAML a learner
//! applied; the proxy's engine implements Envoy's semantics over it (values OR-ed,
//! fields AND-ed, `not*` negated, `*`/prefix/suffix wildcards).
//!
//! Evaluation order is Istio's: DENY policies first (any match → 403), then ALLOW
//! policies (when there is at least one, a request must match one), AUDIT only logs.
//! CUSTOM is rejected at validation, so it never reaches a proxy.

use serde::{Deserialize, Serialize};

/// Everything one connection manager (or TCP proxy) enforces.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Authorization {
    /// JWT issuers accepted (RequestAuthentication); empty = no JWT filter.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub jwt_providers: Vec<JwtProvider>,
    /// AuthorizationPolicies selecting the workload, any action.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
}

impl Authorization {
    /// Whether it enforces nothing.
    pub fn is_empty(&self) -> bool {
        self.jwt_providers.is_empty() && self.policies.is_empty()
    }
}

/// One AuthorizationPolicy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Istio's RBAC policy name without the rule: `ns[default]-policy[allow-nothing]`
    /// (a denial names the rule too: `ns[foo]-policy[deny-get]-rule[0]`).
    pub name: String,
    /// What a match does.
    pub action: Action,
    /// Rules, OR-ed; none = the policy matches nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
}

/// What a matching policy does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    /// The request may pass (when some ALLOW policy matches).
    Allow,
    /// The request is refused with 403.
    Deny,
    /// The request is logged as audited; the decision does not change.
    Audit,
}

/// `from` AND `to` AND `when`; an empty list matches anything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Rule {
    /// Sources, OR-ed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<Source>,
    /// Operations, OR-ed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<Operation>,
    /// Conditions, AND-ed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<Condition>,
}

/// Who is calling; fields AND-ed, values within one field OR-ed.
///
/// Principals are written as Istio writes them, without `spiffe://`
/// (`cluster.local/ns/default/sa/bookinfo-productpage`); Istio's `serviceAccounts`
/// arrive here already turned into principals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Source {
    /// Peer identities.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<String>,
    /// Negated `principals`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_principals: Vec<String>,
    /// JWT `iss/sub`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_principals: Vec<String>,
    /// Negated `request_principals`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_request_principals: Vec<String>,
    /// Peer namespaces (from the peer identity).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Negated `namespaces`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_namespaces: Vec<String>,
    /// Peer addresses or CIDRs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ip_blocks: Vec<String>,
    /// Negated `ip_blocks`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_ip_blocks: Vec<String>,
    /// Original client addresses or CIDRs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote_ip_blocks: Vec<String>,
    /// Negated `remote_ip_blocks`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_remote_ip_blocks: Vec<String>,
}

/// What is called; fields AND-ed, values within one field OR-ed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Operation {
    /// Hosts (the authority, case-insensitive).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Negated `hosts`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_hosts: Vec<String>,
    /// Destination ports (the workload's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
    /// Negated `ports`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_ports: Vec<u16>,
    /// Methods.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Negated `methods`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_methods: Vec<String>,
    /// Paths without the query: exact, `/a/*`, `*/b`, `*`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Negated `paths`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_paths: Vec<String>,
}

/// `when`: an attribute (`request.headers[x-token]`, `source.ip`, …) and values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Condition {
    /// The attribute.
    pub key: String,
    /// Accepted values, OR-ed; empty = any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Rejected values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_values: Vec<String>,
}

/// The attributes a `when` condition may name (Istio's list; `[…]` takes a name).
pub const CONDITION_KEYS: &[&str] = &[
    "request.headers[",
    "source.ip",
    "remote.ip",
    "source.namespace",
    "source.principal",
    "request.auth.principal",
    "request.auth.audiences",
    "request.auth.presenter",
    "request.auth.claims[",
    "destination.ip",
    "destination.port",
    "connection.sni",
];

/// Whether a `when` key is one Istio knows (and meshlab evaluates).
pub fn known_condition_key(key: &str) -> bool {
    CONDITION_KEYS.iter().any(|k| match k.strip_suffix('[') {
        Some(prefix) => key
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('['))
            .is_some_and(|rest| rest.len() > 1 && rest.ends_with(']')),
        None => key == *k,
    })
}

/// One accepted JWT issuer (Envoy's `JwtProvider`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JwtProvider {
    /// Istio's provider name: `origins-0` style, here the resource and index.
    pub name: String,
    /// The `iss` a token must carry.
    pub issuer: String,
    /// Accepted `aud` values; empty = any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// The JSON Web Key Set, inline (the control plane fetched `jwksUri`).
    pub jwks: String,
    /// Headers carrying the token; with `from_params` empty too, Envoy's default
    /// (`Authorization: Bearer …` and the `access_token` query parameter).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_headers: Vec<JwtHeader>,
    /// Query parameters carrying the token.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_params: Vec<String>,
    /// Keep the token in the forwarded request (default: remove it).
    pub forward: bool,
    /// Put the verified payload, base64url-encoded, in this header.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub forward_payload_header: String,
    /// Copy claims into request headers (`outputClaimToHeaders`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub claim_to_headers: Vec<ClaimToHeader>,
}

/// A claim copied into a request header.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClaimToHeader {
    /// The header's name.
    pub header: String,
    /// The claim; `a.b` names a nested one.
    pub claim: String,
}

/// A header carrying a token, and the prefix before it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JwtHeader {
    /// The header's name.
    pub name: String,
    /// What precedes the token (`Bearer `); empty = the whole value.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value_prefix: String,
}

#[cfg(test)]
mod tests;
