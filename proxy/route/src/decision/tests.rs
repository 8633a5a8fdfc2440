//! Decisions as traffic: route + scripted dice → cluster, fault, rewrite, response.

use std::{collections::BTreeMap, time::Duration};

use http::HeaderMap;

use super::Verdict;
use crate::{
    action::{Action, ClusterSpecifier, Mirror, WeightedCluster},
    fault::{FAULT_ABORT_BODY, Fault, FaultAbort, FaultDelay},
    flags::ResponseFlag,
    header::{HeaderOps, HeaderPair},
    random::Sequence,
    retry::RetryPolicy,
    rewrite::{PathRewrite, Redirect, RedirectPath, RegexRewrite},
    route::Route,
    test_support::{Req, exact, forward_to, outcome, prefix, regex, to, weighted},
};

fn route_to(cluster: ClusterSpecifier) -> Route {
    Route::new("r", prefix("/"), Action::Route(forward_to(cluster)))
}

/// How many of `draws` requests go to each cluster.
fn split(route: &Route, draws: impl IntoIterator<Item = u64>) -> BTreeMap<String, usize> {
    let request = Req::get("reviews:9080", "/reviews/0");
    let draws: Vec<u64> = draws.into_iter().collect();
    let mut rng = Sequence::new(draws.clone());
    let mut counts = BTreeMap::new();
    for _ in &draws {
        *counts
            .entry(outcome(&route.decide(&request.head(), &mut rng)))
            .or_default() += 1;
    }
    counts
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs
        .iter()
        .map(|(name, count)| ((*name).to_owned(), *count))
        .collect()
}

#[test]
fn weights_split_traffic_by_cumulative_ranges() {
    // virtual-service-reviews-50-v3.yaml and a 90/10 canary.
    let fifty = route_to(weighted(&[("v1", 50), ("v3", 50)]));
    let ninety = route_to(weighted(&[("v1", 90), ("v2", 10)]));
    let table = [
        (
            &fifty,
            vec![0, 49, 50, 99, 100, 149, 150],
            counts(&[("v1", 4), ("v3", 3)]),
        ),
        (
            &fifty,
            (0..100).collect(),
            counts(&[("v1", 50), ("v3", 50)]),
        ),
        (
            &ninety,
            (0..100).collect(),
            counts(&[("v1", 90), ("v2", 10)]),
        ),
        (
            &ninety,
            vec![89, 90, 99, 189, 190],
            counts(&[("v1", 2), ("v2", 3)]),
        ),
    ];
    for (route, draws, expected) in table {
        assert_eq!(split(route, draws.clone()), expected, "{draws:?}");
    }
}

#[test]
fn weights_need_not_sum_to_one_hundred_and_zero_is_never_picked() {
    let uneven = route_to(weighted(&[("a", 1), ("b", 3)]));
    assert_eq!(split(&uneven, 0..400), counts(&[("a", 100), ("b", 300)]));

    let with_zero = route_to(weighted(&[("never", 0), ("v1", 100), ("also-never", 0)]));
    assert_eq!(split(&with_zero, 0..1000), counts(&[("v1", 1000)]));
}

#[test]
fn a_single_cluster_draws_nothing() {
    let route = Route::new(
        "r",
        prefix("/"),
        to("outbound|9080||reviews.default.svc.cluster.local"),
    );
    let request = Req::get("reviews:9080", "/");
    let mut rng = Sequence::new([7]);
    let decision = route.decide(&request.head(), &mut rng);
    assert_eq!(
        outcome(&decision),
        "outbound|9080||reviews.default.svc.cluster.local"
    );
    assert_eq!(rng.drawn(), 0);
    assert!(decision.flags.is_empty());
}

#[test]
fn zero_total_weight_is_cluster_not_found() {
    let route = route_to(weighted(&[("a", 0)]));
    let request = Req::get("h", "/");
    let decision = route.decide(&request.head(), &mut Sequence::new([0]));
    assert_eq!(outcome(&decision), "respond 503 \"\"");
    assert!(decision.flags.contains(ResponseFlag::NoClusterFound));
}

