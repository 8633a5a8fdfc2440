//! Retry policies: when a failed attempt is tried again, and how long to wait.
//!
//! Istio facts (`pilot/pkg/networking/core/route/retry/retry.go`):
//! - Without `retries` in the VirtualService a route gets the **default policy**:
//!   2 retries on `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`
//!   with retriable status code 503 (unless the `EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY`
//!   feature flag is set), no per-try timeout, a retry host predicate that prefers
//!   hosts not tried before, and up to 5 host selection attempts. See
//!   [`RetryPolicy::istio_default`].
//! - `retries.attempts: 0` disables retries (no policy at all).
//! - Otherwise the policy is the default with `attempts` as the number of retries,
//!   `perTryTimeout` if given, and — only if `retryOn` is given — `retryOn` replacing
//!   both the conditions *and* the status codes: tokens that are HTTP status codes
//!   become the retriable codes (and add `retriable-status-codes` if missing); other
//!   tokens are conditions. See [`RetryPolicy::from_istio`].
//! - With consistent-hash load balancing the previous-hosts predicate is left out
//!   (`DefaultConsistentHashPolicy`), so a retry may land on the same host.
//! - Istio's validation (`pkg/config/validation`, `validateHTTPRetry`) splits
//!   `retryOn` on `,` **without trimming** and rejects every token that is neither a
//!   supported policy nor a status code Go's `http.StatusText` knows, with
//!   `"<token>" is not a valid retryOn policy`. [`parse_istio_retry_on`] does the same.
//!
//! Envoy facts (`source/common/router/retry_state_impl.cc`, router filter docs for
//! `x-envoy-retry-on` / `x-envoy-retry-grpc-on`):
//! - `5xx`: any 5xx response, and any reset: connect failure, refused stream,
//!   disconnect, and per-try timeout (Envoy resets the attempt and treats it as a
//!   reset).
//! - `gateway-error`: 502, 503, 504 responses, and any reset as for `5xx`.
//! - `reset`: any reset (including per-try timeout), not responses.
//! - `reset-before-request`: a reset before any request byte went upstream.
//! - `connect-failure`: the connection could not be established.
//! - `refused-stream`: the upstream refused the HTTP/2 stream (`REFUSED_STREAM`).
//! - `retriable-4xx`: 409 responses.
//! - `retriable-status-codes`: responses whose status is in the policy's list.
//! - `retriable-headers`: responses matching one of the policy's header matchers
//!   (Istio never sets any, so from Istio this matches nothing).
//! - `envoy-ratelimited`: responses carrying `x-envoy-ratelimited`; such responses
//!   are retried **only** under this condition.
//! - gRPC `cancelled`, `deadline-exceeded`, `internal`, `resource-exhausted`,
//!   `unavailable`: the response's `grpc-status` is 1, 4, 13, 8, 14.
//! - `http3-post-connect-failure`: HTTP/3 only; meshlab has no HTTP/3, so it never
//!   matches (accepted because Istio accepts it).
//! - Connection-pool overflow is a reset Envoy **never** retries (the client sees
//!   the 503 `UO`), whatever the conditions.
//! - Back-off is fully jittered exponential: base 25 ms, max 10 × base (250 ms) by
//!   default; see [`Backoff`]. Istio sets only the base (`retries.backoff`).

use std::{fmt, str::FromStr, time::Duration};

use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::{matcher::HeaderMatcher, request::joined_header};

/// A route's retry policy (Envoy's `RetryPolicy`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Retries after the first attempt (Istio `attempts`).
    pub num_retries: u32,
    /// Time limit of each attempt; `None`: only the route timeout applies.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::duration::option"
    )]
    pub per_try_timeout: Option<Duration>,
    /// When to retry.
    pub retry_on: RetryOn,
    /// Statuses retried under `retriable-status-codes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retriable_status_codes: Vec<u16>,
    /// Response header matchers retried under `retriable-headers`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retriable_headers: Vec<HeaderMatcher>,
    /// Waiting between attempts.
    #[serde(default)]
    pub backoff: Backoff,
    /// Prefer hosts not tried before for a retry (Envoy's `previous_hosts` retry
    /// host predicate). For the load balancer.
    #[serde(default)]
    pub avoid_previous_hosts: bool,
    /// How many times the load balancer may re-pick a host that the predicate
    /// rejects (Envoy's `host_selection_retry_max_attempts`; Istio sets 5).
    #[serde(default)]
    pub host_selection_max_attempts: u32,
}

/// Istio's `HTTPRetry`, as the control plane hands it over.
#[derive(Clone, Copy, Debug, Default)]
pub struct IstioRetry<'a> {
    /// `attempts`; 0 disables retries.
    pub attempts: u32,
    /// `perTryTimeout`.
    pub per_try_timeout: Option<Duration>,
    /// `retryOn`; `""` when not set.
    pub retry_on: &'a str,
    /// `backoff` (the base interval).
    pub backoff: Option<Duration>,
}

