//! Counters, gauges and histograms, and the two text forms learners read them in.
//!
//! Two audiences look at a proxy's numbers, so there are two families:
//!
//! - **Envoy's own statistics** (`/stats`), one `name: value` line each, sorted by
//!   name, e.g. `cluster.outbound|8000||httpbin.default.svc.cluster.local.upstream_rq_pending_overflow: 21`.
//!   The circuit-breaking task greps exactly these names
//!   (`pilot-agent request GET stats | grep httpbin | grep pending`), so the names
//!   and meanings are Envoy's (`docs/root/configuration/upstream/cluster_manager/cluster_stats.rst`):
//!   a request that has to wait for a connection — including while one is being
//!   opened for it — is *pending*; `upstream_rq_pending_overflow` counts requests
//!   failed because the pending queue (`max_pending_requests`) or the request limit
//!   (`max_requests`) was full; `circuit_breakers.<priority>.rq_pending_open` is 1
//!   while the pending breaker is saturated; `remaining_*` are printed because
//!   Istio turns on `track_remaining`. Istio writes 2³²−1 for every threshold it is
//!   not told (`DefaultCircuitBreakerThresholds`), so unset limits print that value.
//! - **Istio's standard metrics** (`/stats/prometheus`): `istio_requests_total`,
//!   `istio_request_duration_milliseconds`, `istio_request_bytes`,
//!   `istio_response_bytes` and the `istio_tcp_*` family, labelled with Istio's
//!   standard labels (`reporter`, `source_workload`, `destination_service`, …).
//!   A sidecar reporting an inbound request as the destination learns the
//!   client's `source_*` labels from metadata exchange (`crate::peer`) and its
//!   `source_principal` from the mTLS peer certificate; without either they say
//!   `unknown`, as Istio's do.
//!   Histograms use Envoy's default buckets (Istio sets none unless the pod is
//!   annotated with `sidecar.istio.io/statsHistogramBuckets`). Cluster statistics
//!   are exported there too, as Envoy's tag extraction names them
//!   (`envoy_cluster_upstream_rq_total{cluster_name="…"}`).
//!
//! Everything is updated with atomics or under a mutex held for a map lookup only;
//! nothing here is held across an await. Label sets are interned
//! ([`Stats::labels`]) so that a request updates its series by pointer, without
//! formatting or hashing strings.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use std::ops::Range;

use http::HeaderValue;
use meshlab_proxy_config::ProxyNode;
use meshlab_proxy_route::ResponseFlags;
use tokio::sync::Notify;

/// Envoy's default histogram bucket bounds (`supported_stats_histogram_bucket`),
/// used for durations in milliseconds and for sizes in bytes alike.
pub(crate) const BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// What Istio writes for a circuit-breaker threshold it is not given: 2³²−1.
pub(crate) const UNLIMITED: u64 = u32::MAX as u64;

/// The proxy's statistics.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    clusters: Mutex<HashMap<String, Arc<ClusterStats>>>,
    prefixes: Mutex<BTreeMap<String, Arc<PrefixStats>>>,
    labels: Mutex<HashMap<Arc<str>, Arc<MetricLabels>>>,
    sourced: Mutex<HashMap<SourcedKey, Arc<MetricLabels>>>,
    http: Mutex<HashMap<HttpKey, HttpSeries>>,
    tcp: Mutex<HashMap<TcpKey, TcpSeries>>,
}

/// One interned set of Istio metric labels, everything but the per-request ones
/// (`request_protocol`, `response_code`, `response_flags`).
#[derive(Debug)]
pub(crate) struct MetricLabels {
    /// `reporter="source",source_workload="…",…,destination_service_namespace="…"`.
    text: Arc<str>,
    /// `connection_security_policy`: `unknown` when reporting as the source, `none`
    /// for plaintext received as the destination, `mutual_tls` for mTLS.
    security: &'static str,
    /// Who reports, and where the `source_*` labels are in `text`, so that a
    /// request's own source ([`Stats::with_source`]) can replace them.
    reporter: Reporter,
    source: Range<usize>,
}

/// What an inbound request says about its client: the `x-envoy-peer-metadata`
/// its sidecar sent and the verified mTLS principal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Source {
    pub(crate) metadata: Option<HeaderValue>,
    pub(crate) principal: Option<Arc<str>>,
}

/// A label set as reported for one [`Source`], compared by the base set's address.
#[derive(Debug)]
struct SourcedKey {
    base: Arc<MetricLabels>,
    source: Source,
}

