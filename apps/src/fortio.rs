//! `fortio`: the load generator of Istio's circuit-breaking task, as that task uses it.
//!
//! The task runs `fortio curl -quiet http://httpbin:8000/get` and
//! `fortio load -c 2 -qps 0 -n 20 -loglevel Warning http://httpbin:8000/get` in the
//! `fortio/fortio` image and reads the answers literally: the status line of the
//! response, and the `Code 200 : 17 (85.0 %)` lines of the load summary. meshlab's
//! images hold only the meshlab binary, so `/usr/bin/fortio` links to it and this
//! module gives the same surface: fortio's single-dash flags, its report layout and
//! its keep-alive client (each of the `-c` connections sends its requests in turn,
//! and opens a new socket only when the server closed the last one).
//!
//! `fortio server` answers 200 on port 8080, so the sample Deployment's default
//! command keeps a ready container. It is not fortio's echo server.
//!
//! Known differences from fortio: HTTP/1.1 over plain TCP only (no `https://`, no
//! gRPC), percentiles are computed from the exact samples rather than interpolated in
//! histogram buckets, and no JSON output or web UI.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The fortio release whose output this module follows.
const VERSION: &str = "1.69.5";

/// Sent as `User-Agent`, as fortio does.
const USER_AGENT: &str = "fortio.org/fortio-1.69.5";

/// How long a single call may take before it counts as an error (fortio's default).
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs fortio with the arguments after the program name; returns the exit status.
pub fn main(args: Vec<OsString>) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("fortio: cannot start the async runtime: {err}");
            return 1;
        }
    };
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    runtime.block_on(run(args, &mut stdout, &mut stderr))
}

/// Runs fortio in the current tokio runtime, writing to the given streams. Tests call
/// this to capture output without a process.
pub async fn run(
    args: Vec<OsString>,
    stdout: &mut (dyn Write + Send),
    stderr: &mut (dyn Write + Send),
) -> i32 {
    let command = match parse(args) {
        Ok(command) => command,
        Err(message) => {
            let _ = writeln!(stderr, "{message}");
            let _ = writeln!(stderr, "{}", usage());
            return 1;
        }
    };
    match command {
        Command::Help => {
            let _ = writeln!(stdout, "{}", usage());
            0
        }
        Command::Version => {
            let _ = writeln!(stdout, "{VERSION}");
            0
        }
        Command::Curl(opts) => curl(&opts, stdout, stderr).await,
        Command::Load(opts) => load(&opts, stdout, stderr).await,
        Command::Server { port } => server(port, stderr).await,
    }
}

fn usage() -> String {
    format!(
        "Φορτίο {VERSION} usage:\n\
         \tfortio command [flags] target\n\
         where command is one of: load (load testing), server (starts ui, rest api, \
         http-echo), curl (single URL debug)\n\
         flags: -c connections, -qps rate (0 = max), -n calls, -t duration, \
         -H 'name: value', -loglevel level, -quiet"
    )
}

// === Arguments ===

/// What to do.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Curl(Options),
    Load(Options),
    Server { port: u16 },
    Help,
    Version,
}

/// The flags of `curl` and `load`.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    /// `-c`: concurrent connections (default 4).
    connections: usize,
    /// `-qps`: total queries per second; `None` for as fast as possible (`0`, `-1`).
    qps: Option<u32>,
    /// `-n`: exact number of calls; when absent, run for `duration`.
    calls: Option<u64>,
    /// `-t`: how long to run without `-n` (default 5 s).
    duration: Duration,
    /// `-H`: extra request headers.
    headers: Vec<(String, String)>,
    /// Whether warnings go to stderr (`-loglevel` below `Error`).
    warnings: bool,
    /// `-quiet`.
    quiet: bool,
    /// The target.
    url: Target,
}

/// Where the requests go: an `http://` URL.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    /// As given, for the report.
    text: String,
    host: String,
    port: u16,
    /// Path and query.
    path: String,
}

