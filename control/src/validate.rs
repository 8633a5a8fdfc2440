//! Semantic validation of one decoded resource, run before anything is stored.
//!
//! It rejects what Kubernetes and Istio reject at apply time — the API server's field
//! validation, the rules in Istio's CRDs and istiod's validating webhook (Istio's
//! `pkg/config/validation`) — with the same meaning and, where helpful, the same words,
//! so that what a learner sees matches their notes. It also rejects, by name, fields
//! meshlab accepts in the schema but cannot honour (delegation, Gateway API
//! `targetRef`, locality load balancing, …): the design's rule is that configuration is
//! never silently ignored.
//!
//! Where Istio only *warns* (for example weights that do not add up to 100 — Istio
//! normalises them since 1.15), we warn too. Checks that need other resources, like a
//! route to a subset no DestinationRule defines (IST0101), are not apply errors in
//! Istio either; they belong to `meshlab analyze`, which works on a whole
//! [`Snapshot`](crate::store::Snapshot) rather than one resource.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostic::{Diagnostic, FieldPath, ResourceId};
use crate::resource::core::{Container, Deployment, IntOrString, SECRET_TYPE_TLS, Secret, Service};
use crate::resource::duration::Duration;
use crate::resource::networking::{
    CaptureMode, ClientTlsMode, ClientTlsSettings, ConnectionPoolSettings, Destination,
    DestinationRule, FaultAbort, FaultDelay, Gateway, HttpRoute, HttpRouteDestination,
    LoadBalancerSettings, OutlierDetection, Percent, Resolution, RouteDestination, Server,
    ServerTlsMode, ServiceEntry, Sidecar, StringMatch, TrafficPolicy, VirtualService,
    WorkloadEntrySpec,
};
use crate::resource::security::{
    Action, AuthorizationPolicy, PeerAuthentication, PolicyTargetReference, RequestAuthentication,
    WorkloadSelector,
};
use crate::resource::{Kind, Resource};

/// Checks one resource; returns errors and warnings (empty when all is well). Field
/// paths are relative to the document; `yaml::Source::attach` adds lines.
#[must_use]
pub fn validate(resource: &Resource) -> Vec<Diagnostic> {
    let mut check = Checker {
        id: resource.id(),
        out: Vec::new(),
    };
    let root = FieldPath::root();
    check.metadata(resource);
    let spec = root.field("spec");
    match resource {
        Resource::Namespace(_) | Resource::ServiceAccount(_) => {}
        Resource::Secret(secret) => check.secret(&root, secret),
        Resource::Service(service) => check.service(&spec, service),
        Resource::Deployment(deployment) => check.deployment(&spec, deployment),
        Resource::VirtualService(vs) => check.virtual_service(&spec, vs),
        Resource::DestinationRule(dr) => check.destination_rule(&spec, dr),
        Resource::Gateway(gw) => check.gateway(&spec, gw),
        Resource::ServiceEntry(se) => check.service_entry(&spec, se),
        Resource::Sidecar(sidecar) => check.sidecar(&spec, sidecar),
        Resource::WorkloadEntry(we) => check.workload_entry(&spec, &we.spec, None),
        Resource::PeerAuthentication(pa) => check.peer_authentication(&spec, pa),
        Resource::AuthorizationPolicy(ap) => check.authorization_policy(&spec, ap),
        Resource::RequestAuthentication(ra) => check.request_authentication(&spec, ra),
    }
    check.out
}

