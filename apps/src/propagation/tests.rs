use super::*;

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_static(v));
    }
    h
}

#[test]
fn productpage_forwards_b3_without_parent_and_folds_flags() {
    let incoming = headers(&[
        ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
        ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ("x-b3-parentspanid", "0020000000000001"),
        ("x-b3-flags", "1"),
        ("x-request-id", "abc"),
        ("x-unrelated", "no"),
    ]);
    let out = productpage_headers(&incoming, Some("jason"));
    assert_eq!(out["x-b3-traceid"], "463ac35c9f6413ad48485a3953bb6124");
    assert_eq!(out["x-b3-spanid"], "a2fb4a1d1a96d312");
    assert_eq!(out["x-b3-sampled"], "1");
    assert!(out.get("x-b3-parentspanid").is_none());
    assert!(out.get("x-b3-flags").is_none());
    assert!(out.get("x-unrelated").is_none());
    assert_eq!(out["x-request-id"], "abc");
    assert_eq!(out["end-user"], "jason");
}

#[test]
fn productpage_drops_an_invalid_b3_context() {
    let incoming = headers(&[("x-b3-traceid", "xyz"), ("x-b3-spanid", "a2fb4a1d1a96d312")]);
    let out = productpage_headers(&incoming, None);
    assert!(out.is_empty());
}

#[test]
fn services_forward_the_whole_list_verbatim() {
    let incoming = headers(&[
        ("x-b3-parentspanid", "0020000000000001"),
        ("x-b3-flags", "1"),
        ("end-user", "jason"),
        (
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
    ]);
    let out = service_headers(&incoming);
    assert_eq!(out.len(), 4);
    assert_eq!(out["end-user"], "jason");
}
