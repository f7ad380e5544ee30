//! A day's submissions: built, claimed, sent, answered.
//!
//! # Once, across crashes and instances
//!
//! Each (holdername, report, day) is claimed in the store BEFORE its first byte is sent: the
//! claim writes the submission with its final bodies, its `record_id`s and `submission_id`
//! (attempt 0 for the initial or null submission, the primary key makes it one). Then:
//!
//! - an instance that finds it answered (accepted or refused) sends nothing;
//! - an instance that finds it `sending` within its lease (`reporting.lease_s`) leaves it to
//!   the one that claimed it;
//! - a `sending` claim past its lease was left by a crash (between a send and the recording of
//!   its answer, or during backoff): it is reclaimed and its unanswered parts are sent again,
//!   byte for byte: same `record_id`, same `submission_id`, still `initial submission`. The
//!   reporting API identifies a record by `record_id` ("a unique identifier for the record"),
//!   so a resent record is the same record, not a second submission; a fresh `resubmission`
//!   would claim a correction that never happened, and a new `initial submission` would be a
//!   second initial one. Nothing in the stub dedupes: the CAS may see the record twice.
//!
//! The lease covers one part at a time: the claim is renewed (fenced on its claim time) before
//! each part is sent, and `reporting.lease_s` must outlast one part's retries (checked when the
//! configuration is loaded). A claimant whose retries are spent releases its claim: the next
//! run, here or on another instance, resumes it at once. A claimant whose renewal finds the claim
//! taken over stops sending.
//!
//! A correction (`--resubmit`) corrects an initial submission: a day with a report never
//! submitted is refused whole, before anything is claimed; `report submit` without
//! `--resubmit` sends it (on time or late).
//!
//! `429` and `5xx` (and no answer) are sent again after capped exponential backoff with full
//! jitter (the CAS calls' loop, [`crate::cas::retry::retry`]; the stub sends no `Retry-After`)
//! within `reporting.retry_budget_s`: each part is sent at least once, and a call once sent is
//! awaited to its answer or its own time-out, never cut by the budget (PDP may have taken it).
//! Past the budget the part stays `sending` with the last answer, and a later run resumes it.
//! Any other status is final: the submission is `refused`, its problem details kept, counted,
//! and listed by `report status`. Any `2xx` is an acceptance, even with a body that does not
//! read as the stub's: sending the record again would submit it twice.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use uuid::Uuid;

use super::build::{build, Built, HolderDay};
use super::{day_start, periods, ReportError};
use crate::cas::client::CasClient;
use crate::cas::retry::{retry, Backoff, GaveUp};
use crate::config::{GoLive, ReportingConfig};
use crate::model::{
    Claim, NewSubmission, ReportKind, Service, StoredSubmission, SubmissionAnswer, SubmissionState,
    SubmissionStatus,
};
use crate::store::Store;

/// What reporting needs.
#[derive(Clone)]
pub struct Reporter {
    /// The store.
    pub store: Store,
    /// The CAS client (mTLS, provider identity); `None` for previews.
    pub cas: Option<CasClient>,
    /// `[reporting]`.
    pub config: ReportingConfig,
    /// `sla.go_live`.
    pub go_live: Option<GoLive>,
}

/// What a day's run did, by count of submissions.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DayOutcome {
    /// Answered `202` (every part).
    pub accepted: u32,
    /// Refused (a part got a final 4xx).
    pub refused: u32,
    /// Still to be answered: retries spent, left for a later run.
    pub pending: u32,
    /// Claimed by another instance.
    pub busy: u32,
    /// Answered before this run.
    pub already: u32,
}

/// `submission_status` of a first submission made at `now` for `day`: on time up to the end of
/// the next day (UTC), late after.
pub fn status_for(day: NaiveDate, now: i64) -> SubmissionStatus {
    if super::day_of(now) <= day + chrono::Days::new(1) {
        SubmissionStatus::OnTime
    } else {
        SubmissionStatus::Late
    }
}

// === impl Reporter ===

impl Reporter {
    /// Every holdername's six submissions for `day`, built (nothing stored or sent).
    pub async fn build_day(
        &self,
        day: NaiveDate,
        holdername: Option<Uuid>,
        status: SubmissionStatus,
        now: i64,
    ) -> Result<Vec<(Uuid, Built)>, ReportError> {
        let (from, to) = (day_start(day), day_start(day + chrono::Days::new(1)));
        let facts = self.store.report_facts(from, to).await?;
        let live = crate::sla::live_since(&self.store, self.go_live).await?;
        let mut by_holder: BTreeMap<Uuid, HolderDay<'_>> = facts
            .holdernames
            .iter()
            .filter(|h| holdername.is_none_or(|x| x == **h))
            .map(|h| (*h, HolderDay::default()))
            .collect();
        for v in &facts.views {
            if let Some(d) = by_holder.get_mut(&v.holdername) {
                d.views.push(v);
            }
        }
        for c in &facts.calculations {
            if let Some(d) = by_holder.get_mut(&c.holdername) {
                d.calculations.push(c);
            }
        }
        for (h, d) in by_holder.iter_mut() {
            d.find = periods(&facts, *h, Service::Find, (from, to), live, now);
            d.view = periods(&facts, *h, Service::View, (from, to), live, now);
        }
        let kinds = <ReportKind as strum::VariantArray>::VARIANTS;
        Ok(by_holder
            .iter()
            .flat_map(|(h, d)| {
                kinds
                    .iter()
                    .map(move |k| (*h, build(*k, *h, day, d, status)))
            })
            .collect())
    }

