//! Path rewrites before forwarding, and redirect `Location`s.
//!
//! Envoy facts (route API docs and `source/common/router/config_impl.cc`):
//! - `prefix_rewrite` swaps the *matched* part of the path for the rewrite: for a
//!   prefix route the matched prefix, for an exact or regex route the whole path.
//!   The query string is kept. Slashes are not adjusted: prefix `/prefix` rewritten
//!   to `/` turns `/prefix/etc` into `//etc` (Envoy's docs warn about exactly this).
//! - `regex_rewrite` replaces every match of the pattern in the path (not the query
//!   string) with the substitution, in which `\1`…`\9` name capture groups
//!   (RE2 `GlobalReplace`).
//! - A redirect builds `scheme://host[:port]path` from the request
//!   (`Http::Utility::newUri`): scheme, host, port and path each replaced if
//!   configured. A new port replaces the request's; the request's port is also
//!   dropped when the scheme changes and the port was the old scheme's default
//!   (`:80` for http, `:443` for https). A new path keeps the request's query
//!   string; a prefix redirect swaps the matched prefix as `prefix_rewrite` does.
//!   Istio's `redirectCode` defaults to 301.

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::{matcher::PathMatch, request::RequestHead};

/// How the path is rewritten before forwarding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathRewrite {
    /// Istio `rewrite.uri`: swap the matched prefix (or whole path) for this.
    Prefix(String),
    /// Istio `rewrite.uriRegexRewrite`.
    Regex(RegexRewrite),
}

/// Envoy's `regex_rewrite` (`RegexMatchAndSubstitute`), compiled once.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "RawRegexRewrite", into = "RawRegexRewrite")]
pub struct RegexRewrite {
    pattern: String,
    substitution: String,
    regex: Regex,
    /// The substitution in the `regex` crate's syntax (`${1}`, `$$`).
    template: String,
}

#[derive(Serialize, Deserialize)]
struct RawRegexRewrite {
    pattern: String,
    substitution: String,
}

/// A regex rewrite that Envoy would reject.
#[derive(Debug, thiserror::Error)]
pub enum InvalidRegexRewrite {
    /// The pattern does not compile.
    #[error("invalid regex {pattern:?}: {reason}")]
    Pattern {
        /// The pattern as written.
        pattern: String,
        /// What the regex compiler said.
        reason: String,
    },
    /// The substitution uses `\` other than `\0`…`\9` or `\\`, or names a group the
    /// pattern does not have.
    #[error("invalid substitution {substitution:?} for regex {pattern:?}: {reason}")]
    Substitution {
        /// The pattern as written.
        pattern: String,
        /// The substitution as written.
        substitution: String,
        /// What is wrong.
        reason: String,
    },
}

/// Istio's `redirect` (Envoy's `RedirectAction`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    /// New scheme (`scheme`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// New host (`authority`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// New port (`port`, or `derivePort: FROM_REQUEST_PORT` resolved by the control
    /// plane to the listener port; Istio leaves out `:80` for http and `:443` for
    /// https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// New path (`uri`), or a prefix swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<RedirectPath>,
    /// 301 (Istio's default), 302, 303, 307 or 308.
    #[serde(default = "moved_permanently")]
    pub response_code: u16,
}

/// How a redirect changes the path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedirectPath {
    /// Replace the path (the query string stays unless this has its own).
    Path(String),
    /// Swap the matched prefix for this.
    Prefix(String),
}

fn moved_permanently() -> u16 {
    301
}

// === impl PathRewrite ===

impl PathRewrite {
    /// The new `path_and_query` for `request`, which matched `matched`.
    pub fn apply(&self, request: &RequestHead<'_>, matched: &PathMatch) -> String {
        let path = match self {
            Self::Prefix(prefix) => swap_matched(request.path(), matched, prefix),
            Self::Regex(rewrite) => rewrite.replace_all(request.path()),
        };
        path + request.query_suffix()
    }
}

/// `path` with its matched part swapped for `replacement`.
fn swap_matched(path: &str, matched: &PathMatch, replacement: &str) -> String {
    let matched_len = match matched {
        PathMatch::Prefix(prefix) if path.len() >= prefix.len() => prefix.len(),
        _ => path.len(),
    };
    let rest = path.get(matched_len..).unwrap_or_default();
    format!("{replacement}{rest}")
}

// === impl RegexRewrite ===

