//! The capture rules as plain data: Istio's chains and rules for a
//! [`CaptureConfig`], and their lowering into nf_tables expressions.
//!
//! The chains keep Istio's names and order (`ISTIO_INBOUND`, `ISTIO_IN_REDIRECT`,
//! `ISTIO_OUTPUT`, `ISTIO_REDIRECT`, `ISTIO_OUTPUT_DNS`), so a learner can hold the
//! listing next to `iptables-save` from a real pod. They live in meshlab's own table
//! (`ip meshlab`), whose two base chains stand in for the nat table's `PREROUTING`
//! and `OUTPUT`.

use std::net::Ipv4Addr;

use super::config::{CaptureConfig, IncludeRanges, Ipv4Cidr, RESERVED_INBOUND_PORTS};
use super::expr::{self, CmpOp, Expr, REG_1, Verdict};

/// meshlab's table, in the `ip` family.
pub(super) const TABLE: &str = "meshlab";

/// The priority of meshlab's nat chains: just before Docker's (iptables-nft's nat
/// table, `dstnat` = -100), so capture decides first. The first nat chain that maps
/// a connection wins; later ones are not asked about it.
pub(super) const PRIORITY: i32 = -101;

/// Where the sidecar's inbound passthrough connects from (Istio's
/// `InboundPassthroughClusterIpv4`).
const PASSTHROUGH_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 6);

/// The DNS port.
const DNS: u16 = 53;

/// Istio's chain names.
const PREROUTING: &str = "PREROUTING";
const OUTPUT: &str = "OUTPUT";
const ISTIO_INBOUND: &str = "ISTIO_INBOUND";
const ISTIO_IN_REDIRECT: &str = "ISTIO_IN_REDIRECT";
const ISTIO_REDIRECT: &str = "ISTIO_REDIRECT";
const ISTIO_OUTPUT: &str = "ISTIO_OUTPUT";
const ISTIO_OUTPUT_DNS: &str = "ISTIO_OUTPUT_DNS";

/// meshlab's table: its chains, base chains first, each chain before any rule that
/// jumps to it is added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Table {
    /// The chains, in creation order.
    pub(super) chains: Vec<Chain>,
}

/// One chain and its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Chain {
    /// Its name.
    pub(super) name: &'static str,
    /// The nat hook it is attached to, for a base chain.
    pub(super) hook: Option<Hook>,
    /// Its rules, in order.
    pub(super) rules: Vec<Rule>,
}

/// A netfilter hook a nat chain can attach to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hook {
    /// Packets arriving for the pod (`NF_INET_PRE_ROUTING`).
    Prerouting,
    /// Packets the pod sends (`NF_INET_LOCAL_OUT`).
    Output,
}

/// A rule: every match must hold, then the action is taken. Every rule counts its
/// packets and carries a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rule {
    /// What the packet must look like.
    pub(super) matches: Vec<Match>,
    /// What happens to it then.
    pub(super) action: Action,
    /// What the rule is for, shown with it.
    pub(super) comment: String,
}

/// One condition of a rule, in iptables' words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Match {
    /// `-p tcp`.
    Protocol(Protocol),
    /// `-s 127.0.0.6/32`.
    Source(Ipv4Cidr),
    /// `[!] -d 127.0.0.1/32`.
    Destination {
        /// The range.
        range: Ipv4Cidr,
        /// Whether the destination must be outside it.
        negate: bool,
    },
    /// `[!] --dport 53` (after a protocol match).
    DestinationPort {
        /// The port.
        port: u16,
        /// Whether the port must differ.
        negate: bool,
    },
    /// `-o lo`.
    OutputInterface(&'static str),
    /// `-m owner [!] --uid-owner 1337`.
    Uid {
        /// The uid.
        uid: u32,
        /// Whether the socket must belong to another uid.
        negate: bool,
    },
    /// `-m owner [!] --gid-owner 1337`.
    Gid {
        /// The gid.
        gid: u32,
        /// Whether the socket must belong to another gid.
        negate: bool,
    },
}

/// A layer 4 protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// What a matching rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    /// `-j RETURN`: leave this chain; at the end of a base chain, the packet goes on
    /// uncaptured.
    Return,
    /// `-j CHAIN`.
    Jump(&'static str),
    /// `-j REDIRECT --to-ports PORT`: to this port on the pod itself.
    Redirect(u16),
}

/// Who owns a socket, for the owner rules that run once for the uid and once for
/// the gid, as Istio's do.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Uid(u32),
    Gid(u32),
}

