//! The judge's rules, each on what a conforming and a faulty endpoint would show.

use super::catalogue::{self, Expect, ReportExpect, TlsExpect, ViewExpect};
use super::judge::{self, FindSeen, Stored, Verdict, ViewSeen};
use crate::cas::{Call, Resource};

fn call(endpoint: &str, status: u16, at_ms: i64, retry_after: Option<u64>) -> Call {
    let at = chrono::DateTime::from_timestamp_millis(1_800_000_000_000 + at_ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Call {
        endpoint: endpoint.into(),
        x_request_id: None,
        status,
        at,
        credential: Some("X".into()),
        retry_after,
    }
}

fn seen<'a>(calls: &'a [Call], resources: &'a [Resource], stored: &'a Stored) -> FindSeen<'a> {
    FindSeen {
        status: Some(202),
        request_id: "f1",
        calls,
        resources,
        stored,
    }
}

fn failed(v: Verdict) -> String {
    match v {
        Verdict::Fail(r) => r,
        Verdict::Pass => panic!("expected a failure"),
    }
}

const RETRIED: Expect = Expect::Retried {
    endpoint: "POST /rreguri",
    status: 429,
};

#[test]
fn a_429_retried_after_its_retry_after_passes_and_early_or_no_retry_fails() {
    let gone = Stored::Failed("budget_exhausted".into());
    let ok = [
        call("POST /token", 200, 0, None),
        call("POST /rreguri", 429, 10, Some(3)),
        call("POST /rreguri", 429, 3_100, Some(2)),
    ];
    assert_eq!(judge::find(&seen(&ok, &[], &gone), RETRIED), Verdict::Pass);
    let early = [
        call("POST /rreguri", 429, 0, Some(3)),
        call("POST /rreguri", 429, 900, None),
    ];
    assert!(failed(judge::find(&seen(&early, &[], &gone), RETRIED)).contains("Retry-After of 3 s"));
    let once = [call("POST /rreguri", 429, 0, Some(3))];
    assert!(failed(judge::find(&seen(&once, &[], &gone), RETRIED)).contains("not called again"));
    let still = Stored::NotEnded;
    assert!(failed(judge::find(&seen(&ok, &[], &still), RETRIED)).contains("end failed"));
}

#[test]
fn a_final_refusal_called_twice_fails() {
    let expect = Expect::NotRetried {
        endpoint: "POST /rreguri",
        status: 401,
    };
    let gone = Stored::Failed("cas_refused_401".into());
    let once = [
        call("POST /token", 200, 0, None),
        call("POST /rreguri", 401, 5, None),
    ];
    assert_eq!(judge::find(&seen(&once, &[], &gone), expect), Verdict::Pass);
    let twice = [
        call("POST /rreguri", 401, 0, None),
        call("POST /rreguri", 401, 50, None),
    ];
    assert!(failed(judge::find(&seen(&twice, &[], &gone), expect)).contains("called 2 times"));
}

#[test]
fn a_no_match_with_any_cas_call_fails() {
    let none = Stored::Unknown;
    assert_eq!(
        judge::find(&seen(&[], &[], &none), Expect::NoCasCall),
        Verdict::Pass
    );
    let token = [call("POST /token", 200, 0, None)];
    let why = failed(judge::find(&seen(&token, &[], &none), Expect::NoCasCall));
    assert!(why.contains("called the CAS"), "{why}");
}

#[test]
fn a_view_served_without_introspection_or_refused_without_a_challenge_fails() {
    let served = ViewSeen {
        status: Some(200),
        token: Some(Ok(())),
        ..Default::default()
    };
    let why = failed(judge::view(&served, ViewExpect::Served));
    assert!(why.contains("without introspecting"), "{why}");
    let why = failed(judge::view(&served, ViewExpect::Challenged));
    assert!(why.contains("the view was served"), "{why}");
    let refused = ViewSeen {
        status: Some(401),
        challenge: true,
        cas_calls: vec![call("POST /introspect", 200, 0, None)],
        ..Default::default()
    };
    assert_eq!(judge::view(&refused, ViewExpect::Challenged), Verdict::Pass);
}

