//! DestinationRules → cluster settings: load balancing, connection pools, outlier
//! detection, TLS, and the subsets that become their own clusters.
//!
//! Which DestinationRule applies to a host follows Istio's lookup: one in the proxy's
//! namespace, else one in the service's namespace, else one in the root namespace.
//! Port-level settings replace the top-level ones field group by field group, and a
//! subset's policy is merged over both, as Istio's `MergeTrafficPolicy` does.

use std::collections::BTreeMap;
use std::time::Duration;

use meshlab_proxy_config::route::action::HashPolicy;
use meshlab_proxy_config::{
    CircuitBreakers, Cluster, DiscoveryType, LbPolicy, OutlierDetection, Secret, TlsMode,
    UpstreamTls,
};

use super::credentials::Credential;
use super::mesh::{Mesh, MeshService, ROOT_NAMESPACE, ServiceKind, exported_to, fqdn};
use super::names;
use crate::resource::networking::{
    ClientTlsMode, ClientTlsSettings, ConnectionPoolSettings, DestinationRule,
    LoadBalancerSettings, OutlierDetection as IstioOutlier, Resolution, SimpleLb, Subset,
    TrafficPolicy,
};

/// Istio's default connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The DestinationRule for `service` as seen from a proxy in `namespace` with
/// `labels`. A rule with a `workloadSelector` applies only to the workloads it
/// selects in its own namespace, and before the namespace's other rules for the
/// host (Istio's precedence for selected rules).
pub fn destination_rule<'m>(
    mesh: &'m Mesh,
    service: &MeshService,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Option<&'m DestinationRule> {
    let applies = |dr: &&DestinationRule| {
        let dr_namespace = dr.metadata.namespace.as_deref().unwrap_or("default");
        host_matches(&fqdn(&dr.spec.host, dr_namespace), &service.hostname)
            && exported_to(&dr.spec.export_to, dr_namespace, namespace)
    };
    let selected = |dr: &&DestinationRule| {
        dr.spec.workload_selector.as_ref().is_some_and(|s| {
            dr.metadata.namespace.as_deref().unwrap_or("default") == namespace
                && s.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
    };
    let in_namespace = |ns: &str| {
        mesh.destination_rules
            .iter()
            .filter(|dr| {
                dr.metadata.namespace.as_deref().unwrap_or("default") == ns
                    && dr.spec.workload_selector.is_none()
            })
            .find(applies)
    };
    mesh.destination_rules
        .iter()
        .filter(selected)
        .find(applies)
        .or_else(|| in_namespace(namespace))
        .or_else(|| in_namespace(&service.namespace))
        .or_else(|| in_namespace(ROOT_NAMESPACE))
}

/// `*.example.com` matches `www.example.com`; otherwise names must be equal.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some("") => true,
        Some(suffix) => host.ends_with(suffix),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

/// The cluster for `service` port `port` and `subset` (empty for the whole service).
pub fn cluster(
    service: &MeshService,
    port: u16,
    subset: Option<&Subset>,
    rule: Option<&DestinationRule>,
) -> Cluster {
    let mut cluster = Cluster::new(names::outbound_cluster(
        port,
        subset.map_or("", |s| s.name.as_str()),
        &service.hostname,
    ));
    cluster.origin.push(service.origin.clone());
    match &service.kind {
        ServiceKind::Kubernetes => {}
        ServiceKind::Entry { resolution, .. } => {
            cluster.discovery = match resolution {
                Resolution::None => DiscoveryType::OriginalDst,
                Resolution::Static => DiscoveryType::Static,
                Resolution::Dns | Resolution::DynamicDns => DiscoveryType::StrictDns,
                Resolution::DnsRoundRobin => DiscoveryType::LogicalDns,
            };
            if *resolution == Resolution::None {
                cluster.lb_policy = LbPolicy::ClusterProvided;
            }
        }
    }
    cluster.http2 = service
        .ports
        .iter()
        .any(|p| p.number == port && p.protocol == super::mesh::Protocol::Http2);
    let mut tls_from_rule = false;
    if let Some(rule) = rule {
        let namespace = rule.metadata.namespace.as_deref().unwrap_or("default");
        cluster.origin.push(names::origin(
            "DestinationRule",
            namespace,
            &rule.metadata.name,
        ));
        if let Some(policy) = &rule.spec.traffic_policy {
            tls_from_rule |= apply_policy(&mut cluster, policy, port);
        }
        if let Some(policy) = subset.and_then(|s| s.traffic_policy.as_ref()) {
            tls_from_rule |= apply_policy(&mut cluster, policy, port);
        }
    }
    // Istio's auto mTLS: without a DestinationRule saying otherwise, mTLS to the
    // endpoints that run a sidecar, plaintext to the others.
    if !tls_from_rule && service.endpoints.iter().any(|e| e.has_sidecar) {
        cluster.tls = Some(UpstreamTls {
            mode: TlsMode::IstioMutual,
            sni: None,
            subject_alt_names: Vec::new(),
            auto_mtls: true,
            certificate: None,
            trusted_ca: None,
        });
    }
    if let Some(tls) = &mut cluster.tls
        && tls.mode == TlsMode::IstioMutual
    {
        // Secure naming: the server must be one of the service's identities.
        if tls.subject_alt_names.is_empty() {
            tls.subject_alt_names = service_identities(service);
        }
        if tls.sni.is_none() {
            tls.sni = Some(names::istio_mutual_sni(
                port,
                subset.map_or("", |s| s.name.as_str()),
                &service.hostname,
            ));
        }
    }
    cluster
}

/// The `tls` settings that decide a cluster's TLS: the subset's policy over the
/// rule's, port-level settings over top-level ones (as [`cluster`] merges them).
pub fn client_tls<'r>(
    rule: Option<&'r DestinationRule>,
    subset: Option<&'r Subset>,
    port: u16,
) -> Option<&'r ClientTlsSettings> {
    let of = |policy: &'r TrafficPolicy| {
        policy
            .port_level_settings
            .iter()
            .find(|p| p.port.as_ref().is_some_and(|s| s.number == u32::from(port)))
            .and_then(|p| p.tls.as_ref())
            .or(policy.tls.as_ref())
    };
    subset
        .and_then(|s| s.traffic_policy.as_ref())
        .and_then(of)
        .or_else(|| {
            rule.and_then(|r| r.spec.traffic_policy.as_ref())
                .and_then(of)
        })
}

