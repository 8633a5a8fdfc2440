//! The engine as a table of requests and decisions, in the vocabulary of Istio's
//! AuthorizationPolicy.

use std::net::SocketAddr;

use http::{HeaderMap, HeaderValue};
use meshlab_proxy_config::authz::{
    Action, Authorization, Condition, Operation, Policy, Rule, Source,
};
use serde_json::json;

use super::*;
use crate::jwt::Verified;

const PRODUCTPAGE: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage";

fn policy(name: &str, action: Action, rules: Vec<Rule>) -> Policy {
    Policy {
        name: format!("ns[default]-policy[{name}]"),
        action,
        rules,
    }
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

fn from(source: Source) -> Rule {
    Rule {
        from: vec![source],
        ..Rule::default()
    }
}

fn to(operation: Operation) -> Rule {
    Rule {
        to: vec![operation],
        ..Rule::default()
    }
}

fn when(key: &str, values: &[&str], not_values: &[&str]) -> Rule {
    Rule {
        when: vec![Condition {
            key: key.to_owned(),
            values: strings(values),
            not_values: strings(not_values),
        }],
        ..Rule::default()
    }
}

/// One request to evaluate.
struct Call {
    method: &'static str,
    host: &'static str,
    path: &'static str,
    headers: HeaderMap,
    principal: Option<&'static str>,
    source: SocketAddr,
    destination: SocketAddr,
    sni: Option<&'static str>,
    jwt: Option<Verified>,
}

fn get(path: &'static str) -> Call {
    Call {
        method: "GET",
        host: "productpage:9080",
        path,
        headers: HeaderMap::new(),
        principal: None,
        source: "10.0.0.9:40000".parse().unwrap(),
        destination: "10.0.0.2:9080".parse().unwrap(),
        sni: None,
        jwt: None,
    }
}

impl Call {
    fn decide(&self, authorization: &Authorization) -> Decision {
        let connection = Connection {
            peer_principal: self.principal,
            source: self.source,
            destination: self.destination,
            sni: self.sni,
        };
        let request = Request {
            method: self.method,
            host: self.host,
            path: self.path,
            headers: &self.headers,
            jwt: self.jwt.as_ref(),
        };
        evaluate(authorization, &connection, Some(&request))
    }

    fn allowed(&self, policies: &[Policy]) -> bool {
        let authorization = Authorization {
            jwt_providers: Vec::new(),
            policies: policies.to_vec(),
        };
        self.decide(&authorization) == Decision::Allow
    }

    fn tcp_allowed(&self, policies: &[Policy]) -> bool {
        let authorization = Authorization {
            jwt_providers: Vec::new(),
            policies: policies.to_vec(),
        };
        let connection = Connection {
            peer_principal: self.principal,
            source: self.source,
            destination: self.destination,
            sni: self.sni,
        };
        evaluate(&authorization, &connection, None) == Decision::Allow
    }

    fn with_principal(mut self, principal: &'static str) -> Self {
        self.principal = Some(principal);
        self
    }

    fn with_method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }

    fn with_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.append(name, HeaderValue::from_static(value));
        self
    }

    fn with_jwt(mut self, iss_sub: &str, claims: Value) -> Self {
        self.jwt = Some(Verified {
            principal: iss_sub.to_owned(),
            claims,
            payload_b64: String::new(),
            provider: 0,
        });
        self
    }
}

#[test]
fn no_policy_allows_and_allow_nothing_denies() {
    assert!(get("/productpage").allowed(&[]));
    let allow_nothing = policy("allow-nothing", Action::Allow, Vec::new());
    let authorization = Authorization {
        jwt_providers: Vec::new(),
        policies: vec![allow_nothing.clone()],
    };
    let decision = get("/productpage").decide(&authorization);
    assert_eq!(
        decision.details().as_deref(),
        Some("rbac_access_denied_matched_policy[none]")
    );
    // productpage-viewer: GET from anyone, next to allow-nothing.
    let viewer = policy(
        "productpage-viewer",
        Action::Allow,
        vec![to(Operation {
            methods: strings(&["GET"]),
            ..Operation::default()
        })],
    );
    let both = [allow_nothing, viewer];
    assert!(get("/productpage").allowed(&both));
    assert!(!get("/productpage").with_method("POST").allowed(&both));
}

