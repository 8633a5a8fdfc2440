//! The apps' outbound HTTP calls: one fresh connection per call, a deadline per call.
//!
//! productpage deliberately opens a new connection for every call (python-requests
//! without a session) so that load spreads over backend versions; the other apps call
//! rarely. A pool would change what learners see when the mesh balances requests, so
//! there is none. The deadline covers connecting, sending and reading the whole body:
//! against a hanging upstream that is what the originals' connect and read timeouts
//! add up to.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// What an upstream answered.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

/// Why an upstream call produced no response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// The URL is not an absolute http or https URL.
    #[error("invalid upstream url {0:?}")]
    Url(String),
    /// Resolving or connecting failed.
    #[error("cannot connect to {authority}: {source}")]
    Connect {
        authority: String,
        source: std::io::Error,
    },
    /// TLS set-up or handshake failed.
    #[error("tls to {authority} failed: {reason}")]
    Tls { authority: String, reason: String },
    /// The exchange failed after connecting.
    #[error("request to {authority} failed: {source}")]
    Http {
        authority: String,
        source: hyper::Error,
    },
    /// The deadline passed first.
    #[error("request to {0} timed out")]
    Timeout(String),
}

/// `GET url` with `headers`, giving up after `timeout`.
pub(crate) async fn get(
    url: &str,
    headers: HeaderMap,
    timeout: Duration,
) -> Result<Response, UpstreamError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| UpstreamError::Url(url.to_owned()))?;
    let authority = uri
        .authority()
        .ok_or_else(|| UpstreamError::Url(url.to_owned()))?
        .clone();
    match tokio::time::timeout(timeout, exchange(&uri, headers)).await {
        Ok(result) => result,
        Err(_) => Err(UpstreamError::Timeout(authority.to_string())),
    }
}

async fn exchange(uri: &Uri, headers: HeaderMap) -> Result<Response, UpstreamError> {
    let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
    let host = uri.host().unwrap_or_default().to_owned();
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(UpstreamError::Url(uri.to_string())),
    };
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let tcp = connect(&host, port)
        .await
        .map_err(|source| UpstreamError::Connect {
            authority: authority.clone(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);

    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(path)
        .body(Empty::<Bytes>::new())
        .map_err(|_| UpstreamError::Url(uri.to_string()))?;
    *request.headers_mut() = headers;
    if let Ok(value) = HeaderValue::from_str(&authority) {
        request.headers_mut().insert(header::HOST, value);
    }

    if tls {
        let config = crate::tls::client_config(None, false, &[b"http/1.1"]).map_err(|e| {
            UpstreamError::Tls {
                authority: authority.clone(),
                reason: e.to_string(),
            }
        })?;
        let name = rustls_pki_types::ServerName::try_from(host.clone()).map_err(|e| {
            UpstreamError::Tls {
                authority: authority.clone(),
                reason: e.to_string(),
            }
        })?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| UpstreamError::Tls {
                authority: authority.clone(),
                reason: e.to_string(),
            })?;
        send(stream, request, authority).await
    } else {
        send(tcp, request, authority).await
    }
}

/// Connects to one of `host`'s addresses, trying them in random order.
async fn connect(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let mut addresses: Vec<_> = tokio::net::lookup_host((host, port)).await?.collect();
    fastrand::shuffle(&mut addresses);
    let mut last = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(err) => last = Some(err),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} has no address"),
        )
    }))
}

async fn send<S>(
    stream: S,
    request: Request<Empty<Bytes>>,
    authority: String,
) -> Result<Response, UpstreamError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let http = |source| UpstreamError::Http {
        authority: authority.clone(),
        source,
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http)?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(http)?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(http)?
        .to_bytes();
    Ok(Response { status, body })
}
