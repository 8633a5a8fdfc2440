//! TCP proxying: passthrough to the original destination and the black hole.

use std::ffi::OsString;

use meshlab_proxy::OriginalDst;
use meshlab_proxy_config::TrafficDirection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

#[tokio::test]
async fn passthrough_reaches_the_original_destination() {
    let echo = echo().await;
    let port = free_port().await;
    let config = Config::default().listener(
        "virtualOutbound",
        port,
        TrafficDirection::Outbound,
        true,
        tcp_proxy("PassthroughCluster"),
    );
    let mut proxy = Proxy::start_with(config, |options| {
        options.original_dst = OriginalDst::by_local_port([(port, echo)]);
    })
    .await;
    let mut stream = TcpStream::connect(proxy.addr("virtualOutbound").await)
        .await
        .unwrap();
    stream.write_all(b"hello through the mesh").await.unwrap();
    let mut buffer = [0u8; 22];
    stream.read_exact(&mut buffer).await.unwrap();
    assert_eq!(&buffer, b"hello through the mesh");
    drop(stream);
    let line = proxy.log_line("PassthroughCluster").await;
    assert!(line.contains("\"- - -\" 0 - - - \"-\" 22 22 "), "{line}");
    assert!(
        line.contains(&format!("\"{echo}\" PassthroughCluster ")),
        "{line}"
    );
    assert!(
        line.contains(&format!(" {echo} 127.0.0.1:")),
        "the downstream local address is the original destination: {line}"
    );
    let (_, metrics) = proxy.admin("/stats/prometheus").await;
    let opened = metrics
        .lines()
        .find(|l| l.starts_with("istio_tcp_connections_opened_total{"))
        .expect(&metrics);
    assert!(
        opened.contains("destination_service_name=\"PassthroughCluster\"")
            && opened.ends_with(" 1"),
        "{opened}"
    );
}

#[tokio::test]
async fn the_black_hole_fails_a_tls_handshake() {
    let config = Config::default().listener(
        "virtualOutbound",
        0,
        TrafficDirection::Outbound,
        false,
        tcp_proxy("BlackHoleCluster"),
    );
    let mut proxy = Proxy::start(config).await;
    let port = proxy.addr("virtualOutbound").await.port();
    let args: Vec<OsString> = [
        "curl".to_owned(),
        "-sS".to_owned(),
        "--resolve".to_owned(),
        format!("www.google.com:{port}:127.0.0.1"),
        format!("https://www.google.com:{port}/"),
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let code = meshlab_apps::curl::run(args, &mut stdout, &mut stderr).await;
    assert_eq!(
        code,
        35,
        "curl exit code; stderr: {}",
        String::from_utf8_lossy(&stderr)
    );
    let line = proxy.log_line("BlackHoleCluster").await;
    assert!(line.contains("\"- - -\" 0 UH "), "{line}");
}

#[tokio::test]
async fn allow_any_passes_http_through_to_the_original_destination() {
    use meshlab_proxy_config::route::VirtualHost;

    let httpbin = httpbin().await;
    let port = free_port().await;
    let config = Config::default()
        .listener(
            "virtualOutbound",
            port,
            TrafficDirection::Outbound,
            true,
            hcm("80"),
        )
        .routes(
            "80",
            vec![VirtualHost::allow_any(
                "MeshConfig outboundTrafficPolicy ALLOW_ANY",
            )],
        );
    let mut proxy = Proxy::start_with(config, |options| {
        options.original_dst = OriginalDst::by_local_port([(port, httpbin)]);
    })
    .await;
    let answer = get(
        proxy.addr("virtualOutbound").await,
        "httpbin.org",
        "/headers",
        &[("x-request-id", "allow-any")],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let line = proxy.log_line("allow-any").await;
    assert!(
        line.contains(&format!("\"{httpbin}\" PassthroughCluster ")),
        "{line}"
    );
    assert!(line.ends_with(" allow_any"), "{line}");
}

#[tokio::test]
async fn dns_clusters_resolve_their_hosts() {
    use meshlab_proxy_config::{
        Cluster, ClusterLoadAssignment, DiscoveryType, Endpoint, EndpointAddress,
    };

    let httpbin = httpbin().await;
    let name = "outbound|8000||localhost";
    let mut cluster = Cluster::new(name);
    cluster.discovery = DiscoveryType::StrictDns;
    let mut config = Config::default().http("virtualOutbound", "8000").routes(
        "8000",
        vec![vhost(
            "localhost",
            &["*"],
            vec![route("default", "/", to(name))],
        )],
    );
    config.0.clusters.insert(name.to_owned(), cluster);
    config.0.endpoints.insert(
        name.to_owned(),
        ClusterLoadAssignment {
            cluster_name: name.to_owned(),
            endpoints: vec![Endpoint {
                address: EndpointAddress::Dns {
                    host: "localhost".to_owned(),
                    port: httpbin.port(),
                },
                labels: Default::default(),
                weight: 1,
                service_account: None,
                has_sidecar: false,
            }],
        },
    );
    let proxy = Proxy::start(config).await;
    let answer = get(
        proxy.addr("virtualOutbound").await,
        "localhost",
        "/get",
        &[],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let (_, clusters) = proxy.admin("/clusters").await;
    assert!(
        clusters.contains(&format!(
            "{name}::127.0.0.1:{}::hostname::localhost",
            httpbin.port()
        )),
        "IPv4 preferred:\n{clusters}"
    );
}
