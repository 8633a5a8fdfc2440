use super::*;

#[test]
fn a_csr_names_only_the_spiffe_identity_and_the_key_stays_here() {
    let (csr, key) = key_and_csr("spiffe://cluster.local/ns/foo/sa/sleep").unwrap();
    assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    assert!(!csr.contains("PRIVATE KEY"));
    assert!(!key.is_empty());
    let params = rcgen::CertificateSigningRequestParams::from_pem(&csr).unwrap();
    assert_eq!(
        format!("{:?}", params.params.subject_alt_names),
        "[URI(Ia5String(\"spiffe://cluster.local/ns/foo/sa/sleep\"))]"
    );
}

#[test]
fn the_certificate_reader_survives_random_and_mutated_input() {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.subject_alt_names = vec![rcgen::SanType::URI(
        "spiffe://cluster.local/ns/foo/sa/sleep"
            .to_owned()
            .try_into()
            .unwrap(),
    )];
    let der = params.self_signed(&key).unwrap().der().to_vec();
    let facts = read_cert(&der).unwrap();
    assert_eq!(
        facts.spiffe_id.as_deref(),
        Some("spiffe://cluster.local/ns/foo/sa/sleep")
    );
    let mut rng = fastrand::Rng::with_seed(0x0dd5eed);
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
            _ => bytes = (0..rng.usize(..800)).map(|_| rng.u8(..)).collect(),
        }
        let _ = read_cert(&bytes);
        let _ = cert_hash(&bytes);
    }
}

#[test]
fn bad_pem_is_refused_with_what_was_wrong() {
    let identity = Identity::new("spiffe://cluster.local/ns/foo/sa/sleep");
    let err = identity
        .install("not a certificate", Vec::new(), "")
        .unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(!identity.is_ready());
}
