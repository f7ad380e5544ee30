//! The CAS simulator: `pdp-provider sim cas`.
//!
//! Speaks wire contract §4 (mTLS) as MaPS' stub does: `X-Request-ID` required on every call
//! (plain-text `400` without it), `Authorization: Bearer <PAT>` on registration calls (`400
//! Bearer token required`, `400 PAT not found`, `401` when the PAT does not own the resource),
//! `409` when an X-Request-ID already created a resource, `200` with the existing id when a PeI
//! is registered again. It issues one PAT per user (`sub`). Resource ids are 37 characters, so
//! nothing may assume a UUID. For the view it issues permission tickets (`POST /perm`), swaps
//! them for RPTs with the dashboard's `uma-ticket` grant at `/token`, introspects RPTs in the
//! stub's response shape, and publishes providers' keys at `/jwk_uri`. PDP's reporting API
//! (six endpoints) and the stub's `POST /configuration` are in [`super::report`]. Tickets and
//! RPTs are opaque: standard base64 of a JSON wrapper around a JWT, as the stub makes them.
//!
//! Before that logic, each endpoint answers the stub's magic values as the stub does
//! ([`crate::magic`]): the UAT at `/token` (its users' fixed PATs, scripted `400`s, `401`,
//! `429` with `Retry-After`, `5xx`), the bearer PAT at `/rreguri` and `/perm`, the RPT at
//! `/introspect` (scripted statuses, then the seeded RPTs' inactive or flawed bodies). A UAT
//! whose `pdp_stub_uat` claim names one of the stub's UATs is swapped as that UAT.
//!
//! A control listener (plain HTTP, loopback) shows what it received and injects faults:
//! `GET /__sim/registrations` (every resource; with `?since=N`, only the registrations made
//! after the first N, in order, and the cursor to ask from next:
//! `{"registrations": [{"name", "inbound_request_id"}], "next"}`, for pollers),
//! `GET /__sim/calls` (each call's endpoint, X-Request-ID, status, time received, whose it was
//! by the stub's constant names or `sub`, never a token, and `Retry-After`), `POST
//! /__sim/faults` with
//! `{"latency_ms", "error_rate", "error_status", "outage_ms", "endpoints"}`,
//! `DELETE /__sim/faults`, `GET /__sim/reports` (the reporting submissions received),
//! `POST /configuration` (as on the mTLS listener), and `POST /__sim/jwks` with a provider's JWK
//! set to publish at `/jwk_uri` (as PDP does at onboarding; [`provider_jwks`] finds the one to
//! publish at start).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use dashmap::DashMap;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use pdp_provider::config::TlsConfig;

type Body = Full<Bytes>;

/// Faults to inject.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Added to every answer.
    pub latency_ms: u64,
    /// Share of calls answered with `error_status` (0.0 to 1.0).
    pub error_rate: f64,
    /// The status for injected errors (default 503).
    pub error_status: u16,
    /// Answer every call with 503 for this long from now.
    pub outage_ms: u64,
    /// Only these endpoints (e.g. `"POST /rreguri"`); all when empty.
    pub endpoints: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct ActiveFaults {
    faults: Faults,
    outage_until: Option<Instant>,
}

/// A call the simulator received.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    /// e.g. `POST /rreguri`.
    pub endpoint: String,
    /// The X-Request-ID it carried.
    pub x_request_id: Option<String>,
    /// What it answered.
    pub status: u16,
    /// When it was received (RFC 3339, microseconds, UTC).
    pub at: String,
    /// Whose call it was, never a token: the stub's constant names of the tokens it carried (a
    /// magic UAT, PAT or RPT, [`crate::magic`]), else `sub <user>` of its UAT or PAT.
    pub credential: Option<String>,
    /// The `Retry-After` it answered with, in seconds.
    pub retry_after: Option<u64>,
}

/// Whose call a handler served (see [`Call::credential`]), carried out in the answer's
/// extensions.
#[derive(Debug, Clone)]
struct Credential(String);

/// A registered resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resource {
    /// The CAS's resource id.
    pub resource_id: String,
    /// The PeI.
    pub name: String,
    /// The scheme name.
    pub description: String,
    /// `match-yes` or `match-possible`.
    pub match_status: String,
    /// Scopes.
    pub resource_scopes: Vec<String>,
    /// The find request it came from.
    pub inbound_request_id: String,
    /// The owner's PAT.
    #[serde(skip)]
    pub pat: String,
    /// Whether it has been deleted, and why.
    pub deleted: Option<String>,
}

/// A registration as the control listener's log lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    /// The PeI.
    pub name: String,
    /// The find request it came from.
    pub inbound_request_id: String,
}

/// The simulator's state.
#[derive(Default)]
pub struct CasState {
    /// PAT → user `sub`.
    pats: DashMap<String, String>,
    /// User `sub` → PAT (one per user).
    pat_by_sub: DashMap<String, String>,
    /// PATs the simulator now refuses as expired.
    expired_pats: DashMap<String, ()>,
    resources: DashMap<String, Resource>,
    by_name: DashMap<String, String>,
    /// Every registration in the order it was made: what a poller reads from where it stopped.
    log: Mutex<Vec<Registered>>,
    /// RPT → (resource id, scopes, exp).
    rpts: DashMap<String, (String, Vec<String>, i64)>,
    /// The provider keys published at `/jwk_uri`.
    jwks: Mutex<Vec<serde_json::Value>>,
    used_request_ids: DashMap<String, ()>,
    calls: Mutex<Vec<Call>>,
    faults: Mutex<ActiveFaults>,
    /// The base URL the simulator is reached at (for `Location`).
    base_url: Mutex<String>,
    /// PDP's reporting API: submissions received, scripted faults.
    pub reports: super::report::ReportState,
}

