//! Durable state, behind one handle: [`Store`].
//!
//! "Durable" here means: on stable storage and fsync'd, so that it survives `kill -9` and power
//! loss. A find request is ACKed only once the transaction that holds it has committed with a
//! sync (CoCo2.1.1, 2.1.4).
//!
//! # Where each invariant lives
//!
//! - [`backend`]: the boundary. A backend makes writes durable and is the only code that spells
//!   SQL or owns a schema: [`sqlite`] (embedded, the default: one instance, one writer thread whose
//!   group commits carry every write) and [`postgres`] (several instances on one database: find
//!   appends and audit records ride one writer task's group commits, claims take
//!   `FOR UPDATE SKIP LOCKED` under leases). Each keeps the queue's claim and end conditions
//!   (`state = 'working'` on every end, so a find is ended once), idempotent PeI recording, and
//!   the append-only audit trail. No waiter is answered before its commit has synced.
//! - [`sealed`]: personal data at rest. This module seals find data, PATs, member records and
//!   view data on the caller's task before they reach the writer, and opens them after a read;
//!   the backend only ever sees sealed bytes.
//! - [`group_commit`]: what both writers share: the channel the ACK path and the audit trail
//!   write into, a batch drained from it, and the rule that no waiter is answered before the
//!   commit holding its write.
//! - [`schema`]: the tables, written once: each migration one SQL file, rendered in SQLite's or
//!   PostgreSQL's dialect when a backend applies it.
//! - [`model`]: the states, as enums; the only place their stored spellings are written.
//! - This file: the typed, async API over either backend; sealing and opening; the count of open
//!   finds that decides shedding.
//!
//! The store imports nothing of matching, members or view data: callers hand it typed rows and
//! get typed rows back. Both backends pass the same behaviour tests (`tests.rs`).

mod backend;
pub mod console;
mod group_commit;
pub mod model;
mod postgres;
mod reports;
mod schema;
pub mod sealed;
mod sqlite;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strum::VariantArray;
use uuid::Uuid;

use backend::{
    AuditQuery, Backend, CalculatedValues, DailyRun, End, EndRow, FindRow, MatchesRow,
    MemberChanges, MemberRow, PatRefresh, PatRow, PeiMove, PeiQuery, PensionRow, ResealStep,
    SealedChange,
};
pub use model::{
    AppendOutcome, Applied, AppliedChange, Calculation, CalculationKind, Claimed, DataChange,
    Decided, FailedFind, FindOutcome, FindState, MatchStatus, MemberChange, NewFind, NewMember,
    NewPei, NewPension, PeiMatch, PeiState, ReviewState, SchemeState, SlaSamples, StoredFind,
    StoredPei, StoredPension,
};
pub use postgres::{PostgresOptions, PostgresTls};
use sealed::DataKey;

use crate::audit::AuditRecord;

/// A stored date, `YYYY-MM-DD`.
fn stored_date(s: Option<String>) -> Option<chrono::NaiveDate> {
    s.and_then(|s| chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok())
}

/// A store operation's result.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SQLite backend failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// No read connection could be had.
    #[error("read pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// The PostgreSQL backend failed.
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No PostgreSQL connection could be had from the pool.
    #[error("postgres pool: {0}")]
    PostgresPool(String),
    /// The database named by `store.url` could not be reached.
    #[error("store.url: cannot connect to {url}: {cause}")]
    Connect {
        /// The URL, without its password.
        url: String,
        /// Why.
        cause: String,
    },
    /// The store's directory could not be created, or its writer thread started.
    #[error("creating {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The database was written by a newer version of this program.
    #[error("{setting}: the database has schema migration {found}, newer than this binary's {known}; run a newer pdp-provider")]
    SchemaTooNew {
        /// The setting that names the database (`store.path` or `store.url`).
        setting: &'static str,
        /// The database's version.
        found: i64,
        /// This binary's.
        known: i64,
    },
    /// A schema migration failed.
    #[error("{setting}: migrating the schema: {cause}")]
    Migration {
        /// The setting that names the database.
        setting: &'static str,
        /// Why.
        cause: String,
    },
    /// A sealed value failed to open.
    #[error(transparent)]
    Seal(#[from] sealed::SealError),
    /// A stored value does not parse.
    #[error("stored {0} is corrupt")]
    Corrupt(&'static str),
    /// The batch this write rode in failed to commit; the write did not happen.
    #[error("commit failed: {0}")]
    Commit(String),
    /// The store has been closed.
    #[error("store is closed")]
    Closed,
    /// A blocking task did not finish (it panicked or was cancelled).
    #[error("store task failed: {0}")]
    Task(String),
}

/// Why a find append was not made durable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    /// The queue of unprocessed finds or the writer's channel is full: shed with `503`.
    #[error("find queue is full")]
    Overloaded,
    /// The store has been closed.
    #[error("store is closed")]
    Closed,
    /// The commit failed; nothing in its batch was ACKed.
    #[error("commit failed: {0}")]
    Commit(String),
}

