use super::*;
use crate::model::{SchemeSamples, SlaSamples};

fn at(month: &str) -> i64 {
    month_bounds(month).unwrap().0
}

#[test]
fn percentiles_are_nearest_rank() {
    let v: Vec<i64> = (1..=1000).collect();
    assert_eq!(percentile(&v, 50.0), 500);
    assert_eq!(percentile(&v, 99.0), 990);
    assert_eq!(percentile(&v, 99.9), 999);
    assert_eq!(percentile(&v, 100.0), 1000);
    assert_eq!(percentile(&[], 50.0), 0);
}

#[test]
fn months_are_bounded() {
    let (a, b) = month_bounds("2026-12").unwrap();
    assert_eq!(b - a, 31 * 86_400_000_000);
    assert!(month_bounds("2026-13").is_err());
    assert!(month_bounds("26-1x").is_err());
}

#[test]
fn a_seeded_month_gives_known_figures_and_verdicts() {
    let start = at("2026-11");
    // 2000 ACKs: 1997 at 10 ms, 3 at 3 s: p99.9 is 3 s, 99.85% within 2 s: missed.
    let ack: Vec<i64> = (0..2000)
        .map(|i| if i < 1997 { 10_000 } else { 3_000_000 })
        .collect();
    // 1000 views at 100 ms and 1 at 9 s: met.
    let mut view = vec![100_000; 1000];
    view.push(9_000_000);
    let samples = SlaSamples {
        ack,
        // Completions: 10 matches at 2 s; one failed find.
        completion: vec![2_000_000; 10],
        failed: 1,
        view,
        counts: vec![("POST /find-requests ack".into(), 2001)],
        // Up for the first 1000 minutes of a 1000-minute window: 100%.
        minutes_up: 1000,
        // One scheme's finds all completed, one of them past the limit; another's views alone.
        by_holdername: [
            (
                uuid::Uuid::from_u128(1),
                SchemeSamples {
                    completion: vec![2_000_000, 61_000_000],
                    view: Vec::new(),
                },
            ),
            (
                uuid::Uuid::from_u128(2),
                SchemeSamples {
                    completion: Vec::new(),
                    view: vec![100_000; 3],
                },
            ),
        ]
        .into(),
    };
    let now = start + 1000 * 60_000_000;
    let live = availability_window(start, at("2026-12"), Some(start), now);
    let r = report_from(Tally::of(&samples), "2026-11", Availability::of(1000, live)).unwrap();
    assert_eq!(r.ack.count, 2000);
    let one = &r.by_holdername[&uuid::Uuid::from_u128(1)];
    let completion = one.completion.as_ref().unwrap();
    assert_eq!((completion.count, completion.met), (2, false));
    assert!(one.view.is_none());
    let two = &r.by_holdername[&uuid::Uuid::from_u128(2)];
    assert!(two.completion.is_none());
    assert_eq!(two.view.as_ref().map(|v| (v.count, v.met)), Some((3, true)));
    // Percentiles from the histogram: at most 0.1% above the sample.
    let near = |got: f64, sample: f64| got >= sample && got <= sample * 1.001;
    assert!(near(r.ack.p50_ms, 10.0), "{}", r.ack.p50_ms);
    assert!(near(r.ack.p999_ms, 3000.0), "{}", r.ack.p999_ms);
    assert!((r.ack.within_limit - 0.9985).abs() < 1e-9);
    assert!(!r.ack.met);
    assert_eq!(r.view.count, 1001);
    assert!(near(r.view.p999_ms, 100.0));
    assert!(near(r.view.max_ms, 9000.0));
    assert!(r.view.met);
    assert_eq!(r.completion.count, 10);
    assert!(near(r.completion.max_ms, 2000.0));
    assert_eq!(r.failed_finds, 1);
    assert!(!r.completion.met, "a failed find misses CoCo2.1.2");
    assert_eq!(r.availability.minutes_up, 1000);
    assert!(r.availability.met);
    assert_eq!(
        r.missed(),
        ["CoCo2.1.1 find ACK", "CoCo2.1.2 find completion"]
    );
    assert_eq!(r.counts["POST /find-requests ack"], 2001);
    assert!(r.table().contains("CoCo2.1.1 ACK"));
    // Half the minutes down: availability missed.
    let later = availability_window(start, at("2026-12"), Some(start), start + 2000 * 60_000_000);
    let r = report_from(
        Tally::of(&samples),
        "2026-11",
        Availability::of(1000, later),
    )
    .unwrap();
    assert!(!r.availability.met);
    assert!((r.availability.ratio - 0.5).abs() < 1e-9);
}

