//! The ops listener (plain HTTP; keep it on loopback or a private network): `/health/live`,
//! `/health/ready`, `/metrics`, `/jwks.json`, and `/data-version` (the member data change the
//! match index has applied: an import is live once it reaches the store's). Never the
//! ecosystem port.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
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
    /// The store, for gauges read at render time (`pdp_find_queue_depth`).
    pub store: crate::store::Store,
    /// The member data version the match index has applied (`/data-version`).
    pub data_version: Arc<std::sync::atomic::AtomicI64>,
}

/// Serves the ops listener until `shutdown`, under the same connection cap (its own), accept
/// back-off, header-read and idle time-outs as the ecosystem listener.
pub async fn serve(
    listener: TcpListener,
    ops: Arc<Ops>,
    limits: ConnLimits,
    shutdown: CancellationToken,
) {
    let max = limits.max_connections;
    let tracker = TaskTracker::new();
    conn::accept_loop(listener, max, shutdown.clone(), tracker, move |tcp| {
        let (ops, limits, shutdown) = (ops.clone(), limits.clone(), shutdown.clone());
        async move {
            let idle = conn::Idle::new();
            let busy = idle.clone();
            let svc = service_fn(move |req| {
                let guard = busy.begin();
                let resp = route(&req, &ops);
                drop(guard);
                async move { Ok::<_, Infallible>(resp) }
            });
            conn::drive(tcp, svc, idle, &limits, conn::Protocols::Http1, shutdown).await;
        }
    })
    .await;
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
        "/health/ready" if ops.ready.load(Ordering::Relaxed) => {
            text(StatusCode::OK, "text/plain", "ready\n".into())
        }
        "/health/ready" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready\n".into(),
        ),
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
