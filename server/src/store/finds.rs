//! The find queue: a find made durable at its ACK, claimed by the pipeline under a lease,
//! and ended once, its find data deleted.
use std::sync::atomic::Ordering;
use std::time::Duration;

use strum::VariantArray;
use uuid::Uuid;

use super::backend::{End, EndRow, FindRow, MatchesRow, PatRow};
use super::model::*;
use super::sql::Tx;
use super::{sha256_hex, AppendError, Result, Store, StoreError};
use crate::audit::AuditRecord;

// === impl Store ===

impl Store {
    // --- the find ACK ---

    /// Makes a find request durable; resolves once its transaction is committed and synced.
    /// Matched find data is sealed here, on the caller's task; a no-match is stored without it.
    pub async fn append(
        &self,
        find: NewFind,
        audit: AuditRecord,
    ) -> Result<AppendOutcome, AppendError> {
        let queued = matches!(find.decided, Decided::Matched(_));
        if queued && self.pending() >= self.inner.max_pending {
            return Err(AppendError::Overloaded);
        }
        let sealed = match &find.decided {
            Decided::NoMatch => None,
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
        let n = self.db().requeue_working().await?;
        self.count_pending().await?;
        Ok(n)
    }

    /// Claims up to `limit` finds under a lease of `lease`, expired leases first, then the
    /// oldest queued; their find data opened.
    pub async fn claim(&self, lease: Duration, limit: usize) -> Result<Vec<Claimed>, StoreError> {
        let lease = lease.as_micros() as i64;
        let rows = self.db().claim(crate::now_micros(), lease, limit).await?;
        let key = self.inner.key.clone();
        Ok(rows
            .into_iter()
            .map(|r| Claimed {
                find_data: r
                    .sealed
                    .and_then(|s| key.open(r.request_id.as_bytes(), &s).ok()),
                request_id: r.request_id,
                acked_at: r.acked_at,
                pat_id: r.pat_id,
                attempts: r.attempts,
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
        self.db()
            .renew_lease(request_id.to_owned(), attempts, until)
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
        let pending = self
            .db()
            .record_matches(MatchesRow {
                request_id: request_id.to_owned(),
                peis,
                versions,
                pat,
                now: crate::now_micros(),
            })
            .await?;
        Ok((pat_id, pending))
    }

    /// Opens a stored PAT.
    pub async fn pat(&self, pat_id: &str) -> Result<String, StoreError> {
        let sealed = self.db().pat(pat_id.to_owned()).await?;
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
        let end = match end {
            Ok(o) => End::Done(o),
            Err(r) => End::Failed(r),
        };
        let ended = self
            .db()
            .end(EndRow {
                request_id: request_id.to_owned(),
                claim,
                end,
                registered,
                pat_id,
                now: crate::now_micros(),
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

    // --- finds, for operators and tests ---

    /// One find request by ID.
    pub async fn find_request(&self, request_id: &str) -> Result<Option<StoredFind>, StoreError> {
        self.db().find_request(request_id.to_owned()).await
    }

    /// Every find request, oldest first.
    pub async fn find_requests(&self) -> Result<Vec<StoredFind>, StoreError> {
        self.db().find_requests().await
    }

    /// Failed find requests, newest first (CoCo2.2.6).
    pub async fn failed(&self) -> Result<Vec<FailedFind>, StoreError> {
        self.db().failed().await
    }
}
