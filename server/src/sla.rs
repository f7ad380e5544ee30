//! `sla report --month YYYY-MM`: the code of connection's service levels, from the audit trail.
//!
//! - ACK (CoCo2.1.1): inbound `POST /find-requests` answered `202`: 99.9% under 2 s (target
//!   250 ms).
//! - Completion (CoCo2.1.2): ACK to last PeI registered, for matches: all under 60 s (target
//!   15 s); failed finds are misses.
//! - View (CoCo2.1.3): inbound `GET /view-data`: 99.9% under 10 s (target 2 s). A view counts
//!   once, by the answer that ended it; its `401` UMA challenge is the first half of the same
//!   view, not a second view, and is left out.
//! - Availability (CoCo2.1.5): minutes the endpoint was up and ready, of the month's whole minutes
//!   since the connection went live: 99.5%. Live means `sla.go_live` (a day, from 00:00 UTC)
//!   when configured, or else the first heartbeat the store holds; a month before that has
//!   nothing to count.
//!
//! The month is added up from hourly tallies kept as hours close ([`tally_closed_hours`], run
//! by upkeep), and the samples of the hours not tallied yet ([`window_tally`]). Whether each
//! standard is met is exact (counts within the limit); each percentile is the nearest-rank
//! sample's histogram bucket at three significant figures: at most 0.1% above the sample
//! ([`tally`]).

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::coco::{self, percentile, Level};
use crate::config::GoLive;
use crate::store::{Store, StoreError, HOUR};
pub use tally::{Levels, SchemeTally, Tally, TallyError};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SlaError {
    /// The month is not `YYYY-MM`.
    #[error("--month: expected YYYY-MM")]
    Month,
    /// Reading the store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored hour's tally.
    #[error(transparent)]
    Tally(#[from] TallyError),
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

/// Availability of the month so far, since go-live.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Availability {
    /// Where counting starts (RFC 3339): go-live or the month's start, whichever is later;
    /// `None` when the connection was not live in the month.
    pub counted_from: Option<String>,
    /// Minutes up and ready.
    pub minutes_up: u64,
    /// Whole minutes of the month elapsed since `counted_from`.
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
    /// Each holdername's completion and views in the month (CoCo2.1.2 and CoCo2.1.3 per
    /// scheme).
    pub by_holdername: BTreeMap<uuid::Uuid, SchemeLevels>,
    /// Unavailability announced for the month (`report downtime`): scheduled with 5 working
    /// days' notice, or not (an emergency). Both count as downtime in availability: planned
    /// outages "nonetheless count towards the 0.5% downtime permissible" (CoCo2.2.1).
    pub announced_downtime: Vec<AnnouncedDowntime>,
}

/// One holdername's service levels in a month; `None` where it had nothing to count.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SchemeLevels {
    /// Its matching finds' completion: ACK to its PeIs registered.
    pub completion: Option<Series>,
    /// Its views served.
    pub view: Option<Series>,
}

/// An announced window, as the SLA report lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AnnouncedDowntime {
    /// From (RFC 3339).
    pub from: String,
    /// To (RFC 3339).
    pub to: String,
    /// `find`, `view` or `both`.
    pub service: &'static str,
    /// One scheme, or all (`None`).
    pub holdername: Option<uuid::Uuid>,
    /// With notice (true) or an emergency.
    pub scheduled: bool,
    /// Why.
    pub reason: String,
    /// Minutes of it inside the month.
    pub minutes: i64,
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
    let micros = crate::day_start;
    Ok((micros(start), micros(next)))
}

/// A series from latencies in µs, judged against `level`.
pub fn series(mut v: Vec<i64>, level: Level) -> Series {
    let (target_s, limit_s, required) = (
        level.target.as_secs_f64(),
        level.limit.as_secs_f64(),
        level.required,
    );
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
        p50_ms: ms(percentile(&v, 50.0)),
        p99_ms: ms(percentile(&v, 99.0)),
        p999_ms: ms(percentile(&v, 99.9)),
        max_ms: ms(v.last().copied().unwrap_or(0)),
        target_s,
        limit_s,
        within_target: share(target_s),
        within_limit,
        required,
        met: within_limit >= required,
    }
}

/// When the connection went live (µs): the go-live day when configured, or else the first
/// heartbeat the store holds; `None` when neither is known.
pub async fn live_since(store: &Store, go_live: Option<GoLive>) -> Result<Option<i64>, SlaError> {
    Ok(match go_live {
        Some(day) => Some(day.start_micros()),
        None => store.first_heartbeat().await?,
    })
}

