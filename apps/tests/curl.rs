//! `meshlab curl` against real sockets on 127.0.0.1.
//!
//! Each test starts the peer it needs: a small hyper server (HTTP/1.1 and HTTP/2,
//! plain or TLS with a CA made at test time) for the happy paths, and raw TCP
//! listeners that misbehave on purpose for curl's failure codes (refused, silent,
//! closed, reset, not HTTP). curl itself runs in-process through
//! `meshlab_apps::curl::run`, so stdout, stderr and the exit code are all checked.

use std::convert::Infallible;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// === harness ===

/// What one curl invocation printed and returned.
#[derive(Debug)]
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn curl(args: &[&str]) -> Outcome {
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let args = args.iter().map(OsString::from).collect();
    let code = meshlab_apps::curl::run(args, &mut stdout, &mut stderr).await;
    Outcome {
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// A file path unique to this test run; removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let file = format!("meshlab-curl-{}-{n}-{name}", std::process::id());
        Self(std::env::temp_dir().join(file))
    }

    fn with(name: &str, contents: &str) -> Self {
        let file = Self::new(name);
        std::fs::write(&file.0, contents).expect("write temp file");
        file
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }

    fn read(&self) -> String {
        std::fs::read_to_string(&self.0).unwrap_or_default()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        std::fs::remove_file(&self.0).ok();
    }
}

/// The test application: a few routes in the spirit of httpbin.
async fn app(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let reply = |status: u16, body: String| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Full::new(Bytes::from(body)))
            .expect("valid response")
    };
    let response = match path.as_str() {
        "/" => reply(200, "hello from meshlab\n".to_owned()),
        "/echo" => {
            let mut text = format!("{} {:?}\n", request.method(), request.version());
            for (name, value) in request.headers() {
                text.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("?")));
            }
            let body = request.into_body().collect().await.map(|b| b.to_bytes());
            text.push('\n');
            text.push_str(&String::from_utf8_lossy(&body.unwrap_or_default()));
            reply(200, text)
        }
        "/redirect" => Response::builder()
            .status(302)
            .header(header::LOCATION, "/final?from=redirect")
            .body(Full::default())
            .expect("valid response"),
        "/loop" => Response::builder()
            .status(301)
            .header(header::LOCATION, "loop")
            .body(Full::default())
            .expect("valid response"),
        "/final" => reply(200, format!("final {query}\n")),
        "/login" => Response::builder()
            .status(303)
            .header(header::SET_COOKIE, "session=xyz; Path=/; HttpOnly")
            .header(header::LOCATION, "/cookies")
            .body(Full::default())
            .expect("valid response"),
        "/cookies/set" => {
            let mut response = reply(200, "set\n".to_owned());
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let value = format!("{pair}; Path=/");
                response
                    .headers_mut()
                    .append(header::SET_COOKIE, value.parse().expect("cookie"));
            }
            response
        }
        "/cookies" => {
            let cookie = request.headers().get(header::COOKIE);
            let text = cookie.map_or("", |v| v.to_str().unwrap_or("?"));
            reply(200, format!("{text}\n"))
        }
        "/status/404" => reply(404, "not found\n".to_owned()),
        _ => reply(404, "no such route\n".to_owned()),
    };
    Ok(response)
}

/// Serves [`app`] over plain TCP (HTTP/1.1, or HTTP/2 with prior knowledge).
async fn http_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(
                auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service_fn(app))
                    .into_owned(),
            );
        }
    });
    addr
}

/// A CA, a server certificate it signed for `secure.meshlab.test`, and a client
/// certificate (PEM, for `--cert`/`--key`).
struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_cert_pem: String,
    client_key_pem: String,
}

