//! Open-loop pacing: when request `i` is due, computed from the start, never accumulated.
//!
//! Request `i` of a run at `rate` requests per second is scheduled at `start + i / rate`.
//! Each offset is computed from `i` alone (in integer nanoseconds), so rounding never
//! accumulates into drift however long the run, and a late request does not push the
//! schedule back: its lateness is measured, which is what makes latency figures
//! coordinated-omission correct.

use std::time::Duration;

/// Nanoseconds in a second.
const NANOS: u128 = 1_000_000_000;

/// The offset from the start at which request `i` is due at `rate` per second.
///
/// `rate` must be positive; the result is rounded down to the nanosecond.
pub fn offset(i: u64, rate: f64) -> Duration {
    // i * 1e9 / rate, computed as (i * 1e9 * 1e6) / (rate * 1e6) in integers so that a rate
    // with a fractional part (e.g. 33.3/s) keeps micro-request precision.
    let rate_micro = (rate * 1e6).round().max(1.0) as u128;
    let nanos = u128::from(i) * NANOS * 1_000_000 / rate_micro;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// How many requests a run of `duration` at `rate` per second schedules: every `i` whose offset
/// is strictly before `duration`.
pub fn count(rate: f64, duration: Duration) -> u64 {
    if rate <= 0.0 || duration.is_zero() {
        return 0;
    }
    let mut n = (rate * duration.as_secs_f64()).ceil().max(0.0) as u64;
    // Correct the float estimate at the edges so that `offset(n - 1) < duration <= offset(n)`.
    while n > 0 && offset(n - 1, rate) >= duration {
        n -= 1;
    }
    while offset(n, rate) < duration {
        n += 1;
    }
    n
}

/// The whole second (from the start) that `offset` falls in: the bucket of per-second figures.
pub fn second_of(offset: Duration) -> usize {
    usize::try_from(offset.as_secs()).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests;
