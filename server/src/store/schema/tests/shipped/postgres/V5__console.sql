-- The operator console, in PostgreSQL's dialect: the same tables and meanings as the SQLite
-- backend's V5 (src/store/sqlite/migrations/V5__console.sql).
CREATE TABLE console_users (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    display_name   TEXT NOT NULL,
    email          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    roles          TEXT NOT NULL,
    holdernames    TEXT NOT NULL,
    suspended      BOOLEAN NOT NULL DEFAULT FALSE,
    confirmed_at   BIGINT,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE console_org (
    key           TEXT PRIMARY KEY,
    value         TEXT NOT NULL,
    updated_at    BIGINT NOT NULL,
    confirmed_at  BIGINT
);
