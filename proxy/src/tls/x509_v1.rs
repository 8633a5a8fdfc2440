//! X.509 version 1 certificates, which webpki refuses and Envoy (BoringSSL)
//! accepts.
//!
//! Istio's secure-gateway task makes its server and client certificates with
//! `openssl x509 -req … -set_serial …`, which signs version 1 certificates (no
//! extensions, so no subjectAltName). A learner who follows it must see them work,
//! so the verifiers here check such a leaf the way OpenSSL does: its signature
//! chains to one of the credential's CA certificates (directly or through the
//! peer's intermediates), every certificate on the way is within its validity
//! period, and, for a server, the name it must have is its subject's common name
//! (OpenSSL's fallback when a certificate has no DNS names). Version 3 leaves
//! take webpki's path unchanged.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use x509_parser::certificate::X509Certificate;
use x509_parser::time::ASN1Time;
use x509_parser::x509::X509Version;

/// How deep a chain may go above the leaf.
const MAX_DEPTH: usize = 4;

/// A server verifier that also accepts version 1 leaves.
#[derive(Debug)]
pub(crate) struct Servers {
    pub(crate) inner: Arc<dyn ServerCertVerifier>,
    /// The trusted CA certificates (DER).
    pub(crate) roots: Vec<CertificateDer<'static>>,
    /// Names the server may have instead of the server name (`subjectAltNames`).
    pub(crate) names: Vec<String>,
    /// The provider's signature algorithms.
    pub(crate) algorithms: WebPkiSupportedAlgorithms,
}

/// A client verifier that also accepts version 1 leaves.
#[derive(Debug)]
pub(crate) struct Clients {
    pub(crate) inner: Arc<dyn ClientCertVerifier>,
    /// The trusted CA certificates (DER).
    pub(crate) roots: Vec<CertificateDer<'static>>,
    /// The provider's signature algorithms.
    pub(crate) algorithms: WebPkiSupportedAlgorithms,
}

/// Whether `der` is a version 1 certificate.
fn is_v1(der: &CertificateDer<'_>) -> bool {
    x509_parser::parse_x509_certificate(der)
        .is_ok_and(|(_, cert)| cert.version() == X509Version::V1)
}

fn bad(error: CertificateError) -> Error {
    Error::InvalidCertificate(error)
}

/// Checks that `leaf` chains to one of `roots` through `intermediates`, each
/// certificate valid at `now`.
fn verify_chain(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    roots: &[CertificateDer<'static>],
    now: UnixTime,
) -> Result<(), Error> {
    fn parse(der: &[u8]) -> Result<X509Certificate<'_>, Error> {
        x509_parser::parse_x509_certificate(der)
            .map(|(_, cert)| cert)
            .map_err(|_| bad(CertificateError::BadEncoding))
    }
    let at = i64::try_from(now.as_secs())
        .ok()
        .and_then(|s| ASN1Time::from_timestamp(s).ok())
        .ok_or(bad(CertificateError::BadEncoding))?;
    let valid = |cert: &X509Certificate<'_>| {
        let validity = cert.validity();
        if at < validity.not_before {
            Err(bad(CertificateError::NotValidYet))
        } else if at > validity.not_after {
            Err(bad(CertificateError::Expired))
        } else {
            Ok(())
        }
    };
    let roots: Vec<X509Certificate<'_>> = roots.iter().filter_map(|r| parse(r).ok()).collect();
    let intermediates: Vec<X509Certificate<'_>> =
        intermediates.iter().filter_map(|c| parse(c).ok()).collect();
    let signed_by = |cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>| {
        cert.issuer() == issuer.subject()
            && cert.verify_signature(Some(issuer.public_key())).is_ok()
    };
    let mut current = parse(leaf)?;
    valid(&current)?;
    for _ in 0..=MAX_DEPTH {
        if let Some(root) = roots.iter().find(|root| signed_by(&current, root)) {
            return valid(root);
        }
        let Some(next) = intermediates.iter().find(|i| signed_by(&current, i)) else {
            return Err(bad(CertificateError::UnknownIssuer));
        };
        valid(next)?;
        current = next.clone();
    }
    Err(bad(CertificateError::UnknownIssuer))
}

/// A handshake signature: checked with the leaf's own key when it is a version 1
/// certificate (webpki would parse the certificate and refuse it), else by the
/// wrapped verifier. TLS 1.2 with a version 1 certificate is refused: rustls checks
/// 1.2 signatures only through webpki.
fn handshake_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    tls13: bool,
    algorithms: &WebPkiSupportedAlgorithms,
    webpki: impl FnOnce() -> Result<HandshakeSignatureValid, Error>,
) -> Result<HandshakeSignatureValid, Error> {
    let v1 = x509_parser::parse_x509_certificate(cert)
        .ok()
        .filter(|(_, parsed)| parsed.version() == X509Version::V1);
    let Some((_, parsed)) = v1 else {
        return webpki();
    };
    if !tls13 {
        return Err(Error::General(
            "TLS 1.2 with an X.509 version 1 certificate is not supported".to_owned(),
        ));
    }
    let spki = SubjectPublicKeyInfoDer::from(parsed.public_key().raw);
    rustls::crypto::verify_tls13_signature_with_raw_key(message, &spki, dss, algorithms)
}

/// Whether the leaf's subject common name is `name` (a `*.` wildcard covers one
/// label).
fn common_name_is(leaf: &CertificateDer<'_>, name: &str) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else {
        return false;
    };
    cert.subject().iter_common_name().any(|cn| {
        cn.as_str().is_ok_and(|cn| match cn.strip_prefix("*.") {
            Some(suffix) => name
                .split_once('.')
                .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(suffix)),
            None => cn.eq_ignore_ascii_case(name),
        })
    })
}

impl ServerCertVerifier for Servers {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if !is_v1(end_entity) {
            return self.inner.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            );
        }
        verify_chain(end_entity, intermediates, &self.roots, now)?;
        let expected = if self.names.is_empty() {
            vec![server_name.to_str().into_owned()]
        } else {
            self.names.clone()
        };
        if expected.iter().any(|name| common_name_is(end_entity, name)) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(bad(CertificateError::NotValidForName))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        handshake_signature(message, cert, dss, false, &self.algorithms, || {
            self.inner.verify_tls12_signature(message, cert, dss)
        })
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        handshake_signature(message, cert, dss, true, &self.algorithms, || {
            self.inner.verify_tls13_signature(message, cert, dss)
        })
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

impl ClientCertVerifier for Clients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        if !is_v1(end_entity) {
            return self
                .inner
                .verify_client_cert(end_entity, intermediates, now);
        }
        verify_chain(end_entity, intermediates, &self.roots, now)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        handshake_signature(message, cert, dss, false, &self.algorithms, || {
            self.inner.verify_tls12_signature(message, cert, dss)
        })
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        handshake_signature(message, cert, dss, true, &self.algorithms, || {
            self.inner.verify_tls13_signature(message, cert, dss)
        })
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
