//! [`install`], [`list`] and [`original_destination`] against the real kernel, in a
//! network namespace of the test's own: no Docker needed, but root (to make the
//! namespace and program it). Without that privilege the test says "skipped" and
//! passes; `meshlab/tests/capture.rs` covers the same in real pods.

use std::net::SocketAddr;

use nix::sched::{CloneFlags, unshare};
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// Brings `lo` up in this thread's new namespace (`ip link set lo up`, as one
/// RTM_NEWLINK message).
fn loopback_up() {
    const RTM_NEWLINK: u16 = 16;
    const LO_INDEX: i32 = 1;
    const IFF_UP: u32 = 1;
    let fd = socket::socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .expect("a route socket");
    let mut message = Vec::new();
    message.extend_from_slice(&32u32.to_ne_bytes());
    message.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
    message.extend_from_slice(&0x5u16.to_ne_bytes()); // NLM_F_REQUEST | NLM_F_ACK
    message.extend_from_slice(&[0; 8]); // sequence number, port id
    message.extend_from_slice(&[0; 4]); // family, padding, device type
    message.extend_from_slice(&LO_INDEX.to_ne_bytes());
    message.extend_from_slice(&IFF_UP.to_ne_bytes()); // flags
    message.extend_from_slice(&IFF_UP.to_ne_bytes()); // which flags change
    socket::sendto(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &message,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )
    .expect("sent");
    let mut answer = [0u8; 256];
    socket::recv(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &mut answer,
        MsgFlags::empty(),
    )
    .expect("an answer");
    let error = i32::from_ne_bytes(answer[16..20].try_into().unwrap());
    assert_eq!(error, 0, "ip link set lo up");
}

#[test]
fn capture_redirects_and_the_listener_learns_the_original_destination() {
    // A thread of our own: unsharing moves only the calling thread.
    std::thread::spawn(|| {
        if let Err(errno) = unshare(CloneFlags::CLONE_NEWNET) {
            eprintln!("skipped: cannot make a network namespace ({errno}; needs root)");
            return;
        }
        loopback_up();
        in_a_fresh_namespace();
    })
    .join()
    .expect("the test thread");
}

fn in_a_fresh_namespace() {
    // Loopback included: the app's own 127.0.0.2 goes to the outbound listener,
    // which lets one process play app and sidecar (it runs as root, not 1337).
    let config = CaptureConfig {
        include_outbound_ranges: "127.0.0.0/8".parse().unwrap(),
        capture_dns: false,
        ..CaptureConfig::default()
    };
    let installed = install(&config).expect("installed");
    assert_eq!((installed.chains, installed.rules), (6, 18));
    // Again: replaced, not doubled.
    install(&config).expect("installed again");
    let lines = list().expect("listed");
    let headings = lines
        .iter()
        .filter(|l| l.text.starts_with("# table"))
        .count();
    assert_eq!(headings, 1, "{lines:#?}");
    assert_eq!(
        lines.iter().filter(|l| l.text.starts_with("-A ")).count(),
        installed.rules
    );
    assert!(lines.iter().all(|l| l.ours));
    assert!(
        lines
            .iter()
            .any(|l| l.comment.as_deref() == Some("meshlab: outbound tcp -> 15001")),
        "{lines:#?}"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("a runtime");
    let (original, seen_by_client) = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:15001")
            .await
            .expect("the outbound listener");
        let target: SocketAddr = "127.0.0.2:9999".parse().unwrap();
        let mut client = tokio::net::TcpStream::connect(target)
            .await
            .expect("captured: something listens");
        let (mut server, _) = listener.accept().await.expect("accepted");
        server.write_all(b"hi").await.expect("written");
        let mut reply = [0; 2];
        client.read_exact(&mut reply).await.expect("read");
        assert_eq!(&reply, b"hi");
        (
            original_destination(&server).expect("the original destination"),
            client.peer_addr().expect("the client's peer"),
        )
    });
    assert_eq!(original.to_string(), "127.0.0.2:9999");
    assert_eq!(seen_by_client.to_string(), "127.0.0.2:9999");

    // A batch is all or nothing, and an error names the message that failed.
    let rule = |what: &str, exprs: &[expr::Expr]| netlink::Message {
        what: what.to_owned(),
        bytes: netlink::new_rule(rules::TABLE, "OUTPUT", exprs, "meshlab: test"),
    };
    let broken = expr::Expr::Meta {
        key: expr::meta::SKUID,
        dreg: 1000, // no such register
    };
    let err = netlink::Socket::open()
        .expect("a socket")
        .commit(vec![
            rule("adding a good rule", &[]),
            rule("adding a broken rule", &[broken]),
        ])
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("netfilter rejected adding a broken rule"),
        "{err}"
    );
    let texts = |lines: &[RuleLine]| lines.iter().map(|l| l.text.clone()).collect::<Vec<_>>();
    assert_eq!(
        texts(&list().expect("listed")),
        texts(&lines),
        "nothing changed"
    );

    let counted = list()
        .expect("listed")
        .into_iter()
        .find(|l| l.comment.as_deref() == Some("meshlab: outbound tcp -> 15001"))
        .and_then(|l| l.counters)
        .expect("the redirect rule's counter");
    assert_eq!(counted.packets, 1, "one connection, counted once by nat");
}
