//! Regular expressions as Envoy's `safe_regex` matchers use them.
//!
//! Envoy compiles `safe_regex` with RE2 and requires the *whole* value to match
//! (`RE2::FullMatch`); Istio passes VirtualService regexes through unchanged
//! (`uri: {regex: …}` → `safe_regex`). The `regex` crate has RE2's syntax and
//! guarantees, so a pattern compiles here exactly when Envoy would accept it, give or
//! take RE2's program-size limit.

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// A regular expression that must match a whole value, compiled once.
///
/// Serialized as its source text; deserializing compiles it, so an invalid regex is
/// rejected when the configuration is read, not when a request arrives.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pattern {
    source: String,
    anchored: Regex,
}

/// A regular expression that does not compile.
#[derive(Debug, thiserror::Error)]
#[error("invalid regex {source_text:?}: {reason}")]
pub struct InvalidPattern {
    /// The expression as written.
    pub source_text: String,
    /// What the regex compiler said.
    pub reason: String,
}

// === impl Pattern ===

impl Pattern {
    /// Compiles `source` for whole-value matching.
    pub fn new(source: impl Into<String>) -> Result<Self, InvalidPattern> {
        let source = source.into();
        match Regex::new(&format!("^(?:{source})$")) {
            Ok(anchored) => Ok(Self { source, anchored }),
            Err(error) => Err(InvalidPattern {
                reason: error.to_string(),
                source_text: source,
            }),
        }
    }

    /// The expression as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `value` matches (RE2 `FullMatch`).
    pub fn is_full_match(&self, value: &str) -> bool {
        self.anchored.is_match(value)
    }
}

impl TryFrom<String> for Pattern {
    type Error = InvalidPattern;

    fn try_from(source: String) -> Result<Self, Self::Error> {
        Self::new(source)
    }
}

impl From<Pattern> for String {
    fn from(pattern: Pattern) -> Self {
        pattern.source
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.source).finish()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}