/// A running simulator.
pub struct CasSim {
    /// The mTLS address.
    pub addr: SocketAddr,
    /// The control address (plain HTTP).
    pub control_addr: SocketAddr,
    /// Its state, for in-process tests.
    pub state: Arc<CasState>,
    shutdown: CancellationToken,
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}

fn json_resp(status: StatusCode, v: serde_json::Value) -> Response<Body> {
    respond(status, "application/json", v.to_string())
}

fn text(status: StatusCode, t: &str) -> Response<Body> {
    respond(status, "text/plain", t.to_owned())
}

/// The stub's answer to a magic value: no body (and no `Content-Type`) but for the OAuth
/// errors; `429` with a random `Retry-After` of 2 to 10 seconds.
fn scripted(s: crate::magic::Scripted) -> Response<Body> {
    use crate::magic::Scripted;
    let bare = |status: u16| {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        r
    };
    match s {
        Scripted::Empty(status) => bare(status),
        Scripted::OAuthError(code) => json_resp(StatusCode::BAD_REQUEST, json!({ "error": code })),
        Scripted::TooManyRequests => {
            let mut r = bare(429);
            let wait: u32 = rand::thread_rng().gen_range(2..=10);
            r.headers_mut()
                .insert(header::RETRY_AFTER, http::HeaderValue::from(wait));
            r
        }
    }
}

/// The magic answer to `token` from `check`, if it is one.
fn magic(check: fn(&str) -> Option<crate::magic::Scripted>, token: &str) -> Option<Response<Body>> {
    check(token).map(scripted)
}

