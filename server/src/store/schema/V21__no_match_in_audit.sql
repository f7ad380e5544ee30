-- A no-match find is one row: its ACK's audit record, whose outcome says `no-match`. At its ACK
-- it has nothing left to do (no find data is kept, nothing is sent), and the audit trail keeps
-- its IDs and times for six years already; its row in the hot table (and, a day later, in the
-- history) was a second record of the same facts, and every ACK's commit wrote it. On SQLite a
-- repeat of its ID within the day is recognised by the writer's IDs in memory, read at start
-- from the audit trail too. On PostgreSQL the hot table's primary key recognises repeats across
-- instances, so a no-match find still has a row there for the day, marked `id_only`: it is not
-- a find of its own, and it is deleted rather than moved to the history.
--
-- Rows from before this version (and any an older instance writes meanwhile) are finds of their
-- own, their ACKs' audit records saying `ack`; so is a find the pipeline ends as a no-match
-- (matched at its ACK, no longer at its claim).
ALTER TABLE find_requests ADD COLUMN id_only {bool} NOT NULL DEFAULT {false};
-- Every find with a row of its own, hot or history.
DROP VIEW all_finds;
CREATE VIEW all_finds AS
    SELECT request_id, received_at, acked_at, state, outcome, reason, rules_version, pat_id,
           completed_at
      FROM find_requests
     WHERE NOT id_only
    UNION ALL
    SELECT request_id, received_at, acked_at, state, outcome, reason, rules_version, pat_id,
           completed_at
      FROM find_history;
