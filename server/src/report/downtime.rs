//! Planned unavailability (CoCo2.2.1): "a minimum of 5 days' notice in advance of a scheduled
//! service unavailability", counted in UK working days with the view's calendar
//! ([`Calendar::working_days_between`]). A window with less notice is refused unless marked an
//! emergency; an emergency window is kept and reported as unscheduled (`unavail_scheduled:
//! false`). Either counts as downtime in the SLA report: the code of connection says planned
//! outages "nonetheless count towards the 0.5% downtime permissible".

use uuid::Uuid;

use crate::model::{NewUnavailability, Service};
use crate::store::Store;
use crate::view_data::working_days::{Calendar, Nation};

/// Working days of notice a scheduled window needs (CoCo2.2.1).
pub const NOTICE_WORKING_DAYS: u32 = 5;

/// Why a window was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DowntimeError {
    /// Less than 5 working days' notice and not marked as an emergency.
    #[error("only {working_days} working days' notice before the window starts; CoCo2.2.1 asks for {NOTICE_WORKING_DAYS} (mark it --emergency to report it as unscheduled)")]
    ShortNotice {
        /// Working days from the announcement to the start.
        working_days: u32,
    },
    /// `to` is not after `from`.
    #[error("--to must be after --from")]
    Order,
    /// The reason does not fit the reporting API (`^[a-zA-Z0-9_ .-]*$`, 1 to 255 characters).
    #[error(
        "--reason: 1 to 255 letters, digits, spaces, '_', '.' or '-' (the reporting API's pattern)"
    )]
    Reason,
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

/// Checks the notice rule at `now` and stores the window; returns its id.
pub async fn announce(
    store: &Store,
    calendar: &Calendar,
    nation: Nation,
    a: Announcement,
    now: i64,
) -> Result<i64, super::ReportError> {
    if a.to <= a.from {
        return Err(DowntimeError::Order.into());
    }
    if !crate::wire::report::reason_ok(&a.reason) {
        return Err(DowntimeError::Reason.into());
    }
    let working_days =
        calendar.working_days_between(nation, super::day_of(now), super::day_of(a.from));
    if working_days < NOTICE_WORKING_DAYS && !a.emergency {
        return Err(DowntimeError::ShortNotice { working_days }.into());
    }
    Ok(store
        .announce_unavailability(NewUnavailability {
            service: a.service,
            holdername: a.holdername,
            starts_at: a.from,
            ends_at: a.to,
            reason: a.reason,
            emergency: a.emergency,
            announced_at: now,
        })
        .await?)
}

/// The view's UK calendar (`view.calendar`), or bank holidays by rule when it cannot be read.
pub fn calendar(config: &crate::config::Config) -> Calendar {
    Calendar::load(&config.view.calendar).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "view.calendar unreadable; bank holidays by rule");
        let year = chrono::Datelike::year(&chrono::Utc::now().date_naive());
        Calendar::by_rule(year - 1, year + 5)
    })
}
