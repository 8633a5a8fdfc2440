use super::{HeaderMatch, HeaderMatcher, QueryMatch, QueryMatcher, RouteMatch};
use crate::{
    pattern::Pattern,
    test_support::{Req, exact, prefix, regex},
};

fn re(pattern: &str) -> Pattern {
    Pattern::new(pattern).unwrap()
}

#[test]
fn paths_match_exact_prefix_and_regex_without_the_query() {
    let table = [
        (prefix("/"), "/anything?x=1", true),
        (prefix("/api"), "/api", true),
        (prefix("/api"), "/api/v1", true),
        (prefix("/api"), "/apis", true),
        (prefix("/api"), "/API", false),
        (prefix("/api"), "/ap", false),
        (prefix("/api/"), "/api", false),
        (exact("/productpage"), "/productpage", true),
        (exact("/productpage"), "/productpage?u=normal", true),
        (exact("/productpage"), "/productpage/", false),
        (exact("/productpage"), "/Productpage", false),
        (regex("/reviews/[0-9]+"), "/reviews/0", true),
        (regex("/reviews/[0-9]+"), "/reviews/0?x=1", true),
        // Regexes match the whole path, never a part of it.
        (regex("/reviews/[0-9]+"), "/reviews/0/extra", false),
        (regex("[0-9]+"), "/reviews/0", false),
        (regex("a|ab"), "ab", true),
    ];
    for (matcher, path, expected) in table {
        let request = Req::get("reviews:9080", path);
        assert_eq!(
            matcher.matches(&request.head()),
            expected,
            "{:?} on {path}",
            matcher.path
        );
    }
}

#[test]
fn ignore_uri_case_applies_to_prefix_and_exact_not_regex() {
    let insensitive = |mut matcher: RouteMatch| {
        matcher.ignore_case = true;
        matcher
    };
    let table = [
        (insensitive(prefix("/API")), "/api/v1", true),
        (insensitive(prefix("/api")), "/Api/V1", true),
        (insensitive(exact("/ProductPage")), "/productpage", true),
        (insensitive(exact("/productpage")), "/productpage/x", false),
        // Envoy: case_sensitive is ignored for safe_regex.
        (insensitive(regex("/api")), "/API", false),
        (insensitive(regex("(?i)/api")), "/API", true),
    ];
    for (matcher, path, expected) in table {
        let request = Req::get("h", path);
        assert_eq!(
            matcher.matches(&request.head()),
            expected,
            "{:?} on {path}",
            matcher.path
        );
    }
}

#[test]
fn header_matchers_follow_envoy() {
    let jason = || HeaderMatch::Exact("jason".to_owned());
    let table = [
        // (matcher, end-user header, expected)
        (HeaderMatcher::new("end-user", jason()), Some("jason"), true),
        (
            HeaderMatcher::new("end-user", jason()),
            Some("Jason"),
            false,
        ),
        (
            HeaderMatcher::new("end-user", jason()),
            Some("jasonx"),
            false,
        ),
        (HeaderMatcher::new("end-user", jason()), None, false),
        (HeaderMatcher::new("End-User", jason()), Some("jason"), true),
        (
            HeaderMatcher::new("end-user", HeaderMatch::Prefix("ja".to_owned())),
            Some("jason"),
            true,
        ),
        (
            HeaderMatcher::new("end-user", HeaderMatch::Prefix("ja".to_owned())),
            Some("tom"),
            false,
        ),
        (
            HeaderMatcher::new("end-user", HeaderMatch::Suffix("son".to_owned())),
            Some("jason"),
            true,
        ),
        (
            HeaderMatcher::new("end-user", HeaderMatch::Regex(re("j.*n"))),
            Some("jason"),
            true,
        ),
        (
            HeaderMatcher::new("end-user", HeaderMatch::Regex(re("j"))),
            Some("jason"),
            false,
        ),
        (
            HeaderMatcher::new("end-user", HeaderMatch::Present(true)),
            Some(""),
            true,
        ),
        (
            HeaderMatcher::new("end-user", HeaderMatch::Present(true)),
            None,
            false,
        ),
        (
            HeaderMatcher::new("end-user", HeaderMatch::Present(false)),
            None,
            true,
        ),
        (
            HeaderMatcher::new("end-user", HeaderMatch::Present(false)),
            Some("jason"),
            false,
        ),
        // withoutHeaders, as Istio translates it.
        (
            HeaderMatcher::istio_without("end-user", jason()),
            Some("jason"),
            false,
        ),
        (
            HeaderMatcher::istio_without("end-user", jason()),
            Some("tom"),
            true,
        ),
        (
            HeaderMatcher::istio_without("end-user", jason()),
            None,
            true,
        ),
        (
            HeaderMatcher::istio_without("end-user", HeaderMatch::Present(true)),
            None,
            true,
        ),
        (
            HeaderMatcher::istio_without("end-user", HeaderMatch::Present(true)),
            Some("x"),
            false,
        ),
        // Plain Envoy inversion without treat_missing_header_as_empty: an absent
        // header does not satisfy an inverted exact match.
        (
            HeaderMatcher::new("end-user", jason()).inverted(),
            None,
            false,
        ),
        (
            HeaderMatcher::new("end-user", jason()).inverted(),
            Some("tom"),
            true,
        ),
    ];
    for (matcher, value, expected) in table {
        let mut request = Req::get("reviews:9080", "/");
        if let Some(value) = value {
            request = request.header("end-user", value);
        }
        assert_eq!(
            matcher.matches(&request.head()),
            expected,
            "{matcher:?} with {value:?}"
        );
    }
}

