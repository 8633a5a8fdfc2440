//! The lab's state volume, `<lab>-state`, where the control plane keeps applied
//! resources so that they survive a restart and `meshlab down` (but not `--purge`).

use std::collections::HashMap;

use bollard::models::VolumeCreateRequest;

use crate::docker::Docker;
use crate::error::{Object, RuntimeError};
use crate::lab::{validate_lab_name, volume_name};
use crate::labels;

impl Docker {
    /// Returns the name of the lab's state volume, creating it if needed. A volume of
    /// that name without the lab's label is an error, never adopted.
    pub async fn ensure_volume(&self, lab: &str) -> Result<String, RuntimeError> {
        validate_lab_name(lab)?;
        let name = volume_name(lab);
        // Creating a volume that exists returns it unchanged, so this is race-free.
        let request = VolumeCreateRequest {
            name: Some(name.clone()),
            labels: Some(HashMap::from([(labels::LAB.to_owned(), lab.to_owned())])),
            ..Default::default()
        };
        let volume = self
            .client
            .create_volume(request)
            .await
            .map_err(|err| RuntimeError::engine(format!("create volume {name}"), &err))?;
        let owner = volume.labels.get(labels::LAB).cloned();
        if owner.as_deref() != Some(lab) {
            return Err(RuntimeError::NameTaken {
                object: Object::Volume,
                name,
                lab: lab.to_owned(),
                owner,
            });
        }
        Ok(name)
    }
}
