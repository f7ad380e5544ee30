//! The inbound side: the accept loop, limits and time-outs, and the routes.
//!
//! Every connection takes a permit from a semaphore *before* `accept()`, so at most
//! `max_connections` are held; the rest wait in the kernel's backlog. Each connection then has a
//! TLS handshake time-out, hyper's header-read time-out, an idle time-out (no bytes moving), and
//! each request a time-out of its own. Bodies are bounded by `max_body_bytes`, headers by
//! `max_header_bytes`. On shutdown, listeners stop, each connection is asked to finish
//! gracefully, and the drain is bounded by `shutdown_grace_ms`.
//!
//! - [`find`]: `POST /find-requests`.
//! - [`view`]: `GET /view-data/{assetGuid}`: the UMA flow and the signed view data token.
//! - [`pat_refresh`]: `POST /pat-refresh`.
//! - [`ops`]: the ops listener: `/health/live`, `/health/ready`, `/metrics`, `/jwks.json`.
//! - [`respond`]: errors to statuses and problem bodies.

pub mod find;
pub mod ops;
pub mod pat_refresh;
pub mod respond;
pub mod view;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Method, Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::{AuditRecord, Direction};
use crate::config::Config;
use crate::matching::index::Matcher;
use crate::store::Store;
use respond::{AlreadyAudited, ApiError, Body, RelatedRequest, X_REQUEST_ID};

/// Limits the handlers apply.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest body.
    pub max_body_bytes: usize,
    /// `Retry-After` when shedding.
    pub retry_after_s: u64,
    /// Time allowed per request.
    pub request_timeout: Duration,
}

/// What every handler shares.
pub struct App {
    /// Where find requests and audit records go.
    pub store: Store,
    /// Decides each find before its ACK.
    pub matcher: Arc<Matcher>,
    /// Request limits.
    pub limits: Limits,
    /// Wakes the pipeline when a matching find is queued.
    pub wake_pipeline: Arc<Notify>,
    /// The view endpoint, when configured.
    pub view: Option<Arc<view::ViewService>>,
}

/// Per-request context.
pub struct RequestCx {
    /// The X-Request-ID when it is a valid UUID, otherwise one we generated.
    pub transaction_id: String,
    /// Whether the client sent a valid X-Request-ID.
    pub request_id_valid: bool,
    /// When the request arrived, µs since the epoch.
    pub received_at: i64,
    /// When the request arrived, for latency.
    pub received: Instant,
    /// The client certificate's subject.
    pub party: Arc<str>,
}

// === impl RequestCx ===

impl RequestCx {
    /// Every ecosystem call carries a UUID X-Request-ID (SPEC §2): `400` otherwise.
    pub fn require_request_id(&self) -> Result<(), ApiError> {
        if self.request_id_valid {
            Ok(())
        } else {
            Err(ApiError::bad_request(
                crate::wire::problem::ErrorCode::InvalidXRequestId,
                "X-Request-ID: missing or not a UUID",
            ))
        }
    }
}

/// Connection-level limits.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Connections at once.
    pub max_connections: usize,
    /// TLS handshake time-out.
    pub handshake_timeout: Duration,
    /// HTTP/1.1 header read time-out.
    pub header_read_timeout: Duration,
    /// Idle time-out.
    pub idle_timeout: Duration,
    /// Header block limit.
    pub max_header_bytes: usize,
    /// HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
}

impl ConnLimits {
    /// From the server config.
    pub fn from_config(c: &Config) -> Self {
        let s = &c.server;
        Self {
            max_connections: s.max_connections,
            handshake_timeout: Duration::from_millis(s.tls_handshake_timeout_ms),
            header_read_timeout: Duration::from_millis(s.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(s.idle_timeout_ms),
            max_header_bytes: s.max_header_bytes,
            max_concurrent_streams: s.max_concurrent_streams,
        }
    }
}

/// Runs the ecosystem listener until `shutdown` fires, then returns once every connection has
/// finished or been told to (the caller bounds the wait on `tracker`).
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Arc<App>,
    limits: ConnLimits,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore never closed"),
            _ = shutdown.cancelled() => break,
        };
        let (tcp, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, app, limits, shutdown) = (
            acceptor.clone(),
            app.clone(),
            limits.clone(),
            shutdown.clone(),
        );
        tracker.spawn(async move {
            crate::metrics::open_connections(1.0);
            connection(tcp, acceptor, app, limits, shutdown).await;
            crate::metrics::open_connections(-1.0);
            drop(permit);
        });
    }
}

