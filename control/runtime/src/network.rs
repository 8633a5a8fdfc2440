//! The lab's network: one user-defined bridge named after the lab.
//!
//! A user-defined bridge gives every container Docker's embedded DNS (127.0.0.11), so
//! network aliases such as `reviews.default.svc.cluster.local` resolve. It is a
//! normal bridge, not `--internal`: on internal networks the embedded DNS stalls for
//! 10–20 s on names it must forward, which would make every lookup of a simulated
//! internet host crawl. Those hosts are containers on this network, found by alias
//! before the embedded DNS asks any outside name server, so the lab's traffic stays on
//! the machine without `--internal`.

use std::collections::HashMap;
use std::net::IpAddr;

use bollard::models::{NetworkCreateRequest, NetworkInspect};

use crate::docker::Docker;
use crate::error::{self, Object, RuntimeError};
use crate::lab::{network_name, validate_lab_name};
use crate::labels;

/// The lab's network as the engine set it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// Its name, the lab's name.
    pub name: String,
    /// Its id.
    pub id: String,
    /// Its IPv4 subnet, e.g. `172.18.0.0/16` (chosen by the engine).
    pub subnet: String,
    /// The bridge's address on it: the host, as containers see it.
    pub gateway: IpAddr,
}

impl Docker {
    /// Returns the lab's network, creating it if needed. A network of that name
    /// without the lab's label is an error, never adopted.
    ///
    /// Two concurrent first calls for one lab may create two networks of the same name
    /// on engines older than API 1.44; the CLI creates a lab's network once.
    pub async fn ensure_network(&self, lab: &str) -> Result<Network, RuntimeError> {
        validate_lab_name(lab)?;
        let name = network_name(lab);
        let network = match self.client.inspect_network(&name, None).await {
            Ok(found) => found,
            Err(err) if error::status(&err) == Some(404) => {
                let request = NetworkCreateRequest {
                    name: name.clone(),
                    driver: Some("bridge".to_owned()),
                    labels: Some(HashMap::from([(labels::LAB.to_owned(), lab.to_owned())])),
                    ..Default::default()
                };
                match self.client.create_network(request).await {
                    Ok(_) => {}
                    // Created meanwhile by someone else: the checks below decide.
                    Err(err) if error::status(&err) == Some(409) => {}
                    Err(err) => {
                        return Err(RuntimeError::engine(format!("create network {name}"), &err));
                    }
                }
                self.client
                    .inspect_network(&name, None)
                    .await
                    .map_err(|err| RuntimeError::engine(format!("inspect network {name}"), &err))?
            }
            Err(err) => {
                return Err(RuntimeError::engine(
                    format!("inspect network {name}"),
                    &err,
                ));
            }
        };
        describe(lab, &name, network)
    }
}

fn describe(lab: &str, name: &str, network: NetworkInspect) -> Result<Network, RuntimeError> {
    let owner = network
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::LAB))
        .cloned();
    if owner.as_deref() != Some(lab) {
        return Err(RuntimeError::NameTaken {
            object: Object::Network,
            name: name.to_owned(),
            lab: lab.to_owned(),
            owner,
        });
    }
    let ipv4 = network
        .ipam
        .and_then(|ipam| ipam.config)
        .unwrap_or_default()
        .into_iter()
        .find_map(|config| {
            let gateway: IpAddr = config.gateway?.parse().ok()?;
            gateway.is_ipv4().then_some((config.subnet?, gateway))
        });
    let Some((subnet, gateway)) = ipv4 else {
        return Err(RuntimeError::Engine {
            action: format!("use network {name}"),
            detail: "it has no IPv4 subnet and gateway (hint: remove it with \
                     `docker network rm`, and meshlab creates it again)"
                .to_owned(),
        });
    };
    Ok(Network {
        name: name.to_owned(),
        id: network.id.unwrap_or_default(),
        subnet,
        gateway,
    })
}
