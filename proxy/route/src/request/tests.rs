use http::HeaderMap;

use super::{RequestHead, percent_decode};

fn head<'a>(path_and_query: &'a str, headers: &'a HeaderMap) -> RequestHead<'a> {
    RequestHead {
        authority: "reviews:9080",
        path_and_query,
        method: "GET",
        scheme: "http",
        headers,
    }
}

#[test]
fn path_and_query_are_split_as_envoy_matchers_see_them() {
    let headers = HeaderMap::new();
    let table = [
        ("/reviews/0", "/reviews/0", ""),
        ("/reviews/0?x=1", "/reviews/0", "x=1"),
        ("/a?x=1#frag", "/a", "x=1"),
        ("/a#frag?x", "/a", ""),
        ("/?", "/", ""),
    ];
    for (target, path, query) in table {
        let request = head(target, &headers);
        assert_eq!(request.path(), path, "{target}");
        assert_eq!(request.query(), query, "{target}");
    }
}

#[test]
fn query_params_are_decoded_and_the_first_value_wins() {
    let headers = HeaderMap::new();
    let request = head(
        "/get?user=jason&user=other&flag&name%20x=a%2Fb&plus=a+b",
        &headers,
    );
    let table = [
        ("user", Some("jason")),
        ("flag", Some("")),
        ("name x", Some("a/b")),
        ("plus", Some("a+b")),
        ("missing", None),
    ];
    for (name, expected) in table {
        assert_eq!(request.query_param(name).as_deref(), expected, "{name}");
    }
}

#[test]
fn headers_include_pseudo_headers_and_join_repeats() {
    let mut headers = HeaderMap::new();
    headers.append("x-multi", "a".parse().unwrap());
    headers.append("x-multi", "b".parse().unwrap());
    headers.insert("end-user", "jason".parse().unwrap());
    let request = head("/p?q", &headers);
    let table = [
        (":authority", Some("reviews:9080")),
        ("host", Some("reviews:9080")),
        (":method", Some("GET")),
        (":scheme", Some("http")),
        (":path", Some("/p?q")),
        ("end-user", Some("jason")),
        ("x-multi", Some("a,b")),
        ("absent", None),
    ];
    for (name, expected) in table {
        assert_eq!(request.header(name).as_deref(), expected, "{name}");
    }
}

#[test]
fn percent_decoding_leaves_malformed_escapes() {
    let table = [
        ("a%20b", "a b"),
        ("%zz", "%zz"),
        ("100%", "100%"),
        ("%2", "%2"),
        ("%+1", "%+1"),
        ("%C3%A9", "é"),
    ];
    for (encoded, decoded) in table {
        assert_eq!(percent_decode(encoded), decoded, "{encoded}");
    }
}
