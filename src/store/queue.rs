//! The worker side of the find queue: claim with a lease, record matches, PATs and PeIs,
//! complete or fail, and resume after a restart.
//!
//! Every step is idempotent so that a crash anywhere is repaired by running the request again:
//! matching is deterministic, PeIs are keyed by their URN, a stored PAT is reused, and a PeI
//! already registered is not registered again. Find data is deleted (`find_data = NULL`) in the
//! same transaction that marks a request done or failed; IDs, outcome and timestamps stay.

use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use super::sealed::DataKey;
use super::sqlite::SqliteStore;
use super::StoreError;
use crate::matching::{MatchStatus, PensionMatch};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS pats (
    pat_id      TEXT PRIMARY KEY,
    pat_sha256  TEXT NOT NULL,      -- to find it again on PAT refresh; the PAT itself is sealed
    sealed      BLOB NOT NULL,
    expires_at  INTEGER,            -- the PAT's exp claim, when readable
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS pats_sha ON pats (pat_sha256);

CREATE TABLE IF NOT EXISTS peis (
    pei                 TEXT PRIMARY KEY,
    asset_guid          TEXT NOT NULL UNIQUE,
    holdername          TEXT NOT NULL,
    pension_asset_guid  TEXT NOT NULL,
    member_id           TEXT NOT NULL,
    scheme_name         TEXT NOT NULL,
    match_status        TEXT NOT NULL,  -- match-yes | match-possible
    reason              TEXT NOT NULL,  -- the rule's reason code; never sent to the CAS
    rules_version       TEXT NOT NULL,
    request_id          TEXT NOT NULL,  -- the find that (last) produced it
    pat_id              TEXT,
    resource_id         TEXT,
    state               TEXT NOT NULL,  -- pending | registered | deregistering | deregistered | flagged
    review              TEXT,           -- possible matches: pending | yes | no | timeout
    created_at          INTEGER NOT NULL,
    registered_at       INTEGER,
    deregistered_at     INTEGER,
    deletion_reason     TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS peis_request ON peis (request_id);
CREATE INDEX IF NOT EXISTS peis_pat ON peis (pat_id);

CREATE TABLE IF NOT EXISTS calculations (
    pei                 TEXT PRIMARY KEY,
    pension_asset_guid  TEXT NOT NULL,
    kind                TEXT NOT NULL,  -- DCC (3 working days) | DBC (10 working days)
    started_on          TEXT NOT NULL,  -- the day the PeI was registered as a match
    due_on              TEXT NOT NULL,
    completed_at        INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS calculations_pension ON calculations (pension_asset_guid);
CREATE INDEX IF NOT EXISTS peis_pension ON peis (pension_asset_guid);
";

/// A find request a worker has claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The find request ID.
    pub request_id: String,
    /// When it was ACKed (µs), the start of its completion budget.
    pub acked_at: i64,
    /// Sealed find data.
    pub find_data: Option<Vec<u8>>,
    /// The PAT already obtained for it, if any.
    pub pat_id: Option<String>,
    /// Claims so far, this one included.
    pub attempts: i64,
}

/// A PeI as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPei {
    /// The URN.
    pub pei: String,
    /// Its asset GUID.
    pub asset_guid: String,
    /// Its holdername.
    pub holdername: String,
    /// The pension's own asset GUID.
    pub pension_asset_guid: String,
    /// The member.
    pub member_id: String,
    /// The scheme name (the registration's description).
    pub scheme_name: String,
    /// `match-yes` or `match-possible`.
    pub match_status: String,
    /// Reason code.
    pub reason: String,
    /// The find that produced it.
    pub request_id: String,
    /// The PAT that registered it.
    pub pat_id: Option<String>,
    /// The CAS's resource id.
    pub resource_id: Option<String>,
    /// `pending`, `registered`, `deregistered` or `flagged`.
    pub state: String,
    /// When it was registered as a match (µs).
    pub registered_at: Option<i64>,
}

/// A value calculation owed for a PeI (the 3/10 working-day rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calculation {
    /// The PeI whose view showed it pending.
    pub pei: String,
    /// The pension.
    pub pension_asset_guid: String,
    /// `DCC` or `DBC`.
    pub kind: String,
    /// The day the PeI was registered as a match.
    pub started_on: chrono::NaiveDate,
    /// When the values are due.
    pub due_on: chrono::NaiveDate,
    /// When the values were imported (µs), once they were.
    pub completed_at: Option<i64>,
}