fn pki(ca_name: &str) -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().expect("server key");
    let mut leaf =
        CertificateParams::new(vec!["secure.meshlab.test".to_owned()]).expect("server params");
    leaf.distinguished_name
        .push(DnType::CommonName, "secure.meshlab.test");
    let cert = leaf.signed_by(&key, &issuer).expect("server certificate");

    let client_key = KeyPair::generate().expect("client key");
    let mut client = CertificateParams::new(Vec::<String>::new()).expect("client params");
    client
        .distinguished_name
        .push(DnType::CommonName, "client.meshlab.test");
    let client_cert = client
        .signed_by(&client_key, &issuer)
        .expect("client certificate");
    Pki {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().clone(),
        chain: vec![cert.der().clone()],
        key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

/// Serves [`app`] over TLS (ALPN h2 and http/1.1), asking for a client certificate
/// from the same CA when `mutual`; returns the port and the PKI.
async fn https_server(mutual: bool) -> (u16, Pki) {
    let pki = pki("meshlab test CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("protocol versions");
    let builder = if mutual {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca_der.clone()).expect("CA as root");
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client verifier");
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(pki.chain.clone(), pki.key.clone_key())
        .expect("server config");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service_fn(app))
                        .await
                        .ok();
                }
            });
        }
    });
    (port, pki)
}

/// How a raw peer treats each connection.
#[derive(Debug, Clone, Copy)]
enum Misbehaviour {
    /// Accept, keep the socket open, never answer.
    Silent,
    /// Close at once.
    Close,
    /// Read the request, then close without a byte.
    CloseAfterRequest,
    /// Read the request, then reset the connection.
    ResetAfterRequest,
    /// Send these bytes after the request, then close.
    Reply(&'static [u8]),
    /// Send these bytes after the request, then stay silent.
    ReplyThenHang(&'static [u8]),
}

async fn raw_server(behaviour: Misbehaviour) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(misbehave(tcp, behaviour));
        }
    });
    addr
}

async fn misbehave(mut tcp: TcpStream, behaviour: Misbehaviour) {
    match behaviour {
        Misbehaviour::Silent => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        Misbehaviour::Close => return,
        _ => read_request_head(&mut tcp).await,
    }
    match behaviour {
        Misbehaviour::Silent | Misbehaviour::Close | Misbehaviour::CloseAfterRequest => {}
        Misbehaviour::ResetAfterRequest => {
            tcp.set_zero_linger().expect("SO_LINGER");
        }
        Misbehaviour::Reply(bytes) => {
            tcp.write_all(bytes).await.ok();
        }
        Misbehaviour::ReplyThenHang(bytes) => {
            tcp.write_all(bytes).await.ok();
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    }
}

/// Reads until the end of an HTTP request head (or EOF).
async fn read_request_head(tcp: &mut TcpStream) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// A port with nothing listening: bind, note the port, close.
async fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("address").port()
}

// === happy paths ===

#[tokio::test]
async fn prints_the_body() {
    let addr = http_server().await;
    let out = curl(&["-s", &format!("http://{addr}/")]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "hello from meshlab\n");
    assert_eq!(out.stderr, "");
}

#[tokio::test]
async fn writes_out_status_codes() {
    let addr = http_server().await;
    let cases = [
        ("/", "200\n"),
        ("/status/404", "404\n"),
        ("/redirect", "302\n"),
    ];
    for (path, expected) in cases {
        let url = format!("http://{addr}{path}");
        let out = curl(&["-s", "-o", "/dev/null", "-w", "%{http_code}\\n", &url]).await;
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (0, expected),
            "{path}: {out:?}"
        );
    }
    // No scheme means http://, and options may follow the URL.
    let out = curl(&[
        &format!("{addr}/"),
        "-so",
        "/dev/null",
        "-w",
        "%{response_code} %{size_download} %{remote_ip}:%{remote_port} %{url_effective} %{content_type}",
    ])
    .await;
    assert_eq!(
        out.stdout,
        format!("200 19 127.0.0.1:{} http://{addr}/ text/plain", addr.port())
    );
    let out = curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{time_connect} %{time_starttransfer} %{time_total}",
        &format!("http://{addr}/"),
    ])
    .await;
    let times: Vec<f64> = out
        .stdout
        .split(' ')
        .map(|t| {
            assert_eq!(
                t.split('.').nth(1).map(str::len),
                Some(6),
                "six decimals: {t}"
            );
            t.parse().expect("seconds")
        })
        .collect();
    assert!(times[0] <= times[1] && times[1] <= times[2], "{times:?}");
}

