//! What a container should be, in meshlab's words, and its translation into the
//! engine's create request.
//!
//! The spec names things the way `docker run` and a Kubernetes pod do (network mode,
//! aliases, DNS search domains, mounts, published ports, capabilities, restart
//! policy), so the reconciler can map a pod onto it field by field. The lab label and
//! the `<lab>-` name prefix are added here, not by callers, so no object escapes
//! [`Docker::remove_lab`](crate::Docker::remove_lab).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, Mount as EngineMount, MountType,
    NetworkingConfig, PortBinding, RestartPolicy as EngineRestart, RestartPolicyNameEnum,
};

use crate::lab::{container_name, network_name};
use crate::labels;

/// A container to create. Build one with [`ContainerSpec::new`] and set what differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// The lab it belongs to: its label and its name prefix.
    pub lab: String,
    /// Its name within the lab; the Docker name is `<lab>-<name>`.
    pub name: String,
    /// The image, e.g. [`Image::tag`](crate::Image::tag).
    pub image: String,
    /// The command (the image's default, [`BINARY_PATH`](crate::BINARY_PATH), when empty).
    pub cmd: Vec<String>,
    /// Replaces the image's entrypoint (it has none) when set.
    pub entrypoint: Option<Vec<String>>,
    /// Environment variables, in order.
    pub env: Vec<(String, String)>,
    /// Labels besides [`labels::LAB`], which is always set to [`ContainerSpec::lab`].
    pub labels: BTreeMap<String, String>,
    /// Which network namespace it lives in. Default: the lab's network, no aliases.
    pub network: NetworkMode,
    /// Its host name (Docker's default: the first 12 digits of its id). Not allowed
    /// with [`NetworkMode::Container`], which shares the owner's.
    pub hostname: Option<String>,
    /// Name servers for `/etc/resolv.conf` (default: Docker's embedded DNS).
    pub dns: Vec<IpAddr>,
    /// Search domains, e.g. `["default.svc.cluster.local", "svc.cluster.local",
    /// "cluster.local"]` as in a Kubernetes pod.
    pub dns_search: Vec<String>,
    /// Resolver options, e.g. `["ndots:5"]`.
    pub dns_options: Vec<String>,
    /// Volumes and bind mounts.
    pub mounts: Vec<Mount>,
    /// Container ports published on the host (TCP).
    pub publish: Vec<Publish>,
    /// Extra Linux capabilities, e.g. `NET_ADMIN` for traffic capture.
    pub cap_add: Vec<String>,
    /// Linux capabilities removed, e.g. `ALL` so that only `cap_add` remains.
    pub cap_drop: Vec<String>,
    /// The user to run as, `uid[:gid]` or a name from the image's `/etc/passwd`.
    pub user: Option<String>,
    /// What the engine does when the container stops.
    pub restart: RestartPolicy,
    /// The working directory (default `/`).
    pub working_dir: Option<String>,
    /// Files put into the container after it is created and before it is started,
    /// e.g. the lab's CA bundle at `/etc/ssl/certs/ca-certificates.crt`.
    pub files: Vec<File>,
}

/// Which network namespace a container lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    /// Its own namespace, attached to a network (by name) and reachable there under
    /// its name and `aliases` (e.g. `reviews.default.svc.cluster.local`).
    Network {
        /// The network, e.g. [`network_name`]`(lab)`.
        name: String,
        /// Extra DNS names on that network.
        aliases: Vec<String>,
    },
    /// The namespace of another container (by id or full name), as the members of
    /// a pod share one: they reach each other on 127.0.0.1.
    Container(String),
}

/// A mount into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// A named volume, e.g. the lab's state volume.
    Volume {
        /// The volume's name.
        name: String,
        /// Where it appears in the container.
        target: String,
    },
    /// A host path, e.g. the Docker socket for the control plane.
    Bind {
        /// The host path.
        source: PathBuf,
        /// Where it appears in the container.
        target: String,
        /// Whether the container may only read it.
        read_only: bool,
    },
}

/// A container's TCP port published on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    /// The host address to bind, e.g. 127.0.0.1 (the lab binds loopback only).
    pub host_ip: IpAddr,
    /// The host port.
    pub host_port: u16,
    /// The port inside the container.
    pub container_port: u16,
}

