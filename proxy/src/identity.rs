//! The proxy's mesh identity: its SPIFFE certificate, the mesh's root, and the TLS
//! set-ups of mesh mTLS on both sides.
//!
//! As Istio's sidecar (pilot-agent's SDS server feeding Envoy):
//! - the private key is made in memory (ECDSA P-256) and never written anywhere;
//!   a CSR naming only `spiffe://cluster.local/ns/NS/sa/SA` goes to the control
//!   plane's certificate service with the pod's token ([`run_certificate_client`]);
//! - the certificate is renewed when half of its lifetime is left, and the new
//!   one is **hot-swapped**: the TLS configurations resolve the certificate and the
//!   roots at each handshake ([`Identity`] is read through rustls' certificate
//!   resolvers and verifiers), so connections already open are untouched and new
//!   ones use the new certificate, with no listener or pool rebuilt;
//! - as a **server** (inbound), a client certificate is required and must chain to
//!   the mesh root and carry a SPIFFE URI; that URI is the connection's peer
//!   principal and goes into `x-forwarded-client-cert`;
//! - as a **client** (ISTIO_MUTUAL, auto mTLS), the server's certificate must chain
//!   to the mesh root and its SPIFFE URI must be one of the identities the cluster
//!   allows (Istio's *secure naming*: the service accounts of the service's
//!   endpoints).
//!
//! TLS 1.2 is the lowest version offered or accepted (rustls speaks 1.2 and 1.3).
//! A rejected peer certificate is logged with rustls' reason (expired, unknown CA,
//! wrong identity).

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};

/// Why credentials could not be installed or used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A PEM certificate or key does not parse.
    #[error("cannot read the {what}: {reason}")]
    Pem {
        /// What was read.
        what: &'static str,
        /// The parser's reason.
        reason: String,
    },
    /// rustls refused something.
    #[error("TLS set-up failed: {0}")]
    Tls(String),
}

/// What a proxy holds at one moment.
pub(crate) struct Credentials {
    certified: Arc<CertifiedKey>,
    verifier: Arc<dyn ClientCertVerifier>,
    /// The workload certificate's facts, for the admin interface.
    pub(crate) summary: CertSummary,
}

/// What the admin interface shows of a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertSummary {
    /// Its SPIFFE URI.
    pub spiffe_id: String,
    /// Its serial number, lowercase hex.
    pub serial: String,
    /// Valid from (seconds since the epoch).
    pub not_before: u64,
    /// Valid until (seconds since the epoch).
    pub not_after: u64,
}

/// A proxy's mesh identity; shared by its listeners and clusters.
pub struct Identity {
    spiffe_id: Arc<str>,
    current: Mutex<Option<Arc<Credentials>>>,
    provider: Arc<CryptoProvider>,
    server: OnceLock<Arc<ServerConfig>>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("spiffe_id", &self.spiffe_id)
            .field("ready", &self.current().is_some())
            .finish_non_exhaustive()
    }
}

/// The facts of a DER certificate this module needs.
pub(crate) struct PeerCert {
    /// The first `spiffe://` URI subject alternative name.
    pub(crate) spiffe_id: Option<String>,
    pub(crate) serial: String,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
}

