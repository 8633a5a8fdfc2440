use super::*;
use crate::capture::expr::REG_1;
use crate::capture::netlink::{BaseChain, ChainInfo, RuleInfo, TableInfo};

fn meta(key: u32) -> Expr {
    Expr::Meta { key, dreg: REG_1 }
}

fn payload(base: u32, offset: u32, len: u32) -> Expr {
    Expr::Payload {
        base,
        offset,
        len,
        dreg: REG_1,
    }
}

fn cmp(op: CmpOp, data: &[u8]) -> Expr {
    Expr::Cmp {
        sreg: REG_1,
        op,
        data: data.to_vec(),
    }
}

/// What iptables-nft holds for Docker's `-A DOCKER_OUTPUT -d 127.0.0.11/32 -p tcp
/// -m tcp --dport 53 -j DNAT --to-destination 127.0.0.11:37273` (as `nft
/// --debug=netlink` shows it in a container): native matches, xtables DNAT rev 2.
fn docker_dnat() -> Vec<Expr> {
    let mut range = Vec::new();
    range.extend_from_slice(&3u32.to_ne_bytes()); // MAP_IPS | PROTO_SPECIFIED
    for _ in 0..2 {
        range.extend_from_slice(&[127, 0, 0, 11]);
        range.extend_from_slice(&[0; 12]);
    }
    range.extend_from_slice(&37273u16.to_be_bytes());
    range.extend_from_slice(&37273u16.to_be_bytes());
    range.extend_from_slice(&[0; 4]); // base_proto, padding
    vec![
        meta(expr::meta::L4PROTO),
        cmp(CmpOp::Eq, &[6]),
        payload(expr::base::NETWORK, 16, 4),
        cmp(CmpOp::Eq, &[127, 0, 0, 11]),
        payload(expr::base::TRANSPORT, 2, 2),
        cmp(CmpOp::Eq, &53u16.to_be_bytes()),
        Expr::Counter {
            packets: 2,
            bytes: 120,
        },
        Expr::XtTarget {
            name: "DNAT".to_owned(),
            rev: 2,
            info: range,
        },
    ]
}

/// Docker's reply rewrite: `-j SNAT --to-source :53`, xtables SNAT rev 0.
fn docker_snat() -> Vec<Expr> {
    let mut range = Vec::new();
    range.extend_from_slice(&1u32.to_ne_bytes()); // rangesize
    range.extend_from_slice(&2u32.to_ne_bytes()); // PROTO_SPECIFIED
    range.extend_from_slice(&[0; 8]);
    range.extend_from_slice(&53u16.to_be_bytes());
    range.extend_from_slice(&53u16.to_be_bytes());
    vec![
        meta(expr::meta::L4PROTO),
        cmp(CmpOp::Eq, &[17]),
        payload(expr::base::NETWORK, 12, 4),
        cmp(CmpOp::Eq, &[127, 0, 0, 11]),
        payload(expr::base::TRANSPORT, 0, 2),
        cmp(CmpOp::Eq, &44230u16.to_be_bytes()),
        Expr::XtTarget {
            name: "SNAT".to_owned(),
            rev: 0,
            info: range,
        },
    ]
}

#[test]
fn dockers_dns_rules_read_as_iptables_writes_them() {
    let dnat = rule_text("DOCKER_OUTPUT", &docker_dnat(), None);
    assert_eq!(
        dnat.text,
        "-A DOCKER_OUTPUT -p tcp -d 127.0.0.11/32 --dport 53 -j DNAT --to-destination \
         127.0.0.11:37273"
    );
    assert_eq!(
        dnat.counters,
        Some(Counters {
            packets: 2,
            bytes: 120
        })
    );
    assert_eq!(
        rule_text("DOCKER_POSTROUTING", &docker_snat(), None).text,
        "-A DOCKER_POSTROUTING -p udp -s 127.0.0.11/32 --sport 44230 -j SNAT --to-source :53"
    );
}

#[test]
fn native_nat_and_interface_prefixes_and_masks() {
    let exprs = [
        meta(expr::meta::IIFNAME),
        cmp(CmpOp::Neq, b"eth"),
        payload(expr::base::NETWORK, 12, 4),
        Expr::Bitwise {
            sreg: REG_1,
            dreg: REG_1,
            mask: vec![255, 255, 0, 0],
            xor: vec![0; 4],
        },
        cmp(CmpOp::Eq, &[10, 1, 0, 0]),
        Expr::Immediate {
            dreg: 2,
            data: vec![10, 0, 0, 1],
        },
        Expr::Immediate {
            dreg: 3,
            data: 8080u16.to_be_bytes().to_vec(),
        },
        Expr::Nat {
            kind: expr::nat::DNAT,
            family: Some(2),
            addr_min: Some(2),
            proto_min: Some(3),
        },
    ];
    assert_eq!(
        rule_text("PREROUTING", &exprs, Some("say \"hi\"")).text,
        "-A PREROUTING ! -i eth+ -s 10.1.0.0/16 -m comment --comment \"say \\\"hi\\\"\" -j DNAT \
         --to-destination 10.0.0.1:8080"
    );
}

