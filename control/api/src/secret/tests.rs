use crate::v1;

#[test]
fn private_keys_are_not_logged() {
    let certificate = v1::TlsCertificate {
        certificate_chain: "-----BEGIN CERTIFICATE-----".to_owned(),
        private_key: "-----BEGIN PRIVATE KEY-----secret".to_owned(),
    };
    let printed = format!("{certificate:?}");
    assert!(printed.contains("<redacted>"), "{printed}");
    assert!(!printed.contains("secret"), "{printed}");
}
