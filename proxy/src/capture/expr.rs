//! nf_tables expressions: the small register machine a rule is made of, and its
//! netlink form.
//!
//! A rule is a list of expressions run in order. Loads (`meta`, `payload`,
//! `immediate`) put data into a register, `bitwise` masks it, `cmp` ends the rule
//! early when a register does not match, and the last expression sets a verdict or
//! rewrites the packet (`redir`, `nat`). `iptables -p tcp --dport 53` is, in nft
//! terms, `meta l4proto tcp th dport 53`:
//!
//! ```text
//! [ meta load l4proto => reg 1 ]  [ cmp eq reg 1 0x06 ]
//! [ payload load 2b @ transport header + 2 => reg 1 ]  [ cmp eq reg 1 0x0035 ]
//! ```
//!
//! The same type is used for the rules meshlab writes and for every rule read back
//! from the kernel, including other programs' (Docker's iptables-nft rules use the
//! xtables compatibility expressions `match` and `target`), so that listing shows
//! both in one vocabulary.

use super::CaptureError;
use super::attr::{self, Attrs, Writer};

/// The verdict register.
pub(super) const REG_VERDICT: u32 = 0;
/// The first 16-byte data register, the one nft uses for simple matches.
pub(super) const REG_1: u32 = 1;

/// `meta` keys (`enum nft_meta_keys`).
pub(super) mod meta {
    /// The input interface's name (16 bytes, NUL-padded).
    pub(in super::super) const IIFNAME: u32 = 6;
    /// The output interface's name (16 bytes, NUL-padded).
    pub(in super::super) const OIFNAME: u32 = 7;
    /// The uid owning the packet's socket (host byte order).
    pub(in super::super) const SKUID: u32 = 10;
    /// The gid owning the packet's socket (host byte order).
    pub(in super::super) const SKGID: u32 = 11;
    /// The layer 4 protocol (1 byte).
    pub(in super::super) const L4PROTO: u32 = 16;
}

/// `payload` bases (`enum nft_payload_bases`).
pub(super) mod base {
    /// The IP header.
    pub(in super::super) const NETWORK: u32 = 1;
    /// The TCP or UDP header.
    pub(in super::super) const TRANSPORT: u32 = 2;
}

/// `nat` types (`enum nft_nat_types`).
pub(super) mod nat {
    /// Source NAT.
    pub(in super::super) const SNAT: u32 = 0;
    /// Destination NAT.
    pub(in super::super) const DNAT: u32 = 1;
}

/// One expression of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Expr {
    /// Loads packet metadata ([`meta`] keys) into `dreg`.
    Meta {
        /// What to load.
        key: u32,
        /// The destination register.
        dreg: u32,
    },
    /// Ends the rule unless register `sreg` compares to `data` as `op` says.
    Cmp {
        /// The source register.
        sreg: u32,
        /// The comparison.
        op: CmpOp,
        /// The value, in the register's byte order.
        data: Vec<u8>,
    },
    /// Loads `len` bytes at `offset` from a header ([`base`]) into `dreg`.
    Payload {
        /// Which header.
        base: u32,
        /// The offset in it.
        offset: u32,
        /// How many bytes.
        len: u32,
        /// The destination register.
        dreg: u32,
    },
    /// `dreg = (sreg & mask) ^ xor`, how prefixes (`10.0.0.0/8`) are matched.
    Bitwise {
        /// The source register.
        sreg: u32,
        /// The destination register.
        dreg: u32,
        /// The mask.
        mask: Vec<u8>,
        /// The value xored after masking.
        xor: Vec<u8>,
    },
    /// Loads a constant into `dreg`.
    Immediate {
        /// The destination register.
        dreg: u32,
        /// The constant.
        data: Vec<u8>,
    },
    /// Sets the verdict (an `immediate` into the verdict register).
    Verdict(Verdict),
    /// Redirects to the local machine, to the port in register `proto_min`.
    Redir {
        /// The register holding the lowest port, if a port is set.
        proto_min: Option<u32>,
        /// The register holding the highest port, if a range is set.
        proto_max: Option<u32>,
    },
    /// Source or destination NAT ([`nat`] types) from registers.
    Nat {
        /// SNAT or DNAT.
        kind: u32,
        /// The address family of the addresses.
        family: Option<u32>,
        /// The register holding the lowest address.
        addr_min: Option<u32>,
        /// The register holding the lowest port.
        proto_min: Option<u32>,
    },
    /// Counts packets and bytes.
    Counter {
        /// Packets seen.
        packets: u64,
        /// Bytes seen.
        bytes: u64,
    },
    /// An xtables target kept by iptables-nft (`-j DNAT …`), with its binary options.
    XtTarget {
        /// The target's name, e.g. `DNAT`.
        name: String,
        /// Its revision, which selects the layout of `info`.
        rev: u32,
        /// Its options, as the xtables module's struct.
        info: Vec<u8>,
    },
    /// An xtables match kept by iptables-nft (`-m comment …`).
    XtMatch {
        /// The match's name, e.g. `comment`.
        name: String,
        /// Its revision, which selects the layout of `info`.
        rev: u32,
        /// Its options, as the xtables module's struct.
        info: Vec<u8>,
    },
    /// An expression meshlab does not interpret, by name (`lookup`, `ct`, …).
    Other(String),
}

