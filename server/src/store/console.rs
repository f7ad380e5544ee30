//! The operator console's state: the people who run the connection, their connection-portal
//! roles, the organisation's details as registered with PDP, and the sign-in attempts that lock a
//! username out, each a unit of work written once for both backends.
//!
//! The role rules themselves live in `crate::console::roles`; the store only guarantees that a
//! change is checked against every other user as the same transaction sees them (SQLite: the one
//! writer; PostgreSQL: the users table locked for the transaction), so two PBCs added at once
//! cannot both pass a limit of two. The schema is in `schema/V5__console.sql` and
//! `schema/V6__console_sign_in.sql`. No member data is stored here.

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

    /// Counts a sign-in attempt for `username` before its password is checked, across every
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
    tx.value(
        "INSERT INTO console_sign_in_failures (username, failures, last_at) VALUES ($1, 1, $2)
         ON CONFLICT (username) DO UPDATE SET
             failures = CASE WHEN console_sign_in_failures.last_at < $3 THEN 1
                             ELSE console_sign_in_failures.failures + 1 END,
             last_at = excluded.last_at
         RETURNING failures",
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

    mod sqlite_backend {
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
        async fn a_lock_out_runs_from_the_last_attempt_and_lapses_by_the_count_alone() {
            super::a_lock_out_runs_from_the_last_attempt_and_lapses_by_the_count_alone(
                super::Place::postgres().await,
            )
            .await
        }
    }
}
