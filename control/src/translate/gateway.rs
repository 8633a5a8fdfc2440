//! Gateways: what an ingress gateway proxy (Istio's `router`) is configured with.
//!
//! A Gateway selects gateway pods by labels and declares servers (port, protocol,
//! hosts); VirtualServices bound to it (`gateways: [bookinfo-gateway]`) provide the
//! routes. Each server port becomes a listener `0.0.0.0_<port>` whose route
//! configuration `http.<port>` has a virtual host per bound VirtualService host; a
//! request for no host, or matching no route, gets 404 — Envoy's answer that the
//! Bookinfo task shows for `/` and `/health`. The gateway knows every service exported
//! to its namespace, as Istio's gateways do (Sidecar resources do not apply to them).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use meshlab_proxy_config::route::{Domain, VirtualHost};
use meshlab_proxy_config::{
    ChainMatch, FilterChain, HttpConnectionManager, Listener, NetworkFilter, ProxyConfig,
    ProxyNode, RouteConfiguration, TrafficDirection,
};

use super::mesh::{Mesh, Protocol, fqdn};
use super::routes::{self, Context};
use super::{add_clusters, clusters};
use crate::resource::networking::Gateway;

/// The Gateways selecting this proxy's pod, as `namespace/name`.
fn selecting<'m>(mesh: &'m Mesh, node: &ProxyNode) -> Vec<(String, &'m Gateway)> {
    mesh.gateways
        .iter()
        .filter(|g| {
            !g.spec.selector.is_empty()
                && g.spec
                    .selector
                    .iter()
                    .all(|(k, v)| node.labels.get(k) == Some(v))
        })
        .map(|g| {
            let namespace = g.metadata.namespace.as_deref().unwrap_or("default");
            (format!("{namespace}/{}", g.metadata.name), g)
        })
        .collect()
}

/// The port a gateway pod listens on for a Gateway server's port: Istio reads a
/// server port as a port of the gateway's Service and listens on its target port
/// (the default ingress Service maps 80 to 8080, so the authentication task's
/// `port: 80` server and Bookinfo's `port: 8080` server share the listener on
/// 8080); a port no Service of the pod declares is listened on as written.
fn listen_port(mesh: &Mesh, node: &ProxyNode, port: u16) -> u16 {
    mesh.services
        .values()
        .flat_map(|s| &s.endpoints)
        .filter(|e| e.pod.as_deref() == Some(node.pod.as_str()))
        .find_map(|e| e.ports.get(&port).copied())
        .unwrap_or(port)
}

/// One gateway proxy's whole configuration.
pub fn gateway(mesh: &Mesh, node: &ProxyNode) -> ProxyConfig {
    let mut config = ProxyConfig::default();
    for cluster in clusters::special_clusters() {
        config.clusters.insert(cluster.name.clone(), cluster);
    }
    for service in mesh
        .services
        .values()
        .filter(|s| s.visible_from(&node.namespace))
    {
        add_clusters(
            mesh,
            &mut config,
            service,
            clusters::destination_rule(mesh, service, &node.namespace),
        );
    }

    let gateways = selecting(mesh, node);
    let authorization = super::authz::authorization(mesh, node);
    // Server port → (gateway names serving it, hosts they accept).
    let mut ports: BTreeMap<u16, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for (name, gateway) in &gateways {
        for server in &gateway.spec.servers {
            let Ok(port) = u16::try_from(server.port.number) else {
                continue;
            };
            let port = listen_port(mesh, node, port);
            if !Protocol::infer(&server.port.protocol, None).is_http() {
                continue;
            }
            let entry = ports.entry(port).or_default();
            entry.0.push(name.clone());
            entry.1.extend(
                server
                    .hosts
                    .iter()
                    .map(|h| h.split_once('/').map_or(h.as_str(), |(_, h)| h).to_owned()),
            );
        }
    }
    for (port, (names, hosts)) in ports {
        let route_name = format!("http.{port}");
        let mut virtual_hosts: BTreeMap<String, VirtualHost> = BTreeMap::new();
        for vs in &mesh.virtual_services {
            let vs_namespace = vs.metadata.namespace.as_deref().unwrap_or("default");
            let bound = vs.spec.gateways.iter().any(|g| {
                let qualified = if g.contains('/') {
                    g.clone()
                } else {
                    format!("{vs_namespace}/{g}")
                };
                names.contains(&qualified)
            });
            if !bound {
                continue;
            }
            let cx = Context {
                namespace: &node.namespace,
                labels: &node.labels,
                gateways: &names,
                port,
            };
            for host in &vs.spec.hosts {
                let accepted = hosts
                    .iter()
                    .any(|h| h == "*" || clusters::host_matches(h, host));
                if !accepted {
                    continue;
                }
                let routes = routes::http_routes(mesh, vs, cx, &[]);
                let vhost = virtual_hosts
                    .entry(host.clone())
                    .or_insert_with(|| VirtualHost {
                        name: format!("{host}:{port}"),
                        domains: if host == "*" {
                            vec![Domain::from("*")]
                        } else {
                            let full = fqdn(host, vs_namespace);
                            vec![
                                Domain::from(host.clone()),
                                Domain::from(format!("{host}:{port}")),
                                Domain::from(full),
                            ]
                        },
                        routes: Vec::new(),
                        origin: format!("VirtualService/{vs_namespace}/{}", vs.metadata.name),
                    });
                // Istio merges the routes of every VirtualService bound to a gateway
                // host, oldest first.
                vhost.routes.extend(routes);
            }
        }
        config.routes.insert(
            route_name.clone(),
            RouteConfiguration {
                name: route_name.clone(),
                virtual_hosts: virtual_hosts.into_values().collect(),
                ignore_port_in_host_matching: true,
            },
        );
        let listener = format!("0.0.0.0_{port}");
        config.listeners.insert(
            listener.clone(),
            Listener {
                name: listener.clone(),
                address: SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
                direction: TrafficDirection::Gateway,
                use_original_dst: false,
                filter_chains: vec![FilterChain {
                    name: listener,
                    matcher: ChainMatch::default(),
                    filter: NetworkFilter::HttpConnectionManager(HttpConnectionManager {
                        stat_prefix: format!("outbound_0.0.0.0_{port}"),
                        route_config_name: route_name,
                        authorization: authorization.clone(),
                    }),
                    tls: None,
                }],
                default_filter_chain: None,
            },
        );
    }
    config
}
