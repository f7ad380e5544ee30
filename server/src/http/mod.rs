//! The inbound side: the accept loop, limits and time-outs, and the routes.
//!
//! Connections live under [`conn`]'s limits (a cap taken before `accept()`, accept back-off,
//! header-read and idle time-outs), for this listener and the ops one alike. Here each
//! connection adds a TLS handshake time-out and the client's identity, and each request a
//! time-out of its own. Before any handler runs a request is checked: its header block against
//! `max_header_bytes` (per request, pipelined or not), `Host` on HTTP/1.1, one X-Request-ID,
//! the client identity against the endpoint's access list (`403`), one `Authorization`, no
//! content coding (`415`) and no transfer coding but `chunked` (`501`). Bodies are bounded by
//! `max_body_bytes` and must arrive within the header-read time-out (`408`). On shutdown,
//! listeners stop, each connection is asked to finish gracefully, and the drain is bounded by
//! `shutdown_grace_ms`.
//!
//! - [`conn`]: the accept loop and connection limits, shared with the ops listener.
//! - [`limit`]: requests refused before their handler, limited per client identity (`429`).
//! - [`head_read`]: the HTTP/1.1 header-read time-out, from a head's first byte.
//! - [`find`]: `POST /find-requests`.
//! - [`view`]: `GET /view-data/{assetGuid}`: the UMA flow and the signed view data token.
//! - [`pat_refresh`]: `POST /pat-refresh`.
//! - [`ops`]: the ops listener: `/health/live`, `/health/ready`, `/metrics`, `/jwks.json`.
//! - [`respond`]: errors to statuses and problem bodies.

pub(crate) mod conn;
pub mod find;
mod head_read;
pub mod limit;
pub mod ops;
pub mod pat_refresh;
pub mod respond;
pub mod view;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper::service::service_fn;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::{AuditRecord, Direction};
use crate::config::{AccessConfig, Config};
use crate::matching::index::Matcher;
use crate::store::Store;
use crate::tls::ClientIdentity;
use crate::wire::problem::ErrorCode;
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
    /// Time allowed for a request body to arrive (`408` past it).
    pub body_timeout: Duration,
    /// Largest header block of one request (`431` past it).
    pub max_header_bytes: usize,
    /// Refusals before a handler, counted and limited per client identity.
    pub refusals: Arc<limit::Refusals>,
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
    /// Who may call what.
    pub access: AccessConfig,
}

/// Per-request context.
pub struct RequestCx {
    /// The X-Request-ID in lower case when it is a valid UUID (so that a repeat in other letter
    /// case is the same request), otherwise one we generated. Echoed as the client sent it.
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

/// Reads a request body within the limits: `413` past `max_body_bytes`, `408` when it does not
/// arrive within the body time-out, `400` when the client broke it off.
pub async fn read_body(
    body: Incoming,
    max_bytes: usize,
    timeout: Duration,
) -> Result<bytes::Bytes, ApiError> {
    use http_body_util::{BodyExt, Limited};
    match tokio::time::timeout(timeout, Limited::new(body, max_bytes).collect()).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::too_large(max_bytes))
        }
        Ok(Err(_)) => Err(ApiError::bad_request(
            ErrorCode::InvalidJson,
            "body: could not be read",
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::RequestTimeout,
            "body: not received in time",
        )),
    }
}

// === impl RequestCx ===

impl RequestCx {
    /// Every ecosystem call carries a UUID X-Request-ID (wire contract §2): `400` otherwise.
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
    tls: Arc<arc_swap::ArcSwap<rustls::ServerConfig>>,
    app: Arc<App>,
    limits: ConnLimits,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let max = limits.max_connections;
    tracker.spawn(limit::Refusals::run(app.clone(), shutdown.clone()));
    conn::accept_loop(listener, max, shutdown.clone(), tracker, move |tcp| {
        // The config of the moment: a reload reaches handshakes from now on, not open ones.
        let acceptor = TlsAcceptor::from(tls.load_full());
        let (app, limits, shutdown) = (app.clone(), limits.clone(), shutdown.clone());
        async move {
            crate::metrics::open_connections(1.0);
            connection(tcp, acceptor, app, limits, shutdown).await;
            crate::metrics::open_connections(-1.0);
        }
    })
    .await;
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
    let identity: Arc<ClientIdentity> = Arc::new(
        tls.get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(ClientIdentity::of)
            .unwrap_or_default(),
    );
    let idle = conn::Idle::new();
    let busy = idle.clone();
    let service = service_fn(move |req| {
        let (app, identity) = (app.clone(), identity.clone());
        let guard = busy.begin();
        async move {
            let resp = route(req, identity, app).await;
            drop(guard);
            Ok::<_, Infallible>(resp)
        }
    });
    conn::drive(tls, service, idle, &limits, conn::Protocols::Both, shutdown).await;
}

