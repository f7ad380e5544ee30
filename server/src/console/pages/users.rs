//! Users and roles ([`Action::ManageUsers`](crate::console::roles::Action)), and each user's own
//! account.
//!
//! - The list: every user with their roles, holdernames, second factor and state; suspend,
//!   unsuspend and second-factor reset are actions of their own.
//! - Adding a user takes a new username; changing one starts from the edit page, pre-filled
//!   with what the user has, and applies only what the operator changed there: roles and
//!   holdernames ticked or unticked against those the page showed (a role given meanwhile by
//!   someone else stays), details edited, a password set.
//! - The role rules hold throughout (a refusal names its rule), the last active PBC included.
//! - A suspension, a new password or a second factor reset ends the user's sessions. Each
//!   action's audit record names the user and what changed.
//! - Every user changes their own password on their account page (the current one first).

use std::collections::BTreeSet;

use http::{header, StatusCode};
use minijinja::context;
use uuid::Uuid;

use crate::console::page::{Form, Page};
use crate::console::respond::{header_value, redirect, Resp};
use crate::console::session::{self, SESSION_COOKIE};
use crate::console::sign_in::MAX_USERNAME;
use crate::console::{ConsoleError, MIN_PASSWORD_CHARS};
use crate::store::console::{ConsoleUser, Role};

/// Every role, as the forms show them.
fn all_roles(held: &[Role]) -> Vec<minijinja::Value> {
    <Role as strum::VariantArray>::VARIANTS
        .iter()
        .map(|r| context! { value => r.as_str(), title => r.title(), held => held.contains(r) })
        .collect()
}

