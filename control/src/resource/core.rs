//! The Kubernetes kinds a lab needs: Namespace, ServiceAccount, Service (core/v1) and
//! Deployment (apps/v1), with the fields Istio's samples use (`bookinfo.yaml`,
//! `httpbin.yaml`, `sleep.yaml`, `curl.yaml`, `fortio-deploy.yaml`,
//! `bookinfo-details-v2.yaml`, …).
//!
//! Some fields describe things a Docker lab has no equivalent for — CPU and memory
//! requests, volumes, security contexts, probes. They are accepted as opaque JSON so
//! that those samples apply unchanged, and each is documented below as having **no
//! effect**; anything else unknown is rejected with its field path.

use std::collections::BTreeMap;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::meta::{Object, ObjectMeta};

/// A Namespace (`v1`). Its labels matter: `istio-injection=enabled` turns on sidecars.
pub type Namespace = Object<NamespaceSpec>;

/// `Namespace.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct NamespaceSpec {
    /// Kubernetes finalizers. No effect in a lab: deleting a namespace removes its
    /// objects at once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
}

/// A ServiceAccount (`v1`): the identity in `spiffe://cluster.local/ns/<ns>/sa/<name>`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceAccount {
    /// `v1`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `ServiceAccount`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Name, namespace, labels (`account: reviews`), annotations.
    pub metadata: ObjectMeta,
    /// Whether pods mount an API token. No effect: a lab has no Kubernetes API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automount_service_account_token: Option<bool>,
    /// Registry pull secrets. No effect: meshlab never pulls images.
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<Value>,
}

/// A Secret (`v1`): the certificates and keys that a Gateway's or DestinationRule's
/// `credentialName` names (Istio reads them from the API server; a lab from its store).
///
/// Values under `data` are base64, as the API server keeps them; `stringData` is the
/// write-only plain-text form, merged over `data` (a key in both takes the
/// `stringData` value, as Kubernetes does).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Secret {
    /// `v1`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `Secret`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Name and namespace: a credential must be in the namespace of the proxy
    /// that uses it (the gateway's, or the workload's).
    pub metadata: ObjectMeta,
    /// `Opaque` (the default) or `kubernetes.io/tls`, which must hold `tls.crt`
    /// and `tls.key`.
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub secret_type: String,
    /// Base64 values by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Plain-text values by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub string_data: BTreeMap<String, String>,
    /// Whether the data may change. No effect: a lab replaces secrets on apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

/// The type of a Secret with no `type`.
pub const SECRET_TYPE_OPAQUE: &str = "Opaque";

/// The type of a TLS Secret (`kubectl create secret tls`).
pub const SECRET_TYPE_TLS: &str = "kubernetes.io/tls";

impl Secret {
    /// The secret's type, `Opaque` when unset.
    #[must_use]
    pub fn type_name(&self) -> &str {
        if self.secret_type.is_empty() {
            SECRET_TYPE_OPAQUE
        } else {
            &self.secret_type
        }
    }

    /// The decoded values by key (`stringData` over `data`).
    ///
    /// # Errors
    ///
    /// The key whose `data` value is not valid base64, and why.
    pub fn decoded(&self) -> Result<BTreeMap<String, Vec<u8>>, (String, String)> {
        use base64::Engine as _;
        let mut values = BTreeMap::new();
        for (key, value) in &self.data {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .map_err(|err| (key.clone(), err.to_string()))?;
            values.insert(key.clone(), bytes);
        }
        for (key, value) in &self.string_data {
            values.insert(key.clone(), value.clone().into_bytes());
        }
        Ok(values)
    }

    /// How many keys it holds (kubectl's DATA column).
    #[must_use]
    pub fn key_count(&self) -> usize {
        self.data
            .keys()
            .chain(self.string_data.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    }
}

/// A Service (`v1`).
pub type Service = Object<ServiceSpec>;

/// `Service.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ServiceSpec {
    /// The ports the Service exposes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePort>,
    /// Pods with all these labels are the Service's endpoints.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    /// `ClusterIP` (default), `NodePort` or `LoadBalancer`; see `validate`.
    #[serde(rename = "type")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_type: Option<String>,
    /// A requested cluster IP; `None` (the string) makes a headless Service.
    #[serde(rename = "clusterIP")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_ip: Option<String>,
}

