//! meshlab's thin, typed layer over the local Docker Engine API.
//!
//! Two callers drive Docker: the CLI on the host (`meshlab up`, `down`, `exec`,
//! `logs`) and the control plane's pod reconciler inside the lab's control container.
//! Both must name, label and clean up objects the same way, and both must turn the
//! engine's terse failures into errors a learner can act on, so that lives here once.
//! The API speaks Docker's and Kubernetes' vocabulary (images, networks, volumes,
//! containers; labs, pods) in plain Rust types and keeps bollard, the client library,
//! out of its signatures.
//!
//! The runtime contracts it keeps (DESIGN.md):
//! - **no registry, no pulls**: [`Docker::ensure_image`] imports an image made from
//!   the meshlab binary itself, and a missing image is an error, never a pull;
//! - **several labs at once**: every object carries the [`labels::LAB`] label and a
//!   `<lab>-` prefix (see [`lab`] for the naming scheme), and
//!   [`Docker::remove_lab`] removes exactly one lab's objects;
//! - **pods share one network namespace**: [`NetworkMode::Container`].
//!
//! Only the local unix socket is supported, so no TLS stack is compiled in.
//!
//! ```no_run
//! # async fn demo() -> Result<(), meshlab_control_runtime::RuntimeError> {
//! use meshlab_control_runtime::{ContainerSpec, Docker, ExecSpec};
//!
//! let docker = Docker::connect().await?;
//! docker.ensure_network("demo").await?;
//! let image = docker.ensure_image(&std::env::current_exe().unwrap()).await?;
//! let mut spec = ContainerSpec::new("demo", "sleep", &image.tag);
//! spec.cmd = vec!["/bin/sleep".into(), "infinity".into()];
//! let id = docker.create_container(&spec).await?;
//! docker.start(&id).await?;
//! let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
//! let curl = ExecSpec::new(["curl", "-s", "http://httpbin:8080/ip"]);
//! let status = docker.exec(&id, &curl, &mut stdout, &mut stderr).await?;
//! println!("exit {status}: {}", String::from_utf8_lossy(&stdout));
//! docker.remove_lab("demo", true).await?;
//! # Ok(())
//! # }
//! ```

mod archive;
mod container;
mod docker;
mod error;
mod exec;
mod image;
pub mod lab;
pub mod labels;
mod logs;
mod network;
mod output;
mod spec;
mod time;
mod volume;

pub use container::{ContainerInfo, ContainerSummary, State};
pub use docker::{DEFAULT_HOST, Docker, MIN_API};
pub use error::{Object, RuntimeError};
pub use exec::ExecSpec;
pub use image::{BINARY_PATH, CA_CERTS_DIR, Image, PROXY_UID, REPOSITORY, STATE_DIR};
pub use lab::{Removed, port_free, validate_lab_name};
pub use network::Network;
pub use spec::{ContainerSpec, File, Mount, NetworkMode, Publish, RestartPolicy};
