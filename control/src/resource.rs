//! Typed resources: the kinds a learner can apply, their registry ([`Kind`]) and the
//! decoding of one manifest (as JSON) into a [`Resource`].
//!
//! The schemas mirror the Kubernetes and Istio APIs field for field
//! (`deny_unknown_fields` everywhere), so a typo is an error with a path, never a
//! silently ignored setting. Decoding goes through `serde_path_to_error` to know *which*
//! field failed; the YAML door (`crate::yaml`) turns that path into a line number. The
//! store persists resources as JSON and reloads them through the same decoder.

#[cfg(test)]
mod tests;

pub mod core;
pub mod duration;
pub mod meta;
pub mod networking;
pub mod security;

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diagnostic::{FieldPath, PathSegment, ResourceId};

pub use self::meta::{Object, ObjectMeta, Timestamp};

/// Every kind meshlab accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    /// `v1` Namespace.
    Namespace,
    /// `v1` ServiceAccount.
    ServiceAccount,
    /// `v1` Service.
    Service,
    /// `v1` Secret.
    Secret,
    /// `apps/v1` Deployment.
    Deployment,
    /// `networking.istio.io` VirtualService.
    VirtualService,
    /// `networking.istio.io` DestinationRule.
    DestinationRule,
    /// `networking.istio.io` Gateway.
    Gateway,
    /// `networking.istio.io` ServiceEntry.
    ServiceEntry,
    /// `networking.istio.io` Sidecar.
    Sidecar,
    /// `networking.istio.io` WorkloadEntry.
    WorkloadEntry,
    /// `security.istio.io` PeerAuthentication.
    PeerAuthentication,
    /// `security.istio.io` AuthorizationPolicy.
    AuthorizationPolicy,
    /// `security.istio.io` RequestAuthentication.
    RequestAuthentication,
}

/// What the API server (or Istio's CRD) says about a kind.
#[derive(Debug)]
pub struct KindInfo {
    /// `VirtualService`.
    pub kind: &'static str,
    /// `networking.istio.io`, or `""` for the core group.
    pub group: &'static str,
    /// Served versions, the preferred one first.
    pub versions: &'static [&'static str],
    /// Lowercase plural: `virtualservices`.
    pub plural: &'static str,
    /// Lowercase singular: `virtualservice`.
    pub singular: &'static str,
    /// kubectl short names: `vs`.
    pub short_names: &'static [&'static str],
    /// Whether objects live in a namespace.
    pub namespaced: bool,
}

const NETWORKING: &str = "networking.istio.io";
const NETWORKING_VERSIONS: &[&str] = &["v1", "v1beta1", "v1alpha3"];
const SECURITY: &str = "security.istio.io";
const SECURITY_VERSIONS: &[&str] = &["v1", "v1beta1"];

const fn info(
    kind: &'static str,
    group: &'static str,
    versions: &'static [&'static str],
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    namespaced: bool,
) -> KindInfo {
    KindInfo {
        kind,
        group,
        versions,
        plural,
        singular,
        short_names,
        namespaced,
    }
}

