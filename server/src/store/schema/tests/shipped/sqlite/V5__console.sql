-- The operator console (issue #18): its users and their connection-portal roles, and the
-- organisation's registration data with when each item was last confirmed to PDP. No member
-- data. Roles and holdernames are comma-separated spellings (`pbc,security-lead`), checked
-- against the role rules in the transaction that writes them.
CREATE TABLE console_users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    username       TEXT NOT NULL UNIQUE,
    display_name   TEXT NOT NULL,
    email          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    roles          TEXT NOT NULL,
    holdernames    TEXT NOT NULL,
    suspended      INTEGER NOT NULL DEFAULT 0,
    confirmed_at   INTEGER,
    updated_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE console_org (
    key           TEXT PRIMARY KEY,
    value         TEXT NOT NULL,
    updated_at    INTEGER NOT NULL,
    confirmed_at  INTEGER
) STRICT;
