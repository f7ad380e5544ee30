//! Why a find, a completion or a view failed, in a few stable words: the keys of each phase's
//! `failures` map in `result.json` and of the failure table in `summary.md`, so that a failed
//! run says why.
//!
//! A reason names the stage and the cause and nothing else: never a URL, an address, a token,
//! an X-Request-ID, an asset GUID or anything of a member's, so that reasons can be counted,
//! compared between runs and shared. They are:
//!
//! - **find**: `status N` (a status other than `202`; a `503` expected as shedding is counted
//!   as shed instead), `time-out`, `connect: refused | unreachable | time-out | failed`,
//!   `tls: unknown issuer | certificate expired | certificate not valid for name | bad
//!   certificate | incompatible | alert <RFC 8446 name> | handshake failed`, `connection reset`,
//!   `connection closed`, `other`, and `dropped by client` (due while `max_in_flight` awaited
//!   answers);
//! - **completion**: `not registered within 60 s`, `CAS control unreachable`, `CAS control
//!   status N`, `CAS control: not JSON` (the poll that would have seen it failed),
//!   `interrupted` (pending at Ctrl-C);
//! - **view**: `N` (the first call's status when it was not the `401` challenge), `N on retry`
//!   (e.g. `401 on retry`), `no challenge`, `CAS token N`, `CAS token: no access_token`,
//!   `jwk_uri N`, `jwk_uri: not a JWK set`, `jws: …` (the view data token: `no kid`, `kid not
//!   published`, `bad signature`, `expired`, `not yet valid`, `algorithm not allowed`,
//!   `malformed`, `unusable jwk`, `invalid`), `no view_data_token`, `view_data: not a string`,
//!   `view_data: not JSON`, a transport reason as for finds (prefixed `CAS token: ` or
//!   `jwk_uri: ` when the CAS did not answer), `no PeI registered` (nothing to view), `dropped
//!   by client` (512 views awaited answers) and `other`.
//!
//! Transport failures are sorted from the error's chain of causes: rustls's error (a TLS
//! refusal, in the handshake or as an alert just after it) first, then the I/O error's kind,
//! then hyper's "incomplete message".
//!
//! What a find request got, an HTTP status or a [`Transport`] failure, is an [`Outcome`]: the
//! driver counts what both loops' clients answer with.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::io;

use serde::Serialize;

use pdp_sim::dashboard::{DashboardError, Leg, TokenFault, ViewOutcome};

/// What a request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP status.
    Status(u16),
    /// No answer.
    Transport(Transport),
}

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    /// The request time-out passed (`time-out`).
    Timeout,
    /// No connection was made (`connect: …`).
    Connect(Connect),
    /// TLS refused the connection, in the handshake or by an alert just after it (`tls: …`).
    Tls(Tls),
    /// The connection was reset or aborted before a whole answer (`connection reset`).
    Reset,
    /// The connection was closed before a whole answer (`connection closed`).
    Closed,
    /// Anything else (`other`).
    Other,
}

/// Why no connection was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Connect {
    /// Nothing listens at the address (`connect: refused`).
    Refused,
    /// No route to the host or network (`connect: unreachable`).
    Unreachable,
    /// The connect time-out (10 s) passed (`connect: time-out`).
    TimedOut,
    /// Anything else (`connect: failed`).
    Failed,
}

/// Why TLS refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tls {
    /// The peer's certificate chains to no CA trusted here (`tls: unknown issuer`): none has
    /// its issuer's name, or the one that has did not sign it (another PKI's CA of the same
    /// name, as a fresh dev PKI's is).
    UnknownIssuer,
    /// The peer's certificate has expired, or is not yet valid (`tls: certificate expired`).
    Expired,
    /// The peer's certificate is not for the host called (`tls: certificate not valid for
    /// name`).
    NotValidForName,
    /// Another fault of the peer's certificate (`tls: bad certificate`).
    BadCertificate,
    /// No protocol version or cipher suite in common (`tls: incompatible`).
    Incompatible,
    /// The peer sent an alert, by its RFC 8446 name: how a server refusing our certificate
    /// says so (`tls: alert unknown_ca`).
    Alert(&'static str),
    /// Anything else (`tls: handshake failed`).
    Other,
}

// === impl Transport ===

