//! The token guard as a table of requests and what each gets.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use tower::ServiceExt;

use super::*;

fn app() -> Router {
    guard(
        Router::new()
            .route("/", get(|| async { "page" }))
            .route("/api/v1/pods", get(|| async { "[]" })),
        ApiToken::new("s3cret"),
    )
}

async fn call(request: Request<Body>) -> Response {
    app().oneshot(request).await.unwrap()
}

#[tokio::test]
async fn requests_without_the_token_get_401() {
    for request in [
        Request::get("/").body(Body::empty()).unwrap(),
        Request::get("/api/v1/pods").body(Body::empty()).unwrap(),
        Request::get("/api/v1/pods")
            .header(header::AUTHORIZATION, "Bearer wrong")
            .body(Body::empty())
            .unwrap(),
        Request::get("/api/v1/pods")
            .header(header::COOKIE, "meshlab_token=s3cre")
            .body(Body::empty())
            .unwrap(),
        Request::get("/?token=wrong").body(Body::empty()).unwrap(),
        Request::get("/nowhere").body(Body::empty()).unwrap(),
    ] {
        let uri = request.uri().clone();
        let response = call(request).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{uri}");
        assert!(
            response.headers().get(header::SET_COOKIE).is_none(),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn the_bearer_header_or_the_cookie_lets_requests_through() {
    let bearer = Request::get("/api/v1/pods")
        .header(header::AUTHORIZATION, "Bearer s3cret")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(bearer).await.status(), StatusCode::OK);
    let cookie = Request::get("/")
        .header(header::COOKIE, "theme=dark; meshlab_token=s3cret")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(cookie).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_token_in_the_url_becomes_a_strict_http_only_cookie() {
    let response = call(Request::get("/?token=s3cret").body(Body::empty()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/");
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
    assert_eq!(
        cookie,
        "meshlab_token=s3cret; HttpOnly; SameSite=Strict; Path=/"
    );
    let kept = call(
        Request::get("/?page=labs&token=s3cret")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(kept.headers()[header::LOCATION], "/?page=labs");
}

#[test]
fn tokens_compare_whole() {
    let token = ApiToken::new("abc");
    assert!(token.matches("abc"));
    assert!(!token.matches("abd"));
    assert!(!token.matches("ab"));
    assert!(!token.matches("abcd"));
    assert!(!token.matches(""));
    assert_eq!(format!("{token:?}"), "ApiToken(…)");
}
