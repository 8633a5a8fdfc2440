use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use rcgen::{CertificateParams, DistinguishedName, KeyPair, SanType};

use super::*;
use crate::certificates::{CertificateService, IssuedCertificates};

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshlab-ca-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn csr_for(uri: &str) -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = vec![SanType::URI(uri.to_owned().try_into().unwrap())];
    params.serialize_request(&key).unwrap().pem().unwrap()
}

fn ca(name: &str) -> (MeshCa, PathBuf) {
    let dir = scratch_dir(name);
    let ca = MeshCa::load_or_create(&dir, None, DEFAULT_WORKLOAD_CERT_TTL).unwrap();
    (ca, dir)
}

#[test]
fn the_root_key_and_token_secret_are_private_and_survive_a_restart() {
    let (ca, dir) = ca("files");
    for file in [format!("{CA_DIR}/{CA_KEY}"), TOKEN_KEY.to_owned()] {
        let mode = fs::metadata(dir.join(&file)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file} is private");
    }
    let again = MeshCa::load_or_create(&dir, None, DEFAULT_WORKLOAD_CERT_TTL).unwrap();
    assert_eq!(again.root_pem(), ca.root_pem());
    let token = ca.tokens().mint("foo", "sleep", "sleep-1");
    assert!(again.tokens().verify(&token).is_ok(), "tokens survive too");
    assert!(!ca.root_pem().contains("PRIVATE KEY"));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_pod_gets_exactly_the_identity_its_token_proves() {
    let (ca, dir) = ca("sign");
    let token = ca.tokens().mint("foo", "sleep", "sleep-abc");
    let issued = ca
        .sign(
            &token,
            &csr_for("spiffe://cluster.local/ns/foo/sa/sleep"),
            None,
        )
        .unwrap();
    assert_eq!(issued.chain.len(), 2);
    assert_eq!(issued.chain[1], ca.root_pem());
    let lifetime = issued.not_after.duration_since(issued.not_before).unwrap();
    assert!(
        lifetime >= DEFAULT_WORKLOAD_CERT_TTL && lifetime <= DEFAULT_WORKLOAD_CERT_TTL + BACKDATE,
        "{lifetime:?}"
    );
    let (_, pem) = x509_parser::pem::parse_x509_pem(issued.chain[0].as_bytes()).unwrap();
    let cert = pem.parse_x509().unwrap();
    assert!(cert.subject().iter().next().is_none(), "an empty subject");
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        format!("{:?}", san.value.general_names),
        "[URI(\"spiffe://cluster.local/ns/foo/sa/sleep\")]"
    );
    // A short lifetime is honoured down to the minimum.
    let short = ca
        .sign(
            &token,
            &csr_for("spiffe://cluster.local/ns/foo/sa/sleep"),
            Some(Duration::from_secs(5)),
        )
        .unwrap();
    let lifetime = short.not_after.duration_since(SystemTime::now()).unwrap();
    assert!(lifetime <= MIN_WORKLOAD_CERT_TTL, "{lifetime:?}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_csr_for_another_service_account_is_refused() {
    let (ca, dir) = ca("other-sa");
    let token = ca.tokens().mint("foo", "sleep", "sleep-abc");
    let service = CertificateService::new(Arc::new(ca), Arc::new(IssuedCertificates::default()));
    for uri in [
        "spiffe://cluster.local/ns/foo/sa/httpbin",
        "spiffe://cluster.local/ns/bar/sa/sleep",
        "spiffe://evil.example/ns/foo/sa/sleep",
    ] {
        let request = meshlab_control_api::v1::IstioCertificateRequest {
            csr: csr_for(uri),
            validity_duration: 0,
        };
        let status = service.create(Some(&token), &request).unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{uri}");
        assert!(status.message().contains(uri), "{}", status.message());
    }
    let request = meshlab_control_api::v1::IstioCertificateRequest {
        csr: csr_for("spiffe://cluster.local/ns/foo/sa/sleep"),
        validity_duration: 0,
    };
    let status = service.create(None, &request).unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(service.create(Some(&token), &request).is_ok());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn issued_certificates_outlive_a_control_plane_restart() {
    let (ca, dir) = ca("issued-record");
    let token = ca.tokens().mint("foo", "sleep", "sleep-abc");
    let file = dir.join("issued-certificates.json");
    let service = CertificateService::new(
        Arc::new(ca),
        Arc::new(IssuedCertificates::open(file.clone())),
    );
    let request = meshlab_control_api::v1::IstioCertificateRequest {
        csr: csr_for("spiffe://cluster.local/ns/foo/sa/sleep"),
        validity_duration: 0,
    };
    let issued = service.create(Some(&token), &request).unwrap();

    let reopened = IssuedCertificates::open(file);
    let kept = reopened
        .get("foo", "sleep-abc")
        .expect("kept across the restart");
    assert_eq!(kept.chain, issued.chain);
    assert_eq!(kept.serial, issued.serial);
    assert!(reopened.get("foo", "httpbin-abc").is_none());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn pod_a_token_cannot_obtain_pod_b_identity() {
    let tokens = Tokens::new(b"a secret of at least thirty-two bytes!");
    let a = tokens.mint("foo", "sleep", "sleep-a");
    let b = tokens.mint("foo", "httpbin", "httpbin-b");
    assert_eq!(
        tokens.verify(&a).unwrap().spiffe_id(),
        "spiffe://cluster.local/ns/foo/sa/sleep"
    );
    // Swapping A's payload for B's keeps A's signature: refused.
    let (a_payload, a_tag) = a.split_once('.').unwrap();
    let (b_payload, b_tag) = b.split_once('.').unwrap();
    for forged in [
        format!("{b_payload}.{a_tag}"),
        format!("{a_payload}.{b_tag}"),
        format!("{}.{a_tag}", URL_SAFE_NO_PAD.encode("foo/httpbin/sleep-a")),
    ] {
        assert!(
            matches!(tokens.verify(&forged), Err(CaError::Token(_))),
            "{forged}"
        );
    }
    // Another control plane's tokens are worthless here.
    let other = Tokens::new(b"another secret of thirty-two bytes, or more");
    assert!(other.verify(&a).is_err());
}

#[test]
fn csr_and_token_parsers_survive_random_and_mutated_input() {
    let (ca, dir) = ca("fuzz");
    let token = ca.tokens().mint("foo", "sleep", "sleep-abc");
    let good = csr_for("spiffe://cluster.local/ns/foo/sa/sleep");
    let der = x509_parser::pem::parse_x509_pem(good.as_bytes())
        .unwrap()
        .1
        .contents;
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for i in 0..3000 {
        let mut bytes = der.clone();
        match i % 3 {
            0 => {
                for _ in 0..rng.usize(1..8) {
                    let at = rng.usize(..bytes.len());
                    bytes[at] = rng.u8(..);
                }
            }
            1 => bytes.truncate(rng.usize(..bytes.len())),
            _ => bytes = (0..rng.usize(..600)).map(|_| rng.u8(..)).collect(),
        }
        let pem = format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            base64::engine::general_purpose::STANDARD.encode(&bytes)
        );
        if let Ok(issued) = ca.sign(&token, &pem, None) {
            // Only a CSR whose signature still verifies for the right identity.
            assert_eq!(issued.chain.len(), 2);
        }
        let mut mutated: Vec<u8> = token.clone().into_bytes();
        let at = rng.usize(..mutated.len());
        mutated[at] = rng.u8(..);
        let _ = ca.tokens().verify(&String::from_utf8_lossy(&mutated));
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_plugged_in_ca_signs_and_a_broken_one_is_refused() {
    let dir = scratch_dir("plugged");
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "learner's own root");
    params.distinguished_name = name;
    let cert = params.self_signed(&key).unwrap();
    let plugged = PluggedCa {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    };
    let ca = MeshCa::load_or_create(&dir, Some(&plugged), DEFAULT_WORKLOAD_CERT_TTL).unwrap();
    assert_eq!(ca.root_pem(), plugged.cert_pem);
    let token = ca.tokens().mint("foo", "sleep", "p");
    let issued = ca
        .sign(
            &token,
            &csr_for("spiffe://cluster.local/ns/foo/sa/sleep"),
            None,
        )
        .unwrap();
    assert_eq!(issued.chain[1], plugged.cert_pem);
    let broken = PluggedCa {
        cert_pem: plugged.cert_pem.clone(),
        key_pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned(),
    };
    let err = MeshCa::load_or_create(&dir, Some(&broken), DEFAULT_WORKLOAD_CERT_TTL).unwrap_err();
    assert!(err.to_string().contains("private key"), "{err}");
    // The good one stays.
    let again = MeshCa::load_or_create(&dir, None, DEFAULT_WORKLOAD_CERT_TTL).unwrap();
    assert_eq!(again.root_pem(), plugged.cert_pem);
    let _ = fs::remove_dir_all(&dir);
}
