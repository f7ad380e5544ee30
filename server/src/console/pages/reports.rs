//! PDP report submissions ([`Action::Service`](crate::console::roles::Action)): every daily
//! submission and its state.

use crate::console::page::Page;
use crate::console::respond::Resp;
use crate::console::ConsoleError;

/// The submissions.
pub(crate) async fn page(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let rows = p
        .console
        .store
        .submissions(None)
        .await?
        .into_iter()
        .map(|s| {
            vec![
                s.key.day.to_string(),
                s.key.holdername.to_string(),
                format!("{:?}", s.key.kind),
                format!("{:?}", s.state),
            ]
        })
        .collect();
    p.table(
        "/reports",
        "PDP report submissions",
        "Every daily submission and its state.",
        &["Day", "Holdername", "Report", "State"],
        rows,
        "Nothing submitted yet.",
        None,
    )
}
