//! The client over loopback, against a scripted control plane that answers as the
//! test says.

use std::{collections::BTreeMap, net::SocketAddr, pin::Pin};

use futures_util::Stream;
use meshlab_control_api::v1::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use meshlab_control_api::{TypedResource, Wire};
use meshlab_proxy_config::{
    Cluster, ClusterLoadAssignment, Listener, ProxyKind, RouteConfiguration, Secret, SecretKind,
    TrafficDirection,
    route::{Domain, VirtualHost},
};
use tokio::{net::TcpListener, task::JoinHandle, time::timeout};
use tonic::{Request, Response, Status, Streaming, transport::Server};

use super::*;

const WAIT: Duration = Duration::from_secs(5);

/// One stream the scripted control plane accepted.
struct Accepted {
    requests: Streaming<v1::DiscoveryRequest>,
    responses: mpsc::Sender<Result<v1::DiscoveryResponse, Status>>,
}

/// A control plane that hands every stream to the test.
struct Scripted {
    streams: mpsc::Sender<Accepted>,
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for Scripted {
    type StreamAggregatedResourcesStream =
        Pin<Box<dyn Stream<Item = Result<v1::DiscoveryResponse, Status>> + Send>>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<v1::DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let (responses, mut outbox) = mpsc::channel(16);
        let accepted = Accepted {
            requests: request.into_inner(),
            responses,
        };
        self.streams
            .send(accepted)
            .await
            .map_err(|_| Status::unavailable("test over"))?;
        Ok(Response::new(Box::pin(futures_util::stream::poll_fn(
            move |cx| outbox.poll_recv(cx),
        ))))
    }
}

/// A scripted control plane on `address` (port 0 picks one).
struct ControlPlane {
    address: SocketAddr,
    streams: mpsc::Receiver<Accepted>,
    server: JoinHandle<()>,
}

impl ControlPlane {
    async fn start(address: SocketAddr) -> Self {
        let listener = TcpListener::bind(address).await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (streams_tx, streams) = mpsc::channel(4);
        let service = AggregatedDiscoveryServiceServer::new(Scripted {
            streams: streams_tx,
        });
        let server = tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let _ = Server::builder()
                .serve_with_incoming(service, incoming)
                .await;
        });
        Self {
            address,
            streams,
            server,
        }
    }

    async fn accept(&mut self) -> Accepted {
        timeout(WAIT, self.streams.recv())
            .await
            .expect("the client connects in time")
            .expect("server running")
    }

    /// Stops listening (new connections are refused).
    fn stop(self) -> SocketAddr {
        self.server.abort();
        self.address
    }
}

impl Accepted {
    async fn request(&mut self) -> v1::DiscoveryRequest {
        timeout(WAIT, self.requests.message())
            .await
            .expect("a request in time")
            .expect("no stream error")
            .expect("stream open")
    }

    async fn respond<R: Wire>(&mut self, version: &str, nonce: &str, resources: Vec<R>) {
        let response = v1::DiscoveryResponse {
            version_info: version.to_owned(),
            type_url: <R::Message as TypedResource>::TYPE.type_url().to_owned(),
            nonce: nonce.to_owned(),
            resources: resources
                .into_iter()
                .map(|resource| resource.into_message().into_resource())
                .collect(),
        };
        self.send(response).await;
    }

    async fn send(&mut self, response: v1::DiscoveryResponse) {
        self.responses
            .send(Ok(response))
            .await
            .expect("stream open");
    }

    /// Answers the five subscriptions with version `version` of everything (no
    /// secrets).
    async fn sync(&mut self, version: &str) {
        self.respond::<Secret>(version, &format!("{version}-s"), Vec::new())
            .await;
        self.respond(version, &format!("{version}-c"), vec![cluster()])
            .await;
        self.respond(version, &format!("{version}-e"), vec![endpoints()])
            .await;
        self.respond(version, &format!("{version}-l"), vec![listener()])
            .await;
        self.respond(version, &format!("{version}-r"), vec![routes("v1")])
            .await;
        for suffix in ["s", "c", "e", "l", "r"] {
            let ack = self.request().await;
            assert_eq!(ack.response_nonce, format!("{version}-{suffix}"));
            assert_eq!(ack.version_info, version);
            assert_eq!(ack.error_detail, None);
        }
    }
}

