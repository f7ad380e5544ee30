//! The judge: what the endpoint answered and what the simulator's call log shows, against what
//! each case expects. Pure functions over what was observed, so each rule is tested alone.

use serde::Serialize;

use super::catalogue::{Action, Expect, OpExpect, TlsExpect, ViewExpect};
use crate::cas::{Call, Resource};

/// A case's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "reason", rename_all = "lowercase")]
pub enum Verdict {
    /// What the case expects happened.
    Pass,
    /// It did not: why.
    Fail(String),
}

// === impl Verdict ===

impl Verdict {
    /// Whether it passed.
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass)
    }
}

/// How a find ended in the endpoint's store, when the selftest can read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Stored {
    /// The store was not given (`--target` without `--config`): judged on the call log alone.
    Unknown,
    /// Not found, or not ended when the selftest stopped waiting.
    NotEnded,
    /// Ended done.
    Done,
    /// Ended failed, with this reason.
    Failed(String),
}

/// What a find led to.
#[derive(Debug, Clone)]
pub struct FindSeen<'a> {
    /// The ACK's status (`None`: no HTTP answer).
    pub status: Option<u16>,
    /// Its X-Request-ID.
    pub request_id: &'a str,
    /// The simulator's calls made with this find's credentials, in order.
    pub calls: &'a [Call],
    /// The simulator's resources.
    pub resources: &'a [Resource],
    /// How it ended in the store.
    pub stored: &'a Stored,
}

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Verdict::Fail(format!($($why)+));
        }
    };
}

fn count(calls: &[Call], endpoint: &str) -> usize {
    calls.iter().filter(|c| c.endpoint == endpoint).count()
}

/// Judges a find against `expect`.
pub fn find(seen: &FindSeen<'_>, expect: Expect) -> Verdict {
    ensure!(
        seen.status == Some(202),
        "the find was answered {} instead of 202",
        shown(seen.status)
    );
    match expect {
        Expect::Registered(status) => registered(seen, status),
        Expect::AlreadyRegistered => already_registered(seen),
        Expect::NoCasCall => {
            ensure!(
                seen.calls.is_empty(),
                "the endpoint called the CAS for a find that matches nobody: {}",
                listed(seen.calls)
            );
            ensure!(
                !seen
                    .resources
                    .iter()
                    .any(|r| r.inbound_request_id == seen.request_id),
                "a PeI was registered for a find that matches nobody"
            );
            Verdict::Pass
        }
        Expect::NotRetried { endpoint, status } => {
            then(not_retried(seen.calls, endpoint, status), || {
                ended_failed(seen.stored, "find")
            })
        }
        Expect::Retried { endpoint, status } => then(retried(seen.calls, endpoint, status), || {
            ended_failed(seen.stored, "find")
        }),
    }
}

/// `next` when `first` passed, else `first`.
fn then(first: Verdict, next: impl FnOnce() -> Verdict) -> Verdict {
    match first {
        Verdict::Pass => next(),
        failed => failed,
    }
}

fn not_retried(calls: &[Call], endpoint: &str, status: u16) -> Verdict {
    let hits: Vec<&Call> = calls.iter().filter(|c| c.endpoint == endpoint).collect();
    ensure!(!hits.is_empty(), "no {endpoint} call was made");
    ensure!(
        hits.iter().all(|c| c.status == status),
        "{endpoint} answered {} instead of the scripted {status}",
        listed(calls)
    );
    ensure!(
        hits.len() == 1,
        "a {status} from {endpoint} is final, but it was called {} times",
        hits.len()
    );
    Verdict::Pass
}

fn registered(seen: &FindSeen<'_>, status: &str) -> Verdict {
    ensure!(
        count(seen.calls, "POST /token") == 1,
        "expected one token exchange, saw {}",
        listed(seen.calls)
    );
    let Some(r) = seen
        .resources
        .iter()
        .find(|r| r.inbound_request_id == seen.request_id)
    else {
        return Verdict::Fail(format!(
            "no PeI registered for the find; calls: {}",
            listed(seen.calls)
        ));
    };
    ensure!(
        r.match_status == status,
        "registered {} instead of {status}",
        r.match_status
    );
    ensure!(
        !matches!(seen.stored, Stored::Failed(_) | Stored::NotEnded),
        "the find did not end done: {:?}",
        seen.stored
    );
    Verdict::Pass
}

