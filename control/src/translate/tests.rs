//! Translation as traffic: generate a proxy's configuration from Istio-shaped
//! manifests, then decide requests with the very route tables the proxy will run.

use std::path::PathBuf;

use http::{HeaderMap, HeaderValue};
use meshlab_proxy_config::route::{RequestHead, Sequence, Verdict};
use meshlab_proxy_config::{DiscoveryType, EndpointAddress, LbPolicy, NetworkFilter, ProxyKind};

use super::*;
use crate::pod::{Pod, PodContainer};
use crate::store::Store;
use crate::yaml;

const BOOKINFO: &str = include_str!("../../tests/data/bookinfo.yaml");
const DESTINATION_RULE_ALL: &str = include_str!("../../tests/data/destination-rule-all.yaml");
const REVIEWS_TEST_V2: &str = include_str!("../../tests/data/virtual-service-reviews-test-v2.yaml");
const ALL_V1: &str = include_str!("../../tests/data/virtual-service-all-v1.yaml");

const INJECTED_DEFAULT: &str = "\
apiVersion: v1
kind: Namespace
metadata:
  name: default
  labels:
    istio-injection: enabled
";

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The mesh after applying `manifests`, with Bookinfo's and sleep's pods running.
fn mesh(manifests: &[&str], policy: OutboundMode) -> Mesh {
    let dir = Scratch(std::env::temp_dir().join(format!(
        "meshlab-translate-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    )));
    let store = Store::open(&dir.0).unwrap();
    for manifest in [INJECTED_DEFAULT, BOOKINFO].iter().chain(manifests) {
        let resources = yaml::load("test.yaml", manifest)
            .unwrap_or_else(|d| panic!("{d:#?}"))
            .documents
            .into_iter()
            .map(|d| d.resource)
            .collect();
        store.apply(resources, "default").unwrap();
    }
    Mesh::build(&store.snapshot(), &pods(), policy)
}

fn pod(name: &str, ip: &str, labels: &[(&str, &str)], sa: &str) -> Pod {
    Pod {
        name: format!("{name}-abc-12345"),
        namespace: "default".to_owned(),
        deployment: Some(name.to_owned()),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        service_account: sa.to_owned(),
        status: "Running".to_owned(),
        message: None,
        ip: Some(ip.to_owned()),
        created: 0,
        containers: vec![PodContainer {
            name: "app".to_owned(),
            docker_name: "x".to_owned(),
            ready: true,
            restarts: 0,
        }],
        outdated: false,
    }
}

fn pods() -> Vec<Pod> {
    vec![
        pod(
            "productpage-v1",
            "10.0.0.2",
            &[("app", "productpage"), ("version", "v1")],
            "bookinfo-productpage",
        ),
        pod(
            "details-v1",
            "10.0.0.3",
            &[("app", "details"), ("version", "v1")],
            "bookinfo-details",
        ),
        pod(
            "ratings-v1",
            "10.0.0.4",
            &[("app", "ratings"), ("version", "v1")],
            "bookinfo-ratings",
        ),
        pod(
            "reviews-v1",
            "10.0.0.5",
            &[("app", "reviews"), ("version", "v1")],
            "bookinfo-reviews",
        ),
        pod(
            "reviews-v2",
            "10.0.0.6",
            &[("app", "reviews"), ("version", "v2")],
            "bookinfo-reviews",
        ),
        pod(
            "reviews-v3",
            "10.0.0.7",
            &[("app", "reviews"), ("version", "v3")],
            "bookinfo-reviews",
        ),
    ]
}

fn node(pod: &Pod) -> ProxyNode {
    ProxyNode {
        kind: ProxyKind::Sidecar,
        pod: pod.name.clone(),
        namespace: pod.namespace.clone(),
        ip: pod.ip.clone().unwrap(),
        labels: pod.labels.clone(),
        service_account: pod.service_account.clone(),
    }
}

fn productpage(mesh: &Mesh) -> ProxyConfig {
    sidecar(mesh, &node(&pods()[0]))
}

/// Where a request goes: the cluster, `abort <status>` or `respond <status>`.
fn route(
    config: &ProxyConfig,
    port: u16,
    authority: &str,
    headers: &[(&'static str, &str)],
    random: u64,
) -> String {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    let request = RequestHead {
        authority,
        path_and_query: "/reviews/0",
        method: "GET",
        scheme: "http",
        headers: &map,
    };
    let table = &config.routes[&port.to_string()];
    let Some(selected) = table.select(&request) else {
        return "404".to_owned();
    };
    match selected
        .route
        .decide(&request, &mut Sequence::new([random]))
        .verdict
    {
        Verdict::Forward(forward) => forward.cluster.to_owned(),
        Verdict::Abort { status, .. } => format!("abort {status}"),
        Verdict::Respond { status, .. } => format!("respond {status}"),
        other => format!("{other:?}"),
    }
}

const REVIEWS: &str = "reviews.default.svc.cluster.local";

#[test]
fn without_virtual_services_every_endpoint_serves_with_istio_defaults() {
    let config = productpage(&mesh(&[], OutboundMode::AllowAny));
    let cluster = &config.clusters[&format!("outbound|9080||{REVIEWS}")];
    assert_eq!(cluster.discovery, DiscoveryType::Eds);
    assert_eq!(cluster.lb_policy, LbPolicy::LeastRequest);
    assert_eq!(config.endpoints[&cluster.name].endpoints.len(), 3);
    for authority in [
        "reviews:9080",
        "reviews",
        "reviews.default:9080",
        "reviews.default.svc.cluster.local:9080",
    ] {
        assert_eq!(
            route(&config, 9080, authority, &[], 0),
            format!("outbound|9080||{REVIEWS}"),
            "{authority}"
        );
    }
    let table = &config.routes["9080"];
    let reviews = table
        .virtual_hosts
        .iter()
        .find(|v| v.name == format!("{REVIEWS}:9080"))
        .unwrap();
    let Action::Route(action) = &reviews.routes[0].action else {
        panic!()
    };
    assert_eq!(action.retry, Some(RetryPolicy::istio_default()));
    assert_eq!(action.timeout, None, "no default request timeout");
    assert_eq!(
        route(&config, 9080, "unknown.example:9080", &[], 0),
        PASSTHROUGH_CLUSTER
    );
}

#[test]
fn subsets_become_clusters_with_only_their_endpoints() {
    let config = productpage(&mesh(&[DESTINATION_RULE_ALL], OutboundMode::AllowAny));
    let v2 = &config.endpoints[&format!("outbound|9080|v2|{REVIEWS}")];
    assert_eq!(v2.endpoints.len(), 1);
    assert_eq!(
        v2.endpoints[0].address,
        EndpointAddress::Socket("10.0.0.6:9080".parse().unwrap())
    );
    assert_eq!(
        v2.endpoints[0].service_account.as_deref(),
        Some("spiffe://cluster.local/ns/default/sa/bookinfo-reviews")
    );
    assert!(
        config
            .clusters
            .contains_key("outbound|9080|v2-mysql|ratings.default.svc.cluster.local")
    );
    assert!(
        config.endpoints["outbound|9080|v2-mysql|ratings.default.svc.cluster.local"]
            .endpoints
            .is_empty()
    );
}

#[test]
fn request_routing_sends_jason_to_v2_and_everyone_else_to_v1() {
    let config = productpage(&mesh(
        &[DESTINATION_RULE_ALL, ALL_V1, REVIEWS_TEST_V2],
        OutboundMode::AllowAny,
    ));
    let cases = [
        (vec![("end-user", "jason")], "v2"),
        (vec![("end-user", "Jason")], "v1"),
        (vec![("end-user", "alice")], "v1"),
        (vec![], "v1"),
    ];
    for (headers, subset) in cases {
        assert_eq!(
            route(&config, 9080, "reviews:9080", &headers, 0),
            format!("outbound|9080|{subset}|{REVIEWS}"),
            "{headers:?}"
        );
    }
    let table = &config.routes["9080"];
    let reviews = table
        .virtual_hosts
        .iter()
        .find(|v| v.name == format!("{REVIEWS}:9080"))
        .unwrap();
    assert!(
        reviews.routes[0]
            .origin
            .starts_with("VirtualService/default/reviews#0"),
        "{}",
        reviews.routes[0].origin
    );
}

#[test]
fn traffic_shifting_splits_by_weight() {
    let fifty_fifty = include_str!("../../tests/data/virtual-service-reviews-50-v3.yaml");
    let config = productpage(&mesh(
        &[DESTINATION_RULE_ALL, fifty_fifty],
        OutboundMode::AllowAny,
    ));
    let mut v3 = 0;
    for random in 0..100 {
        if route(&config, 9080, "reviews:9080", &[], random)
            == format!("outbound|9080|v3|{REVIEWS}")
        {
            v3 += 1;
        }
    }
    assert_eq!(v3, 50);
}

#[test]
fn fault_injection_reaches_the_route_table() {
    let abort = include_str!("../../tests/data/virtual-service-ratings-test-abort.yaml");
    let mesh = mesh(&[DESTINATION_RULE_ALL, abort], OutboundMode::AllowAny);
    let reviews_v2 = sidecar(&mesh, &node(&pods()[4]));
    assert_eq!(
        route(
            &reviews_v2,
            9080,
            "ratings:9080",
            &[("end-user", "jason")],
            0
        ),
        "abort 500"
    );
    assert_eq!(
        route(&reviews_v2, 9080, "ratings:9080", &[], 0),
        "outbound|9080|v1|ratings.default.svc.cluster.local"
    );
}

const HTTPBIN_ORG: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: httpbin-ext
spec:
  hosts:
  - httpbin.org
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: DNS
  location: MESH_EXTERNAL
";

#[test]
fn egress_registry_only_blocks_unknown_hosts_and_a_service_entry_opens_one() {
    let closed = productpage(&mesh(&[], OutboundMode::RegistryOnly));
    assert_eq!(
        route(&closed, 9080, "unknown.example:9080", &[], 0),
        "respond 502"
    );
    let outbound = &closed.listeners[names::VIRTUAL_OUTBOUND];
    let NetworkFilter::TcpProxy(default) = &outbound.default_filter_chain.as_ref().unwrap().filter
    else {
        panic!()
    };
    assert_eq!(
        default.cluster, BLACK_HOLE_CLUSTER,
        "TLS and TCP to unknown hosts are dropped"
    );

    let open = productpage(&mesh(&[HTTPBIN_ORG], OutboundMode::RegistryOnly));
    assert_eq!(
        route(&open, 80, "httpbin.org", &[], 0),
        "outbound|80||httpbin.org"
    );
    let cluster = &open.clusters["outbound|80||httpbin.org"];
    assert_eq!(cluster.discovery, DiscoveryType::StrictDns);
    let table = &open.routes["80"];
    let vhost = table
        .virtual_hosts
        .iter()
        .find(|v| v.name == "httpbin.org:80")
        .unwrap();
    assert_eq!(
        vhost.routes[0].decorator.as_deref(),
        Some("httpbin.org:80/*")
    );
    assert!(
        open.listeners[names::VIRTUAL_OUTBOUND]
            .filter_chains
            .iter()
            .any(|c| c.name == "0.0.0.0_80")
    );
}

#[test]
fn a_sidecar_resource_scopes_what_a_proxy_knows_and_overrides_the_policy() {
    let other_namespace = "\
apiVersion: v1
kind: Namespace
metadata:
  name: other
---
apiVersion: v1
kind: Service
metadata:
  name: httpbin
  namespace: other
spec:
  ports:
  - port: 8000
    name: http
  selector:
    app: httpbin
";
    let scoped = "\
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: default
spec:
  egress:
  - hosts:
    - ./*
  outboundTrafficPolicy:
    mode: REGISTRY_ONLY
";
    let everything = productpage(&mesh(&[other_namespace], OutboundMode::AllowAny));
    assert!(
        everything
            .clusters
            .contains_key("outbound|8000||httpbin.other.svc.cluster.local")
    );
    let scoped = productpage(&mesh(&[other_namespace, scoped], OutboundMode::AllowAny));
    assert!(
        !scoped
            .clusters
            .contains_key("outbound|8000||httpbin.other.svc.cluster.local")
    );
    assert!(scoped.clusters.len() < everything.clusters.len());
    assert_eq!(
        route(&scoped, 9080, "unknown.example:9080", &[], 0),
        "respond 502"
    );
}

#[test]
fn the_inbound_listener_delivers_the_pods_own_ports_to_the_app() {
    let mesh = mesh(&[], OutboundMode::AllowAny);
    let reviews = sidecar(&mesh, &node(&pods()[3]));
    let inbound = &reviews.listeners[names::VIRTUAL_INBOUND];
    assert_eq!(inbound.filter_chains.len(), 1);
    assert_eq!(
        inbound.filter_chains[0].matcher.destination_port,
        Some(9080)
    );
    let endpoints = &reviews.endpoints["inbound|9080||"];
    assert_eq!(
        endpoints.endpoints[0].address,
        EndpointAddress::Socket("127.0.0.1:9080".parse().unwrap())
    );
}

const BOOKINFO_GATEWAY: &str = include_str!("../../tests/data/bookinfo-gateway.yaml");

#[test]
fn the_bookinfo_gateway_serves_its_five_paths_and_404s_the_rest() {
    let mesh = mesh(&[BOOKINFO_GATEWAY], OutboundMode::AllowAny);
    let node = ProxyNode {
        kind: ProxyKind::Router,
        pod: "istio-ingressgateway-abc-12345".to_owned(),
        namespace: "istio-system".to_owned(),
        ip: "10.0.0.9".to_owned(),
        labels: [("istio".to_owned(), "ingressgateway".to_owned())].into(),
        service_account: "istio-ingressgateway".to_owned(),
    };
    let config = proxy_config(&mesh, &node);
    let listener = &config.listeners["0.0.0.0_8080"];
    assert_eq!(listener.address.port(), 8080);
    let table = &config.routes["http.8080"];
    let decide = |path: &str| {
        let headers = HeaderMap::new();
        let request = RequestHead {
            authority: "localhost:8080",
            path_and_query: path,
            method: "GET",
            scheme: "http",
            headers: &headers,
        };
        match table.select(&request) {
            None => "404".to_owned(),
            Some(selected) => match selected
                .route
                .decide(&request, &mut Sequence::new([0]))
                .verdict
            {
                Verdict::Forward(forward) => forward.cluster.to_owned(),
                other => format!("{other:?}"),
            },
        }
    };
    let productpage = "outbound|9080||productpage.default.svc.cluster.local";
    for path in [
        "/productpage",
        "/static/bookinfo.css",
        "/login",
        "/logout",
        "/api/v1/products/0",
    ] {
        assert_eq!(decide(path), productpage, "{path}");
    }
    for path in ["/", "/health", "/productpage/x"] {
        assert_eq!(decide(path), "404", "{path}");
    }
}

#[test]
fn dotted_hosts_are_taken_as_written() {
    assert_eq!(
        fqdn("reviews", "default"),
        "reviews.default.svc.cluster.local"
    );
    assert_eq!(fqdn("httpbin.org", "default"), "httpbin.org");
    assert_eq!(fqdn("*.example.com", "default"), "*.example.com");
}

#[test]
fn tcp_routes_steer_a_tcp_service() {
    let manifests = "\
apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  ports:
  - port: 27017
    name: tcp-mongo
  selector:
    app: reviews
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: db
spec:
  host: db
  subsets:
  - name: v2
    labels:
      version: v2
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: db
spec:
  hosts:
  - db
  tcp:
  - match:
    - port: 27017
    route:
    - destination:
        host: db
        subset: v2
";
    let config = productpage(&mesh(&[manifests], OutboundMode::AllowAny));
    let outbound = &config.listeners[names::VIRTUAL_OUTBOUND];
    let chain = outbound
        .filter_chains
        .iter()
        .find(|c| c.matcher.destination_port == Some(27017))
        .expect("a chain for the TCP port");
    let NetworkFilter::TcpProxy(tcp) = &chain.filter else {
        panic!("a TCP proxy")
    };
    assert_eq!(
        tcp.cluster,
        "outbound|27017|v2|db.default.svc.cluster.local"
    );
}
