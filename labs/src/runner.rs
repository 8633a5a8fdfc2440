//! The runner: applies each step, runs its checks and reports as it goes, over an
//! [`Environment`] the control plane implements (so the CLI, the tests and the
//! dashboard all run labs the same way, inside the control container).
//!
//! Events are what the API streams, one JSON object per line; the CLI renders them
//! and writes JUnit from them. A lab restores the environment it found (objects and
//! mesh settings), so labs run in any order and repeatedly.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;

use crate::check::{self, Verdict};
use crate::format::{Bounds, Check, Lab, Source, Workload, parse_duration};
use crate::probe::{self, Outcome};

/// How long a check may take to hold when it says nothing.
const DEFAULT_WITHIN: Duration = Duration::from_secs(20);
/// Between two attempts of a check.
const RETRY_PAUSE: Duration = Duration::from_millis(750);
/// How long the proxies take, at most, to write an access log line.
const LOG_FLUSH: Duration = Duration::from_millis(1500);
/// A request's `--max-time` when the lab says nothing.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// One manifest file of a lab.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// The file name, for messages.
    pub file: String,
    /// The YAML.
    pub yaml: String,
}

/// Something the environment could not do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EnvError(pub String);

/// What a lab needs from the mesh it runs on. The control plane implements it with
/// its store, its translation and Docker.
pub trait Environment: Sync {
    /// The state to come back to.
    type Checkpoint: Send;

    /// Applies manifests, all or nothing; kubectl's lines.
    fn apply(
        &self,
        files: &[ManifestFile],
    ) -> impl Future<Output = Result<Vec<String>, EnvError>> + Send;

    /// Deletes the objects of manifests that exist; kubectl's lines.
    fn delete(
        &self,
        files: &[ManifestFile],
    ) -> impl Future<Output = Result<Vec<String>, EnvError>> + Send;

    /// `meshlab mesh-config set KEY=VALUE`; the line it prints.
    fn set_mesh_config(
        &self,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<String, EnvError>> + Send;

    /// Waits until pods are ready and proxies have their configuration (bounded).
    fn settle(&self) -> impl Future<Output = Result<(), EnvError>> + Send;

    /// Sends a request set from `source`; for the ingress, `spec.url` is a path.
    /// `progress` gets the number of requests done.
    fn requests(
        &self,
        source: &Source,
        spec: &probe::Spec,
        progress: &(dyn Fn(u32) + Sync),
    ) -> impl Future<Output = Result<Vec<Outcome>, EnvError>> + Send;

    /// The workload's sidecar access log (the recent lines).
    fn access_log(
        &self,
        workload: &Workload,
    ) -> impl Future<Output = Result<Vec<String>, EnvError>> + Send;

    /// The workload's sidecar metrics, Prometheus' text format.
    fn metrics(&self, workload: &Workload)
    -> impl Future<Output = Result<String, EnvError>> + Send;

    /// The names of the clusters the workload's proxy is given.
    fn clusters(
        &self,
        workload: &Workload,
    ) -> impl Future<Output = Result<Vec<String>, EnvError>> + Send;

    /// Remembers the current objects and mesh settings.
    fn checkpoint(&self) -> impl Future<Output = Result<Self::Checkpoint, EnvError>> + Send;

    /// Comes back to a checkpoint; a line per change.
    fn restore(
        &self,
        checkpoint: Self::Checkpoint,
    ) -> impl Future<Output = Result<Vec<String>, EnvError>> + Send;
}

/// What the runner reports, in order; the API streams these as NDJSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The lab starts.
    Lab {
        /// Its name.
        name: String,
        /// Its title.
        title: String,
        /// How many steps it has.
        steps: usize,
    },
    /// A step starts (1-based index).
    Step {
        /// 1-based.
        index: usize,
        /// Its title.
        title: String,
        /// Its one-line summary.
        summary: String,
    },
    /// Something was applied, deleted or set (kubectl's line).
    Applied {
        /// The line.
        what: String,
    },
    /// Requests of a check are under way.
    Progress {
        /// The check's name.
        check: String,
        /// Requests done.
        done: u32,
        /// Requests in the set.
        total: u32,
    },
    /// A check's result.
    Check {
        /// The step's 1-based index.
        step: usize,
        /// The check's name.
        name: String,
        /// Whether it held.
        passed: bool,
        /// What was seen.
        observed: String,
        /// What was wanted.
        expected: String,
        /// What to look at.
        hint: String,
        /// How long the check took, in milliseconds.
        #[serde(default)]
        millis: u64,
    },
    /// The environment was put back as found (a line per change).
    Restored {
        /// The line.
        what: String,
    },
    /// The environment failed; the lab stops.
    Error {
        /// What failed.
        message: String,
    },
    /// The lab ended.
    Done {
        /// Whether every check held.
        passed: bool,
    },
}

/// How to run a lab.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// Only this step (1-based): the steps before it are applied without checks.
    pub step: Option<usize>,
    /// Keep what the lab applied instead of restoring the environment (the caller
    /// restores later, e.g. after an interactive run).
    #[serde(default)]
    pub keep: bool,
}