/// Most label sets [`Stats::with_source`] remembers before starting over: the
/// metadata comes from clients, so its variety is not the proxy's to bound.
const MAX_SOURCED: usize = 1024;

/// Who is at one end of a request, as Istio's metric labels describe a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Peer {
    /// Workload name (the Deployment), or `unknown`.
    pub(crate) workload: String,
    /// The workload's namespace, or `unknown`.
    pub(crate) namespace: String,
    /// SPIFFE identity when the connection proves it (mTLS), else `unknown`.
    pub(crate) principal: String,
    /// Label `app`, or `unknown`.
    pub(crate) app: String,
    /// Label `version`, or `unknown`.
    pub(crate) version: String,
    /// Istio's canonical service (`service.istio.io/canonical-name`, else
    /// `app.kubernetes.io/name`, else `app`, else the workload name).
    pub(crate) canonical_service: String,
    /// Istio's canonical revision (`service.istio.io/canonical-revision`, else
    /// `app.kubernetes.io/version`, else `version`, else `latest`).
    pub(crate) canonical_revision: String,
}

/// The `destination_service*` labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServiceNames {
    /// `destination_service`: the host, e.g. `reviews.default.svc.cluster.local`.
    pub(crate) host: String,
    /// `destination_service_name`: `reviews`, or the host for external services.
    pub(crate) name: String,
    /// `destination_service_namespace`, or `unknown`.
    pub(crate) namespace: String,
}

/// Which side reports: the client's proxy (`source`) or the server's (`destination`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reporter {
    /// Outbound traffic of a sidecar, and gateways.
    Source,
    /// Inbound traffic of a sidecar.
    Destination,
}

/// A counter or gauge with relaxed atomics.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

/// Envoy's cluster statistics, plus the live resource counts its circuit breakers
/// compare with their thresholds. Kept by cluster name, so they survive config
/// changes that replace the cluster, as Envoy's do.
#[derive(Debug, Default)]
pub(crate) struct ClusterStats {
    pub(crate) cx_total: Counter,
    pub(crate) cx_connect_fail: Counter,
    pub(crate) cx_connect_timeout: Counter,
    pub(crate) cx_overflow: Counter,
    pub(crate) cx_destroy: Counter,
    pub(crate) cx_tx_bytes: Counter,
    pub(crate) cx_rx_bytes: Counter,
    pub(crate) rq_total: Counter,
    pub(crate) rq_completed: Counter,
    /// `upstream_rq_1xx` … `upstream_rq_5xx`.
    pub(crate) rq_class: [Counter; 5],
    pub(crate) rq_timeout: Counter,
    pub(crate) rq_per_try_timeout: Counter,
    pub(crate) rq_rx_reset: Counter,
    pub(crate) rq_retry: Counter,
    pub(crate) rq_retry_success: Counter,
    pub(crate) rq_retry_overflow: Counter,
    pub(crate) rq_retry_limit_exceeded: Counter,
    pub(crate) rq_pending_total: Counter,
    pub(crate) rq_pending_overflow: Counter,
    pub(crate) rq_pending_failure_eject: Counter,
    pub(crate) ejections_enforced_total: Counter,
    pub(crate) ejections_enforced_consecutive_5xx: Counter,
    pub(crate) ejections_enforced_consecutive_gateway_failure: Counter,
    pub(crate) ejections_overflow: Counter,
    /// Gauge: open (and opening) connections.
    pub(crate) cx_active: Counter,
    /// Gauge: requests waiting for a connection.
    pub(crate) rq_pending_active: Counter,
    /// Gauge: requests in flight.
    pub(crate) rq_active: Counter,
    /// Gauge: retries in flight.
    pub(crate) retries_active: Counter,
    /// Woken whenever a connection is released or closed, for pending requests.
    pub(crate) released: Notify,
}

/// The cluster-level numbers only the cluster itself knows (thresholds, hosts),
/// handed to the renderers.
#[derive(Debug)]
pub(crate) struct ClusterGauges {
    pub(crate) max_connections: u64,
    pub(crate) max_pending: u64,
    pub(crate) max_requests: u64,
    pub(crate) max_retries: u64,
    pub(crate) membership_total: u64,
    pub(crate) membership_healthy: u64,
    pub(crate) ejections_active: u64,
}

