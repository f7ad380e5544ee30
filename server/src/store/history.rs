//! Finds once ended, the service levels' hourly tallies, and the retention purge.
//!
//! `find_requests` is the hot table: open finds, and ended ones for [`HOT_FOR`] (a request ID
//! sent again within it is the same find, ACKed as a duplicate). [`Store::settle_finds`] moves
//! ended finds older than that to `find_history` in the order they were ACKed, a batch a call, so
//! that the hot table's random request-ID keys stay as few as a day's finds whatever the years
//! kept, and the history is only ever appended to. A no-match find is its ACK's audit record
//! alone (schema V21; on PostgreSQL its hot row, there for its ID, is deleted rather than
//! moved). Readers of ended finds read both tables (`all_finds`) and those audit records.
//!
//! The service levels are tallied by the hour once an hour has closed (see `crate::sla`): the
//! store keeps each hour's tally as the bytes it is given, and the first hour not yet tallied.
//!
//! The purge deletes the rows older than the retention cutoff, a batch per transaction, so
//! that the ACKs' group commits run between them.

use std::time::Duration;

use super::sql::{insert_rows, params, Access, Dialect, Row, Tx, Value};
use super::{Result, Store, StoreError};
use uuid::Uuid;

use crate::model::{AuditRecord, FindOutcome, FindState, StoredFind, ViewFact};

/// How long an ended find stays in the hot table: a request ID sent again within it is
/// recognised as the same find.
pub const HOT_FOR: Duration = Duration::from_secs(24 * 3600);

/// The columns an ended find keeps, in both tables.
const ENDED_COLUMNS: &str =
    "request_id, received_at, acked_at, state, outcome, reason, rules_version, pat_id,
     completed_at";

/// A find that ended, as the history keeps it (and as `finds seed-history` writes it).
#[derive(Debug, Clone, PartialEq)]
pub struct EndedFind {
    /// The PFS's request ID.
    pub request_id: String,
    /// When it was received, µs.
    pub received_at: i64,
    /// When it was ACKed, µs.
    pub acked_at: i64,
    /// `Done` or `Failed`.
    pub state: FindState,
    /// What matching decided (done finds).
    pub outcome: Option<FindOutcome>,
    /// Why it failed (never personal data).
    pub reason: Option<String>,
    /// When it ended, µs.
    pub completed_at: i64,
}

/// What [`Store::seed_history`] writes in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Seed {
    /// Ended finds, into the history.
    pub finds: Vec<EndedFind>,
    /// Their audit records.
    pub audit: Vec<AuditRecord>,
    /// The PeIs their matches registered.
    pub peis: Vec<SeededPei>,
    /// Views answered with a payload, for PDP's reports and the service levels by holdername.
    pub views: Vec<ViewFact>,
}

/// A PeI a seeded match registered (its pension's and member's columns say `seeded`).
#[derive(Debug, Clone, PartialEq)]
pub struct SeededPei {
    /// The PeI (also its asset GUID).
    pub pei: Uuid,
    /// Its scheme.
    pub holdername: Uuid,
    /// The find that registered it.
    pub request_id: String,
    /// When it was registered, µs.
    pub registered_at: i64,
}

/// What one call of [`Store::purge_before`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Audit records.
    pub audit: u64,
    /// Ended finds (hot table and history; a no-match find is counted in `audit`).
    pub finds: u64,
    /// Hourly tallies.
    pub hours: u64,
    /// Audit IDs written for look-ups.
    pub ids: u64,
}

impl Purged {
    /// Rows deleted in all.
    pub fn total(&self) -> u64 {
        self.audit + self.finds + self.hours + self.ids
    }
}

// === impl Store ===

impl Store {
    // --- history ---

    /// Moves up to about `limit` finds that ended and were ACKed before `before` (µs) from the
    /// hot table to the history, oldest first; returns how many left the hot table (on
    /// PostgreSQL, no-match finds' rows kept for their IDs, deleted). Instances sharing the
    /// store may call it at once: each find moves once.
    pub async fn settle_finds(&self, before: i64, limit: u32) -> Result<u64, StoreError> {
        self.write(move |tx| Box::pin(async move { settle(tx, before, limit).await }))
            .await
    }

    /// Writes ended finds, their audit records, the PeIs their matches registered and the
    /// views of them straight into the store, as an endpoint that ran for years would have left
    /// them (`finds seed-history`; nothing else).
    pub async fn seed_history(&self, seeded: Seed) -> Result<(), StoreError> {
        self.write(move |tx| Box::pin(async move { seed(tx, &seeded).await }))
            .await
    }

