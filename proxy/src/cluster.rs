//! Clusters at run time: the endpoints behind each cluster and how one is chosen,
//! with Envoy's connection pools, circuit breakers, outlier detection, DNS and TLS
//! origination (modules [`crate::pool`], [`crate::balancer`], [`crate::outlier`],
//! [`crate::tls`]).
//!
//! A new configuration builds a new [`ClusterManager`], but keeps what is still
//! valid from the old one, as Envoy's cluster manager does: a cluster whose
//! definition did not change keeps its state (pools, ejections, round-robin
//! cursor), and only its endpoint set is swapped when the ClusterLoadAssignment
//! changed; endpoints that remain keep their connections. A changed definition
//! makes a fresh cluster, while requests in flight finish on the old one.
//! Statistics live by cluster name and survive both.
//!
//! Endpoints come from the ClusterLoadAssignment (EDS, STATIC), from DNS
//! (`STRICT_DNS`: every address; `LOGICAL_DNS`: the first; IPv4 preferred, as Istio
//! sets `V4_ONLY` for IPv4 proxies), re-resolved every DNS refresh interval, or
//! from the connection itself (`ORIGINAL_DST`: the `PassthroughCluster`). Istio
//! always sends `PassthroughCluster` and `BlackHoleCluster`; when a configuration
//! lacks them they are added here with Istio's definitions, since listeners name
//! them.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use meshlab_proxy_config::{
    BLACK_HOLE_CLUSTER, Cluster, ClusterLoadAssignment, DiscoveryType, EndpointAddress, LbPolicy,
    PASSTHROUGH_CLUSTER, ProxyConfig, Secret,
};
use tokio::sync::Notify;

use crate::balancer::{self, Balanced, Ring};
use crate::outlier::{self, HostOutlier, Trip};
use crate::pool::{HostStats, Pool};
use crate::stats::{
    ClusterGauges, ClusterStats, MetricLabels, Peer, Reporter, ServiceNames, Stats, UNLIMITED,
};
use crate::tls::{self, Origination, Roots};

/// Most ORIGINAL_DST endpoints kept before idle ones are forgotten.
const MAX_ORIGINAL_DST_HOSTS: usize = 256;

/// What building clusters needs from the proxy.
#[derive(Debug)]
pub(crate) struct ClusterContext {
    pub(crate) stats: Arc<Stats>,
    pub(crate) roots: Roots,
    pub(crate) dns_refresh: Duration,
    /// The proxy's own workload, for metric labels.
    pub(crate) me: Peer,
    /// The proxy's mesh identity (ISTIO_MUTUAL).
    pub(crate) identity: Option<Arc<crate::identity::Identity>>,
}

/// Every cluster of one configuration.
#[derive(Debug, Default)]
pub(crate) struct ClusterManager {
    clusters: BTreeMap<String, Arc<ClusterState>>,
}

/// Circuit-breaker thresholds, unset ones as Istio writes them (2³²−1).
#[derive(Debug)]
pub(crate) struct Limits {
    pub(crate) max_connections: u64,
    pub(crate) max_pending: u64,
    pub(crate) max_requests: u64,
    pub(crate) max_retries: u64,
}

/// How connections to a cluster's endpoints are secured.
#[derive(Debug)]
pub(crate) enum Transport {
    /// Plaintext.
    Plain,
    /// TLS originated by the proxy.
    Tls(Origination),
    /// The cluster asks for something the proxy cannot do: every connection fails
    /// with this reason.
    Unsupported(String),
}

/// One cluster at run time.
#[derive(Debug)]
pub(crate) struct ClusterState {
    pub(crate) name: Arc<str>,
    pub(crate) def: Cluster,
    pub(crate) stats: Arc<ClusterStats>,
    pub(crate) limits: Limits,
    pub(crate) transport: Transport,
    /// The secrets `transport` was built from, as they were then.
    secrets: Vec<Option<Secret>>,
    /// Labels for requests that reach no endpoint of this cluster.
    pub(crate) labels: Arc<MetricLabels>,
    assignment: Mutex<Option<ClusterLoadAssignment>>,
    hosts: Mutex<Arc<HostSet>>,
    rr: AtomicUsize,
    dns: Option<DnsState>,
    original: Mutex<HashMap<SocketAddr, Arc<Host>>>,
    ctx: Arc<ClusterContext>,
}

