use super::*;

fn config(
    consecutive_5xx: Option<u32>,
    consecutive_gateway_failure: Option<u32>,
) -> OutlierDetection {
    OutlierDetection {
        consecutive_5xx,
        consecutive_gateway_failure,
        interval: Duration::from_secs(1),
        base_ejection_time: Duration::from_secs(30),
        max_ejection_percent: 100,
        min_health_percent: 0,
    }
}

#[test]
fn consecutive_failures_trip_the_detectors() {
    // (config, statuses in order) → trip after the last one
    let cases: [(OutlierDetection, &[u16], Option<Trip>); 6] = [
        (config(Some(1), None), &[503], Some(Trip::Consecutive5xx)),
        (config(Some(2), None), &[503, 200, 500], None),
        (
            config(Some(2), None),
            &[500, 500],
            Some(Trip::Consecutive5xx),
        ),
        (config(None, Some(2)), &[502, 500], None),
        (
            config(None, Some(2)),
            &[502, 504],
            Some(Trip::ConsecutiveGatewayFailure),
        ),
        (config(None, None), &[503, 503, 503], None),
    ];
    for (config, statuses, expected) in cases {
        let host = HostOutlier::default();
        let mut trip = None;
        for status in statuses {
            trip = host.record(*status, &config);
        }
        assert_eq!(trip, expected, "{statuses:?} with {config:?}");
    }
}

#[test]
fn ejections_grow_with_each_ejection_and_are_capped() {
    let host = HostOutlier::default();
    let base = Duration::from_secs(30);
    let now = 1_000;
    host.eject(now, base);
    assert!(host.is_ejected(now + 29_999));
    assert!(!host.is_ejected(now + 30_000));
    host.eject(now, base);
    assert!(host.is_ejected(now + 59_999));
    assert!(!host.is_ejected(now + 60_000));
    for _ in 0..20 {
        host.eject(now, base);
    }
    assert!(!host.is_ejected(now + 300_000), "capped at 300 s");
    let long = HostOutlier::default();
    long.eject(now, Duration::from_secs(180 * 60));
    assert!(
        long.is_ejected(now + 180 * 60_000 - 1),
        "a base above the cap is used as is"
    );
}

#[test]
fn ejection_limits_follow_envoy() {
    // (ejected, hosts, max %) → may eject one more
    let cases = [
        (0, 2, 50, true),
        (1, 2, 50, false),
        (1, 2, 100, true),
        (0, 3, 10, false),
        (0, 1, 100, true),
        (0, 0, 100, false),
    ];
    for (ejected, hosts, max, expected) in cases {
        assert_eq!(
            may_eject(ejected, hosts, max),
            expected,
            "{ejected}/{hosts} at {max}%"
        );
    }
    assert!(!panic_mode(0, 2, 0), "Istio's default 0 never panics");
    assert!(panic_mode(0, 2, 50));
    assert!(!panic_mode(1, 2, 50));
}
