//! The simulated internet over real sockets on 127.0.0.1.
//!
//! Each test starts the server with a CA and a leaf generated for the occasion (SANs
//! for every simulated host), then calls it as the lab's clients would: plain
//! HTTP/1.1 with a `Host` header, or TLS with the host as SNI and HTTP/2 or HTTP/1.1
//! as ALPN decides, trusting the test CA.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, Request, StatusCode, Version};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshlab_apps::internet::{self, HOSTS, InternetError};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

// === certificates ===

/// A CA and a leaf it signed.
struct Pki {
    ca: CertificateDer<'static>,
    ca_pem: String,
    leaf: CertificateDer<'static>,
    leaf_pem: String,
    key: KeyPair,
}

impl Pki {
    /// A CA named `ca_name` and a leaf for every simulated host.
    fn new(ca_name: &str) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, ca_name);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().unwrap();
        let sans: Vec<String> = HOSTS.iter().map(|h| (*h).to_owned()).collect();
        let mut leaf_params = CertificateParams::new(sans).unwrap();
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "simulated internet");
        let leaf = leaf_params.signed_by(&key, &issuer).unwrap();
        Pki {
            ca: ca.der().clone(),
            ca_pem: ca.pem(),
            leaf: leaf.der().clone(),
            leaf_pem: leaf.pem(),
            key,
        }
    }

    fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.key.serialize_der()).into()
    }
}

// === harness ===

/// A running simulated internet and the CA its certificate comes from.
struct Internet {
    http: SocketAddr,
    https: SocketAddr,
    ca: CertificateDer<'static>,
}

async fn start() -> Internet {
    let pki = Pki::new("meshlab test public CA");
    let tls =
        internet::server_config(vec![pki.leaf.clone(), pki.ca.clone()], pki.key_der()).unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addrs = (http.local_addr().unwrap(), https.local_addr().unwrap());
    tokio::spawn(internet::serve_on(http, https, tls));
    Internet {
        http: addrs.0,
        https: addrs.1,
        ca: pki.ca,
    }
}

#[derive(Debug)]
struct Reply {
    version: Version,
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .map_or("", |v| v.to_str().unwrap())
    }
}

/// One request over plain HTTP/1.1, `host` in the `Host` header.
async fn http(
    addr: SocketAddr,
    method: Method,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    read(response).await
}

/// How a test client sets up TLS.
struct Tls<'a> {
    /// The CA it trusts.
    root: &'a CertificateDer<'static>,
    /// The name it asks for (SNI) and verifies the certificate against.
    sni: &'a str,
    /// The protocols it offers by ALPN.
    alpn: &'a [&'a [u8]],
}

/// Connects to `addr` over TLS; the error is the handshake's.
async fn connect(
    addr: SocketAddr,
    tls: &Tls<'_>,
) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = RootCertStore::empty();
    roots.add(tls.root.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = tls.alpn.iter().map(|p| p.to_vec()).collect();
    let name = ServerName::try_from(tls.sni.to_owned()).unwrap();
    let stream = TcpStream::connect(addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
}

/// One request over HTTPS to `host` (SNI and `Host`/`:authority`), trusting `root`,
/// offering `alpn`; HTTP/2 if the server chose it.
async fn https(
    addr: SocketAddr,
    root: &CertificateDer<'static>,
    alpn: &[&[u8]],
    method: Method,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let tls = Tls {
        root,
        sni: host,
        alpn,
    };
    let stream = connect(addr, &tls).await.unwrap();
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let mut request = Request::builder().method(method);
    request = if h2 {
        request.uri(format!("https://{host}{path}"))
    } else {
        request.uri(path).header("host", host)
    };
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Empty::<Bytes>::new()).unwrap();
    let io = TokioIo::new(stream);
    let response = if h2 {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .unwrap();
        tokio::spawn(connection);
        sender.send_request(request).await.unwrap()
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(connection);
        sender.send_request(request).await.unwrap()
    };
    read(response).await
}