/// Retry conditions Envoy understands (`x-envoy-retry-on` and `x-envoy-retry-grpc-on`),
/// as Istio's validation lists them; numeric status codes are accepted too.
const RETRY_ON: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "envoy-ratelimited",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// gRPC status names accepted for `fault.abort.grpcStatus`.
const GRPC_STATUS: &[&str] = &[
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// Gateway server protocols Istio accepts.
const GATEWAY_PROTOCOLS: &[&str] = &[
    "HTTP", "HTTPS", "HTTP2", "GRPC", "GRPC-WEB", "MONGO", "REDIS", "MYSQL", "TCP", "TLS",
];

/// Gateway server protocols meshlab's gateways serve (`TLS` is refused with its own
/// message, in `server_tls`).
const GATEWAY_SERVED: &[&str] = &["HTTP", "HTTPS", "HTTP2", "GRPC", "GRPC-WEB", "TLS"];

/// Service port protocols Istio accepts (ServiceEntry, Sidecar).
const PORT_PROTOCOLS: &[&str] = &[
    "HTTP",
    "HTTPS",
    "HTTP2",
    "HTTP_PROXY",
    "GRPC",
    "GRPC-WEB",
    "MONGO",
    "REDIS",
    "MYSQL",
    "TCP",
    "TLS",
    "UDP",
];

struct Checker {
    id: ResourceId,
    out: Vec<Diagnostic>,
}

// === impl Checker: plumbing ===

impl Checker {
    fn error(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.out.push(
            Diagnostic::error(message)
                .at(path.clone())
                .on(self.id.clone()),
        );
    }

    fn error_hint(
        &mut self,
        path: &FieldPath,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.out.push(
            Diagnostic::error(message)
                .at(path.clone())
                .on(self.id.clone())
                .hint(hint),
        );
    }

    fn warning(&mut self, path: &FieldPath, message: impl Into<String>, hint: Option<String>) {
        let mut diagnostic = Diagnostic::warning(message)
            .at(path.clone())
            .on(self.id.clone());
        diagnostic.hint = hint;
        self.out.push(diagnostic);
    }

    /// A field Istio or Kubernetes accepts but meshlab cannot honour.
    fn unsupported(&mut self, path: &FieldPath, what: &str, hint: &str) {
        self.error_hint(path, format!("{what} is not supported by meshlab"), hint);
    }

    fn port(&mut self, path: &FieldPath, number: i64) {
        if !(1..=65535).contains(&number) {
            self.error(
                path,
                format!("port number {number} must be in the range 1..65535"),
            );
        }
    }

    /// Istio durations must be at least 1ms and whole milliseconds.
    fn duration(&mut self, path: &FieldPath, duration: Option<&Duration>) {
        let Some(duration) = duration else { return };
        let value = duration.get();
        if value < std::time::Duration::from_millis(1) {
            self.error(
                path,
                format!("duration {duration} must be greater than 1ms"),
            );
        } else if value.subsec_nanos() % 1_000_000 != 0 {
            self.error(
                path,
                format!("duration {duration}: only durations to ms precision are supported"),
            );
        }
    }

    fn percentage(&mut self, path: &FieldPath, percent: Option<&Percent>) {
        let Some(Percent { value }) = percent else {
            return;
        };
        if !(0.0..=100.0).contains(value) || (*value > 0.0 && *value < 0.0001) {
            self.error(
                &path.field("value"),
                format!("percentage {value} is neither 0.0, nor in range [0.0001, 100.0]"),
            );
        }
    }

    fn labels(&mut self, path: &FieldPath, labels: &BTreeMap<String, String>) {
        for (key, value) in labels {
            if let Err(why) = label_key(key) {
                self.error(
                    &path.field(key),
                    format!("invalid label key {key:?}: {why}"),
                );
            }
            if let Err(why) = label_value(value) {
                self.error(
                    &path.field(key),
                    format!("invalid label value {value:?}: {why}"),
                );
            }
        }
    }

    /// Istio selectors: no empty keys, no wildcards.
    fn selector_labels(&mut self, path: &FieldPath, labels: &BTreeMap<String, String>) {
        for (key, value) in labels {
            if key.is_empty() {
                self.error(
                    path,
                    format!("empty key is not supported in selector: \"={value}\""),
                );
            } else if key.contains('*') || value.contains('*') {
                self.error(
                    &path.field(key),
                    format!("wildcard is not supported in selector: \"{key}={value}\""),
                );
            }
        }
    }

    fn string_match(&mut self, path: &FieldPath, matcher: &StringMatch) {
        match matcher {
            StringMatch::Exact(_) | StringMatch::Present => {}
            StringMatch::Prefix(prefix) => {
                if prefix.is_empty() {
                    self.error(
                        &path.field("prefix"),
                        "prefix string match should not be empty",
                    );
                }
            }
            StringMatch::Regex(pattern) => self.regex(&path.field("regex"), pattern),
        }
    }

    /// Envoy matches with RE2; the `regex` crate accepts the same syntax (no
    /// backreferences, no look-around).
    fn regex(&mut self, path: &FieldPath, pattern: &str) {
        if pattern.is_empty() {
            self.error(path, "regex string match should not be empty");
        } else if pattern.len() > 1024 {
            self.error(path, "regex is too large, max length allowed is 1024");
        } else if let Err(err) = regex::Regex::new(pattern) {
            let detail = err.to_string();
            let reason = detail.lines().last().unwrap_or("invalid").trim().to_owned();
            self.error_hint(
                path,
                format!("invalid regex {pattern:?}: {reason}"),
                "Istio uses RE2 syntax (https://github.com/google/re2/wiki/Syntax): no backreferences or look-around",
            );
        }
    }

    fn host(&mut self, path: &FieldPath, host: &str, allow_wildcard: bool) {
        if host == "*" && allow_wildcard {
            return;
        }
        let name = if allow_wildcard {
            host.strip_prefix("*.").unwrap_or(host)
        } else {
            host
        };
        if let Err(why) = dns_name(name) {
            self.error(path, format!("invalid host {host:?}: {why}"));
        }
    }

    fn target_refs(
        &mut self,
        path: &FieldPath,
        target_ref: Option<&PolicyTargetReference>,
        target_refs: &[PolicyTargetReference],
    ) {
        let hint = "meshlab runs sidecars only; select workloads with selector.matchLabels";
        if target_ref.is_some() {
            self.unsupported(&path.field("targetRef"), "targetRef", hint);
        }
        if !target_refs.is_empty() {
            self.unsupported(&path.field("targetRefs"), "targetRefs", hint);
        }
    }

    fn workload_selector(&mut self, path: &FieldPath, selector: Option<&WorkloadSelector>) {
        if let Some(selector) = selector {
            self.selector_labels(&path.field("matchLabels"), &selector.match_labels);
        }
    }
}

// === impl Checker: metadata ===

impl Checker {
    fn metadata(&mut self, resource: &Resource) {
        let path = FieldPath::root().field("metadata");
        let meta = resource.metadata();
        let name_path = path.field("name");
        let dns_label_names = matches!(resource.kind(), Kind::Namespace | Kind::Service);
        if meta.name.is_empty() {
            self.error_hint(&name_path, "name is required", "set metadata.name");
        } else if dns_label_names {
            if let Err(why) = dns_label(&meta.name) {
                self.error(&name_path, format!("invalid value {:?}: {why}", meta.name));
            }
        } else if let Err(why) = dns_name(&meta.name) {
            self.error(&name_path, format!("invalid value {:?}: {why}", meta.name));
        }
        if resource.kind().is_namespaced()
            && let Some(namespace) = &meta.namespace
            && let Err(why) = dns_label(namespace)
        {
            self.error(
                &path.field("namespace"),
                format!("invalid value {namespace:?}: {why}"),
            );
        }
        self.labels(&path.field("labels"), &meta.labels);
    }
}

// === impl Checker: Kubernetes kinds ===

impl Checker {
    fn service(&mut self, path: &FieldPath, service: &Service) {
        let spec = &service.spec;
        let ports = path.field("ports");
        if spec.ports.is_empty() && spec.cluster_ip.as_deref() != Some("None") {
            self.error(&ports, "required value: a Service needs at least one port");
        }
        let mut names = BTreeSet::new();
        for (i, port) in spec.ports.iter().enumerate() {
            let here = ports.index(i);
            self.port(&here.field("port"), port.port.into());
            match &port.name {
                Some(name) if !names.insert(name.clone()) => {
                    self.error(&here.field("name"), format!("duplicate value {name:?}"));
                }
                None if spec.ports.len() > 1 => self.error(
                    &here.field("name"),
                    "required value: ports of a multi-port Service must be named",
                ),
                _ => {}
            }
            if let Some(IntOrString::Int(target)) = port.target_port {
                self.port(&here.field("targetPort"), target.into());
            }
            if let Some(protocol) = &port.protocol
                && !matches!(protocol.as_str(), "TCP" | "UDP" | "SCTP")
            {
                self.error(
                        &here.field("protocol"),
                        format!("unsupported value {protocol:?}: supported values: \"SCTP\", \"TCP\", \"UDP\""),
                    );
            }
        }
        match spec.service_type.as_deref() {
            None | Some("ClusterIP" | "NodePort" | "LoadBalancer") => {}
            Some("ExternalName") => self.unsupported(
                &path.field("type"),
                "type ExternalName",
                "use a ServiceEntry for external hosts",
            ),
            Some(other) => self.error(
                &path.field("type"),
                format!("unsupported value {other:?}: supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""),
            ),
        }
    }

    fn deployment(&mut self, path: &FieldPath, deployment: &Deployment) {
        let spec = &deployment.spec;
        if let Some(replicas) = spec.replicas
            && replicas < 0
        {
            self.error(
                &path.field("replicas"),
                format!("invalid value {replicas}: must be greater than or equal to 0"),
            );
        }
        let selector = path.field("selector");
        if !spec.selector.match_expressions.is_empty() {
            self.unsupported(
                &selector.field("matchExpressions"),
                "matchExpressions",
                "select pods with matchLabels",
            );
        }
        if spec.selector.match_labels.is_empty() {
            self.error(
                &selector,
                "required value: spec.selector.matchLabels must select the pods",
            );
        }
        let template = path.field("template");
        let labels = &spec.template.metadata.labels;
        self.labels(&template.field("metadata").field("labels"), labels);
        let selected = spec
            .selector
            .match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v));
        if !selected {
            self.error(
                &template.field("metadata").field("labels"),
                "`selector` does not match template `labels`",
            );
        }
        let pod = template.field("spec");
        let pod_spec = &spec.template.spec;
        if !pod_spec.init_containers.is_empty() {
            self.unsupported(
                &pod.field("initContainers"),
                "initContainers",
                "meshlab runs only its own init step (traffic capture) before the app",
            );
        }
        if pod_spec.containers.is_empty() {
            self.error(
                &pod.field("containers"),
                "required value: a pod needs at least one container",
            );
        }
        let mut names = BTreeSet::new();
        for (i, container) in pod_spec.containers.iter().enumerate() {
            let here = pod.field("containers").index(i);
            if !names.insert(container.name.clone()) {
                self.error(
                    &here.field("name"),
                    format!("duplicate value {:?}", container.name),
                );
            }
            self.container(&here, container);
        }
        if let Some(grace) = pod_spec.termination_grace_period_seconds
            && grace < 0
        {
            self.error(
                &pod.field("terminationGracePeriodSeconds"),
                format!("invalid value {grace}: must be greater than or equal to 0"),
            );
        }
    }

    fn container(&mut self, path: &FieldPath, container: &Container) {
        if let Err(why) = dns_label(&container.name) {
            self.error(
                &path.field("name"),
                format!("invalid value {:?}: {why}", container.name),
            );
        }
        if container.image.is_empty() {
            self.error(&path.field("image"), "required value: image");
        }
        if let Some(policy) = &container.image_pull_policy
            && !matches!(policy.as_str(), "Always" | "IfNotPresent" | "Never")
        {
            self.error(
                    &path.field("imagePullPolicy"),
                    format!("unsupported value {policy:?}: supported values: \"Always\", \"IfNotPresent\", \"Never\""),
                );
        }
        for (i, port) in container.ports.iter().enumerate() {
            self.port(
                &path.field("ports").index(i).field("containerPort"),
                port.container_port.into(),
            );
        }
        for (i, env) in container.env.iter().enumerate() {
            let here = path.field("env").index(i);
            if env.name.is_empty() {
                self.error(&here.field("name"), "required value: name");
            }
            if env.value_from.is_some() {
                self.unsupported(
                    &here.field("valueFrom"),
                    "env valueFrom",
                    "give the value inline with value: \"...\"",
                );
            }
        }
    }
}

// === impl Checker: networking.istio.io ===

