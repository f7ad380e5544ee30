//! Every unit of work on both backends, in one scenario: the answers are the same.
//!
//! The scenario calls each of the store's operations at least once, on a SQLite store and on a
//! PostgreSQL store, and writes down each answer. The two transcripts must agree line by line
//! once the wall-clock times (microseconds since the epoch) and random IDs are masked.

use super::*;

/// Masks what differs between runs by design: times of the clock (13 digits or more) and
/// random UUIDs (a PAT's id, a submission's parts).
fn masked(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut digits = String::new();
    for c in line.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if digits.len() >= 13 {
            out.push('#');
        } else {
            out.push_str(&digits);
        }
        digits.clear();
        out.push(c);
    }
    out.trim_end().to_owned()
}

/// The scenario's answers, one line per call.
async fn transcript(db: Place) -> Vec<String> {
    let s = db.open().await;
    let mut t = Vec::new();
    macro_rules! note {
        ($label:literal, $e:expr) => {
            t.push(format!("{}: {:?}", $label, $e))
        };
    }
    members_and_schemes(&s, &mut t).await;
    note!(
        "append matched",
        s.append(find("f1", true), audit("f1")).await
    );
    note!(
        "append repeat",
        s.append(find("f1", true), audit("f1")).await
    );
    note!(
        "append no-match",
        s.append(find("f2", false), audit("f2")).await
    );
    note!(
        "append second",
        s.append(find("f3", true), audit("f3")).await
    );
    note!(
        "oldest open",
        s.oldest_open_find().await.map(|o| o.is_some())
    );
    let claimed = s.claim(Duration::from_secs(60), 10).await.unwrap();
    note!(
        "claim",
        claimed
            .iter()
            .map(|c| (&c.request_id, c.attempts, &c.find_data))
            .collect::<Vec<_>>()
    );
    note!(
        "renew",
        s.renew_lease("f1", 1, Duration::from_secs(60)).await
    );
    note!(
        "renew stale",
        s.renew_lease("f1", 7, Duration::from_secs(60)).await
    );
    let peis = vec![pei(1, MatchStatus::Yes), pei(2, MatchStatus::Possible)];
    let (pat_id, pending) = s
        .record_matches("f1", peis, Some(("pat-1", Some(9))))
        .await
        .unwrap();
    note!("record matches", pending);
    let pat_id = pat_id.unwrap();
    let pat_mask = pat_id.clone();
    note!("pat", s.pat(&pat_id).await);
    let registered = vec![
        ("urn:pei:1".to_owned(), "r1".to_owned()),
        ("urn:pei:2".to_owned(), "r2".to_owned()),
    ];
    note!(
        "end",
        s.end(
            "f1",
            Some(1),
            Ok(FindOutcome::MatchYes),
            registered,
            Some(pat_id)
        )
        .await
    );
    note!("end again", s.complete("f1", FindOutcome::MatchYes).await);
    note!("fail", s.fail("f3", "cas-unavailable").await);
    note!("find", s.find_request("f1").await);
    note!("none open", s.oldest_open_find().await);
    note!("finds", s.find_requests().await.map(|f| f.len()));
    note!(
        "failed",
        s.failed()
            .await
            .map(|f| f.into_iter().map(|f| f.reason).collect::<Vec<_>>())
    );
    peis_and_calculations(&s, &mut t).await;
    audit_and_reports(&s, &mut t).await;
    console(&s, &mut t).await;
    note!(
        "reseal",
        s.reseal(ResealCursor::default(), 100)
            .await
            .map(|r| (r.resealed, r.unreadable))
    );
    note!("sealed with other keys", s.sealed_with_other_keys().await);
    s.close().await;
    // A PAT's id is random.
    t.into_iter()
        .map(|l| l.replace(&pat_mask, "<pat>"))
        .collect()
}

