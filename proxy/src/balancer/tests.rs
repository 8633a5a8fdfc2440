use super::*;

struct Fake {
    weight: u32,
    active: u64,
    port: u16,
}

impl Balanced for Fake {
    fn weight(&self) -> u32 {
        self.weight
    }

    fn active_requests(&self) -> u64 {
        self.active
    }

    fn address(&self) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], self.port))
    }
}

fn hosts(active: &[u64]) -> Vec<Fake> {
    active
        .iter()
        .enumerate()
        .map(|(i, active)| Fake {
            weight: 1,
            active: *active,
            port: 9000 + i as u16,
        })
        .collect()
}

fn picks(
    policy: &LbPolicy,
    hosts: &[Fake],
    eligible: &dyn Fn(usize) -> bool,
    hash: Option<u64>,
    n: usize,
) -> Vec<usize> {
    let rr = AtomicUsize::new(0);
    let ring = Ring::build(hosts);
    (0..n)
        .map(|_| pick(policy, hosts, eligible, &rr, &|| &ring, hash).unwrap())
        .collect()
}

#[test]
fn round_robin_takes_turns_among_eligible_hosts() {
    let hosts = hosts(&[0, 0, 0]);
    assert_eq!(
        picks(&LbPolicy::RoundRobin, &hosts, &|_| true, None, 6),
        [0, 1, 2, 0, 1, 2]
    );
    assert_eq!(
        picks(&LbPolicy::RoundRobin, &hosts, &|i| i != 1, None, 4),
        [0, 2, 0, 2]
    );
    let rr = AtomicUsize::new(0);
    let ring = Ring::build(&hosts);
    assert_eq!(
        pick(
            &LbPolicy::RoundRobin,
            &hosts,
            &|_| false,
            &rr,
            &|| &ring,
            None
        ),
        None
    );
}

#[test]
fn least_request_prefers_the_idle_host() {
    let hosts = hosts(&[0, 10]);
    let chosen = picks(&LbPolicy::LeastRequest, &hosts, &|_| true, None, 2000);
    let idle = chosen.iter().filter(|i| **i == 0).count();
    // Two draws with replacement: the busy host wins only when drawn twice (1/4).
    assert!(
        (1350..=1650).contains(&idle),
        "idle host picked {idle} of 2000 times"
    );
}

#[test]
fn ring_hash_is_consistent_and_skips_ineligible_hosts() {
    let hosts = hosts(&[0, 0, 0, 0]);
    for key in ["jason", "alice", "bob"] {
        let hash = hash64(key.as_bytes());
        let first = picks(&LbPolicy::RingHash, &hosts, &|_| true, Some(hash), 5);
        assert!(first.windows(2).all(|w| w[0] == w[1]), "{key}: {first:?}");
        let owner = first[0];
        let moved = picks(&LbPolicy::RingHash, &hosts, &|i| i != owner, Some(hash), 3);
        assert!(
            moved.iter().all(|i| *i != owner && *i == moved[0]),
            "{key}: {moved:?}"
        );
    }
    let spread: std::collections::HashSet<usize> = (0..200)
        .map(|i| {
            picks(
                &LbPolicy::RingHash,
                &hosts,
                &|_| true,
                Some(hash64(format!("user-{i}").as_bytes())),
                1,
            )[0]
        })
        .collect();
    assert_eq!(spread.len(), 4, "keys spread over every host");
}

#[test]
fn weights_share_the_traffic() {
    let hosts = vec![
        Fake {
            weight: 1,
            active: 0,
            port: 1,
        },
        Fake {
            weight: 3,
            active: 0,
            port: 2,
        },
    ];
    let chosen = picks(&LbPolicy::RoundRobin, &hosts, &|_| true, None, 4000);
    let heavy = chosen.iter().filter(|i| **i == 1).count();
    assert!(
        (2800..=3200).contains(&heavy),
        "weight 3 of 4 got {heavy} of 4000"
    );
}