    /// Deletes the rows older than `cutoff` (µs), a batch per transaction, each followed by a
    /// pause of [`PURGE_PAUSE`] or three times the batch's own time, whichever is longer: the
    /// ACKs' group commits have the writer at least three quarters of the time however slow the
    /// disk. Returns the audit records deleted.
    pub async fn purge_audit(&self, cutoff: i64) -> Result<u64, StoreError> {
        let mut audit = 0;
        loop {
            let began = std::time::Instant::now();
            let purged = self.purge_before(cutoff, PURGE_BATCH).await?;
            audit += purged.audit;
            if purged.total() == 0 {
                return Ok(audit);
            }
            tokio::time::sleep(PURGE_PAUSE.max(began.elapsed() * 3)).await;
        }
    }

    // --- service levels by the hour ---

    /// The first hour (since the epoch) not yet tallied; `None` before the first tally.
    pub async fn sla_next_hour(&self) -> Result<Option<i64>, StoreError> {
        self.read(|tx| {
            Box::pin(async move {
                tx.value::<Option<i64>>("SELECT max(next_hour) FROM sla_tallied", &[])
                    .await
            })
        })
        .await
    }

    /// Records the tally of `hour` (`None`: the hour held nothing) and that every hour up to
    /// `next` is tallied, if no other instance has tallied it first: true when this call did.
    pub async fn put_sla_hour(
        &self,
        hour: i64,
        next: i64,
        tally: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        self.run(Access::Single, move |tx| {
            Box::pin(async move {
                let moved = tx
                    .execute(
                        "INSERT INTO sla_tallied (id, next_hour) VALUES (1, $2)
                         ON CONFLICT (id) DO UPDATE SET next_hour = excluded.next_hour
                          WHERE sla_tallied.next_hour = $1",
                        &params![hour, next],
                    )
                    .await?;
                if moved == 0 {
                    return Ok(false);
                }
                if let Some(tally) = tally {
                    tx.execute(
                        "INSERT INTO sla_hours (hour, tally) VALUES ($1, $2)
                         ON CONFLICT (hour) DO UPDATE SET tally = excluded.tally",
                        &params![hour, tally],
                    )
                    .await?;
                }
                Ok(true)
            })
        })
        .await
    }

    /// Forgets every hour's tally and the audit IDs written for look-ups, so that both are
    /// derived again from every hour (after `finds seed-history` rewrote the past).
    pub async fn forget_derived(&self) -> Result<(), StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                for table in [
                    "sla_hours",
                    "sla_tallied",
                    "audit_ids",
                    "audit_ids_through",
                    "audit_ids_recent",
                    "audit_recent_marks",
                ] {
                    tx.execute(&format!("DELETE FROM {table}"), &[]).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// The tallies of the hours in `[from, to)` (hours since the epoch) that hold any, oldest
    /// first.
    pub async fn sla_hours(&self, from: i64, to: i64) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        self.read(move |tx| {
            Box::pin(async move {
                tx.query(
                    "SELECT hour, tally FROM sla_hours WHERE hour >= $1 AND hour < $2
                      ORDER BY hour",
                    &params![from, to],
                )
                .await?
                .iter()
                .map(|r| Ok((r.get(0)?, r.get(1)?)))
                .collect()
            })
        })
        .await
    }

    /// The first moment at or after `from` (µs) that anything was received (the audit trail),
    /// if any: where tallying goes next over hours that held nothing.
    pub async fn next_activity(&self, from: i64) -> Result<Option<i64>, StoreError> {
        self.read(move |tx| {
            Box::pin(async move {
                tx.value::<Option<i64>>(
                    "SELECT min(received_at) FROM audit_log WHERE received_at >= $1",
                    &params![from],
                )
                .await
            })
        })
        .await
    }

    // --- retention ---

    /// Deletes up to `limit` rows of each of the audit trail, the ended finds, the hourly
    /// tallies and the audit IDs written for look-ups older than `cutoff` (µs), in one
    /// transaction, after moving the audit trail's retention cutoff to it (never back). Called
    /// until it deletes nothing.
    pub async fn purge_before(&self, cutoff: i64, limit: u32) -> Result<Purged, StoreError> {
        self.write(move |tx| Box::pin(async move { purge(tx, cutoff, limit).await }))
            .await
    }
}

// === units of work ===

/// A day in µs: the history's index by request ID leads with `acked_at / DAY`.
const DAY: i64 = 86_400_000_000;

/// An hour in µs.
pub const HOUR: i64 = 3_600_000_000;

