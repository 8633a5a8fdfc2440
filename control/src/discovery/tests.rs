//! The server over loopback, against scripted proxies that ACK and NACK on cue.

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use meshlab_control_api::v1::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use meshlab_control_api::{node_to_wire, v1};
use meshlab_proxy_config::{
    Cluster, ClusterLoadAssignment, Listener, ProxyKind, ProxyNode, RouteConfiguration,
    TrafficDirection, route::VirtualHost,
};
use tokio::{sync::oneshot, task::JoinHandle};

use super::*;

/// The whole "mesh" of these tests: two counters, one feeding clusters, one routes.
#[derive(Clone, Copy, Debug, Default)]
struct World {
    clusters: u32,
    routes: u32,
}

/// Clusters and endpoints are per proxy (named after its pod); listeners and routes
/// are the same for all. No secrets generator: SDS stays NOT SENT.
fn generators() -> Generators<World> {
    Generators::new()
        .with(|world: &World, node: &ProxyNode| {
            vec![Cluster::new(format!(
                "outbound|9080|v{}|{}.default.svc.cluster.local",
                world.clusters, node.pod
            ))]
        })
        .with(|world: &World, node: &ProxyNode| {
            vec![ClusterLoadAssignment {
                cluster_name: format!(
                    "outbound|9080|v{}|{}.default.svc.cluster.local",
                    world.clusters, node.pod
                ),
                endpoints: Vec::new(),
            }]
        })
        .with(|_: &World, _: &ProxyNode| {
            vec![Listener {
                name: "virtualOutbound".to_owned(),
                address: "0.0.0.0:15001".parse().unwrap(),
                direction: TrafficDirection::Outbound,
                use_original_dst: true,
                filter_chains: Vec::new(),
                default_filter_chain: None,
            }]
        })
        .with(|world: &World, _: &ProxyNode| {
            vec![RouteConfiguration {
                name: "9080".to_owned(),
                virtual_hosts: vec![VirtualHost::allow_any(&format!("routes #{}", world.routes))],
                ignore_port_in_host_matching: false,
            }]
        })
}

const FOUR: [ResourceType; 4] = [
    ResourceType::Cluster,
    ResourceType::ClusterLoadAssignment,
    ResourceType::Listener,
    ResourceType::RouteConfiguration,
];

struct Harness {
    address: SocketAddr,
    world: watch::Sender<Arc<World>>,
    status: DiscoveryStatus,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<Result<(), DiscoveryError>>,
}

impl Harness {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (world, snapshots) = watch::channel(Arc::new(World::default()));
        let server = DiscoveryServer::new(generators(), snapshots);
        let status = server.status();
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(server.serve(listener, async {
            let _ = stop.await;
        }));
        Self {
            address,
            world,
            status,
            shutdown: Some(shutdown),
            server,
        }
    }

    fn change(&self, edit: impl FnOnce(&mut World)) {
        self.world.send_modify(|world| edit(Arc::make_mut(world)));
    }

    /// The status of the one proxy named `pod`, once `ready` holds for it.
    async fn status_when(&self, pod: &str, ready: impl Fn(&ProxyStatus) -> bool) -> ProxyStatus {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let found = self
                .status
                .proxy_status()
                .into_iter()
                .find(|proxy| proxy.node.pod == pod);
            match found {
                Some(proxy) if ready(&proxy) => return proxy,
                _ if tokio::time::Instant::now() > deadline => {
                    panic!("status of {pod} never became ready: {found:#?}")
                }
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }
}

fn node(pod: &str) -> ProxyNode {
    ProxyNode {
        kind: ProxyKind::Sidecar,
        pod: pod.to_owned(),
        namespace: "default".to_owned(),
        ip: "10.0.0.5".to_owned(),
        labels: BTreeMap::new(),
        service_account: "default".to_owned(),
    }
}

/// A scripted proxy: sends exactly what the test says.
struct Proxy {
    requests: mpsc::Sender<v1::DiscoveryRequest>,
    responses: Streaming<v1::DiscoveryResponse>,
    node: Option<v1::Node>,
}

impl Proxy {
    async fn connect(address: SocketAddr, pod: &str) -> Self {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .expect("a valid URL")
            .connect()
            .await
            .expect("connect");
        let mut client = AggregatedDiscoveryServiceClient::new(channel);
        let (requests, mut outbox) = mpsc::channel(16);
        let outgoing = futures_util::stream::poll_fn(move |cx| outbox.poll_recv(cx));
        let responses = client
            .stream_aggregated_resources(outgoing)
            .await
            .expect("stream")
            .into_inner();
        Self {
            requests,
            responses,
            node: Some(node_to_wire(node(pod), "test")),
        }
    }

