//! The mesh-wide settings Istio keeps in `meshConfig`, for the one a lab needs:
//! `outboundTrafficPolicy.mode` (ALLOW_ANY or REGISTRY_ONLY).
//!
//! Istio sets it at install time (`istioctl install --set
//! meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY`) or by editing the `istio`
//! ConfigMap. A lab sets it the same way, at run time, with `meshlab mesh-config set
//! outboundTrafficPolicy.mode=REGISTRY_ONLY` (or `meshlab up --set …`); it is kept in
//! the state volume, so it survives restarts, and proxies get it with their next push.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::resource::networking::OutboundMode;

const FILE: &str = "mesh-config.json";

/// The mesh configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshConfig {
    /// Where sidecars send traffic to hosts they do not know.
    pub outbound_traffic_policy: OutboundTrafficPolicy,
}

/// `meshConfig.outboundTrafficPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboundTrafficPolicy {
    /// ALLOW_ANY (Istio's default) or REGISTRY_ONLY.
    pub mode: OutboundMode,
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            outbound_traffic_policy: OutboundTrafficPolicy {
                mode: OutboundMode::AllowAny,
            },
        }
    }
}

/// Why a setting could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum MeshConfigError {
    /// The setting is not one meshlab knows.
    #[error("unknown mesh setting {0:?} (meshlab supports outboundTrafficPolicy.mode)")]
    UnknownKey(String),
    /// The value is not allowed.
    #[error("outboundTrafficPolicy.mode must be ALLOW_ANY or REGISTRY_ONLY, not {0:?}")]
    InvalidMode(String),
    /// Reading or writing the file failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
    /// The stored file is not valid.
    #[error("{path} is not a valid mesh configuration: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        reason: String,
    },
}

impl MeshConfig {
    /// The configuration stored in `dir`, or the default.
    pub fn load(dir: &Path) -> Result<Self, MeshConfigError> {
        let path = dir.join(FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| MeshConfigError::Corrupt {
                path,
                reason: e.to_string(),
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(MeshConfig::default()),
            Err(source) => Err(MeshConfigError::Io {
                action: "read",
                path,
                source,
            }),
        }
    }

    /// Stores the configuration in `dir` (write then rename).
    pub fn save(&self, dir: &Path) -> Result<(), MeshConfigError> {
        let path = dir.join(FILE);
        let temp = dir.join(format!("{FILE}.tmp"));
        let io = |action, path: &Path| {
            let path = path.to_owned();
            move |source| MeshConfigError::Io {
                action,
                path,
                source,
            }
        };
        let bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        std::fs::write(&temp, bytes).map_err(io("write", &temp))?;
        std::fs::rename(&temp, &path).map_err(io("replace", &path))
    }

    /// Applies `key=value` as `--set meshConfig.<key>=<value>` does.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), MeshConfigError> {
        let key = key.strip_prefix("meshConfig.").unwrap_or(key);
        match key {
            "outboundTrafficPolicy.mode" => {
                self.outbound_traffic_policy.mode = match value {
                    "ALLOW_ANY" => OutboundMode::AllowAny,
                    "REGISTRY_ONLY" => OutboundMode::RegistryOnly,
                    other => return Err(MeshConfigError::InvalidMode(other.to_owned())),
                };
                Ok(())
            }
            other => Err(MeshConfigError::UnknownKey(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests;
