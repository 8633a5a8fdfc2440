//! The lab format: one folder per lab (`labs/<name>/lab.yaml` beside the manifests
//! its steps apply), parsed here and nowhere else.
//!
//! A lab is a title, what the learner will learn, and steps. A step has prose
//! (markdown: the Istio concept and what to look for), the manifests it applies or
//! deletes, mesh settings it changes, the commands a learner may type to see it
//! themselves, and checks. A check sends a set of requests (from the ingress gateway
//! or from inside a workload) and states expectations, each one counted over the
//! responses or read from the environment (access log, metrics, proxy config). See
//! `labs/README.md` for the file format with an example.
//!
//! This module is the labs' one door for YAML, as `control/src/yaml.rs` is for
//! manifests: lab files are ours, not Istio's, so they do not go through the store.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A lab, as its `lab.yaml` describes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lab {
    /// The folder's name, e.g. `request-routing` (not written in the file).
    #[serde(default, skip_deserializing)]
    pub name: String,
    /// A title for lists and headings.
    pub title: String,
    /// One or two sentences: what the lab shows.
    pub summary: String,
    /// What the learner will learn, one item per line.
    pub learn: Vec<String>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// The manifests of the lab's folder by file name (not written in the file).
    #[serde(skip)]
    pub manifests: BTreeMap<String, String>,
}

/// One step of a lab.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    /// A heading.
    pub title: String,
    /// One sentence shown while the step runs.
    pub summary: String,
    /// Markdown: the concept and what to look for.
    pub prose: String,
    /// Manifests of the lab's folder to apply, in order.
    #[serde(default)]
    pub apply: Vec<String>,
    /// Manifests whose objects to delete (objects already absent are fine).
    #[serde(default)]
    pub delete: Vec<String>,
    /// Mesh settings to change, as `meshlab mesh-config set KEY=VALUE`.
    #[serde(default)]
    pub mesh_config: BTreeMap<String, String>,
    /// Commands a learner may type to see it themselves.
    #[serde(default)]
    pub commands: Vec<String>,
    /// What must hold after the step.
    #[serde(default)]
    pub checks: Vec<Check>,
}

/// A verify check: optional requests, then expectations.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Check {
    /// What is checked, as the learner reads it (`anonymous pages show no stars`).
    pub name: String,
    /// The requests whose responses the expectations count.
    #[serde(default)]
    pub requests: Option<Requests>,
    /// Every expectation must hold.
    pub expect: Vec<Expect>,
    /// What to look at when the check fails.
    pub hint: String,
    /// How long configuration may take to reach the proxies: the check is repeated
    /// until it holds or this passes (Istio's docs: "eventually consistent").
    /// Default 20s.
    #[serde(default)]
    pub within: Option<String>,
}

/// A set of requests, sent as `curl` would send them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Requests {
    /// `ingress` (the ingress gateway, as `curl localhost:8080` from the host), or a
    /// workload (`sleep`, `sleep.legacy`: its Deployment's pod, from its app container).
    pub from: String,
    /// A path for the ingress (`/productpage`), a URL for a workload.
    pub url: String,
    /// How many requests. Default 1.
    #[serde(default = "one")]
    pub count: u32,
    /// How many at a time. Default 1.
    #[serde(default = "one")]
    pub concurrency: u32,
    /// Log in to Bookinfo as this user first (`POST /login`), then send its cookie.
    #[serde(default)]
    pub login: Option<String>,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The method; GET by default (HEAD for `-I`).
    #[serde(default)]
    pub method: Option<String>,
    /// curl's `--max-time` per request. Default 15s.
    #[serde(default)]
    pub timeout: Option<String>,
}

fn one() -> u32 {
    1
}

/// One expectation: exactly one of the fields names what is counted.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expect {
    /// Responses with this HTTP status (0: no response).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Requests that ended with this curl exit code (0: a response came).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    /// Responses whose body contains this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Bookinfo pages with rating stars: `any`, `black` (reviews v2) or `red` (v3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stars: Option<Stars>,
    /// Responses that took between these durations, e.g. `5s..8.5s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<String>,
    /// How many responses must match: `all` (default), `none`, `N`, `A..B`, `>=N`, `<=N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<Bounds>,
    /// Lines of a sidecar's access log written during the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogFact>,
    /// How much a proxy metric grew during the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricFact>,
    /// The clusters a proxy knows (from the control plane's translation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<ClusterFact>,
}

/// Which stars a Bookinfo page shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stars {
    /// Any rating stars (reviews v2 or v3).
    Any,
    /// Black stars (reviews v2).
    Black,
    /// Red stars (reviews v3).
    Red,
}

/// Access log lines of a workload's sidecar.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogFact {
    /// The workload (`sleep`, `sleep.legacy`).
    pub workload: String,
    /// Text the line contains, e.g. `outbound|80||httpbin.org`.
    #[serde(default)]
    pub contains: Option<String>,
    /// The RESPONSE_FLAGS field, e.g. `UT` or `DI`.
    #[serde(default)]
    pub flags: Option<String>,
    /// How many lines; default `>=1`.
    #[serde(default)]
    pub count: Option<Bounds>,
}