    async fn send(&mut self, request: v1::DiscoveryRequest) {
        let request = v1::DiscoveryRequest {
            // The node goes on the first request only, as Envoy does.
            node: self.node.take(),
            ..request
        };
        self.requests.send(request).await.expect("stream open");
    }

    async fn subscribe(&mut self, resource_type: ResourceType) {
        self.send(v1::DiscoveryRequest {
            type_url: resource_type.type_url().to_owned(),
            ..Default::default()
        })
        .await;
    }

    async fn ack(&mut self, response: &v1::DiscoveryResponse) {
        self.send(v1::DiscoveryRequest {
            type_url: response.type_url.clone(),
            version_info: response.version_info.clone(),
            response_nonce: response.nonce.clone(),
            ..Default::default()
        })
        .await;
    }

    async fn nack(&mut self, response: &v1::DiscoveryResponse, kept: &str, error: &str) {
        self.send(v1::DiscoveryRequest {
            type_url: response.type_url.clone(),
            version_info: kept.to_owned(),
            response_nonce: response.nonce.clone(),
            error_detail: Some(v1::Status {
                code: 3,
                message: error.to_owned(),
            }),
            ..Default::default()
        })
        .await;
    }

    async fn next(&mut self) -> v1::DiscoveryResponse {
        tokio::time::timeout(Duration::from_secs(5), self.responses.message())
            .await
            .expect("a response in time")
            .expect("no stream error")
            .expect("stream open")
    }

    /// Asserts that nothing arrives for `period`.
    async fn quiet(&mut self, period: Duration) {
        if let Ok(message) = tokio::time::timeout(period, self.responses.message()).await {
            panic!("expected no response, got {message:?}");
        }
    }

    /// Subscribes to the four types and ACKs the initial responses.
    async fn sync(&mut self) -> BTreeMap<ResourceType, v1::DiscoveryResponse> {
        for resource_type in FOUR {
            self.subscribe(resource_type).await;
        }
        let mut responses = BTreeMap::new();
        for _ in FOUR {
            let response = self.next().await;
            self.ack(&response).await;
            let resource_type = ResourceType::from_type_url(&response.type_url).expect("known");
            responses.insert(resource_type, response);
        }
        responses
    }
}

fn names(response: &v1::DiscoveryResponse) -> Vec<&str> {
    response.resources.iter().map(|r| r.name.as_str()).collect()
}

fn all_synced(proxy: &ProxyStatus) -> bool {
    FOUR.iter().all(|t| proxy.sync(*t) == SyncState::Synced)
}

#[tokio::test]
async fn initial_sync_then_acks_make_every_type_synced() {
    let harness = Harness::start().await;
    let mut proxy = Proxy::connect(harness.address, "productpage-v1-1").await;
    for resource_type in FOUR {
        proxy.subscribe(resource_type).await;
    }
    let mut responses = Vec::new();
    for _ in FOUR {
        responses.push(proxy.next().await);
    }
    let types: Vec<&str> = responses.iter().map(|r| r.type_url.as_str()).collect();
    let urls: Vec<&str> = FOUR.iter().map(|t| t.type_url()).collect();
    assert_eq!(types, urls, "answered in subscription order");
    assert_eq!(
        names(&responses[0]),
        ["outbound|9080|v0|productpage-v1-1.default.svc.cluster.local"]
    );
    assert!(
        responses
            .iter()
            .all(|r| !r.version_info.is_empty() && !r.nonce.is_empty())
    );

    // Sent, not acked yet: STALE.
    let stale = harness
        .status_when("productpage-v1-1", |p| {
            FOUR.iter().all(|t| p.sync(*t) == SyncState::Stale)
        })
        .await;
    assert_eq!(stale.version, "test");
    assert_eq!(stale.node, node("productpage-v1-1"));

    for response in &responses {
        proxy.ack(response).await;
    }
    let synced = harness.status_when("productpage-v1-1", all_synced).await;
    let clusters = &synced.types[&ResourceType::Cluster];
    assert_eq!(
        clusters.acked.as_ref().map(|a| &a.version),
        Some(&responses[0].version_info)
    );
    assert_eq!(clusters.sent.as_ref().map(|s| s.resources), Some(1));
    // Nothing generates secrets, and the proxy never asked: NOT SENT.
    assert_eq!(synced.sync(ResourceType::Secret), SyncState::NotSent);
}

