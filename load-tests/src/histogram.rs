//! Latency series: an HdrHistogram per kind (ACK, completion, view) and per-second figures.
//!
//! Values are recorded in microseconds with three significant figures, from 1 µs to an hour, so
//! a reported percentile is within 0.1% of the true value (HdrHistogram reports the highest
//! value equivalent to the bucket the percentile falls in).

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The highest value recorded without saturating: one hour, in microseconds.
const MAX_MICROS: u64 = 3_600_000_000;

/// A fresh histogram with the load tool's bounds and precision.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("static bounds are valid")
}

/// Which latency a series measures; each has its own CoCo limit and recommended target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesKind {
    /// Find request sent (open loop: scheduled) to its `202` ACK.
    Ack,
    /// ACK to the PeI registration appearing at the CAS.
    Completion,
    /// A view request to its answer (the view phase is not written yet).
    View,
}

/// The CoCo limit and the recommended target of a series, at one quantile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sla {
    /// The quantile checked, as a percentile (99.9; 100 means every sample, the maximum).
    pub percentile: f64,
    /// The CoCo limit: over it is a miss (exit 1).
    #[serde(serialize_with = "ser_ms")]
    pub limit: Duration,
    /// The recommended target: over it is reported, not failed.
    #[serde(serialize_with = "ser_ms")]
    pub target: Duration,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

// === impl SeriesKind ===

impl SeriesKind {
    /// The limit and target this series is judged against: the server's CoCo levels
    /// (`pdp_provider::coco`). ACK: 2 s at p99.9 (target 250 ms). Completion: every sampled
    /// find within 60 s from its ACK (CoCo2.1.2; target 15 s), a sample never seen counting as
    /// over. View: 10 s at p99.9 (target 2 s).
    pub fn sla(self) -> Sla {
        let level = match self {
            SeriesKind::Ack => pdp_provider::coco::ACK,
            SeriesKind::Completion => pdp_provider::coco::COMPLETION,
            SeriesKind::View => pdp_provider::coco::VIEW,
        };
        Sla {
            percentile: level.percentile(),
            limit: level.limit,
            target: level.target,
        }
    }

    /// The series' name in reports.
    pub fn name(self) -> &'static str {
        match self {
            SeriesKind::Ack => "ack",
            SeriesKind::Completion => "completion",
            SeriesKind::View => "view",
        }
    }
}

/// The latencies of one kind in one phase.
#[derive(Debug, Clone)]
pub struct Series {
    /// What it measures.
    pub kind: SeriesKind,
    /// The recorded latencies, µs.
    pub hist: Histogram<u64>,
    /// Samples that never completed (completion: not registered within 60 s).
    pub missed: u64,
}

/// A series' figures, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesSummary {
    /// Which series.
    pub kind: SeriesKind,
    /// Samples recorded.
    pub count: u64,
    /// Samples never completed.
    pub missed: u64,
    /// Mean, ms.
    pub mean_ms: f64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// 99.99th percentile, ms.
    pub p9999_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
    /// What it is judged against.
    pub sla: Sla,
}

fn micros_to_ms(v: u64) -> f64 {
    v as f64 / 1000.0
}

// === impl Series ===

impl Series {
    /// An empty series of `kind`.
    pub fn new(kind: SeriesKind) -> Self {
        Self {
            kind,
            hist: new_histogram(),
            missed: 0,
        }
    }

