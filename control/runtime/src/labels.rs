//! The labels meshlab puts on Docker objects.
//!
//! Labels, not names, are how meshlab finds its objects again: `meshlab down`, a
//! restarted control plane and a test's clean-up all list by [`LAB`], so several labs
//! (and parallel tests) share one engine without touching each other's objects.

use std::collections::HashMap;

/// The lab an object belongs to; on every container, network and volume.
pub const LAB: &str = "meshlab.lab";
/// What a container is for: [`ROLE_CONTROL`], [`ROLE_POD`], [`ROLE_INTERNET`], ….
pub const ROLE: &str = "meshlab.role";
/// The Kubernetes namespace of a pod's container.
pub const NAMESPACE: &str = "meshlab.namespace";
/// The pod a container is part of.
pub const POD: &str = "meshlab.pod";
/// The container's name within its pod (`istio-proxy`, the app's name, …).
pub const CONTAINER: &str = "meshlab.container";
/// The Deployment that owns the pod.
pub const DEPLOYMENT: &str = "meshlab.deployment";
/// On images: the SHA-256 of the meshlab binary inside, in hex.
pub const BINARY_SHA256: &str = "meshlab.binary-sha256";

/// [`ROLE`] of the control-plane container.
pub const ROLE_CONTROL: &str = "control";
/// [`ROLE`] of the containers that make up pods.
pub const ROLE_POD: &str = "pod";
/// [`ROLE`] of the simulated internet's hosts.
pub const ROLE_INTERNET: &str = "internet";

/// Engine list filters selecting objects that carry every `key=value` label given.
pub(crate) fn filters<'a>(
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> HashMap<String, Vec<String>> {
    let labels = labels
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    HashMap::from([("label".to_owned(), labels)])
}

/// Engine list filters selecting objects that carry the label `key`, any value.
pub(crate) fn has(key: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_owned(), vec![key.to_owned()])])
}
