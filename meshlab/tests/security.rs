//! Mutual TLS on a real lab, as Istio's security tasks observe it
//! (`shared/spec/istio-tasks.md` §8 "Mutual TLS migration" and §9 "Authentication
//! policy"): namespaces `foo` and `bar` with httpbin and sleep behind sidecars,
//! `legacy` with the same apps and no sidecar, Istio's manifests unchanged, applied
//! with `-n`.
//!
//! One lab serves every case, in the tasks' order, each policy removed before the
//! next. Without Docker the test prints nothing and passes unless
//! `MESHLAB_REQUIRE_DOCKER` is set.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/engine.rs"]
mod engine;

use self::cli::{Lab, eventually};
use self::engine::docker_available;

const NAMESPACES: &str = "\
apiVersion: v1
kind: Namespace
metadata:
  name: foo
  labels:
    istio-injection: enabled
---
apiVersion: v1
kind: Namespace
metadata:
  name: bar
  labels:
    istio-injection: enabled
---
apiVersion: v1
kind: Namespace
metadata:
  name: legacy
";

const HTTPBIN: &str = include_str!("../../labs/samples/httpbin.yaml");
const SLEEP: &str = include_str!("../../labs/samples/sleep.yaml");

const STRICT_FOO: &str = "\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: foo
spec:
  mtls:
    mode: STRICT
";

const STRICT_MESH: &str = "\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
";

/// §9: workload STRICT on httpbin in bar, with the task's DestinationRule.
const STRICT_HTTPBIN_BAR: &str = "\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: httpbin
  namespace: bar
spec:
  selector:
    matchLabels:
      app: httpbin
  mtls:
    mode: STRICT
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin
spec:
  host: httpbin.bar.svc.cluster.local
  trafficPolicy:
    tls:
      mode: ISTIO_MUTUAL
";

/// §9: the same policy with a port-level exception on the workload port.
const STRICT_HTTPBIN_BAR_PORT_DISABLE: &str = "\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: httpbin
  namespace: bar
spec:
  selector:
    matchLabels:
      app: httpbin
  mtls:
    mode: STRICT
  portLevelMtls:
    8080:
      mode: DISABLE
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin
spec:
  host: httpbin.bar.svc.cluster.local
  trafficPolicy:
    tls:
      mode: ISTIO_MUTUAL
    portLevelSettings:
    - port:
        number: 8000
      tls:
        mode: DISABLE
";

/// §9: a workload DISABLE beats the namespace's STRICT.
const OVERWRITE_EXAMPLE: &str = "\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: overwrite-example
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  mtls:
    mode: DISABLE
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: overwrite-example
spec:
  host: httpbin.foo.svc.cluster.local
  trafficPolicy:
    tls:
      mode: DISABLE
";

