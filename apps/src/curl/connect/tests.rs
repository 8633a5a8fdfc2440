use super::*;

fn entries(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn parses_resolve_entries() {
    let resolver = Resolver::new(
        &entries(&[
            "httpbin.example.com:443:127.0.0.1",
            "+Multi.example:80:10.0.0.1,[::1]",
            "-gone.example:80",
            "*:8080:192.0.2.7",
        ]),
        None,
    )
    .expect("valid entries");
    assert_eq!(
        resolver.describe(),
        [
            "Added httpbin.example.com:443:127.0.0.1 to DNS cache",
            "Added multi.example:80:10.0.0.1,::1 to DNS cache",
            "Added *:8080:192.0.2.7 to DNS cache",
        ]
    );
    let found = |host: &str, port| {
        resolver
            .lookup_override(host, port)
            .map(|e| e.addrs.clone())
    };
    assert_eq!(found("MULTI.example", 80).map(|a| a.len()), Some(2));
    assert_eq!(
        found("anything", 8080),
        Some(vec!["192.0.2.7".parse().expect("ip")])
    );
    assert_eq!(found("httpbin.example.com", 80), None);
}

#[test]
fn rejects_bad_resolve_entries() {
    for entry in [
        "nohost",
        "h:port:1.2.3.4",
        "h:80:not-an-ip",
        ":80:1.2.3.4",
        "h:80",
    ] {
        let err = Resolver::new(&entries(&[entry]), None).expect_err(entry);
        assert_eq!(err.exit_code(), 49, "{entry}");
    }
}

#[tokio::test]
async fn resolves_literals_overrides_and_families() {
    let resolver =
        Resolver::new(&entries(&["svc.test:80:10.1.2.3,::2"]), Some(IpVersion::V4)).expect("valid");
    let addrs = resolver.resolve("svc.test", 80).await.expect("override");
    assert_eq!(addrs, [SocketAddr::from(([10, 1, 2, 3], 80))]);
    let addrs = resolver.resolve("127.0.0.1", 9).await.expect("literal");
    assert_eq!(addrs, [SocketAddr::from(([127, 0, 0, 1], 9))]);
    let err = resolver
        .resolve("::1", 9)
        .await
        .expect_err("v6 filtered out");
    assert_eq!(err.exit_code(), 6);
}
