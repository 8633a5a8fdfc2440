//! The simulated internet: every host outside the mesh that the labs talk to, served
//! by one process.
//!
//! Istio's egress tasks reach real hosts — `curl http://httpbin.org/headers`,
//! `curl -sSI https://www.google.com`, Bookinfo's details v2 asking Google Books at
//! `www.googleapis.com` — and what they teach is how the mesh treats traffic to hosts
//! it does not know: allowed under `ALLOW_ANY`, blackholed under `REGISTRY_ONLY`, let
//! through again by a `ServiceEntry`. The lab has no internet access and must never
//! need it, so this server stands in for those hosts. It runs in a container on the
//! lab network whose DNS aliases are the simulated host names, and it is *not* a mesh
//! service: to a sidecar it is exactly as foreign as the real `httpbin.org`, so egress
//! policy applies to it the way it applies to the real thing.
//!
//! What each host serves ([`HOSTS`]; chosen by `Host` in HTTP/1.1 and `:authority` in
//! HTTP/2, port ignored, case-insensitive):
//!
//! - `httpbin.org`: the lab's httpbin ([`crate::httpbin`]), so `/headers` echoes what
//!   the caller's sidecar added (`X-Envoy-Decorator-Operation`) and `/delay/5` waits
//!   five seconds, as the egress timeout task expects.
//! - `www.google.com` and `edition.cnn.com`: a small HTML page of our own that says it
//!   is meshlab's simulated host, on every path, for `GET` and `HEAD`.
//! - `www.googleapis.com`: the Google Books volume search details v2 makes, answered
//!   from one book of representative data (see the `books` module).
//! - `raw.githubusercontent.com`: Istio's JWT samples (`jwks.json`, `demo.jwt`,
//!   `groups-scope.jwt`) that the authentication tasks fetch ([`istio_samples`]).
//! - any other host: 404 with a line naming the host.
//!
//! Plain HTTP/1.1 is served on the HTTP port (80), and HTTPS on the HTTPS port (443)
//! with HTTP/2 or HTTP/1.1 as ALPN decides, so `curl -sSI https://www.google.com`
//! prints `HTTP/2 200` as in the Istio docs. The certificate is one leaf whose SANs
//! cover every host, issued by the lab's "public" CA that the lab's clients trust;
//! a client that asks (SNI) for another name gets the same certificate and, if it
//! verifies names, rejects it — as it would reject a misconfigured real server.
//!
//! Each request is logged on stdout (host, method, path, status, duration), so a
//! learner can read with `meshlab logs` whether a request made it out of the mesh, and
//! whether it arrived as HTTP or HTTPS (after a sidecar originated TLS, say).
//!
//! Limits: only these hosts and only the paths above behave like the real services;
//! there is no HTTP→HTTPS redirect, no h2c, no HTTP/3, and httpbin's `url` field says
//! `http://` even over HTTPS (there is no load balancer in front to set
//! `X-Forwarded-Proto`). Nothing here ever leaves the machine.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::uri::Authority;
use axum::http::{HeaderValue, Request, Response, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use self::sites::Sites;

mod books;
pub mod istio_samples;
mod sites;

pub use self::sites::HOSTS;

/// How long a client may take to complete the TLS handshake before it is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The ALPN protocols offered over TLS, preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Where the simulated internet listens and which certificate it presents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Plain HTTP/1.1 (default `0.0.0.0:80`).
    pub http: SocketAddr,
    /// HTTPS with HTTP/2 or HTTP/1.1 by ALPN (default `0.0.0.0:443`).
    pub https: SocketAddr,
    /// PEM file with the certificate chain, leaf first; the leaf's SANs name every
    /// host in [`HOSTS`].
    pub cert_chain: PathBuf,
    /// PEM file with the leaf's private key.
    pub key: PathBuf,
}

impl Config {
    /// The default ports (80 and 443 on every interface) with the given certificate.
    pub fn new(cert_chain: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Config {
            http: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 80)),
            https: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 443)),
            cert_chain: cert_chain.into(),
            key: key.into(),
        }
    }
}

