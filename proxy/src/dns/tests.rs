use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

async fn read_tcp_message(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let len = stream.read_u16().await?;
    let mut message = vec![0u8; usize::from(len)];
    stream.read_exact(&mut message).await?;
    Ok(message)
}

async fn write_tcp_message(stream: &mut TcpStream, message: &[u8]) -> io::Result<()> {
    stream
        .write_u16(u16::try_from(message.len()).unwrap())
        .await?;
    stream.write_all(message).await
}

/// A UDP socket and a TCP listener on one free loopback port. Another test may
/// hold the TCP side of the port the UDP bind drew: then draw again.
async fn udp_and_tcp() -> (UdpSocket, TcpListener) {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        match TcpListener::bind(udp.local_addr().unwrap()).await {
            Ok(tcp) => return (udp, tcp),
            Err(err) if err.kind() == io::ErrorKind::AddrInUse => continue,
            Err(err) => panic!("{err}"),
        }
    }
}

/// A resolver stand-in that answers every query with the query's bytes reversed.
async fn echo_resolver() -> SocketAddr {
    let (udp, tcp) = udp_and_tcp().await;
    let addr = udp.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            let (len, from) = udp.recv_from(&mut buf).await.unwrap();
            let mut answer = buf[..len].to_vec();
            answer.reverse();
            udp.send_to(&answer, from).await.unwrap();
        }
    });
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = tcp.accept().await.unwrap();
            tokio::spawn(async move {
                let mut query = read_tcp_message(&mut stream).await.unwrap();
                query.reverse();
                write_tcp_message(&mut stream, &query).await.unwrap();
            });
        }
    });
    addr
}

#[tokio::test]
async fn queries_are_relayed_over_udp_and_tcp() {
    let upstream = echo_resolver().await;
    // A port free for both protocols, released for the proxy to bind.
    let bind = udp_and_tcp().await.0.local_addr().unwrap();
    tokio::spawn(serve(bind, upstream));
    tokio::time::sleep(Duration::from_millis(50)).await;

    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(b"abc", bind).await.unwrap();
    let mut buf = [0u8; 16];
    let (len, _) = tokio::time::timeout(Duration::from_secs(2), client.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..len], b"cba");

    let mut stream = TcpStream::connect(bind).await.unwrap();
    write_tcp_message(&mut stream, b"xyz1").await.unwrap();
    assert_eq!(read_tcp_message(&mut stream).await.unwrap(), b"1zyx");
}

#[test]
fn the_resolver_defaults_to_dockers() {
    assert_eq!(system_resolver().port(), 53);
}
