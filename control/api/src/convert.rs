//! The shared proxy model (`meshlab-proxy-config`, `meshlab-proxy-route`) to and from
//! the wire, in one place so the two directions stay inverse.
//!
//! The control plane's generators produce model values; the discovery server turns
//! them into messages with [`Wire::into_message`]. The proxy turns received messages
//! back with [`Wire::from_message`], which checks what the wire cannot (a regex that
//! does not compile, a status above 65535, an unknown enum value) and says where:
//! `RDS "9080": virtual_hosts[0].routes[1].match.safe_regex: invalid regex …`. That
//! text is what the proxy's NACK carries.
//!
//! Every model value survives the round trip unchanged, except durations, which the
//! wire carries in whole milliseconds (Istio rejects finer ones anyway).

mod authz;
mod cluster;
mod endpoint;
mod listener;
mod route;
mod secret;

use std::{borrow::Cow, fmt, time::Duration};

use crate::{ResourceType, TypedResource, v1};

/// A model type that travels as one resource message.
pub trait Wire: Sized {
    /// The message it travels as.
    type Message: TypedResource;

    /// The message for this value.
    fn into_message(self) -> Self::Message;

    /// The value a message describes, checked.
    fn from_message(message: Self::Message) -> Result<Self, InvalidResource>;
}

/// A resource message that does not describe a valid model value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct InvalidResource {
    /// The resource's type.
    pub resource_type: ResourceType,
    /// The resource's name.
    pub name: String,
    /// Where in the message, e.g. `virtual_hosts[0].routes[1].match`; empty for the
    /// message itself.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for InvalidResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}: ", self.resource_type, self.name)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.problem)
    }
}

/// A problem found while converting, with the path to it (innermost segment first).
#[derive(Debug)]
struct Invalid {
    path: Vec<Cow<'static, str>>,
    problem: String,
}

impl Invalid {
    fn new(problem: impl Into<String>) -> Self {
        Self {
            path: Vec::new(),
            problem: problem.into(),
        }
    }

    /// A required field or oneof that is absent.
    fn missing(field: &'static str) -> Self {
        Self::new("is required").at(field)
    }

    fn at(mut self, segment: impl Into<Cow<'static, str>>) -> Self {
        self.path.push(segment.into());
        self
    }

    fn into_resource(self, resource_type: ResourceType, name: String) -> InvalidResource {
        let field = self
            .path
            .iter()
            .rev()
            .map(AsRef::as_ref)
            .collect::<Vec<&str>>()
            .join(".");
        InvalidResource {
            resource_type,
            name,
            field,
            problem: self.problem,
        }
    }
}

/// Adds a path segment to an error.
trait At<T> {
    fn at(self, segment: impl Into<Cow<'static, str>>) -> Result<T, Invalid>;
}

impl<T> At<T> for Result<T, Invalid> {
    fn at(self, segment: impl Into<Cow<'static, str>>) -> Result<T, Invalid> {
        self.map_err(|invalid| invalid.at(segment))
    }
}

/// Converts every item, naming the failing one `field[index]`.
fn each<T, U>(
    items: Vec<T>,
    field: &'static str,
    mut convert: impl FnMut(T) -> Result<U, Invalid>,
) -> Result<Vec<U>, Invalid> {
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| convert(item).at(format!("{field}[{index}]")))
        .collect()
}

/// The value of a required message field.
fn required<T>(value: Option<T>, field: &'static str) -> Result<T, Invalid> {
    value.ok_or_else(|| Invalid::missing(field))
}

/// Whole milliseconds, saturating.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn from_millis(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// A `uint32` that must fit a `u16` (ports, HTTP statuses).
fn fit_u16(value: u32) -> Result<u16, Invalid> {
    u16::try_from(value).map_err(|_| Invalid::new(format!("{value} is larger than 65535")))
}

/// [`fit_u16`] for a named field.
fn to_u16(value: u32, field: &'static str) -> Result<u16, Invalid> {
    fit_u16(value).at(field)
}

/// A proto3 enum field's value, known to this build.
fn known<E: TryFrom<i32>>(value: i32, field: &'static str) -> Result<E, Invalid> {
    E::try_from(value).map_err(|_| Invalid::new(format!("unknown value {value}")).at(field))
}

/// Implements [`Wire`] for a model type with a pair of conversion functions.
macro_rules! wire {
    ($model:ty, $message:ty, $to:path, $from:path) => {
        impl Wire for $model {
            type Message = $message;

            fn into_message(self) -> $message {
                $to(self)
            }

            fn from_message(message: $message) -> Result<Self, InvalidResource> {
                let name = <$message as TypedResource>::resource_name(&message).to_owned();
                $from(message).map_err(|invalid| {
                    invalid.into_resource(<$message as TypedResource>::TYPE, name)
                })
            }
        }
    };
}

wire!(
    meshlab_proxy_config::Cluster,
    v1::Cluster,
    cluster::to_wire,
    cluster::from_wire
);
wire!(
    meshlab_proxy_config::ClusterLoadAssignment,
    v1::ClusterLoadAssignment,
    endpoint::to_wire,
    endpoint::from_wire
);
wire!(
    meshlab_proxy_config::Listener,
    v1::Listener,
    listener::to_wire,
    listener::from_wire
);
wire!(
    meshlab_proxy_config::Secret,
    v1::Secret,
    secret::to_wire,
    secret::from_wire
);
wire!(
    meshlab_proxy_config::RouteConfiguration,
    v1::RouteConfiguration,
    route::to_wire,
    route::from_wire
);

#[cfg(test)]
mod tests;
