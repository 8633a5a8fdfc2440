use std::time::Duration;

use http::HeaderMap;

use super::{
    Backoff, InvalidRetryOn, IstioRetry, Outcome, RetryCondition, RetryOn, RetryPolicy,
    RetryVerdict, parse_istio_retry_on,
};
use crate::matcher::{HeaderMatch, HeaderMatcher};

fn policy(retry_on: &str) -> RetryPolicy {
    RetryPolicy::from_istio(
        &IstioRetry {
            attempts: 3,
            retry_on,
            ..IstioRetry::default()
        },
        false,
    )
    .unwrap()
    .unwrap()
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, value.parse().unwrap());
    }
    map
}

#[test]
fn each_retry_on_token_retries_what_envoy_retries() {
    let empty = HeaderMap::new();
    let grpc = [
        headers(&[("grpc-status", "1")]),
        headers(&[("grpc-status", "4")]),
        headers(&[("grpc-status", "8")]),
        headers(&[("grpc-status", "13")]),
        headers(&[("grpc-status", "14")]),
    ];
    let limited = headers(&[("x-envoy-ratelimited", "true")]);
    let all = [
        ("200", Outcome::Response(200, &empty)),
        ("409", Outcome::Response(409, &empty)),
        ("404", Outcome::Response(404, &empty)),
        ("500", Outcome::Response(500, &empty)),
        ("502", Outcome::Response(502, &empty)),
        ("503", Outcome::Response(503, &empty)),
        ("504", Outcome::Response(504, &empty)),
        ("599", Outcome::Response(599, &empty)),
        ("connect-failure", Outcome::ConnectFailure),
        (
            "reset-before",
            Outcome::Reset {
                request_started: false,
            },
        ),
        (
            "reset-after",
            Outcome::Reset {
                request_started: true,
            },
        ),
        ("per-try-timeout", Outcome::Timeout),
        ("refused-stream", Outcome::RefusedStream),
        ("overflow", Outcome::Overflow),
        ("grpc-cancelled", Outcome::Response(200, &grpc[0])),
        ("grpc-deadline", Outcome::Response(200, &grpc[1])),
        ("grpc-exhausted", Outcome::Response(200, &grpc[2])),
        ("grpc-internal", Outcome::Response(200, &grpc[3])),
        ("grpc-unavailable", Outcome::Response(200, &grpc[4])),
        ("ratelimited-429", Outcome::Response(429, &limited)),
        ("ratelimited-503", Outcome::Response(503, &limited)),
    ];
    let resets = [
        "connect-failure",
        "reset-before",
        "reset-after",
        "per-try-timeout",
        "refused-stream",
    ];

    let table: [(&str, Vec<&str>); 15] = [
        (
            "5xx",
            [&["500", "502", "503", "504", "599"][..], &resets].concat(),
        ),
        (
            "gateway-error",
            [&["502", "503", "504"][..], &resets].concat(),
        ),
        ("reset", resets.to_vec()),
        (
            "reset-before-request",
            vec!["connect-failure", "reset-before"],
        ),
        ("connect-failure", vec!["connect-failure"]),
        ("retriable-4xx", vec!["409"]),
        ("refused-stream", vec!["refused-stream"]),
        ("retriable-status-codes,404", vec!["404"]),
        (
            "envoy-ratelimited",
            vec!["ratelimited-429", "ratelimited-503"],
        ),
        ("cancelled", vec!["grpc-cancelled"]),
        ("deadline-exceeded", vec!["grpc-deadline"]),
        ("internal", vec!["grpc-internal"]),
        ("resource-exhausted", vec!["grpc-exhausted"]),
        ("unavailable", vec!["grpc-unavailable"]),
        ("http3-post-connect-failure", vec![]),
    ];
    for (retry_on, expected) in table {
        let policy = policy(retry_on);
        let retried: Vec<&str> = all
            .iter()
            .filter(|(_, outcome)| policy.should_retry(1, outcome))
            .map(|(name, _)| *name)
            .collect();
        assert_eq!(retried, expected, "retryOn {retry_on:?}");
    }
}

#[test]
fn istio_default_policy() {
    let default = RetryPolicy::istio_default();
    assert_eq!(default.num_retries, 2);
    assert_eq!(
        default.retry_on.to_string(),
        "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
    );
    assert_eq!(default.retriable_status_codes, [503]);
    assert_eq!(default.per_try_timeout, None);
    assert!(default.avoid_previous_hosts);
    assert_eq!(default.host_selection_max_attempts, 5);

    let empty = HeaderMap::new();
    let unavailable = headers(&[("grpc-status", "14")]);
    let table = [
        (Outcome::Response(503, &empty), true),
        (Outcome::Response(502, &empty), false),
        (Outcome::Response(500, &empty), false),
        (Outcome::Response(504, &empty), false),
        (Outcome::Response(200, &unavailable), true),
        (Outcome::ConnectFailure, true),
        (Outcome::RefusedStream, true),
        (
            Outcome::Reset {
                request_started: true,
            },
            false,
        ),
        (Outcome::Timeout, false),
        // A pool overflow's 503 is local (UO) and never retried.
        (Outcome::Overflow, false),
    ];
    for (outcome, retried) in table {
        assert_eq!(default.should_retry(1, &outcome), retried, "{outcome:?}");
    }
}

