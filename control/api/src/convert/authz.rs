//! Request authentication and authorization (`rbac.proto`), carried on inbound and
//! gateway connection managers and inbound TCP proxies.

use meshlab_proxy_config::authz::{
    Action, Authorization, ClaimToHeader, Condition, JwtHeader, JwtProvider, Operation, Policy,
    Rule, Source,
};

use super::{At, Invalid, each, known, to_u16};
use crate::v1::{self, rbac_policy};

pub(super) fn to_wire(authorization: Authorization) -> v1::Authorization {
    v1::Authorization {
        jwt_providers: authorization
            .jwt_providers
            .into_iter()
            .map(|p| v1::JwtProvider {
                name: p.name,
                issuer: p.issuer,
                audiences: p.audiences,
                jwks: p.jwks,
                from_headers: p
                    .from_headers
                    .into_iter()
                    .map(|h| v1::JwtHeader {
                        name: h.name,
                        value_prefix: h.value_prefix,
                    })
                    .collect(),
                from_params: p.from_params,
                forward: p.forward,
                forward_payload_header: p.forward_payload_header,
                claim_to_headers: p
                    .claim_to_headers
                    .into_iter()
                    .map(|c| v1::ClaimToHeader {
                        header: c.header,
                        claim: c.claim,
                    })
                    .collect(),
            })
            .collect(),
        policies: authorization
            .policies
            .into_iter()
            .map(|p| v1::RbacPolicy {
                name: p.name,
                action: match p.action {
                    Action::Allow => rbac_policy::Action::Allow,
                    Action::Deny => rbac_policy::Action::Deny,
                    Action::Audit => rbac_policy::Action::Audit,
                }
                .into(),
                rules: p.rules.into_iter().map(rule_to_wire).collect(),
            })
            .collect(),
    }
}

fn rule_to_wire(rule: Rule) -> v1::RbacRule {
    v1::RbacRule {
        from: rule
            .from
            .into_iter()
            .map(|s| v1::RbacSource {
                principals: s.principals,
                not_principals: s.not_principals,
                request_principals: s.request_principals,
                not_request_principals: s.not_request_principals,
                namespaces: s.namespaces,
                not_namespaces: s.not_namespaces,
                ip_blocks: s.ip_blocks,
                not_ip_blocks: s.not_ip_blocks,
                remote_ip_blocks: s.remote_ip_blocks,
                not_remote_ip_blocks: s.not_remote_ip_blocks,
            })
            .collect(),
        to: rule
            .to
            .into_iter()
            .map(|o| v1::RbacOperation {
                hosts: o.hosts,
                not_hosts: o.not_hosts,
                ports: o.ports.into_iter().map(u32::from).collect(),
                not_ports: o.not_ports.into_iter().map(u32::from).collect(),
                methods: o.methods,
                not_methods: o.not_methods,
                paths: o.paths,
                not_paths: o.not_paths,
            })
            .collect(),
        when: rule
            .when
            .into_iter()
            .map(|c| v1::RbacCondition {
                key: c.key,
                values: c.values,
                not_values: c.not_values,
            })
            .collect(),
    }
}

pub(super) fn from_wire(message: v1::Authorization) -> Result<Authorization, Invalid> {
    Ok(Authorization {
        jwt_providers: each(message.jwt_providers, "jwt_providers", |p| {
            Ok(JwtProvider {
                name: p.name,
                issuer: p.issuer,
                audiences: p.audiences,
                jwks: p.jwks,
                from_headers: each(p.from_headers, "from_headers", |h| {
                    if h.name.is_empty() {
                        return Err(Invalid::missing("name"));
                    }
                    Ok(JwtHeader {
                        name: h.name,
                        value_prefix: h.value_prefix,
                    })
                })?,
                from_params: p.from_params,
                forward: p.forward,
                forward_payload_header: p.forward_payload_header,
                claim_to_headers: each(p.claim_to_headers, "claim_to_headers", |c| {
                    if c.header.is_empty() || c.claim.is_empty() {
                        return Err(Invalid::new("header and claim must not be empty"));
                    }
                    Ok(ClaimToHeader {
                        header: c.header,
                        claim: c.claim,
                    })
                })?,
            })
        })?,
        policies: each(message.policies, "policies", |p| {
            let action = match known(p.action, "action")? {
                rbac_policy::Action::Unspecified => return Err(Invalid::missing("action")),
                rbac_policy::Action::Allow => Action::Allow,
                rbac_policy::Action::Deny => Action::Deny,
                rbac_policy::Action::Audit => Action::Audit,
            };
            Ok(Policy {
                name: p.name,
                action,
                rules: each(p.rules, "rules", rule_from_wire)?,
            })
        })?,
    })
}

fn rule_from_wire(rule: v1::RbacRule) -> Result<Rule, Invalid> {
    Ok(Rule {
        from: rule
            .from
            .into_iter()
            .map(|s| Source {
                principals: s.principals,
                not_principals: s.not_principals,
                request_principals: s.request_principals,
                not_request_principals: s.not_request_principals,
                namespaces: s.namespaces,
                not_namespaces: s.not_namespaces,
                ip_blocks: s.ip_blocks,
                not_ip_blocks: s.not_ip_blocks,
                remote_ip_blocks: s.remote_ip_blocks,
                not_remote_ip_blocks: s.not_remote_ip_blocks,
            })
            .collect(),
        to: each(rule.to, "to", |o| {
            let ports = |ports: Vec<u32>, field| {
                ports
                    .into_iter()
                    .map(|p| to_u16(p, field))
                    .collect::<Result<Vec<u16>, Invalid>>()
            };
            Ok(Operation {
                hosts: o.hosts,
                not_hosts: o.not_hosts,
                ports: ports(o.ports, "ports")?,
                not_ports: ports(o.not_ports, "not_ports")?,
                methods: o.methods,
                not_methods: o.not_methods,
                paths: o.paths,
                not_paths: o.not_paths,
            })
        })?,
        when: each(rule.when, "when", |c| {
            if !meshlab_proxy_config::authz::known_condition_key(&c.key) {
                return Err(Invalid::new(format!("unknown attribute {:?}", c.key)).at("key"));
            }
            Ok(Condition {
                key: c.key,
                values: c.values,
                not_values: c.not_values,
            })
        })?,
    })
}

/// An optional authorization on a connection manager or TCP proxy.
pub(super) fn option_from_wire(
    message: Option<v1::Authorization>,
) -> Result<Option<Authorization>, Invalid> {
    message.map(from_wire).transpose().at("authorization")
}
