//! httpbin with go-httpbin's response shapes, for the endpoints Istio's tasks use.
//!
//! Istio's samples switched to go-httpbin (port 8080) in 2024, and the shapes the
//! docs show are its shapes: header values are arrays of strings under Go's
//! canonical names (`"X-Forwarded-Client-Cert": ["By=…"]`), keys sorted, `Host`
//! included. Learners compare what they see with the docs, so these match.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};

/// The longest `/delay/<n>` waits, in seconds; larger values are capped.
pub const MAX_DELAY_SECS: f64 = 10.0;

/// httpbin's routes.
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/get", get(get_request))
        .route("/headers", get(headers))
        .route("/ip", get(ip))
        .route("/user-agent", get(user_agent))
        .route("/status/{code}", any(status))
        .route("/delay/{seconds}", any(delay))
        .route("/anything", any(anything))
        .route("/anything/{*rest}", any(anything))
        .route("/post", axum::routing::post(anything))
        .route("/put", axum::routing::put(anything))
        .route("/patch", axum::routing::patch(anything))
        .route("/delete", axum::routing::delete(anything))
        .layer(axum::middleware::from_fn(log_request))
}

/// One line per request on stdout, as go-httpbin and gunicorn's `--access-logfile -`
/// print them: Istio's mirroring task reads the mirrored requests there.
async fn log_request(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        status = response.status().as_u16(),
        %method,
        %uri,
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// What a request looked like, as go-httpbin reports it.
struct Seen {
    args: BTreeMap<String, Vec<String>>,
    headers: BTreeMap<String, Vec<String>>,
    method: String,
    origin: String,
    url: String,
}

impl Seen {
    fn of(peer: SocketAddr, method: &Method, uri: &Uri, headers: &HeaderMap) -> Self {
        let mut args: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (key, value) in form_pairs(uri.query().unwrap_or_default()) {
            args.entry(key).or_default().push(value);
        }
        let mut canonical: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in headers {
            canonical
                .entry(canonical_name(name.as_str()))
                .or_default()
                .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| uri.authority().map(|a| a.as_str()))
            .unwrap_or_default();
        let scheme = headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("http");
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        // The first address of X-Forwarded-For, else the peer.
        let origin = headers
            .get("x-forwarded-for")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.split(',').next())
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|| peer.ip().to_string());
        Seen {
            args,
            headers: canonical,
            method: method.to_string(),
            origin,
            url: format!("{scheme}://{host}{path}"),
        }
    }

    /// The shape of `/get`.
    fn without_body(self) -> Value {
        json!({
            "args": self.args,
            "headers": self.headers,
            "method": self.method,
            "origin": self.origin,
            "url": self.url,
        })
    }

    /// The shape of `/anything` and the methods with a body.
    fn with_body(self, headers: &HeaderMap, body: &Bytes) -> Value {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let mut form: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut json_body = Value::Null;
        if content_type.starts_with("application/x-www-form-urlencoded") {
            for (key, value) in form_pairs(&String::from_utf8_lossy(body)) {
                form.entry(key).or_default().push(value);
            }
        } else if content_type.starts_with("application/json") {
            json_body = serde_json::from_slice(body).unwrap_or(Value::Null);
        }
        let mut value = self.without_body();
        value["data"] = json!(String::from_utf8_lossy(body));
        value["files"] = json!({});
        value["form"] = json!(form);
        value["json"] = json_body;
        value
    }
}

/// Go's canonical header name: upper case after each `-`, lower case elsewhere.
fn canonical_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// `application/x-www-form-urlencoded` pairs, percent-decoded.
fn form_pairs(input: &str) -> impl Iterator<Item = (String, String)> + '_ {
    input.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

type Peer = ConnectInfo<SocketAddr>;

async fn index() -> Html<&'static str> {
    Html(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>httpbin</title></head><body>\n\
         <h1>httpbin</h1>\n<p>A simple HTTP request and response service (meshlab's built-in, \
         with go-httpbin's response shapes).</p>\n<ul>\n\
         <li><a href=\"/get\">/get</a> the request's query, headers, origin and URL</li>\n\
         <li><a href=\"/headers\">/headers</a> the request's headers</li>\n\
         <li><a href=\"/ip\">/ip</a> the caller's address</li>\n\
         <li><a href=\"/user-agent\">/user-agent</a> the caller's user agent</li>\n\
         <li>/status/:code a response with that status</li>\n\
         <li>/delay/:n a response after n seconds (at most 10)</li>\n\
         <li><a href=\"/anything\">/anything</a> the whole request, body included</li>\n\
         </ul>\n</body></html>\n",
    )
}

async fn get_request(
    ConnectInfo(peer): Peer,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Json<Value> {
    Json(Seen::of(peer, &method, &uri, &headers).without_body())
}

async fn headers(
    ConnectInfo(peer): Peer,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Json<Value> {
    Json(json!({ "headers": Seen::of(peer, &method, &uri, &headers).headers }))
}

async fn ip(ConnectInfo(peer): Peer, method: Method, uri: Uri, headers: HeaderMap) -> Json<Value> {
    Json(json!({ "origin": Seen::of(peer, &method, &uri, &headers).origin }))
}

async fn user_agent(headers: HeaderMap) -> Json<Value> {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    Json(json!({ "user-agent": agent }))
}

async fn anything(
    ConnectInfo(peer): Peer,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Json<Value> {
    Json(Seen::of(peer, &method, &uri, &headers).with_body(&headers, &body))
}

#[derive(Serialize)]
struct Problem {
    status_code: u16,
    error: &'static str,
    detail: String,
}

fn bad_request(detail: String) -> Response {
    let problem = Problem {
        status_code: 400,
        error: "Bad Request",
        detail,
    };
    (StatusCode::BAD_REQUEST, Json(problem)).into_response()
}

async fn status(Path(code): Path<String>) -> Response {
    let Some(status) = code
        .parse::<u16>()
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .filter(|s| (100..=599).contains(&s.as_u16()))
    else {
        return bad_request(format!("invalid status code: {code:?}"));
    };
    let text = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    match status.as_u16() {
        301 | 302 | 303 | 305 | 307 => {
            (status, text, [(header::LOCATION, "/redirect/1")]).into_response()
        }
        401 => (
            status,
            text,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"Fake Realm\"")],
        )
            .into_response(),
        418 => (status, text, "I'm a teapot!").into_response(),
        _ => (status, text).into_response(),
    }
}

async fn delay(
    Path(seconds): Path<String>,
    Query(_): Query<BTreeMap<String, String>>,
    ConnectInfo(peer): Peer,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(wait) = seconds
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
    else {
        return bad_request(format!("invalid delay: {seconds:?}"));
    };
    tokio::time::sleep(Duration::from_secs_f64(wait.min(MAX_DELAY_SECS))).await;
    Json(Seen::of(peer, &method, &uri, &headers).with_body(&headers, &body)).into_response()
}

#[cfg(test)]
mod tests;