/// Statistics under one listener filter's prefix: `http.<stat_prefix>.*` for
/// connection managers, `tcp.<stat_prefix>.*` for TCP proxies.
#[derive(Debug, Default)]
pub(crate) struct PrefixStats {
    pub(crate) downstream_cx_total: Counter,
    pub(crate) downstream_cx_active: Counter,
    pub(crate) downstream_cx_rx_bytes: Counter,
    pub(crate) downstream_cx_tx_bytes: Counter,
    pub(crate) downstream_rq_total: Counter,
    /// `downstream_rq_1xx` … `downstream_rq_5xx`.
    pub(crate) downstream_rq_class: [Counter; 5],
    pub(crate) no_route: Counter,
    pub(crate) no_cluster: Counter,
    pub(crate) rq_direct_response: Counter,
    pub(crate) rq_redirect: Counter,
    http: bool,
}

/// A histogram over [`BUCKETS`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// One finished HTTP request, as Istio's metrics see it.
#[derive(Debug)]
pub(crate) struct HttpSample {
    pub(crate) labels: Arc<MetricLabels>,
    pub(crate) grpc: bool,
    pub(crate) response_code: u16,
    pub(crate) flags: ResponseFlags,
    pub(crate) duration: Duration,
    pub(crate) request_bytes: u64,
    pub(crate) response_bytes: u64,
}

#[derive(Clone, Debug)]
struct HttpKey {
    labels: Arc<MetricLabels>,
    grpc: bool,
    response_code: u16,
    flags: ResponseFlags,
}

#[derive(Clone, Debug, Default)]
struct HttpSeries {
    requests: u64,
    duration: Histogram,
    request_bytes: Histogram,
    response_bytes: Histogram,
}

#[derive(Clone, Debug)]
struct TcpKey {
    labels: Arc<MetricLabels>,
    flags: ResponseFlags,
}

/// Which histogram of a series a metric is.
type HistogramOf = fn(&HttpSeries) -> &Histogram;

/// Which counter of a TCP series a metric is.
type TcpValue = fn(&TcpSeries) -> u64;

#[derive(Clone, Debug, Default)]
struct TcpSeries {
    opened: u64,
    closed: u64,
    sent: u64,
    received: u64,
}

// === impl Stats ===

impl Stats {
    /// The statistics of cluster `name`, created on first use.
    pub(crate) fn cluster(&self, name: &str) -> Arc<ClusterStats> {
        lock(&self.clusters)
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// Forgets the statistics of clusters that are no longer configured.
    pub(crate) fn retain_clusters(&self, keep: impl Fn(&str) -> bool) {
        lock(&self.clusters).retain(|name, _| keep(name));
    }

    /// The statistics under `http.<prefix>` (or `tcp.<prefix>`), created on first use.
    pub(crate) fn prefix(&self, http: bool, prefix: &str) -> Arc<PrefixStats> {
        let family = if http { "http" } else { "tcp" };
        lock(&self.prefixes)
            .entry(format!("{family}.{prefix}"))
            .or_insert_with(|| {
                Arc::new(PrefixStats {
                    http,
                    ..PrefixStats::default()
                })
            })
            .clone()
    }

    /// The interned label set for these peers.
    pub(crate) fn labels(
        &self,
        reporter: Reporter,
        source: &Peer,
        destination: &Peer,
        service: &ServiceNames,
    ) -> Arc<MetricLabels> {
        let mut text = String::with_capacity(512);
        let reporter_name = match reporter {
            Reporter::Source => "source",
            Reporter::Destination => "destination",
        };
        let pairs = [
            ("reporter", reporter_name),
            ("source_workload", &source.workload),
            ("source_canonical_service", &source.canonical_service),
            ("source_canonical_revision", &source.canonical_revision),
            ("source_workload_namespace", &source.namespace),
            ("source_principal", &source.principal),
            ("source_app", &source.app),
            ("source_version", &source.version),
            ("destination_workload", &destination.workload),
            ("destination_workload_namespace", &destination.namespace),
            ("destination_principal", &destination.principal),
            ("destination_app", &destination.app),
            ("destination_version", &destination.version),
            ("destination_service", &service.host),
            (
                "destination_canonical_service",
                &destination.canonical_service,
            ),
            (
                "destination_canonical_revision",
                &destination.canonical_revision,
            ),
            ("destination_service_name", &service.name),
            ("destination_service_namespace", &service.namespace),
        ];
        let mut source = 0..0;
        for (i, (name, value)) in pairs.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            if i == 1 {
                source.start = text.len();
            }
            if i == 8 {
                source.end = text.len();
            }
            push_label(&mut text, name, value);
        }
        let security = match reporter {
            Reporter::Source => "unknown",
            Reporter::Destination => "none",
        };
        self.intern(text, security, reporter, source)
    }

