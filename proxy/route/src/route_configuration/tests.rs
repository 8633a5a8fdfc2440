//! Selection as traffic: authority and request → virtual host and route.

use super::RouteConfiguration;
use crate::{
    domain::Domain,
    matcher::{HeaderMatch, HeaderMatcher},
    route::Route,
    test_support::{Req, exact, prefix, regex, to},
    virtual_host::VirtualHost,
};

fn host(name: &str, domains: &[&str]) -> VirtualHost {
    VirtualHost {
        name: name.to_owned(),
        domains: domains.iter().map(|domain| Domain::new(domain)).collect(),
        routes: vec![Route::new("default", prefix("/"), to(name))],
        origin: String::new(),
    }
}

fn config(virtual_hosts: Vec<VirtualHost>) -> RouteConfiguration {
    RouteConfiguration {
        name: "80".to_owned(),
        virtual_hosts,
        ignore_port_in_host_matching: false,
    }
}

/// The name of the virtual host chosen for `authority`, or `-`.
fn chosen(config: &RouteConfiguration, authority: &str) -> String {
    let request = Req::get(authority, "/");
    config.select(&request.head()).map_or_else(
        || "-".to_owned(),
        |selected| selected.virtual_host.name.clone(),
    )
}

#[test]
fn domain_precedence_exact_then_suffix_then_prefix_then_any() {
    let config = config(vec![
        host("any", &["*"]),
        host("prefix-short", &["foo.*"]),
        host("prefix-long", &["foo.bar.*"]),
        host("suffix-short", &["*.com"]),
        host("suffix-long", &["*.example.com"]),
        host("exact", &["www.example.com"]),
    ]);
    let table = [
        ("www.example.com", "exact"),
        ("WWW.Example.COM", "exact"),
        ("api.example.com", "suffix-long"),
        ("foo.example.com", "suffix-long"),
        ("other.com", "suffix-short"),
        ("foo.bar.org", "prefix-long"),
        ("foo.org", "prefix-short"),
        // A suffix wildcard beats a prefix wildcard whatever their lengths.
        ("foo.bar.com", "suffix-short"),
        ("elsewhere.org", "any"),
        ("", "any"),
    ];
    for (authority, expected) in table {
        assert_eq!(chosen(&config, authority), expected, "{authority:?}");
    }
}

#[test]
fn wildcards_never_match_the_empty_string() {
    let config = config(vec![
        host("suffix", &["*.foo.com"]),
        host("prefix", &["foo.*"]),
    ]);
    let table = [
        ("a.foo.com", "suffix"),
        (".foo.com", "-"),
        ("foo", "-"),
        ("foo.x", "prefix"),
        ("foo.", "-"),
    ];
    for (authority, expected) in table {
        assert_eq!(chosen(&config, authority), expected, "{authority:?}");
    }
}

#[test]
fn ports_are_part_of_the_authority() {
    // As Istio emits a sidecar's "9080" route configuration: every name of the
    // service, with and without the port.
    let config = config(vec![
        host(
            "reviews.default.svc.cluster.local:9080",
            &[
                "reviews.default.svc.cluster.local",
                "reviews.default.svc.cluster.local:9080",
                "reviews",
                "reviews:9080",
                "reviews.default.svc",
                "reviews.default.svc:9080",
                "reviews.default",
                "reviews.default:9080",
            ],
        ),
        host("only-with-port", &["ratings:9080"]),
        host("gateway", &["bookinfo.com", "bookinfo.com:*"]),
    ]);
    let table = [
        ("reviews", "reviews.default.svc.cluster.local:9080"),
        ("reviews:9080", "reviews.default.svc.cluster.local:9080"),
        (
            "reviews.default:9080",
            "reviews.default.svc.cluster.local:9080",
        ),
        ("reviews:9081", "-"),
        ("ratings:9080", "only-with-port"),
        // Envoy does not retry without the port.
        ("ratings", "-"),
        ("bookinfo.com", "gateway"),
        ("bookinfo.com:8080", "gateway"),
    ];
    for (authority, expected) in table {
        assert_eq!(chosen(&config, authority), expected, "{authority:?}");
    }
}

