//! Bodies in flight through the proxy, and the moment an exchange is over.
//!
//! Envoy writes an access log line and records its metrics when a stream ends,
//! not when the response headers leave: `%BYTES_SENT%` and `%DURATION%` cover the
//! whole body, and a client that hangs up halfway turns into flag `DC`. The
//! response body type here therefore carries the exchange's bookkeeping and hands
//! it back exactly once — when the last byte went out, when the upstream broke off,
//! when the route timeout fired mid-body, or when hyper dropped the body because
//! the client left. It also returns the upstream connection to its pool only in
//! the first case, since a connection whose response was not read to the end
//! cannot carry another request.
//!
//! Request bodies are either buffered (so retries and mirrors can replay them, as
//! Envoy buffers them) or streamed when they are too large or of unknown length.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::Sleep;

use crate::stats::Counter;

/// The error type of bodies sent downstream.
pub(crate) type BoxError = Box<dyn Error + Send + Sync>;

/// A request body on its way upstream.
#[derive(Debug)]
pub(crate) enum UpBody {
    /// Buffered, so it can be sent again.
    Full(Option<Bytes>),
    /// Passed on as it arrives; `received` counts its bytes for the access log.
    Stream {
        /// The client's body.
        body: Incoming,
        /// Bytes read so far.
        received: Arc<Counter>,
    },
}

/// A response body on its way downstream.
pub(crate) struct ProxyBody {
    inner: Inner,
    sent: u64,
    deadline: Option<Pin<Box<Sleep>>>,
    on_end: Option<Box<dyn OnEnd>>,
}

enum Inner {
    Full(Option<Bytes>),
    Upstream(Incoming),
}

/// How a response body ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyEnd {
    /// Every byte went out.
    Complete,
    /// The upstream failed mid-body (`UR`).
    UpstreamReset,
    /// The route timeout fired mid-body (`UT`).
    Timeout,
    /// The client went away first (`DC`).
    DownstreamClosed,
}

/// What to do when a response body ends.
pub(crate) trait OnEnd: Send {
    /// Called exactly once, with the body bytes that went out.
    fn on_end(self: Box<Self>, end: BodyEnd, bytes_sent: u64);
}

/// The route timeout fired while the response body was streaming.
#[derive(Debug)]
struct UpstreamTimeout;

// === impl UpBody ===

impl Body for UpBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Self::Full(bytes) => Poll::Ready(
                bytes
                    .take()
                    .filter(|bytes| !bytes.is_empty())
                    .map(|bytes| Ok(Frame::data(bytes))),
            ),
            Self::Stream { body, received } => {
                let poll = Pin::new(body).poll_frame(cx);
                if let Poll::Ready(Some(Ok(frame))) = &poll
                    && let Some(data) = frame.data_ref()
                {
                    received.add(data.len() as u64);
                }
                poll
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            Self::Stream { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Self::Stream { body, .. } => body.size_hint(),
        }
    }
}

// === impl ProxyBody ===

impl ProxyBody {
    /// A body known in full, e.g. a local reply.
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        Self {
            inner: Inner::Full(Some(bytes.into())),
            sent: 0,
            deadline: None,
            on_end: None,
        }
    }

    /// The upstream's body, passed on as it arrives.
    pub(crate) fn upstream(body: Incoming) -> Self {
        Self {
            inner: Inner::Upstream(body),
            sent: 0,
            deadline: None,
            on_end: None,
        }
    }

    /// Calls `on_end` when the body ends.
    pub(crate) fn on_end(mut self, on_end: Box<dyn OnEnd>) -> Self {
        self.on_end = Some(on_end);
        self
    }

    /// Fails the body if it is not over by `deadline`.
    pub(crate) fn deadline(mut self, deadline: Option<tokio::time::Instant>) -> Self {
        self.deadline = deadline.map(|at| Box::pin(tokio::time::sleep_until(at)));
        self
    }

    fn end(&mut self, end: BodyEnd) {
        if let Some(on_end) = self.on_end.take() {
            on_end.on_end(end, self.sent);
        }
    }

    fn inner_done(&self) -> bool {
        match &self.inner {
            Inner::Full(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            Inner::Upstream(body) => body.is_end_stream(),
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            this.deadline = None;
            this.end(BodyEnd::Timeout);
            return Poll::Ready(Some(Err(Box::new(UpstreamTimeout))));
        }
        let poll = match &mut this.inner {
            Inner::Full(bytes) => Poll::Ready(
                bytes
                    .take()
                    .filter(|bytes| !bytes.is_empty())
                    .map(|bytes| Ok(Frame::data(bytes))),
            ),
            Inner::Upstream(body) => match Pin::new(body).poll_frame(cx) {
                Poll::Ready(Some(Err(err))) => {
                    this.end(BodyEnd::UpstreamReset);
                    return Poll::Ready(Some(Err(Box::new(err))));
                }
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        };
        match &poll {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                }
            }
            Poll::Ready(None) => this.end(BodyEnd::Complete),
            _ => {}
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner_done()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Inner::Upstream(body) => body.size_hint(),
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        // hyper stops polling once `is_end_stream` says so, and drops the body when
        // the client goes away: tell the two apart here.
        let end = if self.inner_done() {
            BodyEnd::Complete
        } else {
            BodyEnd::DownstreamClosed
        };
        self.end(end);
    }
}

impl fmt::Debug for ProxyBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyBody")
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

// === impl UpstreamTimeout ===

impl fmt::Display for UpstreamTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("upstream request timeout")
    }
}

impl Error for UpstreamTimeout {}
