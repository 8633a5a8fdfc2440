//! The discovery server: one aggregated gRPC stream per proxy, carrying its
//! listeners, routes, clusters, endpoints and secrets.
//!
//! The protocol is Envoy's state-of-the-world ADS with meshlab's messages
//! (`meshlab-control-api`). Per stream:
//!
//! 1. the first request names the proxy (its node); every request with an empty nonce
//!    subscribes to one resource type, and the server answers with every resource of
//!    that type for this proxy, a `version_info` and a fresh `nonce`;
//! 2. the proxy answers each response: same nonce and no error is an **ACK** (the
//!    version is recorded as acked); same nonce with `error_detail` is a **NACK** (the
//!    error is recorded, the last acked version stays, and that version is not sent
//!    again — a proxy that cannot take a configuration is not asked twice); a request
//!    echoing an older nonce is stale and ignored, as Envoy and Istio ignore it;
//! 3. when the configuration changes, the server regenerates every subscribed type
//!    for the proxy and pushes only the types whose resources changed, in Envoy's
//!    order (secrets, clusters, endpoints, listeners, routes: see
//!    [`ResourceType`]).
//!
//! Versions are a hash of the encoded resources, so "changed" means "different
//! bytes", a control plane restart with the same configuration produces the same
//! versions, and no counter has to survive anything.
//!
//! Configuration comes in as a stream of immutable snapshots
//! (`watch::Receiver<Arc<S>>`, any `S`) and goes out through [`Generators`]: pure
//! functions of `(snapshot, proxy node)`, registered by resource type, returning
//! values of the proxy model that the wire contract converts. Changes are
//! **debounced** first ([`Debounce`]: wait for 100 ms of quiet, at most 1 s, like
//! Istio's `PILOT_DEBOUNCE_AFTER`), so a burst of applies becomes one push.
//!
//! [`DiscoveryStatus::proxy_status`] reports each connected proxy's sync state per
//! type with istioctl's meaning: SYNCED (the last response sent was acked), STALE
//! (sent, not acked yet), NOT SENT (nothing sent: not subscribed, or no generator),
//! plus NACKED (the last response sent was rejected, with the proxy's error).
//! Protobuf types stay inside this module.

mod connection;
mod debounce;
mod generate;
mod status;

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use futures_util::Stream;
use meshlab_control_api::v1::{
    self,
    aggregated_discovery_service_server::{
        AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
    },
};
pub use meshlab_control_api::{DISCOVERY_PORT, ResourceType};
use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
};
use tonic::{
    Request, Response, Status, Streaming,
    transport::{Server, server::TcpIncoming},
};

pub use self::debounce::Debounce;
pub use self::generate::Generators;
use self::status::Registry;
pub use self::status::{Acked, Nacked, ProxyStatus, Sent, SyncState, TypeStatus};
use crate::certificates::CertificateService;

/// The discovery server, before it serves.
pub struct DiscoveryServer<S> {
    shared: Arc<Shared<S>>,
    snapshots: watch::Receiver<Arc<S>>,
    debounce: Debounce,
    /// The certificate service served beside discovery, as istiod serves both on
    /// one port.
    certificates: Option<CertificateService>,
}

/// What every stream of one server shares.
struct Shared<S> {
    generators: Generators<S>,
    registry: Arc<Registry>,
    /// Source of nonces, unique per server.
    nonces: AtomicU64,
    /// Source of connection ids.
    connections: AtomicU64,
}

/// A handle on the server's view of its proxies; cheap to clone.
#[derive(Clone, Debug)]
pub struct DiscoveryStatus {
    registry: Arc<Registry>,
}

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The gRPC transport failed.
    #[error("discovery server failed")]
    Serve(#[from] tonic::transport::Error),
}

