-- Forensic look-ups by transaction or find request ID (CoCo3.2.4) over six years of audit.
-- Both IDs are random UUIDs: an index on one alone would make every ACK's audit insert land on
-- a random page of six years' index. Each index here leads with the record's day (µs / one
-- day's µs), so an insert lands in the current day's small part of it, and a look-up seeks once
-- per day of the window asked for.
CREATE INDEX audit_log_request_day ON audit_log ((received_at / 86400000000), request_id);
CREATE INDEX audit_log_transaction_day ON audit_log ((received_at / 86400000000), transaction_id);
