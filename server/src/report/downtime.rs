//! Planned unavailability (CoCo2.2.1): "a minimum of 5 days' notice in advance of a scheduled
//! service unavailability", counted in UK working days with the view's calendar
//! ([`Calendar::working_days_between`]). A window with less notice is refused unless marked an
//! emergency; an emergency window is kept and reported as unscheduled (`unavail_scheduled:
//! false`). Either counts as downtime in the SLA report: the code of connection says planned
//! outages "nonetheless count towards the 0.5% downtime permissible".
//!
//! Before a window is saved, [`effect`] says what it would do: the announced windows of the same
//! service it overlaps, and each month's planned downtime with it against the 0.5% allowed. A
//! window yet to start can be changed ([`change`], checked as a new one) or cancelled
//! ([`cancel`]); one that has started stands as announced.

use chrono::Datelike;
use uuid::Uuid;

use crate::model::{NewUnavailability, Service, Unavailability};
use crate::store::Store;
use crate::view_data::working_days::{Calendar, Nation};

/// Working days of notice a scheduled window needs (CoCo2.2.1).
pub const NOTICE_WORKING_DAYS: u32 = 5;

/// The share of a month a service must be available (CoCo2.1.5).
pub const MONTHLY_AVAILABILITY: f64 = 0.995;

/// Why a window was refused, or cannot be changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DowntimeError {
    /// Less than 5 working days' notice and not marked as an emergency.
    #[error("only {working_days} working days' notice before the window starts; CoCo2.2.1 asks for {NOTICE_WORKING_DAYS}: mark it an emergency to report it to PDP as unscheduled")]
    ShortNotice {
        /// Working days from the announcement to the start.
        working_days: u32,
    },
    /// `to` is not after `from`.
    #[error("the window must end after it starts")]
    Order,
    /// The reason does not fit the reporting API (`^[a-zA-Z0-9_ .-]*$`, 1 to 255 characters).
    #[error(
        "reason: 1 to 255 letters, digits, spaces, '_', '.' or '-' (the reporting API's pattern)"
    )]
    Reason,
    /// The holdername is not one of this connection's schemes.
    #[error("holdername {0}: not a scheme of this connection")]
    UnknownHoldername(Uuid),
    /// The window has started, or is no more: it stands as announced.
    #[error("window {0} has started or does not exist: only a window yet to start can be changed or cancelled")]
    Started(i64),
}

/// A window as an operator announces it.
#[derive(Debug, Clone)]
pub struct Announcement {
    /// Find, view or both.
    pub service: Service,
    /// One scheme, or all.
    pub holdername: Option<Uuid>,
    /// From (µs).
    pub from: i64,
    /// To (µs).
    pub to: i64,
    /// Why, as reported.
    pub reason: String,
    /// Short notice accepted: reported as unscheduled.
    pub emergency: bool,
}

/// Checks a window at `now`: it ends after it starts, its reason fits the reporting API, and it
/// gives the notice CoCo2.2.1 asks for unless it is an emergency.
pub fn check(
    calendar: &Calendar,
    nation: Nation,
    a: &Announcement,
    now: i64,
) -> Result<(), DowntimeError> {
    if a.to <= a.from {
        return Err(DowntimeError::Order);
    }
    if !crate::wire::report::reason_ok(&a.reason) {
        return Err(DowntimeError::Reason);
    }
    let working_days =
        calendar.working_days_between(nation, super::day_of(now), super::day_of(a.from));
    if working_days < NOTICE_WORKING_DAYS && !a.emergency {
        return Err(DowntimeError::ShortNotice { working_days });
    }
    Ok(())
}

/// Checks the notice rule at `now` ([`check`]) and stores the window; returns its id.
pub async fn announce(
    store: &Store,
    calendar: &Calendar,
    nation: Nation,
    a: Announcement,
    now: i64,
) -> Result<i64, super::ReportError> {
    check(calendar, nation, &a, now)?;
    Ok(store.announce_unavailability(stored(a, now)).await?)
}

/// Replaces window `id`, which must not have started, with `a` (checked as a new one).
pub async fn change(
    store: &Store,
    calendar: &Calendar,
    nation: Nation,
    id: i64,
    a: Announcement,
    now: i64,
) -> Result<(), super::ReportError> {
    check(calendar, nation, &a, now)?;
    if store.change_unavailability(id, stored(a, now), now).await? {
        Ok(())
    } else {
        Err(DowntimeError::Started(id).into())
    }
}

/// Cancels window `id`, which must not have started.
pub async fn cancel(store: &Store, id: i64, now: i64) -> Result<(), super::ReportError> {
    if store.cancel_unavailability(id, now).await? {
        Ok(())
    } else {
        Err(DowntimeError::Started(id).into())
    }
}

fn stored(a: Announcement, now: i64) -> NewUnavailability {
    NewUnavailability {
        service: a.service,
        holdername: a.holdername,
        starts_at: a.from,
        ends_at: a.to,
        reason: a.reason,
        emergency: a.emergency,
        announced_at: now,
    }
}

