//! The mesh model: services, their ports and endpoints, and the Istio resources that
//! shape traffic to them, as one immutable value built from a store snapshot and the
//! reconciler's pods.
//!
//! Istio's pilot keeps the same split: a service registry (Kubernetes Services and
//! ServiceEntries become one kind of *service*) and a config store; generators read
//! both. Building the model once per change keeps every generator a pure function of
//! `(mesh, proxy)`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::pod::Pod;
use crate::resource::Resource;
use crate::resource::core::{Deployment, IntOrString, Service as KubeService};
use crate::resource::networking::{
    DestinationRule, Gateway, Location, OutboundMode, Resolution, ServiceEntry, Sidecar,
    VirtualService,
};
use crate::resource::security::{AuthorizationPolicy, PeerAuthentication, RequestAuthentication};
use crate::store::Snapshot;

/// The namespace whose Sidecar and policies apply mesh-wide (Istio's default).
pub const ROOT_NAMESPACE: &str = "istio-system";

/// The cluster domain.
pub const CLUSTER_DOMAIN: &str = "svc.cluster.local";

/// What a port carries, as Istio infers it from the port's name or protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    /// HTTP/1.1 (and h2c).
    Http,
    /// HTTP/2, gRPC.
    Http2,
    /// TLS (the proxy sees only SNI).
    Tls,
    /// Opaque TCP.
    Tcp,
}

impl Protocol {
    /// Istio's rule: `appProtocol` first, else the name's prefix before `-`
    /// (`http`, `http-web`, `grpc`, `https`, `tcp`, …). An unnamed port is sniffed by
    /// Istio; meshlab treats it as HTTP, which is what sniffing finds for every app
    /// the labs run.
    pub fn infer(name: &str, app_protocol: Option<&str>) -> Protocol {
        let name = app_protocol.unwrap_or(name).to_ascii_lowercase();
        let prefix = name.split('-').next().unwrap_or_default();
        match prefix {
            "http2" | "grpc" | "grpc-web" | "h2c" => Protocol::Http2,
            "https" | "tls" => Protocol::Tls,
            "tcp" | "mongo" | "mysql" | "redis" | "mqtt" => Protocol::Tcp,
            _ => Protocol::Http,
        }
    }

    /// Whether the proxy routes it as HTTP.
    pub fn is_http(self) -> bool {
        matches!(self, Protocol::Http | Protocol::Http2)
    }
}

/// One port of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    /// The port's name.
    pub name: String,
    /// The service port.
    pub number: u16,
    /// Its protocol.
    pub protocol: Protocol,
}

/// Where an endpoint is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Address {
    /// An IP: a pod or a static endpoint.
    Ip(IpAddr),
    /// A name the proxy resolves (ServiceEntry `DNS`).
    Dns(String),
}

/// One endpoint of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEndpoint {
    /// Its address.
    pub address: Address,
    /// The endpoint's port for each service port.
    pub ports: BTreeMap<u16, u16>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its identity's service account, when known.
    pub service_account: Option<String>,
    /// Its namespace (for the SPIFFE identity).
    pub namespace: String,
    /// Whether it runs a sidecar.
    pub has_sidecar: bool,
    /// The pod it is, when it is one.
    pub pod: Option<String>,
}

/// How a service came to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    /// A Kubernetes Service.
    Kubernetes,
    /// A ServiceEntry host.
    Entry {
        /// MESH_EXTERNAL or MESH_INTERNAL.
        external: bool,
        /// How its endpoints are found.
        resolution: Resolution,
    },
}

/// A service: a host name with ports and endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshService {
    /// `reviews.default.svc.cluster.local`, `httpbin.org`.
    pub hostname: String,
    /// The namespace that declared it.
    pub namespace: String,
    /// The Kubernetes name (`reviews`), for short-name domains; empty for entries.
    pub short_name: String,
    /// Its ports.
    pub ports: Vec<ServicePort>,
    /// Its endpoints.
    pub endpoints: Vec<ServiceEndpoint>,
    /// Where it came from.
    pub kind: ServiceKind,
    /// Namespaces it is visible to (`*` = all, `.` = its own).
    pub export_to: Vec<String>,
    /// Which resource declared it, for `origin`.
    pub origin: String,
}

