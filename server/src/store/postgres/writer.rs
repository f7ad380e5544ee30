//! Group commit on PostgreSQL: find appends and audit records that arrive while a commit is in
//! flight ride the next one, which carries them all in one transaction (two statements) with
//! `synchronous_commit = on`. No waiter is answered before its commit has returned; if it fails,
//! every waiter in the batch gets the error and nothing in it was acknowledged.
//!
//! One Tokio task owns one connection. A broken connection is dropped and another taken from
//! the pool for the next batch.

use deadpool_postgres::{Object, Pool};
use tokio::sync::mpsc;

use super::{audit, finds};
use crate::audit::AuditRecord;
use crate::store::group_commit::{self, Batch, Running};
use crate::store::model::AppendOutcome;
use crate::store::{AppendError, StoreError};

/// A message to the writer: appends and audit records (every other write is its own
/// transaction on the pool).
pub(super) type Msg = group_commit::Msg<std::convert::Infallible>;

/// The writer's loop; returns when the channel closes, dropping `_running`.
pub(super) async fn run(
    pool: Pool,
    mut rx: mpsc::Receiver<Msg>,
    max_batch: usize,
    _running: Running,
) {
    let mut client: Option<Object> = None;
    let mut batch = Batch::new(max_batch);
    while let Some(first) = rx.recv().await {
        batch.fill(first, &mut rx);
        let started = std::time::Instant::now();
        let result = commit(&pool, &mut client, &mut batch).await;
        crate::metrics::journal_commit(started.elapsed(), batch.records());
        let committed = result.map_err(|e| {
            tracing::error!(error = %e, batch = batch.taken, "commit failed");
            if client.as_ref().is_some_and(|c| c.is_closed()) {
                client = None;
            }
            match e {
                StoreError::Unavailable(_) => AppendError::Overloaded,
                e => AppendError::Commit(e.to_string()),
            }
        });
        batch.finish(committed, &mut rx);
    }
}

/// One batch in one transaction.
async fn commit(
    pool: &Pool,
    client: &mut Option<Object>,
    batch: &mut Batch<std::convert::Infallible>,
) -> Result<Vec<AppendOutcome>, StoreError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let c = match client {
        Some(c) => c,
        None => client.insert(pool.get().await.map_err(super::pool_error)?),
    };
    let tx = c.transaction().await?;
    // The ACK leaves right after this commit: its audit records' response time is now.
    let acked_at = crate::now_micros();
    let outcomes = finds::insert(&tx, &batch.finds, acked_at).await?;
    batch.stamp_acks(acked_at, &outcomes);
    let audits: Vec<&AuditRecord> = batch.own_audits.iter().chain(&batch.audits).collect();
    audit::insert(&tx, &audits).await?;
    tx.commit().await?;
    Ok(outcomes)
}
