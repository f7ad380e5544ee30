-- The first schema, in PostgreSQL's dialect: the same tables, columns and meanings as the SQLite
-- backend's V1 (src/store/sqlite/migrations). Timestamps are BIGINT µs since the Unix epoch;
-- states are the spellings in src/store/model.rs; personal data arrives sealed (BYTEA).

CREATE TABLE find_requests (
    request_id    TEXT PRIMARY KEY,
    received_at   BIGINT NOT NULL,
    acked_at      BIGINT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'queued',  -- queued | working | done | failed
    find_data     BYTEA,                           -- sealed; NULL once deleted
    outcome       TEXT,                            -- match-yes | match-possible | no-match
    reason        TEXT,                            -- failure reason, never personal data
    rules_version TEXT,
    pat_id        TEXT,                            -- the PAT the UAT was swapped for
    lease_until   BIGINT,
    attempts      BIGINT NOT NULL DEFAULT 0,
    completed_at  BIGINT
);
-- Claims walk only the open finds, oldest first.
CREATE INDEX find_requests_open ON find_requests (acked_at) WHERE state IN ('queued', 'working');
CREATE INDEX find_requests_acked ON find_requests (acked_at);

CREATE TABLE audit_log (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id TEXT NOT NULL,
    request_id     TEXT,
    direction      TEXT NOT NULL,
    party          TEXT NOT NULL,
    endpoint       TEXT NOT NULL,
    received_at    BIGINT NOT NULL,
    responded_at   BIGINT NOT NULL,
    status         INTEGER NOT NULL,
    latency_us     BIGINT NOT NULL,
    outcome        TEXT NOT NULL
);
CREATE INDEX audit_log_received ON audit_log (received_at);

-- The audit trail is append-only: no row changes, and rows go only once the purge job has
-- moved the retention cutoff past them (CoCo2.1.6: 6 years by default).
CREATE TABLE audit_retention (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    cutoff  BIGINT NOT NULL
);
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

-- One row per minute an endpoint was up and ready: monthly availability (CoCo2.1.5).
CREATE TABLE heartbeats (
    minute  BIGINT PRIMARY KEY    -- minutes since the Unix epoch
);

CREATE TABLE members (
    member_id   TEXT PRIMARY KEY,
    holdername  TEXT NOT NULL,
    sealed      BYTEA NOT NULL
);
CREATE TABLE pensions (
    asset_guid   TEXT PRIMARY KEY,
    member_id    TEXT NOT NULL,
    holdername   TEXT NOT NULL,
    scheme_name  TEXT NOT NULL,
    view_data    BYTEA NOT NULL,             -- sealed view data JSON
    statement_date   TEXT,                   -- YYYY-MM-DD: values from a statement
    calculation_date TEXT                    -- YYYY-MM-DD: values from a calculation
);
CREATE INDEX pensions_member ON pensions (member_id);

CREATE TABLE pats (
    pat_id      TEXT PRIMARY KEY,
    pat_sha256  TEXT NOT NULL,      -- to find it again on PAT refresh; the PAT itself is sealed
    sealed      BYTEA NOT NULL,
    expires_at  BIGINT,             -- the PAT's exp claim, when readable
    created_at  BIGINT NOT NULL
);
CREATE INDEX pats_sha ON pats (pat_sha256);

CREATE TABLE peis (
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
    created_at          BIGINT NOT NULL,
    registered_at       BIGINT,
    deregistered_at     BIGINT,
    deletion_reason     TEXT
);
CREATE INDEX peis_request ON peis (request_id);
CREATE INDEX peis_pat ON peis (pat_id);
CREATE INDEX peis_pension ON peis (pension_asset_guid);
CREATE INDEX peis_state ON peis (state);

CREATE TABLE calculations (
    pei                 TEXT PRIMARY KEY,
    pension_asset_guid  TEXT NOT NULL,
    kind                TEXT NOT NULL,  -- DCC (3 working days) | DBC (10 working days)
    started_on          TEXT NOT NULL,  -- the day the PeI was registered as a match
    due_on              TEXT NOT NULL,
    completed_at        BIGINT
);
CREATE INDEX calculations_pension ON calculations (pension_asset_guid);
