//! `meshlab exec` and `meshlab logs`: into a pod's containers, as kubectl does.
//!
//! The control plane knows which Docker container is which pod's which container;
//! the CLI asks it, then talks to Docker directly so output streams and exit codes
//! pass through untouched. While the control plane is away, the containers' own
//! labels say the same for running pods.

use anyhow::{Context, bail};
use meshlab_control::pod::Pod;
use meshlab_control::reconciler::{INIT_CONTAINER, POD_SANDBOX, PROXY_CONTAINER};
use meshlab_control_runtime::{Docker, ExecSpec, labels};

use crate::client::Client;

/// The Docker container a target names: `deploy/NAME`, `pod/NAME`, `NAME` (a pod),
/// or the lab's own `control` and `internet` containers (for logs).
pub async fn resolve(
    docker: &Docker,
    client: Option<&Client>,
    lab: &str,
    target: &str,
    namespace: &str,
    container: Option<&str>,
) -> anyhow::Result<String> {
    if container.is_none() && matches!(target, "control" | "internet") {
        let role = if target == "control" {
            labels::ROLE_CONTROL
        } else {
            labels::ROLE_INTERNET
        };
        let found = docker.list(lab, &[(labels::ROLE, role)]).await?;
        return found.into_iter().next().map(|c| c.name).with_context(|| {
            format!("lab {lab:?} has no {target} container (hint: run `meshlab up`)")
        });
    }
    let Some(client) = client else {
        return resolve_by_labels(docker, lab, target, namespace, container).await;
    };
    let pods: Vec<Pod> = client.get("/api/v1/pods").await?;
    let in_namespace = pods.iter().filter(|p| p.namespace == namespace);
    let (kind, name) = target.split_once('/').unwrap_or(("pod", target));
    let pod = match kind {
        "deploy" | "deployment" | "deployments" | "deployment.apps" => {
            let mut candidates: Vec<&Pod> = in_namespace
                .filter(|p| p.deployment.as_deref() == Some(name))
                .collect();
            candidates.sort_by_key(|p| !p.is_ready());
            match candidates.first() {
                Some(pod) => *pod,
                None => bail!(
                    "deployments.apps {name:?} not found in namespace {namespace:?} (or it has no pods yet)"
                ),
            }
        }
        "pod" | "pods" | "po" => match in_namespace.clone().find(|p| p.name == name) {
            Some(pod) => pod,
            None => bail!("pods {name:?} not found in namespace {namespace:?}"),
        },
        _ => bail!("cannot find {target:?} (hint: name a pod, pod/NAME or deploy/NAME)"),
    };
    // The init step has finished and is not listed among the pod's containers, but
    // its log (the capture rules it installed) stays readable, as with kubectl.
    if container == Some(INIT_CONTAINER) {
        return Ok(meshlab_control_runtime::lab::container_name(
            lab,
            &format!("{}-{}-istio-init", pod.namespace, pod.name),
        ));
    }
    let chosen = match container {
        Some(name) => pod
            .containers
            .iter()
            .find(|c| c.name == name)
            .with_context(|| {
                let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
                format!(
                    "container {name:?} is not valid for pod {}: choose one of: [{}]",
                    pod.name,
                    names.join(" ")
                )
            })?,
        // As kubectl with Istio's `kubectl.kubernetes.io/default-container`: the app,
        // not the sidecar.
        None => pod
            .containers
            .iter()
            .find(|c| c.name != PROXY_CONTAINER)
            .or_else(|| pod.containers.first())
            .with_context(|| format!("pod {} has no containers ({})", pod.name, pod.status))?,
    };
    if chosen.docker_name.is_empty() {
        bail!(
            "pod {} is not running: {}",
            pod.name,
            pod.message.as_deref().unwrap_or(&pod.status)
        );
    }
    Ok(chosen.docker_name.clone())
}