/// Bounds and sizes of the store.
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    /// Most messages in one transaction.
    pub max_batch: usize,
    /// Messages waiting for the writer at most.
    pub channel_capacity: usize,
    /// Unprocessed finds at most: past it, appends are shed.
    pub max_pending: u64,
    /// Read connections.
    pub readers: u32,
}

impl StoreLimits {
    /// The limits a configuration asks for.
    pub fn from_config(c: &crate::config::StoreConfig) -> Self {
        Self {
            max_batch: c.journal_max_batch,
            channel_capacity: c.journal_channel_capacity,
            max_pending: c.queue_max_pending,
            readers: c.read_connections,
        }
    }
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_batch: 512,
            channel_capacity: 8_192,
            max_pending: u64::MAX,
            readers: 4,
        }
    }
}

/// The durable store: cheap to clone; every clone is the same store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Box<dyn Backend>,
    key: DataKey,
    /// Finds stored and not at an end (see [`Store::pending`]).
    pending: AtomicU64,
    max_pending: u64,
}

/// Runs blocking work (SQLite, CPU-heavy sealing) off the async runtime. A panic in `f` becomes
/// [`StoreError::Task`] for the caller; it never takes the caller down with it.
pub async fn blocking<T, F>(f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

fn sha256_hex(s: &str) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(s.as_bytes()))
}

// === impl Store ===

impl Store {
    /// Opens (creating if needed) the embedded SQLite store at `path` and starts its writer.
    pub fn open(path: &Path, key: DataKey, limits: StoreLimits) -> Result<Store, StoreError> {
        let (db, open) = sqlite::Sqlite::open(path, limits)?;
        Self::over(Box::new(db), key, limits, open, false)
    }

    /// Connects to the PostgreSQL store at `options.url`, applies its migrations and starts its
    /// writer. Several instances may share it.
    pub async fn connect_postgres(
        options: &PostgresOptions,
        key: DataKey,
        limits: StoreLimits,
    ) -> Result<Store, StoreError> {
        let db = postgres::Postgres::connect(options, limits).await?;
        let open = db.open_count().await?;
        Self::over(Box::new(db), key, limits, open, true)
    }

    /// Opens the store a configuration names, on its backend.
    pub async fn from_config(
        config: &crate::config::StoreConfig,
        key: DataKey,
        limits: StoreLimits,
    ) -> Result<Store, StoreError> {
        match config.backend {
            crate::config::Backend::Sqlite => Self::open(&config.path, key, limits),
            crate::config::Backend::Postgres => {
                Self::connect_postgres(&PostgresOptions::from_config(config)?, key, limits).await
            }
        }
    }