fn b64url(v: &serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// A JWT-shaped token with the given claims (signature not meaningful).
pub fn mint(claims: serde_json::Value) -> String {
    format!(
        "{}.{}.{}",
        b64url(&json!({"alg": "HS256", "typ": "JWT"})),
        b64url(&claims),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
    )
}

// === impl CasState ===

impl CasState {
    /// Every resource registered (deleted ones included).
    pub fn registrations(&self) -> Vec<Resource> {
        let mut v: Vec<Resource> = self.resources.iter().map(|r| r.value().clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The registrations made after the first `since`, in order, and how many there are in all
    /// (the next cursor).
    pub fn registered_since(&self, since: usize) -> (Vec<Registered>, usize) {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        (log.get(since..).unwrap_or_default().to_vec(), log.len())
    }

    /// Every call received.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets the faults; `outage_ms` starts now.
    pub fn set_faults(&self, faults: Faults) {
        let outage_until = (faults.outage_ms > 0)
            .then(|| Instant::now() + Duration::from_millis(faults.outage_ms));
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = ActiveFaults {
            faults,
            outage_until,
        };
    }

    /// Publishes a provider's JWK set at `/jwk_uri` (PDP does this at onboarding).
    pub fn publish_jwks(&self, jwks: &serde_json::Value) {
        let mut keys = self.jwks.lock().unwrap_or_else(|e| e.into_inner());
        for k in jwks["keys"].as_array().into_iter().flatten() {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }

    /// The PAT that owns a registered PeI (for tests that expire it).
    pub fn pat_of(&self, pei: &str) -> Option<String> {
        let id = self.by_name.get(pei)?.value().clone();
        self.resources.get(&id).map(|r| r.pat.clone())
    }

    /// Issues the owner of `old` a new PAT (the CAS side of a PAT refresh): the new one owns
    /// everything the old one did, and the old one is forgotten.
    pub fn rotate_pat(&self, old: &str) -> Option<String> {
        let (_, sub) = self.pats.remove(old)?;
        let now = chrono::Utc::now().timestamp();
        let new = mint(json!({"sub": sub, "iat": now, "exp": now + 548 * 86_400,
                              "jti": uuid::Uuid::new_v4(), "scope": "uma_protection"}));
        self.pats.insert(new.clone(), sub.clone());
        self.pat_by_sub.insert(sub, new.clone());
        for mut r in self.resources.iter_mut() {
            if r.pat == old {
                r.pat = new.clone();
            }
        }
        Some(new)
    }

    /// Treats a PAT as expired from now on (its calls get `401`).
    pub fn expire_pat(&self, pat: &str) {
        self.expired_pats.insert(pat.to_owned(), ());
    }

    fn record(
        &self,
        endpoint: &str,
        x_request_id: Option<&str>,
        at: String,
        resp: &Response<Body>,
    ) {
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let credential = resp.extensions().get::<Credential>().map(|c| c.0.clone());
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Call {
                endpoint: endpoint.to_owned(),
                x_request_id: x_request_id.map(str::to_owned),
                status: resp.status().as_u16(),
                at,
                credential,
                retry_after,
            });
    }

    /// Whose token this is, for the call log: its magic name, else `sub <user>` (a PAT this
    /// simulator issued, or a JWT's `sub` claim).
    fn label(&self, token: &str) -> Option<String> {
        if let Some(name) = crate::magic::name_of(token) {
            return Some(name);
        }
        if let Some(sub) = self.pats.get(token) {
            return Some(format!("sub {}", sub.value()));
        }
        pdp_provider::wire::jwt::unverified_claims(token)
            .and_then(|c| c.get("sub").and_then(|s| s.as_str()).map(str::to_owned))
            .map(|sub| format!("sub {sub}"))
    }

    /// The resource the PAT registered last (the stub's `findFirstByPatOrderByCreatedAtDesc`).
    fn last_registered_by(&self, pat: &str) -> Option<String> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner()).clone();
        log.iter().rev().find_map(|r| {
            let id = self.by_name.get(&r.name)?.value().clone();
            self.resources
                .get(&id)
                .filter(|res| res.pat == pat)
                .map(|_| id)
        })
    }

    /// The fault to apply to `endpoint`, if any: (latency, forced status).
    fn fault(&self, endpoint: &str) -> (Duration, Option<StatusCode>) {
        let f = self
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if !f.faults.endpoints.is_empty() && !f.faults.endpoints.iter().any(|e| e == endpoint) {
            return (Duration::ZERO, None);
        }
        let latency = Duration::from_millis(f.faults.latency_ms);
        if f.outage_until.is_some_and(|t| Instant::now() < t) {
            return (latency, Some(StatusCode::SERVICE_UNAVAILABLE));
        }
        if f.faults.error_rate > 0.0 && rand::thread_rng().gen_bool(f.faults.error_rate.min(1.0)) {
            let s = StatusCode::from_u16(f.faults.error_status)
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return (latency, Some(s));
        }
        (latency, None)
    }

    /// The PAT's user, checking it is known and live.
    fn pat_owner(&self, pat: &str) -> Result<String, Box<Response<Body>>> {
        if self.expired_pats.contains_key(pat) {
            return Err(Box::new(json_resp(
                StatusCode::UNAUTHORIZED,
                json!({"error": "PAT expired"}),
            )));
        }
        self.pats
            .get(pat)
            .map(|s| s.value().clone())
            .ok_or_else(|| Box::new(text(StatusCode::BAD_REQUEST, "PAT not found")))
    }
}

fn bearer(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

async fn body_bytes(req: Request<Incoming>) -> Option<Bytes> {
    Limited::new(req.into_body(), 64 * 1024)
        .collect()
        .await
        .ok()
        .map(|b| b.to_bytes())
}

fn endpoint_of(method: &Method, path: &str) -> String {
    let p = if path.starts_with("/rreguri/") {
        "/rreguri"
    } else {
        path
    };
    format!("{method} {p}")
}

async fn handle(req: Request<Incoming>, state: Arc<CasState>) -> Response<Body> {
    let endpoint = endpoint_of(req.method(), req.uri().path());
    let x_request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let bearer_label = bearer(&req).and_then(|t| state.label(&t));
    let mut resp = handle_inner(req, &state, &endpoint, x_request_id.as_deref()).await;
    if let (None, Some(l)) = (resp.extensions().get::<Credential>(), bearer_label) {
        resp.extensions_mut().insert(Credential(l));
    }
    state.record(&endpoint, x_request_id.as_deref(), at, &resp);
    resp
}

async fn handle_inner(
    req: Request<Incoming>,
    state: &CasState,
    endpoint: &str,
    x_request_id: Option<&str>,
) -> Response<Body> {
    let (latency, forced) = state.fault(endpoint);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(s) = forced {
        return respond(s, "text/plain", Bytes::new());
    }
    if let Some(resp) = reporting(req.method(), req.uri().path()) {
        return resp(req, state).await;
    }
    if req.uri().path() == "/jwk_uri" {
        let keys = state.jwks.lock().unwrap_or_else(|e| e.into_inner()).clone();
        return json_resp(StatusCode::OK, json!({ "keys": keys }));
    }
    let Some(xid) = x_request_id.filter(|x| uuid::Uuid::try_parse(x).is_ok()) else {
        return text(
            StatusCode::BAD_REQUEST,
            &format!(
                "Missing 'x-request-id' header for request {}",
                req.uri().path()
            ),
        );
    };
    let xid = xid.to_owned();
    match (req.method().clone(), req.uri().path().to_owned()) {
        (Method::POST, p) if p == "/token" => token(req, state).await,
        (Method::POST, p) if p == "/rreguri" => register(req, state, &xid).await,
        (Method::POST, p) if p == "/perm" => perm(req, state).await,
        (Method::POST, p) if p == "/introspect" => introspect(req, state).await,
        (m, p) if p.starts_with("/rreguri/") => {
            let id = p.trim_start_matches("/rreguri/").to_owned();
            match m {
                Method::PATCH => update(req, state, &id).await,
                Method::DELETE => delete(req, state, &id),
                Method::GET => match state.resources.get(&id) {
                    Some(r) => json_resp(
                        StatusCode::OK,
                        serde_json::to_value(r.value()).unwrap_or_default(),
                    ),
                    None => text(StatusCode::NOT_FOUND, "Resource not found"),
                },
                _ => text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
            }
        }
        _ => text(StatusCode::NOT_FOUND, "Not found"),
    }
}

type ReportHandler =
    fn(
        Request<Incoming>,
        &CasState,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send + '_>>;

/// The reporting API's routes (and the stub's `POST /configuration`), when `path` is one.
fn reporting(method: &Method, path: &str) -> Option<ReportHandler> {
    use pdp_provider::wire::report::ReportKind;
    if path == "/configuration" {
        return Some(|req, state| Box::pin(configuration(req, state)));
    }
    ReportKind::parse(path)?;
    // Spring answers a wrong method with its default body; Content-Type and X-Request-ID are
    // the reporting state's to judge, in the stub's order.
    if method != Method::POST {
        return Some(|req, _| {
            let path = req.uri().path().to_owned();
            Box::pin(async move {
                json_resp(
                    StatusCode::METHOD_NOT_ALLOWED,
                    crate::report::spring_error(405, &path),
                )
            })
        });
    }
    Some(|req, state| Box::pin(report(req, state)))
}

fn report_problem(status: u16, title: &str, code: &str) -> Response<Body> {
    let mut r = json_resp(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        json!({"type": "about:blank", "title": title, "status": status,
               "datetimestamp": pdp_provider::datetimestamp(pdp_provider::now_micros()),
               "errors": [{"code": code}]}),
    );
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/problem+json"),
    );
    r
}

/// One of the six reporting endpoints.
async fn report(req: Request<Incoming>, state: &CasState) -> Response<Body> {
    use pdp_provider::wire::report::{ReportKind, MAX_BODY_BYTES};
    let Some(kind) = ReportKind::parse(req.uri().path()) else {
        return report_problem(404, "Not Found", "INVALID_URL");
    };
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (xid, content_type) = (header("x-request-id"), header("content-type"));
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES + 1)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => return report_problem(413, "Payload Too Large", "CONTENT_TOO_LARGE"),
    };
    let (status, answer) = state.reports.answer(crate::report::Call {
        kind,
        content_type: content_type.as_deref(),
        x_request_id: xid.as_deref(),
        body: &body,
    });
    tokio::time::sleep(state.reports.held_for()).await;
    let problem = answer.get("type").is_some();
    let mut r = json_resp(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        answer,
    );
    // Problem details, as the stub's controllers answer; Spring's default body stays JSON.
    if status != 202 && problem {
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/problem+json"),
        );
    }
    r
}

