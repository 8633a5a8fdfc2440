//! `credentialName` secrets on both ends: a gateway terminating HTTPS with a
//! certificate from a Secret (MUTUAL: client certificates checked against the
//! Secret's CA), and a sidecar originating TLS with a client certificate from a
//! Secret. The certificates are the ones Istio's secure-gateway task makes with
//! `openssl x509 -req` — X.509 version 1, which Envoy accepts — checked in under
//! `tests/data/x509-v1` (CA `example.com`, valid for a century).

use meshlab_proxy_config::{
    Cluster, DownstreamTls, FilterChain, PrivateKey, Secret, SecretKind, TlsMode, TrafficDirection,
    UpstreamTls,
};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::support::*;

const CA: &str = include_str!("../data/x509-v1/example.com.crt");
const SERVER_CRT: &str = include_str!("../data/x509-v1/httpbin.example.com.crt");
const SERVER_KEY: &str = include_str!("../data/x509-v1/httpbin.example.com.key");
const CLIENT_CRT: &str = include_str!("../data/x509-v1/client.example.com.crt");
const CLIENT_KEY: &str = include_str!("../data/x509-v1/client.example.com.key");

/// Another CA, and a client certificate it signed: (CA PEM, certificate, key).
fn someone_else() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "someone else");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(params, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["client.example.com".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca, leaf.pem(), key.serialize_pem())
}

fn certificate(name: &str, chain: &str, key: &str) -> Secret {
    Secret {
        name: Secret::kubernetes_name(name),
        kind: SecretKind::TlsCertificate {
            certificate_chain: chain.to_owned(),
            private_key: PrivateKey::new(key),
        },
    }
}

fn ca(name: &str) -> Secret {
    Secret {
        name: Secret::ca_name(name),
        kind: SecretKind::ValidationContext {
            trusted_ca: CA.to_owned(),
        },
    }
}

/// A gateway listener terminating TLS with `httpbin-credential`, routing to
/// httpbin; MUTUAL when `mutual`.
async fn gateway(mutual: bool) -> Proxy {
    Proxy::start(gateway_config(mutual).await).await
}

async fn gateway_config(mutual: bool) -> Config {
    let upstream = httpbin().await;
    let mut config = Config::default()
        .listener(
            "0.0.0.0_8443",
            0,
            TrafficDirection::Gateway,
            false,
            hcm("https"),
        )
        .routes(
            "https",
            vec![vhost(
                "httpbin.example.com:443",
                &["httpbin.example.com"],
                vec![route("default", "/", to("outbound|8000||httpbin"))],
            )],
        )
        .cluster(Cluster::new("outbound|8000||httpbin"), &[upstream]);
    let listener = config.0.listeners.get_mut("0.0.0.0_8443").unwrap();
    let mut chain: FilterChain = listener.default_filter_chain.take().unwrap();
    chain.matcher.server_names = vec!["httpbin.example.com".to_owned()];
    chain.matcher.transport_protocol = Some("tls".to_owned());
    chain.tls = Some(DownstreamTls {
        certificate: Secret::kubernetes_name("httpbin-credential"),
        require_client_certificate: mutual,
        trusted_ca: mutual.then(|| Secret::ca_name("httpbin-credential")),
    });
    listener.filter_chains.push(chain);
    for secret in [
        certificate("httpbin-credential", SERVER_CRT, SERVER_KEY),
        ca("httpbin-credential"),
    ] {
        config.0.secrets.insert(secret.name.clone(), secret);
    }
    config
}

/// A sidecar whose `outbound|80||httpbin.example.com` originates TLS to `at`
/// with `tls`, carrying `secrets`.
async fn client(at: std::net::SocketAddr, tls: UpstreamTls, secrets: Vec<Secret>) -> Proxy {
    let name = "outbound|80||httpbin.example.com";
    let mut cluster = Cluster::new(name);
    cluster.tls = Some(tls);
    let mut config = Config::default()
        .http("virtualOutbound", "80")
        .routes(
            "80",
            vec![vhost(
                "httpbin.example.com:80",
                &["httpbin.example.com"],
                vec![route("default", "/", to(name))],
            )],
        )
        .cluster(cluster, &[at]);
    for secret in secrets {
        config.0.secrets.insert(secret.name.clone(), secret);
    }
    Proxy::start(config).await
}

