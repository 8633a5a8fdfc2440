//! How long a configuration change takes to reach the data plane.
//!
//! Run with `cargo bench -p meshlab --bench propagation` (needs Docker). On a lab of
//! its own it applies, ten times in turn, a VirtualService on the ingress gateway's
//! route that aborts `/productpage` with 418 and then one that does not, and
//! measures from the moment `meshlab apply` returns until the gateway on the host
//! answers the new way (polled every 5 ms). That is the control plane's debounce,
//! translation and push, and the proxy's swap of its route table.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MESHLAB: &str = env!("CARGO_BIN_EXE_meshlab");
const HTTP_PORT: &str = "28180";

const GATEWAY: &str = include_str!("../../control/tests/data/bookinfo-gateway.yaml");

fn meshlab(lab: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(MESHLAB)
        .arg("--name")
        .arg(lab)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("meshlab runs");
    let input = child.stdin.take();
    if let (Some(mut input), Some(text)) = (input, stdin) {
        std::io::Write::write_all(&mut input, text.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("meshlab runs");
    assert!(
        out.status.success(),
        "meshlab {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The gateway's status for `/productpage`, via the CLI's own curl.
fn status() -> String {
    let out = Command::new(MESHLAB)
        .args([
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .arg(format!("http://127.0.0.1:{HTTP_PORT}/productpage"))
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pause(duration: Duration) {
    #[expect(
        clippy::disallowed_methods,
        reason = "synchronous code: no async runtime to block"
    )]
    std::thread::sleep(duration);
}

/// The gateway VirtualService of `bookinfo-gateway.yaml`, with or without an abort.
fn bookinfo_vs(abort: bool) -> String {
    let vs = GATEWAY
        .split("\n---")
        .find(|doc| doc.contains("kind: VirtualService"))
        .expect("bookinfo-gateway.yaml has a VirtualService");
    if !abort {
        return vs.to_owned();
    }
    vs.replacen(
        "  http:\n  - match:",
        "  http:\n  - fault:\n      abort:\n        httpStatus: 418\n        percentage:\n          value: 100\n    match:",
        1,
    )
}

fn main() {
    let lab = format!("mlprop-{}", std::process::id());
    meshlab(
        &lab,
        &[
            "up",
            "--http-port",
            HTTP_PORT,
            "--https-port",
            "28143",
            "--dashboard-port",
            "28101",
        ],
        None,
    );
    meshlab(&lab, &["apply", "-f", "-"], Some(GATEWAY));
    while status() != "200" {
        pause(Duration::from_millis(100));
    }
    let mut samples = Vec::new();
    for round in 0..20 {
        let abort = round % 2 == 0;
        let want = if abort { "418" } else { "200" };
        meshlab(&lab, &["apply", "-f", "-"], Some(&bookinfo_vs(abort)));
        let applied = Instant::now();
        while status() != want {
            assert!(
                applied.elapsed() < Duration::from_secs(30),
                "no change after 30 s"
            );
            pause(Duration::from_millis(5));
        }
        samples.push(applied.elapsed());
    }
    meshlab(&lab, &["down", "--purge"], None);

    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "apply → gateway behaves anew, {} changes: min {:.0} ms, median {:.0} ms, max {:.0} ms",
        samples.len(),
        ms(samples[0]),
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() - 1])
    );
}
