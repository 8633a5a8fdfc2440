//! Route match conditions: path, headers and query parameters, with Envoy's semantics.
//!
//! Istio's `HTTPMatchRequest` becomes one [`RouteMatch`] per `match` entry
//! (`pilot/pkg/networking/core/route/route.go`, `TranslateRouteMatch`):
//!
//! | Istio field | here |
//! |---|---|
//! | `uri` exact / prefix / regex | [`PathMatch`]; no `uri` = prefix `/` |
//! | `ignoreUriCase` | [`RouteMatch::ignore_case`] |
//! | `headers` | [`HeaderMatcher`]s |
//! | `withoutHeaders` | inverted matchers, see [`HeaderMatcher::istio_without`] |
//! | `method`, `authority`, `scheme` | header matchers on `:method`, `:authority`, `:scheme` |
//! | `queryParams` | [`QueryMatcher`]s |
//! | `port`, `sourceLabels`, `sourceNamespace`, `gateways` | **not here** — see below |
//!
//! `port`, `sourceLabels`, `sourceNamespace` and `gateways` describe *which proxy*
//! a rule is for, not the request. Istio resolves them while generating each
//! proxy's routes (`translateRoute` drops a match whose `port` differs from the
//! listener port; `sourceMatchHTTP` drops one whose labels, namespace or gateways do
//! not fit the proxy), so a route that cannot apply to a proxy is never emitted to
//! it. The control plane does the same; a route table never carries them.
//!
//! An Istio string match of regex `*` (or an empty match) means "present"
//! (`canBeConvertedToPresentMatch`); the control plane translates it to
//! [`HeaderMatch::Present`] / [`QueryMatch::Present`].

use serde::{Deserialize, Serialize};

use crate::{pattern::Pattern, request::RequestHead};

/// All conditions of one route; every one must hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteMatch {
    /// The path condition (on the path without query string).
    pub path: PathMatch,
    /// Istio's `ignoreUriCase` (Envoy's `case_sensitive: false`): compare prefix and
    /// exact paths ASCII-case-insensitively. No effect on [`PathMatch::Regex`], as in
    /// Envoy ("ignored for safe_regex matching").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_case: bool,
    /// Header conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatcher>,
    /// Query parameter conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_params: Vec<QueryMatcher>,
}

/// How the path (without query string) must look.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathMatch {
    /// The path starts with this (Envoy `prefix`). `/` matches every path.
    Prefix(String),
    /// The path is exactly this (Envoy `path`).
    Exact(String),
    /// The whole path matches this regex (Envoy `safe_regex`).
    Regex(Pattern),
}

/// A condition on one request header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderMatcher {
    /// Header name, lower-case; pseudo-headers `:authority`, `:method`, `:path`,
    /// `:scheme` read the request line (`host` is `:authority`).
    pub name: String,
    /// What the value must look like.
    pub kind: HeaderMatch,
    /// Envoy's `invert_match`: the condition holds when the match fails.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invert: bool,
    /// Envoy's `treat_missing_header_as_empty`: an absent header is matched as `""`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub treat_missing_as_empty: bool,
}

/// What a header value must look like. Several values of one header are matched
/// as one string joined with `,`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderMatch {
    /// The value equals this.
    Exact(String),
    /// The value starts with this.
    Prefix(String),
    /// The value ends with this.
    Suffix(String),
    /// The whole value matches this regex.
    Regex(Pattern),
    /// `true`: the header is present; `false`: it is absent.
    Present(bool),
}

/// A condition on one query parameter (decoded; the first occurrence counts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryMatcher {
    /// Parameter name, decoded.
    pub name: String,
    /// What the value must look like.
    pub kind: QueryMatch,
}

/// What a query parameter value must look like. An absent parameter never matches
/// (Envoy's `QueryParameterMatcher` has no inversion).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryMatch {
    /// The value equals this.
    Exact(String),
    /// The value starts with this.
    Prefix(String),
    /// The value ends with this.
    Suffix(String),
    /// The whole value matches this regex.
    Regex(Pattern),
    /// The parameter is present, with or without a value.
    Present,
}

// === impl RouteMatch ===

impl RouteMatch {
    /// A match on the path alone, case-sensitive.
    pub fn path(path: PathMatch) -> Self {
        Self {
            path,
            ignore_case: false,
            headers: Vec::new(),
            query_params: Vec::new(),
        }
    }

