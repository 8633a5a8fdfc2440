//! A lab as a whole: its naming scheme, whether it exists, and taking it down.
//!
//! All names are built here, so the scheme is one decision: the network is `<lab>`,
//! the state volume `<lab>-state`, containers `<lab>-<name>`. Lab names are limited
//! to what is safe in all of these and in host names.
//!
//! # Removing a lab, and which images go with it
//!
//! [`Docker::remove_lab`] removes every container and network labelled with the lab.
//! With `purge` it also removes the lab's volumes and, possibly, meshlab's images.
//! Images are not per lab: they are tagged by the binary's hash and shared by every
//! lab made from the same binary. So the rule is: **images go only when the last lab
//! goes** — when, after this lab's objects are removed, no container, network or
//! volume of any other lab remains. Then every image labelled
//! [`BINARY_SHA256`](crate::labels::BINARY_SHA256) that no container uses is removed;
//! the engine itself refuses to remove an image a container still uses (even a
//! stopped one, of any origin), and such images are kept. A lab being brought up
//! should therefore create its network ([`Docker::ensure_network`]) before it asks
//! for the image, so that a concurrent purge of another lab sees it.

use std::collections::BTreeSet;
use std::net::{IpAddr, TcpListener};

use bollard::query_parameters::{
    ListImagesOptions, ListNetworksOptions, ListVolumesOptions, RemoveImageOptions,
    RemoveVolumeOptions,
};
use futures_util::future::join_all;

use crate::docker::Docker;
use crate::error::{self, Object, RuntimeError};
use crate::labels;

/// The longest lab name: leaves room for `-<namespace>-<pod>` in 63-character names.
const MAX_LAB_NAME: usize = 32;

/// Networks every engine has; a lab's network is named after the lab.
const DOCKER_NETWORKS: [&str; 3] = ["bridge", "host", "none"];

/// What [`Docker::remove_lab`] removed, by name (images by tag, or id when untagged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// Containers, by name.
    pub containers: Vec<String>,
    /// Networks, by name.
    pub networks: Vec<String>,
    /// Volumes (only with `purge`).
    pub volumes: Vec<String>,
    /// Images (only with `purge`, and only with the last lab).
    pub images: Vec<String>,
}

impl Removed {
    /// Whether nothing was there to remove.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
            && self.networks.is_empty()
            && self.volumes.is_empty()
            && self.images.is_empty()
    }
}

