//! What the server knows about each connected proxy, for `meshlab proxy-status`.

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Mutex, PoisonError},
    time::SystemTime,
};

use meshlab_control_api::ResourceType;
use meshlab_proxy_config::ProxyNode;

/// One connected proxy.
#[derive(Clone, Debug, PartialEq)]
pub struct ProxyStatus {
    /// Who it is.
    pub node: ProxyNode,
    /// Its build version, as it says.
    pub version: String,
    /// When its stream opened.
    pub connected_at: SystemTime,
    /// Every resource type (all of [`ResourceType::ALL`]), in push order.
    pub types: BTreeMap<ResourceType, TypeStatus>,
}

/// One resource type of one proxy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TypeStatus {
    /// The last response sent.
    pub sent: Option<Sent>,
    /// The last response acked.
    pub acked: Option<Acked>,
    /// The last response rejected (kept after later ACKs, for the record).
    pub nacked: Option<Nacked>,
}

/// A response sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// Its version.
    pub version: String,
    /// Its nonce.
    pub nonce: String,
    /// When.
    pub at: SystemTime,
    /// How many resources it carried.
    pub resources: usize,
}

/// A response the proxy accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acked {
    /// Its version: what the proxy runs.
    pub version: String,
    /// Its nonce.
    pub nonce: String,
    /// When the ACK arrived.
    pub at: SystemTime,
}

/// A response the proxy rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nacked {
    /// Its version: what the proxy refused.
    pub version: String,
    /// Its nonce.
    pub nonce: String,
    /// The proxy's reason.
    pub error: String,
    /// When the NACK arrived.
    pub at: SystemTime,
}

/// istioctl's sync states, plus NACKED.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// The proxy acked the last response sent.
    Synced,
    /// The last response sent has been neither acked nor rejected yet.
    Stale,
    /// Nothing was sent: the proxy did not subscribe, or nothing generates the type.
    NotSent,
    /// The proxy rejected the last response sent; it still runs the version in
    /// [`TypeStatus::acked`], if any.
    Nacked {
        /// The proxy's reason.
        error: String,
    },
}

/// The statuses of connected proxies, by connection.
#[derive(Debug, Default)]
pub(super) struct Registry {
    proxies: Mutex<BTreeMap<u64, ProxyStatus>>,
}

// === impl TypeStatus ===

impl TypeStatus {
    /// The sync state, by nonce as istioctl decides it: the last response sent is
    /// the one acked (SYNCED), rejected (NACKED) or neither (STALE).
    pub fn sync(&self) -> SyncState {
        let Some(sent) = &self.sent else {
            return SyncState::NotSent;
        };
        if self
            .acked
            .as_ref()
            .is_some_and(|acked| acked.nonce == sent.nonce)
        {
            return SyncState::Synced;
        }
        match &self.nacked {
            Some(nacked) if nacked.nonce == sent.nonce => SyncState::Nacked {
                error: nacked.error.clone(),
            },
            _ => SyncState::Stale,
        }
    }
}

// === impl SyncState ===

impl fmt::Display for SyncState {
    /// The word `proxy-status` prints: `SYNCED`, `STALE`, `NOT SENT`, `NACKED`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Synced => "SYNCED",
            Self::Stale => "STALE",
            Self::NotSent => "NOT SENT",
            Self::Nacked { .. } => "NACKED",
        })
    }
}

// === impl ProxyStatus ===

impl ProxyStatus {
    /// The sync state of `resource_type`.
    pub fn sync(&self, resource_type: ResourceType) -> SyncState {
        self.types
            .get(&resource_type)
            .map_or(SyncState::NotSent, TypeStatus::sync)
    }
}

// === impl Registry ===

impl Registry {
    /// Records a new connection (its types not sent yet).
    pub(super) fn insert(&self, id: u64, mut status: ProxyStatus) {
        for resource_type in ResourceType::ALL {
            status.types.entry(resource_type).or_default();
        }
        self.lock().insert(id, status);
    }

    /// Replaces one type's status of a connection.
    pub(super) fn update(&self, id: u64, resource_type: ResourceType, status: TypeStatus) {
        if let Some(proxy) = self.lock().get_mut(&id) {
            proxy.types.insert(resource_type, status);
        }
    }

    /// Forgets a closed connection.
    pub(super) fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Every connection's status, by `POD.NAMESPACE`, then by age.
    pub(super) fn proxy_status(&self) -> Vec<ProxyStatus> {
        let mut proxies: Vec<ProxyStatus> = self.lock().values().cloned().collect();
        proxies.sort_by(|a, b| {
            (&a.node.pod, &a.node.namespace, a.connected_at).cmp(&(
                &b.node.pod,
                &b.node.namespace,
                b.connected_at,
            ))
        });
        proxies
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, ProxyStatus>> {
        // Every update replaces whole values, so a panic elsewhere cannot leave a
        // half-written status behind.
        self.proxies.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
