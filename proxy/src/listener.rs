//! Listeners: binding the configured addresses, and handing each accepted
//! connection to the filter chain that matches it.
//!
//! For a captured connection the chain is chosen by where the app meant to go,
//! not by the sidecar's own port: the **original destination** (Envoy's
//! `use_original_dst`). How it is found is injected ([`OriginalDst`]): from the
//! capture rules in a pod (`SO_ORIGINAL_DST`), the socket's own address for
//! gateways, or a fixed table in tests.
//!
//! When a chain depends on the transport or the TLS server name (`tls` vs
//! `raw_buffer`, `serverNames`), the first bytes are inspected without consuming
//! them, as Envoy's `tls_inspector` does: a TLS ClientHello gives `tls` and its
//! SNI; anything else is `raw_buffer`. Connections that need no inspection are
//! not delayed by it. Istio's default `protocolDetectionTimeout` is 0 (wait for the
//! client's first bytes); a timeout can be set in the proxy options.
//!
//! A new configuration keeps listeners whose address did not change (their
//! sockets and connections stay; each new connection reads the latest filter
//! chains), closes listeners that were removed or moved (open connections finish),
//! and binds the new ones.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use meshlab_proxy_config::secret::WORKLOAD_CERTIFICATE;
use meshlab_proxy_config::{Listener, NetworkFilter, ProxyConfig};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::http::{self, HttpConn};
use crate::sidecar::Shared;
use crate::tcp::{self, TcpConn};

/// How long to keep trying to bind an address that a just-closed listener may
/// still hold.
const REBIND_ATTEMPTS: u32 = 50;

/// The largest TLS record the inspector looks at (2¹⁴ bytes plus the header).
const MAX_RECORD: usize = 16 * 1024 + 5;

/// How a listener finds a connection's original destination.
#[derive(Clone, Default)]
pub enum OriginalDst {
    /// The socket's local address: nothing is captured (gateways, tests).
    #[default]
    LocalAddr,
    /// A function of the accepted socket, e.g. the capture module's
    /// `SO_ORIGINAL_DST` lookup. An error means the connection was not
    /// redirected, and the local address is used, as Envoy does.
    Lookup(fn(&TcpStream) -> io::Result<SocketAddr>),
    /// A fixed table from the local port a connection arrived on to the
    /// destination it stands for (tests without capture); other ports use the
    /// local address.
    ByLocalPort(Arc<HashMap<u16, SocketAddr>>),
}

/// What the first bytes of a connection say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Hello {
    /// Not TLS: `raw_buffer`.
    NotTls,
    /// TLS so far; more bytes are needed to see the SNI.
    Incomplete,
    /// A TLS ClientHello: its SNI if it has one, and the ALPN protocols it offers.
    Tls {
        sni: Option<String>,
        alpn: Vec<String>,
    },
}

/// The listeners a proxy runs.
#[derive(Debug)]
pub(crate) struct Listeners {
    active: HashMap<String, Active>,
    bound: watch::Sender<BTreeMap<String, SocketAddr>>,
}

#[derive(Debug)]
struct Active {
    /// The configured address.
    address: SocketAddr,
    /// The address actually bound (differs when the port is 0).
    bound: SocketAddr,
    _task: Task,
}

/// A spawned task that is aborted when this handle is dropped.
#[derive(Debug)]
pub(crate) struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Task {
    /// Spawns `future`.
    pub(crate) fn spawn(future: impl Future<Output = ()> + Send + 'static) -> Self {
        Self(tokio::spawn(future))
    }
}

// === impl OriginalDst ===

impl OriginalDst {
    /// A [`OriginalDst::ByLocalPort`] table.
    pub fn by_local_port(table: impl IntoIterator<Item = (u16, SocketAddr)>) -> Self {
        Self::ByLocalPort(Arc::new(table.into_iter().collect()))
    }

    /// The original destination of `stream`, which arrived at `local`.
    fn resolve(&self, stream: &TcpStream, local: SocketAddr) -> SocketAddr {
        match self {
            Self::LocalAddr => local,
            Self::Lookup(lookup) => lookup(stream).unwrap_or(local),
            Self::ByLocalPort(table) => table.get(&local.port()).copied().unwrap_or(local),
        }
    }
}

impl fmt::Debug for OriginalDst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LocalAddr => f.write_str("LocalAddr"),
            Self::Lookup(_) => f.write_str("Lookup(..)"),
            Self::ByLocalPort(table) => f.debug_tuple("ByLocalPort").field(table).finish(),
        }
    }
}

// === impl Listeners ===