/// The span of `[from, to)` (µs) that availability counts as of `now`: from go-live (`live`)
/// or `from`, whichever is later, to `now` or `to`, whichever is earlier. `None` when the
/// connection was not live in it.
pub fn availability_window(from: i64, to: i64, live: Option<i64>, now: i64) -> Option<(i64, i64)> {
    let start = from.max(live?);
    let end = now.min(to);
    (start < end).then_some((start, end))
}

// === impl Availability ===

impl Availability {
    /// `minutes_up` heartbeats in `window` (see [`availability_window`]).
    pub fn of(minutes_up: u64, window: Option<(i64, i64)>) -> Self {
        let Some((start, end)) = window else {
            return Self {
                counted_from: None,
                minutes_up: 0,
                minutes_elapsed: 0,
                ratio: 1.0,
                met: true,
            };
        };
        let elapsed = ((end - start) / 60_000_000) as u64;
        let ratio = if elapsed == 0 {
            1.0
        } else {
            (minutes_up as f64 / elapsed as f64).min(1.0)
        };
        Self {
            counted_from: Some(crate::datetimestamp(start)),
            minutes_up,
            minutes_elapsed: elapsed,
            ratio,
            met: ratio >= coco::AVAILABILITY_REQUIRED,
        }
    }
}

/// Availability in `[from, to)` (µs) as of `now`, from the store's heartbeats.
async fn availability(
    store: &Store,
    (from, to): (i64, i64),
    now: i64,
    go_live: Option<GoLive>,
) -> Result<Availability, SlaError> {
    let window = availability_window(from, to, live_since(store, go_live).await?, now);
    let up = match window {
        // Whole minutes only: the minute of `end` has not finished.
        Some((start, end)) => store.minutes_up(start, end).await?,
        None => 0,
    };
    Ok(Availability::of(up, window))
}

/// Builds the report for `month` as of `now` (µs) from the store; availability counts from
/// `go_live`, or else from the first heartbeat.
pub async fn report(
    store: &Store,
    month: &str,
    now: i64,
    go_live: Option<GoLive>,
) -> Result<SlaReport, SlaError> {
    let (from, to) = month_bounds(month)?;
    let tally = window_tally(store, from, to).await?;
    let availability = availability(store, (from, to), now, go_live).await?;
    let mut report = report_from(tally, month, availability)?;
    report.announced_downtime = store
        .unavailability(from, to)
        .await?
        .into_iter()
        .map(|u| {
            let w = u.window;
            AnnouncedDowntime {
                from: crate::datetimestamp(w.starts_at),
                to: crate::datetimestamp(w.ends_at),
                service: w.service.as_str(),
                holdername: w.holdername,
                scheduled: !w.emergency,
                reason: w.reason,
                minutes: (w.ends_at.min(to) - w.starts_at.max(from)) / 60_000_000,
            }
        })
        .collect();
    Ok(report)
}

/// Builds the report for `month` from its tally and its availability.
pub fn report_from(
    t: Tally,
    month: &str,
    availability: Availability,
) -> Result<SlaReport, SlaError> {
    month_bounds(month)?;
    let mut completion = t.completion.series(coco::COMPLETION);
    completion.met &= t.failed == 0;
    Ok(SlaReport {
        month: month.to_owned(),
        ack: t.ack.series(coco::ACK),
        completion,
        failed_finds: t.failed,
        view: t.view.series(coco::VIEW),
        availability,
        counts: t.counts,
        by_holdername: t
            .by_holdername
            .iter()
            .map(|(h, s)| {
                let series = |l: &Levels, level| (l.count() > 0).then(|| l.series(level));
                let levels = SchemeLevels {
                    completion: series(&s.completion, coco::COMPLETION),
                    view: series(&s.view, coco::VIEW),
                };
                (*h, levels)
            })
            .collect(),
        announced_downtime: Vec::new(),
    })
}

