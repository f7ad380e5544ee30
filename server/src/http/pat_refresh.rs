//! `POST /pat-refresh` (wire contract §3.3, reconstructed): the CAS sends a user's new PAT with
//! the SHA-256 of the old one; every stored copy of the old PAT is replaced, sealed.
//!
//! `204` when stored PATs were replaced, `404` when no stored PAT has that hash, `400` when
//! malformed.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;

use super::respond::{with_body, ApiError, Body};
use super::{App, RequestCx};
use crate::wire::problem::ErrorCode;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatRefresh {
    pat: String,
    previous_pat_sha256: String,
}

/// Handles one PAT refresh.
pub async fn handle(
    req: Request<Incoming>,
    cx: &RequestCx,
    app: &App,
) -> Result<Response<Body>, ApiError> {
    if app.view.is_none() {
        return Err(ApiError::not_found("no such endpoint"));
    }
    let body = super::read_body(req.into_body(), 16 * 1024, app.limits.body_timeout).await?;
    let r: PatRefresh = serde_json::from_slice(&body).map_err(|_| {
        ApiError::bad_request(
            ErrorCode::InvalidJson,
            "body: expected {\"pat\", \"previous_pat_sha256\"}",
        )
    })?;
    let sha_ok = r.previous_pat_sha256.len() == 64
        && r.previous_pat_sha256.bytes().all(|b| b.is_ascii_hexdigit());
    let parts = r.pat.split('.').count();
    if !sha_ok || parts != 3 {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRequest,
            "previous_pat_sha256: 64 hex digits; pat: a compact JWT",
        ));
    }
    let expires = crate::cas::Pat::new(r.pat.clone()).expires_at();
    let sha = r.previous_pat_sha256.to_ascii_lowercase();
    let replaced = app
        .store
        .refresh_pat(&sha, &r.pat, expires)
        .await
        .map_err(|e| super::respond::store_failed(&e, "PAT refresh"))?;
    if replaced == 0 {
        return Err(ApiError::not_found("no stored PAT has that hash"));
    }
    tracing::info!(request_id = %cx.transaction_id, replaced, "PAT refreshed");
    Ok(with_body(
        StatusCode::NO_CONTENT,
        "application/json",
        Vec::new(),
        &cx.transaction_id,
    ))
}
