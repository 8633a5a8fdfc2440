//! The ruleset as a learner reads it: lines like `iptables -t nat -S` prints, made
//! from the expressions the kernel holds, for meshlab's table and (read-only) every
//! other one, such as Docker's embedded-DNS rules.
//!
//! Expressions are read back the way iptables-nft reads its own: a load into a
//! register followed by a comparison becomes one match (`meta l4proto` + `cmp` is
//! `-p tcp`), and consecutive negated port matches become one
//! `-m multiport ! --dports`. What has no iptables spelling is shown in brackets in
//! nft's terms (`[ct]`, `[meta 15 == 02]`) rather than left out.

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;

use super::attr;
use super::expr::{self, CmpOp, Expr, Verdict};
use super::netlink::{self, NFPROTO_IPV4, Ruleset};
use super::rules;

/// One line of [`list`](super::list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleLine {
    /// The table, e.g. `ip meshlab` or Docker's `ip nat`.
    pub table: String,
    /// Whether the table is meshlab's; others are shown, never changed.
    pub ours: bool,
    /// The line: a table heading (`# table ip nat …`), a chain (`-P OUTPUT ACCEPT …`,
    /// `-N ISTIO_OUTPUT`) or a rule (`-A ISTIO_OUTPUT … -j ISTIO_REDIRECT`).
    pub text: String,
    /// A rule's comment.
    pub comment: Option<String>,
    /// What a rule's counter has seen.
    pub counters: Option<Counters>,
}

/// Packets and bytes a rule matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Packets matched.
    pub packets: u64,
    /// Bytes matched.
    pub bytes: u64,
}

impl fmt::Display for RuleLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The ruleset as lines: meshlab's table first, then the others in the kernel's
/// order; in each, base chains (`-P`), other chains (`-N`), then rules (`-A`) chain
/// by chain.
pub(super) fn lines(ruleset: &Ruleset) -> Vec<RuleLine> {
    let mut tables: Vec<_> = ruleset.tables.iter().collect();
    tables.sort_by_key(|t| !is_ours(t.family, &t.name));
    let mut lines = Vec::new();
    for table in tables {
        let ours = is_ours(table.family, &table.name);
        let name = format!("{} {}", family_name(table.family), table.name);
        let line = |text: String, comment, counters| RuleLine {
            table: name.clone(),
            ours,
            text,
            comment,
            counters,
        };
        let heading = if ours {
            "meshlab's traffic capture"
        } else {
            "not meshlab's: shown, never changed"
        };
        lines.push(line(format!("# table {name} ({heading})"), None, None));
        let chains: Vec<_> = ruleset
            .chains
            .iter()
            .filter(|c| c.family == table.family && c.table == table.name)
            .collect();
        for chain in &chains {
            let Some(base) = &chain.base else { continue };
            let policy = if base.policy == netlink::POLICY_ACCEPT {
                "ACCEPT"
            } else {
                "DROP"
            };
            lines.push(line(
                format!(
                    "-P {} {policy}  # {} hook {} priority {}",
                    chain.name,
                    base.kind,
                    hook_name(table.family, base.hook),
                    base.priority
                ),
                None,
                None,
            ));
        }
        for chain in chains.iter().filter(|c| c.base.is_none()) {
            lines.push(line(format!("-N {}", chain.name), None, None));
        }
        for chain in &chains {
            for rule in ruleset.rules.iter().filter(|r| {
                r.family == table.family && r.table == table.name && r.chain == chain.name
            }) {
                let rendered = rule_text(&rule.chain, &rule.exprs, rule.comment.as_deref());
                lines.push(line(rendered.text, rendered.comment, rendered.counters));
            }
        }
    }
    lines
}

fn is_ours(family: u8, table: &str) -> bool {
    family == NFPROTO_IPV4 && table == rules::TABLE
}

fn family_name(family: u8) -> String {
    match family {
        1 => "inet".to_owned(),
        2 => "ip".to_owned(),
        3 => "arp".to_owned(),
        5 => "netdev".to_owned(),
        7 => "bridge".to_owned(),
        10 => "ip6".to_owned(),
        other => format!("family-{other}"),
    }
}