/// Checks that `lab` can prefix Docker names and host names: 1 to 32 lowercase
/// letters, digits and `-`, starting and ending with a letter or digit, and not the
/// name of one of Docker's own networks (`bridge`, `host`, `none`).
pub fn validate_lab_name(lab: &str) -> Result<(), RuntimeError> {
    let reason = if lab.is_empty() {
        Some("it is empty")
    } else if lab.len() > MAX_LAB_NAME {
        Some("it is longer than 32 characters")
    } else if !lab
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Some("it may contain only lowercase letters, digits and '-'")
    } else if lab.starts_with('-') || lab.ends_with('-') {
        Some("it must start and end with a letter or digit")
    } else if DOCKER_NETWORKS.contains(&lab) {
        Some("it is the name of one of Docker's own networks")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(RuntimeError::InvalidLabName {
            lab: lab.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The lab's bridge network: `<lab>`.
pub fn network_name(lab: &str) -> String {
    lab.to_owned()
}

/// The lab's state volume: `<lab>-state`.
pub fn volume_name(lab: &str) -> String {
    format!("{lab}-state")
}

/// A container of the lab: `<lab>-<name>`.
pub fn container_name(lab: &str, name: &str) -> String {
    format!("{lab}-{name}")
}

/// Whether a TCP listener could bind `host_ip:port` right now: a preflight check
/// before publishing a port. It cannot see ports Docker reserves without a proxy
/// process (`userland-proxy: false`); starting the container then fails with
/// [`RuntimeError::PortInUse`].
pub fn port_free(host_ip: IpAddr, port: u16) -> bool {
    TcpListener::bind((host_ip, port)).is_ok()
}

impl Docker {
    /// The names of every lab with at least one container, network or volume.
    pub async fn labs(&self) -> Result<BTreeSet<String>, RuntimeError> {
        let mut labs = BTreeSet::new();
        let containers = self
            .client
            .list_containers(Some(bollard::query_parameters::ListContainersOptions {
                all: true,
                filters: Some(labels::has(labels::LAB)),
                ..Default::default()
            }))
            .await
            .map_err(|err| RuntimeError::engine("list containers", &err))?;
        labs.extend(
            containers
                .into_iter()
                .filter_map(|c| c.labels?.remove(labels::LAB)),
        );
        let networks = self
            .client
            .list_networks(Some(ListNetworksOptions {
                filters: Some(labels::has(labels::LAB)),
            }))
            .await
            .map_err(|err| RuntimeError::engine("list networks", &err))?;
        labs.extend(
            networks
                .into_iter()
                .filter_map(|n| n.labels?.remove(labels::LAB)),
        );
        let volumes = self
            .client
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(labels::has(labels::LAB)),
            }))
            .await
            .map_err(|err| RuntimeError::engine("list volumes", &err))?;
        labs.extend(
            volumes
                .volumes
                .unwrap_or_default()
                .into_iter()
                .filter_map(|mut v| v.labels.remove(labels::LAB)),
        );
        Ok(labs)
    }

    /// Whether the lab has any container, network or volume.
    pub async fn lab_exists(&self, lab: &str) -> Result<bool, RuntimeError> {
        validate_lab_name(lab)?;
        Ok(self.labs().await?.contains(lab))
    }

    /// Removes every container and network labelled with `lab`; with `purge`, its
    /// volumes too, and meshlab's images when this was the last lab (see the
    /// [module docs](self) for the rule). Removing a lab that does not exist removes
    /// nothing and succeeds.
    pub async fn remove_lab(&self, lab: &str, purge: bool) -> Result<Removed, RuntimeError> {
        validate_lab_name(lab)?;
        let mut removed = Removed::default();

        // The control plane first: its reconciler would otherwise keep creating
        // pods while they are being removed, and a container created meanwhile
        // would hold the network.
        for role in [Some(labels::ROLE_CONTROL), None] {
            let filter: Vec<(&str, &str)> = role.map(|r| (labels::ROLE, r)).into_iter().collect();
            let containers = self.list(lab, &filter).await?;
            let results = join_all(containers.iter().map(|c| self.remove(&c.id, true))).await;
            for (container, result) in containers.into_iter().zip(results) {
                match result {
                    Ok(()) | Err(RuntimeError::NotFound { .. }) => {
                        removed.containers.push(container.name);
                    }
                    Err(err) => return Err(err),
                }
            }
        }

        let networks = self
            .client
            .list_networks(Some(ListNetworksOptions {
                filters: Some(labels::filters([(labels::LAB, lab)])),
            }))
            .await
            .map_err(|err| RuntimeError::engine("list networks", &err))?;
        for network in networks {
            let (Some(id), Some(name)) = (network.id, network.name) else {
                continue;
            };
            match self.client.remove_network(&id).await {
                Ok(()) => removed.networks.push(name),
                Err(err) if error::status(&err) == Some(404) => removed.networks.push(name),
                Err(err) => {
                    return Err(RuntimeError::engine(format!("remove network {name}"), &err));
                }
            }
        }

        if !purge {
            return Ok(removed);
        }
        let volumes = self
            .client
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(labels::filters([(labels::LAB, lab)])),
            }))
            .await
            .map_err(|err| RuntimeError::engine("list volumes", &err))?;
        for volume in volumes.volumes.unwrap_or_default() {
            match self
                .client
                .remove_volume(&volume.name, None::<RemoveVolumeOptions>)
                .await
            {
                Ok(()) => removed.volumes.push(volume.name),
                Err(err) if error::status(&err) == Some(404) => removed.volumes.push(volume.name),
                Err(err) => {
                    return Err(RuntimeError::engine(
                        format!("remove volume {}", volume.name),
                        &err,
                    ));
                }
            }
        }
        if self.labs().await?.is_empty() {
            removed.images = self.remove_unused_images().await?;
        }
        Ok(removed)
    }

    /// Removes every meshlab image no container uses; returns what it removed.
    async fn remove_unused_images(&self) -> Result<Vec<String>, RuntimeError> {
        let images = self
            .client
            .list_images(Some(ListImagesOptions {
                filters: Some(labels::has(labels::BINARY_SHA256)),
                ..Default::default()
            }))
            .await
            .map_err(|err| RuntimeError::engine("list images", &err))?;
        let mut removed = Vec::new();
        for image in images {
            // By tag, so an image tagged twice is untagged rather than refused; an
            // untagged (superseded) image by id.
            let tags: Vec<String> = image
                .repo_tags
                .into_iter()
                .filter(|t| t != "<none>:<none>")
                .collect();
            let references = if tags.is_empty() {
                vec![image.id]
            } else {
                tags
            };
            for reference in references {
                let options = RemoveImageOptions {
                    force: false,
                    noprune: false,
                    platforms: None,
                };
                match self
                    .client
                    .remove_image(&reference, Some(options), None)
                    .await
                {
                    Ok(_) => removed.push(reference),
                    // 409: a container still uses it; 404: someone else removed it.
                    Err(err) if matches!(error::status(&err), Some(404 | 409)) => {}
                    Err(err) => {
                        return Err(RuntimeError::engine(
                            format!("remove {} {reference}", Object::Image),
                            &err,
                        ));
                    }
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests;
