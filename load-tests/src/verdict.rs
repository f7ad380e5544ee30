//! The verdict: each latency series against its CoCo limit and recommended target, and each
//! phase's errors against the threshold.
//!
//! A missed limit or an error rate over the threshold fails the run (exit 1); a missed target
//! is reported but does not fail it.

use serde::Serialize;

use super::histogram::{duration_ms, Series};

/// What a check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A CoCo limit: a miss fails the run.
    Limit,
    /// A recommended target: a miss is reported only.
    Target,
    /// The error threshold: over it fails the run.
    Errors,
}

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// The phase.
    pub phase: String,
    /// What was checked, e.g. `ack p99.9`.
    pub what: String,
    /// Limit, target or errors.
    pub severity: Severity,
    /// The measured value (ms for latency, a share for errors); `None` when it falls among
    /// samples that never completed.
    pub value: Option<f64>,
    /// The threshold, in the same unit.
    pub threshold: f64,
    /// `ms` or `share`.
    pub unit: &'static str,
    /// Whether it held.
    pub passed: bool,
}

/// All checks of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verdict {
    /// No limit missed and no error threshold exceeded.
    pub passed: bool,
    /// Every target met as well.
    pub targets_met: bool,
    /// The checks, in order.
    pub checks: Vec<Check>,
}

/// The limit and target checks of a series (none when it has no samples at all).
pub fn series_checks(phase: &str, series: &Series) -> Vec<Check> {
    if series.count() == 0 && series.missed == 0 {
        return Vec::new();
    }
    let sla = series.kind.sla();
    let label = if sla.percentile >= 100.0 {
        format!("{} max", series.kind.name())
    } else {
        format!("{} p{}", series.kind.name(), sla.percentile)
    };
    let value = series
        .at_percentile_with_missed(sla.percentile)
        .map(duration_ms);
    [(Severity::Limit, sla.limit), (Severity::Target, sla.target)]
        .into_iter()
        .map(|(severity, threshold)| {
            let threshold = duration_ms(threshold);
            Check {
                phase: phase.to_owned(),
                what: label.clone(),
                severity,
                value,
                threshold,
                unit: "ms",
                passed: value.is_some_and(|v| v <= threshold),
            }
        })
        .collect()
}

/// The error check of a phase: `errors / attempted` at most `max_rate`.
pub fn error_check(phase: &str, errors: u64, attempted: u64, max_rate: f64) -> Check {
    let rate = error_rate(errors, attempted);
    Check {
        phase: phase.to_owned(),
        what: "error rate".into(),
        severity: Severity::Errors,
        value: Some(rate),
        threshold: max_rate,
        unit: "share",
        passed: rate <= max_rate,
    }
}

/// `errors / attempted`, 0 when nothing was attempted.
pub fn error_rate(errors: u64, attempted: u64) -> f64 {
    if attempted == 0 {
        0.0
    } else {
        errors as f64 / attempted as f64
    }
}

// === impl Verdict ===

impl Verdict {
    /// The verdict of these checks.
    pub fn of(checks: Vec<Check>) -> Self {
        let passed = checks
            .iter()
            .all(|c| c.passed || c.severity == Severity::Target);
        let targets_met = checks.iter().all(|c| c.passed);
        Self {
            passed,
            targets_met,
            checks,
        }
    }

    /// The exit code: 0 when passed, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.passed {
            0
        } else {
            1
        }
    }
}

#[cfg(test)]
mod tests;
