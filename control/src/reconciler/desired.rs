//! What pods the store asks for: one [`DesiredPod`] per Deployment.

use std::collections::BTreeMap;

use crate::resource::Resource;
use crate::resource::core::{Container, IntOrString, Service};
use crate::store::Snapshot;

/// The pods one Deployment asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredPod {
    /// The namespace.
    pub namespace: String,
    /// The owning Deployment.
    pub deployment: String,
    /// How many pods.
    pub replicas: usize,
    /// The template hash: pod names embed it, and a new one rolls the pods.
    pub hash: String,
    /// The pod's labels.
    pub labels: BTreeMap<String, String>,
    /// The pod's annotations.
    pub annotations: BTreeMap<String, String>,
    /// The pod's service account.
    pub service_account: String,
    /// The app containers.
    pub containers: Vec<Container>,
    /// DNS names that resolve to this pod: `<service>.<namespace>.svc.cluster.local`
    /// for each Service selecting it (short names resolve through the search list).
    pub aliases: Vec<String>,
    /// Whether the pod gets a sidecar (see [`injected`]).
    pub sidecar: bool,
    /// `(service port, target port)` of each Service port selecting the pod whose
    /// target differs: without kube-proxy, a client without a sidecar dials the
    /// Service port on the pod itself, so a pod without a sidecar forwards it (a
    /// sidecar's inbound listener does the same for its pod).
    pub port_forwards: Vec<(u16, u16)>,
}

/// Istio's injection rule: the pod's `sidecar.istio.io/inject` label or annotation
/// decides when set (`"true"` or `"false"`); otherwise the namespace's
/// `istio-injection=enabled` label.
pub fn injected(
    namespace_labels: Option<&BTreeMap<String, String>>,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> bool {
    const KEY: &str = "sidecar.istio.io/inject";
    match labels
        .get(KEY)
        .or_else(|| annotations.get(KEY))
        .map(String::as_str)
    {
        Some("true") => true,
        Some("false") => false,
        _ => namespace_labels
            .and_then(|l| l.get("istio-injection"))
            .is_some_and(|v| v == "enabled"),
    }
}

/// The pods every Deployment of `snapshot` asks for, when run from `image`.
pub fn desired_pods(snapshot: &Snapshot, image: &str) -> Vec<DesiredPod> {
    let namespaces: BTreeMap<&str, &BTreeMap<String, String>> = snapshot
        .iter()
        .filter_map(|(_, r)| match r.as_ref() {
            Resource::Namespace(ns) => Some((ns.metadata.name.as_str(), &ns.metadata.labels)),
            _ => None,
        })
        .collect();
    let services: Vec<_> = snapshot
        .iter()
        .filter_map(|(_, r)| match r.as_ref() {
            Resource::Service(service) => Some(service),
            _ => None,
        })
        .collect();
    snapshot
        .iter()
        .filter_map(|(_, r)| match r.as_ref() {
            Resource::Deployment(deployment) => Some(deployment),
            _ => None,
        })
        .map(|deployment| {
            let namespace = deployment
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_owned());
            let template = &deployment.spec.template;
            let labels = template.metadata.labels.clone();
            let selecting: Vec<_> = services
                .iter()
                .filter(|s| s.metadata.namespace.as_deref().unwrap_or("default") == namespace)
                .filter(|s| {
                    !s.spec.selector.is_empty()
                        && s.spec
                            .selector
                            .iter()
                            .all(|(k, v)| labels.get(k) == Some(v))
                })
                .copied()
                .collect();
            let mut aliases: Vec<String> = selecting
                .iter()
                .map(|s| format!("{}.{namespace}.svc.cluster.local", s.metadata.name))
                .collect();
            aliases.sort();
            let port_forwards = port_forwards(&selecting, &template.spec.containers);
            let service_account = template
                .spec
                .service_account_name
                .clone()
                .or_else(|| template.spec.service_account.clone())
                .unwrap_or_else(|| "default".to_owned());
            let sidecar = injected(
                namespaces.get(namespace.as_str()).copied(),
                &template.metadata.labels,
                &template.metadata.annotations,
            ) && template
                .spec
                .containers
                .iter()
                .all(|c| !crate::catalog::is_gateway(&c.image));
            let port_forwards = if sidecar { Vec::new() } else { port_forwards };
            let fingerprint = serde_json::json!({
                "template": template,
                "aliases": aliases,
                "image": image,
                "sidecar": sidecar,
                "forwards": port_forwards,
            });
            DesiredPod {
                hash: template_hash(&fingerprint.to_string()),
                deployment: deployment.metadata.name.clone(),
                replicas: usize::try_from(deployment.spec.replicas.unwrap_or(1)).unwrap_or(0),
                annotations: template.metadata.annotations.clone(),
                containers: template.spec.containers.clone(),
                service_account,
                labels,
                aliases,
                namespace,
                sidecar,
                port_forwards,
            }
        })
        .collect()
}

