//! The HTTP connection manager: what Envoy's `http_connection_manager` and router
//! filter do to each request on a connection that a filter chain hands over.
//!
//! Per request, in Envoy's order:
//! 1. HTTP/1.1 or HTTP/2 (prior knowledge) is served by hyper; `x-request-id` is
//!    generated when absent (Envoy's UUID request ids).
//! 2. The route is selected from the connection manager's route configuration
//!    (looked up by name for each request, so route changes apply to open
//!    connections); none → 404 with flag `NR` and an empty body.
//! 3. The route decides (`meshlab_proxy_route::Route::decide`): a fault delay
//!    (`DI`) holds the request; a fault abort answers with the configured status
//!    and body `fault filter abort` (`FI`); a redirect or direct response is
//!    answered here (Istio's `block_all` is a direct 502 with an empty body).
//! 4. Forwarding: header mutations, path and authority rewrites
//!    (`x-envoy-original-path`), mirrors (fire-and-forget, authority `host-shadow`
//!    as Envoy's `shadowAppendedHost` makes it), then attempts under the route
//!    timeout (504 `upstream request timeout`, `UT`) and the retry policy (back-off,
//!    `x-envoy-attempt-count`, `URX` once retries are used up), each attempt picking
//!    an endpoint and a pooled connection (overflow → 503 `UO` with
//!    `x-envoy-overloaded: true`; connect failure → 503 `UF`; no endpoint → 503
//!    `UH` "no healthy upstream"; missing cluster → 503 `NC`).
//! 5. The response goes back with `x-envoy-upstream-service-time`, the route's
//!    response header mutations and Envoy's `server` header; when its body ends,
//!    the access log line and metrics are written ([`crate::body`]).
//!
//! Headers the proxy adds, as Istio's sidecars do:
//! - `server: envoy` on a sidecar's outbound listener and `server: istio-envoy` on
//!   inbound and gateway listeners (`pilot/pkg/networking/util/proxy_headers.go`:
//!   "outbound uses `envoy` while inbound uses `istio-envoy`"), overwriting the
//!   upstream's (`OVERWRITE`, Envoy's default);
//! - `x-envoy-decorator-operation` on requests leaving through outbound and
//!   gateway listeners whose route has a decorator (Envoy's egress tracing
//!   propagates the operation; ingress removes the header), which is how
//!   `httpbin.org/headers` shows `X-Envoy-Decorator-Operation: httpbin.org:80/*`;
//! - `x-envoy-attempt-count` on outbound and gateway requests (Istio's
//!   `include_request_attempt_count`), `x-envoy-expected-rq-timeout-ms` when a
//!   timeout applies, `x-forwarded-proto` when absent, and on gateways
//!   `x-forwarded-for` with the client's address (`use_remote_address`).
//!
//! Request bodies up to [`MAX_BUFFERED_BODY`] with a known length are buffered so
//! retries and mirrors can replay them (Envoy buffers for the same reason); longer
//! or unknown-length bodies stream and are neither retried nor mirrored.
//! WebSocket upgrades are not proxied yet.

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use meshlab_proxy_config::{Authorization, DownstreamTls, NetworkFilter, TrafficDirection};
use meshlab_proxy_route::{
    Action, ClusterSpecifier, FAULT_ABORT_BODY, Forward, HashPolicy, HeaderPlan, Outcome,
    RequestHead, ResponseFlag, ResponseFlags, RetryPolicy, RetryVerdict, Route, Verdict,
};
use tokio::time::Instant;

use crate::access_log::{Entry, RequestLine};
use crate::balancer::hash64;
use crate::body::{BodyEnd, OnEnd, ProxyBody, UpBody};
use crate::cluster::{ClusterState, Host, PickRequest};
use crate::pool::{ConnectError, Lease, PoolError, SendError};
use crate::sidecar::{Shared, Snapshot};
use crate::stats::{ClusterStats, Counter, HttpSample, MetricLabels, PrefixStats, Source};

/// The largest request body buffered for retries and mirrors (Envoy's default
/// per-connection buffer limit).
pub(crate) const MAX_BUFFERED_BODY: u64 = 1024 * 1024;

/// How often a request is re-sent on a fresh connection when a pooled one turns
/// out to be closed before the request went out.
const STALE_CONNECTION_RETRIES: usize = 3;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_ENVOY_ATTEMPT_COUNT: HeaderName = HeaderName::from_static("x-envoy-attempt-count");
static X_ENVOY_DECORATOR_OPERATION: HeaderName =
    HeaderName::from_static("x-envoy-decorator-operation");
static X_ENVOY_EXPECTED_RQ_TIMEOUT_MS: HeaderName =
    HeaderName::from_static("x-envoy-expected-rq-timeout-ms");
static X_ENVOY_ORIGINAL_PATH: HeaderName = HeaderName::from_static("x-envoy-original-path");
static X_ENVOY_OVERLOADED: HeaderName = HeaderName::from_static("x-envoy-overloaded");
static X_ENVOY_UPSTREAM_SERVICE_TIME: HeaderName =
    HeaderName::from_static("x-envoy-upstream-service-time");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_CLIENT_CERT: HeaderName = HeaderName::from_static("x-forwarded-client-cert");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Hop-by-hop headers, which describe one connection and are never forwarded.
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// One downstream connection handed to the connection manager.
#[derive(Debug)]
pub(crate) struct HttpConn {
    pub(crate) shared: Arc<Shared>,
    /// The route configuration to use (`9080`, `http.8080`, `inbound|9080||`).
    pub(crate) route_config: String,
    pub(crate) stats: Arc<PrefixStats>,
    pub(crate) direction: TrafficDirection,
    /// Where the client connected to (the original destination when captured).
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) server_name: Option<Arc<str>>,
    /// The verified peer SPIFFE URI (`spiffe://cluster.local/ns/default/sa/sleep`)
    /// when the connection is mTLS; `None` for plain text.
    pub(crate) peer_principal: Option<Arc<str>>,
    /// The listener and filter chain that handed the connection over, where the
    /// connection manager's JWT authentication and RBAC are looked up for each
    /// request (inbound and gateway listeners only), so that a policy applies at once
    /// to kept-alive connections too — Envoy drains those on a listener change.
    pub(crate) filter_chain: Option<(Arc<str>, String)>,
    /// The `x-forwarded-client-cert` element for this connection's client
    /// certificate (inbound mTLS), appended to the request's header.
    pub(crate) client_cert_details: Option<Arc<str>>,
    /// The TLS the connection was accepted with, if its chain terminates TLS.
    pub(crate) terminated: Option<DownstreamTls>,
}

