//! Starting an app: which app, which port, and serving until the container stops.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use axum::Router;
use tokio::net::TcpListener;

use crate::env::EnvError;

/// The apps `meshlab run app NAME` can start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum App {
    /// Bookinfo's front end (9080).
    Productpage,
    /// Bookinfo's book details (9080); v2 calls `www.googleapis.com`.
    Details,
    /// Bookinfo's reviews (9080); v1, v2 or v3 by `ENABLE_RATINGS` and `STAR_COLOR`.
    Reviews,
    /// Bookinfo's ratings (9080); the variant by `SERVICE_VERSION`.
    Ratings,
    /// go-httpbin's response shapes (8080).
    Httpbin,
    /// An idle client workload to `exec` curl from.
    Sleep,
}

impl App {
    /// Every app, in the order `--help` lists them.
    pub const ALL: [App; 6] = [
        App::Productpage,
        App::Details,
        App::Reviews,
        App::Ratings,
        App::Httpbin,
        App::Sleep,
    ];

    /// The app's name as used on the command line and in image names.
    pub fn name(self) -> &'static str {
        match self {
            App::Productpage => "productpage",
            App::Details => "details",
            App::Reviews => "reviews",
            App::Ratings => "ratings",
            App::Httpbin => "httpbin",
            App::Sleep => "sleep",
        }
    }

    /// The port the original image listens on; `None` for sleep, which listens on none.
    pub fn default_port(self) -> Option<u16> {
        match self {
            App::Httpbin => Some(8080),
            App::Sleep => None,
            _ => Some(9080),
        }
    }

    /// The app's routes, configured from the environment as the original image is.
    pub fn router_from_env(self) -> Result<Option<Router>, RunError> {
        Ok(Some(match self {
            App::Productpage => crate::productpage::router(crate::productpage::Config::from_env()?),
            App::Details => crate::details::router(crate::details::Config::from_env()),
            App::Reviews => crate::reviews::router(crate::reviews::Config::from_env()?),
            App::Ratings => crate::ratings::router(crate::ratings::Config::from_env()?),
            App::Httpbin => crate::httpbin::router(),
            App::Sleep => return Ok(None),
        }))
    }
}

impl std::str::FromStr for App {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        App::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| format!("unknown app {s:?}"))
    }
}

/// Why an app could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A configuration variable had a value the app cannot use.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// The ratings variant asked for needs something the lab does not provide.
    #[error("{0}")]
    Unsupported(String),
    /// The port could not be bound.
    #[error("cannot listen on {addr}: {source} (hint: is another process using the port?)")]
    Bind {
        /// The address tried.
        addr: SocketAddr,
        /// The system's reason.
        source: io::Error,
    },
    /// Serving failed.
    #[error("serving failed: {0}")]
    Serve(#[source] io::Error),
}

/// Runs `app` on `port` (or its default port) until SIGTERM or Ctrl-C.
pub async fn run(app: App, port: Option<u16>) -> Result<(), RunError> {
    let Some(router) = app.router_from_env()? else {
        tracing::info!(app = app.name(), "idle until stopped");
        shutdown_signal().await;
        return Ok(());
    };
    let port = port.or(app.default_port()).unwrap_or(9080);
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Bind { addr, source })?;
    tracing::info!(app = app.name(), %addr, "listening");
    serve(listener, router).await.map_err(RunError::Serve)
}

/// Serves `router` on `listener` until SIGTERM or Ctrl-C.
pub async fn serve(listener: TcpListener, router: Router) -> io::Result<()> {
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    tokio::select! {
        served = axum::serve(listener, service) => served,
        () = shutdown_signal() => Ok(()),
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(err) => {
            tracing::warn!(%err, "cannot watch SIGTERM; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