impl Checker {
    fn virtual_service(&mut self, path: &FieldPath, vs: &VirtualService) {
        let spec = &vs.spec;
        if spec.hosts.is_empty() {
            self.error_hint(
                &path.field("hosts"),
                "virtual service has no hosts: delegate virtual services are not supported by meshlab",
                "list the hosts this virtual service routes, e.g. hosts: [reviews]",
            );
        }
        let mesh_only = spec.gateways.is_empty() || spec.gateways.iter().any(|g| g == "mesh");
        for (i, host) in spec.hosts.iter().enumerate() {
            let here = path.field("hosts").index(i);
            if host == "*" && mesh_only {
                self.error(
                    &here,
                    "wildcard host * is not allowed for virtual services bound to the mesh gateway",
                );
            } else {
                self.host(&here, host, true);
            }
        }
        for (i, gateway) in spec.gateways.iter().enumerate() {
            let name = gateway.rsplit('/').next().unwrap_or(gateway);
            if gateway != "mesh" && dns_name(name).is_err() {
                self.error(
                    &path.field("gateways").index(i),
                    format!("invalid gateway name: {gateway:?}"),
                );
            }
        }
        if spec.http.is_empty() && spec.tcp.is_empty() && spec.tls.is_empty() {
            self.error(path, "http, tcp or tls must be provided in virtual service");
        }
        for (i, route) in spec.http.iter().enumerate() {
            self.http_route(&path.field("http").index(i), route);
        }
        for (i, route) in spec.tcp.iter().enumerate() {
            let here = path.field("tcp").index(i);
            if route.route.is_empty() {
                self.error(&here.field("route"), "TCP route is required");
            }
            self.route_destinations(&here.field("route"), &route.route);
            for (j, m) in route.matches.iter().enumerate() {
                if let Some(port) = m.port {
                    self.port(&here.field("match").index(j).field("port"), port.into());
                }
            }
        }
        for (i, route) in spec.tls.iter().enumerate() {
            let here = path.field("tls").index(i);
            if route.matches.is_empty() {
                self.error(
                    &here.field("match"),
                    "TLS route must have at least one match condition",
                );
            }
            for (j, m) in route.matches.iter().enumerate() {
                if m.sni_hosts.is_empty() {
                    self.error(
                        &here.field("match").index(j).field("sniHosts"),
                        "TLS match must have at least one SNI host",
                    );
                }
            }
            if route.route.is_empty() {
                self.error(&here.field("route"), "TLS route is required");
            }
            self.route_destinations(&here.field("route"), &route.route);
        }
    }

    fn http_route(&mut self, path: &FieldPath, route: &HttpRoute) {
        if route.delegate.is_some() {
            self.unsupported(
                &path.field("delegate"),
                "delegate",
                "put the routes in this virtual service",
            );
        }
        let has_route = !route.route.is_empty();
        let (redirect, direct) = (route.redirect.is_some(), route.direct_response.is_some());
        if !has_route && !redirect && !direct && route.delegate.is_none() {
            self.error(path, "HTTP route, redirect or direct_response is required");
        }
        if has_route && redirect {
            self.error(path, "HTTP route cannot contain both route and redirect");
        }
        if has_route && direct {
            self.error(
                path,
                "HTTP route cannot contain both route and direct_response",
            );
        }
        if redirect && direct {
            self.error(
                path,
                "HTTP route rule cannot contain both redirect and direct_response",
            );
        }
        if route.fault.is_some() && (redirect || direct) {
            self.error(
                path,
                "HTTP route cannot contain both fault and redirect or direct_response",
            );
        }
        if route.rewrite.is_some() && (redirect || direct) {
            self.error(
                path,
                "HTTP route rule cannot contain both rewrite and redirect or direct_response",
            );
        }
        for (i, m) in route.matches.iter().enumerate() {
            let here = path.field("match").index(i);
            for (field, matcher) in [
                ("uri", &m.uri),
                ("scheme", &m.scheme),
                ("method", &m.method),
                ("authority", &m.authority),
            ] {
                if let Some(matcher) = matcher {
                    self.string_match(&here.field(field), matcher);
                }
            }
            for (field, map) in [
                ("headers", &m.headers),
                ("queryParams", &m.query_params),
                ("withoutHeaders", &m.without_headers),
            ] {
                for (name, matcher) in map {
                    self.string_match(&here.field(field).field(name), matcher);
                }
            }
            if let Some(port) = m.port {
                self.port(&here.field("port"), port.into());
            }
        }
        self.http_route_destinations(&path.field("route"), &route.route);
        self.duration(&path.field("timeout"), route.timeout.as_ref());
        if let Some(retries) = &route.retries {
            let here = path.field("retries");
            if retries.attempts < 0 {
                self.error(&here.field("attempts"), "attempts cannot be negative");
            }
            let configured = retries.per_try_timeout.is_some()
                || !retries.retry_on.is_empty()
                || retries.retry_remote_localities.is_some();
            if retries.attempts == 0 && configured {
                self.error(
                    &here,
                    "http retry policy configured when attempts are set to 0 (disabled)",
                );
            }
            self.duration(
                &here.field("perTryTimeout"),
                retries.per_try_timeout.as_ref(),
            );
            self.duration(&here.field("backoff"), retries.backoff.as_ref());
            for policy in retries
                .retry_on
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
            {
                let status = policy.parse::<u16>().is_ok_and(|s| (100..600).contains(&s));
                if !status && !RETRY_ON.contains(&policy) {
                    self.error_hint(
                        &here.field("retryOn"),
                        format!("{policy} is not a valid retryOn value"),
                        format!("use status codes or {}", RETRY_ON.join(", ")),
                    );
                }
            }
        }
        if let Some(fault) = &route.fault {
            let here = path.field("fault");
            if fault.delay.is_none() && fault.abort.is_none() {
                self.error(
                    &here,
                    "HTTP fault injection must have an abort and/or a delay",
                );
            }
            if let Some(delay) = &fault.delay {
                self.fault_delay(&here.field("delay"), delay);
            }
            if let Some(abort) = &fault.abort {
                self.fault_abort(&here.field("abort"), abort);
            }
        }
        if route.mirror.is_some() && !route.mirrors.is_empty() {
            self.error(path, "HTTP route cannot contain both mirror and mirrors");
        }
        if let Some(mirror) = &route.mirror {
            self.destination(&path.field("mirror"), mirror);
        }
        for (i, mirror) in route.mirrors.iter().enumerate() {
            let here = path.field("mirrors").index(i);
            self.destination(&here.field("destination"), &mirror.destination);
            self.percentage(&here.field("percentage"), mirror.percentage.as_ref());
        }
        if let Some(percent) = route.mirror_percent {
            let here = path.field("mirrorPercent");
            if percent > 100 {
                self.error(
                    &here,
                    format!("mirror_percent must have a max value of 100 (it has {percent})"),
                );
            }
            self.warning(
                &here,
                "using deprecated setting \"mirrorPercent\", use \"mirrorPercentage\" instead",
                None,
            );
        }
        self.percentage(
            &path.field("mirrorPercentage"),
            route.mirror_percentage.as_ref(),
        );
        if let Some(redirect) = &route.redirect {
            let here = path.field("redirect");
            if !redirect.uri.is_empty() && !redirect.prefix_rewrite.is_empty() {
                self.error(
                    &here,
                    "redirect may only specify one of uri or prefix_rewrite",
                );
            }
            if redirect.port.is_some() && redirect.derive_port.is_some() {
                self.error(&here, "redirect may only specify one of port or derivePort");
            }
            let anything = !redirect.uri.is_empty()
                || !redirect.authority.is_empty()
                || !redirect.scheme.is_empty()
                || !redirect.prefix_rewrite.is_empty()
                || redirect.port.is_some()
                || redirect.derive_port.is_some();
            if !anything {
                self.error(
                    &here,
                    "redirect must specify URI, authority, scheme, or port",
                );
            }
            if let Some(code) = redirect.redirect_code
                && !(300..=399).contains(&code)
            {
                self.error(
                    &here.field("redirectCode"),
                    format!("{code} is not a valid redirect code, must be 3xx"),
                );
            }
            if !matches!(redirect.scheme.as_str(), "" | "http" | "https") {
                self.error(
                    &here.field("scheme"),
                    "invalid redirect scheme, must be \"http\" or \"https\"",
                );
            }
        }
        if let Some(direct) = &route.direct_response
            && !(200..=599).contains(&direct.status)
        {
            self.error(
                &path.field("directResponse").field("status"),
                format!("status {} is not in range 200-599", direct.status),
            );
        }
        if let Some(rewrite) = &route.rewrite {
            let here = path.field("rewrite");
            if !rewrite.uri.is_empty() && rewrite.uri_regex_rewrite.is_some() {
                self.error(
                    &here,
                    "rewrite may only contain one of URI or UriRegexRewrite",
                );
            }
            if rewrite.uri.is_empty()
                && rewrite.authority.is_empty()
                && rewrite.uri_regex_rewrite.is_none()
            {
                self.error(
                    &here,
                    "rewrite must specify at least one of URI, UriRegexRewrite, or authority",
                );
            }
            if let Some(regex) = &rewrite.uri_regex_rewrite {
                let at = here.field("uriRegexRewrite");
                if regex.pattern.is_empty() || regex.rewrite.is_empty() {
                    self.error(
                        &at,
                        "UriRegexRewrite requires both Rewrite and Match fields to be specified",
                    );
                } else {
                    self.regex(&at.field("match"), &regex.pattern);
                }
            }
        }
        if let Some(cors) = &route.cors_policy {
            let here = path.field("corsPolicy");
            for (i, origin) in cors.allow_origins.iter().enumerate() {
                self.string_match(&here.field("allowOrigins").index(i), origin);
            }
            self.duration(&here.field("maxAge"), cors.max_age.as_ref());
        }
    }

