//! The labs meshlab ships, embedded in the binary from their folders, and what the
//! API says about them (`GET /api/v1/labs`, `GET /api/v1/labs/{name}`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::format::{self, Check, Expect, FormatError, Lab, Source, Workload};

/// A lab's folder as compiled in.
struct Embedded {
    name: &'static str,
    yaml: &'static str,
    files: &'static [(&'static str, &'static str)],
}

/// Embeds `labs/<name>/lab.yaml` and the listed manifests of that folder.
macro_rules! lab {
    ($name:literal, [$($file:literal),* $(,)?]) => {
        Embedded {
            name: $name,
            yaml: include_str!(concat!("../", $name, "/lab.yaml")),
            files: &[$(($file, include_str!(concat!("../", $name, "/", $file)))),*],
        }
    };
}

/// Every lab, in the order a learner meets them.
const LABS: &[Embedded] = &[
    lab!(
        "request-routing",
        [
            "bookinfo-gateway.yaml",
            "destination-rule-all.yaml",
            "virtual-service-all-v1.yaml",
            "virtual-service-reviews-test-v2.yaml",
        ]
    ),
    lab!(
        "fault-injection",
        [
            "bookinfo-gateway.yaml",
            "destination-rule-all.yaml",
            "virtual-service-all-v1.yaml",
            "virtual-service-reviews-test-v2.yaml",
            "virtual-service-ratings-test-delay.yaml",
            "virtual-service-reviews-test-v3.yaml",
            "virtual-service-ratings-test-delay-2s.yaml",
            "virtual-service-ratings-test-abort.yaml",
        ]
    ),
    lab!(
        "traffic-shifting",
        [
            "bookinfo-gateway.yaml",
            "destination-rule-all.yaml",
            "virtual-service-all-v1.yaml",
            "virtual-service-reviews-50-v3.yaml",
            "virtual-service-reviews-v3.yaml",
        ]
    ),
    lab!(
        "egress",
        [
            "service-entry-httpbin.yaml",
            "service-entry-google.yaml",
            "virtual-service-httpbin-timeout.yaml",
        ]
    ),
    lab!(
        "mtls",
        [
            "namespaces.yaml",
            "peer-authentication-foo-strict.yaml",
            "peer-authentication-mesh-strict.yaml",
            "authorization-allow-nothing.yaml",
            "authorization-allow-sleep.yaml",
        ]
    ),
    lab!(
        "sidecar-scoping",
        [
            "httpbin-two-namespaces.yaml",
            "sidecar-root-registry-only.yaml",
            "sidecar-namespace-allow-any.yaml",
            "sidecar-workload-registry-only.yaml",
            "sidecar-workload-scoped.yaml",
        ]
    ),
];

/// The names of every lab, in order.
pub fn names() -> impl Iterator<Item = &'static str> {
    LABS.iter().map(|l| l.name)
}

/// Every lab, parsed.
///
/// # Errors
///
/// The first lab whose files are not valid (a unit test keeps them valid).
pub fn all() -> Result<Vec<Lab>, FormatError> {
    LABS.iter().map(parse).collect()
}

/// One lab by name; `None` when there is no such lab.
pub fn find(name: &str) -> Option<Result<Lab, FormatError>> {
    LABS.iter().find(|l| l.name == name).map(parse)
}

fn parse(embedded: &Embedded) -> Result<Lab, FormatError> {
    let manifests = embedded
        .files
        .iter()
        .map(|(file, yaml)| ((*file).to_owned(), (*yaml).to_owned()))
        .collect();
    format::parse(embedded.name, embedded.yaml, manifests)
}

/// `GET /api/v1/labs`: one line per lab.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The name to run it by.
    pub name: String,
    /// Its title.
    pub title: String,
    /// What it shows.
    pub summary: String,
    /// How many steps.
    pub steps: usize,
}

impl From<&Lab> for Summary {
    fn from(lab: &Lab) -> Self {
        Summary {
            name: lab.name.clone(),
            title: lab.title.clone(),
            summary: lab.summary.clone(),
            steps: lab.steps.len(),
        }
    }
}

/// `GET /api/v1/labs/{name}`: everything a learner reads before running it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Description {
    /// The name to run it by.
    pub name: String,
    /// Its title.
    pub title: String,
    /// What it shows.
    pub summary: String,
    /// What you will learn.
    pub learn: Vec<String>,
    /// The steps.
    pub steps: Vec<StepDescription>,
}

