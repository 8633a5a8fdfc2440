//! The control plane as a process: what `meshlab run control` starts inside the lab's
//! control container.
//!
//! Start-up order matters for a learner's first minute: the store and the lab's CA
//! come from the state volume (so a restarted control plane loses nothing), the
//! simulated internet is made sure of, then the reconciler and the API start together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use meshlab_control_runtime::lab::network_name;
use meshlab_control_runtime::{
    ContainerSpec, Docker, File, NetworkMode, RestartPolicy, RuntimeError, State, labels,
};
use tokio::net::TcpListener;

use meshlab_proxy_config::{Cluster, ClusterLoadAssignment, Listener, RouteConfiguration};
use tokio::sync::watch;

use crate::api::{self, ApiState};
use crate::auth::{self, ApiToken, TOKEN_ENV};
use crate::ca::{DEFAULT_WORKLOAD_CERT_TTL, MeshCa, PluggedCa};
use crate::certificates::{CertificateService, IssuedCertificates};
use crate::discovery::{DiscoveryError, DiscoveryServer, Generators};
use crate::mesh_config::{MeshConfig, MeshConfigError};
use crate::pki::{PkiError, PublicCa};
use crate::pod::Pods;
use crate::reconciler::{CA_BUNDLE_PATH, Lab, Reconciler};
use crate::store::{Snapshot, Store, StoreError};
use crate::telemetry::{self, Telemetry};
use crate::translate::View;
use crate::translate::mesh::Mesh;

/// The port the API listens on inside the control container.
pub const API_PORT: u16 = 20001;

pub use crate::discovery::DISCOVERY_PORT;

/// The simulated internet's host names: DNS aliases of its container and names in
/// its certificate.
pub use meshlab_apps::internet::HOSTS as INTERNET_HOSTS;

/// Where the internet container finds its certificate and key.
const INTERNET_CERT: &str = "/etc/meshlab/internet/tls.crt";
const INTERNET_KEY: &str = "/etc/meshlab/internet/tls.key";

/// How the control plane is configured (from its container's environment).
#[derive(Clone, Debug)]
pub struct Config {
    /// The lab's name (`MESHLAB_NAME`).
    pub lab: String,
    /// The image every container runs (`MESHLAB_IMAGE`).
    pub image: String,
    /// The state directory, the lab's volume (`/var/lib/meshlab`).
    pub state_dir: PathBuf,
    /// Where the API listens.
    pub listen: SocketAddr,
    /// The host port of the ingress gateway (`MESHLAB_HTTP_PORT`), when published.
    pub ingress_port: Option<u16>,
    /// The host port of the ingress gateway's HTTPS port (`MESHLAB_HTTPS_PORT`),
    /// when published.
    pub ingress_https_port: Option<u16>,
    /// The token every API request must carry (`MESHLAB_API_TOKEN`).
    pub token: ApiToken,
    /// The lifetime of workload certificates (`MESHLAB_WORKLOAD_CERT_TTL`, Go duration
    /// syntax; Istio's 24 h by default, at least a minute).
    pub workload_cert_ttl: Duration,
    /// The learner's own CA (`meshlab up --ca-cert --ca-key`), copied into the
    /// container at [`PLUGGED_CA_CERT`] and [`PLUGGED_CA_KEY`].
    pub plugged_ca: Option<PluggedCa>,
}

/// Where `meshlab up --ca-cert` puts the learner's CA certificate in the control
/// container.
pub const PLUGGED_CA_CERT: &str = "/etc/meshlab/cacerts/ca-cert.pem";
/// Where `meshlab up --ca-key` puts its key (mode 0600).
pub const PLUGGED_CA_KEY: &str = "/etc/meshlab/cacerts/ca-key.pem";
/// The environment variable with the workload certificate lifetime.
pub const WORKLOAD_CERT_TTL_ENV: &str = "MESHLAB_WORKLOAD_CERT_TTL";

/// Why the control plane stopped.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// An environment variable does not parse.
    #[error("environment variable {name} is not valid: {reason}")]
    InvalidEnv {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A required environment variable is missing.
    #[error(
        "environment variable {0} is not set (the control plane runs inside a lab: use `meshlab up`)"
    )]
    MissingEnv(&'static str),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The lab's CA could not be loaded or created.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// Docker refused something.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The mesh configuration could not be read.
    #[error(transparent)]
    MeshConfig(#[from] MeshConfigError),
    /// The discovery server stopped.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The API could not listen or serve.
    #[error("the API cannot serve on {addr}: {source}")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// The system's reason.
        source: std::io::Error,
    },
}

