//! The overview's list of what needs doing, each with a count and a link to the page that does
//! it, for the pages the user's roles open: possible matches due within 5 days, overdue value
//! calculations, failed finds of the last 7 days, certificates and keys expiring within 30 days
//! (with dates), late or refused PDP reports, and missing required contacts (CoCo3.1.1).

use minijinja::{context, Value};

use super::certificates;
use crate::console::page::Page;
use crate::console::roles::{self, Action};
use crate::console::ConsoleError;
use crate::model::{SubmissionState, SubmissionStatus};
use crate::store::console::Role;

/// A possible match is "due" this many days before its review window ends.
const DUE_DAYS: i64 = 5;

/// Failed finds are counted over this many days.
const FAILED_DAYS: i64 = 7;

const DAY: i64 = 86_400_000_000;

/// One thing to do: its id (for the page and tests), what it is, how many, where to do it, and
/// details (dates, names).
fn item(id: &str, what: &str, count: usize, href: &str, details: Vec<String>) -> Value {
    context! { id, what, count, href, details }
}

/// What needs doing, for the pages `p`'s user may open.
pub(super) async fn to_do(p: &Page<'_>) -> Result<Vec<Value>, ConsoleError> {
    let me = &p.me.user;
    let mut out = Vec::new();
    if roles::may(me, Action::ReviewMatches) {
        out.push(matches_due(p).await?);
    }
    if roles::may(me, Action::Service) {
        out.extend(service(p).await?);
    }
    if roles::may(me, Action::Certificates) {
        let due: Vec<String> = certificates::expiries(&p.console.config)
            .await
            .into_iter()
            .filter(certificates::Expiry::due)
            .map(|e| format!("{}: {}", e.name, e.date()))
            .collect();
        out.push(item(
            "expiring",
            "Certificates and keys expiring within 30 days",
            due.len(),
            "/certificates",
            due,
        ));
    }
    out.push(contacts(p).await?);
    Ok(out)
}

/// Possible matches whose review window ends within [`DUE_DAYS`].
async fn matches_due(p: &Page<'_>) -> Result<Value, ConsoleError> {
    let days = i64::from(p.console.config.matching.possible_review_days);
    let cutoff = crate::now_micros() - (days - DUE_DAYS) * DAY;
    let due = p
        .console
        .store
        .possible_unreviewed_before(cutoff)
        .await?
        .into_iter()
        .filter(|x| roles::sees_holdername(&p.me.user, x.matched.holdername))
        .count();
    Ok(item(
        "matches-due",
        "Possible matches due for review within 5 days",
        due,
        "/possible-matches",
        Vec::new(),
    ))
}

/// A service manager's: overdue calculations, failed finds, late or refused reports.
async fn service(p: &Page<'_>) -> Result<Vec<Value>, ConsoleError> {
    let store = &p.console.store;
    let today = chrono::Utc::now().date_naive();
    let overdue = store
        .calculations()
        .await?
        .into_iter()
        .filter(|c| c.completed_at.is_none() && c.due_on < today)
        .count();
    let since = crate::now_micros() - FAILED_DAYS * DAY;
    let failed = store
        .failed()
        .await?
        .into_iter()
        .filter(|f| f.completed_at >= since)
        .count();
    let stuck = crate::now_micros() - DAY;
    let reports: Vec<String> = store
        .submissions(None)
        .await?
        .into_iter()
        .filter(|s| {
            s.state == SubmissionState::Refused
                || s.status == SubmissionStatus::Late
                || (s.state == SubmissionState::Sending && s.claimed_at < stuck)
        })
        .map(|s| {
            format!(
                "{} {}: {}",
                s.key.day,
                super::reports::kind_words(s.key.kind),
                super::reports::state_words(&s)
            )
        })
        .collect();
    Ok(vec![
        item(
            "overdue-calculations",
            "Value calculations overdue",
            overdue,
            "/calculations",
            Vec::new(),
        ),
        item(
            "failed-finds",
            "Find requests failed in the last 7 days",
            failed,
            "/failed-finds",
            Vec::new(),
        ),
        item(
            "late-reports",
            "PDP reports late, refused or not yet accepted",
            reports.len(),
            "/reports",
            reports,
        ),
    ])
}

/// The required contacts (a primary business contact and a primary technical contact, CoCo3.1.1)
/// with no active holder.
async fn contacts(p: &Page<'_>) -> Result<Value, ConsoleError> {
    let users = p.console.store.console_users().await?;
    let missing: Vec<String> = [Role::Pbc, Role::Ptc]
        .into_iter()
        .filter(|r| !users.iter().any(|u| u.has(*r) && !u.suspended))
        .map(|r| r.title().to_owned())
        .collect();
    Ok(item(
        "missing-contacts",
        "Required key contacts missing",
        missing.len(),
        "/organisation",
        missing,
    ))
}
