//! Copying a container's output, as the engine multiplexes it, to the caller's
//! stdout and stderr writers.
//!
//! Without a TTY the engine frames stdout and stderr on one stream; bollard splits
//! the frames and this puts each on its own writer, flushing after each frame so that
//! `meshlab logs -f` and a long `exec` show output as it comes.

use bollard::container::LogOutput;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::error::RuntimeError;

/// Copies `output` to `stdout` and `stderr` until it ends. `what` names the source in
/// errors, e.g. `exec in container lab-sleep`.
pub(crate) async fn copy<S, O, E>(
    mut output: S,
    mut stdout: O,
    mut stderr: E,
    what: &str,
) -> Result<(), RuntimeError>
where
    S: Stream<Item = Result<LogOutput, bollard::errors::Error>> + Unpin,
    O: AsyncWrite + Unpin,
    E: AsyncWrite + Unpin,
{
    while let Some(frame) = output.next().await {
        let frame = frame
            .map_err(|err| RuntimeError::engine(format!("read the output of {what}"), &err))?;
        let written = match frame {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                write(&mut stdout, &message).await
            }
            LogOutput::StdErr { message } => write(&mut stderr, &message).await,
            LogOutput::StdIn { .. } => Ok(()),
        };
        written.map_err(|source| RuntimeError::Output {
            what: what.to_owned(),
            source,
        })?;
    }
    Ok(())
}

async fn write<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    writer.write_all(bytes).await?;
    writer.flush().await
}