/// Serves HTTP on `stream` (plaintext TCP, or a terminated mTLS connection) until
/// the client closes it.
pub(crate) async fn serve<S>(stream: S, conn: HttpConn)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = Arc::new(conn);
    conn.stats.downstream_cx_total.inc();
    conn.stats.downstream_cx_active.inc();
    let service = {
        let conn = conn.clone();
        service_fn(move |request| {
            let conn = conn.clone();
            async move { Ok::<_, Infallible>(Box::pin(handle(conn, request)).await) }
        })
    };
    let connection = conn
        .shared
        .http_server
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut snapshots = conn.shared.snapshot.clone();
    let served = loop {
        tokio::select! {
            served = connection.as_mut() => break served,
            changed = snapshots.changed(), if conn.terminated.is_some() => {
                if changed.is_err() || conn.tls_changed(&snapshots.borrow_and_update().config) {
                    tracing::debug!(remote = %conn.remote, "the connection's TLS changed; draining it");
                    connection.as_mut().graceful_shutdown();
                    break connection.await;
                }
            }
        }
    };
    if let Err(err) = served {
        tracing::debug!(remote = %conn.remote, %err, "downstream connection ended with an error");
    }
    conn.stats.downstream_cx_active.dec();
}

/// Everything one request leaves behind: its access log entry and metrics,
/// written when the response body ends.
///
/// If the client goes away before the response starts, hyper drops the request's
/// future and the exchange with it: that is logged too, with code 0 and `DC`, as
/// Envoy logs it (the fault-injection task's `0 DI,DC` lines).
struct Exchange {
    conn: Arc<HttpConn>,
    start: Instant,
    entry: Entry,
    labels: Arc<MetricLabels>,
    /// The client as an inbound request's metadata and mTLS describe it.
    source: Option<Source>,
    grpc: bool,
    request_bytes: RequestBytes,
    upstream: Option<Upstream>,
    finished: bool,
}

/// The upstream side of an exchange that reached an endpoint.
struct Upstream {
    cluster: Arc<ClusterStats>,
    lease: Lease,
    active: ActiveRequest,
}

enum RequestBytes {
    Known(u64),
    Counted(Arc<Counter>),
}

/// A request in flight to an endpoint, counted in the `rq_active` gauges (and
/// the `max_requests` breaker) while it lives.
struct ActiveRequest {
    cluster: Arc<ClusterStats>,
    host: Arc<Host>,
}

/// A retry in flight, counted against `max_retries` while it lives.
struct RetryGuard(Arc<ClusterStats>);

/// The request to send, kept so retries can send it again.
struct Template {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    body: TemplateBody,
    count_attempts: bool,
}

enum TemplateBody {
    Buffered(Bytes),
    Streamed(Option<UpBody>),
}

/// How the attempts ended.
#[expect(
    clippy::large_enum_variant,
    reason = "made once per request and consumed at once; boxing would only add an allocation"
)]
enum Final {
    /// An upstream answered.
    Response {
        response: Response<Incoming>,
        lease: Lease,
        active: ActiveRequest,
        service_time: Duration,
    },
    /// The proxy answers itself.
    Local(LocalReply),
}

/// A response the proxy makes up.
struct LocalReply {
    status: u16,
    flag: Option<ResponseFlag>,
    details: Cow<'static, str>,
    body: Cow<'static, str>,
    transport_failure: Option<String>,
}

/// Why one attempt failed.
enum AttemptError {
    Overflow,
    Connect(ConnectError),
    Reset(String),
    Timeout,
}

// === handling one request ===

