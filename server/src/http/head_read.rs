//! The HTTP/1.1 header-read time-out, counted from the first byte of a request head.
//!
//! hyper's own starts as soon as it waits for a head, so on a kept-alive connection the wait
//! for the *next* request would be cut at `header_read_timeout` instead of at the idle
//! time-out. hyper's is off ([`super::conn::drive`]); instead [`Clocked`] wraps the connection,
//! starts the clock of its [`super::conn::Idle`] when bytes arrive while no request is in
//! progress, and the request's start stops it. `drive` cuts a connection whose head has been
//! arriving for longer than `header_read_timeout`; a connection on which nothing arrives is
//! closed at the idle time-out. An HTTP/2 connection (its preface first) has no such clock: its
//! streams' headers come in frames, and PINGs or SETTINGS are not a request head.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::conn::Idle;

/// The start of the HTTP/2 connection preface, as much of it as tells it from HTTP/1.1.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// A connection whose reads start the header-read clock of `idle`.
pub(crate) struct Clocked<I> {
    io: I,
    idle: Arc<Idle>,
    /// The connection's first bytes, until there are enough to tell HTTP/2's preface.
    first: Vec<u8>,
    /// The connection speaks HTTP/2: no clock.
    http2: bool,
}

// === impl Clocked ===

impl<I> Clocked<I> {
    /// Wraps `io`; requests on it hold guards of `idle`.
    pub(crate) fn new(io: I, idle: Arc<Idle>) -> Self {
        Self {
            io,
            idle,
            first: Vec::with_capacity(H2_PREFACE.len()),
            http2: false,
        }
    }

    fn arrived(&mut self, bytes: &[u8]) {
        if self.http2 || bytes.is_empty() {
            return;
        }
        if self.first.len() < H2_PREFACE.len() {
            let take = bytes.len().min(H2_PREFACE.len() - self.first.len());
            self.first.extend_from_slice(&bytes[..take]);
            if self.first == H2_PREFACE {
                self.http2 = true;
                self.idle.head_done();
                return;
            }
        }
        self.idle.head_bytes();
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Clocked<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.arrived(&buf.filled()[before..]);
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Clocked<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
