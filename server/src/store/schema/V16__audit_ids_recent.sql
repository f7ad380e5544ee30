-- Look-ups by ID of the last hour's audit records: the records received since those written by
-- week (`audit_ids`, once their hour has closed) have their IDs written here every few seconds,
-- keyed by the record's minute, so that each write lands at the end of the table; a look-up
-- seeks once a minute, and reads only the last minute or so by time. Forgotten once written by
-- week.
--{sqlite
CREATE TABLE audit_ids_recent (
    minute    INTEGER NOT NULL,  -- the record's received_at, in minutes since the Unix epoch
    id        TEXT NOT NULL,     -- its request ID or its transaction ID
    audit_id  INTEGER NOT NULL,  -- audit_log.id
    PRIMARY KEY (minute, id, audit_id)
) WITHOUT ROWID;
--}
--{postgres
CREATE TABLE audit_ids_recent (
    minute    BIGINT NOT NULL,
    id        TEXT NOT NULL,
    audit_id  BIGINT NOT NULL,
    PRIMARY KEY (minute, id, audit_id)
);
--}
-- Every audit record received before `next_at` (µs since the epoch) has its IDs in `audit_ids`
-- or in `audit_ids_recent`.
CREATE TABLE audit_recent_through (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    next_at  {int64} NOT NULL
){strict};
