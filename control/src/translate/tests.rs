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
    mesh_with_pods(manifests, policy, &pods())
}

/// [`mesh`] with other pods.
fn mesh_with_pods(manifests: &[&str], policy: OutboundMode, pods: &[Pod]) -> Mesh {
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
    Mesh::build(&store.snapshot(), pods, policy)
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

/// The ingress gateway's pod (in istio-system), and it with Bookinfo's pods.
fn with_ingress_gateway() -> (Pod, Vec<Pod>) {
    let mut gateway_pod = pod(
        "istio-ingressgateway",
        "10.0.0.20",
        &[("app", "istio-ingressgateway"), ("istio", "ingressgateway")],
        "istio-ingressgateway-service-account",
    );
    gateway_pod.namespace = "istio-system".to_owned();
    let mut all = pods();
    all.push(gateway_pod.clone());
    (gateway_pod, all)
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
    // PERMISSIVE: port 9080 as mTLS, the app's own TLS and plaintext, and the
    // passthrough as mTLS and the app's TLS (its plaintext side is the default
    // chain).
    let ports: Vec<Option<u16>> = inbound
        .filter_chains
        .iter()
        .map(|c| c.matcher.destination_port)
        .collect();
    assert_eq!(ports, [Some(9080), Some(9080), Some(9080), None, None]);
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
    assert!(tcp.weighted_clusters.is_empty(), "{tcp:?}");

    // Istio's TCP traffic-shifting task: 80/20 between two subsets.
    let shifted = manifests
        .replace(
            "  subsets:\n",
            "  subsets:\n  - name: v1\n    labels:\n      version: v1\n",
        )
        .replace(
            "        subset: v2\n",
            "        subset: v2\n      weight: 80\n    - destination:\n        host: db\n        subset: v1\n      weight: 20\n",
        );
    let config = productpage(&mesh(&[&shifted], OutboundMode::AllowAny));
    let chain = config.listeners[names::VIRTUAL_OUTBOUND]
        .filter_chains
        .iter()
        .find(|c| c.matcher.destination_port == Some(27017))
        .cloned()
        .expect("a chain for the TCP port");
    let NetworkFilter::TcpProxy(tcp) = chain.filter else {
        panic!("a TCP proxy")
    };
    let weights: Vec<(&str, u32)> = tcp
        .weighted_clusters
        .iter()
        .map(|c| (c.name.as_str(), c.weight))
        .collect();
    assert_eq!(
        weights,
        [
            ("outbound|27017|v2|db.default.svc.cluster.local", 80),
            ("outbound|27017|v1|db.default.svc.cluster.local", 20),
        ]
    );
    // Each connection is drawn: 80 of 100 evenly spread draws go to v2.
    let to_v2 = (0..100u64)
        .filter(|draw| tcp.pick(*draw).contains("|v2|"))
        .count();
    assert_eq!(to_v2, 80);
}

// === authorization ===

const ALLOW_NOTHING: &str = "\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-nothing
  namespace: default
spec: {}
";

const PRODUCTPAGE_VIEWER: &str = "\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: productpage-viewer
  namespace: default
spec:
  selector:
    matchLabels:
      app: productpage
  action: ALLOW
  rules:
  - to:
    - operation:
        methods: [\"GET\"]
";

const MESH_DENY: &str = "\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-legacy
  namespace: istio-system
spec:
  action: DENY
  rules:
  - from:
    - source:
        serviceAccounts: [\"legacy/sleep\"]
        ipBlocks: [\"10.9.0.0/16\"]
    to:
    - operation:
        ports: [\"9080\"]
";

const JWT_INLINE: &str = "\
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: jwt
  namespace: default
spec:
  selector:
    matchLabels:
      app: reviews
  jwtRules:
  - issuer: testing@secure.istio.io
    jwks: '{\"keys\":[]}'
    fromHeaders:
    - name: x-jwt
      prefix: 'Token '
    forwardOriginalToken: true
  - issuer: other
    jwksUri: https://example.com/jwks.json
";

fn inbound_authorization(mesh: &Mesh, app: &str) -> Option<meshlab_proxy_config::Authorization> {
    let pod = pods()
        .into_iter()
        .find(|p| p.labels.get("app").map(String::as_str) == Some(app))
        .unwrap();
    let config = sidecar(mesh, &node(&pod));
    let listener = &config.listeners[names::VIRTUAL_INBOUND];
    let NetworkFilter::HttpConnectionManager(hcm) = &listener.filter_chains[0].filter else {
        panic!("inbound 9080 is HTTP");
    };
    hcm.authorization.clone()
}

#[test]
fn authorization_policies_select_by_namespace_and_labels() {
    use meshlab_proxy_config::authz::Action as AuthzAction;
    let none = mesh(&[], OutboundMode::AllowAny);
    assert_eq!(inbound_authorization(&none, "productpage"), None);

    let mesh = mesh(
        &[ALLOW_NOTHING, PRODUCTPAGE_VIEWER, MESH_DENY],
        OutboundMode::AllowAny,
    );
    let productpage = inbound_authorization(&mesh, "productpage").unwrap();
    let mut names: Vec<&str> = productpage
        .policies
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "ns[default]-policy[allow-nothing]",
            "ns[default]-policy[productpage-viewer]",
            "ns[istio-system]-policy[deny-legacy]",
        ]
    );
    let allow_nothing = productpage
        .policies
        .iter()
        .find(|p| p.name == "ns[default]-policy[allow-nothing]")
        .unwrap();
    assert_eq!(allow_nothing.action, AuthzAction::Allow);
    assert!(allow_nothing.rules.is_empty());
    let deny = productpage
        .policies
        .iter()
        .find(|p| p.action == AuthzAction::Deny)
        .unwrap();
    assert_eq!(
        deny.rules[0].from[0].principals,
        ["cluster.local/ns/legacy/sa/sleep"]
    );
    assert_eq!(deny.rules[0].to[0].ports, [9080]);

    // details: the namespace's and the mesh's, not productpage's.
    let details = inbound_authorization(&mesh, "details").unwrap();
    assert_eq!(details.policies.len(), 2);
    assert!(details.jwt_providers.is_empty());
}

#[test]
fn request_authentication_reaches_selected_workloads_with_keys() {
    let mut mesh = mesh(&[JWT_INLINE], OutboundMode::AllowAny);
    assert_eq!(inbound_authorization(&mesh, "details"), None);
    let reviews = inbound_authorization(&mesh, "reviews").unwrap();
    let [inline, fetched] = reviews.jwt_providers.as_slice() else {
        panic!("two providers: {reviews:#?}");
    };
    assert_eq!(inline.issuer, "testing@secure.istio.io");
    assert_eq!(inline.jwks, "{\"keys\":[]}");
    assert_eq!(inline.from_headers[0].name, "x-jwt");
    assert_eq!(inline.from_headers[0].value_prefix, "Token ");
    assert!(inline.forward);
    // Not fetched (yet): no keys, so every token fails.
    assert_eq!(fetched.jwks, "");

    mesh.jwks.insert(
        "https://example.com/jwks.json".to_owned(),
        Ok("{\"keys\":[1]}".to_owned()),
    );
    let reviews = inbound_authorization(&mesh, "reviews").unwrap();
    assert_eq!(reviews.jwt_providers[1].jwks, "{\"keys\":[1]}");
}

/// Deterministic mutations of Istio-shaped AuthorizationPolicies and
/// RequestAuthentications (words swapped for others of the vocabulary, lines
/// dropped or doubled, characters changed): decoding, validation, translation and the
/// wire never panic, and whatever validation accepts reaches a proxy unchanged —
/// the proxy's converter accepts every translation of a valid resource.
#[test]
fn mutated_security_resources_never_panic_and_valid_ones_reach_the_proxy() {
    use meshlab_control_api::Wire;
    use meshlab_proxy_config::Listener;

    const SEEDS: &str = "\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: a
  namespace: default
spec:
  selector:
    matchLabels:
      app: reviews
  action: DENY
  rules:
  - from:
    - source:
        principals: [\"cluster.local/ns/default/sa/x\"]
        notNamespaces: [\"foo\"]
        ipBlocks: [\"10.0.0.0/8\"]
        notRequestPrincipals: [\"*\"]
    to:
    - operation:
        methods: [\"GET\"]
        paths: [\"/api/*\", \"*/info\"]
        ports: [\"9080\"]
        notHosts: [\"*.example.com\"]
    when:
    - key: request.auth.claims[groups]
      values: [\"group1\"]
    - key: source.ip
      notValues: [\"10.1.0.0/16\"]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: r
  namespace: istio-system
spec:
  jwtRules:
  - issuer: testing@secure.istio.io
    audiences: [app]
    jwks: '{\"keys\": []}'
    fromHeaders:
    - name: x-jwt
      prefix: 'Bearer '
    fromParams: [token]
    forwardOriginalToken: true
    outputPayloadToHeader: x-payload
";
    let words = [
        "ALLOW",
        "DENY",
        "AUDIT",
        "CUSTOM",
        "\"*\"",
        "[]",
        "{}",
        "''",
        "-1",
        "65536",
        "80",
        "source.ip",
        "request.headers[x]",
        "nope",
        "10.0.0.0/40",
        "::/0",
        "null",
        "~",
        ":",
        "- ",
        "serviceAccounts",
        "trustDomains",
        "remoteIpBlocks",
        "notPaths",
        "jwksUri",
        "https://example.com/jwks",
        "provider: {name: x}",
        "app: productpage",
    ];
    let seeds: Vec<&str> = SEEDS.split("---\n").collect();
    let base = mesh(&[], OutboundMode::AllowAny);
    let pod = pods().remove(3);
    let node = node(&pod);
    let mut rng = fastrand::Rng::with_seed(11);
    let (mut accepted, mut rejected) = (0, 0);
    for _ in 0..2500 {
        let seed = seeds[rng.usize(..seeds.len())];
        let mut lines: Vec<String> = seed.lines().map(str::to_owned).collect();
        for _ in 0..rng.usize(1..4) {
            let i = rng.usize(6..lines.len());
            match rng.u8(..4) {
                0 => {
                    let line = &lines[i];
                    let indent = line.len() - line.trim_start().len();
                    let key = line.split_once(':').map_or("", |(k, _)| k);
                    let word = words[rng.usize(..words.len())];
                    lines[i] = if key.is_empty() || rng.bool() {
                        format!("{}{word}", " ".repeat(indent))
                    } else {
                        format!("{key}: {word}")
                    };
                }
                1 => {
                    lines.remove(i);
                }
                2 => {
                    let line = lines[i].clone();
                    lines.insert(i, line);
                }
                _ => {
                    let mut bytes = lines[i].clone().into_bytes();
                    if !bytes.is_empty() {
                        let j = rng.usize(..bytes.len());
                        bytes[j] = b"a*/[]: \"'{}0."[rng.usize(..13)];
                    }
                    lines[i] = String::from_utf8_lossy(&bytes).into_owned();
                }
            }
        }
        let text = lines.join("\n");
        let Ok(loaded) = yaml::load("fuzz.yaml", &text) else {
            rejected += 1;
            continue;
        };
        accepted += 1;
        let mut mesh = base.clone();
        for document in loaded.documents {
            match document.resource {
                crate::resource::Resource::AuthorizationPolicy(p) => {
                    mesh.authorization_policies.push(p);
                }
                crate::resource::Resource::RequestAuthentication(r) => {
                    mesh.request_authentications.push(r);
                }
                _ => {}
            }
        }
        let config = sidecar(&mesh, &node);
        let listener: Listener = config.listeners[names::VIRTUAL_INBOUND].clone();
        let back = Listener::from_message(listener.clone().into_message())
            .unwrap_or_else(|e| panic!("a valid resource did not reach the proxy: {e}\n{text}"));
        assert_eq!(back, listener, "{text}");
    }
    assert!(
        accepted > 100 && rejected > 100,
        "{accepted} accepted, {rejected} rejected"
    );
}

#[test]
fn the_gateway_listens_on_service_target_ports_and_enforces_its_policies() {
    const INGRESS: &str = include_str!("../../../labs/samples/istio-ingressgateway.yaml");
    const HTTPBIN_GATEWAY: &str = "\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: httpbin-gateway
  namespace: default
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [\"*\"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
  namespace: default
spec:
  hosts: [\"*\"]
  gateways: [httpbin-gateway]
  http:
  - route:
    - destination: {host: productpage, port: {number: 9080}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: frontend-ingress
  namespace: istio-system
spec:
  selector:
    matchLabels:
      istio: ingressgateway
  action: DENY
  rules:
  - from:
    - source:
        notRequestPrincipals: [\"*\"]
";
    let (gateway_pod, all) = with_ingress_gateway();
    let mesh = mesh_with_pods(
        &[INGRESS, HTTPBIN_GATEWAY, ALLOW_NOTHING],
        OutboundMode::AllowAny,
        &all,
    );
    let mut node = node(&gateway_pod);
    node.kind = ProxyKind::Router;
    let config = gateway(&mesh, &node);
    let names: Vec<&String> = config.listeners.keys().collect();
    assert_eq!(
        names,
        ["0.0.0.0_8080"],
        "port 80 of the Service is 8080 in the pod"
    );
    let NetworkFilter::HttpConnectionManager(hcm) =
        &config.listeners["0.0.0.0_8080"].filter_chains[0].filter
    else {
        panic!("HTTP");
    };
    assert_eq!(hcm.route_config_name, "http.8080");
    let policies: Vec<&str> = hcm
        .authorization
        .as_ref()
        .unwrap()
        .policies
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        policies,
        ["ns[istio-system]-policy[frontend-ingress]"],
        "the namespace policy of default does not reach a gateway in istio-system"
    );
}

// === mutual TLS ===

const DESTINATION_RULE_ALL_MTLS: &str =
    include_str!("../../tests/data/destination-rule-all-mtls.yaml");

fn inbound_chains(config: &ProxyConfig, port: u16) -> Vec<(Option<String>, bool)> {
    let listener = &config.listeners[names::VIRTUAL_INBOUND];
    listener
        .filter_chains
        .iter()
        .filter(|c| c.matcher.destination_port == Some(port))
        .map(|c| (c.matcher.transport_protocol.clone(), c.tls.is_some()))
        .collect()
}

fn reviews_v1(mesh: &Mesh) -> ProxyConfig {
    sidecar(mesh, &node(&pods()[3]))
}

#[test]
fn sidecars_use_auto_mtls_with_secure_naming_and_istio_mutual_from_the_sample() {
    let mesh = mesh(&[], OutboundMode::AllowAny);
    let config = productpage(&mesh);
    let tls = config.clusters["outbound|9080||reviews.default.svc.cluster.local"]
        .tls
        .clone()
        .expect("auto mTLS");
    assert!(tls.auto_mtls);
    assert_eq!(tls.mode, meshlab_proxy_config::TlsMode::IstioMutual);
    assert_eq!(
        tls.subject_alt_names,
        ["spiffe://cluster.local/ns/default/sa/bookinfo-reviews"]
    );
    assert_eq!(
        tls.sni.as_deref(),
        Some("outbound_.9080_._.reviews.default.svc.cluster.local")
    );
    let endpoints = &config.endpoints["outbound|9080||reviews.default.svc.cluster.local"];
    assert!(endpoints.endpoints.iter().all(|e| e.has_sidecar));

    // Istio's destination-rule-all-mtls.yaml, unchanged: explicit ISTIO_MUTUAL.
    let mesh = self::mesh(&[DESTINATION_RULE_ALL_MTLS], OutboundMode::AllowAny);
    let config = productpage(&mesh);
    let tls = config.clusters["outbound|9080|v2|reviews.default.svc.cluster.local"]
        .tls
        .clone()
        .unwrap();
    assert!(!tls.auto_mtls);
    assert_eq!(
        tls.sni.as_deref(),
        Some("outbound_.9080_.v2_.reviews.default.svc.cluster.local")
    );
    assert_eq!(
        tls.subject_alt_names,
        ["spiffe://cluster.local/ns/default/sa/bookinfo-reviews"]
    );
}

#[test]
fn without_a_policy_inbound_ports_are_permissive() {
    let mesh = mesh(&[], OutboundMode::AllowAny);
    assert_eq!(
        inbound_chains(&reviews_v1(&mesh), 9080),
        [
            (Some("tls".to_owned()), true),
            (Some("tls".to_owned()), false),
            (Some("raw_buffer".to_owned()), false)
        ]
    );
    // Mesh mTLS is the TLS offering Istio's ALPN; the app's own TLS is relayed as
    // bytes to the app.
    let chains = &reviews_v1(&mesh).listeners[names::VIRTUAL_INBOUND].filter_chains;
    assert_eq!(chains[0].matcher.application_protocols, MESH_MTLS_ALPN);
    assert!(chains[1].matcher.application_protocols.is_empty());
    assert!(
        matches!(&chains[1].filter, NetworkFilter::TcpProxy(tcp) if tcp.cluster == "inbound|9080||"),
        "{:?}",
        chains[1].filter
    );
}

#[test]
fn peer_authentication_precedence_and_port_level_modes() {
    let mesh_strict = "\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
";
    let strict = [(None, true)];
    let mesh = mesh(&[mesh_strict], OutboundMode::AllowAny);
    assert_eq!(inbound_chains(&reviews_v1(&mesh), 9080), strict);
    let default = mesh_config_default_chain(&reviews_v1(&mesh));
    assert!(default, "STRICT covers the passthrough chain too");

    // Namespace DISABLE beats the mesh's STRICT; a workload UNSET inherits it, and a
    // port-level STRICT overrides it on that workload port only.
    let namespace_disable = "\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: default
spec:
  mtls:
    mode: DISABLE
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: reviews
  namespace: default
spec:
  selector:
    matchLabels:
      app: reviews
  mtls:
    mode: UNSET
  portLevelMtls:
    9080:
      mode: STRICT
";
    let mesh = self::mesh(&[mesh_strict, namespace_disable], OutboundMode::AllowAny);
    assert_eq!(inbound_chains(&reviews_v1(&mesh), 9080), strict);
    assert_eq!(
        inbound_chains(&productpage(&mesh), 9080),
        [(None, false)],
        "productpage has no workload policy: the namespace's DISABLE"
    );
    // Auto mTLS sends plaintext to endpoints whose port is DISABLEd.
    let config = reviews_v1(&mesh);
    let details = &config.endpoints["outbound|9080||details.default.svc.cluster.local"];
    assert!(details.endpoints.iter().all(|e| !e.has_sidecar));
    let config = productpage(&mesh);
    let reviews = &config.endpoints["outbound|9080||reviews.default.svc.cluster.local"];
    assert!(reviews.endpoints.iter().all(|e| e.has_sidecar));
}

fn mesh_config_default_chain(config: &ProxyConfig) -> bool {
    config.listeners[names::VIRTUAL_INBOUND]
        .default_filter_chain
        .as_ref()
        .is_some_and(|c| c.tls.is_some())
}

#[test]
fn a_sidecar_ingress_listener_replaces_the_inbound_ports() {
    let sidecar = "\
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: productpage
spec:
  workloadSelector:
    labels:
      app: productpage
  ingress:
  - port:
      number: 9080
      protocol: HTTP
      name: http
    defaultEndpoint: 127.0.0.1:9081
  - port:
      number: 7070
      protocol: TCP
      name: tcp-admin
    defaultEndpoint: 0.0.0.0:7071
";
    let config = productpage(&mesh(&[sidecar], OutboundMode::AllowAny));
    let endpoint = |cluster: &str| match &config.endpoints[cluster].endpoints[0].address {
        EndpointAddress::Socket(address) => address.to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(endpoint("inbound|9080||"), "127.0.0.1:9081");
    assert!(endpoint("inbound|7070||").ends_with(":7071"));
    assert!(!endpoint("inbound|7070||").starts_with("127."));
    let inbound = &config.listeners[names::VIRTUAL_INBOUND];
    let ports: std::collections::BTreeSet<u16> = inbound
        .filter_chains
        .iter()
        .filter_map(|c| c.matcher.destination_port)
        .collect();
    assert_eq!(ports, std::collections::BTreeSet::from([7070, 9080]));
    assert!(inbound.filter_chains.iter().any(|c| matches!(
        &c.filter,
        NetworkFilter::TcpProxy(tcp) if tcp.cluster == "inbound|7070||"
    )));
}

// === credentialName ===

const TLS_TASKS: &str = include_str!("../../tests/data/tls-tasks.yaml");

#[test]
fn an_https_gateway_server_terminates_tls_with_its_credential_secret() {
    const INGRESS: &str = include_str!("../../../labs/samples/istio-ingressgateway.yaml");
    let (gateway_pod, all) = with_ingress_gateway();
    let mesh = mesh_with_pods(&[INGRESS, TLS_TASKS], OutboundMode::AllowAny, &all);
    let mut node = node(&gateway_pod);
    node.kind = ProxyKind::Router;
    let config = gateway(&mesh, &node);

    let listener = &config.listeners["0.0.0.0_8443"];
    let chains: Vec<(&str, &[String], Option<&DownstreamTls>)> = listener
        .filter_chains
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.matcher.server_names.as_slice(),
                c.tls.as_ref(),
            )
        })
        .collect();
    let host = ["httpbin.example.com".to_owned()];
    assert_eq!(
        chains,
        [
            (
                "https.443.https.mygateway.default",
                &host[..],
                Some(&DownstreamTls {
                    certificate: "kubernetes://httpbin-credential".to_owned(),
                    require_client_certificate: false,
                    trusted_ca: None,
                })
            ),
            (
                "https.443.https.mygateway-mtls.default",
                &host[..],
                Some(&DownstreamTls {
                    certificate: "kubernetes://httpbin-mtls-credential".to_owned(),
                    require_client_certificate: true,
                    trusted_ca: Some("kubernetes://httpbin-mtls-credential-cacert".to_owned()),
                })
            ),
        ],
        "port 443 of the Service is 8443 in the pod; one chain per server, by SNI"
    );
    let routes = &config.routes["https.443.https.mygateway.default"];
    assert_eq!(routes.virtual_hosts.len(), 1);
    assert_eq!(routes.virtual_hosts[0].name, "httpbin.example.com:8443");

    let secrets: Vec<(&str, bool)> = config
        .secrets
        .values()
        .map(|s| {
            (
                s.name.as_str(),
                matches!(
                    s.kind,
                    meshlab_proxy_config::SecretKind::TlsCertificate { .. }
                ),
            )
        })
        .collect();
    assert_eq!(
        secrets,
        [
            ("kubernetes://httpbin-credential", true),
            ("kubernetes://httpbin-mtls-credential", true),
            ("kubernetes://httpbin-mtls-credential-cacert", false),
        ]
    );
}

#[test]
fn credential_name_reaches_only_the_sidecars_a_rule_selects() {
    const CLIENT_CREDENTIAL: &str = "\
apiVersion: v1
kind: Secret
metadata:
  name: client-credential
stringData:
  tls.crt: CERT
  tls.key: KEY
  ca.crt: CA
";
    let rule = |selector: &str| {
        format!(
            "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ratings-mtls
spec:
  host: ratings
{selector}  trafficPolicy:
    portLevelSettings:
    - port: {{number: 9080}}
      tls: {{mode: MUTUAL, credentialName: client-credential, sni: ratings.example.com}}
"
        )
    };
    let selected = rule("  workloadSelector:\n    matchLabels: {app: productpage}\n");
    let with_selector = mesh(&[CLIENT_CREDENTIAL, &selected], OutboundMode::AllowAny);
    let cluster = "outbound|9080||ratings.default.svc.cluster.local";

    let config = productpage(&with_selector);
    let tls = config.clusters[cluster].tls.clone().unwrap();
    assert_eq!(tls.mode, meshlab_proxy_config::TlsMode::Mutual);
    assert_eq!(
        (tls.certificate.as_deref(), tls.trusted_ca.as_deref()),
        (
            Some("kubernetes://client-credential"),
            Some("kubernetes://client-credential-cacert")
        )
    );
    assert_eq!(
        config.secrets.keys().collect::<Vec<_>>(),
        [
            "kubernetes://client-credential",
            "kubernetes://client-credential-cacert"
        ]
    );

    let reviews = reviews_v1(&with_selector);
    assert_eq!(
        reviews.clusters[cluster].tls.as_ref().map(|t| t.mode),
        Some(meshlab_proxy_config::TlsMode::IstioMutual),
        "a rule selecting productpage does not reach reviews: auto mTLS"
    );
    assert!(reviews.secrets.is_empty());

    let unselected = rule("");
    let without = mesh(&[CLIENT_CREDENTIAL, &unselected], OutboundMode::AllowAny);
    let config = productpage(&without);
    let tls = config.clusters[cluster].tls.clone().unwrap();
    assert_eq!(
        (tls.mode, tls.certificate, tls.trusted_ca),
        (meshlab_proxy_config::TlsMode::Mutual, None, None),
        "without a workloadSelector sidecars do not read credentialName"
    );
    assert!(config.secrets.is_empty());
}

#[test]
fn an_https_redirect_server_answers_every_host_it_names_with_a_301() {
    const INGRESS: &str = include_str!("../../../labs/samples/istio-ingressgateway.yaml");
    const REDIRECT: &str = "\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: mygateway
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [httpbin.example.com, other.example.com]
    tls: {httpsRedirect: true}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
spec:
  hosts: [httpbin.example.com]
  gateways: [mygateway]
  http:
  - route:
    - destination: {host: productpage, port: {number: 9080}}
";
    let (gateway_pod, all) = with_ingress_gateway();
    let mesh = mesh_with_pods(&[INGRESS, REDIRECT], OutboundMode::AllowAny, &all);
    let mut node = node(&gateway_pod);
    node.kind = ProxyKind::Router;
    let config = gateway(&mesh, &node);
    let hosts: Vec<(&str, Vec<&Action>)> = config.routes["http.8080"]
        .virtual_hosts
        .iter()
        .map(|v| {
            (
                v.name.as_str(),
                v.routes.iter().map(|r| &r.action).collect(),
            )
        })
        .collect();
    let redirect = Action::Redirect(meshlab_proxy_config::route::Redirect {
        scheme: Some("https".to_owned()),
        ..meshlab_proxy_config::route::Redirect::moved_permanently()
    });
    assert_eq!(
        hosts,
        [
            ("httpbin.example.com:8080", vec![&redirect]),
            ("other.example.com:8080", vec![&redirect]),
        ],
        "the VirtualService's routes give way to the redirect; a host without one gets it too"
    );
}
