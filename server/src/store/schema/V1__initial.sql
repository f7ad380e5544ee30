-- The first schema. On SQLite it is what `PRAGMA user_version = 2` databases already hold: every
-- statement is IF NOT EXISTS there, so applying it to one of them changes nothing (PostgreSQL
-- databases began with this migration: a table already there is an error). Timestamps are
-- integers, µs since the Unix epoch; states are the spellings in src/store/model.rs; personal data
-- arrives sealed.

CREATE TABLE{if_not_exists} find_requests (
    request_id    TEXT PRIMARY KEY,
    received_at   {int64} NOT NULL,
    acked_at      {int64} NOT NULL,
    state         TEXT NOT NULL DEFAULT 'queued',  -- queued | working | done | failed
    find_data     {bytes},                         -- sealed; NULL once deleted
    outcome       TEXT,                            -- match-yes | match-possible | no-match
    reason        TEXT,                            -- failure reason, never personal data
    rules_version TEXT,
    pat_id        TEXT,                            -- the PAT the UAT was swapped for
    lease_until   {int64},
    attempts      {int64} NOT NULL DEFAULT 0,
    completed_at  {int64}
){strict};
-- Claims walk only the open finds, oldest first.
--{sqlite
CREATE INDEX IF NOT EXISTS find_requests_open
    ON find_requests (state, acked_at) WHERE state IN ('queued', 'working');
--}
--{postgres
CREATE INDEX find_requests_open
    ON find_requests (acked_at) WHERE state IN ('queued', 'working');
CREATE INDEX find_requests_acked ON find_requests (acked_at);
--}

CREATE TABLE{if_not_exists} audit_log (
    id             {rowid},
    transaction_id TEXT NOT NULL,
    request_id     TEXT,
    direction      TEXT NOT NULL,
    party          TEXT NOT NULL,
    endpoint       TEXT NOT NULL,
    received_at    {int64} NOT NULL,
    responded_at   {int64} NOT NULL,
    status         INTEGER NOT NULL,
    latency_us     {int64} NOT NULL,
    outcome        TEXT NOT NULL
){strict};
CREATE INDEX{if_not_exists} audit_log_received ON audit_log (received_at);
-- No index on request_id or transaction_id: both are random UUIDs, and each random index costs
-- every ACK a scattered page write in its group commit (measured: 11.7k → 14.4-14.9k ACKs/s,
-- BENCHMARKS.md). Forensic queries by ID run inside a time window on audit_log_received.

-- The audit trail is append-only: no row changes, and rows go only once the purge job has
-- moved the retention cutoff past them (CoCo2.1.6: 6 years by default).
CREATE TABLE{if_not_exists} audit_retention (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    cutoff  {int64} NOT NULL
){strict};
--{sqlite
CREATE TRIGGER IF NOT EXISTS audit_log_append_only BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER IF NOT EXISTS audit_log_retained BEFORE DELETE ON audit_log
WHEN old.received_at >= coalesce((SELECT cutoff FROM audit_retention WHERE id = 1), 0)
BEGIN
    SELECT RAISE(ABORT, 'audit_log rows are kept for the retention period');
END;
--}
--{postgres
CREATE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'audit_log is append-only';
    END IF;
    IF OLD.received_at >= coalesce((SELECT cutoff FROM audit_retention WHERE id = 1), 0) THEN
        RAISE EXCEPTION 'audit_log rows are kept for the retention period';
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_guard();
--}

-- One row per minute an endpoint was up and ready: monthly availability (CoCo2.1.5).
CREATE TABLE{if_not_exists} heartbeats (
    minute  {int64} PRIMARY KEY    -- minutes since the Unix epoch
){strict};

CREATE TABLE{if_not_exists} members (
    member_id   TEXT PRIMARY KEY,
    holdername  TEXT NOT NULL,
    sealed      {bytes} NOT NULL
){strict};
CREATE TABLE{if_not_exists} pensions (
    asset_guid   TEXT PRIMARY KEY,
    member_id    TEXT NOT NULL,
    holdername   TEXT NOT NULL,
    scheme_name  TEXT NOT NULL,
    view_data    {bytes} NOT NULL,           -- sealed view data JSON
    statement_date   TEXT,                   -- YYYY-MM-DD: values from a statement
    calculation_date TEXT                    -- YYYY-MM-DD: values from a calculation
){strict};
CREATE INDEX{if_not_exists} pensions_member ON pensions (member_id);

CREATE TABLE{if_not_exists} pats (
    pat_id      TEXT PRIMARY KEY,
    pat_sha256  TEXT NOT NULL,      -- to find it again on PAT refresh; the PAT itself is sealed
    sealed      {bytes} NOT NULL,
    expires_at  {int64},            -- the PAT's exp claim, when readable
    created_at  {int64} NOT NULL
){strict};
CREATE INDEX{if_not_exists} pats_sha ON pats (pat_sha256);

CREATE TABLE{if_not_exists} peis (
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
    created_at          {int64} NOT NULL,
    registered_at       {int64},
    deregistered_at     {int64},
    deletion_reason     TEXT
){strict};
CREATE INDEX{if_not_exists} peis_request ON peis (request_id);
CREATE INDEX{if_not_exists} peis_pat ON peis (pat_id);
CREATE INDEX{if_not_exists} peis_pension ON peis (pension_asset_guid);
--{postgres
CREATE INDEX peis_state ON peis (state);
--}

CREATE TABLE{if_not_exists} calculations (
    pei                 TEXT PRIMARY KEY,
    pension_asset_guid  TEXT NOT NULL,
    kind                TEXT NOT NULL,  -- DCC (3 working days) | DBC (10 working days)
    started_on          TEXT NOT NULL,  -- the day the PeI was registered as a match
    due_on              TEXT NOT NULL,
    completed_at        {int64}
){strict};
CREATE INDEX{if_not_exists} calculations_pension ON calculations (pension_asset_guid);