impl Config {
    /// Reads `MESHLAB_NAME`, `MESHLAB_IMAGE` and `MESHLAB_API_TOKEN`; the rest is fixed
    /// by the image.
    pub fn from_env() -> Result<Self, ControlError> {
        let var = |name: &'static str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or(ControlError::MissingEnv(name))
        };
        Ok(Config {
            lab: var("MESHLAB_NAME")?,
            image: var("MESHLAB_IMAGE")?,
            state_dir: PathBuf::from(meshlab_control_runtime::STATE_DIR),
            listen: SocketAddr::from(([0, 0, 0, 0], API_PORT)),
            ingress_port: std::env::var("MESHLAB_HTTP_PORT")
                .ok()
                .and_then(|p| p.parse().ok()),
            ingress_https_port: std::env::var("MESHLAB_HTTPS_PORT")
                .ok()
                .and_then(|p| p.parse().ok()),
            token: ApiToken::new(var(TOKEN_ENV)?),
            workload_cert_ttl: match std::env::var(WORKLOAD_CERT_TTL_ENV) {
                Ok(ttl) if !ttl.is_empty() => crate::resource::duration::Duration::parse(&ttl)
                    .map_err(|err| ControlError::InvalidEnv {
                        name: WORKLOAD_CERT_TTL_ENV,
                        reason: err.to_string(),
                    })?
                    .get(),
                _ => DEFAULT_WORKLOAD_CERT_TTL,
            },
            plugged_ca: match (
                std::fs::read_to_string(PLUGGED_CA_CERT),
                std::fs::read_to_string(PLUGGED_CA_KEY),
            ) {
                (Ok(cert_pem), Ok(key_pem)) => Some(PluggedCa { cert_pem, key_pem }),
                _ => None,
            },
        })
    }
}

/// Runs the control plane until the task is dropped or serving fails; `ui` (the
/// dashboard's pages) is served beside the API, behind the same token.
pub async fn run(config: Config, ui: Router) -> Result<(), ControlError> {
    let store = Arc::new(Store::open(&config.state_dir.join("store"))?);
    let ca = PublicCa::load_or_create(&config.state_dir.join("pki"))?;
    let mesh_ca = Arc::new(MeshCa::load_or_create(
        &config.state_dir.join("pki"),
        config.plugged_ca.as_ref(),
        config.workload_cert_ttl,
    )?);
    let issued = Arc::new(IssuedCertificates::open(
        config.state_dir.join("issued-certificates.json"),
    ));
    let docker = Docker::connect().await?;
    ensure_internet(&docker, &config, &ca).await?;

    let lab = Lab {
        name: config.lab.clone(),
        image: config.image.clone(),
        ca_bundle: ca.cert_pem().to_owned(),
        discovery_address: format!(
            "http://{}:{DISCOVERY_PORT}",
            meshlab_control_runtime::lab::container_name(&config.lab, "control")
        ),
        ingress_port: config.ingress_port,
        ingress_https_port: config.ingress_https_port,
        tokens: mesh_ca.tokens().clone(),
    };
    let labs = crate::labs::LabsRuntime::new(docker.clone());
    let (reconciler, pods) = Reconciler::new(docker.clone(), lab, store.clone());
    let telemetry = Telemetry::new();
    let following = tokio::spawn(telemetry::follow(docker, pods.clone(), telemetry.clone()));
    let reconciling = tokio::spawn(reconciler.run());

    let mesh_config = watch::Sender::new(MeshConfig::load(&config.state_dir)?);
    let key_sets = crate::jwks::watch_key_sets(
        store.subscribe(),
        config.state_dir.join("pki").join(crate::pki::CA_CERT),
    );
    let views = watch_views(
        store.subscribe(),
        pods.clone(),
        mesh_config.subscribe(),
        key_sets,
    );
    let generators = Generators::new()
        .with(|view: &View, node| {
            view.config_for(node)
                .secrets
                .values()
                .cloned()
                .collect::<Vec<meshlab_proxy_config::Secret>>()
        })
        .with(|view: &View, node| {
            view.config_for(node)
                .clusters
                .values()
                .cloned()
                .collect::<Vec<Cluster>>()
        })
        .with(|view: &View, node| {
            view.config_for(node)
                .endpoints
                .values()
                .cloned()
                .collect::<Vec<ClusterLoadAssignment>>()
        })
        .with(|view: &View, node| {
            view.config_for(node)
                .listeners
                .values()
                .cloned()
                .collect::<Vec<Listener>>()
        })
        .with(|view: &View, node| {
            view.config_for(node)
                .routes
                .values()
                .cloned()
                .collect::<Vec<RouteConfiguration>>()
        });
    let discovery = DiscoveryServer::new(generators, views.clone())
        .with_certificates(CertificateService::new(mesh_ca.clone(), issued.clone()));
    let discovery_status = discovery.status();
    let discovery_addr = SocketAddr::from(([0, 0, 0, 0], DISCOVERY_PORT));
    let discovery_listener =
        TcpListener::bind(discovery_addr)
            .await
            .map_err(|source| ControlError::Serve {
                addr: discovery_addr,
                source,
            })?;
    let discovering = tokio::spawn(discovery.serve(discovery_listener, std::future::pending()));

    let listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| ControlError::Serve {
                addr: config.listen,
                source,
            })?;
    tracing::info!(lab = %config.lab, addr = %config.listen, "control plane ready");
    let router = api::router(ApiState {
        store,
        pods,
        views,
        discovery: discovery_status,
        mesh_config,
        state_dir: config.state_dir.clone(),
        telemetry,
        labs,
        certificates: issued,
        mesh_root: mesh_ca.root_pem().to_owned(),
    })
    .merge(ui);
    let served = axum::serve(listener, auth::guard(router, config.token.clone())).await;
    following.abort();
    reconciling.abort();
    discovering.abort();
    served.map_err(|source| ControlError::Serve {
        addr: config.listen,
        source,
    })
}

