//! `meshlab up` and the kubectl-style commands against the real Docker engine, run as
//! a learner runs them: the binary, a lab of its own per test, its output and exit
//! codes.
//!
//! Without a reachable engine every test prints "skipped: no Docker" and passes,
//! unless `MESHLAB_REQUIRE_DOCKER` is set (as `.ci/run` does): then it fails. Each
//! lab is removed with `down --purge` when its test ends, pass or fail.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/engine.rs"]
mod engine;

use std::net::TcpListener;
use std::process::Command;

use self::cli::{Lab, MESHLAB, pause};
use self::engine::{docker_available, free_port, lab_exists};

const VIRTUAL_SERVICE: &str = "\
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
        subset: v1
";

#[test]
fn bookinfo_comes_up_serves_balances_and_survives_a_control_plane_restart() {
    if !docker_available() {
        return;
    }
    let lab = Lab::new("bookinfo");
    let up = lab.up(&[]);
    assert!(up.contains("✔ 8 pods ready"), "{up}");

    let pods = lab.ok(&["get", "pods", "-A"]);
    let header = pods.lines().next().unwrap();
    assert!(
        header.starts_with("NAMESPACE") && header.contains("READY") && header.contains("RESTARTS"),
        "{pods}"
    );
    for name in [
        "details-v1-",
        "productpage-v1-",
        "ratings-v1-",
        "reviews-v1-",
        "reviews-v2-",
        "reviews-v3-",
        "sleep-",
    ] {
        let line = pods
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no {name} pod:\n{pods}"));
        assert!(
            line.contains("2/2") && line.contains("Running"),
            "a sidecar beside every app: {line}"
        );
    }

    let (code, page) = lab.curl_from_sleep(&["http://productpage:9080/productpage"]);
    assert!(
        page.contains("<title>Simple Bookstore App</title>"),
        "curl exited with {code}: {page}"
    );

    // Without a mesh, every reviews endpoint is used: pages show stars and none, and
    // name all three pods (each is picked with p = 1/3; 60 pages miss one with
    // p < 1e-10).
    let (mut starred, mut plain) = (0, 0);
    let mut versions = std::collections::BTreeSet::new();
    for _ in 0..60 {
        if starred > 0 && plain > 0 && versions.len() == 3 {
            break;
        }
        let page = lab
            .curl_from_sleep(&["http://productpage.default.svc.cluster.local:9080/productpage"])
            .1;
        if page.contains("glyphicon glyphicon-star") {
            starred += 1;
        } else {
            plain += 1;
        }
        for version in ["reviews-v1-", "reviews-v2-", "reviews-v3-"] {
            if page.contains(version) {
                versions.insert(version);
            }
        }
    }
    if !(starred > 0 && plain > 0 && versions.len() == 3) {
        let endpoints = lab.run(&["proxy-config", "endpoints", "deploy/productpage-v1"]);
        let pods = lab.run(&["get", "pods", "-o", "wide"]);
        let client = lab.run(&["logs", "deploy/productpage-v1", "-c", "istio-proxy"]);
        let server = lab.run(&["logs", "deploy/reviews-v1", "-c", "istio-proxy"]);
        panic!(
            "{starred} starred, {plain} without stars; reviews versions seen: {versions:?}\n\
             {}\n{}\nproductpage's sidecar:\n{}\nreviews-v1's sidecar:\n{}",
            String::from_utf8_lossy(&endpoints.stdout),
            String::from_utf8_lossy(&pods.stdout),
            String::from_utf8_lossy(&client.stdout),
            String::from_utf8_lossy(&server.stdout),
        );
    }

    // Idempotent.
    let again = lab.up(&[]);
    assert!(again.contains("nothing changed"), "{again}");

    // apply / get / delete, kubectl's words.
    let applied = String::from_utf8_lossy(
        &lab.run_with(&["apply", "-f", "-"], Some(VIRTUAL_SERVICE))
            .stdout,
    )
    .into_owned();
    assert_eq!(
        applied.trim(),
        "virtualservice.networking.istio.io/reviews created"
    );
    let unchanged = lab.run_with(&["apply", "-f", "-"], Some(VIRTUAL_SERVICE));
    assert_eq!(
        String::from_utf8_lossy(&unchanged.stdout).trim(),
        "virtualservice.networking.istio.io/reviews unchanged"
    );
    let listed = lab.ok(&["get", "vs"]);
    assert!(
        listed.starts_with("NAME") && listed.contains("reviews"),
        "{listed}"
    );

    // A typo'd field: the line and the field path, nothing applied.
    let typo = VIRTUAL_SERVICE
        .replace("subset: v1", "subsett: v1")
        .replace("name: reviews", "name: typo");
    let rejected = lab.run_with(&["apply", "-f", "-"], Some(&typo));
    assert!(!rejected.status.success());
    let stderr = String::from_utf8_lossy(&rejected.stderr);
    assert!(
        stderr.contains("-:12:9:") && stderr.contains("spec.http[0].route[0].destination.subsett"),
        "{stderr}"
    );
    assert!(
        !lab.ok(&["get", "vs"]).contains("typo"),
        "a rejected apply changes nothing"
    );

    // Killing the control plane loses nothing; `up` brings it back.
    let killed = Command::new("docker")
        .args(["kill", &format!("{}-control", lab.name)])
        .output()
        .unwrap();
    assert!(
        killed.status.success(),
        "{}",
        String::from_utf8_lossy(&killed.stderr)
    );
    lab.up(&[]);
    assert!(lab.ok(&["get", "vs", "reviews"]).contains("reviews"));

    let deleted = lab.ok(&["delete", "vs", "reviews"]);
    assert_eq!(
        deleted.trim(),
        "virtualservice.networking.istio.io \"reviews\" deleted"
    );
    let missing = lab.run(&["delete", "vs", "reviews"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains(
        "Error from server (NotFound): virtualservices.networking.istio.io \"reviews\" not found"
    ));

    lab.ok(&["down", "--purge"]);
    assert!(
        !lab_exists(&lab.name),
        "down --purge leaves nothing with the lab's label"
    );
}

#[test]
fn two_labs_run_side_by_side_and_images_meshlab_cannot_provide_fail_clearly() {
    if !docker_available() {
        return;
    }
    let a = Lab::new("side-a");
    let b = Lab::new("side-b");
    a.up(&["--no-bookinfo"]);
    b.up(&["--no-bookinfo"]);
    for lab in [&a, &b] {
        let pods = lab.ok(&["get", "pods"]);
        assert_eq!(
            pods.lines().filter(|l| l.starts_with("sleep-")).count(),
            1,
            "{pods}"
        );
        let ip = lab.ok(&[
            "exec",
            "deploy/sleep",
            "--",
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://httpbin.org/ip",
        ]);
        assert_eq!(
            ip, "200",
            "the simulated internet answers in lab {}",
            lab.name
        );
    }

    // A port held by the other lab is named.
    let mut c = Lab::new("side-c");
    c.dashboard_port = a.dashboard_port;
    let clash = c.run(&[
        "up",
        "--dashboard-port",
        &a.dashboard_port.to_string(),
        "--http-port",
        &c.http_port.to_string(),
        "--https-port",
        &c.https_port.to_string(),
    ]);
    assert!(!clash.status.success());
    assert!(
        String::from_utf8_lossy(&clash.stderr).contains(&format!("is used by lab \"{}\"", a.name))
    );

    // An image meshlab cannot provide: a failed pod with the reason, never a pull.
    let nginx = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.25\n";
    assert!(
        a.run_with(&["apply", "-f", "-"], Some(nginx))
            .status
            .success()
    );
    let mut pods = String::new();
    for _ in 0..50 {
        pods = a.ok(&["get", "pods"]);
        if pods.contains("ErrImageNeverPull") {
            break;
        }
        pause(std::time::Duration::from_millis(100));
    }
    assert!(
        pods.lines()
            .any(|l| l.starts_with("web-") && l.contains("ErrImageNeverPull")),
        "{pods}"
    );

    // Exit codes pass through exec.
    let failing = a.run(&[
        "exec",
        "deploy/sleep",
        "--",
        "curl",
        "-s",
        "http://127.0.0.1:1/",
    ]);
    assert_eq!(failing.status.code(), Some(7));
}

#[test]
fn a_missing_docker_engine_or_a_taken_port_is_one_clear_line() {
    if !docker_available() {
        return;
    }
    let lab = Lab::new("bad-input");
    let no_docker = Command::new(MESHLAB)
        .args(["--name", &lab.name, "up"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert!(!no_docker.status.success());
    let stderr = String::from_utf8_lossy(&no_docker.stderr);
    assert!(
        stderr.contains("cannot reach the Docker engine") && stderr.contains("hint:"),
        "{stderr}"
    );

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = lab.run(&[
        "up",
        "--dashboard-port",
        &port,
        "--http-port",
        &free_port().to_string(),
        "--https-port",
        &free_port().to_string(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("port {port} on 127.0.0.1 is already in use")),
        "{stderr}"
    );
    assert!(!lab_exists(&lab.name), "a failed preflight creates nothing");

    let not_up = lab.run(&["get", "pods"]);
    assert!(String::from_utf8_lossy(&not_up.stderr).contains("is not up"));
}
