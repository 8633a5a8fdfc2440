//! Gateways: what an ingress gateway proxy (Istio's `router`) is configured with.
//!
//! A Gateway selects gateway pods by labels and declares servers (port, protocol,
//! hosts); VirtualServices bound to it (`gateways: [bookinfo-gateway]`) provide the
//! routes. Each server port becomes a listener `0.0.0.0_<port>` whose route
//! configuration `http.<port>` has a virtual host per bound VirtualService host; a
//! request for no host, or matching no route, gets 404 — Envoy's answer that the
//! Bookinfo task shows for `/` and `/health`. The gateway knows every service exported
//! to its namespace, as Istio's gateways do (Sidecar resources do not apply to them).
//!
//! An `HTTPS` server with `tls.mode` `SIMPLE` or `MUTUAL` terminates TLS with the
//! certificate its `credentialName` Secret holds (Istio's "secure gateways" task):
//! it becomes a filter chain of the port's listener, matched by SNI on the
//! server's hosts, with its own route configuration
//! `https.<port>.<port name>.<gateway>.<namespace>`; `MUTUAL` also requires a
//! client certificate signed by the secret's CA. A client whose SNI matches no
//! server is refused, as Envoy finds no chain for it.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use meshlab_proxy_config::route::{
    Action, Domain, HeaderOps, PathMatch, Redirect, Route, RouteMatch, VirtualHost,
};
use meshlab_proxy_config::{
    ChainMatch, DownstreamTls, FilterChain, HttpConnectionManager, Listener, NetworkFilter,
    ProxyConfig, ProxyNode, RouteConfiguration, Secret, TrafficDirection,
};

use super::mesh::{Mesh, Protocol, ServiceKind, fqdn};
use super::routes::{self, Context};
use super::{add_clusters, clusters, credentials};
use crate::resource::networking::{Gateway, Server, ServerTlsMode, ServerTlsSettings};

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
/// ServiceEntries that select the gateway pod do not count: they describe how
/// others reach it, not the gateway's own Service.
fn listen_port(mesh: &Mesh, node: &ProxyNode, port: u16) -> u16 {
    mesh.services
        .values()
        .filter(|s| s.kind == ServiceKind::Kubernetes)
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
            node,
            &mut config,
            service,
            clusters::destination_rule(mesh, service, &node.namespace, &node.labels),
        );
    }

    let gateways = selecting(mesh, node);
    let authorization = super::authz::authorization(mesh, node);
    // Plaintext HTTP: listen port → (gateway names serving it, hosts they accept).
    let mut ports: BTreeMap<u16, (Vec<String>, Vec<String>)> = BTreeMap::new();
    // Hosts of `httpsRedirect` servers, by listen port.
    let mut redirects: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    // HTTPS servers that terminate TLS, by listen port.
    let mut https: BTreeMap<u16, Vec<(String, &Server)>> = BTreeMap::new();
    for (name, gateway) in &gateways {
        for server in &gateway.spec.servers {
            let Ok(number) = u16::try_from(server.port.number) else {
                continue;
            };
            let port = listen_port(mesh, node, number);
            if terminated(server).is_some() {
                https.entry(port).or_default().push((name.clone(), server));
                continue;
            }
            // Validation admits no other kind of server.
            if !Protocol::infer(&server.port.protocol, None).is_http() {
                continue;
            }
            let hosts = server.hosts.iter().map(|h| bare_host(h).to_owned());
            if server.tls.as_ref().is_some_and(|tls| tls.https_redirect) {
                redirects.entry(port).or_default().extend(hosts.clone());
            }
            let entry = ports.entry(port).or_default();
            entry.0.push(name.clone());
            entry.1.extend(hosts);
        }
    }
    let hcm = |stat_port: u16, route_config_name: String| {
        NetworkFilter::HttpConnectionManager(HttpConnectionManager {
            stat_prefix: format!("outbound_0.0.0.0_{stat_port}"),
            route_config_name,
            authorization: authorization.clone(),
        })
    };
    let mut chains: BTreeMap<u16, Vec<FilterChain>> = BTreeMap::new();
    for (port, (names, hosts)) in ports {
        let route_name = format!("http.{port}");
        let mut virtual_hosts = virtual_hosts(mesh, node, &names, &hosts, port);
        require_tls(
            &mut virtual_hosts,
            redirects.get(&port).map_or(&[], Vec::as_slice),
            port,
        );
        config.routes.insert(
            route_name.clone(),
            RouteConfiguration {
                name: route_name.clone(),
                virtual_hosts: virtual_hosts.into_values().collect(),
                ignore_port_in_host_matching: true,
            },
        );
        // Beside HTTPS servers on the same port, plaintext takes what is not TLS.
        let transport = https.contains_key(&port).then(|| "raw_buffer".to_owned());
        chains.entry(port).or_default().push(FilterChain {
            name: format!("0.0.0.0_{port}"),
            matcher: ChainMatch {
                transport_protocol: transport,
                ..ChainMatch::default()
            },
            filter: hcm(port, route_name),
            tls: None,
        });
    }
    for (port, servers) in &https {
        for (name, server) in servers {
            let Some(tls) = terminated(server) else {
                continue;
            };
            let (gateway_namespace, gateway_name) = name.split_once('/').unwrap_or(("", name));
            let route_name = format!(
                "https.{}.{}.{gateway_name}.{gateway_namespace}",
                server.port.number, server.port.name
            );
            let hosts: Vec<String> = server
                .hosts
                .iter()
                .map(|h| bare_host(h).to_owned())
                .collect();
            config.routes.insert(
                route_name.clone(),
                RouteConfiguration {
                    name: route_name.clone(),
                    virtual_hosts: virtual_hosts(
                        mesh,
                        node,
                        std::slice::from_ref(name),
                        &hosts,
                        *port,
                    )
                    .into_values()
                    .collect(),
                    ignore_port_in_host_matching: true,
                },
            );
            let credential = credentials::credential(mesh, &node.namespace, &tls.credential_name);
            let mutual = tls.mode == Some(ServerTlsMode::Mutual);
            credential.add_to(&mut config.secrets);
            chains.entry(*port).or_default().push(FilterChain {
                name: route_name.clone(),
                matcher: ChainMatch {
                    server_names: hosts.into_iter().filter(|h| h != "*").collect(),
                    transport_protocol: Some("tls".to_owned()),
                    ..ChainMatch::default()
                },
                filter: hcm(*port, route_name),
                tls: Some(DownstreamTls {
                    certificate: Secret::kubernetes_name(&tls.credential_name),
                    require_client_certificate: mutual,
                    trusted_ca: mutual.then(|| Secret::ca_name(&tls.credential_name)),
                }),
            });
        }
    }
    for (port, filter_chains) in chains {
        let listener = format!("0.0.0.0_{port}");
        config.listeners.insert(
            listener.clone(),
            Listener {
                name: listener,
                address: SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
                direction: TrafficDirection::Gateway,
                use_original_dst: false,
                filter_chains,
                default_filter_chain: None,
            },
        );
    }
    config
}

