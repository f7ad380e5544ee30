//! The audit trail, heartbeats, the service levels' samples, and the daily jobs' runs.
//!
//! The trail is append-only: the schema refuses any update, and any delete of a row newer than
//! the retention cutoff, which only [`Store::purge_audit`] moves forward (CoCo2.1.6). Its rows
//! are written by each backend's group commit, beside the find ACKs.

use std::collections::BTreeMap;
use std::time::Duration;

use uuid::Uuid;

use super::finds::NO_MATCH_ACK;
use super::sql::{params, Access, Row, Tx};
use super::{Result, Store, StoreError, HOUR};
use crate::model::{AuditRecord, Direction};
use crate::model::{SchemeSamples, SlaSamples};

/// Microseconds in a minute: heartbeats are kept by the minute since the epoch.
const MINUTE: i64 = 60_000_000;

// === impl Store ===

impl Store {
    // --- audit, availability, service levels, daily jobs ---

    /// Audit records received in `[from, to)` (µs), for one transaction or find request ID when
    /// given, oldest first.
    pub async fn audit_records(
        &self,
        from: i64,
        to: i64,
        id: Option<String>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        // One snapshot: the weeks' and the recent frontiers, then the records by them (read
        // apart, the weeks could pass a record whose slice is then forgotten in between).
        self.run(Access::Snapshot, move |tx| {
            Box::pin(async move { records(tx, from, to, id).await })
        })
        .await
    }

    /// Writes the IDs of audit records received before `through` (µs) into the look-up by ID,
    /// oldest first, from where the last call stopped, at most `limit` spans (a week each at
    /// most) a call; returns the spans written. Look-ups read the records not yet written by
    /// time.
    pub async fn write_audit_ids(&self, through: i64, limit: u32) -> Result<u32, StoreError> {
        write_week_ids(self, through, limit).await
    }

    /// The instant (µs) before which every audit record's IDs are written for look-ups.
    pub async fn audit_ids_through(&self) -> Result<Option<i64>, StoreError> {
        weeks_through(self).await
    }

    /// Writes the IDs of the audit records written since the last call (by row, from the
    /// recent frontier to the last row committed) into the recent look-up, a slice of at most
    /// [`SLICE_ROWS`] records a transaction; the last, shorter slice only once the frontier is
    /// [`SLICE_WAIT`] old at `now` (µs; the time, or a time before the call) (look-ups read
    /// those records by row meanwhile). First forgets the slices whose records are all written
    /// by week. Returns the slices written.
    pub async fn write_recent_audit_ids(&self, now: i64) -> Result<u32, StoreError> {
        let called = std::time::Instant::now();
        forget_recent_ids(self).await?;
        write_recent_ids(self, now, called).await
    }

    /// The recent look-up's frontier: every audit record in a row below it (and received since
    /// those written by week) has its IDs written.
    pub async fn recent_audit_ids_frontier(&self) -> Result<Option<i64>, StoreError> {
        Ok(recent_mark(self).await?.map(|m| m.next_row))
    }

