//! Durable state, behind one handle: [`Store`].
//!
//! "Durable" here means: on stable storage and fsync'd, so that it survives `kill -9` and power
//! loss. A find request is ACKed only once the transaction that holds it has committed with a
//! sync (CoCo2.1.1, 2.1.4).
//!
//! # Layout
//!
//! Each unit of work (claim finds, record matches, end a find, apply a member change, count a
//! sign-in attempt, ...) is written once, as an async function over a transaction ([`sql::Tx`]),
//! with its SQL in one spelling. The area modules hold them beside the [`Store`] methods that run
//! them:
//!
//! - [`finds`]: the find queue: appends at the ACK, claims under a lease, ends.
//! - [`peis`]: PeIs, the PATs that registered them, calculations owed.
//! - [`members`]: member records, their pensions' view data, schemes, data changes.
//! - [`keys`]: the sealed columns under a new data key.
//! - [`audit`]: the audit trail, heartbeats, the service levels' samples, daily jobs' runs.
//! - [`history`]: ended finds moved out of the hot table, the service levels' hourly tallies,
//!   the retention purge a batch at a time.
//! - [`reports`]: PDP reporting's facts, announced unavailability, submissions' claims.
//! - [`backup`]: online copies of the embedded store, and the checks a restore makes.
//! - [`console`]: the operator console's users, the organisation's details, sign-in attempts.
//! - [`review`]: the console's: searchers' data of open possible matches (sealed), the audit
//!   trail a page at a time, schemes with their names and counts.
//!
//! Below them, only what truly differs is per backend, behind [`db::Database`] (a handful of
//! capabilities, none of them a query): [`sqlite`] (embedded, the default: one instance, one
//! writer thread whose group commits carry every write) and [`postgres`] (several instances on
//! one database: find appends and audit records ride one writer task's group commits, every
//! other unit its own transaction on a pooled connection). Each is its connection and pool, its
//! group-commit writer (PostgreSQL's inserts a batch with `unnest`), and its [`sql::Tx`], which
//! renders statements in its dialect ([`sql::render`]: placeholders and the schema's tokens) and
//! maps its driver's values and errors once. Where a unit's SQL truly differs (a claim's
//! `FOR UPDATE SKIP LOCKED` against SQLite's partial-index form, `LOCK TABLE`), it asks the
//! transaction for its dialect, beside the SQL.
//!
//! Why this, and not a query builder or one driver for both: the statements are plain SQL that
//! both databases accept but for placeholders and a few tokens, so a builder would restate them
//! in Rust without removing a difference; and sqlx would replace two drivers whose durability
//! settings, TLS and pools the endpoint is tuned on with one whose SQLite side runs each
//! connection on a worker thread of its own, beside the writer's group commit that makes the ACK
//! cheap rather than inside it. A unit's future runs on SQLite's blocking connection at its first
//! poll (its statements never wait), and as a task on PostgreSQL's.
//!
//! # Where each invariant lives
//!
//! - The area modules: the queue's claim and end conditions (`state = 'working'` on every end,
//!   so a find is ended once), idempotent PeI recording, the append-only audit trail.
//! - [`group_commit`]: what both writers share: the channel the ACK path and the audit trail
//!   write into, a batch drained from it, and the rule that no waiter is answered before the
//!   commit holding its write. No write is answered before its commit has synced.
//! - [`crate::sealed`]: personal data at rest. The store seals find data, PATs, member records and
//!   view data on the caller's task before they reach a backend, and opens them after a read; a
//!   backend only ever sees sealed bytes.
//! - [`schema`]: the tables, written once: each migration one SQL file, rendered in SQLite's or
//!   PostgreSQL's dialect when a backend applies it.
//! - [`crate::model`] (below the store): the states, as enums; the only place their stored
//!   spellings are written.
//! - This file: the handle, opening either backend, running units of work, the count of open
//!   finds that decides shedding, and [`StoreError`]: unavailable (try later), refused, or a bug,
//!   whatever the driver.
//!
//! The store imports nothing of matching, members or view data: callers hand it typed rows and
//! get typed rows back. Both backends pass the same behaviour tests (`tests.rs`), and one test
//! runs every unit of work on each and compares the answers (`tests/same.rs`).

