use std::collections::BTreeMap;

use meshlab_proxy_route::ResponseFlag;

use super::*;

fn gauges() -> ClusterGauges {
    ClusterGauges {
        max_connections: 1,
        max_pending: 1,
        max_requests: UNLIMITED,
        max_retries: UNLIMITED,
        membership_total: 1,
        membership_healthy: 1,
        ejections_active: 0,
    }
}

#[test]
fn envoy_stats_carry_the_names_the_circuit_breaking_task_greps() {
    let stats = Stats::default();
    let cluster = stats.cluster("outbound|8000||httpbin.default.svc.cluster.local");
    cluster.rq_pending_overflow.add(21);
    cluster.rq_pending_total.add(29);
    cluster.rq_pending_active.inc();
    let text = stats.render_envoy(
        [(
            "outbound|8000||httpbin.default.svc.cluster.local",
            &*cluster,
            gauges(),
        )],
        None,
    );
    let pending: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("pending"))
        .collect();
    let prefix = "cluster.outbound|8000||httpbin.default.svc.cluster.local.";
    for (stat, value) in [
        ("circuit_breakers.default.remaining_pending", 0),
        ("circuit_breakers.default.rq_pending_open", 1),
        ("circuit_breakers.high.rq_pending_open", 0),
        ("upstream_rq_pending_active", 1),
        ("upstream_rq_pending_failure_eject", 0),
        ("upstream_rq_pending_overflow", 21),
        ("upstream_rq_pending_total", 29),
    ] {
        let line = format!("{prefix}{stat}: {value}");
        assert!(
            pending.contains(&line.as_str()),
            "missing {line:?} in\n{}",
            pending.join("\n")
        );
    }
    let mut sorted = text.lines().collect::<Vec<_>>();
    sorted.sort_unstable();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        sorted,
        "Envoy sorts /stats by name"
    );
}

#[test]
fn a_filter_keeps_only_matching_names() {
    let stats = Stats::default();
    let cluster = stats.cluster("a");
    let filter = regex::Regex::new("pending_overflow").unwrap();
    let text = stats.render_envoy([("a", &*cluster, gauges())], Some(&filter));
    assert_eq!(text, "cluster.a.upstream_rq_pending_overflow: 0\n");
}

#[test]
fn istio_requests_are_counted_per_label_set_code_and_flags() {
    let stats = Stats::default();
    let me = Peer::from_labels(
        &BTreeMap::from([
            ("app".to_owned(), "productpage".to_owned()),
            ("version".to_owned(), "v1".to_owned()),
        ]),
        Some("productpage-v1"),
        Some("default"),
    );
    let service = ServiceNames::of_host("reviews.default.svc.cluster.local");
    let labels = stats.labels(Reporter::Source, &me, &Peer::unknown(), &service);
    let again = stats.labels(Reporter::Source, &me, &Peer::unknown(), &service);
    assert!(Arc::ptr_eq(&labels, &again), "label sets are interned");
    let sample = |code, flags| HttpSample {
        labels: labels.clone(),
        grpc: false,
        response_code: code,
        flags,
        duration: Duration::from_millis(3),
        request_bytes: 0,
        response_bytes: 120,
    };
    stats.record_http(&sample(200, ResponseFlags::NONE));
    stats.record_http(&sample(200, ResponseFlags::NONE));
    stats.record_http(&sample(503, ResponseFlag::UpstreamOverflow.into()));
    let text = stats.render_prometheus([]);
    let requests: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("istio_requests_total{"))
        .collect();
    assert_eq!(requests.len(), 2, "{text}");
    let ok = requests
        .iter()
        .find(|l| l.contains("response_code=\"200\""))
        .unwrap();
    for label in [
        "reporter=\"source\"",
        "source_workload=\"productpage-v1\"",
        "source_workload_namespace=\"default\"",
        "source_app=\"productpage\"",
        "source_version=\"v1\"",
        "destination_service=\"reviews.default.svc.cluster.local\"",
        "destination_service_name=\"reviews\"",
        "destination_service_namespace=\"default\"",
        "request_protocol=\"http\"",
        "response_flags=\"-\"",
        "connection_security_policy=\"unknown\"",
    ] {
        assert!(ok.contains(label), "{label} missing from {ok}");
    }
    assert!(ok.ends_with(" 2"), "{ok}");
    assert!(
        requests
            .iter()
            .any(|l| l.contains("response_code=\"503\"") && l.contains("response_flags=\"UO\""))
    );
    // Duration histogram: 3 ms falls in the `5` bucket, cumulative from there on.
    assert!(text.contains("le=\"1\"} 0"), "{text}");
    assert!(text.contains("le=\"5\"} 2"), "{text}");
    assert!(text.contains("le=\"+Inf\"} 2"), "{text}");
    for metric in [
        "istio_request_duration_milliseconds_bucket",
        "istio_request_bytes_count",
        "istio_response_bytes_sum",
    ] {
        assert!(text.contains(metric), "{metric} missing");
    }
}

