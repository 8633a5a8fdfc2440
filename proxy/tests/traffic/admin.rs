//! The admin, readiness and metrics ports, the access log, and configuration
//! changes under load.

use std::time::Duration;

use meshlab_proxy_config::Cluster;

use crate::support::*;

const HTTPBIN: &str = "outbound|8000||httpbin.default.svc.cluster.local";
const TEAPOT: &str = "outbound|8000||teapot.default.svc.cluster.local";

fn config(cluster: &str, endpoint: std::net::SocketAddr) -> Config {
    Config::default()
        .http("virtualOutbound", "8000")
        .routes(
            "8000",
            vec![vhost(
                "httpbin:8000",
                &["httpbin:8000"],
                vec![route("default", "/", to(cluster))],
            )],
        )
        .cluster(Cluster::new(cluster), &[endpoint])
}

#[tokio::test]
async fn readiness_admin_and_metrics_speak_envoys_formats() {
    let mut proxy = Proxy::idle(|_| {}).await;
    let readiness = proxy.sidecar.readiness_addr();
    assert_eq!(
        get(readiness, "localhost", "/healthz/ready", &[])
            .await
            .status,
        503,
        "no configuration yet"
    );
    assert_eq!(
        proxy.admin("/ready").await,
        (503, "PRE_INITIALIZING\n".to_owned())
    );

    let httpbin = httpbin().await;
    proxy.apply(config(HTTPBIN, httpbin)).await;
    assert_eq!(
        get(readiness, "localhost", "/healthz/ready", &[])
            .await
            .status,
        200
    );
    assert_eq!(proxy.admin("/ready").await, (200, "LIVE\n".to_owned()));

    let answer = get(
        proxy.addr("virtualOutbound").await,
        "httpbin:8000",
        "/get",
        &[("user-agent", "curl/8.16.0"), ("x-request-id", "one-line")],
    )
    .await;
    assert_eq!(answer.status, 200);

    // The access log line, field by field.
    let line = proxy.log_line("one-line").await;
    let fields = regex::Regex::new(concat!(
        r#"^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "GET /get HTTP/1\.1" 200 - via_upstream - "-" 0 \d+ \d+ \d+ "-" "curl/8\.16\.0" "one-line" "httpbin:8000" "#,
        r#""127\.0\.0\.1:\d+" outbound\|8000\|\|httpbin\.default\.svc\.cluster\.local 127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+ - default$"#,
    ))
    .unwrap();
    assert!(fields.is_match(&line), "{line}");

    let (status, dump) = proxy.admin("/config_dump").await;
    let dump: serde_json::Value = serde_json::from_str(&dump).expect("the config dump is JSON");
    assert_eq!(status, 200);
    assert!(dump["clusters"][HTTPBIN].is_object(), "{dump}");

    let (_, clusters) = proxy.admin("/clusters").await;
    for expected in [
        format!("{HTTPBIN}::{httpbin}::health_flags::healthy"),
        format!("{HTTPBIN}::{httpbin}::rq_total::1"),
        format!("{HTTPBIN}::default_priority::max_connections::4294967295"),
        "PassthroughCluster::observability_name::PassthroughCluster".to_owned(),
    ] {
        assert!(
            clusters.lines().any(|l| l == expected),
            "{expected} missing:\n{clusters}"
        );
    }

    let metrics = get(
        proxy.sidecar.metrics_addr(),
        "localhost",
        "/stats/prometheus",
        &[],
    )
    .await
    .body;
    let requests = metrics
        .lines()
        .find(|l| l.starts_with("istio_requests_total{"))
        .expect(&metrics);
    for label in [
        "reporter=\"source\"",
        "source_workload=\"productpage-v1\"",
        "source_app=\"productpage\"",
        "destination_service=\"httpbin.default.svc.cluster.local\"",
        "response_code=\"200\"",
        "response_flags=\"-\"",
    ] {
        assert!(requests.contains(label), "{label} missing from {requests}");
    }
    assert!(
        metrics.contains("istio_request_duration_milliseconds_bucket{"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "envoy_cluster_upstream_rq_total{{cluster_name=\"{HTTPBIN}\"}} 1"
        )),
        "{metrics}"
    );
    assert_eq!(proxy.admin("/nope").await.0, 404);
}

#[tokio::test]
async fn a_configuration_change_lets_requests_in_flight_finish() {
    let httpbin = httpbin().await;
    let teapot = always(418).await;
    let mut proxy = Proxy::start(config(HTTPBIN, httpbin)).await;
    let addr = proxy.addr("virtualOutbound").await;
    let slow = tokio::spawn(async move { get(addr, "httpbin:8000", "/delay/1", &[]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Same listener, new route and cluster; the old cluster is gone.
    proxy.apply(config(TEAPOT, teapot)).await;
    assert_eq!(
        proxy.addr("virtualOutbound").await,
        addr,
        "an unchanged listener keeps its socket"
    );
    assert_eq!(
        get(addr, "httpbin:8000", "/get", &[]).await.status,
        418,
        "new requests take the new route"
    );
    let slow = slow.await.unwrap();
    assert_eq!(
        slow.status, 200,
        "the request in flight finished on the old cluster: {}",
        slow.body
    );
}