impl Listeners {
    /// No listeners yet; bound addresses are published on `bound`.
    pub(crate) fn new(bound: watch::Sender<BTreeMap<String, SocketAddr>>) -> Self {
        Self {
            active: HashMap::new(),
            bound,
        }
    }

    /// Makes the running listeners those of `config`.
    pub(crate) async fn apply(&mut self, config: &ProxyConfig, shared: &Arc<Shared>) {
        self.active.retain(|name, active| {
            config
                .listeners
                .get(name)
                .is_some_and(|listener| listener.address == active.address)
        });
        for (name, listener) in &config.listeners {
            if self.active.contains_key(name) {
                continue;
            }
            match bind(listener.address).await {
                Ok(socket) => {
                    let bound = socket.local_addr().unwrap_or(listener.address);
                    tracing::info!(listener = %name, address = %bound, "listening");
                    let task =
                        Task::spawn(accept_loop(socket, name.as_str().into(), shared.clone()));
                    self.active.insert(
                        name.clone(),
                        Active {
                            address: listener.address,
                            bound,
                            _task: task,
                        },
                    );
                }
                Err(err) => {
                    tracing::warn!(listener = %name, address = %listener.address, %err, "cannot bind listener; it stays down until the next configuration");
                }
            }
        }
        let bound = self
            .active
            .iter()
            .map(|(name, active)| (name.clone(), active.bound))
            .collect();
        self.bound.send_replace(bound);
    }
}

/// Binds `address`, retrying for a while if a listener that was just closed still
/// holds it.
async fn bind(address: SocketAddr) -> io::Result<TcpListener> {
    let mut attempt = 0;
    loop {
        let socket = if address.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        let bound = socket.bind(address).and_then(|()| socket.listen(1024));
        match bound {
            Err(err) if err.kind() == io::ErrorKind::AddrInUse && attempt < REBIND_ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            result => return result,
        }
    }
}

async fn accept_loop(socket: TcpListener, name: Arc<str>, shared: Arc<Shared>) {
    loop {
        let (stream, remote) = match socket.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Usually out of file descriptors: wait instead of spinning.
                tracing::warn!(listener = %name, %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Small writes must not wait for Nagle: latency is the point of a sidecar.
        let _ = stream.set_nodelay(true);
        tokio::spawn(handle_connection(
            stream,
            remote,
            name.clone(),
            shared.clone(),
        ));
    }
}

/// Finds the filter chain for one connection and runs it.
async fn handle_connection(
    stream: TcpStream,
    remote: SocketAddr,
    name: Arc<str>,
    shared: Arc<Shared>,
) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let snapshot = shared.snapshot.borrow().clone();
    let Some(listener) = snapshot.config.listeners.get(&*name) else {
        return;
    };
    let destination = if listener.use_original_dst {
        shared.original_dst.resolve(&stream, local)
    } else {
        local
    };
    let (transport, server_name, alpn) = if needs_inspection(listener, destination) {
        match inspect(&stream, shared.protocol_detection_timeout).await {
            Hello::Tls { sni, alpn } => ("tls", sni, alpn),
            Hello::NotTls | Hello::Incomplete => ("raw_buffer", None, Vec::new()),
        }
    } else {
        ("raw_buffer", None, Vec::new())
    };
    let Some(chain) = listener.chain_for(destination, server_name.as_deref(), transport, &alpn)
    else {
        tracing::debug!(listener = %name, %destination, "no filter chain matches; closing");
        return;
    };
    let accepted = Accepted {
        listener: name,
        direction: listener.direction,
        destination,
        remote,
        server_name: server_name.map(Into::into),
    };
    let chain = chain.clone();
    let termination = chain
        .tls
        .as_ref()
        .filter(|tls| tls.certificate != WORKLOAD_CERTIFICATE)
        .map(|tls| snapshot.terminations.get(tls));
    drop(snapshot);
    let Some(tls) = &chain.tls else {
        serve_chain(stream, &chain, accepted, None, &shared).await;
        return;
    };
    let name = &accepted.listener;
    // TLS-only chains (STRICT mTLS, PERMISSIVE's `tls` chain, a gateway's HTTPS
    // server). Plaintext is reset before any TLS record is sent back, as Envoy
    // finds no chain for it: a plaintext client sees a reset (curl: `000`, exit
    // 56), not a TLS alert.
    if transport != "tls" {
        tracing::debug!(listener = %name, %remote, %destination, "plaintext on a TLS-only chain; resetting");
        reset(&stream);
        return;
    }
    let identity = shared.identity.clone();
    let config = match (termination, &identity) {
        (Some(Ok(config)), _) => config,
        (Some(Err(reason)), _) => {
            tracing::warn!(listener = %name, chain = %chain.name, secret = %tls.certificate, %reason, "cannot terminate TLS; resetting");
            reset(&stream);
            return;
        }
        (None, Some(identity)) => identity.server_config(),
        (None, None) => {
            tracing::warn!(listener = %name, chain = %chain.name, "mTLS chain on a proxy without a mesh identity; resetting");
            reset(&stream);
            return;
        }
    };
    let mesh = tls.certificate == WORKLOAD_CERTIFICATE;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let socket = match stream.into_std() {
        Ok(socket) => socket,
        Err(err) => {
            tracing::debug!(%err, "cannot take the socket back for a reset");
            return;
        }
    };
    let Ok(stream) = socket.try_clone().and_then(TcpStream::from_std) else {
        return;
    };
    match acceptor.accept(stream).await {
        Ok(tls) => {
            let peer = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .map(|leaf| {
                    (
                        crate::identity::read_cert(leaf),
                        crate::identity::cert_hash(leaf),
                    )
                });
            let (principal, details) = match (peer, &identity) {
                (Some((Some(cert), hash)), Some(identity)) if mesh => {
                    let uri = cert.spiffe_id.unwrap_or_default();
                    let details = format!(
                        "By={};Hash={hash};Subject=\"\";URI={uri}",
                        identity.spiffe_id()
                    );
                    (Some(Arc::<str>::from(uri)), Some(Arc::<str>::from(details)))
                }
                // A gateway's client certificate: its SPIFFE ID, if it has one, is
                // the principal; no XFCC is added.
                (Some((Some(cert), _)), _) => (cert.spiffe_id.map(Arc::<str>::from), None),
                _ => (None, None),
            };
            drop(socket);
            let peer = Peer {
                principal,
                client_cert_details: details,
            };
            serve_chain(tls, &chain, accepted, Some(peer), &shared).await;
        }
        Err(err) => {
            // Plaintext on an mTLS-only port (STRICT), a certificate the server does
            // not trust, or none where one is required: reset, as Envoy does (curl:
            // exit 56).
            tracing::warn!(listener = %name, %remote, %destination, %err, "TLS handshake failed; resetting the connection");
            if let Ok(stream) = TcpStream::from_std(socket) {
                reset(&stream);
            }
        }
    }
}