fn faulty(delay: Option<f64>, abort: Option<f64>) -> Route {
    let mut route = Route::new("ratings", prefix("/"), to("ratings-v1"));
    route.fault = Some(Fault {
        delay: delay.map(|percent| FaultDelay {
            fixed: Duration::from_secs(7),
            percent,
        }),
        abort: abort.map(|percent| FaultAbort {
            http_status: 500,
            percent,
        }),
    });
    route
}

#[test]
fn faults_delay_abort_and_flag() {
    let request = Req::get("ratings:9080", "/ratings/0");
    let table = [
        // (route, draws, delay, outcome, flags)
        (
            faulty(Some(100.0), None),
            vec![0],
            Some(7),
            "ratings-v1",
            "DI",
        ),
        (faulty(Some(0.0), None), vec![0], None, "ratings-v1", "-"),
        (faulty(None, Some(100.0)), vec![0], None, "abort 500", "FI"),
        (faulty(None, Some(0.0)), vec![0], None, "ratings-v1", "-"),
        (
            faulty(None, Some(50.0)),
            vec![499_999],
            None,
            "abort 500",
            "FI",
        ),
        (
            faulty(None, Some(50.0)),
            vec![500_000],
            None,
            "ratings-v1",
            "-",
        ),
        (
            faulty(Some(100.0), Some(100.0)),
            vec![0, 0],
            Some(7),
            "abort 500",
            "DI,FI",
        ),
        (
            faulty(Some(50.0), Some(50.0)),
            vec![999_999, 0],
            None,
            "abort 500",
            "FI",
        ),
    ];
    for (route, draws, delay, expected, flags) in table {
        let decision = route.decide(&request.head(), &mut Sequence::new(draws.clone()));
        assert_eq!(decision.delay, delay.map(Duration::from_secs), "{draws:?}");
        assert_eq!(outcome(&decision), expected, "{draws:?}");
        assert_eq!(decision.flags.to_string(), flags, "{draws:?}");
    }
    assert_eq!(FAULT_ABORT_BODY, "fault filter abort");
}

#[test]
fn fault_percentages_over_many_requests() {
    let request = Req::get("ratings:9080", "/ratings/0");
    let route = faulty(None, Some(50.0));
    let mut rng = Sequence::new((0..1000).map(|i| i * 1000).collect::<Vec<u64>>());
    let aborted = (0..1000)
        .filter(|_| {
            matches!(
                route.decide(&request.head(), &mut rng).verdict,
                Verdict::Abort { .. }
            )
        })
        .count();
    assert_eq!(aborted, 500);
}

#[test]
fn draw_order_is_cluster_then_faults_then_mirrors() {
    let mut action = forward_to(weighted(&[("v1", 50), ("v2", 50)]));
    action.mirrors = vec![Mirror {
        cluster: "shadow".to_owned(),
        percent: 50.0,
    }];
    let mut route = Route::new("r", prefix("/"), Action::Route(action));
    route.fault = faulty(Some(50.0), Some(50.0)).fault;
    let request = Req::get("h", "/");

    // cluster 60 → v2; delay 0 → yes; abort 999_999 → no; mirror 0 → yes.
    let mut rng = Sequence::new([60, 0, 999_999, 0]);
    let decision = route.decide(&request.head(), &mut rng);
    assert_eq!(rng.drawn(), 4);
    assert_eq!(decision.delay, Some(Duration::from_secs(7)));
    let Verdict::Forward(forward) = decision.verdict else {
        panic!("expected forward, got {:?}", decision.verdict)
    };
    assert_eq!(forward.cluster, "v2");
    assert_eq!(forward.mirrors, ["shadow"]);

    // An aborted request is not mirrored: no mirror draw.
    let mut rng = Sequence::new([0, 999_999, 0, 0]);
    let decision = route.decide(&request.head(), &mut rng);
    assert_eq!(outcome(&decision), "abort 500");
    assert_eq!(rng.drawn(), 3);
}

