//! Mesh mTLS between two proxies, with identities from a CA generated here: a client
//! sidecar (ISTIO_MUTUAL) and a server sidecar whose inbound chain requires mTLS
//! (PeerAuthentication STRICT). Checks what Istio promises: the server sees the
//! client's SPIFFE identity (`x-forwarded-client-cert`), the client checks the
//! server's (secure naming), plaintext and untrusted or expired certificates are
//! refused, and a renewed certificate is picked up without dropping anything.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use meshlab_proxy::Identity;
use meshlab_proxy_config::{
    ChainMatch, Cluster, DownstreamTls, FilterChain, TlsMode, TrafficDirection, UpstreamTls,
};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, SanType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

const SLEEP: &str = "spiffe://cluster.local/ns/foo/sa/sleep";
const HTTPBIN: &str = "spiffe://cluster.local/ns/foo/sa/httpbin";

struct TestCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        TestCa {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A workload certificate for `uri`, valid from `from` to `until`:
    /// (chain PEM, key PKCS#8 DER, leaf DER).
    fn issue(&self, uri: &str, from: SystemTime, until: SystemTime) -> (String, Vec<u8>, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![SanType::URI(uri.to_owned().try_into().unwrap())];
        params.not_before = from.into();
        params.not_after = until.into();
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (
            format!("{}{}", cert.pem(), self.pem),
            key.serialize_der(),
            cert.der().to_vec(),
        )
    }

    fn identity(&self, uri: &str) -> (Arc<Identity>, Vec<u8>) {
        let identity = Identity::new(uri);
        let now = SystemTime::now();
        let (chain, key, der) = self.issue(
            uri,
            now - Duration::from_secs(60),
            now + Duration::from_secs(3600),
        );
        identity.install(&chain, key, &self.pem).unwrap();
        (identity, der)
    }
}