/// Rows of each kind one purge transaction deletes at most. The writer runs each between two
/// batches of ACKs, which wait for it: at a thousand, the ACK's p99.9 while a year was purged
/// from a store of six years was 1.8x what it was after; at 250, 1.06x (BENCHMARKS.md, "The
/// purge a quarter the size" and "Six years in one run with the purge at 250 rows"). A year to
/// purge takes longer; a day's is a few thousand rows either way.
const PURGE_BATCH: u32 = 250;

/// The shortest pause between purge transactions.
const PURGE_PAUSE: Duration = Duration::from_millis(20);

/// Moves ended finds ACKed before `before`, up to about `limit` of them, to the history.
async fn settle(tx: &mut dyn Tx, before: i64, limit: u32) -> Result<u64> {
    // The ACK time below which `limit` rows lie (a group commit's finds share one, so a few
    // more may move): both statements below then name the same rows.
    let bound = nth_acked(tx, "find_requests", before, i64::from(limit))
        .await?
        .map_or(before, |b| b.saturating_add(1));
    let ended = "state IN ('done', 'failed') AND acked_at < $1";
    match tx.dialect() {
        // One writer: nothing changes the hot table between the copy and the delete. (No row
        // is there for its ID alone on SQLite.)
        Dialect::Sqlite => {
            tx.execute(
                &format!(
                    "INSERT INTO find_history ({ENDED_COLUMNS})
                     SELECT {ENDED_COLUMNS} FROM find_requests WHERE {ended} AND NOT id_only
                      ORDER BY acked_at"
                ),
                &params![bound],
            )
            .await?;
            tx.execute(
                &format!("DELETE FROM find_requests WHERE {ended}"),
                &params![bound],
            )
            .await
        }
        // A row deleted by another instance's move meanwhile is not returned here: each find is
        // moved by whichever delete takes it. A no-match find's row was there for its ID alone
        // (its audit record is the find): it goes, and is not moved.
        Dialect::Postgres => {
            let deleted = tx
                .execute(
                    &format!("DELETE FROM find_requests WHERE {ended} AND id_only"),
                    &params![bound],
                )
                .await?;
            let moved = tx
                .execute(
                    &format!(
                        "WITH moved AS (
                             DELETE FROM find_requests WHERE {ended} RETURNING {ENDED_COLUMNS}
                         )
                         INSERT INTO find_history ({ENDED_COLUMNS})
                         SELECT {ENDED_COLUMNS} FROM moved ORDER BY acked_at"
                    ),
                    &params![bound],
                )
                .await?;
            Ok(deleted + moved)
        }
    }
}

/// One ended find by request ID from the history, looked up one day at a time over the days
/// the history holds.
pub(super) async fn find_in_history(
    tx: &mut dyn Tx,
    request_id: &str,
) -> Result<Option<StoredFind>> {
    let held = tx
        .query_one(
            "SELECT (SELECT min(acked_at) FROM find_history),
                    (SELECT max(acked_at) FROM find_history)",
            &[],
        )
        .await?;
    let (Some(first), Some(last)) = (held.get::<Option<i64>>(0)?, held.get::<Option<i64>>(1)?)
    else {
        return Ok(None);
    };
    let sql = format!(
        "WITH RECURSIVE days (d) AS (
             SELECT CAST($1 AS {{int64}}) / {DAY} UNION ALL
             SELECT d + 1 FROM days WHERE d < CAST($2 AS {{int64}}) / {DAY}
         )
         SELECT {ENDED_COLUMNS} FROM days JOIN find_history h
             ON h.acked_at / {DAY} = days.d AND h.request_id = $3"
    );
    tx.query_opt(&sql, &params![first, last, request_id])
        .await?
        .as_ref()
        .map(stored_from)
        .transpose()
}

/// The ACK time of `table`'s row `n` (from 0) among those ACKed before `before`, oldest first;
/// `None` when there are no more: where a batch of about `n` rows ends.
async fn nth_acked(tx: &mut dyn Tx, table: &str, before: i64, n: i64) -> Result<Option<i64>> {
    tx.query_opt(
        &format!(
            "SELECT acked_at FROM {table} WHERE acked_at < $1 ORDER BY acked_at LIMIT 1 OFFSET $2"
        ),
        &params![before, n],
    )
    .await?
    .map(|r| r.get::<i64>(0))
    .transpose()
}