    fn fault_delay(&mut self, path: &FieldPath, delay: &FaultDelay) {
        if delay.exponential_delay.is_some() {
            self.error(
                &path.field("exponentialDelay"),
                "exponentialDelay not supported yet",
            );
        } else if delay.fixed_delay.is_none() {
            self.error_hint(
                path,
                "delay requires fixedDelay",
                "e.g. fixedDelay: 7s, with percentage: {value: 100}",
            );
        }
        self.duration(&path.field("fixedDelay"), delay.fixed_delay.as_ref());
        self.percentage(&path.field("percentage"), delay.percentage.as_ref());
        if let Some(percent) = delay.percent
            && !(0..=100).contains(&percent)
        {
            self.error(
                &path.field("percent"),
                format!("percentage {percent} is not in range 0..100"),
            );
        }
    }

    fn fault_abort(&mut self, path: &FieldPath, abort: &FaultAbort) {
        self.percentage(&path.field("percentage"), abort.percentage.as_ref());
        let set = [
            abort.http_status.is_some(),
            abort.grpc_status.is_some(),
            abort.http2_error.is_some(),
        ];
        if set.iter().filter(|s| **s).count() > 1 {
            self.error(
                path,
                "abort may only specify one of httpStatus, grpcStatus or http2Error",
            );
        }
        if abort.http2_error.is_some() {
            self.error(
                &path.field("http2Error"),
                "HTTP/2 abort fault injection not supported yet",
            );
        }
        if let Some(status) = abort.http_status
            && !(200..=599).contains(&status)
        {
            self.error(
                &path.field("httpStatus"),
                format!("HTTP status {status} is not in range 200-599"),
            );
        }
        if let Some(status) = &abort.grpc_status
            && !GRPC_STATUS.contains(&status.as_str())
        {
            self.error_hint(
                &path.field("grpcStatus"),
                format!("gRPC status {status:?} is not supported"),
                "use a status name such as UNAVAILABLE or NOT_FOUND",
            );
        }
        if set.iter().all(|s| !*s) {
            self.warning(
                path,
                "abort configured, but error type not set",
                Some("set httpStatus, e.g. httpStatus: 500".into()),
            );
        }
    }

    fn destination(&mut self, path: &FieldPath, destination: &Destination) {
        if destination.host.is_empty() {
            self.error(&path.field("host"), "destination host is required");
        } else {
            self.host(&path.field("host"), &destination.host, true);
        }
        if !destination.subset.is_empty()
            && let Err(why) = dns_label(&destination.subset)
        {
            self.error(
                &path.field("subset"),
                format!("subset name is invalid: {:?}: {why}", destination.subset),
            );
        }
        if let Some(port) = &destination.port {
            self.port(&path.field("port").field("number"), port.number.into());
        }
    }

    fn http_route_destinations(&mut self, path: &FieldPath, routes: &[HttpRouteDestination]) {
        let weights: Vec<i32> = routes.iter().map(|r| r.weight).collect();
        for (i, route) in routes.iter().enumerate() {
            self.destination(&path.index(i).field("destination"), &route.destination);
        }
        self.weights(path, &weights);
    }

    fn route_destinations(&mut self, path: &FieldPath, routes: &[RouteDestination]) {
        let weights: Vec<i32> = routes.iter().map(|r| r.weight).collect();
        for (i, route) in routes.iter().enumerate() {
            self.destination(&path.index(i).field("destination"), &route.destination);
        }
        self.weights(path, &weights);
    }

    /// Since Istio 1.15 weights are normalised; only negative weights and an all-zero
    /// split are errors. A total other than 100 is legal but usually a slip.
    fn weights(&mut self, path: &FieldPath, weights: &[i32]) {
        for (i, weight) in weights.iter().enumerate() {
            if *weight < 0 {
                self.error(
                    &path.index(i).field("weight"),
                    format!("weight {weight} < 0"),
                );
            }
        }
        if weights.len() < 2 || weights.iter().any(|w| *w < 0) {
            return;
        }
        let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
        if total == 0 {
            self.error(path, "total destination weight = 0");
        } else if total != 100 {
            let shares: Vec<String> = weights
                .iter()
                .map(|w| format!("{:.1}%", f64::from(*w) * 100.0 / total as f64))
                .collect();
            self.warning(
                path,
                format!("total destination weight {total} != 100"),
                Some(format!(
                    "Istio normalises the weights, so traffic splits {}; make them add up to 100 to say what you mean",
                    shares.join(" / ")
                )),
            );
        }
    }

    fn destination_rule(&mut self, path: &FieldPath, dr: &DestinationRule) {
        let spec = &dr.spec;
        if spec.host.is_empty() {
            self.error(&path.field("host"), "host is required");
        } else {
            self.host(&path.field("host"), &spec.host, true);
        }
        if let Some(policy) = &spec.traffic_policy {
            self.traffic_policy(&path.field("trafficPolicy"), policy);
        }
        let mut names = BTreeSet::new();
        for (i, subset) in spec.subsets.iter().enumerate() {
            let here = path.field("subsets").index(i);
            if subset.name.is_empty() {
                self.error(&here.field("name"), "subset name cannot be empty");
            } else if let Err(why) = dns_label(&subset.name) {
                self.error(
                    &here.field("name"),
                    format!("subset name is invalid: {:?}: {why}", subset.name),
                );
            } else if !names.insert(subset.name.as_str()) {
                self.error(
                    &here.field("name"),
                    format!("duplicate subset names: {}", subset.name),
                );
            }
            self.labels(&here.field("labels"), &subset.labels);
            if let Some(policy) = &subset.traffic_policy {
                self.traffic_policy(&here.field("trafficPolicy"), policy);
            }
        }
        if spec.workload_selector.is_none() {
            self.credential_scope(path, dr);
        }
        if let Some(selector) = &spec.workload_selector {
            self.selector_labels(
                &path.field("workloadSelector").field("matchLabels"),
                &selector.match_labels,
            );
            if spec.export_to.iter().any(|e| e != ".") {
                self.error(
                    &path.field("exportTo"),
                    "destination rule with workload selector cannot have exportTo beyond current namespace",
                );
            }
        }
    }

    fn traffic_policy(&mut self, path: &FieldPath, policy: &TrafficPolicy) {
        self.policy_parts(
            path,
            policy.load_balancer.as_ref(),
            policy.connection_pool.as_ref(),
            policy.outlier_detection.as_ref(),
            policy.tls.as_ref(),
        );
        for (field, set) in [
            ("tunnel", policy.tunnel.is_some()),
            ("proxyProtocol", policy.proxy_protocol.is_some()),
            ("retryBudget", policy.retry_budget.is_some()),
        ] {
            if set {
                self.unsupported(
                    &path.field(field),
                    field,
                    "remove it; the lab's proxies cannot honour it",
                );
            }
        }
        for (i, port_policy) in policy.port_level_settings.iter().enumerate() {
            let here = path.field("portLevelSettings").index(i);
            match &port_policy.port {
                Some(port) => self.port(&here.field("port").field("number"), port.number.into()),
                None => self.error(
                    &here.field("port"),
                    "portTrafficPolicy must have valid port",
                ),
            }
            self.policy_parts(
                &here,
                port_policy.load_balancer.as_ref(),
                port_policy.connection_pool.as_ref(),
                port_policy.outlier_detection.as_ref(),
                port_policy.tls.as_ref(),
            );
        }
    }