/// Istio's rules for `config`.
pub(super) fn table(config: &CaptureConfig) -> Table {
    let mut chains = vec![
        Chain::base(PREROUTING, Hook::Prerouting, vec![prerouting()]),
        Chain::base(
            OUTPUT,
            Hook::Output,
            vec![Rule::new(
                "meshlab: traffic from the pod goes through ISTIO_OUTPUT",
                [],
                Action::Jump(ISTIO_OUTPUT),
            )],
        ),
        Chain::regular(ISTIO_INBOUND, inbound(config)),
        Chain::regular(
            ISTIO_IN_REDIRECT,
            vec![Rule::new(
                format!("meshlab: inbound tcp -> {}", config.inbound_port),
                [TCP],
                Action::Redirect(config.inbound_port),
            )],
        ),
        Chain::regular(
            ISTIO_REDIRECT,
            vec![Rule::new(
                format!("meshlab: outbound tcp -> {}", config.outbound_port),
                [TCP],
                Action::Redirect(config.outbound_port),
            )],
        ),
        Chain::regular(ISTIO_OUTPUT, output(config)),
    ];
    if config.capture_dns {
        chains.push(Chain::regular(ISTIO_OUTPUT_DNS, dns(config)));
    }
    Table { chains }
}

const TCP: Match = Match::Protocol(Protocol::Tcp);
const UDP: Match = Match::Protocol(Protocol::Udp);

fn prerouting() -> Rule {
    Rule::new(
        "meshlab: inbound tcp goes through ISTIO_INBOUND",
        [TCP],
        Action::Jump(ISTIO_INBOUND),
    )
}

/// `ISTIO_INBOUND`: the proxy's own ports and the excluded ones go straight to the
/// app; all other TCP to the inbound listener.
fn inbound(config: &CaptureConfig) -> Vec<Rule> {
    let mut rules = Vec::new();
    let mut excluded = Vec::new();
    let reserved = RESERVED_INBOUND_PORTS
        .iter()
        .map(|&(port, what)| (port, format!("({what}) is not captured")));
    let annotated = config
        .exclude_inbound_ports
        .iter()
        .map(|&port| (port, "is not captured (excludeInboundPorts)".to_owned()));
    for (port, why) in reserved.chain(annotated) {
        if excluded.contains(&port) {
            continue;
        }
        excluded.push(port);
        rules.push(Rule::new(
            format!("meshlab: inbound port {port} {why}"),
            [TCP, dport(port)],
            Action::Return,
        ));
    }
    rules.push(Rule::new(
        "meshlab: other inbound tcp goes to the inbound listener",
        [TCP],
        Action::Jump(ISTIO_IN_REDIRECT),
    ));
    rules
}

