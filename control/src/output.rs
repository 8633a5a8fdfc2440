//! What `meshlab get` prints: kubectl's tables (the columns of `kubectl get` for core
//! kinds and of Istio's CRD `additionalPrinterColumns`), kubectl's ages and
//! `-o yaml|json`. Apply and delete lines are the `Display` of
//! [`ApplyOutcome`](crate::store::ApplyOutcome) and [`Deleted`](crate::store::Deleted).
//!
//! Live numbers the store does not know (ready pods, assigned cluster IPs) come from a
//! [`LiveStatus`] the caller supplies, so this stays a pure function of its inputs.

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::resource::{Kind, Resource};
use crate::yaml;

/// Live state from the reconciler and registry, for the columns that need it.
pub trait LiveStatus {
    /// Pod counts of a Deployment.
    fn deployment(&self, _namespace: &str, _name: &str) -> Option<DeploymentStatus> {
        None
    }

    /// The virtual IP assigned to a Service.
    fn cluster_ip(&self, _namespace: &str, _name: &str) -> Option<String> {
        None
    }
}

/// No live information: deployments show 0 ready, services their `spec.clusterIP`.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLiveStatus;

impl LiveStatus for NoLiveStatus {}

/// Pod counts of a Deployment (`kubectl get deploy` READY, UP-TO-DATE, AVAILABLE).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeploymentStatus {
    /// Pods ready.
    pub ready: u32,
    /// Pods running the current template.
    pub up_to_date: u32,
    /// Pods available.
    pub available: u32,
}

/// A table laid out as kubectl does: upper-case headers, left-aligned columns three
/// spaces apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows, one cell per header.
    pub rows: Vec<Vec<String>>,
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 < row.len() {
                    let pad = widths[i] + 3 - cell.chars().count();
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                } else {
                    line.push_str(cell);
                }
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// Builds the `get` table for objects of one kind. `all_namespaces` adds kubectl's
/// NAMESPACE column (for namespaced kinds); `now` dates the AGE column.
#[must_use]
pub fn table(
    kind: Kind,
    objects: &[&Resource],
    now: SystemTime,
    all_namespaces: bool,
    live: &dyn LiveStatus,
) -> Table {
    let columns: &[&str] = match kind {
        Kind::Namespace => &["NAME", "STATUS", "AGE"],
        Kind::ServiceAccount => &["NAME", "SECRETS", "AGE"],
        Kind::Service => &[
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
        ],
        Kind::Secret => &["NAME", "TYPE", "DATA", "AGE"],
        Kind::Deployment => &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        Kind::VirtualService => &["NAME", "GATEWAYS", "HOSTS", "AGE"],
        Kind::DestinationRule => &["NAME", "HOST", "AGE"],
        Kind::ServiceEntry => &["NAME", "HOSTS", "LOCATION", "RESOLUTION", "AGE"],
        Kind::WorkloadEntry => &["NAME", "AGE", "ADDRESS"],
        Kind::PeerAuthentication => &["NAME", "MODE", "AGE"],
        Kind::AuthorizationPolicy => &["NAME", "ACTION", "AGE"],
        Kind::Gateway | Kind::Sidecar | Kind::RequestAuthentication => &["NAME", "AGE"],
    };
    let with_namespace = all_namespaces && kind.is_namespaced();
    let mut headers: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
    if with_namespace {
        headers.insert(0, "NAMESPACE".to_owned());
    }
    let rows = objects
        .iter()
        .map(|object| {
            let age = object
                .metadata()
                .creation_timestamp
                .map_or_else(|| "<unknown>".to_owned(), |t| age(t.age(now)));
            let mut row = vec![object.name().to_owned()];
            row.extend(columns_of(object, live));
            if columns.last() == Some(&"AGE") {
                row.push(age);
            } else {
                // WorkloadEntry's CRD puts AGE before ADDRESS.
                row.insert(1, age);
            }
            if with_namespace {
                row.insert(0, object.namespace().unwrap_or_default().to_owned());
            }
            row
        })
        .collect();
    Table { headers, rows }
}

