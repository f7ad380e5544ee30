//! Response bodies the provider sends: the find ACK and RFC 9457 problem details.

use serde::Serialize;

/// The ACK of a find request (wire contract §3.1): `{"message": "ACCEPTED", "datetimestamp"}`.
#[derive(Debug, Serialize)]
pub struct Accepted<'a> {
    /// Always `ACCEPTED`.
    pub message: &'static str,
    /// When the request was made durable.
    pub datetimestamp: &'a str,
}

/// An error code in a problem body (`errors[].code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// X-Request-ID missing or not a UUID.
    InvalidXRequestId,
    /// The body is not JSON.
    InvalidJson,
    /// The body is JSON but a find item is missing, malformed or out of range.
    InvalidFindData,
    /// The UAT is missing or not three base64url segments.
    InvalidUat,
    /// The body is over the limit (413).
    ContentTooLarge,
    /// Content-Type is not `application/json` (415).
    InvalidContentType,
    /// The method is not allowed on this path (405).
    MethodNotAllowed,
    /// No such endpoint (404).
    NotFound,
    /// Load is being shed or a dependency is down (503).
    ServiceUnavailable,
    /// Something failed on our side (500).
    InternalServerError,
    /// A request field other than the body is malformed (400).
    InvalidRequest,
    /// No valid RPT: a UMA challenge with a permission ticket (401).
    Unauthorized,
    /// The client certificate may not call this endpoint (403).
    Forbidden,
    /// The request's header block is over the limit (431).
    HeadersTooLarge,
    /// The body did not arrive in time (408).
    RequestTimeout,
    /// Too many refused requests from this client identity (429, with `Retry-After`).
    TooManyRequests,
}

/// One entry of `errors`.
#[derive(Debug, Serialize)]
pub struct ProblemError {
    /// The machine-readable code.
    pub code: ErrorCode,
}

/// RFC 9457 problem details in the style of PDP's reporting API.
#[derive(Debug, Serialize)]
pub struct Problem<'a> {
    /// Always `about:blank`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The status's reason phrase.
    pub title: &'a str,
    /// The HTTP status.
    pub status: u16,
    /// What was wrong, naming a field path, never a value.
    pub detail: &'a str,
    /// The transaction ID (the request's X-Request-ID when it had a valid one).
    pub request_id: &'a str,
    /// When the error was answered.
    pub datetimestamp: &'a str,
    /// Machine-readable codes.
    pub errors: [ProblemError; 1],
}
