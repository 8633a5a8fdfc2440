use super::*;

#[test]
fn header_names_are_canonical_as_go_writes_them() {
    assert_eq!(
        canonical_name("x-forwarded-client-cert"),
        "X-Forwarded-Client-Cert"
    );
    assert_eq!(canonical_name("host"), "Host");
    assert_eq!(canonical_name("x-b3-traceid"), "X-B3-Traceid");
}

#[test]
fn form_values_are_percent_decoded() {
    let pairs: Vec<_> = form_pairs("a=1&b=hello+world&c=%2Fx%3D&d").collect();
    assert_eq!(
        pairs,
        vec![
            ("a".into(), "1".into()),
            ("b".into(), "hello world".into()),
            ("c".into(), "/x=".into()),
            ("d".into(), String::new()),
        ]
    );
}
