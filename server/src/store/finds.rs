//! The find queue.
//!
//! A find request with a match is one row, inserted queued with its sealed find data by the
//! writer's group commit at its ACK. A no-match find is already at its end at its ACK, and is
//! its ACK's audit record alone, outcome `no-match` (schema V21; on PostgreSQL it also has a
//! row in the hot table for a day, so that a repeat of its ID at another instance is one).
//! The pipeline claims queued rows under a lease (expired leases first, then the oldest queued),
//! records what matching produced and the PAT its UAT was swapped for, and ends the row once:
//! `done` or `failed`, its find data deleted in the same statement. Every end requires
//! `state = 'working'`, so a find is ended once; a claim's attempt number fences it against a
//! task that outlived its lease. `find_requests_open`, a partial index over queued and
//! working rows, keeps claims proportional to the open finds, not to the table.

use std::sync::atomic::Ordering;
use std::time::Duration;

use uuid::Uuid;

use super::group_commit::FindRow;
use super::history;
use super::peis::{self, PatRow};
use super::sql::{params, Access, Dialect, Row, Tx};
use super::{sha256_hex, AppendError, Result, Store, StoreError};
use crate::model::AuditRecord;
use crate::model::{
    AppendOutcome, Claimed, Decided, FailedFind, FindOutcome, FindState, NewFind, NewPei, PeiState,
    StoredFind, StoredPei,
};

// === impl Store ===

impl Store {
    // --- the find ACK ---

    /// Makes a find request durable; resolves once its transaction is committed and synced.
    /// Matched find data is sealed here, on the caller's task. A no-match is stored as its
    /// ACK's audit record alone, whose outcome is set to `no-match` here (schema V21).
    pub async fn append(
        &self,
        find: NewFind,
        mut audit: AuditRecord,
    ) -> Result<AppendOutcome, AppendError> {
        let queued = matches!(find.decided, Decided::Matched(_));
        if queued && self.pending() >= self.inner.max_pending {
            return Err(AppendError::Overloaded);
        }
        let sealed = match &find.decided {
            Decided::NoMatch => {
                audit.outcome = FindOutcome::NoMatch.as_str().into();
                None
            }
            Decided::Matched(body) => Some(self.inner.key.seal(find.request_id.as_bytes(), body)),
        };
        let row = FindRow {
            request_id: find.request_id,
            received_at: find.received_at,
            sealed,
        };
        // Counted before the commit, so that no end (which needs the commit) can come first;
        // taken back unless it was stored as new.
        if queued {
            self.inner.pending.fetch_add(1, Ordering::AcqRel);
        }
        let out = self.db().group_commit().append(row, audit).await;
        if queued && !matches!(out, Ok(AppendOutcome::Created)) {
            self.ended();
        }
        out
    }

    /// Queues an audit record for the next commit without waiting for it. If the writer is
    /// saturated (room is kept for find appends) the record is dropped and counted
    /// (`pdp_audit_dropped_total`) rather than holding a response.
    pub fn audit(&self, record: AuditRecord) {
        if !self.db().group_commit().audit(record) {
            crate::metrics::audit_dropped();
        }
    }

    /// Waits until everything queued before this call is committed.
    pub async fn flush(&self) {
        self.db().group_commit().flush().await
    }

    /// Waits until the store's writer has read what it needs to take find appends (on SQLite,
    /// the last day's IDs, for recognising repeats): `serve` waits for it before it takes
    /// finds, so that the first ACKs after a start do not. A command that appends nothing never
    /// pays for it.
    pub async fn prepare_appends(&self) {
        self.db().group_commit().prepare().await
    }

