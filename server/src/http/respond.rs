//! The one place a typed error becomes a status and an RFC 9457 problem body.
//!
//! Clients see the code and a field path, never a value and never internal detail; internal
//! causes are logged by transaction ID where they happen.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::store::StoreError;
use crate::wire::problem::{ErrorCode, Problem, ProblemError};

/// The body type of every response.
pub type Body = Full<Bytes>;

/// Marks a response whose audit record was already written (a find ACK rides in its commit).
#[derive(Debug, Clone, Copy)]
pub struct AlreadyAudited;

/// An error answer to an ecosystem call.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The code in `errors[0].code`.
    pub code: ErrorCode,
    /// `detail`: a field path and reason, never a value.
    pub detail: Cow<'static, str>,
    /// `Retry-After` seconds, for `503`.
    pub retry_after_s: Option<u64>,
    /// `Allow`, for `405`.
    pub allow: Option<&'static str>,
    /// `WWW-Authenticate`, for `401`.
    pub www_authenticate: Option<String>,
    /// The find request this answer relates to, for the audit record.
    pub related: Option<String>,
    /// The scheme a view's answer is about, once its PeI was found (the `holdername` label).
    /// Boxed: every handler returns this error, and it stays small.
    pub holdername: Option<Box<uuid::Uuid>>,
}

/// The find request a response relates to, for its audit record (views relate to the find that
/// created their PeI).
#[derive(Debug, Clone)]
pub struct RelatedRequest(pub String);

// === impl ApiError ===

impl ApiError {
    /// A `400`.
    pub fn bad_request(code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// Any status.
    pub fn new(status: StatusCode, code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after_s: None,
            allow: None,
            www_authenticate: None,
            related: None,
            holdername: None,
        }
    }

    /// A `401` UMA challenge.
    pub fn challenge(www_authenticate: String) -> Self {
        Self {
            www_authenticate: Some(www_authenticate),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "a requesting party token is required; see WWW-Authenticate",
            )
        }
    }

    /// A `503` with `Retry-After`.
    pub fn unavailable(detail: impl Into<Cow<'static, str>>, retry_after_s: u64) -> Self {
        Self {
            retry_after_s: Some(retry_after_s),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ServiceUnavailable,
                detail,
            )
        }
    }

    /// A `500` with a generic detail; the cause is logged by the caller.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalServerError,
            "internal error; quote the request_id",
        )
    }

    /// A `405` naming the allowed method.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::MethodNotAllowed,
                "method not allowed on this path",
            )
        }
    }

    /// A `413`: the body is over `limit` bytes.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::ContentTooLarge,
            format!("body: larger than {limit} bytes"),
        )
    }

    /// A `404`.
    pub fn not_found(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, detail)
    }

    /// The short outcome written to the audit trail and metrics.
    pub fn outcome(&self) -> &'static str {
        match self.code {
            ErrorCode::InvalidXRequestId => "invalid_x_request_id",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidFindData => "invalid_find_data",
            ErrorCode::InvalidUat => "invalid_uat",
            ErrorCode::ContentTooLarge => "content_too_large",
            ErrorCode::InvalidContentType => "invalid_content_type",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::NotFound => "not_found",
            ErrorCode::ServiceUnavailable => "shed",
            ErrorCode::InternalServerError => "error",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Unauthorized => "challenge",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::HeadersTooLarge => "headers_too_large",
            ErrorCode::RequestTimeout => "client_timeout",
            ErrorCode::TooManyRequests => "rate_limited",
        }
    }

    /// Renders the problem response, echoing `request_id` in `X-Request-ID`.
    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let now = crate::datetimestamp(crate::now_micros());
        let problem = Problem {
            kind: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
            request_id,
            datetimestamp: &now,
            errors: [ProblemError { code: self.code }],
        };
        let body = serde_json::to_vec(&problem).expect("problem details serialise");
        let mut resp = with_body(self.status, "application/problem+json", body, request_id);
        if let Some(s) = self.retry_after_s {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if let Some(v) = self
            .www_authenticate
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        if let Some(r) = self.related {
            resp.extensions_mut().insert(RelatedRequest(r));
        }
        if let Some(allow) = self.allow {
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        resp
    }
}

/// `Retry-After` seconds on a `503` for a store failure (`store.retry_after_s`).
static STORE_RETRY_AFTER_S: AtomicU64 = AtomicU64::new(5);

/// Sets the `Retry-After` of [`store_failed`]'s `503`s (at start, from `store.retry_after_s`).
pub fn set_store_retry_after(seconds: u64) {
    STORE_RETRY_AFTER_S.store(seconds, Ordering::Relaxed);
}

/// Store failures since the last line: (when that line was, how many since).
static STORE_FAILURES: Mutex<(Option<Instant>, u64)> = Mutex::new((None, 0));

/// A store failure as the answer to a request: `503` with `Retry-After` when the store cannot
/// be had now (an outage, a lock held too long), is closing, or the write's batch did not
/// commit (nothing of it happened: a retry can succeed); `500` for anything else (a bug).
/// Logged at most once a second, with how many failed since the last line.
pub fn store_failed(e: &StoreError, what: &'static str) -> ApiError {
    let retryable = matches!(
        e,
        StoreError::Unavailable(_) | StoreError::Closed | StoreError::Commit(_)
    );
    let failed = {
        let mut f = STORE_FAILURES.lock().unwrap_or_else(|p| p.into_inner());
        f.1 += 1;
        if f.0.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            None
        } else {
            let n = f.1;
            *f = (Some(Instant::now()), 0);
            Some(n)
        }
    };
    if let Some(failed) = failed {
        tracing::error!(error = %e, what, failed, "store error (logged at most once a second; failed counts since the last line)");
    }
    if retryable {
        ApiError::unavailable(
            "store unavailable; retry later",
            STORE_RETRY_AFTER_S.load(Ordering::Relaxed),
        )
    } else {
        ApiError::internal()
    }
}

/// A response with a body, `Content-Type` and the echoed `X-Request-ID`.
pub fn with_body(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
    request_id: &str,
) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(X_REQUEST_ID, v);
    }
    resp
}

/// The transaction ID header.
pub const X_REQUEST_ID: &str = "x-request-id";
