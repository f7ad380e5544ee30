//! Connections, for both listeners: the accept loop and the limits every connection lives under.
//!
//! - At most `max_connections` at once: a permit is taken *before* `accept()`, so the rest wait
//!   in the kernel's backlog and file descriptors stay bounded.
//! - An accept error (EMFILE and friends) backs off, doubling up to a second, instead of
//!   spinning.
//! - HTTP/1.1 headers must arrive within `header_read_timeout` of their first byte (see
//!   [`super::head_read`]); header blocks are bounded.
//! - Idle means no request in progress for `idle_timeout`, whatever bytes move: HTTP/2 PINGs
//!   and SETTINGS keep nothing open. An idle connection is asked to close gracefully, and cut if
//!   it has not within another `idle_timeout` (a client that will not read is not waited on).

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ConnLimits;

/// Accepts connections while permits last and hands each to `handle` on `tracker`, until
/// `shutdown`.
pub(crate) async fn accept_loop<F, Fut>(
    listener: TcpListener,
    max_connections: usize,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    handle: F,
) where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    const FIRST_BACKOFF: Duration = Duration::from_millis(5);
    let permits = Arc::new(Semaphore::new(max_connections));
    let mut backoff = FIRST_BACKOFF;
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore never closed"),
            _ = shutdown.cancelled() => break,
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.cancelled() => break,
        };
        match accepted {
            Ok((tcp, _peer)) => {
                backoff = FIRST_BACKOFF;
                let _ = tcp.set_nodelay(true);
                let conn = handle(tcp);
                tracker.spawn(async move {
                    conn.await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed; backing off");
                crate::metrics::accept_failed();
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Whether a connection has a request in progress, and since when it has had none.
pub(crate) struct Idle {
    epoch: Instant,
    in_progress: AtomicUsize,
    /// Milliseconds since `epoch` when the last request ended (or the connection opened).
    last_ms: AtomicU64,
    /// Milliseconds since `epoch`, plus 1, when the first byte of a request head not yet begun
    /// arrived; 0 when none is arriving ([`super::head_read`]).
    head_ms: AtomicU64,
}

/// Held while a request is in progress.
pub(crate) struct Busy(Arc<Idle>);

impl Idle {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            in_progress: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            head_ms: AtomicU64::new(0),
        })
    }

    /// A request starts; it ends when the guard drops.
    pub(crate) fn begin(self: &Arc<Self>) -> Busy {
        self.in_progress.fetch_add(1, Ordering::AcqRel);
        self.head_done();
        Busy(self.clone())
    }

    /// Bytes arrived: with no request in progress they are a head's, and start its clock.
    pub(crate) fn head_bytes(&self) {
        if self.in_progress.load(Ordering::Acquire) == 0
            && self.head_ms.load(Ordering::Acquire) == 0
        {
            let now = self.epoch.elapsed().as_millis() as u64;
            self.head_ms.store(now + 1, Ordering::Release);
        }
    }

    /// No head is arriving (a request began, or the connection speaks HTTP/2).
    pub(crate) fn head_done(&self) {
        self.head_ms.store(0, Ordering::Release);
    }

    /// Whether a request head has been arriving for longer than `limit`.
    fn head_overdue(&self, limit: Duration) -> bool {
        let since = self.head_ms.load(Ordering::Acquire);
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        since != 0
            && self.in_progress.load(Ordering::Acquire) == 0
            && now.saturating_sub(since) >= limit.as_millis() as u64
    }

    /// How long no request has been in progress (zero while one is).
    fn idle_for(&self) -> Duration {
        if self.in_progress.load(Ordering::Acquire) > 0 {
            return Duration::ZERO;
        }
        let now = self.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Acquire)))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let idle = &self.0;
        idle.last_ms
            .store(idle.epoch.elapsed().as_millis() as u64, Ordering::Release);
        idle.in_progress.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Which protocols a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocols {
    /// HTTP/1.1 and HTTP/2 (ALPN decides): the ecosystem listener.
    Both,
    /// HTTP/1.1 only: the ops listener.
    Http1,
}

/// Serves one connection until it ends, idles out, or `shutdown` fires. Requests must hold an
/// [`Idle::begin`] guard of `idle` while in progress.
pub(crate) async fn drive<I, S, B>(
    io: I,
    service: S,
    idle: Arc<Idle>,
    limits: &ConnLimits,
    protocols: Protocols,
    shutdown: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Counted from a head's first byte instead (`super::head_read`): hyper's would also
        // cut a kept-alive connection waiting for its next request.
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(limits.max_header_bytes as u32)
        .keep_alive_interval(Some(limits.idle_timeout / 2))
        .keep_alive_timeout(Duration::from_secs(20));
    if protocols == Protocols::Http1 {
        builder = builder.http1_only();
    }
    let io = super::head_read::Clocked::new(io, idle.clone());
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut tick = tokio::time::interval(
        (limits.idle_timeout.min(limits.header_read_timeout) / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(1)),
    );
    let mut closing: Option<Instant> = None;
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            _ = shutdown.cancelled(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now());
            }
            _ = tick.tick() => match closing {
                _ if idle.head_overdue(limits.header_read_timeout) => break,
                None if idle.idle_for() >= limits.idle_timeout => {
                    conn.as_mut().graceful_shutdown();
                    closing = Some(Instant::now());
                }
                Some(since) if since.elapsed() >= limits.idle_timeout => break,
                _ => {}
            },
        }
    }
}
