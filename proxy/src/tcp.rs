//! TCP proxying: Envoy's `tcp_proxy` filter, for non-HTTP ports, TLS that the
//! proxy passes through, and traffic no listener knows.
//!
//! - A named cluster: one endpoint picked by the cluster's load balancer, one
//!   connection attempt within the connect timeout (Envoy's `max_connect_attempts`
//!   default), then bytes copied both ways until either side closes.
//! - `PassthroughCluster` (ORIGINAL_DST): the connection's original destination —
//!   what unknown destinations get under `ALLOW_ANY`.
//! - `BlackHoleCluster`: no endpoints, so the connection is closed at once — what
//!   unknown destinations get under `REGISTRY_ONLY`. A TLS client sees its
//!   handshake cut off (curl exit 35), as in Istio's egress task.
//!
//! Failures close the downstream connection, which is all a TCP client can be
//! told; the access log line says why (`UH`, `UF`, `UO`, `NC`). Each connection
//! gets one log line, `"- - -"` in place of the request, when it closes.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use meshlab_proxy_config::Authorization;
use meshlab_proxy_route::{ResponseFlag, ResponseFlags};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::access_log::Entry;
use crate::cluster::PickRequest;
use crate::sidecar::Shared;
use crate::stats::PrefixStats;

/// One downstream connection handed to a TCP proxy.
#[derive(Debug)]
pub(crate) struct TcpConn {
    pub(crate) shared: Arc<Shared>,
    /// The cluster to connect to.
    pub(crate) cluster: String,
    pub(crate) stats: Arc<PrefixStats>,
    /// Where the client connected to (the original destination when captured).
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) server_name: Option<Arc<str>>,
    /// The verified peer SPIFFE URI when the connection is mTLS.
    pub(crate) peer_principal: Option<Arc<str>>,
    /// Connection-level RBAC (Envoy's network `rbac` filter), inbound only.
    pub(crate) authorization: Option<Arc<Authorization>>,
}

/// A stream that counts the bytes read from and written to it.
struct Counted<S> {
    inner: S,
    read: u64,
    written: u64,
}

/// Proxies `downstream` as `conn` says, until both directions are done.
pub(crate) async fn proxy<S>(downstream: S, conn: TcpConn)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let start = Instant::now();
    conn.stats.downstream_cx_total.inc();
    conn.stats.downstream_cx_active.inc();
    let mut entry = Entry {
        start: SystemTime::now(),
        request: None,
        response_code: 0,
        flags: ResponseFlags::NONE,
        details: Cow::Borrowed(""),
        transport_failure: None,
        bytes_received: 0,
        bytes_sent: 0,
        duration: std::time::Duration::ZERO,
        upstream_service_time: None,
        upstream_host: None,
        upstream_cluster: None,
        upstream_local: None,
        downstream_local: conn.local,
        downstream_remote: conn.remote,
        server_name: conn.server_name.clone(),
        route_name: None,
    };
    let mut labels = conn.shared.unknown_labels.clone();
    let mut downstream = Counted {
        inner: downstream,
        read: 0,
        written: 0,
    };
    let opened = run(&conn, &mut downstream, &mut entry, &mut labels).await;
    drop(downstream.inner);
    entry.bytes_received = downstream.read;
    entry.bytes_sent = downstream.written;
    entry.duration = start.elapsed();
    let shared = &conn.shared;
    if !opened {
        shared.stats.tcp_opened(&labels);
    }
    shared
        .stats
        .tcp_closed(&labels, entry.flags, downstream.written, downstream.read);
    conn.stats.downstream_cx_rx_bytes.add(downstream.read);
    conn.stats.downstream_cx_tx_bytes.add(downstream.written);
    conn.stats.downstream_cx_active.dec();
    shared.log.write(&entry);
}

/// Connects and copies; fills in `entry` and `labels`. Returns whether the
/// connection was counted as opened.
async fn run<S: AsyncRead + AsyncWrite + Unpin + Send>(
    conn: &TcpConn,
    downstream: &mut Counted<S>,
    entry: &mut Entry,
    labels: &mut Arc<crate::stats::MetricLabels>,
) -> bool {
    if let Some(authorization) = &conn.authorization {
        let connection = crate::authz::Connection {
            peer_principal: conn.peer_principal.as_deref(),
            source: conn.remote,
            destination: conn.local,
            sni: conn.server_name.as_deref(),
        };
        if let Some(details) = crate::authz::evaluate(authorization, &connection, None).details() {
            // Envoy's network RBAC filter closes the connection.
            tracing::debug!(remote = %conn.remote, %details, "RBAC denied a connection");
            entry.details = Cow::Owned(details);
            return false;
        }
    }
    let snapshot = conn.shared.snapshot.borrow().clone();
    let Some(cluster) = snapshot.clusters.get(&conn.cluster).cloned() else {
        entry.flags.insert(ResponseFlag::NoClusterFound);
        return false;
    };
    drop(snapshot);
    entry.upstream_cluster = Some(cluster.name.clone());
    *labels = cluster.labels.clone();
    let pick = PickRequest {
        hash: None,
        original_dst: conn.local,
        previous: &[],
        avoid_previous: false,
        selection_attempts: 0,
    };
    let Some(host) = cluster.pick(&pick).await else {
        entry.flags.insert(ResponseFlag::NoHealthyUpstream);
        return false;
    };
    entry.upstream_host = Some(host.addr);
    *labels = host.labels.clone();
    if let Some(principal) = &conn.peer_principal {
        // Received over mTLS: the client's identity, as for HTTP (TCP carries no
        // metadata headers, so the other `source_*` labels stay unknown).
        let source = crate::stats::Source {
            metadata: None,
            principal: Some(principal.clone()),
        };
        *labels = conn.shared.stats.with_source(labels, &source);
    }
    let Some(guard) = cluster.reserve(&host, &mut false) else {
        entry.flags.insert(ResponseFlag::UpstreamOverflow);
        return false;
    };
    let (mut upstream, local) = match cluster.connect(&host).await {
        Ok(connected) => connected,
        Err(err) => {
            cluster.report(&host, 503);
            entry.flags.insert(ResponseFlag::UpstreamConnectionFailure);
            entry.transport_failure = Some(err.reason);
            drop(guard);
            return false;
        }
    };
    entry.upstream_local = Some(local);
    conn.shared.stats.tcp_opened(labels);
    let copied = tokio::io::copy_bidirectional(downstream, &mut upstream).await;
    cluster.stats.cx_tx_bytes.add(downstream.read);
    cluster.stats.cx_rx_bytes.add(downstream.written);
    if let Err(err) = copied {
        tracing::debug!(cluster = %cluster.name, %err, "TCP proxy connection ended with an error");
    }
    drop(guard);
    true
}

// === impl Counted ===

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.read += (buf.filled().len() - before) as u64;
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            this.written += *n as u64;
        }
        poll
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
