//! Fetching the JSON Web Key Sets that RequestAuthentications name by `jwksUri`.
//!
//! Istio's istiod fetches `jwksUri` itself and inlines the keys into the proxies'
//! configuration, so proxies never reach the issuer; meshlab's control plane does the
//! same. The fetch goes out from the control container onto the lab network, where
//! the simulated internet answers for hosts such as `raw.githubusercontent.com`
//! (trusted through the lab's public CA, as every lab client trusts it).
//!
//! Each URI is fetched when a RequestAuthentication first names it; a failure is
//! kept (the translation then gives the provider no keys, so tokens fail while
//! requests without one pass, as with Istio's fake key) and retried every
//! [`RETRY`]. Successful fetches are kept for the life of the control plane (Istio
//! refreshes every 20 minutes; the simulated keys never change).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::resource::Resource;
use crate::store::Snapshot;

/// How long to wait before fetching a failed URI again.
pub const RETRY: Duration = Duration::from_secs(5);

/// Fetched key sets by URI, or why the fetch failed.
pub type KeySets = Arc<BTreeMap<String, Result<String, String>>>;

/// Every `jwksUri` the snapshot's RequestAuthentications name without inline keys.
pub fn uris(snapshot: &Snapshot) -> BTreeSet<String> {
    snapshot
        .iter()
        .filter_map(|(_, r)| match r.as_ref() {
            Resource::RequestAuthentication(ra) => Some(ra),
            _ => None,
        })
        .flat_map(|ra| &ra.spec.jwt_rules)
        .filter(|rule| rule.jwks.is_empty() && !rule.jwks_uri.is_empty())
        .map(|rule| rule.jwks_uri.clone())
        .collect()
}

/// Keeps the key sets of the store's RequestAuthentications fetched; `ca_file` is
/// the PEM bundle that HTTPS servers are verified against.
pub fn watch_key_sets(
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    ca_file: PathBuf,
) -> watch::Receiver<KeySets> {
    let (sender, receiver) = watch::channel(KeySets::default());
    tokio::spawn(async move {
        loop {
            let wanted = uris(&snapshots.borrow_and_update());
            let current = sender.borrow().clone();
            let missing: Vec<String> = wanted
                .iter()
                .filter(|uri| !matches!(current.get(*uri), Some(Ok(_))))
                .cloned()
                .collect();
            if !missing.is_empty() {
                let mut next = (*current).clone();
                for uri in &missing {
                    let result = fetch(uri, &ca_file).await;
                    match &result {
                        Ok(_) => tracing::info!(%uri, "fetched JWKS"),
                        Err(err) => {
                            tracing::warn!(%uri, %err, "cannot fetch JWKS; tokens for this issuer will fail");
                        }
                    }
                    next.insert(uri.clone(), result);
                }
                if next != *current {
                    sender.send_replace(Arc::new(next));
                }
            }
            let failed = sender
                .borrow()
                .iter()
                .any(|(uri, r)| r.is_err() && wanted.contains(uri));
            tokio::select! {
                changed = snapshots.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(RETRY), if failed => {}
            }
        }
    });
    receiver
}

/// GETs `uri` with meshlab's curl; the body must be a JSON object with `keys`.
async fn fetch(uri: &str, ca_file: &std::path::Path) -> Result<String, String> {
    let args: Vec<OsString> = ["curl", "-sS", "--fail", "--max-time", "5", "--cacert"]
        .into_iter()
        .map(OsString::from)
        .chain([ca_file.as_os_str().to_owned(), OsString::from(uri)])
        .collect();
    let mut body = Vec::new();
    let mut errors = Vec::new();
    let code = meshlab_apps::curl::run(args, &mut body, &mut errors).await;
    if code != 0 {
        return Err(format!(
            "curl exit code {code}: {}",
            String::from_utf8_lossy(&errors).trim()
        ));
    }
    let text = String::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("the body is not JSON: {e}"))?;
    if !json.get("keys").is_some_and(serde_json::Value::is_array) {
        return Err("the body is not a JSON Web Key Set (no \"keys\" array)".to_owned());
    }
    Ok(text.trim().to_owned())
}
