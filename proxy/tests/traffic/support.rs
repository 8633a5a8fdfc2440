//! Building configurations, starting proxies and upstreams, and sending requests.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshlab_proxy::{AccessLogSink, ProxyOptions, Sidecar};
use meshlab_proxy_config::route::{
    Action, ClusterSpecifier, Domain, HeaderMatch, HeaderMatcher, PathMatch, Route, RouteAction,
    RouteConfiguration, RouteMatch, VirtualHost,
};
use meshlab_proxy_config::{
    ChainMatch, Cluster, ClusterLoadAssignment, Endpoint, EndpointAddress, FilterChain,
    HttpConnectionManager, Listener, NetworkFilter, ProxyConfig, ProxyKind, ProxyNode, TcpProxy,
    TrafficDirection,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// The outbound cluster name of a Bookinfo-style service.
pub fn outbound(port: u16, subset: &str, host: &str) -> String {
    format!("outbound|{port}|{subset}|{host}")
}

// === configuration ===

/// A `ProxyConfig` under construction.
#[derive(Default)]
pub struct Config(pub ProxyConfig);

impl Config {
    /// Adds a listener on 127.0.0.1:`port` (0: any) whose default chain runs `filter`.
    pub fn listener(
        mut self,
        name: &str,
        port: u16,
        direction: TrafficDirection,
        use_original_dst: bool,
        filter: NetworkFilter,
    ) -> Self {
        self.0.listeners.insert(
            name.to_owned(),
            Listener {
                name: name.to_owned(),
                address: SocketAddr::from(([127, 0, 0, 1], port)),
                direction,
                use_original_dst,
                filter_chains: Vec::new(),
                default_filter_chain: Some(FilterChain {
                    name: format!("{name}-default"),
                    matcher: ChainMatch::default(),
                    filter,
                    tls: None,
                }),
            },
        );
        self
    }

    /// An outbound HTTP listener using route configuration `route`.
    pub fn http(self, name: &str, route: &str) -> Self {
        self.listener(name, 0, TrafficDirection::Outbound, false, hcm(route))
    }

    /// Adds a route configuration.
    pub fn routes(mut self, name: &str, virtual_hosts: Vec<VirtualHost>) -> Self {
        self.0.routes.insert(
            name.to_owned(),
            RouteConfiguration {
                name: name.to_owned(),
                virtual_hosts,
                ignore_port_in_host_matching: false,
            },
        );
        self
    }

    /// Adds a cluster with these endpoints.
    pub fn cluster(mut self, cluster: Cluster, endpoints: &[SocketAddr]) -> Self {
        let endpoints = endpoints
            .iter()
            .map(|addr| Endpoint {
                address: EndpointAddress::Socket(*addr),
                labels: BTreeMap::new(),
                weight: 1,
                service_account: None,
                has_sidecar: false,
            })
            .collect();
        self.0.endpoints.insert(
            cluster.name.clone(),
            ClusterLoadAssignment {
                cluster_name: cluster.name.clone(),
                endpoints,
            },
        );
        self.0.clusters.insert(cluster.name.clone(), cluster);
        self
    }
}

/// An HTTP connection manager using route configuration `route`.
pub fn hcm(route: &str) -> NetworkFilter {
    NetworkFilter::HttpConnectionManager(HttpConnectionManager {
        stat_prefix: format!("outbound_0.0.0.0_{route}"),
        route_config_name: route.to_owned(),
        authorization: None,
    })
}

/// A TCP proxy to `cluster`.
pub fn tcp_proxy(cluster: &str) -> NetworkFilter {
    NetworkFilter::TcpProxy(TcpProxy {
        stat_prefix: cluster.to_owned(),
        cluster: cluster.to_owned(),
        weighted_clusters: Vec::new(),
        authorization: None,
    })
}

/// A virtual host for `domains`.
pub fn vhost(name: &str, domains: &[&str], routes: Vec<Route>) -> VirtualHost {
    VirtualHost {
        name: name.to_owned(),
        domains: domains.iter().map(|d| Domain::new(d)).collect(),
        routes,
        origin: String::new(),
    }
}

/// Forwarding to `cluster` with nothing else set.
pub fn to(cluster: &str) -> RouteAction {
    RouteAction {
        cluster: ClusterSpecifier::Cluster(cluster.to_owned()),
        timeout: None,
        retry: None,
        rewrite: None,
        host_rewrite: None,
        mirrors: Vec::new(),
        hash_policy: Vec::new(),
    }
}

/// A route matching path prefix `prefix`.
pub fn route(name: &str, prefix: &str, action: RouteAction) -> Route {
    Route::new(
        name,
        RouteMatch::path(PathMatch::Prefix(prefix.to_owned())),
        Action::Route(action),
    )
}

/// A route matching header `name: value` exactly.
pub fn header_route(route_name: &str, name: &str, value: &str, action: RouteAction) -> Route {
    let matcher = RouteMatch::path(PathMatch::Prefix("/".to_owned())).with_header(HeaderMatcher {
        name: name.to_owned(),
        kind: HeaderMatch::Exact(value.to_owned()),
        invert: false,
        treat_missing_as_empty: false,
    });
    Route::new(route_name, matcher, Action::Route(action))
}

// === proxies ===

/// The node tests run as.
pub fn node() -> ProxyNode {
    ProxyNode {
        kind: ProxyKind::Sidecar,
        pod: "productpage-v1-6b746f74dc-9stvs".to_owned(),
        namespace: "default".to_owned(),
        ip: "127.0.0.1".to_owned(),
        labels: BTreeMap::from([
            ("app".to_owned(), "productpage".to_owned()),
            ("version".to_owned(), "v1".to_owned()),
        ]),
        service_account: "bookinfo-productpage".to_owned(),
    }
}

/// A running proxy, its configuration channel and its access log.
pub struct Proxy {
    pub sidecar: Sidecar,
    configs: watch::Sender<Arc<ProxyConfig>>,
    log: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Proxy {
    /// Starts a proxy on ephemeral admin ports and applies `config`.
    pub async fn start(config: Config) -> Self {
        Self::start_with(config, |_| {}).await
    }

    /// As [`Proxy::start`], with changed options.
    pub async fn start_with(config: Config, tweak: impl FnOnce(&mut ProxyOptions)) -> Self {
        let mut proxy = Self::idle(tweak).await;
        proxy.apply(config).await;
        proxy
    }

    /// Starts a proxy that has no configuration yet.
    pub async fn idle(tweak: impl FnOnce(&mut ProxyOptions)) -> Self {
        let mut options = ProxyOptions::new(node());
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        options.admin_address = any;
        options.readiness_address = any;
        options.metrics_address = any;
        let (lines, log) = mpsc::unbounded_channel();
        options.access_log = AccessLogSink::Channel(lines);
        tweak(&mut options);
        let (configs, receiver) = watch::channel(Arc::new(ProxyConfig::default()));
        let sidecar = Sidecar::start(options, receiver)
            .await
            .expect("proxy starts");
        Self {
            sidecar,
            configs,
            log,
            seen: Vec::new(),
        }
    }

    /// Sends `config` and waits until the proxy runs it.
    pub async fn apply(&mut self, config: Config) {
        let expected = serde_json::to_value(&config.0).unwrap();
        let names: Vec<String> = config.0.listeners.keys().cloned().collect();
        self.configs.send_replace(Arc::new(config.0));
        for name in names {
            tokio::time::timeout(Duration::from_secs(5), self.sidecar.listener_addr(&name))
                .await
                .unwrap_or_else(|_| panic!("listener {name} is bound"));
        }
        for _ in 0..500 {
            let (_, dump) = self.admin("/config_dump").await;
            if serde_json::from_str::<serde_json::Value>(&dump)
                .ok()
                .as_ref()
                == Some(&expected)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the proxy never applied the configuration");
    }

    /// Where listener `name` listens.
    pub async fn addr(&self, name: &str) -> SocketAddr {
        self.sidecar.listener_addr(name).await
    }

    /// GETs `path` from the admin interface: status and body.
    pub async fn admin(&self, path: &str) -> (u16, String) {
        let response = get(self.sidecar.admin_addr(), "localhost", path, &[]).await;
        (response.status, response.body)
    }

    /// The next access log line containing `needle` (waiting up to 5 s).
    pub async fn log_line(&mut self, needle: &str) -> String {
        if let Some(found) = self.seen.iter().position(|line| line.contains(needle)) {
            return self.seen.remove(found);
        }
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.log.recv()).await {
                Ok(Some(line)) if line.contains(needle) => return line,
                Ok(Some(line)) => self.seen.push(line),
                _ => panic!(
                    "no access log line contains {needle:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}

/// A port that was free a moment ago.
pub async fn free_port() -> u16 {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    socket.local_addr().unwrap().port()
}

// === upstreams ===

/// Serves `router` on an ephemeral port.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(meshlab_apps::serve(socket, router));
    addr
}

/// go-httpbin's shapes.
pub async fn httpbin() -> SocketAddr {
    serve(meshlab_apps::httpbin::router()).await
}

/// Bookinfo's reviews without ratings, reporting `podname`.
pub async fn reviews(podname: &str) -> SocketAddr {
    serve(meshlab_apps::reviews::router(
        meshlab_apps::reviews::Config {
            ratings_enabled: false,
            star_color: "black".to_owned(),
            ratings: "http://127.0.0.1:1".to_owned(),
            podname: podname.to_owned(),
            clustername: None,
        },
    ))
    .await
}

/// Bookinfo's ratings in the given variant.
pub async fn ratings(version: meshlab_apps::ratings::Version) -> SocketAddr {
    serve(meshlab_apps::ratings::router(
        meshlab_apps::ratings::Config { version },
    ))
    .await
}

/// A server that answers every request with `status`.
pub async fn always(status: u16) -> SocketAddr {
    let code = http::StatusCode::from_u16(status).unwrap();
    serve(axum::Router::new().fallback(move || async move { (code, "always\n") })).await
}

/// An address nothing listens on.
pub async fn dead() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port().await))
}

/// A TCP server that echoes what it reads.
pub async fn echo() -> SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = socket.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buffer).await {
                    if n == 0 || stream.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

// === clients ===

/// What a client saw.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

/// A keep-alive HTTP/1.1 connection.
pub struct Client(http1::SendRequest<Empty<Bytes>>);

impl Client {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        Self(sender)
    }

    /// GETs `path` from `host`.
    pub async fn get(&mut self, host: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = Request::get(path).header("host", host);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.0.ready().await.unwrap();
        let response = self
            .0
            .send_request(request.body(Empty::new()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Answer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}

/// GETs `path` from `host` at `addr` on a fresh connection.
pub async fn get(addr: SocketAddr, host: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    Client::connect(addr).await.get(host, path, headers).await
}

/// GETs `http://{authority}{path}` at `addr` over HTTP/2 (prior knowledge).
pub async fn get_h2(addr: SocketAddr, authority: &str, path: &str) -> Answer {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::get(format!("http://{authority}{path}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Counts answers by a key.
pub fn tally<K: std::hash::Hash + Eq>(keys: impl IntoIterator<Item = K>) -> HashMap<K, usize> {
    let mut counts = HashMap::new();
    for key in keys {
        *counts.entry(key).or_default() += 1;
    }
    counts
}

/// The value of stat `name` in Envoy's `/stats` text.
pub fn stat(stats: &str, name: &str) -> Option<u64> {
    stats
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": ")?.parse().ok())
}
