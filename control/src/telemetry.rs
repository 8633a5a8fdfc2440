//! Live telemetry for the dashboard, from the proxies' own access logs.
//!
//! Why logs and not a metrics scrape: Kiali's graph lags Prometheus' scrape interval;
//! learners want to see the split move the moment they apply a VirtualService. Every
//! proxy (sidecars and the ingress gateway) already prints one line per request in
//! Istio's format, so the control plane follows the Docker logs of every
//! `istio-proxy` container ([`follow`]) and turns each line into an event the moment
//! it is written:
//!
//! - the **source** is the workload of the proxy that logged the outbound line (its
//!   pod's `app` and `version` labels) — Istio's "source reporter";
//! - the **destination** comes from the upstream cluster and host:
//!   `outbound|9080|v2|reviews.default.svc.cluster.local` with upstream host
//!   `172.18.0.7:9080` is the pod at that address (`reviews` `v2`); a cluster of a
//!   host outside the mesh (`outbound|80||httpbin.org`) or `PassthroughCluster` is an
//!   external host; `BlackHoleCluster` or Istio's `block_all` route is a blocked
//!   destination; a mesh cluster with no upstream host (`UH`) is the service itself;
//! - the **mTLS lock** of an edge comes from the destination's inbound line for the
//!   same client: Istio's sidecars log the SNI of an mTLS connection
//!   (`%REQUESTED_SERVER_NAME%`, `outbound_.9080_._.reviews.default.svc.cluster.local`)
//!   and `-` for plain text. It reads false until sidecars talk mTLS, then true with
//!   no change here.
//!
//! Edges aggregate a sliding window ([`WINDOW`]): requests per second, the share of
//! server errors, p50 and p99 of `%DURATION%`. The same events feed the access-log
//! tail, so the graph and the log never disagree.

pub mod line;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use meshlab_control_runtime::Docker;
use serde::Serialize;
use tokio::io::AsyncBufReadExt;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::catalog::is_gateway_pod;
use crate::pod::{Pod, Pods};
use crate::reconciler::PROXY_CONTAINER;
use crate::resource::Resource;
use crate::resource::networking::TrafficPolicy;
use crate::store::Snapshot;

use self::line::AccessLine;

/// The window rates and percentiles are computed over.
pub const WINDOW: Duration = Duration::from_secs(10);

/// How long an edge stays on the graph after its last request.
pub const KEEP: Duration = Duration::from_secs(120);

/// The share of server errors at which a node or edge is degraded (0.1 %).
pub const DEGRADED: f64 = 0.001;
/// The share of server errors at which a node or edge is failing (10 %).
pub const FAILING: f64 = 0.1;

/// How many events a slow reader may fall behind before it skips.
const EVENTS: usize = 4096;

/// One graph node.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// Stable id: `workload:default/reviews/v2`, `service:default/reviews`,
    /// `external:httpbin.org`, `blocked:httpbin.org`.
    pub id: String,
    /// `workload`, `gateway`, `service`, `external` or `blocked`.
    pub kind: &'static str,
    /// What the graph prints: `reviews v2`, `httpbin.org`.
    pub label: String,
    /// The namespace, for workloads and services.
    pub namespace: Option<String>,
    /// The app (the service it belongs to, by Bookinfo's convention).
    pub app: Option<String>,
    /// The version label.
    pub version: Option<String>,
    /// Whether every pod of the workload is ready (workloads only).
    pub ready: Option<bool>,
    /// Configuration that shapes traffic to this app: `virtualservice`, `fault`,
    /// `traffic-shifting`, `circuit-breaker`.
    pub badges: Vec<&'static str>,
    /// `healthy`, `degraded`, `failing` or `idle`, from the requests it received.
    pub health: &'static str,
}

/// One graph edge: requests from one node to another over the window.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Edge {
    /// The source node's id.
    pub source: String,
    /// The destination node's id.
    pub target: String,
    /// Requests per second over the window.
    pub rps: f64,
    /// Requests in the window.
    pub requests: usize,
    /// The share of server errors in the window (0–1).
    pub error_rate: f64,
    /// Median duration in milliseconds.
    pub p50_ms: Option<u64>,
    /// 99th percentile duration in milliseconds.
    pub p99_ms: Option<u64>,
    /// Whether the destination's proxy saw this client over mTLS.
    pub mtls: bool,
    /// `healthy`, `degraded`, `failing` or `idle`.
    pub health: &'static str,
    /// Response flags seen in the window, e.g. `UH`, `FI`.
    pub flags: Vec<String>,
}

