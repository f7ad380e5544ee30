-- The first schema (what `PRAGMA user_version = 2` databases already hold: every statement is
-- IF NOT EXISTS, so applying it to one of them changes nothing). Timestamps are integers, µs since
-- the Unix epoch; states are the spellings in src/store/model.rs; personal data arrives sealed.

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

CREATE TABLE IF NOT EXISTS members (
    member_id   TEXT PRIMARY KEY,
    holdername  TEXT NOT NULL,
    sealed      BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS pensions (
    asset_guid   TEXT PRIMARY KEY,
    member_id    TEXT NOT NULL,
    holdername   TEXT NOT NULL,
    scheme_name  TEXT NOT NULL,
    view_data    BLOB NOT NULL,              -- sealed view data JSON
    statement_date   TEXT,                   -- YYYY-MM-DD: values from a statement
    calculation_date TEXT                    -- YYYY-MM-DD: values from a calculation
) STRICT;
CREATE INDEX IF NOT EXISTS pensions_member ON pensions (member_id);

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