/// Inserts ended finds into the history, audit records into the trail, and seeded PeIs and
/// views.
async fn seed(tx: &mut dyn Tx, seeded: &Seed) -> Result<()> {
    let finds = seeded.finds.iter().map(|f| {
        vec![
            Value::from(f.request_id.as_str()),
            Value::from(f.received_at),
            Value::from(f.acked_at),
            Value::from(f.state),
            Value::from(f.outcome),
            Value::from(f.reason.as_deref()),
            Value::Null,
            Value::Null,
            Value::from(f.completed_at),
        ]
    });
    let sql = format!("INSERT INTO find_history ({ENDED_COLUMNS})");
    insert_rows(tx, &sql, finds.collect()).await?;
    let audit = seeded.audit.iter().map(|a| {
        vec![
            Value::from(a.transaction_id.as_str()),
            Value::from(a.request_id.as_deref()),
            Value::from(a.direction.as_str()),
            Value::from(a.party.as_str()),
            Value::from(a.endpoint.as_str()),
            Value::from(a.received_at),
            Value::from(a.responded_at),
            Value::from(i64::from(a.status)),
            Value::from(a.latency_micros()),
            Value::from(a.outcome.as_str()),
        ]
    });
    insert_rows(
        tx,
        "INSERT INTO audit_log (transaction_id, request_id, direction, party, endpoint,
             received_at, responded_at, status, latency_us, outcome)",
        audit.collect(),
    )
    .await?;
    // A seeded PeI's pension, member, reason and rules say `seeded`.
    let peis = seeded.peis.iter().map(|p| {
        let mut row = vec![
            Value::from(p.pei),
            Value::from(p.pei),
            Value::from(p.holdername),
        ];
        row.extend(["seeded"; 3].map(Value::from));
        row.extend(["match-yes", "seeded", "seeded"].map(Value::from));
        row.extend([
            Value::from(p.request_id.as_str()),
            Value::from("registered"),
            Value::from(p.registered_at),
            Value::from(p.registered_at),
        ]);
        row
    });
    insert_rows(
        tx,
        "INSERT INTO peis (pei, asset_guid, holdername, pension_asset_guid, member_id,
             scheme_name, match_status, reason, rules_version, request_id, state, created_at,
             registered_at)",
        peis.collect(),
    )
    .await?;
    let views = seeded.views.iter().map(|v| {
        let mut row = vec![
            Value::from(v.holdername),
            Value::from(v.received_at),
            Value::from(v.responded_at),
        ];
        row.extend(v.flags().map(Value::from));
        row
    });
    insert_rows(
        tx,
        "INSERT INTO report_views (holdername, received_at, responded_at, contact_scheme,
             missing_admin, temp_error, eri_ano, eri_ppf, eri_trn, accrued_ano, accrued_ppf,
             accrued_trn)",
        views.collect(),
    )
    .await
}

/// Moves the retention cutoff and deletes up to `limit` rows of each kind older than it.
pub(super) async fn purge(tx: &mut dyn Tx, cutoff: i64, limit: u32) -> Result<Purged> {
    tx.execute(
        "INSERT INTO audit_retention (id, cutoff) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE
             SET cutoff = {greatest}(audit_retention.cutoff, excluded.cutoff)",
        &params![cutoff],
    )
    .await?;
    let limit = i64::from(limit);
    let audit = tx
        .execute(
            "DELETE FROM audit_log WHERE id IN (
                 SELECT id FROM audit_log WHERE received_at < $1 ORDER BY received_at LIMIT $2
             )",
            &params![cutoff, limit],
        )
        .await?;
    let mut finds = 0;
    for table in ["find_history", "find_requests"] {
        let bound = nth_acked(tx, table, cutoff, limit).await?.unwrap_or(cutoff);
        finds += tx
            .execute(
                &format!("DELETE FROM {table} WHERE acked_at < $1 AND state IN ('done', 'failed')"),
                &params![bound],
            )
            .await?;
    }
    let hours = tx
        .execute(
            "DELETE FROM sla_hours WHERE hour < $1",
            &params![cutoff.div_euclid(HOUR)],
        )
        .await?;
    // The IDs of whole weeks before the cutoff (a part-week's point at nothing once purged).
    let ids = tx
        .execute(
            "DELETE FROM audit_ids WHERE (week, id, audit_id) IN (
                 SELECT week, id, audit_id FROM audit_ids WHERE week < $1 ORDER BY week LIMIT $2
             )",
            &params![cutoff.div_euclid(super::audit::WEEK), limit],
        )
        .await?;
    Ok(Purged {
        audit,
        finds,
        hours,
        ids,
    })
}

/// A stored find from an ended row (`ENDED_COLUMNS`).
fn stored_from(r: &Row) -> Result<StoredFind> {
    Ok(StoredFind {
        request_id: r.get(0)?,
        received_at: r.get(1)?,
        acked_at: r.get(2)?,
        state: r.get(3)?,
        has_find_data: false,
        outcome: r.get(4)?,
        reason: r.get(5)?,
        completed_at: r.get(8)?,
    })
}