/// The task's probe: `curl http://httpbin.TO:8000/ip -s -o /dev/null -w "%{http_code}"`
/// from sleep in `from`: (curl's exit code, what it printed).
fn probe(lab: &Lab, from: &str, url: &str) -> (i32, String) {
    let out = lab.run(&[
        "exec",
        "deploy/sleep",
        "-n",
        from,
        "--",
        "curl",
        url,
        "-s",
        "--max-time",
        "10",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    ]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Expects, eventually, every `(from, to, outcome)` at once: `200`, or `000/56`
/// for curl's "000" and exit code 56 (connection reset by the sidecar).
fn expect_matrix(lab: &Lab, what: &str, cases: &[(&str, &str, &str)]) {
    eventually(what, || {
        let mut wrong = Vec::new();
        for (from, to, want) in cases {
            let (code, status) = probe(lab, from, &format!("http://httpbin.{to}:8000/ip"));
            let got = if code == 0 {
                status
            } else {
                format!("{status}/{code}")
            };
            if got != *want {
                wrong.push(format!("{from}→{to}: {got} (want {want})"));
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join(", "))
        }
    });
}

fn apply_in(lab: &Lab, namespace: &str, manifest: &str) {
    let out = lab.run_with(&["apply", "-n", namespace, "-f", "-"], Some(manifest));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn delete_in(lab: &Lab, namespace: &str, manifest: &str) {
    let out = lab.run_with(&["delete", "-n", namespace, "-f", "-"], Some(manifest));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA of the learner's own: its certificate (PEM) and the paths of the
/// certificate and key files handed to `meshlab up --ca-cert --ca-key`.
fn plug_in_ca(name: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "learner's own CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap().pem();
    let dir = std::env::temp_dir().join(format!("meshlab-{name}-ca"));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_file, key_file) = (dir.join("ca-cert.pem"), dir.join("ca-key.pem"));
    std::fs::write(&cert_file, &cert).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let path = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
    (cert, path(cert_file), path(key_file))
}

#[test]
fn mutual_tls_tasks_behave_as_documented() {
    if !docker_available() {
        return;
    }
    let lab = Lab::new("security");
    // The learner's own CA (Istio's plug-in CA) signs every workload certificate;
    // short-lived certificates rotate while the test runs (checked at the end).
    let (ca_pem, ca_cert, ca_key) = plug_in_ca(&lab.name);
    lab.up(&[
        "--no-bookinfo",
        "--workload-cert-ttl",
        "1m",
        "--ca-cert",
        &ca_cert,
        "--ca-key",
        &ca_key,
    ]);
    // `up` copied them into the lab; the key need not stay on disk.
    let _ = std::fs::remove_file(&ca_key);
    lab.apply(NAMESPACES);
    for namespace in ["foo", "bar", "legacy"] {
        apply_in(&lab, namespace, HTTPBIN);
        apply_in(&lab, namespace, SLEEP);
    }

    // §8.1/§9 PERMISSIVE (no policy): sidecars use auto mTLS, legacy plaintext; all
    // nine pairs 200 (legacy → legacy: Service port 8000 reaches the pod's 8080
    // without any sidecar, as kube-proxy would make it).
    let all = [
        ("foo", "foo", "200"),
        ("foo", "bar", "200"),
        ("bar", "foo", "200"),
        ("bar", "bar", "200"),
        ("legacy", "foo", "200"),
        ("legacy", "bar", "200"),
        ("foo", "legacy", "200"),
        ("bar", "legacy", "200"),
        ("legacy", "legacy", "200"),
    ];
    expect_matrix(&lab, "PERMISSIVE: every pair answers", &all);

    // §9 auto mTLS: the server's sidecar adds X-Forwarded-Client-Cert with both
    // identities; a server without a sidecar gets plaintext and no such header.
    let headers = |to: &str| {
        lab.ok(&[
            "exec",
            "deploy/sleep",
            "-n",
            "foo",
            "--",
            "curl",
            "-s",
            &format!("http://httpbin.{to}:8000/headers"),
        ])
    };
    let mtls = headers("foo");
    assert!(
        mtls.contains("By=spiffe://cluster.local/ns/foo/sa/httpbin;Hash=")
            && mtls.contains(";Subject=\\\"\\\";URI=spiffe://cluster.local/ns/foo/sa/sleep"),
        "{mtls}"
    );
    let hash = mtls
        .split("Hash=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_default();
    assert!(
        hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{mtls}"
    );
    let plain = headers("legacy");
    assert!(!plain.contains("X-Forwarded-Client-Cert"), "{plain}");

    // The certificates a sidecar holds, as `istioctl proxy-config secret` shows them.
    let table = lab.ok(&["proxy-config", "secret", "deploy/httpbin", "-n", "foo"]);
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.split_whitespace().collect::<Vec<_>>()
            == [
                "RESOURCE", "NAME", "TYPE", "STATUS", "VALID", "CERT", "SERIAL", "NUMBER", "NOT",
                "AFTER", "NOT", "BEFORE"
            ],
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("default ") && l.contains("Cert Chain") && l.contains("true")),
        "{table}"
    );
    assert!(table.lines().any(|l| l.starts_with("ROOTCA ")), "{table}");
    let json: serde_json::Value = serde_json::from_str(&lab.ok(&[
        "proxy-config",
        "secret",
        "deploy/httpbin",
        "-n",
        "foo",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(
        json[0]["spiffeId"], "spiffe://cluster.local/ns/foo/sa/httpbin",
        "{json}"
    );
    assert!(
        !json.to_string().contains("PRIVATE KEY"),
        "no key is ever shown"
    );
    let root = json
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["resourceName"] == "ROOTCA")
        .expect("a ROOTCA entry");
    let body = |pem: &str| pem.split_whitespace().collect::<String>();
    assert_eq!(
        body(root["certificateChain"].as_str().unwrap()),
        body(&ca_pem),
        "the mesh root is the plugged-in CA"
    );

    // A restarted control plane still shows what the proxy holds (proxies keep
    // their certificates across the restart).
    let killed = std::process::Command::new("docker")
        .args(["kill", &format!("{}-control", lab.name)])
        .output()
        .unwrap();
    assert!(killed.status.success(), "{killed:?}");
    lab.up(&["--no-bookinfo", "--workload-cert-ttl", "1m"]);
    let after = lab.ok(&["proxy-config", "secret", "deploy/httpbin", "-n", "foo"]);
    assert!(
        after
            .lines()
            .any(|l| l.starts_with("default ") && l.contains("Cert Chain") && l.contains("true")),
        "after a control plane restart:\n{after}"
    );

    // §8.2 namespace STRICT in foo: only legacy→foo fails, with curl's 000 / exit 56.
    lab.apply(STRICT_FOO);
    let strict_foo = [
        ("foo", "foo", "200"),
        ("foo", "bar", "200"),
        ("bar", "foo", "200"),
        ("bar", "bar", "200"),
        ("legacy", "foo", "000/56"),
        ("legacy", "bar", "200"),
    ];
    expect_matrix(&lab, "STRICT in foo", &strict_foo);
    // A workload without a sidecar cannot reach the app port directly either.
    let pods: serde_json::Value =
        serde_json::from_str(&lab.ok(&["get", "pods", "-n", "foo", "-o", "json"])).unwrap();
    let ip = pods
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["name"]
                .as_str()
                .unwrap_or_default()
                .starts_with("httpbin-")
        })
        .and_then(|p| p["ip"].as_str())
        .expect("httpbin.foo has an address")
        .to_owned();
    let (code, status) = probe(&lab, "legacy", &format!("http://{ip}:8080/ip"));
    assert_eq!((code, status.as_str()), (56, "000"));

    // §9 precedence: a workload DISABLE (with its DestinationRule) beats the
    // namespace STRICT.
    apply_in(&lab, "foo", OVERWRITE_EXAMPLE);
    expect_matrix(
        &lab,
        "workload DISABLE beats namespace STRICT",
        &[("legacy", "foo", "200"), ("bar", "foo", "200")],
    );
    delete_in(&lab, "foo", OVERWRITE_EXAMPLE);
    lab.delete(STRICT_FOO);

    // §8.3 mesh-wide STRICT: legacy reaches no sidecar; sidecars still reach
    // legacy (auto mTLS falls back to plaintext).
    lab.apply(STRICT_MESH);
    let strict_mesh = [
        ("foo", "foo", "200"),
        ("foo", "bar", "200"),
        ("bar", "foo", "200"),
        ("bar", "bar", "200"),
        ("legacy", "foo", "000/56"),
        ("legacy", "bar", "000/56"),
        ("foo", "legacy", "200"),
    ];
    expect_matrix(&lab, "mesh-wide STRICT", &strict_mesh);
    lab.delete(STRICT_MESH);

    // §9 workload STRICT in bar, then its port-level exception on port 8080.
    apply_in(&lab, "bar", STRICT_HTTPBIN_BAR);
    expect_matrix(
        &lab,
        "workload STRICT on httpbin.bar",
        &[
            ("legacy", "bar", "000/56"),
            ("foo", "bar", "200"),
            ("legacy", "foo", "200"),
        ],
    );
    apply_in(&lab, "bar", STRICT_HTTPBIN_BAR_PORT_DISABLE);
    expect_matrix(
        &lab,
        "port-level DISABLE on 8080",
        &[("legacy", "bar", "200"), ("foo", "bar", "200")],
    );

    // Rotation under traffic: certificates live a minute and are renewed at
    // half-life; mTLS requests go on answering 200 while httpbin's changes.
    let serial = || {
        let json: serde_json::Value = serde_json::from_str(&lab.ok(&[
            "proxy-config",
            "secret",
            "deploy/httpbin",
            "-n",
            "foo",
            "-o",
            "json",
        ]))
        .unwrap();
        json[0]["serialNumber"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let first = serial();
    let started = std::time::Instant::now();
    let mut requests = 0;
    loop {
        let (code, status) = probe(&lab, "foo", "http://httpbin.foo:8000/ip");
        assert_eq!((code, status.as_str()), (0, "200"), "request {requests}");
        requests += 1;
        if serial() != first {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(70),
            "httpbin.foo's certificate was not renewed within 70 s"
        );
    }
    for _ in 0..5 {
        let (code, status) = probe(&lab, "foo", "http://httpbin.foo:8000/ip");
        assert_eq!((code, status.as_str()), (0, "200"), "after the rotation");
    }
}
