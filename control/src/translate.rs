//! Translation: the mesh model → one proxy's configuration.
//!
//! Istio's pilot generates, for each proxy, listeners, routes, clusters and
//! endpoints from the service registry and the traffic rules; this module does the
//! same as a pure function of `(mesh, node)`, so the discovery server can call it for
//! every proxy on every change and tests can check it without a network.
//!
//! For a sidecar:
//! - **scope** — which services it is told about: those exported to its namespace
//!   and, when a Sidecar resource applies (workload selector > namespace default >
//!   root-namespace default), only the hosts its `egress` lists; and the outbound
//!   traffic policy (Sidecar's, else the mesh's);
//! - **clusters** — `outbound|port|subset|host` for every visible service port and
//!   DestinationRule subset, with the rule's policies; plus `PassthroughCluster`,
//!   `BlackHoleCluster` and the pod's own `inbound|port||` clusters;
//! - **routes** — one route configuration per HTTP port (`9080`) with a virtual host
//!   per service (VirtualService routes, or the default route) and the catch-all
//!   `allow_any` (passthrough) or `block_all` (502) virtual host;
//! - **listeners** — `virtualOutbound` on 15001 choosing by original destination
//!   port (HTTP), address (TCP) or SNI (TLS), unmatched traffic passed through or
//!   dropped; `virtualInbound` on 15006 delivering to the app, its connection
//!   managers (and TCP proxies) carrying the AuthorizationPolicies and
//!   RequestAuthentications that select the pod ([`authz`]); gateways carry theirs
//!   the same way.

pub mod authn;
pub mod authz;
pub mod clusters;
pub mod credentials;
pub mod gateway;
pub mod mesh;
pub mod names;
pub mod routes;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use meshlab_proxy_config::route::action::{ClusterSpecifier, RouteAction};
use meshlab_proxy_config::route::{
    Action, Domain, PathMatch, RetryPolicy, Route, RouteMatch, VirtualHost,
};
use meshlab_proxy_config::{
    BLACK_HOLE_CLUSTER, ChainMatch, ClusterLoadAssignment, DiscoveryType, DownstreamTls, Endpoint,
    EndpointAddress, FilterChain, HttpConnectionManager, Listener, MESH_MTLS_ALPN, NetworkFilter,
    PASSTHROUGH_CLUSTER, ProxyConfig, ProxyNode, RouteConfiguration, TcpProxy, TcpWeightedCluster,
    TrafficDirection,
};

use self::mesh::{Address, Mesh, MeshService, Protocol, ROOT_NAMESPACE, ServiceEndpoint, fqdn};
use self::routes::Context;
use crate::resource::networking::{OutboundMode, Sidecar};

/// The sidecar's outbound listener port.
pub const OUTBOUND_PORT: u16 = 15001;
/// The sidecar's inbound listener port.
pub const INBOUND_PORT: u16 = 15006;

/// What a Sidecar resource (or its absence) lets a proxy see and do.
#[derive(Clone, Debug)]
pub struct Scope {
    /// `(namespace pattern, host pattern)` pairs of the Sidecar's egress; `None`
    /// when no Sidecar applies (everything exported is visible).
    pub egress_hosts: Option<Vec<(String, String)>>,
    /// Where unmatched traffic goes.
    pub outbound_policy: OutboundMode,
    /// Which Sidecar applied, for dumps.
    pub origin: Option<String>,
    /// The Sidecar's `ingress` listeners: when there are any, the proxy accepts
    /// inbound traffic on these ports only, instead of its services' ports.
    pub ingress: Vec<IngressPort>,
}

/// One `ingress` listener of a Sidecar: traffic arriving at `port` goes to
/// `endpoint` (its `defaultEndpoint`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressPort {
    /// The port the workload receives traffic on.
    pub port: u16,
    /// How the proxy treats it (`port.protocol`, Istio's names).
    pub protocol: Protocol,
    /// Where it goes: `127.0.0.1:PORT`, or the pod's own address for `0.0.0.0:PORT`.
    pub endpoint: IngressEndpoint,
}

