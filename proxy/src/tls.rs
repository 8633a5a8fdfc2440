//! TLS origination: a DestinationRule's `tls.mode: SIMPLE` makes the proxy speak
//! TLS to the endpoints, so an app can call `http://httpbin.org` and the request
//! leaves the pod as HTTPS (Istio's "egress TLS origination" task).
//!
//! As Envoy does for an `UpstreamTlsContext` with a trusted CA and no client
//! certificate: the server name sent is the configured `sni`, else the endpoint's
//! DNS name; the server's chain must lead to a trusted root (the CA bundle,
//! `/etc/ssl/certs/ca-certificates.crt` unless told otherwise, loaded once); if
//! `subjectAltNames` are given, the certificate must be valid for one of them
//! (Envoy's `match_typed_subject_alt_names`), otherwise for the server name.
//! ALPN offers `h2` only for clusters that speak HTTP/2 upstream.
//!
//! `ISTIO_MUTUAL` is mesh mTLS with the proxy's own identity ([`crate::identity`]):
//! the SNI is Istio's `outbound_.PORT_.SUBSET_.HOST`, ALPN offers Istio's `istio*`
//! values (how a PERMISSIVE server tells mesh mTLS from an app's own TLS), the
//! server must present one of the cluster's SPIFFE identities (secure naming), and
//! with auto mTLS endpoints without a sidecar get plaintext.
//!
//! `MUTUAL` is `SIMPLE` plus a client certificate: both come from secrets the
//! cluster names (a DestinationRule's `credentialName`, sent over SDS as
//! `kubernetes://NAME` and `kubernetes://NAME-cacert`); a named CA replaces the
//! system bundle. A secret that has not arrived fails the cluster's connections
//! with a reason that names it, as Envoy keeps such a cluster warming.
//!
//! [`Termination`] is the other direction, for gateways: a Gateway server's
//! `credentialName` certificate, and for `MUTUAL` the CA that client certificates
//! must chain to. The mesh's own mTLS (`default`) is the identity's business.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use std::collections::{BTreeMap, HashMap};

use meshlab_proxy_config::{
    DownstreamTls, MESH_ALPN, MESH_ALPN_H2, ProxyConfig, Secret, SecretKind, TlsMode, UpstreamTls,
    secret::WORKLOAD_CERTIFICATE,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

mod x509_v1;

use crate::cluster::Host;
use crate::identity::Identity;

/// The trusted roots for TLS origination, read from a PEM bundle on first use.
#[derive(Debug)]
pub(crate) struct Roots {
    path: PathBuf,
    store: OnceLock<Result<Arc<RootCertStore>, String>>,
}

/// How one cluster originates TLS.
pub(crate) struct Origination {
    connector: TlsConnector,
    sni: Option<ServerName<'static>>,
    /// Auto mTLS: plaintext to endpoints without a sidecar.
    auto_mtls: bool,
}

/// Checks the certificate against a list of names instead of the server name.
#[derive(Debug)]
struct SubjectAltNames {
    inner: Arc<WebPkiServerVerifier>,
    names: Vec<ServerName<'static>>,
}

// === impl Roots ===

impl Roots {
    /// Roots from the PEM bundle at `path` (read when first needed).
    pub(crate) fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            store: OnceLock::new(),
        }
    }

    fn get(&self) -> Result<Arc<RootCertStore>, String> {
        self.store.get_or_init(|| load(&self.path)).clone()
    }
}

fn load(path: &Path) -> Result<Arc<RootCertStore>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| format!("cannot read the CA bundle {}: {err}", path.display()))?;
    let mut store = RootCertStore::empty();
    let (_added, _ignored) = store.add_parsable_certificates(certs);
    if store.is_empty() {
        return Err(format!("no CA certificate in {}", path.display()));
    }
    Ok(Arc::new(store))
}

// === impl Origination ===

