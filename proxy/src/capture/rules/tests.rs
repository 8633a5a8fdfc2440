//! The rules for a configuration, checked as the learner sees them: the listing
//! `meshlab run init` prints, kept in golden files under `capture/testdata/`
//! (`MESHLAB_REFRESH_GOLDEN=1` rewrites them; review the diff).

use std::path::PathBuf;

use super::*;
use crate::capture::netlink::{
    BaseChain, ChainInfo, NFPROTO_IPV4, POLICY_ACCEPT, RuleInfo, Ruleset, TableInfo,
};
use crate::capture::render;

/// The table as the kernel would list it back.
fn as_listed(table: &Table) -> Ruleset {
    let chains = table
        .chains
        .iter()
        .map(|chain| ChainInfo {
            family: NFPROTO_IPV4,
            table: TABLE.to_owned(),
            name: chain.name.to_owned(),
            base: chain.hook.map(|hook| BaseChain {
                kind: "nat".to_owned(),
                hook: hook.number(),
                priority: PRIORITY,
                policy: POLICY_ACCEPT,
            }),
        })
        .collect();
    let rules = table
        .chains
        .iter()
        .flat_map(|chain| {
            chain.rules.iter().map(|rule| RuleInfo {
                family: NFPROTO_IPV4,
                table: TABLE.to_owned(),
                chain: chain.name.to_owned(),
                exprs: rule.exprs(),
                comment: Some(rule.comment.clone()),
            })
        })
        .collect();
    Ruleset {
        tables: vec![TableInfo {
            family: NFPROTO_IPV4,
            name: TABLE.to_owned(),
        }],
        chains,
        rules,
    }
}

fn listing(config: &CaptureConfig) -> String {
    render::lines(&as_listed(&table(config)))
        .iter()
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Compares the listing for `config` with `testdata/<name>.rules`, whose first
/// line says which flags of `meshlab run init` make it.
fn check_golden(name: &str, flags: &str, config: &CaptureConfig) {
    let actual = format!("# meshlab run init{flags}\n{}", listing(config));
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "src/capture/testdata",
        &format!("{name}.rules"),
    ]
    .iter()
    .collect();
    if std::env::var_os("MESHLAB_REFRESH_GOLDEN").is_some() {
        std::fs::write(&path, &actual).expect("the golden file is written");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "{}: {err} (hint: MESHLAB_REFRESH_GOLDEN=1 writes it)",
            path.display()
        )
    });
    assert!(
        actual == expected,
        "{} differs (MESHLAB_REFRESH_GOLDEN=1 rewrites it):\n{actual}",
        path.display()
    );
}

fn ranges(list: &str) -> Vec<Ipv4Cidr> {
    list.split(',').map(|r| r.parse().unwrap()).collect()
}

#[test]
fn istios_default_capture() {
    check_golden("default", "", &CaptureConfig::default());
}

#[test]
fn without_dns_capture() {
    let config = CaptureConfig {
        capture_dns: false,
        ..CaptureConfig::default()
    };
    check_golden("no-dns", " --capture-dns false", &config);
}

#[test]
fn with_the_sidecar_annotations() {
    let config = CaptureConfig {
        // 15008 is the proxy's already; repeated ports give one rule.
        exclude_inbound_ports: vec![8443, 15008, 8443],
        exclude_outbound_ports: vec![5432],
        exclude_outbound_ranges: ranges("169.254.169.254/32,10.96.0.0/12"),
        include_outbound_ranges: IncludeRanges::Only(ranges("10.0.0.0/8,192.168.0.0/16")),
        ..CaptureConfig::default()
    };
    check_golden(
        "annotations",
        " --exclude-inbound-ports 8443,15008,8443 --exclude-outbound-ports 5432 \
         --exclude-outbound-ip-ranges 169.254.169.254/32,10.96.0.0/12 \
         --include-outbound-ip-ranges 10.0.0.0/8,192.168.0.0/16",
        &config,
    );
}

