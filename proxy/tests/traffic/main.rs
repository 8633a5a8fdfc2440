//! The proxy's data path with real sockets on 127.0.0.1: Bookinfo apps and httpbin
//! from `meshlab-apps` as upstreams, configurations built by hand as the control
//! plane would send them, and the observations the Istio tasks make.

mod support;

mod admin;
mod authz;
mod credentials;
mod mtls;
mod peer;
mod resilience;
mod routing;
mod tcp;
mod tls;