    fn over(
        db: Box<dyn Backend>,
        key: DataKey,
        limits: StoreLimits,
        open: u64,
        shared: bool,
    ) -> Result<Store, StoreError> {
        let store = Store {
            inner: Arc::new(Inner {
                db,
                key,
                pending: AtomicU64::new(open),
                max_pending: limits.max_pending,
            }),
        };
        if shared {
            // Other instances add and end finds too (one may end a find this one stored): the
            // count is read from the database every second, and this process's own appends and
            // ends move it in between.
            let weak = Arc::downgrade(&store.inner);
            tokio::spawn(async move {
                let every = Duration::from_secs(1);
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(inner) = weak.upgrade() else { break };
                    if let Ok(n) = inner.db.open_count().await {
                        inner.pending.store(n, Ordering::Release);
                    }
                }
            });
        }
        Ok(store)
    }

    /// Reads the count of open finds from the database (at start, and after others changed it).
    pub async fn count_pending(&self) -> Result<u64, StoreError> {
        let n = self.db().open_count().await?;
        self.inner.pending.store(n, Ordering::Release);
        Ok(n)
    }

    fn db(&self) -> &dyn Backend {
        &*self.inner.db
    }

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

    // --- PeIs ---

    /// PeIs a find request produced.
    pub async fn peis_for_request(&self, request_id: &str) -> Result<Vec<StoredPei>, StoreError> {
        self.db()
            .peis(PeiQuery::Request(request_id.to_owned()))
            .await
    }

    /// Every PeI.
    pub async fn peis(&self) -> Result<Vec<StoredPei>, StoreError> {
        self.db().peis(PeiQuery::All).await
    }

    /// One PeI by its asset GUID (the view endpoint's key).
    pub async fn pei_by_asset_guid(
        &self,
        asset_guid: Uuid,
    ) -> Result<Option<StoredPei>, StoreError> {
        self.db()
            .pei_by_asset_guid(asset_guid.hyphenated().to_string())
            .await
    }

    /// PeIs flagged for de-registration (CoCo2.2.4).
    pub async fn flagged(&self) -> Result<Vec<StoredPei>, StoreError> {
        self.db().peis(PeiQuery::State(PeiState::Flagged)).await
    }

    /// Registered possible matches still waiting for review, created before `before` (µs).
    pub async fn possible_unreviewed_before(
        &self,
        before: i64,
    ) -> Result<Vec<StoredPei>, StoreError> {
        self.db().peis(PeiQuery::UnreviewedBefore(before)).await
    }

    /// Stops serving a registered PeI before its de-registration is sent (views answer `404`),
    /// keeping the reason for a sweep that finishes it if the CAS cannot be told now.
    pub async fn mark_deregistering(&self, pei: &str, reason: &str) -> Result<(), StoreError> {
        self.move_pei(
            pei,
            &[PeiState::Registered],
            PeiState::Deregistering,
            Some(reason),
        )
        .await
    }

    /// PeIs whose de-registration is still to be sent to the CAS.
    pub async fn deregistering(&self) -> Result<Vec<StoredPei>, StoreError> {
        self.db()
            .peis(PeiQuery::State(PeiState::Deregistering))
            .await
    }

    /// Marks a PeI de-registered (or gone at the CAS) with its deletion reason.
    pub async fn deregistered(&self, pei: &str, reason: &str) -> Result<(), StoreError> {
        self.move_pei(
            pei,
            PeiState::VARIANTS,
            PeiState::Deregistered,
            Some(reason),
        )
        .await
    }

    /// Flags a PeI "de-registration pending: notify PDP" (its PAT was refused): never served
    /// again.
    pub async fn flag_for_deregistration(&self, pei: &str, reason: &str) -> Result<(), StoreError> {
        self.move_pei(pei, PeiState::VARIANTS, PeiState::Flagged, Some(reason))
            .await
    }

    async fn move_pei(
        &self,
        pei: &str,
        from: &'static [PeiState],
        to: PeiState,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let change = PeiMove {
            pei: pei.to_owned(),
            from,
            to,
            deletion: reason.map(|r| (r.to_owned(), crate::now_micros())),
        };
        self.db().move_pei(change).await.map(|_| ())
    }

    /// Records a possible match's review and the match status it leaves.
    pub async fn set_review(
        &self,
        pei: &str,
        review: ReviewState,
        match_status: MatchStatus,
    ) -> Result<(), StoreError> {
        self.db()
            .set_review(pei.to_owned(), review, match_status)
            .await
    }

    /// PAT refresh (SPEC §3.3): replaces the stored PAT whose SHA-256 is `previous_sha256` for
    /// every PeI it covered. Returns how many stored PATs were replaced (0: unknown).
    pub async fn refresh_pat(
        &self,
        previous_sha256: &str,
        new_pat: &str,
        expires_at: Option<i64>,
    ) -> Result<u64, StoreError> {
        let key = self.inner.key.clone();
        let refresh = PatRefresh {
            previous_sha256: previous_sha256.to_owned(),
            new_sha256: sha256_hex(new_pat),
            new_pat: new_pat.as_bytes().to_vec(),
            expires_at,
        };
        self.db()
            .refresh_pat(
                refresh,
                Box::new(move |id, pat| key.seal(id.as_bytes(), pat)),
            )
            .await
    }

    // --- calculations ---

    /// Records a value calculation owed for a PeI (once; later calls keep the first): whether
    /// this call recorded it.
    pub async fn record_calculation(&self, calc: Calculation) -> Result<bool, StoreError> {
        // Every view of stale values lands here: a read answers the common case without a write.
        if self.db().has_calculation(calc.pei.clone()).await? {
            return Ok(false);
        }
        self.db().insert_calculation(calc).await.map(|()| true)
    }

    /// Calculations, open ones first by due date.
    pub async fn calculations(&self) -> Result<Vec<Calculation>, StoreError> {
        self.db().calculations().await
    }

    /// Replaces a pension's benefit illustrations with a completed calculation's (`values
    /// import`), sets its calculation date, and closes its open calculations. Returns how many
    /// calculations it closed, or `None` when no such pension is stored.
    pub async fn set_calculated_values(
        &self,
        asset_guid: Uuid,
        calculation_date: chrono::NaiveDate,
        benefit_illustrations: serde_json::Value,
    ) -> Result<Option<u64>, StoreError> {
        let key = self.inner.key.clone();
        let guid = asset_guid.hyphenated().to_string();
        let aad = guid.clone();
        let values = CalculatedValues {
            asset_guid: guid,
            calculation_date,
            update: Box::new(move |sealed| {
                let mut view_data = open_json(&key, &aad, sealed)?;
                view_data["benefitIllustrations"] = benefit_illustrations;
                let json =
                    serde_json::to_vec(&view_data).map_err(|_| StoreError::Corrupt("view data"))?;
                Ok(key.seal(aad.as_bytes(), &json))
            }),
        };
        self.db().set_calculated_values(values).await
    }

    // --- members ---

    /// Applies a batch of member changes in one commit: adds, replaces (a pension absent from
    /// the new record is removed) or removes members; a record exactly as imported before
    /// changes nothing. Records and view data are sealed here, off the runtime. Every change is
    /// noted for the running endpoints' match indexes. With `dry_run`, the same answers and
    /// nothing kept.
    pub async fn apply_members(
        &self,
        batch: Vec<MemberChange>,
        dry_run: bool,
    ) -> Result<Vec<AppliedChange>, StoreError> {
        let key = self.inner.key.clone();
        let rows: Vec<SealedChange> =
            blocking(move || Ok(batch.into_iter().map(|c| seal_change(&key, c)).collect())).await?;
        self.db()
            .apply_members(MemberChanges {
                changes: rows,
                dry_run,
                now: crate::now_micros(),
            })
            .await
    }

    /// Every member ID, or those of one holdername.
    pub async fn member_ids(&self, holdername: Option<Uuid>) -> Result<Vec<String>, StoreError> {
        self.db()
            .member_ids(holdername.map(|h| h.hyphenated().to_string()))
            .await
    }

    /// One member's match record (opened JSON), `None` when not stored.
    pub async fn member_record(&self, member_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.member_records(vec![member_id.to_owned()])
            .await?
            .pop()
            .and_then(|(_, r)| r)
            .transpose()
            .map_err(StoreError::from)
    }

    /// Several members' match records (opened JSON): `None` for those not stored, an error for
    /// those no configured key opens (each on its own: one bad record spoils no other).
    pub async fn member_records(
        &self,
        member_ids: Vec<String>,
    ) -> Result<Vec<(String, Option<Result<Vec<u8>, sealed::SealError>>)>, StoreError> {
        let rows = self.db().members_sealed(member_ids).await?;
        let key = &self.inner.key;
        Ok(rows
            .into_iter()
            .map(|(id, sealed)| {
                let json = sealed.map(|s| key.open(id.as_bytes(), &s));
                (id, json)
            })
            .collect())
    }

    /// The newest data change's version: an endpoint whose index has applied it is current.
    pub async fn data_version(&self) -> Result<i64, StoreError> {
        self.db().data_version().await
    }

    /// Data changes after `version`, oldest first (at most `limit`), with their versions.
    pub async fn data_changes_since(
        &self,
        version: i64,
        limit: usize,
    ) -> Result<Vec<(i64, DataChange)>, StoreError> {
        self.db()
            .data_changes_since(version, limit)
            .await?
            .into_iter()
            .map(|(v, kind, key)| {
                let change = match kind.as_str() {
                    "member" => DataChange::Member(key),
                    "scheme" => DataChange::Scheme(
                        Uuid::try_parse(&key).map_err(|_| StoreError::Corrupt("holdername"))?,
                    ),
                    _ => return Err(StoreError::Corrupt("data change kind")),
                };
                Ok((v, change))
            })
            .collect()
    }

    /// Forgets data changes noted before `before` (µs): every running endpoint applied them long
    /// ago (they poll every second; one that starts builds its index from the members
    /// themselves). The newest change is kept, so versions never go back.
    pub async fn purge_data_changes(&self, before: i64) -> Result<u64, StoreError> {
        self.db().purge_data_changes(before).await
    }

    /// Sets a scheme's state, noted for the running endpoints.
    pub async fn set_scheme_state(
        &self,
        holdername: Uuid,
        state: SchemeState,
    ) -> Result<(), StoreError> {
        self.db()
            .set_scheme(
                holdername.hyphenated().to_string(),
                state,
                crate::now_micros(),
            )
            .await
    }

    /// Schemes not active.
    pub async fn inactive_schemes(&self) -> Result<Vec<(Uuid, SchemeState)>, StoreError> {
        self.db()
            .inactive_schemes()
            .await?
            .into_iter()
            .map(|(h, s)| {
                Ok((
                    Uuid::try_parse(&h).map_err(|_| StoreError::Corrupt("holdername"))?,
                    s,
                ))
            })
            .collect()
    }

    /// One scheme's state (active unless set otherwise).
    pub async fn scheme_state(&self, holdername: Uuid) -> Result<SchemeState, StoreError> {
        self.db().scheme(holdername.hyphenated().to_string()).await
    }

    /// PeIs of one pension.
    pub async fn peis_for_pension(&self, pension: Uuid) -> Result<Vec<StoredPei>, StoreError> {
        self.db()
            .peis(PeiQuery::Pension(pension.hyphenated().to_string()))
            .await
    }

    /// PeIs of one holdername.
    pub async fn peis_for_holdername(
        &self,
        holdername: Uuid,
    ) -> Result<Vec<StoredPei>, StoreError> {
        self.db()
            .peis(PeiQuery::Holdername(holdername.hyphenated().to_string()))
            .await
    }

    /// Members stored.
    pub async fn member_count(&self) -> Result<u64, StoreError> {
        self.db().member_count().await
    }

    /// Calls `f` with every stored member's match record (opened JSON), on every core. Returns
    /// how many records could not be opened (they are skipped, never half-read).
    pub async fn for_each_member<F>(&self, f: F) -> Result<u64, StoreError>
    where
        F: Fn(&[u8]) + Send + Sync + 'static,
    {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<(String, Vec<u8>)>>(threads * 2);
        let key = self.inner.key.clone();
        let opening = blocking(move || {
            let rx = Mutex::new(rx);
            let failed = AtomicU64::new(0);
            std::thread::scope(|s| {
                for _ in 0..threads {
                    let (rx, failed, f, key) = (&rx, &failed, &f, &key);
                    s.spawn(move || loop {
                        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).blocking_recv();
                        let Some(batch) = next else { break };
                        for (id, sealed) in batch {
                            match key.open(id.as_bytes(), &sealed) {
                                Ok(json) => f(&json),
                                Err(_) => {
                                    failed.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    });
                }
            });
            Ok(failed.into_inner())
        });
        let (read, failed) = tokio::join!(self.db().member_batches(4096, tx), opening);
        read?;
        failed
    }

    /// One pension by asset GUID, its view data opened.
    pub async fn pension(&self, asset_guid: Uuid) -> Result<Option<StoredPension>, StoreError> {
        let guid = asset_guid.hyphenated().to_string();
        let Some(row) = self.db().pension(guid.clone()).await? else {
            return Ok(None);
        };
        let view_data = open_json(&self.inner.key, &guid, &row.sealed_view_data)?;
        Ok(Some(StoredPension {
            asset_guid,
            view_data,
            member_id: row.member_id,
            holdername: Uuid::try_parse(&row.holdername)
                .map_err(|_| StoreError::Corrupt("holdername"))?,
            scheme_name: row.scheme_name,
            statement_date: row.statement_date,
            calculation_date: row.calculation_date,
        }))
    }

    // --- data keys ---

    /// Stored values not yet sealed with the active data key.
    pub async fn sealed_with_other_keys(&self) -> Result<u64, StoreError> {
        self.db()
            .count_not_sealed_with(self.inner.key.active_prefix().to_vec())
            .await
    }

    /// Re-seals, with the active data key, up to `limit` stored values sealed with another key
    /// (find data, PATs, member records, view data), in one commit. Returns what it did; call
    /// it until `resealed` and `unreadable` are both 0. Resumable at any point: what is done is
    /// committed, and what is sealed with the active key is never read again.
    pub async fn reseal(&self, cursor: ResealCursor, limit: usize) -> Result<Resealed, StoreError> {
        let key = self.inner.key.clone();
        let step = ResealStep {
            cursor,
            prefix: key.active_prefix().to_vec(),
            limit,
        };
        self.db()
            .reseal(
                step,
                Box::new(move |id, sealed| {
                    let plain = key.open(id.as_bytes(), sealed).ok()?;
                    Some(key.seal(id.as_bytes(), &plain))
                }),
            )
            .await
    }

    // --- audit, availability, service levels, daily jobs ---

    /// Audit records received in `[from, to)` (µs), for one transaction or find request ID when
    /// given, oldest first.
    pub async fn audit_records(
        &self,
        from: i64,
        to: i64,
        id: Option<String>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.db().audit_records(AuditQuery { from, to, id }).await
    }

    /// Deletes audit records received before `cutoff` (µs); returns how many. The only way rows
    /// leave the trail.
    pub async fn purge_audit(&self, cutoff: i64) -> Result<u64, StoreError> {
        self.db().purge_audit(cutoff).await
    }

    /// Records that the endpoint is up in the minute of `now` (µs).
    pub async fn heartbeat(&self, now: i64) -> Result<(), StoreError> {
        self.db().heartbeat(now / 60_000_000).await
    }

    /// Minutes up in `[from, to)` (µs).
    pub async fn minutes_up(&self, from: i64, to: i64) -> Result<u64, StoreError> {
        self.db()
            .minutes_up(from / 60_000_000, to / 60_000_000)
            .await
    }

    /// The start of the first minute the endpoint was up (µs), if it ever was.
    pub async fn first_heartbeat(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.db().first_heartbeat().await?.map(|m| m * 60_000_000))
    }

    /// The service levels' samples for `[from, to)` (µs).
    pub async fn sla_samples(&self, from: i64, to: i64) -> Result<SlaSamples, StoreError> {
        let mut samples = self.db().sla_samples(from, to).await?;
        samples.minutes_up = self.minutes_up(from, to).await?;
        Ok(samples)
    }

    /// Matching finds ACKed in `[from, to)` (µs) and completed, by holdername: the ACK to
    /// completion times (µs) of the finds that registered PeIs in each (CoCo2.1.2 per scheme).
    pub async fn completions_by_holdername(
        &self,
        from: i64,
        to: i64,
    ) -> Result<std::collections::BTreeMap<Uuid, Vec<i64>>, StoreError> {
        let mut out = std::collections::BTreeMap::<Uuid, Vec<i64>>::new();
        for (h, us) in self.db().completions_by_holdername(from, to).await? {
            let h = Uuid::try_parse(&h).map_err(|_| StoreError::Corrupt("holdername"))?;
            out.entry(h).or_default().push(us);
        }
        Ok(out)
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
        let run = DailyRun::new(job, day);
        let lease_until = run.now + lease.as_micros() as i64;
        self.db().begin_daily(run, lease_until).await
    }

    /// Marks a daily job's run for `day` finished.
    pub async fn finish_daily(&self, job: &str, day: chrono::NaiveDate) -> Result<(), StoreError> {
        self.db().finish_daily(DailyRun::new(job, day)).await
    }

    /// Backend upkeep, beside the writer: on SQLite, a passive WAL checkpoint (copies committed
    /// frames into the database file; it never blocks a writer).
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        self.db().checkpoint().await
    }
}