    fn policy_parts(
        &mut self,
        path: &FieldPath,
        lb: Option<&LoadBalancerSettings>,
        pool: Option<&ConnectionPoolSettings>,
        outlier: Option<&OutlierDetection>,
        tls: Option<&ClientTlsSettings>,
    ) {
        if let Some(lb) = lb {
            let here = path.field("loadBalancer");
            if lb.simple.is_some() && lb.consistent_hash.is_some() {
                self.error(&here, "only one of simple or consistentHash can be set");
            }
            if let Some(hash) = &lb.consistent_hash {
                let at = here.field("consistentHash");
                let keys = [
                    hash.http_header_name.is_some(),
                    hash.http_cookie.is_some(),
                    hash.use_source_ip.is_some(),
                    hash.http_query_parameter_name.is_some(),
                ];
                if keys.iter().filter(|k| **k).count() != 1 {
                    self.error(
                        &at,
                        "consistentHash needs exactly one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName",
                    );
                }
                if let Some(cookie) = &hash.http_cookie
                    && cookie.name.is_empty()
                {
                    self.error(
                        &at.field("httpCookie").field("name"),
                        "name required for HttpCookie",
                    );
                }
                if hash.minimum_ring_size.is_some()
                    && (hash.ring_hash.is_some() || hash.maglev.is_some())
                {
                    self.error(
                        &at,
                        "only one of MinimumRingSize or Maglev/Ringhash can be specified",
                    );
                }
            }
            for field in ["localityLbSetting", "zoneAwareLbSetting"] {
                let set = if field == "localityLbSetting" {
                    lb.locality_lb_setting.is_some()
                } else {
                    lb.zone_aware_lb_setting.is_some()
                };
                if set {
                    self.unsupported(
                        &here.field(field),
                        field,
                        "a lab has a single locality; remove it",
                    );
                }
            }
        }
        if let Some(pool) = pool {
            let here = path.field("connectionPool");
            if let Some(tcp) = &pool.tcp {
                let at = here.field("tcp");
                if tcp.max_connections.is_some_and(|n| n < 0) {
                    self.error(
                        &at.field("maxConnections"),
                        "max connections must be non-negative",
                    );
                }
                self.duration(&at.field("connectTimeout"), tcp.connect_timeout.as_ref());
                self.duration(
                    &at.field("maxConnectionDuration"),
                    tcp.max_connection_duration.as_ref(),
                );
                self.duration(&at.field("idleTimeout"), tcp.idle_timeout.as_ref());
                if let Some(keepalive) = &tcp.tcp_keepalive {
                    self.duration(
                        &at.field("tcpKeepalive").field("time"),
                        keepalive.time.as_ref(),
                    );
                    self.duration(
                        &at.field("tcpKeepalive").field("interval"),
                        keepalive.interval.as_ref(),
                    );
                }
            }
            if let Some(http) = &pool.http {
                let at = here.field("http");
                for (field, value, what) in [
                    (
                        "http1MaxPendingRequests",
                        http.http1_max_pending_requests,
                        "http1 max pending requests",
                    ),
                    (
                        "http2MaxRequests",
                        http.http2_max_requests,
                        "http2 max requests",
                    ),
                    (
                        "maxRequestsPerConnection",
                        http.max_requests_per_connection,
                        "max requests per connection",
                    ),
                    ("maxRetries", http.max_retries, "max retries"),
                    (
                        "maxConcurrentStreams",
                        http.max_concurrent_streams,
                        "max concurrent streams",
                    ),
                ] {
                    if value.is_some_and(|n| n < 0) {
                        self.error(&at.field(field), format!("{what} must be non-negative"));
                    }
                }
                self.duration(&at.field("idleTimeout"), http.idle_timeout.as_ref());
            }
        }
        if let Some(outlier) = outlier {
            let here = path.field("outlierDetection");
            self.duration(&here.field("interval"), outlier.interval.as_ref());
            self.duration(
                &here.field("baseEjectionTime"),
                outlier.base_ejection_time.as_ref(),
            );
            for (field, value) in [
                ("maxEjectionPercent", outlier.max_ejection_percent),
                ("minHealthPercent", outlier.min_health_percent),
            ] {
                if let Some(value) = value.filter(|v| !(0..=100).contains(v)) {
                    self.error(
                        &here.field(field),
                        format!("percentage {value} is not in range 0..100"),
                    );
                }
            }
            if outlier.consecutive_errors.is_some() {
                self.warning(
                    &here.field("consecutiveErrors"),
                    "consecutiveErrors is deprecated",
                    Some("use consecutive5xxErrors or consecutiveGatewayErrors".into()),
                );
            }
        }
        if let Some(tls) = tls {
            self.client_tls(&path.field("tls"), tls);
        }
    }

    /// `ClientTLSSettings`: Istio's rules, and the file-based fields meshlab pods
    /// have no files for.
    fn client_tls(&mut self, path: &FieldPath, tls: &ClientTlsSettings) {
        let mode = tls.mode.unwrap_or(ClientTlsMode::Disable);
        let files = [
            ("clientCertificate", &tls.client_certificate),
            ("privateKey", &tls.private_key),
            ("caCertificates", &tls.ca_certificates),
            ("caCrl", &tls.ca_crl),
        ];
        let with_credential = matches!(mode, ClientTlsMode::Simple | ClientTlsMode::Mutual)
            && !tls.credential_name.is_empty();
        for (field, value) in files.iter().filter(|(_, v)| !v.is_empty()) {
            if with_credential {
                self.error(
                    &path.field(field),
                    "cannot specify client certificates or CA certificate or CA CRL if credentialName is set",
                );
            } else {
                self.unsupported(
                    &path.field(field),
                    &format!("{field} (a file in the sidecar, {value:?})"),
                    "meshlab pods mount no certificate files: put the certificate, key and CA in a Secret \
                     (`meshlab create secret generic NAME --from-file=tls.crt=… --from-file=tls.key=… \
                     --from-file=ca.crt=…`) and name it in credentialName",
                );
            }
        }
        if mode == ClientTlsMode::Mutual
            && tls.credential_name.is_empty()
            && tls.client_certificate.is_empty()
        {
            self.error_hint(
                &path.field("mode"),
                "client certificate required for mutual tls",
                "name a Secret holding tls.crt, tls.key (and ca.crt) in credentialName",
            );
        }
    }

    /// `credentialName` reaches sidecars only through a selected rule.
    fn credential_scope(&mut self, path: &FieldPath, dr: &DestinationRule) {
        let spec = &dr.spec;
        let mut policies: Vec<(FieldPath, &TrafficPolicy)> = Vec::new();
        if let Some(policy) = &spec.traffic_policy {
            policies.push((path.field("trafficPolicy"), policy));
        }
        for (i, subset) in spec.subsets.iter().enumerate() {
            if let Some(policy) = &subset.traffic_policy {
                policies.push((
                    path.field("subsets").index(i).field("trafficPolicy"),
                    policy,
                ));
            }
        }
        let mut named = Vec::new();
        for (here, policy) in &policies {
            named.extend(policy.tls.as_ref().map(|tls| (here.field("tls"), tls)));
            for (i, port) in policy.port_level_settings.iter().enumerate() {
                named.extend(
                    port.tls
                        .as_ref()
                        .map(|tls| (here.field("portLevelSettings").index(i).field("tls"), tls)),
                );
            }
        }
        for (here, tls) in named {
            if !tls.credential_name.is_empty()
                && matches!(
                    tls.mode,
                    Some(ClientTlsMode::Simple | ClientTlsMode::Mutual)
                )
            {
                self.warning(
                    &here.field("credentialName"),
                    "credentialName applies at gateways, and at sidecars only when the DestinationRule has a workloadSelector; sidecars this rule reaches present no client certificate and trust the system CAs",
                    Some("add a workloadSelector selecting the client workloads (the Secret must be in their namespace)".into()),
                );
            }
        }
    }

    fn secret(&mut self, root: &FieldPath, secret: &Secret) {
        for (field, values) in [("data", &secret.data), ("stringData", &secret.string_data)] {
            for key in values.keys() {
                let valid = !key.is_empty()
                    && key.len() <= 253
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                if !valid {
                    self.error(
                        &root.field(field).field(key),
                        format!("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (got {key:?})"),
                    );
                }
            }
        }
        if let Err((key, why)) = secret.decoded() {
            self.error_hint(
                &root.field("data").field(&key),
                format!("illegal base64 data: {why}"),
                "values under data are base64 (`base64 -w0 FILE`); put plain text under stringData",
            );
        }
        if secret.type_name() == SECRET_TYPE_TLS {
            for key in ["tls.crt", "tls.key"] {
                if !secret.data.contains_key(key) && !secret.string_data.contains_key(key) {
                    self.error(
                        &root.field("data").field(key),
                        format!(
                            "required field {key} is missing for a secret of type {SECRET_TYPE_TLS}"
                        ),
                    );
                }
            }
        }
    }

