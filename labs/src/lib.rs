//! meshlab's guided labs.
//!
//! A lab is a folder under `labs/` (the [`format`]): prose, the Istio-style manifests
//! each step applies, and verify checks. The [`runner`] executes a lab over an
//! [`runner::Environment`] (the control plane implements it, so the CLI, the tests
//! and the dashboard share one runner): it applies each step, sends the step's
//! requests with the [`probe`], judges what came back with the statistics of
//! [`check`], and restores the environment it found. [`catalog`] embeds the shipped
//! labs; [`junit`] reports for CI; [`samples`] are the manifests `meshlab up` applies.

pub mod catalog;
pub mod check;
pub mod format;
pub mod junit;
pub mod probe;
pub mod runner;
pub mod samples;
