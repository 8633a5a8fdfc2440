//! `meshlab analyze`: the cross-resource problems Istio accepts at apply time but
//! `istioctl analyze` flags, reported with Istio's message codes.
//!
//! [`validate`](crate::validate) looks at one resource; this module looks at how
//! resources refer to each other: a VirtualService routing to a host or subset nobody
//! defines, binding to a Gateway that does not exist, two VirtualServices claiming the
//! same host for the mesh, two namespace-wide Sidecars. It is a pure function of a
//! store [`Snapshot`]; the store keeps no file lines, so a finding names the resource
//! and the field.
//!
//! Codes and meanings follow Istio's message catalogue
//! (`pkg/config/analysis/msg/messages.yaml`):
//! - IST0101 ReferencedResourceNotFound (Error), also for a Gateway's
//!   `credentialName` with no Secret beside the gateway workload;
//! - IST0109 ConflictingMeshGatewayVirtualServiceHosts (Error);
//! - IST0111 MultipleSidecarsWithoutWorkloadSelectors (Error).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::diagnostic::FieldPath;
use crate::resource::Resource;
use crate::resource::networking::{Destination, DestinationRule, VirtualService};
use crate::store::Snapshot;
use crate::translate::mesh::fqdn;
use crate::yaml::Document;

/// A referenced resource does not exist.
pub const REFERENCED_RESOURCE_NOT_FOUND: &str = "IST0101";
/// Two VirtualServices bound to the mesh define the same host.
pub const CONFLICTING_MESH_GATEWAY_VIRTUAL_SERVICE_HOSTS: &str = "IST0109";
/// More than one Sidecar in a namespace has no workload selector.
pub const MULTIPLE_SIDECARS_WITHOUT_WORKLOAD_SELECTORS: &str = "IST0111";

/// The reserved gateway name for the sidecars of the mesh.
const MESH_GATEWAY: &str = "mesh";

/// How bad a [`Finding`] is, as istioctl grades its messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Level {
    /// Traffic will not flow as written.
    Error,
    /// Probably not what was meant.
    Warning,
    /// Worth knowing.
    Info,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "Error",
            Level::Warning => "Warning",
            Level::Info => "Info",
        })
    }
}

/// One problem found across resources.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How bad it is.
    pub level: Level,
    /// Istio's message code, e.g. `IST0101`.
    pub code: &'static str,
    /// The resource at fault, e.g. `VirtualService default/reviews`.
    pub resource: String,
    /// The offending field, e.g. `spec.http[0].route[0].destination.subset`.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// `file:line` of the offending field, when the resource came from a file
    /// being analysed (istioctl prints it in place of the field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// istioctl's line, with the field where istioctl prints the file and line:
/// `Error [IST0101] (VirtualService default/reviews spec.http[0]…) Referenced …`.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}] ({}", self.level, self.code, self.resource)?;
        if let Some(origin) = &self.origin {
            write!(f, " {origin}")?;
        } else if !self.field.is_empty() {
            write!(f, " {}", self.field)?;
        }
        write!(f, ") {}", self.message)
    }
}

/// Every finding for the resources of `namespace` (all namespaces with `None`),
/// errors first. References are resolved against the whole snapshot, as Istio does.
#[must_use]
pub fn analyze(snapshot: &Snapshot, namespace: Option<&str>) -> Vec<Finding> {
    let index = Index::build(snapshot);
    let in_scope = |ns: &str| namespace.is_none_or(|n| n == ns);
    let mut findings = Vec::new();
    for vs in &index.virtual_services {
        if in_scope(namespace_of(vs.metadata.namespace.as_deref())) {
            virtual_service(&index, vs, &mut findings);
        }
    }
    for dr in &index.destination_rules {
        let ns = namespace_of(dr.metadata.namespace.as_deref());
        if in_scope(ns) {
            destination_rule_host(&index, dr, ns, &mut findings);
        }
    }
    conflicting_mesh_hosts(&index, &in_scope, &mut findings);
    namespace_wide_sidecars(snapshot, &in_scope, &mut findings);
    gateway_credentials(snapshot, &in_scope, &mut findings);
    findings.sort_by(|a, b| {
        (a.level, &a.resource, a.code, &a.field).cmp(&(b.level, &b.resource, b.code, &b.field))
    });
    findings
}