/// The growth of a Prometheus metric (`/stats/prometheus` on 15090) during a check.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricFact {
    /// The workload whose sidecar is scraped.
    pub workload: String,
    /// The metric, e.g. `istio_requests_total`.
    pub name: String,
    /// Labels the series must carry (summed over the rest).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// How much it grew.
    pub delta: Bounds,
}

/// The clusters of a workload's proxy.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterFact {
    /// The workload (`sleep`).
    pub workload: String,
    /// Count only clusters whose name contains this (`httpbin.other`).
    #[serde(default)]
    pub matching: Option<String>,
    /// How many; any number when absent.
    #[serde(default)]
    pub count: Option<Bounds>,
    /// Fewer than the proxy knew before the step's manifests were applied.
    #[serde(default)]
    pub shrunk: bool,
}

/// Where requests come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// The ingress gateway, as from the host.
    Ingress,
    /// Inside a workload's app container.
    Workload(Workload),
}

/// A Deployment's pod: `sleep` (namespace `default`) or `sleep.legacy`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Workload {
    /// The Deployment.
    pub deployment: String,
    /// Its namespace.
    pub namespace: String,
}

impl Workload {
    /// `NAME` or `NAME.NAMESPACE`.
    pub fn parse(text: &str) -> Workload {
        let (deployment, namespace) = text.split_once('.').unwrap_or((text, "default"));
        Workload {
            deployment: deployment.to_owned(),
            namespace: namespace.to_owned(),
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "deploy/{}", self.deployment)?;
        if self.namespace != "default" {
            write!(f, " -n {}", self.namespace)?;
        }
        Ok(())
    }
}

impl Source {
    /// `ingress` or a workload.
    pub fn parse(text: &str) -> Source {
        if text == "ingress" {
            Source::Ingress
        } else {
            Source::Workload(Workload::parse(text))
        }
    }
}

// === Bounds ===

/// How many of something are expected, inclusive on both ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// The least.
    pub min: Limit,
    /// The most; unbounded when absent.
    pub max: Option<Limit>,
}

/// One end of [`Bounds`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// A number.
    N(u64),
    /// All of the requests sent.
    All,
}

impl Limit {
    fn resolve(self, total: u64) -> u64 {
        match self {
            Limit::N(n) => n,
            Limit::All => total,
        }
    }
}

impl Bounds {
    /// Every one (the default).
    pub const ALL: Bounds = Bounds {
        min: Limit::All,
        max: Some(Limit::All),
    };

    /// At least one.
    pub const SOME: Bounds = Bounds {
        min: Limit::N(1),
        max: None,
    };

    /// Whether `value` is within the bounds, `total` being what `all` means.
    pub fn contains(&self, value: u64, total: u64) -> bool {
        value >= self.min.resolve(total) && self.max.is_none_or(|max| value <= max.resolve(total))
    }

    /// The bounds in words, `total` being what `all` means: `all 30`, `0`, `40..60`,
    /// `>= 1`.
    pub fn describe(&self, total: Option<u64>) -> String {
        let show = |limit: Limit| match (limit, total) {
            (Limit::N(n), _) => n.to_string(),
            (Limit::All, Some(total)) => total.to_string(),
            (Limit::All, None) => "all".to_owned(),
        };
        match (self.min, self.max) {
            (Limit::All, Some(Limit::All)) => match total {
                Some(total) => format!("all {total}"),
                None => "all".to_owned(),
            },
            (min, Some(max)) if min == max => show(min),
            (Limit::N(0), Some(max)) => format!("<= {}", show(max)),
            (min, Some(max)) => format!("{}..{}", show(min), show(max)),
            (min, None) => format!(">= {}", show(min)),
        }
    }
}

impl std::str::FromStr for Bounds {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let number = |s: &str| {
            let s = s.trim();
            if s == "all" {
                return Ok(Limit::All);
            }
            s.parse::<u64>()
                .map(Limit::N)
                .map_err(|_| format!("{s:?} is not a count (use all, none, N, A..B, >=N or <=N)"))
        };
        let exact = |limit| Bounds {
            min: limit,
            max: Some(limit),
        };
        Ok(match text {
            "none" => exact(Limit::N(0)),
            _ if text.starts_with(">=") => Bounds {
                min: number(&text[2..])?,
                max: None,
            },
            _ if text.starts_with("<=") => Bounds {
                min: Limit::N(0),
                max: Some(number(&text[2..])?),
            },
            _ => match text.split_once("..") {
                Some((min, max)) => {
                    let (min, max) = (number(min)?, number(max)?);
                    if let (Limit::N(a), Limit::N(b)) = (min, max)
                        && a > b
                    {
                        return Err(format!("{text:?} is empty: {a} > {b}"));
                    }
                    Bounds {
                        min,
                        max: Some(max),
                    }
                }
                None => exact(number(text)?),
            },
        })
    }
}

impl<'de> Deserialize<'de> for Bounds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::N(n) => Ok(Bounds {
                min: Limit::N(n),
                max: Some(Limit::N(n)),
            }),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for Bounds {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.describe(None))
    }
}

// === Durations ===