async fn handle(conn: Arc<HttpConn>, request: Request<Incoming>) -> Response<ProxyBody> {
    let start = Instant::now();
    let snapshot = conn.shared.snapshot.borrow().clone();
    let (mut parts, body) = request.into_parts();
    let request_id = ensure_request_id(&mut parts.headers);
    let source = inbound_source(&conn, &mut parts.headers);
    let authority = authority_of(&parts);
    let grpc = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"));
    let mut exchange = Exchange {
        entry: Entry {
            start: SystemTime::now(),
            request: Some(RequestLine {
                method: parts.method.clone(),
                path: parts.uri.path_and_query().cloned(),
                version: parts.version,
                forwarded_for: parts.headers.get(&X_FORWARDED_FOR).cloned(),
                user_agent: parts.headers.get(header::USER_AGENT).cloned(),
                request_id: Some(request_id),
                authority: authority.clone(),
            }),
            response_code: 0,
            flags: ResponseFlags::NONE,
            details: Cow::Borrowed(""),
            transport_failure: None,
            bytes_received: 0,
            bytes_sent: 0,
            duration: Duration::ZERO,
            upstream_service_time: None,
            upstream_host: None,
            upstream_cluster: None,
            upstream_local: None,
            downstream_local: conn.local,
            downstream_remote: conn.remote,
            server_name: conn.server_name.clone(),
            route_name: None,
        },
        labels: conn.shared.unknown_labels.clone(),
        source,
        grpc,
        request_bytes: RequestBytes::Known(0),
        upstream: None,
        finished: false,
        start,
        conn: conn.clone(),
    };

    if let Some(authorization) = conn.current_authorization(&snapshot)
        && let Err(denied) = authenticate_and_authorize(&conn, authorization, &mut parts)
    {
        let Denied {
            reply,
            www_authenticate,
        } = denied;
        let mut response = exchange.reply(reply, HeaderPlan::NONE);
        if let Some(value) = www_authenticate {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        return response;
    }

    let Some(route_config) = snapshot.config.routes.get(&conn.route_config) else {
        conn.stats.no_route.inc();
        return exchange.reply(
            local(404, Some(ResponseFlag::NoRouteFound), "route_not_found", ""),
            HeaderPlan::NONE,
        );
    };
    let authority_text = authority
        .as_ref()
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let head = RequestHead {
        authority: authority_text,
        path_and_query,
        method: parts.method.as_str(),
        scheme: "http",
        headers: &parts.headers,
    };
    let Some(selected) = route_config.select(&head) else {
        conn.stats.no_route.inc();
        return exchange.reply(
            local(404, Some(ResponseFlag::NoRouteFound), "route_not_found", ""),
            HeaderPlan::NONE,
        );
    };
    let route = selected.route;
    let decision = route.decide(&head, &mut draws(route));
    let hash = match &decision.verdict {
        Verdict::Forward(forward) => request_hash(forward.hash_policy, &head, conn.remote),
        _ => None,
    };
    exchange.entry.route_name = Some(route.name.clone());
    exchange.entry.flags = decision.flags;

    if let Some(delay) = decision.delay {
        tokio::time::sleep(delay).await;
    }
    match decision.verdict {
        Verdict::Abort { status } => exchange.reply(
            local(status, None, "fault_filter_abort", FAULT_ABORT_BODY),
            HeaderPlan::NONE,
        ),
        Verdict::Redirect {
            status,
            location,
            response_headers,
        } => {
            conn.stats.rq_redirect.inc();
            let mut response =
                exchange.reply(local(status, None, "direct_response", ""), response_headers);
            if let Ok(location) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        Verdict::Respond {
            status,
            body,
            response_headers,
        } => {
            conn.stats.rq_direct_response.inc();
            let reply = LocalReply {
                body: Cow::Owned(body.to_owned()),
                ..local(status, None, "direct_response", "")
            };
            exchange.reply(reply, response_headers)
        }
        // Envoy's router has no route entry for these and answers as for no route.
        Verdict::NonForwarding => {
            conn.stats.no_route.inc();
            exchange.reply(
                local(404, Some(ResponseFlag::NoRouteFound), "route_not_found", ""),
                HeaderPlan::NONE,
            )
        }
        Verdict::Forward(forward) => {
            forward_request(
                &snapshot, route, forward, hash, parts, body, authority, exchange,
            )
            .await
        }
    }
}

/// A request the JWT or RBAC filter refused.
struct Denied {
    reply: LocalReply,
    www_authenticate: Option<HeaderValue>,
}

/// Envoy's `jwt_authn` then `rbac` filters ([`crate::jwt`], [`crate::authz`]): a
/// token that fails is 401 with Envoy's reason; a verified one is removed unless the
/// provider forwards it; then the policies decide, 403 `RBAC: access denied`.
fn authenticate_and_authorize(
    conn: &HttpConn,
    authorization: &Authorization,
    parts: &mut Parts,
) -> Result<(), Denied> {
    let mut verified = None;
    let providers = &authorization.jwt_providers;
    if let Some((token, location, readers)) =
        crate::jwt::extract(providers, &parts.headers, parts.uri.query())
    {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        match crate::jwt::verify(&token, providers, &readers, now) {
            Ok(jwt) => {
                let provider = &providers[jwt.provider];
                if let (false, crate::jwt::Location::Header(name)) = (provider.forward, &location) {
                    parts.headers.remove(name);
                }
                if !provider.forward_payload_header.is_empty()
                    && let (Ok(name), Ok(value)) = (
                        HeaderName::from_bytes(provider.forward_payload_header.as_bytes()),
                        HeaderValue::from_str(&jwt.payload_b64),
                    )
                {
                    parts.headers.insert(name, value);
                }
                for copy in &provider.claim_to_headers {
                    if let (Ok(name), Some(value)) = (
                        HeaderName::from_bytes(copy.header.as_bytes()),
                        crate::jwt::claim_text(&jwt.claims, &copy.claim),
                    ) && let Ok(value) = HeaderValue::from_str(&value)
                    {
                        parts.headers.insert(name, value);
                    }
                }
                verified = Some(jwt);
            }
            Err(err) => {
                let reason = err.to_string();
                tracing::debug!(remote = %conn.remote, %reason, "JWT refused");
                let realm = format!(
                    "Bearer realm=\"http://{}{}\", error=\"invalid_token\"",
                    authority_of(parts)
                        .as_ref()
                        .and_then(|a| a.to_str().ok())
                        .unwrap_or_default(),
                    parts.uri.path()
                );
                return Err(Denied {
                    reply: LocalReply {
                        status: 401,
                        flag: None,
                        details: Cow::Owned(format!(
                            "jwt_authn_access_denied{{{}}}",
                            reason.replace(' ', "_")
                        )),
                        body: Cow::Owned(reason),
                        transport_failure: None,
                    },
                    www_authenticate: HeaderValue::from_str(&realm).ok(),
                });
            }
        }
    }
    if authorization.policies.is_empty() {
        return Ok(());
    }
    let host = authority_of(parts);
    let request = crate::authz::Request {
        method: parts.method.as_str(),
        host: host
            .as_ref()
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default(),
        path: parts.uri.path(),
        headers: &parts.headers,
        jwt: verified.as_ref(),
    };
    let connection = crate::authz::Connection {
        peer_principal: conn.peer_principal.as_deref(),
        source: conn.remote,
        destination: conn.local,
        sni: conn.server_name.as_deref(),
    };
    let decision = crate::authz::evaluate(authorization, &connection, Some(&request));
    match decision.details() {
        None => Ok(()),
        Some(details) => {
            tracing::debug!(remote = %conn.remote, %details, "RBAC denied");
            Err(Denied {
                reply: LocalReply {
                    status: 403,
                    flag: None,
                    details: Cow::Owned(details),
                    body: Cow::Borrowed(crate::authz::DENIED_BODY),
                    transport_failure: None,
                },
                www_authenticate: None,
            })
        }
    }
}

/// Forwards a routed request upstream and builds the response.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the pieces come apart in `handle` and are used once each"
)]
async fn forward_request(
    snapshot: &Arc<Snapshot>,
    route: &Route,
    forward: Forward<'_>,
    hash: Option<u64>,
    mut parts: Parts,
    body: Incoming,
    authority: Option<HeaderValue>,
    mut exchange: Exchange,
) -> Response<ProxyBody> {
    let conn = exchange.conn.clone();
    let Some(cluster) = snapshot.clusters.get(forward.cluster).cloned() else {
        conn.stats.no_cluster.inc();
        return exchange.reply(
            local(
                503,
                Some(ResponseFlag::NoClusterFound),
                "cluster_not_found",
                "",
            ),
            HeaderPlan::NONE,
        );
    };
    exchange.entry.upstream_cluster = Some(cluster.name.clone());
    exchange.set_labels(&cluster.labels);

    // The request as it goes upstream.
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::EXPECT);
    forward.request_headers.apply(&mut parts.headers);
    let original_path = parts.uri.path_and_query().cloned();
    let path_and_query = match (&forward.path_and_query, &original_path) {
        (Some(rewritten), Some(original)) => {
            if let Ok(value) = HeaderValue::from_str(original.as_str()) {
                parts.headers.insert(X_ENVOY_ORIGINAL_PATH.clone(), value);
            }
            rewritten.clone()
        }
        (_, original) => original.as_ref().map_or("/", |p| p.as_str()).to_owned(),
    };
    let authority = match forward.authority {
        Some(rewritten) => HeaderValue::from_str(rewritten).ok(),
        None => authority,
    };
    match conn.direction {
        TrafficDirection::Inbound => {
            parts.headers.remove(&X_ENVOY_DECORATOR_OPERATION);
        }
        TrafficDirection::Outbound | TrafficDirection::Gateway => {
            // Mirrors too: only the proxy speaks for its workload.
            crate::peer::strip(&mut parts.headers);
            if let Some(operation) = route
                .decorator
                .as_deref()
                .and_then(|op| HeaderValue::from_str(op).ok())
            {
                parts
                    .headers
                    .insert(X_ENVOY_DECORATOR_OPERATION.clone(), operation);
            }
        }
    }
    // Istio's `forward_client_cert_details`: APPEND_FORWARD on a sidecar's inbound
    // side (the mTLS peer's certificate is described), SANITIZE elsewhere (an app or
    // a client outside the mesh cannot forge the header).
    match (&conn.direction, &conn.client_cert_details) {
        (TrafficDirection::Inbound, Some(details)) => {
            let value = match parts
                .headers
                .get(&X_FORWARDED_CLIENT_CERT)
                .and_then(|v| v.to_str().ok())
            {
                Some(earlier) if !earlier.is_empty() => format!("{earlier},{details}"),
                _ => details.to_string(),
            };
            if let Ok(value) = HeaderValue::from_str(&value) {
                parts.headers.insert(X_FORWARDED_CLIENT_CERT.clone(), value);
            }
        }
        (TrafficDirection::Inbound, None) => {}
        (TrafficDirection::Outbound | TrafficDirection::Gateway, _) => {
            parts.headers.remove(&X_FORWARDED_CLIENT_CERT);
        }
    }
    if conn.direction == TrafficDirection::Gateway {
        append_forwarded_for(&mut parts.headers, conn.remote);
    }
    if !parts.headers.contains_key(&X_FORWARDED_PROTO) {
        parts
            .headers
            .insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    }
    let expected_timeout = match (
        forward.retry.and_then(|r| r.per_try_timeout),
        forward.timeout,
    ) {
        (Some(per_try), Some(total)) => Some(per_try.min(total)),
        (per_try, total) => per_try.or(total),
    };
    if let Some(timeout) = expected_timeout.filter(|t| !t.is_zero()) {
        parts.headers.insert(
            X_ENVOY_EXPECTED_RQ_TIMEOUT_MS.clone(),
            HeaderValue::from(timeout.as_millis() as u64),
        );
    }

    // The body: buffered when it may be replayed, streamed otherwise.
    let template_body = if body.is_end_stream() {
        TemplateBody::Buffered(Bytes::new())
    } else if body
        .size_hint()
        .exact()
        .is_some_and(|len| len <= MAX_BUFFERED_BODY)
    {
        match body.collect().await {
            Ok(collected) => TemplateBody::Buffered(collected.to_bytes()),
            Err(_) => {
                let reply = local(
                    400,
                    Some(ResponseFlag::DownstreamConnectionTermination),
                    "downstream_remote_disconnect",
                    "",
                );
                return exchange.reply(reply, HeaderPlan::NONE);
            }
        }
    } else {
        let received = Arc::new(Counter::default());
        exchange.request_bytes = RequestBytes::Counted(received.clone());
        TemplateBody::Streamed(Some(UpBody::Stream { body, received }))
    };
    if let TemplateBody::Buffered(bytes) = &template_body {
        exchange.request_bytes = RequestBytes::Known(bytes.len() as u64);
    }
    let tls = !matches!(cluster.transport, crate::cluster::Transport::Plain);
    let mut template = Template::new(
        parts,
        &path_and_query,
        authority.as_ref(),
        cluster.def.http2,
        tls,
        template_body,
        conn.direction != TrafficDirection::Inbound,
    );

    for mirror in &forward.mirrors {
        spawn_mirror(
            snapshot,
            mirror,
            &template,
            authority.as_ref(),
            conn.local,
            forward.timeout,
        );
    }

    let deadline = forward
        .timeout
        .filter(|t| !t.is_zero())
        .map(|t| Instant::now() + t);
    let mut last_host: Option<Arc<Host>> = None;
    let attempts = attempts(
        &cluster,
        forward.retry,
        hash,
        &mut template,
        &mut exchange,
        &mut last_host,
    );
    let outcome = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, attempts).await.ok(),
        None => Some(attempts.await),
    };
    let outcome = outcome.unwrap_or_else(|| {
        cluster.stats.rq_timeout.inc();
        if let Some(host) = &last_host {
            host.stats.rq_timeout.inc();
            cluster.report(host, 504);
        }
        Final::Local(LocalReply {
            flag: Some(ResponseFlag::UpstreamRequestTimeout),
            ..local(
                504,
                None,
                "upstream_response_timeout",
                "upstream request timeout",
            )
        })
    });

    match outcome {
        Final::Local(reply) => {
            let overloaded = reply.flag == Some(ResponseFlag::UpstreamOverflow);
            let mut response = exchange.reply(reply, HeaderPlan::NONE);
            if overloaded {
                response
                    .headers_mut()
                    .insert(X_ENVOY_OVERLOADED.clone(), HeaderValue::from_static("true"));
            }
            response
        }
        Final::Response {
            response,
            lease,
            active,
            service_time,
        } => {
            let (mut head, body) = response.into_parts();
            let status = head.status.as_u16();
            strip_hop_by_hop(&mut head.headers);
            forward.response_headers.apply(&mut head.headers);
            let service_ms = service_time.as_millis() as u64;
            head.headers.insert(
                X_ENVOY_UPSTREAM_SERVICE_TIME.clone(),
                HeaderValue::from(service_ms),
            );
            head.headers.insert(header::SERVER, conn.server_header());
            cluster.stats.count_status(status);
            if status >= 500 {
                active.host.stats.rq_error.inc();
            } else {
                active.host.stats.rq_success.inc();
            }
            exchange.entry.response_code = status;
            exchange.entry.details = Cow::Borrowed("via_upstream");
            exchange.entry.upstream_service_time = Some(service_ms);
            exchange.upstream = Some(Upstream {
                cluster: cluster.stats.clone(),
                lease,
                active,
            });
            let body = ProxyBody::upstream(body)
                .deadline(deadline)
                .on_end(Box::new(exchange));
            Response::from_parts(head, body)
        }
    }
}