    /// The label set `base` (reported as the destination) with the `source_*`
    /// labels of the request's client; `base` itself when the client is unknown or
    /// the set is reported as the source. The client's principal makes the
    /// request's `connection_security_policy` `mutual_tls`. Remembered per base and
    /// source, so a request costs a map lookup, not a formatting.
    pub(crate) fn with_source(
        &self,
        base: &Arc<MetricLabels>,
        source: &Source,
    ) -> Arc<MetricLabels> {
        if base.reporter != Reporter::Destination
            || (source.metadata.is_none() && source.principal.is_none())
        {
            return base.clone();
        }
        let key = SourcedKey {
            base: base.clone(),
            source: source.clone(),
        };
        if let Some(labels) = lock(&self.sourced).get(&key) {
            return labels.clone();
        }
        let mut peer = source
            .metadata
            .as_ref()
            .and_then(crate::peer::decode)
            .unwrap_or_else(Peer::unknown);
        if let Some(principal) = &source.principal {
            principal.as_ref().clone_into(&mut peer.principal);
        }
        let pairs = [
            ("source_workload", &peer.workload),
            ("source_canonical_service", &peer.canonical_service),
            ("source_canonical_revision", &peer.canonical_revision),
            ("source_workload_namespace", &peer.namespace),
            ("source_principal", &peer.principal),
            ("source_app", &peer.app),
            ("source_version", &peer.version),
        ];
        let mut text = String::with_capacity(base.text.len() + 128);
        text.push_str(&base.text[..base.source.start]);
        for (name, value) in pairs {
            push_label(&mut text, name, value);
            text.push(',');
        }
        let range = base.source.start..text.len();
        text.push_str(&base.text[base.source.end..]);
        let security = if source.principal.is_some() {
            "mutual_tls"
        } else {
            base.security
        };
        let labels = self.intern(text, security, Reporter::Destination, range);
        let mut sourced = lock(&self.sourced);
        if sourced.len() >= MAX_SOURCED {
            sourced.clear();
        }
        sourced.insert(key, labels.clone());
        labels
    }

    /// The one shared copy of a label set.
    fn intern(
        &self,
        text: String,
        security: &'static str,
        reporter: Reporter,
        source: Range<usize>,
    ) -> Arc<MetricLabels> {
        let text: Arc<str> = text.into();
        lock(&self.labels)
            .entry(text.clone())
            .or_insert_with(|| {
                Arc::new(MetricLabels {
                    text,
                    security,
                    reporter,
                    source,
                })
            })
            .clone()
    }

    /// Records a finished HTTP request.
    pub(crate) fn record_http(&self, sample: &HttpSample) {
        let key = HttpKey {
            labels: sample.labels.clone(),
            grpc: sample.grpc,
            response_code: sample.response_code,
            flags: sample.flags,
        };
        let mut http = lock(&self.http);
        let series = http.entry(key).or_default();
        series.requests += 1;
        series
            .duration
            .observe(sample.duration.as_secs_f64() * 1000.0);
        series.request_bytes.observe(sample.request_bytes as f64);
        series.response_bytes.observe(sample.response_bytes as f64);
    }

    /// Records a TCP connection to an upstream opening.
    pub(crate) fn tcp_opened(&self, labels: &Arc<MetricLabels>) {
        let key = TcpKey {
            labels: labels.clone(),
            flags: ResponseFlags::NONE,
        };
        lock(&self.tcp).entry(key).or_default().opened += 1;
    }

    /// Records a proxied TCP connection closing, with the bytes it carried.
    pub(crate) fn tcp_closed(
        &self,
        labels: &Arc<MetricLabels>,
        flags: ResponseFlags,
        sent: u64,
        received: u64,
    ) {
        let key = TcpKey {
            labels: labels.clone(),
            flags,
        };
        let mut tcp = lock(&self.tcp);
        let series = tcp.entry(key).or_default();
        series.closed += 1;
        series.sent += sent;
        series.received += received;
    }