/// `POST /configuration`: scripted faults, `204`.
async fn configuration(req: Request<Incoming>, state: &CasState) -> Response<Body> {
    if req.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
    }
    let Some(body) = body_bytes(req).await else {
        return text(StatusCode::BAD_REQUEST, "bad body");
    };
    match serde_json::from_slice::<Vec<pdp_provider::wire::report::StubConfiguration>>(&body) {
        Ok(stubs)
            if stubs.len() <= 6
                && stubs
                    .iter()
                    .all(|s| (100..=599).contains(&s.status) && !s.errors.is_empty()) =>
        {
            state.reports.configure(stubs);
            respond(StatusCode::NO_CONTENT, "text/plain", Bytes::new())
        }
        _ => text(StatusCode::BAD_REQUEST, "invalid configuration"),
    }
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    assertion: Option<String>,
    scope: Option<String>,
    ticket: Option<String>,
    claim_token: Option<String>,
    claim_token_format: Option<String>,
}

/// An opaque UMA token as the stub makes them: standard base64 of
/// `{"access_token": <JWT>, "token_type": <type>}`.
fn wrap(token_type: &str, claims: serde_json::Value) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(json!({"access_token": mint(claims), "token_type": token_type}).to_string())
}

fn unwrap_token(t: &str) -> Option<(String, serde_json::Value)> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(t).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let claims = pdp_provider::wire::jwt::unverified_claims(v.get("access_token")?.as_str()?)?;
    Some((v.get("token_type")?.as_str()?.to_owned(), claims))
}

/// The dashboard's grant: a permission ticket for an RPT.
fn uma_ticket(form: TokenForm, state: &CasState) -> Response<Body> {
    let invalid = |e: &str| json_resp(StatusCode::BAD_REQUEST, json!({"error": e}));
    let (Some(ticket), Some(claim_token)) = (form.ticket, form.claim_token) else {
        return invalid("invalid_request");
    };
    if claim_token.split('.').count() != 3
        || form.claim_token_format.as_deref() != Some("pension_dashboard_rqp")
    {
        return invalid("invalid_request");
    }
    let Some((kind, claims)) = unwrap_token(&ticket) else {
        return invalid("invalid_grant");
    };
    let now = chrono::Utc::now().timestamp();
    if kind != "pension_dashboard_pmt" || claims["exp"].as_i64().is_none_or(|e| e < now) {
        return invalid("invalid_grant");
    }
    let resource_id = claims["resource_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let granted: Vec<String> = claims["resource_scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .filter(|s| {
            form.scope
                .as_deref()
                .is_none_or(|want| want.split(' ').any(|w| w == s))
        })
        .collect();
    if granted.is_empty() {
        return invalid("invalid_scope");
    }
    let exp = now + 300;
    let rpt = wrap(
        "pension_dashboard_rpt",
        json!({"resource_id": resource_id, "resource_scopes": granted, "exp": exp, "iat": now,
               "iss": "https://cas-simulator.example.org", "jti": uuid::Uuid::new_v4()}),
    );
    state.rpts.insert(rpt.clone(), (resource_id, granted, exp));
    json_resp(
        StatusCode::OK,
        json!({"access_token": rpt, "token_type": "pension_dashboard_rpt",
               "upgraded": false, "pct": null, "id_token": null}),
    )
}

#[derive(Deserialize)]
struct PermBody {
    resource_id: String,
    resource_scopes: Vec<String>,
}

async fn perm(req: Request<Incoming>, state: &CasState) -> Response<Body> {
    let Some(pat) = bearer(&req) else {
        return text(StatusCode::BAD_REQUEST, "Bearer token required");
    };
    if let Some(r) = magic(crate::magic::on_perm, &pat) {
        return r;
    }
    if let Err(r) = state.pat_owner(&pat) {
        return *r;
    }
    let body = body_bytes(req).await.unwrap_or_default();
    let Ok(b) = serde_json::from_slice::<PermBody>(&body) else {
        return text(StatusCode::BAD_REQUEST, "Malformed request");
    };
    let mut scopes = b.resource_scopes.clone();
    scopes.sort();
    if scopes != ["owner", "value"] {
        return text(
            StatusCode::BAD_REQUEST,
            "resource_scopes must be value and owner",
        );
    }
    let Some(r) = state
        .resources
        .get(&b.resource_id)
        .filter(|r| r.deleted.is_none())
    else {
        return text(StatusCode::NOT_FOUND, "Resource not found");
    };
    if r.pat != pat {
        return json_resp(
            StatusCode::UNAUTHORIZED,
            json!({"error": "The resource is not associated with the PAT"}),
        );
    }
    let now = chrono::Utc::now().timestamp();
    let ticket = wrap(
        "pension_dashboard_pmt",
        json!({"resource_id": r.resource_id, "resource_scopes": ["value", "owner"], "iat": now,
               "exp": now + 60, "iss": "https://cas-simulator.example.org"}),
    );
    json_resp(StatusCode::CREATED, json!({ "ticket": ticket }))
}

async fn introspect(req: Request<Incoming>, state: &CasState) -> Response<Body> {
    let Some(pat) = bearer(&req) else {
        return text(StatusCode::BAD_REQUEST, "Bearer token required");
    };
    let body = body_bytes(req).await.unwrap_or_default();
    let token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "token").map(|p| p.1));
    let rpt_name = token.as_deref().and_then(crate::magic::name_of);
    let mut resp = introspect_token(state, &pat, token);
    if let Some(name) = rpt_name {
        let who = state.label(&pat).unwrap_or_else(|| "unknown PAT".into());
        resp.extensions_mut()
            .insert(Credential(format!("{who}, RPT {name}")));
    }
    resp
}

