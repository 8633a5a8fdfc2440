use std::collections::BTreeMap;

use meshlab_proxy_config::ProxyKind;

use super::*;

fn productpage() -> (ProxyNode, Peer) {
    let node = ProxyNode {
        kind: ProxyKind::Sidecar,
        pod: "productpage-v1-6b746f74dc-9stvs".to_owned(),
        namespace: "default".to_owned(),
        ip: "10.0.0.7".to_owned(),
        labels: BTreeMap::from([
            ("app".to_owned(), "productpage".to_owned()),
            ("version".to_owned(), "v1".to_owned()),
        ]),
        service_account: "bookinfo-productpage".to_owned(),
    };
    let me = Peer::of_node(&node);
    (node, me)
}

#[test]
fn headers_go_to_sidecars_only() {
    let (node, me) = productpage();
    let metadata = PeerMetadata::new(&node, &me);

    let mut headers = HeaderMap::new();
    metadata.apply(&mut headers, true);
    assert_eq!(
        headers[&X_ENVOY_PEER_METADATA_ID],
        "sidecar~10.0.0.7~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local"
    );
    let peer = decode(&headers[&X_ENVOY_PEER_METADATA]).expect("our own metadata decodes");
    assert_eq!(
        peer,
        Peer {
            principal: "unknown".to_owned(),
            ..me
        }
    );
    assert_eq!(peer.workload, "productpage-v1");
    assert_eq!(peer.app, "productpage");
    assert_eq!(peer.canonical_revision, "v1");

    // Toward a workload without a sidecar (or an external host) nothing is sent,
    // and what an app set itself is dropped.
    let mut headers = HeaderMap::new();
    headers.insert(&X_ENVOY_PEER_METADATA, HeaderValue::from_static("forged"));
    headers.insert(
        &X_ENVOY_PEER_METADATA_ID,
        HeaderValue::from_static("forged"),
    );
    metadata.apply(&mut headers, false);
    assert!(headers.is_empty(), "{headers:?}");
}

#[test]
fn inbound_headers_are_taken_out() {
    let (node, me) = productpage();
    let mut headers = HeaderMap::new();
    PeerMetadata::new(&node, &me).apply(&mut headers, true);
    headers.insert("x-request-id", HeaderValue::from_static("abc"));
    let taken = take_inbound(&mut headers).expect("the metadata");
    assert_eq!(
        decode(&taken).map(|p| p.app),
        Some("productpage".to_owned())
    );
    assert_eq!(headers.len(), 1, "{headers:?}");
    assert!(headers.contains_key("x-request-id"));

    let mut headers = HeaderMap::new();
    assert_eq!(take_inbound(&mut headers), None);
}

#[test]
fn undecodable_metadata_describes_nobody() {
    for value in ["not base64!", "bm90IGpzb24=", "WzEsMl0="] {
        assert_eq!(decode(&HeaderValue::from_static(value)), None, "{value}");
    }
    // Missing fields stay unknown.
    let partial = HeaderValue::from_str(&STANDARD.encode(r#"{"app":"sleep","version":7}"#))
        .expect("base64 is a header value");
    let peer = decode(&partial).expect("a JSON object");
    assert_eq!(peer.app, "sleep");
    assert_eq!(peer.version, "unknown");
    assert_eq!(peer.workload, "unknown");
}
