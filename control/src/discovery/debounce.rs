//! Debouncing snapshots: a burst of changes becomes one push.
//!
//! Applying a directory of manifests changes the store many times in a few
//! milliseconds; pushing after each change would make every proxy rebuild its
//! configuration many times for nothing. Like Istio (`PILOT_DEBOUNCE_AFTER`,
//! `PILOT_DEBOUNCE_MAX`), a change is passed on once no other change has followed
//! for a quiet period, or once changes have kept coming for a maximum delay, so a
//! never-ending trickle still gets pushed. Istio's maximum is 10 s; a lab wants to
//! see its changes sooner, so meshlab's default is 1 s.

use std::{sync::Arc, time::Duration};

use tokio::{sync::watch, time::Instant};

/// Debounce timings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Debounce {
    /// Push once no change has followed for this long (default 100 ms).
    pub quiet: Duration,
    /// Push at the latest this long after the first change of a burst (default 1 s).
    pub max: Duration,
}

impl Default for Debounce {
    fn default() -> Self {
        Self {
            quiet: Duration::from_millis(100),
            max: Duration::from_secs(1),
        }
    }
}

/// Passes `input`'s snapshots on to `output`, debounced, until `input`'s sender is
/// gone (a last pending change is still passed on).
pub(super) async fn run<S>(
    mut input: watch::Receiver<Arc<S>>,
    output: watch::Sender<Arc<S>>,
    timings: Debounce,
) {
    while input.changed().await.is_ok() {
        let deadline = Instant::now() + timings.max;
        loop {
            let until = (Instant::now() + timings.quiet).min(deadline);
            match tokio::time::timeout_at(until, input.changed()).await {
                // Another change: wait for quiet again, unless the deadline passed.
                Ok(Ok(())) if Instant::now() < deadline => {}
                // Quiet, the deadline, or no more changes to come: push.
                _ => break,
            }
        }
        let latest = Arc::clone(&input.borrow_and_update());
        output.send_replace(latest);
    }
}

#[cfg(test)]
mod tests;