fn hook_name(family: u8, hook: u32) -> String {
    let names: &[&str] = match family {
        5 => &["ingress", "egress"],
        3 => &["input", "output", "forward"],
        _ => &["prerouting", "input", "forward", "output", "postrouting"],
    };
    names
        .get(usize::try_from(hook).unwrap_or(usize::MAX))
        .map_or_else(|| hook.to_string(), |name| (*name).to_owned())
}

/// A rule as text, with its comment and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rendered {
    text: String,
    comment: Option<String>,
    counters: Option<Counters>,
}

/// What a register holds while a rule is read.
#[derive(Debug, Clone)]
enum Loaded {
    Meta(u32),
    Payload { base: u32, offset: u32, len: u32 },
    Masked { offset: u32, prefix: u32 },
    Value(Vec<u8>),
}

/// A piece of a rule line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Port {
        flag: &'static str,
        port: u16,
        negate: bool,
    },
}

/// `-A CHAIN matches… [-m comment --comment "…"] [-j TARGET …]`.
fn rule_text(chain: &str, exprs: &[Expr], comment: Option<&str>) -> Rendered {
    let mut regs: HashMap<u32, Loaded> = HashMap::new();
    let mut parts = Vec::new();
    let mut target = None;
    let mut counters = None;
    let mut comment = comment.map(str::to_owned);
    for expr in exprs {
        match expr {
            Expr::Meta { key, dreg } => {
                regs.insert(*dreg, Loaded::Meta(*key));
            }
            Expr::Payload {
                base,
                offset,
                len,
                dreg,
            } => {
                regs.insert(
                    *dreg,
                    Loaded::Payload {
                        base: *base,
                        offset: *offset,
                        len: *len,
                    },
                );
            }
            Expr::Bitwise {
                sreg,
                dreg,
                mask,
                xor,
            } => {
                let loaded = match regs.get(sreg) {
                    Some(Loaded::Payload {
                        base: expr::base::NETWORK,
                        offset,
                        len: 4,
                    }) if xor.iter().all(|&b| b == 0) => Loaded::Masked {
                        offset: *offset,
                        prefix: mask.iter().map(|b| b.count_ones()).sum(),
                    },
                    _ => {
                        parts.push(Part::Text("[bitwise]".to_owned()));
                        continue;
                    }
                };
                regs.insert(*dreg, loaded);
            }
            Expr::Immediate { dreg, data } => {
                regs.insert(*dreg, Loaded::Value(data.clone()));
            }
            Expr::Cmp { sreg, op, data } => parts.push(compare(regs.get(sreg), *op, data)),
            Expr::Counter { packets, bytes } => {
                counters = Some(Counters {
                    packets: *packets,
                    bytes: *bytes,
                });
            }
            Expr::Verdict(verdict) => target = Some(verdict_text(verdict)),
            Expr::Redir {
                proto_min,
                proto_max,
            } => {
                let port = |reg: &Option<u32>| reg.and_then(|r| port_in(regs.get(&r)));
                target = Some(match (port(proto_min), port(proto_max)) {
                    (Some(min), Some(max)) if max != min => {
                        format!("-j REDIRECT --to-ports {min}-{max}")
                    }
                    (Some(min), _) => format!("-j REDIRECT --to-ports {min}"),
                    (None, _) => "-j REDIRECT".to_owned(),
                });
            }
            Expr::Nat {
                kind,
                family,
                addr_min,
                proto_min,
            } => {
                let addr = match (family, addr_min.and_then(|r| regs.get(&r))) {
                    (Some(2), Some(Loaded::Value(v))) => {
                        v.first_chunk::<4>().map(|a| Ipv4Addr::from(*a).to_string())
                    }
                    _ => None,
                };
                let port = proto_min.and_then(|r| port_in(regs.get(&r)));
                target = Some(nat_text(*kind, addr.as_deref(), port, None));
            }
            Expr::XtTarget { name, rev, info } => target = Some(xt_target(name, *rev, info)),
            Expr::XtMatch { name, info, .. } if name == "comment" => {
                comment.get_or_insert_with(|| attr::string(info));
            }
            Expr::XtMatch { name, .. } => parts.push(Part::Text(format!("-m {name}"))),
            Expr::Other(name) => parts.push(Part::Text(format!("[{name}]"))),
        }
    }
    let mut text = format!("-A {chain}");
    for part in join_ports(parts) {
        text.push(' ');
        text.push_str(&part);
    }
    if let Some(comment) = &comment {
        text.push_str(&format!(
            " -m comment --comment \"{}\"",
            comment.replace('"', "\\\"")
        ));
    }
    if let Some(target) = target {
        text.push(' ');
        text.push_str(&target);
    }
    Rendered {
        text,
        comment,
        counters,
    }
}

