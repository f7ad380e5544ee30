//! The embedded backend: SQLite in WAL mode with `synchronous = FULL`.
//!
//! WAL lets readers (workers, ops queries) run beside the one journal writer; `FULL` makes each
//! commit sync the WAL, which is what makes an ACK durable. Timestamps are integers, µs since the
//! Unix epoch. Find data is sealed before it reaches this file.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use super::{AppendOutcome, JournalBackend, NewFind, StoreError};
use crate::audit::AuditRecord;

/// Schema version written to `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS find_requests (
    request_id    TEXT PRIMARY KEY,
    received_at   INTEGER NOT NULL,
    acked_at      INTEGER NOT NULL,
    state         TEXT NOT NULL DEFAULT 'queued',  -- queued | working | done | failed
    find_data     BLOB,                            -- sealed; NULL once deleted
    outcome       TEXT,                            -- match-yes | match-possible | no-match
    reason        TEXT,                            -- failure reason, never personal data
    rules_version TEXT,
    pat_id        TEXT,                            -- the PAT the UAT was swapped for
    lease_until   INTEGER,
    attempts      INTEGER NOT NULL DEFAULT 0,
    completed_at  INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS find_requests_open
    ON find_requests (state, acked_at) WHERE state IN ('queued', 'working');

CREATE TABLE IF NOT EXISTS audit_log (
    id             INTEGER PRIMARY KEY,
    transaction_id TEXT NOT NULL,
    request_id     TEXT,
    direction      TEXT NOT NULL,
    party          TEXT NOT NULL,
    endpoint       TEXT NOT NULL,
    received_at    INTEGER NOT NULL,
    responded_at   INTEGER NOT NULL,
    status         INTEGER NOT NULL,
    latency_us     INTEGER NOT NULL,
    outcome        TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS audit_log_received ON audit_log (received_at);
-- No index on request_id or transaction_id: both are random UUIDs, and each random index costs
-- every ACK a scattered page write in its group commit (measured: 11.7k → 14.4-14.9k ACKs/s,
-- BENCHMARKS.md). Forensic queries by ID run inside a time window on audit_log_received.


-- The audit trail is append-only: no row changes, and rows go only once the purge job has
-- moved the retention cutoff past them (CoCo2.1.6: 6 years by default).
CREATE TABLE IF NOT EXISTS audit_retention (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    cutoff  INTEGER NOT NULL
) STRICT;
CREATE TRIGGER IF NOT EXISTS audit_log_append_only BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER IF NOT EXISTS audit_log_retained BEFORE DELETE ON audit_log
WHEN old.received_at >= coalesce((SELECT cutoff FROM audit_retention WHERE id = 1), 0)
BEGIN
    SELECT RAISE(ABORT, 'audit_log rows are kept for the retention period');
END;

-- One row per minute the endpoint was up and ready: monthly availability (CoCo2.1.5).
CREATE TABLE IF NOT EXISTS heartbeats (
    minute  INTEGER PRIMARY KEY    -- minutes since the Unix epoch
) STRICT;
";

/// A find request as stored, for the queue, operators and tests.
#[derive(Debug, Clone)]
pub struct StoredFind {
    /// The find request ID.
    pub request_id: String,
    /// Received, µs since the epoch.
    pub received_at: i64,
    /// ACKed (committed), µs since the epoch.
    pub acked_at: i64,
    /// `queued`, `working`, `done` or `failed`.
    pub state: String,
    /// Sealed find data, `None` once deleted.
    pub find_data: Option<Vec<u8>>,
    /// Match outcome, once matched.
    pub outcome: Option<String>,
    /// Why it failed, if it did.
    pub reason: Option<String>,
    /// When it reached its end (µs).
    pub completed_at: Option<i64>,
}

impl StoredFind {
    /// Milliseconds from ACK to end, once ended.
    pub fn completed_ms(&self) -> Option<f64> {
        self.completed_at
            .map(|c| (c - self.acked_at) as f64 / 1000.0)
    }
}

/// The SQLite store.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

// === impl SqliteStore ===

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, in WAL mode with full sync.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // 8 MiB of page cache: index pages of random-UUID keys stay in memory instead of being
        // re-read on every insert. Much larger costs more than it saves (the cache is walked
        // whenever another connection's commit invalidates it: measured in BENCHMARKS.md).
        conn.pragma_update(None, "cache_size", -8_192)?;

        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version < SCHEMA_VERSION {
            conn.execute_batch(SCHEMA)?;
            conn.execute_batch(super::members::SCHEMA)?;
            conn.execute_batch(super::queue::SCHEMA)?;
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        Ok(Self {
            conn,
            path: path.to_owned(),
        })
    }

    /// Opens the store for the journal writer: as [`SqliteStore::open`], without automatic
    /// checkpoints. A checkpoint copies the WAL into the database file and syncs it; done on the
    /// writer thread it stalls every ACK waiting on that commit, so the upkeep task runs
    /// passive checkpoints beside it instead (see `upkeep.rs`).
    pub fn open_journal(path: &Path) -> Result<Self, StoreError> {
        let store = Self::open(path)?;
        store.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(store)
    }

    /// Gives up the store for its connection.
    pub fn into_conn(self) -> Connection {
        self.conn
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying connection, for the other stores built on the same file.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The underlying connection, mutably (transactions).
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// One find request by ID.
    pub fn find_request(&self, request_id: &str) -> Result<Option<StoredFind>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT request_id, received_at, acked_at, state, find_data, outcome, reason, completed_at
                 FROM find_requests WHERE request_id = ?1",
                [request_id],
                row_to_find,
            )
            .optional()?)
    }

    /// Every find request, oldest first.
    pub fn find_requests(&self) -> Result<Vec<StoredFind>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT request_id, received_at, acked_at, state, find_data, outcome, reason, completed_at
             FROM find_requests ORDER BY acked_at, request_id",
        )?;
        let rows = stmt.query_map([], row_to_find)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Audit records for one transaction or find request ID, oldest first.
    pub fn audit_for(&self, id: &str) -> Result<Vec<AuditRecord>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT transaction_id, request_id, direction, party, endpoint, received_at,
                    responded_at, status, outcome
             FROM audit_log WHERE transaction_id = ?1 OR request_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(AuditRecord {
                transaction_id: r.get(0)?,
                request_id: r.get(1)?,
                direction: if r.get::<_, String>(2)? == "outbound" {
                    crate::audit::Direction::Outbound
                } else {
                    crate::audit::Direction::Inbound
                },
                party: r.get(3)?,
                endpoint: r.get(4)?,
                received_at: r.get(5)?,
                responded_at: r.get(6)?,
                status: r.get(7)?,
                outcome: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn row_to_find(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredFind> {
    Ok(StoredFind {
        request_id: r.get(0)?,
        received_at: r.get(1)?,
        acked_at: r.get(2)?,
        state: r.get(3)?,
        find_data: r.get(4)?,
        outcome: r.get(5)?,
        reason: r.get(6)?,
        completed_at: r.get(7)?,
    })
}

/// Inserts audit records with the connection's cached statement (inside the caller's transaction).
pub(crate) fn insert_audit(conn: &Connection, audit: &[AuditRecord]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO audit_log (transaction_id, request_id, direction, party, endpoint,
             received_at, responded_at, status, latency_us, outcome)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for a in audit {
        stmt.execute(params![
            a.transaction_id,
            a.request_id,
            a.direction.as_str(),
            a.party,
            a.endpoint,
            a.received_at,
            a.responded_at,
            a.status,
            a.latency_micros(),
            a.outcome,
        ])?;
    }
    Ok(())
}

impl JournalBackend for SqliteStore {
    fn commit(
        &mut self,
        finds: &[NewFind],
        audit: &mut [AuditRecord],
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        if finds.is_empty() && audit.is_empty() {
            return Ok(Vec::new());
        }
        let _write = super::write_lock();
        let tx = self.conn.transaction()?;
        let mut outcomes = Vec::with_capacity(finds.len());
        {
            let acked_at = crate::now_micros();
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO find_requests (request_id, received_at, acked_at, find_data)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (i, f) in finds.iter().enumerate() {
                let n = stmt.execute(params![f.request_id, f.received_at, acked_at, f.sealed])?;
                outcomes.push(if n == 1 {
                    AppendOutcome::Created
                } else {
                    if let Some(a) = audit.get_mut(i) {
                        a.outcome = "duplicate".into();
                    }
                    AppendOutcome::Duplicate
                });
            }
        }
        insert_audit(&tx, audit)?;
        tx.commit()?;
        Ok(outcomes)
    }

    fn pending(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM find_requests WHERE state IN ('queued', 'working')",
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Direction;

    fn audit(id: &str) -> AuditRecord {
        AuditRecord {
            transaction_id: id.into(),
            request_id: Some(id.into()),
            direction: Direction::Inbound,
            party: "CN=pfs".into(),
            endpoint: "POST /find-requests".into(),
            received_at: 1,
            responded_at: 3,
            status: 202,
            outcome: "ack".into(),
        }
    }

    #[test]
    fn commit_dedupes_and_audits() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
        let f = |id: &str| NewFind {
            request_id: id.into(),
            received_at: 1,
            sealed: vec![1, 2, 3],
        };
        let out = s
            .commit(
                &[f("a"), f("b"), f("a")],
                &mut [audit("a"), audit("b"), audit("a")],
            )
            .unwrap();
        assert_eq!(
            out,
            [
                AppendOutcome::Created,
                AppendOutcome::Created,
                AppendOutcome::Duplicate
            ]
        );
        assert_eq!(s.pending().unwrap(), 2);
        assert_eq!(s.find_requests().unwrap().len(), 2);
        let a = s.audit_for("a").unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].latency_micros(), 2);
        assert_eq!(
            (a[0].outcome.as_str(), a[1].outcome.as_str()),
            ("ack", "duplicate")
        );
        // Reopening keeps everything and does not re-run the schema.
        drop(s);
        let s = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
        assert_eq!(s.find_requests().unwrap().len(), 2);
        let mode: String = s
            .conn()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
}
