//! Routing: header matches, weighted splits, no route, `block_all`, faults, and
//! the headers Istio's sidecars add.

use std::time::{Duration, Instant};

use meshlab_proxy_config::Cluster;
use meshlab_proxy_config::route::{
    ClusterSpecifier, Fault, FaultAbort, FaultDelay, HeaderOps, HeaderPair, Route, RouteAction,
    VirtualHost, WeightedCluster,
};

use crate::support::*;

const REVIEWS: &str = "reviews.default.svc.cluster.local";

/// Reviews v1 and v2 by weight.
fn split(v1: u32, v2: u32) -> RouteAction {
    let destination = |subset: &str, weight| WeightedCluster {
        name: outbound(9080, subset, REVIEWS),
        weight,
        request_headers: HeaderOps::default(),
        response_headers: HeaderOps::default(),
        host_rewrite: None,
    };
    RouteAction {
        cluster: ClusterSpecifier::Weighted(vec![destination("v1", v1), destination("v2", v2)]),
        ..to("unused")
    }
}

async fn bookinfo(routes: Vec<Route>) -> Config {
    let v1 = reviews("reviews-v1").await;
    let v2 = reviews("reviews-v2").await;
    Config::default()
        .http("virtualOutbound", "9080")
        .routes(
            "9080",
            vec![
                vhost(
                    "reviews.default.svc.cluster.local:9080",
                    &[
                        "reviews",
                        "reviews:9080",
                        "reviews.default.svc.cluster.local",
                    ],
                    routes,
                ),
                VirtualHost::block_all("MeshConfig outboundTrafficPolicy REGISTRY_ONLY"),
            ],
        )
        .cluster(Cluster::new(outbound(9080, "v1", REVIEWS)), &[v1])
        .cluster(Cluster::new(outbound(9080, "v2", REVIEWS)), &[v2])
}

/// Request headers of one case.
type Headers<'a> = &'a [(&'a str, &'a str)];

