//! The one image every container runs: the meshlab binary, a few files that make a
//! container behave, and nothing else.
//!
//! No registry, no pull (DESIGN.md, "Runtime contracts"). The image's file system is a
//! tar archive made in memory and *imported* (`POST /images/create?fromSrc=-`), with
//! its config (`PATH`, the default command, a label) applied from Dockerfile-style
//! `changes`. An import rather than a `FROM scratch` build: a build sends the same
//! archive as its context and then copies the binary once more into a layer, while
//! an import unpacks it once, and needs neither BuildKit nor a Dockerfile.
//!
//! The tag is `meshlab:<first 12 hex digits of the binary's SHA-256>`, and the full
//! hash is the image's [`BINARY_SHA256`](crate::labels::BINARY_SHA256) label: an image
//! is reused while the binary is unchanged, and every lab made from the same binary
//! shares it (see [`crate::lab`] for when images are removed).
//!
//! The binary is multi-call by `argv[0]`, so `/usr/bin/curl`, `/usr/bin/fortio` and
//! `/bin/sleep` are symlinks to it: Istio's samples run `curl …`, `fortio load …` and
//! `/bin/sleep infinity` unchanged.

use std::path::Path;
use std::time::{Instant, SystemTime};

use bollard::query_parameters::CreateImageOptions;
use bytes::Bytes;
use futures_util::TryStreamExt;

use crate::archive::Tar;
use crate::docker::Docker;
use crate::error::{self, Object, RuntimeError};
use crate::labels;

/// The repository meshlab's images are tagged in.
pub const REPOSITORY: &str = "meshlab";
/// Where the binary lives in the image; the default command.
pub const BINARY_PATH: &str = "/usr/local/bin/meshlab";
/// Where the control plane keeps its state (the lab's volume is mounted here).
pub const STATE_DIR: &str = "/var/lib/meshlab";
/// Where containers find trusted CA certificates (uploaded per container).
pub const CA_CERTS_DIR: &str = "/etc/ssl/certs";
/// The user id the sidecar runs as, reserved in the image's `/etc/passwd` as Istio does.
pub const PROXY_UID: u32 = 1337;

/// An image ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `meshlab:<12 hex digits>`, what [`ContainerSpec::image`](crate::ContainerSpec) takes.
    pub tag: String,
    /// The engine's image id, `sha256:…`.
    pub id: String,
    /// Whether this call built it (`false`: it was already there).
    pub built: bool,
}

impl Docker {
    /// Returns the image for `binary`, importing it first unless an image of the same
    /// binary is already there. Pulls nothing.
    pub async fn ensure_image(&self, binary: &Path) -> Result<Image, RuntimeError> {
        let read_error = |source| RuntimeError::ReadBinary {
            path: binary.to_owned(),
            source,
        };
        let contents = Bytes::from(tokio::fs::read(binary).await.map_err(read_error)?);
        check_static(&contents).map_err(|reason| RuntimeError::UnusableBinary {
            path: binary.to_owned(),
            reason,
        })?;
        let hashed = contents.clone();
        let sha256 = tokio::task::spawn_blocking(move || hex(&hashed))
            .await
            .map_err(|err| read_error(std::io::Error::other(err)))?;
        let tag = format!("{REPOSITORY}:{}", &sha256[..12]);

        match self.client.inspect_image(&tag).await {
            Ok(found)
                if found
                    .config
                    .as_ref()
                    .and_then(|c| c.labels.as_ref())
                    .and_then(|l| l.get(labels::BINARY_SHA256))
                    == Some(&sha256) =>
            {
                return Ok(Image {
                    tag,
                    id: found.id.unwrap_or_default(),
                    built: false,
                });
            }
            // Absent, or a tag we did not make: (re)import, which moves the tag.
            Ok(_) => {}
            Err(err) if error::status(&err) == Some(404) => {}
            Err(err) => {
                return Err(RuntimeError::engine(format!("inspect image {tag}"), &err));
            }
        }

        let started = Instant::now();
        let chunks =
            rootfs(contents, SystemTime::now()).map_err(|reason| RuntimeError::Engine {
                action: format!("make the file system of image {tag}"),
                detail: reason.to_owned(),
            })?;
        let options = CreateImageOptions {
            from_src: Some("-".to_owned()),
            repo: Some(REPOSITORY.to_owned()),
            tag: Some(sha256[..12].to_owned()),
            message: Some(format!("meshlab binary sha256:{sha256}")),
            changes: vec![
                "ENV PATH=/usr/local/bin:/usr/bin:/bin".to_owned(),
                format!("CMD [\"{BINARY_PATH}\"]"),
                format!("LABEL {}={sha256}", labels::BINARY_SHA256),
            ],
            ..Default::default()
        };
        let body = bollard::body_stream(futures_util::stream::iter(chunks));
        self.client
            .create_image(Some(options), Some(body), None)
            .try_for_each(|_| async { Ok(()) })
            .await
            .map_err(|err| RuntimeError::engine(format!("import image {tag}"), &err))?;
        let id = self
            .client
            .inspect_image(&tag)
            .await
            .map_err(|err| match error::status(&err) {
                Some(404) => RuntimeError::NotFound {
                    object: Object::Image,
                    name: tag.clone(),
                },
                _ => RuntimeError::engine(format!("inspect image {tag}"), &err),
            })?
            .id
            .unwrap_or_default();
        tracing::debug!(%tag, elapsed = ?started.elapsed(), "imported image");
        Ok(Image {
            tag,
            id,
            built: true,
        })
    }
}

