//! One proxy's stream: subscriptions, pushes, ACKs and NACKs.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::{Arc, atomic::Ordering},
    time::SystemTime,
};

use meshlab_control_api::{ResourceType, node_from_wire, v1};
use meshlab_proxy_config::ProxyNode;
use tokio::sync::{mpsc, watch};
use tonic::{Status, Streaming};

use super::{
    Shared,
    status::{Acked, Nacked, ProxyStatus, Sent, TypeStatus},
};

/// A stream as accepted, before its first request.
pub(super) struct Stream<S> {
    pub(super) shared: Arc<Shared<S>>,
    pub(super) requests: Streaming<v1::DiscoveryRequest>,
    pub(super) pushes: watch::Receiver<Arc<S>>,
    pub(super) stop: watch::Receiver<()>,
    pub(super) responses: mpsc::Sender<Result<v1::DiscoveryResponse, Status>>,
    pub(super) peer: Option<SocketAddr>,
}

/// A stream whose proxy is known.
struct Connection<S> {
    id: u64,
    shared: Arc<Shared<S>>,
    node: ProxyNode,
    /// `POD.NAMESPACE`, for logs.
    name: String,
    subscribed: BTreeSet<ResourceType>,
    types: BTreeMap<ResourceType, TypeStatus>,
    responses: mpsc::Sender<Result<v1::DiscoveryResponse, Status>>,
}

/// Why a stream ends early.
enum Stop {
    /// The server is shutting down.
    Shutdown,
    /// The proxy is gone (its response stream was dropped).
    Gone,
}

// === impl Stream ===

impl<S: Send + Sync + 'static> Stream<S> {
    /// Serves the stream until the proxy leaves or the server stops.
    pub(super) async fn run(mut self) {
        let first = tokio::select! {
            _ = self.stop.changed() => None,
            request = self.requests.message() => request.ok().flatten(),
        };
        let Some(mut first) = first else {
            return;
        };
        let known = first.node.take().map(|node| {
            let version = node.version.clone();
            node_from_wire(node).map(|node| (node, version))
        });
        let (node, version) = match known {
            Some(Ok(known)) => known,
            refused => {
                let reason = match refused {
                    Some(Err(error)) => error.to_string(),
                    _ => "the first request of a stream must carry the node".to_owned(),
                };
                tracing::warn!(peer = ?self.peer, %reason, "refusing a discovery stream");
                refuse(&self.responses, Status::invalid_argument(reason)).await;
                return;
            }
        };
        let id = self.shared.connections.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}.{}", node.pod, node.namespace);
        tracing::info!(proxy = %name, peer = ?self.peer, "proxy connected");
        self.shared.registry.insert(
            id,
            ProxyStatus {
                node: node.clone(),
                version,
                connected_at: SystemTime::now(),
                types: BTreeMap::new(),
            },
        );
        let mut connection = Connection {
            id,
            shared: Arc::clone(&self.shared),
            node,
            name,
            subscribed: BTreeSet::new(),
            types: BTreeMap::new(),
            responses: self.responses.clone(),
        };
        let outcome = connection.serve(first, self).await;
        connection.shared.registry.remove(connection.id);
        match outcome {
            Ok(()) => tracing::info!(proxy = %connection.name, "proxy disconnected"),
            Err(Stop::Gone) => tracing::info!(proxy = %connection.name, "proxy went away"),
            Err(Stop::Shutdown) => {
                // The proxy keeps its configuration and reconnects to the next
                // control plane.
                let status = Status::unavailable("the control plane is shutting down");
                refuse(&connection.responses, status).await;
            }
        }
    }
}

/// Ends the stream with `status`.
async fn refuse(responses: &mpsc::Sender<Result<v1::DiscoveryResponse, Status>>, status: Status) {
    // A proxy that is already gone needs no explanation.
    let _ = responses.send(Err(status)).await;
}

// === impl Connection ===

