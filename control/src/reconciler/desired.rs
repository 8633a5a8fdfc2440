//! What pods the store asks for: one [`DesiredPod`] per Deployment.

use std::collections::BTreeMap;

use crate::resource::Resource;
use crate::resource::core::Container;
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
            let mut aliases: Vec<String> = services
                .iter()
                .filter(|s| s.metadata.namespace.as_deref().unwrap_or("default") == namespace)
                .filter(|s| {
                    !s.spec.selector.is_empty()
                        && s.spec
                            .selector
                            .iter()
                            .all(|(k, v)| labels.get(k) == Some(v))
                })
                .map(|s| format!("{}.{namespace}.svc.cluster.local", s.metadata.name))
                .collect();
            aliases.sort();
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
            let fingerprint = serde_json::json!({
                "template": template,
                "aliases": aliases,
                "image": image,
                "sidecar": sidecar,
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
            }
        })
        .collect()
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
