//! Connecting to the local Docker engine, and telling apart why that fails.
//!
//! bollard reports a missing socket, a socket this user may not open and a socket
//! nobody listens on as one opaque transport error, and a learner needs a different
//! fix for each. So the socket is probed once with a plain `connect` before bollard
//! takes over, and the engine's `/version` (which doubles as the ping) decides both
//! that it answers and which API version to speak.
//!
//! Only unix sockets: meshlab drives the engine on this machine, so neither TCP nor
//! TLS is compiled in.

use std::io::ErrorKind;
use std::time::Duration;

use bollard::ClientVersion;
use tokio::net::UnixStream;

use crate::error::RuntimeError;

/// The engine's address when `DOCKER_HOST` is unset.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// The oldest Engine API meshlab speaks: 1.41, Docker 20.10.
pub const MIN_API: (usize, usize) = (1, 41);

/// How long the engine has to answer the first request before it counts as hung.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Per-request limit, in seconds, for the response to begin. Importing an image of a
/// 200 MB debug binary takes a few seconds; a minute means something is wrong.
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// A connection to the local Docker engine. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct Docker {
    pub(crate) client: bollard::Docker,
    host: String,
}

impl Docker {
    /// Connects to the engine named by `DOCKER_HOST` (unix sockets only), else to
    /// [`DEFAULT_HOST`], and checks that it answers and is recent enough.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_HOST.to_owned());
        Self::connect_to(&host).await
    }

    /// Connects to the engine at `host`, a `unix://` address.
    pub async fn connect_to(host: &str) -> Result<Self, RuntimeError> {
        let Some(path) = host.strip_prefix("unix://") else {
            return Err(RuntimeError::UnsupportedHost {
                host: host.to_owned(),
            });
        };
        let host = host.to_owned();
        if let Err(err) = UnixStream::connect(path).await {
            return Err(match err.kind() {
                ErrorKind::NotFound => RuntimeError::NoSocket { host },
                ErrorKind::PermissionDenied => RuntimeError::PermissionDenied { host },
                ErrorKind::ConnectionRefused => RuntimeError::NotAnswering {
                    host,
                    reason: "nothing listens on the socket".to_owned(),
                },
                _ => RuntimeError::NotAnswering {
                    host,
                    reason: err.to_string(),
                },
            });
        }
        let newest = bollard::API_DEFAULT_VERSION;
        let probe = bollard::Docker::connect_with_unix(&host, REQUEST_TIMEOUT_SECS, newest)
            .map_err(|err| not_answering(&host, &err))?;
        let version = match tokio::time::timeout(ANSWER_TIMEOUT, probe.version()).await {
            Ok(Ok(version)) => version,
            Ok(Err(err)) => return Err(not_answering(&host, &err)),
            Err(_) => {
                return Err(RuntimeError::NotAnswering {
                    host,
                    reason: format!(
                        "the engine accepted the connection but did not answer within {}s",
                        ANSWER_TIMEOUT.as_secs()
                    ),
                });
            }
        };
        let reported = version.api_version.unwrap_or_default();
        let api = parse_api(&reported)
            .filter(|api| *api >= MIN_API)
            .ok_or_else(|| RuntimeError::ApiTooOld {
                host: host.clone(),
                version: reported.clone(),
            })?;
        let speak = api.min((newest.major_version, newest.minor_version));
        let client = bollard::Docker::connect_with_unix(
            &host,
            REQUEST_TIMEOUT_SECS,
            &ClientVersion {
                major_version: speak.0,
                minor_version: speak.1,
            },
        )
        .map_err(|err| not_answering(&host, &err))?;
        Ok(Self { client, host })
    }

    /// A client for `host` (a `unix://` address) that has not asked the engine
    /// anything: its requests fail if none answers. For in-process tests of code
    /// that holds a client without using it.
    pub fn unchecked(host: &str) -> Result<Self, RuntimeError> {
        let client = bollard::Docker::connect_with_unix(
            host,
            REQUEST_TIMEOUT_SECS,
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|err| not_answering(host, &err))?;
        Ok(Self {
            client,
            host: host.to_owned(),
        })
    }

    /// The engine's address, e.g. `unix:///var/run/docker.sock`.
    pub fn host(&self) -> &str {
        &self.host
    }
}

fn not_answering(host: &str, err: &bollard::errors::Error) -> RuntimeError {
    RuntimeError::NotAnswering {
        host: host.to_owned(),
        reason: crate::error::detail(err),
    }
}

/// `"1.41"` → `(1, 41)`.
fn parse_api(version: &str) -> Option<(usize, usize)> {
    let (major, minor) = version.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests;
