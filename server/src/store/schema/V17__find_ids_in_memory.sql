-- On SQLite, a find's request ID is no longer a key on disk. It was the hot table's primary key:
-- every ACK put one entry at a random place in an index of a day's finds, and its commit wrote
-- that page whole to the WAL (two thirds of the writer's time at 30k ACKs/s). SQLite has one
-- instance, so its writer holds the last day's request IDs in memory instead (loaded from this
-- table at start: src/store/sqlite/recent.rs) and a repeat is recognised there; on disk only
-- the open finds (queued or being worked, the ones the pipeline changes by ID) are indexed by
-- ID, and uniquely. PostgreSQL, shared by several instances, keeps its primary key.
--{sqlite
DROP VIEW all_finds;
CREATE TABLE find_requests_v17 (
    request_id    TEXT NOT NULL,
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
INSERT INTO find_requests_v17
    SELECT request_id, received_at, acked_at, state, find_data, outcome, reason, rules_version,
           pat_id, lease_until, attempts, completed_at
      FROM find_requests ORDER BY acked_at;
DROP TABLE find_requests;
ALTER TABLE find_requests_v17 RENAME TO find_requests;
CREATE INDEX find_requests_open
    ON find_requests (state, acked_at) WHERE state IN ('queued', 'working');
CREATE INDEX find_requests_acked ON find_requests (acked_at);
-- Statements that change a find by ID say `state IN ('queued', 'working')` to be read here.
CREATE UNIQUE INDEX find_requests_open_id
    ON find_requests (request_id) WHERE state IN ('queued', 'working');
CREATE VIEW all_finds AS
    SELECT request_id, received_at, acked_at, state, outcome, reason, rules_version, pat_id,
           completed_at
      FROM find_requests
    UNION ALL
    SELECT request_id, received_at, acked_at, state, outcome, reason, rules_version, pat_id,
           completed_at
      FROM find_history;
--}