/// Reads a DER certificate's SPIFFE URI, serial and validity; `None` when it does
/// not parse. Parsing only: trust is rustls' business.
pub(crate) fn read_cert(der: &[u8]) -> Option<PeerCert> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let spiffe_id = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|name| match name {
                x509_parser::extensions::GeneralName::URI(uri) if uri.starts_with("spiffe://") => {
                    Some((*uri).to_owned())
                }
                _ => None,
            })
        });
    Some(PeerCert {
        spiffe_id,
        serial: cert
            .raw_serial()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// The hex SHA-256 of a certificate's DER: the `Hash=` of `x-forwarded-client-cert`.
pub(crate) fn cert_hash(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// === impl Identity ===

impl Identity {
    /// An identity for `spiffe_id` with no certificate yet.
    pub fn new(spiffe_id: impl Into<Arc<str>>) -> Arc<Self> {
        Arc::new(Identity {
            spiffe_id: spiffe_id.into(),
            current: Mutex::new(None),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            server: OnceLock::new(),
        })
    }

    /// `spiffe://cluster.local/ns/NS/sa/SA`.
    pub fn spiffe_id(&self) -> &Arc<str> {
        &self.spiffe_id
    }

    /// Whether a certificate is installed.
    pub fn is_ready(&self) -> bool {
        self.current().is_some()
    }

    /// The installed certificate's facts.
    pub fn certificate(&self) -> Option<CertSummary> {
        self.current().map(|c| c.summary.clone())
    }

    pub(crate) fn current(&self) -> Option<Arc<Credentials>> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Installs a certificate chain (PEM, leaf first), its key (PKCS#8 DER) and the
    /// mesh roots (PEM). New handshakes use them at once.
    pub fn install(
        &self,
        chain_pem: &str,
        key_der: Vec<u8>,
        roots_pem: &str,
    ) -> Result<CertSummary, IdentityError> {
        let pem = |what, reason: rustls::pki_types::pem::Error| IdentityError::Pem {
            what,
            reason: reason.to_string(),
        };
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| pem("certificate chain", e))?;
        let leaf = chain.first().ok_or(IdentityError::Pem {
            what: "certificate chain",
            reason: "no certificate".to_owned(),
        })?;
        let facts = read_cert(leaf).ok_or(IdentityError::Pem {
            what: "workload certificate",
            reason: "not X.509".to_owned(),
        })?;
        let mut roots = RootCertStore::empty();
        for root in CertificateDer::pem_slice_iter(roots_pem.as_bytes()) {
            roots
                .add(root.map_err(|e| pem("mesh root", e))?)
                .map_err(|e| IdentityError::Tls(e.to_string()))?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| IdentityError::Tls(e.to_string()))?;
        let key = self
            .provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(key_der.into()))
            .map_err(|e| IdentityError::Tls(e.to_string()))?;
        let summary = CertSummary {
            spiffe_id: facts.spiffe_id.unwrap_or_default(),
            serial: facts.serial,
            not_before: u64::try_from(facts.not_before).unwrap_or(0),
            not_after: u64::try_from(facts.not_after).unwrap_or(0),
        };
        let credentials = Credentials {
            certified: Arc::new(CertifiedKey::new(chain, key)),
            verifier,
            summary: summary.clone(),
        };
        *self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(credentials));
        Ok(summary)
    }

    /// The server side of mesh mTLS (inbound), built once; it reads the current
    /// certificate and roots at every handshake.
    pub(crate) fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        self.server
            .get_or_init(|| {
                let config = ServerConfig::builder_with_provider(self.provider.clone())
                    .with_safe_default_protocol_versions()
                    .map(|b| {
                        b.with_client_cert_verifier(Arc::new(MeshClients {
                            identity: self.clone(),
                        }))
                        .with_cert_resolver(Arc::new(Resolver {
                            identity: self.clone(),
                        }))
                    });
                match config {
                    Ok(config) => Arc::new(config),
                    // The ring provider supports the default versions: unreachable in
                    // practice, and a config without versions refuses every client.
                    Err(err) => panic!("the ring provider cannot serve TLS: {err}"),
                }
            })
            .clone()
    }

    /// The client side of mesh mTLS towards a cluster whose servers must present
    /// one of `allowed` (empty: any identity the mesh root signed).
    pub(crate) fn client_config(
        self: &Arc<Self>,
        allowed: Vec<String>,
    ) -> Result<ClientConfig, IdentityError> {
        Ok(ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| IdentityError::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(MeshServers {
                identity: self.clone(),
                allowed,
            }))
            .with_client_cert_resolver(Arc::new(Resolver {
                identity: self.clone(),
            })))
    }

    fn verify_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<String, rustls::Error> {
        let Some(current) = self.current() else {
            return Err(rustls::Error::General(
                "this proxy has no mesh certificate yet".to_owned(),
            ));
        };
        current
            .verifier
            .verify_client_cert(end_entity, intermediates, now)?;
        read_cert(end_entity)
            .and_then(|c| c.spiffe_id)
            .ok_or_else(|| {
                rustls::Error::General("the peer certificate has no SPIFFE identity".to_owned())
            })
    }

    fn verify_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        if tls13 {
            rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
        } else {
            rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
        }
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Hands out the current certificate to both sides.
#[derive(Debug)]
struct Resolver {
    identity: Arc<Identity>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.identity.current().map(|c| c.certified.clone())
    }
}