/// `ISTIO_OUTPUT`: what the pod sends. The proxy's own traffic and loopback are
/// left alone, except the proxy calling its own pod's address, which comes back
/// in through the inbound listener.
fn output(config: &CaptureConfig) -> Vec<Rule> {
    let mut rules = Vec::new();
    let mut excluded: Vec<u16> = Vec::new();
    for &port in &config.exclude_outbound_ports {
        if excluded.contains(&port) {
            continue;
        }
        excluded.push(port);
        for (protocol, name) in [(TCP, "tcp"), (UDP, "udp")] {
            rules.push(Rule::new(
                format!(
                    "meshlab: outbound {name} port {port} is not captured (excludeOutboundPorts)"
                ),
                [protocol, dport(port)],
                Action::Return,
            ));
        }
    }
    rules.push(Rule::new(
        "meshlab: the proxy's inbound passthrough (from 127.0.0.6) is not captured",
        [
            Match::OutputInterface("lo"),
            Match::Source(host(PASSTHROUGH_SOURCE)),
        ],
        Action::Return,
    ));
    // Istio skips "app calls itself over lo" when loopback is explicitly included.
    let loopback_included = matches!(&config.include_outbound_ranges,
        IncludeRanges::Only(ranges) if ranges.iter().any(|r| r.network().is_loopback()));
    for owner in [Owner::Uid(config.proxy_uid), Owner::Gid(config.proxy_gid)] {
        let mut to_self = vec![
            Match::OutputInterface("lo"),
            Match::Destination {
                range: host(Ipv4Addr::LOCALHOST),
                negate: true,
            },
            TCP,
        ];
        if config.capture_dns {
            to_self.push(not_dport(DNS));
        }
        to_self.extend([not_dport(RESERVED_INBOUND_PORTS[0].0), owner.is(true)]);
        rules.push(Rule::new(
            format!(
                "meshlab: the proxy ({owner}) calling its own pod's address goes to the inbound listener"
            ),
            to_self,
            Action::Jump(ISTIO_IN_REDIRECT),
        ));
        if !loopback_included {
            let mut app_to_self = vec![Match::OutputInterface("lo")];
            if config.capture_dns {
                app_to_self.extend([TCP, not_dport(DNS)]);
            }
            app_to_self.push(owner.is(false));
            rules.push(Rule::new(
                "meshlab: the app calling its own pod over lo is not captured",
                app_to_self,
                Action::Return,
            ));
        }
        rules.push(Rule::new(
            format!("meshlab: the proxy's own traffic ({owner}) is not captured"),
            [owner.is(true)],
            Action::Return,
        ));
    }
    if config.capture_dns {
        rules.push(Rule::new(
            "meshlab: dns goes through ISTIO_OUTPUT_DNS",
            [],
            Action::Jump(ISTIO_OUTPUT_DNS),
        ));
    }
    rules.push(Rule::new(
        "meshlab: traffic to 127.0.0.1 is not captured",
        [Match::Destination {
            range: host(Ipv4Addr::LOCALHOST),
            negate: false,
        }],
        Action::Return,
    ));
    for &range in &config.exclude_outbound_ranges {
        rules.push(Rule::new(
            format!("meshlab: outbound to {range} is not captured (excludeOutboundIPRanges)"),
            [Match::Destination {
                range,
                negate: false,
            }],
            Action::Return,
        ));
    }
    match &config.include_outbound_ranges {
        IncludeRanges::All => rules.push(Rule::new(
            "meshlab: other outbound traffic goes to the outbound listener",
            [],
            Action::Jump(ISTIO_REDIRECT),
        )),
        IncludeRanges::Only(ranges) => {
            for &range in ranges {
                rules.push(Rule::new(
                    format!("meshlab: outbound to {range} is captured (includeOutboundIPRanges)"),
                    [Match::Destination {
                        range,
                        negate: false,
                    }],
                    Action::Jump(ISTIO_REDIRECT),
                ));
            }
            if !ranges.is_empty() {
                rules.push(Rule::new(
                    "meshlab: other outbound traffic is not captured (includeOutboundIPRanges)",
                    [],
                    Action::Return,
                ));
            }
        }
    }
    rules
}

/// `ISTIO_OUTPUT_DNS`: queries to the pod's name servers go to the DNS proxy, except
/// the proxy's own, which continue to Docker's resolver (and its NAT rules).
fn dns(config: &CaptureConfig) -> Vec<Rule> {
    let mut rules = Vec::new();
    for server in &config.dns_servers {
        rules.push(Rule::new(
            format!("meshlab: dns over tcp to {server} -> {}", config.dns_port),
            [TCP, dport(DNS), to_server(*server)],
            Action::Redirect(config.dns_port),
        ));
    }
    for owner in [Owner::Uid(config.proxy_uid), Owner::Gid(config.proxy_gid)] {
        rules.push(Rule::new(
            format!("meshlab: the proxy's own dns queries ({owner}) go to docker's resolver"),
            [UDP, dport(DNS), owner.is(true)],
            Action::Return,
        ));
    }
    for server in &config.dns_servers {
        rules.push(Rule::new(
            format!("meshlab: dns over udp to {server} -> {}", config.dns_port),
            [UDP, dport(DNS), to_server(*server)],
            Action::Redirect(config.dns_port),
        ));
    }
    rules
}

fn to_server(server: Ipv4Addr) -> Match {
    Match::Destination {
        range: host(server),
        negate: false,
    }
}

fn dport(port: u16) -> Match {
    Match::DestinationPort {
        port,
        negate: false,
    }
}

fn not_dport(port: u16) -> Match {
    Match::DestinationPort { port, negate: true }
}

fn host(addr: Ipv4Addr) -> Ipv4Cidr {
    Ipv4Cidr::new(addr, 32).expect("/32 is a valid prefix")
}

// === impl Table ===

impl Table {
    /// How many rules it has.
    pub(super) fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.rules.len()).sum()
    }
}

// === impl Chain ===

impl Chain {
    fn base(name: &'static str, hook: Hook, rules: Vec<Rule>) -> Self {
        Self {
            name,
            hook: Some(hook),
            rules,
        }
    }

    fn regular(name: &'static str, rules: Vec<Rule>) -> Self {
        Self {
            name,
            hook: None,
            rules,
        }
    }
}

// === impl Hook ===

impl Hook {
    /// The hook's number (`enum nf_inet_hooks`).
    pub(super) fn number(self) -> u32 {
        match self {
            Self::Prerouting => 0,
            Self::Output => 3,
        }
    }
}

