//! PeerAuthentication → the mTLS mode of each inbound port of a workload.
//!
//! Istio's precedence (`pilot/pkg/security/authn`): a policy selecting the workload
//! beats its namespace's policy (no selector), which beats the mesh-wide policy (no
//! selector, in the root namespace `istio-system`); among equals the oldest wins.
//! A mode that is absent or `UNSET` inherits from the next level up, and nothing at
//! all means PERMISSIVE. `portLevelMtls` (workload policies only) is keyed by the
//! workload's port — the container (target) port, not the Service port — and an
//! `UNSET` port inherits the workload's mode.

use std::collections::BTreeMap;

use super::mesh::{Mesh, ROOT_NAMESPACE};
use crate::resource::security::{MtlsMode, PeerAuthentication};

/// What an inbound port accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// mTLS and plaintext on one port, told apart by the first bytes.
    Permissive,
    /// mTLS only: plaintext connections are reset.
    Strict,
    /// Plaintext only.
    Disable,
}

/// The effective mTLS settings of one workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MtlsPolicy {
    /// The mode of every port not listed in `ports`.
    pub mode: Mode,
    /// Modes by workload (target) port.
    pub ports: BTreeMap<u16, Mode>,
}

impl MtlsPolicy {
    /// The mode of workload port `port`.
    pub fn mode_for(&self, port: u16) -> Mode {
        self.ports.get(&port).copied().unwrap_or(self.mode)
    }
}

fn namespace_of(pa: &PeerAuthentication) -> &str {
    pa.metadata.namespace.as_deref().unwrap_or("default")
}

fn has_selector(pa: &PeerAuthentication) -> bool {
    pa.spec
        .selector
        .as_ref()
        .is_some_and(|s| !s.match_labels.is_empty())
}

fn mode_of(mode: Option<MtlsMode>, parent: Mode) -> Mode {
    match mode {
        None | Some(MtlsMode::Unset) => parent,
        Some(MtlsMode::Permissive) => Mode::Permissive,
        Some(MtlsMode::Strict) => Mode::Strict,
        Some(MtlsMode::Disable) => Mode::Disable,
    }
}

/// The mTLS policy of a workload in `namespace` labelled `labels`.
pub fn mtls_policy(mesh: &Mesh, namespace: &str, labels: &BTreeMap<String, String>) -> MtlsPolicy {
    let policies = &mesh.peer_authentications;
    let namespace_wide = |ns: &str| {
        policies
            .iter()
            .find(|pa| namespace_of(pa) == ns && !has_selector(pa))
    };
    let mesh_mode = mode_of(
        namespace_wide(ROOT_NAMESPACE).and_then(|pa| pa.spec.mtls.as_ref()?.mode),
        Mode::Permissive,
    );
    let namespace_mode = mode_of(
        namespace_wide(namespace).and_then(|pa| pa.spec.mtls.as_ref()?.mode),
        mesh_mode,
    );
    let workload = policies.iter().find(|pa| {
        namespace_of(pa) == namespace
            && pa.spec.selector.as_ref().is_some_and(|s| {
                !s.match_labels.is_empty()
                    && s.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
    });
    let Some(workload) = workload else {
        return MtlsPolicy {
            mode: namespace_mode,
            ports: BTreeMap::new(),
        };
    };
    let mode = mode_of(
        workload.spec.mtls.as_ref().and_then(|m| m.mode),
        namespace_mode,
    );
    let ports = workload
        .spec
        .port_level_mtls
        .iter()
        .filter_map(|(port, mtls)| Some((u16::try_from(*port).ok()?, mode_of(mtls.mode, mode))))
        .collect();
    MtlsPolicy { mode, ports }
}
