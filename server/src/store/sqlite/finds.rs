//! The find queue in SQL.
//!
//! A find request is one row. At its ACK it is inserted either already at its end (no match: no
//! find data, outcome `no-match`) or queued with its sealed find data. The pipeline claims queued
//! rows under a lease, and the row's end (`done` or `failed`) deletes the find data in the same
//! statement. `find_requests_open`, a partial index over queued and working rows, keeps claims
//! proportional to the open finds, not to the table.

use rusqlite::{params, Connection, OptionalExtension};

use super::super::model::{AppendOutcome, FailedFind, FindOutcome, FindState, StoredFind};
use super::super::StoreError;
use crate::store::backend::{ClaimedRow, EndRow, FindRow};

/// Inserts a batch of finds ACKed at `acked_at`; per find, whether it was new (the first request
/// with an ID stands).
pub(in crate::store) fn insert(
    conn: &Connection,
    finds: &[FindRow],
    acked_at: i64,
) -> Result<Vec<AppendOutcome>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO find_requests
             (request_id, received_at, acked_at, state, find_data, outcome, completed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut out = Vec::with_capacity(finds.len());
    for f in finds {
        let (state, outcome, completed_at) = match f.sealed {
            Some(_) => (FindState::Queued, None, None),
            None => (FindState::Done, Some(FindOutcome::NoMatch), Some(acked_at)),
        };
        let n = stmt.execute(params![
            f.request_id,
            f.received_at,
            acked_at,
            state,
            f.sealed,
            outcome,
            completed_at
        ])?;
        out.push(if n == 1 {
            AppendOutcome::Created
        } else {
            AppendOutcome::Duplicate
        });
    }
    Ok(out)
}

/// Finds not yet at an end (queued or being worked).
pub(in crate::store) fn open_count(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM find_requests WHERE state IN ('queued', 'working')",
        [],
        |r| r.get(0),
    )?;
    Ok(n as u64)
}

/// Single-instance start-up: finds a previous process was working on are queued again.
pub(in crate::store) fn requeue_working(conn: &Connection) -> Result<u64, StoreError> {
    let n = conn.execute(
        "UPDATE find_requests SET state = 'queued', lease_until = NULL
          WHERE state IN ('queued', 'working') AND state = 'working'",
        [],
    )?;
    Ok(n as u64)
}

/// Claims up to `limit` finds: those whose lease ran out first, then the oldest queued.
///
/// The redundant `state IN ('queued', 'working')` lets SQLite use the partial index
/// `find_requests_open`; without it every claim scanned and sorted the whole table (found
/// under load: 50 claims/s with 50k rows). `claims_use_the_open_index` guards it.
pub(in crate::store) fn claim(
    conn: &Connection,
    now: i64,
    lease_micros: i64,
    limit: usize,
) -> Result<Vec<ClaimedRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "WITH picked AS (
             SELECT request_id FROM (
                 SELECT request_id FROM find_requests
                  WHERE state IN ('queued', 'working') AND state = 'working' AND lease_until < ?1
                  ORDER BY acked_at LIMIT ?3)
             UNION ALL
             SELECT request_id FROM (
                 SELECT request_id FROM find_requests
                  WHERE state IN ('queued', 'working') AND state = 'queued'
                  ORDER BY acked_at LIMIT ?3)
             LIMIT ?3)
         UPDATE find_requests
            SET state = 'working', lease_until = ?1 + ?2, attempts = attempts + 1
          WHERE request_id IN picked
      RETURNING request_id, acked_at, find_data, pat_id, attempts",
    )?;
    let rows = stmt.query_map(params![now, lease_micros, limit as i64], |r| {
        Ok(ClaimedRow {
            request_id: r.get(0)?,
            acked_at: r.get(1)?,
            sealed: r.get(2)?,
            pat_id: r.get(3)?,
            attempts: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Extends a working find's lease if the claim `attempts` still holds it.
pub(in crate::store) fn renew(
    conn: &Connection,
    request_id: &str,
    attempts: i64,
    until: i64,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE find_requests SET lease_until = ?3
              WHERE request_id = ?1 AND state = 'working' AND attempts = ?2",
        )?
        .execute(params![request_id, attempts, until])?;
    Ok(n == 1)
}

/// Records the rules versions that decided a find, and the PAT its UAT was swapped for when
/// there is one.
pub(in crate::store) fn set_matched(
    conn: &Connection,
    request_id: &str,
    versions: &str,
    pat_id: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE find_requests SET rules_version = ?2, pat_id = coalesce(?3, pat_id)
          WHERE request_id = ?1",
    )?
    .execute(params![request_id, versions, pat_id])?;
    Ok(())
}

/// Ends a working find: `done` with its outcome, or `failed` with a reason (never personal
/// data); find data deleted. False when it was no longer being worked on (another claim ended it
/// after this one's lease ran out), or, given the claim's attempt number, when a later claim
/// holds it.
pub(in crate::store) fn end(conn: &Connection, row: &EndRow) -> Result<bool, StoreError> {
    let (state, outcome, reason) = row.end.columns();
    let n = conn
        .prepare_cached(
            "UPDATE find_requests
                SET state = ?2, outcome = ?3, reason = ?4, find_data = NULL, lease_until = NULL,
                    completed_at = ?5
              WHERE request_id = ?1 AND state = 'working' AND (?6 IS NULL OR attempts = ?6)",
        )?
        .execute(params![
            row.request_id,
            state,
            outcome,
            reason,
            row.now,
            row.claim
        ])?;
    Ok(n == 1)
}

const FIND_COLUMNS: &str = "request_id, received_at, acked_at, state, find_data IS NOT NULL,
    outcome, reason, completed_at";

fn row_to_find(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredFind> {
    Ok(StoredFind {
        request_id: r.get(0)?,
        received_at: r.get(1)?,
        acked_at: r.get(2)?,
        state: r.get(3)?,
        has_find_data: r.get(4)?,
        outcome: r.get(5)?,
        reason: r.get(6)?,
        completed_at: r.get(7)?,
    })
}

/// One find by ID.
pub(in crate::store) fn get(
    conn: &Connection,
    request_id: &str,
) -> Result<Option<StoredFind>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {FIND_COLUMNS} FROM find_requests WHERE request_id = ?1"
        ))?
        .query_row([request_id], row_to_find)
        .optional()?)
}

/// Every find, oldest first.
pub(in crate::store) fn all(conn: &Connection) -> Result<Vec<StoredFind>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {FIND_COLUMNS} FROM find_requests ORDER BY acked_at, request_id"
    ))?;
    let rows = stmt.query_map([], row_to_find)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Failed finds, newest first (CoCo2.2.6).
pub(in crate::store) fn failed(conn: &Connection) -> Result<Vec<FailedFind>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT request_id, acked_at, completed_at, reason FROM find_requests
          WHERE state = 'failed' ORDER BY completed_at DESC",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(FailedFind {
            request_id: r.get(0)?,
            acked_at: r.get(1)?,
            completed_at: r.get(2)?,
            reason: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
