use super::*;
use crate::capture::config::CaptureConfig;
use crate::capture::expr::{CmpOp, Verdict};
use crate::capture::rules::{Action, Match, Protocol, Rule};

/// What nft 1.0.6 (libnftnl) sends for
///
/// ```text
/// nft add rule ip meshlab ISTIO_OUTPUT oifname "lo" ip daddr != 127.0.0.1 \
///     meta l4proto tcp th dport != 15008 meta skuid 1337 counter \
///     jump ISTIO_OUTPUT comment "x"
/// ```
///
/// captured with `strace -e write=3`: the NEWRULE message of its batch, sequence
/// number 1. meshlab sends the same bytes but for the flags, where it also asks for
/// an acknowledgement (`NLM_F_ACK`, 0x0004: 0x0c01 becomes 0x0c05).
const NFT_RULE: &[&str] = &[
    // nlmsghdr: length 596, type NFT_MSG_NEWRULE (0x0a06), flags, seq 1, port 0
    "54 02 00 00 06 0a 01 0c 01 00 00 00 00 00 00 00",
    // nfgenmsg: AF_INET; NFTA_RULE_TABLE "meshlab"
    "02 00 00 00 0c 00 01 00 6d 65 73 68 6c 61 62 00",
    // NFTA_RULE_CHAIN "ISTIO_OUTPUT"
    "11 00 02 00 49 53 54 49 4f 5f 4f 55 54 50 55 54",
    // NFTA_RULE_EXPRESSIONS; meta load oifname => reg 1
    "00 00 00 00 18 02 04 80 24 00 01 80 09 00 01 00",
    "6d 65 74 61 00 00 00 00 14 00 02 80 08 00 02 00",
    "00 00 00 07 08 00 01 00 00 00 00 01 38 00 01 80",
    // cmp eq reg 1 "lo" (16 bytes)
    "08 00 01 00 63 6d 70 00 2c 00 02 80 08 00 01 00",
    "00 00 00 01 08 00 02 00 00 00 00 00 18 00 03 80",
    "14 00 01 00 6c 6f 00 00 00 00 00 00 00 00 00 00",
    // payload load 4b @ network header + 16 => reg 1
    "00 00 00 00 34 00 01 80 0c 00 01 00 70 61 79 6c",
    "6f 61 64 00 24 00 02 80 08 00 01 00 00 00 00 01",
    "08 00 02 00 00 00 00 01 08 00 03 00 00 00 00 10",
    // cmp neq reg 1 127.0.0.1
    "08 00 04 00 00 00 00 04 2c 00 01 80 08 00 01 00",
    "63 6d 70 00 20 00 02 80 08 00 01 00 00 00 00 01",
    "08 00 02 00 00 00 00 01 0c 00 03 80 08 00 01 00",
    // meta load l4proto => reg 1
    "7f 00 00 01 24 00 01 80 09 00 01 00 6d 65 74 61",
    "00 00 00 00 14 00 02 80 08 00 02 00 00 00 00 10",
    // cmp eq reg 1 6
    "08 00 01 00 00 00 00 01 2c 00 01 80 08 00 01 00",
    "63 6d 70 00 20 00 02 80 08 00 01 00 00 00 00 01",
    "08 00 02 00 00 00 00 00 0c 00 03 80 05 00 01 00",
    // payload load 2b @ transport header + 2 => reg 1
    "06 00 00 00 34 00 01 80 0c 00 01 00 70 61 79 6c",
    "6f 61 64 00 24 00 02 80 08 00 01 00 00 00 00 01",
    "08 00 02 00 00 00 00 02 08 00 03 00 00 00 00 02",
    // cmp neq reg 1 15008
    "08 00 04 00 00 00 00 02 2c 00 01 80 08 00 01 00",
    "63 6d 70 00 20 00 02 80 08 00 01 00 00 00 00 01",
    "08 00 02 00 00 00 00 01 0c 00 03 80 06 00 01 00",
    // meta load skuid => reg 1
    "3a a0 00 00 24 00 01 80 09 00 01 00 6d 65 74 61",
    "00 00 00 00 14 00 02 80 08 00 02 00 00 00 00 0a",
    // cmp eq reg 1 1337 (host byte order)
    "08 00 01 00 00 00 00 01 2c 00 01 80 08 00 01 00",
    "63 6d 70 00 20 00 02 80 08 00 01 00 00 00 00 01",
    "08 00 02 00 00 00 00 00 0c 00 03 80 08 00 01 00",
    // counter
    "39 05 00 00 14 00 01 80 0c 00 01 00 63 6f 75 6e",
    "74 65 72 00 04 00 02 80 44 00 01 80 0e 00 01 00",
    // immediate reg 0 jump ISTIO_OUTPUT
    "69 6d 6d 65 64 69 61 74 65 00 00 00 30 00 02 80",
    "08 00 01 00 00 00 00 00 24 00 02 80 20 00 02 80",
    "08 00 01 00 ff ff ff fd 11 00 02 00 49 53 54 49",
    // NFTA_RULE_USERDATA: comment "x"
    "4f 5f 4f 55 54 50 55 54 00 00 00 00 08 00 07 00",
    "00 02 78 00",
];

