//! The workload reconciler: Deployments become pods made of Docker containers.
//!
//! Each pass compares what the store asks for with the containers carrying the lab's
//! label, creates what is missing and removes what is no longer wanted, then
//! publishes every pod's status. Everything needed to rebuild its view after a
//! restart is in the containers' labels, so the control plane can be killed and
//! restarted at any time without losing or duplicating a pod.
//!
//! A pod's template hash covers the pod template, the DNS names of the Services that
//! select it and the image, so changing any of them rolls the pod — the same rule as
//! Kubernetes' `pod-template-hash`, widened because Docker cannot add a network
//! alias to a running container.

mod desired;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meshlab_control_runtime::lab::network_name;
use meshlab_control_runtime::{
    ContainerInfo, ContainerSpec, Docker, File, NetworkMode, RestartPolicy, RuntimeError, State,
    labels,
};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::catalog;
use crate::pod::{Pod, PodContainer, Pods};
use crate::store::Store;

pub use desired::{DesiredPod, desired_pods};

/// How often the reconciler looks at containers when nothing changes in the store.
pub const RESYNC: Duration = Duration::from_secs(1);

/// Where every container finds the lab's trusted CA bundle.
pub const CA_BUNDLE_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The pause container's name inside a pod, as the label value.
pub const POD_SANDBOX: &str = "POD";
/// The init step's container name, as Istio names it.
pub const INIT_CONTAINER: &str = "istio-init";
/// The sidecar's container name, as Istio names it.
pub const PROXY_CONTAINER: &str = "istio-proxy";
/// The uid (and gid) the proxy runs as; capture exempts its traffic.
pub const PROXY_UID: u32 = 1337;
/// The proxy's readiness port (`/healthz/ready`).
pub const READINESS_PORT: u16 = 15021;
/// The port gateway pods listen on for the ingress (Istio's gateway pod port).
pub const GATEWAY_PORT: u16 = 8080;
/// The port gateway pods take HTTPS on (the ingress Service's 443).
pub const GATEWAY_HTTPS_PORT: u16 = 8443;
/// How long the init step may take.
const INIT_TIMEOUT: Duration = Duration::from_secs(15);

/// Labels the reconciler adds to a pod's containers, so that its view of every pod
/// can be rebuilt from Docker alone.
mod label {
    /// The pod template hash.
    pub(super) const TEMPLATE_HASH: &str = "meshlab.template-hash";
    /// The pod's service account.
    pub(super) const SERVICE_ACCOUNT: &str = "meshlab.service-account";
    /// The pod's labels, as JSON.
    pub(super) const POD_LABELS: &str = "meshlab.pod-labels";
    /// The port an app container listens on (its readiness check).
    pub(super) const PORT: &str = "meshlab.port";
    /// The container's position in the pod (`00` is the sandbox).
    pub(super) const CONTAINER_INDEX: &str = "meshlab.container-index";
}

/// What the reconciler needs to know about its lab.
#[derive(Clone, Debug)]
pub struct Lab {
    /// The lab's name: label value and container name prefix.
    pub name: String,
    /// The image every container runs.
    pub image: String,
    /// The lab's public CA bundle, installed in every container.
    pub ca_bundle: String,
    /// Where proxies reach the discovery server, e.g. `http://meshlab-control:15010`.
    pub discovery_address: String,
    /// The host port the ingress gateway is published on (127.0.0.1).
    pub ingress_port: Option<u16>,
    /// The host port the ingress gateway's HTTPS port is published on.
    pub ingress_https_port: Option<u16>,
    /// Mints each pod's token for the certificate service.
    pub tokens: crate::ca::Tokens,
}

/// The environment variable carrying a proxy's pod token (Istio mounts the pod's
/// service account token at `/var/run/secrets/tokens/istio-token`).
pub const TOKEN_ENV: &str = "MESHLAB_POD_TOKEN";

/// Keeps the lab's pods as the store describes them.
#[derive(Debug)]
pub struct Reconciler {
    docker: Docker,
    lab: Lab,
    store: Arc<Store>,
    pods: watch::Sender<Pods>,
    /// Pods that cannot be created, by template hash, shown with their reason.
    failed: HashMap<String, Pod>,
}

