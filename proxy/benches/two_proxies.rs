//! Sidecar benchmark: RSS idle and under load, and the latency two proxies add.
//!
//! Run with `cargo bench -p meshlab-proxy --bench two_proxies` (defaults: 1000
//! requests/s for 10 s, access log off), or with arguments after `--`:
//! `cargo bench -p meshlab-proxy --bench two_proxies -- run 1000 10 on`.
//!
//! `run [rps] [secs]` starts, as child processes of itself, an upstream
//! (1 KB answers), a server-side proxy (inbound listener → upstream) and a
//! client-side proxy (outbound listener → server proxy), then drives two
//! open-loop loads at `rps` each, at the same time: direct to the upstream, and
//! through both proxies. Latency is measured from each request's scheduled start
//! (no coordinated omission).
//!
//! `BENCH_MTLS=on` makes the two proxies speak mesh mTLS (ISTIO_MUTUAL, SPIFFE
//! certificates from a CA generated for the run); `BENCH_NEW_CONNECTIONS=on` makes
//! every request open a new proxy-to-proxy connection (`maxRequestsPerConnection:
//! 1`), so CPU per request is the cost of a new (mTLS) connection.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1;
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshlab_proxy::{AccessLogSink, ProxyOptions};
use meshlab_proxy_config::route::{
    Action, ClusterSpecifier, Domain, PathMatch, RetryPolicy, Route, RouteAction,
    RouteConfiguration, RouteMatch, VirtualHost,
};
use meshlab_proxy_config::{
    ChainMatch, Cluster, ClusterLoadAssignment, DownstreamTls, Endpoint, EndpointAddress,
    FilterChain, HttpConnectionManager, Listener, NetworkFilter, ProxyConfig, ProxyKind, ProxyNode,
    TlsMode, TrafficDirection, UpstreamTls,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, watch};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Proxies run on one thread, as `meshlab run proxy` runs them;
    // `BENCH_PROXY_RUNTIME=multi` compares with a multi-threaded runtime.
    let current = std::env::var("BENCH_PROXY_RUNTIME").as_deref() != Ok("multi")
        && args.get(1).map(String::as_str) == Some("proxy");
    let runtime = if current {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    runtime.unwrap().block_on(real_main(args));
}

async fn real_main(args: Vec<String>) {
    // `cargo bench` passes `--bench`; anything else is ours.
    let args: Vec<String> = args.into_iter().filter(|a| a != "--bench").collect();
    match args.get(1).map(String::as_str) {
        Some("upstream") => upstream(args[2].parse().unwrap()).await,
        Some("proxy") => {
            proxy(
                &args[2],
                args[3].parse().unwrap(),
                args[4].parse().unwrap(),
                args[5].parse().unwrap(),
                &args[6],
            )
            .await;
        }
        None | Some("run") => {
            let rps: u64 = args.get(2).map_or(1000, |a| a.parse().unwrap());
            let secs: u64 = args.get(3).map_or(10, |a| a.parse().unwrap());
            let log = args.get(4).cloned().unwrap_or_else(|| "off".to_owned());
            run(rps, secs, &log).await;
        }
        Some(other) => {
            eprintln!("unknown mode {other:?}; usage: two_proxies [run [rps] [secs] [log on|off]]");
        }
    }
}