static NAMESPACE: KindInfo = info(
    "Namespace",
    "",
    &["v1"],
    "namespaces",
    "namespace",
    &["ns"],
    false,
);
static SERVICE_ACCOUNT: KindInfo = info(
    "ServiceAccount",
    "",
    &["v1"],
    "serviceaccounts",
    "serviceaccount",
    &["sa"],
    true,
);
static SERVICE: KindInfo = info(
    "Service",
    "",
    &["v1"],
    "services",
    "service",
    &["svc"],
    true,
);
static SECRET: KindInfo = info("Secret", "", &["v1"], "secrets", "secret", &[], true);
static DEPLOYMENT: KindInfo = info(
    "Deployment",
    "apps",
    &["v1"],
    "deployments",
    "deployment",
    &["deploy"],
    true,
);
static VIRTUAL_SERVICE: KindInfo = info(
    "VirtualService",
    NETWORKING,
    NETWORKING_VERSIONS,
    "virtualservices",
    "virtualservice",
    &["vs"],
    true,
);
static DESTINATION_RULE: KindInfo = info(
    "DestinationRule",
    NETWORKING,
    NETWORKING_VERSIONS,
    "destinationrules",
    "destinationrule",
    &["dr"],
    true,
);
static GATEWAY: KindInfo = info(
    "Gateway",
    NETWORKING,
    NETWORKING_VERSIONS,
    "gateways",
    "gateway",
    &["gw"],
    true,
);
static SERVICE_ENTRY: KindInfo = info(
    "ServiceEntry",
    NETWORKING,
    NETWORKING_VERSIONS,
    "serviceentries",
    "serviceentry",
    &["se"],
    true,
);
static SIDECAR: KindInfo = info(
    "Sidecar",
    NETWORKING,
    NETWORKING_VERSIONS,
    "sidecars",
    "sidecar",
    &[],
    true,
);
// Istio's CRD declares `we` as the short name (there is no `wle`).
static WORKLOAD_ENTRY: KindInfo = info(
    "WorkloadEntry",
    NETWORKING,
    NETWORKING_VERSIONS,
    "workloadentries",
    "workloadentry",
    &["we"],
    true,
);
static PEER_AUTHENTICATION: KindInfo = info(
    "PeerAuthentication",
    SECURITY,
    SECURITY_VERSIONS,
    "peerauthentications",
    "peerauthentication",
    &["pa"],
    true,
);
static AUTHORIZATION_POLICY: KindInfo = info(
    "AuthorizationPolicy",
    SECURITY,
    SECURITY_VERSIONS,
    "authorizationpolicies",
    "authorizationpolicy",
    &["ap"],
    true,
);
static REQUEST_AUTHENTICATION: KindInfo = info(
    "RequestAuthentication",
    SECURITY,
    SECURITY_VERSIONS,
    "requestauthentications",
    "requestauthentication",
    &["ra"],
    true,
);

// === impl Kind ===

impl Kind {
    /// All kinds, in the order `meshlab get all`-style listings use.
    pub const ALL: [Kind; 14] = [
        Kind::Namespace,
        Kind::ServiceAccount,
        Kind::Service,
        Kind::Secret,
        Kind::Deployment,
        Kind::Gateway,
        Kind::VirtualService,
        Kind::DestinationRule,
        Kind::ServiceEntry,
        Kind::Sidecar,
        Kind::WorkloadEntry,
        Kind::PeerAuthentication,
        Kind::AuthorizationPolicy,
        Kind::RequestAuthentication,
    ];

    /// The registry entry.
    #[must_use]
    pub fn info(self) -> &'static KindInfo {
        match self {
            Kind::Namespace => &NAMESPACE,
            Kind::ServiceAccount => &SERVICE_ACCOUNT,
            Kind::Service => &SERVICE,
            Kind::Secret => &SECRET,
            Kind::Deployment => &DEPLOYMENT,
            Kind::VirtualService => &VIRTUAL_SERVICE,
            Kind::DestinationRule => &DESTINATION_RULE,
            Kind::Gateway => &GATEWAY,
            Kind::ServiceEntry => &SERVICE_ENTRY,
            Kind::Sidecar => &SIDECAR,
            Kind::WorkloadEntry => &WORKLOAD_ENTRY,
            Kind::PeerAuthentication => &PEER_AUTHENTICATION,
            Kind::AuthorizationPolicy => &AUTHORIZATION_POLICY,
            Kind::RequestAuthentication => &REQUEST_AUTHENTICATION,
        }
    }

    /// Whether objects of this kind live in a namespace.
    #[must_use]
    pub fn is_namespaced(self) -> bool {
        self.info().namespaced
    }

    /// The preferred `apiVersion`: `networking.istio.io/v1`, `apps/v1`, `v1`.
    #[must_use]
    pub fn api_version(self) -> String {
        let info = self.info();
        if info.group.is_empty() {
            info.versions[0].to_owned()
        } else {
            format!("{}/{}", info.group, info.versions[0])
        }
    }

    /// The name kubectl prints in apply/create lines: `virtualservice.networking.istio.io`,
    /// `deployment.apps`, `service`.
    #[must_use]
    pub fn resource_name(self) -> String {
        qualify(self.info().singular, self.info().group)
    }

    /// The name kubectl prints in errors: `virtualservices.networking.istio.io`,
    /// `deployments.apps`, `services`.
    #[must_use]
    pub fn plural_name(self) -> String {
        qualify(self.info().plural, self.info().group)
    }

    /// Finds the kind for a document's `apiVersion` and `kind`.
    ///
    /// # Errors
    ///
    /// [`KindError`] when the kind is unknown or not served at that version; its
    /// message lists what is accepted.
    pub fn from_type(api_version: &str, kind: &str) -> Result<Kind, KindError> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let Some(found) = Kind::ALL.into_iter().find(|k| k.info().kind == kind) else {
            return Err(KindError::UnknownKind {
                kind: kind.to_owned(),
                api_version: api_version.to_owned(),
            });
        };
        let info = found.info();
        if info.group == group && info.versions.contains(&version) {
            Ok(found)
        } else {
            Err(KindError::WrongVersion {
                kind: kind.to_owned(),
                api_version: api_version.to_owned(),
                accepted: info
                    .versions
                    .iter()
                    .map(|v| qualify_version(info.group, v))
                    .collect(),
            })
        }
    }

    /// Finds the kind a learner names on the command line, as kubectl does:
    /// `vs`, `virtualservice`, `virtualservices`, `VirtualService`,
    /// `virtualservices.networking.istio.io`, `deployment.apps`.
    #[must_use]
    pub fn lookup(name: &str) -> Option<Kind> {
        let lower = name.to_ascii_lowercase();
        let (base, group) = match lower.split_once('.') {
            Some((base, group)) => (base, Some(group)),
            None => (lower.as_str(), None),
        };
        Kind::ALL.into_iter().find(|k| {
            let info = k.info();
            let group_ok = group.is_none_or(|g| g == info.group);
            group_ok
                && (base == info.plural
                    || base == info.singular
                    || (group.is_none() && info.short_names.contains(&base)))
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.info().kind)
    }
}

