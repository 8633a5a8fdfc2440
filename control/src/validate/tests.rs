use super::*;
use crate::diagnostic::Severity;
use crate::yaml;

/// Loads one document and returns its diagnostics as `path: message` strings.
fn check(text: &str) -> Vec<(Severity, String)> {
    let document = yaml::parse_stream("t.yaml", text)
        .remove(0)
        .unwrap_or_else(|d| panic!("{d}"));
    validate(&document.resource)
        .into_iter()
        .map(|d| {
            (
                d.severity,
                format!("{}: {}", d.field.unwrap_or_default(), d.message),
            )
        })
        .collect()
}

fn errors(text: &str) -> Vec<String> {
    check(text)
        .into_iter()
        .filter(|(s, _)| *s == Severity::Error)
        .map(|(_, m)| m)
        .collect()
}

fn vs(http: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: r}}\nspec:\n  hosts: [reviews]\n  http:\n{http}"
    )
}

#[test]
fn weights_follow_istio_1_15_and_later() {
    let split = |a: i32, b: i32| {
        vs(&format!(
            "  - route:\n    - destination: {{host: reviews, subset: v1}}\n      weight: {a}\n    - destination: {{host: reviews, subset: v2}}\n      weight: {b}\n"
        ))
    };
    assert!(check(&split(80, 20)).is_empty());
    let warned = check(&split(60, 60));
    assert_eq!(warned.len(), 1);
    assert_eq!(
        warned[0],
        (
            Severity::Warning,
            "spec.http[0].route: total destination weight 120 != 100".into()
        )
    );
    assert_eq!(
        errors(&split(0, 0)),
        ["spec.http[0].route: total destination weight = 0"]
    );
    assert_eq!(
        errors(&split(-1, 101)),
        ["spec.http[0].route[0].weight: weight -1 < 0"]
    );
}

#[test]
fn invalid_regex_is_rejected() {
    let text = vs(
        "  - match:\n    - uri: {regex: \"a(b\"}\n    route:\n    - destination: {host: reviews}\n",
    );
    let found = errors(&text);
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("spec.http[0].match[0].uri.regex: invalid regex \"a(b\""),
        "{found:?}"
    );
    // RE2 has no backreferences.
    let text = vs(
        "  - match:\n    - headers: {cookie: {regex: \"(a)\\\\1\"}}\n    route:\n    - destination: {host: reviews}\n",
    );
    assert_eq!(errors(&text).len(), 1);
    assert!(errors(&vs("  - match:\n    - uri: {regex: \"^/api/v[0-9]+/.*\"}\n    route:\n    - destination: {host: reviews}\n")).is_empty());
}

#[test]
fn fault_rules() {
    let no_delay = vs(
        "  - fault:\n      delay: {percentage: {value: 50}}\n    route:\n    - destination: {host: reviews}\n",
    );
    assert_eq!(
        errors(&no_delay),
        ["spec.http[0].fault.delay: delay requires fixedDelay"]
    );
    let bad = vs(
        "  - fault:\n      abort: {httpStatus: 700, percentage: {value: 150}}\n    route:\n    - destination: {host: reviews}\n",
    );
    assert_eq!(
        errors(&bad),
        [
            "spec.http[0].fault.abort.percentage.value: percentage 150 is neither 0.0, nor in range [0.0001, 100.0]",
            "spec.http[0].fault.abort.httpStatus: HTTP status 700 is not in range 200-599",
        ]
    );
    let empty = vs("  - fault: {}\n    route:\n    - destination: {host: reviews}\n");
    assert_eq!(
        errors(&empty),
        ["spec.http[0].fault: HTTP fault injection must have an abort and/or a delay"]
    );
}

#[test]
fn timeouts_and_retries() {
    let text = vs(
        "  - timeout: 0s\n    retries: {attempts: -1, retryOn: \"5xx,bogus\"}\n    route:\n    - destination: {host: reviews}\n",
    );
    assert_eq!(
        errors(&text),
        [
            "spec.http[0].timeout: duration 0s must be greater than 1ms",
            "spec.http[0].retries.attempts: attempts cannot be negative",
            "spec.http[0].retries.retryOn: bogus is not a valid retryOn value",
        ]
    );
}