/// The endpoints of a cluster at one moment.
#[derive(Debug, Default)]
pub(crate) struct HostSet {
    hosts: Vec<Arc<Host>>,
    ring: OnceLock<Ring>,
}

/// One endpoint.
#[derive(Debug)]
pub(crate) struct Host {
    pub(crate) addr: SocketAddr,
    /// The DNS name it was resolved from (default SNI for TLS origination).
    pub(crate) hostname: Option<Arc<str>>,
    /// Whether it runs a sidecar that takes mesh mTLS (auto mTLS sends plaintext
    /// otherwise).
    pub(crate) mtls_capable: bool,
    weight: u32,
    pub(crate) labels: Arc<MetricLabels>,
    pub(crate) stats: Arc<HostStats>,
    pub(crate) pool: Pool,
    pub(crate) outlier: HostOutlier,
}

/// What the load balancer needs to know about one request.
#[derive(Debug)]
pub(crate) struct PickRequest<'a> {
    /// The consistent hash of the request, if the route has a hash policy.
    pub(crate) hash: Option<u64>,
    /// The connection's original destination (for ORIGINAL_DST clusters).
    pub(crate) original_dst: SocketAddr,
    /// Endpoints earlier attempts used.
    pub(crate) previous: &'a [SocketAddr],
    /// Whether to avoid `previous` (Envoy's `previous_hosts` predicate).
    pub(crate) avoid_previous: bool,
    /// How many times to re-pick to avoid them.
    pub(crate) selection_attempts: u32,
}

/// An endpoint a cluster should have.
#[derive(Debug)]
struct Wanted {
    addr: SocketAddr,
    hostname: Option<Arc<str>>,
    mtls_capable: bool,
    weight: u32,
    labels: BTreeMap<String, String>,
}

#[derive(Debug)]
struct DnsState {
    resolved: AtomicBool,
    notify: Notify,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// === impl ClusterManager ===

impl ClusterManager {
    /// The clusters of `config`, reusing what `self` already runs.
    pub(crate) fn update(&self, config: &ProxyConfig, ctx: &Arc<ClusterContext>) -> Self {
        let mut defs: BTreeMap<&str, Cluster> = config
            .clusters
            .iter()
            .map(|(name, cluster)| (name.as_str(), cluster.clone()))
            .collect();
        defs.entry(PASSTHROUGH_CLUSTER).or_insert_with(|| {
            let mut cluster = Cluster::new(PASSTHROUGH_CLUSTER);
            cluster.discovery = DiscoveryType::OriginalDst;
            cluster.lb_policy = LbPolicy::ClusterProvided;
            cluster
        });
        defs.entry(BLACK_HOLE_CLUSTER).or_insert_with(|| {
            let mut cluster = Cluster::new(BLACK_HOLE_CLUSTER);
            cluster.discovery = DiscoveryType::Static;
            cluster
        });
        let mut clusters = BTreeMap::new();
        for (name, def) in defs {
            let assignment = config.endpoints.get(name);
            let secrets = tls::upstream_secrets(def.tls.as_ref(), &config.secrets);
            let state = match self.clusters.get(name) {
                Some(old) if old.def == def && old.secrets == secrets && old.keeps(assignment) => {
                    old.set_endpoints(assignment);
                    old.clone()
                }
                _ => ClusterState::new(name, def, assignment.cloned(), config, secrets, ctx),
            };
            clusters.insert(name.to_owned(), state);
        }
        ctx.stats
            .retain_clusters(|name| clusters.contains_key(name));
        Self { clusters }
    }

    /// The cluster called `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<ClusterState>> {
        self.clusters.get(name)
    }

    /// Every cluster, by name.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<ClusterState>> {
        self.clusters.values()
    }
}

// === impl ClusterState ===