fn already_registered(seen: &FindSeen<'_>) -> Verdict {
    let registrations: Vec<&Call> = seen
        .calls
        .iter()
        .filter(|c| c.endpoint == "POST /rreguri")
        .collect();
    ensure!(
        !registrations.is_empty(),
        "the endpoint did not register the PeI: {}",
        listed(seen.calls)
    );
    ensure!(
        registrations.iter().all(|c| c.status == 200),
        "the CAS should have answered 200 (already registered), saw {}",
        listed(seen.calls)
    );
    ensure!(
        registrations.len() == 1,
        "a 200 is success, but the endpoint registered {} times",
        registrations.len()
    );
    ensure!(
        !matches!(seen.stored, Stored::Failed(_) | Stored::NotEnded),
        "the find did not end done (200 is success): {:?}",
        seen.stored
    );
    Verdict::Pass
}

fn retried(calls: &[Call], endpoint: &str, status: u16) -> Verdict {
    let hits: Vec<&Call> = calls.iter().filter(|c| c.endpoint == endpoint).collect();
    ensure!(!hits.is_empty(), "no {endpoint} call was made");
    ensure!(
        hits.len() >= 2,
        "{endpoint} answered {status} once and was not called again (retryable)"
    );
    for pair in hits.windows(2) {
        let gap = millis_between(&pair[0].at, &pair[1].at);
        if let Some(wait) = pair[0].retry_after {
            ensure!(
                gap.is_some_and(|g| g >= (wait * 1000) as i64),
                "called again {} ms after a Retry-After of {wait} s",
                gap.unwrap_or(-1)
            );
        }
    }
    Verdict::Pass
}

fn ended_failed(stored: &Stored, what: &str) -> Verdict {
    match stored {
        Stored::Failed(reason) if !reason.is_empty() => Verdict::Pass,
        Stored::Unknown => Verdict::Pass,
        other => Verdict::Fail(format!(
            "the {what} should end failed with a reason, but is {other:?}"
        )),
    }
}

/// What an operator's action on a registered PeI led to.
#[derive(Debug, Clone)]
pub struct OpSeen<'a> {
    /// The find that registered the PeI, as judged on its own.
    pub find: Verdict,
    /// The action.
    pub action: Action,
    /// The simulator's calls made with the find's credentials, in order.
    pub calls: &'a [Call],
    /// The CAS's resource the find registered, as it is after the action.
    pub resource: Option<&'a Resource>,
    /// How the action ended: done, or failed with its reason (`Unknown`: not run).
    pub ended: &'a Stored,
}

/// Judges an operator's action against `expect`.
pub fn operation(seen: &OpSeen<'_>, expect: OpExpect) -> Verdict {
    if let Verdict::Fail(why) = &seen.find {
        return Verdict::Fail(format!("the find that registers the PeI: {why}"));
    }
    let endpoint = seen.action.endpoint();
    match expect {
        OpExpect::Done => {
            let hits: Vec<&Call> = seen
                .calls
                .iter()
                .filter(|c| c.endpoint == endpoint)
                .collect();
            ensure!(
                hits.len() == 1 && hits[0].status < 300,
                "expected one {endpoint} answered with success, saw {}",
                listed(seen.calls)
            );
            ensure!(
                *seen.ended == Stored::Done,
                "the action did not end done: {:?}",
                seen.ended
            );
            let Some(r) = seen.resource else {
                return Verdict::Fail("the CAS holds no resource for the PeI".into());
            };
            match seen.action {
                Action::ResolveYes => ensure!(
                    r.match_status == "match-yes" && r.deleted.is_none(),
                    "the CAS's resource is {} (deleted: {:?}) instead of match-yes",
                    r.match_status,
                    r.deleted
                ),
                Action::Deregister(reason) => ensure!(
                    r.deleted.as_deref() == Some(reason.as_str())
                        && reason.allowed_for(match_status(&r.match_status)),
                    "the CAS's {} resource was not deleted with {}, a reason it allows (deleted: \
                     {:?})",
                    r.match_status,
                    reason.as_str(),
                    r.deleted
                ),
            }
            Verdict::Pass
        }
        OpExpect::NotRetried(status) => then(not_retried(seen.calls, endpoint, status), || {
            ended_failed(seen.ended, "action")
        }),
        OpExpect::Retried(status) => then(retried(seen.calls, endpoint, status), || {
            ended_failed(seen.ended, "action")
        }),
    }
}