/// The Service ports of `services` that reach `containers` on another port, and
/// that no container listens on itself.
fn port_forwards(services: &[&Service], containers: &[Container]) -> Vec<(u16, u16)> {
    let container_ports: Vec<(Option<&str>, u16)> = containers
        .iter()
        .flat_map(|c| &c.ports)
        .filter_map(|p| Some((p.name.as_deref(), u16::try_from(p.container_port).ok()?)))
        .collect();
    let mut forwards: Vec<(u16, u16)> = services
        .iter()
        .flat_map(|s| &s.spec.ports)
        .filter_map(|p| {
            let port = u16::try_from(p.port).ok()?;
            let target = match &p.target_port {
                None => port,
                Some(IntOrString::Int(n)) => u16::try_from(*n).ok()?,
                Some(IntOrString::String(name)) => container_ports
                    .iter()
                    .find(|(n, _)| *n == Some(name.as_str()))
                    .map(|(_, number)| *number)?,
            };
            (port != target && container_ports.iter().all(|(_, n)| *n != port))
                .then_some((port, target))
        })
        .collect();
    forwards.sort_unstable();
    forwards.dedup_by_key(|(port, _)| *port);
    forwards
}

/// Ten lowercase characters from a SHA-256 of `text`, like `pod-template-hash`.
fn template_hash(text: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .take(10)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(text: &str) -> (Vec<Service>, Vec<Container>) {
        let mut services = Vec::new();
        let mut containers = Vec::new();
        for document in crate::yaml::load("t.yaml", text).unwrap().documents {
            match document.resource {
                Resource::Service(s) => services.push(s),
                Resource::Deployment(d) => containers.extend(d.spec.template.spec.containers),
                _ => {}
            }
        }
        (services, containers)
    }

    #[test]
    fn service_ports_that_differ_from_their_target_are_forwarded() {
        let (services, containers) = objects(
            "apiVersion: v1
kind: Service
metadata: {name: httpbin}
spec:
  selector: {app: httpbin}
  ports:
  - {name: http, port: 8000, targetPort: 8080}
  - {name: named, port: 9000, targetPort: admin}
  - {name: same, port: 7070}
  - {name: taken, port: 8080, targetPort: 9999}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: httpbin}
spec:
  selector: {matchLabels: {app: httpbin}}
  template:
    metadata: {labels: {app: httpbin}}
    spec:
      containers:
      - name: httpbin
        image: docker.io/mccutchen/go-httpbin
        ports:
        - {containerPort: 8080}
        - {containerPort: 9091, name: admin}
",
        );
        let services: Vec<&Service> = services.iter().collect();
        // 7070 needs nothing; 8080 is the app's own port, never taken over.
        assert_eq!(
            port_forwards(&services, &containers),
            [(8000, 8080), (9000, 9091)]
        );
    }
}
