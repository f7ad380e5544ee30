//! `GET /view-data/{assetGuid}?scope=owner`: the UMA flow as MaPS' dashboard performs it, then
//! a signed view data token (wire contract §3.2, CoCo2.1.3, 2.2.4).
//!
//! Order: `400` for a bad X-Request-ID, asset GUID or scope; `404` for an unknown, de-registered
//! or flagged PeI, with no CAS call; no RPT (or an empty Bearer): a permission ticket from the
//! CAS and `401` with the UMA challenge; otherwise the RPT is introspected with the owner's PAT
//! and checked (active, token type, expiry, this resource, `owner` scope), an invalid or
//! insufficient one getting `401` with a fresh ticket; CAS slow or down: a prompt `503`. The whole
//! view runs inside `view.budget_ms`.

use std::collections::HashMap;
use std::time::Duration;

use http::{header, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::time::Instant;
use uuid::Uuid;

use super::respond::{with_body, ApiError, Body, RelatedRequest};
use super::RequestCx;
use crate::cas::client::{CasClient, Introspection};
use crate::cas::{CasError, Pat};
use crate::store::{
    Calculation, CalculationKind, MatchStatus, PeiState, SchemeState, Store, StoreError, StoredPei,
};
use crate::view_data::payload::{self, Context};
use crate::view_data::token::Signer;
use crate::view_data::working_days::{Calendar, Nation};
use crate::wire::problem::ErrorCode;
use crate::wire::view::{uma_challenge, ViewDataResponse};

/// What the view endpoint needs.
pub struct ViewService {
    /// PeIs, PATs, pensions (reads from the pool, beside the writer).
    pub store: Store,
    /// Tickets and introspection.
    pub cas: CasClient,
    /// Signs view data tokens.
    pub signer: std::sync::Arc<arc_swap::ArcSwap<Signer>>,
    /// Bank holidays.
    pub calendar: Calendar,
    /// Nations by holdername.
    pub nations: HashMap<Uuid, Nation>,
    /// The nation of other holdernames.
    pub default_nation: Nation,
    /// `as_uri` of the UMA challenge.
    pub as_uri: String,
    /// The whole view at most.
    pub budget: Duration,
    /// Permission ticket time-out.
    pub perm_timeout: Duration,
    /// Introspection time-out.
    pub introspect_timeout: Duration,
    /// `Retry-After` on 503.
    pub retry_after_s: u64,
    /// The view path registered with PDP with its trailing `/` (`/view-data/` by default).
    pub path_prefix: String,
}

/// A store failure, as the view's `503` (an outage) or `500`.
fn store_failed(e: StoreError) -> ApiError {
    super::respond::store_failed(&e, "view")
}

/// The Bearer token, `None` when absent, another scheme, or empty.
fn bearer(req: &Request<Incoming>) -> Option<String> {
    let v = req
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, token) = v.split_once(' ').unwrap_or((v, ""));
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .then(|| token.trim().to_owned())
}

/// The PeI with this asset GUID if it is served now: registered (with its resource and PAT) in
/// a scheme that is active. A de-registered, flagged or suspended one is not found, from the
/// moment it is set (CoCo2.2.4, 3.2.5).
async fn served_pei(svc: &ViewService, asset: Uuid) -> Result<StoredPei, ApiError> {
    let gone = || ApiError::not_found("no pension identifier with this asset GUID");
    let pei = svc
        .store
        .pei_by_asset_guid(asset)
        .await
        .map_err(store_failed)?
        .filter(|p| {
            p.state == PeiState::Registered && p.resource_id.is_some() && p.pat_id.is_some()
        })
        .ok_or_else(gone)?;
    let scheme = svc
        .store
        .scheme_state(pei.matched.holdername)
        .await
        .map_err(store_failed)?;
    if scheme != SchemeState::Active {
        return Err(gone());
    }
    Ok(pei)
}

fn scope_ok(query: Option<&str>) -> bool {
    let Some(q) = query else { return true };
    serde_urlencoded::from_str::<Vec<(String, String)>>(q)
        .map(|pairs| {
            pairs
                .iter()
                .filter(|(k, _)| k == "scope")
                .all(|(_, v)| v == "owner")
        })
        .unwrap_or(false)
}

// === impl ViewService ===

