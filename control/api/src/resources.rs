//! One response's resources, checked and converted into the proxy model: all of the
//! response's type, names consistent and unique, every message valid ([`Wire`]). A
//! proxy sees plain model values or one error whose text its NACK carries.

use std::collections::HashSet;

use meshlab_proxy_config::{Cluster, ClusterLoadAssignment, Listener, RouteConfiguration, Secret};

use crate::{InvalidResource, ResourceType, TypedResource, Wire, v1};

/// The resources of one [`v1::DiscoveryResponse`], by type. A response is the
/// complete set of its type for the proxy: a resource left out is removed.
#[derive(Clone, Debug, PartialEq)]
pub enum Resources {
    /// SDS.
    Secrets(Vec<Secret>),
    /// CDS.
    Clusters(Vec<Cluster>),
    /// EDS.
    ClusterLoadAssignments(Vec<ClusterLoadAssignment>),
    /// LDS.
    Listeners(Vec<Listener>),
    /// RDS.
    RouteConfigurations(Vec<RouteConfiguration>),
}

/// A response that no proxy should accept; its text is the NACK's message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidResponse {
    /// The type URL names no [`ResourceType`].
    #[error("unknown resource type {0:?}")]
    UnknownType(String),
    /// A resource carries no message.
    #[error("resource {index} ({name:?}) is empty")]
    Empty {
        /// Its position in the response.
        index: usize,
        /// Its name.
        name: String,
    },
    /// A resource of another type than the response's.
    #[error("resource {index} ({name:?}) is a {found} resource in a {expected} response")]
    WrongType {
        /// Its position in the response.
        index: usize,
        /// Its name.
        name: String,
        /// What it carries.
        found: ResourceType,
        /// The response's type.
        expected: ResourceType,
    },
    /// The resource's name differs from the name inside its message.
    #[error(
        "resource {index} is named {outer:?} but its {resource_type} message is named {inner:?}"
    )]
    NameMismatch {
        /// Its position in the response.
        index: usize,
        /// The resource's name.
        outer: String,
        /// The name inside the message.
        inner: String,
        /// The response's type.
        resource_type: ResourceType,
    },
    /// Two resources share a name (Envoy rejects duplicate clusters and listeners).
    #[error("duplicate {resource_type} resource {name:?}")]
    Duplicate {
        /// The name.
        name: String,
        /// The response's type.
        resource_type: ResourceType,
    },
    /// A message that is not a valid model value.
    #[error(transparent)]
    Invalid(#[from] InvalidResource),
}

// === impl Resources ===

impl Resources {
    /// Checks and unwraps the resources of a response of type `type_url`.
    pub fn from_response(
        type_url: &str,
        resources: Vec<v1::Resource>,
    ) -> Result<Self, InvalidResponse> {
        let resource_type = ResourceType::from_type_url(type_url)
            .ok_or_else(|| InvalidResponse::UnknownType(type_url.to_owned()))?;
        Ok(match resource_type {
            ResourceType::Secret => Self::Secrets(unwrap(resources)?),
            ResourceType::Cluster => Self::Clusters(unwrap(resources)?),
            ResourceType::ClusterLoadAssignment => Self::ClusterLoadAssignments(unwrap(resources)?),
            ResourceType::Listener => Self::Listeners(unwrap(resources)?),
            ResourceType::RouteConfiguration => Self::RouteConfigurations(unwrap(resources)?),
        })
    }

    /// Their type.
    pub fn resource_type(&self) -> ResourceType {
        match self {
            Self::Secrets(_) => ResourceType::Secret,
            Self::Clusters(_) => ResourceType::Cluster,
            Self::ClusterLoadAssignments(_) => ResourceType::ClusterLoadAssignment,
            Self::Listeners(_) => ResourceType::Listener,
            Self::RouteConfigurations(_) => ResourceType::RouteConfiguration,
        }
    }
}

/// Every resource as a `T`, checked.
fn unwrap<T: Wire>(resources: Vec<v1::Resource>) -> Result<Vec<T>, InvalidResponse> {
    let mut seen = HashSet::with_capacity(resources.len());
    let mut messages = Vec::with_capacity(resources.len());
    for (index, resource) in resources.into_iter().enumerate() {
        let outer = resource.name.clone();
        let message = T::Message::from_resource(resource).map_err(|found| match found {
            Some(found) => InvalidResponse::WrongType {
                index,
                name: outer.clone(),
                found,
                expected: T::Message::TYPE,
            },
            None => InvalidResponse::Empty {
                index,
                name: outer.clone(),
            },
        })?;
        if message.resource_name() != outer {
            return Err(InvalidResponse::NameMismatch {
                index,
                outer,
                inner: message.resource_name().to_owned(),
                resource_type: T::Message::TYPE,
            });
        }
        if !seen.insert(outer) {
            return Err(InvalidResponse::Duplicate {
                name: message.resource_name().to_owned(),
                resource_type: T::Message::TYPE,
            });
        }
        messages.push(T::from_message(message)?);
    }
    Ok(messages)
}

#[cfg(test)]
mod tests;