/// Runs `lab`, sending events to `events` (a closed receiver does not stop the run,
/// so the environment is always restored). Returns whether every check held.
pub async fn run<E: Environment>(
    env: &E,
    lab: &Lab,
    options: Options,
    events: &UnboundedSender<Event>,
) -> bool {
    let emit = |event: Event| {
        let _ = events.send(event);
    };
    emit(Event::Lab {
        name: lab.name.clone(),
        title: lab.title.clone(),
        steps: lab.steps.len(),
    });
    if let Some(step) = options.step
        && !(1..=lab.steps.len()).contains(&step)
    {
        emit(Event::Error {
            message: format!(
                "lab {} has steps 1 to {}, not {step}",
                lab.name,
                lab.steps.len()
            ),
        });
        emit(Event::Done { passed: false });
        return false;
    }
    let checkpoint = if options.keep {
        None
    } else {
        match env.checkpoint().await {
            Ok(checkpoint) => Some(checkpoint),
            Err(err) => {
                emit(Event::Error {
                    message: format!("cannot remember the environment: {err}"),
                });
                emit(Event::Done { passed: false });
                return false;
            }
        }
    };
    let mut passed = match steps(env, lab, options, &emit).await {
        Ok(passed) => passed,
        Err(err) => {
            emit(Event::Error {
                message: err.to_string(),
            });
            false
        }
    };
    if let Some(checkpoint) = checkpoint {
        match env.restore(checkpoint).await {
            Ok(lines) => lines
                .into_iter()
                .for_each(|what| emit(Event::Restored { what })),
            Err(err) => {
                passed = false;
                emit(Event::Error {
                    message: format!("cannot restore the environment: {err}"),
                });
            }
        }
    }
    emit(Event::Done { passed });
    passed
}

async fn steps<E: Environment>(
    env: &E,
    lab: &Lab,
    options: Options,
    emit: &(dyn Fn(Event) + Sync),
) -> Result<bool, EnvError> {
    let mut passed = true;
    for (index, step) in lab.steps.iter().enumerate() {
        let number = index + 1;
        let checked = options.step.is_none_or(|only| only == number);
        if options.step.is_some_and(|only| number > only) {
            break;
        }
        if checked {
            emit(Event::Step {
                index: number,
                title: step.title.clone(),
                summary: step.summary.clone(),
            });
        }
        // "Fewer clusters" compares with what the proxy knew before this step.
        let mut baselines = BTreeMap::new();
        for check in step.checks.iter().filter(|_| checked) {
            for fact in check.expect.iter().filter_map(|e| e.clusters.as_ref()) {
                let workload = Workload::parse(&fact.workload);
                if fact.shrunk && !baselines.contains_key(&workload) {
                    let known = env.clusters(&workload).await?.len() as u64;
                    baselines.insert(workload, known);
                }
            }
        }
        let files = |names: &[String]| -> Vec<ManifestFile> {
            names
                .iter()
                .map(|file| ManifestFile {
                    file: file.clone(),
                    yaml: lab.manifests.get(file).cloned().unwrap_or_default(),
                })
                .collect()
        };
        if !step.delete.is_empty() {
            for what in env.delete(&files(&step.delete)).await? {
                emit(Event::Applied { what });
            }
        }
        if !step.apply.is_empty() {
            for what in env.apply(&files(&step.apply)).await? {
                emit(Event::Applied { what });
            }
        }
        for (key, value) in &step.mesh_config {
            let what = env.set_mesh_config(key, value).await?;
            emit(Event::Applied { what });
        }
        env.settle().await?;
        if !checked {
            continue;
        }
        for check in &step.checks {
            let started = std::time::Instant::now();
            let verdict = eventually(env, check, &baselines, emit).await?;
            passed &= verdict.passed;
            emit(Event::Check {
                step: number,
                name: check.name.clone(),
                passed: verdict.passed,
                observed: verdict.observed,
                expected: verdict.expected,
                hint: check.hint.clone(),
                millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            });
        }
    }
    Ok(passed)
}

