//! The reporting cases: the endpoint's daily submissions (as `report submit` sends them) to the
//! simulator's reporting API, which validates each body as MaPS' stub does and answers the
//! faults `POST /configuration` scripts. Played one after another, after every other case (a
//! scripted fault holds for the next calls to its endpoint, whoever makes them).

use chrono::NaiveDate;
use pdp_provider::model::{ReportKind, SubmissionState};
use pdp_provider::report::submit::{DayOutcome, Reporter};

use super::catalogue::ReportExpect;
use super::judge::Verdict;
use super::runner::{Exchange, Message};
use crate::report::Received;

/// The endpoint a scripted fault is put on.
const FAULTED: ReportKind = ReportKind::RequestNumber;

/// What a reporting case did.
pub struct Seen {
    /// The day's outcome, or why the submission could not run.
    pub outcome: Result<DayOutcome, String>,
    /// The calls the simulator received for it, in order.
    pub received: Vec<Received>,
    /// The states the store holds for the day's faulted report, latest attempt last.
    pub faulted_states: Vec<SubmissionState>,
}

/// Every reporting call the simulator received so far.
async fn received(control: &str) -> Vec<Received> {
    match reqwest::get(format!("{control}/__sim/reports")).await {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// Scripts `status` for the next call to [`FAULTED`] (none: clears every script).
async fn script(control: &str, status: Option<u16>) -> Result<(), String> {
    let body = match status {
        Some(s) => serde_json::json!([{"endpoint": FAULTED.as_str(), "status": s,
            "code": "SCRIPTED", "count": 1, "errors": [{"code": "SCRIPTED_BY_SELFTEST"}]}]),
        None => serde_json::json!([]),
    };
    let r = reqwest::Client::new()
        .post(format!("{control}/configuration"))
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status() != 204 {
        return Err(format!("POST /configuration answered {}", r.status()));
    }
    Ok(())
}

/// Submits `days_ago` (UTC days before today) as `report submit` does (`resubmit`: a
/// correction, after the initial submission if there was none), with `fault` scripted first.
pub async fn play(
    reporter: &Reporter,
    control: &str,
    days_ago: u64,
    resubmit: bool,
    fault: Option<u16>,
) -> Seen {
    let day = chrono::Utc::now().date_naive() - chrono::Days::new(days_ago);
    let before = received(control).await.len();
    let outcome = async {
        script(control, fault).await?;
        let now = pdp_provider::now_micros();
        if resubmit {
            reporter
                .submit_day(day, false, now)
                .await
                .map_err(|e| e.to_string())?;
        }
        let out = reporter.submit_day(day, resubmit, now).await;
        script(control, None).await?;
        out.map_err(|e| e.to_string())
    }
    .await;
    let received = received(control).await.split_off(before);
    let faulted_states = faulted_states(reporter, day).await;
    Seen {
        outcome,
        received,
        faulted_states,
    }
}

async fn faulted_states(reporter: &Reporter, day: NaiveDate) -> Vec<SubmissionState> {
    let mut subs: Vec<_> = reporter
        .store
        .submissions(Some(day))
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.key.day == day && s.key.kind == FAULTED)
        .collect();
    subs.sort_by_key(|s| s.key.attempt);
    subs.into_iter().map(|s| s.state).collect()
}

/// The received calls as the report's exchanges (their times are in the call log).
pub fn exchanges(cas: &str, seen: &Seen) -> Vec<Exchange> {
    seen.received
        .iter()
        .map(|r| Exchange {
            at: String::new(),
            request: Message {
                line: format!("POST {cas}{}", r.kind.as_str()),
                headers: vec![("X-Request-ID".into(), r.x_request_id.clone())],
                body: serde_json::to_string_pretty(&r.body).unwrap_or_default(),
            },
            response: Some(Message {
                line: format!("HTTP {}", r.status),
                headers: Vec::new(),
                body: String::new(),
            }),
            error: None,
        })
        .collect()
}

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Verdict::Fail(format!($($why)+));
        }
    };
}

/// Judges a reporting case.
pub fn judge(seen: &Seen, expect: ReportExpect) -> Verdict {
    let out = match &seen.outcome {
        Ok(o) => o,
        Err(e) => return Verdict::Fail(format!("the submission did not run: {e}")),
    };
    ensure!(
        !seen.received.is_empty(),
        "no report reached the reporting API"
    );
    let field = |r: &Received, f: &str| r.body[f].as_str().unwrap_or_default().to_owned();
    match expect {
        ReportExpect::Accepted { status, reason } => {
            ensure!(
                out.refused == 0
                    && out.pending == 0
                    && seen.received.iter().all(|r| r.status == 202),
                "not every report was accepted: {out:?}, answers {:?}",
                answers(seen)
            );
            let statuses: Vec<String> = seen
                .received
                .iter()
                .map(|r| field(r, "submission_status"))
                .collect();
            ensure!(
                statuses.iter().all(|s| s == status),
                "submission_status should be \"{status}\" on every report, was {statuses:?}"
            );
            if let Some(reason) = reason {
                ensure!(
                    seen.received
                        .iter()
                        .any(|r| field(r, "submission_reason") == reason),
                    "no report with submission_reason \"{reason}\""
                );
            }
            Verdict::Pass
        }
        ReportExpect::RetriedThenAccepted(status) => {
            let faulted: Vec<u16> = seen
                .received
                .iter()
                .filter(|r| r.kind == FAULTED)
                .map(|r| r.status)
                .collect();
            let at = faulted.iter().position(|s| *s == status);
            ensure!(
                at.is_some(),
                "the scripted {status} was not met: {faulted:?}"
            );
            ensure!(
                faulted[at.unwrap_or_default()..].contains(&202),
                "the report answered {status} was not sent again until accepted: {faulted:?}"
            );
            ensure!(
                out.refused == 0 && out.pending == 0,
                "the day did not end accepted: {out:?}"
            );
            Verdict::Pass
        }
        ReportExpect::Refused => {
            let faulted: Vec<u16> = seen
                .received
                .iter()
                .filter(|r| r.kind == FAULTED)
                .map(|r| r.status)
                .collect();
            ensure!(
                faulted.first() == Some(&400),
                "the scripted 400 was not met: {faulted:?}"
            );
            ensure!(
                out.refused >= 1 && seen.faulted_states.contains(&SubmissionState::Refused),
                "the 400 was not recorded as refused: {out:?}, stored {:?}",
                seen.faulted_states
            );
            ensure!(
                faulted.iter().filter(|s| **s == 400).count() == 1,
                "a 400 is final, but the report was sent again: {faulted:?}"
            );
            Verdict::Pass
        }
    }
}

fn answers(seen: &Seen) -> Vec<u16> {
    seen.received.iter().map(|r| r.status).collect()
}
