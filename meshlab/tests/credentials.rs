//! Certificates of the learner's own, named by `credentialName`, on a real lab:
//! Istio's "Secure Gateways" task (an HTTPS server on the ingress gateway, then
//! mutual TLS) and TLS origination with a client certificate from a sidecar
//! (a DestinationRule with a `workloadSelector`, `tls.mode: MUTUAL`).
//!
//! The client is the sleep pod's sidecar: sleep calls
//! `http://httpbin.example.com/status/418` in plain HTTP, its sidecar originates
//! TLS to the gateway's HTTPS port (a ServiceEntry in `istio-system` selects the
//! gateway pod, port 80 → 8443), the gateway terminates it with
//! `httpbin-credential` and routes to httpbin by the task's VirtualService.
//! httpbin's teapot (418) proves the whole path; a refused handshake shows as
//! the client sidecar's 503. Secrets are made with `meshlab create secret`, as the
//! task makes them with kubectl. Without Docker the test prints nothing and passes
//! unless `MESHLAB_REQUIRE_DOCKER` is set.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/engine.rs"]
mod engine;

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use self::cli::{Lab, eventually};
use self::engine::docker_available;

const HTTPBIN: &str = include_str!("../../labs/samples/httpbin.yaml");

/// The task's Gateway and VirtualService, `mode` and `credential` filled in.
fn secure_gateway(mode: &str, credential: &str) -> String {
    format!(
        "\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: mygateway
spec:
  selector:
    istio: ingressgateway # use istio default ingress gateway
  servers:
  - port:
      number: 443
      name: https
      protocol: HTTPS
    tls:
      mode: {mode}
      credentialName: {credential} # must be the same as secret
    hosts:
    - httpbin.example.com
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
spec:
  hosts:
  - \"httpbin.example.com\"
  gateways:
  - mygateway
  http:
  - match:
    - uri:
        prefix: /status
    - uri:
        prefix: /delay
    route:
    - destination:
        port:
          number: 8000
        host: httpbin
"
    )
}

/// The gateway's HTTPS port as a mesh service that sidecars can call.
const GATEWAY_ENTRY: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: httpbin-example
  namespace: istio-system
spec:
  hosts:
  - httpbin.example.com
  location: MESH_INTERNAL
  ports:
  - number: 80
    name: http
    protocol: HTTP
    targetPort: 8443
  resolution: STATIC
  workloadSelector:
    labels:
      istio: ingressgateway
";

/// Sleep's sidecar originates TLS to the gateway with `credential`.
fn origination(mode: &str, credential: &str, selected: bool) -> String {
    let selector = if selected {
        "  workloadSelector:\n    matchLabels:\n      app: sleep\n"
    } else {
        ""
    };
    format!(
        "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: originate-tls-for-httpbin
spec:
{selector}  host: httpbin.example.com
  trafficPolicy:
    portLevelSettings:
    - port:
        number: 80
      tls:
        mode: {mode}
        credentialName: {credential}
        sni: httpbin.example.com
"
    )
}

/// A CA, and a leaf for `name` that it signs.
struct Pki {
    ca: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(organization: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::OrganizationName, organization);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = params.self_signed(&key).unwrap().pem();
        Pki {
            ca,
            issuer: Issuer::new(params, key),
        }
    }

    /// (certificate, key) PEM for `name`.
    fn leaf(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// `meshlab create [-n NS] secret generic NAME --from-file=KEY=PATH…`.
fn create_generic(lab: &Lab, namespace: &str, name: &str, files: &[(&str, &str)]) {
    let from_files: Vec<String> = files
        .iter()
        .map(|(key, path)| format!("--from-file={key}={path}"))
        .collect();
    let mut args = vec!["create", "-n", namespace, "secret", "generic", name];
    args.extend(from_files.iter().map(String::as_str));
    let created = lab.ok(&args);
    assert_eq!(created.trim(), format!("secret/{name} created"));
}

/// Gateway's reference example: plain HTTP on port 80 redirected to HTTPS.
const HTTPS_REDIRECT: &str = "\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: redirect-gateway
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - httpbin.example.com
    tls:
      httpsRedirect: true # sends 301 redirect for http requests
";

/// Sleep's call through its sidecar to the gateway: curl's exit code and status.
fn teapot(lab: &Lab) -> String {
    let (code, status) = lab.curl_from_sleep(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        // No DNS name exists for the host: any address reaches the sidecar, which
        // routes by Host.
        "--resolve",
        "httpbin.example.com:80:240.240.0.1",
        "http://httpbin.example.com/status/418",
    ]);
    format!("{status}/{code}")
}

