//! The access log: one line per HTTP request or TCP connection, in Istio's default
//! text format, on stdout — what `meshlab logs POD -c istio-proxy` shows.
//!
//! Learners compare these lines with the ones in their notes and in the Istio tasks
//! (the egress task asserts `outbound|80||httpbin.org` in one), so the format is
//! Istio's `EnvoyTextLogFormat` (`pilot/pkg/model/telemetry_logging.go` in Istio
//! 1.9–1.20, `pilot/pkg/networking/core/accesslog.go` later):
//!
//! ```text
//! [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"
//! %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%
//! "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
//! %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
//! "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER%
//! %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%
//! %REQUESTED_SERVER_NAME% %ROUTE_NAME%
//! ```
//!
//! (one line). Newer Istio releases print `%UPSTREAM_CLUSTER_RAW%`, which is the
//! same name for meshlab: clusters have no alternative stat names here. Envoy's
//! rules apply: a value that is not known prints `-`; `START_TIME` is UTC with
//! milliseconds; `DURATION` is whole milliseconds; TCP connections print
//! `"- - -"` for the request line and `0` for the code; for captured connections the
//! downstream local address is the original destination.
//!
//! Lines go through a channel to one writer task that batches them, so a request
//! never waits on stdout (Envoy likewise buffers and flushes its log every second).

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Method, Version, uri::PathAndQuery};
use meshlab_proxy_route::ResponseFlags;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Where access log lines go.
#[derive(Clone, Debug, Default)]
pub enum AccessLogSink {
    /// Standard output, as Istio configures Envoy (`/dev/stdout`).
    #[default]
    Stdout,
    /// Each line (without the newline) to this channel; for tests and embedding.
    Channel(mpsc::UnboundedSender<String>),
    /// Nowhere (Istio's default profile leaves access logging off).
    Off,
}

/// The proxy's handle on its access log.
#[derive(Clone, Debug)]
pub(crate) struct AccessLog {
    lines: Option<mpsc::UnboundedSender<String>>,
}

/// One access log entry.
#[derive(Debug)]
pub(crate) struct Entry {
    /// When the request (or connection) started.
    pub(crate) start: SystemTime,
    /// The request line; `None` for a TCP connection.
    pub(crate) request: Option<RequestLine>,
    /// The status sent downstream; 0 if none (TCP, or the client left first).
    pub(crate) response_code: u16,
    /// Envoy's response flags.
    pub(crate) flags: ResponseFlags,
    /// Envoy's `%RESPONSE_CODE_DETAILS%`, e.g. `via_upstream`, `route_not_found`.
    pub(crate) details: Cow<'static, str>,
    /// Why the upstream connection failed, if it did.
    pub(crate) transport_failure: Option<String>,
    /// Body bytes received from downstream (TCP: all bytes).
    pub(crate) bytes_received: u64,
    /// Body bytes sent downstream (TCP: all bytes).
    pub(crate) bytes_sent: u64,
    /// How long the whole exchange took.
    pub(crate) duration: Duration,
    /// `x-envoy-upstream-service-time` of the response, in ms.
    pub(crate) upstream_service_time: Option<u64>,
    /// The upstream endpoint.
    pub(crate) upstream_host: Option<SocketAddr>,
    /// The cluster.
    pub(crate) upstream_cluster: Option<Arc<str>>,
    /// The local address of the upstream connection.
    pub(crate) upstream_local: Option<SocketAddr>,
    /// Where the client connected to (the original destination when captured).
    pub(crate) downstream_local: SocketAddr,
    /// The client's address.
    pub(crate) downstream_remote: SocketAddr,
    /// TLS SNI the client sent.
    pub(crate) server_name: Option<Arc<str>>,
    /// The route's name.
    pub(crate) route_name: Option<String>,
}

