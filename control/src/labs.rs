//! The guided labs' environment: the control plane runs labs itself, because it
//! holds what a lab touches — the store (apply, delete, checkpoints), the mesh
//! configuration, the translation (what a proxy knows) and the Docker socket (pods'
//! logs, requests from inside workloads).
//!
//! Requests "from the ingress" go from this container to the ingress gateway pod on
//! the lab network, port 8080, as `curl localhost:8080` does from the host. Requests
//! "from a workload" run `meshlab run probe` in the pod's app container: one `docker
//! exec` per request set, the same curl the learner types, captured by the sidecar
//! as the app's own traffic is.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use meshlab_control_runtime::{Docker, ExecSpec};
use meshlab_labs::format::{Source, Workload};
use meshlab_labs::probe::{self, Outcome};
use meshlab_labs::runner::{EnvError, Environment, ManifestFile};
use meshlab_proxy_config::{ProxyKind, ProxyNode};
use tokio::io::AsyncWrite;

use crate::api::ApiState;
use crate::mesh_config::MeshConfig;
use crate::pod::Pod;
use crate::reconciler::PROXY_CONTAINER;
use crate::resource::{Kind, ObjectKey, Resource};
use crate::store::{ApplyError, DeleteError, Snapshot};
use crate::yaml;

/// The ingress gateway's HTTP port inside its pod (Istio's 80 → 8080).
const INGRESS_PORT: u16 = 8080;
/// How long pods may take to be ready after a step.
const PODS_READY: Duration = Duration::from_secs(90);
/// How long proxies may take to acknowledge a push.
const PROXIES_SYNCED: Duration = Duration::from_secs(15);
/// How many access log lines are read back.
const LOG_TAIL: usize = 3000;

/// What the lab runner needs beyond the API's state.
#[derive(Clone, Debug)]
pub struct LabsRuntime {
    /// The Docker engine, for exec and logs.
    pub docker: Docker,
    /// One lab at a time; holds the checkpoint of a run that kept its changes
    /// (`keep`), restored by `reset`.
    pub running: Arc<tokio::sync::Mutex<Option<Kept>>>,
}

/// The environment a kept run found, to come back to on reset.
#[derive(Debug)]
pub struct Kept {
    /// The lab that changed it.
    pub lab: String,
    /// What it was.
    pub checkpoint: Checkpoint,
}

impl LabsRuntime {
    /// A runtime over `docker`, no lab running.
    pub fn new(docker: Docker) -> Self {
        LabsRuntime {
            docker,
            running: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }
}

/// The objects and the mesh configuration at one moment.
#[derive(Debug)]
pub struct Checkpoint {
    snapshot: Arc<Snapshot>,
    mesh_config: MeshConfig,
}

/// The control plane as a lab environment.
#[derive(Debug)]
pub struct ControlEnvironment<'a> {
    state: &'a ApiState,
    docker: &'a Docker,
}

impl<'a> ControlEnvironment<'a> {
    /// The environment of the API's state.
    pub fn new(state: &'a ApiState, docker: &'a Docker) -> Self {
        ControlEnvironment { state, docker }
    }

    fn pod(&self, workload: &Workload) -> Result<Pod, EnvError> {
        let pods = self.state.pods.borrow().clone();
        let mut candidates: Vec<&Pod> = pods
            .iter()
            .filter(|p| {
                p.namespace == workload.namespace
                    && p.deployment.as_deref() == Some(workload.deployment.as_str())
            })
            .collect();
        candidates.sort_by_key(|p| (!p.is_ready(), p.outdated));
        candidates.first().map(|p| (*p).clone()).ok_or_else(|| {
            EnvError(format!(
                "{workload} has no pod (hint: `meshlab get pods -n {}`)",
                workload.namespace
            ))
        })
    }