    /// Commits everything queued before this call, stops the writer and waits for it: later
    /// writes fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        self.db().group_commit().close().await
    }

    /// Find requests stored and not at an end: what shedding is decided on, and what
    /// `pdp_find_queue_depth` shows (read when metrics are rendered, so the gauge is never a
    /// stale write that lost a race). Exact on a store of one instance; on a store several
    /// instances share, read again from the database every second (and exact after
    /// [`Store::count_pending`]).
    pub fn pending(&self) -> u64 {
        self.inner.pending.load(Ordering::Acquire)
    }

    fn ended(&self) {
        let _ = self
            .inner
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                Some(p.saturating_sub(1))
            });
    }

    // --- the pipeline ---

    /// At start: finds a previous process of a single-instance store was working on are queued
    /// again (on a shared store they wait for their leases), and the open finds are counted.
    pub async fn requeue_working(&self) -> Result<u64, StoreError> {
        let n = if self.db().shared() {
            // Another instance may be working them: their leases decide.
            0
        } else {
            self.run(Access::Single, |tx| Box::pin(requeue_working(tx)))
                .await?
        };
        self.count_pending().await?;
        Ok(n)
    }

    /// Claims up to `limit` finds under a lease of `lease`, expired leases first, then the
    /// oldest queued; their find data opened.
    pub async fn claim(&self, lease: Duration, limit: usize) -> Result<Vec<Claimed>, StoreError> {
        let lease = lease.as_micros() as i64;
        let now = crate::now_micros();
        let rows = self
            .run(Access::Single, move |tx| {
                Box::pin(claim(tx, now, lease, limit))
            })
            .await?;
        let key = &self.inner.key;
        Ok(rows
            .into_iter()
            .map(|(sealed, mut c)| {
                c.find_data = sealed.and_then(|s| key.open(c.request_id.as_bytes(), &s).ok());
                c
            })
            .collect())
    }

    /// Extends the lease of a find this process is working (claim `attempts`) to `lease` from
    /// now; false when the claim no longer holds it.
    pub async fn renew_lease(
        &self,
        request_id: &str,
        attempts: i64,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let until = crate::now_micros() + lease.as_micros() as i64;
        let id = request_id.to_owned();
        self.run(Access::Single, move |tx| {
            Box::pin(async move { renew(tx, &id, attempts, until).await })
        })
        .await
    }

    /// Records, in one commit, the PeIs a find produced and the rules versions that decided it
    /// (idempotent: an existing PeI keeps its state and PAT), and the PAT its UAT was just
    /// swapped for, if it was (sealed here). Returns the new PAT's id and the find's PeIs still
    /// waiting to be registered.
    pub async fn record_matches(
        &self,
        request_id: &str,
        peis: Vec<NewPei>,
        pat: Option<(&str, Option<i64>)>,
    ) -> Result<(Option<String>, Vec<StoredPei>), StoreError> {
        let pat = pat.map(|(p, expires_at)| {
            let pat_id = Uuid::new_v4().hyphenated().to_string();
            PatRow {
                sealed: self.inner.key.seal(pat_id.as_bytes(), p.as_bytes()),
                sha256: sha256_hex(p),
                pat_id,
                expires_at,
            }
        });
        let pat_id = pat.as_ref().map(|p| p.pat_id.clone());
        let mut versions: Vec<&str> = peis.iter().map(|p| p.rules_version.as_str()).collect();
        versions.sort_unstable();
        versions.dedup();
        let versions = versions.join(",");
        let (id, now) = (request_id.to_owned(), crate::now_micros());
        let pending = self
            .write(move |tx| {
                Box::pin(async move { record_matches(tx, &id, &peis, &versions, pat, now).await })
            })
            .await?;
        Ok((pat_id, pending))
    }

    /// Opens a stored PAT.
    pub async fn pat(&self, pat_id: &str) -> Result<String, StoreError> {
        let id = pat_id.to_owned();
        let sealed: Vec<u8> = self
            .read(move |tx| {
                Box::pin(async move {
                    tx.value("SELECT sealed FROM pats WHERE pat_id = $1", &params![id])
                        .await
                })
            })
            .await?;
        let bytes = self.inner.key.open(pat_id.as_bytes(), &sealed)?;
        String::from_utf8(bytes).map_err(|_| StoreError::Corrupt("PAT"))
    }

    /// Ends a working find, in one commit with the registrations it made (each PeI registered
    /// with the CAS's resource id; its PAT set only if it had none: a PeI registered earlier
    /// keeps the PAT that registered it, as the CAS answers 401 to any other). `Ok` ends it
    /// `done` with its outcome, `Err` `failed` with a reason (never personal data); its find data
    /// is deleted. False when it was no longer being worked on (another claim ended it after
    /// this one's lease ran out); the registrations are recorded either way.
    ///
    /// `claim` fences the end: given the claim's attempt number, the find is ended only if no
    /// later claim took it over (a task that outlived its lease cannot end it).
    pub async fn end(
        &self,
        request_id: &str,
        claim: Option<i64>,
        end: Result<FindOutcome, String>,
        registered: Vec<(String, String)>,
        pat_id: Option<String>,
    ) -> Result<bool, StoreError> {
        // A lone end is one statement; with registrations, one transaction.
        let access = if registered.is_empty() {
            Access::Single
        } else {
            Access::Write
        };
        let row = EndRow {
            request_id: request_id.to_owned(),
            claim,
            end,
            registered,
            pat_id,
            now: crate::now_micros(),
        };
        let ended = self
            .run(access, move |tx| {
                Box::pin(async move { end_find(tx, &row).await })
            })
            .await?;
        if ended {
            self.ended();
        }
        Ok(ended)
    }

    /// Ends a working find with its outcome (see [`Store::end`]).
    pub async fn complete(
        &self,
        request_id: &str,
        outcome: FindOutcome,
    ) -> Result<bool, StoreError> {
        self.end(request_id, None, Ok(outcome), Vec::new(), None)
            .await
    }

    /// Fails a working find with a reason (see [`Store::end`]).
    pub async fn fail(&self, request_id: &str, reason: &str) -> Result<bool, StoreError> {
        self.end(request_id, None, Err(reason.to_owned()), Vec::new(), None)
            .await
    }

    /// When the oldest find still queued or being worked was ACKed (µs), across every instance
    /// sharing the store; `None` when no find is open. Read through `find_requests_open`, so it
    /// costs the open finds, not the table (`pdp_find_oldest_open_seconds`).
    pub async fn oldest_open_find(&self) -> Result<Option<i64>, StoreError> {
        self.read(|tx| Box::pin(oldest_open(tx))).await
    }

    // --- finds, for operators and tests ---

    /// One find request by ID. For operators and tests: on SQLite the hot table indexes only its
    /// open finds by ID (schema V17), so an ended one is found by reading the day's finds.
    pub async fn find_request(&self, request_id: &str) -> Result<Option<StoredFind>, StoreError> {
        let sql = format!("SELECT {FIND_COLUMNS} FROM find_requests WHERE request_id = $1");
        let id = request_id.to_owned();
        self.read(move |tx| {
            Box::pin(async move {
                if let Some(r) = tx.query_opt(&sql, &params![id.as_str()]).await? {
                    return find_from(&r).map(Some);
                }
                match history::find_in_history(tx, &id).await? {
                    Some(f) => Ok(Some(f)),
                    None => no_match_in_audit(tx, &id).await,
                }
            })
        })
        .await
    }

    /// Every find request, the history's and the no-match finds' in the audit trail too,
    /// oldest first.
    pub async fn find_requests(&self) -> Result<Vec<StoredFind>, StoreError> {
        let sql = format!(
            "SELECT {FIND_COLUMNS} FROM find_requests WHERE NOT id_only
             UNION ALL
             SELECT request_id, received_at, acked_at, state, {{false}}, outcome, reason,
                    completed_at FROM find_history
             UNION ALL
             SELECT request_id, received_at, responded_at, 'done', {{false}}, outcome, NULL,
                    responded_at FROM audit_log WHERE {NO_MATCH_ACK}
             ORDER BY 3, 1"
        );
        self.read(move |tx| {
            Box::pin(async move { tx.query(&sql, &[]).await?.iter().map(find_from).collect() })
        })
        .await
    }

    /// Failed find requests, newest first (CoCo2.2.6).
    pub async fn failed(&self) -> Result<Vec<FailedFind>, StoreError> {
        self.read(|tx| {
            Box::pin(async move {
                tx.query(
                    "SELECT request_id, acked_at, completed_at, reason FROM find_requests
                      WHERE state = 'failed'
                     UNION ALL
                     SELECT request_id, acked_at, completed_at, reason FROM find_history
                      WHERE state = 'failed'
                     ORDER BY 3 DESC",
                    &[],
                )
                .await?
                .iter()
                .map(|r| {
                    Ok(FailedFind {
                        request_id: r.get(0)?,
                        acked_at: r.get(1)?,
                        completed_at: r.get(2)?,
                        reason: r.get(3)?,
                    })
                })
                .collect()
            })
        })
        .await
    }
}

