use meshlab_proxy_config::{Endpoint, OutlierDetection};

use super::*;

fn context() -> Arc<ClusterContext> {
    let node_labels = BTreeMap::from([("app".to_owned(), "productpage".to_owned())]);
    Arc::new(ClusterContext {
        stats: Arc::default(),
        roots: Roots::new("/nonexistent/ca.pem"),
        dns_refresh: Duration::from_secs(60),
        me: Peer::from_labels(&node_labels, Some("productpage-v1"), Some("default")),
        identity: None,
    })
}

fn endpoint(addr: &str, version: &str) -> Endpoint {
    Endpoint {
        address: EndpointAddress::Socket(addr.parse().unwrap()),
        labels: BTreeMap::from([
            ("app".to_owned(), "reviews".to_owned()),
            ("version".to_owned(), version.to_owned()),
        ]),
        weight: 1,
        service_account: None,
        has_sidecar: true,
    }
}

const REVIEWS: &str = "outbound|9080||reviews.default.svc.cluster.local";

fn config(cluster: Cluster, endpoints: &[Endpoint]) -> ProxyConfig {
    let mut config = ProxyConfig::default();
    config.clusters.insert(cluster.name.clone(), cluster);
    config.endpoints.insert(
        REVIEWS.to_owned(),
        ClusterLoadAssignment {
            cluster_name: REVIEWS.to_owned(),
            endpoints: endpoints.to_vec(),
        },
    );
    config
}

fn addresses(state: &ClusterState) -> Vec<String> {
    state
        .host_set()
        .hosts
        .iter()
        .map(|h| h.addr.to_string())
        .collect()
}

#[test]
fn updates_keep_what_did_not_change() {
    let ctx = context();
    let empty = ClusterManager::default();
    let first = empty.update(
        &config(
            Cluster::new(REVIEWS),
            &[
                endpoint("10.0.0.1:9080", "v1"),
                endpoint("10.0.0.2:9080", "v2"),
            ],
        ),
        &ctx,
    );
    let reviews = first.get(REVIEWS).unwrap().clone();
    assert_eq!(addresses(&reviews), ["10.0.0.1:9080", "10.0.0.2:9080"]);
    assert!(
        first.get(PASSTHROUGH_CLUSTER).is_some() && first.get(BLACK_HOLE_CLUSTER).is_some(),
        "Istio's catch-all clusters always exist"
    );
    let kept_host = reviews.host_set().hosts[1].clone();

    // New endpoints, same definition: same cluster, surviving endpoints kept.
    let second = first.update(
        &config(
            Cluster::new(REVIEWS),
            &[
                endpoint("10.0.0.2:9080", "v2"),
                endpoint("10.0.0.3:9080", "v3"),
            ],
        ),
        &ctx,
    );
    let same = second.get(REVIEWS).unwrap();
    assert!(Arc::ptr_eq(same, &reviews));
    assert_eq!(addresses(same), ["10.0.0.2:9080", "10.0.0.3:9080"]);
    assert!(Arc::ptr_eq(&same.host_set().hosts[0], &kept_host));

    // A changed definition: a fresh cluster, with the same statistics.
    let mut round_robin = Cluster::new(REVIEWS);
    round_robin.lb_policy = LbPolicy::RoundRobin;
    let third = second.update(
        &config(round_robin, &[endpoint("10.0.0.2:9080", "v2")]),
        &ctx,
    );
    let fresh = third.get(REVIEWS).unwrap();
    assert!(!Arc::ptr_eq(fresh, &reviews));
    assert!(Arc::ptr_eq(&fresh.stats, &reviews.stats));
}

