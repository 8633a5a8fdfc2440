//! Telemetry as a table of access-log lines and the graph they make.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::*;
use crate::pod::PodContainer;
use crate::store::Store;
use crate::yaml;

const BOOKINFO: &str = include_str!("../../tests/data/bookinfo.yaml");
const DESTINATION_RULE_ALL: &str = include_str!("../../tests/data/destination-rule-all.yaml");
const REVIEWS_50_V3: &str = include_str!("../../tests/data/virtual-service-reviews-50-v3.yaml");
const RATINGS_ABORT: &str =
    include_str!("../../tests/data/virtual-service-ratings-test-abort.yaml");

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn snapshot(manifests: &[&str]) -> Arc<Snapshot> {
    let dir = Scratch(std::env::temp_dir().join(format!(
        "meshlab-telemetry-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    )));
    let store = Store::open(&dir.0).unwrap();
    for manifest in manifests {
        let resources = yaml::load("test.yaml", manifest)
            .unwrap_or_else(|d| panic!("{d:#?}"))
            .documents
            .into_iter()
            .map(|d| d.resource)
            .collect();
        store.apply(resources, "default").unwrap();
    }
    store.snapshot()
}

fn pod(name: &str, namespace: &str, labels: &[(&str, &str)], ip: &str) -> Pod {
    Pod {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        deployment: None,
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        service_account: "default".to_owned(),
        status: "Running".to_owned(),
        message: None,
        ip: Some(ip.to_owned()),
        created: 0,
        containers: vec![PodContainer {
            name: "istio-proxy".to_owned(),
            docker_name: format!("lab-{name}-istio-proxy"),
            ready: true,
            restarts: 0,
        }],
        outdated: false,
    }
}

fn pods() -> Vec<Pod> {
    vec![
        pod(
            "istio-ingressgateway-1",
            "istio-system",
            &[("app", "istio-ingressgateway"), ("istio", "ingressgateway")],
            "172.18.0.2",
        ),
        pod(
            "productpage-v1-1",
            "default",
            &[("app", "productpage"), ("version", "v1")],
            "172.18.0.3",
        ),
        pod(
            "reviews-v2-1",
            "default",
            &[("app", "reviews"), ("version", "v2")],
            "172.18.0.4",
        ),
        pod(
            "reviews-v3-1",
            "default",
            &[("app", "reviews"), ("version", "v3")],
            "172.18.0.5",
        ),
        pod("sleep-1", "default", &[("app", "sleep")], "172.18.0.6"),
    ]
}

/// A line as `proxy/src/access_log.rs` prints it.
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per field of the line"
)]
fn line(
    code: u16,
    flags: &str,
    ms: u64,
    authority: &str,
    upstream: &str,
    cluster: &str,
    local: &str,
    remote: &str,
    sni: &str,
    route: &str,
) -> String {
    format!(
        "[2026-11-21T14:00:00.000Z] \"GET /productpage HTTP/1.1\" {code} {flags} via_upstream - \"-\" 0 1234 {ms} {ms} \"-\" \"curl/8.0\" \"1b4e2c3a-0000-4000-8000-000000000000\" \"{authority}\" \"{upstream}\" {cluster} - {local} {remote} {sni} {route}"
    )
}

fn outbound_to_reviews(code: u16, ms: u64, upstream_ip: &str) -> String {
    line(
        code,
        if code == 503 { "UH" } else { "-" },
        ms,
        "reviews:9080",
        &format!("{upstream_ip}:9080"),
        "outbound|9080||reviews.default.svc.cluster.local",
        "10.0.0.9:9080",
        "172.18.0.3:40000",
        "-",
        "default",
    )
}

#[test]
fn a_line_reads_back_field_by_field() {
    let text = outbound_to_reviews(200, 12, "172.18.0.4");
    let parsed = line::parse(&text).unwrap();
    assert_eq!(parsed.method, "GET");
    assert_eq!(parsed.path, "/productpage");
    assert_eq!(parsed.code, 200);
    assert_eq!(parsed.flags, "-");
    assert_eq!(parsed.duration_ms, 12);
    assert_eq!(parsed.authority.as_deref(), Some("reviews:9080"));
    assert_eq!(parsed.authority_host(), Some("reviews"));
    assert_eq!(
        parsed.upstream_cluster.as_deref(),
        Some("outbound|9080||reviews.default.svc.cluster.local")
    );
    assert_eq!(
        parsed.upstream_host,
        Some("172.18.0.4:9080".parse().unwrap())
    );
    assert_eq!(parsed.server_name, None);
    assert_eq!(parsed.route_name.as_deref(), Some("default"));
    // Other output of a proxy is not an access-log line.
    assert_eq!(line::parse("installed 12 capture rules"), None);
    assert_eq!(line::parse(""), None);
}

#[test]
fn outbound_lines_make_edges_with_rate_errors_and_percentiles() {
    let telemetry = Telemetry::new();
    let pods = pods();
    let now = Instant::now();
    let productpage = &pods[1];
    // 19 fast answers from v2, one 503 from the service with no healthy upstream.
    for i in 0..19 {
        telemetry.record(
            productpage,
            &pods,
            &outbound_to_reviews(200, 10 + i, "172.18.0.4"),
            now,
        );
    }
    let no_upstream = line(
        503,
        "UH",
        0,
        "reviews:9080",
        "-",
        "outbound|9080||reviews.default.svc.cluster.local",
        "10.0.0.9:9080",
        "172.18.0.3:40001",
        "-",
        "default",
    );
    telemetry.record(productpage, &pods, &no_upstream, now);
    let graph = telemetry.graph(&Snapshot::default(), &pods, now);
    let edge = graph
        .edges
        .iter()
        .find(|e| e.target == "workload:default/reviews/v2")
        .unwrap();
    assert_eq!(edge.source, "workload:default/productpage/v1");
    assert_eq!(edge.requests, 19);
    assert!((edge.rps - 1.9).abs() < 1e-9, "{}", edge.rps);
    assert_eq!(edge.error_rate, 0.0);
    assert_eq!(edge.p50_ms, Some(19));
    assert_eq!(edge.p99_ms, Some(28));
    assert_eq!(edge.health, "healthy");
    assert!(!edge.mtls);
    let failing = graph
        .edges
        .iter()
        .find(|e| e.target == "service:default/reviews")
        .unwrap();
    assert_eq!(failing.error_rate, 1.0);
    assert_eq!(failing.health, "failing");
    assert_eq!(failing.flags, vec!["UH".to_owned()]);
    let service = graph
        .nodes
        .iter()
        .find(|n| n.id == "service:default/reviews")
        .unwrap();
    assert_eq!(service.kind, "service");
    assert_eq!(service.health, "failing");
    // Every workload is a node, traffic or not; the gateway is one.
    let ids: Vec<&str> = graph.nodes.iter().map(|n| n.id.as_str()).collect();
    for id in [
        "workload:istio-system/istio-ingressgateway",
        "workload:default/productpage/v1",
        "workload:default/reviews/v3",
        "workload:default/sleep",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    let gateway = graph
        .nodes
        .iter()
        .find(|n| n.id == "workload:istio-system/istio-ingressgateway")
        .unwrap();
    assert_eq!(gateway.kind, "gateway");
}

#[test]
fn health_follows_istio_thresholds() {
    assert_eq!(health(0, 0.0), "idle");
    assert_eq!(health(10_000, 9.0), "healthy");
    assert_eq!(health(10_000, 10.0), "degraded");
    assert_eq!(health(100, 9.0), "degraded");
    assert_eq!(health(100, 10.0), "failing");
}

#[test]
fn the_window_slides_and_old_edges_go() {
    let telemetry = Telemetry::new();
    let pods = pods();
    let start = Instant::now();
    telemetry.record(
        &pods[1],
        &pods,
        &outbound_to_reviews(200, 5, "172.18.0.5"),
        start,
    );
    let later = start + WINDOW + Duration::from_secs(1);
    let graph = telemetry.graph(&Snapshot::default(), &pods, later);
    let edge = graph
        .edges
        .iter()
        .find(|e| e.target == "workload:default/reviews/v3")
        .unwrap();
    assert_eq!((edge.requests, edge.rps, edge.health), (0, 0.0, "idle"));
    let gone = telemetry.graph(
        &Snapshot::default(),
        &pods,
        start + KEEP + Duration::from_secs(1),
    );
    assert!(gone.edges.is_empty(), "{:?}", gone.edges);
}

#[test]
fn external_blocked_and_gateway_destinations() {
    let telemetry = Telemetry::new();
    let pods = pods();
    let now = Instant::now();
    let sleep = &pods[4];
    let gateway = &pods[0];
    let rows = [
        (
            sleep,
            line(
                200,
                "-",
                3,
                "httpbin.org",
                "172.18.0.40:80",
                "outbound|80||httpbin.org",
                "172.18.0.40:80",
                "172.18.0.6:5000",
                "-",
                "httpbin.org:80",
            ),
            "external:httpbin.org",
        ),
        (
            sleep,
            line(
                200,
                "-",
                3,
                "edition.cnn.com",
                "172.18.0.40:80",
                "PassthroughCluster",
                "172.18.0.40:80",
                "172.18.0.6:5001",
                "-",
                "allow_any",
            ),
            "external:edition.cnn.com",
        ),
        (
            sleep,
            line(
                502,
                "-",
                0,
                "www.google.com",
                "-",
                "-",
                "172.18.0.40:80",
                "172.18.0.6:5002",
                "-",
                "block_all",
            ),
            "blocked:www.google.com",
        ),
        (
            gateway,
            line(
                200,
                "-",
                30,
                "localhost:8080",
                "172.18.0.3:9080",
                "outbound|9080||productpage.default.svc.cluster.local",
                "172.18.0.2:8080",
                "172.18.0.1:6000",
                "-",
                "-",
            ),
            "workload:default/productpage/v1",
        ),
    ];
    for (pod, text, _) in &rows {
        telemetry.record(pod, &pods, text, now);
    }
    let graph = telemetry.graph(&Snapshot::default(), &pods, now);
    for (pod, _, target) in &rows {
        let source = workload_node(pod).id;
        assert!(
            graph
                .edges
                .iter()
                .any(|e| e.source == source && e.target == *target),
            "{source} → {target} in {:?}",
            graph.edges
        );
    }
    let kinds: BTreeMap<&str, &str> = graph
        .nodes
        .iter()
        .map(|n| (n.id.as_str(), n.kind))
        .collect();
    assert_eq!(kinds["external:httpbin.org"], "external");
    assert_eq!(kinds["blocked:www.google.com"], "blocked");
}

#[test]
fn the_lock_comes_from_the_destinations_inbound_line() {
    let telemetry = Telemetry::new();
    let pods = pods();
    let now = Instant::now();
    telemetry.record(
        &pods[1],
        &pods,
        &outbound_to_reviews(200, 5, "172.18.0.4"),
        now,
    );
    let inbound = |sni: &str| {
        line(
            200,
            "-",
            4,
            "reviews:9080",
            "172.18.0.4:9080",
            "inbound|9080||",
            "172.18.0.4:9080",
            "172.18.0.3:40000",
            sni,
            "default",
        )
    };
    // Plain text: the inbound line has no server name.
    telemetry.record(&pods[2], &pods, &inbound("-"), now);
    let edge = |graph: &Graph| {
        graph
            .edges
            .iter()
            .find(|e| e.target == "workload:default/reviews/v2")
            .unwrap()
            .clone()
    };
    assert!(!edge(&telemetry.graph(&Snapshot::default(), &pods, now)).mtls);
    // mTLS: Istio's SNI for the service.
    telemetry.record(
        &pods[2],
        &pods,
        &inbound("outbound_.9080_._.reviews.default.svc.cluster.local"),
        now,
    );
    let graph = telemetry.graph(&Snapshot::default(), &pods, now);
    assert!(edge(&graph).mtls);
    // Inbound lines are not counted twice.
    assert_eq!(edge(&graph).requests, 1);
}

#[test]
fn badges_come_from_virtual_services_and_destination_rules() {
    let snapshot = snapshot(&[BOOKINFO, DESTINATION_RULE_ALL, REVIEWS_50_V3, RATINGS_ABORT]);
    let badges = badges(&snapshot);
    let of = |service: &str| {
        badges
            .get(&("default".to_owned(), service.to_owned()))
            .map(|b| b.iter().copied().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(of("reviews"), vec!["traffic-shifting", "virtualservice"]);
    assert_eq!(of("ratings"), vec!["fault", "virtualservice"]);
    assert_eq!(of("details"), Vec::<&str>::new());
    let breaker = snapshot_with_breaker();
    assert_eq!(
        super::badges(&breaker)
            .get(&("default".to_owned(), "httpbin".to_owned()))
            .map(|b| b.iter().copied().collect::<Vec<_>>()),
        Some(vec!["circuit-breaker"])
    );
    // The graph puts them on the nodes of the app.
    let telemetry = Telemetry::new();
    let graph = telemetry.graph(&snapshot, &pods(), Instant::now());
    let v2 = graph
        .nodes
        .iter()
        .find(|n| n.id == "workload:default/reviews/v2")
        .unwrap();
    assert_eq!(v2.badges, vec!["traffic-shifting", "virtualservice"]);
}

fn snapshot_with_breaker() -> Arc<Snapshot> {
    snapshot(&["apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin
spec:
  host: httpbin
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 1
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 3m
      maxEjectionPercent: 100
"])
}

#[tokio::test]
async fn events_carry_the_line_and_its_edge() {
    let telemetry = Telemetry::new();
    let mut events = telemetry.subscribe();
    let pods = pods();
    let text = outbound_to_reviews(200, 7, "172.18.0.4");
    telemetry.record(&pods[1], &pods, &text, Instant::now());
    let event = events.recv().await.unwrap();
    assert_eq!(event.workload, "productpage-v1");
    assert_eq!(event.direction, "outbound");
    assert_eq!(event.text, text);
    assert_eq!(event.target.as_deref(), Some("workload:default/reviews/v2"));
    telemetry.record(&pods[1], &pods, "not an access log line", Instant::now());
    assert!(events.try_recv().is_err());
}