mod audit;
pub mod backup;
pub mod console;
mod db;
mod finds;
mod group_commit;
mod history;
mod keys;
mod members;
mod packed;
mod peis;
mod postgres;
mod reports;
pub mod review;
mod schema;
mod sql;
mod sqlite;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use crate::model::{
    AppendOutcome, Applied, AppliedChange, Calculation, CalculationKind, Claimed, DataChange,
    Decided, FailedFind, FindOutcome, FindState, MatchKeys, MatchStatus, MemberChange, NewFind,
    NewMember, NewPei, NewPension, PeiMatch, PeiState, ReviewState, SchemeState, SlaSamples,
    StoredFind, StoredPei, StoredPension,
};
use crate::sealed::{self, DataKey};
pub use audit::{SLICE_ROWS, SLICE_WAIT};
pub use history::{EndedFind, Purged, Seed, SeededPei, HOT_FOR, HOUR};
pub use keys::{ResealCursor, Resealed};
pub use members::{IndexEntry, IndexRow, KeySample, SealedMembers, SlotRecord};
pub use postgres::{PostgresOptions, PostgresTls};
use sql::{Access, BoxFuture, Tx};

/// A stored date, `YYYY-MM-DD`.
fn stored_date(s: Option<String>) -> Option<chrono::NaiveDate> {
    s.and_then(|s| chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok())
}

/// A store operation's result.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be had now (a connection lost, the pool exhausted, a lock held past
    /// its time-out): try again later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The database refused the change (a constraint): trying again changes nothing.
    #[error("store refused: {0}")]
    Refused(String),
    /// A statement failed that should not have (a bug: SQL, types, a broken invariant).
    #[error("store: {0}")]
    Internal(String),
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
    /// The database cannot be had now (an outage): nothing in the batch was ACKed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
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
    db: Box<dyn db::Database>,
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
        Self::over(Box::new(db), key, limits, open)
    }

    /// Connects to the PostgreSQL store at `options.url`, applies its migrations and starts its
    /// writer. Several instances may share it.
    pub async fn connect_postgres(
        options: &PostgresOptions,
        key: DataKey,
        limits: StoreLimits,
    ) -> Result<Store, StoreError> {
        let db = postgres::Postgres::connect(options, limits).await?;
        let store = Self::over(Box::new(db), key, limits, 0)?;
        store.count_pending().await?;
        Ok(store)
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
        db: Box<dyn db::Database>,
        key: DataKey,
        limits: StoreLimits,
        open: u64,
    ) -> Result<Store, StoreError> {
        let shared = db.shared();
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
                    let _ = Store { inner }.count_pending().await;
                }
            });
        }
        Ok(store)
    }

    /// Reads the count of open finds from the database (at start, and after others changed it).
    pub async fn count_pending(&self) -> Result<u64, StoreError> {
        let n = self.read(|tx| Box::pin(finds::open_count(tx))).await?;
        self.inner.pending.store(n, Ordering::Release);
        Ok(n)
    }

    fn db(&self) -> &dyn db::Database {
        &*self.inner.db
    }

    /// Runs a unit of work on the backend, as `access` asks (see [`sql`]).
    async fn run<T, F>(&self, access: Access, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut dyn Tx) -> BoxFuture<'t, Result<T>> + Send + 'static,
    {
        let out = self.db().run(access, sql::erase(work)).await?;
        out.downcast::<T>()
            .map(|t| *t)
            .map_err(|_| StoreError::Internal("a unit of work answered another type".into()))
    }

    /// Runs reads (each statement on its own).
    async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut dyn Tx) -> BoxFuture<'t, Result<T>> + Send + 'static,
    {
        self.run(Access::Read, work).await
    }

    /// Runs writes in one transaction; answers once it is durable.
    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut dyn Tx) -> BoxFuture<'t, Result<T>> + Send + 'static,
    {
        self.run(Access::Write, work).await
    }
}

#[cfg(test)]
mod tests;