/// `istioctl analyze FILE…`: `documents` written over `snapshot` (nothing is
/// applied), analysed in `scope`; findings about a document say its `file:line`.
#[must_use]
pub fn analyze_files(
    snapshot: &Snapshot,
    documents: &[Document],
    default_namespace: &str,
    scope: Option<&str>,
) -> Vec<Finding> {
    let resources = documents.iter().map(|d| d.resource.clone()).collect();
    let overlaid = snapshot.overlay(resources, default_namespace);
    let mut findings = analyze(&overlaid, scope);
    for finding in &mut findings {
        let from_file = documents.iter().find(|d| {
            let resource = &d.resource;
            let ns = resource
                .metadata()
                .namespace
                .as_deref()
                .unwrap_or(default_namespace);
            let kind = resource.kind().info().kind;
            finding.resource == format!("{kind} {ns}/{}", resource.name())
        });
        if let Some(document) = from_file {
            let at = document.source.locate(&FieldPath::parse(&finding.field));
            finding.origin = Some(format!("{}:{}", document.source.file(), at.line));
        }
    }
    findings
}

/// What `meshlab analyze` prints: one line per finding, or istioctl's all-clear.
#[must_use]
pub fn render(findings: &[Finding], namespace: Option<&str>) -> String {
    if findings.is_empty() {
        return match namespace {
            Some(ns) => format!("✔ No validation issues found when analyzing namespace: {ns}."),
            None => "✔ No validation issues found when analyzing all namespaces.".to_owned(),
        };
    }
    findings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether any finding is an [`Level::Error`] (istioctl then exits non-zero).
#[must_use]
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.level == Level::Error)
}

// === impl Index ===

/// The snapshot's names, looked up by the checks.
struct Index<'a> {
    /// Host names of Services (`reviews.default.svc.cluster.local`) and
    /// ServiceEntries (as written, wildcards included).
    hosts: BTreeSet<String>,
    /// Gateways as `namespace/name`.
    gateways: BTreeSet<String>,
    virtual_services: Vec<&'a VirtualService>,
    destination_rules: Vec<&'a DestinationRule>,
}

impl<'a> Index<'a> {
    fn build(snapshot: &'a Snapshot) -> Self {
        let mut index = Index {
            hosts: BTreeSet::new(),
            gateways: BTreeSet::new(),
            virtual_services: Vec::new(),
            destination_rules: Vec::new(),
        };
        for (_, resource) in snapshot.iter() {
            match resource.as_ref() {
                Resource::Service(svc) => {
                    let ns = namespace_of(svc.metadata.namespace.as_deref());
                    index.hosts.insert(fqdn(&svc.metadata.name, ns));
                }
                Resource::ServiceEntry(se) => {
                    let ns = namespace_of(se.metadata.namespace.as_deref());
                    index
                        .hosts
                        .extend(se.spec.hosts.iter().map(|h| fqdn(h, ns)));
                }
                Resource::Gateway(gw) => {
                    let ns = namespace_of(gw.metadata.namespace.as_deref());
                    index.gateways.insert(format!("{ns}/{}", gw.metadata.name));
                }
                Resource::VirtualService(vs) => index.virtual_services.push(vs),
                Resource::DestinationRule(dr) => index.destination_rules.push(dr),
                _ => {}
            }
        }
        index
    }

    /// Whether a fully qualified host names a service, directly or through a
    /// ServiceEntry's wildcard (`*.wikipedia.org`).
    fn host_exists(&self, host: &str) -> bool {
        self.hosts.contains(host)
            || self.hosts.iter().any(|known| {
                known
                    .strip_prefix('*')
                    .is_some_and(|suffix| host.ends_with(suffix) && host.len() > suffix.len())
            })
    }

    /// Whether a DestinationRule for `host` (fully qualified) defines `subset`.
    fn subset_exists(&self, host: &str, subset: &str) -> bool {
        self.destination_rules.iter().any(|dr| {
            fqdn(
                &dr.spec.host,
                namespace_of(dr.metadata.namespace.as_deref()),
            ) == host
                && dr.spec.subsets.iter().any(|s| s.name == subset)
        })
    }

    /// Whether a VirtualService gateway reference (`name`, `ns/name`) names a
    /// Gateway; `mesh` always exists.
    fn gateway_exists(&self, reference: &str, namespace: &str) -> bool {
        if reference == MESH_GATEWAY {
            return true;
        }
        let key = if reference.contains('/') {
            reference.to_owned()
        } else {
            format!("{namespace}/{reference}")
        };
        self.gateways.contains(&key)
    }
}

// === VirtualService references (IST0101) ===

