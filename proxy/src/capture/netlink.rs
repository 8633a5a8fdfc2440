//! Talking to nf_tables over netlink, as `nft` does, without `nft`: messages encoded
//! here, sent on a `NETLINK_NETFILTER` socket, answers and errors read back.
//!
//! Changes go in one *batch* (`NFNL_MSG_BATCH_BEGIN` … `NFNL_MSG_BATCH_END`), which
//! the kernel applies as a transaction: all of it or, on any error, none of it. The
//! batch that installs capture first adds meshlab's table, then deletes it, then
//! builds it afresh — nft's idiom for "replace", which works whether or not the
//! table exists, so installing twice leaves exactly one copy and a pod never runs
//! with half its rules. Every message asks for an acknowledgement (`NLM_F_ACK`), so
//! the answer is complete when every message is acknowledged; an error names the
//! message it belongs to.
//!
//! Reading uses *dumps* (`NLM_F_DUMP`) of tables, chains and rules, of every family
//! and every owner; a dump the ruleset changed under (`NLM_F_DUMP_INTR`) is read
//! again.
//!
//! Both need `CAP_NET_ADMIN` in the network namespace; without it the kernel
//! answers `EPERM` to the first message, which becomes
//! [`CaptureError::PermissionDenied`].

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, sockopt,
};
use nix::sys::time::TimeVal;

use super::CaptureError;
use super::attr::{self, Attrs, Writer};
use super::expr::Expr;
use super::rules::{self, Chain, Table};

/// How long the kernel gets to answer, in seconds (it answers at once in practice:
/// netlink requests to the kernel are handled while they are sent).
pub(super) const ANSWER_TIMEOUT_SECS: i64 = 5;

/// The receive buffer; the kernel never sends a datagram over 32 KiB to netlink
/// readers.
const RECEIVE_BUFFER: usize = 64 * 1024;

// netlink (linux/netlink.h).
const HEADER: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;

// nfnetlink (linux/netfilter/nfnetlink.h).
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFPROTO_UNSPEC: u8 = 0;
/// The `ip` family.
pub(super) const NFPROTO_IPV4: u8 = 2;

// nf_tables messages and attributes (linux/netfilter/nf_tables.h).
const NEWTABLE: u16 = 0;
const GETTABLE: u16 = 1;
const DELTABLE: u16 = 2;
const NEWCHAIN: u16 = 3;
const GETCHAIN: u16 = 4;
const NEWRULE: u16 = 6;
const GETRULE: u16 = 7;
const TABLE_NAME: u16 = 1;
const TABLE_FLAGS: u16 = 2;
const CHAIN_TABLE: u16 = 1;
const CHAIN_NAME: u16 = 3;
const CHAIN_HOOK: u16 = 4;
const CHAIN_POLICY: u16 = 5;
const CHAIN_TYPE: u16 = 7;
const HOOK_HOOKNUM: u16 = 1;
const HOOK_PRIORITY: u16 = 2;
const RULE_TABLE: u16 = 1;
const RULE_CHAIN: u16 = 2;
const RULE_EXPRESSIONS: u16 = 4;
const RULE_USERDATA: u16 = 7;
/// A rule's comment in its user data, as libnftnl lays it out (type, length,
/// NUL-terminated text), so `nft list ruleset` shows it too.
const UDATA_RULE_COMMENT: u8 = 0;
/// The longest comment nft accepts, terminating NUL included.
const COMMENT_MAX: usize = 128;

/// `NF_ACCEPT`, a base chain's policy.
pub(super) const POLICY_ACCEPT: u32 = 1;

/// One message of a batch, before it is numbered, and what it does (for errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Message {
    /// What the message does, e.g. `creating chain ISTIO_OUTPUT`.
    pub(super) what: String,
    /// The message; its sequence number is set when it is sent.
    pub(super) bytes: Vec<u8>,
}

/// Everything nf_tables holds in the namespace, in the kernel's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Ruleset {
    /// The tables.
    pub(super) tables: Vec<TableInfo>,
    /// The chains of every table.
    pub(super) chains: Vec<ChainInfo>,
    /// The rules of every chain.
    pub(super) rules: Vec<RuleInfo>,
}

