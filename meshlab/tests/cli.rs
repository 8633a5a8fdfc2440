//! The `meshlab` binary as a learner runs it: real processes, real ports.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const MESHLAB: &str = env!("CARGO_BIN_EXE_meshlab");

/// A child process killed when the test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run_app(app: &str, port: u16, env: &[(&str, String)]) -> Running {
    let mut command = Command::new(MESHLAB);
    command
        .args(["run", "app", app, "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("meshlab starts");
    // Wait for the "listening" log line so that the next app finds this one up.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("listening") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Running(child)
}

fn curl(args: &[&str]) -> Output {
    Command::new(MESHLAB)
        .arg("curl")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn four_apps_wired_by_environment_serve_red_stars() {
    let [ratings, reviews, details, productpage] = [(); 4].map(|()| free_port());
    let _ratings = run_app("ratings", ratings, &[]);
    let _reviews = run_app(
        "reviews",
        reviews,
        &[
            ("STAR_COLOR", "red".into()),
            ("ENABLE_RATINGS", "true".into()),
            ("RATINGS_HOSTNAME", "127.0.0.1".into()),
            ("RATINGS_SERVICE_PORT", ratings.to_string()),
            ("HOSTNAME", "reviews-v3-test".into()),
        ],
    );
    let _details = run_app("details", details, &[]);
    let _productpage = run_app(
        "productpage",
        productpage,
        &[
            ("DETAILS_HOSTNAME", "127.0.0.1".into()),
            ("DETAILS_SERVICE_PORT", details.to_string()),
            ("REVIEWS_HOSTNAME", "127.0.0.1".into()),
            ("REVIEWS_SERVICE_PORT", reviews.to_string()),
        ],
    );
    let page = curl(&[
        "-sS",
        &format!("http://127.0.0.1:{productpage}/productpage"),
    ]);
    assert!(
        page.status.success(),
        "{}",
        String::from_utf8_lossy(&page.stderr)
    );
    let body = String::from_utf8_lossy(&page.stdout);
    assert!(body.contains("<title>Simple Bookstore App</title>"));
    assert_eq!(body.matches("glyphicon glyphicon-star").count(), 9);
    assert!(body.contains("text-red-500"));
    assert!(body.contains("reviews-v3-test"));
}

#[test]
fn curl_to_a_closed_port_prints_000_and_exits_7() {
    let out = curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "http://127.0.0.1:1/",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "000");
    assert_eq!(out.status.code(), Some(7));
}

#[test]
fn the_binary_is_curl_when_called_curl() {
    let dir = std::env::temp_dir().join(format!("meshlab-curl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("curl");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(MESHLAB, &link).unwrap();
    let out = Command::new(&link)
        .args(["-s", "-w", "%{http_code}", "http://127.0.0.1:1/"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "000");
    assert_eq!(out.status.code(), Some(7));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unknown_app_is_refused_with_the_list() {
    let out = Command::new(MESHLAB)
        .args(["run", "app", "mongodb"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown app \"mongodb\""), "{stderr}");
    assert!(
        stderr.contains("productpage, details, reviews, ratings, httpbin, sleep"),
        "{stderr}"
    );
}

#[test]
fn ratings_v2_is_refused_with_a_reason() {
    let out = Command::new(MESHLAB)
        .args(["run", "app", "ratings", "--port", &free_port().to_string()])
        .env("SERVICE_VERSION", "v2")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("MongoDB or MySQL"), "{stderr}");
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let taken = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let started = Instant::now();
    let out = Command::new(MESHLAB)
        .args(["run", "app", "httpbin", "--port", &port.to_string()])
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 0.0.0.0:{port}")),
        "{stderr}"
    );
}

#[test]
fn gen_jwt_prints_a_token_writes_its_jwks_and_names_a_bad_key() {
    let dir = std::env::temp_dir().join(format!("meshlab-gen-jwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks = dir.join("jwks.json");
    let out = Command::new(MESHLAB)
        .args([
            "gen-jwt",
            "--expire",
            "5",
            "--aud",
            "a,b",
            "--listclaim",
            "groups=g1,g2",
        ])
        .arg("--jwks")
        .arg(&jwks)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let parts: Vec<&str> = token.trim().split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    use base64::Engine as _;
    let decode = |part: &str| -> serde_json::Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    let (header, claims) = (decode(parts[0]), decode(parts[1]));
    assert_eq!(claims["iss"], "testing@secure.istio.io");
    assert_eq!(claims["aud"], serde_json::json!(["a", "b"]));
    assert_eq!(claims["groups"], serde_json::json!(["g1", "g2"]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        5
    );
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&jwks).unwrap()).unwrap();
    assert_eq!(written["keys"][0]["kid"], header["kid"], "{written}");
    let _ = std::fs::remove_dir_all(&dir);

    let missing = Command::new(MESHLAB)
        .args(["gen-jwt", "/nonexistent/key.pem"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("cannot read /nonexistent/key.pem") && stderr.contains("hint:"),
        "{stderr}"
    );
}

#[test]
fn create_secret_names_a_bad_file_or_flag_before_reaching_a_lab() {
    let dir = std::env::temp_dir().join(format!("meshlab-create-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_pem = dir.join("cert.txt");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let lab = format!("mlt-no-lab-{}", std::process::id());
    let create = |args: &[&str]| {
        let out = Command::new(MESHLAB)
            .args(["--name", &lab, "create", "secret"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let cert = format!("--cert={}", not_pem.display());
    let stderr = create(&["tls", "x", &cert, "--key=/nonexistent/k.pem"]);
    assert!(
        stderr.contains(&format!(
            "failed to load key pair: no PEM certificate in {}",
            not_pem.display()
        )),
        "{stderr}"
    );
    let stderr = create(&["generic", "x", "--from-literal=novalue"]);
    assert!(
        stderr.contains("--from-literal=novalue: expected KEY=VALUE"),
        "{stderr}"
    );
    let stderr = create(&["generic", "x", "--from-literal=a=1", "--from-literal=a=2"]);
    assert!(
        stderr.contains("cannot add key a, another key by that name already exists"),
        "{stderr}"
    );
    let stderr = create(&["generic", "x", "--from-file=/nonexistent/ca.crt"]);
    assert!(
        stderr.contains("--from-file=/nonexistent/ca.crt: cannot read /nonexistent/ca.crt"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
