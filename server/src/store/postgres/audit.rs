//! The audit trail, heartbeats, the SLA samples and daily runs in PostgreSQL's SQL (see the
//! SQLite backend's `audit.rs`). The trail is append-only: a trigger refuses any update, and any
//! delete of a row newer than the retention cutoff, which only [`purge`] moves forward.

use deadpool_postgres::GenericClient;

use super::super::model::SlaSamples;
use super::super::StoreError;
use crate::audit::{AuditRecord, Direction};
use crate::store::backend::DailyRun;

/// Inserts audit records in one statement (inside the caller's transaction).
pub(super) async fn insert(
    c: &impl GenericClient,
    audit: &[&AuditRecord],
) -> Result<(), StoreError> {
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

/// Audit records received in `[from, to)`, for one transaction or find request ID when given,
/// oldest first.
pub(super) async fn records(
    c: &impl GenericClient,
    from: i64,
    to: i64,
    id: Option<&str>,
) -> Result<Vec<AuditRecord>, StoreError> {
    let rows = c
        .query(
            "SELECT transaction_id, request_id, direction, party, endpoint, received_at,
                    responded_at, status, outcome
               FROM audit_log
              WHERE received_at >= $1 AND received_at < $2
                AND ($3::TEXT IS NULL OR transaction_id = $3 OR request_id = $3)
              ORDER BY received_at, id",
            &[&from, &to, &id],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let direction: &str = r.try_get(2)?;
            let status: i32 = r.try_get(7)?;
            Ok(AuditRecord {
                transaction_id: r.try_get(0)?,
                request_id: r.try_get(1)?,
                direction: Direction::parse(direction)
                    .ok_or(StoreError::Corrupt("audit direction"))?,
                party: r.try_get(3)?,
                endpoint: r.try_get(4)?,
                received_at: r.try_get(5)?,
                responded_at: r.try_get(6)?,
                status: u16::try_from(status).map_err(|_| StoreError::Corrupt("audit status"))?,
                outcome: r.try_get(8)?,
            })
        })
        .collect()
}

/// Moves the retention cutoff to `cutoff` (never back) and deletes what is older.
pub(super) async fn purge(c: &impl GenericClient, cutoff: i64) -> Result<u64, StoreError> {
    c.execute(
        "INSERT INTO audit_retention (id, cutoff) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE SET cutoff = greatest(audit_retention.cutoff, excluded.cutoff)",
        &[&cutoff],
    )
    .await?;
    Ok(
        c.execute("DELETE FROM audit_log WHERE received_at < $1", &[&cutoff])
            .await?,
    )
}

/// Records that an endpoint is up in this minute (minutes since the epoch).
pub(super) async fn heartbeat(c: &impl GenericClient, minute: i64) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO heartbeats (minute) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&minute],
    )
    .await?;
    Ok(())
}

/// Minutes up in `[from, to)` (minutes since the epoch).
pub(super) async fn minutes_up(
    c: &impl GenericClient,
    from: i64,
    to: i64,
) -> Result<u64, StoreError> {
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM heartbeats WHERE minute >= $1 AND minute < $2",
            &[&from, &to],
        )
        .await?
        .try_get(0)?;
    Ok(n as u64)
}

/// The first minute with a heartbeat, if there is one.
pub(super) async fn first_heartbeat(c: &impl GenericClient) -> Result<Option<i64>, StoreError> {
    Ok(c.query_one("SELECT min(minute) FROM heartbeats", &[])
        .await?
        .try_get(0)?)
}

async fn latencies(
    c: &impl GenericClient,
    sql: &str,
    from: i64,
    to: i64,
) -> Result<Vec<i64>, StoreError> {
    Ok(c.query(sql, &[&from, &to])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// The samples of the service levels for `[from, to)` (µs).
pub(super) async fn sla_samples(
    c: &impl GenericClient,
    from: i64,
    to: i64,
) -> Result<SlaSamples, StoreError> {
    let ack = latencies(
        c,
        "SELECT latency_us FROM audit_log WHERE direction = 'inbound'
            AND endpoint = 'POST /find-requests' AND status = 202
            AND received_at >= $1 AND received_at < $2",
        from,
        to,
    )
    .await?;
    let completion = latencies(
        c,
        "SELECT completed_at - acked_at FROM find_requests
          WHERE outcome IN ('match-yes', 'match-possible') AND state = 'done'
            AND acked_at >= $1 AND acked_at < $2",
        from,
        to,
    )
    .await?;
    let failed: i64 = c
        .query_one(
            "SELECT count(*) FROM find_requests
              WHERE state = 'failed' AND acked_at >= $1 AND acked_at < $2",
            &[&from, &to],
        )
        .await?
        .try_get(0)?;
    // Views that ended: a `401` challenge is the first half of a view, not a view.
    let view = latencies(
        c,
        "SELECT latency_us FROM audit_log WHERE direction = 'inbound'
            AND endpoint = 'GET /view-data' AND outcome <> 'challenge'
            AND received_at >= $1 AND received_at < $2",
        from,
        to,
    )
    .await?;
    let mut counts = Vec::new();
    for sql in [
        "SELECT endpoint || ' ' || outcome, count(*) FROM audit_log
          WHERE direction = 'inbound' AND received_at >= $1 AND received_at < $2
          GROUP BY endpoint, outcome",
        "SELECT 'find ' || coalesce(outcome, state), count(*) FROM find_requests
          WHERE acked_at >= $1 AND acked_at < $2 GROUP BY 1",
    ] {
        for r in c.query(sql, &[&from, &to]).await? {
            counts.push((r.try_get(0)?, r.try_get::<_, i64>(1)? as u64));
        }
    }
    Ok(SlaSamples {
        ack,
        completion,
        failed: failed as u64,
        view,
        counts,
        minutes_up: 0, // the Store's to fill
    })
}

/// Takes a daily job's run for `day` (see [`crate::store::backend::Backend::begin_daily`]).
pub(super) async fn begin_daily(
    c: &impl GenericClient,
    run: &DailyRun,
    lease_until: i64,
) -> Result<bool, StoreError> {
    let row = c
        .query_opt(
            "INSERT INTO daily_runs (job, day, started_at, lease_until) VALUES ($1, $2, $3, $4)
             ON CONFLICT (job, day) DO UPDATE
                 SET started_at = excluded.started_at, lease_until = excluded.lease_until
               WHERE daily_runs.finished_at IS NULL
                 AND daily_runs.lease_until < excluded.started_at
             RETURNING job",
            &[&run.job, &run.day, &run.now, &lease_until],
        )
        .await?;
    Ok(row.is_some())
}

/// Marks a daily job's run finished.
pub(super) async fn finish_daily(c: &impl GenericClient, run: &DailyRun) -> Result<(), StoreError> {
    c.execute(
        "UPDATE daily_runs SET finished_at = $3 WHERE job = $1 AND day = $2",
        &[&run.job, &run.day, &run.now],
    )
    .await?;
    Ok(())
}

/// Matching finds ACKed in `[from, to)` and completed: `(holdername, ACK to completion)`, once
/// per holdername a find registered PeIs in.
pub(super) async fn completions_by_holdername(
    c: &impl GenericClient,
    from: i64,
    to: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    c.query(
        "SELECT DISTINCT p.holdername, f.request_id, f.completed_at - f.acked_at
           FROM find_requests f JOIN peis p ON p.request_id = f.request_id
          WHERE f.state = 'done' AND f.outcome IN ('match-yes', 'match-possible')
            AND f.acked_at >= $1 AND f.acked_at < $2",
        &[&from, &to],
    )
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(2)?)))
    .collect()
}
