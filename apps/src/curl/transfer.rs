//! One URL's transfer: the request curl builds, the exchange over hyper, redirects,
//! and where the response goes.
//!
//! Each request opens its own connection (redirects included); curl would reuse one,
//! but nothing the tasks observe depends on it, and a fresh connection keeps failure
//! attribution simple: whatever [`IoState`] saw belongs to this request.

use std::future::Future;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use tokio::time::Instant;

use super::args::{Data, Fail, HttpVersion, Options};
use super::connect::{Resolver, connect};
use super::cookies::{CookieJar, unix_now};
use super::error::{CurlError, chain};
use super::info::{Phase, TransferInfo};
use super::stream::{Direction, IoFailure, IoState, Tracked};
use super::url::{Scheme, Url};
use super::{Console, Output, USER_AGENT};

/// curl's default `--connect-timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(300);

/// State shared by the URLs of one invocation: options, DNS overrides, TLS
/// configuration, cookies and the request body.
#[derive(Debug)]
pub(crate) struct Session<'o> {
    opts: &'o Options,
    resolver: Resolver,
    tls: Option<Arc<ClientConfig>>,
    /// The cookie engine, on with `-b FILE` or `-c`.
    jar: Option<CookieJar>,
    /// `-b NAME=VALUE` arguments, sent as they are.
    literal_cookies: Vec<String>,
    /// The `-d` data, joined.
    data: Option<Bytes>,
    /// Connections opened so far, to number them as curl's trace does.
    connections: u32,
    /// When `--max-time` runs out for the current URL.
    deadline: Option<Instant>,
}

/// What a request needs besides its URL.
#[derive(Debug, Clone)]
struct Plan {
    method: Method,
    body: Option<Bytes>,
    /// Whether the URL's host is the one first asked for: custom `Host`,
    /// credentials and `-b` cookies go to that host only, as in curl.
    original_host: bool,
}

