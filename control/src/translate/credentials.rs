//! `credentialName` → secrets sent over SDS.
//!
//! A Gateway server or a DestinationRule names a Kubernetes Secret; the proxy is
//! sent its certificate and key as `kubernetes://NAME` and its CA bundle as
//! `kubernetes://NAME-cacert`, Istio's SDS names. The secret is looked up in the
//! proxy's own namespace (Istio's rule: a gateway reads secrets of its namespace,
//! a sidecar those of its workload's).
//!
//! Istio accepts these keys (its credential documentation):
//!
//! | what | keys |
//! |---|---|
//! | certificate | `tls.crt` or `cert` |
//! | private key | `tls.key` or `key` |
//! | CA bundle | `ca.crt` or `cacert`, in the secret or in a secret `NAME-cacert` |
//!
//! A secret that does not exist is simply not sent: the proxy then refuses the
//! connections that need it with a reason naming it, as Envoy keeps a listener or
//! cluster warming until its SDS secret arrives.

use std::collections::BTreeMap;

use meshlab_proxy_config::{PrivateKey, Secret, SecretKind};

use super::mesh::Mesh;

const CERT_KEYS: [&str; 2] = ["tls.crt", "cert"];
const KEY_KEYS: [&str; 2] = ["tls.key", "key"];
const CA_KEYS: [&str; 2] = ["ca.crt", "cacert"];

/// What a credential holds, as SDS secrets.
#[derive(Debug, Default)]
pub struct Credential {
    /// `kubernetes://NAME`, if the secret has a certificate and a key.
    pub certificate: Option<Secret>,
    /// `kubernetes://NAME-cacert`, if it (or `NAME-cacert`) has a CA bundle.
    pub ca: Option<Secret>,
    /// Whether the Secret exists at all.
    pub exists: bool,
}

/// The credential `name` as seen by a proxy in `namespace`.
pub fn credential(mesh: &Mesh, namespace: &str, name: &str) -> Credential {
    let lookup = |name: &str| mesh.secrets.get(&(namespace.to_owned(), name.to_owned()));
    let text = |values: &BTreeMap<String, Vec<u8>>, keys: &[&str]| {
        keys.iter()
            .find_map(|k| values.get(*k))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let main = lookup(name);
    let certificate = main.and_then(|values| {
        Some(Secret {
            name: Secret::kubernetes_name(name),
            kind: SecretKind::TlsCertificate {
                certificate_chain: text(values, &CERT_KEYS)?,
                private_key: PrivateKey::new(text(values, &KEY_KEYS)?),
            },
        })
    });
    let ca_secret = format!("{name}{}", meshlab_proxy_config::secret::CA_CERT_SUFFIX);
    let ca = main
        .and_then(|values| text(values, &CA_KEYS))
        .or_else(|| lookup(&ca_secret).and_then(|values| text(values, &CA_KEYS)))
        .map(|trusted_ca| Secret {
            name: Secret::ca_name(name),
            kind: SecretKind::ValidationContext { trusted_ca },
        });
    Credential {
        certificate,
        ca,
        exists: main.is_some(),
    }
}

impl Credential {
    /// Adds what it holds to a proxy's secrets.
    pub fn add_to(self, secrets: &mut BTreeMap<String, Secret>) {
        for secret in self.certificate.into_iter().chain(self.ca) {
            secrets.insert(secret.name.clone(), secret);
        }
    }
}
