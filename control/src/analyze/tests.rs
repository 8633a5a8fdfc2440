//! `analyze` as a table of manifests and the findings istioctl would report.

use std::path::PathBuf;
use std::sync::Arc;

use super::*;
use crate::store::Store;
use crate::yaml;

const BOOKINFO: &str = include_str!("../../tests/data/bookinfo.yaml");
const BOOKINFO_GATEWAY: &str = include_str!("../../tests/data/bookinfo-gateway.yaml");
const DESTINATION_RULE_ALL: &str = include_str!("../../tests/data/destination-rule-all.yaml");
const ALL_V1: &str = include_str!("../../tests/data/virtual-service-all-v1.yaml");

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The store's snapshot after applying `manifests` in order, into `default`.
fn snapshot(manifests: &[&str]) -> Arc<Snapshot> {
    let dir = Scratch(std::env::temp_dir().join(format!(
        "meshlab-analyze-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    )));
    let store = Store::open(&dir.0).unwrap();
    for manifest in manifests {
        let resources = yaml::load("test.yaml", manifest)
            .unwrap_or_else(|d| panic!("{d:#?}"))
            .documents
            .into_iter()
            .map(|d| d.resource)
            .collect();
        store.apply(resources, "default").unwrap();
    }
    store.snapshot()
}

/// `(code, resource, field)` of each finding in `default`.
fn found(manifests: &[&str]) -> Vec<(&'static str, String, String)> {
    analyze(&snapshot(manifests), Some("default"))
        .into_iter()
        .map(|f| (f.code, f.resource, f.field))
        .collect()
}

fn finding(code: &'static str, resource: &str, field: &str) -> (&'static str, String, String) {
    (code, resource.to_owned(), field.to_owned())
}

const REVIEWS_V4: &str = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
        subset: v4
";

#[test]
fn bookinfo_with_subsets_and_routes_is_clean() {
    let snapshot = snapshot(&[BOOKINFO, BOOKINFO_GATEWAY, DESTINATION_RULE_ALL, ALL_V1]);
    let findings = analyze(&snapshot, Some("default"));
    assert_eq!(findings, []);
    assert_eq!(
        render(&findings, Some("default")),
        "✔ No validation issues found when analyzing namespace: default."
    );
    assert!(!has_errors(&findings));
    assert_eq!(analyze(&snapshot, None), []);
}

#[test]
fn unknown_subset_is_ist0101() {
    let findings = analyze(
        &snapshot(&[BOOKINFO, DESTINATION_RULE_ALL, REVIEWS_V4]),
        Some("default"),
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(
        findings[0].to_string(),
        "Error [IST0101] (VirtualService default/reviews \
         spec.http[0].route[0].destination.subset) \
         Referenced host+subset in destinationrule not found: \"reviews+v4\""
    );
    assert!(has_errors(&findings));
}

#[test]
fn subset_without_any_destination_rule_is_ist0101() {
    assert_eq!(
        found(&[BOOKINFO, REVIEWS_V4]),
        [finding(
            "IST0101",
            "VirtualService default/reviews",
            "spec.http[0].route[0].destination.subset"
        )]
    );
}

#[test]
fn unknown_host_is_ist0101() {
    let vs = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
      weight: 50
    - destination:
        host: reveiws
      weight: 50
    mirror:
      host: reviews.default.svc.cluster.local
  tcp:
  - route:
    - destination:
        host: httpbin.org
";
    assert_eq!(
        found(&[BOOKINFO, vs]),
        [
            finding(
                "IST0101",
                "VirtualService default/reviews",
                "spec.http[0].route[1].destination.host"
            ),
            finding(
                "IST0101",
                "VirtualService default/reviews",
                "spec.tcp[0].route[0].destination.host"
            ),
        ]
    );
}

#[test]
fn service_entry_hosts_resolve() {
    let entry = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: wikipedia
spec:
  hosts: ['*.wikipedia.org', httpbin.org]
  ports:
  - number: 443
    name: tls
    protocol: TLS
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: external
spec:
  hosts: [httpbin.org]
  tls:
  - match:
    - sniHosts: [httpbin.org]
    route:
    - destination:
        host: httpbin.org
  - match:
    - sniHosts: [en.wikipedia.org]
    route:
    - destination:
        host: en.wikipedia.org
";
    assert_eq!(found(&[entry]), []);
}

#[test]
fn missing_gateway_is_ist0101() {
    let vs = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bookinfo
spec:
  hosts: [bookinfo.example.com]
  gateways: [bookinfo-gateway, mesh, istio-system/missing]
  http:
  - route:
    - destination:
        host: productpage
";
    let findings = analyze(&snapshot(&[BOOKINFO, vs]), Some("default"));
    let lines: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "Error [IST0101] (VirtualService default/bookinfo spec.gateways[0]) \
             Referenced gateway not found: \"bookinfo-gateway\"",
            "Error [IST0101] (VirtualService default/bookinfo spec.gateways[2]) \
             Referenced gateway not found: \"istio-system/missing\"",
        ]
    );
}

#[test]
fn destination_rule_for_unknown_host_is_ist0101() {
    let dr = "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: typo
spec:
  host: reveiws
";
    assert_eq!(
        found(&[BOOKINFO, dr]),
        [finding(
            "IST0101",
            "DestinationRule default/typo",
            "spec.host"
        )]
    );
}

#[test]
fn two_mesh_virtual_services_for_one_host_are_ist0109() {
    let second = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews-canary
spec:
  hosts: [reviews.default.svc.cluster.local]
  gateways: [mesh]
  http:
  - route:
    - destination:
        host: reviews
        subset: v2
";
    let findings = analyze(
        &snapshot(&[BOOKINFO, DESTINATION_RULE_ALL, ALL_V1, second]),
        Some("default"),
    );
    let found: Vec<_> = findings
        .iter()
        .map(|f| (f.code, f.resource.as_str(), f.field.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("IST0109", "VirtualService default/reviews", "spec.hosts[0]"),
            (
                "IST0109",
                "VirtualService default/reviews-canary",
                "spec.hosts[0]"
            ),
        ]
    );
    assert!(
        findings[0]
            .message
            .contains("default/reviews, default/reviews-canary"),
        "{}",
        findings[0].message
    );
}

#[test]
fn gateway_bound_virtual_services_do_not_conflict_with_the_mesh() {
    let gateway_vs = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews-edge
spec:
  hosts: [reviews]
  gateways: [bookinfo-gateway]
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
";
    assert_eq!(
        found(&[
            BOOKINFO,
            BOOKINFO_GATEWAY,
            DESTINATION_RULE_ALL,
            ALL_V1,
            gateway_vs
        ]),
        []
    );
}

#[test]
fn two_namespace_wide_sidecars_are_ist0111() {
    let sidecars = "\
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
spec:
  egress:
  - hosts: ['./*']
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: other
spec:
  egress:
  - hosts: ['istio-system/*']
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: ratings
spec:
  workloadSelector:
    labels:
      app: ratings
  egress:
  - hosts: ['./*']
";
    assert_eq!(
        found(&[sidecars]),
        [
            finding(
                "IST0111",
                "Sidecar default/default",
                "spec.workloadSelector"
            ),
            finding("IST0111", "Sidecar default/other", "spec.workloadSelector"),
        ]
    );
}

#[test]
fn namespace_filter_keeps_other_namespaces_out() {
    let snapshot = snapshot(&[BOOKINFO, REVIEWS_V4]);
    assert_eq!(analyze(&snapshot, Some("istio-system")), []);
    assert_eq!(
        render(&[], Some("istio-system")),
        "✔ No validation issues found when analyzing namespace: istio-system."
    );
    assert_eq!(analyze(&snapshot, None).len(), 1);
}

#[test]
fn files_are_analysed_over_what_is_applied_and_located_by_line() {
    let applied = snapshot(&[BOOKINFO, DESTINATION_RULE_ALL]);
    let file = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v9
";
    let documents = yaml::load("reviews-v9.yaml", file).unwrap().documents;
    let findings = analyze_files(&applied, &documents, "default", Some("default"));
    let lines: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "Error [IST0101] (VirtualService default/reviews reviews-v9.yaml:12) Referenced host+subset in destinationrule not found: \"reviews+v9\""
        ],
        "{lines:#?}"
    );
    // Nothing was applied: the store still has no such VirtualService.
    assert!(analyze(&applied, Some("default")).is_empty());
}

