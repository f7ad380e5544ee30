//! Builds a holdername's day into the six submissions' bodies, exactly as the reporting API
//! v2.1 defines them, split where an item limit would be passed (each part its own `record_id`,
//! all parts one `submission_id`).
//!
//! Choices, from MaPS' stub (`ViewResponseApiController`, `ServiceAvailabilityApiController`):
//! - `request-number` is never a null submission: a day without views is `req_count: 0`, with a
//!   `submission_id` (the yaml allows `null` there, its examples use it, and the stub takes
//!   either; the UUID ties the day's six reports together). Which views `req_count` counts:
//!   [`super::facts`].
//! - `response-time` and `calculations` without data are null submissions: `submission_id`
//!   null, no `items` / calculation data (the stub refuses either).
//! - `unavailable` is never a null submission (the yaml's `GenericReportingPropertiesWithoutNull`):
//!   a day without such payloads reports zero counts.
//! - Service availability is sent per holdername: `items: [{holdername: [periods]}]`, or, with
//!   nothing to report, a null submission `items: [holdername]`.
//! - `calculations` are always `multiple`: ERI and accrued calculations apart (both arrays are
//!   required; either may be empty).

use std::collections::BTreeMap;

use serde::Serialize;
use uuid::Uuid;

use super::Period;
use crate::model::{CalculationFact, ReportKind, SubmissionReason, SubmissionStatus, ViewFact};
use crate::wire::report::{
    self as wire, AvailabilityItems, CalculationDataArray, CalculationObject, MultipleCalculation,
    RequestDetails, ServiceUnavailability, Submission,
};

/// A view is reported as slow past this (CoCo2.1.3's 10 s).
pub const SLOW_VIEW_MICROS: i64 = 10_000_000;

/// One submission, ready to claim: its reason, ID and parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// Which report.
    pub kind: ReportKind,
    /// Initial, resubmission or null.
    pub reason: SubmissionReason,
    /// On time, late, correction.
    pub status: SubmissionStatus,
    /// Null for a null submission.
    pub submission_id: Option<Uuid>,
    /// `(record_id, JSON body)` per call.
    pub parts: Vec<(Uuid, String)>,
}

/// What a holdername's day holds.
#[derive(Debug, Clone, Default)]
pub struct HolderDay<'a> {
    /// Views received in the day.
    pub views: Vec<&'a ViewFact>,
    /// Calculations that ended in the day.
    pub calculations: Vec<&'a CalculationFact>,
    /// Find unavailability in the day.
    pub find: Vec<Period>,
    /// View unavailability in the day.
    pub view: Vec<Period>,
}

/// Builds `kind` for `holdername`: `resubmit` makes it a correction.
pub fn build(
    kind: ReportKind,
    holdername: Uuid,
    day: chrono::NaiveDate,
    facts: &HolderDay<'_>,
    status: SubmissionStatus,
) -> Built {
    let data_reason = if status == SubmissionStatus::Correction {
        SubmissionReason::Resubmission
    } else {
        SubmissionReason::Initial
    };
    let c = Ctx {
        kind,
        holdername,
        facts,
        status,
        start: wire::datetime(super::day_start(day)),
        data_reason,
        sid: Uuid::new_v4(),
    };
    let mut parts = Vec::new();
    let (reason, submission_id) = match kind {
        ReportKind::RequestNumber => request_number(&c, &mut parts),
        ReportKind::ResponseTime => response_time(&c, &mut parts),
        ReportKind::Calculations => calculations(&c, &mut parts),
        ReportKind::Unavailable => unavailable(&c, &mut parts),
        ReportKind::FindAvailability | ReportKind::ViewAvailability => availability(&c, &mut parts),
    };
    Built {
        kind,
        reason,
        status,
        submission_id,
        parts,
    }
}

/// What every report of one holdername's day is built from.
struct Ctx<'a> {
    kind: ReportKind,
    holdername: Uuid,
    facts: &'a HolderDay<'a>,
    status: SubmissionStatus,
    start: String,
    data_reason: SubmissionReason,
    sid: Uuid,
}

/// A submission's reason and ID, as [`Built`] reports them.
type Answer = (SubmissionReason, Option<Uuid>);

// === impl Ctx ===

impl Ctx<'_> {
    /// A new call of the day's data submission.
    fn data(&self) -> Submission {
        Submission {
            record_id: Uuid::new_v4(),
            submission_id: Some(self.sid),
            submission_status: self.status,
            reporting_period_start: self.start.clone(),
            submission_reason: self.data_reason,
        }
    }

    /// The one call of a null submission.
    fn null(&self) -> Submission {
        Submission {
            submission_id: None,
            submission_reason: SubmissionReason::Null,
            ..self.data()
        }
    }

    /// A data submission of one call, `body`.
    fn one<B: Serialize>(
        &self,
        parts: &mut Vec<(Uuid, String)>,
        body: impl FnOnce(Submission) -> B,
    ) -> Answer {
        push(parts, self.data(), body);
        (self.data_reason, Some(self.sid))
    }

    /// A null submission (`null`) when there are no `items`; else a data submission of a call
    /// per `limit` items (`data`).
    fn null_or_chunks<T, B: Serialize>(
        &self,
        parts: &mut Vec<(Uuid, String)>,
        items: &[T],
        limit: usize,
        null: impl FnOnce(Submission) -> B,
        data: impl Fn(Submission, &[T]) -> B,
    ) -> Answer {
        if items.is_empty() {
            push(parts, self.null(), null);
            return (SubmissionReason::Null, None);
        }
        for chunk in items.chunks(limit) {
            push(parts, self.data(), |s| data(s, chunk));
        }
        (self.data_reason, Some(self.sid))
    }
}