fn node() -> ProxyNode {
    ProxyNode {
        kind: ProxyKind::Sidecar,
        pod: "productpage-v1-1".to_owned(),
        namespace: "default".to_owned(),
        ip: "10.0.0.7".to_owned(),
        labels: BTreeMap::from([("app".to_owned(), "productpage".to_owned())]),
        service_account: "bookinfo-productpage".to_owned(),
    }
}

fn settings(address: SocketAddr) -> ClientSettings {
    ClientSettings {
        backoff: Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(100),
        },
        ..ClientSettings::new(format!("http://{address}"), node())
    }
}

const REVIEWS: &str = "outbound|9080||reviews.default.svc.cluster.local";

fn cluster() -> Cluster {
    Cluster::new(REVIEWS)
}

fn endpoints() -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: REVIEWS.to_owned(),
        endpoints: Vec::new(),
    }
}

fn listener() -> Listener {
    Listener {
        name: "virtualOutbound".to_owned(),
        address: "0.0.0.0:15001".parse().unwrap(),
        direction: TrafficDirection::Outbound,
        use_original_dst: true,
        filter_chains: Vec::new(),
        default_filter_chain: None,
    }
}

fn routes(origin: &str) -> RouteConfiguration {
    RouteConfiguration {
        name: "9080".to_owned(),
        virtual_hosts: vec![VirtualHost::allow_any(origin)],
        ignore_port_in_host_matching: false,
    }
}

/// Starts a client against `address`; returns its receivers and task.
fn client(
    address: SocketAddr,
) -> (
    watch::Receiver<Arc<ProxyConfig>>,
    watch::Receiver<ClientStatus>,
    JoinHandle<()>,
) {
    let client = DiscoveryClient::new(settings(address), ProxyConfig::default()).expect("valid");
    let (config, status) = (client.config(), client.status());
    (config, status, tokio::spawn(client.run()))
}

async fn status_when(
    status: &mut watch::Receiver<ClientStatus>,
    ready: impl FnMut(&ClientStatus) -> bool,
) -> ClientStatus {
    timeout(WAIT, status.wait_for(ready))
        .await
        .expect("status in time")
        .expect("client running")
        .clone()
}

#[tokio::test]
async fn subscribes_in_envoy_order_applies_acks_and_publishes_once_complete() {
    let mut control = ControlPlane::start("127.0.0.1:0".parse().unwrap()).await;
    let (mut config, mut status, task) = client(control.address);
    let mut stream = control.accept().await;

    let mut subscriptions = Vec::new();
    for _ in 0..5 {
        subscriptions.push(stream.request().await);
    }
    let node = subscriptions[0]
        .node
        .as_ref()
        .expect("node on the first request");
    assert_eq!(
        node.id,
        "sidecar~10.0.0.7~productpage-v1-1.default~default.svc.cluster.local"
    );
    assert_eq!(node.version, env!("CARGO_PKG_VERSION"));
    assert!(subscriptions[1..].iter().all(|s| s.node.is_none()));
    let order: Vec<&str> = subscriptions.iter().map(|s| s.type_url.as_str()).collect();
    assert_eq!(
        order,
        [
            ResourceType::Secret.type_url(),
            ResourceType::Cluster.type_url(),
            ResourceType::ClusterLoadAssignment.type_url(),
            ResourceType::Listener.type_url(),
            ResourceType::RouteConfiguration.type_url(),
        ]
    );
    assert!(
        subscriptions
            .iter()
            .all(|s| s.version_info.is_empty() && s.response_nonce.is_empty())
    );

    // Four of five types answered: nothing published yet.
    stream.respond::<Secret>("1", "s", Vec::new()).await;
    stream.respond("1", "a", vec![cluster()]).await;
    stream.respond("1", "b", vec![endpoints()]).await;
    stream.respond("1", "c", vec![listener()]).await;
    for _ in 0..4 {
        stream.request().await;
    }
    assert!(!config.has_changed().expect("client running"));

    stream.respond("1", "d", vec![routes("first")]).await;
    let ack = stream.request().await;
    assert_eq!(
        (ack.version_info.as_str(), ack.response_nonce.as_str()),
        ("1", "d")
    );
    timeout(WAIT, config.changed())
        .await
        .expect("published")
        .expect("running");
    let applied = Arc::clone(&config.borrow_and_update());
    assert_eq!(applied.clusters.keys().collect::<Vec<_>>(), [REVIEWS]);
    assert_eq!(applied.endpoints.keys().collect::<Vec<_>>(), [REVIEWS]);
    assert_eq!(
        applied.listeners.keys().collect::<Vec<_>>(),
        ["virtualOutbound"]
    );
    assert_eq!(applied.routes["9080"], routes("first"));

    let synced = status_when(&mut status, |s| {
        s.types.values().all(|t| t.acked.as_deref() == Some("1"))
    })
    .await;
    assert!(synced.connected);
    assert_eq!(synced.connections, 1);

    // Each later response is applied and published on its own.
    stream.respond("2", "e", vec![routes("second")]).await;
    stream.request().await;
    timeout(WAIT, config.changed())
        .await
        .expect("published")
        .expect("running");
    assert_eq!(config.borrow_and_update().routes["9080"], routes("second"));
    task.abort();
}

