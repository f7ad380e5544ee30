//! The operator console's users and organisation data in PostgreSQL's SQL (see the SQLite
//! backend's `console.rs`). A user is saved in a transaction that first locks the users table
//! against other writers (`SHARE ROW EXCLUSIVE`: reads go on), so the role check sees every
//! user as the commit will leave them, whichever instance writes.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::super::console::{
    ConsoleUser, OrgDetail, OrgDetailChange, SignInAttempt, UserCheck, UserSaved,
};
use super::super::StoreError;
use crate::store::console::{checked, split_guids, split_roles};

fn user_of(r: &Row) -> Result<ConsoleUser, StoreError> {
    Ok(ConsoleUser {
        id: r.get(0),
        username: r.get(1),
        display_name: r.get(2),
        email: r.get(3),
        password_hash: r.get(4),
        roles: split_roles(r.get::<_, &str>(5))?,
        holdernames: split_guids(r.get::<_, &str>(6))?,
        suspended: r.get(7),
        confirmed_at: r.get(8),
        updated_at: r.get(9),
    })
}

/// Every user, by username.
pub(super) async fn users(c: &impl GenericClient) -> Result<Vec<ConsoleUser>, StoreError> {
    c.query(
        "SELECT id, username, display_name, email, password_hash, roles, holdernames,
                suspended, confirmed_at, updated_at
         FROM console_users ORDER BY username",
        &[],
    )
    .await?
    .iter()
    .map(user_of)
    .collect()
}

/// Checks and saves one user (the caller commits).
pub(super) async fn save_user(
    c: &impl GenericClient,
    mut user: ConsoleUser,
    check: UserCheck,
) -> Result<UserSaved, StoreError> {
    c.batch_execute("LOCK TABLE console_users IN SHARE ROW EXCLUSIVE MODE")
        .await?;
    let taken = c
        .query_opt(
            "SELECT id FROM console_users WHERE username = $1",
            &[&user.username],
        )
        .await?
        .map(|r| r.get::<_, i64>(0));
    if taken.is_some_and(|id| id != user.id) {
        return Ok(UserSaved::UsernameTaken);
    }
    let (roles, holdernames) = match checked(&mut user, users(c).await?.into_iter(), check) {
        Ok(stored) => stored,
        Err(refused) => return Ok(refused),
    };
    let mut fields: Vec<&(dyn ToSql + Sync)> = vec![
        &user.username,
        &user.display_name,
        &user.email,
        &user.password_hash,
        &roles,
        &holdernames,
        &user.suspended,
        &user.confirmed_at,
        &user.updated_at,
    ];
    if user.id == 0 {
        let row = c
            .query_one(
                "INSERT INTO console_users (username, display_name, email, password_hash, roles,
                     holdernames, suspended, confirmed_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                &fields,
            )
            .await?;
        Ok(UserSaved::Saved(row.get(0)))
    } else {
        fields.push(&user.id);
        c.execute(
            "UPDATE console_users SET username = $1, display_name = $2, email = $3,
                 password_hash = $4, roles = $5, holdernames = $6, suspended = $7,
                 confirmed_at = $8, updated_at = $9
             WHERE id = $10",
            &fields,
        )
        .await?;
        Ok(UserSaved::Saved(user.id))
    }
}

/// The organisation's registration data, by key.
pub(super) async fn org(c: &impl GenericClient) -> Result<Vec<OrgDetail>, StoreError> {
    Ok(c.query(
        "SELECT key, value, updated_at, confirmed_at FROM console_org ORDER BY key",
        &[],
    )
    .await?
    .iter()
    .map(|r| OrgDetail {
        key: r.get(0),
        value: r.get(1),
        updated_at: r.get(2),
        confirmed_at: r.get(3),
    })
    .collect())
}

/// Sets one item; a changed value is unconfirmed until confirmed again.
pub(super) async fn set_org(
    c: &impl GenericClient,
    change: &OrgDetailChange,
    now: i64,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO console_org (key, value, updated_at, confirmed_at)
         VALUES ($1, $2, $3::BIGINT, CASE WHEN $4::BOOLEAN THEN $3::BIGINT END)
         ON CONFLICT (key) DO UPDATE SET
             confirmed_at = CASE WHEN $4::BOOLEAN THEN $3::BIGINT
                                 WHEN console_org.value = excluded.value THEN console_org.confirmed_at
                            END,
             updated_at = CASE WHEN console_org.value = excluded.value
                               THEN console_org.updated_at ELSE $3::BIGINT END,
             value = excluded.value",
        &[&change.key, &change.value, &now, &change.confirmed],
    )
    .await?;
    Ok(())
}

/// Counts a sign-in attempt ([`SignInAttempt`]): the username's attempts in a row, this one
/// included, in one statement (a lapsed count starts again at one). Lapsed rows of other
/// usernames are forgotten after it, in a statement of their own (never a lock held across
/// both).
pub(super) async fn sign_in_attempt(
    c: &impl GenericClient,
    attempt: &SignInAttempt,
) -> Result<u32, StoreError> {
    let row = c
        .query_one(
            "INSERT INTO console_sign_in_failures (username, failures, last_at) VALUES ($1, 1, $2)
             ON CONFLICT (username) DO UPDATE SET
                 failures = CASE WHEN console_sign_in_failures.last_at < $3 THEN 1
                                 ELSE console_sign_in_failures.failures + 1 END,
                 last_at = excluded.last_at
             RETURNING failures",
            &[&attempt.username, &attempt.now, &attempt.since],
        )
        .await?;
    c.execute(
        "DELETE FROM console_sign_in_failures WHERE last_at < $1",
        &[&attempt.since],
    )
    .await?;
    Ok(u32::try_from(row.get::<_, i64>(0)).unwrap_or(u32::MAX))
}

/// Forgets a username's counted attempts.
pub(super) async fn sign_in_succeeded(
    c: &impl GenericClient,
    username: &str,
) -> Result<(), StoreError> {
    c.execute(
        "DELETE FROM console_sign_in_failures WHERE username = $1",
        &[&username],
    )
    .await?;
    Ok(())
}
