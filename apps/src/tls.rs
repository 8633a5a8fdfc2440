//! TLS client configuration shared by the apps (curl, and details calling an external
//! HTTPS host).
//!
//! Trust follows curl's habits inside a container: an explicit CA file wins, then
//! `$SSL_CERT_FILE`, then the distribution bundle. meshlab images are `FROM scratch`,
//! so the bundle is usually absent; that yields an empty trust store (every server
//! certificate is then unknown) rather than an error, exactly like a curl without CA
//! certificates. The workspace uses one crypto provider, ring, named explicitly here
//! so a stray feature elsewhere can never switch it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Where distributions keep the CA bundle (Debian, Ubuntu, Alpine).
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The environment variable that names a CA bundle, as OpenSSL and curl read it.
const CERT_FILE_ENV: &str = "SSL_CERT_FILE";

/// A client certificate chain and its private key, both PEM (curl's `--cert`/`--key`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIdentity<'a> {
    /// PEM file with the certificate chain, leaf first.
    pub(crate) cert: &'a Path,
    /// PEM file with the private key; `None` reads the key from `cert` too.
    pub(crate) key: Option<&'a Path>,
}

/// Why a TLS client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    /// The CA bundle could not be read.
    #[error("cannot read CA bundle {}", path.display())]
    ReadCa {
        /// The bundle's path.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },

    /// The CA bundle is not valid PEM.
    #[error("invalid PEM in CA bundle {}", path.display())]
    PemCa {
        /// The bundle's path.
        path: PathBuf,
        /// What the PEM parser found wrong.
        #[source]
        source: pem::Error,
    },

    /// An explicitly named CA bundle holds no usable certificate.
    #[error("no usable CA certificate in {}", path.display())]
    NoCa {
        /// The bundle's path.
        path: PathBuf,
    },

    /// The client certificate or key file could not be read.
    #[error("cannot read {}", path.display())]
    ReadIdentity {
        /// The file's path.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },

    /// The client certificate or key file is not valid PEM, or lacks what it should hold.
    #[error("no usable {what} in {}", path.display())]
    PemIdentity {
        /// The file's path.
        path: PathBuf,
        /// "certificate" or "private key".
        what: &'static str,
        /// What the PEM parser found wrong.
        #[source]
        source: pem::Error,
    },

    /// rustls refused the client certificate and key, e.g. because they do not match.
    #[error("client certificate and key rejected")]
    Identity(#[source] rustls::Error),

    /// rustls refused the protocol versions (a build without TLS 1.2 support).
    #[error("tls configuration rejected")]
    Config(#[source] rustls::Error),
}

impl TlsError {
    /// Whether the error concerns the client's own certificate rather than trust roots.
    pub(crate) fn is_client_identity(&self) -> bool {
        matches!(
            self,
            Self::ReadIdentity { .. } | Self::PemIdentity { .. } | Self::Identity(_)
        )
    }
}

/// A client configuration for TLS 1.2 and 1.3 with the ring provider.
///
/// Roots come from `ca_file`, else `$SSL_CERT_FILE`, else the system bundle (an
/// absent system bundle means no roots). With `insecure` (curl's `-k`) any server
/// certificate is accepted, though handshake signatures are still checked. `alpn`
/// lists protocols in preference order, e.g. `[b"h2", b"http/1.1"]`.
pub(crate) fn client_config(
    ca_file: Option<&Path>,
    insecure: bool,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, TlsError> {
    client_config_with_identity(ca_file, insecure, alpn, None)
}

/// [`client_config`], presenting a client certificate when the server asks for one.
pub(crate) fn client_config_with_identity(
    ca_file: Option<&Path>,
    insecure: bool,
    alpn: &[&[u8]],
    identity: Option<ClientIdentity<'_>>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?;
    let builder = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert { provider }))
    } else {
        builder.with_root_certificates(load_roots(ca_file)?)
    };
    let mut config = match identity {
        Some(identity) => {
            let (chain, key) = load_identity(identity)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(TlsError::Identity)?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Reads the trust roots, choosing the file as described on [`client_config`].
fn load_roots(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let from_env = std::env::var_os(CERT_FILE_ENV).filter(|v| !v.is_empty());
    let (path, required) = match (ca_file, from_env) {
        (Some(path), _) => (path.to_path_buf(), true),
        (None, Some(env)) => (PathBuf::from(env), true),
        (None, None) => (PathBuf::from(SYSTEM_BUNDLE), false),
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if !required && e.kind() == io::ErrorKind::NotFound => {
            return Ok(RootCertStore::empty());
        }
        Err(source) => return Err(TlsError::ReadCa { path, source }),
    };
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::PemCa {
            path: path.clone(),
            source,
        })?;
    let mut roots = RootCertStore::empty();
    // Like OpenSSL, skip certificates webpki cannot use instead of failing the bundle.
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 && required {
        return Err(TlsError::NoCa { path });
    }
    Ok(roots)
}

/// Reads a client certificate chain and its key.
fn load_identity(
    identity: ClientIdentity<'_>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::ReadIdentity {
            path: path.to_path_buf(),
            source,
        })
    };
    let cert_pem = read(identity.cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .and_then(|chain| {
            if chain.is_empty() {
                Err(pem::Error::NoItemsFound)
            } else {
                Ok(chain)
            }
        })
        .map_err(|source| TlsError::PemIdentity {
            path: identity.cert.to_path_buf(),
            what: "certificate",
            source,
        })?;
    let key_path = identity.key.unwrap_or(identity.cert);
    let key_pem = if identity.key.is_some() {
        read(key_path)?
    } else {
        cert_pem
    };
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|source| TlsError::PemIdentity {
        path: key_path.to_path_buf(),
        what: "private key",
        source,
    })?;
    Ok((chain, key))
}

/// curl's `-k`: trusts whatever certificate the server shows.
///
/// Only the certificate's trust is skipped. The handshake signatures are still
/// verified, so the peer must hold the key of the certificate it presents.
#[derive(Debug)]
struct AcceptAnyServerCert {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
