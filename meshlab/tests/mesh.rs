//! The data plane against Istio's task manifests, on a real lab: sidecars capture
//! the apps' traffic, the ingress gateway is on the host, and the observations are
//! those the Istio tasks describe (`shared/spec/istio-tasks.md`).
//!
//! Like Istio's own doc tests, each check retries for a few seconds: configuration
//! is eventually consistent. Without Docker the tests print "skipped: no Docker"
//! unless `MESHLAB_REQUIRE_DOCKER` is set.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/engine.rs"]
mod engine;

use std::time::{Duration, Instant};

use self::cli::{Lab, eventually};
use self::engine::docker_available;
const BOOKINFO_GATEWAY: &str = include_str!("../../control/tests/data/bookinfo-gateway.yaml");
const DESTINATION_RULE_ALL: &str =
    include_str!("../../control/tests/data/destination-rule-all.yaml");
const ALL_V1: &str = include_str!("../../control/tests/data/virtual-service-all-v1.yaml");
const REVIEWS_TEST_V2: &str =
    include_str!("../../control/tests/data/virtual-service-reviews-test-v2.yaml");

const RATINGS_TEST_ABORT: &str =
    include_str!("../../control/tests/data/virtual-service-ratings-test-abort.yaml");

const HTTPBIN_EXT: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: httpbin-ext
spec:
  hosts:
  - httpbin.org
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: DNS
  location: MESH_EXTERNAL
";

const STAR: &str = "glyphicon glyphicon-star";

#[test]
fn istios_traffic_tasks_behave_as_documented() {
    if !docker_available() {
        return;
    }
    let lab = Lab::new("traffic");
    lab.up(&[]);

    // Every proxy is in sync.
    eventually("every proxy SYNCED", || {
        let status = lab.ok(&["proxy-status"]);
        let proxies = status.lines().skip(1).count();
        let synced = status
            .lines()
            .skip(1)
            .filter(|l| l.matches("SYNCED").count() == 4)
            .count();
        if proxies == 8 && synced == 8 {
            Ok(())
        } else {
            Err(status)
        }
    });

    // bookinfo-gateway.yaml: /productpage through the gateway, anything else 404.
    lab.apply(BOOKINFO_GATEWAY);
    lab.apply(DESTINATION_RULE_ALL);
    eventually("the gateway serves /productpage", || {
        let (code, page) = lab.gateway("/productpage", &[]);
        if code == 0 && page.contains("<title>Simple Bookstore App</title>") {
            Ok(())
        } else {
            Err(format!("exit {code}: {page}"))
        }
    });
    let (_, status) = lab.gateway("/", &["-o", "/dev/null", "-w", "%{http_code}"]);
    assert_eq!(status, "404");

    // What the proxies were told, and how their traffic is captured.
    eventually("subsets become clusters", || {
        let clusters = lab.ok(&["proxy-config", "clusters", "deploy/productpage-v1"]);
        let v2 = clusters.lines().any(|l| {
            l.split_whitespace()
                .take(3)
                .eq(["reviews.default.svc.cluster.local", "9080", "v2"])
        });
        if v2 { Ok(()) } else { Err(clusters) }
    });
    let rules = lab.ok(&["proxy-config", "iptables", "deploy/productpage-v1"]);
    assert!(rules.contains("meshlab: outbound tcp -> 15001"), "{rules}");
    assert!(rules.contains("meshlab: inbound tcp -> 15006"), "{rules}");

    // The app cannot bypass its sidecar: a raw connection to productpage's pod IP
    // passes sleep's sidecar (outbound) and productpage's (inbound).
    let pods: serde_json::Value =
        serde_json::from_str(&lab.ok(&["get", "pods", "-o", "json"])).unwrap();
    let ip = pods
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["name"]
                .as_str()
                .unwrap_or_default()
                .starts_with("productpage-v1-")
        })
        .and_then(|p| p["ip"].as_str())
        .expect("productpage has an address")
        .to_owned();
    let marker = format!("raw-{}", std::process::id());
    let (code, _) = lab.curl_from_sleep(&[
        "-o",
        "/dev/null",
        "-H",
        &format!("x-request-id: {marker}"),
        &format!("http://{ip}:9080/productpage"),
    ]);
    assert_eq!(code, 0);
    for (workload, direction) in [
        ("deploy/sleep", "outbound"),
        ("deploy/productpage-v1", "inbound"),
    ] {
        eventually(
            &format!("{workload}'s sidecar logs the raw connection ({direction})"),
            || {
                let log = lab.ok(&["logs", workload, "-c", "istio-proxy"]);
                if log.contains(&marker) {
                    Ok(())
                } else {
                    Err(format!("no {marker} in:\n{log}"))
                }
            },
        );
    }

    // Request routing: all v1 → never stars; jason → v2, stars.
    lab.apply(ALL_V1);
    lab.apply(REVIEWS_TEST_V2);
    eventually("anonymous pages show no stars", || {
        let starred = (0..10)
            .filter(|_| lab.gateway("/productpage", &[]).1.contains(STAR))
            .count();
        if starred == 0 {
            Ok(())
        } else {
            Err(format!("{starred} of 10 pages had stars"))
        }
    });
    let jar = std::env::temp_dir().join(format!("meshlab-jar-{}", std::process::id()));
    let jar = jar.to_string_lossy().into_owned();
    let (code, _) = lab.gateway(
        "/login",
        &[
            "-c",
            &jar,
            "-o",
            "/dev/null",
            "-d",
            "username=jason&passwd=password",
        ],
    );
    assert_eq!(code, 0);
    let analysis = lab.ok(&["analyze"]);
    assert!(
        analysis.contains("No validation issues found"),
        "{analysis}"
    );
    // A file analysed before it is applied (istioctl analyze FILE): a subset no
    // DestinationRule defines, reported at its line, with istioctl's exit code.
    let file = std::env::temp_dir().join(format!("meshlab-v9-{}.yaml", std::process::id()));
    std::fs::write(
        &file,
        REVIEWS_TEST_V2.replacen("subset: v2", "subset: v9", 1),
    )
    .unwrap();
    let out = lab.run(&["analyze", &file.to_string_lossy()]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(79), "{report}");
    assert!(
        report.contains("Error [IST0101] (VirtualService default/reviews ")
            && report.contains("reviews+v9"),
        "{report}"
    );
    let _ = std::fs::remove_file(&file);
    assert!(lab.ok(&["analyze"]).contains("No validation issues found"));
    eventually("jason sees stars", || {
        let page = lab.gateway("/productpage", &["-b", &jar]).1;
        if page.contains(STAR) && page.contains("text-black-500") {
            Ok(())
        } else {
            Err("no black stars".to_owned())
        }
    });

    // Fault injection (abort): jason's ratings fail, others are untouched.
    lab.apply(RATINGS_TEST_ABORT);
    eventually("jason sees the ratings error", || {
        let page = lab.gateway("/productpage", &["-b", &jar]).1;
        if page.contains("Ratings service is currently unavailable") {
            Ok(())
        } else {
            Err("no ratings error".to_owned())
        }
    });
    assert!(
        !lab.gateway("/productpage", &[])
            .1
            .contains("Ratings service is currently unavailable")
    );
    let _ = std::fs::remove_file(&jar);
}

