//! The rest of Istio's traffic tasks on a real lab — mirroring and egress TLS
//! origination — and what happens to the data plane while the control plane is
//! away: proxies keep serving their last good configuration, and re-sync when it
//! returns.
//!
//! Manifests are those of Istio's "Mirroring" and "Egress TLS Origination" tasks.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/engine.rs"]
mod engine;

use std::time::Duration;

use meshlab_control_runtime::labels;

use self::cli::{Lab, eventually};
use self::engine::{block_on, docker, docker_available};

const SLEEP: &str = include_str!("../../labs/samples/sleep.yaml");

/// The mirroring task's two httpbin versions (the Python image, on port 80) and
/// their service.
const HTTPBIN_V1_V2: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: httpbin
  labels:
    app: httpbin
spec:
  ports:
  - name: http
    port: 8000
    targetPort: 80
  selector:
    app: httpbin
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: httpbin-v1
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
      containers:
      - image: docker.io/kennethreitz/httpbin
        imagePullPolicy: IfNotPresent
        name: httpbin
        command: [\"gunicorn\", \"--access-logfile\", \"-\", \"-b\", \"0.0.0.0:80\", \"httpbin:app\"]
        ports:
        - containerPort: 80
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: httpbin-v2
spec:
  replicas: 1
  selector:
    matchLabels:
      app: httpbin
      version: v2
  template:
    metadata:
      labels:
        app: httpbin
        version: v2
    spec:
      containers:
      - image: docker.io/kennethreitz/httpbin
        imagePullPolicy: IfNotPresent
        name: httpbin
        command: [\"gunicorn\", \"--access-logfile\", \"-\", \"-b\", \"0.0.0.0:80\", \"httpbin:app\"]
        ports:
        - containerPort: 80
";

const MIRROR_TO_V2: &str = "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin
spec:
  host: httpbin
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
spec:
  hosts:
  - httpbin
  http:
  - route:
    - destination:
        host: httpbin
        subset: v1
      weight: 100
    mirror:
      host: httpbin
      subset: v2
    mirrorPercentage:
      value: 100.0
";

const CNN_TLS_ORIGINATION: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: edition-cnn-com
spec:
  hosts:
  - edition.cnn.com
  ports:
  - number: 80
    name: http-port
    protocol: HTTP
    targetPort: 443
  - number: 443
    name: https-port
    protocol: HTTPS
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: edition-cnn-com
spec:
  host: edition.cnn.com
  trafficPolicy:
    portLevelSettings:
    - port:
        number: 80
      tls:
        mode: SIMPLE
";

const ABORT_HTTPBIN: &str = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
spec:
  hosts:
  - httpbin
  http:
  - fault:
      abort:
        httpStatus: 418
        percentage:
          value: 100
    route:
    - destination:
        host: httpbin
        subset: v1
";

/// `curl -s -o /dev/null -w %{http_code}` from sleep, with a request id to find
/// the request in the access logs.
fn status_from_sleep(lab: &Lab, url: &str, request_id: &str) -> String {
    let header = format!("x-request-id: {request_id}");
    let (_, code) =
        lab.curl_from_sleep(&["-o", "/dev/null", "-w", "%{http_code}", "-H", &header, url]);
    code
}

/// The access log of a deployment's sidecar.
fn proxy_log(lab: &Lab, deployment: &str) -> String {
    lab.ok(&["logs", &format!("deploy/{deployment}"), "-c", "istio-proxy"])
}

/// Stops (`running == false`) or starts the lab's control container.
fn control_plane(lab: &Lab, running: bool) {
    let name = lab.name.clone();
    block_on(async move {
        let docker = docker().await.expect("Docker");
        let control = docker
            .list(&name, &[(labels::ROLE, labels::ROLE_CONTROL)])
            .await
            .expect("list the control container")
            .pop()
            .expect("the lab has a control container");
        if running {
            docker
                .start(&control.id)
                .await
                .expect("start the control plane");
        } else {
            docker
                .stop(&control.id, Duration::from_secs(5))
                .await
                .expect("stop the control plane");
        }
    });
}

#[test]
fn mirroring_tls_origination_and_a_control_plane_outage() {
    if !docker_available() {
        return;
    }
    let lab = Lab::new("resilience");
    lab.up(&["--no-bookinfo"]);
    lab.apply(SLEEP);
    lab.apply(HTTPBIN_V1_V2);
    eventually("httpbin answers sleep", || {
        let code = status_from_sleep(&lab, "http://httpbin:8000/headers", "warm-up");
        if code == "200" { Ok(()) } else { Err(code) }
    });

    // Mirroring: every request served by v1 is also sent, fire-and-forget, to v2,
    // whose sidecar logs it with the authority Envoy gives shadows.
    lab.apply(MIRROR_TO_V2);
    let mut attempt = 0;
    eventually("v2 receives a mirrored copy of a request v1 serves", || {
        attempt += 1;
        let id = format!("mirror-{}-{attempt}", std::process::id());
        let code = status_from_sleep(&lab, "http://httpbin:8000/headers", &id);
        let (v1, v2) = (proxy_log(&lab, "httpbin-v1"), proxy_log(&lab, "httpbin-v2"));
        let mirrored = v2.lines().find(|l| l.contains(&id));
        match mirrored {
            Some(line) if code == "200" && v1.contains(&id) && line.contains("httpbin-shadow") => {
                Ok(())
            }
            _ => Err(format!("status {code}\nv1:\n{v1}\nv2:\n{v2}")),
        }
    });

    // Egress TLS origination: sleep asks for http://edition.cnn.com; its sidecar
    // sends HTTPS, so no redirect and the simulated site sees TLS.
    lab.apply(CNN_TLS_ORIGINATION);
    eventually("http://edition.cnn.com leaves the pod as HTTPS", || {
        let (exit, headers) = lab.curl_from_sleep(&[
            "-S",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "http://edition.cnn.com/politics",
        ]);
        // The simulated internet logs each request (on stderr, as tracing does).
        let logs = lab.run(&["logs", "internet"]);
        let internet = String::from_utf8_lossy(&logs.stderr).into_owned()
            + &String::from_utf8_lossy(&logs.stdout);
        let https = internet.lines().any(|l| {
            l.contains("edition.cnn.com") && l.contains("/politics") && l.contains("https")
        });
        if exit == 0 && headers.starts_with("HTTP/1.1 200") && https {
            Ok(())
        } else {
            Err(format!("exit {exit}\n{headers}\ninternet:\n{internet}"))
        }
    });

    // The control plane goes away: the proxies keep their last good configuration
    // (the mirror still works), and nothing is lost when it returns.
    control_plane(&lab, false);
    let id = format!("outage-{}", std::process::id());
    assert_eq!(
        status_from_sleep(&lab, "http://httpbin:8000/headers", &id),
        "200"
    );
    assert!(
        proxy_log(&lab, "httpbin-v2").contains(&id),
        "the mirror survives the control plane's absence"
    );
    let (exit, headers) = lab.curl_from_sleep(&[
        "-o",
        "/dev/null",
        "-D",
        "-",
        "http://edition.cnn.com/politics",
    ]);
    assert!(
        exit == 0 && headers.starts_with("HTTP/1.1 200"),
        "exit {exit}: {headers}"
    );

    control_plane(&lab, true);
    eventually("every proxy re-syncs", || {
        let status = lab.run(&["proxy-status"]);
        let table = String::from_utf8_lossy(&status.stdout).into_owned();
        let rows: Vec<&str> = table.lines().skip(1).collect();
        let synced = rows.iter().all(|l| l.matches("SYNCED").count() == 4);
        if status.status.success() && rows.len() >= 4 && synced {
            Ok(())
        } else {
            Err(table)
        }
    });
    // Configuration applied after the outage reaches the proxies.
    lab.apply(ABORT_HTTPBIN);
    eventually("a change after the outage takes effect", || {
        let code = status_from_sleep(&lab, "http://httpbin:8000/headers", "after-outage");
        if code == "418" { Ok(()) } else { Err(code) }
    });
}
