use http::{HeaderMap, HeaderName};

use super::{HeaderOps, HeaderPair, HeaderPlan};

fn pair(name: &str, value: &str) -> HeaderPair {
    HeaderPair::new(name, value).unwrap()
}

fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect()
}

fn request_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.append("x-keep", "k".parse().unwrap());
    headers.append("x-set", "old".parse().unwrap());
    headers.append("x-set", "older".parse().unwrap());
    headers.append("x-add", "first".parse().unwrap());
    headers.append("x-gone", "bye".parse().unwrap());
    headers
}

#[test]
fn one_level_removes_then_sets_then_adds() {
    let ops = HeaderOps {
        set: vec![pair("x-set", "new"), pair("x-fresh", "1")],
        add: vec![pair("x-add", "second"), pair("x-gone", "again")],
        remove: vec![HeaderName::from_static("x-gone")],
    };
    let mut headers = request_headers();
    ops.apply(&mut headers);

    let table = [
        ("x-keep", vec!["k"]),
        ("x-set", vec!["new"]),
        ("x-fresh", vec!["1"]),
        ("x-add", vec!["first", "second"]),
        // Removed first, then added: remove-before-add.
        ("x-gone", vec!["again"]),
    ];
    for (name, expected) in table {
        assert_eq!(values(&headers, name), expected, "{name}");
    }
}

#[test]
fn route_level_wins_over_destination_level() {
    let destination = HeaderOps {
        set: vec![
            pair("x-who", "destination"),
            pair("x-only-destination", "d"),
        ],
        ..HeaderOps::default()
    };
    let route = HeaderOps {
        set: vec![pair("x-who", "route")],
        ..HeaderOps::default()
    };
    let plan = HeaderPlan {
        destination: Some(&destination),
        route: Some(&route),
    };
    let mut headers = HeaderMap::new();
    plan.apply(&mut headers);
    assert_eq!(values(&headers, "x-who"), ["route"]);
    assert_eq!(values(&headers, "x-only-destination"), ["d"]);

    let mut untouched = request_headers();
    HeaderPlan::NONE.apply(&mut untouched);
    assert_eq!(untouched, request_headers());
}

#[test]
fn pairs_reject_invalid_http() {
    assert!(HeaderPair::new("X-Mixed-Case", "v").is_some_and(|pair| pair.name == "x-mixed-case"));
    assert!(HeaderPair::new("bad name", "v").is_none());
    assert!(HeaderPair::new("x-ok", "bad\nvalue").is_none());
}

#[test]
fn ops_serialize_as_names_and_values() {
    let ops = HeaderOps {
        set: vec![pair("x-set", "v")],
        add: Vec::new(),
        remove: vec![HeaderName::from_static("x-gone")],
    };
    let json = serde_json::to_value(&ops).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"set": [{"name": "x-set", "value": "v"}], "remove": ["x-gone"]})
    );
    let back: HeaderOps = serde_json::from_value(json).unwrap();
    assert_eq!(back, ops);
}
