//! The Sidecar resource on a real lab (`shared/spec/istio-tasks.md` §7): precedence
//! of root-namespace, namespace and workload Sidecars for `outboundTrafficPolicy`,
//! and `egress` hosts shrinking what a proxy knows — scoping is not a firewall, but
//! under REGISTRY_ONLY a host outside the scope is unknown and so refused.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/engine.rs"]
mod engine;

use self::cli::{Lab, eventually};
use self::engine::docker_available;

const HTTPBIN_IN_BOTH: &str = "\
apiVersion: v1
kind: Namespace
metadata:
  name: other
  labels:
    istio-injection: enabled
---
apiVersion: v1
kind: Service
metadata:
  name: httpbin
  namespace: default
spec:
  ports:
  - name: http
    port: 8000
    targetPort: 8080
  selector:
    app: httpbin
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: httpbin
  namespace: default
spec:
  selector:
    matchLabels:
      app: httpbin
  template:
    metadata:
      labels:
        app: httpbin
        version: v1
    spec:
      containers:
      - name: httpbin
        image: docker.io/mccutchen/go-httpbin:v2.15.0
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: httpbin
  namespace: other
spec:
  ports:
  - name: http
    port: 8000
    targetPort: 8080
  selector:
    app: httpbin
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: httpbin
  namespace: other
spec:
  selector:
    matchLabels:
      app: httpbin
  template:
    metadata:
      labels:
        app: httpbin
        version: v1
    spec:
      containers:
      - name: httpbin
        image: docker.io/mccutchen/go-httpbin:v2.15.0
        ports:
        - containerPort: 8080
";

const ROOT_REGISTRY_ONLY: &str = "\
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: istio-system
spec:
  outboundTrafficPolicy:
    mode: REGISTRY_ONLY
";

const NAMESPACE_ALLOW_ANY: &str = "\
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: default
spec:
  outboundTrafficPolicy:
    mode: ALLOW_ANY
";

const SLEEP_OWN_NAMESPACE_ONLY: &str = "\
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: sleep
  namespace: default
spec:
  workloadSelector:
    labels:
      app: sleep
  egress:
  - hosts:
    - ./*
    - istio-system/*
  outboundTrafficPolicy:
    mode: REGISTRY_ONLY
";

/// A Service whose target port nothing in the httpbin pod listens on.
const HTTPBIN_ALT: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: httpbin-alt
  namespace: other
spec:
  ports:
  - name: http
    port: 8000
    targetPort: 9090
  selector:
    app: httpbin
";

/// Istio's Sidecar `ingress`: the workload receives port 9090, and its proxy hands
/// that traffic to the app on loopback port 8080.
const HTTPBIN_INGRESS: &str = "\
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: httpbin-ingress
  namespace: other
spec:
  workloadSelector:
    labels:
      app: httpbin
  ingress:
  - port:
      number: 9090
      protocol: HTTP
      name: http-alt
    defaultEndpoint: 127.0.0.1:8080
";

/// The HTTP status sleep gets for `url`.
fn status(lab: &Lab, url: &str) -> String {
    lab.curl_from_sleep(&["-o", "/dev/null", "-w", "%{http_code}", url])
        .1
}

fn expect_status(lab: &Lab, url: &str, want: &str, what: &str) {
    eventually(what, || {
        let got = status(lab, url);
        if got == want {
            Ok(())
        } else {
            Err(format!("{url} answered {got}, want {want}"))
        }
    });
}

/// How many clusters the sleep sidecar knows.
fn clusters(lab: &Lab) -> usize {
    lab.ok(&["proxy-config", "clusters", "deploy/sleep"])
        .lines()
        .count()
        .saturating_sub(1)
}

#[test]
fn sidecar_resources_scope_the_proxy_and_override_the_policy() {
    if !docker_available() {
        return;
    }
    let lab = Lab::new("scoping");
    lab.up(&["--no-bookinfo"]);
    lab.apply(HTTPBIN_IN_BOTH);
    expect_status(
        &lab,
        "http://httpbin.other:8000/ip",
        "200",
        "httpbin in the other namespace answers",
    );
    expect_status(
        &lab,
        "http://httpbin:8000/ip",
        "200",
        "httpbin in its own namespace answers",
    );
    expect_status(
        &lab,
        "http://httpbin.org/ip",
        "200",
        "the simulated internet passes (ALLOW_ANY)",
    );
    let everything = clusters(&lab);

    // Sidecar `ingress`: port 9090 reaches nothing until a Sidecar maps it to the
    // app's 8080 on loopback.
    lab.apply(HTTPBIN_ALT);
    expect_status(
        &lab,
        "http://httpbin-alt.other:8000/ip",
        "503",
        "nothing listens on the target port",
    );
    lab.apply(HTTPBIN_INGRESS);
    expect_status(
        &lab,
        "http://httpbin-alt.other:8000/ip",
        "200",
        "the Sidecar's ingress listener forwards 9090 to 127.0.0.1:8080",
    );
    lab.delete(HTTPBIN_INGRESS);
    lab.delete(HTTPBIN_ALT);

    // A root-namespace Sidecar is the mesh-wide default: unknown hosts are refused.
    lab.apply(ROOT_REGISTRY_ONLY);
    expect_status(
        &lab,
        "http://httpbin.org/ip",
        "502",
        "the root Sidecar's REGISTRY_ONLY applies",
    );
    expect_status(
        &lab,
        "http://httpbin.other:8000/ip",
        "200",
        "registered services still answer",
    );

    // A namespace Sidecar overrides the root one.
    lab.apply(NAMESPACE_ALLOW_ANY);
    expect_status(
        &lab,
        "http://httpbin.org/ip",
        "200",
        "the namespace Sidecar's ALLOW_ANY wins",
    );

    // A workload Sidecar overrides the namespace one: its egress scope leaves the
    // other namespace out, so under its REGISTRY_ONLY that host is unknown.
    lab.apply(SLEEP_OWN_NAMESPACE_ONLY);
    expect_status(
        &lab,
        "http://httpbin.other:8000/ip",
        "502",
        "out of scope under REGISTRY_ONLY is refused",
    );
    expect_status(
        &lab,
        "http://httpbin:8000/ip",
        "200",
        "the own namespace still answers",
    );
    let scoped = clusters(&lab);
    assert!(
        scoped < everything,
        "the scoped proxy knows fewer clusters: {scoped} vs {everything}"
    );
}