/// A Sidecar ingress listener's `defaultEndpoint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngressEndpoint {
    /// `127.0.0.1:PORT` (or `[::1]:PORT`): the app on loopback.
    Loopback(u16),
    /// `0.0.0.0:PORT` (or `[::]:PORT`): the app on the pod's address.
    InstanceIp(u16),
}

impl IngressEndpoint {
    /// `defaultEndpoint`'s forms Istio accepts, but `unix://` sockets (validation
    /// rejects those).
    pub fn parse(endpoint: &str) -> Option<Self> {
        let (host, port) = endpoint.rsplit_once(':')?;
        let port = port.parse().ok().filter(|p| *p != 0)?;
        match host {
            "127.0.0.1" | "[::1]" => Some(Self::Loopback(port)),
            "0.0.0.0" | "[::]" => Some(Self::InstanceIp(port)),
            _ => None,
        }
    }
}

/// The Sidecar resource for `node`: one selecting it, else its namespace's default,
/// else the root namespace's default (Istio's precedence).
pub fn scope(mesh: &Mesh, node: &ProxyNode) -> Scope {
    let namespace_of = |s: &Sidecar| {
        s.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned())
    };
    let selecting = mesh.sidecars.iter().find(|s| {
        namespace_of(s) == node.namespace
            && s.spec.workload_selector.as_ref().is_some_and(|sel| {
                !sel.labels.is_empty()
                    && sel
                        .labels
                        .iter()
                        .all(|(k, v)| node.labels.get(k) == Some(v))
            })
    });
    let default_in = |ns: &str| {
        mesh.sidecars
            .iter()
            .find(|s| namespace_of(s) == ns && s.spec.workload_selector.is_none())
    };
    let chosen = selecting
        .or_else(|| default_in(&node.namespace))
        .or_else(|| default_in(ROOT_NAMESPACE));
    let Some(sidecar) = chosen else {
        return Scope {
            egress_hosts: None,
            outbound_policy: mesh.outbound_policy,
            origin: None,
            ingress: Vec::new(),
        };
    };
    let sidecar_ns = namespace_of(sidecar);
    let egress_hosts = (!sidecar.spec.egress.is_empty()).then(|| {
        sidecar
            .spec
            .egress
            .iter()
            .flat_map(|e| &e.hosts)
            .filter_map(|h| {
                let (ns, host) = h.split_once('/')?;
                // `.` is the Sidecar's own namespace (the proxy's, for its defaults).
                let ns = if ns == "." {
                    sidecar_ns.clone()
                } else {
                    ns.to_owned()
                };
                Some((ns, host.to_owned()))
            })
            .collect()
    });
    Scope {
        egress_hosts,
        outbound_policy: sidecar
            .spec
            .outbound_traffic_policy
            .as_ref()
            .and_then(|p| p.mode)
            .unwrap_or(mesh.outbound_policy),
        origin: Some(format!("Sidecar/{sidecar_ns}/{}", sidecar.metadata.name)),
        ingress: sidecar
            .spec
            .ingress
            .iter()
            .filter_map(|listener| {
                Some(IngressPort {
                    port: u16::try_from(listener.port.number).ok()?,
                    protocol: Protocol::infer(&listener.port.protocol, None),
                    endpoint: IngressEndpoint::parse(&listener.default_endpoint)?,
                })
            })
            .collect(),
    }
}

impl Scope {
    fn allows(&self, service: &MeshService) -> bool {
        let Some(hosts) = &self.egress_hosts else {
            return true;
        };
        hosts.iter().any(|(ns, host)| {
            let ns_ok = ns == "*" || *ns == service.namespace;
            let host_ok = clusters::host_matches(host, &service.hostname)
                || (!service.short_name.is_empty()
                    && clusters::host_matches(host, &service.short_name));
            ns_ok && host_ok && !ns.starts_with('~')
        })
    }
}