fn qualify(name: &str, group: &str) -> String {
    if group.is_empty() {
        name.to_owned()
    } else {
        format!("{name}.{group}")
    }
}

fn qualify_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

/// Why a document's `apiVersion`/`kind` was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KindError {
    /// meshlab has no such kind (at any version).
    #[error("no matches for kind {kind:?} in version {api_version:?}")]
    UnknownKind {
        /// The kind as written.
        kind: String,
        /// The apiVersion as written.
        api_version: String,
    },
    /// The kind exists but not in that group/version.
    #[error("no matches for kind {kind:?} in version {api_version:?}")]
    WrongVersion {
        /// The kind as written.
        kind: String,
        /// The apiVersion as written.
        api_version: String,
        /// The apiVersions that serve this kind.
        accepted: Vec<String>,
    },
}

impl KindError {
    /// What to do about it.
    #[must_use]
    pub fn hint(&self) -> String {
        match self {
            KindError::UnknownKind { .. } => format!(
                "meshlab accepts {}",
                Kind::ALL
                    .iter()
                    .map(|k| k.info().kind)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            KindError::WrongVersion { kind, accepted, .. } => {
                format!("{kind} is served as apiVersion {}", accepted.join(", "))
            }
        }
    }
}

/// One typed, decoded resource.
#[derive(Clone, Debug, PartialEq)]
// Resources live behind `Arc` in the store; boxing variants would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Resource {
    /// A Namespace.
    Namespace(core::Namespace),
    /// A ServiceAccount.
    ServiceAccount(core::ServiceAccount),
    /// A Service.
    Service(core::Service),
    /// A Secret.
    Secret(core::Secret),
    /// A Deployment.
    Deployment(core::Deployment),
    /// A VirtualService.
    VirtualService(networking::VirtualService),
    /// A DestinationRule.
    DestinationRule(networking::DestinationRule),
    /// A Gateway.
    Gateway(networking::Gateway),
    /// A ServiceEntry.
    ServiceEntry(networking::ServiceEntry),
    /// A Sidecar.
    Sidecar(networking::Sidecar),
    /// A WorkloadEntry.
    WorkloadEntry(networking::WorkloadEntry),
    /// A PeerAuthentication.
    PeerAuthentication(security::PeerAuthentication),
    /// An AuthorizationPolicy.
    AuthorizationPolicy(security::AuthorizationPolicy),
    /// A RequestAuthentication.
    RequestAuthentication(security::RequestAuthentication),
}

/// Calls `$body` with `$inner` bound to the typed object of any [`Resource`] variant.
macro_rules! with_inner {
    ($resource:expr, $inner:ident => $body:expr) => {
        match $resource {
            Resource::Namespace($inner) => $body,
            Resource::ServiceAccount($inner) => $body,
            Resource::Service($inner) => $body,
            Resource::Secret($inner) => $body,
            Resource::Deployment($inner) => $body,
            Resource::VirtualService($inner) => $body,
            Resource::DestinationRule($inner) => $body,
            Resource::Gateway($inner) => $body,
            Resource::ServiceEntry($inner) => $body,
            Resource::Sidecar($inner) => $body,
            Resource::WorkloadEntry($inner) => $body,
            Resource::PeerAuthentication($inner) => $body,
            Resource::AuthorizationPolicy($inner) => $body,
            Resource::RequestAuthentication($inner) => $body,
        }
    };
}

