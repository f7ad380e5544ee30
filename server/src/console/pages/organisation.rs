//! The organisation: its key contacts (the users of each role) and its PDP registration data,
//! each with the day it was last confirmed to PDP (CoCo3.2.6). Every user sees it; a PBC
//! ([`Action::ManageUsers`](crate::console::roles::Action)) edits it.

use http::StatusCode;
use minijinja::context;

use super::{day, when};
use crate::console::page::Page;
use crate::console::respond::{plain, redirect, Resp};
use crate::console::roles::{self, Action};
use crate::console::ConsoleError;
use crate::store::console::Role;

/// The registration data keys a PBC is offered (any other may be set too).
const KNOWN_KEYS: [&str; 7] = [
    "organisation_name",
    "organisation_type",
    "registered_address",
    "companies_house_number",
    "pdp_participant_id",
    "connection_deadline",
    "endpoint_url",
];

/// The contacts and the registration data.
pub(crate) async fn page(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let users = p.console.store.console_users().await?;
    let mut contacts = Vec::new();
    for role in <Role as strum::VariantArray>::VARIANTS {
        for u in users.iter().filter(|u| u.has(*role) && !u.suspended) {
            contacts.push(context! {
                role => role.title(), name => u.display_name, email => u.email,
                confirmed => when(u.confirmed_at),
            });
        }
    }
    let details: Vec<_> = p
        .console
        .store
        .org_details()
        .await?
        .into_iter()
        .map(|d| context! { key => d.key, value => d.value, changed => day(d.updated_at), confirmed => when(d.confirmed_at) })
        .collect();
    p.render(
        "organisation.html",
        "/organisation",
        context! {
            contacts, details,
            can_edit => roles::may(&p.me.user, Action::ManageUsers),
            known_keys => KNOWN_KEYS,
        },
    )
}

/// Sets one registration detail (`key`, `value`; `confirmed`: told to PDP today).
pub(crate) async fn set_detail(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let (Some(key), Some(value)) = (p.form.get("key"), p.form.get("value")) else {
        return Ok(plain(StatusCode::BAD_REQUEST, "key and value\n"));
    };
    let key: String = key.trim().chars().take(64).collect();
    if key.is_empty() {
        return Ok(plain(StatusCode::BAD_REQUEST, "key\n"));
    }
    let target = [("key", key.clone())];
    p.console
        .store
        .set_org_detail(
            key,
            value.trim().chars().take(500).collect(),
            p.form.get("confirmed") == Some("on"),
        )
        .await?;
    let target: Vec<(&str, &str)> = target.iter().map(|(k, v)| (*k, v.as_str())).collect();
    p.audit_on(303, "org_detail_set", None, &target).await;
    Ok(redirect("/organisation?done=saved"))
}

/// Records every contact as confirmed to PDP today.
pub(crate) async fn confirm_contacts(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let now = crate::now_micros();
    for mut u in p.console.store.console_users().await? {
        u.confirmed_at = Some(now);
        crate::console::save_user(
            &p.console.store,
            u,
            None,
            p.console.config.console.scheme_admin_limit,
        )
        .await?;
    }
    p.audit(303, "contacts_confirmed", None).await;
    Ok(redirect("/organisation?done=confirmed"))
}