/// The graph at one moment.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Graph {
    /// Nodes, ordered by id.
    pub nodes: Vec<Node>,
    /// Edges, ordered by source and target.
    pub edges: Vec<Edge>,
    /// The window in seconds.
    pub window_seconds: u64,
}

/// One access-log line with where it came from and what it means for the graph.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEvent {
    /// The pod whose proxy logged it.
    pub pod: String,
    /// Its namespace.
    pub namespace: String,
    /// Its workload, e.g. `reviews-v2` (the app and version labels).
    pub workload: String,
    /// `inbound` or `outbound`.
    pub direction: &'static str,
    /// The line as the proxy printed it.
    pub text: String,
    /// The parsed fields.
    #[serde(flatten)]
    pub line: AccessLine,
    /// The graph edge it counts for (outbound lines with a destination).
    pub source: Option<String>,
    /// The destination node's id.
    pub target: Option<String>,
}

/// The live telemetry: a window of samples per edge, and the stream of events.
#[derive(Clone, Debug)]
pub struct Telemetry {
    inner: Arc<Mutex<Window>>,
    events: broadcast::Sender<Arc<LogEvent>>,
}

#[derive(Debug, Default)]
struct Window {
    edges: HashMap<(String, String), EdgeSamples>,
    /// Extra nodes seen in traffic (services, external hosts, blocked ones).
    seen: BTreeMap<String, Node>,
}

#[derive(Debug, Default)]
struct EdgeSamples {
    samples: VecDeque<Sample>,
    last: Option<Instant>,
    mtls: bool,
}

#[derive(Clone, Debug)]
struct Sample {
    at: Instant,
    error: bool,
    duration_ms: u64,
    flags: String,
}

