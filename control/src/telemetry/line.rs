//! One access-log line, read back from Istio's default text format (the format
//! `proxy/src/access_log.rs` writes; see its module docs for the field list).
//!
//! Reading the text the learner also sees (`meshlab logs POD -c istio-proxy`) keeps
//! the dashboard honest: what the graph counts is exactly what the logs say.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

/// The fields of a line the dashboard uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessLine {
    /// `%START_TIME%`, as printed.
    pub start: String,
    /// The method; `-` for a TCP connection.
    pub method: String,
    /// The path as the client sent it; `-` for TCP.
    pub path: String,
    /// `%RESPONSE_CODE%`; 0 for TCP or when no response was sent.
    pub code: u16,
    /// `%RESPONSE_FLAGS%`, e.g. `UH`, `-` when none.
    pub flags: String,
    /// `%DURATION%` in milliseconds.
    pub duration_ms: u64,
    /// `%REQ(:AUTHORITY)%`, if any.
    pub authority: Option<String>,
    /// `%UPSTREAM_HOST%`, if any.
    pub upstream_host: Option<SocketAddr>,
    /// `%UPSTREAM_CLUSTER%`, if any.
    pub upstream_cluster: Option<String>,
    /// `%DOWNSTREAM_LOCAL_ADDRESS%`: the original destination for captured traffic.
    pub downstream_local: Option<SocketAddr>,
    /// `%DOWNSTREAM_REMOTE_ADDRESS%`: the client.
    pub downstream_remote: Option<SocketAddr>,
    /// `%REQUESTED_SERVER_NAME%`: the SNI of the downstream TLS connection. Istio's
    /// sidecars see `outbound_.9080_._.reviews.default.svc.cluster.local` here on
    /// inbound mTLS connections, and `-` on plain text ones.
    pub server_name: Option<String>,
    /// `%ROUTE_NAME%`, if any.
    pub route_name: Option<String>,
}

/// Fields of the format, in order.
const FIELDS: usize = 22;

/// Reads one line; `None` when it is not an access-log line (a proxy also prints
/// other things on its standard output, e.g. capture rules during start-up).
pub fn parse(line: &str) -> Option<AccessLine> {
    let tokens = tokens(line.trim_end())?;
    if tokens.len() != FIELDS {
        return None;
    }
    let mut request = tokens[1].splitn(3, ' ');
    let method = request.next()?.to_owned();
    let path = request.next().unwrap_or("-").to_owned();
    let value = |i: usize| Some(tokens[i]).filter(|t| *t != "-" && !t.is_empty());
    Some(AccessLine {
        start: tokens[0].to_owned(),
        method,
        path,
        code: tokens[2].parse().ok()?,
        flags: tokens[3].to_owned(),
        duration_ms: tokens[9].parse().ok()?,
        authority: value(14).map(str::to_owned),
        upstream_host: value(15).and_then(|t| t.parse().ok()),
        upstream_cluster: value(16).map(str::to_owned),
        downstream_local: value(18).and_then(|t| t.parse().ok()),
        downstream_remote: value(19).and_then(|t| t.parse().ok()),
        server_name: value(20).map(str::to_owned),
        route_name: value(21).map(str::to_owned),
    })
}

/// Splits a line into fields: `[…]` and `"…"` are one field each (without their
/// brackets or quotes), anything else ends at a space.
fn tokens(line: &str) -> Option<Vec<&str>> {
    let mut tokens = Vec::with_capacity(FIELDS);
    let mut rest = line;
    while !rest.is_empty() {
        rest = rest.trim_start_matches(' ');
        let (token, after) = if let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']')?;
            (&inner[..end], &inner[end + 1..])
        } else if let Some(inner) = rest.strip_prefix('"') {
            let end = inner.find('"')?;
            (&inner[..end], &inner[end + 1..])
        } else if rest.is_empty() {
            break;
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        tokens.push(token);
        rest = after;
    }
    Some(tokens)
}

// === impl AccessLine ===

impl AccessLine {
    /// Whether the proxy logged this on its inbound side (a request to its own app).
    pub fn is_inbound(&self, pod_ip: Option<IpAddr>) -> bool {
        if let Some(cluster) = &self.upstream_cluster {
            return cluster.starts_with("inbound|") || cluster == "InboundPassthroughCluster";
        }
        pod_ip.is_some_and(|ip| self.downstream_local.is_some_and(|local| local.ip() == ip))
    }

    /// Whether the request failed as a server error would count: a 5xx, or no
    /// response at all on an HTTP request (reset, timeout before headers).
    pub fn is_error(&self) -> bool {
        self.code >= 500 || (self.code == 0 && self.method != "-")
    }

    /// The host of `:authority`, without its port.
    pub fn authority_host(&self) -> Option<&str> {
        let authority = self.authority.as_deref()?;
        Some(match authority.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => authority,
        })
    }
}