/// One comparison as an iptables match, given what its register holds.
fn compare(loaded: Option<&Loaded>, op: CmpOp, data: &[u8]) -> Part {
    let not = match op {
        CmpOp::Eq => "",
        CmpOp::Neq => "! ",
        CmpOp::Other(_) => return Part::Text(unknown(loaded, op, data)),
    };
    let text = match loaded {
        Some(Loaded::Meta(expr::meta::L4PROTO)) if data.len() == 1 => {
            let protocol = match data[0] {
                1 => "icmp".to_owned(),
                6 => "tcp".to_owned(),
                17 => "udp".to_owned(),
                n => n.to_string(),
            };
            format!("{not}-p {protocol}")
        }
        Some(Loaded::Meta(key @ (expr::meta::SKUID | expr::meta::SKGID))) if data.len() == 4 => {
            let id = u32::from_ne_bytes(data.try_into().unwrap_or_default());
            let which = if *key == expr::meta::SKUID {
                "uid"
            } else {
                "gid"
            };
            format!("-m owner {not}--{which}-owner {id}")
        }
        Some(Loaded::Meta(key @ (expr::meta::IIFNAME | expr::meta::OIFNAME))) => {
            let flag = if *key == expr::meta::OIFNAME {
                "-o"
            } else {
                "-i"
            };
            // A name without its NUL is a prefix: iptables writes `eth+`.
            let name = match data.iter().position(|&b| b == 0) {
                Some(end) => String::from_utf8_lossy(&data[..end]).into_owned(),
                None => format!("{}+", String::from_utf8_lossy(data)),
            };
            format!("{not}{flag} {name}")
        }
        Some(Loaded::Payload {
            base: expr::base::NETWORK,
            offset: offset @ (12 | 16),
            len: 4,
        }) if data.len() == 4 => address(*offset, data, 32, not),
        Some(Loaded::Masked {
            offset: offset @ (12 | 16),
            prefix,
        }) if data.len() == 4 => address(*offset, data, *prefix, not),
        Some(Loaded::Payload {
            base: expr::base::TRANSPORT,
            offset: offset @ (0 | 2),
            len: 2,
        }) if data.len() == 2 => {
            return Part::Port {
                flag: if *offset == 0 { "sport" } else { "dport" },
                port: u16::from_be_bytes([data[0], data[1]]),
                negate: op == CmpOp::Neq,
            };
        }
        _ => unknown(loaded, op, data),
    };
    Part::Text(text)
}

fn address(offset: u32, data: &[u8], prefix: u32, not: &str) -> String {
    let flag = if offset == 12 { "-s" } else { "-d" };
    let addr = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
    format!("{not}{flag} {addr}/{prefix}")
}