#[test]
fn ignore_port_in_host_matching_strips_the_port() {
    let mut config = config(vec![
        host("httpbin", &["httpbin.example.com"]),
        host("v6", &["[::1]"]),
    ]);
    config.ignore_port_in_host_matching = true;
    let table = [
        ("httpbin.example.com:8080", "httpbin"),
        ("httpbin.example.com", "httpbin"),
        ("[::1]:80", "v6"),
        ("[::1]", "v6"),
    ];
    for (authority, expected) in table {
        assert_eq!(chosen(&config, authority), expected, "{authority:?}");
    }
}

#[test]
fn first_matching_route_wins_and_no_fallthrough_to_other_hosts() {
    let mut reviews = host("reviews", &["reviews"]);
    reviews.routes = vec![
        Route::new("exact", exact("/reviews/0"), to("exact")),
        Route::new("regex", regex("/reviews/[0-9]+"), to("regex")),
        Route::new("prefix", prefix("/reviews"), to("prefix")),
        Route::new("shadowed", exact("/reviews/1"), to("never")),
    ];
    let config = config(vec![reviews, host("any", &["*"])]);
    let table = [
        ("/reviews/0", Some("exact")),
        ("/reviews/1", Some("regex")),
        ("/reviews/x", Some("prefix")),
        // The virtual host matched; its routes did not: 404, not the "*" host.
        ("/ratings", None),
    ];
    for (path, expected) in table {
        let request = Req::get("reviews", path);
        let selected = config.select(&request.head());
        assert_eq!(
            selected.map(|selected| selected.route.name.as_str()),
            expected,
            "{path}"
        );
    }
}

#[test]
fn bookinfo_reviews_test_v2_routes_jason_to_v2() {
    // virtual-service-reviews-test-v2.yaml: end-user exact jason → v2, else v1.
    let mut reviews = host(
        "reviews.default.svc.cluster.local:9080",
        &["reviews", "reviews:9080"],
    );
    let jason = prefix("/").with_header(HeaderMatcher::new(
        "end-user",
        HeaderMatch::Exact("jason".to_owned()),
    ));
    let mut v2 = Route::new(
        "",
        jason,
        to("outbound|9080|v2|reviews.default.svc.cluster.local"),
    );
    v2.origin = "VirtualService/default/reviews#0".to_owned();
    let mut v1 = Route::new(
        "",
        prefix("/"),
        to("outbound|9080|v1|reviews.default.svc.cluster.local"),
    );
    v1.origin = "VirtualService/default/reviews#1".to_owned();
    reviews.routes = vec![v2, v1];
    let config = config(vec![reviews]);

    let table = [
        (
            Req::get("reviews:9080", "/reviews/0").header("end-user", "jason"),
            "#0",
        ),
        (
            Req::get("reviews:9080", "/reviews/0").header("end-user", "tom"),
            "#1",
        ),
        (
            Req::get("reviews:9080", "/reviews/0").header("end-user", "Jason"),
            "#1",
        ),
        (Req::get("reviews:9080", "/reviews/0"), "#1"),
    ];
    for (request, origin_suffix) in table {
        let selected = config.select(&request.head()).expect("a route");
        assert!(
            selected.route.origin.ends_with(origin_suffix),
            "{}",
            selected.route.origin
        );
    }
}

#[test]
fn catch_all_virtual_hosts_lose_to_every_service() {
    let config = config(vec![
        host("reviews", &["reviews:9080"]),
        VirtualHost::block_all("MeshConfig outboundTrafficPolicy REGISTRY_ONLY"),
    ]);
    assert_eq!(chosen(&config, "reviews:9080"), "reviews");
    assert_eq!(chosen(&config, "httpbin.org"), "block_all");
}

#[test]
fn configurations_round_trip_through_json() {
    let mut config = config(vec![host(
        "reviews",
        &["reviews", "*.reviews", "reviews:*"],
    )]);
    config.virtual_hosts.push(VirtualHost::allow_any(
        "MeshConfig outboundTrafficPolicy ALLOW_ANY",
    ));
    let json = serde_json::to_value(&config).unwrap();
    assert_eq!(
        json["virtual_hosts"][0]["domains"],
        serde_json::json!(["reviews", "*.reviews", "reviews:*"])
    );
    assert_eq!(
        json["virtual_hosts"][1]["routes"][0]["action"]["route"]["cluster"]["cluster"],
        "PassthroughCluster"
    );
    let back: RouteConfiguration = serde_json::from_value(json).unwrap();
    assert_eq!(back, config);
}