impl ClusterState {
    fn new(
        name: &str,
        def: Cluster,
        assignment: Option<ClusterLoadAssignment>,
        config: &ProxyConfig,
        secrets: Vec<Option<Secret>>,
        ctx: &Arc<ClusterContext>,
    ) -> Arc<Self> {
        let breakers = &def.circuit_breakers;
        let limit = |value: Option<u32>| value.map_or(UNLIMITED, u64::from);
        let limits = Limits {
            max_connections: limit(breakers.max_connections),
            max_pending: limit(breakers.max_pending_requests),
            max_requests: limit(breakers.max_requests),
            max_retries: limit(breakers.max_retries),
        };
        let transport = match &def.tls {
            None => Transport::Plain,
            Some(tls) => {
                match Origination::new(
                    tls,
                    def.http2,
                    &ctx.roots,
                    ctx.identity.as_ref(),
                    &config.secrets,
                ) {
                    Ok(None) => Transport::Plain,
                    Ok(Some(origination)) => Transport::Tls(origination),
                    Err(reason) => {
                        tracing::warn!(cluster = name, %reason, "cluster cannot originate TLS; its connections will fail");
                        Transport::Unsupported(reason)
                    }
                }
            }
        };
        let needs_dns = matches!(
            def.discovery,
            DiscoveryType::StrictDns | DiscoveryType::LogicalDns
        ) || has_dns_names(assignment.as_ref());
        let state = Arc::new(Self {
            name: name.into(),
            secrets,
            stats: ctx.stats.cluster(name),
            limits,
            transport,
            labels: labels_for(ctx, name, None, None),
            assignment: Mutex::new(None),
            hosts: Mutex::default(),
            rr: AtomicUsize::new(0),
            dns: needs_dns.then(|| DnsState {
                resolved: AtomicBool::new(false),
                notify: Notify::new(),
            }),
            original: Mutex::default(),
            ctx: ctx.clone(),
            def,
        });
        if needs_dns {
            *lock(&state.assignment) = assignment;
            tokio::spawn(resolve_forever(Arc::downgrade(&state)));
        } else {
            state.set_endpoints(assignment.as_ref());
        }
        state
    }

    /// Whether this state can take `assignment` by swapping endpoints (DNS
    /// clusters restart instead).
    fn keeps(&self, assignment: Option<&ClusterLoadAssignment>) -> bool {
        self.dns.is_none() && !has_dns_names(assignment)
            || lock(&self.assignment).as_ref() == assignment
    }

    /// Installs the endpoints of `assignment` (address endpoints only), keeping
    /// the state of endpoints that remain.
    fn set_endpoints(&self, assignment: Option<&ClusterLoadAssignment>) {
        let mut current = lock(&self.assignment);
        if current.as_ref() == assignment && !lock(&self.hosts).hosts.is_empty() {
            return;
        }
        *current = assignment.cloned();
        drop(current);
        let wanted = assignment
            .into_iter()
            .flat_map(|assignment| &assignment.endpoints)
            .filter_map(|endpoint| match &endpoint.address {
                EndpointAddress::Socket(addr) => Some(Wanted {
                    addr: *addr,
                    hostname: None,
                    mtls_capable: endpoint.has_sidecar,
                    weight: endpoint.weight,
                    labels: endpoint.labels.clone(),
                }),
                EndpointAddress::Dns { .. } => None,
            })
            .collect();
        self.install(wanted);
    }

    /// Replaces the endpoint set, reusing hosts with the same address.
    fn install(&self, wanted: Vec<Wanted>) {
        let old = self.host_set();
        let hosts = wanted
            .into_iter()
            .map(|wanted| {
                old.hosts
                    .iter()
                    .find(|host| {
                        host.addr == wanted.addr
                            && host.weight == wanted.weight.max(1)
                            && host.mtls_capable == wanted.mtls_capable
                    })
                    .cloned()
                    .unwrap_or_else(|| {
                        self.new_host(
                            wanted.addr,
                            wanted.hostname,
                            wanted.mtls_capable,
                            wanted.weight,
                            Some(&wanted.labels),
                        )
                    })
            })
            .collect();
        *lock(&self.hosts) = Arc::new(HostSet {
            hosts,
            ring: OnceLock::new(),
        });
    }