/// One entry of `Service.spec.ports`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePort {
    /// Port name; Istio infers the protocol from an `http`/`http-*`/`grpc`… prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The Service port; required.
    pub port: i32,
    /// The container port, by number or by name; defaults to `port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_port: Option<IntOrString>,
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The application protocol (`http`, `http2`, `grpc`, `tcp`, …), which Istio prefers
    /// over the port name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    /// The node port of a `NodePort` Service. No effect: the lab publishes the ingress
    /// gateway on the host instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_port: Option<i32>,
}

/// Kubernetes' `IntOrString`, as used by `targetPort`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum IntOrString {
    /// A port number.
    Int(i32),
    /// A port name.
    String(String),
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntOrStringVisitor;

        impl Visitor<'_> for IntOrStringVisitor {
            type Value = IntOrString;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a port number or a port name")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrString, E> {
                i32::try_from(v)
                    .map(IntOrString::Int)
                    .map_err(|_| E::custom(format!("port {v} is out of range")))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrString, E> {
                i32::try_from(v)
                    .map(IntOrString::Int)
                    .map_err(|_| E::custom(format!("port {v} is out of range")))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrString, E> {
                Ok(IntOrString::String(v.to_owned()))
            }
        }

        deserializer.deserialize_any(IntOrStringVisitor)
    }
}

/// A Deployment (`apps/v1`).
pub type Deployment = Object<DeploymentSpec>;

/// `Deployment.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentSpec {
    /// How many pods; defaults to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Which pods belong to this Deployment; required, must match the template labels.
    pub selector: LabelSelector,
    /// The pod template; required.
    pub template: PodTemplateSpec,
    /// Rollout strategy. No effect: a changed Deployment replaces its pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Value>,
    /// No effect in a lab (Kubernetes rollout bookkeeping).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<i32>,
    /// No effect in a lab (Kubernetes rollout bookkeeping).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i32>,
    /// No effect in a lab (Kubernetes rollout bookkeeping).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<i32>,
}

/// A Kubernetes label selector. Only `matchLabels` is supported; `matchExpressions`
/// is accepted so that the validator can reject it by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LabelSelector {
    /// All of these labels must match.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements; rejected by `validate` (unsupported).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<Value>,
}

/// `Deployment.spec.template`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PodTemplateSpec {
    /// Pod labels (selected by Services and Istio policies) and annotations
    /// (`sidecar.istio.io/inject`, `proxy.istio.io/config`, …).
    pub metadata: PodTemplateMeta,
    /// The pod.
    pub spec: PodSpec,
}

/// The metadata of a pod template.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PodTemplateMeta {
    /// Pod labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Pod annotations.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A pod's spec.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSpec {
    /// The pod's identity; defaults to `default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Deprecated alias of `serviceAccountName`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// The app containers; at least one.
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<Container>,
    /// Init containers; rejected by `validate` (meshlab runs its own init step only).
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Value>,
    /// Volumes. No effect: every container gets its own writable scratch filesystem,
    /// which is what the samples' `emptyDir` volumes are for.
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Value>,
    /// Seconds a stopping container gets before it is killed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
    /// Pod security context. No effect: meshlab picks the uids (1337 is the proxy's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<Value>,
    /// Registry pull secrets. No effect: meshlab never pulls images.
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<Value>,
}

/// One container of a pod.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Container {
    /// Container name; required.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The image; required. Mapped to a built-in app, never pulled.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// `Always`, `IfNotPresent` or `Never`. No effect: nothing is ever pulled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Overrides the image's entrypoint.
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Arguments to the entrypoint.
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Ports the container listens on (informational in Kubernetes too).
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ContainerPort>,
    /// Environment variables.
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// CPU and memory requests and limits. No effect in a lab.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Value>,
    /// Container security context. No effect: meshlab picks the uids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<Value>,
    /// Mounts of `volumes`. No effect (see `PodSpec::volumes`).
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<Value>,
    /// Readiness probe. No effect: meshlab checks readiness itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Value>,
    /// Liveness probe. No effect in a lab.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Value>,
    /// Startup probe. No effect in a lab.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup_probe: Option<Value>,
}

/// One entry of `containers[].ports`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerPort {
    /// The port; required.
    pub container_port: i32,
    /// A name that a Service's `targetPort` can refer to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// One entry of `containers[].env`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    /// Variable name; required.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The value (a string: quote `"true"` and numbers, as Kubernetes requires).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Values from the downward API or secrets; rejected by `validate` (unsupported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<Value>,
}