#[test]
fn mirror_percentages() {
    let mut action = forward_to(ClusterSpecifier::Cluster("httpbin-v1".to_owned()));
    action.mirrors = vec![
        Mirror {
            cluster: "httpbin-v2".to_owned(),
            percent: 100.0,
        },
        Mirror {
            cluster: "sometimes".to_owned(),
            percent: 25.0,
        },
        Mirror {
            cluster: "never".to_owned(),
            percent: 0.0,
        },
    ];
    let route = Route::new("r", prefix("/"), Action::Route(action));
    let request = Req::get("httpbin:8000", "/headers");
    let mut rng = Sequence::new((0..400).map(|i| i * 2500).collect::<Vec<u64>>());
    let mut mirrored: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..400 {
        // Three draws per request, one per mirror; 3 and 400 are coprime, so each
        // mirror sees each of the 400 evenly spread values once.
        let Verdict::Forward(forward) = route.decide(&request.head(), &mut rng).verdict else {
            panic!("forward expected")
        };
        for cluster in forward.mirrors {
            *mirrored.entry(cluster).or_default() += 1;
        }
    }
    assert_eq!(mirrored.get("httpbin-v2"), Some(&400));
    assert_eq!(mirrored.get("never"), None);
    assert_eq!(mirrored.get("sometimes"), Some(&100), "25 % of 400");
}

/// The forwarded path and authority for `request` on `route`.
fn forwarded(route: &Route, request: &Req) -> (String, String) {
    let head = request.head();
    let Verdict::Forward(forward) = route.decide(&head, &mut Sequence::new([0])).verdict else {
        panic!("forward expected")
    };
    (
        forward
            .path_and_query
            .unwrap_or_else(|| head.path_and_query.to_owned()),
        forward.authority.unwrap_or(head.authority).to_owned(),
    )
}

fn rewriting(matcher: crate::matcher::RouteMatch, rewrite: PathRewrite) -> Route {
    let mut action = forward_to(ClusterSpecifier::Cluster("c".to_owned()));
    action.rewrite = Some(rewrite);
    Route::new("r", matcher, Action::Route(action))
}

#[test]
fn prefix_rewrite_swaps_the_matched_prefix_as_envoy_does() {
    let to_prefix = |rewrite: &str| PathRewrite::Prefix(rewrite.to_owned());
    let table = [
        (
            rewriting(prefix("/api"), to_prefix("/v1/api")),
            "/api",
            "/v1/api",
        ),
        (
            rewriting(prefix("/api"), to_prefix("/v1/api")),
            "/api/users?id=1",
            "/v1/api/users?id=1",
        ),
        (
            rewriting(prefix("/api"), to_prefix("/v1/api")),
            "/apis",
            "/v1/apis",
        ),
        // Envoy's documented gotcha: slashes are not adjusted.
        (
            rewriting(prefix("/prefix"), to_prefix("/")),
            "/prefix/etc",
            "//etc",
        ),
        (
            rewriting(prefix("/prefix/"), to_prefix("/")),
            "/prefix/etc",
            "/etc",
        ),
        (
            rewriting(prefix("/"), to_prefix("/new/")),
            "/old",
            "/new/old",
        ),
        // Exact and regex routes swap the whole path; the query stays.
        (
            rewriting(exact("/productpage"), to_prefix("/")),
            "/productpage?u=1",
            "/?u=1",
        ),
        (
            rewriting(regex("/reviews/[0-9]+"), to_prefix("/r")),
            "/reviews/7",
            "/r",
        ),
        // Case-insensitive prefix: the matched length is swapped.
        (
            {
                let mut route = rewriting(prefix("/API"), to_prefix("/v2"));
                route.matcher.ignore_case = true;
                route
            },
            "/api/x",
            "/v2/x",
        ),
    ];
    for (route, path, expected) in table {
        let request = Req::get("h", path);
        assert_eq!(forwarded(&route, &request).0, expected, "{path}");
    }
}