pub use gateway::gateway;

/// What the discovery server generates from: the mesh model and the pods, so that a
/// proxy's identity (labels, service account, address) comes from the control
/// plane's own records rather than from what the proxy claims.
///
/// A view is immutable; it remembers each proxy's configuration once made, because
/// the discovery server asks for it once per resource type (CDS, EDS, LDS, RDS).
#[derive(Debug)]
pub struct View {
    /// The mesh.
    pub mesh: Mesh,
    /// The pods.
    pub pods: crate::pod::Pods,
    generated: std::sync::Mutex<BTreeMap<ProxyNode, std::sync::Arc<ProxyConfig>>>,
}

impl View {
    /// The view of `mesh` with `pods`.
    pub fn new(mesh: Mesh, pods: crate::pod::Pods) -> Self {
        View {
            mesh,
            pods,
            generated: std::sync::Mutex::default(),
        }
    }

    /// The configuration of the proxy `node` names.
    pub fn config_for(&self, node: &ProxyNode) -> std::sync::Arc<ProxyConfig> {
        let node = self
            .pods
            .iter()
            .find(|p| p.name == node.pod && p.namespace == node.namespace)
            .map_or_else(
                || node.clone(),
                |pod| ProxyNode {
                    kind: node.kind,
                    pod: pod.name.clone(),
                    namespace: pod.namespace.clone(),
                    ip: pod.ip.clone().unwrap_or_else(|| node.ip.clone()),
                    labels: pod.labels.clone(),
                    service_account: pod.service_account.clone(),
                },
            );
        let mut generated = self
            .generated
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        generated
            .entry(node)
            .or_insert_with_key(|node| std::sync::Arc::new(proxy_config(&self.mesh, node)))
            .clone()
    }
}

/// The configuration of any proxy: a gateway's or a sidecar's.
pub fn proxy_config(mesh: &Mesh, node: &ProxyNode) -> ProxyConfig {
    match node.kind {
        meshlab_proxy_config::ProxyKind::Router => gateway(mesh, node),
        meshlab_proxy_config::ProxyKind::Sidecar => sidecar(mesh, node),
    }
}

