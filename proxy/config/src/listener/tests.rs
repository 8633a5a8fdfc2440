use super::*;

fn chain(name: &str, matcher: ChainMatch) -> FilterChain {
    FilterChain {
        name: name.to_owned(),
        matcher,
        filter: NetworkFilter::TcpProxy(TcpProxy {
            stat_prefix: name.to_owned(),
            cluster: name.to_owned(),
            weighted_clusters: Vec::new(),
            authorization: None,
        }),
        tls: None,
    }
}

fn outbound() -> Listener {
    Listener {
        name: "virtualOutbound".to_owned(),
        address: "0.0.0.0:15001".parse().unwrap(),
        direction: TrafficDirection::Outbound,
        use_original_dst: true,
        filter_chains: vec![
            chain(
                "http-9080",
                ChainMatch {
                    destination_port: Some(9080),
                    ..ChainMatch::default()
                },
            ),
            chain(
                "tcp-db",
                ChainMatch {
                    destination_port: Some(9080),
                    destination_ips: vec!["10.0.0.9".parse().unwrap()],
                    ..ChainMatch::default()
                },
            ),
            chain(
                "google",
                ChainMatch {
                    destination_port: Some(443),
                    server_names: vec!["www.google.com".to_owned()],
                    transport_protocol: Some("tls".to_owned()),
                    ..ChainMatch::default()
                },
            ),
            chain(
                "wild",
                ChainMatch {
                    server_names: vec!["*.example.com".to_owned()],
                    ..ChainMatch::default()
                },
            ),
        ],
        default_filter_chain: Some(chain("PassthroughCluster", ChainMatch::default())),
    }
}

#[test]
fn the_most_specific_chain_wins_and_the_default_takes_the_rest() {
    let l = outbound();
    let pick = |dst: &str, sni: Option<&str>, transport: &str| {
        l.chain_for(dst.parse().unwrap(), sni, transport)
            .map(|c| c.name.as_str())
    };
    assert_eq!(pick("10.0.0.5:9080", None, "raw_buffer"), Some("http-9080"));
    assert_eq!(pick("10.0.0.9:9080", None, "raw_buffer"), Some("tcp-db"));
    assert_eq!(
        pick("1.2.3.4:443", Some("www.google.com"), "tls"),
        Some("google")
    );
    assert_eq!(
        pick("1.2.3.4:443", Some("edition.cnn.com"), "tls"),
        Some("PassthroughCluster")
    );
    assert_eq!(
        pick("1.2.3.4:8443", Some("api.example.com"), "tls"),
        Some("wild")
    );
    assert_eq!(
        pick("1.2.3.4:8443", Some("example.com"), "tls"),
        Some("PassthroughCluster")
    );
}
