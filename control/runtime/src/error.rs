//! What can go wrong between meshlab and the Docker engine, worded for the learner who
//! has to fix it.
//!
//! Docker's own messages are terse and speak of API paths; each variant here says what
//! failed, on which object, and what to do next. The variants callers branch on
//! ([`RuntimeError::NotFound`], [`RuntimeError::AlreadyExists`],
//! [`RuntimeError::NotRunning`]) are distinct; anything else the engine reports goes
//! through [`RuntimeError::Engine`] with Docker's own message kept.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::docker::MIN_API;

/// The kinds of Docker object meshlab manages, as error messages name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// A container: a pod's member, the control plane, a simulated internet host.
    Container,
    /// The lab's bridge network.
    Network,
    /// The lab's state volume.
    Volume,
    /// A meshlab image (`meshlab:<hash>`).
    Image,
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Container => "container",
            Self::Network => "network",
            Self::Volume => "volume",
            Self::Image => "image",
        })
    }
}

/// Everything [`Docker`](crate::Docker) can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// `DOCKER_HOST` names a transport other than a unix socket (tcp, ssh, npipe).
    #[error(
        "cannot use DOCKER_HOST={host}: meshlab talks to a local Docker engine over a unix \
         socket only (hint: set DOCKER_HOST=unix:///path/to/docker.sock, or unset it)"
    )]
    UnsupportedHost {
        /// The value of `DOCKER_HOST`.
        host: String,
    },
    /// The socket file does not exist: Docker is not running, or listens elsewhere.
    #[error(
        "cannot reach the Docker engine at {host}: no such socket \
         (hint: start Docker, or set DOCKER_HOST)"
    )]
    NoSocket {
        /// The engine's address, `unix:///var/run/docker.sock` by default.
        host: String,
    },
    /// The socket exists but this user may not open it.
    #[error(
        "cannot reach the Docker engine at {host}: permission denied \
         (hint: add your user to the docker group, or run with sudo)"
    )]
    PermissionDenied {
        /// The engine's address.
        host: String,
    },
    /// The socket exists but no engine answers on it (stopped, starting or hung).
    #[error("cannot reach the Docker engine at {host}: {reason} (hint: start or restart Docker)")]
    NotAnswering {
        /// The engine's address.
        host: String,
        /// What happened instead of an answer.
        reason: String,
    },
    /// The engine is older than the API meshlab needs.
    #[error(
        "the Docker engine at {host} speaks API {version}, meshlab needs {}.{} or newer \
         (hint: upgrade to Docker 20.10 or later)",
        MIN_API.0,
        MIN_API.1
    )]
    ApiTooOld {
        /// The engine's address.
        host: String,
        /// The API version the engine reported.
        version: String,
    },
    /// A lab name that cannot prefix Docker object names.
    #[error(
        "invalid lab name {lab:?}: {reason} \
         (hint: use lowercase letters, digits and '-', e.g. --name mylab)"
    )]
    InvalidLabName {
        /// The rejected name.
        lab: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The meshlab binary an image is to be made from cannot be read.
    #[error("cannot read the meshlab binary {}: {source}", path.display())]
    ReadBinary {
        /// The binary's path.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: io::Error,
    },
    /// The file is not a binary an image can run (not ELF, or dynamically linked).
    #[error("cannot make an image of {}: {reason}", path.display())]
    UnusableBinary {
        /// The binary's path.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The object does not exist (any more).
    #[error("no {object} named {name}{}", not_found_hint(*object))]
    NotFound {
        /// What kind of object was looked for.
        object: Object,
        /// Its name or id.
        name: String,
    },
    /// An object of this name already exists in the same lab (a reconciler may adopt it).
    #[error(
        "{object} {name} already exists in lab {lab} \
         (hint: remove it first, or run `meshlab down --name {lab}`)"
    )]
    AlreadyExists {
        /// What kind of object.
        object: Object,
        /// Its full name.
        name: String,
        /// The lab it belongs to.
        lab: String,
    },
    /// An object of this name exists but belongs to another lab, or to no lab at all.
    #[error(
        "a {object} named {name} already exists and {} \
         (hint: remove it with `{}`, or choose another lab name with --name)",
        owner_phrase(lab, owner.as_deref()),
        removal_command(*object, name)
    )]
    NameTaken {
        /// What kind of object.
        object: Object,
        /// The contested name.
        name: String,
        /// The lab that wanted the name.
        lab: String,
        /// The lab the existing object belongs to, if it carries meshlab's label.
        owner: Option<String>,
    },
    /// An exec into a container that is not running.
    #[error("container {container} is not running (hint: `meshlab logs` shows why it stopped)")]
    NotRunning {
        /// The container's name or id.
        container: String,
    },
    /// A container cannot start because a host port it publishes is taken.
    #[error(
        "cannot start container {container}: a port it publishes on the host is already in use: \
         {detail} (hint: stop whatever listens there, or publish on another port)"
    )]
    PortInUse {
        /// The container's name or id.
        container: String,
        /// Docker's message, which names the address.
        detail: String,
    },
    /// A file to put into a container has a path a tar archive cannot carry.
    #[error("cannot put {path} into container {container}: {reason}")]
    InvalidFile {
        /// The container's name or id.
        container: String,
        /// The file's path inside the container.
        path: String,
        /// What is wrong with the path.
        reason: &'static str,
    },
    /// Copying a container's output (exec, logs) to the caller's writer failed.
    #[error("cannot copy the output of {what}: {source}")]
    Output {
        /// Whose output, e.g. `exec in container lab-sleep`.
        what: String,
        /// The writer's error (often a closed pipe).
        #[source]
        source: io::Error,
    },
    /// Any other failure the engine reports, with Docker's own message.
    #[error("cannot {action}: {detail}")]
    Engine {
        /// What meshlab was doing, e.g. `create network mylab`.
        action: String,
        /// Docker's message.
        detail: String,
    },
}

impl RuntimeError {
    /// An [`RuntimeError::Engine`] error for `action` from bollard's error.
    pub(crate) fn engine(action: impl Into<String>, err: &bollard::errors::Error) -> Self {
        Self::Engine {
            action: action.into(),
            detail: detail(err),
        }
    }
}

fn not_found_hint(object: Object) -> &'static str {
    match object {
        Object::Container => " (hint: `meshlab status` lists the lab's containers)",
        Object::Network | Object::Volume => " (hint: `meshlab up` creates it)",
        Object::Image => {
            " (hint: meshlab never pulls; `meshlab up` builds its image from the binary)"
        }
    }
}

fn removal_command(object: Object, name: &str) -> String {
    match object {
        Object::Container => format!("docker rm -f {name}"),
        other => format!("docker {other} rm {name}"),
    }
}

fn owner_phrase(lab: &str, owner: Option<&str>) -> String {
    match owner {
        Some(owner) => format!("belongs to lab {owner}, not to lab {lab}"),
        None => format!("does not belong to lab {lab}"),
    }
}

/// The HTTP status of an engine error, if the engine answered at all.
pub(crate) fn status(err: &bollard::errors::Error) -> Option<u16> {
    match err {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Docker's own message for an engine error, without bollard's framing.
pub(crate) fn detail(err: &bollard::errors::Error) -> String {
    match err {
        bollard::errors::Error::DockerResponseServerError { message, .. } => {
            message.trim().to_owned()
        }
        bollard::errors::Error::DockerStreamError { error } => error.trim().to_owned(),
        bollard::errors::Error::RequestTimeoutError => {
            "the engine did not answer in time".to_owned()
        }
        other => other.to_string(),
    }
}
