//! The dashboard of a running lab in a real headless Chromium (Debian's package,
//! driven over WebDriver): what a learner sees after `meshlab dashboard`.
//!
//! Screenshots go to `target/dashboard-screenshots/`. Without Docker or Chromium the
//! tests print a note and pass, unless `MESHLAB_REQUIRE_DOCKER` is set.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/engine.rs"]
mod engine;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::json;

use self::cli::{Lab, eventually};
use self::engine::{MESHLAB, docker_available};
use self::webdriver::{Browser, browser, http};

const BOOKINFO_GATEWAY: &str = include_str!("../../control/tests/data/bookinfo-gateway.yaml");

/// A VirtualService with a typo on line 12, column 9.
const INVALID_VS: &str = "apiVersion: networking.istio.io/v1
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
        subsett: v2
";

fn screenshots() -> PathBuf {
    // target/<profile>/meshlab → target/dashboard-screenshots
    Path::new(MESHLAB)
        .parent()
        .and_then(Path::parent)
        .expect("the binary sits in target/<profile>")
        .join("dashboard-screenshots")
}

/// The lab up with Bookinfo behind the gateway, and the URL `meshlab dashboard` prints.
fn lab_with_dashboard(name: &str) -> (Lab, String) {
    let lab = Lab::new(name);
    lab.up(&[]);
    lab.apply(BOOKINFO_GATEWAY);
    eventually("the gateway serves /productpage", || {
        let (code, page) = lab.gateway("/productpage", &[]);
        if code == 0 && page.contains("<title>Simple Bookstore App</title>") {
            Ok(())
        } else {
            Err(format!("exit {code}: {page}"))
        }
    });
    let printed = lab.ok(&["dashboard", "--no-browser"]);
    let url = printed.trim().to_owned();
    assert!(
        url.starts_with(&format!("http://localhost:{}/?token=", lab.dashboard_port)),
        "{printed}"
    );
    (lab, url)
}

