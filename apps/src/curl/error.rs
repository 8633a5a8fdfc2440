//! Why a transfer failed, and the exit code curl reports for it.
//!
//! Scripts in the Istio tasks branch on curl's exit codes (`command terminated with
//! exit code 56` is how a learner sees a connection reset by a strict mTLS sidecar),
//! so every variant maps to the code real curl uses, and its message reads like
//! curl's: `curl: (N) <message>`. That wording is curl's, so these messages keep its
//! capitalisation instead of our usual lowercase.

use std::error::Error;
use std::fmt;

use crate::tls::TlsError;

/// A failed transfer, printed as `curl: (N) message`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CurlError {
    /// The scheme is not http or https (exit 1).
    #[error("Protocol \"{0}\" not supported")]
    UnsupportedProtocol(String),

    /// The server answered with bytes that are not HTTP/1 (exit 1).
    #[error("Received HTTP/0.9 when not allowed")]
    Http09,

    /// The URL could not be parsed (exit 3).
    #[error("URL rejected: {0}")]
    MalformedUrl(&'static str),

    /// The host name has no address (exit 6).
    #[error("Could not resolve host: {0}")]
    Resolve(String),

    /// No address of the host accepted the connection (exit 7).
    #[error("Failed to connect to {host} port {port} after {ms} ms: Couldn't connect to server")]
    Connect {
        /// The host as written in the URL.
        host: String,
        /// The port connected to.
        port: u16,
        /// Milliseconds since the transfer started.
        ms: u128,
    },

    /// The server's reply could not be parsed as HTTP (exit 8).
    #[error("Weird server reply")]
    WeirdReply,

    /// The body ended before its announced length (exit 18).
    #[error("transfer closed with {}", Remaining(*.0))]
    PartialFile(Option<u64>),

    /// `--fail` saw an HTTP error status (exit 22).
    #[error("The requested URL returned error: {0}")]
    HttpError(u16),

    /// The body or headers could not be written out (exit 23).
    #[error("Failure writing output to destination")]
    Write,

    /// Name resolution did not finish in time (exit 28).
    #[error("Resolving timed out after {0} milliseconds")]
    ResolveTimeout(u128),

    /// TCP connect did not finish within `--connect-timeout` or `--max-time` (exit 28).
    #[error("Failed to connect to {host} port {port} after {ms} ms: Timeout was reached")]
    ConnectTimeout {
        /// The host as written in the URL.
        host: String,
        /// The port connected to.
        port: u16,
        /// Milliseconds since the transfer started.
        ms: u128,
    },

    /// The TLS handshake did not finish in time (exit 28).
    #[error("SSL connection timeout")]
    TlsTimeout,

    /// `--max-time` expired after the connection was made (exit 28).
    #[error("Operation timed out after {ms} milliseconds with {}", Received { received: *.received, expected: *.expected })]
    OperationTimeout {
        /// Milliseconds since the transfer started.
        ms: u128,
        /// Body bytes received so far.
        received: u64,
        /// The announced body length, if any.
        expected: Option<u64>,
    },

    /// The TLS handshake failed for a reason other than the server's certificate
    /// (exit 35).
    #[error("{0}")]
    TlsConnect(String),

    /// A request part curl was given cannot be sent, such as an invalid method (exit 43).
    #[error("{0}")]
    BadArgument(String),

    /// Too many redirects with `-L` (exit 47).
    #[error("Maximum ({0}) redirects followed")]
    TooManyRedirects(u32),

    /// A `--resolve` entry could not be parsed (exit 49).
    #[error("Couldn't parse CURLOPT_RESOLVE entry '{0}'")]
    BadResolve(String),

    /// The server closed the connection without sending anything (exit 52).
    #[error("Empty reply from server")]
    EmptyReply,

    /// Writing the request to the socket failed (exit 55).
    #[error("Send failure: {0}")]
    Send(String),

    /// Reading from the socket failed, typically a reset (exit 56).
    #[error("Recv failure: {0}")]
    Recv(String),

    /// The client certificate or key given with `--cert`/`--key` is unusable (exit 58).
    #[error("could not load client certificate: {}", chain(.0))]
    ClientCert(#[source] TlsError),

    /// The server's certificate was not accepted (exit 60).
    #[error("{0}")]
    PeerVerification(String),

    /// The CA bundle could not be loaded (exit 77).
    #[error("error setting certificate file: {}", chain(.0))]
    CaCert(#[source] TlsError),

    /// An HTTP/2 stream ended abnormally, for example reset by the server (exit 92).
    #[error("HTTP/2 stream was not closed cleanly: {0}")]
    Http2Stream(String),
}

impl CurlError {
    /// The process exit code real curl uses for this failure.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Self::UnsupportedProtocol(_) | Self::Http09 => 1,
            Self::MalformedUrl(_) => 3,
            Self::Resolve(_) => 6,
            Self::Connect { .. } => 7,
            Self::WeirdReply => 8,
            Self::PartialFile(_) => 18,
            Self::HttpError(_) => 22,
            Self::Write => 23,
            Self::ResolveTimeout(_)
            | Self::ConnectTimeout { .. }
            | Self::TlsTimeout
            | Self::OperationTimeout { .. } => 28,
            Self::TlsConnect(_) => 35,
            Self::BadArgument(_) => 43,
            Self::TooManyRedirects(_) => 47,
            Self::BadResolve(_) => 49,
            Self::EmptyReply => 52,
            Self::Send(_) => 55,
            Self::Recv(_) => 56,
            Self::ClientCert(_) => 58,
            Self::PeerVerification(_) => 60,
            Self::CaCert(_) => 77,
            Self::Http2Stream(_) => 92,
        }
    }
}

/// An error and its sources, joined with ": ".
pub(crate) fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// Formats "N bytes remaining to read" the way curl words a short body.
struct Remaining(Option<u64>);

impl fmt::Display for Remaining {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n} bytes remaining to read"),
            None => f.write_str("outstanding read data remaining"),
        }
    }
}

/// Formats "M bytes received" or "M out of T bytes received".
struct Received {
    received: u64,
    expected: Option<u64>,
}

impl fmt::Display for Received {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.expected {
            Some(total) => write!(f, "{} out of {total} bytes received", self.received),
            None => write!(f, "{} bytes received", self.received),
        }
    }
}