/// Keeps a [`View`] of the mesh current: rebuilt when the store, the pods or the
/// mesh configuration change (the reconciler republishes pods every pass; an equal
/// list changes nothing).
fn watch_views(
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    mut pods: watch::Receiver<Pods>,
    mut mesh_config: watch::Receiver<MeshConfig>,
    mut key_sets: watch::Receiver<crate::jwks::KeySets>,
) -> watch::Receiver<Arc<View>> {
    let build =
        |snapshot: &Snapshot, pods: &Pods, config: &MeshConfig, key_sets: &crate::jwks::KeySets| {
            let mut mesh = Mesh::build(snapshot, pods, config.outbound_traffic_policy.mode);
            mesh.jwks = (**key_sets).clone();
            Arc::new(View::new(mesh, pods.clone()))
        };
    let initial = build(
        &snapshots.borrow(),
        &pods.borrow(),
        &mesh_config.borrow(),
        &key_sets.borrow(),
    );
    let (sender, receiver) = watch::channel(initial);
    tokio::spawn(async move {
        let mut last_pods = pods.borrow().clone();
        loop {
            tokio::select! {
                changed = snapshots.changed() => if changed.is_err() { return },
                changed = mesh_config.changed() => if changed.is_err() { return },
                changed = key_sets.changed() => if changed.is_err() { return },
                changed = pods.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if *pods.borrow() == last_pods {
                        continue;
                    }
                }
            }
            last_pods = pods.borrow().clone();
            let view = build(
                &snapshots.borrow(),
                &last_pods,
                &mesh_config.borrow(),
                &key_sets.borrow(),
            );
            sender.send_replace(view);
        }
    });
    receiver
}

/// Makes sure the simulated internet runs: one container answering for every
/// simulated host, with a certificate from the lab's public CA.
async fn ensure_internet(
    docker: &Docker,
    config: &Config,
    ca: &PublicCa,
) -> Result<(), ControlError> {
    let existing = docker
        .list(&config.lab, &[(labels::ROLE, labels::ROLE_INTERNET)])
        .await?;
    if existing
        .iter()
        .any(|c| c.state == State::Running && c.image == config.image)
    {
        return Ok(());
    }
    for container in existing {
        docker.remove(&container.id, true).await?;
    }
    let cert = ca.issue_server(&INTERNET_HOSTS)?;
    let mut spec = ContainerSpec::new(config.lab.clone(), "internet", config.image.clone());
    spec.cmd = [
        meshlab_control_runtime::BINARY_PATH,
        "run",
        "internet",
        "--cert",
        INTERNET_CERT,
        "--key",
        INTERNET_KEY,
    ]
    .map(str::to_owned)
    .to_vec();
    spec.labels
        .insert(labels::ROLE.to_owned(), labels::ROLE_INTERNET.to_owned());
    spec.network = NetworkMode::Network {
        name: network_name(&config.lab),
        aliases: INTERNET_HOSTS.iter().map(|h| (*h).to_owned()).collect(),
    };
    spec.restart = RestartPolicy::UnlessStopped;
    spec.files = vec![
        File {
            path: INTERNET_CERT.to_owned(),
            contents: cert.chain_pem.into_bytes(),
            mode: 0o644,
        },
        File {
            path: INTERNET_KEY.to_owned(),
            contents: cert.key_pem.into_bytes(),
            mode: 0o600,
        },
        File {
            path: CA_BUNDLE_PATH.to_owned(),
            contents: ca.cert_pem().as_bytes().to_vec(),
            mode: 0o644,
        },
    ];
    let id = docker.create_container(&spec).await?;
    docker.start(&id).await?;
    tracing::info!(hosts = ?INTERNET_HOSTS, "simulated internet started");
    Ok(())
}
