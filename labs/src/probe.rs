//! Sending a check's requests, as `curl` sends them: the same client the learner
//! types (`meshlab curl`), so status codes, timings and curl's exit codes (35 for a
//! refused TLS handshake, 56 for a reset) are what the learner would see.
//!
//! One function serves both places requests come from: the control plane calls it
//! in-process for requests from the ingress, and `meshlab run probe` calls it inside
//! a workload's app container (one `docker exec` per request set), printing the
//! outcomes as JSON. Bodies are not returned, only which markers they contained.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

/// A request set, ready to send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// The URL of every request.
    pub url: String,
    /// How many requests.
    pub count: u32,
    /// How many at a time.
    pub concurrency: u32,
    /// Log in to Bookinfo as this user first (`POST <origin>/login`).
    pub login: Option<String>,
    /// Request headers, `Name: value`.
    pub headers: Vec<String>,
    /// The method (`GET` when absent).
    pub method: Option<String>,
    /// curl's `--max-time`, in milliseconds.
    pub timeout_ms: u64,
    /// Texts to look for in each body.
    pub markers: Vec<String>,
}

/// What one request got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The HTTP status; 0 when no response came.
    pub status: u16,
    /// curl's exit code: 0, or why the transfer failed (7, 28, 35, 56, …).
    pub exit: i32,
    /// How long the request took, in milliseconds.
    pub millis: u64,
    /// The markers the body contained.
    pub matched: Vec<String>,
}

/// Why a request set could not be sent at all.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Logging in failed.
    #[error("cannot log in to Bookinfo as {user:?} at {url}: {reason}")]
    Login {
        /// The user.
        user: String,
        /// The login URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// Sends the requests, `concurrency` at a time, calling `progress` with the number
/// done after each one; outcomes in the order they finished.
pub async fn run(spec: &Spec, progress: impl Fn(u32)) -> Result<Vec<Outcome>, ProbeError> {
    let mut headers = spec.headers.clone();
    if let Some(user) = &spec.login {
        headers.push(format!("Cookie: {}", login(&spec.url, user).await?));
    }
    let mut outcomes = Vec::with_capacity(spec.count as usize);
    let mut requests = futures_util::stream::iter(0..spec.count)
        .map(|_| one(spec, &headers))
        .buffer_unordered(spec.concurrency.max(1) as usize);
    while let Some(outcome) = requests.next().await {
        outcomes.push(outcome);
        progress(u32::try_from(outcomes.len()).unwrap_or(u32::MAX));
    }
    Ok(outcomes)
}

/// How `meshlab run probe` reports progress on standard error: `progress N`.
pub const PROGRESS: &str = "progress ";

/// The separator between the body and curl's `-w` report in standard output.
const REPORT: &str = "\n@@meshlab-probe@@";

async fn one(spec: &Spec, headers: &[String]) -> Outcome {
    let mut args: Vec<OsString> = vec![
        "-s".into(),
        "--max-time".into(),
        format!(
            "{:.3}",
            Duration::from_millis(spec.timeout_ms).as_secs_f64()
        )
        .into(),
        "-w".into(),
        format!("{REPORT}%{{http_code}}").into(),
    ];
    match spec.method.as_deref() {
        None | Some("GET") => {}
        Some("HEAD") => args.push("-I".into()),
        Some(method) => {
            args.push("-X".into());
            args.push(method.into());
        }
    }
    for header in headers {
        args.push("-H".into());
        args.push(header.into());
    }
    args.push(spec.url.clone().into());
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let started = Instant::now();
    let exit = meshlab_apps::curl::run(args, &mut stdout, &mut stderr).await;
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let text = String::from_utf8_lossy(&stdout);
    let (body, status) = match text.rsplit_once(REPORT) {
        Some((body, code)) => (body, code.trim().parse().unwrap_or(0)),
        None => (text.as_ref(), 0),
    };
    Outcome {
        status,
        exit,
        millis,
        matched: spec
            .markers
            .iter()
            .filter(|m| body.contains(m.as_str()))
            .cloned()
            .collect(),
    }
}

/// Logs in as Istio's tests do (`POST /login` with `username=USER&passwd=password`)
/// and returns the session cookie (`session=…`).
async fn login(url: &str, user: &str) -> Result<String, ProbeError> {
    let origin = origin(url);
    let login_url = format!("{origin}/login");
    let failed = |reason: String| ProbeError::Login {
        user: user.to_owned(),
        url: login_url.clone(),
        reason,
    };
    let args: Vec<OsString> = vec![
        "-s".into(),
        "-S".into(),
        "-i".into(),
        "--max-time".into(),
        "10".into(),
        "-d".into(),
        format!("username={user}&passwd=password").into(),
        login_url.clone().into(),
    ];
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let exit = meshlab_apps::curl::run(args, &mut stdout, &mut stderr).await;
    if exit != 0 {
        return Err(failed(format!(
            "curl exit {exit}: {}",
            String::from_utf8_lossy(&stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&stdout);
    text.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim().eq_ignore_ascii_case("set-cookie").then(|| {
                value
                    .trim()
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
        })
        .filter(|cookie| cookie.starts_with("session="))
        .ok_or_else(|| failed("the answer set no session cookie".to_owned()))
}

/// `http://host:port` of a URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(slash) => &url[..after_scheme + slash],
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn the_origin_drops_the_path() {
        assert_eq!(
            origin("http://10.0.0.2:8080/productpage?u=1"),
            "http://10.0.0.2:8080"
        );
        assert_eq!(origin("http://productpage:9080"), "http://productpage:9080");
    }
}