/// An audit record that is a no-match find (schema V21): its ACK.
pub(super) const NO_MATCH_ACK: &str = "direction = 'inbound' AND endpoint = 'POST /find-requests'
     AND outcome = 'no-match' AND request_id IS NOT NULL";

/// A no-match find by request ID, from its ACK's audit record.
async fn no_match_in_audit(tx: &mut dyn Tx, request_id: &str) -> Result<Option<StoredFind>> {
    let records =
        super::audit::records(tx, i64::MIN, i64::MAX, Some(request_id.to_owned())).await?;
    // The newest, as the hot table's would be for an ID sent again after its day.
    Ok(records
        .into_iter()
        .rev()
        .find(|a| {
            a.direction == crate::model::Direction::Inbound
                && a.endpoint == "POST /find-requests"
                && a.outcome == FindOutcome::NoMatch.as_str()
                && a.request_id.as_deref() == Some(request_id)
        })
        .map(|a| StoredFind {
            request_id: request_id.to_owned(),
            received_at: a.received_at,
            acked_at: a.responded_at,
            state: FindState::Done,
            has_find_data: false,
            outcome: Some(FindOutcome::NoMatch),
            reason: None,
            completed_at: Some(a.responded_at),
        }))
}

/// A working find's end with the registrations it made (`(pei, resource_id)`), fenced by the
/// claim's attempt number when given: `Ok` ends it `done` with its outcome, `Err` `failed` with
/// a reason (never personal data).
struct EndRow {
    request_id: String,
    claim: Option<i64>,
    end: std::result::Result<FindOutcome, String>,
    registered: Vec<(String, String)>,
    pat_id: Option<String>,
    now: i64,
}

