//! `POST /find-requests`: parse, validate, match, append to the store, and ACK with `202` once
//! the append is durable (wire contract §3.1, CoCo2.1.1).
//!
//! Matching costs microseconds, so it is decided before the commit: a no-match find is stored
//! as its ACK's audit record alone (outcome `no-match`), already at its end, and its find data
//! never reaches the disk (CoCo2.2.2 by construction). A find with matches is stored sealed and
//! queued for the pipeline's CAS work.

use http::{header, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::respond::{with_body, AlreadyAudited, ApiError, Body};
use super::{App, RequestCx};
use crate::audit::{AuditRecord, Direction};
use crate::store::{AppendError, AppendOutcome, Decided, NewFind};
use crate::wire::find::{self, FindError};
use crate::wire::problem::{Accepted, ErrorCode};

/// Handles one find request.
pub async fn handle(
    req: Request<Incoming>,
    cx: &RequestCx,
    app: &App,
) -> Result<Response<Body>, ApiError> {
    if !is_json(req.headers().get(header::CONTENT_TYPE)) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::InvalidContentType,
            "Content-Type: must be application/json",
        ));
    }
    let limit = app.limits.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    let body = super::read_body(req.into_body(), limit, app.limits.body_timeout).await?;
    let parsed = find::parse(&body).map_err(|e| match e {
        FindError::InvalidJson => {
            ApiError::bad_request(ErrorCode::InvalidJson, "body: not valid JSON")
        }
        FindError::InvalidUat(d) => ApiError::bad_request(ErrorCode::InvalidUat, d),
        FindError::InvalidFindData(d) => ApiError::bad_request(ErrorCode::InvalidFindData, d),
    })?;
    let request_id = cx.transaction_id.clone();
    if !app.matcher.complete() {
        let detail = "member data cannot be read; retry later";
        return Err(ApiError::unavailable(detail, app.limits.retry_after_s));
    }
    let matched = match app.matcher.find_matches(&parsed.find_data).await {
        Ok(m) => !m.is_empty(),
        Err(e) => {
            tracing::warn!(transaction_id = %request_id, error = %e, "find not matched; refused");
            let detail = "member data cannot be read; retry later";
            return Err(ApiError::unavailable(detail, app.limits.retry_after_s));
        }
    };
    drop(parsed);
    let audit = AuditRecord {
        transaction_id: request_id.clone(),
        request_id: Some(request_id.clone()),
        direction: Direction::Inbound,
        party: cx.party.to_string(),
        endpoint: "POST /find-requests".into(),
        received_at: cx.received_at,
        responded_at: 0,
        status: 202,
        outcome: "ack".into(),
    };
    let find = NewFind {
        request_id: request_id.clone(),
        received_at: cx.received_at,
        decided: if matched {
            Decided::Matched(body)
        } else {
            Decided::NoMatch
        },
    };
    let outcome = app.store.append(find, audit).await.map_err(|e| match e {
        AppendError::Overloaded => shed(app),
        AppendError::Closed => {
            ApiError::unavailable("endpoint is shutting down", app.limits.retry_after_s)
        }
        // Nothing of the batch was stored: a retry can succeed. The writer logs the cause.
        AppendError::Unavailable(_) | AppendError::Commit(_) => ApiError::unavailable(
            "find request not stored; retry later",
            app.limits.retry_after_s,
        ),
    })?;
    if outcome == AppendOutcome::Created {
        if matched {
            app.wake_pipeline.notify_one();
        } else {
            // At its end already: nothing is sent for a no-match (CoCo2.2.2).
            crate::metrics::no_match_completed();
        }
    }
    let body = serde_json::to_vec(&Accepted {
        message: "ACCEPTED",
        datetimestamp: &crate::datetimestamp(crate::now_micros()),
    })
    .expect("ACK serialises");
    let mut resp = with_body(StatusCode::ACCEPTED, "application/json", body, &request_id);
    resp.extensions_mut().insert(AlreadyAudited);
    resp.extensions_mut().insert(outcome);
    Ok(resp)
}

fn shed(app: &App) -> ApiError {
    ApiError::unavailable("find queue is full; retry later", app.limits.retry_after_s)
}

/// `application/json`, with or without parameters, any case.
fn is_json(v: Option<&http::HeaderValue>) -> bool {
    v.and_then(|v| v.to_str().ok())
        .and_then(|s| s.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}