impl Origination {
    /// The TLS set-up for a cluster, `Ok(None)` for plaintext (`DISABLE`), or why
    /// it cannot originate TLS (no mesh identity, no trusted roots, a secret that
    /// has not arrived).
    pub(crate) fn new(
        tls: &UpstreamTls,
        http2: bool,
        roots: &Roots,
        identity: Option<&Arc<Identity>>,
        secrets: &BTreeMap<String, Secret>,
    ) -> Result<Option<Self>, String> {
        match tls.mode {
            TlsMode::Disable => return Ok(None),
            TlsMode::Simple | TlsMode::Mutual => {}
            TlsMode::IstioMutual => {
                let identity = identity.ok_or_else(|| {
                    "ISTIO_MUTUAL needs a mesh identity and this proxy has none (no pod token)"
                        .to_owned()
                })?;
                let mut config = identity
                    .client_config(tls.subject_alt_names.clone())
                    .map_err(|err| err.to_string())?;
                config.alpn_protocols = if http2 {
                    &MESH_ALPN_H2[..]
                } else {
                    &MESH_ALPN[..]
                }
                .iter()
                .map(|p| p.as_bytes().to_vec())
                .collect();
                return Ok(Some(Self {
                    connector: TlsConnector::from(Arc::new(config)),
                    sni: sni(tls)?,
                    auto_mtls: tls.auto_mtls,
                }));
            }
        }
        let (roots, v1_roots) = match &tls.trusted_ca {
            Some(name) => {
                let (store, certs) = trusted_ca(secrets, name)?;
                (Arc::new(store), Some(certs))
            }
            None => (roots.get()?, None),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|err| format!("cannot verify servers: {err}"))?;
        let names: Vec<ServerName<'static>> = tls
            .subject_alt_names
            .iter()
            .filter_map(|name| ServerName::try_from(name.clone()).ok())
            .collect();
        let mut verifier: Arc<dyn ServerCertVerifier> = if names.is_empty() {
            webpki
        } else {
            Arc::new(SubjectAltNames {
                inner: webpki,
                names,
            })
        };
        // A credential's own CA may have signed version 1 certificates.
        if let Some(roots) = v1_roots {
            verifier = Arc::new(x509_v1::Servers {
                inner: verifier,
                roots,
                names: tls.subject_alt_names.clone(),
                algorithms: provider.signature_verification_algorithms,
            });
        }
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|err| format!("cannot build a TLS client: {err}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match (&tls.mode, &tls.certificate) {
            (TlsMode::Mutual, Some(name)) => {
                let (chain, key) = certificate(secrets, name)?;
                let certified = certified_key(&provider, chain, key)
                    .map_err(|err| format!("secret {name}: {err}"))?;
                builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)))
            }
            _ => builder.with_no_client_auth(),
        };
        if http2 {
            config.alpn_protocols = vec![b"h2".to_vec()];
        }
        Ok(Some(Self {
            connector: TlsConnector::from(Arc::new(config)),
            sni: sni(tls)?,
            auto_mtls: false,
        }))
    }

    /// Whether `host` gets plaintext: auto mTLS to an endpoint without a sidecar.
    pub(crate) fn plaintext_to(&self, host: &Host) -> bool {
        self.auto_mtls && !host.mtls_capable
    }

    /// Runs the handshake on `stream`; `hostname` is the endpoint's DNS name if it
    /// has one. The error is the transport failure reason for the access log.
    pub(crate) async fn connect(
        &self,
        stream: TcpStream,
        hostname: Option<&str>,
    ) -> Result<TlsStream<TcpStream>, String> {
        let server_name = match (&self.sni, hostname) {
            (Some(sni), _) => sni.clone(),
            (None, Some(host)) => ServerName::try_from(host.to_owned())
                .map_err(|_| format!("invalid server name {host:?}"))?,
            (None, None) => {
                let ip = stream
                    .peer_addr()
                    .map_err(|err| format!("no peer address: {err}"))?
                    .ip();
                ServerName::IpAddress(ip.into())
            }
        };
        self.connector
            .connect(server_name, stream)
            .await
            .map_err(|err| format!("TLS error: {err}"))
    }
}

fn sni(tls: &UpstreamTls) -> Result<Option<ServerName<'static>>, String> {
    tls.sni
        .as_ref()
        .map(|sni| ServerName::try_from(sni.clone()).map_err(|_| format!("invalid SNI {sni:?}")))
        .transpose()
}

/// The secrets an upstream TLS context names, as they are now: when they change,
/// the cluster's TLS is built anew.
pub(crate) fn upstream_secrets(
    tls: Option<&UpstreamTls>,
    secrets: &BTreeMap<String, Secret>,
) -> Vec<Option<Secret>> {
    tls.into_iter()
        .flat_map(|tls| tls.certificate.iter().chain(&tls.trusted_ca))
        .map(|name| secrets.get(name).cloned())
        .collect()
}

fn missing(name: &str) -> String {
    format!(
        "secret {name} has not been received (is the Kubernetes Secret in the proxy's namespace?)"
    )
}

/// The roots in the validation-context secret `name`: as a store for webpki, and
/// as certificates for [`x509_v1`].
fn trusted_ca(
    secrets: &BTreeMap<String, Secret>,
    name: &str,
) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), String> {
    let Some(SecretKind::ValidationContext { trusted_ca }) =
        secrets.get(name).map(|secret| &secret.kind)
    else {
        return Err(missing(name));
    };
    let certs = CertificateDer::pem_slice_iter(trusted_ca.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("secret {name}: bad CA certificate: {err}"))?;
    let mut store = RootCertStore::empty();
    let (_added, _ignored) = store.add_parsable_certificates(certs.iter().cloned());
    if store.is_empty() {
        return Err(format!("secret {name} holds no usable CA certificate"));
    }
    Ok((store, certs))
}

