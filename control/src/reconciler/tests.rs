use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A readiness endpoint answering every request with `status_line`.
async fn readiness(status_line: &'static str) -> SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = socket.accept().await {
            let mut request = [0u8; 512];
            let _ = stream.read(&mut request).await;
            let _ = stream
                .write_all(format!("{status_line}\r\ncontent-length: 0\r\n\r\n").as_bytes())
                .await;
        }
    });
    addr
}

#[tokio::test]
async fn a_sidecar_is_ready_when_its_probe_says_200_not_when_it_accepts() {
    let ready = readiness("HTTP/1.1 200 OK").await;
    let starting = readiness("HTTP/1.1 503 Service Unavailable").await;
    assert!(answers_ready(ready).await);
    assert!(!answers_ready(starting).await);
    assert!(accepts(starting).await, "a listening proxy still accepts");
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    assert!(!answers_ready(closed_addr).await);
}