impl Transport {
    /// The reason, as reported.
    pub fn reason(self) -> String {
        match self {
            Transport::Timeout => "time-out".into(),
            Transport::Connect(c) => format!(
                "connect: {}",
                match c {
                    Connect::Refused => "refused",
                    Connect::Unreachable => "unreachable",
                    Connect::TimedOut => "time-out",
                    Connect::Failed => "failed",
                }
            ),
            Transport::Tls(t) => match t {
                Tls::UnknownIssuer => "tls: unknown issuer".into(),
                Tls::Expired => "tls: certificate expired".into(),
                Tls::NotValidForName => "tls: certificate not valid for name".into(),
                Tls::BadCertificate => "tls: bad certificate".into(),
                Tls::Incompatible => "tls: incompatible".into(),
                Tls::Alert(name) => format!("tls: alert {name}"),
                Tls::Other => "tls: handshake failed".into(),
            },
            Transport::Reset => "connection reset".into(),
            Transport::Closed => "connection closed".into(),
            Transport::Other => "other".into(),
        }
    }

    /// The coarse cause reported as `transport_errors` since before there were reasons:
    /// `timeout`, `connect` (no connection, TLS refusals included) or `other`.
    pub fn coarse(self) -> &'static str {
        match self {
            Transport::Timeout => "timeout",
            Transport::Connect(_) | Transport::Tls(_) => "connect",
            Transport::Reset | Transport::Closed | Transport::Other => "other",
        }
    }

    /// A failure of reqwest's (the open loop, the dashboard).
    pub fn of_reqwest(e: &reqwest::Error) -> Self {
        if e.is_connect() {
            Self::of_error(e, true)
        } else if e.is_timeout() {
            Transport::Timeout
        } else {
            Self::of_error(e, false)
        }
    }

    /// A failure while `connecting` (TCP and the TLS handshake) or, after that, while sending
    /// and reading the answer, from the error's chain of causes.
    pub fn of_error(e: &(dyn StdError + 'static), connecting: bool) -> Self {
        let causes = causes(e);
        if let Some(t) = causes
            .iter()
            .find_map(|c| c.downcast_ref::<rustls::Error>())
        {
            return Transport::Tls(Tls::of(t));
        }
        for c in &causes {
            if let Some(io) = c.downcast_ref::<io::Error>() {
                if let Some(t) = Self::of_io_kind(io.kind(), connecting) {
                    return t;
                }
            }
            if let Some(h) = c.downcast_ref::<hyper::Error>() {
                if h.is_timeout() {
                    return Transport::Timeout;
                }
                if h.is_incomplete_message() {
                    return Transport::Closed;
                }
            }
        }
        if connecting {
            Transport::Connect(Connect::Failed)
        } else {
            Transport::Other
        }
    }

    fn of_io_kind(kind: io::ErrorKind, connecting: bool) -> Option<Self> {
        use io::ErrorKind as K;
        Some(match kind {
            K::ConnectionRefused => Transport::Connect(Connect::Refused),
            K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => {
                Transport::Connect(Connect::Unreachable)
            }
            K::TimedOut if connecting => Transport::Connect(Connect::TimedOut),
            K::TimedOut => Transport::Timeout,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Transport::Reset,
            K::UnexpectedEof => Transport::Closed,
            _ => return None,
        })
    }
}

/// `e` and its causes, looking inside I/O errors (whose `source` skips the error they wrap,
/// such as rustls's in tokio-rustls's).
fn causes<'a>(e: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut cur = Some(e);
    while let Some(e) = cur {
        out.push(e);
        if out.len() > 32 {
            break;
        }
        cur = match e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    out
}

// === impl Tls ===

impl Tls {
    /// The refusal `e` says.
    pub fn of(e: &rustls::Error) -> Self {
        use rustls::CertificateError as C;
        match e {
            rustls::Error::InvalidCertificate(c) => match c {
                C::UnknownIssuer | C::BadSignature => Tls::UnknownIssuer,
                C::Expired
                | C::ExpiredContext { .. }
                | C::NotValidYet
                | C::NotValidYetContext { .. } => Tls::Expired,
                C::NotValidForName | C::NotValidForNameContext { .. } => Tls::NotValidForName,
                _ => Tls::BadCertificate,
            },
            rustls::Error::AlertReceived(a) => Tls::Alert(alert_name(*a)),
            rustls::Error::PeerIncompatible(_) => Tls::Incompatible,
            _ => Tls::Other,
        }
    }
}

/// An alert's name as RFC 8446 spells it.
fn alert_name(a: rustls::AlertDescription) -> &'static str {
    use rustls::AlertDescription as A;
    match a {
        A::CloseNotify => "close_notify",
        A::HandshakeFailure => "handshake_failure",
        A::BadCertificate => "bad_certificate",
        A::UnsupportedCertificate => "unsupported_certificate",
        A::CertificateRevoked => "certificate_revoked",
        A::CertificateExpired => "certificate_expired",
        A::CertificateUnknown => "certificate_unknown",
        A::IllegalParameter => "illegal_parameter",
        A::UnknownCA => "unknown_ca",
        A::AccessDenied => "access_denied",
        A::DecodeError => "decode_error",
        A::DecryptError => "decrypt_error",
        A::ProtocolVersion => "protocol_version",
        A::InsufficientSecurity => "insufficient_security",
        A::InternalError => "internal_error",
        A::UnrecognisedName => "unrecognized_name",
        A::CertificateRequired => "certificate_required",
        A::NoApplicationProtocol => "no_application_protocol",
        other => other.as_str().unwrap_or("unknown"),
    }
}

