//! The API's endpoints for the dashboard: the live graph and access log (server-sent
//! events), proxies with their sync state per type, every stored object, and the
//! traffic generator.
//!
//! They live in the control plane, beside the CLI's endpoints, because the control
//! container owns what they read: the store, the translation, the discovery
//! server's sync state and the proxies' logs. The `web` crate only serves the page.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::Stream;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use meshlab_control_api::ResourceType;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;

use super::{ApiState, Failure};
use crate::catalog::is_gateway_pod;
use crate::telemetry::LogEvent;

/// How often the graph stream sends the graph while traffic flows, at most.
const GRAPH_MIN_INTERVAL: Duration = Duration::from_millis(500);
/// How often it sends the graph anyway (rates decay without traffic).
const GRAPH_MAX_INTERVAL: Duration = Duration::from_secs(2);

/// The most requests one traffic-generator call sends.
pub const MAX_TRAFFIC: u32 = 2000;

/// The port of the ingress gateway's HTTP server inside its pod.
const GATEWAY_PORT: u16 = 8080;

/// One proxy in `GET /api/v1/proxies`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyInfo {
    /// The pod.
    pub pod: String,
    /// Its namespace.
    pub namespace: String,
    /// `sidecar` or `router`.
    pub kind: String,
    /// The proxy's build version.
    pub version: String,
    /// Sync state per type: `CDS`, `LDS`, `EDS`, `RDS` → `SYNCED`, `STALE`,
    /// `NOT SENT`, `NACKED`.
    pub sync: BTreeMap<String, String>,
    /// Why the last response was rejected, per type, when it was.
    pub errors: BTreeMap<String, String>,
    /// The workload certificate, once the proxy holds one.
    pub certificate: Option<Certificate>,
}

/// A proxy's workload certificate.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    /// `spiffe://cluster.local/ns/default/sa/bookinfo-reviews`.
    pub spiffe_id: String,
    /// When it expires, RFC 3339.
    pub expires: String,
}

/// One stored object in `GET /api/v1/resources`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// `VirtualService`.
    pub kind: String,
    /// `networking.istio.io`, empty for Kubernetes' core group.
    pub group: String,
    /// The namespace; empty for cluster-scoped kinds.
    pub namespace: String,
    /// The name.
    pub name: String,
}

/// `POST /api/v1/traffic`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrafficRequest {
    /// How many requests.
    pub requests: u32,
    /// Log in to Bookinfo as this user first (`jason`), when given.
    #[serde(default)]
    pub user: Option<String>,
    /// The path; `/productpage` when absent.
    #[serde(default)]
    pub path: Option<String>,
}

/// What the traffic generator got back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrafficReport {
    /// Requests sent.
    pub sent: u32,
    /// How many answers per status code (`0` when none came).
    pub codes: BTreeMap<u16, u32>,
    /// Wall time in milliseconds.
    pub millis: u64,
}

/// `GET /api/v1/access-log/stream` filters.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct LogFilter {
    /// A workload (`reviews-v2`) or pod name.
    #[serde(default)]
    pub workload: Option<String>,
    /// A response flag (`UH`, `NR`, …); `-` for lines without flags.
    #[serde(default)]
    pub flag: Option<String>,
    /// A status code (`503`) or class (`5xx`).
    #[serde(default)]
    pub status: Option<String>,
}

/// The dashboard's routes.
pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/graph", get(graph))
        .route("/api/v1/graph/stream", get(graph_stream))
        .route("/api/v1/access-log/stream", get(log_stream))
        .route("/api/v1/proxies", get(proxies))
        .route("/api/v1/resources", get(resources))
        .route("/api/v1/traffic", post(traffic))
}

async fn graph(State(state): State<ApiState>) -> Json<crate::telemetry::Graph> {
    Json(current_graph(&state))
}

fn current_graph(state: &ApiState) -> crate::telemetry::Graph {
    let pods = state.pods.borrow().clone();
    state
        .telemetry
        .graph(&state.store.snapshot(), &pods, Instant::now())
}

