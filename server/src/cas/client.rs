//! The CAS client: reqwest with rustls and the provider's identity (wire contract §4).
//!
//! Every call carries a new `X-Request-ID`, is timed, counted and audited (outbound, with the
//! related find request ID), and has its failure sorted at the source. Response bodies of
//! errors are never read into logs.

use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::{RequestBuilder, StatusCode};

use super::{CasError, Pat};
use crate::audit::{AuditRecord, Direction};
use crate::config::CasConfig;
use crate::matching::MatchStatus;
use crate::store::Store;
use crate::tls::client::{mtls_client, ClientError, Identity};
pub use crate::wire::cas::{Introspection, Permission};
use crate::wire::cas::{
    PermRequest, PermResponse, RegisterRequest, ResourceResponse, TokenResponse, UpdateRequest,
};
use crate::wire::find::Uat;

/// The CAS client.
#[derive(Clone)]
pub struct CasClient {
    /// Shared by every clone, and replaced whole when the provider's identity is reloaded.
    pub(super) http: std::sync::Arc<arc_swap::ArcSwap<reqwest::Client>>,
    pub(super) base: String,
    pub(super) store: Store,
}

// === impl CasClient ===

impl CasClient {
    /// Builds the client from config: the provider's certificate and key, the ecosystem CA.
    pub fn new(config: &CasConfig, store: Store) -> Result<Self, ClientError> {
        Ok(Self {
            http: std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(http_client(config)?)),
            base: config.base_url.trim_end_matches('/').to_owned(),
            store,
        })
    }

    /// Reads the provider's certificate, key and the CA again: calls from now on use them (every
    /// clone of this client too). On an error the old identity stays.
    pub fn reload(&self, config: &CasConfig) -> Result<(), ClientError> {
        self.http.store(std::sync::Arc::new(http_client(config)?));
        Ok(())
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends one call: new X-Request-ID, timing, metrics, audit, failure sorting.
    async fn send(
        &self,
        endpoint: &'static str,
        request_id: Option<&str>,
        req: RequestBuilder,
    ) -> Result<Bytes, CasError> {
        let call = Outbound::start();
        let result = req
            .header("X-Request-ID", &call.transaction_id)
            .send()
            .await;
        let (status, outcome) = match result {
            Ok(resp) => {
                let status = resp.status();
                let retry_after = retry_after(&resp);
                let outcome = if status.is_success() {
                    resp.bytes()
                        .await
                        .map_err(|e| CasError::Unreachable(kind(&e)))
                } else {
                    Err(sort_status(endpoint, status, retry_after))
                };
                (status.as_u16(), outcome)
            }
            Err(e) => (0, Err(CasError::Unreachable(kind(&e)))),
        };
        let audited = match &outcome {
            Ok(_) => "ok".into(),
            Err(e) => e.reason(),
        };
        self.recorded(endpoint, call, request_id, status, audited);
        outcome
    }

    /// Counts and audits one outbound call: the find it was for, its status, and its outcome as
    /// audited.
    pub(super) fn recorded(
        &self,
        endpoint: &'static str,
        call: Outbound,
        request_id: Option<&str>,
        status: u16,
        outcome: String,
    ) {
        crate::metrics::cas_call(endpoint, status, call.started.elapsed());
        self.store.audit(AuditRecord {
            transaction_id: call.transaction_id,
            request_id: request_id.map(str::to_owned),
            direction: Direction::Outbound,
            party: "cas".into(),
            endpoint: endpoint.into(),
            received_at: call.received_at,
            responded_at: crate::now_micros(),
            status,
            outcome,
        });
    }

    /// 4.1: swaps a UAT for a PAT.
    pub async fn token(&self, uat: &Uat, request_id: &str) -> Result<Pat, CasError> {
        let req = self.http.load().post(self.url("/token")).form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", uat.expose()),
            ("scope", "uma_protection"),
        ]);
        let body = self.send("POST /token", Some(request_id), req).await?;
        let t: TokenResponse = serde_json::from_slice(&body).map_err(|_| CasError::Malformed)?;
        Ok(Pat::new(t.access_token))
    }

    /// 4.2: registers a PeI; `201` or `200` (already registered) both give its resource id.
    pub async fn register(
        &self,
        pat: &Pat,
        pei: &str,
        description: &str,
        status: MatchStatus,
        request_id: &str,
    ) -> Result<String, CasError> {
        let req = self
            .http
            .load()
            .post(self.url("/rreguri"))
            .bearer_auth(pat.expose())
            .json(&RegisterRequest {
                name: pei,
                description,
                match_status: status.as_str(),
                resource_scopes: ["value", "owner", "delegate"],
                inbound_request_id: request_id,
            });
        let body = self.send("POST /rreguri", Some(request_id), req).await?;
        let r: ResourceResponse = serde_json::from_slice(&body).map_err(|_| CasError::Malformed)?;
        Ok(r.resource_id)
    }

    /// 4.3: a possible match resolved as yes.
    pub async fn update_to_yes(
        &self,
        pat: &Pat,
        resource_id: &str,
        request_id: &str,
    ) -> Result<(), CasError> {
        let req = self
            .http
            .load()
            .patch(self.url(&format!("/rreguri/{resource_id}")))
            .bearer_auth(pat.expose())
            .json(&UpdateRequest {
                match_status: "match-yes",
                inbound_request_id: request_id,
            });
        self.send("PATCH /rreguri", Some(request_id), req).await?;
        Ok(())
    }

    /// 4.4: de-registers a PeI with a deletion reason.
    pub async fn deregister(
        &self,
        pat: &Pat,
        resource_id: &str,
        reason: &str,
        request_id: Option<&str>,
    ) -> Result<(), CasError> {
        let req = self
            .http
            .load()
            .delete(self.url(&format!("/rreguri/{resource_id}")))
            .query(&[("deletion_reason", reason)])
            .bearer_auth(pat.expose());
        self.send("DELETE /rreguri", request_id, req).await?;
        Ok(())
    }
}