fn parse(args: Vec<OsString>) -> Result<Command, String> {
    let mut args = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .into_iter();
    let Some(command) = args.next() else {
        return Err("fortio: missing command".to_owned());
    };
    let command = command.trim_start_matches('-').to_owned();
    match command.as_str() {
        "help" | "h" => return Ok(Command::Help),
        "version" => return Ok(Command::Version),
        "curl" | "load" | "server" => {}
        other => return Err(format!("fortio: unknown command {other:?}")),
    }

    let mut connections = 4;
    let mut qps = Some(8);
    let mut calls = None;
    let mut duration = Duration::from_secs(5);
    let mut headers = Vec::new();
    let mut warnings = true;
    let mut quiet = false;
    let mut port = 8080;
    let mut positional = Vec::new();
    while let Some(arg) = args.next() {
        if !arg.starts_with('-') || arg == "-" {
            positional.push(arg);
            continue;
        }
        let flag = arg.trim_start_matches('-');
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (flag, None),
        };
        if name == "quiet" {
            quiet = inline.is_none_or(|v| v != "false");
            continue;
        }
        let Some(value) = inline.or_else(|| args.next()) else {
            return Err(format!("flag needs an argument: -{name}"));
        };
        let number = |what: &str| -> Result<i64, String> {
            value
                .parse::<i64>()
                .map_err(|_| format!("invalid value {value:?} for flag -{what}: parse error"))
        };
        match name {
            "c" => connections = usize::try_from(number("c")?.max(1)).unwrap_or(1),
            "qps" => {
                let rate = number("qps")?;
                qps = u32::try_from(rate).ok().filter(|&r| r > 0);
            }
            "n" => calls = u64::try_from(number("n")?).ok().filter(|&n| n > 0),
            "t" => duration = parse_duration(&value)?,
            "H" => {
                let Some((k, v)) = value.split_once(':') else {
                    return Err(format!("invalid header {value:?}: expected 'name: value'"));
                };
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            "http-port" => {
                let text = value.rsplit(':').next().unwrap_or(&value);
                port = text
                    .parse()
                    .map_err(|_| format!("invalid value {value:?} for flag -http-port"))?;
            }
            "loglevel" => {
                warnings = !matches!(
                    value.to_ascii_lowercase().as_str(),
                    "error" | "critical" | "fatal"
                );
            }
            // Accepted and ignored: they change nothing the tasks observe.
            "timeout" | "a" | "json" | "labels" | "grpc-port" | "redirect-port" | "r" | "p"
            | "logger-force-color" | "k" | "stdclient" => {}
            other => return Err(format!("flag provided but not defined: -{other}")),
        }
    }

    if command == "server" {
        return Ok(Command::Server { port });
    }
    let url = match positional.as_slice() {
        [url] => parse_target(url)?,
        [] => return Err(format!("fortio {command}: missing URL")),
        more => return Err(format!("fortio {command}: one URL expected, got {more:?}")),
    };
    let opts = Options {
        connections,
        qps,
        calls,
        duration,
        headers,
        warnings,
        quiet,
        url,
    };
    Ok(if command == "curl" {
        Command::Curl(opts)
    } else {
        Command::Load(opts)
    })
}

/// A Go duration such as `5s`, `1m30s`, `250ms`; a bare number is seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid value {text:?} for flag -t: parse error");
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).map_err(|_| invalid());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number: f64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(number * scale).map_err(|_| invalid())?;
    }
    Ok(total)
}

fn parse_target(text: &str) -> Result<Target, String> {
    let with_scheme = if text.contains("://") {
        text.to_owned()
    } else {
        format!("http://{text}")
    };
    let uri: Uri = with_scheme
        .parse()
        .map_err(|e| format!("invalid URL {text:?}: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "unsupported URL {text:?}: meshlab's fortio speaks plain http:// only"
        ));
    }
    let host = uri
        .host()
        .ok_or_else(|| format!("invalid URL {text:?}: no host"))?
        .trim_matches(['[', ']'])
        .to_owned();
    Ok(Target {
        text: text.to_owned(),
        host,
        port: uri.port_u16().unwrap_or(80),
        path: uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), ToString::to_string),
    })
}

// === Client ===

/// One keep-alive connection, reopened when the server closes it.
struct Client<'a> {
    opts: &'a Options,
    sender: Option<SendRequest<Empty<Bytes>>>,
    /// Sockets opened so far.
    sockets: u64,
}

/// What one call observed.
#[derive(Clone, Debug)]
struct Call {
    /// The HTTP status, or -1 when no response came.
    code: i32,
    /// Time from sending to the end of the body.
    elapsed: Duration,
    /// Bytes of the status line and headers.
    header_size: usize,
    /// Headers plus body.
    total_size: usize,
}

/// A response, for `curl`.
struct Response {
    head: String,
    body: Bytes,
}

impl std::fmt::Debug for Client<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("target", &self.opts.url.text)
            .field("sockets", &self.sockets)
            .finish_non_exhaustive()
    }
}

impl<'a> Client<'a> {
    fn new(opts: &'a Options) -> Self {
        Client {
            opts,
            sender: None,
            sockets: 0,
        }
    }

