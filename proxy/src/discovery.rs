//! The discovery client: the proxy's one gRPC stream to the control plane.
//!
//! Envoy's aggregated discovery (ADS, state of the world) with meshlab's messages
//! (`meshlab-control-api`):
//!
//! 1. connect to the control plane (`http://meshlab-control:15010`, Istio's plaintext
//!    xDS port) and send the proxy's node on the first request;
//! 2. subscribe to each resource type in Envoy's order — clusters (CDS), endpoints
//!    (EDS), listeners (LDS), routes (RDS). The order is Envoy's "make before break":
//!    routes name clusters and listeners name routes, so what is referred to arrives
//!    before what refers to it, and a request never meets a route whose cluster the
//!    proxy has not heard of (Envoy's `NC`, "no cluster"). Each subscription carries
//!    the version the proxy already runs, so after a reconnect the control plane can
//!    tell, and proxy-status shows it;
//! 3. for every response, convert the resources into the proxy model (the wire
//!    contract checks them, see `meshlab_control_api::Resources`) and hand them to
//!    the caller's [`Apply`] hook, on a copy of the current configuration. Success:
//!    the copy becomes current, is published on a `watch` channel, and the response
//!    is ACKed. Failure: the copy is dropped — the proxy **keeps serving its last good
//!    configuration** — and the response is NACKed with the error's text, which the
//!    control plane shows in `meshlab proxy-status`;
//! 4. when the control plane goes away, keep the configuration and reconnect with a
//!    capped, jittered exponential back-off ([`Backoff`]).
//!
//! Nothing is published until every subscribed type has been answered once (as
//! Envoy initialises), so the data path never starts from half a configuration; after
//! that, every applied response is published. A response whose version the proxy
//! already runs (a re-sync after a reconnect) is ACKed without being applied again.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    sync::Arc,
    time::Duration,
};

use meshlab_control_api::{
    DISCOVERY_PORT, ResourceType, Resources, node_to_wire,
    v1::{self, aggregated_discovery_service_client::AggregatedDiscoveryServiceClient},
};
use meshlab_proxy_config::{ProxyConfig, ProxyNode, route::InvalidRouteConfiguration};
use tokio::sync::{mpsc, watch};
use tonic::transport::Endpoint;

/// The control plane's discovery address inside a lab network.
pub fn default_endpoint() -> String {
    format!("http://meshlab-control:{DISCOVERY_PORT}")
}

/// Takes one response's resources into a configuration.
///
/// The client calls it on a *copy* of the current configuration: on error the copy
/// is dropped, so an implementation may fail halfway without harm.
pub trait Apply: Clone + Send + Sync + 'static {
    /// Why resources were refused; its text is the NACK's message.
    type Error: fmt::Display;

    /// Replaces this configuration's resources of one type with `resources` (a
    /// response is the complete set of its type).
    fn apply(&mut self, resources: Resources) -> Result<(), Self::Error>;
}

/// Why a proxy refuses resources into a [`ProxyConfig`].
#[derive(Debug, thiserror::Error)]
pub enum InvalidConfig {
    /// A route configuration Envoy would reject.
    #[error(transparent)]
    Route(#[from] InvalidRouteConfiguration),
}

/// How the client connects.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// The control plane's URL, e.g. [`default_endpoint`].
    pub endpoint: String,
    /// Who this proxy is.
    pub node: ProxyNode,
    /// This proxy's build version, shown by `meshlab proxy-status`.
    pub version: String,
    /// The types to subscribe to; subscribed in push order whatever the order here.
    pub types: BTreeSet<ResourceType>,
    /// Waiting between connection attempts.
    pub backoff: Backoff,
    /// How long connecting may take.
    pub connect_timeout: Duration,
}

/// Capped exponential back-off with jitter: attempt `n` (0-based) waits a random
/// time between half and all of `min(initial × 2ⁿ, max)`, so proxies that lost the
/// control plane together do not come back all at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first ceiling (default 250 ms).
    pub initial: Duration,
    /// The largest ceiling (default 5 s: a lab wants its proxies back quickly).
    pub max: Duration,
}

/// What the client knows about its stream, for the admin interface and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientStatus {
    /// Whether a stream is open now.
    pub connected: bool,
    /// How many streams have been opened.
    pub connections: u64,
    /// Per subscribed type.
    pub types: BTreeMap<ResourceType, TypeSync>,
}

/// One type's state on the proxy's side.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TypeSync {
    /// The version running (last ACKed).
    pub acked: Option<String>,
    /// The last response refused: its version and the error sent back.
    pub nacked: Option<(String, String)>,
    /// How many responses were applied.
    pub applied: u64,
}

/// The control plane's URL does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid control plane address {endpoint:?}")]
pub struct InvalidEndpoint {
    /// The URL as given.
    pub endpoint: String,
    /// What the transport said.
    #[source]
    pub source: tonic::transport::Error,
}