/// Repeats a check until it holds or its window passes; the last attempt's verdict.
async fn eventually<E: Environment>(
    env: &E,
    check: &Check,
    baselines: &BTreeMap<Workload, u64>,
    emit: &(dyn Fn(Event) + Sync),
) -> Result<Verdict, EnvError> {
    let within = check
        .within
        .as_deref()
        .and_then(|w| parse_duration(w).ok())
        .unwrap_or(DEFAULT_WITHIN);
    let deadline = tokio::time::Instant::now() + within;
    loop {
        // A pod that is not there yet is as eventual as configuration.
        let verdict = match attempt(env, check, baselines, emit).await {
            Ok(verdict) if verdict.passed => return Ok(verdict),
            Err(err) if tokio::time::Instant::now() >= deadline => return Err(err),
            Ok(verdict) if tokio::time::Instant::now() >= deadline => return Ok(verdict),
            Ok(verdict) => verdict.observed,
            Err(err) => err.to_string(),
        };
        tracing::debug!(check = %check.name, observed = %verdict, "not yet; again");
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// One attempt: metrics before, requests, then every expectation.
async fn attempt<E: Environment>(
    env: &E,
    check: &Check,
    baselines: &BTreeMap<Workload, u64>,
    emit: &(dyn Fn(Event) + Sync),
) -> Result<Verdict, EnvError> {
    let mut before = Vec::new();
    for fact in check.expect.iter().filter_map(|e| e.metric.as_ref()) {
        let text = env.metrics(&Workload::parse(&fact.workload)).await?;
        before.push(check::metric_sum(&text, &fact.name, &fact.labels));
    }
    let since = SystemTime::now();
    let outcomes = match &check.requests {
        Some(requests) => {
            let spec = probe::Spec {
                url: requests.url.clone(),
                count: requests.count,
                concurrency: requests.concurrency,
                login: requests.login.clone(),
                headers: requests
                    .headers
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect(),
                method: requests.method.clone(),
                timeout_ms: requests
                    .timeout
                    .as_deref()
                    .and_then(|t| parse_duration(t).ok())
                    .unwrap_or(DEFAULT_TIMEOUT)
                    .as_millis()
                    .try_into()
                    .unwrap_or(u64::MAX),
                markers: check::markers(&check.expect),
            };
            let total = requests.count;
            let progress = |done: u32| {
                emit(Event::Progress {
                    check: check.name.clone(),
                    done,
                    total,
                });
            };
            env.requests(&Source::parse(&requests.from), &spec, &progress)
                .await?
        }
        None => Vec::new(),
    };
    if check.expect.iter().any(|e| e.log.is_some()) {
        tokio::time::sleep(LOG_FLUSH).await;
    }
    let mut verdicts = Vec::new();
    let mut metrics_before = before.into_iter();
    for expect in &check.expect {
        if let Some(verdict) = check::responses(expect, &outcomes) {
            verdicts.push(verdict);
        } else if let Some(fact) = &expect.log {
            let workload = Workload::parse(&fact.workload);
            let lines = env.access_log(&workload).await?;
            let n = check::log_lines(
                &lines,
                since,
                fact.contains.as_deref(),
                fact.flags.as_deref(),
            );
            let bounds = fact.count.unwrap_or(Bounds::SOME);
            let mut what = format!("{workload} access log lines");
            if let Some(contains) = &fact.contains {
                what.push_str(&format!(" with {contains:?}"));
            }
            if let Some(flags) = &fact.flags {
                what.push_str(&format!(" with response flags {flags}"));
            }
            verdicts.push(Verdict {
                passed: bounds.contains(n, u64::MAX),
                observed: format!("{n} {what}"),
                expected: format!("{} {what}", bounds.describe(None)),
            });
        } else if let Some(fact) = &expect.metric {
            let text = env.metrics(&Workload::parse(&fact.workload)).await?;
            let after = check::metric_sum(&text, &fact.name, &fact.labels);
            let delta = (after - metrics_before.next().unwrap_or(0.0))
                .max(0.0)
                .round() as u64;
            let mut what = fact.name.clone();
            if !fact.labels.is_empty() {
                let labels: Vec<String> = fact
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v:?}"))
                    .collect();
                what.push_str(&format!("{{{}}}", labels.join(",")));
            }
            verdicts.push(Verdict {
                passed: fact.delta.contains(delta, u64::MAX),
                observed: format!("{what} grew by {delta}"),
                expected: format!("{what} grows by {}", fact.delta.describe(None)),
            });
        } else if let Some(fact) = &expect.clusters {
            let workload = Workload::parse(&fact.workload);
            let clusters = env.clusters(&workload).await?;
            let n = clusters
                .iter()
                .filter(|c| fact.matching.as_deref().is_none_or(|m| c.contains(m)))
                .count() as u64;
            let what = match &fact.matching {
                Some(m) => format!("clusters of {workload}'s proxy matching {m:?}"),
                None => format!("clusters of {workload}'s proxy"),
            };
            let mut passed = fact.count.is_none_or(|b| b.contains(n, u64::MAX));
            let mut observed = format!("{n} {what}");
            let mut expected = match fact.count {
                Some(bounds) => format!("{} {what}", bounds.describe(None)),
                None => what.clone(),
            };
            if fact.shrunk {
                let start = baselines.get(&workload).copied().unwrap_or(0);
                passed &= n < start;
                observed.push_str(&format!(" ({start} before the step)"));
                expected.push_str(&format!(", fewer than the {start} before the step"));
            }
            verdicts.push(Verdict {
                passed,
                observed,
                expected,
            });
        }
    }
    Ok(Verdict {
        passed: verdicts.iter().all(|v| v.passed),
        observed: verdicts
            .iter()
            .map(|v| v.observed.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        expected: verdicts
            .iter()
            .map(|v| v.expected.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    })
}

#[cfg(test)]
mod tests;