#[test]
fn deny_wins_and_audit_changes_nothing() {
    let deny_get = policy(
        "deny-get",
        Action::Deny,
        vec![to(Operation {
            methods: strings(&["GET"]),
            ..Operation::default()
        })],
    );
    let allow_all = policy("allow-all", Action::Allow, vec![Rule::default()]);
    let audit_all = policy("audit", Action::Audit, vec![Rule::default()]);
    let authorization = Authorization {
        jwt_providers: Vec::new(),
        policies: vec![allow_all.clone(), deny_get.clone()],
    };
    assert_eq!(
        get("/").decide(&authorization).details().as_deref(),
        Some("rbac_access_denied_matched_policy[ns[default]-policy[deny-get]-rule[0]]")
    );
    assert!(get("/").with_method("PUT").allowed(&[allow_all, deny_get]));
    assert!(get("/").allowed(std::slice::from_ref(&audit_all)));
    let allow_put = policy(
        "allow-put",
        Action::Allow,
        vec![to(Operation {
            methods: strings(&["PUT"]),
            ..Operation::default()
        })],
    );
    assert!(!get("/").allowed(&[audit_all, allow_put]));
}

#[test]
fn principals_namespaces_need_a_peer_identity() {
    let from_productpage = policy(
        "details-viewer",
        Action::Allow,
        vec![from(Source {
            principals: strings(&["cluster.local/ns/default/sa/bookinfo-productpage"]),
            ..Source::default()
        })],
    );
    assert!(!get("/details/0").allowed(std::slice::from_ref(&from_productpage)));
    assert!(
        get("/details/0")
            .with_principal(PRODUCTPAGE)
            .allowed(std::slice::from_ref(&from_productpage))
    );
    assert!(
        !get("/details/0")
            .with_principal("spiffe://cluster.local/ns/default/sa/sleep")
            .allowed(std::slice::from_ref(&from_productpage))
    );
    let cases = [
        (strings(&["default"]), Vec::new(), Some(PRODUCTPAGE), true),
        (strings(&["default"]), Vec::new(), None, false),
        (strings(&["def*"]), Vec::new(), Some(PRODUCTPAGE), true),
        (strings(&["foo"]), Vec::new(), Some(PRODUCTPAGE), false),
        (Vec::new(), strings(&["default"]), Some(PRODUCTPAGE), false),
        // Envoy: not(principal in ns foo) holds when there is no principal at all.
        (Vec::new(), strings(&["foo"]), None, true),
    ];
    for (namespaces, not_namespaces, principal, want) in cases {
        let p = policy(
            "ns",
            Action::Allow,
            vec![from(Source {
                namespaces: namespaces.clone(),
                not_namespaces: not_namespaces.clone(),
                ..Source::default()
            })],
        );
        let mut call = get("/");
        call.principal = principal;
        assert_eq!(
            call.allowed(&[p]),
            want,
            "{namespaces:?} {not_namespaces:?} {principal:?}"
        );
    }
    // `principals: ["*"]`: any authenticated peer.
    let any_peer = policy(
        "any",
        Action::Allow,
        vec![from(Source {
            principals: strings(&["*"]),
            ..Source::default()
        })],
    );
    assert!(!get("/").allowed(std::slice::from_ref(&any_peer)));
    assert!(get("/").with_principal(PRODUCTPAGE).allowed(&[any_peer]));
}

