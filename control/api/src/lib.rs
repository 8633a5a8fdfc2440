//! The wire contract between the control plane and the proxies.
//!
//! This crate will hold the protobuf definitions of meshlab's Envoy-shaped aggregated
//! discovery stream (Listener, RouteConfiguration, Cluster, ClusterLoadAssignment,
//! Secret, with versions, nonces, ACK and NACK) and the generated code, checked in so
//! that nobody needs `protoc` to build. Protobuf types stay at this edge: each side
//! converts them once into its own plain Rust types.
