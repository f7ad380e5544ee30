//! Failed find requests ([`Action::Service`](crate::console::roles::Action)): those that failed
//! after their ACK, newest first, and why (CoCo2.2.6).

use crate::console::page::Page;
use crate::console::respond::Resp;
use crate::console::ConsoleError;

/// The failed finds.
pub(crate) async fn failed(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let rows = p
        .console
        .store
        .failed()
        .await?
        .into_iter()
        .map(|f| vec![f.request_id, crate::datetimestamp(f.acked_at), f.reason])
        .collect();
    p.table(
        "/failed-finds",
        "Failed find requests",
        "Find requests that failed after their ACK, newest first (CoCo2.2.6).",
        &["Find request", "ACKed", "Why"],
        rows,
        "No find request has failed.",
        None,
    )
}
