use super::*;
use pdp_provider::model::{CalculationFact, CalculationKind, SubmissionStatus, ViewFact};
use pdp_provider::report::build::{build, HolderDay};

fn day() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
}

#[test]
fn every_body_the_builder_makes_is_accepted_empty_or_full() {
    let h = uuid::Uuid::new_v4();
    let t0 = pdp_provider::report::day_start(day());
    let views: Vec<ViewFact> = (0..3)
        .map(|i| ViewFact {
            holdername: h,
            received_at: t0 + i,
            responded_at: t0 + i + 12_000_000,
            contact_scheme: true,
            missing_admin: false,
            temp_error: false,
            eri: Default::default(),
            accrued: Default::default(),
        })
        .collect();
    let calcs = [CalculationFact {
        holdername: h,
        value_code: CalculationKind::Dbc,
        eri: true,
        accrued: false,
        started_at: t0 - 86_400_000_000,
        ended_at: Some(t0 + 5),
    }];
    let full = HolderDay {
        views: views.iter().collect(),
        calculations: calcs.iter().collect(),
        find: vec![pdp_provider::report::Period {
            from: t0,
            to: t0 + 60_000_000,
            scheduled: true,
            reason: "Downtime for system update".into(),
        }],
        view: vec![],
    };
    let state = ReportState::default();
    for facts in [HolderDay::default(), full] {
        for status in [
            SubmissionStatus::OnTime,
            SubmissionStatus::Late,
            SubmissionStatus::Correction,
        ] {
            for kind in <ReportKind as strum::VariantArray>::VARIANTS {
                let b = build(*kind, h, day(), &facts, status);
                for (_, body) in &b.parts {
                    let (code, answer) = state.handle(*kind, "x", body.as_bytes());
                    assert_eq!(code, 202, "{kind} {body} {answer}");
                }
            }
        }
    }
}

fn request_number() -> Value {
    json!({"holdernameGuid": "816f82b5-8e4f-407b-8c54-afb179c4af5a",
           "record_id": "6ac7f2a5-d518-44bf-9dff-ec5bf7e46e06",
           "submission_reason": "initial submission", "submission_id": null,
           "submission_status": "on time",
           "reporting_period_start": "2025-03-19T00:00:00.000Z", "req_count": 5})
}

#[test]
fn the_stubs_refusals() {
    let rn = ReportKind::RequestNumber;
    // The stub's model requires a non-null submission_id outside null submissions.
    assert_eq!(validate(rn, &request_number()), bad("SUBMISSION_ID"));
    let mut ok = request_number();
    ok["submission_id"] = json!("b955b911-838c-4179-bd2f-089630c61a9d");
    assert_eq!(validate(rn, &ok), Ok(()));
    let mut v = ok.clone();
    v["extra"] = json!(1);
    assert_eq!(validate(rn, &v), bad("UNEXPECTED_FIELD"));
    let mut v = ok.clone();
    v["reporting_period_start"] = json!("2025-03-19 00:00:00");
    assert_eq!(validate(rn, &v), bad("REPORTING_PERIOD_START"));
    let mut v = ok.clone();
    v["submission_status"] = json!("On time");
    assert_eq!(validate(rn, &v), bad("SUBMISSION_STATUS"));
    let mut v = ok.clone();
    v["req_count"] = json!(-1);
    assert_eq!(validate(rn, &v), bad("REQ_COUNT"));
    assert_eq!(validate(rn, &json!({})), bad("REQUEST_BODY"));
    // A null submission's submission_id is null; unavailable has none.
    let mut v = ok.clone();
    v["submission_reason"] = json!("null submission");
    assert_eq!(
        validate(ReportKind::ResponseTime, &v),
        bad("UNEXPECTED_FIELD")
    );
    v.as_object_mut().unwrap().remove("req_count");
    assert_eq!(validate(ReportKind::ResponseTime, &v), bad("SUBMISSION_ID"));
    v["submission_id"] = Value::Null;
    assert_eq!(validate(ReportKind::ResponseTime, &v), Ok(()));
    let mut u = v.clone();
    for k in [
        "contact_count",
        "missingadmin_count",
        "temperror_count",
        "eri_unavail_ano_count",
        "eri_unavail_ppf_count",
        "eri_unavail_trn_count",
        "accrued_unavail_ano_count",
        "accrued_unavail_ppf_count",
        "accrued_unavail_trn_count",
    ] {
        u[k] = json!(0);
    }
    assert_eq!(
        validate(ReportKind::Unavailable, &u),
        bad("SUBMISSION_REASON")
    );
    u["submission_id"] = json!("b955b911-838c-4179-bd2f-089630c61a9d");
    assert_eq!(
        validate(ReportKind::Unavailable, &u),
        bad("SUBMISSION_REASON")
    );
}

#[test]
fn scripted_faults_count_down_and_meet_only_valid_bodies() {
    let state = ReportState::default();
    state.configure(vec![StubConfiguration {
        endpoint: ReportKind::RequestNumber,
        status: 429,
        code: "TOO_MANY_REQUESTS".into(),
        count: 2,
        errors: vec![pdp_provider::wire::report::ProblemError {
            code: "TOO_MANY_REQUESTS".into(),
        }],
    }]);
    let mut ok = request_number();
    ok["submission_id"] = json!("b955b911-838c-4179-bd2f-089630c61a9d");
    let body = serde_json::to_vec(&ok).unwrap();
    assert_eq!(state.handle(ReportKind::RequestNumber, "x", b"{}").0, 400);
    let (s, p) = state.handle(ReportKind::RequestNumber, "x", &body);
    assert_eq!((s, p["title"].as_str()), (429, Some("Too Many Requests")));
    assert_eq!(state.handle(ReportKind::RequestNumber, "x", &body).0, 429);
    assert_eq!(state.handle(ReportKind::RequestNumber, "x", &body).0, 202);
}