/// What an mTLS handshake says about the client.
struct Peer {
    principal: Option<Arc<str>>,
    client_cert_details: Option<Arc<str>>,
}

/// Makes the close of `stream` a reset (RST) rather than an orderly FIN.
fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

/// One accepted connection's facts, gathered by the listener.
struct Accepted {
    /// The listener's name.
    listener: Arc<str>,
    direction: meshlab_proxy_config::TrafficDirection,
    /// Where the client connected to (the original destination when captured).
    destination: SocketAddr,
    remote: SocketAddr,
    /// The SNI of a TLS ClientHello, if the listener looked.
    server_name: Option<Arc<str>>,
}

/// Runs `chain`'s filter on `stream`.
async fn serve_chain<S>(
    stream: S,
    chain: &meshlab_proxy_config::FilterChain,
    accepted: Accepted,
    peer: Option<Peer>,
    shared: &Arc<Shared>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let Accepted {
        listener,
        direction,
        destination,
        remote,
        server_name,
    } = accepted;
    let (peer_principal, client_cert_details) =
        peer.map_or((None, None), |p| (p.principal, p.client_cert_details));
    match &chain.filter {
        NetworkFilter::HttpConnectionManager(hcm) => {
            let conn = HttpConn {
                shared: shared.clone(),
                route_config: hcm.route_config_name.clone(),
                stats: shared.stats.prefix(true, &hcm.stat_prefix),
                direction,
                local: destination,
                remote,
                server_name,
                peer_principal,
                client_cert_details,
                // Outbound connection managers carry no authorization.
                filter_chain: (direction != meshlab_proxy_config::TrafficDirection::Outbound)
                    .then(|| (listener, chain.name.clone())),
                terminated: chain.tls.clone(),
            };
            http::serve(stream, conn).await;
        }
        NetworkFilter::TcpProxy(proxy) => {
            let conn = TcpConn {
                shared: shared.clone(),
                cluster: proxy
                    .pick(http::spread_draw(proxy.total_weight()))
                    .to_owned(),
                stats: shared.stats.prefix(false, &proxy.stat_prefix),
                local: destination,
                remote,
                server_name,
                peer_principal,
                authorization: proxy.authorization.clone().map(Arc::new),
            };
            tcp::proxy(stream, conn).await;
        }
    }
}