    /// A Gateway server's TLS: meshlab terminates `SIMPLE` and `MUTUAL` with a
    /// `credentialName`; the rest is refused by name rather than ignored.
    fn server_tls(&mut self, here: &FieldPath, server: &Server) {
        let Some(tls) = &server.tls else { return };
        let path = here.field("tls");
        let protocol = server.port.protocol.to_ascii_uppercase();
        if protocol == "TLS" {
            self.unsupported(
                &here.field("port").field("protocol"),
                "gateway server protocol TLS (routing by SNI with VirtualService tls routes)",
                "use protocol HTTPS with tls.mode SIMPLE or MUTUAL",
            );
            return;
        }
        if protocol != "HTTPS" {
            return;
        }
        match tls.mode {
            Some(ServerTlsMode::Simple | ServerTlsMode::Mutual) => {}
            Some(mode) => {
                let name = serde_json::to_value(mode)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                self.unsupported(
                    &path.field("mode"),
                    &format!("gateway tls mode {name}"),
                    "use SIMPLE or MUTUAL with a credentialName",
                );
            }
            None => self.error(
                &path.field("mode"),
                "tls mode is required for HTTPS servers",
            ),
        }
        if tls.credential_name.is_empty() {
            self.error_hint(
                &path.field("credentialName"),
                "a SIMPLE or MUTUAL server needs a credentialName",
                "create the Secret in the gateway's namespace (`meshlab create -n istio-system secret tls NAME --key=… --cert=…`) and name it here",
            );
        }
        let unsupported: [(&str, bool); 12] = [
            ("serverCertificate", !tls.server_certificate.is_empty()),
            ("privateKey", !tls.private_key.is_empty()),
            ("caCertificates", !tls.ca_certificates.is_empty()),
            ("caCrl", !tls.ca_crl.is_empty()),
            ("credentialNames", !tls.credential_names.is_empty()),
            (
                "caCertCredentialName",
                !tls.ca_cert_credential_name.is_empty(),
            ),
            ("tlsCertificates", !tls.tls_certificates.is_empty()),
            ("subjectAltNames", !tls.subject_alt_names.is_empty()),
            (
                "verifyCertificateSpki",
                !tls.verify_certificate_spki.is_empty(),
            ),
            (
                "verifyCertificateHash",
                !tls.verify_certificate_hash.is_empty(),
            ),
            ("cipherSuites", !tls.cipher_suites.is_empty()),
            (
                "minProtocolVersion/maxProtocolVersion",
                tls.min_protocol_version.is_some() || tls.max_protocol_version.is_some(),
            ),
        ];
        for (field, set) in unsupported {
            if set {
                let at = field.split('/').next().unwrap_or(field);
                self.unsupported(
                    &path.field(at),
                    &format!("gateway tls {field}"),
                    "remove it; meshlab gateways take the certificate, key and CA from the credentialName Secret",
                );
            }
        }
        if tls.insecure_skip_verify == Some(true) {
            self.unsupported(
                &path.field("insecureSkipVerify"),
                "gateway tls insecureSkipVerify",
                "remove it",
            );
        }
    }

    fn gateway(&mut self, path: &FieldPath, gw: &Gateway) {
        let spec = &gw.spec;
        if spec.servers.is_empty() {
            self.error(
                &path.field("servers"),
                "gateway must have at least one server",
            );
        }
        self.selector_labels(&path.field("selector"), &spec.selector);
        let mut names = BTreeSet::new();
        for (i, server) in spec.servers.iter().enumerate() {
            let here = path.field("servers").index(i);
            if server.hosts.is_empty() {
                self.error(
                    &here.field("hosts"),
                    "server config must contain at least one host",
                );
            }
            for (j, host) in server.hosts.iter().enumerate() {
                // `namespace/host` is allowed on gateways.
                let name = host.rsplit('/').next().unwrap_or(host);
                self.host(&here.field("hosts").index(j), name, true);
            }
            let port = here.field("port");
            self.port(&port.field("number"), server.port.number.into());
            let protocol = server.port.protocol.to_ascii_uppercase();
            if !GATEWAY_PROTOCOLS.contains(&protocol.as_str()) {
                self.error(
                    &port.field("protocol"),
                    format!(
                        "invalid protocol {:?}, supported protocols are {}",
                        server.port.protocol,
                        GATEWAY_PROTOCOLS.join(", ")
                    ),
                );
            }
            if server.port.name.is_empty() {
                self.error(&port.field("name"), "port name must be set");
            } else if !names.insert(server.port.name.as_str()) {
                self.error(
                    &port.field("name"),
                    format!(
                        "port names in servers must be unique: duplicate name {}",
                        server.port.name
                    ),
                );
            }
            if !GATEWAY_SERVED.contains(&protocol.as_str())
                && GATEWAY_PROTOCOLS.contains(&protocol.as_str())
            {
                self.unsupported(
                    &port.field("protocol"),
                    &format!("gateway server protocol {protocol}"),
                    "use HTTP, HTTP2, GRPC or HTTPS",
                );
            }
            self.server_tls(&here, server);
            let tls_protocol = matches!(protocol.as_str(), "HTTPS" | "TLS");
            match &server.tls {
                None if tls_protocol => {
                    self.error(
                        &here.field("tls"),
                        "server must have TLS settings for HTTPS/TLS protocols",
                    );
                }
                Some(tls) if !tls_protocol && !tls.https_redirect => {
                    self.error(
                        &here.field("tls"),
                        "server cannot have TLS settings for plain text HTTP ports",
                    );
                }
                _ => {}
            }
        }
    }

    fn service_entry(&mut self, path: &FieldPath, se: &ServiceEntry) {
        let spec = &se.spec;
        if spec.hosts.is_empty() {
            self.error(
                &path.field("hosts"),
                "service entry must have at least one host",
            );
        }
        for (i, host) in spec.hosts.iter().enumerate() {
            let here = path.field("hosts").index(i);
            if host == "*" {
                self.error(&here, "invalid host *");
            } else {
                self.host(&here, host, true);
            }
        }
        if spec.workload_selector.is_some() && !spec.endpoints.is_empty() {
            self.error(
                path,
                "only one of WorkloadSelector or Endpoints is allowed in Service Entry",
            );
        }
        let resolution = spec.resolution.unwrap_or(Resolution::None);
        for (i, address) in spec.addresses.iter().enumerate() {
            if address.contains('/') && !matches!(resolution, Resolution::None | Resolution::Static)
            {
                self.error(
                    &path.field("addresses").index(i),
                    "CIDR addresses are allowed only for NONE/STATIC resolution types",
                );
            }
        }
        let mut names = BTreeSet::new();
        let mut numbers = BTreeSet::new();
        for (i, port) in spec.ports.iter().enumerate() {
            let here = path.field("ports").index(i);
            self.port(&here.field("number"), port.number.into());
            if let Some(target) = port.target_port {
                self.port(&here.field("targetPort"), target.into());
            }
            if !names.insert(port.name.as_str()) {
                self.error(
                    &here.field("name"),
                    format!("service entry port name {:?} already defined", port.name),
                );
            }
            if !numbers.insert(port.number) {
                self.error(
                    &here.field("number"),
                    format!("service entry port {} already defined", port.number),
                );
            }
            if !port.protocol.is_empty()
                && !PORT_PROTOCOLS.contains(&port.protocol.to_ascii_uppercase().as_str())
            {
                self.error(
                    &here.field("protocol"),
                    format!("unsupported protocol: {}", port.protocol),
                );
            }
        }
        match resolution {
            Resolution::None if !spec.endpoints.is_empty() => {
                self.error(
                    &path.field("endpoints"),
                    "no endpoints should be provided for resolution type none",
                );
            }
            Resolution::DnsRoundRobin if spec.endpoints.len() > 1 => {
                self.error(
                    &path.field("endpoints"),
                    "there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN",
                );
            }
            Resolution::DynamicDns => self.unsupported(
                &path.field("resolution"),
                "resolution DYNAMIC_DNS",
                "use DNS",
            ),
            _ => {}
        }
        for (i, endpoint) in spec.endpoints.iter().enumerate() {
            self.workload_entry(&path.field("endpoints").index(i), endpoint, Some(&names));
        }
        if let Some(selector) = &spec.workload_selector {
            self.selector_labels(
                &path.field("workloadSelector").field("labels"),
                &selector.labels,
            );
        }
    }

