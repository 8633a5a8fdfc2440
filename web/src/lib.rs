//! meshlab's browser dashboard, served by the control-plane container.
//!
//! This crate will own the static assets (plain HTML, CSS and JavaScript with an SVG
//! graph, embedded in the binary) and the HTTP routes behind them: the live mesh graph,
//! workloads and proxies, Istio configuration, labs and the access log.
