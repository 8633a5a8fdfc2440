//! Bookinfo's reviews, in its three versions.
//!
//! The version is not a name but two switches baked into each image: v1 has
//! `ENABLE_RATINGS=false`; v2 calls ratings and colours stars black; v3 colours them
//! red. The star colour also picks how long reviews waits for ratings — 10 s for
//! black, 2.5 s otherwise — which is why the fault-injection task's 7 s delay breaks
//! v2 behind productpage's 6 s but v3 copes (spec §3). Reviews never fails because
//! ratings did: it answers 200 with an error object per review.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::env::{self, EnvError};
use crate::propagation;
use crate::upstream;

/// How long reviews waits for ratings when stars are black (v2).
pub const BLACK_RATINGS_TIMEOUT: Duration = Duration::from_millis(10_000);
/// How long reviews waits for ratings for any other colour (v3).
pub const OTHER_RATINGS_TIMEOUT: Duration = Duration::from_millis(2_500);

const RATINGS_UNAVAILABLE: &str = "Ratings service is currently unavailable";

const REVIEWS: [(&str, &str); 2] = [
    (
        "Reviewer1",
        "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!",
    ),
    (
        "Reviewer2",
        "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.",
    ),
];

/// reviews' configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Whether reviews calls ratings (`ENABLE_RATINGS`).
    pub ratings_enabled: bool,
    /// The stars' colour (`STAR_COLOR`, default black).
    pub star_color: String,
    /// Base URL of ratings.
    pub ratings: String,
    /// This pod's name, shown as "Reviews served by:".
    pub podname: String,
    /// The cluster's name (`CLUSTER_NAME`); `None` is reported as the string "null".
    pub clustername: Option<String>,
}

impl Config {
    /// Reads `ENABLE_RATINGS`, `STAR_COLOR`, `SERVICES_DOMAIN`, `RATINGS_HOSTNAME`,
    /// `RATINGS_SERVICE_PORT`, `HOSTNAME` and `CLUSTER_NAME`.
    pub fn from_env() -> Result<Self, EnvError> {
        Ok(Config {
            ratings_enabled: env::flag("ENABLE_RATINGS"),
            star_color: env::string("STAR_COLOR", "black"),
            ratings: format!(
                "http://{}{}:{}",
                env::string("RATINGS_HOSTNAME", "ratings"),
                env::services_domain(),
                env::port("RATINGS_SERVICE_PORT", 9080)?
            ),
            podname: env::hostname(),
            clustername: env::optional("CLUSTER_NAME"),
        })
    }

    /// How long to wait for ratings: keyed to the star colour, as in the original.
    pub fn ratings_timeout(&self) -> Duration {
        if self.star_color == "black" {
            BLACK_RATINGS_TIMEOUT
        } else {
            OTHER_RATINGS_TIMEOUT
        }
    }
}

/// reviews' routes.
pub fn router(config: Config) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/reviews/{id}", get(reviews))
        .with_state(config)
}

async fn health() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status": "Reviews is healthy"}"#,
    )
}

async fn reviews(
    State(config): State<Config>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    // JAX-RS binds the path parameter to an int: anything else is a 404.
    let Ok(id) = id.parse::<i32>() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let ratings = if config.ratings_enabled {
        fetch_ratings(&config, id, &headers).await
    } else {
        None
    };
    let reviews: Vec<Value> = REVIEWS
        .iter()
        .map(|(reviewer, text)| {
            let mut review = json!({ "reviewer": reviewer, "text": text });
            if config.ratings_enabled {
                review["rating"] = match ratings.as_ref().and_then(|r| r[*reviewer].as_i64()) {
                    Some(stars) => json!({ "stars": stars, "color": config.star_color }),
                    None => json!({ "error": RATINGS_UNAVAILABLE }),
                };
            }
            review
        })
        .collect();
    Json(json!({
        "id": id.to_string(),
        "podname": config.podname,
        "clustername": config.clustername.as_deref().unwrap_or("null"),
        "reviews": reviews,
    }))
    .into_response()
}

/// The `ratings` object of a 200 answer, or `None` when ratings failed.
async fn fetch_ratings(config: &Config, id: i32, incoming: &HeaderMap) -> Option<Value> {
    let url = format!("{}/ratings/{id}", config.ratings);
    let headers = propagation::service_headers(incoming);
    match upstream::get(&url, headers, config.ratings_timeout()).await {
        Ok(response) if response.status == StatusCode::OK => {
            let body: Value = serde_json::from_slice(&response.body).ok()?;
            body.get("ratings").filter(|r| r.is_object()).cloned()
        }
        Ok(response) => {
            tracing::info!(status = %response.status, "ratings answered an error");
            None
        }
        Err(err) => {
            tracing::info!(%err, "ratings call failed");
            None
        }
    }
}