fn hex(lines: &[&str]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|line| line.split_whitespace())
        .map(|byte| u8::from_str_radix(byte, 16).unwrap())
        .collect()
}

/// The rule of [`NFT_RULE`] in meshlab's terms.
fn istio_in_redirect_like_rule() -> Rule {
    Rule {
        matches: vec![
            Match::OutputInterface("lo"),
            Match::Destination {
                range: "127.0.0.1".parse().unwrap(),
                negate: true,
            },
            Match::Protocol(Protocol::Tcp),
            Match::DestinationPort {
                port: 15008,
                negate: true,
            },
            Match::Uid {
                uid: 1337,
                negate: false,
            },
        ],
        action: Action::Jump("ISTIO_OUTPUT"),
        comment: "x".to_owned(),
    }
}

#[cfg(target_endian = "little")]
#[test]
fn a_rule_is_encoded_byte_for_byte_as_nft_does() {
    let rule = istio_in_redirect_like_rule();
    let mut ours = new_rule("meshlab", "ISTIO_OUTPUT", &rule.exprs(), &rule.comment);
    set_seq(&mut ours, 1);
    let mut expected = hex(NFT_RULE);
    expected[6] |= 0x04; // NLM_F_ACK
    assert_eq!(ours.len(), expected.len());
    for (at, (a, b)) in ours.iter().zip(&expected).enumerate() {
        assert_eq!(a, b, "byte {at:#x} differs: ours {a:02x}, nft's {b:02x}");
    }
}

#[test]
fn a_rule_reads_back_as_written() {
    let rule = istio_in_redirect_like_rule();
    let message = new_rule("meshlab", "ISTIO_OUTPUT", &rule.exprs(), &rule.comment);
    let received: Vec<_> = Received::all(&message).collect::<Result<_, _>>().unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].kind, 0x0a06);
    let (family, attrs) = received[0].payload.split_first_chunk::<4>().unwrap();
    let read = rule_info(family[0], attrs).unwrap();
    assert_eq!(
        read,
        RuleInfo {
            family: NFPROTO_IPV4,
            table: "meshlab".to_owned(),
            chain: "ISTIO_OUTPUT".to_owned(),
            exprs: rule.exprs(),
            comment: Some("x".to_owned()),
        }
    );
    assert_eq!(
        read.exprs.last(),
        Some(&Expr::Verdict(Verdict::Jump("ISTIO_OUTPUT".to_owned())))
    );
    assert!(matches!(read.exprs[1], Expr::Cmp { op: CmpOp::Eq, .. }));
}

#[test]
fn replacing_the_table_adds_deletes_and_rebuilds_it_in_one_batch() {
    let table = rules::table(&CaptureConfig::default());
    let messages = replace_table(&table);
    let whats: Vec<&str> = messages.iter().map(|m| m.what.as_str()).collect();
    assert_eq!(
        whats[..5],
        [
            "creating table ip meshlab",
            "deleting the previous table ip meshlab",
            "creating table ip meshlab",
            "creating chain PREROUTING",
            "creating chain OUTPUT",
        ]
    );
    assert_eq!(messages.len(), 3 + table.chains.len() + table.rule_count());
    assert_eq!(
        whats.last(),
        Some(
            &"adding rule 4 to chain ISTIO_OUTPUT_DNS (meshlab: dns over udp to 127.0.0.11 -> 15053)"
        )
    );
    let header = |m: &Message| {
        let kind = u16::from_ne_bytes([m.bytes[4], m.bytes[5]]);
        let flags = u16::from_ne_bytes([m.bytes[6], m.bytes[7]]);
        (kind, flags)
    };
    // Every message is acknowledged; creating never fails on an existing object
    // (no NLM_F_EXCL); rules are appended.
    assert_eq!(header(&messages[0]), (0x0a00, 0x0405));
    assert_eq!(header(&messages[1]), (0x0a02, 0x0005));
    assert_eq!(header(&messages[3]), (0x0a03, 0x0405));
    assert_eq!(header(messages.last().unwrap()), (0x0a06, 0x0c05));
}

