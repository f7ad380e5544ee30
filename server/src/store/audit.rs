//! The audit trail, heartbeats, the service levels' samples, and the daily jobs' runs.
//!
//! The trail is append-only: the schema refuses any update, and any delete of a row newer than
//! the retention cutoff, which only [`Store::purge_audit`] moves forward (CoCo2.1.6). Its rows
//! are written by each backend's group commit, beside the find ACKs.

use std::collections::BTreeMap;
use std::time::Duration;

use uuid::Uuid;

use super::sql::{insert_rows_then, params, Access, Row, Tx};
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
        self.read(move |tx| Box::pin(async move { records(tx, from, to, id).await }))
            .await
    }

    /// Writes the IDs of audit records received before `through` (µs) into the look-up by ID,
    /// oldest first, from where the last call stopped, at most `limit` spans (a week each at
    /// most) a call; returns the spans written. Look-ups read the records not yet written by
    /// time.
    pub async fn write_audit_ids(&self, through: i64, limit: u32) -> Result<u32, StoreError> {
        write_ids_in(self, Tier::Weeks, through, limit).await
    }

    /// The instant (µs) before which every audit record's IDs are written for look-ups.
    pub async fn audit_ids_through(&self) -> Result<Option<i64>, StoreError> {
        through(self, Tier::Weeks).await
    }

    /// Writes the IDs of the audit records received since those written by week (or since
    /// this was last called), before `through` (µs), into the recent look-up, a slice of time
    /// at a time; forgets the slices written by week since. Returns the slices written.
    /// Look-ups read the records not yet written either way by time.
    pub async fn write_recent_audit_ids(&self, through: i64) -> Result<u32, StoreError> {
        forget_recent_ids(self).await?;
        write_ids_in(self, Tier::Recent, through, u32::MAX).await
    }

    /// The instant (µs) before which every audit record's IDs are written, by week or in the
    /// recent look-up.
    pub async fn recent_audit_ids_through(&self) -> Result<Option<i64>, StoreError> {
        through(self, Tier::Recent).await
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

/// Audit records received in `[from, to)`, for one transaction or find request ID when given,
/// oldest first.
async fn records(
    tx: &mut dyn Tx,
    from: i64,
    to: i64,
    id: Option<String>,
) -> Result<Vec<AuditRecord>> {
    const COLUMNS: &str = "a.id, a.transaction_id, a.request_id, a.direction, a.party,
        a.endpoint, a.received_at, a.responded_at, a.status, a.outcome";
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
    // The window first narrowed to the days the trail holds. Records whose IDs are written by
    // week in `audit_ids` (received before `weeks`): one seek a week; by slice of time in
    // `audit_ids_recent` (received before `sliced`, the hour or so since): one seek a slice;
    // the rest (the last 75 to 90 s): read by time.
    let held = tx
        .query_one(
            "SELECT (SELECT min(received_at) FROM audit_log),
                    (SELECT max(received_at) FROM audit_log),
                    (SELECT max(next_at) FROM audit_ids_through),
                    (SELECT max(next_at) FROM audit_recent_through)",
            &[],
        )
        .await?;
    let (Some(first), Some(last)) = (held.get::<Option<i64>>(0)?, held.get::<Option<i64>>(1)?)
    else {
        return Ok(Vec::new());
    };
    let weeks = held.get::<Option<i64>>(2)?.unwrap_or(i64::MIN);
    let sliced = held.get::<Option<i64>>(3)?.unwrap_or(i64::MIN).max(weeks);
    let (from, to) = (from.max(first), to.min(last.saturating_add(1)));
    if from >= to {
        return Ok(Vec::new());
    }
    let sql = format!(
        "WITH RECURSIVE weeks (w) AS (
             SELECT CAST($1 AS {{int64}}) / {WEEK} UNION ALL
             SELECT w + 1 FROM weeks WHERE w < (CAST($2 AS {{int64}}) - 1) / {WEEK}
         ), slices (s) AS (
             SELECT coalesce((SELECT max(slice) FROM audit_ids_recent
                               WHERE slice <= CAST($6 AS {{int64}})), CAST($6 AS {{int64}}))
             UNION ALL
             SELECT (SELECT min(slice) FROM audit_ids_recent
                      WHERE slice > s AND slice < CAST($7 AS {{int64}}))
               FROM slices WHERE s IS NOT NULL
         )
         SELECT {COLUMNS} FROM weeks
           JOIN audit_ids i ON i.week = weeks.w AND i.id = $5
           JOIN audit_log a ON a.id = i.audit_id
          WHERE a.received_at >= $1 AND a.received_at < $2
         UNION
         SELECT {COLUMNS} FROM slices
           JOIN audit_ids_recent i ON i.slice = slices.s AND i.id = $5
           JOIN audit_log a ON a.id = i.audit_id
          WHERE a.received_at >= $6 AND a.received_at < $7
         UNION
         SELECT {COLUMNS} FROM audit_log a
          WHERE a.received_at >= $3 AND a.received_at < $4
            AND (a.request_id = $5 OR a.transaction_id = $5)
         ORDER BY 7, 1"
    );
    let by_week = (from, to.min(weeks));
    let as_recent = (from.max(weeks), to.min(sliced));
    let recent = (from.max(sliced), to);
    let empty = |(a, b): (i64, i64)| if a < b { (a, b) } else { (0, 0) };
    let (by_week, as_recent, recent) = (empty(by_week), empty(as_recent), empty(recent));
    let bound = params![
        by_week.0,
        by_week.1,
        recent.0,
        recent.1,
        id,
        as_recent.0,
        as_recent.1
    ];
    tx.query(&sql, &bound)
        .await?
        .iter()
        .map(record_from)
        .collect()
}

