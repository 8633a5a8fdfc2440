//! Connection pools: reusing upstream connections per endpoint, under the
//! cluster's circuit breakers (a DestinationRule's `connectionPool`).
//!
//! Envoy's HTTP connection pool (`source/common/conn_pool/conn_pool_base.cc`) is
//! what the circuit-breaking task observes, so its accounting is reproduced:
//! - A request takes an idle keep-alive connection if its endpoint has one.
//! - Otherwise it becomes **pending** — if fewer than `max_pending_requests`
//!   (`http1MaxPendingRequests`) are pending, else it fails at once with 503 and
//!   flag `UO` (`upstream_rq_pending_overflow`). A pending request opens a
//!   connection if the cluster has fewer than `max_connections` (`tcp.maxConnections`)
//!   open, and stays pending while it connects; otherwise it waits for one to be
//!   released. As in Envoy, an endpoint with no connection at all may open one
//!   over the limit (`upstream_cx_overflow` counts it), so that its pending
//!   requests are never stranded.
//! - A connection that has served `max_requests_per_connection` requests is
//!   closed instead of reused (Istio's `maxRequestsPerConnection`).
//! - HTTP/2 clusters share one connection per endpoint for concurrent streams.
//!
//! Connections carry their accounting into the task that drives them, so the
//! gauges fall the moment a connection really closes, whoever closes it.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::body::UpBody;
use crate::cluster::{ClusterState, Host, Transport};
use crate::stats::{ClusterStats, Counter};

/// An endpoint's idle and shared connections.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    idle: Mutex<Vec<H1Conn>>,
    h2: Mutex<Option<Arc<H2Conn>>>,
    h2_connecting: AtomicBool,
}

/// An endpoint's counters, as `/clusters` prints them.
#[derive(Debug, Default)]
pub(crate) struct HostStats {
    pub(crate) cx_active: Counter,
    pub(crate) cx_total: Counter,
    pub(crate) cx_connect_fail: Counter,
    pub(crate) rq_active: Counter,
    pub(crate) rq_total: Counter,
    pub(crate) rq_success: Counter,
    pub(crate) rq_error: Counter,
    pub(crate) rq_timeout: Counter,
}

/// A connection (or HTTP/2 stream capacity) lent to one request.
#[derive(Debug)]
pub(crate) struct Lease {
    conn: LeaseConn,
    /// The local address of the connection (`%UPSTREAM_LOCAL_ADDRESS%`).
    pub(crate) local: SocketAddr,
    host: Arc<Host>,
    max_per_connection: Option<u32>,
}

#[derive(Debug)]
enum LeaseConn {
    H1(H1Conn),
    H2(Arc<H2Conn>, http2::SendRequest<UpBody>),
}

#[derive(Debug)]
struct H1Conn {
    sender: http1::SendRequest<UpBody>,
    local: SocketAddr,
    served: u32,
}

#[derive(Debug)]
struct H2Conn {
    sender: http2::SendRequest<UpBody>,
    local: SocketAddr,
    streams: Counter,
}

/// Why no connection could be had.
#[derive(Debug)]
pub(crate) enum PoolError {
    /// A circuit breaker is open (`UO`).
    Overflow,
    /// Connecting failed (`UF`).
    Connect(ConnectError),
}

/// A failed connection attempt.
#[derive(Debug)]
pub(crate) struct ConnectError {
    /// Whether the connect timeout fired.
    pub(crate) timeout: bool,
    /// `%UPSTREAM_TRANSPORT_FAILURE_REASON%`, e.g. `delayed connect error: Connection refused`.
    pub(crate) reason: String,
}

/// Why a request could not be sent on a lease.
#[expect(
    clippy::large_enum_variant,
    reason = "the request comes back so it can be sent again; boxing it would allocate on every send"
)]
#[derive(Debug)]
pub(crate) enum SendError {
    /// The connection closed before the request went out: try another.
    NotSent(Request<UpBody>),
    /// The exchange failed after the request started.
    Failed(hyper::Error),
}

/// One open connection, counted while it lives.
#[derive(Debug)]
pub(crate) struct CxGuard {
    cluster: Arc<ClusterStats>,
    // The endpoint's counters, not the endpoint: the endpoint owns the pool that
    // keeps the connection open, so holding it here would keep both alive.
    host: Arc<HostStats>,
}

/// Bytes to and from an upstream, in the clear or over TLS.
#[derive(Debug)]
pub(crate) enum UpstreamIo {
    /// Plaintext.
    Plain(TcpStream),
    /// TLS originated by the proxy.
    Tls(Box<TlsStream<TcpStream>>),
}

/// Clears a flag when dropped.
struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Relaxed);
    }
}

