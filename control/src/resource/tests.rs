use super::duration::{Duration, DurationError};
use super::*;

#[test]
fn kinds_resolve_like_kubectl() {
    for (name, kind) in [
        ("vs", Kind::VirtualService),
        ("virtualservices", Kind::VirtualService),
        ("VirtualService", Kind::VirtualService),
        ("virtualservice.networking.istio.io", Kind::VirtualService),
        ("dr", Kind::DestinationRule),
        ("gw", Kind::Gateway),
        ("se", Kind::ServiceEntry),
        ("we", Kind::WorkloadEntry),
        ("sidecar", Kind::Sidecar),
        ("pa", Kind::PeerAuthentication),
        ("ap", Kind::AuthorizationPolicy),
        ("ra", Kind::RequestAuthentication),
        ("ns", Kind::Namespace),
        ("sa", Kind::ServiceAccount),
        ("svc", Kind::Service),
        ("deploy", Kind::Deployment),
        ("deployments.apps", Kind::Deployment),
    ] {
        assert_eq!(Kind::lookup(name), Some(kind), "{name}");
    }
    assert_eq!(Kind::lookup("vs.apps"), None);
    assert_eq!(Kind::lookup("pods"), None);
    assert_eq!(
        Kind::VirtualService.resource_name(),
        "virtualservice.networking.istio.io"
    );
    assert_eq!(
        Kind::VirtualService.plural_name(),
        "virtualservices.networking.istio.io"
    );
    assert_eq!(Kind::Deployment.resource_name(), "deployment.apps");
    assert_eq!(Kind::Namespace.resource_name(), "namespace");
    assert_eq!(Kind::Service.api_version(), "v1");
    assert_eq!(
        Kind::PeerAuthentication.api_version(),
        "security.istio.io/v1"
    );
}

#[test]
fn api_versions() {
    assert_eq!(
        Kind::from_type("networking.istio.io/v1alpha3", "Gateway"),
        Ok(Kind::Gateway)
    );
    assert_eq!(
        Kind::from_type("security.istio.io/v1beta1", "AuthorizationPolicy"),
        Ok(Kind::AuthorizationPolicy)
    );
    assert_eq!(
        Kind::from_type("apps/v1", "Deployment"),
        Ok(Kind::Deployment)
    );
    assert!(matches!(
        Kind::from_type("v1", "Deployment"),
        Err(KindError::WrongVersion { .. })
    ));
    assert!(matches!(
        Kind::from_type("security.istio.io/v1alpha3", "PeerAuthentication"),
        Err(KindError::WrongVersion { .. })
    ));
    assert!(matches!(
        Kind::from_type("v1", "Pod"),
        Err(KindError::UnknownKind { .. })
    ));
}

#[test]
fn durations_follow_go_syntax() {
    let ok = [
        ("7s", 7_000),
        ("0.5s", 500),
        ("1.5s", 1_500),
        ("100ms", 100),
        ("3m", 180_000),
        ("1h30m", 5_400_000),
        (".25s", 250),
        ("0", 0),
    ];
    for (text, millis) in ok {
        let parsed = Duration::parse(text).unwrap();
        assert_eq!(
            parsed.get(),
            std::time::Duration::from_millis(millis),
            "{text}"
        );
        assert_eq!(parsed.to_string(), text);
    }
    assert_eq!(
        Duration::parse("1500us").unwrap().get(),
        std::time::Duration::from_micros(1500)
    );
    assert_eq!(
        Duration::parse("7"),
        Err(DurationError::MissingUnit("7".into()))
    );
    assert_eq!(
        Duration::parse("-1s"),
        Err(DurationError::Negative("-1s".into()))
    );
    assert!(matches!(
        Duration::parse("7sec"),
        Err(DurationError::UnknownUnit { .. })
    ));
    assert!(matches!(
        Duration::parse("s"),
        Err(DurationError::Syntax(_))
    ));
    assert!(matches!(
        Duration::parse("1..5s"),
        Err(DurationError::Syntax(_))
    ));
    assert_eq!(
        Duration::parse("7x").unwrap_err().to_string(),
        "invalid duration \"7x\": unknown unit \"x\" (use ns, us, ms, s, m or h, e.g. \"1.5s\")"
    );
}

#[test]
fn timestamps_are_rfc3339_utc() {
    let t = Timestamp::parse("2024-05-01T12:00:00Z").unwrap();
    assert_eq!(t.unix_seconds(), 1_714_564_800);
    assert_eq!(t.to_string(), "2024-05-01T12:00:00Z");
    assert_eq!(Timestamp::parse("2024-05-01T14:00:00.123+02:00"), Some(t));
    assert_eq!(
        Timestamp::parse("2000-02-29T00:00:00Z")
            .unwrap()
            .to_string(),
        "2000-02-29T00:00:00Z"
    );
    assert_eq!(
        Timestamp::parse("1970-01-01T00:00:00Z")
            .unwrap()
            .unix_seconds(),
        0
    );
    assert_eq!(Timestamp::parse("yesterday"), None);
    assert_eq!(Timestamp::parse("2024-13-01T00:00:00Z"), None);
}

#[test]
fn server_fields_are_accepted_so_get_output_reapplies() {
    let value = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "foo",
            "uid": "x",
            "resourceVersion": "7",
            "generation": 1,
            "creationTimestamp": "2024-05-01T12:00:00Z"
        }
    });
    let resource = Resource::from_value(value.clone()).unwrap();
    assert_eq!(resource.to_value()["metadata"], value["metadata"]);
}