#[test]
fn the_dashboard_shows_the_mesh_live_and_config_errors_in_place() {
    if !docker_available() {
        return;
    }
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let (lab, url) = lab_with_dashboard("dash");
    let api = format!("http://127.0.0.1:{}", lab.dashboard_port);

    // The token `meshlab up` wrote is the user's alone, and is the one in the URL.
    let token_file = lab.token_file();
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", token_file.display());
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(url.ends_with(&format!("?token={}", token.trim())), "{url}");

    // Without the token: 401, for the API and the page alike.
    for path in ["/", "/api/v1/pods", "/api/v1/graph", "/?token=wrong"] {
        let (status, _) = http("GET", &format!("{api}{path}"), None, &[]);
        assert_eq!(status, 401, "{path}");
    }

    let browser = Browser::start(&chromium, &chromedriver, screenshots());
    browser.goto(&url);
    // The token became an HttpOnly cookie and left the address bar.
    let location = browser.run("return location.href;");
    assert_eq!(
        location,
        json!(format!("http://localhost:{}/", lab.dashboard_port))
    );
    assert_eq!(browser.run("return document.cookie;"), json!(""));

    // The graph: every Bookinfo workload and the gateway, live.
    browser.wait_for(
        "the Bookinfo nodes",
        r#"const ids = [...document.querySelectorAll('#graph .node')].map(n => n.dataset.id);
           const want = ['workload:istio-system/istio-ingressgateway', 'workload:default/productpage/v1',
             'workload:default/details/v1', 'workload:default/reviews/v1', 'workload:default/reviews/v2',
             'workload:default/reviews/v3', 'workload:default/ratings/v1'];
           return want.every(id => ids.includes(id)) ? ids : null;"#,
    );
    assert_eq!(
        browser.run("return document.querySelector('#connection').textContent;"),
        json!("live")
    );

    // Traffic from the generator appears as edges with a rate.
    browser.type_into("#page-graph [name=requests]", "40");
    browser.type_into("#page-graph [name=user]", "jason");
    browser.click("#page-graph [name=send]");
    let result = browser.wait_for(
        "the traffic generator's report",
        "const r = document.querySelector('#page-graph .result').textContent; return r.includes('sent') ? r : null;",
    );
    assert!(
        result.as_str().unwrap().contains("40 sent") && result.as_str().unwrap().contains("200×40"),
        "{result}"
    );
    let rate = browser.wait_for(
        "an edge gateway → productpage with a rate",
        r#"const e = document.querySelector('#graph .edge[data-source="workload:istio-system/istio-ingressgateway"][data-target="workload:default/productpage/v1"]');
           return e && Number(e.dataset.rps) > 0 ? Number(e.dataset.rps) : null;"#,
    );
    // 40 requests (and the login) in a 10 s window.
    assert!(rate.as_f64().unwrap() >= 1.0, "{rate}");
    browser.wait_for(
        "edges from productpage to reviews and details",
        r#"const edges = [...document.querySelectorAll('#graph .edge')]
             .filter(e => e.dataset.source === 'workload:default/productpage/v1' && Number(e.dataset.rps) > 0)
             .map(e => e.dataset.target);
           return edges.includes('workload:default/details/v1') && edges.some(t => t.startsWith('workload:default/reviews/')) ? edges : null;"#,
    );
    // Sidecar to sidecar is mutual TLS (auto mTLS): the edge wears the lock.
    browser.wait_for(
        "the mTLS lock on productpage → details",
        r#"const e = document.querySelector('#graph .edge.mtls[data-source="workload:default/productpage/v1"][data-target="workload:default/details/v1"]');
           return e && e.querySelector('.lock').style.display !== 'none' || null;"#,
    );
    let label = browser.run(
        r#"return document.querySelector('#graph .edge[data-source="workload:istio-system/istio-ingressgateway"] text').textContent;"#);
    assert!(
        label.as_str().unwrap().contains("rps") && label.as_str().unwrap().contains("p99"),
        "{label}"
    );
    browser.screenshot("graph");

    // The access log tail, filtered by workload.
    browser.click("header nav a[data-page=log]");
    browser.type_into("#filter-workload", "productpage-v1");
    // Let the filtered stream connect before sending.
    cli::pause(std::time::Duration::from_millis(800));
    browser.type_into("#page-log [name=requests]", "5");
    browser.click("#page-log [name=send]");
    let workloads = browser.wait_for(
        "access-log lines of productpage",
        r#"const rows = [...document.querySelectorAll('#log tbody tr')];
           return rows.length >= 5 ? rows.map(r => r.children[1].textContent) : null;"#,
    );
    assert!(
        workloads
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w == "productpage-v1"),
        "{workloads}"
    );
    browser.screenshot("access-log");

    // Workloads and proxies: sync states, and a proxy's clusters on click.
    browser.click("header nav a[data-page=workloads]");
    browser.wait_for(
        "every proxy SYNCED",
        r#"const rows = [...document.querySelectorAll('#workloads tbody tr')];
           return rows.length >= 7 && rows.every(r => r.querySelectorAll('.sync.SYNCED').length === 4) ? rows.length : null;"#,
    );
    // Each sidecar's certificate: its SPIFFE identity from the lab's CA.
    browser.wait_for(
        "productpage's SPIFFE identity",
        r#"const row = document.querySelector('#workloads tbody tr[data-pod^=productpage-v1]');
           return row && row.textContent.includes('spiffe://cluster.local/ns/default/sa/bookinfo-productpage') || null;"#,
    );
    browser.click("#workloads tbody tr[data-pod^=productpage-v1]");
    browser.click("#proxy-tabs button[data-kind=clusters]");
    browser.wait_for(
        "productpage's clusters",
        "return document.querySelector('#proxy-config').textContent.includes('reviews.default.svc.cluster.local') || null;",
    );
    browser.screenshot("workloads");

    // Istio config: an invalid VirtualService is refused with the error at its line.
    browser.click("header nav a[data-page=config]");
    browser.wait_for(
        "the gateway's VirtualService in the list",
        "return document.querySelector('#objects tr[data-kind=VirtualService][data-name=bookinfo]') !== null || null;",
    );
    browser.type_into("#yaml", INVALID_VS);
    browser.click("#apply");
    let inline = browser.wait_for(
        "the inline error",
        r#"const e = document.querySelector('.inline-error');
           return e ? [e.dataset.line, e.textContent] : null;"#,
    );
    assert_eq!(inline[0], "12", "{inline}");
    assert!(inline[1].as_str().unwrap().contains("subsett"), "{inline}");
    assert_eq!(
        browser.run("return document.querySelector('.error-line').dataset.line;"),
        json!("12")
    );
    assert!(
        !lab.ok(&["get", "vs"]).contains("reviews"),
        "nothing was applied"
    );
    browser.screenshot("config-error");

    // Fixed, it applies; the list shows it and the graph's reviews get a badge.
    browser.type_into("#yaml", &INVALID_VS.replace("subsett", "subset"));
    browser.click("#apply");
    browser.wait_for(
        "the applied line",
        "const r = document.querySelector('#apply-result .applied'); return r ? r.textContent : null;",
    );
    assert!(lab.ok(&["get", "vs"]).contains("reviews"));
    browser.click("header nav a[data-page=graph]");
    browser.wait_for(
        "the VirtualService badge on reviews",
        r#"return document.querySelector('#graph .node[data-id="workload:default/reviews/v2"] .b-virtualservice') !== null || null;"#,
    );
    browser.screenshot("graph-badge");

    // Which resources produced productpage's routes: the VirtualService just applied.
    browser.click("header nav a[data-page=workloads]");
    browser.click("#workloads tbody tr[data-pod^=productpage-v1]");
    browser.click("#proxy-tabs button[data-kind=origins]");
    browser.wait_for(
        "the VirtualService among the origins",
        "return document.querySelector('#proxy-config').textContent.includes('VirtualService/default/reviews') || null;",
    );
    browser.screenshot("workloads-origins");

    // Egress: an external host, then the same host blocked under REGISTRY_ONLY.
    browser.click("header nav a[data-page=graph]");
    let (code, _) = lab.curl_from_sleep(&["-o", "/dev/null", "http://httpbin.org/headers"]);
    assert_eq!(code, 0);
    browser.wait_for(
        "sleep → httpbin.org (external)",
        r#"return document.querySelector('#graph .edge[data-source="workload:default/sleep"][data-target="external:httpbin.org"]') !== null
             && document.querySelector('#graph .node[data-id="external:httpbin.org"][data-kind=external]') !== null || null;"#,
    );
    lab.ok(&[
        "mesh-config",
        "set",
        "outboundTrafficPolicy.mode=REGISTRY_ONLY",
    ]);
    eventually("REGISTRY_ONLY blocks httpbin.org", || {
        let (_, status) = lab.curl_from_sleep(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://httpbin.org/headers",
        ]);
        if status == "502" { Ok(()) } else { Err(status) }
    });
    browser.wait_for(
        "sleep → httpbin.org (blocked), failing",
        r#"const e = document.querySelector('#graph .edge[data-source="workload:default/sleep"][data-target="blocked:httpbin.org"]');
           return e && e.classList.contains('failing') || null;"#,
    );
    browser.screenshot("graph-egress");

    // The labs page lists labs, or says that this control plane serves none.
    browser.click("header nav a[data-page=labs]");
    browser.wait_for(
        "the labs page",
        "return document.querySelector('.lab-card') !== null || document.querySelector('#labs p') !== null || null;",
    );
    browser.screenshot("labs");
}

#[test]
fn a_lab_runs_from_the_browser_and_passes() {
    if !docker_available() {
        return;
    }
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let (_lab, url) = lab_with_dashboard("dashlab");
    let browser = Browser::start(&chromium, &chromedriver, screenshots());
    browser.goto(&url);
    browser.click("header nav a[data-page=labs]");
    browser.wait_for(
        "the list of labs",
        "return document.querySelectorAll('.lab-card').length || null;",
    );
    browser.click(".lab-card [name=run]");
    browser.wait_for(
        "live step-by-step progress",
        "return document.querySelectorAll('#lab-steps li').length || null;",
    );
    let done = browser.wait_for_within(
        "the lab's end",
        "const d = document.querySelector('#lab-done'); return d.className ? d.className : null;",
        std::time::Duration::from_secs(240),
    );
    browser.screenshot("lab");
    assert_eq!(done, "passed");
    assert!(
        browser
            .run(
                "return [...document.querySelectorAll('#lab-steps .check')].every(c => c.dataset.passed === 'true');")
            .as_bool()
            .unwrap()
    );
}