/// The image's file system as tar chunks, the binary's contents uncopied.
fn rootfs(binary: Bytes, now: SystemTime) -> Result<Vec<Bytes>, &'static str> {
    let mtime = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut tar = Tar::new(mtime);
    for dir in [
        "/bin",
        "/etc",
        "/etc/ssl",
        CA_CERTS_DIR,
        "/usr",
        "/usr/bin",
        "/usr/local",
        "/usr/local/bin",
        "/var",
        "/var/lib",
        STATE_DIR,
    ] {
        tar.dir(dir, 0o755)?;
    }
    tar.dir("/root", 0o700)?;
    tar.dir("/tmp", 0o1777)?;
    tar.file(BINARY_PATH, 0o755, binary)?;
    tar.symlink("/usr/bin/curl", BINARY_PATH)?;
    tar.symlink("/usr/bin/fortio", BINARY_PATH)?;
    tar.symlink("/bin/sleep", BINARY_PATH)?;
    let passwd = format!(
        "root:x:0:0:root:/root:/sbin/nologin\n\
         istio-proxy:x:{PROXY_UID}:{PROXY_UID}:istio-proxy:/tmp:/sbin/nologin\n\
         nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    );
    let group = format!("root:x:0:\nistio-proxy:x:{PROXY_UID}:\nnogroup:x:65534:\n");
    tar.file("/etc/passwd", 0o644, Bytes::from(passwd))?;
    tar.file("/etc/group", 0o644, Bytes::from(group))?;
    // A static glibc resolves names through these two sources only when told to.
    tar.file(
        "/etc/nsswitch.conf",
        0o644,
        Bytes::from_static(b"hosts: files dns\n"),
    )?;
    Ok(tar.finish())
}

/// Checks that `binary` is an ELF executable that needs no dynamic loader: the image
/// has no libraries, and a dynamic binary fails there with a baffling "no such file".
fn check_static(binary: &[u8]) -> Result<(), &'static str> {
    const PT_INTERP: u32 = 3;
    let not_elf = "it is not a 64-bit little-endian ELF executable";
    if binary.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        return Err(not_elf);
    }
    let read_u16 = |at: usize| -> Option<usize> {
        Some(usize::from(u16::from_le_bytes(
            binary.get(at..at + 2)?.try_into().ok()?,
        )))
    };
    let read_u64 = |at: usize| -> Option<usize> {
        usize::try_from(u64::from_le_bytes(binary.get(at..at + 8)?.try_into().ok()?)).ok()
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) =
        (read_u64(0x20), read_u16(0x36), read_u16(0x38))
    else {
        return Err(not_elf);
    };
    for index in 0..phnum {
        let at = phoff + index * phentsize;
        let Some(kind) = binary.get(at..at + 4) else {
            return Err(not_elf);
        };
        if u32::from_le_bytes([kind[0], kind[1], kind[2], kind[3]]) == PT_INTERP {
            return Err("it is dynamically linked and the image has no libraries \
                 (hint: build it with the workspace's .cargo/config.toml, which links statically)");
        }
    }
    Ok(())
}

/// The SHA-256 of `data` in lowercase hex.
fn hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests;
