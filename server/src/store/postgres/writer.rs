//! Group commit on PostgreSQL: find appends and audit records that arrive while a commit is in
//! flight ride the next one, which carries them all in one transaction (two statements) with
//! `synchronous_commit = on`. No waiter is answered before its commit has returned; if it fails,
//! every waiter in the batch gets the error and nothing in it was acknowledged.
//!
//! One Tokio task owns one connection. After a failed commit the connection is dropped and
//! another taken from the pool for the next batch. While the database is down, every batch
//! fails at once with [`StoreError::Unavailable`] (its finds are answered `503`), logged at most
//! once a second.

use deadpool_postgres::{Object, Pool};
use tokio::sync::mpsc;

use deadpool_postgres::GenericClient;

use crate::model::AppendOutcome;
use crate::model::AuditRecord;
use crate::store::group_commit::{self, Batch, FailureLog, FindRow, Running};
use crate::store::{Result, StoreError};

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
    let mut failures = FailureLog::default();
    while let Some(first) = rx.recv().await {
        batch.fill(first, &mut rx);
        let started = std::time::Instant::now();
        let result = commit(&pool, &mut client, &mut batch).await;
        crate::metrics::journal_commit(started.elapsed(), batch.records());
        let committed = match result {
            Ok(outcomes) => {
                if !batch.is_empty() {
                    failures.committed();
                }
                Ok(outcomes)
            }
            Err(e) => {
                failures.failed(&e, batch.taken);
                // A connection that failed mid-batch is not trusted with the next one.
                client = None;
                Err(group_commit::append_error(&e))
            }
        };
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
    let outcomes = insert_finds(&tx, &batch.finds, acked_at).await?;
    batch.stamp_acks(acked_at, &outcomes);
    let audits: Vec<&AuditRecord> = batch.own_audits.iter().chain(&batch.audits).collect();
    insert_audits(&tx, &audits).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// Inserts a batch of finds ACKed at `acked_at` in one statement; per find, whether it was new
/// (the first request with an ID stands, across instances and within the batch). A no-match
/// find's row is there for its ID alone (`id_only`; its audit record is the find, schema V21).
/// Rows go in in request-ID order: two instances inserting the same IDs at once (a request
/// repeated on both) then wait on each other in one order, where batch order let each hold a row
/// the other needed, a deadlock PostgreSQL broke by failing one batch (every find in it
/// answered 500).
async fn insert_finds(
    c: &impl GenericClient,
    finds: &[FindRow],
    acked_at: i64,
) -> Result<Vec<AppendOutcome>> {
    if finds.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = finds.iter().map(|f| f.request_id.as_str()).collect();
    let received: Vec<i64> = finds.iter().map(|f| f.received_at).collect();
    let data: Vec<Option<&[u8]>> = finds.iter().map(|f| f.sealed.as_deref()).collect();
    let stmt = c
        .prepare_cached(
            "INSERT INTO find_requests
                 (request_id, received_at, acked_at, state, find_data, outcome, completed_at,
                  id_only)
             SELECT id, received, $3,
                    CASE WHEN data IS NULL THEN 'done' ELSE 'queued' END, data,
                    CASE WHEN data IS NULL THEN 'no-match' END,
                    CASE WHEN data IS NULL THEN $3::BIGINT END,
                    data IS NULL
               FROM unnest($1::TEXT[], $2::BIGINT[], $4::BYTEA[]) AS f (id, received, data)
              ORDER BY id
             ON CONFLICT (request_id) DO NOTHING
             RETURNING request_id",
        )
        .await?;
    let created = c.query(&stmt, &[&ids, &received, &acked_at, &data]).await?;
    let mut created: std::collections::HashSet<String> = created.iter().map(|r| r.get(0)).collect();
    Ok(finds
        .iter()
        .map(|f| {
            if created.remove(&f.request_id) {
                AppendOutcome::Created
            } else {
                AppendOutcome::Duplicate
            }
        })
        .collect())
}

/// Inserts audit records in one statement (inside the caller's transaction).
async fn insert_audits(c: &impl GenericClient, audit: &[&AuditRecord]) -> Result<()> {
    if audit.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&AuditRecord) -> &str| audit.iter().map(|a| f(a)).collect::<Vec<&str>>();
    let transaction_ids = col(|a| &a.transaction_id);
    let request_ids: Vec<Option<&str>> = audit.iter().map(|a| a.request_id.as_deref()).collect();
    let directions = col(|a| a.direction.as_str());
    let parties = col(|a| &a.party);
    let endpoints = col(|a| &a.endpoint);
    let received: Vec<i64> = audit.iter().map(|a| a.received_at).collect();
    let responded: Vec<i64> = audit.iter().map(|a| a.responded_at).collect();
    let status: Vec<i32> = audit.iter().map(|a| i32::from(a.status)).collect();
    let latency: Vec<i64> = audit.iter().map(|a| a.latency_micros()).collect();
    let outcomes = col(|a| &a.outcome);
    let stmt = c
        .prepare_cached(
            "INSERT INTO audit_log (transaction_id, request_id, direction, party, endpoint,
                 received_at, responded_at, status, latency_us, outcome)
             SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                 $6::BIGINT[], $7::BIGINT[], $8::INTEGER[], $9::BIGINT[], $10::TEXT[])",
        )
        .await?;
    c.execute(
        &stmt,
        &[
            &transaction_ids,
            &request_ids,
            &directions,
            &parties,
            &endpoints,
            &received,
            &responded,
            &status,
            &latency,
            &outcomes,
        ],
    )
    .await?;
    Ok(())
}
