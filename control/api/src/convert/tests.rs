//! Every model value survives the trip over the wire; every message that describes
//! no valid value is refused with the path to the problem.

use std::{collections::BTreeMap, time::Duration};

use http::HeaderName;
use meshlab_proxy_config::{
    Authorization, ChainMatch, CircuitBreakers, Cluster, ClusterLoadAssignment, DiscoveryType,
    DownstreamTls, Endpoint, EndpointAddress, FilterChain, HttpConnectionManager, LbPolicy,
    Listener, NetworkFilter, OutlierDetection, PrivateKey, Secret, SecretKind, TcpProxy,
    TcpWeightedCluster, TlsMode, TrafficDirection, UpstreamTls,
    route::{
        Action, ClusterSpecifier, Domain, Fault, FaultAbort, FaultDelay, HashPolicy, HeaderMatch,
        HeaderMatcher, HeaderOps, HeaderPair, Mirror, PathMatch, PathRewrite, Pattern, QueryMatch,
        QueryMatcher, Redirect, RedirectPath, RegexRewrite, RetryPolicy, Route, RouteAction,
        RouteConfiguration, RouteMatch, VirtualHost, WeightedCluster,
    },
};

use super::*;

fn round_trip<T: Wire + Clone + PartialEq + fmt::Debug>(value: T) {
    let message = value.clone().into_message();
    let back = T::from_message(message.clone());
    assert_eq!(back, Ok(value), "through {message:?}");
}

fn ops(set: &[(&str, &str)], add: &[(&str, &str)], remove: &[&'static str]) -> HeaderOps {
    let pairs = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(name, value)| HeaderPair::new(name, value).expect("valid header"))
            .collect()
    };
    HeaderOps {
        set: pairs(set),
        add: pairs(add),
        remove: remove
            .iter()
            .map(|name| HeaderName::from_static(name))
            .collect(),
    }
}

fn regex(source: &str) -> Pattern {
    Pattern::new(source).expect("valid regex")
}