/// Where audit records' IDs are written for look-ups by ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    /// `audit_ids`, keyed by the record's week: written once an hour has closed
    /// (`upkeep::IDS_AFTER`), in ID order, a week's part of the table at a time.
    Weeks,
    /// `audit_ids_recent`, keyed by the start of the slice of time the record was written in:
    /// the records received since those written by week, a slice of at most
    /// [`Tier::at_once`] records a transaction, each slice after every one before it (appended
    /// at the table's end, not spread over its pages); forgotten once written by week.
    Recent,
}

impl Tier {
    /// The table holding the instant before which every record's IDs are in this tier.
    fn through_table(self) -> &'static str {
        match self {
            Tier::Weeks => "audit_ids_through",
            Tier::Recent => "audit_recent_through",
        }
    }

    /// The end of a span written at once from `from` (µs): the rest of its week; ten minutes
    /// at most for a slice (cut short to [`Tier::at_once`] records).
    fn span_end(self, from: i64) -> i64 {
        match self {
            Tier::Weeks => (from.div_euclid(WEEK) + 1).saturating_mul(WEEK),
            Tier::Recent => from.saturating_add(10 * MINUTE),
        }
    }

    /// Records a span holds at most to have their IDs written in one transaction: a week's
    /// span beyond is written in sixteen parts of the ID space ([`id_parts`]); a slice is cut
    /// short.
    fn at_once(self) -> i64 {
        match self {
            Tier::Weeks => 100_000,
            // Written while the ACKs' group commits wait for the writer: short transactions.
            Tier::Recent => 10_000,
        }
    }
}

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

/// The instant (µs) before which every audit record's IDs are written in `tier` (by week; or
/// by week or in the recent look-up).
async fn through(store: &Store, tier: Tier) -> std::result::Result<Option<i64>, StoreError> {
    store
        .read(move |tx| {
            Box::pin(async move {
                let sql = format!("SELECT max(next_at) FROM {}", tier.through_table());
                tx.value::<Option<i64>>(&sql, &[]).await
            })
        })
        .await
}