    fn workload_entry(
        &mut self,
        path: &FieldPath,
        we: &WorkloadEntrySpec,
        service_ports: Option<&BTreeSet<&str>>,
    ) {
        if we.address.is_empty() {
            self.error(&path.field("address"), "address is required");
        } else if we.address.parse::<std::net::IpAddr>().is_err() && dns_name(&we.address).is_err()
        {
            self.error(
                &path.field("address"),
                format!(
                    "endpoint address {:?} is not a valid FQDN or an IP address",
                    we.address
                ),
            );
        }
        for (name, port) in &we.ports {
            let here = path.field("ports").field(name);
            self.port(&here, (*port).into());
            if service_ports.is_some_and(|ports| !ports.contains(name.as_str())) {
                self.error(
                    &here,
                    format!("endpoint port {name} is not defined by the service entry"),
                );
            }
        }
        self.labels(&path.field("labels"), &we.labels);
    }

    fn sidecar(&mut self, path: &FieldPath, sidecar: &Sidecar) {
        let spec = &sidecar.spec;
        if let Some(selector) = &spec.workload_selector {
            self.selector_labels(
                &path.field("workloadSelector").field("labels"),
                &selector.labels,
            );
        }
        if spec.ingress.is_empty()
            && spec.egress.is_empty()
            && spec.outbound_traffic_policy.is_none()
            && spec.inbound_connection_pool.is_none()
        {
            self.error(path, "sidecar: empty configuration provided");
        }
        if spec.inbound_connection_pool.is_some() {
            self.unsupported(
                &path.field("inboundConnectionPool"),
                "inboundConnectionPool",
                "remove it",
            );
        }
        for (i, ingress) in spec.ingress.iter().enumerate() {
            let here = path.field("ingress").index(i);
            self.port(
                &here.field("port").field("number"),
                ingress.port.number.into(),
            );
            if ingress.tls.is_some() {
                self.unsupported(
                    &here.field("tls"),
                    "sidecar ingress tls",
                    "remove it; mTLS is configured with PeerAuthentication",
                );
            }
            if ingress.connection_pool.is_some() {
                self.unsupported(
                    &here.field("connectionPool"),
                    "sidecar ingress connectionPool",
                    "remove it",
                );
            }
            if !ingress.bind.is_empty() {
                self.unsupported(
                    &here.field("bind"),
                    "sidecar ingress bind",
                    "remove it: meshlab's sidecar takes the port's captured traffic",
                );
            }
            if ingress.capture_mode == Some(CaptureMode::None) {
                self.unsupported(
                    &here.field("captureMode"),
                    "captureMode NONE",
                    "remove it: meshlab always captures inbound traffic",
                );
            }
            let endpoint = &ingress.default_endpoint;
            if endpoint.is_empty() {
                self.error_hint(
                    &here.field("defaultEndpoint"),
                    "meshlab needs a defaultEndpoint for a sidecar ingress listener",
                    "e.g. defaultEndpoint: 127.0.0.1:8080",
                );
            } else if endpoint.starts_with("unix://") {
                self.unsupported(
                    &here.field("defaultEndpoint"),
                    "a unix domain socket endpoint",
                    "use 127.0.0.1:PORT or 0.0.0.0:PORT",
                );
            } else if crate::translate::IngressEndpoint::parse(endpoint).is_none() {
                self.error(
                    &here.field("defaultEndpoint"),
                    format!(
                        "invalid defaultEndpoint {endpoint:?}: it must be 127.0.0.1:PORT, [::1]:PORT, 0.0.0.0:PORT or [::]:PORT"
                    ),
                );
            }
        }
        let last = spec.egress.len().saturating_sub(1);
        let mut portless = 0;
        for (i, egress) in spec.egress.iter().enumerate() {
            let here = path.field("egress").index(i);
            match &egress.port {
                Some(port) => self.port(&here.field("port").field("number"), port.number.into()),
                None => {
                    portless += 1;
                    if i != last {
                        self.error(&here, "sidecar: the egress listener with empty port should be the last listener in the list");
                    }
                }
            }
            if egress.hosts.is_empty() {
                self.error(
                    &here.field("hosts"),
                    "sidecar: egress listener must contain at least one host",
                );
            }
            for (j, host) in egress.hosts.iter().enumerate() {
                let valid = host
                    .split_once('/')
                    .is_some_and(|(ns, name)| !ns.is_empty() && !name.is_empty());
                if !valid {
                    self.error_hint(
                        &here.field("hosts").index(j),
                        format!("egress host {host:?} must be of the form namespace/dnsName"),
                        "e.g. ./* for this namespace, istio-system/* for the root namespace",
                    );
                }
            }
        }
        if portless > 1 {
            self.error(
                &path.field("egress"),
                "sidecar: egress can have only one listener with empty port",
            );
        }
        if let Some(policy) = &spec.outbound_traffic_policy
            && policy.egress_proxy.is_some()
        {
            self.unsupported(
                &path.field("outboundTrafficPolicy").field("egressProxy"),
                "egressProxy",
                "route external traffic with a ServiceEntry and VirtualService instead",
            );
        }
    }
}

// === impl Checker: security.istio.io ===

impl Checker {
    fn peer_authentication(&mut self, path: &FieldPath, pa: &PeerAuthentication) {
        let spec = &pa.spec;
        self.workload_selector(&path.field("selector"), spec.selector.as_ref());
        let has_selector = spec
            .selector
            .as_ref()
            .is_some_and(|s| !s.match_labels.is_empty());
        if !spec.port_level_mtls.is_empty() && !has_selector {
            self.error_hint(
                &path.field("portLevelMtls"),
                "mesh/namespace peer authentication cannot have port level mTLS",
                "add selector.matchLabels naming the workload",
            );
        }
        for port in spec.port_level_mtls.keys() {
            if !(1..=65535).contains(port) {
                self.error(
                    &path.field("portLevelMtls").field(&port.to_string()),
                    "port must be in range 1..65535",
                );
            }
        }
    }

