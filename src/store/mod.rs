//! Durable state, behind one handle: [`Store`].
//!
//! "Durable" here means: on stable storage and fsync'd, so that it survives `kill -9` and power
//! loss. A find request is ACKed only once the transaction that holds it has committed with a
//! sync (CoCo2.1.1, 2.1.4).
//!
//! # Where each invariant lives
//!
//! - [`writer`]: durability and batching. One writer thread, one write connection; every write
//!   (find appends, audit records, pipeline and operator state changes) rides a group commit,
//!   and no waiter is answered before its commit has synced.
//! - [`sqlite`]: the only code that spells SQL or owns the schema. The queue's claim and end
//!   conditions (`state = 'working'` on every end, so a find is ended once), idempotent PeI
//!   recording, and the append-only audit trail's triggers.
//! - [`sealed`]: personal data at rest. This module seals find data, PATs, member records and
//!   view data on the caller's task before they reach the writer, and opens them after a read;
//!   the backend only ever sees sealed bytes.
//! - [`model`]: the states, as enums; the only place their stored spellings are written.
//! - This file: the typed, async API. Reads run on a small pool of read connections (WAL lets
//!   them run beside the writer) off the runtime, through [`blocking`]; the count of open finds
//!   that decides shedding is kept here.
//!
//! The store imports nothing of matching, members or view data: callers hand it typed rows and
//! get typed rows back. A second backend (PostgreSQL) replaces [`sqlite`] and the writer's
//! connection; the API above stays.

pub mod model;
mod reports;
pub mod sealed;
mod sqlite;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use strum::VariantArray;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

pub use model::{
    AppendOutcome, Applied, AppliedChange, Calculation, CalculationKind, Claimed, DataChange,
    Decided, FailedFind, FindOutcome, FindState, MatchStatus, MemberChange, NewFind, NewMember,
    NewPei, NewPension, PeiState, ReviewState, SchemeState, SlaSamples, StoredFind, StoredPei,
    StoredPension,
};
use sealed::DataKey;
use sqlite::finds::End;
use writer::{Job, Msg, Shared};

