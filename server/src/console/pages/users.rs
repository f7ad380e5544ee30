//! Users and roles ([`Action::ManageUsers`](crate::console::roles::Action)): every user with
//! their roles and holdernames, and a user added or changed under the portal's role rules
//! (a refusal names its rule). A suspension or a new password ends the user's sessions.

use http::StatusCode;
use minijinja::context;
use uuid::Uuid;

use crate::console::page::{Form, Page};
use crate::console::respond::{redirect, Resp};
use crate::console::sign_in::MAX_USERNAME;
use crate::console::ConsoleError;
use crate::store::console::{ConsoleUser, Role};

/// The users, and the form to add or change one, with `error` above it.
pub(crate) async fn list(
    p: &Page<'_>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Resp, ConsoleError> {
    let users: Vec<_> = p
        .console
        .store
        .console_users()
        .await?
        .into_iter()
        .map(|u| {
            context! {
                username => u.username, display_name => u.display_name, email => u.email,
                roles => u.roles.iter().map(|r| r.title()).collect::<Vec<_>>(),
                holdernames => u.holdernames.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
                suspended => u.suspended,
            }
        })
        .collect();
    let all_roles: Vec<_> = <Role as strum::VariantArray>::VARIANTS
        .iter()
        .map(|r| context! { value => r.as_str(), title => r.title() })
        .collect();
    p.render_status(
        "users.html",
        "/users",
        context! { users, all_roles, scheme_admin_limit => p.console.config.console.scheme_admin_limit },
        status,
        error,
    )
}

/// Adds or changes the user the form names; blank fields keep what the user has.
pub(crate) async fn save(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let refuse = |msg: String| async move {
        p.audit(422, "refused", None).await;
        list(p, Some(msg), StatusCode::UNPROCESSABLE_ENTITY).await
    };
    let form = p.form;
    let (username, roles_given, holdernames) = match user_form(form) {
        Ok(parsed) => parsed,
        Err(msg) => return refuse(msg).await,
    };
    let existing = p.console.store.console_user(&username).await?;
    let field = |k: &str, old: Option<&String>| {
        form.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .or_else(|| old.cloned())
            .unwrap_or_default()
    };
    let display_name = field("display_name", existing.as_ref().map(|u| &u.display_name));
    let email = field("email", existing.as_ref().map(|u| &u.email));
    // A change of a key contact's details is unconfirmed until PDP is told (CoCo3.2.6).
    let confirmed_at = existing.as_ref().and_then(|u| {
        (u.display_name == display_name
            && u.email == email
            && u.roles == {
                let mut r = roles_given.clone();
                r.sort();
                r.dedup();
                r
            })
        .then_some(u.confirmed_at)
        .flatten()
    });
    let user = ConsoleUser {
        id: existing.as_ref().map_or(0, |u| u.id),
        username: username.clone(),
        display_name,
        email,
        password_hash: existing
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_default(),
        roles: roles_given,
        holdernames,
        suspended: form.get("suspended") == Some("on"),
        confirmed_at,
        updated_at: 0,
    };
    let password = form
        .get("password")
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    let changed_password = password.is_some();
    let limit = p.console.config.console.scheme_admin_limit;
    match crate::console::save_user(&p.console.store, user.clone(), password, limit).await {
        Ok(id) => {
            if user.suspended || changed_password {
                p.console.sessions.end_user(id);
            }
            p.audit(303, "user_saved", None).await;
            Ok(redirect("/users?done=saved"))
        }
        Err(
            e @ (ConsoleError::Refused(_)
            | ConsoleError::RefusedInStore(_)
            | ConsoleError::UsernameTaken(_)
            | ConsoleError::Password(_)),
        ) => refuse(e.to_string()).await,
        Err(e) => Err(e),
    }
}

/// The username, roles and holdernames of a user form; or why it is refused.
fn user_form(form: &Form) -> Result<(String, Vec<Role>, Vec<Uuid>), String> {
    let username = form.get("username").unwrap_or("").trim().to_owned();
    if username.is_empty() || username.len() > MAX_USERNAME {
        return Err(format!("username: 1 to {MAX_USERNAME} characters"));
    }
    let roles = form
        .all("role")
        .map(|r| {
            r.parse::<Role>()
                .map_err(|_| format!("role: unknown {r:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let holdernames = form
        .get("holdernames")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| Uuid::try_parse(h).map_err(|_| "holdernames: comma-separated GUIDs".to_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((username, roles, holdernames))
}