#[test]
fn paths_hosts_ports_and_methods_use_istios_wildcards() {
    let cases: &[(&[&str], &str, bool)] = &[
        (&["/headers"], "/headers", true),
        (&["/headers"], "/headers?x=1", true),
        (&["/headers"], "/headers/x", false),
        (&["/api/*"], "/api/v1/x", true),
        (&["/api/*"], "/apiv1", false),
        (&["*/info"], "/a/b/info", true),
        (&["*/info"], "/a/b/infos", false),
        (&["*"], "/anything", true),
    ];
    for (paths, path, want) in cases {
        let p = policy(
            "paths",
            Action::Allow,
            vec![to(Operation {
                paths: strings(paths),
                ..Operation::default()
            })],
        );
        let mut call = get("/");
        call.path = path;
        assert_eq!(call.allowed(&[p]), *want, "{paths:?} {path}");
    }
    let not_paths = policy(
        "not-paths",
        Action::Allow,
        vec![to(Operation {
            not_paths: strings(&["/admin*"]),
            ..Operation::default()
        })],
    );
    assert!(get("/ok").allowed(std::slice::from_ref(&not_paths)));
    assert!(!get("/admin/x").allowed(&[not_paths]));

    let hosts = policy(
        "hosts",
        Action::Allow,
        vec![to(Operation {
            hosts: strings(&["ProductPage", "*.example.com"]),
            ports: vec![9080],
            ..Operation::default()
        })],
    );
    assert!(
        get("/").allowed(std::slice::from_ref(&hosts)),
        "port ignored, case-insensitive"
    );
    let mut call = get("/");
    call.host = "www.example.com";
    assert!(call.allowed(std::slice::from_ref(&hosts)));
    call.host = "example.org";
    assert!(!call.allowed(std::slice::from_ref(&hosts)));
    let mut other_port = get("/");
    other_port.destination = "10.0.0.2:9081".parse().unwrap();
    assert!(!other_port.allowed(&[hosts]));

    let not_methods = policy(
        "not-methods",
        Action::Deny,
        vec![to(Operation {
            not_methods: strings(&["GET", "HEAD"]),
            ..Operation::default()
        })],
    );
    assert!(get("/").allowed(std::slice::from_ref(&not_methods)));
    assert!(!get("/").with_method("DELETE").allowed(&[not_methods]));
}

#[test]
fn ip_blocks_match_cidrs() {
    let cases: &[(&str, &str, bool)] = &[
        ("10.0.0.9", "10.0.0.9:1", true),
        ("10.0.0.0/24", "10.0.0.9:1", true),
        ("10.0.1.0/24", "10.0.0.9:1", false),
        ("0.0.0.0/0", "192.168.1.1:1", true),
        ("10.0.0.0/33", "10.0.0.9:1", false),
        ("2001:db8::/32", "[2001:db8::1]:1", true),
        ("10.0.0.0/8", "[::ffff:10.1.2.3]:1", true),
        ("not-an-ip", "10.0.0.9:1", false),
    ];
    for (block, source, want) in cases {
        let p = policy(
            "ips",
            Action::Allow,
            vec![from(Source {
                ip_blocks: strings(&[block]),
                ..Source::default()
            })],
        );
        let mut call = get("/");
        call.source = source.parse().unwrap();
        assert_eq!(
            call.allowed(std::slice::from_ref(&p)),
            *want,
            "{block} {source}"
        );
        let remote = policy(
            "remote",
            Action::Allow,
            vec![from(Source {
                remote_ip_blocks: strings(&[block]),
                ..Source::default()
            })],
        );
        assert_eq!(call.allowed(&[remote]), *want, "remote {block} {source}");
    }
    let not_blocks = policy(
        "not",
        Action::Deny,
        vec![from(Source {
            not_ip_blocks: strings(&["10.0.0.0/8"]),
            ..Source::default()
        })],
    );
    assert!(get("/").allowed(std::slice::from_ref(&not_blocks)));
    let mut outsider = get("/");
    outsider.source = "172.17.0.1:5".parse().unwrap();
    assert!(!outsider.allowed(&[not_blocks]));
}