#[test]
fn regex_rewrite_replaces_every_match_in_the_path_only() {
    let rewrite = |pattern: &str, substitution: &str| {
        PathRewrite::Regex(RegexRewrite::new(pattern, substitution).unwrap())
    };
    let table = [
        (
            rewrite("^/service/([^/]+)(/.*)$", "\\2/instance/\\1"),
            "/service/foo/v1/api",
            "/v1/api/instance/foo",
        ),
        (
            rewrite("one", "two"),
            "/xxx/one/yyy/one/zzz",
            "/xxx/two/yyy/two/zzz",
        ),
        (
            rewrite("^(.*?)one(.*)$", "\\1two\\2"),
            "/xxx/one/yyy/one/zzz",
            "/xxx/two/yyy/one/zzz",
        ),
        (
            rewrite("(?i)/aaa/XxX/", "/aaa/yyy/"),
            "/aaa/XxX/bbb",
            "/aaa/yyy/bbb",
        ),
        (rewrite("a", "$1"), "/a?a=1", "/$1?a=1"),
        (rewrite("^/old", "\\\\new"), "/old/x", "\\new/x"),
    ];
    for (rewrite, path, expected) in table {
        let route = rewriting(prefix("/"), rewrite);
        let request = Req::get("h", path);
        assert_eq!(forwarded(&route, &request).0, expected, "{path}");
    }
}

#[test]
fn host_rewrite_route_level_wins_over_destination_level() {
    let destination = |host_rewrite: Option<&str>| WeightedCluster {
        name: "ext".to_owned(),
        weight: 1,
        request_headers: HeaderOps::default(),
        response_headers: HeaderOps::default(),
        host_rewrite: host_rewrite.map(str::to_owned),
    };
    let route_with = |route_level: Option<&str>, destination_level: Option<&str>| {
        let mut action = forward_to(ClusterSpecifier::Weighted(vec![destination(
            destination_level,
        )]));
        action.host_rewrite = route_level.map(str::to_owned);
        Route::new("r", prefix("/"), Action::Route(action))
    };
    let table = [
        (route_with(None, None), "httpbin.org"),
        (route_with(Some("route.example"), None), "route.example"),
        (route_with(None, Some("dest.example")), "dest.example"),
        (
            route_with(Some("route.example"), Some("dest.example")),
            "route.example",
        ),
    ];
    let request = Req::get("httpbin.org", "/get");
    for (route, expected) in table {
        assert_eq!(forwarded(&route, &request).1, expected);
    }
}

#[test]
fn redirect_locations_follow_envoy() {
    let redirect = |change: fn(&mut Redirect)| {
        let mut redirect = Redirect::moved_permanently();
        change(&mut redirect);
        redirect
    };
    let table = [
        // (redirect, route match, request scheme, authority, path, location)
        (
            redirect(|r| r.path = Some(RedirectPath::Path("/v1/bookRatings".to_owned()))),
            prefix("/v1/getProductRatings"),
            "http",
            "ratings:9080",
            "/v1/getProductRatings?id=1",
            "http://ratings:9080/v1/bookRatings?id=1",
        ),
        (
            redirect(|r| r.host = Some("newratings.default.svc.cluster.local".to_owned())),
            prefix("/"),
            "http",
            "ratings:9080",
            "/ratings/0",
            "http://newratings.default.svc.cluster.local/ratings/0",
        ),
        (
            redirect(|r| r.scheme = Some("https".to_owned())),
            prefix("/"),
            "http",
            "bookinfo.com:80",
            "/productpage",
            "https://bookinfo.com/productpage",
        ),
        (
            redirect(|r| r.scheme = Some("https".to_owned())),
            prefix("/"),
            "http",
            "bookinfo.com:8080",
            "/productpage",
            "https://bookinfo.com:8080/productpage",
        ),
        (
            redirect(|r| r.port = Some(8443)),
            prefix("/"),
            "http",
            "bookinfo.com:8080",
            "/",
            "http://bookinfo.com:8443/",
        ),
        (
            redirect(|r| {
                r.host = Some("other.example".to_owned());
                r.port = Some(9000);
            }),
            prefix("/"),
            "http",
            "bookinfo.com",
            "/a",
            "http://other.example:9000/a",
        ),
        (
            redirect(|r| r.path = Some(RedirectPath::Path("/new?fixed=1".to_owned()))),
            prefix("/"),
            "http",
            "h",
            "/old?dropped=1",
            "http://h/new?fixed=1",
        ),
        (
            redirect(|r| r.path = Some(RedirectPath::Prefix("/v2".to_owned()))),
            prefix("/v1"),
            "http",
            "h",
            "/v1/items?x=1",
            "http://h/v2/items?x=1",
        ),
        (
            redirect(|r| r.path = Some(RedirectPath::Path("relative".to_owned()))),
            prefix("/"),
            "https",
            "h:443",
            "/",
            "https://h:443/relative",
        ),
    ];
    for (redirect, matcher, scheme, authority, path, location) in table {
        let route = Route::new("redirect", matcher, Action::Redirect(redirect));
        let request = Req::get(authority, path).scheme(scheme);
        let decision = route.decide(&request.head(), &mut Sequence::default());
        assert_eq!(
            outcome(&decision),
            format!("301 {location}"),
            "{authority}{path}"
        );
    }

    let mut found = Redirect::moved_permanently();
    found.response_code = 302;
    let route = Route::new("r", prefix("/"), Action::Redirect(found));
    let request = Req::get("h", "/x");
    assert_eq!(
        outcome(&route.decide(&request.head(), &mut Sequence::default())),
        "302 http://h/x"
    );
}