#[test]
fn field_paths_read_back_as_displayed() {
    let path = FieldPath::root()
        .field("spec")
        .field("http")
        .index(0)
        .field("route")
        .index(1)
        .field("destination");
    assert_eq!(FieldPath::parse(&path.to_string()), path);
    assert_eq!(FieldPath::parse(""), FieldPath::root());
}

#[test]
fn a_gateway_credential_without_its_secret_is_ist0101() {
    const INGRESS: &str = include_str!("../../../labs/samples/istio-ingressgateway.yaml");
    const GATEWAY: &str = "\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: mygateway
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: httpbin-credential}
    hosts: [httpbin.example.com]
";
    const IN_DEFAULT: &str = "\
apiVersion: v1
kind: Secret
metadata:
  name: httpbin-credential
stringData: {tls.crt: C, tls.key: K}
";
    let lines: Vec<String> = analyze(&snapshot(&[INGRESS, GATEWAY, IN_DEFAULT]), Some("default"))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            "Error [IST0101] (Gateway default/mygateway spec.servers[0].tls.credentialName) \
          Referenced credentialName not found: \"httpbin-credential\" in namespace \"istio-system\" \
          of the gateway it selects (hint: `meshlab create -n istio-system secret tls httpbin-credential --cert=… --key=…`)"
        ],
        "the secret must be beside the gateway pod, not the Gateway resource"
    );
    let beside = IN_DEFAULT.replace(
        "  name: httpbin-credential\n",
        "  name: httpbin-credential\n  namespace: istio-system\n",
    );
    assert!(found(&[INGRESS, GATEWAY, &beside]).is_empty());
}
