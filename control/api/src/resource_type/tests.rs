use super::*;

#[test]
fn type_urls_round_trip_and_order_is_push_order() {
    for resource_type in ResourceType::ALL {
        assert_eq!(
            ResourceType::from_type_url(resource_type.type_url()),
            Some(resource_type)
        );
    }
    assert_eq!(
        ResourceType::Cluster.type_url(),
        "type.googleapis.com/meshlab.discovery.v1.Cluster"
    );
    assert_eq!(
        ResourceType::from_type_url("type.googleapis.com/envoy.config.cluster.v3.Cluster"),
        None
    );
    let mut sorted = ResourceType::ALL;
    sorted.sort();
    assert_eq!(sorted, ResourceType::ALL);
    let names: Vec<_> = ResourceType::ALL.iter().map(|t| t.short_name()).collect();
    assert_eq!(names, ["SDS", "CDS", "EDS", "LDS", "RDS"]);
}