/// A comparison with no iptables spelling, in nft's terms.
fn unknown(loaded: Option<&Loaded>, op: CmpOp, data: &[u8]) -> String {
    let source = match loaded {
        Some(Loaded::Meta(key)) => format!("meta {key}"),
        Some(Loaded::Payload { base, offset, len }) => {
            format!("payload {len}b @ base {base} + {offset}")
        }
        Some(Loaded::Masked { offset, prefix }) => {
            format!("payload 4b @ base 1 + {offset} /{prefix}")
        }
        Some(Loaded::Value(value)) => format!("value {}", hex(value)),
        None => "register".to_owned(),
    };
    let op = match op {
        CmpOp::Eq => "==".to_owned(),
        CmpOp::Neq => "!=".to_owned(),
        CmpOp::Other(code) => format!("op {code}"),
    };
    format!("[{source} {op} {}]", hex(data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The parts as text, runs of negated ports of one direction as one multiport match.
fn join_ports(parts: Vec<Part>) -> Vec<String> {
    let mut out = Vec::new();
    let mut parts = parts.into_iter().peekable();
    while let Some(part) = parts.next() {
        match part {
            Part::Text(text) => out.push(text),
            Part::Port {
                flag,
                port,
                negate: false,
            } => out.push(format!("--{flag} {port}")),
            Part::Port {
                flag,
                port,
                negate: true,
            } => {
                let mut ports = vec![port.to_string()];
                while let Some(Part::Port {
                    flag: next_flag,
                    port,
                    negate: true,
                }) = parts.peek()
                    && *next_flag == flag
                {
                    ports.push(port.to_string());
                    parts.next();
                }
                out.push(if ports.len() == 1 {
                    format!("! --{flag} {port}")
                } else {
                    format!("-m multiport ! --{flag}s {}", ports.join(","))
                });
            }
        }
    }
    out
}

fn port_in(loaded: Option<&Loaded>) -> Option<u16> {
    match loaded {
        Some(Loaded::Value(value)) => value.first_chunk::<2>().map(|p| u16::from_be_bytes(*p)),
        _ => None,
    }
}

fn verdict_text(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Accept => "-j ACCEPT".to_owned(),
        Verdict::Drop => "-j DROP".to_owned(),
        Verdict::Return => "-j RETURN".to_owned(),
        Verdict::Jump(chain) => format!("-j {chain}"),
        Verdict::Goto(chain) => format!("-g {chain}"),
        Verdict::Other(code) => format!("[verdict {code}]"),
    }
}

/// `-j DNAT --to-destination ADDR[:PORT[-PORT]]` or `-j SNAT --to-source …`.
fn nat_text(kind: u32, addr: Option<&str>, port: Option<u16>, port_max: Option<u16>) -> String {
    let (target, flag) = if kind == expr::nat::SNAT {
        ("SNAT", "--to-source")
    } else {
        ("DNAT", "--to-destination")
    };
    let mut to = addr.unwrap_or_default().to_owned();
    if let Some(port) = port {
        to.push_str(&format!(":{port}"));
        if let Some(max) = port_max.filter(|&max| max != port) {
            to.push_str(&format!("-{max}"));
        }
    }
    format!("-j {target} {flag} {to}")
}

/// An xtables target, with the NAT ranges of `DNAT`, `SNAT` and `REDIRECT` decoded
/// from their structs (`nf_nat_ipv4_multi_range_compat` for revision 0,
/// `nf_nat_range` for 1, `nf_nat_range2` for 2).
fn xt_target(name: &str, rev: u32, info: &[u8]) -> String {
    const MAP_IPS: u32 = 1;
    const PROTO_SPECIFIED: u32 = 2;
    let u32_at = |at: usize| {
        info.get(at..at + 4)
            .map(|b| u32::from_ne_bytes(b.try_into().unwrap_or_default()))
    };
    let port_at = |at: usize| {
        info.get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let addr_at = |at: usize| {
        info.get(at..at + 4)
            .map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    };
    // (flags, min address, min port, max port) by layout.
    let range = match rev {
        0 => u32_at(4).map(|flags| (flags, addr_at(8), port_at(16), port_at(18))),
        _ => u32_at(0).map(|flags| (flags, addr_at(4), port_at(36), port_at(38))),
    };
    match (name, range) {
        ("DNAT" | "SNAT", Some((flags, addr, port, port_max))) => {
            let addr = addr.filter(|_| flags & MAP_IPS != 0).map(|a| a.to_string());
            let (port, port_max) = if flags & PROTO_SPECIFIED == 0 {
                (None, None)
            } else {
                (port, port_max)
            };
            let kind = if name == "SNAT" {
                expr::nat::SNAT
            } else {
                expr::nat::DNAT
            };
            nat_text(kind, addr.as_deref(), port, port_max)
        }
        ("REDIRECT", Some((flags, _, Some(port), _))) if flags & PROTO_SPECIFIED != 0 => {
            format!("-j REDIRECT --to-ports {port}")
        }
        _ => format!("-j {name}"),
    }
}

#[cfg(test)]
mod tests;