/// The tally of `[from, to)` (µs): the stored tallies of the hours in it already tallied, and
/// the samples of the rest (the hours since the last tallied, and any part-hour at its ends).
pub async fn window_tally(store: &Store, from: i64, to: i64) -> Result<Tally, SlaError> {
    let next = store.sla_next_hour().await?.unwrap_or(i64::MIN);
    // Whole hours inside the window and before `next`.
    let first = from.div_euclid(HOUR) + i64::from(from.rem_euclid(HOUR) != 0);
    let last = to.div_euclid(HOUR).min(next);
    let mut tally = Tally::default();
    if first >= last {
        tally.add(&Tally::of(&store.sla_samples(from, to).await?));
        return Ok(tally);
    }
    for (_, bytes) in store.sla_hours(first, last).await? {
        tally.add_stored(&bytes)?;
    }
    for (a, b) in [(from, first * HOUR), (last * HOUR, to)] {
        if a < b {
            tally.add(&Tally::of(&store.sla_samples(a, b).await?));
        }
    }
    Ok(tally)
}

/// How long after an hour ends its tally waits: the audit records of the calls answered in it
/// are written by then.
const SETTLE_AFTER: i64 = 10 * 60 * 1_000_000;

/// Hours a call of [`tally_closed_hours`] tallies at most.
const HOURS_A_CALL: u32 = 24 * 31;

/// Tallies the hours that have closed since the last tallied, oldest first, up to a month of
/// them a call: an hour closes once [`SETTLE_AFTER`] has passed since its end and no find ACKed
/// in it or before is still open. Hours that held nothing are skipped. Several instances may
/// call it at once: each hour is tallied by one. Returns the hours tallied.
pub async fn tally_closed_hours(store: &Store, now: i64) -> Result<u32, SlaError> {
    let open = store.oldest_open_find().await?;
    let mut closed = (now - SETTLE_AFTER).div_euclid(HOUR);
    if let Some(acked) = open {
        closed = closed.min(acked.div_euclid(HOUR));
    }
    let mut hour = match store.sla_next_hour().await? {
        Some(h) => h,
        None => match store.next_activity(i64::MIN).await? {
            Some(t) => t.div_euclid(HOUR),
            None => return Ok(0),
        },
    };
    let mut done = 0;
    while hour < closed && done < HOURS_A_CALL {
        let samples = store.sla_samples(hour * HOUR, (hour + 1) * HOUR).await?;
        let tally = Tally::of(&samples);
        // An hour that held nothing: on to the next that held anything.
        let next = if tally.is_empty() {
            match store.next_activity((hour + 1) * HOUR).await? {
                Some(t) => t.div_euclid(HOUR).clamp(hour + 1, closed),
                None => closed,
            }
        } else {
            hour + 1
        };
        let stored = (!tally.is_empty()).then(|| tally.encode());
        if !store.put_sla_hour(hour, next, stored).await? {
            break;
        }
        hour = next;
        done += 1;
    }
    Ok(done)
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
        let a = &self.availability;
        match &a.counted_from {
            Some(since) => out.push_str(&format!(
                "{:<22} {:>9} of {} minutes up since {since}: {:.3}% (99.5% required)  {}\n",
                "CoCo2.1.5 availability",
                a.minutes_up,
                a.minutes_elapsed,
                a.ratio * 100.0,
                if a.met { "yes" } else { "NO" }
            )),
            None => out.push_str(&format!(
                "{:<22} not live this month (sla.go_live, or no heartbeat yet)\n",
                "CoCo2.1.5 availability",
            )),
        }
        for w in &self.announced_downtime {
            out.push_str(&format!(
                "announced downtime: {} to {} ({} min) {} {} {}: {}\n",
                w.from,
                w.to,
                w.minutes,
                w.service,
                w.holdername
                    .map_or_else(|| "all schemes".to_owned(), |h| h.to_string()),
                if w.scheduled {
                    "scheduled"
                } else {
                    "unscheduled"
                },
                w.reason
            ));
        }
        for (h, l) in &self.by_holdername {
            for (name, s) in [("completion", &l.completion), ("view", &l.view)] {
                let Some(s) = s else { continue };
                out.push_str(&format!(
                    "holdername {h} {name}: {} samples, p99.9 {:.1} ms, {:.3}% within limit  {}\n",
                    s.count,
                    s.p999_ms,
                    s.within_limit * 100.0,
                    if s.met { "yes" } else { "NO" }
                ));
            }
        }
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

/// Availability of the calendar month containing `now` (UTC), so far, since go-live.
pub async fn availability_this_month(
    store: &Store,
    now: i64,
    go_live: Option<GoLive>,
) -> Result<Availability, SlaError> {
    let d = chrono::DateTime::from_timestamp_micros(now).unwrap_or_default();
    let month = format!("{:04}-{:02}", d.year(), d.month());
    availability(store, month_bounds(&month)?, now, go_live).await
}

mod tally;

#[cfg(test)]
mod tests;
