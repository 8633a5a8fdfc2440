//! Fault injection (`fault.delay` / `fault.abort` in a VirtualService), as Envoy's
//! HTTP fault filter applies it.
//!
//! Facts carried over:
//! - Istio sends a fault per route (`TranslateFault`); an unset percentage means
//!   0 % ("if left unspecified, no request will be delayed/aborted"), which the
//!   control plane writes as `percent: 0.0`.
//! - Percentages are fractions of a million (`value * 10000`), see
//!   [`crate::random::chance`].
//! - Envoy's fault filter delays first; when the delay ends it decides the abort.
//!   Both can hit one request (response flags `DI,FI`).
//! - An abort is a local reply with the configured status and the body
//!   [`FAULT_ABORT_BODY`]; response flag `FI`. A delay holds the request for
//!   `fixed`, then it continues normally; response flag `DI`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::random::{RandomSource, chance};

/// Body of a fault-injected abort, as Envoy's fault filter sends it.
pub const FAULT_ABORT_BODY: &str = "fault filter abort";

/// A route's fault injection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// Hold some requests for a while before continuing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<FaultDelay>,
    /// Answer some requests locally with an error status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<FaultAbort>,
}

/// Istio's `fault.delay` with `fixedDelay`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultDelay {
    /// How long to hold the request (`fixedDelay`).
    #[serde(with = "crate::duration")]
    pub fixed: Duration,
    /// Share of requests delayed, 0–100 (`percentage.value`).
    pub percent: f64,
}

/// Istio's `fault.abort` with `httpStatus`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultAbort {
    /// Status of the local reply, 200–599 (Envoy's range).
    pub http_status: u16,
    /// Share of requests aborted, 0–100 (`percentage.value`).
    pub percent: f64,
}

/// What a fault does to one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultDecision {
    /// Hold the request this long first (`DI`).
    pub delay: Option<Duration>,
    /// Then answer with this status and [`FAULT_ABORT_BODY`] (`FI`).
    pub abort: Option<u16>,
}

// === impl Fault ===

impl Fault {
    /// Rolls the dice: one draw for the delay (if configured), then one for the
    /// abort (if configured), in that order.
    pub fn decide(&self, rng: &mut impl RandomSource) -> FaultDecision {
        let delay = self
            .delay
            .as_ref()
            .filter(|delay| chance(delay.percent, rng))
            .map(|delay| delay.fixed);
        let abort = self
            .abort
            .as_ref()
            .filter(|abort| chance(abort.percent, rng))
            .map(|abort| abort.http_status);
        FaultDecision { delay, abort }
    }
}

#[cfg(test)]
mod tests;