#[tokio::test]
async fn a_type_without_generator_is_not_sent_even_when_subscribed() {
    let harness = Harness::start().await;
    let mut proxy = Proxy::connect(harness.address, "details-v1-1").await;
    proxy.subscribe(ResourceType::Secret).await;
    proxy.subscribe(ResourceType::Cluster).await;
    let response = proxy.next().await;
    assert_eq!(response.type_url, ResourceType::Cluster.type_url());
    proxy.ack(&response).await;
    let status = harness
        .status_when("details-v1-1", |p| {
            p.sync(ResourceType::Cluster) == SyncState::Synced
        })
        .await;
    assert_eq!(status.sync(ResourceType::Secret), SyncState::NotSent);
    assert_eq!(status.types[&ResourceType::Secret], TypeStatus::default());
}

#[tokio::test]
async fn a_change_pushes_only_the_types_that_changed() {
    let harness = Harness::start().await;
    let mut proxy = Proxy::connect(harness.address, "reviews-v1-1").await;
    let first = proxy.sync().await;
    harness.status_when("reviews-v1-1", all_synced).await;

    harness.change(|world| world.routes += 1);
    let pushed = proxy.next().await;
    assert_eq!(pushed.type_url, ResourceType::RouteConfiguration.type_url());
    assert_ne!(
        pushed.version_info,
        first[&ResourceType::RouteConfiguration].version_info
    );
    assert_ne!(pushed.nonce, first[&ResourceType::RouteConfiguration].nonce);
    proxy.ack(&pushed).await;
    proxy.quiet(Duration::from_millis(300)).await;

    // Clusters and their endpoints change together, pushed in Envoy's order.
    harness.change(|world| world.clusters += 1);
    let clusters = proxy.next().await;
    let endpoints = proxy.next().await;
    assert_eq!(clusters.type_url, ResourceType::Cluster.type_url());
    assert_eq!(
        endpoints.type_url,
        ResourceType::ClusterLoadAssignment.type_url()
    );
    assert_eq!(
        names(&endpoints),
        ["outbound|9080|v1|reviews-v1-1.default.svc.cluster.local"]
    );
    proxy.ack(&clusters).await;
    proxy.ack(&endpoints).await;
    proxy.quiet(Duration::from_millis(300)).await;
    harness.status_when("reviews-v1-1", all_synced).await;
}

