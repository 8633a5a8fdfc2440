//! meshlab's browser dashboard: the page, served by the control-plane container.
//!
//! Plain HTML, CSS and JavaScript with an SVG graph, embedded in the binary with
//! `include_str!`: no npm, no framework, no CDN, so the dashboard works offline and
//! builds where only `cargo` exists. The page reads everything from the control
//! API (`/api/v1/…`, in `meshlab-control`): the live graph and access log as
//! server-sent events, proxies, configuration, labs.
//!
//! This crate depends on no meshlab crate; the `meshlab` binary merges [`router`]
//! with the control API's router, and the control plane puts both behind the API
//! token (see `meshlab_control::auth`).

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

/// The page.
pub const INDEX_HTML: &str = include_str!("../assets/index.html");
/// Its script.
pub const APP_JS: &str = include_str!("../assets/app.js");
/// Its style sheet.
pub const APP_CSS: &str = include_str!("../assets/app.css");
/// Its icon.
pub const FAVICON_SVG: &str = include_str!("../assets/favicon.svg");

/// The dashboard's routes: `/` and its assets.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX_HTML)))
        .route(
            "/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/app.css",
            get(|| asset("text/css; charset=utf-8", APP_CSS)),
        )
        .route("/favicon.svg", get(|| asset("image/svg+xml", FAVICON_SVG)))
}

async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; style-src 'self'; img-src 'self' data:",
            ),
        ],
        body,
    )
}

#[cfg(test)]
mod tests;