/// Tries the request as the retry policy allows.
async fn attempts(
    cluster: &Arc<ClusterState>,
    policy: Option<&RetryPolicy>,
    hash: Option<u64>,
    template: &mut Template,
    exchange: &mut Exchange,
    last_host: &mut Option<Arc<Host>>,
) -> Final {
    let mut previous: Vec<SocketAddr> = Vec::new();
    let mut retry: Option<RetryGuard> = None;
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let pick = PickRequest {
            hash,
            original_dst: exchange.conn.local,
            previous: &previous,
            avoid_previous: policy.is_some_and(|p| p.avoid_previous_hosts),
            selection_attempts: policy.map_or(0, |p| p.host_selection_max_attempts),
        };
        let Some(host) = cluster.pick(&pick).await else {
            return Final::Local(local(
                503,
                Some(ResponseFlag::NoHealthyUpstream),
                "no_healthy_upstream",
                "no healthy upstream",
            ));
        };
        exchange.entry.upstream_host = Some(host.addr);
        exchange.set_labels(&host.labels);
        *last_host = Some(host.clone());
        previous.push(host.addr);
        let Some(mut request) = template.build(attempt) else {
            // A streamed body cannot be sent twice; the previous failure stands.
            return Final::Local(local(
                503,
                Some(ResponseFlag::UpstreamRetryLimitExceeded),
                "upstream_reset_before_response_started{remote_reset}",
                "upstream connect error or disconnect/reset before headers. reset reason: remote reset",
            ));
        };
        if exchange.conn.direction != TrafficDirection::Inbound {
            exchange
                .conn
                .shared
                .peer_metadata
                .apply(request.headers_mut(), host.mtls_capable);
        }
        let Some(active) = ActiveRequest::start(cluster, &host) else {
            cluster.stats.rq_pending_overflow.inc();
            return Final::Local(overflow());
        };
        cluster.stats.rq_total.inc();
        host.stats.rq_total.inc();
        let attempt_start = Instant::now();
        let sent = send(cluster, &host, request);
        let result = match policy.and_then(|p| p.per_try_timeout) {
            Some(per_try) => tokio::time::timeout(per_try, sent)
                .await
                .unwrap_or(Err(AttemptError::Timeout)),
            None => sent.await,
        };
        drop(retry.take());
        let retried = attempt > 1;
        match result {
            Ok((response, lease)) => {
                let status = response.status().as_u16();
                cluster.report(&host, status);
                exchange.entry.upstream_local = Some(lease.local);
                let verdict = policy
                    .map(|p| p.evaluate(attempt, &Outcome::Response(status, response.headers())));
                if verdict == Some(RetryVerdict::Retry) && template.replayable() {
                    if let Some(guard) = RetryGuard::start(cluster) {
                        retry = Some(guard);
                        drop((response, lease, active));
                        backoff(cluster, policy, attempt).await;
                        continue;
                    }
                    cluster.stats.rq_retry_overflow.inc();
                } else if verdict == Some(RetryVerdict::LimitExceeded) {
                    cluster.stats.rq_retry_limit_exceeded.inc();
                    exchange
                        .entry
                        .flags
                        .insert(ResponseFlag::UpstreamRetryLimitExceeded);
                } else if retried {
                    cluster.stats.rq_retry_success.inc();
                }
                return Final::Response {
                    response,
                    lease,
                    active,
                    service_time: attempt_start.elapsed(),
                };
            }
            Err(AttemptError::Overflow) => {
                return Final::Local(overflow());
            }
            Err(err) => {
                host.stats.rq_error.inc();
                let (outcome, outlier_status, reply) = failure(err, retried, cluster);
                cluster.report(&host, outlier_status);
                let verdict = policy.map(|p| p.evaluate(attempt, &outcome));
                if verdict == Some(RetryVerdict::Retry) && template.replayable() {
                    if let Some(guard) = RetryGuard::start(cluster) {
                        retry = Some(guard);
                        drop(active);
                        backoff(cluster, policy, attempt).await;
                        continue;
                    }
                    cluster.stats.rq_retry_overflow.inc();
                }
                let mut reply = reply;
                if verdict == Some(RetryVerdict::LimitExceeded) {
                    cluster.stats.rq_retry_limit_exceeded.inc();
                    exchange
                        .entry
                        .flags
                        .insert(ResponseFlag::UpstreamRetryLimitExceeded);
                }
                exchange.entry.transport_failure = reply.transport_failure.take();
                return Final::Local(reply);
            }
        }
    }
}

