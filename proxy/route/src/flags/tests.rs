use super::{ResponseFlag, ResponseFlags};

#[test]
fn flags_print_as_envoy_prints_them() {
    use ResponseFlag::*;
    let table: [(&[ResponseFlag], &str); 7] = [
        (&[], "-"),
        (&[NoHealthyUpstream], "UH"),
        (&[NoRouteFound], "NR"),
        (
            &[UpstreamRetryLimitExceeded, UpstreamConnectionFailure],
            "UF,URX",
        ),
        (&[FaultInjected, DelayInjected], "DI,FI"),
        (&[UpstreamOverflow], "UO"),
        (
            &[
                DnsResolutionFailed,
                UpstreamRequestTimeout,
                DownstreamConnectionTermination,
            ],
            "UT,DC,DF",
        ),
    ];
    for (flags, printed) in table {
        let set: ResponseFlags = flags.iter().copied().collect();
        assert_eq!(set.to_string(), printed, "{flags:?}");
    }
}

#[test]
fn every_flag_has_its_short_name() {
    let names: Vec<&str> = ResponseFlag::ALL.iter().map(|flag| flag.as_str()).collect();
    assert_eq!(
        names,
        [
            "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "DC", "URX",
            "DPE", "UMSDR", "UPE", "NC", "OM", "DF"
        ]
    );
    let all: ResponseFlags = ResponseFlag::ALL.into_iter().collect();
    assert_eq!(all.iter().count(), ResponseFlag::ALL.len());
}