/// Adds the call `body` makes of `submission`.
fn push<B: Serialize>(
    parts: &mut Vec<(Uuid, String)>,
    submission: Submission,
    body: impl FnOnce(Submission) -> B,
) {
    let record_id = submission.record_id;
    parts.push((record_id, json(&body(submission))));
}

/// The `request number` report's calls.
fn request_number(c: &Ctx<'_>, parts: &mut Vec<(Uuid, String)>) -> Answer {
    c.one(parts, |submission| wire::RequestNumber {
        holdername_guid: c.holdername,
        submission,
        req_count: u32::try_from(c.facts.views.len()).unwrap_or(u32::MAX),
    })
}

/// The `response time` report's calls.
fn response_time(c: &Ctx<'_>, parts: &mut Vec<(Uuid, String)>) -> Answer {
    let slow: Vec<RequestDetails> = c
        .facts
        .views
        .iter()
        .filter(|v| v.responded_at - v.received_at > SLOW_VIEW_MICROS)
        .map(|v| RequestDetails {
            req_date_ts: wire::datetime(v.received_at),
            resp_date_ts: wire::datetime(v.responded_at),
        })
        .collect();
    let body = |submission, items: Option<&[RequestDetails]>| wire::ResponseTime {
        holdername_guid: c.holdername,
        submission,
        items: items.map(<[_]>::to_vec),
    };
    c.null_or_chunks(
        parts,
        &slow,
        wire::MAX_RESPONSE_TIMES,
        |s| body(s, None),
        |s, chunk| body(s, Some(chunk)),
    )
}

/// The `calculations` report's calls.
fn calculations(c: &Ctx<'_>, parts: &mut Vec<(Uuid, String)>) -> Answer {
    let object = |c: &CalculationFact| CalculationObject {
        value_code: c.value_code.as_str().to_owned(),
        calculation_start_date: wire::datetime(c.started_at),
        calculation_end_date: wire::datetime(c.ended_at.unwrap_or(c.started_at)),
    };
    let array =
        |chunk: &[&CalculationFact], of: fn(&CalculationFact) -> bool| CalculationDataArray {
            items: chunk.iter().filter(|c| of(c)).map(|c| object(c)).collect(),
        };
    let body = |submission, chunk: Option<&[&CalculationFact]>| wire::Calculations {
        calculation_type: chunk.map(|_| "multiple".into()),
        holdername_guid: c.holdername,
        submission,
        multiple_calculation: chunk.map(|chunk| MultipleCalculation {
            eri: array(chunk, |c| c.eri),
            accrued: array(chunk, |c| c.accrued),
        }),
    };
    c.null_or_chunks(
        parts,
        &c.facts.calculations,
        wire::MAX_CALCULATIONS,
        |s| body(s, None),
        |s, chunk| body(s, Some(chunk)),
    )
}

/// The `unavailable` report's calls.
fn unavailable(c: &Ctx<'_>, parts: &mut Vec<(Uuid, String)>) -> Answer {
    let count = |f: &dyn Fn(&ViewFact) -> bool| {
        u32::try_from(c.facts.views.iter().filter(|v| f(v)).count()).unwrap_or(u32::MAX)
    };
    c.one(parts, |submission| wire::Unavailable {
        holdername_guid: c.holdername,
        submission,
        contact_count: count(&|v| v.contact_scheme),
        missingadmin_count: count(&|v| v.missing_admin),
        temperror_count: count(&|v| v.temp_error),
        eri_unavail_ano_count: count(&|v| v.eri.ano),
        eri_unavail_ppf_count: count(&|v| v.eri.ppf),
        eri_unavail_trn_count: count(&|v| v.eri.trn),
        accrued_unavail_ano_count: count(&|v| v.accrued.ano),
        accrued_unavail_ppf_count: count(&|v| v.accrued.ppf),
        accrued_unavail_trn_count: count(&|v| v.accrued.trn),
    })
}

/// The `availability` report's calls.
fn availability(c: &Ctx<'_>, parts: &mut Vec<(Uuid, String)>) -> Answer {
    let periods = if c.kind == ReportKind::FindAvailability {
        &c.facts.find
    } else {
        &c.facts.view
    };
    c.null_or_chunks(
        parts,
        periods,
        wire::MAX_PERIODS,
        |submission| wire::ServiceAvailability {
            submission,
            items: AvailabilityItems::Holdernames(vec![c.holdername]),
        },
        |submission, chunk| {
            let list = chunk
                .iter()
                .map(|p| ServiceUnavailability {
                    start_date_ts: wire::datetime(p.from),
                    end_date_ts: wire::datetime(p.to),
                    unavail_scheduled: p.scheduled,
                    unavail_reason: p.reason.clone(),
                })
                .collect();
            wire::ServiceAvailability {
                submission,
                items: AvailabilityItems::Periods(vec![BTreeMap::from([(c.holdername, list)])]),
            }
        },
    )
}

fn json(v: &impl Serialize) -> String {
    serde_json::to_string(v).expect("report bodies serialise")
}

#[cfg(test)]
mod tests;
