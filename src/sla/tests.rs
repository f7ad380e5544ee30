use super::*;

fn at(month: &str) -> i64 {
    month_bounds(month).unwrap().0
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
    };
    let now = start + 1000 * 60_000_000;
    let r = report_from(samples.clone(), "2026-11", now).unwrap();
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
    let r = report_from(samples, "2026-11", start + 2000 * 60_000_000).unwrap();
    assert!(!r.availability.met);
    assert!((r.availability.ratio - 0.5).abs() < 1e-9);
}