fn virtual_service(index: &Index<'_>, vs: &VirtualService, findings: &mut Vec<Finding>) {
    let ns = namespace_of(vs.metadata.namespace.as_deref());
    let resource = format!("VirtualService {ns}/{}", vs.metadata.name);
    let spec_path = FieldPath::root().field("spec");
    let mut not_found = |path: &FieldPath, reftype: &str, refval: &str| {
        findings.push(Finding {
            origin: None,
            level: Level::Error,
            code: REFERENCED_RESOURCE_NOT_FOUND,
            resource: resource.clone(),
            field: path.to_string(),
            message: format!("Referenced {reftype} not found: {refval:?}"),
        });
    };

    // Gateways, at the top and in HTTP matches.
    let mut gateway_refs = Vec::new();
    for (i, gw) in vs.spec.gateways.iter().enumerate() {
        gateway_refs.push((spec_path.field("gateways").index(i), gw));
    }
    for (i, route) in vs.spec.http.iter().enumerate() {
        for (j, m) in route.matches.iter().enumerate() {
            for (k, gw) in m.gateways.iter().enumerate() {
                let path = spec_path.field("http").index(i).field("match").index(j);
                gateway_refs.push((path.field("gateways").index(k), gw));
            }
        }
    }
    for (path, gw) in gateway_refs {
        if !index.gateway_exists(gw, ns) {
            not_found(&path, "gateway", gw);
        }
    }

    // Destinations of HTTP, TLS and TCP routes and HTTP mirrors.
    let mut destinations: Vec<(FieldPath, &Destination)> = Vec::new();
    for (i, route) in vs.spec.http.iter().enumerate() {
        let path = spec_path.field("http").index(i);
        for (j, d) in route.route.iter().enumerate() {
            let at = path.field("route").index(j).field("destination");
            destinations.push((at, &d.destination));
        }
        if let Some(mirror) = &route.mirror {
            destinations.push((path.field("mirror"), mirror));
        }
        for (j, m) in route.mirrors.iter().enumerate() {
            let at = path.field("mirrors").index(j).field("destination");
            destinations.push((at, &m.destination));
        }
    }
    for (i, route) in vs.spec.tls.iter().enumerate() {
        for (j, d) in route.route.iter().enumerate() {
            let at = spec_path.field("tls").index(i).field("route").index(j);
            destinations.push((at.field("destination"), &d.destination));
        }
    }
    for (i, route) in vs.spec.tcp.iter().enumerate() {
        for (j, d) in route.route.iter().enumerate() {
            let at = spec_path.field("tcp").index(i).field("route").index(j);
            destinations.push((at.field("destination"), &d.destination));
        }
    }
    for (path, destination) in destinations {
        let host = fqdn(&destination.host, ns);
        if !host.starts_with('*') && !index.host_exists(&host) {
            not_found(&path.field("host"), "host", &destination.host);
        }
        if !destination.subset.is_empty() && !index.subset_exists(&host, &destination.subset) {
            let refval = format!("{}+{}", destination.host, destination.subset);
            not_found(
                &path.field("subset"),
                "host+subset in destinationrule",
                &refval,
            );
        }
    }
}

// === DestinationRule host (IST0101) ===

fn destination_rule_host(
    index: &Index<'_>,
    dr: &DestinationRule,
    ns: &str,
    findings: &mut Vec<Finding>,
) {
    let host = fqdn(&dr.spec.host, ns);
    if host.starts_with('*') || index.host_exists(&host) {
        return;
    }
    findings.push(Finding {
        origin: None,
        level: Level::Error,
        code: REFERENCED_RESOURCE_NOT_FOUND,
        resource: format!("DestinationRule {ns}/{}", dr.metadata.name),
        field: "spec.host".to_owned(),
        message: format!("Referenced host not found: {:?}", dr.spec.host),
    });
}

// === Gateway credentials (IST0101) ===