/// What the proxies log on this test's thread (a current-thread runtime runs
/// every task here).
#[derive(Clone, Default)]
struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(logs.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn sha256_hex(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An inbound listener whose default chain serves `app` as port 8080, in plaintext.
fn inbound(app: std::net::SocketAddr) -> Config {
    Config::default()
        .listener(
            "virtualInbound",
            0,
            TrafficDirection::Inbound,
            false,
            hcm("inbound|8080||"),
        )
        .routes(
            "inbound|8080||",
            vec![vhost(
                "inbound",
                &["*"],
                vec![route("default", "/", to("inbound|8080||"))],
            )],
        )
        .cluster(Cluster::new("inbound|8080||"), &[app])
}

/// The server sidecar: an inbound listener requiring mTLS in front of httpbin.
async fn server(identity: Arc<Identity>) -> Proxy {
    let mut config = inbound(httpbin().await);
    let listener = config.0.listeners.get_mut("virtualInbound").unwrap();
    listener.default_filter_chain = Some(FilterChain {
        name: "0.0.0.0_8080".to_owned(),
        matcher: ChainMatch::default(),
        filter: hcm("inbound|8080||"),
        tls: Some(DownstreamTls {
            certificate: "default".to_owned(),
            require_client_certificate: true,
            trusted_ca: None,
        }),
    });
    Proxy::start_with(config, |options| options.identity = Some(identity)).await
}

/// The client sidecar: `httpbin` routed to `server` with ISTIO_MUTUAL, allowing
/// the server identities `allowed`.
async fn client(identity: Arc<Identity>, server: std::net::SocketAddr, allowed: &[&str]) -> Proxy {
    let name = "outbound|8000||httpbin.foo.svc.cluster.local";
    let mut cluster = Cluster::new(name);
    cluster.tls = Some(UpstreamTls {
        mode: TlsMode::IstioMutual,
        sni: Some("outbound_.8000_._.httpbin.foo.svc.cluster.local".to_owned()),
        subject_alt_names: allowed.iter().map(|s| (*s).to_owned()).collect(),
        auto_mtls: false,
        certificate: None,
        trusted_ca: None,
    });
    let config = Config::default()
        .http("virtualOutbound", "8000")
        .routes(
            "8000",
            vec![vhost(
                "httpbin",
                &["httpbin"],
                vec![route("default", "/", to(name))],
            )],
        )
        .cluster(cluster, &[server]);
    Proxy::start_with(config, |options| options.identity = Some(identity)).await
}

#[tokio::test]
async fn sidecars_speak_mtls_and_the_server_sees_the_client_identity() {
    let ca = TestCa::new("mesh root");
    let (server_identity, _) = ca.identity(HTTPBIN);
    let (client_identity, client_der) = ca.identity(SLEEP);
    let server = server(server_identity.clone()).await;
    let inbound = server.addr("virtualInbound").await;
    let first = client(client_identity.clone(), inbound, &[HTTPBIN]).await;
    let outbound = first.addr("virtualOutbound").await;

    let answer = get(outbound, "httpbin", "/headers", &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let expected = format!(
        "By={HTTPBIN};Hash={};Subject=\\\"\\\";URI={SLEEP}",
        sha256_hex(&client_der)
    );
    assert!(
        answer.body.contains(&expected),
        "{expected} in {}",
        answer.body
    );
    // Its metrics name the client by its verified identity, as Istio does.
    let (_, metrics) = server.admin("/stats/prometheus").await;
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("istio_requests_total{")
                && line.contains("reporter=\"destination\"")
                && line.contains(&format!("source_principal=\"{SLEEP}\""))
                && line.contains("connection_security_policy=\"mutual_tls\"")),
        "{metrics}"
    );

    // An app cannot forge the header: the client sidecar sanitizes it.
    let answer = get(
        outbound,
        "httpbin",
        "/headers",
        &[("x-forwarded-client-cert", "By=forged")],
    )
    .await;
    assert!(!answer.body.contains("forged"), "{}", answer.body);

    // Renewal: a new certificate is used for new connections, old ones keep working.
    let now = SystemTime::now();
    let (chain, key, renewed_der) = ca.issue(
        SLEEP,
        now - Duration::from_secs(60),
        now + Duration::from_secs(7200),
    );
    client_identity.install(&chain, key, &ca.pem).unwrap();
    let answer = get(outbound, "httpbin", "/headers", &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let second = client(client_identity.clone(), inbound, &[HTTPBIN]).await;
    let answer = get(
        second.addr("virtualOutbound").await,
        "httpbin",
        "/headers",
        &[],
    )
    .await;
    assert!(
        answer.body.contains(&sha256_hex(&renewed_der)),
        "a new connection presents the renewed certificate: {}",
        answer.body
    );

    // Secure naming: a client that expects another identity refuses this server.
    let (other_identity, _) = ca.identity(SLEEP);
    let mut wary = client(
        other_identity,
        inbound,
        &["spiffe://cluster.local/ns/foo/sa/not-httpbin"],
    )
    .await;
    let wary_addr = wary.addr("virtualOutbound").await;
    let answer = get(wary_addr, "httpbin", "/ip", &[("x-request-id", "wary")]).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    let line = wary.log_line("wary").await;
    assert!(
        line.contains(" UF") && line.contains("secure naming"),
        "{line}"
    );
}

#[tokio::test]
async fn plaintext_untrusted_and_expired_clients_are_refused() {
    let (logs, _guard) = Logs::capture();
    let ca = TestCa::new("mesh root");
    let (server_identity, _) = ca.identity(HTTPBIN);
    let server = server(server_identity).await;
    let inbound = server.addr("virtualInbound").await;

    // Plaintext on a STRICT port: reset (curl reports exit 56).
    let mut plain = tokio::net::TcpStream::connect(inbound).await.unwrap();
    plain
        .write_all(b"GET /ip HTTP/1.1\r\nhost: httpbin\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 64];
    let read = plain.read(&mut buffer).await;
    assert!(
        matches!(&read, Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset),
        "{read:?}"
    );

    // A certificate from another CA (the client trusts the mesh root, so it gets as
    // far as presenting it).
    let foreign = TestCa::new("someone else's root");
    let now = SystemTime::now();
    let (chain, key, _) = foreign.issue(
        SLEEP,
        now - Duration::from_secs(60),
        now + Duration::from_secs(3600),
    );
    let impostor = Identity::new(SLEEP);
    impostor
        .install(&chain, key, &format!("{}{}", ca.pem, foreign.pem))
        .unwrap();
    let mut proxy = client(impostor, inbound, &[HTTPBIN]).await;
    let answer = get(
        proxy.addr("virtualOutbound").await,
        "httpbin",
        "/ip",
        &[("x-request-id", "foreign")],
    )
    .await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    // The client sees its connection reset (`UC`); the server logs why.
    let line = proxy.log_line("foreign").await;
    assert!(line.contains(" 503 UC "), "{line}");
    assert!(
        logs.text().contains(
            "rejected a client certificate (mTLS) reason=invalid peer certificate: UnknownIssuer"
        ),
        "{}",
        logs.text()
    );

    // An expired certificate from the right CA.
    let (chain, key, _) = ca.issue(
        SLEEP,
        now - Duration::from_secs(7200),
        now - Duration::from_secs(3600),
    );
    let expired = Identity::new(SLEEP);
    expired.install(&chain, key, &ca.pem).unwrap();
    let mut proxy = client(expired, inbound, &[HTTPBIN]).await;
    let answer = get(
        proxy.addr("virtualOutbound").await,
        "httpbin",
        "/ip",
        &[("x-request-id", "expired")],
    )
    .await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    let line = proxy.log_line("expired").await;
    assert!(line.contains(" 503 UC "), "{line}");
    assert!(
        logs.text()
            .contains("reason=invalid peer certificate: certificate expired"),
        "{}",
        logs.text()
    );
}

/// TCP between sidecars is mTLS too, and the server's TCP metrics name the client.
#[tokio::test]
async fn tcp_between_sidecars_is_mutual_tls_with_the_clients_identity() {
    let ca = TestCa::new("mesh root");
    let (server_identity, _) = ca.identity(HTTPBIN);
    let (client_identity, _) = ca.identity(SLEEP);
    let upstream = echo().await;
    let mut config = Config::default()
        .listener(
            "virtualInbound",
            0,
            TrafficDirection::Inbound,
            false,
            tcp_proxy("inbound|9000||"),
        )
        .cluster(Cluster::new("inbound|9000||"), &[upstream]);
    let chain = config
        .0
        .listeners
        .get_mut("virtualInbound")
        .and_then(|l| l.default_filter_chain.as_mut())
        .unwrap();
    chain.tls = Some(DownstreamTls {
        certificate: "default".to_owned(),
        require_client_certificate: true,
        trusted_ca: None,
    });
    let server = Proxy::start_with(config, |o| o.identity = Some(server_identity)).await;
    let inbound = server.addr("virtualInbound").await;

    let name = "outbound|9000||echo.foo.svc.cluster.local";
    let mut cluster = Cluster::new(name);
    cluster.tls = Some(UpstreamTls {
        mode: TlsMode::IstioMutual,
        sni: Some("outbound_.9000_._.echo.foo.svc.cluster.local".to_owned()),
        subject_alt_names: vec![HTTPBIN.to_owned()],
        auto_mtls: false,
        certificate: None,
        trusted_ca: None,
    });
    let config = Config::default()
        .listener(
            "virtualOutbound",
            0,
            TrafficDirection::Outbound,
            false,
            tcp_proxy(name),
        )
        .cluster(cluster, &[inbound]);
    let client = Proxy::start_with(config, |o| o.identity = Some(client_identity)).await;

    let mut stream = tokio::net::TcpStream::connect(client.addr("virtualOutbound").await)
        .await
        .unwrap();
    stream.write_all(b"over mtls").await.unwrap();
    let mut echoed = [0u8; 9];
    stream.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"over mtls");
    drop(stream);

    let (_, metrics) = server.admin("/stats/prometheus").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("istio_tcp_connections_opened_total{")
                && l.contains("reporter=\"destination\"")
                && l.contains(&format!("source_principal=\"{SLEEP}\""))
                && l.contains("connection_security_policy=\"mutual_tls\"")),
        "{metrics}"
    );
}