#[test]
fn endpoints_carry_istios_metric_labels() {
    let ctx = context();
    let clusters = ClusterManager::default().update(
        &config(Cluster::new(REVIEWS), &[endpoint("10.0.0.2:9080", "v2")]),
        &ctx,
    );
    let host = clusters.get(REVIEWS).unwrap().host_set().hosts[0].clone();
    let labels = format!("{:?}", host.labels);
    for expected in [
        r#"reporter=\"source\""#,
        r#"source_workload=\"productpage-v1\""#,
        r#"destination_app=\"reviews\""#,
        r#"destination_version=\"v2\""#,
        r#"destination_service=\"reviews.default.svc.cluster.local\""#,
        r#"destination_service_name=\"reviews\""#,
        r#"destination_workload_namespace=\"default\""#,
    ] {
        assert!(
            labels.contains(expected),
            "{expected} missing from {labels}"
        );
    }
    let inbound = labels_for(&ctx, "inbound|9080||", None, None);
    let inbound = format!("{inbound:?}");
    assert!(
        inbound.contains(r#"reporter=\"destination\""#)
            && inbound.contains(r#"destination_workload=\"productpage-v1\""#),
        "{inbound}"
    );
}

#[tokio::test]
async fn failing_endpoints_are_ejected_within_the_limit() {
    let ctx = context();
    let mut cluster = Cluster::new(REVIEWS);
    cluster.lb_policy = LbPolicy::RoundRobin;
    cluster.outlier_detection = Some(OutlierDetection {
        consecutive_5xx: Some(1),
        consecutive_gateway_failure: None,
        interval: Duration::from_secs(1),
        base_ejection_time: Duration::from_secs(60),
        max_ejection_percent: 50,
        min_health_percent: 0,
    });
    let clusters = ClusterManager::default().update(
        &config(
            cluster,
            &[
                endpoint("10.0.0.1:9080", "v1"),
                endpoint("10.0.0.2:9080", "v2"),
            ],
        ),
        &ctx,
    );
    let reviews = clusters.get(REVIEWS).unwrap();
    let set = reviews.host_set();
    reviews.report(&set.hosts[0], 503);
    reviews.report(&set.hosts[1], 503);
    let gauges = reviews.gauges();
    assert_eq!(
        (gauges.ejections_active, gauges.membership_healthy),
        (1, 1),
        "50% allows one of two"
    );
    assert_eq!(reviews.stats.ejections_overflow.get(), 1);
    let request = PickRequest {
        hash: None,
        original_dst: "127.0.0.1:1".parse().unwrap(),
        previous: &[],
        avoid_previous: false,
        selection_attempts: 0,
    };
    for _ in 0..4 {
        assert_eq!(
            reviews.pick(&request).await.unwrap().addr.to_string(),
            "10.0.0.2:9080"
        );
    }
    let mut out = String::new();
    reviews.render(&mut out);
    assert!(
        out.contains(&format!(
            "{REVIEWS}::10.0.0.1:9080::health_flags::/failed_outlier_check"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("{REVIEWS}::10.0.0.2:9080::health_flags::healthy")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{REVIEWS}::default_priority::max_connections::4294967295"
        )),
        "{out}"
    );
}

#[tokio::test]
async fn retries_avoid_hosts_already_tried() {
    let ctx = context();
    let clusters = ClusterManager::default().update(
        &config(
            Cluster::new(REVIEWS),
            &[
                endpoint("10.0.0.1:9080", "v1"),
                endpoint("10.0.0.2:9080", "v2"),
            ],
        ),
        &ctx,
    );
    let reviews = clusters.get(REVIEWS).unwrap();
    let previous = ["10.0.0.1:9080".parse().unwrap()];
    let request = PickRequest {
        hash: None,
        original_dst: "127.0.0.1:1".parse().unwrap(),
        previous: &previous,
        avoid_previous: true,
        selection_attempts: 5,
    };
    let mut other = 0;
    for _ in 0..100 {
        if reviews.pick(&request).await.unwrap().addr.to_string() == "10.0.0.2:9080" {
            other += 1;
        }
    }
    // Six draws between two hosts: the tried one comes back only if drawn six times.
    assert!(other >= 90, "{other} of 100 avoided the tried host");
    let passthrough = clusters.get(PASSTHROUGH_CLUSTER).unwrap();
    let original = PickRequest {
        original_dst: "10.9.8.7:443".parse().unwrap(),
        ..request
    };
    assert_eq!(
        passthrough.pick(&original).await.unwrap().addr.to_string(),
        "10.9.8.7:443"
    );
}