/// Role spellings, comma-separated.
fn role_list(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Holdernames, comma-separated.
fn guid_list(guids: &[Uuid]) -> String {
    guids
        .iter()
        .map(|g| g.hyphenated().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The users, and the form to add one, with `error` above it.
pub(crate) async fn list(
    p: &Page<'_>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Resp, ConsoleError> {
    let store = &p.console.store;
    let mut users = Vec::new();
    for u in store.console_users().await? {
        let mfa = store.console_mfa(u.id).await?;
        users.push(context! {
            username => u.username, display_name => u.display_name, email => u.email,
            roles => u.roles.iter().map(|r| r.title()).collect::<Vec<_>>(),
            holdernames => u.holdernames.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
            suspended => u.suspended,
            mfa => mfa.enrolled_at.is_some(),
            mfa_unreadable => mfa.unreadable,
            recovery_left => mfa.recovery_hashes.len(),
            is_me => u.id == p.me.user.id,
        });
    }
    p.render_status(
        "users.html",
        "/users",
        context! {
            users, all_roles => all_roles(&[]),
            scheme_admin_limit => p.console.config.console.scheme_admin_limit,
        },
        status,
        error,
    )
}

/// The edit page of the user `?username=` names, pre-filled with what they have.
pub(crate) async fn edit_page(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let username = p.query("username").unwrap_or_default();
    edit(p, &username, None, StatusCode::OK).await
}

/// The edit page of `username`, with `error` above it.
async fn edit(
    p: &Page<'_>,
    username: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<Resp, ConsoleError> {
    let Some(u) = p.console.store.console_user(username).await? else {
        return list(
            p,
            Some(format!("no user {username:?}")),
            StatusCode::NOT_FOUND,
        )
        .await;
    };
    p.render_status(
        "user_edit.html",
        "/users",
        context! {
            user => context! {
                username => u.username, display_name => u.display_name, email => u.email,
                holdernames => guid_list(&u.holdernames).replace(',', ", "),
                suspended => u.suspended,
            },
            original_roles => role_list(&u.roles),
            original_holdernames => guid_list(&u.holdernames),
            all_roles => all_roles(&u.roles),
        },
        status,
        error,
    )
}

/// Why a user form is refused, shown above the form it came from.
struct Refusal(String);

/// Adds a user (the add form: no `original_roles`), or changes one (the edit page: only what
/// was changed there).
pub(crate) async fn save(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let editing = p.form.get("original_roles").is_some();
    let username = p.form.get("username").unwrap_or("").trim().to_owned();
    let outcome = match user_from_form(p, &username, editing).await? {
        Ok((user, password, what)) => {
            let changed_password = password.is_some();
            let limit = p.console.config.console.scheme_admin_limit;
            match crate::console::save_user(&p.console.store, user, password, limit).await {
                Ok(id) => {
                    if changed_password {
                        p.console.sessions.end_user(id);
                    }
                    Ok(what)
                }
                Err(
                    e @ (ConsoleError::Refused(_)
                    | ConsoleError::RefusedInStore(_)
                    | ConsoleError::UsernameTaken(_)
                    | ConsoleError::Password(_)),
                ) => Err(Refusal(e.to_string())),
                Err(e) => return Err(e),
            }
        }
        Err(refusal) => Err(refusal),
    };
    match outcome {
        Ok(what) => {
            p.audit(303, &what, None).await;
            Ok(redirect("/users?done=saved"))
        }
        Err(Refusal(msg)) => {
            p.audit(
                422,
                &format!("refused user={}", audit_name(&username)),
                None,
            )
            .await;
            if editing {
                edit(p, &username, Some(msg), StatusCode::UNPROCESSABLE_ENTITY).await
            } else {
                list(p, Some(msg), StatusCode::UNPROCESSABLE_ENTITY).await
            }
        }
    }
}

/// A username as an audit record names it: the name, cut to the longest a user may have.
fn audit_name(username: &str) -> String {
    username.chars().take(MAX_USERNAME).collect()
}

/// The user a form saves, the password it sets, and what the audit record says it changed; or
/// why it is refused.
async fn user_from_form(
    p: &Page<'_>,
    username: &str,
    editing: bool,
) -> Result<Result<(ConsoleUser, Option<String>, String), Refusal>, ConsoleError> {
    let form = p.form;
    let (roles_given, holdernames_given) = match parse_form(form, username) {
        Ok(parsed) => parsed,
        Err(msg) => return Ok(Err(Refusal(msg))),
    };
    let password = form
        .get("password")
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    let existing = p.console.store.console_user(username).await?;
    let text = |k: &str| form.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let Some(old) = existing else {
        if editing {
            return Ok(Err(Refusal(format!("no user {username:?}"))));
        }
        let what = format!(
            "user_added user={username} roles={}",
            role_list(&roles_given)
        );
        let user = ConsoleUser {
            id: 0,
            username: username.to_owned(),
            display_name: text("display_name"),
            email: text("email"),
            password_hash: String::new(),
            roles: roles_given,
            holdernames: holdernames_given,
            suspended: false,
            confirmed_at: None,
            updated_at: 0,
        };
        return Ok(Ok((user, password, what)));
    };
    if !editing {
        return Ok(Err(Refusal(format!(
            "rule USERNAME_TAKEN: a user {username:?} exists; change them from their edit page"
        ))));
    }
    // Only what was changed on the page: roles and holdernames ticked or unticked against
    // those the page showed, applied to the user as stored now.
    let shown_roles: Vec<Role> = split(form.get("original_roles"))
        .filter_map(|r| r.parse().ok())
        .collect();
    let shown_guids: Vec<Uuid> = split(form.get("original_holdernames"))
        .filter_map(|g| Uuid::try_parse(g).ok())
        .collect();
    let roles = apply(&old.roles, &shown_roles, &roles_given);
    let holdernames = apply(&old.holdernames, &shown_guids, &holdernames_given);
    let mut user = old.clone();
    user.display_name = text("display_name");
    user.email = text("email");
    user.roles = roles;
    user.holdernames = holdernames;
    user.password_hash.clear();
    let what = changes(&old, &user, password.is_some());
    // A change of a key contact's details is unconfirmed until PDP is told (CoCo3.2.6).
    if old.display_name != user.display_name || old.email != user.email || old.roles != user.roles {
        user.confirmed_at = None;
    }
    Ok(Ok((user, password, what)))
}

/// The comma-separated items of a hidden field.
fn split(v: Option<&str>) -> impl Iterator<Item = &str> {
    v.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// `stored`, with what was added to and removed from `shown` to make `given`.
fn apply<T: Ord + Clone>(stored: &[T], shown: &[T], given: &[T]) -> Vec<T> {
    let (shown, given): (BTreeSet<_>, BTreeSet<_>) =
        (shown.iter().collect(), given.iter().collect());
    let mut out: BTreeSet<T> = stored.iter().cloned().collect();
    for removed in shown.difference(&given) {
        out.remove(*removed);
    }
    for added in given.difference(&shown) {
        out.insert((*added).clone());
    }
    out.into_iter().collect()
}

/// What an edit changed, as its audit record says it: the user, roles and holdernames added
/// (`+`) and removed (`-`), and which details.
fn changes(old: &ConsoleUser, new: &ConsoleUser, password: bool) -> String {
    let mut out = format!("user_changed user={}", new.username);
    let diff = |was: Vec<String>, now: Vec<String>| {
        let plus = now
            .iter()
            .filter(|x| !was.contains(x))
            .map(|x| format!("+{x}"));
        let minus = was
            .iter()
            .filter(|x| !now.contains(x))
            .map(|x| format!("-{x}"));
        plus.chain(minus).collect::<Vec<_>>().join(",")
    };
    let names = |r: &[Role]| r.iter().map(|r| r.as_str().to_owned()).collect();
    let guids = |g: &[Uuid]| g.iter().map(|g| g.to_string()).collect();
    for (what, d) in [
        ("roles", diff(names(&old.roles), names(&new.roles))),
        (
            "holdernames",
            diff(guids(&old.holdernames), guids(&new.holdernames)),
        ),
    ] {
        if !d.is_empty() {
            out.push_str(&format!(" {what}={d}"));
        }
    }
    for (what, changed) in [
        ("display_name", old.display_name != new.display_name),
        ("email", old.email != new.email),
        ("password", password),
    ] {
        if changed {
            out.push_str(&format!(" {what}"));
        }
    }
    out
}

/// The roles and holdernames of a user form; or why it is refused.
fn parse_form(form: &Form, username: &str) -> Result<(Vec<Role>, Vec<Uuid>), String> {
    if username.is_empty() || username.len() > MAX_USERNAME {
        return Err(format!("username: 1 to {MAX_USERNAME} characters"));
    }
    let mut roles = form
        .all("role")
        .map(|r| {
            r.parse::<Role>()
                .map_err(|_| format!("role: unknown {r:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    roles.sort();
    roles.dedup();
    let holdernames = split(form.get("holdernames"))
        .map(|h| Uuid::try_parse(h).map_err(|_| "holdernames: comma-separated GUIDs".to_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((roles, holdernames))
}

/// Suspends (`suspend`) or unsuspends the user the form names; the last active PBC stays.
pub(crate) async fn set_suspended(p: &Page<'_>, suspend: bool) -> Result<Resp, ConsoleError> {
    let username = p.form.get("username").unwrap_or("").trim().to_owned();
    let verb = if suspend { "suspended" } else { "unsuspended" };
    let Some(mut user) = p.console.store.console_user(&username).await? else {
        p.audit(
            404,
            &format!("refused user={}", audit_name(&username)),
            None,
        )
        .await;
        return list(
            p,
            Some(format!("no user {username:?}")),
            StatusCode::NOT_FOUND,
        )
        .await;
    };
    user.suspended = suspend;
    user.password_hash.clear();
    let limit = p.console.config.console.scheme_admin_limit;
    match crate::console::save_user(&p.console.store, user.clone(), None, limit).await {
        Ok(id) => {
            if suspend {
                p.console.sessions.end_user(id);
            }
            p.audit(303, &format!("user_{verb} user={username}"), None)
                .await;
            Ok(redirect("/users?done=saved"))
        }
        Err(e @ (ConsoleError::Refused(_) | ConsoleError::RefusedInStore(_))) => {
            p.audit(422, &format!("refused user={username}"), None)
                .await;
            list(p, Some(e.to_string()), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => Err(e),
    }
}

/// Removes the second factor of the user the form names: they enrol again at their next
/// sign-in, and their sessions end.
pub(crate) async fn reset_mfa(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let username = p.form.get("username").unwrap_or("").trim().to_owned();
    let Some(user) = p.console.store.console_user(&username).await? else {
        return list(
            p,
            Some(format!("no user {username:?}")),
            StatusCode::NOT_FOUND,
        )
        .await;
    };
    p.console.store.reset_console_mfa(user.id).await?;
    p.console.sessions.end_user(user.id);
    p.audit(303, &format!("mfa_reset user={username}"), None)
        .await;
    Ok(redirect("/users?done=saved"))
}

/// The signed-in user's own account: their roles, second factor, and the password form.
pub(crate) async fn account(
    p: &Page<'_>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Resp, ConsoleError> {
    let mfa = p.console.store.console_mfa(p.me.user.id).await?;
    let enrolled = mfa
        .enrolled_at
        .and_then(chrono::DateTime::from_timestamp_micros)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string());
    p.render_status(
        "account.html",
        "/account",
        context! {
            username => p.me.user.username,
            enrolled,
            recovery_left => mfa.recovery_hashes.len(),
            min_password => MIN_PASSWORD_CHARS,
        },
        status,
        error,
    )
}

/// Changes the signed-in user's own password: the current one first. Their other sessions
/// end; this one goes on under a new session.
pub(crate) async fn change_password(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let refuse = |msg: &str| {
        let msg = msg.to_owned();
        async move {
            p.audit(422, "password_change_refused", None).await;
            account(p, Some(msg), StatusCode::UNPROCESSABLE_ENTITY).await
        }
    };
    let current = p.form.get("current").unwrap_or("").to_owned();
    let new = p.form.get("new").unwrap_or("").to_owned();
    if Some(new.as_str()) != p.form.get("confirm") {
        return refuse("The new password and its confirmation differ.").await;
    }
    let phc = p.me.user.password_hash.clone();
    let verified = crate::store::blocking(move || Ok(session::verify_password(&current, &phc)))
        .await
        .unwrap_or(false);
    if !verified {
        return refuse("The current password is not right.").await;
    }
    let mut user = p.me.user.clone();
    user.password_hash.clear();
    let limit = p.console.config.console.scheme_admin_limit;
    let id = match crate::console::save_user(&p.console.store, user, Some(new), limit).await {
        Ok(id) => id,
        Err(e @ ConsoleError::Password(_)) => return refuse(&e.to_string()).await,
        Err(e) => return Err(e),
    };
    // Every session signed in with the old password ends; this browser gets a new one.
    let store = &p.console.store;
    let hash = store
        .console_users()
        .await?
        .into_iter()
        .find(|u| u.id == id)
        .map(|u| u.password_hash)
        .unwrap_or_default();
    let enrolled_at = store.console_mfa(id).await?.enrolled_at;
    p.console.sessions.end_user(id);
    let token = p
        .console
        .sessions
        .start(id, &session::credential(&hash, enrolled_at));
    p.audit(
        303,
        &format!("password_changed user={}", p.me.user.username),
        None,
    )
    .await;
    let mut r = redirect("/account?done=password");
    r.headers_mut().insert(
        header::SET_COOKIE,
        header_value(session::set_cookie(SESSION_COOKIE, &token, None)),
    );
    Ok(r)
}

/// New recovery codes for the signed-in user (the old ones stop working), shown once.
pub(crate) async fn new_recovery_codes(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let codes = crate::console::mfa::recovery_codes();
    let hashes = crate::console::sign_in::hash_codes(&codes).await?;
    p.console
        .store
        .replace_recovery_codes(p.me.user.id, hashes)
        .await?;
    p.audit(
        200,
        &format!("recovery_codes_renewed user={}", p.me.user.username),
        None,
    )
    .await;
    p.render(
        "mfa_recovery.html",
        "/account",
        context! { codes, signed_in => true },
    )
}