    fn new_host(
        &self,
        addr: SocketAddr,
        hostname: Option<Arc<str>>,
        mtls_capable: bool,
        weight: u32,
        labels: Option<&BTreeMap<String, String>>,
    ) -> Arc<Host> {
        Arc::new(Host {
            addr,
            hostname,
            mtls_capable,
            weight: weight.max(1),
            labels: labels_for(&self.ctx, &self.name, labels, Some(addr)),
            stats: Arc::default(),
            pool: Pool::default(),
            outlier: HostOutlier::default(),
        })
    }

    /// The endpoints now.
    pub(crate) fn host_set(&self) -> Arc<HostSet> {
        lock(&self.hosts).clone()
    }

    /// Picks the endpoint for one request attempt; `None` means no healthy
    /// upstream (`UH`).
    pub(crate) async fn pick(&self, request: &PickRequest<'_>) -> Option<Arc<Host>> {
        if self.def.discovery == DiscoveryType::OriginalDst
            || self.def.lb_policy == LbPolicy::ClusterProvided
        {
            return Some(self.original_host(request.original_dst));
        }
        if let Some(dns) = &self.dns
            && !dns.resolved.load(Relaxed)
        {
            // The cluster is still warming, as Envoy's DNS clusters do before
            // their first resolution: wait for it, within the connect timeout.
            let resolved = dns.notify.notified();
            tokio::pin!(resolved);
            resolved.as_mut().enable();
            if !dns.resolved.load(Relaxed) {
                let _ = tokio::time::timeout(self.def.connect_timeout, resolved).await;
            }
        }
        let set = self.host_set();
        let now = outlier::now_ms();
        let healthy = set
            .hosts
            .iter()
            .filter(|h| !h.outlier.is_ejected(now))
            .count();
        let panic = self.def.outlier_detection.as_ref().is_some_and(|config| {
            outlier::panic_mode(healthy, set.hosts.len(), config.min_health_percent)
        });
        let eligible = |i: usize| panic || !set.hosts[i].outlier.is_ejected(now);
        let ring = || set.ring.get_or_init(|| Ring::build(&set.hosts));
        let mut attempt = 0;
        loop {
            let index = balancer::pick(
                &self.def.lb_policy,
                &set.hosts,
                &eligible,
                &self.rr,
                &ring,
                request.hash,
            )?;
            let host = &set.hosts[index];
            let repeat = request.avoid_previous && request.previous.contains(&host.addr);
            if !repeat || attempt >= request.selection_attempts {
                return Some(host.clone());
            }
            attempt += 1;
        }
    }

    fn original_host(&self, addr: SocketAddr) -> Arc<Host> {
        let mut original = lock(&self.original);
        if let Some(host) = original.get(&addr) {
            return host.clone();
        }
        if original.len() >= MAX_ORIGINAL_DST_HOSTS {
            original.retain(|_, host| Arc::strong_count(host) > 1);
        }
        let host = self.new_host(addr, None, false, 1, None);
        original.insert(addr, host.clone());
        host
    }

    /// Records how an attempt on `host` ended, for outlier detection: a status,
    /// or 503/504 for failures the proxy saw itself.
    pub(crate) fn report(&self, host: &Host, status: u16) {
        let Some(config) = &self.def.outlier_detection else {
            return;
        };
        let Some(trip) = host.outlier.record(status, config) else {
            return;
        };
        let now = outlier::now_ms();
        if host.outlier.is_ejected(now) {
            return;
        }
        let set = self.host_set();
        if !set.hosts.iter().any(|h| std::ptr::eq(h.as_ref(), host)) {
            return;
        }
        let ejected = set
            .hosts
            .iter()
            .filter(|h| h.outlier.is_ejected(now))
            .count();
        if !outlier::may_eject(ejected, set.hosts.len(), config.max_ejection_percent) {
            self.stats.ejections_overflow.inc();
            return;
        }
        host.outlier.eject(now, config.base_ejection_time);
        self.stats.ejections_enforced_total.inc();
        match trip {
            Trip::Consecutive5xx => self.stats.ejections_enforced_consecutive_5xx.inc(),
            Trip::ConsecutiveGatewayFailure => {
                self.stats
                    .ejections_enforced_consecutive_gateway_failure
                    .inc();
            }
        }
        tracing::info!(cluster = %self.name, host = %host.addr, ?trip, "outlier detection ejected an endpoint");
    }