/// A table as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TableInfo {
    /// Its family (`NFPROTO_*`).
    pub(super) family: u8,
    /// Its name.
    pub(super) name: String,
}

/// A chain as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ChainInfo {
    /// Its table's family.
    pub(super) family: u8,
    /// Its table.
    pub(super) table: String,
    /// Its name.
    pub(super) name: String,
    /// Its hook, if it is a base chain.
    pub(super) base: Option<BaseChain>,
}

/// Where a base chain is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BaseChain {
    /// `filter`, `nat` or `route`.
    pub(super) kind: String,
    /// The hook's number.
    pub(super) hook: u32,
    /// Its priority: lower runs first.
    pub(super) priority: i32,
    /// `NF_ACCEPT` or `NF_DROP`.
    pub(super) policy: u32,
}

/// A rule as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RuleInfo {
    /// Its table's family.
    pub(super) family: u8,
    /// Its table.
    pub(super) table: String,
    /// Its chain.
    pub(super) chain: String,
    /// Its expressions.
    pub(super) exprs: Vec<Expr>,
    /// Its comment, if it has one.
    pub(super) comment: Option<String>,
}

// === messages ===

/// The batch that replaces meshlab's table with `table`: add (so that the delete
/// cannot fail), delete, add again, then the chains, then the rules.
pub(super) fn replace_table(table: &Table) -> Vec<Message> {
    let name = rules::TABLE;
    let mut messages = vec![
        Message {
            what: format!("creating table ip {name}"),
            bytes: new_table(name),
        },
        Message {
            what: format!("deleting the previous table ip {name}"),
            bytes: nft(DELTABLE, 0, NFPROTO_IPV4, |w| w.string(TABLE_NAME, name)),
        },
        Message {
            what: format!("creating table ip {name}"),
            bytes: new_table(name),
        },
    ];
    messages.extend(table.chains.iter().map(|chain| Message {
        what: format!("creating chain {}", chain.name),
        bytes: new_chain(name, chain),
    }));
    for chain in &table.chains {
        for (i, rule) in chain.rules.iter().enumerate() {
            messages.push(Message {
                what: format!(
                    "adding rule {} to chain {} ({})",
                    i + 1,
                    chain.name,
                    rule.comment
                ),
                bytes: new_rule(name, chain.name, &rule.exprs(), &rule.comment),
            });
        }
    }
    messages
}

fn new_table(name: &str) -> Vec<u8> {
    nft(NEWTABLE, NLM_F_CREATE, NFPROTO_IPV4, |w| {
        w.string(TABLE_NAME, name);
        w.u32(TABLE_FLAGS, 0);
    })
}

fn new_chain(table: &str, chain: &Chain) -> Vec<u8> {
    nft(NEWCHAIN, NLM_F_CREATE, NFPROTO_IPV4, |w| {
        w.string(CHAIN_TABLE, table);
        w.string(CHAIN_NAME, chain.name);
        if let Some(hook) = chain.hook {
            let nest = w.nest(CHAIN_HOOK);
            w.u32(HOOK_HOOKNUM, hook.number());
            w.u32(HOOK_PRIORITY, rules::PRIORITY.cast_unsigned());
            w.end(nest);
            w.u32(CHAIN_POLICY, POLICY_ACCEPT);
            w.string(CHAIN_TYPE, "nat");
        }
    })
}

/// A message appending a rule to `chain`, with its comment in the user data.
pub(super) fn new_rule(table: &str, chain: &str, exprs: &[Expr], comment: &str) -> Vec<u8> {
    nft(NEWRULE, NLM_F_CREATE | NLM_F_APPEND, NFPROTO_IPV4, |w| {
        w.string(RULE_TABLE, table);
        w.string(RULE_CHAIN, chain);
        let list = w.nest(RULE_EXPRESSIONS);
        for expr in exprs {
            expr.encode(w);
        }
        w.end(list);
        w.bytes(RULE_USERDATA, &comment_udata(comment));
    })
}