/// Points a `SIMPLE` or `MUTUAL` cluster at its `credentialName` secrets and adds
/// them to the proxy's. Istio applies `credentialName` at gateways, and at
/// sidecars only when the DestinationRule has a `workloadSelector`; elsewhere a
/// sidecar would read certificate files, which meshlab pods do not have, so it
/// presents no client certificate and trusts the system roots (`apply` warns).
pub fn apply_credential(
    cluster: &mut Cluster,
    settings: Option<&ClientTlsSettings>,
    applies: bool,
    credential: impl FnOnce(&str) -> Credential,
    secrets: &mut BTreeMap<String, Secret>,
) {
    let (Some(tls), Some(settings)) = (&mut cluster.tls, settings) else {
        return;
    };
    let name = settings.credential_name.as_str();
    if name.is_empty() || !applies || !matches!(tls.mode, TlsMode::Simple | TlsMode::Mutual) {
        return;
    }
    let credential = credential(name);
    if tls.mode == TlsMode::Mutual {
        tls.certificate = Some(Secret::kubernetes_name(name));
    }
    // MUTUAL without a CA in the secret verifies the server with the system roots;
    // SIMPLE names a credential only for its CA.
    let without_ca = tls.mode == TlsMode::Mutual && credential.exists && credential.ca.is_none();
    if !without_ca {
        tls.trusted_ca = Some(Secret::ca_name(name));
    }
    credential.add_to(secrets);
}

/// The SPIFFE identities of a service's endpoints, sorted, each once.
pub fn service_identities(service: &MeshService) -> Vec<String> {
    let identities: std::collections::BTreeSet<String> = service
        .endpoints
        .iter()
        .filter_map(|e| {
            e.service_account
                .as_ref()
                .map(|sa| crate::ca::spiffe_id(&e.namespace, sa))
        })
        .collect();
    identities.into_iter().collect()
}

/// The route hash policy a DestinationRule's consistent hash asks for.
pub fn hash_policy(rule: Option<&DestinationRule>) -> Vec<HashPolicy> {
    let Some(hash) = rule
        .and_then(|r| r.spec.traffic_policy.as_ref())
        .and_then(|p| p.load_balancer.as_ref())
        .and_then(|lb| lb.consistent_hash.as_ref())
    else {
        return Vec::new();
    };
    if let Some(name) = &hash.http_header_name {
        vec![HashPolicy::Header {
            name: name.to_ascii_lowercase(),
        }]
    } else if let Some(cookie) = &hash.http_cookie {
        vec![HashPolicy::Cookie {
            name: cookie.name.clone(),
            ttl: cookie.ttl.as_ref().map(|d| d.get()),
            path: (!cookie.path.is_empty()).then(|| cookie.path.clone()),
        }]
    } else if hash.use_source_ip == Some(true) {
        vec![HashPolicy::SourceIp]
    } else if let Some(name) = &hash.http_query_parameter_name {
        vec![HashPolicy::QueryParameter { name: name.clone() }]
    } else {
        Vec::new()
    }
}