/// Introspection once the bearer PAT is read: the stub's magic RPTs first, then its PAT check,
/// then its seeded RPTs, then the RPTs this simulator issued.
fn introspect_token(state: &CasState, pat: &str, token: Option<String>) -> Response<Body> {
    if let Some(r) = token
        .as_deref()
        .and_then(|t| magic(crate::magic::on_introspect, t))
    {
        return r;
    }
    if let Err(r) = state.pat_owner(pat) {
        return *r;
    }
    let Some(token) = token else {
        return text(StatusCode::BAD_REQUEST, "token required");
    };
    if let Some(seeded) = crate::magic::seeded_rpt(&token) {
        if seeded.owner_pat != pat {
            return json_resp(
                StatusCode::UNAUTHORIZED,
                json!({"error": "The resource is not associated with the PAT"}),
            );
        }
        let last = state.last_registered_by(pat);
        let now = chrono::Utc::now().timestamp();
        return json_resp(
            StatusCode::OK,
            crate::magic::seeded_introspection(seeded, last.as_deref(), now),
        );
    }
    if unwrap_token(&token).is_none() {
        return text(
            StatusCode::BAD_REQUEST,
            "Token is malformed and cannot be decoded",
        );
    }
    let Some(entry) = state.rpts.get(&token).map(|e| e.value().clone()) else {
        return text(StatusCode::NOT_FOUND, "Resource not found");
    };
    let (resource_id, scopes, exp) = entry;
    if state
        .resources
        .get(&resource_id)
        .is_none_or(|r| r.pat != pat)
    {
        return json_resp(
            StatusCode::UNAUTHORIZED,
            json!({"error": "The resource is not associated with the PAT"}),
        );
    }
    let active = chrono::Utc::now().timestamp() <= exp;
    json_resp(
        StatusCode::OK,
        json!({"active": active, "token_type": "pension_dashboard_rpt", "exp": exp,
               "iss": "https://cas-simulator.example.org",
               "permissions": [{"resource_id": resource_id, "resource_scopes": scopes, "exp": exp}]}),
    )
}

async fn token(req: Request<Incoming>, state: &CasState) -> Response<Body> {
    let Some(body) = body_bytes(req).await else {
        return json_resp(StatusCode::BAD_REQUEST, json!({"error": "invalid_request"}));
    };
    let Ok(mut form) = serde_urlencoded::from_bytes::<TokenForm>(&body) else {
        return json_resp(StatusCode::BAD_REQUEST, json!({"error": "invalid_request"}));
    };
    // A UAT standing for one of the stub's is swapped as that one.
    if let Some(stub) = form
        .assertion
        .as_deref()
        .and_then(crate::magic::aliased_uat)
    {
        form.assertion = Some(stub.to_owned());
    }
    // The stub reads the assertion's magic values before the grant type.
    if let Some(assertion) = form.assertion.as_deref() {
        let label = state.label(assertion);
        let answer = magic(crate::magic::on_token, assertion);
        let mut r = answer.unwrap_or_else(|| token_grant(form, state));
        if let Some(l) = label {
            r.extensions_mut().insert(Credential(l));
        }
        return r;
    }
    token_grant(form, state)
}

