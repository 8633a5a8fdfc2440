//! The connection under HTTP, with a record of what happened on it.
//!
//! hyper reports a failed exchange as "connection closed before message completed"
//! whether the server sent nothing (curl exit 52), reset the connection (56) or
//! spoke something that is not HTTP (1). curl tells these apart from what it saw on
//! the socket, so we watch the socket too: [`Tracked`] counts bytes read, keeps the
//! first few, and remembers the first I/O error in each direction.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// How many leading bytes of the reply are kept, to recognise `HTTP/`.
const KEPT_BYTES: usize = 8;

/// A plain or TLS connection.
#[derive(Debug)]
pub(crate) enum Stream {
    /// Plain TCP (http://).
    Plain(TcpStream),
    /// TLS over TCP (https://).
    Tls(Box<TlsStream<TcpStream>>),
}

/// A stream that records its traffic into a shared [`IoState`].
#[derive(Debug)]
pub(crate) struct Tracked {
    inner: Stream,
    state: Arc<IoState>,
}

/// What the transfer saw on its connection.
#[derive(Debug, Default)]
pub(crate) struct IoState {
    read: AtomicU64,
    first_bytes: Mutex<Vec<u8>>,
    failure: Mutex<Option<IoFailure>>,
}

/// The first I/O error of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IoFailure {
    /// Whether it happened while sending or receiving.
    pub(crate) direction: Direction,
    /// The error worded as curl words socket errors ("Connection reset by peer").
    pub(crate) message: String,
}

/// Which way the bytes were going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Sending the request.
    Send,
    /// Receiving the response.
    Recv,
}

impl Tracked {
    /// Wraps a stream; the returned state is shared with the caller.
    pub(crate) fn new(inner: Stream) -> (Self, Arc<IoState>) {
        let state = Arc::new(IoState::default());
        let tracked = Self {
            inner,
            state: Arc::clone(&state),
        };
        (tracked, state)
    }
}

impl IoState {
    /// Bytes received so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Whether what was received so far looks like an HTTP/1 status line.
    pub(crate) fn looks_like_http(&self) -> bool {
        let first = self
            .first_bytes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let prefix = b"HTTP/";
        let n = first.len().min(prefix.len());
        first[..n].eq_ignore_ascii_case(&prefix[..n])
    }

    /// The first I/O error, if any.
    pub(crate) fn failure(&self) -> Option<IoFailure> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record_read(&self, data: &[u8]) {
        self.read.fetch_add(data.len() as u64, Ordering::Relaxed);
        let mut first = self
            .first_bytes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let room = KEPT_BYTES.saturating_sub(first.len());
        first.extend_from_slice(&data[..room.min(data.len())]);
    }

    fn record_error(&self, direction: Direction, error: &io::Error) {
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        if failure.is_none() {
            *failure = Some(IoFailure {
                direction,
                message: socket_error_message(error),
            });
        }
    }
}

/// Words a socket error as curl does, without Rust's "(os error N)" suffix.
pub(crate) fn socket_error_message(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionReset => "Connection reset by peer".to_owned(),
        io::ErrorKind::BrokenPipe => "Broken pipe".to_owned(),
        io::ErrorKind::ConnectionAborted => "Software caused connection abort".to_owned(),
        io::ErrorKind::ConnectionRefused => "Connection refused".to_owned(),
        _ => match error.get_ref() {
            Some(inner) => inner.to_string(),
            None => error.to_string(),
        },
    }
}

// === impl Stream ===

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

// === impl Tracked ===

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = ready!(Pin::new(&mut this.inner).poll_read(cx, buf));
        match &result {
            Ok(()) => this.state.record_read(&buf.filled()[before..]),
            Err(e) => this.state.record_error(Direction::Recv, e),
        }
        Poll::Ready(result)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = ready!(Pin::new(&mut this.inner).poll_write(cx, buf));
        this.note_write(result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs));
        this.note_write(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = ready!(Pin::new(&mut this.inner).poll_flush(cx));
        this.note_write(result)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl Tracked {
    fn note_write<T>(&self, result: io::Result<T>) -> Poll<io::Result<T>> {
        if let Err(e) = &result {
            self.state.record_error(Direction::Send, e);
        }
        Poll::Ready(result)
    }
}