/// Failures of one stage (find, completion or view), by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Failures(BTreeMap<String, u64>);

// === impl Failures ===

impl Failures {
    /// None yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one failure for `reason`.
    pub fn add(&mut self, reason: impl Into<String>) {
        self.add_n(reason, 1);
    }

    /// Counts `n` failures for `reason` (none when `n` is 0).
    pub fn add_n(&mut self, reason: impl Into<String>, n: u64) {
        if n > 0 {
            *self.0.entry(reason.into()).or_default() += n;
        }
    }

    /// The failures counted for `reason`.
    pub fn get(&self, reason: &str) -> u64 {
        self.0.get(reason).copied().unwrap_or(0)
    }

    /// Every failure.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The reasons and counts, most frequent first (then by reason).
    pub fn ranked(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.0.iter().map(|(r, n)| (r.as_str(), *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }

    /// `reason N, reason N` for a progress line, most frequent first.
    pub fn brief(&self) -> String {
        self.ranked()
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The reason of a find answered with `status`; `None` when that is no failure: a `202`, or a
/// `503` when shedding is expected (counted as shed instead).
pub fn find_status(status: u16, expect_shedding: bool) -> Option<String> {
    match status {
        202 => None,
        503 if expect_shedding => None,
        s => Some(format!("status {s}")),
    }
}

/// Why a poll of the CAS simulator's control listener failed.
pub fn control(e: &reqwest::Error) -> String {
    if let Some(s) = e.status() {
        format!("CAS control status {}", s.as_u16())
    } else if e.is_decode() {
        "CAS control: not JSON".into()
    } else {
        "CAS control unreachable".into()
    }
}

/// A followed find that was never seen registered within the 60 s.
pub const NOT_REGISTERED: &str = "not registered within 60 s";

/// A followed find still pending when the run was interrupted.
pub const INTERRUPTED: &str = "interrupted";

/// A request the client did not send because too many awaited answers.
pub const DROPPED: &str = "dropped by client";

/// Views planned when no PeI was registered at the CAS simulator to view.
pub const NO_PEI: &str = "no PeI registered";

/// A view's reason, `None` when it ended with a verified `200`.
pub fn view(result: &Result<ViewOutcome, DashboardError>) -> Option<String> {
    match result {
        Ok(v) => view_outcome(v),
        Err(e) => Some(view_error(e)),
    }
}

fn view_outcome(v: &ViewOutcome) -> Option<String> {
    match (v.first_status, v.retry_status) {
        (401, Some(200)) if v.view_data.is_some() => None,
        (401, Some(200)) => Some("no view_data".into()),
        (401, Some(s)) => Some(format!("{s} on retry")),
        (401, None) => Some("no challenge".into()),
        (200, _) => Some("200 without a challenge".into()),
        (s, _) => Some(s.to_string()),
    }
}

fn view_error(e: &DashboardError) -> String {
    match e {
        DashboardError::Transport { leg, source } => {
            let reason = Transport::of_reqwest(source).reason();
            match leg {
                Leg::Provider => reason,
                Leg::Token => format!("CAS token: {reason}"),
                Leg::JwkSet => format!("jwk_uri: {reason}"),
            }
        }
        DashboardError::NoChallenge => "no challenge".into(),
        DashboardError::TokenRefused(200) => "CAS token: no access_token".into(),
        DashboardError::TokenRefused(s) => format!("CAS token {s}"),
        DashboardError::NoJwkSet(200) => "jwk_uri: not a JWK set".into(),
        DashboardError::NoJwkSet(s) => format!("jwk_uri {s}"),
        DashboardError::BadToken(f) => match f {
            TokenFault::NoToken => "no view_data_token",
            TokenFault::Malformed => "jws: malformed",
            TokenFault::NoKid => "jws: no kid",
            TokenFault::KidNotPublished => "jws: kid not published",
            TokenFault::UnusableJwk => "jws: unusable jwk",
            TokenFault::BadSignature => "jws: bad signature",
            TokenFault::Expired => "jws: expired",
            TokenFault::NotYetValid => "jws: not yet valid",
            TokenFault::AlgorithmNotAllowed => "jws: algorithm not allowed",
            TokenFault::Invalid => "jws: invalid",
            TokenFault::ViewDataNotString => "view_data: not a string",
            TokenFault::ViewDataNotJson => "view_data: not JSON",
        }
        .into(),
    }
}

#[cfg(test)]
mod tests;