/// A comparison (`enum nft_cmp_ops`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    /// Equal.
    Eq,
    /// Not equal.
    Neq,
    /// One of the ordering comparisons, by number.
    Other(u32),
}

/// What happens to a packet when a rule ends in it (`enum nft_verdicts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// `NF_ACCEPT`.
    Accept,
    /// `NF_DROP`.
    Drop,
    /// Back to the calling chain.
    Return,
    /// Into a chain, coming back after it.
    Jump(String),
    /// Into a chain, not coming back.
    Goto(String),
    /// Any other code.
    Other(i32),
}

// nf_tables attribute numbers (linux/netfilter/nf_tables.h, nf_tables_compat.h).
const LIST_ELEM: u16 = 1;
const EXPR_NAME: u16 = 1;
const EXPR_DATA: u16 = 2;
const DATA_VALUE: u16 = 1;
const DATA_VERDICT: u16 = 2;
const VERDICT_CODE: u16 = 1;
const VERDICT_CHAIN: u16 = 2;
const META_DREG: u16 = 1;
const META_KEY: u16 = 2;
const CMP_SREG: u16 = 1;
const CMP_OP: u16 = 2;
const CMP_DATA: u16 = 3;
const PAYLOAD_DREG: u16 = 1;
const PAYLOAD_BASE: u16 = 2;
const PAYLOAD_OFFSET: u16 = 3;
const PAYLOAD_LEN: u16 = 4;
const BITWISE_SREG: u16 = 1;
const BITWISE_DREG: u16 = 2;
const BITWISE_LEN: u16 = 3;
const BITWISE_MASK: u16 = 4;
const BITWISE_XOR: u16 = 5;
const BITWISE_OP: u16 = 6;
const IMMEDIATE_DREG: u16 = 1;
const IMMEDIATE_DATA: u16 = 2;
const REDIR_PROTO_MIN: u16 = 1;
const REDIR_PROTO_MAX: u16 = 2;
const NAT_TYPE: u16 = 1;
const NAT_FAMILY: u16 = 2;
const NAT_ADDR_MIN: u16 = 3;
const NAT_PROTO_MIN: u16 = 5;
const COUNTER_BYTES: u16 = 1;
const COUNTER_PACKETS: u16 = 2;
const XT_NAME: u16 = 1;
const XT_REV: u16 = 2;
const XT_INFO: u16 = 3;

// Verdict codes.
const NF_DROP: i32 = 0;
const NF_ACCEPT: i32 = 1;
const NFT_JUMP: i32 = -3;
const NFT_GOTO: i32 = -4;
const NFT_RETURN: i32 = -5;

// === impl Expr ===

impl Expr {
    /// The expression's kernel name.
    fn name(&self) -> &str {
        match self {
            Self::Meta { .. } => "meta",
            Self::Cmp { .. } => "cmp",
            Self::Payload { .. } => "payload",
            Self::Bitwise { .. } => "bitwise",
            Self::Immediate { .. } | Self::Verdict(_) => "immediate",
            Self::Redir { .. } => "redir",
            Self::Nat { .. } => "nat",
            Self::Counter { .. } => "counter",
            Self::XtTarget { .. } => "target",
            Self::XtMatch { .. } => "match",
            Self::Other(name) => name,
        }
    }