/// The task's own check, from the host through the published HTTPS port:
/// `curl --resolve … --cacert example.com.crt https://httpbin.example.com:PORT/status/418`,
/// with `extra` flags; curl's status and exit code.
fn from_host(lab: &Lab, ca: &str, extra: &[&str]) -> String {
    let port = lab.https_port;
    let out = std::process::Command::new(cli::MESHLAB)
        .args(["curl", "-s", "--max-time", "10", "-o", "/dev/null"])
        .args(["-w", "%{http_code}", "--cacert", ca, "--resolve"])
        .arg(format!("httpbin.example.com:{port}:127.0.0.1"))
        .args(extra)
        .arg(format!("https://httpbin.example.com:{port}/status/418"))
        .output()
        .unwrap();
    format!(
        "{}/{}",
        String::from_utf8_lossy(&out.stdout),
        out.status.code().unwrap_or(-1)
    )
}

fn expect_teapot(lab: &Lab, what: &str, want: &str) {
    eventually(what, || {
        let got = teapot(lab);
        if got == want {
            Ok(())
        } else {
            Err(format!("got {got}, want {want}"))
        }
    });
}

#[test]
fn secure_gateway_and_mutual_tls_origination_use_credential_secrets() {
    if !docker_available() {
        return;
    }
    let lab = Lab::new("credentials");
    lab.up(&["--no-bookinfo"]);
    lab.apply(HTTPBIN);

    let dir: PathBuf = std::env::temp_dir().join(format!("{}-certs", lab.name));
    std::fs::create_dir_all(&dir).unwrap();
    let example = Pki::new("example Inc.");
    let (server_crt, server_key) = example.leaf("httpbin.example.com");
    let (client_crt, client_key) = example.leaf("client.example.com");
    let foreign = Pki::new("someone else");
    let (foreign_crt, foreign_key) = foreign.leaf("client.example.com");
    let ca = write(&dir, "example.com.crt", &example.ca);
    let server_crt = write(&dir, "httpbin.example.com.crt", &server_crt);
    let server_key = write(&dir, "httpbin.example.com.key", &server_key);
    let client_crt = write(&dir, "client.example.com.crt", &client_crt);
    let client_key = write(&dir, "client.example.com.key", &client_key);
    let foreign_crt = write(&dir, "foreign.crt", &foreign_crt);
    let foreign_key = write(&dir, "foreign.key", &foreign_key);

    // The task's first step, in kubectl's words; a second create is refused.
    let created = lab.ok(&[
        "create",
        "-n",
        "istio-system",
        "secret",
        "tls",
        "httpbin-credential",
        &format!("--key={server_key}"),
        &format!("--cert={server_crt}"),
    ]);
    assert_eq!(created.trim(), "secret/httpbin-credential created");
    let again = lab.run(&[
        "create",
        "-n",
        "istio-system",
        "secret",
        "tls",
        "httpbin-credential",
        &format!("--key={server_key}"),
        &format!("--cert={server_crt}"),
    ]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains(
            "Error from server (AlreadyExists): secrets \"httpbin-credential\" already exists"
        ),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let listed = lab.ok(&["get", "secrets", "-n", "istio-system"]);
    assert!(
        listed.contains("httpbin-credential") && listed.contains("kubernetes.io/tls"),
        "{listed}"
    );
    create_generic(&lab, "default", "example-ca", &[("ca.crt", &ca)]);

    // SIMPLE at the gateway; sleep's sidecar trusts the example CA.
    lab.apply(&secure_gateway("SIMPLE", "httpbin-credential"));
    lab.apply(GATEWAY_ENTRY);
    lab.apply(&origination("SIMPLE", "example-ca", true));
    expect_teapot(&lab, "HTTPS through the gateway's SIMPLE server", "418/0");
    lab.apply(HTTPS_REDIRECT);
    eventually("httpsRedirect answers plain HTTP with a 301", || {
        let (_, out) = lab.gateway(
            "/status/418",
            &[
                "-H",
                "Host: httpbin.example.com",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{redirect_url}",
            ],
        );
        (out == "301 https://httpbin.example.com/status/418")
            .then_some(())
            .ok_or(out)
    });
    assert_eq!(
        from_host(&lab, &ca, &[]),
        "418/0",
        "the task's curl on the host"
    );
    let secrets = lab.ok(&[
        "proxy-config",
        "secret",
        "deploy/istio-ingressgateway",
        "-n",
        "istio-system",
    ]);
    assert!(
        secrets.contains("kubernetes://httpbin-credential") && secrets.contains("Cert Chain"),
        "{secrets}"
    );
    let dump = lab.ok(&[
        "proxy-config",
        "all",
        "deploy/istio-ingressgateway",
        "-n",
        "istio-system",
        "-o",
        "json",
    ]);
    assert!(
        dump.contains("[redacted]") && !dump.contains("PRIVATE KEY"),
        "the gateway's configuration shows no private key"
    );

    // MUTUAL at the gateway: without a client certificate the handshake fails.
    create_generic(
        &lab,
        "istio-system",
        "httpbin-mtls-credential",
        &[
            ("tls.crt", &server_crt),
            ("tls.key", &server_key),
            ("ca.crt", &ca),
        ],
    );
    lab.apply(&secure_gateway("MUTUAL", "httpbin-mtls-credential"));
    expect_teapot(
        &lab,
        "MUTUAL refuses a client without a certificate",
        "503/0",
    );

    // The client's certificate, from a DestinationRule that selects sleep.
    create_generic(
        &lab,
        "default",
        "client-credential",
        &[
            ("tls.crt", &client_crt),
            ("tls.key", &client_key),
            ("ca.crt", &ca),
        ],
    );
    lab.apply(&origination("MUTUAL", "client-credential", true));
    expect_teapot(&lab, "MUTUAL with the client's certificate", "418/0");
    let refused = from_host(&lab, &ca, &[]);
    assert!(
        refused.starts_with("000/"),
        "curl without a certificate: {refused}"
    );
    let client = ["--cert", client_crt.as_str(), "--key", client_key.as_str()];
    assert_eq!(
        from_host(&lab, &ca, &client),
        "418/0",
        "curl with the client's certificate"
    );
    let secrets = lab.ok(&["proxy-config", "secret", "deploy/sleep"]);
    assert!(
        secrets.contains("kubernetes://client-credential ")
            && secrets.contains("kubernetes://client-credential-cacert"),
        "{secrets}"
    );

    // A certificate from another CA is refused, and the gateway says why.
    create_generic(
        &lab,
        "default",
        "foreign-credential",
        &[
            ("tls.crt", &foreign_crt),
            ("tls.key", &foreign_key),
            ("ca.crt", &ca),
        ],
    );
    lab.apply(&origination("MUTUAL", "foreign-credential", true));
    expect_teapot(&lab, "MUTUAL refuses a foreign client certificate", "503/0");
    eventually("the gateway logs why it refused the certificate", || {
        // The proxy's own log lines are the container's standard error.
        let out = lab.run(&["logs", "deploy/istio-ingressgateway", "-n", "istio-system"]);
        let logs = String::from_utf8_lossy(&out.stderr);
        logs.lines()
            .any(|l| l.contains("TLS handshake failed") && l.contains("UnknownIssuer"))
            .then_some(())
            .ok_or_else(|| logs.into_owned())
    });

    // Without a workloadSelector, Istio's sidecars do not read credentialName:
    // apply warns, and sleep's sidecar presents no certificate.
    let out = lab.run_with(
        &["apply", "-f", "-"],
        Some(&origination("MUTUAL", "client-credential", false)),
    );
    assert!(out.status.success());
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(
        warning.contains("credentialName applies at gateways"),
        "{warning}"
    );
    expect_teapot(&lab, "a rule without workloadSelector", "503/0");
    let _ = std::fs::remove_dir_all(dir);
}
