use super::*;
use crate::diagnostic::Severity;
use crate::resource::Kind;
use crate::resource::networking::StringMatch;

/// Istio-shaped samples; each must load with zero errors and zero warnings.
const SAMPLES: &[(&str, &str)] = &[
    (
        "bookinfo.yaml",
        include_str!("../../tests/data/bookinfo.yaml"),
    ),
    (
        "destination-rule-all.yaml",
        include_str!("../../tests/data/destination-rule-all.yaml"),
    ),
    (
        "virtual-service-all-v1.yaml",
        include_str!("../../tests/data/virtual-service-all-v1.yaml"),
    ),
    (
        "virtual-service-reviews-test-v2.yaml",
        include_str!("../../tests/data/virtual-service-reviews-test-v2.yaml"),
    ),
    (
        "virtual-service-ratings-test-delay.yaml",
        include_str!("../../tests/data/virtual-service-ratings-test-delay.yaml"),
    ),
    (
        "bookinfo-gateway.yaml",
        include_str!("../../tests/data/bookinfo-gateway.yaml"),
    ),
    (
        "traffic-tasks.yaml",
        include_str!("../../tests/data/traffic-tasks.yaml"),
    ),
    (
        "security-tasks.yaml",
        include_str!("../../tests/data/security-tasks.yaml"),
    ),
    (
        "clients.yaml",
        include_str!("../../tests/data/clients.yaml"),
    ),
    (
        "tls-tasks.yaml",
        include_str!("../../tests/data/tls-tasks.yaml"),
    ),
];

