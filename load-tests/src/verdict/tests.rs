//! Unit tests of the parent module.

use std::time::Duration;

use super::*;
use crate::histogram::{rank, Series, SeriesKind};

fn ack_series(values: &[(u64, Duration)]) -> Series {
    let mut s = Series::new(SeriesKind::Ack);
    for (n, d) in values {
        for _ in 0..*n {
            s.record(*d);
        }
    }
    s
}

#[test]
fn ranks_are_exact() {
    assert_eq!(rank(1000, 99.9), 999);
    assert_eq!(rank(1000, 99.99), 1000);
    assert_eq!(rank(1000, 50.0), 500);
    assert_eq!(rank(1000, 100.0), 1000);
    assert_eq!(rank(999, 99.9), 999); // 998.001 rounds up
    assert_eq!(rank(10, 0.0), 1);
    assert_eq!(rank(0, 99.9), 1);
}

#[test]
fn one_slow_in_a_thousand_is_within_the_ack_limit_at_p999() {
    // 999 at 100 ms and 1 at 3 s: p99.9 is the 999th smallest value, 100 ms (reported as the
    // top of its HdrHistogram bucket: 100 ms + 31 µs at 64 µs resolution), so the 2 s limit
    // and the 250 ms target hold; the one at 3 s is p99.99 and the max.
    let s = ack_series(&[
        (999, Duration::from_millis(100)),
        (1, Duration::from_secs(3)),
    ]);
    assert_eq!(s.at_percentile(99.9), Duration::from_micros(100_031));
    assert_eq!(s.at_percentile(50.0), Duration::from_micros(100_031));
    // 3 s at 2048 µs resolution: the bucket 2_998_272..=3_000_319 µs.
    assert_eq!(s.at_percentile(99.99), Duration::from_micros(3_000_319));
    assert_eq!(s.at_percentile(100.0), Duration::from_micros(3_000_319));
    let summary = s.summary();
    assert_eq!(summary.p999_ms, 100.031);
    assert_eq!(summary.max_ms, 3000.319);
    let checks = series_checks("main", &s);
    assert_eq!(checks.len(), 2);
    assert_eq!(checks[0].what, "ack p99.9");
    assert_eq!(checks[0].severity, Severity::Limit);
    assert_eq!(checks[0].threshold, 2000.0);
    assert_eq!(checks[0].value, Some(100.031));
    assert!(checks[0].passed);
    assert_eq!(checks[1].severity, Severity::Target);
    assert_eq!(checks[1].threshold, 250.0);
    assert!(checks[1].passed);
    assert!(Verdict::of(checks).passed);
}

#[test]
fn two_slow_in_a_thousand_miss_the_ack_limit() {
    // 998 at 100 ms and 2 at 3 s: the 999th smallest is 3 s, over the 2 s limit.
    let s = ack_series(&[
        (998, Duration::from_millis(100)),
        (2, Duration::from_secs(3)),
    ]);
    let checks = series_checks("main", &s);
    assert_eq!(checks[0].value, Some(3000.319));
    assert!(!checks[0].passed && !checks[1].passed);
    let v = Verdict::of(checks);
    assert!(!v.passed && !v.targets_met);
    assert_eq!(v.exit_code(), 1);
}

#[test]
fn a_missed_target_is_reported_but_passes() {
    // p99.9 at 400 ms: under the 2 s limit, over the 250 ms target.
    let s = ack_series(&[(1000, Duration::from_millis(400))]);
    let v = Verdict::of(series_checks("main", &s));
    assert!(v.passed);
    assert!(!v.targets_met);
    assert_eq!(v.exit_code(), 0);
}

#[test]
fn completion_is_judged_on_every_sample_and_misses_fail_it() {
    let mut s = Series::new(SeriesKind::Completion);
    for _ in 0..100 {
        s.record(Duration::from_secs(2));
    }
    s.record(Duration::from_secs(20));
    let checks = series_checks("main", &s);
    assert_eq!(checks[0].what, "completion max");
    assert!(checks[0].passed, "20 s is within 60 s");
    assert!(!checks[1].passed, "20 s is over the 15 s target");

    s.missed = 1;
    let checks = series_checks("main", &s);
    assert_eq!(checks[0].value, None, "the max falls on the missed sample");
    assert!(!checks[0].passed);
    assert_eq!(Verdict::of(checks).exit_code(), 1);
}

#[test]
fn missed_samples_count_as_slowest_at_a_percentile() {
    let mut s = Series::new(SeriesKind::View);
    for _ in 0..999 {
        s.record(Duration::from_millis(500));
    }
    s.missed = 1;
    // 1000 in all, p99.9 is the 999th: recorded.
    assert!(series_checks("main", &s)[0].passed);
    s.missed = 2;
    assert!(!series_checks("main", &s)[0].passed);
}

#[test]
fn an_empty_series_is_not_judged() {
    assert!(series_checks("main", &Series::new(SeriesKind::Completion)).is_empty());
}

#[test]
fn error_rate_against_the_threshold() {
    // 1 in 1000 is exactly the default 0.001: it holds; 2 do not.
    assert!(error_check("main", 1, 1000, 0.001).passed);
    assert!(!error_check("main", 2, 1000, 0.001).passed);
    assert_eq!(error_check("main", 2, 1000, 0.001).value, Some(0.002));
    assert!(error_check("main", 0, 0, 0.0).passed);
    assert!(!error_check("recovery", 1, 10_000, 0.0).passed);
    let v = Verdict::of(vec![
        error_check("main", 0, 100, 0.001),
        error_check("recovery", 5, 100, 0.001),
    ]);
    assert!(!v.passed);
}
