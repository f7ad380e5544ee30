use super::*;
use crate::model::{
    Claim, NewSubmission, NewUnavailability, ReportFact, ReportKind, ReviewFact, Service,
    StoredSubmission, SubmissionAnswer, SubmissionReason, SubmissionState, SubmissionStatus,
    UnavailableCodes, ViewFact,
};
use std::time::Duration;

use uuid::Uuid;

use crate::model::{AuditRecord, Direction};

/// Where a test's store lives: a new SQLite file, or a new database on the PostgreSQL server
/// named by `PDP_TEST_DATABASE_URL` (key-value form; `scripts/test` starts a throw-away one).
/// Every behaviour test runs on both (the `on_both_backends!` list at the end).
pub(super) enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Place {
    pub(super) fn sqlite() -> Self {
        Place::Sqlite(tempfile::tempdir().unwrap())
    }

    pub(super) async fn postgres() -> Self {
        let base = std::env::var("PDP_TEST_DATABASE_URL").expect(
            "the PostgreSQL tests need PDP_TEST_DATABASE_URL: run scripts/test, which starts a \
             throw-away PostgreSQL server",
        );
        let (admin, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let name = format!("t_{}", Uuid::new_v4().simple());
        // Databases created at once may find their template busy: try again.
        let mut tries = 0;
        while let Err(e) = admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
        {
            tries += 1;
            assert!(tries < 50, "creating a test database: {e}");
            tokio::time::sleep(Duration::from_millis(20 * tries)).await;
        }
        Place::Postgres(format!("{base} dbname={name}"))
    }

    async fn open_with(&self, key: DataKey, limits: StoreLimits) -> Store {
        match self {
            Place::Sqlite(dir) => Store::open(&dir.path().join("s.sqlite"), key, limits).unwrap(),
            Place::Postgres(url) => {
                let options = PostgresOptions {
                    url: url.clone(),
                    pool_size: 8,
                    statement_timeout: Duration::from_secs(30),
                    tls: None,
                    plaintext_network: false,
                };
                Store::connect_postgres(&options, key, limits)
                    .await
                    .unwrap()
            }
        }
    }

    /// The open finds as the store counts them: kept exactly by a store of one instance, read
    /// from the database by one that several share.
    async fn pending(&self, s: &Store) -> u64 {
        match self {
            Place::Sqlite(_) => s.pending(),
            Place::Postgres(_) => s.count_pending().await.unwrap(),
        }
    }

    pub(super) async fn open(&self) -> Store {
        self.open_with(
            key(),
            StoreLimits {
                max_pending: 3,
                ..StoreLimits::default()
            },
        )
        .await
    }
}

/// Runs each named `async fn(Place)` as a test on SQLite and on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Place::sqlite()).await
                }
            )+
        }

        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Place::postgres().await).await
                }
            )+
        }
    };
}

/// Plain options for a store at `url`: two connections, statements of at most 5 s.
pub(super) fn options(url: &str) -> PostgresOptions {
    PostgresOptions {
        url: url.to_owned(),
        pool_size: 2,
        statement_timeout: Duration::from_secs(5),
        tls: None,
        plaintext_network: false,
    }
}

pub(super) fn key() -> DataKey {
    DataKey::from_hex(&"44".repeat(32)).unwrap()
}

pub(super) fn audit(id: &str) -> AuditRecord {
    AuditRecord {
        transaction_id: id.into(),
        request_id: Some(id.into()),
        direction: Direction::Inbound,
        party: "CN=pfs".into(),
        endpoint: "POST /find-requests".into(),
        received_at: 1,
        responded_at: 0,
        status: 202,
        outcome: "ack".into(),
    }
}

pub(super) fn find(id: &str, matched: bool) -> NewFind {
    NewFind {
        request_id: id.into(),
        received_at: 1,
        decided: if matched {
            Decided::Matched(bytes::Bytes::from_static(b"{\"find\":1}"))
        } else {
            Decided::NoMatch
        },
    }
}

fn pei(n: u8, status: MatchStatus) -> NewPei {
    NewPei {
        matched: PeiMatch {
            pei: format!("urn:pei:{n}"),
            asset_guid: Uuid::from_u128(u128::from(n)),
            holdername: Uuid::from_u128(1000),
            pension_asset_guid: Uuid::from_u128(2000 + u128::from(n)),
            member_id: "M1".into(),
            scheme_name: "Acme".into(),
            match_status: status,
            reason: "rule".into(),
        },
        rules_version: "v1".into(),
    }
}

async fn appends_store_no_matches_at_their_end_and_queue_matches_sealed(db: Place) {
    let s = db.open().await;
    let (a, b, c) = tokio::join!(
        s.append(find("no", false), audit("no")),
        s.append(find("yes", true), audit("yes")),
        s.append(find("yes", true), audit("yes")),
    );
    assert_eq!(a.unwrap(), AppendOutcome::Created);
    let mut dup = [b.unwrap(), c.unwrap()];
    dup.sort_by_key(|o| *o == AppendOutcome::Duplicate);
    assert_eq!(dup, [AppendOutcome::Created, AppendOutcome::Duplicate]);
    // Only the matching find waits in the queue.
    assert_eq!(db.pending(&s).await, 1);
    let no = s.find_request("no").await.unwrap().unwrap();
    assert_eq!(
        (no.state, no.outcome, no.has_find_data),
        (FindState::Done, Some(FindOutcome::NoMatch), false)
    );
    assert_eq!(no.completed_at, Some(no.acked_at));
    let yes = s.find_request("yes").await.unwrap().unwrap();
    assert_eq!((yes.state, yes.has_find_data), (FindState::Queued, true));
    // Each ACK's audit record is in the same commit; the repeat is marked a duplicate.
    let outcomes: Vec<String> = s
        .audit_records(0, i64::MAX, Some("yes".into()))
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(outcomes, ["ack", "duplicate"]);
    // No-match finds never count against the queue bound; matching ones do.
    for i in 0..2 {
        s.append(find(&format!("q{i}"), true), audit("q"))
            .await
            .unwrap();
    }
    assert!(matches!(
        s.append(find("over", true), audit("over")).await,
        Err(AppendError::Overloaded)
    ));
    assert_eq!(
        s.append(find("fine", false), audit("fine")).await.unwrap(),
        AppendOutcome::Created
    );
    s.close().await;
    // Reopened: the count of open finds is read back.
    let s = db.open().await;
    assert_eq!(db.pending(&s).await, 3);
}

async fn a_find_is_claimed_once_ended_once_and_reclaimed_after_its_lease(db: Place) {
    let s = db.open().await;
    for id in ["a", "b", "c"] {
        s.append(find(id, true), audit(id)).await.unwrap();
    }
    let first = s.claim(Duration::from_secs(60), 2).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].find_data.as_deref(), Some(&b"{\"find\":1}"[..]));
    let rest = s.claim(Duration::from_secs(60), 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert!(s
        .claim(Duration::from_secs(60), 10)
        .await
        .unwrap()
        .is_empty());

    assert!(s
        .complete(&first[0].request_id, FindOutcome::MatchYes)
        .await
        .unwrap());
    // Ended once: a second end (a stale claim) changes nothing and counts nothing.
    assert!(!s.fail(&first[0].request_id, "late").await.unwrap());
    assert!(s
        .fail(&first[1].request_id, "token: budget_exhausted")
        .await
        .unwrap());
    assert_eq!(db.pending(&s).await, 1);
    let done = s.find_request(&first[0].request_id).await.unwrap().unwrap();
    assert_eq!(
        (done.state, done.outcome, done.has_find_data),
        (FindState::Done, Some(FindOutcome::MatchYes), false)
    );
    let failed = s.failed().await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].reason, "token: budget_exhausted");

    // A zero lease runs out at once: the last find is claimed again, with its attempts counted.
    let c = &rest[0].request_id;
    s.complete(c, FindOutcome::MatchYes).await.unwrap();
    s.append(find("d", true), audit("d")).await.unwrap();
    let d = s.claim(Duration::ZERO, 1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2)).await;
    let again = s.claim(Duration::from_secs(60), 1).await.unwrap();
    assert_eq!(again[0].request_id, d[0].request_id);
    assert_eq!(again[0].attempts, 2);
    // A restart of the one instance puts working finds back in the queue; on a store that
    // several instances share, another may be working them: they wait for their leases.
    let requeued = usize::from(matches!(db, Place::Sqlite(_)));
    assert_eq!(s.requeue_working().await.unwrap(), requeued as u64);
    let claimed = s.claim(Duration::from_secs(60), 5).await.unwrap();
    assert_eq!(claimed.len(), requeued);
}

