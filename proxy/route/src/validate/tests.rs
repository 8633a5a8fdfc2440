use std::time::Duration;

use http::HeaderName;

use super::Problem;
use crate::{
    action::{Action, ClusterSpecifier, Mirror},
    domain::Domain,
    fault::{Fault, FaultAbort, FaultDelay},
    retry::{Backoff, RetryPolicy},
    rewrite::Redirect,
    route::Route,
    route_configuration::RouteConfiguration,
    test_support::{forward_to, prefix, to, weighted},
    virtual_host::VirtualHost,
};

fn host(name: &str, domains: &[&str], routes: Vec<Route>) -> VirtualHost {
    VirtualHost {
        name: name.to_owned(),
        domains: domains.iter().map(|domain| Domain::new(domain)).collect(),
        routes,
        origin: String::new(),
    }
}

fn config(virtual_hosts: Vec<VirtualHost>) -> RouteConfiguration {
    RouteConfiguration {
        name: "9080".to_owned(),
        virtual_hosts,
        ignore_port_in_host_matching: false,
    }
}

fn with_route(route: Route) -> RouteConfiguration {
    config(vec![host("reviews", &["reviews"], vec![route])])
}

fn problem(config: &RouteConfiguration) -> Option<Problem> {
    config.validate().err().map(|error| error.problem)
}

#[test]
fn valid_configurations_pass() {
    let config = config(vec![
        host(
            "reviews",
            &["reviews", "reviews:9080"],
            vec![Route::new("r", prefix("/"), to("c"))],
        ),
        VirtualHost::allow_any("ALLOW_ANY"),
    ]);
    assert!(config.validate().is_ok());
    assert!(
        with_route(Route::new(
            "r",
            prefix("/"),
            Action::Route(forward_to(weighted(&[("a", 0), ("b", 1)])))
        ))
        .validate()
        .is_ok()
    );
}

#[test]
fn domains_are_unique_per_configuration() {
    let table = [
        (
            config(vec![
                host("a", &["reviews"], vec![]),
                host("b", &["Reviews"], vec![]),
            ]),
            Some(Problem::DuplicateDomain {
                domain: "reviews".to_owned(),
                first: "a".to_owned(),
            }),
        ),
        (
            config(vec![
                VirtualHost::allow_any("x"),
                VirtualHost::block_all("y"),
            ]),
            Some(Problem::DuplicateDomain {
                domain: "*".to_owned(),
                first: "allow_any".to_owned(),
            }),
        ),
        (
            config(vec![host("a", &[], vec![])]),
            Some(Problem::NoDomains),
        ),
        (
            config(vec![
                host("a", &["reviews"], vec![]),
                host("b", &["reviews:9080"], vec![]),
            ]),
            None,
        ),
    ];
    for (config, expected) in table {
        assert_eq!(problem(&config), expected);
    }
}

#[test]
fn routes_envoy_would_reject() {
    let route = |action: Action| Route::new("r", prefix("/"), action);
    let with_fault = |fault: Fault| {
        let mut route = route(to("c"));
        route.fault = Some(fault);
        route
    };
    let with_action = |change: fn(&mut crate::action::RouteAction)| {
        let mut action = forward_to(ClusterSpecifier::Cluster("c".to_owned()));
        change(&mut action);
        route(Action::Route(action))
    };
    let mut found = Redirect::moved_permanently();
    found.response_code = 304;
    let mut host_header = route(to("c"));
    host_header.request_headers.remove = vec![HeaderName::from_static("host")];

    let table = [
        (route(to("")), Problem::EmptyClusterName),
        (
            route(Action::Route(forward_to(weighted(&[("a", 0), ("b", 0)])))),
            Problem::ZeroTotalWeight,
        ),
        (
            route(Action::Route(forward_to(weighted(&[])))),
            Problem::ZeroTotalWeight,
        ),
        (route(Action::Redirect(found)), Problem::RedirectCode(304)),
        (
            route(Action::Direct {
                status: 99,
                body: String::new(),
            }),
            Problem::Status {
                what: "direct response",
                status: 99,
            },
        ),
        (
            with_fault(Fault {
                delay: None,
                abort: Some(FaultAbort {
                    http_status: 600,
                    percent: 100.0,
                }),
            }),
            Problem::Status {
                what: "fault abort",
                status: 600,
            },
        ),
        (
            with_fault(Fault {
                delay: Some(FaultDelay {
                    fixed: Duration::from_secs(1),
                    percent: 100.5,
                }),
                abort: None,
            }),
            Problem::Percent {
                what: "fault delay",
                percent: 100.5,
            },
        ),
        (
            with_action(|action| {
                action.mirrors = vec![Mirror {
                    cluster: "m".to_owned(),
                    percent: -1.0,
                }];
            }),
            Problem::Percent {
                what: "mirror",
                percent: -1.0,
            },
        ),
        (
            with_action(|action| {
                let mut retry = RetryPolicy::istio_default();
                retry.backoff = Backoff {
                    base: Duration::from_millis(100),
                    max: Duration::from_millis(10),
                };
                action.retry = Some(retry);
            }),
            Problem::Backoff,
        ),
        (host_header, Problem::HostHeader("host".to_owned())),
    ];
    for (route, expected) in table {
        assert_eq!(problem(&with_route(route)), Some(expected));
    }
}

#[test]
fn errors_say_where() {
    let mut route = Route::new("reviews-v4", prefix("/"), to(""));
    route.origin = "VirtualService/default/reviews#0".to_owned();
    let config = config(vec![host(
        "reviews.default.svc.cluster.local:9080",
        &["reviews"],
        vec![Route::new("", prefix("/x"), to("ok")), route],
    )]);
    assert_eq!(
        config.validate().unwrap_err().to_string(),
        "route configuration \"9080\", virtual host \"reviews.default.svc.cluster.local:9080\", \
         route #1 \"reviews-v4\" (VirtualService/default/reviews#0): route forwards to a cluster with an empty name"
    );
}