#[tokio::test]
async fn a_bad_response_is_nacked_and_the_last_good_config_kept() {
    let mut control = ControlPlane::start("127.0.0.1:0".parse().unwrap()).await;
    let (mut config, mut status, task) = client(control.address);
    let mut stream = control.accept().await;
    for _ in 0..5 {
        stream.request().await;
    }
    stream.sync("1").await;
    timeout(WAIT, config.changed())
        .await
        .expect("published")
        .expect("running");
    let good = Arc::clone(&config.borrow_and_update());

    // A regex that does not compile: refused by the wire contract.
    let mut broken = routes("broken").into_message();
    broken.virtual_hosts[0].routes[0]
        .r#match
        .as_mut()
        .expect("a match")
        .path_specifier = Some(v1::route_match::PathSpecifier::SafeRegex("(".to_owned()));
    stream
        .send(v1::DiscoveryResponse {
            version_info: "2".to_owned(),
            type_url: ResourceType::RouteConfiguration.type_url().to_owned(),
            nonce: "bad-regex".to_owned(),
            resources: vec![broken.into_resource()],
        })
        .await;
    let nack = stream.request().await;
    assert_eq!(nack.response_nonce, "bad-regex");
    assert_eq!(nack.version_info, "1", "the version still served");
    let error = nack.error_detail.expect("a NACK");
    assert_eq!(error.code, i32::from(tonic::Code::InvalidArgument));
    assert!(
        error.message.starts_with(
            "RDS \"9080\": virtual_hosts[0].routes[0].match.safe_regex: invalid regex"
        ),
        "{}",
        error.message
    );

    // Two virtual hosts claiming one domain: refused by the route table's checks.
    let mut duplicate = routes("duplicate");
    duplicate.virtual_hosts.push(VirtualHost {
        name: "again".to_owned(),
        ..VirtualHost::allow_any("duplicate")
    });
    stream.respond("3", "duplicate", vec![duplicate]).await;
    let nack = stream.request().await;
    assert_eq!(nack.version_info, "1");
    let message = nack.error_detail.expect("a NACK").message;
    assert!(
        message.contains("domain \"*\" is already served"),
        "{message}"
    );

    let nacked = status_when(&mut status, |s| {
        s.types[&ResourceType::RouteConfiguration].nacked.is_some()
    })
    .await;
    let routes_sync = &nacked.types[&ResourceType::RouteConfiguration];
    assert_eq!(routes_sync.acked.as_deref(), Some("1"));
    assert_eq!(
        routes_sync.nacked.as_ref().map(|(v, _)| v.as_str()),
        Some("3")
    );
    assert!(
        !config.has_changed().expect("client running"),
        "nothing published"
    );
    assert_eq!(*config.borrow(), good);

    // A good version afterwards is taken.
    stream.respond("4", "good", vec![routes("fixed")]).await;
    let ack = stream.request().await;
    assert_eq!((ack.version_info.as_str(), ack.error_detail), ("4", None));
    timeout(WAIT, config.changed())
        .await
        .expect("published")
        .expect("running");
    assert_eq!(config.borrow().routes["9080"], routes("fixed"));
    task.abort();
}

