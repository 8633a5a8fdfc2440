//! The simulated hosts and what each one serves.

use std::future::Future;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::service::TowerToHyperService;

use super::books;

/// Every host the simulated internet answers for. The container's DNS aliases and
/// the certificate's SANs must name exactly these.
pub const HOSTS: [&str; 5] = [
    "httpbin.org",
    "www.google.com",
    "edition.cnn.com",
    "www.googleapis.com",
    "raw.githubusercontent.com",
];

/// One router per simulated host, built once and shared by every connection.
pub(super) struct Sites {
    httpbin: Router,
    google: Router,
    cnn: Router,
    googleapis: Router,
    github: Router,
}

impl Sites {
    pub(super) fn new() -> Self {
        Sites {
            httpbin: crate::httpbin::router(),
            google: page("www.google.com"),
            cnn: page("edition.cnn.com"),
            googleapis: books::router(),
            github: super::istio_samples::router(),
        }
    }

    /// The router of `host` (lower case, no port), `None` for a host we do not simulate.
    fn router(&self, host: &str) -> Option<&Router> {
        match host {
            "httpbin.org" => Some(&self.httpbin),
            "www.google.com" => Some(&self.google),
            "edition.cnn.com" => Some(&self.cnn),
            "www.googleapis.com" => Some(&self.googleapis),
            "raw.githubusercontent.com" => Some(&self.github),
            _ => None,
        }
    }

    /// The response of the site for `host` to `request`, or a 404 naming the host
    /// (400 if the request named none).
    pub(super) fn answer(
        &self,
        host: Option<&str>,
        request: Request<Incoming>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        // `Err` holds the answer when no site is there to give one.
        let site = match host {
            Some(host) => self.router(host).cloned().ok_or_else(|| no_such_host(host)),
            None => Err(no_host()),
        };
        async move {
            match site {
                Ok(router) => match TowerToHyperService::new(router).call(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
                Err(response) => response,
            }
        }
    }
}

/// A small HTML page saying it is meshlab's stand-in for `host`, on every path, for
/// `GET` and `HEAD`.
fn page(host: &'static str) -> Router {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{host} (simulated by meshlab)</title></head><body>\n\
         <h1>{host}</h1>\n\
         <p>This is meshlab's simulated {host}. The lab has no internet access: this \
         page comes from a server on the lab network that stands in for the real site, \
         so that your requests can reach it, or be stopped on the way, as they would be \
         in a cluster.</p>\n</body></html>\n"
    );
    let handler = get(move || {
        let html = html.clone();
        async move { Html(html) }
    });
    Router::new()
        .route("/", handler.clone())
        .route("/{*path}", handler)
}

fn no_such_host(host: &str) -> Response<Body> {
    let text = format!(
        "meshlab's simulated internet has no host {host} (it simulates {})\n",
        HOSTS.join(", ")
    );
    (StatusCode::NOT_FOUND, plain(), text).into_response()
}

fn no_host() -> Response<Body> {
    let text = "meshlab's simulated internet needs to know which host you want \
                (send a Host header)\n";
    (StatusCode::BAD_REQUEST, plain(), text).into_response()
}

fn plain() -> [(header::HeaderName, &'static str); 1] {
    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")]
}