/// Decrements a gauge when dropped.
struct GaugeGuard<'a>(&'a Counter);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// === impl ClusterState (pools) ===

impl ClusterState {
    /// A connection to `host` for one request, waiting as Envoy's pool waits.
    pub(crate) async fn lease(&self, host: &Arc<Host>) -> Result<Lease, PoolError> {
        if let Some(lease) = self.ready_lease(host).await {
            return Ok(lease);
        }
        if !self
            .stats
            .rq_pending_active
            .try_inc(self.limits.max_pending)
        {
            self.stats.rq_pending_overflow.inc();
            return Err(PoolError::Overflow);
        }
        let _pending = GaugeGuard(&self.stats.rq_pending_active);
        self.stats.rq_pending_total.inc();
        let mut counted_overflow = false;
        loop {
            let released = self.stats.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Some(lease) = self.ready_lease(host).await {
                return Ok(lease);
            }
            if let Some(guard) = self.reserve(host, &mut counted_overflow) {
                return self.open(host, guard).await.map_err(PoolError::Connect);
            }
            released.await;
        }
    }

    /// Counts a new connection to `host` if the breakers allow one.
    pub(crate) fn reserve(&self, host: &Arc<Host>, counted_overflow: &mut bool) -> Option<CxGuard> {
        if self.def.http2 && host.pool.h2_connecting.swap(true, Relaxed) {
            return None;
        }
        let allowed = self.stats.cx_active.try_inc(self.limits.max_connections);
        if !allowed {
            if !*counted_overflow {
                self.stats.cx_overflow.inc();
                *counted_overflow = true;
            }
            if host.stats.cx_active.get() > 0 {
                if self.def.http2 {
                    host.pool.h2_connecting.store(false, Relaxed);
                }
                return None;
            }
            self.stats.cx_active.inc();
        }
        host.stats.cx_active.inc();
        host.stats.cx_total.inc();
        self.stats.cx_total.inc();
        Some(CxGuard {
            cluster: self.stats.clone(),
            host: host.stats.clone(),
        })
    }

    /// Connects to `host`: TCP within the connect timeout, then TLS if the cluster
    /// originates it. Counts connection failures.
    pub(crate) async fn connect(
        &self,
        host: &Host,
    ) -> Result<(UpstreamIo, SocketAddr), ConnectError> {
        let result = self.connect_inner(host).await;
        if let Err(err) = &result {
            self.stats.cx_connect_fail.inc();
            host.stats.cx_connect_fail.inc();
            if err.timeout {
                self.stats.cx_connect_timeout.inc();
            }
        }
        result
    }

    async fn connect_inner(&self, host: &Host) -> Result<(UpstreamIo, SocketAddr), ConnectError> {
        let deadline = tokio::time::Instant::now() + self.def.connect_timeout;
        let timed_out = || ConnectError {
            timeout: true,
            reason: "connection timeout".to_owned(),
        };
        let tcp = tokio::time::timeout_at(deadline, TcpStream::connect(host.addr))
            .await
            .map_err(|_| timed_out())?
            .map_err(|err| ConnectError {
                timeout: false,
                reason: format!("delayed connect error: {}", describe(&err)),
            })?;
        // Small writes must not wait for Nagle: latency is the point of a sidecar.
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().map_err(|err| ConnectError {
            timeout: false,
            reason: describe(&err),
        })?;
        let io = match &self.transport {
            Transport::Plain => UpstreamIo::Plain(tcp),
            Transport::Tls(origination) if origination.plaintext_to(host) => UpstreamIo::Plain(tcp),
            Transport::Tls(origination) => {
                let tls = tokio::time::timeout_at(
                    deadline,
                    origination.connect(tcp, host.hostname.as_deref()),
                )
                .await
                .map_err(|_| timed_out())?
                .map_err(|reason| ConnectError {
                    timeout: false,
                    reason,
                })?;
                UpstreamIo::Tls(Box::new(tls))
            }
            Transport::Unsupported(reason) => {
                return Err(ConnectError {
                    timeout: false,
                    reason: reason.clone(),
                });
            }
        };
        Ok((io, local))
    }