    /// Writes the expression as an element of `NFTA_RULE_EXPRESSIONS`, attribute for
    /// attribute as nft does.
    pub(super) fn encode(&self, w: &mut Writer<'_>) {
        let elem = w.nest(LIST_ELEM);
        w.string(EXPR_NAME, self.name());
        let data = w.nest(EXPR_DATA);
        match self {
            Self::Meta { key, dreg } => {
                w.u32(META_KEY, *key);
                w.u32(META_DREG, *dreg);
            }
            Self::Cmp { sreg, op, data } => {
                w.u32(CMP_SREG, *sreg);
                w.u32(CMP_OP, op.code());
                let value = w.nest(CMP_DATA);
                w.bytes(DATA_VALUE, data);
                w.end(value);
            }
            Self::Payload {
                base,
                offset,
                len,
                dreg,
            } => {
                w.u32(PAYLOAD_DREG, *dreg);
                w.u32(PAYLOAD_BASE, *base);
                w.u32(PAYLOAD_OFFSET, *offset);
                w.u32(PAYLOAD_LEN, *len);
            }
            Self::Bitwise {
                sreg,
                dreg,
                mask,
                xor,
            } => {
                w.u32(BITWISE_SREG, *sreg);
                w.u32(BITWISE_DREG, *dreg);
                w.u32(
                    BITWISE_LEN,
                    u32::try_from(mask.len()).expect("a register-sized mask"),
                );
                let value = w.nest(BITWISE_MASK);
                w.bytes(DATA_VALUE, mask);
                w.end(value);
                let value = w.nest(BITWISE_XOR);
                w.bytes(DATA_VALUE, xor);
                w.end(value);
            }
            Self::Immediate { dreg, data } => {
                w.u32(IMMEDIATE_DREG, *dreg);
                let outer = w.nest(IMMEDIATE_DATA);
                w.bytes(DATA_VALUE, data);
                w.end(outer);
            }
            Self::Verdict(verdict) => {
                w.u32(IMMEDIATE_DREG, REG_VERDICT);
                let outer = w.nest(IMMEDIATE_DATA);
                let inner = w.nest(DATA_VERDICT);
                w.u32(VERDICT_CODE, verdict.code().cast_unsigned());
                if let Verdict::Jump(chain) | Verdict::Goto(chain) = verdict {
                    w.string(VERDICT_CHAIN, chain);
                }
                w.end(inner);
                w.end(outer);
            }
            Self::Redir {
                proto_min,
                proto_max,
            } => {
                if let Some(reg) = proto_min {
                    w.u32(REDIR_PROTO_MIN, *reg);
                }
                if let Some(reg) = proto_max {
                    w.u32(REDIR_PROTO_MAX, *reg);
                }
            }
            Self::Nat {
                kind,
                family,
                addr_min,
                proto_min,
            } => {
                w.u32(NAT_TYPE, *kind);
                for (attr, value) in [
                    (NAT_FAMILY, family),
                    (NAT_ADDR_MIN, addr_min),
                    (NAT_PROTO_MIN, proto_min),
                ] {
                    if let Some(value) = value {
                        w.u32(attr, *value);
                    }
                }
            }
            // nft sends a fresh counter with no attributes; the kernel starts it at 0.
            Self::Counter { packets, bytes } => {
                if (*packets, *bytes) != (0, 0) {
                    w.u64(COUNTER_BYTES, *bytes);
                    w.u64(COUNTER_PACKETS, *packets);
                }
            }
            Self::XtTarget { name, rev, info } | Self::XtMatch { name, rev, info } => {
                w.string(XT_NAME, name);
                w.u32(XT_REV, *rev);
                w.bytes(XT_INFO, info);
            }
            Self::Other(_) => {}
        }
        w.end(data);
        w.end(elem);
    }

    /// Reads the expressions of `NFTA_RULE_EXPRESSIONS`.
    pub(super) fn decode_list(list: &[u8]) -> Result<Vec<Self>, CaptureError> {
        Attrs::new(list)
            .filter_map(|attr| match attr {
                Ok((LIST_ELEM, elem)) => Some(Self::decode(elem)),
                Ok(_) => None,
                Err(err) => Some(Err(err)),
            })
            .collect()
    }