#[test]
fn egress_follows_the_outbound_traffic_policy() {
    if !docker_available() {
        return;
    }
    let lab = Lab::new("egress");
    lab.up(&[]);
    // ALLOW_ANY: the simulated internet answers.
    eventually("ALLOW_ANY passes through", || {
        let (code, status) = lab.curl_from_sleep(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://httpbin.org/headers",
        ]);
        if code == 0 && status == "200" {
            Ok(())
        } else {
            Err(format!("exit {code}, status {status}"))
        }
    });
    let (code, _) = lab.curl_from_sleep(&["-sSI", "https://www.google.com"]);
    assert_eq!(code, 0);

    // REGISTRY_ONLY: plain HTTP gets 502 from the sidecar, HTTPS cannot handshake.
    lab.ok(&[
        "mesh-config",
        "set",
        "outboundTrafficPolicy.mode=REGISTRY_ONLY",
    ]);
    eventually("REGISTRY_ONLY answers 502", || {
        let (_, status) = lab.curl_from_sleep(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://httpbin.org/headers",
        ]);
        if status == "502" {
            Ok(())
        } else {
            Err(format!("status {status}"))
        }
    });
    eventually("REGISTRY_ONLY closes TLS (curl exit 35)", || {
        let (code, _) = lab.curl_from_sleep(&["-I", "https://www.google.com"]);
        if code == 35 {
            Ok(())
        } else {
            Err(format!("exit {code}"))
        }
    });

    // A ServiceEntry opens httpbin.org again, and the access log names its cluster.
    lab.apply(HTTPBIN_EXT);
    eventually("the ServiceEntry opens httpbin.org", || {
        let (_, status) = lab.curl_from_sleep(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://httpbin.org/headers",
        ]);
        if status == "200" {
            Ok(())
        } else {
            Err(format!("status {status}"))
        }
    });
    let log = lab.ok(&["logs", "deploy/sleep", "-c", "istio-proxy"]);
    assert!(
        log.contains("outbound|80||httpbin.org"),
        "access log:\n{log}"
    );
    lab.delete(HTTPBIN_EXT);
}

const REVIEWS_50_V3: &str =
    include_str!("../../control/tests/data/virtual-service-reviews-50-v3.yaml");

