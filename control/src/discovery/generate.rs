//! Generators: what each proxy is sent, as pure functions of `(snapshot, node)`
//! registered by resource type, and the versions of what they produce.

use std::{collections::BTreeMap, fmt};

use meshlab_control_api::{ResourceType, TypedResource, Wire, v1};
use meshlab_proxy_config::ProxyNode;
use prost::Message as _;

type Generate<S> = Box<dyn Fn(&S, &ProxyNode) -> Vec<v1::Resource> + Send + Sync>;

/// The generator of each resource type. A type without one is never sent (its
/// proxy-status is NOT SENT).
pub struct Generators<S> {
    by_type: BTreeMap<ResourceType, Generate<S>>,
}

/// One type's resources for one proxy, and their version.
#[derive(Debug)]
pub(super) struct Generated {
    /// A hash of the encoded resources.
    pub(super) version: String,
    pub(super) resources: Vec<v1::Resource>,
}

// === impl Generators ===

impl<S> Generators<S> {
    /// No generators.
    pub fn new() -> Self {
        Self {
            by_type: BTreeMap::new(),
        }
    }

    /// Registers `generate` for the resource type of `R` (replacing any earlier
    /// one). It must be a pure function: same snapshot and node, same resources,
    /// in the same order (order is part of the version).
    pub fn with<R: Wire>(
        mut self,
        generate: impl Fn(&S, &ProxyNode) -> Vec<R> + Send + Sync + 'static,
    ) -> Self {
        let wrapped = move |snapshot: &S, node: &ProxyNode| {
            generate(snapshot, node)
                .into_iter()
                .map(|resource| resource.into_message().into_resource())
                .collect()
        };
        self.by_type
            .insert(<R::Message as TypedResource>::TYPE, Box::new(wrapped));
        self
    }

    /// The resources of `resource_type` for `node`, if that type has a generator.
    pub(super) fn generate(
        &self,
        resource_type: ResourceType,
        snapshot: &S,
        node: &ProxyNode,
    ) -> Option<Generated> {
        let resources = self.by_type.get(&resource_type)?(snapshot, node);
        Some(Generated {
            version: version(&resources),
            resources,
        })
    }
}

impl<S> Default for Generators<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> fmt::Debug for Generators<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.by_type.keys()).finish()
    }
}

/// The version of a set of resources: FNV-1a (64 bits) over their encodings, each
/// preceded by its length, in hex. Messages use ordered maps, so equal resources
/// always encode, and hash, the same.
fn version(resources: &[v1::Resource]) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut hash = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    for resource in resources {
        let encoded = resource.encode_to_vec();
        feed(&(encoded.len() as u64).to_le_bytes());
        feed(&encoded);
    }
    format!("{hash:016x}")
}
