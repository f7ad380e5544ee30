use super::*;
use crate::model::UnavailableCodes;

fn day() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
}

fn view(h: Uuid, at: i64, took: i64) -> ViewFact {
    ViewFact {
        holdername: h,
        received_at: at,
        responded_at: at + took,
        contact_scheme: false,
        missing_admin: false,
        temp_error: false,
        eri: UnavailableCodes::default(),
        accrued: UnavailableCodes::default(),
    }
}

#[test]
fn slow_views_past_the_item_limit_are_split_under_one_submission_id() {
    let h = Uuid::new_v4();
    let t0 = super::super::day_start(day());
    let views: Vec<ViewFact> = (0..3000).map(|i| view(h, t0 + i, 11_000_000)).collect();
    let facts = HolderDay {
        views: views.iter().collect(),
        ..Default::default()
    };
    let b = build(
        ReportKind::ResponseTime,
        h,
        day(),
        &facts,
        SubmissionStatus::OnTime,
    );
    assert_eq!(b.parts.len(), 3);
    let mut records = std::collections::HashSet::new();
    let mut total = 0;
    for (record_id, body) in &b.parts {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["submission_id"], b.submission_id.unwrap().to_string());
        assert_eq!(v["record_id"], record_id.to_string());
        assert!(v["items"].as_array().unwrap().len() <= wire::MAX_RESPONSE_TIMES);
        total += v["items"].as_array().unwrap().len();
        records.insert(*record_id);
    }
    assert_eq!(total, 3000);
    assert_eq!(records.len(), 3);
}

#[test]
fn an_empty_day_is_null_except_request_number_and_unavailable() {
    let h = Uuid::new_v4();
    let facts = HolderDay::default();
    for kind in <ReportKind as strum::VariantArray>::VARIANTS {
        let b = build(*kind, h, day(), &facts, SubmissionStatus::OnTime);
        let v: serde_json::Value = serde_json::from_str(&b.parts[0].1).unwrap();
        let null = matches!(kind, ReportKind::RequestNumber | ReportKind::Unavailable);
        assert_eq!(b.reason == SubmissionReason::Null, !null, "{kind}");
        assert_eq!(v["submission_id"].is_null(), !null, "{kind}");
        assert!(v.as_object().unwrap().contains_key("submission_id"));
        assert_eq!(v["reporting_period_start"], "2026-11-25T00:00:00.000Z");
    }
}

#[test]
fn a_correction_is_a_resubmission_or_a_null_correction() {
    let h = Uuid::new_v4();
    let facts = HolderDay::default();
    let b = build(
        ReportKind::RequestNumber,
        h,
        day(),
        &facts,
        SubmissionStatus::Correction,
    );
    assert_eq!(b.reason, SubmissionReason::Resubmission);
    let b = build(
        ReportKind::ResponseTime,
        h,
        day(),
        &facts,
        SubmissionStatus::Correction,
    );
    assert_eq!(b.reason, SubmissionReason::Null);
    assert_eq!(b.status, SubmissionStatus::Correction);
}
