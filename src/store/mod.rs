//! Durable state behind narrow interfaces.
//!
//! "Durable" here means: on stable storage and fsync'd, so that it survives `kill -9` and power
//! loss. A find request is ACKed only once the transaction that holds it has committed with a
//! sync (CoCo2.1.1, 2.1.4).
//!
//! - [`journal`]: group commit. The HTTP layer hands it appends; one writer thread commits each
//!   batch in one transaction with one fsync and then releases every ACK in the batch.
//! - [`sqlite`]: the embedded backend (WAL, `synchronous = FULL`).
//! - [`sealed`]: AES-256-GCM for find data, UATs and PATs at rest.
//! - [`queue`]: the worker side: claim with a lease, PATs, PeIs, complete, resume on restart.
//! - [`members`]: member records and their pensions' view data, sealed.
//!
//! The HTTP layer sees only [`journal::Journal`]; the journal sees only [`JournalBackend`]. A
//! PostgreSQL backend implements the same trait and nothing above it changes.

pub mod journal;
pub mod members;
pub mod queue;
pub mod sealed;
pub mod sqlite;

use crate::audit::AuditRecord;

/// One SQLite writer at a time in this process.
///
/// SQLite allows one write transaction per database. Left to its busy handler, connections that
/// find the lock taken poll with growing sleeps, and under load the journal writer starved
/// behind a stream of worker writes until its busy timeout ran out ("database is locked": an
/// ACK lost to a 500). Every write in this process takes this lock first, so waiting writers
/// queue on a futex instead of polling; SQLite's busy timeout is left for other processes
/// (operator commands). Reads do not take it: WAL readers never block.
pub(crate) fn write_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // Poisoning carries no meaning for a unit mutex.
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A find request on its way into the store: IDs and timestamps in the clear, find data sealed.
#[derive(Debug, Clone)]
pub struct NewFind {
    /// The find request ID (its X-Request-ID).
    pub request_id: String,
    /// When the request was received, µs since the epoch.
    pub received_at: i64,
    /// The validated find request (UAT and find data), sealed with the data key.
    pub sealed: Vec<u8>,
}

/// Whether an append created a new find request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// A new find request, now durable.
    Created,
    /// The request ID was already stored: the first request stands.
    Duplicate,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SQLite backend failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The store's directory could not be created.
    #[error("creating {path}: {source}")]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A sealed value failed to open.
    #[error(transparent)]
    Seal(#[from] sealed::SealError),
    /// A stored value does not parse.
    #[error("stored {0} is corrupt")]
    Corrupt(&'static str),
}

/// The one operation the journal needs from a backend.
pub trait JournalBackend: Send + 'static {
    /// Commits `finds` and `audit` in one transaction with one sync, all or nothing. Returns, per
    /// find, whether it was new. `audit[i]` for `i < finds.len()` is `finds[i]`'s own record;
    /// the backend marks it `duplicate` when the find was already stored.
    fn commit(
        &mut self,
        finds: &[NewFind],
        audit: &mut [AuditRecord],
    ) -> Result<Vec<AppendOutcome>, StoreError>;

    /// Find requests not yet at an end (queued or being worked), for the queue bound at start-up.
    fn pending(&mut self) -> Result<u64, StoreError>;
}
