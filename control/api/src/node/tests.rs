use std::collections::BTreeMap;

use super::*;

fn reviews() -> ProxyNode {
    ProxyNode {
        kind: ProxyKind::Sidecar,
        pod: "reviews-v1-7f9c".to_owned(),
        namespace: "default".to_owned(),
        ip: "10.0.0.5".to_owned(),
        labels: BTreeMap::from([("app".to_owned(), "reviews".to_owned())]),
        service_account: "bookinfo-reviews".to_owned(),
    }
}

#[test]
fn round_trips_with_istio_id() {
    let wire = node_to_wire(reviews(), "0.1.0");
    assert_eq!(
        wire.id,
        "sidecar~10.0.0.5~reviews-v1-7f9c.default~default.svc.cluster.local"
    );
    assert_eq!(
        (wire.kind.as_str(), wire.version.as_str()),
        ("sidecar", "0.1.0")
    );
    assert_eq!(node_from_wire(wire), Ok(reviews()));
    let gateway = ProxyNode {
        kind: ProxyKind::Router,
        ..reviews()
    };
    assert_eq!(
        node_from_wire(node_to_wire(gateway.clone(), "")),
        Ok(gateway)
    );
}

#[test]
fn rejects_incomplete_or_inconsistent_nodes() {
    let good = node_to_wire(reviews(), "");
    let cases = [
        (
            v1::Node {
                id: String::new(),
                ..good.clone()
            },
            "node has no id",
        ),
        (
            v1::Node {
                namespace: String::new(),
                ..good.clone()
            },
            "node has no namespace",
        ),
        (
            v1::Node {
                kind: "waypoint".to_owned(),
                ..good.clone()
            },
            "node kind \"waypoint\" is not \"sidecar\" or \"router\"",
        ),
        (
            v1::Node {
                ip: "10.0.0".to_owned(),
                ..good.clone()
            },
            "node ip \"10.0.0\" is not an IP address",
        ),
        (
            v1::Node {
                ip: "10.0.0.6".to_owned(),
                ..good
            },
            "node id \"sidecar~10.0.0.5~reviews-v1-7f9c.default~default.svc.cluster.local\" does not match its fields (expected \"sidecar~10.0.0.6~reviews-v1-7f9c.default~default.svc.cluster.local\")",
        ),
    ];
    for (node, message) in cases {
        let error = node_from_wire(node).expect_err(message);
        assert_eq!(error.to_string(), message);
    }
}
