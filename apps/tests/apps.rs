//! Bookinfo and httpbin over real sockets on 127.0.0.1, wired as in a lab.
//!
//! Upstreams are our own apps; where a test needs to see what an app sent or to make
//! an upstream misbehave, it puts a small peer of its own in the upstream's place (a
//! recorder or a server that accepts and never answers).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use axum::routing::any;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use meshlab_apps::{details, httpbin, productpage, ratings, reviews, serve};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

// === harness ===

async fn start(router: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, router));
    format!("http://{addr}")
}

/// A peer that accepts connections and never answers.
async fn hanging() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

/// A ratings stand-in that records the headers of every request it gets.
async fn recording_ratings() -> (String, Arc<Mutex<Vec<HeaderMap>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let router = Router::new().fallback(any(move |headers: HeaderMap| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(headers);
            axum::Json(json!({ "id": 0, "ratings": { "Reviewer1": 5, "Reviewer2": 4 } }))
        }
    }));
    (start(router).await, seen)
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

async fn call(method: Method, url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let uri: Uri = url.parse().unwrap();
    let authority = uri.authority().unwrap().to_string();
    let stream = TcpStream::connect(authority.as_str()).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(uri.path_and_query().unwrap().as_str())
        .header("host", authority)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn get(url: &str) -> Reply {
    call(Method::GET, url, &[], "").await
}

fn reviews_config(version: &str, ratings: &str) -> reviews::Config {
    reviews::Config {
        ratings_enabled: version != "v1",
        star_color: if version == "v3" { "red" } else { "black" }.to_owned(),
        ratings: ratings.to_owned(),
        podname: format!("reviews-{version}-abc12"),
        clustername: None,
    }
}

struct Bookinfo {
    productpage: String,
}

/// productpage in front of the given details and reviews.
async fn productpage_with(details: &str, reviews: &str) -> Bookinfo {
    let config = productpage::Config {
        details: details.to_owned(),
        reviews: reviews.to_owned(),
        ratings: "http://127.0.0.1:1".to_owned(),
        flood_factor: 0,
    };
    Bookinfo {
        productpage: start(productpage::router(config)).await,
    }
}

/// The four apps with the given reviews version.
async fn bookinfo(version: &str) -> Bookinfo {
    let ratings = start(ratings::router(ratings::Config::default())).await;
    let reviews = start(reviews::router(reviews_config(version, &ratings))).await;
    let details = start(details::router(details::Config::default())).await;
    productpage_with(&details, &reviews).await
}

const STAR: &str = "glyphicon glyphicon-star";

// === productpage ===

#[tokio::test]
async fn the_page_shows_each_reviews_version() {
    let v1 = get(&format!("{}/productpage", bookinfo("v1").await.productpage)).await;
    assert_eq!(v1.status, StatusCode::OK);
    for text in [
        "<title>Simple Bookstore App</title>",
        "Book Details",
        "Book Reviews",
        "Reviews served by:",
        "reviews-v1-abc12",
        "William Shakespeare",
        "1234567890",
    ] {
        assert!(v1.body.contains(text), "v1 page lacks {text:?}");
    }
    assert!(!v1.body.contains(STAR), "v1 must show no stars");

    let v2 = get(&format!("{}/productpage", bookinfo("v2").await.productpage)).await;
    assert_eq!(v2.body.matches(STAR).count(), 9, "5 + 4 filled stars");
    assert!(v2.body.contains("text-black-500"));
    assert!(!v2.body.contains("text-red-500"));

    let v3 = get(&format!("{}/productpage", bookinfo("v3").await.productpage)).await;
    assert_eq!(v3.body.matches(STAR).count(), 9);
    assert!(v3.body.contains("text-red-500"));
}

#[tokio::test]
async fn logging_in_as_jason_sends_end_user_through_reviews_to_ratings() {
    let (ratings, seen) = recording_ratings().await;
    let reviews = start(reviews::router(reviews_config("v2", &ratings))).await;
    let details = start(details::router(details::Config::default())).await;
    let app = productpage_with(&details, &reviews).await;

    let login = call(
        Method::POST,
        &format!("{}/login", app.productpage),
        &[("content-type", "application/x-www-form-urlencoded")],
        "username=jason&passwd=password",
    )
    .await;
    assert_eq!(login.status, StatusCode::FOUND);
    assert_eq!(login.headers["location"], "/productpage");
    let set_cookie = login.headers["set-cookie"].to_str().unwrap();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("session="), "{set_cookie}");

    let page = call(
        Method::GET,
        &format!("{}/productpage", app.productpage),
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert!(page.body.contains("jason"), "the navbar names the user");
    assert!(page.body.contains("Sign out"));
    let headers = seen.lock().unwrap().pop().expect("ratings was called");
    assert_eq!(headers["end-user"], "jason");

    let anonymous = get(&format!("{}/productpage", app.productpage)).await;
    assert!(anonymous.body.contains("Sign in"));
    let headers = seen.lock().unwrap().pop().expect("ratings was called");
    assert!(headers.get("end-user").is_none());

    let logout = call(
        Method::GET,
        &format!("{}/logout", app.productpage),
        &[
            ("cookie", &cookie),
            ("referer", "http://x/productpage?u=normal"),
        ],
        "",
    )
    .await;
    assert_eq!(logout.status, StatusCode::FOUND);
    assert_eq!(logout.headers["location"], "http://x/productpage?u=normal");
}

#[tokio::test]
async fn trace_headers_reach_ratings() {
    let (ratings, seen) = recording_ratings().await;
    let reviews = start(reviews::router(reviews_config("v3", &ratings))).await;
    let details = start(details::router(details::Config::default())).await;
    let app = productpage_with(&details, &reviews).await;
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let page = call(
        Method::GET,
        &format!("{}/productpage", app.productpage),
        &[
            ("x-request-id", "req-42"),
            ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
            ("x-b3-spanid", "e457b5a2e4d86bd1"),
            ("x-b3-parentspanid", "05e3ac9a4f6e3b90"),
            ("x-b3-sampled", "1"),
            ("traceparent", traceparent),
            ("x-not-propagated", "1"),
        ],
        "",
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    let headers = seen.lock().unwrap().pop().expect("ratings was called");
    assert_eq!(headers["x-request-id"], "req-42");
    assert_eq!(headers["x-b3-traceid"], "80f198ee56343ba864fe8b2a57d3eff7");
    assert_eq!(headers["x-b3-spanid"], "e457b5a2e4d86bd1");
    assert_eq!(headers["x-b3-sampled"], "1");
    assert!(
        headers.get("x-b3-parentspanid").is_none(),
        "productpage drops the parent span"
    );
    assert_eq!(headers["traceparent"], traceparent);
    assert!(headers.get("x-not-propagated").is_none());
}

#[tokio::test]
async fn a_hanging_reviews_costs_two_three_second_attempts() {
    let details = start(details::router(details::Config::default())).await;
    let app = productpage_with(&details, &hanging().await).await;
    let started = Instant::now();
    let page = get(&format!("{}/productpage", app.productpage)).await;
    let elapsed = started.elapsed();
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Error fetching product reviews"));
    assert!(
        page.body
            .contains("Sorry, product reviews are currently unavailable for this book.")
    );
    assert!(page.body.contains("Book Details"));
    assert!(
        (Duration::from_millis(5_800)..Duration::from_millis(8_000)).contains(&elapsed),
        "took {elapsed:?}, expected about 6 s"
    );
}

#[tokio::test]
async fn a_hanging_details_costs_one_three_second_attempt() {
    let ratings = start(ratings::router(ratings::Config::default())).await;
    let reviews = start(reviews::router(reviews_config("v1", &ratings))).await;
    let app = productpage_with(&hanging().await, &reviews).await;
    let started = Instant::now();
    let page = get(&format!("{}/productpage", app.productpage)).await;
    let elapsed = started.elapsed();
    assert!(page.body.contains("Error fetching product details"));
    assert!(
        page.body
            .contains("Sorry, product details are currently unavailable for this book.")
    );
    assert!(page.body.contains("Book Reviews"));
    assert!(
        (Duration::from_millis(2_900)..Duration::from_millis(4_500)).contains(&elapsed),
        "took {elapsed:?}, expected about 3 s"
    );
}

#[tokio::test]
async fn the_api_proxies_upstream_status_and_bodies() {
    let app = bookinfo("v2").await;
    let products = get(&format!("{}/api/v1/products", app.productpage)).await;
    assert_eq!(products.json()[0]["title"], "The Comedy of Errors");
    let details = get(&format!("{}/api/v1/products/0", app.productpage)).await;
    assert_eq!(details.json()["ISBN-10"], "1234567890");
    let bad = get(&format!("{}/api/v1/products/abc", app.productpage)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.json()["error"],
        "Sorry, product details are currently unavailable for this book."
    );
    let reviews = get(&format!("{}/api/v1/products/0/reviews", app.productpage)).await;
    assert_eq!(reviews.json()["reviews"][0]["rating"]["stars"], 5);
    // This productpage's ratings points at a closed port: no response → 500.
    let ratings = get(&format!("{}/api/v1/products/0/ratings", app.productpage)).await;
    assert_eq!(ratings.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        ratings.json()["error"],
        "Sorry, product ratings are currently unavailable for this book."
    );

    let health = get(&format!("{}/health", app.productpage)).await;
    assert_eq!(health.body, "Product page is healthy");
    let index = get(&format!("{}/", app.productpage)).await;
    assert!(index.body.contains(
        "Hello! This is a simple bookstore application consisting of three services as shown below"
    ));
    let metrics = get(&format!("{}/metrics", app.productpage)).await;
    assert!(
        metrics
            .body
            .contains(r#"request_result_total{destination_app="details",response_code="200"}"#),
        "{}",
        metrics.body
    );
    let css = get(&format!("{}/static/bookinfo.css", app.productpage)).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        !css.body.contains("http"),
        "the stylesheet links nothing outside the lab"
    );
}

// === reviews ===

async fn reviews_against_hanging_ratings(version: &str) -> (Value, Duration) {
    let reviews = start(reviews::router(reviews_config(version, &hanging().await))).await;
    let started = Instant::now();
    let reply = get(&format!("{reviews}/reviews/0")).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "reviews never fails because ratings did"
    );
    (reply.json(), started.elapsed())
}

#[tokio::test]
async fn reviews_v2_waits_ten_seconds_for_ratings() {
    let (body, elapsed) = reviews_against_hanging_ratings("v2").await;
    assert_eq!(
        body["reviews"][0]["rating"]["error"],
        "Ratings service is currently unavailable"
    );
    assert!(
        (Duration::from_millis(9_900)..Duration::from_millis(12_000)).contains(&elapsed),
        "took {elapsed:?}, expected about 10 s"
    );
}

#[tokio::test]
async fn reviews_v3_waits_two_and_a_half_seconds_for_ratings() {
    let (body, elapsed) = reviews_against_hanging_ratings("v3").await;
    assert_eq!(
        body["reviews"][1]["rating"]["error"],
        "Ratings service is currently unavailable"
    );
    assert!(
        (Duration::from_millis(2_450)..Duration::from_millis(4_000)).contains(&elapsed),
        "took {elapsed:?}, expected about 2.5 s"
    );
}

#[tokio::test]
async fn the_page_of_v3_with_hanging_ratings_says_ratings_are_unavailable() {
    let reviews = start(reviews::router(reviews_config("v3", &hanging().await))).await;
    let details = start(details::router(details::Config::default())).await;
    let app = productpage_with(&details, &reviews).await;
    let page = get(&format!("{}/productpage", app.productpage)).await;
    assert!(
        page.body
            .contains("Ratings service is currently unavailable")
    );
    assert!(!page.body.contains(STAR));
}

#[tokio::test]
async fn reviews_answers_in_the_original_shape() {
    let ratings = start(ratings::router(ratings::Config::default())).await;
    let reviews = start(reviews::router(reviews_config("v1", &ratings))).await;
    let body = get(&format!("{reviews}/reviews/7")).await.json();
    assert_eq!(body["id"], "7", "the id is a string in reviews' answer");
    assert_eq!(body["clustername"], "null");
    assert_eq!(body["reviews"][0]["reviewer"], "Reviewer1");
    assert!(
        body["reviews"][0].get("rating").is_none(),
        "v1 has no ratings"
    );
    assert_eq!(
        get(&format!("{reviews}/reviews/seven")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&format!("{reviews}/health")).await.body,
        r#"{"status": "Reviews is healthy"}"#
    );
}

// === details ===

#[tokio::test]
async fn details_wants_a_numeric_id() {
    let details = start(details::router(details::Config::default())).await;
    let bad = get(&format!("{details}/details/abc")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body, r#"{"error":"please provide numeric product id"}"#);
    assert_eq!(
        get(&format!("{details}/details")).await.status,
        StatusCode::BAD_REQUEST
    );
    let ok = get(&format!("{details}/details/1")).await;
    assert_eq!(
        ok.body,
        r#"{"id":1,"author":"William Shakespeare","year":1595,"type":"paperback","pages":200,"publisher":"PublisherA","language":"English","ISBN-10":"1234567890","ISBN-13":"123-1234567890"}"#
    );
    assert_eq!(
        get(&format!("{details}/health")).await.body,
        r#"{"status":"Details is healthy"}"#
    );
}

#[tokio::test]
async fn details_v2_maps_the_external_book_service() {
    let books = Router::new().fallback(any(|uri: Uri| async move {
        assert_eq!(
            uri.path_and_query().unwrap().as_str(),
            "/books/v1/volumes?q=isbn:0486424618"
        );
        axum::Json(json!({ "items": [{ "volumeInfo": {
            "authors": ["William Shakespeare"], "publishedDate": "2002-02-06",
            "printType": "BOOK", "pageCount": 128, "publisher": "Dover Publications",
            "language": "en",
            "industryIdentifiers": [
                { "type": "ISBN_10", "identifier": "0486424618" },
                { "type": "ISBN_13", "identifier": "9780486424613" }
            ]
        }}]}))
    }));
    let books = start(books).await;
    let details = start(details::router(details::Config {
        external_books: Some(books),
    }))
    .await;
    let body = get(&format!("{details}/details/0")).await.json();
    assert_eq!(body["year"], "2002-02-06");
    assert_eq!(body["pages"], 128);
    assert_eq!(body["ISBN-13"], "9780486424613");
    assert_eq!(body["language"], "English");

    let offline = start(details::router(details::Config {
        external_books: Some("http://127.0.0.1:1".to_owned()),
    }))
    .await;
    let failed = get(&format!("{offline}/details/0")).await;
    assert_eq!(failed.status, StatusCode::BAD_REQUEST);
    assert!(failed.json()["error"].is_string());
}

// === ratings ===

#[tokio::test]
async fn ratings_keeps_what_is_posted() {
    let ratings = start(ratings::router(ratings::Config::default())).await;
    let default = get(&format!("{ratings}/ratings/3")).await.json();
    assert_eq!(
        default,
        json!({ "id": 3, "ratings": { "Reviewer1": 5, "Reviewer2": 4 } })
    );
    let posted = call(
        Method::POST,
        &format!("{ratings}/ratings/3"),
        &[],
        r#"{"Reviewer1":1,"Reviewer2":2}"#,
    )
    .await;
    assert_eq!(posted.status, StatusCode::OK);
    let after = get(&format!("{ratings}/ratings/3")).await.json();
    assert_eq!(
        after,
        json!({ "id": 3, "ratings": { "Reviewer1": 1, "Reviewer2": 2 } })
    );
    let invalid = call(
        Method::POST,
        &format!("{ratings}/ratings/3"),
        &[],
        "not json",
    )
    .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid.json()["error"], "please provide valid ratings JSON");
    let nan = get(&format!("{ratings}/ratings/x")).await;
    assert_eq!(nan.status, StatusCode::BAD_REQUEST);
    assert_eq!(nan.json()["error"], "please provide numeric product ID");
    assert_eq!(
        get(&format!("{ratings}/health")).await.body,
        r#"{"status":"Ratings is healthy"}"#
    );
}

#[tokio::test]
async fn faulty_ratings_fails_about_half_the_time() {
    let config = ratings::Config {
        version: ratings::Version::Faulty,
    };
    let ratings = start(ratings::router(config)).await;
    let mut failures = 0;
    for _ in 0..200 {
        let reply = get(&format!("{ratings}/ratings/0")).await;
        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(reply.json()["error"], "Service unavailable");
            failures += 1;
        }
    }
    // Binomial(200, 0.5): outside 60..=140 has a probability below 1e-8.
    assert!((60..=140).contains(&failures), "{failures} of 200 failed");
}

