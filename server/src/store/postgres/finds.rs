//! The find queue in PostgreSQL's SQL (see the SQLite backend's `finds.rs` for the life of a row).
//!
//! Claims lock the rows they take with `FOR UPDATE SKIP LOCKED`: instances claiming at once take
//! different finds, and none waits on another's claim.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::super::model::{AppendOutcome, FailedFind, StoredFind};
use super::super::StoreError;
use crate::store::backend::{ClaimedRow, EndRow, FindRow};

/// Inserts a batch of finds ACKed at `acked_at` in one statement; per find, whether it was new
/// (the first request with an ID stands, across instances and within the batch). Rows go in in
/// request-ID order: two instances inserting the same IDs at once (a request repeated on both)
/// then wait on each other in one order, where batch order let each hold a row the other
/// needed, a deadlock PostgreSQL broke by failing one batch (every find in it answered 500).
pub(super) async fn insert(
    c: &impl GenericClient,
    finds: &[FindRow],
    acked_at: i64,
) -> Result<Vec<AppendOutcome>, StoreError> {
    if finds.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = finds.iter().map(|f| f.request_id.as_str()).collect();
    let received: Vec<i64> = finds.iter().map(|f| f.received_at).collect();
    let data: Vec<Option<&[u8]>> = finds.iter().map(|f| f.sealed.as_deref()).collect();
    let stmt = c
        .prepare_cached(
            "INSERT INTO find_requests
                 (request_id, received_at, acked_at, state, find_data, outcome, completed_at)
             SELECT id, received, $3,
                    CASE WHEN data IS NULL THEN 'done' ELSE 'queued' END, data,
                    CASE WHEN data IS NULL THEN 'no-match' END,
                    CASE WHEN data IS NULL THEN $3::BIGINT END
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

/// Finds not yet at an end (queued or being worked), across every instance.
pub(super) async fn open_count(c: &impl GenericClient) -> Result<u64, StoreError> {
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM find_requests WHERE state IN ('queued', 'working')",
            &[],
        )
        .await?
        .get(0);
    Ok(n as u64)
}

/// Claims up to `limit` finds: those whose lease ran out, and the queued, oldest first; rows
/// another transaction is claiming are skipped, not waited for.
pub(super) async fn claim(
    c: &impl GenericClient,
    now: i64,
    lease: i64,
    limit: usize,
) -> Result<Vec<ClaimedRow>, StoreError> {
    let stmt = c
        .prepare_cached(
            "WITH picked AS (
                 SELECT request_id FROM find_requests
                  WHERE state IN ('queued', 'working')
                    AND (state = 'queued' OR lease_until < $1)
                  ORDER BY acked_at
                  LIMIT $3
                  FOR UPDATE SKIP LOCKED)
             UPDATE find_requests f
                SET state = 'working', lease_until = $1 + $2, attempts = f.attempts + 1
               FROM picked
              WHERE f.request_id = picked.request_id
          RETURNING f.request_id, f.acked_at, f.find_data, f.pat_id, f.attempts",
        )
        .await?;
    let rows = c.query(&stmt, &[&now, &lease, &(limit as i64)]).await?;
    Ok(rows
        .iter()
        .map(|r| ClaimedRow {
            request_id: r.get(0),
            acked_at: r.get(1),
            sealed: r.get(2),
            pat_id: r.get(3),
            attempts: r.get(4),
        })
        .collect())
}

/// Extends a working find's lease if the claim `attempts` still holds it.
pub(super) async fn renew(
    c: &impl GenericClient,
    request_id: &str,
    attempts: i64,
    until: i64,
) -> Result<bool, StoreError> {
    let stmt = c
        .prepare_cached(
            "UPDATE find_requests SET lease_until = $3
              WHERE request_id = $1 AND state = 'working' AND attempts = $2",
        )
        .await?;
    Ok(c.execute(&stmt, &[&request_id, &attempts, &until]).await? == 1)
}

/// Records the rules versions that decided a find, and the PAT its UAT was swapped for.
pub(super) async fn set_matched(
    c: &impl GenericClient,
    request_id: &str,
    versions: &str,
    pat_id: Option<&str>,
) -> Result<(), StoreError> {
    let stmt = c
        .prepare_cached(
            "UPDATE find_requests SET rules_version = $2, pat_id = coalesce($3, pat_id)
              WHERE request_id = $1",
        )
        .await?;
    c.execute(&stmt, &[&request_id, &versions, &pat_id]).await?;
    Ok(())
}

/// Ends a working find (see the SQLite backend's `end`): false when it was not this claim's.
pub(super) async fn end(c: &impl GenericClient, row: &EndRow) -> Result<bool, StoreError> {
    let (state, outcome, reason) = row.end.columns();
    let stmt = c
        .prepare_cached(
            "UPDATE find_requests
                SET state = $2, outcome = $3, reason = $4, find_data = NULL, lease_until = NULL,
                    completed_at = $5
              WHERE request_id = $1 AND state = 'working'
                AND ($6::BIGINT IS NULL OR attempts = $6)",
        )
        .await?;
    let n = c
        .execute(
            &stmt,
            &[
                &row.request_id,
                &state,
                &outcome,
                &reason,
                &row.now,
                &row.claim,
            ],
        )
        .await?;
    Ok(n == 1)
}

const FIND_COLUMNS: &str = "request_id, received_at, acked_at, state, find_data IS NOT NULL,
    outcome, reason, completed_at";

fn row_to_find(r: &Row) -> Result<StoredFind, StoreError> {
    Ok(StoredFind {
        request_id: r.try_get(0)?,
        received_at: r.try_get(1)?,
        acked_at: r.try_get(2)?,
        state: r.try_get(3)?,
        has_find_data: r.try_get(4)?,
        outcome: r.try_get(5)?,
        reason: r.try_get(6)?,
        completed_at: r.try_get(7)?,
    })
}

/// One find by ID.
pub(super) async fn get(
    c: &impl GenericClient,
    request_id: &str,
) -> Result<Option<StoredFind>, StoreError> {
    let sql = format!("SELECT {FIND_COLUMNS} FROM find_requests WHERE request_id = $1");
    c.query_opt(sql.as_str(), &[&request_id])
        .await?
        .as_ref()
        .map(row_to_find)
        .transpose()
}

/// Every find, oldest first.
pub(super) async fn all(c: &impl GenericClient) -> Result<Vec<StoredFind>, StoreError> {
    let sql = format!("SELECT {FIND_COLUMNS} FROM find_requests ORDER BY acked_at, request_id");
    c.query(sql.as_str(), &[])
        .await?
        .iter()
        .map(row_to_find)
        .collect()
}

/// Failed finds, newest first (CoCo2.2.6).
pub(super) async fn failed(c: &impl GenericClient) -> Result<Vec<FailedFind>, StoreError> {
    let rows = c
        .query(
            "SELECT request_id, acked_at, completed_at, reason FROM find_requests
              WHERE state = 'failed' ORDER BY completed_at DESC",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| FailedFind {
            request_id: r.get(0),
            acked_at: r.get(1),
            completed_at: r.get(2),
            reason: r.get(3),
        })
        .collect())
}
