//! What `meshlab proxy-status` and `meshlab proxy-config` print, in istioctl's shapes,
//! so a learner's notes from a real cluster read the same here.

use std::collections::BTreeMap;

use meshlab_proxy_config::route::action::ClusterSpecifier;
use meshlab_proxy_config::route::{Action, Domain, HeaderMatch, PathMatch, RouteMatch};
use meshlab_proxy_config::{EndpointAddress, NetworkFilter, ProxyConfig, Secret, SecretKind};

use crate::discovery::{ProxyStatus, ResourceType};
use crate::output::Table;
use crate::resource::meta::Timestamp;
use crate::translate::names;

/// `istioctl proxy-status`: one line per connected proxy, sync state per type.
pub fn proxy_status(statuses: &[ProxyStatus]) -> Table {
    let rows = statuses
        .iter()
        .map(|status| {
            let state = |t: ResourceType| status.sync(t).to_string();
            vec![
                format!("{}.{}", status.node.pod, status.node.namespace),
                "Kubernetes".to_owned(),
                state(ResourceType::Cluster),
                state(ResourceType::Listener),
                state(ResourceType::ClusterLoadAssignment),
                state(ResourceType::RouteConfiguration),
                "meshlab-control".to_owned(),
                status.version.clone(),
            ]
        })
        .collect();
    table(
        &[
            "NAME", "CLUSTER", "CDS", "LDS", "EDS", "RDS", "ISTIOD", "VERSION",
        ],
        rows,
    )
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) -> Table {
    Table {
        headers: headers.iter().map(|h| (*h).to_owned()).collect(),
        rows,
    }
}

/// `istioctl proxy-config clusters`.
pub fn clusters(config: &ProxyConfig) -> Table {
    let rows = config
        .clusters
        .values()
        .map(|cluster| {
            let parts: Vec<&str> = cluster.name.split('|').collect();
            let (fqdn, port, subset, direction) = match parts.as_slice() {
                [direction, port, subset, host] => (
                    host.to_string(),
                    port.to_string(),
                    subset.to_string(),
                    direction.to_uppercase(),
                ),
                _ => (
                    cluster.name.clone(),
                    "-".to_owned(),
                    "-".to_owned(),
                    "-".to_owned(),
                ),
            };
            let rule = cluster
                .origin
                .iter()
                .find_map(|o| o.strip_prefix("DestinationRule/"))
                .map(|o| o.replace('/', "."))
                .unwrap_or_else(|| "-".to_owned());
            vec![
                if fqdn.is_empty() {
                    "-".to_owned()
                } else {
                    fqdn
                },
                port,
                if subset.is_empty() {
                    "-".to_owned()
                } else {
                    subset
                },
                direction,
                format!("{:?}", cluster.discovery).to_uppercase(),
                rule,
            ]
        })
        .collect();
    table(
        &[
            "SERVICE FQDN",
            "PORT",
            "SUBSET",
            "DIRECTION",
            "TYPE",
            "DESTINATION RULE",
        ],
        rows,
    )
}

