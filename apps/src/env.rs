//! Reading configuration from the environment the way the original apps do.
//!
//! Each app has a plain `Config` struct that tests build directly; `from_env`
//! constructors use these helpers so that defaults and parsing rules live in one place.

use std::env;

/// Why a configuration variable could not be used.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}={value:?} is not {expected}")]
pub struct EnvError {
    /// The variable's name.
    pub name: &'static str,
    /// The value found.
    pub value: String,
    /// What the app expected, e.g. "a port number".
    pub expected: &'static str,
}

/// The variable's value, or `default` when it is unset or empty.
pub(crate) fn string(name: &str, default: &str) -> String {
    match env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => default.to_owned(),
    }
}

/// The variable's value when set and non-empty.
pub(crate) fn optional(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.is_empty())
}

/// A TCP port, `default` when unset.
pub(crate) fn port(name: &'static str, default: u16) -> Result<u16, EnvError> {
    match optional(name) {
        None => Ok(default),
        Some(value) => value.trim().parse().map_err(|_| EnvError {
            name,
            value,
            expected: "a port number",
        }),
    }
}

/// A flag read as Java's `Boolean.valueOf` and Ruby's `== 'true'` do: only "true"
/// (any case) is true.
pub(crate) fn flag(name: &str) -> bool {
    optional(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The `.domain` suffix that `SERVICES_DOMAIN` appends to every upstream host name.
pub(crate) fn services_domain() -> String {
    optional("SERVICES_DOMAIN")
        .map(|d| format!(".{d}"))
        .unwrap_or_default()
}

/// The pod name, as `HOSTNAME` gives it (Kubernetes and Docker both set it).
pub(crate) fn hostname() -> String {
    optional("HOSTNAME").unwrap_or_else(|| "unknown".to_owned())
}
