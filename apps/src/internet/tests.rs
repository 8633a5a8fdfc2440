use axum::http::Request;

use super::request_host;

#[test]
fn the_host_comes_from_the_authority_then_the_host_header() {
    // (request target, Host header, host the request is for)
    let cases = [
        ("/headers", Some("httpbin.org"), Some("httpbin.org")),
        ("/headers", Some("HTTPBin.ORG:80"), Some("httpbin.org")),
        ("/", Some("www.google.com."), Some("www.google.com")),
        ("/", Some("[::1]:443"), Some("[::1]")),
        ("https://www.google.com/", None, Some("www.google.com")),
        (
            "http://Edition.CNN.com:8080/x",
            Some("other.example"),
            Some("edition.cnn.com"),
        ),
        ("/", None, None),
        ("/", Some(""), None),
        ("/", Some("bad host"), None),
    ];
    for (target, host, expected) in cases {
        let mut request = Request::builder().uri(target);
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let request = request.body(()).unwrap();
        assert_eq!(
            request_host(&request).as_deref(),
            expected,
            "target {target:?}, Host {host:?}"
        );
    }
}