#[tokio::test]
async fn includes_and_heads() {
    let addr = http_server().await;
    let out = curl(&["-si", &format!("http://{addr}/")]).await;
    assert!(out.stdout.starts_with("HTTP/1.1 200 OK\r\n"), "{out:?}");
    assert!(
        out.stdout.contains("\r\ncontent-type: text/plain\r\n"),
        "{out:?}"
    );
    assert!(
        out.stdout.ends_with("\r\n\r\nhello from meshlab\n"),
        "{out:?}"
    );

    let out = curl(&["-sSI", &format!("http://{addr}/")]).await;
    assert!(out.stdout.starts_with("HTTP/1.1 200 OK\r\n"), "{out:?}");
    assert!(
        out.stdout.ends_with("\r\n\r\n"),
        "HEAD has no body: {out:?}"
    );

    let dump = TempFile::new("headers");
    let body = TempFile::new("body");
    let out = curl(&[
        "-s",
        "-D",
        dump.path(),
        "-o",
        body.path(),
        &format!("http://{addr}/"),
    ])
    .await;
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");
    assert!(dump.read().starts_with("HTTP/1.1 200 OK\r\n"));
    assert_eq!(body.read(), "hello from meshlab\n");
}

#[tokio::test]
async fn sends_curl_headers_and_custom_ones() {
    let addr = http_server().await;
    let url = format!("http://{addr}/echo");
    let out = curl(&["-s", &url]).await;
    assert!(out.stdout.starts_with("GET HTTP/1.1\n"), "{out:?}");
    assert!(out.stdout.contains(&format!("host: {addr}\n")), "{out:?}");
    assert!(out.stdout.contains("user-agent: curl/"), "{out:?}");
    assert!(out.stdout.contains("accept: */*\n"), "{out:?}");

    let out = curl(&[
        "-s",
        "-H",
        "Host: httpbin.example.com",
        "-HX-Trace: on",
        "-H",
        "Accept:",
        "-H",
        "X-Empty;",
        "-A",
        "meshlab-test/1",
        "-u",
        "jason:secret",
        &url,
    ])
    .await;
    let echoed = out.stdout;
    assert!(echoed.contains("host: httpbin.example.com\n"), "{echoed}");
    assert!(echoed.contains("x-trace: on\n"), "{echoed}");
    assert!(echoed.contains("x-empty: \n"), "{echoed}");
    assert!(echoed.contains("user-agent: meshlab-test/1\n"), "{echoed}");
    assert!(
        echoed.contains("authorization: Basic amFzb246c2VjcmV0\n"),
        "{echoed}"
    );
    assert!(!echoed.contains("accept:"), "{echoed}");
}

#[tokio::test]
async fn posts_form_data() {
    let addr = http_server().await;
    let url = format!("http://{addr}/echo");
    let out = curl(&["-s", "-d", "user=jason", "--data-raw", "@literal", &url]).await;
    assert!(out.stdout.starts_with("POST HTTP/1.1\n"), "{out:?}");
    assert!(
        out.stdout
            .contains("content-type: application/x-www-form-urlencoded\n"),
        "{out:?}"
    );
    assert!(out.stdout.contains("content-length: 19\n"), "{out:?}");
    assert!(out.stdout.ends_with("\n\nuser=jason&@literal"), "{out:?}");

    let data = TempFile::with("data", "a=1\nb=2\n");
    let out = curl(&[
        "-s",
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/json",
        "-d",
        &format!("@{}", data.path()),
        &url,
    ])
    .await;
    assert!(out.stdout.starts_with("PUT HTTP/1.1\n"), "{out:?}");
    assert!(
        out.stdout.contains("content-type: application/json\n"),
        "{out:?}"
    );
    assert!(out.stdout.ends_with("\n\na=1b=2"), "{out:?}");
}

