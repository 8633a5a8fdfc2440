//! The guided labs end to end on one fresh lab, through the CLI a learner uses:
//! every lab passes with `--json`, then again in another order (a lab restores the
//! environment it found, so order and repetition do not matter), and `--junit`
//! writes a report; the API streams the dashboard's events, an interactive run keeps
//! its changes until the end and `reset` cleans up. Without Docker the tests print "skipped: no Docker" unless
//! `MESHLAB_REQUIRE_DOCKER` is set.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/engine.rs"]
mod engine;

use self::cli::Lab;
use self::engine::docker_available;

/// The six labs.
const LABS: [&str; 6] = [
    "request-routing",
    "fault-injection",
    "traffic-shifting",
    "egress",
    "sidecar-scoping",
    "mtls",
];

/// Runs `name` with `--json` and asserts it passed; the checks' count.
fn passes(lab: &Lab, name: &str) -> usize {
    let out = lab.run(&["lab", "run", name, "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|err| {
        panic!(
            "lab {name}: no JSON result ({err}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let failed: Vec<&serde_json::Value> = result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] != true)
        .collect();
    if !(out.status.success() && result["passed"] == true) {
        // What the mesh looked like then, for the next reader of a red run.
        let pods = lab.run(&["get", "pods", "-A"]);
        let status = lab.run(&["proxy-status"]);
        panic!(
            "lab {name} failed: {failed:#?}\nerrors: {}\n{}\n{}",
            result["errors"],
            String::from_utf8_lossy(&pods.stdout),
            String::from_utf8_lossy(&status.stdout)
        );
    }
    let checks = result["checks"].as_array().unwrap().len();
    assert!(checks > 0, "lab {name} checked nothing");
    checks
}

#[test]
fn every_lab_passes_in_any_order_twice() {
    if !docker_available() {
        return;
    }
    let lab = Lab::new("labs");
    lab.up(&[]);

    let listed = lab.ok(&["lab", "list"]);
    for name in LABS {
        assert!(listed.contains(name), "{listed}");
    }

    for name in LABS {
        passes(&lab, name);
    }
    // Another order: each lab put back what it found.
    let mut reversed = LABS;
    reversed.reverse();
    for name in reversed {
        passes(&lab, name);
    }
    // kubectl prints "No resources found" on stderr: no table on stdout.
    for kind in [
        "vs",
        "dr",
        "gw",
        "se",
        "sidecars",
        "peerauthentication",
        "authorizationpolicy",
    ] {
        let left = lab.ok(&["get", kind, "-A"]);
        assert!(left.trim().is_empty(), "labs left objects behind:\n{left}");
    }
    let mesh = lab.ok(&["mesh-config"]);
    assert!(mesh.contains("ALLOW_ANY"), "{mesh}");

    // One step alone, with a JUnit report; a step that does not exist fails.
    let junit = std::env::temp_dir().join(format!("meshlab-junit-{}.xml", std::process::id()));
    let junit_arg = junit.to_string_lossy().into_owned();
    let out = lab.run(&[
        "lab",
        "run",
        "traffic-shifting",
        "--step",
        "2",
        "--junit",
        &junit_arg,
    ]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("Step 2: Half to v3"), "{report}");
    assert!(
        report.contains("✔ about half of 100 pages come from v3"),
        "{report}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuite name=\"traffic-shifting\" tests=\"1\" failures=\"0\""),
        "{xml}"
    );
    let _ = std::fs::remove_file(&junit);
    let out = lab.run(&["lab", "run", "egress", "--step", "9"]);
    assert_eq!(out.status.code(), Some(1));

    api_interactive_runs_and_reset(&lab);
}

/// `meshlab curl` on the host with the lab's API token: stdout.
fn curl(lab: &Lab, args: &[&str]) -> String {
    let out = std::process::Command::new(engine::MESHLAB)
        .arg("curl")
        .args(["-s", "--max-time", "60", "-H"])
        .arg(format!("authorization: Bearer {}", lab.token()))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The API the dashboard uses, an interactive run and a reset, on `lab`.
fn api_interactive_runs_and_reset(lab: &Lab) {
    let api = format!("http://127.0.0.1:{}/api/v1/labs", lab.dashboard_port);

    // The contract the dashboard builds on.
    let list: serde_json::Value = serde_json::from_str(&curl(lab, &[&api])).unwrap();
    let first = &list[0];
    assert_eq!(first["name"], "request-routing");
    assert_eq!(first["steps"], 3);
    assert!(first["title"].is_string() && first["summary"].is_string());
    let description: serde_json::Value =
        serde_json::from_str(&curl(lab, &[&format!("{api}/traffic-shifting")])).unwrap();
    let step = &description["steps"][1];
    assert_eq!(step["title"], "Half to v3");
    assert!(step["prose"].as_str().unwrap().contains("weighted"));
    assert_eq!(
        step["apply"][0]["file"],
        "virtual-service-reviews-50-v3.yaml"
    );
    assert!(step["checks"][0]["description"].is_string());
    let missing = curl(
        lab,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{api}/nope"),
        ],
    );
    assert_eq!(missing, "404");

    let stream = curl(
        lab,
        &[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            "{\"step\": 1}",
            &format!("{api}/traffic-shifting/run"),
        ],
    );
    let events: Vec<serde_json::Value> = stream
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"lab"), "{stream}");
    assert_eq!(kinds.get(1), Some(&"step"), "{stream}");
    assert!(
        kinds.contains(&"applied") && kinds.contains(&"progress"),
        "{stream}"
    );
    let check = events.iter().find(|e| e["event"] == "check").unwrap();
    for field in ["step", "name", "passed", "observed", "expected", "hint"] {
        assert!(!check[field].is_null(), "{field} in {check}");
    }
    assert_eq!(events.last().unwrap()["event"], "done");
    assert_eq!(events.last().unwrap()["passed"], true, "{stream}");

    // Interactive: Enter before each step; the changes stay until the end, then go.
    let out = lab.run_with(
        &["lab", "run", "traffic-shifting", "--interactive"],
        Some("\n\n\n"),
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert_eq!(
        report.matches("Press Enter to run step").count(),
        3,
        "{report}"
    );
    assert!(report.contains("back as the lab found it"), "{report}");
    assert!(lab.ok(&["get", "vs"]).trim().is_empty());

    // Reset after an interrupted run: the lab's objects and mesh settings go.
    lab.apply(include_str!("../../labs/egress/service-entry-httpbin.yaml"));
    lab.ok(&[
        "mesh-config",
        "set",
        "outboundTrafficPolicy.mode=REGISTRY_ONLY",
    ]);
    let reset = lab.ok(&["lab", "reset", "egress"]);
    assert!(
        reset.contains("serviceentry.networking.istio.io \"httpbin-ext\" deleted"),
        "{reset}"
    );
    assert!(lab.ok(&["get", "se"]).trim().is_empty());
    assert!(lab.ok(&["mesh-config"]).contains("ALLOW_ANY"));
}

#[test]
fn labs_are_listed_and_described_without_a_lab() {
    let lab = Lab::new("labs-offline");
    let list = lab.ok(&["lab", "list"]);
    assert!(list.starts_with("NAME"), "{list}");
    assert!(list.contains("sidecar-scoping"), "{list}");
    let text = lab.ok(&["lab", "describe", "fault-injection"]);
    assert!(text.contains("What you will learn:"), "{text}");
    assert!(text.contains("Step 2: A 7 s delay for jason"), "{text}");
    assert!(
        text.contains("meshlab apply -f virtual-service-ratings-test-delay.yaml"),
        "{text}"
    );
    let out = lab.run(&["lab", "describe", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the labs are request-routing"));
}
