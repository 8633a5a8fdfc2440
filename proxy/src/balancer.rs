//! Load balancing: which endpoint of a cluster gets a request (a DestinationRule's
//! `loadBalancer`).
//!
//! Envoy's algorithms (`source/extensions/load_balancing_policies`), over the
//! endpoints outlier detection has not ejected:
//! - `ROUND_ROBIN`: in turn.
//! - `LEAST_REQUEST` (Istio's default, `defaultLBAlgorithm`): the power of two
//!   choices — draw two endpoints at random (with replacement) and take the one
//!   with fewer active requests.
//! - `RANDOM`: at random.
//! - `RING_HASH` (`consistentHash`): a ring of at least 1024 points, each endpoint
//!   owning points in proportion to its weight; a request goes to the owner of the
//!   first point at or after its hash, skipping ejected endpoints. Without a hash
//!   (the header or cookie is missing) Envoy picks at random.
//!
//! Where endpoints have different weights (ServiceEntry endpoints may), round
//! robin, least request and random pick by weight at random — a simplification of
//! Envoy's earliest-deadline-first scheduling with the same long-run shares.
//!
//! Nothing here allocates per pick: eligible endpoints are counted and indexed in
//! place.

use std::hash::{DefaultHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use meshlab_proxy_config::LbPolicy;

/// Envoy's (and Istio's) default `minimum_ring_size`.
const MIN_RING_SIZE: usize = 1024;

/// What the balancer needs to know about an endpoint.
pub(crate) trait Balanced {
    /// Its weight (≥ 1).
    fn weight(&self) -> u32;
    /// Requests in flight to it.
    fn active_requests(&self) -> u64;
    /// Its address (names its ring points).
    fn address(&self) -> SocketAddr;
}

/// A hash ring over a set of endpoints.
#[derive(Debug)]
pub(crate) struct Ring {
    /// `(point, endpoint index)`, sorted by point.
    points: Vec<(u64, usize)>,
}

/// A stable 64-bit hash (SipHash with fixed keys), for request keys and ring
/// points alike.
pub(crate) fn hash64(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(bytes);
    hasher.finish()
}

/// Picks an endpoint index among `hosts` for which `eligible` holds, by `policy`.
/// `rr` is the cluster's round-robin cursor; `ring` builds or returns the ring of
/// this endpoint set; `hash` is the request's hash for `RING_HASH`.
pub(crate) fn pick<'r, T: Balanced>(
    policy: &LbPolicy,
    hosts: &[T],
    eligible: &dyn Fn(usize) -> bool,
    rr: &AtomicUsize,
    ring: &dyn Fn() -> &'r Ring,
    hash: Option<u64>,
) -> Option<usize> {
    let count = (0..hosts.len()).filter(|i| eligible(*i)).count();
    if count == 0 {
        return None;
    }
    let nth = |n: usize| (0..hosts.len()).filter(|i| eligible(*i)).nth(n);
    let weighted = {
        let mut weights = (0..hosts.len())
            .filter(|i| eligible(*i))
            .map(|i| hosts[i].weight());
        let first = weights.next();
        weights.any(|w| Some(w) != first)
    };
    match policy {
        LbPolicy::RingHash => match hash {
            Some(hash) => ring().owner(hash, eligible),
            None => nth(fastrand::usize(..count)),
        },
        _ if weighted => {
            let total: u64 = (0..hosts.len())
                .filter(|i| eligible(*i))
                .map(|i| u64::from(hosts[i].weight()))
                .sum();
            let mut point = fastrand::u64(..total.max(1));
            (0..hosts.len()).filter(|i| eligible(*i)).find(|i| {
                let weight = u64::from(hosts[*i].weight());
                if point < weight {
                    true
                } else {
                    point -= weight;
                    false
                }
            })
        }
        LbPolicy::RoundRobin => nth(rr.fetch_add(1, Relaxed) % count),
        LbPolicy::LeastRequest => {
            let first = nth(fastrand::usize(..count))?;
            let second = nth(fastrand::usize(..count))?;
            if hosts[second].active_requests() < hosts[first].active_requests() {
                Some(second)
            } else {
                Some(first)
            }
        }
        LbPolicy::Random | LbPolicy::ClusterProvided => nth(fastrand::usize(..count)),
    }
}

// === impl Ring ===

impl Ring {
    /// The ring of `hosts`: at least [`MIN_RING_SIZE`] points, shared by weight.
    pub(crate) fn build<T: Balanced>(hosts: &[T]) -> Self {
        let total: u64 = hosts.iter().map(|h| u64::from(h.weight().max(1))).sum();
        let mut points = Vec::new();
        for (index, host) in hosts.iter().enumerate() {
            let share = u64::from(host.weight().max(1)) * MIN_RING_SIZE as u64;
            let replicas = share.div_ceil(total.max(1));
            let address = host.address().to_string();
            for replica in 0..replicas {
                let point = hash64(format!("{address}_{replica}").as_bytes());
                points.push((point, index));
            }
        }
        points.sort_unstable();
        Self { points }
    }

    /// The first eligible endpoint at or after `hash` on the ring.
    fn owner(&self, hash: u64, eligible: &dyn Fn(usize) -> bool) -> Option<usize> {
        let start = self.points.partition_point(|(point, _)| *point < hash);
        self.points[start..]
            .iter()
            .chain(&self.points[..start])
            .map(|(_, index)| *index)
            .find(|index| eligible(*index))
    }
}

#[cfg(test)]
mod tests;