/// Waits Envoy's jittered back-off before retry number `attempt`.
async fn backoff(cluster: &ClusterState, policy: Option<&RetryPolicy>, attempt: u32) {
    cluster.stats.rq_retry.inc();
    if let Some(policy) = policy {
        let delay = policy.backoff.delay(attempt, fastrand::u64(..));
        tokio::time::sleep(delay).await;
    }
}

/// The retry outcome, outlier status and reply of a failed attempt.
fn failure(
    err: AttemptError,
    retried: bool,
    cluster: &ClusterState,
) -> (Outcome<'static>, u16, LocalReply) {
    let latest = if retried {
        "retried and the latest "
    } else {
        ""
    };
    match err {
        AttemptError::Connect(err) => {
            let body = format!(
                "upstream connect error or disconnect/reset before headers. {latest}reset reason: remote connection failure, transport failure reason: {}",
                err.reason
            );
            let details = format!(
                "upstream_reset_before_response_started{{remote_connection_failure|{}}}",
                err.reason.replace(' ', "_")
            );
            let reply = LocalReply {
                status: 503,
                flag: Some(ResponseFlag::UpstreamConnectionFailure),
                details: Cow::Owned(details),
                body: Cow::Owned(body),
                transport_failure: Some(err.reason),
            };
            (Outcome::ConnectFailure, 503, reply)
        }
        AttemptError::Reset(reason) => {
            let body = format!(
                "upstream connect error or disconnect/reset before headers. {latest}reset reason: connection termination"
            );
            let reply = LocalReply {
                status: 503,
                flag: Some(ResponseFlag::UpstreamConnectionTermination),
                details: Cow::Borrowed(
                    "upstream_reset_before_response_started{connection_termination}",
                ),
                body: Cow::Owned(body),
                transport_failure: Some(reason),
            };
            (
                Outcome::Reset {
                    request_started: true,
                },
                503,
                reply,
            )
        }
        AttemptError::Timeout => {
            cluster.stats.rq_per_try_timeout.inc();
            let reply = LocalReply {
                flag: Some(ResponseFlag::UpstreamRequestTimeout),
                ..local(
                    504,
                    None,
                    "upstream_per_try_timeout",
                    "upstream request timeout",
                )
            };
            (Outcome::Timeout, 504, reply)
        }
        AttemptError::Overflow => (Outcome::Overflow, 503, overflow()),
    }
}

