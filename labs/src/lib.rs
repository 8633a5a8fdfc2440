//! meshlab's guided labs.
//!
//! This crate will own the lab format (one folder per lab: prose, manifests, verify
//! checks), the Istio-style sample manifests the labs apply, and the runner shared by
//! the CLI, the integration tests and the dashboard: it applies each step, sends the
//! step's requests and checks what came back with statistical bounds.

pub mod samples;