/// One sidecar's whole configuration.
pub fn sidecar(mesh: &Mesh, node: &ProxyNode) -> ProxyConfig {
    let scope = scope(mesh, node);
    let mut config = ProxyConfig::default();
    for cluster in clusters::special_clusters() {
        config.clusters.insert(cluster.name.clone(), cluster);
    }
    let visible: Vec<&MeshService> = mesh
        .services
        .values()
        .filter(|s| s.visible_from(&node.namespace) && scope.allows(s))
        .collect();

    let mut http_hosts: BTreeMap<u16, Vec<VirtualHost>> = BTreeMap::new();
    let mut chains = Vec::new();
    for service in &visible {
        let rule = clusters::destination_rule(mesh, service, &node.namespace, &node.labels);
        let hash = clusters::hash_policy(rule);
        add_clusters(mesh, node, &mut config, service, rule);
        for port in &service.ports {
            let default_cluster = names::outbound_cluster(port.number, "", &service.hostname);
            match port.protocol {
                Protocol::Http | Protocol::Http2 => {
                    let cx = Context {
                        namespace: &node.namespace,
                        labels: &node.labels,
                        gateways: &["mesh".to_owned()],
                        port: port.number,
                    };
                    let mut routes: Vec<Route> =
                        virtual_service_for(mesh, service, &node.namespace, true)
                            .map(|vs| routes::http_routes(mesh, vs, cx, &hash))
                            .unwrap_or_default();
                    let origin = routes
                        .first()
                        .map(|r| r.origin.split('#').next().unwrap_or_default().to_owned())
                        .unwrap_or_else(|| service.origin.clone());
                    if routes.is_empty() {
                        routes.push(default_route(
                            &default_cluster,
                            &service.hostname,
                            port.number,
                            &hash,
                        ));
                    }
                    for route in &mut routes {
                        route.decorator = Some(format!("{}:{}/*", service.hostname, port.number));
                    }
                    http_hosts
                        .entry(port.number)
                        .or_default()
                        .push(VirtualHost {
                            name: names::virtual_host(&service.hostname, port.number),
                            domains: domains(service, port.number, &node.namespace),
                            routes,
                            origin,
                        });
                }
                Protocol::Tcp => {
                    let ips: Vec<IpAddr> = service
                        .endpoints
                        .iter()
                        .filter_map(|e| match e.address {
                            Address::Ip(ip) => Some(ip),
                            Address::Dns(_) => None,
                        })
                        .collect();
                    if !ips.is_empty() {
                        let destinations =
                            l4_destinations(mesh, service, &node.namespace, port.number, None)
                                .unwrap_or_else(|| single(&default_cluster));
                        chains.push(l4_chain(
                            destinations,
                            ChainMatch {
                                destination_port: Some(port.number),
                                destination_ips: ips,
                                ..ChainMatch::default()
                            },
                        ));
                    }
                }
                Protocol::Tls => chains.push(l4_chain(
                    l4_destinations(
                        mesh,
                        service,
                        &node.namespace,
                        port.number,
                        Some(&service.hostname),
                    )
                    .unwrap_or_else(|| single(&default_cluster)),
                    ChainMatch {
                        destination_port: Some(port.number),
                        server_names: vec![service.hostname.clone()],
                        transport_protocol: Some("tls".to_owned()),
                        ..ChainMatch::default()
                    },
                )),
            }
        }
    }

    let policy_origin = scope
        .origin
        .clone()
        .unwrap_or_else(|| "outboundTrafficPolicy of the mesh".to_owned());
    let catch_all = match scope.outbound_policy {
        OutboundMode::AllowAny => VirtualHost::allow_any(&policy_origin),
        OutboundMode::RegistryOnly => VirtualHost::block_all(&policy_origin),
    };
    for (port, mut hosts) in http_hosts {
        hosts.push(catch_all.clone());
        let name = names::outbound_route(port);
        config.routes.insert(
            name.clone(),
            RouteConfiguration {
                name: name.clone(),
                virtual_hosts: hosts,
                ignore_port_in_host_matching: false,
            },
        );
        chains.push(FilterChain {
            name: names::outbound_chain(port),
            matcher: ChainMatch {
                destination_port: Some(port),
                ..ChainMatch::default()
            },
            filter: NetworkFilter::HttpConnectionManager(HttpConnectionManager {
                stat_prefix: format!("outbound_0.0.0.0_{port}"),
                route_config_name: name,
                authorization: None,
            }),
            tls: None,
        });
    }
    let unmatched = match scope.outbound_policy {
        OutboundMode::AllowAny => PASSTHROUGH_CLUSTER,
        OutboundMode::RegistryOnly => BLACK_HOLE_CLUSTER,
    };
    config.listeners.insert(
        names::VIRTUAL_OUTBOUND.to_owned(),
        Listener {
            name: names::VIRTUAL_OUTBOUND.to_owned(),
            address: SocketAddr::from((Ipv4Addr::UNSPECIFIED, OUTBOUND_PORT)),
            direction: TrafficDirection::Outbound,
            use_original_dst: true,
            filter_chains: chains,
            default_filter_chain: Some(tcp_chain(unmatched, ChainMatch::default())),
        },
    );
    inbound(mesh, node, &scope.ingress, &mut config);
    config
}

