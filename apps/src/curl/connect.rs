//! From host name to a connected (and, for https, TLS-secured) stream.
//!
//! Names resolve through `--resolve` first, then `tokio::net::lookup_host`, which
//! works in meshlab's static binary and goes through the pod's DNS capture. Each
//! address is tried in turn, as curl does without happy eyeballs racing. Failures
//! become curl's exit codes here: 6 (resolve), 7 (connect), 35 (TLS), 60 (certificate).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConfig};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::Console;
use super::args::IpVersion;
use super::error::CurlError;
use super::info::{Phase, TransferInfo};
use super::stream::{Stream, socket_error_message};
use super::url::{Scheme, Url};
use super::x509;

/// `--resolve` entries: fixed addresses for `host:port` pairs.
#[derive(Debug, Default)]
pub(crate) struct Resolver {
    entries: Vec<ResolveEntry>,
    ip_version: Option<IpVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ResolveEntry {
    /// Lowercase host, or `*` for any.
    host: String,
    port: u16,
    addrs: Vec<IpAddr>,
}

/// A connection ready for HTTP.
#[derive(Debug)]
pub(crate) struct Connected {
    /// The stream, TLS included.
    pub(crate) stream: Stream,
    /// Whether ALPN chose HTTP/2.
    pub(crate) alpn_h2: bool,
}

impl Resolver {
    /// Parses `--resolve` entries: `[+]HOST:PORT:ADDR[,ADDR]...`, where HOST may be
    /// `*` and an IPv6 ADDR may be bracketed. `-HOST:PORT` (removal) is accepted and
    /// has nothing to remove.
    pub(crate) fn new(
        entries: &[String],
        ip_version: Option<IpVersion>,
    ) -> Result<Self, CurlError> {
        let mut parsed = Vec::new();
        for entry in entries {
            if entry.starts_with('-') {
                continue;
            }
            let bad = || CurlError::BadResolve(entry.clone());
            let text = entry.strip_prefix('+').unwrap_or(entry);
            let (host, rest) = text.split_once(':').ok_or_else(bad)?;
            let (port, addrs) = rest.split_once(':').ok_or_else(bad)?;
            let port = port.parse().map_err(|_| bad())?;
            let addrs = addrs
                .split(',')
                .map(|a| {
                    let a = a.trim();
                    let a = a
                        .strip_prefix('[')
                        .and_then(|a| a.strip_suffix(']'))
                        .unwrap_or(a);
                    a.parse::<IpAddr>().map_err(|_| bad())
                })
                .collect::<Result<Vec<_>, _>>()?;
            if host.is_empty() {
                return Err(bad());
            }
            parsed.push(ResolveEntry {
                host: host.to_ascii_lowercase(),
                port,
                addrs,
            });
        }
        Ok(Self {
            entries: parsed,
            ip_version,
        })
    }

    /// The `* Added ...` lines curl prints in verbose mode.
    pub(crate) fn describe(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| {
                let addrs: Vec<String> = e.addrs.iter().map(IpAddr::to_string).collect();
                format!(
                    "Added {}:{}:{} to DNS cache",
                    e.host,
                    e.port,
                    addrs.join(",")
                )
            })
            .collect()
    }

    /// The addresses for `host:port`, in the order to try them.
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, CurlError> {
        let addrs: Vec<SocketAddr> = if let Ok(ip) = host.parse::<IpAddr>() {
            vec![SocketAddr::new(ip, port)]
        } else if let Some(entry) = self.lookup_override(host, port) {
            entry
                .addrs
                .iter()
                .map(|ip| SocketAddr::new(*ip, port))
                .collect()
        } else {
            tokio::net::lookup_host((host, port))
                .await
                .map_err(|_| CurlError::Resolve(host.to_owned()))?
                .collect()
        };
        let addrs: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| match self.ip_version {
                Some(IpVersion::V4) => a.is_ipv4(),
                Some(IpVersion::V6) => a.is_ipv6(),
                None => true,
            })
            .collect();
        if addrs.is_empty() {
            return Err(CurlError::Resolve(host.to_owned()));
        }
        Ok(addrs)
    }

    fn lookup_override(&self, host: &str, port: u16) -> Option<&ResolveEntry> {
        let host = host.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|e| e.port == port && e.host == host)
            .or_else(|| {
                self.entries
                    .iter()
                    .find(|e| e.port == port && e.host == "*")
            })
    }
}