async fn read(response: hyper::Response<hyper::body::Incoming>) -> Reply {
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        version: parts.version,
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

const H2_AND_H1: &[&[u8]] = &[b"h2", b"http/1.1"];
const H1_ONLY: &[&[u8]] = &[b"http/1.1"];

/// The rustls error under a failed handshake.
fn tls_error(err: &io::Error) -> &rustls::Error {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a TLS error: {err:?}"))
}

// === httpbin.org ===

#[tokio::test]
async fn httpbin_org_over_http_echoes_headers_and_is_a_teapot() {
    let net = start().await;
    let echo = http(
        net.http,
        Method::GET,
        "httpbin.org",
        "/headers",
        &[("x-envoy-decorator-operation", "httpbin.org:80/*")],
    )
    .await;
    assert_eq!(echo.status, StatusCode::OK);
    let headers = &echo.json()["headers"];
    assert_eq!(
        headers["X-Envoy-Decorator-Operation"],
        json!(["httpbin.org:80/*"])
    );
    assert_eq!(headers["Host"], json!(["httpbin.org"]));

    let teapot = http(net.http, Method::GET, "httpbin.org", "/status/418", &[]).await;
    assert_eq!(teapot.status, StatusCode::IM_A_TEAPOT);
}

#[tokio::test]
async fn httpbin_org_over_https_with_h2_and_http1() {
    let net = start().await;
    for (alpn, version) in [(H2_AND_H1, Version::HTTP_2), (H1_ONLY, Version::HTTP_11)] {
        let echo = https(
            net.https,
            &net.ca,
            alpn,
            Method::GET,
            "httpbin.org",
            "/headers",
            &[("x-lab", "egress")],
        )
        .await;
        assert_eq!((echo.status, echo.version), (StatusCode::OK, version));
        let headers = &echo.json()["headers"];
        assert_eq!(headers["X-Lab"], json!(["egress"]), "{version:?}");
        // HTTP/2 has only `:authority`; httpbin still shows a Host, as it would behind
        // any HTTP/1.1 hop.
        assert_eq!(headers["Host"], json!(["httpbin.org"]), "{version:?}");

        let teapot = https(
            net.https,
            &net.ca,
            alpn,
            Method::GET,
            "httpbin.org",
            "/status/418",
            &[],
        )
        .await;
        assert_eq!(teapot.status, StatusCode::IM_A_TEAPOT, "{version:?}");
    }
}

#[tokio::test]
async fn httpbin_org_delays_as_asked() {
    let net = start().await;
    let started = Instant::now();
    let reply = http(net.http, Method::GET, "httpbin.org", "/delay/1", &[]).await;
    let took = started.elapsed();
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "took {took:?}"
    );
}

#[tokio::test]
async fn hosts_match_without_port_or_case() {
    let net = start().await;
    for host in ["HTTPBIN.org", "httpbin.org:80", "httpbin.org."] {
        let reply = http(net.http, Method::GET, host, "/status/418", &[]).await;
        assert_eq!(reply.status, StatusCode::IM_A_TEAPOT, "Host {host:?}");
    }
}

// === www.google.com, edition.cnn.com ===

#[tokio::test]
async fn web_pages_answer_200_over_https_with_h2_and_over_http() {
    let net = start().await;
    for host in ["www.google.com", "edition.cnn.com"] {
        let secure = https(net.https, &net.ca, H2_AND_H1, Method::GET, host, "/", &[]).await;
        assert_eq!(secure.version, Version::HTTP_2, "{host}");
        assert_eq!(secure.status, StatusCode::OK, "{host}");
        assert!(secure.content_type().starts_with("text/html"), "{host}");
        assert!(
            secure.body.contains(&format!("meshlab's simulated {host}")),
            "{host}: {}",
            secure.body
        );

        let plain = http(net.http, Method::GET, host, "/politics", &[]).await;
        assert_eq!(plain.status, StatusCode::OK, "{host}");
        assert!(plain.body.contains(host), "{host}: {}", plain.body);
    }
}

#[tokio::test]
async fn head_answers_200_without_a_body() {
    // `curl -sSI https://www.google.com` prints `HTTP/2 200`.
    let net = start().await;
    let secure = https(
        net.https,
        &net.ca,
        H2_AND_H1,
        Method::HEAD,
        "www.google.com",
        "/",
        &[],
    )
    .await;
    assert_eq!(
        (secure.version, secure.status, secure.body.as_str()),
        (Version::HTTP_2, StatusCode::OK, "")
    );
    assert!(secure.content_type().starts_with("text/html"));

    let plain = http(net.http, Method::HEAD, "edition.cnn.com", "/", &[]).await;
    assert_eq!((plain.status, plain.body.as_str()), (StatusCode::OK, ""));
}

// === www.googleapis.com ===

#[tokio::test]
async fn google_books_finds_bookinfos_isbn_over_https_and_http() {
    let net = start().await;
    let path = "/books/v1/volumes?q=isbn:0486424618";
    let secure = https(
        net.https,
        &net.ca,
        H2_AND_H1,
        Method::GET,
        "www.googleapis.com",
        path,
        &[],
    )
    .await;
    let plain = http(net.http, Method::GET, "www.googleapis.com", path, &[]).await;
    for reply in [secure, plain] {
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.content_type().starts_with("application/json"));
        // Google's field order, so the JSON reads as the docs show it.
        assert!(
            reply
                .body
                .starts_with(r#"{"kind":"books#volumes","totalItems":1,"items":[{"kind":"books#volume","volumeInfo":{"title":"The Comedy of Errors","authors":["William Shakespeare"],"#),
            "{}",
            reply.body
        );
        let books = reply.json();
        let info = &books["items"][0]["volumeInfo"];
        // The fields details v2 maps.
        assert!(info["publisher"].is_string());
        assert!(info["publishedDate"].is_string());
        assert!(info["description"].is_string());
        assert!(info["pageCount"].is_u64());
        assert_eq!(info["printType"], "BOOK");
        assert_eq!(info["language"], "en");
        assert_eq!(
            info["industryIdentifiers"],
            json!([
                { "type": "ISBN_10", "identifier": "0486424618" },
                { "type": "ISBN_13", "identifier": "9780486424613" },
            ])
        );
    }
}