/// Why the simulated internet could not start.
#[derive(Debug, thiserror::Error)]
pub enum InternetError {
    /// The certificate chain file could not be read or is not valid PEM.
    #[error("cannot read the certificate chain {}", path.display())]
    CertChain {
        /// The file's path.
        path: PathBuf,
        /// What reading or parsing found wrong.
        #[source]
        source: pem::Error,
    },
    /// The certificate chain file holds no certificate.
    #[error(
        "no certificate in {} (hint: the file should hold PEM `CERTIFICATE` blocks, leaf first)",
        path.display()
    )]
    NoCertificate {
        /// The file's path.
        path: PathBuf,
    },
    /// The key file could not be read, is not valid PEM or holds no private key.
    #[error("cannot read the private key {}", path.display())]
    Key {
        /// The file's path.
        path: PathBuf,
        /// What reading or parsing found wrong.
        #[source]
        source: pem::Error,
    },
    /// rustls refused the certificate and key, e.g. because they do not belong together.
    #[error("the certificate and key do not make a TLS server configuration")]
    Tls(#[source] rustls::Error),
    /// A port could not be bound.
    #[error("cannot listen on {addr} (hint: is another process using the port?)")]
    Bind {
        /// The address tried.
        addr: SocketAddr,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
}

/// Serves the simulated internet as `config` says until SIGTERM or Ctrl-C.
pub async fn run(config: Config) -> Result<(), InternetError> {
    let tls = load_server_config(&config.cert_chain, &config.key)?;
    let http = bind(config.http).await?;
    let https = bind(config.https).await?;
    tracing::info!(
        http = %config.http,
        https = %config.https,
        hosts = ?HOSTS,
        "simulating the internet"
    );
    tokio::select! {
        () = serve_on(http, https, tls) => Ok(()),
        () = crate::server::shutdown_signal() => Ok(()),
    }
}

/// Serves plain HTTP/1.1 on `http` and HTTPS on `https` with `tls`, until the future
/// is dropped. Failed accepts are logged and retried; they never end it.
pub async fn serve_on(http: TcpListener, https: TcpListener, tls: Arc<ServerConfig>) {
    let sites = Arc::new(Sites::new());
    tokio::join!(
        accept_loop(http, sites.clone(), None),
        accept_loop(https, sites, Some(TlsAcceptor::from(tls))),
    );
}

/// Reads the PEM certificate chain and key and builds the HTTPS configuration
/// ([`server_config`]).
pub fn load_server_config(
    cert_chain: &Path,
    key: &Path,
) -> Result<Arc<ServerConfig>, InternetError> {
    let chain = CertificateDer::pem_file_iter(cert_chain)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| InternetError::CertChain {
            path: cert_chain.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(InternetError::NoCertificate {
            path: cert_chain.to_owned(),
        });
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|source| InternetError::Key {
        path: key.to_owned(),
        source,
    })?;
    server_config(chain, key_der)
}

/// The HTTPS configuration: ring as the crypto provider, no client certificates,
/// `chain` presented for every server name (or none), ALPN `h2` then `http/1.1`.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, InternetError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
        .map_err(InternetError::Tls)?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, InternetError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| InternetError::Bind { addr, source })
}

// === connections ===

/// Accepts connections forever, each served on its own task; `tls` is `None` for
/// plain HTTP.
async fn accept_loop(listener: TcpListener, sites: Arc<Sites>, tls: Option<TlsAcceptor>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Usually out of file descriptors: wait a little instead of spinning.
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let sites = sites.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let Some(acceptor) = tls else {
                let service = Exchange::new(sites, peer, "http");
                serve_connection(stream, service, false).await;
                return;
            };
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(err)) => {
                        tracing::debug!(client = %peer, %err, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(client = %peer, "TLS handshake timed out");
                        return;
                    }
                };
            let session = stream.get_ref().1;
            let h2 = session.alpn_protocol() == Some(b"h2");
            tracing::debug!(
                client = %peer,
                sni = session.server_name().unwrap_or("-"),
                alpn = if h2 { "h2" } else { "http/1.1" },
                "TLS handshake done"
            );
            serve_connection(stream, Exchange::new(sites, peer, "https"), h2).await;
        });
    }
}

/// Serves HTTP/2 (`h2`) or HTTP/1.1 on one connection until it closes.
async fn serve_connection<I>(io: I, service: Exchange, h2: bool)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let builder = if h2 {
        builder.http2_only()
    } else {
        builder.http1_only()
    };
    let peer = service.peer;
    if let Err(err) = builder.serve_connection(TokioIo::new(io), service).await {
        tracing::debug!(client = %peer, %err, "connection ended with an error");
    }
}

// === impl Exchange ===

/// The service of one connection: finds the site for each request's host, lets it
/// answer, and writes the access log line.
#[derive(Clone)]
struct Exchange {
    sites: Arc<Sites>,
    peer: SocketAddr,
    scheme: &'static str,
}

impl Exchange {
    fn new(sites: Arc<Sites>, peer: SocketAddr, scheme: &'static str) -> Self {
        Exchange {
            sites,
            peer,
            scheme,
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for Exchange {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        let start = Instant::now();
        let host = request_host(&request);
        // HTTP/2 carries the host in `:authority` only; give the sites the `Host`
        // header an HTTP/1.1 request would have, as httpbin echoes it.
        if let Some(authority) = request.uri().authority()
            && !request.headers().contains_key(header::HOST)
            && let Ok(value) = HeaderValue::from_str(authority.as_str())
        {
            request.headers_mut().insert(header::HOST, value);
        }
        // httpbin reports the caller's address as axum's serve would give it.
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let method = request.method().clone();
        let path = request
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        let version = request.version();
        let answer = self.sites.answer(host.as_deref(), request);
        let (peer, scheme) = (self.peer, self.scheme);
        Box::pin(async move {
            let response = answer.await;
            tracing::info!(
                client = %peer,
                %scheme,
                host = %host.as_deref().unwrap_or("-"),
                %method,
                %path,
                ?version,
                status = response.status().as_u16(),
                duration_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
                "request"
            );
            Ok(response)
        })
    }
}

/// The host a request is for: the URI's authority (HTTP/2 `:authority`, or an
/// HTTP/1.1 absolute-form target), else the `Host` header; without the port, in
/// lower case, without a trailing dot.
fn request_host<B>(request: &Request<B>) -> Option<String> {
    let from_header = || {
        let value = request.headers().get(header::HOST)?.to_str().ok()?;
        Authority::from_str(value).ok()
    };
    let authority = request.uri().authority().cloned().or_else(from_header)?;
    let host = authority.host().trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests;
