use std::net::SocketAddr;

use meshlab_proxy_route::ResponseFlag;

use super::*;

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

#[test]
fn start_time_is_envoys_utc_with_milliseconds() {
    let cases = [
        (0, "1970-01-01T00:00:00.000Z"),
        (951_782_400_123, "2000-02-29T00:00:00.123Z"),
        (1_717_334_697_930, "2024-06-02T13:24:57.930Z"),
    ];
    for (millis, expected) in cases {
        let time = UNIX_EPOCH + Duration::from_millis(millis);
        assert_eq!(StartTime(time).to_string(), expected);
    }
}

#[test]
fn an_http_line_has_istios_fields_in_order() {
    let entry = Entry {
        start: UNIX_EPOCH + Duration::from_millis(1_717_334_697_930),
        request: Some(RequestLine {
            method: Method::GET,
            path: Some(PathAndQuery::from_static("/headers")),
            version: Version::HTTP_11,
            forwarded_for: None,
            user_agent: Some(HeaderValue::from_static("curl/8.16.0")),
            request_id: Some(HeaderValue::from_static(
                "9f69865b-eed1-409b-8c12-12436234a191",
            )),
            authority: Some(HeaderValue::from_static("httpbin.org")),
        }),
        response_code: 200,
        flags: ResponseFlags::NONE,
        details: Cow::Borrowed("via_upstream"),
        transport_failure: None,
        bytes_received: 0,
        bytes_sent: 599,
        duration: Duration::from_millis(214),
        upstream_service_time: Some(213),
        upstream_host: Some(addr("3.94.154.124:80")),
        upstream_cluster: Some("outbound|80||httpbin.org".into()),
        upstream_local: Some(addr("172.30.146.73:56468")),
        downstream_local: addr("3.94.154.124:80"),
        downstream_remote: addr("172.30.146.73:33904"),
        server_name: None,
        route_name: Some("default".to_owned()),
    };
    assert_eq!(
        entry.to_string(),
        "[2024-06-02T13:24:57.930Z] \"GET /headers HTTP/1.1\" 200 - via_upstream - \"-\" 0 599 214 213 \"-\" \
         \"curl/8.16.0\" \"9f69865b-eed1-409b-8c12-12436234a191\" \"httpbin.org\" \"3.94.154.124:80\" \
         outbound|80||httpbin.org 172.30.146.73:56468 3.94.154.124:80 172.30.146.73:33904 - default"
    );
}

#[test]
fn a_tcp_line_has_dashes_for_the_request() {
    let entry = Entry {
        start: UNIX_EPOCH,
        request: None,
        response_code: 0,
        flags: ResponseFlag::NoHealthyUpstream.into(),
        details: Cow::Borrowed(""),
        transport_failure: None,
        bytes_received: 0,
        bytes_sent: 0,
        duration: Duration::ZERO,
        upstream_service_time: None,
        upstream_host: None,
        upstream_cluster: Some("BlackHoleCluster".into()),
        upstream_local: None,
        downstream_local: addr("142.250.1.1:443"),
        downstream_remote: addr("10.0.0.5:40000"),
        server_name: Some("www.google.com".into()),
        route_name: None,
    };
    assert_eq!(
        entry.to_string(),
        "[1970-01-01T00:00:00.000Z] \"- - -\" 0 UH - - \"-\" 0 0 0 - \"-\" \"-\" \"-\" \"-\" \"-\" \
         BlackHoleCluster - 142.250.1.1:443 10.0.0.5:40000 www.google.com -"
    );
}

#[tokio::test]
async fn lines_go_to_the_sink() {
    let (sink, mut lines) = mpsc::unbounded_channel();
    let log = AccessLog::start(AccessLogSink::Channel(sink));
    let entry = Entry {
        start: UNIX_EPOCH,
        request: None,
        response_code: 0,
        flags: ResponseFlags::NONE,
        details: Cow::Borrowed(""),
        transport_failure: Some("delayed connect error: Connection refused".to_owned()),
        bytes_received: 1,
        bytes_sent: 2,
        duration: Duration::from_millis(3),
        upstream_service_time: None,
        upstream_host: None,
        upstream_cluster: None,
        upstream_local: None,
        downstream_local: addr("127.0.0.1:1"),
        downstream_remote: addr("127.0.0.1:2"),
        server_name: None,
        route_name: None,
    };
    log.write(&entry);
    let line = lines.recv().await.unwrap();
    assert!(
        line.contains("\"delayed connect error: Connection refused\" 1 2 3 "),
        "{line}"
    );
    AccessLog::start(AccessLogSink::Off).write(&entry);
}