impl Reconciler {
    /// A reconciler and the receiver of its pod list.
    pub fn new(docker: Docker, lab: Lab, store: Arc<Store>) -> (Self, watch::Receiver<Pods>) {
        let (pods, receiver) = watch::channel(Pods::default());
        let reconciler = Reconciler {
            docker,
            lab,
            store,
            pods,
            failed: HashMap::new(),
        };
        (reconciler, receiver)
    }

    /// Runs passes until the task is dropped: on every store change, and every
    /// [`RESYNC`] to notice containers that stopped or became ready.
    pub async fn run(mut self) {
        let mut changes = self.store.subscribe();
        loop {
            if let Err(err) = self.pass().await {
                tracing::warn!(%err, "reconcile pass failed; retrying");
            }
            tokio::select! {
                _ = changes.changed() => {}
                () = tokio::time::sleep(RESYNC) => {}
            }
        }
    }

    /// One pass: create, remove, observe, publish.
    pub async fn pass(&mut self) -> Result<(), RuntimeError> {
        let snapshot = self.store.snapshot();
        let desired = desired_pods(&snapshot, &self.lab.image);
        let mut actual = self.observe().await?;

        // A pod publishing a host port (the ingress gateway) cannot overlap with its
        // replacement: remove the old one first (Kubernetes' `Recreate`).
        for want in desired.iter().filter(|w| publishes(w)) {
            let stale: Vec<Observed> = actual
                .values()
                .filter(|p| {
                    p.namespace == want.namespace
                        && p.deployment.as_ref() == Some(&want.deployment)
                        && p.hash != want.hash
                })
                .cloned()
                .collect();
            for pod in stale {
                for id in pod.container_ids.iter().rev() {
                    let _ = self.docker.remove(id, true).await;
                }
                actual.remove(&pod.name);
            }
        }

        // Create the missing pods of each template, in parallel.
        let mut creating = JoinSet::new();
        for want in &desired {
            if self.failed.contains_key(&want.hash) {
                continue;
            }
            let have = actual.values().filter(|p| p.hash == want.hash).count();
            for _ in have..want.replicas {
                let docker = self.docker.clone();
                let lab = self.lab.clone();
                let want = want.clone();
                creating
                    .spawn(async move { (want.clone(), create_pod(&docker, &lab, &want).await) });
            }
        }
        while let Some(joined) = creating.join_next().await {
            let Ok((want, result)) = joined else { continue };
            match result {
                Ok(()) => {}
                Err(PodError::Catalog(err)) => {
                    tracing::warn!(pod = %want.deployment, %err, "pod cannot be created");
                    self.failed
                        .insert(want.hash.clone(), failed_pod(&want, &err));
                }
                Err(err @ (PodError::Runtime(_) | PodError::Init(_))) => {
                    tracing::warn!(pod = %want.deployment, %err, "pod creation failed");
                }
            }
        }
        let wanted: BTreeMap<&str, &DesiredPod> =
            desired.iter().map(|d| (d.hash.as_str(), d)).collect();
        self.failed
            .retain(|hash, _| wanted.contains_key(hash.as_str()));
        if !creating.is_empty() {
            actual = self.observe().await?;
        }

        // Remove pods nobody wants, extras, and old templates once the new one is ready.
        let mut removing = Vec::new();
        let mut kept: BTreeMap<&str, usize> = BTreeMap::new();
        for pod in actual.values() {
            let keep = match wanted.get(pod.hash.as_str()) {
                Some(want) => {
                    let count = kept.entry(pod.hash.as_str()).or_default();
                    *count += 1;
                    *count <= want.replicas
                }
                // An old template: kept while its Deployment exists and the
                // replacement is not ready yet (a rolling update).
                None => desired
                    .iter()
                    .find(|d| {
                        d.namespace == pod.namespace
                            && Some(&d.deployment) == pod.deployment.as_ref()
                    })
                    .is_some_and(|d| {
                        let ready = actual
                            .values()
                            .filter(|p| p.hash == d.hash && p.ready)
                            .count();
                        !self.failed.contains_key(&d.hash) && ready < d.replicas
                    }),
            };
            if !keep {
                removing.push(pod.clone());
            }
        }
        for pod in &removing {
            for id in pod.container_ids.iter().rev() {
                if let Err(err) = self.docker.remove(id, true).await {
                    tracing::warn!(pod = %pod.name, %err, "cannot remove container");
                }
            }
            actual.remove(&pod.name);
        }

        let mut pods: Vec<Pod> = actual
            .into_values()
            .map(|p| Pod {
                outdated: !wanted.contains_key(p.hash.as_str()),
                ..p.pod
            })
            .collect();
        pods.extend(self.failed.values().cloned());
        pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        self.pods.send_replace(Arc::new(pods));
        Ok(())
    }

