//! Value calculations due and overdue ([`Action::Service`](crate::console::roles::Action)):
//! the ones a view showed as pending, still open.

use crate::console::page::Page;
use crate::console::respond::Resp;
use crate::console::ConsoleError;

/// The open calculations.
pub(crate) async fn page(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let today = chrono::Utc::now().date_naive();
    let rows = p
        .console
        .store
        .calculations()
        .await?
        .into_iter()
        .filter(|c| c.completed_at.is_none())
        .map(|c| {
            let overdue = c.due_on < today;
            vec![
                c.pei,
                c.kind.as_str().to_owned(),
                c.due_on.to_string(),
                if overdue {
                    "OVERDUE".into()
                } else {
                    "due".into()
                },
            ]
        })
        .collect();
    p.table(
        "/calculations",
        "Value calculations due and overdue",
        "Values shown pending must be calculated within the working-day rule.",
        &["PeI", "Kind", "Due", "State"],
        rows,
        "No calculation is open.",
        None,
    )
}
