//! Recovery for an organisation locked out of its console, run on the server by an operator
//! with the store and the data key (`pdp-provider console unsuspend|reset-password|reset-mfa
//! USER`): no role rule can stop these, since they are how a locked-out organisation gets back
//! in. Each is audited (direction `operator`, party `operator:<$USER>`) naming the user it
//! changed, and each ends the user's sessions at their next request (on every instance: a
//! session checks the user as stored).

use uuid::Uuid;

use super::{save_user, ConsoleError, MIN_PASSWORD_CHARS};
use crate::audit::{AuditRecord, Direction};
use crate::store::console::ConsoleUser;
use crate::store::Store;

/// The user named, or [`ConsoleError::NoSuchUser`].
async fn user(store: &Store, username: &str) -> Result<ConsoleUser, ConsoleError> {
    store
        .console_user(username)
        .await?
        .ok_or_else(|| ConsoleError::NoSuchUser(username.to_owned()))
}

/// Audits a recovery command, and waits for its commit.
async fn audit(store: &Store, command: &str, username: &str, outcome: String) {
    let now = crate::now_micros();
    store.audit(AuditRecord {
        transaction_id: Uuid::new_v4().hyphenated().to_string(),
        request_id: None,
        direction: Direction::Operator,
        party: std::env::var("USER")
            .map_or_else(|_| "operator".into(), |u| format!("operator:{u}")),
        endpoint: format!("console {command} {username}"),
        received_at: now,
        responded_at: now,
        status: 0,
        outcome,
    });
    store.flush().await;
}

/// Lifts a user's suspension. The role limits still hold: unsuspending changes no role.
pub async fn unsuspend(store: &Store, username: &str) -> Result<(), ConsoleError> {
    let mut u = user(store, username).await?;
    u.suspended = false;
    save_user(store, u, None, usize::MAX).await?;
    audit(
        store,
        "unsuspend",
        username,
        format!("user_unsuspended user={username}"),
    )
    .await;
    Ok(())
}

/// Sets a user's password (at least [`MIN_PASSWORD_CHARS`] characters).
pub async fn reset_password(
    store: &Store,
    username: &str,
    password: String,
) -> Result<(), ConsoleError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ConsoleError::Password("at least 12 characters"));
    }
    let u = user(store, username).await?;
    save_user(store, u, Some(password), usize::MAX).await?;
    audit(
        store,
        "reset-password",
        username,
        format!("password_reset user={username}"),
    )
    .await;
    Ok(())
}

/// Removes a user's second factor and recovery codes: they enrol again at their next sign-in.
pub async fn reset_mfa(store: &Store, username: &str) -> Result<(), ConsoleError> {
    let u = user(store, username).await?;
    store.reset_console_mfa(u.id).await?;
    audit(
        store,
        "reset-mfa",
        username,
        format!("mfa_reset user={username}"),
    )
    .await;
    Ok(())
}