/// Seals a member change: its match record and view data, and the hash of what was imported.
fn seal_change(key: &DataKey, change: MemberChange) -> SealedChange {
    let m = match change {
        MemberChange::Remove(id) => return SealedChange::Remove(id),
        MemberChange::Upsert(m) => m,
    };
    let mut hash = <sha2::Sha256 as sha2::Digest>::new();
    let mut feed = |b: &[u8]| {
        sha2::Digest::update(&mut hash, (b.len() as u64).to_be_bytes());
        sha2::Digest::update(&mut hash, b);
    };
    feed(m.holdername.as_bytes());
    feed(&m.match_record);
    for p in &m.pensions {
        feed(p.asset_guid.as_bytes());
        feed(p.scheme_name.as_bytes());
        feed(&p.view_data);
        feed(format!("{:?}{:?}", p.statement_date, p.calculation_date).as_bytes());
    }
    let content_sha256 = hex::encode(sha2::Digest::finalize(hash));
    SealedChange::Upsert(MemberRow {
        sealed: key.seal(m.member_id.as_bytes(), &m.match_record),
        holdername: m.holdername.hyphenated().to_string(),
        content_sha256,
        pensions: m
            .pensions
            .into_iter()
            .map(|p| {
                let guid = p.asset_guid.hyphenated().to_string();
                PensionRow {
                    sealed_view_data: key.seal(guid.as_bytes(), &p.view_data),
                    asset_guid: guid,
                    scheme_name: p.scheme_name,
                    statement_date: p.statement_date,
                    calculation_date: p.calculation_date,
                }
            })
            .collect(),
        member_id: m.member_id,
    })
}