#[test]
fn what_iptables_cannot_say_is_shown_in_nft_terms() {
    let exprs = [
        Expr::Other("ct".to_owned()),
        meta(15),
        cmp(CmpOp::Eq, &[2]),
        payload(expr::base::TRANSPORT, 13, 1),
        cmp(CmpOp::Other(4), &[2]),
        Expr::XtMatch {
            name: "conntrack".to_owned(),
            rev: 3,
            info: vec![],
        },
        Expr::XtMatch {
            name: "comment".to_owned(),
            rev: 0,
            info: b"from iptables\0\0\0".to_vec(),
        },
        Expr::Verdict(Verdict::Goto("ELSEWHERE".to_owned())),
    ];
    assert_eq!(
        rule_text("FORWARD", &exprs, None).text,
        "-A FORWARD [ct] [meta 15 == 02] [payload 1b @ base 2 + 13 op 4 02] -m conntrack -m \
         comment --comment \"from iptables\" -g ELSEWHERE"
    );
}

#[test]
fn negated_ports_in_a_row_are_one_multiport_match() {
    let port = |op, p: u16| {
        [
            payload(expr::base::TRANSPORT, 2, 2),
            cmp(op, &p.to_be_bytes()),
        ]
    };
    let exprs: Vec<Expr> = [
        port(CmpOp::Neq, 53),
        port(CmpOp::Neq, 15008),
        port(CmpOp::Eq, 80),
        port(CmpOp::Neq, 443),
    ]
    .concat();
    assert_eq!(
        rule_text("X", &exprs, None).text,
        "-A X -m multiport ! --dports 53,15008 --dport 80 ! --dport 443"
    );
}

#[test]
fn meshlab_table_comes_first_and_others_are_marked_read_only() {
    let nat = |name: &str| (2u8, "nat".to_owned(), name.to_owned());
    let ruleset = Ruleset {
        tables: vec![
            TableInfo {
                family: 2,
                name: "nat".to_owned(),
            },
            TableInfo {
                family: 2,
                name: "meshlab".to_owned(),
            },
        ],
        chains: vec![
            ChainInfo {
                family: 2,
                table: "nat".to_owned(),
                name: "DOCKER_OUTPUT".to_owned(),
                base: None,
            },
            ChainInfo {
                family: 2,
                table: "nat".to_owned(),
                name: "OUTPUT".to_owned(),
                base: Some(BaseChain {
                    kind: "nat".to_owned(),
                    hook: 3,
                    priority: -100,
                    policy: 1,
                }),
            },
            ChainInfo {
                family: 2,
                table: "meshlab".to_owned(),
                name: "OUTPUT".to_owned(),
                base: Some(BaseChain {
                    kind: "nat".to_owned(),
                    hook: 3,
                    priority: -101,
                    policy: 1,
                }),
            },
        ],
        rules: [
            (nat("DOCKER_OUTPUT"), docker_dnat(), None),
            (
                nat("OUTPUT"),
                vec![
                    payload(expr::base::NETWORK, 16, 4),
                    cmp(CmpOp::Eq, &[127, 0, 0, 11]),
                    Expr::Verdict(Verdict::Jump("DOCKER_OUTPUT".to_owned())),
                ],
                None,
            ),
            (
                (2, "meshlab".to_owned(), "OUTPUT".to_owned()),
                vec![Expr::Verdict(Verdict::Return)],
                Some("meshlab: test".to_owned()),
            ),
        ]
        .into_iter()
        .map(|((family, table, chain), exprs, comment)| RuleInfo {
            family,
            table,
            chain,
            exprs,
            comment,
        })
        .collect(),
    };
    let lines = lines(&ruleset);
    let text: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        text,
        [
            "# table ip meshlab (meshlab's traffic capture)",
            "-P OUTPUT ACCEPT  # nat hook output priority -101",
            "-A OUTPUT -m comment --comment \"meshlab: test\" -j RETURN",
            "# table ip nat (not meshlab's: shown, never changed)",
            "-P OUTPUT ACCEPT  # nat hook output priority -100",
            "-N DOCKER_OUTPUT",
            "-A DOCKER_OUTPUT -p tcp -d 127.0.0.11/32 --dport 53 -j DNAT --to-destination \
             127.0.0.11:37273",
            "-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT",
        ]
    );
    assert!(lines[..3].iter().all(|l| l.ours && l.table == "ip meshlab"));
    assert!(lines[3..].iter().all(|l| !l.ours && l.table == "ip nat"));
    assert_eq!(lines[2].comment.as_deref(), Some("meshlab: test"));
    assert_eq!(lines[2].to_string(), lines[2].text);
}
