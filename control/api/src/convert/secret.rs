//! Secrets.

use meshlab_proxy_config::{PrivateKey, Secret, SecretKind};

use super::{Invalid, required};
use crate::v1::{self, secret};

pub(super) fn to_wire(secret: Secret) -> v1::Secret {
    let kind = match secret.kind {
        SecretKind::TlsCertificate {
            certificate_chain,
            private_key,
        } => secret::Kind::TlsCertificate(v1::TlsCertificate {
            certificate_chain,
            private_key: private_key.pem().to_owned(),
        }),
        SecretKind::ValidationContext { trusted_ca } => {
            secret::Kind::ValidationContext(v1::CertificateValidationContext { trusted_ca })
        }
    };
    v1::Secret {
        name: secret.name,
        kind: Some(kind),
    }
}

pub(super) fn from_wire(message: v1::Secret) -> Result<Secret, Invalid> {
    let kind = match required(message.kind, "kind")? {
        secret::Kind::TlsCertificate(tls) => {
            if tls.certificate_chain.is_empty() {
                return Err(Invalid::missing("certificate_chain").at("tls_certificate"));
            }
            if tls.private_key.is_empty() {
                return Err(Invalid::missing("private_key").at("tls_certificate"));
            }
            SecretKind::TlsCertificate {
                certificate_chain: tls.certificate_chain,
                private_key: PrivateKey::new(tls.private_key),
            }
        }
        secret::Kind::ValidationContext(context) => {
            if context.trusted_ca.is_empty() {
                return Err(Invalid::missing("trusted_ca").at("validation_context"));
            }
            SecretKind::ValidationContext {
                trusted_ca: context.trusted_ca,
            }
        }
    };
    Ok(Secret {
        name: message.name,
        kind,
    })
}