/// The tonic service: one task per stream.
struct Ads<S> {
    shared: Arc<Shared<S>>,
    /// Debounced snapshots.
    pushes: watch::Receiver<Arc<S>>,
    /// Changes (or closes) when the server shuts down.
    stop: watch::Receiver<()>,
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<v1::DiscoveryResponse, Status>> + Send>>;

// === impl DiscoveryServer ===

impl<S: Send + Sync + 'static> DiscoveryServer<S> {
    /// A server generating with `generators` from the snapshots `snapshots` carries,
    /// debounced by [`Debounce::default`].
    pub fn new(generators: Generators<S>, snapshots: watch::Receiver<Arc<S>>) -> Self {
        Self {
            shared: Arc::new(Shared {
                generators,
                registry: Arc::default(),
                nonces: AtomicU64::new(0),
                connections: AtomicU64::new(0),
            }),
            snapshots,
            debounce: Debounce::default(),
            certificates: None,
        }
    }

    /// The same server, also answering certificate signing requests with `service`.
    pub fn with_certificates(self, service: CertificateService) -> Self {
        Self {
            certificates: Some(service),
            ..self
        }
    }

    /// The same server with other debounce timings.
    pub fn with_debounce(self, debounce: Debounce) -> Self {
        Self { debounce, ..self }
    }

    /// A handle for `proxy-status`, valid while and after the server serves.
    pub fn status(&self) -> DiscoveryStatus {
        DiscoveryStatus {
            registry: Arc::clone(&self.shared.registry),
        }
    }

    /// Serves proxies on `listener` until `shutdown` completes. Then every stream is
    /// ended with UNAVAILABLE (proxies reconnect to the next control plane and keep
    /// their configuration meanwhile) and the server returns once they are closed.
    ///
    /// If the snapshot sender goes away, the server keeps serving the last snapshot.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), DiscoveryError> {
        let (pushes_tx, pushes) = watch::channel(Arc::clone(&self.snapshots.borrow()));
        let (stop_tx, stop) = watch::channel(());
        let debounce = tokio::spawn(debounce::run(self.snapshots, pushes_tx, self.debounce));
        let service = AggregatedDiscoveryServiceServer::new(Ads {
            shared: self.shared,
            pushes,
            stop,
        });
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let signal = async move {
            shutdown.await;
            tracing::info!("discovery server shutting down");
            stop_tx.send_replace(());
        };
        let served = Server::builder()
            // Notice proxies that vanished without closing their connection.
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .add_service(service)
            .add_optional_service(self.certificates.map(CertificateService::into_server))
            .serve_with_incoming_shutdown(incoming, signal)
            .await;
        debounce.abort();
        Ok(served?)
    }
}

impl<S> std::fmt::Debug for DiscoveryServer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoveryServer")
            .field("generators", &self.shared.generators)
            .field("debounce", &self.debounce)
            .finish_non_exhaustive()
    }
}

// === impl DiscoveryStatus ===

impl DiscoveryStatus {
    /// Every connected proxy's sync state per resource type, ordered by pod name
    /// (`POD.NAMESPACE`), as `meshlab proxy-status` shows it.
    pub fn proxy_status(&self) -> Vec<ProxyStatus> {
        self.registry.proxy_status()
    }
}

// === impl Ads ===

#[tonic::async_trait]
impl<S: Send + Sync + 'static> AggregatedDiscoveryService for Ads<S> {
    type StreamAggregatedResourcesStream = ResponseStream;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<v1::DiscoveryRequest>>,
    ) -> Result<Response<ResponseStream>, Status> {
        let peer = request.remote_addr();
        let (responses, mut outbox) = mpsc::channel(16);
        let stream = connection::Stream {
            shared: Arc::clone(&self.shared),
            requests: request.into_inner(),
            pushes: self.pushes.clone(),
            stop: self.stop.clone(),
            responses,
            peer,
        };
        tokio::spawn(stream.run());
        let responses = futures_util::stream::poll_fn(move |cx| outbox.poll_recv(cx));
        Ok(Response::new(Box::pin(responses)))
    }
}

#[cfg(test)]
mod tests;