impl MeshService {
    /// Whether a proxy in `namespace` may see it.
    pub fn visible_from(&self, namespace: &str) -> bool {
        exported_to(&self.export_to, &self.namespace, namespace)
    }
}

/// Istio's `exportTo`: empty or `*` means everywhere, `.` the declaring namespace.
pub fn exported_to(export_to: &[String], own: &str, namespace: &str) -> bool {
    export_to.is_empty()
        || export_to
            .iter()
            .any(|e| e == "*" || (e == "." && own == namespace) || e == namespace)
}

/// The mesh at one moment.
#[derive(Clone, Debug)]
pub struct Mesh {
    /// Every service, by host name.
    pub services: BTreeMap<String, MeshService>,
    /// VirtualServices, oldest first (Istio's tie-break for conflicts).
    pub virtual_services: Vec<VirtualService>,
    /// DestinationRules, oldest first.
    pub destination_rules: Vec<DestinationRule>,
    /// Sidecar resources.
    pub sidecars: Vec<Sidecar>,
    /// Gateways.
    pub gateways: Vec<Gateway>,
    /// PeerAuthentications, oldest first (Istio's tie-break).
    pub peer_authentications: Vec<PeerAuthentication>,
    /// Mesh-wide `outboundTrafficPolicy.mode` (ALLOW_ANY unless set).
    pub outbound_policy: OutboundMode,
    /// AuthorizationPolicies.
    pub authorization_policies: Vec<AuthorizationPolicy>,
    /// RequestAuthentications.
    pub request_authentications: Vec<RequestAuthentication>,
    /// JSON Web Key Sets fetched from `jwksUri`s (by URI), or why not; filled in by
    /// the control plane's fetcher after [`Mesh::build`] (empty in tests).
    pub jwks: BTreeMap<String, Result<String, String>>,
    /// Secrets' decoded values, by `(namespace, name)`, then key.
    pub secrets: BTreeMap<(String, String), BTreeMap<String, Vec<u8>>>,
}

impl Mesh {
    /// The model of `snapshot` with the pods the reconciler runs.
    pub fn build(snapshot: &Snapshot, pods: &[Pod], outbound_policy: OutboundMode) -> Mesh {
        let mut mesh = Mesh {
            services: BTreeMap::new(),
            virtual_services: Vec::new(),
            destination_rules: Vec::new(),
            sidecars: Vec::new(),
            gateways: Vec::new(),
            peer_authentications: Vec::new(),
            outbound_policy,
            authorization_policies: Vec::new(),
            request_authentications: Vec::new(),
            jwks: BTreeMap::new(),
            secrets: BTreeMap::new(),
        };
        let deployments: BTreeMap<(String, String), &Deployment> = snapshot
            .iter()
            .filter_map(|(_, r)| match r.as_ref() {
                Resource::Deployment(d) => Some((
                    (
                        namespace_of(d.metadata.namespace.as_deref()),
                        d.metadata.name.clone(),
                    ),
                    d,
                )),
                _ => None,
            })
            .collect();
        let injected: BTreeMap<String, bool> = snapshot
            .iter()
            .filter_map(|(_, r)| match r.as_ref() {
                Resource::Namespace(ns) => Some((
                    ns.metadata.name.clone(),
                    ns.metadata
                        .labels
                        .get("istio-injection")
                        .map(String::as_str)
                        == Some("enabled"),
                )),
                _ => None,
            })
            .collect();
        for (_, resource) in snapshot.iter() {
            match resource.as_ref() {
                Resource::Service(service) => {
                    let built = kubernetes_service(service, pods, &deployments, &injected);
                    mesh.services.insert(built.hostname.clone(), built);
                }
                Resource::ServiceEntry(entry) => {
                    for built in entry_services(entry, pods, &injected) {
                        mesh.services.entry(built.hostname.clone()).or_insert(built);
                    }
                }
                Resource::VirtualService(vs) => mesh.virtual_services.push(vs.clone()),
                Resource::DestinationRule(dr) => mesh.destination_rules.push(dr.clone()),
                Resource::Sidecar(sidecar) => mesh.sidecars.push(sidecar.clone()),
                Resource::Gateway(gateway) => mesh.gateways.push(gateway.clone()),
                Resource::AuthorizationPolicy(policy) => {
                    mesh.authorization_policies.push(policy.clone());
                }
                Resource::RequestAuthentication(authn) => {
                    mesh.request_authentications.push(authn.clone());
                }
                Resource::PeerAuthentication(pa) => mesh.peer_authentications.push(pa.clone()),
                // Validation refused undecodable data on apply.
                Resource::Secret(secret) => {
                    if let Ok(values) = secret.decoded() {
                        let namespace = namespace_of(secret.metadata.namespace.as_deref());
                        mesh.secrets
                            .insert((namespace, secret.metadata.name.clone()), values);
                    }
                }
                _ => {}
            }
        }
        let created =
            |meta: &crate::resource::meta::ObjectMeta| (meta.creation_timestamp, meta.name.clone());
        mesh.virtual_services.sort_by_key(|v| created(&v.metadata));
        mesh.destination_rules.sort_by_key(|d| created(&d.metadata));
        mesh.peer_authentications
            .sort_by_key(|p| created(&p.metadata));
        mesh
    }