/// Why a handshake failed, as the `reason` label of the handshake failure counter: from the
/// rustls error tokio-rustls carries, not from its message.
fn classify_handshake(e: &std::io::Error) -> &'static str {
    use rustls::{Error, PeerIncompatible};
    let Some(e) = e.get_ref().and_then(|e| e.downcast_ref::<Error>()) else {
        return "other";
    };
    match e {
        Error::NoCertificatesPresented => "no_client_certificate",
        Error::InvalidCertificate(_) => "untrusted_client_certificate",
        // A client that offers nothing newer than TLS 1.1 (in `legacy_version` or in
        // `supported_versions`).
        Error::PeerIncompatible(
            PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled
            | PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::ServerDoesNotSupportTls12Or13,
        ) => "protocol_version",
        Error::InvalidMessage(_) => "not_tls",
        _ => "other",
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

/// Which endpoint a request is for: its audit name, metric family and access list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Find,
    View,
    PatRefresh,
    Unknown,
}

impl Endpoint {
    fn of(path: &str, app: &App) -> Self {
        match path {
            "/find-requests" => Endpoint::Find,
            "/pat-refresh" => Endpoint::PatRefresh,
            p if app.view.as_ref().is_some_and(|v| {
                // At the root, only a single segment is a view: other paths stay unknown (404).
                p.strip_prefix(v.path_prefix.as_str()).is_some_and(|rest| {
                    v.path_prefix != "/" || (!rest.is_empty() && !rest.contains('/'))
                })
            }) =>
            {
                Endpoint::View
            }
            _ => Endpoint::Unknown,
        }
    }

    /// The metric family.
    fn metric(self) -> &'static str {
        match self {
            Endpoint::Find => "find",
            Endpoint::View => "view",
            Endpoint::PatRefresh => "pat_refresh",
            Endpoint::Unknown => "unknown",
        }
    }

    /// The method it answers, as a `Method` and as `Allow` spells it, and the audit names of a
    /// call with that method and with any other.
    fn spec(self) -> Option<(Method, &'static str, &'static str, &'static str)> {
        match self {
            Endpoint::Find => Some((
                Method::POST,
                "POST",
                "POST /find-requests",
                "* /find-requests",
            )),
            Endpoint::View => Some((Method::GET, "GET", "GET /view-data", "* /view-data")),
            Endpoint::PatRefresh => {
                Some((Method::POST, "POST", "POST /pat-refresh", "* /pat-refresh"))
            }
            Endpoint::Unknown => None,
        }
    }

    /// The audit name of a call with `method`.
    fn audit_name(self, method: &Method) -> &'static str {
        match self.spec() {
            Some((m, _, name, _)) if *method == m => name,
            Some((_, _, _, other)) => other,
            None => "* unknown",
        }
    }

    /// Who may call it.
    fn allowed(self, access: &AccessConfig) -> &[String] {
        match self {
            Endpoint::Find => &access.find,
            Endpoint::View => &access.view,
            Endpoint::PatRefresh => &access.pat_refresh,
            Endpoint::Unknown => &[],
        }
    }
}

/// The X-Request-ID exactly as sent, when there is one valid UUID in hyphenated form. Several
/// headers are allowed only when they all carry the same ID (in any letter case).
fn sent_request_id(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(X_REQUEST_ID).iter();
    let first = values.next()?.to_str().ok()?;
    if first.len() != 36 || uuid::Uuid::try_parse(first).is_err() {
        return None;
    }
    values
        .all(|v| v.as_bytes().eq_ignore_ascii_case(first.as_bytes()))
        .then_some(first)
}

/// The size of a request's header block as a client sent it (names, values, separators).
fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum()
}

/// Checks every request gets before its handler: header block size, `Host`, the client's
/// access to the endpoint, the method, and the X-Request-ID.
fn admit(
    req: &Request<Incoming>,
    cx: &RequestCx,
    endpoint: Endpoint,
    identity: &ClientIdentity,
    app: &App,
) -> Result<(), ApiError> {
    if header_bytes(req.headers()) > app.limits.max_header_bytes {
        return Err(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::HeadersTooLarge,
            format!("headers: larger than {} bytes", app.limits.max_header_bytes),
        ));
    }
    if req.version() == Version::HTTP_11 && !req.headers().contains_key(header::HOST) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRequest,
            "Host: required on HTTP/1.1 (RFC 9112)",
        ));
    }
    let Some((method, allow, name, _)) = endpoint.spec() else {
        return Err(ApiError::not_found("no such endpoint"));
    };
    if !identity.admitted_by(endpoint.allowed(&app.access)) {
        crate::metrics::access_refused(name);
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "client certificate: not allowed to call this endpoint",
        ));
    }
    if *req.method() != method {
        return Err(ApiError::method_not_allowed(allow));
    }
    cx.require_request_id()?;
    check_framing(req.headers())
}

