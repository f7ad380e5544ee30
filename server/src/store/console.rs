//! The operator console's state: the people who run the connection, their connection-portal
//! roles and second factors (the TOTP secret sealed with the data key, recovery codes as argon2
//! hashes), the organisation's details as registered with PDP, and the sign-in attempts that lock
//! a user or a source address out, each a unit of work written once for both backends.
//!
//! The role rules themselves live in `crate::console::roles`; the store only guarantees that a
//! change is checked against every other user as the same transaction sees them (SQLite: the one
//! writer; PostgreSQL: the users table locked for the transaction), so two PBCs added at once
//! cannot both pass a limit of two. The schema is in `schema/V5__console.sql`,
//! `schema/V6__console_sign_in.sql` and `schema/V9__console_mfa.sql`. No member data is stored
//! here.

use super::sql::{params, Access, Dialect, Row, Tx, Value};
use super::{Result, Store, StoreError};

/// A connection-portal role (PDP's "Roles and responsibilities").
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
    serde::Serialize,
)]
#[strum(serialize_all = "kebab-case")]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Primary business contact: users, roles, schemes; everything a scheme admin does.
    Pbc,
    /// Primary technical contact: certificates and keys.
    Ptc,
    /// Scheme admin: schemes of their holdernames.
    SchemeAdmin,
    /// Test manager: testing during connection.
    TestManager,
    /// Service manager: service acceptance, operation.
    ServiceManager,
    /// Security lead: IT health checks, the audit trail.
    SecurityLead,
}

impl Role {
    /// The stored (and form) spelling.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// What a person reads.
    pub fn title(self) -> &'static str {
        match self {
            Role::Pbc => "Primary business contact",
            Role::Ptc => "Primary technical contact",
            Role::SchemeAdmin => "Scheme admin",
            Role::TestManager => "Test manager",
            Role::ServiceManager => "Service manager",
            Role::SecurityLead => "Security lead",
        }
    }
}

/// A console user as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsoleUser {
    /// Its id (0 for one not yet stored).
    pub id: i64,
    /// Sign-in name, unique.
    pub username: String,
    /// Full name, as PDP holds it for a key contact.
    pub display_name: String,
    /// Contact email, as PDP holds it for a key contact.
    pub email: String,
    /// The argon2 PHC string (never the password).
    pub password_hash: String,
    /// Roles held.
    pub roles: Vec<Role>,
    /// The holdernames a scheme admin acts on.
    pub holdernames: Vec<uuid::Uuid>,
    /// Suspended users cannot sign in.
    pub suspended: bool,
    /// When the contact's details were last confirmed to PDP (µs), if ever.
    pub confirmed_at: Option<i64>,
    /// Last change (µs).
    pub updated_at: i64,
}

impl std::fmt::Debug for ConsoleUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleUser")
            .field("id", &self.id)
            .field("roles", &self.roles)
            .field("suspended", &self.suspended)
            .finish_non_exhaustive()
    }
}

impl ConsoleUser {
    /// Whether the user holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// The check a user change must pass, given every user as the saving transaction sees them
/// (`before`) and as they would then be (`after`, the changed one included): `Err` names the
/// rule broken.
pub type UserCheck = Box<dyn FnOnce(&[ConsoleUser], &[ConsoleUser]) -> Result<(), String> + Send>;

/// What saving a user did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSaved {
    /// Stored, with its id.
    Saved(i64),
    /// Refused by the check: the rule, as it said.
    Refused(String),
    /// Another user has that username.
    UsernameTaken,
}

/// One item of the organisation's PDP registration data (CoCo3.1.1-3.1.2) and when it was
/// last confirmed to PDP (CoCo3.2.6-3.2.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgDetail {
    /// Its name, e.g. `organisation_name`.
    pub key: String,
    /// Its value.
    pub value: String,
    /// Last change (µs).
    pub updated_at: i64,
    /// When it was last confirmed to PDP (µs).
    pub confirmed_at: Option<i64>,
}

// === impl Store ===

impl Store {
    /// Every console user, by username.
    pub async fn console_users(&self) -> Result<Vec<ConsoleUser>, StoreError> {
        self.read(|tx| Box::pin(users(tx))).await
    }

