//! Istio durations (`timeout: 0.5s`, `baseEjectionTime: 3m`) parsed at the serde
//! boundary.
//!
//! Istio decodes `google.protobuf.Duration` fields from YAML with Go's
//! `time.ParseDuration` grammar, so `1h30m`, `1.5s` and `100ms` are all valid, and the
//! Istio docs use them freely. We accept exactly that grammar (minus negative values,
//! which no Istio field allows) and keep the learner's spelling for `get -o yaml`, the
//! way the Kubernetes API server returns what was applied.

use std::fmt;
use std::time::Duration as StdDuration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// A parsed Istio duration plus the text it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duration {
    value: StdDuration,
    text: String,
}

/// Why a duration string was rejected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DurationError {
    /// The string was empty.
    #[error("invalid duration \"\": empty")]
    Empty,
    /// A leading minus sign: no Istio duration may be negative.
    #[error("invalid duration {0:?}: durations cannot be negative")]
    Negative(String),
    /// A number without a unit (only `0` may omit it, as in Go).
    #[error("invalid duration {0:?}: missing unit (use ns, us, ms, s, m or h, e.g. \"1.5s\")")]
    MissingUnit(String),
    /// A unit Go's `time.ParseDuration` does not know.
    #[error(
        "invalid duration {text:?}: unknown unit {unit:?} (use ns, us, ms, s, m or h, e.g. \"1.5s\")"
    )]
    UnknownUnit {
        /// The whole string.
        text: String,
        /// The unknown unit.
        unit: String,
    },
    /// Something that is not a number where a number must be.
    #[error(
        "invalid duration {0:?}: expected a number followed by a unit, e.g. \"1.5s\" or \"3m\""
    )]
    Syntax(String),
    /// The value does not fit.
    #[error("invalid duration {0:?}: too large")]
    Overflow(String),
}

// === impl Duration ===

impl Duration {
    /// Parses Go's duration syntax: `300ms`, `1.5s`, `2h45m`, or `0`.
    ///
    /// # Errors
    ///
    /// A [`DurationError`] naming what is wrong with `text`.
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let owned = || text.to_owned();
        if text.is_empty() {
            return Err(DurationError::Empty);
        }
        if text.starts_with('-') {
            return Err(DurationError::Negative(owned()));
        }
        let body = text.strip_prefix('+').unwrap_or(text);
        if body == "0" {
            return Ok(Self {
                value: StdDuration::ZERO,
                text: owned(),
            });
        }
        if body.is_empty() {
            return Err(DurationError::Syntax(owned()));
        }
        let mut total_nanos: u128 = 0;
        let mut rest = body;
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let number = &rest[..number_len];
            if number.is_empty() || number == "." || number.matches('.').count() > 1 {
                return Err(DurationError::Syntax(owned()));
            }
            rest = &rest[number_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let unit_nanos: u128 = match unit {
                "" => return Err(DurationError::MissingUnit(owned())),
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60 * 1_000_000_000,
                "h" => 3_600 * 1_000_000_000,
                other => {
                    return Err(DurationError::UnknownUnit {
                        text: owned(),
                        unit: other.to_owned(),
                    });
                }
            };
            let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
            let whole: u128 = if whole.is_empty() {
                0
            } else {
                whole
                    .parse()
                    .map_err(|_| DurationError::Overflow(owned()))?
            };
            let mut nanos = whole
                .checked_mul(unit_nanos)
                .ok_or_else(|| DurationError::Overflow(owned()))?;
            // The fraction, scaled into nanoseconds of this unit; digits beyond
            // nanosecond precision are dropped, as Go does.
            let mut scale = unit_nanos;
            for digit in fraction.bytes().map(|b| u128::from(b - b'0')) {
                scale /= 10;
                if scale == 0 {
                    break;
                }
                nanos += digit * scale;
            }
            total_nanos = total_nanos
                .checked_add(nanos)
                .ok_or_else(|| DurationError::Overflow(owned()))?;
        }
        let secs = u64::try_from(total_nanos / 1_000_000_000)
            .map_err(|_| DurationError::Overflow(owned()))?;
        // Always below 1e9, so the conversion cannot fail.
        let subsec = u32::try_from(total_nanos % 1_000_000_000).unwrap_or(0);
        Ok(Self {
            value: StdDuration::new(secs, subsec),
            text: owned(),
        })
    }

    /// The parsed value.
    #[must_use]
    pub fn get(&self) -> StdDuration {
        self.value
    }

    /// The text as the learner wrote it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"1.5s\", \"100ms\" or \"3m\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(E::custom)
            }

            // `timeout: 0` is valid Go syntax; YAML reads it as a number.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                if v == 0 {
                    Duration::parse("0").map_err(E::custom)
                } else {
                    Err(E::custom(DurationError::MissingUnit(v.to_string())))
                }
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(DurationError::Negative(v.to_string()))),
                }
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
                Err(E::custom(DurationError::MissingUnit(v.to_string())))
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}