    /// The lab's pods as Docker has them, with readiness checked.
    async fn observe(&self) -> Result<BTreeMap<String, Observed>, RuntimeError> {
        let summaries = self
            .docker
            .list(&self.lab.name, &[(labels::ROLE, labels::ROLE_POD)])
            .await?;
        let mut grouped: BTreeMap<String, Vec<ContainerInfo>> = BTreeMap::new();
        for summary in summaries {
            let Some(pod) = summary.labels.get(labels::POD).cloned() else {
                continue;
            };
            match self.docker.inspect(&summary.id).await {
                Ok(info) => grouped.entry(pod).or_default().push(info),
                // Removed between the listing and now.
                Err(err) => tracing::debug!(%err, "container vanished"),
            }
        }
        let mut observed = BTreeMap::new();
        for (name, containers) in grouped {
            observed.insert(name.clone(), observe_pod(name, containers).await);
        }
        Ok(observed)
    }
}

async fn observe_pod(name: String, mut containers: Vec<ContainerInfo>) -> Observed {
    containers.sort_by_key(|c| {
        c.labels
            .get(label::CONTAINER_INDEX)
            .cloned()
            .unwrap_or_default()
    });
    let is_sandbox = |c: &ContainerInfo| {
        c.labels.get(labels::CONTAINER).map(String::as_str) == Some(POD_SANDBOX)
    };
    let is_init = |c: &ContainerInfo| {
        c.labels.get(labels::CONTAINER).map(String::as_str) == Some(INIT_CONTAINER)
    };
    let init_failed = containers
        .iter()
        .find(|c| is_init(c))
        .filter(|c| c.state != State::Running && c.exit_code.is_some_and(|code| code != 0));
    let sandbox = containers.iter().find(|c| is_sandbox(c));
    let any = &containers[0];
    let label = |key: &str| any.labels.get(key).cloned();
    let ip: Option<IpAddr> = sandbox.and_then(|s| s.ip);
    let mut pod_containers = Vec::new();
    let mut status = "Running";
    let mut message = None;
    for container in containers.iter().filter(|c| !is_sandbox(c) && !is_init(c)) {
        let port = container
            .labels
            .get(label::PORT)
            .and_then(|p| p.parse::<u16>().ok());
        let ready = container.state == State::Running
            && match (port, ip) {
                // The sidecar: ready once it has its configuration and certificate,
                // as Kubernetes' probe of Istio's `/healthz/ready` says.
                (Some(READINESS_PORT), Some(ip)) => {
                    answers_ready(SocketAddr::new(ip, READINESS_PORT)).await
                }
                (Some(port), Some(ip)) => accepts(SocketAddr::new(ip, port)).await,
                (Some(_), None) => false,
                (None, _) => true,
            };
        match container.state {
            State::Running => {}
            State::Created => status = "ContainerCreating",
            State::Restarting => status = "CrashLoopBackOff",
            State::Exited | State::Dead => {
                status = "Error";
                message = Some(match (&container.error, container.exit_code) {
                    (Some(error), _) if !error.is_empty() => error.clone(),
                    (_, Some(code)) => {
                        format!("container {} exited with status {code}", container.name)
                    }
                    _ => format!("container {} exited", container.name),
                });
            }
            State::Paused | State::Removing => status = "Terminating",
        }
        pod_containers.push(PodContainer {
            name: container
                .labels
                .get(labels::CONTAINER)
                .cloned()
                .unwrap_or_default(),
            docker_name: container.name.clone(),
            ready,
            restarts: container.restart_count,
        });
    }
    if sandbox.is_none_or(|s| s.state != State::Running) {
        status = "ContainerCreating";
    }
    if let Some(init) = init_failed {
        status = "Init:Error";
        message = Some(format!(
            "the init step (traffic capture) exited with status {}: see `meshlab logs {name} -c {INIT_CONTAINER}`",
            init.exit_code.unwrap_or_default()
        ));
    }
    let pod_labels = label(label::POD_LABELS)
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    let ready = status == "Running" && pod_containers.iter().all(|c| c.ready);
    let created = sandbox
        .and_then(|s| s.started_at)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    Observed {
        name: name.clone(),
        namespace: label(labels::NAMESPACE).unwrap_or_default(),
        deployment: label(labels::DEPLOYMENT),
        hash: label(label::TEMPLATE_HASH).unwrap_or_default(),
        ready,
        container_ids: containers.iter().map(|c| c.id.clone()).collect(),
        pod: Pod {
            name,
            namespace: label(labels::NAMESPACE).unwrap_or_default(),
            deployment: label(labels::DEPLOYMENT),
            labels: pod_labels,
            service_account: label(label::SERVICE_ACCOUNT).unwrap_or_else(|| "default".to_owned()),
            status: status.to_owned(),
            message,
            ip: ip.map(|ip| ip.to_string()),
            created,
            containers: pod_containers,
            outdated: false,
        },
    }
}

