use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, date_time_ymd};

use super::*;

fn certificate(not_after_year: i32) -> Vec<u8> {
    let mut params =
        CertificateParams::new(vec!["httpbin.example.com".to_owned()]).expect("params");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "httpbin.example.com");
    dn.push(DnType::OrganizationName, "httpbin organization");
    params.distinguished_name = dn;
    params.not_before = date_time_ymd(2024, 3, 2);
    params.not_after = date_time_ymd(not_after_year, 12, 31);
    let key = KeyPair::generate().expect("key");
    params
        .self_signed(&key)
        .expect("certificate")
        .der()
        .to_vec()
}

#[test]
fn describes_like_curl() {
    assert_eq!(
        describe(&certificate(2034)),
        [
            "subject: CN=httpbin.example.com; O=httpbin organization",
            "start date: Mar  2 00:00:00 2024 GMT",
            "expire date: Dec 31 00:00:00 2034 GMT",
            "issuer: CN=httpbin.example.com; O=httpbin organization",
        ]
    );
}

#[test]
fn reads_generalized_time() {
    assert_eq!(
        describe(&certificate(2051))[2],
        "expire date: Dec 31 00:00:00 2051 GMT"
    );
}

#[test]
fn survives_garbage() {
    for der in [&b""[..], b"\x30\x03\x01", b"\x30\x84\xff\xff\xff\xff"] {
        assert_eq!(describe(der).len(), 1);
    }
}

#[test]
fn names_unknown_attributes_by_oid() {
    // 1.3.6.1.4.1.311 (a Microsoft arc) with a PrintableString value.
    let name_der = [
        0x31, 0x0F, 0x30, 0x0D, 0x06, 0x07, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x13, 0x02,
        0x61, 0x62,
    ];
    assert_eq!(name(&name_der).as_deref(), Some("1.3.6.1.4.1.311=ab"));
}