/// A route configuration that uses every variant of every route type.
fn every_route_feature() -> RouteConfiguration {
    let forward = RouteAction {
        cluster: ClusterSpecifier::Weighted(vec![
            WeightedCluster {
                name: "outbound|9080|v1|reviews.default.svc.cluster.local".to_owned(),
                weight: 75,
                request_headers: ops(&[("x-subset", "v1")], &[], &[]),
                response_headers: ops(&[], &[("x-served-by", "v1")], &["x-internal"]),
                host_rewrite: Some("reviews-v1".to_owned()),
            },
            WeightedCluster {
                name: "outbound|9080|v3|reviews.default.svc.cluster.local".to_owned(),
                weight: 25,
                request_headers: HeaderOps::default(),
                response_headers: HeaderOps::default(),
                host_rewrite: None,
            },
        ]),
        timeout: Some(Duration::from_millis(500)),
        retry: Some(RetryPolicy {
            per_try_timeout: Some(Duration::from_secs(2)),
            retriable_headers: vec![HeaderMatcher::new(
                "x-retry",
                HeaderMatch::Regex(regex("yes|true")),
            )],
            ..RetryPolicy::istio_default()
        }),
        rewrite: Some(PathRewrite::Regex(
            RegexRewrite::new("^/v1/(.*)$", "/\\1").expect("valid rewrite"),
        )),
        host_rewrite: Some("reviews.prod".to_owned()),
        mirrors: vec![Mirror {
            cluster: "outbound|9080|v2|reviews.default.svc.cluster.local".to_owned(),
            percent: 12.5,
        }],
        hash_policy: vec![
            HashPolicy::Header {
                name: "x-user".to_owned(),
            },
            HashPolicy::Cookie {
                name: "session".to_owned(),
                ttl: Some(Duration::from_secs(60)),
                path: Some("/".to_owned()),
            },
            HashPolicy::SourceIp,
            HashPolicy::QueryParameter {
                name: "user".to_owned(),
            },
        ],
    };
    let matcher = RouteMatch {
        path: PathMatch::Regex(regex("/reviews/[0-9]+")),
        ignore_case: true,
        headers: vec![
            HeaderMatcher::new("end-user", HeaderMatch::Exact("jason".to_owned())),
            HeaderMatcher::new(":method", HeaderMatch::Prefix("GE".to_owned())),
            HeaderMatcher::new("x-suffix", HeaderMatch::Suffix(".com".to_owned())),
            HeaderMatcher::new("x-present", HeaderMatch::Present(true)),
            HeaderMatcher::istio_without("x-canary", HeaderMatch::Exact("1".to_owned())),
        ],
        query_params: vec![
            QueryMatcher::new("a", QueryMatch::Exact("1".to_owned())),
            QueryMatcher::new("b", QueryMatch::Prefix("x".to_owned())),
            QueryMatcher::new("c", QueryMatch::Suffix("y".to_owned())),
            QueryMatcher::new("d", QueryMatch::Regex(regex("[a-z]+"))),
            QueryMatcher::new("e", QueryMatch::Present),
        ],
    };
    let mut main = Route::new("jason", matcher, Action::Route(forward));
    main.request_headers = ops(&[("x-a", "1")], &[("x-b", "2")], &["x-c"]);
    main.response_headers = ops(&[], &[], &["server"]);
    main.fault = Some(Fault {
        delay: Some(FaultDelay {
            fixed: Duration::from_secs(7),
            percent: 100.0,
        }),
        abort: Some(FaultAbort {
            http_status: 500,
            percent: 10.0,
        }),
    });
    main.origin = "VirtualService/default/reviews#0".to_owned();
    main.decorator = Some("reviews.default.svc.cluster.local:9080/*".to_owned());

    let redirect = Route::new(
        "old",
        RouteMatch::path(PathMatch::Exact("/old".to_owned())),
        Action::Redirect(Redirect {
            scheme: Some("https".to_owned()),
            host: Some("example.com".to_owned()),
            port: Some(8443),
            path: Some(RedirectPath::Prefix("/new".to_owned())),
            response_code: 308,
        }),
    );
    let moved = Route::new(
        "moved",
        RouteMatch::path(PathMatch::Prefix("/moved".to_owned())),
        Action::Redirect(Redirect {
            path: Some(RedirectPath::Path("/elsewhere".to_owned())),
            ..Redirect::moved_permanently()
        }),
    );
    let prefix_rewrite = Route::new(
        "rewrite",
        RouteMatch::path(PathMatch::Prefix("/api".to_owned())),
        Action::Route(RouteAction {
            cluster: ClusterSpecifier::Cluster("outbound|80||httpbin.org".to_owned()),
            timeout: None,
            retry: None,
            rewrite: Some(PathRewrite::Prefix("/".to_owned())),
            host_rewrite: None,
            mirrors: Vec::new(),
            hash_policy: Vec::new(),
        }),
    );
    let direct = Route::new(
        "teapot",
        RouteMatch::default(),
        Action::Direct {
            status: 418,
            body: "short and stout".to_owned(),
        },
    );
    let silent = Route::new("filter", RouteMatch::default(), Action::NonForwarding);
    RouteConfiguration {
        name: "9080".to_owned(),
        virtual_hosts: vec![
            VirtualHost {
                name: "reviews.default.svc.cluster.local:9080".to_owned(),
                domains: ["reviews", "reviews:9080", "*.reviews.default", "reviews.*"]
                    .into_iter()
                    .map(Domain::new)
                    .collect(),
                routes: vec![main, redirect, moved, prefix_rewrite, direct, silent],
                origin: "VirtualService/default/reviews".to_owned(),
            },
            VirtualHost::allow_any("MeshConfig outboundTrafficPolicy ALLOW_ANY"),
            VirtualHost::block_all("Sidecar/default/default"),
        ],
        ignore_port_in_host_matching: true,
    }
}

#[test]
fn route_configurations_round_trip() {
    round_trip(every_route_feature());
    round_trip(RouteConfiguration {
        name: "inbound|9080||".to_owned(),
        virtual_hosts: Vec::new(),
        ignore_port_in_host_matching: false,
    });
}