// === impl Telemetry ===

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// Empty telemetry.
    pub fn new() -> Self {
        Telemetry {
            inner: Arc::default(),
            events: broadcast::channel(EVENTS).0,
        }
    }

    /// The stream of events, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LogEvent>> {
        self.events.subscribe()
    }

    /// Records one line printed by the proxy of `pod`; `pods` resolves addresses.
    /// Lines that are not access-log lines are ignored.
    pub fn record(&self, pod: &Pod, pods: &[Pod], text: &str, now: Instant) {
        let Some(line) = line::parse(text) else {
            return;
        };
        let pod_ip = pod.ip.as_deref().and_then(|ip| ip.parse().ok());
        let inbound = !is_gateway_pod(&pod.labels) && line.is_inbound(pod_ip);
        let here = workload_node(pod);
        let mut window = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (source, target) = if inbound {
            // The destination's view: only the mTLS marker of the client's edge.
            if let Some(client) = line
                .downstream_remote
                .and_then(|remote| pod_at(pods, remote.ip()))
            {
                let key = (workload_node(client).id, here.id);
                window.edges.entry(key).or_default().mtls = line.server_name.is_some();
            }
            (None, None)
        } else {
            match destination(&line, pods) {
                Some(target) => {
                    let key = (here.id.clone(), target.id.clone());
                    if !target.id.starts_with("workload:") {
                        window.seen.insert(target.id.clone(), target.clone());
                    }
                    let edge = window.edges.entry(key).or_default();
                    edge.samples.push_back(Sample {
                        at: now,
                        error: line.is_error(),
                        duration_ms: line.duration_ms,
                        flags: line.flags.clone(),
                    });
                    edge.last = Some(now);
                    (Some(here.id), Some(target.id))
                }
                None => (None, None),
            }
        };
        window.expire(now);
        drop(window);
        let event = LogEvent {
            pod: pod.name.clone(),
            namespace: pod.namespace.clone(),
            workload: workload_name(pod),
            direction: if inbound { "inbound" } else { "outbound" },
            text: text.trim_end().to_owned(),
            line,
            source,
            target,
        };
        // No subscriber is fine: nobody is watching the log.
        let _ = self.events.send(Arc::new(event));
    }

    /// The graph now: every workload of `pods`, the nodes seen in traffic, and the
    /// edges with traffic in the last [`KEEP`]; badges from `snapshot`.
    pub fn graph(&self, snapshot: &Snapshot, pods: &[Pod], now: Instant) -> Graph {
        let mut window = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        window.expire(now);
        let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
        for pod in pods.iter().filter(|p| p.status != "Terminating") {
            let node = workload_node(pod);
            let ready = pod.is_ready();
            nodes
                .entry(node.id.clone())
                .and_modify(|n| n.ready = Some(n.ready.unwrap_or(true) && ready))
                .or_insert(node);
        }
        for (id, node) in &window.seen {
            nodes.entry(id.clone()).or_insert_with(|| node.clone());
        }
        let mut edges: Vec<Edge> = window
            .edges
            .iter()
            .filter(|(_, samples)| samples.last.is_some())
            .map(|((source, target), samples)| samples.edge(source, target, now))
            .collect();
        drop(window);
        edges.sort_by(|a, b| (&a.source, &a.target).cmp(&(&b.source, &b.target)));
        for edge in &edges {
            // Edges from pods that are gone still show where the traffic went.
            for id in [&edge.source, &edge.target] {
                nodes.entry(id.clone()).or_insert_with(|| gone_node(id));
            }
        }
        let badges = badges(snapshot);
        for node in nodes.values_mut() {
            if let (Some(namespace), Some(app)) = (&node.namespace, &node.app) {
                node.badges = badges
                    .get(&(namespace.clone(), app.clone()))
                    .map(|b| b.iter().copied().collect())
                    .unwrap_or_default();
            }
            // A node is judged by what it received; a client (the gateway, sleep)
            // that received nothing, by what it sent.
            let mut incoming: Vec<&Edge> = edges
                .iter()
                .filter(|e| e.target == node.id && e.requests > 0)
                .collect();
            if incoming.is_empty() {
                incoming = edges
                    .iter()
                    .filter(|e| e.source == node.id && e.requests > 0)
                    .collect();
            }
            let requests: usize = incoming.iter().map(|e| e.requests).sum();
            let errors: f64 = incoming
                .iter()
                .map(|e| e.error_rate * e.requests as f64)
                .sum();
            node.health = health(requests, errors);
        }
        Graph {
            nodes: nodes.into_values().collect(),
            edges,
            window_seconds: WINDOW.as_secs(),
        }
    }
}

// === impl Window ===

impl Window {
    fn expire(&mut self, now: Instant) {
        for samples in self.edges.values_mut() {
            while samples
                .samples
                .front()
                .is_some_and(|s| now.duration_since(s.at) > WINDOW)
            {
                samples.samples.pop_front();
            }
        }
        self.edges
            .retain(|_, e| e.last.is_none_or(|last| now.duration_since(last) <= KEEP));
        let live: BTreeSet<&String> = self.edges.keys().map(|(_, target)| target).collect();
        self.seen.retain(|id, _| live.contains(id));
    }
}

// === impl EdgeSamples ===

impl EdgeSamples {
    fn edge(&self, source: &str, target: &str, now: Instant) -> Edge {
        let recent: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| now.duration_since(s.at) <= WINDOW)
            .collect();
        let requests = recent.len();
        let errors = recent.iter().filter(|s| s.error).count();
        let mut durations: Vec<u64> = recent.iter().map(|s| s.duration_ms).collect();
        durations.sort_unstable();
        let flags: BTreeSet<String> = recent
            .iter()
            .filter(|s| s.flags != "-")
            .map(|s| s.flags.clone())
            .collect();
        Edge {
            source: source.to_owned(),
            target: target.to_owned(),
            rps: requests as f64 / WINDOW.as_secs_f64(),
            requests,
            error_rate: if requests == 0 {
                0.0
            } else {
                errors as f64 / requests as f64
            },
            p50_ms: percentile(&durations, 0.5),
            p99_ms: percentile(&durations, 0.99),
            mtls: self.mtls,
            health: health(requests, errors as f64),
            flags: flags.into_iter().collect(),
        }
    }
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Kiali's thresholds on the share of server errors.
fn health(requests: usize, errors: f64) -> &'static str {
    if requests == 0 {
        return "idle";
    }
    let rate = errors / requests as f64;
    if rate >= FAILING {
        "failing"
    } else if rate >= DEGRADED {
        "degraded"
    } else {
        "healthy"
    }
}