/// A comment as libnftnl's user data: type, length, text and NUL, the text cut to
/// nft's limit at a character boundary.
fn comment_udata(comment: &str) -> Vec<u8> {
    let mut end = comment.len().min(COMMENT_MAX - 1);
    while !comment.is_char_boundary(end) {
        end -= 1;
    }
    let text = &comment.as_bytes()[..end];
    let mut udata = vec![
        UDATA_RULE_COMMENT,
        u8::try_from(text.len() + 1).expect("a comment under 128 bytes"),
    ];
    udata.extend_from_slice(text);
    udata.push(0);
    udata
}

/// The comment in a rule's user data, if any.
fn comment_from_udata(mut udata: &[u8]) -> Option<String> {
    while let [kind, len, rest @ ..] = udata {
        let value = rest.get(..usize::from(*len))?;
        if *kind == UDATA_RULE_COMMENT {
            return Some(attr::string(value));
        }
        udata = &rest[value.len()..];
    }
    None
}

/// An nf_tables message of type `msg`, acknowledged, with attributes from `body`.
fn nft(msg: u16, flags: u16, family: u8, body: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
    message(
        (NFNL_SUBSYS_NFTABLES << 8) | msg,
        NLM_F_REQUEST | NLM_F_ACK | flags,
        family,
        0,
        body,
    )
}

