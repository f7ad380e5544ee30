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
//! - [`schemes`]: each holdername with its scheme's name, state and counts; suspend, resume,
//!   sever.
//! - `overview`: what needs doing, counted, each linked to its page.

pub(super) mod audit;
pub(super) mod calculations;
pub(super) mod certificates;
pub(super) mod downtime;
pub(super) mod finds;
pub(super) mod matches;
pub(super) mod organisation;
mod overview;
pub(super) mod peis;
pub(super) mod reports;
pub(super) mod schemes;
pub(super) mod sla;
pub(super) mod testing;
pub(super) mod users;

use std::collections::HashMap;

use minijinja::context;
use uuid::Uuid;

use super::page::Page;
use super::respond::Resp;
use super::ConsoleError;

/// The overview: what needs doing, each with a count and a link, of the pages the user's roles
/// open; then everything they open.
pub(super) async fn overview(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let todo = overview::to_do(p).await?;
    let names = scheme_names(p).await?;
    let my_schemes: Vec<String> =
        p.me.user
            .holdernames
            .iter()
            .map(|h| named(&names, *h))
            .collect();
    p.render("overview.html", "/", context! { todo, my_schemes })
}

/// `name (GUID)` for a holdername: its scheme's name beside it, when the store knows one.
fn named(names: &HashMap<Uuid, String>, holdername: Uuid) -> String {
    match names.get(&holdername).filter(|n| !n.is_empty()) {
        Some(n) => format!("{n} ({holdername})"),
        None => holdername.to_string(),
    }
}

/// Each holdername's scheme name, as the store knows it.
async fn scheme_names(p: &Page<'_>) -> Result<HashMap<Uuid, String>, ConsoleError> {
    Ok(p.console.store.scheme_names().await?.into_iter().collect())
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