async fn peis_pats_and_reviews_round_trip_as_typed_values(db: Place) {
    let s = db.open().await;
    s.append(find("f", true), audit("f")).await.unwrap();
    let peis = vec![pei(1, MatchStatus::Yes), pei(2, MatchStatus::Possible)];
    let (none, pending) = s.record_matches("f", peis.clone(), None).await.unwrap();
    assert_eq!((none, pending.len()), (None, 2));
    // Idempotent: recorded again, nothing doubles; the PAT rides the same commit.
    let (pat_id, pending) = s
        .record_matches("f", peis, Some(("header.payload.sig", Some(99))))
        .await
        .unwrap();
    let pat_id = pat_id.unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(s.pat(&pat_id).await.unwrap(), "header.payload.sig");
    let claim = s.claim(Duration::from_secs(60), 1).await.unwrap()[0].attempts;
    // A stale claim cannot end it.
    assert!(!s
        .end(
            "f",
            Some(claim + 1),
            Ok(FindOutcome::MatchYes),
            vec![],
            None
        )
        .await
        .unwrap());
    // The end records the registrations made; only PeI 1 was registered.
    assert!(s
        .end(
            "f",
            Some(claim),
            Err("register: cas_unavailable".into()),
            vec![("urn:pei:1".into(), "res-1".into())],
            Some(pat_id.clone()),
        )
        .await
        .unwrap());
    let stored = s.peis_for_request("f").await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].state, PeiState::Registered);
    assert_eq!(stored[0].review, None);
    assert_eq!(stored[1].state, PeiState::Pending);
    assert_eq!(stored[1].review, Some(ReviewState::Pending));
    let by_guid = s
        .pei_by_asset_guid(Uuid::from_u128(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_guid.resource_id.as_deref(), Some("res-1"));
    assert_eq!(by_guid.matched.pension_asset_guid, Uuid::from_u128(2001));

    // PAT refresh replaces the sealed PAT found by its hash.
    let sha = sha256_hex("header.payload.sig");
    assert_eq!(s.refresh_pat(&sha, "new.pat.x", None).await.unwrap(), 1);
    assert_eq!(s.pat(&pat_id).await.unwrap(), "new.pat.x");
    assert_eq!(s.refresh_pat(&sha, "other.pat.x", None).await.unwrap(), 0);

    // De-registration: deregistering only from registered; flagged listed.
    s.mark_deregistering("urn:pei:2", "match-no").await.unwrap();
    assert_eq!(
        s.pei_by_asset_guid(Uuid::from_u128(2))
            .await
            .unwrap()
            .unwrap()
            .state,
        PeiState::Pending
    );
    s.flag_for_deregistration("urn:pei:1", "pat-refused")
        .await
        .unwrap();
    assert_eq!(s.flagged().await.unwrap().len(), 1);
    s.set_review("urn:pei:2", ReviewState::Yes, MatchStatus::Yes)
        .await
        .unwrap();
    let p2 = s
        .pei_by_asset_guid(Uuid::from_u128(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (p2.review, p2.matched.match_status),
        (Some(ReviewState::Yes), MatchStatus::Yes)
    );
}

#[tokio::test]
async fn blocking_work_that_panics_is_an_error_not_a_dead_caller() {
    let r: Result<(), StoreError> = blocking(|| panic!("boom")).await;
    assert!(matches!(r, Err(StoreError::Task(_))));
}

async fn members_and_pensions_are_sealed_and_opened(db: Place) {
    let s = db.open().await;
    let guid = Uuid::from_u128(77);
    s.apply_members(
        vec![MemberChange::Upsert(NewMember {
            member_id: "M9".into(),
            holdername: Uuid::from_u128(5),
            match_record: b"{\"m\":9}".to_vec(),
            match_keys: MatchKeys(vec![7, u64::MAX]),
            pensions: vec![NewPension {
                asset_guid: guid,
                scheme_name: "Acme".into(),
                view_data: br#"{"benefitIllustrations":[]}"#.to_vec(),
                statement_date: chrono::NaiveDate::from_ymd_opt(2026, 1, 2),
                calculation_date: None,
            }],
        })],
        false,
    )
    .await
    .unwrap();
    assert_eq!(s.member_count().await.unwrap(), 1);
    // The index reads the keys and a header, and a candidate's record by slot.
    let rows = s.index_page(0, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].header, crate::sealed::Header::Known);
    assert_eq!(
        MatchKeys::from_bytes(rows[0].keys.as_deref().unwrap()),
        Some(MatchKeys(vec![7, u64::MAX]))
    );
    assert!(s.index_page(rows[0].slot, 10).await.unwrap().is_empty());
    let found = s.members_by_slot(vec![rows[0].slot, 999]).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].member_id, "M9");
    assert_eq!(found[0].record.as_deref().unwrap(), b"{\"m\":9}");
    let key = s.index_key().await.unwrap();
    assert_eq!(
        key.hash(&[b"x"]),
        s.index_key().await.unwrap().hash(&[b"x"]),
        "one index key, made once"
    );
    let p = s.pension(guid).await.unwrap().unwrap();
    assert_eq!(p.member_id, "M9");
    assert_eq!(
        p.statement_date,
        chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
    );
    // Calculated values replace the illustrations and close open calculations.
    let calc = Calculation {
        pei: "urn:pei:x".into(),
        pension_asset_guid: guid,
        kind: CalculationKind::Dbc,
        started_on: chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
        due_on: chrono::NaiveDate::from_ymd_opt(2026, 1, 19).unwrap(),
        completed_at: None,
    };
    s.record_calculation(calc.clone()).await.unwrap();
    s.record_calculation(calc).await.unwrap();
    let closed = s
        .set_calculated_values(
            guid,
            chrono::NaiveDate::from_ymd_opt(2026, 1, 10).unwrap(),
            serde_json::json!([{"x": 1}]),
        )
        .await
        .unwrap();
    assert_eq!(closed, Some(1));
    let p = s.pension(guid).await.unwrap().unwrap();
    assert_eq!(p.view_data["benefitIllustrations"][0]["x"], 1);
    let calcs = s.calculations().await.unwrap();
    assert_eq!(calcs.len(), 1);
    assert_eq!(calcs[0].kind, CalculationKind::Dbc);
    assert!(calcs[0].completed_at.is_some());
    assert_eq!(
        s.set_calculated_values(Uuid::from_u128(1), calcs[0].due_on, serde_json::json!([]))
            .await
            .unwrap(),
        None
    );
    // Nothing of the member in the clear on disk.
    s.close().await;
    if let Place::Sqlite(dir) = &db {
        let bytes = std::fs::read(dir.path().join("s.sqlite")).unwrap();
        let wal = std::fs::read(dir.path().join("s.sqlite-wal")).unwrap_or_default();
        for b in [bytes, wal] {
            assert!(!b.windows(7).any(|w| w == b"{\"m\":9}"));
        }
    }
}

/// The IDs written in the recent look-up.
async fn recent_ids(s: &Store) -> i64 {
    s.read(|tx| {
        Box::pin(async move {
            tx.value::<i64>("SELECT count(*) FROM audit_ids_recent", &[])
                .await
        })
    })
    .await
    .unwrap()
}

/// How many audit records a look-up by `id` finds, across the whole trail.
async fn found(s: &Store, id: &str) -> usize {
    s.audit_records(0, i64::MAX, Some(id.into()))
        .await
        .unwrap()
        .len()
}

/// The look-ups by ID that `audit_records_by_id_are_found_on_every_day_of_the_window` expects
/// at every stage of the IDs' writing.
async fn by_id_answers(s: &Store, stage: &str) {
    const DAY: i64 = 86_400_000_000;
    let ids = |v: Vec<AuditRecord>| v.into_iter().map(|a| a.transaction_id).collect::<Vec<_>>();
    let by = |from: i64, to: i64, id: &str| s.audit_records(from, to, Some(id.into()));
    assert_eq!(
        ids(by(0, i64::MAX, "f1").await.unwrap()),
        ["f1", "t-cas", "t-late"],
        "{stage}"
    );
    assert_eq!(ids(by(0, i64::MAX, "t-cas").await.unwrap()), ["t-cas"]);
    assert_eq!(
        ids(by(20_001 * DAY, 20_500 * DAY, "f1").await.unwrap()),
        ["t-cas"],
        "{stage}"
    );
    assert_eq!(
        ids(by(20_500 * DAY, 20_500 * DAY + 6, "f1").await.unwrap()),
        ["t-late"],
        "{stage}"
    );
    assert_eq!(ids(by(0, i64::MAX, "f3").await.unwrap()), ["f3"], "{stage}");
    assert!(by(0, i64::MAX, "none").await.unwrap().is_empty());
    assert!(by(30_000 * DAY, i64::MAX, "f1").await.unwrap().is_empty());
    assert_eq!(s.audit_records(0, i64::MAX, None).await.unwrap().len(), 6);
}

