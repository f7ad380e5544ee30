//! The ops listener (plain HTTP; keep it on loopback or a private network): `/health/live`,
//! `/health/ready`, `/metrics`, `/jwks.json`, and `/data-version` (the member data change the
//! match index has applied: an import is live once it reaches the store's). Never the
//! ecosystem port.
//!
//! Health checks always get an answer: the listener takes up to [`RESERVE`] connections past
//! `ops_max_connections`, and each one taken past the cap asks the longest-idle connection to
//! close (a kept-alive connection with no request in progress may be closed at any time), so
//! idle connections held open cannot lock an orchestrator's probe out.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::respond::Body;
use super::{conn, ConnLimits};

/// What the ops endpoints read.
pub struct Ops {
    /// Renders `/metrics`.
    pub prometheus: PrometheusHandle,
    /// The view data signer, whose public JWK set `/jwks.json` serves (it follows reloads).
    pub signer: Option<Arc<arc_swap::ArcSwap<crate::view_data::token::Signer>>>,
    /// False while starting and once draining: `/health/ready` answers `503`.
    pub ready: AtomicBool,
    /// False while the store does not answer (set by the member data poll): not ready.
    pub store_up: Arc<AtomicBool>,
    /// The match index: not ready while a stored member record does not open.
    pub matcher: Option<Arc<crate::matching::index::Matcher>>,
    /// The store, for gauges read at render time (`pdp_find_queue_depth`).
    pub store: crate::store::Store,
    /// The member data version the match index has applied (`/data-version`).
    pub data_version: Arc<std::sync::atomic::AtomicI64>,
}

/// Connections taken past `ops_max_connections`, each asking the longest-idle one to close.
pub const RESERVE: usize = 8;

/// How long an evicted connection has to close before it is cut.
const EVICTION_GRACE: Duration = Duration::from_secs(1);

/// Serves the ops listener until `shutdown`, under its own connection cap (see [`RESERVE`]),
/// accept back-off, header-read and idle time-outs as the ecosystem listener.
pub async fn serve(
    listener: TcpListener,
    ops: Arc<Ops>,
    limits: ConnLimits,
    shutdown: CancellationToken,
) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(5);
    let max = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max + RESERVE));
    let conns = Arc::new(Conns::default());
    let tracker = TaskTracker::new();
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
        let tcp = match accepted {
            Ok((tcp, _peer)) => tcp,
            Err(e) => {
                tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "ops accept failed; backing off");
                crate::metrics::accept_failed();
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = FIRST_BACKOFF;
        let _ = tcp.set_nodelay(true);
        let (id, conn) = conns.open(shutdown.child_token(), max);
        let (ops, limits, conns) = (ops.clone(), limits.clone(), conns.clone());
        tracker.spawn(async move {
            serve_conn(tcp, ops, &limits, conn).await;
            conns.close(id);
            drop(permit);
        });
    }
}

/// Serves one ops connection until it ends, idles out, is evicted, or shutdown.
async fn serve_conn(
    tcp: tokio::net::TcpStream,
    ops: Arc<Ops>,
    limits: &ConnLimits,
    state: Arc<ConnState>,
) {
    let idle = conn::Idle::new();
    let busy = idle.clone();
    let seen = state.clone();
    let svc = service_fn(move |req| {
        let guard = busy.begin();
        let active = seen.begin();
        let resp = route(&req, &ops);
        drop(active);
        drop(guard);
        async move { Ok::<_, Infallible>(resp) }
    });
    let stop = state.stop.clone();
    let driven = conn::drive(tcp, svc, idle, limits, conn::Protocols::Http1, stop.clone());
    let cut = async {
        stop.cancelled().await;
        tokio::time::sleep(EVICTION_GRACE).await;
    };
    tokio::select! {
        _ = driven => {}
        _ = cut => {}
    }
}

/// The ops listener's open connections, for eviction at the cap.
#[derive(Default)]
struct Conns {
    open: Mutex<HashMap<u64, Arc<ConnState>>>,
    next: AtomicU64,
}

/// One ops connection: whether a request is in progress, when it last had one, and its stop.
struct ConnState {
    epoch: Instant,
    in_progress: AtomicUsize,
    /// Milliseconds since `epoch` when a request last began or ended (or it opened).
    last_ms: AtomicU64,
    stop: CancellationToken,
}

/// Held while a request is in progress on an ops connection.
struct Active(Arc<ConnState>);

impl ConnState {
    fn begin(self: &Arc<Self>) -> Active {
        self.in_progress.fetch_add(1, Ordering::AcqRel);
        self.touch();
        Active(self.clone())
    }

    fn touch(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last_ms.store(now, Ordering::Release);
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_progress.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Conns {
    /// Registers a new connection; past `max` open, asks the longest-idle other one to close.
    fn open(&self, stop: CancellationToken, max: usize) -> (u64, Arc<ConnState>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState {
            epoch: Instant::now(),
            in_progress: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            stop,
        });
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let live = open.values().filter(|c| !c.stop.is_cancelled()).count();
        if live >= max {
            // Idle longest: the earliest last activity, as an instant.
            let idlest = open
                .values()
                .filter(|c| !c.stop.is_cancelled() && c.in_progress.load(Ordering::Acquire) == 0)
                .min_by_key(|c| c.epoch + Duration::from_millis(c.last_ms.load(Ordering::Acquire)));
            if let Some(c) = idlest {
                c.stop.cancel();
                tracing::debug!(
                    "ops listener at its connection cap; the longest-idle connection is closed"
                );
            }
        }
        open.insert(id, state.clone());
        (id, state)
    }

    fn close(&self, id: u64) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}

fn route(req: &Request<Incoming>, ops: &Ops) -> Response<Body> {
    match req.uri().path() {
        "/health/live" => text(StatusCode::OK, "text/plain", "live\n".into()),
        "/health/ready" => match ops.not_ready() {
            None => text(StatusCode::OK, "text/plain", "ready\n".into()),
            Some(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {why}\n"),
            ),
        },
        "/metrics" => {
            crate::metrics::queue_depth(ops.store.pending());
            ops.prometheus.run_upkeep();
            text(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                ops.prometheus.render(),
            )
        }
        "/data-version" => text(
            StatusCode::OK,
            "application/json",
            format!(
                "{{\"applied\":{}}}\n",
                ops.data_version.load(Ordering::Acquire)
            ),
        ),
        "/jwks.json" => match &ops.signer {
            Some(s) => text(
                StatusCode::OK,
                "application/json",
                s.load().jwks().to_string(),
            ),
            None => text(
                StatusCode::NOT_FOUND,
                "text/plain",
                "no signing key\n".into(),
            ),
        },
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

// === impl Ops ===

impl Ops {
    /// Why the endpoint is not ready, or `None` when it is.
    pub fn not_ready(&self) -> Option<String> {
        if !self.ready.load(Ordering::Relaxed) {
            return Some("starting or stopping".into());
        }
        if !self.store_up.load(Ordering::Acquire) {
            return Some("the store does not answer".into());
        }
        let m = self.matcher.as_ref()?;
        if m.complete() {
            return None;
        }
        Some(format!(
            "{} member records do not open with the configured data key ({}); finds are refused",
            m.unreadable(),
            m.key_name
        ))
    }
}
