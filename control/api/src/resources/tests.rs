use meshlab_proxy_config::Cluster;

use super::*;

fn cluster(name: &str) -> v1::Cluster {
    Cluster::new(name).into_message()
}

#[test]
fn resources_unwrap_into_the_model() {
    let resources = vec![
        cluster("outbound|9080|v1|reviews.default.svc.cluster.local").into_resource(),
        cluster("PassthroughCluster").into_resource(),
    ];
    assert_eq!(resources[1].resource_type(), Some(ResourceType::Cluster));
    let unwrapped = Resources::from_response(ResourceType::Cluster.type_url(), resources);
    assert_eq!(
        unwrapped,
        Ok(Resources::Clusters(vec![
            Cluster::new("outbound|9080|v1|reviews.default.svc.cluster.local"),
            Cluster::new("PassthroughCluster"),
        ]))
    );
}

#[test]
fn bad_responses_are_explained() {
    let listener = v1::Listener {
        name: "virtualOutbound".to_owned(),
        ..Default::default()
    };
    let cases = [
        (
            "type.googleapis.com/nope",
            vec![],
            "unknown resource type \"type.googleapis.com/nope\"",
        ),
        (
            ResourceType::Cluster.type_url(),
            vec![v1::Resource {
                name: "x".to_owned(),
                kind: None,
            }],
            "resource 0 (\"x\") is empty",
        ),
        (
            ResourceType::Cluster.type_url(),
            vec![cluster("a").into_resource(), listener.into_resource()],
            "resource 1 (\"virtualOutbound\") is a LDS resource in a CDS response",
        ),
        (
            ResourceType::Cluster.type_url(),
            vec![v1::Resource {
                name: "a".to_owned(),
                ..cluster("b").into_resource()
            }],
            "resource 0 is named \"a\" but its CDS message is named \"b\"",
        ),
        (
            ResourceType::Cluster.type_url(),
            vec![cluster("a").into_resource(), cluster("a").into_resource()],
            "duplicate CDS resource \"a\"",
        ),
        (
            ResourceType::Cluster.type_url(),
            vec![
                v1::Cluster {
                    lb_policy: 5,
                    ..cluster("maglev")
                }
                .into_resource(),
            ],
            "CDS \"maglev\": lb_policy: unknown value 5",
        ),
    ];
    for (type_url, resources, message) in cases {
        let error = Resources::from_response(type_url, resources).expect_err(message);
        assert_eq!(error.to_string(), message);
    }
}
