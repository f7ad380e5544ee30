//! The console's pages, one file per area; each handler takes a [`Page`] that has passed the
//! route's prologue (its roles allowed, a `POST`'s CSRF token checked), and audits what it
//! does before it answers.
//!
//! - [`matches`]: possible matches to review, resolve and reveal.
//! - [`peis`]: flagged PeIs, and de-registration.
//! - [`downtime`]: planned downtime, announced.
//! - [`testing`]: the load tool's recorded runs.
//! - [`calculations`], [`finds`], [`reports`]: value calculations, failed finds, PDP report
//!   submissions.
//! - [`sla`]: the month's service levels, per holdername, with a chart.
//! - [`certificates`]: certificate and key expiry.
//! - [`organisation`]: key contacts and PDP registration data.
//! - [`users`]: users and roles.
//! - [`audit`]: the audit trail's export.

pub(super) mod audit;
pub(super) mod calculations;
pub(super) mod certificates;
pub(super) mod downtime;
pub(super) mod finds;
pub(super) mod matches;
pub(super) mod organisation;
pub(super) mod peis;
pub(super) mod reports;
pub(super) mod sla;
pub(super) mod testing;
pub(super) mod users;

use minijinja::context;

use super::page::Page;
use super::respond::Resp;
use super::ConsoleError;

/// The overview: what the user's roles open (the navigation, described).
pub(super) async fn overview(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    p.render("overview.html", "/", context! {})
}

/// A day, `YYYY-MM-DD`, of µs since the epoch.
fn day(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The day something was confirmed to PDP, or that it was not.
fn when(micros: Option<i64>) -> String {
    micros.map(day).unwrap_or_else(|| "not confirmed".into())
}