    /// Envoy's `/stats` text: `name: value` lines sorted by name. `clusters` are
    /// the configured clusters with their gauges.
    pub(crate) fn render_envoy<'a>(
        &self,
        clusters: impl IntoIterator<Item = (&'a str, &'a ClusterStats, ClusterGauges)>,
        filter: Option<&regex::Regex>,
    ) -> String {
        let mut lines: Vec<(String, u64)> = Vec::new();
        for (name, stats, gauges) in clusters {
            for (stat, value) in stats.values(&gauges) {
                lines.push((format!("cluster.{name}.{stat}"), value));
            }
        }
        for (prefix, stats) in lock(&self.prefixes).iter() {
            for (stat, value) in stats.values() {
                lines.push((format!("{prefix}.{stat}"), value));
            }
        }
        lines.sort();
        let mut out = String::new();
        for (name, value) in lines {
            if filter.is_none_or(|filter| filter.is_match(&name)) {
                let _ = writeln!(out, "{name}: {value}");
            }
        }
        out
    }

    /// The Prometheus text: Istio's standard metrics, then cluster statistics.
    pub(crate) fn render_prometheus<'a>(
        &self,
        clusters: impl IntoIterator<Item = (&'a str, &'a ClusterStats, ClusterGauges)>,
    ) -> String {
        let mut out = String::new();
        self.render_istio_http(&mut out);
        self.render_istio_tcp(&mut out);
        let mut by_stat: BTreeMap<&'static str, Vec<(String, u64)>> = BTreeMap::new();
        for (name, stats, gauges) in clusters {
            for (stat, value) in stats.values(&gauges) {
                by_stat
                    .entry(stat)
                    .or_default()
                    .push((name.to_owned(), value));
            }
        }
        for (stat, values) in by_stat {
            let metric = format!("envoy_cluster_{}", stat.replace('.', "_"));
            let kind = if ClusterStats::is_gauge(stat) {
                "gauge"
            } else {
                "counter"
            };
            let _ = writeln!(out, "# TYPE {metric} {kind}");
            for (cluster, value) in values {
                let mut labels = String::new();
                push_label(&mut labels, "cluster_name", &cluster);
                let _ = writeln!(out, "{metric}{{{labels}}} {value}");
            }
        }
        out
    }

    fn render_istio_http(&self, out: &mut String) {
        let series: Vec<(HttpKey, HttpSeries)> = lock(&self.http)
            .iter()
            .map(|(key, series)| (key.clone(), series.clone()))
            .collect();
        let labels_of = |key: &HttpKey| {
            format!(
                "{},request_protocol=\"{}\",response_code=\"{}\",grpc_response_status=\"\",response_flags=\"{}\",connection_security_policy=\"{}\"",
                key.labels.text,
                if key.grpc { "grpc" } else { "http" },
                key.response_code,
                key.flags,
                key.labels.security,
            )
        };
        let _ = writeln!(out, "# TYPE istio_requests_total counter");
        for (key, series) in &series {
            let _ = writeln!(
                out,
                "istio_requests_total{{{}}} {}",
                labels_of(key),
                series.requests
            );
        }
        let histograms: [(&str, HistogramOf); 3] = [
            ("istio_request_duration_milliseconds", |s| &s.duration),
            ("istio_request_bytes", |s| &s.request_bytes),
            ("istio_response_bytes", |s| &s.response_bytes),
        ];
        for (metric, pick) in histograms {
            let _ = writeln!(out, "# TYPE {metric} histogram");
            for (key, series) in &series {
                pick(series).render(out, metric, &labels_of(key));
            }
        }
    }

    fn render_istio_tcp(&self, out: &mut String) {
        let series: Vec<(TcpKey, TcpSeries)> = lock(&self.tcp)
            .iter()
            .map(|(key, series)| (key.clone(), series.clone()))
            .collect();
        let metrics: [(&str, TcpValue); 4] = [
            ("istio_tcp_connections_opened_total", |s| s.opened),
            ("istio_tcp_connections_closed_total", |s| s.closed),
            ("istio_tcp_sent_bytes_total", |s| s.sent),
            ("istio_tcp_received_bytes_total", |s| s.received),
        ];
        for (metric, value) in metrics {
            let _ = writeln!(out, "# TYPE {metric} counter");
            for (key, series) in &series {
                let _ = writeln!(
                    out,
                    "{metric}{{{},request_protocol=\"tcp\",response_flags=\"{}\",connection_security_policy=\"{}\"}} {}",
                    key.labels.text,
                    key.flags,
                    key.labels.security,
                    value(series)
                );
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain counters behind, which
    // are still worth reading.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Appends `name="value"` with Prometheus escaping.
fn push_label(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

// === impl MetricLabels ===

impl PartialEq for MetricLabels {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

// === impl SourcedKey ===

impl PartialEq for SourcedKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.base, &other.base) && self.source == other.source
    }
}

impl Eq for SourcedKey {}

impl Hash for SourcedKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.base).hash(state);
        self.source.hash(state);
    }
}

