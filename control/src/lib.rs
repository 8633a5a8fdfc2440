//! The meshlab control plane, running as the `meshlab-control` container.
//!
//! It will own, in the order configuration flows through it:
//! - the resource store: Kubernetes-style and Istio kinds, typed and validated,
//!   persisted with atomic writes in the lab's state volume;
//! - the workload reconciler: Deployments become pods made of Docker containers;
//! - the service registry: Services, endpoints, ServiceEntries;
//! - translation: per-proxy listeners, routes, clusters, endpoints and secrets, named
//!   as Istio names them;
//! - the discovery server streaming that configuration to proxies (gRPC);
//! - the certificate authority issuing SPIFFE identities;
//! - the HTTP API used by the CLI and the dashboard.
//!
//! A manifest travels [`yaml`] (one door for YAML: parse, locate) → [`resource`]
//! (typed, `deny_unknown_fields`) → [`validate`] (what Istio and Kubernetes reject) →
//! [`store`] (all-or-nothing apply, persistence, snapshots), and [`output`] prints what
//! kubectl would. From the store, the [`reconciler`] makes [`pod`]s out of Deployments
//! (images mapped by the [`catalog`]), and the [`api`] serves the CLI and the dashboard,
//! behind the token of [`auth`]; [`telemetry`] reads the proxies' access logs live for
//! the dashboard's graph. [`pki`] holds the lab's public CA for the simulated internet;
//! [`ca`] is the mesh's CA, which signs the proxies' SPIFFE certificates through
//! [`certificates`] on the discovery port. [`labs`] runs the guided labs against all
//! of it.

pub mod analyze;
pub mod api;
pub mod auth;
pub mod ca;
pub mod catalog;
pub mod certificates;
pub mod diagnostic;
pub mod discovery;
pub mod inspect;
pub mod jwks;
pub mod labs;
pub mod mesh_config;
pub mod output;
pub mod pki;
pub mod pod;
pub mod reconciler;
pub mod resource;
pub mod run;
pub mod store;
pub mod telemetry;
pub mod translate;
pub mod validate;
pub mod yaml;