/// `reviews-v2`: the workload's name in the log tail and its filter.
fn workload_name(pod: &Pod) -> String {
    let app = app_of(pod);
    match pod.labels.get("version") {
        Some(version) => format!("{app}-{version}"),
        None => app,
    }
}

fn app_of(pod: &Pod) -> String {
    pod.labels
        .get("app")
        .cloned()
        .or_else(|| pod.deployment.clone())
        .unwrap_or_else(|| pod.name.clone())
}

/// The versioned-app node of a pod.
fn workload_node(pod: &Pod) -> Node {
    let app = app_of(pod);
    let version = pod.labels.get("version").cloned();
    let id = match &version {
        Some(version) => format!("workload:{}/{app}/{version}", pod.namespace),
        None => format!("workload:{}/{app}", pod.namespace),
    };
    Node {
        id,
        kind: if is_gateway_pod(&pod.labels) {
            "gateway"
        } else {
            "workload"
        },
        label: match &version {
            Some(version) => format!("{app} {version}"),
            None => app.clone(),
        },
        namespace: Some(pod.namespace.clone()),
        app: Some(app),
        version,
        ready: Some(pod.is_ready()),
        badges: Vec::new(),
        health: "idle",
    }
}

/// A node named only by its id (its pods are gone).
fn gone_node(id: &str) -> Node {
    let (kind, rest) = id.split_once(':').unwrap_or(("workload", id));
    let mut parts = rest.split('/');
    let namespace = parts.next().map(str::to_owned);
    let app = parts.next().map(str::to_owned);
    let version = parts.next().map(str::to_owned);
    Node {
        id: id.to_owned(),
        kind: if kind == "service" {
            "service"
        } else {
            "workload"
        },
        label: [app.as_deref(), version.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
        namespace,
        app,
        version,
        ready: Some(false),
        badges: Vec::new(),
        health: "idle",
    }
}

fn plain_node(id: String, kind: &'static str, label: String) -> Node {
    Node {
        id,
        kind,
        label,
        namespace: None,
        app: None,
        version: None,
        ready: None,
        badges: Vec::new(),
        health: "idle",
    }
}

fn pod_at(pods: &[Pod], ip: IpAddr) -> Option<&Pod> {
    let ip = ip.to_string();
    pods.iter().find(|p| p.ip.as_deref() == Some(ip.as_str()))
}

/// Where an outbound line went, as a node.
fn destination(line: &AccessLine, pods: &[Pod]) -> Option<Node> {
    let host_of = || {
        line.authority_host()
            .map(str::to_owned)
            .or_else(|| line.downstream_local.map(|a| a.ip().to_string()))
            .unwrap_or_else(|| "unknown".to_owned())
    };
    let cluster = line.upstream_cluster.as_deref();
    if cluster == Some("BlackHoleCluster") || line.route_name.as_deref() == Some("block_all") {
        let host = host_of();
        return Some(plain_node(
            format!("blocked:{host}"),
            "blocked",
            format!("{host} (blocked)"),
        ));
    }
    if cluster == Some("PassthroughCluster") {
        if let Some(pod) = line.upstream_host.and_then(|h| pod_at(pods, h.ip())) {
            return Some(workload_node(pod));
        }
        let host = host_of();
        return Some(plain_node(format!("external:{host}"), "external", host));
    }
    let mut parts = cluster?.split('|');
    if parts.next() != Some("outbound") {
        return None;
    }
    let host = parts.nth(2)?;
    if let Some(pod) = line.upstream_host.and_then(|h| pod_at(pods, h.ip())) {
        return Some(workload_node(pod));
    }
    match host.strip_suffix(".svc.cluster.local") {
        Some(service) => {
            let (name, namespace) = service.split_once('.').unwrap_or((service, "default"));
            let mut node = plain_node(
                format!("service:{namespace}/{name}"),
                "service",
                name.to_owned(),
            );
            node.namespace = Some(namespace.to_owned());
            node.app = Some(name.to_owned());
            Some(node)
        }
        None => Some(plain_node(
            format!("external:{host}"),
            "external",
            host.to_owned(),
        )),
    }
}

/// The badges of each `(namespace, service)` from the store's VirtualServices and
/// DestinationRules.
fn badges(snapshot: &Snapshot) -> BTreeMap<(String, String), BTreeSet<&'static str>> {
    let mut badges: BTreeMap<(String, String), BTreeSet<&'static str>> = BTreeMap::new();
    for (key, resource) in snapshot.iter() {
        match resource.as_ref() {
            Resource::VirtualService(vs) => {
                for host in &vs.spec.hosts {
                    let Some(service) = service_of(host, &key.namespace) else {
                        continue;
                    };
                    let set = badges.entry(service).or_default();
                    set.insert("virtualservice");
                    for route in &vs.spec.http {
                        if route.fault.is_some() {
                            set.insert("fault");
                        }
                        if route.route.len() > 1 {
                            set.insert("traffic-shifting");
                        }
                    }
                }
            }
            Resource::DestinationRule(dr) => {
                let Some(service) = service_of(&dr.spec.host, &key.namespace) else {
                    continue;
                };
                let breaks = |policy: Option<&TrafficPolicy>| {
                    policy.is_some_and(|p| {
                        p.connection_pool.is_some()
                            || p.outlier_detection.is_some()
                            || p.port_level_settings.iter().any(|s| {
                                s.connection_pool.is_some() || s.outlier_detection.is_some()
                            })
                    })
                };
                if breaks(dr.spec.traffic_policy.as_ref())
                    || dr
                        .spec
                        .subsets
                        .iter()
                        .any(|s| breaks(s.traffic_policy.as_ref()))
                {
                    badges.entry(service).or_default().insert("circuit-breaker");
                }
            }
            _ => {}
        }
    }
    badges
}