/// Finds not yet at an end (queued or being worked), across every instance.
pub(super) async fn open_count(tx: &mut dyn Tx) -> Result<u64> {
    tx.value(
        "SELECT count(*) FROM find_requests WHERE state IN ('queued', 'working')",
        &[],
    )
    .await
}

/// The ACK time of the oldest open find (queued or working), if any.
async fn oldest_open(tx: &mut dyn Tx) -> Result<Option<i64>> {
    tx.value(
        "SELECT min(acked_at) FROM find_requests WHERE state IN ('queued', 'working')",
        &[],
    )
    .await
}

/// Single instance, at start: finds a previous process was working on are queued again.
async fn requeue_working(tx: &mut dyn Tx) -> Result<u64> {
    tx.execute(
        "UPDATE find_requests SET state = 'queued', lease_until = NULL
          WHERE state IN ('queued', 'working') AND state = 'working'",
        &[],
    )
    .await
}

/// SQLite's claim. The one writer claims alone. The redundant `state IN ('queued', 'working')`
/// lets SQLite use the partial indexes over open finds; without it every claim scanned and sorted
/// the whole table (`statements_on_open_finds_use_their_indexes` guards it).
pub(super) const CLAIM_SQLITE: &str = "WITH picked AS (
        SELECT request_id FROM (
            SELECT request_id FROM find_requests
             WHERE state IN ('queued', 'working') AND state = 'working' AND lease_until < $1
             ORDER BY acked_at LIMIT $3)
        UNION ALL
        SELECT request_id FROM (
            SELECT request_id FROM find_requests
             WHERE state IN ('queued', 'working') AND state = 'queued'
             ORDER BY acked_at LIMIT $3)
        LIMIT $3)
    UPDATE find_requests
       SET state = 'working', lease_until = $1 + $2, attempts = attempts + 1
     WHERE state IN ('queued', 'working') AND request_id IN picked
 RETURNING request_id, acked_at, find_data, pat_id, attempts";

