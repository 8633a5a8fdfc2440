//! Envoy's response flags: the `%RESPONSE_FLAGS%` field of Istio's access log
//! (`UH`, `NR`, `UF`, `UO`, `URX`, `UT`, `DI`, `FI`, `DC`, …).
//!
//! Short names and their order are Envoy's (`envoy/stream_info/stream_info.h`,
//! `CoreResponseFlag`, printed by `ResponseFlagUtils::toShortString`): several flags
//! are joined with `,` in that order; no flag prints as `-` in the access log.

use std::fmt;

/// One response flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResponseFlag {
    /// `UH`: no healthy upstream host in the cluster (503).
    NoHealthyUpstream,
    /// `UT`: the route timeout fired (504 `upstream request timeout`).
    UpstreamRequestTimeout,
    /// `LR`: the proxy reset the stream locally.
    LocalReset,
    /// `UR`: the upstream reset the stream.
    UpstreamRemoteReset,
    /// `UF`: the upstream connection could not be established.
    UpstreamConnectionFailure,
    /// `UC`: the upstream connection was closed mid-request.
    UpstreamConnectionTermination,
    /// `UO`: a circuit breaker overflowed (connection pool, pending requests, …): 503.
    UpstreamOverflow,
    /// `NR`: no route matched (404), or no cluster for the route.
    NoRouteFound,
    /// `DI`: a fault delay was injected.
    DelayInjected,
    /// `FI`: a fault abort was injected.
    FaultInjected,
    /// `RL`: rate limited (429).
    RateLimited,
    /// `UAEX`: denied by an external authorization service.
    UnauthorizedExternalService,
    /// `DC`: the downstream connection closed.
    DownstreamConnectionTermination,
    /// `URX`: retries (or TCP connect attempts) were used up.
    UpstreamRetryLimitExceeded,
    /// `DPE`: the downstream request broke the HTTP protocol.
    DownstreamProtocolError,
    /// `UMSDR`: the upstream request reached its maximum stream duration.
    UpstreamMaxStreamDurationReached,
    /// `UPE`: the upstream response broke the HTTP protocol.
    UpstreamProtocolError,
    /// `NC`: the route's cluster does not exist.
    NoClusterFound,
    /// `OM`: the overload manager shed the request.
    OverloadManager,
    /// `DF`: DNS resolution of the upstream failed.
    DnsResolutionFailed,
}

/// A set of [`ResponseFlag`]s for one request.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ResponseFlags(u32);

// === impl ResponseFlag ===

impl ResponseFlag {
    /// Every flag, in Envoy's order.
    pub const ALL: [ResponseFlag; 20] = [
        Self::NoHealthyUpstream,
        Self::UpstreamRequestTimeout,
        Self::LocalReset,
        Self::UpstreamRemoteReset,
        Self::UpstreamConnectionFailure,
        Self::UpstreamConnectionTermination,
        Self::UpstreamOverflow,
        Self::NoRouteFound,
        Self::DelayInjected,
        Self::FaultInjected,
        Self::RateLimited,
        Self::UnauthorizedExternalService,
        Self::DownstreamConnectionTermination,
        Self::UpstreamRetryLimitExceeded,
        Self::DownstreamProtocolError,
        Self::UpstreamMaxStreamDurationReached,
        Self::UpstreamProtocolError,
        Self::NoClusterFound,
        Self::OverloadManager,
        Self::DnsResolutionFailed,
    ];

    /// The short name Envoy prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoHealthyUpstream => "UH",
            Self::UpstreamRequestTimeout => "UT",
            Self::LocalReset => "LR",
            Self::UpstreamRemoteReset => "UR",
            Self::UpstreamConnectionFailure => "UF",
            Self::UpstreamConnectionTermination => "UC",
            Self::UpstreamOverflow => "UO",
            Self::NoRouteFound => "NR",
            Self::DelayInjected => "DI",
            Self::FaultInjected => "FI",
            Self::RateLimited => "RL",
            Self::UnauthorizedExternalService => "UAEX",
            Self::DownstreamConnectionTermination => "DC",
            Self::UpstreamRetryLimitExceeded => "URX",
            Self::DownstreamProtocolError => "DPE",
            Self::UpstreamMaxStreamDurationReached => "UMSDR",
            Self::UpstreamProtocolError => "UPE",
            Self::NoClusterFound => "NC",
            Self::OverloadManager => "OM",
            Self::DnsResolutionFailed => "DF",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for ResponseFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl ResponseFlags ===

impl ResponseFlags {
    /// No flags.
    pub const NONE: Self = Self(0);

    /// Adds a flag.
    pub fn insert(&mut self, flag: ResponseFlag) {
        self.0 |= flag.bit();
    }

    /// This set plus `flag`.
    pub fn with(mut self, flag: ResponseFlag) -> Self {
        self.insert(flag);
        self
    }

    /// Whether `flag` is set.
    pub fn contains(&self, flag: ResponseFlag) -> bool {
        self.0 & flag.bit() != 0
    }

    /// Whether no flag is set.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The flags set, in Envoy's order.
    pub fn iter(&self) -> impl Iterator<Item = ResponseFlag> + '_ {
        ResponseFlag::ALL
            .into_iter()
            .filter(|flag| self.contains(*flag))
    }
}

impl From<ResponseFlag> for ResponseFlags {
    fn from(flag: ResponseFlag) -> Self {
        Self::NONE.with(flag)
    }
}

impl FromIterator<ResponseFlag> for ResponseFlags {
    fn from_iter<I: IntoIterator<Item = ResponseFlag>>(flags: I) -> Self {
        flags.into_iter().fold(Self::NONE, Self::with)
    }
}

impl fmt::Display for ResponseFlags {
    /// As in the access log: `-` for none, else e.g. `DI,FI`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        for (i, flag) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(flag.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for ResponseFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResponseFlags({self})")
    }
}

#[cfg(test)]
mod tests;
