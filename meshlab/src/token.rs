//! The lab's API token on the user's side: `meshlab up` creates it, every command
//! sends it, `meshlab dashboard` hands it to the browser once.
//!
//! It lives in the user's config directory (`$XDG_CONFIG_HOME/meshlab/<lab>/token`,
//! else `~/.config/meshlab/<lab>/token`), readable by the user only (0600 in a 0700
//! directory): whoever can read it can drive the lab's control plane. The control
//! container gets it in its environment, and carries a label with its SHA-256 so
//! `meshlab up` can tell whether the running control plane knows this token.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

use anyhow::{Context, bail};
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

/// Where the token of `lab` is kept.
pub fn path(lab: &str) -> anyhow::Result<PathBuf> {
    Ok(config_dir()?.join(lab).join("token"))
}

/// meshlab's directory in the user's config directory.
pub fn config_dir() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").filter(|v| !v.is_empty()).context(
                "neither XDG_CONFIG_HOME nor HOME is set: meshlab cannot keep the lab's API token",
            )?;
            PathBuf::from(home).join(".config")
        }
    };
    Ok(base.join("meshlab"))
}

/// The token of `lab`, if `meshlab up` wrote one.
pub fn read(lab: &str) -> anyhow::Result<Option<String>> {
    let path = path(lab)?;
    match fs::read_to_string(&path) {
        Ok(token) => Ok(Some(token.trim().to_owned()).filter(|t| !t.is_empty())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => {
            Err(err).with_context(|| format!("cannot read the API token {}", path.display()))
        }
    }
}

/// The token of `lab`: the one kept, or a new one written with mode 0600.
pub fn ensure(lab: &str) -> anyhow::Result<String> {
    if let Some(token) = read(lab)? {
        return Ok(token);
    }
    let path = path(lab)?;
    let dir = path.parent().context("the token path has a directory")?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mut bytes = [0u8; 32];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        bail!("the system's random number generator failed: cannot make an API token");
    }
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create the API token {}", path.display()))?;
    file.write_all(token.as_bytes())
        .with_context(|| format!("cannot write the API token {}", path.display()))?;
    Ok(token)
}

/// Removes the token of `lab` (with `meshlab down --purge`).
pub fn remove(lab: &str) -> anyhow::Result<()> {
    let path = path(lab)?;
    match fs::remove_file(&path) {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                // Only when empty: the user may keep other files there.
                let _ = fs::remove_dir(dir);
            }
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// The SHA-256 of a token, hex: what the control container's label records.
pub fn fingerprint(token: &str) -> String {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
