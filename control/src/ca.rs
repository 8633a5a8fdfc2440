//! The mesh's certificate authority: SPIFFE identities for sidecars and gateways
//! (istiod's CA, Istio's `IstioCertificateService`).
//!
//! - **The root** is made once and kept in the state volume (`pki/mesh-ca/`, the key
//!   with mode 0600), or is the learner's own: `meshlab up --ca-cert --ca-key`
//!   (Istio's "plug-in CA", `cacerts`) is copied there when the control plane starts.
//!   No API serves the key; only the certificate leaves this module.
//! - **Pod tokens**: the reconciler mints one per pod, an HMAC-SHA256 over the pod's
//!   namespace, service account and name with a secret kept beside the root
//!   (`pki/token-key`, 0600), and gives it to the pod's `istio-proxy` container. A
//!   token proves "the control plane made this pod with this service account", as a
//!   Kubernetes service account token does for istiod.
//! - **Signing**: a proxy makes its key in memory and sends a CSR with its token
//!   ([`crate::certificates`]). The CSR's signature must verify and its only subject
//!   alternative name must be the token's identity,
//!   `spiffe://cluster.local/ns/NS/sa/SA`; the certificate is built from that identity
//!   alone (nothing else from the CSR is copied), with an empty subject, both server
//!   and client authentication, and a validity of 24 h unless configured otherwise
//!   (`meshlab up --workload-cert-ttl`, down to a minute for a rotation demo).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use ring::hmac;

use crate::pki::{PkiError, write_file};

/// The trust domain of every identity.
pub const TRUST_DOMAIN: &str = "cluster.local";

/// Istio's default workload certificate lifetime.
pub const DEFAULT_WORKLOAD_CERT_TTL: Duration = Duration::from_secs(24 * 3600);

/// The shortest lifetime the CA issues (a rotation demo wants minutes, not seconds).
pub const MIN_WORKLOAD_CERT_TTL: Duration = Duration::from_secs(60);

/// Where the CA lives inside the state directory.
const CA_DIR: &str = "mesh-ca";
const CA_CERT: &str = "ca-cert.pem";
const CA_KEY: &str = "ca-key.pem";
const TOKEN_KEY: &str = "token-key";

/// Certificates are valid from a minute ago, so a clock a little behind accepts them.
const BACKDATE: Duration = Duration::from_secs(60);

/// Why a certificate was not issued.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The token is missing, malformed or was not minted by this control plane.
    #[error("the pod token is not valid: {0}")]
    Token(&'static str),
    /// The CSR does not parse or its signature does not verify.
    #[error("the certificate signing request is not valid: {0}")]
    Csr(String),
    /// The CSR asks for another identity than the token proves.
    #[error("the CSR asks for {requested:?} but the token is for {allowed:?}")]
    WrongIdentity {
        /// The CSR's subject alternative names.
        requested: Vec<String>,
        /// The token's identity.
        allowed: String,
    },
    /// Signing failed.
    #[error("cannot sign the certificate: {0}")]
    Sign(#[from] rcgen::Error),
}

/// The identity a token proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodIdentity {
    /// The pod's namespace.
    pub namespace: String,
    /// Its service account.
    pub service_account: String,
    /// The pod's name.
    pub pod: String,
}

impl PodIdentity {
    /// `spiffe://cluster.local/ns/NS/sa/SA`.
    pub fn spiffe_id(&self) -> String {
        spiffe_id(&self.namespace, &self.service_account)
    }
}

/// `spiffe://cluster.local/ns/NS/sa/SA`.
pub fn spiffe_id(namespace: &str, service_account: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}")
}

/// Mints and checks pod tokens. Cheap to clone; its Debug output hides the key.
#[derive(Clone)]
pub struct Tokens {
    key: hmac::Key,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(<redacted>)")
    }
}

impl Tokens {
    /// Tokens signed with `secret`.
    pub fn new(secret: &[u8]) -> Self {
        Tokens {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// The token of pod `pod` in `namespace`, running as `service_account`:
    /// `BASE64URL(ns/sa/pod).BASE64URL(HMAC)`.
    pub fn mint(&self, namespace: &str, service_account: &str, pod: &str) -> String {
        let payload = format!("{namespace}/{service_account}/{pod}");
        let tag = hmac::sign(&self.key, payload.as_bytes());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// The identity `token` proves, if this control plane minted it.
    pub fn verify(&self, token: &str) -> Result<PodIdentity, CaError> {
        let (payload, tag) = token
            .split_once('.')
            .ok_or(CaError::Token("expected PAYLOAD.SIGNATURE"))?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| CaError::Token("the payload is not base64url"))?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| CaError::Token("the signature is not base64url"))?;
        hmac::verify(&self.key, &payload, &tag)
            .map_err(|_| CaError::Token("the signature does not match"))?;
        let payload =
            String::from_utf8(payload).map_err(|_| CaError::Token("the payload is not UTF-8"))?;
        let mut parts = payload.splitn(3, '/');
        let (Some(namespace), Some(service_account), Some(pod)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(CaError::Token("the payload is not NAMESPACE/SA/POD"));
        };
        Ok(PodIdentity {
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
            pod: pod.to_owned(),
        })
    }
}

/// A certificate the CA issued.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Issued {
    /// PEM: the workload certificate, then the root.
    pub chain: Vec<String>,
    /// Its serial number, lowercase hex.
    pub serial: String,
    /// Valid from.
    pub not_before: SystemTime,
    /// Valid until.
    pub not_after: SystemTime,
}

/// The mesh CA.
pub struct MeshCa {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    tokens: Tokens,
    default_ttl: Duration,
}

impl std::fmt::Debug for MeshCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshCa")
            .field("default_ttl", &self.default_ttl)
            .finish_non_exhaustive()
    }
}