/// What the engine does when a container's process ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Nothing: it stays exited (Kubernetes' `restartPolicy: Never`).
    #[default]
    No,
    /// Restart it, also after the engine restarts, unless someone stopped it
    /// (Kubernetes' `Always`).
    UnlessStopped,
    /// Restart it when it exits with a non-zero status (Kubernetes' `OnFailure`).
    OnFailure,
}

/// A regular file to put into a container, owned by root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Its absolute path in the container; missing parent directories are created.
    pub path: String,
    /// Its contents.
    pub contents: Vec<u8>,
    /// Its permission bits, e.g. `0o644`.
    pub mode: u32,
}

// === impl ContainerSpec ===

impl ContainerSpec {
    /// A container `<lab>-<name>` running `image`'s default command on the lab's
    /// network, with everything else unset.
    pub fn new(lab: impl Into<String>, name: impl Into<String>, image: impl Into<String>) -> Self {
        let lab = lab.into();
        Self {
            network: NetworkMode::Network {
                name: network_name(&lab),
                aliases: Vec::new(),
            },
            lab,
            name: name.into(),
            image: image.into(),
            cmd: Vec::new(),
            entrypoint: None,
            env: Vec::new(),
            labels: BTreeMap::new(),
            hostname: None,
            dns: Vec::new(),
            dns_search: Vec::new(),
            dns_options: Vec::new(),
            mounts: Vec::new(),
            publish: Vec::new(),
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            user: None,
            restart: RestartPolicy::No,
            working_dir: None,
            files: Vec::new(),
        }
    }

    /// The container's Docker name, `<lab>-<name>`.
    pub fn full_name(&self) -> String {
        container_name(&self.lab, &self.name)
    }

    /// The engine's create request for this spec.
    pub(crate) fn to_engine(&self) -> ContainerCreateBody {
        let mut all_labels: HashMap<String, String> = self.labels.clone().into_iter().collect();
        all_labels.insert(labels::LAB.to_owned(), self.lab.clone());
        let (network_mode, networking_config) = match &self.network {
            NetworkMode::Network { name, aliases } => (
                name.clone(),
                Some(NetworkingConfig {
                    endpoints_config: Some(HashMap::from([(
                        name.clone(),
                        EndpointSettings {
                            aliases: (!aliases.is_empty()).then(|| aliases.clone()),
                            ..Default::default()
                        },
                    )])),
                }),
            ),
            NetworkMode::Container(owner) => (format!("container:{owner}"), None),
        };
        let port = |p: &Publish| format!("{}/tcp", p.container_port);
        let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for publish in &self.publish {
            port_bindings
                .entry(port(publish))
                .or_default()
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(publish.host_ip.to_string()),
                    host_port: Some(publish.host_port.to_string()),
                });
        }
        let mounts = self.mounts.iter().map(Mount::to_engine).collect();
        let restart = match self.restart {
            RestartPolicy::No => RestartPolicyNameEnum::NO,
            RestartPolicy::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
            RestartPolicy::OnFailure => RestartPolicyNameEnum::ON_FAILURE,
        };
        let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        ContainerCreateBody {
            image: Some(self.image.clone()),
            cmd: some(&self.cmd),
            entrypoint: self.entrypoint.clone(),
            env: Some(self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(all_labels),
            hostname: self.hostname.clone(),
            user: self.user.clone(),
            working_dir: self.working_dir.clone(),
            exposed_ports: (!self.publish.is_empty())
                .then(|| self.publish.iter().map(port).collect()),
            networking_config,
            host_config: Some(HostConfig {
                network_mode: Some(network_mode),
                dns: (!self.dns.is_empty())
                    .then(|| self.dns.iter().map(IpAddr::to_string).collect()),
                dns_search: some(&self.dns_search),
                dns_options: some(&self.dns_options),
                mounts: Some(mounts),
                port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
                cap_add: some(&self.cap_add),
                cap_drop: some(&self.cap_drop),
                restart_policy: Some(EngineRestart {
                    name: Some(restart),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

// === impl Mount ===

impl Mount {
    fn to_engine(&self) -> EngineMount {
        match self {
            Self::Volume { name, target } => EngineMount {
                typ: Some(MountType::VOLUME),
                source: Some(name.clone()),
                target: Some(target.clone()),
                ..Default::default()
            },
            Self::Bind {
                source,
                target,
                read_only,
            } => EngineMount {
                typ: Some(MountType::BIND),
                source: Some(source.to_string_lossy().into_owned()),
                target: Some(target.clone()),
                read_only: Some(*read_only),
                ..Default::default()
            },
        }
    }
}