    /// The service a host names from `namespace`: a full name, or a short or
    /// partial Kubernetes name resolved as DNS search domains would.
    pub fn resolve_host(&self, host: &str, namespace: &str) -> Option<&MeshService> {
        self.services
            .get(host)
            .or_else(|| self.services.get(&fqdn(host, namespace)))
    }
}

/// Istio's short-name rule for hosts in VirtualServices, DestinationRules and
/// destinations: a name without dots is a service of the resource's namespace
/// (`reviews` in `default` → `reviews.default.svc.cluster.local`); a name with dots
/// is taken as written (`httpbin.org`, `reviews.default.svc.cluster.local`), as
/// Istio's `ResolveShortnameToFQDN` does. `*` stays `*`.
pub fn fqdn(host: &str, namespace: &str) -> String {
    if host.contains('.') || host.starts_with('*') {
        host.to_owned()
    } else {
        format!("{host}.{namespace}.{CLUSTER_DOMAIN}")
    }
}

fn namespace_of(namespace: Option<&str>) -> String {
    namespace.unwrap_or("default").to_owned()
}

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Whether a pod runs a sidecar: its namespace is labelled for injection and the pod
/// does not opt out.
fn has_sidecar(
    pod: &Pod,
    injected: &BTreeMap<String, bool>,
    annotations: Option<&BTreeMap<String, String>>,
) -> bool {
    let opted_out = annotations
        .and_then(|a| a.get("sidecar.istio.io/inject"))
        .is_some_and(|v| v == "false");
    injected.get(&pod.namespace).copied().unwrap_or(false) && !opted_out
}

fn kubernetes_service(
    service: &KubeService,
    pods: &[Pod],
    deployments: &BTreeMap<(String, String), &Deployment>,
    injected: &BTreeMap<String, bool>,
) -> MeshService {
    let namespace = namespace_of(service.metadata.namespace.as_deref());
    let ports: Vec<ServicePort> = service
        .spec
        .ports
        .iter()
        .filter_map(|p| {
            Some(ServicePort {
                name: p.name.clone().unwrap_or_default(),
                number: u16::try_from(p.port).ok()?,
                protocol: Protocol::infer(
                    p.name.as_deref().unwrap_or_default(),
                    p.app_protocol.as_deref(),
                ),
            })
        })
        .collect();
    let endpoints = pods
        .iter()
        .filter(|pod| pod.namespace == namespace && pod.is_ready() && !pod.outdated)
        .filter(|pod| selects(&service.spec.selector, &pod.labels))
        .filter_map(|pod| {
            let ip: IpAddr = pod.ip.as_deref()?.parse().ok()?;
            let template = pod
                .deployment
                .as_ref()
                .and_then(|d| deployments.get(&(namespace.clone(), d.clone())))
                .map(|d| &d.spec.template);
            let container_ports: BTreeMap<String, u16> = template
                .into_iter()
                .flat_map(|t| &t.spec.containers)
                .flat_map(|c| &c.ports)
                .filter_map(|p| Some((p.name.clone()?, u16::try_from(p.container_port).ok()?)))
                .collect();
            let ports = service
                .spec
                .ports
                .iter()
                .filter_map(|p| {
                    let port = u16::try_from(p.port).ok()?;
                    let target = match &p.target_port {
                        None => port,
                        Some(IntOrString::Int(n)) => u16::try_from(*n).ok()?,
                        Some(IntOrString::String(name)) => *container_ports.get(name)?,
                    };
                    Some((port, target))
                })
                .collect();
            Some(ServiceEndpoint {
                address: Address::Ip(ip),
                ports,
                labels: pod.labels.clone(),
                service_account: Some(pod.service_account.clone()),
                namespace: pod.namespace.clone(),
                has_sidecar: has_sidecar(pod, injected, template.map(|t| &t.metadata.annotations)),
                pod: Some(pod.name.clone()),
            })
        })
        .collect();
    MeshService {
        hostname: format!("{}.{namespace}.{CLUSTER_DOMAIN}", service.metadata.name),
        short_name: service.metadata.name.clone(),
        origin: format!("Service/{namespace}/{}", service.metadata.name),
        namespace,
        ports,
        endpoints,
        kind: ServiceKind::Kubernetes,
        export_to: service
            .metadata
            .annotations
            .get("networking.istio.io/exportTo")
            .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
            .unwrap_or_default(),
    }
}