const RATINGS_TEST_DELAY: &str =
    include_str!("../../control/tests/data/virtual-service-ratings-test-delay.yaml");

const REVIEWS_V2_TIMEOUT: &str = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v2
    timeout: 0.5s
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - fault:
      delay:
        percentage:
          value: 100
        fixedDelay: 2s
    route:
    - destination:
        host: ratings
        subset: v1
";

const HTTPBIN_EXT_TIMEOUT: &str = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin-ext
spec:
  hosts:
  - httpbin.org
  http:
  - timeout: 3s
    route:
    - destination:
        host: httpbin.org
      weight: 100
";

/// How long one gateway page takes and what it says.
fn timed(lab: &Lab, extra: &[&str]) -> (Duration, String) {
    let started = Instant::now();
    let page = lab.gateway("/productpage", extra).1;
    (started.elapsed(), page)
}

#[test]
fn traffic_shifting_fault_delays_and_timeouts_match_the_tasks() {
    if !docker_available() {
        return;
    }
    let lab = Lab::new("timing");
    lab.up(&[]);
    lab.apply(BOOKINFO_GATEWAY);
    lab.apply(DESTINATION_RULE_ALL);
    lab.apply(ALL_V1);

    // Traffic shifting: 50/50 v1/v3 → 40 < red pages < 60 out of 100 (the task's test).
    lab.apply(REVIEWS_50_V3);
    eventually("the 50/50 split is in force", || {
        let page = (0..10)
            .map(|_| lab.gateway("/productpage", &[]).1)
            .find(|p| p.contains("text-red-500"));
        page.map(|_| ())
            .ok_or_else(|| "no red stars in 10 pages".to_owned())
    });
    let red = (0..100)
        .filter(|_| lab.gateway("/productpage", &[]).1.contains("text-red-500"))
        .count();
    assert!((41..60).contains(&red), "{red} of 100 pages from v3");

    // Fault injection, delay: jason → reviews v2, ratings delayed 7 s → the page comes
    // after about 6 s (2 × productpage's 3 s) with reviews unavailable.
    lab.apply(REVIEWS_TEST_V2);
    lab.apply(RATINGS_TEST_DELAY);
    let jar = std::env::temp_dir().join(format!("meshlab-jar-timing-{}", std::process::id()));
    let jar = jar.to_string_lossy().into_owned();
    lab.gateway(
        "/login",
        &[
            "-c",
            &jar,
            "-o",
            "/dev/null",
            "-d",
            "username=jason&passwd=password",
        ],
    );
    eventually("jason's page is delayed into the reviews error", || {
        let (took, page) = timed(&lab, &["-b", &jar]);
        let sorry =
            page.contains("Sorry, product reviews are currently unavailable for this book.");
        if sorry && (Duration::from_millis(5_500)..Duration::from_millis(8_500)).contains(&took) {
            Ok(())
        } else {
            Err(format!("took {took:?}, reviews error shown: {sorry}"))
        }
    });
    let _ = std::fs::remove_file(&jar);

    // Request timeouts: ratings delayed 2 s, reviews (v2) limited to 0.5 s → the page
    // in about 1 s (productpage tries twice) with reviews unavailable.
    lab.apply(REVIEWS_V2_TIMEOUT);
    eventually("the 0.5 s timeout cuts reviews off", || {
        let (took, page) = timed(&lab, &[]);
        let sorry =
            page.contains("Sorry, product reviews are currently unavailable for this book.");
        if sorry && (Duration::from_millis(900)..Duration::from_millis(2_500)).contains(&took) {
            Ok(())
        } else {
            Err(format!("took {took:?}, reviews error shown: {sorry}"))
        }
    });

    // A timeout on an external service: /delay/5 answers 504 after about 3 s.
    lab.apply(HTTPBIN_EXT);
    lab.apply(HTTPBIN_EXT_TIMEOUT);
    eventually("the 3 s timeout applies to httpbin.org", || {
        let started = Instant::now();
        let (_, status) = lab.curl_from_sleep(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://httpbin.org/delay/5",
        ]);
        let took = started.elapsed();
        if status == "504"
            && (Duration::from_millis(2_900)..Duration::from_millis(4_900)).contains(&took)
        {
            Ok(())
        } else {
            Err(format!("status {status} after {took:?}"))
        }
    });
}

/// httpbin as Istio's `samples/httpbin/httpbin.yaml` deploys it: Service port 8000 in
/// front of go-httpbin on 8080.
const HTTPBIN: &str = "\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: httpbin
---
apiVersion: v1
kind: Service
metadata:
  name: httpbin
  labels:
    app: httpbin
    service: httpbin
spec:
  selector:
    app: httpbin
  ports:
  - name: http
    port: 8000
    targetPort: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: httpbin
