-- Failed console sign-ins per username, shared by every instance on the store: five in a row
-- lock the username for 15 minutes wherever the next attempt lands. A success removes the row;
-- rows older than the lock-out are removed as failures are noted. No passwords, no addresses.
CREATE TABLE console_sign_in_failures (
    username  TEXT PRIMARY KEY,
    failures  {int64} NOT NULL,
    last_at   {int64} NOT NULL
){strict};
CREATE INDEX console_sign_in_failures_last ON console_sign_in_failures (last_at);