    /// One console user by username.
    pub async fn console_user(&self, username: &str) -> Result<Option<ConsoleUser>, StoreError> {
        Ok(self
            .console_users()
            .await?
            .into_iter()
            .find(|u| u.username == username))
    }

    /// Adds (`user.id == 0`) or replaces a console user, in one transaction in which `check`
    /// sees every user as they are and as they would be after the change; refused as `check`
    /// says. A replaced user with an empty `password_hash` keeps the stored one.
    pub async fn save_console_user(
        &self,
        mut user: ConsoleUser,
        check: UserCheck,
    ) -> Result<UserSaved, StoreError> {
        user.updated_at = crate::now_micros();
        self.write(move |tx| Box::pin(save_user(tx, user, check)))
            .await
    }

    /// The organisation's registration data.
    pub async fn org_details(&self) -> Result<Vec<OrgDetail>, StoreError> {
        self.read(|tx| Box::pin(org(tx))).await
    }

    /// Sets an item of the organisation's registration data (`confirmed`: as confirmed to PDP
    /// now).
    pub async fn set_org_detail(
        &self,
        key: String,
        value: String,
        confirmed: bool,
    ) -> Result<(), StoreError> {
        let now = crate::now_micros();
        self.run(Access::Single, move |tx| {
            Box::pin(set_org(tx, key, value, now, confirmed))
        })
        .await
    }

    /// Counts a sign-in attempt for `username` (the key a user's attempts are counted under: the
    /// console passes a keyed digest of the name typed) before it is checked, across every
    /// instance on the store: whether it may go on (at most `max` in a row, each within
    /// `lockout` of the one before; a success resets them, [`Store::sign_in_succeeded`]).
    /// Counting first, in one statement, means attempts sent at once cannot all pass on the
    /// same old count.
    pub async fn sign_in_attempt(
        &self,
        username: &str,
        max: u32,
        lockout: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let now = crate::now_micros();
        let attempts = self
            .count_sign_in(SignInAttempt {
                username: username.to_owned(),
                now,
                since: now - lockout.as_micros() as i64,
            })
            .await?;
        Ok(attempts <= max)
    }

    /// Counts `attempt`, then forgets lapsed runs: the username's attempts in a row, this one
    /// included.
    async fn count_sign_in(&self, attempt: SignInAttempt) -> Result<u32, StoreError> {
        let since = attempt.since;
        // The count is one statement on its own: attempts sent at once take the username's row
        // one by one, and a lapsed run starts again at one whether it was swept or not. The
        // sweep is a statement of its own after it: one transaction holding a username's row
        // while sweeping would deadlock against another username's attempt doing the same.
        let attempts = self
            .run(Access::Single, move |tx| {
                Box::pin(count_attempt(tx, attempt))
            })
            .await?;
        self.run(Access::Single, move |tx| Box::pin(forget_lapsed(tx, since)))
            .await?;
        Ok(attempts)
    }

