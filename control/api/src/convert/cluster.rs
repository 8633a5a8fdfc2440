//! Clusters.

use meshlab_proxy_config::{
    CircuitBreakers, Cluster, DiscoveryType, LbPolicy, OutlierDetection, TlsMode, UpstreamTls,
};

use super::{Invalid, from_millis, known, millis};
use crate::v1::{self, cluster};

pub(super) fn to_wire(cluster: Cluster) -> v1::Cluster {
    let discovery = match cluster.discovery {
        DiscoveryType::Static => cluster::DiscoveryType::Static,
        DiscoveryType::StrictDns => cluster::DiscoveryType::StrictDns,
        DiscoveryType::LogicalDns => cluster::DiscoveryType::LogicalDns,
        DiscoveryType::Eds => cluster::DiscoveryType::Eds,
        DiscoveryType::OriginalDst => cluster::DiscoveryType::OriginalDst,
    };
    let lb_policy = match cluster.lb_policy {
        LbPolicy::RoundRobin => cluster::LbPolicy::RoundRobin,
        LbPolicy::LeastRequest => cluster::LbPolicy::LeastRequest,
        LbPolicy::RingHash => cluster::LbPolicy::RingHash,
        LbPolicy::Random => cluster::LbPolicy::Random,
        LbPolicy::ClusterProvided => cluster::LbPolicy::ClusterProvided,
    };
    let breakers = cluster.circuit_breakers;
    let circuit_breakers =
        (breakers != CircuitBreakers::default()).then_some(v1::CircuitBreakers {
            max_connections: breakers.max_connections,
            max_pending_requests: breakers.max_pending_requests,
            max_requests: breakers.max_requests,
            max_retries: breakers.max_retries,
            max_requests_per_connection: breakers.max_requests_per_connection,
        });
    v1::Cluster {
        name: cluster.name,
        r#type: discovery.into(),
        lb_policy: lb_policy.into(),
        connect_timeout_ms: millis(cluster.connect_timeout),
        circuit_breakers,
        outlier_detection: cluster
            .outlier_detection
            .map(|outlier| v1::OutlierDetection {
                consecutive_5xx: outlier.consecutive_5xx,
                consecutive_gateway_failure: outlier.consecutive_gateway_failure,
                interval_ms: millis(outlier.interval),
                base_ejection_time_ms: millis(outlier.base_ejection_time),
                max_ejection_percent: outlier.max_ejection_percent,
                min_health_percent: outlier.min_health_percent,
            }),
        transport_socket: cluster.tls.map(|tls| v1::UpstreamTlsContext {
            mode: tls_mode_to_wire(tls.mode).into(),
            sni: tls.sni,
            subject_alt_names: tls.subject_alt_names,
            auto_mtls: tls.auto_mtls,
            certificate_secret: tls.certificate,
            validation_secret: tls.trusted_ca,
        }),
        http2: cluster.http2,
        origin: cluster.origin,
    }
}

pub(super) fn from_wire(message: v1::Cluster) -> Result<Cluster, Invalid> {
    let discovery = match known(message.r#type, "type")? {
        cluster::DiscoveryType::Static => DiscoveryType::Static,
        cluster::DiscoveryType::StrictDns => DiscoveryType::StrictDns,
        cluster::DiscoveryType::LogicalDns => DiscoveryType::LogicalDns,
        cluster::DiscoveryType::Eds => DiscoveryType::Eds,
        cluster::DiscoveryType::OriginalDst => DiscoveryType::OriginalDst,
    };
    let lb_policy = match known(message.lb_policy, "lb_policy")? {
        cluster::LbPolicy::RoundRobin => LbPolicy::RoundRobin,
        cluster::LbPolicy::LeastRequest => LbPolicy::LeastRequest,
        cluster::LbPolicy::RingHash => LbPolicy::RingHash,
        cluster::LbPolicy::Random => LbPolicy::Random,
        cluster::LbPolicy::ClusterProvided => LbPolicy::ClusterProvided,
    };
    let circuit_breakers = message
        .circuit_breakers
        .map(|breakers| CircuitBreakers {
            max_connections: breakers.max_connections,
            max_pending_requests: breakers.max_pending_requests,
            max_requests: breakers.max_requests,
            max_retries: breakers.max_retries,
            max_requests_per_connection: breakers.max_requests_per_connection,
        })
        .unwrap_or_default();
    let tls = match message.transport_socket {
        Some(tls) => Some(UpstreamTls {
            mode: tls_mode_from_wire(
                known(tls.mode, "mode").map_err(|e| e.at("transport_socket"))?,
            ),
            sni: tls.sni,
            subject_alt_names: tls.subject_alt_names,
            auto_mtls: tls.auto_mtls,
            certificate: tls.certificate_secret,
            trusted_ca: tls.validation_secret,
        }),
        None => None,
    };
    Ok(Cluster {
        name: message.name,
        discovery,
        lb_policy,
        connect_timeout: from_millis(message.connect_timeout_ms),
        circuit_breakers,
        outlier_detection: message.outlier_detection.map(|outlier| OutlierDetection {
            consecutive_5xx: outlier.consecutive_5xx,
            consecutive_gateway_failure: outlier.consecutive_gateway_failure,
            interval: from_millis(outlier.interval_ms),
            base_ejection_time: from_millis(outlier.base_ejection_time_ms),
            max_ejection_percent: outlier.max_ejection_percent,
            min_health_percent: outlier.min_health_percent,
        }),
        tls,
        http2: message.http2,
        origin: message.origin,
    })
}

fn tls_mode_to_wire(mode: TlsMode) -> v1::TlsMode {
    match mode {
        TlsMode::Disable => v1::TlsMode::Disable,
        TlsMode::Simple => v1::TlsMode::Simple,
        TlsMode::Mutual => v1::TlsMode::Mutual,
        TlsMode::IstioMutual => v1::TlsMode::IstioMutual,
    }
}

fn tls_mode_from_wire(mode: v1::TlsMode) -> TlsMode {
    match mode {
        v1::TlsMode::Disable => TlsMode::Disable,
        v1::TlsMode::Simple => TlsMode::Simple,
        v1::TlsMode::Mutual => TlsMode::Mutual,
        v1::TlsMode::IstioMutual => TlsMode::IstioMutual,
    }
}