async fn connection(
    tcp: tokio::net::TcpStream,
    acceptor: TlsAcceptor,
    app: Arc<App>,
    limits: ConnLimits,
    shutdown: CancellationToken,
) {
    let tls = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            crate::metrics::tls_handshake_failed(classify_handshake(&e));
            tracing::debug!(error = %e, "TLS handshake refused");
            return;
        }
        Err(_) => {
            crate::metrics::tls_handshake_failed("timeout");
            return;
        }
    };
    let party: Arc<str> = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(crate::tls::subject_of)
        .unwrap_or_else(|| "unknown".into())
        .into();
    let epoch = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Activity {
        inner: tls,
        last: last.clone(),
        epoch,
    });
    let service = service_fn(move |req| {
        let app = app.clone();
        let party = party.clone();
        async move { Ok::<_, Infallible>(route(req, party, app).await) }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(limits.max_header_bytes as u32)
        .keep_alive_interval(Some(limits.idle_timeout / 2))
        .keep_alive_timeout(Duration::from_secs(20));
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut tick = tokio::time::interval((limits.idle_timeout / 4).max(Duration::from_millis(10)));
    let mut closing = false;
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            _ = shutdown.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = tick.tick(), if !closing => {
                let idle_ms = epoch.elapsed().as_millis() as u64 - last.load(Ordering::Relaxed);
                if idle_ms >= limits.idle_timeout.as_millis() as u64 {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

fn classify_handshake(e: &std::io::Error) -> &'static str {
    let text = e.to_string();
    if text.contains("peer sent no certificates") || text.contains("NoCertificatesPresented") {
        "no_client_certificate"
    } else if text.contains("UnknownIssuer") || text.contains("invalid peer certificate") {
        "untrusted_client_certificate"
    } else if text.contains("protocol version") || text.contains("ProtocolVersion") {
        "protocol_version"
    } else if text.contains("corrupt message") || text.contains("InvalidContentType") {
        "not_tls"
    } else {
        "other"
    }
}

/// Bounds a handler by the request time-out.
async fn timed(
    limits: &Limits,
    fut: impl std::future::Future<Output = Result<Response<Body>, ApiError>>,
) -> Result<Response<Body>, ApiError> {
    match tokio::time::timeout(limits.request_timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(ApiError::unavailable(
            "request timed out; retry later",
            limits.retry_after_s,
        )),
    }
}

/// Routes one request, applies its time-out, and audits its answer.
async fn route(req: Request<Incoming>, party: Arc<str>, app: Arc<App>) -> Response<Timed> {
    let received = Instant::now();
    let received_at = crate::now_micros();
    // The hyphenated form only, kept exactly as sent: it is echoed and becomes the find ID.
    let sent_id = req
        .headers()
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| s.len() == 36 && uuid::Uuid::try_parse(s).is_ok())
        .map(str::to_owned);
    let cx = RequestCx {
        request_id_valid: sent_id.is_some(),
        transaction_id: sent_id.unwrap_or_else(|| uuid::Uuid::new_v4().hyphenated().to_string()),
        received_at,
        received,
        party,
    };
    let path = req.uri().path().to_owned();
    let (endpoint, metric): (&'static str, &'static str);
    let result = match (req.method(), path.as_str()) {
        (&Method::POST, "/find-requests") => {
            (endpoint, metric) = ("POST /find-requests", "find");
            timed(&app.limits, find::handle(req, &cx, &app)).await
        }
        (_, "/find-requests") => {
            (endpoint, metric) = ("* /find-requests", "find");
            Err(ApiError::method_not_allowed("POST"))
        }
        (&Method::GET, p) if p.starts_with("/view-data/") && app.view.is_some() => {
            (endpoint, metric) = ("GET /view-data", "view");
            let svc = app.view.clone().expect("checked");
            timed(&app.limits, view::handle(req, &cx, &svc)).await
        }
        (_, p) if p.starts_with("/view-data/") && app.view.is_some() => {
            (endpoint, metric) = ("* /view-data", "view");
            Err(ApiError::method_not_allowed("GET"))
        }
        (&Method::POST, "/pat-refresh") => {
            (endpoint, metric) = ("POST /pat-refresh", "pat_refresh");
            timed(&app.limits, pat_refresh::handle(req, &cx, &app)).await
        }
        (_, "/pat-refresh") => {
            (endpoint, metric) = ("* /pat-refresh", "pat_refresh");
            Err(ApiError::method_not_allowed("POST"))
        }
        _ => {
            (endpoint, metric) = ("* unknown", "unknown");
            Err(ApiError::not_found("no such endpoint"))
        }
    };
    let (resp, outcome) = match result {
        Ok(resp) => {
            let outcome = match resp.extensions().get::<crate::store::AppendOutcome>() {
                Some(crate::store::AppendOutcome::Duplicate) => "duplicate",
                Some(crate::store::AppendOutcome::Created) => "ack",
                None => "ok",
            };
            (resp, outcome)
        }
        Err(e) => {
            let outcome = e.outcome();
            (e.into_response(&cx.transaction_id), outcome)
        }
    };
    let status = resp.status().as_u16();
    if resp.extensions().get::<AlreadyAudited>().is_none() {
        let related = resp
            .extensions()
            .get::<RelatedRequest>()
            .map(|r| r.0.clone());
        let own = (metric == "find" && cx.request_id_valid).then(|| cx.transaction_id.clone());
        app.store.audit(AuditRecord {
            transaction_id: cx.transaction_id.clone(),
            request_id: related.or(own),
            direction: Direction::Inbound,
            party: cx.party.to_string(),
            endpoint: endpoint.into(),
            received_at,
            responded_at: crate::now_micros(),
            status,
            outcome: outcome.into(),
        });
    }
    // Latency runs to the last byte: recorded when hyper has written the body and drops it.
    resp.map(|body| Timed {
        inner: body,
        on_done: Some(Box::new(move || match metric {
            "find" => crate::metrics::find_answered(outcome, status, received.elapsed()),
            "view" => crate::metrics::view_answered(outcome, status, received.elapsed()),
            _ => crate::metrics::http_response(metric, status),
        })),
    })
}

/// A response body that runs a callback once hyper is done with it (written, or the connection
/// gone): the moment the last byte left, for the latency histograms.
pub struct Timed {
    inner: Body,
    on_done: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl hyper::body::Body for Timed {
    type Data = bytes::Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        if let Some(done) = self.on_done.take() {
            done();
        }
    }
}

/// Wraps a stream and records when bytes last moved, for the idle time-out.
struct Activity<T> {
    inner: T,
    /// Milliseconds since `epoch` at the last read or write that moved bytes.
    last: Arc<AtomicU64>,
    epoch: Instant,
}

impl<T> Activity<T> {
    fn touch(&self) {
        self.last
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Activity<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Activity<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