// === httpbin ===

#[tokio::test]
async fn httpbin_answers_in_go_httpbin_shapes() {
    let httpbin = start(httpbin::router()).await;
    let host = httpbin.trim_start_matches("http://").to_owned();
    let headers = call(
        Method::GET,
        &format!("{httpbin}/headers"),
        &[("x-b3-sampled", "1")],
        "",
    )
    .await;
    let body = headers.json();
    assert_eq!(body["headers"]["Host"], json!([host]));
    assert_eq!(body["headers"]["X-B3-Sampled"], json!(["1"]));

    let get_reply = get(&format!("{httpbin}/get?show_env=1&a=1&a=2"))
        .await
        .json();
    assert_eq!(get_reply["args"]["a"], json!(["1", "2"]));
    assert_eq!(get_reply["method"], "GET");
    assert_eq!(get_reply["origin"], "127.0.0.1");
    assert_eq!(
        get_reply["url"],
        format!("http://{host}/get?show_env=1&a=1&a=2")
    );

    assert_eq!(
        get(&format!("{httpbin}/ip")).await.json(),
        json!({ "origin": "127.0.0.1" })
    );

    let teapot = get(&format!("{httpbin}/status/418")).await;
    assert_eq!(teapot.status.as_u16(), 418);
    assert_eq!(teapot.body, "I'm a teapot!");
    assert_eq!(
        get(&format!("{httpbin}/status/503")).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get(&format!("{httpbin}/status/abc")).await.status,
        StatusCode::BAD_REQUEST
    );

    let anything = call(
        Method::POST,
        &format!("{httpbin}/anything/x"),
        &[("content-type", "application/json")],
        r#"{"k":"v"}"#,
    )
    .await
    .json();
    assert_eq!(anything["json"], json!({ "k": "v" }));
    assert_eq!(anything["method"], "POST");
    assert_eq!(anything["data"], r#"{"k":"v"}"#);

    let started = Instant::now();
    let delayed = get(&format!("{httpbin}/delay/1")).await;
    assert_eq!(delayed.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_secs(1));

    assert!(
        get(&format!("{httpbin}/"))
            .await
            .body
            .contains("<h1>httpbin</h1>")
    );
}

// === independence ===

#[test]
fn apps_depend_on_no_meshlab_crate() {
    let manifest = include_str!("../Cargo.toml");
    let offending: Vec<_> = manifest
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("meshlab"))
        .collect();
    assert!(
        offending.is_empty(),
        "Bookinfo must not know it is meshed: {offending:?}"
    );
}