    /// A ready connection: the current one if the server kept it open, else a new one.
    async fn ready(&mut self) -> Result<&mut SendRequest<Empty<Bytes>>, String> {
        if let Some(mut sender) = self.sender.take()
            && sender.ready().await.is_ok()
        {
            return Ok(self.sender.insert(sender));
        }
        let target = &self.opts.url;
        let stream = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| format!("unable to connect to {}:{}: {e}", target.host, target.port))?;
        let _ = stream.set_nodelay(true);
        self.sockets += 1;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake with {}: {e}", target.host))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(self.sender.insert(sender))
    }

    /// Sends one GET and reads the whole response.
    async fn get(&mut self) -> Result<Response, String> {
        let target = &self.opts.url;
        let authority = if target.port == 80 {
            target.host.clone()
        } else {
            format!("{}:{}", target.host, target.port)
        };
        let mut request = Request::get(target.path.as_str())
            .header(http::header::HOST, authority)
            .header(http::header::USER_AGENT, USER_AGENT);
        for (name, value) in &self.opts.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("invalid request: {e}"))?;
        let sender = self.ready().await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request to {} failed: {e}", target.text))?;
        let status = response.status();
        let mut head = format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        for (name, value) in response.headers() {
            let _ = write!(
                head,
                "{name}: {}\r\n",
                String::from_utf8_lossy(value.as_bytes())
            );
        }
        head.push_str("\r\n");
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the body from {}: {e}", target.text))?
            .to_bytes();
        Ok(Response { head, body })
    }

    /// One timed call, as the load report counts it.
    async fn call(&mut self) -> (Call, Option<String>) {
        let start = Instant::now();
        let outcome = tokio::time::timeout(CALL_TIMEOUT, self.get()).await;
        let elapsed = start.elapsed();
        match outcome {
            Ok(Ok(response)) => {
                let code = response
                    .head
                    .split(' ')
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(-1);
                let call = Call {
                    code,
                    elapsed,
                    header_size: response.head.len(),
                    total_size: response.head.len() + response.body.len(),
                };
                let warning =
                    (code != 200).then(|| format!("Parsed non ok code {code} (HTTP/1.1 {code})"));
                (call, warning)
            }
            Ok(Err(error)) => {
                self.sender = None;
                (failed(elapsed), Some(error))
            }
            Err(_) => {
                self.sender = None;
                (
                    failed(elapsed),
                    Some(format!("timeout after {}", go_duration(CALL_TIMEOUT))),
                )
            }
        }
    }
}

fn failed(elapsed: Duration) -> Call {
    Call {
        code: -1,
        elapsed,
        header_size: 0,
        total_size: 0,
    }
}

/// A warning line in fortio's text log format.
fn warn(stderr: &mut (dyn Write + Send), opts: &Options, message: &str) {
    if opts.warnings {
        let _ = writeln!(stderr, "{} W {message}", clock());
    }
}

/// The UTC time of day, `HH:MM:SS`.
fn clock() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let day = secs % 86_400;
    format!("{:02}:{:02}:{:02}", day / 3600, day / 60 % 60, day % 60)
}

// === curl ===

async fn curl(
    opts: &Options,
    stdout: &mut (dyn Write + Send),
    stderr: &mut (dyn Write + Send),
) -> i32 {
    let mut client = Client::new(opts);
    let response = match tokio::time::timeout(CALL_TIMEOUT, client.get()).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            let _ = writeln!(stderr, "{} E {error}", clock());
            return 1;
        }
        Err(_) => {
            let _ = writeln!(stderr, "{} E timeout fetching {}", clock(), opts.url.text);
            return 1;
        }
    };
    let _ = stdout.write_all(response.head.as_bytes());
    let _ = stdout.write_all(&response.body);
    let _ = stdout.flush();
    let ok = response.head.starts_with("HTTP/1.1 200 ");
    if !ok && !opts.quiet {
        let status = response.head.lines().next().unwrap_or_default();
        let _ = writeln!(stderr, "{} E Error status: {status}", clock());
    }
    i32::from(!ok)
}

// === load ===

/// How much work each connection does.
#[derive(Clone, Copy, Debug)]
enum Budget {
    Calls(u64),
    Until(Instant),
}

