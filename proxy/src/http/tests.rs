use super::*;

#[test]
fn mirror_authorities_get_envoys_shadow_suffix() {
    let cases = [
        ("httpbin", "httpbin-shadow"),
        ("httpbin:8000", "httpbin-shadow:8000"),
        (
            "reviews.default.svc.cluster.local:9080",
            "reviews.default.svc.cluster.local-shadow:9080",
        ),
        ("[::1]:80", "[::1]:80-shadow"),
    ];
    for (authority, expected) in cases {
        assert_eq!(shadow_authority(authority), expected);
    }
}

#[test]
fn request_ids_are_version_4_uuids() {
    let id = uuid();
    let text = id.to_str().unwrap();
    let groups: Vec<&str> = text.split('-').collect();
    assert_eq!(
        groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12],
        "{text}"
    );
    assert!(groups[2].starts_with('4'), "{text}");
    assert!(
        matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
        "{text}"
    );
    assert_ne!(uuid(), uuid());

    let mut headers = HeaderMap::new();
    let generated = ensure_request_id(&mut headers);
    assert_eq!(headers.get("x-request-id"), Some(&generated));
    headers.insert("x-request-id", HeaderValue::from_static("abc"));
    assert_eq!(
        ensure_request_id(&mut headers),
        "abc",
        "an existing id is kept"
    );
}

#[test]
fn hop_by_hop_headers_stay_behind() {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("connection", "keep-alive, x-private"),
        ("keep-alive", "timeout=5"),
        ("x-private", "1"),
        ("transfer-encoding", "chunked"),
        ("te", "trailers"),
        ("end-user", "jason"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    strip_hop_by_hop(&mut headers);
    let left: Vec<(&str, &str)> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
        .collect();
    assert_eq!(
        left,
        [("end-user", "jason"), ("te", "trailers")],
        "gRPC's `te: trailers` stays"
    );

    let mut headers = HeaderMap::new();
    headers.insert("te", HeaderValue::from_static("gzip"));
    strip_hop_by_hop(&mut headers);
    assert!(headers.is_empty());
}

#[test]
fn hashes_combine_every_policy_that_yields_a_key() {
    let mut headers = HeaderMap::new();
    headers.insert("x-user", HeaderValue::from_static("jason"));
    let head = RequestHead {
        authority: "reviews",
        path_and_query: "/?shard=3",
        method: "GET",
        scheme: "http",
        headers: &headers,
    };
    let remote: SocketAddr = "10.0.0.7:5000".parse().unwrap();
    let header = HashPolicy::Header {
        name: "x-user".to_owned(),
    };
    let missing = HashPolicy::Header {
        name: "x-none".to_owned(),
    };
    let query = HashPolicy::QueryParameter {
        name: "shard".to_owned(),
    };
    assert_eq!(request_hash(&[], &head, remote), None);
    assert_eq!(
        request_hash(std::slice::from_ref(&missing), &head, remote),
        None
    );
    assert_eq!(
        request_hash(std::slice::from_ref(&header), &head, remote),
        Some(hash64(b"jason"))
    );
    assert_eq!(
        request_hash(&[header, missing, query], &head, remote),
        Some(hash64(b"jason").rotate_left(1) ^ hash64(b"3"))
    );
    assert_eq!(
        request_hash(&[HashPolicy::SourceIp], &head, remote),
        Some(hash64(b"10.0.0.7"))
    );
}

#[test]
fn gateways_append_the_client_to_x_forwarded_for() {
    let remote: SocketAddr = "192.168.0.24:8459".parse().unwrap();
    let mut headers = HeaderMap::new();
    append_forwarded_for(&mut headers, remote);
    assert_eq!(headers["x-forwarded-for"], "192.168.0.24");
    append_forwarded_for(&mut headers, "10.0.0.1:1".parse().unwrap());
    assert_eq!(headers["x-forwarded-for"], "192.168.0.24,10.0.0.1");
}