/// `(namespace, service)` of a host as a VirtualService or DestinationRule in
/// `namespace` names it: `reviews`, `reviews.default`,
/// `reviews.default.svc.cluster.local`. Wildcards and external hosts name none.
fn service_of(host: &str, namespace: &str) -> Option<(String, String)> {
    if host.contains('*') {
        return None;
    }
    let short = host.strip_suffix(".svc.cluster.local").unwrap_or(host);
    match short.split('.').collect::<Vec<_>>()[..] {
        [name] => Some((namespace.to_owned(), name.to_owned())),
        [name, ns] => Some((ns.to_owned(), name.to_owned())),
        _ => None,
    }
}

/// Follows the proxy logs of every pod in `pods` into `telemetry`, starting and
/// stopping followers as pods come and go; runs until dropped.
pub async fn follow(docker: Docker, mut pods: watch::Receiver<Pods>, telemetry: Telemetry) {
    let mut followers: HashMap<String, JoinHandle<()>> = HashMap::new();
    loop {
        let current = pods.borrow_and_update().clone();
        let wanted: HashMap<String, &Pod> = current
            .iter()
            .filter_map(|pod| {
                let container = pod
                    .containers
                    .iter()
                    .find(|c| c.name == PROXY_CONTAINER && c.ready)?;
                Some((container.docker_name.clone(), pod))
            })
            .collect();
        followers.retain(|name, task| {
            let keep = wanted.contains_key(name) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for (name, pod) in wanted {
            if followers.contains_key(&name) {
                continue;
            }
            let task = tokio::spawn(follow_one(
                docker.clone(),
                name.clone(),
                (*pod).clone(),
                pods.clone(),
                telemetry.clone(),
            ));
            followers.insert(name, task);
        }
        if pods.changed().await.is_err() {
            break;
        }
    }
    for task in followers.into_values() {
        task.abort();
    }
}

/// Follows one proxy's standard output from now on.
async fn follow_one(
    docker: Docker,
    container: String,
    pod: Pod,
    pods: watch::Receiver<Pods>,
    telemetry: Telemetry,
) {
    let (writer, reader) = tokio::io::duplex(64 * 1024);
    let reading = async {
        let mut lines = tokio::io::BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let all = pods.borrow().clone();
            telemetry.record(&pod, &all, &line, Instant::now());
        }
    };
    let following = async {
        let result = docker
            .logs(&container, true, Some(0), writer, tokio::io::sink())
            .await;
        if let Err(err) = result {
            tracing::debug!(%container, %err, "stopped following a proxy's access log");
        }
    };
    tokio::join!(reading, following);
}

#[cfg(test)]
mod tests;
