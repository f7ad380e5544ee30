//! The audit trail, heartbeats and the SLA samples in SQL.
//!
//! The trail is append-only: triggers refuse any update, and any delete of a row newer than the
//! retention cutoff, which only [`purge`] moves forward (CoCo2.1.6).

use rusqlite::{params, Connection};

use super::super::model::SlaSamples;
use super::super::StoreError;
use crate::audit::{AuditRecord, Direction};
use crate::store::backend::DailyRun;

/// Inserts audit records (inside the caller's transaction).
pub(in crate::store) fn insert(conn: &Connection, audit: &[AuditRecord]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO audit_log (transaction_id, request_id, direction, party, endpoint,
             received_at, responded_at, status, latency_us, outcome)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for a in audit {
        stmt.execute(params![
            a.transaction_id,
            a.request_id,
            a.direction.as_str(),
            a.party,
            a.endpoint,
            a.received_at,
            a.responded_at,
            a.status,
            a.latency_micros(),
            a.outcome,
        ])?;
    }
    Ok(())
}

/// Audit records received in `[from, to)`, for one transaction or find request ID when given,
/// oldest first.
pub(in crate::store) fn records(
    conn: &Connection,
    from: i64,
    to: i64,
    id: Option<&str>,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT transaction_id, request_id, direction, party, endpoint, received_at,
                responded_at, status, outcome
           FROM audit_log
          WHERE received_at >= ?1 AND received_at < ?2
            AND (?3 IS NULL OR transaction_id = ?3 OR request_id = ?3)
          ORDER BY received_at, id",
    )?;
    let rows = stmt.query_map(params![from, to, id], |r| {
        let direction: String = r.get(2)?;
        Ok(AuditRecord {
            transaction_id: r.get(0)?,
            request_id: r.get(1)?,
            direction: Direction::parse(&direction).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    2,
                    rusqlite::types::Type::Text,
                    format!("unknown direction {direction:?}").into(),
                )
            })?,
            party: r.get(3)?,
            endpoint: r.get(4)?,
            received_at: r.get(5)?,
            responded_at: r.get(6)?,
            status: r.get(7)?,
            outcome: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Moves the retention cutoff to `cutoff` (never back) and deletes what is older.
pub(in crate::store) fn purge(conn: &Connection, cutoff: i64) -> Result<u64, StoreError> {
    conn.execute(
        "INSERT INTO audit_retention (id, cutoff) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET cutoff = max(cutoff, excluded.cutoff)",
        [cutoff],
    )?;
    let n = conn.execute("DELETE FROM audit_log WHERE received_at < ?1", [cutoff])?;
    Ok(n as u64)
}

/// Records that the endpoint is up in this minute (minutes since the epoch).
pub(in crate::store) fn heartbeat(conn: &Connection, minute: i64) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT OR IGNORE INTO heartbeats (minute) VALUES (?1)")?
        .execute([minute])?;
    Ok(())
}

/// Minutes up in `[from, to)` (minutes since the epoch).
pub(in crate::store) fn minutes_up(
    conn: &Connection,
    from: i64,
    to: i64,
) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM heartbeats WHERE minute >= ?1 AND minute < ?2",
        params![from, to],
        |r| r.get(0),
    )?;
    Ok(n as u64)
}

/// The first minute with a heartbeat (minutes since the epoch), if there is one.
pub(in crate::store) fn first_heartbeat(conn: &Connection) -> Result<Option<i64>, StoreError> {
    let m: Option<i64> = conn.query_row("SELECT min(minute) FROM heartbeats", [], |r| r.get(0))?;
    Ok(m)
}

fn latencies(conn: &Connection, sql: &str, from: i64, to: i64) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params![from, to], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn counts(
    conn: &Connection,
    sql: &str,
    from: i64,
    to: i64,
    out: &mut Vec<(String, u64)>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params![from, to], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (k, n) = row?;
        out.push((k, n as u64));
    }
    Ok(())
}

/// The samples of the service levels for `[from, to)` (µs).
pub(in crate::store) fn sla_samples(
    conn: &Connection,
    from: i64,
    to: i64,
) -> Result<SlaSamples, StoreError> {
    let ack = latencies(
        conn,
        "SELECT latency_us FROM audit_log WHERE direction = 'inbound'
            AND endpoint = 'POST /find-requests' AND status = 202
            AND received_at >= ?1 AND received_at < ?2",
        from,
        to,
    )?;
    let completion = latencies(
        conn,
        "SELECT completed_at - acked_at FROM find_requests
          WHERE outcome IN ('match-yes', 'match-possible') AND state = 'done'
            AND acked_at >= ?1 AND acked_at < ?2",
        from,
        to,
    )?;
    let failed: i64 = conn.query_row(
        "SELECT count(*) FROM find_requests WHERE state = 'failed' AND acked_at >= ?1 AND acked_at < ?2",
        params![from, to],
        |r| r.get(0),
    )?;
    // Views that ended: a `401` challenge is the first half of a view, not a view.
    let view = latencies(
        conn,
        "SELECT latency_us FROM audit_log WHERE direction = 'inbound'
            AND endpoint = 'GET /view-data' AND outcome <> 'challenge'
            AND received_at >= ?1 AND received_at < ?2",
        from,
        to,
    )?;
    let mut out = Vec::new();
    counts(
        conn,
        "SELECT endpoint || ' ' || outcome, count(*) FROM audit_log
          WHERE direction = 'inbound' AND received_at >= ?1 AND received_at < ?2
          GROUP BY endpoint, outcome",
        from,
        to,
        &mut out,
    )?;
    counts(
        conn,
        "SELECT 'find ' || coalesce(outcome, state), count(*) FROM find_requests
          WHERE acked_at >= ?1 AND acked_at < ?2 GROUP BY 1",
        from,
        to,
        &mut out,
    )?;
    Ok(SlaSamples {
        ack,
        completion,
        failed: failed as u64,
        view,
        counts: out,
        minutes_up: 0, // the Store's to fill
    })
}

/// Takes a daily job's run for `day` (see [`crate::store::backend::Backend::begin_daily`]).
pub(in crate::store) fn begin_daily(
    conn: &Connection,
    run: &DailyRun,
    lease_until: i64,
) -> Result<bool, StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO daily_runs (job, day, started_at, lease_until) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (job, day) DO UPDATE
             SET started_at = excluded.started_at, lease_until = excluded.lease_until
           WHERE daily_runs.finished_at IS NULL AND daily_runs.lease_until < excluded.started_at
         RETURNING job",
    )?;
    let mut rows = stmt.query(params![run.job, run.day, run.now, lease_until])?;
    Ok(rows.next()?.is_some())
}

/// Marks a daily job's run finished.
pub(in crate::store) fn finish_daily(conn: &Connection, run: &DailyRun) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE daily_runs SET finished_at = ?3 WHERE job = ?1 AND day = ?2")?
        .execute(params![run.job, run.day, run.now])?;
    Ok(())
}

/// Matching finds ACKed in `[from, to)` and completed: `(holdername, ACK to completion)`, once
/// per holdername a find registered PeIs in.
pub(in crate::store) fn completions_by_holdername(
    conn: &Connection,
    from: i64,
    to: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT DISTINCT p.holdername, f.request_id, f.completed_at - f.acked_at
           FROM find_requests f JOIN peis p ON p.request_id = f.request_id
          WHERE f.state = 'done' AND f.outcome IN ('match-yes', 'match-possible')
            AND f.acked_at >= ?1 AND f.acked_at < ?2",
    )?;
    let rows = stmt.query_map(params![from, to], |r| Ok((r.get(0)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