async fn audit_records_by_id_are_found_on_every_day_of_the_window(db: Place) {
    let s = db.open().await;
    const DAY: i64 = 86_400_000_000;
    const HOUR: i64 = 3_600_000_000;
    let at = |day: i64, id: &str, transaction: &str| AuditRecord {
        transaction_id: transaction.into(),
        received_at: day * DAY + 5,
        responded_at: day * DAY + 6,
        ..audit(id)
    };
    for (day, id, transaction) in [
        (20_000, "f1", "f1"),
        (20_000, "f2", "f2"),
        (20_001, "f1", "t-cas"),
        (20_500, "f1", "t-late"),
        (20_500, "f3", "f3"),
    ] {
        s.audit(at(day, id, transaction));
    }
    // Committed after the records queued before it.
    s.append(find("sync", false), audit("sync")).await.unwrap();
    let weeks = |through: i64| {
        let s = &s;
        async move {
            while s.write_audit_ids(through, 1_000).await.unwrap() > 0 {}
            assert!(s.audit_ids_through().await.unwrap() <= Some(through));
        }
    };
    // Nothing written: all read by time.
    by_id_answers(&s, "nothing written").await;
    // Nothing by week while the trail goes back more than hours: no recent look-up either.
    let now = 20_500 * DAY + HOUR;
    assert_eq!(s.write_recent_audit_ids(now).await.unwrap(), 0);
    assert_eq!(s.recent_audit_ids_frontier().await.unwrap(), None);
    // The first days by week, the rest by time (no recent frontier yet).
    weeks(20_001 * DAY + HOUR).await;
    by_id_answers(&s, "by week, then by time").await;
    // The rest as recent, by row from the first record received since the weeks: t-late's
    // request and transaction IDs and f3's (and the last find's, as its row comes).
    assert_eq!(s.write_recent_audit_ids(now).await.unwrap(), 1);
    let recent = recent_ids(&s).await;
    assert!((3..=4).contains(&recent), "{recent}");
    assert!(s.recent_audit_ids_frontier().await.unwrap().is_some());
    by_id_answers(&s, "by week, then recent").await;
    // By week up to the instant of the last day's records (those received at it are recent):
    // nothing recent is forgotten while its rows were read after that instant.
    weeks(20_500 * DAY + 5).await;
    s.write_recent_audit_ids(now).await.unwrap();
    assert_eq!(recent_ids(&s).await, recent);
    by_id_answers(&s, "by week to the last day, then recent").await;
    // All by week once the recent rows were read: the recent forgotten.
    weeks(now + HOUR).await;
    assert_eq!(s.write_recent_audit_ids(now + HOUR).await.unwrap(), 0);
    assert_eq!(recent_ids(&s).await, 0);
    by_id_answers(&s, "all by week").await;
    // Written up to the last record: the empty weeks between were skipped, not walked.
    assert_eq!(s.write_audit_ids(now + HOUR, 1_000).await.unwrap(), 0);
}

async fn the_last_records_ids_are_written_by_row_a_slice_at_a_time_and_forgotten_once_by_week(
    db: Place,
) {
    let s = db.open().await;
    const MINUTE: i64 = 60_000_000;
    let base = 20_000 * 86_400_000_000;
    // 12,000 records in 48 s, and one a minute after the first: written in slices of 10,000
    // rows at most.
    let id = |i: u128| {
        Uuid::from_u128(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)).to_string()
    };
    for i in 0..12_000u128 {
        let at = base + i as i64 * 4_000;
        s.audit(AuditRecord {
            received_at: at,
            responded_at: at + 1,
            ..audit(&id(i))
        });
        if i % 500 == 499 {
            s.flush().await;
        }
    }
    let last = AuditRecord {
        received_at: base + MINUTE + 5,
        responded_at: base + MINUTE + 6,
        ..audit("last")
    };
    s.append(find("last", false), last).await.unwrap();
    let now = base + 2 * MINUTE;
    assert_eq!(s.write_recent_audit_ids(now).await.unwrap(), 2);
    assert_eq!(recent_ids(&s).await, 12_001);
    assert_eq!(s.recent_audit_ids_frontier().await.unwrap(), Some(12_002));
    for i in [0, 1, 6_000, 11_999] {
        assert_eq!(found(&s, &id(i)).await, 1, "{}", id(i));
    }
    // A record written after, though received before every other (a call's record is written
    // when it ends): found by row above the frontier, a shorter slice held back until the
    // frontier is `SLICE_WAIT` old, then written.
    s.audit(AuditRecord {
        received_at: base - MINUTE,
        responded_at: now,
        ..audit("late")
    });
    s.flush().await;
    assert_eq!(found(&s, "late").await, 1);
    assert_eq!(s.write_recent_audit_ids(now + 1).await.unwrap(), 0);
    assert_eq!(found(&s, "late").await, 1);
    // (The frontier is dated when it was read: a moment after `now`.)
    let older = now + SLICE_WAIT + 1_000_000;
    assert_eq!(s.write_recent_audit_ids(older).await.unwrap(), 1);
    assert_eq!(recent_ids(&s).await, 12_002);
    assert_eq!(found(&s, "late").await, 1);
    // Written by week past the rows' reading, then forgotten as recent (more than one
    // transaction's worth).
    while s.write_audit_ids(now + MINUTE, 10).await.unwrap() > 0 {}
    s.write_recent_audit_ids(now + MINUTE).await.unwrap();
    assert_eq!(recent_ids(&s).await, 0);
    assert_eq!(found(&s, &id(11_999)).await, 1);
    assert_eq!(found(&s, "late").await, 1);
}

/// A connection of its own to a test's PostgreSQL database: another instance, or a vacuum.
async fn another_connection(db: &Place) -> tokio_postgres::Client {
    let Place::Postgres(url) = db else {
        unreachable!("PostgreSQL only")
    };
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// Another instance's batch on `client`, left open: its ACK record `early` (received at
/// `now`) numbered, not committed.
async fn open_batch(
    client: &mut tokio_postgres::Client,
    now: i64,
) -> tokio_postgres::Transaction<'_> {
    let writing = client.transaction().await.unwrap();
    writing
        .execute(
            "INSERT INTO audit_log (transaction_id, request_id, direction, party, endpoint,
                 received_at, responded_at, status, latency_us, outcome)
             VALUES ('early', 'early', 'inbound', 'pfs', 'POST /find-requests', $1, $2, 202, 1,
                 'ack')",
            &[&now, &(now + 1)],
        )
        .await
        .unwrap();
    writing
}

/// On PostgreSQL the recent frontier is read without a lock: while another instance's batch is
/// open below it, the ACKs go on committing and the frontier waits for that batch to end (a
/// share lock on the audit table queued the ACKs' commits behind the open batch); a vacuum
/// holding the table does not stop it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recent_frontier_waits_for_open_batches_without_holding_up_the_acks() {
    let db = Place::postgres().await;
    let s = db.open().await;
    let now = crate::now_micros();
    let record = |id: &str| AuditRecord {
        received_at: now,
        responded_at: now + 1,
        ..audit(id)
    };
    s.append(find("a", false), record("a")).await.unwrap();
    assert_eq!(s.write_recent_audit_ids(now).await.unwrap(), 1);
    let mut vacuum = another_connection(&db).await;
    let held = vacuum.transaction().await.unwrap();
    held.execute("LOCK TABLE audit_log IN SHARE UPDATE EXCLUSIVE MODE", &[])
        .await
        .unwrap();
    // Another instance's batch, numbered next and still open; then an ACK committed after it.
    let mut other = another_connection(&db).await;
    let writing = open_batch(&mut other, now).await;
    s.append(find("b", false), record("b")).await.unwrap();
    // The frontier is `SLICE_WAIT` old then (it is dated when it was read, a moment after `now`).
    let later = now + SLICE_WAIT + 1_000_000;
    let frontier = s.write_recent_audit_ids(later);
    tokio::pin!(frontier);
    tokio::select! {
        biased;
        n = &mut frontier => panic!("the frontier did not wait for the open batch: {n:?}"),
        acked = s.append(find("c", false), record("c")) => acked.unwrap(),
    };
    writing.commit().await.unwrap();
    assert_eq!(frontier.await.unwrap(), 1);
    held.rollback().await.unwrap();
    // `early` and `b` by the slice; `c` too if its commit came before the frontier was read,
    // else by row above it.
    let written = recent_ids(&s).await;
    assert!((3..=4).contains(&written), "{written} IDs written");
    for id in ["early", "b", "c"] {
        assert_eq!(found(&s, id).await, 1, "{id}");
    }
}