/// A pod as found in Docker.
#[derive(Clone, Debug)]
struct Observed {
    name: String,
    namespace: String,
    deployment: Option<String>,
    hash: String,
    ready: bool,
    /// Sandbox first, then apps, in creation order.
    container_ids: Vec<String>,
    pod: Pod,
}

#[derive(Debug, thiserror::Error)]
enum PodError {
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("the init step {0}")]
    Init(String),
}

/// Whether something accepts connections at `addr` (the readiness check).
/// Whether `GET /healthz/ready` on `addr` answers 200 within the probe timeout.
async fn answers_ready(addr: SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(
                b"GET /healthz/ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            )
            .await?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await?;
        std::io::Result::Ok(head.starts_with(b"HTTP/1.1 200"))
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(300), probe).await,
        Ok(Ok(true))
    )
}

async fn accepts(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_millis(300),
            tokio::net::TcpStream::connect(addr)
        )
        .await,
        Ok(Ok(_))
    )
}

fn failed_pod(want: &DesiredPod, err: &catalog::CatalogError) -> Pod {
    let status = match err {
        catalog::CatalogError::UnknownImage { .. } | catalog::CatalogError::Unavailable { .. } => {
            "ErrImageNeverPull"
        }
        _ => "CreateContainerError",
    };
    Pod {
        name: format!("{}-{}", want.deployment, want.hash),
        namespace: want.namespace.clone(),
        deployment: Some(want.deployment.clone()),
        labels: want.labels.clone(),
        service_account: want.service_account.clone(),
        status: status.to_owned(),
        message: Some(err.to_string()),
        ip: None,
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs(),
        containers: want
            .containers
            .iter()
            .map(|c| PodContainer {
                name: c.name.clone(),
                docker_name: String::new(),
                ready: false,
                restarts: 0,
            })
            .collect(),
        outdated: false,
    }
}

/// Whether a pod is the ingress gateway, published on the host.
fn publishes(want: &DesiredPod) -> bool {
    want.namespace == crate::translate::mesh::ROOT_NAMESPACE
        && want.labels.get("istio").map(String::as_str) == Some("ingressgateway")
}

/// The init step's options from the pod's annotations, as Istio's
/// `traffic.sidecar.istio.io/*` annotations set them.
fn capture_options(annotations: &BTreeMap<String, String>) -> Vec<String> {
    [
        (
            "traffic.sidecar.istio.io/excludeInboundPorts",
            "--exclude-inbound-ports",
        ),
        (
            "traffic.sidecar.istio.io/excludeOutboundPorts",
            "--exclude-outbound-ports",
        ),
        (
            "traffic.sidecar.istio.io/excludeOutboundIPRanges",
            "--exclude-outbound-ip-ranges",
        ),
        (
            "traffic.sidecar.istio.io/includeOutboundIPRanges",
            "--include-outbound-ip-ranges",
        ),
    ]
    .into_iter()
    .filter_map(|(annotation, flag)| {
        let value = annotations.get(annotation)?.trim();
        (!value.is_empty()).then(|| [flag.to_owned(), value.to_owned()])
    })
    .flatten()
    .collect()
}