#[test]
fn direct_responses_and_the_block_all_host() {
    let block_all = crate::virtual_host::VirtualHost::block_all("REGISTRY_ONLY");
    let request = Req::get("httpbin.org", "/headers");
    let decision = block_all.routes[0].decide(&request.head(), &mut Sequence::default());
    assert_eq!(outcome(&decision), "respond 502 \"\"");

    let direct = Route::new(
        "r",
        prefix("/"),
        Action::Direct {
            status: 503,
            body: "unavailable".to_owned(),
        },
    );
    assert_eq!(
        outcome(&direct.decide(&request.head(), &mut Sequence::default())),
        "respond 503 \"unavailable\""
    );

    let non_forwarding = Route::new("r", prefix("/"), Action::NonForwarding);
    assert_eq!(
        outcome(&non_forwarding.decide(&request.head(), &mut Sequence::default())),
        "non-forwarding"
    );
}

#[test]
fn forward_carries_timeout_retry_and_header_plans() {
    let mut action = forward_to(ClusterSpecifier::Weighted(vec![WeightedCluster {
        name: "v2".to_owned(),
        weight: 100,
        request_headers: HeaderOps {
            set: vec![HeaderPair::new("x-who", "destination").unwrap()],
            ..HeaderOps::default()
        },
        response_headers: HeaderOps::default(),
        host_rewrite: None,
    }]));
    action.timeout = Some(Duration::from_millis(500));
    action.retry = Some(RetryPolicy::istio_default());
    let mut route = Route::new("r", prefix("/"), Action::Route(action));
    route.request_headers.set = vec![HeaderPair::new("x-who", "route").unwrap()];
    route.response_headers.add = vec![HeaderPair::new("x-served-by", "meshlab").unwrap()];

    let request = Req::get("reviews:9080", "/");
    let Verdict::Forward(forward) = route
        .decide(&request.head(), &mut Sequence::new([0]))
        .verdict
    else {
        panic!("forward expected")
    };
    assert_eq!(forward.timeout, Some(Duration::from_millis(500)));
    assert_eq!(forward.retry.map(|retry| retry.num_retries), Some(2));
    assert_eq!(forward.path_and_query, None);
    assert_eq!(forward.authority, None);

    let mut upstream = HeaderMap::new();
    forward.request_headers.apply(&mut upstream);
    assert_eq!(upstream["x-who"], "route");
    let mut downstream = HeaderMap::new();
    forward.response_headers.apply(&mut downstream);
    assert_eq!(downstream["x-served-by"], "meshlab");
}
