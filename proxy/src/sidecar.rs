//! Running a proxy: options, start-up, and applying each configuration the
//! discovery client delivers.
//!
//! The configuration arrives as whole snapshots on a `watch` channel. Each one
//! becomes an immutable snapshot (configuration plus run-time clusters) that
//! requests read without locks; listeners are then re-bound as needed. Only
//! values *sent* on the channel count: the value it was created with is a
//! placeholder, so the proxy reports ready (`/ready`, `/healthz/ready`) only once
//! the first real configuration is applied, as Envoy does after its first xDS
//! response. When the sender goes away (the discovery client stopped), the
//! proxy keeps serving the last configuration.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use meshlab_proxy_config::{ProxyConfig, ProxyNode};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::access_log::{AccessLog, AccessLogSink};
use crate::admin::{self, Surface};
use crate::cluster::{ClusterContext, ClusterManager};
use crate::identity::Identity;
use crate::listener::{Listeners, OriginalDst, Task};
use crate::peer::PeerMetadata;
use crate::stats::{MetricLabels, Peer, Reporter, ServiceNames, Stats};
use crate::tls::{Roots, Terminations};

/// How a proxy runs, apart from its configuration.
#[derive(Clone, Debug)]
pub struct ProxyOptions {
    /// Who the proxy is (metric labels name its workload).
    pub node: ProxyNode,
    /// Envoy's admin interface; Istio binds it to loopback (`127.0.0.1:15000`).
    pub admin_address: SocketAddr,
    /// The readiness probe, `/healthz/ready` (`0.0.0.0:15021`).
    pub readiness_address: SocketAddr,
    /// The Prometheus scrape port, `/stats/prometheus` (`0.0.0.0:15090`).
    pub metrics_address: SocketAddr,
    /// How listeners with `use_original_dst` find where a connection was going.
    pub original_dst: OriginalDst,
    /// Where access log lines go (stdout).
    pub access_log: AccessLogSink,
    /// PEM bundle of CAs trusted for TLS origination
    /// (`/etc/ssl/certs/ca-certificates.crt`).
    pub ca_bundle: PathBuf,
    /// How often DNS clusters re-resolve (Istio's `dnsRefreshRate`, 60 s).
    pub dns_refresh: Duration,
    /// How long to wait for a client's first bytes when a filter chain depends
    /// on them; `None` waits as long as it takes (Istio's default
    /// `protocolDetectionTimeout: 0s`).
    pub protocol_detection_timeout: Option<Duration>,
    /// The proxy's mesh identity, for mTLS; `None` for a proxy without a pod token
    /// (then ISTIO_MUTUAL clusters and mTLS filter chains fail their connections).
    pub identity: Option<Arc<Identity>>,
}

/// Why a proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// One of the proxy's own ports (admin, readiness, metrics) is taken.
    #[error(
        "cannot listen on {address} for the {what}: {source} (hint: is another proxy running in this network namespace?)"
    )]
    Bind {
        /// Which port: `admin interface`, `readiness probe` or `metrics port`.
        what: &'static str,
        /// The address tried.
        address: SocketAddr,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
}

/// A running proxy. Dropping it stops its listeners and servers; connections in
/// progress finish on their own.
#[derive(Debug)]
pub struct Sidecar {
    admin: SocketAddr,
    readiness: SocketAddr,
    metrics: SocketAddr,
    bound: watch::Receiver<BTreeMap<String, SocketAddr>>,
    _tasks: Vec<Task>,
}

/// What every connection and request of a proxy shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) snapshot: watch::Receiver<Arc<Snapshot>>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) log: AccessLog,
    pub(crate) original_dst: OriginalDst,
    pub(crate) protocol_detection_timeout: Option<Duration>,
    /// Labels for requests that match no route.
    pub(crate) unknown_labels: Arc<MetricLabels>,
    /// The HTTP/1.1 + HTTP/2 server settings, built once.
    pub(crate) http_server: auto::Builder<TokioExecutor>,
    /// Whether a configuration has been applied.
    pub(crate) ready: AtomicBool,
    /// The mesh identity, when the proxy has one.
    pub(crate) identity: Option<Arc<Identity>>,
    /// The metadata-exchange headers sent to endpoints with a sidecar.
    pub(crate) peer_metadata: PeerMetadata,
}

impl Shared {
    /// Ready to serve: configured, and certified if it has an identity (Envoy
    /// waits for its SDS secrets the same way).
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Relaxed) && self.identity.as_ref().is_none_or(|i| i.is_ready())
    }
}

/// One applied configuration: what requests read.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) config: Arc<ProxyConfig>,
    pub(crate) clusters: ClusterManager,
    /// The TLS that gateway listeners terminate with `credentialName` secrets.
    pub(crate) terminations: Terminations,
}

// === impl ProxyOptions ===

