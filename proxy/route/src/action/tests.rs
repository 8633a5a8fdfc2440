use std::net::{IpAddr, Ipv4Addr};

use super::{ClusterSpecifier, HashPolicy};
use crate::{
    random::Sequence,
    test_support::{Req, weighted},
};

#[test]
fn weighted_pick_uses_one_draw_modulo_the_total() {
    let clusters = weighted(&[("a", 10), ("b", 0), ("c", 30)]);
    assert_eq!(clusters.total_weight(), 40);
    let table = [
        (0, "a"),
        (9, "a"),
        (10, "c"),
        (39, "c"),
        (40, "a"),
        (u64::MAX, "c"),
    ];
    for (draw, expected) in table {
        let mut rng = Sequence::new([draw]);
        let picked = clusters.pick(&mut rng).unwrap();
        assert_eq!(picked.name, expected, "draw {draw}");
        assert_eq!(
            picked.destination.map(|cluster| cluster.name.as_str()),
            Some(expected)
        );
        assert_eq!(rng.drawn(), 1);
    }
    let single = ClusterSpecifier::Cluster("only".to_owned());
    assert_eq!(single.total_weight(), 1);
    assert!(
        single
            .pick(&mut Sequence::default())
            .is_some_and(|picked| picked.destination.is_none())
    );
}

#[test]
fn hash_policies_read_their_key() {
    let request = Req::get("h", "/?user=jason&x=1")
        .header("x-user", "tom")
        .header("cookie", "session=abc; user=\"quoted\"");
    let source = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)));
    let cookie = |name: &str| HashPolicy::Cookie {
        name: name.to_owned(),
        ttl: None,
        path: None,
    };
    let table = [
        (
            HashPolicy::Header {
                name: "x-user".to_owned(),
            },
            Some("tom"),
        ),
        (
            HashPolicy::Header {
                name: "x-absent".to_owned(),
            },
            None,
        ),
        (cookie("session"), Some("abc")),
        (cookie("user"), Some("quoted")),
        (cookie("absent"), None),
        (HashPolicy::SourceIp, Some("10.0.0.7")),
        (
            HashPolicy::QueryParameter {
                name: "user".to_owned(),
            },
            Some("jason"),
        ),
        (
            HashPolicy::QueryParameter {
                name: "absent".to_owned(),
            },
            None,
        ),
    ];
    for (policy, expected) in table {
        assert_eq!(
            policy.key(&request.head(), source).as_deref(),
            expected,
            "{policy:?}"
        );
    }
    assert_eq!(HashPolicy::SourceIp.key(&request.head(), None), None);
}
