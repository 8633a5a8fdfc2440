//! The five resource types of the stream, their type URLs and the order they are
//! pushed in.
//!
//! The order follows Envoy's rule for aggregated streams — "make before break": a
//! resource is sent before the resources that refer to it, so a proxy never holds a
//! reference it cannot resolve. Routes name clusters and listeners name route
//! configurations and clusters, so clusters come first, then their endpoints (Envoy
//! warms a cluster until its endpoints arrive), then listeners, then the routes the
//! listeners name: CDS, EDS, LDS, RDS, which is also Istio's push order. Secrets come
//! before all of them because clusters and listeners name secrets in their TLS
//! contexts (Istio serves secrets from its node agent instead, outside this order).

use std::fmt;

use crate::v1;

/// A resource type of the discovery stream. Ordered as pushed (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    /// [`v1::Secret`] (Envoy's SDS).
    Secret,
    /// [`v1::Cluster`] (CDS).
    Cluster,
    /// [`v1::ClusterLoadAssignment`] (EDS).
    ClusterLoadAssignment,
    /// [`v1::Listener`] (LDS).
    Listener,
    /// [`v1::RouteConfiguration`] (RDS).
    RouteConfiguration,
}

/// A message that travels as a resource of one [`ResourceType`].
pub trait TypedResource: prost::Message + fmt::Debug + Clone + PartialEq + Sized + 'static {
    /// Its type.
    const TYPE: ResourceType;

    /// Its name, as [`v1::Resource::name`] carries it.
    fn resource_name(&self) -> &str;

    /// The resource wrapping it.
    fn into_resource(self) -> v1::Resource;

    /// The message inside `resource`; if it carries another kind, that kind's type
    /// (`None`: it carries nothing).
    fn from_resource(resource: v1::Resource) -> Result<Self, Option<ResourceType>>;
}

// === impl ResourceType ===

impl ResourceType {
    /// Every type, in push order.
    pub const ALL: [Self; 5] = [
        Self::Secret,
        Self::Cluster,
        Self::ClusterLoadAssignment,
        Self::Listener,
        Self::RouteConfiguration,
    ];

    /// The type URL, e.g. `type.googleapis.com/meshlab.discovery.v1.Cluster`.
    pub const fn type_url(self) -> &'static str {
        match self {
            Self::Secret => "type.googleapis.com/meshlab.discovery.v1.Secret",
            Self::Cluster => "type.googleapis.com/meshlab.discovery.v1.Cluster",
            Self::ClusterLoadAssignment => {
                "type.googleapis.com/meshlab.discovery.v1.ClusterLoadAssignment"
            }
            Self::Listener => "type.googleapis.com/meshlab.discovery.v1.Listener",
            Self::RouteConfiguration => {
                "type.googleapis.com/meshlab.discovery.v1.RouteConfiguration"
            }
        }
    }

    /// The type with this URL, if any.
    pub fn from_type_url(type_url: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|resource_type| resource_type.type_url() == type_url)
    }

    /// Envoy's short name, as `istioctl proxy-status` heads its columns: `CDS`,
    /// `EDS`, `LDS`, `RDS`, `SDS`.
    pub const fn short_name(self) -> &'static str {
        match self {
            Self::Secret => "SDS",
            Self::Cluster => "CDS",
            Self::ClusterLoadAssignment => "EDS",
            Self::Listener => "LDS",
            Self::RouteConfiguration => "RDS",
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

// === impl TypedResource ===

macro_rules! typed_resource {
    ($message:ident, $name:ident) => {
        impl TypedResource for v1::$message {
            const TYPE: ResourceType = ResourceType::$message;

            fn resource_name(&self) -> &str {
                &self.$name
            }

            fn into_resource(self) -> v1::Resource {
                v1::Resource {
                    name: self.$name.clone(),
                    kind: Some(v1::resource::Kind::$message(self)),
                }
            }

            fn from_resource(resource: v1::Resource) -> Result<Self, Option<ResourceType>> {
                let found = resource.resource_type();
                match resource.kind {
                    Some(v1::resource::Kind::$message(message)) => Ok(message),
                    _ => Err(found),
                }
            }
        }
    };
}

typed_resource!(Secret, name);
typed_resource!(Cluster, name);
typed_resource!(ClusterLoadAssignment, cluster_name);
typed_resource!(Listener, name);
typed_resource!(RouteConfiguration, name);

// === impl Resource ===

impl v1::Resource {
    /// The type of what it carries; `None` if it carries nothing.
    pub fn resource_type(&self) -> Option<ResourceType> {
        use v1::resource::Kind;
        Some(match self.kind.as_ref()? {
            Kind::Secret(_) => ResourceType::Secret,
            Kind::Cluster(_) => ResourceType::Cluster,
            Kind::ClusterLoadAssignment(_) => ResourceType::ClusterLoadAssignment,
            Kind::Listener(_) => ResourceType::Listener,
            Kind::RouteConfiguration(_) => ResourceType::RouteConfiguration,
        })
    }
}

#[cfg(test)]
mod tests;