/// Applies one traffic policy; returns whether it set the TLS mode.
fn apply_policy(cluster: &mut Cluster, policy: &TrafficPolicy, port: u16) -> bool {
    let port_level = policy
        .port_level_settings
        .iter()
        .find(|p| p.port.as_ref().is_some_and(|s| s.number == u32::from(port)));
    let load_balancer = port_level
        .and_then(|p| p.load_balancer.as_ref())
        .or(policy.load_balancer.as_ref());
    let pool = port_level
        .and_then(|p| p.connection_pool.as_ref())
        .or(policy.connection_pool.as_ref());
    let outlier = port_level
        .and_then(|p| p.outlier_detection.as_ref())
        .or(policy.outlier_detection.as_ref());
    let tls = port_level
        .and_then(|p| p.tls.as_ref())
        .or(policy.tls.as_ref());
    if let Some(lb) = load_balancer {
        apply_lb(cluster, lb);
    }
    if let Some(pool) = pool {
        apply_pool(cluster, pool);
    }
    if let Some(outlier) = outlier {
        cluster.outlier_detection = Some(outlier_detection(outlier));
    }
    if let Some(tls) = tls {
        cluster.tls = match tls.mode.unwrap_or(ClientTlsMode::Disable) {
            ClientTlsMode::Disable => None,
            mode => Some(UpstreamTls {
                mode: match mode {
                    ClientTlsMode::Simple => TlsMode::Simple,
                    ClientTlsMode::Mutual => TlsMode::Mutual,
                    _ => TlsMode::IstioMutual,
                },
                sni: (!tls.sni.is_empty()).then(|| tls.sni.clone()),
                subject_alt_names: tls.subject_alt_names.clone(),
                auto_mtls: false,
                certificate: None,
                trusted_ca: None,
            }),
        };
    }
    tls.is_some()
}

fn apply_lb(cluster: &mut Cluster, lb: &LoadBalancerSettings) {
    if lb.consistent_hash.is_some() {
        cluster.lb_policy = LbPolicy::RingHash;
    } else if let Some(simple) = lb.simple {
        cluster.lb_policy = match simple {
            SimpleLb::RoundRobin => LbPolicy::RoundRobin,
            SimpleLb::Random => LbPolicy::Random,
            SimpleLb::Passthrough => {
                cluster.discovery = DiscoveryType::OriginalDst;
                LbPolicy::ClusterProvided
            }
            SimpleLb::Unspecified | SimpleLb::LeastConn | SimpleLb::LeastRequest => {
                LbPolicy::LeastRequest
            }
        };
    }
}

fn apply_pool(cluster: &mut Cluster, pool: &ConnectionPoolSettings) {
    let positive = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok()).filter(|v| *v > 0);
    let limits = &mut cluster.circuit_breakers;
    if let Some(tcp) = &pool.tcp {
        limits.max_connections = positive(tcp.max_connections).or(limits.max_connections);
        if let Some(timeout) = &tcp.connect_timeout {
            cluster.connect_timeout = timeout.get();
        }
    }
    if let Some(http) = &pool.http {
        limits.max_pending_requests =
            positive(http.http1_max_pending_requests).or(limits.max_pending_requests);
        limits.max_requests = positive(http.http2_max_requests).or(limits.max_requests);
        limits.max_retries = positive(http.max_retries).or(limits.max_retries);
        limits.max_requests_per_connection =
            positive(http.max_requests_per_connection).or(limits.max_requests_per_connection);
    }
    if *limits == CircuitBreakers::default() {
        cluster.circuit_breakers = CircuitBreakers::default();
    }
}

/// Istio's defaults: interval 10 s, base ejection 30 s, at most 10 % ejected.
fn outlier_detection(outlier: &IstioOutlier) -> OutlierDetection {
    let positive = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok());
    OutlierDetection {
        consecutive_5xx: outlier
            .consecutive_5xx_errors
            .or(positive(outlier.consecutive_errors))
            .filter(|n| *n > 0),
        consecutive_gateway_failure: outlier.consecutive_gateway_errors.filter(|n| *n > 0),
        interval: outlier
            .interval
            .as_ref()
            .map_or(Duration::from_secs(10), |d| d.get()),
        base_ejection_time: outlier
            .base_ejection_time
            .as_ref()
            .map_or(Duration::from_secs(30), |d| d.get()),
        max_ejection_percent: positive(outlier.max_ejection_percent).unwrap_or(10),
        min_health_percent: positive(outlier.min_health_percent).unwrap_or(0),
    }
}

/// Clusters always present: where unmatched traffic goes.
pub fn special_clusters() -> Vec<Cluster> {
    let mut passthrough = Cluster::new(meshlab_proxy_config::PASSTHROUGH_CLUSTER);
    passthrough.discovery = DiscoveryType::OriginalDst;
    passthrough.lb_policy = LbPolicy::ClusterProvided;
    let mut black_hole = Cluster::new(meshlab_proxy_config::BLACK_HOLE_CLUSTER);
    black_hole.discovery = DiscoveryType::Static;
    let mut inbound = Cluster::new(names::INBOUND_PASSTHROUGH);
    inbound.discovery = DiscoveryType::OriginalDst;
    inbound.lb_policy = LbPolicy::ClusterProvided;
    vec![passthrough, black_hole, inbound]
}