/// A working find's lease extended, if the claim still holds it.
pub(super) const RENEW: &str = "UPDATE find_requests SET lease_until = $3
  WHERE request_id = $1 AND state IN ('queued', 'working') AND state = 'working'
    AND attempts = $2";

/// An open find's rules versions and PAT.
pub(super) const RECORD: &str =
    "UPDATE find_requests SET rules_version = $2, pat_id = coalesce($3, pat_id)
  WHERE request_id = $1 AND state IN ('queued', 'working')";

/// A working find ended, fenced by its claim when given.
pub(super) const END: &str = "UPDATE find_requests
    SET state = $2, outcome = $3, reason = $4, find_data = NULL, lease_until = NULL,
        completed_at = $5
  WHERE request_id = $1 AND state IN ('queued', 'working') AND state = 'working'
    AND (CAST($6 AS BIGINT) IS NULL OR attempts = $6)";

/// Claims up to `limit` finds: those whose lease ran out first, then the oldest queued; each
/// with its sealed find data.
async fn claim(
    tx: &mut dyn Tx,
    now: i64,
    lease: i64,
    limit: usize,
) -> Result<Vec<(Option<Vec<u8>>, Claimed)>> {
    let sql = match tx.dialect() {
        Dialect::Sqlite => CLAIM_SQLITE,
        // Instances claiming at once take different finds, and none waits on another's claim.
        Dialect::Postgres => {
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
          RETURNING f.request_id, f.acked_at, f.find_data, f.pat_id, f.attempts"
        }
    };
    tx.query(sql, &params![now, lease, limit])
        .await?
        .iter()
        .map(|r| {
            let claimed = Claimed {
                request_id: r.get(0)?,
                acked_at: r.get(1)?,
                find_data: None,
                pat_id: r.get(3)?,
                attempts: r.get(4)?,
            };
            Ok((r.get(2)?, claimed))
        })
        .collect()
}

/// Extends a working find's lease if the claim `attempts` still holds it.
async fn renew(tx: &mut dyn Tx, request_id: &str, attempts: i64, until: i64) -> Result<bool> {
    let n = tx
        .execute(RENEW, &params![request_id, attempts, until])
        .await?;
    Ok(n == 1)
}

/// Records a find's PeIs (idempotent), the rules versions that decided them and the PAT its UAT
/// was swapped for; the find's PeIs still pending.
async fn record_matches(
    tx: &mut dyn Tx,
    request_id: &str,
    new: &[NewPei],
    versions: &str,
    pat: Option<PatRow>,
    now: i64,
) -> Result<Vec<StoredPei>> {
    peis::record(tx, request_id, new, now).await?;
    if let Some(p) = &pat {
        peis::insert_pat(tx, p, now).await?;
    }
    tx.execute(
        RECORD,
        &params![request_id, versions, pat.map(|p| p.pat_id)],
    )
    .await?;
    let mut pending = peis::for_request(tx, request_id).await?;
    pending.retain(|p| p.state == PeiState::Pending);
    Ok(pending)
}

/// Records registrations and ends a working find: false when it was no longer this claim's.
async fn end_find(tx: &mut dyn Tx, row: &EndRow) -> Result<bool> {
    let pat = row.pat_id.as_deref().unwrap_or_default();
    for (pei, resource_id) in &row.registered {
        peis::registered(tx, pei, resource_id, pat, row.now).await?;
    }
    let (state, outcome, reason) = match &row.end {
        Ok(o) => (FindState::Done, Some(*o), None),
        Err(r) => (FindState::Failed, None, Some(r.as_str())),
    };
    let n = tx
        .execute(
            END,
            &params![&row.request_id, state, outcome, reason, row.now, row.claim],
        )
        .await?;
    Ok(n == 1)
}

const FIND_COLUMNS: &str = "request_id, received_at, acked_at, state, find_data IS NOT NULL,
    outcome, reason, completed_at";

fn find_from(r: &Row) -> Result<StoredFind> {
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