fn load_ok(file: &str, text: &str) -> Vec<Document> {
    match load(file, text) {
        Ok(loaded) => {
            assert!(
                loaded.warnings.is_empty(),
                "{file}: unexpected warnings: {:#?}",
                loaded.warnings
            );
            loaded.documents
        }
        Err(diagnostics) => panic!(
            "{file} must load:\n{}",
            diagnostics
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

fn only_error(file: &str, text: &str) -> Diagnostic {
    let mut diagnostics = load(file, text).expect_err("must fail");
    assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
    diagnostics.remove(0)
}

#[test]
fn istio_samples_load_without_diagnostics() {
    let mut kinds = std::collections::BTreeSet::new();
    for (file, text) in SAMPLES {
        for document in load_ok(file, text) {
            kinds.insert(document.resource.kind());
        }
    }
    // Every kind the issue names appears in the samples.
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>().len(),
        Kind::ALL.len() - 1,
        "all but Namespace"
    );
}

#[test]
fn bookinfo_yields_every_document_in_order() {
    let documents = load_ok("bookinfo.yaml", SAMPLES[0].1);
    let names: Vec<String> = documents
        .iter()
        .map(|d| format!("{}/{}", d.resource.kind(), d.resource.name()))
        .collect();
    assert_eq!(names.len(), 14);
    assert_eq!(names[0], "Service/details");
    assert_eq!(names[2], "Deployment/details-v1");
    assert_eq!(names[13], "Deployment/productpage-v1");
    let Resource::Deployment(productpage) = &documents[13].resource else {
        panic!()
    };
    let pod = &productpage.spec.template;
    assert_eq!(pod.metadata.annotations["prometheus.io/scrape"], "true");
    assert_eq!(
        pod.spec.service_account_name.as_deref(),
        Some("bookinfo-productpage")
    );
    assert_eq!(pod.spec.containers[0].ports[0].container_port, 9080);
    // The document starts after the comment banner.
    assert_eq!(documents[13].source.start().line, 272);
}

#[test]
fn durations_and_matches_are_typed() {
    let documents = load_ok("delay.yaml", SAMPLES[4].1);
    let Resource::VirtualService(vs) = &documents[0].resource else {
        panic!()
    };
    let route = &vs.spec.http[0];
    assert_eq!(
        route.matches[0].headers["end-user"],
        StringMatch::Exact("jason".into())
    );
    let delay = route.fault.as_ref().and_then(|f| f.delay.as_ref()).unwrap();
    assert_eq!(
        delay.fixed_delay.as_ref().unwrap().get(),
        std::time::Duration::from_secs(7)
    );
    assert!((delay.percentage.unwrap().value - 100.0).abs() < f64::EPSILON);
}

#[test]
fn integer_map_keys_decode() {
    let documents = load_ok("security.yaml", SAMPLES[7].1);
    let Resource::PeerAuthentication(pa) = &documents[1].resource else {
        panic!()
    };
    assert!(pa.spec.port_level_mtls.contains_key(&8080));
}

#[test]
fn typo_reports_line_column_resource_and_path() {
    let text = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subsett: v2
";
    let error = only_error("reviews.yaml", text);
    assert_eq!(error.file.as_deref(), Some("reviews.yaml"));
    assert_eq!(
        error.position,
        Some(Position {
            line: 13,
            column: 9
        })
    );
    assert_eq!(
        error.field.as_ref().map(ToString::to_string).as_deref(),
        Some("spec.http[0].route[0].destination.subsett")
    );
    let resource = error.resource.as_ref().unwrap();
    assert_eq!(resource.to_string(), "VirtualService default/reviews");
    assert!(
        error
            .message
            .starts_with("unknown field `subsett`, expected one of"),
        "{}",
        error.message
    );
    assert!(error.to_string().starts_with(
        "reviews.yaml:13:9: VirtualService default/reviews: spec.http[0].route[0].destination.subsett: unknown field"
    ));
}

#[test]
fn typo_in_second_document_reports_its_own_line() {
    let text = format!(
        "{}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports:\n  - port: 80\n    targetPrt: 8080\n",
        SAMPLES[3].1
    );
    let results = parse_stream("two.yaml", &text);
    assert_eq!(results.len(), 2);
    assert!(results[0].is_ok());
    let error = results[1].as_ref().unwrap_err();
    assert_eq!(error.position.map(|p| p.line), Some(29));
    assert_eq!(
        error.field.as_ref().unwrap().to_string(),
        "spec.ports[0].targetPrt"
    );
}

#[test]
fn type_errors_point_at_the_value() {
    let text = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: r\nspec:\n  hosts: [r]\n  http:\n  - timeout: 7x\n    route:\n    - destination:\n        host: r\n";
    let error = only_error("t.yaml", text);
    assert_eq!(
        error.field.as_ref().unwrap().to_string(),
        "spec.http[0].timeout"
    );
    assert_eq!(
        error.position,
        Some(Position {
            line: 8,
            column: 14
        })
    );
    assert!(
        error.message.contains("unknown unit \"x\""),
        "{}",
        error.message
    );
}

#[test]
fn missing_required_field_points_at_parent() {
    let text = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: r\nspec:\n  subsets:\n  - name: v1\n";
    let error = only_error("dr.yaml", text);
    assert_eq!(error.message, "missing field `host`");
    assert_eq!(error.field.as_ref().unwrap().to_string(), "spec");
    assert_eq!(error.position.map(|p| p.line), Some(5));
}

#[test]
fn wrong_api_version_lists_what_is_served() {
    let text = "apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata:\n  name: r\n";
    let error = only_error("v.yaml", text);
    assert_eq!(
        error.message,
        "no matches for kind \"VirtualService\" in version \"networking.istio.io/v2\""
    );
    assert_eq!(
        error.position,
        Some(Position {
            line: 1,
            column: 13
        })
    );
    assert_eq!(
        error.hint.as_deref(),
        Some(
            "VirtualService is served as apiVersion networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3"
        )
    );
}

#[test]
fn unknown_kind_names_the_line_and_the_accepted_kinds() {
    let text =
        "---\napiVersion: networking.istio.io/v1\nkind: VirtualServce\nmetadata:\n  name: r\n";
    let error = only_error("k.yaml", text);
    assert_eq!(error.position.map(|p| p.line), Some(3));
    assert!(error.message.contains("VirtualServce"));
    assert!(
        error
            .hint
            .as_deref()
            .unwrap()
            .contains("VirtualService, DestinationRule")
    );
}

#[test]
fn missing_kind_is_reported() {
    let error = only_error("m.yaml", "apiVersion: v1\nmetadata:\n  name: x\n");
    assert_eq!(error.message, "kind not set");
}

#[test]
fn syntax_errors_have_a_position() {
    let results = parse_stream(
        "bad.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: [x\n",
    );
    assert_eq!(results.len(), 1);
    let error = results[0].as_ref().unwrap_err();
    assert!(
        error.message.starts_with("invalid YAML"),
        "{}",
        error.message
    );
    assert!(error.position.is_some());
    assert_eq!(error.file.as_deref(), Some("bad.yaml"));
}

#[test]
fn duplicate_keys_are_rejected() {
    let results = parse_stream(
        "dup.yaml",
        "apiVersion: v1\nkind: Namespace\nkind: Namespace\nmetadata: {name: x}\n",
    );
    assert!(
        results[0]
            .as_ref()
            .unwrap_err()
            .message
            .contains("duplicate")
    );
}

#[test]
fn empty_documents_are_skipped_and_json_is_accepted() {
    let text = "---\n---\n# only a comment\n---\n{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"foo\"}}\n---\n";
    let results = parse_stream("j.yaml", text);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].as_ref().unwrap().resource.name(), "foo");
}

