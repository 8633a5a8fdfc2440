use std::net::Ipv4Addr;

use super::*;

#[test]
fn ranges_parse_as_istio_writes_them() {
    for (input, network, prefix) in [
        ("10.0.0.0/8", Ipv4Addr::new(10, 0, 0, 0), 8),
        (" 192.168.1.7 ", Ipv4Addr::new(192, 168, 1, 7), 32),
        // Host bits are cleared, as Go's net.ParseCIDR does for Istio.
        ("10.1.2.3/16", Ipv4Addr::new(10, 1, 0, 0), 16),
        ("0.0.0.0/0", Ipv4Addr::UNSPECIFIED, 0),
    ] {
        let range: Ipv4Cidr = input.parse().unwrap();
        assert_eq!(
            (range.network(), range.prefix()),
            (network, prefix),
            "{input}"
        );
    }
    let range: Ipv4Cidr = "172.16.0.0/12".parse().unwrap();
    assert_eq!(range.netmask(), Ipv4Addr::new(255, 240, 0, 0));
    assert_eq!(range.to_string(), "172.16.0.0/12");
    assert_eq!(
        Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0).unwrap().netmask(),
        Ipv4Addr::UNSPECIFIED
    );
    assert_eq!(Ipv4Cidr::new(Ipv4Addr::LOCALHOST, 33), None);
}

#[test]
fn bad_ranges_say_what_is_wrong() {
    for (input, reason) in [
        (
            "10.0.0.0/33",
            "the prefix length must be a number from 0 to 32",
        ),
        (
            "10.0.0.0/x",
            "the prefix length must be a number from 0 to 32",
        ),
        ("reviews", "not an ip address"),
        (
            "fd00::/8",
            "ipv6 is not captured (the lab's network is ipv4 only)",
        ),
    ] {
        let err = input.parse::<Ipv4Cidr>().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid ip range \"{input}\": {reason} (hint: write ranges like 10.0.0.0/8 \
                 or 192.168.1.7, comma-separated)"
            )
        );
    }
}

#[test]
fn include_ranges_read_the_annotation() {
    assert_eq!("*".parse::<IncludeRanges>().unwrap(), IncludeRanges::All);
    assert_eq!(
        "".parse::<IncludeRanges>().unwrap(),
        IncludeRanges::Only(vec![])
    );
    let some: IncludeRanges = "10.0.0.0/8, 192.168.0.0/16".parse().unwrap();
    assert_eq!(some.to_string(), "10.0.0.0/8,192.168.0.0/16");
    assert_eq!(IncludeRanges::All.to_string(), "*");
    assert!("10.0.0.0/8,nope".parse::<IncludeRanges>().is_err());
}

#[test]
fn defaults_are_istios() {
    let config = CaptureConfig::default();
    assert_eq!((config.proxy_uid, config.proxy_gid), (1337, 1337));
    assert_eq!(
        (config.inbound_port, config.outbound_port, config.dns_port),
        (15006, 15001, 15053)
    );
    assert_eq!(config.include_outbound_ranges, IncludeRanges::All);
    assert!(config.capture_dns);
    let reserved: Vec<u16> = RESERVED_INBOUND_PORTS.iter().map(|(p, _)| *p).collect();
    assert_eq!(reserved, [15008, 15090, 15021, 15020, 15000]);
}