    /// The gauges `/stats` prints for this cluster.
    pub(crate) fn gauges(&self) -> ClusterGauges {
        let set = self.host_set();
        let now = outlier::now_ms();
        let ejected = set
            .hosts
            .iter()
            .filter(|h| h.outlier.is_ejected(now))
            .count() as u64;
        ClusterGauges {
            max_connections: self.limits.max_connections,
            max_pending: self.limits.max_pending,
            max_requests: self.limits.max_requests,
            max_retries: self.limits.max_retries,
            membership_total: set.hosts.len() as u64,
            membership_healthy: set.hosts.len() as u64 - ejected,
            ejections_active: ejected,
        }
    }

    /// Envoy's `/clusters` lines for this cluster.
    pub(crate) fn render(&self, out: &mut String) {
        let name = &self.name;
        let _ = writeln!(out, "{name}::observability_name::{name}");
        let thresholds = [
            ("max_connections", self.limits.max_connections),
            ("max_pending_requests", self.limits.max_pending),
            ("max_requests", self.limits.max_requests),
            ("max_retries", self.limits.max_retries),
        ];
        for (threshold, value) in thresholds {
            let _ = writeln!(out, "{name}::default_priority::{threshold}::{value}");
        }
        for (threshold, value) in [
            ("max_connections", 1024),
            ("max_pending_requests", 1024),
            ("max_requests", 1024),
            ("max_retries", 3),
        ] {
            let _ = writeln!(out, "{name}::high_priority::{threshold}::{value}");
        }
        let _ = writeln!(out, "{name}::added_via_api::true");
        let now = outlier::now_ms();
        let set = self.host_set();
        let original: Vec<Arc<Host>> = lock(&self.original).values().cloned().collect();
        for host in set.hosts.iter().chain(&original) {
            let at = format!("{name}::{}", host.addr);
            let stats = &host.stats;
            for (stat, value) in [
                ("cx_active", stats.cx_active.get()),
                ("cx_connect_fail", stats.cx_connect_fail.get()),
                ("cx_total", stats.cx_total.get()),
                ("rq_active", stats.rq_active.get()),
                ("rq_error", stats.rq_error.get()),
                ("rq_success", stats.rq_success.get()),
                ("rq_timeout", stats.rq_timeout.get()),
                ("rq_total", stats.rq_total.get()),
            ] {
                let _ = writeln!(out, "{at}::{stat}::{value}");
            }
            let _ = writeln!(
                out,
                "{at}::hostname::{}",
                host.hostname.as_deref().unwrap_or("")
            );
            let health = if host.outlier.is_ejected(now) {
                "/failed_outlier_check"
            } else {
                "healthy"
            };
            let _ = writeln!(out, "{at}::health_flags::{health}");
            let _ = writeln!(out, "{at}::weight::{}", host.weight);
            let _ = writeln!(out, "{at}::region::");
            let _ = writeln!(out, "{at}::zone::");
            let _ = writeln!(out, "{at}::sub_zone::");
            let _ = writeln!(out, "{at}::canary::false");
            let _ = writeln!(out, "{at}::priority::0");
            let _ = writeln!(out, "{at}::success_rate::-1");
            let _ = writeln!(out, "{at}::local_origin_success_rate::-1");
        }
    }