/// A resource's match status as the store names it.
fn match_status(wire: &str) -> pdp_provider::store::MatchStatus {
    if wire == "match-yes" {
        pdp_provider::store::MatchStatus::Yes
    } else {
        pdp_provider::store::MatchStatus::Possible
    }
}

/// Milliseconds from `a` to `b` (RFC 3339).
pub fn millis_between(a: &str, b: &str) -> Option<i64> {
    let a = chrono::DateTime::parse_from_rfc3339(a).ok()?;
    let b = chrono::DateTime::parse_from_rfc3339(b).ok()?;
    Some((b - a).num_milliseconds())
}

fn shown(status: Option<u16>) -> String {
    status.map_or_else(|| "nothing (no HTTP answer)".into(), |s| s.to_string())
}

fn listed(calls: &[Call]) -> String {
    if calls.is_empty() {
        return "no calls".into();
    }
    calls
        .iter()
        .map(|c| format!("{} {}", c.endpoint, c.status))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a view got.
#[derive(Debug, Clone, Default)]
pub struct ViewSeen {
    /// The final answer's status (`None`: no HTTP answer).
    pub status: Option<u16>,
    /// Whether it carried a UMA challenge with a ticket.
    pub challenge: bool,
    /// Its `Retry-After`.
    pub retry_after: Option<String>,
    /// For a served view: whether the token verified against the CAS's keys, or why not.
    pub token: Option<Result<(), String>>,
    /// The CAS calls the view made (`POST /perm`, `POST /introspect`).
    pub cas_calls: Vec<Call>,
}

/// Judges a view against `expect`.
pub fn view(seen: &ViewSeen, expect: ViewExpect) -> Verdict {
    match expect {
        ViewExpect::Served => {
            ensure!(
                seen.status == Some(200),
                "the view ended {} instead of 200",
                shown(seen.status)
            );
            match &seen.token {
                Some(Ok(())) => {}
                Some(Err(why)) => return Verdict::Fail(format!("the view data token: {why}")),
                None => return Verdict::Fail("no view data token".into()),
            }
            ensure!(
                count(&seen.cas_calls, "POST /introspect") >= 1,
                "served without introspecting the RPT"
            );
            Verdict::Pass
        }
        ViewExpect::Challenged => {
            ensure!(
                seen.status == Some(401) && seen.challenge,
                "expected a refusal with a fresh UMA challenge (401 with a ticket), got {}{}",
                shown(seen.status),
                if seen.status == Some(200) {
                    ": the view was served"
                } else {
                    ""
                }
            );
            ensure!(
                count(&seen.cas_calls, "POST /introspect") >= 1,
                "the RPT was refused without asking the CAS"
            );
            Verdict::Pass
        }
        ViewExpect::Unavailable => {
            ensure!(
                seen.status == Some(503) && seen.retry_after.is_some(),
                "expected 503 with Retry-After, got {}",
                shown(seen.status)
            );
            Verdict::Pass
        }
    }
}

/// Judges a connection with a client identity: `status` is the answer, `error` the transport
/// failure when there was none.
pub fn tls(status: Option<u16>, error: Option<&str>, expect: TlsExpect) -> Verdict {
    match expect {
        TlsExpect::Status(want) => {
            ensure!(
                status == Some(want),
                "expected {want}, got {}{}",
                shown(status),
                error.map(|e| format!(" ({e})")).unwrap_or_default()
            );
            Verdict::Pass
        }
        TlsExpect::Refused => {
            ensure!(
                status.is_none(),
                "the certificate got through the handshake: answered {}",
                shown(status)
            );
            Verdict::Pass
        }
    }
}
