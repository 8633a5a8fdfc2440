//! Timeouts, retries, circuit breakers and outlier detection, as the Istio tasks
//! observe them.

use std::time::{Duration, Instant};

use meshlab_apps::ratings::Version;
use meshlab_proxy_config::route::{Backoff, RetryCondition, RetryOn, RetryPolicy};
use meshlab_proxy_config::{CircuitBreakers, Cluster, LbPolicy, OutlierDetection};

use crate::support::*;

const HTTPBIN: &str = "outbound|8000||httpbin.default.svc.cluster.local";

/// One route to `cluster` with `retry` and `timeout`.
fn config(
    cluster: Cluster,
    endpoints: &[std::net::SocketAddr],
    retry: Option<RetryPolicy>,
    timeout: Option<Duration>,
) -> Config {
    let mut action = to(&cluster.name);
    action.retry = retry;
    action.timeout = timeout;
    let name = cluster.name.clone();
    Config::default()
        .http("virtualOutbound", "8000")
        .routes(
            "8000",
            vec![vhost(&name, &["*"], vec![route("default", "/", action)])],
        )
        .cluster(cluster, endpoints)
}

fn retry_on_5xx(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        num_retries: attempts,
        retry_on: RetryOn::from_conditions([RetryCondition::FiveXx]),
        backoff: Backoff::with_base(Duration::from_millis(1)),
        ..RetryPolicy::istio_default()
    }
}

#[tokio::test]
async fn a_route_timeout_answers_504_upstream_request_timeout() {
    let mut proxy = Proxy::start(config(
        Cluster::new(HTTPBIN),
        &[httpbin().await],
        None,
        Some(Duration::from_millis(500)),
    ))
    .await;
    let addr = proxy.addr("virtualOutbound").await;
    // (path) → status, body, flags, duration window
    let cases = [
        (
            "/delay/2",
            504,
            "upstream request timeout",
            " 504 UT upstream_response_timeout ",
            450,
            1500,
        ),
        ("/delay/0.1", 200, "", " 200 - via_upstream ", 100, 450),
    ];
    for (path, status, body, logged, min_ms, max_ms) in cases {
        let started = Instant::now();
        let answer = get(addr, "httpbin:8000", path, &[("x-request-id", path)]).await;
        let took = started.elapsed().as_millis();
        assert_eq!(answer.status, status, "{path}");
        if !body.is_empty() {
            assert_eq!(answer.body, body);
        }
        assert!((min_ms..=max_ms).contains(&took), "{path} took {took} ms");
        let line = proxy.log_line(&format!("\"{path}\"")).await;
        assert!(line.contains(logged), "{path}: {line}");
    }
    let (_, stats) = proxy.admin("/stats").await;
    assert_eq!(
        stat(&stats, &format!("cluster.{HTTPBIN}.upstream_rq_timeout")),
        Some(1),
        "{stats}"
    );
}