#[test]
fn a_certificate_through_the_handshake_fails_a_refusal_case() {
    assert_eq!(
        judge::tls(None, Some("tls: expired"), TlsExpect::Refused),
        Verdict::Pass
    );
    let why = failed(judge::tls(Some(202), None, TlsExpect::Refused));
    assert!(why.contains("got through the handshake"), "{why}");
    assert!(failed(judge::tls(Some(202), None, TlsExpect::Status(403))).contains("expected 403"));
}

#[test]
fn ids_are_unique_and_only_selects_by_id_or_group() {
    let mut ids: Vec<&str> = catalogue::CASES.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), catalogue::CASES.len());
    let s9: Vec<&str> = catalogue::select(Some("S9"))
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(s9, ["S9.1", "S9.2", "S9.3", "S9.4", "S9.5"]);
    assert_eq!(catalogue::select(Some("S1,O1")).unwrap().len(), 2);
    assert!(catalogue::select(Some("S99")).is_err());
}

#[test]
fn the_report_redacts_tokens_and_personal_data() {
    let body = serde_json::json!({"uat": crate::magic::values::HAPPY_PATH_UAT_03,
        "findData": {"names": [{"givenName": "JANE", "familyName": "DOE"}],
                     "nino": {"value": "QQ123456C"}}});
    let shown = super::redact::request_body(&body);
    assert!(shown.contains("[HAPPY_PATH_UAT_03]"));
    assert!(
        !shown.contains("JANE") && !shown.contains("QQ123456C"),
        "{shown}"
    );
    let own = crate::cas::mint(serde_json::json!({"sub": "x"}));
    assert_eq!(
        super::redact::header("Authorization", &format!("Bearer {own}")),
        "Bearer [redacted]"
    );
    let challenge = r#"UMA as_uri="https://cas/token", ticket="abc.def""#;
    assert!(!super::redact::header("WWW-Authenticate", challenge).contains("abc.def"));
}

fn received(status: u16) -> crate::report::Received {
    crate::report::Received {
        kind: pdp_provider::model::ReportKind::RequestNumber,
        x_request_id: "x".into(),
        body: serde_json::json!({"submission_status": "late",
                                 "submission_reason": "null submission"}),
        status,
    }
}

#[test]
fn reporting_refusals_resent_or_retries_never_accepted_fail() {
    use super::reporting::{judge, Seen};
    use pdp_provider::model::SubmissionState;
    use pdp_provider::report::submit::DayOutcome;
    let refused = DayOutcome {
        refused: 1,
        ..Default::default()
    };
    let seen = |statuses: &[u16], out: &DayOutcome| Seen {
        outcome: Ok(out.clone()),
        received: statuses.iter().map(|s| received(*s)).collect(),
        faulted_states: vec![SubmissionState::Refused],
    };
    assert_eq!(
        judge(&seen(&[400], &refused), ReportExpect::Refused),
        Verdict::Pass
    );
    let why = failed(judge(&seen(&[400, 400], &refused), ReportExpect::Refused));
    assert!(why.contains("sent again"), "{why}");
    let ok = DayOutcome {
        accepted: 1,
        ..Default::default()
    };
    let retried = ReportExpect::RetriedThenAccepted(503);
    assert_eq!(judge(&seen(&[503, 202], &ok), retried), Verdict::Pass);
    let why = failed(judge(&seen(&[503], &ok), retried));
    assert!(why.contains("not sent again until accepted"), "{why}");
    let late = ReportExpect::Accepted {
        status: "on time",
        reason: None,
    };
    let why = failed(judge(&seen(&[202], &ok), late));
    assert!(why.contains("\"on time\""), "{why}");
}

fn resource(match_status: &str, deleted: Option<&str>) -> Resource {
    Resource {
        resource_id: "r1".into(),
        name: "urn:pei:x:y".into(),
        description: "scheme".into(),
        match_status: match_status.into(),
        resource_scopes: vec!["value".into(), "owner".into()],
        inbound_request_id: "f1".into(),
        pat: String::new(),
        deleted: deleted.map(str::to_owned),
    }
}