/// A learner's own CA (`meshlab up --ca-cert --ca-key`), as PEM.
#[derive(Clone)]
pub struct PluggedCa {
    /// The CA certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for PluggedCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluggedCa").finish_non_exhaustive()
    }
}

impl MeshCa {
    /// The CA kept in `pki_dir`: `plugged` replaces it when given, otherwise the
    /// stored one is loaded, or a new root is made and stored.
    pub fn load_or_create(
        pki_dir: &Path,
        plugged: Option<&PluggedCa>,
        default_ttl: Duration,
    ) -> Result<Self, PkiError> {
        let dir = pki_dir.join(CA_DIR);
        fs::create_dir_all(&dir).map_err(|source| PkiError::Io {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        let cert_path = dir.join(CA_CERT);
        let key_path = dir.join(CA_KEY);
        if let Some(plugged) = plugged {
            // Check before storing: a bad plug-in must not replace a good root.
            load(&plugged.cert_pem, &plugged.key_pem, &cert_path, &key_path)?;
            write_file(&key_path, plugged.key_pem.as_bytes(), 0o600)?;
            write_file(&cert_path, plugged.cert_pem.as_bytes(), 0o644)?;
            tracing::info!("using the plugged-in CA certificate for workload identities");
        } else if !(cert_path.exists() && key_path.exists()) {
            let key = KeyPair::generate()?;
            let cert = root_params().self_signed(&key)?;
            write_file(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
            write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
        }
        let (cert_pem, issuer) =
            load(&read(&cert_path)?, &read(&key_path)?, &cert_path, &key_path)?;
        let token_path = pki_dir.join(TOKEN_KEY);
        let secret = match fs::read(&token_path) {
            Ok(secret) if secret.len() >= 32 => secret,
            _ => {
                let mut secret = vec![0u8; 32];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
                    .map_err(|_| PkiError::Io {
                        action: "generate a secret for",
                        path: token_path.clone(),
                        source: std::io::Error::other("no system randomness"),
                    })?;
                write_file(&token_path, &secret, 0o600)?;
                secret
            }
        };
        Ok(MeshCa {
            cert_pem,
            issuer,
            tokens: Tokens::new(&secret),
            default_ttl: default_ttl.max(MIN_WORKLOAD_CERT_TTL),
        })
    }

    /// The root certificate (PEM): what every proxy trusts for mesh mTLS.
    pub fn root_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The pod tokens this CA accepts.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The lifetime of certificates when the request asks for none.
    pub fn default_ttl(&self) -> Duration {
        self.default_ttl
    }

    /// Signs `csr_pem` for the pod `token` names, valid for `ttl` (the default when
    /// `None`; never longer than the default, never shorter than a minute).
    pub fn sign(
        &self,
        token: &str,
        csr_pem: &str,
        ttl: Option<Duration>,
    ) -> Result<Issued, CaError> {
        let identity = self.tokens.verify(token)?;
        let allowed = identity.spiffe_id();
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|err| CaError::Csr(err.to_string()))?;
        let requested: Vec<String> = csr
            .params
            .subject_alt_names
            .iter()
            .map(|san| match san {
                SanType::URI(uri) => uri.as_str().to_owned(),
                SanType::DnsName(name) => format!("DNS:{}", name.as_str()),
                other => format!("{other:?}"),
            })
            .collect();
        if requested != [allowed.as_str()] {
            return Err(CaError::WrongIdentity { requested, allowed });
        }
        let ttl = ttl
            .unwrap_or(self.default_ttl)
            .clamp(MIN_WORKLOAD_CERT_TTL, self.default_ttl);
        let now = SystemTime::now();
        let not_before = now - BACKDATE;
        let not_after = now + ttl;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names =
            vec![SanType::URI(allowed.clone().try_into().map_err(
                |err: rcgen::Error| CaError::Csr(err.to_string()),
            )?)];
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let mut serial = [0u8; 16];
        serial.iter_mut().for_each(|b| *b = fastrand::u8(..));
        serial[0] &= 0x7f; // a positive INTEGER
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let cert = params.signed_by(&csr.public_key, &self.issuer)?;
        tracing::info!(identity = %allowed, pod = %identity.pod, ttl = ?ttl, "issued a workload certificate");
        Ok(Issued {
            chain: vec![cert.pem(), self.cert_pem.clone()],
            serial: serial.iter().map(|b| format!("{b:02x}")).collect(),
            not_before,
            not_after,
        })
    }
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })
}

/// Parses a CA certificate and its key into an issuer.
fn load(
    cert_pem: &str,
    key_pem: &str,
    cert_path: &Path,
    key_path: &Path,
) -> Result<(String, Issuer<'static, KeyPair>), PkiError> {
    let corrupt = |path: &PathBuf, what, reason: String| PkiError::Corrupt {
        path: path.clone(),
        what,
        reason,
    };
    let key = KeyPair::from_pem(key_pem).map_err(|err| {
        corrupt(
            &key_path.to_owned(),
            "private key (PKCS#8 PEM)",
            err.to_string(),
        )
    })?;
    let issuer = Issuer::from_ca_cert_pem(cert_pem, key)
        .map_err(|err| corrupt(&cert_path.to_owned(), "CA certificate", err.to_string()))?;
    Ok((cert_pem.to_owned(), issuer))
}

/// The generated root: `O=cluster.local`, as istiod's self-signed root.
fn root_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, TRUST_DOMAIN);
    name.push(DnType::CommonName, "meshlab mesh root CA");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.not_after = (SystemTime::now() + Duration::from_secs(10 * 365 * 24 * 3600)).into();
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

#[cfg(test)]
mod tests;