/// A Gateway server's `credentialName` must name a Secret in the namespace of
/// every gateway workload it selects (Istio's gateway secret analyzer).
fn gateway_credentials(
    snapshot: &Snapshot,
    in_scope: &dyn Fn(&str) -> bool,
    findings: &mut Vec<Finding>,
) {
    let mut secrets = BTreeSet::new();
    let mut workloads: Vec<(&str, &BTreeMap<String, String>)> = Vec::new();
    for (_, resource) in snapshot.iter() {
        match resource.as_ref() {
            Resource::Secret(secret) => {
                secrets.insert((
                    namespace_of(secret.metadata.namespace.as_deref()),
                    secret.metadata.name.as_str(),
                ));
            }
            Resource::Deployment(deployment) => workloads.push((
                namespace_of(deployment.metadata.namespace.as_deref()),
                &deployment.spec.template.metadata.labels,
            )),
            _ => {}
        }
    }
    for (_, resource) in snapshot.iter() {
        let Resource::Gateway(gateway) = resource.as_ref() else {
            continue;
        };
        let ns = namespace_of(gateway.metadata.namespace.as_deref());
        if !in_scope(ns) || gateway.spec.selector.is_empty() {
            continue;
        }
        let selected: BTreeSet<&str> = workloads
            .iter()
            .filter(|(_, labels)| {
                gateway
                    .spec
                    .selector
                    .iter()
                    .all(|(k, v)| labels.get(k) == Some(v))
            })
            .map(|(namespace, _)| *namespace)
            .collect();
        for (i, server) in gateway.spec.servers.iter().enumerate() {
            let Some(name) = server
                .tls
                .as_ref()
                .map(|tls| tls.credential_name.as_str())
                .filter(|name| !name.is_empty())
            else {
                continue;
            };
            for workload_ns in &selected {
                if secrets.contains(&(*workload_ns, name)) {
                    continue;
                }
                findings.push(Finding {
                    origin: None,
                    level: Level::Error,
                    code: REFERENCED_RESOURCE_NOT_FOUND,
                    resource: format!("Gateway {ns}/{}", gateway.metadata.name),
                    field: format!("spec.servers[{i}].tls.credentialName"),
                    message: format!(
                        "Referenced credentialName not found: {name:?} in namespace {workload_ns:?} \
                         of the gateway it selects (hint: `meshlab create -n {workload_ns} secret tls {name} --cert=… --key=…`)"
                    ),
                });
            }
        }
    }
}

// === Mesh-bound VirtualServices sharing a host (IST0109) ===

fn conflicting_mesh_hosts(
    index: &Index<'_>,
    in_scope: &dyn Fn(&str) -> bool,
    findings: &mut Vec<Finding>,
) {
    // Host → the mesh-bound VirtualServices (`ns/name`, host index) that claim it.
    let mut claims: BTreeMap<String, Vec<(String, &str, usize)>> = BTreeMap::new();
    for vs in &index.virtual_services {
        let bound_to_mesh =
            vs.spec.gateways.is_empty() || vs.spec.gateways.iter().any(|g| g == MESH_GATEWAY);
        if !bound_to_mesh {
            continue;
        }
        let ns = namespace_of(vs.metadata.namespace.as_deref());
        for (i, host) in vs.spec.hosts.iter().enumerate() {
            claims.entry(fqdn(host, ns)).or_default().push((
                format!("{ns}/{}", vs.metadata.name),
                ns,
                i,
            ));
        }
    }
    for (host, claimants) in claims {
        let names: BTreeSet<&str> = claimants.iter().map(|(name, _, _)| name.as_str()).collect();
        if names.len() < 2 {
            continue;
        }
        let listed = names.iter().copied().collect::<Vec<_>>().join(", ");
        for (name, ns, i) in &claimants {
            if !in_scope(ns) {
                continue;
            }
            findings.push(Finding {
                origin: None,
                level: Level::Error,
                code: CONFLICTING_MESH_GATEWAY_VIRTUAL_SERVICE_HOSTS,
                resource: format!("VirtualService {name}"),
                field: format!("spec.hosts[{i}]"),
                message: format!(
                    "VirtualServices {listed} are all bound to the mesh gateway for host {host}; \
                     only one takes effect (hint: merge them into one VirtualService)"
                ),
            });
        }
    }
}

// === Namespace-wide Sidecars (IST0111) ===

fn namespace_wide_sidecars(
    snapshot: &Snapshot,
    in_scope: &dyn Fn(&str) -> bool,
    findings: &mut Vec<Finding>,
) {
    let mut by_namespace: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (_, resource) in snapshot.iter() {
        if let Resource::Sidecar(sidecar) = resource.as_ref() {
            let selects_all = sidecar
                .spec
                .workload_selector
                .as_ref()
                .is_none_or(|s| s.labels.is_empty());
            if selects_all {
                by_namespace
                    .entry(namespace_of(sidecar.metadata.namespace.as_deref()))
                    .or_default()
                    .push(&sidecar.metadata.name);
            }
        }
    }
    for (ns, names) in by_namespace {
        if names.len() < 2 || !in_scope(ns) {
            continue;
        }
        let listed = names.join(", ");
        for name in &names {
            findings.push(Finding {
                origin: None,
                level: Level::Error,
                code: MULTIPLE_SIDECARS_WITHOUT_WORKLOAD_SELECTORS,
                resource: format!("Sidecar {ns}/{name}"),
                field: "spec.workloadSelector".to_owned(),
                message: format!(
                    "Sidecars {listed} in namespace {ns:?} all apply to the whole namespace, \
                     so which one a proxy gets is undefined (hint: keep one without \
                     workloadSelector, give the others a selector)"
                ),
            });
        }
    }
}

fn namespace_of(namespace: Option<&str>) -> &str {
    namespace.unwrap_or("default")
}

#[cfg(test)]
mod tests;