/// On PostgreSQL the recent look-up writes no WAL (its tables are unlogged, schema V22): a
/// crash, or a standby's promotion, leaves both empty, and the look-up is rebuilt from the
/// audit trail as on a fresh store, the records found throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recent_look_up_is_unlogged_and_rebuilt_when_a_crash_empties_it() {
    let db = Place::postgres().await;
    let s = db.open().await;
    let mut admin = another_connection(&db).await;
    let unlogged: Vec<String> = admin
        .query(
            "SELECT relname::TEXT FROM pg_class WHERE relpersistence = 'u' AND relkind = 'r'
              ORDER BY relname",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(unlogged, ["audit_ids_recent", "audit_recent_marks"]);
    let now = crate::now_micros();
    for id in ["a", "b"] {
        let record = AuditRecord {
            received_at: now,
            responded_at: now + 1,
            ..audit(id)
        };
        s.append(find(id, false), record).await.unwrap();
    }
    assert_eq!(s.write_recent_audit_ids(now).await.unwrap(), 1);
    assert_eq!(recent_ids(&s).await, 2);
    // What crash recovery does to an unlogged table: back to empty, marks and slices both.
    let crash = admin.transaction().await.unwrap();
    crash
        .batch_execute("TRUNCATE audit_ids_recent, audit_recent_marks")
        .await
        .unwrap();
    crash.commit().await.unwrap();
    assert_eq!(s.recent_audit_ids_frontier().await.unwrap(), None);
    assert_eq!((found(&s, "a").await, found(&s, "b").await), (1, 1));
    assert_eq!(s.write_recent_audit_ids(now).await.unwrap(), 1);
    assert_eq!(recent_ids(&s).await, 2);
    assert_eq!((found(&s, "a").await, found(&s, "b").await), (1, 1));
}

/// Instances sharing PostgreSQL number audit rows as they insert them and commit them in their
/// own time: the recent look-up's first frontier is not read while a row below it is being
/// written (that row would be in no slice and below the frontier: found by no look-up until
/// its week was written, an hour later).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_recent_frontier_waits_for_the_rows_numbered_before_it() {
    let db = Place::postgres().await;
    let s = db.open().await;
    let now = crate::now_micros();
    let mut other = another_connection(&db).await;
    // Another instance's batch: its record numbered first, not committed yet.
    let writing = open_batch(&mut other, now).await;
    // Alone (the first batch of a fresh store: a start read past it), then below a committed one.
    assert_eq!(super::audit::recent_start(&s, now).await.unwrap(), None);
    let record = AuditRecord {
        received_at: now,
        responded_at: now + 1,
        ..audit("later")
    };
    s.append(find("later", false), record).await.unwrap();
    assert_eq!(super::audit::recent_start(&s, now).await.unwrap(), None);
    let later = now + SLICE_WAIT;
    assert_eq!(s.write_recent_audit_ids(later).await.unwrap(), 0);
    writing.commit().await.unwrap();
    assert_eq!(s.write_recent_audit_ids(later).await.unwrap(), 1);
    for id in ["early", "later"] {
        assert_eq!(found(&s, id).await, 1, "{id}");
    }
    assert_eq!(recent_ids(&s).await, 2);
}

async fn the_sla_samples_come_from_the_audit_trail_finds_and_heartbeats(db: Place) {
    let s = db.open().await;
    let mut view = audit("v");
    view.endpoint = "GET /view-data".into();
    view.received_at = 10;
    view.responded_at = 510;
    view.status = 200;
    s.audit(view.clone());
    // Its 401 challenge is half of the same view, not a second one.
    s.audit(AuditRecord {
        transaction_id: "c".into(),
        status: 401,
        outcome: "challenge".into(),
        responded_at: 12,
        ..view
    });
    s.append(find("n", false), audit("n")).await.unwrap();
    s.append(find("m", true), audit("m")).await.unwrap();
    let c = s.claim(Duration::from_secs(60), 1).await.unwrap();
    s.complete(&c[0].request_id, FindOutcome::MatchPossible)
        .await
        .unwrap();
    assert_eq!(s.first_heartbeat().await.unwrap(), None);
    let now = crate::now_micros();
    s.heartbeat(now).await.unwrap();
    s.heartbeat(now).await.unwrap();
    s.heartbeat(now + 60_000_000).await.unwrap();
    assert_eq!(
        s.first_heartbeat().await.unwrap(),
        Some(now / 60_000_000 * 60_000_000)
    );
    let x = s.sla_samples(0, i64::MAX).await.unwrap();
    assert_eq!(x.ack.len(), 2);
    assert_eq!(x.view, [500]);
    assert_eq!(x.completion.len(), 1);
    assert_eq!(x.failed, 0);
    assert_eq!(x.minutes_up, 2);
    let counts: std::collections::BTreeMap<_, _> = x.counts.into_iter().collect();
    assert_eq!(counts["find no-match"], 1);
    assert_eq!(counts["find match-possible"], 1);
    // The no-match find is its ACK's record alone (schema V21): an ACK, and a find, once.
    assert_eq!(counts["POST /find-requests ack"], 2);
    assert!(!counts.contains_key("POST /find-requests no-match"));
    assert_eq!(counts["GET /view-data challenge"], 1);
}