    /// Forgets `username`'s counted attempts: it signed in.
    pub async fn sign_in_succeeded(&self, username: &str) -> Result<(), StoreError> {
        let username = username.to_owned();
        self.run(Access::Single, move |tx| {
            Box::pin(async move {
                tx.execute(
                    "DELETE FROM console_sign_in_failures WHERE username = $1",
                    &params![username],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }
}

/// A user's second factor as stored: the TOTP secret (opened), the last time step accepted,
/// and the argon2 hashes of the recovery codes not yet used.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConsoleMfa {
    /// The TOTP secret's bytes; `None` until the user enrols, or when it is unreadable.
    pub secret: Option<Vec<u8>>,
    /// A secret is stored but no configured data key opens it (an old key removed before
    /// `keys rotate` re-sealed it): only a recovery code or a reset lets the user in.
    pub unreadable: bool,
    /// The last RFC 6238 time step accepted: a code of it or an earlier one is refused.
    pub last_step: i64,
    /// When the user enrolled (µs).
    pub enrolled_at: Option<i64>,
    /// The recovery codes left, as argon2 PHC strings.
    pub recovery_hashes: Vec<String>,
}

impl std::fmt::Debug for ConsoleMfa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleMfa")
            .field("enrolled_at", &self.enrolled_at)
            .field("unreadable", &self.unreadable)
            .field("last_step", &self.last_step)
            .field("recovery_left", &self.recovery_hashes.len())
            .finish_non_exhaustive()
    }
}

/// The associated data a user's TOTP secret is sealed with: the row's key as the re-seal of
/// `keys rotate` names rows, the username (which never changes: the console has no rename).
fn totp_aad(username: &str) -> &[u8] {
    username.as_bytes()
}

// === impl Store: the second factor and throttling ===

impl Store {
    /// A user's second factor; the secret opened with the data key.
    pub async fn console_mfa(&self, user_id: i64) -> Result<ConsoleMfa, StoreError> {
        let (row, recovery_hashes) = self
            .read(move |tx| {
                Box::pin(async move {
                    let row = tx
                        .query_opt(
                            "SELECT totp_sealed, totp_last_step, mfa_enrolled_at, username
                             FROM console_users WHERE id = $1",
                            &params![user_id],
                        )
                        .await?;
                    let row = match row {
                        Some(r) => Some((
                            r.get::<Option<Vec<u8>>>(0)?,
                            r.get::<i64>(1)?,
                            r.get::<Option<i64>>(2)?,
                            r.get::<String>(3)?,
                        )),
                        None => None,
                    };
                    let codes = tx
                        .column(
                            "SELECT code_hash FROM console_recovery_codes WHERE user_id = $1",
                            &params![user_id],
                        )
                        .await?;
                    Ok((row, codes))
                })
            })
            .await?;
        let Some((sealed, last_step, enrolled_at, username)) = row else {
            return Ok(ConsoleMfa::default());
        };
        let (secret, unreadable) = match sealed {
            Some(s) => match self.inner.key.open(totp_aad(&username), &s) {
                Ok(secret) => (Some(secret), false),
                Err(_) => (None, true),
            },
            None => (None, false),
        };
        Ok(ConsoleMfa {
            secret,
            unreadable,
            last_step,
            enrolled_at,
            recovery_hashes,
        })
    }

    /// Enrols a user's second factor: the secret sealed, `step` as the last accepted (the code
    /// that confirmed it), and the recovery codes' hashes; `false` (nothing changed) when the
    /// user is already enrolled or gone (or `username` is not theirs).
    pub async fn enrol_console_mfa(
        &self,
        user_id: i64,
        username: &str,
        secret: &[u8],
        step: i64,
        recovery_hashes: Vec<String>,
    ) -> Result<bool, StoreError> {
        let sealed = self.inner.key.seal(totp_aad(username), secret);
        let username = username.to_owned();
        let now = crate::now_micros();
        self.write(move |tx| {
            Box::pin(async move {
                let n = tx
                    .execute(
                        "UPDATE console_users SET totp_sealed = $2, totp_last_step = $3,
                             mfa_enrolled_at = $4
                         WHERE id = $1 AND username = $5 AND totp_sealed IS NULL",
                        &params![user_id, sealed, step, now, username],
                    )
                    .await?;
                if n == 0 {
                    return Ok(false);
                }
                set_recovery_codes(tx, user_id, recovery_hashes).await?;
                Ok(true)
            })
        })
        .await
    }

    /// Accepts TOTP time step `step` for a user once: `false` when it (or a later one) was
    /// accepted already, so that a code seen by someone else cannot be used again.
    pub async fn accept_totp_step(&self, user_id: i64, step: i64) -> Result<bool, StoreError> {
        self.run(Access::Single, move |tx| {
            Box::pin(async move {
                let n = tx
                    .execute(
                        "UPDATE console_users SET totp_last_step = $2
                         WHERE id = $1 AND totp_last_step < $2 AND totp_sealed IS NOT NULL",
                        &params![user_id, step],
                    )
                    .await?;
                Ok(n == 1)
            })
        })
        .await
    }

    /// Uses up one recovery code (by its stored hash): `false` if it was used already.
    pub async fn use_recovery_code(
        &self,
        user_id: i64,
        code_hash: String,
    ) -> Result<bool, StoreError> {
        self.run(Access::Single, move |tx| {
            Box::pin(async move {
                let n = tx
                    .execute(
                        "DELETE FROM console_recovery_codes WHERE user_id = $1 AND code_hash = $2",
                        &params![user_id, code_hash],
                    )
                    .await?;
                Ok(n == 1)
            })
        })
        .await
    }

    /// Replaces a user's recovery codes (hashes) with new ones.
    pub async fn replace_recovery_codes(
        &self,
        user_id: i64,
        recovery_hashes: Vec<String>,
    ) -> Result<(), StoreError> {
        self.write(move |tx| Box::pin(set_recovery_codes(tx, user_id, recovery_hashes)))
            .await
    }

    /// Removes a user's second factor and recovery codes: they enrol again at their next
    /// sign-in. `false` when there is no such user.
    pub async fn reset_console_mfa(&self, user_id: i64) -> Result<bool, StoreError> {
        self.write(move |tx| {
            Box::pin(async move {
                let n = tx
                    .execute(
                        "UPDATE console_users SET totp_sealed = NULL, totp_last_step = 0,
                             mfa_enrolled_at = NULL
                         WHERE id = $1",
                        &params![user_id],
                    )
                    .await?;
                set_recovery_codes(tx, user_id, Vec::new()).await?;
                Ok(n == 1)
            })
        })
        .await
    }

    /// The console's secret `name` (32 random bytes, sealed with the data key), made on first
    /// use, and made anew when no configured data key opens the stored one.
    pub async fn console_secret(&self, name: &'static str) -> Result<Vec<u8>, StoreError> {
        let mut fresh = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut fresh);
        let sealed = self.inner.key.seal(name.as_bytes(), &fresh);
        let stored = self.stored_secret(name, sealed.clone()).await?;
        if let Ok(secret) = self.inner.key.open(name.as_bytes(), &stored) {
            return Ok(secret);
        }
        self.replace_secret(name, sealed).await?;
        Ok(fresh.to_vec())
    }

    /// Counts a sign-in attempt from source address `source`, as [`Store::sign_in_attempt`]
    /// counts one per user: whether it may go on.
    pub async fn sign_in_source_attempt(
        &self,
        source: &str,
        max: u32,
        lockout: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let now = crate::now_micros();
        let attempt = SignInAttempt {
            username: source.to_owned(),
            now,
            since: now - lockout.as_micros() as i64,
        };
        let since = attempt.since;
        let attempts = self
            .run(Access::Single, move |tx| {
                Box::pin(count_attempt_in(tx, Counted::Source, attempt))
            })
            .await?;
        self.run(Access::Single, move |tx| {
            Box::pin(async move {
                tx.execute(
                    "DELETE FROM console_sign_in_sources WHERE last_at < $1",
                    &params![since],
                )
                .await?;
                Ok(())
            })
        })
        .await?;
        Ok(attempts <= max)
    }

    /// Forgets the attempts counted for source address `source`: a user signed in from it.
    pub async fn sign_in_source_succeeded(&self, source: &str) -> Result<(), StoreError> {
        let source = source.to_owned();
        self.run(Access::Single, move |tx| {
            Box::pin(async move {
                tx.execute(
                    "DELETE FROM console_sign_in_sources WHERE source = $1",
                    &params![source],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }
}

/// Replaces a user's recovery codes.
async fn set_recovery_codes(tx: &mut dyn Tx, user_id: i64, hashes: Vec<String>) -> Result<()> {
    tx.execute(
        "DELETE FROM console_recovery_codes WHERE user_id = $1",
        &params![user_id],
    )
    .await?;
    for h in hashes {
        tx.execute(
            "INSERT INTO console_recovery_codes (user_id, code_hash) VALUES ($1, $2)",
            &params![user_id, h],
        )
        .await?;
    }
    Ok(())
}

/// What sign-in attempts are counted by.
#[derive(Debug, Clone, Copy)]
enum Counted {
    /// The user (a keyed digest of the name given).
    User,
    /// The source address.
    Source,
}

/// A sign-in attempt to count, before its password is checked: one more for the username (from
/// one again once its last is older than `since`); rows older than `since` are forgotten.
#[derive(Debug)]
struct SignInAttempt {
    username: String,
    now: i64,
    since: i64,
}

// === units of work ===

fn user_from(r: &Row) -> Result<ConsoleUser> {
    Ok(ConsoleUser {
        id: r.get(0)?,
        username: r.get(1)?,
        display_name: r.get(2)?,
        email: r.get(3)?,
        password_hash: r.get(4)?,
        roles: split_roles(&r.get::<String>(5)?)?,
        holdernames: split_guids(&r.get::<String>(6)?)?,
        suspended: r.get(7)?,
        confirmed_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

/// Every user, by username.
async fn users(tx: &mut dyn Tx) -> Result<Vec<ConsoleUser>> {
    tx.query(
        "SELECT id, username, display_name, email, password_hash, roles, holdernames,
                suspended, confirmed_at, updated_at
         FROM console_users ORDER BY username",
        &[],
    )
    .await?
    .iter()
    .map(user_from)
    .collect()
}

/// Checks and saves one user, against every user as this transaction sees them.
async fn save_user(tx: &mut dyn Tx, mut user: ConsoleUser, check: UserCheck) -> Result<UserSaved> {
    match tx.dialect() {
        // Other instances' saves wait for this one's commit (reads go on); SQLite's one writer
        // already excludes every other write.
        Dialect::Postgres => {
            tx.execute("LOCK TABLE console_users IN SHARE ROW EXCLUSIVE MODE", &[])
                .await?;
        }
        Dialect::Sqlite => {}
    }
    let before = users(tx).await?;
    if before
        .iter()
        .any(|u| u.username == user.username && u.id != user.id)
    {
        return Ok(UserSaved::UsernameTaken);
    }
    let (roles, holdernames) = match checked(&mut user, before, check) {
        Ok(stored) => stored,
        Err(refused) => return Ok(refused),
    };
    let mut fields = params![
        &user.username,
        &user.display_name,
        &user.email,
        &user.password_hash,
        roles,
        holdernames,
        user.suspended,
        user.confirmed_at,
        user.updated_at,
    ]
    .to_vec();
    if user.id == 0 {
        let id = tx
            .value(
                "INSERT INTO console_users (username, display_name, email, password_hash, roles,
                     holdernames, suspended, confirmed_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                &fields,
            )
            .await?;
        return Ok(UserSaved::Saved(id));
    }
    fields.push(Value::from(user.id));
    tx.execute(
        "UPDATE console_users SET username = $1, display_name = $2, email = $3,
             password_hash = $4, roles = $5, holdernames = $6, suspended = $7,
             confirmed_at = $8, updated_at = $9
         WHERE id = $10",
        &fields,
    )
    .await?;
    Ok(UserSaved::Saved(user.id))
}

/// The organisation's registration data, by key.
async fn org(tx: &mut dyn Tx) -> Result<Vec<OrgDetail>> {
    tx.query(
        "SELECT key, value, updated_at, confirmed_at FROM console_org ORDER BY key",
        &[],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(OrgDetail {
            key: r.get(0)?,
            value: r.get(1)?,
            updated_at: r.get(2)?,
            confirmed_at: r.get(3)?,
        })
    })
    .collect()
}

/// Sets one item; a changed value is unconfirmed until confirmed again.
async fn set_org(
    tx: &mut dyn Tx,
    key: String,
    value: String,
    now: i64,
    confirmed: bool,
) -> Result<()> {
    tx.execute(
        "INSERT INTO console_org (key, value, updated_at, confirmed_at)
         VALUES ($1, $2, CAST($3 AS BIGINT),
                 CASE WHEN CAST($4 AS BOOLEAN) THEN CAST($3 AS BIGINT) END)
         ON CONFLICT (key) DO UPDATE SET
             confirmed_at = CASE WHEN CAST($4 AS BOOLEAN) THEN CAST($3 AS BIGINT)
                                 WHEN console_org.value = excluded.value THEN console_org.confirmed_at
                            END,
             updated_at = CASE WHEN console_org.value = excluded.value
                               THEN console_org.updated_at ELSE CAST($3 AS BIGINT) END,
             value = excluded.value",
        &params![key, value, now, confirmed],
    )
    .await?;
    Ok(())
}

/// Counts a sign-in attempt ([`SignInAttempt`]), in one statement: the username's attempts in a
/// row, this one included (a run whose last attempt is older than `since` starts again at one).
async fn count_attempt(tx: &mut dyn Tx, attempt: SignInAttempt) -> Result<u32> {
    count_attempt_in(tx, Counted::User, attempt).await
}

/// Counts an attempt in the table of what it is counted by (`attempt.username`: the key).
async fn count_attempt_in(tx: &mut dyn Tx, by: Counted, attempt: SignInAttempt) -> Result<u32> {
    let (table, key) = match by {
        Counted::User => ("console_sign_in_failures", "username"),
        Counted::Source => ("console_sign_in_sources", "source"),
    };
    tx.value(
        &format!(
            "INSERT INTO {table} ({key}, failures, last_at) VALUES ($1, 1, $2)
             ON CONFLICT ({key}) DO UPDATE SET
                 failures = CASE WHEN {table}.last_at < $3 THEN 1
                                 ELSE {table}.failures + 1 END,
                 last_at = excluded.last_at
             RETURNING failures"
        ),
        &params![attempt.username, attempt.now, attempt.since],
    )
    .await
}

/// Forgets every username's run whose last attempt is older than `since`.
async fn forget_lapsed(tx: &mut dyn Tx, since: i64) -> Result<()> {
    tx.execute(
        "DELETE FROM console_sign_in_failures WHERE last_at < $1",
        &params![since],
    )
    .await?;
    Ok(())
}

// === the check, and the stored spellings ===

/// Runs a user change's check against every user as stored (read in the saving transaction)
/// and as they would be with the change: the user's roles and holdernames as stored, or how it
/// was refused. An existing user saved with an empty `password_hash` keeps the stored one (read
/// here, in the transaction: a password changed meanwhile elsewhere is not undone).
fn checked(
    user: &mut ConsoleUser,
    before: Vec<ConsoleUser>,
    check: UserCheck,
) -> Result<(String, String), UserSaved> {
    if user.password_hash.is_empty() {
        if let Some(same) = before.iter().find(|u| u.id == user.id && user.id != 0) {
            user.password_hash.clone_from(&same.password_hash);
        }
    }
    let mut after: Vec<ConsoleUser> = before.iter().filter(|u| u.id != user.id).cloned().collect();
    after.push(user.clone());
    check(&before, &after).map_err(UserSaved::Refused)?;
    let roles = join_list(user.roles.iter().map(|r| r.as_str()));
    let holdernames = join_list(user.holdernames.iter().map(|h| h.hyphenated().to_string()));
    Ok((roles, holdernames))
}

/// Joins spellings with commas.
fn join_list<S: AsRef<str>>(items: impl Iterator<Item = S>) -> String {
    items
        .map(|s| s.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses stored role spellings; an unknown one is corruption.
fn split_roles(s: &str) -> Result<Vec<Role>, StoreError> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse()
                .map_err(|_| StoreError::Corrupt("console_users.roles"))
        })
        .collect()
}

/// Parses stored holdernames.
fn split_guids(s: &str) -> Result<Vec<uuid::Uuid>, StoreError> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            uuid::Uuid::try_parse(p).map_err(|_| StoreError::Corrupt("console_users.holdernames"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::Place;
    use super::*;

    /// A lock-out of 15 minutes, in µs.
    const LOCKOUT: i64 = 15 * 60 * 1_000_000;

    /// `username`'s attempts in a row, counted at `now` (µs).
    async fn attempt(s: &Store, username: &str, now: i64) -> u32 {
        let attempt = SignInAttempt {
            username: username.to_owned(),
            now,
            since: now - LOCKOUT,
        };
        s.count_sign_in(attempt).await.unwrap()
    }

    /// The usernames with a run of attempts stored.
    async fn runs(s: &Store) -> Vec<String> {
        s.read(|tx| {
            Box::pin(async move {
                tx.column(
                    "SELECT username FROM console_sign_in_failures ORDER BY username",
                    &[],
                )
                .await
            })
        })
        .await
        .unwrap()
    }

    async fn a_lock_out_runs_from_the_last_attempt_and_lapses_by_the_count_alone(db: Place) {
        let s = db.open().await;
        let t = 1_000_000_000;
        // Each attempt within the lock-out of the one before is one more in the run, refused ones
        // too (a locked-out user trying again is locked out for as long again); one exactly a
        // lock-out after the last is still in it.
        for n in 1..=5 {
            assert_eq!(attempt(&s, "pbc", t + i64::from(n)).await, n);
        }
        let last = t + 5 + LOCKOUT;
        assert_eq!(attempt(&s, "pbc", last).await, 6);
        // Past the lock-out of its last attempt, a run starts again at one. Nothing swept the
        // row before this count (the sweep comes after it): the count alone says it lapsed.
        assert_eq!(attempt(&s, "pbc", last + LOCKOUT + 1).await, 1);
        assert_eq!(attempt(&s, "pbc", last + LOCKOUT + 2).await, 2);

        // The sweep forgets other usernames' lapsed runs, never one still within its lock-out.
        let t = last + 10 * LOCKOUT;
        assert_eq!(attempt(&s, "ptc", t).await, 1);
        assert_eq!(runs(&s).await, ["ptc"]);
        assert_eq!(attempt(&s, "tm", t + LOCKOUT).await, 1);
        assert_eq!(runs(&s).await, ["ptc", "tm"]);
        assert_eq!(attempt(&s, "tm", t + LOCKOUT + 1).await, 2);
        assert_eq!(runs(&s).await, ["tm"]);

        // Two usernames' lapsed runs counted at once, again and again: each starts again at one,
        // and neither waits on the other (each count takes only its own row; the sweeps are
        // statements of their own).
        let mut t = t + 10 * LOCKOUT;
        for _ in 0..20 {
            assert_eq!(attempt(&s, "sl", t).await, 1);
            assert_eq!(attempt(&s, "tm", t).await, 1);
            t += 2 * LOCKOUT;
            let (sl, tm) = tokio::join!(attempt(&s, "sl", t), attempt(&s, "tm", t));
            assert_eq!((sl, tm), (1, 1));
            t += 2 * LOCKOUT;
        }
        s.close().await;
    }

    async fn a_second_factor_is_sealed_enrolled_once_and_each_code_used_once(db: Place) {
        let s = db.open().await;
        let user = ConsoleUser {
            id: 0,
            username: "pbc".into(),
            display_name: String::new(),
            email: String::new(),
            password_hash: "$argon2id$x".into(),
            roles: vec![Role::Pbc],
            holdernames: Vec::new(),
            suspended: false,
            confirmed_at: None,
            updated_at: 0,
        };
        let UserSaved::Saved(id) = s
            .save_console_user(user, Box::new(|_, _| Ok(())))
            .await
            .unwrap()
        else {
            panic!("saved")
        };
        assert_eq!(s.console_mfa(id).await.unwrap(), ConsoleMfa::default());
        let secret = b"twenty bytes secret!";
        let codes = vec!["$argon2id$1".to_owned(), "$argon2id$2".to_owned()];
        assert!(s
            .enrol_console_mfa(id, "pbc", secret, 100, codes)
            .await
            .unwrap());
        // Enrolled once: a second enrolment (another tab, another instance) changes nothing.
        assert!(!s
            .enrol_console_mfa(id, "pbc", b"another secret here!", 200, Vec::new())
            .await
            .unwrap());
        let mfa = s.console_mfa(id).await.unwrap();
        assert_eq!(mfa.secret.as_deref(), Some(&secret[..]));
        assert_eq!((mfa.last_step, mfa.recovery_hashes.len()), (100, 2));
        assert!(mfa.enrolled_at.is_some());
        // Sealed at rest: the stored column is not the secret, and opens for this row alone.
        let sealed: Vec<u8> = s
            .read(move |tx| {
                Box::pin(async move {
                    tx.value(
                        "SELECT totp_sealed FROM console_users WHERE id = $1",
                        &params![id],
                    )
                    .await
                })
            })
            .await
            .unwrap();
        assert!(!sealed.windows(secret.len()).any(|w| w == secret));
        assert!(s.inner.key.open(totp_aad("pbc"), &sealed).is_ok());
        assert!(s.inner.key.open(totp_aad("ptc"), &sealed).is_err());
        // A time step once, and never an earlier one; a recovery code once.
        assert!(!s.accept_totp_step(id, 100).await.unwrap());
        assert!(s.accept_totp_step(id, 101).await.unwrap());
        assert!(!s.accept_totp_step(id, 101).await.unwrap());
        assert!(!s.accept_totp_step(id, 99).await.unwrap());
        assert!(s.use_recovery_code(id, "$argon2id$1".into()).await.unwrap());
        assert!(!s.use_recovery_code(id, "$argon2id$1".into()).await.unwrap());
        // Reset: nothing left; steps start again with the next enrolment.
        assert!(s.reset_console_mfa(id).await.unwrap());
        assert_eq!(s.console_mfa(id).await.unwrap(), ConsoleMfa::default());
        assert!(
            !s.accept_totp_step(id, 500).await.unwrap(),
            "no factor: no step"
        );
        assert!(!s.reset_console_mfa(id + 99).await.unwrap());
        // A secret no configured key opens is reported unreadable, not an error: the user can
        // still use a recovery code, and a PBC sees it needs a reset.
        assert!(s
            .enrol_console_mfa(id, "pbc", secret, 1, vec!["$argon2id$3".into()])
            .await
            .unwrap());
        let gone = crate::sealed::DataKey::from_hex(&"55".repeat(32)).unwrap();
        let sealed_by_gone = gone.seal(totp_aad("pbc"), secret);
        s.run(Access::Single, move |tx| {
            Box::pin(async move {
                tx.execute(
                    "UPDATE console_users SET totp_sealed = $2 WHERE id = $1",
                    &params![id, sealed_by_gone],
                )
                .await
            })
        })
        .await
        .unwrap();
        let mfa = s.console_mfa(id).await.unwrap();
        assert!(mfa.unreadable && mfa.secret.is_none() && mfa.enrolled_at.is_some());
        assert_eq!(mfa.recovery_hashes, ["$argon2id$3"]);
        s.close().await;
    }

    async fn the_console_secret_is_made_once_and_source_addresses_are_counted_apart(db: Place) {
        let s = db.open().await;
        // The console's secret: made once, the same for every caller.
        let k = s.console_secret("sign_in_key").await.unwrap();
        assert_eq!(k.len(), 32);
        assert_eq!(s.console_secret("sign_in_key").await.unwrap(), k);
        // Attempts per source address: a run of `max`, then refused until a success.
        let lockout = std::time::Duration::from_secs(900);
        for _ in 0..3 {
            assert!(s
                .sign_in_source_attempt("10.0.0.1", 3, lockout)
                .await
                .unwrap());
        }
        assert!(!s
            .sign_in_source_attempt("10.0.0.1", 3, lockout)
            .await
            .unwrap());
        assert!(s
            .sign_in_source_attempt("10.0.0.2", 3, lockout)
            .await
            .unwrap());
        s.sign_in_source_succeeded("10.0.0.1").await.unwrap();
        assert!(s
            .sign_in_source_attempt("10.0.0.1", 3, lockout)
            .await
            .unwrap());
        s.close().await;
    }

    mod sqlite_backend {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn the_console_secret_is_made_once_and_source_addresses_are_counted_apart() {
            super::the_console_secret_is_made_once_and_source_addresses_are_counted_apart(
                super::Place::sqlite(),
            )
            .await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_second_factor_is_sealed_enrolled_once_and_each_code_used_once() {
            super::a_second_factor_is_sealed_enrolled_once_and_each_code_used_once(
                super::Place::sqlite(),
            )
            .await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_lock_out_runs_from_the_last_attempt_and_lapses_by_the_count_alone() {
            super::a_lock_out_runs_from_the_last_attempt_and_lapses_by_the_count_alone(
                super::Place::sqlite(),
            )
            .await
        }
    }

    mod postgres_backend {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn the_console_secret_is_made_once_and_source_addresses_are_counted_apart() {
            super::the_console_secret_is_made_once_and_source_addresses_are_counted_apart(
                super::Place::postgres().await,
            )
            .await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_second_factor_is_sealed_enrolled_once_and_each_code_used_once() {
            super::a_second_factor_is_sealed_enrolled_once_and_each_code_used_once(
                super::Place::postgres().await,
            )
            .await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_lock_out_runs_from_the_last_attempt_and_lapses_by_the_count_alone() {
            super::a_lock_out_runs_from_the_last_attempt_and_lapses_by_the_count_alone(
                super::Place::postgres().await,
            )
            .await
        }
    }
}