/// The conditions under which a failed attempt is retried, in the order written
/// (so a config dump shows Istio's own string, e.g. the default
/// `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`).
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RetryOn(Vec<RetryCondition>);

/// One retry condition, named as Envoy and Istio name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetryCondition {
    /// `5xx`.
    FiveXx,
    /// `gateway-error`.
    GatewayError,
    /// `reset`.
    Reset,
    /// `reset-before-request`.
    ResetBeforeRequest,
    /// `connect-failure`.
    ConnectFailure,
    /// `retriable-4xx`.
    Retriable4xx,
    /// `refused-stream`.
    RefusedStream,
    /// `retriable-status-codes`.
    RetriableStatusCodes,
    /// `retriable-headers`.
    RetriableHeaders,
    /// `envoy-ratelimited`.
    EnvoyRateLimited,
    /// `http3-post-connect-failure`.
    Http3PostConnectFailure,
    /// gRPC `cancelled`.
    Cancelled,
    /// gRPC `deadline-exceeded`.
    DeadlineExceeded,
    /// gRPC `internal`.
    Internal,
    /// gRPC `resource-exhausted`.
    ResourceExhausted,
    /// gRPC `unavailable`.
    Unavailable,
}

/// How one upstream attempt ended, as far as retrying is concerned.
#[derive(Clone, Copy, Debug)]
pub enum Outcome<'a> {
    /// The upstream answered with this status and these headers.
    Response(u16, &'a HeaderMap),
    /// The connection could not be established (`UF`).
    ConnectFailure,
    /// The stream or connection was reset after it was established (`UR`, `UC`).
    Reset {
        /// Whether any request byte had been sent upstream.
        request_started: bool,
    },
    /// The per-try timeout fired. (The route timeout is never retried: the caller
    /// answers 504 `UT` instead of asking.)
    Timeout,
    /// The upstream refused the HTTP/2 stream.
    RefusedStream,
    /// The connection pool overflowed (`UO`): never retried.
    Overflow,
}

/// The answer to "retry this attempt?".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryVerdict {
    /// Retry (after [`Backoff::delay`]).
    Retry,
    /// The outcome is not covered by the policy's conditions.
    NotRetriable,
    /// The outcome is retriable but the retries are used up (response flag `URX`).
    LimitExceeded,
}

/// Envoy's retry back-off: fully jittered exponential.
///
/// Retry `n` (1-based) waits a uniformly random time in `[0, interval(n))` ms, where
/// `interval(1) = base` and each further retry doubles it, capped at `max`
/// (`source/common/common/backoff_strategy.cc`,
/// `JitteredExponentialBackOffStrategy::nextBackOffMs`: `random % interval`).
/// Envoy counts in whole milliseconds; a base below 1 ms counts as 1 ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    /// First interval; Envoy's default 25 ms.
    #[serde(with = "crate::duration")]
    pub base: Duration,
    /// Cap; Envoy's default is 10 × `base`.
    #[serde(with = "crate::duration")]
    pub max: Duration,
}

/// A `retryOn` token Istio would reject.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{token:?} is not a valid retryOn policy")]
pub struct InvalidRetryOn {
    /// The token as written (not trimmed, as Istio's validation does not trim).
    pub token: String,
}

// === impl RetryPolicy ===

impl RetryPolicy {
    /// Istio's default policy for routes without `retries`.
    pub fn istio_default() -> Self {
        use RetryCondition::*;
        Self {
            num_retries: 2,
            per_try_timeout: None,
            retry_on: RetryOn::from_conditions([
                ConnectFailure,
                RefusedStream,
                Unavailable,
                Cancelled,
                RetriableStatusCodes,
            ]),
            retriable_status_codes: vec![503],
            retriable_headers: Vec::new(),
            backoff: Backoff::default(),
            avoid_previous_hosts: true,
            host_selection_max_attempts: 5,
        }
    }

    /// Istio's `ConvertPolicy`: the policy a VirtualService `retries` block gives
    /// (`None` = no retries). `consistent_hash` is whether the destination uses
    /// consistent-hash load balancing (then retries may reuse a host).
    ///
    /// A route without `retries` takes [`RetryPolicy::istio_default`] (with
    /// `avoid_previous_hosts: !consistent_hash`); that is the caller's choice.
    pub fn from_istio(
        retry: &IstioRetry<'_>,
        consistent_hash: bool,
    ) -> Result<Option<Self>, InvalidRetryOn> {
        if retry.attempts == 0 {
            return Ok(None);
        }
        let mut policy = Self {
            num_retries: retry.attempts,
            avoid_previous_hosts: !consistent_hash,
            ..Self::istio_default()
        };
        if !retry.retry_on.is_empty() {
            let (retry_on, codes) = parse_istio_retry_on(retry.retry_on)?;
            policy.retry_on = retry_on;
            policy.retriable_status_codes = codes;
        }
        policy.per_try_timeout = retry.per_try_timeout;
        if let Some(base) = retry.backoff {
            policy.backoff = Backoff::with_base(base);
        }
        Ok(Some(policy))
    }

