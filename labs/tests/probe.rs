//! The probe against Bookinfo running in this process (no mesh): it logs in, counts
//! markers, reports statuses and curl's exit codes.

use std::sync::atomic::{AtomicU32, Ordering};

use meshlab_apps::{details, productpage, ratings, reviews, serve};
use meshlab_labs::check::{BLACK, STAR};
use meshlab_labs::probe::{self, Spec};
use tokio::net::TcpListener;

async fn spawn(router: axum::Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, router));
    url
}

/// productpage in front of reviews v2 (black stars), details and ratings.
async fn bookinfo() -> String {
    let ratings = spawn(ratings::router(ratings::Config::default())).await;
    let reviews = spawn(reviews::router(reviews::Config {
        ratings_enabled: true,
        star_color: "black".to_owned(),
        ratings: ratings.clone(),
        podname: "reviews-v2".to_owned(),
        clustername: None,
    }))
    .await;
    let details = spawn(details::router(details::Config::default())).await;
    spawn(productpage::router(productpage::Config {
        details,
        reviews,
        ratings,
        flood_factor: 0,
    }))
    .await
}

fn spec(url: String) -> Spec {
    Spec {
        url,
        count: 6,
        concurrency: 3,
        login: None,
        headers: vec!["x-lab: probe".to_owned()],
        method: None,
        timeout_ms: 10_000,
        markers: vec![STAR.to_owned(), BLACK.to_owned(), "no such text".to_owned()],
    }
}

#[tokio::test]
async fn requests_report_status_markers_and_exit_codes() {
    let origin = bookinfo().await;
    let mut logged_in = spec(format!("{origin}/productpage"));
    logged_in.login = Some("jason".to_owned());
    let done = AtomicU32::new(0);
    let outcomes = probe::run(&logged_in, |n| done.store(n, Ordering::SeqCst))
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 6);
    assert_eq!(done.load(Ordering::SeqCst), 6);
    for outcome in &outcomes {
        assert_eq!((outcome.status, outcome.exit), (200, 0));
        assert_eq!(outcome.matched, [STAR, BLACK]);
    }

    let missing = probe::run(&spec(format!("{origin}/nothing-here")), |_| {})
        .await
        .unwrap();
    assert!(missing.iter().all(|o| o.status == 404 && o.exit == 0));

    // Nothing listens: no response, curl's exit 7.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let refused = probe::run(&spec(url), |_| {}).await.unwrap();
    assert!(
        refused.iter().all(|o| o.status == 0 && o.exit == 7),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_failed_login_is_an_error_that_names_the_user() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut spec = spec(format!(
        "http://{}/productpage",
        closed.local_addr().unwrap()
    ));
    drop(closed);
    spec.login = Some("jason".to_owned());
    let err = probe::run(&spec, |_| {}).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot log in to Bookinfo as \"jason\""),
        "{err}"
    );
}
