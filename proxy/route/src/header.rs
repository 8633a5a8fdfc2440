//! Header mutations (`headers.request` / `headers.response` in a VirtualService).
//!
//! Istio translates `set` to Envoy's `OVERWRITE_IF_EXISTS_OR_ADD`, `add` to
//! `APPEND_IF_EXISTS_OR_ADD` and `remove` to `*_headers_to_remove`, each list
//! sorted by name (`TranslateHeadersOperations`). It turns `set`/`add` of
//! `:authority` or `host` into a host rewrite instead (so they never appear here)
//! and drops other pseudo-headers.
//!
//! Envoy applies one level's mutations as: remove, then overwrite, then append
//! (`HeaderParser::evaluateHeaders`: "remove-before-add"). With several levels it
//! applies the most specific first and lets later levels win
//! (`most_specific_header_mutations_wins: false`, which Istio keeps): for a weighted
//! destination that is the destination's ops, then the route's. Istio folds a single
//! destination's ops into the route's own lists, after the route's.
//! `x-envoy-*` headers the proxy adds itself are not modelled here.

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

/// One level's header mutations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderOps {
    /// Replace any existing values (or add).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<HeaderPair>,
    /// Append another value (or add).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<HeaderPair>,
    /// Remove every value.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "names")]
    pub remove: Vec<HeaderName>,
}

/// A header name and the literal value to write.
///
/// Values are literal: Envoy's `%VARIABLE%` substitutions in header values are not
/// supported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderPair {
    /// The header name (lower-case by construction).
    #[serde(with = "name")]
    pub name: HeaderName,
    /// The value.
    #[serde(with = "value")]
    pub value: HeaderValue,
}

/// The header mutations that apply to one request or response, in Envoy's order.
#[derive(Clone, Copy, Debug)]
pub struct HeaderPlan<'r> {
    /// A weighted destination's own mutations, applied first.
    pub destination: Option<&'r HeaderOps>,
    /// The route's mutations, applied last (so they win).
    pub route: Option<&'r HeaderOps>,
}

// === impl HeaderOps ===

impl HeaderOps {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    /// Applies this level: remove, then set, then add.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for pair in &self.set {
            headers.insert(pair.name.clone(), pair.value.clone());
        }
        for pair in &self.add {
            headers.append(pair.name.clone(), pair.value.clone());
        }
    }

    /// Every header name this level writes or removes (for validation).
    pub(crate) fn names(&self) -> impl Iterator<Item = &HeaderName> {
        self.set
            .iter()
            .chain(&self.add)
            .map(|pair| &pair.name)
            .chain(&self.remove)
    }
}

// === impl HeaderPair ===

impl HeaderPair {
    /// A pair from text; `None` if the name or value is not valid HTTP.
    pub fn new(name: &str, value: &str) -> Option<Self> {
        Some(Self {
            name: HeaderName::from_bytes(name.as_bytes()).ok()?,
            value: HeaderValue::from_str(value).ok()?,
        })
    }
}

// === impl HeaderPlan ===

impl<'r> HeaderPlan<'r> {
    /// No mutations at all.
    pub const NONE: HeaderPlan<'static> = HeaderPlan {
        destination: None,
        route: None,
    };

    /// Applies the destination's mutations, then the route's.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for ops in [self.destination, self.route].into_iter().flatten() {
            ops.apply(headers);
        }
    }
}

/// Serde for `HeaderName` as its text.
mod name {
    use http::HeaderName;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(
        name: &HeaderName,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(name.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<HeaderName, D::Error> {
        let text = String::deserialize(deserializer)?;
        HeaderName::from_bytes(text.as_bytes())
            .map_err(|_| D::Error::custom(format!("invalid header name {text:?}")))
    }
}

/// Serde for a list of `HeaderName`s.
mod names {
    use http::HeaderName;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _, ser::SerializeSeq};

    pub(super) fn serialize<S: Serializer>(
        names: &[HeaderName],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(names.len()))?;
        for name in names {
            seq.serialize_element(name.as_str())?;
        }
        seq.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<HeaderName>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .into_iter()
            .map(|text| {
                HeaderName::from_bytes(text.as_bytes())
                    .map_err(|_| D::Error::custom(format!("invalid header name {text:?}")))
            })
            .collect()
    }
}

/// Serde for `HeaderValue` as text.
mod value {
    use http::HeaderValue;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(
        value: &HeaderValue,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&String::from_utf8_lossy(value.as_bytes()))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<HeaderValue, D::Error> {
        let text = String::deserialize(deserializer)?;
        HeaderValue::from_str(&text)
            .map_err(|_| D::Error::custom(format!("invalid header value {text:?}")))
    }
}

#[cfg(test)]
mod tests;
