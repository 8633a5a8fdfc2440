use super::*;

fn url(s: &str) -> Url {
    Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn parses_like_curl() {
    let cases = [
        (
            "http://reviews:9080/reviews/0",
            "http://reviews:9080/reviews/0",
        ),
        (
            "localhost:8080/productpage",
            "http://localhost:8080/productpage",
        ),
        ("httpbin.org", "http://httpbin.org/"),
        ("https://www.google.com:443", "https://www.google.com/"),
        ("HTTP://Example.com?q=1", "http://Example.com/?q=1"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://h/a#frag", "http://h/a"),
        ("http://h:/p", "http://h/p"),
        ("http://h/caf\u{e9}", "http://h/caf%C3%A9"),
        ("http://h/{x}", "http://h/%7Bx%7D"),
    ];
    for (input, expected) in cases {
        assert_eq!(url(input).to_string(), expected, "{input}");
    }
}

#[test]
fn keeps_parts() {
    let u = url("https://user:p%40ss@[::1]:8443/a?b=c");
    assert_eq!(u.scheme, Scheme::Https);
    assert_eq!(u.host, "::1");
    assert_eq!(u.port, 8443);
    assert_eq!(u.path, "/a?b=c");
    assert_eq!(u.userinfo.as_deref(), Some("user:p@ss"));
    assert_eq!(u.authority(), "[::1]:8443");
}

#[test]
fn rejects_what_curl_rejects() {
    let cases = [
        ("ftp://x/", 1),
        ("http://", 3),
        ("http:///path", 3),
        ("http://h:99999/", 3),
        ("http://h:8o/", 3),
        ("http://[::1/", 3),
        ("http://a b/", 3),
        ("http://h/a b", 3),
    ];
    for (input, code) in cases {
        let err = Url::parse(input).expect_err(input);
        assert_eq!(err.exit_code(), code, "{input}: {err}");
    }
}

#[test]
fn resolves_redirect_locations() {
    let base = url("http://h:8000/a/b/c?q=1");
    let cases = [
        ("http://other/x", "http://other/x"),
        ("//other:81/y", "http://other:81/y"),
        ("/status/200", "http://h:8000/status/200"),
        ("d", "http://h:8000/a/b/d"),
        ("../d?x=y", "http://h:8000/a/d?x=y"),
        ("./", "http://h:8000/a/b/"),
        ("?z=2", "http://h:8000/a/b/c?z=2"),
        ("", "http://h:8000/a/b/c?q=1"),
        ("../../../../e", "http://h:8000/e"),
        ("/a/./b/../c", "http://h:8000/a/c"),
    ];
    for (location, expected) in cases {
        let next = base.join(location).expect(location);
        assert_eq!(next.to_string(), expected, "{location}");
    }
}