#[tokio::test]
async fn google_books_finds_nothing_for_other_isbns() {
    let net = start().await;
    for query in [
        "q=isbn:0140707131",
        "q=isbn%3A1234567890",
        "q=comedy",
        "q=isbn:04864246189",
    ] {
        let reply = http(
            net.http,
            Method::GET,
            "www.googleapis.com",
            &format!("/books/v1/volumes?{query}"),
            &[],
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{query}");
        assert_eq!(
            reply.json(),
            json!({ "kind": "books#volumes", "totalItems": 0 }),
            "{query}"
        );
    }
    // The same book by its ISBN-13, hyphenated, is found.
    let reply = http(
        net.http,
        Method::GET,
        "www.googleapis.com",
        "/books/v1/volumes?q=ISBN:978-0-486-42461-3",
        &[],
    )
    .await;
    assert_eq!(reply.json()["totalItems"], 1);

    let missing = http(
        net.http,
        Method::GET,
        "www.googleapis.com",
        "/books/v1/volumes",
        &[],
    )
    .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    let elsewhere = http(
        net.http,
        Method::GET,
        "www.googleapis.com",
        "/drive/v3",
        &[],
    )
    .await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
}

// === other hosts ===

#[tokio::test]
async fn unknown_hosts_get_404_naming_the_host() {
    let net = start().await;
    let reply = http(net.http, Method::GET, "example.com", "/", &[]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(
        reply
            .body
            .starts_with("meshlab's simulated internet has no host example.com"),
        "{}",
        reply.body
    );
}

// === TLS ===

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_fails_the_handshake() {
    let net = start().await;
    let stranger = Pki::new("some other CA");
    let tls = Tls {
        root: &stranger.ca,
        sni: "www.google.com",
        alpn: H2_AND_H1,
    };
    let err = connect(net.https, &tls).await.unwrap_err();
    assert_eq!(
        tls_error(&err),
        &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
    );
}

#[tokio::test]
async fn an_unknown_sni_gets_the_same_certificate_which_does_not_name_it() {
    // The server does not refuse the name; the client's verification does, as it
    // would with a misconfigured real server.
    let net = start().await;
    let tls = Tls {
        root: &net.ca,
        sni: "example.com",
        alpn: H2_AND_H1,
    };
    let err = connect(net.https, &tls).await.unwrap_err();
    assert!(
        matches!(
            tls_error(&err),
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            )
        ),
        "{err:?}"
    );
}

// === configuration ===

/// A fresh directory under the system's temporary directory.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshlab-internet-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn the_certificate_and_key_load_from_pem_files() {
    let pki = Pki::new("meshlab test public CA");
    let dir = scratch_dir("pem");
    let (chain, key) = (dir.join("chain.pem"), dir.join("key.pem"));
    std::fs::write(&chain, format!("{}{}", pki.leaf_pem, pki.ca_pem)).unwrap();
    std::fs::write(&key, pki.key.serialize_pem()).unwrap();
    let loaded = internet::load_server_config(&chain, &key);

    let missing = internet::load_server_config(&dir.join("absent.pem"), &key);
    std::fs::write(dir.join("empty.pem"), "").unwrap();
    let empty = internet::load_server_config(&dir.join("empty.pem"), &key);
    let other = Pki::new("other");
    std::fs::write(dir.join("other-key.pem"), other.key.serialize_pem()).unwrap();
    let mismatched = internet::load_server_config(&chain, &dir.join("other-key.pem"));
    std::fs::remove_dir_all(&dir).unwrap();

    let loaded = loaded.unwrap();
    assert_eq!(
        loaded.alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    let missing = missing.unwrap_err();
    assert!(
        matches!(missing, InternetError::CertChain { .. }),
        "{missing:?}"
    );
    assert!(missing.to_string().contains("absent.pem"), "{missing}");
    let empty = empty.unwrap_err();
    assert!(
        matches!(empty, InternetError::NoCertificate { .. }),
        "{empty:?}"
    );
    let mismatched = mismatched.unwrap_err();
    assert!(
        matches!(mismatched, InternetError::Tls(_)),
        "{mismatched:?}"
    );
}

#[test]
fn the_default_config_listens_on_80_and_443() {
    let config = internet::Config::new("/etc/internet/chain.pem", "/etc/internet/key.pem");
    assert_eq!(config.http, "0.0.0.0:80".parse().unwrap());
    assert_eq!(config.https, "0.0.0.0:443".parse().unwrap());
}