#[tokio::test]
async fn follows_redirects_with_location() {
    let addr = http_server().await;
    let url = format!("http://{addr}/redirect");
    let out = curl(&["-s", "-w", "%{redirect_url}", &url]).await;
    assert_eq!(out.stdout, format!("http://{addr}/final?from=redirect"));

    let out = curl(&[
        "-sL",
        "-w",
        "%{http_code} %{num_redirects} %{url_effective}",
        &url,
    ])
    .await;
    assert_eq!(
        out.stdout,
        format!("final from=redirect\n200 1 http://{addr}/final?from=redirect")
    );

    let out = curl(&["-sSL", "-iL", &url]).await;
    assert!(out.stdout.starts_with("HTTP/1.1 302 Found\r\n"), "{out:?}");
    assert!(
        out.stdout.contains("\r\n\r\nHTTP/1.1 200 OK\r\n"),
        "{out:?}"
    );

    let out = curl(&["-sSL", "--max-redirs", "3", &format!("http://{addr}/loop")]).await;
    assert_eq!(out.code, 47, "{out:?}");
    assert_eq!(out.stderr, "curl: (47) Maximum (3) redirects followed\n");
}

#[tokio::test]
async fn keeps_cookies_in_a_jar() {
    let addr = http_server().await;
    let jar = TempFile::new("jar");
    let out = curl(&[
        "-s",
        "-c",
        jar.path(),
        &format!("http://{addr}/cookies/set?session=abc&user=jason"),
    ])
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let text = jar.read();
    assert!(text.starts_with("# Netscape HTTP Cookie File\n"), "{text}");
    assert!(
        text.contains("127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tabc\n"),
        "{text}"
    );

    let out = curl(&["-s", "-b", jar.path(), &format!("http://{addr}/cookies")]).await;
    assert_eq!(out.stdout, "session=abc; user=jason\n");

    let out = curl(&[
        "-s",
        "-b",
        "flavour=dark",
        &format!("http://{addr}/cookies"),
    ])
    .await;
    assert_eq!(out.stdout, "flavour=dark\n");

    // A cookie set by a redirect goes along on the follow-up request; `-c -` prints
    // the jar after the body.
    let out = curl(&["-sL", "-c", "-", &format!("http://{addr}/login")]).await;
    assert!(
        out.stdout
            .starts_with("session=xyz\n# Netscape HTTP Cookie File\n"),
        "{out:?}"
    );
}

#[tokio::test]
async fn resolve_pins_an_address() {
    let addr = http_server().await;
    let port = addr.port();
    let out = curl(&[
        "-s",
        "--resolve",
        &format!("app.meshlab.test:{port}:127.0.0.1"),
        &format!("http://app.meshlab.test:{port}/echo"),
    ])
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains(&format!("host: app.meshlab.test:{port}\n")),
        "{out:?}"
    );
}

#[tokio::test]
async fn speaks_http2_with_prior_knowledge() {
    let addr = http_server().await;
    let out = curl(&[
        "-sSi",
        "--http2-prior-knowledge",
        &format!("http://{addr}/"),
    ])
    .await;
    assert!(out.stdout.starts_with("HTTP/2 200\r\n"), "{out:?}");
    assert!(out.stdout.ends_with("hello from meshlab\n"), "{out:?}");
}

#[tokio::test]
async fn fails_on_http_errors_when_asked() {
    let addr = http_server().await;
    let url = format!("http://{addr}/status/404");
    let out = curl(&["-sS", "-f", "-w", "%{http_code}", &url]).await;
    assert_eq!(out.code, 22, "{out:?}");
    assert_eq!(out.stdout, "404");
    assert_eq!(
        out.stderr,
        "curl: (22) The requested URL returned error: 404\n"
    );

    let out = curl(&["-s", "--fail-with-body", &url]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (22, "not found\n"),
        "{out:?}"
    );
}