spec:
  replicas: 1
  selector:
    matchLabels:
      app: httpbin
      version: v1
  template:
    metadata:
      labels:
        app: httpbin
        version: v1
    spec:
      serviceAccountName: httpbin
      containers:
      - name: httpbin
        image: docker.io/mccutchen/go-httpbin:v2.15.0
        imagePullPolicy: IfNotPresent
        ports:
        - containerPort: 8080
";

/// The task's client, shaped as `samples/httpbin/sample-client/fortio-deploy.yaml`.
const FORTIO: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: fortio
  labels:
    app: fortio
    service: fortio
spec:
  selector:
    app: fortio
  ports:
  - name: http
    port: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: fortio-deploy
spec:
  replicas: 1
  selector:
    matchLabels:
      app: fortio
  template:
    metadata:
      labels:
        app: fortio
      annotations:
        proxy.istio.io/config: |-
          proxyStatsMatcher:
            inclusionPrefixes:
            - \"cluster.outbound\"
            - \"cluster_manager\"
            - \"listener_manager\"
            - \"server\"
            - \"cluster.xds-grpc\"
    spec:
      containers:
      - name: fortio
        image: fortio/fortio:latest_release
        imagePullPolicy: Always
        ports:
        - name: http-fortio
          containerPort: 8080
        - name: grpc-ping
          containerPort: 8079
";

/// The circuit-breaking task's DestinationRule: one connection, one pending request.
const HTTPBIN_CIRCUIT_BREAKER: &str = "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin
spec:
  host: httpbin
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 1
      http:
        http1MaxPendingRequests: 1
        maxRequestsPerConnection: 1
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 3m
      maxEjectionPercent: 100
";

#[test]
fn circuit_breaking_trips_fortios_load_as_the_task_shows() {
    if !docker_available() {
        return;
    }
    let lab = Lab::new("circuit");
    lab.up(&[]);
    lab.apply(HTTPBIN);
    lab.apply(HTTPBIN_CIRCUIT_BREAKER);
    lab.apply(FORTIO);
    eventually("httpbin and fortio are 2/2 Running", || {
        let pods = lab.ok(&["get", "pods"]);
        let running = |name: &str| {
            pods.lines().any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.first().is_some_and(|n| n.starts_with(name))
                    && cols.get(1) == Some(&"2/2")
                    && cols.get(2) == Some(&"Running")
            })
        };
        if running("fortio-deploy") && running("httpbin") {
            Ok(())
        } else {
            Err(pods)
        }
    });
    let fortio = |args: &[&str]| {
        let mut all = vec!["exec", "deploy/fortio-deploy", "-c", "fortio", "--"];
        all.extend_from_slice(args);
        let out = lab.run(&all);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };

    // One call goes through: the first line is the status line.
    eventually("fortio curl gets 200 from httpbin", || {
        let out = fortio(&[
            "/usr/bin/fortio",
            "curl",
            "-quiet",
            "http://httpbin:8000/get",
        ]);
        if out.lines().next() == Some("HTTP/1.1 200 OK") {
            Ok(())
        } else {
            Err(out)
        }
    });

    // Two, then three connections against one allowed connection and one pending
    // request: some calls overflow the breaker and the sidecar answers 503. The task
    // checks only that both codes appear, as the ratios vary from run to run.
    for (connections, calls) in [("2", "20"), ("3", "30")] {
        eventually("fortio load trips the circuit breaker", || {
            let out = fortio(&[
                "/usr/bin/fortio",
                "load",
                "-c",
                connections,
                "-qps",
                "0",
                "-n",
                calls,
                "-loglevel",
                "Warning",
                "http://httpbin:8000/get",
            ]);
            if out.contains("Code 200 :") && out.contains("Code 503 :") {
                Ok(())
            } else {
                Err(out)
            }
        });
    }

    let stats = lab.ok(&[
        "exec",
        "deploy/fortio-deploy",
        "-c",
        "istio-proxy",
        "--",
        "curl",
        "-s",
        "localhost:15000/stats",
    ]);
    assert!(
        stats.lines().any(|l| l.starts_with(
            "cluster.outbound|8000||httpbin.default.svc.cluster.local.upstream_rq_pending_overflow:"
        )),
        "{stats}"
    );

    // httpbin's sidecar knows who called (metadata exchange) and reports it.
    let metrics = lab.ok(&[
        "exec",
        "deploy/httpbin",
        "-c",
        "istio-proxy",
        "--",
        "curl",
        "-s",
        "localhost:15000/stats/prometheus",
    ]);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("istio_requests_total{")
                && l.contains("reporter=\"destination\"")
                && l.contains("source_workload=\"fortio-deploy\"")
                && l.contains("source_app=\"fortio\"")
                && l.contains("destination_app=\"httpbin\"")),
        "{metrics}"
    );
}