async fn members_and_schemes(s: &Store, t: &mut Vec<String>) {
    macro_rules! note {
        ($label:literal, $e:expr) => {
            t.push(format!("{}: {:?}", $label, $e))
        };
    }
    let batch = vec![member("m1", &[1, 2], "r1"), member("m2", &[3], "r2")];
    note!("dry run", s.apply_members(batch.clone(), true).await);
    note!("count after dry run", s.member_count().await);
    note!("apply", s.apply_members(batch, false).await);
    note!(
        "apply again",
        s.apply_members(vec![member("m1", &[1], "r1b")], false)
            .await
    );
    note!(
        "remove",
        s.apply_members(vec![MemberChange::Remove("m2".into())], false)
            .await
    );
    note!(
        "remove unknown",
        s.apply_members(vec![MemberChange::Remove("m9".into())], false)
            .await
    );
    note!("ids", s.member_ids(None).await);
    note!(
        "ids of holdername",
        s.member_ids(Some(Uuid::from_u128(5))).await
    );
    note!("record", s.member_record("m1").await);
    note!("count", s.member_count().await);
    note!(
        "pension",
        s.pension(Uuid::from_u128(1))
            .await
            .map(|p| p.map(|p| (p.member_id, p.view_data)))
    );
    note!(
        "removed pension",
        s.pension(Uuid::from_u128(2)).await.map(|p| p.is_some())
    );
    // Versions only go up: PostgreSQL's sequence leaves gaps (a rolled-back dry run took some).
    let version = s.data_version().await.unwrap();
    note!("version", version > 0);
    let changes = s.data_changes_since(0, 100).await.unwrap();
    note!(
        "changes",
        changes.iter().map(|(_, c)| c).collect::<Vec<_>>()
    );
    note!(
        "in order",
        changes.windows(2).all(|w| w[0].0 < w[1].0) && changes.last().map(|c| c.0) == Some(version)
    );
    let h = Uuid::from_u128(5);
    note!(
        "suspend",
        s.set_scheme_state(h, SchemeState::Suspended).await
    );
    note!("scheme", s.scheme_state(h).await);
    note!("inactive", s.inactive_schemes().await);
    note!(
        "reactivate",
        s.set_scheme_state(h, SchemeState::Active).await
    );
    note!("purge changes", s.purge_data_changes(i64::MAX).await);
    note!(
        "version after purge",
        s.data_version().await.map(|v| v >= version)
    );
}

async fn peis_and_calculations(s: &Store, t: &mut Vec<String>) {
    macro_rules! note {
        ($label:literal, $e:expr) => {
            t.push(format!("{}: {:?}", $label, $e))
        };
    }
    note!("peis", s.peis().await);
    note!(
        "for request",
        s.peis_for_request("f1").await.map(|p| p.len())
    );
    note!(
        "for pension",
        s.peis_for_pension(Uuid::from_u128(2001))
            .await
            .map(|p| p.len())
    );
    note!(
        "for holdername",
        s.peis_for_holdername(Uuid::from_u128(1000))
            .await
            .map(|p| p.len())
    );
    note!(
        "by asset",
        s.pei_by_asset_guid(Uuid::from_u128(1))
            .await
            .map(|p| p.map(|p| p.state))
    );
    note!(
        "unreviewed",
        s.possible_unreviewed_before(i64::MAX)
            .await
            .map(|p| p.len())
    );
    note!(
        "review",
        s.set_review("urn:pei:2", ReviewState::No, MatchStatus::Possible)
            .await
    );
    note!(
        "deregistering",
        s.mark_deregistering("urn:pei:1", "member-request").await
    );
    note!("to send", s.deregistering().await.map(|p| p.len()));
    note!(
        "deregistered",
        s.deregistered("urn:pei:1", "member-request").await
    );
    note!(
        "flag",
        s.flag_for_deregistration("urn:pei:2", "pat-refused").await
    );
    note!(
        "flagged",
        s.flagged()
            .await
            .map(|p| p.into_iter().map(|p| p.deletion_reason).collect::<Vec<_>>())
    );
    note!(
        "refresh unknown",
        s.refresh_pat("nothing", "pat-2", None).await
    );
    note!(
        "refresh",
        s.refresh_pat(&crate::store::sha256_hex("pat-1"), "pat-2", Some(10))
            .await
    );
    let calc = Calculation {
        pei: "urn:pei:1".into(),
        pension_asset_guid: Uuid::from_u128(1),
        kind: CalculationKind::Dcc,
        started_on: report_day(),
        due_on: report_day(),
        completed_at: None,
    };
    note!("calculation", s.record_calculation(calc.clone()).await);
    note!("calculation again", s.record_calculation(calc).await);
    note!(
        "calculated",
        s.set_calculated_values(Uuid::from_u128(1), report_day(), serde_json::json!([1]))
            .await
    );
    note!(
        "calculated unknown",
        s.set_calculated_values(Uuid::from_u128(77), report_day(), serde_json::json!([]))
            .await
    );
    note!(
        "calculations",
        s.calculations().await.map(|c| c
            .into_iter()
            .map(|c| c.completed_at.is_some())
            .collect::<Vec<_>>())
    );
}

