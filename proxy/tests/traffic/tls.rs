//! TLS origination (DestinationRule `tls.mode: SIMPLE`) to a test HTTPS server
//! whose CA is generated here.

use meshlab_apps::internet;
use meshlab_proxy_config::{Cluster, TlsMode, UpstreamTls};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::PrivatePkcs8KeyDer;
use tokio::net::TcpListener;

use crate::support::*;

/// A CA and the simulated internet's certificate, served on ephemeral ports.
/// Returns the HTTPS address and the path of the CA bundle.
async fn simulated_internet() -> (std::net::SocketAddr, std::path::PathBuf) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "meshlab test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let hosts: Vec<String> = internet::HOSTS.iter().map(|h| (*h).to_owned()).collect();
    let leaf = CertificateParams::new(hosts)
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let tls = internet::server_config(
        vec![leaf.der().clone(), ca.der().clone()],
        PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    )
    .unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https_addr = https.local_addr().unwrap();
    tokio::spawn(internet::serve_on(http, https, tls));
    let bundle = std::env::temp_dir().join(format!(
        "meshlab-proxy-ca-{}-{}.pem",
        std::process::id(),
        https_addr.port()
    ));
    std::fs::write(&bundle, ca.pem()).unwrap();
    (https_addr, bundle)
}

fn simple(sni: &str) -> Option<UpstreamTls> {
    Some(UpstreamTls {
        mode: TlsMode::Simple,
        sni: Some(sni.to_owned()),
        subject_alt_names: Vec::new(),
        auto_mtls: false,
        certificate: None,
        trusted_ca: None,
    })
}

#[tokio::test]
async fn simple_tls_reaches_an_https_server_and_checks_its_name() {
    let (https, bundle) = simulated_internet().await;
    let good = "outbound|443||httpbin.org";
    let wrong = "outbound|443||wrong.example";
    let mut good_cluster = Cluster::new(good);
    good_cluster.tls = simple("httpbin.org");
    let mut wrong_cluster = Cluster::new(wrong);
    wrong_cluster.tls = simple("wrong.example");
    let config = Config::default()
        .http("virtualOutbound", "80")
        .routes(
            "80",
            vec![
                vhost(
                    "httpbin.org:80",
                    &["httpbin.org"],
                    vec![route("default", "/", to(good))],
                ),
                vhost(
                    "wrong.example:80",
                    &["wrong.example"],
                    vec![route("default", "/", to(wrong))],
                ),
            ],
        )
        .cluster(good_cluster, &[https])
        .cluster(wrong_cluster, &[https]);
    let mut proxy = Proxy::start_with(config, |options| options.ca_bundle = bundle.clone()).await;
    let addr = proxy.addr("virtualOutbound").await;

    let answer = get(addr, "httpbin.org", "/headers", &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.body.contains("\"Host\""),
        "httpbin's answer: {}",
        answer.body
    );

    let answer = get(
        addr,
        "wrong.example",
        "/headers",
        &[("x-request-id", "wrong-name")],
    )
    .await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    let line = proxy.log_line("wrong-name").await;
    assert!(
        line.contains(" 503 UF ") && line.contains("\"TLS error: "),
        "{line}"
    );
    let _ = std::fs::remove_file(bundle);
}
