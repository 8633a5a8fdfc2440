//! End-user JWTs and RBAC on an inbound listener, with real sockets: Istio's
//! sample token and keys, httpbin echoing what reached it.

use meshlab_apps::internet::istio_samples::{DEMO_JWT, JWKS};
use meshlab_proxy_config::authz::{
    Action, Authorization, ClaimToHeader, JwtProvider, Operation, Policy, Rule, Source,
};
use meshlab_proxy_config::{Cluster, NetworkFilter, TcpProxy, TrafficDirection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

const CLUSTER: &str = "inbound|8080||";

fn require_token_for_headers() -> Policy {
    Policy {
        name: "ns[istio-system]-policy[frontend-ingress]".to_owned(),
        action: Action::Deny,
        rules: vec![Rule {
            from: vec![Source {
                not_request_principals: vec!["*".to_owned()],
                ..Source::default()
            }],
            to: vec![Operation {
                paths: vec!["/headers".to_owned()],
                ..Operation::default()
            }],
            when: Vec::new(),
        }],
    }
}

fn inbound(upstream: std::net::SocketAddr, authorization: Authorization) -> Config {
    let filter = match hcm(CLUSTER) {
        NetworkFilter::HttpConnectionManager(mut manager) => {
            manager.authorization = Some(authorization);
            NetworkFilter::HttpConnectionManager(manager)
        }
        NetworkFilter::TcpProxy(_) => unreachable!("hcm builds HTTP"),
    };
    Config::default()
        .listener(
            "virtualInbound",
            0,
            TrafficDirection::Inbound,
            false,
            filter,
        )
        .routes(
            CLUSTER,
            vec![vhost(
                "inbound|http|8080",
                &["*"],
                vec![route("default", "/", to(CLUSTER))],
            )],
        )
        .cluster(Cluster::new(CLUSTER), &[upstream])
}

#[tokio::test]
async fn tokens_are_checked_and_policies_decide() {
    let httpbin = httpbin().await;
    let authorization = Authorization {
        jwt_providers: vec![JwtProvider {
            name: "istio-system/jwt-example#0".to_owned(),
            issuer: "testing@secure.istio.io".to_owned(),
            jwks: JWKS.to_owned(),
            forward_payload_header: "x-jwt-payload".to_owned(),
            claim_to_headers: vec![ClaimToHeader {
                header: "x-foo".to_owned(),
                claim: "foo".to_owned(),
            }],
            ..JwtProvider::default()
        }],
        policies: vec![require_token_for_headers()],
    };
    let mut proxy = Proxy::start(inbound(httpbin, authorization)).await;
    let addr = proxy.addr("virtualInbound").await;

    let open = get(addr, "httpbin", "/ip", &[]).await;
    assert_eq!(open.status, 200, "no token, no policy on /ip");

    let denied = get(addr, "httpbin", "/headers", &[]).await;
    assert_eq!(
        (denied.status, denied.body.as_str()),
        (403, "RBAC: access denied")
    );
    let line = proxy.log_line("GET /headers").await;
    assert!(
        line.contains(" 403 - rbac_access_denied_matched_policy[ns[istio-system]-policy[frontend-ingress]-rule[0]] "),
        "{line}"
    );

    let bad = get(
        addr,
        "httpbin",
        "/headers",
        &[("authorization", "Bearer deadbeef")],
    )
    .await;
    assert_eq!(bad.status, 401);
    assert_eq!(
        bad.body,
        "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
    );
    assert_eq!(
        bad.headers["www-authenticate"],
        "Bearer realm=\"http://httpbin/headers\", error=\"invalid_token\""
    );

    let bearer = format!("Bearer {DEMO_JWT}");
    let good = get(addr, "httpbin", "/headers", &[("authorization", &bearer)]).await;
    assert_eq!(good.status, 200, "{}", good.body);
    let echoed = good.body.to_ascii_lowercase();
    assert!(
        !echoed.contains("\"authorization\""),
        "the token is removed: {echoed}"
    );
    assert!(
        echoed.contains("\"x-foo\""),
        "outputClaimToHeaders: {echoed}"
    );
    assert!(
        echoed.contains("\"x-jwt-payload\""),
        "outputPayloadToHeader: {echoed}"
    );
}

#[tokio::test]
async fn a_policy_change_applies_to_open_connections() {
    let httpbin = httpbin().await;
    let mut proxy = Proxy::start(inbound(httpbin, Authorization::default())).await;
    let mut client = Client::connect(proxy.addr("virtualInbound").await).await;
    assert_eq!(client.get("httpbin", "/ip", &[]).await.status, 200);
    let allow_nothing = Authorization {
        jwt_providers: Vec::new(),
        policies: vec![Policy {
            name: "ns[default]-policy[allow-nothing]".to_owned(),
            action: Action::Allow,
            rules: Vec::new(),
        }],
    };
    proxy.apply(inbound(httpbin, allow_nothing)).await;
    let answer = client.get("httpbin", "/ip", &[]).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (403, "RBAC: access denied")
    );
}

#[tokio::test]
async fn tcp_connections_are_closed_by_a_matching_deny() {
    let echo = echo().await;
    let tcp = |policies: Vec<Policy>| {
        Config::default()
            .listener(
                "virtualInbound",
                0,
                TrafficDirection::Inbound,
                false,
                NetworkFilter::TcpProxy(TcpProxy {
                    stat_prefix: "inbound|9000||".to_owned(),
                    cluster: "inbound|9000||".to_owned(),
                    weighted_clusters: Vec::new(),
                    authorization: Some(Authorization {
                        jwt_providers: Vec::new(),
                        policies,
                    }),
                }),
            )
            .cluster(Cluster::new("inbound|9000||"), &[echo])
    };
    // DENY with an HTTP-only field: Istio ignores the field for TCP, so it denies all.
    let deny_get = Policy {
        name: "ns[foo]-policy[deny-method-get]".to_owned(),
        action: Action::Deny,
        rules: vec![Rule {
            to: vec![Operation {
                methods: vec!["GET".to_owned()],
                ..Operation::default()
            }],
            ..Rule::default()
        }],
    };
    let mut proxy = Proxy::start(tcp(vec![deny_get])).await;
    let mut stream = TcpStream::connect(proxy.addr("virtualInbound").await)
        .await
        .unwrap();
    let _ = stream.write_all(b"port 9000").await;
    let mut buffer = Vec::new();
    let read = stream.read_to_end(&mut buffer).await;
    assert!(
        read.is_err() || buffer.is_empty(),
        "closed without an answer"
    );
    let line = proxy
        .log_line("rbac_access_denied_matched_policy[ns[foo]-policy[deny-method-get]-rule[0]]")
        .await;
    assert!(line.starts_with('['), "{line}");

    // Allowed from 127.0.0.0/8: the bytes flow.
    let allow_local = Policy {
        name: "ns[foo]-policy[allow-local]".to_owned(),
        action: Action::Allow,
        rules: vec![Rule {
            from: vec![Source {
                ip_blocks: vec!["127.0.0.0/8".to_owned()],
                ..Source::default()
            }],
            ..Rule::default()
        }],
    };
    proxy.apply(tcp(vec![allow_local])).await;
    let mut stream = TcpStream::connect(proxy.addr("virtualInbound").await)
        .await
        .unwrap();
    stream.write_all(b"hello").await.unwrap();
    let mut buffer = [0u8; 5];
    stream.read_exact(&mut buffer).await.unwrap();
    assert_eq!(&buffer, b"hello");
}