impl ViewService {
    fn unavailable(&self) -> ApiError {
        ApiError::unavailable(
            "the consent and authorisation service did not answer in time; retry later",
            self.retry_after_s,
        )
    }

    fn remaining(&self, deadline: Instant, call: Duration) -> Result<Duration, ApiError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.unavailable());
        }
        Ok(left.min(call))
    }

    /// A fresh permission ticket, as a `401` challenge.
    async fn challenge(&self, pat: &Pat, pei: &StoredPei, deadline: Instant) -> ApiError {
        let resource_id = pei.resource_id.clone().unwrap_or_default();
        let timeout = match self.remaining(deadline, self.perm_timeout) {
            Ok(t) => t,
            Err(e) => return e,
        };
        match self
            .cas
            .perm(pat, &resource_id, Some(&pei.request_id), timeout)
            .await
        {
            Ok(ticket) => {
                let header = uma_challenge(&self.as_uri, &ticket);
                // MaPS splits on commas and strips quotes, and a header cannot carry control
                // characters: a ticket that breaks either would be a 401 nobody can answer.
                if ticket.contains(['"', ',']) || http::HeaderValue::from_str(&header).is_err() {
                    tracing::error!(request_id = %pei.request_id, "CAS ticket unusable in WWW-Authenticate");
                    return self.unavailable();
                }
                ApiError::challenge(header)
            }
            Err(e) => {
                tracing::warn!(request_id = %pei.request_id, reason = %e.reason(), "permission ticket failed");
                self.unavailable()
            }
        }
    }

    /// The RPT's grant: whether it covers values (`Some`), or the answer instead: a UMA
    /// challenge (no RPT, or one the CAS refuses or that does not cover this PeI), or a `503`
    /// when the CAS cannot say.
    async fn authorise(
        &self,
        req: &Request<Incoming>,
        pat: &Pat,
        pei: &StoredPei,
        deadline: Instant,
    ) -> Result<bool, ApiError> {
        let Some(rpt) = bearer(req) else {
            return Err(self.challenge(pat, pei, deadline).await);
        };
        let timeout = self.remaining(deadline, self.introspect_timeout)?;
        match self
            .cas
            .introspect(pat, &rpt, Some(&pei.request_id), timeout)
            .await
        {
            Ok(i) => match self.granted(&i, pei) {
                Some(v) => Ok(v),
                None => Err(self.challenge(pat, pei, deadline).await),
            },
            Err(CasError::Refused { .. }) => Err(self.challenge(pat, pei, deadline).await),
            Err(e) => {
                tracing::warn!(request_id = %pei.request_id, reason = %e.reason(), "introspection failed");
                Err(self.unavailable())
            }
        }
    }

    /// Records the calculation the pending values wait for (`values report` lists it), and its
    /// reporting fact.
    async fn record_pending(
        &self,
        pei: &StoredPei,
        p: payload::Pending,
        body: &crate::wire::view::ViewDataPayload,
    ) -> Result<(), ApiError> {
        let calc = Calculation {
            pei: pei.matched.pei.clone(),
            pension_asset_guid: pei.matched.pension_asset_guid,
            kind: match p.kind {
                crate::wire::view::UnavailableReason::DBC => CalculationKind::Dbc,
                _ => CalculationKind::Dcc,
            },
            started_on: p.started_on,
            due_on: p.due_on,
            completed_at: None,
        };
        let kind = calc.kind;
        // Its reporting fact once, with it (not on every view of the same pending values).
        if self
            .store
            .record_calculation(calc)
            .await
            .map_err(store_failed)?
        {
            crate::report::facts::calculation_started(&self.store, pei, kind, body);
        }
        Ok(())
    }

    /// Whether an introspection grants this PeI; and whether with the `value` scope.
    fn granted(&self, i: &Introspection, pei: &StoredPei) -> Option<bool> {
        let now = chrono::Utc::now().timestamp();
        if !i.active
            || i.token_type.as_deref() != Some("pension_dashboard_rpt")
            || i.exp.is_none_or(|e| e <= now)
        {
            return None;
        }
        let resource_id = pei.resource_id.as_deref()?;
        i.permissions
            .iter()
            .find(|p| {
                p.resource_id == resource_id
                    && p.exp.is_none_or(|e| e > now)
                    && p.resource_scopes.iter().any(|s| s == "owner")
            })
            .map(|p| p.resource_scopes.iter().any(|s| s == "value"))
    }
}

