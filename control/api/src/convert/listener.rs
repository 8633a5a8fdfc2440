//! Listeners.

use std::net::{IpAddr, SocketAddr};

use meshlab_proxy_config::{
    ChainMatch, DownstreamTls, FilterChain, HttpConnectionManager, Listener, NetworkFilter,
    TcpProxy, TcpWeightedCluster, TrafficDirection,
};

use super::{At, Invalid, authz, each, known, required, to_u16};
use crate::v1::{self, filter_chain, listener};

pub(super) fn to_wire(listener: Listener) -> v1::Listener {
    let direction = match listener.direction {
        TrafficDirection::Inbound => listener::TrafficDirection::Inbound,
        TrafficDirection::Outbound => listener::TrafficDirection::Outbound,
        TrafficDirection::Gateway => listener::TrafficDirection::Gateway,
    };
    v1::Listener {
        name: listener.name,
        address: Some(v1::SocketAddress {
            address: listener.address.ip().to_string(),
            port: listener.address.port().into(),
        }),
        traffic_direction: direction.into(),
        use_original_dst: listener.use_original_dst,
        filter_chains: listener
            .filter_chains
            .into_iter()
            .map(chain_to_wire)
            .collect(),
        default_filter_chain: listener.default_filter_chain.map(chain_to_wire),
    }
}

fn chain_to_wire(chain: FilterChain) -> v1::FilterChain {
    let matcher = chain.matcher;
    let filter_chain_match = (matcher != ChainMatch::default()).then(|| v1::FilterChainMatch {
        destination_port: matcher.destination_port.map(u32::from),
        prefix_ranges: matcher
            .destination_ips
            .iter()
            .map(|ip| v1::CidrRange {
                address_prefix: ip.to_string(),
                prefix_len: full_prefix(*ip),
            })
            .collect(),
        server_names: matcher.server_names,
        transport_protocol: matcher.transport_protocol,
        application_protocols: matcher.application_protocols,
    });
    let filter = match chain.filter {
        NetworkFilter::HttpConnectionManager(manager) => {
            filter_chain::Filter::HttpConnectionManager(v1::HttpConnectionManager {
                stat_prefix: manager.stat_prefix,
                route_config_name: manager.route_config_name,
                authorization: manager.authorization.map(authz::to_wire),
            })
        }
        NetworkFilter::TcpProxy(proxy) => filter_chain::Filter::TcpProxy(v1::TcpProxy {
            stat_prefix: proxy.stat_prefix,
            cluster: proxy.cluster,
            authorization: proxy.authorization.map(authz::to_wire),
            weighted_clusters: proxy
                .weighted_clusters
                .into_iter()
                .map(|c| v1::TcpWeightedCluster {
                    name: c.name,
                    weight: c.weight,
                })
                .collect(),
        }),
    };
    v1::FilterChain {
        name: chain.name,
        filter_chain_match,
        filter: Some(filter),
        transport_socket: chain.tls.map(|tls| v1::DownstreamTlsContext {
            certificate_secret: tls.certificate,
            require_client_certificate: tls.require_client_certificate,
            validation_secret: tls.trusted_ca,
        }),
    }
}

pub(super) fn from_wire(message: v1::Listener) -> Result<Listener, Invalid> {
    let address = required(message.address, "address")?;
    let ip = parse_ip(&address.address).at("address")?;
    let port = to_u16(address.port, "port").at("address")?;
    let direction = match known(message.traffic_direction, "traffic_direction")? {
        listener::TrafficDirection::Unspecified => {
            return Err(Invalid::missing("traffic_direction"));
        }
        listener::TrafficDirection::Inbound => TrafficDirection::Inbound,
        listener::TrafficDirection::Outbound => TrafficDirection::Outbound,
        listener::TrafficDirection::Gateway => TrafficDirection::Gateway,
    };
    let default_filter_chain = match message.default_filter_chain {
        Some(chain) => Some(chain_from_wire(chain).at("default_filter_chain")?),
        None => None,
    };
    Ok(Listener {
        name: message.name,
        address: SocketAddr::new(ip, port),
        direction,
        use_original_dst: message.use_original_dst,
        filter_chains: each(message.filter_chains, "filter_chains", chain_from_wire)?,
        default_filter_chain,
    })
}

fn chain_from_wire(chain: v1::FilterChain) -> Result<FilterChain, Invalid> {
    let matcher = match chain.filter_chain_match {
        Some(matcher) => ChainMatch {
            destination_port: matcher
                .destination_port
                .map(|port| to_u16(port, "destination_port"))
                .transpose()
                .at("filter_chain_match")?,
            destination_ips: each(matcher.prefix_ranges, "prefix_ranges", |range| {
                let ip = parse_ip(&range.address_prefix).at("address_prefix")?;
                if range.prefix_len != full_prefix(ip) {
                    return Err(Invalid::new(format!(
                        "meshlab matches whole addresses only, not /{}",
                        range.prefix_len
                    ))
                    .at("prefix_len"));
                }
                Ok(ip)
            })
            .at("filter_chain_match")?,
            server_names: matcher.server_names,
            transport_protocol: matcher.transport_protocol,
            application_protocols: matcher.application_protocols,
        },
        None => ChainMatch::default(),
    };
    let filter = match required(chain.filter, "filter")? {
        filter_chain::Filter::HttpConnectionManager(manager) => {
            NetworkFilter::HttpConnectionManager(HttpConnectionManager {
                stat_prefix: manager.stat_prefix,
                route_config_name: manager.route_config_name,
                authorization: authz::option_from_wire(manager.authorization)
                    .at("http_connection_manager")?,
            })
        }
        filter_chain::Filter::TcpProxy(proxy) => NetworkFilter::TcpProxy(TcpProxy {
            stat_prefix: proxy.stat_prefix,
            cluster: proxy.cluster,
            authorization: authz::option_from_wire(proxy.authorization).at("tcp_proxy")?,
            weighted_clusters: proxy
                .weighted_clusters
                .into_iter()
                .map(|c| TcpWeightedCluster {
                    name: c.name,
                    weight: c.weight,
                })
                .collect(),
        }),
    };
    Ok(FilterChain {
        name: chain.name,
        matcher,
        filter,
        tls: chain.transport_socket.map(|tls| DownstreamTls {
            certificate: tls.certificate_secret,
            require_client_certificate: tls.require_client_certificate,
            trusted_ca: tls.validation_secret,
        }),
    })
}

fn parse_ip(text: &str) -> Result<IpAddr, Invalid> {
    text.parse()
        .map_err(|_| Invalid::new(format!("{text:?} is not an IP address")))
}

fn full_prefix(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}
