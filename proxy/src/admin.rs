//! The proxy's own HTTP endpoints, on the ports Istio uses:
//!
//! | port | path | what |
//! |---|---|---|
//! | 15000 (admin, loopback) | `/ready` | `LIVE` once a configuration is applied, else 503 `PRE_INITIALIZING` |
//! | | `/config_dump` | the running `ProxyConfig` as JSON |
//! | | `/clusters` | Envoy's text: `outbound\|9080\|\|reviews…::172.18.0.5:9080::health_flags::healthy` |
//! | | `/stats` | Envoy's `name: value` statistics (`?filter=<regex>` as Envoy's) |
//! | | `/stats/prometheus` | Istio's metrics and cluster statistics |
//! | 15021 (readiness) | `/healthz/ready` | 200 once a configuration is applied, else 503 |
//! | 15090 (metrics) | `/stats/prometheus` | as on the admin port |
//!
//! `meshlab proxy-config`, `pilot-agent request GET stats` in the labs and
//! Prometheus-style scrapers read these; the formats follow Envoy's so the
//! learner's notes apply. The config dump is meshlab's own resource model (the
//! same types `meshlab proxy-config -o json` shows), not Envoy's protobuf JSON.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::body::ProxyBody;
use crate::sidecar::Shared;

/// Which of the proxy's own servers a port runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Surface {
    /// Envoy's admin interface (15000).
    Admin,
    /// The readiness probe (15021).
    Readiness,
    /// The Prometheus scrape port (15090).
    Metrics,
}

/// Serves `surface` on `socket` until the task is dropped.
pub(crate) async fn serve(socket: TcpListener, surface: Surface, shared: Arc<Shared>) {
    loop {
        let stream = match socket.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::warn!(?surface, %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = answer(surface, &shared, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The answer to one request.
pub(crate) fn answer(
    surface: Surface,
    shared: &Shared,
    request: &Request<Incoming>,
) -> Response<ProxyBody> {
    let path = request.uri().path();
    let query = request.uri().query().unwrap_or_default();
    let ready = shared.is_ready();
    match (surface, path) {
        (Surface::Admin, "/ready") => {
            if ready {
                text(StatusCode::OK, "LIVE\n".to_owned())
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "PRE_INITIALIZING\n".to_owned(),
                )
            }
        }
        (Surface::Readiness, "/healthz/ready") => {
            if ready {
                text(StatusCode::OK, String::new())
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the proxy has not received its configuration yet\n".to_owned(),
                )
            }
        }
        (Surface::Admin, "/config_dump") => {
            let snapshot = shared.snapshot.borrow().clone();
            match serde_json::to_string_pretty(&*snapshot.config) {
                Ok(json) => {
                    let mut response = text(StatusCode::OK, json + "\n");
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    response
                }
                Err(err) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot dump the configuration: {err}\n"),
                ),
            }
        }
        (Surface::Admin, "/clusters") => {
            let snapshot = shared.snapshot.borrow().clone();
            let mut out = String::new();
            for cluster in snapshot.clusters.iter() {
                cluster.render(&mut out);
            }
            text(StatusCode::OK, out)
        }
        (Surface::Admin, "/stats") => {
            let filter = match query_param(query, "filter").map(|f| regex::Regex::new(&f)) {
                None => None,
                Some(Ok(filter)) => Some(filter),
                Some(Err(err)) => {
                    return text(StatusCode::BAD_REQUEST, format!("invalid regex: {err}\n"));
                }
            };
            let snapshot = shared.snapshot.borrow().clone();
            let gauges: Vec<_> = snapshot
                .clusters
                .iter()
                .map(|cluster| (cluster, cluster.gauges()))
                .collect();
            let body = shared.stats.render_envoy(
                gauges
                    .into_iter()
                    .map(|(cluster, gauges)| (&*cluster.name, &*cluster.stats, gauges)),
                filter.as_ref(),
            );
            text(StatusCode::OK, body)
        }
        (Surface::Admin | Surface::Metrics, "/stats/prometheus") => {
            let snapshot = shared.snapshot.borrow().clone();
            let gauges: Vec<_> = snapshot
                .clusters
                .iter()
                .map(|cluster| (cluster, cluster.gauges()))
                .collect();
            let body = shared.stats.render_prometheus(
                gauges
                    .into_iter()
                    .map(|(cluster, gauges)| (&*cluster.name, &*cluster.stats, gauges)),
            );
            text(StatusCode::OK, body)
        }
        (Surface::Admin, "/") => text(
            StatusCode::OK,
            "meshlab proxy admin: /ready /config_dump /clusters /stats /stats/prometheus\n"
                .to_owned(),
        ),
        _ => text(StatusCode::NOT_FOUND, format!("no such endpoint: {path}\n")),
    }
}

fn text(status: StatusCode, body: String) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    response
}

/// The value of `name` in a query string, `%XX`-decoded (`+` as space).
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| decode(value))
    })
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