/// A discovery client, running or about to.
pub struct DiscoveryClient<C> {
    settings: ClientSettings,
    endpoint: Endpoint,
    current: Arc<C>,
    config: watch::Sender<Arc<C>>,
    status: watch::Sender<ClientStatus>,
    /// Types answered at least once (applied or refused).
    answered: BTreeSet<ResourceType>,
}

/// Why a stream ended; logged, then the client reconnects.
#[derive(Debug, thiserror::Error)]
enum StreamEnded {
    /// No connection could be made.
    #[error("cannot connect to the control plane")]
    Connect(#[source] tonic::transport::Error),
    /// The stream failed or the control plane ended it with an error.
    #[error("discovery stream failed: {0}")]
    Status(#[from] tonic::Status),
    /// The control plane closed the stream.
    #[error("the control plane closed the discovery stream")]
    Closed,
}

// === impl ProxyConfig: Apply ===

impl Apply for ProxyConfig {
    type Error = InvalidConfig;

    fn apply(&mut self, resources: Resources) -> Result<(), InvalidConfig> {
        match resources {
            Resources::Clusters(clusters) => {
                self.clusters = by_name(clusters, |cluster| &cluster.name);
            }
            Resources::ClusterLoadAssignments(assignments) => {
                self.endpoints = by_name(assignments, |assignment| &assignment.cluster_name);
            }
            Resources::Listeners(listeners) => {
                self.listeners = by_name(listeners, |listener| &listener.name);
            }
            Resources::RouteConfigurations(routes) => {
                for route in &routes {
                    route.validate()?;
                }
                self.routes = by_name(routes, |route| &route.name);
            }
            Resources::Secrets(secrets) => {
                self.secrets = by_name(secrets, |secret| &secret.name);
            }
        }
        Ok(())
    }
}

fn by_name<T>(items: Vec<T>, name: impl Fn(&T) -> &String) -> BTreeMap<String, T> {
    items
        .into_iter()
        .map(|item| (name(&item).clone(), item))
        .collect()
}

// === impl ClientSettings ===

impl ClientSettings {
    /// Settings to reach `endpoint` as `node`: clusters, endpoints, listeners and
    /// routes, this build's version, the default back-off, 5 s to connect.
    pub fn new(endpoint: impl Into<String>, node: ProxyNode) -> Self {
        Self {
            endpoint: endpoint.into(),
            node,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            types: BTreeSet::from([
                ResourceType::Secret,
                ResourceType::Cluster,
                ResourceType::ClusterLoadAssignment,
                ResourceType::Listener,
                ResourceType::RouteConfiguration,
            ]),
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

// === impl Backoff ===

impl Backoff {
    /// The wait before retry `attempt` (0-based), drawing `random` for the jitter.
    pub fn delay(&self, attempt: u32, random: u64) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(2u32.saturating_pow(attempt.min(31)))
            .min(self.max);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        let half = ceiling_ms / 2;
        Duration::from_millis(half + random % (ceiling_ms - half + 1))
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(5),
        }
    }
}

// === impl DiscoveryClient ===

impl<C: Apply> DiscoveryClient<C> {
    /// A client that starts from `initial` (not published: receivers see a change
    /// only once the control plane's configuration is applied).
    pub fn new(settings: ClientSettings, initial: C) -> Result<Self, InvalidEndpoint> {
        let endpoint = Endpoint::from_shared(settings.endpoint.clone())
            .map_err(|source| InvalidEndpoint {
                endpoint: settings.endpoint.clone(),
                source,
            })?
            .connect_timeout(settings.connect_timeout)
            .tcp_nodelay(true)
            // Notice a control plane that vanished without closing the connection.
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10));
        let current = Arc::new(initial);
        let (config, _) = watch::channel(Arc::clone(&current));
        let status = ClientStatus {
            types: settings
                .types
                .iter()
                .map(|resource_type| (*resource_type, TypeSync::default()))
                .collect(),
            ..ClientStatus::default()
        };
        let (status, _) = watch::channel(status);
        Ok(Self {
            settings,
            endpoint,
            current,
            config,
            status,
            answered: BTreeSet::new(),
        })
    }

    /// The configurations applied, newest first.
    pub fn config(&self) -> watch::Receiver<Arc<C>> {
        self.config.subscribe()
    }

    /// The client's view of its stream.
    pub fn status(&self) -> watch::Receiver<ClientStatus> {
        self.status.subscribe()
    }

    /// Streams from the control plane forever, reconnecting whenever the stream
    /// ends. Stop it by dropping the future (or aborting its task).
    pub async fn run(mut self) {
        let mut attempt = 0;
        loop {
            let mut answered = false;
            let ended = self.stream(&mut answered).await;
            self.status.send_modify(|status| status.connected = false);
            if answered {
                // The stream worked: start the back-off over.
                attempt = 0;
            }
            let delay = self.settings.backoff.delay(attempt, fastrand::u64(..));
            attempt = attempt.saturating_add(1);
            tracing::warn!(error = %chain(&ended), retry_in = ?delay, "lost the control plane; serving the last configuration");
            tokio::time::sleep(delay).await;
        }
    }

    /// One stream, until it ends; `answered` is set once a response arrived.
    async fn stream(&mut self, answered: &mut bool) -> StreamEnded {
        let channel = match self.endpoint.connect().await {
            Ok(channel) => channel,
            Err(error) => return StreamEnded::Connect(error),
        };
        let mut client = AggregatedDiscoveryServiceClient::new(channel);
        let (requests, mut outbox) = mpsc::channel(self.settings.types.len() + 1);
        let mut node = Some(node_to_wire(
            self.settings.node.clone(),
            &self.settings.version,
        ));
        for resource_type in &self.settings.types {
            let acked = self
                .status
                .borrow()
                .types
                .get(resource_type)
                .and_then(|sync| sync.acked.clone());
            let subscription = v1::DiscoveryRequest {
                node: node.take(),
                type_url: resource_type.type_url().to_owned(),
                version_info: acked.unwrap_or_default(),
                ..Default::default()
            };
            if requests.send(subscription).await.is_err() {
                return StreamEnded::Closed;
            }
        }
        let outgoing = futures_util::stream::poll_fn(move |cx| outbox.poll_recv(cx));
        let mut responses = match client.stream_aggregated_resources(outgoing).await {
            Ok(response) => response.into_inner(),
            Err(status) => return status.into(),
        };
        self.status.send_modify(|status| {
            status.connected = true;
            status.connections += 1;
        });
        tracing::info!(endpoint = %self.settings.endpoint, "connected to the control plane");
        loop {
            match responses.message().await {
                Ok(Some(response)) => {
                    *answered = true;
                    let reply = self.on_response(response);
                    if requests.send(reply).await.is_err() {
                        return StreamEnded::Closed;
                    }
                }
                Ok(None) => return StreamEnded::Closed,
                Err(status) => return status.into(),
            }
        }
    }

    /// Applies one response and returns its ACK or NACK.
    fn on_response(&mut self, response: v1::DiscoveryResponse) -> v1::DiscoveryRequest {
        let resource_type = ResourceType::from_type_url(&response.type_url);
        let running = resource_type.and_then(|resource_type| {
            self.status
                .borrow()
                .types
                .get(&resource_type)
                .and_then(|sync| sync.acked.clone())
        });
        let outcome = Resources::from_response(&response.type_url, response.resources)
            .map_err(|error| error.to_string())
            .and_then(|resources| {
                if running.as_deref() == Some(response.version_info.as_str()) {
                    // Already running this version (a re-sync after a reconnect).
                    return Ok(false);
                }
                let mut next = C::clone(&self.current);
                next.apply(resources).map_err(|error| error.to_string())?;
                self.current = Arc::new(next);
                Ok(true)
            });
        let complete_before = self.complete();
        if let Some(resource_type) = resource_type {
            self.answered.insert(resource_type);
        }
        let applied = matches!(outcome, Ok(true));
        if self.complete() && (applied || !complete_before) {
            self.config.send_replace(Arc::clone(&self.current));
        }
        let mut request = v1::DiscoveryRequest {
            type_url: response.type_url,
            response_nonce: response.nonce,
            ..Default::default()
        };
        match outcome {
            Ok(_) => {
                tracing::debug!(type_url = %request.type_url, version = %response.version_info, applied, "ACK");
                self.record(resource_type, |sync| {
                    sync.acked = Some(response.version_info.clone());
                    sync.applied += u64::from(applied);
                });
                request.version_info = response.version_info;
            }
            Err(error) => {
                tracing::warn!(type_url = %request.type_url, version = %response.version_info, %error, "rejected configuration (NACK); serving the last good one");
                self.record(resource_type, |sync| {
                    sync.nacked = Some((response.version_info.clone(), error.clone()));
                });
                request.version_info = running.unwrap_or_default();
                request.error_detail = Some(v1::Status {
                    code: tonic::Code::InvalidArgument.into(),
                    message: error,
                });
            }
        }
        request
    }

    /// Whether every subscribed type has been answered once.
    fn complete(&self) -> bool {
        self.answered.is_superset(&self.settings.types)
    }

    fn record(&self, resource_type: Option<ResourceType>, edit: impl FnOnce(&mut TypeSync)) {
        let Some(resource_type) = resource_type else {
            return;
        };
        self.status.send_modify(|status| {
            edit(status.types.entry(resource_type).or_default());
        });
    }
}

/// An error and its causes, `: `-separated (a transport error alone says little).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl<C> fmt::Debug for DiscoveryClient<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscoveryClient")
            .field("settings", &self.settings)
            .field("status", &*self.status.borrow())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