/// Refuses what a handler would otherwise read wrongly: an `Authorization` sent more than once
/// (`400`, like two X-Request-IDs: which one counts would be a guess), a body in a content
/// coding (`415`: no endpoint decodes one, RFC 9110 §15.5.16), and a transfer coding other than
/// `chunked` (`501`, RFC 9112 §6.1: hyper decodes `chunked` and would pass the rest on raw).
fn check_framing(headers: &HeaderMap) -> Result<(), ApiError> {
    if headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRequest,
            "Authorization: sent more than once",
        ));
    }
    let codings = |name| {
        headers
            .get_all(name)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .map(|c| c.trim_ascii().to_ascii_lowercase())
            .filter(|c| !c.is_empty())
            .collect::<Vec<_>>()
    };
    if codings(header::CONTENT_ENCODING)
        .iter()
        .any(|c| c != b"identity")
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::InvalidContentType,
            "Content-Encoding: not supported; send the body unencoded",
        ));
    }
    if codings(header::TRANSFER_ENCODING)
        .iter()
        .any(|c| c != b"chunked")
    {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            ErrorCode::InvalidRequest,
            "Transfer-Encoding: only chunked is supported",
        ));
    }
    Ok(())
}

/// Whose view an answer was, for reporting: a view answered with a payload says so; a refused
/// one, in its error, counted unless it is the UMA challenge (`report::facts`' module doc).
fn view_seen(
    result: &Result<Response<Body>, ApiError>,
) -> (Option<crate::report::facts::ViewSeen>, Option<uuid::Uuid>) {
    match result {
        Ok(resp) => {
            let seen = resp
                .extensions()
                .get::<crate::report::facts::ViewSeen>()
                .copied();
            (seen, seen.map(|s| s.holdername))
        }
        Err(e) => {
            let holdername = e.holdername.as_deref().copied();
            let counted = holdername.filter(|_| e.outcome() != "challenge");
            (
                counted.map(crate::report::facts::ViewSeen::refused),
                holdername,
            )
        }
    }
}

/// Routes one request, applies its time-out, and audits its answer.
async fn route(
    req: Request<Incoming>,
    identity: Arc<ClientIdentity>,
    app: Arc<App>,
) -> Response<Body> {
    let received = Instant::now();
    let received_at = crate::now_micros();
    let sent_id = sent_request_id(req.headers()).map(str::to_owned);
    let cx = RequestCx {
        request_id_valid: sent_id.is_some(),
        transaction_id: sent_id.as_deref().map_or_else(
            || uuid::Uuid::new_v4().hyphenated().to_string(),
            str::to_ascii_lowercase,
        ),
        received_at,
        received,
        party: identity.subject.as_str().into(),
    };
    let version = req.version();
    let endpoint = Endpoint::of(req.uri().path(), &app);
    let name = endpoint.audit_name(req.method());
    let result = match admit(&req, &cx, endpoint, &identity, &app) {
        Err(e) => Err(app
            .limits
            .refusals
            .answer(&cx.party, name, endpoint.metric(), e)
            .await),
        Ok(()) => match endpoint {
            Endpoint::Find => timed(&app.limits, find::handle(req, &cx, &app)).await,
            Endpoint::View => {
                let svc = app.view.clone().expect("routed only when configured");
                timed(&app.limits, view::handle(req, &cx, &svc)).await
            }
            Endpoint::PatRefresh => timed(&app.limits, pat_refresh::handle(req, &cx, &app)).await,
            Endpoint::Unknown => Err(ApiError::not_found("no such endpoint")),
        },
    };
    let (seen, holdername) = view_seen(&result);
    let (mut resp, outcome) = match result {
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
    // Echoed exactly as sent; stored and compared in lower case.
    if let Some(v) = sent_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        resp.headers_mut().insert(X_REQUEST_ID, v);
    }
    // An answer sent before the body was read ends an HTTP/1.1 connection: say so.
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE && version <= Version::HTTP_11 {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let status = resp.status().as_u16();
    if resp.extensions().get::<AlreadyAudited>().is_none() && outcome != limit::LIMITED {
        let related = resp
            .extensions()
            .get::<RelatedRequest>()
            .map(|r| r.0.clone());
        let own =
            (endpoint == Endpoint::Find && cx.request_id_valid).then(|| cx.transaction_id.clone());
        app.store.audit(AuditRecord {
            transaction_id: cx.transaction_id.clone(),
            request_id: related.or(own),
            direction: Direction::Inbound,
            party: cx.party.to_string(),
            endpoint: name.into(),
            received_at,
            responded_at: crate::now_micros(),
            status,
            outcome: outcome.into(),
        });
    }
    // The provider's latency ends when its answer is ready: a client that reads it slowly (a
    // zero HTTP/2 window) does not make an ACK or a view late.
    let elapsed = received.elapsed();
    if let Some(seen) = seen {
        seen.record(
            &app.store,
            received_at,
            received_at + elapsed.as_micros() as i64,
        );
    }
    match endpoint.metric() {
        "find" => crate::metrics::find_answered(outcome, status, elapsed),
        "view" => crate::metrics::view_answered(outcome, status, elapsed, holdername),
        metric => crate::metrics::http_response(metric, status),
    }
    resp
}