impl ResolvesClientCert for Resolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.identity.current().map(|c| c.certified.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Inbound: clients must show a mesh certificate.
#[derive(Debug)]
struct MeshClients {
    identity: Arc<Identity>,
}

impl ClientCertVerifier for MeshClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.identity.verify_chain(end_entity, intermediates, now) {
            Ok(_) => Ok(ClientCertVerified::assertion()),
            Err(err) => {
                tracing::warn!(reason = %err, "rejected a client certificate (mTLS)");
                Err(err)
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.identity.verify_signature(message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.identity.verify_signature(message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.identity.schemes()
    }
}

/// Outbound: the server must show a mesh certificate for an allowed identity.
#[derive(Debug)]
struct MeshServers {
    identity: Arc<Identity>,
    allowed: Vec<String>,
}

impl ServerCertVerifier for MeshServers {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self
            .identity
            .verify_chain(end_entity, intermediates, now)
            .and_then(|peer| {
                if self.allowed.is_empty() || self.allowed.contains(&peer) {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::General(format!(
                        "secure naming: the server is {peer}, not one of {}",
                        self.allowed.join(", ")
                    )))
                }
            });
        if let Err(err) = &verified {
            tracing::warn!(reason = %err, "rejected a server certificate (mTLS)");
        }
        verified
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.identity.verify_signature(message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.identity.verify_signature(message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.identity.schemes()
    }
}

// === the certificate client ===

/// How a proxy gets its certificate.
#[derive(Clone)]
pub struct CertificateSettings {
    /// The control plane's gRPC address (the discovery address).
    pub endpoint: String,
    /// The pod's token (`MESHLAB_POD_TOKEN`).
    pub token: String,
    /// The lifetime to ask for; `None` takes the control plane's default.
    pub ttl: Option<Duration>,
}

impl fmt::Debug for CertificateSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateSettings")
            .field("endpoint", &self.endpoint)
            .field("token", &"<redacted>")
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// Makes a key and a CSR for `spiffe_id`: (CSR PEM, key PKCS#8 DER). The key stays
/// in memory.
pub fn key_and_csr(spiffe_id: &str) -> Result<(String, Vec<u8>), IdentityError> {
    let tls = |e: rcgen::Error| IdentityError::Tls(e.to_string());
    let key = rcgen::KeyPair::generate().map_err(tls)?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.subject_alt_names = vec![rcgen::SanType::URI(
        spiffe_id.to_owned().try_into().map_err(tls)?,
    )];
    let csr = params.serialize_request(&key).map_err(tls)?;
    Ok((csr.pem().map_err(tls)?, key.serialize_der()))
}

/// Asks for a certificate once and installs it; returns its summary.
pub async fn fetch_certificate(
    identity: &Identity,
    settings: &CertificateSettings,
) -> Result<CertSummary, String> {
    use meshlab_control_api::v1::IstioCertificateRequest;
    use meshlab_control_api::v1::istio_certificate_service_client::IstioCertificateServiceClient;

    let (csr, key) = key_and_csr(identity.spiffe_id()).map_err(|e| e.to_string())?;
    let channel = tonic::transport::Endpoint::from_shared(settings.endpoint.clone())
        .map_err(|e| format!("invalid control plane address {:?}: {e}", settings.endpoint))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("cannot reach the certificate service: {e}"))?;
    let mut client = IstioCertificateServiceClient::new(channel);
    let mut request = tonic::Request::new(IstioCertificateRequest {
        csr,
        validity_duration: settings
            .ttl
            .map_or(0, |ttl| i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
    });
    let bearer = format!("Bearer {}", settings.token)
        .parse()
        .map_err(|_| "the pod token is not a valid header value".to_owned())?;
    request.metadata_mut().insert("authorization", bearer);
    let response = client
        .create_certificate(request)
        .await
        .map_err(|status| format!("the CA refused: {}", status.message()))?
        .into_inner();
    let Some((root, chain)) = response.cert_chain.split_last() else {
        return Err("the CA sent no certificate".to_owned());
    };
    identity
        .install(&chain.concat(), key, root)
        .map_err(|e| e.to_string())
}

/// Keeps `identity` certified: fetches a certificate, then renews it when half of
/// its remaining lifetime has passed, retrying failures with a capped back-off. Runs forever.
pub async fn run_certificate_client(identity: Arc<Identity>, settings: CertificateSettings) {
    let mut retry = Duration::from_millis(250);
    loop {
        match fetch_certificate(&identity, &settings).await {
            Ok(cert) => {
                retry = Duration::from_millis(250);
                // Istio renews at half the remaining lifetime.
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let wait = Duration::from_secs((cert.not_after.saturating_sub(now) / 2).max(1));
                tracing::info!(identity = %cert.spiffe_id, serial = %cert.serial, renew_in = ?wait, "workload certificate installed");
                tokio::time::sleep(wait).await;
            }
            Err(err) => {
                tracing::warn!(%err, retry_in = ?retry, "cannot get a workload certificate");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(Duration::from_secs(10));
            }
        }
    }
}

#[cfg(test)]
mod tests;
