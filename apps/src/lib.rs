//! The workloads of the lab, written as plain, mesh-unaware Rust programs.
//!
//! Bookinfo (productpage, details, reviews, ratings), httpbin and the sleep client
//! behave as Istio's samples do, fact by fact from `shared/spec/bookinfo.md`: the same
//! ports, timeouts, retries, header propagation and page strings. The labs observe
//! these apps through the mesh, so any drift here would teach the wrong lesson.
//!
//! Nothing in this crate knows about proxies: apps call `http://reviews:9080/...`
//! with ordinary sockets and let the pod's capture and sidecar do the rest. That is
//! why it depends on no other meshlab crate (checked by `tests/independence.rs`).
//!
//! [`curl`] is a curl-compatible client that every container carries, so that the
//! commands of the Istio tasks (`curl -sS -o /dev/null -w '%{http_code}' …`) work
//! unchanged, including curl's exit codes.

pub mod curl;
pub mod details;
pub mod fortio;
pub mod gen_jwt;
pub mod httpbin;
pub mod internet;
pub mod productpage;
pub mod ratings;
pub mod reviews;
pub mod sleep;

mod env;
mod propagation;
mod server;
mod tls;
mod upstream;

pub use env::EnvError;
pub use server::{App, RunError, run, serve};