    /// Adds a header condition.
    pub fn with_header(mut self, matcher: HeaderMatcher) -> Self {
        self.headers.push(matcher);
        self
    }

    /// Adds a query parameter condition.
    pub fn with_query_param(mut self, matcher: QueryMatcher) -> Self {
        self.query_params.push(matcher);
        self
    }

    /// Whether `request` satisfies every condition.
    pub fn matches(&self, request: &RequestHead<'_>) -> bool {
        self.path_matches(request.path())
            && self.headers.iter().all(|matcher| matcher.matches(request))
            && self
                .query_params
                .iter()
                .all(|matcher| matcher.matches(request))
    }

    fn path_matches(&self, path: &str) -> bool {
        match &self.path {
            PathMatch::Prefix(prefix) if self.ignore_case => path
                .get(..prefix.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(prefix)),
            PathMatch::Prefix(prefix) => path.starts_with(prefix.as_str()),
            PathMatch::Exact(exact) if self.ignore_case => path.eq_ignore_ascii_case(exact),
            PathMatch::Exact(exact) => path == exact,
            PathMatch::Regex(pattern) => pattern.is_full_match(path),
        }
    }
}

impl Default for RouteMatch {
    /// Istio's match for a rule without `match`: every path (`prefix: /`).
    fn default() -> Self {
        Self::path(PathMatch::Prefix("/".to_owned()))
    }
}

// === impl HeaderMatcher ===

impl HeaderMatcher {
    /// A plain (not inverted) condition on header `name` (lower-cased here).
    pub fn new(name: &str, kind: HeaderMatch) -> Self {
        Self {
            name: name.to_ascii_lowercase(),
            kind,
            invert: false,
            treat_missing_as_empty: false,
        }
    }

    /// This condition with Envoy's `invert_match` set (and nothing else changed).
    pub fn inverted(self) -> Self {
        Self {
            invert: true,
            ..self
        }
    }

    /// The condition an Istio `withoutHeaders` entry becomes: inverted, and — unless
    /// it is a presence match — with a missing header read as `""`, so that a
    /// request *without* the header satisfies "without `end-user: jason`"
    /// (`TranslateRouteMatch`: "treat_missing_header_as_empty conflict with
    /// present_match").
    pub fn istio_without(name: &str, kind: HeaderMatch) -> Self {
        let treat_missing_as_empty = !matches!(kind, HeaderMatch::Present(_));
        Self {
            invert: true,
            treat_missing_as_empty,
            ..Self::new(name, kind)
        }
    }

    /// Whether `request` satisfies this condition.
    pub fn matches(&self, request: &RequestHead<'_>) -> bool {
        self.matches_value(request.header(&self.name).as_deref())
    }

    /// Envoy's `HeaderUtility::HeaderData::matchesHeaders` on one (joined) value,
    /// `None` when the header is absent.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        let value = match value {
            Some(value) => value,
            None if self.treat_missing_as_empty => "",
            // An absent header satisfies only "absent", or "present", inverted.
            None => return self.kind == HeaderMatch::Present(self.invert),
        };
        let matched = match &self.kind {
            HeaderMatch::Present(present) => *present,
            HeaderMatch::Exact(exact) => value == exact,
            HeaderMatch::Prefix(prefix) => value.starts_with(prefix.as_str()),
            HeaderMatch::Suffix(suffix) => value.ends_with(suffix.as_str()),
            HeaderMatch::Regex(pattern) => pattern.is_full_match(value),
        };
        matched != self.invert
    }
}

// === impl QueryMatcher ===

impl QueryMatcher {
    /// A condition on query parameter `name`.
    pub fn new(name: &str, kind: QueryMatch) -> Self {
        Self {
            name: name.to_owned(),
            kind,
        }
    }

    /// Whether `request` satisfies this condition.
    pub fn matches(&self, request: &RequestHead<'_>) -> bool {
        let Some(value) = request.query_param(&self.name) else {
            return false;
        };
        match &self.kind {
            QueryMatch::Present => true,
            QueryMatch::Exact(exact) => *value == **exact,
            QueryMatch::Prefix(prefix) => value.starts_with(prefix.as_str()),
            QueryMatch::Suffix(suffix) => value.ends_with(suffix.as_str()),
            QueryMatch::Regex(pattern) => pattern.is_full_match(&value),
        }
    }
}

#[cfg(test)]
mod tests;