/// The chain and key in the certificate secret `name`.
fn certificate(
    secrets: &BTreeMap<String, Secret>,
    name: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let Some(SecretKind::TlsCertificate {
        certificate_chain,
        private_key,
    }) = secrets.get(name).map(|secret| &secret.kind)
    else {
        return Err(missing(name));
    };
    let chain = CertificateDer::pem_slice_iter(certificate_chain.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("secret {name}: bad certificate: {err}"))?;
    if chain.is_empty() {
        return Err(format!("secret {name} holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_slice(private_key.pem().as_bytes())
        .map_err(|err| format!("secret {name}: bad private key: {err}"))?;
    Ok((chain, key))
}

// === impl Termination ===

/// TLS a gateway terminates with a `credentialName` certificate, built once per
/// configuration for each distinct filter-chain TLS context.
#[derive(Debug, Default)]
pub(crate) struct Terminations {
    by_context: HashMap<DownstreamTls, Result<Arc<ServerConfig>, String>>,
}

impl Terminations {
    /// The server set-ups of every chain in `config` that terminates TLS with a
    /// secret other than the workload's mesh certificate.
    pub(crate) fn build(config: &ProxyConfig) -> Self {
        let mut by_context = HashMap::new();
        for tls in config
            .listeners
            .values()
            .flat_map(|l| l.filter_chains.iter().chain(&l.default_filter_chain))
            .filter_map(|chain| chain.tls.as_ref())
            .filter(|tls| tls.certificate != WORKLOAD_CERTIFICATE)
        {
            by_context
                .entry(tls.clone())
                .or_insert_with(|| server_config(tls, &config.secrets).map(Arc::new));
        }
        Self { by_context }
    }

    /// The server set-up for `tls`, or why there is none.
    pub(crate) fn get(&self, tls: &DownstreamTls) -> Result<Arc<ServerConfig>, String> {
        self.by_context
            .get(tls)
            .cloned()
            .unwrap_or_else(|| Err(format!("no TLS set-up for {}", tls.certificate)))
    }
}

/// The chain and key as rustls serves them, after checking that they belong
/// together. rustls' own check parses the leaf with webpki, which refuses X.509
/// v1 certificates; `openssl x509 -req`, as Istio's secure-gateway task runs it,
/// signs exactly those, and Envoy serves them. x509-parser reads any version.
fn certified_key(
    provider: &rustls::crypto::CryptoProvider,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, String> {
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|err| format!("bad private key: {err}"))?;
    let leaf = chain.first().ok_or("no certificate")?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|err| format!("bad certificate: {err}"))?;
    if let Some(public) = signing.public_key()
        && public.as_ref() != parsed.public_key().raw
    {
        return Err("the private key does not match the certificate".to_owned());
    }
    Ok(CertifiedKey::new(chain, signing))
}

fn server_config(
    tls: &DownstreamTls,
    secrets: &BTreeMap<String, Secret>,
) -> Result<ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| format!("cannot build a TLS server: {err}"))?;
    let builder = match (&tls.trusted_ca, tls.require_client_certificate) {
        (Some(name), true) => {
            let (store, roots) = trusted_ca(secrets, name)?;
            let inner =
                WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider.clone())
                    .build()
                    .map_err(|err| format!("cannot verify clients with {name}: {err}"))?;
            builder.with_client_cert_verifier(Arc::new(x509_v1::Clients {
                inner,
                roots,
                algorithms: provider.signature_verification_algorithms,
            }))
        }
        (None, true) => {
            return Err(format!(
                "{} requires client certificates but names no CA to verify them",
                tls.certificate
            ));
        }
        (_, false) => builder.with_no_client_auth(),
    };
    let (chain, key) = certificate(secrets, &tls.certificate)?;
    let certified = certified_key(&provider, chain, key)
        .map_err(|err| format!("secret {}: {err}", tls.certificate))?;
    let mut config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

impl fmt::Debug for Origination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Origination")
            .field("sni", &self.sni)
            .finish_non_exhaustive()
    }
}

// === impl SubjectAltNames ===

impl ServerCertVerifier for SubjectAltNames {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut last = None;
        for name in &self.names {
            match self
                .inner
                .verify_server_cert(end_entity, intermediates, name, ocsp_response, now)
            {
                Ok(verified) => return Ok(verified),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or(rustls::Error::General(
            "no subject alt name to verify".into(),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