#[tokio::test]
async fn a_burst_of_changes_is_one_push() {
    let harness = Harness::start().await;
    let mut proxy = Proxy::connect(harness.address, "reviews-v2-1").await;
    proxy.sync().await;
    for _ in 0..10 {
        harness.change(|world| world.routes += 1);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pushed = proxy.next().await;
    assert_eq!(pushed.type_url, ResourceType::RouteConfiguration.type_url());
    let Some(v1::resource::Kind::RouteConfiguration(routes)) = &pushed.resources[0].kind else {
        panic!("a route configuration: {pushed:?}");
    };
    assert_eq!(
        routes.virtual_hosts[0].origin, "routes #10",
        "the last snapshot"
    );
    proxy.quiet(Duration::from_millis(400)).await;
}

#[tokio::test]
async fn a_nack_is_recorded_and_the_same_version_is_not_sent_again() {
    let harness = Harness::start().await;
    let mut proxy = Proxy::connect(harness.address, "ratings-v1-1").await;
    let first = proxy.sync().await;
    let good = first[&ResourceType::Cluster].version_info.clone();
    harness.status_when("ratings-v1-1", all_synced).await;

    harness.change(|world| world.clusters += 1);
    let clusters = proxy.next().await;
    let endpoints = proxy.next().await;
    proxy
        .nack(&clusters, &good, "CDS \"x\": lb_policy: unknown value 5")
        .await;
    proxy.ack(&endpoints).await;
    let nacked = harness
        .status_when("ratings-v1-1", |p| {
            matches!(p.sync(ResourceType::Cluster), SyncState::Nacked { .. })
        })
        .await;
    assert_eq!(
        nacked.sync(ResourceType::Cluster),
        SyncState::Nacked {
            error: "CDS \"x\": lb_policy: unknown value 5".to_owned()
        }
    );
    let cds = &nacked.types[&ResourceType::Cluster];
    assert_eq!(
        cds.acked.as_ref().map(|a| a.version.as_str()),
        Some(good.as_str())
    );
    assert_eq!(
        cds.nacked.as_ref().map(|n| n.version.as_str()),
        Some(clusters.version_info.as_str())
    );

    // Another change that leaves clusters as they are: routes go out, the rejected
    // clusters do not.
    harness.change(|world| world.routes += 1);
    let routes = proxy.next().await;
    assert_eq!(routes.type_url, ResourceType::RouteConfiguration.type_url());
    proxy.ack(&routes).await;
    proxy.quiet(Duration::from_millis(300)).await;

    // A stale ACK (an old nonce) changes nothing.
    proxy.ack(&first[&ResourceType::Cluster]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let still = harness
        .status_when("ratings-v1-1", |p| {
            p.sync(ResourceType::RouteConfiguration) == SyncState::Synced
        })
        .await;
    assert!(matches!(
        still.sync(ResourceType::Cluster),
        SyncState::Nacked { .. }
    ));

    // New clusters are sent, and accepted.
    harness.change(|world| world.clusters += 1);
    let clusters = proxy.next().await;
    assert_eq!(clusters.type_url, ResourceType::Cluster.type_url());
    proxy.ack(&clusters).await;
    let healed = harness
        .status_when("ratings-v1-1", |p| {
            p.sync(ResourceType::Cluster) == SyncState::Synced
        })
        .await;
    // The last NACK stays on record.
    assert!(healed.types[&ResourceType::Cluster].nacked.is_some());
}

#[tokio::test]
async fn every_proxy_gets_its_own_resources() {
    let harness = Harness::start().await;
    let mut reviews = Proxy::connect(harness.address, "reviews-v3-1").await;
    let mut ratings = Proxy::connect(harness.address, "ratings-v1-2").await;
    let reviews_first = reviews.sync().await;
    let ratings_first = ratings.sync().await;
    assert_eq!(
        names(&reviews_first[&ResourceType::Cluster]),
        ["outbound|9080|v0|reviews-v3-1.default.svc.cluster.local"]
    );
    assert_eq!(
        names(&ratings_first[&ResourceType::Cluster]),
        ["outbound|9080|v0|ratings-v1-2.default.svc.cluster.local"]
    );
    assert_ne!(
        reviews_first[&ResourceType::Cluster].version_info,
        ratings_first[&ResourceType::Cluster].version_info
    );
    // Shared resources have the same version for both.
    assert_eq!(
        reviews_first[&ResourceType::Listener].version_info,
        ratings_first[&ResourceType::Listener].version_info
    );
    harness.status_when("reviews-v3-1", all_synced).await;
    harness.status_when("ratings-v1-2", all_synced).await;
    let pods: Vec<String> = harness
        .status
        .proxy_status()
        .into_iter()
        .map(|p| p.node.pod)
        .collect();
    assert_eq!(pods, ["ratings-v1-2", "reviews-v3-1"]);

    // A disconnected proxy leaves proxy-status.
    drop(reviews);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while harness.status.proxy_status().len() != 1 {
        assert!(tokio::time::Instant::now() < deadline, "reviews never left");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_stream_without_node_is_refused() {
    let harness = Harness::start().await;
    let mut proxy = Proxy::connect(harness.address, "sleep-1").await;
    proxy.node = None;
    proxy.subscribe(ResourceType::Cluster).await;
    let status = tokio::time::timeout(Duration::from_secs(5), proxy.responses.message())
        .await
        .expect("an answer in time")
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "the first request of a stream must carry the node"
    );
}

#[tokio::test]
async fn shutdown_ends_streams_with_unavailable() {
    let mut harness = Harness::start().await;
    let mut proxy = Proxy::connect(harness.address, "httpbin-1").await;
    proxy.sync().await;
    harness.status_when("httpbin-1", all_synced).await;
    harness
        .shutdown
        .take()
        .expect("running")
        .send(())
        .expect("server running");
    let status = tokio::time::timeout(Duration::from_secs(5), proxy.responses.message())
        .await
        .expect("an answer in time")
        .expect_err("ended");
    assert_eq!(status.code(), tonic::Code::Unavailable);
    let served = tokio::time::timeout(Duration::from_secs(5), &mut harness.server)
        .await
        .expect("the server stops once its streams are closed")
        .expect("no panic");
    assert!(served.is_ok(), "{served:?}");
}
