//! What is known about a transfer when it ends, successful or not: the facts behind
//! `-w` and the error messages.
//!
//! The transfer fills this record as it goes, so that a transfer cut short by a
//! timeout or a reset still reports how far it got (`%{http_code}` is `000` when no
//! response arrived, and the timeout message counts the bytes received).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderMap, Version};

/// The record of one URL's transfer, redirects included.
#[derive(Debug, Default)]
pub(crate) struct TransferInfo {
    /// The URL as given on the command line.
    pub(crate) url: String,
    /// The URL's index on the command line, from 0.
    pub(crate) url_index: usize,
    /// The last URL requested.
    pub(crate) url_effective: String,
    /// The method of the last request.
    pub(crate) method: String,
    /// `http` or `https`, of the last request.
    pub(crate) scheme: &'static str,
    /// Status of the last response; 0 when none arrived.
    pub(crate) http_code: u16,
    /// HTTP version of the last response.
    pub(crate) http_version: Option<Version>,
    /// Headers of the last response.
    pub(crate) headers: HeaderMap,
    /// The address connected to.
    pub(crate) remote: Option<SocketAddr>,
    /// Our end of the connection.
    pub(crate) local: Option<SocketAddr>,
    /// Body bytes received (last response).
    pub(crate) size_download: u64,
    /// The last response's announced body length.
    pub(crate) content_length: Option<u64>,
    /// Header bytes received, all responses.
    pub(crate) size_header: u64,
    /// Request header bytes sent, all requests.
    pub(crate) size_request: u64,
    /// Request body bytes sent, all requests.
    pub(crate) size_upload: u64,
    /// Connections opened.
    pub(crate) num_connects: u32,
    /// Redirects followed.
    pub(crate) num_redirects: u32,
    /// Where a redirect would have led, when not following it.
    pub(crate) redirect_url: Option<String>,
    /// The `-o` file, if any.
    pub(crate) output_file: Option<PathBuf>,
    /// Timings since the start of the transfer.
    pub(crate) times: Times,
    /// Where the transfer was when it ended, for timeout messages.
    pub(crate) phase: Phase,
    /// The exit code, once known.
    pub(crate) exit_code: i32,
    /// The error message, once known; empty on success.
    pub(crate) error_message: String,
}

/// curl's timings, each measured from the start of the transfer.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Times {
    /// Name resolved.
    pub(crate) namelookup: Duration,
    /// TCP connection established.
    pub(crate) connect: Duration,
    /// TLS handshake done (zero without TLS).
    pub(crate) appconnect: Duration,
    /// About to send the request.
    pub(crate) pretransfer: Duration,
    /// Response head received.
    pub(crate) starttransfer: Duration,
    /// Spent in redirects before the last request started.
    pub(crate) redirect: Duration,
    /// The whole transfer.
    pub(crate) total: Duration,
}

/// The step a transfer is in.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Looking the host up.
    #[default]
    Resolving,
    /// Opening the TCP connection.
    Connecting,
    /// In the TLS handshake.
    Handshaking,
    /// Exchanging HTTP messages.
    Transferring,
}
