//! Metadata exchange between two sidecars: the client's sidecar tells the
//! server's who is calling, the server's reports it in its `source_*` metric labels
//! and the app never sees the headers; workloads without a sidecar get nothing.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use meshlab_proxy_config::{Cluster, ProxyKind, ProxyNode, TrafficDirection};

use crate::support::*;

const HTTPBIN: &str = "outbound|8000||httpbin.default.svc.cluster.local";

/// The server sidecar: an inbound listener in front of `app`, running as `httpbin-v1`.
async fn server(app: SocketAddr) -> Proxy {
    let config = Config::default()
        .listener(
            "virtualInbound",
            0,
            TrafficDirection::Inbound,
            false,
            hcm("inbound|8080||"),
        )
        .routes(
            "inbound|8080||",
            vec![vhost(
                "inbound",
                &["*"],
                vec![route("default", "/", to("inbound|8080||"))],
            )],
        )
        .cluster(Cluster::new("inbound|8080||"), &[app]);
    Proxy::start_with(config, |options| {
        options.node = ProxyNode {
            kind: ProxyKind::Sidecar,
            pod: "httpbin-v1-5d7c8b9f4-abcde".to_owned(),
            namespace: "default".to_owned(),
            ip: "127.0.0.1".to_owned(),
            labels: BTreeMap::from([
                ("app".to_owned(), "httpbin".to_owned()),
                ("version".to_owned(), "v1".to_owned()),
            ]),
            service_account: "httpbin".to_owned(),
        };
    })
    .await
}

/// The client sidecar (the test node, `productpage-v1`): `httpbin:8000` routed to
/// `endpoint`, which runs a sidecar or not.
async fn client(endpoint: SocketAddr, has_sidecar: bool) -> Proxy {
    let mut config = Config::default()
        .http("virtualOutbound", "8000")
        .routes(
            "8000",
            vec![vhost(
                "httpbin:8000",
                &["httpbin:8000"],
                vec![route("default", "/", to(HTTPBIN))],
            )],
        )
        .cluster(Cluster::new(HTTPBIN), &[endpoint]);
    for endpoint in &mut config.0.endpoints.get_mut(HTTPBIN).unwrap().endpoints {
        endpoint.has_sidecar = has_sidecar;
    }
    Proxy::start(config).await
}

fn requests_total(metrics: &str) -> Vec<&str> {
    metrics
        .lines()
        .filter(|line| line.starts_with("istio_requests_total{"))
        .collect()
}

#[tokio::test]
async fn the_server_sidecar_reports_who_called_and_strips_the_headers() {
    let server = server(httpbin().await).await;
    let client = client(server.addr("virtualInbound").await, true).await;
    let outbound = client.addr("virtualOutbound").await;

    // An app's own metadata headers do not survive its sidecar.
    let answer = get(
        outbound,
        "httpbin:8000",
        "/headers",
        &[("x-envoy-peer-metadata", "forged")],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.body.to_ascii_lowercase();
    assert!(!body.contains("x-envoy-peer-metadata"), "{}", answer.body);

    let (status, metrics) = server.admin("/stats/prometheus").await;
    assert_eq!(status, 200);
    let inbound = requests_total(&metrics);
    assert_eq!(inbound.len(), 1, "{metrics}");
    for label in [
        "reporter=\"destination\"",
        "source_workload=\"productpage-v1\"",
        "source_workload_namespace=\"default\"",
        "source_app=\"productpage\"",
        "source_version=\"v1\"",
        "source_canonical_service=\"productpage\"",
        "source_canonical_revision=\"v1\"",
        "source_principal=\"unknown\"",
        "destination_workload=\"httpbin-v1\"",
        "destination_app=\"httpbin\"",
        "response_code=\"200\"",
    ] {
        assert!(
            inbound[0].contains(label),
            "{label} missing from {}",
            inbound[0]
        );
    }

    // A plain client without a sidecar stays unknown.
    let direct = get(server.addr("virtualInbound").await, "httpbin", "/get", &[]).await;
    assert_eq!(direct.status, 200);
    let (_, metrics) = server.admin("/stats/prometheus").await;
    let inbound = requests_total(&metrics);
    assert_eq!(inbound.len(), 2, "{metrics}");
    assert!(
        inbound
            .iter()
            .any(|line| line.contains("source_app=\"unknown\"")
                && line.contains("source_workload=\"unknown\"")),
        "{metrics}"
    );
}

#[tokio::test]
async fn only_endpoints_with_a_sidecar_get_metadata() {
    let app = httpbin().await;
    let headers_seen = |body: &str| {
        let body = body.to_ascii_lowercase();
        (
            body.contains("x-envoy-peer-metadata-id"),
            body.contains("\"x-envoy-peer-metadata\""),
        )
    };

    let plain = client(app, false).await;
    let answer = get(
        plain.addr("virtualOutbound").await,
        "httpbin:8000",
        "/headers",
        &[],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        headers_seen(&answer.body),
        (false, false),
        "{}",
        answer.body
    );

    // Said to run a sidecar, the same app now receives what a server sidecar
    // would read: Istio's node id and the metadata.
    let meshed = client(app, true).await;
    let answer = get(
        meshed.addr("virtualOutbound").await,
        "httpbin:8000",
        "/headers",
        &[],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(headers_seen(&answer.body), (true, true), "{}", answer.body);
    assert!(
        answer.body.contains(
            "sidecar~127.0.0.1~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local"
        ),
        "{}",
        answer.body
    );
}