// === impl HttpKey / TcpKey ===

// Label sets are interned, so keys compare and hash them by address.

impl PartialEq for HttpKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.labels, &other.labels)
            && self.grpc == other.grpc
            && self.response_code == other.response_code
            && self.flags == other.flags
    }
}

impl Eq for HttpKey {}

impl Hash for HttpKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.labels).hash(state);
        self.grpc.hash(state);
        self.response_code.hash(state);
        self.flags.hash(state);
    }
}

impl PartialEq for TcpKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.labels, &other.labels) && self.flags == other.flags
    }
}

impl Eq for TcpKey {}

impl Hash for TcpKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.labels).hash(state);
        self.flags.hash(state);
    }
}

// === impl Peer ===

impl Peer {
    /// A peer nothing is known about.
    pub(crate) fn unknown() -> Self {
        let unknown = || "unknown".to_owned();
        Self {
            workload: unknown(),
            namespace: unknown(),
            principal: unknown(),
            app: unknown(),
            version: unknown(),
            canonical_service: unknown(),
            canonical_revision: unknown(),
        }
    }

    /// A peer described by its pod labels, its workload name and namespace when
    /// known. Istio's canonical service and revision rules
    /// (`pkg/model/labels`, `CanonicalService`) pick the first label present.
    pub(crate) fn from_labels(
        labels: &BTreeMap<String, String>,
        workload: Option<&str>,
        namespace: Option<&str>,
    ) -> Self {
        let label = |name: &str| labels.get(name).cloned();
        let workload = workload.map_or_else(|| "unknown".to_owned(), str::to_owned);
        let canonical_service = label("service.istio.io/canonical-name")
            .or_else(|| label("app.kubernetes.io/name"))
            .or_else(|| label("app"))
            .unwrap_or_else(|| workload.clone());
        let canonical_revision = label("service.istio.io/canonical-revision")
            .or_else(|| label("app.kubernetes.io/version"))
            .or_else(|| label("version"))
            .unwrap_or_else(|| "latest".to_owned());
        Self {
            workload,
            namespace: namespace.map_or_else(|| "unknown".to_owned(), str::to_owned),
            principal: "unknown".to_owned(),
            app: label("app").unwrap_or_else(|| "unknown".to_owned()),
            version: label("version").unwrap_or_else(|| "unknown".to_owned()),
            canonical_service,
            canonical_revision,
        }
    }

    /// The proxy's own workload, from its node: Istio derives the workload name of
    /// a Deployment's pod by dropping the ReplicaSet hash and the pod suffix
    /// (`reviews-v1-545db77b95-k9fjt` → `reviews-v1`), which is how meshlab names
    /// pods too.
    pub(crate) fn of_node(node: &ProxyNode) -> Self {
        Self::from_labels(
            &node.labels,
            Some(workload_name(&node.pod)),
            Some(&node.namespace),
        )
    }
}

/// The Deployment name in a pod name `<deployment>-<hash>-<suffix>`; the pod name
/// itself when it has fewer parts.
pub(crate) fn workload_name(pod: &str) -> &str {
    let mut cut = pod;
    for _ in 0..2 {
        match cut.rsplit_once('-') {
            Some((head, _)) if !head.is_empty() => cut = head,
            _ => return pod,
        }
    }
    cut
}

// === impl ServiceNames ===

impl ServiceNames {
    /// Nothing known (no route, direct responses).
    pub(crate) fn unknown() -> Self {
        Self {
            host: "unknown".to_owned(),
            name: "unknown".to_owned(),
            namespace: "unknown".to_owned(),
        }
    }

    /// The names of a service host: a Kubernetes service
    /// (`reviews.default.svc.cluster.local`) gives its name and namespace; any
    /// other host (a ServiceEntry's `httpbin.org`) is its own name.
    pub(crate) fn of_host(host: &str) -> Self {
        let mut labels = host.split('.');
        let (name, namespace) = match (labels.next(), labels.next(), labels.next()) {
            (Some(name), Some(namespace), Some("svc")) => (name.to_owned(), namespace.to_owned()),
            _ => (host.to_owned(), "unknown".to_owned()),
        };
        Self {
            host: host.to_owned(),
            name,
            namespace,
        }
    }