#[test]
fn attempts_are_counted_and_exhaustion_is_urx() {
    let default = RetryPolicy::istio_default();
    let table = [
        (1, RetryVerdict::Retry),
        (2, RetryVerdict::Retry),
        (3, RetryVerdict::LimitExceeded),
        (4, RetryVerdict::LimitExceeded),
    ];
    for (attempt, verdict) in table {
        assert_eq!(
            default.evaluate(attempt, &Outcome::ConnectFailure),
            verdict,
            "attempt {attempt}"
        );
    }
    let empty = HeaderMap::new();
    assert_eq!(
        default.evaluate(3, &Outcome::Response(200, &empty)),
        RetryVerdict::NotRetriable
    );
}

#[test]
fn istio_conversion_follows_convert_policy() {
    let none = RetryPolicy::from_istio(&IstioRetry::default(), false).unwrap();
    assert_eq!(none, None, "attempts 0 disables retries");

    // Without retryOn: the default conditions and 503 stay.
    let attempts_only = RetryPolicy::from_istio(
        &IstioRetry {
            attempts: 3,
            per_try_timeout: Some(Duration::from_secs(2)),
            ..IstioRetry::default()
        },
        true,
    )
    .unwrap()
    .unwrap();
    assert_eq!(attempts_only.num_retries, 3);
    assert_eq!(
        attempts_only.retry_on,
        RetryPolicy::istio_default().retry_on
    );
    assert_eq!(attempts_only.retriable_status_codes, [503]);
    assert_eq!(attempts_only.per_try_timeout, Some(Duration::from_secs(2)));
    assert!(
        !attempts_only.avoid_previous_hosts,
        "consistent hash keeps the host"
    );

    // With retryOn: conditions and codes are replaced; codes add retriable-status-codes.
    let with_codes = policy("gateway-error,connect-failure,429");
    assert_eq!(
        with_codes.retry_on.to_string(),
        "gateway-error,connect-failure,retriable-status-codes"
    );
    assert_eq!(with_codes.retriable_status_codes, [429]);
    let without_codes = policy("5xx");
    assert!(
        without_codes.retriable_status_codes.is_empty(),
        "the default 503 is dropped"
    );

    let with_backoff = RetryPolicy::from_istio(
        &IstioRetry {
            attempts: 1,
            backoff: Some(Duration::from_millis(100)),
            ..IstioRetry::default()
        },
        false,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        with_backoff.backoff,
        Backoff::with_base(Duration::from_millis(100))
    );
    assert_eq!(with_backoff.backoff.max, Duration::from_secs(1));
}

#[test]
fn unknown_retry_on_tokens_are_errors_naming_them() {
    let table = [
        ("5xx,bogus", "bogus"),
        ("5xx, gateway-error", " gateway-error"),
        ("5xx,", ""),
        ("599", "599"),
        ("GATEWAY-ERROR", "GATEWAY-ERROR"),
    ];
    for (text, token) in table {
        let error = parse_istio_retry_on(text).unwrap_err();
        assert_eq!(
            error,
            InvalidRetryOn {
                token: token.to_owned()
            },
            "{text:?}"
        );
    }
    assert_eq!(
        parse_istio_retry_on("5xx,bogus").unwrap_err().to_string(),
        "\"bogus\" is not a valid retryOn policy"
    );
}

#[test]
fn retriable_headers_match_response_headers() {
    let mut policy = policy("retriable-headers");
    policy.retriable_headers = vec![
        HeaderMatcher::new("x-upstream-retry", HeaderMatch::Present(true)),
        HeaderMatcher::new(":status", HeaderMatch::Exact("418".to_owned())),
    ];
    let plain = HeaderMap::new();
    let flagged = headers(&[("x-upstream-retry", "yes")]);
    assert!(policy.should_retry(1, &Outcome::Response(200, &flagged)));
    assert!(policy.should_retry(1, &Outcome::Response(418, &plain)));
    assert!(!policy.should_retry(1, &Outcome::Response(500, &plain)));
}

#[test]
fn retry_on_serializes_as_envoys_string() {
    let retry_on = RetryOn::from_conditions([RetryCondition::FiveXx, RetryCondition::Reset]);
    let json = serde_json::to_value(&retry_on).unwrap();
    assert_eq!(json, serde_json::json!("5xx,reset"));
    assert_eq!(serde_json::from_value::<RetryOn>(json).unwrap(), retry_on);
    assert!(serde_json::from_value::<RetryOn>(serde_json::json!("5xx,nope")).is_err());

    let policy = RetryPolicy::istio_default();
    let back: RetryPolicy = serde_json::from_value(serde_json::to_value(&policy).unwrap()).unwrap();
    assert_eq!(back, policy);
}

#[test]
fn backoff_is_fully_jittered_exponential() {
    let backoff = Backoff::default();
    assert_eq!(backoff.max, Duration::from_millis(250));
    let intervals: Vec<u64> = (1..=6).map(|retry| backoff.interval_ms(retry)).collect();
    assert_eq!(intervals, [25, 50, 100, 200, 250, 250]);

    let table = [
        (1, 0, 0),
        (1, 24, 24),
        (1, 25, 0),
        (2, 49, 49),
        (3, 130, 30),
        (5, 1_000_249, 249),
    ];
    for (retry, random, millis) in table {
        assert_eq!(
            backoff.delay(retry, random),
            Duration::from_millis(millis),
            "retry {retry}"
        );
    }

    let tiny = Backoff::with_base(Duration::from_micros(10));
    assert_eq!(
        tiny.interval_ms(1),
        1,
        "sub-millisecond bases count as 1 ms"
    );
}