/// A hyper client connection of either version.
enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl<'o> Session<'o> {
    /// Prepares what all URLs share. Reads cookie and data files now, warning (not
    /// failing) when they are missing, as curl does.
    pub(crate) fn new(opts: &'o Options, console: &mut Console<'_>) -> Result<Self, CurlError> {
        let resolver = Resolver::new(&opts.resolve, opts.ip_version)?;
        for line in resolver.describe() {
            console.info(line);
        }
        let now = unix_now();
        let mut jar = opts.cookie_jar.as_ref().map(|_| CookieJar::default());
        let mut literal_cookies = Vec::new();
        for cookie in &opts.cookies {
            if cookie.contains('=') {
                literal_cookies.push(cookie.clone());
            } else {
                let jar = jar.get_or_insert_with(CookieJar::default);
                // A missing jar file just means no cookies yet, as in curl.
                if let Ok(text) = std::fs::read_to_string(cookie) {
                    jar.load_netscape(&text, now);
                }
            }
        }
        Ok(Self {
            opts,
            resolver,
            tls: None,
            jar,
            literal_cookies,
            data: read_data(&opts.data, console),
            connections: 0,
            deadline: None,
        })
    }

    /// The cookie engine's cookies, to save with `-c`.
    pub(crate) fn jar(&self) -> Option<&CookieJar> {
        self.jar.as_ref()
    }

    /// Fetches one URL, following redirects with `-L`, and writes the response to
    /// `output`. `info` records progress even when this fails.
    pub(crate) async fn transfer(
        &mut self,
        raw_url: &str,
        output: &mut Output,
        console: &mut Console<'_>,
        info: &mut TransferInfo,
    ) -> Result<(), CurlError> {
        let start = Instant::now();
        self.deadline = self.opts.max_time.map(|limit| start + limit);
        let mut url = Url::parse(raw_url)?;
        let first_host = url.host.to_ascii_lowercase();
        let mut plan = Plan {
            method: self.initial_method()?,
            body: self.data.clone(),
            original_host: true,
        };
        loop {
            info.url_effective = url.to_string();
            info.method = plan.method.to_string();
            info.scheme = url.scheme.as_str();
            plan.original_host = url.host.eq_ignore_ascii_case(&first_host);
            let exchange = self.exchange(&url, &plan, output, console, info, start);
            let Some((status, next)) = Box::pin(exchange).await? else {
                return Ok(());
            };
            if let Some(max) = self.opts.max_redirs
                && info.num_redirects >= max
            {
                return Err(CurlError::TooManyRedirects(max));
            }
            info.num_redirects += 1;
            console.info(format_args!("Issue another request to this URL: '{next}'"));
            let to_get = match status.as_u16() {
                303 => plan.method != Method::HEAD,
                301 | 302 => plan.method == Method::POST,
                _ => false,
            };
            if to_get && self.opts.method.is_none() {
                plan.method = Method::GET;
                plan.body = None;
            }
            url = next;
            info.times.redirect = start.elapsed();
        }
    }

    /// One request and its response. Returns the status and the next URL when the
    /// response is a redirect to follow.
    async fn exchange(
        &mut self,
        url: &Url,
        plan: &Plan,
        output: &mut Output,
        console: &mut Console<'_>,
        info: &mut TransferInfo,
        start: Instant,
    ) -> Result<Option<(StatusCode, Url)>, CurlError> {
        let tls = match url.scheme {
            Scheme::Https => Some(self.tls_config()?),
            Scheme::Http => None,
        };
        let connect_deadline =
            Instant::now() + self.opts.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let connect_deadline = self
            .deadline
            .map_or(connect_deadline, |d| d.min(connect_deadline));
        let connecting = connect(url, &self.resolver, tls, console, info, start);
        let connected = match tokio::time::timeout_at(connect_deadline, connecting).await {
            Ok(connected) => connected?,
            Err(_) => return Err(connect_timeout(url, info, start)),
        };
        let h2 = connected.alpn_h2 || self.opts.http_version == HttpVersion::Http2PriorKnowledge;
        let connection = self.connections;
        self.connections += 1;
        info.phase = Phase::Transferring;
        console.info(if h2 { "using HTTP/2" } else { "using HTTP/1.x" });
        let (stream, io) = Tracked::new(connected.stream);

        let mut sender = self
            .within(Sender::handshake(stream, h2), info, start)
            .await?
            .map_err(|e| head_error(&e, &io, h2))?;
        let request = self.request(url, plan, h2, console, info)?;
        info.times.pretransfer = start.elapsed();
        let response = self
            .within(sender.send(request), info, start)
            .await?
            .map_err(|e| head_error(&e, &io, h2))?;
        info.times.starttransfer = start.elapsed();
        let (parts, body) = response.into_parts();
        let status = parts.status;

        info.http_code = status.as_u16();
        info.http_version = Some(parts.version);
        info.content_length = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        info.size_download = 0;
        let head_bytes = response_head(&parts);
        info.headers = parts.headers;
        info.size_header += head_bytes.len() as u64;
        console.trace("< ", &head_bytes);

        if let Some(jar) = &mut self.jar {
            let now = unix_now();
            for value in info.headers.get_all(header::SET_COOKIE) {
                if let Ok(value) = value.to_str() {
                    jar.store(value, url, now);
                }
            }
        }
        let redirect = redirect_target(url, status, &info.headers);
        let follow = self.opts.follow && redirect.is_some();
        if !follow {
            info.redirect_url = redirect.as_ref().map(Url::to_string);
        }
        let failed = status.as_u16() >= 400 && !follow;
        if failed && self.opts.fail == Fail::Silently {
            return Err(CurlError::HttpError(status.as_u16()));
        }
        if self.opts.include || self.opts.head {
            output.body(console, &head_bytes)?;
        }
        output.headers(console, &head_bytes)?;
        if follow {
            console.info(format_args!(
                "Connection #{connection} to host {} left intact",
                url.host
            ));
            return Ok(redirect.map(|next| (status, next)));
        }

        output.create(console)?;
        // A HEAD response has no body, whatever its Content-Length says.
        if plan.method != Method::HEAD {
            let mut body = body;
            while let Some(frame) = self.within(body.frame(), info, start).await? {
                let frame = frame.map_err(|e| body_error(&e, &io, h2, info))?;
                if let Ok(data) = frame.into_data() {
                    info.size_download += data.len() as u64;
                    output.body(console, &data)?;
                }
            }
        }
        console.info(format_args!(
            "Connection #{connection} to host {} left intact",
            url.host
        ));
        if failed && self.opts.fail == Fail::WithBody {
            return Err(CurlError::HttpError(status.as_u16()));
        }
        Ok(None)
    }

    /// Runs `future` unless `--max-time` runs out first.
    async fn within<F: Future>(
        &self,
        future: F,
        info: &TransferInfo,
        start: Instant,
    ) -> Result<F::Output, CurlError> {
        let Some(deadline) = self.deadline else {
            return Ok(future.await);
        };
        tokio::time::timeout_at(deadline, future)
            .await
            .map_err(|_| CurlError::OperationTimeout {
                ms: start.elapsed().as_millis(),
                received: info.size_download,
                expected: info.content_length,
            })
    }

    /// The method of the first request: `-X`, else HEAD for `-I`, POST with data, GET.
    fn initial_method(&self) -> Result<Method, CurlError> {
        if let Some(method) = &self.opts.method {
            return Method::from_bytes(method.as_bytes())
                .map_err(|_| CurlError::BadArgument(format!("invalid request method '{method}'")));
        }
        Ok(if self.opts.head {
            Method::HEAD
        } else if self.data.is_some() {
            Method::POST
        } else {
            Method::GET
        })
    }

    /// The TLS client configuration, built on first use.
    fn tls_config(&mut self) -> Result<Arc<ClientConfig>, CurlError> {
        if let Some(config) = &self.tls {
            return Ok(Arc::clone(config));
        }
        let alpn: &[&[u8]] = match self.opts.http_version {
            HttpVersion::Default => &[b"h2", b"http/1.1"],
            HttpVersion::Http10 | HttpVersion::Http11 => &[b"http/1.1"],
            HttpVersion::Http2PriorKnowledge => &[b"h2"],
        };
        let ca = self.opts.cacert.as_deref();
        let config = match &self.opts.cert {
            Some(cert) => {
                let identity = crate::tls::ClientIdentity {
                    cert,
                    key: self.opts.key.as_deref(),
                };
                crate::tls::client_config_with_identity(
                    ca,
                    self.opts.insecure,
                    alpn,
                    Some(identity),
                )
            }
            None => crate::tls::client_config(ca, self.opts.insecure, alpn),
        }
        .map_err(|e| {
            if e.is_client_identity() {
                CurlError::ClientCert(e)
            } else {
                CurlError::CaCert(e)
            }
        })?;
        self.tls = Some(Arc::clone(&config));
        Ok(config)
    }

    /// Builds the request with curl's headers, in curl's order, and traces it.
    fn request(
        &self,
        url: &Url,
        plan: &Plan,
        h2: bool,
        console: &mut Console<'_>,
        info: &mut TransferInfo,
    ) -> Result<Request<Full<Bytes>>, CurlError> {
        let headers = self.request_headers(url, plan, console);
        let authority = headers
            .iter()
            .find(|(name, _)| *name == header::HOST)
            .and_then(|(_, value)| value.to_str().ok())
            .map_or_else(|| url.authority(), str::to_owned);
        let version = if h2 {
            Version::HTTP_2
        } else if self.opts.http_version == HttpVersion::Http10 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        let (target, version_text) = if h2 {
            (
                format!("{}://{authority}{}", url.scheme.as_str(), url.path),
                "HTTP/2",
            )
        } else if version == Version::HTTP_10 {
            (url.path.clone(), "HTTP/1.0")
        } else {
            (url.path.clone(), "HTTP/1.1")
        };

        let mut head = format!("{} {} {version_text}\r\n", plan.method, url.path).into_bytes();
        for (name, value) in &headers {
            head.extend_from_slice(title_case(name.as_str()).as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        console.trace("> ", &head);
        info.size_request += head.len() as u64;
        let body = plan.body.clone().unwrap_or_default();
        info.size_upload += body.len() as u64;

        let mut request = Request::builder()
            .method(plan.method.clone())
            .uri(target)
            .version(version)
            .body(Full::new(body))
            .map_err(|e| CurlError::BadArgument(format!("cannot build the request: {e}")))?;
        let map = request.headers_mut();
        for (name, value) in headers {
            // HTTP/2 carries the authority in the request target, not in `Host`.
            if !(h2 && name == header::HOST) {
                map.append(name, value);
            }
        }
        Ok(request)
    }

    /// The request headers: curl's own (Host, Authorization, User-Agent, Accept,
    /// Referer, Cookie), then `-H` ones, then the body's. A `-H` header with the name
    /// of one of curl's replaces it in place; `Name:` removes it; `Name;` sends it
    /// empty.
    fn request_headers(
        &self,
        url: &Url,
        plan: &Plan,
        console: &mut Console<'_>,
    ) -> Vec<(HeaderName, HeaderValue)> {
        let opts = self.opts;
        let mut own: Vec<(String, String)> = vec![("Host".to_owned(), url.authority())];
        let credentials = opts.user.clone().or_else(|| url.userinfo.clone());
        if let (Some(credentials), true) = (credentials, plan.original_host) {
            let credentials = if credentials.contains(':') {
                credentials
            } else {
                format!("{credentials}:")
            };
            let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
            own.push(("Authorization".to_owned(), format!("Basic {encoded}")));
        }
        match opts.user_agent.as_deref() {
            Some("") => {}
            Some(agent) => own.push(("User-Agent".to_owned(), agent.to_owned())),
            None => own.push(("User-Agent".to_owned(), USER_AGENT.to_owned())),
        }
        own.push(("Accept".to_owned(), "*/*".to_owned()));
        if let Some(referer) = &opts.referer {
            own.push(("Referer".to_owned(), referer.clone()));
        }
        let mut cookies: Vec<String> = Vec::new();
        if plan.original_host {
            cookies.extend(self.literal_cookies.iter().cloned());
        }
        if let Some(from_jar) = self.jar.as_ref().and_then(|j| j.header(url, unix_now())) {
            cookies.push(from_jar);
        }
        if !cookies.is_empty() {
            own.push(("Cookie".to_owned(), cookies.join("; ")));
        }

        let mut extra: Vec<(String, String)> = Vec::new();
        for raw in &opts.headers {
            let Some((name, value, remove)) = parse_header(raw) else {
                continue;
            };
            // Like curl, custom Host and credentials do not follow a redirect elsewhere.
            let sensitive = ["host", "authorization", "cookie"]
                .iter()
                .any(|s| name.eq_ignore_ascii_case(s));
            if sensitive && !plan.original_host {
                continue;
            }
            match own.iter().position(|(n, _)| n.eq_ignore_ascii_case(name)) {
                Some(i) if remove => {
                    own.remove(i);
                }
                Some(i) => own[i].1 = value.to_owned(),
                None if remove => {}
                None => extra.push((name.to_owned(), value.to_owned())),
            }
        }
        let body_headers = plan.body.as_ref().map(|body| {
            let mut headers = vec![("Content-Length".to_owned(), body.len().to_string())];
            let typed = opts
                .headers
                .iter()
                .filter_map(|h| parse_header(h))
                .any(|(name, _, _)| name.eq_ignore_ascii_case("content-type"));
            if !typed {
                headers.push((
                    "Content-Type".to_owned(),
                    "application/x-www-form-urlencoded".to_owned(),
                ));
            }
            headers
        });

        own.into_iter()
            .chain(extra)
            .chain(body_headers.into_iter().flatten())
            .filter_map(|(name, value)| {
                let parsed = HeaderName::from_bytes(name.as_bytes())
                    .ok()
                    .zip(HeaderValue::from_str(&value).ok());
                if parsed.is_none() {
                    console.warn(format_args!(
                        "header \"{name}: {value}\" is not valid HTTP, not sent"
                    ));
                }
                parsed
            })
            .collect()
    }
}

// === impl Sender ===

impl Sender {
    /// Starts HTTP/1.1 or HTTP/2 on the stream and spawns the connection's driver.
    async fn handshake(stream: Tracked, h2: bool) -> Result<Self, hyper::Error> {
        let io = TokioIo::new(stream);
        if h2 {
            let (sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "curl: HTTP/2 connection ended");
                }
            });
            Ok(Self::H2(sender))
        } else {
            // Send header names as curl does (`User-Agent`, not `user-agent`).
            let (sender, connection) = hyper::client::conn::http1::Builder::new()
                .title_case_headers(true)
                .handshake(io)
                .await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "curl: HTTP/1 connection ended");
                }
            });
            Ok(Self::H1(sender))
        }
    }

    /// Sends the request and waits for the response head.
    async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, hyper::Error> {
        match self {
            Self::H1(sender) => {
                sender.ready().await?;
                sender.send_request(request).await
            }
            Self::H2(sender) => {
                sender.ready().await?;
                sender.send_request(request).await
            }
        }
    }
}