/// The clusters of every port and subset of `service`, with their endpoints.
fn add_clusters(
    mesh: &Mesh,
    node: &ProxyNode,
    config: &mut ProxyConfig,
    service: &MeshService,
    rule: Option<&crate::resource::networking::DestinationRule>,
) {
    // Gateways always read `credentialName`s; sidecars only from selected rules.
    let credentials_apply = node.kind == meshlab_proxy_config::ProxyKind::Router
        || rule.is_some_and(|r| r.spec.workload_selector.is_some());
    for port in &service.ports {
        let mut subsets = vec![None];
        subsets.extend(rule.iter().flat_map(|r| r.spec.subsets.iter().map(Some)));
        for subset in subsets {
            let mut cluster = clusters::cluster(service, port.number, subset, rule);
            clusters::apply_credential(
                &mut cluster,
                clusters::client_tls(rule, subset, port.number),
                credentials_apply,
                |name| credentials::credential(mesh, &node.namespace, name),
                &mut config.secrets,
            );
            let endpoints = endpoints(mesh, service, port.number, subset.map(|s| &s.labels));
            if cluster.discovery != DiscoveryType::OriginalDst {
                config.endpoints.insert(
                    cluster.name.clone(),
                    ClusterLoadAssignment {
                        cluster_name: cluster.name.clone(),
                        endpoints,
                    },
                );
            }
            config.clusters.insert(cluster.name.clone(), cluster);
        }
    }
}

/// The first VirtualService (oldest) for `service` visible from `namespace`, bound
/// to the mesh (sidecars) or not.
fn virtual_service_for<'m>(
    mesh: &'m Mesh,
    service: &MeshService,
    namespace: &str,
    for_mesh: bool,
) -> Option<&'m crate::resource::networking::VirtualService> {
    mesh.virtual_services.iter().find(|vs| {
        let vs_namespace = vs.metadata.namespace.as_deref().unwrap_or("default");
        let bound = vs.spec.gateways.is_empty() || vs.spec.gateways.iter().any(|g| g == "mesh");
        (bound || !for_mesh)
            && mesh::exported_to(&vs.spec.export_to, vs_namespace, namespace)
            && vs
                .spec
                .hosts
                .iter()
                .any(|h| clusters::host_matches(&fqdn(h, vs_namespace), &service.hostname))
    })
}

/// Where a VirtualService's `tcp` (or, with an SNI, `tls`) routes send a TCP or TLS
/// service's connections on `port`: the first route whose match fits (port, and
/// SNI for TLS), to its destinations by weight — each connection to one of them,
/// as Envoy's `tcp_proxy` with `weighted_clusters` does.
fn l4_destinations(
    mesh: &Mesh,
    service: &MeshService,
    namespace: &str,
    port: u16,
    sni: Option<&str>,
) -> Option<Vec<TcpWeightedCluster>> {
    let vs = virtual_service_for(mesh, service, namespace, true)?;
    let vs_namespace = vs.metadata.namespace.as_deref().unwrap_or("default");
    let port_ok = |p: Option<u32>| p.is_none_or(|p| p == u32::from(port));
    let route = match sni {
        None => {
            &vs.spec
                .tcp
                .iter()
                .find(|r| r.matches.is_empty() || r.matches.iter().any(|m| port_ok(m.port)))?
                .route
        }
        Some(sni) => {
            &vs.spec
                .tls
                .iter()
                .find(|r| {
                    r.matches.iter().any(|m| {
                        port_ok(m.port)
                            && m.sni_hosts.iter().any(|h| clusters::host_matches(h, sni))
                    })
                })?
                .route
        }
    };
    let mut destinations: Vec<TcpWeightedCluster> = route
        .iter()
        .map(|d| TcpWeightedCluster {
            name: routes::destination_cluster(mesh, &d.destination, vs_namespace, port),
            weight: u32::try_from(d.weight).unwrap_or(0),
        })
        .collect();
    // A lone destination without weight takes everything, as Istio reads it.
    if let [only] = destinations.as_mut_slice() {
        only.weight = 100;
    }
    (!destinations.is_empty()).then_some(destinations)
}

fn single(cluster: &str) -> Vec<TcpWeightedCluster> {
    vec![TcpWeightedCluster {
        name: cluster.to_owned(),
        weight: 100,
    }]
}

