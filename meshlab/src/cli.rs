//! Parsing the command line and dispatching to the crates that do the work.

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use meshlab_apps::App;
use tracing_subscriber::EnvFilter;

/// A self-contained service-mesh lab: Istio's YAML and Istio's behaviour, on your
/// laptop, in seconds.
#[derive(Debug, Parser)]
#[command(name = "meshlab", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send an HTTP request as curl does (the flags Istio's tasks use, curl's exit codes).
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Curl {
        /// curl's arguments, e.g. `-sS -o /dev/null -w '%{http_code}' http://productpage:9080/`.
        #[arg(allow_hyphen_values = true, trailing_var_arg = true, num_args = 0..)]
        args: Vec<OsString>,
    },
    /// Run one of meshlab's roles in the foreground (used inside the lab's containers).
    Run {
        #[command(subcommand)]
        role: Role,
    },
}

#[derive(Debug, Subcommand)]
enum Role {
    /// Run a built-in app: productpage, details, reviews, ratings, httpbin or sleep.
    ///
    /// Apps read the environment variables of Istio's sample images, e.g.
    /// `DETAILS_HOSTNAME`, `REVIEWS_SERVICE_PORT`, `ENABLE_RATINGS`, `STAR_COLOR`,
    /// `SERVICE_VERSION`.
    App {
        /// Which app.
        #[arg(value_parser = parse_app)]
        app: App,
        /// The port to listen on (default: 9080 for Bookinfo, 8080 for httpbin).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Hold a pod's network namespace and do nothing else, until stopped.
    Pause,
    /// Run all of Bookinfo in this process, without a mesh, with productpage on
    /// `http://localhost:PORT/productpage` (a quick look before `meshlab up`).
    Bookinfo {
        /// productpage's port on 127.0.0.1.
        #[arg(long, default_value_t = 9080)]
        port: u16,
        /// Which reviews version productpage calls: v1 (no stars), v2 (black) or v3 (red).
        #[arg(long, default_value = "v3", value_parser = ["v1", "v2", "v3"])]
        reviews: String,
    },
}

fn parse_app(s: &str) -> Result<App, String> {
    s.parse().map_err(|e| {
        let names: Vec<_> = App::ALL.iter().map(|a| a.name()).collect();
        format!("{e} (expected one of: {})", names.join(", "))
    })
}

/// Runs the CLI with `args` (program name first) and returns the process exit code.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Curl { args } => {
            ExitCode::from(u8::try_from(meshlab_apps::curl::main(args)).unwrap_or(1))
        }
        Command::Run { role } => report(run_role(role)),
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_role(role: Role) -> anyhow::Result<()> {
    match role {
        Role::App { app, port } => block_on(meshlab_apps::run(app, port))?
            .with_context(|| format!("{} stopped", app.name())),
        Role::Pause => match meshlab_apps::sleep::main(vec!["infinity".into()]) {
            0 => Ok(()),
            code => anyhow::bail!("pause stopped with status {code}"),
        },
        Role::Bookinfo { port, reviews } => block_on(run_bookinfo(port, &reviews))?,
    }
}

/// Runs a long-lived role on a multi-threaded runtime, logging at info.
fn block_on<F: Future>(future: F) -> anyhow::Result<F::Output> {
    init_tracing("info");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(future))
}

/// Starts ratings, details and the chosen reviews on loopback ports picked by the
/// system, and productpage on `port` in front of them.
async fn run_bookinfo(port: u16, version: &str) -> anyhow::Result<()> {
    use meshlab_apps::{details, productpage, ratings, reviews, serve};
    use tokio::net::TcpListener;

    async fn spawn(router: axum::Router) -> anyhow::Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(serve(listener, router));
        Ok(url)
    }

    let ratings = spawn(ratings::router(ratings::Config::default())).await?;
    let reviews = spawn(reviews::router(reviews::Config {
        ratings_enabled: version != "v1",
        star_color: if version == "v3" { "red" } else { "black" }.to_owned(),
        ratings: ratings.clone(),
        podname: format!("reviews-{version}"),
        clustername: None,
    }))
    .await?;
    let details = spawn(details::router(details::Config::default())).await?;
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| {
            format!("cannot listen on 127.0.0.1:{port} (hint: pick another with --port)")
        })?;
    let router = productpage::router(productpage::Config {
        details,
        reviews,
        ratings,
        flood_factor: 0,
    });
    println!("Bookinfo (reviews {version}, no mesh): http://localhost:{port}/productpage");
    serve(listener, router).await?;
    Ok(())
}

/// Logs to stderr; `MESHLAB_LOG` (or `RUST_LOG`) overrides the level, e.g. `debug`.
fn init_tracing(default: &str) {
    let filter = std::env::var("MESHLAB_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