fn store(dir: &tempfile::TempDir) -> Store {
    Store::open(
        &dir.path().join("s.sqlite"),
        crate::sealed::DataKey::from_hex(&"44".repeat(32)).unwrap(),
        Default::default(),
    )
    .unwrap()
}

const MINUTE: i64 = 60_000_000;

/// A server first started on the 20th, up for two minutes: 2 of 2 minutes, not 2 of 28,000.
#[tokio::test]
async fn availability_counts_from_the_first_heartbeat_not_the_first_of_the_month() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let first = at("2026-11") + 19 * 1440 * MINUTE + 600 * MINUTE;
    s.heartbeat(first + 30_000_000).await.unwrap();
    s.heartbeat(first + MINUTE + 30_000_000).await.unwrap();
    s.heartbeat(first + 2 * MINUTE + 5_000_000).await.unwrap();
    let now = first + 2 * MINUTE + 10_000_000;
    let r = report(&s, "2026-11", now, None).await.unwrap();
    let a = &r.availability;
    assert_eq!((a.minutes_up, a.minutes_elapsed), (2, 2), "{}", r.table());
    assert!(a.met, "{}", r.table());
    assert_eq!(
        a.counted_from.as_deref(),
        Some("2026-11-20T10:00:00.000Z"),
        "from the first heartbeat's minute"
    );
    assert!(r
        .table()
        .contains("2 of 2 minutes up since 2026-11-20T10:00"));
    assert_eq!(availability_this_month(&s, now, None).await.unwrap(), *a);
    // The month before was not live: nothing to count, nothing missed.
    let october = report(&s, "2026-10", now, None).await.unwrap();
    assert_eq!(october.availability.counted_from, None);
    assert!(october.availability.met && october.missed().is_empty());
    assert!(october.table().contains("not live this month"));
    s.close().await;
}

/// With `sla.go_live`, downtime since that day counts, and heartbeats from before it do not.
#[tokio::test]
async fn a_configured_go_live_day_counts_from_its_midnight() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let go_live = GoLive(day);
    let midnight = go_live.start_micros();
    // A trial run the day before, then up from 10:00 for two minutes.
    s.heartbeat(midnight - 60 * MINUTE).await.unwrap();
    s.heartbeat(midnight + 600 * MINUTE).await.unwrap();
    s.heartbeat(midnight + 601 * MINUTE).await.unwrap();
    let now = midnight + 602 * MINUTE;
    let r = report(&s, "2026-11", now, Some(go_live)).await.unwrap();
    let a = &r.availability;
    assert_eq!((a.minutes_up, a.minutes_elapsed), (2, 602));
    assert!(!a.met);
    assert_eq!(a.counted_from.as_deref(), Some("2026-11-20T00:00:00.000Z"));
    // A go-live later in the month than `now`: not live yet.
    let r = report(&s, "2026-11", midnight - MINUTE, Some(go_live))
        .await
        .unwrap();
    assert_eq!(r.availability.counted_from, None);
    s.close().await;
}