    /// Whether to retry after attempt number `attempt` (1 = the original request)
    /// ended with `outcome`.
    pub fn should_retry(&self, attempt: u32, outcome: &Outcome<'_>) -> bool {
        self.evaluate(attempt, outcome) == RetryVerdict::Retry
    }

    /// Like [`RetryPolicy::should_retry`], telling "not retriable" from "retries
    /// used up" (`URX`), as Envoy's `RetryStateImpl::shouldRetry` does.
    pub fn evaluate(&self, attempt: u32, outcome: &Outcome<'_>) -> RetryVerdict {
        if !self.retriable(outcome) {
            RetryVerdict::NotRetriable
        } else if attempt.max(1) > self.num_retries {
            RetryVerdict::LimitExceeded
        } else {
            RetryVerdict::Retry
        }
    }

    /// Whether `outcome` is covered by the conditions, regardless of the count.
    pub fn retriable(&self, outcome: &Outcome<'_>) -> bool {
        use RetryCondition::*;
        let on = |condition| self.retry_on.contains(condition);
        match *outcome {
            Outcome::Response(status, headers) => {
                if headers.contains_key("x-envoy-ratelimited") {
                    return on(EnvoyRateLimited);
                }
                (on(FiveXx) && (500..600).contains(&status))
                    || (on(GatewayError) && (502..=504).contains(&status))
                    || (on(Retriable4xx) && status == 409)
                    || (on(RetriableStatusCodes) && self.retriable_status_codes.contains(&status))
                    || (on(RetriableHeaders) && self.retriable_header_matches(status, headers))
                    || grpc_status(headers)
                        .is_some_and(|code| RetryCondition::for_grpc_status(code).is_some_and(on))
            }
            Outcome::Overflow => false,
            Outcome::ConnectFailure
            | Outcome::Reset { .. }
            | Outcome::Timeout
            | Outcome::RefusedStream => {
                let request_started = match *outcome {
                    Outcome::ConnectFailure => false,
                    Outcome::Reset { request_started } => request_started,
                    _ => true,
                };
                on(Reset)
                    || on(FiveXx)
                    || on(GatewayError)
                    || (on(ResetBeforeRequest) && !request_started)
                    || (on(ConnectFailure) && matches!(outcome, Outcome::ConnectFailure))
                    || (on(RefusedStream) && matches!(outcome, Outcome::RefusedStream))
            }
        }
    }

    fn retriable_header_matches(&self, status: u16, headers: &HeaderMap) -> bool {
        self.retriable_headers.iter().any(|matcher| {
            if matcher.name == ":status" {
                matcher.matches_value(Some(&status.to_string()))
            } else {
                matcher.matches_value(joined_header(headers, &matcher.name).as_deref())
            }
        })
    }
}

/// The `grpc-status` of a (trailers-only) gRPC response, if any.
fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Parses Istio's `retryOn` as Istio validates and translates it: a comma list
/// (no trimming, no empty tokens) of conditions and HTTP status codes. Returns the
/// conditions, with `retriable-status-codes` added if codes were given, and the codes.
pub fn parse_istio_retry_on(text: &str) -> Result<(RetryOn, Vec<u16>), InvalidRetryOn> {
    let mut retry_on = RetryOn::default();
    let mut codes = Vec::new();
    for token in text.split(',') {
        if let Some(code) = token
            .parse::<u16>()
            .ok()
            .filter(|code| is_known_status(*code))
        {
            codes.push(code);
        } else {
            let condition = token
                .parse::<RetryCondition>()
                .map_err(|_| InvalidRetryOn {
                    token: token.to_owned(),
                })?;
            retry_on.insert(condition);
        }
    }
    if !codes.is_empty() {
        retry_on.insert(RetryCondition::RetriableStatusCodes);
    }
    Ok((retry_on, codes))
}

/// Whether Go's `http.StatusText` knows `code` (Istio's test for "is a status code").
fn is_known_status(code: u16) -> bool {
    matches!(
        code,
        100..=103
            | 200..=208
            | 226
            | 300..=305
            | 307
            | 308
            | 400..=418
            | 421..=426
            | 428
            | 429
            | 431
            | 451
            | 500..=508
            | 510
            | 511
    )
}

// === impl RetryOn ===