/// A failed find request, for operators (CoCo2.2.6).
#[derive(Debug, Clone)]
pub struct FailedFind {
    /// The find request ID.
    pub request_id: String,
    /// ACKed (µs).
    pub acked_at: i64,
    /// Failed (µs).
    pub completed_at: i64,
    /// Why.
    pub reason: String,
}

/// A connection held for a write, with the process-wide write lock.
struct Write<'a> {
    conn: std::sync::MutexGuard<'a, Connection>,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl std::ops::Deref for Write<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl std::ops::DerefMut for Write<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

/// The queue over its own SQLite connection (WAL lets it run beside the journal writer).
pub struct Queue {
    conn: Mutex<Connection>,
}

fn row_to_pei(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredPei> {
    Ok(StoredPei {
        pei: r.get(0)?,
        asset_guid: r.get(1)?,
        holdername: r.get(2)?,
        pension_asset_guid: r.get(3)?,
        member_id: r.get(4)?,
        scheme_name: r.get(5)?,
        match_status: r.get(6)?,
        reason: r.get(7)?,
        request_id: r.get(8)?,
        pat_id: r.get(9)?,
        resource_id: r.get(10)?,
        state: r.get(11)?,
        registered_at: r.get(12)?,
    })
}

const PEI_COLUMNS: &str = "pei, asset_guid, holdername, pension_asset_guid, member_id, scheme_name,
    match_status, reason, request_id, pat_id, resource_id, state, registered_at";

// === impl Queue ===

impl Queue {
    /// Opens the queue on the store's database file.
    pub fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        let store = SqliteStore::open(path)?;
        Ok(Self {
            conn: Mutex::new(store.into_conn()),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection for a write: the process-wide write lock first (see
    /// [`super::write_lock`]), then the connection.
    fn write(&self) -> Write<'_> {
        let lock = super::write_lock();
        Write {
            conn: self.conn(),
            _lock: lock,
        }
    }

    /// Single-instance start-up: requests a previous process was working on are queued again.
    pub fn requeue_working(&self) -> Result<u64, StoreError> {
        let n = self.write().execute(
            "UPDATE find_requests SET state = 'queued', lease_until = NULL
              WHERE state IN ('queued', 'working') AND state = 'working'",
            [],
        )?;
        Ok(n as u64)
    }

    /// Claims the oldest queued request (or one whose lease ran out).
    ///
    /// The redundant `state IN ('queued', 'working')` lets SQLite use the partial index
    /// `find_requests_open`; without it every claim scanned and sorted the whole table (found
    /// under load: 50 claims/s with 50k rows). `claim_uses_the_open_index` guards it.
    pub fn claim(&self, now: i64, lease_micros: i64) -> Result<Option<Claimed>, StoreError> {
        let conn = self.write();
        let mut stmt = conn.prepare_cached(
            "UPDATE find_requests
                SET state = 'working', lease_until = ?1 + ?2, attempts = attempts + 1
              WHERE request_id = coalesce(
                    (SELECT request_id FROM find_requests
                      WHERE state IN ('queued', 'working') AND state = 'queued'
                      ORDER BY acked_at LIMIT 1),
                    (SELECT request_id FROM find_requests
                      WHERE state IN ('queued', 'working') AND state = 'working'
                        AND lease_until < ?1
                      ORDER BY acked_at LIMIT 1))
          RETURNING request_id, acked_at, find_data, pat_id, attempts",
        )?;
        Ok(stmt
            .query_row(params![now, lease_micros], |r| {
                Ok(Claimed {
                    request_id: r.get(0)?,
                    acked_at: r.get(1)?,
                    find_data: r.get(2)?,
                    pat_id: r.get(3)?,
                    attempts: r.get(4)?,
                })
            })
            .optional()?)
    }

    /// Records the PeIs a find produced (idempotent: an existing PeI keeps its state and PAT).
    pub fn record_matches(
        &self,
        request_id: &str,
        matches: &[(String, uuid::Uuid, &PensionMatch)],
    ) -> Result<(), StoreError> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO peis (pei, asset_guid, holdername, pension_asset_guid, member_id,
                     scheme_name, match_status, reason, rules_version, request_id, state, review,
                     created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?11, ?12)
                 ON CONFLICT (pei) DO UPDATE SET request_id = excluded.request_id
                     WHERE peis.state = 'pending'",
            )?;
            let now = crate::now_micros();
            for (pei, asset_guid, m) in matches {
                let review = (m.status == MatchStatus::Possible).then_some("pending");
                stmt.execute(params![
                    pei,
                    asset_guid.hyphenated().to_string(),
                    m.holdername.hyphenated().to_string(),
                    m.pension_asset_guid.hyphenated().to_string(),
                    m.member_id,
                    m.scheme_name,
                    m.status.as_str(),
                    m.reason,
                    m.rules_version,
                    request_id,
                    review,
                    now
                ])?;
            }
            let versions: Vec<&str> = {
                let mut v: Vec<&str> = matches.iter().map(|m| m.2.rules_version.as_str()).collect();
                v.sort_unstable();
                v.dedup();
                v
            };
            tx.execute(
                "UPDATE find_requests SET rules_version = ?2 WHERE request_id = ?1",
                params![request_id, versions.join(",")],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Stores a PAT (sealed) and links it to the find request; returns its id.
    pub fn save_pat(
        &self,
        key: &DataKey,
        request_id: &str,
        pat: &str,
        expires_at: Option<i64>,
    ) -> Result<String, StoreError> {
        let pat_id = uuid::Uuid::new_v4().hyphenated().to_string();
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(pat.as_bytes()));
        let mut conn = self.write();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO pats (pat_id, pat_sha256, sealed, expires_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                pat_id,
                sha,
                key.seal(pat_id.as_bytes(), pat.as_bytes()),
                expires_at,
                crate::now_micros()
            ],
        )?;
        tx.execute(
            "UPDATE find_requests SET pat_id = ?2 WHERE request_id = ?1",
            params![request_id, pat_id],
        )?;
        tx.commit()?;
        Ok(pat_id)
    }

    /// Opens a stored PAT.
    pub fn pat(&self, key: &DataKey, pat_id: &str) -> Result<String, StoreError> {
        let sealed: Vec<u8> =
            self.conn()
                .query_row("SELECT sealed FROM pats WHERE pat_id = ?1", [pat_id], |r| {
                    r.get(0)
                })?;
        let bytes = key.open(pat_id.as_bytes(), &sealed)?;
        String::from_utf8(bytes).map_err(|_| StoreError::Corrupt("PAT"))
    }

    /// PeIs a find request produced.
    pub fn peis_for_request(&self, request_id: &str) -> Result<Vec<StoredPei>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {PEI_COLUMNS} FROM peis WHERE request_id = ?1 ORDER BY pei"
        ))?;
        let rows = stmt.query_map([request_id], row_to_pei)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every PeI, for operators and tests.
    pub fn peis(&self) -> Result<Vec<StoredPei>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {PEI_COLUMNS} FROM peis ORDER BY pei"))?;
        let rows = stmt.query_map([], row_to_pei)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One PeI by its asset GUID (the view endpoint's key).
    pub fn pei_by_asset_guid(&self, asset_guid: &str) -> Result<Option<StoredPei>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {PEI_COLUMNS} FROM peis WHERE asset_guid = ?1"
        ))?;
        Ok(stmt.query_row([asset_guid], row_to_pei).optional()?)
    }

    /// Marks a PeI registered. Its PAT is set only if it had none: a PeI registered earlier
    /// keeps the PAT that registered it (the CAS answers 401 to any other).
    pub fn registered(&self, pei: &str, resource_id: &str, pat_id: &str) -> Result<(), StoreError> {
        self.write().execute(
            "UPDATE peis SET state = 'registered', resource_id = ?2,
                    pat_id = coalesce(pat_id, ?3), registered_at = coalesce(registered_at, ?4)
              WHERE pei = ?1",
            params![pei, resource_id, pat_id, crate::now_micros()],
        )?;
        Ok(())
    }

    /// Ends a request: outcome recorded, find data deleted. False when it was no longer being
    /// worked on (another worker finished it after this one's lease ran out).
    pub fn complete(&self, request_id: &str, outcome: &str) -> Result<bool, StoreError> {
        let n = self.write().execute(
            "UPDATE find_requests
                SET state = 'done', outcome = ?2, find_data = NULL, lease_until = NULL,
                    completed_at = ?3
              WHERE request_id = ?1 AND state = 'working'",
            params![request_id, outcome, crate::now_micros()],
        )?;
        Ok(n == 1)
    }

    /// Fails a request with a reason (never personal data); find data deleted. False as for
    /// [`Queue::complete`].
    pub fn fail(&self, request_id: &str, reason: &str) -> Result<bool, StoreError> {
        let n = self.write().execute(
            "UPDATE find_requests
                SET state = 'failed', reason = ?2, find_data = NULL, lease_until = NULL,
                    completed_at = ?3
              WHERE request_id = ?1 AND state = 'working'",
            params![request_id, reason, crate::now_micros()],
        )?;
        Ok(n == 1)
    }

    /// Failed find requests, newest first (CoCo2.2.6).
    pub fn failed(&self) -> Result<Vec<FailedFind>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT request_id, acked_at, completed_at, reason FROM find_requests
              WHERE state = 'failed' ORDER BY completed_at DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(FailedFind {
                request_id: r.get(0)?,
                acked_at: r.get(1)?,
                completed_at: r.get(2)?,
                reason: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a value calculation owed for a PeI (once; later calls keep the first).
    pub fn record_calculation(&self, c: &Calculation) -> Result<(), StoreError> {
        // Every view of stale values lands here: a read answers the common case without the
        // write lock.
        let known: bool = self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM calculations WHERE pei = ?1)",
            [&c.pei],
            |r| r.get(0),
        )?;
        if known {
            return Ok(());
        }
        self.write()
            .prepare_cached(
                "INSERT OR IGNORE INTO calculations (pei, pension_asset_guid, kind, started_on, due_on)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                c.pei,
                c.pension_asset_guid,
                c.kind,
                c.started_on.to_string(),
                c.due_on.to_string()
            ])?;
        Ok(())
    }

    /// Closes the open calculations of a pension; returns how many.
    pub fn complete_calculations(&self, pension_asset_guid: &str) -> Result<u64, StoreError> {
        let n = self.write().execute(
            "UPDATE calculations SET completed_at = ?2
              WHERE pension_asset_guid = ?1 AND completed_at IS NULL",
            params![pension_asset_guid, crate::now_micros()],
        )?;
        Ok(n as u64)
    }

    /// Calculations, open ones first by due date.
    pub fn calculations(&self) -> Result<Vec<Calculation>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT pei, pension_asset_guid, kind, started_on, due_on, completed_at
               FROM calculations ORDER BY completed_at IS NOT NULL, due_on, pei",
        )?;
        let rows = stmt.query_map([], |r| {
            let date = |s: String| crate::matching::normalise::date(&s).unwrap_or_default();
            Ok(Calculation {
                pei: r.get(0)?,
                pension_asset_guid: r.get(1)?,
                kind: r.get(2)?,
                started_on: date(r.get(3)?),
                due_on: date(r.get(4)?),
                completed_at: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stops serving a PeI before its de-registration is sent (views answer `404`).
    pub fn mark_deregistering(&self, pei: &str) -> Result<(), StoreError> {
        self.write().execute(
            "UPDATE peis SET state = 'deregistering' WHERE pei = ?1 AND state = 'registered'",
            [pei],
        )?;
        Ok(())
    }

    /// Marks a PeI de-registered (or gone at the CAS) with its deletion reason.
    pub fn deregistered(&self, pei: &str, reason: &str) -> Result<(), StoreError> {
        self.write().execute(
            "UPDATE peis SET state = 'deregistered', deletion_reason = ?2, deregistered_at = ?3
              WHERE pei = ?1",
            params![pei, reason, crate::now_micros()],
        )?;
        Ok(())
    }

    /// Flags a PeI "de-registration pending: notify PDP" (its PAT was refused): never served again.
    pub fn flag_for_deregistration(&self, pei: &str, reason: &str) -> Result<(), StoreError> {
        self.write().execute(
            "UPDATE peis SET state = 'flagged', deletion_reason = ?2, deregistered_at = ?3
              WHERE pei = ?1",
            params![pei, reason, crate::now_micros()],
        )?;
        Ok(())
    }

    /// Records a possible match's review: `yes` (now a definite match), `no` or `timeout`.
    pub fn set_review(
        &self,
        pei: &str,
        review: &str,
        match_status: &str,
    ) -> Result<(), StoreError> {
        self.write().execute(
            "UPDATE peis SET review = ?2, match_status = ?3 WHERE pei = ?1",
            params![pei, review, match_status],
        )?;
        Ok(())
    }

    /// Registered possible matches still waiting for review that were created before `before`
    /// (µs): due for `match-timeout`.
    pub fn possible_unreviewed_before(&self, before: i64) -> Result<Vec<StoredPei>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {PEI_COLUMNS} FROM peis
              WHERE match_status = 'match-possible' AND review = 'pending'
                AND state IN ('registered', 'deregistering') AND created_at < ?1
              ORDER BY created_at"
        ))?;
        let rows = stmt.query_map([before], row_to_pei)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// PeIs flagged for de-registration (CoCo2.2.4), for the operator report and the metric.
    pub fn flagged(&self) -> Result<Vec<StoredPei>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {PEI_COLUMNS} FROM peis WHERE state = 'flagged' ORDER BY pei"
        ))?;
        let rows = stmt.query_map([], row_to_pei)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// PAT refresh (SPEC §3.3): replaces the stored PAT whose SHA-256 is `previous_sha256` for
    /// every PeI it covered. Returns how many stored PATs were replaced (0: unknown).
    pub fn refresh_pat(
        &self,
        key: &DataKey,
        previous_sha256: &str,
        new_pat: &str,
        expires_at: Option<i64>,
    ) -> Result<u64, StoreError> {
        let mut conn = self.write();
        // Immediate: it reads then writes, and a deferred transaction could not upgrade past a
        // concurrent commit (SQLITE_BUSY_SNAPSHOT bypasses the busy timeout).
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let ids: Vec<String> = {
            let mut stmt = tx.prepare("SELECT pat_id FROM pats WHERE pat_sha256 = ?1")?;
            let rows = stmt.query_map([previous_sha256], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(new_pat.as_bytes()));
        for id in &ids {
            tx.execute(
                "UPDATE pats SET pat_sha256 = ?2, sealed = ?3, expires_at = ?4 WHERE pat_id = ?1",
                params![
                    id,
                    sha,
                    key.seal(id.as_bytes(), new_pat.as_bytes()),
                    expires_at
                ],
            )?;
        }
        tx.commit()?;
        Ok(ids.len() as u64)
    }

    /// Runs `f` with the connection (for stores built on the same file): reads.
    pub fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        f(&mut self.conn())
    }

    /// Runs `f` with the connection and the process-wide write lock: writes.
    pub fn with_write<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        f(&mut self.write())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_uses_the_open_index() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(&dir.path().join("q.sqlite")).unwrap();
        let plan: Vec<String> = q.with_conn(|c| {
            let mut stmt = c
                .prepare(
                    "EXPLAIN QUERY PLAN SELECT request_id FROM find_requests
                      WHERE state IN ('queued', 'working') AND state = 'queued'
                      ORDER BY acked_at LIMIT 1",
                )
                .unwrap();
            let rows = stmt.query_map([], |r| r.get::<_, String>(3)).unwrap();
            rows.map(Result::unwrap).collect()
        });
        assert!(
            plan.iter()
                .any(|p| p.contains("USING INDEX find_requests_open")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "{plan:?}");
    }
}