/// A TCP proxy chain to `destinations` (at least one), weighted when several.
fn l4_chain(mut destinations: Vec<TcpWeightedCluster>, matcher: ChainMatch) -> FilterChain {
    let first = destinations
        .first()
        .map(|d| d.name.clone())
        .unwrap_or_default();
    if destinations.len() == 1 {
        destinations.clear();
    }
    FilterChain {
        name: first.clone(),
        matcher,
        filter: NetworkFilter::TcpProxy(TcpProxy {
            stat_prefix: first.clone(),
            cluster: first,
            weighted_clusters: destinations,
            authorization: None,
        }),
        tls: None,
    }
}

/// A service's route when no VirtualService names it: all endpoints, Istio's
/// default retries, no timeout.
fn default_route(
    cluster: &str,
    host: &str,
    port: u16,
    hash: &[meshlab_proxy_config::route::action::HashPolicy],
) -> Route {
    Route {
        name: "default".to_owned(),
        matcher: RouteMatch::path(PathMatch::Prefix("/".to_owned())),
        action: Action::Route(RouteAction {
            cluster: ClusterSpecifier::Cluster(cluster.to_owned()),
            timeout: None,
            retry: Some(RetryPolicy::istio_default()),
            rewrite: None,
            host_rewrite: None,
            mirrors: Vec::new(),
            hash_policy: hash.to_vec(),
        }),
        request_headers: Default::default(),
        response_headers: Default::default(),
        fault: None,
        origin: format!("default route of {host}:{port}"),
        decorator: None,
    }
}

/// The route of an inbound port: everything to the app, with no retries (the
/// calling sidecar retries; Istio's inbound routes carry none).
fn inbound_route(cluster: &str, pod: &str, port: u16) -> Route {
    let mut route = default_route(cluster, pod, port, &[]);
    if let Action::Route(action) = &mut route.action {
        action.retry = None;
    }
    route.decorator = Some(format!("{pod}:{port}/*"));
    route
}

/// The names a client may use for `service` on `port`: its full name, and for
/// Kubernetes services the shorter forms DNS search domains make valid — the bare
/// name only from its own namespace — each with and without the port.
fn domains(service: &MeshService, port: u16, namespace: &str) -> Vec<Domain> {
    let mut names = vec![service.hostname.clone()];
    if !service.short_name.is_empty() {
        let ns = &service.namespace;
        let short = &service.short_name;
        if ns == namespace {
            names.push(short.clone());
        }
        names.push(format!("{short}.{ns}"));
        names.push(format!("{short}.{ns}.svc"));
    }
    let mut domains = Vec::new();
    for name in names {
        domains.push(Domain::from(format!("{name}:{port}")));
        domains.push(Domain::from(name));
    }
    domains
}

fn endpoints(
    mesh: &Mesh,
    service: &MeshService,
    port: u16,
    subset: Option<&BTreeMap<String, String>>,
) -> Vec<Endpoint> {
    service
        .endpoints
        .iter()
        .filter(|e| {
            subset.is_none_or(|labels| labels.iter().all(|(k, v)| e.labels.get(k) == Some(v)))
        })
        .filter_map(|e| endpoint(mesh, e, port))
        .collect()
}

fn endpoint(mesh: &Mesh, e: &ServiceEndpoint, port: u16) -> Option<Endpoint> {
    let target = *e.ports.get(&port)?;
    // Istio's `tlsMode: istio` endpoint label, cleared when the workload's
    // PeerAuthentication disables mTLS on that port (auto mTLS then sends
    // plaintext).
    let mtls_capable = e.has_sidecar
        && authn::mtls_policy(mesh, &e.namespace, &e.labels).mode_for(target)
            != authn::Mode::Disable;
    Some(Endpoint {
        address: match &e.address {
            Address::Ip(ip) => EndpointAddress::Socket(SocketAddr::new(*ip, target)),
            Address::Dns(host) => EndpointAddress::Dns {
                host: host.clone(),
                port: target,
            },
        },
        labels: e.labels.clone(),
        weight: 1,
        service_account: e
            .service_account
            .as_ref()
            .map(|sa| crate::ca::spiffe_id(&e.namespace, sa)),
        has_sidecar: mtls_capable,
    })
}