/// `POST /token` past the magic assertions: the grant.
fn token_grant(form: TokenForm, state: &CasState) -> Response<Body> {
    match form.grant_type.as_deref() {
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {}
        Some("urn:ietf:params:oauth:grant-type:uma-ticket") => return uma_ticket(form, state),
        Some(_) => {
            return json_resp(
                StatusCode::BAD_REQUEST,
                json!({"error": "unsupported_grant_type"}),
            )
        }
        None => return json_resp(StatusCode::BAD_REQUEST, json!({"error": "invalid_request"})),
    }
    if form.scope.as_deref().is_some_and(|s| s != "uma_protection") {
        return json_resp(StatusCode::BAD_REQUEST, json!({"error": "invalid_scope"}));
    }
    let Some(assertion) = form.assertion.filter(|a| !a.is_empty()) else {
        return json_resp(StatusCode::BAD_REQUEST, json!({"error": "invalid_request"}));
    };
    // The stub's users: a fixed UAT for a fixed PAT.
    if let Some(user) = crate::magic::user_by_uat(&assertion) {
        state.pats.insert(user.pat.to_owned(), user.name.to_owned());
        return json_resp(
            StatusCode::OK,
            json!({"access_token": user.pat, "token_type": "pension_dashboard_pat",
                   "id_token": null, "upgraded": null, "pct": null}),
        );
    }
    let Some(claims) = pdp_provider::wire::jwt::unverified_claims(&assertion) else {
        return json_resp(StatusCode::BAD_REQUEST, json!({"error": "invalid_grant"}));
    };
    let Some(sub) = claims
        .get("sub")
        .and_then(|s| s.as_str())
        .map(str::to_owned)
    else {
        return text(StatusCode::NOT_FOUND, "User not found");
    };
    if claims
        .get("exp")
        .and_then(|e| e.as_i64())
        .is_some_and(|e| e < chrono::Utc::now().timestamp())
    {
        return json_resp(StatusCode::BAD_REQUEST, json!({"error": "invalid_grant"}));
    }
    let pat = state
        .pat_by_sub
        .entry(sub.clone())
        .or_insert_with(|| {
            let now = chrono::Utc::now().timestamp();
            mint(json!({"sub": sub, "iat": now, "exp": now + 548 * 86_400,
                        "jti": uuid::Uuid::new_v4(), "scope": "uma_protection"}))
        })
        .clone();
    state.pats.insert(pat.clone(), sub);
    json_resp(
        StatusCode::OK,
        json!({"access_token": pat, "token_type": "pension_dashboard_pat",
               "id_token": null, "upgraded": null, "pct": null}),
    )
}

#[derive(Deserialize)]
struct RegisterBody {
    name: String,
    description: String,
    match_status: String,
    resource_scopes: Vec<String>,
    #[serde(default)]
    inbound_request_id: Option<String>,
}

fn pei_ok(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("urn:pei:") else {
        return false;
    };
    let mut parts = rest.split(':');
    let guid = |p: Option<&str>| {
        p.is_some_and(|g| {
            uuid::Uuid::try_parse(g).is_ok() && g.len() == 36 && g == g.to_ascii_lowercase()
        })
    };
    guid(parts.next()) && guid(parts.next()) && parts.next().is_none()
}

async fn register(req: Request<Incoming>, state: &CasState, xid: &str) -> Response<Body> {
    let Some(pat) = bearer(&req) else {
        return text(StatusCode::BAD_REQUEST, "Bearer token required");
    };
    if let Some(r) = magic(crate::magic::on_register, &pat) {
        return r;
    }
    if let Err(r) = state.pat_owner(&pat) {
        return *r;
    }
    let Some(body) = body_bytes(req).await else {
        return text(StatusCode::BAD_REQUEST, "Unreadable body");
    };
    let Ok(b) = serde_json::from_slice::<RegisterBody>(&body) else {
        return text(StatusCode::BAD_REQUEST, "Malformed request");
    };
    let scopes_ok = !b.resource_scopes.is_empty()
        && b.resource_scopes
            .iter()
            .all(|s| matches!(s.as_str(), "owner" | "value" | "delegate"));
    if !pei_ok(&b.name)
        || !matches!(b.match_status.as_str(), "match-yes" | "match-possible")
        || !scopes_ok
        || b.description.is_empty()
    {
        return text(StatusCode::BAD_REQUEST, "Invalid resource");
    }
    // As MaPS' stub (`RegisterService.upsertFind`): an X-Request-ID that created a resource is a
    // 409 before the name is looked up, so a provider that reuses one is caught even for a PeI
    // already registered; an ID is used once it creates one.
    if state.used_request_ids.contains_key(xid) {
        return text(
            StatusCode::CONFLICT,
            &format!("xRequestId: {xid} already used!"),
        );
    }
    if let Some(existing) = state.by_name.get(&b.name) {
        return json_resp(StatusCode::OK, json!({"resource_id": existing.value()}));
    }
    if state.used_request_ids.insert(xid.to_owned(), ()).is_some() {
        return text(
            StatusCode::CONFLICT,
            &format!("xRequestId: {xid} already used!"),
        );
    }
    // 37 characters: never a bare UUID.
    let resource_id = format!("r{}", uuid::Uuid::new_v4().hyphenated());
    match state.by_name.entry(b.name.clone()) {
        dashmap::mapref::entry::Entry::Occupied(e) => {
            return json_resp(StatusCode::OK, json!({"resource_id": e.get()}));
        }
        dashmap::mapref::entry::Entry::Vacant(v) => {
            v.insert(resource_id.clone());
        }
    }
    state
        .log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Registered {
            name: b.name.clone(),
            inbound_request_id: b.inbound_request_id.clone().unwrap_or_default(),
        });
    state.resources.insert(
        resource_id.clone(),
        Resource {
            resource_id: resource_id.clone(),
            name: b.name,
            description: b.description,
            match_status: b.match_status,
            resource_scopes: b.resource_scopes,
            inbound_request_id: b.inbound_request_id.unwrap_or_default(),
            pat,
            deleted: None,
        },
    );
    let base = state
        .base_url
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut r = json_resp(StatusCode::CREATED, json!({"resource_id": resource_id}));
    if let Ok(v) = http::HeaderValue::from_str(&format!("{base}/rreguri/{resource_id}")) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Checks the PAT owns resource `id`, after the stub's magic PATs (`check`).
