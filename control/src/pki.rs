//! The lab's "public" certificate authority: the one that signs the simulated
//! internet's certificates (`https://www.google.com`, `https://httpbin.org`, …).
//!
//! Every container of the lab trusts it — its certificate is the lab's system CA
//! bundle — so HTTPS to the simulated hosts works as it does to the real ones, and
//! TLS origination in the sidecar can verify them. It is not the mesh's identity CA
//! (that one issues SPIFFE certificates to sidecars) and it signs nothing else.
//!
//! The key is kept in the state volume with mode 0600 and is never served by any API.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// The public CA's certificate file, in the PKI directory.
pub(crate) const CA_CERT: &str = "public-ca.crt";
const CA_KEY: &str = "public-ca.key";

/// Why the lab's CA could not be loaded, created or used.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading or writing a file failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
    /// A stored key or certificate is unreadable.
    #[error(
        "{path} is not a valid {what}: {reason} (hint: remove the lab's state with `meshlab down --purge`)"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// A key or a certificate.
        what: &'static str,
        /// The parser's reason.
        reason: String,
    },
    /// Generating or signing failed.
    #[error("cannot make a certificate: {0}")]
    Sign(#[from] rcgen::Error),
}

/// A server certificate chain and its private key, both PEM.
#[derive(Clone, Debug)]
pub struct ServerCert {
    /// The leaf followed by the CA certificate.
    pub chain_pem: String,
    /// The leaf's private key (PKCS#8).
    pub key_pem: String,
}

/// The lab's public CA.
pub struct PublicCa {
    cert_pem: String,
    key: KeyPair,
}

impl std::fmt::Debug for PublicCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicCa").finish_non_exhaustive()
    }
}

impl PublicCa {
    /// Loads the CA kept in `dir`, or creates and stores a new one.
    pub fn load_or_create(dir: &Path) -> Result<Self, PkiError> {
        let cert_path = dir.join(CA_CERT);
        let key_path = dir.join(CA_KEY);
        if cert_path.exists() && key_path.exists() {
            let read = |path: &Path| {
                fs::read_to_string(path).map_err(|source| PkiError::Io {
                    action: "read",
                    path: path.to_owned(),
                    source,
                })
            };
            let cert_pem = read(&cert_path)?;
            let key = KeyPair::from_pem(&read(&key_path)?).map_err(|e| PkiError::Corrupt {
                path: key_path.clone(),
                what: "private key",
                reason: e.to_string(),
            })?;
            if !cert_pem.contains("BEGIN CERTIFICATE") {
                return Err(PkiError::Corrupt {
                    path: cert_path,
                    what: "certificate",
                    reason: "no PEM certificate found".to_owned(),
                });
            }
            return Ok(PublicCa { cert_pem, key });
        }
        let key = KeyPair::generate()?;
        let cert_pem = ca_params().self_signed(&key)?.pem();
        fs::create_dir_all(dir).map_err(|source| PkiError::Io {
            action: "create",
            path: dir.to_owned(),
            source,
        })?;
        write_private(&key_path, key.serialize_pem().as_bytes())?;
        write_file(&cert_path, cert_pem.as_bytes(), 0o644)?;
        Ok(PublicCa { cert_pem, key })
    }

    /// The CA certificate (PEM): the lab's system trust bundle.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A new server certificate for `hosts`, signed by this CA.
    pub fn issue_server(&self, hosts: &[&str]) -> Result<ServerCert, PkiError> {
        let key = KeyPair::generate()?;
        let mut params =
            CertificateParams::new(hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>())?;
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CommonName,
            hosts.first().copied().unwrap_or("meshlab"),
        );
        params.distinguished_name = name;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let issuer = Issuer::new(ca_params(), &self.key);
        let leaf = params.signed_by(&key, &issuer)?;
        Ok(ServerCert {
            chain_pem: format!("{}{}", leaf.pem(), self.cert_pem),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The CA's parameters; deterministic, so that a reloaded key signs as the stored
/// certificate's subject.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "meshlab");
    name.push(DnType::CommonName, "meshlab simulated internet CA");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    write_file(path, contents, 0o600)
}

pub(crate) fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        action: "write",
        path: path.to_owned(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests;