#[tokio::test]
async fn traces_with_verbose() {
    let addr = http_server().await;
    let out = curl(&["-sv", "-o", "/dev/null", &format!("http://{addr}/")]).await;
    let trace = out.stderr;
    for line in [
        &format!("*   Trying {addr}...\n"),
        &format!(
            "* Connected to 127.0.0.1 (127.0.0.1) port {}\n",
            addr.port()
        ),
        "> GET / HTTP/1.1\r\n",
        &format!("> Host: {addr}\r\n"),
        "> Accept: */*\r\n> \r\n",
        "< HTTP/1.1 200 OK\r\n",
        "* Connection #0 to host 127.0.0.1 left intact\n",
    ] {
        assert!(trace.contains(line), "missing {line:?} in:\n{trace}");
    }
}

// === TLS ===

#[tokio::test]
async fn https_with_the_right_ca_negotiates_h2() {
    let (port, pki) = https_server(false).await;
    let ca = TempFile::with("ca.pem", &pki.ca_pem);
    let resolve = format!("secure.meshlab.test:{port}:127.0.0.1");
    let url = format!("https://secure.meshlab.test:{port}/");

    let out = curl(&["-sSI", "--cacert", ca.path(), "--resolve", &resolve, &url]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("HTTP/2 200\r\n"), "{out:?}");

    let out = curl(&[
        "-sS",
        "--http1.1",
        "-i",
        "--cacert",
        ca.path(),
        "--resolve",
        &resolve,
        &url,
    ])
    .await;
    assert!(out.stdout.starts_with("HTTP/1.1 200 OK\r\n"), "{out:?}");
    assert!(out.stdout.ends_with("hello from meshlab\n"), "{out:?}");

    let out = curl(&[
        "-v",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version}",
        "--cacert",
        ca.path(),
        "--resolve",
        &resolve,
        &url,
    ])
    .await;
    assert_eq!(out.stdout, "2");
    for line in [
        "* ALPN: curl offers h2,http/1.1\n",
        "* ALPN: server accepted h2\n",
        "*  subject: CN=secure.meshlab.test\n",
        "*  issuer: CN=meshlab test CA\n",
        "> GET / HTTP/2\r\n",
        "< HTTP/2 200\r\n",
    ] {
        assert!(
            out.stderr.contains(line),
            "missing {line:?} in:\n{}",
            out.stderr
        );
    }
}

#[tokio::test]
async fn https_with_an_unknown_ca_is_60_unless_insecure() {
    let (port, _) = https_server(false).await;
    let other_ca = TempFile::with("other-ca.pem", &pki("another CA").ca_pem);
    let resolve = format!("secure.meshlab.test:{port}:127.0.0.1");
    let url = format!("https://secure.meshlab.test:{port}/");

    let out = curl(&[
        "-sS",
        "-w",
        "%{http_code}",
        "--cacert",
        other_ca.path(),
        "--resolve",
        &resolve,
        &url,
    ])
    .await;
    assert_eq!(out.code, 60, "{out:?}");
    assert_eq!(out.stdout, "000");
    assert_eq!(
        out.stderr,
        "curl: (60) SSL certificate problem: unable to get local issuer certificate\n"
    );

    let out = curl(&["-sSk", "--resolve", &resolve, &url]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "hello from meshlab\n"),
        "{out:?}"
    );
}

#[tokio::test]
async fn https_to_the_wrong_name_is_60() {
    let (port, pki) = https_server(false).await;
    let ca = TempFile::with("ca.pem", &pki.ca_pem);
    let out = curl(&[
        "-sS",
        "--cacert",
        ca.path(),
        &format!("https://127.0.0.1:{port}/"),
    ])
    .await;
    assert_eq!(out.code, 60, "{out:?}");
    assert_eq!(
        out.stderr,
        "curl: (60) SSL: no alternative certificate subject name matches target host name '127.0.0.1'\n"
    );
}