#[test]
fn tcp_connections_are_counted_with_their_bytes() {
    let stats = Stats::default();
    let labels = stats.labels(
        Reporter::Source,
        &Peer::unknown(),
        &Peer::unknown(),
        &ServiceNames::catch_all("PassthroughCluster", "10.0.0.1:443"),
    );
    stats.tcp_opened(&labels);
    stats.tcp_closed(&labels, ResponseFlags::NONE, 4218, 586);
    let text = stats.render_prometheus([]);
    for expected in [
        "istio_tcp_connections_opened_total{",
        "istio_tcp_connections_closed_total{",
        "destination_service_name=\"PassthroughCluster\"",
        "request_protocol=\"tcp\"",
    ] {
        assert!(text.contains(expected), "{expected} missing from\n{text}");
    }
    let sent = text
        .lines()
        .find(|l| l.starts_with("istio_tcp_sent_bytes_total{"))
        .unwrap();
    assert!(sent.ends_with(" 4218"), "{sent}");
    let received = text
        .lines()
        .find(|l| l.starts_with("istio_tcp_received_bytes_total{"))
        .unwrap();
    assert!(received.ends_with(" 586"), "{received}");
}

#[test]
fn names_follow_istio() {
    let cases = [
        ("reviews-v1-545db77b95-k9fjt", "reviews-v1"),
        ("productpage-v1-6b746f74dc-9stvs", "productpage-v1"),
        ("sleep", "sleep"),
        ("a-b", "a-b"),
    ];
    for (pod, workload) in cases {
        assert_eq!(workload_name(pod), workload, "{pod}");
    }
    let service = ServiceNames::of_host("reviews.default.svc.cluster.local");
    assert_eq!(
        (service.name.as_str(), service.namespace.as_str()),
        ("reviews", "default")
    );
    let external = ServiceNames::of_host("httpbin.org");
    assert_eq!(
        (external.name.as_str(), external.namespace.as_str()),
        ("httpbin.org", "unknown")
    );
    let labels = BTreeMap::from([("app".to_owned(), "reviews".to_owned())]);
    let peer = Peer::from_labels(&labels, None, None);
    assert_eq!(
        (
            peer.canonical_service.as_str(),
            peer.canonical_revision.as_str()
        ),
        ("reviews", "latest")
    );
}

#[test]
fn counters_respect_limits() {
    let counter = Counter::default();
    assert!(counter.try_inc(2));
    assert!(counter.try_inc(2));
    assert!(!counter.try_inc(2));
    counter.dec();
    assert_eq!(counter.get(), 1);
}