/// A netlink message with nfnetlink's header (`struct nfgenmsg`); sequence number 0.
fn message(
    kind: u16,
    flags: u16,
    family: u8,
    res_id: u16,
    body: impl FnOnce(&mut Writer<'_>),
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set below
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // sequence number
    buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
    buf.push(family);
    buf.push(0); // NFNETLINK_V0
    buf.extend_from_slice(&res_id.to_be_bytes());
    body(&mut Writer::new(&mut buf));
    let len = u32::try_from(buf.len()).expect("a netlink message under 4 GiB");
    buf[..4].copy_from_slice(&len.to_ne_bytes());
    buf
}

fn set_seq(message: &mut [u8], seq: u32) {
    message[8..12].copy_from_slice(&seq.to_ne_bytes());
}

// === impl Socket ===

/// A `NETLINK_NETFILTER` socket.
#[derive(Debug)]
pub(super) struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl Socket {
    /// Opens a socket that gives up on answers after [`ANSWER_TIMEOUT_SECS`].
    pub(super) fn open() -> Result<Self, CaptureError> {
        let fd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )
        .map_err(os_error)?;
        socket::setsockopt(
            &fd,
            sockopt::ReceiveTimeout,
            &TimeVal::new(ANSWER_TIMEOUT_SECS, 0),
        )
        .map_err(os_error)?;
        Ok(Self { fd, seq: 0 })
    }

    /// Applies `messages` as one transaction and waits until the kernel has
    /// acknowledged each. On error nothing has changed, and the error names the
    /// first message that failed.
    pub(super) fn commit(&mut self, messages: Vec<Message>) -> Result<(), CaptureError> {
        let begin = self.next_seq();
        let mut batch = message(
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            NFPROTO_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
            |_| {},
        );
        set_seq(&mut batch, begin);
        let mut pending = Vec::with_capacity(messages.len());
        for Message { what, mut bytes } in messages {
            let seq = self.next_seq();
            set_seq(&mut bytes, seq);
            batch.extend_from_slice(&bytes);
            pending.push((seq, what, None));
        }
        let mut end = message(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            NFPROTO_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
            |_| {},
        );
        set_seq(&mut end, self.next_seq());
        batch.extend_from_slice(&end);
        self.send(&batch)?;

        let mut buf = vec![0; RECEIVE_BUFFER];
        let mut unanswered = pending.len();
        while unanswered > 0 {
            let len = self.receive(&mut buf)?;
            for received in Received::all(&buf[..len]) {
                let received = received?;
                if received.kind != NLMSG_ERROR {
                    continue;
                }
                let errno = ack_errno(received.payload)?;
                if received.seq == begin && errno != 0 {
                    // The batch as a whole was refused (no CAP_NET_ADMIN).
                    return Err(rejected("the change".to_owned(), errno));
                }
                if let Some((_, _, answer)) = pending
                    .iter_mut()
                    .find(|(seq, _, answer)| *seq == received.seq && answer.is_none())
                {
                    *answer = Some(errno);
                    unanswered -= 1;
                }
            }
        }
        match pending
            .into_iter()
            .find(|(_, _, answer)| answer.is_some_and(|errno| errno != 0))
        {
            Some((_, what, Some(errno))) => Err(rejected(what, errno)),
            _ => Ok(()),
        }
    }

    /// Every table, chain and rule in the namespace.
    pub(super) fn ruleset(&mut self) -> Result<Ruleset, CaptureError> {
        let tables = self
            .dump(GETTABLE)?
            .into_iter()
            .map(|(family, attrs)| {
                let mut name = String::new();
                for attr in Attrs::new(&attrs) {
                    if let (TABLE_NAME, value) = attr? {
                        name = attr::string(value);
                    }
                }
                Ok(TableInfo { family, name })
            })
            .collect::<Result<_, CaptureError>>()?;
        let chains = self
            .dump(GETCHAIN)?
            .into_iter()
            .map(|(family, attrs)| chain_info(family, &attrs))
            .collect::<Result<_, _>>()?;
        let rules = self
            .dump(GETRULE)?
            .into_iter()
            .map(|(family, attrs)| rule_info(family, &attrs))
            .collect::<Result<_, _>>()?;
        Ok(Ruleset {
            tables,
            chains,
            rules,
        })
    }

    /// Dumps objects of one kind (`GET*` message `msg`) of every family: each as its
    /// family and attributes.
    fn dump(&mut self, msg: u16) -> Result<Vec<(u8, Vec<u8>)>, CaptureError> {
        const ATTEMPTS: usize = 3;
        let mut buf = vec![0; RECEIVE_BUFFER];
        for _ in 0..ATTEMPTS {
            let seq = self.next_seq();
            let mut request = message(
                (NFNL_SUBSYS_NFTABLES << 8) | msg,
                NLM_F_REQUEST | NLM_F_DUMP,
                NFPROTO_UNSPEC,
                0,
                |_| {},
            );
            set_seq(&mut request, seq);
            self.send(&request)?;
            let (mut replies, mut interrupted) = (Vec::new(), false);
            'receive: loop {
                let len = self.receive(&mut buf)?;
                for received in Received::all(&buf[..len]) {
                    let received = received?;
                    if received.seq != seq {
                        continue;
                    }
                    interrupted |= received.flags & NLM_F_DUMP_INTR != 0;
                    match received.kind {
                        NLMSG_DONE | NLMSG_ERROR => {
                            match ack_errno(received.payload).unwrap_or(0) {
                                0 => break 'receive,
                                errno => {
                                    return Err(rejected("reading the ruleset".to_owned(), errno));
                                }
                            }
                        }
                        _ => {
                            let (family, attrs) = received
                                .payload
                                .split_first_chunk::<4>()
                                .ok_or_else(|| attr::malformed("a reply without its header"))?;
                            replies.push((family[0], attrs.to_vec()));
                        }
                    }
                }
            }
            if !interrupted {
                return Ok(replies);
            }
        }
        Err(attr::malformed(
            "the ruleset kept changing while it was read",
        ))
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send(&self, message: &[u8]) -> Result<(), CaptureError> {
        let kernel = NetlinkAddr::new(0, 0);
        let sent = socket::sendto(self.fd.as_raw_fd(), message, &kernel, MsgFlags::empty())
            .map_err(os_error)?;
        if sent == message.len() {
            Ok(())
        } else {
            Err(CaptureError::Netlink(io::Error::new(
                io::ErrorKind::WriteZero,
                "the kernel took part of a message",
            )))
        }
    }

    fn receive(&self, buf: &mut [u8]) -> Result<usize, CaptureError> {
        match socket::recv(self.fd.as_raw_fd(), buf, MsgFlags::empty()) {
            Ok(len) => Ok(len),
            Err(Errno::EAGAIN) => Err(CaptureError::NoAnswer {
                seconds: ANSWER_TIMEOUT_SECS,
            }),
            Err(errno) => Err(os_error(errno)),
        }
    }
}

