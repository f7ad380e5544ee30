//! The code of connection's service levels, stated once: for each timed standard its limit,
//! the recommended target and the share of answers that must be within the limit; the
//! availability required; and the nearest-rank percentile every report uses (`sla report`,
//! the load tool's verdict). The metrics count breaches against the same limits.

use std::time::Duration;

/// A timed code-of-connection standard; its name (`CoCo2.1.1`) is the `standard` label of
/// [`crate::metrics::SLA_BREACHES_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::VariantArray)]
pub enum Standard {
    /// Find ACK within 2 s.
    #[strum(serialize = "CoCo2.1.1")]
    Ack,
    /// Find completion within 60 s of the ACK.
    #[strum(serialize = "CoCo2.1.2")]
    Completion,
    /// A view within 10 s.
    #[strum(serialize = "CoCo2.1.3")]
    View,
}

/// A timed standard's level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// The standard.
    pub standard: Standard,
    /// The recommended target: over it is reported, not a breach.
    pub target: Duration,
    /// The limit: over it is a breach.
    pub limit: Duration,
    /// The share of answers that must be within the limit (0.999; 1.0: every one).
    pub required: f64,
}

/// CoCo2.1.1: a find request acknowledged within 2 s, 99.9% of them (target 250 ms).
pub const ACK: Level = Level {
    standard: Standard::Ack,
    target: Duration::from_millis(250),
    limit: Duration::from_secs(2),
    required: 0.999,
};

/// CoCo2.1.2: every matching find completed (PeIs registered) within 60 s of its ACK
/// (target 15 s).
pub const COMPLETION: Level = Level {
    standard: Standard::Completion,
    target: Duration::from_secs(15),
    limit: Duration::from_secs(60),
    required: 1.0,
};

/// CoCo2.1.3: a view answered within 10 s, 99.9% of them (target 2 s).
pub const VIEW: Level = Level {
    standard: Standard::View,
    target: Duration::from_secs(2),
    limit: Duration::from_secs(10),
    required: 0.999,
};

/// CoCo2.1.5: the share of a month's minutes since go-live the endpoint must be up.
pub const AVAILABILITY_REQUIRED: f64 = 0.995;

// === impl Level ===

impl Level {
    /// Whether an answer that took `elapsed` breaches this level's limit.
    pub fn breached_by(&self, elapsed: Duration) -> bool {
        elapsed > self.limit
    }

    /// The quantile checked, as a percentile (99.9; 100: every answer, the maximum).
    pub fn percentile(&self) -> f64 {
        self.required * 100.0
    }
}

/// The 1-based nearest rank of `percentile` (0 to 100, to a thousandth) among `n` samples:
/// `ceil(n * percentile / 100)`, at least 1, at most `n`; computed in integers, so with 1000
/// samples p99.9 is the 999th smallest and p99.99 the 1000th.
pub fn rank(n: u64, percentile: f64) -> u64 {
    let milli = (percentile.clamp(0.0, 100.0) * 1000.0).round() as u128;
    let r = (u128::from(n) * milli).div_ceil(100_000);
    u64::try_from(r).unwrap_or(u64::MAX).clamp(1, n.max(1))
}

/// The nearest-rank `percentile` (0 to 100) of ascending `sorted` samples; 0 when empty.
pub fn percentile(sorted: &[i64], percentile: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let r = rank(sorted.len() as u64, percentile) as usize;
    sorted[r - 1]
}