fn owned(
    req: &Request<Incoming>,
    state: &CasState,
    id: &str,
    check: fn(&str) -> Option<crate::magic::Scripted>,
) -> Result<(), Box<Response<Body>>> {
    let Some(pat) = bearer(req) else {
        return Err(Box::new(text(
            StatusCode::BAD_REQUEST,
            "Bearer token required",
        )));
    };
    if let Some(r) = magic(check, &pat) {
        return Err(Box::new(r));
    }
    state.pat_owner(&pat)?;
    match state.resources.get(id) {
        None => Err(Box::new(text(StatusCode::NOT_FOUND, "Resource not found"))),
        Some(r) if r.deleted.is_some() => {
            Err(Box::new(text(StatusCode::NOT_FOUND, "Resource not found")))
        }
        Some(r) if r.pat != pat => Err(Box::new(json_resp(
            StatusCode::UNAUTHORIZED,
            json!({"error": "The resource is not associated with the PAT"}),
        ))),
        Some(_) => Ok(()),
    }
}

async fn update(req: Request<Incoming>, state: &CasState, id: &str) -> Response<Body> {
    if let Err(r) = owned(&req, state, id, crate::magic::on_update) {
        return *r;
    }
    let body = body_bytes(req).await.unwrap_or_default();
    let status = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("match_status")
                .and_then(|s| s.as_str())
                .map(str::to_owned)
        });
    if status.as_deref() != Some("match-yes") {
        return text(StatusCode::BAD_REQUEST, "Only match-yes is allowed");
    }
    if let Some(mut r) = state.resources.get_mut(id) {
        r.match_status = "match-yes".into();
    }
    json_resp(StatusCode::OK, json!({"resource_id": id}))
}

fn delete(req: Request<Incoming>, state: &CasState, id: &str) -> Response<Body> {
    if let Err(r) = owned(&req, state, id, crate::magic::on_delete) {
        return *r;
    }
    let reason = req
        .uri()
        .query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|pairs| {
            pairs
                .into_iter()
                .find(|(k, _)| k == "deletion_reason")
                .map(|p| p.1)
        });
    let Some(mut r) = state.resources.get_mut(id) else {
        return text(StatusCode::NOT_FOUND, "Resource not found");
    };
    let allowed: &[&str] = if r.match_status == "match-yes" {
        &["match-withdrawn", "asset-removed"]
    } else {
        &["match-no", "match-timeout", "asset-removed"]
    };
    match reason {
        Some(reason) if allowed.contains(&reason.as_str()) => {
            r.deleted = Some(reason);
            let name = r.name.clone();
            drop(r);
            state.by_name.remove(&name);
            respond(StatusCode::NO_CONTENT, "text/plain", Bytes::new())
        }
        _ => text(StatusCode::BAD_REQUEST, "Invalid deletion_reason"),
    }
}