fn entry_services(
    entry: &ServiceEntry,
    pods: &[Pod],
    injected: &BTreeMap<String, bool>,
) -> Vec<MeshService> {
    let namespace = namespace_of(entry.metadata.namespace.as_deref());
    let spec = &entry.spec;
    let resolution = spec.resolution.unwrap_or(Resolution::None);
    let external = !matches!(spec.location, Some(Location::MeshInternal));
    let ports: Vec<ServicePort> = spec
        .ports
        .iter()
        .filter_map(|p| {
            Some(ServicePort {
                name: p.name.clone(),
                number: u16::try_from(p.number).ok()?,
                protocol: Protocol::infer(&p.protocol, None),
            })
        })
        .collect();
    let port_map = |named: &BTreeMap<String, u32>| -> BTreeMap<u16, u16> {
        spec.ports
            .iter()
            .filter_map(|p| {
                let number = u16::try_from(p.number).ok()?;
                let target = named
                    .get(&p.name)
                    .copied()
                    .or(p.target_port)
                    .and_then(|t| u16::try_from(t).ok())
                    .unwrap_or(number);
                Some((number, target))
            })
            .collect()
    };
    let mut static_endpoints: Vec<ServiceEndpoint> = spec
        .endpoints
        .iter()
        .map(|e| ServiceEndpoint {
            address: e
                .address
                .parse()
                .map(Address::Ip)
                .unwrap_or_else(|_| Address::Dns(e.address.clone())),
            ports: port_map(&e.ports),
            labels: e.labels.clone(),
            service_account: (!e.service_account.is_empty()).then(|| e.service_account.clone()),
            namespace: namespace.clone(),
            has_sidecar: false,
            pod: None,
        })
        .collect();
    if let Some(selector) = &spec.workload_selector {
        static_endpoints.extend(
            pods.iter()
                .filter(|p| {
                    p.namespace == namespace && p.is_ready() && selects(&selector.labels, &p.labels)
                })
                .filter_map(|p| {
                    Some(ServiceEndpoint {
                        address: Address::Ip(p.ip.as_deref()?.parse().ok()?),
                        ports: port_map(&BTreeMap::new()),
                        labels: p.labels.clone(),
                        service_account: Some(p.service_account.clone()),
                        namespace: p.namespace.clone(),
                        has_sidecar: has_sidecar(p, injected, None),
                        pod: Some(p.name.clone()),
                    })
                }),
        );
    }
    spec.hosts
        .iter()
        .map(|host| {
            let endpoints = match resolution {
                Resolution::Dns | Resolution::DnsRoundRobin if static_endpoints.is_empty() => {
                    vec![ServiceEndpoint {
                        address: Address::Dns(host.clone()),
                        ports: port_map(&BTreeMap::new()),
                        labels: BTreeMap::new(),
                        service_account: None,
                        namespace: namespace.clone(),
                        has_sidecar: false,
                        pod: None,
                    }]
                }
                _ => static_endpoints.clone(),
            };
            MeshService {
                hostname: host.clone(),
                namespace: namespace.clone(),
                short_name: String::new(),
                ports: ports.clone(),
                endpoints,
                kind: ServiceKind::Entry {
                    external,
                    resolution,
                },
                export_to: spec.export_to.clone(),
                origin: format!("ServiceEntry/{namespace}/{}", entry.metadata.name),
            }
        })
        .collect()
}
