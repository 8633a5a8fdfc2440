//! Pods as the reconciler sees them and as `meshlab get pods` shows them.
//!
//! A pod is a group of Docker containers sharing one network namespace, held by a
//! small `pause` container exactly as Kubernetes' sandbox does: apps (and later the
//! init step and the sidecar) join it, so they reach each other on 127.0.0.1 and the
//! pod keeps its IP when an app restarts.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    /// `reviews-v1-5f7c9d8b6a-x2k9p`.
    pub name: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The Deployment that owns it.
    pub deployment: Option<String>,
    /// The pod template's labels.
    pub labels: BTreeMap<String, String>,
    /// The service account (identity) it runs as.
    pub service_account: String,
    /// kubectl's STATUS: `Running`, `ContainerCreating`, `ErrImageNeverPull`,
    /// `CrashLoopBackOff`, `Error`, `Terminating`.
    pub status: String,
    /// Why the pod is not running, when it is not.
    pub message: Option<String>,
    /// The pod's address on the lab network.
    pub ip: Option<String>,
    /// When the pod was created, as seconds since the Unix epoch.
    pub created: u64,
    /// The pod's containers, in manifest order (the pause container is not listed).
    pub containers: Vec<PodContainer>,
    /// Whether it runs an older template of its Deployment and is being replaced.
    #[serde(default)]
    pub outdated: bool,
}

/// One container of a pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodContainer {
    /// The name in the manifest (`reviews`, later `istio-proxy`).
    pub name: String,
    /// The Docker container's name, for `meshlab exec` and `meshlab logs`.
    pub docker_name: String,
    /// Whether it is running and, if it listens, accepting connections.
    pub ready: bool,
    /// How many times Docker restarted it.
    pub restarts: u32,
}

impl Pod {
    /// kubectl's READY column: `1/1`.
    pub fn ready_column(&self) -> String {
        let ready = self.containers.iter().filter(|c| c.ready).count();
        format!("{ready}/{}", self.containers.len())
    }

    /// Whether every container is ready.
    pub fn is_ready(&self) -> bool {
        self.status == "Running"
            && !self.containers.is_empty()
            && self.containers.iter().all(|c| c.ready)
    }

    /// kubectl's RESTARTS column.
    pub fn restarts(&self) -> u32 {
        self.containers.iter().map(|c| c.restarts).sum()
    }
}

/// Every pod of the lab at one moment, published by the reconciler.
pub type Pods = Arc<Vec<Pod>>;
