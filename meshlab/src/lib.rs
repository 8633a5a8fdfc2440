//! meshlab's command line.
//!
//! One binary plays every part: the learner's CLI on the host, and inside containers
//! the control plane, the proxies and the apps (`meshlab run <role>`). Keeping a
//! single static binary means an image is that file and nothing else, built locally
//! in a second with no registry.

mod cli;
mod client;
mod dashboard;
mod lab;
mod labs;
mod pause;
mod resources;
mod token;
mod workloads;

pub use cli::main;