#[test]
fn clusters_round_trip() {
    round_trip(Cluster::new(
        "outbound|9080|v2|reviews.default.svc.cluster.local",
    ));
    let kinds = [
        (DiscoveryType::Static, LbPolicy::RoundRobin),
        (DiscoveryType::StrictDns, LbPolicy::Random),
        (DiscoveryType::LogicalDns, LbPolicy::RingHash),
        (DiscoveryType::OriginalDst, LbPolicy::ClusterProvided),
    ];
    let modes = [
        TlsMode::Disable,
        TlsMode::Simple,
        TlsMode::Mutual,
        TlsMode::IstioMutual,
    ];
    for ((discovery, lb_policy), mode) in kinds.into_iter().zip(modes) {
        round_trip(Cluster {
            discovery,
            lb_policy,
            connect_timeout: Duration::from_millis(250),
            circuit_breakers: CircuitBreakers {
                max_connections: Some(1),
                max_pending_requests: Some(1),
                max_requests: None,
                max_retries: Some(0),
                max_requests_per_connection: Some(1),
            },
            outlier_detection: Some(OutlierDetection {
                consecutive_5xx: Some(1),
                consecutive_gateway_failure: None,
                interval: Duration::from_secs(1),
                base_ejection_time: Duration::from_secs(180),
                max_ejection_percent: 100,
                min_health_percent: 0,
            }),
            tls: Some(UpstreamTls {
                mode,
                sni: Some("httpbin.org".to_owned()),
                subject_alt_names: vec!["spiffe://cluster.local/ns/default/sa/reviews".to_owned()],
                auto_mtls: false,
                certificate: Some("kubernetes://client-credential".to_owned()),
                trusted_ca: Some("kubernetes://client-credential-cacert".to_owned()),
            }),
            http2: true,
            origin: vec![
                "ServiceEntry/default/httpbin".to_owned(),
                "DestinationRule/default/httpbin".to_owned(),
            ],
            ..Cluster::new("outbound|443||httpbin.org")
        });
    }
}

#[test]
fn secrets_round_trip_and_an_empty_one_is_refused() {
    round_trip(Secret {
        name: "kubernetes://client-credential".to_owned(),
        kind: SecretKind::TlsCertificate {
            certificate_chain: "-----BEGIN CERTIFICATE-----\n".to_owned(),
            private_key: PrivateKey::new("-----BEGIN PRIVATE KEY-----\n"),
        },
    });
    round_trip(Secret {
        name: "kubernetes://client-credential-cacert".to_owned(),
        kind: SecretKind::ValidationContext {
            trusted_ca: "-----BEGIN CERTIFICATE-----\n".to_owned(),
        },
    });
    let empty = v1::Secret {
        name: "kubernetes://x".to_owned(),
        kind: Some(v1::secret::Kind::TlsCertificate(v1::TlsCertificate {
            certificate_chain: "pem".to_owned(),
            private_key: String::new(),
        })),
    };
    let error = Secret::from_message(empty).expect_err("no key");
    assert_eq!(
        error.to_string(),
        "SDS \"kubernetes://x\": tls_certificate.private_key: is required"
    );
}

#[test]
fn endpoints_round_trip() {
    round_trip(ClusterLoadAssignment {
        cluster_name: "outbound|9080|v2|reviews.default.svc.cluster.local".to_owned(),
        endpoints: vec![
            Endpoint {
                address: EndpointAddress::Socket("172.18.0.7:9080".parse().unwrap()),
                labels: BTreeMap::from([
                    ("app".to_owned(), "reviews".to_owned()),
                    ("version".to_owned(), "v2".to_owned()),
                ]),
                weight: 1,
                service_account: Some("bookinfo-reviews".to_owned()),
                has_sidecar: true,
            },
            Endpoint {
                address: EndpointAddress::Socket("[fd00::7]:9080".parse().unwrap()),
                labels: BTreeMap::new(),
                weight: 3,
                service_account: None,
                has_sidecar: false,
            },
            Endpoint {
                address: EndpointAddress::Dns {
                    host: "httpbin.org".to_owned(),
                    port: 80,
                },
                labels: BTreeMap::new(),
                weight: 1,
                service_account: None,
                has_sidecar: false,
            },
        ],
    });
}