use crate::audit::AuditRecord;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SQLite backend failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// No read connection could be had.
    #[error("read pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// The store's directory could not be created, or its writer thread started.
    #[error("creating {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The database was written by a newer version of this program.
    #[error("store.path: the database has schema migration {found}, newer than this binary's {known}; run a newer pdp-provider")]
    SchemaTooNew {
        /// The database's version.
        found: i64,
        /// This binary's.
        known: i64,
    },
    /// A schema migration failed.
    #[error("store.path: migrating the schema: {0}")]
    Migration(String),
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
#[derive(Debug, thiserror::Error)]
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
    tx: mpsc::Sender<Msg>,
    reads: sqlite::ReadPool,
    key: DataKey,
    shared: Arc<Shared>,
    max_pending: u64,
    writer: Mutex<Option<JoinHandle<()>>>,
    path: PathBuf,
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
    /// Opens (creating if needed) the store at `path` and starts its writer.
    pub fn open(path: &Path, key: DataKey, limits: StoreLimits) -> Result<Store, StoreError> {
        let conn = sqlite::open_writer(path)?;
        let pending = sqlite::finds::open_count(&conn)?;
        let reads = sqlite::read_pool(path, limits.readers)?;
        let shared = Arc::new(Shared {
            pending: pending.into(),
        });
        let (tx, rx) = mpsc::channel(limits.channel_capacity.max(4));
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("store-writer".into())
                .spawn(move || writer::run(conn, rx, shared, limits.max_batch.max(1)))
                .map_err(|source| StoreError::Io {
                    path: "store-writer thread".into(),
                    source,
                })?
        };
        Ok(Store {
            inner: Arc::new(Inner {
                tx,
                reads,
                key,
                shared,
                max_pending: limits.max_pending,
                writer: Mutex::new(Some(writer)),
                path: path.to_owned(),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs a read on a pooled connection, off the runtime.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection, &DataKey) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        blocking(move || {
            let conn = inner.reads.get()?;
            f(&conn, &inner.key)
        })
        .await
    }

    /// Runs a write in the next group commit; resolves once it is committed and synced.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(f, false).await
    }

    /// Runs `f` as a write would, answers what it returned, and rolls its changes back.
    async fn trial<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(f, true).await
    }

    async fn submit<T, F>(&self, f: F, trial: bool) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Msg::Write(Box::new(Job::new(f, reply, trial))))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
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
        let row = sqlite::finds::Row {
            request_id: find.request_id,
            received_at: find.received_at,
            sealed,
        };
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .try_send(Msg::Append {
                find: row,
                audit,
                reply,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => AppendError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => AppendError::Closed,
            })?;
        rx.await.map_err(|_| AppendError::Closed)?
    }

    /// Queues an audit record for the next commit without waiting for it. If the writer is
    /// saturated (the channel's last quarter is kept for find appends) the record is dropped and
    /// counted (`pdp_audit_dropped_total`) rather than holding a response.
    pub fn audit(&self, record: AuditRecord) {
        let tx = &self.inner.tx;
        let reserve = tx.max_capacity() / 4;
        if tx.capacity() <= reserve || tx.try_send(Msg::Audit(record)).is_err() {
            crate::metrics::audit_dropped();
        }
    }

    /// Waits until everything queued before this call is committed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Commits everything queued before this call, stops the writer and waits for it: later
    /// writes fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        let _ = self.inner.tx.send(Msg::Close).await;
        let handle = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }

    /// Find requests stored and not at an end: what shedding is decided on, and what
    /// `pdp_find_queue_depth` shows (read when metrics are rendered, so the gauge is never a
    /// stale write that lost a race).
    pub fn pending(&self) -> u64 {
        self.inner.shared.pending.load(Ordering::Acquire)
    }

    fn ended(&self) {
        let _ = self
            .inner
            .shared
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                Some(p.saturating_sub(1))
            });
    }

    // --- the pipeline ---

    /// Single-instance start-up: finds a previous process was working on are queued again.
    pub async fn requeue_working(&self) -> Result<u64, StoreError> {
        self.write(sqlite::finds::requeue_working).await
    }

    /// Claims up to `limit` finds under a lease of `lease`, expired leases first, then the
    /// oldest queued; their find data opened.
    pub async fn claim(&self, lease: Duration, limit: usize) -> Result<Vec<Claimed>, StoreError> {
        let lease = lease.as_micros() as i64;
        let rows = self
            .write(move |c| sqlite::finds::claim(c, crate::now_micros(), lease, limit))
            .await?;
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
        let id = request_id.to_owned();
        let pat = pat.map(|(p, expires_at)| {
            let pat_id = Uuid::new_v4().hyphenated().to_string();
            let sealed = self.inner.key.seal(pat_id.as_bytes(), p.as_bytes());
            (pat_id, sha256_hex(p), sealed, expires_at)
        });
        self.write(move |c| {
            let now = crate::now_micros();
            let mut versions: Vec<&str> = peis.iter().map(|p| p.rules_version.as_str()).collect();
            versions.sort_unstable();
            versions.dedup();
            sqlite::peis::record(c, &id, &peis, now)?;
            sqlite::finds::set_rules_version(c, &id, &versions.join(","))?;
            let pat_id = match pat {
                Some((pat_id, sha, sealed, expires_at)) => {
                    sqlite::peis::insert_pat(c, &pat_id, &sha, &sealed, expires_at, now)?;
                    sqlite::finds::set_pat(c, &id, &pat_id)?;
                    Some(pat_id)
                }
                None => None,
            };
            let pending = sqlite::peis::for_request(c, &id)?
                .into_iter()
                .filter(|p| p.state == PeiState::Pending)
                .collect();
            Ok((pat_id, pending))
        })
        .await
    }

    /// Opens a stored PAT.
    pub async fn pat(&self, pat_id: &str) -> Result<String, StoreError> {
        let id = pat_id.to_owned();
        self.read(move |c, key| {
            let sealed = sqlite::peis::pat(c, &id)?;
            let bytes = key.open(id.as_bytes(), &sealed)?;
            String::from_utf8(bytes).map_err(|_| StoreError::Corrupt("PAT"))
        })
        .await
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
        let id = request_id.to_owned();
        let ended = self
            .write(move |c| {
                let now = crate::now_micros();
                for (pei, resource_id) in &registered {
                    let pat = pat_id.as_deref().unwrap_or_default();
                    sqlite::peis::registered(c, pei, resource_id, pat, now)?;
                }
                let e = match &end {
                    Ok(o) => End::Done(*o),
                    Err(r) => End::Failed(r),
                };
                sqlite::finds::end(c, &id, claim, e, now)
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
        let id = request_id.to_owned();
        self.read(move |c, _| sqlite::finds::get(c, &id)).await
    }

    /// Every find request, oldest first.
    pub async fn find_requests(&self) -> Result<Vec<StoredFind>, StoreError> {
        self.read(|c, _| sqlite::finds::all(c)).await
    }

    /// Failed find requests, newest first (CoCo2.2.6).
    pub async fn failed(&self) -> Result<Vec<FailedFind>, StoreError> {
        self.read(|c, _| sqlite::finds::failed(c)).await
    }

    // --- PeIs ---

    /// PeIs a find request produced.
    pub async fn peis_for_request(&self, request_id: &str) -> Result<Vec<StoredPei>, StoreError> {
        let id = request_id.to_owned();
        self.read(move |c, _| sqlite::peis::for_request(c, &id))
            .await
    }

    /// Every PeI.
    pub async fn peis(&self) -> Result<Vec<StoredPei>, StoreError> {
        self.read(|c, _| sqlite::peis::all(c)).await
    }

    /// One PeI by its asset GUID (the view endpoint's key).
    pub async fn pei_by_asset_guid(
        &self,
        asset_guid: Uuid,
    ) -> Result<Option<StoredPei>, StoreError> {
        self.read(move |c, _| sqlite::peis::by_asset_guid(c, &asset_guid.hyphenated().to_string()))
            .await
    }

    /// PeIs flagged for de-registration (CoCo2.2.4).
    pub async fn flagged(&self) -> Result<Vec<StoredPei>, StoreError> {
        self.read(|c, _| sqlite::peis::in_state(c, PeiState::Flagged))
            .await
    }

    /// Registered possible matches still waiting for review, created before `before` (µs).
    pub async fn possible_unreviewed_before(
        &self,
        before: i64,
    ) -> Result<Vec<StoredPei>, StoreError> {
        self.read(move |c, _| sqlite::peis::unreviewed_before(c, before))
            .await
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
        self.read(|c, _| sqlite::peis::in_state(c, PeiState::Deregistering))
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
        let (p, r) = (pei.to_owned(), reason.map(str::to_owned));
        self.write(move |c| {
            let deletion = r.as_deref().map(|r| (r, crate::now_micros()));
            sqlite::peis::set_state(c, &p, from, to, deletion).map(|_| ())
        })
        .await
    }

    /// Records a possible match's review and the match status it leaves.
    pub async fn set_review(
        &self,
        pei: &str,
        review: ReviewState,
        match_status: MatchStatus,
    ) -> Result<(), StoreError> {
        let p = pei.to_owned();
        self.write(move |c| sqlite::peis::set_review(c, &p, review, match_status))
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
        let (prev, pat, key) = (
            previous_sha256.to_owned(),
            new_pat.to_owned(),
            self.inner.key.clone(),
        );
        self.write(move |c| {
            let ids = sqlite::peis::pats_by_sha(c, &prev)?;
            let sha = sha256_hex(&pat);
            for id in &ids {
                let sealed = key.seal(id.as_bytes(), pat.as_bytes());
                sqlite::peis::replace_pat(c, id, &sha, &sealed, expires_at)?;
            }
            Ok(ids.len() as u64)
        })
        .await
    }

    // --- calculations ---

    /// Records a value calculation owed for a PeI (once; later calls keep the first).
    pub async fn record_calculation(&self, calc: Calculation) -> Result<(), StoreError> {
        // Every view of stale values lands here: a read answers the common case without a write.
        let pei = calc.pei.clone();
        if self
            .read(move |c, _| sqlite::peis::has_calculation(c, &pei))
            .await?
        {
            return Ok(());
        }
        self.write(move |c| sqlite::peis::insert_calculation(c, &calc))
            .await
    }

    /// Calculations, open ones first by due date.
    pub async fn calculations(&self) -> Result<Vec<Calculation>, StoreError> {
        self.read(|c, _| sqlite::peis::calculations(c)).await
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
        self.write(move |c| {
            let guid = asset_guid.hyphenated().to_string();
            let Some(row) = sqlite::members::pension(c, &guid)? else {
                return Ok(None);
            };
            let mut view_data = open_json(&key, &guid, &row.sealed_view_data)?;
            view_data["benefitIllustrations"] = benefit_illustrations;
            let json =
                serde_json::to_vec(&view_data).map_err(|_| StoreError::Corrupt("view data"))?;
            let sealed = key.seal(guid.as_bytes(), &json);
            sqlite::members::set_view_data(c, &guid, &sealed, calculation_date)?;
            sqlite::peis::complete_calculations(c, &guid, crate::now_micros()).map(Some)
        })
        .await
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
        let apply = move |c: &rusqlite::Connection| {
            let now = crate::now_micros();
            rows.iter()
                .map(|change| apply_member(c, change, now))
                .collect::<Result<Vec<_>, _>>()
        };
        if dry_run {
            self.trial(apply).await
        } else {
            self.write(apply).await
        }
    }

    /// Every member ID, or those of one holdername.
    pub async fn member_ids(&self, holdername: Option<Uuid>) -> Result<Vec<String>, StoreError> {
        self.read(move |c, _| {
            sqlite::members::ids(c, holdername.map(|h| h.hyphenated().to_string()).as_deref())
        })
        .await
    }

    /// One member's match record (opened JSON), `None` when not stored.
    pub async fn member_record(&self, member_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let id = member_id.to_owned();
        self.read(move |c, key| {
            sqlite::members::sealed(c, &id)?
                .map(|s| key.open(id.as_bytes(), &s).map_err(StoreError::from))
                .transpose()
        })
        .await
    }

    /// Several members' match records (opened JSON): `None` for those not stored, an error for
    /// those no configured key opens (each on its own: one bad record spoils no other).
    pub async fn member_records(
        &self,
        member_ids: Vec<String>,
    ) -> Result<Vec<(String, Option<Result<Vec<u8>, sealed::SealError>>)>, StoreError> {
        self.read(move |c, key| {
            member_ids
                .into_iter()
                .map(|id| {
                    let json =
                        sqlite::members::sealed(c, &id)?.map(|s| key.open(id.as_bytes(), &s));
                    Ok((id, json))
                })
                .collect()
        })
        .await
    }

    /// The newest data change's version: an endpoint whose index has applied it is current.
    pub async fn data_version(&self) -> Result<i64, StoreError> {
        self.read(|c, _| sqlite::members::data_version(c)).await
    }

    /// Data changes after `version`, oldest first (at most `limit`), with their versions.
    pub async fn data_changes_since(
        &self,
        version: i64,
        limit: usize,
    ) -> Result<Vec<(i64, DataChange)>, StoreError> {
        self.read(move |c, _| {
            sqlite::members::changes_since(c, version, limit)?
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
        })
        .await
    }

    /// Forgets data changes noted before `before` (µs): every running endpoint applied them long
    /// ago (they poll every second; one that starts builds its index from the members
    /// themselves). The newest change is kept, so versions never go back.
    pub async fn purge_data_changes(&self, before: i64) -> Result<u64, StoreError> {
        self.write(move |c| sqlite::members::purge_changes(c, before))
            .await
    }

    /// Sets a scheme's state, noted for the running endpoints.
    pub async fn set_scheme_state(
        &self,
        holdername: Uuid,
        state: SchemeState,
    ) -> Result<(), StoreError> {
        let h = holdername.hyphenated().to_string();
        self.write(move |c| {
            let now = crate::now_micros();
            sqlite::members::set_scheme(c, &h, state, now)?;
            sqlite::members::record_change(c, "scheme", &h, now)
        })
        .await
    }

    /// Schemes not active.
    pub async fn inactive_schemes(&self) -> Result<Vec<(Uuid, SchemeState)>, StoreError> {
        self.read(|c, _| {
            sqlite::members::schemes(c)?
                .into_iter()
                .map(|(h, s)| {
                    Ok((
                        Uuid::try_parse(&h).map_err(|_| StoreError::Corrupt("holdername"))?,
                        s,
                    ))
                })
                .collect()
        })
        .await
    }

    /// One scheme's state (active unless set otherwise).
    pub async fn scheme_state(&self, holdername: Uuid) -> Result<SchemeState, StoreError> {
        self.read(move |c, _| sqlite::members::scheme(c, &holdername.hyphenated().to_string()))
            .await
    }

    /// PeIs of one pension.
    pub async fn peis_for_pension(&self, pension: Uuid) -> Result<Vec<StoredPei>, StoreError> {
        self.read(move |c, _| sqlite::peis::for_pension(c, &pension.hyphenated().to_string()))
            .await
    }

    /// PeIs of one holdername.
    pub async fn peis_for_holdername(
        &self,
        holdername: Uuid,
    ) -> Result<Vec<StoredPei>, StoreError> {
        self.read(move |c, _| sqlite::peis::for_holdername(c, &holdername.hyphenated().to_string()))
            .await
    }

    /// Members stored.
    pub async fn member_count(&self) -> Result<u64, StoreError> {
        self.read(|c, _| sqlite::members::count(c)).await
    }

    /// Calls `f` with every stored member's match record (opened JSON), on every core. Returns
    /// how many records could not be opened (they are skipped, never half-read).
    pub async fn for_each_member<F>(&self, f: F) -> Result<u64, StoreError>
    where
        F: Fn(&[u8]) + Send + Sync + 'static,
    {
        self.read(move |conn, key| {
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(String, Vec<u8>)>>(threads * 2);
            let rx = Mutex::new(rx);
            let failed = std::sync::atomic::AtomicU64::new(0);
            std::thread::scope(|s| {
                for _ in 0..threads {
                    let (rx, failed, f) = (&rx, &failed, &f);
                    s.spawn(move || loop {
                        let batch = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                            Ok(b) => b,
                            Err(_) => break,
                        };
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
                let r = sqlite::members::for_each_sealed(conn, 4096, |batch| {
                    let _ = tx.send(batch);
                });
                drop(tx);
                r
            })?;
            Ok(failed.into_inner())
        })
        .await
    }

    /// One pension by asset GUID, its view data opened.
    pub async fn pension(&self, asset_guid: Uuid) -> Result<Option<StoredPension>, StoreError> {
        self.read(move |c, key| {
            let guid = asset_guid.hyphenated().to_string();
            let Some(row) = sqlite::members::pension(c, &guid)? else {
                return Ok(None);
            };
            Ok(Some(StoredPension {
                asset_guid,
                view_data: open_json(key, &guid, &row.sealed_view_data)?,
                member_id: row.member_id,
                holdername: Uuid::try_parse(&row.holdername)
                    .map_err(|_| StoreError::Corrupt("holdername"))?,
                scheme_name: row.scheme_name,
                statement_date: row.statement_date,
                calculation_date: row.calculation_date,
            }))
        })
        .await
    }

    // --- data keys ---

    /// Stored values not yet sealed with the active data key.
    pub async fn sealed_with_other_keys(&self) -> Result<u64, StoreError> {
        self.read(|c, key| sqlite::keys::count_not_sealed_with(c, &key.active_prefix()))
            .await
    }

    /// Re-seals, with the active data key, up to `limit` stored values sealed with another key
    /// (find data, PATs, member records, view data), in one commit. Returns what it did; call
    /// it until `resealed` and `unreadable` are both 0. Resumable at any point: what is done is
    /// committed, and what is sealed with the active key is never read again.
    pub async fn reseal(&self, cursor: ResealCursor, limit: usize) -> Result<Resealed, StoreError> {
        let key = self.inner.key.clone();
        self.write(move |c| {
            let prefix = key.active_prefix();
            let mut out = Resealed {
                cursor,
                resealed: 0,
                unreadable: 0,
            };
            while out.cursor.table < sqlite::keys::SEALED.len() {
                let rows = sqlite::keys::not_sealed_with(
                    c,
                    out.cursor.table,
                    &prefix,
                    &out.cursor.after,
                    limit,
                )?;
                let Some((last, _)) = rows.last() else {
                    out.cursor = ResealCursor {
                        table: out.cursor.table + 1,
                        after: String::new(),
                    };
                    continue;
                };
                out.cursor.after = last.clone();
                for (id, sealed) in rows {
                    match key.open(id.as_bytes(), &sealed) {
                        Ok(plain) => {
                            sqlite::keys::replace(
                                c,
                                out.cursor.table,
                                &id,
                                &key.seal(id.as_bytes(), &plain),
                            )?;
                            out.resealed += 1;
                        }
                        Err(_) => out.unreadable += 1,
                    }
                }
                break;
            }
            Ok(out)
        })
        .await
    }

    // --- audit, availability, service levels ---

    /// Audit records received in `[from, to)` (µs), for one transaction or find request ID when
    /// given, oldest first.
    pub async fn audit_records(
        &self,
        from: i64,
        to: i64,
        id: Option<String>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.read(move |c, _| sqlite::audit::records(c, from, to, id.as_deref()))
            .await
    }

    /// Deletes audit records received before `cutoff` (µs); returns how many. The only way rows
    /// leave the trail.
    pub async fn purge_audit(&self, cutoff: i64) -> Result<u64, StoreError> {
        self.write(move |c| sqlite::audit::purge(c, cutoff)).await
    }

    /// Records that the endpoint is up in the minute of `now` (µs).
    pub async fn heartbeat(&self, now: i64) -> Result<(), StoreError> {
        self.write(move |c| sqlite::audit::heartbeat(c, now / 60_000_000))
            .await
    }

    /// Minutes up in `[from, to)` (µs).
    pub async fn minutes_up(&self, from: i64, to: i64) -> Result<u64, StoreError> {
        self.read(move |c, _| sqlite::audit::minutes_up(c, from / 60_000_000, to / 60_000_000))
            .await
    }

    /// The start of the first minute the endpoint was up (µs), if it ever was.
    pub async fn first_heartbeat(&self) -> Result<Option<i64>, StoreError> {
        self.read(move |c, _| sqlite::audit::first_heartbeat(c))
            .await
            .map(|m| m.map(|m| m * 60_000_000))
    }

    /// The service levels' samples for `[from, to)` (µs).
    pub async fn sla_samples(&self, from: i64, to: i64) -> Result<SlaSamples, StoreError> {
        self.read(move |c, _| sqlite::audit::sla_samples(c, from, to))
            .await
    }

    /// Copies committed WAL frames into the database file, beside the writer (which runs
    /// without automatic checkpoints). Passive: it never blocks a writer.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        self.read(|c, _| sqlite::checkpoint(c)).await
    }
}

/// A member change with its secrets sealed, ready for the writer.
enum SealedChange {
    Upsert(sqlite::members::MemberRow),
    Remove(String),
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
    SealedChange::Upsert(sqlite::members::MemberRow {
        sealed: key.seal(m.member_id.as_bytes(), &m.match_record),
        holdername: m.holdername.hyphenated().to_string(),
        content_sha256,
        pensions: m
            .pensions
            .into_iter()
            .map(|p| {
                let guid = p.asset_guid.hyphenated().to_string();
                sqlite::members::PensionRow {
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

/// Applies one sealed member change on the writer's transaction.
fn apply_member(
    c: &rusqlite::Connection,
    change: &SealedChange,
    now: i64,
) -> Result<AppliedChange, StoreError> {
    let guids = |ids: Vec<String>| -> Result<Vec<Uuid>, StoreError> {
        ids.iter()
            .map(|g| Uuid::try_parse(g).map_err(|_| StoreError::Corrupt("asset GUID")))
            .collect()
    };
    let (member_id, applied, removed) = match change {
        SealedChange::Remove(id) => {
            if sqlite::members::content_hash(c, id)?.is_none() {
                return Ok(AppliedChange {
                    member_id: id.clone(),
                    applied: Applied::NotFound,
                    removed_pensions: Vec::new(),
                });
            }
            let gone = sqlite::members::pension_guids(c, id)?;
            for g in &gone {
                sqlite::members::delete_pension(c, g)?;
                sqlite::peis::retire_pension(c, g, "asset-removed", now)?;
            }
            sqlite::members::delete(c, id)?;
            (id, Applied::Removed, gone)
        }
        SealedChange::Upsert(row) => {
            let before = sqlite::members::content_hash(c, &row.member_id)?;
            if before
                .as_ref()
                .is_some_and(|h| h.as_deref() == Some(&row.content_sha256))
            {
                return Ok(AppliedChange {
                    member_id: row.member_id.clone(),
                    applied: Applied::Unchanged,
                    removed_pensions: Vec::new(),
                });
            }
            let kept: std::collections::HashSet<&str> =
                row.pensions.iter().map(|p| p.asset_guid.as_str()).collect();
            let gone: Vec<String> = sqlite::members::pension_guids(c, &row.member_id)?
                .into_iter()
                .filter(|g| !kept.contains(g.as_str()))
                .collect();
            for g in &gone {
                sqlite::members::delete_pension(c, g)?;
                sqlite::peis::retire_pension(c, g, "asset-removed", now)?;
            }
            sqlite::members::upsert(c, row)?;
            let applied = if before.is_some() {
                Applied::Updated
            } else {
                Applied::Added
            };
            (&row.member_id, applied, gone)
        }
    };
    sqlite::members::record_change(c, "member", member_id, now)?;
    Ok(AppliedChange {
        member_id: member_id.clone(),
        applied,
        removed_pensions: guids(removed)?,
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
        self.table >= sqlite::keys::SEALED.len()
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

fn open_json(key: &DataKey, aad: &str, sealed: &[u8]) -> Result<serde_json::Value, StoreError> {
    let bytes = key.open(aad.as_bytes(), sealed)?;
    serde_json::from_slice(&bytes).map_err(|_| StoreError::Corrupt("view data"))
}

#[cfg(test)]
mod tests;