/// Why a manifest could not be decoded into a [`Resource`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct DecodeError {
    /// The offending field (root when the document as a whole is wrong).
    pub path: FieldPath,
    /// What is wrong.
    pub message: String,
    /// What to do next.
    pub hint: Option<String>,
    /// The kind/namespace/name, as far as the document says.
    pub resource: ResourceId,
}

// === impl Resource ===

impl Resource {
    /// Decodes one manifest. `apiVersion` and `kind` select the schema; every other
    /// field must belong to it.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] with the path of the first offending field.
    // The `Ok` variant is larger than the error, so boxing the error would save nothing.
    #[allow(clippy::result_large_err)]
    pub fn from_value(value: Value) -> Result<Resource, DecodeError> {
        let id = resource_id(&value);
        let fail = |path: FieldPath, message: String, hint: Option<String>| DecodeError {
            path,
            message,
            hint,
            resource: id.clone(),
        };
        let Value::Object(map) = &value else {
            return Err(fail(
                FieldPath::root(),
                "a manifest must be a mapping with apiVersion, kind, metadata and spec".into(),
                None,
            ));
        };
        let text = |key: &str| map.get(key).and_then(Value::as_str).unwrap_or_default();
        let (api_version, kind_name) = (text("apiVersion"), text("kind"));
        if api_version.is_empty() {
            return Err(fail(
                FieldPath::root().field("apiVersion"),
                "apiVersion not set".into(),
                Some("every document needs apiVersion and kind, e.g. apiVersion: networking.istio.io/v1".into()),
            ));
        }
        if kind_name.is_empty() {
            return Err(fail(
                FieldPath::root().field("kind"),
                "kind not set".into(),
                Some("every document needs apiVersion and kind, e.g. kind: VirtualService".into()),
            ));
        }
        let kind = Kind::from_type(api_version, kind_name).map_err(|e| {
            let path = match e {
                KindError::UnknownKind { .. } => "kind",
                KindError::WrongVersion { .. } => "apiVersion",
            };
            fail(FieldPath::root().field(path), e.to_string(), Some(e.hint()))
        })?;
        let decoded = match kind {
            Kind::Namespace => decode(value).map(Resource::Namespace),
            Kind::ServiceAccount => decode(value).map(Resource::ServiceAccount),
            Kind::Service => decode(value).map(Resource::Service),
            Kind::Secret => decode(value).map(Resource::Secret),
            Kind::Deployment => decode(value).map(Resource::Deployment),
            Kind::VirtualService => decode(value).map(Resource::VirtualService),
            Kind::DestinationRule => decode(value).map(Resource::DestinationRule),
            Kind::Gateway => decode(value).map(Resource::Gateway),
            Kind::ServiceEntry => decode(value).map(Resource::ServiceEntry),
            Kind::Sidecar => decode(value).map(Resource::Sidecar),
            Kind::WorkloadEntry => decode(value).map(Resource::WorkloadEntry),
            Kind::PeerAuthentication => decode(value).map(Resource::PeerAuthentication),
            Kind::AuthorizationPolicy => decode(value).map(Resource::AuthorizationPolicy),
            Kind::RequestAuthentication => decode(value).map(Resource::RequestAuthentication),
        };
        decoded.map_err(|(path, message)| fail(path, message, None))
    }

    /// The resource as JSON. Unset and empty fields are left out (they mean the same as
    /// absent in both Kubernetes and Istio's proto3 JSON); opaque fields are kept
    /// exactly as written (`emptyDir: {}` matters).
    #[must_use]
    pub fn to_value(&self) -> Value {
        // Serializing plain data into a `Value` cannot fail: every map key is a string
        // or an integer.
        with_inner!(self, inner => serde_json::to_value(inner)).unwrap_or(Value::Null)
    }

