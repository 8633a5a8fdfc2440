use super::*;

#[test]
fn query_parameters_are_decoded() {
    let cases = [
        ("filter=httpbin", "filter", Some("httpbin")),
        (
            "a=1&filter=outbound%7C8000.%2Apending",
            "filter",
            Some("outbound|8000.*pending"),
        ),
        ("filter=a+b", "filter", Some("a b")),
        ("filter=%zz", "filter", Some("%zz")),
        ("usedonly", "filter", None),
    ];
    for (query, name, expected) in cases {
        assert_eq!(query_param(query, name).as_deref(), expected, "{query}");
    }
}
