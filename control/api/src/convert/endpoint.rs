//! Endpoints.

use std::net::{IpAddr, SocketAddr};

use meshlab_proxy_config::{ClusterLoadAssignment, Endpoint, EndpointAddress};

use super::{Invalid, each, to_u16};
use crate::v1;

pub(super) fn to_wire(assignment: ClusterLoadAssignment) -> v1::ClusterLoadAssignment {
    v1::ClusterLoadAssignment {
        cluster_name: assignment.cluster_name,
        endpoints: assignment
            .endpoints
            .into_iter()
            .map(|endpoint| {
                let (address, port) = match endpoint.address {
                    EndpointAddress::Socket(socket) => (socket.ip().to_string(), socket.port()),
                    EndpointAddress::Dns { host, port } => (host, port),
                };
                v1::LbEndpoint {
                    address,
                    port: port.into(),
                    labels: endpoint.labels,
                    load_balancing_weight: endpoint.weight,
                    service_account: endpoint.service_account,
                    has_sidecar: endpoint.has_sidecar,
                }
            })
            .collect(),
    }
}

pub(super) fn from_wire(
    message: v1::ClusterLoadAssignment,
) -> Result<ClusterLoadAssignment, Invalid> {
    Ok(ClusterLoadAssignment {
        cluster_name: message.cluster_name,
        endpoints: each(message.endpoints, "endpoints", |endpoint| {
            let port = to_u16(endpoint.port, "port")?;
            // An IP address is an address; anything else is a name to resolve.
            let address = match endpoint.address.parse::<IpAddr>() {
                Ok(ip) => EndpointAddress::Socket(SocketAddr::new(ip, port)),
                Err(_) if endpoint.address.is_empty() => return Err(Invalid::missing("address")),
                Err(_) => EndpointAddress::Dns {
                    host: endpoint.address,
                    port,
                },
            };
            Ok(Endpoint {
                address,
                labels: endpoint.labels,
                weight: endpoint.load_balancing_weight,
                service_account: endpoint.service_account,
                has_sidecar: endpoint.has_sidecar,
            })
        })?,
    })
}