    /// Records that the endpoint is up in the minute of `now` (µs).
    pub async fn heartbeat(&self, now: i64) -> Result<(), StoreError> {
        let minute = now / MINUTE;
        self.run(Access::Single, move |tx| {
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO heartbeats (minute) VALUES ($1) ON CONFLICT DO NOTHING",
                    &params![minute],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Minutes up in `[from, to)` (µs).
    pub async fn minutes_up(&self, from: i64, to: i64) -> Result<u64, StoreError> {
        self.read(move |tx| Box::pin(async move { minutes_up(tx, from, to).await }))
            .await
    }

    /// The start of the first minute the endpoint was up (µs), if it ever was.
    pub async fn first_heartbeat(&self) -> Result<Option<i64>, StoreError> {
        let first = self
            .read(|tx| {
                Box::pin(async move {
                    tx.value::<Option<i64>>("SELECT min(minute) FROM heartbeats", &[])
                        .await
                })
            })
            .await?;
        Ok(first.map(|m| m * MINUTE))
    }

    /// The service levels' samples for `[from, to)` (µs).
    pub async fn sla_samples(&self, from: i64, to: i64) -> Result<SlaSamples, StoreError> {
        self.run(Access::Snapshot, move |tx| {
            Box::pin(async move { sla_samples(tx, from, to).await })
        })
        .await
    }

    /// Runs a daily job's run for `day` once across every instance sharing the store: true when
    /// this caller takes it, after which it must call [`Store::finish_daily`]. A run whose holder
    /// stopped without finishing is taken over once `lease` has passed (the jobs are
    /// idempotent); a finished one is never taken again.
    pub async fn begin_daily(
        &self,
        job: &str,
        day: chrono::NaiveDate,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let job = job.to_owned();
        let now = crate::now_micros();
        let lease_until = now + lease.as_micros() as i64;
        self.run(Access::Single, move |tx| {
            Box::pin(async move {
                let taken = tx
                    .query_opt(
                        "INSERT INTO daily_runs (job, day, started_at, lease_until)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (job, day) DO UPDATE
                             SET started_at = excluded.started_at,
                                 lease_until = excluded.lease_until
                           WHERE daily_runs.finished_at IS NULL
                             AND daily_runs.lease_until < excluded.started_at
                         RETURNING job",
                        &params![job, day, now, lease_until],
                    )
                    .await?;
                Ok(taken.is_some())
            })
        })
        .await
    }

    /// Marks a daily job's run for `day` finished.
    pub async fn finish_daily(&self, job: &str, day: chrono::NaiveDate) -> Result<(), StoreError> {
        let job = job.to_owned();
        let now = crate::now_micros();
        self.run(Access::Single, move |tx| {
            Box::pin(async move {
                tx.execute(
                    "UPDATE daily_runs SET finished_at = $3 WHERE job = $1 AND day = $2",
                    &params![job, day, now],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Backend upkeep, beside the writer: on SQLite, a passive WAL checkpoint (copies committed
    /// frames into the database file; it never blocks a writer).
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        self.db().checkpoint().await
    }
}

// === units of work ===

/// An audit record's columns as [`record_from`] reads them (`a`: `audit_log`).
const COLUMNS: &str = "a.id, a.transaction_id, a.request_id, a.direction, a.party,
    a.endpoint, a.received_at, a.responded_at, a.status, a.outcome";

/// Audit records received in `[from, to)`, for one transaction or find request ID when given,
/// oldest first.
pub(super) async fn records(
    tx: &mut dyn Tx,
    from: i64,
    to: i64,
    id: Option<String>,
) -> Result<Vec<AuditRecord>> {
    let Some(id) = id else {
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log a
              WHERE a.received_at >= $1 AND a.received_at < $2 ORDER BY a.received_at, a.id"
        );
        return tx
            .query(&sql, &params![from, to])
            .await?
            .iter()
            .map(record_from)
            .collect();
    };
    // The window first narrowed to the days the trail holds. Records received before `weeks`
    // have their IDs written by week in `audit_ids`: one seek a week. The others were written
    // since, their IDs in `audit_ids_recent` below its frontier row (one seek a slice), or read
    // by row above it (the records written in the last seconds). With no recent frontier yet,
    // the records since `weeks` are read by time.
    let held = tx
        .query_one(
            "SELECT (SELECT min(received_at) FROM audit_log),
                    (SELECT max(received_at) FROM audit_log),
                    (SELECT max(next_at) FROM audit_ids_through),
                    (SELECT max(next_row) FROM audit_recent_marks)",
            &[],
        )
        .await?;
    let (Some(first), Some(last)) = (held.get::<Option<i64>>(0)?, held.get::<Option<i64>>(1)?)
    else {
        return Ok(Vec::new());
    };
    let weeks = held.get::<Option<i64>>(2)?.unwrap_or(i64::MIN);
    let frontier = held.get::<Option<i64>>(3)?;
    let (from, to) = (from.max(first), to.min(last.saturating_add(1)));
    if from >= to {
        return Ok(Vec::new());
    }
    let by_week = (from, to.min(weeks));
    // Only records received since `weeks` are looked for beyond the weeks.
    let since = (from.max(weeks), to);
    let empty = |(a, b): (i64, i64)| if a < b { (a, b) } else { (0, 0) };
    let (by_week, since) = (empty(by_week), empty(since));
    let sql = by_id_sql(frontier.is_some());
    let bound = params![
        by_week.0,
        by_week.1,
        since.0,
        since.1,
        id,
        frontier.unwrap_or(0)
    ];
    tx.query(&sql, &bound)
        .await?
        .iter()
        .map(record_from)
        .collect()
}

/// The look-up of one ID's audit records ([`records`]; `$5`): by week in `[$1, $2)`, then in
/// the recent slices and, with a recent `frontier`, by row from it (`$6`), or else by time,
/// both in `[$3, $4)`. Each part reads the records by the keys it seeks (a plan test holds it
/// to that), then they are sorted: the records read by row would otherwise be read in the
/// order of the time index, all of it.
pub(super) fn by_id_sql(frontier: bool) -> String {
    let rest = if frontier {
        // `+`: SQLite reads those rows by their row ID, never by time.
        "a.id >= $6 AND +a.received_at >= $3 AND +a.received_at < $4"
    } else {
        "a.received_at >= $3 AND a.received_at < $4 AND CAST($6 AS {int64}) IS NOT NULL"
    };
    format!(
        "WITH RECURSIVE weeks (w) AS (
             SELECT CAST($1 AS {{int64}}) / {WEEK} UNION ALL
             SELECT w + 1 FROM weeks WHERE w < (CAST($2 AS {{int64}}) - 1) / {WEEK}
         ), slices (s) AS (
             SELECT min(slice) FROM audit_ids_recent WHERE CAST($3 AS {{int64}}) < $4
             UNION ALL
             SELECT (SELECT min(slice) FROM audit_ids_recent WHERE slice > s)
               FROM slices WHERE s IS NOT NULL
         )
         SELECT * FROM (
             SELECT {COLUMNS} FROM weeks
               JOIN audit_ids i ON i.week = weeks.w AND i.id = $5
               JOIN audit_log a ON a.id = i.audit_id
              WHERE a.received_at >= $1 AND a.received_at < $2
             UNION
             SELECT {COLUMNS} FROM slices
               JOIN audit_ids_recent i ON i.slice = slices.s AND i.id = $5
               JOIN audit_log a ON a.id = i.audit_id
              WHERE a.received_at >= $3 AND a.received_at < $4
             UNION
             SELECT {COLUMNS} FROM audit_log a
              WHERE {rest} AND (a.request_id = $5 OR a.transaction_id = $5)
         ) AS found
         ORDER BY 7, 1"
    )
}

/// Records the IDs of a week's span are written for at once: a span beyond is written in
/// sixteen parts of the ID space ([`id_parts`]).
const WEEK_AT_ONCE: i64 = 100_000;

/// The parts of the ID space a week's span is written in, one transaction each, in key order:
/// one; or sixteen (by the IDs' first hexadecimal digit) when it holds more than `at_once`
/// records (each part reads the span again).
fn id_parts(count: i64, at_once: i64) -> Vec<(Option<&'static str>, Option<&'static str>)> {
    if count <= at_once {
        return vec![(None, None)];
    }
    let cuts = [
        "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f",
    ];
    std::iter::once(None)
        .chain(cuts.iter().map(|c| Some(*c)))
        .zip(cuts.iter().map(|c| Some(*c)).chain(std::iter::once(None)))
        .collect()
}

/// The least pause after each transaction writing the recent IDs, for the ACKs' group commits.
const RECENT_PAUSE: Duration = Duration::from_millis(20);

/// The instant (µs) before which every audit record's IDs are written by week.
async fn weeks_through(store: &Store) -> std::result::Result<Option<i64>, StoreError> {
    store
        .read(move |tx| {
            Box::pin(async move {
                tx.value::<Option<i64>>("SELECT max(next_at) FROM audit_ids_through", &[])
                    .await
            })
        })
        .await
}

/// Writes the IDs of the audit records received before `through` by week, oldest first,
/// from where the last call stopped, at most `limit` spans (the rest of a week each) a call;
/// returns the spans written. A span is written in one transaction, or a week holding over
/// [`WEEK_AT_ONCE`] records in one a part of the ID space ([`id_parts`]), in ID order: into an
/// empty part of the table when catching up, rather than a few minutes' IDs spread over the
/// week. Several instances may call it at once (an ID written twice is written once).
async fn write_week_ids(
    store: &Store,
    through: i64,
    limit: u32,
) -> std::result::Result<u32, StoreError> {
    // The frontier as stored: each span moves it on only from where it was (another instance
    // may have moved it meanwhile).
    let mut stored = weeks_through(store).await?;
    let mut from = match stored {
        Some(at) => at,
        None => match store.next_activity(i64::MIN).await? {
            Some(t) => t,
            None => return Ok(0),
        },
    };
    let mut done = 0;
    while from < through && done < limit {
        let to = (from.div_euclid(WEEK) + 1)
            .saturating_mul(WEEK)
            .min(through);
        let count = records_in(store, from, to).await?;
        let next = if count == 0 {
            match store.next_activity(to).await? {
                Some(t) => t.clamp(to, through),
                None => through,
            }
        } else {
            for (lo, hi) in id_parts(count, WEEK_AT_ONCE) {
                store
                    .write(move |tx| {
                        Box::pin(async move { write_span(tx, (from, to), lo, hi).await })
                    })
                    .await?;
            }
            to
        };
        let moved = store
            .run(Access::Single, move |tx| {
                Box::pin(async move {
                    tx.execute(
                        "INSERT INTO audit_ids_through (id, next_at) VALUES (1, $2)
                         ON CONFLICT (id) DO UPDATE SET next_at = excluded.next_at
                          WHERE audit_ids_through.next_at = $1",
                        &params![stored, next],
                    )
                    .await
                })
            })
            .await?;
        if moved == 0 {
            break;
        }
        stored = Some(next);
        from = next;
        done += 1;
    }
    Ok(done)
}

/// The audit records received in `[from, to)` (µs).
async fn records_in(store: &Store, from: i64, to: i64) -> std::result::Result<i64, StoreError> {
    store
        .read(move |tx| {
            Box::pin(async move {
                tx.value::<i64>(
                    "SELECT count(*) FROM audit_log WHERE received_at >= $1 AND received_at < $2",
                    &params![from, to],
                )
                .await
            })
        })
        .await
}

/// Records a slice of the recent look-up holds at most (its IDs written in one transaction,
/// while the ACKs' group commits wait for the writer).
pub const SLICE_ROWS: i64 = 10_000;

/// How old (µs) the recent frontier is before the records written since are written as a
/// slice shorter than [`SLICE_ROWS`]: fewer slices to seek when records come slowly, and
/// seconds of records read by row.
pub const SLICE_WAIT: i64 = 10_000_000;

/// A mark of the recent look-up ([`Store::write_recent_audit_ids`]).
#[derive(Debug, Clone, Copy)]
struct Mark {
    /// Every record in a row below it has its IDs written (from the look-up's start on).
    next_row: i64,
    /// When `next_row` was read: every record written after has a row at or above it.
    read_at: i64,
}

/// The newest mark: the recent look-up's frontier.
async fn recent_mark(store: &Store) -> std::result::Result<Option<Mark>, StoreError> {
    store
        .read(|tx| {
            Box::pin(async move {
                tx.query_opt(
                    "SELECT next_row, read_at FROM audit_recent_marks
                      ORDER BY next_row DESC LIMIT 1",
                    &[],
                )
                .await?
                .map(|r| {
                    Ok(Mark {
                        next_row: r.get(0)?,
                        read_at: r.get(1)?,
                    })
                })
                .transpose()
            })
        })
        .await
}

/// The row after the last committed one, as a reader sees it.
const NEXT_ROW: &str = "SELECT coalesce(max(id), 0) + 1 FROM audit_log";

/// The row after the last committed one, read without a lock: exact on a store of one
/// instance ([`next_row`]), a bound on one that several share.
async fn last_row(store: &Store) -> std::result::Result<i64, StoreError> {
    store
        .read(|tx| Box::pin(async move { tx.value::<i64>(NEXT_ROW, &[]).await }))
        .await
}

/// The row after the last one written: every row below it is committed, and every record
/// written after this returns has a row at or above it. `None`: not now (a transaction that
/// may hold a row below it was still open after [`ROWS_SETTLE`]).
async fn next_row(store: &Store) -> std::result::Result<Option<i64>, StoreError> {
    if !store.db().shared() {
        // One writer, which commits rows in their order: the last committed, as read.
        return last_row(store).await.map(Some);
    }
    // Instances number rows as they insert them and commit them in their own time. The last
    // committed row is read, then the transactions writing to the table: one that numbered a
    // row below it did so before it was committed, so before the read, and holds the table's
    // write lock from before it numbered the row to its end; once none of those is open,
    // every row below the last is committed (or rolled back). Nothing is locked: the ACKs'
    // commits never wait on this (a share lock on the table, which they queued behind, stalled
    // them for as long as the slowest open transaction on it took).
    let (end, writing) = store
        .read(|tx| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT (SELECT coalesce(max(id), 0) + 1 FROM audit_log),
                            (SELECT coalesce(string_agg(virtualtransaction, ','), '')
                               FROM pg_locks WHERE {WRITING})"
                );
                let row = tx.query_one(&sql, &[]).await?;
                Ok((row.get::<i64>(0)?, row.get::<String>(1)?))
            })
        })
        .await?;
    let waited = std::time::Instant::now();
    while !writing.is_empty() {
        let open = store
            .read({
                let writing = writing.clone();
                move |tx| {
                    Box::pin(async move {
                        let sql = format!(
                            "SELECT count(*) FROM pg_locks WHERE {WRITING}
                                AND virtualtransaction = ANY (string_to_array($1, ','))"
                        );
                        tx.value::<i64>(&sql, &params![writing]).await
                    })
                }
            })
            .await?;
        if open == 0 {
            break;
        }
        if waited.elapsed() >= ROWS_SETTLE {
            return Ok(None);
        }
        tokio::time::sleep(ROWS_SETTLE_POLL).await;
    }
    Ok(Some(end))
}

/// The locks of the transactions writing to the audit table (`pg_locks`; a vacuum's lock, and
/// readers', are others).
const WRITING: &str = "locktype = 'relation' AND relation = 'audit_log'::regclass
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND mode = 'RowExclusiveLock'";

/// How long [`next_row`] waits for the transactions writing when it read the last row (the
/// ACKs' group commits take milliseconds; one still open after this is left to the next call).
const ROWS_SETTLE: std::time::Duration = std::time::Duration::from_secs(1);

/// How often [`next_row`] looks whether they have ended.
const ROWS_SETTLE_POLL: std::time::Duration = std::time::Duration::from_millis(2);

/// Where the recent look-up starts when it has no mark: the first row of a record received
/// since those written by week, or the next row when there is none (with nothing written by
/// week: the trail's first row, unless the trail goes back further than a few hours, its IDs
/// then written by week first; `None`: not yet).
pub(super) async fn recent_start(
    store: &Store,
    now: i64,
) -> std::result::Result<Option<i64>, StoreError> {
    let weeks = weeks_through(store).await?;
    if weeks.is_none() {
        match store.next_activity(i64::MIN).await? {
            Some(t) if t < now - 3 * HOUR => return Ok(None),
            _ => {}
        }
    }
    let since = weeks.unwrap_or(i64::MIN);
    // Every row below `end` is committed: on a store several instances share, a row numbered
    // before the first one read and committed after it would be in no slice and below the
    // frontier, found by no look-up until its week is written.
    let Some(end) = next_row(store).await? else {
        return Ok(None);
    };
    let first = store
        .read(move |tx| {
            Box::pin(async move {
                tx.value::<Option<i64>>(
                    "SELECT min(id) FROM audit_log WHERE received_at >= $1 AND id < $2",
                    &params![since, end],
                )
                .await
            })
        })
        .await?;
    Ok(Some(first.unwrap_or(end)))
}

/// Writes the records written since the recent frontier (see [`Store::write_recent_audit_ids`]);
/// returns the slices written.
async fn write_recent_ids(
    store: &Store,
    now: i64,
    called: std::time::Instant,
) -> std::result::Result<u32, StoreError> {
    let mark = recent_mark(store).await?;
    let (mut from, mut prior) = match mark {
        Some(m) => (m.next_row, Some(m.next_row)),
        None => match recent_start(store, now).await? {
            Some(row) => (row, None),
            None => return Ok(0),
        },
    };
    // Whether a slice shorter than `SLICE_ROWS` is written (else only whole ones): the newest
    // row, read unlocked, tells first whether there is anything to write.
    let old = mark.is_none_or(|m| m.read_at <= now - SLICE_WAIT);
    let last = last_row(store).await?;
    if last <= from || (!old && last - from < SLICE_ROWS) {
        return Ok(0);
    }
    let end = if store.db().shared() {
        match next_row(store).await? {
            Some(end) => end,
            None => return Ok(0),
        }
    } else {
        last
    };
    // When `end` was read (`now` was read before the call; forgetting and the frontier's lock
    // took the time since): every record in a row below it was received before. Slices are
    // forgotten by it once the weeks pass it: a mark dated `now` would let a record received
    // in between, in a row below it, fall out of its slice and short of the weeks.
    let read_at =
        now.saturating_add(i64::try_from(called.elapsed().as_micros()).unwrap_or(i64::MAX));
    let mut done = 0;
    while from < end {
        let to = end.min(from.saturating_add(SLICE_ROWS));
        if to - from < SLICE_ROWS && !old {
            break;
        }
        if !write_recent_slice(store, (from, to), prior, read_at).await? {
            break;
        }
        prior = Some(to);
        from = to;
        done += 1;
    }
    Ok(done)
}

/// The IDs (request and transaction) of the records in rows `[from, to)`, each with its row,
/// in that order (a find's ACK has one: its request ID is its transaction ID).
const ROW_IDS: &str = "SELECT k, a FROM (
        SELECT transaction_id AS k, id AS a FROM audit_log WHERE id >= $1 AND id < $2
        UNION ALL
        SELECT request_id, id FROM audit_log
         WHERE id >= $1 AND id < $2 AND request_id IS NOT NULL AND request_id <> transaction_id
    ) ids
    ORDER BY k, a";

/// Writes the IDs of the records in rows `[from, to)` as one slice and marks `to` (read at
/// `read_at`) as the frontier, unless the stored frontier differs from `prior` (instances
/// sharing the store each write slices), in one transaction: the rows read by their IDs,
/// sorted, and appended (a slice's keys follow every key before them); then a pause twice as
/// long as the write (20 ms at least) for the ACKs' group commits. Whether it was written.
async fn write_recent_slice(
    store: &Store,
    (from, to): (i64, i64),
    prior: Option<i64>,
    read_at: i64,
) -> std::result::Result<bool, StoreError> {
    let started = std::time::Instant::now();
    let written = store
        .write(move |tx| {
            Box::pin(async move {
                let at = tx
                    .value::<Option<i64>>("SELECT max(next_row) FROM audit_recent_marks", &[])
                    .await?;
                if at != prior {
                    return Ok(false);
                }
                let sql = format!(
                    "INSERT INTO audit_ids_recent (slice, id, audit_id)
                     SELECT $1, k, a FROM ({ROW_IDS}) ids
                     WHERE true -- (SQLite reads `ON` after a bare FROM as a join's)
                     ON CONFLICT DO NOTHING"
                );
                tx.execute(&sql, &params![from, to]).await?;
                tx.execute(
                    "INSERT INTO audit_recent_marks (next_row, read_at) VALUES ($1, $2)
                     ON CONFLICT DO NOTHING",
                    &params![to, read_at],
                )
                .await?;
                Ok(true)
            })
        })
        .await?;
    tokio::time::sleep(RECENT_PAUSE.max(started.elapsed() * 2)).await;
    Ok(written)
}

/// Forgets the recent slices whose records are all written by week: those below the newest
/// mark read before the frontier by week (their records were written, so received, before
/// it), [`FORGET_AT_ONCE`] IDs a transaction (each a range at the start of the table), with a
/// pause between; then the marks before that one.
async fn forget_recent_ids(store: &Store) -> std::result::Result<(), StoreError> {
    let Some(weeks) = weeks_through(store).await? else {
        return Ok(());
    };
    let (below, frontier) = store
        .read(move |tx| {
            Box::pin(async move {
                let r = tx
                    .query_one(
                        "SELECT (SELECT max(next_row) FROM audit_recent_marks WHERE read_at <= $1),
                                (SELECT max(next_row) FROM audit_recent_marks)",
                        &params![weeks],
                    )
                    .await?;
                Ok((r.get::<Option<i64>>(0)?, r.get::<Option<i64>>(1)?))
            })
        })
        .await?;
    let Some(below) = below else {
        return Ok(());
    };
    // Each slice ends where the next begins, the last at the frontier.
    let before = if Some(below) == frontier {
        "$1"
    } else {
        "(SELECT max(slice) FROM audit_ids_recent WHERE slice <= $1)"
    };
    let sql = format!(
        "DELETE FROM audit_ids_recent WHERE (slice, id, audit_id) IN (
             SELECT slice, id, audit_id FROM audit_ids_recent WHERE slice < {before}
              ORDER BY slice, id, audit_id LIMIT $2)"
    );
    loop {
        let sql = sql.clone();
        let forgotten = store
            .write(move |tx| {
                Box::pin(async move { tx.execute(&sql, &params![below, FORGET_AT_ONCE]).await })
            })
            .await?;
        if forgotten < FORGET_AT_ONCE {
            break;
        }
        tokio::time::sleep(RECENT_PAUSE).await;
    }
    store
        .run(Access::Single, move |tx| {
            Box::pin(async move {
                tx.execute(
                    "DELETE FROM audit_recent_marks WHERE next_row < $1",
                    &params![below],
                )
                .await
            })
        })
        .await?;
    Ok(())
}

/// Recent IDs forgotten in one transaction.
const FORGET_AT_ONCE: u64 = 10_000;

/// The IDs (request and transaction) of the records received in `[from, to)` (µs) within
/// `[lo, hi)` (either end open when `None`), each with its record's row, in that order.
const SPAN_IDS: &str = "SELECT k, a FROM (
        SELECT request_id AS k, id AS a FROM audit_log
         WHERE received_at >= $1 AND received_at < $2 AND request_id IS NOT NULL
        UNION
        SELECT transaction_id, id FROM audit_log
         WHERE received_at >= $1 AND received_at < $2
    ) ids
    WHERE (CAST($3 AS TEXT) IS NULL OR k >= $3) AND (CAST($4 AS TEXT) IS NULL OR k < $4)
    ORDER BY k, a";

/// Writes the IDs of the records received in `[from, to)` (µs, within one week) within
/// `[lo, hi)` (either end open when `None`) by week, in key order.
pub(super) async fn write_span(
    tx: &mut dyn Tx,
    (from, to): (i64, i64),
    lo: Option<&str>,
    hi: Option<&str>,
) -> Result<u64> {
    let sql = format!(
        "INSERT INTO audit_ids (week, id, audit_id)
         SELECT {}, k, a FROM ({SPAN_IDS}) ids
         WHERE true -- (SQLite reads `ON` after a bare FROM as a join's)
         ON CONFLICT DO NOTHING",
        from.div_euclid(WEEK)
    );
    tx.execute(&sql, &params![from, to, lo, hi]).await
}

/// A week in µs: `audit_ids` is keyed by the record's week since the epoch.
pub(super) const WEEK: i64 = 7 * 86_400_000_000;

/// An audit record from its row (`COLUMNS` of [`records`]: the row's own ID first).
fn record_from(r: &Row) -> Result<AuditRecord> {
    let direction: String = r.get(3)?;
    Ok(AuditRecord {
        transaction_id: r.get(1)?,
        request_id: r.get(2)?,
        direction: Direction::parse(&direction).ok_or(StoreError::Corrupt("audit direction"))?,
        party: r.get(4)?,
        endpoint: r.get(5)?,
        received_at: r.get(6)?,
        responded_at: r.get(7)?,
        status: u16::try_from(r.get::<i64>(8)?).map_err(|_| StoreError::Corrupt("audit status"))?,
        outcome: r.get(9)?,
    })
}

/// Minutes up in `[from, to)` (µs).
pub(super) async fn minutes_up(tx: &mut dyn Tx, from: i64, to: i64) -> Result<u64> {
    tx.value(
        "SELECT count(*) FROM heartbeats WHERE minute >= $1 AND minute < $2",
        &params![from / MINUTE, to / MINUTE],
    )
    .await
}

/// The samples of the service levels for `[from, to)` (µs), minutes up included.
async fn sla_samples(tx: &mut dyn Tx, from: i64, to: i64) -> Result<SlaSamples> {
    let window = params![from, to];
    let ack = tx
        .column(
            "SELECT latency_us FROM audit_log WHERE direction = 'inbound'
                AND endpoint = 'POST /find-requests' AND status = 202
                AND received_at >= $1 AND received_at < $2",
            &window,
        )
        .await?;
    let completion = tx
        .column(
            "SELECT completed_at - acked_at FROM all_finds
              WHERE outcome IN ('match-yes', 'match-possible') AND state = 'done'
                AND acked_at >= $1 AND acked_at < $2",
            &window,
        )
        .await?;
    let failed = tx
        .value(
            "SELECT count(*) FROM all_finds
              WHERE state = 'failed' AND acked_at >= $1 AND acked_at < $2",
            &window,
        )
        .await?;
    // Views that ended: a `401` challenge is the first half of a view, not a view.
    let view = tx
        .column(
            "SELECT latency_us FROM audit_log WHERE direction = 'inbound'
                AND endpoint = 'GET /view-data' AND outcome <> 'challenge'
                AND received_at >= $1 AND received_at < $2",
            &window,
        )
        .await?;
    let mut counts = Vec::new();
    for sql in [
        // A no-match find's ACK (its outcome names the find's end, schema V21) counts as the
        // ACK it is.
        "SELECT endpoint || ' ' || CASE WHEN endpoint = 'POST /find-requests'
                                         AND outcome = 'no-match' THEN 'ack' ELSE outcome END,
                count(*) FROM audit_log
          WHERE direction = 'inbound' AND received_at >= $1 AND received_at < $2
          GROUP BY 1",
        "SELECT 'find ' || coalesce(outcome, state), count(*) FROM all_finds
          WHERE acked_at >= $1 AND acked_at < $2 GROUP BY 1",
        // The no-match finds that are their ACK's record alone (schema V21), by when they were
        // received: the hour's edge may fall between a find's receipt and its ACK.
        format!(
            "SELECT 'find no-match', count(*) FROM audit_log
              WHERE {NO_MATCH_ACK} AND received_at >= $1 AND received_at < $2 GROUP BY 1"
        )
        .as_str(),
    ] {
        for r in tx.query(sql, &window).await? {
            counts.push((r.get(0)?, r.get(1)?));
        }
    }
    let mut by_holdername = BTreeMap::<Uuid, SchemeSamples>::new();
    for (h, c) in completions(tx, from, to).await? {
        by_holdername.entry(h).or_default().completion = c;
    }
    for v in super::reports::views(tx, from, to).await? {
        let s = by_holdername.entry(v.holdername).or_default();
        s.view.push(v.responded_at - v.received_at);
    }
    Ok(SlaSamples {
        ack,
        completion,
        failed,
        view,
        counts,
        minutes_up: minutes_up(tx, from, to).await?,
        by_holdername,
    })
}

/// Matching finds ACKed in `[from, to)` and completed: ACK to completion, once per holdername
/// a find registered PeIs in.
async fn completions(tx: &mut dyn Tx, from: i64, to: i64) -> Result<BTreeMap<Uuid, Vec<i64>>> {
    let rows = tx
        .query(
            "SELECT DISTINCT p.holdername, f.request_id, f.completed_at - f.acked_at
               FROM all_finds f JOIN peis p ON p.request_id = f.request_id
              WHERE f.state = 'done' AND f.outcome IN ('match-yes', 'match-possible')
                AND f.acked_at >= $1 AND f.acked_at < $2",
            &params![from, to],
        )
        .await?;
    let mut out = BTreeMap::<Uuid, Vec<i64>>::new();
    for r in rows {
        let h =
            Uuid::try_parse(&r.get::<String>(0)?).map_err(|_| StoreError::Corrupt("holdername"))?;
        out.entry(h).or_default().push(r.get(2)?);
    }
    Ok(out)
}
