use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

fn args(list: &[&str]) -> Vec<OsString> {
    list.iter().map(OsString::from).collect()
}

/// A server on loopback that answers 503 to every third request, 200 otherwise.
async fn flaky_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let router = axum::Router::new().fallback(move || {
        let seen = Arc::clone(&seen);
        async move {
            if seen.fetch_add(1, Ordering::SeqCst) % 3 == 2 {
                (StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream")
            } else {
                (StatusCode::OK, "{\"url\": \"/get\"}\n")
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/get")
}

async fn fortio(list: &[&str]) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(args(list), &mut out, &mut err).await;
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn the_tasks_flags_parse_as_fortio_reads_them() {
    let command = parse(args(&[
        "load",
        "-c",
        "2",
        "-qps",
        "0",
        "-n",
        "20",
        "-loglevel",
        "Warning",
        "http://httpbin:8000/get",
    ]))
    .unwrap();
    let Command::Load(opts) = command else {
        panic!("not a load: {command:?}");
    };
    assert_eq!(opts.connections, 2);
    assert_eq!(opts.qps, None);
    assert_eq!(opts.calls, Some(20));
    assert!(opts.warnings);
    assert_eq!(opts.url.host, "httpbin");
    assert_eq!(opts.url.port, 8000);
    assert_eq!(opts.url.path, "/get");

    let Ok(Command::Curl(opts)) = parse(args(&["curl", "-quiet", "http://httpbin:8000/get"]))
    else {
        panic!("not a curl");
    };
    assert!(opts.quiet);

    assert_eq!(
        parse(args(&["server"])).unwrap(),
        Command::Server { port: 8080 }
    );
    assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
    assert!(parse(args(&["load", "-bogus", "1", "http://x/"])).is_err());
    assert!(parse(args(&["load", "https://x/"])).is_err());
}

#[test]
fn numbers_print_as_go_prints_them() {
    assert_eq!(g(0.005_686_9, 6), "0.0056869");
    assert_eq!(g(334.163_2, 5), "334.16");
    assert_eq!(g(20.0, 6), "20");
    assert_eq!(go_duration(Duration::from_micros(59_852)), "59.852ms");
    assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
}

#[tokio::test]
async fn curl_prints_the_status_line_headers_and_body() {
    let url = flaky_server().await;
    let (code, out, _) = fortio(&["curl", "-quiet", &url]).await;
    assert_eq!(code, 0);
    assert_eq!(out.lines().next(), Some("HTTP/1.1 200 OK"));
    assert!(out.contains("\r\n\r\n{\"url\": \"/get\"}\n"), "{out}");
}

#[tokio::test]
async fn load_counts_codes_in_fortios_summary() {
    let url = flaky_server().await;
    let (code, out, err) = fortio(&[
        "load",
        "-c",
        "2",
        "-qps",
        "0",
        "-n",
        "20",
        "-loglevel",
        "Warning",
        &url,
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Starting at max qps with 2 thread(s) [gomax "),
        "{out}"
    );
    assert!(
        out.contains("for exactly 20 calls (10 per thread + 0)"),
        "{out}"
    );
    assert!(
        out.contains("Aggregated Function Time : count 20 avg "),
        "{out}"
    );
    // Every third request fails: 14 of 20 succeed.
    assert!(out.contains("Code 200 : 14 (70.0 %)"), "{out}");
    assert!(out.contains("Code 503 : 6 (30.0 %)"), "{out}");
    assert!(
        out.contains("Sockets used: 2 (for perfect keepalive, would be 2)"),
        "{out}"
    );
    assert!(out.contains("All done 20 calls (plus 0 warmup) "), "{out}");
    assert_eq!(err.matches("Parsed non ok code 503").count(), 6, "{err}");
}

#[tokio::test]
async fn load_paces_itself_at_the_requested_rate() {
    let url = flaky_server().await;
    let start = Instant::now();
    let (_, out, _) = fortio(&["load", "-c", "1", "-qps", "50", "-n", "5", &url]).await;
    // Five calls at 50 qps are four intervals of 20 ms.
    assert!(start.elapsed() >= Duration::from_millis(80), "{out}");
    assert!(out.contains("Starting at 50 qps with 1 thread(s)"), "{out}");
}
