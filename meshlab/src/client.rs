//! The CLI's client for the control plane's HTTP API.
//!
//! The API listens on the host's loopback at the port `meshlab up` published
//! (`--dashboard-port`, 20001 by default); the CLI finds that port on the lab's
//! control container, so every command works for any `--name` without flags. Every
//! request carries the lab's API token (`crate::token`).

use std::net::SocketAddr;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use meshlab_control::api::Failure;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;

/// A lab's API.
#[derive(Clone, Debug)]
pub struct Client {
    addr: SocketAddr,
    token: String,
}

/// An answer the API refused, with its formatted errors.
#[derive(Debug)]
pub struct Refused {
    /// The HTTP status.
    pub status: StatusCode,
    /// The API's account.
    pub failure: Failure,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.failure.errors.join("\n"))?;
        if let Some(hint) = &self.failure.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Refused {}

impl Client {
    /// The API at `addr`, with the lab's token.
    pub fn new(addr: SocketAddr, token: String) -> Self {
        Client { addr, token }
    }

    /// The dashboard's address, with the token the page trades for a cookie.
    pub fn dashboard_url(&self) -> String {
        format!(
            "http://localhost:{}/?token={}",
            self.addr.port(),
            self.token
        )
    }

    /// `GET path` decoded from JSON.
    pub async fn get<T: DeserializeOwned>(&self, path_and_query: &str) -> anyhow::Result<T> {
        self.send(Method::GET, path_and_query, None::<&()>).await
    }

    /// `POST path` with a JSON body, decoded from JSON.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.send(Method::POST, path, Some(body)).await
    }

    /// Whether the API answers its health check.
    pub async fn healthy(&self) -> bool {
        self.raw(Method::GET, "/healthz", Bytes::new())
            .await
            .is_ok_and(|(status, _)| status == StatusCode::OK)
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> anyhow::Result<T> {
        let body = match body {
            Some(body) => Bytes::from(serde_json::to_vec(body)?),
            None => Bytes::new(),
        };
        let (status, bytes) = self.raw(method, path, body).await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .with_context(|| format!("the control plane sent an unexpected answer to {path}"));
        }
        match serde_json::from_slice::<Failure>(&bytes) {
            Ok(failure) => Err(Refused { status, failure }.into()),
            Err(_) => bail!(
                "the control plane answered {status} to {path}: {}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }

    /// `POST path` with a JSON body, calling `on_line` with each line of the answer
    /// as it streams in (NDJSON).
    pub async fn post_lines<B: Serialize>(
        &self,
        path: &str,
        body: &B,
        mut on_line: impl FnMut(&str) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let response = self
            .request(Method::POST, path, Bytes::from(serde_json::to_vec(body)?))
            .await?;
        let status = response.status();
        let mut body = response.into_body();
        if !status.is_success() {
            let bytes = body.collect().await?.to_bytes();
            return match serde_json::from_slice::<Failure>(&bytes) {
                Ok(failure) => Err(Refused { status, failure }.into()),
                Err(_) => bail!(
                    "the control plane answered {status} to {path}: {}",
                    String::from_utf8_lossy(&bytes)
                ),
            };
        }
        let mut pending = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.context("the control plane closed the stream")?;
            if let Ok(data) = frame.into_data() {
                pending.extend_from_slice(&data);
                while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    on_line(String::from_utf8_lossy(&line).trim_end())?;
                }
            }
        }
        if !pending.is_empty() {
            on_line(String::from_utf8_lossy(&pending).trim_end())?;
        }
        Ok(())
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let response = self.request(method, path, body).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> anyhow::Result<http::Response<hyper::body::Incoming>> {
        let stream = TcpStream::connect(self.addr).await.with_context(|| {
            format!(
                "cannot reach the lab's control plane at {} (hint: is the lab up? run `meshlab up`)",
                self.addr
            )
        })?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.addr.to_string())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .body(Full::new(body))?;
        sender
            .send_request(request)
            .await
            .context("the control plane closed the connection")
    }
}