#[test]
fn inbound_labels_carry_the_client_the_request_names() {
    let stats = Stats::default();
    let node_labels = BTreeMap::from([
        ("app".to_owned(), "reviews".to_owned()),
        ("version".to_owned(), "v2".to_owned()),
    ]);
    let me = Peer::from_labels(&node_labels, Some("reviews-v2"), Some("default"));
    let base = stats.labels(
        Reporter::Destination,
        &Peer::unknown(),
        &me,
        &ServiceNames::of_host("reviews.default.svc.cluster.local"),
    );
    let client_labels = BTreeMap::from([
        ("app".to_owned(), "productpage".to_owned()),
        ("version".to_owned(), "v1".to_owned()),
    ]);
    let client = Peer::from_labels(&client_labels, Some("productpage-v1"), Some("default"));
    let node = ProxyNode {
        kind: meshlab_proxy_config::ProxyKind::Sidecar,
        pod: "productpage-v1-6b746f74dc-9stvs".to_owned(),
        namespace: "default".to_owned(),
        ip: "10.0.0.7".to_owned(),
        labels: client_labels,
        service_account: "bookinfo-productpage".to_owned(),
    };
    let mut headers = http::HeaderMap::new();
    crate::peer::PeerMetadata::new(&node, &client).apply(&mut headers, true);
    let principal: Arc<str> = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage".into();
    let source = Source {
        metadata: crate::peer::take_inbound(&mut headers),
        principal: Some(principal.clone()),
    };

    let labels = stats.with_source(&base, &source);
    assert!(
        Arc::ptr_eq(&labels, &stats.with_source(&base, &source)),
        "interned"
    );
    // Without metadata or mTLS the client stays unknown.
    let nobody = Source {
        metadata: None,
        principal: None,
    };
    assert!(Arc::ptr_eq(&stats.with_source(&base, &nobody), &base));
    // Only mTLS: the principal, nothing else.
    let only_mtls = stats.with_source(
        &base,
        &Source {
            metadata: None,
            principal: Some(principal),
        },
    );

    let sample = |labels: &Arc<MetricLabels>| HttpSample {
        labels: labels.clone(),
        grpc: false,
        response_code: 200,
        flags: ResponseFlags::NONE,
        duration: Duration::from_millis(3),
        request_bytes: 0,
        response_bytes: 10,
    };
    stats.record_http(&sample(&labels));
    stats.record_http(&sample(&base));
    stats.record_http(&sample(&only_mtls));
    let text = stats.render_prometheus([]);
    let requests: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("istio_requests_total{"))
        .collect();
    assert_eq!(requests.len(), 3, "{text}");
    let known = requests
        .iter()
        .find(|l| l.contains("source_app=\"productpage\""))
        .unwrap();
    for label in [
        "reporter=\"destination\"",
        "source_workload=\"productpage-v1\"",
        "source_workload_namespace=\"default\"",
        "source_principal=\"spiffe://cluster.local/ns/default/sa/bookinfo-productpage\"",
        "source_version=\"v1\"",
        "source_canonical_service=\"productpage\"",
        "source_canonical_revision=\"v1\"",
        "destination_workload=\"reviews-v2\"",
        "destination_app=\"reviews\"",
        "destination_service_name=\"reviews\"",
        "connection_security_policy=\"mutual_tls\"",
    ] {
        assert!(known.contains(label), "{label} missing from {known}");
    }
    let unknown = requests
        .iter()
        .find(|l| l.contains("source_principal=\"unknown\""))
        .unwrap();
    assert!(unknown.contains("source_app=\"unknown\""), "{unknown}");
    assert!(
        unknown.contains("connection_security_policy=\"none\""),
        "{unknown}"
    );
    let mtls = requests
        .iter()
        .find(|l| l.contains("source_app=\"unknown\"") && l.contains("spiffe://"))
        .unwrap();
    assert!(mtls.contains("source_workload=\"unknown\""), "{mtls}");
    assert!(
        mtls.contains("connection_security_policy=\"mutual_tls\""),
        "{mtls}"
    );
}
