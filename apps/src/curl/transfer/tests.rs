use super::*;

#[test]
fn splits_custom_headers_like_curl() {
    let cases = [
        (
            "Host: httpbin.example.com",
            Some(("Host", "httpbin.example.com", false)),
        ),
        ("X-Empty;", Some(("X-Empty", "", false))),
        ("Accept:", Some(("Accept", "", true))),
        (
            "Authorization: Bearer a;b",
            Some(("Authorization", "Bearer a;b", false)),
        ),
        ("  end-user :  jason ", Some(("end-user", "jason", false))),
        ("no separator", None),
        (": no name", None),
        ("X; not empty", None),
    ];
    for (raw, expected) in cases {
        assert_eq!(parse_header(raw), expected, "{raw}");
    }
}

#[test]
fn title_cases_header_names() {
    assert_eq!(title_case("user-agent"), "User-Agent");
    assert_eq!(title_case("x-b3-traceid"), "X-B3-Traceid");
    assert_eq!(title_case("Host"), "Host");
}

#[test]
fn prints_status_lines_like_curl() {
    let head = |version, status: u16| {
        let (parts, ()) = Response::builder()
            .version(version)
            .status(status)
            .header("content-type", "text/plain")
            .body(())
            .expect("response")
            .into_parts();
        String::from_utf8(response_head(&parts)).expect("utf-8")
    };
    assert_eq!(
        head(Version::HTTP_11, 200),
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n"
    );
    assert_eq!(
        head(Version::HTTP_2, 503),
        "HTTP/2 503\r\ncontent-type: text/plain\r\n\r\n"
    );
    assert_eq!(
        head(Version::HTTP_10, 418),
        "HTTP/1.0 418 I'm a teapot\r\ncontent-type: text/plain\r\n\r\n"
    );
}

#[test]
fn follows_only_redirect_statuses() {
    let url = Url::parse("http://h/a/b").expect("url");
    let mut headers = http::HeaderMap::new();
    headers.insert(header::LOCATION, HeaderValue::from_static("../c"));
    let target = |code: u16| {
        redirect_target(&url, StatusCode::from_u16(code).expect("status"), &headers)
            .map(|u| u.to_string())
    };
    for code in [301, 302, 303, 307, 308] {
        assert_eq!(target(code).as_deref(), Some("http://h/c"), "{code}");
    }
    for code in [200, 304, 404] {
        assert_eq!(target(code), None, "{code}");
    }
}
