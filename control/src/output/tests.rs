use super::*;
use crate::resource::Timestamp;
use crate::yaml;

fn resources(text: &str) -> Vec<Resource> {
    let created = Timestamp::parse("2024-05-01T12:00:00Z").unwrap();
    yaml::parse_stream("t.yaml", text)
        .into_iter()
        .map(|r| {
            let mut resource = r.unwrap().resource;
            let meta = resource.metadata_mut();
            meta.creation_timestamp = Some(created);
            meta.namespace.get_or_insert_with(|| "default".into());
            resource
        })
        .collect()
}

fn at(offset_secs: u64) -> SystemTime {
    let created = Timestamp::parse("2024-05-01T12:00:00Z")
        .unwrap()
        .unix_seconds();
    SystemTime::UNIX_EPOCH + Duration::from_secs(created + offset_secs)
}

#[test]
fn ages_read_like_kubectl() {
    let cases = [
        (0, "0s"),
        (45, "45s"),
        (119, "119s"),
        (150, "2m30s"),
        (180, "3m"),
        (15 * 60 + 5, "15m"),
        (3 * 3600 + 20 * 60, "3h20m"),
        (5 * 3600, "5h"),
        (20 * 3600 + 59, "20h"),
        (3 * 86_400 + 4 * 3600, "3d4h"),
        (30 * 86_400, "30d"),
        (2 * 365 * 86_400 + 10 * 86_400, "2y10d"),
        (9 * 365 * 86_400, "9y"),
    ];
    for (secs, expected) in cases {
        assert_eq!(age(Duration::from_secs(secs)), expected, "{secs}s");
    }
}