fn tcp_chain(cluster: &str, matcher: ChainMatch) -> FilterChain {
    l4_chain(single(cluster), matcher)
}

/// `virtualInbound`: the ports of the services this pod serves, delivered to the app
/// on 127.0.0.1; anything else passed to its original destination. Each chain
/// accepts what the workload's PeerAuthentication says ([`authn`]): mTLS only
/// (STRICT), plaintext only (DISABLE), or both told apart by the first bytes
/// (PERMISSIVE, two chains).
///
/// Without kube-proxy, a client with no sidecar reaches the pod on the *Service*
/// port (`httpbin:8000`, its DNS alias), where Kubernetes would have translated it
/// to the target port (8080): so each Service port that differs from its target
/// port gets the target port's chains too, as kube-proxy's DNAT would deliver it.
///
/// A Sidecar with `ingress` listeners replaces all of that with its own ports, each
/// forwarded to its `defaultEndpoint`.
fn inbound(mesh: &Mesh, node: &ProxyNode, ingress: &[IngressPort], config: &mut ProxyConfig) {
    let mut ports: BTreeMap<u16, Protocol> = BTreeMap::new();
    let mut aliases: BTreeMap<u16, u16> = BTreeMap::new();
    let mut forward_to: BTreeMap<u16, SocketAddr> = BTreeMap::new();
    for listener in ingress {
        ports.entry(listener.port).or_insert(listener.protocol);
        let address = match listener.endpoint {
            IngressEndpoint::Loopback(port) => SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            IngressEndpoint::InstanceIp(port) => {
                let ip = node.ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
                SocketAddr::new(ip, port)
            }
        };
        forward_to.entry(listener.port).or_insert(address);
    }
    for service in mesh.services.values().filter(|_| ingress.is_empty()) {
        for endpoint in service
            .endpoints
            .iter()
            .filter(|e| e.pod.as_deref() == Some(&node.pod))
        {
            for port in &service.ports {
                if let Some(target) = endpoint.ports.get(&port.number) {
                    ports.entry(*target).or_insert(port.protocol);
                    if port.number != *target {
                        aliases.entry(port.number).or_insert(*target);
                    }
                }
            }
        }
    }
    let authorization = authz::authorization(mesh, node);
    aliases.retain(|port, _| !ports.contains_key(port));
    let policy = authn::mtls_policy(mesh, &node.namespace, &node.labels);
    let mut chains = Vec::new();
    let mut filters = BTreeMap::new();
    for (port, protocol) in &ports {
        let port = *port;
        let cluster_name = names::inbound_cluster(port);
        let mut cluster = meshlab_proxy_config::Cluster::new(cluster_name.clone());
        cluster.discovery = DiscoveryType::Static;
        cluster.http2 = *protocol == Protocol::Http2;
        config.endpoints.insert(
            cluster_name.clone(),
            ClusterLoadAssignment {
                cluster_name: cluster_name.clone(),
                endpoints: vec![Endpoint {
                    address: EndpointAddress::Socket(
                        forward_to
                            .get(&port)
                            .copied()
                            .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
                    ),
                    labels: node.labels.clone(),
                    weight: 1,
                    service_account: None,
                    has_sidecar: true,
                }],
            },
        );
        config.clusters.insert(cluster_name.clone(), cluster);
        // The app's own TLS (PERMISSIVE, no `istio*` ALPN) is relayed as bytes; JWTs
        // are HTTP, so a TCP chain enforces only the policies.
        let tcp = NetworkFilter::TcpProxy(TcpProxy {
            stat_prefix: cluster_name.clone(),
            cluster: cluster_name.clone(),
            weighted_clusters: Vec::new(),
            authorization: authorization
                .as_ref()
                .filter(|a| !a.policies.is_empty())
                .map(|a| meshlab_proxy_config::Authorization {
                    jwt_providers: Vec::new(),
                    policies: a.policies.clone(),
                }),
        });
        let filter = if protocol.is_http() {
            let route = RouteConfiguration {
                name: cluster_name.clone(),
                virtual_hosts: vec![VirtualHost {
                    name: format!("inbound|http|{port}"),
                    domains: vec![Domain::from("*")],
                    routes: vec![inbound_route(&cluster_name, &node.pod, port)],
                    origin: format!("inbound port {port}"),
                }],
                ignore_port_in_host_matching: false,
            };
            config.routes.insert(cluster_name.clone(), route);
            NetworkFilter::HttpConnectionManager(HttpConnectionManager {
                stat_prefix: format!("inbound_0.0.0.0_{port}"),
                route_config_name: cluster_name.clone(),
                authorization: authorization.clone(),
            })
        } else {
            tcp.clone()
        };
        filters.insert(port, (filter, tcp));
    }
    for (port, target) in ports.keys().map(|p| (*p, *p)).chain(aliases) {
        let Some((filter, tcp)) = filters.get(&target) else {
            continue;
        };
        let name = if port == target {
            format!("0.0.0.0_{port}")
        } else {
            format!("0.0.0.0_{port}->{target}")
        };
        chains.extend(secured(
            &name,
            &ChainMatch {
                destination_port: Some(port),
                ..ChainMatch::default()
            },
            filter,
            tcp,
            policy.mode_for(target),
        ));
    }
    let passthrough = tcp_chain(names::INBOUND_PASSTHROUGH, ChainMatch::default());
    let mut catch_all = secured(
        &passthrough.name,
        &ChainMatch::default(),
        &passthrough.filter,
        &passthrough.filter,
        policy.mode,
    );
    // The last chain is the one for plaintext (PERMISSIVE) or the only one.
    let default_chain = catch_all.pop();
    chains.extend(catch_all);
    config.listeners.insert(
        names::VIRTUAL_INBOUND.to_owned(),
        Listener {
            name: names::VIRTUAL_INBOUND.to_owned(),
            address: SocketAddr::from((Ipv4Addr::UNSPECIFIED, INBOUND_PORT)),
            direction: TrafficDirection::Inbound,
            use_original_dst: true,
            filter_chains: chains,
            default_filter_chain: default_chain,
        },
    );
}