    /// Reads one expression: its name and data attributes.
    fn decode(elem: &[u8]) -> Result<Self, CaptureError> {
        let (mut name, mut data) = (String::new(), &[][..]);
        for attr in Attrs::new(elem) {
            match attr? {
                (EXPR_NAME, value) => name = attr::string(value),
                (EXPR_DATA, value) => data = value,
                _ => {}
            }
        }
        let fields = Fields::read(data)?;
        let reg = |kind| fields.u32(kind).map(|v| v.unwrap_or(0));
        Ok(match name.as_str() {
            "meta" => match fields.u32(META_DREG)? {
                Some(dreg) => Self::Meta {
                    key: reg(META_KEY)?,
                    dreg,
                },
                // A meta *set* (`meta mark set …`), not a load.
                None => Self::Other(name),
            },
            "cmp" => Self::Cmp {
                sreg: reg(CMP_SREG)?,
                op: CmpOp::from_code(reg(CMP_OP)?),
                data: fields.data_value(CMP_DATA)?,
            },
            "payload" => match fields.u32(PAYLOAD_DREG)? {
                Some(dreg) => Self::Payload {
                    base: reg(PAYLOAD_BASE)?,
                    offset: reg(PAYLOAD_OFFSET)?,
                    len: reg(PAYLOAD_LEN)?,
                    dreg,
                },
                // A payload *write* (mangling), not a load.
                None => Self::Other(name),
            },
            // Shifts and other operations than mask-and-xor are shown by name.
            "bitwise" if fields.u32(BITWISE_OP)?.unwrap_or(0) != 0 => Self::Other(name),
            "bitwise" => Self::Bitwise {
                sreg: reg(BITWISE_SREG)?,
                dreg: reg(BITWISE_DREG)?,
                mask: fields.data_value(BITWISE_MASK)?,
                xor: fields.data_value(BITWISE_XOR)?,
            },
            "immediate" => match reg(IMMEDIATE_DREG)? {
                REG_VERDICT => Self::Verdict(fields.verdict(IMMEDIATE_DATA)?),
                dreg => Self::Immediate {
                    dreg,
                    data: fields.data_value(IMMEDIATE_DATA)?,
                },
            },
            "redir" => Self::Redir {
                proto_min: fields.u32(REDIR_PROTO_MIN)?,
                proto_max: fields.u32(REDIR_PROTO_MAX)?,
            },
            "nat" => Self::Nat {
                kind: reg(NAT_TYPE)?,
                family: fields.u32(NAT_FAMILY)?,
                addr_min: fields.u32(NAT_ADDR_MIN)?,
                proto_min: fields.u32(NAT_PROTO_MIN)?,
            },
            "counter" => Self::Counter {
                packets: fields.u64(COUNTER_PACKETS)?,
                bytes: fields.u64(COUNTER_BYTES)?,
            },
            "target" => Self::XtTarget {
                name: fields.string(XT_NAME),
                rev: reg(XT_REV)?,
                info: fields.get(XT_INFO).to_vec(),
            },
            "match" => Self::XtMatch {
                name: fields.string(XT_NAME),
                rev: reg(XT_REV)?,
                info: fields.get(XT_INFO).to_vec(),
            },
            _ => Self::Other(name),
        })
    }
}

// === impl CmpOp ===

impl CmpOp {
    fn code(self) -> u32 {
        match self {
            Self::Eq => 0,
            Self::Neq => 1,
            Self::Other(code) => code,
        }
    }

    fn from_code(code: u32) -> Self {
        match code {
            0 => Self::Eq,
            1 => Self::Neq,
            code => Self::Other(code),
        }
    }
}

// === impl Verdict ===

impl Verdict {
    fn code(&self) -> i32 {
        match self {
            Self::Accept => NF_ACCEPT,
            Self::Drop => NF_DROP,
            Self::Return => NFT_RETURN,
            Self::Jump(_) => NFT_JUMP,
            Self::Goto(_) => NFT_GOTO,
            Self::Other(code) => *code,
        }
    }
}

/// The attributes of an expression's data, by type.
struct Fields<'a>(Vec<(u16, &'a [u8])>);

impl<'a> Fields<'a> {
    fn read(data: &'a [u8]) -> Result<Self, CaptureError> {
        Attrs::new(data).collect::<Result<_, _>>().map(Self)
    }

    fn get(&self, kind: u16) -> &'a [u8] {
        self.0
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(&[][..], |(_, v)| v)
    }

    fn u32(&self, kind: u16) -> Result<Option<u32>, CaptureError> {
        self.0
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| attr::be_u32(v))
            .transpose()
    }

    fn u64(&self, kind: u16) -> Result<u64, CaptureError> {
        match self.get(kind) {
            [] => Ok(0),
            value => attr::be_u64(value),
        }
    }

    fn string(&self, kind: u16) -> String {
        attr::string(self.get(kind))
    }

    /// The `NFTA_DATA_VALUE` inside the nested attribute `kind`.
    fn data_value(&self, kind: u16) -> Result<Vec<u8>, CaptureError> {
        let nested = Fields::read(self.get(kind))?;
        Ok(nested.get(DATA_VALUE).to_vec())
    }

    /// The `NFTA_DATA_VERDICT` inside the nested attribute `kind`.
    fn verdict(&self, kind: u16) -> Result<Verdict, CaptureError> {
        let data = Fields::read(self.get(kind))?;
        let verdict = Fields::read(data.get(DATA_VERDICT))?;
        let code = verdict
            .u32(VERDICT_CODE)?
            .ok_or_else(|| attr::malformed("a verdict without a code"))?
            .cast_signed();
        let chain = verdict.string(VERDICT_CHAIN);
        Ok(match code {
            NF_ACCEPT => Verdict::Accept,
            NF_DROP => Verdict::Drop,
            NFT_RETURN => Verdict::Return,
            NFT_JUMP => Verdict::Jump(chain),
            NFT_GOTO => Verdict::Goto(chain),
            code => Verdict::Other(code),
        })
    }
}

#[cfg(test)]
mod tests;