#[tokio::test]
async fn retries_recover_from_a_faulty_upstream_and_give_up_with_urx() {
    let faulty = ratings(Version::Faulty).await;
    let failing = always(503).await;
    let ratings_cluster = "outbound|9080||ratings.default.svc.cluster.local";
    let failing_cluster = "outbound|9080||failing.default.svc.cluster.local";
    let mut to_ratings = to(ratings_cluster);
    // Half of v-faulty's answers are 503: twenty retries make a failure vanishingly rare.
    to_ratings.retry = Some(retry_on_5xx(20));
    let mut to_failing = to(failing_cluster);
    to_failing.retry = Some(retry_on_5xx(2));
    let config = Config::default()
        .http("virtualOutbound", "9080")
        .routes(
            "9080",
            vec![
                vhost(
                    "ratings",
                    &["ratings:9080"],
                    vec![route("ratings", "/", to_ratings)],
                ),
                vhost(
                    "failing",
                    &["failing:9080"],
                    vec![route("failing", "/", to_failing)],
                ),
            ],
        )
        .cluster(Cluster::new(ratings_cluster), &[faulty])
        .cluster(Cluster::new(failing_cluster), &[failing]);
    let mut proxy = Proxy::start(config).await;
    let mut client = Client::connect(proxy.addr("virtualOutbound").await).await;
    for _ in 0..20 {
        let answer = client.get("ratings:9080", "/ratings/0", &[]).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let (_, stats) = proxy.admin("/stats").await;
    let retried = stat(
        &stats,
        &format!("cluster.{ratings_cluster}.upstream_rq_retry"),
    )
    .unwrap();
    assert!(
        retried > 0,
        "v-faulty fails half the time, so some requests were retried"
    );

    let answer = client
        .get("failing:9080", "/", &[("x-request-id", "give-up")])
        .await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (503, "always\n"),
        "the last upstream answer is passed on"
    );
    let line = proxy.log_line("give-up").await;
    assert!(line.contains(" 503 URX via_upstream "), "{line}");
    let (_, stats) = proxy.admin("/stats").await;
    assert_eq!(
        stat(
            &stats,
            &format!("cluster.{failing_cluster}.upstream_rq_retry")
        ),
        Some(2),
        "{stats}"
    );
    assert_eq!(
        stat(
            &stats,
            &format!("cluster.{failing_cluster}.upstream_rq_total")
        ),
        Some(3)
    );
}

