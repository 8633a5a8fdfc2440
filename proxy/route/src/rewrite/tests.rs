use super::{PathRewrite, Redirect, RedirectPath, RegexRewrite};

#[test]
fn invalid_regex_rewrites_are_rejected() {
    let table = [
        ("(", "x", "invalid regex \"(\""),
        ("(a)", "\\2", "names a group the regex does not have"),
        ("a", "\\n", "is not \\0-\\9"),
        ("a", "x\\", "lone"),
    ];
    for (pattern, substitution, message) in table {
        let error = RegexRewrite::new(pattern, substitution)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(message),
            "{pattern:?} {substitution:?}: {error}"
        );
    }
}

#[test]
fn rewrites_serialize_as_written() {
    let rewrite = PathRewrite::Regex(
        RegexRewrite::new("^/service/([^/]+)(/.*)$", "\\2/instance/\\1").unwrap(),
    );
    let json = serde_json::to_value(&rewrite).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"regex": {"pattern": "^/service/([^/]+)(/.*)$", "substitution": "\\2/instance/\\1"}})
    );
    assert_eq!(
        serde_json::from_value::<PathRewrite>(json).unwrap(),
        rewrite
    );
    let bad = serde_json::json!({"regex": {"pattern": "a", "substitution": "\\1"}});
    assert!(serde_json::from_value::<PathRewrite>(bad).is_err());
}

#[test]
fn redirect_code_defaults_to_301() {
    let redirect: Redirect =
        serde_json::from_value(serde_json::json!({"path": {"path": "/new"}})).unwrap();
    assert_eq!(redirect.response_code, 301);
    assert_eq!(redirect.path, Some(RedirectPath::Path("/new".to_owned())));
    assert_eq!(Redirect::moved_permanently().response_code, 301);
}
