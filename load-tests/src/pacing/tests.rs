//! Unit tests of the parent module.

use std::time::Duration;

use super::*;

#[test]
fn offsets_are_i_over_rate() {
    assert_eq!(offset(0, 50.0), Duration::ZERO);
    assert_eq!(offset(1, 50.0), Duration::from_millis(20));
    assert_eq!(offset(50, 50.0), Duration::from_secs(1));
    assert_eq!(offset(3, 2000.0), Duration::from_micros(1500));
    // A rate with no exact period: 1/3 s rounds down to the nanosecond.
    assert_eq!(offset(1, 3.0), Duration::from_nanos(333_333_333));
}

#[test]
fn no_drift_over_a_long_run() {
    // Ten minutes at 3/s: accumulating a rounded 333_333_333 ns period would lose 1 ns each
    // request (1.8 µs by the end); computing from i does not.
    let i = 3 * 600;
    assert_eq!(offset(i, 3.0), Duration::from_secs(600));
    // A day at 7/s: the offset of request i is exactly i/7 s, whatever i.
    for i in [7u64, 7 * 86_400, 7 * 86_400 + 1] {
        let want = Duration::from_nanos(i * 1_000_000_000 / 7);
        assert_eq!(offset(i, 7.0), want);
    }
    // Successive gaps never differ from the period by more than a nanosecond.
    let period = 1e9 / 2000.0;
    for i in 1..100_000u64 {
        let gap = (offset(i, 2000.0) - offset(i - 1, 2000.0)).as_nanos() as f64;
        assert!((gap - period).abs() <= 1.0, "gap {gap} at {i}");
    }
}

#[test]
fn fractional_rates_keep_precision() {
    // 33.3/s: request 333 is due at 10 s exactly.
    assert_eq!(offset(333, 33.3), Duration::from_secs(10));
    assert_eq!(offset(1, 0.5), Duration::from_secs(2));
}

#[test]
fn count_is_every_request_due_before_the_end() {
    assert_eq!(count(50.0, Duration::from_secs(2)), 100);
    assert_eq!(count(2000.0, Duration::from_secs(60)), 120_000);
    assert_eq!(count(3.0, Duration::from_secs(1)), 3);
    // 0, 0.4, 0.8 s are before 1 s; 1.2 s is not.
    assert_eq!(count(2.5, Duration::from_secs(1)), 3);
    assert_eq!(count(0.0, Duration::from_secs(1)), 0);
    assert_eq!(count(10.0, Duration::ZERO), 0);
    for (rate, secs) in [(7.0, 3.3), (33.3, 10.0), (1000.0, 0.0015)] {
        let d = Duration::from_secs_f64(secs);
        let n = count(rate, d);
        assert!(
            offset(n - 1, rate) < d && offset(n, rate) >= d,
            "{rate} {secs}"
        );
    }
}

#[test]
fn seconds_bucket_offsets() {
    assert_eq!(second_of(Duration::from_millis(999)), 0);
    assert_eq!(second_of(Duration::from_millis(1000)), 1);
    assert_eq!(second_of(offset(4321, 1000.0)), 4);
}