/// Envoy's reply when a circuit breaker is open.
fn overflow() -> LocalReply {
    LocalReply {
        flag: Some(ResponseFlag::UpstreamOverflow),
        ..local(
            503,
            None,
            "upstream_reset_before_response_started{overflow}",
            "upstream connect error or disconnect/reset before headers. reset reason: overflow",
        )
    }
}

/// Sends one attempt on a pooled connection, moving to a fresh connection when a
/// pooled one closed before the request went out.
async fn send(
    cluster: &ClusterState,
    host: &Arc<Host>,
    mut request: Request<UpBody>,
) -> Result<(Response<Incoming>, Lease), AttemptError> {
    for _ in 0..STALE_CONNECTION_RETRIES {
        let mut lease = cluster.lease(host).await.map_err(|err| match err {
            PoolError::Overflow => AttemptError::Overflow,
            PoolError::Connect(err) => AttemptError::Connect(err),
        })?;
        match lease.send(request).await {
            Ok(response) => return Ok((response, lease)),
            Err(SendError::NotSent(back)) if lease.reused() => request = back,
            Err(SendError::NotSent(_)) => {
                return Err(AttemptError::Reset(
                    "connection closed before the request was sent".to_owned(),
                ));
            }
            Err(SendError::Failed(err)) => {
                cluster.stats.rq_rx_reset.inc();
                return Err(AttemptError::Reset(err.to_string()));
            }
        }
    }
    Err(AttemptError::Reset(
        "pooled connections kept closing".to_owned(),
    ))
}

/// Numbers for one route decision: uniformly random, except the first draw of a
/// weighted route, which picks its cluster (the route crate draws in that order).
///
/// Envoy draws that one at random too, and over 100 requests a 50/50 split then
/// lands outside 40–60 about once in 30 runs. meshlab takes it instead from one
/// equidistributed (Weyl) sequence per proxy — the fractional parts of n·φ — so every
/// run of consecutive requests splits as the weights say, within a request or two,
/// while the order still looks random: what a learner counts in a traffic-shifting
/// lab is the split the VirtualService asks for, and a lab's check can be exact
/// enough to catch a broken split every time.
fn draws(route: &Route) -> impl FnMut() -> u64 {
    let mut spread = match &route.action {
        Action::Route(action) => match &action.cluster {
            ClusterSpecifier::Weighted(_) => Some(spread_draw(action.cluster.total_weight())),
            ClusterSpecifier::Cluster(_) => None,
        },
        _ => None,
    };
    move || spread.take().unwrap_or_else(|| fastrand::u64(..))
}

/// The next point of the proxy's Weyl sequence, scaled to `0..total`.
pub(crate) fn spread_draw(total: u64) -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // 2^64 / φ: n times it, modulo 2^64, is the fractional part of n·φ in fixed point.
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    ((u128::from(n.wrapping_mul(GOLDEN)) * u128::from(total)) >> 64) as u64
}

/// Sends a shadow copy of the request to `mirror`, ignoring the answer.
fn spawn_mirror(
    snapshot: &Arc<Snapshot>,
    mirror: &str,
    template: &Template,
    authority: Option<&HeaderValue>,
    original_dst: SocketAddr,
    timeout: Option<Duration>,
) {
    let Some(cluster) = snapshot.clusters.get(mirror).cloned() else {
        return;
    };
    let Some(request) = template.shadow(authority, cluster.def.http2) else {
        return;
    };
    tokio::spawn(async move {
        let shadow = async {
            let pick = PickRequest {
                hash: None,
                original_dst,
                previous: &[],
                avoid_previous: false,
                selection_attempts: 0,
            };
            let host = cluster.pick(&pick).await?;
            let active = ActiveRequest::start(&cluster, &host)?;
            cluster.stats.rq_total.inc();
            host.stats.rq_total.inc();
            let (response, lease) = send(&cluster, &host, request).await.ok()?;
            cluster.stats.count_status(response.status().as_u16());
            let completed = response.into_body().collect().await.is_ok();
            lease.release(completed, &cluster.stats);
            drop(active);
            Some(())
        };
        match timeout.filter(|t| !t.is_zero()) {
            Some(timeout) => {
                let _ = tokio::time::timeout(timeout, shadow).await;
            }
            None => {
                shadow.await;
            }
        }
    });
}

/// Envoy's mirror authority: `-shadow` after the host, before any port.
fn shadow_authority(authority: &str) -> String {
    match authority.rsplit_once(':') {
        Some((host, port))
            if !host.ends_with(']')
                && port.bytes().all(|b| b.is_ascii_digit())
                && !host.contains(':') =>
        {
            format!("{host}-shadow:{port}")
        }
        _ => format!("{authority}-shadow"),
    }
}