/// One step, described.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepDescription {
    /// 1-based.
    pub index: usize,
    /// Its title.
    pub title: String,
    /// Its one-line summary.
    pub summary: String,
    /// Markdown.
    pub prose: String,
    /// The manifests applied, with their text.
    pub apply: Vec<crate::runner::ManifestFile>,
    /// The manifests whose objects are deleted.
    pub delete: Vec<String>,
    /// Mesh settings changed.
    pub mesh_config: BTreeMap<String, String>,
    /// Commands to try.
    pub commands: Vec<String>,
    /// The checks, in words.
    pub checks: Vec<CheckDescription>,
}

/// One check, described.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckDescription {
    /// Its name.
    pub name: String,
    /// What is sent and what must come back.
    pub description: String,
    /// The hint shown when it fails.
    pub hint: String,
}

impl From<&Lab> for Description {
    fn from(lab: &Lab) -> Self {
        Description {
            name: lab.name.clone(),
            title: lab.title.clone(),
            summary: lab.summary.clone(),
            learn: lab.learn.clone(),
            steps: lab
                .steps
                .iter()
                .enumerate()
                .map(|(i, step)| StepDescription {
                    index: i + 1,
                    title: step.title.clone(),
                    summary: step.summary.clone(),
                    prose: step.prose.clone(),
                    apply: step
                        .apply
                        .iter()
                        .map(|file| crate::runner::ManifestFile {
                            file: file.clone(),
                            yaml: lab.manifests.get(file).cloned().unwrap_or_default(),
                        })
                        .collect(),
                    delete: step.delete.clone(),
                    mesh_config: step.mesh_config.clone(),
                    commands: step.commands.clone(),
                    checks: step
                        .checks
                        .iter()
                        .map(|check| CheckDescription {
                            name: check.name.clone(),
                            description: describe(check),
                            hint: check.hint.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// A check in words: `30 requests from the ingress to /productpage (as jason):
/// all with status 200; none with stars`.
pub fn describe(check: &Check) -> String {
    let mut text = String::new();
    if let Some(requests) = &check.requests {
        let from = match Source::parse(&requests.from) {
            Source::Ingress => "the ingress".to_owned(),
            Source::Workload(workload) => workload.to_string(),
        };
        let plural = if requests.count == 1 { "" } else { "s" };
        text.push_str(&format!(
            "{} request{plural} from {from} to {}",
            requests.count, requests.url
        ));
        if let Some(user) = &requests.login {
            text.push_str(&format!(" as {user}"));
        }
        if requests.concurrency > 1 {
            text.push_str(&format!(", {} at a time", requests.concurrency));
        }
        text.push_str(": ");
    }
    let parts: Vec<String> = check.expect.iter().map(expectation).collect();
    text.push_str(&parts.join("; "));
    text
}

fn expectation(expect: &Expect) -> String {
    let count = expect
        .count
        .map_or_else(|| "all".to_owned(), |c| c.describe(None));
    if let Some(status) = expect.status {
        format!("{count} with status {status}")
    } else if let Some(exit) = expect.exit {
        format!("{count} with curl exit code {exit}")
    } else if let Some(body) = &expect.body {
        format!("{count} with {body:?} in the body")
    } else if let Some(stars) = expect.stars {
        format!("{count} with {stars:?} stars").to_lowercase()
    } else if let Some(window) = &expect.latency {
        format!("{count} answered within {window}")
    } else if let Some(log) = &expect.log {
        let mut text = format!(
            "{} access log lines of {}",
            log.count
                .map_or_else(|| ">= 1".to_owned(), |c| c.describe(None)),
            Workload::parse(&log.workload)
        );
        if let Some(contains) = &log.contains {
            text.push_str(&format!(" with {contains:?}"));
        }
        if let Some(flags) = &log.flags {
            text.push_str(&format!(" with flags {flags}"));
        }
        text
    } else if let Some(metric) = &expect.metric {
        format!(
            "{} of {} grows by {}",
            metric.name,
            Workload::parse(&metric.workload),
            metric.delta.describe(None)
        )
    } else if let Some(clusters) = &expect.clusters {
        let mut text = format!("clusters of {}", Workload::parse(&clusters.workload));
        if let Some(m) = &clusters.matching {
            text.push_str(&format!(" matching {m:?}"));
        }
        if let Some(count) = clusters.count {
            text.push_str(&format!(": {}", count.describe(None)));
        }
        if clusters.shrunk {
            text.push_str(", fewer than before the step");
        }
        text
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests;