async fn audit_and_reports(s: &Store, t: &mut Vec<String>) {
    macro_rules! note {
        ($label:literal, $e:expr) => {
            t.push(format!("{}: {:?}", $label, $e))
        };
    }
    s.flush().await;
    note!(
        "audit",
        s.audit_records(0, i64::MAX, None).await.map(|a| a.len())
    );
    note!(
        "audit of one",
        s.audit_records(0, i64::MAX, Some("f2".into()))
            .await
            .map(|a| a.len())
    );
    note!("heartbeat", s.heartbeat(120_000_000).await);
    note!("heartbeat again", s.heartbeat(130_000_000).await);
    note!("minutes up", s.minutes_up(0, 600_000_000).await);
    note!("first heartbeat", s.first_heartbeat().await);
    // Durations depend on the run: their counts, and everything else, do not.
    let sla = s.sla_samples(0, i64::MAX).await.unwrap();
    note!(
        "sla durations",
        (sla.ack.len(), sla.completion.len(), sla.view.len())
    );
    note!("sla", (sla.failed, &sla.counts, sla.minutes_up));
    note!(
        "completions",
        sla.by_holdername
            .values()
            .map(|x| x.completion.len())
            .collect::<Vec<_>>()
    );
    note!(
        "begin daily",
        s.begin_daily("job", report_day(), Duration::from_secs(60))
            .await
    );
    note!(
        "begin daily again",
        s.begin_daily("job", report_day(), Duration::from_secs(60))
            .await
    );
    note!("finish daily", s.finish_daily("job", report_day()).await);
    let window = NewUnavailability {
        service: Service::Find,
        holdername: None,
        starts_at: 100,
        ends_at: 200,
        reason: "maintenance".into(),
        emergency: false,
        announced_at: 50,
    };
    note!("announce", s.announce_unavailability(window).await.is_ok());
    note!(
        "unavailability",
        s.unavailability(0, 1_000).await.map(|u| u.len())
    );
    note!("facts", s.report_facts(0, i64::MAX).await);
    let new = new_submission(SubmissionStatus::OnTime, SubmissionReason::Initial, 2);
    let first = claimed(s, new.clone(), Duration::from_secs(60)).await;
    note!("claimed", (&first.key, first.parts.len()));
    note!(
        "claim held",
        s.claim_submission(new, Duration::from_secs(60))
            .await
            .map(|c| std::mem::discriminant(&c))
    );
    let answer = SubmissionAnswer {
        key: first.key.clone(),
        part: 0,
        state: SubmissionState::Accepted,
        http_status: Some(202),
        answer: Some("2026-11-30T00:00:00Z".into()),
    };
    note!("answer", s.record_submission_answer(answer).await);
    note!(
        "submissions",
        s.submissions(None)
            .await
            .map(|s| s.into_iter().map(|s| s.state).collect::<Vec<_>>())
    );
    note!(
        "possible matches",
        s.possible_matches(0, i64::MAX).await.map(|p| p.len())
    );
    note!("purge audit", s.purge_audit(i64::MAX).await);
    note!(
        "audit after purge",
        s.audit_records(0, i64::MAX, None).await.map(|a| a.len())
    );
}

async fn console(s: &Store, t: &mut Vec<String>) {
    macro_rules! note {
        ($label:literal, $e:expr) => {
            t.push(format!("{}: {:?}", $label, $e))
        };
    }
    use super::super::console::Role;
    let user = console_user("ada", vec![Role::Pbc]);
    note!(
        "save user",
        s.save_console_user(user, Box::new(|_, _| Ok(()))).await
    );
    note!(
        "users",
        s.console_users()
            .await
            .map(|u| u.into_iter().map(|u| u.username).collect::<Vec<_>>())
    );
    note!(
        "user",
        s.console_user("ada").await.map(|u| u.map(|u| u.roles))
    );
    note!(
        "org",
        s.set_org_detail("name".into(), "Acme".into(), true).await
    );
    note!("org details", s.org_details().await.map(|o| o.len()));
    for _ in 0..3 {
        note!(
            "sign-in attempt",
            s.sign_in_attempt("ada", 2, Duration::from_secs(60)).await
        );
    }
    note!("sign-in succeeded", s.sign_in_succeeded("ada").await);
    note!(
        "sign-in after",
        s.sign_in_attempt("ada", 2, Duration::from_secs(60)).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_unit_of_work_answers_the_same_on_both_backends() {
    let sqlite = transcript(Place::sqlite()).await;
    let postgres = transcript(Place::postgres().await).await;
    for (a, b) in sqlite.iter().zip(&postgres) {
        assert_eq!(masked(a), masked(b), "SQLite, then PostgreSQL");
    }
    assert_eq!(sqlite.len(), postgres.len());
    // The scenario ran: every call answered, none failed.
    assert!(sqlite.len() > 80, "{}", sqlite.len());
    let failed: Vec<&String> = sqlite.iter().filter(|l| l.contains("Err(")).collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn masking_hides_clock_times_and_keeps_small_numbers() {
    assert_eq!(masked("at 1733500000000000 n 42"), "at # n 42");
}