#[test]
fn virtual_service_shape() {
    let no_hosts = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  http:\n  - route:\n    - destination: {host: reviews}\n";
    assert_eq!(
        errors(no_hosts),
        [
            "spec.hosts: virtual service has no hosts: delegate virtual services are not supported by meshlab"
        ]
    );
    let wildcard = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [\"*\"]\n  http:\n  - route:\n    - destination: {host: reviews}\n";
    assert_eq!(
        errors(wildcard),
        [
            "spec.hosts[0]: wildcard host * is not allowed for virtual services bound to the mesh gateway"
        ]
    );
    let nothing = vs("  - name: empty\n");
    assert_eq!(
        errors(&nothing),
        ["spec.http[0]: HTTP route, redirect or direct_response is required"]
    );
}

#[test]
fn destination_rule_rules() {
    let text = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: reviews\n  trafficPolicy:\n    loadBalancer: {simple: RANDOM, localityLbSetting: {enabled: true}}\n    outlierDetection: {maxEjectionPercent: 120}\n  subsets:\n  - name: v1\n  - name: v1\n";
    assert_eq!(
        errors(text),
        [
            "spec.trafficPolicy.loadBalancer.localityLbSetting: localityLbSetting is not supported by meshlab",
            "spec.trafficPolicy.outlierDetection.maxEjectionPercent: percentage 120 is not in range 0..100",
            "spec.subsets[1].name: duplicate subset names: v1",
        ]
    );
}

#[test]
fn security_rules() {
    let custom = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ext}\nspec:\n  action: CUSTOM\n  rules: [{}]\n";
    assert_eq!(
        errors(custom),
        ["spec.provider: `provider.name` must not be empty"]
    );
    let deny = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: d}\nspec:\n  action: DENY\n";
    assert!(errors(deny)[0].starts_with("spec.rules: DENY action without `rules` is meaningless"));
    let target = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: t}\nspec:\n  targetRef: {kind: Gateway, name: gw}\n";
    assert_eq!(
        errors(target),
        ["spec.targetRef: targetRef is not supported by meshlab"]
    );
    let ports = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p}\nspec:\n  portLevelMtls:\n    8080: {mode: DISABLE}\n";
    assert_eq!(
        errors(ports),
        ["spec.portLevelMtls: mesh/namespace peer authentication cannot have port level mTLS"]
    );
    let jwt = "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: j}\nspec:\n  jwtRules:\n  - {issuer: me, jwks: '{\"keys\": []}', jwksUri: 'https://x/jwks'}\n";
    assert_eq!(
        errors(jwt),
        ["spec.jwtRules[0]: only one of jwks or jwksUri can be set"]
    );
}

#[test]
fn authorization_fields_meshlab_cannot_honour_are_named() {
    let custom = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ext}\nspec:\n  action: CUSTOM\n  provider: {name: opa}\n  rules: [{}]\n";
    assert_eq!(
        errors(custom),
        ["spec.action: action CUSTOM (external authorization) is not supported by meshlab"]
    );
    let policy = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec:\n  rules:\n  - from:\n    - source:\n        ipBlocks: [10.0.0.0/8, 10.0.0.1, 'nope', 10.0.0.0/40]\n        trustDomains: [td]\n    when:\n    - {key: 'request.headers[x-token]', values: [a]}\n    - {key: 'request.auth.claims[a][b]', values: [a]}\n    - {key: source.ips, values: [a]}\n    - {key: destination.port, values: ['0', '80']}\n    - {key: remote.ip, notValues: [1.2.3.4/33]}\n    - {key: 'experimental.envoy.filters.network.mysql_proxy[db.table]', values: [a]}\n";
    assert_eq!(
        errors(policy),
        [
            "spec.rules[0].from[0].source.trustDomains: trustDomains is not supported by meshlab",
            "spec.rules[0].from[0].source.ipBlocks[2]: invalid IP address or CIDR range: \"nope\"",
            "spec.rules[0].from[0].source.ipBlocks[3]: invalid IP address or CIDR range: \"10.0.0.0/40\"",
            "spec.rules[0].when[2].key: unknown attribute: source.ips",
            "spec.rules[0].when[3].values[0]: invalid value \"0\" for destination.port",
            "spec.rules[0].when[4].notValues[0]: invalid value \"1.2.3.4/33\" for remote.ip",
            "spec.rules[0].when[5].key: condition key \"experimental.envoy.filters.network.mysql_proxy[db.table]\" is not supported by meshlab",
        ]
    );
    let jwt = "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: j}\nspec:\n  jwtRules:\n  - issuer: me\n    jwks: 'not json'\n    fromCookies: [session]\n    timeout: 5s\n";
    assert_eq!(
        errors(jwt),
        [
            "spec.jwtRules[0].jwks: jwks is not a JSON Web Key Set",
            "spec.jwtRules[0].fromCookies: fromCookies is not supported by meshlab",
            "spec.jwtRules[0].timeout: timeout is not supported by meshlab",
        ]
    );
}

