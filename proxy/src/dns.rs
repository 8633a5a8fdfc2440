//! The sidecar's DNS proxy on 15053.
//!
//! Traffic capture sends the app's DNS (UDP and TCP port 53) here, as Istio's DNS
//! capture does. The proxy runs as uid 1337, whose queries capture leaves alone, so
//! it forwards each query to the pod's own resolver — Docker's embedded DNS at
//! 127.0.0.11 — and relays the answer. Names therefore resolve exactly as they would
//! without a sidecar; answering ServiceEntry hosts itself (Istio's
//! `ISTIO_META_DNS_AUTO_ALLOCATE`) is left for later.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// How long the upstream resolver gets per query.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest DNS message over UDP we relay (EDNS sizes included).
const MAX_UDP: usize = 4096;

/// The first `nameserver` of `/etc/resolv.conf`, else Docker's 127.0.0.11.
pub fn system_resolver() -> SocketAddr {
    let server = std::fs::read_to_string("/etc/resolv.conf")
        .ok()
        .and_then(|text| {
            text.lines()
                .filter_map(|l| l.trim().strip_prefix("nameserver"))
                .find_map(|ip| ip.trim().parse::<IpAddr>().ok())
        })
        .unwrap_or(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11)));
    SocketAddr::new(server, 53)
}

/// Serves DNS on `bind` (UDP and TCP), forwarding to `upstream`, until dropped.
pub async fn serve(bind: SocketAddr, upstream: SocketAddr) -> io::Result<()> {
    let udp = UdpSocket::bind(bind).await?;
    let tcp = TcpListener::bind(bind).await?;
    tracing::info!(%bind, %upstream, "dns proxy listening");
    tokio::select! {
        result = serve_udp(udp, upstream) => result,
        result = serve_tcp(tcp, upstream) => result,
    }
}

async fn serve_udp(socket: UdpSocket, upstream: SocketAddr) -> io::Result<()> {
    let socket = std::sync::Arc::new(socket);
    let mut buf = vec![0u8; MAX_UDP];
    loop {
        let (len, client) = socket.recv_from(&mut buf).await?;
        let query = buf[..len].to_vec();
        let socket = socket.clone();
        tokio::spawn(async move {
            match forward_udp(&query, upstream).await {
                Ok(answer) => {
                    let _ = socket.send_to(&answer, client).await;
                }
                Err(err) => tracing::debug!(%err, %client, "dns query not answered"),
            }
        });
    }
}

async fn forward_udp(query: &[u8], upstream: SocketAddr) -> io::Result<Vec<u8>> {
    let local: SocketAddr = if upstream.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        "[::]:0".parse().unwrap_or(upstream)
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(query).await?;
    let mut answer = vec![0u8; MAX_UDP];
    let len = tokio::time::timeout(UPSTREAM_TIMEOUT, socket.recv(&mut answer))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the resolver did not answer"))??;
    answer.truncate(len);
    Ok(answer)
}

async fn serve_tcp(listener: TcpListener, upstream: SocketAddr) -> io::Result<()> {
    loop {
        let (mut client, peer) = listener.accept().await?;
        tokio::spawn(async move {
            let relayed = async {
                let mut server = TcpStream::connect(upstream).await?;
                tokio::io::copy_bidirectional(&mut client, &mut server).await
            };
            match tokio::time::timeout(UPSTREAM_TIMEOUT * 2, relayed).await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => tracing::debug!(%err, %peer, "dns over tcp failed"),
                Err(_) => tracing::debug!(%peer, "dns over tcp timed out"),
            }
        });
    }
}

#[cfg(test)]
mod tests;
