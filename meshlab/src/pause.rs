//! `meshlab run pause`: the pod sandbox, which holds the pod's network namespace.
//!
//! Kubernetes' kube-proxy makes a Service port reach the pod's target port
//! (`httpbin:8000` → the pod's 8080). A lab has no kube-proxy, and a Service name
//! resolves to the pods' own addresses, so a client without a sidecar dials the
//! Service port on the pod. A pod with a sidecar takes that port on its inbound
//! listener; for a pod without one, the sandbox forwards each such port to its
//! target on loopback — kube-proxy's original "userspace" mode, inside the pod.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};

/// One `--forward SERVICE_PORT:TARGET_PORT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forward {
    /// The port clients dial.
    pub port: u16,
    /// The port the app listens on.
    pub target: u16,
}

impl std::str::FromStr for Forward {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parse = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{p:?} is not a port (expected PORT:TARGET_PORT)"))
        };
        let (port, target) = text
            .split_once(':')
            .ok_or_else(|| format!("{text:?}: expected PORT:TARGET_PORT"))?;
        Ok(Forward {
            port: parse(port)?,
            target: parse(target)?,
        })
    }
}

/// Forwards each port until the sandbox is stopped.
pub async fn run(forwards: Vec<Forward>) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for forward in forwards {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, forward.port)))
            .await
            .with_context(|| format!("cannot listen on port {} to forward it", forward.port))?;
        tracing::info!(
            port = forward.port,
            target = forward.target,
            "forwarding a Service port"
        );
        tasks.spawn(serve(listener, forward.target));
    }
    if tasks.is_empty() {
        std::future::pending::<()>().await;
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn serve(listener: TcpListener, target: u16) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let _ = client.set_nodelay(true);
            match TcpStream::connect((Ipv4Addr::LOCALHOST, target)).await {
                Ok(mut app) => {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut app).await;
                }
                Err(err) => tracing::debug!(target, %err, "the app does not accept"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[test]
    fn forwards_parse_as_port_colon_target() {
        assert_eq!(
            "8000:8080".parse(),
            Ok(Forward {
                port: 8000,
                target: 8080
            })
        );
        assert!("8000".parse::<Forward>().is_err());
        assert!("0:80".parse::<Forward>().is_err());
        assert!("80:http".parse::<Forward>().is_err());
    }

    #[tokio::test]
    async fn a_service_port_reaches_the_target_port() {
        let app = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let target = app.local_addr().unwrap().port();
        let front = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = front.local_addr().unwrap().port();
        tokio::spawn(serve(front, target));
        tokio::spawn(async move {
            let (mut conn, _) = app.accept().await.unwrap();
            let mut buf = [0; 4];
            conn.read_exact(&mut buf).await.unwrap();
            conn.write_all(&buf.map(|b| b.to_ascii_uppercase()))
                .await
                .unwrap();
        });
        let mut client = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap();
        client.write_all(b"ping").await.unwrap();
        let mut answer = [0; 4];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"PING");
    }
}
