//! Which request headers an app copies onto the calls it makes.
//!
//! Istio cannot join the spans of a trace or route by user on its own: the apps must
//! forward trace headers and `end-user`. Bookinfo's apps do this with fixed lists,
//! which differ slightly between productpage and the others (spec §1.6, §2.4, §3.4).

use http::{HeaderMap, HeaderName, HeaderValue};

/// Headers productpage copies verbatim when present.
const PRODUCTPAGE_COPIED: &[&str] = &[
    "x-request-id",
    "x-ot-span-context",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "traceparent",
    "tracestate",
    "x-cloud-trace-context",
    "grpc-trace-bin",
    "sw8",
    "user-agent",
    "cookie",
    "authorization",
    "jwt",
];

/// Headers details (v2) and reviews copy verbatim when present.
const SERVICE_COPIED: &[&str] = &[
    "x-request-id",
    "x-ot-span-context",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "traceparent",
    "tracestate",
    "x-cloud-trace-context",
    "grpc-trace-bin",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "sw8",
    "end-user",
    "user-agent",
    "cookie",
    "authorization",
    "jwt",
];

/// The header that carries the logged-in user to productpage's upstream calls.
pub(crate) const END_USER: &str = "end-user";

/// Headers for productpage's calls to details, reviews and ratings.
///
/// B3 goes through a B3 multi-header extract and inject, as the original's
/// OpenTelemetry propagator does: trace id, span id and sampled are forwarded when
/// the incoming context is valid, `x-b3-flags: 1` is folded into `x-b3-sampled: 1`,
/// and the parent span id and flags are not forwarded.
pub(crate) fn productpage_headers(incoming: &HeaderMap, user: Option<&str>) -> HeaderMap {
    let mut out = copy(incoming, PRODUCTPAGE_COPIED);
    if let Some(b3) = B3::extract(incoming) {
        b3.inject(&mut out);
    }
    if let Some(value) = user.and_then(|u| HeaderValue::from_str(u).ok()) {
        out.insert(END_USER, value);
    }
    out
}

/// Headers for the calls of details (v2) and reviews.
pub(crate) fn service_headers(incoming: &HeaderMap) -> HeaderMap {
    copy(incoming, SERVICE_COPIED)
}

fn copy(incoming: &HeaderMap, names: &[&'static str]) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in names {
        let name = HeaderName::from_static(name);
        for value in incoming.get_all(&name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// A valid B3 context taken from `x-b3-*` headers.
#[derive(Debug, PartialEq, Eq)]
struct B3<'a> {
    trace_id: &'a str,
    span_id: &'a str,
    sampled: bool,
}

impl<'a> B3<'a> {
    fn extract(headers: &'a HeaderMap) -> Option<Self> {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let trace_id = get("x-b3-traceid")?;
        let span_id = get("x-b3-spanid")?;
        let valid_trace = matches!(trace_id.len(), 16 | 32) && is_nonzero_hex(trace_id);
        if !valid_trace || span_id.len() != 16 || !is_nonzero_hex(span_id) {
            return None;
        }
        let sampled = get("x-b3-flags") == Some("1")
            || matches!(get("x-b3-sampled"), Some("1" | "true" | "d"));
        Some(B3 {
            trace_id,
            span_id,
            sampled,
        })
    }

    fn inject(&self, out: &mut HeaderMap) {
        for (name, value) in [
            ("x-b3-traceid", self.trace_id),
            ("x-b3-spanid", self.span_id),
            ("x-b3-sampled", if self.sampled { "1" } else { "0" }),
        ] {
            if let Ok(value) = HeaderValue::from_str(value) {
                out.insert(HeaderName::from_static(name), value);
            }
        }
    }
}

fn is_nonzero_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit()) && s.bytes().any(|b| b != b'0')
}

#[cfg(test)]
mod tests;
