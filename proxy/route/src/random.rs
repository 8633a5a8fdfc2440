//! Randomness, injected: this crate never draws a random number of its own.
//!
//! Every probabilistic decision (weighted clusters, fault percentages, mirror
//! percentages, retry back-off jitter) takes its numbers from a [`RandomSource`] the
//! caller passes in. The proxy passes a real generator; tests and the control plane's
//! simulations pass a [`Sequence`] and get the same answer every run.

/// A source of uniformly distributed 64-bit numbers.
///
/// Implemented for any `FnMut() -> u64`, so the proxy can pass
/// `&mut || fastrand::u64(..)` without this crate depending on a generator.
pub trait RandomSource {
    /// The next uniformly distributed value.
    fn next_u64(&mut self) -> u64;
}

impl<F: FnMut() -> u64> RandomSource for F {
    fn next_u64(&mut self) -> u64 {
        self()
    }
}

/// A scripted [`RandomSource`]: returns the given values in order, then starts over.
///
/// An empty sequence always returns 0.
#[derive(Clone, Debug, Default)]
pub struct Sequence {
    values: Vec<u64>,
    next: usize,
}

impl Sequence {
    /// A source that yields `values` in order, cycling.
    pub fn new(values: impl Into<Vec<u64>>) -> Self {
        Self {
            values: values.into(),
            next: 0,
        }
    }

    /// How many values have been drawn so far (useful to assert that a decision
    /// consumed exactly the draws it documents).
    pub fn drawn(&self) -> usize {
        self.next
    }
}

impl RandomSource for Sequence {
    fn next_u64(&mut self) -> u64 {
        let value = match self.values.len() {
            0 => 0,
            len => self.values[self.next % len],
        };
        self.next += 1;
        value
    }
}

/// Envoy's denominator for Istio percentages: Istio translates `percentage.value`
/// into a `FractionalPercent` with denominator `MILLION` and numerator
/// `value * 10000` (`pilot/pkg/networking/core/route/route.go`,
/// `translatePercentToFractionalPercent`).
const MILLION: u64 = 1_000_000;

/// Whether an event with probability `percent` (0–100) happens, as Envoy decides
/// it: `random % 1_000_000 < percent * 10_000`.
///
/// Always consumes exactly one value from `rng`, even for 0 % and 100 %, so scripted
/// sequences line up with the documented draw order. Values outside 0–100 are
/// clamped (validation rejects them before they get here).
pub fn chance(percent: f64, rng: &mut impl RandomSource) -> bool {
    let draw = rng.next_u64() % MILLION;
    // Truncation, as Istio's `uint32(p.Value * 10000)`.
    let numerator = (percent.clamp(0.0, 100.0) * 10_000.0) as u64;
    draw < numerator
}