/// Writes the IDs of the audit records received before `through` into `tier`, oldest first,
/// from where the last call stopped (for [`Tier::Recent`], at the earliest where those written
/// by week end), at most `limit` spans ([`Tier::span_end`]) a call; returns the spans written.
/// A span is written in one transaction; a week's holding over [`Tier::at_once`] records in one
/// a part of the ID space ([`id_parts`]), a slice cut short. Several instances may call it at
/// once (an ID written twice is written once).
async fn write_ids_in(
    store: &Store,
    tier: Tier,
    through: i64,
    limit: u32,
) -> std::result::Result<u32, StoreError> {
    // The frontier as stored: each span moves it on only from where it was (another instance
    // may have moved it meanwhile), though the writing starts at the frontier by week when that
    // is further on.
    let mut stored = self::through(store, tier).await?;
    let mut from = match (tier, stored) {
        (Tier::Weeks, Some(at)) => at,
        (Tier::Recent, at) => match (at, store.audit_ids_through().await?) {
            (Some(at), weeks) => weeks.map_or(at, |w| w.max(at)),
            (None, Some(weeks)) => weeks,
            // Nothing written by week yet: from the first record, unless the trail goes back
            // further than a few hours (its IDs are written by week first).
            (None, None) => match store.next_activity(i64::MIN).await? {
                Some(t) if t >= through - 3 * HOUR => t,
                _ => return Ok(0),
            },
        },
        (Tier::Weeks, None) => match store.next_activity(i64::MIN).await? {
            Some(t) => t,
            None => return Ok(0),
        },
    };
    let mut done = 0;
    while from < through && done < limit {
        // By week, the rest of the week at once: written into an empty part of the table in ID
        // order when catching up, rather than a few minutes' IDs spread over the week.
        let mut to = tier.span_end(from).min(through);
        let mut count = records_in(store, from, to).await?;
        // A slice holds `at_once` records at most: cut short to about that many (the records
        // spread evenly), then halved while a burst holds more.
        if tier == Tier::Recent && count > tier.at_once() {
            let part = i128::from(to - from) * i128::from(tier.at_once()) / i128::from(count);
            to = from + i64::try_from(part).unwrap_or(i64::MAX).max(1);
            count = records_in(store, from, to).await?;
            while count > tier.at_once() && to - from > 1 {
                to = from + (to - from) / 2;
                count = records_in(store, from, to).await?;
            }
        }
        let next = if count == 0 {
            match store.next_activity(to).await? {
                Some(t) => t.clamp(to, through),
                None => through,
            }
        } else {
            match tier {
                Tier::Weeks => {
                    for (lo, hi) in id_parts(count, tier.at_once()) {
                        store
                            .write(move |tx| {
                                Box::pin(async move { write_span(tx, (from, to), lo, hi).await })
                            })
                            .await?;
                    }
                }
                Tier::Recent => write_slice(store, (from, to)).await?,
            }
            to
        };
        let moved = store
            .run(Access::Single, move |tx| {
                Box::pin(async move {
                    let table = tier.through_table();
                    let sql = format!(
                        "INSERT INTO {table} (id, next_at) VALUES (1, $2)
                         ON CONFLICT (id) DO UPDATE SET next_at = excluded.next_at
                          WHERE {table}.next_at = $1"
                    );
                    tx.execute(&sql, &params![stored, next]).await
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

/// Forgets the recent IDs that are now written by week (every slice that ends at the frontier
/// by week or before), [`FORGET_AT_ONCE`] a transaction (each a range at the start
/// of the table), with a pause between.
async fn forget_recent_ids(store: &Store) -> std::result::Result<(), StoreError> {
    let Some(weeks) = store.audit_ids_through().await? else {
        return Ok(());
    };
    // Each slice ends where the next begins, the last where the recent IDs are written through.
    let before = match through(store, Tier::Recent).await? {
        Some(recent) if recent > weeks => {
            "(SELECT max(slice) FROM audit_ids_recent WHERE slice <= $1)"
        }
        _ => "$1",
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
                Box::pin(async move { tx.execute(&sql, &params![weeks, FORGET_AT_ONCE]).await })
            })
            .await?;
        if forgotten < FORGET_AT_ONCE {
            return Ok(());
        }
        tokio::time::sleep(RECENT_PAUSE).await;
    }
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

/// Writes the IDs of the records received in `[from, to)` (µs) as one recent slice: read
/// beside the writer, then appended in one transaction (a slice's keys follow every key
/// before them), then a pause twice as long as the write (20 ms at least) for the ACKs' group
/// commits.
async fn write_slice(store: &Store, (from, to): (i64, i64)) -> std::result::Result<(), StoreError> {
    let ids = store
        .read(move |tx| {
            Box::pin(async move {
                tx.query(SPAN_IDS, &params![from, to, None::<String>, None::<String>])
                    .await?
                    .iter()
                    .map(|r| Ok(params![from, r.get::<String>(0)?, r.get::<i64>(1)?].to_vec()))
                    .collect::<Result<Vec<_>>>()
            })
        })
        .await?;
    let started = std::time::Instant::now();
    store
        .write(move |tx| {
            Box::pin(async move {
                insert_rows_then(
                    tx,
                    "INSERT INTO audit_ids_recent (slice, id, audit_id)",
                    ids,
                    "ON CONFLICT DO NOTHING",
                )
                .await
            })
        })
        .await?;
    tokio::time::sleep(RECENT_PAUSE.max(started.elapsed() * 2)).await;
    Ok(())
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
        "SELECT endpoint || ' ' || outcome, count(*) FROM audit_log
          WHERE direction = 'inbound' AND received_at >= $1 AND received_at < $2
          GROUP BY endpoint, outcome",
        "SELECT 'find ' || coalesce(outcome, state), count(*) FROM all_finds
          WHERE acked_at >= $1 AND acked_at < $2 GROUP BY 1",
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