/// Istio's duration syntax as the labs use it: `7s`, `2.5s`, `500ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        return Err(format!("{text:?} is not a duration (e.g. 2.5s or 500ms)"));
    };
    number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map(|n| Duration::from_secs_f64(n * unit))
        .ok_or_else(|| format!("{text:?} is not a duration (e.g. 2.5s or 500ms)"))
}

/// A latency window `A..B` (either end may be left out: `..3s`, `5s..`).
pub fn parse_window(text: &str) -> Result<(Duration, Option<Duration>), String> {
    let (min, max) = text
        .split_once("..")
        .ok_or_else(|| format!("{text:?} is not a window (e.g. 5s..8.5s)"))?;
    let min = if min.trim().is_empty() {
        Duration::ZERO
    } else {
        parse_duration(min)?
    };
    let max = if max.trim().is_empty() {
        None
    } else {
        Some(parse_duration(max)?)
    };
    if max.is_some_and(|max| max < min) {
        return Err(format!("{text:?} is an empty window"));
    }
    Ok((min, max))
}

// === Parsing ===

/// Why a lab's files are not a lab.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// `lab.yaml` is not valid YAML for the format.
    #[error("labs/{lab}/lab.yaml: {reason}")]
    Syntax {
        /// The lab's folder.
        lab: String,
        /// The parser's account, with line and column.
        reason: String,
    },
    /// The file parses but says something impossible.
    #[error("labs/{lab}/lab.yaml: {location}: {reason}")]
    Invalid {
        /// The lab's folder.
        lab: String,
        /// `step 2, check "jason sees stars"`.
        location: String,
        /// What is wrong.
        reason: String,
    },
}

/// Parses `lab.yaml` of folder `name` with the folder's manifests, and validates it:
/// every file it names exists, every expectation says one thing, every count,
/// duration and source parses.
pub fn parse(
    name: &str,
    yaml: &str,
    manifests: BTreeMap<String, String>,
) -> Result<Lab, FormatError> {
    let mut lab: Lab = serde_saphyr::from_str(yaml).map_err(|err| FormatError::Syntax {
        lab: name.to_owned(),
        reason: err.to_string(),
    })?;
    lab.name = name.to_owned();
    lab.manifests = manifests;
    validate(&lab)?;
    Ok(lab)
}

fn validate(lab: &Lab) -> Result<(), FormatError> {
    let invalid = |location: String, reason: String| FormatError::Invalid {
        lab: lab.name.clone(),
        location,
        reason,
    };
    if lab.steps.is_empty() {
        return Err(invalid("steps".to_owned(), "a lab needs steps".to_owned()));
    }
    for (index, step) in lab.steps.iter().enumerate() {
        let at = format!("step {}", index + 1);
        for file in step.apply.iter().chain(&step.delete) {
            if !lab.manifests.contains_key(file) {
                return Err(invalid(
                    at,
                    format!(
                        "names {file:?}, which is not in the lab's folder (hint: add it to labs/{}/ and to the catalog)",
                        lab.name
                    ),
                ));
            }
        }
        for check in &step.checks {
            let at = format!("{at}, check {:?}", check.name);
            validate_check(check).map_err(|reason| invalid(at, reason))?;
        }
    }
    Ok(())
}

fn validate_check(check: &Check) -> Result<(), String> {
    if let Some(within) = &check.within {
        parse_duration(within)?;
    }
    if let Some(requests) = &check.requests {
        if requests.count == 0 || requests.concurrency == 0 {
            return Err("count and concurrency must be at least 1".to_owned());
        }
        if let Some(timeout) = &requests.timeout {
            parse_duration(timeout)?;
        }
        match Source::parse(&requests.from) {
            Source::Ingress if !requests.url.starts_with('/') => {
                return Err(format!(
                    "requests from the ingress take a path, not {:?}",
                    requests.url
                ));
            }
            Source::Workload(_) if !requests.url.contains("://") => {
                return Err(format!(
                    "requests from a workload take a URL, not {:?}",
                    requests.url
                ));
            }
            _ => {}
        }
    }
    if check.expect.is_empty() {
        return Err("a check needs at least one expectation".to_owned());
    }
    for expect in &check.expect {
        let response = [
            expect.status.is_some(),
            expect.exit.is_some(),
            expect.body.is_some(),
            expect.stars.is_some(),
            expect.latency.is_some(),
        ]
        .into_iter()
        .filter(|b| *b)
        .count();
        let facts = [
            expect.log.is_some(),
            expect.metric.is_some(),
            expect.clusters.is_some(),
        ]
        .into_iter()
        .filter(|b| *b)
        .count();
        if response + facts != 1 {
            return Err(
                "each expectation names exactly one of status, exit, body, stars, latency, log, metric, clusters"
                    .to_owned(),
            );
        }
        if response == 1 && check.requests.is_none() {
            return Err("expectations on responses need requests".to_owned());
        }
        if facts == 1 && expect.count.is_some() {
            return Err("log, metric and clusters take their count inside".to_owned());
        }
        if let Some(window) = &expect.latency {
            parse_window(window)?;
        }
    }
    Ok(())
}
