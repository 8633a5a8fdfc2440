use std::net::IpAddr;

use meshlab_proxy_config::{ChainMatch, FilterChain, TcpProxy, TrafficDirection};
use rustls::pki_types::ServerName;

use super::*;

/// The first flight of a real TLS client, offering `alpn`.
fn client_hello(sni: Option<&str>, alpn: &[&str]) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    let name = match sni {
        Some(sni) => ServerName::try_from(sni.to_owned()).unwrap(),
        None => ServerName::IpAddress(IpAddr::from([10, 0, 0, 1]).into()),
    };
    let mut connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut out = Vec::new();
    connection.write_tls(&mut out).unwrap();
    out
}

#[test]
fn the_first_bytes_say_tls_sni_and_alpn_or_plaintext() {
    let hello = client_hello(Some("www.Google.com"), &[]);
    let tls = |sni: Option<&str>, alpn: &[&str]| Hello::Tls {
        sni: sni.map(str::to_owned),
        alpn: alpn.iter().map(|p| (*p).to_owned()).collect(),
    };
    let cases: [(&str, &[u8], Hello); 8] = [
        (
            "ClientHello with SNI",
            &hello,
            tls(Some("www.google.com"), &[]),
        ),
        (
            "ClientHello to an IP",
            &client_hello(None, &[]),
            tls(None, &[]),
        ),
        (
            "mesh mTLS's ALPN",
            &client_hello(
                Some("outbound_.8000_._.httpbin"),
                &["istio-peer-exchange", "istio"],
            ),
            tls(
                Some("outbound_.8000_._.httpbin"),
                &["istio-peer-exchange", "istio"],
            ),
        ),
        (
            "half a ClientHello",
            &hello[..hello.len() / 2],
            Hello::Incomplete,
        ),
        ("a record header only", &hello[..3], Hello::Incomplete),
        ("HTTP", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", Hello::NotTls),
        ("SSH", b"SSH-2.0-OpenSSH_9.6\r\n", Hello::NotTls),
        ("nothing yet", b"", Hello::Incomplete),
    ];
    for (case, bytes, expected) in cases {
        assert_eq!(parse_client_hello(bytes), expected, "{case}");
    }
}

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

#[test]
fn only_chains_that_look_at_the_bytes_need_inspection() {
    let listener = Listener {
        name: "virtualOutbound".to_owned(),
        address: "0.0.0.0:15001".parse().unwrap(),
        direction: TrafficDirection::Outbound,
        use_original_dst: true,
        filter_chains: vec![
            chain(
                "http",
                ChainMatch {
                    destination_port: Some(9080),
                    ..ChainMatch::default()
                },
            ),
            chain(
                "google",
                ChainMatch {
                    destination_port: Some(443),
                    server_names: vec!["www.google.com".to_owned()],
                    ..ChainMatch::default()
                },
            ),
        ],
        default_filter_chain: Some(chain("PassthroughCluster", ChainMatch::default())),
    };
    let cases = [
        ("10.0.0.5:9080", false),
        ("1.2.3.4:443", true),
        ("1.2.3.4:22", false),
    ];
    for (destination, expected) in cases {
        assert_eq!(
            needs_inspection(&listener, destination.parse().unwrap()),
            expected,
            "{destination}"
        );
    }
}

#[tokio::test]
async fn original_destinations_come_from_the_chosen_source() {
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(server.local_addr().unwrap())
        .await
        .unwrap();
    let (accepted, _) = server.accept().await.unwrap();
    let local = accepted.local_addr().unwrap();
    let elsewhere: SocketAddr = "10.1.2.3:9080".parse().unwrap();
    fn lookup(_: &TcpStream) -> io::Result<SocketAddr> {
        Ok("10.9.9.9:80".parse().unwrap())
    }
    fn not_redirected(_: &TcpStream) -> io::Result<SocketAddr> {
        Err(io::Error::other("not redirected"))
    }
    let cases = [
        (OriginalDst::LocalAddr, local),
        (
            OriginalDst::by_local_port([(local.port(), elsewhere)]),
            elsewhere,
        ),
        (OriginalDst::by_local_port([(1, elsewhere)]), local),
        (OriginalDst::Lookup(lookup), "10.9.9.9:80".parse().unwrap()),
        (OriginalDst::Lookup(not_redirected), local),
    ];
    for (source, expected) in cases {
        assert_eq!(source.resolve(&accepted, local), expected, "{source:?}");
    }
    drop(client);
}
