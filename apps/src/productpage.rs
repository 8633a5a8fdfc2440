//! Bookinfo's front end.
//!
//! productpage renders one book's page from two sequential calls: details, then
//! reviews. The timeouts and retries here are the lesson of Istio's fault-injection
//! task, so they follow the original exactly (spec §1.4): 3 s per call, reviews tried
//! twice on any failure or non-200, details and ratings once. The page is always a
//! 200; failures show up as text inside it.
//!
//! The user is kept in a signed `session` cookie, and every upstream call carries
//! `end-user: <user>` when someone is logged in — that header is what Istio's
//! `virtual-service-reviews-test-v2.yaml` matches on.

mod page;
mod session;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::env::{self, EnvError};
use crate::propagation;
use crate::upstream;

use self::session::SessionKey;

/// How long productpage waits for each upstream call (python-requests `timeout=3.0`).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// How many times productpage asks reviews before giving up (a loop of two).
pub const REVIEWS_ATTEMPTS: usize = 2;

const DETAILS_ERROR: &str = "Sorry, product details are currently unavailable for this book.";
const REVIEWS_ERROR: &str = "Sorry, product reviews are currently unavailable for this book.";
const RATINGS_ERROR: &str = "Sorry, product ratings are currently unavailable for this book.";

/// Where productpage finds its upstreams.
#[derive(Clone, Debug)]
pub struct Config {
    /// Base URL of details, e.g. `http://details:9080`.
    pub details: String,
    /// Base URL of reviews.
    pub reviews: String,
    /// Base URL of ratings (used only by `/api/v1/products/<id>/ratings`).
    pub ratings: String,
    /// Extra reviews calls fired (and ignored) before the real one; 0 = none.
    pub flood_factor: u32,
}

impl Config {
    /// The configuration the original reads: `SERVICES_DOMAIN`, `DETAILS_HOSTNAME`,
    /// `DETAILS_SERVICE_PORT`, `REVIEWS_*`, `RATINGS_*` and `FLOOD_FACTOR`.
    pub fn from_env() -> Result<Self, EnvError> {
        let domain = env::services_domain();
        let base = |host: &str, default_host: &str, port: &'static str| {
            Ok::<_, EnvError>(format!(
                "http://{}{domain}:{}",
                env::string(host, default_host),
                env::port(port, 9080)?
            ))
        };
        let flood_factor = match env::optional("FLOOD_FACTOR") {
            None => 0,
            Some(value) => value.trim().parse().map_err(|_| EnvError {
                name: "FLOOD_FACTOR",
                value,
                expected: "a whole number",
            })?,
        };
        Ok(Config {
            details: base("DETAILS_HOSTNAME", "details", "DETAILS_SERVICE_PORT")?,
            reviews: base("REVIEWS_HOSTNAME", "reviews", "REVIEWS_SERVICE_PORT")?,
            ratings: base("RATINGS_HOSTNAME", "ratings", "RATINGS_SERVICE_PORT")?,
            flood_factor,
        })
    }
}

struct AppState {
    config: Config,
    session: SessionKey,
    /// `request_result` counts by (destination app, response code).
    results: Mutex<BTreeMap<(&'static str, String), u64>>,
}

type Shared = State<Arc<AppState>>;

/// productpage's routes.
pub fn router(config: Config) -> Router {
    let state = Arc::new(AppState {
        config,
        session: SessionKey::random(),
        results: Mutex::default(),
    });
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/health", get(health))
        .route("/login", post(login))
        .route("/logout", get(logout))
        .route("/productpage", get(productpage))
        .route("/api/v1/products", get(products))
        .route("/api/v1/products/{id}", get(product_details))
        .route("/api/v1/products/{id}/reviews", get(product_reviews))
        .route("/api/v1/products/{id}/ratings", get(product_ratings))
        .route("/metrics", get(metrics))
        .route("/static/bookinfo.css", get(stylesheet))
        .with_state(state)
}

async fn index() -> Html<String> {
    Html(page::index())
}

async fn health() -> Html<&'static str> {
    Html("Product page is healthy")
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    username: Option<String>,
}

async fn login(State(state): Shared, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    let cookie = state.session.encode(form.username.as_deref());
    let mut response = back_to_referer(&headers).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("session={cookie}; HttpOnly; Path=/")) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout(State(state): Shared, headers: HeaderMap) -> Response {
    let cookie = state.session.encode(None);
    let mut response = back_to_referer(&headers).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("session={cookie}; HttpOnly; Path=/")) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// A 302 to the Referer, or to `/productpage` when there is none (our choice: the
