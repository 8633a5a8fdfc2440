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
//! with auto mTLS endpoints without a sidecar get plaintext. `MUTUAL` (client certificates from files) is not
//! supported: the control plane rejects it, and a cluster asking for it fails its
//! connections with a transport failure reason that says so.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use meshlab_proxy_config::{MESH_ALPN, MESH_ALPN_H2, TlsMode, UpstreamTls};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

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
    /// it cannot originate TLS (unsupported mode, no trusted roots).
    pub(crate) fn new(
        tls: &UpstreamTls,
        http2: bool,
        roots: &Roots,
        identity: Option<&Arc<Identity>>,
    ) -> Result<Option<Self>, String> {
        match tls.mode {
            TlsMode::Disable => return Ok(None),
            TlsMode::Simple => {}
            TlsMode::Mutual => {
                return Err(
                    "TLS mode MUTUAL (client certificates from files) is not supported".to_owned(),
                );
            }
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
        let roots = roots.get()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|err| format!("cannot verify servers: {err}"))?;
        let names: Vec<ServerName<'static>> = tls
            .subject_alt_names
            .iter()
            .filter_map(|name| ServerName::try_from(name.clone()).ok())
            .collect();
        let verifier: Arc<dyn ServerCertVerifier> = if names.is_empty() {
            webpki
        } else {
            Arc::new(SubjectAltNames {
                inner: webpki,
                names,
            })
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| format!("cannot build a TLS client: {err}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
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