#[tokio::test]
async fn presents_a_client_certificate() {
    let (port, pki) = https_server(true).await;
    let ca = TempFile::with("ca.pem", &pki.ca_pem);
    let cert = TempFile::with("client.pem", &pki.client_cert_pem);
    let key = TempFile::with("client.key", &pki.client_key_pem);
    let resolve = format!("secure.meshlab.test:{port}:127.0.0.1");
    let url = format!("https://secure.meshlab.test:{port}/");
    let base = ["-sS", "--cacert", ca.path(), "--resolve", &resolve];

    let with_cert = [
        &base[..],
        &["--cert", cert.path(), "--key", key.path(), &url],
    ]
    .concat();
    let out = curl(&with_cert).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "hello from meshlab\n"),
        "{out:?}"
    );

    // Without one, TLS 1.3 completes the handshake and the server's refusal arrives
    // as an alert on the first read, which curl reports as 56.
    let out = curl(&[&base[..], &[&url]].concat()).await;
    eprintln!("DEBUG {out:?}");
    assert_eq!(out.code, 56, "{out:?}");
    assert!(
        out.stderr.starts_with("curl: (56) Recv failure: "),
        "{out:?}"
    );

    let missing = [&base[..], &["--cert", "/nonexistent/client.pem", &url]].concat();
    let out = curl(&missing).await;
    assert_eq!(out.code, 58, "{out:?}");
}

#[tokio::test]
async fn connect_timeout_covers_the_tls_handshake() {
    let addr = raw_server(Misbehaviour::Silent).await;
    let started = Instant::now();
    let url = format!("https://{addr}/");
    let out = curl(&["-sSk", "--connect-timeout", "0.5", &url]).await;
    assert_eq!(out.code, 28, "{out:?}");
    assert_eq!(out.stderr, "curl: (28) SSL connection timeout\n");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn tls_to_a_plain_http_port_is_35() {
    let addr = http_server().await;
    let out = curl(&[
        "-sS",
        "-k",
        "-w",
        "%{http_code}",
        &format!("https://{addr}/"),
    ])
    .await;
    assert_eq!(out.code, 35, "{out:?}");
    assert_eq!(out.stdout, "000");
    assert!(out.stderr.starts_with("curl: (35) "), "{out:?}");

    let addr = raw_server(Misbehaviour::Close).await;
    let out = curl(&["-sS", "-k", "--max-time", "5", &format!("https://{addr}/")]).await;
    assert_eq!(out.code, 35, "closed during the handshake: {out:?}");
}

#[tokio::test]
async fn bad_ca_file_is_77() {
    let out = curl(&[
        "-sS",
        "--cacert",
        "/nonexistent/ca.pem",
        "https://127.0.0.1:1/",
    ])
    .await;
    assert_eq!(out.code, 77, "{out:?}");
    let expected = "curl: (77) error setting certificate file: cannot read CA bundle \
        /nonexistent/ca.pem: No such file or directory";
    assert!(out.stderr.starts_with(expected), "{out:?}");
}

// === failures ===

#[tokio::test]
async fn refused_connection_is_000_and_7() {
    let out = curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "http://127.0.0.1:1/",
    ])
    .await;
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (7, "000", "")
    );

    let port = refused_port().await;
    let out = curl(&[
        "-sS",
        "-w",
        "%{http_code}\\n",
        &format!("http://127.0.0.1:{port}/"),
    ])
    .await;
    assert_eq!(out.code, 7);
    assert_eq!(out.stdout, "000\n");
    let expected = format!("curl: (7) Failed to connect to 127.0.0.1 port {port} after ");
    assert!(out.stderr.starts_with(&expected), "{out:?}");
    assert!(
        out.stderr.ends_with(" ms: Couldn't connect to server\n"),
        "{out:?}"
    );
}

