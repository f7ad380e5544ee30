//! The ops listener (plain HTTP; keep it on loopback or a private network): `/health/live`,
//! `/health/ready`, `/metrics`, `/jwks.json`. Never the ecosystem port.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::respond::Body;

/// What the ops endpoints read.
pub struct Ops {
    /// Renders `/metrics`.
    pub prometheus: PrometheusHandle,
    /// The view data signing key's public JWK set, for `/jwks.json`.
    pub jwks: Option<serde_json::Value>,
    /// False while starting and once draining: `/health/ready` answers `503`.
    pub ready: AtomicBool,
}

/// Serves the ops listener until `shutdown`.
pub async fn serve(listener: TcpListener, ops: Arc<Ops>, shutdown: CancellationToken) {
    loop {
        let tcp = tokio::select! {
            r = listener.accept() => match r { Ok((t, _)) => t, Err(_) => continue },
            _ = shutdown.cancelled() => break,
        };
        let ops = ops.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let ops = ops.clone();
                async move { Ok::<_, Infallible>(route(&req, &ops)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
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
        "/health/ready" if ops.ready.load(Ordering::Relaxed) => {
            text(StatusCode::OK, "text/plain", "ready\n".into())
        }
        "/health/ready" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready\n".into(),
        ),
        "/metrics" => {
            ops.prometheus.run_upkeep();
            text(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                ops.prometheus.render(),
            )
        }
        "/jwks.json" => match &ops.jwks {
            Some(j) => text(StatusCode::OK, "application/json", j.to_string()),
            None => text(
                StatusCode::NOT_FOUND,
                "text/plain",
                "no signing key\n".into(),
            ),
        },
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}