/// The consistent hash of a request: Envoy combines the hash of every policy that
/// yields a key (`hash = rotl(hash, 1) ^ key hash`).
fn request_hash(
    policies: &[HashPolicy],
    head: &RequestHead<'_>,
    remote: SocketAddr,
) -> Option<u64> {
    let mut hash = None;
    for policy in policies {
        if let Some(key) = policy.key(head, Some(remote.ip())) {
            let key = hash64(key.as_bytes());
            hash = Some(hash.map_or(key, |hash: u64| hash.rotate_left(1) ^ key));
        }
    }
    hash
}

/// `:authority` (HTTP/2) or `Host` (HTTP/1.1).
fn authority_of(parts: &Parts) -> Option<HeaderValue> {
    if let Some(authority) = parts.uri.authority() {
        return HeaderValue::from_str(authority.as_str()).ok();
    }
    parts.headers.get(header::HOST).cloned()
}

/// What an inbound request says about its client (metadata exchange, mTLS),
/// with the metadata-exchange headers removed before the app sees the request.
fn inbound_source(conn: &HttpConn, headers: &mut HeaderMap) -> Option<Source> {
    if conn.direction != TrafficDirection::Inbound {
        return None;
    }
    let metadata = crate::peer::take_inbound(headers);
    (metadata.is_some() || conn.peer_principal.is_some()).then(|| Source {
        metadata,
        principal: conn.peer_principal.clone(),
    })
}

/// Returns the request's `x-request-id`, generating a UUID (v4) when absent.
fn ensure_request_id(headers: &mut HeaderMap) -> HeaderValue {
    if let Some(id) = headers.get(&X_REQUEST_ID).filter(|id| !id.is_empty()) {
        return id.clone();
    }
    let id = uuid();
    headers.insert(X_REQUEST_ID.clone(), id.clone());
    id
}

/// A random (version 4) UUID.
pub(crate) fn uuid() -> HeaderValue {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&fastrand::u64(..).to_le_bytes());
    bytes[8..].copy_from_slice(&fastrand::u64(..).to_le_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 36];
    let mut at = 0;
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text[at] = b'-';
            at += 1;
        }
        text[at] = HEX[usize::from(byte >> 4)];
        text[at + 1] = HEX[usize::from(byte & 0x0f)];
        at += 2;
    }
    HeaderValue::from_bytes(&text).unwrap_or(HeaderValue::from_static(
        "00000000-0000-4000-8000-000000000000",
    ))
}

/// Removes hop-by-hop headers, including those named in `Connection`. `te:
/// trailers` stays, as in Envoy: gRPC needs it end to end.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let trailers = headers
        .get(header::TE)
        .is_some_and(|te| te.as_bytes().eq_ignore_ascii_case(b"trailers"));
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(&HOP_BY_HOP) {
        headers.remove(name);
    }
    if trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Appends the client's address to `x-forwarded-for`.
fn append_forwarded_for(headers: &mut HeaderMap, remote: SocketAddr) {
    let ip = remote.ip().to_string();
    let value = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(existing) => format!("{existing},{ip}"),
        None => ip,
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(X_FORWARDED_FOR.clone(), value);
    }
}

/// A local reply with Envoy's status, details and body.
fn local(
    status: u16,
    flag: Option<ResponseFlag>,
    details: &'static str,
    body: &'static str,
) -> LocalReply {
    LocalReply {
        status,
        flag,
        details: Cow::Borrowed(details),
        body: Cow::Borrowed(body),
        transport_failure: None,
    }
}

// === impl HttpConn ===

impl HttpConn {
    /// Whether the chain this connection came through no longer terminates TLS
    /// as it did (another certificate, a client certificate now required): Envoy
    /// drains the connections of a changed filter chain, so clients reconnect
    /// under the new settings.
    fn tls_changed(&self, config: &meshlab_proxy_config::ProxyConfig) -> bool {
        let Some((listener, chain)) = &self.filter_chain else {
            return false;
        };
        !config.listeners.get(&**listener).is_some_and(|l| {
            l.filter_chains
                .iter()
                .chain(&l.default_filter_chain)
                .any(|c| c.name == *chain && c.tls == self.terminated)
        })
    }

    /// The authorization of this connection's filter chain in `snapshot`.
    fn current_authorization<'s>(&self, snapshot: &'s Snapshot) -> Option<&'s Authorization> {
        let (listener, chain) = self.filter_chain.as_ref()?;
        let listener = snapshot.config.listeners.get(&**listener)?;
        let chain = listener
            .filter_chains
            .iter()
            .chain(&listener.default_filter_chain)
            .find(|c| c.name == *chain)?;
        match &chain.filter {
            NetworkFilter::HttpConnectionManager(hcm) => hcm.authorization.as_ref(),
            NetworkFilter::TcpProxy(_) => None,
        }
    }

    /// Envoy's `server` header for this listener.
    fn server_header(&self) -> HeaderValue {
        match self.direction {
            TrafficDirection::Outbound => HeaderValue::from_static("envoy"),
            TrafficDirection::Inbound | TrafficDirection::Gateway => {
                HeaderValue::from_static("istio-envoy")
            }
        }
    }
}

// === impl Exchange ===

impl Exchange {
    /// Reports the request with `labels`, its own client's `source_*` in them.
    fn set_labels(&mut self, labels: &Arc<MetricLabels>) {
        self.labels = match &self.source {
            Some(source) => self.conn.shared.stats.with_source(labels, source),
            None => labels.clone(),
        };
    }

    /// Answers locally.
    fn reply(mut self, reply: LocalReply, headers: HeaderPlan<'_>) -> Response<ProxyBody> {
        let status =
            StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        self.entry.response_code = status.as_u16();
        if let Some(flag) = reply.flag {
            self.entry.flags.insert(flag);
        }
        self.entry.details = reply.details;
        if reply.transport_failure.is_some() {
            self.entry.transport_failure = reply.transport_failure;
        }
        let body = match reply.body {
            Cow::Borrowed(text) => Bytes::from_static(text.as_bytes()),
            Cow::Owned(text) => Bytes::from(text),
        };
        let server = self.conn.server_header();
        let length = body.len();
        let mut response = Response::new(ProxyBody::full(body).on_end(Box::new(self)));
        *response.status_mut() = status;
        let response_headers = response.headers_mut();
        if length > 0 {
            response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        }
        response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        headers.apply(response_headers);
        response_headers.insert(header::SERVER, server);
        response
    }

