-- The console's second factor and sign-in throttling. Each user's TOTP secret (RFC 6238) is
-- sealed with the data key (the username as associated data) and the last time step accepted
-- is kept, so that a code is accepted once; recovery codes are argon2 hashes, each used once.
-- Failed sign-ins are counted per source address as well as per user; the per-user count is
-- keyed by a keyed digest of the name typed (never the text typed), under a key of the
-- console's own sealed in `secrets`. Runs counted under typed names before are dropped.
ALTER TABLE console_users ADD COLUMN totp_sealed {bytes};
ALTER TABLE console_users ADD COLUMN totp_last_step {int64} NOT NULL DEFAULT 0;
ALTER TABLE console_users ADD COLUMN mfa_enrolled_at {int64};

CREATE TABLE console_recovery_codes (
    user_id    {int64} NOT NULL,
    code_hash  TEXT NOT NULL,
    PRIMARY KEY (user_id, code_hash)
){strict};

CREATE TABLE console_sign_in_sources (
    source    TEXT PRIMARY KEY,
    failures  {int64} NOT NULL,
    last_at   {int64} NOT NULL
){strict};
CREATE INDEX console_sign_in_sources_last ON console_sign_in_sources (last_at);

DELETE FROM console_sign_in_failures;
