use std::net::SocketAddr;

use http::HeaderValue;

use super::*;
use crate::curl::info::Times;

fn info() -> TransferInfo {
    let mut info = TransferInfo {
        url: "localhost:8080/productpage".to_owned(),
        url_effective: "http://localhost:8080/productpage".to_owned(),
        method: "GET".to_owned(),
        scheme: "http",
        http_code: 200,
        http_version: Some(Version::HTTP_11),
        remote: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
        size_download: 5_000,
        times: Times {
            connect: Duration::from_micros(1_234),
            starttransfer: Duration::from_millis(20),
            total: Duration::from_millis(2_500),
            ..Times::default()
        },
        ..TransferInfo::default()
    };
    info.headers.insert(
        "content-type",
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    info.headers
        .append("set-cookie", HeaderValue::from_static("a=1"));
    info.headers
        .append("set-cookie", HeaderValue::from_static("b=2"));
    info
}

fn render(format: &str, info: &TransferInfo) -> Vec<(Stream, String)> {
    let (template, unknown) = Template::parse(format);
    assert!(unknown.is_empty(), "{unknown:?}");
    template.render(info)
}

fn stdout(format: &str, info: &TransferInfo) -> String {
    let pieces = render(format, info);
    assert!(pieces.iter().all(|(s, _)| *s == Stream::Stdout));
    pieces.into_iter().map(|(_, s)| s).collect()
}

#[test]
fn formats_like_curl() {
    let info = info();
    let cases = [
        ("%{http_code}", "200"),
        ("%{response_code}\\n", "200\n"),
        ("code=%{http_code} t=%{time_total}", "code=200 t=2.500000"),
        ("%{time_connect} %{time_starttransfer}", "0.001234 0.020000"),
        ("%{size_download} %{speed_download}", "5000 2000"),
        ("%{remote_ip}:%{remote_port}", "127.0.0.1:8080"),
        (
            "%{url_effective} %{url}",
            "http://localhost:8080/productpage localhost:8080/productpage",
        ),
        ("%{content_type}", "text/html; charset=utf-8"),
        ("%header{Set-Cookie}", "a=1, b=2"),
        ("%{http_version} %{method} %{scheme}", "1.1 GET http"),
        ("100%% \\t|\\x|%d|%{|%header{", "100% \t|\\x|%d|%{|%header{"),
        ("%{onerror}failed", ""),
        ("ok%{onerror}failed %{exitcode}", "ok"),
    ];
    for (format, expected) in cases {
        assert_eq!(stdout(format, &info), expected, "{format}");
    }
}

#[test]
fn reports_failures() {
    let info = TransferInfo {
        exit_code: 7,
        error_message: "Failed to connect".to_owned(),
        ..TransferInfo::default()
    };
    assert_eq!(stdout("%{http_code}", &info), "000");
    assert_eq!(
        stdout("%{http_version}|%{remote_ip}|%{time_total}", &info),
        "0||0.000000"
    );
    assert_eq!(
        stdout("%{onerror}%{exitcode}: %{errormsg}", &info),
        "7: Failed to connect"
    );
}

#[test]
fn switches_streams() {
    let info = info();
    assert_eq!(
        render("a%{stderr}b%{http_code}%{stdout}c", &info),
        [
            (Stream::Stdout, "a".to_owned()),
            (Stream::Stderr, "b200".to_owned()),
            (Stream::Stdout, "c".to_owned()),
        ]
    );
}

#[test]
fn reports_unknown_variables() {
    let (template, unknown) = Template::parse("%{http_code}%{nope}x");
    assert_eq!(unknown, ["nope"]);
    assert_eq!(
        template.render(&info()),
        [(Stream::Stdout, "200x".to_owned())]
    );
}

#[test]
fn json_holds_typed_values() {
    let json: serde_json::Value =
        serde_json::from_str(&stdout("%{json}", &info())).expect("valid JSON");
    assert_eq!(json["http_code"], 200);
    assert_eq!(json["time_total"], 2.5);
    assert_eq!(json["url_effective"], "http://localhost:8080/productpage");
    let headers: serde_json::Value =
        serde_json::from_str(&stdout("%{header_json}", &info())).expect("valid JSON");
    assert_eq!(headers["set-cookie"], serde_json::json!(["a=1", "b=2"]));
}