#[test]
fn request_principals_and_claims_come_from_the_jwt() {
    let require_jwt = policy(
        "frontend-ingress",
        Action::Deny,
        vec![from(Source {
            not_request_principals: strings(&["*"]),
            ..Source::default()
        })],
    );
    assert!(!get("/headers").allowed(std::slice::from_ref(&require_jwt)));
    let with_token = get("/headers").with_jwt(
        "testing@secure.istio.io/testing@secure.istio.io",
        json!({"iss": "testing@secure.istio.io", "groups": ["group1", "group2"],
               "nested": {"key": "value"}, "aud": "app", "azp": "web"}),
    );
    assert!(with_token.allowed(std::slice::from_ref(&require_jwt)));

    let cases: &[(&str, &[&str], &[&str], bool)] = &[
        ("request.auth.claims[groups]", &["group1"], &[], true),
        ("request.auth.claims[groups]", &["group3"], &[], false),
        ("request.auth.claims[groups]", &[], &["group2"], false),
        ("request.auth.claims[nested][key]", &["value"], &[], true),
        ("request.auth.claims[nested][other]", &["value"], &[], false),
        ("request.auth.claims[iss]", &["testing@*"], &[], true),
        (
            "request.auth.principal",
            &["testing@secure.istio.io/*"],
            &[],
            true,
        ),
        ("request.auth.audiences", &["app"], &[], true),
        ("request.auth.presenter", &["web"], &[], true),
        ("request.headers[x-token]", &["admin"], &[], false),
        ("source.ip", &["10.0.0.0/24"], &[], true),
        ("remote.ip", &["10.0.0.9"], &[], true),
        ("destination.ip", &["10.0.0.2"], &[], true),
        ("destination.port", &["9080"], &[], true),
        ("destination.port", &["80"], &[], false),
        ("connection.sni", &["*"], &[], false),
        ("source.namespace", &["default"], &[], false),
    ];
    for (key, values, not_values, want) in cases {
        let p = policy("when", Action::Allow, vec![when(key, values, not_values)]);
        assert_eq!(
            with_token.allowed(&[p]),
            *want,
            "{key} {values:?} {not_values:?}"
        );
    }
    let header = policy(
        "header",
        Action::Allow,
        vec![when("request.headers[x-token]", &["adm*"], &[])],
    );
    assert!(
        get("/")
            .with_header("x-token", "admin")
            .allowed(std::slice::from_ref(&header))
    );
    assert!(!get("/").with_header("x-token", "guest").allowed(&[header]));
    let peer = policy(
        "peer",
        Action::Allow,
        vec![when(
            "source.principal",
            &["cluster.local/ns/default/*"],
            &[],
        )],
    );
    assert!(get("/").with_principal(PRODUCTPAGE).allowed(&[peer]));
}

#[test]
fn tcp_drops_http_allow_rules_and_widens_deny_rules() {
    let allow_get = policy(
        "allow-get",
        Action::Allow,
        vec![to(Operation {
            methods: strings(&["GET"]),
            ports: vec![9080],
            ..Operation::default()
        })],
    );
    assert!(get("/").allowed(std::slice::from_ref(&allow_get)));
    assert!(
        !get("/").tcp_allowed(&[allow_get]),
        "an ALLOW rule with methods never allows TCP"
    );
    let allow_port = policy(
        "allow-port",
        Action::Allow,
        vec![to(Operation {
            ports: vec![9080],
            ..Operation::default()
        })],
    );
    assert!(get("/").tcp_allowed(std::slice::from_ref(&allow_port)));
    let deny_get = policy(
        "deny-get",
        Action::Deny,
        vec![to(Operation {
            methods: strings(&["GET"]),
            ..Operation::default()
        })],
    );
    assert!(
        !get("/").tcp_allowed(std::slice::from_ref(&deny_get)),
        "HTTP fields ignored: denies all TCP"
    );
    let deny_other_port = policy(
        "deny-other-port",
        Action::Deny,
        vec![to(Operation {
            methods: strings(&["GET"]),
            ports: vec![9000],
            ..Operation::default()
        })],
    );
    assert!(get("/").tcp_allowed(&[deny_other_port, allow_port]));
}

