//! The operator console's state (issue #18): the people who run the connection, their
//! connection-portal roles, and the organisation's details as registered with PDP.
//!
//! The role rules themselves live in `crate::console::roles`; the store only guarantees that a
//! change is checked against every other user as the same transaction sees them (SQLite: the one
//! writer; PostgreSQL: the users table locked for the transaction), so two PBCs added at once
//! cannot both pass a limit of two. The SQL is in each backend's `console.rs`, the schema in
//! `schema/V5__console.sql`. No member data is stored here.

use super::{Store, StoreError};

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

/// A change to an item of the organisation's registration data.
#[derive(Debug, Clone)]
pub struct OrgDetailChange {
    /// Its name, e.g. `organisation_name`.
    pub key: String,
    /// Its new value.
    pub value: String,
    /// Whether it is confirmed to PDP now.
    pub confirmed: bool,
}

// === impl Store ===

impl Store {
    /// Every console user, by username.
    pub async fn console_users(&self) -> Result<Vec<ConsoleUser>, StoreError> {
        self.db().console_users().await
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
        self.db().save_console_user(user, check).await
    }

    /// The organisation's registration data.
    pub async fn org_details(&self) -> Result<Vec<OrgDetail>, StoreError> {
        self.db().org_details().await
    }

    /// Sets an item of the organisation's registration data (`confirmed`: as confirmed to PDP
    /// now).
    pub async fn set_org_detail(
        &self,
        key: String,
        value: String,
        confirmed: bool,
    ) -> Result<(), StoreError> {
        let change = OrgDetailChange {
            key,
            value,
            confirmed,
        };
        self.db().set_org_detail(change, crate::now_micros()).await
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
            .db()
            .sign_in_attempt(SignInAttempt {
                username: username.to_owned(),
                now,
                since: now - lockout.as_micros() as i64,
            })
            .await?;
        Ok(attempts <= max)
    }

    /// Forgets `username`'s counted attempts: it signed in.
    pub async fn sign_in_succeeded(&self, username: &str) -> Result<(), StoreError> {
        self.db().sign_in_succeeded(username.to_owned()).await
    }
}

/// A sign-in attempt to count, before its password is checked: one more for the username (from
/// one again once its last is older than `since`); rows older than `since` are forgotten.
#[derive(Debug, Clone)]
pub(super) struct SignInAttempt {
    pub username: String,
    pub now: i64,
    pub since: i64,
}

// === shared by both backends ===

/// Runs a user change's check against every user as stored (read in the saving transaction)
/// and as they would be with the change: the user's roles and holdernames as stored, or how it
/// was refused. An existing user saved with an empty `password_hash` keeps the stored one (read
/// here, in the transaction: a password changed meanwhile elsewhere is not undone).
pub(super) fn checked(
    user: &mut ConsoleUser,
    stored: impl Iterator<Item = ConsoleUser>,
    check: UserCheck,
) -> Result<(String, String), UserSaved> {
    let before: Vec<ConsoleUser> = stored.collect();
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
pub(super) fn join_list<S: AsRef<str>>(items: impl Iterator<Item = S>) -> String {
    items
        .map(|s| s.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses stored role spellings; an unknown one is corruption.
pub(super) fn split_roles(s: &str) -> Result<Vec<Role>, StoreError> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse()
                .map_err(|_| StoreError::Corrupt("console_users.roles"))
        })
        .collect()
}

/// Parses stored holdernames.
pub(super) fn split_guids(s: &str) -> Result<Vec<uuid::Uuid>, StoreError> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            uuid::Uuid::try_parse(p).map_err(|_| StoreError::Corrupt("console_users.holdernames"))
        })
        .collect()
}