    /// A catch-all cluster (`PassthroughCluster`, `BlackHoleCluster`): the service
    /// name is the cluster's, the service the destination actually reached.
    pub(crate) fn catch_all(cluster: &str, destination: &str) -> Self {
        Self {
            host: destination.to_owned(),
            name: cluster.to_owned(),
            namespace: "unknown".to_owned(),
        }
    }
}

// === impl Counter ===

impl Counter {
    /// Adds one.
    pub(crate) fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }

    /// Adds `n`.
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    /// Subtracts one (gauges).
    pub(crate) fn dec(&self) {
        self.0.fetch_sub(1, Relaxed);
    }

    /// The current value.
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }

    /// Adds one if the value is below `limit`; whether it did.
    pub(crate) fn try_inc(&self, limit: u64) -> bool {
        self.0
            .fetch_update(Relaxed, Relaxed, |value| {
                (value < limit).then_some(value + 1)
            })
            .is_ok()
    }
}

// === impl ClusterStats ===

impl ClusterStats {
    /// Counts a response status in `upstream_rq_<class>xx`.
    pub(crate) fn count_status(&self, status: u16) {
        if let Some(counter) = self.rq_class.get(usize::from(status / 100).wrapping_sub(1)) {
            counter.inc();
        }
    }

    fn is_gauge(stat: &str) -> bool {
        stat.starts_with("circuit_breakers.")
            || stat.ends_with("_active")
            || stat.starts_with("membership_")
    }

    /// Every statistic as `(name without the cluster prefix, value)`.
    fn values(&self, gauges: &ClusterGauges) -> Vec<(&'static str, u64)> {
        let open = |used: u64, max: u64| u64::from(used >= max);
        let remaining = |used: u64, max: u64| max.saturating_sub(used);
        let cx = self.cx_active.get();
        let pending = self.rq_pending_active.get();
        let rq = self.rq_active.get();
        let retries = self.retries_active.get();
        let mut values = vec![
            (
                "circuit_breakers.default.cx_open",
                open(cx, gauges.max_connections),
            ),
            (
                "circuit_breakers.default.cx_pool_open",
                open(cx, gauges.max_connections),
            ),
            (
                "circuit_breakers.default.remaining_cx",
                remaining(cx, gauges.max_connections),
            ),
            (
                "circuit_breakers.default.remaining_pending",
                remaining(pending, gauges.max_pending),
            ),
            (
                "circuit_breakers.default.remaining_retries",
                remaining(retries, gauges.max_retries),
            ),
            (
                "circuit_breakers.default.remaining_rq",
                remaining(rq, gauges.max_requests),
            ),
            (
                "circuit_breakers.default.rq_open",
                open(rq, gauges.max_requests),
            ),
            (
                "circuit_breakers.default.rq_pending_open",
                open(pending, gauges.max_pending),
            ),
            (
                "circuit_breakers.default.rq_retry_open",
                open(retries, gauges.max_retries),
            ),
            // The `high` priority: Istio leaves Envoy's defaults there and meshlab
            // never routes to it; printed so the names exist, as in Envoy.
            ("circuit_breakers.high.cx_open", 0),
            ("circuit_breakers.high.cx_pool_open", 0),
            ("circuit_breakers.high.remaining_cx", 1024),
            ("circuit_breakers.high.remaining_pending", 1024),
            ("circuit_breakers.high.remaining_retries", 3),
            ("circuit_breakers.high.remaining_rq", 1024),
            ("circuit_breakers.high.rq_open", 0),
            ("circuit_breakers.high.rq_pending_open", 0),
            ("circuit_breakers.high.rq_retry_open", 0),
            ("membership_healthy", gauges.membership_healthy),
            ("membership_total", gauges.membership_total),
            (
                "outlier_detection.ejections_active",
                gauges.ejections_active,
            ),
            (
                "outlier_detection.ejections_enforced_consecutive_5xx",
                self.ejections_enforced_consecutive_5xx.get(),
            ),
            (
                "outlier_detection.ejections_enforced_consecutive_gateway_failure",
                self.ejections_enforced_consecutive_gateway_failure.get(),
            ),
            (
                "outlier_detection.ejections_enforced_total",
                self.ejections_enforced_total.get(),
            ),
            (
                "outlier_detection.ejections_overflow",
                self.ejections_overflow.get(),
            ),
            ("upstream_cx_active", cx),
            ("upstream_cx_connect_fail", self.cx_connect_fail.get()),
            ("upstream_cx_connect_timeout", self.cx_connect_timeout.get()),
            ("upstream_cx_destroy", self.cx_destroy.get()),
            ("upstream_cx_overflow", self.cx_overflow.get()),
            ("upstream_cx_rx_bytes_total", self.cx_rx_bytes.get()),
            ("upstream_cx_total", self.cx_total.get()),
            ("upstream_cx_tx_bytes_total", self.cx_tx_bytes.get()),
            ("upstream_rq_active", rq),
            ("upstream_rq_completed", self.rq_completed.get()),
            ("upstream_rq_pending_active", pending),
            (
                "upstream_rq_pending_failure_eject",
                self.rq_pending_failure_eject.get(),
            ),
            (
                "upstream_rq_pending_overflow",
                self.rq_pending_overflow.get(),
            ),
            ("upstream_rq_pending_total", self.rq_pending_total.get()),
            ("upstream_rq_per_try_timeout", self.rq_per_try_timeout.get()),
            ("upstream_rq_retry", self.rq_retry.get()),
            (
                "upstream_rq_retry_limit_exceeded",
                self.rq_retry_limit_exceeded.get(),
            ),
            ("upstream_rq_retry_overflow", self.rq_retry_overflow.get()),
            ("upstream_rq_retry_success", self.rq_retry_success.get()),
            ("upstream_rq_rx_reset", self.rq_rx_reset.get()),
            ("upstream_rq_timeout", self.rq_timeout.get()),
            ("upstream_rq_total", self.rq_total.get()),
        ];
        let classes = [
            "upstream_rq_1xx",
            "upstream_rq_2xx",
            "upstream_rq_3xx",
            "upstream_rq_4xx",
            "upstream_rq_5xx",
        ];
        for (name, counter) in classes.into_iter().zip(&self.rq_class) {
            values.push((name, counter.get()));
        }
        values
    }
}

