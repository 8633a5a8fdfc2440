use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::*;

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshlab-pki-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

/// Verifies `chain` for `host` with rustls' own verifier, trusting only `ca_pem`.
fn verify(ca_pem: &str, chain_pem: &str, host: &str) -> Result<(), rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
    let chain: Vec<_> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .map(Result::unwrap)
        .collect();
    verifier
        .verify_server_cert(
            &chain[0],
            &chain[1..],
            &ServerName::try_from(host.to_owned()).unwrap(),
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
}

#[test]
fn server_certificates_verify_against_the_stored_ca() {
    let dir = scratch_dir("verify");
    let ca = PublicCa::load_or_create(&dir).unwrap();
    let mode = fs::metadata(dir.join(CA_KEY)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the CA key is private");

    let reloaded = PublicCa::load_or_create(&dir).unwrap();
    assert_eq!(
        reloaded.cert_pem(),
        ca.cert_pem(),
        "the CA survives a restart"
    );
    let server = reloaded
        .issue_server(&["httpbin.org", "www.google.com"])
        .unwrap();
    verify(ca.cert_pem(), &server.chain_pem, "www.google.com").unwrap();
    assert!(verify(ca.cert_pem(), &server.chain_pem, "edition.cnn.com").is_err());

    let other = PublicCa::load_or_create(&scratch_dir("other")).unwrap();
    assert!(verify(other.cert_pem(), &server.chain_pem, "httpbin.org").is_err());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_key_is_named() {
    let dir = scratch_dir("corrupt");
    PublicCa::load_or_create(&dir).unwrap();
    fs::write(dir.join(CA_KEY), "garbage").unwrap();
    let err = PublicCa::load_or_create(&dir).unwrap_err();
    assert!(
        err.to_string()
            .contains("public-ca.key is not a valid private key"),
        "{err}"
    );
    let _ = fs::remove_dir_all(&dir);
}
