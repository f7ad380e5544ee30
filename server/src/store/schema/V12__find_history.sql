-- Six years of finds without slowing the ACK. `find_requests` is the hot table: open finds, and
-- ended ones for a day (a request ID sent again within it is the same find). Ended finds older
-- than that move, a batch at a time, to `find_history`, which is only ever appended to in the
-- order finds were ACKed, so neither table's random request-ID keys grow with the years.
CREATE TABLE find_history (
    request_id    TEXT NOT NULL,
    received_at   {int64} NOT NULL,
    acked_at      {int64} NOT NULL,
    state         TEXT NOT NULL,   -- done | failed
    outcome       TEXT,            -- match-yes | match-possible | no-match
    reason        TEXT,            -- failure reason, never personal data
    rules_version TEXT,
    pat_id        TEXT,
    completed_at  {int64}
){strict};
CREATE INDEX find_history_acked ON find_history (acked_at);
-- Look-ups by request ID over years: one seek a day, as the audit trail's (V10).
CREATE INDEX find_history_day ON find_history ((acked_at / 86400000000), request_id);
--{sqlite
-- Ranges by ACK time on the hot table (the service levels' hours, the move to history).
CREATE INDEX find_requests_acked ON find_requests (acked_at);
--}

-- The service levels by the hour (UTC), tallied once an hour has closed: every find ACKed in it
-- ended, and its audit records written. `tally` is the hour's counts and latency histograms
-- (src/sla/tally.rs); an hour with nothing in it has no row.
CREATE TABLE sla_hours (
    hour   {int64} PRIMARY KEY,  -- hours since the Unix epoch
    tally  {bytes} NOT NULL
){strict};
-- Every hour before `next_hour` is tallied in `sla_hours` (or held nothing).
CREATE TABLE sla_tallied (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    next_hour  {int64} NOT NULL
){strict};
-- The failed finds over the years (the console lists them).
CREATE INDEX find_history_failed ON find_history (completed_at) WHERE state = 'failed';
-- Every find, hot or history, for the readers of ended finds (service levels, reports).
CREATE VIEW all_finds AS
    SELECT request_id, received_at, acked_at, state, outcome, reason, rules_version, pat_id,
           completed_at
      FROM find_requests
    UNION ALL
    SELECT request_id, received_at, acked_at, state, outcome, reason, rules_version, pat_id,
           completed_at
      FROM find_history;

-- Forensic look-ups by transaction or find request ID over years, without an index the ACK
-- writes into (an index on a random ID puts every ACK's audit record on a page of its own).
-- Once an hour has closed, upkeep writes its records' IDs here in ID order, keyed by the
-- record's week: a look-up seeks once a week (313 seeks for six years), and reads the hour or so
-- not yet written here from `audit_log_received`.
DROP INDEX audit_log_request_day;
DROP INDEX audit_log_transaction_day;
--{sqlite
CREATE TABLE audit_ids (
    week      INTEGER NOT NULL,  -- the record's received_at, in weeks since the Unix epoch
    id        TEXT NOT NULL,     -- its request ID or its transaction ID
    audit_id  INTEGER NOT NULL,  -- audit_log.id
    PRIMARY KEY (week, id, audit_id)
) WITHOUT ROWID;
--}
--{postgres
CREATE TABLE audit_ids (
    week      BIGINT NOT NULL,
    id        TEXT NOT NULL,
    audit_id  BIGINT NOT NULL,
    PRIMARY KEY (week, id, audit_id)
);
--}
-- Every audit record received before the hour `next_hour` starts has its IDs in `audit_ids`.
CREATE TABLE audit_ids_written (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    next_hour  {int64} NOT NULL
){strict};
