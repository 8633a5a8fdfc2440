use super::*;

#[test]
fn condition_keys_are_istios() {
    for key in [
        "request.headers[x-token]",
        "source.ip",
        "request.auth.claims[groups]",
        "request.auth.claims[nested][key]",
        "destination.port",
        "connection.sni",
    ] {
        assert!(known_condition_key(key), "{key}");
    }
    for key in [
        "request.headers",
        "request.headers[]",
        "request.header[x]",
        "source.ips",
        "",
        "experimental.envoy.filters.network.mysql_proxy[db.table]",
    ] {
        assert!(!known_condition_key(key), "{key}");
    }
}

#[test]
fn empty_authorization_is_empty() {
    assert!(Authorization::default().is_empty());
    let allow_nothing = Authorization {
        policies: vec![Policy {
            name: "ns[default]-policy[allow-nothing]".into(),
            action: Action::Allow,
            rules: Vec::new(),
        }],
        ..Authorization::default()
    };
    assert!(!allow_nothing.is_empty());
}