    fn authorization_policy(&mut self, path: &FieldPath, ap: &AuthorizationPolicy) {
        let spec = &ap.spec;
        self.workload_selector(&path.field("selector"), spec.selector.as_ref());
        self.target_refs(path, spec.target_ref.as_ref(), &spec.target_refs);
        let action = spec.action.unwrap_or(Action::Allow);
        match (action, &spec.provider) {
            (Action::Custom, None) => {
                self.error(&path.field("provider"), "`provider.name` must not be empty");
            }
            (Action::Custom, Some(provider)) if provider.name.is_empty() => {
                self.error(
                    &path.field("provider").field("name"),
                    "`provider.name` must not be empty",
                );
            }
            (Action::Custom, Some(_)) => self.unsupported(
                &path.field("action"),
                "action CUSTOM (external authorization)",
                "use ALLOW or DENY policies",
            ),
            (_, Some(_)) => self.error(
                &path.field("provider"),
                format!(
                    "`provider` must not be with non CUSTOM action, found {}",
                    action_name(action)
                ),
            ),
            _ => {}
        }
        if matches!(action, Action::Deny | Action::Custom) && spec.rules.is_empty() {
            self.error(
                &path.field("rules"),
                format!(
                    "{} action without `rules` is meaningless as it will never be triggered, add an empty rule `{{}}` if you want it be triggered for every request",
                    action_name(action)
                ),
            );
        }
        for (i, rule) in spec.rules.iter().enumerate() {
            let here = path.field("rules").index(i);
            for (j, from) in rule.from.iter().enumerate() {
                let at = here.field("from").index(j);
                match &from.source {
                    None => self.error(
                        &at.field("source"),
                        format!("`from.source` must not be nil, found at rule {i}"),
                    ),
                    Some(source) => {
                        if *source == Default::default() {
                            self.error(
                                &at.field("source"),
                                format!("`from.source` must not be empty, found at rule {i}"),
                            );
                        }
                        let accounts = !source.service_accounts.is_empty()
                            || !source.not_service_accounts.is_empty();
                        let others = !source.namespaces.is_empty()
                            || !source.not_namespaces.is_empty()
                            || !source.principals.is_empty()
                            || !source.not_principals.is_empty();
                        if accounts && others {
                            self.error(
                                &at.field("source"),
                                format!("cannot set serviceAccounts with namespaces or principals, found at rule {i}"),
                            );
                        }
                        let source_path = at.field("source");
                        for (field, values) in [
                            ("trustDomains", &source.trust_domains),
                            ("notTrustDomains", &source.not_trust_domains),
                        ] {
                            if !values.is_empty() {
                                self.unsupported(
                                    &source_path.field(field),
                                    field,
                                    "match peers by principals or namespaces",
                                );
                            }
                        }
                        for (field, blocks) in [
                            ("ipBlocks", &source.ip_blocks),
                            ("notIpBlocks", &source.not_ip_blocks),
                            ("remoteIpBlocks", &source.remote_ip_blocks),
                            ("notRemoteIpBlocks", &source.not_remote_ip_blocks),
                        ] {
                            for (k, block) in blocks.iter().enumerate() {
                                if !ip_or_cidr(block) {
                                    self.error(
                                        &source_path.field(field).index(k),
                                        format!("invalid IP address or CIDR range: {block:?}"),
                                    );
                                }
                            }
                        }
                    }
                }
            }
            for (j, to) in rule.to.iter().enumerate() {
                let at = here.field("to").index(j);
                match &to.operation {
                    None => self.error(
                        &at.field("operation"),
                        format!("`to.operation` must not be nil, found at rule {i}"),
                    ),
                    Some(operation) if *operation == Default::default() => {
                        self.error(
                            &at.field("operation"),
                            format!("`to.operation` must not be empty, found at rule {i}"),
                        );
                    }
                    Some(operation) => {
                        for (field, ports) in [
                            ("ports", &operation.ports),
                            ("notPorts", &operation.not_ports),
                        ] {
                            for (k, port) in ports.iter().enumerate() {
                                if !port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p)) {
                                    self.error(
                                        &at.field("operation").field(field).index(k),
                                        format!("invalid port {port:?}: must be a number in the range 1..65535"),
                                    );
                                }
                            }
                        }
                    }
                }
            }
            for (j, condition) in rule.when.iter().enumerate() {
                let at = here.field("when").index(j);
                if condition.key.is_empty() {
                    self.error(&at.field("key"), "`key` must not be empty");
                } else if condition.key.starts_with("experimental.") {
                    self.unsupported(
                        &at.field("key"),
                        &format!("condition key {:?}", condition.key),
                        "use request.headers[…], source.*, destination.* or request.auth.* keys",
                    );
                } else if !meshlab_proxy_config::authz::known_condition_key(&condition.key) {
                    self.error_hint(
                        &at.field("key"),
                        format!("unknown attribute: {}", condition.key),
                        "Istio's keys are request.headers[name], source.ip, remote.ip, source.namespace, source.principal, request.auth.principal, request.auth.audiences, request.auth.presenter, request.auth.claims[name], destination.ip, destination.port and connection.sni",
                    );
                } else if condition.values.is_empty() && condition.not_values.is_empty() {
                    self.error(
                        &at,
                        format!(
                            "at least one of `values` or `notValues` must be set for key {}",
                            condition.key
                        ),
                    );
                }
                for (field, values) in [
                    ("values", &condition.values),
                    ("notValues", &condition.not_values),
                ] {
                    for (k, value) in values.iter().enumerate() {
                        let ok = match condition.key.as_str() {
                            "source.ip" | "remote.ip" | "destination.ip" => ip_or_cidr(value),
                            "destination.port" => {
                                value.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p))
                            }
                            _ => true,
                        };
                        if !ok {
                            self.error(
                                &at.field(field).index(k),
                                format!("invalid value {value:?} for {}", condition.key),
                            );
                        }
                    }
                }
            }
        }
    }

    fn request_authentication(&mut self, path: &FieldPath, ra: &RequestAuthentication) {
        let spec = &ra.spec;
        self.workload_selector(&path.field("selector"), spec.selector.as_ref());
        self.target_refs(path, spec.target_ref.as_ref(), &spec.target_refs);
        for (i, rule) in spec.jwt_rules.iter().enumerate() {
            let here = path.field("jwtRules").index(i);
            if rule.issuer.is_empty() && rule.jwks_uri.is_empty() {
                self.error(&here, "issuer or jwksUri must be non-empty string");
            }
            if !rule.jwks.is_empty() && !rule.jwks_uri.is_empty() {
                self.error(&here, "only one of jwks or jwksUri can be set");
            }
            let scheme_ok = ["http://", "https://"]
                .iter()
                .any(|s| rule.jwks_uri.starts_with(s));
            if !rule.jwks_uri.is_empty() && !scheme_ok {
                self.error(
                    &here.field("jwksUri"),
                    "url must have scheme http:// or https://",
                );
            }
            for (j, audience) in rule.audiences.iter().enumerate() {
                if audience.is_empty() {
                    self.error(
                        &here.field("audiences").index(j),
                        "audience must be non-empty string",
                    );
                }
            }
            for (j, header) in rule.from_headers.iter().enumerate() {
                if header.name.is_empty() {
                    self.error(
                        &here.field("fromHeaders").index(j).field("name"),
                        "location header name must be non-empty string",
                    );
                }
            }
            for (j, param) in rule.from_params.iter().enumerate() {
                if param.is_empty() {
                    self.error(
                        &here.field("fromParams").index(j),
                        "location query must be non-empty string",
                    );
                }
            }
            if !rule.jwks.is_empty()
                && !serde_json::from_str::<serde_json::Value>(&rule.jwks)
                    .is_ok_and(|v| v.get("keys").is_some_and(serde_json::Value::is_array))
            {
                self.error_hint(
                    &here.field("jwks"),
                    "jwks is not a JSON Web Key Set",
                    "give a JSON object with a \"keys\" array, or use jwksUri",
                );
            }
            for (field, set) in [
                ("fromCookies", !rule.from_cookies.is_empty()),
                (
                    "spaceDelimitedClaims",
                    !rule.space_delimited_claims.is_empty(),
                ),
                ("timeout", rule.timeout.is_some()),
            ] {
                if set {
                    self.unsupported(
                        &here.field(field),
                        field,
                        "remove it; meshlab reads tokens from headers and query parameters and fetches jwksUri once",
                    );
                }
            }
            for (j, cookie) in rule.from_cookies.iter().enumerate() {
                if cookie.is_empty() {
                    self.error(
                        &here.field("fromCookies").index(j),
                        "cookie name must be non-empty string",
                    );
                }
            }
            for (j, claim) in rule.output_claim_to_headers.iter().enumerate() {
                if claim.header.is_empty() || claim.claim.is_empty() {
                    self.error(
                        &here.field("outputClaimToHeaders").index(j),
                        "outputClaimToHeaders header and claim value must be non-empty string",
                    );
                }
            }
            self.duration(&here.field("timeout"), rule.timeout.as_ref());
        }
    }
}

/// An IP address or a CIDR range (`10.0.0.1`, `10.0.0.0/16`, `2001:db8::/32`).
fn ip_or_cidr(text: &str) -> bool {
    let (address, len) = text
        .split_once('/')
        .map_or((text, None), |(a, l)| (a, Some(l)));
    match address.parse::<std::net::IpAddr>() {
        Ok(ip) => len.is_none_or(|l| {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            l.parse::<u32>().is_ok_and(|l| l <= max)
        }),
        Err(_) => false,
    }
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Allow => "ALLOW",
        Action::Deny => "DENY",
        Action::Audit => "AUDIT",
        Action::Custom => "CUSTOM",
    }
}

// === name rules (Kubernetes apimachinery validation, in our words) ===

/// An RFC 1123 label: `reviews`, `v1`, `bookinfo-gateway`.
fn dns_label(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', start and end with an alphanumeric character, and be at most 63 characters".into())
    }
}

/// An RFC 1123 subdomain: dot-separated labels, at most 253 characters.
fn dns_name(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| dns_label(label).is_ok())
    {
        Ok(())
    } else {
        Err("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".into())
    }
}

/// A label key: optional `prefix/` (a DNS subdomain) and a name of at most 63
/// characters made of alphanumerics, `-`, `_` and `.`, starting and ending with an
/// alphanumeric.
fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = key
        .rsplit_once('/')
        .map_or((None, key), |(p, n)| (Some(p), n));
    if let Some(prefix) = prefix {
        dns_name(prefix).map_err(|why| format!("prefix: {why}"))?;
    }
    if name.is_empty() {
        return Err("name part must be non-empty".into());
    }
    label_value(name)
}

/// A label value: empty, or at most 63 alphanumerics, `-`, `_` and `.`, starting and
/// ending with an alphanumeric.
fn label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    let bytes = value.as_bytes();
    let ok = value.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err("must be 63 characters or less and consist of alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric character".into())
    }
}