#[test]
fn method_authority_and_scheme_are_pseudo_header_matches() {
    let table = [
        (
            HeaderMatcher::new(":method", HeaderMatch::Exact("POST".to_owned())),
            true,
        ),
        (
            HeaderMatcher::new(":method", HeaderMatch::Exact("GET".to_owned())),
            false,
        ),
        (
            HeaderMatcher::new(":authority", HeaderMatch::Prefix("httpbin".to_owned())),
            true,
        ),
        (
            HeaderMatcher::new(":authority", HeaderMatch::Exact("httpbin:8000".to_owned())),
            true,
        ),
        (
            HeaderMatcher::new(":scheme", HeaderMatch::Exact("https".to_owned())),
            true,
        ),
    ];
    let request = Req::get("httpbin:8000", "/post")
        .method("POST")
        .scheme("https");
    for (matcher, expected) in table {
        assert_eq!(matcher.matches(&request.head()), expected, "{matcher:?}");
    }
}

#[test]
fn repeated_headers_match_as_one_joined_value() {
    let request = Req::get("h", "/").header("x-tag", "a").header("x-tag", "b");
    let table = [
        (HeaderMatch::Exact("a,b".to_owned()), true),
        (HeaderMatch::Exact("a".to_owned()), false),
        (HeaderMatch::Suffix("b".to_owned()), true),
    ];
    for (kind, expected) in table {
        let matcher = HeaderMatcher::new("x-tag", kind);
        assert_eq!(matcher.matches(&request.head()), expected, "{matcher:?}");
    }
}

#[test]
fn query_params_are_decoded_and_must_be_present() {
    let table = [
        (QueryMatch::Exact("jason".to_owned()), "/?user=jason", true),
        (
            QueryMatch::Exact("jason".to_owned()),
            "/?user=jason&user=tom",
            true,
        ),
        (
            QueryMatch::Exact("jason".to_owned()),
            "/?user=tom&user=jason",
            false,
        ),
        (
            QueryMatch::Exact("j son".to_owned()),
            "/?user=j%20son",
            true,
        ),
        (QueryMatch::Prefix("ja".to_owned()), "/?user=jason", true),
        (QueryMatch::Suffix("son".to_owned()), "/?user=jason", true),
        (QueryMatch::Regex(re("[a-z]+")), "/?user=jason", true),
        (QueryMatch::Regex(re("[a-z]+")), "/?user=jason1", false),
        (QueryMatch::Present, "/?user", true),
        (QueryMatch::Present, "/?user=", true),
        (QueryMatch::Present, "/?other=1", false),
        (QueryMatch::Exact(String::new()), "/?user", true),
        (QueryMatch::Exact("jason".to_owned()), "/", false),
    ];
    for (kind, path, expected) in table {
        let matcher = QueryMatcher::new("user", kind);
        let request = Req::get("h", path);
        assert_eq!(
            matcher.matches(&request.head()),
            expected,
            "{matcher:?} on {path}"
        );
    }
}

#[test]
fn every_condition_must_hold() {
    let matcher = prefix("/reviews")
        .with_header(HeaderMatcher::new(
            "end-user",
            HeaderMatch::Exact("jason".to_owned()),
        ))
        .with_query_param(QueryMatcher::new("debug", QueryMatch::Present));
    let table = [
        (
            Req::get("h", "/reviews/0?debug").header("end-user", "jason"),
            true,
        ),
        (
            Req::get("h", "/reviews/0").header("end-user", "jason"),
            false,
        ),
        (Req::get("h", "/reviews/0?debug"), false),
        (
            Req::get("h", "/ratings?debug").header("end-user", "jason"),
            false,
        ),
    ];
    for (request, expected) in table {
        assert_eq!(matcher.matches(&request.head()), expected);
    }
}

#[test]
fn matches_serialize_in_envoy_like_json() {
    let matcher = exact("/productpage").with_header(HeaderMatcher::istio_without(
        "end-user",
        HeaderMatch::Exact("jason".to_owned()),
    ));
    let json = serde_json::to_value(&matcher).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "path": {"exact": "/productpage"},
            "headers": [{
                "name": "end-user",
                "kind": {"exact": "jason"},
                "invert": true,
                "treat_missing_as_empty": true
            }]
        })
    );
    assert_eq!(serde_json::from_value::<RouteMatch>(json).unwrap(), matcher);
    let bad = serde_json::json!({"path": {"regex": "(unclosed"}});
    let error = serde_json::from_value::<RouteMatch>(bad)
        .unwrap_err()
        .to_string();
    assert!(error.contains("invalid regex \"(unclosed\""), "{error}");
}
