//! Group commit on PostgreSQL: find appends and audit records that arrive while a commit is in
//! flight ride the next one, which carries them all in one transaction (two statements) with
//! `synchronous_commit = on`. No waiter is answered before its commit has returned; if it fails,
//! every waiter in the batch gets the error and nothing in it was acknowledged.
//!
//! One Tokio task owns one connection. A broken connection is dropped and another taken from
//! the pool for the next batch.

use deadpool_postgres::{Object, Pool};
use tokio::sync::{mpsc, oneshot};

use super::{audit, finds};
use crate::audit::AuditRecord;
use crate::store::backend::FindRow;
use crate::store::model::AppendOutcome;
use crate::store::{AppendError, StoreError};

/// A message to the writer.
pub(super) enum Msg {
    /// A find request at its ACK, with its audit record.
    Append {
        find: FindRow,
        audit: AuditRecord,
        reply: oneshot::Sender<Result<AppendOutcome, AppendError>>,
    },
    /// An audit record no one waits for.
    Audit(AuditRecord),
    /// Answered once everything before it is committed.
    Flush(oneshot::Sender<()>),
    /// Commit what is queued, then stop taking messages.
    Close,
}

/// The writer's loop; returns when the channel closes.
pub(super) async fn run(pool: Pool, mut rx: mpsc::Receiver<Msg>, max_batch: usize) {
    let mut client: Option<Object> = None;
    let mut finds = Vec::with_capacity(max_batch);
    let mut own_audits = Vec::with_capacity(max_batch);
    let mut audits = Vec::with_capacity(max_batch);
    let mut replies = Vec::with_capacity(max_batch);
    let mut flushes = Vec::new();
    let mut closing = false;
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(msg) = next.take() {
            taken += 1;
            match msg {
                Msg::Append { find, audit, reply } => {
                    finds.push(find);
                    own_audits.push(audit);
                    replies.push(reply);
                }
                Msg::Audit(a) => audits.push(a),
                Msg::Flush(done) => flushes.push(done),
                Msg::Close => closing = true,
            }
            if taken < max_batch && !closing {
                next = rx.try_recv().ok();
            }
        }
        let started = std::time::Instant::now();
        let result = commit(&pool, &mut client, &finds, &mut own_audits, &audits).await;
        crate::metrics::journal_commit(
            started.elapsed(),
            finds.len() + own_audits.len() + audits.len(),
        );
        match result {
            Ok(outcomes) => {
                for (reply, outcome) in replies.drain(..).zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = taken, "commit failed");
                if client.as_ref().is_some_and(|c| c.is_closed()) {
                    client = None;
                }
                let overloaded = matches!(e, StoreError::PostgresPool(_));
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(if overloaded {
                        AppendError::Overloaded
                    } else {
                        AppendError::Commit(e.to_string())
                    }));
                }
            }
        }
        finds.clear();
        own_audits.clear();
        audits.clear();
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
        if closing {
            rx.close();
            closing = false;
        }
    }
}

/// One batch in one transaction.
async fn commit(
    pool: &Pool,
    client: &mut Option<Object>,
    finds: &[FindRow],
    own_audits: &mut [AuditRecord],
    audits: &[AuditRecord],
) -> Result<Vec<AppendOutcome>, StoreError> {
    if finds.is_empty() && audits.is_empty() {
        return Ok(Vec::new());
    }
    let c = match client {
        Some(c) => c,
        None => client.insert(pool.get().await.map_err(super::pool_error)?),
    };
    let tx = c.transaction().await?;
    // The ACK leaves right after this commit: its audit records' response time is now.
    let acked_at = crate::now_micros();
    let outcomes = finds::insert(&tx, finds, acked_at).await?;
    for (a, o) in own_audits.iter_mut().zip(&outcomes) {
        a.responded_at = acked_at;
        if *o == AppendOutcome::Duplicate {
            a.outcome = "duplicate".into();
        }
    }
    audit::insert(&tx, own_audits).await?;
    audit::insert(&tx, audits).await?;
    tx.commit().await?;
    Ok(outcomes)
}