/// Whether any chain that could take a connection to `destination` depends on
/// what the first bytes say.
fn needs_inspection(listener: &Listener, destination: SocketAddr) -> bool {
    listener.filter_chains.iter().any(|chain| {
        let matcher = &chain.matcher;
        matcher
            .destination_port
            .is_none_or(|port| port == destination.port())
            && (matcher.destination_ips.is_empty()
                || matcher.destination_ips.contains(&destination.ip()))
            && (!matcher.server_names.is_empty()
                || matcher.transport_protocol.is_some()
                || chain.tls.is_some())
    }) || listener
        .default_filter_chain
        .as_ref()
        .is_some_and(|chain| chain.tls.is_some())
}

/// Looks at the first bytes of `stream` without consuming them.
async fn inspect(stream: &TcpStream, timeout: Option<Duration>) -> Hello {
    let peek = async {
        let mut buffer = vec![0; MAX_RECORD];
        loop {
            let Ok(n) = stream.peek(&mut buffer).await else {
                return Hello::NotTls;
            };
            if n == 0 {
                return Hello::NotTls;
            }
            match parse_client_hello(&buffer[..n]) {
                Hello::Incomplete if n < buffer.len() => {
                    // The rest of the ClientHello is on its way; peeking again at
                    // once would see the same bytes.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Hello::Incomplete => {
                    return Hello::Tls {
                        sni: None,
                        alpn: Vec::new(),
                    };
                }
                hello => return hello,
            }
        }
    };
    match timeout {
        Some(timeout) => tokio::time::timeout(timeout, peek)
            .await
            .unwrap_or(Hello::NotTls),
        None => peek.await,
    }
}

/// Reads a TLS ClientHello's SNI and ALPN offer from the first record of a
/// connection (RFC 8446 §4.1.2, RFC 6066 §3, RFC 7301 §3.1).
pub(crate) fn parse_client_hello(data: &[u8]) -> Hello {
    const HANDSHAKE: u8 = 0x16;
    match data {
        [] => return Hello::Incomplete,
        [first, ..] if *first != HANDSHAKE => return Hello::NotTls,
        [_, major, ..] if *major != 0x03 => return Hello::NotTls,
        _ => {}
    }
    if data.len() < 5 {
        return Hello::Incomplete;
    }
    let record_len = usize::from(u16::from_be_bytes([data[3], data[4]]));
    let Some(record) = data.get(5..5 + record_len) else {
        return Hello::Incomplete;
    };
    let (sni, alpn) = client_hello_extensions(record).unwrap_or_default();
    Hello::Tls { sni, alpn }
}

/// The SNI host name and ALPN protocols of a ClientHello handshake message; `None`
/// when it is malformed.
fn client_hello_extensions(record: &[u8]) -> Option<(Option<String>, Vec<String>)> {
    const CLIENT_HELLO: u8 = 0x01;
    const SERVER_NAME: u16 = 0x0000;
    const ALPN: u16 = 0x0010;
    const HOST_NAME: u8 = 0x00;
    let mut reader = Reader(record);
    if reader.u8()? != CLIENT_HELLO {
        return None;
    }
    reader.skip(3)?; // handshake length
    reader.skip(2 + 32)?; // legacy version, random
    let session = usize::from(reader.u8()?);
    reader.skip(session)?;
    let suites = usize::from(reader.u16()?);
    reader.skip(suites)?;
    let compression = usize::from(reader.u8()?);
    reader.skip(compression)?;
    let extensions_len = usize::from(reader.u16()?);
    let mut extensions = Reader(reader.take(extensions_len.min(reader.0.len()))?);
    let (mut sni, mut alpn) = (None, Vec::new());
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let len = usize::from(extensions.u16()?);
        let mut body = Reader(extensions.take(len)?);
        match kind {
            SERVER_NAME => {
                let list_len = usize::from(body.u16()?);
                let mut list = Reader(body.take(list_len)?);
                while !list.0.is_empty() && sni.is_none() {
                    let name_type = list.u8()?;
                    let name_len = usize::from(list.u16()?);
                    let name = list.take(name_len)?;
                    if name_type == HOST_NAME {
                        sni = std::str::from_utf8(name).ok().map(str::to_ascii_lowercase);
                    }
                }
            }
            ALPN => {
                let list_len = usize::from(body.u16()?);
                let mut list = Reader(body.take(list_len)?);
                while !list.0.is_empty() {
                    let protocol_len = usize::from(list.u8()?);
                    let protocol = list.take(protocol_len)?;
                    alpn.push(String::from_utf8_lossy(protocol).into_owned());
                }
            }
            _ => {}
        }
    }
    Some((sni, alpn))
}

/// A cursor over a byte slice; every read is checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
}

#[cfg(test)]
mod tests;
