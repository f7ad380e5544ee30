-- A no-match find is one row: its ACK's audit record, whose outcome says `no-match`. At its ACK
-- it has nothing left to do (no find data is kept, nothing is sent), and the audit trail keeps
-- its IDs and times for six years already; its row in the hot table (and, a day later, in the
-- history) was a second record of the same facts, and every ACK's commit wrote it. On SQLite a
-- repeat of its ID within the day is recognised by the writer's IDs in memory, read at start
-- from the audit trail too. On PostgreSQL the hot table's primary key recognises repeats across
-- instances, so a no-match find still has a row there for the day, deleted rather than moved to
-- the history.
--
-- Finds ACKed before this version keep their rows, and their audit records say `ack`: readers
-- of ended finds read the no-match finds ACKed since `since` (µs, the database's clock when it
-- was applied) from the audit trail, and the older ones from the finds' tables.
CREATE TABLE no_match_audited (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    since  {int64} NOT NULL
){strict};
--{sqlite
INSERT INTO no_match_audited (id, since)
    VALUES (1, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));
--}
--{postgres
INSERT INTO no_match_audited (id, since)
    VALUES (1, (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT);
--}
-- Every find with a row of its own, hot or history: those ACKed since `since` are never
-- no-matches (on PostgreSQL the hot table's no-match rows are only there for their IDs).
DROP VIEW all_finds;
CREATE VIEW all_finds AS
    SELECT request_id, received_at, acked_at, state, outcome, reason, rules_version, pat_id,
           completed_at
      FROM find_requests
     WHERE coalesce(outcome, '') <> 'no-match'
        OR acked_at < (SELECT since FROM no_match_audited)
    UNION ALL
    SELECT request_id, received_at, acked_at, state, outcome, reason, rules_version, pat_id,
           completed_at
      FROM find_history
     WHERE coalesce(outcome, '') <> 'no-match'
        OR acked_at < (SELECT since FROM no_match_audited);