fn origination(mode: TlsMode, certificate: Option<&str>) -> UpstreamTls {
    UpstreamTls {
        mode,
        sni: Some("httpbin.example.com".to_owned()),
        subject_alt_names: Vec::new(),
        auto_mtls: false,
        certificate: certificate.map(Secret::kubernetes_name),
        trusted_ca: Some(Secret::ca_name("client-credential")),
    }
}

#[tokio::test]
async fn a_gateway_serves_https_with_a_credential_and_a_sidecar_originates_to_it() {
    let mut gateway = gateway(false).await;
    let at = gateway.addr("0.0.0.0_8443").await;
    let mut sidecar = client(
        at,
        origination(TlsMode::Simple, None),
        vec![ca("client-credential")],
    )
    .await;
    let answer = get(
        sidecar.addr("virtualOutbound").await,
        "httpbin.example.com",
        "/status/418",
        &[],
    )
    .await;
    assert_eq!(answer.status, 418, "{}", answer.body);

    // The server turns MUTUAL: the sidecar's kept-alive connection is drained, and
    // its next one, without a client certificate, is refused.
    gateway.apply(gateway_config(true).await).await;
    let answer = call(&sidecar, "after-mutual").await;
    assert_eq!(answer.status, 503, "{}", answer.body);

    // The gateway's certificate must chain to the CA the sidecar was given.
    let (other_ca, _, _) = someone_else();
    let wrong_ca = Secret {
        name: Secret::ca_name("client-credential"),
        kind: SecretKind::ValidationContext {
            trusted_ca: other_ca,
        },
    };
    sidecar = client(at, origination(TlsMode::Simple, None), vec![wrong_ca]).await;
    let answer = get(
        sidecar.addr("virtualOutbound").await,
        "httpbin.example.com",
        "/status/418",
        &[("x-request-id", "wrong-ca")],
    )
    .await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    let line = sidecar.log_line("wrong-ca").await;
    assert!(line.contains("UnknownIssuer"), "{line}");
}

/// The sidecar's answer for httpbin's teapot, tagged `id` in the access log.
async fn call(sidecar: &Proxy, id: &str) -> Answer {
    get(
        sidecar.addr("virtualOutbound").await,
        "httpbin.example.com",
        "/status/418",
        &[("x-request-id", id)],
    )
    .await
}

#[tokio::test]
async fn a_mutual_gateway_wants_a_client_certificate_its_ca_signed() {
    let gateway = gateway(true).await;
    let at = gateway.addr("0.0.0.0_8443").await;
    let with_certificate = client(
        at,
        origination(TlsMode::Mutual, Some("client-credential")),
        vec![
            certificate("client-credential", CLIENT_CRT, CLIENT_KEY),
            ca("client-credential"),
        ],
    )
    .await;
    let answer = call(&with_certificate, "with").await;
    assert_eq!(answer.status, 418, "{}", answer.body);

    let without = client(
        at,
        origination(TlsMode::Simple, None),
        vec![ca("client-credential")],
    )
    .await;
    let answer = call(&without, "without").await;
    assert_eq!(answer.status, 503, "no client certificate: {}", answer.body);

    let (_, foreign_crt, foreign_key) = someone_else();
    let foreign = client(
        at,
        origination(TlsMode::Mutual, Some("client-credential")),
        vec![
            certificate("client-credential", &foreign_crt, &foreign_key),
            ca("client-credential"),
        ],
    )
    .await;
    let answer = call(&foreign, "foreign").await;
    assert_eq!(
        answer.status, 503,
        "a foreign client certificate: {}",
        answer.body
    );

    let mut missing = client(
        at,
        origination(TlsMode::Mutual, Some("client-credential")),
        vec![ca("client-credential")],
    )
    .await;
    let answer = call(&missing, "missing").await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    let line = missing.log_line("missing").await;
    assert!(
        line.contains("secret kubernetes://client-credential has not been received"),
        "{line}"
    );
}