    /// A connection that is open and ready, if `host` has one.
    async fn ready_lease(&self, host: &Arc<Host>) -> Option<Lease> {
        let max_per_connection = self.def.circuit_breakers.max_requests_per_connection;
        if self.def.http2 {
            let mut slot = lock(&host.pool.h2);
            let shared = slot.clone()?;
            let exhausted =
                max_per_connection.is_some_and(|max| shared.streams.get() >= u64::from(max));
            if shared.sender.is_closed() || exhausted {
                *slot = None;
                return None;
            }
            shared.streams.inc();
            let sender = shared.sender.clone();
            return Some(Lease {
                local: shared.local,
                conn: LeaseConn::H2(shared, sender),
                host: host.clone(),
                max_per_connection,
            });
        }
        loop {
            let mut conn = lock(&host.pool.idle).pop()?;
            if conn.sender.is_closed() || conn.sender.ready().await.is_err() {
                continue;
            }
            return Some(Lease {
                local: conn.local,
                conn: LeaseConn::H1(conn),
                host: host.clone(),
                max_per_connection,
            });
        }
    }

    /// Opens a connection for one request; `guard` counts it while it lives.
    async fn open(&self, host: &Arc<Host>, guard: CxGuard) -> Result<Lease, ConnectError> {
        // However this ends (even cancelled), the endpoint may connect again.
        let _connecting = self
            .def
            .http2
            .then(|| ClearOnDrop(&host.pool.h2_connecting));
        let max_per_connection = self.def.circuit_breakers.max_requests_per_connection;
        let (io, local) = self.connect(host).await?;
        let io = TokioIo::new(io);
        let handshake_failed = |err: hyper::Error| ConnectError {
            timeout: false,
            reason: format!("handshake failed: {err}"),
        };
        if self.def.http2 {
            let handshake = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(io)
                .await;
            let (sender, connection) = handshake.map_err(handshake_failed)?;
            tokio::spawn(async move {
                let _ = connection.await;
                drop(guard);
            });
            let shared = Arc::new(H2Conn {
                sender: sender.clone(),
                local,
                streams: Counter::default(),
            });
            shared.streams.inc();
            *lock(&host.pool.h2) = Some(shared.clone());
            self.stats.released.notify_waiters();
            return Ok(Lease {
                local,
                conn: LeaseConn::H2(shared, sender),
                host: host.clone(),
                max_per_connection,
            });
        }
        let (sender, connection) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(handshake_failed)?;
        tokio::spawn(async move {
            let _ = connection.await;
            drop(guard);
        });
        Ok(Lease {
            local,
            conn: LeaseConn::H1(H1Conn {
                sender,
                local,
                served: 0,
            }),
            host: host.clone(),
            max_per_connection,
        })
    }
}

/// An I/O error as Envoy words connect errors: `Connection refused`, without
/// Rust's `(os error 111)`.
pub(crate) fn describe(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_owned(),
        None => text,
    }
}

// === impl Lease ===

impl Lease {
    /// Whether this connection had served requests before.
    pub(crate) fn reused(&self) -> bool {
        match &self.conn {
            LeaseConn::H1(conn) => conn.served > 0,
            LeaseConn::H2(shared, _) => shared.streams.get() > 1,
        }
    }

    /// Sends `request`; the response body still has to be read through.
    pub(crate) async fn send(
        &mut self,
        request: Request<UpBody>,
    ) -> Result<Response<Incoming>, SendError> {
        let sent = match &mut self.conn {
            LeaseConn::H1(conn) => {
                conn.served += 1;
                conn.sender.try_send_request(request).await
            }
            LeaseConn::H2(_, sender) => sender.try_send_request(request).await,
        };
        sent.map_err(|mut err| match err.take_message() {
            Some(request) => SendError::NotSent(request),
            None => SendError::Failed(err.into_error()),
        })
    }

    /// Gives the connection back: to the idle list if the exchange completed and
    /// the connection may serve more, else it closes.
    pub(crate) fn release(self, completed: bool, cluster: &ClusterStats) {
        match self.conn {
            LeaseConn::H1(conn) => {
                let more = self.max_per_connection.is_none_or(|max| conn.served < max);
                if completed && more && !conn.sender.is_closed() {
                    lock(&self.host.pool.idle).push(conn);
                    cluster.released.notify_waiters();
                }
            }
            LeaseConn::H2(shared, _) => {
                let exhausted = self
                    .max_per_connection
                    .is_some_and(|max| shared.streams.get() >= u64::from(max));
                if exhausted {
                    let mut slot = lock(&self.host.pool.h2);
                    if slot
                        .as_ref()
                        .is_some_and(|current| Arc::ptr_eq(current, &shared))
                    {
                        *slot = None;
                    }
                }
            }
        }
    }
}

// === impl CxGuard ===

impl Drop for CxGuard {
    fn drop(&mut self) {
        self.cluster.cx_active.dec();
        self.cluster.cx_destroy.inc();
        self.host.cx_active.dec();
        self.cluster.released.notify_waiters();
    }
}

// === impl UpstreamIo ===

impl AsyncRead for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(tcp) => tcp.is_write_vectored(),
            Self::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}
