//! The operator console's users and organisation data in SQL (schema:
//! `store/schema/V5__console.sql`). A user is saved inside the writer's transaction after the
//! role check has seen every user as they would then be: the one writer makes that atomic.

use rusqlite::{named_params, params, Connection, OptionalExtension};

use super::super::console::{
    ConsoleUser, OrgDetail, OrgDetailChange, SignInAttempt, UserCheck, UserSaved,
};
use super::super::StoreError;
use crate::store::console::{checked, split_guids, split_roles};

fn user_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<(ConsoleUser, String, String)> {
    Ok((
        ConsoleUser {
            id: r.get(0)?,
            username: r.get(1)?,
            display_name: r.get(2)?,
            email: r.get(3)?,
            password_hash: r.get(4)?,
            roles: Vec::new(),
            holdernames: Vec::new(),
            suspended: r.get(7)?,
            confirmed_at: r.get(8)?,
            updated_at: r.get(9)?,
        },
        r.get(5)?,
        r.get(6)?,
    ))
}

/// Every user, by username.
pub(in crate::store) fn users(c: &Connection) -> Result<Vec<ConsoleUser>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, username, display_name, email, password_hash, roles, holdernames,
                suspended, confirmed_at, updated_at
         FROM console_users ORDER BY username",
    )?;
    let rows = stmt.query_map([], user_of)?;
    let mut out = Vec::new();
    for row in rows {
        let (mut u, roles, holdernames) = row?;
        u.roles = split_roles(&roles)?;
        u.holdernames = split_guids(&holdernames)?;
        out.push(u);
    }
    Ok(out)
}

/// Checks and saves one user (inside the writer's transaction).
pub(in crate::store) fn save_user(
    c: &Connection,
    mut user: ConsoleUser,
    check: UserCheck,
) -> Result<UserSaved, StoreError> {
    let taken: Option<i64> = c
        .query_row(
            "SELECT id FROM console_users WHERE username = ?1",
            [&user.username],
            |r| r.get(0),
        )
        .optional()?;
    if taken.is_some_and(|id| id != user.id) {
        return Ok(UserSaved::UsernameTaken);
    }
    let (roles, holdernames) = match checked(&mut user, users(c)?.into_iter(), check) {
        Ok(stored) => stored,
        Err(refused) => return Ok(refused),
    };
    let fields = named_params! {
        ":username": user.username,
        ":display_name": user.display_name,
        ":email": user.email,
        ":password_hash": user.password_hash,
        ":roles": roles,
        ":holdernames": holdernames,
        ":suspended": user.suspended,
        ":confirmed_at": user.confirmed_at,
        ":updated_at": user.updated_at,
    };
    if user.id == 0 {
        c.execute(
            "INSERT INTO console_users (username, display_name, email, password_hash, roles,
                 holdernames, suspended, confirmed_at, updated_at)
             VALUES (:username, :display_name, :email, :password_hash, :roles, :holdernames,
                 :suspended, :confirmed_at, :updated_at)",
            fields,
        )?;
        Ok(UserSaved::Saved(c.last_insert_rowid()))
    } else {
        c.execute(
            "UPDATE console_users SET username = :username, display_name = :display_name,
                 email = :email, password_hash = :password_hash, roles = :roles,
                 holdernames = :holdernames, suspended = :suspended,
                 confirmed_at = :confirmed_at, updated_at = :updated_at
             WHERE id = :id",
            [fields, named_params! { ":id": user.id }]
                .concat()
                .as_slice(),
        )?;
        Ok(UserSaved::Saved(user.id))
    }
}

/// The organisation's registration data, by key.
pub(in crate::store) fn org(c: &Connection) -> Result<Vec<OrgDetail>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT key, value, updated_at, confirmed_at FROM console_org ORDER BY key",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(OrgDetail {
            key: r.get(0)?,
            value: r.get(1)?,
            updated_at: r.get(2)?,
            confirmed_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Sets one item; a changed value is unconfirmed until confirmed again.
pub(in crate::store) fn set_org(
    c: &Connection,
    change: &OrgDetailChange,
    now: i64,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO console_org (key, value, updated_at, confirmed_at)
         VALUES (?1, ?2, ?3, CASE WHEN ?4 THEN ?3 END)
         ON CONFLICT (key) DO UPDATE SET
             confirmed_at = CASE WHEN ?4 THEN ?3
                                 WHEN console_org.value = excluded.value THEN console_org.confirmed_at
                            END,
             updated_at = CASE WHEN console_org.value = excluded.value
                               THEN console_org.updated_at ELSE ?3 END,
             value = excluded.value",
        params![change.key, change.value, now, change.confirmed],
    )?;
    Ok(())
}

/// Counts a sign-in attempt ([`SignInAttempt`]), forgetting lapsed rows: the username's
/// attempts in a row, this one included.
pub(in crate::store) fn sign_in_attempt(
    c: &Connection,
    attempt: &SignInAttempt,
) -> Result<u32, StoreError> {
    c.prepare_cached("DELETE FROM console_sign_in_failures WHERE last_at < ?1")?
        .execute([attempt.since])?;
    let n = c
        .prepare_cached(
            "INSERT INTO console_sign_in_failures (username, failures, last_at) VALUES (?1, 1, ?2)
             ON CONFLICT (username) DO UPDATE SET
                 failures = console_sign_in_failures.failures + 1, last_at = excluded.last_at
             RETURNING failures",
        )?
        .query_row(params![attempt.username, attempt.now], |r| r.get(0))?;
    Ok(n)
}

/// Forgets a username's counted attempts.
pub(in crate::store) fn sign_in_succeeded(
    c: &Connection,
    username: &str,
) -> Result<(), StoreError> {
    c.prepare_cached("DELETE FROM console_sign_in_failures WHERE username = ?1")?
        .execute([username])?;
    Ok(())
}