async fn load(
    opts: &Options,
    stdout: &mut (dyn Write + Send),
    stderr: &mut (dyn Write + Send),
) -> i32 {
    let threads = opts.connections;
    let procs = std::thread::available_parallelism().map_or(1, usize::from);
    let rate = opts.qps.map_or_else(|| "max".to_owned(), |q| q.to_string());
    let _ = match opts.calls {
        Some(n) => writeln!(
            stdout,
            "Fortio {VERSION} running at {} queries per second, {procs}->{procs} procs, \
             for {n} calls: {}",
            opts.qps.unwrap_or(0),
            opts.url.text
        ),
        None => writeln!(
            stdout,
            "Fortio {VERSION} running at {} queries per second, {procs}->{procs} procs, \
             for {}: {}",
            opts.qps.unwrap_or(0),
            go_duration(opts.duration),
            opts.url.text
        ),
    };
    let _ = match opts.calls {
        Some(n) => writeln!(
            stdout,
            "Starting at {rate} qps with {threads} thread(s) [gomax {procs}] for exactly {n} \
             calls ({} per thread + {})",
            n / threads as u64,
            n % threads as u64
        ),
        None => writeln!(
            stdout,
            "Starting at {rate} qps with {threads} thread(s) [gomax {procs}] for {}",
            go_duration(opts.duration)
        ),
    };
    let _ = stdout.flush();

    let start = Instant::now();
    // Each connection paces itself at its share of the rate.
    let interval = opts
        .qps
        .map(|q| Duration::from_secs_f64(threads as f64 / f64::from(q)));
    let workers = (0..threads).map(|i| {
        let budget = match opts.calls {
            Some(n) => {
                let per = n / threads as u64;
                Budget::Calls(per + u64::from((i as u64) < n % threads as u64))
            }
            None => Budget::Until(start + opts.duration),
        };
        worker(opts, budget, interval)
    });
    let results = futures_join_all(workers).await;
    let ended = start.elapsed();

    let mut calls = Vec::new();
    let mut sockets = 0;
    for (worker_calls, worker_sockets, warnings) in results {
        calls.extend(worker_calls);
        sockets += worker_sockets;
        for warning in warnings {
            warn(stderr, opts, &warning);
        }
    }
    let report = Report {
        calls: &calls,
        sockets,
        threads,
        ended,
    };
    let _ = stdout.write_all(report.render().as_bytes());
    let _ = stdout.flush();
    0
}

/// Runs every future to completion on the current task; returns outputs in order.
async fn futures_join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in set.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// One connection's share of the load: its calls, sockets opened and warnings.
async fn worker(
    opts: &Options,
    budget: Budget,
    interval: Option<Duration>,
) -> (Vec<Call>, u64, Vec<String>) {
    let mut client = Client::new(opts);
    let mut calls = Vec::new();
    let mut warnings = Vec::new();
    let mut next = Instant::now();
    loop {
        match budget {
            Budget::Calls(n) if calls.len() as u64 >= n => break,
            Budget::Until(end) if Instant::now() >= end => break,
            _ => {}
        }
        if let Some(interval) = interval {
            tokio::time::sleep_until(next).await;
            next += interval;
        }
        let (call, warning) = client.call().await;
        calls.push(call);
        warnings.extend(warning);
    }
    (calls, client.sockets, warnings)
}

// === Report ===

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009, 0.01, 0.011, 0.012, 0.014,
    0.016, 0.018, 0.02, 0.025, 0.03, 0.035, 0.04, 0.045, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.2,
    0.3, 0.4, 0.5, 0.75, 1.0, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0,
];

/// The summary `fortio load` prints after a run.
#[derive(Debug)]
struct Report<'a> {
    calls: &'a [Call],
    sockets: u64,
    threads: usize,
    ended: Duration,
}

impl Report<'_> {
    fn render(&self) -> String {
        let mut out = String::new();
        let n = self.calls.len();
        let secs = self.ended.as_secs_f64();
        let qps = if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let times: Vec<f64> = self.calls.iter().map(|c| c.elapsed.as_secs_f64()).collect();
        let _ = writeln!(
            out,
            "Ended after {} : {n} calls. qps={}",
            go_duration(self.ended),
            g(qps, 5)
        );
        let _ = writeln!(out, "Aggregated Function Time : {}", summary(&times));
        histogram(&mut out, &times);
        let errors: Vec<f64> = self
            .calls
            .iter()
            .filter(|c| c.code != 200)
            .map(|c| c.elapsed.as_secs_f64())
            .collect();
        if errors.is_empty() {
            let _ = writeln!(out, "Error cases : no data");
        } else {
            let _ = writeln!(out, "Error cases : {}", summary(&errors));
        }
        let _ = writeln!(
            out,
            "Sockets used: {} (for perfect keepalive, would be {})",
            self.sockets, self.threads
        );
        let _ = writeln!(out, "Uniform: false, Jitter: false, Catchup allowed: true");
        let mut codes: BTreeMap<i32, usize> = BTreeMap::new();
        for call in self.calls {
            *codes.entry(call.code).or_default() += 1;
        }
        for (code, count) in &codes {
            let _ = writeln!(
                out,
                "Code {code} : {count} ({:.1} %)",
                100.0 * *count as f64 / n.max(1) as f64
            );
        }
        let sizes = |f: fn(&Call) -> usize| -> Vec<f64> {
            self.calls.iter().map(|c| f(c) as f64).collect()
        };
        let _ = writeln!(
            out,
            "Response Header Sizes : {}",
            summary(&sizes(|c| c.header_size))
        );
        let _ = writeln!(
            out,
            "Response Body/Total Sizes : {}",
            summary(&sizes(|c| c.total_size))
        );
        let avg_ms = if n == 0 {
            0.0
        } else {
            1000.0 * times.iter().sum::<f64>() / n as f64
        };
        let _ = writeln!(
            out,
            "All done {n} calls (plus 0 warmup) {avg_ms:.3} ms avg, {qps:.1} qps"
        );
        out
    }
}