/// The graph now, then again whenever traffic changes it (at most every
/// [`GRAPH_MIN_INTERVAL`]) and at least every [`GRAPH_MAX_INTERVAL`].
async fn graph_stream(
    State(state): State<ApiState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = state.telemetry.subscribe();
    let stream = futures_util::stream::unfold(
        (state, events, true),
        |(state, mut events, first)| async move {
            if !first {
                let quiet = tokio::time::sleep(GRAPH_MAX_INTERVAL);
                tokio::pin!(quiet);
                tokio::select! {
                    () = &mut quiet => {}
                    _ = events.recv() => tokio::time::sleep(GRAPH_MIN_INTERVAL).await,
                }
                // Everything that arrived meanwhile is in this graph.
                while let Ok(_) | Err(TryRecvError::Lagged(_)) = events.try_recv() {}
            }
            let graph = current_graph(&state);
            let event = Event::default()
                .event("graph")
                .json_data(&graph)
                .unwrap_or_else(|_| Event::default().event("graph").data("{}"));
            Some((Ok(event), (state, events, false)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Access-log lines as the proxies print them, filtered, from now on.
async fn log_stream(
    State(state): State<ApiState>,
    Query(filter): Query<LogFilter>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = state.telemetry.subscribe();
    let stream =
        futures_util::stream::unfold((events, filter), |(mut events, filter)| async move {
            loop {
                match events.recv().await {
                    Ok(event) if filter.accepts(&event) => {
                        let event = Event::default()
                            .event("log")
                            .json_data(event.as_ref())
                            .unwrap_or_default();
                        return Some((Ok(event), (events, filter)));
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return None,
                }
            }
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

// === impl LogFilter ===

fn given(filter: Option<&String>) -> Option<&str> {
    filter.map(|f| f.trim()).filter(|f| !f.is_empty())
}

impl LogFilter {
    /// Whether `event` passes every filter given.
    pub fn accepts(&self, event: &LogEvent) -> bool {
        if let Some(workload) = given(self.workload.as_ref())
            && workload != event.workload
            && workload != event.pod
        {
            return false;
        }
        if let Some(flag) = given(self.flag.as_ref())
            && !(event.line.flags == flag || event.line.flags.split(',').any(|f| f == flag))
        {
            return false;
        }
        if let Some(status) = given(self.status.as_ref()) {
            let code = event.line.code.to_string();
            let class_matches = status.len() == 3
                && status.ends_with("xx")
                && code.len() == 3
                && code.starts_with(&status[..1]);
            if code != status && !class_matches {
                return false;
            }
        }
        true
    }
}

async fn proxies(State(state): State<ApiState>) -> Json<Vec<ProxyInfo>> {
    let types = [
        ("CDS", ResourceType::Cluster),
        ("LDS", ResourceType::Listener),
        ("EDS", ResourceType::ClusterLoadAssignment),
        ("RDS", ResourceType::RouteConfiguration),
    ];
    let proxies = state
        .discovery
        .proxy_status()
        .into_iter()
        .map(|status| {
            let mut sync = BTreeMap::new();
            let mut errors = BTreeMap::new();
            for (name, resource_type) in types {
                let state = status.sync(resource_type);
                if let crate::discovery::SyncState::Nacked { error } = &state {
                    errors.insert(name.to_owned(), error.clone());
                }
                sync.insert(name.to_owned(), state.to_string());
            }
            ProxyInfo {
                pod: status.node.pod.clone(),
                namespace: status.node.namespace.clone(),
                kind: match status.node.kind {
                    meshlab_proxy_config::ProxyKind::Router => "router",
                    meshlab_proxy_config::ProxyKind::Sidecar => "sidecar",
                }
                .to_owned(),
                version: status.version,
                sync,
                errors,
                certificate: state
                    .certificates
                    .get(&status.node.namespace, &status.node.pod)
                    .map(|issued| Certificate {
                        spiffe_id: format!(
                            "spiffe://cluster.local/ns/{}/sa/{}",
                            status.node.namespace, status.node.service_account
                        ),
                        expires: crate::resource::meta::Timestamp::from_system_time(
                            issued.not_after,
                        )
                        .to_string(),
                    }),
            }
        })
        .collect();
    Json(proxies)
}

async fn resources(State(state): State<ApiState>) -> Json<Vec<ObjectRef>> {
    let snapshot = state.store.snapshot();
    Json(
        snapshot
            .iter()
            .map(|(key, _)| {
                let info = key.kind.info();
                ObjectRef {
                    kind: info.kind.to_owned(),
                    group: info.group.to_owned(),
                    namespace: key.namespace.clone(),
                    name: key.name.clone(),
                }
            })
            .collect(),
    )
}

/// Sends the requests from the control container to the ingress gateway's pod on
/// the lab network, as a browser would: log in first when a user is given
/// (Bookinfo keeps the user in a `session` cookie), then one request after another.
async fn traffic(State(state): State<ApiState>, Json(request): Json<TrafficRequest>) -> Response {
    if request.requests == 0 || request.requests > MAX_TRAFFIC {
        return Failure::response(
            StatusCode::BAD_REQUEST,
            &format!(
                "cannot send {} requests: the traffic generator sends 1 to {MAX_TRAFFIC}",
                request.requests
            ),
            None,
        );
    }
    let path = request.path.as_deref().unwrap_or("/productpage").to_owned();
    if !path.starts_with('/') {
        return Failure::response(
            StatusCode::BAD_REQUEST,
            &format!("path {path:?} must start with /"),
            None,
        );
    }
    let gateway = state
        .pods
        .borrow()
        .iter()
        .filter(|p| is_gateway_pod(&p.labels) && p.is_ready())
        .find_map(|p| p.ip.as_deref().and_then(|ip| ip.parse().ok()));
    let Some(ip) = gateway else {
        return Failure::response(
            StatusCode::SERVICE_UNAVAILABLE,
            &"no ready ingress gateway pod to send traffic to",
            Some("`meshlab get pods -n istio-system` shows the gateway".to_owned()),
        );
    };
    let addr = SocketAddr::new(ip, GATEWAY_PORT);
    let started = Instant::now();
    let mut cookie = None;
    if let Some(user) = request.user.as_deref().filter(|u| !u.is_empty()) {
        let form = format!("username={}&passwd=password", form_encode(user));
        match send(addr, "POST", "/login", None, Bytes::from(form)).await {
            Ok((_, set_cookie)) => cookie = set_cookie,
            Err(err) => {
                return Failure::response(
                    StatusCode::BAD_GATEWAY,
                    &format!(
                        "cannot log in as {user:?} through the ingress gateway at {addr}: {err}"
                    ),
                    None,
                );
            }
        }
    }
    let mut codes = BTreeMap::new();
    for _ in 0..request.requests {
        let code = send(addr, "GET", &path, cookie.as_deref(), Bytes::new())
            .await
            .map_or(0, |(code, _)| code);
        *codes.entry(code).or_insert(0) += 1;
    }
    Json(TrafficReport {
        sent: request.requests,
        codes,
        millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
    .into_response()
}

fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One request on a fresh connection: the status, and the `session` cookie the
/// answer set, if any.
async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: Bytes,
) -> Result<(u16, Option<String>), Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
        .await??;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, "localhost")
        .header(http::header::USER_AGENT, "meshlab-dashboard");
    if method == "POST" {
        builder = builder.header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
    }
    if let Some(cookie) = cookie {
        builder = builder.header(http::header::COOKIE, cookie);
    }
    let response = tokio::time::timeout(
        Duration::from_secs(30),
        sender.send_request(builder.body(Full::new(body))?),
    )
    .await??;
    let status = response.status().as_u16();
    let session = response
        .headers()
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with("session="))
        .map(str::to_owned);
    // Read the page to its end, as a browser does, so the access log has its size.
    response.into_body().collect().await?;
    Ok((status, session))
}

#[cfg(test)]
mod tests;
