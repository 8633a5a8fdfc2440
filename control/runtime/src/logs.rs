//! A container's logs, as `kubectl logs [-f] [--tail N]` shows them: what its process
//! wrote to stdout and stderr, each kept on its own writer.

use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt;
use tokio::io::AsyncWrite;

use crate::container::not_found;
use crate::docker::Docker;
use crate::error::{self, RuntimeError};
use crate::output;

impl Docker {
    /// Copies the logs of `container` to the writers: the last `tail` lines, or all;
    /// with `follow`, then everything it writes until it stops (or the future is
    /// dropped).
    pub async fn logs<O, E>(
        &self,
        container: &str,
        follow: bool,
        tail: Option<usize>,
        stdout: O,
        stderr: E,
    ) -> Result<(), RuntimeError>
    where
        O: AsyncWrite + Unpin,
        E: AsyncWrite + Unpin,
    {
        let options = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            tail: tail.map_or_else(|| "all".to_owned(), |n| n.to_string()),
            ..Default::default()
        };
        let mut stream = self
            .client
            .logs(container, Some(options))
            .boxed()
            .peekable();
        // A missing container is the first item; report it as such.
        if let Some(Err(err)) = std::pin::Pin::new(&mut stream).peek().await
            && error::status(err) == Some(404)
        {
            return Err(not_found(container));
        }
        output::copy(
            stream,
            stdout,
            stderr,
            &format!("the logs of container {container}"),
        )
        .await
    }
}