/// Resolves, connects and, for https, runs the TLS handshake.
///
/// Updates `info` as it goes (phase, addresses, timings) so that a timeout in the
/// middle can be reported precisely by the caller.
pub(crate) async fn connect(
    url: &Url,
    resolver: &Resolver,
    tls: Option<Arc<ClientConfig>>,
    console: &mut Console<'_>,
    info: &mut TransferInfo,
    start: Instant,
) -> Result<Connected, CurlError> {
    info.phase = Phase::Resolving;
    let addrs = resolver.resolve(&url.host, url.port).await?;
    info.times.namelookup = start.elapsed();
    if console.verbose {
        console.info(format_args!("Host {}:{} was resolved.", url.host, url.port));
        let family = |v6: bool| {
            let list: Vec<String> = addrs
                .iter()
                .filter(|a| a.is_ipv6() == v6)
                .map(|a| a.ip().to_string())
                .collect();
            if list.is_empty() {
                "(none)".to_owned()
            } else {
                list.join(", ")
            }
        };
        console.info(format_args!("IPv6: {}", family(true)));
        console.info(format_args!("IPv4: {}", family(false)));
    }

    info.phase = Phase::Connecting;
    let mut tcp = None;
    for addr in &addrs {
        console.info(format_args!("  Trying {addr}..."));
        info.remote = Some(*addr);
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                tcp = Some(stream);
                break;
            }
            Err(e) => console.info(format_args!(
                "connect to {} port {} failed: {}",
                addr.ip(),
                addr.port(),
                socket_error_message(&e)
            )),
        }
    }
    let Some(tcp) = tcp else {
        return Err(CurlError::Connect {
            host: url.host.clone(),
            port: url.port,
            ms: start.elapsed().as_millis(),
        });
    };
    // Small requests should leave at once, as curl's do.
    tcp.set_nodelay(true).ok();
    info.local = tcp.local_addr().ok();
    info.num_connects += 1;
    info.times.connect = start.elapsed();
    if let Some(remote) = info.remote {
        console.info(format_args!(
            "Connected to {} ({}) port {}",
            url.host,
            remote.ip(),
            remote.port()
        ));
    }

    let (Scheme::Https, Some(config)) = (url.scheme, tls) else {
        return Ok(Connected {
            stream: Stream::Plain(tcp),
            alpn_h2: false,
        });
    };
    info.phase = Phase::Handshaking;
    let offers: Vec<String> = config
        .alpn_protocols
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    console.info(format_args!("ALPN: curl offers {}", offers.join(",")));
    let name = ServerName::try_from(url.host.clone())
        .map_err(|_| CurlError::MalformedUrl("Bad hostname"))?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| handshake_error(&e, url))?;
    info.times.appconnect = start.elapsed();
    let session = tls.get_ref().1;
    let alpn_h2 = session.alpn_protocol() == Some(b"h2");
    if console.verbose {
        let version = match session.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
            other => format!("{other:?}"),
        };
        let suite = session
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default();
        console.info(format_args!("SSL connection using {version} / {suite}"));
        match session.alpn_protocol() {
            Some(p) => console.info(format_args!(
                "ALPN: server accepted {}",
                String::from_utf8_lossy(p)
            )),
            None => console.info("ALPN: server did not agree on a protocol. Uses default."),
        }
        if let Some(leaf) = session.peer_certificates().and_then(|c| c.first()) {
            console.info("Server certificate:");
            for line in x509::describe(leaf) {
                console.info(format_args!(" {line}"));
            }
        }
    }
    Ok(Connected {
        stream: Stream::Tls(Box::new(tls)),
        alpn_h2,
    })
}

/// Maps a failed TLS handshake to curl's code: 60 for a rejected certificate, else 35.
fn handshake_error(error: &std::io::Error, url: &Url) -> CurlError {
    let tls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls_error {
        Some(rustls::Error::InvalidCertificate(e)) => {
            CurlError::PeerVerification(certificate_problem(e, &url.host))
        }
        Some(other) => CurlError::TlsConnect(format!("TLS connect error: {other}")),
        None => match error.kind() {
            std::io::ErrorKind::UnexpectedEof => CurlError::TlsConnect(format!(
                "TLS connect error: connection closed during the handshake with {}:{}",
                url.host, url.port
            )),
            _ => CurlError::TlsConnect(format!("Recv failure: {}", socket_error_message(error))),
        },
    }
}

/// curl's wording (OpenSSL's, really) for a certificate it does not accept.
fn certificate_problem(error: &CertificateError, host: &str) -> String {
    let problem = match error {
        CertificateError::UnknownIssuer => "unable to get local issuer certificate",
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate has expired"
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate is not yet valid"
        }
        CertificateError::BadSignature => "certificate signature failure",
        CertificateError::Revoked => "certificate revoked",
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            return format!(
                "SSL: no alternative certificate subject name matches target host name '{host}'"
            );
        }
        other => {
            return format!(
                "SSL certificate problem: {}",
                rustls::Error::InvalidCertificate(other.clone())
            );
        }
    };
    format!("SSL certificate problem: {problem}")
}

#[cfg(test)]
mod tests;