fn op<'a>(
    action: catalogue::Action,
    calls: &'a [Call],
    resource: Option<&'a Resource>,
    ended: &'a Stored,
) -> judge::OpSeen<'a> {
    judge::OpSeen {
        find: Verdict::Pass,
        action,
        calls,
        resource,
        ended,
    }
}

#[test]
fn a_resolution_or_deregistration_the_cas_did_not_record_fails() {
    use catalogue::{Action, OpExpect};
    use pdp_provider::peis::DeletionReason;
    let done = Stored::Done;
    let patched = [call("PATCH /rreguri", 200, 0, None)];
    let yes = resource("match-yes", None);
    let seen = op(Action::ResolveYes, &patched, Some(&yes), &done);
    assert_eq!(judge::operation(&seen, OpExpect::Done), Verdict::Pass);
    let still = resource("match-possible", None);
    let seen = op(Action::ResolveYes, &patched, Some(&still), &done);
    let why = failed(judge::operation(&seen, OpExpect::Done));
    assert!(why.contains("instead of match-yes"), "{why}");
    let seen = op(Action::ResolveYes, &[], Some(&still), &done);
    let why = failed(judge::operation(&seen, OpExpect::Done));
    assert!(why.contains("expected one PATCH /rreguri"), "{why}");

    let withdraw = Action::Deregister(DeletionReason::MatchWithdrawn);
    let deleted = [call("DELETE /rreguri", 204, 0, None)];
    let gone = resource("match-yes", Some("match-withdrawn"));
    let seen = op(withdraw, &deleted, Some(&gone), &done);
    assert_eq!(judge::operation(&seen, OpExpect::Done), Verdict::Pass);
    // match-withdrawn is not a reason a possible match allows.
    let possible = resource("match-possible", Some("match-withdrawn"));
    let seen = op(withdraw, &deleted, Some(&possible), &done);
    let why = failed(judge::operation(&seen, OpExpect::Done));
    assert!(why.contains("a reason it allows"), "{why}");
    let mut seen = op(withdraw, &deleted, Some(&gone), &done);
    seen.find = Verdict::Fail("answered 400 instead of 202".into());
    let why = failed(judge::operation(&seen, OpExpect::Done));
    assert!(why.starts_with("the find that registers the PeI"), "{why}");
}

#[test]
fn an_action_refusal_retried_or_a_retry_too_early_or_an_action_not_failed_fails() {
    use catalogue::{Action, OpExpect};
    use pdp_provider::peis::DeletionReason;
    let withdraw = Action::Deregister(DeletionReason::MatchWithdrawn);
    let flagged = Stored::Failed("PAT refused".into());
    let once = [call("DELETE /rreguri", 401, 0, None)];
    let seen = op(withdraw, &once, None, &flagged);
    assert_eq!(
        judge::operation(&seen, OpExpect::NotRetried(401)),
        Verdict::Pass
    );
    let twice = [
        call("DELETE /rreguri", 401, 0, None),
        call("DELETE /rreguri", 401, 300, None),
    ];
    let seen = op(withdraw, &twice, None, &flagged);
    let why = failed(judge::operation(&seen, OpExpect::NotRetried(401)));
    assert!(why.contains("called 2 times"), "{why}");

    let spent = Stored::Failed("CAS: budget spent".into());
    let ok = [
        call("PATCH /rreguri", 429, 0, Some(2)),
        call("PATCH /rreguri", 429, 2_050, Some(4)),
        call("PATCH /rreguri", 429, 6_100, None),
    ];
    let seen = op(Action::ResolveYes, &ok, None, &spent);
    assert_eq!(
        judge::operation(&seen, OpExpect::Retried(429)),
        Verdict::Pass
    );
    let early = [
        call("PATCH /rreguri", 429, 0, Some(4)),
        call("PATCH /rreguri", 429, 1_000, None),
    ];
    let seen = op(Action::ResolveYes, &early, None, &spent);
    let why = failed(judge::operation(&seen, OpExpect::Retried(429)));
    assert!(why.contains("Retry-After of 4 s"), "{why}");
    let done = Stored::Done;
    let seen = op(Action::ResolveYes, &ok, None, &done);
    let why = failed(judge::operation(&seen, OpExpect::Retried(429)));
    assert!(why.contains("the action should end failed"), "{why}");
}