#[test]
fn null_fields_mean_absent() {
    let text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: foo\n  labels:\nspec:\n";
    let results = parse_stream("n.yaml", text);
    assert!(results[0].is_ok(), "{results:?}");
}

#[test]
fn lists_expand_into_items_with_their_own_paths() {
    let text = "\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata:
    name: foo
- apiVersion: v1
  kind: ServiceAccount
  metadata:
    name: sa
    nam: typo
";
    let results = parse_stream("list.yaml", text);
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].as_ref().unwrap().resource.name(), "foo");
    let error = results[1].as_ref().unwrap_err();
    assert_eq!(
        error.field.as_ref().unwrap().to_string(),
        "items[1].metadata.nam"
    );
    assert_eq!(error.position.map(|p| p.line), Some(12));
}

#[test]
fn validation_errors_carry_lines() {
    let text = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - match:
    - uri:
        regex: \"/api/(v1\"
    route:
    - destination: {host: reviews}
";
    let error = only_error("re.yaml", text);
    assert_eq!(error.severity, Severity::Error);
    assert_eq!(
        error.field.as_ref().unwrap().to_string(),
        "spec.http[0].match[0].uri.regex"
    );
    assert_eq!(
        error.position,
        Some(Position {
            line: 10,
            column: 16
        })
    );
    assert!(
        error.message.starts_with("invalid regex"),
        "{}",
        error.message
    );
    assert!(error.hint.as_deref().unwrap().contains("RE2"));
}

#[test]
fn every_bad_document_is_reported() {
    let text = "apiVersion: v1\nkind: Nope\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b, lables: {}}\n";
    let diagnostics = load("m.yaml", text).unwrap_err();
    assert_eq!(diagnostics.len(), 2);
    assert_eq!(diagnostics[0].position.map(|p| p.line), Some(2));
    assert_eq!(diagnostics[1].position.map(|p| p.line), Some(11));
}

#[test]
fn yaml_round_trips_through_the_door() {
    let documents = load_ok("gw.yaml", SAMPLES[5].1);
    for document in documents {
        let text = to_yaml(&document.resource.to_value()).unwrap();
        let again = parse_stream("again.yaml", &text).remove(0).unwrap();
        assert_eq!(again.resource, document.resource, "{text}");
    }
}
