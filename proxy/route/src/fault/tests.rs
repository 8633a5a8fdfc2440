use std::time::Duration;

use super::{Fault, FaultAbort, FaultDecision, FaultDelay};
use crate::random::Sequence;

fn delay(percent: f64) -> Fault {
    Fault {
        delay: Some(FaultDelay {
            fixed: Duration::from_secs(7),
            percent,
        }),
        abort: None,
    }
}

fn abort(percent: f64) -> Fault {
    Fault {
        delay: None,
        abort: Some(FaultAbort {
            http_status: 500,
            percent,
        }),
    }
}

/// How many of 1000 evenly spread draws hit.
fn hits(fault: &Fault) -> (usize, usize) {
    let mut rng = Sequence::new((0..1000).map(|i| i * 1000).collect::<Vec<u64>>());
    let mut delayed = 0;
    let mut aborted = 0;
    for _ in 0..1000 {
        let decision = fault.decide(&mut rng);
        delayed += usize::from(decision.delay.is_some());
        aborted += usize::from(decision.abort.is_some());
    }
    (delayed, aborted)
}

#[test]
fn percentages_zero_fifty_hundred() {
    let table = [
        (delay(0.0), (0, 0)),
        (delay(50.0), (500, 0)),
        (delay(100.0), (1000, 0)),
        (abort(0.0), (0, 0)),
        (abort(50.0), (0, 500)),
        (abort(100.0), (0, 1000)),
        (abort(0.1), (0, 1)),
    ];
    for (fault, expected) in table {
        assert_eq!(hits(&fault), expected, "{fault:?}");
    }
}

#[test]
fn scripted_draws_decide_fifty_percent() {
    // Draws are taken modulo one million; a hit is below 500_000.
    let table = [
        (0, true),
        (499_999, true),
        (500_000, false),
        (999_999, false),
        (1_000_000, true),
    ];
    for (draw, delayed) in table {
        let decision = delay(50.0).decide(&mut Sequence::new([draw]));
        assert_eq!(decision.delay.is_some(), delayed, "draw {draw}");
    }
}

#[test]
fn delay_is_the_fixed_duration_and_abort_the_status() {
    let decision = delay(100.0).decide(&mut Sequence::new([0]));
    assert_eq!(
        decision,
        FaultDecision {
            delay: Some(Duration::from_secs(7)),
            abort: None
        }
    );
    let decision = abort(100.0).decide(&mut Sequence::new([0]));
    assert_eq!(
        decision,
        FaultDecision {
            delay: None,
            abort: Some(500)
        }
    );
}

#[test]
fn delay_draws_before_abort_and_both_can_apply() {
    let both = Fault {
        delay: delay(50.0).delay,
        abort: abort(50.0).abort,
    };
    let table = [
        ([0, 0], (true, true)),
        ([0, 999_999], (true, false)),
        ([999_999, 0], (false, true)),
        ([999_999, 999_999], (false, false)),
    ];
    for (draws, (delayed, aborted)) in table {
        let mut rng = Sequence::new(draws);
        let decision = both.decide(&mut rng);
        assert_eq!(
            (decision.delay.is_some(), decision.abort.is_some()),
            (delayed, aborted),
            "{draws:?}"
        );
        assert_eq!(rng.drawn(), 2);
    }
}

#[test]
fn no_fault_draws_nothing() {
    let mut rng = Sequence::new([0]);
    assert_eq!(Fault::default().decide(&mut rng), FaultDecision::default());
    assert_eq!(rng.drawn(), 0);
}