    /// The kind.
    #[must_use]
    pub fn kind(&self) -> Kind {
        match self {
            Resource::Namespace(_) => Kind::Namespace,
            Resource::ServiceAccount(_) => Kind::ServiceAccount,
            Resource::Service(_) => Kind::Service,
            Resource::Secret(_) => Kind::Secret,
            Resource::Deployment(_) => Kind::Deployment,
            Resource::VirtualService(_) => Kind::VirtualService,
            Resource::DestinationRule(_) => Kind::DestinationRule,
            Resource::Gateway(_) => Kind::Gateway,
            Resource::ServiceEntry(_) => Kind::ServiceEntry,
            Resource::Sidecar(_) => Kind::Sidecar,
            Resource::WorkloadEntry(_) => Kind::WorkloadEntry,
            Resource::PeerAuthentication(_) => Kind::PeerAuthentication,
            Resource::AuthorizationPolicy(_) => Kind::AuthorizationPolicy,
            Resource::RequestAuthentication(_) => Kind::RequestAuthentication,
        }
    }

    /// The `apiVersion` as written.
    #[must_use]
    pub fn api_version(&self) -> &str {
        with_inner!(self, inner => &inner.api_version)
    }

    /// The metadata.
    #[must_use]
    pub fn metadata(&self) -> &ObjectMeta {
        with_inner!(self, inner => &inner.metadata)
    }

    /// The metadata, for the store to fill in.
    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        with_inner!(self, inner => &mut inner.metadata)
    }

    /// The name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.metadata().name
    }

    /// The namespace (`None` for cluster-scoped kinds and when not yet defaulted).
    #[must_use]
    pub fn namespace(&self) -> Option<&str> {
        self.metadata().namespace.as_deref()
    }

    /// Kind, namespace and name for diagnostics.
    #[must_use]
    pub fn id(&self) -> ResourceId {
        ResourceId {
            kind: Some(self.kind().to_string()),
            namespace: self.namespace().map(str::to_owned),
            name: Some(self.name().to_owned()),
        }
    }

    /// Whether everything but the metadata is equal: what Kubernetes calls a spec
    /// change, which bumps `metadata.generation`.
    #[must_use]
    pub fn same_spec(&self, other: &Resource) -> bool {
        let mut a = self.clone();
        let mut b = other.clone();
        *a.metadata_mut() = ObjectMeta::default();
        *b.metadata_mut() = ObjectMeta::default();
        a == b
    }
}

impl Serialize for Resource {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

/// Decodes one kind, tracking the path of the failing field.
fn decode<T: DeserializeOwned>(value: Value) -> Result<T, (FieldPath, String)> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let mut segments = Vec::new();
        for segment in err.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => {
                    segments.push(PathSegment::Index(*index));
                }
                serde_path_to_error::Segment::Map { key } => {
                    segments.push(PathSegment::Field(key.clone()));
                }
                serde_path_to_error::Segment::Enum { variant } => {
                    segments.push(PathSegment::Field(variant.clone()));
                }
                serde_path_to_error::Segment::Unknown => break,
            }
        }
        (FieldPath::from(segments), err.into_inner().to_string())
    })
}

/// Reads kind, namespace and name from an undecoded manifest, for diagnostics.
#[must_use]
pub fn resource_id(value: &Value) -> ResourceId {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let metadata = value.get("metadata");
    ResourceId {
        kind: text(value.get("kind")),
        namespace: text(metadata.and_then(|m| m.get("namespace"))),
        name: text(metadata.and_then(|m| m.get("name"))),
    }
}

/// For `skip_serializing_if`: `false` is the proto3 default, so it is left out of
/// output like other defaults.
fn is_false(value: &bool) -> bool {
    !*value
}

/// Identifies one object in the store: kind, namespace (empty for cluster-scoped
/// kinds) and name. Ordered the way `get` lists objects.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The kind.
    pub kind: Kind,
    /// The namespace; empty for cluster-scoped kinds.
    pub namespace: String,
    /// The name.
    pub name: String,
}

// === impl ObjectKey ===

impl ObjectKey {
    /// A key; the namespace is dropped for cluster-scoped kinds.
    #[must_use]
    pub fn new(kind: Kind, namespace: &str, name: &str) -> Self {
        Self {
            kind,
            namespace: if kind.is_namespaced() {
                namespace.to_owned()
            } else {
                String::new()
            },
            name: name.to_owned(),
        }
    }

    /// The key of a resource, with `default_namespace` when it names none.
    #[must_use]
    pub fn of(resource: &Resource, default_namespace: &str) -> Self {
        Self::new(
            resource.kind(),
            resource.namespace().unwrap_or(default_namespace),
            resource.name(),
        )
    }
}

impl fmt::Display for ObjectKey {
    /// kubectl's `virtualservice.networking.istio.io/reviews`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.resource_name(), self.name)
    }
}
