//! How long `meshlab up` takes and how much memory the lab uses.
//!
//! Run with `cargo bench -p meshlab --bench up` (needs Docker). It measures, on a lab
//! of its own:
//! - **cold**: no lab and no image for this binary — `up` imports the image, creates
//!   the network, the control plane, the simulated internet, Bookinfo and sleep;
//! - **warm**: the image exists, the lab does not (after `down --purge`);
//! - **memory**: the sum of every lab container's memory (`docker stats`), once all
//!   pods are ready and again after 30 requests through productpage.
//!
//! Targets (issue 3): warm ≤ 10 s until every pod is ready; ≤ 150 MB in all.

use std::process::Command;
use std::time::{Duration, Instant};

const MESHLAB: &str = env!("CARGO_BIN_EXE_meshlab");

fn meshlab(lab: &str, args: &[&str]) -> String {
    let out = Command::new(MESHLAB)
        .arg("--name")
        .arg(lab)
        .args(args)
        .output()
        .expect("meshlab runs");
    assert!(
        out.status.success(),
        "meshlab {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `3.5MiB / 23.4GiB` → bytes of the first figure.
fn parse_usage(usage: &str) -> f64 {
    let used = usage.split('/').next().unwrap_or_default().trim();
    let split = used
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(used.len());
    let (number, unit) = used.split_at(split);
    let factor = match unit {
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => 1.0,
    };
    number.parse::<f64>().unwrap_or(0.0) * factor
}

/// Memory of every container of the lab, largest first, and the total.
fn memory(lab: &str) -> (Vec<(String, f64)>, f64) {
    let ids = docker(&["ps", "-q", "--filter", &format!("label=meshlab.lab={lab}")]);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    let mut args = vec![
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}\t{{.MemUsage}}",
    ];
    args.extend(ids);
    let mut rows: Vec<(String, f64)> = docker(&args)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(name, usage)| (name.to_owned(), parse_usage(usage)))
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total = rows.iter().map(|r| r.1).sum();
    (rows, total)
}

fn timed_up(lab: &str) -> (Duration, String) {
    let started = Instant::now();
    let out = meshlab(
        lab,
        &[
            "up",
            "--http-port",
            "28080",
            "--https-port",
            "28443",
            "--dashboard-port",
            "28001",
        ],
    );
    (started.elapsed(), out)
}

fn main() {
    let lab = format!("mlbench-{}", std::process::id());
    // Make sure this binary's image is absent: bring a lab up once to learn its tag.
    let (_, first) = timed_up(&lab);
    let tag = first
        .lines()
        .find_map(|l| {
            l.strip_prefix("✔ image ")
                .and_then(|r| r.split_whitespace().next())
        })
        .expect("up names the image")
        .to_owned();
    meshlab(&lab, &["down", "--purge"]);
    docker(&["rmi", "-f", &tag]);

    let (cold, out) = timed_up(&lab);
    assert!(
        out.contains(" built "),
        "the cold run builds the image:\n{out}"
    );
    meshlab(&lab, &["down", "--purge"]);
    let (warm, out) = timed_up(&lab);
    assert!(
        out.contains(" reused"),
        "the warm run reuses the image:\n{out}"
    );

    #[expect(
        clippy::disallowed_methods,
        reason = "synchronous code: no async runtime to block"
    )]
    std::thread::sleep(Duration::from_secs(2));
    let (rows, idle) = memory(&lab);
    for _ in 0..30 {
        meshlab(
            &lab,
            &[
                "exec",
                "deploy/sleep",
                "--",
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "http://productpage:9080/productpage",
            ],
        );
    }
    let (_, busy) = memory(&lab);
    meshlab(&lab, &["down", "--purge"]);

    let mib = |b: f64| b / 1024.0 / 1024.0;
    println!(
        "meshlab up, cold (no image, no lab):   {:.2} s",
        cold.as_secs_f64()
    );
    println!(
        "meshlab up, warm (image built, no lab): {:.2} s",
        warm.as_secs_f64()
    );
    println!(
        "lab memory, all pods ready:             {:.1} MiB in {} containers",
        mib(idle),
        rows.len()
    );
    println!(
        "lab memory, after 30 page loads:        {:.1} MiB",
        mib(busy)
    );
    for (name, bytes) in rows.iter().take(5) {
        println!("  {name:<60} {:.1} MiB", mib(*bytes));
    }
}