async fn control(req: Request<Incoming>, state: Arc<CasState>) -> Response<Body> {
    match (req.method().clone(), req.uri().path()) {
        (Method::GET, "/__sim/registrations") => {
            let since = req.uri().query().and_then(|q| {
                q.split('&')
                    .find_map(|kv| kv.strip_prefix("since="))
                    .and_then(|n| n.parse::<usize>().ok())
            });
            let list = match since {
                Some(n) => {
                    let (registrations, next) = state.registered_since(n);
                    Ok(json!({"registrations": registrations, "next": next}))
                }
                None => serde_json::to_value(state.registrations()),
            };
            json_resp(StatusCode::OK, list.unwrap_or_default())
        }
        (Method::GET, "/__sim/calls") => json_resp(
            StatusCode::OK,
            serde_json::to_value(state.calls()).unwrap_or_default(),
        ),
        (Method::POST, "/__sim/faults") => {
            let body = body_bytes(req).await.unwrap_or_default();
            match serde_json::from_slice::<Faults>(&body) {
                Ok(f) => {
                    state.set_faults(f);
                    text(StatusCode::NO_CONTENT, "")
                }
                Err(_) => text(StatusCode::BAD_REQUEST, "bad faults"),
            }
        }
        (Method::POST, "/__sim/jwks") => {
            let body = body_bytes(req).await.unwrap_or_default();
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(j) if j["keys"].is_array() => {
                    state.publish_jwks(&j);
                    text(StatusCode::NO_CONTENT, "")
                }
                _ => text(
                    StatusCode::BAD_REQUEST,
                    "expected a JWK set {\"keys\": [...]}",
                ),
            }
        }
        (Method::GET, "/__sim/reports") => json_resp(
            StatusCode::OK,
            serde_json::to_value(state.reports.received()).unwrap_or_default(),
        ),
        (Method::POST, "/configuration") => configuration(req, &state).await,
        (Method::DELETE, "/__sim/faults") => {
            state.set_faults(Faults::default());
            text(StatusCode::NO_CONTENT, "")
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

/// HTTP/2 streams per connection the simulator allows.
const MAX_STREAMS: u32 = 4_096;

/// The provider JWK set a standalone simulator publishes at start: the file given (a JWK set, as
/// `pdp-provider jwks` prints it), or else the public key of the dev PKI's view signing key in
/// `certs` when there is one. `None` when neither.
pub fn provider_jwks(
    certs: &std::path::Path,
    jwks_file: Option<&std::path::Path>,
) -> Result<Option<serde_json::Value>, SimError> {
    let unreadable = |path: &std::path::Path, reason: String| {
        SimError::Tls(pdp_provider::tls::TlsError::Pem {
            path: path.to_owned(),
            reason,
        })
    };
    if let Some(path) = jwks_file {
        let text = std::fs::read(path).map_err(|e| unreadable(path, e.to_string()))?;
        let jwks: serde_json::Value =
            serde_json::from_slice(&text).map_err(|_| unreadable(path, "not a JWK set".into()))?;
        if !jwks["keys"].is_array() {
            return Err(unreadable(path, "not a JWK set {\"keys\": [...]}".into()));
        }
        return Ok(Some(jwks));
    }
    let key = certs.join(pdp_provider::tls::pki::files::VIEW_SIGNING_KEY);
    if !key.exists() {
        return Ok(None);
    }
    let signer = pdp_provider::view_data::token::Signer::load(
        &key,
        pdp_provider::view_data::token::TokenSettings {
            issuer: String::new(),
            audience: String::new(),
            ttl_s: 0,
            algorithm: "RS256".into(),
        },
    )?;
    Ok(Some(signer.jwks().clone()))
}

/// Why the CAS simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Its TLS material, or a JWK set file to publish.
    #[error(transparent)]
    Tls(#[from] pdp_provider::tls::TlsError),
    /// The provider's view signing key, whose JWK set it publishes.
    #[error(transparent)]
    Sign(#[from] pdp_provider::view_data::token::SignError),
    /// A listener could not bind.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// `pdp-provider sim cas`: the simulator on its own, with the dev PKI in `certs`, publishing the
/// provider's JWK set (from `jwks`, or the dev view signing key) until SIGTERM or Ctrl-C.
pub async fn serve_standalone(
    listen: SocketAddr,
    control: SocketAddr,
    certs: &std::path::Path,
    jwks: Option<&std::path::Path>,
) -> Result<(), SimError> {
    let sim = CasSim::start(listen, control, &crate::tls::sim_tls(certs)).await?;
    let from = match jwks {
        Some(f) => f.display().to_string(),
        None => certs
            .join(pdp_provider::tls::pki::files::VIEW_SIGNING_KEY)
            .display()
            .to_string(),
    };
    match provider_jwks(certs, jwks)? {
        Some(j) => {
            sim.state.publish_jwks(&j);
            let kids: Vec<&str> = j["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k["kid"].as_str())
                .collect();
            eprintln!(
                "publishing the provider's JWK set at /jwk_uri (from {from}; kid {})",
                kids.join(", ")
            );
        }
        None => eprintln!(
            "no provider JWK set to publish ({from} not found): views will not verify until one is POSTed to /__sim/jwks"
        ),
    }
    eprintln!(
        "CAS simulator on https://{} (mTLS); control on http://{}",
        sim.addr, sim.control_addr
    );
    let token = CancellationToken::new();
    pdp_provider::shutdown::on_signal(token.clone()).await;
    sim.stop();
    Ok(())
}

// === impl CasSim ===

impl CasSim {
    /// Starts the simulator on `listen` (mTLS with `tls`) and its control listener.
    pub async fn start(
        listen: SocketAddr,
        control_listen: SocketAddr,
        tls: &TlsConfig,
    ) -> Result<CasSim, SimError> {
        let acceptor = TlsAcceptor::from(pdp_provider::tls::server::server_config(tls)?);
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| SimError::Bind { addr, source })
        };
        let listener = bind(listen).await?;
        let control_listener = bind(control_listen).await?;
        let addr = listener.local_addr().expect("bound");
        let control_addr = control_listener.local_addr().expect("bound");
        let state = Arc::new(CasState::default());
        *state.base_url.lock().unwrap_or_else(|e| e.into_inner()) =
            format!("https://127.0.0.1:{}", addr.port());
        let shutdown = CancellationToken::new();
        {
            let (state, shutdown) = (state.clone(), shutdown.clone());
            tokio::spawn(async move {
                loop {
                    let tcp = tokio::select! {
                        r = listener.accept() => match r { Ok((t, _)) => t, Err(_) => continue },
                        _ = shutdown.cancelled() => break,
                    };
                    let (acceptor, state) = (acceptor.clone(), state.clone());
                    tokio::spawn(async move {
                        let Ok(Ok(tls)) =
                            tokio::time::timeout(Duration::from_secs(5), acceptor.accept(tcp))
                                .await
                        else {
                            return;
                        };
                        let svc = service_fn(move |req| {
                            let state = state.clone();
                            async move { Ok::<_, Infallible>(handle(req, state).await) }
                        });
                        // A provider multiplexes its CAS calls on one HTTP/2 connection: with
                        // hyper's default of 200 streams and injected latency, the simulator
                        // itself would be the ceiling of a load test.
                        let mut builder =
                            hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                        builder.http2().max_concurrent_streams(MAX_STREAMS);
                        let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                    });
                }
            });
        }
        {
            let (state, shutdown) = (state.clone(), shutdown.clone());
            tokio::spawn(async move {
                loop {
                    let tcp = tokio::select! {
                        r = control_listener.accept() => match r { Ok((t, _)) => t, Err(_) => continue },
                        _ = shutdown.cancelled() => break,
                    };
                    let state = state.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| {
                            let state = state.clone();
                            async move { Ok::<_, Infallible>(control(req, state).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tcp), svc)
                            .await;
                    });
                }
            });
        }
        Ok(CasSim {
            addr,
            control_addr,
            state,
            shutdown,
        })
    }

    /// The base URL providers are configured with.
    pub fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// Stops both listeners.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for CasSim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
