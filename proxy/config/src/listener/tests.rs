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
        l.chain_for(dst.parse().unwrap(), sni, transport, &[])
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

#[test]
fn permissive_tells_mesh_mtls_from_other_tls_by_alpn() {
    let on = |transport: &str, alpn: &[&str]| ChainMatch {
        destination_port: Some(9080),
        transport_protocol: Some(transport.to_owned()),
        application_protocols: alpn.iter().map(|p| (*p).to_owned()).collect(),
        ..ChainMatch::default()
    };
    let l = Listener {
        name: "virtualInbound".to_owned(),
        address: "0.0.0.0:15006".parse().unwrap(),
        direction: TrafficDirection::Inbound,
        use_original_dst: true,
        filter_chains: vec![
            chain("mtls", on("tls", &["istio-peer-exchange", "istio"])),
            chain("tls-passthrough", on("tls", &[])),
        ],
        default_filter_chain: Some(chain("plaintext", ChainMatch::default())),
    };
    let pick = |transport: &str, alpn: &[&str]| {
        let alpn: Vec<String> = alpn.iter().map(|p| (*p).to_owned()).collect();
        l.chain_for("10.0.0.5:9080".parse().unwrap(), None, transport, &alpn)
            .map(|c| c.name.as_str())
    };
    assert_eq!(pick("tls", &["istio-h2", "istio", "h2"]), Some("mtls"));
    assert_eq!(pick("tls", &["h2", "http/1.1"]), Some("tls-passthrough"));
    assert_eq!(pick("tls", &[]), Some("tls-passthrough"));
    assert_eq!(pick("raw_buffer", &[]), Some("plaintext"));
}