    fn container(pod: &Pod, name: Option<&str>) -> Result<String, EnvError> {
        pod.containers
            .iter()
            .find(|c| match name {
                Some(name) => c.name == name,
                None => c.name != PROXY_CONTAINER,
            })
            .filter(|c| !c.docker_name.is_empty())
            .map(|c| c.docker_name.clone())
            .ok_or_else(|| {
                EnvError(format!(
                    "pod {}.{} has no running {} container ({})",
                    pod.name,
                    pod.namespace,
                    name.unwrap_or("app"),
                    pod.status
                ))
            })
    }

    fn ingress_address(&self) -> Result<String, EnvError> {
        let pods = self.state.pods.borrow().clone();
        pods.iter()
            .filter(|p| crate::catalog::is_gateway_pod(&p.labels) && p.is_ready())
            .find_map(|p| p.ip.clone())
            .map(|ip| format!("{ip}:{INGRESS_PORT}"))
            .ok_or_else(|| {
                EnvError(
                    "the ingress gateway has no ready pod (hint: `meshlab get pods -n istio-system`)"
                        .to_owned(),
                )
            })
    }
}

/// Parses manifests as `apply -f` does.
fn load(files: &[ManifestFile]) -> Result<Vec<Resource>, EnvError> {
    let mut resources = Vec::new();
    for file in files {
        let loaded = yaml::load(&file.file, &file.yaml).map_err(|diagnostics| {
            EnvError(
                diagnostics
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        })?;
        resources.extend(loaded.documents.into_iter().map(|d| d.resource));
    }
    Ok(resources)
}

fn apply_error(err: ApplyError) -> EnvError {
    match err {
        ApplyError::Invalid(diagnostics) => EnvError(
            diagnostics
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        other => EnvError(other.to_string()),
    }
}

fn delete_error(err: &DeleteError) -> EnvError {
    EnvError(err.to_string())
}

impl ControlEnvironment<'_> {
    fn set_config(&self, config: MeshConfig) -> Result<(), EnvError> {
        config
            .save(&self.state.state_dir)
            .map_err(|e| EnvError(e.to_string()))?;
        self.state.mesh_config.send_replace(config);
        Ok(())
    }

    async fn exec(
        &self,
        container: &str,
        cmd: Vec<String>,
    ) -> Result<(Vec<u8>, Vec<u8>), EnvError> {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let code = self
            .docker
            .exec(container, &ExecSpec::new(cmd), &mut stdout, &mut stderr)
            .await
            .map_err(|e| EnvError(e.to_string()))?;
        if code != 0 {
            return Err(EnvError(format!(
                "exec in {container} exited with {code}: {}",
                String::from_utf8_lossy(&stderr).trim()
            )));
        }
        Ok((stdout, stderr))
    }
}

impl Environment for ControlEnvironment<'_> {
    type Checkpoint = Checkpoint;

    async fn apply(&self, files: &[ManifestFile]) -> Result<Vec<String>, EnvError> {
        let resources = load(files)?;
        let outcomes = self
            .state
            .store
            .apply(resources, "default")
            .map_err(apply_error)?;
        Ok(outcomes.iter().map(ToString::to_string).collect())
    }

    async fn delete(&self, files: &[ManifestFile]) -> Result<Vec<String>, EnvError> {
        let snapshot = self.state.store.snapshot();
        let keys: Vec<ObjectKey> = load(files)?
            .iter()
            .map(|r| ObjectKey::of(r, "default"))
            .filter(|k| snapshot.get(k.kind, &k.namespace, &k.name).is_some())
            .collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let deleted = self
            .state
            .store
            .delete_all(&keys)
            .map_err(|e| delete_error(&e))?;
        Ok(deleted.iter().map(ToString::to_string).collect())
    }

    async fn set_mesh_config(&self, key: &str, value: &str) -> Result<String, EnvError> {
        let mut config = *self.state.mesh_config.borrow();
        config
            .set(key, value)
            .map_err(|e| EnvError(e.to_string()))?;
        self.set_config(config)?;
        Ok(format!(
            "meshConfig.{} set to {value}",
            key.trim_start_matches("meshConfig.")
        ))
    }

    async fn settle(&self) -> Result<(), EnvError> {
        // Let the store's change reach the reconciler and the discovery server.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let deadline = tokio::time::Instant::now() + PODS_READY;
        loop {
            let pods = self.state.pods.borrow().clone();
            let mut waiting: Vec<String> = pods
                .iter()
                .filter(|p| !p.is_ready() || p.outdated)
                .map(|p| format!("{}.{} ({})", p.name, p.namespace, p.status))
                .collect();
            // Deployments the reconciler has not made pods for yet.
            for deployment in self.state.store.snapshot().list(Kind::Deployment, None) {
                let Resource::Deployment(deployment) = deployment.as_ref() else {
                    continue;
                };
                let namespace = deployment
                    .metadata
                    .namespace
                    .as_deref()
                    .unwrap_or("default");
                let name = deployment.metadata.name.as_str();
                let has_pod = pods
                    .iter()
                    .any(|p| p.namespace == namespace && p.deployment.as_deref() == Some(name));
                if deployment.spec.replicas != Some(0) && !has_pod {
                    waiting.push(format!("deployment {name}.{namespace} (no pod yet)"));
                }
            }
            if waiting.is_empty() {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(EnvError(format!(
                    "pods not ready after {}s: {} (hint: `meshlab get pods -A`)",
                    PODS_READY.as_secs(),
                    waiting.join(", ")
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let deadline = tokio::time::Instant::now() + PROXIES_SYNCED;
        loop {
            let stale = self.state.discovery.proxy_status().iter().any(|status| {
                status
                    .types
                    .values()
                    .any(|t| matches!(t.sync(), crate::discovery::SyncState::Stale))
            });
            // Stale proxies past the deadline are left to the checks' retries.
            if !stale || tokio::time::Instant::now() >= deadline {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn requests(
        &self,
        source: &Source,
        spec: &probe::Spec,
        progress: &(dyn Fn(u32) + Sync),
    ) -> Result<Vec<Outcome>, EnvError> {
        match source {
            Source::Ingress => {
                let mut spec = spec.clone();
                spec.url = format!("http://{}{}", self.ingress_address()?, spec.url);
                probe::run(&spec, progress)
                    .await
                    .map_err(|e| EnvError(e.to_string()))
            }
            Source::Workload(workload) => {
                let pod = self.pod(workload)?;
                let container = Self::container(&pod, None)?;
                let json = serde_json::to_string(spec).map_err(|e| EnvError(e.to_string()))?;
                let cmd = vec![
                    meshlab_control_runtime::BINARY_PATH.to_owned(),
                    "run".to_owned(),
                    "probe".to_owned(),
                    "--spec".to_owned(),
                    json,
                ];
                let mut stdout = Vec::new();
                let mut stderr = ProgressLines {
                    progress,
                    partial: Vec::new(),
                    text: Vec::new(),
                };
                let code = self
                    .docker
                    .exec(&container, &ExecSpec::new(cmd), &mut stdout, &mut stderr)
                    .await
                    .map_err(|e| EnvError(e.to_string()))?;
                if code != 0 {
                    return Err(EnvError(format!(
                        "the probe in {workload} exited with {code}: {}",
                        String::from_utf8_lossy(&stderr.text).trim()
                    )));
                }
                serde_json::from_slice(&stdout).map_err(|e| {
                    EnvError(format!("the probe in {workload} answered no outcomes: {e}"))
                })
            }
        }
    }

    async fn access_log(&self, workload: &Workload) -> Result<Vec<String>, EnvError> {
        let pod = self.pod(workload)?;
        let container = Self::container(&pod, Some(PROXY_CONTAINER))?;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        self.docker
            .logs(&container, false, Some(LOG_TAIL), &mut stdout, &mut stderr)
            .await
            .map_err(|e| EnvError(e.to_string()))?;
        Ok(String::from_utf8_lossy(&stdout)
            .lines()
            .map(str::to_owned)
            .collect())
    }

    async fn metrics(&self, workload: &Workload) -> Result<String, EnvError> {
        let pod = self.pod(workload)?;
        let container = Self::container(&pod, Some(PROXY_CONTAINER))?;
        let cmd = ["curl", "-s", "http://127.0.0.1:15090/stats/prometheus"]
            .map(str::to_owned)
            .to_vec();
        let (stdout, _) = self.exec(&container, cmd).await?;
        Ok(String::from_utf8_lossy(&stdout).into_owned())
    }

    async fn clusters(&self, workload: &Workload) -> Result<Vec<String>, EnvError> {
        let pod = self.pod(workload)?;
        let view = self.state.views.borrow().clone();
        let node = ProxyNode {
            kind: if crate::catalog::is_gateway_pod(&pod.labels) {
                ProxyKind::Router
            } else {
                ProxyKind::Sidecar
            },
            pod: pod.name.clone(),
            namespace: pod.namespace.clone(),
            ip: pod.ip.clone().unwrap_or_default(),
            labels: pod.labels.clone(),
            service_account: pod.service_account,
        };
        Ok(view.config_for(&node).clusters.keys().cloned().collect())
    }

    async fn checkpoint(&self) -> Result<Checkpoint, EnvError> {
        Ok(Checkpoint {
            snapshot: self.state.store.snapshot(),
            mesh_config: *self.state.mesh_config.borrow(),
        })
    }

    async fn restore(&self, checkpoint: Checkpoint) -> Result<Vec<String>, EnvError> {
        let mut lines = Vec::new();
        let now = self.state.store.snapshot();
        let gone: Vec<ObjectKey> = now
            .iter()
            .filter(|(key, _)| {
                checkpoint
                    .snapshot
                    .get(key.kind, &key.namespace, &key.name)
                    .is_none()
            })
            .map(|(key, _)| key.clone())
            .collect();
        let changed: Vec<Resource> = checkpoint
            .snapshot
            .iter()
            .filter(|(key, old)| {
                now.get(key.kind, &key.namespace, &key.name)
                    .is_none_or(|current| current != *old)
            })
            .map(|(_, old)| (**old).clone())
            .collect();
        if !gone.is_empty() {
            let deleted = self
                .state
                .store
                .delete_all(&gone)
                .map_err(|e| delete_error(&e))?;
            lines.extend(deleted.iter().map(ToString::to_string));
        }
        if !changed.is_empty() {
            let outcomes = self
                .state
                .store
                .apply(changed, "default")
                .map_err(apply_error)?;
            lines.extend(outcomes.iter().map(ToString::to_string));
        }
        if *self.state.mesh_config.borrow() != checkpoint.mesh_config {
            self.set_config(checkpoint.mesh_config)?;
            lines.push(format!(
                "meshConfig.outboundTrafficPolicy.mode set back to {}",
                serde_json::to_value(checkpoint.mesh_config.outbound_traffic_policy.mode)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ));
        }
        self.settle().await?;
        Ok(lines)
    }
}

/// The probe's standard error: `progress N` lines become progress, the rest is kept
/// for the error message.
struct ProgressLines<'a> {
    progress: &'a (dyn Fn(u32) + Sync),
    partial: Vec<u8>,
    text: Vec<u8>,
}

impl AsyncWrite for ProgressLines<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        this.partial.extend_from_slice(buf);
        while let Some(end) = this.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = this.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            match text
                .trim()
                .strip_prefix(probe::PROGRESS)
                .and_then(|n| n.trim().parse().ok())
            {
                Some(done) => (this.progress)(done),
                None => this.text.extend_from_slice(&line),
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
