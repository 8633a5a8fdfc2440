//! Containers: create, start, stop, remove, inspect, list, and files put into them.
//!
//! Each call takes a container's id or full name, and turns the engine's status codes
//! into the errors callers branch on: a missing container is
//! [`RuntimeError::NotFound`], a name held by another lab is
//! [`RuntimeError::NameTaken`], a taken host port is [`RuntimeError::PortInUse`].
//! Stopping a stopped container or starting a running one succeeds, so reconcilers
//! can repeat themselves.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use bollard::models::{ContainerStateStatusEnum, ContainerSummaryStateEnum};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, RemoveContainerOptions, StartContainerOptions,
    StopContainerOptions, UploadToContainerOptions,
};
use bytes::Bytes;

use crate::archive::Tar;
use crate::docker::Docker;
use crate::error::{self, Object, RuntimeError};
use crate::lab::{network_name, validate_lab_name};
use crate::labels;
use crate::spec::{ContainerSpec, File, NetworkMode};

/// A container's lifecycle state, as the engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Created, never started (or not started again).
    Created,
    /// Its process runs (also while a stop is pending).
    Running,
    /// Frozen by `docker pause`.
    Paused,
    /// Exited, and its restart policy is starting it again.
    Restarting,
    /// Being removed.
    Removing,
    /// Its process ended; see [`ContainerInfo::exit_code`].
    Exited,
    /// The engine failed to stop or remove it.
    Dead,
}

// === impl State ===

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Removing => "removing",
            Self::Exited => "exited",
            Self::Dead => "dead",
        })
    }
}

/// What [`Docker::inspect`] tells about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Its id.
    pub id: String,
    /// Its full name, `<lab>-<name>`.
    pub name: String,
    /// Its state.
    pub state: State,
    /// The status its process exited with, when it has exited (or is restarting).
    pub exit_code: Option<i64>,
    /// How often the engine restarted it under its restart policy.
    pub restart_count: u32,
    /// When its process last started; `None` if never.
    pub started_at: Option<SystemTime>,
    /// When its process last ended; `None` if never.
    pub finished_at: Option<SystemTime>,
    /// Why the engine could not start it, if it could not.
    pub error: Option<String>,
    /// Its address on the lab's network. `None` for a container that shares another's
    /// namespace ([`NetworkMode::Container`]): ask the owner.
    pub ip: Option<IpAddr>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The image it was created from, as named then (e.g. `meshlab:0123456789ab`).
    pub image: String,
}

/// A line of [`Docker::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSummary {
    /// Its id.
    pub id: String,
    /// Its full name.
    pub name: String,
    /// Its state.
    pub state: State,
    /// The engine's human summary, e.g. `Up 3 minutes`, `Exited (1) 2 seconds ago`.
    pub status: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The image it was created from.
    pub image: String,
}

// === impl Docker ===