/// A server's TLS settings when the gateway terminates them with a
/// `credentialName` (`HTTPS` with `SIMPLE` or `MUTUAL`; validation refuses the
/// other TLS servers).
fn terminated(server: &Server) -> Option<&ServerTlsSettings> {
    server.tls.as_ref().filter(|tls| {
        server.port.protocol.eq_ignore_ascii_case("HTTPS")
            && matches!(
                tls.mode,
                Some(ServerTlsMode::Simple | ServerTlsMode::Mutual)
            )
            && !tls.credential_name.is_empty()
    })
}

/// `httpsRedirect`: the virtual hosts of those servers' hosts answer every request
/// with a 301 to `https://` (Envoy's `require_tls: ALL`, which Istio sets on them),
/// and a host no VirtualService serves gets a virtual host of its own for that, as
/// Istio adds one. The `Location` keeps the request's Host, except a `:80`, which
/// meshlab's redirect drops when the scheme changes (Envoy keeps it).
fn require_tls(
    virtual_hosts: &mut BTreeMap<String, VirtualHost>,
    redirected: &[String],
    port: u16,
) {
    if redirected.is_empty() {
        return;
    }
    let redirect = || Route {
        name: "https-redirect".to_owned(),
        matcher: RouteMatch::path(PathMatch::Prefix("/".to_owned())),
        action: Action::Redirect(Redirect {
            scheme: Some("https".to_owned()),
            ..Redirect::moved_permanently()
        }),
        request_headers: HeaderOps::default(),
        response_headers: HeaderOps::default(),
        fault: None,
        origin: "Gateway httpsRedirect".to_owned(),
        decorator: None,
    };
    for (host, vhost) in virtual_hosts.iter_mut() {
        if redirected
            .iter()
            .any(|pattern| pattern == "*" || clusters::host_matches(pattern, host))
        {
            vhost.routes = vec![redirect()];
        }
    }
    for host in redirected {
        virtual_hosts
            .entry(host.clone())
            .or_insert_with(|| VirtualHost {
                name: format!("{host}:{port}"),
                domains: vec![Domain::from(host.clone())],
                routes: vec![redirect()],
                origin: "Gateway httpsRedirect".to_owned(),
            });
    }
}

/// A server host without its `namespace/` prefix.
fn bare_host(host: &str) -> &str {
    host.split_once('/').map_or(host, |(_, h)| h)
}

/// The virtual hosts of the VirtualServices bound to gateways `names` for the
/// servers' `hosts` on `port`, by VirtualService host.
fn virtual_hosts(
    mesh: &Mesh,
    node: &ProxyNode,
    names: &[String],
    hosts: &[String],
    port: u16,
) -> BTreeMap<String, VirtualHost> {
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
            gateways: names,
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
                        let mut domains = vec![
                            Domain::from(host.clone()),
                            Domain::from(format!("{host}:{port}")),
                        ];
                        // A dotted host is its own FQDN.
                        if full != *host {
                            domains.push(Domain::from(full));
                        }
                        domains
                    },
                    routes: Vec::new(),
                    origin: format!("VirtualService/{vs_namespace}/{}", vs.metadata.name),
                });
            // Istio merges the routes of every VirtualService bound to a gateway
            // host, oldest first.
            vhost.routes.extend(routes);
        }
    }
    virtual_hosts
}
