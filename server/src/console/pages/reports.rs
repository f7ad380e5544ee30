//! PDP report submissions ([`Action::Service`](crate::console::roles::Action)): every daily
//! submission, its scheme by name, the report in PDP's words (and the reporting API's path), how
//! it was sent and its state.

use crate::console::page::Page;
use crate::console::respond::Resp;
use crate::console::ConsoleError;
use crate::model::{ReportKind, StoredSubmission, SubmissionState};

/// A report kind as PDP's reporting guidance names it.
pub(super) fn kind_words(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::RequestNumber => "View requests received",
        ReportKind::ResponseTime => "View responses later than 10 seconds",
        ReportKind::Calculations => "Value calculations completed",
        ReportKind::Unavailable => "View data unavailable or flagged",
        ReportKind::FindAvailability => "Find service availability",
        ReportKind::ViewAvailability => "View service availability",
    }
}

/// A submission's state, as an operator reads it.
pub(super) fn state_words(s: &StoredSubmission) -> &'static str {
    match s.state {
        SubmissionState::Sending => "not yet accepted (sending)",
        SubmissionState::Accepted => "accepted",
        SubmissionState::Refused => "REFUSED by PDP",
    }
}

/// The submissions.
pub(crate) async fn page(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let names = super::scheme_names(p).await?;
    let rows = p
        .console
        .store
        .submissions(None)
        .await?
        .into_iter()
        .map(|s| {
            vec![
                s.key.day.to_string(),
                super::named(&names, s.key.holdername),
                format!("{} ({})", kind_words(s.key.kind), s.key.kind.as_str()),
                s.status.as_str().to_owned(),
                state_words(&s).to_owned(),
            ]
        })
        .collect();
    p.table(
        "/reports",
        "PDP report submissions",
        "Every daily submission and its state. A late or refused one is also counted on the overview.",
        &["Day", "Scheme (holdername)", "Report", "Sent", "State"],
        rows,
        "Nothing submitted yet.",
        None,
    )
}
