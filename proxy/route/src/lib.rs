//! Route tables as pure data: no I/O, no tokio.
//!
//! This crate will own what a proxy decides for one request before any byte moves:
//! which virtual host and route match (authority, URI, headers, query parameters),
//! which weighted destination is picked, which fault applies, how retries and timeouts
//! are set. Keeping it free of I/O lets the control plane's simulation tests and the
//! labs use the exact same decisions as the proxy.