/// Splits a `-H` value: `Name: value`, `Name:` (remove), `Name;` (empty value).
fn parse_header(raw: &str) -> Option<(&str, &str, bool)> {
    let colon = raw.find(':');
    let semicolon = raw.find(';');
    match (colon, semicolon) {
        (Some(c), s) if s.is_none_or(|s| c < s) => {
            let name = raw[..c].trim();
            let value = raw[c + 1..].trim();
            (!name.is_empty()).then_some((name, value, value.is_empty()))
        }
        (_, Some(s)) if raw[s + 1..].trim().is_empty() => {
            let name = raw[..s].trim();
            (!name.is_empty()).then_some((name, "", false))
        }
        _ => None,
    }
}

/// The response head as curl prints it (`HTTP/1.1 200 OK`, `HTTP/2 200`), with CRLF
/// line ends and the closing empty line.
fn response_head(parts: &http::response::Parts) -> Vec<u8> {
    let status = parts.status;
    let mut head = match parts.version {
        Version::HTTP_2 => format!("HTTP/2 {}", status.as_u16()),
        Version::HTTP_3 => format!("HTTP/3 {}", status.as_u16()),
        version => {
            let reason = parts
                .extensions
                .get::<hyper::ext::ReasonPhrase>()
                .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
                .or_else(|| status.canonical_reason().map(str::to_owned))
                .unwrap_or_default();
            let v = if version == Version::HTTP_10 {
                "1.0"
            } else {
                "1.1"
            };
            format!("HTTP/{v} {} {reason}", status.as_u16())
        }
    }
    .into_bytes();
    head.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Where a 3xx response points, if it does.
fn redirect_target(url: &Url, status: StatusCode, headers: &http::HeaderMap) -> Option<Url> {
    if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = headers.get(header::LOCATION)?.to_str().ok()?;
    url.join(location).ok()
}

/// Why the response head did not arrive, in curl's terms.
fn head_error(error: &hyper::Error, io: &IoState, h2: bool) -> CurlError {
    if let Some(failure) = io.failure() {
        return io_failure(failure);
    }
    if error.is_parse() && !h2 {
        return if io.looks_like_http() {
            CurlError::WeirdReply
        } else {
            CurlError::Http09
        };
    }
    if io.bytes_read() == 0 {
        return CurlError::EmptyReply;
    }
    if h2 {
        return CurlError::Http2Stream(chain(error));
    }
    CurlError::Recv(format!(
        "connection closed before the response was complete ({})",
        chain(error)
    ))
}

/// Why the body stopped short, in curl's terms.
fn body_error(error: &hyper::Error, io: &IoState, h2: bool, info: &TransferInfo) -> CurlError {
    if let Some(failure) = io.failure() {
        return io_failure(failure);
    }
    if h2 {
        return CurlError::Http2Stream(chain(error));
    }
    CurlError::PartialFile(
        info.content_length
            .map(|total| total.saturating_sub(info.size_download)),
    )
}

fn io_failure(failure: IoFailure) -> CurlError {
    match failure.direction {
        Direction::Send => CurlError::Send(failure.message),
        Direction::Recv => CurlError::Recv(failure.message),
    }
}

/// The connect-phase timeout message for the step that ran out of time.
fn connect_timeout(url: &Url, info: &TransferInfo, start: Instant) -> CurlError {
    let ms = start.elapsed().as_millis();
    match info.phase {
        Phase::Resolving => CurlError::ResolveTimeout(ms),
        Phase::Connecting => CurlError::ConnectTimeout {
            host: url.host.clone(),
            port: url.port,
            ms,
        },
        Phase::Handshaking => CurlError::TlsTimeout,
        Phase::Transferring => CurlError::OperationTimeout {
            ms,
            received: info.size_download,
            expected: info.content_length,
        },
    }
}

/// `user-agent` → `User-Agent`, for the request trace.
fn title_case(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c };
            upper = c == '-';
            out
        })
        .collect()
}

/// Reads and joins the `-d` arguments; unreadable files warn and count as empty.
fn read_data(data: &[Data], console: &mut Console<'_>) -> Option<Bytes> {
    if data.is_empty() {
        return None;
    }
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for item in data {
        match item {
            Data::Text(text) => parts.push(text.clone().into_bytes()),
            Data::File {
                path,
                strip_newlines,
            } => {
                let mut bytes = Vec::new();
                let read = if path == "-" {
                    std::io::stdin().read_to_end(&mut bytes).map(|_| ())
                } else {
                    std::fs::read(path).map(|b| bytes = b)
                };
                if read.is_err() {
                    console.warn(format_args!(
                        "Couldn't read data from file \"{path}\", this makes an empty POST."
                    ));
                }
                if *strip_newlines {
                    bytes.retain(|b| *b != b'\r' && *b != b'\n');
                }
                parts.push(bytes);
            }
        }
    }
    Some(Bytes::from(parts.join(&b'&')))
}

#[cfg(test)]
mod tests;