#[test]
fn virtual_service_table() {
    let objects = resources(concat!(
        include_str!("../../tests/data/bookinfo-gateway.yaml"),
        "---\n",
        include_str!("../../tests/data/virtual-service-reviews-test-v2.yaml"),
    ));
    let vs: Vec<&Resource> = objects
        .iter()
        .filter(|r| r.kind() == Kind::VirtualService)
        .collect();
    let vs_table = table(Kind::VirtualService, &vs, at(300), false, &NoLiveStatus);
    assert_eq!(
        vs_table.to_string(),
        "\
NAME       GATEWAYS               HOSTS         AGE
bookinfo   [\"bookinfo-gateway\"]   [\"*\"]         5m
reviews                           [\"reviews\"]   5m
"
    );
    let gw: Vec<&Resource> = objects
        .iter()
        .filter(|r| r.kind() == Kind::Gateway)
        .collect();
    let gw_table = table(Kind::Gateway, &gw, at(42), true, &NoLiveStatus);
    assert_eq!(
        gw_table.to_string(),
        "NAMESPACE   NAME               AGE\ndefault     bookinfo-gateway   42s\n"
    );
}

#[test]
fn istio_tables_use_the_crd_columns() {
    let objects = resources(include_str!("../../tests/data/traffic-tasks.yaml"));
    let pick =
        |kind: Kind| -> Vec<&Resource> { objects.iter().filter(|r| r.kind() == kind).collect() };
    let se = table(
        Kind::ServiceEntry,
        &pick(Kind::ServiceEntry)[..1],
        at(60),
        false,
        &NoLiveStatus,
    );
    assert_eq!(
        se.to_string(),
        "NAME          HOSTS             LOCATION        RESOLUTION   AGE\nhttpbin-ext   [\"httpbin.org\"]   MESH_EXTERNAL   DNS          60s\n"
    );
    let dr = table(
        Kind::DestinationRule,
        &pick(Kind::DestinationRule)[..1],
        at(60),
        false,
        &NoLiveStatus,
    );
    assert_eq!(
        dr.to_string(),
        "NAME      HOST      AGE\nhttpbin   httpbin   60s\n"
    );
    let we = table(
        Kind::WorkloadEntry,
        &pick(Kind::WorkloadEntry),
        at(60),
        false,
        &NoLiveStatus,
    );
    assert_eq!(
        we.to_string(),
        "NAME         AGE   ADDRESS\nmysqldb-vm   60s   10.0.0.7\n"
    );

    let security = resources(include_str!("../../tests/data/security-tasks.yaml"));
    let pa: Vec<&Resource> = security
        .iter()
        .filter(|r| r.kind() == Kind::PeerAuthentication)
        .collect();
    let pa = table(Kind::PeerAuthentication, &pa, at(60), true, &NoLiveStatus);
    assert_eq!(
        pa.to_string(),
        "NAMESPACE      NAME      MODE     AGE\nistio-system   default   STRICT   60s\ndefault        httpbin   STRICT   60s\n"
    );
    let ap: Vec<&Resource> = security
        .iter()
        .filter(|r| r.kind() == Kind::AuthorizationPolicy)
        .collect();
    let ap = table(
        Kind::AuthorizationPolicy,
        &ap[..2],
        at(60),
        false,
        &NoLiveStatus,
    );
    assert_eq!(
        ap.to_string(),
        "NAME                 ACTION   AGE\nallow-nothing                 60s\nproductpage-viewer   ALLOW    60s\n"
    );
}

struct Live;

impl LiveStatus for Live {
    fn deployment(&self, _namespace: &str, name: &str) -> Option<DeploymentStatus> {
        (name == "details-v1").then_some(DeploymentStatus {
            ready: 1,
            up_to_date: 1,
            available: 1,
        })
    }

    fn cluster_ip(&self, _namespace: &str, name: &str) -> Option<String> {
        (name == "details").then(|| "10.96.0.12".to_owned())
    }
}

#[test]
fn core_tables() {
    let objects = resources(include_str!("../../tests/data/bookinfo.yaml"));
    let pick =
        |kind: Kind| -> Vec<&Resource> { objects.iter().filter(|r| r.kind() == kind).collect() };
    let services = table(
        Kind::Service,
        &pick(Kind::Service)[..2],
        at(7200),
        false,
        &Live,
    );
    assert_eq!(
        services.to_string(),
        "\
NAME      TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)    AGE
details   ClusterIP   10.96.0.12   <none>        9080/TCP   120m
ratings   ClusterIP   <none>       <none>        9080/TCP   120m
"
    );
    let deployments = table(
        Kind::Deployment,
        &pick(Kind::Deployment)[..2],
        at(90_000),
        false,
        &Live,
    );
    assert_eq!(
        deployments.to_string(),
        "\
NAME         READY   UP-TO-DATE   AVAILABLE   AGE
details-v1   1/1     1            1           25h
ratings-v1   0/1     0            0           25h
"
    );
    let accounts = table(
        Kind::ServiceAccount,
        &pick(Kind::ServiceAccount)[..1],
        at(5),
        false,
        &Live,
    );
    assert_eq!(
        accounts.to_string(),
        "NAME               SECRETS   AGE\nbookinfo-details   0         5s\n"
    );
    assert_eq!(
        no_resources_found(Kind::VirtualService, Some("default")),
        "No resources found in default namespace."
    );
    assert_eq!(
        no_resources_found(Kind::Namespace, Some("default")),
        "No resources found"
    );
}

#[test]
fn yaml_and_json_rendering() {
    let objects = resources(include_str!(
        "../../tests/data/virtual-service-reviews-test-v2.yaml"
    ));
    let one: Vec<&Resource> = objects.iter().collect();
    let text = render(&one, true, Format::Yaml).unwrap();
    assert!(
        text.starts_with("apiVersion: networking.istio.io/v1\nkind: VirtualService\n"),
        "{text}"
    );
    assert!(
        text.contains("creationTimestamp: 2024-05-01T12:00:00Z")
            || text.contains("creationTimestamp: '2024-05-01T12:00:00Z'")
            || text.contains("creationTimestamp: \"2024-05-01T12:00:00Z\""),
        "{text}"
    );
    let again = yaml::parse_stream("again.yaml", &text).remove(0).unwrap();
    assert_eq!(&again.resource, one[0]);

    let list = render(&one, false, Format::Json).unwrap();
    let value: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(value["kind"], "List");
    assert_eq!(
        value["items"][0]["spec"]["http"][0]["match"][0]["headers"]["end-user"]["exact"],
        "jason"
    );
}
