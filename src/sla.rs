//! `sla report --month YYYY-MM`: the code of connection's service levels, from the audit trail.
//!
//! - ACK (CoCo2.1.1): inbound `POST /find-requests` answered `202`: 99.9% under 2 s (target 250 ms).
//! - Completion (CoCo2.1.2): ACK to last PeI registered, for matches: all under 60 s (target
//!   15 s); failed finds are misses.
//! - View (CoCo2.1.3): inbound `GET /view-data`, every answer: 99.9% under 10 s (target 2 s).
//! - Availability (CoCo2.1.5): minutes the endpoint was up and ready, of the month so far: 99.5%.
//!
//! Percentiles are nearest-rank over every sample of the month.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::store::{SlaSamples, Store, StoreError};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SlaError {
    /// The month is not `YYYY-MM`.
    #[error("--month: expected YYYY-MM")]
    Month,
    /// Reading the store.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One latency service level.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Series {
    /// Samples.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
    /// The recommended target, s.
    pub target_s: f64,
    /// The code-of-connection limit, s.
    pub limit_s: f64,
    /// Share of samples within the target.
    pub within_target: f64,
    /// Share of samples within the limit.
    pub within_limit: f64,
    /// The share the standard requires within the limit.
    pub required: f64,
    /// Whether the standard is met.
    pub met: bool,
}

/// Availability of the month so far.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Availability {
    /// Minutes up and ready.
    pub minutes_up: u64,
    /// Minutes of the month elapsed.
    pub minutes_elapsed: u64,
    /// `minutes_up / minutes_elapsed`.
    pub ratio: f64,
    /// Whether 99.5% is met.
    pub met: bool,
}

/// The month's report.
#[derive(Debug, Clone, Serialize)]
pub struct SlaReport {
    /// `YYYY-MM`.
    pub month: String,
    /// CoCo2.1.1.
    pub ack: Series,
    /// CoCo2.1.2 (plus failed finds).
    pub completion: Series,
    /// Failed find requests (CoCo2.2.6), each a completion miss.
    pub failed_finds: u64,
    /// CoCo2.1.3.
    pub view: Series,
    /// CoCo2.1.5.
    pub availability: Availability,
    /// Answers by endpoint and outcome.
    pub counts: BTreeMap<String, u64>,
}

/// The month's bounds in µs: [start, end).
pub fn month_bounds(month: &str) -> Result<(i64, i64), SlaError> {
    let (y, m) = month.split_once('-').ok_or(SlaError::Month)?;
    let (y, m): (i32, u32) = (
        y.parse().map_err(|_| SlaError::Month)?,
        m.parse().map_err(|_| SlaError::Month)?,
    );
    let start = NaiveDate::from_ymd_opt(y, m, 1).ok_or(SlaError::Month)?;
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    }
    .ok_or(SlaError::Month)?;
    let micros = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp_micros()
    };
    Ok((micros(start), micros(next)))
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A series from latencies in µs.
pub fn series(mut v: Vec<i64>, target_s: f64, limit_s: f64, required: f64) -> Series {
    v.sort_unstable();
    let n = v.len();
    let ms = |us: i64| us as f64 / 1000.0;
    let share = |s: f64| {
        if n == 0 {
            1.0
        } else {
            v.iter().filter(|&&x| (x as f64) < s * 1e6).count() as f64 / n as f64
        }
    };
    let within_limit = share(limit_s);
    Series {
        count: n as u64,
        p50_ms: ms(percentile(&v, 0.5)),
        p99_ms: ms(percentile(&v, 0.99)),
        p999_ms: ms(percentile(&v, 0.999)),
        max_ms: ms(v.last().copied().unwrap_or(0)),
        target_s,
        limit_s,
        within_target: share(target_s),
        within_limit,
        required,
        met: within_limit >= required,
    }
}

/// Builds the report for `month` as of `now` (µs) from the store.
pub async fn report(store: &Store, month: &str, now: i64) -> Result<SlaReport, SlaError> {
    let (from, to) = month_bounds(month)?;
    let samples = store.sla_samples(from, to).await?;
    report_from(samples, month, now)
}

/// Builds the report for `month` as of `now` (µs) from its samples.
pub fn report_from(s: SlaSamples, month: &str, now: i64) -> Result<SlaReport, SlaError> {
    let (from, to) = month_bounds(month)?;
    let minute = 60_000_000i64;
    let elapsed = ((now.min(to) - from) / minute).max(0) as u64;
    let ratio = if elapsed == 0 {
        1.0
    } else {
        (s.minutes_up as f64 / elapsed as f64).min(1.0)
    };
    let mut completion = series(s.completion, 15.0, 60.0, 1.0);
    completion.met &= s.failed == 0;
    Ok(SlaReport {
        month: month.to_owned(),
        ack: series(s.ack, 0.25, 2.0, 0.999),
        completion,
        failed_finds: s.failed,
        view: series(s.view, 2.0, 10.0, 0.999),
        availability: Availability {
            minutes_up: s.minutes_up,
            minutes_elapsed: elapsed,
            ratio,
            met: ratio >= 0.995,
        },
        counts: s.counts.into_iter().collect(),
    })
}

// === impl SlaReport ===

impl SlaReport {
    /// The standards missed.
    pub fn missed(&self) -> Vec<&'static str> {
        let mut m = Vec::new();
        if !self.ack.met {
            m.push("CoCo2.1.1 find ACK");
        }
        if !self.completion.met {
            m.push("CoCo2.1.2 find completion");
        }
        if !self.view.met {
            m.push("CoCo2.1.3 view");
        }
        if !self.availability.met {
            m.push("CoCo2.1.5 availability");
        }
        m
    }

    /// A plain-text table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "SLA report {}\n\n{:<22} {:>9} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9}  {}\n",
            self.month,
            "standard",
            "count",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "≤target",
            "≤limit",
            "met"
        );
        for (name, s) in [
            ("CoCo2.1.1 ACK", &self.ack),
            ("CoCo2.1.2 completion", &self.completion),
            ("CoCo2.1.3 view", &self.view),
        ] {
            out.push_str(&format!(
                "{:<22} {:>9} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>8.3}% {:>8.3}%  {}\n",
                name,
                s.count,
                s.p50_ms,
                s.p99_ms,
                s.p999_ms,
                s.max_ms,
                s.within_target * 100.0,
                s.within_limit * 100.0,
                if s.met { "yes" } else { "NO" }
            ));
        }
        out.push_str(&format!(
            "{:<22} {:>9} of {} minutes up: {:.3}% (99.5% required)  {}\n",
            "CoCo2.1.5 availability",
            self.availability.minutes_up,
            self.availability.minutes_elapsed,
            self.availability.ratio * 100.0,
            if self.availability.met { "yes" } else { "NO" }
        ));
        out.push_str(&format!(
            "failed find requests: {}\n\ncounts:\n",
            self.failed_finds
        ));
        for (k, v) in &self.counts {
            out.push_str(&format!("  {k:<48} {v}\n"));
        }
        out
    }
}

/// Availability of the calendar month containing `now`, so far.
pub async fn availability_this_month(store: &Store, now: i64) -> Result<(String, f64), SlaError> {
    let d = chrono::DateTime::from_timestamp_micros(now).unwrap_or_default();
    let month = format!("{:04}-{:02}", d.year(), d.month());
    let (from, to) = month_bounds(&month)?;
    let up = store.minutes_up(from, to).await?;
    let elapsed = ((now - from) / 60_000_000).max(1);
    Ok((month, (up as f64 / elapsed as f64).min(1.0)))
}

#[cfg(test)]
mod tests;