    /// Submits `day` for every holdername: the initial submissions (on time or late), or with
    /// `resubmit` a correction of each. Safe to run again, and on several instances at once.
    pub async fn submit_day(
        &self,
        day: NaiveDate,
        resubmit: bool,
        now: i64,
    ) -> Result<DayOutcome, ReportError> {
        let status = if resubmit {
            SubmissionStatus::Correction
        } else {
            status_for(day, now)
        };
        let lease = Duration::from_secs(self.config.lease_s);
        let mut out = DayOutcome::default();
        let built = self.build_day(day, None, status, now).await?;
        if resubmit {
            self.check_submitted(day, &built).await?;
        }
        for (holdername, b) in built {
            let claim = self
                .store
                .claim_submission(
                    NewSubmission {
                        holdername,
                        kind: b.kind,
                        day,
                        submission_id: b.submission_id,
                        status: b.status,
                        reason: b.reason,
                        parts: b.parts,
                    },
                    lease,
                )
                .await?;
            match claim {
                Claim::Done(_) => out.already += 1,
                Claim::Busy(_) => out.busy += 1,
                Claim::Claimed(s) => match self.send(&s).await? {
                    Some(SubmissionState::Accepted) => out.accepted += 1,
                    Some(SubmissionState::Refused) => out.refused += 1,
                    Some(SubmissionState::Sending) => out.pending += 1,
                    None => out.busy += 1,
                },
            }
        }
        Ok(out)
    }

    /// Refuses a correction of `day` when any of its reports was never submitted (no initial
    /// submission, or null submission in its place, was ever claimed).
    async fn check_submitted(
        &self,
        day: NaiveDate,
        built: &[(Uuid, Built)],
    ) -> Result<(), ReportError> {
        let initial: std::collections::HashSet<(Uuid, ReportKind)> = self
            .store
            .submissions(Some(day))
            .await?
            .into_iter()
            .filter(|s| s.key.day == day && s.key.attempt == 0)
            .map(|s| (s.key.holdername, s.key.kind))
            .collect();
        let missing = built
            .iter()
            .filter(|(h, b)| !initial.contains(&(*h, b.kind)))
            .count();
        if missing > 0 {
            return Err(ReportError::NotSubmitted {
                day,
                missing,
                total: built.len(),
            });
        }
        Ok(())
    }

    /// Sends a claimed submission's unanswered parts; returns where it ends, or `None` when
    /// another instance took the claim over (this one then sends nothing more of it).
    async fn send(&self, s: &StoredSubmission) -> Result<Option<SubmissionState>, ReportError> {
        let Some(cas) = &self.cas else {
            return Ok(Some(SubmissionState::Sending));
        };
        let mut held = s.claimed_at;
        let report: &'static str = s.key.kind.as_str();
        let backoff = Backoff {
            base: Duration::from_millis(self.config.backoff_base_ms),
            cap: Duration::from_millis(self.config.backoff_cap_ms),
        };
        for part in s
            .parts
            .iter()
            .filter(|p| p.state == SubmissionState::Sending)
        {
            match self
                .store
                .renew_submission_claim(s.key.clone(), held)
                .await?
            {
                Some(renewed) => held = renewed,
                None => return Ok(None),
            }
            let deadline =
                tokio::time::Instant::now() + Duration::from_secs(self.config.retry_budget_s);
            let result = retry(
                deadline,
                backoff,
                |_| crate::metrics::report_submission(report, "retried"),
                || cas.report(s.key.kind, &part.body),
            )
            .await;
            let (state, http_status, answer) = match result {
                Ok(a) => {
                    crate::metrics::report_submission(report, "accepted");
                    (SubmissionState::Accepted, Some(a.status), a.datetimestamp)
                }
                Err(GaveUp::Final(e)) => {
                    crate::metrics::report_submission(report, "refused");
                    tracing::error!(report, error = %e, holdername = %s.key.holdername, day = %s.key.day, "PDP reporting refused a submission");
                    let (status, problem) = e.answer();
                    (SubmissionState::Refused, status, Some(problem))
                }
                Err(GaveUp::Spent(last)) => {
                    crate::metrics::report_submission(report, "pending");
                    tracing::warn!(report, error = %last, "PDP reporting call left for a later run");
                    let (status, problem) = last.answer();
                    (SubmissionState::Sending, status, Some(problem))
                }
            };
            let answer = SubmissionAnswer {
                key: s.key.clone(),
                part: part.part,
                state,
                http_status,
                answer,
            };
            self.store.record_submission_answer(answer).await?;
            if state == SubmissionState::Sending {
                self.store
                    .release_submission_claim(s.key.clone(), held)
                    .await?;
            }
            if state != SubmissionState::Accepted {
                return Ok(Some(state));
            }
        }
        Ok(Some(SubmissionState::Accepted))
    }
}