// === impl PrefixStats ===

impl PrefixStats {
    /// Counts a downstream response status in `downstream_rq_<class>xx`.
    pub(crate) fn count_status(&self, status: u16) {
        self.downstream_rq_total.inc();
        if let Some(counter) = self
            .downstream_rq_class
            .get(usize::from(status / 100).wrapping_sub(1))
        {
            counter.inc();
        }
    }

    fn values(&self) -> Vec<(&'static str, u64)> {
        let mut values = vec![
            ("downstream_cx_active", self.downstream_cx_active.get()),
            (
                "downstream_cx_rx_bytes_total",
                self.downstream_cx_rx_bytes.get(),
            ),
            ("downstream_cx_total", self.downstream_cx_total.get()),
            (
                "downstream_cx_tx_bytes_total",
                self.downstream_cx_tx_bytes.get(),
            ),
        ];
        if self.http {
            values.extend([
                ("downstream_rq_total", self.downstream_rq_total.get()),
                ("no_cluster", self.no_cluster.get()),
                ("no_route", self.no_route.get()),
                ("rq_direct_response", self.rq_direct_response.get()),
                ("rq_redirect", self.rq_redirect.get()),
            ]);
            let classes = [
                "downstream_rq_1xx",
                "downstream_rq_2xx",
                "downstream_rq_3xx",
                "downstream_rq_4xx",
                "downstream_rq_5xx",
            ];
            for (name, counter) in classes.into_iter().zip(&self.downstream_rq_class) {
                values.push((name, counter.get()));
            }
        }
        values
    }
}

// === impl Histogram ===

impl Histogram {
    /// Adds one observation.
    pub(crate) fn observe(&mut self, value: f64) {
        if let Some(bucket) = BUCKETS.iter().position(|bound| value <= *bound) {
            self.counts[bucket] += 1;
        }
        self.sum += value;
        self.count += 1;
    }

    /// Prometheus lines: cumulative `_bucket`s, `+Inf`, `_sum`, `_count`.
    fn render(&self, out: &mut String, metric: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(self.counts) {
            cumulative += count;
            let _ = writeln!(
                out,
                "{metric}_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{metric}_bucket{{{labels},le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{metric}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{metric}_count{{{labels}}} {}", self.count);
    }
}

#[cfg(test)]
mod tests;