impl CasClient {
    /// 4.5: a permission ticket for the owner's resource (`value` and `owner`).
    pub async fn perm(
        &self,
        pat: &Pat,
        resource_id: &str,
        request_id: Option<&str>,
        timeout: Duration,
    ) -> Result<String, CasError> {
        let req = self
            .http
            .load()
            .post(self.url("/perm"))
            .bearer_auth(pat.expose())
            .timeout(timeout)
            .json(&PermRequest {
                resource_id,
                resource_scopes: ["value", "owner"],
            });
        let body = self.send("POST /perm", request_id, req).await?;
        let r: PermResponse = serde_json::from_slice(&body).map_err(|_| CasError::Malformed)?;
        Ok(r.ticket)
    }

    /// 4.6: introspects an RPT with the owner's PAT.
    pub async fn introspect(
        &self,
        pat: &Pat,
        rpt: &str,
        request_id: Option<&str>,
        timeout: Duration,
    ) -> Result<Introspection, CasError> {
        let req = self
            .http
            .load()
            .post(self.url("/introspect"))
            .bearer_auth(pat.expose())
            .timeout(timeout)
            .form(&[("token", rpt)]);
        let body = self.send("POST /introspect", request_id, req).await?;
        serde_json::from_slice(&body).map_err(|_| CasError::Malformed)
    }

    /// The CAS token endpoint (`as_uri` and `aud` default).
    pub fn token_endpoint(&self) -> String {
        self.url("/token")
    }
}

/// The mTLS client with the provider's identity.
fn http_client(config: &CasConfig) -> Result<reqwest::Client, ClientError> {
    let identity = Identity {
        ca: &config.ca,
        cert: &config.client_cert,
        key: &config.client_key,
    };
    mtls_client(identity, |b| {
        b.timeout(Duration::from_millis(config.call_timeout_ms))
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .pool_idle_timeout(Duration::from_secs(50))
    })
}

pub(super) fn kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

/// The wait a `Retry-After` header asks for, in seconds (the form the ecosystem uses).
pub(super) fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

fn sort_status(endpoint: &str, status: StatusCode, retry_after: Option<Duration>) -> CasError {
    match status.as_u16() {
        s @ (429 | 500 | 502 | 503 | 504) => CasError::Unavailable {
            status: s,
            retry_after,
        },
        409 if endpoint == "POST /rreguri" => CasError::Conflict,
        s => CasError::Refused { status: s },
    }
}

/// One outbound call's transaction ID (a new one for every call, retries included) and when it
/// left, taken before it is sent.
pub(super) struct Outbound {
    /// Its X-Request-ID.
    pub(super) transaction_id: String,
    received_at: i64,
    started: Instant,
}

impl Outbound {
    /// A call about to leave.
    pub(super) fn start() -> Self {
        Self {
            transaction_id: uuid::Uuid::new_v4().hyphenated().to_string(),
            received_at: crate::now_micros(),
            started: Instant::now(),
        }
    }
}