/// An app that terminates TLS itself (its own certificate for `app.example`):
/// it greets each client over TLS. Returns its address and its certificate.
async fn tls_app() -> (
    std::net::SocketAddr,
    rustls::pki_types::CertificateDer<'static>,
) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["app.example".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der = cert.der().clone();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![der.clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = socket.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let _ = tls.write_all(b"hello over the app's own TLS\n").await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    (addr, der)
}

#[tokio::test]
async fn permissive_tells_mesh_mtls_from_the_apps_own_tls_by_alpn() {
    let ca = TestCa::new("mesh root");
    let (server_identity, _) = ca.identity(HTTPBIN);
    let (client_identity, _) = ca.identity(SLEEP);
    let app = httpbin().await;
    let (tls_app, tls_app_cert) = tls_app().await;

    // Istio's PERMISSIVE chains for one port: mTLS for a ClientHello offering
    // `istio*` ALPN, other TLS relayed as bytes, plaintext as the default.
    let mut config = inbound(app).cluster(Cluster::new("inbound|8443||"), &[tls_app]);
    let on = |alpn: &[&str]| ChainMatch {
        transport_protocol: Some("tls".to_owned()),
        application_protocols: alpn.iter().map(|p| (*p).to_owned()).collect(),
        ..ChainMatch::default()
    };
    config
        .0
        .listeners
        .get_mut("virtualInbound")
        .unwrap()
        .filter_chains = vec![
        FilterChain {
            name: "mtls".to_owned(),
            matcher: on(&meshlab_proxy_config::MESH_MTLS_ALPN),
            filter: hcm("inbound|8080||"),
            tls: Some(DownstreamTls {
                certificate: "default".to_owned(),
                require_client_certificate: true,
                trusted_ca: None,
            }),
        },
        FilterChain {
            name: "tls-passthrough".to_owned(),
            matcher: on(&[]),
            filter: tcp_proxy("inbound|8443||"),
            tls: None,
        },
    ];
    let server =
        Proxy::start_with(config, |options| options.identity = Some(server_identity)).await;
    let inbound = server.addr("virtualInbound").await;

    // A sidecar client: mesh mTLS, its identity forwarded.
    let client = client(client_identity, inbound, &[HTTPBIN]).await;
    let answer = get(
        client.addr("virtualOutbound").await,
        "httpbin",
        "/headers",
        &[],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.body.contains(&format!("URI={SLEEP}")),
        "{}",
        answer.body
    );

    // Plaintext: served, with no client identity.
    let answer = get(inbound, "httpbin", "/headers", &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(!answer.body.contains("By="), "{}", answer.body);

    // The app's own TLS (ALPN h2, http/1.1): the handshake is the app's, with the
    // app's certificate, untouched by the sidecar.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(tls_app_cert).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(inbound).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("app.example".try_into().unwrap(), tcp)
        .await
        .expect("the app's own handshake, through the sidecar");
    let mut greeting = String::new();
    tls.read_to_string(&mut greeting).await.unwrap();
    assert_eq!(greeting, "hello over the app's own TLS\n");
}
