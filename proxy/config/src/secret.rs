//! Secrets (Envoy's SDS resources): the certificates and keys that TLS contexts
//! name instead of carrying them.
//!
//! Istio's names: `default` is the workload's own mesh certificate and `ROOTCA` the
//! mesh's trust roots, both held by the proxy's identity (they come with its CSR);
//! a Kubernetes Secret that a Gateway's or DestinationRule's `credentialName` names
//! travels as `kubernetes://<name>` (certificate and key) and, when it holds a CA
//! bundle, `kubernetes://<name>-cacert` (the roots that peers must chain to).
//!
//! A private key is data like any other here, but it never leaves the proxy's
//! memory in readable form: its `Debug` and its JSON (what `/config_dump` and
//! `meshlab proxy-config` show) read `[redacted]`.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// The name of the workload's own certificate (Istio's SDS `default`).
pub const WORKLOAD_CERTIFICATE: &str = "default";

/// The prefix of secrets that come from Kubernetes Secrets (`credentialName`).
pub const KUBERNETES_PREFIX: &str = "kubernetes://";

/// The suffix of the secret holding a credential's CA bundle (Istio's `-cacert`).
pub const CA_CERT_SUFFIX: &str = "-cacert";

/// A named secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// `kubernetes://httpbin-credential`, `kubernetes://httpbin-credential-cacert`.
    pub name: String,
    /// What it holds.
    #[serde(flatten)]
    pub kind: SecretKind,
}

/// What a secret holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SecretKind {
    /// A certificate chain (PEM, leaf first) and its private key.
    TlsCertificate {
        /// PEM certificates, the leaf first.
        certificate_chain: String,
        /// PEM private key.
        private_key: PrivateKey,
    },
    /// The roots a peer's certificate must chain to.
    ValidationContext {
        /// PEM CA certificates.
        trusted_ca: String,
    },
}

/// A PEM private key; shown as `[redacted]` by `Debug` and in JSON.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct PrivateKey(String);

impl Secret {
    /// The SDS name for the Kubernetes Secret `name` (`kubernetes://name`).
    #[must_use]
    pub fn kubernetes_name(name: &str) -> String {
        format!("{KUBERNETES_PREFIX}{name}")
    }

    /// The SDS name of the CA bundle that goes with credential `name`.
    #[must_use]
    pub fn ca_name(name: &str) -> String {
        format!("{KUBERNETES_PREFIX}{name}{CA_CERT_SUFFIX}")
    }
}

impl PrivateKey {
    /// Wraps a PEM key.
    #[must_use]
    pub fn new(pem: impl Into<String>) -> Self {
        Self(pem.into())
    }

    /// The PEM text, for the TLS library only.
    #[must_use]
    pub fn pem(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for PrivateKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_keys_are_redacted_in_debug_and_json() {
        let secret = Secret {
            name: Secret::kubernetes_name("httpbin-credential"),
            kind: SecretKind::TlsCertificate {
                certificate_chain: "-----BEGIN CERTIFICATE-----".into(),
                private_key: PrivateKey::new("-----BEGIN PRIVATE KEY-----\nsecret"),
            },
        };
        let json = serde_json::to_string(&secret).unwrap();
        let debug = format!("{secret:?}");
        for shown in [&json, &debug] {
            assert!(!shown.contains("secret\""), "{shown}");
            assert!(!shown.contains("PRIVATE KEY"), "{shown}");
            assert!(shown.contains("[redacted]"), "{shown}");
        }
        assert!(json.contains("kubernetes://httpbin-credential"), "{json}");
    }
}