/// The cells between NAME and AGE (or after AGE for WorkloadEntry).
fn columns_of(object: &Resource, live: &dyn LiveStatus) -> Vec<String> {
    let ns = object.namespace().unwrap_or_default();
    match object {
        Resource::Namespace(_) => vec!["Active".into()],
        Resource::ServiceAccount(_) => vec!["0".into()],
        Resource::Secret(secret) => vec![
            secret.type_name().to_owned(),
            secret.key_count().to_string(),
        ],
        Resource::Service(service) => {
            let spec = &service.spec;
            let service_type = spec
                .service_type
                .clone()
                .unwrap_or_else(|| "ClusterIP".into());
            let cluster_ip = live
                .cluster_ip(ns, object.name())
                .or_else(|| spec.cluster_ip.clone())
                .unwrap_or_else(|| "<none>".into());
            let external = if service_type == "LoadBalancer" {
                "<pending>"
            } else {
                "<none>"
            };
            let ports: Vec<String> = spec
                .ports
                .iter()
                .map(|p| {
                    let protocol = p.protocol.as_deref().unwrap_or("TCP");
                    match p.node_port {
                        Some(node) => format!("{}:{node}/{protocol}", p.port),
                        None => format!("{}/{protocol}", p.port),
                    }
                })
                .collect();
            let ports = if ports.is_empty() {
                "<none>".to_owned()
            } else {
                ports.join(",")
            };
            vec![service_type, cluster_ip, external.into(), ports]
        }
        Resource::Deployment(deployment) => {
            let replicas = deployment.spec.replicas.unwrap_or(1);
            let status = live.deployment(ns, object.name()).unwrap_or_default();
            vec![
                format!("{}/{replicas}", status.ready),
                status.up_to_date.to_string(),
                status.available.to_string(),
            ]
        }
        Resource::VirtualService(vs) => {
            vec![json_list(&vs.spec.gateways), json_list(&vs.spec.hosts)]
        }
        Resource::DestinationRule(dr) => vec![dr.spec.host.clone()],
        Resource::ServiceEntry(se) => vec![
            json_list(&se.spec.hosts),
            enum_text(&se.spec.location),
            enum_text(&se.spec.resolution),
        ],
        Resource::WorkloadEntry(we) => vec![we.spec.address.clone()],
        Resource::PeerAuthentication(pa) => {
            vec![
                pa.spec
                    .mtls
                    .as_ref()
                    .map_or_else(String::new, |m| enum_text(&m.mode)),
            ]
        }
        Resource::AuthorizationPolicy(ap) => vec![enum_text(&ap.spec.action)],
        Resource::Gateway(_) | Resource::Sidecar(_) | Resource::RequestAuthentication(_) => {
            Vec::new()
        }
    }
}

/// A list cell as kubectl prints a CRD array column: `["bookinfo-gateway"]`, or
/// nothing when empty.
fn json_list(items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        serde_json::to_string(items).unwrap_or_default()
    }
}

/// An enum cell (`STRICT`, `MESH_EXTERNAL`), empty when unset.
fn enum_text<T: serde::Serialize>(value: &Option<T>) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(text)) => text,
        _ => String::new(),
    }
}

/// An age as kubectl prints it: `45s`, `2m30s`, `15m`, `5h20m`, `3d4h`, `30d`, `2y`.
#[must_use]
pub fn age(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs();
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 3 * 60 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let years = hours / 24 / 365;
        return match (hours / 24) % 365 {
            0 => format!("{years}y"),
            d => format!("{years}y{d}d"),
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// kubectl's message for an empty listing: `No resources found in default namespace.`
/// (or `No resources found` with `-A` and for cluster-scoped kinds).
#[must_use]
pub fn no_resources_found(kind: Kind, namespace: Option<&str>) -> String {
    match namespace.filter(|_| kind.is_namespaced()) {
        Some(ns) => format!("No resources found in {ns} namespace."),
        None => "No resources found".to_owned(),
    }
}

/// `-o yaml` / `-o json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// YAML documents.
    Yaml,
    /// Pretty-printed JSON.
    Json,
}

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The YAML serializer refused the value.
    #[error("cannot render YAML")]
    Yaml(#[from] serde_saphyr::SerializeError),
    /// The JSON serializer refused the value.
    #[error("cannot render JSON")]
    Json(#[from] serde_json::Error),
}

/// Renders objects as kubectl does: a single object as itself (`get KIND NAME`), several
/// as a `v1` `List` (`get KIND`).
///
/// # Errors
///
/// [`RenderError`] if a serializer fails.
pub fn render(objects: &[&Resource], single: bool, format: Format) -> Result<String, RenderError> {
    let value = match objects {
        [one] if single => one.to_value(),
        _ => json!({
            "apiVersion": "v1",
            "items": objects.iter().map(|o| o.to_value()).collect::<Vec<_>>(),
            "kind": "List",
            "metadata": {"resourceVersion": ""},
        }),
    };
    Ok(match format {
        Format::Yaml => yaml::to_yaml(&value)?,
        Format::Json => serde_json::to_string_pretty(&value)? + "\n",
    })
}
