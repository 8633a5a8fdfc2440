//! Bookinfo's ratings, and the test variants the retry and outlier-detection labs use.
//!
//! `SERVICE_VERSION` picks the behaviour (spec §4.2): v1 serves 5 and 4 stars, or
//! what was POSTed for that product; `v-faulty` fails half the requests with 503;
//! `v-delayed` answers half of them after 7 s; `v-unavailable` alternates every
//! minute between working and 503; `v-unhealthy` alternates every 15 minutes and
//! also fails `/health`. v2 reads MongoDB or MySQL, which the lab does not run, so
//! it is refused at start-up instead of failing every request.
//!
//! Paths are matched as the original's dispatcher does: any path starting with
//! `/ratings/`, the product id being the last `/`-separated piece read as
//! JavaScript's `parseInt` reads it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::env;
use crate::server::RunError;

/// How long `v-delayed` holds a delayed answer.
pub const DELAY: Duration = Duration::from_secs(7);
/// How often `v-unavailable` flips between working and failing.
pub const UNAVAILABLE_PERIOD: Duration = Duration::from_secs(60);
/// How often `v-unhealthy` flips between healthy and unhealthy.
pub const UNHEALTHY_PERIOD: Duration = Duration::from_secs(15 * 60);

/// Which ratings variant runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Version {
    /// Static ratings, POSTs kept in memory.
    #[default]
    V1,
    /// Half the requests fail with 503.
    Faulty,
    /// Half the requests are answered after [`DELAY`].
    Delayed,
    /// Working and 503 by turns, a minute each, working first.
    Unavailable,
    /// Healthy and unhealthy by turns, 15 minutes each, healthy first.
    Unhealthy,
}

/// ratings' configuration.
#[derive(Clone, Copy, Debug, Default)]
pub struct Config {
    /// The variant.
    pub version: Version,
}

impl Config {
    /// Reads `SERVICE_VERSION`; unknown values behave as v1, as in the original.
    pub fn from_env() -> Result<Self, RunError> {
        let version = match env::optional("SERVICE_VERSION").as_deref() {
            Some("v-faulty") => Version::Faulty,
            Some("v-delayed") => Version::Delayed,
            Some("v-unavailable") => Version::Unavailable,
            Some("v-unhealthy") => Version::Unhealthy,
            Some(v @ ("v2" | "v2-mysql" | "v2-mysql-vm")) => {
                return Err(RunError::Unsupported(format!(
                    "ratings {v} reads its ratings from MongoDB or MySQL, which meshlab does not run \
                     (hint: use ratings v1, or a test variant: v-faulty, v-delayed, v-unavailable, v-unhealthy)"
                )));
            }
            _ => Version::V1,
        };
        Ok(Config { version })
    }
}

struct AppState {
    version: Version,
    started: Instant,
    posted: Mutex<HashMap<i64, Value>>,
}

/// ratings' routes.
pub fn router(config: Config) -> Router {
    let state = Arc::new(AppState {
        version: config.version,
        started: Instant::now(),
        posted: Mutex::default(),
    });
    Router::new()
        .route("/health", get(health))
        .fallback(ratings)
        .with_state(state)
}

impl AppState {
    /// Whether the toggling variants are in their failing half right now.
    fn failing_phase(&self, period: Duration) -> bool {
        let elapsed = self.started.elapsed().as_secs() / period.as_secs().max(1);
        elapsed % 2 == 1
    }

    fn unhealthy(&self) -> bool {
        self.version == Version::Unhealthy && self.failing_phase(UNHEALTHY_PERIOD)
    }
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    if state.unhealthy() {
        let body = json!({ "status": "Ratings is not healthy" });
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
    }
    Json(json!({ "status": "Ratings is healthy" })).into_response()
}

async fn ratings(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    if !uri.path().starts_with("/ratings/") || !(method == Method::GET || method == Method::POST) {
        return StatusCode::NOT_FOUND.into_response();
    }
    // The original splits the whole request URL, query included.
    let url = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let Some(id) = js_parse_int(url.rsplit('/').next().unwrap_or_default()) else {
        return bad_request("please provide numeric product ID");
    };
    if method == Method::POST {
        let Ok(ratings) = serde_json::from_slice::<Value>(&body) else {
            return bad_request("please provide valid ratings JSON");
        };
        let stored = json!({ "id": id, "ratings": ratings });
        let mut posted = state.posted.lock().unwrap_or_else(|e| e.into_inner());
        posted.insert(id, stored.clone());
        return Json(stored).into_response();
    }
    let failing = match state.version {
        Version::Faulty => fastrand::bool(),
        Version::Unavailable => state.failing_phase(UNAVAILABLE_PERIOD),
        Version::Unhealthy => state.unhealthy(),
        Version::V1 | Version::Delayed => false,
    };
    if failing {
        let body = json!({ "error": "Service unavailable" });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    if state.version == Version::Delayed && fastrand::bool() {
        tokio::time::sleep(DELAY).await;
    }
    let posted = state
        .posted
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
        .cloned();
    let ratings = posted
        .unwrap_or_else(|| json!({ "id": id, "ratings": { "Reviewer1": 5, "Reviewer2": 4 } }));
    Json(ratings).into_response()
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

/// JavaScript's `parseInt(s)` for base 10: leading blanks, a sign, then as many
/// digits as there are; `None` where it gives NaN.
fn js_parse_int(s: &str) -> Option<i64> {
    let s = s.trim_start();
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let value: i64 = rest[..digits].parse().ok()?;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests;