#[tokio::test]
async fn silent_server_times_out_with_28() {
    let addr = raw_server(Misbehaviour::Silent).await;
    let started = Instant::now();
    let out = curl(&[
        "-sS",
        "--max-time",
        "1",
        "-w",
        "%{http_code}",
        &format!("http://{addr}/"),
    ])
    .await;
    let elapsed = started.elapsed();
    assert_eq!(out.code, 28, "{out:?}");
    assert_eq!(out.stdout, "000");
    assert!(
        out.stderr
            .starts_with("curl: (28) Operation timed out after "),
        "{out:?}"
    );
    assert!(
        out.stderr
            .ends_with(" milliseconds with 0 bytes received\n"),
        "{out:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(950) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );

    let addr = raw_server(Misbehaviour::ReplyThenHang(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
    ))
    .await;
    let out = curl(&[
        "-sS",
        "-m",
        "0.5",
        "-w",
        "%{http_code}",
        &format!("http://{addr}/"),
    ])
    .await;
    assert_eq!(out.code, 28, "{out:?}");
    assert_eq!(out.stdout, "hello200");
    assert!(
        out.stderr
            .ends_with(" milliseconds with 5 out of 10 bytes received\n"),
        "{out:?}"
    );
}

#[tokio::test]
async fn closed_without_reply_is_52() {
    let addr = raw_server(Misbehaviour::CloseAfterRequest).await;
    let out = curl(&["-sS", "-w", "%{http_code}", &format!("http://{addr}/")]).await;
    assert_eq!(out.code, 52, "{out:?}");
    assert_eq!(out.stdout, "000");
    assert_eq!(out.stderr, "curl: (52) Empty reply from server\n");
}

#[tokio::test]
async fn reset_is_56() {
    let addr = raw_server(Misbehaviour::ResetAfterRequest).await;
    let out = curl(&[
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://{addr}/"),
    ])
    .await;
    assert_eq!(out.code, 56, "{out:?}");
    assert_eq!(out.stdout, "000");
    assert_eq!(
        out.stderr,
        "curl: (56) Recv failure: Connection reset by peer\n"
    );
}

#[tokio::test]
async fn short_body_is_18_and_non_http_is_1() {
    let addr = raw_server(Misbehaviour::Reply(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
    ))
    .await;
    let out = curl(&["-sS", &format!("http://{addr}/")]).await;
    assert_eq!(out.code, 18, "{out:?}");
    assert_eq!(out.stdout, "hello");
    assert_eq!(
        out.stderr,
        "curl: (18) transfer closed with 5 bytes remaining to read\n"
    );

    let addr = raw_server(Misbehaviour::Reply(b"SSH-2.0-OpenSSH_9.6\r\n")).await;
    let out = curl(&["-sS", &format!("http://{addr}/")]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stderr, "curl: (1) Received HTTP/0.9 when not allowed\n");
}

#[tokio::test]
async fn unresolvable_host_is_6() {
    let out = curl(&["-sS", "-w", "%{http_code}", "http://nonexistent.invalid/"]).await;
    assert_eq!(out.code, 6, "{out:?}");
    assert_eq!(out.stdout, "000");
    assert_eq!(
        out.stderr,
        "curl: (6) Could not resolve host: nonexistent.invalid\n"
    );
}

#[tokio::test]
async fn usage_and_url_errors() {
    let cases: [(&[&str], i32, &str); 5] = [
        (
            &["--frobnicate", "http://x/"],
            2,
            "curl: option --frobnicate: is unknown\n",
        ),
        (&["-s"], 2, "curl: no URL specified\n"),
        (
            &["-sS", "http://exa mple/"],
            3,
            "curl: (3) URL rejected: Malformed input to a URL function\n",
        ),
        (
            &["-sS", "http://h:99999/"],
            3,
            "curl: (3) URL rejected: Port number was not a decimal number between 0 and 65535\n",
        ),
        (
            &["-sS", "ftp://h/"],
            1,
            "curl: (1) Protocol \"ftp\" not supported\n",
        ),
    ];
    for (args, code, stderr) in cases {
        let out = curl(args).await;
        assert_eq!(out.code, code, "{args:?}: {out:?}");
        assert!(out.stderr.starts_with(stderr), "{args:?}: {out:?}");
    }
}

#[tokio::test]
async fn unwritable_output_is_23() {
    let addr = http_server().await;
    let out = curl(&[
        "-sS",
        "-o",
        "/nonexistent/dir/file",
        &format!("http://{addr}/"),
    ])
    .await;
    assert_eq!(out.code, 23, "{out:?}");
    assert_eq!(
        out.stderr,
        "curl: (23) Failure writing output to destination\n"
    );
}
