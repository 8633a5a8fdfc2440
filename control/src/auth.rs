//! The API token: the control API and the dashboard answer only those who hold it.
//!
//! Both listen on the host's loopback, but any local process (or a web page in the
//! learner's browser making requests to `localhost`) could reach them, and the API
//! can start containers. `meshlab up` writes a random token, readable by the user
//! only, and gives it to the control container; the CLI sends it as
//! `Authorization: Bearer …`. The browser gets it once from the URL that
//! `meshlab dashboard` opens (`/?token=…`): the answer sets it as an `HttpOnly`,
//! `SameSite=Strict` cookie and redirects to the same page without it, so the token
//! leaves the address bar and other sites' pages cannot send it. Anything else gets
//! 401.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};

use crate::api::Failure;

/// The cookie that carries the token in the browser.
pub const COOKIE: &str = "meshlab_token";

/// The environment variable the control container reads the token from.
pub const TOKEN_ENV: &str = "MESHLAB_API_TOKEN";

/// A token, compared in constant time.
#[derive(Clone)]
pub struct ApiToken(String);

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(…)")
    }
}

// === impl ApiToken ===

impl ApiToken {
    /// The token.
    pub fn new(token: impl Into<String>) -> Self {
        ApiToken(token.into())
    }

    /// Whether `candidate` is the token, in time independent of where they differ.
    pub fn matches(&self, candidate: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), candidate.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// `router`, answering 401 to requests without the token.
pub fn guard(router: Router, token: ApiToken) -> Router {
    router.layer(middleware::from_fn_with_state(token, check))
}

async fn check(State(token): State<ApiToken>, request: Request, next: Next) -> Response {
    if let Some(offered) = query_token(request.uri().query()) {
        if !token.matches(&offered) {
            return refuse();
        }
        // Trade the token in the address bar for a cookie, and drop it from the URL.
        let location = remaining_query(request.uri().path(), request.uri().query());
        let cookie = format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/", token.0);
        let mut response = StatusCode::SEE_OTHER.into_response();
        let headers = response.headers_mut();
        if let (Ok(location), Ok(cookie)) = (
            HeaderValue::from_str(&location),
            HeaderValue::from_str(&cookie),
        ) {
            headers.insert(header::LOCATION, location);
            headers.insert(header::SET_COOKIE, cookie);
        }
        return response;
    }
    if presented(request.headers()).is_some_and(|t| token.matches(t)) {
        return next.run(request).await;
    }
    refuse()
}

fn refuse() -> Response {
    let failure = Failure {
        errors: vec!["missing or wrong API token".to_owned()],
        hint: Some(
            "open the dashboard with `meshlab dashboard`; the CLI reads the token that \
             `meshlab up` wrote in the user's config directory"
                .to_owned(),
        ),
        diagnostics: Vec::new(),
    };
    (StatusCode::UNAUTHORIZED, Json(failure)).into_response()
}

/// The token from `Authorization: Bearer …` or the cookie.
fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

fn query_token(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "token")
        .map(|(_, value)| value.to_owned())
}

/// `path` with the query minus `token`.
fn remaining_query(path: &str, query: Option<&str>) -> String {
    let rest: Vec<&str> = query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("token="))
        .collect();
    if rest.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", rest.join("&"))
    }
}

#[cfg(test)]
mod tests;