    /// Writes the access log line and metrics, once.
    fn finish(&mut self, end: BodyEnd, bytes_sent: u64) {
        if self.finished {
            return;
        }
        self.finished = true;
        match end {
            BodyEnd::Complete => {}
            BodyEnd::UpstreamReset => {
                self.entry.flags.insert(ResponseFlag::UpstreamRemoteReset);
                self.entry.details =
                    Cow::Borrowed("upstream_reset_after_response_started{remote_reset}");
            }
            BodyEnd::Timeout => {
                self.entry
                    .flags
                    .insert(ResponseFlag::UpstreamRequestTimeout);
                self.entry.details = Cow::Borrowed("upstream_response_timeout");
            }
            BodyEnd::DownstreamClosed => {
                self.entry
                    .flags
                    .insert(ResponseFlag::DownstreamConnectionTermination);
                self.entry.details = Cow::Borrowed("downstream_remote_disconnect");
            }
        }
        if let Some(upstream) = self.upstream.take() {
            upstream.cluster.rq_completed.inc();
            upstream
                .lease
                .release(end == BodyEnd::Complete, &upstream.cluster);
            drop(upstream.active);
        }
        self.entry.bytes_sent = bytes_sent;
        self.entry.bytes_received = match &self.request_bytes {
            RequestBytes::Known(n) => *n,
            RequestBytes::Counted(counter) => counter.get(),
        };
        self.entry.duration = self.start.elapsed();
        let shared = &self.conn.shared;
        self.conn.stats.count_status(self.entry.response_code);
        shared.stats.record_http(&HttpSample {
            labels: self.labels.clone(),
            grpc: self.grpc,
            response_code: self.entry.response_code,
            flags: self.entry.flags,
            duration: self.entry.duration,
            request_bytes: self.entry.bytes_received,
            response_bytes: bytes_sent,
        });
        shared.log.write(&self.entry);
    }
}

impl OnEnd for Exchange {
    fn on_end(mut self: Box<Self>, end: BodyEnd, bytes_sent: u64) {
        self.finish(end, bytes_sent);
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.finish(BodyEnd::DownstreamClosed, 0);
    }
}

// === impl ActiveRequest ===

impl ActiveRequest {
    /// Counts a request to `host`, unless `max_requests` are already in flight.
    fn start(cluster: &ClusterState, host: &Arc<Host>) -> Option<Self> {
        if !cluster.stats.rq_active.try_inc(cluster.limits.max_requests) {
            return None;
        }
        host.stats.rq_active.inc();
        Some(Self {
            cluster: cluster.stats.clone(),
            host: host.clone(),
        })
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.cluster.rq_active.dec();
        self.host.stats.rq_active.dec();
    }
}

// === impl RetryGuard ===

impl RetryGuard {
    /// Counts a retry, unless `max_retries` are already in flight.
    fn start(cluster: &ClusterState) -> Option<Self> {
        cluster
            .stats
            .retries_active
            .try_inc(cluster.limits.max_retries)
            .then(|| Self(cluster.stats.clone()))
    }
}

impl Drop for RetryGuard {
    fn drop(&mut self) {
        self.0.retries_active.dec();
    }
}

// === impl Template ===

impl Template {
    fn new(
        parts: Parts,
        path_and_query: &str,
        authority: Option<&HeaderValue>,
        http2: bool,
        tls: bool,
        body: TemplateBody,
        count_attempts: bool,
    ) -> Self {
        let mut headers = parts.headers;
        let authority_text = authority
            .and_then(|a| a.to_str().ok())
            .filter(|a| !a.is_empty());
        let uri = if http2 {
            headers.remove(header::HOST);
            let scheme = if tls { "https" } else { "http" };
            Uri::builder()
                .scheme(scheme)
                .authority(authority_text.unwrap_or("localhost"))
                .path_and_query(path_and_query)
                .build()
        } else {
            if let Some(authority) = authority {
                headers.insert(header::HOST, authority.clone());
            }
            Uri::builder().path_and_query(path_and_query).build()
        };
        Self {
            method: parts.method,
            uri: uri.unwrap_or_else(|_| Uri::from_static("/")),
            version: if http2 {
                Version::HTTP_2
            } else {
                Version::HTTP_11
            },
            headers,
            body,
            count_attempts,
        }
    }

    /// Whether the request can be sent again.
    fn replayable(&self) -> bool {
        matches!(self.body, TemplateBody::Buffered(_))
    }

    /// The request for attempt number `attempt`; `None` if a streamed body was
    /// already sent.
    fn build(&mut self, attempt: u32) -> Option<Request<UpBody>> {
        let body = match &mut self.body {
            TemplateBody::Buffered(bytes) => UpBody::Full(Some(bytes.clone())),
            TemplateBody::Streamed(body) => body.take()?,
        };
        let mut headers = self.headers.clone();
        if self.count_attempts {
            headers.insert(X_ENVOY_ATTEMPT_COUNT.clone(), HeaderValue::from(attempt));
        }
        let mut request = Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = self.version;
        *request.headers_mut() = headers;
        Some(request)
    }

    /// The mirror copy: authority `host-shadow`, only for buffered bodies.
    fn shadow(&self, authority: Option<&HeaderValue>, http2: bool) -> Option<Request<UpBody>> {
        let TemplateBody::Buffered(bytes) = &self.body else {
            return None;
        };
        let authority =
            shadow_authority(authority.and_then(|a| a.to_str().ok()).unwrap_or_default());
        let authority = HeaderValue::from_str(&authority).ok()?;
        let path = self.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut headers = self.headers.clone();
        headers.remove(&X_ENVOY_ATTEMPT_COUNT);
        let uri = if http2 {
            headers.remove(header::HOST);
            Uri::builder()
                .scheme(self.uri.scheme_str().unwrap_or("http"))
                .authority(authority.to_str().ok()?)
                .path_and_query(path)
        } else {
            headers.insert(header::HOST, authority);
            Uri::builder().path_and_query(path)
        };
        let mut request = Request::new(UpBody::Full(Some(bytes.clone())));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = uri.build().ok()?;
        *request.version_mut() = if http2 {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        };
        *request.headers_mut() = headers;
        Some(request)
    }
}

#[cfg(test)]
mod tests;