/// A month added up from hourly tallies reads as its samples do: the same counts and verdicts,
/// percentiles within a thousandth. Hours are tallied once closed, each once; the hours not yet
/// tallied are read from their samples.
#[tokio::test]
async fn a_month_from_hourly_tallies_reads_as_its_samples() {
    use crate::model::{AuditRecord, Direction, FindOutcome, FindState};
    use crate::store::EndedFind;
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let start = at("2026-11");
    let (mut finds, mut trail) = (Vec::new(), Vec::new());
    for i in 0..3_000i64 {
        let received = start + i * 700_000_000 + 13;
        let acked = received + 1_000 + (i % 97) * 3_000 + if i % 750 == 7 { 2_500_000 } else { 0 };
        let matched = i % 10 == 0;
        finds.push(EndedFind {
            request_id: format!("f{i}"),
            received_at: received,
            acked_at: acked,
            state: FindState::Done,
            outcome: Some(if matched {
                FindOutcome::MatchYes
            } else {
                FindOutcome::NoMatch
            }),
            reason: None,
            completed_at: if matched {
                acked + 1_000_000 + i * 1_000
            } else {
                acked
            },
        });
        trail.push(AuditRecord {
            transaction_id: format!("f{i}"),
            request_id: Some(format!("f{i}")),
            direction: Direction::Inbound,
            party: "CN=pfs".into(),
            endpoint: "POST /find-requests".into(),
            received_at: received,
            responded_at: acked,
            status: 202,
            outcome: "ack".into(),
        });
    }
    let (peis, views) = schemes_of(&finds, start);
    s.seed_history(crate::store::Seed {
        finds,
        audit: trail,
        peis,
        views,
    })
    .await
    .unwrap();
    let (from, to) = month_bounds("2026-11").unwrap();
    let exact = report(&s, "2026-11", to, None).await.unwrap();
    assert_eq!(exact.by_holdername.len(), 3);
    // Half the month's hours closed: the rest read from their samples.
    let mid = from + 12 * 86_400_000_000;
    let hours = tally_closed_hours(&s, mid).await.unwrap();
    // The hour that ends at `mid` closes ten minutes later.
    assert_eq!(hours, 12 * 24 - 1);
    assert_eq!(
        tally_closed_hours(&s, mid).await.unwrap(),
        0,
        "each hour once"
    );
    let half = report(&s, "2026-11", to, None).await.unwrap();
    while tally_closed_hours(&s, to + 3_600_000_000).await.unwrap() > 0 {}
    let whole = report(&s, "2026-11", to, None).await.unwrap();
    assert!(!s.sla_hours(0, i64::MAX).await.unwrap().is_empty());
    for r in [&half, &whole] {
        assert_eq!(r.counts, exact.counts);
        let mut pairs = vec![(&r.ack, &exact.ack), (&r.completion, &exact.completion)];
        for (h, l) in &exact.by_holdername {
            let mine = &r.by_holdername[h];
            for (a, b) in [(&mine.completion, &l.completion), (&mine.view, &l.view)] {
                pairs.push((a.as_ref().unwrap(), b.as_ref().unwrap()));
            }
        }
        for (a, b) in pairs {
            assert_eq!(
                (a.count, a.within_limit, a.within_target, a.met),
                (b.count, b.within_limit, b.within_target, b.met)
            );
            assert!(
                a.p999_ms >= b.p999_ms && a.p999_ms <= b.p999_ms * 1.001,
                "{a:?} {b:?}"
            );
        }
    }
    assert_eq!(whole.ack.count, 3_000);
    assert!(!whole.ack.met, "4 of 3,000 over 2 s: 99.9% not met");
    s.close().await;
}

/// The PeIs of `finds`' matches, each registered in one of three schemes, and a view in one of
/// them every 1,000 s from `start`.
fn schemes_of(
    finds: &[crate::store::EndedFind],
    start: i64,
) -> (Vec<crate::store::SeededPei>, Vec<crate::model::ViewFact>) {
    use crate::model::FindOutcome;
    // Each match registered a PeI in one of three schemes; a view of one every 1,000 s.
    let scheme = |i: i64| uuid::Uuid::from_u128(1 + (i % 3) as u128);
    let peis = finds
        .iter()
        .filter(|f| f.outcome == Some(FindOutcome::MatchYes))
        .enumerate()
        .map(|(i, f)| crate::store::SeededPei {
            pei: uuid::Uuid::from_u128(1_000 + i as u128),
            holdername: scheme(i as i64),
            request_id: f.request_id.clone(),
            registered_at: f.completed_at,
        })
        .collect();
    let views = (0..2_000i64)
        .map(|i| crate::model::ViewFact {
            holdername: scheme(i / 2),
            received_at: start + i * 1_000_000_000 + 7,
            responded_at: start + i * 1_000_000_000 + 7 + 1_000 * (i % 500),
            contact_scheme: false,
            missing_admin: false,
            temp_error: false,
            eri: Default::default(),
            accrued: Default::default(),
        })
        .collect();
    (peis, views)
}