fn every_authorization_feature() -> Authorization {
    use meshlab_proxy_config::authz::{
        Action, Condition, JwtHeader, JwtProvider, Operation, Policy, Rule, Source,
    };
    let list = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    Authorization {
        jwt_providers: vec![JwtProvider {
            name: "istio-system/jwt-example#0".to_owned(),
            issuer: "testing@secure.istio.io".to_owned(),
            audiences: list(&["a", "b"]),
            jwks: "{\"keys\":[]}".to_owned(),
            from_headers: vec![JwtHeader {
                name: "x-jwt".to_owned(),
                value_prefix: "Bearer ".to_owned(),
            }],
            from_params: list(&["token"]),
            forward: true,
            forward_payload_header: "x-payload".to_owned(),
            claim_to_headers: vec![meshlab_proxy_config::authz::ClaimToHeader {
                header: "x-sub".to_owned(),
                claim: "sub".to_owned(),
            }],
        }],
        policies: vec![
            Policy {
                name: "ns[default]-policy[allow-nothing]".to_owned(),
                action: Action::Allow,
                rules: Vec::new(),
            },
            Policy {
                name: "ns[foo]-policy[all]".to_owned(),
                action: Action::Deny,
                rules: vec![Rule {
                    from: vec![Source {
                        principals: list(&["cluster.local/ns/default/sa/x"]),
                        not_principals: list(&["p"]),
                        request_principals: list(&["*"]),
                        not_request_principals: list(&["i/s"]),
                        namespaces: list(&["default"]),
                        not_namespaces: list(&["foo"]),
                        ip_blocks: list(&["10.0.0.0/8"]),
                        not_ip_blocks: list(&["10.1.0.0/16"]),
                        remote_ip_blocks: list(&["1.2.3.4"]),
                        not_remote_ip_blocks: list(&["::/0"]),
                    }],
                    to: vec![Operation {
                        hosts: list(&["a"]),
                        not_hosts: list(&["b"]),
                        ports: vec![9080],
                        not_ports: vec![8080],
                        methods: list(&["GET"]),
                        not_methods: list(&["POST"]),
                        paths: list(&["/a/*"]),
                        not_paths: list(&["*/b"]),
                    }],
                    when: vec![Condition {
                        key: "request.auth.claims[groups]".to_owned(),
                        values: list(&["g1"]),
                        not_values: list(&["g2"]),
                    }],
                }],
            },
            Policy {
                name: "ns[foo]-policy[audit]".to_owned(),
                action: Action::Audit,
                rules: vec![Rule::default()],
            },
        ],
    }
}

#[test]
fn listeners_round_trip() {
    let http = FilterChain {
        name: "0.0.0.0_9080".to_owned(),
        matcher: ChainMatch {
            destination_port: Some(9080),
            ..ChainMatch::default()
        },
        filter: NetworkFilter::HttpConnectionManager(HttpConnectionManager {
            stat_prefix: "outbound_0.0.0.0_9080".to_owned(),
            route_config_name: "9080".to_owned(),
            authorization: Some(every_authorization_feature()),
        }),
        tls: None,
    };
    let tls = FilterChain {
        name: "outbound|443||www.google.com".to_owned(),
        matcher: ChainMatch {
            destination_port: Some(443),
            destination_ips: vec!["10.0.0.9".parse().unwrap(), "fd00::9".parse().unwrap()],
            server_names: vec!["www.google.com".to_owned(), "*.google.com".to_owned()],
            transport_protocol: Some("tls".to_owned()),
            application_protocols: vec!["istio".to_owned(), "istio-h2".to_owned()],
        },
        filter: NetworkFilter::TcpProxy(TcpProxy {
            stat_prefix: "outbound|443||www.google.com".to_owned(),
            cluster: "outbound|443||www.google.com".to_owned(),
            authorization: Some(Authorization::default()),
            weighted_clusters: vec![
                TcpWeightedCluster {
                    name: "outbound|443|v1|www.google.com".to_owned(),
                    weight: 90,
                },
                TcpWeightedCluster {
                    name: "outbound|443|v2|www.google.com".to_owned(),
                    weight: 10,
                },
            ],
        }),
        tls: Some(DownstreamTls {
            certificate: "kubernetes://httpbin-credential".to_owned(),
            require_client_certificate: true,
            trusted_ca: Some("kubernetes://httpbin-credential-cacert".to_owned()),
        }),
    };
    let passthrough = FilterChain {
        name: "PassthroughFilterChain".to_owned(),
        matcher: ChainMatch::default(),
        filter: NetworkFilter::TcpProxy(TcpProxy {
            stat_prefix: "PassthroughCluster".to_owned(),
            cluster: "PassthroughCluster".to_owned(),
            authorization: None,
            weighted_clusters: Vec::new(),
        }),
        tls: None,
    };
    for (direction, default) in [
        (TrafficDirection::Outbound, Some(passthrough)),
        (TrafficDirection::Inbound, None),
        (TrafficDirection::Gateway, None),
    ] {
        round_trip(Listener {
            name: "virtualOutbound".to_owned(),
            address: "0.0.0.0:15001".parse().unwrap(),
            direction,
            use_original_dst: true,
            filter_chains: vec![http.clone(), tls.clone()],
            default_filter_chain: default,
        });
    }
}

#[test]
fn durations_travel_in_whole_milliseconds() {
    let cluster = Cluster {
        connect_timeout: Duration::from_micros(1_500),
        ..Cluster::new("c")
    };
    let back = Cluster::from_message(cluster.into_message()).expect("valid");
    assert_eq!(back.connect_timeout, Duration::from_millis(1));
}