#[test]
fn including_loopback_captures_the_app_calling_itself() {
    let config = CaptureConfig {
        include_outbound_ranges: IncludeRanges::Only(ranges("127.0.0.0/8")),
        capture_dns: false,
        ..CaptureConfig::default()
    };
    check_golden(
        "loopback-included",
        " --include-outbound-ip-ranges 127.0.0.0/8 --capture-dns false",
        &config,
    );
}

#[test]
fn an_empty_include_list_captures_no_outbound_traffic() {
    let config = CaptureConfig {
        include_outbound_ranges: IncludeRanges::Only(vec![]),
        ..CaptureConfig::default()
    };
    let table = table(&config);
    let jumps_to_redirect = table
        .chains
        .iter()
        .flat_map(|c| &c.rules)
        .filter(|r| r.action == Action::Jump(ISTIO_REDIRECT))
        .count();
    assert_eq!(jumps_to_redirect, 0);
    // Inbound and DNS capture stay.
    assert!(listing(&config).contains("-j REDIRECT --to-ports 15006"));
    assert!(listing(&config).contains("-j REDIRECT --to-ports 15053"));
}

#[test]
fn every_rule_has_a_comment_nft_can_store() {
    let config = CaptureConfig {
        proxy_uid: u32::MAX,
        proxy_gid: u32::MAX,
        exclude_outbound_ranges: ranges("255.255.255.255/32"),
        include_outbound_ranges: IncludeRanges::Only(ranges("255.255.255.255/32")),
        ..CaptureConfig::default()
    };
    let table = table(&config);
    assert_eq!(table.rule_count(), 26);
    for rule in table.chains.iter().flat_map(|c| &c.rules) {
        assert!(rule.comment.starts_with("meshlab: "), "{}", rule.comment);
        assert!(rule.comment.len() < 128, "{}", rule.comment);
    }
}

#[test]
fn chains_exist_before_rules_jump_to_them() {
    let table = table(&CaptureConfig::default());
    let names: Vec<_> = table.chains.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "PREROUTING",
            "OUTPUT",
            "ISTIO_INBOUND",
            "ISTIO_IN_REDIRECT",
            "ISTIO_REDIRECT",
            "ISTIO_OUTPUT",
            "ISTIO_OUTPUT_DNS"
        ]
    );
    assert_eq!(table.chains[0].hook, Some(Hook::Prerouting));
    assert_eq!(table.chains[1].hook, Some(Hook::Output));
    assert!(table.chains[2..].iter().all(|c| c.hook.is_none()));
}

#[test]
fn a_redirect_loads_the_port_and_counts() {
    let rule = Rule::new("meshlab: test", [TCP], Action::Redirect(15001));
    assert_eq!(
        rule.exprs(),
        [
            Expr::Meta {
                key: expr::meta::L4PROTO,
                dreg: REG_1
            },
            Expr::Cmp {
                sreg: REG_1,
                op: CmpOp::Eq,
                data: vec![6]
            },
            Expr::Counter {
                packets: 0,
                bytes: 0
            },
            Expr::Immediate {
                dreg: REG_1,
                data: vec![0x3a, 0x99]
            },
            Expr::Redir {
                proto_min: Some(REG_1),
                proto_max: None
            },
        ]
    );
}

#[test]
fn ranges_are_masked_and_everything_needs_no_match() {
    let dest = |range: &str, negate| {
        Rule::new(
            "meshlab: test",
            [Match::Destination {
                range: range.parse().unwrap(),
                negate,
            }],
            Action::Return,
        )
        .exprs()
    };
    assert_eq!(
        dest("10.0.0.0/8", false)[..3],
        [
            Expr::Payload {
                base: expr::base::NETWORK,
                offset: 16,
                len: 4,
                dreg: REG_1
            },
            Expr::Bitwise {
                sreg: REG_1,
                dreg: REG_1,
                mask: vec![255, 0, 0, 0],
                xor: vec![0; 4]
            },
            Expr::Cmp {
                sreg: REG_1,
                op: CmpOp::Eq,
                data: vec![10, 0, 0, 0]
            },
        ]
    );
    // In 0.0.0.0/0: always; outside it: never, which needs the comparison.
    assert_eq!(dest("0.0.0.0/0", false).len(), 2);
    assert_eq!(dest("0.0.0.0/0", true).len(), 5);
}
