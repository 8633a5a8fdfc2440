//! Outlier detection: taking endpoints that keep failing out of load balancing for
//! a while (a DestinationRule's `outlierDetection`).
//!
//! Envoy's rules (`source/extensions/outlier_detection` and the outlier detection
//! architecture docs), as Istio configures them:
//! - Without `split_external_local_origin_errors` (Istio does not set it), failures
//!   the proxy sees itself count like upstream answers: a failed connection or a
//!   reset as 503, a timeout as 504.
//! - Consecutive 5xx (`consecutive5xxErrors`) counts every 5xx; consecutive gateway
//!   failures (`consecutiveGatewayErrors`) counts 502, 503 and 504. Any other answer
//!   resets a counter. Reaching a threshold ejects the endpoint at once (the
//!   `interval` paces un-ejection and success-rate checks, which Istio does not
//!   configure).
//! - An ejection lasts `baseEjectionTime × number of ejections so far`, capped at
//!   Envoy's default `max_ejection_time` of 300 s (or the base, if longer).
//! - An endpoint is ejected only if the ejected share, counting it, stays within
//!   `maxEjectionPercent`; otherwise `outlier_detection.ejections_overflow` counts.
//! - `minHealthPercent` is Envoy's panic threshold: below it the load balancer
//!   ignores ejections. Istio writes 0 unless told, so with every endpoint ejected
//!   requests fail with 503 `UH` ("no healthy upstream").
//!
//! Un-ejection is checked when hosts are picked rather than on a timer; the
//! difference is at most one `interval`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use meshlab_proxy_config::OutlierDetection;

/// Envoy's default `max_ejection_time`.
const MAX_EJECTION_TIME: Duration = Duration::from_secs(300);

/// One endpoint's outlier state.
#[derive(Debug, Default)]
pub(crate) struct HostOutlier {
    consecutive_5xx: AtomicU32,
    consecutive_gateway: AtomicU32,
    /// Milliseconds since [`epoch`] until which the host is ejected; 0 = never.
    ejected_until: AtomicU64,
    ejections: AtomicU32,
}

/// Which detector tripped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trip {
    /// `consecutive_5xx`.
    Consecutive5xx,
    /// `consecutive_gateway_failure`.
    ConsecutiveGatewayFailure,
}

/// The time base of ejections.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Now, in milliseconds since [`epoch`] (at least 1, so 0 can mean "never").
pub(crate) fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

// === impl HostOutlier ===

impl HostOutlier {
    /// Whether the host is ejected at `now`.
    pub(crate) fn is_ejected(&self, now: u64) -> bool {
        now < self.ejected_until.load(Relaxed)
    }

    /// Records one result (a status; local failures as 503 or 504). Returns the
    /// detector that reached its threshold, if one did.
    pub(crate) fn record(&self, status: u16, config: &OutlierDetection) -> Option<Trip> {
        if !(500..600).contains(&status) {
            self.consecutive_5xx.store(0, Relaxed);
            self.consecutive_gateway.store(0, Relaxed);
            return None;
        }
        let fives = self.consecutive_5xx.fetch_add(1, Relaxed) + 1;
        let gateway = if (502..=504).contains(&status) {
            self.consecutive_gateway.fetch_add(1, Relaxed) + 1
        } else {
            self.consecutive_gateway.store(0, Relaxed);
            0
        };
        if config.consecutive_5xx.is_some_and(|limit| fives >= limit) {
            Some(Trip::Consecutive5xx)
        } else if config
            .consecutive_gateway_failure
            .is_some_and(|limit| gateway >= limit)
        {
            Some(Trip::ConsecutiveGatewayFailure)
        } else {
            None
        }
    }

    /// Ejects the host from `now` for its next ejection time.
    pub(crate) fn eject(&self, now: u64, base: Duration) {
        let count = self.ejections.fetch_add(1, Relaxed) + 1;
        let max = MAX_EJECTION_TIME.max(base);
        let length = base.saturating_mul(count).min(max);
        let until = now.saturating_add(u64::try_from(length.as_millis()).unwrap_or(u64::MAX));
        self.ejected_until.store(until, Relaxed);
        self.consecutive_5xx.store(0, Relaxed);
        self.consecutive_gateway.store(0, Relaxed);
    }
}

/// Whether one more ejection keeps the ejected share within `max_percent` (Envoy:
/// `100 × (ejected + 1) / hosts <= max_ejection_percent`).
pub(crate) fn may_eject(ejected: usize, hosts: usize, max_percent: u32) -> bool {
    hosts > 0 && 100 * (ejected + 1) <= hosts * max_percent as usize
}

/// Whether the load balancer should ignore ejections: fewer healthy hosts than
/// `min_health_percent` (Envoy's panic threshold).
pub(crate) fn panic_mode(healthy: usize, hosts: usize, min_health_percent: u32) -> bool {
    hosts > 0 && 100 * healthy < hosts * min_health_percent as usize
}

#[cfg(test)]
mod tests;