impl Docker {
    /// Creates the container `spec` describes, puts [`ContainerSpec::files`] into it,
    /// and returns its id. It is not started.
    pub async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        validate_lab_name(&spec.lab)?;
        let name = spec.full_name();
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        let created = self
            .client
            .create_container(Some(options), spec.to_engine())
            .await;
        let id = match created {
            Ok(created) => created.id,
            Err(err) => return Err(self.create_failed(spec, &name, &err).await),
        };
        if !spec.files.is_empty()
            && let Err(err) = self.upload(&id, &spec.files).await
        {
            // Nothing half-made: a container without its files must not start.
            let _ = self.remove(&id, true).await;
            return Err(err);
        }
        Ok(id)
    }

    /// Explains a failed create: a name conflict, a missing image or namespace owner.
    async fn create_failed(
        &self,
        spec: &ContainerSpec,
        name: &str,
        err: &bollard::errors::Error,
    ) -> RuntimeError {
        let detail = error::detail(err);
        match error::status(err) {
            Some(409) => {
                let owner = match self.client.inspect_container(name, None).await {
                    Ok(existing) => existing
                        .config
                        .and_then(|c| c.labels)
                        .and_then(|mut l| l.remove(labels::LAB)),
                    Err(_) => None,
                };
                if owner.as_deref() == Some(spec.lab.as_str()) {
                    RuntimeError::AlreadyExists {
                        object: Object::Container,
                        name: name.to_owned(),
                        lab: spec.lab.clone(),
                    }
                } else {
                    RuntimeError::NameTaken {
                        object: Object::Container,
                        name: name.to_owned(),
                        lab: spec.lab.clone(),
                        owner,
                    }
                }
            }
            Some(404) if detail.contains("No such image") => RuntimeError::NotFound {
                object: Object::Image,
                name: spec.image.clone(),
            },
            // Otherwise what is missing is where the container was to live.
            Some(404) => match &spec.network {
                NetworkMode::Network { name, .. } => RuntimeError::NotFound {
                    object: Object::Network,
                    name: name.clone(),
                },
                NetworkMode::Container(owner) => RuntimeError::NotFound {
                    object: Object::Container,
                    name: owner.clone(),
                },
            },
            _ => RuntimeError::Engine {
                action: format!("create container {name}"),
                detail,
            },
        }
    }

    /// Starts a container; starting a running one succeeds.
    pub async fn start(&self, container: &str) -> Result<(), RuntimeError> {
        match self
            .client
            .start_container(container, None::<StartContainerOptions>)
            .await
        {
            Ok(()) => Ok(()),
            Err(err) => {
                let detail = error::detail(&err);
                Err(match error::status(&err) {
                    Some(304) => return Ok(()),
                    Some(404) => not_found(container),
                    _ if detail.contains("port is already allocated")
                        || detail.contains("address already in use") =>
                    {
                        RuntimeError::PortInUse {
                            container: container.to_owned(),
                            detail,
                        }
                    }
                    _ => RuntimeError::Engine {
                        action: format!("start container {container}"),
                        detail,
                    },
                })
            }
        }
    }

    /// Stops a container: SIGTERM, then SIGKILL after `timeout` (whole seconds).
    /// Stopping a stopped container succeeds.
    pub async fn stop(&self, container: &str, timeout: Duration) -> Result<(), RuntimeError> {
        let options = StopContainerOptions {
            t: Some(i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX)),
            signal: None,
        };
        match self.client.stop_container(container, Some(options)).await {
            Ok(()) => Ok(()),
            Err(err) => match error::status(&err) {
                Some(304) => Ok(()),
                Some(404) => Err(not_found(container)),
                _ => Err(RuntimeError::engine(
                    format!("stop container {container}"),
                    &err,
                )),
            },
        }
    }

    /// Removes a container and its anonymous volumes; `force` kills it first if it
    /// runs (otherwise removing a running container fails).
    pub async fn remove(&self, container: &str, force: bool) -> Result<(), RuntimeError> {
        let options = RemoveContainerOptions {
            force,
            v: true,
            link: false,
        };
        match self.client.remove_container(container, Some(options)).await {
            Ok(()) => Ok(()),
            Err(err) => match error::status(&err) {
                Some(404) => Err(not_found(container)),
                _ => Err(RuntimeError::engine(
                    format!("remove container {container}"),
                    &err,
                )),
            },
        }
    }

    /// The state, addresses and labels of a container.
    pub async fn inspect(&self, container: &str) -> Result<ContainerInfo, RuntimeError> {
        let found = self
            .client
            .inspect_container(container, None)
            .await
            .map_err(|err| match error::status(&err) {
                Some(404) => not_found(container),
                _ => RuntimeError::engine(format!("inspect container {container}"), &err),
            })?;
        let config = found.config.unwrap_or_default();
        let labels: BTreeMap<String, String> =
            config.labels.unwrap_or_default().into_iter().collect();
        let ip = labels.get(labels::LAB).and_then(|lab| {
            found
                .network_settings?
                .networks?
                .remove(&network_name(lab))?
                .ip_address?
                .parse()
                .ok()
        });
        let engine_state = found.state.unwrap_or_default();
        let state = State::from(
            engine_state
                .status
                .unwrap_or(ContainerStateStatusEnum::EMPTY),
        );
        Ok(ContainerInfo {
            id: found.id.unwrap_or_default(),
            name: found
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
            exit_code: matches!(state, State::Exited | State::Dead | State::Restarting)
                .then_some(engine_state.exit_code)
                .flatten(),
            state,
            restart_count: found
                .restart_count
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            started_at: engine_state
                .started_at
                .as_deref()
                .and_then(crate::time::parse),
            finished_at: engine_state
                .finished_at
                .as_deref()
                .and_then(crate::time::parse),
            error: engine_state.error.filter(|e| !e.is_empty()),
            ip,
            labels,
            image: config.image.unwrap_or_default(),
        })
    }

    /// The lab's containers, running or not, that carry every `key=value` label in
    /// `selector` (e.g. `[(labels::POD, "reviews-v1-abc12")]`).
    pub async fn list(
        &self,
        lab: &str,
        selector: &[(&str, &str)],
    ) -> Result<Vec<ContainerSummary>, RuntimeError> {
        validate_lab_name(lab)?;
        let options = ListContainersOptions {
            all: true,
            filters: Some(labels::filters(
                [(labels::LAB, lab)]
                    .into_iter()
                    .chain(selector.iter().copied()),
            )),
            ..Default::default()
        };
        let found = self
            .client
            .list_containers(Some(options))
            .await
            .map_err(|err| {
                RuntimeError::engine(format!("list the containers of lab {lab}"), &err)
            })?;
        Ok(found
            .into_iter()
            .map(|c| ContainerSummary {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_owned(),
                state: State::from(c.state.unwrap_or(ContainerSummaryStateEnum::EMPTY)),
                status: c.status.unwrap_or_default(),
                labels: c.labels.unwrap_or_default().into_iter().collect(),
                image: c.image.unwrap_or_default(),
            })
            .collect())
    }

    /// Puts `files` into a container, created or running, replacing what is there.
    /// Missing parent directories are created (owned by root, mode 0755).
    pub async fn upload(&self, container: &str, files: &[File]) -> Result<(), RuntimeError> {
        let mut tar = Tar::new(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        );
        for file in files {
            let invalid = |reason| RuntimeError::InvalidFile {
                container: container.to_owned(),
                path: file.path.clone(),
                reason,
            };
            if !file.path.starts_with('/') {
                return Err(invalid("the path must be absolute"));
            }
            tar.file(&file.path, file.mode, Bytes::from(file.contents.clone()))
                .map_err(invalid)?;
        }
        let options = UploadToContainerOptions {
            path: "/".to_owned(),
            ..Default::default()
        };
        let body = bollard::body_full(Bytes::from(tar.finish().concat()));
        self.client
            .upload_to_container(container, Some(options), body)
            .await
            .map_err(|err| match error::status(&err) {
                Some(404) => not_found(container),
                _ => RuntimeError::engine(format!("put files into container {container}"), &err),
            })
    }
}

pub(crate) fn not_found(container: &str) -> RuntimeError {
    RuntimeError::NotFound {
        object: Object::Container,
        name: container.to_owned(),
    }
}

// === impl State: from the engine's two spellings of it ===

impl From<ContainerStateStatusEnum> for State {
    fn from(status: ContainerStateStatusEnum) -> Self {
        use ContainerStateStatusEnum as S;
        match status {
            S::CREATED | S::EMPTY => Self::Created,
            S::RUNNING | S::STOPPING => Self::Running,
            S::PAUSED => Self::Paused,
            S::RESTARTING => Self::Restarting,
            S::REMOVING => Self::Removing,
            S::EXITED => Self::Exited,
            S::DEAD => Self::Dead,
        }
    }
}

impl From<ContainerSummaryStateEnum> for State {
    fn from(status: ContainerSummaryStateEnum) -> Self {
        use ContainerSummaryStateEnum as S;
        match status {
            S::CREATED | S::EMPTY => Self::Created,
            S::RUNNING | S::STOPPING => Self::Running,
            S::PAUSED => Self::Paused,
            S::RESTARTING => Self::Restarting,
            S::REMOVING => Self::Removing,
            S::EXITED => Self::Exited,
            S::DEAD => Self::Dead,
        }
    }
}