impl RegexRewrite {
    /// Compiles `pattern` and checks `substitution` (RE2 rewrite syntax).
    pub fn new(pattern: &str, substitution: &str) -> Result<Self, InvalidRegexRewrite> {
        let regex = Regex::new(pattern).map_err(|error| InvalidRegexRewrite::Pattern {
            pattern: pattern.to_owned(),
            reason: error.to_string(),
        })?;
        let invalid = |reason: String| InvalidRegexRewrite::Substitution {
            pattern: pattern.to_owned(),
            substitution: substitution.to_owned(),
            reason,
        };
        let groups = regex.captures_len() - 1;
        let mut template = String::with_capacity(substitution.len());
        let mut chars = substitution.chars();
        while let Some(c) = chars.next() {
            match c {
                '$' => template.push_str("$$"),
                '\\' => match chars.next() {
                    Some('\\') => template.push('\\'),
                    Some(digit @ '0'..='9') => {
                        let group = digit as usize - '0' as usize;
                        if group > groups {
                            return Err(invalid(format!(
                                "\\{group} names a group the regex does not have ({groups} groups)"
                            )));
                        }
                        template.push_str(&format!("${{{group}}}"));
                    }
                    Some(other) => {
                        return Err(invalid(format!("\\{other} is not \\0-\\9 or \\\\")));
                    }
                    None => return Err(invalid("ends with a lone \\".to_owned())),
                },
                c => template.push(c),
            }
        }
        Ok(Self {
            pattern: pattern.to_owned(),
            substitution: substitution.to_owned(),
            regex,
            template,
        })
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The substitution as written (RE2 syntax).
    pub fn substitution(&self) -> &str {
        &self.substitution
    }

    /// Every match in `path` replaced.
    pub fn replace_all(&self, path: &str) -> String {
        self.regex
            .replace_all(path, self.template.as_str())
            .into_owned()
    }
}

impl PartialEq for RegexRewrite {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.substitution == other.substitution
    }
}

impl Eq for RegexRewrite {}

impl TryFrom<RawRegexRewrite> for RegexRewrite {
    type Error = InvalidRegexRewrite;

    fn try_from(raw: RawRegexRewrite) -> Result<Self, Self::Error> {
        Self::new(&raw.pattern, &raw.substitution)
    }
}

impl From<RegexRewrite> for RawRegexRewrite {
    fn from(rewrite: RegexRewrite) -> Self {
        Self {
            pattern: rewrite.pattern,
            substitution: rewrite.substitution,
        }
    }
}

// === impl Redirect ===

impl Redirect {
    /// A 301 redirect that changes nothing yet; set the fields to change.
    pub fn moved_permanently() -> Self {
        Self {
            scheme: None,
            host: None,
            port: None,
            path: None,
            response_code: moved_permanently(),
        }
    }

    /// The `Location` for `request`, which matched `matched`.
    pub fn location(&self, request: &RequestHead<'_>, matched: &PathMatch) -> String {
        let scheme = self.scheme.as_deref().unwrap_or(request.scheme);
        let port = self.port.map(|port| format!(":{port}")).unwrap_or_default();
        let host = match &self.host {
            Some(host) => host.as_str(),
            None => request_host(request, scheme, self.port.is_some()),
        };
        let path = match &self.path {
            Some(RedirectPath::Path(path)) if path.contains('?') => path.clone(),
            Some(RedirectPath::Path(path)) => format!("{path}{}", request.query_suffix()),
            Some(RedirectPath::Prefix(prefix)) => {
                swap_matched(request.path(), matched, prefix) + request.query_suffix()
            }
            None => request.path_and_query.to_owned(),
        };
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("{scheme}://{host}{port}{slash}{path}")
    }
}

/// The request's host for a redirect, without its port when a new port is set or
/// when the scheme changes away from a scheme whose default port it names
/// (Envoy's `processRequestHost`).
fn request_host<'q>(request: &RequestHead<'q>, new_scheme: &str, new_port: bool) -> &'q str {
    let authority = request.authority;
    let host = crate::domain::strip_port(authority);
    if host.len() == authority.len() {
        return authority;
    }
    let request_port = &authority[host.len()..];
    let default_port_of_old_scheme = new_scheme != request.scheme
        && matches!(
            (request.scheme, request_port),
            ("https", ":443") | ("http", ":80")
        );
    if new_port || default_port_of_old_scheme {
        host
    } else {
        authority
    }
}

#[cfg(test)]
mod tests;
