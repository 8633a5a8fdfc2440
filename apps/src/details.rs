//! Bookinfo's book details.
//!
//! v1 answers from memory. v2 (`ENABLE_EXTERNAL_BOOK_SERVICE=true`) asks Google Books
//! at `www.googleapis.com` — over plain HTTP on port 80 when `DO_NOT_ENCRYPT=true`,
//! so that the sidecar can originate TLS as Istio's egress task shows, otherwise
//! over HTTPS. In the lab that host is simulated; any failure becomes a 400 with the
//! reason, which productpage shows as "Error fetching product details" (spec §2).

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde::Serialize;
use serde_json::{Value, json};

use crate::env;
use crate::propagation;
use crate::upstream;

/// The ISBN v2 looks up, whatever product id was asked for.
const ISBN: &str = "0486424618";

/// How long v2 waits for Google Books (the original's read timeout).
pub const EXTERNAL_TIMEOUT: Duration = Duration::from_secs(5);

/// details' configuration.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Base URL of the external book service (v2), `None` for v1.
    pub external_books: Option<String>,
}

impl Config {
    /// Reads `ENABLE_EXTERNAL_BOOK_SERVICE` and `DO_NOT_ENCRYPT`.
    pub fn from_env() -> Self {
        let external_books = env::flag("ENABLE_EXTERNAL_BOOK_SERVICE").then(|| {
            if env::flag("DO_NOT_ENCRYPT") {
                "http://www.googleapis.com:80".to_owned()
            } else {
                "https://www.googleapis.com:443".to_owned()
            }
        });
        Config { external_books }
    }
}

/// The details JSON, keys in the original's order.
#[derive(Debug, Serialize)]
struct BookDetails {
    id: i64,
    author: Value,
    year: Value,
    #[serde(rename = "type")]
    kind: Value,
    pages: Value,
    publisher: Value,
    language: Value,
    #[serde(rename = "ISBN-10")]
    isbn_10: Value,
    #[serde(rename = "ISBN-13")]
    isbn_13: Value,
}

/// details' routes: `/health` and everything under `/details`, for any method, as
/// WEBrick's mounts answer.
pub fn router(config: Config) -> Router {
    Router::new()
        .route("/health", any(health))
        .route("/details", any(details))
        .route("/details/{*rest}", any(details))
        .with_state(config)
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "Details is healthy" }))
}

async fn details(State(config): State<Config>, uri: Uri, headers: HeaderMap) -> Response {
    let Some(id) = product_id(uri.path()) else {
        return error("please provide numeric product id");
    };
    match &config.external_books {
        None => Json(v1_details(id)).into_response(),
        Some(base) => match external_details(base, id, &headers).await {
            Ok(details) => Json(details).into_response(),
            Err(message) => error(&message),
        },
    }
}

fn error(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

/// The last non-empty path segment as an integer.
fn product_id(path: &str) -> Option<i64> {
    path.rsplit('/')
        .find(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
}

fn v1_details(id: i64) -> BookDetails {
    BookDetails {
        id,
        author: json!("William Shakespeare"),
        year: json!(1595),
        kind: json!("paperback"),
        pages: json!(200),
        publisher: json!("PublisherA"),
        language: json!("English"),
        isbn_10: json!("1234567890"),
        isbn_13: json!("123-1234567890"),
    }
}

async fn external_details(
    base: &str,
    id: i64,
    incoming: &HeaderMap,
) -> Result<BookDetails, String> {
    let url = format!("{base}/books/v1/volumes?q=isbn:{ISBN}");
    let headers = propagation::service_headers(incoming);
    let response = upstream::get(&url, headers, EXTERNAL_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    if !response.status.is_success() {
        return Err(format!("{} answered {}", base, response.status));
    }
    let books: Value = serde_json::from_slice(&response.body)
        .map_err(|e| format!("the book service sent invalid JSON: {e}"))?;
    let info = &books["items"][0]["volumeInfo"];
    if !info.is_object() {
        return Err("the book service returned no book".to_owned());
    }
    let isbn = |kind: &str| {
        info["industryIdentifiers"]
            .as_array()
            .and_then(|ids| ids.iter().find(|i| i["type"] == kind))
            .map_or(Value::Null, |i| i["identifier"].clone())
    };
    Ok(BookDetails {
        id,
        author: info["authors"][0].clone(),
        year: info["publishedDate"].clone(),
        kind: json!(if info["printType"] == "BOOK" {
            "paperback"
        } else {
            "unknown"
        }),
        pages: info["pageCount"].clone(),
        publisher: info["publisher"].clone(),
        language: json!(if info["language"] == "en" {
            "English"
        } else {
            "unknown"
        }),
        isbn_10: isbn("ISBN_10"),
        isbn_13: isbn("ISBN_13"),
    })
}