#[test]
fn mode_enums_are_checked_when_decoding() {
    let text = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p}\nspec:\n  mtls: {mode: STRCT}\n";
    let error = yaml::parse_stream("pa.yaml", text).remove(0).unwrap_err();
    assert_eq!(error.field.unwrap().to_string(), "spec.mtls.mode");
    assert!(
        error.message.starts_with(
            "unknown variant `STRCT`, expected one of `UNSET`, `DISABLE`, `PERMISSIVE`, `STRICT`"
        ),
        "{}",
        error.message
    );
}

#[test]
fn kubernetes_rules() {
    let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: Bad_Name}\nspec:\n  replicas: -1\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: b}}\n    spec:\n      containers:\n      - name: a\n        image: a\n        env:\n        - name: POD\n          valueFrom: {fieldRef: {fieldPath: metadata.name}}\n";
    let found = errors(text);
    assert_eq!(found.len(), 4, "{found:#?}");
    assert!(found[0].starts_with("metadata.name: invalid value \"Bad_Name\""));
    assert!(found[1].starts_with("spec.replicas: invalid value -1"));
    assert_eq!(
        found[2],
        "spec.template.metadata.labels: `selector` does not match template `labels`"
    );
    assert_eq!(
        found[3],
        "spec.template.spec.containers[0].env[0].valueFrom: env valueFrom is not supported by meshlab"
    );
    let service = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports:\n  - {port: 80}\n  - {port: 70000}\n";
    assert_eq!(
        errors(service),
        [
            "spec.ports[0].name: required value: ports of a multi-port Service must be named",
            "spec.ports[1].port: port number 70000 must be in the range 1..65535",
            "spec.ports[1].name: required value: ports of a multi-port Service must be named",
        ]
    );
}

#[test]
fn sidecar_ingress_listeners_say_what_meshlab_cannot_do() {
    let sidecar = |ingress: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: s\nspec:\n  workloadSelector:\n    labels:\n      app: a\n  ingress:\n  - port:\n      number: 9080\n      protocol: HTTP\n      name: http\n{ingress}"
        )
    };
    assert!(errors(&sidecar("    defaultEndpoint: 127.0.0.1:8080\n")).is_empty());
    assert!(errors(&sidecar("    defaultEndpoint: '[::]:8080'\n")).is_empty());
    let missing = errors(&sidecar(""));
    assert!(
        missing
            .iter()
            .any(|e| e.contains("spec.ingress[0].defaultEndpoint") && e.contains("needs")),
        "{missing:?}"
    );
    let unix = errors(&sidecar("    defaultEndpoint: unix:///var/run/app.sock\n"));
    assert!(unix.iter().any(|e| e.contains("not supported")), "{unix:?}");
    let other = errors(&sidecar("    defaultEndpoint: 10.0.0.1:8080\n"));
    assert!(
        other.iter().any(|e| e.contains("invalid defaultEndpoint")),
        "{other:?}"
    );
    let bind = errors(&sidecar(
        "    defaultEndpoint: 127.0.0.1:8080\n    bind: 127.0.0.1\n    captureMode: NONE\n",
    ));
    assert!(
        bind.iter().any(|e| e.contains("spec.ingress[0].bind"))
            && bind
                .iter()
                .any(|e| e.contains("spec.ingress[0].captureMode")),
        "{bind:?}"
    );
}

#[test]
fn secrets_need_base64_data_and_tls_secrets_their_pair() {
    let secret =
        |body: &str| format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\n{body}");
    assert!(
        check(&secret(
            "type: Opaque\ndata: {ca.crt: Q0E=}\nstringData: {key: plain}\n"
        ))
        .is_empty()
    );
    assert_eq!(
        errors(&secret("data: {tls.crt: 'not base64!'}\n")),
        ["data.tls.crt: illegal base64 data: Invalid symbol 32, offset 3."]
    );
    assert_eq!(
        errors(&secret("type: kubernetes.io/tls\ndata: {tls.crt: Q0E=}\n")),
        ["data.tls.key: required field tls.key is missing for a secret of type kubernetes.io/tls"]
    );
    assert_eq!(
        errors(&secret("stringData: {'a/b': x}\n")),
        [
            "stringData.a/b: a valid config key must consist of alphanumeric characters, '-', '_' or '.' (got \"a/b\")"
        ]
    );
}