async fn the_open_find_count_stays_exact_under_concurrent_acks_and_ends(db: Place) {
    let s = db.open_with(key(), StoreLimits::default()).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..400 {
        let s = s.clone();
        tasks.spawn(async move {
            let id = format!("f{i}");
            s.append(find(&id, i % 3 != 0), audit(&id)).await.unwrap();
        });
    }
    // Ends race the appends: claim and end whatever is queued, several claimers at once.
    for _ in 0..4 {
        let s = s.clone();
        tasks.spawn(async move {
            for _ in 0..60 {
                for c in s.claim(Duration::from_secs(60), 8).await.unwrap() {
                    s.complete(&c.request_id, FindOutcome::MatchYes)
                        .await
                        .unwrap();
                }
                tokio::task::yield_now().await;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let open = s
        .find_requests()
        .await
        .unwrap()
        .iter()
        .filter(|f| matches!(f.state, FindState::Queued | FindState::Working))
        .count() as u64;
    assert_eq!(db.pending(&s).await, open);
    // And it reaches zero when everything has ended.
    loop {
        let claimed = s.claim(Duration::from_secs(60), 64).await.unwrap();
        if claimed.is_empty() {
            break;
        }
        for c in claimed {
            s.complete(&c.request_id, FindOutcome::MatchYes)
                .await
                .unwrap();
        }
    }
    assert_eq!(db.pending(&s).await, 0);
}

fn member(id: &str, pensions: &[u128], record: &str) -> MemberChange {
    MemberChange::Upsert(NewMember {
        member_id: id.into(),
        holdername: Uuid::from_u128(5),
        match_record: record.as_bytes().to_vec(),
        match_keys: MatchKeys::default(),
        pensions: pensions
            .iter()
            .map(|g| NewPension {
                asset_guid: Uuid::from_u128(*g),
                scheme_name: "Acme".into(),
                view_data: b"{}".to_vec(),
                statement_date: None,
                calculation_date: None,
            })
            .collect(),
    })
}

async fn member_changes_add_update_repeat_and_remove_and_are_noted_in_order(db: Place) {
    let s = db.open().await;
    let applied = |v: Vec<AppliedChange>| v.into_iter().map(|a| a.applied).collect::<Vec<_>>();
    let v0 = s.data_version().await.unwrap();
    let r = s
        .apply_members(
            vec![member("A", &[1, 2], "a1"), member("B", &[3], "b1")],
            false,
        )
        .await
        .unwrap();
    assert_eq!(applied(r), [Applied::Added, Applied::Added]);
    // The same records again: nothing written, nothing noted.
    let v1 = s.data_version().await.unwrap();
    let r = s
        .apply_members(vec![member("A", &[1, 2], "a1")], false)
        .await
        .unwrap();
    assert_eq!(applied(r), [Applied::Unchanged]);
    assert_eq!(s.data_version().await.unwrap(), v1);
    // A dry run answers as a real one would and keeps nothing.
    let r = s
        .apply_members(
            vec![member("A", &[1], "a2"), MemberChange::Remove("B".into())],
            true,
        )
        .await
        .unwrap();
    assert_eq!(r[0].applied, Applied::Updated);
    assert_eq!(r[0].removed_pensions, [Uuid::from_u128(2)]);
    assert_eq!(r[1].applied, Applied::Removed);
    assert!(s.pension(Uuid::from_u128(2)).await.unwrap().is_some());
    assert_eq!(s.data_version().await.unwrap(), v1);
    // For real: A loses pension 2, B goes, C was never there.
    let r = s
        .apply_members(
            vec![
                member("A", &[1], "a2"),
                MemberChange::Remove("B".into()),
                MemberChange::Remove("C".into()),
            ],
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        applied(r.clone()),
        [Applied::Updated, Applied::Removed, Applied::NotFound]
    );
    assert_eq!(r[1].removed_pensions, [Uuid::from_u128(3)]);
    assert!(s.pension(Uuid::from_u128(2)).await.unwrap().is_none());
    assert!(s.pension(Uuid::from_u128(3)).await.unwrap().is_none());
    assert_eq!(s.member_ids(None).await.unwrap(), ["A"]);
    let records: Vec<(String, Option<Vec<u8>>)> = s
        .member_records(vec!["A".into(), "B".into()])
        .await
        .unwrap()
        .into_iter()
        .map(|(id, r)| (id, r.map(Result::unwrap)))
        .collect();
    assert_eq!(
        records,
        [
            ("A".to_string(), Some(b"a2".to_vec())),
            ("B".to_string(), None)
        ]
    );
    // Every change is noted, in order, for the running endpoints.
    let changes: Vec<DataChange> = s
        .data_changes_since(v0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    // New members added together are one change: the slots they took.
    let m = |id: &str| DataChange::Member(id.into());
    assert_eq!(
        changes,
        [
            DataChange::Added { first: 1, last: 2 },
            m("A"),
            m("B"),
            DataChange::SlotFreed(2)
        ]
    );

    // A scheme's state is kept and noted.
    let h = Uuid::from_u128(5);
    assert_eq!(s.scheme_state(h).await.unwrap(), SchemeState::Active);
    s.set_scheme_state(h, SchemeState::Suspended).await.unwrap();
    assert_eq!(s.scheme_state(h).await.unwrap(), SchemeState::Suspended);
    assert_eq!(
        s.inactive_schemes().await.unwrap(),
        [(h, SchemeState::Suspended)]
    );
    let last = s.data_changes_since(v0, 100).await.unwrap();
    assert_eq!(last.last().unwrap().1, DataChange::Scheme(h));
    s.set_scheme_state(h, SchemeState::Active).await.unwrap();
    assert!(s.inactive_schemes().await.unwrap().is_empty());
}

async fn a_data_key_rotation_reseals_everything_and_resumes_after_a_stop(db: Place) {
    let (a, b) = (DataKey::generate_hex(), DataKey::generate_hex());
    let old = DataKey::from_hex(&a).unwrap();
    let s = db.open_with(old.clone(), StoreLimits::default()).await;
    for i in 0..5 {
        s.append(find(&format!("f{i}"), true), audit("f"))
            .await
            .unwrap();
    }
    let pat_id = s
        .record_matches(
            "f0",
            vec![pei(9, MatchStatus::Yes)],
            Some(("a.pat.x", None)),
        )
        .await
        .unwrap()
        .0
        .unwrap();
    s.apply_members(vec![member("M", &[7, 8], "record")], false)
        .await
        .unwrap();
    s.close().await;

    // The new key is active; the old one still opens.
    let ring = DataKey::from_hex(&b).unwrap().opening(old);
    let s = db.open_with(ring, StoreLimits::default()).await;
    // 5 finds, 1 PAT, 1 member, 2 pensions.
    assert_eq!(s.sealed_with_other_keys().await.unwrap(), 9);
    // Stopped after one small step: what it did is kept, and a new run goes on from there.
    let step = s.reseal(ResealCursor::default(), 2).await.unwrap();
    assert_eq!(step.resealed, 2);
    assert_eq!(s.sealed_with_other_keys().await.unwrap(), 7);
    let out = crate::keys::rotate(&s, false).await.unwrap();
    assert_eq!((out.resealed, out.unreadable), (7, 0));
    assert_eq!(s.sealed_with_other_keys().await.unwrap(), 0);
    s.close().await;

    // Only the new key now: everything opens.
    let s = db
        .open_with(DataKey::from_hex(&b).unwrap(), StoreLimits::default())
        .await;
    assert_eq!(s.pat(&pat_id).await.unwrap(), "a.pat.x");
    assert_eq!(
        s.member_records(vec!["M".into()]).await.unwrap()[0]
            .1
            .as_ref()
            .map(|r| r.as_deref().unwrap()),
        Some(&b"record"[..])
    );
    assert!(s.pension(Uuid::from_u128(7)).await.unwrap().is_some());
    let claimed = s.claim(Duration::from_secs(60), 10).await.unwrap();
    assert_eq!(claimed.len(), 5);
    assert!(claimed.iter().all(|c| c.find_data.is_some()));
}

async fn a_registration_that_lands_after_its_pei_was_retired_is_sent_for_deregistration(db: Place) {
    let s = db.open().await;
    s.apply_members(vec![member("M", &[2001], "r")], false)
        .await
        .unwrap();
    s.append(find("f", true), audit("f")).await.unwrap();
    let (pat_id, _) = s
        .record_matches("f", vec![pei(1, MatchStatus::Yes)], Some(("p.a.t", None)))
        .await
        .unwrap();
    let claim = s.claim(Duration::from_secs(60), 1).await.unwrap()[0].attempts;
    // The pension goes while the registration is under way: the pending PeI is retired.
    s.apply_members(vec![MemberChange::Remove("M".into())], false)
        .await
        .unwrap();
    let p = s
        .pei_by_asset_guid(Uuid::from_u128(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.state, PeiState::Deregistered);
    // The CAS answered 201 meanwhile: the PeI is not served, and is queued for deletion there.
    s.end(
        "f",
        Some(claim),
        Ok(FindOutcome::MatchYes),
        vec![("urn:pei:1".into(), "res-1".into())],
        pat_id,
    )
    .await
    .unwrap();
    let p = s
        .pei_by_asset_guid(Uuid::from_u128(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.state, PeiState::Deregistering);
    assert_eq!(p.resource_id.as_deref(), Some("res-1"));
    assert_eq!(p.deletion_reason.as_deref(), Some("asset-removed"));
    assert_eq!(s.deregistering().await.unwrap().len(), 1);
}

async fn members_added_together_are_read_back_by_the_slots_they_took(db: Place) {
    let s = db.open().await;
    let v0 = s.data_version().await.unwrap();
    let batch = ["A", "B", "C"].map(|id| member(id, &[], id));
    s.apply_members(batch.to_vec(), false).await.unwrap();
    s.apply_members(vec![MemberChange::Remove("B".into())], false)
        .await
        .unwrap();
    let changes = s.data_changes_since(v0, 10).await.unwrap();
    assert_eq!(changes[0].1, DataChange::Added { first: 1, last: 3 });
    // An endpoint reads those still stored, in slot order, their records opened.
    let added: Vec<(i64, String, Vec<u8>)> = s
        .members_in_slots(1, 3)
        .await
        .unwrap()
        .into_iter()
        .map(|(r, _)| (r.slot, r.member_id, r.record.unwrap()))
        .collect();
    assert_eq!(
        added,
        [
            (1, "A".to_string(), b"A".to_vec()),
            (3, "C".to_string(), b"C".to_vec())
        ]
    );
    assert!(s.members_in_slots(4, 9).await.unwrap().is_empty());
}

async fn old_data_changes_are_forgotten_but_the_version_never_goes_back(db: Place) {
    let s = db.open().await;
    for m in [member("A", &[1], "a"), member("B", &[2], "b")] {
        s.apply_members(vec![m], false).await.unwrap();
    }
    let v = s.data_version().await.unwrap();
    assert_eq!(s.purge_data_changes(i64::MAX).await.unwrap(), 1);
    assert_eq!(s.data_version().await.unwrap(), v);
    assert_eq!(s.data_changes_since(0, 10).await.unwrap().len(), 1);
}

async fn a_daily_job_runs_once_a_day_and_is_taken_over_when_its_holder_stops(db: Place) {
    let s = db.open().await;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    let other = s.clone();
    // Two takers at once: one has it.
    let (a, b) = tokio::join!(
        s.begin_daily("purge", day, Duration::from_secs(600)),
        other.begin_daily("purge", day, Duration::from_secs(600)),
    );
    assert_eq!(u8::from(a.unwrap()) + u8::from(b.unwrap()), 1);
    // Another job, or another day, is its own run.
    assert!(s.begin_daily("reports", day, Duration::ZERO).await.unwrap());
    assert!(s
        .begin_daily("purge", day.succ_opt().unwrap(), Duration::from_secs(600))
        .await
        .unwrap());
    // A holder that stopped without finishing (its lease ran out) is taken over...
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert!(s
        .begin_daily("reports", day, Duration::from_secs(600))
        .await
        .unwrap());
    // ...and a finished run is never taken again.
    s.finish_daily("reports", day).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert!(!s.begin_daily("reports", day, Duration::ZERO).await.unwrap());
    assert!(!s
        .begin_daily("purge", day, Duration::from_secs(600))
        .await
        .unwrap());
}

/// Two stores on one PostgreSQL database (two instances of the endpoint): a repeated request ID
/// is created once whichever receives it, and claims at once never take the same find.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_store_a_find_once_and_claim_it_once() {
    let db = Place::postgres().await;
    let limits = StoreLimits::default();
    let (a, b) = (
        db.open_with(key(), limits).await,
        db.open_with(key(), limits).await,
    );
    let mut created = 0;
    for i in 0..50 {
        let id = format!("f{i}");
        let (x, y) = tokio::join!(
            a.append(find(&id, true), audit(&id)),
            b.append(find(&id, true), audit(&id)),
        );
        created += [x.unwrap(), y.unwrap()]
            .iter()
            .filter(|o| **o == AppendOutcome::Created)
            .count();
    }
    assert_eq!(created, 50);
    let mut seen = std::collections::HashSet::new();
    loop {
        let (x, y) = tokio::join!(
            a.claim(Duration::from_secs(60), 7),
            b.claim(Duration::from_secs(60), 7),
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        if x.is_empty() && y.is_empty() {
            break;
        }
        for c in x.iter().chain(&y) {
            assert!(
                seen.insert(c.request_id.clone()),
                "{} claimed twice",
                c.request_id
            );
            assert!(c.find_data.is_some());
        }
    }
    assert_eq!(seen.len(), 50);
    // Either instance ends what the other stored; both count the open finds from the database.
    for id in &seen {
        assert!(b.complete(id, FindOutcome::MatchYes).await.unwrap());
    }
    assert_eq!(a.count_pending().await.unwrap(), 0);
}

async fn a_renewed_lease_keeps_a_find_from_a_second_claim(db: Place) {
    let s = db.open().await;
    s.append(find("r", true), audit("r")).await.unwrap();
    let c = s
        .claim(Duration::from_millis(50), 1)
        .await
        .unwrap()
        .remove(0);
    assert!(s
        .renew_lease("r", c.attempts, Duration::from_secs(60))
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(s
        .claim(Duration::from_secs(60), 1)
        .await
        .unwrap()
        .is_empty());
    // A claim that no longer holds the find cannot renew it.
    assert!(!s
        .renew_lease("r", c.attempts + 1, Duration::from_secs(60))
        .await
        .unwrap());
    s.complete("r", FindOutcome::MatchYes).await.unwrap();
    assert!(!s
        .renew_lease("r", c.attempts, Duration::from_secs(60))
        .await
        .unwrap());
}

/// The test server's TLS CA (`scripts/test` exports it).
fn test_tls_ca() -> PathBuf {
    std::env::var("PDP_TEST_DATABASE_TLS_CA")
        .expect(
            "the PostgreSQL TLS tests need PDP_TEST_DATABASE_TLS_CA (the CA of the test server's \
             certificate): run scripts/test, which starts a throw-away PostgreSQL server with TLS",
        )
        .into()
}

/// The database of `url` (a test database, over the Unix socket) reached over TCP at `host`.
fn over_tcp(url: &str, host: &str, tls: Option<PathBuf>) -> PostgresOptions {
    let socket: tokio_postgres::Config = url.parse().unwrap();
    PostgresOptions {
        url: format!(
            "host={host} port={} user={} dbname={}",
            socket.get_ports()[0],
            socket.get_user().unwrap(),
            socket.get_dbname().unwrap()
        ),
        pool_size: 2,
        statement_timeout: Duration::from_secs(5),
        tls: tls.map(|ca| PostgresTls { ca, identity: None }),
        plaintext_network: false,
    }
}

/// What connecting with `options` answered: `Ok(())` (the store closed again) or its error.
async fn connects(options: &PostgresOptions) -> Result<(), String> {
    match Store::connect_postgres(options, key(), StoreLimits::default()).await {
        Ok(s) => {
            s.close().await;
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The store over TLS to a database on TCP: every connection encrypted (TLS 1.2 or 1.3), the
/// server's certificate verified against `store.tls_ca`; a server whose certificate another CA
/// signed is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_encrypts_every_connection_and_verifies_the_server() {
    let db = Place::postgres().await;
    let Place::Postgres(url) = &db else {
        unreachable!()
    };
    let options = over_tcp(url, "127.0.0.1", Some(test_tls_ca()));
    let s = Store::connect_postgres(&options, key(), StoreLimits::default())
        .await
        .unwrap();
    s.append(find("r", true), audit("r")).await.unwrap();
    assert!(s.find_request("r").await.unwrap().is_some());
    // The server's view of the store's sessions (read over the Unix socket): all encrypted.
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let dbname = url.rsplit("dbname=").next().unwrap();
    let sessions: Vec<(bool, Option<String>)> = c
        .query(
            "SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
              WHERE a.datname = $1 AND a.application_name = 'pdp-provider'",
            &[&dbname],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(!sessions.is_empty());
    for (ssl, version) in &sessions {
        assert!(*ssl, "{sessions:?}");
        assert!(
            matches!(version.as_deref(), Some("TLSv1.2" | "TLSv1.3")),
            "{sessions:?}"
        );
    }
    s.close().await;

    // A CA that did not sign the server's certificate: refused.
    let dir = tempfile::tempdir().unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other = params
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    std::fs::write(&other_ca, other.pem()).unwrap();
    let e = connects(&over_tcp(url, "127.0.0.1", Some(other_ca)))
        .await
        .unwrap_err();
    assert!(e.starts_with("store.url: cannot connect"), "{e}");
}

/// Where the store's traffic may go in the clear: a Unix socket or loopback; a database on the
/// network only with `store.tls_ca`, or when the operator says the network is trusted. TLS asked
/// of a Unix socket is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_to_a_database_on_the_network_is_refused_naming_store_tls_ca() {
    let db = Place::postgres().await;
    let Place::Postgres(url) = &db else {
        unreachable!()
    };
    let e = connects(&over_tcp(url, "db.example.invalid", None))
        .await
        .unwrap_err();
    assert!(e.contains("needs store.tls_ca"), "{e}");
    connects(&over_tcp(url, "127.0.0.1", None)).await.unwrap();
    let trusted = PostgresOptions {
        plaintext_network: true,
        ..over_tcp(url, "db.example.invalid", None)
    };
    let e = connects(&trusted).await.unwrap_err();
    assert!(
        !e.contains("store.tls_ca"),
        "refused for its name, not for TLS: {e}"
    );
    let socket_with_tls = PostgresOptions {
        url: url.clone(),
        ..over_tcp(url, "127.0.0.1", Some(test_tls_ca()))
    };
    let e = connects(&socket_with_tls).await.unwrap_err();
    assert!(e.contains("Unix socket"), "{e}");
}

/// A database that cannot be reached, or one a newer binary migrated, is refused naming the
/// setting to look at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_store_that_cannot_be_used_is_refused_naming_store_url() {
    let unreachable = options("host=/nonexistent port=1 user=pdp password=secret dbname=pdp");
    let e = Store::connect_postgres(&unreachable, key(), StoreLimits::default())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("store.url: cannot connect to postgres://pdp@"),
        "{e}"
    );
    assert!(!e.contains("secret"), "{e}");

    let db = Place::postgres().await;
    db.open().await.close().await;
    let Place::Postgres(url) = &db else {
        unreachable!()
    };
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c.batch_execute(
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
         VALUES (99, 'from_the_future', '2027-01-01T00:00:00Z', '0')",
    )
    .await
    .unwrap();
    let options = PostgresOptions {
        url: url.clone(),
        pool_size: 2,
        statement_timeout: Duration::from_secs(5),
        tls: None,
        plaintext_network: false,
    };
    let e = Store::connect_postgres(&options, key(), StoreLimits::default())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("store.url: the database has schema migration 99, newer than this binary's"),
        "{e}"
    );
}

async fn report_facts_windows_and_possible_matches_read_back_per_period(db: Place) {
    let s = db.open().await;
    let h = Uuid::from_u128(5);
    let day = 86_400_000_000i64;
    let codes = |ano| UnavailableCodes {
        ano,
        ppf: false,
        trn: !ano,
    };
    for (at, slow) in [(10, false), (20, true), (day + 5, false)] {
        s.record_fact(ReportFact::View(ViewFact {
            holdername: h,
            received_at: at,
            responded_at: at + if slow { 11_000_000 } else { 500 },
            contact_scheme: slow,
            missing_admin: false,
            temp_error: !slow,
            eri: codes(slow),
            accrued: codes(!slow),
        }))
        .await
        .unwrap();
    }
    let id = s
        .announce_unavailability(NewUnavailability {
            service: Service::Find,
            holdername: None,
            starts_at: 100,
            ends_at: 200,
            reason: "upgrade".into(),
            emergency: true,
            announced_at: 50,
        })
        .await
        .unwrap();
    s.heartbeat(30 * 60_000_000).await.unwrap();
    let facts = s.report_facts(0, day).await.unwrap();
    assert_eq!(facts.holdernames, [h]);
    assert_eq!(facts.views.len(), 2);
    assert_eq!(facts.views[1].responded_at, 20 + 11_000_000);
    assert!(facts.views[1].contact_scheme && facts.views[1].eri.ano);
    assert!(facts.views[0].temp_error && facts.views[0].accrued.ano);
    assert_eq!(facts.windows.len(), 1);
    assert_eq!(facts.windows[0].id, id);
    assert!(facts.windows[0].window.emergency);
    assert_eq!(facts.windows[0].window.service, Service::Find);
    assert_eq!(facts.up_minutes, [30]);
    assert_eq!(s.report_facts(day, 2 * day).await.unwrap().views.len(), 1);
    // The views alone, as the service levels by holdername read them.
    let latencies: Vec<i64> = facts
        .views
        .iter()
        .map(|v| v.responded_at - v.received_at)
        .collect();
    let samples = s.sla_samples(0, day).await.unwrap().by_holdername;
    assert_eq!(samples[&h].view, latencies);

    // A possible match, resolved: the Regulation 28(3) report reads how and when.
    s.append(find("f", true), audit("f")).await.unwrap();
    s.record_matches("f", vec![pei(1, MatchStatus::Possible)], None)
        .await
        .unwrap();
    s.record_fact(ReportFact::Reviewed(ReviewFact {
        pei: "urn:pei:1".into(),
        holdername: Uuid::from_u128(1000),
        review: ReviewState::No,
        at: 77,
    }))
    .await
    .unwrap();
    let possible = s.possible_matches(0, i64::MAX).await.unwrap();
    assert_eq!(possible.len(), 1);
    assert_eq!(
        (possible[0].review, possible[0].resolved_at),
        (Some(ReviewState::No), Some(77))
    );
}

fn report_day() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
}

/// A day's `response-time` submission of `parts` calls.
fn new_submission(
    status: SubmissionStatus,
    reason: SubmissionReason,
    parts: usize,
) -> NewSubmission {
    NewSubmission {
        holdername: Uuid::from_u128(5),
        kind: ReportKind::ResponseTime,
        day: report_day(),
        submission_id: Some(Uuid::new_v4()),
        status,
        reason,
        parts: (0..parts)
            .map(|i| (Uuid::new_v4(), format!("{{\"part\":{i}}}")))
            .collect(),
    }
}

/// Claims a submission this caller must send.
async fn claimed(s: &Store, new: NewSubmission, lease: Duration) -> StoredSubmission {
    match s.claim_submission(new, lease).await.unwrap() {
        Claim::Claimed(c) => c,
        other => panic!("not claimed: {other:?}"),
    }
}

async fn a_submission_is_claimed_once_answered_and_corrected_as_a_new_attempt(db: Place) {
    let s = db.open().await;
    let day = report_day();
    let lease = Duration::from_secs(600);
    let initial = || new_submission(SubmissionStatus::OnTime, SubmissionReason::Initial, 2);
    let correction = || {
        new_submission(
            SubmissionStatus::Correction,
            SubmissionReason::Resubmission,
            1,
        )
    };
    let first = claimed(&s, initial(), lease).await;
    assert_eq!((first.key.attempt, first.parts.len()), (0, 2));
    // A second claim of the day (another instance, a restart) sends nothing while it is held.
    let again = s.claim_submission(initial(), lease).await.unwrap();
    assert!(matches!(&again, Claim::Busy(b) if b.submission_id == first.submission_id));
    // Past its lease it is taken over: the same bodies and IDs, sent again.
    let taken = claimed(&s, initial(), Duration::ZERO).await;
    assert_eq!(taken.parts, first.parts);
    for (part, state) in [
        (0, SubmissionState::Accepted),
        (1, SubmissionState::Refused),
    ] {
        s.record_submission_answer(SubmissionAnswer {
            key: first.key.clone(),
            part,
            state,
            http_status: Some(if state == SubmissionState::Accepted {
                202
            } else {
                400
            }),
            answer: Some("answer".into()),
        })
        .await
        .unwrap();
    }
    // Answered: done, its state the worst of its parts'.
    let done = s.claim_submission(initial(), lease).await.unwrap();
    let Claim::Done(done) = done else {
        panic!("not done")
    };
    assert_eq!(done.state, SubmissionState::Refused);
    assert_eq!(done.parts[1].http_status, Some(400));
    // A correction is the next attempt, and another after that one is answered.
    let c1 = claimed(&s, correction(), lease).await;
    assert_eq!(c1.key.attempt, 1);
    s.record_submission_answer(SubmissionAnswer {
        key: c1.key.clone(),
        part: 0,
        state: SubmissionState::Accepted,
        http_status: Some(202),
        answer: None,
    })
    .await
    .unwrap();
    let c2 = claimed(&s, correction(), lease).await;
    assert_eq!(c2.key.attempt, 2);
    let all = s.submissions(Some(day)).await.unwrap();
    assert_eq!(
        all.iter()
            .map(|x| (x.key.attempt, x.state))
            .collect::<Vec<_>>(),
        [
            (0, SubmissionState::Refused),
            (1, SubmissionState::Accepted),
            (2, SubmissionState::Sending)
        ]
    );
    assert!(s.submissions(day.succ_opt()).await.unwrap().is_empty());
}

fn console_user(username: &str, roles: Vec<super::console::Role>) -> super::console::ConsoleUser {
    super::console::ConsoleUser {
        id: 0,
        username: username.into(),
        display_name: format!("{username} person"),
        email: format!("{username}@example.com"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        roles,
        holdernames: vec![Uuid::from_u128(5)],
        suspended: false,
        confirmed_at: None,
        updated_at: 0,
    }
}

async fn console_users_are_checked_against_every_user_in_the_saving_transaction(db: Place) {
    use super::console::{Role, UserSaved};
    let s = db.open().await;
    // At most two holders of a role (as the console's rules say for PBCs): the check sees the
    // users as they would be, the new one included.
    let at_most_two = || -> super::console::UserCheck {
        Box::new(|_before: &[_], after: &[super::console::ConsoleUser]| {
            let n = after.iter().filter(|u| u.has(Role::Pbc)).count();
            if n > 2 {
                Err("PBC_MAX".into())
            } else {
                Ok(())
            }
        })
    };
    let a = s
        .save_console_user(console_user("a", vec![Role::Pbc]), at_most_two())
        .await
        .unwrap();
    let UserSaved::Saved(a_id) = a else {
        panic!("{a:?}")
    };
    // Two at once: both fit (two PBCs); a third at once with them would not.
    let (b, c) = tokio::join!(
        s.save_console_user(console_user("b", vec![Role::Pbc]), at_most_two()),
        s.save_console_user(
            console_user("c", vec![Role::Pbc, Role::SecurityLead]),
            at_most_two()
        ),
    );
    let saved = [b.unwrap(), c.unwrap()];
    assert_eq!(
        saved
            .iter()
            .filter(|x| matches!(x, UserSaved::Saved(_)))
            .count(),
        1,
        "{saved:?}"
    );
    assert!(saved
        .iter()
        .any(|x| *x == UserSaved::Refused("PBC_MAX".into())));
    assert_eq!(
        s.save_console_user(console_user("a", vec![Role::Ptc]), at_most_two())
            .await
            .unwrap(),
        UserSaved::UsernameTaken
    );
    // A change of an existing user (its id) is checked the same way and read back as stored.
    let mut a = s.console_user("a").await.unwrap().unwrap();
    assert_eq!(a.id, a_id);
    a.roles = vec![Role::Pbc, Role::TestManager];
    a.confirmed_at = Some(42);
    // The check sees `a` as stored before the change and as it would be after.
    let sides = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = sides.clone();
    let check: super::console::UserCheck = Box::new(move |before, after| {
        let roles = |users: &[super::console::ConsoleUser]| {
            users.iter().find(|u| u.id == a_id).map(|u| u.roles.clone())
        };
        seen.lock()
            .unwrap()
            .push((roles(before), roles(after), before.len(), after.len()));
        Ok(())
    });
    s.save_console_user(a, check).await.unwrap();
    assert_eq!(
        *sides.lock().unwrap(),
        [(
            Some(vec![Role::Pbc]),
            Some(vec![Role::Pbc, Role::TestManager]),
            2,
            2
        )]
    );
    let a = s.console_user("a").await.unwrap().unwrap();
    assert_eq!(a.roles, [Role::Pbc, Role::TestManager]);
    // Saved without a password hash: the stored one is kept (a new one set meanwhile included).
    let mut renewed = a.clone();
    renewed.password_hash = "$argon2id$renewed".into();
    s.save_console_user(renewed, at_most_two()).await.unwrap();
    let mut edited = a.clone();
    edited.password_hash = String::new();
    edited.display_name = "A. N. Other".into();
    s.save_console_user(edited, at_most_two()).await.unwrap();
    let a = s.console_user("a").await.unwrap().unwrap();
    assert_eq!(
        (a.password_hash.as_str(), a.display_name.as_str()),
        ("$argon2id$renewed", "A. N. Other")
    );
    assert_eq!(a.holdernames, [Uuid::from_u128(5)]);
    assert_eq!(a.confirmed_at, Some(42));
    assert_eq!(s.console_users().await.unwrap().len(), 2);

    // The organisation's registration data: a change is unconfirmed until confirmed.
    s.set_org_detail("organisation_name".into(), "Acme".into(), false)
        .await
        .unwrap();
    let d = s.org_details().await.unwrap();
    assert_eq!((d[0].value.as_str(), d[0].confirmed_at), ("Acme", None));
    s.set_org_detail("organisation_name".into(), "Acme".into(), true)
        .await
        .unwrap();
    assert!(s.org_details().await.unwrap()[0].confirmed_at.is_some());
}

async fn sign_in_attempts_lock_a_username_for_every_instance_until_they_lapse(db: Place) {
    let (s, other) = (db.open().await, db.open().await);
    let lockout = Duration::from_secs(900);
    // Five attempts in a row may go on, from either instance; the sixth may not.
    for n in 0..5 {
        let counter = if n % 2 == 0 { &s } else { &other };
        assert!(
            counter.sign_in_attempt("pbc", 5, lockout).await.unwrap(),
            "{n}"
        );
    }
    assert!(!s.sign_in_attempt("pbc", 5, lockout).await.unwrap());
    assert!(!other.sign_in_attempt("pbc", 5, lockout).await.unwrap());
    assert!(s.sign_in_attempt("ptc", 5, lockout).await.unwrap());
    // Sent at once, attempts are counted one by one: only the allowance passes.
    let tries = (0..12).map(|_| s.sign_in_attempt("tm", 5, lockout));
    let allowed = futures_util::future::join_all(tries)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(allowed, 5);
    // Lapsed: a lock-out of zero makes every earlier attempt old.
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert!(s
        .sign_in_attempt("pbc", 1, Duration::from_micros(1))
        .await
        .unwrap());
    // A success forgets them.
    for _ in 0..5 {
        s.sign_in_attempt("sl", 5, lockout).await.unwrap();
    }
    s.sign_in_succeeded("sl").await.unwrap();
    assert!(s.sign_in_attempt("sl", 1, lockout).await.unwrap());
    s.close().await;
    other.close().await;
}

async fn completion_times_are_read_per_holdername_a_find_registered_in(db: Place) {
    let s = db.open().await;
    s.append(find("f", true), audit("f")).await.unwrap();
    s.append(find("n", false), audit("n")).await.unwrap();
    let mut other = pei(2, MatchStatus::Yes);
    other.matched.holdername = Uuid::from_u128(2000);
    s.record_matches(
        "f",
        vec![pei(1, MatchStatus::Yes), pei(3, MatchStatus::Yes), other],
        None,
    )
    .await
    .unwrap();
    let c = s.claim(Duration::from_secs(60), 1).await.unwrap().remove(0);
    s.end(
        "f",
        Some(c.attempts),
        Ok(FindOutcome::MatchYes),
        Vec::new(),
        None,
    )
    .await
    .unwrap();
    let store = &s;
    let completions = |from: i64, to: i64| async move {
        let samples = store.sla_samples(from, to).await.unwrap().by_holdername;
        samples
            .into_iter()
            .filter(|(_, x)| !x.completion.is_empty())
            .map(|(h, x)| (h, x.completion))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let by = completions(0, i64::MAX).await;
    assert_eq!(
        by.keys().copied().collect::<Vec<_>>(),
        [Uuid::from_u128(1000), Uuid::from_u128(2000)]
    );
    // Once per holdername, whatever the number of its PeIs; no-matches are not completions.
    assert!(by.values().all(|v| v.len() == 1 && v[0] >= 0));
    assert!(completions(0, 1).await.is_empty());
}

async fn the_oldest_open_find_is_the_earliest_acked_still_queued_or_worked(db: Place) {
    let s = db.open().await;
    assert_eq!(s.oldest_open_find().await.unwrap(), None);
    // A no-match is at its end from its ACK: never open.
    s.append(find("none", false), audit("none")).await.unwrap();
    assert_eq!(s.oldest_open_find().await.unwrap(), None);
    for id in ["a", "b"] {
        s.append(find(id, true), audit(id)).await.unwrap();
    }
    let acked = |f: Option<StoredFind>| f.unwrap().acked_at;
    let (a, b) = (
        acked(s.find_request("a").await.unwrap()),
        acked(s.find_request("b").await.unwrap()),
    );
    assert!(a <= b);
    assert_eq!(s.oldest_open_find().await.unwrap(), Some(a));
    // Being worked is still open.
    let claimed = s.claim(Duration::from_secs(60), 1).await.unwrap();
    assert_eq!(claimed[0].request_id, "a");
    assert_eq!(s.oldest_open_find().await.unwrap(), Some(a));
    assert!(s.complete("a", FindOutcome::MatchYes).await.unwrap());
    assert_eq!(s.oldest_open_find().await.unwrap(), Some(b));
    s.claim(Duration::from_secs(60), 1).await.unwrap();
    assert!(s.fail("b", "token: budget_exhausted").await.unwrap());
    assert_eq!(s.oldest_open_find().await.unwrap(), None);
}

on_both_backends!(
    audit_records_by_id_are_found_on_every_day_of_the_window,
    the_last_records_ids_are_written_by_row_a_slice_at_a_time_and_forgotten_once_by_week,
    the_oldest_open_find_is_the_earliest_acked_still_queued_or_worked,
    appends_store_no_matches_at_their_end_and_queue_matches_sealed,
    a_find_is_claimed_once_ended_once_and_reclaimed_after_its_lease,
    peis_pats_and_reviews_round_trip_as_typed_values,
    members_and_pensions_are_sealed_and_opened,
    the_sla_samples_come_from_the_audit_trail_finds_and_heartbeats,
    the_open_find_count_stays_exact_under_concurrent_acks_and_ends,
    member_changes_add_update_repeat_and_remove_and_are_noted_in_order,
    a_data_key_rotation_reseals_everything_and_resumes_after_a_stop,
    a_registration_that_lands_after_its_pei_was_retired_is_sent_for_deregistration,
    members_added_together_are_read_back_by_the_slots_they_took,
    old_data_changes_are_forgotten_but_the_version_never_goes_back,
    a_daily_job_runs_once_a_day_and_is_taken_over_when_its_holder_stops,
    a_renewed_lease_keeps_a_find_from_a_second_claim,
    report_facts_windows_and_possible_matches_read_back_per_period,
    a_submission_is_claimed_once_answered_and_corrected_as_a_new_attempt,
    console_users_are_checked_against_every_user_in_the_saving_transaction,
    sign_in_attempts_lock_a_username_for_every_instance_until_they_lapse,
    completion_times_are_read_per_holdername_a_find_registered_in,
);

mod history;
mod same;