impl<S: Send + Sync + 'static> Connection<S> {
    async fn serve(
        &mut self,
        first: v1::DiscoveryRequest,
        mut stream: Stream<S>,
    ) -> Result<(), Stop> {
        let snapshot = Arc::clone(&stream.pushes.borrow_and_update());
        self.on_request(first, &snapshot).await?;
        // Whether a snapshot source is still there to watch.
        let mut watching = true;
        loop {
            tokio::select! {
                _ = stream.stop.changed() => return Err(Stop::Shutdown),
                request = stream.requests.message() => match request {
                    Ok(Some(request)) => {
                        let snapshot = Arc::clone(&stream.pushes.borrow());
                        self.on_request(request, &snapshot).await?;
                    }
                    Ok(None) => return Ok(()),
                    Err(status) => {
                        tracing::debug!(proxy = %self.name, %status, "stream from proxy failed");
                        return Err(Stop::Gone);
                    }
                },
                changed = stream.pushes.changed(), if watching => match changed {
                    Ok(()) => {
                        let snapshot = Arc::clone(&stream.pushes.borrow_and_update());
                        self.push_changed(&snapshot).await?;
                    }
                    Err(_) => watching = false,
                },
            }
        }
    }

    /// A subscription, an ACK, a NACK or a stale request.
    async fn on_request(
        &mut self,
        request: v1::DiscoveryRequest,
        snapshot: &S,
    ) -> Result<(), Stop> {
        let Some(resource_type) = ResourceType::from_type_url(&request.type_url) else {
            tracing::warn!(proxy = %self.name, type_url = %request.type_url, "ignoring a request for an unknown resource type");
            return Ok(());
        };
        if request.response_nonce.is_empty() {
            tracing::debug!(proxy = %self.name, %resource_type, version = %request.version_info, "subscription");
            self.subscribed.insert(resource_type);
            return self.push(resource_type, snapshot, true).await;
        }
        let status = self.types.entry(resource_type).or_default();
        let Some(sent) = status
            .sent
            .as_ref()
            .filter(|sent| sent.nonce == request.response_nonce)
        else {
            tracing::debug!(proxy = %self.name, %resource_type, nonce = %request.response_nonce, "ignoring a stale nonce");
            return Ok(());
        };
        let at = SystemTime::now();
        match request.error_detail {
            Some(error) => {
                tracing::warn!(proxy = %self.name, %resource_type, version = %sent.version, error = %error.message, "proxy rejected configuration (NACK)");
                status.nacked = Some(Nacked {
                    version: sent.version.clone(),
                    nonce: sent.nonce.clone(),
                    error: error.message,
                    at,
                });
            }
            None => {
                tracing::debug!(proxy = %self.name, %resource_type, version = %sent.version, "ACK");
                status.acked = Some(Acked {
                    version: sent.version.clone(),
                    nonce: sent.nonce.clone(),
                    at,
                });
            }
        }
        self.shared
            .registry
            .update(self.id, resource_type, status.clone());
        Ok(())
    }

    /// Pushes every subscribed type whose resources changed, in push order.
    async fn push_changed(&mut self, snapshot: &S) -> Result<(), Stop> {
        for resource_type in self.subscribed.clone() {
            self.push(resource_type, snapshot, false).await?;
        }
        Ok(())
    }

    /// Sends the current resources of `resource_type`: always when `subscription`
    /// (the proxy asked), else only when they differ from the last ones sent (even if
    /// those were NACKed: the proxy would reject them again).
    async fn push(
        &mut self,
        resource_type: ResourceType,
        snapshot: &S,
        subscription: bool,
    ) -> Result<(), Stop> {
        let Some(generated) = self
            .shared
            .generators
            .generate(resource_type, snapshot, &self.node)
        else {
            // No generator: nothing is sent, and proxy-status says NOT SENT.
            return Ok(());
        };
        let status = self.types.entry(resource_type).or_default();
        let unchanged = status
            .sent
            .as_ref()
            .is_some_and(|sent| sent.version == generated.version);
        if unchanged && !subscription {
            return Ok(());
        }
        let nonce = (self.shared.nonces.fetch_add(1, Ordering::Relaxed) + 1).to_string();
        tracing::debug!(proxy = %self.name, %resource_type, version = %generated.version, resources = generated.resources.len(), "push");
        status.sent = Some(Sent {
            version: generated.version.clone(),
            nonce: nonce.clone(),
            at: SystemTime::now(),
            resources: generated.resources.len(),
        });
        self.shared
            .registry
            .update(self.id, resource_type, status.clone());
        let response = v1::DiscoveryResponse {
            version_info: generated.version,
            type_url: resource_type.type_url().to_owned(),
            nonce,
            resources: generated.resources,
        };
        self.responses
            .send(Ok(response))
            .await
            .map_err(|_| Stop::Gone)
    }
}