/// [`resolve`] while the control plane is away: the pod's containers carry its
/// namespace, name, deployment and container name as labels, so `exec` and `logs`
/// keep working — as `kubectl exec` does while istiod is down.
async fn resolve_by_labels(
    docker: &Docker,
    lab: &str,
    target: &str,
    namespace: &str,
    container: Option<&str>,
) -> anyhow::Result<String> {
    let (kind, name) = target.split_once('/').unwrap_or(("pod", target));
    let owner = match kind {
        "deploy" | "deployment" | "deployments" | "deployment.apps" => labels::DEPLOYMENT,
        "pod" | "pods" | "po" => labels::POD,
        _ => bail!("cannot find {target:?} (hint: name a pod, pod/NAME or deploy/NAME)"),
    };
    let found = docker
        .list(
            lab,
            &[
                (labels::ROLE, labels::ROLE_POD),
                (labels::NAMESPACE, namespace),
                (owner, name),
            ],
        )
        .await?;
    let running = |c: &&meshlab_control_runtime::ContainerSummary| {
        c.state == meshlab_control_runtime::State::Running
    };
    let named = |wanted: &str| {
        found
            .iter()
            .filter(running)
            .find(|c| c.labels.get(labels::CONTAINER).map(String::as_str) == Some(wanted))
    };
    let chosen = match container {
        Some(wanted) => named(wanted),
        // The app: neither the sidecar nor the pod's own sandbox and init step.
        None => found.iter().filter(running).find(|c| {
            c.labels.get(labels::CONTAINER).is_some_and(|name| {
                ![PROXY_CONTAINER, INIT_CONTAINER, POD_SANDBOX].contains(&name.as_str())
            })
        }),
    };
    chosen.map(|c| c.name.clone()).with_context(|| {
        format!(
            "no running container for {target:?} in namespace {namespace:?}; the control plane \
             of lab {lab:?} is not answering, so only running containers can be found \
             (hint: `meshlab --name {lab} status`, or `meshlab --name {lab} up`)"
        )
    })
}

/// A pod's name and namespace from `NAME`, `NAME.NAMESPACE` or `deploy/NAME`, as
/// istioctl's proxy commands take them.
pub async fn pod_name(
    client: &Client,
    target: &str,
    namespace: &str,
) -> anyhow::Result<(String, String)> {
    let pods: Vec<Pod> = client.get("/api/v1/pods").await?;
    if let Some(name) = target
        .strip_prefix("deploy/")
        .or_else(|| target.strip_prefix("deployment/"))
    {
        let pod = pods
            .iter()
            .find(|p| p.namespace == namespace && p.deployment.as_deref() == Some(name))
            .with_context(|| {
                format!("deployments.apps {name:?} not found in namespace {namespace:?}")
            })?;
        return Ok((pod.name.clone(), pod.namespace.clone()));
    }
    let (name, ns) = match target.split_once('.') {
        Some((name, ns)) if !pods.iter().any(|p| p.name == target) => (name, ns),
        _ => (target, namespace),
    };
    Ok((name.to_owned(), ns.to_owned()))
}

/// `meshlab exec … -- CMD…`: the command's own exit status.
pub async fn exec(docker: &Docker, container: &str, cmd: Vec<String>) -> anyhow::Result<i64> {
    if cmd.is_empty() {
        bail!("you must specify at least one command for the container (after --)");
    }
    Ok(docker
        .exec(
            container,
            &ExecSpec::new(cmd),
            tokio::io::stdout(),
            tokio::io::stderr(),
        )
        .await?)
}

/// `meshlab logs … [-f] [--tail N]`.
pub async fn logs(
    docker: &Docker,
    container: &str,
    follow: bool,
    tail: Option<usize>,
) -> anyhow::Result<()> {
    docker
        .logs(
            container,
            follow,
            tail,
            tokio::io::stdout(),
            tokio::io::stderr(),
        )
        .await?;
    Ok(())
}