#[tokio::test]
async fn reconnects_after_a_control_plane_restart_and_resyncs() {
    let mut control = ControlPlane::start("127.0.0.1:0".parse().unwrap()).await;
    let (mut config, mut status, task) = client(control.address);
    let mut stream = control.accept().await;
    for _ in 0..5 {
        stream.request().await;
    }
    stream.sync("1").await;
    timeout(WAIT, config.changed())
        .await
        .expect("published")
        .expect("running");
    let before = Arc::clone(&config.borrow_and_update());

    // The control plane goes away: the stream ends, the listener is gone.
    stream
        .responses
        .send(Err(Status::unavailable(
            "the control plane is shutting down",
        )))
        .await
        .expect("stream open");
    drop(stream);
    let address = control.stop();
    status_when(&mut status, |s| !s.connected).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(*config.borrow(), before, "the last configuration is kept");

    // It comes back on the same address.
    let mut control = ControlPlane::start(address).await;
    let mut stream = control.accept().await;
    let mut subscriptions = Vec::new();
    for _ in 0..5 {
        subscriptions.push(stream.request().await);
    }
    assert!(subscriptions[0].node.is_some(), "the node again");
    assert!(
        subscriptions
            .iter()
            .all(|s| s.version_info == "1" && s.response_nonce.is_empty()),
        "re-subscribed with the versions it runs: {subscriptions:?}"
    );
    // Same versions: ACKed, not applied or published again.
    stream.sync("1").await;
    let resynced = status_when(&mut status, |s| s.connections == 2 && s.connected).await;
    assert!(resynced.types.values().all(|t| t.applied == 1));
    assert!(!config.has_changed().expect("client running"));

    // A change on the new control plane flows as before.
    stream
        .respond("2", "new", vec![routes("after restart")])
        .await;
    stream.request().await;
    timeout(WAIT, config.changed())
        .await
        .expect("published")
        .expect("running");
    assert_eq!(config.borrow().routes["9080"], routes("after restart"));
    task.abort();
}

#[test]
fn backoff_grows_to_its_cap_with_jitter() {
    let backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(1000),
    };
    let ms = |attempt, random| backoff.delay(attempt, random).as_millis();
    // Between half and all of the ceiling: 100, 200, 400, 800, then 1000 for ever.
    assert_eq!((ms(0, 0), ms(0, 50)), (50, 100));
    assert_eq!((ms(1, 0), ms(1, 100)), (100, 200));
    assert_eq!((ms(3, 0), ms(3, 400)), (400, 800));
    assert_eq!((ms(4, 0), ms(4, 500)), (500, 1000));
    assert_eq!((ms(u32::MAX, 0), ms(u32::MAX, 500)), (500, 1000));
    assert!((0..1000).all(|r| (500..=1000).contains(&ms(9, r * 7919))));
}

#[test]
fn proxy_config_takes_whole_types_and_refuses_secrets() {
    let mut config = ProxyConfig::default();
    config
        .apply(Resources::Clusters(vec![
            cluster(),
            Cluster::new("PassthroughCluster"),
        ]))
        .expect("clusters");
    config
        .apply(Resources::Clusters(vec![Cluster::new(
            "PassthroughCluster",
        )]))
        .expect("clusters");
    assert_eq!(
        config.clusters.keys().collect::<Vec<_>>(),
        ["PassthroughCluster"]
    );
    let mut unreachable = routes("x");
    unreachable.virtual_hosts[0].domains = Vec::new();
    let error = config
        .apply(Resources::RouteConfigurations(vec![unreachable]))
        .expect_err("no domains");
    assert!(
        error.to_string().contains("virtual host has no domains"),
        "{error}"
    );
    assert!(config.routes.is_empty());
    let secret = Secret {
        name: Secret::ca_name("client-credential"),
        kind: SecretKind::ValidationContext {
            trusted_ca: "-----BEGIN CERTIFICATE-----".into(),
        },
    };
    config
        .apply(Resources::Secrets(vec![secret.clone()]))
        .expect("secrets");
    assert_eq!(
        config.secrets.get("kubernetes://client-credential-cacert"),
        Some(&secret)
    );
    config.apply(Resources::Secrets(Vec::new())).expect("none");
    assert!(config.secrets.is_empty(), "a response is the whole set");
    assert_eq!(Domain::new("*"), Domain::Any);
}

#[test]
fn an_invalid_endpoint_is_refused_up_front() {
    let error = DiscoveryClient::new(
        ClientSettings::new("not a url", node()),
        ProxyConfig::default(),
    )
    .expect_err("invalid");
    assert_eq!(
        error.to_string(),
        "invalid control plane address \"not a url\""
    );
    assert_eq!(default_endpoint(), "http://meshlab-control:15010");
}
