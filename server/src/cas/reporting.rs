//! The provider's calls to PDP's reporting API (wire contract §4.8): `POST` of a submission body,
//! over the CAS client's mutual TLS with the provider's identity, a new `X-Request-ID` on every
//! call, timed, counted and audited like every CAS call. Unlike the other CAS calls it reads the
//! problem details of a refusal: they are kept and shown to operators (never personal data: the
//! reporting API echoes field codes only).

use super::client::CasClient;
use crate::wire::report::{DefaultResponse, ReportKind};

/// How a reporting call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportCallError {
    /// `429` or `5xx`: sent again after a backoff, or after `Retry-After` when PDP sends one
    /// (the stub does not).
    #[error("reporting API answered {status}")]
    Unavailable {
        /// The status.
        status: u16,
        /// Its body (problem details), at most 4 KiB.
        problem: String,
        /// The wait its `Retry-After` asked for.
        retry_after: Option<std::time::Duration>,
    },
    /// Another status: the submission is refused; kept with the problem details.
    #[error("reporting API refused the submission with {status}")]
    Refused {
        /// The status.
        status: u16,
        /// Its body (problem details), at most 4 KiB.
        problem: String,
    },
    /// No answer (connection, TLS, time-out): sent again after a backoff.
    #[error("reporting API unreachable: {0}")]
    Unreachable(String),
}

// === impl ReportCallError ===

impl ReportCallError {
    /// What is kept of a failed call: its status, if one came, and the problem details or the
    /// reason there was no answer.
    pub fn answer(self) -> (Option<u16>, String) {
        match self {
            Self::Unavailable {
                status, problem, ..
            }
            | Self::Refused { status, problem } => (Some(status), problem),
            Self::Unreachable(kind) => (None, format!("reporting API unreachable: {kind}")),
        }
    }
}

impl super::retry::Retryable for ReportCallError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Unreachable(_))
    }

    fn wait(&self) -> Option<std::time::Duration> {
        match self {
            // `Retry-After: 0` would send again at once, for the whole budget: the backoff's.
            Self::Unavailable { retry_after, .. } => retry_after.filter(|d| !d.is_zero()),
            _ => None,
        }
    }
}

/// A `2xx`: the submission was taken. Its body should be `{"message", "datetimestamp"}`; one
/// that is not is still an acceptance (sending the record again would submit it twice), kept
/// with its status and audited as `malformed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The status (`202` from the stub).
    pub status: u16,
    /// The answer's `datetimestamp`, when the body was readable.
    pub datetimestamp: Option<String>,
}

/// At most this much of an error body is kept.
const MAX_PROBLEM: usize = 4096;

impl CasClient {
    /// Sends one submission body (JSON, final) to `kind`'s endpoint.
    pub async fn report(&self, kind: ReportKind, body: &str) -> Result<Accepted, ReportCallError> {
        let endpoint: &'static str = match kind {
            ReportKind::RequestNumber => "POST /view-response/request-number",
            ReportKind::ResponseTime => "POST /view-response/response-time",
            ReportKind::Calculations => "POST /view-response/calculations",
            ReportKind::Unavailable => "POST /view-response/unavailable",
            ReportKind::FindAvailability => "POST /service-availability/find",
            ReportKind::ViewAvailability => "POST /service-availability/view",
        };
        let call = super::client::Outbound::start();
        let result = self
            .http
            .load()
            .post(self.url(kind.as_str()))
            .header("X-Request-ID", &call.transaction_id)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned())
            .send()
            .await;
        let (status, outcome) = match result {
            Err(e) => (
                0,
                Err(ReportCallError::Unreachable(super::client::kind(&e))),
            ),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = super::client::retry_after(&resp);
                let text = resp.bytes().await.unwrap_or_default();
                let outcome = if (200..300).contains(&status) {
                    Ok(Accepted {
                        status,
                        datetimestamp: serde_json::from_slice::<DefaultResponse>(&text)
                            .ok()
                            .map(|r| r.datetimestamp),
                    })
                } else {
                    let problem =
                        String::from_utf8_lossy(&text[..text.len().min(MAX_PROBLEM)]).into_owned();
                    Err(match status {
                        429 | 500..=599 => ReportCallError::Unavailable {
                            status,
                            problem,
                            retry_after,
                        },
                        _ => ReportCallError::Refused { status, problem },
                    })
                };
                (status, outcome)
            }
        };
        let audited = match &outcome {
            Ok(Accepted {
                datetimestamp: None,
                ..
            }) => "malformed".into(),
            Ok(_) => "ok".into(),
            Err(ReportCallError::Unavailable { .. }) => "unavailable".into(),
            Err(ReportCallError::Refused { .. }) => "refused".into(),
            Err(ReportCallError::Unreachable(k)) => k.clone(),
        };
        self.recorded(endpoint, call, None, status, audited);
        outcome
    }
}
