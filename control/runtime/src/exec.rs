//! Running a command in a running container, as `kubectl exec` and `docker exec` do,
//! with its output demultiplexed and its exit status passed through unchanged.

use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecResults};
use tokio::io::AsyncWrite;

use crate::container::not_found;
use crate::docker::Docker;
use crate::error::{self, RuntimeError};
use crate::output;

/// How long to wait, after the output ends, for the engine to record the exit status.
const EXIT_STATUS_WAIT: Duration = Duration::from_secs(5);

/// A command to run in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    /// The command and its arguments, e.g. `["curl", "-s", "http://productpage:9080/"]`.
    pub cmd: Vec<String>,
    /// Extra environment variables, in order.
    pub env: Vec<(String, String)>,
    /// The user to run as (default: the container's).
    pub user: Option<String>,
    /// The working directory (default: the container's).
    pub working_dir: Option<String>,
}

impl ExecSpec {
    /// Runs `cmd` with the container's environment, user and directory.
    pub fn new(cmd: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            cmd: cmd.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            user: None,
            working_dir: None,
        }
    }
}

impl Docker {
    /// Runs `spec` in `container`, copying its stdout and stderr to the writers, and
    /// returns its exit status exactly (126/127 when the command cannot be run).
    pub async fn exec<O, E>(
        &self,
        container: &str,
        spec: &ExecSpec,
        stdout: O,
        stderr: E,
    ) -> Result<i64, RuntimeError>
    where
        O: AsyncWrite + Unpin,
        E: AsyncWrite + Unpin,
    {
        let what = format!("exec in container {container}");
        let config = CreateExecOptions {
            cmd: Some(spec.cmd.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            user: spec.user.clone(),
            working_dir: spec.working_dir.clone(),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let created = self
            .client
            .create_exec(container, config)
            .await
            .map_err(|err| match error::status(&err) {
                Some(404) => not_found(container),
                Some(409) => RuntimeError::NotRunning {
                    container: container.to_owned(),
                },
                _ => RuntimeError::engine(what.clone(), &err),
            })?;
        match self
            .client
            .start_exec(&created.id, None)
            .await
            .map_err(|err| RuntimeError::engine(what.clone(), &err))?
        {
            StartExecResults::Attached { output, .. } => {
                output::copy(output, stdout, stderr, &what).await?;
            }
            StartExecResults::Detached => {}
        }
        // The output ends when the process does; the engine may record the status a
        // moment later.
        let deadline = tokio::time::Instant::now() + EXIT_STATUS_WAIT;
        loop {
            let inspected = self
                .client
                .inspect_exec(&created.id)
                .await
                .map_err(|err| RuntimeError::engine(what.clone(), &err))?;
            match (inspected.running, inspected.exit_code) {
                (Some(false), Some(code)) => return Ok(code),
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(RuntimeError::Engine {
                        action: what,
                        detail: "the engine reported no exit status".to_owned(),
                    });
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}
