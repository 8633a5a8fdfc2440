//! The dashboard's endpoints, in process.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tokio::sync::watch;
use tower::ServiceExt;

use super::*;
use crate::discovery::{DiscoveryServer, Generators};
use crate::labs::LabsRuntime;
use crate::mesh_config::MeshConfig;
use crate::pod::{Pod, PodContainer};
use crate::store::Store;
use crate::telemetry::Telemetry;
use crate::translate::View;
use crate::translate::mesh::Mesh;

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pod(name: &str, app: &str, version: &str, ip: &str) -> Pod {
    Pod {
        name: name.to_owned(),
        namespace: "default".to_owned(),
        deployment: Some(format!("{app}-{version}")),
        labels: [("app", app), ("version", version)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        service_account: "default".to_owned(),
        status: "Running".to_owned(),
        message: None,
        ip: Some(ip.to_owned()),
        created: 0,
        containers: vec![PodContainer {
            name: "istio-proxy".to_owned(),
            docker_name: format!("t-{name}-istio-proxy"),
            ready: true,
            restarts: 0,
        }],
        outdated: false,
    }
}

fn state() -> (ApiState, Scratch) {
    let dir = Scratch(std::env::temp_dir().join(format!(
        "meshlab-dashboard-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    )));
    let store = Arc::new(Store::open(&dir.0.join("store")).unwrap());
    let pods: crate::pod::Pods = Arc::new(vec![
        pod("productpage-v1-a", "productpage", "v1", "172.18.0.3"),
        pod("reviews-v2-a", "reviews", "v2", "172.18.0.4"),
    ]);
    let (_, pods_rx) = watch::channel(pods.clone());
    let view = Arc::new(View::new(
        Mesh::build(
            &store.snapshot(),
            &pods,
            MeshConfig::default().outbound_traffic_policy.mode,
        ),
        pods,
    ));
    let (_, views) = watch::channel(view);
    let discovery = DiscoveryServer::new(Generators::<View>::new(), views.clone()).status();
    let state = ApiState {
        store,
        pods: pods_rx,
        views,
        discovery,
        mesh_config: watch::Sender::new(MeshConfig::default()),
        state_dir: dir.0.clone(),
        telemetry: Telemetry::new(),
        labs: LabsRuntime::new(no_engine(&dir.0)),
        certificates: Arc::default(),
        mesh_root: String::new(),
    };
    (state, dir)
}

/// A Docker client whose socket is an empty file: these handlers never use it.
fn no_engine(dir: &std::path::Path) -> meshlab_control_runtime::Docker {
    let socket = dir.join("docker.sock");
    std::fs::write(&socket, "").unwrap();
    meshlab_control_runtime::Docker::unchecked(&format!("unix://{}", socket.display())).unwrap()
}

async fn call(state: &ApiState, request: Request<Body>) -> (StatusCode, serde_json::Value) {
    let response = super::super::router(state.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

const ACCESS_LINE: &str = "[2026-11-21T14:00:00.000Z] \"GET /reviews/0 HTTP/1.1\" 200 - via_upstream - \"-\" 0 295 12 11 \"-\" \"python\" \"id-1\" \"reviews:9080\" \"172.18.0.4:9080\" outbound|9080||reviews.default.svc.cluster.local - 10.0.0.9:9080 172.18.0.3:40000 - default";

#[tokio::test]
async fn the_graph_shows_workloads_and_the_edges_of_recorded_lines() {
    let (state, _dir) = state();
    let pods = state.pods.borrow().clone();
    state
        .telemetry
        .record(&pods[0], &pods, ACCESS_LINE, Instant::now());
    let (status, graph) = call(
        &state,
        Request::get("/api/v1/graph").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "workload:default/productpage/v1",
            "workload:default/reviews/v2"
        ]
    );
    let edge = &graph["edges"][0];
    assert_eq!(edge["source"], "workload:default/productpage/v1");
    assert_eq!(edge["target"], "workload:default/reviews/v2");
    assert_eq!(edge["requests"], 1);
    assert!(edge["rps"].as_f64().unwrap() > 0.0);
    assert_eq!(edge["p50Ms"], 12);
    assert_eq!(edge["mtls"], false);
    assert_eq!(graph["windowSeconds"], 10);
}

#[tokio::test]
async fn the_graph_stream_sends_the_graph_at_once() {
    let (state, _dir) = state();
    let response = super::super::router(state)
        .oneshot(
            Request::get("/api/v1/graph/stream")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let frame = body.frame().await.unwrap().unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    assert!(text.starts_with("event: graph\ndata: {"), "{text}");
    assert!(text.contains("workload:default/reviews/v2"), "{text}");
}

#[tokio::test]
async fn the_log_stream_sends_matching_lines_only() {
    let (state, _dir) = state();
    let response = super::super::router(state.clone())
        .oneshot(
            Request::get("/api/v1/access-log/stream?workload=productpage-v1&status=2xx")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = response.into_body();
    let pods = state.pods.borrow().clone();
    let failing = ACCESS_LINE.replace("\" 200 -", "\" 503 UH");
    // From another workload, then with another status, then a match.
    state
        .telemetry
        .record(&pods[1], &pods, ACCESS_LINE, Instant::now());
    state
        .telemetry
        .record(&pods[0], &pods, &failing, Instant::now());
    state
        .telemetry
        .record(&pods[0], &pods, ACCESS_LINE, Instant::now());
    let frame = body.frame().await.unwrap().unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    let data: serde_json::Value =
        serde_json::from_str(text.strip_prefix("event: log\ndata: ").unwrap().trim()).unwrap();
    assert_eq!(data["workload"], "productpage-v1");
    assert_eq!(data["code"], 200);
    assert_eq!(data["text"], ACCESS_LINE);
}

#[test]
fn log_filters_match_workloads_flags_and_status_classes() {
    let pods = [pod("reviews-v2-a", "reviews", "v2", "172.18.0.4")];
    let telemetry = Telemetry::new();
    let mut events = telemetry.subscribe();
    let line = ACCESS_LINE.replace("\" 200 -", "\" 503 UH,URX");
    telemetry.record(&pods[0], &pods, &line, Instant::now());
    let event = events.try_recv().unwrap();
    let filter = |workload: Option<&str>, flag: Option<&str>, status: Option<&str>| LogFilter {
        workload: workload.map(str::to_owned),
        flag: flag.map(str::to_owned),
        status: status.map(str::to_owned),
    };
    for (f, accepted) in [
        (filter(None, None, None), true),
        (filter(Some("reviews-v2"), None, None), true),
        (filter(Some("reviews-v2-a"), None, None), true),
        (filter(Some("reviews-v1"), None, None), false),
        (filter(None, Some("URX"), None), true),
        (filter(None, Some("UH,URX"), None), true),
        (filter(None, Some("NR"), None), false),
        (filter(None, None, Some("503")), true),
        (filter(None, None, Some("5xx")), true),
        (filter(None, None, Some("2xx")), false),
        (filter(Some(" "), Some(""), Some("")), true),
    ] {
        assert_eq!(f.accepts(&event), accepted, "{f:?}");
    }
}

#[tokio::test]
async fn resources_list_every_stored_object_and_proxies_start_empty() {
    let (state, _dir) = state();
    let (status, objects) = call(
        &state,
        Request::get("/api/v1/resources")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // A fresh store holds the namespaces Kubernetes creates.
    assert!(
        objects
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["kind"] == "Namespace" && o["group"] == ""),
        "{objects}"
    );
    let (status, proxies) = call(
        &state,
        Request::get("/api/v1/proxies").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(proxies, serde_json::json!([]));
}

#[tokio::test]
async fn the_traffic_generator_refuses_what_it_cannot_send() {
    let (state, _dir) = state();
    let post = |body: serde_json::Value| {
        Request::post("/api/v1/traffic")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let (status, failure) = call(&state, post(serde_json::json!({"requests": 0}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        failure["errors"][0].as_str().unwrap().contains("1 to 2000"),
        "{failure}"
    );
    let (status, _) = call(
        &state,
        post(serde_json::json!({"requests": 2, "path": "productpage"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // No gateway pod in this mesh.
    let (status, failure) = call(&state, post(serde_json::json!({"requests": 2}))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        failure["errors"][0]
            .as_str()
            .unwrap()
            .contains("ingress gateway"),
        "{failure}"
    );
}

#[test]
fn form_values_are_encoded() {
    assert_eq!(form_encode("jason"), "jason");
    assert_eq!(form_encode("a b&c=d"), "a%20b%26c%3Dd");
}