/// The chains for `filter` on connections `matcher` takes, under `mode`: one
/// terminating mTLS (STRICT), one plaintext (DISABLE), or, told apart by the first
/// bytes (PERMISSIVE), mTLS for a ClientHello offering Istio's `istio*` ALPN, the
/// app's own TLS relayed untouched by `tcp`, and plaintext last.
fn secured(
    name: &str,
    matcher: &ChainMatch,
    filter: &NetworkFilter,
    tcp: &NetworkFilter,
    mode: authn::Mode,
) -> Vec<FilterChain> {
    let chain =
        |transport: Option<&str>, alpn: &[&str], filter: &NetworkFilter, tls: bool| FilterChain {
            name: name.to_owned(),
            matcher: ChainMatch {
                transport_protocol: transport.map(str::to_owned),
                application_protocols: alpn.iter().map(|p| (*p).to_owned()).collect(),
                ..matcher.clone()
            },
            filter: filter.clone(),
            tls: tls.then(|| DownstreamTls {
                certificate: names::WORKLOAD_SECRET.to_owned(),
                require_client_certificate: true,
                trusted_ca: None,
            }),
        };
    match mode {
        authn::Mode::Strict => vec![chain(None, &[], filter, true)],
        authn::Mode::Disable => vec![chain(None, &[], filter, false)],
        authn::Mode::Permissive => vec![
            chain(Some("tls"), &MESH_MTLS_ALPN, filter, true),
            chain(Some("tls"), &[], tcp, false),
            chain(Some("raw_buffer"), &[], filter, false),
        ],
    }
}

#[cfg(test)]
mod tests;