/// The HTTP parts of an entry.
#[derive(Debug)]
pub(crate) struct RequestLine {
    pub(crate) method: Method,
    /// The path as the client sent it (before any rewrite).
    pub(crate) path: Option<PathAndQuery>,
    pub(crate) version: Version,
    pub(crate) forwarded_for: Option<HeaderValue>,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) request_id: Option<HeaderValue>,
    pub(crate) authority: Option<HeaderValue>,
}

// === impl AccessLog ===

impl AccessLog {
    /// Starts writing to `sink` (spawning the stdout writer if needed).
    pub(crate) fn start(sink: AccessLogSink) -> Self {
        let lines = match sink {
            AccessLogSink::Off => None,
            AccessLogSink::Channel(lines) => Some(lines),
            AccessLogSink::Stdout => {
                let (lines, receiver) = mpsc::unbounded_channel();
                tokio::spawn(write_stdout(receiver));
                Some(lines)
            }
        };
        Self { lines }
    }

    /// Logs one entry.
    pub(crate) fn write(&self, entry: &Entry) {
        if let Some(lines) = &self.lines {
            // The only failure is a closed receiver: nobody reads any more.
            let _ = lines.send(entry.to_string());
        }
    }
}

/// Writes lines to stdout, flushing whenever the queue runs dry.
async fn write_stdout(mut lines: mpsc::UnboundedReceiver<String>) {
    let mut out = tokio::io::BufWriter::new(tokio::io::stdout());
    while let Some(line) = lines.recv().await {
        let mut batch = Some(line);
        while let Some(line) = batch.take() {
            if out.write_all(line.as_bytes()).await.is_err() || out.write_all(b"\n").await.is_err()
            {
                return;
            }
            batch = lines.try_recv().ok();
        }
        if out.flush().await.is_err() {
            return;
        }
    }
}

// === impl Entry ===

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] ", StartTime(self.start))?;
        match &self.request {
            Some(request) => write!(
                f,
                "\"{} {} {}\" ",
                request.method,
                Dash(request.path.as_ref().map(PathAndQuery::as_str)),
                protocol(request.version)
            )?,
            None => f.write_str("\"- - -\" ")?,
        }
        write!(
            f,
            "{} {} {} - \"{}\" {} {} {} {} ",
            self.response_code,
            self.flags,
            if self.details.is_empty() {
                "-"
            } else {
                &self.details
            },
            Dash(self.transport_failure.as_deref()),
            self.bytes_received,
            self.bytes_sent,
            self.duration.as_millis(),
            Dash(self.upstream_service_time),
        )?;
        let header = |value: Option<&HeaderValue>| {
            value.map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        };
        let request = self.request.as_ref();
        write!(
            f,
            "\"{}\" \"{}\" \"{}\" \"{}\" ",
            Dash(header(request.and_then(|r| r.forwarded_for.as_ref()))),
            Dash(header(request.and_then(|r| r.user_agent.as_ref()))),
            Dash(header(request.and_then(|r| r.request_id.as_ref()))),
            Dash(header(request.and_then(|r| r.authority.as_ref()))),
        )?;
        write!(
            f,
            "\"{}\" {} {} {} {} {} {}",
            Dash(self.upstream_host),
            Dash(self.upstream_cluster.as_deref()),
            Dash(self.upstream_local),
            self.downstream_local,
            self.downstream_remote,
            Dash(self.server_name.as_deref()),
            Dash(self.route_name.as_deref().filter(|name| !name.is_empty())),
        )
    }
}

/// `%PROTOCOL%` as Envoy prints it.
fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// A value, or `-` when absent.
struct Dash<T>(Option<T>);

impl<T: fmt::Display> fmt::Display for Dash<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(value) => value.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// Envoy's default `%START_TIME%`: `2024-06-02T13:24:57.930Z`.
pub(crate) struct StartTime(pub(crate) SystemTime);

impl fmt::Display for StartTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since_epoch = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since_epoch.as_secs();
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        let rest = secs % 86_400;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rest / 3600,
            rest / 60 % 60,
            rest % 60,
            since_epoch.subsec_millis()
        )
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
