-- The operator console (issue #18): its users and their connection-portal roles, and the
-- organisation's registration data with when each item was last confirmed to PDP. No member
-- data. Roles and holdernames are comma-separated spellings (`pbc,security-lead`), checked
-- against the role rules in the transaction that writes them.
CREATE TABLE console_users (
    id             {serial},
    username       TEXT NOT NULL UNIQUE,
    display_name   TEXT NOT NULL,
    email          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    roles          TEXT NOT NULL,
    holdernames    TEXT NOT NULL,
    suspended      {bool} NOT NULL DEFAULT {false},
    confirmed_at   {int64},
    updated_at     {int64} NOT NULL
){strict};

CREATE TABLE console_org (
    key           TEXT PRIMARY KEY,
    value         TEXT NOT NULL,
    updated_at    {int64} NOT NULL,
    confirmed_at  {int64}
){strict};