#[test]
fn client_tls_takes_credentials_from_secrets_not_files() {
    let rule = |tls: &str, selector: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: d}}\nspec:\n  host: nginx\n{selector}  trafficPolicy:\n    tls: {tls}\n"
        )
    };
    let selector = "  workloadSelector:\n    matchLabels: {app: curl}\n";
    assert!(
        check(&rule(
            "{mode: MUTUAL, credentialName: client-credential}",
            selector
        ))
        .is_empty()
    );
    assert_eq!(
        errors(&rule("{mode: MUTUAL}", selector)),
        ["spec.trafficPolicy.tls.mode: client certificate required for mutual tls"]
    );
    assert_eq!(
        errors(&rule(
            "{mode: MUTUAL, clientCertificate: /etc/certs/c.pem, privateKey: /etc/certs/k.pem}",
            selector
        )),
        [
            "spec.trafficPolicy.tls.clientCertificate: clientCertificate (a file in the sidecar, \"/etc/certs/c.pem\") is not supported by meshlab",
            "spec.trafficPolicy.tls.privateKey: privateKey (a file in the sidecar, \"/etc/certs/k.pem\") is not supported by meshlab",
        ]
    );
    assert_eq!(
        errors(&rule(
            "{mode: SIMPLE, credentialName: c, caCertificates: /ca.pem}",
            selector
        )),
        [
            "spec.trafficPolicy.tls.caCertificates: cannot specify client certificates or CA certificate or CA CRL if credentialName is set"
        ]
    );
    let warned = check(&rule(
        "{mode: MUTUAL, credentialName: client-credential}",
        "",
    ));
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(warned[0].0, Severity::Warning);
    assert!(
        warned[0].1.starts_with("spec.trafficPolicy.tls.credentialName: credentialName applies at gateways, and at sidecars only when the DestinationRule has a workloadSelector"),
        "{warned:?}"
    );
}

#[test]
fn gateway_servers_meshlab_cannot_serve_are_refused_by_name() {
    let server = |port: &str, tls: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: g}}\nspec:\n  selector: {{istio: ingressgateway}}\n  servers:\n  - port: {port}\n    hosts: [httpbin.example.com]\n{tls}"
        )
    };
    let https = "{number: 443, name: https, protocol: HTTPS}";
    assert!(
        check(&server(
            https,
            "    tls: {mode: MUTUAL, credentialName: c}\n"
        ))
        .is_empty()
    );
    assert_eq!(
        errors(&server(https, "    tls: {mode: PASSTHROUGH}\n")),
        [
            "spec.servers[0].tls.mode: gateway tls mode PASSTHROUGH is not supported by meshlab",
            "spec.servers[0].tls.credentialName: a SIMPLE or MUTUAL server needs a credentialName",
        ]
    );
    assert_eq!(
        errors(&server(
            https,
            "    tls: {mode: SIMPLE, serverCertificate: /etc/c.pem, privateKey: /etc/k.pem, credentialName: c}\n"
        )),
        [
            "spec.servers[0].tls.serverCertificate: gateway tls serverCertificate is not supported by meshlab",
            "spec.servers[0].tls.privateKey: gateway tls privateKey is not supported by meshlab",
        ]
    );
    assert_eq!(
        errors(&server("{number: 31400, name: tcp, protocol: TCP}", "")),
        ["spec.servers[0].port.protocol: gateway server protocol TCP is not supported by meshlab"]
    );
    assert_eq!(
        errors(&server(
            "{number: 443, name: tls, protocol: TLS}",
            "    tls: {mode: PASSTHROUGH}\n"
        )),
        [
            "spec.servers[0].port.protocol: gateway server protocol TLS (routing by SNI with VirtualService tls routes) is not supported by meshlab"
        ]
    );
    assert!(
        check(&server(
            "{number: 80, name: http, protocol: HTTP}",
            "    tls: {httpsRedirect: true}\n"
        ))
        .is_empty(),
        "httpsRedirect is served"
    );
}
