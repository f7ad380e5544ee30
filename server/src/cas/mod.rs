//! The outbound side: calls to the consent and authorisation service (wire contract §4), over
//! mTLS.
//!
//! - [`client`]: reqwest with rustls and the provider's client certificate; a new X-Request-ID
//!   and an audit record per call; each failure sorted as retryable or final at its source.
//! - [`reporting`]: the six daily submissions to PDP's reporting API; refusals keep their
//!   problem details.
//! - [`retry`]: capped exponential backoff with full jitter, inside a deadline.
//! - [`Pat`]: the protection API access token, which never prints.

pub mod client;
pub mod reporting;
pub mod retry;

use std::time::Duration;

/// A protection API access token: a bearer credential, so it never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Pat(String);

impl std::fmt::Debug for Pat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pat([redacted])")
    }
}

// === impl Pat ===

impl Pat {
    /// Wraps a PAT.
    pub fn new(s: String) -> Self {
        Self(s)
    }

    /// The token, for an `Authorization` header or sealing.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its `exp` claim (µs since the epoch), when it is a readable JWT.
    pub fn expires_at(&self) -> Option<i64> {
        let v = crate::wire::jwt::unverified_claims(&self.0)?;
        v.get("exp")?.as_i64()?.checked_mul(1_000_000)
    }
}

/// Where a CAS failure came from, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CasError {
    /// The CAS answered with a status that a retry may fix (429, 500, 502, 503, 504).
    #[error("CAS answered {status} (retryable)")]
    Unavailable {
        /// The status.
        status: u16,
        /// `Retry-After`, when sent.
        retry_after: Option<Duration>,
    },
    /// The CAS answered with a final refusal (400, 401, 403, 404, ...).
    #[error("CAS refused with {status}")]
    Refused {
        /// The status.
        status: u16,
    },
    /// `409` to `POST rreguri`: this X-Request-ID already created a resource.
    #[error("CAS answered 409: X-Request-ID already used")]
    Conflict,
    /// No answer: connection refused or reset, TLS failure, or the call's time-out.
    #[error("CAS unreachable: {0}")]
    Unreachable(String),
    /// A success status with a body we cannot read.
    #[error("CAS answer malformed")]
    Malformed,
    /// The deadline passed before a call could succeed.
    #[error("time budget spent")]
    BudgetSpent,
}

// === impl CasError ===

impl CasError {
    /// Whether a retry (with a new X-Request-ID) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CasError::Unavailable { .. } | CasError::Unreachable(_) | CasError::Conflict
        )
    }

    /// A short reason for failed finds and metrics (never a body).
    pub fn reason(&self) -> String {
        match self {
            CasError::Unavailable { status, .. } => format!("cas_unavailable_{status}"),
            CasError::Refused { status } => format!("cas_refused_{status}"),
            CasError::Conflict => "cas_conflict".into(),
            CasError::Unreachable(_) => "cas_unreachable".into(),
            CasError::Malformed => "cas_malformed_answer".into(),
            CasError::BudgetSpent => "budget_exhausted".into(),
        }
    }
}