impl ProxyOptions {
    /// Istio's ports and defaults for `node`.
    pub fn new(node: ProxyNode) -> Self {
        let any = |port| SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
        Self {
            node,
            admin_address: SocketAddr::from((Ipv4Addr::LOCALHOST, 15000)),
            readiness_address: any(15021),
            metrics_address: any(15090),
            original_dst: OriginalDst::LocalAddr,
            access_log: AccessLogSink::Stdout,
            ca_bundle: PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
            dns_refresh: Duration::from_secs(60),
            protocol_detection_timeout: None,
            identity: None,
        }
    }
}

// === impl Sidecar ===

impl Sidecar {
    /// Binds the proxy's own ports and starts applying the configurations sent on
    /// `configs` (the channel's initial value is not applied; see the module docs).
    pub async fn start(
        options: ProxyOptions,
        mut configs: watch::Receiver<Arc<ProxyConfig>>,
    ) -> Result<Self, ProxyError> {
        let admin_socket = bind("admin interface", options.admin_address).await?;
        let readiness_socket = bind("readiness probe", options.readiness_address).await?;
        let metrics_socket = bind("metrics port", options.metrics_address).await?;
        let local = |socket: &TcpListener, fallback| socket.local_addr().unwrap_or(fallback);
        let admin = local(&admin_socket, options.admin_address);
        let readiness = local(&readiness_socket, options.readiness_address);
        let metrics = local(&metrics_socket, options.metrics_address);

        let stats = Arc::new(Stats::default());
        let me = Peer::of_node(&options.node);
        let peer_metadata = PeerMetadata::new(&options.node, &me);
        let unknown_labels = stats.labels(
            Reporter::Source,
            &me,
            &Peer::unknown(),
            &ServiceNames::unknown(),
        );
        let ctx = Arc::new(ClusterContext {
            stats: stats.clone(),
            roots: Roots::new(options.ca_bundle),
            dns_refresh: options.dns_refresh,
            me,
            identity: options.identity.clone(),
        });
        let (snapshots, snapshot) = watch::channel(Arc::new(Snapshot::default()));
        let mut http_server = auto::Builder::new(TokioExecutor::new());
        // Envoy keeps idle downstream connections for an hour; hyper's 30 s header
        // read timeout would close an app's idle keep-alive connections early.
        http_server
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(None);
        http_server.http2().timer(TokioTimer::new());
        let shared = Arc::new(Shared {
            snapshot,
            stats,
            log: AccessLog::start(options.access_log),
            original_dst: options.original_dst,
            protocol_detection_timeout: options.protocol_detection_timeout,
            unknown_labels,
            http_server,
            ready: AtomicBool::new(false),
            identity: options.identity,
            peer_metadata,
        });

        let (bound_tx, bound) = watch::channel(BTreeMap::new());
        let mut listeners = Listeners::new(bound_tx);
        let apply = {
            let shared = shared.clone();
            async move {
                while configs.changed().await.is_ok() {
                    let config = configs.borrow_and_update().clone();
                    let clusters = snapshots.borrow().clusters.update(&config, &ctx);
                    let terminations = Terminations::build(&config);
                    let snapshot = Arc::new(Snapshot {
                        config,
                        clusters,
                        terminations,
                    });
                    snapshots.send_replace(snapshot.clone());
                    listeners.apply(&snapshot.config, &shared).await;
                    shared.ready.store(true, Relaxed);
                }
                tracing::info!("the configuration source closed; serving the last configuration");
                // Keep the listeners (owned here) running.
                std::future::pending::<()>().await;
            }
        };
        let tasks = vec![
            Task::spawn(apply),
            Task::spawn(admin::serve(admin_socket, Surface::Admin, shared.clone())),
            Task::spawn(admin::serve(
                readiness_socket,
                Surface::Readiness,
                shared.clone(),
            )),
            Task::spawn(admin::serve(metrics_socket, Surface::Metrics, shared)),
        ];
        Ok(Self {
            admin,
            readiness,
            metrics,
            bound,
            _tasks: tasks,
        })
    }

    /// Where the admin interface listens.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// Where the readiness probe listens.
    pub fn readiness_addr(&self) -> SocketAddr {
        self.readiness
    }

    /// Where the metrics port listens.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics
    }

    /// Where listener `name` is bound, waiting until a configuration binds it.
    pub async fn listener_addr(&self, name: &str) -> SocketAddr {
        let mut bound = self.bound.clone();
        loop {
            if let Some(address) = bound.borrow_and_update().get(name) {
                return *address;
            }
            if bound.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

async fn bind(what: &'static str, address: SocketAddr) -> Result<TcpListener, ProxyError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ProxyError::Bind {
            what,
            address,
            source,
        })
}

/// Runs a proxy with `options`, applying every configuration sent on `configs`,
/// until the returned future is dropped. Returns only if the proxy cannot start.
pub async fn run(
    options: ProxyOptions,
    configs: watch::Receiver<Arc<ProxyConfig>>,
) -> Result<(), ProxyError> {
    let _sidecar = Sidecar::start(options, configs).await?;
    std::future::pending::<()>().await;
    Ok(())
}