#[tokio::test]
async fn istios_default_retries_step_over_an_endpoint_that_refuses_connections() {
    let mut cluster = Cluster::new(HTTPBIN);
    cluster.lb_policy = LbPolicy::RoundRobin;
    let endpoints = [dead().await, httpbin().await];
    let mut proxy = Proxy::start(config(
        cluster.clone(),
        &endpoints,
        Some(RetryPolicy::istio_default()),
        None,
    ))
    .await;
    let mut client = Client::connect(proxy.addr("virtualOutbound").await).await;
    for _ in 0..10 {
        assert_eq!(client.get("httpbin:8000", "/get", &[]).await.status, 200);
    }
    let (_, stats) = proxy.admin("/stats").await;
    assert!(
        stat(
            &stats,
            &format!("cluster.{HTTPBIN}.upstream_cx_connect_fail")
        )
        .unwrap()
            > 0
    );

    // Without retries the refused connection shows: 503 UF.
    proxy
        .apply(config(cluster, &endpoints[..1], None, None))
        .await;
    let answer = client
        .get("httpbin:8000", "/get", &[("x-request-id", "refused")])
        .await;
    assert_eq!(answer.status, 503);
    assert!(answer.body.starts_with("upstream connect error or disconnect/reset before headers. reset reason: remote connection failure"), "{}", answer.body);
    let line = proxy.log_line("refused").await;
    assert!(line.contains(" 503 UF upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused} - \"delayed connect error: Connection refused\""), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breakers_overflow_with_503_uo() {
    // The circuit-breaking task's DestinationRule.
    let mut cluster = Cluster::new(HTTPBIN);
    cluster.circuit_breakers = CircuitBreakers {
        max_connections: Some(1),
        max_pending_requests: Some(1),
        max_requests_per_connection: Some(1),
        ..CircuitBreakers::default()
    };
    let proxy = Proxy::start(config(cluster, &[httpbin().await], None, None)).await;
    let addr = proxy.addr("virtualOutbound").await;
    // `fortio load -c 3 -n 30 http://httpbin:8000/get`: three clients, ten requests
    // each, keep-alive.
    let clients: Vec<_> = (0..3)
        .map(|_| {
            tokio::spawn(async move {
                let mut client = Client::connect(addr).await;
                let mut codes = Vec::new();
                for _ in 0..10 {
                    let answer = client.get("httpbin:8000", "/get", &[]).await;
                    if answer.status == 503 {
                        assert_eq!(answer.headers["x-envoy-overloaded"], "true");
                    }
                    codes.push(answer.status);
                }
                codes
            })
        })
        .collect();
    let mut codes = Vec::new();
    for client in clients {
        codes.extend(client.await.unwrap());
    }
    let counts = tally(codes);
    let (_, stats) = proxy.admin("/stats").await;
    assert!(
        counts.contains_key(&200) && counts.contains_key(&503),
        "{counts:?}\n{stats}"
    );
    let pending: Vec<&str> = stats
        .lines()
        .filter(|l| l.contains("httpbin") && l.contains("pending"))
        .collect();
    for name in [
        "circuit_breakers.default.remaining_pending",
        "circuit_breakers.default.rq_pending_open",
        "circuit_breakers.high.rq_pending_open",
        "upstream_rq_pending_active",
        "upstream_rq_pending_failure_eject",
        "upstream_rq_pending_overflow",
        "upstream_rq_pending_total",
    ] {
        assert!(
            pending
                .iter()
                .any(|l| l.starts_with(&format!("cluster.{HTTPBIN}.{name}: "))),
            "{name} missing:\n{}",
            pending.join("\n")
        );
    }
    let overflow = stat(
        &stats,
        &format!("cluster.{HTTPBIN}.upstream_rq_pending_overflow"),
    )
    .unwrap();
    assert_eq!(
        overflow as usize, counts[&503],
        "every 503 was a pending overflow"
    );
}

#[tokio::test]
async fn outlier_detection_ejects_an_endpoint_that_keeps_failing() {
    let bad = always(503).await;
    let good = httpbin().await;
    let mut cluster = Cluster::new(HTTPBIN);
    cluster.lb_policy = LbPolicy::RoundRobin;
    cluster.outlier_detection = Some(OutlierDetection {
        consecutive_5xx: Some(1),
        consecutive_gateway_failure: None,
        interval: Duration::from_secs(1),
        base_ejection_time: Duration::from_secs(180),
        max_ejection_percent: 100,
        min_health_percent: 0,
    });
    let proxy = Proxy::start(config(cluster, &[bad, good], None, None)).await;
    let mut client = Client::connect(proxy.addr("virtualOutbound").await).await;
    let mut first = Vec::new();
    for _ in 0..2 {
        first.push(client.get("httpbin:8000", "/get", &[]).await.status);
    }
    assert!(
        first.contains(&503) && first.contains(&200),
        "round robin tried both: {first:?}"
    );
    for _ in 0..10 {
        assert_eq!(
            client.get("httpbin:8000", "/get", &[]).await.status,
            200,
            "the failing endpoint is ejected"
        );
    }
    let (_, clusters) = proxy.admin("/clusters").await;
    assert!(
        clusters.contains(&format!(
            "{HTTPBIN}::{bad}::health_flags::/failed_outlier_check"
        )),
        "{clusters}"
    );
    assert!(
        clusters.contains(&format!("{HTTPBIN}::{good}::health_flags::healthy")),
        "{clusters}"
    );
    let (_, stats) = proxy.admin("/stats").await;
    assert_eq!(
        stat(
            &stats,
            &format!("cluster.{HTTPBIN}.outlier_detection.ejections_active")
        ),
        Some(1)
    );
}

#[tokio::test]
async fn http2_upstreams_share_one_connection() {
    let mut cluster = Cluster::new(HTTPBIN);
    cluster.http2 = true;
    let proxy = Proxy::start(config(cluster, &[httpbin().await], None, None)).await;
    let addr = proxy.addr("virtualOutbound").await;
    let requests: Vec<_> = (0..8)
        .map(|_| tokio::spawn(async move { get(addr, "httpbin:8000", "/delay/0.1", &[]).await }))
        .collect();
    for request in requests {
        let answer = request.await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        // The authority arrives as HTTP/2's `:authority`.
        assert!(
            answer
                .body
                .contains("\"url\":\"http://httpbin:8000/delay/0.1\""),
            "{}",
            answer.body
        );
    }
    let (_, stats) = proxy.admin("/stats").await;
    assert_eq!(
        stat(&stats, &format!("cluster.{HTTPBIN}.upstream_cx_total")),
        Some(1),
        "{stats}"
    );
    assert_eq!(
        stat(&stats, &format!("cluster.{HTTPBIN}.upstream_rq_total")),
        Some(8)
    );
}