/// `count N avg A +/- S min M max X sum T`, fortio's one-line statistics.
fn summary(values: &[f64]) -> String {
    if values.is_empty() {
        return "count 0 avg NaN +/- NaN min 0 max 0 sum 0".to_owned();
    }
    let n = values.len() as f64;
    let sum: f64 = values.iter().sum();
    let avg = sum / n;
    let variance = values.iter().map(|v| (v - avg).powi(2)).sum::<f64>() / n;
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "count {} avg {} +/- {} min {} max {} sum {}",
        values.len(),
        g(avg, 6),
        g(variance.sqrt(), 4),
        g(min, 6),
        g(max, 6),
        g(sum, 6)
    )
}

/// The bucket lines and `# target` percentiles.
fn histogram(out: &mut String, times: &[f64]) {
    let _ = writeln!(out, "# range, mid point, percentile, count");
    if times.is_empty() {
        return;
    }
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    let mut seen = 0;
    let mut lower = 0.0;
    for &upper in BUCKETS.iter().chain(std::iter::once(&f64::INFINITY)) {
        let count = sorted[seen..].iter().take_while(|&&t| t <= upper).count();
        if count > 0 {
            seen += count;
            let lo = if lower < min { min } else { lower };
            let hi = if upper > max { max } else { upper };
            let _ = writeln!(
                out,
                ">= {} <= {} , {} , {:.2}, {count}",
                g(lo, 6),
                g(hi, 6),
                g(f64::midpoint(lo, hi), 6),
                100.0 * seen as f64 / sorted.len() as f64
            );
        }
        lower = upper;
        if seen == sorted.len() {
            break;
        }
    }
    for p in [50.0, 75.0, 90.0, 99.0, 99.9] {
        let _ = writeln!(out, "# target {p}% {}", g(percentile(&sorted, p), 6));
    }
}

/// The `p`th percentile of sorted values, interpolating between neighbours.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let below = rank.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let weight = rank - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * weight
}

/// `x` with `digits` significant digits and no trailing zeros, as Go's `%.Ng` prints.
fn g(x: f64, digits: i32) -> String {
    if x == 0.0 || !x.is_finite() {
        return if x.is_nan() {
            "NaN".to_owned()
        } else {
            format!("{x}")
        };
    }
    let exponent = x.abs().log10().floor() as i32;
    let decimals = usize::try_from(digits - 1 - exponent).unwrap_or(0);
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// A duration as Go prints it: `59.8524ms`, `1.5s`, `850µs`.
fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    let trim = |value: f64, unit: &str| {
        let text = format!("{value:.6}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        format!("{text}{unit}")
    };
    match nanos {
        0 => "0s".to_owned(),
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => trim(n as f64 / 1e3, "µs"),
        n if n < 1_000_000_000 => trim(n as f64 / 1e6, "ms"),
        _ => trim(d.as_secs_f64(), "s"),
    }
}

// === server ===

/// Answers 200 on every path until SIGTERM: the sample Deployment's default process.
async fn server(port: u16, stderr: &mut (dyn Write + Send)) -> i32 {
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) => {
            let _ = writeln!(stderr, "{} F cannot listen on {addr}: {err}", clock());
            return 1;
        }
    };
    let _ = writeln!(stderr, "Fortio {VERSION} echo server listening on {addr}");
    let router = axum::Router::new()
        .fallback(|| async { (StatusCode::OK, format!("Φορτίο {VERSION} (meshlab): ok\n")) });
    match crate::server::serve(listener, router).await {
        Ok(()) => 0,
        Err(err) => {
            let _ = writeln!(stderr, "{} F serving failed: {err}", clock());
            1
        }
    }
}

#[cfg(test)]
mod tests;