#[test]
fn a_base_chain_hooks_nat_before_docker() {
    let table = rules::table(&CaptureConfig::default());
    let output = table.chains.iter().find(|c| c.name == "OUTPUT").unwrap();
    let message = new_chain("meshlab", output);
    let (family, attrs) = message[HEADER..].split_first_chunk::<4>().unwrap();
    assert_eq!(
        chain_info(family[0], attrs).unwrap(),
        ChainInfo {
            family: NFPROTO_IPV4,
            table: "meshlab".to_owned(),
            name: "OUTPUT".to_owned(),
            base: Some(BaseChain {
                kind: "nat".to_owned(),
                hook: 3,
                priority: -101,
                policy: POLICY_ACCEPT,
            }),
        }
    );
    let regular = table
        .chains
        .iter()
        .find(|c| c.name == "ISTIO_OUTPUT")
        .unwrap();
    let message = new_chain("meshlab", regular);
    let (family, attrs) = message[HEADER..].split_first_chunk::<4>().unwrap();
    assert_eq!(chain_info(family[0], attrs).unwrap().base, None);
}

#[test]
fn comments_are_libnftnl_user_data() {
    assert_eq!(comment_udata("x"), [0, 2, b'x', 0]);
    assert_eq!(
        comment_from_udata(&comment_udata("meshlab: ok")).as_deref(),
        Some("meshlab: ok")
    );
    // Another record first, then the comment.
    assert_eq!(
        comment_from_udata(&[7, 1, 0xff, 0, 3, b'h', b'i', 0]).as_deref(),
        Some("hi")
    );
    assert_eq!(comment_from_udata(&[0, 9, b'x']), None);
    // Cut to nft's 128 bytes, NUL included, on a character boundary.
    let long = "é".repeat(100);
    let udata = comment_udata(&long);
    assert_eq!(usize::from(udata[1]), 127);
    assert_eq!(comment_from_udata(&udata).unwrap(), "é".repeat(63));
}

#[test]
fn acknowledgements_and_errors_are_read() {
    // Two messages in one datagram: an ack for seq 7 (error 0), then EPERM for 8.
    let mut datagram = Vec::new();
    for (seq, error) in [(7u32, 0i32), (8, -1)] {
        datagram.extend_from_slice(&36u32.to_ne_bytes());
        datagram.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        datagram.extend_from_slice(&0u16.to_ne_bytes());
        datagram.extend_from_slice(&seq.to_ne_bytes());
        datagram.extend_from_slice(&0u32.to_ne_bytes());
        datagram.extend_from_slice(&error.to_ne_bytes());
        datagram.extend_from_slice(&[0; 16]); // the request's header
    }
    let received: Vec<_> = Received::all(&datagram).collect::<Result<_, _>>().unwrap();
    let answers: Vec<_> = received
        .iter()
        .map(|r| (r.seq, ack_errno(r.payload).unwrap()))
        .collect();
    assert_eq!(answers, [(7, 0), (8, 1)]);
    assert!(matches!(
        rejected("the change".to_owned(), 1),
        CaptureError::PermissionDenied
    ));
    assert_eq!(
        rejected("creating chain OUTPUT".to_owned(), 95).to_string(),
        "netfilter rejected creating chain OUTPUT (hint: the kernel needs nf_tables with nat \
         and redirect support)"
    );
    // A message claiming more than the datagram holds is an error, not a panic.
    let mut truncated = datagram.clone();
    truncated[0] = 200;
    assert!(Received::all(&truncated).next().unwrap().is_err());
}
