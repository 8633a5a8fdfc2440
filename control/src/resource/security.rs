//! `security.istio.io` (v1, v1beta1): PeerAuthentication, AuthorizationPolicy and
//! RequestAuthentication, plus `istio.type.v1beta1` selectors they share.
//!
//! Field names follow `istio/api` `security/v1beta1/*.proto` and
//! `type/v1beta1/selector.proto` in their JSON form.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::duration::Duration;
use super::is_false;
use super::meta::Object;

/// A PeerAuthentication.
pub type PeerAuthentication = Object<PeerAuthenticationSpec>;
/// An AuthorizationPolicy.
pub type AuthorizationPolicy = Object<AuthorizationPolicySpec>;
/// A RequestAuthentication.
pub type RequestAuthentication = Object<RequestAuthenticationSpec>;

/// `istio.type.v1beta1.WorkloadSelector`: workloads by `matchLabels`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct WorkloadSelector {
    /// All of these labels must match.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
}

/// `istio.type.v1beta1.PolicyTargetReference` (Gateway API attachment). Accepted so
/// that `validate` can say precisely that meshlab does not support it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyTargetReference {
    /// API group of the target.
    #[serde(default)]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Kind of the target; required.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Name of the target; required.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Must not be set (no cross-namespace references).
    #[serde(default)]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

// ===== PeerAuthentication =====

/// `PeerAuthentication.spec`: which mTLS a workload accepts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PeerAuthenticationSpec {
    /// Which workloads; the namespace (or mesh, in the root namespace) when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// The mode for all ports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtls: Option<MutualTls>,
    /// Per-port overrides, keyed by the workload (container) port.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub port_level_mtls: BTreeMap<u32, MutualTls>,
}

/// `PeerAuthentication.MutualTLS`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MutualTls {
    /// The mode; inherits from the parent policy when absent or `UNSET`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<MtlsMode>,
}

/// `MutualTLS.Mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MtlsMode {
    /// Inherit from the parent.
    Unset,
    /// Plain text only.
    Disable,
    /// Plain text and mTLS.
    Permissive,
    /// mTLS only.
    Strict,
}

// ===== AuthorizationPolicy =====

/// `AuthorizationPolicy.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AuthorizationPolicySpec {
    /// Which workloads; the namespace (or mesh) when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// Gateway API attachment; rejected by `validate` (unsupported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<PolicyTargetReference>,
    /// Gateway API attachments; rejected by `validate` (unsupported).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub target_refs: Vec<PolicyTargetReference>,
    /// Rules, OR-ed. An ALLOW policy with none matches nothing (deny all).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// `ALLOW` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// The external authorizer of a `CUSTOM` policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<ExtensionProvider>,
}

/// `AuthorizationPolicy.Action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    /// Allow matching requests.
    Allow,
    /// Deny matching requests.
    Deny,
    /// Audit matching requests.
    Audit,
    /// Delegate to an external authorizer.
    Custom,
}

/// `AuthorizationPolicy.ExtensionProvider`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ExtensionProvider {
    /// The provider's name in mesh config.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// `Rule`: from AND to AND when.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Rule {
    /// Sources, OR-ed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<RuleFrom>,
    /// Operations, OR-ed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<RuleTo>,
    /// Extra conditions, AND-ed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<Condition>,
}

/// `Rule.From`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RuleFrom {
    /// The source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

/// `Rule.To`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RuleTo {
    /// The operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
}

/// `Source`: who is calling. Fields are AND-ed, values within a field OR-ed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Source {
    /// Peer identities (`cluster.local/ns/default/sa/bookinfo-productpage`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<String>,
    /// Negated `principals`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_principals: Vec<String>,
    /// JWT `iss/sub` pairs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_principals: Vec<String>,
    /// Negated `requestPrincipals`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_request_principals: Vec<String>,
    /// Peer namespaces.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Negated `namespaces`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_namespaces: Vec<String>,
    /// Peer service accounts (`ns/name`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service_accounts: Vec<String>,
    /// Negated `serviceAccounts`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_service_accounts: Vec<String>,
    /// Peer IPs or CIDRs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ip_blocks: Vec<String>,
    /// Negated `ipBlocks`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_ip_blocks: Vec<String>,
    /// Original client IPs (X-Forwarded-For) or CIDRs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote_ip_blocks: Vec<String>,
    /// Negated `remoteIpBlocks`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_remote_ip_blocks: Vec<String>,
    /// Peer trust domains.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trust_domains: Vec<String>,
    /// Negated `trustDomains`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_trust_domains: Vec<String>,
}

/// `Operation`: what is being called.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Operation {
    /// Hosts (authority).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Negated `hosts`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_hosts: Vec<String>,
    /// Ports, as strings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// Negated `ports`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_ports: Vec<String>,
    /// Methods.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Negated `methods`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_methods: Vec<String>,
    /// Paths (exact, `prefix*`, `*suffix`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Negated `paths`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_paths: Vec<String>,
}

/// `Condition`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Condition {
    /// The attribute (`request.headers[x]`, `source.ip`, …); required.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// Accepted values.
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Rejected values.
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_values: Vec<String>,
}

// ===== RequestAuthentication =====

/// `RequestAuthentication.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RequestAuthenticationSpec {
    /// Which workloads; the namespace (or mesh) when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// Gateway API attachment; rejected by `validate` (unsupported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<PolicyTargetReference>,
    /// Gateway API attachments; rejected by `validate` (unsupported).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub target_refs: Vec<PolicyTargetReference>,
    /// Accepted JWT issuers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub jwt_rules: Vec<JwtRule>,
}

/// `JWTRule`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct JwtRule {
    /// The `iss` claim.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub issuer: String,
    /// Accepted `aud` values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// Where to fetch the keys.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub jwks_uri: String,
    /// Or the keys inline (JSON Web Key Set).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub jwks: String,
    /// Headers carrying the token; `Authorization: Bearer` when absent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_headers: Vec<JwtHeader>,
    /// Query parameters carrying the token.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_params: Vec<String>,
    /// Put the verified payload (base64) in this header.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub output_payload_to_header: String,
    /// Cookies carrying the token.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_cookies: Vec<String>,
    /// Keep the token in the forwarded request.
    #[serde(skip_serializing_if = "is_false")]
    pub forward_original_token: bool,
    /// Copy claims into headers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output_claim_to_headers: Vec<ClaimToHeader>,
    /// Timeout for fetching the keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Claims whose string values are space-delimited lists.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub space_delimited_claims: Vec<String>,
}

/// `JWTHeader`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtHeader {
    /// Header name; required.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Prefix before the token (`Bearer `).
    #[serde(default)]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub prefix: String,
}

/// `ClaimToHeader`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimToHeader {
    /// Header name; required.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub header: String,
    /// Claim name; required.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub claim: String,
}
