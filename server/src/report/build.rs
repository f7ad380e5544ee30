//! Builds a holdername's day into the six submissions' bodies, exactly as the reporting API
//! v2.1 defines them, split where an item limit would be passed (each part its own `record_id`,
//! all parts one `submission_id`).
//!
//! Choices, from MaPS' stub (`ViewResponseApiController`, `ServiceAvailabilityApiController`):
//! - `request-number` is never a null submission: a day without views is `req_count: 0`, with a
//!   `submission_id` (the stub's model requires it non-null there, while the yaml's examples
//!   show `null`; a UUID satisfies both).
//! - `response-time` and `calculations` without data are null submissions: `submission_id`
//!   null, no `items` / calculation data (the stub refuses either).
//! - `unavailable` is never a null submission (the yaml's `GenericReportingPropertiesWithoutNull`):
//!   a day without such payloads reports zero counts.
//! - Service availability is sent per holdername: `items: [{holdername: [periods]}]`, or, with
//!   nothing to report, a null submission `items: [holdername]`.
//! - `calculations` are always `multiple`: ERI and accrued calculations apart (both arrays are
//!   required; either may be empty).

use std::collections::BTreeMap;

use uuid::Uuid;

use super::Period;
use crate::store::model::{
    CalculationFact, ReportKind, SubmissionReason, SubmissionStatus, ViewFact,
};
use crate::wire::report::{
    self as wire, AvailabilityItems, CalculationDataArray, CalculationObject, MultipleCalculation,
    RequestDetails, ServiceUnavailability,
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

/// The `request number` report's calls.
fn request_number(
    c: &Ctx<'_>,
    parts: &mut Vec<(Uuid, String)>,
) -> (SubmissionReason, Option<Uuid>) {
    let (holdername, facts, status, data_reason, sid) =
        (c.holdername, c.facts, c.status, c.data_reason, c.sid);
    let start = c.start.clone();
    let body = wire::RequestNumber {
        holdername_guid: holdername,
        record_id: Uuid::new_v4(),
        submission_id: Some(sid),
        submission_status: status,
        reporting_period_start: start,
        submission_reason: data_reason,
        req_count: u32::try_from(facts.views.len()).unwrap_or(u32::MAX),
    };
    parts.push((body.record_id, json(&body)));
    (data_reason, Some(sid))
}

/// The `response time` report's calls.
fn response_time(c: &Ctx<'_>, parts: &mut Vec<(Uuid, String)>) -> (SubmissionReason, Option<Uuid>) {
    let (holdername, facts, status, data_reason, sid) =
        (c.holdername, c.facts, c.status, c.data_reason, c.sid);
    let start = c.start.clone();
    let slow: Vec<RequestDetails> = facts
        .views
        .iter()
        .filter(|v| v.responded_at - v.received_at > SLOW_VIEW_MICROS)
        .map(|v| RequestDetails {
            req_date_ts: wire::datetime(v.received_at),
            resp_date_ts: wire::datetime(v.responded_at),
        })
        .collect();
    if slow.is_empty() {
        let body = wire::ResponseTime {
            holdername_guid: holdername,
            record_id: Uuid::new_v4(),
            submission_id: None,
            submission_status: status,
            reporting_period_start: start,
            submission_reason: SubmissionReason::Null,
            items: None,
        };
        parts.push((body.record_id, json(&body)));
        (SubmissionReason::Null, None)
    } else {
        for chunk in slow.chunks(wire::MAX_RESPONSE_TIMES) {
            let body = wire::ResponseTime {
                holdername_guid: holdername,
                record_id: Uuid::new_v4(),
                submission_id: Some(sid),
                submission_status: status,
                reporting_period_start: start.clone(),
                submission_reason: data_reason,
                items: Some(chunk.to_vec()),
            };
            parts.push((body.record_id, json(&body)));
        }
        (data_reason, Some(sid))
    }
}

/// The `calculations` report's calls.
fn calculations(c: &Ctx<'_>, parts: &mut Vec<(Uuid, String)>) -> (SubmissionReason, Option<Uuid>) {
    let (holdername, facts, status, data_reason, sid) =
        (c.holdername, c.facts, c.status, c.data_reason, c.sid);
    let start = c.start.clone();
    if facts.calculations.is_empty() {
        let body = wire::Calculations {
            calculation_type: None,
            holdername_guid: holdername,
            record_id: Uuid::new_v4(),
            submission_id: None,
            submission_status: status,
            reporting_period_start: start,
            submission_reason: SubmissionReason::Null,
            multiple_calculation: None,
        };
        parts.push((body.record_id, json(&body)));
        (SubmissionReason::Null, None)
    } else {
        let object = |c: &CalculationFact| CalculationObject {
            value_code: c.value_code.as_str().to_owned(),
            calculation_start_date: wire::datetime(c.started_at),
            calculation_end_date: wire::datetime(c.ended_at.unwrap_or(c.started_at)),
        };
        for chunk in facts.calculations.chunks(wire::MAX_CALCULATIONS) {
            let body = wire::Calculations {
                calculation_type: Some("multiple".into()),
                holdername_guid: holdername,
                record_id: Uuid::new_v4(),
                submission_id: Some(sid),
                submission_status: status,
                reporting_period_start: start.clone(),
                submission_reason: data_reason,
                multiple_calculation: Some(MultipleCalculation {
                    eri: CalculationDataArray {
                        items: chunk.iter().filter(|c| c.eri).map(|c| object(c)).collect(),
                    },
                    accrued: CalculationDataArray {
                        items: chunk
                            .iter()
                            .filter(|c| c.accrued)
                            .map(|c| object(c))
                            .collect(),
                    },
                }),
            };
            parts.push((body.record_id, json(&body)));
        }
        (data_reason, Some(sid))
    }
}

/// The `unavailable` report's calls.
fn unavailable(c: &Ctx<'_>, parts: &mut Vec<(Uuid, String)>) -> (SubmissionReason, Option<Uuid>) {
    let (holdername, facts, status, data_reason, sid) =
        (c.holdername, c.facts, c.status, c.data_reason, c.sid);
    let start = c.start.clone();
    let count = |f: &dyn Fn(&ViewFact) -> bool| {
        u32::try_from(facts.views.iter().filter(|v| f(v)).count()).unwrap_or(u32::MAX)
    };
    let body = wire::Unavailable {
        holdername_guid: holdername,
        record_id: Uuid::new_v4(),
        submission_id: Some(sid),
        submission_status: status,
        reporting_period_start: start,
        submission_reason: data_reason,
        contact_count: count(&|v| v.contact_scheme),
        missingadmin_count: count(&|v| v.missing_admin),
        temperror_count: count(&|v| v.temp_error),
        eri_unavail_ano_count: count(&|v| v.eri.ano),
        eri_unavail_ppf_count: count(&|v| v.eri.ppf),
        eri_unavail_trn_count: count(&|v| v.eri.trn),
        accrued_unavail_ano_count: count(&|v| v.accrued.ano),
        accrued_unavail_ppf_count: count(&|v| v.accrued.ppf),
        accrued_unavail_trn_count: count(&|v| v.accrued.trn),
    };
    parts.push((body.record_id, json(&body)));
    (data_reason, Some(sid))
}

/// The `availability` report's calls.
fn availability(c: &Ctx<'_>, parts: &mut Vec<(Uuid, String)>) -> (SubmissionReason, Option<Uuid>) {
    let (holdername, facts, status, data_reason, sid) =
        (c.holdername, c.facts, c.status, c.data_reason, c.sid);
    let start = c.start.clone();
    let periods = if c.kind == ReportKind::FindAvailability {
        &facts.find
    } else {
        &facts.view
    };
    if periods.is_empty() {
        let body = wire::ServiceAvailability {
            record_id: Uuid::new_v4(),
            submission_id: None,
            submission_status: status,
            reporting_period_start: start,
            submission_reason: SubmissionReason::Null,
            items: AvailabilityItems::Holdernames(vec![holdername]),
        };
        parts.push((body.record_id, json(&body)));
        (SubmissionReason::Null, None)
    } else {
        for chunk in periods.chunks(wire::MAX_PERIODS) {
            let list = chunk
                .iter()
                .map(|p| ServiceUnavailability {
                    start_date_ts: wire::datetime(p.from),
                    end_date_ts: wire::datetime(p.to),
                    unavail_scheduled: p.scheduled,
                    unavail_reason: p.reason.clone(),
                })
                .collect();
            let body = wire::ServiceAvailability {
                record_id: Uuid::new_v4(),
                submission_id: Some(sid),
                submission_status: status,
                reporting_period_start: start.clone(),
                submission_reason: data_reason,
                items: AvailabilityItems::Periods(vec![BTreeMap::from([(holdername, list)])]),
            };
            parts.push((body.record_id, json(&body)));
        }
        (data_reason, Some(sid))
    }
}

fn json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).expect("report bodies serialise")
}

#[cfg(test)]
mod tests;