/// original would redirect to the literal "None").
fn back_to_referer(headers: &HeaderMap) -> impl IntoResponse + use<> {
    let target = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("/productpage")
        .to_owned();
    (StatusCode::FOUND, [(header::LOCATION, target)])
}

async fn productpage(State(state): Shared, headers: HeaderMap) -> Html<String> {
    let user = state.session.user(&headers);
    let outgoing = propagation::productpage_headers(&headers, user.as_deref());
    let product_id = 0;
    let details = state.details(product_id, &outgoing).await;
    state.flood(product_id, &outgoing);
    let reviews = state.reviews(product_id, &outgoing).await;
    Html(page::productpage(
        &page::Product::default(),
        user.as_deref(),
        &details,
        &reviews,
    ))
}

async fn products() -> impl IntoResponse {
    axum::Json(json!([page::Product::default().to_json()]))
}

async fn product_details(
    State(state): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let outgoing =
        propagation::productpage_headers(&headers, state.session.user(&headers).as_deref());
    json_reply(state.details(&id, &outgoing).await)
}

async fn product_reviews(
    State(state): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let outgoing =
        propagation::productpage_headers(&headers, state.session.user(&headers).as_deref());
    json_reply(state.reviews(&id, &outgoing).await)
}

async fn product_ratings(
    State(state): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let outgoing =
        propagation::productpage_headers(&headers, state.session.user(&headers).as_deref());
    let url = format!("{}/ratings/{id}", state.config.ratings);
    json_reply(
        state
            .call("ratings", &url, &outgoing, 1, RATINGS_ERROR)
            .await,
    )
}

async fn metrics(State(state): Shared) -> impl IntoResponse {
    let mut text = String::from(
        "# HELP request_result_total Response code count\n# TYPE request_result_total counter\n",
    );
    let results = state.results.lock().unwrap_or_else(|e| e.into_inner());
    for ((app, code), count) in results.iter() {
        text.push_str(&format!(
            "request_result_total{{destination_app=\"{app}\",response_code=\"{code}\"}} {count}.0\n"
        ));
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../static/bookinfo.css"),
    )
}

/// An upstream's answer as productpage passes it on: the status (500 when nothing
/// came back) and a JSON body (the error object when the call failed).
#[derive(Debug)]
pub(crate) struct Upstream {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

fn json_reply(upstream: Upstream) -> Response {
    (upstream.status, axum::Json(upstream.body)).into_response()
}

// === impl AppState ===

impl AppState {
    async fn details(&self, id: impl std::fmt::Display, headers: &HeaderMap) -> Upstream {
        let url = format!("{}/details/{id}", self.config.details);
        self.call("details", &url, headers, 1, DETAILS_ERROR).await
    }

    async fn reviews(&self, id: impl std::fmt::Display, headers: &HeaderMap) -> Upstream {
        let url = format!("{}/reviews/{id}", self.config.reviews);
        self.call("reviews", &url, headers, REVIEWS_ATTEMPTS, REVIEWS_ERROR)
            .await
    }

    /// Fires `FLOOD_FACTOR` reviews calls whose answers nobody reads.
    fn flood(&self, id: u32, headers: &HeaderMap) {
        for _ in 0..self.config.flood_factor {
            let url = format!("{}/reviews/{id}", self.config.reviews);
            let headers = headers.clone();
            tokio::spawn(async move {
                let _ = upstream::get(&url, headers, CALL_TIMEOUT).await;
            });
        }
    }

    /// Calls `url` up to `attempts` times, stopping at the first 200.
    async fn call(
        &self,
        app: &'static str,
        url: &str,
        headers: &HeaderMap,
        attempts: usize,
        error: &str,
    ) -> Upstream {
        let mut last = None;
        for _ in 0..attempts {
            match upstream::get(url, headers.clone(), CALL_TIMEOUT).await {
                Ok(response) => {
                    self.count(app, response.status.as_str());
                    let ok = response.status == StatusCode::OK;
                    let body = serde_json::from_slice(&response.body).ok();
                    last = Some((response.status, body));
                    if ok {
                        break;
                    }
                }
                Err(err) => {
                    tracing::info!(%err, "upstream call failed");
                    self.count(app, "0");
                    last = None;
                }
            }
        }
        match last {
            Some((StatusCode::OK, Some(body))) => Upstream {
                status: StatusCode::OK,
                body,
            },
            Some((status, _)) => Upstream {
                status,
                body: json!({ "error": error }),
            },
            None => Upstream {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: json!({ "error": error }),
            },
        }
    }

    fn count(&self, app: &'static str, code: &str) {
        let mut results = self.results.lock().unwrap_or_else(|e| e.into_inner());
        *results.entry((app, code.to_owned())).or_default() += 1;
    }
}