#[test]
fn invalid_messages_name_the_field() {
    let routes = every_route_feature().into_message();
    let break_route = |edit: fn(&mut v1::Route)| {
        let mut routes = routes.clone();
        edit(&mut routes.virtual_hosts[0].routes[0]);
        RouteConfiguration::from_message(routes)
            .expect_err("invalid")
            .to_string()
    };
    let bad_regex = break_route(|route| {
        route.r#match.as_mut().unwrap().path_specifier =
            Some(v1::route_match::PathSpecifier::SafeRegex("(".to_owned()));
    });
    assert!(
        bad_regex.starts_with(
            "RDS \"9080\": virtual_hosts[0].routes[0].match.safe_regex: invalid regex \"(\": "
        ),
        "{bad_regex}"
    );
    assert_eq!(
        break_route(|route| route.action = None),
        "RDS \"9080\": virtual_hosts[0].routes[0].action: is required"
    );
    assert_eq!(
        break_route(|route| {
            let Some(v1::route::Action::Route(action)) = &mut route.action else {
                unreachable!("the first route forwards")
            };
            action.retry_policy.as_mut().unwrap().retry_on = "5xx,sometimes".to_owned();
        }),
        "RDS \"9080\": virtual_hosts[0].routes[0].route.retry_policy.retry_on: \"sometimes\" is not a valid retryOn policy"
    );
    assert_eq!(
        break_route(|route| {
            route.request_headers.as_mut().unwrap().set[0].key = "bad header".to_owned();
        }),
        "RDS \"9080\": virtual_hosts[0].routes[0].request_headers.set[0]: \"bad header\": \"1\" is not a valid HTTP header"
    );
    assert_eq!(
        break_route(|route| {
            route
                .fault
                .as_mut()
                .unwrap()
                .abort
                .as_mut()
                .unwrap()
                .http_status = 70_000;
        }),
        "RDS \"9080\": virtual_hosts[0].routes[0].fault.abort.http_status: 70000 is larger than 65535"
    );

    let mut listener = Listener {
        name: "virtualInbound".to_owned(),
        address: "0.0.0.0:15006".parse().unwrap(),
        direction: TrafficDirection::Inbound,
        use_original_dst: true,
        filter_chains: Vec::new(),
        default_filter_chain: None,
    }
    .into_message();
    listener.filter_chains.push(v1::FilterChain {
        name: "subnet".to_owned(),
        filter_chain_match: Some(v1::FilterChainMatch {
            prefix_ranges: vec![v1::CidrRange {
                address_prefix: "10.0.0.0".to_owned(),
                prefix_len: 24,
            }],
            ..Default::default()
        }),
        filter: None,
        transport_socket: None,
    });
    assert_eq!(
        Listener::from_message(listener.clone())
            .expect_err("invalid")
            .to_string(),
        "LDS \"virtualInbound\": filter_chains[0].filter_chain_match.prefix_ranges[0].prefix_len: \
         meshlab matches whole addresses only, not /24"
    );
    listener.traffic_direction = 0;
    assert_eq!(
        Listener::from_message(listener)
            .expect_err("invalid")
            .to_string(),
        "LDS \"virtualInbound\": traffic_direction: is required"
    );
}

#[test]
fn invalid_authorization_names_the_field() {
    let listener = |authorization: Authorization| Listener {
        name: "virtualInbound".to_owned(),
        address: "0.0.0.0:15006".parse().unwrap(),
        direction: TrafficDirection::Inbound,
        use_original_dst: true,
        filter_chains: vec![FilterChain {
            name: "0.0.0.0_9080".to_owned(),
            matcher: ChainMatch::default(),
            filter: NetworkFilter::HttpConnectionManager(HttpConnectionManager {
                stat_prefix: "inbound_0.0.0.0_9080".to_owned(),
                route_config_name: "inbound|9080||".to_owned(),
                authorization: Some(authorization),
            }),
            tls: None,
        }],
        default_filter_chain: None,
    };
    let mut message = listener(every_authorization_feature()).into_message();
    let Some(v1::filter_chain::Filter::HttpConnectionManager(hcm)) =
        &mut message.filter_chains[0].filter
    else {
        unreachable!("built as HTTP")
    };
    let authorization = hcm.authorization.as_mut().unwrap();
    authorization.policies[1].rules[0].when[0].key = "request.nope".to_owned();
    authorization.policies[0].action = 0;
    let error = Listener::from_message(message)
        .expect_err("invalid")
        .to_string();
    assert_eq!(
        error,
        "LDS \"virtualInbound\": filter_chains[0].http_connection_manager.authorization.policies[0].action: is required"
    );
}
