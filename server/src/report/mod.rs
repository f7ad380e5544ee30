//! PDP reporting: the management information every connected provider records and
//! submits daily, per holdername, through the six endpoints of the reporting API v2.1.
//!
//! - [`facts`]: recorded as they happen: views (times, flags, unavailable codes), calculations
//!   started, possible matches resolved.
//! - [`downtime`]: planned unavailability, announced with 5 working days' notice (CoCo2.2.1) or
//!   as an emergency (then reported as unscheduled).
//! - [`build`]: a holdername's day as the six bodies, split at the item limits.
//! - [`submit`]: the day's submissions: claimed in the store before sending (once across
//!   restarts and instances), sent over mTLS with backoff on `429`/`5xx`, answers kept;
//!   `report preview`, `report submit`, `report status`.
//! - [`schedule`]: the server's daily run of the previous day, and missed days as `late`.
//! - [`cli`]: the bodies of the `report` operator commands.
//! - [`possible`]: Regulation 28(3): possible matches per holdername and how they ended.
//!
//! Times are UTC: a reporting day is `[00:00, 24:00)` UTC, `reporting_period_start` its start.

pub mod build;
pub mod cli;
pub mod downtime;
pub mod facts;
pub mod possible;
pub mod schedule;
pub mod submit;

use chrono::NaiveDate;
use uuid::Uuid;

use crate::model::{DayFacts, Service};

/// Why a reporting command failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The SLA helpers (go-live) failed.
    #[error(transparent)]
    Sla(#[from] crate::sla::SlaError),
    /// A planned window was refused.
    #[error(transparent)]
    Downtime(#[from] downtime::DowntimeError),
    /// The provider's mTLS client for the CAS could not be built.
    #[error(transparent)]
    Client(#[from] crate::tls::client::ClientError),
    /// A correction of a day whose reports were not all submitted: nothing is sent.
    #[error(
        "{missing} of the {total} reports of {day} were never submitted, so there is nothing to \
         correct: run `report submit --date {day}` without --resubmit first"
    )]
    NotSubmitted {
        /// The reporting day.
        day: NaiveDate,
        /// Reports (holdername and report) with no initial submission.
        missing: usize,
        /// Reports of the day.
        total: usize,
    },
}

/// A period of unavailability as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// From (µs).
    pub from: i64,
    /// To (µs).
    pub to: i64,
    /// Planned with notice.
    pub scheduled: bool,
    /// Why.
    pub reason: String,
}

/// The reason given for downtime nobody announced: minutes without a heartbeat.
pub const UNPLANNED_REASON: &str = "unplanned outage";

pub use crate::day_start;

/// The UTC day of `micros`.
pub fn day_of(micros: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .date_naive()
}

/// `holdername`'s unavailability of `service` in `[from, to)`: the announced windows (clipped
/// to the day; scheduled unless announced as an emergency), then the minutes the endpoint was
/// not up (no heartbeat) outside any window, from `live_since` and up to two minutes before
/// `now` (the current minute's heartbeat may still be due), as unscheduled.
pub fn periods(
    facts: &DayFacts,
    holdername: Uuid,
    service: Service,
    (from, to): (i64, i64),
    live_since: Option<i64>,
    now: i64,
) -> Vec<Period> {
    const MINUTE: i64 = 60_000_000;
    let windows: Vec<(i64, i64, bool, String)> = facts
        .windows
        .iter()
        .map(|w| &w.window)
        .filter(|w| w.service.covers(service))
        .filter(|w| w.holdername.is_none_or(|h| h == holdername))
        .map(|w| {
            (
                w.starts_at.max(from),
                w.ends_at.min(to),
                !w.emergency,
                w.reason.clone(),
            )
        })
        .filter(|(a, b, ..)| a < b)
        .collect();
    let mut out: Vec<Period> = windows
        .iter()
        .map(|(a, b, scheduled, reason)| Period {
            from: *a,
            to: *b,
            scheduled: *scheduled,
            reason: reason.clone(),
        })
        .collect();
    if let Some(live) = live_since {
        let first = from.max(live).div_euclid(MINUTE) + i64::from(from.max(live) % MINUTE != 0);
        let last = to.min(now - 2 * MINUTE).div_euclid(MINUTE);
        let up: std::collections::HashSet<i64> = facts.up_minutes.iter().copied().collect();
        let mut gap: Option<(i64, i64)> = None;
        let mut gaps = Vec::new();
        for m in first..last {
            let (a, b) = (m * MINUTE, (m + 1) * MINUTE);
            let covered = windows.iter().any(|(wa, wb, ..)| *wa <= a && b <= *wb);
            if up.contains(&m) || covered {
                gaps.extend(gap.take());
            } else {
                gap = Some(gap.map_or((a, b), |(ga, _)| (ga, b)));
            }
        }
        gaps.extend(gap);
        out.extend(gaps.into_iter().map(|(a, b)| Period {
            from: a,
            to: b,
            scheduled: false,
            reason: UNPLANNED_REASON.into(),
        }));
    }
    out.sort_by_key(|p| (p.from, p.to));
    out
}

#[cfg(test)]
mod tests;
