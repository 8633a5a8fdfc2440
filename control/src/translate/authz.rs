//! Request authentication and authorization for one proxy: the AuthorizationPolicies
//! and RequestAuthentications that select its workload, as Istio's pilot turns them
//! into Envoy's `jwt_authn` and `rbac` filters on inbound (and gateway) listeners.
//!
//! Selection is Istio's: a policy in the root namespace (`istio-system`) without a
//! selector applies to every workload of the mesh; one in a workload's namespace
//! without a selector to every workload of that namespace; one with
//! `selector.matchLabels` to the workloads whose labels match, in its namespace — or,
//! from the root namespace, in every namespace. All that apply are combined; nothing
//! is overridden (unlike PeerAuthentication).
//!
//! What changes on the way:
//! - `serviceAccounts: ["ns/sa"]` becomes `principals: ["cluster.local/ns/ns/sa/sa"]`;
//! - `ports` become numbers (validation already checked them);
//! - a `jwtRules` entry with `jwksUri` gets the keys the control plane fetched (the
//!   [`Mesh::jwks`] map), as istiod inlines them; keys that could not be fetched
//!   become an empty key set, so every token fails verification (Istio inlines a fake
//!   key for the same effect) while requests without a token still pass.

use meshlab_proxy_config::ProxyNode;
use meshlab_proxy_config::authz::{
    Action, Authorization, ClaimToHeader, Condition, JwtHeader, JwtProvider, Operation, Policy,
    Rule, Source,
};

use super::mesh::{Mesh, ROOT_NAMESPACE};
use crate::resource::meta::ObjectMeta;
use crate::resource::security::{self, WorkloadSelector};

/// The authorization a proxy enforces on its inbound (or gateway) listeners;
/// `None` when nothing selects it.
pub fn authorization(mesh: &Mesh, node: &ProxyNode) -> Option<Authorization> {
    let mut authorization = Authorization::default();
    for policy in &mesh.authorization_policies {
        if !applies(&policy.metadata, policy.spec.selector.as_ref(), node) {
            continue;
        }
        let action = match policy.spec.action.unwrap_or(security::Action::Allow) {
            security::Action::Allow => Action::Allow,
            security::Action::Deny => Action::Deny,
            security::Action::Audit => Action::Audit,
            // Rejected at validation; a stored one (from an older meshlab) is skipped
            // rather than enforced wrongly.
            security::Action::Custom => continue,
        };
        authorization.policies.push(Policy {
            name: format!(
                "ns[{}]-policy[{}]",
                namespace(&policy.metadata),
                policy.metadata.name
            ),
            action,
            rules: policy.spec.rules.iter().map(rule).collect(),
        });
    }
    for request_authn in &mesh.request_authentications {
        let spec = &request_authn.spec;
        if !applies(&request_authn.metadata, spec.selector.as_ref(), node) {
            continue;
        }
        for (index, jwt_rule) in spec.jwt_rules.iter().enumerate() {
            authorization.jwt_providers.push(provider(
                mesh,
                &format!(
                    "{}/{}#{index}",
                    namespace(&request_authn.metadata),
                    request_authn.metadata.name
                ),
                jwt_rule,
            ));
        }
    }
    (!authorization.is_empty()).then_some(authorization)
}

fn namespace(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("default")
}

/// Whether a policy with `meta` and `selector` applies to `node`'s workload.
fn applies(meta: &ObjectMeta, selector: Option<&WorkloadSelector>, node: &ProxyNode) -> bool {
    let policy_ns = namespace(meta);
    let in_scope = policy_ns == node.namespace || policy_ns == ROOT_NAMESPACE;
    let labels_match = selector.is_none_or(|s| {
        s.match_labels
            .iter()
            .all(|(k, v)| node.labels.get(k) == Some(v))
    });
    in_scope && labels_match
}

fn rule(rule: &security::Rule) -> Rule {
    Rule {
        from: rule
            .from
            .iter()
            .filter_map(|f| f.source.as_ref())
            .map(source)
            .collect(),
        to: rule
            .to
            .iter()
            .filter_map(|t| t.operation.as_ref())
            .map(operation)
            .collect(),
        when: rule
            .when
            .iter()
            .map(|c| Condition {
                key: c.key.clone(),
                values: c.values.clone(),
                not_values: c.not_values.clone(),
            })
            .collect(),
    }
}

/// `ns/sa` as the principal Istio matches it with.
fn service_account_principal(account: &str) -> String {
    match account.split_once('/') {
        Some((ns, sa)) => format!("cluster.local/ns/{ns}/sa/{sa}"),
        None => format!("cluster.local/ns/default/sa/{account}"),
    }
}

fn source(source: &security::Source) -> Source {
    let mut principals = source.principals.clone();
    principals.extend(
        source
            .service_accounts
            .iter()
            .map(|a| service_account_principal(a)),
    );
    let mut not_principals = source.not_principals.clone();
    not_principals.extend(
        source
            .not_service_accounts
            .iter()
            .map(|a| service_account_principal(a)),
    );
    Source {
        principals,
        not_principals,
        request_principals: source.request_principals.clone(),
        not_request_principals: source.not_request_principals.clone(),
        namespaces: source.namespaces.clone(),
        not_namespaces: source.not_namespaces.clone(),
        ip_blocks: source.ip_blocks.clone(),
        not_ip_blocks: source.not_ip_blocks.clone(),
        remote_ip_blocks: source.remote_ip_blocks.clone(),
        not_remote_ip_blocks: source.not_remote_ip_blocks.clone(),
    }
}

fn operation(operation: &security::Operation) -> Operation {
    let ports = |ports: &[String]| ports.iter().filter_map(|p| p.parse().ok()).collect();
    Operation {
        hosts: operation.hosts.clone(),
        not_hosts: operation.not_hosts.clone(),
        ports: ports(&operation.ports),
        not_ports: ports(&operation.not_ports),
        methods: operation.methods.clone(),
        not_methods: operation.not_methods.clone(),
        paths: operation.paths.clone(),
        not_paths: operation.not_paths.clone(),
    }
}

fn provider(mesh: &Mesh, name: &str, rule: &security::JwtRule) -> JwtProvider {
    let jwks = if rule.jwks.is_empty() {
        match mesh.jwks.get(&rule.jwks_uri) {
            Some(Ok(keys)) => keys.clone(),
            Some(Err(_)) | None => String::new(),
        }
    } else {
        rule.jwks.clone()
    };
    JwtProvider {
        name: name.to_owned(),
        issuer: rule.issuer.clone(),
        audiences: rule.audiences.clone(),
        jwks,
        from_headers: rule
            .from_headers
            .iter()
            .map(|h| JwtHeader {
                name: h.name.clone(),
                value_prefix: h.prefix.clone(),
            })
            .collect(),
        from_params: rule.from_params.clone(),
        forward: rule.forward_original_token,
        forward_payload_header: rule.output_payload_to_header.clone(),
        claim_to_headers: rule
            .output_claim_to_headers
            .iter()
            .map(|c| ClaimToHeader {
                header: c.header.clone(),
                claim: c.claim.clone(),
            })
            .collect(),
    }
}