/// Waits for the init step to finish; its failure fails the pod.
async fn wait_for_init(docker: &Docker, id: &str) -> Result<(), PodError> {
    let deadline = tokio::time::Instant::now() + INIT_TIMEOUT;
    loop {
        let info = docker.inspect(id).await?;
        match (info.state, info.exit_code) {
            (State::Exited, Some(0)) => return Ok(()),
            (State::Exited | State::Dead, code) => {
                return Err(PodError::Init(format!(
                    "exited with status {}",
                    code.unwrap_or(-1)
                )));
            }
            _ if tokio::time::Instant::now() > deadline => {
                return Err(PodError::Init(format!(
                    "did not finish within {}s",
                    INIT_TIMEOUT.as_secs()
                )));
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A random pod-name suffix from Kubernetes' alphabet (no vowels, no look-alikes).
fn suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect()
}

/// Creates and starts one pod: the sandbox holding the network namespace, then the
/// app containers joined to it.
async fn create_pod(docker: &Docker, lab: &Lab, want: &DesiredPod) -> Result<(), PodError> {
    let launches: Vec<catalog::Launch> = want
        .containers
        .iter()
        .map(catalog::launch)
        .collect::<Result<_, _>>()?;
    let pod = format!("{}-{}-{}", want.deployment, want.hash, suffix());
    let base_labels = BTreeMap::from([
        (labels::ROLE.to_owned(), labels::ROLE_POD.to_owned()),
        (labels::NAMESPACE.to_owned(), want.namespace.clone()),
        (labels::POD.to_owned(), pod.clone()),
        (labels::DEPLOYMENT.to_owned(), want.deployment.clone()),
        (label::TEMPLATE_HASH.to_owned(), want.hash.clone()),
        (
            label::SERVICE_ACCOUNT.to_owned(),
            want.service_account.clone(),
        ),
        (
            label::POD_LABELS.to_owned(),
            serde_json::to_string(&want.labels).unwrap_or_default(),
        ),
    ]);

    let mut sandbox_labels = base_labels.clone();
    sandbox_labels.insert(labels::CONTAINER.to_owned(), POD_SANDBOX.to_owned());
    sandbox_labels.insert(label::CONTAINER_INDEX.to_owned(), "00".to_owned());
    let namespace = &want.namespace;
    let mut sandbox = ContainerSpec::new(
        lab.name.clone(),
        format!("{namespace}-{pod}"),
        lab.image.clone(),
    );
    sandbox.cmd = vec![
        catalog::MESHLAB.to_owned(),
        "run".to_owned(),
        "pause".to_owned(),
    ];
    for (port, target) in &want.port_forwards {
        sandbox
            .cmd
            .extend(["--forward".to_owned(), format!("{port}:{target}")]);
    }
    sandbox.labels = sandbox_labels;
    sandbox.network = NetworkMode::Network {
        name: network_name(&lab.name),
        aliases: want.aliases.clone(),
    };
    sandbox.hostname = Some(pod.clone());
    sandbox.dns_search = vec![
        format!("{namespace}.svc.cluster.local"),
        "svc.cluster.local".to_owned(),
        "cluster.local".to_owned(),
    ];
    sandbox.dns_options = vec!["ndots:5".to_owned()];
    sandbox.restart = RestartPolicy::UnlessStopped;
    if publishes(want) {
        sandbox.publish = [
            (lab.ingress_port, GATEWAY_PORT),
            (lab.ingress_https_port, GATEWAY_HTTPS_PORT),
        ]
        .into_iter()
        .filter_map(|(host_port, container_port)| {
            Some(meshlab_control_runtime::Publish {
                host_ip: std::net::Ipv4Addr::LOCALHOST.into(),
                host_port: host_port?,
                container_port,
            })
        })
        .collect();
    }
    let sandbox_id = docker.create_container(&sandbox).await?;
    docker.start(&sandbox_id).await?;
    let ca_bundle = File {
        path: CA_BUNDLE_PATH.to_owned(),
        contents: lab.ca_bundle.clone().into_bytes(),
        mode: 0o644,
    };
    let instance_ip = docker
        .inspect(&sandbox_id)
        .await?
        .ip
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    let proxy_env = vec![
        ("POD_NAME".to_owned(), pod.clone()),
        ("POD_NAMESPACE".to_owned(), namespace.clone()),
        ("INSTANCE_IP".to_owned(), instance_ip),
        ("SERVICE_ACCOUNT".to_owned(), want.service_account.clone()),
        (
            "POD_LABELS".to_owned(),
            serde_json::to_string(&want.labels).unwrap_or_default(),
        ),
        (
            "MESHLAB_DISCOVERY_ADDRESS".to_owned(),
            lab.discovery_address.clone(),
        ),
        (
            TOKEN_ENV.to_owned(),
            lab.tokens.mint(namespace, &want.service_account, &pod),
        ),
    ];
    let mut index = 0;
    let mut next_labels = |container: &str, port: Option<u16>| {
        index += 1;
        let mut labels = base_labels.clone();
        labels.insert(labels::CONTAINER.to_owned(), container.to_owned());
        labels.insert(label::CONTAINER_INDEX.to_owned(), format!("{index:02}"));
        if let Some(port) = port {
            labels.insert(label::PORT.to_owned(), port.to_string());
        }
        labels
    };

    if want.sidecar {
        let mut init = ContainerSpec::new(
            lab.name.clone(),
            format!("{namespace}-{pod}-{INIT_CONTAINER}"),
            lab.image.clone(),
        );
        init.cmd = [catalog::MESHLAB, "run", "init"]
            .map(str::to_owned)
            .to_vec();
        init.cmd.extend(capture_options(&want.annotations));
        // The init step holds NET_ADMIN and nothing else, as Istio's istio-init.
        init.cap_drop = vec!["ALL".to_owned()];
        init.cap_add = vec!["NET_ADMIN".to_owned()];
        init.network = NetworkMode::Container(sandbox_id.clone());
        init.labels = next_labels(INIT_CONTAINER, None);
        let init_id = docker.create_container(&init).await?;
        docker.start(&init_id).await?;
        wait_for_init(docker, &init_id).await?;

        let mut proxy = ContainerSpec::new(
            lab.name.clone(),
            format!("{namespace}-{pod}-{PROXY_CONTAINER}"),
            lab.image.clone(),
        );
        proxy.cmd = [catalog::MESHLAB, "run", "proxy"]
            .map(str::to_owned)
            .to_vec();
        proxy.env = proxy_env.clone();
        proxy.user = Some(format!("{PROXY_UID}:{PROXY_UID}"));
        proxy.network = NetworkMode::Container(sandbox_id.clone());
        proxy.labels = next_labels(PROXY_CONTAINER, Some(READINESS_PORT));
        proxy.restart = RestartPolicy::UnlessStopped;
        proxy.files = vec![ca_bundle.clone()];
        let proxy_id = docker.create_container(&proxy).await?;
        docker.start(&proxy_id).await?;
    }

    for (container, launch) in want.containers.iter().zip(&launches) {
        let labels_for = next_labels(&container.name, launch.port);
        let mut env = launch.env.clone();
        env.push(("HOSTNAME".to_owned(), pod.clone()));
        if launch.app == "gateway" {
            env.extend(proxy_env.iter().cloned());
        }
        let mut spec = ContainerSpec::new(
            lab.name.clone(),
            format!("{namespace}-{pod}-{}", container.name),
            lab.image.clone(),
        );
        spec.cmd = launch.cmd.clone();
        spec.env = env;
        spec.labels = labels_for;
        spec.network = NetworkMode::Container(sandbox_id.clone());
        spec.working_dir = container.working_dir.clone();
        spec.restart = RestartPolicy::UnlessStopped;
        spec.files = vec![ca_bundle.clone()];
        let id = docker.create_container(&spec).await?;
        docker.start(&id).await?;
    }
    tracing::info!(pod = %pod, namespace = %namespace, "pod created");
    Ok(())
}

#[cfg(test)]
mod tests;