fn chain_info(family: u8, attrs: &[u8]) -> Result<ChainInfo, CaptureError> {
    let (mut table, mut name, mut kind) = (String::new(), String::new(), String::new());
    let (mut hook, mut policy) = (None, POLICY_ACCEPT);
    for attr in Attrs::new(attrs) {
        match attr? {
            (CHAIN_TABLE, value) => table = attr::string(value),
            (CHAIN_NAME, value) => name = attr::string(value),
            (CHAIN_TYPE, value) => kind = attr::string(value),
            (CHAIN_POLICY, value) => policy = attr::be_u32(value)?,
            (CHAIN_HOOK, value) => {
                let (mut number, mut priority) = (0, 0);
                for attr in Attrs::new(value) {
                    match attr? {
                        (HOOK_HOOKNUM, value) => number = attr::be_u32(value)?,
                        (HOOK_PRIORITY, value) => priority = attr::be_u32(value)?.cast_signed(),
                        _ => {}
                    }
                }
                hook = Some((number, priority));
            }
            _ => {}
        }
    }
    Ok(ChainInfo {
        family,
        table,
        name,
        base: hook.map(|(hook, priority)| BaseChain {
            kind,
            hook,
            priority,
            policy,
        }),
    })
}

fn rule_info(family: u8, attrs: &[u8]) -> Result<RuleInfo, CaptureError> {
    let mut rule = RuleInfo {
        family,
        table: String::new(),
        chain: String::new(),
        exprs: Vec::new(),
        comment: None,
    };
    for attr in Attrs::new(attrs) {
        match attr? {
            (RULE_TABLE, value) => rule.table = attr::string(value),
            (RULE_CHAIN, value) => rule.chain = attr::string(value),
            (RULE_EXPRESSIONS, value) => rule.exprs = Expr::decode_list(value)?,
            (RULE_USERDATA, value) => rule.comment = comment_from_udata(value),
            _ => {}
        }
    }
    Ok(rule)
}

// === impl Received ===

/// One message read from the socket.
#[derive(Debug)]
struct Received<'a> {
    kind: u16,
    flags: u16,
    seq: u32,
    payload: &'a [u8],
}

impl<'a> Received<'a> {
    /// The messages in one datagram.
    fn all(mut buf: &'a [u8]) -> impl Iterator<Item = Result<Self, CaptureError>> {
        std::iter::from_fn(move || {
            let header = buf.get(..HEADER)?;
            let word =
                |at: usize| u32::from_ne_bytes(header[at..at + 4].try_into().unwrap_or_default());
            let half = |at: usize| u16::from_ne_bytes([header[at], header[at + 1]]);
            let len = usize::try_from(word(0)).unwrap_or(usize::MAX);
            if len < HEADER || len > buf.len() {
                buf = &[];
                return Some(Err(attr::malformed("a message runs past its datagram")));
            }
            let received = Received {
                kind: half(4),
                flags: half(6),
                seq: word(8),
                payload: &buf[HEADER..len],
            };
            buf = buf.get(attr::align(len)..).unwrap_or_default();
            Some(Ok(received))
        })
    }
}

/// The error number in an acknowledgement (`struct nlmsgerr`) or a dump's end: 0
/// for success.
fn ack_errno(payload: &[u8]) -> Result<i32, CaptureError> {
    payload
        .first_chunk::<4>()
        .map(|error| -i32::from_ne_bytes(*error))
        .ok_or_else(|| attr::malformed("an acknowledgement without its error"))
}

/// The error for an errno the kernel answered `what` with.
fn rejected(what: String, errno: i32) -> CaptureError {
    match Errno::from_raw(errno) {
        Errno::EPERM | Errno::EACCES => CaptureError::PermissionDenied,
        errno => CaptureError::Rejected {
            what,
            hint: match errno {
                Errno::ENOENT | Errno::EOPNOTSUPP | Errno::EAFNOSUPPORT => {
                    " (hint: the kernel needs nf_tables with nat and redirect support)"
                }
                _ => "",
            },
            source: io::Error::from(errno),
        },
    }
}

/// The error for a failed socket call.
fn os_error(errno: Errno) -> CaptureError {
    match errno {
        Errno::EPERM | Errno::EACCES => CaptureError::PermissionDenied,
        errno => CaptureError::Netlink(io::Error::from(errno)),
    }
}

#[cfg(test)]
mod tests;