    /// Resolves the DNS names of the assignment once.
    async fn resolve(&self) -> Vec<Wanted> {
        let assignment = lock(&self.assignment).clone();
        let old = self.host_set();
        let logical = self.def.discovery == DiscoveryType::LogicalDns;
        let mut wanted = Vec::new();
        for endpoint in assignment.iter().flat_map(|a| &a.endpoints) {
            match &endpoint.address {
                EndpointAddress::Socket(addr) => wanted.push(Wanted {
                    addr: *addr,
                    hostname: None,
                    mtls_capable: endpoint.has_sidecar,
                    weight: endpoint.weight,
                    labels: endpoint.labels.clone(),
                }),
                EndpointAddress::Dns { host, port } => {
                    let resolved = |addr| Wanted {
                        addr,
                        hostname: Some(host.as_str().into()),
                        mtls_capable: endpoint.has_sidecar,
                        weight: endpoint.weight,
                        labels: endpoint.labels.clone(),
                    };
                    match tokio::net::lookup_host((host.as_str(), *port)).await {
                        Ok(addrs) => {
                            let addrs: Vec<SocketAddr> = addrs.collect();
                            let v4: Vec<SocketAddr> =
                                addrs.iter().copied().filter(SocketAddr::is_ipv4).collect();
                            let mut chosen = if v4.is_empty() { addrs } else { v4 };
                            if logical {
                                chosen.truncate(1);
                            }
                            wanted.extend(chosen.into_iter().map(resolved));
                        }
                        Err(err) => {
                            tracing::warn!(cluster = %self.name, %host, %err, "DNS resolution failed; keeping the last addresses");
                            let kept = old
                                .hosts
                                .iter()
                                .filter(|h| h.hostname.as_deref() == Some(host));
                            wanted.extend(kept.map(|h| resolved(h.addr)));
                        }
                    }
                }
            }
        }
        wanted
    }
}

/// Re-resolves a DNS cluster every refresh interval, for as long as it exists.
async fn resolve_forever(cluster: Weak<ClusterState>) {
    loop {
        let Some(state) = cluster.upgrade() else {
            return;
        };
        let wanted = state.resolve().await;
        state.install(wanted);
        if let Some(dns) = &state.dns {
            dns.resolved.store(true, Relaxed);
            dns.notify.notify_waiters();
        }
        let refresh = state.ctx.dns_refresh;
        drop(state);
        tokio::time::sleep(refresh).await;
    }
}

fn has_dns_names(assignment: Option<&ClusterLoadAssignment>) -> bool {
    assignment.is_some_and(|assignment| {
        assignment
            .endpoints
            .iter()
            .any(|endpoint| matches!(endpoint.address, EndpointAddress::Dns { .. }))
    })
}

/// The metric labels of requests to `cluster` (and to one of its endpoints, if
/// given). Istio's cluster names say the direction and the service:
/// `outbound|9080|v1|reviews.default.svc.cluster.local`,
/// `inbound|9080||`. Inbound requests are reported by the destination, whose
/// workload is this proxy's, with an unknown client that each request's own
/// replaces ([`Stats::with_source`]); outbound ones by the source.
fn labels_for(
    ctx: &ClusterContext,
    cluster: &str,
    endpoint_labels: Option<&BTreeMap<String, String>>,
    destination: Option<SocketAddr>,
) -> Arc<MetricLabels> {
    let mut parts = cluster.split('|');
    let (direction, host) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(direction), Some(_port), Some(_subset), Some(host)) => (direction, host),
        _ => ("outbound", ""),
    };
    if direction == "inbound" {
        let service = if host.is_empty() {
            ServiceNames::unknown()
        } else {
            ServiceNames::of_host(host)
        };
        return ctx
            .stats
            .labels(Reporter::Destination, &Peer::unknown(), &ctx.me, &service);
    }
    let service = if cluster == PASSTHROUGH_CLUSTER || cluster == BLACK_HOLE_CLUSTER {
        let reached = destination.map_or_else(|| "unknown".to_owned(), |addr| addr.to_string());
        ServiceNames::catch_all(cluster, &reached)
    } else if host.is_empty() {
        ServiceNames::unknown()
    } else {
        ServiceNames::of_host(host)
    };
    let namespace = (service.namespace != "unknown").then_some(service.namespace.as_str());
    let peer = match endpoint_labels {
        Some(labels) if !labels.is_empty() => Peer::from_labels(labels, None, namespace),
        _ => Peer::unknown(),
    };
    ctx.stats.labels(Reporter::Source, &ctx.me, &peer, &service)
}

// === impl Host ===

impl Balanced for Arc<Host> {
    fn weight(&self) -> u32 {
        self.weight
    }

    fn active_requests(&self) -> u64 {
        self.stats.rq_active.get()
    }

    fn address(&self) -> SocketAddr {
        self.addr
    }
}

#[cfg(test)]
mod tests;
