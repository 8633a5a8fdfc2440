//! Virtual host domains and Envoy's rules for picking one by authority.
//!
//! Envoy (`source/common/router/config_impl.cc`, `RouteMatcher::findVirtualHost`,
//! and the `VirtualHost.domains` API docs) classifies each domain when it loads the
//! route configuration and searches in this order:
//!
//! 1. exact names (`reviews:9080`, `www.foo.com`);
//! 2. suffix wildcards (`*.foo.com`, `*-bar.foo.com`), longest suffix first;
//! 3. prefix wildcards (`foo.*`, `reviews:*`), longest prefix first;
//! 4. the catch-all `*`.
//!
//! A wildcard never matches the empty string: `*.foo.com` matches `a.foo.com` but not
//! `.foo.com`. Domains and authorities compare case-insensitively (Envoy lower-cases
//! both). The authority is matched as sent, port included; Envoy does **not** retry
//! without the port. Istio relies on that by emitting every name of a service both
//! with and without the port (`reviews`, `reviews:9080`, …), and gateways emit
//! `host` and `host:*`. `RouteConfiguration::ignore_port_in_host_matching` (Envoy's
//! field of the same name) strips the port first instead.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One entry of `VirtualHost::domains`, classified as Envoy classifies it.
///
/// Any string is a valid domain, as in Envoy: a `*` that is neither the first nor
/// the last character is matched literally.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Domain {
    /// Matches exactly this authority (lower-cased).
    Exact(String),
    /// `*<suffix>`: matches an authority that ends with the suffix and is longer.
    Suffix(String),
    /// `<prefix>*`: matches an authority that starts with the prefix and is longer.
    Prefix(String),
    /// `*`: matches any authority, after every other kind has failed.
    Any,
}

/// How well a domain matched: lower sorts first (wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Specificity {
    /// An exact match: nothing beats it.
    Exact,
    /// A suffix wildcard; the longer suffix (larger `Reverse` inner) wins.
    Suffix(std::cmp::Reverse<usize>),
    /// A prefix wildcard; the longer prefix wins.
    Prefix(std::cmp::Reverse<usize>),
    /// The catch-all.
    Any,
}

// === impl Domain ===

impl Domain {
    /// Classifies `domain` as Envoy does.
    pub fn new(domain: &str) -> Self {
        let domain = domain.to_ascii_lowercase();
        if domain == "*" {
            Self::Any
        } else if let Some(suffix) = domain.strip_prefix('*') {
            Self::Suffix(suffix.to_owned())
        } else if let Some(prefix) = domain.strip_suffix('*') {
            Self::Prefix(prefix.to_owned())
        } else {
            Self::Exact(domain)
        }
    }

    /// How this domain matches `host` (already lower-cased), if it does.
    pub(crate) fn matches(&self, host: &str) -> Option<Specificity> {
        use std::cmp::Reverse;
        match self {
            Self::Exact(exact) => (host == exact).then_some(Specificity::Exact),
            Self::Suffix(suffix) => (host.len() > suffix.len() && host.ends_with(suffix.as_str()))
                .then_some(Specificity::Suffix(Reverse(suffix.len()))),
            Self::Prefix(prefix) => (host.len() > prefix.len()
                && host.starts_with(prefix.as_str()))
            .then_some(Specificity::Prefix(Reverse(prefix.len()))),
            Self::Any => Some(Specificity::Any),
        }
    }
}

impl From<&str> for Domain {
    fn from(domain: &str) -> Self {
        Self::new(domain)
    }
}

impl From<String> for Domain {
    fn from(domain: String) -> Self {
        Self::new(&domain)
    }
}

impl From<Domain> for String {
    fn from(domain: Domain) -> Self {
        domain.to_string()
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(exact) => f.write_str(exact),
            Self::Suffix(suffix) => write!(f, "*{suffix}"),
            Self::Prefix(prefix) => write!(f, "{prefix}*"),
            Self::Any => f.write_str("*"),
        }
    }
}

/// The authority without its port, as Envoy's `HeaderUtility::getPortStart` finds
/// it: the last `:` unless it sits inside an IPv6 literal's brackets.
pub(crate) fn strip_port(authority: &str) -> &str {
    let Some(colon) = authority.rfind(':') else {
        return authority;
    };
    match authority.rfind(']') {
        Some(bracket) if bracket > colon => authority,
        _ => &authority[..colon],
    }
}
