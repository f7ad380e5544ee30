use super::*;
use crate::audit::{AuditRecord, Direction};
use crate::store::sqlite::SqliteStore;
use crate::store::JournalBackend;

fn at(month: &str) -> i64 {
    month_bounds(month).unwrap().0
}

fn rec(endpoint: &str, status: u16, received_at: i64, latency_us: i64) -> AuditRecord {
    AuditRecord {
        transaction_id: uuid::Uuid::new_v4().to_string(),
        request_id: None,
        direction: Direction::Inbound,
        party: "CN=pfs".into(),
        endpoint: endpoint.into(),
        received_at,
        responded_at: received_at + latency_us,
        status,
        outcome: "ack".into(),
    }
}

#[test]
fn percentiles_are_nearest_rank() {
    let v: Vec<i64> = (1..=1000).collect();
    assert_eq!(percentile(&v, 0.5), 500);
    assert_eq!(percentile(&v, 0.99), 990);
    assert_eq!(percentile(&v, 0.999), 999);
    assert_eq!(percentile(&v, 1.0), 1000);
    assert_eq!(percentile(&[], 0.5), 0);
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
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(&dir.path().join("s.sqlite")).unwrap();
    let start = at("2026-11");
    // 2000 ACKs: 1997 at 10 ms, 3 at 3 s: p99.9 is 3 s, 99.85% within 2 s: missed.
    let mut audit: Vec<AuditRecord> = (0..2000)
        .map(|i| {
            let lat = if i < 1997 { 10_000 } else { 3_000_000 };
            rec("POST /find-requests", 202, start + i * 1000, lat)
        })
        .collect();
    // 1000 views at 100 ms and 1 at 9 s: met (p99.9 = 100 ms, 99.9% within 10 s... all within).
    audit.extend((0..1000).map(|i| rec("GET /view-data", 200, start + i * 1000, 100_000)));
    audit.push(rec("GET /view-data", 200, start + 5, 9_000_000));
    // Noise outside the month and other endpoints.
    audit.push(rec("POST /find-requests", 202, at("2026-10"), 9_000_000));
    audit.push(rec("POST /find-requests", 400, start, 9_000_000));
    s.commit(&[], &mut audit).unwrap();
    // Completions: 10 matches at 2 s; one failed find.
    for i in 0..11 {
        s.conn()
            .execute(
                "INSERT INTO find_requests (request_id, received_at, acked_at, state, outcome, completed_at)
                 VALUES (?1, ?2, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    format!("f{i}"),
                    start + i,
                    if i < 10 { "done" } else { "failed" },
                    if i < 10 { Some("match-yes") } else { None },
                    start + i + 2_000_000
                ],
            )
            .unwrap();
    }
    // Up for the first 1000 minutes of a 1000-minute window: 100%.
    for m in 0..1000 {
        heartbeat(s.conn(), start + m * 60_000_000).unwrap();
    }
    let now = start + 1000 * 60_000_000;
    let r = report(s.conn(), "2026-11", now).unwrap();
    assert_eq!(r.ack.count, 2000);
    assert_eq!(r.ack.p50_ms, 10.0);
    assert_eq!(r.ack.p999_ms, 3000.0);
    assert!((r.ack.within_limit - 0.9985).abs() < 1e-9);
    assert!(!r.ack.met);
    assert_eq!(r.view.count, 1001);
    assert_eq!(r.view.p999_ms, 100.0);
    assert_eq!(r.view.max_ms, 9000.0);
    assert!(r.view.met);
    assert_eq!(r.completion.count, 10);
    assert_eq!(r.completion.max_ms, 2000.0);
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
    let r = report(s.conn(), "2026-11", start + 2000 * 60_000_000).unwrap();
    assert!(!r.availability.met);
    assert!((r.availability.ratio - 0.5).abs() < 1e-9);
}