/// What a window would do, before it is saved: the announced windows of the same service it
/// overlaps, and each month it falls in with its planned downtime against the 0.5% allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    /// Announced windows of the same service (find, view, or both) that overlap it.
    pub overlaps: Vec<Unavailability>,
    /// Each month it falls in.
    pub months: Vec<MonthEffect>,
}

/// A month's planned downtime with the window.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthEffect {
    /// The month's first day.
    pub month: chrono::NaiveDate,
    /// Minutes of planned downtime already announced in the month (overlaps counted once).
    pub minutes_before: i64,
    /// Minutes with the window too.
    pub minutes_with: i64,
    /// Minutes the month allows down (0.5% of it).
    pub minutes_allowed: i64,
    /// Availability at most with the window (planned downtime alone counted).
    pub availability_at_most: f64,
}

impl MonthEffect {
    /// Whether planned downtime alone takes the month below 99.5%.
    pub fn breaches(&self) -> bool {
        self.availability_at_most < MONTHLY_AVAILABILITY
    }
}

/// What `a` would do ([`Effect`]) beside the windows announced; `except`: the window it replaces.
pub async fn effect(
    store: &Store,
    a: &Announcement,
    except: Option<i64>,
) -> Result<Effect, super::ReportError> {
    let months = months_of(a.from, a.to);
    let (first, last) = (months[0], months[months.len() - 1]);
    let span = (super::day_start(first), super::day_start(next_month(last)));
    let same_service =
        |s: Service| s == Service::Both || a.service == Service::Both || s == a.service;
    let others: Vec<Unavailability> = store
        .unavailability(span.0, span.1)
        .await?
        .into_iter()
        .filter(|u| Some(u.id) != except && same_service(u.window.service))
        .collect();
    let overlaps = others
        .iter()
        .filter(|u| u.window.starts_at < a.to && a.from < u.window.ends_at)
        .cloned()
        .collect();
    let windows: Vec<(i64, i64)> = others
        .iter()
        .map(|u| (u.window.starts_at, u.window.ends_at))
        .collect();
    let mut with = windows.clone();
    with.push((a.from, a.to));
    let months = months
        .into_iter()
        .map(|m| {
            let (from, to) = (super::day_start(m), super::day_start(next_month(m)));
            let month_minutes = (to - from) / 60_000_000;
            let minutes_with = minutes_within(&with, from, to);
            MonthEffect {
                month: m,
                minutes_before: minutes_within(&windows, from, to),
                minutes_with,
                minutes_allowed: month_minutes * 5 / 1000,
                availability_at_most: 1.0 - minutes_with as f64 / month_minutes as f64,
            }
        })
        .collect();
    Ok(Effect { overlaps, months })
}

/// The first days of the months `[from, to)` (µs) falls in.
fn months_of(from: i64, to: i64) -> Vec<chrono::NaiveDate> {
    let first = |d: chrono::NaiveDate| d.with_day(1).unwrap_or(d);
    let mut m = first(super::day_of(from));
    let end = super::day_of((to - 1).max(from));
    let mut out = vec![m];
    while next_month(m) <= end {
        m = next_month(m);
        out.push(m);
    }
    out
}

fn next_month(m: chrono::NaiveDate) -> chrono::NaiveDate {
    m.checked_add_months(chrono::Months::new(1)).unwrap_or(m)
}

/// Minutes of `[from, to)` (µs) that any of `windows` covers, each minute once.
fn minutes_within(windows: &[(i64, i64)], from: i64, to: i64) -> i64 {
    let mut w: Vec<(i64, i64)> = windows
        .iter()
        .map(|&(s, e)| (s.max(from), e.min(to)))
        .filter(|(s, e)| s < e)
        .collect();
    w.sort_unstable();
    let (mut total, mut reach) = (0, i64::MIN);
    for (s, e) in w {
        let s = s.max(reach);
        if e > s {
            total += e - s;
        }
        reach = reach.max(e);
    }
    total / 60_000_000
}

/// The view's UK calendar (`view.calendar`), or bank holidays by rule when it cannot be read.
pub fn calendar(config: &crate::config::Config) -> Calendar {
    Calendar::load(&config.view.calendar).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "view.calendar unreadable; bank holidays by rule");
        let year = chrono::Utc::now().date_naive().year();
        Calendar::by_rule(year - 1, year + 5)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    #[test]
    fn downtime_is_counted_once_per_minute_within_each_month() {
        // Two overlapping windows and one apart: 90 + 30 minutes, the overlap once.
        let w = [(0, 60 * MIN), (30 * MIN, 90 * MIN), (200 * MIN, 230 * MIN)];
        assert_eq!(minutes_within(&w, 0, 1_000 * MIN), 120);
        // Cut at the period's edges.
        assert_eq!(minutes_within(&w, 45 * MIN, 210 * MIN), 45 + 10);
        let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let at = |d: chrono::NaiveDate| super::super::day_start(d);
        assert_eq!(
            months_of(at(day(2026, 12, 30)), at(day(2027, 2, 2))),
            [day(2026, 12, 1), day(2027, 1, 1), day(2027, 2, 1)]
        );
        // Ending at midnight of the 1st: not in that month.
        assert_eq!(
            months_of(at(day(2026, 11, 30)), at(day(2026, 12, 1))),
            [day(2026, 11, 1)]
        );
    }
}