    /// Records one latency (saturating at an hour; 0 counts as 1 µs).
    pub fn record(&mut self, latency: Duration) {
        self.hist.saturating_record(duration_micros(latency));
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The recorded value (µs, the highest equivalent of its bucket) of rank `r` (1-based) in
    /// ascending order; `None` past the recorded samples.
    pub fn value_at_rank(&self, r: u64) -> Option<u64> {
        if r == 0 || r > self.count() {
            return None;
        }
        let mut seen = 0u64;
        for v in self.hist.iter_recorded() {
            seen += v.count_at_value();
            if seen >= r {
                return Some(v.value_iterated_to());
            }
        }
        None
    }

    /// The latency at `percentile` (0 to 100) of the recorded samples alone; zero when empty.
    ///
    /// The value of rank `ceil(n * percentile / 100)` (at least 1), computed in integers: with
    /// 1000 samples p99.9 is the 999th smallest, p99.99 the 1000th.
    pub fn at_percentile(&self, percentile: f64) -> Duration {
        let r = rank(self.count(), percentile);
        Duration::from_micros(self.value_at_rank(r).unwrap_or(0))
    }

    /// The latency at `percentile` counting missed samples as later than any recorded one;
    /// `None` when the percentile falls among the missed.
    pub fn at_percentile_with_missed(&self, percentile: f64) -> Option<Duration> {
        let total = self.count() + self.missed;
        if total == 0 {
            return Some(Duration::ZERO);
        }
        self.value_at_rank(rank(total, percentile))
            .map(Duration::from_micros)
    }

    /// The figures reported.
    pub fn summary(&self) -> SeriesSummary {
        let ms = |p: f64| duration_ms(self.at_percentile(p));
        SeriesSummary {
            kind: self.kind,
            count: self.count(),
            missed: self.missed,
            mean_ms: if self.hist.is_empty() {
                0.0
            } else {
                self.hist.mean() / 1000.0
            },
            p50_ms: ms(50.0),
            p90_ms: ms(90.0),
            p99_ms: ms(99.0),
            p999_ms: ms(99.9),
            p9999_ms: ms(99.99),
            max_ms: if self.hist.is_empty() {
                0.0
            } else {
                micros_to_ms(self.hist.max())
            },
            sla: self.kind.sla(),
        }
    }

    /// Points of the percentile curve: (x, latency ms) where x = -log10(1 - q), so 50% is
    /// 0.3, 90% is 1, 99% is 2, 99.9% is 3; x stops where the samples run out (1 - q = 1/count).
    pub fn percentile_curve(&self) -> Vec<(f64, f64)> {
        let n = self.count();
        if n == 0 {
            return Vec::new();
        }
        let x_max = (n as f64).log10().clamp(0.0, 5.0);
        let mut points = Vec::new();
        let mut x = 0.0;
        while x <= x_max + 1e-9 {
            let q = 1.0 - 10f64.powf(-x);
            points.push((x, micros_to_ms(self.hist.value_at_quantile(q))));
            x += 0.05;
        }
        points.push((x_max.max(0.05), micros_to_ms(self.hist.max())));
        points
    }
}

/// The nearest rank the server's `sla report` uses, so both judge a series alike.
pub use pdp_provider::coco::rank;

/// A duration in milliseconds, from whole microseconds (so 100_031 µs is exactly 100.031).
pub fn duration_ms(d: Duration) -> f64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX) as f64 / 1000.0
}

/// A duration in whole microseconds, at least 1 (HdrHistogram's lowest value).
pub fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Seconds of per-second figures kept for one phase (a day).
const MAX_SECONDS: usize = 86_400;

/// Figures of one second of a phase, for the progress line and the latency-over-time plot.
#[derive(Debug, Clone)]
pub struct Second {
    /// Requests due (open loop) or sent (closed loop) in this second.
    pub sent: u64,
    /// `202`s among them.
    pub acked: u64,
    /// Errors among them (shed `503`s excluded when shedding is expected).
    pub errors: u64,
    /// Shed `503`s among them (when shedding is expected).
    pub shed: u64,
    /// ACK latencies of this second's requests.
    pub hist: Histogram<u64>,
}

/// One second's figures, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct SecondPoint {
    /// Seconds from the start of the run (not of the phase).
    pub t_s: f64,
    /// Requests due or sent.
    pub sent: u64,
    /// `202`s.
    pub acked: u64,
    /// Errors.
    pub errors: u64,
    /// Shed `503`s.
    pub shed: u64,
    /// ACK latency median, ms.
    pub p50_ms: f64,
    /// ACK latency 99th percentile, ms.
    pub p99_ms: f64,
    /// ACK latency maximum, ms.
    pub max_ms: f64,
}

/// Per-second figures of a phase, indexed by the second a request was due or sent in.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    seconds: Vec<Second>,
}

// === impl Timeline ===

impl Timeline {
    /// The figures of second `s`, created on first use.
    pub fn at(&mut self, s: usize) -> &mut Second {
        // Bounded: a later second is folded into the last one kept.
        let s = s.min(MAX_SECONDS);
        while self.seconds.len() <= s {
            self.seconds.push(Second {
                sent: 0,
                acked: 0,
                errors: 0,
                shed: 0,
                hist: new_histogram(),
            });
        }
        &mut self.seconds[s]
    }

    /// The reported points, each second shifted by `phase_start_s`.
    pub fn points(&self, phase_start_s: f64) -> Vec<SecondPoint> {
        self.seconds
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let ms = |v: u64| {
                    if s.hist.is_empty() {
                        0.0
                    } else {
                        micros_to_ms(v)
                    }
                };
                SecondPoint {
                    t_s: phase_start_s + i as f64,
                    sent: s.sent,
                    acked: s.acked,
                    errors: s.errors,
                    shed: s.shed,
                    p50_ms: ms(s.hist.value_at_quantile(0.5)),
                    p99_ms: ms(s.hist.value_at_quantile(0.99)),
                    max_ms: ms(s.hist.max()),
                }
            })
            .collect()
    }
}