/// `istioctl proxy-config listeners`: one line per filter chain.
pub fn listeners(config: &ProxyConfig) -> Table {
    let mut rows = Vec::new();
    for listener in config.listeners.values() {
        for chain in listener
            .filter_chains
            .iter()
            .chain(&listener.default_filter_chain)
        {
            let m = &chain.matcher;
            let addresses = if m.destination_ips.is_empty() {
                "0.0.0.0".to_owned()
            } else {
                m.destination_ips
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let port = m
                .destination_port
                .map_or_else(|| listener.address.port().to_string(), |p| p.to_string());
            let mut matches = Vec::new();
            if !m.server_names.is_empty() {
                matches.push(format!("SNI: {}", m.server_names.join(",")));
            }
            if let Some(transport) = &m.transport_protocol {
                matches.push(format!("Trans: {transport}"));
            }
            let destination = match &chain.filter {
                NetworkFilter::HttpConnectionManager(hcm) => {
                    format!("Route: {}", hcm.route_config_name)
                }
                NetworkFilter::TcpProxy(tcp) => format!("Cluster: {}", tcp.cluster),
            };
            rows.push(vec![
                addresses,
                port,
                if matches.is_empty() {
                    "ALL".to_owned()
                } else {
                    matches.join("; ")
                },
                destination,
            ]);
        }
    }
    table(&["ADDRESSES", "PORT", "MATCH", "DESTINATION"], rows)
}

/// `istioctl proxy-config routes`: one line per route.
pub fn routes(config: &ProxyConfig) -> Table {
    let mut rows = Vec::new();
    for route_config in config.routes.values() {
        for vhost in &route_config.virtual_hosts {
            let domains: Vec<String> = vhost.domains.iter().map(Domain::to_string).collect();
            let shown = match domains.as_slice() {
                [] => "-".to_owned(),
                [one] => one.clone(),
                [first, rest @ ..] => format!("{first} +{}", rest.len()),
            };
            for route in &vhost.routes {
                let target = match &route.action {
                    Action::Route(action) => match &action.cluster {
                        ClusterSpecifier::Cluster(c) => c.clone(),
                        ClusterSpecifier::Weighted(w) => w
                            .iter()
                            .map(|c| format!("{} {}%", c.name, c.weight))
                            .collect::<Vec<_>>()
                            .join(", "),
                    },
                    Action::Direct { status, .. } => format!("direct {status}"),
                    Action::Redirect(_) => "redirect".to_owned(),
                    Action::NonForwarding => "-".to_owned(),
                };
                rows.push(vec![
                    route_config.name.clone(),
                    vhost.name.clone(),
                    shown.clone(),
                    describe_match(&route.matcher),
                    target,
                    route.origin.clone(),
                ]);
            }
        }
    }
    table(
        &[
            "NAME",
            "VHOST NAME",
            "DOMAINS",
            "MATCH",
            "DESTINATION",
            "FROM",
        ],
        rows,
    )
}

/// `istioctl proxy-config endpoints`.
pub fn endpoints(config: &ProxyConfig) -> Table {
    let mut rows = Vec::new();
    for assignment in config.endpoints.values() {
        for endpoint in &assignment.endpoints {
            let address = match &endpoint.address {
                EndpointAddress::Socket(addr) => addr.to_string(),
                EndpointAddress::Dns { host, port } => format!("{host}:{port}"),
            };
            rows.push(vec![
                address,
                "HEALTHY".to_owned(),
                "OK".to_owned(),
                assignment.cluster_name.clone(),
            ]);
        }
    }
    table(&["ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER"], rows)
}

/// A route's match as istioctl sums it up: `/productpage`, `/static*`, `/* (headers)`.
fn describe_match(matcher: &RouteMatch) -> String {
    let mut text = match &matcher.path {
        PathMatch::Exact(path) => path.clone(),
        PathMatch::Prefix(prefix) => format!("{prefix}*"),
        PathMatch::Regex(pattern) => format!("{pattern:?}"),
    };
    let headers: Vec<String> = matcher
        .headers
        .iter()
        .map(|h| {
            let value = match &h.kind {
                HeaderMatch::Exact(v) => format!("={v}"),
                HeaderMatch::Prefix(v) => format!("^={v}"),
                HeaderMatch::Suffix(v) => format!("$={v}"),
                HeaderMatch::Regex(p) => format!("~={p:?}"),
                HeaderMatch::Present(_) => String::new(),
            };
            format!("{}{}{value}", if h.invert { "!" } else { "" }, h.name)
        })
        .collect();
    if !headers.is_empty() {
        text.push_str(&format!(" ({})", headers.join(", ")));
    }
    text
}

/// One secret a proxy holds, as `istioctl proxy-config secret` lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretEntry {
    /// `default` (the workload certificate) or `ROOTCA` (the trust root).
    pub resource_name: String,
    /// `Cert Chain` or `CA`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `ACTIVE`.
    pub status: String,
    /// Whether it is within its validity period now.
    pub valid_cert: bool,
    /// Lowercase hex.
    pub serial_number: String,
    /// RFC 3339, UTC.
    pub not_after: String,
    /// RFC 3339, UTC.
    pub not_before: String,
    /// The SPIFFE URI it carries (workload certificates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spiffe_id: Option<String>,
    /// The certificate chain, PEM (certificates only: no key is ever shown).
    pub certificate_chain: String,
}

/// The secrets of a proxy: its workload certificate as issued (`None` before its
/// first CSR), the mesh root, then the `credentialName` secrets it is sent
/// (certificates only: keys are never shown).
pub fn secrets(
    workload_chain: Option<&[String]>,
    root_pem: &str,
    credentials: &BTreeMap<String, Secret>,
) -> Vec<SecretEntry> {
    let mut entries = Vec::new();
    if let Some(chain) = workload_chain
        && let Some(leaf) = chain.first()
        && let Some(entry) =
            secret_entry(names::WORKLOAD_SECRET, "Cert Chain", leaf, chain.concat())
    {
        entries.push(entry);
    }
    if let Some(entry) = secret_entry(names::ROOT_SECRET, "CA", root_pem, root_pem.to_owned()) {
        entries.push(entry);
    }
    for (name, secret) in credentials {
        let entry = match &secret.kind {
            SecretKind::TlsCertificate {
                certificate_chain, ..
            } => secret_entry(
                name,
                "Cert Chain",
                certificate_chain,
                certificate_chain.clone(),
            ),
            SecretKind::ValidationContext { trusted_ca } => {
                secret_entry(name, "CA", trusted_ca, trusted_ca.clone())
            }
        };
        entries.extend(entry);
    }
    entries
}

fn secret_entry(name: &str, kind: &str, pem: &str, chain: String) -> Option<SecretEntry> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    let spiffe_id = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|n| match n {
                x509_parser::extensions::GeneralName::URI(uri) => Some((*uri).to_owned()),
                _ => None,
            })
        });
    let validity = cert.validity();
    // Clamped at the epoch, as every Timestamp is.
    let rfc3339 = |t: x509_parser::time::ASN1Time| {
        Timestamp::from_unix_seconds(u64::try_from(t.timestamp()).unwrap_or(0)).to_string()
    };
    Some(SecretEntry {
        resource_name: name.to_owned(),
        kind: kind.to_owned(),
        status: "ACTIVE".to_owned(),
        valid_cert: validity.is_valid(),
        serial_number: cert
            .raw_serial()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        not_after: rfc3339(validity.not_after),
        not_before: rfc3339(validity.not_before),
        spiffe_id,
        certificate_chain: chain,
    })
}

/// `istioctl proxy-config secret`.
pub fn secrets_table(entries: &[SecretEntry]) -> Table {
    let rows = entries
        .iter()
        .map(|e| {
            vec![
                e.resource_name.clone(),
                e.kind.clone(),
                e.status.clone(),
                e.valid_cert.to_string(),
                e.serial_number.clone(),
                e.not_after.clone(),
                e.not_before.clone(),
            ]
        })
        .collect();
    table(
        &[
            "RESOURCE NAME",
            "TYPE",
            "STATUS",
            "VALID CERT",
            "SERIAL NUMBER",
            "NOT AFTER",
            "NOT BEFORE",
        ],
        rows,
    )
}