impl RetryOn {
    /// The set of the given conditions.
    pub fn from_conditions(conditions: impl IntoIterator<Item = RetryCondition>) -> Self {
        let mut set = Self::default();
        for condition in conditions {
            set.insert(condition);
        }
        set
    }

    /// Adds a condition at the end, unless it is already there.
    pub fn insert(&mut self, condition: RetryCondition) {
        if !self.contains(condition) {
            self.0.push(condition);
        }
    }

    /// Whether the condition is in the set.
    pub fn contains(&self, condition: RetryCondition) -> bool {
        self.0.contains(&condition)
    }

    /// Whether no condition is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The conditions, in the order written.
    pub fn iter(&self) -> impl Iterator<Item = RetryCondition> + '_ {
        self.0.iter().copied()
    }
}

impl FromStr for RetryOn {
    type Err = InvalidRetryOn;

    /// Envoy's `retry_on`: comma-separated conditions (no status codes).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.split(',')
            .filter(|token| !token.is_empty())
            .map(|token| {
                token.parse::<RetryCondition>().map_err(|_| InvalidRetryOn {
                    token: token.to_owned(),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self::from_conditions)
    }
}

impl TryFrom<String> for RetryOn {
    type Error = InvalidRetryOn;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<RetryOn> for String {
    fn from(retry_on: RetryOn) -> Self {
        retry_on.to_string()
    }
}

impl fmt::Display for RetryOn {
    /// Envoy's form: `connect-failure,refused-stream,…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, condition) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(condition.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for RetryOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RetryOn({self})")
    }
}

// === impl RetryCondition ===

impl RetryCondition {
    /// Every condition.
    pub const ALL: [RetryCondition; 16] = [
        Self::FiveXx,
        Self::GatewayError,
        Self::Reset,
        Self::ResetBeforeRequest,
        Self::ConnectFailure,
        Self::Retriable4xx,
        Self::RefusedStream,
        Self::RetriableStatusCodes,
        Self::RetriableHeaders,
        Self::EnvoyRateLimited,
        Self::Http3PostConnectFailure,
        Self::Cancelled,
        Self::DeadlineExceeded,
        Self::Internal,
        Self::ResourceExhausted,
        Self::Unavailable,
    ];

    /// The token as written in `retryOn`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FiveXx => "5xx",
            Self::GatewayError => "gateway-error",
            Self::Reset => "reset",
            Self::ResetBeforeRequest => "reset-before-request",
            Self::ConnectFailure => "connect-failure",
            Self::Retriable4xx => "retriable-4xx",
            Self::RefusedStream => "refused-stream",
            Self::RetriableStatusCodes => "retriable-status-codes",
            Self::RetriableHeaders => "retriable-headers",
            Self::EnvoyRateLimited => "envoy-ratelimited",
            Self::Http3PostConnectFailure => "http3-post-connect-failure",
            Self::Cancelled => "cancelled",
            Self::DeadlineExceeded => "deadline-exceeded",
            Self::Internal => "internal",
            Self::ResourceExhausted => "resource-exhausted",
            Self::Unavailable => "unavailable",
        }
    }

    /// The gRPC condition for a `grpc-status` code, if one exists.
    fn for_grpc_status(code: u32) -> Option<Self> {
        match code {
            1 => Some(Self::Cancelled),
            4 => Some(Self::DeadlineExceeded),
            8 => Some(Self::ResourceExhausted),
            13 => Some(Self::Internal),
            14 => Some(Self::Unavailable),
            _ => None,
        }
    }
}

impl FromStr for RetryCondition {
    type Err = ();

    fn from_str(token: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|condition| condition.as_str() == token)
            .ok_or(())
    }
}

impl fmt::Display for RetryCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Backoff ===

impl Backoff {
    /// Envoy's defaults for `base` with no `max`: `max = 10 × base`.
    pub fn with_base(base: Duration) -> Self {
        Self {
            base,
            max: base * 10,
        }
    }

    /// The wait before retry `retry` (1-based), given a uniformly random `random`.
    pub fn delay(&self, retry: u32, random: u64) -> Duration {
        let interval = self.interval_ms(retry);
        Duration::from_millis(random % interval)
    }

    /// The upper bound (exclusive), in ms, of the wait before retry `retry`.
    pub fn interval_ms(&self, retry: u32) -> u64 {
        let base = millis(self.base).max(1);
        let max = millis(self.max).max(base);
        let mut interval = base;
        for _ in 1..retry.max(1) {
            if interval >= max {
                break;
            }
            interval = interval.saturating_mul(2).min(max);
        }
        interval
    }
}

impl Default for Backoff {
    /// Envoy's default: base 25 ms (`upstream.base_retry_backoff_ms`), max 250 ms.
    fn default() -> Self {
        Self::with_base(Duration::from_millis(25))
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