// === impl Owner ===

impl Owner {
    /// A match on this owner, or on any other when `is` is false.
    fn is(self, is: bool) -> Match {
        match self {
            Self::Uid(uid) => Match::Uid { uid, negate: !is },
            Self::Gid(gid) => Match::Gid { gid, negate: !is },
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Uid(uid) => write!(f, "uid {uid}"),
            Self::Gid(gid) => write!(f, "gid {gid}"),
        }
    }
}

// === impl Rule ===

impl Rule {
    fn new(
        comment: impl Into<String>,
        matches: impl IntoIterator<Item = Match>,
        action: Action,
    ) -> Self {
        Self {
            matches: matches.into_iter().collect(),
            action,
            comment: comment.into(),
        }
    }

    /// The rule as nf_tables expressions, as nft would write it: loads and compares
    /// for each match, a counter, then the verdict.
    pub(super) fn exprs(&self) -> Vec<Expr> {
        let mut exprs = Vec::new();
        for m in &self.matches {
            m.lower(&mut exprs);
        }
        exprs.push(Expr::Counter {
            packets: 0,
            bytes: 0,
        });
        match self.action {
            Action::Return => exprs.push(Expr::Verdict(Verdict::Return)),
            Action::Jump(chain) => exprs.push(Expr::Verdict(Verdict::Jump(chain.to_owned()))),
            Action::Redirect(port) => exprs.extend([
                Expr::Immediate {
                    dreg: REG_1,
                    data: port.to_be_bytes().to_vec(),
                },
                Expr::Redir {
                    proto_min: Some(REG_1),
                    proto_max: None,
                },
            ]),
        }
        exprs
    }
}

// === impl Match ===

impl Match {
    fn lower(&self, exprs: &mut Vec<Expr>) {
        let op = |negate: bool| if negate { CmpOp::Neq } else { CmpOp::Eq };
        match self {
            Self::Protocol(protocol) => {
                let number = match protocol {
                    Protocol::Tcp => 6,
                    Protocol::Udp => 17,
                };
                load_meta(exprs, expr::meta::L4PROTO, CmpOp::Eq, vec![number]);
            }
            Self::Source(range) => load_address(exprs, 12, *range, CmpOp::Eq),
            Self::Destination { range, negate } => load_address(exprs, 16, *range, op(*negate)),
            Self::DestinationPort { port, negate } => {
                exprs.push(Expr::Payload {
                    base: expr::base::TRANSPORT,
                    offset: 2,
                    len: 2,
                    dreg: REG_1,
                });
                exprs.push(Expr::Cmp {
                    sreg: REG_1,
                    op: op(*negate),
                    data: port.to_be_bytes().to_vec(),
                });
            }
            Self::OutputInterface(name) => {
                let mut padded = [0u8; 16];
                padded[..name.len()].copy_from_slice(name.as_bytes());
                load_meta(exprs, expr::meta::OIFNAME, CmpOp::Eq, padded.to_vec());
            }
            // The kernel keeps socket owners in host byte order.
            Self::Uid { uid, negate } => load_meta(
                exprs,
                expr::meta::SKUID,
                op(*negate),
                uid.to_ne_bytes().to_vec(),
            ),
            Self::Gid { gid, negate } => load_meta(
                exprs,
                expr::meta::SKGID,
                op(*negate),
                gid.to_ne_bytes().to_vec(),
            ),
        }
    }
}

fn load_meta(exprs: &mut Vec<Expr>, key: u32, op: CmpOp, data: Vec<u8>) {
    exprs.push(Expr::Meta { key, dreg: REG_1 });
    exprs.push(Expr::Cmp {
        sreg: REG_1,
        op,
        data,
    });
}

/// An IPv4 address at `offset` in the IP header, masked unless the range is one
/// address; being in `0.0.0.0/0` needs no expression.
fn load_address(exprs: &mut Vec<Expr>, offset: u32, range: Ipv4Cidr, op: CmpOp) {
    if range.prefix() == 0 && op == CmpOp::Eq {
        return;
    }
    exprs.push(Expr::Payload {
        base: expr::base::NETWORK,
        offset,
        len: 4,
        dreg: REG_1,
    });
    if range.prefix() < 32 {
        exprs.push(Expr::Bitwise {
            sreg: REG_1,
            dreg: REG_1,
            mask: range.netmask().octets().to_vec(),
            xor: vec![0; 4],
        });
    }
    exprs.push(Expr::Cmp {
        sreg: REG_1,
        op,
        data: range.network().octets().to_vec(),
    });
}

#[cfg(test)]
mod tests;