/// Deterministic random policies and requests: evaluation never panics, and
/// the decision obeys Istio's order (a matching DENY wins; without ALLOW
/// policies nothing else denies).
#[test]
fn random_policies_never_panic() {
    let mut rng = fastrand::Rng::with_seed(7);
    let words = [
        "*",
        "GET",
        "/a/*",
        "*/b",
        "/a/b",
        "default",
        "cluster.local/ns/default/*",
        "10.0.0.0/8",
        "10.0.0.9",
        "::/0",
        "bad/99",
        "",
        "[",
        "request.headers[x]",
        "9080",
        "x",
        "*.*",
        "**",
    ];
    let keys = [
        "request.headers[x]",
        "source.ip",
        "remote.ip",
        "source.namespace",
        "source.principal",
        "request.auth.principal",
        "request.auth.audiences",
        "request.auth.presenter",
        "request.auth.claims[a][b]",
        "request.auth.claims[",
        "destination.ip",
        "destination.port",
        "connection.sni",
        "unknown",
    ];
    let pick = |rng: &mut fastrand::Rng| -> Vec<String> {
        (0..rng.usize(0..3))
            .map(|_| words[rng.usize(..words.len())].to_owned())
            .collect()
    };
    for _ in 0..3000 {
        let mut policies = Vec::new();
        for i in 0..rng.usize(0..4) {
            let action = [Action::Allow, Action::Deny, Action::Audit][rng.usize(..3)];
            let rules = (0..rng.usize(0..3))
                .map(|_| Rule {
                    from: (0..rng.usize(0..2))
                        .map(|_| Source {
                            principals: pick(&mut rng),
                            not_principals: pick(&mut rng),
                            request_principals: pick(&mut rng),
                            not_request_principals: pick(&mut rng),
                            namespaces: pick(&mut rng),
                            not_namespaces: pick(&mut rng),
                            ip_blocks: pick(&mut rng),
                            not_ip_blocks: pick(&mut rng),
                            remote_ip_blocks: pick(&mut rng),
                            not_remote_ip_blocks: pick(&mut rng),
                        })
                        .collect(),
                    to: (0..rng.usize(0..2))
                        .map(|_| Operation {
                            hosts: pick(&mut rng),
                            not_hosts: pick(&mut rng),
                            ports: (0..rng.usize(0..2)).map(|_| rng.u16(..)).collect(),
                            not_ports: Vec::new(),
                            methods: pick(&mut rng),
                            not_methods: pick(&mut rng),
                            paths: pick(&mut rng),
                            not_paths: pick(&mut rng),
                        })
                        .collect(),
                    when: (0..rng.usize(0..2))
                        .map(|_| Condition {
                            key: keys[rng.usize(..keys.len())].to_owned(),
                            values: pick(&mut rng),
                            not_values: pick(&mut rng),
                        })
                        .collect(),
                })
                .collect();
            policies.push(policy(&format!("p{i}"), action, rules));
        }
        let mut call = get(["/", "/a/b", "/x/b", ""][rng.usize(..4)]);
        if rng.bool() {
            call.principal = Some(PRODUCTPAGE);
        }
        if rng.bool() {
            call = call.with_jwt("iss/sub", json!({"a": {"b": ["x", 1, true]}, "aud": ["x"]}));
        }
        let http = call.allowed(&policies);
        let tcp = call.tcp_allowed(&policies);
        let has_allow = policies.iter().any(|p| p.action == Action::Allow);
        let has_deny = policies.iter().any(|p| p.action == Action::Deny);
        if !has_allow && !has_deny {
            assert!(http && tcp, "only AUDIT policies never deny");
        }
    }
}