/// Where a re-seal has got to: the sealed column (an index into the store's list) and the last
/// row ID done in it. Start from `ResealCursor::default()`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResealCursor {
    table: usize,
    after: String,
}

impl ResealCursor {
    /// Whether every sealed column has been gone through.
    pub fn finished(&self) -> bool {
        self.table >= backend::SEALED.len()
    }
}

/// One step of a re-seal.
#[derive(Debug, Clone)]
pub struct Resealed {
    /// Where to go on from.
    pub cursor: ResealCursor,
    /// Values re-sealed in this step.
    pub resealed: u64,
    /// Values no configured key opens (skipped, counted: keep the key that sealed them).
    pub unreadable: u64,
}

impl From<ResealCursor> for Resealed {
    fn from(cursor: ResealCursor) -> Self {
        Self {
            cursor,
            resealed: 0,
            unreadable: 0,
        }
    }
}

impl Resealed {
    /// Takes the rows a step read at the cursor (`(id, sealed)`, by id): none moves the cursor
    /// to the next sealed column (`None`: read again there); otherwise the cursor moves past
    /// them and the re-sealed values to write are returned, those no key opens counted.
    fn take(
        &mut self,
        rows: Vec<(String, Vec<u8>)>,
        reseal: &backend::Resealer,
    ) -> Option<Vec<(String, Vec<u8>)>> {
        let Some((last, _)) = rows.last() else {
            self.cursor = ResealCursor {
                table: self.cursor.table + 1,
                after: String::new(),
            };
            return None;
        };
        self.cursor.after = last.clone();
        let mut new = Vec::with_capacity(rows.len());
        for (id, sealed) in rows {
            match reseal(&id, &sealed) {
                Some(s) => new.push((id, s)),
                None => self.unreadable += 1,
            }
        }
        self.resealed += new.len() as u64;
        Some(new)
    }
}

fn open_json(key: &DataKey, aad: &str, sealed: &[u8]) -> Result<serde_json::Value, StoreError> {
    let bytes = key.open(aad.as_bytes(), sealed)?;
    serde_json::from_slice(&bytes).map_err(|_| StoreError::Corrupt("view data"))
}

#[cfg(test)]
mod tests;