async fn upstream(port: u16) {
    let socket = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let body = Bytes::from(vec![b'x'; 1024]);
    loop {
        let (stream, _) = socket.accept().await.unwrap();
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |_req| {
                let body = body.clone();
                async move { Ok::<_, Infallible>(hyper::Response::new(Full::new(body))) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn config(
    direction: TrafficDirection,
    listen: u16,
    cluster: &str,
    target: SocketAddr,
) -> ProxyConfig {
    let mut config = ProxyConfig::default();
    let route_name = "8080".to_owned();
    config.listeners.insert(
        "main".to_owned(),
        Listener {
            name: "main".to_owned(),
            address: SocketAddr::from(([127, 0, 0, 1], listen)),
            direction,
            use_original_dst: false,
            filter_chains: Vec::new(),
            default_filter_chain: Some(FilterChain {
                name: "main".to_owned(),
                matcher: ChainMatch::default(),
                filter: NetworkFilter::HttpConnectionManager(HttpConnectionManager {
                    stat_prefix: "main".to_owned(),
                    route_config_name: route_name.clone(),
                    authorization: None,
                }),
                tls: None,
            }),
        },
    );
    let action = RouteAction {
        cluster: ClusterSpecifier::Cluster(cluster.to_owned()),
        timeout: None,
        retry: Some(RetryPolicy::istio_default()),
        rewrite: None,
        host_rewrite: None,
        mirrors: Vec::new(),
        hash_policy: Vec::new(),
    };
    let mut route = Route::new(
        "default",
        RouteMatch::path(PathMatch::Prefix("/".to_owned())),
        Action::Route(action),
    );
    route.decorator = Some("svc.default.svc.cluster.local:8080/*".to_owned());
    config.routes.insert(
        route_name.clone(),
        RouteConfiguration {
            name: route_name,
            virtual_hosts: vec![VirtualHost {
                name: "svc".to_owned(),
                domains: vec![
                    Domain::new("svc"),
                    Domain::new("svc:8080"),
                    Domain::new("*"),
                ],
                routes: vec![route],
                origin: String::new(),
            }],
            ignore_port_in_host_matching: false,
        },
    );
    let mut upstream = Cluster::new(cluster);
    if direction == TrafficDirection::Outbound {
        if std::env::var_os("BENCH_MTLS_DIR").is_some() {
            upstream.tls = Some(UpstreamTls {
                mode: TlsMode::IstioMutual,
                sni: Some("outbound_.8080_._.svc.default.svc.cluster.local".to_owned()),
                subject_alt_names: vec![spiffe("server")],
                auto_mtls: false,
                certificate: None,
                trusted_ca: None,
            });
        }
        if std::env::var("BENCH_NEW_CONNECTIONS").as_deref() == Ok("on") {
            upstream.circuit_breakers.max_requests_per_connection = Some(1);
        }
    } else if std::env::var_os("BENCH_MTLS_DIR").is_some()
        && let Some(listener) = config.listeners.get_mut("main")
        && let Some(chain) = &mut listener.default_filter_chain
    {
        chain.tls = Some(DownstreamTls {
            certificate: "default".to_owned(),
            require_client_certificate: true,
            trusted_ca: None,
        });
    }
    config.clusters.insert(cluster.to_owned(), upstream);
    config.endpoints.insert(
        cluster.to_owned(),
        ClusterLoadAssignment {
            cluster_name: cluster.to_owned(),
            endpoints: vec![Endpoint {
                address: EndpointAddress::Socket(target),
                labels: BTreeMap::from([("app".to_owned(), "svc".to_owned())]),
                weight: 1,
                service_account: None,
                has_sidecar: true,
            }],
        },
    );
    config
}

async fn proxy(kind: &str, listen: u16, target: SocketAddr, admin: u16, log: &str) {
    let node = ProxyNode {
        kind: ProxyKind::Sidecar,
        pod: format!("{kind}-v1-abc-def"),
        namespace: "default".to_owned(),
        ip: "127.0.0.1".to_owned(),
        labels: BTreeMap::from([("app".to_owned(), kind.to_owned())]),
        service_account: "default".to_owned(),
    };
    let mut options = ProxyOptions::new(node);
    options.admin_address = SocketAddr::from(([127, 0, 0, 1], admin));
    options.readiness_address = SocketAddr::from(([127, 0, 0, 1], 0));
    options.metrics_address = SocketAddr::from(([127, 0, 0, 1], 0));
    options.access_log = if log == "on" {
        AccessLogSink::Stdout
    } else {
        AccessLogSink::Off
    };
    let (direction, cluster) = if kind == "client" {
        (
            TrafficDirection::Outbound,
            "outbound|8080||svc.default.svc.cluster.local",
        )
    } else {
        (TrafficDirection::Inbound, "inbound|8080||")
    };
    if let Some(dir) = std::env::var_os("BENCH_MTLS_DIR") {
        let dir = std::path::PathBuf::from(dir);
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
        let identity = meshlab_proxy::Identity::new(spiffe(kind));
        identity
            .install(
                &String::from_utf8(read(&format!("{kind}.pem"))).unwrap(),
                read(&format!("{kind}.key")),
                &String::from_utf8(read("root.pem")).unwrap(),
            )
            .unwrap();
        options.identity = Some(identity);
    }
    let (configs, receiver) = watch::channel(Arc::new(ProxyConfig::default()));
    let running = tokio::spawn(meshlab_proxy::run(options, receiver));
    tokio::time::sleep(Duration::from_millis(50)).await;
    configs.send_replace(Arc::new(config(direction, listen, cluster, target)));
    running.await.unwrap().unwrap();
    drop(configs);
}

/// User + system CPU time of a process, in clock ticks (10 ms).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields
        .get(11)
        .and_then(|u| u.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_ready(admin: u16) {
    for _ in 0..500 {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", admin)).await {
            let (mut sender, conn) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            let request = hyper::Request::get("/ready")
                .header("host", "localhost")
                .body(Empty::new())
                .unwrap();
            if let Ok(response) = sender.send_request(request).await
                && response.status() == 200
            {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("proxy on admin {admin} never ready");
}

fn spiffe(kind: &str) -> String {
    format!("spiffe://cluster.local/ns/default/sa/{kind}")
}

/// A CA and certificates for the client and server proxies, in a scratch directory.
fn mesh_certificates() -> std::path::PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let dir = std::env::temp_dir().join(format!("meshlab-bench-mtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let root = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("root.pem"), root.pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    for kind in ["client", "server"] {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![SanType::URI(spiffe(kind).try_into().unwrap())];
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{kind}.pem")), cert.pem() + &root.pem()).unwrap();
        std::fs::write(dir.join(format!("{kind}.key")), key.serialize_der()).unwrap();
    }
    dir
}

async fn run(rps: u64, secs: u64, log: &str) {
    let exe = std::env::current_exe().unwrap();
    let mtls = (std::env::var("BENCH_MTLS").as_deref() == Ok("on")).then(mesh_certificates);
    if let Some(dir) = &mtls {
        println!(
            "mesh mTLS between the proxies (certificates in {})",
            dir.display()
        );
    }
    let mtls_env: Vec<(&str, std::ffi::OsString)> = mtls
        .iter()
        .map(|dir| ("BENCH_MTLS_DIR", dir.as_os_str().to_owned()))
        .collect();
    let (up, a, b, admin_a, admin_b) = (
        free_port().await,
        free_port().await,
        free_port().await,
        free_port().await,
        free_port().await,
    );
    let stdio = || {
        if log == "on" {
            std::process::Stdio::null()
        } else {
            std::process::Stdio::inherit()
        }
    };
    let mut children = Vec::new();
    children.push(
        tokio::process::Command::new(&exe)
            .args(["upstream", &up.to_string()])
            .kill_on_drop(true)
            .spawn()
            .unwrap(),
    );
    let server = tokio::process::Command::new(&exe)
        .args([
            "proxy",
            "server",
            &b.to_string(),
            &format!("127.0.0.1:{up}"),
            &admin_b.to_string(),
            log,
        ])
        .envs(mtls_env.clone())
        .stdout(stdio())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = tokio::process::Command::new(&exe)
        .args([
            "proxy",
            "client",
            &a.to_string(),
            &format!("127.0.0.1:{b}"),
            &admin_a.to_string(),
            log,
        ])
        .envs(mtls_env)
        .stdout(stdio())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (client_pid, server_pid) = (client.id().unwrap(), server.id().unwrap());
    children.push(server);
    children.push(client);
    wait_ready(admin_a).await;
    wait_ready(admin_b).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "idle RSS: client proxy {} kB, server proxy {} kB",
        rss_kb(client_pid),
        rss_kb(server_pid)
    );

    // Warm up both paths.
    let direct = SocketAddr::from(([127, 0, 0, 1], up));
    let meshed = SocketAddr::from(([127, 0, 0, 1], a));
    let _ = load(direct, rps, 1).await;
    let _ = load(meshed, rps, 1).await;

    let sampler = tokio::spawn(async move {
        let mut max = (0, 0);
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            max.0 = max.0.max(rss_kb(client_pid));
            max.1 = max.1.max(rss_kb(server_pid));
            if max.0 == 0 {
                return max;
            }
            if tokio::time::Instant::now().elapsed() > Duration::from_secs(3600) {
                return max;
            }
        }
    });
    let cpu_before = (cpu_ticks(client_pid), cpu_ticks(server_pid));
    let (d, m) = tokio::join!(load(direct, rps, secs), load(meshed, rps, secs));
    let cpu = (
        cpu_ticks(client_pid) - cpu_before.0,
        cpu_ticks(server_pid) - cpu_before.1,
    );
    let per_request = |ticks: u64| ticks as f64 * 10_000.0 / (rps * secs) as f64;
    println!(
        "CPU per request: client proxy {:.0} µs, server proxy {:.0} µs",
        per_request(cpu.0),
        per_request(cpu.1)
    );
    sampler.abort();
    println!(
        "RSS under load: client proxy {} kB, server proxy {} kB",
        rss_kb(client_pid),
        rss_kb(server_pid)
    );
    report("direct", &d, secs);
    report("2 proxies", &m, secs);
    let pct = |v: &Vec<u32>, p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    for (name, p) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
        println!(
            "added {name}: {:.3} ms",
            (pct(&m.0, p) as f64 - pct(&d.0, p) as f64) / 1000.0
        );
    }
    drop(children);
}

fn report(name: &str, (latencies, errors): &(Vec<u32>, u64), secs: u64) {
    let v = latencies;
    let pct = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)] as f64 / 1000.0;
    println!(
        "{name:>10}: {} ok, {errors} errors, {:.0} rps, p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        v.len(),
        v.len() as f64 / secs as f64,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
}

/// Open-loop load at `rps` for `secs` over a pool of keep-alive connections;
/// sorted latencies in µs and the error count.
async fn load(addr: SocketAddr, rps: u64, secs: u64) -> (Vec<u32>, u64) {
    let pool = Arc::new(Mutex::new(Vec::<http1::SendRequest<Empty<Bytes>>>::new()));
    let results = Arc::new(std::sync::Mutex::new((Vec::new(), 0u64)));
    let interval = Duration::from_nanos(1_000_000_000 / rps);
    let start = tokio::time::Instant::now();
    let total = rps * secs;
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = start + interval * i as u32;
        tokio::time::sleep_until(scheduled).await;
        let pool = pool.clone();
        let results = results.clone();
        tasks.push(tokio::spawn(async move {
            // From the actual send (the timer wheel has 1 ms resolution, which
            // would otherwise dominate loopback latencies); still open-loop.
            let _ = scheduled;
            let began = Instant::now();
            let sender = pool.lock().await.pop();
            let mut sender = match sender {
                Some(s) => s,
                None => {
                    let stream = TcpStream::connect(addr).await.unwrap();
                    let _ = stream.set_nodelay(true);
                    let (s, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
                    tokio::spawn(conn);
                    s
                }
            };
            let request = hyper::Request::get("/data")
                .header("host", "svc:8080")
                .body(Empty::new())
                .unwrap();
            let ok = match sender.send_request(request).await {
                Ok(response) => {
                    response.status() == 200 && response.into_body().collect().await.is_ok()
                }
                Err(_) => false,
            };
            let elapsed = began.elapsed().as_micros() as u32;
            {
                let mut results = results.lock().unwrap();
                if ok {
                    results.0.push(elapsed);
                } else {
                    results.1 += 1;
                }
            }
            if ok {
                pool.lock().await.push(sender);
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let mut results = std::mem::take(&mut *results.lock().unwrap());
    results.0.sort_unstable();
    results
}