fn podname(answer: &Answer) -> String {
    serde_json::from_str::<serde_json::Value>(&answer.body).map_or_else(
        |_| answer.body.clone(),
        |json| json["podname"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn end_user_jason_goes_to_v2_and_everyone_else_to_v1() {
    let config = bookinfo(vec![
        header_route(
            "jason",
            "end-user",
            "jason",
            to(&outbound(9080, "v2", REVIEWS)),
        ),
        route("default", "/", to(&outbound(9080, "v1", REVIEWS))),
    ])
    .await;
    let mut proxy = Proxy::start(config).await;
    let addr = proxy.addr("virtualOutbound").await;
    let mut client = Client::connect(addr).await;
    // (authority, headers) → pod
    let cases: [(&str, Headers<'_>, &str); 5] = [
        ("reviews:9080", &[("end-user", "jason")], "reviews-v2"),
        ("reviews:9080", &[("end-user", "alice")], "reviews-v1"),
        ("reviews:9080", &[], "reviews-v1"),
        ("reviews", &[("end-user", "jason")], "reviews-v2"),
        ("reviews.default.svc.cluster.local", &[], "reviews-v1"),
    ];
    for (authority, headers, pod) in cases {
        for _ in 0..3 {
            let answer = client.get(authority, "/reviews/0", headers).await;
            assert_eq!(
                (answer.status, podname(&answer).as_str()),
                (200, pod),
                "{authority} {headers:?}"
            );
            assert_eq!(
                answer.headers["server"], "envoy",
                "outbound listeners answer as `envoy`"
            );
            assert!(answer.headers.contains_key("x-envoy-upstream-service-time"));
        }
    }
    // HTTP/2 from the client works the same way.
    let h2 = get_h2(addr, "reviews:9080", "/reviews/0").await;
    assert_eq!((h2.status, podname(&h2).as_str()), (200, "reviews-v1"));
    let line = proxy.log_line("\"GET /reviews/0 HTTP/2\"").await;
    assert!(line.contains(" 200 - via_upstream "), "{line}");
    assert!(
        line.contains(&format!("{} ", outbound(9080, "v1", REVIEWS))),
        "{line}"
    );
}

#[tokio::test]
async fn weights_split_the_traffic() {
    let mut proxy = Proxy::start(bookinfo(vec![route("split", "/", split(50, 50))]).await).await;
    let mut client = Client::connect(proxy.addr("virtualOutbound").await).await;
    let mut pods = Vec::new();
    for _ in 0..200 {
        pods.push(podname(
            &client.get("reviews:9080", "/reviews/0", &[]).await,
        ));
    }
    let counts = tally(pods);
    let v2 = counts.get("reviews-v2").copied().unwrap_or_default();
    assert_eq!(counts.values().sum::<usize>(), 200);
    // 50 % of 200 within ±30 (more than 4 standard deviations).
    assert!((70..=130).contains(&v2), "{counts:?}");

    // All to v2 after a configuration change, on the same connection.
    proxy
        .apply(bookinfo(vec![route("all-v2", "/", split(0, 100))]).await)
        .await;
    for _ in 0..20 {
        assert_eq!(
            podname(&client.get("reviews:9080", "/reviews/0", &[]).await),
            "reviews-v2"
        );
    }
}

#[tokio::test]
async fn unmatched_requests_get_envoys_answers() {
    // Listener "9080" has a `block_all` catch-all; listener "strict" has none.
    let httpbin = httpbin().await;
    let config = bookinfo(vec![route(
        "default",
        "/reviews",
        to(&outbound(9080, "v1", REVIEWS)),
    )])
    .await
    .http("strict", "strict")
    .routes(
        "strict",
        vec![vhost(
            "httpbin",
            &["httpbin:8000"],
            vec![route(
                "default",
                "/",
                to("outbound|8000||httpbin.default.svc.cluster.local"),
            )],
        )],
    )
    .cluster(
        Cluster::new("outbound|8000||httpbin.default.svc.cluster.local"),
        &[httpbin],
    )
    .http("norc", "missing");
    let mut proxy = Proxy::start(config).await;
    let outbound_addr = proxy.addr("virtualOutbound").await;
    let strict = proxy.addr("strict").await;
    let missing = proxy.addr("norc").await;
    // (listener, authority, path) → status, body, log fragment
    let cases = [
        (
            outbound_addr,
            "httpbin.org",
            "/headers",
            502,
            "",
            " 502 - direct_response - \"-\" 0 0 ",
        ),
        (
            outbound_addr,
            "reviews:9080",
            "/ratings",
            404,
            "",
            " 404 NR route_not_found ",
        ),
        (
            strict,
            "unknown:80",
            "/",
            404,
            "",
            " 404 NR route_not_found ",
        ),
        (
            missing,
            "anything",
            "/",
            404,
            "",
            " 404 NR route_not_found ",
        ),
    ];
    for (i, (addr, authority, path, status, body, logged)) in cases.into_iter().enumerate() {
        let id = format!("unmatched-{i}");
        let answer = get(addr, authority, path, &[("x-request-id", &id)]).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (status, body),
            "{authority}{path}"
        );
        let line = proxy.log_line(&id).await;
        assert!(line.contains(logged), "{authority}{path}: {line}");
    }
}

#[tokio::test]
async fn faults_abort_and_delay_as_configured() {
    let httpbin = httpbin().await;
    let cluster = "outbound|8000||httpbin.default.svc.cluster.local";
    let fault_route = |name: &str, fault: Fault| {
        let mut route = header_route(name, "x-fault", name, to(cluster));
        route.fault = Some(fault);
        route
    };
    let abort = |status| Fault {
        delay: None,
        abort: Some(FaultAbort {
            http_status: status,
            percent: 100.0,
        }),
    };
    let config = Config::default()
        .http("virtualOutbound", "8000")
        .routes(
            "8000",
            vec![vhost(
                "httpbin:8000",
                &["httpbin:8000"],
                vec![
                    fault_route("abort500", abort(500)),
                    fault_route("abort555", abort(555)),
                    fault_route(
                        "delay",
                        Fault {
                            delay: Some(FaultDelay {
                                fixed: Duration::from_millis(500),
                                percent: 100.0,
                            }),
                            abort: None,
                        },
                    ),
                    fault_route(
                        "never",
                        Fault {
                            delay: None,
                            abort: Some(FaultAbort {
                                http_status: 500,
                                percent: 0.0,
                            }),
                        },
                    ),
                ],
            )],
        )
        .cluster(Cluster::new(cluster), &[httpbin]);
    let mut proxy = Proxy::start(config).await;
    let addr = proxy.addr("virtualOutbound").await;
    // (x-fault) → status, body, flags, minimum and maximum duration
    let cases = [
        (
            "abort500",
            500,
            "fault filter abort",
            " 500 FI fault_filter_abort ",
            0,
            400,
        ),
        (
            "abort555",
            555,
            "fault filter abort",
            " 555 FI fault_filter_abort ",
            0,
            400,
        ),
        ("delay", 200, "", " 200 DI via_upstream ", 450, 1500),
        ("never", 200, "", " 200 - via_upstream ", 0, 400),
    ];
    for (fault, status, body, logged, min_ms, max_ms) in cases {
        let started = Instant::now();
        let answer = get(
            addr,
            "httpbin:8000",
            "/get",
            &[("x-fault", fault), ("x-request-id", fault)],
        )
        .await;
        let took = started.elapsed().as_millis();
        assert_eq!(answer.status, status, "{fault}");
        if !body.is_empty() {
            assert_eq!(answer.body, body, "{fault}");
            assert_eq!(answer.headers["content-type"], "text/plain");
        }
        assert!((min_ms..=max_ms).contains(&took), "{fault} took {took} ms");
        let line = proxy.log_line(&format!("\"{fault}\"")).await;
        assert!(line.contains(logged), "{fault}: {line}");
        assert!(
            line.ends_with(&format!(" {fault}")),
            "route name last: {line}"
        );
    }
}

#[tokio::test]
async fn sidecars_add_istios_request_headers() {
    let httpbin = httpbin().await;
    let cluster = "outbound|80||httpbin.org";
    let mut decorated = route("default", "/", to(cluster));
    decorated.decorator = Some("httpbin.org:80/*".to_owned());
    decorated
        .request_headers
        .set
        .push(HeaderPair::new("x-lab", "set-by-route").unwrap());
    let config = Config::default()
        .http("virtualOutbound", "80")
        .routes(
            "80",
            vec![vhost("httpbin.org:80", &["httpbin.org"], vec![decorated])],
        )
        .cluster(Cluster::new(cluster), &[httpbin]);
    let proxy = Proxy::start(config).await;
    let answer = get(
        proxy.addr("virtualOutbound").await,
        "httpbin.org",
        "/headers",
        &[],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let headers: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    let header = |name: &str| headers["headers"][name][0].as_str().map(str::to_owned);
    assert_eq!(
        header("X-Envoy-Decorator-Operation").as_deref(),
        Some("httpbin.org:80/*")
    );
    assert_eq!(header("X-Envoy-Attempt-Count").as_deref(), Some("1"));
    assert_eq!(header("X-Forwarded-Proto").as_deref(), Some("http"));
    assert_eq!(header("X-Lab").as_deref(), Some("set-by-route"));
    assert_eq!(header("Host").as_deref(), Some("httpbin.org"));
    let id = header("X-Request-Id").expect("a request id is generated");
    assert_eq!(id.len(), 36, "{id}");
}

#[tokio::test]
async fn redirects_rewrites_and_mirrors() {
    use std::sync::{Arc, Mutex};

    use meshlab_proxy_config::route::{Action, Mirror, PathRewrite, Redirect, RedirectPath};

    let httpbin = httpbin().await;
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let recorder = {
        let seen = seen.clone();
        serve(
            axum::Router::new().fallback(move |headers: http::HeaderMap| {
                let seen = seen.clone();
                async move {
                    let host = headers
                        .get("host")
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or_default();
                    seen.lock().unwrap().push(host.to_owned());
                    "recorded"
                }
            }),
        )
        .await
    };
    let cluster = "outbound|8000||httpbin.default.svc.cluster.local";
    let shadow = "outbound|8000||recorder.default.svc.cluster.local";
    let redirect = Route::new(
        "redirect",
        meshlab_proxy_config::route::RouteMatch::path(
            meshlab_proxy_config::route::PathMatch::Exact("/old".to_owned()),
        ),
        Action::Redirect(Redirect {
            scheme: None,
            host: None,
            port: None,
            path: Some(RedirectPath::Path("/new".to_owned())),
            response_code: 301,
        }),
    );
    let mut rewrite = to(cluster);
    rewrite.rewrite = Some(PathRewrite::Prefix("/anything/rewritten".to_owned()));
    rewrite.host_rewrite = Some("rewritten.example".to_owned());
    let mut mirrored = to(cluster);
    mirrored.mirrors = vec![Mirror {
        cluster: shadow.to_owned(),
        percent: 100.0,
    }];
    let config = Config::default()
        .http("virtualOutbound", "8000")
        .routes(
            "8000",
            vec![vhost(
                "httpbin:8000",
                &["httpbin:8000"],
                vec![
                    redirect,
                    route("rewrite", "/rewrite", rewrite),
                    route("mirror", "/", mirrored),
                ],
            )],
        )
        .cluster(Cluster::new(cluster), &[httpbin])
        .cluster(Cluster::new(shadow), &[recorder]);
    let proxy = Proxy::start(config).await;
    let addr = proxy.addr("virtualOutbound").await;

    let moved = get(addr, "httpbin:8000", "/old?x=1", &[]).await;
    assert_eq!(moved.status, 301);
    assert_eq!(moved.headers["location"], "http://httpbin:8000/new?x=1");

    let rewritten = get(addr, "httpbin:8000", "/rewrite/path", &[]).await;
    let seen_by_httpbin: serde_json::Value = serde_json::from_str(&rewritten.body).unwrap();
    assert_eq!(
        seen_by_httpbin["url"], "http://rewritten.example/anything/rewritten/path",
        "{}",
        rewritten.body
    );
    assert_eq!(
        seen_by_httpbin["headers"]["X-Envoy-Original-Path"][0],
        "/rewrite/path"
    );

    let answer = get(addr, "httpbin:8000", "/get", &[]).await;
    assert_eq!(answer.status, 200, "the primary answers, not the mirror");
    for _ in 0..100 {
        if !seen.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        *seen.lock().unwrap(),
        ["httpbin-shadow:8000"],
        "Envoy's shadow authority"
    );
}

#[tokio::test]
async fn consistent_hashing_keeps_a_user_on_one_endpoint() {
    use meshlab_proxy_config::LbPolicy;
    use meshlab_proxy_config::route::HashPolicy;

    let pods = [
        reviews("reviews-a").await,
        reviews("reviews-b").await,
        reviews("reviews-c").await,
    ];
    let cluster_name = outbound(9080, "", REVIEWS);
    let mut cluster = Cluster::new(cluster_name.clone());
    cluster.lb_policy = LbPolicy::RingHash;
    let mut action = to(&cluster_name);
    action.hash_policy = vec![HashPolicy::Header {
        name: "x-user".to_owned(),
    }];
    let config = Config::default()
        .http("virtualOutbound", "9080")
        .routes(
            "9080",
            vec![vhost(
                "reviews",
                &["reviews:9080"],
                vec![route("default", "/", action)],
            )],
        )
        .cluster(cluster, &pods);
    let proxy = Proxy::start(config).await;
    let mut client = Client::connect(proxy.addr("virtualOutbound").await).await;
    let mut owners = Vec::new();
    for user in ["jason", "alice", "bob", "carol", "dave", "erin"] {
        let pods: Vec<String> = {
            let mut pods = Vec::new();
            for _ in 0..5 {
                pods.push(podname(
                    &client
                        .get("reviews:9080", "/reviews/0", &[("x-user", user)])
                        .await,
                ));
            }
            pods
        };
        assert!(pods.iter().all(|pod| *pod == pods[0]), "{user}: {pods:?}");
        owners.push(pods[0].clone());
    }
    assert!(tally(owners).len() > 1, "users spread over endpoints");
}

#[tokio::test]
async fn a_client_that_leaves_early_is_logged_with_dc() {
    let httpbin = httpbin().await;
    let cluster = "outbound|8000||httpbin.default.svc.cluster.local";
    let mut delayed = route("delayed", "/", to(cluster));
    delayed.fault = Some(Fault {
        delay: Some(FaultDelay {
            fixed: Duration::from_secs(1),
            percent: 100.0,
        }),
        abort: None,
    });
    let config = Config::default()
        .http("virtualOutbound", "8000")
        .routes(
            "8000",
            vec![vhost("httpbin:8000", &["httpbin:8000"], vec![delayed])],
        )
        .cluster(Cluster::new(cluster), &[httpbin]);
    let mut proxy = Proxy::start(config).await;
    let addr = proxy.addr("virtualOutbound").await;
    // productpage gives up on reviews before the injected delay ends.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(200),
        get(addr, "httpbin:8000", "/get", &[("x-request-id", "gave-up")]),
    )
    .await;
    assert!(gave_up.is_err());
    let line = proxy.log_line("gave-up").await;
    assert!(
        line.contains("\"GET /get HTTP/1.1\" 0 DI,DC downstream_remote_disconnect "),
        "{line}"
    );
}