/// Handles one view request.
pub async fn handle(
    req: Request<Incoming>,
    cx: &RequestCx,
    svc: &ViewService,
) -> Result<Response<Body>, ApiError> {
    let (mut related, mut holdername) = (None, None);
    handle_inner(req, cx, svc, &mut related, &mut holdername)
        .await
        .map_err(|mut e| {
            e.related = related;
            e.holdername = holdername.map(Box::new);
            e
        })
}

async fn handle_inner(
    req: Request<Incoming>,
    cx: &RequestCx,
    svc: &ViewService,
    related_out: &mut Option<String>,
    holdername_out: &mut Option<Uuid>,
) -> Result<Response<Body>, ApiError> {
    let deadline = Instant::from_std(cx.received) + svc.budget;
    let asset = req
        .uri()
        .path()
        .strip_prefix(svc.path_prefix.as_str())
        .filter(|s| s.len() == 36)
        .and_then(|s| Uuid::try_parse(s).ok())
        .ok_or_else(|| ApiError::bad_request(ErrorCode::InvalidRequest, "assetGuid: not a GUID"))?;
    if !scope_ok(req.uri().query()) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRequest,
            "scope: must be owner",
        ));
    }
    let pei = served_pei(svc, asset).await?;
    *holdername_out = Some(pei.matched.holdername);
    let related = RelatedRequest(pei.request_id.clone());
    *related_out = Some(pei.request_id.clone());
    let pat_id = pei.pat_id.clone().unwrap_or_default();
    let pat = Pat::new(svc.store.pat(&pat_id).await.map_err(store_failed)?);

    let value_scope = svc.authorise(&req, &pat, &pei, deadline).await?;

    let pension = svc
        .store
        .pension(pei.matched.pension_asset_guid)
        .await
        .map_err(store_failed)?
        .filter(|p| p.member_id == pei.matched.member_id)
        .ok_or_else(|| ApiError::not_found("no pension identifier with this asset GUID"))?;
    let holdername = pei.matched.holdername;
    let today = chrono::Utc::now().date_naive();
    let registered_on = pei
        .registered_at
        .and_then(chrono::DateTime::from_timestamp_micros)
        .map_or(today, |d| d.date_naive());
    let (body, pending) = payload::build(
        &pension,
        Context {
            possible: pei.matched.match_status == MatchStatus::Possible,
            value_scope,
            registered_on,
            today,
            calendar: &svc.calendar,
            nation: svc.nations.get(&holdername).copied().unwrap_or(svc.default_nation),
            reference: &pei.matched.asset_guid.hyphenated().to_string(),
        },
    )
    .map_err(|e| {
        tracing::error!(request_id = %pei.request_id, field = %e.field, "stored view data does not follow the standard");
        ApiError::internal()
    })?;
    // Served only if still served now: a de-registration, a flag or a suspension that landed
    // during the CAS round trips stops this answer too (CoCo2.2.4, 3.2.5), before anything of
    // it is recorded; what is left is building and signing the answer, milliseconds.
    if served_pei(svc, asset).await?.matched.pei != pei.matched.pei {
        return Err(ApiError::not_found(
            "no pension identifier with this asset GUID",
        ));
    }
    if let Some(p) = pending {
        svc.record_pending(&pei, p, &body).await?;
    }
    let seen = crate::report::facts::ViewSeen::of(holdername, &body);
    let view_data = serde_json::to_string(&body).expect("payload serialises");
    // RSA signing takes a millisecond or two of CPU: off the runtime's threads.
    let (signer, subject) = (svc.signer.load_full(), pei.matched.pei.clone());
    let token = crate::store::blocking(move || Ok(signer.sign(&subject, &view_data)))
        .await
        .map_err(store_failed)?
        .map_err(|e| {
            tracing::error!(error = %e, "signing failed");
            ApiError::internal()
        })?;
    let out = serde_json::to_vec(&ViewDataResponse {
        view_data_token: token,
    })
    .expect("response serialises");
    let mut resp = with_body(StatusCode::OK, "application/json", out, &cx.transaction_id);
    resp.extensions_mut().insert(related);
    resp.extensions_mut().insert(seen);
    Ok(resp)
}
